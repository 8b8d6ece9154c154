/* see pin_params.h: the per-PVK parameters of online PIN verification */
#include "src/config/pin_params.h"
#include "src/base/err.h"
#include "src/config/config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kv_pin_params_defaults(kv_pin_params *p)
{
    memset(p, 0, sizeof(*p));
    memcpy(p->dec_table, "0123456789012345", 17);
    /* the 11 PAN digits before the check digit, as in the Visa PVV's TSP */
    snprintf(p->vdata_spec, sizeof(p->vdata_spec), "pan:1:11");
    p->pad = 'F';
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
}

/* A decimal number of 1..2 digits at *s, moved past; -1 when there is none. */
static int small_number(const char **s)
{
    int v = 0, n = 0;
    while (**s >= '0' && **s <= '9' && n < 3) {
        v = v * 10 + (**s - '0');
        (*s)++;
        n++;
    }
    return n == 0 || n > 2 ? -1 : v;
}

/* Parse "pan:R:N" into *r and *n. */
static int parse_spec(const char *spec, int *r, int *n)
{
    const char *s = spec;
    if (strncmp(s, "pan:", 4) != 0)
        return KV_ERR_ARG;
    s += 4;
    if ((*r = small_number(&s)) < 0 || *s++ != ':')
        return KV_ERR_ARG;
    if ((*n = small_number(&s)) < 0 || *s != '\0')
        return KV_ERR_ARG;
    if (*r > 18 || *n < 1 || *n > 16)
        return KV_ERR_ARG;
    return 0;
}

int kv_pin_params_vdata(const kv_pin_params *p, const char *pan, char out[17], char *why,
                        size_t why_cap)
{
    int r, n;
    size_t len, end;

    if (parse_spec(p->vdata_spec, &r, &n) != 0) {
        kv_errf(why, why_cap, "validation_data '%.31s' is not pan:R:N (R 0..18, N 1..16)",
                p->vdata_spec);
        return KV_ERR_ARG;
    }
    if (!is_hex(p->pad)) {
        kv_errf(why, why_cap, "pad is not a hex digit");
        return KV_ERR_ARG;
    }
    len = pan != NULL ? strlen(pan) : 0;
    for (size_t i = 0; i < len; i++)
        if (pan[i] < '0' || pan[i] > '9') {
            kv_errf(why, why_cap, "the PAN is not digits");
            return KV_ERR_ARG;
        }
    /* the digits [end - n, end) where end leaves r digits after them */
    if (len < (size_t)r + (size_t)n) {
        kv_errf(why, why_cap, "a PAN of %zu digits is too short for validation_data pan:%d:%d", len,
                r, n);
        return KV_ERR_ARG;
    }
    end = len - (size_t)r;
    memcpy(out, pan + end - (size_t)n, (size_t)n);
    for (size_t i = (size_t)n; i < 16; i++)
        out[i] = p->pad;
    out[16] = '\0';
    return 0;
}

int kv_pin_params_set(kv_pin_params *p, const char *key, const char *value, char *why,
                      size_t why_cap)
{
    int r, n;
    size_t len = strlen(value);
    if (strcmp(key, "dec_table") == 0) {
        int ok = len == 16;
        for (size_t i = 0; ok && i < len; i++)
            ok = value[i] >= '0' && value[i] <= '9';
        if (!ok) {
            kv_errf(why, why_cap, "must be 16 decimal digits");
            return KV_ERR_CONFIG;
        }
        memcpy(p->dec_table, value, 17);
        return 0;
    }
    if (strcmp(key, "validation_data") == 0) {
        if (len >= sizeof(p->vdata_spec) || parse_spec(value, &r, &n) != 0) {
            kv_errf(why, why_cap,
                    "must be pan:R:N: the N (1..16) PAN digits that end R (0..18) digits "
                    "before the PAN's end");
            return KV_ERR_CONFIG;
        }
        memcpy(p->vdata_spec, value, len + 1);
        return 0;
    }
    if (strcmp(key, "pad") == 0) {
        if (len != 1 || !is_hex(value[0])) {
            kv_errf(why, why_cap, "must be one hex digit");
            return KV_ERR_CONFIG;
        }
        p->pad = value[0];
        return 0;
    }
    kv_errf(why, why_cap, "unknown key (dec_table, validation_data, pad)");
    return KV_ERR_NOT_FOUND;
}

static int config_lookup(void *ctx, const char *pvk_label, kv_pin_params *out)
{
    static const char *const keys[] = {"dec_table", "validation_data", "pad"};
    const kv_config *c = ctx;
    char section[300];
    int r;

    kv_pin_params_defaults(out);
    if (c == NULL || pvk_label == NULL)
        return 0;
    if (snprintf(section, sizeof(section), "pvk.%s", pvk_label) >= (int)sizeof(section))
        return 0; /* no section can have so long a name */
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *v = kv_config_get(c, section, keys[i]);
        if (v != NULL && (r = kv_pin_params_set(out, keys[i], v, NULL, 0)) != 0)
            return KV_ERR_CONFIG; /* the loader refuses such a file; a guard */
    }
    return 0;
}

kv_pin_params_source kv_pin_params_config_source(const struct kv_config *c)
{
    kv_pin_params_source s;
    s.lookup = config_lookup;
    s.ctx = (void *)(uintptr_t)c;
    return s;
}

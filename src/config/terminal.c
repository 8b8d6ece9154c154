/* see terminal.h: [terminal] and [aid HEX] of the configuration file */
#include "src/config/terminal.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "src/base/err.h"
#include "src/base/hex.h"

static const char terminal_keys[] =
    "country, currency, terminal_type, capabilities, additional_capabilities, merchant_category";
static const char aid_keys[] =
    "asi, app_version, floor_limit, threshold, target_percent, max_target_percent, tac_denial, "
    "tac_online, tac_default, ddol_default, tdol_default, kernel, cl_transaction_limit, "
    "cl_floor_limit, cl_cvm_limit, ttq, status_check, zero_amount";

/* Exactly n bytes of hex (2n digits, no spaces) into out. */
static int hex_exact(const char *v, uint8_t *out, size_t n)
{
    if (strlen(v) != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = kv_hex_digit(v[2 * i]), lo = kv_hex_digit(v[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* Up to cap bytes of hex (an even number of digits, possibly none) into out; *n the count. */
static int hex_var(const char *v, uint8_t *out, size_t cap, size_t *n)
{
    size_t len = strlen(v);
    if (len % 2 != 0 || len / 2 > cap)
        return -1;
    *n = len / 2;
    return hex_exact(v, out, *n);
}

/* A decimal integer of 1..max_digits digits, not above max. */
static int number(const char *v, size_t max_digits, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long x;
    if (!kv_is_digits(v, 1, max_digits))
        return -1;
    errno = 0;
    x = strtoull(v, &end, 10);
    if (errno != 0 || *end != '\0' || x > max)
        return -1;
    *out = (uint64_t)x;
    return 0;
}

static int boolean(const char *v, int *out)
{
    if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "on") == 0 ||
        strcmp(v, "1") == 0)
        *out = 1;
    else if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0 || strcmp(v, "off") == 0 ||
             strcmp(v, "0") == 0)
        *out = 0;
    else
        return -1;
    return 0;
}

/* "aid" followed by spaces and the AID's hex: 1 and the AID, 0 when not an [aid] section. */
static int aid_section(const char *section, uint8_t aid[16], size_t *aid_len, int *well_formed)
{
    const char *p;
    char hex[33];
    size_t n;

    *well_formed = 0;
    if (strncmp(section, "aid", 3) != 0 || (section[3] != '\0' && section[3] != ' '))
        return 0;
    p = section + 3;
    while (*p == ' ')
        p++;
    n = strlen(p);
    while (n > 0 && p[n - 1] == ' ')
        n--;
    if (n < 10 || n > 32 || n % 2 != 0)
        return 1;
    memcpy(hex, p, n);
    hex[n] = '\0';
    if (hex_exact(hex, aid, n / 2) != 0)
        return 1;
    *aid_len = n / 2;
    *well_formed = 1;
    return 1;
}

/* see terminal.h */
int kv_term_config_is_section(const char *section)
{
    uint8_t aid[16];
    size_t n;
    int ok;
    return strcmp(section, "terminal") == 0 || aid_section(section, aid, &n, &ok);
}

static int set_terminal(kv_term_config *c, const char *key, const char *v, char *why,
                        size_t why_cap)
{
    uint64_t x;
    if (strcmp(key, "country") == 0 || strcmp(key, "currency") == 0) {
        if (number(v, 4, 999, &x) != 0) {
            kv_errf(why, why_cap, "'%s' is not an ISO 3166 / ISO 4217 numeric code (0-999)", v);
            return KV_ERR_CONFIG;
        }
        if (key[1] == 'o')
            c->country = (uint16_t)x;
        else
            c->currency = (uint16_t)x;
        return 0;
    }
    if (strcmp(key, "terminal_type") == 0) {
        /* Book 4 Annex A1: first digit 1-3 (operator), second 1-6 (environment) */
        if (number(v, 2, 99, &x) != 0 || x / 10 < 1 || x / 10 > 3 || x % 10 < 1 || x % 10 > 6) {
            kv_errf(why, why_cap,
                    "'%s' is not an EMV terminal type (11-16, 21-26, 34-36; Book 4 Annex A1)", v);
            return KV_ERR_CONFIG;
        }
        if (x / 10 == 3 && x % 10 < 4) {
            kv_errf(why, why_cap,
                    "'%s' is not an EMV terminal type (11-16, 21-26, 34-36; Book 4 Annex A1)", v);
            return KV_ERR_CONFIG;
        }
        c->terminal_type = (uint8_t)x;
        c->online_capable = kv_term_config_online_capable(c->terminal_type);
        return 0;
    }
    if (strcmp(key, "capabilities") == 0) {
        if (hex_exact(v, c->capabilities, 3) != 0) {
            kv_errf(why, why_cap, "'%s' is not 6 hex digits (9F33)", v);
            return KV_ERR_CONFIG;
        }
        return 0;
    }
    if (strcmp(key, "additional_capabilities") == 0) {
        if (hex_exact(v, c->add_capabilities, 5) != 0) {
            kv_errf(why, why_cap, "'%s' is not 10 hex digits (9F40)", v);
            return KV_ERR_CONFIG;
        }
        return 0;
    }
    if (strcmp(key, "merchant_category") == 0) {
        if (number(v, 4, 9999, &x) != 0) {
            kv_errf(why, why_cap, "'%s' is not a merchant category code (1-4 digits)", v);
            return KV_ERR_CONFIG;
        }
        c->mcc = (uint16_t)x;
        return 0;
    }
    kv_errf(why, why_cap, "unknown key (%s)", terminal_keys);
    return KV_ERR_NOT_FOUND;
}

/* A minor-units amount, or "none" (no limit: UINT64_MAX) when none_ok. */
static int amount(const char *v, int none_ok, uint64_t *out)
{
    if (none_ok && strcmp(v, "none") == 0) {
        *out = UINT64_MAX;
        return 0;
    }
    /* 12 digits: the n12 of 9F02 */
    return number(v, 12, 999999999999ull, out);
}

static int set_dol(const char *v, uint8_t *dol, size_t *len, char *why, size_t why_cap)
{
    uint8_t tmp[KV_TERMCFG_DOL_MAX];
    size_t n, total;
    if (hex_var(v, tmp, sizeof(tmp), &n) != 0) {
        kv_errf(why, why_cap, "'%s' is not hex of at most %d bytes", v, KV_TERMCFG_DOL_MAX);
        return KV_ERR_CONFIG;
    }
    if (n > 0 && kv_dol_data_len(tmp, n, &total) != 0) {
        kv_errf(why, why_cap, "'%s' is not a data object list (tag, length pairs)", v);
        return KV_ERR_CONFIG;
    }
    memcpy(dol, tmp, n);
    *len = n;
    return 0;
}

static int set_aid(kv_aid_config *a, const char *key, const char *v, char *why, size_t why_cap)
{
    uint64_t x;
    static const struct {
        const char *key;
        size_t off;
        int none_ok;
    } amounts[] = {
        {"floor_limit", offsetof(kv_aid_config, floor_limit), 0},
        {"threshold", offsetof(kv_aid_config, threshold), 0},
        {"cl_transaction_limit", offsetof(kv_aid_config, cl_transaction_limit), 1},
        {"cl_floor_limit", offsetof(kv_aid_config, cl_floor_limit), 1},
        {"cl_cvm_limit", offsetof(kv_aid_config, cl_cvm_limit), 1},
    };
    static const struct {
        const char *key;
        size_t off;
    } tacs[] = {
        {"tac_denial", offsetof(kv_aid_config, tac_denial)},
        {"tac_online", offsetof(kv_aid_config, tac_online)},
        {"tac_default", offsetof(kv_aid_config, tac_default)},
    };

    for (size_t i = 0; i < sizeof(amounts) / sizeof(amounts[0]); i++) {
        if (strcmp(key, amounts[i].key) != 0)
            continue;
        if (amount(v, amounts[i].none_ok, &x) != 0) {
            kv_errf(why, why_cap, "'%s' is not an amount in minor units (0-999999999999%s)", v,
                    amounts[i].none_ok ? " or none" : "");
            return KV_ERR_CONFIG;
        }
        memcpy((char *)a + amounts[i].off, &x, sizeof(x));
        return 0;
    }
    for (size_t i = 0; i < sizeof(tacs) / sizeof(tacs[0]); i++) {
        if (strcmp(key, tacs[i].key) != 0)
            continue;
        if (hex_exact(v, (uint8_t *)a + tacs[i].off, 5) != 0) {
            kv_errf(why, why_cap, "'%s' is not 10 hex digits (a terminal action code)", v);
            return KV_ERR_CONFIG;
        }
        return 0;
    }
    if (strcmp(key, "asi") == 0) {
        if (strcmp(v, "partial") == 0)
            a->asi = KV_ASI_PARTIAL;
        else if (strcmp(v, "exact") == 0)
            a->asi = KV_ASI_EXACT;
        else {
            kv_errf(why, why_cap, "'%s' must be partial or exact", v);
            return KV_ERR_CONFIG;
        }
        return 0;
    }
    if (strcmp(key, "app_version") == 0) {
        if (hex_exact(v, a->app_version, 2) != 0) {
            kv_errf(why, why_cap, "'%s' is not 4 hex digits (9F09)", v);
            return KV_ERR_CONFIG;
        }
        return 0;
    }
    if (strcmp(key, "target_percent") == 0 || strcmp(key, "max_target_percent") == 0) {
        if (number(v, 2, 99, &x) != 0) {
            kv_errf(why, why_cap, "'%s' is not a percentage from 0 to 99", v);
            return KV_ERR_CONFIG;
        }
        if (key[0] == 't')
            a->target_percent = (unsigned)x;
        else
            a->max_target_percent = (unsigned)x;
        return 0;
    }
    if (strcmp(key, "ddol_default") == 0)
        return set_dol(v, a->ddol_default, &a->ddol_default_len, why, why_cap);
    if (strcmp(key, "tdol_default") == 0)
        return set_dol(v, a->tdol_default, &a->tdol_default_len, why, why_cap);
    if (strcmp(key, "kernel") == 0) {
        if (number(v, 1, 7, &x) != 0) {
            kv_errf(why, why_cap, "'%s' is not a kernel identifier 0-7 (0: none)", v);
            return KV_ERR_CONFIG;
        }
        a->kernel = (int)x;
        return 0;
    }
    if (strcmp(key, "ttq") == 0) {
        if (hex_exact(v, a->ttq, 4) != 0) {
            kv_errf(why, why_cap, "'%s' is not 8 hex digits (9F66)", v);
            return KV_ERR_CONFIG;
        }
        return 0;
    }
    if (strcmp(key, "status_check") == 0) {
        if (boolean(v, &a->status_check) != 0) {
            kv_errf(why, why_cap, "'%s' must be true or false", v);
            return KV_ERR_CONFIG;
        }
        return 0;
    }
    if (strcmp(key, "zero_amount") == 0) {
        if (strcmp(v, "online") == 0)
            a->zero_amount = KV_ZERO_AMOUNT_ONLINE;
        else if (strcmp(v, "decline") == 0)
            a->zero_amount = KV_ZERO_AMOUNT_DECLINE;
        else {
            kv_errf(why, why_cap, "'%s' must be online or decline", v);
            return KV_ERR_CONFIG;
        }
        return 0;
    }
    kv_errf(why, why_cap, "unknown key (%s)", aid_keys);
    return KV_ERR_NOT_FOUND;
}

/* see terminal.h */
int kv_term_config_set(kv_term_config *c, const char *section, const char *key, const char *value,
                       size_t *aid_index, char *why, size_t why_cap)
{
    uint8_t aid[16];
    size_t aid_len = 0;
    int ok;
    kv_aid_config *a;

    if (strcmp(section, "terminal") == 0)
        return set_terminal(c, key, value, why, why_cap);
    if (!aid_section(section, aid, &aid_len, &ok) || !ok) {
        kv_errf(why, why_cap,
                "the section needs an AID of 5 to 16 bytes in hex: [aid A0000000041010]");
        return KV_ERR_CONFIG;
    }
    if ((a = kv_term_config_add(c, aid, aid_len)) == NULL) {
        kv_errf(why, why_cap, "more than %d AIDs", KV_TERMCFG_MAX_AIDS);
        return KV_ERR_CONFIG;
    }
    if (aid_index != NULL)
        *aid_index = (size_t)(a - c->aids);
    return set_aid(a, key, value, why, why_cap);
}

/* see terminal.h */
int kv_term_config_check(const kv_term_config *c, size_t *bad_index, char *why, size_t why_cap)
{
    for (size_t i = 0; i < c->naids; i++) {
        const kv_aid_config *a = &c->aids[i];
        if (a->max_target_percent < a->target_percent) {
            *bad_index = i;
            kv_errf(why, why_cap, "%u is below target_percent %u", a->max_target_percent,
                    a->target_percent);
            return KV_ERR_CONFIG;
        }
    }
    return 0;
}

/* see pay_cli.h */
#include "src/cli/pay_cli.h"
#include "src/app/app.h"
#include "src/app/settings.h"
#include "hsm/pin.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/cli/cli.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int kv_pay_usage(const char *group, const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "kortvagt %s%s%s: ", group, cmd ? " " : "", cmd ? cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'kortvagt %s --help'.\n", group);
    return KV_EXIT_USAGE;
}

int kv_pay_require(const char *group, const char *cmd, const char *name, const char *v)
{
    if (v == NULL)
        return kv_pay_usage(group, cmd, "missing --%s", name);
    return KV_EXIT_OK;
}

/* Match "--name" or "--name=value"; *inline_value points past '=' when present. */
static int opt_match(const char *arg, const char *name, const char **inline_value)
{
    size_t n = strlen(name);

    *inline_value = NULL;
    if (strncmp(arg, "--", 2) != 0 || strncmp(arg + 2, name, n) != 0)
        return 0;
    if (arg[2 + n] == '\0')
        return 1;
    if (arg[2 + n] == '=') {
        *inline_value = arg + 3 + n;
        return 1;
    }
    return 0;
}

int kv_pay_parse(const char *group, const char *cmd, int argc, char **argv, int first,
                 const struct kv_pay_opt *opts, struct kv_pay_common *c)
{
    const struct kv_pay_opt common[] = {
        {"key", &c->key, NULL},   {"token", &c->token, NULL}, {"module", &c->module, NULL},
        {"json", NULL, &c->json}, {"help", NULL, &c->help},   {NULL, NULL, NULL},
    };
    const struct kv_pay_opt *sets[2] = {common, opts};

    memset(c, 0, sizeof(*c));
    for (int i = first; i < argc; i++) {
        const char *arg = argv[i], *iv = NULL;
        const struct kv_pay_opt *hit = NULL;

        if (strcmp(arg, "-h") == 0) {
            c->help = 1;
            continue;
        }
        for (int s = 0; s < 2 && hit == NULL; s++)
            for (const struct kv_pay_opt *o = sets[s]; o != NULL && o->name != NULL; o++)
                if (opt_match(arg, o->name, &iv)) {
                    hit = o;
                    break;
                }
        if (hit == NULL) {
            if (strncmp(arg, "--", 2) == 0)
                return kv_pay_usage(group, cmd, "unknown option '%s'", arg);
            return kv_pay_usage(group, cmd, "unexpected argument '%s'", arg);
        }
        if (hit->flag != NULL) {
            if (iv != NULL)
                return kv_pay_usage(group, cmd, "--%s takes no value", hit->name);
            *hit->flag = 1;
            continue;
        }
        if (iv == NULL) {
            if (i + 1 >= argc)
                return kv_pay_usage(group, cmd, "--%s needs a value", hit->name);
            iv = argv[++i];
        }
        if (*hit->value != NULL)
            return kv_pay_usage(group, cmd, "--%s given twice", hit->name);
        *hit->value = iv;
    }
    return KV_EXIT_OK;
}

int kv_pay_hex(const char *group, const char *cmd, const char *name, const char *v, uint8_t *out,
               size_t min, size_t max, size_t *n)
{
    size_t digits = 0;
    int got;

    if (v == NULL)
        return kv_pay_usage(group, cmd, "missing --%s", name);
    for (size_t i = 0; v[i] != '\0'; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (isspace(ch))
            continue;
        if (!isxdigit(ch)) {
            if (isprint(ch))
                return kv_pay_usage(group, cmd, "--%s: '%c' at position %zu is not a hex digit",
                                    name, ch, i + 1);
            return kv_pay_usage(group, cmd, "--%s: byte 0x%02X at position %zu is not a hex digit",
                                name, ch, i + 1);
        }
        digits++;
    }
    if (digits % 2 != 0)
        return kv_pay_usage(group, cmd, "--%s: odd number of hex digits (%zu)", name, digits);
    if (digits / 2 < min || digits / 2 > max) {
        if (min == max)
            return kv_pay_usage(group, cmd, "--%s must be %zu bytes (%zu hex digits), got %zu",
                                name, min, 2 * min, digits / 2);
        return kv_pay_usage(group, cmd, "--%s must be %zu to %zu bytes, got %zu", name, min, max,
                            digits / 2);
    }
    if ((got = kv_hex_decode(v, out, max)) < 0)
        return kv_pay_usage(group, cmd, "--%s: %s", name, kv_strerror(got));
    if (n != NULL)
        *n = (size_t)got;
    return KV_EXIT_OK;
}

int kv_pay_digits(const char *group, const char *cmd, const char *name, const char *v, size_t min,
                  size_t max)
{
    size_t n;

    if (v == NULL)
        return kv_pay_usage(group, cmd, "missing --%s", name);
    n = strlen(v);
    for (size_t i = 0; i < n; i++)
        if (v[i] < '0' || v[i] > '9')
            return kv_pay_usage(group, cmd, "--%s must be decimal digits ('%c' at position %zu)",
                                name, isprint((unsigned char)v[i]) ? v[i] : '?', i + 1);
    if (n < min || n > max) {
        if (min == max)
            return kv_pay_usage(group, cmd, "--%s must be %zu digits, got %zu", name, min, n);
        return kv_pay_usage(group, cmd, "--%s must be %zu to %zu digits, got %zu", name, min, max,
                            n);
    }
    return KV_EXIT_OK;
}

int kv_pay_pan(const char *group, const char *cmd, const char *v)
{
    return kv_pay_digits(group, cmd, "pan", v, 1, 19);
}

int kv_pay_open(const char *group, const char *cmd, const struct kv_pay_common *c, kv_hsm **h)
{
    kv_settings_flags sf = {.module = c->module, .token = c->token};
    kv_settings s;
    char err[256] = "";
    int r;

    kv_disable_core_dumps();
    if ((r = kv_settings_init(&s, &sf, err, sizeof(err))) == 0)
        r = kv_app_hsm_open(&s, h);
    kv_settings_clear(&s);
    if (r != 0) {
        const char *why = err[0] != '\0' ? err : kv_hsm_last_error(NULL);
        fprintf(stderr, "kortvagt %s %s: cannot open the HSM token: %s\n", group, cmd,
                why != NULL && why[0] != '\0' ? why : kv_strerror(r));
        *h = NULL;
        return kv_exit_code(r);
    }
    return KV_EXIT_OK;
}

int kv_pay_key(const char *group, const char *cmd, kv_hsm *h, const char *name, unsigned want,
               kv_hsm_key *key)
{
    int r, ok;

    if ((r = kv_hsm_key_find(h, name, key)) != 0) {
        const char *why = kv_hsm_last_error(h);
        if (r == KV_ERR_HSM_KEY)
            fprintf(stderr, "kortvagt %s %s: key '%s' not found on the token%s%s\n", group, cmd,
                    name, why[0] ? ": " : "", why);
        else
            fprintf(stderr, "kortvagt %s %s: key '%s': %s\n", group, cmd, name,
                    why[0] ? why : kv_strerror(r));
        return kv_exit_code(r);
    }
    ok = ((want & KV_PAY_WANT_DES) && (key->type == KV_KEY_DES2 || key->type == KV_KEY_DES3)) ||
         ((want & KV_PAY_WANT_DES2_AA) && key->type == KV_KEY_DES2 && key->companion != 0) ||
         ((want & KV_PAY_WANT_AES) &&
          (key->type == KV_KEY_AES128 || key->type == KV_KEY_AES192 || key->type == KV_KEY_AES256));
    if (!ok) {
        if ((want & KV_PAY_WANT_DES2_AA) && key->type == KV_KEY_DES2)
            fprintf(stderr,
                    "kortvagt %s %s: key '%s' has no A||A companion ('%s.aa'); import it with "
                    "'kortvagt key import --type des2 --usage cvk|mac|imk'\n",
                    group, cmd, name, name);
        else
            fprintf(stderr, "kortvagt %s %s: key '%s' is of the wrong type: need %s\n", group, cmd,
                    name,
                    want == KV_PAY_WANT_AES ? "an AES key"
                    : want == KV_PAY_WANT_DES2_AA
                        ? "a double-length DES key (des2) with its A||A companion"
                        : "a DES key (des2 or des3)");
        return KV_EXIT_HSM;
    }
    return KV_EXIT_OK;
}

int kv_pay_read_pin(const char *group, const char *cmd, kv_secbuf **buf, size_t *len)
{
    kv_secbuf *b = NULL;
    const char *p;
    int n, rc = KV_EXIT_INTERNAL;
    size_t i;

    *buf = NULL;
    *len = 0;
    kv_disable_core_dumps();
    if ((b = kv_secbuf_new(64)) == NULL) {
        rc = kv_cli_fail(KV_ERR_NOMEM, "cannot allocate locked memory for the PIN");
        goto out;
    }
    if ((n = kv_secret_read_line(STDIN_FILENO, "PIN: ", b)) < 0) {
        if (n == KV_ERR_NOT_FOUND)
            rc = kv_pay_usage(group, cmd, "no PIN on standard input (give it as one line)");
        else if (n == KV_ERR_BUFFER)
            rc = kv_pay_usage(group, cmd, "the PIN must be 4 to 12 digits (the line is longer)");
        else
            rc = kv_pay_fail(group, cmd, NULL, n, "reading the PIN from standard input");
        goto out;
    }
    p = (const char *)kv_secbuf_ptr(b);
    /* a trailing CR from a Windows-style line is not part of the PIN */
    if (n > 0 && p[n - 1] == '\r')
        kv_secbuf_ptr(b)[--n] = '\0';
    for (i = 0; i < (size_t)n; i++)
        if (p[i] < '0' || p[i] > '9')
            break;
    if (i < (size_t)n) {
        rc = kv_pay_usage(group, cmd, "the PIN must be decimal digits only (character %zu is not)",
                          i + 1);
        goto out;
    }
    if (n < KV_PIN_MIN || n > KV_PIN_MAX) {
        rc = kv_pay_usage(group, cmd, "the PIN must be 4 to 12 digits, got %d", n);
        goto out;
    }
    *buf = b;
    b = NULL; /* transferred */
    *len = (size_t)n;
    rc = KV_EXIT_OK;
out:
    kv_secbuf_free(b);
    return rc;
}

int kv_pay_fail(const char *group, const char *cmd, kv_hsm *h, int err, const char *what)
{
    const char *why = h != NULL ? kv_hsm_last_error(h) : "";

    if (err <= -400 && err > -500 && why != NULL && why[0] != '\0')
        fprintf(stderr, "kortvagt %s %s: %s: %s\n", group, cmd, what, why);
    else
        fprintf(stderr, "kortvagt %s %s: %s: %s\n", group, cmd, what, kv_strerror(err));
    return kv_exit_code(err);
}

int kv_pay_json(json_t *obj)
{
    char *s;

    if (obj == NULL)
        return KV_EXIT_INTERNAL;
    s = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (s == NULL)
        return KV_EXIT_INTERNAL;
    printf("%s\n", s);
    free(s);
    return KV_EXIT_OK;
}

int kv_pay_verdict(const struct kv_pay_common *c, int match, json_t *extra)
{
    int rc = match ? KV_EXIT_OK : KV_EXIT_MISMATCH;

    if (c->json) {
        json_t *o = extra != NULL ? extra : json_object();
        json_object_set_new(o, "result", json_string(match ? "match" : "mismatch"));
        if (kv_pay_json(o) != KV_EXIT_OK)
            return KV_EXIT_INTERNAL;
        return rc;
    }
    json_decref(extra);
    printf("%s\n", match ? "match" : "mismatch");
    return rc;
}

json_t *kv_pay_json_hex(const uint8_t *p, size_t len)
{
    char buf[2 * 64 + 1];

    if (len > 64)
        return NULL;
    kv_hex_encode(p, len, buf);
    return json_string(buf);
}

json_t *kv_pay_json_pan(const char *pan)
{
    char masked[32];

    if (strlen(pan) >= sizeof(masked))
        return json_null();
    kv_pan_mask(pan, masked);
    return json_string(masked);
}

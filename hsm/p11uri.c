/* see p11uri.h */
#include "hsm/p11uri.h"
#include "src/base/hex.h"
#include "src/base/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * Percent-decode s[0..n) into out (capacity cap). Returns the decoded length
 * or -1 (bad escape) / -2 (does not fit).
 */
static long pct_decode(const char *s, size_t n, uint8_t *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = (uint8_t)s[i];
        if (s[i] == '%') {
            int hi, lo;
            if (n - i < 3 || (hi = kv_hex_digit(s[i + 1])) < 0 || (lo = kv_hex_digit(s[i + 2])) < 0)
                return -1;
            b = (uint8_t)(hi << 4 | lo);
            i += 2;
        }
        if (o >= cap)
            return -2;
        out[o++] = b;
    }
    return (long)o;
}

enum kind { TEXT, BYTES, ULONG, IGNORED, REFUSED };

struct attr {
    const char *name;
    enum kind kind;
    size_t field;  /* offsetof the value in kv_p11uri */
    size_t cap;    /* capacity of the value field */
    unsigned flag; /* bit for "seen" / has_* */
};

#define F(m) offsetof(kv_p11uri, m), sizeof(((kv_p11uri *)0)->m)

static const struct attr path_attrs[] = {
    {"token", TEXT, F(token), 1u << 0},
    {"manufacturer", TEXT, F(manufacturer), 1u << 1},
    {"serial", TEXT, F(serial), 1u << 2},
    {"model", TEXT, F(model), 1u << 3},
    {"object", TEXT, F(object), 1u << 4},
    {"id", BYTES, F(id), 1u << 5},
    {"type", TEXT, F(type), 1u << 6},
    {"slot-id", ULONG, F(slot_id), 1u << 7},
    {"library-manufacturer", IGNORED, 0, 0, 1u << 8},
    {"library-description", IGNORED, 0, 0, 1u << 9},
    {"library-version", IGNORED, 0, 0, 1u << 10},
    {"slot-description", IGNORED, 0, 0, 1u << 11},
    {"slot-manufacturer", IGNORED, 0, 0, 1u << 12},
};

static const struct attr query_attrs[] = {
    {"module-path", TEXT, F(module_path), 1u << 13},
    {"module-name", IGNORED, 0, 0, 1u << 14},
    {"pin-value", REFUSED, 0, 0, 1u << 15},
    {"pin-source", REFUSED, 0, 0, 1u << 16},
};

static void set_has(kv_p11uri *u, unsigned flag)
{
    switch (flag) {
    case 1u << 0:
        u->has_token = 1;
        break;
    case 1u << 1:
        u->has_manufacturer = 1;
        break;
    case 1u << 2:
        u->has_serial = 1;
        break;
    case 1u << 3:
        u->has_model = 1;
        break;
    case 1u << 4:
        u->has_object = 1;
        break;
    case 1u << 5:
        u->has_id = 1;
        break;
    case 1u << 6:
        u->has_type = 1;
        break;
    case 1u << 7:
        u->has_slot_id = 1;
        break;
    case 1u << 13:
        u->has_module_path = 1;
        break;
    default:
        break;
    }
}

/* One "name=value" of length n at s, from table t. */
static int parse_attr(kv_p11uri *u, const char *s, size_t n, const struct attr *t, size_t nt,
                      unsigned *seen, char *why, size_t why_cap)
{
    const char *eq = memchr(s, '=', n);
    const struct attr *a = NULL;
    size_t name_len, vlen;
    const char *v;
    uint8_t buf[600];
    long got;

    if (eq == NULL) {
        kv_errf(why, why_cap, "attribute without '=' in pkcs11: URI");
        return KV_ERR_FORMAT;
    }
    name_len = (size_t)(eq - s);
    v = eq + 1;
    vlen = n - name_len - 1;
    for (size_t i = 0; i < nt; i++)
        if (strlen(t[i].name) == name_len && memcmp(t[i].name, s, name_len) == 0)
            a = &t[i];
    if (a == NULL) {
        if (name_len >= 2 && memcmp(s, "x-", 2) == 0)
            return 0; /* vendor attribute: RFC 7512 §2.3 lets consumers ignore it */
        kv_errf(why, why_cap, "unknown attribute '%.*s' in pkcs11: URI",
                (int)(name_len > 40 ? 40 : name_len), s);
        return KV_ERR_FORMAT;
    }
    if (*seen & a->flag) {
        kv_errf(why, why_cap, "attribute '%s' appears twice in pkcs11: URI", a->name);
        return KV_ERR_FORMAT;
    }
    *seen |= a->flag;
    if (a->kind == REFUSED) {
        kv_errf(why, why_cap,
                "'%s' is not accepted in a pkcs11: URI: give the PIN in $KORTVAGT_PIN, "
                "$KORTVAGT_PIN_FILE or on stdin",
                a->name);
        return KV_ERR_ARG;
    }
    if (a->kind == IGNORED)
        return 0;
    got = pct_decode(v, vlen, buf, sizeof(buf));
    if (got == -1) {
        kv_errf(why, why_cap, "bad percent escape in '%s' of pkcs11: URI", a->name);
        return KV_ERR_FORMAT;
    }
    if (got == -2) {
        kv_errf(why, why_cap, "'%s' too long in pkcs11: URI", a->name);
        return KV_ERR_FORMAT;
    }
    if (a->kind == BYTES) {
        if ((size_t)got > a->cap) {
            kv_errf(why, why_cap, "'%s' too long in pkcs11: URI (at most %zu bytes)", a->name,
                    a->cap);
            return KV_ERR_FORMAT;
        }
        memcpy((uint8_t *)u + a->field, buf, (size_t)got);
        u->id_len = (size_t)got;
    } else if (a->kind == TEXT) {
        if (memchr(buf, 0, (size_t)got) != NULL) {
            kv_errf(why, why_cap, "NUL byte in '%s' of pkcs11: URI", a->name);
            return KV_ERR_FORMAT;
        }
        if ((size_t)got + 1 > a->cap) {
            kv_errf(why, why_cap, "'%s' too long in pkcs11: URI (at most %zu characters)", a->name,
                    a->cap - 1);
            return KV_ERR_FORMAT;
        }
        memcpy((char *)u + a->field, buf, (size_t)got);
        ((char *)u + a->field)[got] = '\0';
    } else { /* ULONG */
        unsigned long val = 0;
        if (got == 0) {
            kv_errf(why, why_cap, "empty '%s' in pkcs11: URI", a->name);
            return KV_ERR_FORMAT;
        }
        for (long i = 0; i < got; i++) {
            if (buf[i] < '0' || buf[i] > '9' || val > (~0UL - 9) / 10) {
                kv_errf(why, why_cap, "'%s' in pkcs11: URI is not a decimal number", a->name);
                return KV_ERR_FORMAT;
            }
            val = val * 10 + (unsigned long)(buf[i] - '0');
        }
        u->slot_id = val;
    }
    set_has(u, a->flag);
    return 0;
}

int kv_p11uri_is_uri(const char *s)
{
    return s != NULL && strncasecmp(s, "pkcs11:", 7) == 0;
}

int kv_p11uri_parse(const char *uri, kv_p11uri *out, char *why, size_t why_cap)
{
    const char *p, *query;
    size_t plen;
    unsigned seen = 0;
    int r = KV_ERR_FORMAT;

    memset(out, 0, sizeof(*out));
    if (why != NULL && why_cap > 0)
        why[0] = '\0';
    if (!kv_p11uri_is_uri(uri)) {
        kv_errf(why, why_cap, "not a pkcs11: URI");
        goto out;
    }
    p = uri + 7;
    query = strchr(p, '?');
    plen = query != NULL ? (size_t)(query - p) : strlen(p);
    /* path: attr (';' attr)* -- empty path is allowed ("pkcs11:") */
    while (plen > 0) {
        const char *semi = memchr(p, ';', plen);
        size_t n = semi != NULL ? (size_t)(semi - p) : plen;
        if (n == 0) {
            kv_errf(why, why_cap, "empty attribute in pkcs11: URI");
            goto out;
        }
        if ((r = parse_attr(out, p, n, path_attrs, sizeof(path_attrs) / sizeof(path_attrs[0]),
                            &seen, why, why_cap)) != 0)
            goto out;
        r = KV_ERR_FORMAT;
        if (semi == NULL)
            break;
        p = semi + 1;
        plen -= n + 1;
        if (plen == 0) {
            kv_errf(why, why_cap, "empty attribute in pkcs11: URI");
            goto out;
        }
    }
    if (query != NULL) {
        p = query + 1;
        plen = strlen(p);
        while (plen > 0) {
            const char *amp = memchr(p, '&', plen);
            size_t n = amp != NULL ? (size_t)(amp - p) : plen;
            if (n == 0) {
                kv_errf(why, why_cap, "empty query attribute in pkcs11: URI");
                goto out;
            }
            if ((r = parse_attr(out, p, n, query_attrs,
                                sizeof(query_attrs) / sizeof(query_attrs[0]), &seen, why,
                                why_cap)) != 0)
                goto out;
            r = KV_ERR_FORMAT;
            if (amp == NULL)
                break;
            p = amp + 1;
            plen -= n + 1;
        }
    }
    r = 0;
out:
    if (r != 0) {
        /* never leave half a parse behind */
        memset(out, 0, sizeof(*out));
    }
    return r;
}

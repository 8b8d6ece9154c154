/* see request.h */
#include "src/authorize/request.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/base/secure.h"
#include "src/base/caltime.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    char *err;
    size_t errlen;
} ectx;

static int fail(ectx *e, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(ectx *e, const char *path, const char *fmt, ...)
{
    va_list ap;
    size_t n;
    if (e->err != NULL && e->errlen > 0) {
        snprintf(e->err, e->errlen, "%s: ", path);
        n = strlen(e->err);
        va_start(ap, fmt);
        vsnprintf(e->err + n, e->errlen - n, fmt, ap);
        va_end(ap);
    }
    return KV_ERR_JSON;
}

static void join(char *out, size_t cap, const char *path, const char *key)
{
    if (path[0] == '\0')
        snprintf(out, cap, "%s", key);
    else
        snprintf(out, cap, "%s.%s", path, key);
}

/* Every member of obj must be in allowed (NULL-terminated). */
static int check_keys(ectx *e, const json_t *obj, const char *path, const char *const *allowed)
{
    const char *k;
    json_t *v;
    char p[96];
    json_object_foreach((json_t *)obj, k, v)
    {
        int ok = 0;
        (void)v;
        for (const char *const *a = allowed; *a != NULL; a++)
            if (strcmp(k, *a) == 0)
                ok = 1;
        if (!ok) {
            join(p, sizeof(p), path, k);
            return fail(e, p, "unknown field");
        }
    }
    return 0;
}

/* Member key of obj, or NULL (missing is an error when required). */
static int member(ectx *e, const json_t *obj, const char *path, const char *key, int required,
                  json_t **out)
{
    char p[96];
    *out = json_object_get(obj, key);
    if (*out == NULL && required) {
        join(p, sizeof(p), path, key);
        return fail(e, p, "missing required field");
    }
    return 0;
}

/* A string member of length min..cap-1; *present says whether it was there. */
static int get_str(ectx *e, const json_t *obj, const char *path, const char *key, int required,
                   size_t min, char *out, size_t cap, int *present)
{
    json_t *v;
    char p[96];
    size_t n;
    int r;
    if (present != NULL)
        *present = 0;
    if ((r = member(e, obj, path, key, required, &v)) != 0 || v == NULL)
        return r;
    join(p, sizeof(p), path, key);
    if (!json_is_string(v))
        return fail(e, p, "must be a string");
    n = json_string_length(v);
    if (n < min || n >= cap)
        return fail(e, p, "length must be %zu..%zu", min, cap - 1);
    if (memchr(json_string_value(v), '\0', n) != NULL)
        return fail(e, p, "contains a NUL character");
    memcpy(out, json_string_value(v), n + 1);
    if (present != NULL)
        *present = 1;
    return 0;
}

static int get_digits(ectx *e, const json_t *obj, const char *path, const char *key, int required,
                      size_t min, size_t max, char *out, size_t cap, int *present)
{
    int r, here = 0;
    char p[96];
    if ((r = get_str(e, obj, path, key, required, min, out, cap, &here)) != 0)
        return r;
    if (present != NULL)
        *present = here;
    if (here && !kv_is_digits(out, min, max)) {
        join(p, sizeof(p), path, key);
        return fail(e, p, "must be %zu..%zu decimal digits", min, max);
    }
    return 0;
}

static int get_int(ectx *e, const json_t *obj, const char *path, const char *key, int required,
                   int64_t min, int64_t max, int64_t *out, int *present)
{
    json_t *v;
    char p[96];
    int r;
    if (present != NULL)
        *present = 0;
    if ((r = member(e, obj, path, key, required, &v)) != 0 || v == NULL)
        return r;
    join(p, sizeof(p), path, key);
    if (!json_is_integer(v))
        return fail(e, p, "must be an integer");
    if (json_integer_value(v) < min || json_integer_value(v) > max)
        return fail(e, p, "must be %lld..%lld", (long long)min, (long long)max);
    *out = (int64_t)json_integer_value(v);
    if (present != NULL)
        *present = 1;
    return 0;
}

static int get_bool(ectx *e, const json_t *obj, const char *path, const char *key, int required,
                    int *out, int *present)
{
    json_t *v;
    char p[96];
    int r;
    if (present != NULL)
        *present = 0;
    if ((r = member(e, obj, path, key, required, &v)) != 0 || v == NULL)
        return r;
    if (!json_is_boolean(v)) {
        join(p, sizeof(p), path, key);
        return fail(e, p, "must be true or false");
    }
    *out = json_is_true(v);
    if (present != NULL)
        *present = 1;
    return 0;
}

/* Hex text of exactly want bytes, or of min..cap bytes when want is 0. */
static int get_hex(ectx *e, const json_t *obj, const char *path, const char *key, int required,
                   size_t want, size_t min, uint8_t *out, size_t cap, size_t *len, int *present)
{
    char text[2 * KV_AC_DATA_MAX + 1];
    char p[96];
    int r, here = 0, n;
    if (present != NULL)
        *present = 0;
    if ((r = get_str(e, obj, path, key, required, 1, text, sizeof(text), &here)) != 0 || !here)
        return r;
    join(p, sizeof(p), path, key);
    for (const char *c = text; *c != '\0'; c++)
        if (*c == ' ')
            return fail(e, p, "must be hex digits without spaces");
    n = kv_hex_decode(text, out, cap);
    kv_wipe(text, sizeof(text));
    if (n < 0)
        return fail(e, p, "must be hex (an even number of 0-9 A-F)");
    if (want != 0 && (size_t)n != want)
        return fail(e, p, "must be %zu bytes (%zu hex digits)", want, 2 * want);
    if (want == 0 && (size_t)n < min)
        return fail(e, p, "must be at least %zu bytes", min);
    if (len != NULL)
        *len = (size_t)n;
    if (present != NULL)
        *present = 1;
    return 0;
}

static int is_hexdigit(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
}

static const char *const upstream_keys[] = {"type", "verified", "bound_amount", "bound_payee",
                                            NULL};
static const char *const pin_online_keys[] = {
    "type", "bound_amount", "bound_payee", "pin_block", "format",    "pin_key", "pvk",
    "pvki", "pvv",          "offset",      "vdata",     "dec_table", "pad",     NULL};
static const char *const chip_keys[] = {"type", "bound_amount", "bound_payee", "imk", "cvn",
                                        "arqc", "data",         "atc",         "un",  NULL};
static const char *const cvc3_keys[] = {"type", "bound_amount", "bound_payee", "imk", "atc",
                                        "un",   "track",        "value",       NULL};
static const char *const cvc2_keys[] = {"type", "bound_amount", "bound_payee",
                                        "cvk",  "value",        NULL};

static int decode_pin_online(ectx *e, const json_t *o, const char *p, kv_auth_factor *f)
{
    int64_t v;
    int r, has_pvv = 0, has_offset = 0, has_pvki = 0, has_vdata = 0, has_pad = 0;
    char pad[2], q[96];

    if ((r = get_int(e, o, p, "format", 1, 0, 4, &v, NULL)) != 0)
        return r;
    if (v == 2) {
        join(q, sizeof(q), p, "format");
        return fail(e, q, "must be 0, 1, 3 or 4");
    }
    f->pin_format = (int)v;
    if ((r = get_hex(e, o, p, "pin_block", 1, f->pin_format == 4 ? 16 : 8, 0, f->pin_block,
                     sizeof(f->pin_block), &f->pin_block_len, NULL)) != 0)
        return r;
    if ((r = get_str(e, o, p, "pin_key", 1, 1, f->pin_key, sizeof(f->pin_key), NULL)) != 0 ||
        (r = get_str(e, o, p, "pvk", 1, 1, f->pvk, sizeof(f->pvk), NULL)) != 0)
        return r;
    if ((r = get_digits(e, o, p, "pvv", 0, 4, 4, f->pvv, sizeof(f->pvv), &has_pvv)) != 0 ||
        (r = get_int(e, o, p, "pvki", 0, 0, 9, &v, &has_pvki)) != 0)
        return r;
    f->pvki = has_pvki ? (int)v : 0;
    if ((r = get_digits(e, o, p, "offset", 0, 4, 12, f->offset, sizeof(f->offset), &has_offset)) !=
        0)
        return r;
    if (has_pvv == has_offset) {
        join(q, sizeof(q), p, "pvv");
        return fail(e, q, "give either pvv (Visa PVV) or offset (IBM 3624), not %s",
                    has_pvv ? "both" : "neither");
    }
    f->ibm3624 = has_offset;
    if (has_pvv && !has_pvki) {
        join(q, sizeof(q), p, "pvki");
        return fail(e, q, "missing required field (with pvv)");
    }
    if (has_offset) {
        if ((r = get_str(e, o, p, "vdata", 1, 1, f->vdata, sizeof(f->vdata), &has_vdata)) != 0)
            return r;
        for (const char *c = f->vdata; *c != '\0'; c++) {
            if (!is_hexdigit(*c)) {
                join(q, sizeof(q), p, "vdata");
                return fail(e, q, "must be 1..16 hex digits");
            }
        }
        snprintf(f->dec_table, sizeof(f->dec_table), "0123456789012345");
        if ((r = get_digits(e, o, p, "dec_table", 0, 16, 16, f->dec_table, sizeof(f->dec_table),
                            NULL)) != 0)
            return r;
        f->pad = 'F';
        if ((r = get_str(e, o, p, "pad", 0, 1, pad, sizeof(pad), &has_pad)) != 0)
            return r;
        if (has_pad) {
            if (!is_hexdigit(pad[0])) {
                join(q, sizeof(q), p, "pad");
                return fail(e, q, "must be one hex digit");
            }
            f->pad = pad[0];
        }
    } else {
        static const char *const ibm_only[] = {"vdata", "dec_table", "pad"};
        for (size_t i = 0; i < 3; i++) {
            if (json_object_get(o, ibm_only[i]) != NULL) {
                join(q, sizeof(q), p, ibm_only[i]);
                return fail(e, q, "only with offset (IBM 3624)");
            }
        }
    }
    return 0;
}

static int decode_factor(ectx *e, const json_t *o, const char *p, kv_auth_factor *f)
{
    char type[32], q[96];
    int r, has_verified, has_amount, has_payee;
    const char *const *keys;

    if (!json_is_object(o))
        return fail(e, p, "must be an object");
    if ((r = get_str(e, o, p, "type", 1, 1, type, sizeof(type), NULL)) != 0)
        return r;
    if (kv_sca_factor_parse(type, &f->type) != 0) {
        join(q, sizeof(q), p, "type");
        return fail(e, q, "unknown factor type '%s'", type);
    }
    has_verified = json_object_get(o, "verified") != NULL;
    f->upstream = has_verified || !kv_sca_factor_hsm_capable(f->type);
    if (f->upstream) {
        keys = upstream_keys;
    } else {
        switch (f->type) {
        case KV_FACTOR_PIN_ONLINE:
            keys = pin_online_keys;
            break;
        case KV_FACTOR_CHIP_CRYPTOGRAM:
            keys = chip_keys;
            break;
        case KV_FACTOR_CVC3:
            keys = cvc3_keys;
            break;
        default:
            keys = cvc2_keys;
            break;
        }
    }
    if ((r = check_keys(e, o, p, keys)) != 0) {
        if (has_verified && kv_sca_factor_hsm_capable(f->type))
            fail(e, p, "%s has 'verified' and key material: give one or the other", type);
        return r;
    }
    if ((r = get_int(e, o, p, "bound_amount", 0, 0, INT64_C(1000000000000000), &f->bound_amount,
                     &has_amount)) != 0 ||
        (r = get_str(e, o, p, "bound_payee", 0, 0, f->bound_payee, sizeof(f->bound_payee),
                     &has_payee)) != 0)
        return r;
    if (has_amount != has_payee) {
        join(q, sizeof(q), p, has_amount ? "bound_payee" : "bound_amount");
        return fail(e, q, "missing (bound_amount and bound_payee go together)");
    }
    f->has_binding = has_amount;
    if (f->upstream)
        return get_bool(e, o, p, "verified", 1, &f->verified, NULL);

    switch (f->type) {
    case KV_FACTOR_PIN_ONLINE:
        return decode_pin_online(e, o, p, f);
    case KV_FACTOR_CHIP_CRYPTOGRAM: {
        int64_t cvn;
        if ((r = get_str(e, o, p, "imk", 1, 1, f->imk, sizeof(f->imk), NULL)) != 0 ||
            (r = get_int(e, o, p, "cvn", 1, 0, 255, &cvn, NULL)) != 0 ||
            (r = get_hex(e, o, p, "arqc", 1, 8, 0, f->arqc, sizeof(f->arqc), NULL, NULL)) != 0 ||
            (r = get_hex(e, o, p, "data", 1, 0, 1, f->data, sizeof(f->data), &f->data_len, NULL)) !=
                0 ||
            (r = get_hex(e, o, p, "atc", 1, 2, 0, f->atc, sizeof(f->atc), NULL, NULL)) != 0 ||
            (r = get_hex(e, o, p, "un", 0, 4, 0, f->un, sizeof(f->un), NULL, &f->has_un)) != 0)
            return r;
        f->cvn = (int)cvn;
        return 0;
    }
    case KV_FACTOR_CVC3:
        if ((r = get_str(e, o, p, "imk", 1, 1, f->imk, sizeof(f->imk), NULL)) != 0 ||
            (r = get_hex(e, o, p, "atc", 1, 2, 0, f->atc, sizeof(f->atc), NULL, NULL)) != 0 ||
            (r = get_hex(e, o, p, "un", 1, 4, 0, f->un, sizeof(f->un), NULL, &f->has_un)) != 0 ||
            (r = get_hex(e, o, p, "track", 1, 0, 1, f->track, sizeof(f->track), &f->track_len,
                         NULL)) != 0)
            return r;
        return get_digits(e, o, p, "value", 1, 1, 5, f->value, sizeof(f->value), NULL);
    default: /* cvc2 */
        if ((r = get_str(e, o, p, "cvk", 1, 1, f->cvk, sizeof(f->cvk), NULL)) != 0)
            return r;
        return get_digits(e, o, p, "value", 1, 3, 3, f->value, sizeof(f->value), NULL);
    }
}

static const char *const top_keys[] = {"card",    "at",        "channel",
                                       "amount",  "currency",  "merchant",
                                       "factors", "recurring", "trusted_beneficiary",
                                       NULL};
static const char *const card_keys[] = {"pan", "expiry", "psn", NULL};
static const char *const merchant_keys[] = {"name", "mcc", "country", NULL};
static const char *const recurring_keys[] = {"series", "first", NULL};

int kv_auth_request_from_json(const json_t *j, kv_auth_request *out, char *err, size_t errlen)
{
    ectx e = {err, errlen};
    int r = KV_ERR_JSON, here = 0;
    json_t *card, *merchant, *factors, *rec;
    char text[64], p[32];

    memset(out, 0, sizeof(*out));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (!json_is_object(j)) {
        r = fail(&e, "request", "must be a JSON object");
        goto out;
    }
    if ((r = check_keys(&e, j, "", top_keys)) != 0)
        goto out;

    if ((r = member(&e, j, "", "card", 1, &card)) != 0)
        goto out;
    if (!json_is_object(card)) {
        r = fail(&e, "card", "must be an object");
        goto out;
    }
    if ((r = check_keys(&e, card, "card", card_keys)) != 0 ||
        (r = get_digits(&e, card, "card", "pan", 1, 12, 19, out->pan, sizeof(out->pan), NULL)) !=
            0 ||
        (r = get_digits(&e, card, "card", "expiry", 1, 4, 4, out->expiry, sizeof(out->expiry),
                        NULL)) != 0 ||
        (r = get_digits(&e, card, "card", "psn", 0, 2, 2, out->psn, sizeof(out->psn), NULL)) != 0)
        goto out;
    if (kv_card_expired(out->expiry, 0) < 0) {
        r = fail(&e, "card.expiry", "must be YYMM with a month 01..12");
        goto out;
    }

    if ((r = get_str(&e, j, "", "at", 0, 1, text, sizeof(text), &out->has_at)) != 0)
        goto out;
    if (out->has_at && kv_time_parse(text, &out->at) != 0) {
        r = fail(&e, "at", "must be an RFC 3339 time such as 2026-03-01T10:00:00Z");
        goto out;
    }
    if ((r = get_str(&e, j, "", "channel", 1, 1, text, sizeof(text), NULL)) != 0)
        goto out;
    if (kv_channel_parse(text, &out->channel) != 0) {
        r = fail(&e, "channel",
                 "unknown channel '%s' (contact, contactless, ecommerce, moto, atm, "
                 "unattended_transport, unattended_parking, wallet)",
                 text);
        goto out;
    }
    if ((r = get_int(&e, j, "", "amount", 1, 0, INT64_C(1000000000000000), &out->amount, NULL)) !=
            0 ||
        (r = get_str(&e, j, "", "currency", 1, 3, out->currency, sizeof(out->currency), NULL)) != 0)
        goto out;
    for (int i = 0; i < 3; i++) {
        if (out->currency[i] < 'A' || out->currency[i] > 'Z') {
            r = fail(&e, "currency", "must be an ISO 4217 code such as DKK");
            goto out;
        }
    }

    if ((r = member(&e, j, "", "merchant", 1, &merchant)) != 0)
        goto out;
    if (!json_is_object(merchant)) {
        r = fail(&e, "merchant", "must be an object");
        goto out;
    }
    if ((r = check_keys(&e, merchant, "merchant", merchant_keys)) != 0 ||
        (r = get_str(&e, merchant, "merchant", "name", 1, 1, out->merchant_name,
                     sizeof(out->merchant_name), NULL)) != 0 ||
        (r = get_digits(&e, merchant, "merchant", "mcc", 1, 4, 4, out->mcc, sizeof(out->mcc),
                        NULL)) != 0 ||
        (r = get_str(&e, merchant, "merchant", "country", 0, 2, out->country, sizeof(out->country),
                     NULL)) != 0)
        goto out;

    if ((r = member(&e, j, "", "factors", 0, &factors)) != 0)
        goto out;
    if (factors != NULL) {
        if (!json_is_array(factors)) {
            r = fail(&e, "factors", "must be an array");
            goto out;
        }
        if (json_array_size(factors) > KV_REQ_MAX_FACTORS) {
            r = fail(&e, "factors", "at most %d factors", KV_REQ_MAX_FACTORS);
            goto out;
        }
        for (size_t i = 0; i < json_array_size(factors); i++) {
            snprintf(p, sizeof(p), "factors[%zu]", i);
            if ((r = decode_factor(&e, json_array_get(factors, i), p, &out->factors[i])) != 0)
                goto out;
            out->n_factors = i + 1;
        }
    }

    if ((r = member(&e, j, "", "recurring", 0, &rec)) != 0)
        goto out;
    if (rec != NULL && !json_is_null(rec)) {
        if (!json_is_object(rec)) {
            r = fail(&e, "recurring", "must be an object");
            goto out;
        }
        if ((r = check_keys(&e, rec, "recurring", recurring_keys)) != 0 ||
            (r = get_str(&e, rec, "recurring", "series", 1, 1, out->series, sizeof(out->series),
                         NULL)) != 0 ||
            (r = get_bool(&e, rec, "recurring", "first", 0, &out->recurring_first, NULL)) != 0)
            goto out;
        out->has_recurring = 1;
    }
    if ((r = get_bool(&e, j, "", "trusted_beneficiary", 0, &out->trusted_beneficiary, &here)) != 0)
        goto out;
    r = 0;
out:
    if (r != 0)
        kv_auth_request_wipe(out);
    return r;
}

int kv_auth_request_parse(const char *text, size_t len, kv_auth_request *out, char *err,
                          size_t errlen)
{
    json_error_t je;
    json_t *j;
    int r;

    memset(out, 0, sizeof(*out));
    j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (j == NULL) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "request is not valid JSON: %s (line %d, column %d)", je.text,
                     je.line, je.column);
        return KV_ERR_JSON;
    }
    r = kv_auth_request_from_json(j, out, err, errlen);
    json_decref(j);
    return r;
}

void kv_auth_request_wipe(kv_auth_request *r)
{
    kv_wipe(r, sizeof(*r));
}

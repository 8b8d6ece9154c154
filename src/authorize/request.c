/* see request.h */
#include "src/authorize/request.h"
#include "src/base/caltime.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/base/secure.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define AMOUNT_MAX INT64_C(1000000000000000)
#define KEYNAME(fld)                                                                               \
    {                                                                                              \
#fld, KV_JT_STRING, KV_JF_REQUIRED, 1, KV_KEYNAME_MAX - 1, offsetof(kv_auth_factor, fld),  \
            KV_KEYNAME_MAX, KV_JDEC_NONE, KV_JDEC_NONE, NULL, NULL, 0, NULL, NULL                  \
    }
#define FROW(nm, ty, fl, mn, mx, fld, cp, lo, ho)                                                  \
    {                                                                                              \
        nm, ty, fl, mn, mx, offsetof(kv_auth_factor, fld), cp, lo, ho, NULL, NULL, 0, NULL, NULL   \
    }
#define NONE KV_JDEC_NONE

static int is_hexdigit(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
}

/* "type" is read by factor_check before the table is chosen. */
static int skip(kv_jdec *d, const json_t *v, void *field, void *obj, void *ctx)
{
    (void)d, (void)v, (void)field, (void)obj, (void)ctx;
    return 0;
}

/* bound_amount and bound_payee go together. */
static int binding(kv_jdec *d, const json_t *o, kv_auth_factor *f)
{
    int has_amount = json_object_get(o, "bound_amount") != NULL;
    int has_payee = json_object_get(o, "bound_payee") != NULL;
    if (has_amount != has_payee)
        return kv_jdec_fail_at(d, has_amount ? "bound_payee" : "bound_amount", KV_JDEC_MISSING,
                               "missing (bound_amount and bound_payee go together)");
    f->has_binding = has_amount;
    return 0;
}

static int plain_check(kv_jdec *d, const json_t *o, void *obj, void *ctx)
{
    (void)ctx;
    return binding(d, o, obj);
}

static int pad_digit(kv_jdec *d, const json_t *v, void *field, void *obj, void *ctx)
{
    (void)obj, (void)ctx;
    if (!json_is_string(v) || json_string_length(v) != 1 || !is_hexdigit(json_string_value(v)[0]))
        return kv_jdec_fail(d, KV_JDEC_BAD_FORMAT, "must be one hex digit");
    *(char *)field = json_string_value(v)[0];
    return 0;
}

static int pin_online_check(kv_jdec *d, const json_t *o, void *obj, void *ctx)
{
    static const char *const ibm_only[] = {"vdata", "dec_table", "pad"};
    kv_auth_factor *f = obj;
    int has_pvv = json_object_get(o, "pvv") != NULL;
    int has_offset = json_object_get(o, "offset") != NULL;
    int r;
    (void)ctx;
    if ((r = binding(d, o, f)) != 0)
        return r;
    if (f->pin_format == 2)
        return kv_jdec_fail_at(d, "format", KV_JDEC_OUT_OF_RANGE, "must be 0, 1, 3 or 4");
    if (f->pin_block_len != (f->pin_format == 4 ? 16u : 8u))
        return kv_jdec_fail_at(d, "pin_block", KV_JDEC_OUT_OF_RANGE,
                               "must be %u bytes (%u hex digits)", f->pin_format == 4 ? 16u : 8u,
                               f->pin_format == 4 ? 32u : 16u);
    if (has_pvv == has_offset)
        return kv_jdec_fail_at(d, "pvv", KV_JDEC_CONFLICT,
                               "give either pvv (Visa PVV) or offset (IBM 3624), not %s",
                               has_pvv ? "both" : "neither");
    f->ibm3624 = has_offset;
    if (has_pvv && json_object_get(o, "pvki") == NULL)
        return kv_jdec_fail_at(d, "pvki", KV_JDEC_MISSING, "missing required field (with pvv)");
    /* issue 11: a client that chooses these turns PIN verification into a PIN oracle; they
       come from the server's [pvk.LABEL] section (src/config/pin_params.h) */
    for (size_t i = 0; i < 3; i++)
        if (json_object_get(o, ibm_only[i]) != NULL)
            return kv_jdec_fail_at(d, ibm_only[i], KV_JDEC_CONFLICT,
                                   "is no longer accepted: the decimalisation table, validation "
                                   "data and pad come from the server's [pvk.LABEL] section");
    return 0;
}

#define COMMON_ROWS                                                                                \
    {"type", KV_JT_CUSTOM, 0, 0, 0, 0, 0, NONE, NONE, NULL, NULL, 0, skip, NULL},                  \
        FROW("bound_amount", KV_JT_INT, 0, 0, AMOUNT_MAX, bound_amount, 0, NONE, NONE),            \
        FROW("bound_payee", KV_JT_STRING, 0, 0, KV_PAYEE_MAX - 1, bound_payee, KV_PAYEE_MAX, NONE, \
             NONE)

static const kv_jdec_field upstream_rows[] = {
    COMMON_ROWS,
    FROW("verified", KV_JT_BOOL, KV_JF_REQUIRED, 0, 0, verified, sizeof(int), NONE, NONE),
};
static const kv_jdec_field pin_online_rows[] = {
    COMMON_ROWS,
    FROW("format", KV_JT_INT, KV_JF_REQUIRED, 0, 4, pin_format, sizeof(int), NONE, NONE),
    FROW("pin_block", KV_JT_HEX, KV_JF_REQUIRED, 8, 16, pin_block, 16,
         offsetof(kv_auth_factor, pin_block_len), NONE),
    KEYNAME(pin_key),
    KEYNAME(pvk),
    FROW("pvv", KV_JT_DIGITS, 0, 4, 4, pvv, 5, NONE, NONE),
    FROW("pvki", KV_JT_INT, 0, 0, 9, pvki, sizeof(int), NONE, NONE),
    FROW("offset", KV_JT_DIGITS, 0, 4, 12, offset, 13, NONE, NONE),
    FROW("vdata", KV_JT_STRING, 0, 1, 16, vdata, 17, NONE, NONE),
    FROW("dec_table", KV_JT_DIGITS, 0, 16, 16, dec_table, 17, NONE, NONE),
    {"pad", KV_JT_CUSTOM, 0, 0, 0, offsetof(kv_auth_factor, pad), 1, NONE, NONE, NULL, NULL, 0,
     pad_digit, NULL},
};
static const kv_jdec_field chip_rows[] = {
    COMMON_ROWS,
    KEYNAME(imk),
    FROW("cvn", KV_JT_INT, KV_JF_REQUIRED, 0, 255, cvn, sizeof(int), NONE, NONE),
    FROW("arqc", KV_JT_HEX, KV_JF_REQUIRED, 8, 8, arqc, 8, NONE, NONE),
    FROW("data", KV_JT_HEX, KV_JF_REQUIRED, 1, KV_AC_DATA_MAX, data, KV_AC_DATA_MAX,
         offsetof(kv_auth_factor, data_len), NONE),
    FROW("atc", KV_JT_HEX, KV_JF_REQUIRED, 2, 2, atc, 2, NONE, NONE),
    FROW("un", KV_JT_HEX, 0, 4, 4, un, 4, NONE, offsetof(kv_auth_factor, has_un)),
};
static const kv_jdec_field cvc3_rows[] = {
    COMMON_ROWS,
    KEYNAME(imk),
    FROW("atc", KV_JT_HEX, KV_JF_REQUIRED, 2, 2, atc, 2, NONE, NONE),
    FROW("un", KV_JT_HEX, KV_JF_REQUIRED, 4, 4, un, 4, NONE, offsetof(kv_auth_factor, has_un)),
    FROW("track", KV_JT_HEX, KV_JF_REQUIRED, 1, KV_TRACK_MAX, track, KV_TRACK_MAX,
         offsetof(kv_auth_factor, track_len), NONE),
    FROW("value", KV_JT_DIGITS, KV_JF_REQUIRED, 1, 5, value, 6, NONE, NONE),
    FROW("pcvc3", KV_JT_HEX, 0, 1, 8, pcvc3, 8, offsetof(kv_auth_factor, pcvc3_len), NONE),
};
static const kv_jdec_field cvc2_rows[] = {
    COMMON_ROWS,
    KEYNAME(cvk),
    FROW("value", KV_JT_DIGITS, KV_JF_REQUIRED, 3, 3, value, 6, NONE, NONE),
};

static const kv_jdec_table upstream_tbl = KV_JDEC_TABLE(NULL, upstream_rows, 0, NULL, plain_check);
static const kv_jdec_table pin_online_tbl =
    KV_JDEC_TABLE(NULL, pin_online_rows, 0, NULL, pin_online_check);
static const kv_jdec_table chip_tbl = KV_JDEC_TABLE(NULL, chip_rows, 0, NULL, plain_check);
static const kv_jdec_table cvc3_tbl = KV_JDEC_TABLE(NULL, cvc3_rows, 0, NULL, plain_check);
static const kv_jdec_table cvc2_tbl = KV_JDEC_TABLE(NULL, cvc2_rows, 0, NULL, plain_check);

/* A factor's members depend on its type and on whether it was verified upstream. */
static int factor_check(kv_jdec *d, const json_t *o, void *obj, void *ctx)
{
    kv_auth_factor *f = obj;
    const json_t *t = json_object_get(o, "type");
    const kv_jdec_table *tbl;
    char val[48];
    int has_verified, r;
    (void)ctx;
    if (t == NULL)
        return kv_jdec_fail_at(d, "type", KV_JDEC_MISSING, "missing required field");
    if (!json_is_string(t))
        return kv_jdec_fail_at(d, "type", KV_JDEC_WRONG_TYPE, "must be a string");
    if (strlen(json_string_value(t)) != json_string_length(t) ||
        kv_sca_factor_parse(json_string_value(t), &f->type) != 0) {
        kv_jdec_printable(json_string_value(t), val);
        return kv_jdec_fail_at(d, "type", KV_JDEC_UNKNOWN_VALUE, "unknown factor type '%s'", val);
    }
    has_verified = json_object_get(o, "verified") != NULL;
    f->upstream = has_verified || !kv_sca_factor_hsm_capable(f->type);
    if (f->upstream)
        tbl = &upstream_tbl;
    else if (f->type == KV_FACTOR_PIN_ONLINE)
        tbl = &pin_online_tbl;
    else if (f->type == KV_FACTOR_CHIP_CRYPTOGRAM)
        tbl = &chip_tbl;
    else if (f->type == KV_FACTOR_CVC3)
        tbl = &cvc3_tbl;
    else
        tbl = &cvc2_tbl;
    r = kv_jdec_sub(d, o, tbl, f);
    if (r != 0 && kv_jdec_err(d)->code == KV_JDEC_UNKNOWN_FIELD && has_verified &&
        kv_sca_factor_hsm_capable(f->type))
        return kv_jdec_fail(d, KV_JDEC_CONFLICT,
                            "%s has 'verified' and key material: give one or the other",
                            json_string_value(t));
    return r;
}

static const kv_jdec_table factor_tbl = {NULL, NULL, 0, KV_JDEC_ALLOW_UNKNOWN, NULL, factor_check};

#define RROW(nm, ty, fl, mn, mx, fld, cp, lo, ho)                                                  \
    {                                                                                              \
        nm, ty, fl, mn, mx, offsetof(kv_auth_request, fld), cp, lo, ho, NULL, NULL, 0, NULL, NULL  \
    }

static int card_check(kv_jdec *d, const json_t *o, void *obj, void *ctx)
{
    kv_auth_request *q = obj;
    (void)o, (void)ctx;
    if (kv_card_expired(q->expiry, 0) < 0)
        return kv_jdec_fail_at(d, "expiry", KV_JDEC_BAD_FORMAT, "must be YYMM with a month 01..12");
    return 0;
}

static const kv_jdec_field card_rows[] = {
    RROW("pan", KV_JT_DIGITS, KV_JF_REQUIRED, 12, 19, pan, 20, NONE, NONE),
    RROW("expiry", KV_JT_DIGITS, KV_JF_REQUIRED, 4, 4, expiry, 5, NONE, NONE),
    RROW("psn", KV_JT_DIGITS, 0, 2, 2, psn, 3, NONE, NONE),
};
static const kv_jdec_table card_tbl = KV_JDEC_TABLE(NULL, card_rows, 0, NULL, card_check);

static const kv_jdec_field merchant_rows[] = {
    RROW("name", KV_JT_STRING, KV_JF_REQUIRED, 1, KV_PAYEE_MAX - 1, merchant_name, KV_PAYEE_MAX,
         NONE, NONE),
    RROW("mcc", KV_JT_DIGITS, KV_JF_REQUIRED, 4, 4, mcc, 5, NONE, NONE),
    RROW("country", KV_JT_STRING, 0, 2, 3, country, 4, NONE, NONE),
};
static const kv_jdec_table merchant_tbl = KV_JDEC_TABLE(NULL, merchant_rows, 0, NULL, NULL);

static const kv_jdec_field recurring_rows[] = {
    RROW("series", KV_JT_STRING, KV_JF_REQUIRED, 1, KV_SERIES_MAX - 1, series, KV_SERIES_MAX, NONE,
         NONE),
    RROW("first", KV_JT_BOOL, 0, 0, 0, recurring_first, sizeof(int), NONE, NONE),
};
static const kv_jdec_table recurring_tbl = KV_JDEC_TABLE(NULL, recurring_rows, 0, NULL, NULL);

static int at_time(kv_jdec *d, const json_t *v, void *field, void *obj, void *ctx)
{
    (void)obj, (void)ctx;
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) >= 64 ||
        strlen(json_string_value(v)) != json_string_length(v) ||
        kv_time_parse(json_string_value(v), field) != 0)
        return kv_jdec_fail(d, KV_JDEC_BAD_FORMAT,
                            "must be an RFC 3339 time such as 2026-03-01T10:00:00Z");
    return 0;
}

static int channel(kv_jdec *d, const json_t *v, void *field, void *obj, void *ctx)
{
    char val[48];
    (void)obj, (void)ctx;
    if (!json_is_string(v))
        return kv_jdec_fail(d, KV_JDEC_WRONG_TYPE, "must be a string");
    if (strlen(json_string_value(v)) != json_string_length(v) ||
        kv_channel_parse(json_string_value(v), field) != 0) {
        kv_jdec_printable(json_string_value(v), val);
        return kv_jdec_fail(d, KV_JDEC_UNKNOWN_VALUE,
                            "unknown channel '%s' (contact, contactless, ecommerce, moto, atm, "
                            "unattended_transport, unattended_parking, wallet)",
                            val);
    }
    return 0;
}

static int currency(kv_jdec *d, const json_t *v, void *field, void *obj, void *ctx)
{
    const char *s = json_string_value(v);
    (void)obj, (void)ctx;
    if (!json_is_string(v))
        return kv_jdec_fail(d, KV_JDEC_WRONG_TYPE, "must be a string");
    if (json_string_length(v) != 3)
        return kv_jdec_fail(d, KV_JDEC_OUT_OF_RANGE, "length must be 3..3");
    for (int i = 0; i < 3; i++)
        if (s[i] < 'A' || s[i] > 'Z')
            return kv_jdec_fail(d, KV_JDEC_BAD_FORMAT, "must be an ISO 4217 code such as DKK");
    memcpy(field, s, 4);
    return 0;
}

/* request_id: 1..64 printable ASCII characters (no control characters, no DEL). */
static int request_id(kv_jdec *d, const json_t *v, void *field, void *obj, void *ctx)
{
    const char *t = json_string_value(v);
    size_t n = json_string_length(v);
    (void)obj, (void)ctx;
    if (!json_is_string(v))
        return kv_jdec_fail(d, KV_JDEC_WRONG_TYPE, "must be a string");
    if (n < 1 || n > 64 || strlen(t) != n)
        return kv_jdec_fail(d, KV_JDEC_OUT_OF_RANGE, "length must be 1..64");
    for (size_t i = 0; i < n; i++)
        if (t[i] < 0x20 || t[i] > 0x7E)
            return kv_jdec_fail(d, KV_JDEC_BAD_FORMAT, "must be printable ASCII");
    memcpy(field, t, n + 1);
    return 0;
}

static const kv_jdec_field request_rows[] = {
    {"card", KV_JT_OBJECT, KV_JF_REQUIRED, 0, 0, 0, 0, NONE, NONE, NULL, &card_tbl, 0, NULL, NULL},
    {"at", KV_JT_CUSTOM, 0, 0, 0, offsetof(kv_auth_request, at), 0, NONE,
     offsetof(kv_auth_request, has_at), NULL, NULL, 0, at_time, NULL},
    {"channel", KV_JT_CUSTOM, KV_JF_REQUIRED, 0, 0, offsetof(kv_auth_request, channel), 0, NONE,
     NONE, NULL, NULL, 0, channel, NULL},
    RROW("amount", KV_JT_INT, KV_JF_REQUIRED, 0, AMOUNT_MAX, amount, 0, NONE, NONE),
    {"currency", KV_JT_CUSTOM, KV_JF_REQUIRED, 0, 0, offsetof(kv_auth_request, currency), 0, NONE,
     NONE, NULL, NULL, 0, currency, NULL},
    {"merchant", KV_JT_OBJECT, KV_JF_REQUIRED, 0, 0, 0, 0, NONE, NONE, NULL, &merchant_tbl, 0, NULL,
     NULL},
    {"factors", KV_JT_ARRAY, 0, 0, KV_REQ_MAX_FACTORS, offsetof(kv_auth_request, factors), 0,
     offsetof(kv_auth_request, n_factors), NONE, NULL, &factor_tbl, sizeof(kv_auth_factor), NULL,
     NULL},
    {"recurring", KV_JT_OBJECT, KV_JF_NULL_OK, 0, 0, 0, 0, NONE,
     offsetof(kv_auth_request, has_recurring), NULL, &recurring_tbl, 0, NULL, NULL},
    RROW("trusted_beneficiary", KV_JT_BOOL, 0, 0, 0, trusted_beneficiary, sizeof(int), NONE, NONE),
    {"request_id", KV_JT_CUSTOM, 0, 0, 0, offsetof(kv_auth_request, request_id), 0, NONE,
     offsetof(kv_auth_request, has_request_id), NULL, NULL, 0, request_id, NULL},
};
static const kv_jdec_table request_tbl = KV_JDEC_TABLE("request", request_rows, 0, NULL, NULL);

int kv_auth_request_decode(const json_t *j, kv_auth_request *out, kv_jdec_error *e)
{
    int r;
    memset(out, 0, sizeof(*out));
    r = kv_jdec_decode(j, &request_tbl, out, NULL, e);
    if (r != 0)
        kv_auth_request_wipe(out);
    return r;
}

int kv_auth_request_from_json(const json_t *j, kv_auth_request *out, char *err, size_t errlen)
{
    kv_jdec_error e;
    int r = kv_auth_request_decode(j, out, &e);
    if (err != NULL && errlen > 0) {
        err[0] = '\0';
        if (r != 0)
            kv_jdec_format(&e, err, errlen);
    }
    return r;
}

int kv_auth_request_parse(const char *text, size_t len, kv_auth_request *out, char *err,
                          size_t errlen)
{
    kv_jdec_error e;
    json_t *j;
    int r;

    memset(out, 0, sizeof(*out));
    if (kv_jdec_parse(text, len, 0, &j, &e) != 0) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "request is not valid JSON: %s (line %d, column %d)", e.msg,
                     e.line, e.column);
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

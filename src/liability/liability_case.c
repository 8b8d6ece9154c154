/* see liability.h: the case JSON decoder (src/RULES.md §2) and the result JSON encoder */
#include "src/liability/liability.h"

#include "src/base/jdec.h"
#include "src/base/err.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define NONE KV_JDEC_NONE

/* An RFC 3339 time in ms; null only reaches here for a row without KV_JF_NULL_OK. */
static int time_ms(kv_jdec *d, const json_t *v, void *field, void *obj, void *ctx)
{
    (void)obj, (void)ctx;
    if (json_is_null(v))
        return kv_jdec_fail(d, KV_JDEC_WRONG_TYPE, "must be an RFC 3339 time, not null");
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
        kv_liability_time_parse(json_string_value(v), field) != 0)
        return kv_jdec_fail(d, KV_JDEC_BAD_FORMAT,
                            "must be an RFC 3339 time such as \"2026-03-01T10:00:00Z\"");
    return 0;
}

static int currency_dkk(kv_jdec *d, const json_t *v, void *field, void *obj, void *ctx)
{
    char val[48];
    (void)obj, (void)ctx;
    if (!json_is_string(v))
        return kv_jdec_fail(d, KV_JDEC_WRONG_TYPE, "must be a string");
    if (strcmp(json_string_value(v), "DKK") != 0 || json_string_length(v) != 3) {
        kv_jdec_printable(json_string_value(v), val);
        return kv_jdec_fail(
            d, KV_JDEC_UNKNOWN_VALUE,
            "\"%s\" is not supported: the caps of § 100 are in kroner (use \"DKK\")", val);
    }
    memcpy(field, "DKK", 4);
    return 0;
}

/* A transaction's card: the index of the card with that id (cards are decoded first). */
static int card_ref(kv_jdec *d, const json_t *v, void *field, void *obj, void *ctx)
{
    const struct kv_liability_case *c = ctx;
    char val[48];
    size_t k;
    (void)obj;
    if (!json_is_string(v))
        return kv_jdec_fail(d, KV_JDEC_WRONG_TYPE, "must be a string");
    if (json_string_length(v) == 0)
        return kv_jdec_fail(d, KV_JDEC_OUT_OF_RANGE, "must not be empty");
    for (k = 0; k < c->n_cards; k++)
        if (strcmp(c->cards[k].id, json_string_value(v)) == 0 &&
            strlen(json_string_value(v)) == json_string_length(v))
            break;
    if (k == c->n_cards) {
        kv_jdec_printable(json_string_value(v), val);
        return kv_jdec_fail(d, KV_JDEC_BAD_FORMAT, "no card \"%s\" in cards", val);
    }
    *(size_t *)field = k;
    return 0;
}

static const char *const METHOD_NAMES[] = {
    "offline_pin", "online_pin", "sca",  "wallet_code", "mobile_code",
    "signature",   "none",       "cvc2", NULL,
};
static const char *const FACTOR_NAMES[KV_LIABILITY_FACTOR_COUNT + 1] = {
    "pin_offline",  "pin_online", "password", "device_code", "chip_cryptogram", "cvc3",   "sms_otp",
    "wallet_token", "biometric",  "mitid",    "cvc2",        "card_number",     "expiry", NULL,
};
static const char *const CHANNEL_NAMES[] = {
    "contact",
    "contactless",
    "ecommerce",
    "moto",
    "atm",
    "unattended_transport",
    "unattended_parking",
    "wallet",
    "magstripe",
    "mobile",
    NULL,
};

#define ROW(st, nm, ty, fl, mn, mx, fld, cp)                                                       \
    {                                                                                              \
        nm, ty, fl, mn, mx, offsetof(st, fld), cp, NONE, NONE, NULL, NULL, 0, NULL, NULL           \
    }
#define FACT(fld) ROW(struct kv_liability_facts, #fld, KV_JT_BOOL, 0, 0, 0, fld, sizeof(bool))
#define ID(st, nm, fld, fl)                                                                        \
    ROW(st, nm, KV_JT_STRING, (fl) | KV_JF_TEXT, 1, KV_LIABILITY_ID_MAX, fld,                      \
        KV_LIABILITY_ID_MAX + 1)

static const kv_jdec_field facts_rows[] = {
    FACT(cardholder_fraud),        FACT(intentional_breach),
    FACT(late_notification),       FACT(credential_handed_over),
    FACT(risk_foreseeable),        FACT(gross_negligence),
    FACT(issuer_staff_caused),     FACT(no_notification_channel),
    FACT(undetectable_before_use), FACT(payee_knew),
};
static const kv_jdec_table facts_tbl = KV_JDEC_TABLE(NULL, facts_rows, 0, NULL, NULL);

static const kv_jdec_field card_rows[] = {
    ID(struct kv_liability_card, "id", id, KV_JF_REQUIRED),
    ID(struct kv_liability_card, "credential", credential, KV_JF_NULL_OK),
    {"blocked_at", KV_JT_CUSTOM, KV_JF_NULL_OK | KV_JF_PRESENT_BOOL, 0, 0,
     offsetof(struct kv_liability_card, blocked_at), 0, NONE,
     offsetof(struct kv_liability_card, blocked), NULL, NULL, 0, time_ms, NULL},
};
static const kv_jdec_table card_tbl = KV_JDEC_TABLE(NULL, card_rows, 0, NULL, NULL);

#define VROW(nm, fld)                                                                              \
    ROW(struct kv_liability_verification, nm, KV_JT_BOOL, 0, 0, 0, fld, sizeof(bool))
static const kv_jdec_field verification_rows[] = {
    {"method", KV_JT_ENUM, KV_JF_REQUIRED, 0, 0, offsetof(struct kv_liability_verification, method),
     sizeof(int), NONE, NONE, METHOD_NAMES, NULL, 0, NULL, NULL},
    {"factors", KV_JT_ENUMS, 0, 0, 64, offsetof(struct kv_liability_verification, factors),
     sizeof(uint32_t), NONE, NONE, FACTOR_NAMES, NULL, 0, NULL, "factor type"},
    VROW("proven", proven),
    VROW("sca_required", sca_required),
    VROW("per_transaction_code", per_transaction_code),
};
static const kv_jdec_table verification_tbl = KV_JDEC_TABLE(NULL, verification_rows, 0, NULL, NULL);

static void txn_defaults(void *obj)
{
    struct kv_liability_txn *t = obj;
    t->booked_correctly = true;
    t->verification.sca_required = true;
}

#define TROW(nm, ty, fl, fld, fn)                                                                  \
    {                                                                                              \
        nm, ty, fl, 0, 0, offsetof(struct kv_liability_txn, fld), 0, NONE, NONE, NULL, NULL, 0,    \
            fn, NULL                                                                               \
    }
static const kv_jdec_field txn_rows[] = {
    ID(struct kv_liability_txn, "id", id, KV_JF_REQUIRED),
    TROW("card", KV_JT_CUSTOM, KV_JF_REQUIRED, card, card_ref),
    TROW("at", KV_JT_CUSTOM, KV_JF_REQUIRED, at, time_ms),
    TROW("debited_at", KV_JT_CUSTOM, KV_JF_REQUIRED, debited_at, time_ms),
    {"amount", KV_JT_AMOUNT, KV_JF_REQUIRED, 0, KV_LIABILITY_AMOUNT_MAX,
     offsetof(struct kv_liability_txn, amount), 0, NONE, NONE, NULL, NULL, 0, NULL,
     "must be an integer amount in øre, 0 to 10000000000000"},
    ROW(struct kv_liability_txn, "booked_correctly", KV_JT_BOOL, 0, 0, 0, booked_correctly,
        sizeof(bool)),
    {"channel", KV_JT_ENUM, KV_JF_REQUIRED, 0, 0, offsetof(struct kv_liability_txn, channel),
     sizeof(int), NONE, NONE, CHANNEL_NAMES, NULL, 0, NULL, NULL},
    {"verification", KV_JT_OBJECT, KV_JF_REQUIRED, 0, 0,
     offsetof(struct kv_liability_txn, verification), 0, NONE, NONE, NULL, &verification_tbl, 0,
     NULL, NULL},
    {"evidence", KV_JT_STRING, KV_JF_NULL_OK | KV_JF_TEXT | KV_JF_PRESENT_BOOL, 1,
     KV_LIABILITY_ID_MAX, offsetof(struct kv_liability_txn, evidence), KV_LIABILITY_ID_MAX + 1,
     NONE, offsetof(struct kv_liability_txn, has_evidence), NULL, NULL, 0, NULL, NULL},
    ROW(struct kv_liability_txn, "final_amount_unknown", KV_JT_BOOL, 0, 0, 0, final_amount_unknown,
        sizeof(bool)),
};
static const kv_jdec_table txn_tbl = KV_JDEC_TABLE(NULL, txn_rows, 0, txn_defaults, NULL);

static int cmp_id_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Find a duplicate id among n ids spaced `stride` bytes apart; returns its index or -1. */
static long find_duplicate(const char *first, size_t n, size_t stride, int *err)
{
    const char **p;
    long dup = -1;
    *err = 0;
    if (n < 2)
        return -1;
    if ((p = calloc(n, sizeof *p)) == NULL) {
        *err = KV_ERR_NOMEM;
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        p[i] = first + i * stride;
    qsort(p, n, sizeof *p, cmp_id_ptr);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(p[i - 1], p[i]) == 0) {
            /* report the later of the two in file order */
            size_t a = (size_t)(p[i - 1] - first) / stride, b = (size_t)(p[i] - first) / stride;
            long cand = (long)(a > b ? a : b);
            if (dup < 0 || cand < dup)
                dup = cand;
        }
    }
    free(p);
    return dup;
}

/* Ids are unique among the cards and among the transactions. */
static int unique_ids(kv_jdec *d, const char *what, const char *first, size_t n, size_t stride)
{
    char path[64], val[48];
    int e;
    long dup = find_duplicate(first, n, stride, &e);
    if (e != 0)
        return kv_jdec_fail(d, KV_JDEC_NOMEM, "out of memory");
    if (dup < 0)
        return 0;
    snprintf(path, sizeof path, "%ss[%ld].id", what, dup);
    kv_jdec_printable(first + (size_t)dup * stride, val);
    kv_jdec_fail(d, KV_JDEC_DUPLICATE, "duplicate %s id \"%s\"", what, val);
    snprintf(kv_jdec_err(d)->path, sizeof(kv_jdec_err(d)->path), "%s", path);
    return KV_ERR_JSON;
}

static int case_check(kv_jdec *d, const json_t *o, void *obj, void *ctx)
{
    struct kv_liability_case *c = obj;
    int r;
    (void)o, (void)ctx;
    if ((r = unique_ids(d, "card", c->n_cards > 0 ? c->cards[0].id : NULL, c->n_cards,
                        sizeof c->cards[0])) != 0)
        return r;
    return unique_ids(d, "transaction", c->n_txns > 0 ? c->txns[0].id : NULL, c->n_txns,
                      sizeof c->txns[0]);
}

#define CROW(nm, ty, fl, fld, fn, ho)                                                              \
    {                                                                                              \
        nm, ty, fl, 0, 0, offsetof(struct kv_liability_case, fld), 0, NONE, ho, NULL, NULL, 0, fn, \
            NULL                                                                                   \
    }
static const kv_jdec_field case_rows[] = {
    CROW("currency", KV_JT_CUSTOM, KV_JF_REQUIRED, currency, currency_dkk, NONE),
    CROW("discovered_at", KV_JT_CUSTOM, KV_JF_REQUIRED, discovered_at, time_ms, NONE),
    CROW("notified_at", KV_JT_CUSTOM, KV_JF_NULL_OK | KV_JF_PRESENT_BOOL, notified_at, time_ms,
         offsetof(struct kv_liability_case, notified)),
    CROW("objection_at", KV_JT_CUSTOM, KV_JF_REQUIRED, objection_at, time_ms, NONE),
    {"facts", KV_JT_OBJECT, 0, 0, 0, offsetof(struct kv_liability_case, facts), 0, NONE, NONE, NULL,
     &facts_tbl, 0, NULL, NULL},
    {"cards", KV_JT_ARRAY, KV_JF_REQUIRED | KV_JF_ALLOC, 0, KV_LIABILITY_CARDS_MAX,
     offsetof(struct kv_liability_case, cards), 0, offsetof(struct kv_liability_case, n_cards),
     NONE, NULL, &card_tbl, sizeof(struct kv_liability_card), NULL, NULL},
    {"transactions", KV_JT_ARRAY, KV_JF_REQUIRED | KV_JF_ALLOC, 0, KV_LIABILITY_TXNS_MAX,
     offsetof(struct kv_liability_case, txns), 0, offsetof(struct kv_liability_case, n_txns), NONE,
     NULL, &txn_tbl, sizeof(struct kv_liability_txn), NULL, NULL},
};
static const kv_jdec_table case_tbl = KV_JDEC_TABLE("case", case_rows, 0, NULL, case_check);

/* see liability.h */
int kv_liability_case_decode(const json_t *root, struct kv_liability_case **out, kv_jdec_error *e)
{
    struct kv_liability_case *c;
    int r;
    if (out == NULL)
        return KV_ERR_ARG;
    *out = NULL;
    if ((c = calloc(1, sizeof *c)) == NULL) {
        memset(e, 0, sizeof(*e));
        e->code = KV_JDEC_NOMEM;
        return KV_ERR_NOMEM;
    }
    if ((r = kv_jdec_decode(root, &case_tbl, c, c, e)) != 0) {
        kv_liability_case_free(c);
        return r;
    }
    *out = c;
    return 0;
}

/* The message: nested unknown fields read 'cards[0]: unknown field "pin"'. */
static void case_message(const kv_jdec_error *e, char *why, size_t why_len)
{
    if (why == NULL || why_len == 0)
        return;
    if (e->code == KV_JDEC_UNKNOWN_FIELD && e->parent_len > 0)
        snprintf(why, why_len, "%.*s: unknown field \"%s\"", (int)e->parent_len, e->path, e->key);
    else
        kv_jdec_format(e, why, why_len);
}

/* see liability.h */
int kv_liability_case_from_json(const json_t *root, struct kv_liability_case **out, char *why,
                                size_t why_len)
{
    kv_jdec_error e;
    int r;
    if (why != NULL && why_len > 0)
        why[0] = '\0';
    if ((r = kv_liability_case_decode(root, out, &e)) != 0 && e.code != KV_JDEC_NOMEM)
        case_message(&e, why, why_len);
    return r;
}

/* see liability.h */
int kv_liability_case_parse(const char *text, size_t len, struct kv_liability_case **out, char *why,
                            size_t why_len)
{
    kv_jdec_error e;
    json_t *root;
    int r;
    if (out == NULL)
        return KV_ERR_ARG;
    *out = NULL;
    if (why != NULL && why_len > 0)
        why[0] = '\0';
    if (kv_jdec_parse(text, text != NULL ? len : 0, 0, &root, &e) != 0) {
        if (why != NULL && why_len > 0)
            snprintf(why, why_len, "case: not valid JSON (line %d, column %d): %s", e.line,
                     e.column, e.msg);
        return KV_ERR_JSON;
    }
    r = kv_liability_case_from_json(root, out, why, why_len);
    json_decref(root);
    return r;
}

/* see liability.h */
void kv_liability_case_free(struct kv_liability_case *c)
{
    if (c == NULL)
        return;
    free(c->cards);
    free(c->txns);
    free(c);
}

/* see liability.h */
int kv_liability_result_to_json(const struct kv_liability_case *c,
                                const struct kv_liability_result *r, json_t **out)
{
    json_t *root = NULL, *arr = NULL, *t = NULL;
    int rc = KV_ERR_NOMEM;
    *out = NULL;
    if ((root = json_object()) == NULL || (arr = json_array()) == NULL)
        goto out;
    if (json_object_set_new(root, "currency", json_string(r->currency)) != 0 ||
        json_object_set_new(root, "total", json_integer(r->total)) != 0 ||
        json_object_set_new(root, "cardholder", json_integer(r->cardholder)) != 0 ||
        json_object_set_new(root, "issuer", json_integer(r->issuer)) != 0 ||
        json_object_set_new(root, "objection",
                            json_string(kv_liability_objection_name(r->objection))) != 0)
        goto out;
    for (size_t i = 0; i < r->n_txns; i++) {
        const struct kv_liability_txn_result *x = &r->txns[i];
        int ar;
        if ((t = json_object()) == NULL ||
            json_object_set_new(t, "id", json_string(c->txns[i].id)) != 0 ||
            json_object_set_new(t, "class", json_string(kv_liability_class_name(x->cls))) != 0 ||
            json_object_set_new(t, "cardholder", json_integer(x->cardholder)) != 0 ||
            json_object_set_new(t, "issuer", json_integer(x->issuer)) != 0 ||
            json_object_set_new(t, "rule", json_string(x->rule)) != 0 ||
            json_object_set_new(t, "objection",
                                json_string(kv_liability_objection_name(x->objection))) != 0)
            goto out;
        ar = json_array_append_new(arr, t);
        t = NULL; /* transferred, even on failure */
        if (ar != 0)
            goto out;
    }
    {
        int sr = json_object_set_new(root, "transactions", arr);
        arr = NULL; /* transferred, even on failure */
        if (sr != 0)
            goto out;
    }
    *out = root;
    root = NULL;
    rc = 0;
out:
    json_decref(t);
    json_decref(arr);
    json_decref(root);
    return rc;
}

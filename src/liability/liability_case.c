/* see liability.h: the case JSON decoder (RULES.md §2) and the result JSON encoder */
#include "src/liability/liability.h"

#include "src/base/cursor.h"
#include "src/base/err.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct dec {
    char *why;
    size_t why_len;
};

static int dec_fail(struct dec *d, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int dec_fail(struct dec *d, const char *path, const char *fmt, ...)
{
    if (d->why != NULL && d->why_len > 0) {
        va_list ap;
        int n = snprintf(d->why, d->why_len, "%s: ", path);
        if (n >= 0 && (size_t)n < d->why_len) {
            va_start(ap, fmt);
            vsnprintf(d->why + n, d->why_len - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return KV_ERR_JSON;
}

/* A key or value quoted in an error message: printable ASCII only, at most 40 bytes. */
static void printable(const char *s, char out[48])
{
    size_t i = 0;
    for (; s[i] != '\0' && i < 40; i++)
        out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (s[i] != '\0' && i >= 40) {
        out[i - 3] = out[i - 2] = out[i - 1] = '.';
    }
    out[i] = '\0';
}

/*
 * Text that ends up in XML and on terminals: valid UTF-8, no control
 * characters, no U+FFFE/U+FFFF (not XML characters), no surrogates.
 */
static int text_ok(const char *s, size_t len)
{
    kv_cursor c;
    kv_cursor_init(&c, (const uint8_t *)s, len);
    while (kv_cursor_left(&c) > 0) {
        uint8_t b0, b;
        uint32_t cp;
        int extra;
        (void)kv_cursor_u8(&c, &b0);
        if (b0 < 0x20 || b0 == 0x7f)
            return 0;
        if (b0 < 0x80)
            continue;
        if (b0 >= 0xc2 && b0 <= 0xdf) {
            extra = 1;
            cp = b0 & 0x1f;
        } else if (b0 >= 0xe0 && b0 <= 0xef) {
            extra = 2;
            cp = b0 & 0x0f;
        } else if (b0 >= 0xf0 && b0 <= 0xf4) {
            extra = 3;
            cp = b0 & 0x07;
        } else {
            return 0;
        }
        for (int i = 0; i < extra; i++) {
            if (kv_cursor_u8(&c, &b) != 0 || (b & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (b & 0x3f);
        }
        if ((extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return 0; /* overlong or out of range */
        if ((cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff)
            return 0;
        if (cp >= 0x80 && cp <= 0x9f)
            return 0; /* C1 controls */
    }
    return 1;
}

/* Every key of obj must be in allowed (NULL-terminated). */
static int check_keys(struct dec *d, const json_t *obj, const char *path,
                      const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        int known = 0;
        (void)v;
        for (const char *const *a = allowed; *a != NULL; a++)
            if (strcmp(key, *a) == 0)
                known = 1;
        if (!known) {
            char k[48];
            printable(key, k);
            return path[0] != '\0' ? dec_fail(d, path, "unknown field \"%s\"", k)
                                   : dec_fail(d, k, "unknown field");
        }
    }
    return 0;
}

static void field_path(char *out, size_t cap, const char *path, const char *key)
{
    if (path[0] == '\0')
        snprintf(out, cap, "%s", key);
    else
        snprintf(out, cap, "%s.%s", path, key);
}

enum presence { OPTIONAL = 0, REQUIRED = 1 };

/* *v = the member or NULL when absent; missing required members are errors. */
static int member(struct dec *d, const json_t *obj, const char *path, const char *key,
                  enum presence p, json_t **v)
{
    char fp[256];
    *v = json_object_get(obj, key);
    if (*v == NULL && p == REQUIRED) {
        field_path(fp, sizeof fp, path, key);
        return dec_fail(d, fp, "missing required field");
    }
    return 0;
}

/* A string member into buf; null allowed only when nullable (buf then ""). */
static int get_text(struct dec *d, const json_t *obj, const char *path, const char *key,
                    enum presence p, int nullable, char *buf, size_t cap, int *present)
{
    char fp[256];
    json_t *v;
    int r;
    size_t len;
    buf[0] = '\0';
    if (present != NULL)
        *present = 0;
    if ((r = member(d, obj, path, key, p, &v)) != 0)
        return r;
    if (v == NULL)
        return 0;
    field_path(fp, sizeof fp, path, key);
    if (json_is_null(v)) {
        if (!nullable)
            return dec_fail(d, fp, "must be a string, not null");
        return 0;
    }
    if (!json_is_string(v))
        return dec_fail(d, fp, "must be a string");
    len = json_string_length(v);
    if (len == 0)
        return dec_fail(d, fp, "must not be empty");
    if (len >= cap)
        return dec_fail(d, fp, "longer than %zu bytes", cap - 1);
    if (!text_ok(json_string_value(v), len))
        return dec_fail(d, fp, "contains a control character or invalid text");
    memcpy(buf, json_string_value(v), len);
    buf[len] = '\0';
    if (present != NULL)
        *present = 1;
    return 0;
}

static int get_bool(struct dec *d, const json_t *obj, const char *path, const char *key, bool dflt,
                    bool *out)
{
    char fp[256];
    json_t *v = json_object_get(obj, key);
    *out = dflt;
    if (v == NULL)
        return 0;
    if (!json_is_boolean(v)) {
        field_path(fp, sizeof fp, path, key);
        return dec_fail(d, fp, "must be true or false");
    }
    *out = json_is_true(v);
    return 0;
}

static int get_time(struct dec *d, const json_t *obj, const char *path, const char *key,
                    enum presence p, int nullable, int64_t *ms, bool *present)
{
    char fp[256];
    json_t *v;
    int r;
    *ms = 0;
    if (present != NULL)
        *present = false;
    if ((r = member(d, obj, path, key, p, &v)) != 0)
        return r;
    if (v == NULL)
        return 0;
    field_path(fp, sizeof fp, path, key);
    if (json_is_null(v)) {
        if (!nullable)
            return dec_fail(d, fp, "must be an RFC 3339 time, not null");
        return 0;
    }
    if (!json_is_string(v) || kv_liability_time_parse(json_string_value(v), ms) != 0 ||
        strlen(json_string_value(v)) != json_string_length(v))
        return dec_fail(d, fp, "must be an RFC 3339 time such as \"2026-03-01T10:00:00Z\"");
    if (present != NULL)
        *present = true;
    return 0;
}

static const char *const METHOD_NAMES[] = {
    "offline_pin", "online_pin", "sca", "wallet_code", "mobile_code", "signature", "none", "cvc2",
};
static const char *const FACTOR_NAMES[KV_LIABILITY_FACTOR_COUNT] = {
    "pin_offline",  "pin_online", "password", "device_code", "chip_cryptogram", "cvc3",   "sms_otp",
    "wallet_token", "biometric",  "mitid",    "cvc2",        "card_number",     "expiry",
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
};

static int lookup_name(const char *const *names, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], s) == 0)
            return (int)i;
    return -1;
}

static int get_enum(struct dec *d, const json_t *obj, const char *path, const char *key,
                    const char *const *names, size_t n, int *out)
{
    char fp[256], val[48];
    json_t *v;
    int r;
    if ((r = member(d, obj, path, key, REQUIRED, &v)) != 0)
        return r;
    field_path(fp, sizeof fp, path, key);
    if (!json_is_string(v))
        return dec_fail(d, fp, "must be a string");
    if ((*out = lookup_name(names, n, json_string_value(v))) < 0 ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        printable(json_string_value(v), val);
        return dec_fail(d, fp, "unknown value \"%s\"", val);
    }
    return 0;
}

static int decode_facts(struct dec *d, const json_t *v, struct kv_liability_facts *f)
{
    static const char *const keys[] = {"cardholder_fraud",
                                       "intentional_breach",
                                       "late_notification",
                                       "credential_handed_over",
                                       "risk_foreseeable",
                                       "gross_negligence",
                                       "issuer_staff_caused",
                                       "no_notification_channel",
                                       "undetectable_before_use",
                                       "payee_knew",
                                       NULL};
    bool *slots[] = {&f->cardholder_fraud,        &f->intentional_breach,
                     &f->late_notification,       &f->credential_handed_over,
                     &f->risk_foreseeable,        &f->gross_negligence,
                     &f->issuer_staff_caused,     &f->no_notification_channel,
                     &f->undetectable_before_use, &f->payee_knew};
    int r;
    memset(f, 0, sizeof *f);
    if (v == NULL)
        return 0;
    if (!json_is_object(v))
        return dec_fail(d, "facts", "must be an object");
    if ((r = check_keys(d, v, "facts", keys)) != 0)
        return r;
    for (size_t i = 0; keys[i] != NULL; i++)
        if ((r = get_bool(d, v, "facts", keys[i], false, slots[i])) != 0)
            return r;
    return 0;
}

static int decode_card(struct dec *d, const json_t *v, size_t idx, struct kv_liability_card *card)
{
    static const char *const keys[] = {"id", "credential", "blocked_at", NULL};
    char path[64];
    int r;
    snprintf(path, sizeof path, "cards[%zu]", idx);
    if (!json_is_object(v))
        return dec_fail(d, path, "must be an object");
    if ((r = check_keys(d, v, path, keys)) != 0 ||
        (r = get_text(d, v, path, "id", REQUIRED, 0, card->id, sizeof card->id, NULL)) != 0 ||
        (r = get_text(d, v, path, "credential", OPTIONAL, 1, card->credential,
                      sizeof card->credential, NULL)) != 0 ||
        (r = get_time(d, v, path, "blocked_at", OPTIONAL, 1, &card->blocked_at, &card->blocked)) !=
            0)
        return r;
    return 0;
}

static int decode_verification(struct dec *d, const json_t *v, const char *tpath,
                               struct kv_liability_verification *ver)
{
    static const char *const keys[] = {
        "method", "factors", "proven", "sca_required", "per_transaction_code", NULL};
    char path[96], fp[128];
    json_t *factors;
    int r, m;
    snprintf(path, sizeof path, "%s.verification", tpath);
    if (!json_is_object(v))
        return dec_fail(d, path, "must be an object");
    if ((r = check_keys(d, v, path, keys)) != 0 ||
        (r = get_enum(d, v, path, "method", METHOD_NAMES,
                      sizeof METHOD_NAMES / sizeof METHOD_NAMES[0], &m)) != 0)
        return r;
    ver->method = (enum kv_liability_method)m;
    if ((r = get_bool(d, v, path, "proven", false, &ver->proven)) != 0 ||
        (r = get_bool(d, v, path, "sca_required", true, &ver->sca_required)) != 0 ||
        (r = get_bool(d, v, path, "per_transaction_code", false, &ver->per_transaction_code)) != 0)
        return r;
    ver->factors = 0;
    factors = json_object_get(v, "factors");
    if (factors == NULL)
        return 0;
    snprintf(fp, sizeof fp, "%s.factors", path);
    if (!json_is_array(factors))
        return dec_fail(d, fp, "must be an array of factor types");
    for (size_t i = 0; i < json_array_size(factors); i++) {
        json_t *f = json_array_get(factors, i);
        char ip[160], val[48];
        int k;
        snprintf(ip, sizeof ip, "%s[%zu]", fp, i);
        if (!json_is_string(f))
            return dec_fail(d, ip, "must be a string");
        k = lookup_name(FACTOR_NAMES, KV_LIABILITY_FACTOR_COUNT, json_string_value(f));
        if (k < 0 || strlen(json_string_value(f)) != json_string_length(f)) {
            printable(json_string_value(f), val);
            return dec_fail(d, ip, "unknown factor type \"%s\"", val);
        }
        ver->factors |= 1u << k;
    }
    return 0;
}

static int decode_txn(struct dec *d, const json_t *v, size_t idx, const struct kv_liability_case *c,
                      struct kv_liability_txn *t)
{
    static const char *const keys[] = {
        "id",      "card",         "at",       "debited_at",           "amount", "booked_correctly",
        "channel", "verification", "evidence", "final_amount_unknown", NULL};
    char path[64], fp[96], card[KV_LIABILITY_ID_MAX + 1], val[48];
    json_t *m;
    int r, ch, present;
    size_t k;
    snprintf(path, sizeof path, "transactions[%zu]", idx);
    if (!json_is_object(v))
        return dec_fail(d, path, "must be an object");
    if ((r = check_keys(d, v, path, keys)) != 0 ||
        (r = get_text(d, v, path, "id", REQUIRED, 0, t->id, sizeof t->id, NULL)) != 0 ||
        (r = get_text(d, v, path, "card", REQUIRED, 0, card, sizeof card, NULL)) != 0 ||
        (r = get_time(d, v, path, "at", REQUIRED, 0, &t->at, NULL)) != 0 ||
        (r = get_time(d, v, path, "debited_at", REQUIRED, 0, &t->debited_at, NULL)) != 0 ||
        (r = member(d, v, path, "amount", REQUIRED, &m)) != 0)
        return r;
    snprintf(fp, sizeof fp, "%s.amount", path);
    if (!json_is_integer(m) || json_integer_value(m) < 0 ||
        json_integer_value(m) > KV_LIABILITY_AMOUNT_MAX)
        return dec_fail(d, fp, "must be an integer amount in øre, 0 to %lld",
                        (long long)KV_LIABILITY_AMOUNT_MAX);
    t->amount = (int64_t)json_integer_value(m);
    if ((r = get_bool(d, v, path, "booked_correctly", true, &t->booked_correctly)) != 0 ||
        (r = get_enum(d, v, path, "channel", CHANNEL_NAMES,
                      sizeof CHANNEL_NAMES / sizeof CHANNEL_NAMES[0], &ch)) != 0)
        return r;
    t->channel = (enum kv_liability_channel)ch;
    if ((r = member(d, v, path, "verification", REQUIRED, &m)) != 0 ||
        (r = decode_verification(d, m, path, &t->verification)) != 0 ||
        (r = get_text(d, v, path, "evidence", OPTIONAL, 1, t->evidence, sizeof t->evidence,
                      &present)) != 0 ||
        (r = get_bool(d, v, path, "final_amount_unknown", false, &t->final_amount_unknown)) != 0)
        return r;
    t->has_evidence = present != 0;
    for (k = 0; k < c->n_cards; k++)
        if (strcmp(c->cards[k].id, card) == 0)
            break;
    if (k == c->n_cards) {
        snprintf(fp, sizeof fp, "%s.card", path);
        printable(card, val);
        return dec_fail(d, fp, "no card \"%s\" in cards", val);
    }
    t->card = k;
    return 0;
}

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

/* see liability.h */
int kv_liability_case_from_json(const json_t *root, struct kv_liability_case **out, char *why,
                                size_t why_len)
{
    static const char *const keys[] = {"currency", "discovered_at", "notified_at",  "objection_at",
                                       "facts",    "cards",         "transactions", NULL};
    struct dec d = {why, why_len};
    struct kv_liability_case *c = NULL;
    json_t *cards, *txns;
    char currency[8], path[64], val[48];
    long dup;
    int r = KV_ERR_INTERNAL, e;

    if (why != NULL && why_len > 0)
        why[0] = '\0';
    if (out == NULL)
        return KV_ERR_ARG;
    *out = NULL;
    if (root == NULL || !json_is_object(root)) {
        r = dec_fail(&d, "case", "must be a JSON object");
        goto out;
    }
    if ((c = calloc(1, sizeof *c)) == NULL) {
        r = KV_ERR_NOMEM;
        goto out;
    }
    if ((r = check_keys(&d, root, "", keys)) != 0 ||
        (r = get_text(&d, root, "", "currency", REQUIRED, 0, currency, sizeof currency, NULL)) != 0)
        goto out;
    if (strcmp(currency, "DKK") != 0) {
        printable(currency, val);
        r = dec_fail(&d, "currency",
                     "\"%s\" is not supported: the caps of § 100 are in kroner (use \"DKK\")", val);
        goto out;
    }
    memcpy(c->currency, "DKK", 4);
    if ((r = get_time(&d, root, "", "discovered_at", REQUIRED, 0, &c->discovered_at, NULL)) != 0 ||
        (r = get_time(&d, root, "", "notified_at", OPTIONAL, 1, &c->notified_at, &c->notified)) !=
            0 ||
        (r = get_time(&d, root, "", "objection_at", REQUIRED, 0, &c->objection_at, NULL)) != 0 ||
        (r = decode_facts(&d, json_object_get(root, "facts"), &c->facts)) != 0 ||
        (r = member(&d, root, "", "cards", REQUIRED, &cards)) != 0 ||
        (r = member(&d, root, "", "transactions", REQUIRED, &txns)) != 0)
        goto out;
    if (!json_is_array(cards)) {
        r = dec_fail(&d, "cards", "must be an array");
        goto out;
    }
    if (json_array_size(cards) > KV_LIABILITY_CARDS_MAX) {
        r = dec_fail(&d, "cards", "more than %d cards", KV_LIABILITY_CARDS_MAX);
        goto out;
    }
    if (!json_is_array(txns)) {
        r = dec_fail(&d, "transactions", "must be an array");
        goto out;
    }
    if (json_array_size(txns) > KV_LIABILITY_TXNS_MAX) {
        r = dec_fail(&d, "transactions", "more than %d transactions", KV_LIABILITY_TXNS_MAX);
        goto out;
    }
    c->n_cards = json_array_size(cards);
    c->n_txns = json_array_size(txns);
    if ((c->n_cards > 0 && (c->cards = calloc(c->n_cards, sizeof *c->cards)) == NULL) ||
        (c->n_txns > 0 && (c->txns = calloc(c->n_txns, sizeof *c->txns)) == NULL)) {
        r = KV_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < c->n_cards; i++)
        if ((r = decode_card(&d, json_array_get(cards, i), i, &c->cards[i])) != 0)
            goto out;
    dup =
        find_duplicate(c->n_cards > 0 ? c->cards[0].id : NULL, c->n_cards, sizeof c->cards[0], &e);
    if (e != 0) {
        r = e;
        goto out;
    }
    if (dup >= 0) {
        snprintf(path, sizeof path, "cards[%ld].id", dup);
        printable(c->cards[dup].id, val);
        r = dec_fail(&d, path, "duplicate card id \"%s\"", val);
        goto out;
    }
    for (size_t i = 0; i < c->n_txns; i++)
        if ((r = decode_txn(&d, json_array_get(txns, i), i, c, &c->txns[i])) != 0)
            goto out;
    dup = find_duplicate(c->n_txns > 0 ? c->txns[0].id : NULL, c->n_txns, sizeof c->txns[0], &e);
    if (e != 0) {
        r = e;
        goto out;
    }
    if (dup >= 0) {
        snprintf(path, sizeof path, "transactions[%ld].id", dup);
        printable(c->txns[dup].id, val);
        r = dec_fail(&d, path, "duplicate transaction id \"%s\"", val);
        goto out;
    }
    *out = c;
    c = NULL; /* transferred */
    r = 0;
out:
    kv_liability_case_free(c);
    return r;
}

/* see liability.h */
int kv_liability_case_parse(const char *text, size_t len, struct kv_liability_case **out, char *why,
                            size_t why_len)
{
    json_error_t jerr;
    json_t *root;
    int r;
    if (out == NULL)
        return KV_ERR_ARG;
    *out = NULL;
    if (why != NULL && why_len > 0)
        why[0] = '\0';
    if (text == NULL)
        len = 0;
    root = json_loadb(text != NULL ? text : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        if (why != NULL && why_len > 0)
            snprintf(why, why_len, "case: not valid JSON (line %d, column %d): %s", jerr.line,
                     jerr.column, jerr.text);
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

/* see liability_evidence.h */
#include "src/liability/liability_evidence.h"

#include "src/base/err.h"
#include "src/evidence/evidence.h"

#include <stdlib.h>
#include <string.h>

static const char *const RECORD_METHODS[] = {
    [KV_LIABILITY_METHOD_OFFLINE_PIN] = "offline_pin",
    [KV_LIABILITY_METHOD_ONLINE_PIN] = "online_pin",
    [KV_LIABILITY_METHOD_SCA] = "sca",
    [KV_LIABILITY_METHOD_WALLET_CODE] = "wallet_code",
    [KV_LIABILITY_METHOD_MOBILE_CODE] = "mobile_code",
    [KV_LIABILITY_METHOD_SIGNATURE] = "signature",
    [KV_LIABILITY_METHOD_NONE] = "none",
    [KV_LIABILITY_METHOD_CVC2] = "cvc2",
};

static const char *const RECORD_FACTORS[KV_LIABILITY_FACTOR_COUNT] = {
    "pin_offline",  "pin_online", "password", "device_code", "chip_cryptogram", "cvc3",   "sms_otp",
    "wallet_token", "biometric",  "mitid",    "cvc2",        "card_number",     "expiry",
};

/* see liability_evidence.h */
int kv_liability_verification_from_record(const json_t *body, const struct kv_liability_txn *txn,
                                          struct kv_liability_verification *v)
{
    json_t *type, *req, *amount, *resp, *decision, *ver, *m, *factors, *b;
    struct kv_liability_verification out = *v;
    size_t i;
    int method = -1;

    if (!json_is_object(body))
        return KV_ERR_EVIDENCE_BROKEN;
    /* only the record of this very payment proves anything about it */
    type = json_object_get(body, "type");
    req = json_object_get(body, "request");
    amount = json_object_get(req, "amount");
    resp = json_object_get(body, "response");
    decision = json_object_get(resp, "decision");
    if (!json_is_string(type) || strcmp(json_string_value(type), "authorization") != 0 ||
        !json_is_integer(amount) || json_integer_value(amount) != txn->amount ||
        !json_is_string(decision) || strcmp(json_string_value(decision), "approve") != 0)
        return KV_ERR_NOT_FOUND;

    ver = json_object_get(body, "verification");
    m = json_object_get(ver, "method");
    if (!json_is_object(ver) || !json_is_string(m))
        return KV_ERR_EVIDENCE_BROKEN;
    for (i = 0; i < sizeof RECORD_METHODS / sizeof RECORD_METHODS[0]; i++)
        if (strcmp(RECORD_METHODS[i], json_string_value(m)) == 0)
            method = (int)i;
    if (method < 0)
        return KV_ERR_EVIDENCE_BROKEN;
    out.method = (enum kv_liability_method)method;
    out.factors = 0;
    /* liability counts only what kortvagt proved (src/RULES.md §2): a record that keeps the
       proven factors apart names them in "proven_factors"; an older record has only "factors" */
    factors = json_object_get(ver, "proven_factors");
    if (!json_is_array(factors))
        factors = json_object_get(ver, "factors");
    for (i = 0; i < json_array_size(factors); i++) {
        const char *f = json_string_value(json_array_get(factors, i));
        for (unsigned k = 0; f != NULL && k < KV_LIABILITY_FACTOR_COUNT; k++)
            if (strcmp(f, RECORD_FACTORS[k]) == 0)
                out.factors |= 1u << k;
    }
    b = json_object_get(ver, "proven");
    if (!json_is_boolean(b))
        return KV_ERR_EVIDENCE_BROKEN;
    out.proven = json_is_true(b);
    if (json_is_boolean(b = json_object_get(ver, "sca_required")))
        out.sca_required = json_is_true(b);
    if (json_is_boolean(b = json_object_get(ver, "per_transaction_code")))
        out.per_transaction_code = json_is_true(b);
    *v = out;
    return 0;
}

/* see liability_evidence.h */
int kv_liability_evidence_from_store(void *ctx, const char *evidence_id,
                                     const struct kv_liability_txn *txn,
                                     struct kv_liability_verification *v)
{
    const struct kv_liability_evidence_store *es = ctx;
    kv_evidence_record rec;
    int64_t id = 0;
    int r;

    /* ids are 1, 2, 3, ... as the authorization returned them */
    if (evidence_id[0] == '\0' || evidence_id[0] == '0' || strlen(evidence_id) > 18)
        return KV_ERR_NOT_FOUND;
    for (const char *p = evidence_id; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return KV_ERR_NOT_FOUND;
        id = id * 10 + (*p - '0');
    }
    memset(&rec, 0, sizeof rec);
    if ((r = kv_evidence_load(es->store, es->mac, id, &rec)) != 0)
        goto out;
    if (!rec.intact || rec.body == NULL) {
        r = KV_ERR_EVIDENCE_BROKEN; /* a broken record proves nothing */
        goto out;
    }
    r = kv_liability_verification_from_record(rec.body, txn, v);
out:
    kv_evidence_record_clear(&rec);
    return r;
}

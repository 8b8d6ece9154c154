/* see sca.h */
#include "src/sca/sca.h"
#include "src/base/err.h"

#include <string.h>

static const struct {
    const char *name;
    unsigned categories;
    int hsm_capable;
} factor_table[KV_FACTOR__COUNT] = {
    [KV_FACTOR_PIN_OFFLINE] = {"pin_offline", KV_CAT_KNOWLEDGE, 0},
    [KV_FACTOR_PIN_ONLINE] = {"pin_online", KV_CAT_KNOWLEDGE, 1},
    [KV_FACTOR_PASSWORD] = {"password", KV_CAT_KNOWLEDGE, 0},
    [KV_FACTOR_DEVICE_CODE] = {"device_code", KV_CAT_KNOWLEDGE, 0},
    [KV_FACTOR_CHIP_CRYPTOGRAM] = {"chip_cryptogram", KV_CAT_POSSESSION, 1},
    [KV_FACTOR_CVC3] = {"cvc3", KV_CAT_POSSESSION, 1},
    /* EBA Op-2019-06 §25: the SMS code proves possession of the phone */
    [KV_FACTOR_SMS_OTP] = {"sms_otp", KV_CAT_POSSESSION, 0},
    [KV_FACTOR_WALLET_TOKEN] = {"wallet_token", KV_CAT_POSSESSION, 0},
    [KV_FACTOR_BIOMETRIC] = {"biometric", KV_CAT_INHERENCE, 0},
    /* the app is possessed and unlocked with a code */
    [KV_FACTOR_MITID] = {"mitid", KV_CAT_POSSESSION | KV_CAT_KNOWLEDGE, 0},
    /* card data are neither knowledge nor possession (EBA Op-2019-06 §28, Q&A 2018_4235) */
    [KV_FACTOR_CVC2] = {"cvc2", 0, 1},
    [KV_FACTOR_CARD_NUMBER] = {"card_number", 0, 0},
    [KV_FACTOR_EXPIRY] = {"expiry", 0, 0},
};

int kv_sca_factor_parse(const char *name, kv_factor_type *out)
{
    for (int i = 0; i < KV_FACTOR__COUNT; i++) {
        if (strcmp(name, factor_table[i].name) == 0) {
            *out = (kv_factor_type)i;
            return 0;
        }
    }
    return KV_ERR_NOT_FOUND;
}

const char *kv_sca_factor_name(kv_factor_type t)
{
    return (unsigned)t < KV_FACTOR__COUNT ? factor_table[t].name : "?";
}

unsigned kv_sca_factor_categories(kv_factor_type t)
{
    return (unsigned)t < KV_FACTOR__COUNT ? factor_table[t].categories : 0;
}

int kv_sca_factor_hsm_capable(kv_factor_type t)
{
    return (unsigned)t < KV_FACTOR__COUNT ? factor_table[t].hsm_capable : 0;
}

size_t kv_sca_category_names(unsigned bits, const char *names[3])
{
    size_t n = 0;
    if (bits & KV_CAT_KNOWLEDGE)
        names[n++] = "knowledge";
    if (bits & KV_CAT_POSSESSION)
        names[n++] = "possession";
    if (bits & KV_CAT_INHERENCE)
        names[n++] = "inherence";
    return n;
}

static int popcount3(unsigned bits)
{
    return (int)((bits & 1) + ((bits >> 1) & 1) + ((bits >> 2) & 1));
}

void kv_sca_evaluate(const kv_sca_factor *f, size_t n, const kv_sca_context *ctx,
                     kv_sca_result *out)
{
    int linked = 0;
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < n; i++) {
        switch (f[i].outcome) {
        case KV_FACTOR_VERIFIED:
            break;
        case KV_FACTOR_FAILED_UPSTREAM:
            out->failed = 1;
            continue;
        case KV_FACTOR_FAILED_HSM:
        case KV_FACTOR_REPLAYED:
            out->failed = 1;
            if (!out->hsm_failed) {
                out->hsm_failed = 1;
                out->hsm_failed_type = f[i].type;
            }
            continue;
        case KV_FACTOR_NOT_CHECKED:
            continue;
        }
        if (ctx->remote && f[i].has_binding) {
            /* RTS Art. 5(1)(b),(2)(b): a code for another amount or payee is invalid */
            if (f[i].bound_amount != ctx->amount || f[i].bound_payee == NULL ||
                ctx->payee == NULL || strcmp(f[i].bound_payee, ctx->payee) != 0) {
                out->binding_mismatch = 1;
                continue;
            }
            linked = 1;
        }
        out->categories |= kv_sca_factor_categories(f[i].type);
        if (f[i].proven)
            out->proven_categories |= kv_sca_factor_categories(f[i].type);
    }
    out->dynamic_linking = ctx->remote ? linked : -1;
    /* RTS Art. 4(1): two or more elements of different categories */
    out->satisfied = popcount3(out->categories) >= 2 && (!ctx->remote || linked);
    /* dynamic linking rests on a binding the request asserts: never proven */
    out->proven_satisfied = popcount3(out->proven_categories) >= 2 && !ctx->remote;
}

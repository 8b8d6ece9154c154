/*
 * libFuzzer target: the authorization request decoder (src/RULES.md §1 JSON) and
 * the pure policy behind it. Any input must decode or be refused with
 * KV_ERR_JSON and a message naming the problem; a decoded request is run
 * through the SCA evaluation and the decision table with default limits.
 */
#include "src/authorize/request.h"
#include "src/base/err.h"
#include "src/base/caltime.h"
#include "src/limits/limits.h"
#include "src/sca/sca.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static kv_auth_request req;
    char err[256];
    int r;

    if (size > 64 * 1024)
        return 0;
    err[0] = '\0';
    r = kv_auth_request_parse((const char *)data, size, &req, err, sizeof(err));
    if (r != 0) {
        if (r != KV_ERR_JSON || err[0] == '\0')
            abort(); /* a refusal always says why */
        return 0;
    }
    if (req.n_factors > KV_REQ_MAX_FACTORS || strlen(req.pan) < 12 || strlen(req.pan) > 19)
        abort();

    kv_sca_factor f[KV_REQ_MAX_FACTORS];
    for (size_t i = 0; i < req.n_factors; i++) {
        f[i].type = req.factors[i].type;
        f[i].outcome = req.factors[i].upstream && !req.factors[i].verified
                           ? KV_FACTOR_FAILED_UPSTREAM
                           : KV_FACTOR_VERIFIED;
        f[i].has_binding = req.factors[i].has_binding;
        f[i].bound_amount = req.factors[i].bound_amount;
        f[i].bound_payee = req.factors[i].has_binding ? req.factors[i].bound_payee : NULL;
        f[i].proven = 0;
    }
    kv_sca_context ctx = {req.channel == KV_CH_ECOMMERCE, req.amount, req.merchant_name};
    kv_limits_config cfg;
    kv_card_policy card;
    kv_decision_in in;
    kv_decision_out out;
    kv_limits_defaults(&cfg);
    kv_card_policy_init(&card);
    memset(&in, 0, sizeof(in));
    kv_sca_evaluate(f, req.n_factors, &ctx, &in.sca);
    in.channel = req.channel;
    in.amount = req.amount;
    in.gambling = kv_mcc_is_gambling(req.mcc);
    in.card_expired = kv_card_expired(req.expiry, req.has_at ? req.at : 0) == 1;
    in.trusted_beneficiary = req.trusted_beneficiary;
    kv_limits_decide(&cfg, &card, &in, &out);
    if (out.reason == NULL || out.rule == NULL)
        abort();
    kv_auth_request_wipe(&req);
    return 0;
}

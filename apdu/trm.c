/*
 * Terminal risk management (EMV Book 3 §10.6) and terminal action analysis
 * (Book 3 §10.7): see trm.h. Pure; no allocation.
 */
#include "apdu/trm.h"

#include <string.h>

#include "apdu/tvr.h"

/* a + b, saturating at UINT64_MAX */
static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* see trm.h */
int kv_trm_random_selected(uint64_t amount, const kv_aid_config *a, unsigned random)
{
    unsigned target = a->target_percent, max = a->max_target_percent;

    /* the draw is 1..99; anything else (a caller's bug) never selects */
    if (random < 1 || random > 99)
        return 0;
    if (amount >= a->floor_limit)
        return 0; /* the floor limit check decides (§10.6.2, last paragraph) */
    if (target > 99)
        target = 99;
    if (max > 99)
        max = 99;
    if (max < target)
        max = target; /* a configuration error: no bias */
    if (amount < a->threshold)
        return random <= target;
    /*
     * threshold <= amount < floor limit (so floor - threshold > 0):
     * transaction target percent = target + (max - target) * (amount -
     * threshold) / (floor - threshold), selected when random <= it. In
     * integers, without the division: random <= target, or (random - target)
     * * (floor - threshold) <= (max - target) * (amount - threshold).
     */
    if (random <= target)
        return 1;
    uint64_t d = a->floor_limit - a->threshold, k = amount - a->threshold;
    while (d > UINT64_MAX / 100) { /* keep both products below 2^64 */
        d >>= 1;
        k >>= 1;
    }
    return (uint64_t)(random - target) * d <= (uint64_t)(max - target) * k;
}

/* see trm.h */
void kv_trm_run(const kv_trm_in *in, const kv_aid_config *a, uint8_t tvr[5], uint8_t tsi[2])
{
    /* §10.6.1: exception file */
    if (in->on_exception_file)
        kv_tvr_set(tvr, KV_TVR_EXCEPTION_FILE);

    /* §10.6.1: floor limit, with the earlier approvals of this card the terminal knows */
    if (add_sat(in->amount, in->prior_amount) >= a->floor_limit)
        kv_tvr_set(tvr, KV_TVR_FLOOR_LIMIT);

    /* §10.6.2: random transaction selection */
    if (kv_trm_random_selected(in->amount, a, in->random))
        kv_tvr_set(tvr, KV_TVR_RANDOM_ONLINE);

    /* §10.6.3: velocity checking, only when the card has both 9F14 and 9F23 */
    if (in->has_lcol && in->has_ucol) {
        if (!in->has_atc || !in->has_last_online_atc || in->atc <= in->last_online_atc) {
            kv_tvr_set(tvr, KV_TVR_LCOL_EXCEEDED);
            kv_tvr_set(tvr, KV_TVR_UCOL_EXCEEDED);
        } else {
            unsigned offline = in->atc - in->last_online_atc;
            if (offline > in->lcol)
                kv_tvr_set(tvr, KV_TVR_LCOL_EXCEEDED);
            if (offline > in->ucol)
                kv_tvr_set(tvr, KV_TVR_UCOL_EXCEEDED);
        }
        if (in->has_last_online_atc && in->last_online_atc == 0)
            kv_tvr_set(tvr, KV_TVR_NEW_CARD);
    }

    if (in->merchant_forced_online)
        kv_tvr_set(tvr, KV_TVR_MERCHANT_ONLINE);

    kv_tsi_set(tsi, KV_TSI_TRM_PERFORMED);
}

/* 1 when (tac | iac) & tvr has a bit set; iac NULL stands for the absent IAC's fill byte */
static int action_match(const uint8_t tvr[5], const uint8_t tac[5], const uint8_t *iac,
                        uint8_t absent)
{
    for (size_t i = 0; i < 5; i++) {
        uint8_t code = (uint8_t)(tac[i] | (iac != NULL ? iac[i] : absent));
        if ((tvr[i] & code) != 0)
            return 1;
    }
    return 0;
}

/* see trm.h */
int kv_taa_first(const uint8_t tvr[5], const kv_aid_config *a, const kv_taa_iac *iac,
                 int online_capable)
{
    /* an absent IAC-Denial counts as all zeros, IAC-Online and IAC-Default as all ones */
    if (action_match(tvr, a->tac_denial, iac != NULL && iac->has_denial ? iac->iac_denial : NULL,
                     0x00))
        return KV_TAA_AAC;
    if (online_capable)
        return action_match(tvr, a->tac_online,
                            iac != NULL && iac->has_online ? iac->iac_online : NULL, 0xFF)
                   ? KV_TAA_ARQC
                   : KV_TAA_TC;
    return kv_taa_unable_online(tvr, a, iac);
}

/* see trm.h */
int kv_taa_unable_online(const uint8_t tvr[5], const kv_aid_config *a, const kv_taa_iac *iac)
{
    return action_match(tvr, a->tac_default,
                        iac != NULL && iac->has_default ? iac->iac_default : NULL, 0xFF)
               ? KV_TAA_AAC
               : KV_TAA_TC;
}

/* see authorize.h — the reversal of an approved authorization (authorize_int.h) */
#include "src/authorize/authorize_int.h"
#include "src/base/err.h"

#include <string.h>

int kv_authz_reverse(kv_authz *a, int64_t id, kv_authz_reversal *out)
{
    int r, found = 0;
    kv_store *s = a->cfg.store;
    kv_txn txn;
    kv_card_state card;
    int64_t now = a->cfg.clock();

    memset(out, 0, sizeof(*out));
    a->err[0] = '\0';
    if ((r = kv_store_begin(s, 1)) != 0)
        return kv_authz_store_err(a, r);
    if ((r = kv_store_txn_get(s, id, &txn, &found)) != 0)
        return kv_authz_end_tx(a, r, 1);
    if (!found)
        r = kv_authz_set_err(a, KV_ERR_NOT_FOUND, "no authorization with evidence id %lld",
                             (long long)id);
    else if (txn.decision != KV_DECISION_APPROVE)
        r = kv_authz_set_err(a, KV_ERR_POLICY,
                             "authorization %lld was not approved (%s): nothing to reverse",
                             (long long)id, kv_decision_name(txn.decision));
    else if (txn.reversed)
        r = kv_authz_set_err(a, KV_ERR_POLICY, "authorization %lld is already reversed",
                             (long long)id);
    if (r != 0)
        return kv_authz_end_tx(a, r, 0);
    if ((r = kv_store_card_get(s, txn.token, &card, NULL)) != 0)
        return kv_authz_end_tx(a, r, 1);
    kv_limits_reverse(&card.policy, txn.family, txn.epoch, txn.amount);
    if ((r = kv_store_day_add(s, txn.token, txn.day, KV_DAY_TOTAL, -txn.amount)) != 0 ||
        (txn.atm && (r = kv_store_day_add(s, txn.token, txn.day, KV_DAY_ATM, -txn.amount)) != 0) ||
        (txn.gambling &&
         (r = kv_store_day_add(s, txn.token, txn.day, KV_DAY_GAMBLING, -txn.amount)) != 0) ||
        (r = kv_store_txn_set_reversed(s, id)) != 0 || (r = kv_store_card_put(s, &card)) != 0)
        return kv_authz_end_tx(a, r, 1);
    out->reversed_id = id;
    kv_authz_fill_counter(a->cfg.limits, &card.policy, kv_authz_shown_family(txn.channel),
                          &out->has_counter, &out->family, &out->counter_kind, &out->counter_value);
    if ((r = kv_authz_record_reversal(a, &txn, card.pan_masked, out, now)) != 0)
        return kv_authz_end_tx(a, r, 0);
    return kv_authz_end_tx(a, 0, 0);
}

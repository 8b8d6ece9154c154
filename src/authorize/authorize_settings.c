/* see authorize.h — the per-card settings (authorize_int.h) */
#include "src/authorize/authorize_int.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/base/secure.h"

int kv_authz_card_settings(kv_authz *a, const char *pan, const kv_card_settings_change *ch,
                           kv_card_state *out, int64_t *evidence_id)
{
    int r = KV_ERR_INTERNAL, in_tx = 0, change, before;
    kv_store *s = a->cfg.store;
    uint8_t token[KV_TOKEN_LEN];
    int64_t now = a->cfg.clock(), id = 0;

    a->err[0] = '\0';
    if (evidence_id != NULL)
        *evidence_id = 0;
    if (!kv_pan_valid(pan))
        return kv_authz_set_err(a, KV_ERR_ARG, "the PAN must be 12..19 digits");
    if ((r = kv_authz_pan_token(a, pan, token)) != 0)
        return r;
    change = ch->set_ecommerce || ch->set_single || ch->set_daily || ch->unblock_sca;
    if ((r = kv_store_begin(s, change)) != 0)
        goto store_fail;
    in_tx = 1;
    if ((r = kv_store_card_get(s, token, out, NULL)) != 0)
        goto store_fail;
    kv_pan_mask(pan, out->pan_masked);
    if (!change) {
        r = 0;
        goto out;
    }
    before = out->policy.sca_failures;
    if (ch->set_ecommerce)
        out->policy.ecommerce_enabled = ch->ecommerce_enabled;
    if (ch->set_single)
        out->policy.spend_single_max = ch->spend_single_max;
    if (ch->set_daily)
        out->policy.spend_daily_max = ch->spend_daily_max;
    if (ch->unblock_sca)
        out->policy.sca_failures = 0; /* RTS Art. 4(3)(b): the issuer unblocks the credential */
    if ((r = kv_authz_record_settings(a, token, out, ch, before, now, &id)) != 0)
        goto out;
    if ((r = kv_store_card_put(s, out)) != 0)
        goto store_fail;
    if ((r = kv_store_commit(s)) != 0)
        goto store_fail;
    in_tx = 0;
    if (evidence_id != NULL)
        *evidence_id = id;
    r = 0;
    goto out;
store_fail:
    kv_authz_store_err(a, r);
out:
    if (in_tx)
        kv_store_rollback(s);
    kv_wipe(token, sizeof(token));
    return r;
}

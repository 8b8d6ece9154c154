/* see authorize.h — the per-card settings (authorize_int.h) */
#include "src/authorize/authorize_int.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/base/secure.h"

/* The settings inside one store transaction (a write transaction when change). */
static int settings_tx(kv_authz *a, const uint8_t token[KV_TOKEN_LEN], const char *pan,
                       const kv_card_settings_change *ch, int change, int64_t now,
                       kv_card_state *out, int64_t *evidence_id)
{
    kv_store *s = a->cfg.store;
    int64_t id = 0;
    int r, before;

    if ((r = kv_store_begin(s, change)) != 0)
        return kv_authz_store_err(a, r);
    if ((r = kv_store_card_get(s, token, out, NULL)) != 0)
        return kv_authz_end_tx(a, r, 1);
    kv_pan_mask(pan, out->pan_masked);
    if (!change) {
        kv_store_rollback(s); /* a read: nothing to commit */
        return 0;
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
        return kv_authz_end_tx(a, r, 0);
    if ((r = kv_store_card_put(s, out)) != 0)
        return kv_authz_end_tx(a, r, 1);
    if ((r = kv_authz_end_tx(a, 0, 0)) == 0 && evidence_id != NULL)
        *evidence_id = id;
    return r;
}

int kv_authz_card_settings(kv_authz *a, const char *pan, const kv_card_settings_change *ch,
                           kv_card_state *out, int64_t *evidence_id)
{
    uint8_t token[KV_TOKEN_LEN];
    int64_t now = a->cfg.clock();
    int r;

    a->err[0] = '\0';
    if (evidence_id != NULL)
        *evidence_id = 0;
    if (!kv_pan_valid(pan))
        return kv_authz_set_err(a, KV_ERR_ARG, "the PAN must be 12..19 digits");
    if ((r = kv_authz_pan_token(a, pan, token)) != 0)
        return r;
    r = settings_tx(a, token, pan, ch,
                    ch->set_ecommerce || ch->set_single || ch->set_daily || ch->unblock_sca, now,
                    out, evidence_id);
    kv_wipe(token, sizeof(token));
    return r;
}

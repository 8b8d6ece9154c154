/* see keys_ensure.h and evidence.h (kv_evidence_keys_ensure) */
#include "src/evidence/keys_ensure.h"
#include "hsm/keys.h"
#include "hsm/p11_admin.h"
#include "src/base/err.h"
#include "src/evidence/evidence.h"
#include "src/store/keyed.h"

#include <stdio.h>

static const kv_policy_key policy_keys[] = {
    {KV_KEY_LABEL_TOKEN, KV_KEY_HMAC, KV_USAGE_TOKEN, "PAN tokens in the store"},
    {KV_KEY_LABEL_EVIDENCE, KV_KEY_HMAC, KV_USAGE_EVIDENCE, "evidence-chain MACs"},
    {KV_KEY_LABEL_PAN_ENC, KV_KEY_AES256, KV_USAGE_PAN_ENC, "recoverable PANs (block-list export)"},
    {KV_KEY_LABEL_STATE_MAC, KV_KEY_HMAC, KV_USAGE_STATE_MAC,
     "row MACs of card state and the block list"},
};

const kv_policy_key *kv_policy_keys(size_t *n)
{
    *n = sizeof(policy_keys) / sizeof(policy_keys[0]);
    return policy_keys;
}

int kv_policy_keys_ensure(kv_hsm *h, void (*made)(void *ctx, const kv_policy_key *k), void *ctx,
                          char *why, size_t why_cap)
{
    char buf[256];
    for (size_t i = 0; i < sizeof(policy_keys) / sizeof(policy_keys[0]); i++) {
        const kv_policy_key *k = &policy_keys[i];
        unsigned long handle;
        kv_keys_result res;
        int r = kv_hsm_object_find(h, k->label, &handle);
        if (r == 0)
            continue;
        if (r != KV_ERR_HSM_KEY) {
            if (why != NULL)
                kv_errf(why, why_cap, "%s", kv_hsm_last_error(h));
            return r;
        }
        if ((r = kv_keys_generate(h, k->label, k->type, k->usage, NULL, 0, &res, buf,
                                  sizeof(buf))) != 0) {
            if (why != NULL)
                kv_errf(why, why_cap, "%s", buf);
            return r;
        }
        if (made != NULL)
            made(ctx, k);
    }
    return 0;
}

int kv_evidence_keys_ensure(kv_hsm *h)
{
    return kv_policy_keys_ensure(h, NULL, NULL, NULL, 0);
}

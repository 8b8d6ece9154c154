/* see evidence.h (kv_evidence_keys_ensure) */
#include "hsm/keys.h"
#include "hsm/p11_admin.h"
#include "src/base/err.h"
#include "src/evidence/evidence.h"
#include "src/store/keyed.h"

#include <stdio.h>

static const struct {
    const char *label;
    kv_key_type type;
    kv_key_usage usage;
} policy_keys[] = {
    {KV_KEY_LABEL_TOKEN, KV_KEY_HMAC, KV_USAGE_TOKEN},       /* PAN tokens */
    {KV_KEY_LABEL_EVIDENCE, KV_KEY_HMAC, KV_USAGE_EVIDENCE}, /* evidence MACs */
    {KV_KEY_LABEL_PAN_ENC, KV_KEY_AES256, KV_USAGE_DEFAULT}, /* recoverable PANs */
};

int kv_evidence_keys_ensure(kv_hsm *h)
{
    char why[256];
    for (size_t i = 0; i < sizeof(policy_keys) / sizeof(policy_keys[0]); i++) {
        unsigned long handle;
        kv_keys_result res;
        int r = kv_hsm_object_find(h, policy_keys[i].label, &handle);
        if (r == 0)
            continue;
        if (r != KV_ERR_HSM_KEY)
            return r;
        if ((r = kv_keys_generate(h, policy_keys[i].label, policy_keys[i].type,
                                  policy_keys[i].usage, NULL, 0, &res, why, sizeof(why))) != 0)
            return r;
    }
    return 0;
}

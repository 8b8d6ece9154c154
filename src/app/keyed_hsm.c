/* see keyed_hsm.h */
#include "src/app/keyed_hsm.h"
#include "src/base/err.h"
#include "src/base/secure.h"
#include "hsm/p11_aead.h"

#include <string.h>

static int hsm_mac_fn(void *ctx, const uint8_t *in, size_t len, uint8_t out[32])
{
    kv_hsm_mac *m = ctx;
    return kv_hsm_hmac_sha256(m->h, &m->key, in, len, out);
}

int kv_hsm_mac_init(kv_hsm_mac *m, kv_hsm *h, const char *label)
{
    int r;
    memset(m, 0, sizeof(*m));
    m->h = h;
    if ((r = kv_hsm_key_find(h, label, &m->key)) != 0)
        return r;
    if (m->key.type != KV_KEY_HMAC)
        return KV_ERR_HSM_KEY;
    return 0;
}

kv_mac kv_hsm_mac_get(kv_hsm_mac *m)
{
    kv_mac mac = {hsm_mac_fn, m};
    return mac;
}

int kv_block_seal(kv_hsm *h, const kv_hsm_key *aes, const uint8_t *ad, size_t ad_len,
                  const uint8_t in[32], uint8_t out[KV_PAN_SEALED_LEN])
{
    out[0] = KV_SEALED_GCM;
    return kv_hsm_gcm_seal(h, aes, ad, ad_len, in, 32, out + 1);
}

int kv_block_open(kv_hsm *h, const kv_hsm_key *aes, const uint8_t *ad, size_t ad_len,
                  const uint8_t in[KV_PAN_SEALED_LEN], uint8_t out[32])
{
    switch (in[0]) {
    case KV_SEALED_GCM:
        return kv_hsm_gcm_open(h, aes, ad, ad_len, in + 1, KV_PAN_SEALED_LEN - 1, out);
    case KV_SEALED_LEGACY_CBC:
        /* schema 2: IV (16) || AES-CBC (32), no associated data (keyed.h) */
        return kv_hsm_cbc_decrypt(h, aes, 0, in + 1, in + 17, 32, out);
    default:
        return KV_ERR_FORMAT;
    }
}

int kv_pan_seal(kv_hsm *h, const kv_hsm_key *aes, const uint8_t *ad, size_t ad_len, const char *pan,
                uint8_t out[KV_PAN_SEALED_LEN])
{
    uint8_t block[32];
    int r;
    size_t n;

    if (!kv_pan_valid(pan))
        return KV_ERR_ARG;
    n = strlen(pan);
    memset(block, 0, sizeof(block));
    block[0] = (uint8_t)n;
    memcpy(block + 1, pan, n);
    r = kv_block_seal(h, aes, ad, ad_len, block, out);
    kv_wipe(block, sizeof(block));
    return r;
}

int kv_pan_unseal(kv_hsm *h, const kv_hsm_key *aes, const uint8_t *ad, size_t ad_len,
                  const uint8_t in[KV_PAN_SEALED_LEN], char pan[20])
{
    uint8_t block[32];
    int r;
    size_t n;

    if ((r = kv_block_open(h, aes, ad, ad_len, in, block)) != 0)
        goto out;
    r = KV_ERR_FORMAT;
    n = block[0];
    if (n < 12 || n > 19)
        goto out;
    memcpy(pan, block + 1, n);
    pan[n] = '\0';
    if (!kv_pan_valid(pan)) {
        kv_wipe(pan, 20);
        goto out;
    }
    r = 0;
out:
    kv_wipe(block, sizeof(block));
    return r;
}

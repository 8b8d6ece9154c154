/*
 * The keyed functions of src/store/keyed.h bound to keys in the PKCS#11
 * token: the composition root (app.h) and the tools that need a key of the
 * token directly use these; the store and the policy modules see only the
 * kv_mac callback.
 */
#ifndef KV_APP_KEYED_HSM_H
#define KV_APP_KEYED_HSM_H

#include "hsm/p11.h"
#include "src/store/keyed.h"

#include <stdint.h>

/* An HSM HMAC key bound to a session (caller-allocated; lives as long as h). */
typedef struct {
    kv_hsm *h;
    kv_hsm_key key;
} kv_hsm_mac;

/*
 * Find the HMAC key label (KV_KEY_LABEL_TOKEN or _EVIDENCE) on h and fill m.
 * Returns 0, KV_ERR_HSM_KEY (absent: run `kortvagt hsm init`) or an HSM error.
 */
int kv_hsm_mac_init(kv_hsm_mac *m, kv_hsm *h, const char *label);
/* A kv_mac that computes CKM_SHA256_HMAC under m's key in the token. */
kv_mac kv_hsm_mac_get(kv_hsm_mac *m);

/*
 * Seal a PAN under the AES key "pan-enc" in the token (keyed.h
 * KV_PAN_SEALED_LEN): the version byte KV_SEALED_GCM, a random IV from the
 * token, AES-256-GCM over (length byte || digits || zero padding) in 32
 * bytes, and the tag. ad (ad_len bytes; the row's PAN token, and what the
 * value is) is authenticated with it: the value opens only with the same ad.
 * Returns 0, KV_ERR_ARG or an HSM error.
 */
int kv_pan_seal(kv_hsm *h, const kv_hsm_key *aes, const uint8_t *ad, size_t ad_len, const char *pan,
                uint8_t out[KV_PAN_SEALED_LEN]);

/*
 * Open what kv_pan_seal produced into pan (20 bytes: digits + NUL); the
 * caller wipes it after use. KV_ERR_FORMAT when the value does not open with
 * ad (changed, or sealed for another row) or the plaintext is not a PAN. A
 * schema-2 value (KV_SEALED_LEGACY_CBC, keyed.h) opens without ad.
 */
int kv_pan_unseal(kv_hsm *h, const kv_hsm_key *aes, const uint8_t *ad, size_t ad_len,
                  const uint8_t in[KV_PAN_SEALED_LEN], char pan[20]);

/*
 * The 32-byte block form underneath (the block list seals its reasons the
 * same way): seal writes KV_PAN_SEALED_LEN bytes, open reverses it.
 */
int kv_block_seal(kv_hsm *h, const kv_hsm_key *aes, const uint8_t *ad, size_t ad_len,
                  const uint8_t in[32], uint8_t out[KV_PAN_SEALED_LEN]);
int kv_block_open(kv_hsm *h, const kv_hsm_key *aes, const uint8_t *ad, size_t ad_len,
                  const uint8_t in[KV_PAN_SEALED_LEN], uint8_t out[32]);

#endif

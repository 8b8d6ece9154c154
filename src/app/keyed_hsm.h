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
 * Encrypt a PAN under the AES key "pan-enc" in the token: a random IV, then
 * AES-CBC over (length byte || digits || zero padding) in 32 bytes.
 * out receives KV_PAN_SEALED_LEN bytes. Returns 0, KV_ERR_ARG or an HSM error.
 */
int kv_pan_seal(kv_hsm *h, const kv_hsm_key *aes, const char *pan, uint8_t out[KV_PAN_SEALED_LEN]);

/*
 * Decrypt what kv_pan_seal produced into pan (20 bytes: digits + NUL); the
 * caller wipes it after use. KV_ERR_FORMAT when the plaintext is not a PAN.
 */
int kv_pan_unseal(kv_hsm *h, const kv_hsm_key *aes, const uint8_t in[KV_PAN_SEALED_LEN],
                  char pan[20]);

#endif

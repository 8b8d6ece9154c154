/*
 * AES-GCM in the token (CKM_AES_GCM) and the token's random generator: the
 * AEAD that seals PANs and block-list values (src/app/keyed_hsm.h) with the
 * row's PAN token as associated data.
 */
#ifndef KV_HSM_P11_AEAD_H
#define KV_HSM_P11_AEAD_H

#include "hsm/p11.h"

#include <stddef.h>
#include <stdint.h>

#define KV_GCM_IV_LEN 12
#define KV_GCM_TAG_LEN 16

/* n random bytes from the token (C_GenerateRandom). Returns 0 or an HSM error. */
int kv_hsm_random(kv_hsm *h, uint8_t *out, size_t n);

/*
 * AES-GCM under key (an AES key): out receives len bytes of ciphertext and
 * then the 16-byte tag. aad (aad_len bytes) is authenticated, not encrypted.
 * Returns 0, KV_ERR_HSM_KEY (not an AES key), KV_ERR_HSM_MECHANISM or an
 * HSM error.
 */
int kv_hsm_aes_gcm_encrypt(kv_hsm *h, const kv_hsm_key *key, const uint8_t iv[KV_GCM_IV_LEN],
                           const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len,
                           uint8_t *out);

/*
 * The inverse: in is ciphertext || tag (len >= 16), out receives len - 16
 * bytes. KV_ERR_FORMAT when the tag does not verify (a changed value, or
 * other associated data).
 */
int kv_hsm_aes_gcm_decrypt(kv_hsm *h, const kv_hsm_key *key, const uint8_t iv[KV_GCM_IV_LEN],
                           const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len,
                           uint8_t *out);

/*
 * Seal: a fresh IV from the token, then out = IV (12) || ciphertext (len) ||
 * tag (16). Open reverses it (in_len = 12 + len + 16; out receives len
 * bytes); KV_ERR_FORMAT when the tag does not verify.
 */
int kv_hsm_gcm_seal(kv_hsm *h, const kv_hsm_key *key, const uint8_t *aad, size_t aad_len,
                    const uint8_t *in, size_t len, uint8_t *out);
int kv_hsm_gcm_open(kv_hsm *h, const kv_hsm_key *key, const uint8_t *aad, size_t aad_len,
                    const uint8_t *in, size_t in_len, uint8_t *out);

#endif

/*
 * Keyed functions the policy layer uses without seeing a key: HMAC-SHA256
 * for PAN tokens and evidence MACs, and PAN encryption for the numbers that
 * must stay recoverable (block-list export). In production the keys live in
 * the PKCS#11 token (DESIGN.md: "PAN tokens for the store: HMAC-SHA256 in
 * the token; evidence MAC: HMAC-SHA256 under its own key"); the kv_mac
 * indirection lets unit tests of the policy run without an HSM.
 */
#ifndef KV_STORE_KEYED_H
#define KV_STORE_KEYED_H

#include "hsm/p11.h"

#include <stddef.h>
#include <stdint.h>

/* Key labels in the token, created by `kortvagt hsm init` (kv_evidence_keys_ensure). */
#define KV_KEY_LABEL_TOKEN "token"
#define KV_KEY_LABEL_EVIDENCE "evidence"
#define KV_KEY_LABEL_PAN_ENC "pan-enc"

/* An HMAC-SHA256 whose key the caller does not hold. fn returns 0 or KV_ERR_*. */
typedef struct {
    int (*fn)(void *ctx, const uint8_t *in, size_t len, uint8_t out[32]);
    void *ctx;
} kv_mac;

static inline int kv_mac_compute(const kv_mac *m, const uint8_t *in, size_t len, uint8_t out[32])
{
    return m->fn(m->ctx, in, len, out);
}

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

/* 1 if pan is 12..19 decimal digits (ISO/IEC 7812), else 0. */
int kv_pan_valid(const char *pan);

/* The PAN token: HMAC-SHA256(token key, PAN digits). KV_ERR_ARG for a bad PAN. */
int kv_pan_token(const kv_mac *token_key, const char *pan, uint8_t out[32]);

#define KV_PAN_SEALED_LEN 48 /* IV (16) || AES-CBC of one 32-byte block pair */

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

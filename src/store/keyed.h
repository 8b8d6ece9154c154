/*
 * Keyed functions the policy layer uses without seeing a key: HMAC-SHA256
 * for PAN tokens and evidence MACs. In production the keys live in the
 * PKCS#11 token (PAN tokens: HMAC-SHA256 computed in the token; evidence
 * MAC: HMAC-SHA256 under its own key), but the store and the policy modules
 * only see the kv_mac callback: the composition root binds it to the HSM
 * (src/app/keyed_hsm.h), unit tests of the policy bind it to a clear key.
 */
#ifndef KV_STORE_KEYED_H
#define KV_STORE_KEYED_H

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

/* 1 if pan is 12..19 decimal digits (ISO/IEC 7812), else 0. */
int kv_pan_valid(const char *pan);

/* The PAN token: HMAC-SHA256(token key, PAN digits). KV_ERR_ARG for a bad PAN. */
int kv_pan_token(const kv_mac *token_key, const char *pan, uint8_t out[32]);

/* What kv_pan_seal (src/app/keyed_hsm.h) writes: IV (16) || AES-CBC of one 32-byte block pair. */
#define KV_PAN_SEALED_LEN 48

#endif

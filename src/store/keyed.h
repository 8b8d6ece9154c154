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
#define KV_KEY_LABEL_STATE_MAC "state-mac" /* row MACs of card state and block list */

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

/*
 * What kv_pan_seal (src/app/keyed_hsm.h) and the block list's sealer write:
 * a version byte, then for KV_SEALED_GCM: IV (12) || AES-256-GCM of one
 * 32-byte block (32) || tag (16), with the row's PAN token as associated
 * data, so a sealed value opens only in its own row.
 *
 * Schema 2 stores hold 48-byte values, IV (16) || AES-CBC (32), without a
 * version byte and without associated data; the backends read them as
 * KV_SEALED_LEGACY_CBC || the 48 bytes || zeros (kv_sealed_load), and the
 * unseal functions still open them (they cannot be re-sealed in SQL: the
 * key is in the HSM). Every value sealed from schema 3 on is GCM; the row
 * MAC covers legacy values too, so they cannot move between rows either.
 */
#define KV_PAN_SEALED_LEN 61
#define KV_SEALED_LEGACY_LEN 48
#define KV_SEALED_LEGACY_CBC 0x00
#define KV_SEALED_GCM 0x01

/* A sealed column of n bytes into out[KV_PAN_SEALED_LEN]; an unknown length gives zeros. */
static inline void kv_sealed_load(uint8_t out[KV_PAN_SEALED_LEN], const uint8_t *in, size_t n)
{
    size_t i;
    for (i = 0; i < KV_PAN_SEALED_LEN; i++)
        out[i] = 0;
    if (in != NULL && n == KV_PAN_SEALED_LEN) {
        for (i = 0; i < n; i++)
            out[i] = in[i];
    } else if (in != NULL && n == KV_SEALED_LEGACY_LEN) {
        out[0] = KV_SEALED_LEGACY_CBC;
        for (i = 0; i < n; i++)
            out[1 + i] = in[i];
    }
}

#endif

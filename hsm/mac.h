/*
 * ISO/IEC 9797-1 MACs on DES keys, built from the 3DES ECB/CBC primitives of
 * p11.h only (SoftHSM2 and many tokens have no DES MAC mechanism).
 *
 * Single DES under half A of a double-length key (A,B) equals 3DES-EDE under
 * A||A, the companion object the key ceremony stores as "<label>.aa"
 * (kv_hsm_key.companion). So:
 *   algorithm 1: H = CBC-MAC of the padded data (IV zero) under the key;
 *   algorithm 3: h = single-DES CBC-MAC under A over x1..x(n-1) (the
 *                companion), MAC = 3DES-EDE(A,B)(h XOR xn).
 * Both return the full 8-byte block; callers truncate.
 *
 * Key roles (p11.h): the key must have role mac, or be a card key derived to
 * MAC (KV_ROLE_ICC_AC, KV_ROLE_ICC_CVC3, KV_ROLE_ICC_SMI); any other role is
 * refused before any token work with KV_ERR_HSM_ROLE (kv_hsm_last_error
 * names the key's role and "mac").
 */
#ifndef KV_HSM_MAC_H
#define KV_HSM_MAC_H

#include "hsm/p11.h"

#include <stddef.h>
#include <stdint.h>

#define KV_DES_BLOCK 8
#define KV_AES_BLOCK 16

/* ISO/IEC 9797-1 padding methods. */
enum {
    KV_MAC_PAD1 = 1, /* zeros up to a block boundary; nothing if already aligned
                        (empty input becomes one zero block) */
    KV_MAC_PAD2 = 2, /* one 0x80 byte, then zeros up to a block boundary */
};

/*
 * Pure. Length of len bytes after padding method pad (KV_MAC_PAD1/2) to
 * 8-byte blocks; 0 for an unknown method.
 */
size_t kv_mac_padded_len(int pad, size_t len);

/*
 * Pure. Write in (len bytes) padded by method pad to out (capacity cap).
 * in and out may be the same buffer. Returns the padded length,
 * KV_ERR_ARG for an unknown method or KV_ERR_BUFFER when cap is too small.
 */
int kv_mac_pad(int pad, const uint8_t *in, size_t len, uint8_t *out, size_t cap);

/*
 * MAC algorithm 3 ("retail MAC") under a double-length DES key that has its
 * A||A companion. The data are padded by method pad. out receives the 8-byte
 * MAC. Returns 0, KV_ERR_HSM_ROLE (see above), KV_ERR_HSM_KEY when key is
 * not DES2 or has no companion, KV_ERR_ARG, KV_ERR_NOMEM or an HSM error.
 */
int kv_hsm_mac_alg3(kv_hsm *h, const kv_hsm_key *key, int pad, const uint8_t *in, size_t len,
                    uint8_t out[KV_DES_BLOCK]);

/*
 * MAC algorithm 1 (CBC-MAC, IV zero) over the data padded by method pad,
 * under the key itself (use_companion 0: 3DES) or single DES under A
 * (use_companion 1). Returns as kv_hsm_mac_alg3.
 */
int kv_hsm_mac_alg1(kv_hsm *h, const kv_hsm_key *key, int use_companion, int pad, const uint8_t *in,
                    size_t len, uint8_t out[KV_DES_BLOCK]);

#endif

/*
 * AES-128 key derivation in the token for the AES variants of EMV Book 2
 * Annex A1.3/A1.4 (EMV CCD cryptogram version 6): the derived key's value
 * is AES-ECB(parent, data) with CKM_AES_ECB_ENCRYPT_DATA, created as a
 * session object that is sensitive, not extractable, not modifiable and not
 * copyable; the value never leaves the token. hsm/emv_crypto.c uses it.
 */
#ifndef KV_HSM_P11_AES_DERIVE_H
#define KV_HSM_P11_AES_DERIVE_H

#include "hsm/p11.h"

#include <stdint.h>

/* What a derived AES key may do (ORed). */
enum {
    KV_AES_DERIVED_DERIVE = 1,  /* a parent in turn (an ICC master key) */
    KV_AES_DERIVED_SIGN = 2,    /* AES-CMAC (CKM_AES_CMAC): cryptograms, ARPC method 2 */
    KV_AES_DERIVED_ENCRYPT = 4, /* AES-ECB/CBC (ARPC method 1, secure-messaging confidentiality) */
};

/*
 * Derive a 16-byte AES key whose value is AES-ECB(parent)[data] (one block)
 * from an AES-128 parent (a token IMK or a derived ICC master key), with the
 * usage bits of uses (KV_AES_DERIVED_*); a parent-to-be also gets the derive
 * template where the module knows it. Role: the ICC role of an IMK parent
 * (imk -> icc-ac, imk-smi -> icc-smi, ...), else the parent's role. Release
 * with kv_hsm_key_destroy. Returns 0, KV_ERR_HSM_KEY (parent not AES-128) or
 * an HSM error.
 */
int kv_hsm_derive_aes128(kv_hsm *h, const kv_hsm_key *parent, const uint8_t data[16], unsigned uses,
                         kv_hsm_key *out);

#endif

/*
 * The key ceremony: import a key from clear components, generate one inside
 * the token, compute key check values, delete a key. Every key is created
 * once with its final attributes (issue 11): CKA_SENSITIVE true,
 * CKA_EXTRACTABLE false, CKA_PRIVATE true, CKA_MODIFIABLE false, CKA_COPYABLE
 * false, its role in CKA_ID (KV_HSM_ROLE_ID_PREFIX, p11.h), and only the usage
 * attributes its role needs; no attribute is changed afterwards.
 *
 *   role (--usage)  types                 attributes
 *   cvk             des2                  encrypt                + A||A companion
 *   pvk             des2 | des3           encrypt
 *   pin             des2 | des3 | aes*    encrypt + decrypt      (TPK, ZPK, PIN blocks)
 *   imk             des2 | aes128         derive + derive template  (AC issuer master key;
 *                                         aes128 for EMV CCD CVN 6)
 *   imk-cvc3        des2                  derive + derive template
 *   imk-smi         des2                  derive + derive template
 *   imk-smc         des2                  derive + derive template
 *   mac             des2 | aes*           encrypt (DES, + A||A) / sign + verify (AES CMAC)
 *   kek             des2 | des3 | aes*    wrap + unwrap
 *   token           hmac                  sign + verify          (PAN tokens)
 *   evidence        hmac                  sign + verify          (evidence MAC)
 *   state-mac       hmac                  sign + verify          (card-state / block-list rows)
 *   pan-enc         aes*                  encrypt + decrypt      (sealed PANs)
 *   (none)          des*, aes*: encrypt + decrypt; hmac: sign + verify; role "none":
 *                   usable by no payment operation
 *
 * The derive template is CKA_DERIVE_TEMPLATE {CKA_SENSITIVE true,
 * CKA_EXTRACTABLE false}: a module that enforces it derives nothing clear
 * from an IMK. SoftHSM2 2.6 does not know the attribute
 * (CKR_ATTRIBUTE_TYPE_INVALID); the key is then created without it and
 * kv_keys_result.derive_template says so. On such a module a holder of the
 * token PIN can derive extractable keys from an IMK: see README, trust
 * boundary.
 *
 * The A||A companion ("<label>.aa") holds the left half of a double-length
 * key twice: 3DES-EDE under A||A is single DES under A, which ISO 9797-1 MAC
 * algorithm 3 and CVV need (README, "The HSM: keys and payment cryptography").
 * It carries the role and usage of its key.
 *
 * KCVs (keymat.h) are computed by the token. Where a key's role does not
 * include the KCV operation (a KEK neither encrypts nor signs, an IMK only
 * derives), the KCV comes from a twin: a session object of the same value
 * that may only encrypt (DES, AES) or sign (HMAC), destroyed at once. On
 * import the twin is created from the same clear value; on generate the key
 * and its twin are derived from one random seed with the same data (below).
 * An AES key that may encrypt but not sign gets its AES-CMAC KCV from two ECB
 * encryptions (RFC 4493: CMAC(K, 0^16) = E_K(dbl(E_K(0^16)))), so it never
 * signs.
 *
 * Generating a key with an A||A companion or a twin cannot use C_GenerateKey
 * alone: the value is never visible. Instead a random DES3 seed key is
 * generated as a session object (derive only), the key is derived as
 * 3DES-ECB(seed, d1||d2[||d3||d4]) = E(d1)||E(d2)... with
 * CKM_DES3_ECB_ENCRYPT_DATA, the companion as 3DES-ECB(seed, d1||d1) =
 * E(d1)||E(d1), the twin with the key's own data, and seed and twin are
 * destroyed: the parts E(di) are pseudorandom under a 168-bit random key that
 * no longer exists. d1..d4 are fixed public constants.
 */
#ifndef KV_HSM_KEYS_H
#define KV_HSM_KEYS_H

#include "hsm/p11.h"

#include <stddef.h>
#include <stdint.h>

/*
 * The ceremony's usage is the key's role (p11.h): kv_key_usage is kv_key_role
 * and the KV_USAGE_* names map 1:1 onto roles (KV_USAGE_IMK is the AC issuer
 * master key, --usage imk). KV_USAGE_DEFAULT (no --usage) is KV_ROLE_NONE.
 */
typedef kv_key_role kv_key_usage;
#define KV_USAGE_DEFAULT KV_ROLE_NONE
#define KV_USAGE_CVK KV_ROLE_CVK
#define KV_USAGE_PVK KV_ROLE_PVK
#define KV_USAGE_PIN KV_ROLE_PIN
#define KV_USAGE_IMK KV_ROLE_IMK_AC
#define KV_USAGE_IMK_CVC3 KV_ROLE_IMK_CVC3
#define KV_USAGE_IMK_SMI KV_ROLE_IMK_SMI
#define KV_USAGE_IMK_SMC KV_ROLE_IMK_SMC
#define KV_USAGE_MAC KV_ROLE_MAC
#define KV_USAGE_KEK KV_ROLE_KEK
#define KV_USAGE_TOKEN KV_ROLE_TOKEN
#define KV_USAGE_EVIDENCE KV_ROLE_EVIDENCE
#define KV_USAGE_PAN_ENC KV_ROLE_PAN_ENC
#define KV_USAGE_STATE_MAC KV_ROLE_STATE_MAC

#define KV_KEYS_LABEL_MAX 60 /* so that "<label>.aa" fits kv_hsm_key.label */
#define KV_KEYS_ID_MAX 64    /* bytes of a CKA_ID given to import or generate */

/* kv_key_role_name, but "default" for KV_USAGE_DEFAULT; never NULL. */
const char *kv_key_usage_name(kv_key_usage u);
/*
 * Parse a --usage name (the role names of the ceremony: cvk, pvk, pin, imk,
 * imk-cvc3, imk-smi, imk-smc, mac, kek, token, evidence, pan-enc, state-mac);
 * 0 or KV_ERR_ARG. "none", "default" and the derived icc-* roles are refused.
 */
int kv_key_usage_parse(const char *s, kv_key_usage *out);

/*
 * THE table of what a key of each role gets (see the top of this file): the
 * usage attributes (KV_HSM_USE_*) of a key of type t for role u and whether
 * it has an A||A companion. Every key with KV_HSM_USE_DERIVE also gets the
 * derive template. Returns 0, or KV_ERR_ARG (with why) when the type does not
 * fit the role or the role is not one the ceremony creates (icc-*).
 */
int kv_keys_policy(kv_key_type t, kv_key_usage u, unsigned *attrs, int *companion, char *why,
                   size_t why_cap);

/*
 * A label the ceremony accepts: 1..KV_KEYS_LABEL_MAX characters of
 * A-Z a-z 0-9 . _ -, not ending in ".aa" (reserved for companions).
 * Returns 0 or KV_ERR_ARG with why.
 */
int kv_keys_label_check(const char *label, char *why, size_t why_cap);

/*
 * 0 when neither label nor "<label>.aa" exists on the token; KV_ERR_ARG (with
 * why) when one does; another code when the token cannot be searched.
 */
int kv_keys_label_free(kv_hsm *h, const char *label, char *why, size_t why_cap);

typedef struct {
    char label[64];
    kv_key_type type;
    kv_key_usage usage;
    uint8_t kcv[3];
    int has_companion;
    uint8_t companion_kcv[3];
    int weak; /* stored with the weak-key mark (single-DES strength, p11.h) */
    /* derive keys: 1 with CKA_DERIVE_TEMPLATE, -1 the module does not know it; else 0 */
    int derive_template;
} kv_keys_result;

/*
 * Store the clear key (key_len bytes, already combined and parity-fixed by
 * kv_keymat_combine) as a token key labelled label. If kcv is not NULL
 * (kcv_len 2 or 3), the KCV the token computes on the stored object must
 * match it; otherwise the object is destroyed and KV_ERR_HSM_KCV returned.
 * A label (or "<label>.aa") that exists is refused with KV_ERR_ARG. Nothing
 * is left on the token after any failure. id (may be NULL, at most
 * KV_KEYS_ID_MAX bytes) becomes CKA_ID. A DES key with two equal 8-byte parts
 * (single-DES strength) is refused with KV_ERR_ARG. why (capacity why_cap)
 * receives a one-line reason on failure.
 */
int kv_keys_import(kv_hsm *h, const char *label, kv_key_type t, kv_key_usage u, const uint8_t *id,
                   size_t id_len, const uint8_t *key, size_t key_len, const uint8_t *kcv,
                   size_t kcv_len, kv_keys_result *res, char *why, size_t why_cap);

/*
 * kv_keys_import that also stores a DES2 key whose halves are equal (public
 * test vectors use such keys): the object, and its A||A companion, get the
 * weak-key mark of p11.h (CKA_ID = KV_HSM_WEAK_ID_PREFIX || id) and
 * res->weak is set. A DES3 key with equal parts is still refused.
 */
int kv_keys_import_single_des(kv_hsm *h, const char *label, kv_key_type t, kv_key_usage u,
                              const uint8_t *id, size_t id_len, const uint8_t *key, size_t key_len,
                              const uint8_t *kcv, size_t kcv_len, kv_keys_result *res, char *why,
                              size_t why_cap);

/* Generate a token key inside the token (see above for keys with a companion). */
int kv_keys_generate(kv_hsm *h, const char *label, kv_key_type t, kv_key_usage u, const uint8_t *id,
                     size_t id_len, kv_keys_result *res, char *why, size_t why_cap);

/*
 * KCV of an existing key object by the conventions of keymat.h, computed by
 * the token. usage is the object's KV_HSM_USE_* set; KV_ERR_UNSUPPORTED when
 * it allows no way to the KCV (DES: encrypt; AES: sign, or encrypt;
 * HMAC: sign).
 */
int kv_keys_kcv(kv_hsm *h, unsigned long handle, kv_key_type t, unsigned usage, uint8_t kcv[3]);

/*
 * Delete the token key labelled label and its companion. A companion label
 * ("x.aa" of an existing "x") is refused. *deleted receives the number of
 * objects destroyed. KV_ERR_HSM_KEY when no such key exists.
 */
int kv_keys_delete(kv_hsm *h, const char *label, int *deleted, char *why, size_t why_cap);

#endif

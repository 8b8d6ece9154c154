/*
 * The key ceremony: import a key from clear components, generate one inside
 * the token, compute key check values, delete a key -- always with
 * CKA_SENSITIVE true, CKA_EXTRACTABLE false, CKA_PRIVATE true, and only the
 * usage attributes the key's purpose needs:
 *
 *   usage     types                      attributes
 *   cvk       des2                       encrypt            + A||A companion
 *   mac       des2 | aes*                encrypt (DES) / sign+verify (AES CMAC)
 *                                                           + A||A companion (des2)
 *   pvk       des2 | des3                encrypt
 *   pin       des2 | des3 | aes*         encrypt + decrypt  (TPK, ZPK, PIN blocks)
 *   imk       des2                       derive + encrypt   + A||A companion
 *   kek       des2 | des3 | aes*         wrap + unwrap
 *   token     hmac                       sign + verify      (PAN tokens)
 *   evidence  hmac                       sign + verify      (evidence MAC)
 *   (none)    des*, aes*: encrypt + decrypt; hmac: sign + verify
 *
 * The A||A companion ("<label>.aa") holds the left half of a double-length
 * key twice: 3DES-EDE under A||A is single DES under A, which ISO 9797-1 MAC
 * algorithm 3 and CVV need (README, "The HSM: keys and payment cryptography").
 *
 * KCVs (keymat.h) are computed by the token on the stored object. Where a
 * key's usage does not include the KCV operation (a KEK can neither encrypt
 * nor sign), the object is created with that one attribute also true, the
 * KCV is computed, and the attribute is then set to false. An AES key that
 * may encrypt but not sign gets its AES-CMAC KCV from two ECB encryptions
 * (RFC 4493: CMAC(K, 0^16) = E_K(dbl(E_K(0^16)))), so it never signs.
 *
 * Generating a key with an A||A companion cannot use C_GenerateKey: A is
 * never visible, so A||A could not be built. Instead a random DES3 seed key
 * is generated as a session object (derive only), the key is derived as
 * 3DES-ECB(seed, d1||d2) = E(d1)||E(d2) and the companion as
 * 3DES-ECB(seed, d1||d1) = E(d1)||E(d1) with CKM_DES3_ECB_ENCRYPT_DATA, and
 * the seed is destroyed: A = E(d1), B = E(d2) are pseudorandom under a
 * 168-bit random key that no longer exists. d1, d2 are fixed public
 * constants.
 */
#ifndef KV_HSM_KEYS_H
#define KV_HSM_KEYS_H

#include "hsm/p11.h"

#include <stddef.h>
#include <stdint.h>

typedef enum {
    KV_USAGE_DEFAULT = 0,
    KV_USAGE_CVK,
    KV_USAGE_PVK,
    KV_USAGE_PIN,
    KV_USAGE_IMK,
    KV_USAGE_MAC,
    KV_USAGE_KEK,
    KV_USAGE_TOKEN,
    KV_USAGE_EVIDENCE,
} kv_key_usage;

#define KV_KEYS_LABEL_MAX 60 /* so that "<label>.aa" fits kv_hsm_key.label */
#define KV_KEYS_ID_MAX 64    /* bytes of a CKA_ID given to import or generate */

/* "cvk", ...; "default" for KV_USAGE_DEFAULT; never NULL. */
const char *kv_key_usage_name(kv_key_usage u);
/* Parse a usage name; 0 or KV_ERR_ARG. */
int kv_key_usage_parse(const char *s, kv_key_usage *out);

/*
 * The usage attributes (KV_HSM_USE_*) of a key of type t for usage u and
 * whether it has an A||A companion. Returns 0, or KV_ERR_ARG (with why) when
 * the type does not fit the usage.
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

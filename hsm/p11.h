/*
 * PKCS#11 access: the only module that calls a PKCS#11 function. Everything
 * else in hsm/ works through these calls, with key handles that never expose
 * a key value.
 *
 * One kv_hsm is one logged-in session of one process (or thread); it is a
 * heap object (kv_hsm_open / kv_hsm_close). On CKR_SESSION_HANDLE_INVALID or
 * CKR_DEVICE_REMOVED a call reopens the session and logs in once more, then
 * retries once. Every CK_RV is translated to a KV_ERR_* code here; the last
 * failure's text (the CK_RV name and what was being done) is kept for
 * kv_hsm_last_error().
 */
#ifndef KV_HSM_P11_H
#define KV_HSM_P11_H

#include "src/base/secure.h"

#include <stddef.h>
#include <stdint.h>

#define KV_HSM_DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define KV_HSM_DEFAULT_TOKEN "kortvagt"
#define KV_HSM_PIN_MAX 256 /* bytes of a token PIN */

typedef struct kv_hsm kv_hsm;

/*
 * The HSM settings, resolved by the front end (flags, environment, config
 * file; this module reads no environment). Zero-initialise and set what is
 * known; the struct only borrows its pointers.
 */
typedef struct {
    const char *module; /* PKCS#11 module path; NULL or "": the module-path of a token URI,
                           then KV_HSM_DEFAULT_MODULE */
    const char *token;  /* token label, or an RFC 7512 pkcs11: URI (token=, serial=,
                           slot-id=, module-path= ...); NULL or "": KV_HSM_DEFAULT_TOKEN */
    kv_secbuf *pin;     /* the user PIN in locked memory (pin_len bytes; not freed here);
                           NULL: none, and an open that logs in fails with KV_ERR_HSM_LOGIN */
    size_t pin_len;
} kv_hsm_config;

/*
 * Load the module, C_Initialize (CKF_OS_LOCKING_OK), find the token, open a
 * read-write session and log in as user with cfg->pin. The open copies the
 * PIN into its own locked buffer for a session reopen and never prints it.
 * Returns 0, KV_ERR_HSM_MODULE, KV_ERR_HSM_TOKEN, KV_ERR_HSM_LOGIN (also: no
 * PIN given) or KV_ERR_HSM; kv_hsm_last_error(NULL) says why.
 * PKCS#11 login belongs to the process: while another kv_hsm of this process
 * is logged in to the token, the PIN is not checked again. In a forking
 * daemon, open in each worker after fork().
 */
int kv_hsm_open(const kv_hsm_config *cfg, kv_hsm **out);
/* Log out, close, finalize, unload. NULL is a no-op. */
void kv_hsm_close(kv_hsm *h);
/*
 * Text of the last failure on h (CK_RV name and context), "" if none. With
 * h NULL: why the last kv_hsm_open of this thread failed (names the module
 * path, the token or "token login failed: CKR_PIN_INCORRECT (wrong user PIN)").
 */
const char *kv_hsm_last_error(const kv_hsm *h);

typedef enum {
    KV_KEY_DES2, /* double-length 3DES (A||B) */
    KV_KEY_DES3, /* triple-length 3DES */
    KV_KEY_AES128,
    KV_KEY_AES192,
    KV_KEY_AES256,
    KV_KEY_HMAC, /* CKK_GENERIC_SECRET, >= 32 bytes, HMAC-SHA256 */
} kv_key_type;

/*
 * Key roles (issue 11). Every key the ceremony creates carries exactly one
 * role, fixed at creation (recorded on the token object so that it cannot be
 * changed: the object is CKA_MODIFIABLE false) and read by kv_hsm_key_find.
 * Every payment operation names the role it needs and refuses a key of any
 * other role with KV_ERR_HSM_ROLE, the message naming both roles
 * (kv_hsm_key_require_role). Derived session keys get the role of what they
 * are (an ICC master key derived from an imk-ac is KV_ROLE_ICC_AC, ...).
 * The CLI names (`key import/generate --usage`) are those of kv_key_role_name.
 */
typedef enum {
    KV_ROLE_NONE = 0,  /* no role recorded (a key made outside the ceremony): usable by nothing */
    KV_ROLE_CVK,       /* "cvk": CVV, CVC2, iCVV */
    KV_ROLE_PVK,       /* "pvk": Visa PVV and IBM 3624 PIN verification keys */
    KV_ROLE_PIN,       /* "pin": PIN block keys (TPK/ZPK): decrypt/translate PIN blocks */
    KV_ROLE_IMK_AC,    /* "imk": issuer master key for application cryptograms */
    KV_ROLE_IMK_CVC3,  /* "imk-cvc3": issuer master key for CVC3 (dynamic CVC) */
    KV_ROLE_IMK_SMI,   /* "imk-smi": issuer master key for secure messaging integrity */
    KV_ROLE_IMK_SMC,   /* "imk-smc": issuer master key for secure messaging confidentiality */
    KV_ROLE_MAC,       /* "mac": ISO 9797-1 / CMAC message authentication */
    KV_ROLE_KEK,       /* "kek": wraps and unwraps other keys */
    KV_ROLE_TOKEN,     /* "token": HMAC for PAN tokens */
    KV_ROLE_EVIDENCE,  /* "evidence": HMAC over evidence records */
    KV_ROLE_PAN_ENC,   /* "pan-enc": AES key sealing PANs and block-list reasons */
    KV_ROLE_STATE_MAC, /* "state-mac": HMAC over card-state and block-list rows */
    KV_ROLE_ICC_AC,    /* derived: ICC master key (AC) or its session key */
    KV_ROLE_ICC_CVC3,  /* derived: ICC key for CVC3 */
    KV_ROLE_ICC_SMI,   /* derived: ICC / session key for secure messaging integrity */
    KV_ROLE_ICC_SMC,   /* derived: ICC / session key for secure messaging confidentiality */
    KV_ROLE__COUNT
} kv_key_role;

/* "cvk", "imk", "imk-cvc3", ...; "none" for KV_ROLE_NONE; never NULL. */
const char *kv_key_role_name(kv_key_role r);
/* Parse a role name; 0 or KV_ERR_ARG. */
int kv_key_role_parse(const char *s, kv_key_role *out);

typedef struct {
    unsigned long handle;    /* CK_OBJECT_HANDLE of the key (A||B) */
    unsigned long companion; /* CK_OBJECT_HANDLE of A||A for MAC algorithm 3, 0 if none */
    kv_key_type type;
    int session_object; /* 1: derived, destroy with kv_hsm_key_destroy */
    int weak;           /* 1: single-DES strength (see KV_HSM_WEAK_ID_PREFIX) */
    kv_key_role role;   /* the role recorded with the token object (or given to a derived key) */
    char label[64];
} kv_hsm_key;

/*
 * 0 when key has role want; else KV_ERR_HSM_ROLE with kv_hsm_last_error(h)
 * saying e.g. "key 'imk1' has role imk; this operation needs a cvk key".
 */
int kv_hsm_key_require_role(kv_hsm *h, const kv_hsm_key *key, kv_key_role want);

/*
 * Forget every cached key handle of h (the daemon calls it on SIGHUP): the
 * next kv_hsm_key_find and every operation on an earlier-found kv_hsm_key
 * look the token object up again, so a deleted or rotated key is noticed.
 */
void kv_hsm_keys_flush(kv_hsm *h);

/*
 * Weak keys. Public test vectors (Visa PVV, IBM 3624, PIN blocks) use
 * double-length DES keys whose halves are equal: single-DES strength. The key
 * ceremony stores such a key only when asked to (`kortvagt key import
 * --allow-single-des`) and marks it on the token object itself: its CKA_ID
 * begins with the bytes of KV_HSM_WEAK_ID_PREFIX, followed by the CKA_ID the
 * importer asked for, if any. CKA_ID is a standard attribute every token
 * keeps and copies, so the mark survives C_CopyObject, a token backup and
 * other PKCS#11 tools; kv_hsm_key_find reads it in the same
 * C_GetAttributeValue as the key type, so checking it costs nothing. A key
 * derived from a weak key is weak too.
 */
#define KV_HSM_WEAK_ID_PREFIX "kortvagt:single-des:"

/*
 * The role mark (issue 11). The ceremony writes a key's role into its CKA_ID,
 * after the weak-key mark if the key has one and before the ID the importer
 * asked for: [KV_HSM_WEAK_ID_PREFIX] KV_HSM_ROLE_ID_PREFIX <role name> ":"
 * [id], e.g. "kortvagt:role:imk-cvc3:" or
 * "kortvagt:single-des:kortvagt:role:pvk:\x01\x02". Every ceremony key is
 * created CKA_MODIFIABLE false, so neither the mark nor the usage attributes
 * can change afterwards; kv_hsm_key_find reads CKA_ID and CKA_MODIFIABLE in
 * the one C_GetAttributeValue it makes anyway and trusts the mark only on an
 * object that is not modifiable (a modifiable object, e.g. one made by an
 * earlier kortvagt, has KV_ROLE_NONE: run the ceremony again).
 */
#define KV_HSM_ROLE_ID_PREFIX "kortvagt:role:"

/*
 * The role a CKA_ID value names (after an optional weak-key mark):
 * KV_ROLE_NONE when it carries no role mark or names no known role. If
 * rest is not NULL, *rest / *rest_len receive the importer's part of the ID.
 */
kv_key_role kv_hsm_id_role(const uint8_t *id, size_t id_len, const uint8_t **rest,
                           size_t *rest_len);

/*
 * How long kv_hsm_key_find trusts an earlier lookup of the same name without
 * asking the token again: KV_HSM_KEY_STALE_SECONDS (5 s). A key deleted or
 * rotated (deleted and created again under its label) is noticed by the next
 * find after that time, at once by an operation on a held kv_hsm_key whose
 * handle the token no longer knows (the label is looked up once more and the
 * operation retried), and at once after kv_hsm_keys_flush.
 */
#define KV_HSM_KEY_STALE_SECONDS 5

/* 1 if a CKA_ID value carries the weak-key mark. */
int kv_hsm_id_is_weak(const uint8_t *id, size_t id_len);
/* 1 if key (as found or derived) has single-DES strength. */
int kv_hsm_key_is_weak(const kv_hsm_key *key);
/*
 * The weak-key policy check for a service (the daemon): 0 when key is not
 * weak or allow_weak is set; else KV_ERR_HSM_KEY, with a reason naming the
 * key in kv_hsm_last_error(h).
 */
int kv_hsm_key_check_strength(kv_hsm *h, const kv_hsm_key *key, int allow_weak);
/*
 * The same policy on a whole handle, for a service that must never use a
 * weak key (kortvagtd without [hsm] allow_weak_keys = true): with refuse set,
 * kv_hsm_key_find returns KV_ERR_HSM_KEY for a weak key, with out->weak 1,
 * out->label set and no usable handle, so a caller tells "weak" from "not
 * found" without reading the message. Default: weak keys are found (the CLI
 * is a lab tool).
 */
void kv_hsm_refuse_weak_keys(kv_hsm *h, int refuse);

/*
 * Find a key by label or pkcs11: URI ("object=" / "id="). Also finds the
 * A||A companion, which the ceremony stores under the label "<label>.aa".
 * Returns 0, KV_ERR_HSM_KEY (not found; the message names the key) or another error.
 * Only token objects are searched; out->role is the role recorded with the
 * object (KV_HSM_ROLE_ID_PREFIX). The handles are those of the token objects
 * (ceremony keys are not copyable: there are no session copies), valid while
 * the object exists; a held kv_hsm_key stays usable when the key is rotated
 * under its label, after a session reopen and after kv_hsm_keys_flush (see
 * KV_HSM_KEY_STALE_SECONDS). Finding the same name again within that time
 * costs no PKCS#11 call.
 */
int kv_hsm_key_find(kv_hsm *h, const char *name, kv_hsm_key *out);

/*
 * Block-cipher ECB over len bytes (a multiple of the block size) under key:
 * CKM_DES3_ECB for DES2/DES3 keys, CKM_AES_ECB for AES keys. in and out may be
 * the same buffer. use_companion selects the A||A object (single DES under A).
 */
int kv_hsm_ecb_encrypt(kv_hsm *h, const kv_hsm_key *key, int use_companion, const uint8_t *in,
                       size_t len, uint8_t *out);
int kv_hsm_ecb_decrypt(kv_hsm *h, const kv_hsm_key *key, int use_companion, const uint8_t *in,
                       size_t len, uint8_t *out);

/* CBC encryption with an explicit IV (block size bytes), no padding. */
int kv_hsm_cbc_encrypt(kv_hsm *h, const kv_hsm_key *key, int use_companion, const uint8_t *iv,
                       const uint8_t *in, size_t len, uint8_t *out);
/* CBC decryption with an explicit IV (block size bytes), no padding. */
int kv_hsm_cbc_decrypt(kv_hsm *h, const kv_hsm_key *key, int use_companion, const uint8_t *iv,
                       const uint8_t *in, size_t len, uint8_t *out);

/*
 * Derive a double-length DES key as a session object whose value is
 * ECB-encrypt(parent, data[0..16)) (CKM_DES3_ECB_ENCRYPT_DATA), sensitive, not
 * extractable, not modifiable, not copyable, usable for encrypt and derive
 * (with the derive template of p11_admin.h where the module knows it); its role
 * is the ICC role of an IMK parent (imk -> icc-ac, imk-cvc3 -> icc-cvc3, ...)
 * or the parent's role for a derived parent. If companion_data is not
 * NULL, also derive its A||A companion from those 16 bytes. The result must be
 * released with kv_hsm_key_destroy. parent and out may be the same struct (a
 * derived parent is then only freed by kv_hsm_close). Derived keys do not
 * survive a session reopen: use after one fails with a message saying so.
 */
int kv_hsm_derive_des2(kv_hsm *h, const kv_hsm_key *parent, const uint8_t data[16],
                       const uint8_t *companion_data, kv_hsm_key *out);
/* Destroy a derived session key (and its companion). Token keys are left alone. */
void kv_hsm_key_destroy(kv_hsm *h, kv_hsm_key *key);

/* HMAC-SHA256 under a KV_KEY_HMAC key (CKM_SHA256_HMAC). */
int kv_hsm_hmac_sha256(kv_hsm *h, const kv_hsm_key *key, const uint8_t *in, size_t len,
                       uint8_t out[32]);

/* AES-CMAC (CKM_AES_CMAC, 16-byte MAC) under an AES key; used for AES KCVs. */
int kv_hsm_aes_cmac(kv_hsm *h, const kv_hsm_key *key, const uint8_t *in, size_t len,
                    uint8_t out[16]);

#endif

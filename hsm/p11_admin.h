/*
 * PKCS#11 administration: what the key ceremony (keys.h) and the `kortvagt
 * hsm` / `kortvagt key` commands need beyond the cryptographic calls of
 * p11.h -- opening without a login, token and module facts, token
 * initialisation, creating, generating, deriving, listing and destroying key
 * objects, and a mechanism self-test. Payment code uses p11.h only.
 *
 * Object handles are CK_OBJECT_HANDLE values of the token objects.
 */
#ifndef KV_HSM_P11_ADMIN_H
#define KV_HSM_P11_ADMIN_H

#include "hsm/p11.h"
#include "src/base/secure.h"

#include <stddef.h>
#include <stdint.h>

/* kv_hsm_open_ex flags */
#define KV_HSM_OPEN_NO_LOGIN 0x1u /* public session: no PIN is read, no login */
#define KV_HSM_OPEN_NO_TOKEN 0x2u /* load and initialise the module only (no session) */

/*
 * kv_hsm_open with flags. kv_hsm_open(cfg, out) is kv_hsm_open_ex(cfg, 0, out).
 * On failure *out is NULL and kv_hsm_last_error(NULL) says why.
 */
int kv_hsm_open_ex(const kv_hsm_config *cfg, unsigned flags, kv_hsm **out);

/*
 * kv_hsm_open with the user PIN given as bytes (pin_len bytes, copied into
 * locked memory) instead of the one in cfg.
 */
int kv_hsm_open_pin(const kv_hsm_config *cfg, const uint8_t *pin, size_t pin_len, kv_hsm **out);

/* The module path h loaded; never NULL. */
const char *kv_hsm_module_path(const kv_hsm *h);

/*
 * Where a token PIN comes from, in this order: value (a PIN the caller already
 * holds, e.g. from the environment; NULL or "": none), else the first line of
 * the file named file (NULL or "": none), else one line of stdin (prompt on a
 * terminal, no echo). value_name and file_name say where value and file came
 * from ("$KORTVAGT_PIN") for messages; NULL when there is no such source.
 */
typedef struct {
    const char *value;
    const char *value_name;
    const char *file;
    const char *file_name;
    const char *prompt;
} kv_hsm_pin_source;

/*
 * Read a PIN into a new locked buffer (*out, NUL-terminated, *len bytes, at
 * most KV_HSM_PIN_MAX). Returns 0, KV_ERR_HSM_LOGIN (no PIN: empty input),
 * KV_ERR_IO, KV_ERR_NOMEM; the message is in kv_hsm_last_error(NULL). The
 * caller frees *out with kv_secbuf_free.
 */
int kv_hsm_pin_read(const kv_hsm_pin_source *src, kv_secbuf **out, size_t *len);

typedef struct {
    char manufacturer[33];
    char description[33];
    unsigned lib_major, lib_minor; /* library version */
    unsigned cryptoki_major, cryptoki_minor;
} kv_hsm_module_info;

int kv_hsm_get_module_info(kv_hsm *h, kv_hsm_module_info *out);

typedef struct {
    unsigned long slot;
    char label[33];
    char manufacturer[33];
    char model[17];
    char serial[17];
    unsigned long flags; /* CKF_* token flags */
    unsigned hw_major, hw_minor, fw_major, fw_minor;
} kv_hsm_token_info;

/* Facts about the open token (h opened without KV_HSM_OPEN_NO_TOKEN). */
int kv_hsm_get_token_info(kv_hsm *h, kv_hsm_token_info *out);

/*
 * Names of the CKF_* bits set in token flags, written to names (at most cap);
 * returns how many were written.
 */
size_t kv_hsm_token_flag_names(unsigned long flags, const char **names, size_t cap);

/*
 * Look for an initialised token labelled label on any slot (h may be opened
 * with KV_HSM_OPEN_NO_TOKEN). Returns 0 and fills info when found,
 * KV_ERR_HSM_TOKEN when not.
 */
int kv_hsm_token_lookup(kv_hsm *h, const char *label, kv_hsm_token_info *info);

/*
 * Initialise a token: C_InitToken on the first slot whose token is present and
 * not initialised, with the SO PIN and label (at most 32 bytes), then log in
 * as SO and set the user PIN (C_InitPIN). PINs are len bytes, never copied
 * out of the caller's buffers. Fills info with the new token's facts.
 * Returns 0, KV_ERR_HSM_TOKEN (no free slot), KV_ERR_HSM_LOGIN, KV_ERR_HSM.
 */
int kv_hsm_token_init(kv_hsm *h, const char *label, const uint8_t *so_pin, size_t so_len,
                      const uint8_t *user_pin, size_t user_len, kv_hsm_token_info *info);

/* Usage attributes of a key object */
enum {
    KV_HSM_USE_ENCRYPT = 1u << 0,
    KV_HSM_USE_DECRYPT = 1u << 1,
    KV_HSM_USE_SIGN = 1u << 2,
    KV_HSM_USE_VERIFY = 1u << 3,
    KV_HSM_USE_WRAP = 1u << 4,
    KV_HSM_USE_UNWRAP = 1u << 5,
    KV_HSM_USE_DERIVE = 1u << 6,
};

/*
 * What a new secret key object looks like. Every key kortvagt creates is
 * CKA_SENSITIVE true, CKA_EXTRACTABLE false, CKA_MODIFIABLE false and
 * CKA_COPYABLE false (CKA_DESTROYABLE stays true: `key delete`); token keys
 * are also CKA_PRIVATE true. Only the usage attributes in `usage` are true;
 * with KV_HSM_USE_DERIVE the key also gets the derive template (see
 * kv_hsm_derive_template). Nothing is changed after creation.
 */
typedef struct {
    kv_key_type type;
    const char *label; /* CKA_LABEL; NULL: none */
    const uint8_t *id; /* CKA_ID; NULL: none */
    size_t id_len;
    unsigned usage; /* KV_HSM_USE_* */
    int token;      /* 1: token object (persistent), 0: session object */
} kv_hsm_key_spec;

/* Bytes of key value for a type (16, 24, 16, 24, 32; HMAC: 32 by default). */
size_t kv_hsm_key_len(kv_key_type type);

/*
 * Create a secret key object from a clear value (C_CreateObject). value is
 * len bytes and is only passed to the token. Returns 0 and the handle.
 */
int kv_hsm_object_create(kv_hsm *h, const kv_hsm_key_spec *spec, const uint8_t *value, size_t len,
                         unsigned long *handle);
/* Generate a secret key object inside the token (C_GenerateKey). */
int kv_hsm_object_generate(kv_hsm *h, const kv_hsm_key_spec *spec, unsigned long *handle);
/*
 * Derive a DES2 key object (spec->type must be KV_KEY_DES2) whose value is
 * 3DES-ECB(parent, data[0..16)) with CKM_DES3_ECB_ENCRYPT_DATA; parent is a
 * handle with CKA_DERIVE.
 */
int kv_hsm_object_derive(kv_hsm *h, unsigned long parent, const uint8_t data[16],
                         const kv_hsm_key_spec *spec, unsigned long *handle);
/*
 * The same for any key type of spec: len bytes of data (a multiple of 8, the
 * key length of spec->type) give a key of that length.
 */
int kv_hsm_object_derive_data(kv_hsm *h, unsigned long parent, const uint8_t *data, size_t len,
                              const kv_hsm_key_spec *spec, unsigned long *handle);
/* Destroy an object. */
int kv_hsm_object_destroy(kv_hsm *h, unsigned long handle);
/*
 * Whether the module takes CKA_DERIVE_TEMPLATE (issue 11): every key object
 * created with KV_HSM_USE_DERIVE gets the template {CKA_SENSITIVE true,
 * CKA_EXTRACTABLE false}; a module that does not know the attribute
 * (SoftHSM2 2.6: CKR_ATTRIBUTE_TYPE_INVALID) gets the key without it. 1: a
 * template was accepted on h, -1: the module refused the attribute, 0: not
 * tried yet. Accepting the attribute does not prove the module enforces it.
 */
int kv_hsm_derive_template(const kv_hsm *h);

/*
 * Find the token secret-key object labelled label (exact). Returns 0,
 * KV_ERR_HSM_KEY (none; no error text is recorded) or KV_ERR_HSM (more than
 * one, or a token failure).
 */
int kv_hsm_object_find(kv_hsm *h, const char *label, unsigned long *handle);

typedef struct {
    unsigned long handle;
    char label[129];
    uint8_t id[96]; /* CKA_ID (a weak key's begins with KV_HSM_WEAK_ID_PREFIX) */
    size_t id_len;
    int weak; /* single-DES strength: the CKA_ID carries the weak-key mark */
    unsigned long ck_key_type;
    int type_known; /* type below is meaningful */
    kv_key_type type;
    size_t value_len;
    unsigned usage; /* KV_HSM_USE_* */
    int token, private_, sensitive, extractable, always_sensitive, never_extractable, modifiable,
        local;
    int has_check_value; /* the token's CKA_CHECK_VALUE (PKCS#11 definition) */
    uint8_t check_value[3];
    kv_key_role role;    /* the role mark of CKA_ID; KV_ROLE_NONE when modifiable */
    int copyable;        /* CKA_COPYABLE: 1, 0, -1 the module does not tell */
    int derive_template; /* CKA_DERIVE_TEMPLATE: 1 present, 0 empty, -1 unknown to the module */
} kv_hsm_object_info;

int kv_hsm_object_get_info(kv_hsm *h, unsigned long handle, kv_hsm_object_info *out);

/*
 * Handles of the token's secret-key objects (token objects only), at most
 * cap, in the token's order; *n is the count found (may exceed cap).
 */
int kv_hsm_object_list(kv_hsm *h, unsigned long *handles, size_t cap, size_t *n);

/*
 * Try to read CKA_VALUE of an object and report the CK_RV (as a number and
 * kv_hsm_rv_name). The value, if a broken token returns it, is wiped at once
 * and never returned. Returns 0 when the call was made.
 */
int kv_hsm_object_probe_value(kv_hsm *h, unsigned long handle, unsigned long *rv);

/* Name of a CK_RV, e.g. "CKR_ATTRIBUTE_SENSITIVE"; never NULL. */
const char *kv_hsm_rv_name(unsigned long rv);

/* A kv_hsm_key for a token object handle (no companion), for the p11.h operations. */
int kv_hsm_key_from_handle(kv_hsm *h, unsigned long handle, kv_hsm_key *out);

/*
 * Mechanism self-test: each mechanism kortvagt needs is exercised with a
 * temporary session key of a public test value and its output compared with a
 * published known answer.
 */
typedef struct {
    const char *mechanism; /* "CKM_DES3_ECB" */
    const char *purpose;   /* what kortvagt uses it for */
    int listed;            /* in C_GetMechanismList */
    int works;             /* ran and gave the known answer */
    char detail[200];      /* CK_RV name or "wrong answer" when it does not work */
} kv_hsm_selftest_result;

/* Number of self-test rows. */
size_t kv_hsm_selftest_count(void);
/* Run row i (< kv_hsm_selftest_count()); 0 when the row could run (see res->works). */
int kv_hsm_selftest_run(kv_hsm *h, size_t i, kv_hsm_selftest_result *res);

/* --- RSA key pairs (issuer keys of the personalization bench) -------------- */

/*
 * Generate an RSA key pair as token objects labelled label (CKA_LABEL and
 * CKA_ID = the label's bytes) with CKM_RSA_PKCS_KEY_PAIR_GEN: bits 512..2048,
 * public exponent 3 or 65537. The private key is CKA_PRIVATE, CKA_SENSITIVE,
 * not CKA_EXTRACTABLE and may only sign (CKA_SIGN; no decrypt, no unwrap);
 * the public key may only verify. A label already used by an RSA key is
 * refused with KV_ERR_ARG. Returns 0 and both handles.
 */
int kv_hsm_rsa_generate(kv_hsm *h, const char *label, unsigned bits, unsigned long exponent,
                        unsigned long *pub, unsigned long *priv);

/*
 * Find the RSA key pair labelled label: 0 and both handles; KV_ERR_HSM_KEY
 * when the token has no such private key (or no public key with it), no
 * error text recorded; KV_ERR_HSM when the label is ambiguous.
 */
int kv_hsm_rsa_find(kv_hsm *h, const char *label, unsigned long *pub, unsigned long *priv);

/*
 * The public key of a pair: modulus (capacity mod_cap, *mod_len) and public
 * exponent (capacity exp_cap, *exp_len), big-endian without leading zeros.
 * KV_ERR_BUFFER when a capacity is too small.
 */
int kv_hsm_rsa_public(kv_hsm *h, unsigned long pub, uint8_t *mod, size_t mod_cap, size_t *mod_len,
                      uint8_t *exp, size_t exp_cap, size_t *exp_len);

/*
 * Raw RSA private-key operation in the token (C_Sign with CKM_RSA_X_509):
 * out (len bytes) = in ^ d mod n; len must be the modulus length and in
 * below the modulus (EMV certificates and signatures, EMV Book 2).
 */
int kv_hsm_rsa_raw_sign(kv_hsm *h, unsigned long priv, const uint8_t *in, size_t len, uint8_t *out);

/*
 * Try to read attribute attr (a CKA_* value, e.g. CKA_PRIVATE_EXPONENT) of an
 * object and report the CK_RV; a value a broken token returns is wiped and
 * never returned. Returns 0 when the call was made.
 */
int kv_hsm_object_probe_attr(kv_hsm *h, unsigned long handle, unsigned long attr,
                             unsigned long *rv);

#endif

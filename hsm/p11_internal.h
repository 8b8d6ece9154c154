/*
 * Internal to the PKCS#11 module (p11.c module and session, p11_rv.c CK_RV
 * texts, p11_pin.c PIN input, p11_find.c key lookup, p11_ops.c operations,
 * p11_admin.c administration, p11_aes_derive.c AES derivation): the kv_hsm structure and the
 * helpers these files share. No other file includes this header; every PKCS#11 call of kortvagt is
 * made in these files.
 */
#ifndef KV_HSM_P11_INTERNAL_H
#define KV_HSM_P11_INTERNAL_H

#include "hsm/p11.h"
#include "hsm/p11uri.h"
#include "src/base/secure.h"

#include <p11-kit-1/p11-kit/pkcs11.h>

/*
 * Keys found by kv_hsm_key_find (issue 11): no session copies any more (every
 * ceremony key is CKA_COPYABLE false); operations use the token objects. The
 * table remembers what each name resolved to, so that finding a key again is
 * free for KV_HSM_KEY_STALE_MS, and maps the handle a caller holds ("issued")
 * to the handle valid now ("current"): when a key was deleted and created
 * again under its label, or the session was reopened on a module that renumbers
 * objects, an operation re-finds the label once and keeps working with the
 * kv_hsm_key the caller holds (p11_find.c).
 */
#define KV_HSM_MAX_KEYS 64
#define KV_HSM_KEY_STALE_MS 5000 /* a cached lookup is trusted this long (see p11.h) */

struct kv_hsm_cached_key {
    char name[160]; /* the name kv_hsm_key_find was given (label or URI) */
    char label[64]; /* the object's CKA_LABEL (as in kv_hsm_key): to find it again */
    CK_OBJECT_HANDLE issued, current;           /* the key */
    CK_OBJECT_HANDLE comp_issued, comp_current; /* its A||A companion, 0 if none */
    kv_key_type type;
    kv_key_role role;
    int weak;
    int stale;             /* kv_hsm_keys_flush: look it up before the next use */
    unsigned long long at; /* monotonic ms of the last lookup */
};

struct kv_hsm {
    void *dl;
    CK_FUNCTION_LIST_PTR f;
    int counted; /* holds a reference on the module's C_Initialize */
    unsigned flags;
    char module[1024];

    kv_p11uri want; /* which token: label or URI */
    int have_slot;
    CK_SLOT_ID slot;
    char token_label[33];

    int have_session;
    CK_SESSION_HANDLE session;
    int logged_in;
    kv_secbuf *pin; /* user PIN, kept for a session reopen; NULL without login */
    size_t pin_len;

    int refuse_weak;  /* kv_hsm_refuse_weak_keys: kv_hsm_key_find refuses weak keys */
    unsigned reopens; /* how often the session was reopened */
    CK_RV open_rv;    /* the CK_RV that failed the last session open or login */
    struct kv_hsm_cached_key keys[KV_HSM_MAX_KEYS];
    size_t nkeys;
    int derive_template; /* CKA_DERIVE_TEMPLATE: 0 not tried, 1 accepted, -1 unknown to the module
                          */

    char err[512];
};

/* The role of a key derived from parent (p11.h): an IMK's child is its ICC
 * master key; a session key has the role of its ICC master key (p11_ops.c). */
kv_key_role kv_p11_derived_role(kv_key_role parent);

/*
 * C_DeriveKey of parent by m with the template t[0..n-1], whose last two
 * entries must be CKA_DERIVE_TEMPLATE and then CKA_MODIFIABLE (SoftHSM2 2.6
 * refuses every attribute after CKA_DERIVE_TEMPLATE). The derive template is
 * dropped when the new key may not derive (may_derive 0) or the module does
 * not know the attribute (h->derive_template, learnt on the first try). t is
 * changed. Returns the CK_RV (p11_ops.c).
 */
CK_RV kv_p11_derive_key(kv_hsm *h, CK_MECHANISM *m, CK_OBJECT_HANDLE parent, CK_ATTRIBUTE *t,
                        CK_ULONG n, int may_derive, CK_OBJECT_HANDLE *out);

/* Name of a CK_RV ("CKR_PIN_INCORRECT"); "CKR_0x..." style text for unknown values. */
const char *kv_p11_rv_name(CK_RV rv);

/*
 * Record a failure on h (h may be NULL: the text goes to the open-failure
 * buffer read by kv_hsm_last_error(NULL)): "<context>: <CKR_NAME> (<meaning>)".
 * meaning NULL takes the table's meaning. Returns the KV_ERR_* code for rv.
 */
int kv_p11_fail(kv_hsm *h, CK_RV rv, const char *meaning, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Record a failure that has no CK_RV; returns err. */
int kv_p11_fail_msg(kv_hsm *h, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The open-failure text of this thread: clear it (an open starts) ... */
void kv_p11_open_err_clear(void);
/* ... and keep h's text there when nothing was recorded yet (the open failed). */
void kv_p11_open_err_keep(const kv_hsm *h);

/*
 * Search the token's secret-key token objects by label and/or CKA_ID (either
 * may be NULL): *count is 0, 1 or 2 (2: more than one), *found the first.
 */
int kv_p11_find_token_object(kv_hsm *h, const char *label, const uint8_t *id, size_t id_len,
                             CK_OBJECT_HANDLE *found, CK_ULONG *count);

/* 1 if rv means the session is gone and a reopen may help. */
int kv_p11_rv_session_lost(CK_RV rv);
/* Close and reopen the session (and log in again); 0 or a KV_ERR_* code. */
int kv_p11_reopen(kv_hsm *h);

/*
 * The handle valid now for a handle kv_hsm_key_find issued earlier (the key or
 * its companion). Never for derived keys: they are session objects.
 */
CK_OBJECT_HANDLE kv_p11_resolve(const kv_hsm *h, CK_OBJECT_HANDLE issued);

/*
 * Before an operation on a found key (not a derived one): *o the handle to use
 * now for key (or its companion); the key's table entry is looked up again
 * first when kv_hsm_keys_flush marked it stale.
 */
int kv_p11_key_handle(kv_hsm *h, const kv_hsm_key *key, int use_companion, CK_OBJECT_HANDLE *o);

/*
 * After an operation failed with CKR_OBJECT_HANDLE_INVALID or
 * CKR_KEY_HANDLE_INVALID: find key's label on the token again and remap the
 * caller's handles to the new object. 0 when the caller may retry once;
 * KV_ERR_HSM_KEY (with a message) when the key is gone or changed its type or
 * role.
 */
int kv_p11_key_refind(kv_hsm *h, const kv_hsm_key *key);

/* 1 for the CK_RVs of a handle that no longer names an object. */
int kv_p11_rv_handle_gone(CK_RV rv);

/* Blank-padded PKCS#11 text field -> NUL-terminated string without trailing blanks. */
void kv_p11_trim(const CK_UTF8CHAR *field, size_t n, char *out, size_t cap);

/* 1 if the token in slot matches the wanted token of h (label / URI fields). */
int kv_p11_token_matches(const kv_p11uri *want, const CK_TOKEN_INFO *ti, CK_SLOT_ID slot);

#endif

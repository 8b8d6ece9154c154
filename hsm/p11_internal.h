/*
 * Internal to the PKCS#11 module (p11.c module and session, p11_rv.c CK_RV
 * texts, p11_pin.c PIN input, p11_find.c key lookup, p11_ops.c operations,
 * p11_admin.c administration): the kv_hsm structure and the helpers these
 * files share. No other file includes this header; every PKCS#11 call of
 * kortvagt is made in these files.
 */
#ifndef KV_HSM_P11_INTERNAL_H
#define KV_HSM_P11_INTERNAL_H

#include "hsm/p11.h"
#include "hsm/p11uri.h"
#include "src/base/secure.h"

#include <p11-kit-1/p11-kit/pkcs11.h>

/*
 * Token keys found by kv_hsm_key_find are copied into session objects
 * (C_CopyObject, CKA_TOKEN false): on SoftHSM2 an operation on a session
 * object is about three times faster than on a token object, whose file is
 * re-checked on every use. The copy is as sensitive and unextractable as its
 * original and dies with the session; the table only maps handles.
 */
#define KV_HSM_MAX_COPIES 64

struct kv_hsm_copy {
    CK_OBJECT_HANDLE token;   /* the token object */
    CK_OBJECT_HANDLE issued;  /* the handle callers hold (first session copy) */
    CK_OBJECT_HANDLE current; /* the handle valid in the current session */
    char label[72];           /* to find the token object again after a device removal */
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
    struct kv_hsm_copy copies[KV_HSM_MAX_COPIES];
    size_t ncopies;

    char err[512];
};

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

/* A session copy of a token object (CKA_TOKEN false); CK_INVALID_HANDLE if it cannot be copied. */
CK_OBJECT_HANDLE kv_p11_copy_to_session(kv_hsm *h, CK_OBJECT_HANDLE token);

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
 * The handle valid now for a handle kv_hsm_key_find issued earlier (differs
 * only after a reopen). Never for derived keys: their numbers are not in the
 * table and a new derived key may reuse a dead copy's number.
 */
CK_OBJECT_HANDLE kv_p11_resolve(const kv_hsm *h, CK_OBJECT_HANDLE issued);

/* Blank-padded PKCS#11 text field -> NUL-terminated string without trailing blanks. */
void kv_p11_trim(const CK_UTF8CHAR *field, size_t n, char *out, size_t cap);

/* 1 if the token in slot matches the wanted token of h (label / URI fields). */
int kv_p11_token_matches(const kv_p11uri *want, const CK_TOKEN_INFO *ti, CK_SLOT_ID slot);

#endif

/*
 * The cryptographic operations of p11.h: ECB/CBC, HMAC-SHA256, AES-CMAC
 * (one single-part call each, retried once after a lost session) and the
 * derivation of session keys.
 */
#include "hsm/p11.h"
#include "hsm/p11_internal.h"
#include "src/base/err.h"

#include <stdio.h>
#include <string.h>

typedef CK_RV (*op_init_fn)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE);
typedef CK_RV (*op_do_fn)(CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR);

static int is_des(kv_key_type t)
{
    return t == KV_KEY_DES2 || t == KV_KEY_DES3;
}

static int is_aes(kv_key_type t)
{
    return t == KV_KEY_AES128 || t == KV_KEY_AES192 || t == KV_KEY_AES256;
}

/*
 * One single-part operation (init + do), retried once after a session reopen
 * when the session was lost. No allocation; the CK_RV is translated only on
 * failure. what names the operation for the error text.
 */
static int one_shot(kv_hsm *h, const kv_hsm_key *key, int use_companion, CK_MECHANISM *m, int which,
                    const uint8_t *in, size_t len, uint8_t *out, size_t out_len, const char *what)
{
    CK_OBJECT_HANDLE o = CK_INVALID_HANDLE;
    CK_ULONG ol;
    CK_RV rv = CKR_OK;
    op_init_fn init;
    op_do_fn run;

    switch (which) {
    case 0:
        init = h->f->C_EncryptInit;
        run = h->f->C_Encrypt;
        break;
    case 1:
        init = h->f->C_DecryptInit;
        run = h->f->C_Decrypt;
        break;
    default:
        init = h->f->C_SignInit;
        run = h->f->C_Sign;
        break;
    }
    if (use_companion && key->companion == 0)
        return kv_p11_fail_msg(h, KV_ERR_HSM_KEY,
                               "key '%s' has no A||A companion ('%s.aa'); import it with the "
                               "key ceremony (kortvagt key import --usage cvk|mac|imk)",
                               key->label, key->label);
    for (int attempt = 0; attempt < 2; attempt++) {
        int r = kv_p11_key_handle(h, key, use_companion, &o);
        if (r != 0)
            return r;
        ol = (CK_ULONG)out_len;
        if ((rv = init(h->session, m, o)) == CKR_OK &&
            (rv = run(h->session, (CK_BYTE_PTR)in, (CK_ULONG)len, out, &ol)) == CKR_OK) {
            if (ol != (CK_ULONG)out_len)
                return kv_p11_fail_msg(h, KV_ERR_HSM, "%s with key '%s': %lu bytes instead of %zu",
                                       what, key->label, (unsigned long)ol, out_len);
            return 0;
        }
        if (attempt == 0 && kv_p11_rv_session_lost(rv) && kv_p11_reopen(h) == 0)
            continue;
        /* deleted, or rotated under its label: look the label up once more */
        if (attempt == 0 && kv_p11_rv_handle_gone(rv) && !key->session_object) {
            if ((r = kv_p11_key_refind(h, key)) != 0)
                return r;
            continue;
        }
        break;
    }
    if (kv_p11_rv_handle_gone(rv) && key->session_object && h->reopens > 0)
        return kv_p11_fail(h, rv, "the session was reopened; derive the key again",
                           "%s with a derived key", what);
    return kv_p11_fail(h, rv, NULL, "%s with key '%s'%s", what, key->label[0] ? key->label : "-",
                       use_companion ? " (A||A companion)" : "");
}

static int block_op(kv_hsm *h, const kv_hsm_key *key, int use_companion, int which, int cbc,
                    const uint8_t *iv, const uint8_t *in, size_t len, uint8_t *out)
{
    CK_MECHANISM m = {0, NULL, 0};
    size_t bs;
    static const char *const names[2][2] = {{"ECB encryption", "ECB decryption"},
                                            {"CBC encryption", "CBC decryption"}};

    if (is_des(key->type)) {
        m.mechanism = cbc ? CKM_DES3_CBC : CKM_DES3_ECB;
        bs = 8;
    } else if (is_aes(key->type)) {
        m.mechanism = cbc ? CKM_AES_CBC : CKM_AES_ECB;
        bs = 16;
    } else {
        return kv_p11_fail_msg(h, KV_ERR_HSM_KEY, "key '%s' is not a block-cipher key", key->label);
    }
    if (len == 0 || len % bs != 0)
        return kv_p11_fail_msg(h, KV_ERR_ARG, "%s: %zu bytes is not a multiple of %zu",
                               names[cbc][which], len, bs);
    if (cbc) {
        m.pParameter = (void *)iv;
        m.ulParameterLen = (CK_ULONG)bs;
    }
    return one_shot(h, key, use_companion, &m, which, in, len, out, len, names[cbc][which]);
}

int kv_hsm_ecb_encrypt(kv_hsm *h, const kv_hsm_key *key, int use_companion, const uint8_t *in,
                       size_t len, uint8_t *out)
{
    return block_op(h, key, use_companion, 0, 0, NULL, in, len, out);
}

int kv_hsm_ecb_decrypt(kv_hsm *h, const kv_hsm_key *key, int use_companion, const uint8_t *in,
                       size_t len, uint8_t *out)
{
    return block_op(h, key, use_companion, 1, 0, NULL, in, len, out);
}

int kv_hsm_cbc_encrypt(kv_hsm *h, const kv_hsm_key *key, int use_companion, const uint8_t *iv,
                       const uint8_t *in, size_t len, uint8_t *out)
{
    return block_op(h, key, use_companion, 0, 1, iv, in, len, out);
}

int kv_hsm_cbc_decrypt(kv_hsm *h, const kv_hsm_key *key, int use_companion, const uint8_t *iv,
                       const uint8_t *in, size_t len, uint8_t *out)
{
    return block_op(h, key, use_companion, 1, 1, iv, in, len, out);
}

int kv_hsm_hmac_sha256(kv_hsm *h, const kv_hsm_key *key, const uint8_t *in, size_t len,
                       uint8_t out[32])
{
    CK_MECHANISM m = {CKM_SHA256_HMAC, NULL, 0};
    if (key->type != KV_KEY_HMAC)
        return kv_p11_fail_msg(h, KV_ERR_HSM_KEY, "key '%s' is not an HMAC key", key->label);
    return one_shot(h, key, 0, &m, 2, in, len, out, 32, "HMAC-SHA256");
}

int kv_hsm_aes_cmac(kv_hsm *h, const kv_hsm_key *key, const uint8_t *in, size_t len,
                    uint8_t out[16])
{
    CK_MECHANISM m = {CKM_AES_CMAC, NULL, 0};
    if (!is_aes(key->type))
        return kv_p11_fail_msg(h, KV_ERR_HSM_KEY, "key '%s' is not an AES key", key->label);
    return one_shot(h, key, 0, &m, 2, in, len, out, 16, "AES-CMAC");
}

/* --- derivation ------------------------------------------------------------ */

/* see p11_internal.h */
kv_key_role kv_p11_derived_role(kv_key_role parent)
{
    switch (parent) {
    case KV_ROLE_IMK_AC:
        return KV_ROLE_ICC_AC;
    case KV_ROLE_IMK_CVC3:
        return KV_ROLE_ICC_CVC3;
    case KV_ROLE_IMK_SMI:
        return KV_ROLE_ICC_SMI;
    case KV_ROLE_IMK_SMC:
        return KV_ROLE_ICC_SMC;
    default:
        return parent; /* a session key has the role of its ICC master key */
    }
}

/*
 * One derived session key: sensitive, not extractable, not modifiable, not
 * copyable, encrypt, and derive when it is itself a parent (an ICC master key)
 * -- then with the derive template of every derive key where the module knows
 * CKA_DERIVE_TEMPLATE. All of it fits the derive template of the parent.
 */
static int derive_one(kv_hsm *h, CK_OBJECT_HANDLE parent, const uint8_t data[16], int may_derive,
                      CK_OBJECT_HANDLE *out, CK_RV *rvp)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_DES2;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE dt[2] = {{CKA_SENSITIVE, &yes, sizeof(yes)}, {CKA_EXTRACTABLE, &no, sizeof(no)}};
    CK_KEY_DERIVATION_STRING_DATA p = {(CK_BYTE_PTR)data, 16};
    CK_MECHANISM m = {CKM_DES3_ECB_ENCRYPT_DATA, &p, sizeof(p)};
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_TOKEN, &no, sizeof(no)},
        {CKA_SENSITIVE, &yes, sizeof(yes)},
        {CKA_EXTRACTABLE, &no, sizeof(no)},
        {CKA_ENCRYPT, &yes, sizeof(yes)},
        {CKA_DECRYPT, &no, sizeof(no)},
        {CKA_DERIVE, may_derive ? &yes : &no, sizeof(yes)},
        {CKA_COPYABLE, &no, sizeof(no)},
        {CKA_DERIVE_TEMPLATE, dt, sizeof(dt)},
        /* last: SoftHSM2 2.6 refuses every attribute after it in a derive template */
        {CKA_MODIFIABLE, &no, sizeof(no)},
    };

    *rvp = kv_p11_derive_key(h, &m, parent, t, sizeof(t) / sizeof(t[0]), may_derive, out);
    return *rvp == CKR_OK ? 0 : -1;
}

/* see p11_internal.h */
CK_RV kv_p11_derive_key(kv_hsm *h, CK_MECHANISM *m, CK_OBJECT_HANDLE parent, CK_ATTRIBUTE *t,
                        CK_ULONG n, int may_derive, CK_OBJECT_HANDLE *out)
{
    int with = may_derive && h->derive_template >= 0;
    CK_RV rv;

    if (!with) {
        /* no template: not a parent, or the module does not know the attribute */
        t[n - 2] = t[n - 1];
        n--;
    }
    rv = h->f->C_DeriveKey(h->session, m, parent, t, n, out);
    if (rv == CKR_ATTRIBUTE_TYPE_INVALID && with) {
        h->derive_template = -1;
        t[n - 2] = t[n - 1];
        rv = h->f->C_DeriveKey(h->session, m, parent, t, n - 1, out);
    } else if (rv == CKR_OK && with) {
        h->derive_template = 1;
    }
    return rv;
}

int kv_hsm_derive_des2(kv_hsm *h, const kv_hsm_key *parent, const uint8_t data[16],
                       const uint8_t *companion_data, kv_hsm_key *out)
{
    CK_OBJECT_HANDLE k = CK_INVALID_HANDLE, c = CK_INVALID_HANDLE;
    CK_RV rv = CKR_OK;
    kv_hsm_key par = *parent; /* parent and out may be the same struct */
    int r = KV_ERR_INTERNAL, may_derive;

    parent = &par;
    memset(out, 0, sizeof(*out));
    if (!is_des(parent->type))
        return kv_p11_fail_msg(h, KV_ERR_HSM_KEY, "key '%s' is not a DES key: cannot derive",
                               parent->label);
    /* a key derived from a token key (an ICC master key) derives session keys in turn */
    may_derive = !parent->session_object;
    for (int attempt = 0; attempt < 2; attempt++) {
        CK_OBJECT_HANDLE p;
        if ((r = kv_p11_key_handle(h, parent, 0, &p)) != 0)
            goto out;
        if (derive_one(h, p, data, may_derive, &k, &rv) == 0 &&
            (companion_data == NULL || derive_one(h, p, companion_data, 0, &c, &rv) == 0))
            break;
        if (k != CK_INVALID_HANDLE)
            h->f->C_DestroyObject(h->session, k);
        k = CK_INVALID_HANDLE;
        if (attempt == 0 && kv_p11_rv_session_lost(rv) && kv_p11_reopen(h) == 0)
            continue;
        if (attempt == 0 && kv_p11_rv_handle_gone(rv) && !parent->session_object) {
            if ((r = kv_p11_key_refind(h, parent)) != 0)
                goto out;
            continue;
        }
        r = kv_p11_fail(h, rv, NULL, "deriving a key from '%s' (CKM_DES3_ECB_ENCRYPT_DATA)",
                        parent->label);
        goto out;
    }
    out->handle = k;
    out->companion = c;
    out->type = KV_KEY_DES2;
    out->session_object = 1;
    out->weak = parent->weak; /* a key derived from a weak key is no stronger */
    out->role = kv_p11_derived_role(parent->role);
    snprintf(out->label, sizeof(out->label), "derived from %.40s", parent->label);
    r = 0;
out:
    return r;
}

void kv_hsm_key_destroy(kv_hsm *h, kv_hsm_key *key)
{
    if (h == NULL || key == NULL || !key->session_object)
        return;
    if (h->have_session) {
        if (key->handle != 0)
            h->f->C_DestroyObject(h->session, key->handle);
        if (key->companion != 0)
            h->f->C_DestroyObject(h->session, key->companion);
    }
    memset(key, 0, sizeof(*key));
}

/* see perso.h */
#include "hsm/perso.h"
#include "hsm/emv_crypto.h"
#include "hsm/p11_admin.h"
#include "hsm/p11_internal.h"
#include "src/base/err.h"
#include "src/base/secure.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* see perso.h */
int kv_perso_issuer_key(kv_hsm *h, const char *label, int create, unsigned bits,
                        unsigned long exponent, kv_perso_rsa *out)
{
    int r;

    memset(out, 0, sizeof(*out));
    out->h = h;
    r = kv_hsm_rsa_find(h, label, &out->pub, &out->priv);
    if (r == KV_ERR_HSM_KEY && create) {
        if ((r = kv_hsm_rsa_generate(h, label, bits, exponent, &out->pub, &out->priv)) != 0)
            return r;
        out->created = 1;
    } else if (r != 0) {
        return r;
    }
    return kv_hsm_rsa_public(h, out->pub, out->modulus, sizeof(out->modulus), &out->modulus_len,
                             out->exponent, sizeof(out->exponent), &out->exponent_len);
}

/* see perso.h */
int kv_perso_rsa_sign(void *arg, const uint8_t *in, size_t len, uint8_t *out)
{
    kv_perso_rsa *k = arg;
    if (len != k->modulus_len)
        return KV_ERR_ARG;
    return kv_hsm_rsa_raw_sign(k->h, k->priv, in, len, out);
}

/* ---- ICC master keys for the card (PKCS#11 direct) ------------------------------ */

/*
 * Why perso derives an extractable key, and what protects it (issue 11).
 *
 * A card must hold its ICC master key, so a personalization bench has to get
 * it out of the HSM; the IMK itself may only derive (keys.h), so kortvagt
 * can no longer compute the value by encrypting under the IMK. Here the ICC
 * master key is derived in the token with CKM_DES3_ECB_ENCRYPT_DATA into a
 * session object that is sensitive, has no usage at all, is neither
 * modifiable nor copyable, and is extractable -- the only way it can leave
 * is C_WrapKey -- and it is destroyed before this function returns:
 *
 *   - with a transport key (a "kek" AES key: the perso bench's path), it
 *     leaves wrapped under that key (RFC 3394) and only the card side, which
 *     holds the transport key, ever sees it in clear;
 *   - without one (the lab's `perso card` writing a clear profile for the
 *     virtual card), it is wrapped under a one-time AES session key whose
 *     random value kortvagt holds in locked memory for this call only, and
 *     unwrapped in software.
 *
 * Every IMK carries the derive template {sensitive, not extractable}. A
 * module that enforces CKA_DERIVE_TEMPLATE refuses this derivation
 * (CKR_TEMPLATE_INCONSISTENT): that is the intended outcome in production --
 * no token-PIN holder, kortvagt included, gets an ICC master key out of an
 * issuing HSM; real cards are personalized by a perso HSM with its own export
 * function. SoftHSM2 2.6 does not know the attribute, so on the lab token
 * this works, and any holder of the token PIN could do the same (README:
 * trust boundary; `kortvagt hsm info` says it). CKA_WRAP_WITH_TRUSTED is not
 * set: a trusted wrapping key can only be made by the token's SO, which the
 * lab's ceremony (user PIN only) does not do.
 */

static int is_imk_role(kv_key_role r)
{
    return r == KV_ROLE_IMK_AC || r == KV_ROLE_IMK_CVC3 || r == KV_ROLE_IMK_SMI ||
           r == KV_ROLE_IMK_SMC;
}

/*
 * The ICC master key as an extractable session object with no usage (*k):
 * a DES2 IMK derives a DES2 key (3DES-ECB of Y || Y xor FF..FF), an AES-128
 * IMK an AES-128 key (AES-ECB of one block, Book 2 A1.4.3 option C:
 * kv_emv_aes_mk_input, as kv_hsm_emv_derive_icc_mk does it).
 */
static int derive_exportable_mk(kv_hsm *h, const kv_hsm_key *imk, int option, const char *pan,
                                const char *psn, CK_OBJECT_HANDLE *k)
{
    uint8_t y[8], data[16], companion[16];
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    int aes = imk->type == KV_KEY_AES128;
    CK_KEY_TYPE kt = aes ? CKK_AES : CKK_DES2;
    CK_ULONG vlen = 16;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE tpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &kt, sizeof(kt)},
        /* AES: the derived key's length (DES2 has a fixed one; the entry is dropped below) */
        {CKA_VALUE_LEN, &vlen, sizeof(vlen)},
        {CKA_TOKEN, &no, sizeof(no)},
        {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_SENSITIVE, &yes, sizeof(yes)},
        {CKA_EXTRACTABLE, &yes, sizeof(yes)},
        {CKA_ENCRYPT, &no, sizeof(no)},
        {CKA_DECRYPT, &no, sizeof(no)},
        {CKA_SIGN, &no, sizeof(no)},
        {CKA_VERIFY, &no, sizeof(no)},
        {CKA_WRAP, &no, sizeof(no)},
        {CKA_UNWRAP, &no, sizeof(no)},
        {CKA_DERIVE, &no, sizeof(no)},
        {CKA_COPYABLE, &no, sizeof(no)},
        /* last: SoftHSM2 2.6 refuses every attribute after it in a derive template */
        {CKA_MODIFIABLE, &no, sizeof(no)},
    };
    CK_KEY_DERIVATION_STRING_DATA sd;
    CK_MECHANISM dm = {aes ? CKM_AES_ECB_ENCRYPT_DATA : CKM_DES3_ECB_ENCRYPT_DATA, &sd, sizeof(sd)};
    CK_OBJECT_HANDLE p = CK_INVALID_HANDLE;
    CK_ATTRIBUTE *t = tpl;
    CK_ULONG nt = sizeof(tpl) / sizeof(tpl[0]);
    CK_RV rv = CKR_OK;
    int r;

    *k = CK_INVALID_HANDLE;
    if (imk->type != KV_KEY_DES2 && !aes)
        return kv_p11_fail_msg(h, KV_ERR_HSM_KEY, "key '%s' is not a des2 or aes128 key",
                               imk->label);
    if (!is_imk_role(imk->role))
        return kv_hsm_key_require_role(h, imk, KV_ROLE_IMK_AC);
    if ((r = aes ? kv_emv_aes_mk_input(pan, psn, data) : kv_emv_mk_input(option, pan, psn, y)) != 0)
        goto out;
    if (!aes) {
        kv_emv_mk_derivation_data(y, data, companion);
        /* no CKA_VALUE_LEN for DES2: move the class and type over it */
        tpl[2] = tpl[1];
        tpl[1] = tpl[0];
        t = tpl + 1;
        nt--;
    }
    sd.pData = data;
    sd.ulLen = sizeof(data);
    for (int attempt = 0; attempt < 2; attempt++) {
        if ((r = kv_p11_key_handle(h, imk, 0, &p)) != 0)
            goto out;
        rv = h->f->C_DeriveKey(h->session, &dm, p, t, nt, k);
        if (rv == CKR_OK)
            break;
        if (attempt == 0 && kv_p11_rv_handle_gone(rv) && (r = kv_p11_key_refind(h, imk)) == 0)
            continue;
        break;
    }
    if (rv == CKR_TEMPLATE_INCONSISTENT || rv == CKR_ATTRIBUTE_VALUE_INVALID) {
        r = kv_p11_fail(h, rv,
                        "the module enforces the IMK's derive template: ICC master keys do not "
                        "leave this token; personalize with a perso HSM",
                        "deriving an exportable ICC master key from '%s'", imk->label);
    } else if (rv != CKR_OK) {
        r = kv_p11_fail(h, rv, NULL, "deriving the ICC master key from '%s'", imk->label);
    } else {
        r = 0;
    }
out:
    kv_wipe(y, sizeof(y));
    kv_wipe(data, sizeof(data));
    kv_wipe(companion, sizeof(companion));
    return r;
}

/* C_WrapKey of k under wrapping key handle w (CKM_AES_KEY_WRAP, 24 bytes out). */
static int wrap_mk(kv_hsm *h, CK_OBJECT_HANDLE w, CK_OBJECT_HANDLE k, const char *wname,
                   uint8_t wrapped[KV_PERSO_WRAPPED_MK_LEN], CK_RV *rvp)
{
    CK_MECHANISM wm = {CKM_AES_KEY_WRAP, NULL, 0};
    CK_ULONG wl = KV_PERSO_WRAPPED_MK_LEN;
    CK_RV rv = h->f->C_WrapKey(h->session, &wm, w, k, wrapped, &wl);
    if (rvp != NULL)
        *rvp = rv;
    if (rv != CKR_OK || wl != KV_PERSO_WRAPPED_MK_LEN)
        return kv_p11_fail(h, rv, NULL, "wrapping the ICC master key under %s (CKM_AES_KEY_WRAP)",
                           wname);
    return 0;
}

/* see perso.h */
int kv_perso_icc_mk(kv_hsm *h, const kv_hsm_key *imk, int option, const char *pan, const char *psn,
                    uint8_t mk[16])
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE at = CKK_AES;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    kv_secbuf *kek = NULL;
    uint8_t wrapped[KV_PERSO_WRAPPED_MK_LEN], out[32];
    CK_OBJECT_HANDLE k = CK_INVALID_HANDLE, w = CK_INVALID_HANDLE;
    EVP_CIPHER_CTX *c = NULL;
    CK_RV rv;
    int r, n1 = 0, n2 = 0;

    if (h == NULL || imk == NULL || mk == NULL)
        return KV_ERR_ARG;
    if (!h->have_session)
        return kv_p11_fail_msg(h, KV_ERR_HSM_SESSION, "no session");
    if ((kek = kv_secbuf_new(16)) == NULL)
        return kv_p11_fail_msg(h, KV_ERR_NOMEM, "cannot allocate locked memory");
    if (RAND_bytes(kv_secbuf_ptr(kek), 16) != 1) {
        r = kv_p11_fail_msg(h, KV_ERR_INTERNAL, "no random bytes for a one-time wrapping key");
        goto out;
    }
    {
        /* the one-time wrapping key: a session object that may only wrap */
        CK_ATTRIBUTE t[] = {
            {CKA_CLASS, &cls, sizeof(cls)},      {CKA_KEY_TYPE, &at, sizeof(at)},
            {CKA_TOKEN, &no, sizeof(no)},        {CKA_PRIVATE, &yes, sizeof(yes)},
            {CKA_SENSITIVE, &yes, sizeof(yes)},  {CKA_EXTRACTABLE, &no, sizeof(no)},
            {CKA_WRAP, &yes, sizeof(yes)},       {CKA_ENCRYPT, &no, sizeof(no)},
            {CKA_DECRYPT, &no, sizeof(no)},      {CKA_UNWRAP, &no, sizeof(no)},
            {CKA_VALUE, kv_secbuf_ptr(kek), 16},
        };
        rv = h->f->C_CreateObject(h->session, t, sizeof(t) / sizeof(t[0]), &w);
        if (rv != CKR_OK) {
            r = kv_p11_fail(h, rv, NULL, "creating a one-time wrapping key");
            goto out;
        }
    }
    if ((r = derive_exportable_mk(h, imk, option, pan, psn, &k)) != 0)
        goto out;
    if ((r = wrap_mk(h, w, k, "a one-time session key", wrapped, NULL)) != 0)
        goto out;
    r = kv_p11_fail_msg(h, KV_ERR_INTERNAL, "unwrapping the ICC master key failed");
    if ((c = EVP_CIPHER_CTX_new()) == NULL)
        goto out;
    EVP_CIPHER_CTX_set_flags(c, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    if (EVP_DecryptInit_ex(c, EVP_aes_128_wrap(), NULL, kv_secbuf_ptr(kek), NULL) != 1 ||
        EVP_DecryptUpdate(c, out, &n1, wrapped, (int)sizeof(wrapped)) != 1 ||
        EVP_DecryptFinal_ex(c, out + n1, &n2) != 1 || n1 + n2 != 16)
        goto out;
    memcpy(mk, out, 16);
    r = 0;
out:
    if (k != CK_INVALID_HANDLE)
        h->f->C_DestroyObject(h->session, k);
    if (w != CK_INVALID_HANDLE)
        h->f->C_DestroyObject(h->session, w);
    EVP_CIPHER_CTX_free(c);
    kv_secbuf_free(kek);
    kv_wipe(out, sizeof(out));
    kv_wipe(wrapped, sizeof(wrapped));
    return r;
}

/* see perso.h */
int kv_perso_icc_mk_wrapped(kv_hsm *h, const kv_hsm_key *imk, int option, const char *pan,
                            const char *psn, const kv_hsm_key *transport,
                            uint8_t wrapped[KV_PERSO_WRAPPED_MK_LEN])
{
    CK_OBJECT_HANDLE k = CK_INVALID_HANDLE, w = CK_INVALID_HANDLE;
    CK_RV rv = CKR_OK;
    char wname[96];
    int r;

    if (h == NULL || imk == NULL || transport == NULL || wrapped == NULL)
        return KV_ERR_ARG;
    if (transport->type != KV_KEY_AES128 && transport->type != KV_KEY_AES192 &&
        transport->type != KV_KEY_AES256)
        return kv_p11_fail_msg(h, KV_ERR_ARG, "transport key '%s' is not an AES key",
                               transport->label);
    if ((r = kv_hsm_key_require_role(h, transport, KV_ROLE_KEK)) != 0)
        return r;
    if (!h->have_session)
        return kv_p11_fail_msg(h, KV_ERR_HSM_SESSION, "no session");
    if ((r = derive_exportable_mk(h, imk, option, pan, psn, &k)) != 0)
        goto out;
    snprintf(wname, sizeof(wname), "'%s'", transport->label);
    if ((r = kv_p11_key_handle(h, transport, 0, &w)) != 0)
        goto out;
    r = wrap_mk(h, w, k, wname, wrapped, &rv);
    if (r != 0 && kv_p11_rv_handle_gone(rv) && (r = kv_p11_key_refind(h, transport)) == 0 &&
        (r = kv_p11_key_handle(h, transport, 0, &w)) == 0)
        r = wrap_mk(h, w, k, wname, wrapped, NULL); /* the transport key was rotated */
out:
    if (k != CK_INVALID_HANDLE)
        h->f->C_DestroyObject(h->session, k);
    return r;
}

/* The big-endian bytes of an RSA parameter of k into a new buffer (*len). */
static uint8_t *rsa_param(EVP_PKEY *k, const char *name, size_t *len)
{
    BIGNUM *bn = NULL;
    uint8_t *p = NULL;
    int n;

    *len = 0;
    if (EVP_PKEY_get_bn_param(k, name, &bn) != 1)
        return NULL;
    n = BN_num_bytes(bn);
    if ((p = malloc(n > 0 ? (size_t)n : 1)) != NULL) {
        BN_bn2bin(bn, p);
        *len = (size_t)n;
    }
    BN_clear_free(bn);
    return p;
}

/* see perso.h */
int kv_perso_rsa_import(kv_hsm *h, const char *label, void *key)
{
    static const char *const names[8] = {
        OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,
        OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
        OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
        OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
    static const CK_ATTRIBUTE_TYPE attrs[8] = {
        CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_PRIVATE_EXPONENT, CKA_PRIME_1,
        CKA_PRIME_2, CKA_EXPONENT_1,      CKA_EXPONENT_2,       CKA_COEFFICIENT};
    EVP_PKEY *k = key;
    uint8_t *v[8] = {NULL};
    size_t vl[8] = {0};
    CK_OBJECT_CLASS pcls = CKO_PRIVATE_KEY, ucls = CKO_PUBLIC_KEY;
    CK_KEY_TYPE kt = CKK_RSA;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE t[24];
    CK_ULONG n = 0;
    CK_OBJECT_HANDLE priv = CK_INVALID_HANDLE, pub = CK_INVALID_HANDLE;
    unsigned long a, b;
    CK_RV rv;
    int r = KV_ERR_ARG;

    if (h == NULL || label == NULL || k == NULL || EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA)
        return KV_ERR_ARG;
    if (!h->have_session)
        return kv_p11_fail_msg(h, KV_ERR_HSM_SESSION, "no session");
    if ((r = kv_hsm_rsa_find(h, label, &a, &b)) == 0)
        return kv_p11_fail_msg(h, KV_ERR_HSM_KEY, "an RSA key labelled '%s' exists", label);
    r = KV_ERR_ARG;
    for (size_t i = 0; i < 8; i++)
        if ((v[i] = rsa_param(k, names[i], &vl[i])) == NULL)
            goto out;
    if (vl[0] > KV_PERSO_RSA_MAX)
        goto out;
    t[n++] = (CK_ATTRIBUTE){CKA_CLASS, &pcls, sizeof(pcls)};
    t[n++] = (CK_ATTRIBUTE){CKA_KEY_TYPE, &kt, sizeof(kt)};
    t[n++] = (CK_ATTRIBUTE){CKA_TOKEN, &yes, sizeof(yes)};
    t[n++] = (CK_ATTRIBUTE){CKA_PRIVATE, &yes, sizeof(yes)};
    t[n++] = (CK_ATTRIBUTE){CKA_SENSITIVE, &yes, sizeof(yes)};
    t[n++] = (CK_ATTRIBUTE){CKA_EXTRACTABLE, &no, sizeof(no)};
    t[n++] = (CK_ATTRIBUTE){CKA_SIGN, &yes, sizeof(yes)};
    t[n++] = (CK_ATTRIBUTE){CKA_DECRYPT, &no, sizeof(no)};
    t[n++] = (CK_ATTRIBUTE){CKA_UNWRAP, &no, sizeof(no)};
    t[n++] = (CK_ATTRIBUTE){CKA_COPYABLE, &no, sizeof(no)};
    t[n++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)label, strlen(label)};
    t[n++] = (CK_ATTRIBUTE){CKA_ID, (void *)label, strlen(label)};
    for (size_t i = 0; i < 8; i++)
        t[n++] = (CK_ATTRIBUTE){attrs[i], v[i], (CK_ULONG)vl[i]};
    t[n++] = (CK_ATTRIBUTE){CKA_MODIFIABLE, &no, sizeof(no)}; /* final at creation (issue 11) */
    if ((rv = h->f->C_CreateObject(h->session, t, n, &priv)) != CKR_OK) {
        r = kv_p11_fail(h, rv, NULL, "importing RSA private key '%s' (C_CreateObject)", label);
        goto out;
    }
    n = 0;
    t[n++] = (CK_ATTRIBUTE){CKA_CLASS, &ucls, sizeof(ucls)};
    t[n++] = (CK_ATTRIBUTE){CKA_KEY_TYPE, &kt, sizeof(kt)};
    t[n++] = (CK_ATTRIBUTE){CKA_TOKEN, &yes, sizeof(yes)};
    t[n++] = (CK_ATTRIBUTE){CKA_VERIFY, &yes, sizeof(yes)};
    t[n++] = (CK_ATTRIBUTE){CKA_ENCRYPT, &no, sizeof(no)};
    t[n++] = (CK_ATTRIBUTE){CKA_WRAP, &no, sizeof(no)};
    t[n++] = (CK_ATTRIBUTE){CKA_COPYABLE, &no, sizeof(no)};
    t[n++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)label, strlen(label)};
    t[n++] = (CK_ATTRIBUTE){CKA_ID, (void *)label, strlen(label)};
    t[n++] = (CK_ATTRIBUTE){CKA_MODULUS, v[0], (CK_ULONG)vl[0]};
    t[n++] = (CK_ATTRIBUTE){CKA_PUBLIC_EXPONENT, v[1], (CK_ULONG)vl[1]};
    t[n++] = (CK_ATTRIBUTE){CKA_MODIFIABLE, &no, sizeof(no)};
    if ((rv = h->f->C_CreateObject(h->session, t, n, &pub)) != CKR_OK) {
        r = kv_p11_fail(h, rv, NULL, "importing RSA public key '%s' (C_CreateObject)", label);
        h->f->C_DestroyObject(h->session, priv);
        goto out;
    }
    r = 0;
out:
    for (size_t i = 0; i < 8; i++) {
        if (v[i] != NULL)
            kv_wipe(v[i], vl[i]);
        free(v[i]);
    }
    return r;
}

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
#include <stdlib.h>
#include <string.h>

/* see perso.h */
int kv_perso_icc_mk(kv_hsm *h, const kv_hsm_key *imk, int option, const char *pan, const char *psn,
                    uint8_t mk[16])
{
    uint8_t y[8], data[16], companion[16];
    int r;

    if ((r = kv_emv_mk_input(option, pan, psn, y)) != 0)
        goto out;
    kv_emv_mk_derivation_data(y, data, companion);
    r = kv_hsm_ecb_encrypt(h, imk, 0, data, sizeof(data), mk);
out:
    kv_wipe(y, sizeof(y));
    kv_wipe(data, sizeof(data));
    kv_wipe(companion, sizeof(companion));
    return r;
}

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

/* ---- wrapped ICC master keys and the CA key import (PKCS#11 direct) ---------- */

/* see perso.h */
int kv_perso_icc_mk_wrapped(kv_hsm *h, const kv_hsm_key *imk, int option, const char *pan,
                            const char *psn, const kv_hsm_key *transport,
                            uint8_t wrapped[KV_PERSO_WRAPPED_MK_LEN])
{
    uint8_t y[8], data[16], companion[16];
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_DES2;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE tpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},     {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_TOKEN, &no, sizeof(no)},       {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_SENSITIVE, &yes, sizeof(yes)}, {CKA_EXTRACTABLE, &yes, sizeof(yes)},
        {CKA_ENCRYPT, &no, sizeof(no)},     {CKA_DECRYPT, &no, sizeof(no)},
        {CKA_SIGN, &no, sizeof(no)},        {CKA_DERIVE, &no, sizeof(no)},
    };
    CK_KEY_DERIVATION_STRING_DATA sd;
    CK_MECHANISM dm = {CKM_DES3_ECB_ENCRYPT_DATA, &sd, sizeof(sd)};
    CK_MECHANISM wm = {CKM_AES_KEY_WRAP, NULL, 0};
    CK_OBJECT_HANDLE k = CK_INVALID_HANDLE;
    CK_ULONG wl = KV_PERSO_WRAPPED_MK_LEN;
    CK_RV rv;
    int r;

    if (h == NULL || imk == NULL || transport == NULL || wrapped == NULL)
        return KV_ERR_ARG;
    if (transport->type != KV_KEY_AES128 && transport->type != KV_KEY_AES192 &&
        transport->type != KV_KEY_AES256)
        return kv_p11_fail_msg(h, KV_ERR_ARG, "transport key '%s' is not an AES key",
                               transport->label);
    if (!h->have_session)
        return kv_p11_fail_msg(h, KV_ERR_HSM_SESSION, "no session");
    if ((r = kv_emv_mk_input(option, pan, psn, y)) != 0)
        goto out;
    kv_emv_mk_derivation_data(y, data, companion);
    sd.pData = data;
    sd.ulLen = sizeof(data);
    rv = h->f->C_DeriveKey(h->session, &dm, kv_p11_resolve(h, imk->handle), tpl,
                           sizeof(tpl) / sizeof(tpl[0]), &k);
    if (rv != CKR_OK) {
        r = kv_p11_fail(h, rv, NULL, "deriving the ICC master key from '%s'", imk->label);
        goto out;
    }
    rv = h->f->C_WrapKey(h->session, &wm, kv_p11_resolve(h, transport->handle), k, wrapped, &wl);
    if (rv != CKR_OK || wl != KV_PERSO_WRAPPED_MK_LEN) {
        r = kv_p11_fail(h, rv, NULL, "wrapping the ICC master key under '%s' (CKM_AES_KEY_WRAP)",
                        transport->label);
        goto out;
    }
    r = 0;
out:
    if (k != CK_INVALID_HANDLE)
        h->f->C_DestroyObject(h->session, k);
    kv_wipe(y, sizeof(y));
    kv_wipe(data, sizeof(data));
    kv_wipe(companion, sizeof(companion));
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
    t[n++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)label, strlen(label)};
    t[n++] = (CK_ATTRIBUTE){CKA_ID, (void *)label, strlen(label)};
    for (size_t i = 0; i < 8; i++)
        t[n++] = (CK_ATTRIBUTE){attrs[i], v[i], (CK_ULONG)vl[i]};
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
    t[n++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)label, strlen(label)};
    t[n++] = (CK_ATTRIBUTE){CKA_ID, (void *)label, strlen(label)};
    t[n++] = (CK_ATTRIBUTE){CKA_MODULUS, v[0], (CK_ULONG)vl[0]};
    t[n++] = (CK_ATTRIBUTE){CKA_PUBLIC_EXPONENT, v[1], (CK_ULONG)vl[1]};
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

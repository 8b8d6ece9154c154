/* see oda.h (signing side: personalization and the virtual card) */
#include "apdu/oda.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "src/base/err.h"

#define HDR 0x6A
#define TRL 0xBC
#define PAD 0xBB
#define HASH_LEN 20

/* see oda.h */
int kv_oda_evp_signer(void *arg, const uint8_t *in, size_t len, uint8_t *out)
{
    int r = KV_ERR_INTERNAL;
    EVP_PKEY *key = arg;
    EVP_PKEY_CTX *pctx = NULL;
    size_t siglen = len;

    if (key == NULL || in == NULL || out == NULL || EVP_PKEY_get_size(key) <= 0 ||
        (size_t)EVP_PKEY_get_size(key) != len) {
        r = KV_ERR_ARG;
        goto out;
    }
    if ((pctx = EVP_PKEY_CTX_new(key, NULL)) == NULL) {
        r = KV_ERR_NOMEM;
        goto out;
    }
    /* EMV signatures are the raw RSA operation on a block formatted by the caller */
    if (EVP_PKEY_sign_init(pctx) != 1 || EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_NO_PADDING) != 1 ||
        EVP_PKEY_sign(pctx, out, &siglen, in, len) != 1 || siglen != len)
        goto out;
    r = 0;
out:
    EVP_PKEY_CTX_free(pctx);
    return r;
}

/* see oda.h */
int kv_oda_pubkey_from_pkey(const EVP_PKEY *key, kv_oda_pubkey *out)
{
    int r = KV_ERR_INTERNAL;
    BIGNUM *n = NULL, *e = NULL;
    int nlen, elen;

    if (key == NULL || !EVP_PKEY_is_a(key, "RSA")) {
        r = KV_ERR_ARG;
        goto out;
    }
    if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
        EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e) != 1)
        goto out;
    nlen = BN_num_bytes(n);
    elen = BN_num_bytes(e);
    if (nlen < KV_ODA_MOD_MIN || nlen > KV_ODA_MOD_MAX ||
        !(BN_is_word(e, 3) || BN_is_word(e, 65537))) {
        r = KV_ERR_ARG;
        goto out;
    }
    if (BN_bn2binpad(n, out->modulus, nlen) != nlen || BN_bn2binpad(e, out->exponent, elen) != elen)
        goto out;
    out->modulus_len = (size_t)nlen;
    out->exponent_len = (size_t)elen;
    out->hash_alg = 0x01;
    out->pk_alg = 0x01;
    r = 0;
out:
    BN_free(e);
    BN_free(n);
    return r;
}

static int key_fits(const kv_oda_pubkey *k)
{
    return k->modulus_len >= KV_ODA_MOD_MIN && k->modulus_len <= KV_ODA_MOD_MAX &&
           (k->exponent_len == 1 || k->exponent_len == 3);
}

/*
 * Put the key's leftmost bytes into the certificate's room (padding BB) and
 * the rest into the remainder.
 */
static int place_key(const kv_oda_pubkey *k, uint8_t *dst, size_t room, uint8_t *rem,
                     size_t rem_cap, size_t *rem_len)
{
    size_t first = k->modulus_len > room ? room : k->modulus_len;
    size_t rest = k->modulus_len - first;

    if (rest > rem_cap || (rest > 0 && rem == NULL))
        return KV_ERR_BUFFER;
    memcpy(dst, k->modulus, first);
    memset(dst + first, PAD, room - first);
    if (rest > 0)
        memcpy(rem, k->modulus + first, rest);
    *rem_len = rest;
    return 0;
}

/* Hash the block (format byte .. before the hash) with the parts, trail it, sign it. */
static int seal(kv_oda_signer_fn sign, void *arg, uint8_t *plain, size_t n, const uint8_t *rem,
                size_t rem_len, const uint8_t *exp, size_t exp_len, const kv_oda_static *sd,
                const uint8_t *extra, size_t extra_len, uint8_t *sig)
{
    int r;

    plain[0] = HDR;
    if ((r = kv_oda_hash(plain + 1, n - 22, rem, rem_len, exp, exp_len, sd, extra, extra_len,
                         plain + n - 21)) != 0)
        return r;
    plain[n - 1] = TRL;
    return sign(arg, plain, n, sig);
}

/* see oda.h */
int kv_oda_issuer_cert_sign(kv_oda_signer_fn sign, void *arg, size_t ca_len,
                            const kv_oda_pubkey *issuer, uint8_t *cert, uint8_t *rem,
                            size_t rem_cap, size_t *rem_len)
{
    int r = KV_ERR_ARG;
    uint8_t plain[KV_ODA_MOD_MAX];

    if (sign == NULL || ca_len < KV_ODA_MOD_MIN || ca_len > KV_ODA_MOD_MAX || !key_fits(issuer))
        goto out;
    /* Book 2 Table 6 */
    plain[1] = 0x02;
    memcpy(plain + 2, issuer->id, 4);
    memcpy(plain + 6, issuer->expiry, 2);
    memcpy(plain + 8, issuer->serial, 3);
    plain[11] = 0x01;
    plain[12] = 0x01;
    plain[13] = (uint8_t)issuer->modulus_len;
    plain[14] = (uint8_t)issuer->exponent_len;
    if ((r = place_key(issuer, plain + 15, ca_len - 36, rem, rem_cap, rem_len)) != 0)
        goto out;
    r = seal(sign, arg, plain, ca_len, rem, *rem_len, issuer->exponent, issuer->exponent_len, NULL,
             NULL, 0, cert);
out:
    return r;
}

/* see oda.h */
int kv_oda_icc_cert_sign(kv_oda_signer_fn sign, void *arg, size_t issuer_len,
                         const kv_oda_pubkey *icc, const kv_oda_static *sd, uint8_t *cert,
                         uint8_t *rem, size_t rem_cap, size_t *rem_len)
{
    int r = KV_ERR_ARG;
    uint8_t plain[KV_ODA_MOD_MAX];

    if (sign == NULL || issuer_len < KV_ODA_MOD_MIN || issuer_len > KV_ODA_MOD_MAX ||
        !key_fits(icc))
        goto out;
    /* Book 2 Table 14 */
    plain[1] = 0x04;
    memcpy(plain + 2, icc->id, 10);
    memcpy(plain + 12, icc->expiry, 2);
    memcpy(plain + 14, icc->serial, 3);
    plain[17] = 0x01;
    plain[18] = 0x01;
    plain[19] = (uint8_t)icc->modulus_len;
    plain[20] = (uint8_t)icc->exponent_len;
    if ((r = place_key(icc, plain + 21, issuer_len - 42, rem, rem_cap, rem_len)) != 0)
        goto out;
    r = seal(sign, arg, plain, issuer_len, rem, *rem_len, icc->exponent, icc->exponent_len, sd,
             NULL, 0, cert);
out:
    return r;
}

/* see oda.h */
int kv_oda_ssad_sign(kv_oda_signer_fn sign, void *arg, size_t issuer_len, const uint8_t dac[2],
                     const kv_oda_static *sd, uint8_t *ssad)
{
    int r = KV_ERR_ARG;
    uint8_t plain[KV_ODA_MOD_MAX];

    if (sign == NULL || issuer_len < KV_ODA_MOD_MIN || issuer_len > KV_ODA_MOD_MAX)
        goto out;
    /* Book 2 Table 7 */
    plain[1] = 0x03;
    plain[2] = 0x01;
    memcpy(plain + 3, dac, 2);
    memset(plain + 5, PAD, issuer_len - 26);
    r = seal(sign, arg, plain, issuer_len, NULL, 0, NULL, 0, sd, NULL, 0, ssad);
out:
    return r;
}

/* Format 05 block around ICC dynamic data dd (Book 2 Tables 17 and 19). */
static int sign_dynamic(kv_oda_signer_fn sign, void *arg, size_t icc_len, const uint8_t *dd,
                        size_t dd_len, const uint8_t *extra, size_t extra_len, uint8_t *sdad)
{
    int r = KV_ERR_ARG;
    uint8_t plain[KV_ODA_MOD_MAX];

    if (sign == NULL || icc_len < KV_ODA_MOD_MIN || icc_len > KV_ODA_MOD_MAX ||
        dd_len > icc_len - 25)
        goto out;
    plain[1] = 0x05;
    plain[2] = 0x01;
    plain[3] = (uint8_t)dd_len;
    memcpy(plain + 4, dd, dd_len);
    memset(plain + 4 + dd_len, PAD, icc_len - 25 - dd_len);
    r = seal(sign, arg, plain, icc_len, NULL, 0, NULL, 0, NULL, extra, extra_len, sdad);
out:
    return r;
}

/* see oda.h */
int kv_oda_dda_sign(kv_oda_signer_fn sign, void *arg, size_t icc_len, const uint8_t *icc_dn,
                    size_t icc_dn_len, const uint8_t *ddol_data, size_t ddol_len, uint8_t *sdad)
{
    uint8_t dd[9];

    if (icc_dn == NULL || icc_dn_len < 2 || icc_dn_len > 8)
        return KV_ERR_ARG;
    dd[0] = (uint8_t)icc_dn_len;
    memcpy(dd + 1, icc_dn, icc_dn_len);
    return sign_dynamic(sign, arg, icc_len, dd, 1 + icc_dn_len, ddol_data, ddol_len, sdad);
}

/* see oda.h */
int kv_oda_cda_sign(kv_oda_signer_fn sign, void *arg, size_t icc_len, const uint8_t *icc_dn,
                    size_t icc_dn_len, uint8_t cid, const uint8_t ac[8], const uint8_t tdhc[20],
                    const uint8_t un[4], uint8_t *sdad)
{
    uint8_t dd[1 + 8 + 1 + 8 + HASH_LEN];
    size_t n = 0;

    if (icc_dn == NULL || icc_dn_len < 2 || icc_dn_len > 8 || ac == NULL || tdhc == NULL ||
        un == NULL)
        return KV_ERR_ARG;
    dd[n++] = (uint8_t)icc_dn_len;
    memcpy(dd + n, icc_dn, icc_dn_len);
    n += icc_dn_len;
    dd[n++] = cid;
    memcpy(dd + n, ac, 8);
    n += 8;
    memcpy(dd + n, tdhc, HASH_LEN);
    n += HASH_LEN;
    return sign_dynamic(sign, arg, icc_len, dd, n, un, 4, sdad);
}

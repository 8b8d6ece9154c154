/* see oda.h */
#include "apdu/oda.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/evp.h>

#include "src/base/cursor.h"
#include "apdu/tlv.h"
#include "apdu/tvr.h"
#include "src/base/err.h"
#include "src/base/secure.h"

#define HDR 0x6A
#define TRL 0xBC
#define HASH_LEN 20
#define ALG_SHA1 0x01
#define ALG_RSA 0x01

/* Fixed overhead of each recovered object (Book 2 Tables 6, 14, 7, 17). */
#define ISSUER_OVERHEAD 36 /* header ... exponent length, hash, trailer */
#define ICC_OVERHEAD 42
#define SSAD_OVERHEAD 26
#define SDAD_OVERHEAD 25

/* see oda.h */
const char *kv_oda_method_name(int method)
{
    switch (method) {
    case KV_ODA_NONE:
        return "none";
    case KV_ODA_SDA:
        return "sda";
    case KV_ODA_DDA:
        return "dda";
    case KV_ODA_CDA:
        return "cda";
    default:
        return "?";
    }
}

/* see oda.h */
const char *kv_oda_state_name(int state)
{
    switch (state) {
    case KV_ODA_ST_NOT_PERFORMED:
        return "not_performed";
    case KV_ODA_ST_PENDING_DDA:
        return "pending_dda";
    case KV_ODA_ST_PENDING_CDA:
        return "pending_cda";
    case KV_ODA_ST_OK:
        return "ok";
    case KV_ODA_ST_FAILED:
        return "failed";
    case KV_ODA_ST_NO_SIGNATURE:
        return "no_signature";
    default:
        return "?";
    }
}

/* see oda.h */
int kv_oda_select_method(const uint8_t aip[2], const uint8_t term_caps[3])
{
    /* Book 3 §10.3: CDA if both support it, else DDA, else SDA. */
    if ((aip[0] & 0x01) && (term_caps[2] & 0x08))
        return KV_ODA_CDA;
    if ((aip[0] & 0x20) && (term_caps[2] & 0x40))
        return KV_ODA_DDA;
    if ((aip[0] & 0x40) && (term_caps[2] & 0x80))
        return KV_ODA_SDA;
    return KV_ODA_NONE;
}

/* Feed the static data to be authenticated (Book 3 §10.3) into md. */
static int hash_static(EVP_MD_CTX *md, const kv_oda_static *sd)
{
    int r = KV_ERR_ODA_RECORD;
    size_t i;

    /* 9F4A may list only the AIP (Book 3 §10.3). */
    if (sd->tag_list_len > 0 &&
        (sd->tag_list == NULL || sd->tag_list_len != 1 || sd->tag_list[0] != 0x82))
        goto out;
    if (sd->nrecords > 0 && sd->records == NULL)
        goto out;
    for (i = 0; i < sd->nrecords; i++) {
        const kv_oda_record *rec = &sd->records[i];

        if (rec->sfi == 0 || rec->sfi > 30 || (rec->len > 0 && rec->data == NULL))
            goto out;
        kv_cursor c;
        kv_tlv t;

        /*
         * Book 3 §10.3: a record for ODA that is not a 70 template (the whole
         * record) means ODA was performed and failed, whatever its SFI.
         */
        if (rec->len == 0 || rec->data[0] != 0x70)
            goto out;
        kv_cursor_init(&c, rec->data, rec->len);
        if (kv_tlv_next(&c, &t) != 1 || t.tag != 0x70 || t.raw_len != rec->len)
            goto out;
        if (rec->sfi <= 10) {
            /* SFI 1-10: the value of the template */
            if (t.len > 0 && EVP_DigestUpdate(md, t.value, t.len) != 1) {
                r = KV_ERR_INTERNAL;
                goto out;
            }
        } else if (EVP_DigestUpdate(md, rec->data, rec->len) != 1) {
            /* SFI 11-30: the whole record, tag 70 and length included */
            r = KV_ERR_INTERNAL;
            goto out;
        }
    }
    if (sd->tag_list_len == 1 && EVP_DigestUpdate(md, sd->aip, 2) != 1) {
        r = KV_ERR_INTERNAL;
        goto out;
    }
    r = 0;
out:
    return r;
}

/* see oda.h */
int kv_oda_hash(const uint8_t *data, size_t data_len, const uint8_t *rem, size_t rem_len,
                const uint8_t *exp, size_t exp_len, const kv_oda_static *sd, const uint8_t *extra,
                size_t extra_len, uint8_t out[20])
{
    int r = KV_ERR_INTERNAL;
    EVP_MD_CTX *md = NULL;
    unsigned int n = 0;

    if ((md = EVP_MD_CTX_new()) == NULL) {
        r = KV_ERR_NOMEM;
        goto out;
    }
    if (EVP_DigestInit_ex(md, EVP_sha1(), NULL) != 1)
        goto out;
    if ((data_len > 0 && EVP_DigestUpdate(md, data, data_len) != 1) ||
        (rem_len > 0 && rem != NULL && EVP_DigestUpdate(md, rem, rem_len) != 1) ||
        (exp_len > 0 && exp != NULL && EVP_DigestUpdate(md, exp, exp_len) != 1))
        goto out;
    if (sd != NULL && (r = hash_static(md, sd)) != 0)
        goto out;
    r = KV_ERR_INTERNAL;
    if (extra_len > 0 && extra != NULL && EVP_DigestUpdate(md, extra, extra_len) != 1)
        goto out;
    if (EVP_DigestFinal_ex(md, out, &n) != 1 || n != HASH_LEN)
        goto out;
    r = 0;
out:
    EVP_MD_CTX_free(md);
    return r;
}

/* see oda.h */
int kv_oda_rsa_recover(const uint8_t *mod, size_t mod_len, const uint8_t *exp, size_t exp_len,
                       const uint8_t *in, size_t in_len, uint8_t *out)
{
    int r = KV_ERR_INTERNAL;
    BN_CTX *bctx = NULL;
    BIGNUM *n = NULL, *e = NULL, *x = NULL, *y = NULL;

    if (mod == NULL || mod_len == 0 || mod_len > KV_ODA_MOD_MAX || (mod[mod_len - 1] & 1) == 0 ||
        exp == NULL || exp_len == 0 || exp_len > 3) {
        r = KV_ERR_ODA_KEY_LENGTH;
        goto out;
    }
    if (in == NULL || in_len != mod_len) {
        r = KV_ERR_ODA_CERT_LENGTH;
        goto out;
    }
    if ((bctx = BN_CTX_new()) == NULL || (n = BN_bin2bn(mod, (int)mod_len, NULL)) == NULL ||
        (e = BN_bin2bn(exp, (int)exp_len, NULL)) == NULL ||
        (x = BN_bin2bn(in, (int)in_len, NULL)) == NULL || (y = BN_new()) == NULL) {
        r = KV_ERR_NOMEM;
        goto out;
    }
    if (BN_is_zero(e)) {
        r = KV_ERR_ODA_KEY_LENGTH;
        goto out;
    }
    if (BN_cmp(x, n) >= 0) {
        r = KV_ERR_ODA_HEADER; /* no signature is as large as the modulus */
        goto out;
    }
    if (BN_mod_exp(y, x, e, n, bctx) != 1 || BN_bn2binpad(y, out, (int)mod_len) != (int)mod_len)
        goto out;
    r = 0;
out:
    BN_free(y);
    BN_free(x);
    BN_free(e);
    BN_free(n);
    BN_CTX_free(bctx);
    return r;
}

/* PAN (5A, cn, F-padded) into digits; KV_ERR_ODA_DATA_MISSING or KV_ERR_ODA_PAN. */
static int pan_digits(const uint8_t *pan, size_t len, char out[21], size_t *n)
{
    size_t i;
    int pad = 0;

    *n = 0;
    if (pan == NULL || len == 0)
        return KV_ERR_ODA_DATA_MISSING;
    if (len > 10)
        return KV_ERR_ODA_PAN;
    for (i = 0; i < 2 * len; i++) {
        unsigned d = (i % 2 == 0) ? (pan[i / 2] >> 4) : (pan[i / 2] & 0x0F);

        if (d == 0xF) {
            pad = 1;
            continue;
        }
        if (pad || d > 9)
            return KV_ERR_ODA_PAN;
        out[(*n)++] = (char)('0' + d);
    }
    out[*n] = '\0';
    return *n > 0 ? 0 : KV_ERR_ODA_PAN;
}

/*
 * Digits of a cn field of len bytes (leftmost digits, F-padded) compared with
 * the start of pan: min_digits..len*2 digits must all match; whole = 1 also
 * asks that they be the whole PAN.
 */
static int cn_matches(const uint8_t *cn, size_t len, size_t min_digits, int whole, const char *pan,
                      size_t pan_n)
{
    char d[21];
    size_t n;

    if (pan_digits(cn, len, d, &n) != 0 || n < min_digits || n > pan_n)
        return 0;
    if (whole && n != pan_n)
        return 0;
    return memcmp(d, pan, n) == 0;
}

static int bcd2(uint8_t b, unsigned *v)
{
    if ((b >> 4) > 9 || (b & 0x0F) > 9)
        return 0;
    *v = (unsigned)(b >> 4) * 10 + (b & 0x0F);
    return 1;
}

static unsigned full_year(unsigned yy)
{
    return yy < 50 ? 2000 + yy : 1900 + yy; /* Book 4 §6.7.3 */
}

/* Valid through the last day of MMYY: fine unless MMYY is before the transaction month. */
static int check_expiry(const uint8_t mmyy[2], uint32_t txn_date)
{
    unsigned mm, yy, tyy = txn_date / 10000, tmm = (txn_date / 100) % 100, tdd = txn_date % 100;

    if (txn_date > 991231 || tmm < 1 || tmm > 12 || tdd < 1 || tdd > 31)
        return KV_ERR_ARG;
    if (!bcd2(mmyy[0], &mm) || !bcd2(mmyy[1], &yy) || mm < 1 || mm > 12)
        return KV_ERR_ODA_EXPIRED;
    if (full_year(yy) * 100 + mm < full_year(tyy) * 100 + tmm)
        return KV_ERR_ODA_EXPIRED;
    return 0;
}

/* EMV exponents are 3 or 2^16 + 1 (Book 2 §11.2.2, Annex B). */
static int exponent_ok(const uint8_t *e, size_t len)
{
    static const uint8_t f4[3] = {0x01, 0x00, 0x01};

    return (len == 1 && e[0] == 0x03) || (len == 3 && memcmp(e, f4, 3) == 0);
}

/*
 * Shared part of issuer and ICC certificate checks: key and remainder
 * lengths, then the key assembled into out. room = key bytes the
 * certificate holds.
 */
static int take_key(const uint8_t *part, size_t room, unsigned pk_len, unsigned exp_len,
                    const kv_oda_cert_in *in, kv_oda_pubkey *out)
{
    size_t need;

    if (in->exponent == NULL || in->exponent_len == 0)
        return KV_ERR_ODA_DATA_MISSING;
    if (exp_len != in->exponent_len || !exponent_ok(in->exponent, in->exponent_len))
        return KV_ERR_ODA_KEY_LENGTH;
    /* the length byte goes to 255; out->modulus holds KV_ODA_MOD_MAX bytes */
    if (pk_len < KV_ODA_MOD_MIN || pk_len > KV_ODA_MOD_MAX)
        return KV_ERR_ODA_KEY_LENGTH;
    if (pk_len > room) {
        need = pk_len - room;
        if (in->remainder == NULL || in->remainder_len == 0)
            return KV_ERR_ODA_DATA_MISSING;
        if (in->remainder_len != need)
            return KV_ERR_ODA_KEY_LENGTH;
    }
    if (out != NULL) {
        size_t first = pk_len > room ? room : pk_len;

        memcpy(out->modulus, part, first);
        if (pk_len > room)
            memcpy(out->modulus + first, in->remainder, pk_len - room);
        out->modulus_len = pk_len;
        memcpy(out->exponent, in->exponent, in->exponent_len);
        out->exponent_len = in->exponent_len;
    }
    return 0;
}

static int check_hash(const uint8_t *rec, size_t n, const kv_oda_cert_in *in,
                      const kv_oda_static *sd, const uint8_t *extra, size_t extra_len)
{
    uint8_t h[HASH_LEN];
    int r;

    if ((r = kv_oda_hash(rec + 1, n - 22, in != NULL ? in->remainder : NULL,
                         in != NULL && in->remainder != NULL ? in->remainder_len : 0,
                         in != NULL ? in->exponent : NULL, in != NULL ? in->exponent_len : 0, sd,
                         extra, extra_len, h)) != 0)
        return r;
    /* public data: no need for a constant-time compare, but it costs nothing */
    return kv_ct_equal(h, rec + n - 21, HASH_LEN) ? 0 : KV_ERR_ODA_HASH;
}

/* see oda.h */
int kv_oda_issuer_cert_check(const uint8_t *rec, size_t n, const kv_oda_cert_in *in,
                             const uint8_t *pan, size_t pan_len, uint32_t txn_date,
                             kv_oda_pubkey *out)
{
    int r = KV_ERR_INTERNAL;
    kv_oda_pubkey k;
    char digits[21];
    size_t ndigits;

    memset(&k, 0, sizeof(k));
    if (rec == NULL || n < ISSUER_OVERHEAD + 1 || n > KV_ODA_MOD_MAX) {
        r = KV_ERR_ODA_CERT_LENGTH;
        goto out;
    }
    /* Book 2 §5.3 steps 2-4 (§6.3 the same) */
    if (rec[n - 1] != TRL || rec[0] != HDR) {
        r = KV_ERR_ODA_HEADER;
        goto out;
    }
    if (rec[1] != 0x02) {
        r = KV_ERR_ODA_FORMAT;
        goto out;
    }
    if (rec[11] != ALG_SHA1) {
        r = KV_ERR_ODA_ALGORITHM;
        goto out;
    }
    if ((r = take_key(rec + 15, n - ISSUER_OVERHEAD, rec[13], rec[14], in, &k)) != 0)
        goto out;
    /* steps 5-6: hash over format .. key digits, remainder, exponent */
    if ((r = check_hash(rec, n, in, NULL, NULL, 0)) != 0)
        goto out;
    /* step 7: issuer identifier = leftmost 3-8 PAN digits */
    if ((r = pan_digits(pan, pan_len, digits, &ndigits)) != 0)
        goto out;
    if (!cn_matches(rec + 2, 4, 3, 0, digits, ndigits)) {
        r = KV_ERR_ODA_PAN;
        goto out;
    }
    /* step 8 */
    if ((r = check_expiry(rec + 6, txn_date)) != 0)
        goto out;
    /* step 10 */
    if (rec[12] != ALG_RSA) {
        r = KV_ERR_ODA_ALGORITHM;
        goto out;
    }
    memcpy(k.id, rec + 2, 4);
    memcpy(k.expiry, rec + 6, 2);
    memcpy(k.serial, rec + 8, 3);
    k.hash_alg = rec[11];
    k.pk_alg = rec[12];
    if (out != NULL)
        *out = k;
    r = 0;
out:
    return r;
}

/* see oda.h */
int kv_oda_issuer_key_recover(const kv_capk *ca, const kv_oda_cert_in *in, const uint8_t *pan,
                              size_t pan_len, uint32_t txn_date, kv_oda_pubkey *out)
{
    int r = KV_ERR_INTERNAL;
    uint8_t rec[KV_ODA_MOD_MAX];

    if (ca == NULL) {
        r = KV_ERR_ODA_CA_UNKNOWN;
        goto out;
    }
    if (in->cert == NULL || in->cert_len == 0 || in->exponent == NULL || in->exponent_len == 0) {
        r = KV_ERR_ODA_DATA_MISSING;
        goto out;
    }
    /* step 1 */
    if (in->cert_len != ca->modulus_len) {
        r = KV_ERR_ODA_CERT_LENGTH;
        goto out;
    }
    if ((r = kv_oda_rsa_recover(ca->modulus, ca->modulus_len, ca->exponent, ca->exponent_len,
                                in->cert, in->cert_len, rec)) != 0)
        goto out;
    r = kv_oda_issuer_cert_check(rec, ca->modulus_len, in, pan, pan_len, txn_date, out);
out:
    return r;
}

/* see oda.h */
int kv_oda_issuer_key_recover_store(const kv_capk_store *capks, const uint8_t rid[5], int ca_index,
                                    const kv_oda_cert_in *in, const uint8_t *pan, size_t pan_len,
                                    uint32_t txn_date, kv_oda_pubkey *out)
{
    int r;
    const kv_capk *ca;
    kv_oda_pubkey k;

    if (ca_index < 0 || ca_index > 0xFF)
        return KV_ERR_ODA_DATA_MISSING;
    if (capks == NULL || (ca = kv_capk_find(capks, rid, (uint8_t)ca_index)) == NULL)
        return KV_ERR_ODA_CA_UNKNOWN;
    if ((r = kv_oda_issuer_key_recover(ca, in, pan, pan_len, txn_date, &k)) != 0)
        return r;
    /* Book 2 §5.3 / §6.3 step 9: RID || index || serial not on the revocation list */
    if (kv_capk_is_revoked(capks, rid, (uint8_t)ca_index, k.serial))
        return KV_ERR_CAPK_REVOKED;
    if (out != NULL)
        *out = k;
    return 0;
}

/* see oda.h */
int kv_oda_icc_cert_check(const uint8_t *rec, size_t n, const kv_oda_cert_in *in,
                          const uint8_t *pan, size_t pan_len, uint32_t txn_date,
                          const kv_oda_static *sd, kv_oda_pubkey *out)
{
    int r = KV_ERR_INTERNAL;
    kv_oda_pubkey k;
    char digits[21];
    size_t ndigits;

    memset(&k, 0, sizeof(k));
    if (rec == NULL || n < ICC_OVERHEAD + 1 || n > KV_ODA_MOD_MAX) {
        r = KV_ERR_ODA_CERT_LENGTH;
        goto out;
    }
    /* Book 2 §6.4 steps 2-4 */
    if (rec[n - 1] != TRL || rec[0] != HDR) {
        r = KV_ERR_ODA_HEADER;
        goto out;
    }
    if (rec[1] != 0x04) {
        r = KV_ERR_ODA_FORMAT;
        goto out;
    }
    if (rec[17] != ALG_SHA1) {
        r = KV_ERR_ODA_ALGORITHM;
        goto out;
    }
    if ((r = take_key(rec + 21, n - ICC_OVERHEAD, rec[19], rec[20], in, &k)) != 0)
        goto out;
    /* steps 5-7: hash over format .. key digits, remainder, exponent, static data */
    if ((r = check_hash(rec, n, in, sd, NULL, 0)) != 0)
        goto out;
    /* step 8: the recovered PAN equals 5A */
    if ((r = pan_digits(pan, pan_len, digits, &ndigits)) != 0)
        goto out;
    if (!cn_matches(rec + 2, 10, 1, 1, digits, ndigits)) {
        r = KV_ERR_ODA_PAN;
        goto out;
    }
    /* step 9 */
    if ((r = check_expiry(rec + 12, txn_date)) != 0)
        goto out;
    /* step 10 */
    if (rec[18] != ALG_RSA) {
        r = KV_ERR_ODA_ALGORITHM;
        goto out;
    }
    memcpy(k.id, rec + 2, 10);
    memcpy(k.expiry, rec + 12, 2);
    memcpy(k.serial, rec + 14, 3);
    k.hash_alg = rec[17];
    k.pk_alg = rec[18];
    if (out != NULL)
        *out = k;
    r = 0;
out:
    return r;
}

/* see oda.h */
int kv_oda_icc_key_recover(const kv_oda_pubkey *issuer, const kv_oda_cert_in *in,
                           const uint8_t *pan, size_t pan_len, uint32_t txn_date,
                           const kv_oda_static *sd, kv_oda_pubkey *out)
{
    int r = KV_ERR_INTERNAL;
    uint8_t rec[KV_ODA_MOD_MAX];

    if (in->cert == NULL || in->cert_len == 0 || in->exponent == NULL || in->exponent_len == 0) {
        r = KV_ERR_ODA_DATA_MISSING;
        goto out;
    }
    if (in->cert_len != issuer->modulus_len) {
        r = KV_ERR_ODA_CERT_LENGTH;
        goto out;
    }
    if ((r = kv_oda_rsa_recover(issuer->modulus, issuer->modulus_len, issuer->exponent,
                                issuer->exponent_len, in->cert, in->cert_len, rec)) != 0)
        goto out;
    r = kv_oda_icc_cert_check(rec, issuer->modulus_len, in, pan, pan_len, txn_date, sd, out);
out:
    return r;
}

/* Recover a signature of format fmt with key k into rec; header, trailer, format, hash alg. */
static int recover_signed(const kv_oda_pubkey *k, const uint8_t *sig, size_t sig_len, uint8_t fmt,
                          size_t overhead, uint8_t *rec)
{
    int r;

    if (sig == NULL || sig_len == 0)
        return KV_ERR_ODA_DATA_MISSING;
    if (sig_len != k->modulus_len || k->modulus_len < overhead + 1)
        return KV_ERR_ODA_CERT_LENGTH;
    if ((r = kv_oda_rsa_recover(k->modulus, k->modulus_len, k->exponent, k->exponent_len, sig,
                                sig_len, rec)) != 0)
        return r;
    if (rec[sig_len - 1] != TRL || rec[0] != HDR)
        return KV_ERR_ODA_HEADER;
    if (rec[1] != fmt)
        return KV_ERR_ODA_FORMAT;
    if (rec[2] != ALG_SHA1)
        return KV_ERR_ODA_ALGORITHM;
    return 0;
}

/* see oda.h */
int kv_oda_sda_verify(const kv_oda_pubkey *issuer, const uint8_t *ssad, size_t ssad_len,
                      const kv_oda_static *sd, uint8_t dac[2])
{
    int r = KV_ERR_INTERNAL;
    uint8_t rec[KV_ODA_MOD_MAX];
    size_t n = issuer->modulus_len;

    /* Book 2 §5.4 */
    if ((r = recover_signed(issuer, ssad, ssad_len, 0x03, SSAD_OVERHEAD, rec)) != 0)
        goto out;
    if ((r = check_hash(rec, n, NULL, sd, NULL, 0)) != 0)
        goto out;
    if (dac != NULL)
        memcpy(dac, rec + 3, 2);
    r = 0;
out:
    return r;
}

/*
 * ICC dynamic data of a format 05 signature: rec[3] is its length, at most
 * n - 25; it starts with the ICC Dynamic Number length (2-8) and number.
 */
static int dynamic_data(const uint8_t *rec, size_t n, const uint8_t **dd, size_t *dd_len)
{
    size_t l = rec[3];

    if (l > n - SDAD_OVERHEAD || l < 3 || rec[4] < 2 || rec[4] > 8 || (size_t)rec[4] + 1 > l)
        return KV_ERR_ODA_KEY_LENGTH;
    *dd = rec + 4;
    *dd_len = l;
    return 0;
}

/* see oda.h */
int kv_oda_dda_verify(const kv_oda_pubkey *icc, const uint8_t *sdad, size_t sdad_len,
                      const uint8_t *ddol_data, size_t ddol_len, uint8_t *icc_dn,
                      size_t *icc_dn_len)
{
    int r = KV_ERR_INTERNAL;
    uint8_t rec[KV_ODA_MOD_MAX];
    const uint8_t *dd = NULL;
    size_t dd_len = 0, n = icc->modulus_len;

    /* Book 2 §6.5.2 */
    if ((r = recover_signed(icc, sdad, sdad_len, 0x05, SDAD_OVERHEAD, rec)) != 0)
        goto out;
    if ((r = dynamic_data(rec, n, &dd, &dd_len)) != 0)
        goto out;
    if ((r = check_hash(rec, n, NULL, NULL, ddol_data, ddol_len)) != 0)
        goto out;
    if (icc_dn != NULL)
        memcpy(icc_dn, dd + 1, dd[0]);
    if (icc_dn_len != NULL)
        *icc_dn_len = dd[0];
    r = 0;
out:
    return r;
}

/* see oda.h */
int kv_oda_cda_tdhc(const uint8_t *pdol, size_t pdol_len, const uint8_t *cdol1, size_t cdol1_len,
                    const uint8_t *cdol2, size_t cdol2_len, const uint8_t *tlvs, size_t tlvs_len,
                    uint8_t out[20])
{
    int r = KV_ERR_INTERNAL;
    EVP_MD_CTX *md = NULL;
    kv_cursor c;
    kv_tlv t;
    unsigned int hn = 0;

    if ((md = EVP_MD_CTX_new()) == NULL) {
        r = KV_ERR_NOMEM;
        goto out;
    }
    if (EVP_DigestInit_ex(md, EVP_sha1(), NULL) != 1)
        goto out;
    if ((pdol_len > 0 && pdol != NULL && EVP_DigestUpdate(md, pdol, pdol_len) != 1) ||
        (cdol1_len > 0 && cdol1 != NULL && EVP_DigestUpdate(md, cdol1, cdol1_len) != 1) ||
        (cdol2_len > 0 && cdol2 != NULL && EVP_DigestUpdate(md, cdol2, cdol2_len) != 1))
        goto out;
    kv_cursor_init(&c, tlvs, tlvs != NULL ? tlvs_len : 0);
    for (;;) {
        int k = kv_tlv_next(&c, &t);

        if (k < 0) {
            r = k;
            goto out;
        }
        if (k == 0)
            break;
        /* Book 2 §6.6.1: every object of the response but the signature itself */
        if (t.tag != 0x9F4B && EVP_DigestUpdate(md, t.raw, t.raw_len) != 1)
            goto out;
    }
    if (EVP_DigestFinal_ex(md, out, &hn) != 1 || hn != HASH_LEN)
        goto out;
    r = 0;
out:
    EVP_MD_CTX_free(md);
    return r;
}

/* The parts of a format 2 GENERATE AC response CDA needs. */
typedef struct {
    const uint8_t *tlvs; /* content of the 77 template */
    size_t tlvs_len;
    int has_cid;
    uint8_t cid;
    const uint8_t *sdad; /* 9F4B value */
    size_t sdad_len;
} cda_response;

static int cda_parse(const uint8_t *resp, size_t len, cda_response *out)
{
    int r = KV_ERR_ODA_DATA_MISSING;
    kv_cursor c, in;
    kv_tlv t;

    memset(out, 0, sizeof(*out));
    if (resp == NULL || len == 0 || resp[0] != 0x77)
        goto out;
    kv_cursor_init(&c, resp, len);
    if ((r = kv_tlv_next(&c, &t)) != 1) {
        r = r < 0 ? r : KV_ERR_ODA_DATA_MISSING;
        goto out;
    }
    out->tlvs = t.value;
    out->tlvs_len = t.len;
    kv_cursor_init(&in, t.value, t.value != NULL ? t.len : 0);
    for (;;) {
        int k = kv_tlv_next(&in, &t);

        if (k < 0) {
            r = k;
            goto out;
        }
        if (k == 0)
            break;
        if (t.tag == 0x9F27 && t.len == 1 && !out->has_cid) {
            out->has_cid = 1;
            out->cid = t.value[0];
        } else if (t.tag == 0x9F4B && out->sdad == NULL && t.len > 0) {
            out->sdad = t.value;
            out->sdad_len = t.len;
        }
    }
    r = 0;
out:
    return r;
}

/* see oda.h */
int kv_oda_cda_verify(const kv_oda_pubkey *icc, const kv_oda_cda_in *in, kv_oda_cda_out *out)
{
    int r = KV_ERR_INTERNAL;
    uint8_t rec[KV_ODA_MOD_MAX], tdhc[HASH_LEN];
    cda_response cr;
    const uint8_t *dd = NULL;
    size_t dd_len = 0, n = icc->modulus_len, dn;

    if ((r = cda_parse(in->response, in->response_len, &cr)) != 0)
        goto out;
    if (!cr.has_cid || cr.sdad == NULL) {
        r = KV_ERR_ODA_DATA_MISSING;
        goto out;
    }
    /* Book 2 §6.6.2 steps 1-4 */
    if ((r = recover_signed(icc, cr.sdad, cr.sdad_len, 0x05, SDAD_OVERHEAD, rec)) != 0)
        goto out;
    /* ICC dynamic data: number length, number, CID, AC, transaction data hash code */
    if ((r = dynamic_data(rec, n, &dd, &dd_len)) != 0)
        goto out;
    dn = dd[0];
    if (dd_len < 1 + dn + 1 + 8 + HASH_LEN) {
        r = KV_ERR_ODA_KEY_LENGTH;
        goto out;
    }
    /* step 5 */
    if (dd[1 + dn] != cr.cid) {
        r = KV_ERR_ODA_MISMATCH;
        goto out;
    }
    /* steps 6-8 */
    if ((r = check_hash(rec, n, NULL, NULL, in->un, sizeof(in->un))) != 0)
        goto out;
    /* steps 9-10 */
    if ((r = kv_oda_cda_tdhc(in->pdol_data, in->pdol_data_len, in->cdol1_data, in->cdol1_data_len,
                             in->cdol2_data, in->cdol2_data_len, cr.tlvs, cr.tlvs_len, tdhc)) != 0)
        goto out;
    if (!kv_ct_equal(tdhc, dd + 1 + dn + 1 + 8, HASH_LEN)) {
        r = KV_ERR_ODA_HASH;
        goto out;
    }
    if (out != NULL) {
        memset(out, 0, sizeof(*out));
        out->cid = cr.cid;
        memcpy(out->ac, dd + 1 + dn + 1, 8);
        memcpy(out->icc_dn, dd + 1, dn);
        out->icc_dn_len = dn;
    }
    r = 0;
out:
    return r;
}

/* ---- the ODA step ---------------------------------------------------------- */

/* Errors that are not an authentication outcome but a failure of the machine. */
static int is_fatal(int r)
{
    return r == KV_ERR_NOMEM || r == KV_ERR_INTERNAL || r == KV_ERR_ARG;
}

static unsigned failed_bit(int method)
{
    switch (method) {
    case KV_ODA_SDA:
        return KV_TVR_SDA_FAILED;
    case KV_ODA_DDA:
        return KV_TVR_DDA_FAILED;
    default:
        return KV_TVR_CDA_FAILED;
    }
}

/* Record a failure reason r in ctx and the TVR (Book 3 §10.3). */
static int fail(kv_oda_ctx *ctx, int r, uint8_t tvr[5])
{
    ctx->state = KV_ODA_ST_FAILED;
    ctx->reason = r;
    if (is_fatal(r))
        return r;
    kv_tvr_set(tvr, failed_bit(ctx->method));
    if (r == KV_ERR_ODA_DATA_MISSING)
        kv_tvr_set(tvr, KV_TVR_ICC_DATA_MISSING);
    return 0;
}

/* see oda.h */
int kv_oda_begin(kv_oda_ctx *ctx, const kv_capk_store *capks, const kv_oda_card *card,
                 const uint8_t term_caps[3], uint8_t tvr[5], uint8_t tsi[2])
{
    int r = KV_ERR_INTERNAL;

    memset(ctx, 0, sizeof(*ctx));
    ctx->method = kv_oda_select_method(card->sd.aip, term_caps);
    if (ctx->method == KV_ODA_NONE) {
        ctx->state = KV_ODA_ST_NOT_PERFORMED;
        kv_tvr_set(tvr, KV_TVR_ODA_NOT_PERFORMED);
        return 0;
    }
    kv_tsi_set(tsi, KV_TSI_ODA_PERFORMED);
    if (ctx->method == KV_ODA_SDA)
        kv_tvr_set(tvr, KV_TVR_SDA_SELECTED);

    if ((r = kv_oda_issuer_key_recover_store(capks, card->rid, card->ca_index, &card->issuer,
                                             card->pan, card->pan_len, card->txn_date,
                                             &ctx->issuer)) != 0)
        goto out;
    ctx->have_issuer = 1;

    if (ctx->method == KV_ODA_SDA) {
        if ((r = kv_oda_sda_verify(&ctx->issuer, card->ssad, card->ssad_len, &card->sd,
                                   ctx->dac)) != 0)
            goto out;
        ctx->has_dac = 1;
        ctx->state = KV_ODA_ST_OK;
        r = 0;
        goto out;
    }
    if ((r = kv_oda_icc_key_recover(&ctx->issuer, &card->icc, card->pan, card->pan_len,
                                    card->txn_date, &card->sd, &ctx->icc)) != 0)
        goto out;
    ctx->have_icc = 1;
    ctx->state = ctx->method == KV_ODA_DDA ? KV_ODA_ST_PENDING_DDA : KV_ODA_ST_PENDING_CDA;
    r = 0;
out:
    if (r != 0)
        r = fail(ctx, r, tvr);
    return r;
}

/* see oda.h */
int kv_oda_dda_finish(kv_oda_ctx *ctx, const uint8_t *ddol_data, size_t ddol_len,
                      const uint8_t *sdad, size_t sdad_len, uint8_t tvr[5])
{
    int r = KV_ERR_ARG;

    if (ctx->state != KV_ODA_ST_PENDING_DDA)
        goto out;
    if ((r = kv_oda_dda_verify(&ctx->icc, sdad, sdad_len, ddol_data, ddol_len, ctx->icc_dn,
                               &ctx->icc_dn_len)) != 0) {
        r = fail(ctx, r, tvr);
        goto out;
    }
    ctx->state = KV_ODA_ST_OK;
    r = 0;
out:
    return r;
}

/* see oda.h */
int kv_oda_cda_finish(kv_oda_ctx *ctx, const kv_oda_cda_in *in, kv_oda_cda_out *out, uint8_t tvr[5])
{
    int r = KV_ERR_ARG;
    cda_response cr;
    kv_oda_cda_out o;

    if (ctx->state != KV_ODA_ST_PENDING_CDA)
        goto out;
    /* Book 2 §6.6: the card signs TC and ARQC only; an AAC comes unsigned */
    if (cda_parse(in->response, in->response_len, &cr) == 0 && cr.has_cid &&
        (cr.cid & 0xC0) == 0x00 && cr.sdad == NULL) {
        ctx->state = KV_ODA_ST_NO_SIGNATURE;
        r = 0;
        goto out;
    }
    if ((r = kv_oda_cda_verify(&ctx->icc, in, &o)) != 0) {
        r = fail(ctx, r, tvr);
        goto out;
    }
    memcpy(ctx->icc_dn, o.icc_dn, o.icc_dn_len);
    ctx->icc_dn_len = o.icc_dn_len;
    if (out != NULL)
        *out = o;
    ctx->state = KV_ODA_ST_OK;
    r = 0;
out:
    return r;
}

/* see emv_crypto.h */
#include "hsm/emv_crypto.h"
#include "hsm/mac.h"
#include "hsm/p11_aes_derive.h"
#include "hsm/p11_internal.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/base/secure.h"

#include <openssl/sha.h>
#include <string.h>

#define EMV_DATA_MAX 1024
#define EMV_PAN_PSN_MAX 21 /* 19-digit PAN, 2-digit PSN */

int kv_emv_params_for_cvn(int cvn, kv_emv_params *p)
{
    memset(p, 0, sizeof(*p));
    p->cvn = cvn;
    switch (cvn) {
    case 10: /* Visa CVN 10 (0x0A) */
        p->mk_option = KV_EMV_MK_OPTION_A;
        p->skd = KV_EMV_SKD_NONE;
        p->padding = KV_MAC_PAD1;
        p->arpc_method = 1;
        p->arpc_key = KV_EMV_ARPC_KEY_MK;
        return 0;
    case 18: /* Visa CVN 18 (0x12) */
    case 22: /* Visa CVN 22 (0x16) */
        p->mk_option = KV_EMV_MK_OPTION_B;
        p->skd = KV_EMV_SKD_CSK;
        p->padding = KV_MAC_PAD2;
        p->arpc_method = 2;
        p->arpc_key = KV_EMV_ARPC_KEY_SK;
        return 0;
    case 16: /* Mastercard CVN 0x10: proprietary SKD */
    case 17: /* 0x11: the same, counters in the AC data */
        p->mk_option = KV_EMV_MK_OPTION_A;
        p->skd = KV_EMV_SKD_MASTERCARD;
        p->padding = KV_MAC_PAD2;
        p->arpc_method = 1;
        p->arpc_key = KV_EMV_ARPC_KEY_MK;
        return 0;
    case 20: /* Mastercard CVN 0x14: EMV CSK */
    case 21: /* 0x15: the same, counters in the AC data */
        p->mk_option = KV_EMV_MK_OPTION_A;
        p->skd = KV_EMV_SKD_CSK;
        p->padding = KV_MAC_PAD2;
        p->arpc_method = 1;
        p->arpc_key = KV_EMV_ARPC_KEY_SK;
        return 0;
    case 5: /* EMV CCD, TDES (Book 3 Annex C) */
    case 6: /* EMV CCD, AES */
        p->mk_option = KV_EMV_MK_OPTION_A;
        p->skd = KV_EMV_SKD_CSK;
        p->padding = KV_MAC_PAD2;
        p->arpc_method = 2;
        p->arpc_key = KV_EMV_ARPC_KEY_SK;
        p->aes = cvn == 6;
        return 0;
    default:
        return KV_ERR_UNSUPPORTED;
    }
}

static int psn_or_default(const char *psn, const char **out)
{
    if (psn == NULL)
        psn = "00";
    if (!kv_is_digits(psn, 2, 2))
        return KV_ERR_ARG;
    *out = psn;
    return 0;
}

/* Pack n decimal digits (n even) into n/2 bytes. */
static void pack_digits(const char *d, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i += 2)
        out[i / 2] = (uint8_t)(((d[i] - '0') << 4) | (d[i + 1] - '0'));
}

int kv_emv_mk_input(int option, const char *pan, const char *psn, uint8_t y[8])
{
    char digits[EMV_PAN_PSN_MAX + 1];
    size_t pan_len, n;
    int r;

    if (pan == NULL || !kv_is_digits(pan, 1, 19))
        return KV_ERR_ARG;
    if ((r = psn_or_default(psn, &psn)) != 0)
        return r;
    if (option != KV_EMV_MK_OPTION_A && option != KV_EMV_MK_OPTION_B)
        return KV_ERR_ARG;
    pan_len = strlen(pan);

    if (option == KV_EMV_MK_OPTION_A || pan_len <= 16) {
        /* A1.4.1: rightmost 16 digits of PAN || PSN, zero-filled on the left */
        char y16[16];
        n = pan_len + 2;
        memcpy(digits, pan, pan_len);
        memcpy(digits + pan_len, psn, 2);
        if (n >= 16) {
            memcpy(y16, digits + n - 16, 16);
        } else {
            memset(y16, '0', 16 - n);
            memcpy(y16 + 16 - n, digits, n);
        }
        pack_digits(y16, 16, y);
        return 0;
    }

    /* A1.4.2: SHA-1 over PAN || PSN as BCD, odd digit count padded with a leading 0 */
    {
        uint8_t bcd[11], md[SHA_DIGEST_LENGTH];
        char dec[16];
        size_t k = 0, nb;

        n = 0;
        if ((pan_len + 2) % 2 != 0)
            digits[n++] = '0';
        memcpy(digits + n, pan, pan_len);
        n += pan_len;
        memcpy(digits + n, psn, 2);
        n += 2;
        nb = n / 2;
        pack_digits(digits, n, bcd);
        SHA1(bcd, nb, md);
        for (size_t i = 0; i < 2 * SHA_DIGEST_LENGTH && k < 16; i++) {
            uint8_t v = (uint8_t)((i % 2 == 0) ? md[i / 2] >> 4 : md[i / 2] & 0x0F);
            if (v < 10)
                dec[k++] = (char)('0' + v);
        }
        for (size_t i = 0; i < 2 * SHA_DIGEST_LENGTH && k < 16; i++) {
            uint8_t v = (uint8_t)((i % 2 == 0) ? md[i / 2] >> 4 : md[i / 2] & 0x0F);
            if (v >= 10)
                dec[k++] = (char)('0' + v - 10);
        }
        pack_digits(dec, 16, y);
        return 0;
    }
}

void kv_emv_mk_derivation_data(const uint8_t y[8], uint8_t data[16], uint8_t companion[16])
{
    for (size_t i = 0; i < 8; i++) {
        data[i] = y[i];
        data[8 + i] = (uint8_t)(y[i] ^ 0xFF);
        companion[i] = y[i];
        companion[8 + i] = y[i];
    }
}

int kv_emv_session_r(int skd, const uint8_t atc[2], const uint8_t *un, uint8_t r[8])
{
    memset(r, 0, 8);
    r[0] = atc[0];
    r[1] = atc[1];
    switch (skd) {
    case KV_EMV_SKD_CSK:
        return 0;
    case KV_EMV_SKD_MASTERCARD:
        if (un == NULL)
            return KV_ERR_ARG;
        memcpy(r + 4, un, 4);
        return 0;
    default:
        return KV_ERR_ARG;
    }
}

void kv_emv_csk_derivation_data(const uint8_t r[8], uint8_t data[16], uint8_t companion[16])
{
    memcpy(data, r, 8);
    memcpy(data + 8, r, 8);
    data[2] = 0xF0;
    data[8 + 2] = 0x0F;
    memcpy(companion, data, 8);
    memcpy(companion + 8, data, 8);
}

void kv_emv_aes_mk_derivation_data(const uint8_t y[8], uint8_t data[16])
{
    for (size_t i = 0; i < 8; i++) {
        data[i] = y[i];
        data[8 + i] = (uint8_t)(y[i] ^ 0xFF);
    }
}

int kv_emv_aes_mk_input(const char *pan, const char *psn, uint8_t data[16])
{
    char digits[32];
    size_t pan_len;
    int r;

    if (pan == NULL || !kv_is_digits(pan, 1, 19))
        return KV_ERR_ARG;
    if ((r = psn_or_default(psn, &psn)) != 0)
        return r;
    /* Book 2 A1.4.3: PAN || PSN, at most 21 digits, left-padded with '0' to 32 */
    pan_len = strlen(pan);
    memset(digits, '0', sizeof(digits));
    memcpy(digits + sizeof(digits) - 2 - pan_len, pan, pan_len);
    memcpy(digits + sizeof(digits) - 2, psn, 2);
    pack_digits(digits, sizeof(digits), data);
    return 0;
}

void kv_emv_aes_csk_derivation_data(const uint8_t r[8], uint8_t data[16])
{
    /* Book 2 A1.3.1, k = 8n (AES-128): SK = AES(MK)[R], R = r || 00*8 as it is */
    memcpy(data, r, 8);
    memset(data + 8, 0, 8);
}

void kv_emv_arpc1_input(const uint8_t arqc[8], const uint8_t arc[2], uint8_t out[8])
{
    memcpy(out, arqc, 8);
    out[0] ^= arc[0];
    out[1] ^= arc[1];
}

int kv_emv_arpc2_input(const uint8_t arqc[8], const uint8_t csu[4], const uint8_t *pad,
                       size_t pad_len, uint8_t *out)
{
    if (pad_len > 8 || (pad_len > 0 && pad == NULL))
        return KV_ERR_ARG;
    memcpy(out, arqc, 8);
    memcpy(out + 8, csu, 4);
    if (pad_len > 0)
        memcpy(out + 12, pad, pad_len);
    return (int)(12 + pad_len);
}

static int check_des2(const kv_hsm_key *k)
{
    return k->type == KV_KEY_DES2 ? 0 : KV_ERR_HSM_KEY;
}

/* An IMK or ICC key of a type this module derives from: DES2, or AES-128 (CCD CVN 6). */
static int check_mk_type(const kv_hsm_key *k)
{
    return k->type == KV_KEY_DES2 || k->type == KV_KEY_AES128 ? 0 : KV_ERR_HSM_KEY;
}

/*
 * Roles (issue 11): an ICC master key comes from an issuer master key of any
 * imk* role and gets the matching icc-* role (p11_ops.c); session keys come
 * from an AC or secure-messaging ICC master key (CVC3 has none). The
 * cryptogram functions below need an imk (AC) key.
 */
static int require_imk(kv_hsm *h, const kv_hsm_key *k)
{
    if (k->role == KV_ROLE_IMK_AC || k->role == KV_ROLE_IMK_CVC3 || k->role == KV_ROLE_IMK_SMI ||
        k->role == KV_ROLE_IMK_SMC)
        return 0;
    return kv_hsm_key_require_role(h, k, KV_ROLE_IMK_AC);
}

static int require_session_parent(kv_hsm *h, const kv_hsm_key *k)
{
    if (k->role == KV_ROLE_ICC_AC || k->role == KV_ROLE_ICC_SMI || k->role == KV_ROLE_ICC_SMC)
        return 0;
    return kv_hsm_key_require_role(h, k, KV_ROLE_ICC_AC);
}

int kv_hsm_emv_derive_icc_mk(kv_hsm *h, const kv_hsm_key *imk, int option, const char *pan,
                             const char *psn, int with_companion, kv_hsm_key *out)
{
    uint8_t y[8], data[16], comp[16];
    int r;

    memset(out, 0, sizeof(*out));
    if ((r = require_imk(h, imk)) != 0 || (r = check_mk_type(imk)) != 0)
        return r;
    if (imk->type == KV_KEY_AES128) {
        /* Book 2 A1.4.3 option C, the one AES method; an ICC MK only derives session keys */
        if (option != KV_EMV_MK_OPTION_A && option != KV_EMV_MK_OPTION_B &&
            option != KV_EMV_MK_OPTION_C)
            return KV_ERR_ARG;
        if ((r = kv_emv_aes_mk_input(pan, psn, data)) != 0)
            return r;
        r = kv_hsm_derive_aes128(h, imk, data, KV_AES_DERIVED_DERIVE, out);
    } else {
        if ((r = kv_emv_mk_input(option, pan, psn, y)) != 0)
            return r;
        kv_emv_mk_derivation_data(y, data, comp);
        r = kv_hsm_derive_des2(h, imk, data, with_companion ? comp : NULL, out);
    }
    kv_wipe(y, sizeof(y));
    kv_wipe(data, sizeof(data));
    kv_wipe(comp, sizeof(comp));
    return r;
}

int kv_hsm_emv_derive_session_key(kv_hsm *h, const kv_hsm_key *mk, const uint8_t r[8],
                                  kv_hsm_key *out)
{
    uint8_t data[16], comp[16];
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = require_session_parent(h, mk)) != 0 || (rc = check_mk_type(mk)) != 0)
        return rc;
    if (mk->type == KV_KEY_AES128) {
        kv_emv_aes_csk_derivation_data(r, data);
        rc = kv_hsm_derive_aes128(h, mk, data, KV_AES_DERIVED_SIGN | KV_AES_DERIVED_ENCRYPT, out);
    } else {
        kv_emv_csk_derivation_data(r, data, comp);
        rc = kv_hsm_derive_des2(h, mk, data, comp, out);
    }
    kv_wipe(data, sizeof(data));
    kv_wipe(comp, sizeof(comp));
    return rc;
}

static int check_params(const kv_emv_params *p)
{
    if (p->mk_option != KV_EMV_MK_OPTION_A && p->mk_option != KV_EMV_MK_OPTION_B &&
        !(p->aes && p->mk_option == KV_EMV_MK_OPTION_C))
        return KV_ERR_ARG;
    if (p->skd != KV_EMV_SKD_NONE && p->skd != KV_EMV_SKD_CSK && p->skd != KV_EMV_SKD_MASTERCARD)
        return KV_ERR_ARG;
    if (p->padding != KV_MAC_PAD1 && p->padding != KV_MAC_PAD2)
        return KV_ERR_ARG;
    if (p->arpc_method != 1 && p->arpc_method != 2)
        return KV_ERR_ARG;
    if (p->arpc_key != KV_EMV_ARPC_KEY_MK && p->arpc_key != KV_EMV_ARPC_KEY_SK)
        return KV_ERR_ARG;
    /* AES: the ICC MK never MACs (CMAC needs a session key that may sign) */
    if (p->aes && (p->skd == KV_EMV_SKD_NONE && !p->r_explicit))
        return KV_ERR_ARG;
    return 0;
}

/*
 * The keys of one transaction: mk always, sk when a session key is in use.
 * need_mk_companion: the MK itself MACs. need_sk: derive the session key.
 */
struct txn_keys {
    kv_hsm_key mk;
    kv_hsm_key sk;
    int have_mk, have_sk;
};

static int derive_txn_keys(kv_hsm *h, const kv_hsm_key *imk, const kv_emv_params *p,
                           const kv_emv_txn *t, int need_mk_companion, int need_sk,
                           struct txn_keys *k)
{
    uint8_t rv[8];
    int r;

    memset(k, 0, sizeof(*k));
    if ((r = kv_hsm_key_require_role(h, imk, KV_ROLE_IMK_AC)) != 0)
        return r;
    if (p->aes ? imk->type != KV_KEY_AES128 : check_des2(imk) != 0)
        return kv_p11_fail_msg(h, KV_ERR_HSM_KEY,
                               "key '%s' is not an %s issuer master key: cryptogram version %d "
                               "needs one",
                               imk->label, p->aes ? "AES-128" : "3DES (des2)", p->cvn);
    if ((r = kv_hsm_emv_derive_icc_mk(h, imk, p->mk_option, t->pan, t->psn, need_mk_companion,
                                      &k->mk)) != 0)
        return r;
    k->have_mk = 1;
    if (!need_sk)
        return 0;
    if (p->r_explicit) {
        memcpy(rv, p->r, 8);
    } else if ((r = kv_emv_session_r(p->skd, t->atc, t->has_un ? t->un : NULL, rv)) != 0) {
        return r;
    }
    if ((r = kv_hsm_emv_derive_session_key(h, &k->mk, rv, &k->sk)) != 0)
        return r;
    k->have_sk = 1;
    return 0;
}

static void release_txn_keys(kv_hsm *h, struct txn_keys *k)
{
    if (k->have_sk)
        kv_hsm_key_destroy(h, &k->sk);
    if (k->have_mk)
        kv_hsm_key_destroy(h, &k->mk);
    k->have_sk = k->have_mk = 0;
}

/* A session key is in use when the CVN has one or R was given by hand. */
static int uses_sk(const kv_emv_params *p)
{
    return p->skd != KV_EMV_SKD_NONE || p->r_explicit;
}

static int check_txn(const kv_emv_txn *t, int need_data)
{
    if (t->pan == NULL)
        return KV_ERR_ARG;
    if (need_data && (t->data == NULL || t->data_len == 0 || t->data_len > EMV_DATA_MAX))
        return KV_ERR_ARG;
    return 0;
}

int kv_hsm_arqc_generate(kv_hsm *h, const kv_hsm_key *imk, const kv_emv_params *p,
                         const kv_emv_txn *t, uint8_t ac[8])
{
    struct txn_keys k;
    int r, sk = uses_sk(p);

    memset(&k, 0, sizeof(k));
    if ((r = check_params(p)) != 0 || (r = check_txn(t, 1)) != 0)
        goto out;
    if ((r = derive_txn_keys(h, imk, p, t, !sk, sk, &k)) != 0)
        goto out;
    if (p->aes) {
        uint8_t cmac[16];
        r = kv_hsm_aes_cmac(h, &k.sk, t->data, t->data_len, cmac);
        if (r == 0)
            memcpy(ac, cmac, 8);
        kv_wipe(cmac, sizeof(cmac));
    } else {
        r = kv_hsm_mac_alg3(h, sk ? &k.sk : &k.mk, p->padding, t->data, t->data_len, ac);
    }
out:
    release_txn_keys(h, &k);
    return r;
}

int kv_hsm_arqc_verify(kv_hsm *h, const kv_hsm_key *imk, const kv_emv_params *p,
                       const kv_emv_txn *t, const uint8_t arqc[8], int *match)
{
    uint8_t ac[8];
    int r;

    *match = 0;
    if ((r = kv_hsm_arqc_generate(h, imk, p, t, ac)) != 0)
        goto out;
    *match = kv_ct_equal(ac, arqc, 8);
out:
    kv_wipe(ac, sizeof(ac));
    return r;
}

int kv_hsm_arpc_generate(kv_hsm *h, const kv_hsm_key *imk, const kv_emv_params *p,
                         const kv_emv_txn *t, const kv_emv_arpc_in *in, uint8_t arpc[8],
                         size_t *arpc_len)
{
    struct txn_keys k;
    uint8_t buf[20], mac[8];
    const kv_hsm_key *key;
    int r, n, on_sk;

    memset(&k, 0, sizeof(k));
    *arpc_len = 0;
    if ((r = check_params(p)) != 0 || (r = check_txn(t, 0)) != 0)
        goto out;
    on_sk = p->arpc_key == KV_EMV_ARPC_KEY_SK;
    if (p->aes && p->arpc_method == 1) {
        r = KV_ERR_UNSUPPORTED;
        goto out;
    }
    if ((on_sk && !uses_sk(p)) || (p->aes && !on_sk)) {
        r = KV_ERR_ARG;
        goto out;
    }
    /* method 2 MACs: the MK needs its companion when it is the ARPC key */
    if ((r = derive_txn_keys(h, imk, p, t, !on_sk && p->arpc_method == 2, on_sk, &k)) != 0)
        goto out;
    key = on_sk ? &k.sk : &k.mk;
    if (p->arpc_method == 1) {
        kv_emv_arpc1_input(in->arqc, in->arc, buf);
        if ((r = kv_hsm_ecb_encrypt(h, key, 0, buf, 8, arpc)) != 0)
            goto out;
        *arpc_len = 8;
    } else {
        if ((n = kv_emv_arpc2_input(in->arqc, in->csu, in->pad, in->pad_len, buf)) < 0) {
            r = n;
            goto out;
        }
        if (p->aes) {
            uint8_t cmac[16];
            r = kv_hsm_aes_cmac(h, key, buf, (size_t)n, cmac);
            memcpy(mac, cmac, 8);
            kv_wipe(cmac, sizeof(cmac));
        } else {
            r = kv_hsm_mac_alg3(h, key, KV_MAC_PAD2, buf, (size_t)n, mac);
        }
        if (r != 0)
            goto out;
        memcpy(arpc, mac, 4);
        *arpc_len = 4;
    }
    r = 0;
out:
    release_txn_keys(h, &k);
    kv_wipe(mac, sizeof(mac));
    return r;
}

/*
 * see issuer_script.h. The secure-messaging method of each CVN (README
 * "Issuer scripts" has the same table and its sources):
 *
 *   CVN            MK  SK R        MAC input after CLA INS P1 P2 Lc  PIN data
 *   Visa 10        A   ATC||00*6   ATC || ARQC || data               ECB(pad2(L || PB))
 *   Visa 18, 22    B   ATC||00*6   ATC || ARQC || data               ECB(pad2(L || PB))
 *   MC 16,17,20,21 A   ARQC        data                              CBC(PB), IV 0
 *   CCD 5          A   ARQC        data                              CBC(pad2(PB)), IV 0
 *
 * The session keys are the EMV common session key of Book 2 A1.3.1 with the
 * R above, from ICC master keys derived (Book 2 A1.4) from imk-smi and
 * imk-smc, and the MAC is MAC algorithm 3 with padding 2. CCD CVN 6 (AES)
 * is not offered: the key ceremony keeps imk-smi and imk-smc DES2
 * (hsm/keys.c). VIS derives its secure-messaging session keys by XORing the
 * ATC into the master key; a PKCS#11 token offers no XOR derivation that
 * keeps the key inside (SoftHSM2 has none), so the Visa CVNs here use
 * A1.3.1 with R = ATC || 00*6 instead, and bind the MAC to the transaction
 * by the ATC and the ARQC in the MAC input. PB is the plaintext PIN block of
 * Book 3 §6.5.12.2 (2N PIN F..F, 8 bytes), L its length (08).
 */
#include "hsm/issuer_script.h"
#include "hsm/emv_crypto.h"
#include "hsm/mac.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/base/secure.h"

#include <string.h>

#define APDU_MAX 261
#define PIN_MIN 4
#define PIN_MAX 12

enum sm_r {
    SM_R_ATC = 1, /* R = ATC || 00*6 */
    SM_R_AC = 2,  /* R = the ARQC */
};

enum sm_enc {
    SM_ENC_VISA = 1, /* 3DES-ECB over pad2(length || data) */
    SM_ENC_MC = 2,   /* 3DES-CBC IV 0, padding 2 only when not block-aligned */
    SM_ENC_EMV = 3,  /* 3DES-CBC IV 0, always padding 2 */
};

struct sm_method {
    int cvn;
    int mk_option;
    int r;       /* enum sm_r */
    int mac_txn; /* the MAC input carries ATC || ARQC after the header */
    int enc;     /* enum sm_enc */
};

static const struct sm_method methods[] = {
    {10, KV_EMV_MK_OPTION_A, SM_R_ATC, 1, SM_ENC_VISA},
    {18, KV_EMV_MK_OPTION_B, SM_R_ATC, 1, SM_ENC_VISA},
    {22, KV_EMV_MK_OPTION_B, SM_R_ATC, 1, SM_ENC_VISA},
    {16, KV_EMV_MK_OPTION_A, SM_R_AC, 0, SM_ENC_MC},
    {17, KV_EMV_MK_OPTION_A, SM_R_AC, 0, SM_ENC_MC},
    {20, KV_EMV_MK_OPTION_A, SM_R_AC, 0, SM_ENC_MC},
    {21, KV_EMV_MK_OPTION_A, SM_R_AC, 0, SM_ENC_MC},
    {5, KV_EMV_MK_OPTION_A, SM_R_AC, 0, SM_ENC_EMV},
};

static const struct sm_method *method_for(int cvn)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (methods[i].cvn == cvn)
            return &methods[i];
    return NULL;
}

static const char *const kind_names[] = {
    [KV_SCRIPT_PIN_UNBLOCK] = "pin-unblock",     [KV_SCRIPT_PIN_CHANGE] = "pin-change",
    [KV_SCRIPT_APP_BLOCK] = "app-block",         [KV_SCRIPT_APP_UNBLOCK] = "app-unblock",
    [KV_SCRIPT_CARD_BLOCK] = "card-block",       [KV_SCRIPT_PUT_DATA] = "put-data",
    [KV_SCRIPT_UPDATE_RECORD] = "update-record",
};

#define KIND_MAX KV_SCRIPT_UPDATE_RECORD

const char *kv_script_kind_name(int kind)
{
    if (kind < KV_SCRIPT_PIN_UNBLOCK || kind > KIND_MAX)
        return NULL;
    return kind_names[kind];
}

int kv_script_kind_parse(const char *name)
{
    if (name == NULL)
        return 0;
    for (int k = KV_SCRIPT_PIN_UNBLOCK; k <= KIND_MAX; k++)
        if (strcmp(kind_names[k], name) == 0)
            return k;
    return 0;
}

/* The command header of kind (Book 3 §6.5, Book 2 §9; the SM bit 04 in CLA). */
static int header_of(const kv_script_spec *sp, uint8_t hdr[4])
{
    static const uint8_t fixed[][4] = {
        [KV_SCRIPT_PIN_UNBLOCK] = {0x84, 0x24, 0x00, 0x00},
        [KV_SCRIPT_PIN_CHANGE] = {0x84, 0x24, 0x00, 0x02},
        [KV_SCRIPT_APP_BLOCK] = {0x84, 0x1E, 0x00, 0x00},
        [KV_SCRIPT_APP_UNBLOCK] = {0x84, 0x18, 0x00, 0x00},
        [KV_SCRIPT_CARD_BLOCK] = {0x84, 0x16, 0x00, 0x00},
    };

    switch (sp->kind) {
    case KV_SCRIPT_PIN_UNBLOCK:
    case KV_SCRIPT_PIN_CHANGE:
    case KV_SCRIPT_APP_BLOCK:
    case KV_SCRIPT_APP_UNBLOCK:
    case KV_SCRIPT_CARD_BLOCK:
        if (sp->data != NULL || sp->data_len != 0)
            return KV_ERR_ARG;
        memcpy(hdr, fixed[sp->kind], 4);
        return 0;
    case KV_SCRIPT_PUT_DATA:
        /* P1 P2 the tag; a one-byte tag has P1 00 */
        if (sp->data == NULL || sp->data_len == 0 || (sp->p1 == 0 && sp->p2 == 0))
            return KV_ERR_ARG;
        hdr[0] = 0x04;
        hdr[1] = 0xDA;
        hdr[2] = sp->p1;
        hdr[3] = sp->p2;
        return 0;
    case KV_SCRIPT_UPDATE_RECORD:
        /* P1 the record number (1..254), P2 = SFI << 3 | 4 with SFI 1..30 */
        if (sp->data == NULL || sp->data_len == 0 || sp->p1 == 0 || sp->p1 == 0xFF ||
            (sp->p2 & 0x07) != 0x04 || (sp->p2 >> 3) == 0 || (sp->p2 >> 3) == 31)
            return KV_ERR_ARG;
        hdr[0] = 0x04;
        hdr[1] = 0xDC;
        hdr[2] = sp->p1;
        hdr[3] = sp->p2;
        return 0;
    default:
        return KV_ERR_ARG;
    }
}

/* The IMK's role, then its type (DES2). */
static int check_imk(kv_hsm *h, const kv_hsm_key *k, kv_key_role role)
{
    int r;
    if ((r = kv_hsm_key_require_role(h, k, role)) != 0)
        return r;
    return k->type == KV_KEY_DES2 ? 0 : KV_ERR_HSM_KEY;
}

/* The session key of one secure-messaging IMK (SMI or SMC) for this transaction. */
static int derive_sm_key(kv_hsm *h, const kv_hsm_key *imk, const struct sm_method *m,
                         const kv_script_txn *t, kv_hsm_key *sk)
{
    kv_hsm_key mk;
    uint8_t rv[8];
    int r;

    memset(sk, 0, sizeof(*sk));
    if ((r = kv_hsm_emv_derive_icc_mk(h, imk, m->mk_option, t->pan, t->psn, 0, &mk)) != 0)
        return r;
    if (m->r == SM_R_ATC) {
        memset(rv, 0, sizeof(rv));
        rv[0] = t->atc[0];
        rv[1] = t->atc[1];
    } else {
        memcpy(rv, t->arqc, 8);
    }
    r = kv_hsm_emv_derive_session_key(h, &mk, rv, sk);
    kv_hsm_key_destroy(h, &mk);
    kv_wipe(rv, sizeof(rv));
    return r;
}

/*
 * The enciphered PIN data of PIN CHANGE into out (16 bytes room), *n its
 * length. The plaintext lives in a locked buffer, wiped before return.
 */
static int encipher_pin(kv_hsm *h, const kv_hsm_key *imk_smc, const struct sm_method *m,
                        const kv_script_txn *t, const kv_script_spec *sp, uint8_t out[16],
                        size_t *n)
{
    static const uint8_t iv[8];
    kv_secbuf *buf = NULL;
    kv_hsm_key sk;
    const uint8_t *pin;
    uint8_t *pb, *plain;
    size_t plen = 0;
    int r, have_sk = 0;

    *n = 0;
    if (sp->new_pin == NULL || sp->pin_len < PIN_MIN || sp->pin_len > PIN_MAX ||
        kv_secbuf_cap(sp->new_pin) < sp->pin_len)
        return KV_ERR_ARG;
    /* the header's const: the PIN is only read */
    pin = kv_secbuf_ptr((kv_secbuf *)sp->new_pin);
    for (size_t i = 0; i < sp->pin_len; i++)
        if (pin[i] < '0' || pin[i] > '9')
            return KV_ERR_ARG;
    if ((buf = kv_secbuf_new(32)) == NULL)
        return KV_ERR_NOMEM;
    pb = kv_secbuf_ptr(buf); /* 8 bytes: the PIN block */
    plain = pb + 8;          /* up to 16 bytes: what is enciphered */
    memset(pb, 0xFF, 8);
    pb[0] = (uint8_t)(0x20 | sp->pin_len);
    for (size_t i = 0; i < sp->pin_len; i++) {
        uint8_t d = (uint8_t)(pin[i] - '0');
        size_t nib = 2 + i; /* nibble index in the block */
        if (nib % 2 == 0)
            pb[nib / 2] = (uint8_t)((d << 4) | (pb[nib / 2] & 0x0F));
        else
            pb[nib / 2] = (uint8_t)((pb[nib / 2] & 0xF0) | d);
    }
    switch (m->enc) {
    case SM_ENC_VISA:
        plain[0] = 8;
        memcpy(plain + 1, pb, 8);
        r = kv_mac_pad(KV_MAC_PAD2, plain, 9, plain, 16);
        break;
    case SM_ENC_MC:
        memcpy(plain, pb, 8); /* block-aligned: no padding */
        r = 8;
        break;
    default:
        memcpy(plain, pb, 8);
        r = kv_mac_pad(KV_MAC_PAD2, plain, 8, plain, 16);
        break;
    }
    if (r < 0)
        goto out;
    plen = (size_t)r;
    if ((r = check_imk(h, imk_smc, KV_ROLE_IMK_SMC)) != 0)
        goto out;
    if ((r = derive_sm_key(h, imk_smc, m, t, &sk)) != 0)
        goto out;
    have_sk = 1;
    if (m->enc == SM_ENC_VISA)
        r = kv_hsm_ecb_encrypt(h, &sk, 0, plain, plen, out);
    else
        r = kv_hsm_cbc_encrypt(h, &sk, 0, iv, plain, plen, out);
    if (r == 0)
        *n = plen;
out:
    if (have_sk)
        kv_hsm_key_destroy(h, &sk);
    kv_secbuf_free(buf);
    return r;
}

int kv_hsm_script_command(kv_hsm *h, const kv_hsm_key *imk_smi, const kv_hsm_key *imk_smc,
                          const kv_script_txn *t, const kv_script_spec *spec, uint8_t *apdu,
                          size_t cap, size_t *len)
{
    const struct sm_method *m;
    uint8_t hdr[4], enc[16], mac[8], macin[5 + 10 + APDU_MAX];
    const uint8_t *data;
    size_t data_len = 0, mac_len, lc, n;
    kv_hsm_key sk;
    int r, have_sk = 0;

    if (len != NULL)
        *len = 0;
    if (h == NULL || imk_smi == NULL || t == NULL || spec == NULL || apdu == NULL || len == NULL)
        return KV_ERR_ARG;
    if (t->pan == NULL || !kv_is_digits(t->pan, 1, 19) ||
        (t->psn != NULL && !kv_is_digits(t->psn, 2, 2)))
        return KV_ERR_ARG;
    mac_len = spec->mac_len == 0 ? 8 : spec->mac_len;
    if (mac_len < 4 || mac_len > 8)
        return KV_ERR_ARG;
    if ((r = header_of(spec, hdr)) != 0)
        return r;
    if ((m = method_for(t->cvn)) == NULL)
        return KV_ERR_UNSUPPORTED;
    /* both keys' roles before any token work or PIN handling */
    if ((r = check_imk(h, imk_smi, KV_ROLE_IMK_SMI)) != 0)
        return r;
    if (spec->kind == KV_SCRIPT_PIN_CHANGE) {
        if (imk_smc == NULL)
            return KV_ERR_ARG;
        if ((r = check_imk(h, imk_smc, KV_ROLE_IMK_SMC)) != 0)
            return r;
    }
    if (spec->kind == KV_SCRIPT_PIN_CHANGE) {
        if ((r = encipher_pin(h, imk_smc, m, t, spec, enc, &data_len)) != 0)
            goto out;
        data = enc;
    } else {
        data = spec->data;
        data_len = spec->data_len;
    }
    lc = data_len + mac_len;
    if (lc > 255) {
        r = KV_ERR_ARG;
        goto out;
    }
    if (cap < 5 + lc) {
        r = KV_ERR_BUFFER;
        goto out;
    }
    /* the MAC input: CLA INS P1 P2 Lc [ATC ARQC] data */
    memcpy(macin, hdr, 4);
    macin[4] = (uint8_t)lc;
    n = 5;
    if (m->mac_txn) {
        memcpy(macin + n, t->atc, 2);
        memcpy(macin + n + 2, t->arqc, 8);
        n += 10;
    }
    if (data_len > 0) {
        memcpy(macin + n, data, data_len);
        n += data_len;
    }
    if ((r = derive_sm_key(h, imk_smi, m, t, &sk)) != 0)
        goto out;
    have_sk = 1;
    if ((r = kv_hsm_mac_alg3(h, &sk, KV_MAC_PAD2, macin, n, mac)) != 0)
        goto out;
    memcpy(apdu, hdr, 4);
    apdu[4] = (uint8_t)lc;
    if (data_len > 0)
        memcpy(apdu + 5, data, data_len);
    memcpy(apdu + 5 + data_len, mac, mac_len);
    *len = 5 + lc;
    r = 0;
out:
    if (have_sk)
        kv_hsm_key_destroy(h, &sk);
    kv_wipe(enc, sizeof(enc));
    kv_wipe(mac, sizeof(mac));
    kv_wipe(macin, sizeof(macin));
    return r;
}

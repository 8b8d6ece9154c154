/*
 * see card.h: the cryptographic commands of the virtual card -- GET
 * CHALLENGE (00 84), the enciphered PIN of VERIFY P2 88, INTERNAL
 * AUTHENTICATE (00 88), GENERATE AC (80 AE), EXTERNAL AUTHENTICATE (00 82),
 * COMPUTE CRYPTOGRAPHIC CHECKSUM (80 2A) -- as apdu/vcard/CRYPTO.md describes.
 */
#include "apdu/dol.h"
#include "apdu/ac_data.h"
#include "apdu/emv_txn.h"
#include "apdu/oda.h"
#include "apdu/vcard/card.h"
#include "apdu/vcard/vcrypto.h"
#include "src/base/secure.h"

#include <string.h>

/* The key that deciphers an enciphered PIN: the PIN encipherment key, else the ICC key. */
static EVP_PKEY *pin_key(const kv_vcard *vc)
{
    const kv_vcard_keys *k = kv_vcard_keys_of(vc);
    return k->icc_pin_rsa != NULL ? k->icc_pin_rsa : k->icc_rsa;
}

/* see card.h */
uint16_t kv_vcard_decipher_pin(kv_vcard *vc, const kv_capdu *c,
                               uint8_t block[KV_VCARD_PIN_BLOCK_LEN])
{
    uint8_t plain[KV_VCARD_DATA_MAX];
    EVP_PKEY *key = pin_key(vc);
    size_t n;
    uint16_t sw = SW_WRONG_DATA;
    int had = vc->has_challenge;

    vc->has_challenge = 0; /* one VERIFY per challenge */
    if (key == NULL)
        return SW_DATA_NOT_FOUND;
    n = (size_t)EVP_PKEY_get_size(key);
    if (c->lc != n)
        return SW_WRONG_LENGTH;
    if (!had)
        return SW_CONDITIONS;
    if (kv_oda_evp_signer(key, c->data, n, plain) != 0) /* data not below the modulus */
        goto out;
    if (plain[0] != 0x7F || !kv_ct_equal(plain + 1 + KV_VCARD_PIN_BLOCK_LEN, vc->challenge, 8))
        goto out;
    memcpy(block, plain + 1, KV_VCARD_PIN_BLOCK_LEN);
    sw = 0;
out:
    kv_wipe(plain, sizeof(plain));
    kv_wipe(vc->challenge, sizeof(vc->challenge));
    return sw;
}

/* GET CHALLENGE (EMV Book 3 §6.5.6): 8 random bytes, kept for the next VERIFY. */
void kv_vcard_cmd_get_challenge(kv_vcard *vc, const kv_capdu *c, kv_vcard_answer *a)
{
    if (c->p1 != 0x00 || c->p2 != 0x00) {
        a->sw = SW_WRONG_P1P2;
        return;
    }
    if (c->lc != 0) {
        a->sw = SW_WRONG_LENGTH;
        return;
    }
    if (kv_vcard_random(vc->challenge, sizeof(vc->challenge)) != 0) {
        a->sw = SW_NO_DIAGNOSIS;
        return;
    }
    vc->has_challenge = 1;
    memcpy(a->data, vc->challenge, sizeof(vc->challenge));
    a->len = sizeof(vc->challenge);
    a->sw = SW_OK;
}

/* INTERNAL AUTHENTICATE (EMV Book 3 §6.5.9): DDA signature, format 1 response 80 { SDAD }. */
void kv_vcard_cmd_internal_auth(kv_vcard *vc, const kv_capdu *c, kv_vcard_answer *a)
{
    EVP_PKEY *key = kv_vcard_keys_of(vc)->icc_rsa;
    uint8_t dn[8], sdad[KV_VCARD_DATA_MAX];
    size_t n;
    kv_tlv_writer w;

    if (c->p1 != 0x00 || c->p2 != 0x00) {
        a->sw = SW_WRONG_P1P2;
        return;
    }
    if (key == NULL || kv_vcard_selected_app(vc) == NULL) {
        a->sw = SW_CONDITIONS;
        return;
    }
    if (c->lc == 0 || c->lc > KV_VCARD_DATA_MAX) {
        a->sw = SW_WRONG_LENGTH;
        return;
    }
    n = (size_t)EVP_PKEY_get_size(key);
    if (kv_vcard_random(dn, sizeof(dn)) != 0 ||
        kv_oda_dda_sign(kv_oda_evp_signer, key, n, dn, sizeof(dn), c->data, c->lc, sdad) != 0) {
        a->sw = SW_NO_DIAGNOSIS;
        return;
    }
    vc->dda_performed = 1;
    kv_tlv_writer_init(&w, a->data, sizeof(a->data));
    kv_tlv_put(&w, 0x80, sdad, n);
    kv_vcard_answer_tlv(a, &w);
}

/* see card.h */
const kv_vcard_keys *kv_vcard_keys_of(const kv_vcard *vc)
{
    if (vc->selected >= 0 && vc->selected < KV_VCARD_MAX_APPS &&
        vc->prof->own[vc->selected].keys != NULL)
        return vc->prof->own[vc->selected].keys;
    return &vc->prof->keys;
}

/* see card.h */
const kv_vcard_risk *kv_vcard_risk_of(const kv_vcard *vc)
{
    if (vc->selected >= 0 && vc->selected < KV_VCARD_MAX_APPS &&
        vc->prof->own[vc->selected].risk != NULL)
        return vc->prof->own[vc->selected].risk;
    return &vc->prof->risk;
}

/* see card.h */
struct kv_vcard_appstate *kv_vcard_app_state(kv_vcard *vc)
{
    if (kv_vcard_selected_app(vc) == NULL || vc->selected >= KV_VCARD_MAX_APPS)
        return NULL;
    return &vc->apps[vc->selected];
}

/* The personality a CVN stands for (CRYPTO.md §2). */
enum { FAM_VISA, FAM_MC, FAM_CCD };

static int family(int cvn)
{
    if (cvn == 16 || cvn == 17 || cvn == 20 || cvn == 21)
        return FAM_MC;
    if (cvn == 5 || cvn == 6)
        return FAM_CCD;
    return FAM_VISA;
}

/* The CVN byte of the IAD: Visa 0A 12 22, Mastercard 10 11 14 15, CCD CCI A5 A6. */
static uint8_t cvn_byte(int cvn)
{
    switch (cvn) {
    case 22:
        return 0x22; /* format 2, version 2 (the Visa name is the hex value) */
    case 16:
    case 17:
    case 20:
    case 21:
        return (uint8_t)(0x10 | (cvn - 16)); /* session key 04 = CSK, counters 01 */
    case 5:
    case 6:
        return (uint8_t)(0xA0 | cvn); /* format A */
    default:
        return (uint8_t)cvn; /* Visa 10 = 0A, 18 = 12 */
    }
}

/* The ATC of the card's current counter as 2 bytes. */
static void atc_bytes(const kv_vcard *vc, uint8_t atc[2])
{
    atc[0] = (uint8_t)(vc->atc >> 8);
    atc[1] = (uint8_t)vc->atc;
}

/*
 * CVR (CRYPTO.md §4) of the current transaction for the personality;
 * second: 0x80 not requested / TC 0x40 / AAC 0x00; first_cid: the 1st GEN
 * AC's type (0x00 when it is being decided). Returns its length.
 */
static size_t build_cvr(kv_vcard *vc, const kv_vcard_keys *k, uint8_t first_cid, uint8_t second,
                        int cda_second, uint8_t cvr[6])
{
    const struct kv_vcard_appstate *st = kv_vcard_app_state(vc);
    int has_pin = vc->prof->pin_block != NULL;
    int ptl = has_pin && vc->pin_tries == 0;
    uint8_t first = first_cid == 0x80 ? 0x20 : first_cid == 0x40 ? 0x10 : 0x00;
    unsigned scripts = st != NULL ? st->scripts & 0x0F : 0;
    int script_failed = st != NULL && st->script_failed;

    memset(cvr, 0, 6);
    switch (family(k->cvn)) {
    case FAM_MC:
        cvr[0] = (uint8_t)(second | first);
        if (vc->pin_performed)
            cvr[0] |= vc->pin_failed ? 0x04 : 0x05; /* performed, successful */
        cvr[1] = (uint8_t)((vc->dda_performed && !vc->cda_first ? 0x80 : 0) |
                           (vc->cda_first ? 0x40 : 0) | (cda_second ? 0x20 : 0) |
                           (vc->issuer_auth != 0 ? 0x10 : 0));
        cvr[2] = (uint8_t)(scripts << 4 | (vc->pin_tries & 0x0F));
        cvr[3] =
            (uint8_t)((vc->unable_online ? 0x40 : 0) | (has_pin && !vc->pin_performed ? 0x20 : 0) |
                      (vc->pin_performed && vc->pin_failed ? 0x10 : 0) | (ptl ? 0x08 : 0));
        cvr[4] = (uint8_t)((vc->crm_lcol ? 0x80 : 0) | (vc->crm_ucol ? 0x40 : 0) |
                           (vc->issuer_auth < 0 ? 0x04 : 0) | (scripts > 0 ? 0x02 : 0) |
                           (script_failed ? 0x01 : 0));
        return 6;
    case FAM_CCD:
        cvr[0] = (uint8_t)(second | first | (vc->cda_first || cda_second ? 0x08 : 0) |
                           (vc->dda_performed && !vc->cda_first ? 0x04 : 0) |
                           (vc->iss_auth_missing ? 0x02 : 0) | (vc->issuer_auth < 0 ? 0x01 : 0));
        cvr[1] = (uint8_t)((vc->pin_tries & 0x0F) << 4 | (vc->pin_performed ? 0x08 : 0) |
                           (vc->pin_performed && vc->pin_failed ? 0x04 : 0) | (ptl ? 0x02 : 0));
        cvr[2] = (uint8_t)((vc->crm_lcol ? 0x80 : 0) | (vc->crm_ucol ? 0x40 : 0));
        cvr[3] =
            (uint8_t)(scripts << 4 | (script_failed ? 0x08 : 0) | (vc->unable_online ? 0x01 : 0));
        return 5;
    default: {
        /* Visa: CVR bytes 2-4 (byte 1 is the length 03 of formats 0/1/3) */
        uint8_t v[3];
        v[0] = (uint8_t)(second | first);
        if (vc->issuer_auth < 0)
            v[0] |= 0x08;
        if (vc->pin_performed)
            v[0] |= 0x04;
        if (vc->pin_performed && vc->pin_failed)
            v[0] |= 0x02;
        if (vc->unable_online)
            v[0] |= 0x01;
        v[1] = (uint8_t)((ptl ? 0x42 : 0) | (vc->crm_lcol || vc->crm_ucol ? 0x20 : 0) |
                         (st != NULL && st->last_ia_failed ? 0x08 : 0) |
                         (vc->iss_auth_missing ? 0x04 : 0));
        v[2] =
            (uint8_t)(scripts << 4 | (script_failed ? 0x08 : 0) | (vc->dda_performed ? 0x02 : 0));
        if (k->iad_format == 2) {
            /* format 2: byte 1 the consumer-device CVM (none); byte 2 bits 0x04/0x02 are
               "CDCVM performed"/RFU there, so a plastic card's offline PIN is not shown */
            cvr[0] = 0x00;
            memcpy(cvr + 1, v, 3);
            cvr[1] &= (uint8_t)~0x06;
            return 5;
        }
        memcpy(cvr, v, 3);
        return 3;
    }
    }
}

/* The IAD (9F10) of the personality around the CVR; returns its length (<= 32). */
static size_t build_iad(const kv_vcard_keys *k, const uint8_t *cvr, size_t cvr_len, uint8_t iad[32])
{
    size_t n = 0;
    memset(iad, 0, 32);
    switch (family(k->cvn)) {
    case FAM_MC: /* DKI CVN CVR(6) DAC/IDN(2) counters(8): M/Chip 4 / Advance, 18 bytes */
        iad[n++] = k->dki;
        iad[n++] = cvn_byte(k->cvn);
        memcpy(iad + n, cvr, 6);
        n += 6 + 2 + 8;
        return n;
    case FAM_CCD: /* 0F CCI DKI CVR(5) counters(8) 0F IDD(15): Book 3 Annex C7, format A */
        iad[n++] = 0x0F;
        iad[n++] = cvn_byte(k->cvn);
        iad[n++] = k->dki;
        memcpy(iad + n, cvr, 5);
        n += 5 + 8;
        iad[n++] = 0x0F;
        memcpy(iad + n, k->idd, k->idd_len < 15 ? k->idd_len : 15);
        return 32;
    default:
        if (k->iad_format == 2) { /* 1F CVN DKI CVR(5) IDD(24): VIS 1.6 format 2 */
            iad[n++] = 0x1F;
            iad[n++] = cvn_byte(k->cvn);
            iad[n++] = k->dki;
            memcpy(iad + n, cvr, 5);
            n += 5;
            memcpy(iad + n, k->idd, 24);
            return 32;
        }
        /* 06 DKI CVN 03 CVR(3) [ len IDD ]: formats 0, 1, 3 */
        iad[n++] = 0x06;
        iad[n++] = k->dki;
        iad[n++] = cvn_byte(k->cvn);
        iad[n++] = 0x03;
        memcpy(iad + n, cvr, 3);
        n += 3;
        (void)cvr_len;
        if (k->iad_format == 1 || k->iad_format == 3) {
            iad[n++] = (uint8_t)k->idd_len;
            memcpy(iad + n, k->idd, k->idd_len);
            n += k->idd_len;
        }
        return n;
    }
}

/*
 * The AC session key of this ATC (and UN for the Mastercard SKD) into sk;
 * *none = 1 when the CVN computes under the ICC MK itself (Visa CVN 10).
 */
static int ac_session_key(const kv_vcard *vc, const kv_vcard_keys *k, const uint8_t un[4],
                          uint8_t sk[16])
{
    uint8_t atc[2], r[8] = {0};
    atc_bytes(vc, atc);
    switch (k->cvn) {
    case 10:
        memcpy(sk, k->ac_mk, 16);
        return 0;
    case 16:
    case 17: /* Mastercard proprietary SKD: R = ATC || 00 00 || UN */
        memcpy(r, atc, 2);
        memcpy(r + 4, un, 4);
        return kv_vcard_csk_r(k->ac_mk, r, sk);
    case 6:
        return kv_vcard_aes_csk(k->ac_mk, atc, sk);
    default: /* EMV common session key, R = ATC || 00 * 6 */
        return kv_vcard_csk(k->ac_mk, atc, sk);
    }
}

/* A MAC of the personality: CMAC for AES (CVN 6), else MAC algorithm 3 with padding pad. */
static int card_mac(int aes, const uint8_t key[16], int pad, const uint8_t *in, size_t len,
                    uint8_t mac[16])
{
    if (aes)
        return kv_vcard_aes_cmac(key, in, len, mac);
    return kv_vcard_mac3(key, pad, in, len, mac);
}

/*
 * The application cryptogram over sd (29 bytes), CRYPTO.md §3: the card's
 * own build of the data, independent of the issuer side (apdu/ac_data.c).
 */
static int compute_ac(const kv_vcard *vc, const kv_vcard_keys *k, const kv_vcard_df *app,
                      const uint8_t sd[KV_AC_SD_LEN], const uint8_t *iad, size_t iad_len,
                      uint8_t ac[8])
{
    uint8_t data[KV_AC_SD_LEN + 4 + 32], sk[16], mac[16];
    size_t n = 0;
    int r;

    memcpy(data, sd, KV_AC_SD_LEN);
    n = KV_AC_SD_LEN;
    memcpy(data + n, app->aip, 2);
    n += 2;
    atc_bytes(vc, data + n);
    n += 2;
    switch (family(k->cvn)) {
    case FAM_MC: /* CVR (6) [ || counters (8) for CVN 17 / 21 ] */
        memcpy(data + n, iad + 2, 6);
        n += 6;
        if (k->cvn == 17 || k->cvn == 21) {
            memcpy(data + n, iad + 10, 8);
            n += 8;
        }
        break;
    case FAM_CCD:
        memcpy(data + n, iad, iad_len);
        n += iad_len;
        break;
    default:
        if (k->cvn == 10) { /* 03 || CVR (IAD bytes 4-7) */
            memcpy(data + n, iad + 3, 4);
            n += 4;
        } else {
            memcpy(data + n, iad, iad_len);
            n += iad_len;
        }
        break;
    }
    if ((r = ac_session_key(vc, k, sd + KV_AC_SD_LEN - 4, sk)) == 0 &&
        (r = card_mac(k->cvn == 6, sk, k->cvn == 10 ? 1 : 2, data, n, mac)) == 0)
        memcpy(ac, mac, 8);
    kv_wipe(sk, sizeof(sk));
    kv_wipe(mac, sizeof(mac));
    return r;
}

/*
 * Issuer authentication with the 91 value (CRYPTO.md §5). Returns 1 passed,
 * 0 failed, -1 wrong length (nothing changes).
 */
static int issuer_authenticate(kv_vcard *vc, const uint8_t *v, size_t len)
{
    const kv_vcard_keys *k = kv_vcard_keys_of(vc);
    uint8_t blk[24], mac[16], sk[16], key[16], atc[2];
    int ok = 0, method1 = k->cvn == 10 || family(k->cvn) == FAM_MC;

    atc_bytes(vc, atc);
    if (method1) {
        /* ARPC (8) || ARC (2): 3DES(key)[ARQC xor ARC || 00*6], key MK or the CSK (CVN 20/21) */
        if (len != 10)
            return -1;
        if (k->cvn == 20 || k->cvn == 21) {
            if (kv_vcard_csk(k->ac_mk, atc, key) != 0)
                return -1;
        } else {
            memcpy(key, k->ac_mk, 16);
        }
        memcpy(blk, vc->arqc, 8);
        blk[0] ^= v[8];
        blk[1] ^= v[9];
        ok = kv_vcard_des2_ecb(key, 1, blk, 8, mac) == 0 && kv_ct_equal(mac, v, 8);
    } else {
        /* ARPC (4) || CSU (4) [|| proprietary data]: MAC under the AC session key */
        if (len < 8 || len > 16)
            return -1;
        memcpy(blk, vc->arqc, 8);
        memcpy(blk + 8, v + 4, len - 4);
        ok = (k->cvn == 6 ? kv_vcard_aes_csk(k->ac_mk, atc, sk)
                          : kv_vcard_csk(k->ac_mk, atc, sk)) == 0 &&
             card_mac(k->cvn == 6, sk, 2, blk, 8 + len - 4, mac) == 0 && kv_ct_equal(mac, v, 4);
    }
    kv_wipe(sk, sizeof(sk));
    kv_wipe(key, sizeof(key));
    vc->issuer_auth = ok ? 1 : -1;
    return ok;
}

/* EXTERNAL AUTHENTICATE (EMV Book 3 §6.5.4): the ARPC, once, after an online ARQC. */
void kv_vcard_cmd_external_auth(kv_vcard *vc, const kv_capdu *c, kv_vcard_answer *a)
{
    int r;
    if (c->p1 != 0x00 || c->p2 != 0x00) {
        a->sw = SW_WRONG_P1P2;
        return;
    }
    if (kv_vcard_selected_app(vc) == NULL || vc->ac_state != 1 || vc->issuer_auth != 0) {
        a->sw = SW_CONDITIONS;
        return;
    }
    r = issuer_authenticate(vc, c->data, c->lc);
    a->sw = r < 0 ? SW_WRONG_LENGTH : r ? SW_OK : SW_VERIFY_FAILED;
}

/* ARC (8A) of an approval: "00", "10", "11". */
static int arc_approves(const uint8_t arc[2])
{
    return (arc[0] == '0' && arc[1] == '0') || (arc[0] == '1' && arc[1] == '0') ||
           (arc[0] == '1' && arc[1] == '1');
}

/* Any bit of the CVR (len bytes) also set in the card issuer action code? */
static int ciac_match(const uint8_t *ciac, const uint8_t *cvr, size_t len)
{
    int m = 0;
    for (size_t i = 0; i < len && i < KV_VCARD_CIAC_MAX; i++)
        m |= (ciac[i] & cvr[i]) != 0;
    return m;
}

/* Terminal type 9F35 in the CDOL1 data: 3 or 6 in its low digit is an offline-only terminal. */
static int offline_only(const kv_vcard_df *app, const uint8_t *data, size_t len)
{
    const uint8_t *v;
    size_t vlen;
    if (kv_dol_value(app->cdol1, app->cdol1_len, data, len, 0x9F35, &v, &vlen) != 1 || vlen != 1)
        return 0;
    return (v[0] & 0x0F) == 0x03 || (v[0] & 0x0F) == 0x06;
}

static void save_state(kv_vcard *vc)
{
    (void)kv_vcard_state_save(vc); /* the counters are advisory: the answer stands */
}

/*
 * Card risk management of the 1st GENERATE AC (CRYPTO.md §6): the CID the
 * card gives for the type asked.
 */
static uint8_t first_decision(kv_vcard *vc, const kv_vcard_keys *k, const kv_vcard_risk *rk,
                              uint8_t type)
{
    const struct kv_vcard_appstate *st = kv_vcard_app_state(vc);
    uint8_t cvr[6];
    size_t n;
    unsigned count = st != NULL ? st->offline : 0;
    int follow = k->first_ac_follow || (rk->present && !k->first_ac_set);

    vc->crm_lcol = rk->lcol >= 0 && count >= (unsigned)rk->lcol;
    vc->crm_ucol = rk->ucol >= 0 && count >= (unsigned)rk->ucol;
    n = build_cvr(vc, k, 0x00, 0x00, 0, cvr);
    if (type == 0x00)
        return 0x00;
    if (ciac_match(rk->ciac_denial, cvr, n))
        return 0x00;
    if (type == 0x80 || !follow)
        return 0x80;
    /* a TC asked */
    if (vc->terminal_offline_only) {
        if (vc->crm_ucol || ciac_match(rk->ciac_default, cvr, n))
            return 0x00;
        return 0x40;
    }
    if (vc->crm_lcol || ciac_match(rk->ciac_online, cvr, n))
        return 0x80;
    return 0x40;
}

/* GENERATE AC (EMV Book 3 §6.5.5), first and second; CRYPTO.md §5, §6. */
void kv_vcard_cmd_generate_ac(kv_vcard *vc, const kv_capdu *c, kv_vcard_answer *a)
{
    const kv_vcard_df *app = kv_vcard_selected_app(vc);
    const kv_vcard_keys *k = kv_vcard_keys_of(vc);
    const kv_vcard_risk *rk = kv_vcard_risk_of(vc);
    struct kv_vcard_appstate *st = kv_vcard_app_state(vc);
    uint8_t type = c->p1 & 0xC0, cid, cvr[6], iad[32], sd[KV_AC_SD_LEN], ac[8], dn[8], tdhc[20];
    uint8_t tlvs[96], sdad[KV_VCARD_DATA_MAX], un[4] = {0};
    const uint8_t *cdol2 = NULL, *v;
    size_t cdol2_len = 0, need, vlen, n, iad_len;
    int second = vc->ac_state == 1, cda;
    kv_tlv_writer w;

    if ((c->p1 & 0x2F) != 0 || type == 0xC0 || c->p2 != 0x00 || (second && type == 0x80)) {
        a->sw = SW_WRONG_P1P2;
        return;
    }
    if (app == NULL || !vc->gpo_done || !k->has_ac_mk || vc->ac_state == 2 ||
        (second ? app->cdol2_len : app->cdol1_len) == 0) {
        a->sw = SW_CONDITIONS;
        return;
    }
    if (kv_dol_data_len(second ? app->cdol2 : app->cdol1, second ? app->cdol2_len : app->cdol1_len,
                        &need) != 0 ||
        c->lc != need || need > sizeof(vc->cdol1_data)) {
        a->sw = SW_WRONG_LENGTH;
        return;
    }
    cda = (c->p1 & 0x10) && (app->aip[0] & 0x01) && k->icc_rsa != NULL;
    if (!second) {
        memcpy(vc->cdol1_data, c->data, c->lc);
        vc->cdol1_len = c->lc;
        vc->unable_online = vc->iss_auth_missing = vc->cda_first = 0;
        vc->terminal_offline_only = offline_only(app, c->data, c->lc);
        cid = first_decision(vc, k, rk, type);
        if (st != NULL && st->blocked)
            cid = 0x00;
        vc->first_cid = cid;
        vc->cda_first = cda && cid != 0x00;
        n = build_cvr(vc, k, cid, 0x80, 0, cvr);
        if (c->p1 & 0x10)
            vc->dda_performed = 1; /* from the next CVR on (as the card always did) */
    } else {
        const uint8_t *arc = NULL;
        size_t arc_len = 0;
        int approve;
        cdol2 = c->data;
        cdol2_len = c->lc;
        /* issuer authentication data in CDOL2, unless EXTERNAL AUTHENTICATE ran */
        if (vc->issuer_auth == 0 &&
            kv_dol_value(app->cdol2, app->cdol2_len, cdol2, cdol2_len, 0x91, &v, &vlen) == 1) {
            int zero = 1;
            for (size_t i = 0; i < vlen; i++)
                zero &= v[i] == 0;
            if (!zero)
                (void)issuer_authenticate(vc, v, vlen); /* wrong length: not performed */
        }
        (void)kv_dol_value(app->cdol2, app->cdol2_len, cdol2, cdol2_len, 0x8A, &arc, &arc_len);
        vc->unable_online =
            arc != NULL && arc_len == 2 && (arc[0] == 'Y' || arc[0] == 'Z') && arc[1] == '3';
        if (vc->unable_online) {
            /* no issuer answer: Y3 the terminal approves offline, Z3 it declines */
            n = build_cvr(vc, k, vc->first_cid, 0x00, 0, cvr);
            approve = type == 0x40 && arc[0] == 'Y' && !vc->crm_ucol &&
                      !ciac_match(rk->ciac_default, cvr, n);
        } else {
            vc->iss_auth_missing = rk->present && vc->issuer_auth == 0;
            approve = type == 0x40 && vc->issuer_auth >= 0 && arc != NULL && arc_len == 2 &&
                      arc_approves(arc) && !(rk->issuer_auth_required && vc->issuer_auth == 0);
        }
        cid = approve && !(st != NULL && st->blocked) ? 0x40 : 0x00;
        n = build_cvr(vc, k, vc->first_cid, cid, cda && cid != 0x00, cvr);
        if (c->p1 & 0x10)
            vc->dda_performed = 1;
    }
    iad_len = build_iad(k, cvr, n, iad);
    /* the 29 bytes of "standard data" (CRYPTO.md §3): from CDOL2 data first, then CDOL1 data */
    if (kv_ac_standard_data(cdol2 != NULL ? app->cdol2 : NULL, cdol2 != NULL ? app->cdol2_len : 0,
                            cdol2, cdol2_len, app->cdol1, app->cdol1_len, vc->cdol1_data,
                            vc->cdol1_len, sd) != 0 ||
        compute_ac(vc, k, app, sd, iad, iad_len, ac) != 0) {
        a->sw = SW_NO_DIAGNOSIS;
        return;
    }
    if (!second && cid == 0x80)
        memcpy(vc->arqc, ac, 8);
    vc->ac_state = (!second && cid == 0x80) ? 1 : 2;

    /* the card's counters after the decision (CRYPTO.md §6) */
    if (st != NULL) {
        if (cid == 0x40 && (!second || vc->unable_online)) {
            if (st->offline < 0xFFFF)
                st->offline++;
        } else if (second && !vc->unable_online) {
            if (cid == 0x40 && vc->issuer_auth > 0) {
                st->offline = 0;
                st->last_online_atc = vc->atc;
                st->has_last_online = 1;
            }
            st->last_ia_failed = vc->issuer_auth < 0;
        }
        if (vc->ac_state == 2) { /* reported in this transaction's last CVR */
            st->scripts = 0;
            st->script_failed = 0;
        }
        save_state(vc);
    }
    /* advice and reason (Book 3 Table 14), with card risk management only */
    if (rk->present && cid == 0x00) {
        if (vc->prof->pin_block != NULL && vc->pin_tries == 0)
            cid |= 0x08 | 0x02; /* PIN try limit exceeded */
        else if (second && vc->issuer_auth < 0)
            cid |= 0x08 | 0x03; /* issuer authentication failed */
    }

    cda = cda && (cid & 0xC0) != 0x00;
    kv_tlv_writer_init(&w, tlvs, sizeof(tlvs));
    {
        uint8_t atc[2];
        atc_bytes(vc, atc);
        kv_tlv_put(&w, 0x9F27, &cid, 1);
        kv_tlv_put(&w, 0x9F36, atc, 2);
        if (!cda)
            kv_tlv_put(&w, 0x9F26, ac, 8);
        kv_tlv_put(&w, 0x9F10, iad, iad_len);
    }
    if (kv_tlv_finish(&w) != 0) {
        a->sw = SW_NO_DIAGNOSIS;
        return;
    }
    if (cda) {
        if (!(second &&
              kv_dol_value(app->cdol2, app->cdol2_len, cdol2, cdol2_len, 0x9F37, &v, &vlen) == 1) &&
            kv_dol_value(app->cdol1, app->cdol1_len, vc->cdol1_data, vc->cdol1_len, 0x9F37, &v,
                         &vlen) != 1)
            vlen = 0;
        if (vlen > 0)
            kv_dol_fit(0x9F37, v, vlen, un, 4);
        n = (size_t)EVP_PKEY_get_size(k->icc_rsa);
        if (kv_vcard_random(dn, sizeof(dn)) != 0 ||
            kv_oda_cda_tdhc(vc->pdol_data, vc->pdol_len, vc->cdol1_data, vc->cdol1_len, cdol2,
                            cdol2_len, tlvs, w.len, tdhc) != 0 ||
            kv_oda_cda_sign(kv_oda_evp_signer, k->icc_rsa, n, dn, sizeof(dn), cid, ac, tdhc, un,
                            sdad) != 0) {
            a->sw = SW_NO_DIAGNOSIS;
            return;
        }
    }
    n = w.len;
    kv_tlv_writer_init(&w, a->data, sizeof(a->data));
    kv_tlv_begin(&w, 0x77);
    kv_tlv_put_raw(&w, tlvs, n);
    if (cda)
        kv_tlv_put(&w, 0x9F4B, sdad, (size_t)EVP_PKEY_get_size(k->icc_rsa));
    kv_tlv_end(&w);
    kv_vcard_answer_tlv(a, &w);
}

/*
 * COMPUTE CRYPTOGRAPHIC CHECKSUM (Mastercard contactless, P1 8E P2 80):
 * CVC3 over UDOL data (UN), CRYPTO.md §5.
 */
void kv_vcard_cmd_ccc(kv_vcard *vc, const kv_capdu *c, kv_vcard_answer *a)
{
    static const uint8_t default_udol[] = {0x9F, 0x6A, 0x04};
    const kv_vcard_df *app = kv_vcard_selected_app(vc);
    const kv_vcard_keys *k = kv_vcard_keys_of(vc);
    const uint8_t *udol, *track, *v;
    size_t udol_len, track_len, need, vlen;
    uint8_t un[4] = {0}, mac[8], blk[8];
    kv_tlv_writer w;

    if (c->p1 != 0x8E || c->p2 != 0x80) {
        a->sw = SW_WRONG_P1P2;
        return;
    }
    if (app == NULL || !vc->gpo_done || !k->has_cvc3_mk) {
        a->sw = SW_CONDITIONS;
        return;
    }
    udol = app->udol_len > 0 ? app->udol : default_udol;
    udol_len = app->udol_len > 0 ? app->udol_len : sizeof(default_udol);
    track = k->cvc3_track_len > 0 ? k->cvc3_track : app->track2;
    track_len = k->cvc3_track_len > 0 ? k->cvc3_track_len : app->track2_len;
    if (track_len == 0) {
        a->sw = SW_CONDITIONS;
        return;
    }
    if (kv_dol_data_len(udol, udol_len, &need) != 0 || c->lc != need) {
        a->sw = SW_WRONG_LENGTH;
        return;
    }
    if (kv_dol_value(udol, udol_len, c->data, c->lc, 0x9F6A, &v, &vlen) == 1 ||
        kv_dol_value(udol, udol_len, c->data, c->lc, 0x9F37, &v, &vlen) == 1)
        kv_dol_fit(0x9F6A, v, vlen, un, 4);
    if (kv_vcard_mac3(k->cvc3_mk, 2, track, track_len, mac) != 0) {
        a->sw = SW_NO_DIAGNOSIS;
        return;
    }
    blk[0] = mac[6]; /* IVCVC3 */
    blk[1] = mac[7];
    memcpy(blk + 2, un, 4);
    blk[6] = (uint8_t)(vc->atc >> 8);
    blk[7] = (uint8_t)vc->atc;
    if (kv_vcard_des2_ecb(k->cvc3_mk, 1, blk, 8, blk) != 0) {
        a->sw = SW_NO_DIAGNOSIS;
        return;
    }
    kv_tlv_writer_init(&w, a->data, sizeof(a->data));
    kv_tlv_begin(&w, 0x77);
    kv_tlv_put(&w, 0x9F61, blk + 6, 2);
    {
        uint8_t atc[2] = {(uint8_t)(vc->atc >> 8), (uint8_t)vc->atc};
        kv_tlv_put(&w, 0x9F36, atc, 2);
    }
    kv_tlv_end(&w);
    kv_vcard_answer_tlv(a, &w);
}

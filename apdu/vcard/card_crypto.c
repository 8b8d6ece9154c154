/*
 * see card.h: the cryptographic commands of the virtual card -- GET
 * CHALLENGE (00 84), the enciphered PIN of VERIFY P2 88, INTERNAL
 * AUTHENTICATE (00 88), GENERATE AC (80 AE), EXTERNAL AUTHENTICATE (00 82),
 * COMPUTE CRYPTOGRAPHIC CHECKSUM (80 2A) -- as apdu/vcard/CRYPTO.md describes.
 */
#include "apdu/dol.h"
#include "apdu/emv_txn.h"
#include "apdu/oda.h"
#include "apdu/vcard/card.h"
#include "apdu/vcard/vcrypto.h"
#include "src/base/secure.h"

#include <string.h>

/* The key that deciphers an enciphered PIN: the PIN encipherment key, else the ICC key. */
static EVP_PKEY *pin_key(const kv_vcard *vc)
{
    return vc->prof->keys.icc_pin_rsa != NULL ? vc->prof->keys.icc_pin_rsa : vc->prof->keys.icc_rsa;
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
    EVP_PKEY *key = vc->prof->keys.icc_rsa;
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

/* CVR (CRYPTO.md §4) of the current transaction; second: 0x80 / TC 0x40 / AAC 0x00. */
static void build_cvr(const kv_vcard *vc, uint8_t first_cid, uint8_t second, uint8_t cvr[3])
{
    cvr[0] = second;
    cvr[0] |= first_cid == 0x80 ? 0x20 : first_cid == 0x40 ? 0x10 : 0x00;
    if (vc->issuer_auth < 0)
        cvr[0] |= 0x08;
    if (vc->pin_performed)
        cvr[0] |= 0x04;
    if (vc->pin_performed && vc->pin_failed)
        cvr[0] |= 0x02;
    cvr[1] = (vc->prof->pin_block != NULL && vc->pin_tries == 0) ? 0x42 : 0x00;
    cvr[2] = vc->dda_performed ? 0x02 : 0x00;
}

/* The session key of this ATC (CVN 18) into sk. */
static int session_key(const kv_vcard *vc, uint8_t sk[16])
{
    uint8_t atc[2] = {(uint8_t)(vc->atc >> 8), (uint8_t)vc->atc};
    return kv_vcard_csk(vc->prof->keys.ac_mk, atc, sk);
}

/* The application cryptogram over sd (29 bytes) with iad (7 bytes), CRYPTO.md §3. */
static int compute_ac(const kv_vcard *vc, const kv_vcard_df *app, const uint8_t sd[KV_AC_SD_LEN],
                      const uint8_t iad[7], uint8_t ac[8])
{
    uint8_t data[KV_AC_SD_LEN + 2 + 2 + 7], sk[16];
    uint8_t atc[2] = {(uint8_t)(vc->atc >> 8), (uint8_t)vc->atc};
    size_t n = 0;
    int r;

    /* SD || AIP || ATC || 03 CVR (CVN 10) or the whole IAD (CVN 18): the issuer's own layout */
    if ((r = kv_ac_data_build(vc->prof->keys.cvn, sd, app->aip, atc, iad, 7, data, sizeof(data),
                              &n)) != 0)
        return r;
    if (vc->prof->keys.cvn == 10)
        return kv_vcard_mac3(vc->prof->keys.ac_mk, 1, data, n, ac);
    if ((r = session_key(vc, sk)) == 0)
        r = kv_vcard_mac3(sk, 2, data, n, ac);
    kv_wipe(sk, sizeof(sk));
    return r;
}

/*
 * Issuer authentication with the 91 value (CRYPTO.md §5). Returns 1 passed,
 * 0 failed, -1 wrong length (nothing changes).
 */
static int issuer_authenticate(kv_vcard *vc, const uint8_t *v, size_t len)
{
    uint8_t blk[24], mac[8], sk[16];
    int ok = 0;

    if (vc->prof->keys.cvn == 10) {
        if (len != 10)
            return -1;
        memcpy(blk, vc->arqc, 8);
        blk[0] ^= v[8];
        blk[1] ^= v[9];
        ok = kv_vcard_des2_ecb(vc->prof->keys.ac_mk, 1, blk, 8, mac) == 0 && kv_ct_equal(mac, v, 8);
    } else {
        if (len < 8 || len > 16)
            return -1;
        memcpy(blk, vc->arqc, 8);
        memcpy(blk + 8, v + 4, len - 4); /* CSU || proprietary data */
        ok = session_key(vc, sk) == 0 && kv_vcard_mac3(sk, 2, blk, 8 + len - 4, mac) == 0 &&
             kv_ct_equal(mac, v, 4);
        kv_wipe(sk, sizeof(sk));
    }
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

/* GENERATE AC (EMV Book 3 §6.5.5), first and second; CRYPTO.md §5. */
void kv_vcard_cmd_generate_ac(kv_vcard *vc, const kv_capdu *c, kv_vcard_answer *a)
{
    const kv_vcard_df *app = kv_vcard_selected_app(vc);
    const kv_vcard_keys *k = &vc->prof->keys;
    uint8_t type = c->p1 & 0xC0, cid, cvr[3], iad[7], sd[KV_AC_SD_LEN], ac[8], dn[8], tdhc[20];
    uint8_t tlvs[64], sdad[KV_VCARD_DATA_MAX], un[4] = {0};
    const uint8_t *cdol2 = NULL, *v;
    size_t cdol2_len = 0, need, vlen, n;
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
    if (!second) {
        memcpy(vc->cdol1_data, c->data, c->lc);
        vc->cdol1_len = c->lc;
        cid = type == 0x00 ? 0x00 : (type == 0x80 || !k->first_ac_follow) ? 0x80 : 0x40;
        vc->first_cid = cid;
        build_cvr(vc, cid, 0x80, cvr);
    } else {
        const uint8_t *arc = NULL;
        size_t arc_len = 0;
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
        cid = (type == 0x40 && vc->issuer_auth >= 0 && arc != NULL && arc_len == 2 &&
               arc_approves(arc))
                  ? 0x40
                  : 0x00;
        build_cvr(vc, vc->first_cid, cid == 0x40 ? 0x40 : 0x00, cvr);
    }
    iad[0] = 0x06;
    iad[1] = k->dki;
    iad[2] = (uint8_t)k->cvn; /* 10 = 0x0A, 18 = 0x12 */
    iad[3] = 0x03;
    memcpy(iad + 4, cvr, 3);
    /* the 29 bytes of "standard data" (CRYPTO.md §3): from CDOL2 data first, then CDOL1 data */
    if (kv_ac_standard_data(cdol2 != NULL ? app->cdol2 : NULL, cdol2 != NULL ? app->cdol2_len : 0,
                            cdol2, cdol2_len, app->cdol1, app->cdol1_len, vc->cdol1_data,
                            vc->cdol1_len, sd) != 0 ||
        compute_ac(vc, app, sd, iad, ac) != 0) {
        a->sw = SW_NO_DIAGNOSIS;
        return;
    }
    if (!second && cid == 0x80)
        memcpy(vc->arqc, ac, 8);
    vc->ac_state = (!second && cid == 0x80) ? 1 : 2;

    cda = (c->p1 & 0x10) && (app->aip[0] & 0x01) && k->icc_rsa != NULL && cid != 0x00;
    if (c->p1 & 0x10)
        vc->dda_performed = 1;
    kv_tlv_writer_init(&w, tlvs, sizeof(tlvs));
    {
        uint8_t atc[2] = {(uint8_t)(vc->atc >> 8), (uint8_t)vc->atc};
        kv_tlv_put(&w, 0x9F27, &cid, 1);
        kv_tlv_put(&w, 0x9F36, atc, 2);
        if (!cda)
            kv_tlv_put(&w, 0x9F26, ac, 8);
        kv_tlv_put(&w, 0x9F10, iad, 7);
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
    const kv_vcard_keys *k = &vc->prof->keys;
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

/* The card side of one EMV transaction: see emv_txn.h */
#include "apdu/emv_txn.h"

#include <string.h>

#include <openssl/rand.h>

#include "apdu/apdu.h"
#include "src/base/cursor.h"
#include "apdu/tlv.h"
#include "apdu/tvr.h"
#include "src/base/err.h"
#include "src/base/secure.h"

/* ---- GENERATE AC ------------------------------------------------------------ */

static int parse_format1(const uint8_t *v, size_t len, kv_genac_resp *out)
{
    kv_cursor c;

    /* CID (1) || ATC (2) || AC (8) || IAD (0..32), Book 3 §6.5.5.4 */
    if (len < 11 || len > 11 + KV_IAD_MAX)
        return KV_ERR_CARD_DATA;
    kv_cursor_init(&c, v, len);
    if (kv_cursor_u8(&c, &out->cid) != 0 || kv_cursor_copy(&c, out->atc, 2) != 0 ||
        kv_cursor_copy(&c, out->ac, 8) != 0)
        return KV_ERR_CARD_DATA;
    out->has_ac = 1;
    out->iad_len = c.left;
    if (c.left > 0 && kv_cursor_copy(&c, out->iad, out->iad_len) != 0)
        return KV_ERR_CARD_DATA;
    return 0;
}

static int parse_format2(const uint8_t *v, size_t len, kv_genac_resp *out)
{
    kv_cursor c;
    kv_tlv t;
    int r, seen_cid = 0, seen_atc = 0, seen_iad = 0;

    kv_cursor_init(&c, v, len);
    while ((r = kv_tlv_next(&c, &t)) == 1) {
        switch (t.tag) {
        case 0x9F27:
            if (seen_cid++ || t.len != 1)
                return KV_ERR_CARD_DATA;
            out->cid = t.value[0];
            break;
        case 0x9F36:
            if (seen_atc++ || t.len != 2)
                return KV_ERR_CARD_DATA;
            memcpy(out->atc, t.value, 2);
            break;
        case 0x9F26:
            if (out->has_ac || t.len != 8)
                return KV_ERR_CARD_DATA;
            memcpy(out->ac, t.value, 8);
            out->has_ac = 1;
            break;
        case 0x9F10:
            if (seen_iad++ || t.len < 1 || t.len > KV_IAD_MAX)
                return KV_ERR_CARD_DATA;
            memcpy(out->iad, t.value, t.len);
            out->iad_len = t.len;
            break;
        case 0x9F4B:
            if (out->sdad != NULL || t.len == 0)
                return KV_ERR_CARD_DATA;
            out->sdad = t.value;
            out->sdad_len = t.len;
            break;
        default: /* other objects (9F6E, proprietary) are allowed and ignored */
            break;
        }
    }
    if (r < 0 || !seen_cid || !seen_atc || (!out->has_ac && out->sdad == NULL))
        return KV_ERR_CARD_DATA;
    out->tlvs = v;
    out->tlvs_len = len;
    return 0;
}

/* see emv_txn.h */
int kv_genac_parse(const uint8_t *p, size_t len, kv_genac_resp *out)
{
    kv_cursor c;
    kv_tlv t;
    int r;

    memset(out, 0, sizeof(*out));
    if (p == NULL || len == 0)
        return KV_ERR_CARD_DATA;
    kv_cursor_init(&c, p, len);
    if ((r = kv_tlv_next(&c, &t)) != 1 || c.left != 0 || t.raw != p)
        return KV_ERR_CARD_DATA; /* exactly one template, no padding around it */
    if (t.tag == 0x80) {
        out->format = 1;
        r = parse_format1(t.value, t.len, out);
    } else if (t.tag == 0x77) {
        out->format = 2;
        r = parse_format2(t.value, t.len, out);
    } else {
        r = KV_ERR_CARD_DATA;
    }
    if (r != 0)
        memset(out, 0, sizeof(*out));
    return r;
}

/* see emv_txn.h */
const char *kv_ac_type_name(uint8_t cid)
{
    switch (cid & KV_AC_TYPE_MASK) {
    case KV_AC_AAC:
        return "aac";
    case KV_AC_TC:
        return "tc";
    case KV_AC_ARQC:
        return "arqc";
    default:
        return "rfu";
    }
}

/* Send one command; Le 00 when want_le. */
static int txn_cmd(kv_emv *s, uint8_t cla, uint8_t ins, uint8_t p1, uint8_t p2, const uint8_t *data,
                   size_t lc, int want_le, uint8_t *resp, size_t cap, size_t *rlen, uint16_t *sw)
{
    kv_capdu c;

    memset(&c, 0, sizeof(c));
    c.cla = cla;
    c.ins = ins;
    c.p1 = p1;
    c.p2 = p2;
    c.data = lc ? data : NULL;
    c.lc = lc;
    c.le = want_le ? 256 : 0;
    return kv_emv_command(s, &c, resp, cap, rlen, sw);
}

/* see emv_txn.h */
int kv_emv_generate_ac(kv_emv *s, uint8_t p1, const uint8_t *data, size_t len, uint8_t *resp,
                       size_t cap, size_t *rlen, kv_genac_resp *out)
{
    int r;
    uint16_t sw;

    if (len > KV_APDU_SHORT_LC_MAX || cap < 64)
        return KV_ERR_ARG;
    if ((r = txn_cmd(s, 0x80, 0xAE, p1, 0x00, data, len, 1, resp, cap, rlen, &sw)) != 0)
        return r;
    if (sw != 0x9000)
        return kv_sw_to_err(sw);
    return kv_genac_parse(resp, *rlen, out);
}

/* ---- Offline PIN -------------------------------------------------------------- */

/* see emv_txn.h */
int kv_emv_get_challenge(kv_emv *s, uint8_t un[8])
{
    uint8_t resp[260];
    size_t n;
    uint16_t sw;
    int r;

    if ((r = txn_cmd(s, 0x00, 0x84, 0x00, 0x00, NULL, 0, 1, resp, sizeof(resp), &n, &sw)) != 0)
        return r;
    if (sw != 0x9000)
        return kv_sw_to_err(sw);
    if (n != 8)
        return KV_ERR_CARD_DATA;
    memcpy(un, resp, 8);
    return 0;
}

/* see emv_txn.h */
int kv_pin_encipher(const char *pin, size_t pin_len, const uint8_t icc_un[8],
                    const kv_oda_pubkey *key, uint8_t *out)
{
    int r = KV_ERR_NOMEM;
    kv_secbuf *sb = NULL;
    uint8_t *blk;
    size_t n = key->modulus_len;

    if (pin_len < 4 || pin_len > 12 || n < 18 || n > KV_ODA_MOD_MAX)
        return KV_ERR_ARG;
    if ((sb = kv_secbuf_new(KV_ODA_MOD_MAX)) == NULL)
        goto out;
    blk = kv_secbuf_ptr(sb);
    /* Book 2 Table 24: 7F || PIN block || ICC UN || random pad */
    blk[0] = 0x7F;
    if ((r = kv_pin_block_plain(pin, pin_len, blk + 1)) != 0)
        goto out;
    memcpy(blk + 9, icc_un, 8);
    if (RAND_bytes(blk + 17, (int)(n - 17)) != 1) {
        r = KV_ERR_INTERNAL;
        goto out;
    }
    /* leading 7F is below any modulus whose top byte is >= 80, as EMV keys are */
    r = kv_oda_rsa_recover(key->modulus, n, key->exponent, key->exponent_len, blk, n, out);
    if (r != 0 && r != KV_ERR_NOMEM)
        r = r == KV_ERR_INTERNAL ? r : KV_ERR_ARG;
out:
    kv_secbuf_free(sb);
    return r;
}

/* see emv_txn.h */
int kv_emv_verify_enciphered_pin(kv_emv *s, const char *pin, size_t pin_len,
                                 const kv_oda_pubkey *key, kv_pin_result *res)
{
    int r;
    uint8_t un[8], enc[KV_ODA_MOD_MAX], resp[260];
    size_t n;
    uint16_t sw;

    if (pin_len < 4 || pin_len > 12 || key == NULL || key->modulus_len < 18 ||
        key->modulus_len > KV_APDU_SHORT_LC_MAX)
        return KV_ERR_ARG;
    if ((r = kv_emv_get_challenge(s, un)) != 0)
        return r;
    if ((r = kv_pin_encipher(pin, pin_len, un, key, enc)) != 0)
        return r;
    /* VERIFY P2 88: enciphered PIN (Book 3 §6.5.12) */
    if ((r = txn_cmd(s, 0x00, 0x20, 0x00, 0x88, enc, key->modulus_len, 0, resp, sizeof(resp), &n,
                     &sw)) != 0)
        return r;
    return kv_pin_result_of_sw(sw, res);
}

/* see emv_txn.h */
int kv_emv_pin_key_recover(const kv_emv *s, const kv_oda_pubkey *issuer, uint32_t txn_date,
                           kv_oda_pubkey *out)
{
    kv_oda_cert_in in;
    const uint8_t *pan = NULL;
    size_t pan_len = 0;

    memset(&in, 0, sizeof(in));
    if (kv_emv_find(s, 0x9F2D, &in.cert, &in.cert_len) != 0)
        return KV_ERR_NOT_FOUND;
    if (kv_emv_find(s, 0x9F2E, &in.exponent, &in.exponent_len) != 0)
        in.exponent = NULL;
    if (kv_emv_find(s, 0x9F2F, &in.remainder, &in.remainder_len) != 0)
        in.remainder = NULL;
    if (kv_emv_find(s, 0x5A, &pan, &pan_len) != 0)
        return KV_ERR_ODA_DATA_MISSING;
    return kv_oda_icc_key_recover(issuer, &in, pan, pan_len, txn_date, NULL, out);
}

/* ---- DDA ----------------------------------------------------------------------- */

/* see emv_txn.h */
int kv_emv_internal_authenticate(kv_emv *s, const uint8_t *ddol_data, size_t ddol_len,
                                 uint8_t *sdad, size_t cap, size_t *sdad_len)
{
    uint8_t resp[KV_EMV_RESP_MAX];
    size_t n;
    uint16_t sw;
    kv_tlv t, sig;
    kv_cursor c;
    int r;

    if (ddol_len == 0 || ddol_len > KV_APDU_SHORT_LC_MAX)
        return KV_ERR_ARG;
    if ((r = txn_cmd(s, 0x00, 0x88, 0x00, 0x00, ddol_data, ddol_len, 1, resp, sizeof(resp), &n,
                     &sw)) != 0)
        return r;
    if (sw != 0x9000)
        return kv_sw_to_err(sw);
    kv_cursor_init(&c, resp, n);
    if (kv_tlv_next(&c, &t) != 1 || c.left != 0)
        return KV_ERR_CARD_DATA;
    if (t.tag == 0x80) {
        sig = t;
    } else if (t.tag == 0x77) {
        if (kv_tlv_find(t.value, t.len, 0x9F4B, &sig) != 0)
            return KV_ERR_CARD_DATA;
    } else {
        return KV_ERR_CARD_DATA;
    }
    if (sig.len == 0 || sig.len > cap)
        return KV_ERR_CARD_DATA;
    memcpy(sdad, sig.value, sig.len);
    *sdad_len = sig.len;
    return 0;
}

/* ---- Issuer authentication ----------------------------------------------------- */

/* see emv_txn.h */
int kv_emv_external_authenticate(kv_emv *s, const uint8_t *iad, size_t len, int *accepted)
{
    uint8_t resp[260];
    size_t n;
    uint16_t sw;
    int r;

    *accepted = 0;
    if (iad == NULL || len < 8 || len > 16)
        return KV_ERR_ARG;
    if ((r = txn_cmd(s, 0x00, 0x82, 0x00, 0x00, iad, len, 0, resp, sizeof(resp), &n, &sw)) != 0)
        return r;
    if (sw == 0x9000)
        *accepted = 1;
    else if (sw != 0x6300)
        return kv_sw_to_err(sw);
    return 0;
}

/* ---- COMPUTE CRYPTOGRAPHIC CHECKSUM ---------------------------------------------- */

/* see emv_txn.h */
int kv_cc_parse(const uint8_t *p, size_t len, kv_cc_resp *out)
{
    kv_cursor c;
    kv_tlv t, e;
    int r;

    memset(out, 0, sizeof(*out));
    kv_cursor_init(&c, p, len);
    if (p == NULL || kv_tlv_next(&c, &t) != 1 || c.left != 0 || t.tag != 0x77)
        return KV_ERR_CARD_DATA;
    kv_cursor_init(&c, t.value, t.len);
    while ((r = kv_tlv_next(&c, &e)) == 1) {
        if (e.tag == 0x9F60 || e.tag == 0x9F61 || e.tag == 0x9F36) {
            uint8_t *dst = e.tag == 0x9F60   ? out->cvc3_track1
                           : e.tag == 0x9F61 ? out->cvc3_track2
                                             : out->atc;
            int *has = e.tag == 0x9F60   ? &out->has_cvc3_track1
                       : e.tag == 0x9F61 ? &out->has_cvc3_track2
                                         : &out->has_atc;
            if (*has || e.len != 2) {
                r = KV_ERR_CARD_DATA;
                break;
            }
            memcpy(dst, e.value, 2);
            *has = 1;
        }
    }
    if (r < 0 || (!out->has_cvc3_track1 && !out->has_cvc3_track2) || !out->has_atc) {
        memset(out, 0, sizeof(*out));
        return KV_ERR_CARD_DATA;
    }
    return 0;
}

/* see emv_txn.h */
int kv_emv_compute_cc(kv_emv *s, const uint8_t *udol_data, size_t len, kv_cc_resp *out)
{
    uint8_t resp[260];
    size_t n;
    uint16_t sw;
    int r;

    if (len == 0 || len > KV_APDU_SHORT_LC_MAX)
        return KV_ERR_ARG;
    if ((r = txn_cmd(s, 0x80, 0x2A, 0x8E, 0x80, udol_data, len, 1, resp, sizeof(resp), &n, &sw)) !=
        0)
        return r;
    if (sw != 0x9000)
        return kv_sw_to_err(sw);
    return kv_cc_parse(resp, n, out);
}

/* ---- DOL data -------------------------------------------------------------------- */

static int txn_lookup(void *arg, uint32_t tag, const uint8_t **value, size_t *len)
{
    const kv_emv_dol_values *v = arg;

    switch (tag) {
    case 0x8A:
        *value = v->arc;
        *len = v->arc_len;
        break;
    case 0x91:
        *value = v->issuer_auth;
        *len = v->issuer_auth_len;
        break;
    case 0x9F4C:
        *value = v->icc_dn;
        *len = v->icc_dn_len;
        break;
    case 0x82:
        *value = v->aip;
        *len = 2;
        break;
    case 0x9F36:
        *value = v->atc;
        *len = 2;
        break;
    default:
        return 0;
    }
    return *value != NULL;
}

/* see emv_txn.h */
int kv_emv_dol_build(const uint8_t *dol, size_t dol_len, const kv_terminal *t,
                     const kv_emv_dol_values *v, uint8_t *out, size_t cap, size_t *outlen)
{
    kv_emv_dol_values none;

    if (v == NULL) {
        memset(&none, 0, sizeof(none));
        v = &none;
    }
    return kv_dol_build(dol, dol_len, t, txn_lookup, (void *)v, out, cap, outlen);
}

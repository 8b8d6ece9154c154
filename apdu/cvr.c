/* see cvr.h — the bit layouts and their sources are listed there */
#include "apdu/cvr.h"

#include <string.h>

/* standard data (29) || AIP (2) || ATC (2): where the CVN's own tail starts */
#define AC_HEAD 33

static void reset(kv_cvr_info *out)
{
    memset(out, 0, sizeof(*out));
    out->layout = KV_CVR_LAYOUT_UNKNOWN;
    out->offline_pin = KV_CVR_PIN_UNKNOWN;
    out->cvn = -1;
    out->dki = -1;
    out->visa_format = -1;
    out->ac1_type = -1;
    out->ac2_type = -1;
}

/* The AC types of one CVR byte: b8-7 the 2nd GENERATE AC, b6-5 the 1st (Visa, M/Chip, CCD). */
static void ac_types(kv_cvr_info *out, uint8_t b)
{
    static const int second[4] = {KV_CVR_AC_AAC, KV_CVR_AC_TC, -1, -1};
    static const int first[4] = {KV_CVR_AC_AAC, KV_CVR_AC_TC, KV_CVR_AC_ARQC, -1};
    out->ac2_type = second[(b >> 6) & 3];
    out->ac1_type = first[(b >> 4) & 3];
}

static void take(kv_cvr_info *out, kv_cvr_layout l, const uint8_t *cvr, size_t n)
{
    out->layout = l;
    memcpy(out->cvr, cvr, n);
    out->cvr_len = n;
}

/* VIS format 0/1/3: CVR bytes 2 and 3 (cvr[0], cvr[1]). */
static void visa_bits(kv_cvr_info *out)
{
    int performed = (out->cvr[0] & 0x04) != 0;
    int failed = (out->cvr[0] & 0x02) != 0 || (out->cvr[1] & 0x02) != 0; /* or app blocked */
    out->pin_try_limit_exceeded = (out->cvr[1] & 0x40) != 0;
    ac_types(out, out->cvr[0]);
    out->issuer_auth_failed = (out->cvr[0] & 0x08) != 0;
    out->dda_performed = (out->cvr[2] & 0x02) != 0;
    if (!performed)
        out->offline_pin = KV_CVR_PIN_NOT_PERFORMED;
    else if (failed || out->pin_try_limit_exceeded)
        out->offline_pin = KV_CVR_PIN_FAILED;
    else
        out->offline_pin = KV_CVR_PIN_VERIFIED;
}

/* VIS format 2: no offline PIN bit this decoder relies on; the limit bit of byte 3. */
static void visa2_bits(kv_cvr_info *out)
{
    out->pin_try_limit_exceeded = (out->cvr[2] & 0x40) != 0;
    out->offline_pin = KV_CVR_PIN_UNKNOWN;
    ac_types(out, out->cvr[1]);
    out->issuer_auth_failed = (out->cvr[1] & 0x08) != 0;
    out->dda_performed = (out->cvr[3] & 0x02) != 0;
}

/* M/Chip: CVR byte 1 and byte 4. */
static void mchip_bits(kv_cvr_info *out)
{
    uint8_t b1 = out->cvr[0], b4 = out->cvr[3];
    int performed = (b1 & 0x04) != 0 && (b4 & 0x20) == 0;
    int successful = (b1 & 0x01) != 0;
    int failed = (b4 & 0x10) != 0 || (b4 & 0x01) != 0;
    out->pin_try_limit_exceeded = (b4 & 0x08) != 0;
    ac_types(out, b1);
    out->dda_performed = (out->cvr[1] & 0x80) != 0;
    out->cda_performed = (out->cvr[1] & 0x40) != 0;
    out->issuer_auth_failed = (out->cvr[4] & 0x04) != 0;
    if (!performed)
        out->offline_pin = KV_CVR_PIN_NOT_PERFORMED;
    else if (!successful || failed || out->pin_try_limit_exceeded)
        out->offline_pin = KV_CVR_PIN_FAILED;
    else
        out->offline_pin = KV_CVR_PIN_VERIFIED;
}

/* CCD: CVR byte 2. */
static void ccd_bits(kv_cvr_info *out)
{
    uint8_t b2 = out->cvr[1];
    int performed = (b2 & 0x08) != 0;
    int failed = (b2 & 0x04) != 0;
    out->pin_try_limit_exceeded = (b2 & 0x02) != 0;
    ac_types(out, out->cvr[0]);
    out->cda_performed = (out->cvr[0] & 0x08) != 0;
    out->dda_performed = (out->cvr[0] & 0x04) != 0;
    out->issuer_auth_failed = (out->cvr[0] & 0x01) != 0;
    if (!performed)
        out->offline_pin = KV_CVR_PIN_NOT_PERFORMED;
    else if (failed || out->pin_try_limit_exceeded)
        out->offline_pin = KV_CVR_PIN_FAILED;
    else
        out->offline_pin = KV_CVR_PIN_VERIFIED;
}

/*
 * Visa format 0/1/3: L DKI CVN 03 CVR(3) [...], L = 06 (or 07: one more
 * Visa byte) the length of the Visa part, then nothing or IDD-length IDD.
 */
static int visa013(const uint8_t *iad, size_t len, kv_cvr_info *out)
{
    size_t vis;

    if (len < 7 || (iad[0] != 0x06 && iad[0] != 0x07) || iad[3] != 0x03)
        return 0;
    vis = (size_t)iad[0] + 1;
    /* the CVN's high nibble names the IAD format: 0, 1 or 3 */
    if ((iad[2] >> 4) != 0 && (iad[2] >> 4) != 1 && (iad[2] >> 4) != 3)
        return 0;
    /* anything after the Visa part is one length-prefixed issuer discretionary data field */
    if (len < vis || (len > vis && (size_t)iad[vis] + vis + 1 != len))
        return 0;
    take(out, KV_CVR_LAYOUT_VISA, iad + 4, 3);
    visa_bits(out);
    out->dki = iad[1];
    out->cvn = iad[2];
    out->visa_format = iad[2] >> 4;
    return 1;
}

/* Visa format 2: 1F CVN DKI CVR(5) IDD-option IDD, 32 bytes. */
static int visa2(const uint8_t *iad, size_t len, kv_cvr_info *out)
{
    if (len != 32 || iad[0] != 0x1F || (iad[1] >> 4) != 2)
        return 0;
    take(out, KV_CVR_LAYOUT_VISA_2, iad + 3, 5);
    visa2_bits(out);
    out->dki = iad[2];
    /* VIS names the format 2 versions by their hex digits: '22' is CVN 22 */
    out->cvn = (iad[1] & 0x0F) <= 9 ? 20 + (iad[1] & 0x0F) : iad[1];
    out->visa_format = 2;
    return 1;
}

/* CCD: 0F CCI DKI CVR(5) counters(8) 0F IDD(15), 32 bytes; CCI A5 (TDES) or A6 (AES). */
static int ccd(const uint8_t *iad, size_t len, kv_cvr_info *out)
{
    if (len != 32 || iad[0] != 0x0F || (iad[1] != 0xA5 && iad[1] != 0xA6) || iad[16] != 0x0F)
        return 0;
    take(out, KV_CVR_LAYOUT_CCD, iad + 3, 5);
    ccd_bits(out);
    out->dki = iad[2];
    out->cvn = iad[1] & 0x0F;
    return 1;
}

/* M/Chip: DKI CVN(0x10..0x15, bit 2 clear) CVR(6) ..., 18..32 bytes. */
static int mchip(const uint8_t *iad, size_t len, kv_cvr_info *out)
{
    if (len < 18 || len > 32 || (iad[1] & 0xF8) != 0x10 || (iad[1] & 0x02) != 0)
        return 0;
    take(out, KV_CVR_LAYOUT_MCHIP, iad + 2, 6);
    mchip_bits(out);
    out->dki = iad[0];
    out->cvn = iad[1];
    return 1;
}

int kv_cvr_from_iad(const uint8_t *iad, size_t len, kv_cvr_info *out)
{
    reset(out);
    if (iad == NULL || len == 0)
        return 0;
    if (visa013(iad, len, out) || visa2(iad, len, out) || ccd(iad, len, out))
        return 0;
    mchip(iad, len, out);
    return 0;
}

int kv_cvr_from_ac_data(int cvn, const uint8_t *data, size_t len, kv_cvr_info *out)
{
    const uint8_t *tail;
    size_t n;

    reset(out);
    if (data == NULL || len <= AC_HEAD)
        return 0;
    tail = data + AC_HEAD;
    n = len - AC_HEAD;
    switch (cvn) {
    case 10: /* 03 || CVR(3): the CVR with its length byte */
        if (n == 4 && tail[0] == 0x03) {
            take(out, KV_CVR_LAYOUT_VISA, tail + 1, 3);
            visa_bits(out);
        }
        break;
    case 18: /* the whole IAD, format 0/1/3 with this CVN */
        if (n >= 7 && tail[2] == 0x12)
            visa013(tail, n, out);
        break;
    case 22: /* the whole IAD: format 2 (CVN '22') or format 0/1/3 naming CVN 22 */
        if (!visa2(tail, n, out) && n >= 7 && tail[2] == 0x16)
            visa013(tail, n, out);
        break;
    case 16:
    case 20: /* CVR(6) and nothing after it */
        if (n == 6) {
            take(out, KV_CVR_LAYOUT_MCHIP, tail, 6);
            mchip_bits(out);
        }
        break;
    case 17:
    case 21: /* CVR(6) followed by the counters */
        if (n > 6) {
            take(out, KV_CVR_LAYOUT_MCHIP, tail, 6);
            mchip_bits(out);
        }
        break;
    case 5:
    case 6: /* the CCD IAD, whose CCI names this cryptogram version */
        if (n == 32 && (tail[1] & 0x0F) == cvn)
            ccd(tail, n, out);
        break;
    default:
        break;
    }
    if (out->layout != KV_CVR_LAYOUT_UNKNOWN)
        out->cvn = cvn;
    return 0;
}

const char *kv_cvr_layout_name(kv_cvr_layout l)
{
    switch (l) {
    case KV_CVR_LAYOUT_VISA:
        return "visa";
    case KV_CVR_LAYOUT_VISA_2:
        return "visa_format2";
    case KV_CVR_LAYOUT_MCHIP:
        return "mchip";
    case KV_CVR_LAYOUT_CCD:
        return "ccd";
    case KV_CVR_LAYOUT_UNKNOWN:
        break;
    }
    return "unknown";
}

const char *kv_cvr_pin_name(kv_cvr_pin p)
{
    switch (p) {
    case KV_CVR_PIN_VERIFIED:
        return "verified";
    case KV_CVR_PIN_FAILED:
        return "failed";
    case KV_CVR_PIN_NOT_PERFORMED:
        return "not_performed";
    case KV_CVR_PIN_UNKNOWN:
        break;
    }
    return "unknown";
}

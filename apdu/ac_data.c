/* AC data and IAD decoding: see ac_data.h */
#include "apdu/ac_data.h"

#include <string.h>

#include "apdu/cvr.h"
#include "apdu/dol.h"
#include "src/base/err.h"

/* ---- IAD ---------------------------------------------------------------------- */

/* see ac_data.h */
int kv_iad_decode(const uint8_t *iad, size_t len, kv_iad_info *info)
{
    kv_cvr_info c;

    memset(info, 0, sizeof(*info));
    kv_cvr_from_iad(iad, len, &c);
    info->cvn = c.cvn;
    info->dki = c.dki;
    info->visa_format = c.visa_format;
    info->ac1_type = c.ac1_type;
    info->ac2_type = c.ac2_type;
    switch (c.layout) {
    case KV_CVR_LAYOUT_VISA:
        info->layout = KV_IAD_VISA;
        break;
    case KV_CVR_LAYOUT_VISA_2:
        info->layout = KV_IAD_VISA_2;
        break;
    case KV_CVR_LAYOUT_MCHIP:
        info->layout = KV_IAD_MCHIP;
        break;
    case KV_CVR_LAYOUT_CCD:
        info->layout = KV_IAD_CCD;
        break;
    case KV_CVR_LAYOUT_UNKNOWN:
        /* a Visa IAD that names its CVR (06|07 DKI CVN 03) but ends before it */
        if (iad != NULL && len >= 4 && len < 7 && (iad[0] == 0x06 || iad[0] == 0x07) &&
            iad[3] == 0x03)
            return KV_ERR_CARD_DATA;
        return 0;
    }
    memcpy(info->cvr, c.cvr, c.cvr_len);
    info->cvr_len = c.cvr_len;
    info->offline_pin_performed =
        c.offline_pin == KV_CVR_PIN_VERIFIED || c.offline_pin == KV_CVR_PIN_FAILED;
    info->offline_pin_verified = c.offline_pin == KV_CVR_PIN_VERIFIED;
    info->offline_pin_failed = c.offline_pin == KV_CVR_PIN_FAILED;
    info->pin_try_limit_exceeded = c.pin_try_limit_exceeded;
    info->issuer_auth_failed = c.issuer_auth_failed;
    info->cda_performed = c.cda_performed;
    info->dda_performed = c.dda_performed;
    return 0;
}

/* Find tag in (dol, data); fit its value to want bytes into out. 1 found, 0 absent, <0 error. */
static int sd_take(const uint8_t *dol, size_t dol_len, const uint8_t *data, size_t data_len,
                   uint32_t tag, uint8_t *out, size_t want)
{
    const uint8_t *v;
    size_t vlen;
    int r = kv_dol_value(dol, dol_len, data, data_len, tag, &v, &vlen);

    if (r == 1)
        kv_dol_fit(tag, v, vlen, out, want);
    return r;
}

/* see ac_data.h */
int kv_ac_standard_data(const uint8_t *cdol, size_t cdol_len, const uint8_t *data, size_t data_len,
                        const uint8_t *fb_cdol, size_t fb_cdol_len, const uint8_t *fb_data,
                        size_t fb_data_len, uint8_t sd[KV_AC_SD_LEN])
{
    static const struct {
        uint32_t tag;
        size_t len;
    } want[] = {{0x9F02, 6}, {0x9F03, 6}, {0x9F1A, 2}, {0x95, 5},
                {0x5F2A, 2}, {0x9A, 3},   {0x9C, 1},   {0x9F37, 4}};
    size_t off = 0;
    int r;

    memset(sd, 0, KV_AC_SD_LEN);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        r = sd_take(cdol, cdol_len, data, data_len, want[i].tag, sd + off, want[i].len);
        if (r == 0)
            r = sd_take(fb_cdol, fb_cdol_len, fb_data, fb_data_len, want[i].tag, sd + off,
                        want[i].len);
        if (r < 0)
            return r;
        off += want[i].len;
    }
    return 0;
}

/* see ac_data.h */
void kv_ac_data_un(const uint8_t sd[KV_AC_SD_LEN], uint8_t un[4])
{
    memcpy(un, sd + KV_AC_SD_UN_OFF, 4);
}

/* An M/Chip IAD: DKI CVN(0x10 | 0x04 CSK | 0x01 counters) CVR(6) DAC/IDN(2) counters ... */
static int mchip_iad(int cvn, const uint8_t *iad, size_t len)
{
    return len >= 18 && len <= KV_IAD_MAX && iad[1] == (uint8_t)cvn;
}

/* see ac_data.h */
int kv_ac_data_build(int cvn, const uint8_t sd[KV_AC_SD_LEN], const uint8_t aip[2],
                     const uint8_t atc[2], const uint8_t *iad, size_t iad_len, uint8_t *out,
                     size_t cap, size_t *olen)
{
    const uint8_t *tail = iad, *more = NULL;
    size_t tail_len = 0, more_len = 0, n;

    if (iad == NULL)
        iad_len = 0;
    switch (cvn) {
    case 10: /* Visa CVN 10: the CVR with its length byte, IAD bytes 4-7 */
        if (iad_len < 7 || iad[3] != 0x03)
            return KV_ERR_CARD_DATA;
        tail = iad + 3;
        tail_len = 4;
        break;
    case 18:
    case 22: /* the whole IAD */
        if (iad_len == 0)
            return KV_ERR_CARD_DATA;
        tail_len = iad_len;
        break;
    case 16:
    case 20: /* M/Chip: the CVR */
    case 17:
    case 21: /* ... and the counters */
        if (!mchip_iad(cvn, iad, iad_len))
            return KV_ERR_CARD_DATA;
        tail = iad + 2;
        tail_len = 6;
        if (cvn == 17) {
            more = iad + 10;
            more_len = 8;
        } else if (cvn == 21) {
            if (iad_len != 18 && iad_len != 20 && iad_len != 26 && iad_len != 28)
                return KV_ERR_CARD_DATA;
            more = iad + 10;
            more_len = iad_len - 10;
        }
        break;
    case 5:
    case 6: /* CCD: the whole 32-byte IAD */
        if (iad_len != 32 || iad[0] != 0x0F)
            return KV_ERR_CARD_DATA;
        tail_len = iad_len;
        break;
    default:
        return KV_ERR_UNSUPPORTED;
    }
    n = KV_AC_SD_LEN + 4 + tail_len + more_len;
    if (cap < n)
        return KV_ERR_BUFFER;
    memcpy(out, sd, KV_AC_SD_LEN);
    memcpy(out + KV_AC_SD_LEN, aip, 2);
    memcpy(out + KV_AC_SD_LEN + 2, atc, 2);
    memcpy(out + KV_AC_SD_LEN + 4, tail, tail_len);
    if (more_len > 0)
        memcpy(out + KV_AC_SD_LEN + 4 + tail_len, more, more_len);
    *olen = n;
    return 0;
}

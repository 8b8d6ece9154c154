/* see apdu.h */
#include "apdu/apdu.h"
#include "src/base/cursor.h"
#include "src/base/err.h"

#include <string.h>

enum kv_apdu_case kv_capdu_case(const kv_capdu *c)
{
    if (c->lc == 0)
        return c->le == 0 ? KV_APDU_CASE_1 : KV_APDU_CASE_2;
    return c->le == 0 ? KV_APDU_CASE_3 : KV_APDU_CASE_4;
}

int kv_capdu_encode(const kv_capdu *c, uint8_t *out, size_t cap, size_t *outlen)
{
    int r = KV_ERR_APDU;
    int ext;
    size_t need, n = 0;

    if (c->lc > KV_APDU_EXT_LC_MAX || c->le > KV_APDU_EXT_LE_MAX || (c->lc > 0 && c->data == NULL))
        goto out;
    ext = c->extended || c->lc > KV_APDU_SHORT_LC_MAX || c->le > KV_APDU_SHORT_LE_MAX;
    /* case 1 has no length fields at all: it is the same in both forms */
    if (c->lc == 0 && c->le == 0)
        ext = 0;
    need = 4;
    if (c->lc > 0)
        need += (ext ? 3 : 1) + c->lc;
    if (c->le > 0)
        need += ext ? (c->lc > 0 ? 2 : 3) : 1;
    if (need > cap) {
        r = KV_ERR_BUFFER;
        goto out;
    }
    out[n++] = c->cla;
    out[n++] = c->ins;
    out[n++] = c->p1;
    out[n++] = c->p2;
    if (c->lc > 0) {
        if (ext) {
            out[n++] = 0x00;
            out[n++] = (uint8_t)(c->lc >> 8);
        }
        out[n++] = (uint8_t)c->lc;
        memcpy(out + n, c->data, c->lc);
        n += c->lc;
    }
    if (c->le > 0) {
        /* 256 short and 65536 extended are encoded as zeros (ISO/IEC 7816-3 §12.1.3) */
        uint32_t le = c->le;
        if (ext) {
            if (c->lc == 0)
                out[n++] = 0x00;
            out[n++] = (uint8_t)((le == KV_APDU_EXT_LE_MAX ? 0 : le) >> 8);
            out[n++] = (uint8_t)(le == KV_APDU_EXT_LE_MAX ? 0 : le);
        } else {
            out[n++] = (uint8_t)(le == KV_APDU_SHORT_LE_MAX ? 0 : le);
        }
    }
    *outlen = n;
    r = 0;
out:
    return r;
}

int kv_capdu_parse(const uint8_t *p, size_t len, kv_capdu *c)
{
    int r = KV_ERR_APDU;
    kv_cursor cur;
    uint8_t b5, b;
    uint16_t v;
    const uint8_t *data;

    memset(c, 0, sizeof(*c));
    kv_cursor_init(&cur, p, len);
    if (kv_cursor_u8(&cur, &c->cla) != 0 || kv_cursor_u8(&cur, &c->ins) != 0 ||
        kv_cursor_u8(&cur, &c->p1) != 0 || kv_cursor_u8(&cur, &c->p2) != 0)
        goto out;
    if (kv_cursor_left(&cur) == 0) { /* case 1 */
        r = 0;
        goto out;
    }
    if (kv_cursor_u8(&cur, &b5) != 0)
        goto out;
    if (kv_cursor_left(&cur) == 0) { /* case 2S */
        c->le = b5 == 0 ? KV_APDU_SHORT_LE_MAX : b5;
        r = 0;
        goto out;
    }
    if (b5 != 0) { /* case 3S or 4S: Lc = b5 */
        if (kv_cursor_take(&cur, b5, &data) != 0)
            goto out;
        c->data = data;
        c->lc = b5;
        if (kv_cursor_left(&cur) == 0) {
            r = 0;
            goto out;
        }
        if (kv_cursor_u8(&cur, &b) != 0 || kv_cursor_left(&cur) != 0)
            goto out;
        c->le = b == 0 ? KV_APDU_SHORT_LE_MAX : b;
        r = 0;
        goto out;
    }
    /* b5 == 00 and more bytes follow: extended form */
    c->extended = 1;
    if (kv_cursor_u16be(&cur, &v) != 0)
        goto out;
    if (kv_cursor_left(&cur) == 0) { /* case 2E */
        c->le = v == 0 ? KV_APDU_EXT_LE_MAX : v;
        r = 0;
        goto out;
    }
    if (v == 0) /* extended Lc of zero is not a valid encoding */
        goto out;
    if (kv_cursor_take(&cur, v, &data) != 0)
        goto out;
    c->data = data;
    c->lc = v;
    if (kv_cursor_left(&cur) == 0) { /* case 3E */
        r = 0;
        goto out;
    }
    if (kv_cursor_u16be(&cur, &v) != 0 || kv_cursor_left(&cur) != 0)
        goto out;
    c->le = v == 0 ? KV_APDU_EXT_LE_MAX : v; /* case 4E */
    r = 0;
out:
    return r;
}

int kv_rapdu_parse(const uint8_t *p, size_t len, kv_rapdu *r)
{
    if (len < 2)
        return KV_ERR_APDU;
    r->len = len - 2;
    r->data = r->len ? p : NULL;
    r->sw = kv_sw_of(p, len);
    return 0;
}

/* Exact status words; families (61xx, 6Cxx, 63Cx) are handled in code. */
static const struct {
    uint16_t sw;
    int err;
    const char *text;
} kv_sw_table[] = {
    {0x9000, 0, "normal processing"},
    {0x6200, KV_ERR_CARD_SW, "warning: state of non-volatile memory unchanged"},
    {0x6281, KV_ERR_CARD_SW, "warning: part of returned data may be corrupted"},
    {0x6282, KV_ERR_CARD_SW, "warning: end of file or record reached before reading Le bytes"},
    {0x6283, KV_ERR_CARD_BLOCKED, "warning: selected file invalidated (application blocked)"},
    {0x6284, KV_ERR_CARD_SW, "warning: FCI not formatted according to ISO 7816-4"},
    {0x6300, KV_ERR_CARD_VERIFY, "warning: authentication failed"},
    {0x6400, KV_ERR_CARD_SW, "error: state of non-volatile memory unchanged"},
    {0x6500, KV_ERR_CARD_SW, "error: state of non-volatile memory changed"},
    {0x6581, KV_ERR_CARD_SW, "error: memory failure"},
    {0x6700, KV_ERR_CARD_LENGTH, "wrong length"},
    {0x6800, KV_ERR_CARD_INS, "functions in CLA not supported"},
    {0x6881, KV_ERR_CARD_INS, "logical channel not supported"},
    {0x6882, KV_ERR_CARD_INS, "secure messaging not supported"},
    {0x6900, KV_ERR_CARD_SW, "command not allowed"},
    {0x6981, KV_ERR_CARD_SW, "command incompatible with file structure"},
    {0x6982, KV_ERR_CARD_SECURITY, "security status not satisfied"},
    {0x6983, KV_ERR_PIN_BLOCKED, "authentication method blocked"},
    {0x6984, KV_ERR_CARD_SECURITY, "referenced data invalidated"},
    {0x6985, KV_ERR_CONDITIONS, "conditions of use not satisfied"},
    {0x6986, KV_ERR_CARD_SW, "command not allowed (no current EF)"},
    {0x6987, KV_ERR_CARD_SW, "expected secure messaging data objects missing"},
    {0x6988, KV_ERR_CARD_SW, "incorrect secure messaging data objects"},
    {0x6A80, KV_ERR_CARD_PARAM, "incorrect parameters in the data field"},
    {0x6A81, KV_ERR_CARD_BLOCKED, "function not supported (card or application blocked)"},
    {0x6A82, KV_ERR_CARD_NOT_FOUND, "file or application not found"},
    {0x6A83, KV_ERR_CARD_RECORD, "record not found"},
    {0x6A84, KV_ERR_CARD_SW, "not enough memory space in the file"},
    {0x6A85, KV_ERR_CARD_PARAM, "Lc inconsistent with TLV structure"},
    {0x6A86, KV_ERR_CARD_PARAM, "incorrect parameters P1 P2"},
    {0x6A87, KV_ERR_CARD_PARAM, "Lc inconsistent with P1 P2"},
    {0x6A88, KV_ERR_CARD_NO_DATA, "referenced data not found"},
    {0x6B00, KV_ERR_CARD_PARAM, "wrong parameters P1 P2"},
    {0x6D00, KV_ERR_CARD_INS, "instruction code not supported or invalid"},
    {0x6E00, KV_ERR_CARD_INS, "class not supported"},
    {0x6F00, KV_ERR_CARD_SW, "no precise diagnosis"},
};

const char *kv_sw_text(uint16_t sw)
{
    for (size_t i = 0; i < sizeof(kv_sw_table) / sizeof(kv_sw_table[0]); i++)
        if (kv_sw_table[i].sw == sw)
            return kv_sw_table[i].text;
    if ((sw & 0xFF00) == 0x6100)
        return "more data available (GET RESPONSE)";
    if ((sw & 0xFF00) == 0x6C00)
        return "wrong Le (exact length in SW2)";
    if ((sw & 0xFFF0) == 0x63C0)
        return "verification failed (tries left in SW2 low nibble)";
    if ((sw & 0xFF00) == 0x6200 || (sw & 0xFF00) == 0x6300)
        return "warning";
    return "unknown status";
}

int kv_sw_to_err(uint16_t sw)
{
    for (size_t i = 0; i < sizeof(kv_sw_table) / sizeof(kv_sw_table[0]); i++)
        if (kv_sw_table[i].sw == sw)
            return kv_sw_table[i].err;
    if ((sw & 0xFF00) == 0x6100)
        return 0;
    if ((sw & 0xFF00) == 0x6C00)
        return KV_ERR_CARD_LENGTH;
    if ((sw & 0xFFF0) == 0x63C0)
        return KV_ERR_CARD_VERIFY;
    return KV_ERR_CARD_SW;
}

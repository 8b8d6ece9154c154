/* see vpcd.h: frames as bytes (no socket here) */
#include "apdu/vcard/vpcd.h"
#include "src/base/err.h"

#include <string.h>

/* see vpcd.h */
int kv_vpcd_frame_parse(kv_cursor *c, kv_vpcd_frame *f)
{
    kv_cursor look = *c; /* commit to c only once the whole frame is there */
    const uint8_t *payload;
    uint16_t len;

    if (kv_cursor_u16be(&look, &len) != 0)
        return 0;
    if (len == 0)
        return KV_ERR_VPCD_FRAME;
    if (kv_cursor_take(&look, len, &payload) != 0)
        return 0;
    f->payload = payload;
    f->len = len;
    f->is_ctrl = len == 1;
    f->ctrl = len == 1 ? payload[0] : 0;
    *c = look;
    return 1;
}

/* see vpcd.h */
int kv_vpcd_frame_encode(const uint8_t *payload, size_t len, uint8_t *out, size_t cap,
                         size_t *outlen)
{
    if (len == 0 || len > 0xFFFF)
        return KV_ERR_ARG;
    if (cap < 2 || cap - 2 < len)
        return KV_ERR_BUFFER;
    out[0] = (uint8_t)(len >> 8);
    out[1] = (uint8_t)len;
    memcpy(out + 2, payload, len);
    *outlen = 2 + len;
    return 0;
}

/* see vpcd.h */
int kv_vpcd_frame_handle(kv_vcard *vc, const kv_vpcd_frame *f, uint8_t *out, size_t cap,
                         size_t *outlen)
{
    uint8_t body[KV_VCARD_RAPDU_MAX];
    size_t n = 0;
    int r;

    *outlen = 0;
    if (cap < KV_VPCD_REPLY_MAX)
        return KV_ERR_BUFFER;
    if (!f->is_ctrl) {
        if ((r = kv_vcard_process(vc, f->payload, f->len, body, sizeof(body), &n)) != 0)
            return r;
        return kv_vpcd_frame_encode(body, n, out, cap, outlen);
    }
    switch (f->ctrl) {
    case KV_VPCD_POWER_OFF:
        kv_vcard_power_off(vc);
        return 0;
    case KV_VPCD_POWER_ON:
        kv_vcard_power_on(vc);
        return 0;
    case KV_VPCD_RESET:
        kv_vcard_reset(vc);
        return 0;
    case KV_VPCD_GET_ATR:
        n = kv_vcard_atr(vc, body, sizeof(body));
        return kv_vpcd_frame_encode(body, n, out, cap, outlen);
    default:
        return 0; /* vpcd sends no other control byte; answering would desynchronise it */
    }
}

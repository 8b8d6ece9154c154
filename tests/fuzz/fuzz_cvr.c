/*
 * Fuzz target: the CVR decoder (apdu/cvr.h) on untrusted bytes, both as an
 * IAD and as the AC data of every CVN kortvagt verifies.
 *
 * Input: byte 0 picks the CVN (by index into the list below), the rest is
 * the IAD / AC data. Invariants: the layout is one of the enum values and
 * the CVR length fits it; a PIN is never "verified" together with "PIN try
 * limit exceeded"; an unknown layout never yields a verified PIN.
 *
 * Also the IAD side of apdu/ac_data.h on the same bytes: kv_iad_decode
 * agrees with kv_cvr_from_iad (layout, CVN, CVR bytes; cvn -1 exactly when
 * the layout is unknown), and kv_ac_data_build for the picked CVN either
 * fails or writes SD || AIP || ATC || tail within the buffer, whose CVR
 * (kv_cvr_from_ac_data) is the IAD's when both decoders see the same layout.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <string.h>

#include "apdu/ac_data.h"
#include "apdu/cvr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const kv_cvr_info *i)
{
    static const size_t len[] = {0, 3, 5, 6, 5};
    if ((unsigned)i->layout > KV_CVR_LAYOUT_CCD || i->cvr_len != len[i->layout])
        abort();
    if (i->offline_pin == KV_CVR_PIN_VERIFIED &&
        (i->pin_try_limit_exceeded || i->layout == KV_CVR_LAYOUT_UNKNOWN ||
         i->layout == KV_CVR_LAYOUT_VISA_2))
        abort();
    if (kv_cvr_layout_name(i->layout) == NULL || kv_cvr_pin_name(i->offline_pin) == NULL)
        abort();
}

/* kv_iad_decode is kv_cvr_from_iad seen through kv_iad_info. */
static void check_iad(const uint8_t *iad, size_t len, const kv_cvr_info *c)
{
    static const int layout_of[] = {KV_IAD_UNKNOWN, KV_IAD_VISA, KV_IAD_VISA_2, KV_IAD_MCHIP,
                                    KV_IAD_CCD};
    kv_iad_info info;
    int r = kv_iad_decode(iad, len, &info);

    if (r != 0) {
        if (c->layout != KV_CVR_LAYOUT_UNKNOWN || len >= 7)
            abort();
        return;
    }
    if (info.layout != layout_of[c->layout] || info.cvn != c->cvn || info.cvr_len != c->cvr_len ||
        memcmp(info.cvr, c->cvr, c->cvr_len) != 0)
        abort();
    if ((info.layout == KV_IAD_UNKNOWN) != (info.cvn < 0))
        abort();
    if (info.offline_pin_verified &&
        (info.offline_pin_failed || info.pin_try_limit_exceeded || !info.offline_pin_performed))
        abort();
}

/* The AC data of a CVN from these bytes as its IAD. */
static void check_ac_data(int cvn, const uint8_t *iad, size_t len, const kv_cvr_info *c)
{
    uint8_t sd[KV_AC_SD_LEN], aip[2] = {0x18, 0x00}, atc[2] = {0x00, 0x01}, out[96];
    size_t olen = 0;
    kv_cvr_info ac;
    int r;

    memset(sd, 0xA5, sizeof(sd));
    r = kv_ac_data_build(cvn, sd, aip, atc, iad, len, out, sizeof(out), &olen);
    if (r != 0)
        return;
    if (olen < KV_AC_SD_LEN + 4 || olen > sizeof(out) || memcmp(out, sd, KV_AC_SD_LEN) != 0)
        abort();
    kv_cvr_from_ac_data(cvn, out, olen, &ac);
    check(&ac);
    if (ac.layout != KV_CVR_LAYOUT_UNKNOWN && ac.layout == c->layout &&
        (ac.cvr_len != c->cvr_len || memcmp(ac.cvr, c->cvr, c->cvr_len) != 0))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int cvns[] = {10, 18, 22, 16, 17, 20, 21, 5, 6, 0};
    int cvn;
    kv_cvr_info info;
    if (size == 0)
        return 0;
    cvn = cvns[data[0] % (sizeof(cvns) / sizeof(cvns[0]))];
    kv_cvr_from_iad(data + 1, size - 1, &info);
    check(&info);
    check_iad(data + 1, size - 1, &info);
    check_ac_data(cvn, data + 1, size - 1, &info);
    kv_cvr_from_ac_data(cvn, data + 1, size - 1, &info);
    check(&info);
    return 0;
}

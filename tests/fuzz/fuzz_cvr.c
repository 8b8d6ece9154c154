/*
 * Fuzz target: the CVR decoder (apdu/cvr.h) on untrusted bytes, both as an
 * IAD and as the AC data of every CVN kortvagt verifies.
 *
 * Input: byte 0 picks the CVN (by index into the list below), the rest is
 * the IAD / AC data. Invariants: the layout is one of the enum values and
 * the CVR length fits it; a PIN is never "verified" together with "PIN try
 * limit exceeded"; an unknown layout never yields a verified PIN.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int cvns[] = {10, 18, 22, 16, 17, 20, 21, 5, 6, 0};
    kv_cvr_info info;
    if (size == 0)
        return 0;
    kv_cvr_from_iad(data + 1, size - 1, &info);
    check(&info);
    kv_cvr_from_ac_data(cvns[data[0] % (sizeof(cvns) / sizeof(cvns[0]))], data + 1, size - 1,
                        &info);
    check(&info);
    return 0;
}

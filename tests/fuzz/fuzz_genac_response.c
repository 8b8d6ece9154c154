/*
 * Fuzz target: the GENERATE AC response parser (apdu/emv_txn.h
 * kv_genac_parse, formats 1 and 2), the IAD/CVR decoder and the COMPUTE
 * CRYPTOGRAPHIC CHECKSUM answer parser on the same bytes.
 *
 * Input: the card's answer data (SW removed). Invariants checked after a
 * successful parse: format 1 or 2; IAD at most 32 bytes; a format 2 answer
 * without 9F26 carries a 9F4B lying inside the input; the IAD decoder
 * accepts any IAD the parser returned or says KV_ERR_CARD_DATA.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "apdu/emv_txn.h"
#include "src/base/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kv_genac_resp g;
    kv_iad_info info;
    kv_cc_resp cc;
    int r;

    r = kv_genac_parse(data, size, &g);
    if (r == 0) {
        if (g.format != 1 && g.format != 2)
            abort();
        if (g.iad_len > KV_IAD_MAX)
            abort();
        if (!g.has_ac && (g.sdad == NULL || g.format != 2))
            abort();
        if (g.sdad != NULL && (g.sdad < data || g.sdad + g.sdad_len > data + size))
            abort();
        r = kv_iad_decode(g.iad, g.iad_len, &info);
        if (r != 0 && r != KV_ERR_CARD_DATA)
            abort();
        if (r == 0 && info.offline_pin_verified &&
            (!info.offline_pin_performed || info.offline_pin_failed))
            abort();
    } else if (r != KV_ERR_CARD_DATA) {
        abort();
    }
    r = kv_iad_decode(data, size > KV_IAD_MAX ? KV_IAD_MAX : size, &info);
    if (r != 0 && r != KV_ERR_CARD_DATA)
        abort();
    r = kv_cc_parse(size ? data : NULL, size, &cc);
    if (r != 0 && r != KV_ERR_CARD_DATA)
        abort();
    return 0;
}

/*
 * libFuzzer target for the data object lists of apdu/dol.h (PDOL, CDOL1/2,
 * DDOL from the card): parsing never crashes, and when a DOL parses, the
 * data built for it from the terminal profile is exactly as long as the DOL
 * asks for.
 */
#include <stdint.h>
#include <stdlib.h>

#include "apdu/dol.h"
#include "src/base/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kv_dol_entry e[KV_DOL_MAX_ENTRIES];
    size_t n = 0, total = 0, sum = 0, built = 0;
    static uint8_t out[KV_DOL_MAX_ENTRIES * 256];
    kv_terminal t;
    int r = kv_dol_parse(data, size, e, KV_DOL_MAX_ENTRIES, &n);

    if (r != 0) {
        if (r != KV_ERR_DOL && r != KV_ERR_BUFFER)
            abort();
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        sum += e[i].len;
    if (kv_dol_data_len(data, size, &total) != 0 || total != sum)
        abort();
    if (kv_terminal_init(&t) != 0)
        abort();
    r = kv_dol_build(data, size, &t, NULL, NULL, out, sizeof(out), &built);
    if (r == 0 && built != total)
        abort();
    if (r != 0 && r != KV_ERR_BUFFER)
        abort();
    return 0;
}

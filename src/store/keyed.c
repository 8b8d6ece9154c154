/* see keyed.h */
#include "src/store/keyed.h"
#include "src/base/err.h"

#include <string.h>

int kv_pan_valid(const char *pan)
{
    size_t n;
    if (pan == NULL)
        return 0;
    n = strlen(pan);
    if (n < 12 || n > 19)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (pan[i] < '0' || pan[i] > '9')
            return 0;
    return 1;
}

int kv_pan_token(const kv_mac *token_key, const char *pan, uint8_t out[32])
{
    if (!kv_pan_valid(pan))
        return KV_ERR_ARG;
    return kv_mac_compute(token_key, (const uint8_t *)pan, strlen(pan), out);
}

/* see hex.h */
#include "src/base/hex.h"
#include "src/base/err.h"

#include <string.h>

int kv_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int kv_hex_decode(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;

    for (const char *p = hex; *p != '\0'; p++) {
        int v;
        if (*p == ' ')
            continue;
        if ((v = kv_hex_digit(*p)) < 0)
            return KV_ERR_FORMAT;
        if (hi < 0) {
            hi = v;
            continue;
        }
        if (n >= cap)
            return KV_ERR_BUFFER;
        out[n++] = (uint8_t)(hi << 4 | v);
        hi = -1;
    }
    if (hi >= 0)
        return KV_ERR_FORMAT;
    return (int)n;
}

void kv_hex_encode(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

int kv_is_digits(const char *s, size_t min, size_t max)
{
    size_t n = 0;
    if (s == NULL)
        return 0;
    for (; s[n] != '\0'; n++)
        if (s[n] < '0' || s[n] > '9')
            return 0;
    return n >= min && n <= max;
}

void kv_pan_mask(const char *pan, char *out)
{
    size_t n = strlen(pan);
    size_t keep_head = n >= 11 ? 6 : 0;
    for (size_t i = 0; i < n; i++)
        out[i] = (i < keep_head || i + 4 >= n) ? pan[i] : '*';
    out[n] = '\0';
}

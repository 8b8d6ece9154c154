/* see cursor.h */
#include "src/base/cursor.h"
#include "src/base/err.h"

#include <string.h>

void kv_cursor_init(kv_cursor *c, const uint8_t *p, size_t len)
{
    c->p = len ? p : NULL;
    c->left = len;
}

int kv_cursor_take(kv_cursor *c, size_t n, const uint8_t **out)
{
    if (c->left < n)
        return KV_ERR_TRUNCATED;
    *out = c->p;
    if (n > 0) {
        c->p += n;
        c->left -= n;
    }
    return 0;
}

int kv_cursor_skip(kv_cursor *c, size_t n)
{
    const uint8_t *dummy;
    return kv_cursor_take(c, n, &dummy);
}

int kv_cursor_sub(kv_cursor *c, size_t n, kv_cursor *sub)
{
    const uint8_t *p;
    int r;
    if ((r = kv_cursor_take(c, n, &p)) != 0)
        return r;
    kv_cursor_init(sub, p, n);
    return 0;
}

int kv_cursor_copy(kv_cursor *c, uint8_t *out, size_t n)
{
    const uint8_t *p;
    int r;
    if ((r = kv_cursor_take(c, n, &p)) != 0)
        return r;
    if (n > 0)
        memcpy(out, p, n);
    return 0;
}

int kv_cursor_peek(const kv_cursor *c, uint8_t *v)
{
    if (c->left < 1)
        return KV_ERR_TRUNCATED;
    *v = c->p[0];
    return 0;
}

int kv_cursor_u8(kv_cursor *c, uint8_t *v)
{
    const uint8_t *p;
    int r;
    if ((r = kv_cursor_take(c, 1, &p)) != 0)
        return r;
    *v = p[0];
    return 0;
}

int kv_cursor_u16be(kv_cursor *c, uint16_t *v)
{
    const uint8_t *p;
    int r;
    if ((r = kv_cursor_take(c, 2, &p)) != 0)
        return r;
    *v = (uint16_t)(p[0] << 8 | p[1]);
    return 0;
}

int kv_cursor_u32be(kv_cursor *c, uint32_t *v)
{
    const uint8_t *p;
    int r;
    if ((r = kv_cursor_take(c, 4, &p)) != 0)
        return r;
    *v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    return 0;
}

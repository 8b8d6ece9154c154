/*
 * A bounded cursor over untrusted bytes (card responses, vpcd frames, HTTP
 * bodies, hex from JSON). Every read checks the remaining length first; a
 * failed read leaves the cursor where it was. Fixed-size context: the caller
 * owns it and the bytes it points at, no free.
 */
#ifndef KV_BASE_CURSOR_H
#define KV_BASE_CURSOR_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const uint8_t *p; /* next unread byte */
    size_t left;      /* bytes left to read */
} kv_cursor;

/* Point c at len bytes at p (p may be NULL when len is 0). */
void kv_cursor_init(kv_cursor *c, const uint8_t *p, size_t len);

static inline size_t kv_cursor_left(const kv_cursor *c)
{
    return c->left;
}

/* Each returns 0 or KV_ERR_TRUNCATED (cursor unchanged). */
int kv_cursor_u8(kv_cursor *c, uint8_t *v);
int kv_cursor_u16be(kv_cursor *c, uint16_t *v);
int kv_cursor_u32be(kv_cursor *c, uint32_t *v);
/* Copy n bytes into out. */
int kv_cursor_copy(kv_cursor *c, uint8_t *out, size_t n);
/* Point *out at the next n bytes (inside the cursor's buffer) and skip them. */
int kv_cursor_take(kv_cursor *c, size_t n, const uint8_t **out);
/* Take n bytes as a sub-cursor. */
int kv_cursor_sub(kv_cursor *c, size_t n, kv_cursor *sub);
int kv_cursor_skip(kv_cursor *c, size_t n);
/* Look at the next byte without consuming it. */
int kv_cursor_peek(const kv_cursor *c, uint8_t *v);

#endif

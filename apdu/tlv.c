/* see tlv.h */
#include "apdu/tlv.h"
#include "src/base/err.h"

#include <string.h>

/* EMV Book 3 Annex B1: bits b5..b1 of the first tag byte all set mean "more tag bytes follow". */
#define TLV_TAG_MORE 0x1F
#define TLV_CONSTRUCTED 0x20

/* Padding allowed before, between and after objects (EMV Book 3 Annex B, ISO/IEC 7816-4 5.2.2). */
static inline int tlv_is_padding(uint8_t b)
{
    return (uint8_t)(b + 1) <= 1; /* 0xFF -> 0, 0x00 -> 1 */
}

#if defined(__GNUC__)
#define TLV_INLINE static inline __attribute__((always_inline))
#define TLV_LIKELY(x) __builtin_expect(!!(x), 1)
#else
#define TLV_INLINE static inline
#define TLV_LIKELY(x) (x)
#endif

/*
 * Decode the object whose first byte (not padding) is at p, with end the end
 * of the enclosing data (p < end). Works on plain pointers: the bounds are
 * checked once per field, not once per byte through a cursor, and the common
 * case (a 1- or 2-byte tag, a short length) takes no loop. Fills *t and
 * returns 0, or an error with *t untouched:
 *   KV_ERR_TRUNCATED      tag or length field cut off
 *   KV_ERR_TLV_TAG        a third tag byte with b8 set (a tag of 4 or more bytes)
 *   KV_ERR_TLV_INDEFINITE length byte 80
 *   KV_ERR_TLV_LENGTH     length byte 85..FF
 *   KV_ERR_TLV_OVERLONG   value past end
 */
TLV_INLINE int tlv_decode(const uint8_t *p, const uint8_t *end, kv_tlv *t)
{
    const uint8_t *q = p + 1;
    uint32_t tag = p[0];
    uint8_t tag_len = 1, b;
    size_t len, left;

    /* EMV Book 3 Annex B1: b5..b1 of the first tag byte all set: more tag bytes follow, each
     * with b8 set while another one comes; a tag has at most 3 bytes. */
    if ((tag & TLV_TAG_MORE) == TLV_TAG_MORE) {
        if (q == end)
            return KV_ERR_TRUNCATED;
        b = *q++;
        tag = tag << 8 | b;
        tag_len = 2;
        if (b & 0x80) {
            if (q == end)
                return KV_ERR_TRUNCATED;
            b = *q++;
            tag = tag << 8 | b;
            tag_len = 3;
            if (b & 0x80)
                return KV_ERR_TLV_TAG;
        }
    }
    if (q == end)
        return KV_ERR_TRUNCATED;
    b = *q++;
    left = (size_t)(end - q);
    if (TLV_LIKELY(b < 0x80)) {
        len = b;
    } else {
        unsigned n = b & 0x7F;
        if (b == 0x80)
            return KV_ERR_TLV_INDEFINITE; /* EMV allows definite lengths only */
        if (b > 0x84)
            return KV_ERR_TLV_LENGTH;
        if (left < n)
            return KV_ERR_TRUNCATED;
        len = 0;
        for (unsigned i = 0; i < n; i++)
            len = len << 8 | q[i];
        q += n;
        left -= n;
    }
    if (left < len)
        return KV_ERR_TLV_OVERLONG;
    t->tag = tag;
    t->tag_len = tag_len;
    t->constructed = (p[0] & TLV_CONSTRUCTED) != 0;
    t->value = len ? q : NULL;
    t->len = len;
    t->raw = p;
    t->raw_len = (size_t)(q - p) + len;
    return 0;
}

int kv_tlv_next(kv_cursor *c, kv_tlv *out)
{
    const uint8_t *p = c->p, *end;
    size_t left = c->left;
    int r;

    while (left > 0 && tlv_is_padding(*p)) {
        p++;
        left--;
    }
    if (left == 0) {
        c->p = p;
        c->left = 0;
        return 0;
    }
    end = p + left;
    if ((r = tlv_decode(p, end, out)) != 0)
        return r;
    c->p = p + out->raw_len;
    c->left = left - out->raw_len;
    return 1;
}

/* What tlv_iterate does with each object. */
enum tlv_mode {
    TLV_VALIDATE, /* nothing */
    TLV_VISIT,    /* call fn */
    TLV_FIND,     /* stop at the first object with the tag */
};

/*
 * Depth-first traversal without recursion: the end of each open constructed
 * object and where its parent continues are kept on a fixed stack. A
 * constructed object at depth d opens nesting level d + 1, which may not
 * exceed KV_TLV_MAX_DEPTH. Inlined into each entry point with mode a
 * constant, so validation and search pay for no callback.
 */
TLV_INLINE int tlv_iterate(const uint8_t *p, size_t len, enum tlv_mode mode, kv_tlv_visit_fn fn,
                           void *arg, uint32_t tag, kv_tlv *found, size_t *bad_offset)
{
    struct {
        const uint8_t *next, *end;
    } stack[KV_TLV_MAX_DEPTH];
    const uint8_t *const base = p, *end, *q = p;
    unsigned depth = 0;
    kv_tlv t;
    int r;

    if (p == NULL || len == 0)
        return 0;
    end = p + len;
    for (;;) {
        while (q < end && tlv_is_padding(*q))
            q++;
        if (q == end) {
            if (depth == 0)
                return 0;
            depth--;
            q = stack[depth].next;
            end = stack[depth].end;
            continue;
        }
        if ((r = tlv_decode(q, end, &t)) != 0)
            goto fail;
        if (t.constructed && depth >= KV_TLV_MAX_DEPTH) {
            r = KV_ERR_TLV_DEPTH;
            goto fail;
        }
        if (mode == TLV_VISIT && (r = fn(&t, depth, arg)) != 0)
            return r;
        if (mode == TLV_FIND && t.tag == tag) {
            *found = t;
            return 1;
        }
        if (t.constructed) {
            stack[depth].next = q + t.raw_len;
            stack[depth].end = end;
            depth++;
            end = q + t.raw_len;
            q = t.value != NULL ? t.value : end;
        } else {
            q += t.raw_len;
        }
    }
fail:
    if (bad_offset != NULL)
        *bad_offset = (size_t)(q - base);
    return r;
}

int kv_tlv_validate(const uint8_t *p, size_t len)
{
    return tlv_iterate(p, len, TLV_VALIDATE, NULL, NULL, 0, NULL, NULL);
}

int kv_tlv_validate_offset(const uint8_t *p, size_t len, size_t *bad_offset)
{
    return tlv_iterate(p, len, TLV_VALIDATE, NULL, NULL, 0, NULL, bad_offset);
}

int kv_tlv_walk(const uint8_t *p, size_t len, kv_tlv_visit_fn fn, void *arg)
{
    if (fn == NULL)
        return kv_tlv_validate(p, len);
    return tlv_iterate(p, len, TLV_VISIT, fn, arg, 0, NULL, NULL);
}

int kv_tlv_find(const uint8_t *p, size_t len, uint32_t tag, kv_tlv *out)
{
    kv_tlv t;
    int r = tlv_iterate(p, len, TLV_FIND, NULL, NULL, tag, &t, NULL);
    if (r == 1) {
        *out = t;
        return 0;
    }
    return r == 0 ? KV_ERR_NOT_FOUND : r;
}

/* --- encoder --- */

static size_t tlv_tag_size(uint32_t tag)
{
    if (tag <= 0xFF)
        return 1;
    if (tag <= 0xFFFF)
        return 2;
    if (tag <= 0xFFFFFF)
        return 3;
    return 4;
}

static size_t tlv_length_size(size_t len)
{
    if (len < 0x80)
        return 1;
    if (len <= 0xFF)
        return 2;
    if (len <= 0xFFFF)
        return 3;
    if (len <= 0xFFFFFF)
        return 4;
    return 5;
}

size_t kv_tlv_header_size(uint32_t tag, size_t len)
{
    return tlv_tag_size(tag) + tlv_length_size(len);
}

/* A tag the decoder would read back as the same 1-3 byte tag (EMV Book 3 Annex B1). */
int kv_tlv_tag_is_valid(uint32_t tag)
{
    uint8_t b0, b1, b2;

    switch (tlv_tag_size(tag)) {
    case 1:
        b0 = (uint8_t)tag;
        return !tlv_is_padding(b0) && (b0 & TLV_TAG_MORE) != TLV_TAG_MORE;
    case 2:
        b0 = (uint8_t)(tag >> 8);
        b1 = (uint8_t)tag;
        return !tlv_is_padding(b0) && (b0 & TLV_TAG_MORE) == TLV_TAG_MORE && (b1 & 0x80) == 0;
    case 3:
        b0 = (uint8_t)(tag >> 16);
        b1 = (uint8_t)(tag >> 8);
        b2 = (uint8_t)tag;
        return !tlv_is_padding(b0) && (b0 & TLV_TAG_MORE) == TLV_TAG_MORE && (b1 & 0x80) != 0 &&
               (b2 & 0x80) == 0;
    default:
        return 0;
    }
}

void kv_tlv_writer_init(kv_tlv_writer *w, uint8_t *buf, size_t cap)
{
    memset(w, 0, sizeof(*w));
    w->buf = buf;
    w->cap = buf != NULL ? cap : 0;
}

static int tlv_fail(kv_tlv_writer *w, int err)
{
    if (w->err == 0)
        w->err = err;
    return w->err;
}

static void tlv_write_tag(uint8_t *out, uint32_t tag, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)(tag >> (8 * (n - 1 - i)));
}

/* Writes the length field of tlv_length_size(len) bytes (len <= 0xFFFFFFFF). */
static void tlv_write_length(uint8_t *out, size_t len)
{
    size_t n = tlv_length_size(len);
    if (n == 1) {
        out[0] = (uint8_t)len;
        return;
    }
    out[0] = (uint8_t)(0x80 | (n - 1));
    for (size_t i = 1; i < n; i++)
        out[i] = (uint8_t)(len >> (8 * (n - 1 - i)));
}

int kv_tlv_put(kv_tlv_writer *w, uint32_t tag, const uint8_t *value, size_t len)
{
    size_t tn, ln;

    if (w->err != 0)
        return w->err;
    if (!kv_tlv_tag_is_valid(tag) || (len > 0 && value == NULL))
        return tlv_fail(w, KV_ERR_ARG);
    if (len > 0xFFFFFFFFu)
        return tlv_fail(w, KV_ERR_TLV_LENGTH);
    tn = tlv_tag_size(tag);
    ln = tlv_length_size(len);
    if (w->cap - w->len < tn + ln || w->cap - w->len - tn - ln < len)
        return tlv_fail(w, KV_ERR_BUFFER);
    tlv_write_tag(w->buf + w->len, tag, tn);
    tlv_write_length(w->buf + w->len + tn, len);
    if (len > 0)
        memmove(w->buf + w->len + tn + ln, value, len); /* value may lie in buf */
    w->len += tn + ln + len;
    return 0;
}

int kv_tlv_put_raw(kv_tlv_writer *w, const uint8_t *p, size_t len)
{
    if (w->err != 0)
        return w->err;
    if (len > 0 && p == NULL)
        return tlv_fail(w, KV_ERR_ARG);
    if (w->cap - w->len < len)
        return tlv_fail(w, KV_ERR_BUFFER);
    if (len > 0)
        memmove(w->buf + w->len, p, len);
    w->len += len;
    return 0;
}

int kv_tlv_begin(kv_tlv_writer *w, uint32_t tag)
{
    size_t tn;

    if (w->err != 0)
        return w->err;
    if (!kv_tlv_tag_is_valid(tag) ||
        ((tag >> (8 * (tlv_tag_size(tag) - 1))) & TLV_CONSTRUCTED) == 0)
        return tlv_fail(w, KV_ERR_ARG);
    if (w->depth >= KV_TLV_MAX_DEPTH)
        return tlv_fail(w, KV_ERR_TLV_DEPTH);
    tn = tlv_tag_size(tag);
    /* One length byte is reserved; kv_tlv_end widens it when the content needs more. */
    if (w->cap - w->len < tn + 1)
        return tlv_fail(w, KV_ERR_BUFFER);
    tlv_write_tag(w->buf + w->len, tag, tn);
    w->buf[w->len + tn] = 0;
    w->open[w->depth++] = w->len;
    w->len += tn + 1;
    return 0;
}

int kv_tlv_end(kv_tlv_writer *w)
{
    size_t start, tn, content_at, content_len, ln;

    if (w->err != 0)
        return w->err;
    if (w->depth == 0)
        return tlv_fail(w, KV_ERR_ARG);
    start = w->open[w->depth - 1];
    if ((w->buf[start] & TLV_TAG_MORE) == TLV_TAG_MORE)
        tn = (w->buf[start + 1] & 0x80) != 0 ? 3 : 2;
    else
        tn = 1;
    content_at = start + tn + 1;
    content_len = w->len - content_at;
    if (content_len > 0xFFFFFFFFu)
        return tlv_fail(w, KV_ERR_TLV_LENGTH);
    ln = tlv_length_size(content_len);
    if (ln > 1) {
        if (w->cap - w->len < ln - 1)
            return tlv_fail(w, KV_ERR_BUFFER);
        memmove(w->buf + content_at + ln - 1, w->buf + content_at, content_len);
        w->len += ln - 1;
    }
    tlv_write_length(w->buf + start + tn, content_len);
    w->depth--;
    return 0;
}

int kv_tlv_finish(kv_tlv_writer *w)
{
    if (w->err != 0)
        return w->err;
    if (w->depth != 0)
        return tlv_fail(w, KV_ERR_ARG);
    return 0;
}

/* see tlv.h */
#include "apdu/tlv.h"
#include "src/base/err.h"

#include <string.h>

/* EMV Book 3 Annex B1: bits b5..b1 of the first tag byte all set mean "more tag bytes follow". */
#define TLV_TAG_MORE 0x1F
#define TLV_CONSTRUCTED 0x20

/* Padding allowed before, between and after objects (EMV Book 3 Annex B, ISO/IEC 7816-4 5.2.2). */
static int tlv_is_padding(uint8_t b)
{
    return b == 0x00 || b == 0xFF;
}

static int tlv_read_tag(kv_cursor *c, uint32_t *tag, uint8_t *tag_len)
{
    uint8_t b;
    uint32_t t;
    uint8_t n = 1;
    int r;

    if ((r = kv_cursor_u8(c, &b)) != 0)
        return r;
    t = b;
    if ((b & TLV_TAG_MORE) == TLV_TAG_MORE) {
        /* EMV Book 3 Annex B1: subsequent bytes continue while b8 is set. */
        for (;;) {
            if ((r = kv_cursor_u8(c, &b)) != 0)
                return r;
            t = t << 8 | b;
            n++;
            if ((b & 0x80) == 0)
                break;
            if (n == 3)
                return KV_ERR_TLV_TAG;
        }
    }
    *tag = t;
    *tag_len = n;
    return 0;
}

static int tlv_read_length(kv_cursor *c, size_t *len)
{
    uint8_t b;
    size_t v = 0;
    int r;

    if ((r = kv_cursor_u8(c, &b)) != 0)
        return r;
    if (b < 0x80) {
        *len = b;
        return 0;
    }
    if (b == 0x80)
        return KV_ERR_TLV_INDEFINITE; /* EMV allows definite lengths only */
    if (b > 0x84)
        return KV_ERR_TLV_LENGTH;
    for (unsigned i = 0; i < (unsigned)(b & 0x7F); i++) {
        uint8_t d;
        if ((r = kv_cursor_u8(c, &d)) != 0)
            return r;
        v = v << 8 | d;
    }
    *len = v;
    return 0;
}

/*
 * kv_tlv_next with the start of the failing object reported in *err_at (the
 * first byte after any padding), so that callers can name an offset.
 */
static int tlv_next_at(kv_cursor *c, kv_tlv *out, const uint8_t **err_at)
{
    kv_cursor w = *c;
    const uint8_t *start;
    kv_tlv t;
    uint8_t b;
    int r;

    while (kv_cursor_peek(&w, &b) == 0 && tlv_is_padding(b))
        (void)kv_cursor_skip(&w, 1);
    if (kv_cursor_left(&w) == 0) {
        *c = w;
        return 0;
    }
    start = w.p;
    *err_at = start;
    if ((r = tlv_read_tag(&w, &t.tag, &t.tag_len)) != 0)
        return r;
    if ((r = tlv_read_length(&w, &t.len)) != 0)
        return r;
    if (kv_cursor_left(&w) < t.len)
        return KV_ERR_TLV_OVERLONG;
    if ((r = kv_cursor_take(&w, t.len, &t.value)) != 0)
        return r;
    if (t.len == 0)
        t.value = NULL;
    t.constructed = (start[0] & TLV_CONSTRUCTED) != 0;
    t.raw = start;
    t.raw_len = (size_t)(w.p - start);
    *c = w;
    *out = t;
    return 1;
}

int kv_tlv_next(kv_cursor *c, kv_tlv *out)
{
    const uint8_t *err_at = NULL;
    return tlv_next_at(c, out, &err_at);
}

/*
 * Depth-first traversal without recursion: one cursor per open constructed
 * object. A constructed object at depth d opens nesting level d + 1, which
 * may not exceed KV_TLV_MAX_DEPTH. fn may be NULL (validation only).
 */
static int tlv_iterate(const uint8_t *p, size_t len, kv_tlv_visit_fn fn, void *arg,
                       size_t *bad_offset)
{
    kv_cursor stack[KV_TLV_MAX_DEPTH + 1];
    unsigned depth = 0;
    const uint8_t *err_at = p;
    kv_tlv t;
    int r;

    kv_cursor_init(&stack[0], p, len);
    for (;;) {
        r = tlv_next_at(&stack[depth], &t, &err_at);
        if (r < 0)
            goto out;
        if (r == 0) {
            if (depth == 0)
                break;
            depth--;
            continue;
        }
        if (t.constructed && depth >= KV_TLV_MAX_DEPTH) {
            err_at = t.raw;
            r = KV_ERR_TLV_DEPTH;
            goto out;
        }
        if (fn != NULL && (r = fn(&t, depth, arg)) != 0)
            return r;
        if (t.constructed) {
            depth++;
            kv_cursor_init(&stack[depth], t.value, t.len);
        }
    }
    r = 0;
out:
    if (r < 0 && bad_offset != NULL)
        *bad_offset = err_at != NULL && p != NULL ? (size_t)(err_at - p) : 0;
    return r;
}

int kv_tlv_validate(const uint8_t *p, size_t len)
{
    return tlv_iterate(p, len, NULL, NULL, NULL);
}

int kv_tlv_validate_offset(const uint8_t *p, size_t len, size_t *bad_offset)
{
    return tlv_iterate(p, len, NULL, NULL, bad_offset);
}

int kv_tlv_walk(const uint8_t *p, size_t len, kv_tlv_visit_fn fn, void *arg)
{
    return tlv_iterate(p, len, fn, arg, NULL);
}

struct tlv_find_ctx {
    uint32_t tag;
    kv_tlv *out;
};

static int tlv_find_visit(const kv_tlv *t, unsigned depth, void *arg)
{
    struct tlv_find_ctx *ctx = arg;
    (void)depth;
    if (t->tag != ctx->tag)
        return 0;
    *ctx->out = *t;
    return 1;
}

int kv_tlv_find(const uint8_t *p, size_t len, uint32_t tag, kv_tlv *out)
{
    struct tlv_find_ctx ctx = {tag, out};
    int r = tlv_iterate(p, len, tlv_find_visit, &ctx, NULL);
    if (r == 1)
        return 0;
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

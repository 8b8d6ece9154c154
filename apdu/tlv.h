/*
 * BER-TLV as used by EMV (EMV Book 3 Annex B).
 *
 * Decoding allocates nothing: a kv_tlv points into the caller's buffer, which
 * must outlive it. Tags are 1-3 bytes and kept as the big-endian integer of
 * their bytes (0x9F02, 0xBF0C, 0x5F2D...). Lengths are definite, short form or
 * long form with 1-4 length bytes. 0x00 and 0xFF bytes between objects are
 * padding and skipped. Errors are distinct:
 *   KV_ERR_TRUNCATED      tag or length field cut off
 *   KV_ERR_TLV_TAG        tag of more than 3 bytes
 *   KV_ERR_TLV_LENGTH     more than 4 length bytes (0x85..0xFE, 0xFF)
 *   KV_ERR_TLV_INDEFINITE indefinite length (0x80)
 *   KV_ERR_TLV_OVERLONG   value runs past the end of the enclosing data
 *   KV_ERR_TLV_DEPTH      constructed nesting deeper than KV_TLV_MAX_DEPTH
 */
#ifndef KV_APDU_TLV_H
#define KV_APDU_TLV_H

#include <stddef.h>
#include <stdint.h>

#include "apdu/cursor.h"

#define KV_TLV_MAX_DEPTH 10

typedef struct {
    uint32_t tag;         /* tag bytes as a big-endian integer */
    uint8_t tag_len;      /* 1..3 */
    uint8_t constructed;  /* bit 6 of the first tag byte */
    const uint8_t *value; /* into the decoded buffer; NULL when len is 0 */
    size_t len;           /* value length */
    const uint8_t *raw;   /* the whole object (tag, length, value) */
    size_t raw_len;
} kv_tlv;

/*
 * Read the next object at c, skipping 00/FF padding before it. Returns 1 and
 * fills *out, 0 when only padding (or nothing) is left, or a negative error
 * (cursor unchanged on error).
 */
int kv_tlv_next(kv_cursor *c, kv_tlv *out);

/*
 * Check that len bytes at p are a sequence of well-formed objects, descending
 * into constructed ones down to KV_TLV_MAX_DEPTH. Returns 0 or an error.
 */
int kv_tlv_validate(const uint8_t *p, size_t len);

/*
 * Depth-first search for the first object with this tag in len bytes at p,
 * descending into constructed objects. Returns 0 (found, *out filled),
 * KV_ERR_NOT_FOUND, or a decoding error met before the tag was found.
 */
int kv_tlv_find(const uint8_t *p, size_t len, uint32_t tag, kv_tlv *out);

/*
 * Visit every object depth-first (parent before children). depth is 0 at the
 * top. A non-zero return from fn stops the walk and is returned.
 */
typedef int (*kv_tlv_visit_fn)(const kv_tlv *t, unsigned depth, void *arg);
int kv_tlv_walk(const uint8_t *p, size_t len, kv_tlv_visit_fn fn, void *arg);

/* Number of bytes the tag and the length field of (tag, len) take when encoded. */
size_t kv_tlv_header_size(uint32_t tag, size_t len);

/*
 * Encoder into a caller buffer. Errors are sticky: after the first failure
 * (KV_ERR_BUFFER) every call fails and w->err keeps the code, so a sequence of
 * puts needs one check at the end.
 */
typedef struct {
    uint8_t *buf;
    size_t cap;
    size_t len;
    int err;
    size_t open[KV_TLV_MAX_DEPTH]; /* start offsets of open constructed objects */
    unsigned depth;
} kv_tlv_writer;

void kv_tlv_writer_init(kv_tlv_writer *w, uint8_t *buf, size_t cap);
/* Append a primitive (or pre-built constructed) object. */
int kv_tlv_put(kv_tlv_writer *w, uint32_t tag, const uint8_t *value, size_t len);
/* Append bytes as they are (already encoded objects). */
int kv_tlv_put_raw(kv_tlv_writer *w, const uint8_t *p, size_t len);
/* Open a constructed object; its length is fixed by kv_tlv_end. */
int kv_tlv_begin(kv_tlv_writer *w, uint32_t tag);
int kv_tlv_end(kv_tlv_writer *w);

#endif

/*
 * BER-TLV as used by EMV (EMV Book 3 Annex B).
 *
 * Decoding allocates nothing: a kv_tlv points into the caller's buffer, which
 * must outlive it. Tags are 1-3 bytes and kept as the big-endian integer of
 * their bytes (0x9F02, 0xBF0C, 0x5F2D...). Lengths are definite, short form or
 * long form with 1-4 length bytes. 0x00 and 0xFF bytes between objects are
 * padding and skipped (ISO/IEC 7816-4 5.2.2), so no tag starts with 00 or FF.
 * Errors are distinct:
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

#include "src/base/cursor.h"

/*
 * Nesting limit: at most KV_TLV_MAX_DEPTH constructed objects inside one
 * another (a constructed object at walk depth d opens level d + 1), so
 * primitives sit at depth KV_TLV_MAX_DEPTH at most. The writer can open the
 * same number, so whatever it builds decodes.
 */
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
 * fills *out, 0 when only padding (or nothing) is left (the padding is then
 * consumed), or a negative error (cursor unchanged on error).
 */
int kv_tlv_next(kv_cursor *c, kv_tlv *out);

/*
 * Check that len bytes at p are a sequence of well-formed objects, descending
 * into constructed ones down to KV_TLV_MAX_DEPTH. Returns 0 or an error.
 */
int kv_tlv_validate(const uint8_t *p, size_t len);

/*
 * kv_tlv_validate that also tells where: on error *bad_offset (may be NULL) is
 * the offset from p of the first byte (after padding) of the object whose
 * tag, length or value is bad, or of the constructed object that nests too
 * deep. Unchanged on success.
 */
int kv_tlv_validate_offset(const uint8_t *p, size_t len, size_t *bad_offset);

/*
 * Depth-first search for the first object with this tag in len bytes at p,
 * descending into constructed objects. Returns 0 (found, *out filled),
 * KV_ERR_NOT_FOUND, or a decoding error met before the tag was found.
 */
int kv_tlv_find(const uint8_t *p, size_t len, uint32_t tag, kv_tlv *out);

/*
 * Visit every object depth-first (parent before children). depth is 0 at the
 * top. A non-zero return from fn stops the walk and is returned. The walk does
 * not validate first: objects before a malformed one are visited, then the
 * decoding error is returned. A constructed object too deep is not visited.
 */
typedef int (*kv_tlv_visit_fn)(const kv_tlv *t, unsigned depth, void *arg);
int kv_tlv_walk(const uint8_t *p, size_t len, kv_tlv_visit_fn fn, void *arg);

/* Number of bytes the tag and the length field of (tag, len) take when encoded. */
size_t kv_tlv_header_size(uint32_t tag, size_t len);

/*
 * 1 if tag is a well-formed 1-3 byte tag that decodes back to itself (not a
 * padding byte, continuation bits right), else 0.
 */
int kv_tlv_tag_is_valid(uint32_t tag);

/*
 * Encoder into a caller buffer. Errors are sticky: after the first failure
 * (KV_ERR_BUFFER) every call fails and w->err keeps the code, so a sequence of
 * puts needs one check at the end. Lengths are written in the shortest form.
 * Other failures: KV_ERR_ARG for a tag kv_tlv_tag_is_valid rejects, NULL
 * value with len > 0, kv_tlv_begin of a primitive tag, kv_tlv_end with nothing
 * open; KV_ERR_TLV_DEPTH for more than KV_TLV_MAX_DEPTH open objects;
 * KV_ERR_TLV_LENGTH for a value above 0xFFFFFFFF bytes. Every call returns 0
 * or w->err. buf may be NULL when cap is 0 (every put then fails).
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
/* Close the innermost open object (moves its content when the length needs more than one byte). */
int kv_tlv_end(kv_tlv_writer *w);
/* w->err, or KV_ERR_ARG (made sticky) when objects are still open; 0 means w->len bytes are done.
 */
int kv_tlv_finish(kv_tlv_writer *w);

#endif

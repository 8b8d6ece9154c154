/*
 * The EMV tag dictionary (EMV 4.4 Books 1-4 Annex A/B, EMV Contactless Book B
 * entry point, Book C-2 Mastercard kernel, Book C-3 Visa kernel) and readable
 * renderings of BER-TLV data built on it: an indented text tree for humans and
 * traces, a jansson tree for --json output.
 *
 * A few contactless tags mean different things in the Visa and Mastercard
 * kernels (9F66, 9F6B, 9F6C, 9F6E, 9F7C...); their names give both meanings.
 *
 * PANs are masked (first 6 and last 4 digits kept, see kv_pan_mask) in both
 * renderings unless KV_TAG_REVEAL is given: 5A, the PAN part of track 2 data
 * (57, 9F6B) and of track 1 data (56).
 */
#ifndef KV_APDU_TAGS_H
#define KV_APDU_TAGS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

/* Data element formats of EMV Book 3 §4.3. */
typedef enum {
    KV_TAG_FMT_B = 0, /* binary */
    KV_TAG_FMT_N,     /* numeric BCD, right-justified, left zero-padded */
    KV_TAG_FMT_CN,    /* compressed numeric BCD, left-justified, F-padded */
    KV_TAG_FMT_AN,    /* alphanumeric ASCII */
    KV_TAG_FMT_ANS,   /* alphanumeric and special ASCII */
    KV_TAG_FMT_VAR,   /* templates and other variable structures */
} kv_tag_format;

/* Who puts the data element into the transaction. */
typedef enum {
    KV_TAG_SRC_ICC = 0,
    KV_TAG_SRC_TERMINAL, /* terminal, reader or kernel */
    KV_TAG_SRC_ISSUER,
} kv_tag_source;

/* kv_tag_info.flags */
#define KV_TAG_F_DATE 0x01   /* n 6 YYMMDD */
#define KV_TAG_F_PAN 0x02    /* the PAN as cn digits, F-padded (5A) */
#define KV_TAG_F_TRACK2 0x04 /* track 2 layout: PAN digits, 'D', ... (57, 9F6B) */
#define KV_TAG_F_TRACK1 0x08 /* track 1 layout: 'B', PAN digits, '^', ... (56) */

typedef struct {
    uint32_t tag;     /* as kv_tlv.tag */
    const char *name; /* EMV name */
    uint8_t format;   /* kv_tag_format */
    uint8_t source;   /* kv_tag_source */
    uint8_t flags;    /* KV_TAG_F_* */
} kv_tag_info;

/* The entry for tag, or NULL when the dictionary does not know it. Static storage. */
const kv_tag_info *kv_tag_lookup(uint32_t tag);

/* Name of tag, or "Unknown" when kv_tag_lookup finds nothing. Never NULL. */
const char *kv_tag_name(uint32_t tag);

/* Number of entries, and entry i (0 <= i < count) in ascending tag order. */
size_t kv_tag_count(void);
const kv_tag_info *kv_tag_at(size_t i);

/* "b", "n", "cn", "an", "ans", "var"; "?" for a value outside the enum. */
const char *kv_tag_format_name(unsigned format);
/* "ICC", "terminal", "issuer"; "?" for a value outside the enum. */
const char *kv_tag_source_name(unsigned source);

/* Options of the renderings. */
#define KV_TAG_REVEAL 0x01 /* print PANs in full */

/*
 * Print len bytes at p as an indented tree to f, one object per line:
 *   <indent><tag hex> <name> [<len>]: <value hex> "<text>" (<date>)
 * constructed objects without a value, their children indented by two spaces
 * more. Text is shown for an/ans formats (bytes outside printable ASCII as
 * '.'), the date (YYYY-MM-DD) for n 6 dates. Objects before a malformed one
 * are printed; the result is 0, the decoding error of kv_tlv_walk, or
 * KV_ERR_IO when writing to f fails.
 */
int kv_tag_print_tree(FILE *f, const uint8_t *p, size_t len, unsigned opts);

/*
 * Build the JSON tree of len bytes at p: an array with one object per
 * top-level TLV object,
 *   {"tag":"9F02","name":"Amount, Authorised (Numeric)","len":6,"value":"000000001000"}
 * "name" only for known tags; "text" (an/ans) and "date" (n 6 dates) when
 * they apply; constructed objects have "children":[...] instead of "value".
 * Masked PAN digits are '*' in "value" and "text". On success *out is a new
 * reference the caller json_decref()s; on error (decoding error of
 * kv_tlv_walk, KV_ERR_NOMEM) *out is NULL.
 */
int kv_tag_json_tree(const uint8_t *p, size_t len, unsigned opts, json_t **out);

#endif

/*
 * Command and response APDUs (ISO/IEC 7816-3 §12.1, 7816-4 §5) and status words.
 *
 * A C-APDU is one of four cases, each short (Lc 1..255, Le 1..256) or extended
 * (Lc 1..65535, Le 1..65536):
 *   case 1  CLA INS P1 P2
 *   case 2  CLA INS P1 P2 Le
 *   case 3  CLA INS P1 P2 Lc data
 *   case 4  CLA INS P1 P2 Lc data Le
 * In kv_capdu, le == 0 means "no Le field"; the maximum Le of each form (256
 * short, 65536 extended) is the encoding 00 / 0000.
 *
 * Status words are kept as one integer SW1 << 8 | SW2.
 */
#ifndef KV_APDU_APDU_H
#define KV_APDU_APDU_H

#include <stddef.h>
#include <stdint.h>

#define KV_APDU_SHORT_LC_MAX 255u
#define KV_APDU_SHORT_LE_MAX 256u
#define KV_APDU_EXT_LC_MAX 65535u
#define KV_APDU_EXT_LE_MAX 65536u
/* Largest encoded C-APDU: header, 3-byte Lc, 65535 data bytes, 2-byte Le. */
#define KV_CAPDU_MAX (4u + 3u + 65535u + 2u)
/* Largest R-APDU: 65536 data bytes and SW1 SW2. */
#define KV_RAPDU_MAX (65536u + 2u)

enum kv_apdu_case {
    KV_APDU_CASE_1 = 1,
    KV_APDU_CASE_2 = 2,
    KV_APDU_CASE_3 = 3,
    KV_APDU_CASE_4 = 4,
};

typedef struct {
    uint8_t cla, ins, p1, p2;
    const uint8_t *data; /* command data (not owned); NULL when lc is 0 */
    size_t lc;           /* 0 .. 65535 */
    uint32_t le;         /* 0 = no Le; else 1 .. 65536 */
    int extended;        /* encode: force the extended form; parse: 1 if extended */
} kv_capdu;

/* The case of c (1..4) from whether it has data and an Le. */
enum kv_apdu_case kv_capdu_case(const kv_capdu *c);

/*
 * Encode c into out (capacity cap); *outlen gets the length. The short form is
 * used unless c->extended is set or lc > 255 or le > 256. Returns 0,
 * KV_ERR_APDU (lc > 65535, le > 65536, data NULL with lc > 0) or KV_ERR_BUFFER.
 */
int kv_capdu_encode(const kv_capdu *c, uint8_t *out, size_t cap, size_t *outlen);

/*
 * Parse len bytes at p into *c, detecting the case and the short or extended
 * form per ISO/IEC 7816-3 §12.1.3. c->data points into p, which must outlive
 * c. Returns 0 or KV_ERR_APDU (fewer than 4 bytes, or lengths that agree with
 * no case); *c is unspecified on error.
 */
int kv_capdu_parse(const uint8_t *p, size_t len, kv_capdu *c);

/* An R-APDU split into data and status word; data points into the parsed buffer. */
typedef struct {
    const uint8_t *data; /* NULL when len is 0 */
    size_t len;
    uint16_t sw;
} kv_rapdu;

/* Split len bytes at p; returns 0 or KV_ERR_APDU (fewer than 2 bytes). */
int kv_rapdu_parse(const uint8_t *p, size_t len, kv_rapdu *r);

/* SW1 SW2 of a response buffer of at least 2 bytes. */
static inline uint16_t kv_sw_of(const uint8_t *p, size_t len)
{
    return (uint16_t)(p[len - 2] << 8 | p[len - 1]);
}

/*
 * Meaning of a status word (ISO/IEC 7816-4 §5.6, EMV Book 1 §9.4 and Book 3
 * Annex A): static text, never NULL ("unknown status" when not in the table).
 * Families are resolved too: 61xx, 6Cxx, 63Cx.
 */
const char *kv_sw_text(uint16_t sw);

/*
 * The KV_ERR_* code of a status word: 0 for 9000 and 61xx (more data; the
 * transport fetches it); otherwise a KV_ERR_CARD_* code. 63Cx maps to
 * KV_ERR_CARD_VERIFY; a caller that verifies a PIN turns it into a result,
 * not an error.
 */
int kv_sw_to_err(uint16_t sw);

#endif

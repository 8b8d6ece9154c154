/*
 * Issuer scripts on the terminal side (EMV Book 3 §10.10, Annex A 9F5B):
 * parse the script templates 71 (before the 2nd GENERATE AC) and 72
 * (after it) that an issuer sends, build them for an issuer host, send each
 * issuer script command (86) to the card and record the results.
 *
 * The commands' secure messaging (MAC, enciphered PIN) is the issuer's and
 * is built in the HSM (hsm/issuer_script.h); this module only carries bytes.
 */
#ifndef KV_APDU_SCRIPT_H
#define KV_APDU_SCRIPT_H

#include <stddef.h>
#include <stdint.h>

#include "apdu/emv.h"

#define KV_SCRIPT_MAX_CMDS 8
#define KV_SCRIPT_CMD_MAX 261 /* a short C-APDU: 4 + 1 + 255 + 1 */
#define KV_SCRIPT_MAX 4       /* templates per transaction */

typedef struct {
    uint8_t apdu[KV_SCRIPT_CMD_MAX]; /* the whole C-APDU as the 86 value */
    size_t len;
} kv_script_cmd;

typedef struct {
    uint8_t tag; /* 0x71 or 0x72 */
    int has_id;
    uint8_t id[4]; /* 9F18, 4 bytes */
    kv_script_cmd cmds[KV_SCRIPT_MAX_CMDS];
    size_t ncmds;
} kv_script;

/*
 * Parse one template (71 or 72 TLV, len bytes, untrusted): optional 9F18
 * (exactly 4 bytes) then one or more 86 (each a C-APDU of 4..261 bytes
 * whose Lc agrees with its length). Returns 0, KV_ERR_CARD_DATA (malformed,
 * another tag inside, more than KV_SCRIPT_MAX_CMDS commands).
 */
int kv_script_parse(const uint8_t *p, size_t len, kv_script *out);

/*
 * Parse a sequence of templates (the issuer's answer: 71/72 TLVs back to
 * back) into out (capacity cap), *n the count. Returns as kv_script_parse,
 * KV_ERR_BUFFER when there are more than cap.
 */
int kv_script_parse_all(const uint8_t *p, size_t len, kv_script *out, size_t cap, size_t *n);

/* Encode sc as its template into out (capacity cap); *len its length. 0 or KV_ERR_BUFFER. */
int kv_script_encode(const kv_script *sc, uint8_t *out, size_t cap, size_t *len);

/* The result of one script command (9F5B: result nibble, sequence nibble, script id). */
typedef struct {
    uint8_t tag;   /* 71 or 72 */
    uint8_t id[4]; /* 00000000 when the template had none */
    unsigned seq;  /* 1-based command number in the template (1..15) */
    uint8_t ins;   /* the command's INS */
    uint16_t sw;   /* the card's status word; 0 when not sent */
    int result;    /* 0 not performed, 1 failed, 2 successful (9F5B byte 1 high nibble) */
} kv_script_result;

/*
 * Send the commands of sc to the card in order, stopping at the first one
 * answered with an SW1 other than 90, 62 or 63 (Book 3 §10.10); out
 * (capacity cap) gets one result per command sent (the failed one
 * included), *n their count. TSI "script processing was performed" is set;
 * a failure sets TVR "script processing failed before/after final GENERATE
 * AC" by sc->tag. Returns 0 (whatever the SWs), KV_ERR_ARG, or a transport
 * error.
 */
int kv_emv_script_run(kv_emv *s, const kv_script *sc, uint8_t tvr[5], uint8_t tsi[2],
                      kv_script_result *out, size_t cap, size_t *n);

/* The 9F5B bytes of results (5 per command) into out (capacity cap); returns the length. */
size_t kv_script_results_9f5b(const kv_script_result *r, size_t n, uint8_t *out, size_t cap);

#endif

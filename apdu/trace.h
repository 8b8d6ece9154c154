/*
 * APDU traces: one format for the replay backend, `--trace FILE` output and
 * test data. A trace is JSON lines, one physical exchange per line:
 *
 *   {"c":"00A404000E325041592E5359532E444446303100","r":"6F..9000","t":12}
 *
 * "c" is the C-APDU and "r" the R-APDU (data then SW1 SW2) in hex; "t" is
 * optional, milliseconds since the trace was opened. Each exchange on the
 * wire is its own line, including the GET RESPONSE and re-sent commands of
 * 61xx / 6Cxx. A line {"atr":"3B.."} may precede the exchanges; blank lines
 * are ignored.
 *
 * Masking: written traces never hold the data of VERIFY (INS 20) commands,
 * nor the middle digits of a PAN (first 6 and last 4 kept), whether BCD (5A,
 * 57, 9F6B) or ASCII (56, 9F1F). Masked nibbles are written as 'X'. In "c",
 * an X nibble matches any nibble on replay, so a masked trace replays the
 * same session; in "r", an X nibble replays as 0, so the masked PAN digits
 * and the bytes of ASCII digits come back as zeros (the PAN then reads as,
 * e.g., 487178000000 0005 and an ASCII track as 0x00 bytes): a masked trace
 * replays fine except for those bytes.
 *
 * Replay matching: a command matches a line when it has the same length and
 * the same bytes, X nibbles excepted. The data of GET PROCESSING OPTIONS
 * (INS A8), GENERATE AC (AE) and INTERNAL AUTHENTICATE (88) is terminal data
 * that changes on every run (unpredictable number, date): for those only
 * the header and the length must match, as in the trace cards' GPO.
 */
#ifndef KV_APDU_TRACE_H
#define KV_APDU_TRACE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Most PANs a trace remembers for masking (a session sees one or two). */
#define KV_TRACE_MAX_PANS 4

/* A trace writer (heap object). */
typedef struct kv_trace kv_trace;

/*
 * Open path for writing: a new file of mode 0600 replaces whatever was there
 * (src/base/outfile.h; a device such as /dev/stdout is written as it is).
 * Returns 0 and *out, KV_ERR_IO or KV_ERR_NOMEM.
 */
int kv_trace_open(const char *path, kv_trace **out);

/* Write to f, which the caller keeps owning (stdout, a test's memstream). */
int kv_trace_new_fp(FILE *f, kv_trace **out);

/* Flush and close (the file of kv_trace_open only); NULL is a no-op. */
void kv_trace_free(kv_trace *t);

/*
 * Write one exchange, masked as described above. The PANs found in r (5A,
 * 57, 9F6B) are remembered so that later lines are masked too. Returns 0,
 * KV_ERR_IO or KV_ERR_NOMEM.
 */
int kv_trace_write(kv_trace *t, const uint8_t *c, size_t clen, const uint8_t *r, size_t rlen);

/*
 * Masked hex of one exchange side (the writer's core; exposed for tests).
 * hex needs 2*len+1 bytes. pans is a list of npans digit strings to mask in
 * both BCD and ASCII form; if is_command and the command is a VERIFY, its
 * data is masked too.
 */
void kv_trace_mask_hex(const uint8_t *p, size_t len, int is_command, const char *const *pans,
                       size_t npans, char *hex);

/*
 * Add to pans (npans entries in use, capacity cap, each KV_TRACE_PAN_SIZE
 * bytes) the PANs found in the R-APDU r (5A, 57, 9F6B, 56) that are not
 * listed yet. Returns the new count. Malformed TLV adds nothing.
 */
#define KV_TRACE_PAN_SIZE 20
size_t kv_trace_find_pans(const uint8_t *r, size_t rlen, char (*pans)[KV_TRACE_PAN_SIZE],
                          size_t npans, size_t cap);

/*
 * Decode hex with wildcards: each nibble is 0-9 A-F a-f or X/x (any value).
 * val gets the bytes (X nibbles as 0), mask the bits that must match (0xFF
 * for a plain byte, 0x0F/0xF0 for one X nibble, 0x00 for XX); mask may be
 * NULL. Returns the byte count, KV_ERR_FORMAT or KV_ERR_BUFFER.
 */
int kv_trace_hex_decode(const char *hex, uint8_t *val, uint8_t *mask, size_t cap);

/* One exchange of a trace, owned by the kv_trace_script that holds it. */
typedef struct {
    uint8_t *c, *cmask; /* command and its match mask */
    size_t clen;
    uint8_t *r; /* response, masked nibbles as 0 */
    size_t rlen;
    long t; /* ms, -1 when absent */
} kv_trace_entry;

/* A parsed trace (heap object). */
typedef struct {
    kv_trace_entry *e;
    size_t n;
    uint8_t atr[33];
    size_t atr_len; /* 0 when the trace has no atr line */
} kv_trace_script;

/*
 * Parse trace text (len bytes at text, need not be NUL-terminated) into
 * *out. Returns 0, KV_ERR_TRACE (a line that is not a JSON object with hex
 * "c" and "r", or a bad "atr") or KV_ERR_NOMEM.
 */
int kv_trace_parse(const char *text, size_t len, kv_trace_script **out);

/* Read and parse a trace file; KV_ERR_IO when it cannot be read. */
int kv_trace_load(const char *path, kv_trace_script **out);

void kv_trace_script_free(kv_trace_script *s);

/*
 * 1 if the command c (clen bytes) matches entry e (same length, masked bytes
 * equal; for INS A8, AE, 88 the first 5 bytes only), else 0.
 */
int kv_trace_entry_matches(const kv_trace_entry *e, const uint8_t *c, size_t clen);

#endif

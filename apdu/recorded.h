/*
 * A recorded card: answers C-APDUs from a trace-card JSON file
 * (tests/data/traces/cards/, format in tests/data/traces/README.md).
 *
 * Matching, per the trace-card contract:
 *   - an exchange answers a command when CLA, INS, P1, P2 and the command
 *     data are equal; "XX" in the recorded capdu matches any byte; Le never
 *     matters (the recorded answer is returned whole);
 *   - an exchange with "selected" is valid only while that DF name is the
 *     selected one; the first valid match in file order answers;
 *   - a matching SELECT (INS A4) whose answer is 9000 or a 62xx/63xx warning
 *     makes its command data the selected DF name;
 *   - no match: SELECT -> 6A82, READ RECORD -> 6A83, GET DATA -> 6A88, an
 *     instruction the card was recorded answering (other data or state) ->
 *     6A88, any other instruction -> 6D00; a command too short to be an APDU
 *     (or with inconsistent lengths) -> 6700.
 * The answer never uses 61xx or 6Cxx: the recording holds only what those
 * round trips deliver.
 */
#ifndef KV_APDU_RECORDED_H
#define KV_APDU_RECORDED_H

#include <stddef.h>
#include <stdint.h>

typedef struct kv_recorded kv_recorded;

/*
 * Load the trace-card JSON at path. Returns 0 and a new card in *out
 * (nothing selected), KV_ERR_IO (unreadable), KV_ERR_JSON (not a trace-card:
 * missing "exchanges", a capdu/rapdu/selected/atr that is not hex, a capdu
 * shorter than 4 bytes or a rapdu shorter than 2) or KV_ERR_NOMEM.
 */
int kv_recorded_load(const char *path, kv_recorded **out);

/* Free the card; NULL is a no-op. */
void kv_recorded_free(kv_recorded *c);

/*
 * The card's ATR ("atr" of the file). Returns its length (0 when the file
 * has none); copies it into out only when it fits in cap.
 */
size_t kv_recorded_atr(const kv_recorded *c, uint8_t *out, size_t cap);

/* Back to the power-on state: nothing selected. */
void kv_recorded_reset(kv_recorded *c);

/*
 * Answer one C-APDU (len bytes at capdu): out (capacity cap) gets data then
 * SW1 SW2, *outlen its length. Returns 0 (whatever the SW), KV_ERR_ARG for
 * cap < 2, or KV_ERR_BUFFER when the recorded answer does not fit.
 */
int kv_recorded_answer(kv_recorded *c, const uint8_t *capdu, size_t len, uint8_t *out, size_t cap,
                       size_t *outlen);

#endif

/*
 * The card transport: one interface over several backends.
 *
 * A kv_reader is an opaque heap object made of a backend (a table of
 * function pointers and its context) and the transport logic common to all
 * backends (ISO/IEC 7816-3 §12.2 / EMV Book 1 §9.3):
 *   - 61xx: the reader sends GET RESPONSE 00 C0 00 00 xx, again while the
 *     card answers 61xx, and returns the concatenated data with the last SW;
 *   - 6Cxx: the reader re-sends the same command once with Le = xx;
 *   - otherwise the caller's APDU goes to the card byte for byte;
 *   - every exchange on the wire (GET RESPONSE and re-sent commands
 *     included) is counted and, when a trace is attached, written to it.
 *
 * Backends:
 *   pcsc      a PC/SC reader (pcsc-lite); T=0 or T=1, whichever the card
 *             offers; SCARD_W_RESET_CARD -> SCardReconnect and one retry.
 *   replay    a trace (trace.h) played in order: each command must match
 *             the next line's "c" (X nibbles match anything), else
 *             KV_ERR_REPLAY_MISMATCH; past the end KV_ERR_REPLAY_END.
 *   recorded  a trace-card JSON (recorded.h) answering by content.
 *   custom    any kv_transport_ops, e.g. a test's scripted card.
 *
 * A kv_reader is not thread-safe; use one per thread.
 */
#ifndef KV_APDU_READER_H
#define KV_APDU_READER_H

#include <stddef.h>
#include <stdint.h>

#include "apdu/apdu.h"
#include "apdu/trace.h"

/* PC/SC limits (pcsclite.h MAX_READERNAME, MAX_ATR_SIZE). */
#define KV_READER_NAME_MAX 128
#define KV_ATR_MAX 33

/*
 * A backend. transmit is one physical exchange: send len bytes of capdu,
 * put the whole answer (data, SW1 SW2) into out (capacity cap >= 2) and its
 * length into *outlen; return 0 or a negative KV_ERR_*. atr copies the ATR
 * (0 or an error). reset (optional, may be NULL) resets the card: cold
 * start for a real card, the power-on state for a scripted one. close frees
 * ctx (optional).
 */
typedef struct {
    const char *name;
    int (*transmit)(void *ctx, const uint8_t *capdu, size_t len, uint8_t *out, size_t cap,
                    size_t *outlen);
    int (*atr)(void *ctx, uint8_t *out, size_t cap, size_t *len);
    int (*reset)(void *ctx);
    void (*close)(void *ctx);
} kv_transport_ops;

typedef struct kv_reader kv_reader;

/*
 * A reader over a custom backend. ops must outlive the reader (a static
 * table); ctx is handed to it and ops->close(ctx) is called by
 * kv_reader_free (also when this call fails). Returns 0 or KV_ERR_NOMEM.
 */
int kv_reader_new(const kv_transport_ops *ops, void *ctx, kv_reader **out);

/*
 * Connect to the PC/SC reader name (NULL: kv_reader_pick's choice) in shared
 * mode, T=0 or T=1. Returns 0 or KV_ERR_PCSC_NO_SERVICE (pcscd not
 * running), KV_ERR_PCSC_NO_READER (no reader, or name absent),
 * KV_ERR_PCSC_NO_CARD, KV_ERR_PCSC_* for other failures.
 */
int kv_reader_open_pcsc(const char *name, kv_reader **out);

/* Replay the trace file at path, or len bytes of trace text. KV_ERR_IO / KV_ERR_TRACE. */
int kv_reader_open_replay(const char *path, kv_reader **out);
int kv_reader_open_replay_text(const char *text, size_t len, kv_reader **out);

/* Answer from the trace-card JSON at path (recorded.h). */
int kv_reader_open_recorded(const char *path, kv_reader **out);

/* Close the backend and free; NULL is a no-op. An attached trace is not freed. */
void kv_reader_free(kv_reader *r);

/*
 * Exchange one APDU with the transport logic above. out (capacity cap >= 2)
 * gets data then SW1 SW2; *outlen its length. Returns 0 whatever the status
 * word (check it with kv_sw_of), or a transport error: the backend's,
 * KV_ERR_BUFFER when the concatenated answer does not fit, KV_ERR_APDU when
 * the card keeps answering 61xx past KV_READER_MAX_GET_RESPONSE times or
 * answers with fewer than 2 bytes, KV_ERR_IO when the trace cannot be
 * written.
 */
#define KV_READER_MAX_GET_RESPONSE 64
int kv_reader_transmit(kv_reader *r, const uint8_t *capdu, size_t len, uint8_t *out, size_t cap,
                       size_t *outlen);

/* Encode c (apdu.h) and kv_reader_transmit it. */
int kv_reader_exchange(kv_reader *r, const kv_capdu *c, uint8_t *out, size_t cap, size_t *outlen);

/* One physical exchange, without 61xx/6Cxx handling (counted and traced). */
int kv_reader_transmit_raw(kv_reader *r, const uint8_t *capdu, size_t len, uint8_t *out, size_t cap,
                           size_t *outlen);

/* Exchanges on the wire since the reader was opened (GET RESPONSE included). */
unsigned long kv_reader_apdu_count(const kv_reader *r);

/* Attach a trace (borrowed; NULL detaches). Every later exchange is written to it. */
void kv_reader_set_trace(kv_reader *r, kv_trace *t);

/* The card's ATR into out; *len its length. 0 or an error. */
int kv_reader_atr(kv_reader *r, uint8_t *out, size_t cap, size_t *len);

/* Reset the card; KV_ERR_UNSUPPORTED when the backend cannot. */
int kv_reader_reset(kv_reader *r);

/* Backend name ("pcsc", "replay", "recorded" or the custom one). */
const char *kv_reader_backend(const kv_reader *r);

/* Reader name (PC/SC name, or the file path of replay/recorded); never NULL. */
const char *kv_reader_name(const kv_reader *r);

/* Set the name kv_reader_name reports (copied). 0 or KV_ERR_NOMEM. */
int kv_reader_set_name(kv_reader *r, const char *name);

/* The backend table and context given to kv_reader_new (still owned by r). */
const kv_transport_ops *kv_reader_ops(const kv_reader *r);
void *kv_reader_ctx(const kv_reader *r);

/* Replay backend: lines not yet played (0 for other backends). */
size_t kv_reader_replay_left(const kv_reader *r);

/* ---- PC/SC reader discovery ---- */

typedef struct {
    char name[KV_READER_NAME_MAX];
    int card_present;
    uint8_t atr[KV_ATR_MAX];
    size_t atr_len; /* 0 without a card */
} kv_reader_info;

/*
 * List the PC/SC readers and their state into a fresh array (*out, free()
 * it) of *n entries. Returns 0, KV_ERR_PCSC_NO_SERVICE, KV_ERR_PCSC_NO_READER
 * (no reader at all) or another KV_ERR_PCSC_*.
 */
int kv_reader_list(kv_reader_info **out, size_t *n);

/*
 * Choose a reader: name if not NULL or "" (the front end resolves --reader
 * and $KORTVAGT_READER, src/app/settings.h), else the first reader with a
 * card. A name must be an exact name or a prefix of one reader name.
 * Copies the full name into out (capacity cap). Returns 0, KV_ERR_PCSC_NO_READER (named reader
 * absent, or no reader), KV_ERR_PCSC_NO_CARD (readers, but none holds a card), KV_ERR_PCSC_*.
 */
int kv_reader_pick(const char *flag, char *out, size_t cap);

/*
 * Wait until a card is present (present = 1) or absent (present = 0) in the
 * named reader, up to timeout_ms (0 = forever), with SCardGetStatusChange.
 * Returns 0, KV_ERR_TIMEOUT, KV_ERR_PCSC_NO_READER or KV_ERR_PCSC_*.
 */
int kv_reader_wait(const char *name, int present, unsigned timeout_ms);

/* Translate a PC/SC return value (SCARD_*) to KV_ERR_* (0 for SCARD_S_SUCCESS). */
int kv_reader_pcsc_error(long rv);

#endif

/*
 * The virtual EMV card: a card state machine that answers C-APDUs from a JSON
 * card profile (tests/data/README.md) or from a recorded trace card
 * (tests/data/traces/cards, apdu/recorded.h). It needs no socket: tests and
 * the vpcd client (apdu/vcard/vpcd.h) drive it through kv_vcard_process.
 *
 * A card has a volatile session (selected DF, GPO done, pending GET RESPONSE
 * data) that power on, power off and reset clear, and persistent counters (PIN
 * try counter, ATC) that an optional state file keeps across restarts.
 *
 * Every C-APDU gets an R-APDU: malformed or unsupported commands are answered
 * with an error status word (6700, 6D00, 6E00, 6A86...), never with a crash or
 * a negative return. kv_vcard_process fails only on caller misuse (an output
 * buffer smaller than KV_VCARD_RAPDU_MAX).
 *
 * The profile PIN is test data but is still treated as a secret: it is kept as
 * a plaintext PIN block in a kv_secbuf, compared in constant time, wiped on
 * free and never printed.
 */
#ifndef KV_APDU_VCARD_VCARD_H
#define KV_APDU_VCARD_VCARD_H

#include <stddef.h>
#include <stdint.h>

#include "apdu/reader.h"

/* Largest R-APDU the card produces: 256 data bytes and SW1 SW2. */
#define KV_VCARD_RAPDU_MAX 258
/* Longest ATR (ISO 7816-3: TS and at most 32 more bytes). */
#define KV_VCARD_ATR_MAX 33

/* Test-lab quirks (flags), from the profile's "quirks" object or the caller. */
enum {
    /* Answer data with 61xx and no data; the host fetches it with GET RESPONSE. */
    KV_VCARD_QUIRK_GET_RESPONSE = 1u << 0,
    /* Answer a command whose Le is neither 00 nor the exact length with 6Cxx. */
    KV_VCARD_QUIRK_WRONG_LE = 1u << 1,
};

typedef struct kv_vcard kv_vcard;

/*
 * Load a card from path: a JSON card profile, or a recorded trace-card file
 * (recognised by its "exchanges" key). On success *out owns a new card,
 * powered on, and why is untouched. On failure *out is NULL and the return is
 * KV_ERR_IO (cannot read), KV_ERR_JSON / KV_ERR_FORMAT (the file breaks the
 * profile format) or KV_ERR_NOMEM, with a one-line reason naming the field in
 * why (whylen bytes, NUL-terminated; why may be NULL when whylen is 0). The
 * reason never contains the PIN.
 */
int kv_vcard_load(const char *path, kv_vcard **out, char *why, size_t whylen);
/*
 * The file holding the lab's AES transport key, which unwraps the ICC master
 * keys of a personalized profile ("*_wrapped" keys) when a card is loaded.
 * The front end resolves it (--transport-key, $KORTVAGT_TRANSPORT_KEY:
 * src/app/settings.h) and sets it before loading; NULL or "": none (such a
 * profile then fails to load, naming the missing key). Returns 0 or
 * KV_ERR_ARG (path too long).
 */
int kv_vcard_set_transport_key_file(const char *path);
/* kv_vcard_load without the reason. */
int kv_vcard_new(const char *path, kv_vcard **out);
/* As kv_vcard_load, from JSON text in memory; a trace card gives KV_ERR_UNSUPPORTED. */
int kv_vcard_load_text(const char *text, size_t len, kv_vcard **out, char *why, size_t whylen);
/*
 * A reader (apdu/reader.h) over a card loaded from path as kv_vcard_load
 * does, served in this process: no PC/SC, no state file. For reading a
 * profile or a recorded card without a lab. Returns as kv_vcard_load, or
 * KV_ERR_NOMEM.
 */
int kv_vcard_open_reader(const char *path, kv_reader **out, char *why, size_t whylen);

/*
 * A reader over vc, served in this process; vc stays the caller's and must
 * outlive the reader (kv_reader_free does not free it). Returns 0 or
 * KV_ERR_NOMEM.
 */
int kv_vcard_reader(kv_vcard *vc, kv_reader **out);

/* Wipe the PIN and free. NULL is a no-op. Does not save the state file. */
void kv_vcard_free(kv_vcard *vc);

/* Copy the ATR into out (cap bytes); returns its length, 0 when cap is too small. */
size_t kv_vcard_atr(const kv_vcard *vc, uint8_t *out, size_t cap);

/* Session control (vpcd control bytes): each one ends the session. */
void kv_vcard_power_on(kv_vcard *vc);
void kv_vcard_power_off(kv_vcard *vc);
void kv_vcard_reset(kv_vcard *vc);

/*
 * Answer one C-APDU (len bytes at capdu; untrusted) into out (cap bytes, at
 * least KV_VCARD_RAPDU_MAX): data then SW1 SW2, *outlen set. Returns 0, or
 * KV_ERR_BUFFER when cap is too small. A wrong PIN is an answer (63Cx), not
 * an error. If a PIN try counter or ATC change (GPO increments the ATC)
 * cannot be written to the state file, the card answers 6581 (memory
 * failure) and keeps the new counter in memory. The cryptographic commands
 * follow apdu/vcard/CRYPTO.md (profile "keys").
 *
 * A "tear" fault (kv_vcard_set_faults) takes the card away: the session
 * ends as at power off, nothing is answered (*outlen 0) and the return is
 * KV_ERR_PCSC_REMOVED, what a terminal sees when a card leaves the reader.
 */
int kv_vcard_process(kv_vcard *vc, const uint8_t *capdu, size_t len, uint8_t *out, size_t cap,
                     size_t *outlen);

/*
 * Test-lab faults (tests/data/README.md, "Faults"): replace the faults in
 * effect (initially the profile's "faults") by the script in json (len
 * bytes): an array of faults, or {"faults": [...]}. NULL or len 0 clears
 * them. The counters of "nth" restart. Returns 0, KV_ERR_JSON /
 * KV_ERR_FORMAT with a reason naming the field in why, or KV_ERR_NOMEM; on
 * failure the faults in effect stay.
 */
int kv_vcard_set_faults(kv_vcard *vc, const char *json, size_t len, char *why, size_t whylen);
/* kv_vcard_set_faults from a file (`kortvagt vcard --fault FILE`); KV_ERR_IO when unreadable. */
int kv_vcard_load_faults(kv_vcard *vc, const char *path, char *why, size_t whylen);
/* Number of faults in effect. */
size_t kv_vcard_fault_count(const kv_vcard *vc);
/* Cap every "delay_ms" fault of this process at ms (default 60000): fuzzers set 0. */
void kv_vcard_set_fault_delay_max(unsigned ms);

/* Quirk flags in effect (initially the profile's). */
unsigned kv_vcard_quirks(const kv_vcard *vc);
void kv_vcard_set_quirks(kv_vcard *vc, unsigned quirks);

/*
 * Use path as the state file: if it exists, its PIN try counter and ATC
 * replace the profile's (KV_ERR_FORMAT when it is malformed or out of range,
 * KV_ERR_IO when it cannot be read, KV_ERR_ARG when path exists and is not a
 * regular file: it is replaced by rename on save); a missing file is not an error. From now
 * on every change of the PIN try counter is saved at once. The card keeps its
 * own copy of path. The file names the card it belongs to ("card": the real
 * path of the profile loaded with kv_vcard_load); a file written for another
 * profile is ignored (a different card was inserted: fresh counters).
 */
int kv_vcard_state_attach(kv_vcard *vc, const char *path);
/*
 * Write the persistent counters to the attached state file atomically (a
 * temporary file in the same directory, fsync, rename). 0 when no file is
 * attached; KV_ERR_IO on failure.
 */
int kv_vcard_state_save(kv_vcard *vc);

/* PIN tries left, or -1 when the card has no PIN (or is a recorded card). */
int kv_vcard_pin_tries(const kv_vcard *vc);
/* Application transaction counter (incremented by each successful GPO). */
unsigned kv_vcard_atc(const kv_vcard *vc);
/* 1 when the card answers from a recording (apdu/recorded.h), else 0. */
int kv_vcard_is_recorded(const kv_vcard *vc);
/* The profile's "name" (or the trace card's), never NULL. */
const char *kv_vcard_name(const kv_vcard *vc);

#endif

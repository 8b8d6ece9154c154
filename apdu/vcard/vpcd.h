/*
 * The vpcd protocol of vsmartcard: pcscd's vpcd driver listens on TCP (port
 * 35963 by default); the virtual card connects to it and answers its frames.
 * A frame is a 2-byte big-endian length, then that many payload bytes. A
 * 1-byte payload is a control byte (power off, power on, reset: no answer;
 * get ATR: the ATR as a frame; pcscd sends it at any time); a longer payload
 * is a C-APDU, answered with the R-APDU as a frame.
 *
 * Frame parsing (kv_vpcd_frame_parse) and frame handling (kv_vpcd_frame_handle)
 * are separate from the socket I/O (kv_vpcd_serve) so that the fuzzer and
 * the unit tests drive them on byte strings.
 */
#ifndef KV_APDU_VCARD_VPCD_H
#define KV_APDU_VCARD_VPCD_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "src/base/cursor.h"
#include "apdu/vcard/vcard.h"

#define KV_VPCD_DEFAULT_PORT 35963
/* Largest frame: the 2-byte length and 65535 payload bytes. */
#define KV_VPCD_FRAME_MAX (2 + 65535)
/* Largest frame the card sends: the header and an R-APDU or an ATR. */
#define KV_VPCD_REPLY_MAX (2 + KV_VCARD_RAPDU_MAX)

enum kv_vpcd_ctrl {
    KV_VPCD_POWER_OFF = 0x00,
    KV_VPCD_POWER_ON = 0x01,
    KV_VPCD_RESET = 0x02,
    KV_VPCD_GET_ATR = 0x04,
};

typedef struct {
    int is_ctrl;            /* 1: a control byte in ctrl; 0: a C-APDU in payload */
    uint8_t ctrl;           /* any value; unknown ones are ignored by the handler */
    const uint8_t *payload; /* into the parsed buffer; the whole payload (also for ctrl) */
    size_t len;             /* payload length, >= 1 */
} kv_vpcd_frame;

/*
 * Parse the next frame at c. Returns 1 (frame in *f, cursor past it), 0 when
 * the bytes at c are not yet a whole frame (a short header or a length longer
 * than the bytes left; cursor unchanged: read more and retry), or
 * KV_ERR_VPCD_FRAME for a zero-length frame (cursor unchanged).
 */
int kv_vpcd_frame_parse(kv_cursor *c, kv_vpcd_frame *f);

/*
 * Write payload (len bytes, 1..65535) as a frame into out (cap bytes).
 * Returns 0 and *outlen, KV_ERR_ARG for a bad length, KV_ERR_BUFFER.
 */
int kv_vpcd_frame_encode(const uint8_t *payload, size_t len, uint8_t *out, size_t cap,
                         size_t *outlen);

/*
 * Act on one frame with card vc and write the reply frame, if any, into out
 * (cap >= KV_VPCD_REPLY_MAX). *outlen is 0 when the frame needs no reply
 * (power on/off, reset, unknown control bytes). Returns 0 or KV_ERR_BUFFER,
 * or KV_ERR_PCSC_REMOVED when a "tear" fault took the card away (no reply).
 */
int kv_vpcd_frame_handle(kv_vcard *vc, const kv_vpcd_frame *f, uint8_t *out, size_t cap,
                         size_t *outlen);

typedef struct {
    const char *host;            /* vpcd host (name or address); NULL: 127.0.0.1 */
    uint16_t port;               /* 0: KV_VPCD_DEFAULT_PORT */
    int once;                    /* return 0 after the first connection ends */
    volatile sig_atomic_t *stop; /* set (by a signal handler) to stop; may be NULL */
    FILE *log;                   /* connection events; NULL: silent. No APDU data. */
    unsigned delay_ms;           /* wait this long before each R-APDU (a slow card) */
} kv_vpcd_opts;

/*
 * Serve vc to vpcd: connect (retrying while vpcd is not listening yet), set
 * TCP_NODELAY, re-arm TCP_QUICKACK before every read, answer frames until the
 * connection ends, then reconnect after a short delay (or return with once).
 * A "tear" fault closes the connection at once, unanswered, and the card
 * comes back 1.2 s later (also with once): long enough for pcscd to see
 * the slot empty.
 * Returns 0 when stopped through opts->stop or, with once, when the
 * connection ends; KV_ERR_ARG when the host does not resolve; KV_ERR_IO for
 * socket failures other than a lost connection.
 */
int kv_vpcd_serve(kv_vcard *vc, const kv_vpcd_opts *opts);

#endif

/*
 * libFuzzer target: a whole EMV card read (selection -> GPO -> records ->
 * GET DATA, then an offline PIN VERIFY) over a transport whose answers come
 * from the fuzz input, so every byte a card could send reaches the
 * transport's 61xx/6Cxx handling, the selection code, the GPO and AFL
 * parsers, the card data extraction and the JSON report.
 *
 * Input format:
 *   byte 0          options: bits 1-0 interface (0 any, 1 contact,
 *                   2 contactless, 3 any), bit 2 also VERIFY "1234"
 *   then answers    each a 2-byte big-endian length and that many bytes
 *                   (data and SW1 SW2); a length past the end takes the rest.
 * When the answers run out the transport fails with KV_ERR_REPLAY_END,
 * like a card taken out of the reader. The commands are not checked.
 *
 * The corpus (corpus/emv_session/) holds the answers of the trace cards of
 * tests/data/traces/cards to our own read, plus T=0 variants (61xx).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "src/base/cursor.h"
#include "apdu/emv.h"
#include "apdu/reader.h"
#include "src/base/err.h"

typedef struct {
    kv_cursor c;
} fuzz_card;

static int fuzz_transmit(void *ctx, const uint8_t *capdu, size_t len, uint8_t *out, size_t cap,
                         size_t *outlen)
{
    fuzz_card *f = ctx;
    uint16_t n;
    size_t take;
    (void)capdu;
    (void)len;
    if (kv_cursor_u16be(&f->c, &n) != 0)
        return KV_ERR_REPLAY_END;
    take = n <= kv_cursor_left(&f->c) ? n : kv_cursor_left(&f->c);
    if (take > cap)
        return KV_ERR_BUFFER;
    if (kv_cursor_copy(&f->c, out, take) != 0)
        return KV_ERR_REPLAY_END;
    *outlen = take;
    return 0;
}

static int fuzz_atr(void *ctx, uint8_t *out, size_t cap, size_t *len)
{
    (void)ctx;
    if (cap < 2)
        return KV_ERR_BUFFER;
    out[0] = 0x3B;
    out[1] = 0x00;
    *len = 2;
    return 0;
}

static const kv_transport_ops fuzz_ops = {
    .name = "fuzz",
    .transmit = fuzz_transmit,
    .atr = fuzz_atr,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fuzz_card card;
    kv_reader *r = NULL;
    kv_emv *s = NULL;
    kv_terminal t;
    unsigned iface;
    int rc;

    if (size < 1)
        return 0;
    iface = data[0] & 3;
    if (iface == 3)
        iface = KV_EMV_IFACE_ANY;
    kv_cursor_init(&card.c, data + 1, size - 1);
    /* a fixed profile: runs must not depend on the clock or random numbers */
    memset(&t, 0, sizeof(t));
    t.country = 208;
    t.currency = 208;
    t.terminal_type = 22;
    if (kv_reader_new(&fuzz_ops, &card, &r) != 0 || kv_emv_new(r, &t, &s) != 0)
        goto out;
    rc = kv_emv_read_card(s, iface);
    if (rc == 0) {
        json_t *j = kv_emv_to_json(s, 0);
        json_decref(j);
    }
    if (data[0] & 4) {
        kv_pin_result res;
        (void)kv_emv_verify_plain_pin(s, "1234", 4, &res);
    }
out:
    kv_emv_free(s);
    kv_reader_free(r);
    return 0;
}

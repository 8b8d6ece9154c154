/*
 * libFuzzer target: selection and the card's data as a terminal does them
 * (kv_emv_set_term_config with the built-in configuration, optionally
 * kv_emv_choose_aid), then GPO, the records, the duplicate check, the
 * mandatory-data check and the ODA static data, over a transport whose
 * answers come from the fuzz input: PSE directories with DDF entries (9D),
 * ASI matching, API bit 8, 6A81, GPO 6985 re-selection.
 *
 * Input format (as fuzz_emv_session):
 *   byte 0          options: bits 1-0 interface (0 any, 1 contact,
 *                   2 contactless, 3 any), bit 3 choose A0000000031010,
 *                   bit 4 choose A0000000041010
 *   then answers    each a 2-byte big-endian length and that many bytes
 *                   (data and SW1 SW2); a length past the end takes the rest.
 * Checked: a selected application matches the configuration entry the
 * session reports, a chosen AID is the selected one, and every ODA record
 * is an AFL record of SFI 1..30 inside the session's data.
 *
 * The corpus (corpus/emv_terminal/) holds the trace cards' answers (as in
 * corpus/emv_session/) and hand-made PSE directories with DDFs.
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
    static kv_term_config cfg;
    static const uint8_t visa[7] = {0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10};
    static const uint8_t mc[7] = {0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10};
    const uint8_t *chosen = NULL;
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
    if (data[0] & 0x08)
        chosen = visa;
    else if (data[0] & 0x10)
        chosen = mc;
    kv_cursor_init(&card.c, data + 1, size - 1);
    kv_term_config_defaults(&cfg);
    memset(&t, 0, sizeof(t));
    t.country = 208;
    t.currency = 208;
    t.terminal_type = 22;
    if (kv_reader_new(&fuzz_ops, &card, &r) != 0 || kv_emv_new(r, &t, &s) != 0)
        goto out;
    kv_emv_set_term_config(s, &cfg);
    if (chosen != NULL && kv_emv_choose_aid(s, chosen, 7) != 0)
        abort();
    rc = kv_emv_select(s, iface);
    if (rc == 0) {
        const kv_emv_card *c = kv_emv_card_data(s);
        const kv_aid_config *a = kv_emv_selected_config(s);
        if (!c->has_selected || a == NULL ||
            a != kv_term_config_match(&cfg, c->selected.aid, c->selected.aid_len))
            abort(); /* a terminal selects only what it supports */
        if (chosen != NULL && (c->selected.aid_len != 7 || memcmp(c->selected.aid, chosen, 7)))
            abort();
        rc = kv_emv_gpo(s);
    }
    if (rc == 0)
        rc = kv_emv_read_records(s);
    if (rc == 0) {
        const kv_emv_card *c = kv_emv_card_data(s);
        kv_oda_static sd;
        size_t marked = 0;
        (void)kv_emv_check_mandatory(s, 1);
        kv_emv_oda_static(s, &sd);
        for (size_t i = 0; i < c->nrecords; i++)
            marked += c->records[i].oda ? 1 : 0;
        if (sd.nrecords != marked)
            abort();
        for (size_t i = 0, k = 0; i < c->nrecords; i++) {
            if (!c->records[i].oda)
                continue;
            if (sd.records[k].data != c->records[i].data || sd.records[k].sfi < 1 ||
                sd.records[k].sfi > 30)
                abort();
            k++;
        }
    }
out:
    kv_emv_free(s);
    kv_reader_free(r);
    return 0;
}

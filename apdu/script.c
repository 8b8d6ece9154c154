/* see script.h */
#include "apdu/script.h"
#include "apdu/apdu.h"
#include "apdu/tlv.h"
#include "apdu/tvr.h"
#include "src/base/cursor.h"
#include "src/base/err.h"

#include <string.h>

#define TAG_SCRIPT_ID 0x9F18
#define TAG_SCRIPT_CMD 0x86

/*
 * A short C-APDU whose length agrees with its Lc: 4 bytes (case 1), 5 (case
 * 2, Le only), 5 + Lc (case 3) or 6 + Lc (case 4) with Lc of 1..255.
 */
static int cmd_ok(const uint8_t *p, size_t n)
{
    size_t lc;

    if (n < 4 || n > KV_SCRIPT_CMD_MAX)
        return 0;
    if (n <= 5)
        return 1;
    lc = p[4];
    return lc != 0 && (n == 5 + lc || n == 6 + lc);
}

int kv_script_parse(const uint8_t *p, size_t len, kv_script *out)
{
    kv_cursor c, in;
    kv_tlv t, e;
    int r;

    if (p == NULL || out == NULL)
        return KV_ERR_ARG;
    memset(out, 0, sizeof(*out));
    kv_cursor_init(&c, p, len);
    if ((r = kv_tlv_next(&c, &t)) != 1 || t.raw != p || t.raw_len != len)
        return KV_ERR_CARD_DATA; /* nothing, malformed, padding before it or bytes after it */
    if (t.tag != 0x71 && t.tag != 0x72)
        return KV_ERR_CARD_DATA;
    out->tag = (uint8_t)t.tag;
    kv_cursor_init(&in, t.value, t.len);
    for (;;) {
        if ((r = kv_tlv_next(&in, &e)) < 0)
            return KV_ERR_CARD_DATA;
        if (r == 0)
            break;
        if (e.tag == TAG_SCRIPT_ID) {
            /* the identifier comes once, before the commands */
            if (out->has_id || out->ncmds > 0 || e.len != 4)
                return KV_ERR_CARD_DATA;
            memcpy(out->id, e.value, 4);
            out->has_id = 1;
        } else if (e.tag == TAG_SCRIPT_CMD) {
            if (out->ncmds == KV_SCRIPT_MAX_CMDS || !cmd_ok(e.value, e.len))
                return KV_ERR_CARD_DATA;
            memcpy(out->cmds[out->ncmds].apdu, e.value, e.len);
            out->cmds[out->ncmds].len = e.len;
            out->ncmds++;
        } else {
            return KV_ERR_CARD_DATA;
        }
    }
    if (out->ncmds == 0)
        return KV_ERR_CARD_DATA;
    return 0;
}

int kv_script_parse_all(const uint8_t *p, size_t len, kv_script *out, size_t cap, size_t *n)
{
    kv_cursor c;
    kv_tlv t;
    int r;

    if ((p == NULL && len > 0) || n == NULL || (out == NULL && cap > 0))
        return KV_ERR_ARG;
    *n = 0;
    kv_cursor_init(&c, p, len);
    for (;;) {
        if ((r = kv_tlv_next(&c, &t)) < 0)
            return KV_ERR_CARD_DATA;
        if (r == 0)
            return 0;
        if (t.tag != 0x71 && t.tag != 0x72)
            return KV_ERR_CARD_DATA;
        if (*n == cap)
            return KV_ERR_BUFFER;
        if ((r = kv_script_parse(t.raw, t.raw_len, &out[*n])) != 0)
            return r;
        (*n)++;
    }
}

int kv_script_encode(const kv_script *sc, uint8_t *out, size_t cap, size_t *len)
{
    kv_tlv_writer w;

    if (sc == NULL || len == NULL || (sc->tag != 0x71 && sc->tag != 0x72) ||
        sc->ncmds > KV_SCRIPT_MAX_CMDS)
        return KV_ERR_ARG;
    for (size_t i = 0; i < sc->ncmds; i++)
        if (!cmd_ok(sc->cmds[i].apdu, sc->cmds[i].len))
            return KV_ERR_ARG;
    *len = 0;
    kv_tlv_writer_init(&w, out, out != NULL ? cap : 0);
    kv_tlv_begin(&w, sc->tag);
    if (sc->has_id)
        kv_tlv_put(&w, TAG_SCRIPT_ID, sc->id, 4);
    for (size_t i = 0; i < sc->ncmds; i++)
        kv_tlv_put(&w, TAG_SCRIPT_CMD, sc->cmds[i].apdu, sc->cmds[i].len);
    kv_tlv_end(&w);
    if (kv_tlv_finish(&w) != 0)
        return KV_ERR_BUFFER;
    *len = w.len;
    return 0;
}

/* Book 3 §10.10: the script goes on after 90xx, 62xx and 63xx only. */
static int sw_continues(uint16_t sw)
{
    uint8_t sw1 = (uint8_t)(sw >> 8);
    return sw1 == 0x90 || sw1 == 0x62 || sw1 == 0x63;
}

static void fail_bits(const kv_script *sc, uint8_t tvr[5])
{
    kv_tvr_set(tvr, sc->tag == 0x71 ? KV_TVR_SCRIPT_FAILED_BEFORE : KV_TVR_SCRIPT_FAILED_AFTER);
}

int kv_emv_script_run(kv_emv *s, const kv_script *sc, uint8_t tvr[5], uint8_t tsi[2],
                      kv_script_result *out, size_t cap, size_t *n)
{
    uint8_t resp[258];
    size_t rlen;

    if (n != NULL)
        *n = 0;
    if (s == NULL || sc == NULL || tvr == NULL || tsi == NULL || out == NULL || n == NULL ||
        (sc->tag != 0x71 && sc->tag != 0x72) || sc->ncmds == 0 || sc->ncmds > KV_SCRIPT_MAX_CMDS ||
        cap < sc->ncmds)
        return KV_ERR_ARG;
    kv_tsi_set(tsi, KV_TSI_SCRIPT_PERFORMED);
    for (size_t i = 0; i < sc->ncmds; i++) {
        const kv_script_cmd *cmd = &sc->cmds[i];
        kv_script_result *res = &out[i];
        kv_capdu c;
        uint16_t sw = 0;
        int r;

        memset(res, 0, sizeof(*res));
        res->tag = sc->tag;
        if (sc->has_id)
            memcpy(res->id, sc->id, 4);
        res->seq = (unsigned)(i + 1);
        res->ins = cmd->len >= 2 ? cmd->apdu[1] : 0;
        (*n)++;
        /* a command the parser would refuse is this script's failure, not a card's */
        if (!cmd_ok(cmd->apdu, cmd->len) || kv_capdu_parse(cmd->apdu, cmd->len, &c) != 0) {
            res->result = 1;
            fail_bits(sc, tvr);
            return 0;
        }
        if ((r = kv_emv_command(s, &c, resp, sizeof(resp), &rlen, &sw)) != 0) {
            res->result = 1;
            fail_bits(sc, tvr);
            return r;
        }
        res->sw = sw;
        if (!sw_continues(sw)) {
            res->result = 1;
            fail_bits(sc, tvr);
            return 0;
        }
        res->result = 2;
    }
    return 0;
}

size_t kv_script_results_9f5b(const kv_script_result *r, size_t n, uint8_t *out, size_t cap)
{
    size_t len = 0;

    if (r == NULL || out == NULL)
        return 0;
    for (size_t i = 0; i < n && len + 5 <= cap; i++) {
        unsigned seq = r[i].seq > 15 ? 15 : r[i].seq;
        unsigned res = r[i].result < 0 || r[i].result > 2 ? 0 : (unsigned)r[i].result;
        out[len] = (uint8_t)((res << 4) | seq);
        memcpy(out + len + 1, r[i].id, 4);
        len += 5;
    }
    return len;
}

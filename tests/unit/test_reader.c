/*
 * Tests of the transport (apdu/reader.h), traces (apdu/trace.h) and the
 * recorded card (apdu/recorded.h), without pcscd:
 *   - 61xx answered by GET RESPONSE, repeatedly, data concatenated; 6Cxx by
 *     re-sending with Le = xx; both over the replay backend, whose script
 *     fails on any other byte, so the exact wire traffic is checked;
 *   - the caller's APDU reaches the card unchanged (a custom backend logs it);
 *   - hostile cards: endless 61xx, answers bigger than the buffer;
 *   - trace masking of VERIFY data and PANs, and replay of a masked trace;
 *   - the recorded card's matching rules on a real trace card (tests/data/traces).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include <cmocka.h>

#include "apdu/reader.h"
#include "apdu/recorded.h"
#include "apdu/trace.h"
#include "src/base/err.h"
#include "tests/unit/apdu_test_util.h"

/* ---- transport over replay scripts ---- */

struct xfer_row {
    const char *name;
    const char *script; /* trace lines */
    const char *capdu;  /* what the caller sends */
    int rc;
    const char *want;    /* the caller's answer: data and SW */
    unsigned long count; /* exchanges on the wire */
};

static const struct xfer_row xfer_rows[] = {
    {"plain 9000", "{\"c\":\"80CA9F1700\",\"r\":\"9F1701039000\"}\n", "80CA9F1700", 0,
     "9F1701039000", 1},
    {"61xx once",
     "{\"c\":\"00A4040007A000000003101000\",\"r\":\"6104\"}\n"
     "{\"c\":\"00C0000004\",\"r\":\"6F0284009000\"}\n",
     "00A4040007A000000003101000", 0, "6F0284009000", 2},
    {"61xx with data in the first answer",
     "{\"c\":\"80A8000002830000\",\"r\":\"80066102\"}\n"
     "{\"c\":\"00C0000002\",\"r\":\"00016103\"}\n"
     "{\"c\":\"00C0000003\",\"r\":\"0801019000\"}\n",
     "80A8000002830000", 0, "8006000108010190 00", 3},
    {"6100 asks 256 bytes",
     "{\"c\":\"00B2010C00\",\"r\":\"6100\"}\n"
     "{\"c\":\"00C0000000\",\"r\":\"70009000\"}\n",
     "00B2010C00", 0, "70009000", 2},
    {"6Cxx on a case 2 command",
     "{\"c\":\"80CA9F1700\",\"r\":\"6C04\"}\n"
     "{\"c\":\"80CA9F1704\",\"r\":\"9F1701039000\"}\n",
     "80CA9F1700", 0, "9F1701039000", 2},
    {"6Cxx on a case 1 command adds Le",
     "{\"c\":\"00B00000\",\"r\":\"6C02\"}\n"
     "{\"c\":\"00B0000002\",\"r\":\"AABB9000\"}\n",
     "00B00000", 0, "AABB9000", 2},
    {"6Cxx on a case 4 command keeps the data",
     "{\"c\":\"0088000004DEADBEEF00\",\"r\":\"6C02\"}\n"
     "{\"c\":\"0088000004DEADBEEF02\",\"r\":\"01029000\"}\n",
     "0088000004DEADBEEF00", 0, "01029000", 2},
    {"6Cxx then 61xx",
     "{\"c\":\"80CA9F3600\",\"r\":\"6C05\"}\n"
     "{\"c\":\"80CA9F3605\",\"r\":\"6105\"}\n"
     "{\"c\":\"00C0000005\",\"r\":\"9F360200069000\"}\n",
     "80CA9F3600", 0, "9F360200069000", 3},
    {"GET RESPONSE answered 6Cxx",
     "{\"c\":\"00A40400023F0000\",\"r\":\"6110\"}\n"
     "{\"c\":\"00C0000010\",\"r\":\"6C03\"}\n"
     "{\"c\":\"00C0000003\",\"r\":\"6F01009000\"}\n",
     "00A40400023F0000", 0, "6F01009000", 3},
    {"6Cxx twice: the second answer is returned",
     "{\"c\":\"80CA9F1700\",\"r\":\"6C04\"}\n"
     "{\"c\":\"80CA9F1704\",\"r\":\"6C05\"}\n",
     "80CA9F1700", 0, "6C05", 2},
    {"error SW passes through", "{\"c\":\"00A4040002A000\",\"r\":\"6A82\"}\n", "00A4040002A000", 0,
     "6A82", 1},
    {"mismatch", "{\"c\":\"80CA9F1700\",\"r\":\"9000\"}\n", "80CA9F3600", KV_ERR_REPLAY_MISMATCH,
     "", 0},
    {"end of script", "", "80CA9F1700", KV_ERR_REPLAY_END, "", 0},
    {"X nibbles match anything",
     "{\"c\":\"80A80000068304XXXXXXXX00\",\"r\":\"770A820218009404080205009000\"}\n",
     "80A8000006830412345678 00", 0, "770A820218009404080205009000", 1},
    {"X nibble is one nibble", "{\"c\":\"00D60000041X345678\",\"r\":\"9000\"}\n",
     "00D600000422345678", KV_ERR_REPLAY_MISMATCH, "", 0},
    {"X nibble matches", "{\"c\":\"00D60000041X345678\",\"r\":\"9000\"}\n", "00D600000415345678", 0,
     "9000", 1},
    {"GPO data is terminal data: same length matches",
     "{\"c\":\"80A80000068304AABBCCDD00\",\"r\":\"9000\"}\n", "80A8000006830412345678 00", 0,
     "9000", 1},
    {"GPO of another length does not", "{\"c\":\"80A80000068304AABBCCDD00\",\"r\":\"9000\"}\n",
     "80A800000783051234567899 00", KV_ERR_REPLAY_MISMATCH, "", 0},
};

static void run_xfer(const struct xfer_row *t)
{
    kv_reader *r = NULL;
    uint8_t c[300], got[600], want[600];
    size_t clen = unhex(t->capdu, c, sizeof(c)), wlen = unhex(t->want, want, sizeof(want)), glen;
    int rc;

    assert_int_equal(kv_reader_open_replay_text(t->script, strlen(t->script), &r), 0);
    rc = kv_reader_transmit(r, c, clen, got, sizeof(got), &glen);
    if (rc != t->rc) {
        print_error("%s: rc %d (%s), want %d\n", t->name, rc, kv_strerror(rc), t->rc);
        fail();
    }
    if (rc == 0) {
        assert_bytes(t->name, got, glen, want, wlen);
        if (kv_reader_apdu_count(r) != t->count || kv_reader_replay_left(r) != 0) {
            print_error("%s: %lu exchanges, %zu left, want %lu and 0\n", t->name,
                        kv_reader_apdu_count(r), kv_reader_replay_left(r), t->count);
            fail();
        }
    }
    kv_reader_free(r);
}

static void test_transport_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(xfer_rows) / sizeof(xfer_rows[0]); i++) {
        run_xfer(&xfer_rows[i]);
    }
}

/* Three GET RESPONSEs, 300 bytes in all: bigger than a short APDU can carry. */
static void test_61xx_repeated_long(void **state)
{
    char script[4096], data[3][201], want[700];
    size_t n = 0;
    struct xfer_row t = {"61xx three times", script, "00B2010C00", 0, NULL, 4};
    (void)state;
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < 100; i++)
            snprintf(data[k] + 2 * i, 3, "%02X", (unsigned)(k * 100 + i) & 0xFF);
    }
    n += (size_t)snprintf(script + n, sizeof(script) - n,
                          "{\"c\":\"00B2010C00\",\"r\":\"6164\"}\n"
                          "{\"c\":\"00C0000064\",\"r\":\"%s6164\"}\n",
                          data[0]);
    n += (size_t)snprintf(script + n, sizeof(script) - n,
                          "{\"c\":\"00C0000064\",\"r\":\"%s6164\"}\n", data[1]);
    snprintf(script + n, sizeof(script) - n, "{\"c\":\"00C0000064\",\"r\":\"%s9000\"}\n", data[2]);
    snprintf(want, sizeof(want), "%s%s%s9000", data[0], data[1], data[2]);
    t.want = want;
    run_xfer(&t);
}

/* ---- a custom backend: logs the commands it gets, answers from a list ---- */

struct scripted {
    uint8_t sent[8][300];
    size_t sent_len[8];
    size_t nsent;
    const char *answers[8]; /* hex; the last one repeats */
    size_t nanswers;
    unsigned long calls;
};

static int scripted_transmit(void *ctx, const uint8_t *c, size_t len, uint8_t *out, size_t cap,
                             size_t *outlen)
{
    struct scripted *s = ctx;
    const char *a = s->answers[s->calls < s->nanswers ? s->calls : s->nanswers - 1];
    int n;
    if (s->nsent < 8 && len <= sizeof(s->sent[0])) {
        memcpy(s->sent[s->nsent], c, len);
        s->sent_len[s->nsent++] = len;
    }
    s->calls++;
    if ((n = kv_hex_decode(a, out, cap)) < 0)
        return KV_ERR_BUFFER;
    *outlen = (size_t)n;
    return 0;
}

static int scripted_atr(void *ctx, uint8_t *out, size_t cap, size_t *len)
{
    (void)ctx;
    if (cap < 2)
        return KV_ERR_BUFFER;
    out[0] = 0x3B;
    out[1] = 0x00;
    *len = 2;
    return 0;
}

static const kv_transport_ops scripted_ops = {
    .name = "scripted",
    .transmit = scripted_transmit,
    .atr = scripted_atr,
};

/* Commands of every case and form, answered 9000 or an error: each reaches the card as given. */
static const char *const unchanged_rows[] = {
    "00A40400",
    "80CA9F1700",
    "00A4040007A000000003101000",
    "84A4040007A0000000031010",
    "0020008008241234FFFFFFFFFF",
    "00B0000000010000",
    "00D6000000000311223344",
    "80AE80001D0000000010000000000000000002080000000000020825013100AABBCCDD00",
    "0CB2010C00",
    "FFFFFFFF",
};

static void test_caller_apdu_unchanged(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(unchanged_rows) / sizeof(unchanged_rows[0]); i++) {
        for (int a = 0; a < 3; a++) {
            static const char *const answers[] = {"9000", "6A82", "01026985"};
            struct scripted *s = calloc(1, sizeof(*s));
            kv_reader *r = NULL;
            uint8_t c[300], out[300];
            size_t clen = unhex(unchanged_rows[i], c, sizeof(c)), olen;
            s->answers[0] = answers[a];
            s->nanswers = 1;
            assert_int_equal(kv_reader_new(&scripted_ops, s, &r), 0);
            assert_int_equal(kv_reader_transmit(r, c, clen, out, sizeof(out), &olen), 0);
            assert_int_equal(s->nsent, 1);
            assert_bytes(unchanged_rows[i], s->sent[0], s->sent_len[0], c, clen);
            assert_int_equal(kv_reader_apdu_count(r), 1);
            kv_reader_free(r);
            free(s);
        }
    }
}

static void test_hostile_cards(void **state)
{
    struct scripted *s = calloc(1, sizeof(*s));
    kv_reader *r = NULL;
    uint8_t c[] = {0x00, 0xB2, 0x01, 0x0C, 0x00}, out[600];
    size_t olen;
    (void)state;
    /* a card that answers 6100 for ever: bounded */
    s->answers[0] = "6100";
    s->nanswers = 1;
    assert_int_equal(kv_reader_new(&scripted_ops, s, &r), 0);
    assert_int_equal(kv_reader_transmit(r, c, sizeof(c), out, sizeof(out), &olen), KV_ERR_APDU);
    assert_int_equal(kv_reader_apdu_count(r), KV_READER_MAX_GET_RESPONSE + 1);
    kv_reader_free(r);
    free(s);

    /* 61xx chaining past the caller's buffer */
    s = calloc(1, sizeof(*s));
    s->answers[0] = "6108";
    s->answers[1] = "01020304050607086108";
    s->nanswers = 2;
    assert_int_equal(kv_reader_new(&scripted_ops, s, &r), 0);
    assert_int_equal(kv_reader_transmit(r, c, sizeof(c), out, 20, &olen), KV_ERR_BUFFER);
    kv_reader_free(r);
    free(s);

    /* an answer of one byte */
    s = calloc(1, sizeof(*s));
    s->answers[0] = "90";
    s->nanswers = 1;
    assert_int_equal(kv_reader_new(&scripted_ops, s, &r), 0);
    assert_int_equal(kv_reader_transmit(r, c, sizeof(c), out, sizeof(out), &olen), KV_ERR_APDU);
    assert_string_equal(kv_reader_backend(r), "scripted");
    kv_reader_free(r);
    free(s);
}

/* ---- traces ---- */

struct mask_row {
    const char *name;
    const char *bytes;
    int is_command;
    const char *pan;
    const char *want;
};

static const struct mask_row mask_rows[] = {
    {"VERIFY data masked", "0020008008241234FFFFFFFFFF", 1, NULL, "0020008008XXXXXXXXXXXXXXXX"},
    {"VERIFY without data", "0020008000", 1, NULL, "0020008000"},
    {"not a command: no VERIFY rule", "0020008008241234FFFFFFFFFF", 0, NULL,
     "0020008008241234FFFFFFFFFF"},
    {"PAN in 5A", "5A0847613400000000509000", 0, "4761340000000050", "5A08476134XXXXXX00509000"},
    {"PAN in 57 track 2", "57104761340000000050D1712201125234519000", 0, "4761340000000050",
     "5710476134XXXXXX0050D1712201125234519000"},
    {"19-digit PAN, F padded", "5A0A6726420000000000006F", 0, "6726420000000000006",
     "5A0A672642XXXXXXXXX0006F"},
    {"ASCII PAN (track 1)", "5612 42 35343133333330303839363030303434 5E", 0, "5413330089600044",
     "561242353431333333XXXXXXXXXXXX303034345E"},
    {"PAN elsewhere untouched when not known", "5A0847613400000000509000", 0, NULL,
     "5A0847613400000000509000"},
};

static void test_mask(void **state)
{
    uint8_t b[128];
    char hex[300];
    (void)state;
    for (size_t i = 0; i < sizeof(mask_rows) / sizeof(mask_rows[0]); i++) {
        const struct mask_row *t = &mask_rows[i];
        size_t n = unhex(t->bytes, b, sizeof(b));
        const char *pans[1] = {t->pan};
        kv_trace_mask_hex(b, n, t->is_command, pans, t->pan ? 1 : 0, hex);
        if (strcmp(hex, t->want) != 0) {
            print_error("%s:\n  got  %s\n  want %s\n", t->name, hex, t->want);
            fail();
        }
    }
}

/* Write a session's trace, check the masking, then replay the masked trace. */
static void test_trace_write_and_replay(void **state)
{
    struct scripted *s = calloc(1, sizeof(*s));
    kv_reader *r = NULL, *re = NULL;
    kv_trace *t = NULL;
    char *text = NULL;
    size_t tlen = 0, olen;
    FILE *mem = open_memstream(&text, &tlen);
    uint8_t out[300], c[64];
    static const char *const cmds[] = {
        "00B2010C00",                 /* record with the PAN: learnt here */
        "00B2020C00",                 /* a later record with the PAN in ASCII only */
        "0020008008241234FFFFFFFFFF", /* VERIFY */
    };
    (void)state;
    s->answers[0] = "70155A0847613498765400505F24031712319F0702FF009000";
    s->answers[1] = "70139F1F10343736313334393837363534303035309000";
    s->answers[2] = "63C2";
    s->nanswers = 3;
    assert_non_null(mem);
    assert_int_equal(kv_reader_new(&scripted_ops, s, &r), 0);
    assert_int_equal(kv_trace_new_fp(mem, &t), 0);
    kv_reader_set_trace(r, t);
    for (size_t i = 0; i < 3; i++) {
        size_t n = unhex(cmds[i], c, sizeof(c));
        assert_int_equal(kv_reader_transmit(r, c, n, out, sizeof(out), &olen), 0);
    }
    kv_trace_free(t);
    fclose(mem);
    /* nothing of the PIN block or the PAN's middle digits is in the text */
    if (strstr(text, "241234") != NULL || strstr(text, "4761349876540050") != NULL ||
        strstr(text, "34373631333439383736353430303530") != NULL ||
        strstr(text, "\"c\":\"0020008008XXXXXXXXXXXXXXXX\"") == NULL ||
        strstr(text, "5A08476134XXXXXX0050") == NULL ||
        strstr(text, "9F1F10343736313334XXXXXXXXXXXX30303530") == NULL ||
        strstr(text, "\"t\":") == NULL) {
        print_error("masked trace:\n%s\n", text);
        fail();
    }
    /* replay: the same commands match (VERIFY with any PIN), masked digits read as 0 */
    assert_int_equal(kv_reader_open_replay_text(text, tlen, &re), 0);
    for (size_t i = 0; i < 3; i++) {
        size_t n = unhex(cmds[i], c, sizeof(c));
        if (i == 2)
            c[6] = 0x99; /* another PIN */
        assert_int_equal(kv_reader_transmit(re, c, n, out, sizeof(out), &olen), 0);
        if (i == 0) {
            uint8_t want[32];
            size_t wlen =
                unhex("70155A0847613400000000505F24031712319F0702FF009000", want, sizeof(want));
            assert_bytes("replayed record", out, olen, want, wlen);
        }
        if (i == 2)
            assert_int_equal(kv_sw_of(out, olen), 0x63C2);
    }
    assert_int_equal(kv_reader_replay_left(re), 0);
    kv_reader_free(re);
    kv_reader_free(r);
    free(s);
    free(text);
}

struct parse_row {
    const char *name;
    const char *text;
    int rc;
    size_t n;
};

static const struct parse_row trace_parse_rows[] = {
    {"empty", "", 0, 0},
    {"blank lines", "\n  \n\r\n", 0, 0},
    {"two lines, no final newline",
     "{\"c\":\"80CA9F1700\",\"r\":\"9000\"}\n{\"c\":\"80CA9F3600\",\"r\":\"6A88\",\"t\":5}", 0, 2},
    {"atr line", "{\"atr\":\"3B00\"}\n{\"c\":\"80CA9F1700\",\"r\":\"9000\"}\n", 0, 1},
    {"not JSON", "c=80CA9F1700\n", KV_ERR_TRACE, 0},
    {"not an object", "[1,2]\n", KV_ERR_TRACE, 0},
    {"missing r", "{\"c\":\"80CA9F1700\"}\n", KV_ERR_TRACE, 0},
    {"odd hex", "{\"c\":\"80CA9F170\",\"r\":\"9000\"}\n", KV_ERR_TRACE, 0},
    {"bad hex", "{\"c\":\"80CA9F17ZZ\",\"r\":\"9000\"}\n", KV_ERR_TRACE, 0},
    {"command of 3 bytes", "{\"c\":\"80CA9F\",\"r\":\"9000\"}\n", KV_ERR_TRACE, 0},
    {"answer of 1 byte", "{\"c\":\"80CA9F17\",\"r\":\"90\"}\n", KV_ERR_TRACE, 0},
    {"t not a number", "{\"c\":\"80CA9F17\",\"r\":\"9000\",\"t\":\"x\"}\n", KV_ERR_TRACE, 0},
    {"bad atr", "{\"atr\":\"3BZ0\"}\n", KV_ERR_TRACE, 0},
};

static void test_trace_parse(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(trace_parse_rows) / sizeof(trace_parse_rows[0]); i++) {
        const struct parse_row *t = &trace_parse_rows[i];
        kv_trace_script *s = NULL;
        int rc = kv_trace_parse(t->text, strlen(t->text), &s);
        if (rc != t->rc || (rc == 0 && s->n != t->n)) {
            print_error("%s: rc %d n %zu, want rc %d n %zu\n", t->name, rc, rc == 0 ? s->n : 0,
                        t->rc, t->n);
            fail();
        }
        kv_trace_script_free(s);
    }
}

/* ---- the recorded card ---- */

struct rec_row {
    const char *name;
    const char *capdu;
    const char *want; /* whole answer, hex */
};

/* unionpay_pse_3apps: PSE and the application both use SFI 1 (README: `selected`). */
static const struct rec_row rec_rows[] = {
    {"READ RECORD before any SELECT: only `selected` exchanges exist", "00B2010C00", "6A83"},
    {"GPO with nothing selected: a known instruction", "80A8000002830000", "6A88"},
    {"GET DATA recorded without `selected`", "80CA9F3600", "9F360200069000"},
    {"GET DATA not recorded", "80CA9F1700", "6A88"},
    {"unknown instruction", "0084000008", "6D00"},
    {"not an APDU", "00B2", "6700"},
    {"unknown SELECT", "00A4040007A000000003101000", "6A82"},
    {"SELECT PSE, Le ignored", "00A404000E315041592E5359532E4444463031",
     "6F15840E315041592E5359532E4444463031A5038801019000"},
    {"PSE record 1", "00B2010C00",
     "701C611A4F08A000000333010102500B55494343204352454449548701019000"},
    {"PSE record 4 recorded as 6A83", "00B2040C00", "6A83"},
    {"a failed SELECT keeps the selection", "00A4040005A000000001", "6A82"},
    {"PSE record 2 still", "00B2020C00",
     "701B61194F08A000000333010101500A554943432044454249548701029000"},
    {"SELECT the application", "00A4040008A00000033301010200",
     "6F3B8408A000000333010102A52F500B55494343204352454449548701015F2D02636E9F1101019F120B"
     "5549434320435245444954BF0C059F4D020B0A9000"},
    {"same READ RECORD, now the application's record", "00B2030C00",
     "701B9F080200205F300202019F49039F37049F420201565F25031109019000"},
    {"GPO, Le different from the recording", "80A80000028300",
     "800E7C000801030010010501200101009000"},
    {"GPO with other data", "80A800000483020000", "6A88"},
    {"record not recorded", "00B2090C00", "6A83"},
};

static void test_recorded(void **state)
{
    char path[512];
    kv_recorded *c = NULL;
    uint8_t cmd[64], out[300], want[300], atr[33];
    size_t olen;
    (void)state;
    assert_int_equal(
        kv_recorded_load(data_path(path, sizeof(path), "traces/cards/unionpay_pse_3apps.json"), &c),
        0);
    assert_int_equal(kv_recorded_atr(c, atr, sizeof(atr)), 14);
    assert_int_equal(kv_recorded_atr(c, atr, 2), 14); /* too small: length only */
    for (size_t i = 0; i < sizeof(rec_rows) / sizeof(rec_rows[0]); i++) {
        const struct rec_row *t = &rec_rows[i];
        size_t n = unhex(t->capdu, cmd, sizeof(cmd)), wlen = unhex(t->want, want, sizeof(want));
        assert_int_equal(kv_recorded_answer(c, cmd, n, out, sizeof(out), &olen), 0);
        assert_bytes(t->name, out, olen, want, wlen);
    }
    /* reset: nothing selected again */
    kv_recorded_reset(c);
    assert_int_equal(
        kv_recorded_answer(c, (const uint8_t *)"\x00\xB2\x03\x0C\x00", 5, out, sizeof(out), &olen),
        0);
    assert_int_equal(kv_sw_of(out, olen), 0x6A83);
    /* an answer that does not fit */
    assert_int_equal(
        kv_recorded_answer(c, (const uint8_t *)"\x80\xCA\x9F\x36\x00", 5, out, 4, &olen),
        KV_ERR_BUFFER);
    assert_int_equal(
        kv_recorded_answer(c, (const uint8_t *)"\x80\xCA\x9F\x36\x00", 5, out, 1, &olen),
        KV_ERR_ARG);
    kv_recorded_free(c);
}

/* XX in a recorded capdu: any PDOL data of the recorded length (visa_debit_ppse GPO). */
static void test_recorded_wildcards(void **state)
{
    char path[512];
    kv_reader *r = NULL;
    uint8_t c[64], out[300];
    size_t n, olen;
    (void)state;
    assert_int_equal(kv_reader_open_recorded(
                         data_path(path, sizeof(path), "traces/cards/visa_debit_ppse.json"), &r),
                     0);
    n = unhex("00A4040007A000000003101000", c, sizeof(c));
    assert_int_equal(kv_reader_transmit(r, c, n, out, sizeof(out), &olen), 0);
    assert_int_equal(kv_sw_of(out, olen), 0x9000);
    n = unhex("80A8000023 8321 36004000 000000001000 000000000000 0208 0000000000 0208 250131 00 "
              "DEADBEEF 00",
              c, sizeof(c));
    assert_int_equal(kv_reader_transmit(r, c, n, out, sizeof(out), &olen), 0);
    assert_int_equal(kv_sw_of(out, olen), 0x9000);
    assert_int_equal(out[0], 0x77);
    /* one byte short of the recorded length: no match */
    n = unhex("80A8000022 8320 36004000 000000001000 000000000000 0208 0000000000 0208 250131 00 "
              "DEADBE 00",
              c, sizeof(c));
    assert_int_equal(kv_reader_transmit(r, c, n, out, sizeof(out), &olen), 0);
    assert_int_equal(kv_sw_of(out, olen), 0x6A88);
    assert_string_equal(kv_reader_backend(r), "recorded");
    kv_reader_free(r);
}

struct load_row {
    const char *name;
    const char *json; /* NULL: a path that does not exist */
    int rc;
};

static const struct load_row load_rows[] = {
    {"missing file", NULL, KV_ERR_IO},
    {"not JSON", "exchanges:", KV_ERR_JSON},
    {"no exchanges", "{\"atr\":\"3B00\"}", KV_ERR_JSON},
    {"bad capdu hex", "{\"exchanges\":[{\"capdu\":\"00A4ZZ00\",\"rapdu\":\"9000\"}]}", KV_ERR_JSON},
    {"short capdu", "{\"exchanges\":[{\"capdu\":\"00A404\",\"rapdu\":\"9000\"}]}", KV_ERR_JSON},
    {"short rapdu", "{\"exchanges\":[{\"capdu\":\"00A40400\",\"rapdu\":\"90\"}]}", KV_ERR_JSON},
    {"wildcard in the header", "{\"exchanges\":[{\"capdu\":\"00XX0400\",\"rapdu\":\"9000\"}]}",
     KV_ERR_JSON},
    {"capdu lengths inconsistent",
     "{\"exchanges\":[{\"capdu\":\"00A4040005A000\",\"rapdu\":\"9000\"}]}", KV_ERR_JSON},
    {"bad selected",
     "{\"exchanges\":[{\"capdu\":\"00B2010C00\",\"rapdu\":\"9000\","
     "\"selected\":\"nothex\"}]}",
     KV_ERR_JSON},
    {"bad atr", "{\"atr\":\"3BZZ\",\"exchanges\":[]}", KV_ERR_JSON},
    {"minimal", "{\"exchanges\":[]}", 0},
};

static void test_recorded_load_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(load_rows) / sizeof(load_rows[0]); i++) {
        const struct load_row *t = &load_rows[i];
        const char *path = t->json ? write_temp(t->json) : "/nonexistent/card.json";
        kv_recorded *c = NULL;
        int rc = kv_recorded_load(path, &c);
        if (rc != t->rc) {
            print_error("%s: rc %d, want %d\n", t->name, rc, t->rc);
            fail();
        }
        kv_recorded_free(c);
        if (t->json)
            unlink(path);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transport_table),
        cmocka_unit_test(test_61xx_repeated_long),
        cmocka_unit_test(test_caller_apdu_unchanged),
        cmocka_unit_test(test_hostile_cards),
        cmocka_unit_test(test_mask),
        cmocka_unit_test(test_trace_write_and_replay),
        cmocka_unit_test(test_trace_parse),
        cmocka_unit_test(test_recorded),
        cmocka_unit_test(test_recorded_wildcards),
        cmocka_unit_test(test_recorded_load_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

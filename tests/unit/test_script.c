/*
 * apdu/script.h: issuer script templates (EMV Book 3 §10.10, Annex A 71, 72,
 * 86, 9F18, 9F5B) parsed, encoded and run against a scripted card (replay
 * transport): the stop at the first command answered with SW1 other than 90,
 * 62, 63, the TVR byte 5 and TSI byte 1 script bits, and the 9F5B bytes. The
 * expected bytes are written by hand from the Annex A layouts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "apdu/emv.h"
#include "apdu/reader.h"
#include "apdu/script.h"
#include "apdu/tvr.h"
#include "src/base/err.h"

#include "apdu_test_util.h"

/* ---- parse ---- */

static const struct prow {
    const char *name, *hex;
    int rc;
    int has_id;
    size_t ncmds;
} prows[] = {
    {"one command", "710F 860D 841E000008 1122334455667788", 0, 0, 1},
    {"id and two commands",
     "7223 9F1804 01020304 860E 8424000008 1122334455667788 AA 860A 04DA9F1405 0511223344", 0, 1,
     2},
    {"case 1 and case 2 commands", "710D 8604 00A40400 8605 00B2010C00", 0, 0, 2},
    {"case 4 command", "710A 8608 00A4040002 3F00 00", 0, 0, 1},
    {"long-form length", "71 81 0F 860D 841E000008 1122334455667788", 0, 0, 1},
    {"no commands", "7107 9F1804 01020304", KV_ERR_CARD_DATA, 0, 0},
    {"empty template", "7100", KV_ERR_CARD_DATA, 0, 0},
    {"id of 3 bytes", "7111 9F1803 010203 8609 8418000004 11223344", KV_ERR_CARD_DATA, 0, 0},
    {"id after a command", "7112 8609 8418000004 11223344 9F1804 01020304", KV_ERR_CARD_DATA, 0, 0},
    {"two ids", "7119 9F1804 01020304 9F1804 01020304 8609 8418000004 11223344", KV_ERR_CARD_DATA,
     0, 0},
    {"Lc disagrees", "710B 8609 8418000005 11223344", KV_ERR_CARD_DATA, 0, 0},
    {"Lc 0 with data", "7108 8606 841800000011", KV_ERR_CARD_DATA, 0, 0},
    {"command of 3 bytes", "7105 8603 841800", KV_ERR_CARD_DATA, 0, 0},
    {"other tag inside", "710E 8609 8418000004 11223344 9F0100", KV_ERR_CARD_DATA, 0, 0},
    {"not 71/72", "700B 8609 8418000004 11223344", KV_ERR_CARD_DATA, 0, 0},
    {"cut", "710C 8609 8418000004 11223344", KV_ERR_CARD_DATA, 0, 0},
    {"bytes after", "710B 8609 8418000004 11223344 00", KV_ERR_CARD_DATA, 0, 0},
    {"86 cut inside", "710B 860A 8418000004 11223344", KV_ERR_CARD_DATA, 0, 0},
    {"nine commands",
     "7136 8604 00000000 8604 00000000 8604 00000000 8604 00000000 8604 00000000 "
     "8604 00000000 8604 00000000 8604 00000000 8604 00000000",
     KV_ERR_CARD_DATA, 0, 0},
};

static void test_parse(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(prows) / sizeof(prows[0]); i++) {
        const struct prow *w = &prows[i];
        uint8_t in[512], again[512];
        size_t n = unhex(w->hex, in, sizeof(in)), m;
        kv_script sc;
        int rc = kv_script_parse(in, n, &sc);
        if (rc != w->rc) {
            print_error("%s: rc %d, want %d\n", w->name, rc, w->rc);
            fail();
        }
        if (rc != 0)
            continue;
        assert_int_equal(sc.has_id, w->has_id);
        assert_int_equal(sc.ncmds, w->ncmds);
        assert_int_equal(sc.tag, in[0]);
        /* encode gives the same bytes back (short-form lengths where they were) */
        assert_int_equal(kv_script_encode(&sc, again, sizeof(again), &m), 0);
        if (in[1] != 0x81)
            assert_bytes(w->name, again, m, in, n);
    }
}

static void test_parse_fields(void **state)
{
    uint8_t in[128];
    size_t n = unhex("7223 9F1804 01020304 860E 8424000008 1122334455667788 AA "
                     "860A 04DA9F1405 0511223344",
                     in, sizeof(in));
    uint8_t id[4] = {1, 2, 3, 4}, c2[10];
    size_t c2n = unhex("04DA9F1405 0511223344", c2, sizeof(c2));
    kv_script sc;
    (void)state;
    assert_int_equal(kv_script_parse(in, n, &sc), 0);
    assert_int_equal(sc.tag, 0x72);
    assert_memory_equal(sc.id, id, 4);
    assert_int_equal(sc.cmds[0].len, 14);
    assert_int_equal(sc.cmds[0].apdu[1], 0x24);
    assert_bytes("command 2", sc.cmds[1].apdu, sc.cmds[1].len, c2, c2n);
    assert_int_equal(kv_script_parse(NULL, 0, &sc), KV_ERR_ARG);
}

static void test_parse_all(void **state)
{
    uint8_t in[256];
    size_t n, k;
    kv_script sc[KV_SCRIPT_MAX];
    (void)state;
    n = unhex("710B 8609 8418000004 11223344 00 FF "
              "7212 9F1804 0A0B0C0D 8609 841E000004 55667788",
              in, sizeof(in));
    assert_int_equal(kv_script_parse_all(in, n, sc, KV_SCRIPT_MAX, &k), 0);
    assert_int_equal(k, 2);
    assert_int_equal(sc[0].tag, 0x71);
    assert_int_equal(sc[1].tag, 0x72);
    assert_int_equal(sc[1].has_id, 1);
    /* capacity 1: too many */
    assert_int_equal(kv_script_parse_all(in, n, sc, 1, &k), KV_ERR_BUFFER);
    /* nothing is no script and no error */
    assert_int_equal(kv_script_parse_all(in, 0, sc, KV_SCRIPT_MAX, &k), 0);
    assert_int_equal(k, 0);
    /* another object between them */
    n = unhex("710B 8609 8418000004 11223344 9F0100", in, sizeof(in));
    assert_int_equal(kv_script_parse_all(in, n, sc, KV_SCRIPT_MAX, &k), KV_ERR_CARD_DATA);
    /* one bad template spoils the lot */
    n = unhex("710B 8609 8418000004 11223344 710B 8609 8418000005 11223344", in, sizeof(in));
    assert_int_equal(kv_script_parse_all(in, n, sc, KV_SCRIPT_MAX, &k), KV_ERR_CARD_DATA);
}

static void test_encode_limits(void **state)
{
    kv_script sc;
    uint8_t out[16];
    size_t n;
    (void)state;
    memset(&sc, 0, sizeof(sc));
    sc.tag = 0x71;
    sc.ncmds = 1;
    sc.cmds[0].len = unhex("8418000004 11223344", sc.cmds[0].apdu, KV_SCRIPT_CMD_MAX);
    assert_int_equal(kv_script_encode(&sc, out, 12, &n), KV_ERR_BUFFER);
    assert_int_equal(kv_script_encode(&sc, out, 13, &n), 0);
    assert_int_equal(n, 13);
    sc.tag = 0x70;
    assert_int_equal(kv_script_encode(&sc, out, sizeof(out), &n), KV_ERR_ARG);
    sc.tag = 0x71;
    sc.cmds[0].len = 7; /* Lc says 4 */
    assert_int_equal(kv_script_encode(&sc, out, sizeof(out), &n), KV_ERR_ARG);
}

/* ---- run against a scripted card ---- */

static kv_emv *scripted(const char *script, kv_reader **r)
{
    kv_emv *s = NULL;
    assert_int_equal(kv_reader_open_replay_text(script, strlen(script), r), 0);
    assert_int_equal(kv_emv_new(*r, NULL, &s), 0);
    return s;
}

static void parse_hex(const char *hex, kv_script *sc)
{
    uint8_t in[512];
    size_t n = unhex(hex, in, sizeof(in));
    assert_int_equal(kv_script_parse(in, n, sc), 0);
}

#define T71 "7125 9F1804 0A0B0C0D 860D 841E000008 1122334455667788 860D 8424000008 99AABBCCDDEEFF00"

static void test_run_ok(void **state)
{
    kv_reader *r = NULL;
    kv_emv *s;
    kv_script sc;
    kv_script_result res[KV_SCRIPT_MAX_CMDS];
    uint8_t tvr[5] = {0}, tsi[2] = {0}, b[64], want[64];
    size_t n, bl, wl;
    static const char *card = "{\"c\":\"841E0000081122334455667788\",\"r\":\"9000\"}\n"
                              "{\"c\":\"842400000899AABBCCDDEEFF00\",\"r\":\"6283\"}\n";
    (void)state;
    s = scripted(card, &r);
    parse_hex(T71, &sc);
    assert_int_equal(kv_emv_script_run(s, &sc, tvr, tsi, res, KV_SCRIPT_MAX_CMDS, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(res[0].sw, 0x9000);
    assert_int_equal(res[0].result, 2);
    assert_int_equal(res[0].seq, 1);
    assert_int_equal(res[0].ins, 0x1E);
    assert_int_equal(res[0].tag, 0x71);
    assert_int_equal(res[1].sw, 0x6283);
    assert_int_equal(res[1].result, 2);
    assert_true(kv_tsi_isset(tsi, KV_TSI_SCRIPT_PERFORMED));
    assert_int_equal(tvr[4], 0); /* no failure bit */
    assert_int_equal(kv_reader_replay_left(r), 0);
    /* 9F5B: 21 0A0B0C0D, 22 0A0B0C0D */
    bl = kv_script_results_9f5b(res, n, b, sizeof(b));
    wl = unhex("21 0A0B0C0D 22 0A0B0C0D", want, sizeof(want));
    assert_bytes("9F5B", b, bl, want, wl);
    /* room for one result only */
    assert_int_equal(kv_script_results_9f5b(res, n, b, 9), 5);
    kv_emv_free(s);
    kv_reader_free(r);
}

static void test_run_stops(void **state)
{
    kv_reader *r = NULL;
    kv_emv *s;
    kv_script sc;
    kv_script_result res[KV_SCRIPT_MAX_CMDS];
    uint8_t tvr[5] = {0}, tsi[2] = {0}, b[64], want[64];
    size_t n, bl, wl;
    /* the first command fails with 6988 (wrong MAC): the second is never sent */
    static const char *card = "{\"c\":\"841E0000081122334455667788\",\"r\":\"6988\"}\n";
    (void)state;
    s = scripted(card, &r);
    parse_hex(T71, &sc);
    assert_int_equal(kv_emv_script_run(s, &sc, tvr, tsi, res, KV_SCRIPT_MAX_CMDS, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(res[0].sw, 0x6988);
    assert_int_equal(res[0].result, 1);
    assert_true(kv_tvr_isset(tvr, KV_TVR_SCRIPT_FAILED_BEFORE));
    assert_false(kv_tvr_isset(tvr, KV_TVR_SCRIPT_FAILED_AFTER));
    assert_true(kv_tsi_isset(tsi, KV_TSI_SCRIPT_PERFORMED));
    bl = kv_script_results_9f5b(res, n, b, sizeof(b));
    wl = unhex("11 0A0B0C0D", want, sizeof(want));
    assert_bytes("9F5B failed", b, bl, want, wl);
    kv_emv_free(s);
    kv_reader_free(r);
}

static void test_run_72_fails_second(void **state)
{
    kv_reader *r = NULL;
    kv_emv *s;
    kv_script sc;
    kv_script_result res[KV_SCRIPT_MAX_CMDS];
    uint8_t tvr[5] = {0}, tsi[2] = {0}, b[64], want[64];
    size_t n, bl, wl;
    static const char *card = "{\"c\":\"8418000004AABBCCDD\",\"r\":\"6310\"}\n"
                              "{\"c\":\"8416000004EEFF0011\",\"r\":\"6A81\"}\n";
    (void)state;
    s = scripted(card, &r);
    parse_hex("721C 8609 8418000004 AABBCCDD 8609 8416000004 EEFF0011 8604 00000000", &sc);
    assert_int_equal(kv_emv_script_run(s, &sc, tvr, tsi, res, KV_SCRIPT_MAX_CMDS, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(res[0].result, 2); /* 63xx goes on */
    assert_int_equal(res[1].result, 1);
    assert_int_equal(res[1].sw, 0x6A81);
    assert_true(kv_tvr_isset(tvr, KV_TVR_SCRIPT_FAILED_AFTER));
    assert_false(kv_tvr_isset(tvr, KV_TVR_SCRIPT_FAILED_BEFORE));
    /* no 9F18: the identifier bytes are zero */
    bl = kv_script_results_9f5b(res, n, b, sizeof(b));
    wl = unhex("21 00000000 12 00000000", want, sizeof(want));
    assert_bytes("9F5B 72", b, bl, want, wl);
    kv_emv_free(s);
    kv_reader_free(r);
}

static void test_run_transport_error(void **state)
{
    kv_reader *r = NULL;
    kv_emv *s;
    kv_script sc;
    kv_script_result res[KV_SCRIPT_MAX_CMDS];
    uint8_t tvr[5] = {0}, tsi[2] = {0};
    size_t n;
    /* the card has nothing more to say: a transport error, the script failed */
    static const char *card = "{\"c\":\"0084000000\",\"r\":\"9000\"}\n";
    (void)state;
    s = scripted(card, &r);
    parse_hex(T71, &sc);
    assert_true(kv_emv_script_run(s, &sc, tvr, tsi, res, KV_SCRIPT_MAX_CMDS, &n) < 0);
    assert_int_equal(n, 1);
    assert_int_equal(res[0].result, 1);
    assert_true(kv_tvr_isset(tvr, KV_TVR_SCRIPT_FAILED_BEFORE));
    /* argument errors */
    assert_int_equal(kv_emv_script_run(s, &sc, tvr, tsi, res, 1, &n), KV_ERR_ARG);
    assert_int_equal(kv_emv_script_run(s, NULL, tvr, tsi, res, KV_SCRIPT_MAX_CMDS, &n), KV_ERR_ARG);
    kv_emv_free(s);
    kv_reader_free(r);
}

static void test_9f5b_seq_cap(void **state)
{
    kv_script_result res[1];
    uint8_t b[5];
    (void)state;
    memset(res, 0, sizeof(res));
    res[0].seq = 17;
    res[0].result = 2;
    assert_int_equal(kv_script_results_9f5b(res, 1, b, sizeof(b)), 5);
    assert_int_equal(b[0], 0x2F); /* 15 or above */
    res[0].result = 0;
    res[0].seq = 0;
    assert_int_equal(kv_script_results_9f5b(res, 1, b, sizeof(b)), 5);
    assert_int_equal(b[0], 0x00);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parse_fields),
        cmocka_unit_test(test_parse_all),
        cmocka_unit_test(test_encode_limits),
        cmocka_unit_test(test_run_ok),
        cmocka_unit_test(test_run_stops),
        cmocka_unit_test(test_run_72_fails_second),
        cmocka_unit_test(test_run_transport_error),
        cmocka_unit_test(test_9f5b_seq_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

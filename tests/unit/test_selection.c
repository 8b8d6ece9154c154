/*
 * Tests of the EMV session (apdu/emv.h) without pcscd:
 *   - selection scripts over the replay backend, which fails on any command
 *     other than the scripted one, so the order of the wire traffic is part
 *     of the test: PSE (directory records until 6A83), PPSE (BF0C entries),
 *     the AID-list fallback with next-occurrence selection (P2 02), the
 *     contact / contactless narrowing, priorities (87 low nibble, absent
 *     last, card order among equals) and a blocked first choice;
 *   - GPO 6985 moving on to the next application;
 *   - VERIFY with the plaintext PIN block (EMV Book 3 §6.5.12) and its results;
 *   - every trace card of tests/data/traces/cards ($KV_TEST_DATA) read through
 *     the recorded backend: pan, expiry, aids, selected_aid, psn and label
 *     must equal the facts the file itself states.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>
#include <glob.h>
#include <jansson.h>

#include "apdu/emv.h"
#include "apdu/reader.h"
#include "src/base/err.h"
#include "tests/unit/apdu_test_util.h"

#define SEL_PSE "00A404000E315041592E5359532E444446303100"
#define SEL_PPSE "00A404000E325041592E5359532E444446303100"
#define LINE(c, r) "{\"c\":\"" c "\",\"r\":\"" r "\"}\n"

struct sel_row {
    const char *name;
    unsigned iface;
    const char *script;
    int rc;
    int selection;
    const char *aids[6]; /* candidate AIDs in card order */
    const char *selected;
    const char *label;
};

static const struct sel_row sel_rows[] = {
    {"PSE: two directory records then 6A83",
     KV_EMV_IFACE_ANY,
     LINE(SEL_PSE, "6F15840E315041592E5359532E4444463031A5038801019000")
     /* record 1: Visa credit, priority 2; record 2: Visa debit, priority 1 */
     LINE("00B2010C00", "70166114 4F07A0000000031010 5006435245444954 8701029000")
         LINE("00B2020C00", "70156113 4F07A0000000032010 50054445424954 87010190 00")
             LINE("00B2030C00", "6A83")
                 LINE("00A4040007A000000003201000", "6F108407A0000000032010A5055003444542 9000"),
     0,
     KV_EMV_SEL_PSE,
     {"A0000000031010", "A0000000032010"},
     "A0000000032010",
     "DEB"},
    {"PPSE: PSE absent, BF0C with two entries",
     KV_EMV_IFACE_ANY,
     LINE(SEL_PSE, "6A82") LINE(SEL_PPSE, "6F31840E325041592E5359532E4444463031A51FBF0C1C"
                                          "610C4F07A0000000041010 870102"
                                          "610C4F07A0000000043060 870101 9000")
         LINE("00A4040007A000000004306000", "6F0D8407A0000000043060A5028700 9000"),
     0,
     KV_EMV_SEL_PPSE,
     {"A0000000041010", "A0000000043060"},
     "A0000000043060",
     ""},
    {"contactless: no SELECT PSE",
     KV_EMV_IFACE_CONTACTLESS,
     LINE(SEL_PPSE, "6F23840E325041592E5359532E4444463031A511BF0C0E610C4F07A0000000031010"
                    "8701019000") LINE("00A4040007A000000003101000", "6F098407A00000000310109000"),
     0,
     KV_EMV_SEL_PPSE,
     {"A0000000031010"},
     "A0000000031010",
     ""},
    {"contact: PSE, then the AID list without PPSE",
     KV_EMV_IFACE_CONTACT,
     LINE(SEL_PSE, "6A82") LINE("00A4040007A000000003101000",
                                "6F168407A0000000031010A50B50095649534120544553549000")
         LINE("00A4040007A000000003201000", "6A82") LINE("00A4040007A000000003202000", "6A82")
             LINE("00A4040007A000000004101000", "6A82") LINE("00A4040007A000000004306000", "6A82")
                 LINE("00A4040007A000000121101000", "6A82")
                     LINE("00A4040007A000000003101000",
                          "6F168407A0000000031010A50B50095649534120544553549000"),
     0,
     KV_EMV_SEL_AID_LIST,
     {"A0000000031010"},
     "A0000000031010",
     "VISA TEST"},
    {"priorities: 1 before 2 before 3 before absent, card order among equals, blocked skipped",
     KV_EMV_IFACE_ANY,
     LINE(SEL_PSE, "6A82")
         LINE(SEL_PPSE, "6F4E840E325041592E5359532E4444463031A53CBF0C39"
                        "61074F05A000000001"       /* A: no priority */
                        "610A4F05A000000002870103" /* B: 3 */
                        "610A4F05A000000003870101" /* C: 1 */
                        "610A4F05A000000004870181" /* D: 1 (bit 8: confirmation) */
                        "610A4F05A000000005870102" /* E: 2 */
                        "9000") LINE("00A4040005A00000000300", "6283") /* C blocked */
     LINE("00A4040005A00000000400", "6F0C8405A000000004A503870181 9000"),
     0,
     KV_EMV_SEL_PPSE,
     {"A000000001", "A000000002", "A000000003", "A000000004", "A000000005"},
     "A000000004",
     ""},
    {"no application anywhere",
     KV_EMV_IFACE_CONTACTLESS,
     LINE(SEL_PPSE, "6A82") LINE("00A4040007A000000003101000", "6A82")
         LINE("00A4040007A000000003201000", "6A82") LINE("00A4040007A000000003202000", "6A82")
             LINE("00A4040007A000000004101000", "6A82") LINE("00A4040007A000000004306000", "6A82")
                 LINE("00A4040007A000000121101000", "6A82"),
     KV_ERR_NO_APPLICATION,
     0,
     {NULL},
     NULL,
     NULL},
    {"card blocked (6A81) stops the AID list",
     KV_EMV_IFACE_CONTACTLESS,
     LINE(SEL_PPSE, "6A82") LINE("00A4040007A000000003101000", "6A81"),
     KV_ERR_NO_APPLICATION,
     0,
     {NULL},
     NULL,
     NULL},
};

/* Strip the spaces the table uses for readability inside the JSON strings. */
static char *squeeze(const char *s)
{
    char *o = malloc(strlen(s) + 1), *p = o;
    for (; *s; s++)
        if (*s != ' ')
            *p++ = *s;
    *p = '\0';
    return o;
}

static void check_selection(const struct sel_row *t, kv_emv *s)
{
    const kv_emv_card *c = kv_emv_card_data(s);
    uint8_t a[16];
    size_t n = 0, alen;
    if (c->selection != t->selection) {
        print_error("%s: selection %s, want %s\n", t->name, kv_emv_selection_name(c->selection),
                    kv_emv_selection_name(t->selection));
        fail();
    }
    while (n < 6 && t->aids[n] != NULL)
        n++;
    if (c->napps != n) {
        print_error("%s: %zu applications, want %zu\n", t->name, c->napps, n);
        fail();
    }
    for (size_t i = 0; i < n; i++) {
        alen = unhex(t->aids[i], a, sizeof(a));
        assert_bytes(t->name, c->apps[i].aid, c->apps[i].aid_len, a, alen);
    }
    alen = unhex(t->selected, a, sizeof(a));
    assert_true(c->has_selected);
    assert_bytes(t->name, c->selected.aid, c->selected.aid_len, a, alen);
    if (strcmp(c->selected.label, t->label) != 0) {
        print_error("%s: label '%s', want '%s'\n", t->name, c->selected.label, t->label);
        fail();
    }
}

static void test_selection_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(sel_rows) / sizeof(sel_rows[0]); i++) {
        const struct sel_row *t = &sel_rows[i];
        char *script = squeeze(t->script);
        kv_reader *r = NULL;
        kv_emv *s = NULL;
        int rc;
        assert_int_equal(kv_reader_open_replay_text(script, strlen(script), &r), 0);
        assert_int_equal(kv_emv_new(r, NULL, &s), 0);
        rc = kv_emv_select(s, t->iface);
        if (rc != t->rc) {
            print_error("%s: rc %d (%s), want %d (%s)\n", t->name, rc, kv_strerror(rc), t->rc,
                        kv_strerror(t->rc));
            fail();
        }
        if (rc == 0) {
            check_selection(t, s);
            if (kv_reader_replay_left(r) != 0) {
                print_error("%s: %zu scripted exchanges not used\n", t->name,
                            kv_reader_replay_left(r));
                fail();
            }
        }
        kv_emv_free(s);
        kv_reader_free(r);
        free(script);
    }
}

/*
 * The AID list's partial matches: Dankort's AID extends to two DF names,
 * found with P2 00 then 02; exact matches are not followed by P2 02.
 */
static void test_aid_list_partial(void **state)
{
    static const char script[] =
        LINE(SEL_PSE, "6A82") LINE(SEL_PPSE, "6A82") LINE("00A4040007A000000003101000", "6A82")
            LINE("00A4040007A000000003201000", "6A82") LINE("00A4040007A000000003202000", "6A82")
                LINE("00A4040007A000000004101000",
                     "6F1A8407A0000000041010A50F500A4D41535445524341524487010390 00")
                    LINE("00A4040007A000000004306000",
                         "6A82") LINE("00A4040007A000000121101000",
                                      "6F198409A00000012110100101A50C5007444B204B4F5254870102 9000")
                        LINE("00A4040207A000000121101000",
                             "6F198409A00000012110100102A50C5007444B2044454249870101 9000")
                            LINE("00A4040207A000000121101000",
                                 "6A82") LINE("00A4040007A000000999999900", "6A82")
                                LINE("00A4040009A0000001211010010200",
                                     "6F198409A00000012110100102A50C5007444B2044454249870101 9000");
    struct sel_row t = {"AID list partial",
                        KV_EMV_IFACE_ANY,
                        script,
                        0,
                        KV_EMV_SEL_AID_LIST,
                        {"A0000000041010", "A00000012110100101", "A00000012110100102"},
                        "A00000012110100102",
                        "DK DEBI"};
    char *sq = squeeze(script);
    kv_reader *r = NULL;
    kv_emv *s = NULL;
    static const uint8_t extra[] = {0xA0, 0x00, 0x00, 0x09, 0x99, 0x99, 0x99};
    (void)state;
    assert_int_equal(kv_reader_open_replay_text(sq, strlen(sq), &r), 0);
    assert_int_equal(kv_emv_new(r, NULL, &s), 0);
    assert_int_equal(kv_emv_add_aid(s, extra, sizeof(extra)), 0);
    assert_int_equal(kv_emv_add_aid(s, extra, 4), KV_ERR_ARG);
    assert_int_equal(kv_emv_select(s, KV_EMV_IFACE_ANY), 0);
    check_selection(&t, s);
    assert_int_equal(kv_reader_replay_left(r), 0);
    kv_emv_free(s);
    kv_reader_free(r);
    free(sq);
}

/* GPO answered 6985: the application is dropped and the next one selected (EMV Book 3 §10.1). */
static void test_gpo_6985_next(void **state)
{
    static const char script[] =
        LINE(SEL_PSE, "6A82") LINE(SEL_PPSE, "6F31840E325041592E5359532E4444463031A51FBF0C1C"
                                             "610C4F07A0000000041010870101"
                                             "610C4F07A0000000043060870102 9000")
            LINE("00A4040007A000000004101000", "6F098407A00000000410109000")
                LINE("80A8000002830000", "6985")
                    LINE("00A4040007A000000004306000", "6F098407A00000000430609000")
                        LINE("80A8000002830000", "800A1C00 08010101 10010201 9000")
                            LINE("00B2010C00", "70045F3401019000")
                                LINE("00B2011400", "700A5A0854133300896000449000")
                                    LINE("00B2021400", "70065F24031412319000")
                                        LINE("80CA9F1700", "9F1701039000")
                                            LINE("80CA9F3600", "6A88") LINE("80CA9F1300", "6A81")
                                                LINE("80CA9F4F00", "9F4F059A039F02069000");
    char *sq = squeeze(script);
    kv_reader *r = NULL;
    kv_emv *s = NULL;
    const kv_emv_card *c;
    (void)state;
    assert_int_equal(kv_reader_open_replay_text(sq, strlen(sq), &r), 0);
    assert_int_equal(kv_emv_new(r, NULL, &s), 0);
    assert_int_equal(kv_emv_read_card(s, KV_EMV_IFACE_ANY), 0);
    c = kv_emv_card_data(s);
    assert_int_equal(c->selected.aid[6], 0x60);
    assert_string_equal(c->pan, "5413330089600044");
    assert_string_equal(c->expiry, "1412");
    assert_int_equal(c->psn, 1);
    assert_int_equal(c->nrecords, 3);
    assert_int_equal(c->records[0].oda, 1);
    assert_int_equal(c->records[1].oda, 1);
    assert_int_equal(c->records[2].oda, 0);
    assert_int_equal(c->pin_try_counter, 3);
    assert_false(c->has_atc);
    assert_false(c->has_last_online_atc);
    assert_int_equal(c->log_format_len, 5);
    assert_int_equal(kv_reader_apdu_count(r), 13);
    assert_int_equal(kv_reader_replay_left(r), 0);
    kv_emv_free(s);
    kv_reader_free(r);
    free(sq);
}

/* Bad GPO answers and AFLs are card data errors, not crashes. */
struct gpo_row {
    const char *name;
    const char *gpo; /* GPO answer */
    const char *rec; /* answer to READ RECORD SFI 1 record 1 (if read) */
    int rc;
};

static const struct gpo_row gpo_rows[] = {
    {"format 1 without AFL", "80021C009000", NULL, 0},
    {"format 1 AFL not a multiple of 4", "80051C000801019000", NULL, KV_ERR_CARD_DATA},
    {"format 2 without AIP", "7706940408010100 9000", NULL, KV_ERR_CARD_DATA},
    {"unknown template", "7A0482021C009000", NULL, KV_ERR_CARD_DATA},
    {"AFL with SFI 0", "80061C00000101009000", NULL, KV_ERR_CARD_DATA},
    {"AFL last < first", "80061C00080201009000", NULL, KV_ERR_CARD_DATA},
    {"AFL ODA count too big", "80061C00080101029000", NULL, KV_ERR_CARD_DATA},
    {"record not a 70 template", "80061C00080101009000", "5A0112 9000", KV_ERR_CARD_DATA},
    {"record missing", "80061C00080101009000", "6A83", KV_ERR_CARD_RECORD},
    {"record malformed", "80061C00080101009000", "7005 5A0812 9000", KV_ERR_CARD_DATA},
    {"GPO 6A88", "6A88", NULL, KV_ERR_CARD_NO_DATA},
    {"truncated GPO", "800A1C00 9000", NULL, KV_ERR_CARD_DATA},
};

static void test_gpo_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(gpo_rows) / sizeof(gpo_rows[0]); i++) {
        const struct gpo_row *t = &gpo_rows[i];
        char script[1024], *sq;
        kv_reader *r = NULL;
        kv_emv *s = NULL;
        int rc;
        snprintf(script, sizeof(script),
                 LINE(SEL_PPSE,
                      "6F23840E325041592E5359532E4444463031A511BF0C0E610C4F07A0000000031010"
                      "8701019000") LINE("00A4040007A000000003101000", "6F098407A00000000310109000")
                     LINE("80A8000002830000", "%s") "%s%s%s",
                 t->gpo, t->rec ? "{\"c\":\"00B2010C00\",\"r\":\"" : "", t->rec ? t->rec : "",
                 t->rec ? "\"}\n" : "");
        sq = squeeze(script);
        assert_int_equal(kv_reader_open_replay_text(sq, strlen(sq), &r), 0);
        assert_int_equal(kv_emv_new(r, NULL, &s), 0);
        assert_int_equal(kv_emv_select(s, KV_EMV_IFACE_CONTACTLESS), 0);
        rc = kv_emv_gpo(s);
        if (rc == 0)
            rc = kv_emv_read_records(s);
        if (rc != t->rc) {
            print_error("%s: rc %d (%s), want %d (%s)\n", t->name, rc, kv_strerror(rc), t->rc,
                        kv_strerror(t->rc));
            fail();
        }
        kv_emv_free(s);
        kv_reader_free(r);
        free(sq);
    }
}

/* VERIFY: the PIN block bytes and the outcome of each answer. */
struct pin_row {
    const char *name;
    const char *pin;
    const char *capdu; /* expected on the wire; NULL: nothing sent */
    const char *answer;
    int rc;
    int status;
    int tries;
};

static const struct pin_row pin_rows[] = {
    {"verified", "1234", "0020008008241234FFFFFFFFFF", "9000", 0, KV_PIN_VERIFIED, -1},
    {"12 digits", "123456789012", "00200080082C123456789012FF", "9000", 0, KV_PIN_VERIFIED, -1},
    {"odd length", "12345", "0020008008251234 5FFFFFFFFF", "9000", 0, KV_PIN_VERIFIED, -1},
    {"wrong, 2 left", "0000", "0020008008240000FFFFFFFFFF", "63C2", 0, KV_PIN_WRONG, 2},
    {"wrong, 0 left", "0000", "0020008008240000FFFFFFFFFF", "63C0", 0, KV_PIN_WRONG, 0},
    {"wrong, count unknown", "0000", "0020008008240000FFFFFFFFFF", "6300", 0, KV_PIN_WRONG, -1},
    {"blocked", "1234", "0020008008241234FFFFFFFFFF", "6983", 0, KV_PIN_BLOCKED, 0},
    {"invalidated", "1234", "0020008008241234FFFFFFFFFF", "6984", 0, KV_PIN_BLOCKED, 0},
    {"not supported is an error", "1234", "0020008008241234FFFFFFFFFF", "6D00", KV_ERR_CARD_INS, 0,
     0},
    {"3 digits", "123", NULL, NULL, KV_ERR_ARG, 0, 0},
    {"13 digits", "1234567890123", NULL, NULL, KV_ERR_ARG, 0, 0},
    {"not digits", "12a4", NULL, NULL, KV_ERR_ARG, 0, 0},
};

static void test_verify_pin(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(pin_rows) / sizeof(pin_rows[0]); i++) {
        const struct pin_row *t = &pin_rows[i];
        char script[256], *sq;
        kv_reader *r = NULL;
        kv_emv *s = NULL;
        kv_pin_result res = {-1, -9};
        int rc;
        if (t->capdu != NULL)
            snprintf(script, sizeof(script), "{\"c\":\"%s\",\"r\":\"%s\"}\n", t->capdu, t->answer);
        else
            script[0] = '\0';
        sq = squeeze(script);
        assert_int_equal(kv_reader_open_replay_text(sq, strlen(sq), &r), 0);
        assert_int_equal(kv_emv_new(r, NULL, &s), 0);
        rc = kv_emv_verify_plain_pin(s, t->pin, strlen(t->pin), &res);
        if (rc != t->rc || (rc == 0 && (res.status != t->status || res.tries_left != t->tries))) {
            print_error("%s: rc %d status %d tries %d, want rc %d status %d tries %d\n", t->name,
                        rc, res.status, res.tries_left, t->rc, t->status, t->tries);
            fail();
        }
        assert_int_equal(kv_reader_replay_left(r), 0);
        kv_emv_free(s);
        kv_reader_free(r);
        free(sq);
    }
}

/* ---- the trace cards ---- */

static const char *fact_string(json_t *card, const char *key)
{
    json_t *v = json_object_get(card, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void expect_fact(const char *card, const char *what, json_t *got, const char *want)
{
    const char *g = json_is_string(got) ? json_string_value(got) : NULL;
    if ((g == NULL) != (want == NULL) || (g != NULL && strcmp(g, want) != 0)) {
        print_error("%s: %s is %s, the card file says %s\n", card, what, g ? g : "null",
                    want ? want : "null");
        fail();
    }
}

static void read_trace_card(const char *path)
{
    json_t *facts = json_load_file(path, 0, NULL), *got = NULL, *want_aids;
    kv_reader *r = NULL;
    kv_emv *s = NULL;
    const char *name = strrchr(path, '/') + 1;
    int rc;

    assert_non_null(facts);
    assert_int_equal(kv_reader_open_recorded(path, &r), 0);
    assert_int_equal(kv_emv_new(r, NULL, &s), 0);
    rc = kv_emv_read_card(s, KV_EMV_IFACE_ANY);
    if (rc != 0) {
        print_error("%s: read failed: %s\n", name, kv_strerror(rc));
        fail();
    }
    got = kv_emv_to_json(s, KV_EMV_REVEAL);
    assert_non_null(got);
    expect_fact(name, "pan", json_object_get(got, "pan"), fact_string(facts, "pan"));
    expect_fact(name, "expiry", json_object_get(got, "expiry"), fact_string(facts, "expiry"));
    expect_fact(name, "selected_aid", json_object_get(got, "selected_aid"),
                fact_string(facts, "selected_aid"));
    expect_fact(name, "psn", json_object_get(got, "psn"), fact_string(facts, "psn"));
    expect_fact(name, "label", json_object_get(got, "label"), fact_string(facts, "label"));
    want_aids = json_object_get(facts, "aids");
    if (!json_equal(want_aids, json_object_get(got, "aids"))) {
        char *a = json_dumps(json_object_get(got, "aids"), JSON_COMPACT);
        char *b = json_dumps(want_aids, JSON_COMPACT);
        print_error("%s: aids %s, the card file says %s\n", name, a, b);
        free(a);
        free(b);
        fail();
    }
    /* every record of the AFL was read and decodes */
    {
        const kv_emv_card *c = kv_emv_card_data(s);
        size_t want_records = 0;
        for (size_t i = 0; i + 4 <= c->afl.len; i += 4)
            want_records += (size_t)(c->afl.p[i + 2] - c->afl.p[i + 1] + 1);
        assert_int_equal(c->nrecords, want_records);
        assert_int_equal(json_array_size(json_object_get(got, "records")), want_records);
        for (size_t i = 0; i < want_records; i++)
            assert_true(json_is_array(
                json_object_get(json_array_get(json_object_get(got, "records"), i), "tlv")));
    }
    json_decref(got);
    /* masked by default: first 6 and last 4 */
    got = kv_emv_to_json(s, 0);
    {
        const char *pan = fact_string(facts, "pan"),
                   *m = json_string_value(json_object_get(got, "pan"));
        size_t n = strlen(pan);
        assert_non_null(m);
        assert_int_equal(strlen(m), n);
        assert_memory_equal(m, pan, 6);
        assert_memory_equal(m + n - 4, pan + n - 4, 4);
        for (size_t k = 6; k < n - 4; k++)
            assert_int_equal(m[k], '*');
    }
    json_decref(got);
    kv_emv_free(s);
    kv_reader_free(r);
    json_decref(facts);
}

static void test_trace_cards(void **state)
{
    char pattern[512];
    glob_t g;
    (void)state;
    assert_int_equal(glob(data_path(pattern, sizeof(pattern), "traces/cards/*.json"), 0, NULL, &g),
                     0);
    assert_true(g.gl_pathc >= 6);
    for (size_t i = 0; i < g.gl_pathc; i++)
        read_trace_card(g.gl_pathv[i]);
    globfree(&g);
}

/* GET DATA values the recordings hold (unionpay: 9F36 0006, 9F13 0001; visa test: 9F17 10). */
static void test_trace_card_get_data(void **state)
{
    char path[512];
    kv_reader *r = NULL;
    kv_emv *s = NULL;
    const kv_emv_card *c;
    (void)state;
    assert_int_equal(kv_reader_open_recorded(
                         data_path(path, sizeof(path), "traces/cards/unionpay_pse_3apps.json"), &r),
                     0);
    assert_int_equal(kv_emv_new(r, NULL, &s), 0);
    assert_int_equal(kv_emv_read_card(s, KV_EMV_IFACE_CONTACT), 0);
    c = kv_emv_card_data(s);
    assert_int_equal(c->selection, KV_EMV_SEL_PSE);
    assert_true(c->has_atc);
    assert_int_equal(c->atc[0] << 8 | c->atc[1], 0x0006);
    assert_true(c->has_last_online_atc);
    assert_int_equal(c->last_online_atc[0] << 8 | c->last_online_atc[1], 0x0001);
    assert_int_equal(c->pin_try_counter, -1);
    assert_int_equal(c->log_format_len, 0);
    kv_emv_free(s);
    kv_reader_free(r);

    assert_int_equal(
        kv_reader_open_recorded(
            data_path(path, sizeof(path), "traces/cards/visa_test_contact_nopse.json"), &r),
        0);
    assert_int_equal(kv_emv_new(r, NULL, &s), 0);
    assert_int_equal(kv_emv_read_card(s, KV_EMV_IFACE_ANY), 0);
    c = kv_emv_card_data(s);
    assert_int_equal(c->selection, KV_EMV_SEL_AID_LIST);
    assert_int_equal(c->pin_try_counter, 0x10);
    assert_int_equal(c->psn, -1);
    assert_non_null(c->cvm_list.p);
    kv_emv_free(s);
    kv_reader_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_selection_table),     cmocka_unit_test(test_aid_list_partial),
        cmocka_unit_test(test_gpo_6985_next),       cmocka_unit_test(test_gpo_errors),
        cmocka_unit_test(test_verify_pin),          cmocka_unit_test(test_trace_cards),
        cmocka_unit_test(test_trace_card_get_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

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
    /*
     * Issue 12 changed this row: D (priority 1 with API bit 8, "cardholder
     * confirmation required") used to be selected automatically; Book 1 §12.4
     * excludes it in a terminal that cannot ask the cardholder, so E (2) is
     * selected now. D with kv_emv_choose_aid: test_confirmation.
     */
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
     LINE("00A4040005A00000000500", "6F0C8405A000000005A503870102 9000"),
     0,
     KV_EMV_SEL_PPSE,
     {"A000000001", "A000000002", "A000000003", "A000000004", "A000000005"},
     "A000000005",
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

/* ---- terminal configuration (issue 12): ASI, DDFs, confirmation, 6A81, 9F09 ---- */

#define PSE_FCI "6F15840E315041592E5359532E4444463031A5038801019000"
#define RR(rec, p2) "00B2" rec p2 "00"

/* A configuration with the given entries only: "AID/asi/9F09" ("A0000000031010/p/0001"). */
static void cfg_build(kv_term_config *c, const char *const *entries)
{
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; entries[i] != NULL; i++) {
        char aid[40];
        char asi;
        unsigned ver;
        kv_aid_config *a = &c->aids[c->naids++];
        assert_int_equal(sscanf(entries[i], "%32[0-9A-F]/%c/%4x", aid, &asi, &ver), 3);
        a->aid_len = unhex(aid, a->aid, sizeof(a->aid));
        a->asi = asi == 'e' ? KV_ASI_EXACT : KV_ASI_PARTIAL;
        a->app_version[0] = (uint8_t)(ver >> 8);
        a->app_version[1] = (uint8_t)ver;
    }
}

struct term_row {
    const char *name;
    unsigned iface;
    const char *cfg[4]; /* NULL-terminated; first NULL: no configuration (card reader) */
    const char *choose; /* kv_emv_choose_aid, or NULL */
    const char *script;
    int rc;
    const char *aids[4]; /* candidates in card order */
    const char *selected;
    const char *cfg_aid; /* kv_emv_selected_config's AID */
    unsigned version;    /* 9F09 after selection */
};

static const struct term_row term_rows[] = {
    {"PSE: partial ASI takes a longer AID, exact ASI does not, unknown AIDs are not candidates",
     KV_EMV_IFACE_CONTACT,
     {"A0000000031010/p/0001", "A0000000041010/e/0002", NULL},
     NULL,
     LINE(SEL_PSE, PSE_FCI)
     /* Visa ...01 (partial: yes, 2), Mastercard ...01 (exact: no, 1) */
     LINE(RR("01", "0C"), "702461134F08A000000003101001500456495341870102"
                          "610D4F08A000000004101001870101 9000")
     /* Mastercard exact (yes, 3), UnionPay (not configured: no, 1) */
     LINE(RR("02", "0C"), "701D610C4F07A0000000041010870103610D4F08A000000333010101870101 9000")
         LINE(RR("03", "0C"), "6A83") LINE("00A4040008A00000000310100100",
                                           "6F158408A000000003101001A509500456495341870102 9000"),
     0,
     {"A000000003101001", "A0000000041010"},
     "A000000003101001",
     "A0000000031010",
     0x0001},
    {"PSE: a DDF entry (9D) is selected and its directory read after the PSE's, once",
     KV_EMV_IFACE_CONTACT,
     {"A0000000041010/e/0002", NULL},
     NULL,
     LINE(SEL_PSE, PSE_FCI)
     /* two entries naming the same DDF; the PSE directory is read to its end first */
     LINE(RR("01", "0C"), "701261079D05F00000000161079D05F000000001 9000") LINE(
         RR("02", "0C"), "6A83") LINE("00A4040005F00000000100", "6F0C8405F000000001A503880102 9000")
     /* the DDF's directory (SFI 2): Mastercard, and the DDF itself again (not followed) */
     LINE(RR("01", "14"), "7017610C4F07A000000004101087010161079D05F000000001 9000")
         LINE(RR("02", "14"), "6A83")
             LINE("00A4040007A000000004101000", "6F0E8407A0000000041010A503870101 9000"),
     0,
     {"A0000000041010"},
     "A0000000041010",
     "A0000000041010",
     0x0002},
    {"PSE: a chain of DDFs is followed 4 levels deep, not 5",
     KV_EMV_IFACE_CONTACT,
     {"A0000000031010/p/0001", NULL},
     NULL,
     LINE(SEL_PSE, PSE_FCI) LINE(RR("01", "0C"), "700961079D05F000000001 9000") LINE(
         RR("02", "0C"), "6A83") LINE("00A4040005F00000000100", "6F0C8405F000000001A503880102 9000")
         LINE(RR("01", "14"), "7018610D4F08A00000000310100187010161079D05F000000002 9000")
             LINE(RR("02", "14"), "6A83") LINE("00A4040005F00000000200",
                                               "6F0C8405F000000002A503880103 9000")
                 LINE(RR("01", "1C"), "7018610D4F08A00000000310100287010261079D05F000000003 9000")
                     LINE(RR("02", "1C"), "6A83") LINE("00A4040005F00000000300",
                                                       "6F0C8405F000000003A503880104 9000")
                         LINE(RR("01", "24"),
                              "7018610D4F08A00000000310100387010361079D05F000000004 9000")
                             LINE(RR("02", "24"), "6A83")
                                 LINE("00A4040005F00000000400", "6F0C8405F000000004A503880105 9000")
     /* the fourth DDF names a fifth: not selected */
     LINE(RR("01", "2C"), "7018610D4F08A00000000310100487010461079D05F000000005 9000")
         LINE(RR("02", "2C"), "6A83")
             LINE("00A4040008A00000000310100100", "6F0A8408A000000003101001 9000"),
     0,
     {"A000000003101001", "A000000003101002", "A000000003101003", "A000000003101004"},
     "A000000003101001",
     "A0000000031010",
     0x0001},
    {"API bit 8 on the only candidate: never selected without a choice",
     KV_EMV_IFACE_CONTACT,
     {"A0000000031010/p/0001", NULL},
     NULL,
     LINE(SEL_PSE, PSE_FCI) LINE(RR("01", "0C"), "700E610C4F07A0000000031010870181 9000")
         LINE(RR("02", "0C"), "6A83"),
     KV_ERR_APP_CONFIRM,
     {NULL},
     NULL,
     NULL,
     0},
    {"API bit 8 with kv_emv_choose_aid: the choice is the confirmation",
     KV_EMV_IFACE_CONTACT,
     {"A0000000031010/p/0001", NULL},
     "A0000000031010",
     LINE(SEL_PSE, PSE_FCI) LINE(RR("01", "0C"), "700E610C4F07A0000000031010870181 9000")
         LINE(RR("02", "0C"), "6A83")
             LINE("00A4040007A000000003101000", "6F0E8407A0000000031010A503870181 9000"),
     0,
     {"A0000000031010"},
     "A0000000031010",
     "A0000000031010",
     0x0001},
    {"API bit 8 on the first choice: the next one is selected automatically",
     KV_EMV_IFACE_CONTACT,
     {"A0000000031010/p/0001", "A0000000041010/p/0002", NULL},
     NULL,
     LINE(SEL_PSE, PSE_FCI)
         LINE(RR("01", "0C"), "701C610C4F07A0000000031010870181610C4F07A0000000041010870102 9000")
             LINE(RR("02", "0C"), "6A83")
                 LINE("00A4040007A000000004101000", "6F0E8407A0000000041010A503870102 9000"),
     0,
     {"A0000000031010", "A0000000041010"},
     "A0000000041010",
     "A0000000041010",
     0x0002},
    {"a chosen AID the card does not offer",
     KV_EMV_IFACE_CONTACT,
     {"A0000000031010/p/0001", "A0000000041010/p/0002", NULL},
     "A0000000043060",
     LINE(SEL_PSE, PSE_FCI)
         LINE(RR("01", "0C"), "701C610C4F07A0000000031010870181610C4F07A0000000041010870102 9000")
             LINE(RR("02", "0C"), "6A83"),
     KV_ERR_NO_APPLICATION,
     {NULL},
     NULL,
     NULL,
     0},
    {"API bit 8 in a card reader session (no configuration) is excluded too",
     KV_EMV_IFACE_CONTACT,
     {NULL},
     NULL,
     LINE(SEL_PSE, PSE_FCI) LINE(RR("01", "0C"), "700E610C4F07A0000000031010870181 9000")
         LINE(RR("02", "0C"), "6A83"),
     KV_ERR_APP_CONFIRM,
     {NULL},
     NULL,
     NULL,
     0},
    {"final SELECT answered with the FCI of another DF name: not selected",
     KV_EMV_IFACE_CONTACT,
     {"A0000000031010/p/0001", NULL},
     NULL,
     LINE(SEL_PSE, PSE_FCI) LINE(RR("01", "0C"), "700E610C4F07A0000000031010870101 9000") LINE(
         RR("02", "0C"), "6A83") LINE("00A4040007A000000003101000", "6F098407A0000000031099 9000"),
     KV_ERR_NO_APPLICATION,
     {NULL},
     NULL,
     NULL,
     0},
    {"SELECT PSE answered 6A81 terminates (Book 1 §12.3.2)",
     KV_EMV_IFACE_ANY,
     {"A0000000031010/p/0001", NULL},
     NULL,
     LINE(SEL_PSE, "6A81"),
     KV_ERR_CARD_BLOCKED,
     {NULL},
     NULL,
     NULL,
     0},
    {"AID list: exact ASI refuses a longer DF name and moves on (Book 1 §12.3.3 step 6); "
     "partial takes it and asks for the next occurrence",
     KV_EMV_IFACE_CONTACT,
     {"A0000000041010/e/0002", "A0000001211010/p/0003", NULL},
     NULL,
     LINE(SEL_PSE, "6A82")
     /* Mastercard, exact: the card's longer name is not a candidate, no P2 02 */
     LINE("00A4040007A000000004101000", "6F0A8408A000000004101001 9000")
     /* Dankort, partial: a candidate, then the next occurrence */
     LINE("00A4040007A000000121101000", "6F118409A00000012110100101A5045002444B 9000")
         LINE("00A4040207A000000121101000", "6A82")
             LINE("00A4040009A0000001211010010100", "6F118409A00000012110100101A5045002444B 9000"),
     0,
     {"A00000012110100101"},
     "A00000012110100101",
     "A0000001211010",
     0x0003},
};

static void run_term_row(const struct term_row *t)
{
    char *script = squeeze(t->script);
    kv_reader *r = NULL;
    kv_emv *s = NULL;
    kv_term_config cfg;
    uint8_t a[16];
    size_t alen, n = 0;
    int rc;
    const kv_emv_card *c;
    const kv_aid_config *ac;

    assert_int_equal(kv_reader_open_replay_text(script, strlen(script), &r), 0);
    assert_int_equal(kv_emv_new(r, NULL, &s), 0);
    if (t->cfg[0] != NULL) {
        cfg_build(&cfg, t->cfg);
        kv_emv_set_term_config(s, &cfg);
    }
    if (t->choose != NULL) {
        alen = unhex(t->choose, a, sizeof(a));
        assert_int_equal(kv_emv_choose_aid(s, a, alen), 0);
    }
    rc = kv_emv_select(s, t->iface);
    if (rc != t->rc) {
        print_error("%s: rc %d (%s), want %d (%s)\n", t->name, rc, kv_strerror(rc), t->rc,
                    kv_strerror(t->rc));
        fail();
    }
    if (kv_reader_replay_left(r) != 0) {
        print_error("%s: %zu scripted exchanges not used\n", t->name, kv_reader_replay_left(r));
        fail();
    }
    c = kv_emv_card_data(s);
    if (rc == 0) {
        while (n < 4 && t->aids[n] != NULL)
            n++;
        if (c->napps != n) {
            print_error("%s: %zu candidates, want %zu\n", t->name, c->napps, n);
            fail();
        }
        for (size_t i = 0; i < n; i++) {
            alen = unhex(t->aids[i], a, sizeof(a));
            assert_bytes(t->name, c->apps[i].aid, c->apps[i].aid_len, a, alen);
        }
        alen = unhex(t->selected, a, sizeof(a));
        assert_bytes(t->name, c->selected.aid, c->selected.aid_len, a, alen);
        ac = kv_emv_selected_config(s);
        assert_non_null(ac);
        alen = unhex(t->cfg_aid, a, sizeof(a));
        assert_bytes(t->name, ac->aid, ac->aid_len, a, alen);
        assert_int_equal(kv_emv_terminal(s)->app_version[0] << 8 |
                             kv_emv_terminal(s)->app_version[1],
                         t->version);
    } else {
        assert_false(c->has_selected);
        assert_null(kv_emv_selected_config(s));
    }
    kv_emv_free(s);
    kv_reader_free(r);
    free(script);
}

static void test_terminal_selection(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(term_rows) / sizeof(term_rows[0]); i++)
        run_term_row(&term_rows[i]);
}

/* kv_emv_choose_aid takes 5..16 bytes. */
static void test_choose_aid_args(void **state)
{
    static const uint8_t aid[17] = {0xA0};
    kv_emv *s = NULL;
    (void)state;
    assert_int_equal(kv_emv_new(NULL, NULL, &s), 0);
    assert_int_equal(kv_emv_choose_aid(s, aid, 4), KV_ERR_ARG);
    assert_int_equal(kv_emv_choose_aid(s, aid, 17), KV_ERR_ARG);
    assert_int_equal(kv_emv_choose_aid(s, NULL, 7), KV_ERR_ARG);
    assert_int_equal(kv_emv_choose_aid(s, aid, 16), 0);
    assert_null(kv_emv_selected_config(s));
    kv_emv_free(s);
}

/*
 * GPO 6985: the next candidate is selected and its terminal data apply
 * (9F09 and kv_emv_selected_config follow the newly selected AID).
 */
static void test_gpo_6985_applies_next_config(void **state)
{
    static const char script[] = LINE(SEL_PSE, PSE_FCI)
        LINE(RR("01", "0C"), "701C610C4F07A0000000041010870101610C4F07A0000000031010870102 9000")
            LINE(RR("02", "0C"), "6A83")
                LINE("00A4040007A000000004101000", "6F098407A0000000041010 9000")
                    LINE("80A8000002830000", "6985")
                        LINE("00A4040007A000000003101000", "6F098407A0000000031010 9000")
                            LINE("80A8000002830000", "80061C00080101009000");
    static const char *const entries[] = {"A0000000031010/p/1111", "A0000000041010/p/2222", NULL};
    char *sq = squeeze(script);
    kv_reader *r = NULL;
    kv_emv *s = NULL;
    kv_term_config cfg;
    const kv_aid_config *ac;
    (void)state;
    cfg_build(&cfg, entries);
    assert_int_equal(kv_reader_open_replay_text(sq, strlen(sq), &r), 0);
    assert_int_equal(kv_emv_new(r, NULL, &s), 0);
    kv_emv_set_term_config(s, &cfg);
    assert_int_equal(kv_emv_select(s, KV_EMV_IFACE_CONTACT), 0);
    ac = kv_emv_selected_config(s);
    assert_non_null(ac);
    assert_int_equal(ac->aid[4], 0x04);
    assert_memory_equal(kv_emv_terminal(s)->app_version, "\x22\x22", 2);
    assert_int_equal(kv_emv_gpo(s), 0);
    assert_int_equal(kv_emv_card_data(s)->selected.aid[4], 0x03);
    ac = kv_emv_selected_config(s);
    assert_non_null(ac);
    assert_int_equal(ac->aid[4], 0x03);
    assert_memory_equal(kv_emv_terminal(s)->app_version, "\x11\x11", 2);
    assert_int_equal(kv_reader_replay_left(r), 0);
    kv_emv_free(s);
    kv_reader_free(r);
    free(sq);
}

/* ---- records: duplicates, mandatory data, ODA records ---- */

#define PPSE_VISA                                                                                  \
    LINE(SEL_PPSE, "6F23840E325041592E5359532E4444463031A511BF0C0E610C4F07A0000000031010"          \
                   "8701019000")                                                                   \
    LINE("00A4040007A000000003101000", "6F098407A00000000310109000")

/* The session after GPO (answer gpo) and READ RECORD of SFI 1 records 1-2 (rec1, rec2). */
static int read_two(const char *gpo, const char *rec1, const char *rec2, const char *rec3,
                    kv_reader **r, kv_emv **s)
{
    char script[2048], *sq;
    int rc;
    snprintf(script, sizeof(script),
             PPSE_VISA LINE("80A8000002830000", "%s") LINE(RR("01", "0C"), "%s")
                 LINE(RR("02", "0C"), "%s") "%s%s%s",
             gpo, rec1, rec2, rec3 ? "{\"c\":\"" RR("01", "5C") "\",\"r\":\"" : "",
             rec3 ? rec3 : "", rec3 ? "\"}\n" : "");
    sq = squeeze(script);
    assert_int_equal(kv_reader_open_replay_text(sq, strlen(sq), r), 0);
    free(sq);
    assert_int_equal(kv_emv_new(*r, NULL, s), 0);
    assert_int_equal(kv_emv_select(*s, KV_EMV_IFACE_CONTACTLESS), 0);
    if ((rc = kv_emv_gpo(*s)) != 0)
        return rc;
    return kv_emv_read_records(*s);
}

#define GPO_F1 "80061C00080102009000"               /* AFL: SFI 1 records 1-2 */
#define GPO_F1_SFI11 "800A1C0008010200580101009000" /* and SFI 11 record 1 */
#define REC_PAN_EXP "70105A0847617390010100105F24032912319000"
#define REC_PAN "700A5A0847617390010100109000"
#define REC_EXP "70065F24032912319000"

static const struct dup_row {
    const char *name, *gpo, *rec1, *rec2, *rec3;
    int rc;
} dup_rows[] = {
    {"distinct objects", GPO_F1, REC_PAN, REC_EXP, NULL, 0},
    {"5A in two records", GPO_F1, REC_PAN_EXP, REC_PAN, NULL, KV_ERR_CARD_DUPLICATE},
    {"5A twice in one record", GPO_F1, "70145A0847617390010100105A084761739001010010 9000", REC_EXP,
     NULL, KV_ERR_CARD_DUPLICATE},
    {"9F36 in the GPO answer (77) and a record", "770F82021C009404080102009F36020001 9000", REC_PAN,
     "700B5F24032912319F36020001 9000", NULL, KV_ERR_CARD_DUPLICATE},
    {"AIP of a format 1 answer again in a record", GPO_F1, REC_PAN, "700A5F240329123182021C00 9000",
     NULL, KV_ERR_CARD_DUPLICATE},
    {"the same child inside two nested templates is not a duplicate", GPO_F1,
     "700F5A084761739001010010A503500158 9000", "700B5F2403291231A503500158 9000", NULL, 0},
    {"an SFI 11 record that is not TLV is not counted", GPO_F1_SFI11, REC_PAN, REC_EXP,
     "0102035A5A 9000", 0},
    {"an SFI 11 record in a 70 template is counted", GPO_F1_SFI11, REC_PAN, REC_EXP,
     "70035F2400 9000", KV_ERR_CARD_DUPLICATE},
};

static void test_record_duplicates(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(dup_rows) / sizeof(dup_rows[0]); i++) {
        const struct dup_row *t = &dup_rows[i];
        kv_reader *r = NULL;
        kv_emv *s = NULL;
        int rc = read_two(t->gpo, t->rec1, t->rec2, t->rec3, &r, &s);
        if (rc != t->rc) {
            print_error("%s: rc %d (%s), want %d (%s)\n", t->name, rc, kv_strerror(rc), t->rc,
                        kv_strerror(t->rc));
            fail();
        }
        assert_int_equal(kv_reader_replay_left(r), 0);
        kv_emv_free(s);
        kv_reader_free(r);
    }
}

static const struct mand_row {
    const char *name, *rec1, *rec2;
    int rc, rc_cdol2; /* kv_emv_check_mandatory(s, 0) and (s, 1) */
} mand_rows[] = {
    {"5A, 5F24, 8C: enough without CDOL2", "70155A0847617390010100105F24032912318C039F0206 9000",
     "70039F0100 9000", 0, KV_ERR_CARD_MISSING},
    {"and 8D", "70155A0847617390010100105F24032912318C039F0206 9000", "70048D028A02 9000", 0, 0},
    {"5F24 missing", "700F5A0847617390010100108C039F0206 9000", "70048D028A02 9000",
     KV_ERR_CARD_MISSING, KV_ERR_CARD_MISSING},
    {"5A empty", "700D5A005F24032912318C039F0206 9000", "70048D028A02 9000", KV_ERR_CARD_MISSING,
     KV_ERR_CARD_MISSING},
    {"8C missing", REC_PAN_EXP, "70048D028A02 9000", KV_ERR_CARD_MISSING, KV_ERR_CARD_MISSING},
};

static void test_mandatory_data(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(mand_rows) / sizeof(mand_rows[0]); i++) {
        const struct mand_row *t = &mand_rows[i];
        kv_reader *r = NULL;
        kv_emv *s = NULL;
        assert_int_equal(read_two(GPO_F1, t->rec1, t->rec2, NULL, &r, &s), 0);
        if (kv_emv_check_mandatory(s, 0) != t->rc || kv_emv_check_mandatory(s, 1) != t->rc_cdol2) {
            print_error("%s: %d / %d, want %d / %d\n", t->name, kv_emv_check_mandatory(s, 0),
                        kv_emv_check_mandatory(s, 1), t->rc, t->rc_cdol2);
            fail();
        }
        kv_emv_free(s);
        kv_reader_free(r);
    }
}

/* More than 32 records for ODA: every one reaches the static data (no cut). */
static void test_oda_records_unbounded(void **state)
{
    enum { N = 40 };
    char *script = malloc(16384), *sq;
    size_t at;
    kv_reader *r = NULL;
    kv_emv *s = NULL;
    kv_oda_static sd;
    (void)state;
    /* AFL: SFI 1 records 1..40, all for ODA; then SFI 11 record 1 for ODA */
    at = (size_t)snprintf(script, 16384,
                          PPSE_VISA LINE("80A8000002830000", "800A1C00080128285801010 19000"));
    for (unsigned i = 1; i <= N; i++)
        at +=
            (size_t)snprintf(script + at, 16384 - at,
                             "{\"c\":\"00B2%02X0C00\",\"r\":\"7004DF%02X01%02X9000\"}\n", i, i, i);
    snprintf(script + at, 16384 - at, LINE(RR("01", "5C"), "70039F2A01 9000"));
    sq = squeeze(script);
    assert_int_equal(kv_reader_open_replay_text(sq, strlen(sq), &r), 0);
    assert_int_equal(kv_emv_new(r, NULL, &s), 0);
    assert_int_equal(kv_emv_select(s, KV_EMV_IFACE_CONTACTLESS), 0);
    assert_int_equal(kv_emv_gpo(s), 0);
    assert_int_equal(kv_emv_read_records(s), 0);
    kv_emv_oda_static(s, &sd);
    assert_int_equal(sd.nrecords, N + 1);
    assert_int_equal(sd.records[N - 1].sfi, 1);
    assert_int_equal(sd.records[N - 1].len, 6);
    assert_int_equal(sd.records[N - 1].data[2], 0xDF);
    assert_int_equal(sd.records[N - 1].data[3], N);
    assert_int_equal(sd.records[N].sfi, 11);
    assert_int_equal(sd.aip[0], 0x1C);
    assert_int_equal(sd.tag_list_len, 0);
    kv_emv_free(s);
    kv_reader_free(r);
    free(sq);
    free(script);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_selection_table),
        cmocka_unit_test(test_aid_list_partial),
        cmocka_unit_test(test_gpo_6985_next),
        cmocka_unit_test(test_gpo_errors),
        cmocka_unit_test(test_verify_pin),
        cmocka_unit_test(test_trace_cards),
        cmocka_unit_test(test_trace_card_get_data),
        cmocka_unit_test(test_terminal_selection),
        cmocka_unit_test(test_choose_aid_args),
        cmocka_unit_test(test_gpo_6985_applies_next_config),
        cmocka_unit_test(test_record_duplicates),
        cmocka_unit_test(test_mandatory_data),
        cmocka_unit_test(test_oda_records_unbounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

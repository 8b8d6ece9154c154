/*
 * The terminal side of the card's transaction log (apdu/txlog.h): the log
 * entry (9F4D), records decoded by the log format (9F4F), the JSON report,
 * and kv_txlog_read against the virtual card in process (9F4D from the FCI
 * and from GET DATA, a log not yet full, a card without a log).
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
#include "apdu/txlog.h"
#include "apdu/vcard/vcard.h"
#include "src/base/err.h"
#include "tests/unit/apdu_test_util.h"

#include <jansson.h>

static void test_entry(void **state)
{
    static const struct {
        const char *hex;
        int rc;
        unsigned sfi, max;
    } rows[] = {
        {"0B0A", 0, 11, 10},
        {"1E01", 0, 30, 1},
        {"0A0A", KV_ERR_CARD_DATA, 0, 0},
        {"1F0A", KV_ERR_CARD_DATA, 0, 0},
        {"0B00", KV_ERR_CARD_DATA, 0, 0},
        {"0B", KV_ERR_CARD_DATA, 0, 0},
        {"0B0A00", KV_ERR_CARD_DATA, 0, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        uint8_t v[4], sfi = 0, max = 0;
        size_t n = unhex(rows[i].hex, v, sizeof(v));
        assert_int_equal(kv_txlog_entry_parse(v, n, &sfi, &max), rows[i].rc);
        if (rows[i].rc == 0) {
            assert_int_equal(sfi, rows[i].sfi);
            assert_int_equal(max, rows[i].max);
        }
    }
}

static void test_decode(void **state)
{
    static const struct {
        const char *format, *record;
        int rc;
        size_t nfields;
    } rows[] = {
        /* EMV Book 3 Annex D.5 style: date, amount, currency, type, ATC, CID */
        {"9A039F02065F2A029C019F36029F2701", "251121 000000001000 0978 00 0011 40", 0, 6},
        {"DF810102", "0102", 0, 1},                          /* a 3-byte tag */
        {"9F0206", "00000000100000", KV_ERR_CARD_DATA, 0},   /* record too long */
        {"9F02065F2A02", "0000000010", KV_ERR_CARD_DATA, 0}, /* too short */
        {"9F", "00", KV_ERR_DOL, 0},                         /* tag cut */
        {"", "", 0, 0},                                      /* empty format and record */
    };
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        uint8_t f[64], r[64];
        size_t fl = unhex(rows[i].format, f, sizeof(f)), rl = unhex(rows[i].record, r, sizeof(r));
        kv_txlog_record rec;
        assert_int_equal(kv_txlog_decode(f, fl, r, rl, &rec), rows[i].rc);
        assert_int_equal(rec.nfields, rows[i].nfields);
    }
    {
        uint8_t f[32], r[32];
        size_t fl = unhex("9A039F02065F2A02", f, sizeof(f)),
               rl = unhex("251121 000000001000 0978", r, sizeof(r));
        kv_txlog_record rec;
        assert_int_equal(kv_txlog_decode(f, fl, r, rl, &rec), 0);
        assert_int_equal(rec.fields[1].tag, 0x9F02);
        assert_int_equal(rec.fields[1].len, 6);
        assert_bytes("9F02", rec.fields[1].value, 6, r + 3, 6);
        assert_int_equal(rec.fields[2].tag, 0x5F2A);
    }
}

static void test_json(void **state)
{
    static kv_txlog l;
    uint8_t f[64], r[64];
    size_t fl = unhex("9A039F21039F02069F1A025F2A029C019F360295055A08", f, sizeof(f)),
           rl = unhex("251121 134501 000000012345 0208 0208 09 00AB 0000000000 9901234567890123", r,
                      sizeof(r));
    json_t *j, *o;
    (void)state;
    memset(&l, 0, sizeof(l));
    l.present = 1;
    l.sfi = 11;
    l.max_records = 10;
    l.nrecords = 1;
    assert_int_equal(kv_txlog_decode(f, fl, r, rl, &l.records[0]), 0);
    j = kv_txlog_to_json(&l, 0);
    assert_non_null(j);
    assert_int_equal(json_array_size(j), 1);
    o = json_array_get(j, 0);
    assert_int_equal(json_integer_value(json_object_get(o, "record")), 1);
    assert_int_equal(json_integer_value(json_object_get(o, "amount")), 12345);
    assert_int_equal(json_integer_value(json_object_get(o, "currency")), 208);
    assert_int_equal(json_integer_value(json_object_get(o, "country")), 208);
    assert_string_equal(json_string_value(json_object_get(o, "date")), "2025-11-21");
    assert_string_equal(json_string_value(json_object_get(o, "time")), "13:45:01");
    assert_string_equal(json_string_value(json_object_get(o, "type")), "09");
    assert_string_equal(json_string_value(json_object_get(o, "atc")), "00AB");
    assert_null(json_object_get(o, "cid"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "values"), "9F02")),
                        "000000012345");
    /* the PAN never leaves without --reveal */
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "values"), "5A")),
                        "masked");
    json_decref(j);
    j = kv_txlog_to_json(&l, 1);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(json_array_get(j, 0), "values"), "5A")),
        "9901234567890123");
    json_decref(j);
}

/* ---- against the virtual card ------------------------------------------- */

#define CDOL1 "9F02069F03069F1A0295055F2A029A039C019F3704"
#define CDOL1_DATA "000000004200 000000000000 0208 0000000000 0208 251122 00 11223344"

static kv_vcard *card(const char *log)
{
    char text[4000], why[256] = "";
    kv_vcard *vc = NULL;
    snprintf(text, sizeof(text),
             "{\"atr\": \"3B00\", \"applications\": [{\"aid\": \"A0000000031010\","
             " \"label\": \"VISA TEST\", \"aip\": \"1800\", \"afl\": \"10010100\","
             " \"records\": [{\"sfi\": 2, \"record\": 1, \"tags\": [[\"5A\", \"4761739001010010\"],"
             " [\"5F24\", \"301231\"], [\"8C\", \"" CDOL1 "\"], [\"8D\", \"8A02\"]]}]}],"
             " \"data\": {\"9F36\": \"0020\"},"
             " \"keys\": {\"cvn\": 10, \"icc_mk_ac\": \"F84315C7B95BD3B0C74694922C3808B0\"}%s}",
             log);
    if (kv_vcard_load_text(text, strlen(text), &vc, why, sizeof(why)) != 0) {
        print_error("profile: %s\n", why);
        fail();
    }
    return vc;
}

static unsigned xchg(kv_vcard *vc, const char *hex)
{
    uint8_t c[300], out[KV_VCARD_RAPDU_MAX];
    size_t n = unhex(hex, c, sizeof(c)), olen = 0;
    assert_int_equal(kv_vcard_process(vc, c, n, out, sizeof(out), &olen), 0);
    return (unsigned)out[olen - 2] << 8 | out[olen - 1];
}

/* An offline decline (AAC at the first GENERATE AC) writes one log record. */
static void decline(kv_vcard *vc)
{
    uint8_t d[64];
    char cmd[200];
    size_t n = unhex(CDOL1_DATA, d, sizeof(d));
    kv_vcard_reset(vc);
    assert_int_equal(xchg(vc, "00A4040007A000000003101000"), 0x9000);
    assert_int_equal(xchg(vc, "80A8000002830000"), 0x9000);
    snprintf(cmd, sizeof(cmd), "80AE0000%02zX%s00", n, hx(d, n));
    assert_int_equal(xchg(vc, cmd), 0x9000);
}

static void read_log(kv_vcard *vc, kv_txlog *l, int want_rc)
{
    kv_reader *rd = NULL;
    kv_emv *s = NULL;
    kv_vcard_reset(vc);
    assert_int_equal(kv_vcard_reader(vc, &rd), 0);
    assert_int_equal(kv_emv_new(rd, NULL, &s), 0);
    assert_int_equal(kv_emv_read_card(s, KV_EMV_IFACE_ANY), 0);
    assert_int_equal(kv_txlog_read(s, l), want_rc);
    kv_emv_free(s);
    kv_reader_free(rd);
}

static void test_read_from_card(void **state)
{
    static kv_txlog l;
    kv_vcard *vc = card(",\"log\": {\"sfi\": 12, \"records\": 5,"
                        " \"format\": \"9A039F02065F2A029C019F36029F2701\"}");
    (void)state;
    read_log(vc, &l, 0); /* a log with no record yet */
    assert_true(l.present);
    assert_true(l.entry_in_fci);
    assert_int_equal(l.sfi, 12);
    assert_int_equal(l.max_records, 5);
    assert_int_equal(l.nrecords, 0);
    decline(vc);
    decline(vc);
    read_log(vc, &l, 0);
    assert_int_equal(l.nrecords, 2);
    assert_int_equal(l.records[0].nfields, 6);
    {
        uint8_t want[32];
        size_t n = unhex("251122 000000004200 0208 00", want, sizeof(want));
        assert_bytes("record 1", l.records[0].raw, n, want, n);
    }
    /* newest first: record 1 has the higher ATC (the read's own GPO counted too) */
    assert_int_equal(l.records[0].fields[4].value[1], 0x23);
    assert_int_equal(l.records[1].fields[4].value[1], 0x22);
    assert_int_equal(l.records[0].fields[5].value[0], 0x00); /* AAC */
    kv_vcard_free(vc);
}

static void test_read_entry_by_get_data(void **state)
{
    static kv_txlog l;
    kv_vcard *vc = card(",\"log\": {\"sfi\": 11, \"records\": 2, \"in_fci\": false}");
    (void)state;
    decline(vc);
    decline(vc);
    decline(vc);
    read_log(vc, &l, 0);
    assert_true(l.present);
    assert_false(l.entry_in_fci);
    assert_int_equal(l.nrecords, 2);    /* cyclic: 2 kept */
    assert_int_equal(l.format_len, 25); /* the default format */
    kv_vcard_free(vc);
}

static void test_no_log(void **state)
{
    static kv_txlog l;
    kv_vcard *vc = card("");
    (void)state;
    decline(vc);
    read_log(vc, &l, 0);
    assert_false(l.present);
    assert_int_equal(l.nrecords, 0);
    kv_vcard_free(vc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entry),
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_read_from_card),
        cmocka_unit_test(test_read_entry_by_get_data),
        cmocka_unit_test(test_no_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

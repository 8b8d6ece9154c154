/*
 * Tests of apdu/tags.h: the dictionary (size, order, known names from EMV
 * Book 3 Annex A and the contactless kernel books), the text tree and the
 * JSON tree, including PAN masking.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "apdu/tags.h"
#include "apdu/tlv.h"
#include "src/base/err.h"
#include "src/base/hex.h"

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    int n = kv_hex_decode(hex, out, cap);
    if (n < 0) {
        print_error("bad hex in test table: %s\n", hex);
        fail();
    }
    return (size_t)n;
}

static void test_tags_table_shape(void **state)
{
    size_t n = kv_tag_count();
    (void)state;

    assert_true(n >= 150);
    assert_null(kv_tag_at(n));
    for (size_t i = 0; i < n; i++) {
        const kv_tag_info *e = kv_tag_at(i);
        assert_non_null(e);
        if (i > 0 && kv_tag_at(i - 1)->tag >= e->tag) {
            print_error("entry %zu: %X after %X (not sorted or duplicate)\n", i, e->tag,
                        kv_tag_at(i - 1)->tag);
            fail();
        }
        if (!kv_tlv_tag_is_valid(e->tag)) {
            print_error("entry %zu: %X is not a well-formed tag\n", i, e->tag);
            fail();
        }
        assert_non_null(e->name);
        assert_true(strlen(e->name) > 1);
        assert_true(e->format <= KV_TAG_FMT_VAR);
        assert_true(e->source <= KV_TAG_SRC_ISSUER);
        /* Dates are n 6; every entry is found by the lookup. */
        if (e->flags & KV_TAG_F_DATE)
            assert_int_equal(e->format, KV_TAG_FMT_N);
        assert_ptr_equal(kv_tag_lookup(e->tag), e);
    }
}

struct lookup_row {
    uint32_t tag;
    const char *name_part; /* NULL: unknown tag */
    int format;
    int source;
};

/* Names, formats and sources per EMV 4.4 Book 3 Annex A, Book C-2, Book C-3. */
static const struct lookup_row lookup_rows[] = {
    {0x9F02, "Amount, Authorised (Numeric)", KV_TAG_FMT_N, KV_TAG_SRC_TERMINAL},
    {0x5A, "Application Primary Account Number (PAN)", KV_TAG_FMT_CN, KV_TAG_SRC_ICC},
    {0x82, "Application Interchange Profile", KV_TAG_FMT_B, KV_TAG_SRC_ICC},
    {0x94, "Application File Locator", KV_TAG_FMT_VAR, KV_TAG_SRC_ICC},
    {0x9F26, "Application Cryptogram", KV_TAG_FMT_B, KV_TAG_SRC_ICC},
    {0x5F24, "Application Expiration Date", KV_TAG_FMT_N, KV_TAG_SRC_ICC},
    {0x50, "Application Label", KV_TAG_FMT_ANS, KV_TAG_SRC_ICC},
    {0x5F2D, "Language Preference", KV_TAG_FMT_AN, KV_TAG_SRC_ICC},
    {0x8A, "Authorisation Response Code", KV_TAG_FMT_AN, KV_TAG_SRC_ISSUER},
    {0x91, "Issuer Authentication Data", KV_TAG_FMT_B, KV_TAG_SRC_ISSUER},
    {0x71, "Issuer Script Template 1", KV_TAG_FMT_VAR, KV_TAG_SRC_ISSUER},
    {0x9F1A, "Terminal Country Code", KV_TAG_FMT_N, KV_TAG_SRC_TERMINAL},
    {0x9F37, "Unpredictable Number", KV_TAG_FMT_B, KV_TAG_SRC_TERMINAL},
    {0x95, "Terminal Verification Results", KV_TAG_FMT_B, KV_TAG_SRC_TERMINAL},
    {0xBF0C, "File Control Information (FCI) Issuer Discretionary Data", KV_TAG_FMT_VAR,
     KV_TAG_SRC_ICC},
    {0x9F4E, "Merchant Name and Location", KV_TAG_FMT_ANS, KV_TAG_SRC_TERMINAL},
    {0x9F66, "Terminal Transaction Qualifiers", KV_TAG_FMT_B, KV_TAG_SRC_TERMINAL},
    {0x9F6C, "Card Transaction Qualifiers", KV_TAG_FMT_B, KV_TAG_SRC_ICC},
    {0x9F6E, "Form Factor Indicator", KV_TAG_FMT_B, KV_TAG_SRC_ICC},
    {0x9F7C, "Customer Exclusive Data", KV_TAG_FMT_B, KV_TAG_SRC_ICC},
    {0x9F6B, "Track 2 Data", KV_TAG_FMT_B, KV_TAG_SRC_ICC},
    {0x56, "Track 1 Data", KV_TAG_FMT_ANS, KV_TAG_SRC_ICC},
    {0x57, "Track 2 Equivalent Data", KV_TAG_FMT_B, KV_TAG_SRC_ICC},
    {0x9F2A, "Kernel Identifier", KV_TAG_FMT_B, KV_TAG_SRC_ICC},
    {0xDF8129, "Outcome Parameter Set", KV_TAG_FMT_B, KV_TAG_SRC_TERMINAL},
    {0xDF8124, "Reader Contactless Transaction Limit (No On-device CVM)", KV_TAG_FMT_N,
     KV_TAG_SRC_TERMINAL},
    {0xDF8105, "Balance Read After Gen AC", KV_TAG_FMT_N, KV_TAG_SRC_TERMINAL},
    {0xFF8105, NULL, 0, 0}, /* FF is padding: never a tag */
    {0xDF20, NULL, 0, 0},
    {0x9F99, NULL, 0, 0},
    {0x00, NULL, 0, 0},
    {0x01, NULL, 0, 0},
    {0xFFFFFF, NULL, 0, 0},
    {0xFFFFFFFF, NULL, 0, 0},
};

static void test_tags_lookup(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(lookup_rows) / sizeof(lookup_rows[0]); i++) {
        const struct lookup_row *row = &lookup_rows[i];
        const kv_tag_info *e = kv_tag_lookup(row->tag);

        if (row->name_part == NULL) {
            if (e != NULL) {
                print_error("%X: found '%s', want unknown\n", row->tag, e->name);
                fail();
            }
            assert_string_equal(kv_tag_name(row->tag), "Unknown");
            continue;
        }
        if (e == NULL || strstr(e->name, row->name_part) == NULL || e->format != row->format ||
            e->source != row->source) {
            print_error("%X: got '%s' %s %s, want '%s' %s %s\n", row->tag, e ? e->name : "(none)",
                        e ? kv_tag_format_name(e->format) : "",
                        e ? kv_tag_source_name(e->source) : "", row->name_part,
                        kv_tag_format_name((unsigned)row->format),
                        kv_tag_source_name((unsigned)row->source));
            fail();
        }
        assert_ptr_equal(kv_tag_name(row->tag), e->name);
    }
}

static void test_tags_format_source_names(void **state)
{
    (void)state;
    assert_string_equal(kv_tag_format_name(KV_TAG_FMT_B), "b");
    assert_string_equal(kv_tag_format_name(KV_TAG_FMT_N), "n");
    assert_string_equal(kv_tag_format_name(KV_TAG_FMT_CN), "cn");
    assert_string_equal(kv_tag_format_name(KV_TAG_FMT_AN), "an");
    assert_string_equal(kv_tag_format_name(KV_TAG_FMT_ANS), "ans");
    assert_string_equal(kv_tag_format_name(KV_TAG_FMT_VAR), "var");
    assert_string_equal(kv_tag_format_name(99), "?");
    assert_string_equal(kv_tag_source_name(KV_TAG_SRC_ICC), "ICC");
    assert_string_equal(kv_tag_source_name(KV_TAG_SRC_TERMINAL), "terminal");
    assert_string_equal(kv_tag_source_name(KV_TAG_SRC_ISSUER), "issuer");
    assert_string_equal(kv_tag_source_name(7), "?");
}

/* --- text tree --- */

struct tree_row {
    const char *name;
    const char *in;
    unsigned opts;
    int rc;
    const char *text;
};

static const struct tree_row tree_rows[] = {
    {"FCI with label", "6F1A8407A0000000031010A50F500A56697361204465626974870101", 0, 0,
     "6F File Control Information (FCI) Template [26]\n"
     "  84 Dedicated File (DF) Name [7]: A0000000031010\n"
     "  A5 File Control Information (FCI) Proprietary Template [15]\n"
     "    50 Application Label [10]: 56697361204465626974 \"Visa Debit\"\n"
     "    87 Application Priority Indicator [1]: 01\n"},
    {"record: PAN masked, date, unknown tag", "70145A0848717800000000055F2403250731DF200180", 0, 0,
     "70 READ RECORD Response Message Template [20]\n"
     "  5A Application Primary Account Number (PAN) [8]: 487178******0005\n"
     "  5F24 Application Expiration Date [3]: 250731 (2025-07-31)\n"
     "  DF20 Unknown [1]: 80\n"},
    {"record: PAN revealed", "5A084871780000000005", KV_TAG_REVEAL, 0,
     "5A Application Primary Account Number (PAN) [8]: 4871780000000005\n"},
    {"short PAN keeps last 4", "5A051234567890", 0, 0,
     "5A Application Primary Account Number (PAN) [5]: ******7890\n"},
    {"odd PAN with F pad", "5A0A6726420000000000006F", 0, 0,
     "5A Application Primary Account Number (PAN) [10]: 672642*********0006F\n"},
    {"track 2 masked", "57134871780000000005D25072211328662101000F", 0, 0,
     "57 Track 2 Equivalent Data [19]: 487178******0005D25072211328662101000F\n"},
    {"track 1 masked",
     "5613"
     "42343837313738303030303030303030355E58",
     0, 0,
     "56 Track 1 Data [19]: 42343837313738************303030355E58 \"B487178******0005^X\"\n"},
    {"date 19xx and bad date", "5F25039912319A03251A31", 0, 0,
     "5F25 Application Effective Date [3]: 991231 (1999-12-31)\n"
     "9A Transaction Date [3]: 251A31\n"},
    {"date century boundary", "5F25035001019A03491231", 0, 0,
     "5F25 Application Effective Date [3]: 500101 (1950-01-01)\n"
     "9A Transaction Date [3]: 491231 (2049-12-31)\n"},
    {"non-printable text", "5003410042", 0, 0, "50 Application Label [3]: 410042 \"A.B\"\n"},
    {"empty value and 3-byte tag", "8A00DF812901AA", 0, 0,
     "8A Authorisation Response Code [0]\n"
     "DF8129 Outcome Parameter Set [1]: AA\n"},
    {"partial output, then the error", "5A011270039F0201", 0, KV_ERR_TLV_OVERLONG,
     "5A Application Primary Account Number (PAN) [1]: 12\n"
     "70 READ RECORD Response Message Template [3]\n"},
    {"empty input", "", 0, 0, ""},
};

static void test_tags_print_tree(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(tree_rows) / sizeof(tree_rows[0]); i++) {
        const struct tree_row *row = &tree_rows[i];
        uint8_t in[256];
        size_t n = unhex(row->in, in, sizeof(in));
        char *text = NULL;
        size_t text_len = 0;
        FILE *f = open_memstream(&text, &text_len);
        int rc;

        assert_non_null(f);
        rc = kv_tag_print_tree(f, in, n, row->opts);
        fclose(f);
        if (rc != row->rc || strcmp(text, row->text) != 0) {
            print_error("row '%s': rc %d, printed\n%s\nwant rc %d and\n%s\n", row->name, rc, text,
                        row->rc, row->text);
            fail();
        }
        free(text);
    }
}

/* --- JSON tree --- */

static const struct tree_row json_rows[] = {
    {"amount", "9F0206000000001000", 0, 0,
     "[{\"tag\":\"9F02\",\"name\":\"Amount, Authorised (Numeric)\",\"len\":6,"
     "\"value\":\"000000001000\"}]"},
    {"constructed with children", "6F058403A00000", 0, 0,
     "[{\"tag\":\"6F\",\"name\":\"File Control Information (FCI) Template\",\"len\":5,"
     "\"children\":[{\"tag\":\"84\",\"name\":\"Dedicated File (DF) Name\",\"len\":3,"
     "\"value\":\"A00000\"}]}]"},
    {"unknown tag has no name", "DF200180", 0, 0,
     "[{\"tag\":\"DF20\",\"len\":1,\"value\":\"80\"}]"},
    {"text and date", "500356495A5F2403250731", 0, 0,
     "[{\"tag\":\"50\",\"name\":\"Application Label\",\"len\":3,\"value\":\"56495A\","
     "\"text\":\"VIZ\"},{\"tag\":\"5F24\",\"name\":\"Application Expiration Date\",\"len\":3,"
     "\"value\":\"250731\",\"date\":\"2025-07-31\"}]"},
    {"PAN masked", "5A084871780000000005", 0, 0,
     "[{\"tag\":\"5A\",\"name\":\"Application Primary Account Number (PAN)\",\"len\":8,"
     "\"value\":\"487178******0005\"}]"},
    {"PAN revealed", "5A084871780000000005", KV_TAG_REVEAL, 0,
     "[{\"tag\":\"5A\",\"name\":\"Application Primary Account Number (PAN)\",\"len\":8,"
     "\"value\":\"4871780000000005\"}]"},
    {"empty constructed and empty primitive", "70008A00", 0, 0,
     "[{\"tag\":\"70\",\"name\":\"READ RECORD Response Message Template\",\"len\":0,"
     "\"children\":[]},{\"tag\":\"8A\",\"name\":\"Authorisation Response Code\",\"len\":0,"
     "\"value\":\"\"}]"},
    {"empty input", "", 0, 0, "[]"},
    {"malformed", "5A011270039F0201", 0, KV_ERR_TLV_OVERLONG, NULL},
};

static void test_tags_json_tree(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(json_rows) / sizeof(json_rows[0]); i++) {
        const struct tree_row *row = &json_rows[i];
        uint8_t in[256];
        size_t n = unhex(row->in, in, sizeof(in));
        json_t *tree = (json_t *)&tree; /* must be overwritten */
        char *text = NULL;
        int rc = kv_tag_json_tree(in, n, row->opts, &tree);

        if (rc != row->rc) {
            print_error("row '%s': rc %d, want %d\n", row->name, rc, row->rc);
            fail();
        }
        if (rc != 0) {
            assert_null(tree);
            continue;
        }
        text = json_dumps(tree, JSON_COMPACT | JSON_PRESERVE_ORDER);
        assert_non_null(text);
        if (strcmp(text, row->text) != 0) {
            print_error("row '%s': got\n%s\nwant\n%s\n", row->name, text, row->text);
            fail();
        }
        free(text);
        json_decref(tree);
    }
}

/* A real record (mastercard_debit_ppse.json, SFI 1 record 1) renders fully with no PAN digits. */
static void test_tags_real_record_masked(void **state)
{
    static const char hex[] =
        "70759F6C0200019F6206000000000F009F63060000000000FE563442353337353035303030303030303030"
        "315E202F5E323430333232313237393433323930303030303030303030303030303030309F6401029F6502"
        "0F009F660200FE9F6B135375050000000001D24032210000000000000F9F670102";
    uint8_t in[256];
    size_t n = unhex(hex, in, sizeof(in));
    char *text = NULL, *dump = NULL;
    size_t text_len = 0;
    FILE *f = open_memstream(&text, &text_len);
    json_t *tree = NULL;
    (void)state;

    assert_non_null(f);
    assert_int_equal(kv_tag_print_tree(f, in, n, 0), 0);
    fclose(f);
    assert_int_equal(kv_tag_json_tree(in, n, 0, &tree), 0);
    dump = json_dumps(tree, JSON_COMPACT);
    assert_non_null(dump);
    /* The test PAN 5375050000000001 appears neither as digits nor as ASCII hex. */
    assert_null(strstr(text, "5375050000000001"));
    assert_null(strstr(text, "35333735303530303030303030303031"));
    assert_null(strstr(dump, "5375050000000001"));
    assert_non_null(strstr(text, "537505******0001D2403"));
    assert_non_null(strstr(text, "\"B537505******0001^"));
    assert_int_equal(json_array_size(tree), 1);
    assert_int_equal(json_array_size(json_object_get(json_array_get(tree, 0), "children")), 9);
    free(dump);
    free(text);
    json_decref(tree);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tags_table_shape),
        cmocka_unit_test(test_tags_lookup),
        cmocka_unit_test(test_tags_format_source_names),
        cmocka_unit_test(test_tags_print_tree),
        cmocka_unit_test(test_tags_json_tree),
        cmocka_unit_test(test_tags_real_record_masked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Table tests of apdu/dol.h: DOL parsing (EMV Book 3 §5.4, tags per Annex B),
 * building from a terminal profile with the numeric / compressed numeric /
 * other padding rules, zeros for unknown and constructed tags, session data
 * through the lookup callback, and the PDOLs of the trace cards as inputs.
 * Expected bytes are worked out by hand from the rules, not by the code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "apdu/dol.h"
#include "src/base/hex.h"
#include "src/base/err.h"
#include "tests/unit/apdu_test_util.h"

struct parse_row {
    const char *name;
    const char *dol;
    int rc;
    size_t n;
    uint32_t tags[4];
    size_t lens[4];
};

static const struct parse_row parse_rows[] = {
    {"empty", "", 0, 0, {0}, {0}},
    {"one 1-byte tag", "9505", 0, 1, {0x95}, {5}},
    {"2-byte tags", "9F37045F2A02", 0, 2, {0x9F37, 0x5F2A}, {4, 2}},
    {"3-byte tag", "DF812A04", 0, 1, {0xDF812A}, {4}},
    {"length 0", "9F3700", 0, 1, {0x9F37}, {0}},
    {"length 255", "DF01FF", 0, 1, {0xDF01}, {255}},
    {"missing length", "9F37", KV_ERR_DOL, 0, {0}, {0}},
    {"cut 2-byte tag", "9F", KV_ERR_DOL, 0, {0}, {0}},
    {"cut 3-byte tag", "DF81", KV_ERR_DOL, 0, {0}, {0}},
    {"4-byte tag", "DF81818104", KV_ERR_DOL, 0, {0}, {0}},
    {"second entry cut", "9F3704 9F", KV_ERR_DOL, 0, {0}, {0}},
};

static void test_parse(void **state)
{
    uint8_t dol[64];
    kv_dol_entry e[8];
    (void)state;
    for (size_t i = 0; i < sizeof(parse_rows) / sizeof(parse_rows[0]); i++) {
        const struct parse_row *t = &parse_rows[i];
        size_t len = unhex(t->dol, dol, sizeof(dol)), n = 99;
        int rc = kv_dol_parse(dol, len, e, 8, &n);
        if (rc != t->rc) {
            print_error("%s (%s): rc %d, want %d\n", t->name, t->dol, rc, t->rc);
            fail();
        }
        if (rc != 0)
            continue;
        if (n != t->n) {
            print_error("%s: %zu entries, want %zu\n", t->name, n, t->n);
            fail();
        }
        for (size_t k = 0; k < n; k++)
            if (e[k].tag != t->tags[k] || e[k].len != t->lens[k]) {
                print_error("%s: entry %zu is %X/%zu, want %X/%zu\n", t->name, k, e[k].tag,
                            e[k].len, t->tags[k], t->lens[k]);
                fail();
            }
    }
}

static void test_parse_capacity(void **state)
{
    uint8_t dol[] = {0x95, 0x05, 0x9A, 0x03, 0x9C, 0x01};
    kv_dol_entry e[2];
    size_t n, total;
    (void)state;
    assert_int_equal(kv_dol_parse(dol, sizeof(dol), e, 2, &n), KV_ERR_BUFFER);
    assert_int_equal(kv_dol_data_len(dol, sizeof(dol), &total), 0);
    assert_int_equal(total, 9);
}

/* A fixed profile, so that every byte of the output is known. */
/*
 * kv_dol_value: the value of a tag in DOL data, walked by the DOL's entries.
 * DOL 9F02 06 | 9F1A 02 | 9F37 04 over 12 bytes of data.
 */
static void test_value(void **state)
{
    uint8_t dol[16], data[16];
    size_t dl = unhex("9F0206 9F1A02 9F3704", dol, sizeof(dol));
    size_t n = unhex("000000001234 0208 A1B2C3D4", data, sizeof(data)), vlen = 0;
    const uint8_t *v = NULL;
    (void)state;
    assert_int_equal(n, 12);
    assert_int_equal(kv_dol_value(dol, dl, data, n, 0x9F1A, &v, &vlen), 1);
    assert_ptr_equal(v, data + 6);
    assert_int_equal(vlen, 2);
    assert_int_equal(kv_dol_value(dol, dl, data, n, 0x9F37, &v, &vlen), 1);
    assert_ptr_equal(v, data + 8);
    assert_int_equal(vlen, 4);
    /* not asked for; no DOL at all */
    assert_int_equal(kv_dol_value(dol, dl, data, n, 0x95, &v, &vlen), 0);
    assert_int_equal(kv_dol_value(NULL, 0, data, n, 0x9F37, &v, &vlen), 0);
    assert_int_equal(kv_dol_value(dol, 0, data, n, 0x9F37, &v, &vlen), 0);
    /* data shorter than the entries up to the tag: an error, not a value */
    assert_int_equal(kv_dol_value(dol, dl, data, 11, 0x9F37, &v, &vlen), KV_ERR_CARD_DATA);
    assert_int_equal(kv_dol_value(dol, dl, data, 11, 0x9F1A, &v, &vlen), 1);
    /* a malformed DOL */
    assert_int_equal(kv_dol_value(dol, 4, data, n, 0x9F1A, &v, &vlen), KV_ERR_DOL);
    /* kv_dol_has_tag */
    assert_int_equal(kv_dol_has_tag(dol, dl, 0x9F37), 1);
    assert_int_equal(kv_dol_has_tag(dol, dl, 0x95), 0);
    assert_int_equal(kv_dol_has_tag(NULL, 0, 0x95), 0);
    assert_int_equal(kv_dol_has_tag(dol, 4, 0x9F02), 0);
}

static void fixed_terminal(kv_terminal *t)
{
    assert_int_equal(kv_terminal_init(t), 0);
    t->amount = 1000; /* 10.00 DKK */
    t->amount_other = 0;
    t->date = 250131;
    t->time = 143005;
    t->txn_type = 0;
    t->un[0] = 0x01;
    t->un[1] = 0x02;
    t->un[2] = 0x03;
    t->un[3] = 0x04;
}

struct build_row {
    const char *name;
    const char *dol;
    const char *want; /* hex */
};

static const struct build_row build_rows[] = {
    /* visa_debit_ppse PDOL: TTQ, amount, other, country, TVR, currency, date, type, UN */
    {"Visa qVSDC PDOL (33 bytes)", "9F66049F02069F03069F1A0295055F2A029A039C019F3704",
     "36004000 000000001000 000000000000 0208 0000000000 0208 250131 00 01020304"},
    /* girocard PDOL: amount and terminal risk management data */
    {"girocard PDOL", "9F02069F1D02", "000000001000 0000"},
    /* girocard third application: 9F33, 9F35, 9F40 */
    {"capabilities", "9F33029F35019F4001", "E0F8 22 60"},
    {"numeric right-aligned, cut on the left", "9F0204", "00001000"},
    {"numeric padded with 00 on the left", "9F0208", "0000000000001000"},
    {"country as n3 in 2 bytes", "9F1A02", "0208"},
    {"currency exponent n1", "5F3601", "02"},
    {"time", "9F2103", "143005"},
    {"binary cut on the right", "9F3702", "0102"},
    {"binary padded with 00 on the right", "9F3706", "010203040000"},
    {"an padded with 00 on the right", "9F1C0A", "4B56303030303031 0000"},
    {"an cut on the right", "9F1C02", "4B56"},
    {"unknown tag -> zeros", "DF7F03", "000000"},
    {"unknown 3-byte tag -> zeros", "DF812A02", "0000"},
    {"constructed tag -> zeros", "7002BF0C01", "0000 00"},
    {"length 0", "9F3700", ""},
    {"amount binary (81)", "8104", "000003E8"},
    {"MCC", "9F1502", "5999"},
};

static void test_build(void **state)
{
    kv_terminal t;
    uint8_t dol[64], want[128], got[128];
    (void)state;
    fixed_terminal(&t);
    for (size_t i = 0; i < sizeof(build_rows) / sizeof(build_rows[0]); i++) {
        const struct build_row *r = &build_rows[i];
        size_t dlen = unhex(r->dol, dol, sizeof(dol)), wlen = unhex(r->want, want, sizeof(want));
        size_t glen = 0;
        int rc = kv_dol_build(dol, dlen, &t, NULL, NULL, got, sizeof(got), &glen);
        if (rc != 0) {
            print_error("%s: rc %d\n", r->name, rc);
            fail();
        }
        assert_bytes(r->name, got, glen, want, wlen);
    }
}

struct fit_row {
    const char *name;
    uint32_t tag;
    const char *value;
    size_t want_len;
    const char *want;
};

static const struct fit_row fit_rows[] = {
    {"n shorter", 0x9F02, "000000001000", 3, "001000"},
    {"n longer", 0x9F02, "1000", 6, "000000001000"},
    {"cn longer: F padding", 0x5A, "4761340000000050", 10, "4761340000000050FFFF"},
    {"cn shorter: cut on the right", 0x5A, "4761340000000050", 4, "47613400"},
    {"b longer", 0x9F26, "0102", 4, "01020000"},
    {"b shorter", 0x9F26, "01020304", 1, "01"},
    {"ans longer", 0x9F4E, "41", 3, "410000"},
    {"same length", 0x9F02, "000000001000", 6, "000000001000"},
};

static void test_fit(void **state)
{
    uint8_t v[32], want[32], got[32];
    (void)state;
    for (size_t i = 0; i < sizeof(fit_rows) / sizeof(fit_rows[0]); i++) {
        const struct fit_row *r = &fit_rows[i];
        size_t vlen = unhex(r->value, v, sizeof(v)), wlen = unhex(r->want, want, sizeof(want));
        kv_dol_fit(r->tag, v, vlen, got, r->want_len);
        assert_bytes(r->name, got, r->want_len, want, wlen);
    }
}

/* Session data comes first: 8A from the lookup, 9F37 from it too, the rest from the profile. */
static int lookup(void *arg, uint32_t tag, const uint8_t **v, size_t *len)
{
    static const uint8_t arc[2] = {'Y', '1'};
    static const uint8_t un[4] = {0xAA, 0xBB, 0xCC, 0xDD};
    (void)arg;
    if (tag == 0x8A) {
        *v = arc;
        *len = 2;
        return 1;
    }
    if (tag == 0x9F37) {
        *v = un;
        *len = 4;
        return 1;
    }
    return 0;
}

static void test_build_lookup(void **state)
{
    kv_terminal t;
    uint8_t dol[32], want[32], got[32];
    size_t dlen, wlen, glen;
    (void)state;
    fixed_terminal(&t);
    dlen = unhex("8A02 9F3704 9505", dol, sizeof(dol));
    wlen = unhex("5931 AABBCCDD 0000000000", want, sizeof(want));
    assert_int_equal(kv_dol_build(dol, dlen, &t, lookup, NULL, got, sizeof(got), &glen), 0);
    assert_bytes("lookup first", got, glen, want, wlen);
    /* without a profile every terminal tag is zeros */
    dlen = unhex("9F1A02 9F3702", dol, sizeof(dol));
    wlen = unhex("0000 0000", want, sizeof(want));
    assert_int_equal(kv_dol_build(dol, dlen, NULL, NULL, NULL, got, sizeof(got), &glen), 0);
    assert_bytes("no profile", got, glen, want, wlen);
    /* output too small */
    dlen = unhex("9F0206", dol, sizeof(dol));
    assert_int_equal(kv_dol_build(dol, dlen, &t, NULL, NULL, got, 5, &glen), KV_ERR_BUFFER);
    dlen = unhex("9F02", dol, sizeof(dol));
    assert_int_equal(kv_dol_build(dol, dlen, &t, NULL, NULL, got, sizeof(got), &glen), KV_ERR_DOL);
}

/* 9F37 comes from a random source: two fresh numbers differ (fails with probability 2^-32). */
static void test_unpredictable_number(void **state)
{
    kv_terminal a, b;
    (void)state;
    assert_int_equal(kv_terminal_init(&a), 0);
    b = a;
    assert_int_equal(kv_terminal_new_un(&b), 0);
    if (memcmp(a.un, b.un, 4) == 0) {
        print_error("two unpredictable numbers are equal: %s\n", hx(a.un, 4));
        fail();
    }
    /* defaults of the Danish profile */
    assert_int_equal(a.country, 208);
    assert_int_equal(a.currency, 208);
    assert_int_equal(a.terminal_type, 22);
    assert_true(a.date % 100 >= 1 && a.date % 100 <= 31 && a.date / 100 % 100 <= 12);
}

/* 9F09 per application (EMV Book 3 §10.4.1): by RID, others keep the profile's value. */
static void test_app_version_per_application(void **state)
{
    static const struct {
        const char *aid;
        uint8_t want[2];
    } rows[] = {
        {"A0000000031010", {0x00, 0x8C}}, /* Visa */
        {"A0000000032010", {0x00, 0x8C}}, /* Visa Electron */
        {"A0000000041010", {0x00, 0x02}}, /* Mastercard */
        {"A0000000043060", {0x00, 0x02}}, /* Maestro */
        {"A0000001211010", {0x00, 0x02}}, /* Dankort: the profile's default */
        {"A00000", {0x00, 0x02}},         /* shorter than a RID: unchanged */
    };
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        kv_terminal t;
        uint8_t aid[16];
        int n = kv_hex_decode(rows[i].aid, aid, sizeof(aid));
        assert_true(n > 0);
        assert_int_equal(kv_terminal_init(&t), 0);
        kv_terminal_select_app(&t, aid, (size_t)n);
        if (memcmp(t.app_version, rows[i].want, 2) != 0)
            fail_msg("%s: 9F09 %02X%02X, want %02X%02X", rows[i].aid, t.app_version[0],
                     t.app_version[1], rows[i].want[0], rows[i].want[1]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parse_capacity),
        cmocka_unit_test(test_value),
        cmocka_unit_test(test_build),
        cmocka_unit_test(test_fit),
        cmocka_unit_test(test_build_lookup),
        cmocka_unit_test(test_unpredictable_number),
        cmocka_unit_test(test_app_version_per_application),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

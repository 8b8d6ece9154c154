/*
 * Table tests of apdu/tlv.h: decoder edge cases (EMV Book 3 Annex B, X.690
 * 8.1.2-8.1.3 length and tag forms), find and walk, the encoder, and real card
 * records from tests/data/traces ($KV_TEST_DATA) as parse inputs with the facts
 * each trace file states (PAN, expiry, PSN, label) as known answers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <glob.h>
#include <jansson.h>

#include "apdu/tlv.h"
#include "src/base/err.h"
#include "src/base/hex.h"

#define MAXBUF 4096

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    int n = kv_hex_decode(hex, out, cap);
    if (n < 0) {
        print_error("bad hex in test table: %s\n", hex);
        fail();
    }
    return (size_t)n;
}

/* Hex of n bytes into a static buffer (for messages; truncated past 1000 bytes). */
static const char *hx(const uint8_t *p, size_t n)
{
    static char buf[2][2001];
    static int which;
    char *out = buf[which ^= 1];
    if (n > 1000)
        n = 1000;
    if (n == 0 || p == NULL) {
        out[0] = '\0';
        return out;
    }
    kv_hex_encode(p, n, out);
    return out;
}

/* --- kv_tlv_next --- */

struct next_row {
    const char *name;
    const char *in;
    int rc; /* 1, 0 or an error */
    uint32_t tag;
    uint8_t tag_len;
    uint8_t constructed;
    size_t len;
    const char *value; /* hex */
    size_t consumed;   /* bytes the cursor moved (0 on error) */
};

static const struct next_row next_rows[] = {
    {"1-byte tag", "5A021234", 1, 0x5A, 1, 0, 2, "1234", 4},
    {"2-byte tag", "9F0206000000001000", 1, 0x9F02, 2, 0, 6, "000000001000", 9},
    {"3-byte tag", "DF812901AA", 1, 0xDF8129, 3, 0, 1, "AA", 5},
    {"2-byte tag 5F", "5F2A020978EE", 1, 0x5F2A, 2, 0, 2, "0978", 5},
    {"4-byte tag rejected", "DF81818101AA", KV_ERR_TLV_TAG, 0, 0, 0, 0, NULL, 0},
    {"4-byte tag rejected even when cut", "9F8080", KV_ERR_TLV_TAG, 0, 0, 0, 0, NULL, 0},
    {"constructed 1-byte", "7003800100", 1, 0x70, 1, 1, 3, "800100", 5},
    {"constructed 2-byte empty", "BF0C00", 1, 0xBF0C, 2, 1, 0, "", 3},
    {"zero length", "8A00", 1, 0x8A, 1, 0, 0, "", 2},
    {"short form 7F header", "5A7F", KV_ERR_TLV_OVERLONG, 0, 0, 0, 0, NULL, 0},
    {"long form 81", "5A810112", 1, 0x5A, 1, 0, 1, "12", 4},
    {"long form 82", "5A82000112", 1, 0x5A, 1, 0, 1, "12", 5},
    {"long form 83", "5A8300000112", 1, 0x5A, 1, 0, 1, "12", 6},
    {"long form 84", "5A840000000112", 1, 0x5A, 1, 0, 1, "12", 7},
    {"length 85 rejected", "5A85000000000112", KV_ERR_TLV_LENGTH, 0, 0, 0, 0, NULL, 0},
    {"length FE rejected", "5AFE", KV_ERR_TLV_LENGTH, 0, 0, 0, 0, NULL, 0},
    {"length FF rejected", "5AFF00", KV_ERR_TLV_LENGTH, 0, 0, 0, 0, NULL, 0},
    {"indefinite 80 rejected", "70805A01120000", KV_ERR_TLV_INDEFINITE, 0, 0, 0, 0, NULL, 0},
    {"truncated 2-byte tag", "9F", KV_ERR_TRUNCATED, 0, 0, 0, 0, NULL, 0},
    {"truncated 3-byte tag", "DF81", KV_ERR_TRUNCATED, 0, 0, 0, 0, NULL, 0},
    {"truncated: no length byte", "5A", KV_ERR_TRUNCATED, 0, 0, 0, 0, NULL, 0},
    {"truncated: no length after 2-byte tag", "9F02", KV_ERR_TRUNCATED, 0, 0, 0, 0, NULL, 0},
    {"truncated long length 82", "5A8201", KV_ERR_TRUNCATED, 0, 0, 0, 0, NULL, 0},
    {"truncated long length 84", "5A84000000", KV_ERR_TRUNCATED, 0, 0, 0, 0, NULL, 0},
    {"value overlong by one", "5A03AABB", KV_ERR_TLV_OVERLONG, 0, 0, 0, 0, NULL, 0},
    {"value overlong 81FF", "5A81FF00", KV_ERR_TLV_OVERLONG, 0, 0, 0, 0, NULL, 0},
    {"value overlong 84FFFFFFFF", "5A84FFFFFFFF00", KV_ERR_TLV_OVERLONG, 0, 0, 0, 0, NULL, 0},
    {"padding before", "0000FF5A0112", 1, 0x5A, 1, 0, 1, "12", 6},
    {"only padding", "00FF00", 0, 0, 0, 0, 0, NULL, 3},
    {"empty", "", 0, 0, 0, 0, 0, NULL, 0},
    {"error after padding keeps padding", "00009F", KV_ERR_TRUNCATED, 0, 0, 0, 0, NULL, 0},
};

static void test_tlv_next_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(next_rows) / sizeof(next_rows[0]); i++) {
        const struct next_row *row = &next_rows[i];
        uint8_t in[64], want[64];
        size_t n = unhex(row->in, in, sizeof(in)), wn;
        kv_cursor c;
        kv_tlv t;
        int rc;

        memset(&t, 0, sizeof(t));
        kv_cursor_init(&c, in, n);
        rc = kv_tlv_next(&c, &t);
        if (rc != row->rc || n - kv_cursor_left(&c) != row->consumed) {
            print_error("row '%s' input %s: rc %d consumed %zu, want rc %d consumed %zu\n",
                        row->name, row->in, rc, n - kv_cursor_left(&c), row->rc, row->consumed);
            fail();
        }
        if (rc != 1)
            continue;
        wn = unhex(row->value, want, sizeof(want));
        if (t.tag != row->tag || t.tag_len != row->tag_len || t.constructed != row->constructed ||
            t.len != row->len || t.len != wn || (wn > 0 && memcmp(t.value, want, wn) != 0) ||
            (wn == 0 && t.value != NULL)) {
            print_error("row '%s': got tag %X/%u c%u len %zu value %s, want tag %X/%u c%u len %zu "
                        "value %s\n",
                        row->name, t.tag, t.tag_len, t.constructed, t.len, hx(t.value, t.len),
                        row->tag, row->tag_len, row->constructed, row->len, row->value);
            fail();
        }
        /* raw covers the object from its tag, without leading padding. */
        assert_ptr_equal(t.raw + t.raw_len, in + row->consumed);
        if (t.value != NULL)
            assert_ptr_equal(t.value + t.len, t.raw + t.raw_len);
    }
}

static void test_tlv_next_sequence(void **state)
{
    /* Two objects with padding between and after: 1, 1, then 0 consuming the tail. */
    uint8_t in[32];
    size_t n = unhex("5A0112 00FF00 9F020100 FFFF", in, sizeof(in));
    kv_cursor c;
    kv_tlv t;
    (void)state;

    kv_cursor_init(&c, in, n);
    assert_int_equal(kv_tlv_next(&c, &t), 1);
    assert_int_equal(t.tag, 0x5A);
    assert_int_equal(kv_tlv_next(&c, &t), 1);
    assert_int_equal(t.tag, 0x9F02);
    assert_ptr_equal(t.raw, in + 6);
    assert_int_equal(t.raw_len, 4);
    assert_int_equal(kv_tlv_next(&c, &t), 0);
    assert_int_equal(kv_cursor_left(&c), 0);
    assert_int_equal(kv_tlv_next(&c, &t), 0);
}

/* Long lengths that need real data: (length, encoded header after tag 5A). */
struct long_row {
    size_t len;
    const char *header;
};

static const struct long_row long_rows[] = {
    {0x7F, "5A7F"},
    {0x80, "5A8180"},
    {0xFF, "5A81FF"},
    {0x100, "5A820100"},
    {0xFFFF, "5A82FFFF"},
    {0x10000, "5A83010000"},
    {0x1000000, "5A8401000000"},
};

static void test_tlv_long_lengths(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(long_rows) / sizeof(long_rows[0]); i++) {
        const struct long_row *row = &long_rows[i];
        uint8_t hdr[8];
        size_t hn = unhex(row->header, hdr, sizeof(hdr));
        size_t total = hn + row->len;
        uint8_t *buf = malloc(total);
        uint8_t *enc = malloc(total);
        kv_tlv_writer w;
        kv_cursor c;
        kv_tlv t;

        assert_non_null(buf);
        assert_non_null(enc);
        memcpy(buf, hdr, hn);
        memset(buf + hn, 0x5C, row->len);
        /* Decode the known encoding. */
        kv_cursor_init(&c, buf, total);
        assert_int_equal(kv_tlv_next(&c, &t), 1);
        assert_int_equal(t.len, row->len);
        assert_ptr_equal(t.value, buf + hn);
        assert_int_equal(kv_tlv_validate(buf, total), 0);
        /* One byte short is overlong. */
        assert_int_equal(kv_tlv_validate(buf, total - 1), KV_ERR_TLV_OVERLONG);
        assert_int_equal(kv_tlv_header_size(0x5A, row->len), hn);
        /* The encoder writes the same minimal header. */
        kv_tlv_writer_init(&w, enc, total);
        assert_int_equal(kv_tlv_put(&w, 0x5A, buf + hn, row->len), 0);
        if (w.len != total || memcmp(enc, buf, total) != 0) {
            print_error("len %zu: encoded header %s, want %s\n", row->len, hx(enc, hn),
                        row->header);
            fail();
        }
        /* And one byte less room fails. */
        kv_tlv_writer_init(&w, enc, total - 1);
        assert_int_equal(kv_tlv_put(&w, 0x5A, buf + hn, row->len), KV_ERR_BUFFER);
        free(buf);
        free(enc);
    }
}

/* --- kv_tlv_validate --- */

struct validate_row {
    const char *name;
    const char *in;
    int rc;
    size_t bad_offset;
};

static const struct validate_row validate_rows[] = {
    {"empty", "", 0, 0},
    {"only padding", "00FFFF00", 0, 0},
    {"padding between and after", "5A011200FF9F02010000FF", 0, 0},
    {"padding inside constructed", "7006005A011200FF", 0, 0},
    {"nested three levels", "6F07A50570035A0112", 0, 0},
    {"primitive value not descended", "5A027080", 0, 0},
    {"overlong inside constructed", "70045A031234", KV_ERR_TLV_OVERLONG, 2},
    {"outer overlong", "70055A0112", KV_ERR_TLV_OVERLONG, 0},
    {"truncated tag inside constructed", "70019F", KV_ERR_TRUNCATED, 2},
    {"truncated length inside constructed", "70025A82", KV_ERR_TRUNCATED, 2},
    {"4-byte tag inside constructed", "7004DF818181", KV_ERR_TLV_TAG, 2},
    {"indefinite inside constructed", "70025A80", KV_ERR_TLV_INDEFINITE, 2},
    {"85 inside constructed", "70025A85", KV_ERR_TLV_LENGTH, 2},
    {"second object truncated", "5A01129F", KV_ERR_TRUNCATED, 3},
    {"second object after padding overlong", "5A011200005A05", KV_ERR_TLV_OVERLONG, 5},
    {"three levels, exact fit", "6F08A50670045A021234", 0, 0},
    {"bad object deep inside, cut", "6F08A50670045A031234", KV_ERR_TLV_OVERLONG, 6},
    {"empty constructed", "700077006F00", 0, 0},
};

static void test_tlv_validate_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(validate_rows) / sizeof(validate_rows[0]); i++) {
        const struct validate_row *row = &validate_rows[i];
        uint8_t in[64];
        size_t n = unhex(row->in, in, sizeof(in));
        size_t bad = 12345;
        int rc = kv_tlv_validate(in, n);
        int rc2 = kv_tlv_validate_offset(in, n, &bad);

        if (rc != row->rc || rc2 != row->rc || (rc != 0 && bad != row->bad_offset) ||
            (rc == 0 && bad != 12345)) {
            print_error("row '%s' input %s: rc %d/%d at %zu, want rc %d at %zu\n", row->name,
                        row->in, rc, rc2, bad, row->rc, row->bad_offset);
            fail();
        }
    }
    assert_int_equal(kv_tlv_validate(NULL, 0), 0);
}

/* n constructed 70 objects one inside the other around 5A 01 12. */
static size_t build_nested(uint8_t *out, unsigned n)
{
    size_t inner = 3;
    size_t total = 2 * n + inner;
    for (unsigned i = 0; i < n; i++) {
        out[2 * i] = 0x70;
        out[2 * i + 1] = (uint8_t)(total - 2 * i - 2);
    }
    out[2 * n] = 0x5A;
    out[2 * n + 1] = 0x01;
    out[2 * n + 2] = 0x12;
    return total;
}

static int max_depth_visit(const kv_tlv *t, unsigned depth, void *arg)
{
    unsigned *max = arg;
    (void)t;
    if (depth > *max)
        *max = depth;
    return 0;
}

struct depth_row {
    unsigned nesting;
    int rc;
};

static const struct depth_row depth_rows[] = {
    {1, 0},
    {KV_TLV_MAX_DEPTH - 1, 0},
    {KV_TLV_MAX_DEPTH, 0},
    {KV_TLV_MAX_DEPTH + 1, KV_ERR_TLV_DEPTH},
    {KV_TLV_MAX_DEPTH + 5, KV_ERR_TLV_DEPTH},
};

static void test_tlv_depth_limit(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(depth_rows) / sizeof(depth_rows[0]); i++) {
        uint8_t buf[128];
        size_t n = build_nested(buf, depth_rows[i].nesting);
        size_t bad = 0;
        unsigned max = 0;
        kv_tlv t;
        int rc = kv_tlv_validate_offset(buf, n, &bad);

        if (rc != depth_rows[i].rc) {
            print_error("nesting %u (%s): rc %d, want %d\n", depth_rows[i].nesting, hx(buf, n), rc,
                        depth_rows[i].rc);
            fail();
        }
        assert_int_equal(kv_tlv_walk(buf, n, max_depth_visit, &max), depth_rows[i].rc);
        assert_int_equal(kv_tlv_find(buf, n, 0x5A, &t),
                         depth_rows[i].rc == 0 ? 0 : depth_rows[i].rc);
        if (rc == 0) {
            /* The primitive sits at depth == nesting. */
            assert_int_equal(max, depth_rows[i].nesting);
        } else {
            /* The 11th constructed object is the one named. */
            assert_int_equal(bad, 2 * KV_TLV_MAX_DEPTH);
            assert_int_equal(max, KV_TLV_MAX_DEPTH - 1);
        }
    }
}

/* --- find --- */

struct find_row {
    const char *name;
    const char *in;
    uint32_t tag;
    int rc;
    const char *value; /* hex, or NULL to check only len */
    size_t len;
};

static const struct find_row find_rows[] = {
    {"top level", "5A0112", 0x5A, 0, "12", 1},
    {"not found", "5A0112", 0x57, KV_ERR_NOT_FOUND, NULL, 0},
    {"empty input", "", 0x57, KV_ERR_NOT_FOUND, NULL, 0},
    {"first of two", "5A01115A0122", 0x5A, 0, "11", 1},
    {"depth first: child before later sibling", "70035A01AA5A01BB", 0x5A, 0, "AA", 1},
    {"nested three levels", "6F07A50570035A0112", 0x5A, 0, "12", 1},
    {"constructed itself", "6F07A50570035A0112", 0xA5, 0, "70035A0112", 5},
    {"error met before the tag", "70019F5A0112", 0x5A, KV_ERR_TRUNCATED, NULL, 0},
    {"error after the tag not met", "5A011270019F", 0x5A, 0, "12", 1},
    {"not found, then error", "5A011270019F", 0x57, KV_ERR_TRUNCATED, NULL, 0},
    {"3-byte tag inside template", "BF810505DF81290100", 0xDF8129, 0, "00", 1},
    {"not inside a primitive", "5A039F0100", 0x9F01, KV_ERR_NOT_FOUND, NULL, 0},
};

static void test_tlv_find_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(find_rows) / sizeof(find_rows[0]); i++) {
        const struct find_row *row = &find_rows[i];
        uint8_t in[64], want[64];
        size_t n = unhex(row->in, in, sizeof(in));
        kv_tlv t;
        int rc = kv_tlv_find(in, n, row->tag, &t);

        if (rc != row->rc) {
            print_error("row '%s' find %X in %s: rc %d, want %d\n", row->name, row->tag, row->in,
                        rc, row->rc);
            fail();
        }
        if (rc != 0)
            continue;
        assert_int_equal(t.tag, row->tag);
        if (row->value != NULL) {
            size_t wn = unhex(row->value, want, sizeof(want));
            if (t.len != wn || memcmp(t.value, want, wn) != 0) {
                print_error("row '%s': value %s, want %s\n", row->name, hx(t.value, t.len),
                            row->value);
                fail();
            }
        }
    }
}

/* --- walk --- */

struct walk_log {
    char text[1024];
    size_t at;
    unsigned stop_after; /* 0: never */
    unsigned count;
};

static int log_visit(const kv_tlv *t, unsigned depth, void *arg)
{
    struct walk_log *log = arg;
    int n = snprintf(log->text + log->at, sizeof(log->text) - log->at, "%s%X/%u",
                     log->at ? " " : "", t->tag, depth);
    if (n > 0)
        log->at += (size_t)n;
    log->count++;
    if (log->stop_after != 0 && log->count == log->stop_after)
        return 7;
    return 0;
}

struct walk_row {
    const char *name;
    const char *in;
    unsigned stop_after;
    int rc;
    const char *order; /* "TAG/depth ..." */
};

static const struct walk_row walk_rows[] = {
    /* Visa PPSE FCI (visa_debit_ppse.json, SELECT 2PAY.SYS.DDF01). */
    {"PPSE FCI",
     "6F3A840E325041592E5359532E4444463031A528BF0C2561234F07A0000000031010500A5669736120446562"
     "69748701019F0A080001050100000000",
     0, 0, "6F/0 84/1 A5/1 BF0C/2 61/3 4F/4 50/4 87/4 9F0A/4"},
    {"siblings and padding", "5A0112007003800100FF9F0100", 0, 0, "5A/0 70/0 80/1 9F01/0"},
    {"stop after 3", "5A0112007003800100FF9F0100", 3, 7, "5A/0 70/0 80/1"},
    {"objects before an error", "5A011270039F0201", 0, KV_ERR_TLV_OVERLONG, "5A/0 70/0"},
    {"empty", "", 0, 0, ""},
};

static void test_tlv_walk_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(walk_rows) / sizeof(walk_rows[0]); i++) {
        const struct walk_row *row = &walk_rows[i];
        uint8_t in[256];
        size_t n = unhex(row->in, in, sizeof(in));
        struct walk_log log;
        int rc;

        memset(&log, 0, sizeof(log));
        log.stop_after = row->stop_after;
        rc = kv_tlv_walk(in, n, log_visit, &log);
        if (rc != row->rc || strcmp(log.text, row->order) != 0) {
            print_error("row '%s': rc %d order '%s', want rc %d order '%s'\n", row->name, rc,
                        log.text, row->rc, row->order);
            fail();
        }
    }
}

/* --- encoder --- */

static void test_tlv_writer_nested(void **state)
{
    uint8_t buf[64];
    uint8_t v1[] = {0x12};
    uint8_t v2[] = {0x25, 0x07, 0x31};
    uint8_t want[64];
    size_t wn = unhex("6F0E 8401A1 A509 5A0112 5F2403250731", want, sizeof(want));
    kv_tlv_writer w;
    (void)state;

    kv_tlv_writer_init(&w, buf, sizeof(buf));
    kv_tlv_begin(&w, 0x6F);
    kv_tlv_put(&w, 0x84, (const uint8_t *)"\xA1", 1);
    kv_tlv_begin(&w, 0xA5);
    kv_tlv_put(&w, 0x5A, v1, sizeof(v1));
    kv_tlv_put(&w, 0x5F24, v2, sizeof(v2));
    kv_tlv_end(&w);
    kv_tlv_end(&w);
    assert_int_equal(kv_tlv_finish(&w), 0);
    if (w.len != wn || memcmp(buf, want, wn) != 0) {
        print_error("nested: got %s, want %s\n", hx(buf, w.len), hx(want, wn));
        fail();
    }
}

/* begin/end where the content needs long length forms: the content moves. */
struct grow_row {
    size_t inner_len; /* bytes of value in the primitive 90 */
    const char *outer_hdr;
    const char *inner_hdr;
    const char *prim_hdr;
};

static const struct grow_row grow_rows[] = {
    /* 77 { 70 { 90 } }: lengths checked by hand against X.690 8.1.3. */
    {1, "7705", "7003", "9001"},
    {0x7B, "777F", "707D", "907B"},       /* 123 + 2 = 125, + 2 = 127: still short form */
    {0x7C, "778180", "707E", "907C"},     /* outer crosses to 81 */
    {0x7E, "778183", "708180", "907E"},   /* inner crosses to 81 */
    {0x80, "778186", "708183", "908180"}, /* all long */
    {300, "77820134", "70820130", "9082012C"},
    {0x10000, "778301000A", "7083010005", "9083010000"},
};

static void test_tlv_writer_grow(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(grow_rows) / sizeof(grow_rows[0]); i++) {
        const struct grow_row *row = &grow_rows[i];
        uint8_t h1[8], h2[8], h3[8];
        size_t n1 = unhex(row->outer_hdr, h1, sizeof(h1));
        size_t n2 = unhex(row->inner_hdr, h2, sizeof(h2));
        size_t n3 = unhex(row->prim_hdr, h3, sizeof(h3));
        size_t total = n1 + n2 + n3 + row->inner_len;
        uint8_t *value = malloc(row->inner_len);
        uint8_t *want = malloc(total);
        uint8_t *buf = malloc(total);
        kv_tlv_writer w;

        assert_non_null(value);
        assert_non_null(want);
        assert_non_null(buf);
        for (size_t j = 0; j < row->inner_len; j++)
            value[j] = (uint8_t)(j * 7 + 1);
        memcpy(want, h1, n1);
        memcpy(want + n1, h2, n2);
        memcpy(want + n1 + n2, h3, n3);
        memcpy(want + n1 + n2 + n3, value, row->inner_len);

        /* Exactly enough room. */
        kv_tlv_writer_init(&w, buf, total);
        kv_tlv_begin(&w, 0x77);
        kv_tlv_begin(&w, 0x70);
        kv_tlv_put(&w, 0x90, value, row->inner_len);
        kv_tlv_end(&w);
        kv_tlv_end(&w);
        assert_int_equal(kv_tlv_finish(&w), 0);
        if (w.len != total || memcmp(buf, want, total) != 0) {
            print_error("inner %zu: got %s..., want %s...\n", row->inner_len, hx(buf, 12),
                        hx(want, 12));
            fail();
        }
        assert_int_equal(kv_tlv_validate(buf, w.len), 0);

        /* One byte less: a sticky KV_ERR_BUFFER somewhere along the way. */
        kv_tlv_writer_init(&w, buf, total - 1);
        kv_tlv_begin(&w, 0x77);
        kv_tlv_begin(&w, 0x70);
        kv_tlv_put(&w, 0x90, value, row->inner_len);
        kv_tlv_end(&w);
        kv_tlv_end(&w);
        assert_int_equal(kv_tlv_finish(&w), KV_ERR_BUFFER);
        assert_int_equal(w.err, KV_ERR_BUFFER);
        free(value);
        free(want);
        free(buf);
    }
}

static void test_tlv_writer_sticky(void **state)
{
    uint8_t buf[5];
    uint8_t v[3] = {1, 2, 3};
    kv_tlv_writer w;
    (void)state;

    kv_tlv_writer_init(&w, buf, sizeof(buf));
    assert_int_equal(kv_tlv_put(&w, 0x5A, v, 3), 0); /* exactly 5 bytes */
    assert_int_equal(w.len, 5);
    assert_int_equal(kv_tlv_put(&w, 0x5F24, v, 3), KV_ERR_BUFFER);
    assert_int_equal(w.len, 5);
    /* Sticky: even what would fit (nothing) and valid calls fail now. */
    assert_int_equal(kv_tlv_put_raw(&w, NULL, 0), KV_ERR_BUFFER);
    assert_int_equal(kv_tlv_begin(&w, 0x70), KV_ERR_BUFFER);
    assert_int_equal(kv_tlv_end(&w), KV_ERR_BUFFER);
    assert_int_equal(kv_tlv_finish(&w), KV_ERR_BUFFER);
    assert_int_equal(w.err, KV_ERR_BUFFER);

    /* No buffer at all. */
    kv_tlv_writer_init(&w, NULL, 0);
    assert_int_equal(kv_tlv_put(&w, 0x5A, v, 1), KV_ERR_BUFFER);

    /* put_raw copies bytes as they are. */
    kv_tlv_writer_init(&w, buf, sizeof(buf));
    assert_int_equal(kv_tlv_put_raw(&w, v, 3), 0);
    assert_int_equal(kv_tlv_put_raw(&w, v, 3), KV_ERR_BUFFER);
    assert_memory_equal(buf, v, 3);
}

struct misuse_row {
    const char *name;
    uint32_t tag;
    int begin; /* use kv_tlv_begin instead of kv_tlv_put */
    int rc;
    int valid; /* kv_tlv_tag_is_valid */
};

static const struct misuse_row misuse_rows[] = {
    {"tag 00 is padding", 0x00, 0, KV_ERR_ARG, 0},
    {"tag FF is padding", 0xFF, 0, KV_ERR_ARG, 0},
    {"1F alone needs a next byte", 0x1F, 0, KV_ERR_ARG, 0},
    {"9F81 second byte says more", 0x9F81, 0, KV_ERR_ARG, 0},
    {"5A01 first byte says single", 0x5A01, 0, KV_ERR_ARG, 0},
    {"DF8181 third byte says more", 0xDF8181, 0, KV_ERR_ARG, 0},
    {"DF0101 second byte says last", 0xDF0101, 0, KV_ERR_ARG, 0},
    {"4-byte tag", 0xDF818101, 0, KV_ERR_ARG, 0},
    {"begin primitive tag", 0x5A, 1, KV_ERR_ARG, 1},
    {"begin primitive 2-byte tag", 0x9F02, 1, KV_ERR_ARG, 1},
    {"valid 3-byte", 0xDF8129, 0, 0, 1},
    {"begin 3-byte constructed", 0xBF8102, 1, 0, 1},
    {"FF8102 starts with a padding byte", 0xFF8102, 1, KV_ERR_ARG, 0},
    {"begin BF0C", 0xBF0C, 1, 0, 1},
};

static void test_tlv_writer_misuse(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(misuse_rows) / sizeof(misuse_rows[0]); i++) {
        const struct misuse_row *row = &misuse_rows[i];
        uint8_t buf[16];
        kv_tlv_writer w;
        int rc;

        kv_tlv_writer_init(&w, buf, sizeof(buf));
        rc = row->begin ? kv_tlv_begin(&w, row->tag) : kv_tlv_put(&w, row->tag, buf, 0);
        if (rc != row->rc) {
            print_error("row '%s' tag %X: rc %d, want %d\n", row->name, row->tag, rc, row->rc);
            fail();
        }
        assert_int_equal(kv_tlv_tag_is_valid(row->tag), row->valid);
    }
}

static void test_tlv_writer_structure_errors(void **state)
{
    uint8_t buf[64];
    kv_tlv_writer w;
    (void)state;

    kv_tlv_writer_init(&w, buf, sizeof(buf));
    assert_int_equal(kv_tlv_end(&w), KV_ERR_ARG);

    kv_tlv_writer_init(&w, buf, sizeof(buf));
    assert_int_equal(kv_tlv_begin(&w, 0x70), 0);
    assert_int_equal(kv_tlv_finish(&w), KV_ERR_ARG); /* still open */

    kv_tlv_writer_init(&w, buf, sizeof(buf));
    assert_int_equal(kv_tlv_put(&w, 0x5A, NULL, 1), KV_ERR_ARG);

    /* KV_TLV_MAX_DEPTH open objects are fine, one more is not. */
    kv_tlv_writer_init(&w, buf, sizeof(buf));
    for (int i = 0; i < KV_TLV_MAX_DEPTH; i++)
        assert_int_equal(kv_tlv_begin(&w, 0x70), 0);
    assert_int_equal(kv_tlv_put(&w, 0x5A, (const uint8_t *)"\x12", 1), 0);
    for (int i = 0; i < KV_TLV_MAX_DEPTH; i++)
        assert_int_equal(kv_tlv_end(&w), 0);
    assert_int_equal(kv_tlv_finish(&w), 0);
    assert_int_equal(kv_tlv_validate(buf, w.len), 0); /* what it builds decodes */
    uint8_t want[64];
    size_t wn = build_nested(want, KV_TLV_MAX_DEPTH);
    assert_int_equal(w.len, wn);
    assert_memory_equal(buf, want, wn);

    kv_tlv_writer_init(&w, buf, sizeof(buf));
    for (int i = 0; i < KV_TLV_MAX_DEPTH; i++)
        kv_tlv_begin(&w, 0x70);
    assert_int_equal(kv_tlv_begin(&w, 0x70), KV_ERR_TLV_DEPTH);
    assert_int_equal(kv_tlv_finish(&w), KV_ERR_TLV_DEPTH);
}

struct hsize_row {
    uint32_t tag;
    size_t len;
    size_t size;
};

static const struct hsize_row hsize_rows[] = {
    {0x5A, 0, 2},     {0x5A, 127, 2},      {0x5A, 128, 3},       {0x9F02, 6, 3},
    {0x9F02, 255, 4}, {0x9F02, 256, 5},    {0xDF8129, 8, 4},     {0xDF8129, 65535, 6},
    {0x70, 65536, 5}, {0x70, 0xFFFFFF, 5}, {0x70, 0x1000000, 6},
};

static void test_tlv_header_size(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(hsize_rows) / sizeof(hsize_rows[0]); i++) {
        size_t got = kv_tlv_header_size(hsize_rows[i].tag, hsize_rows[i].len);
        if (got != hsize_rows[i].size) {
            print_error("header size of %X len %zu: %zu, want %zu\n", hsize_rows[i].tag,
                        hsize_rows[i].len, got, hsize_rows[i].size);
            fail();
        }
    }
}

/* --- round trip helpers --- */

struct flat {
    unsigned depth;
    uint32_t tag;
    uint8_t constructed;
    const uint8_t *value;
    size_t len;
};

struct flat_list {
    struct flat item[1024];
    size_t n;
};

static int flat_visit(const kv_tlv *t, unsigned depth, void *arg)
{
    struct flat_list *l = arg;
    if (l->n == sizeof(l->item) / sizeof(l->item[0]))
        return KV_ERR_BUFFER;
    l->item[l->n].depth = depth;
    l->item[l->n].tag = t->tag;
    l->item[l->n].constructed = t->constructed;
    l->item[l->n].value = t->value;
    l->item[l->n].len = t->len;
    l->n++;
    return 0;
}

static int reencode_visit(const kv_tlv *t, unsigned depth, void *arg)
{
    kv_tlv_writer *w = arg;
    while (w->depth > depth)
        kv_tlv_end(w);
    if (t->constructed)
        return kv_tlv_begin(w, t->tag);
    return kv_tlv_put(w, t->tag, t->value, t->len);
}

/* Re-encode p through the writer and check that the result has the same objects. */
static void check_round_trip(const char *what, const uint8_t *p, size_t len)
{
    static struct flat_list a, b;
    uint8_t *out = malloc(len + 1);
    kv_tlv_writer w;

    assert_non_null(out);
    kv_tlv_writer_init(&w, out, len); /* re-encoding never grows: no padding, minimal lengths */
    assert_int_equal(kv_tlv_walk(p, len, reencode_visit, &w), 0);
    while (w.depth > 0)
        kv_tlv_end(&w);
    if (kv_tlv_finish(&w) != 0) {
        print_error("%s: re-encode failed %d for %s\n", what, w.err, hx(p, len));
        fail();
    }
    a.n = b.n = 0;
    assert_int_equal(kv_tlv_walk(p, len, flat_visit, &a), 0);
    assert_int_equal(kv_tlv_walk(out, w.len, flat_visit, &b), 0);
    assert_int_equal(a.n, b.n);
    for (size_t i = 0; i < a.n; i++) {
        const struct flat *x = &a.item[i], *y = &b.item[i];
        if (x->depth != y->depth || x->tag != y->tag || x->constructed != y->constructed ||
            (!x->constructed &&
             (x->len != y->len || (x->len > 0 && memcmp(x->value, y->value, x->len) != 0)))) {
            print_error("%s: object %zu differs after re-encoding: %X/%u %s vs %X/%u %s\n", what, i,
                        x->tag, x->depth, hx(x->value, x->len), y->tag, y->depth,
                        hx(y->value, y->len));
            fail();
        }
    }
    free(out);
}

/* --- real records (SW stripped), from tests/data/traces/cards --- */

struct record_row {
    const char *name;
    const char *hex;
    uint32_t tag;
    int rc;
    const char *value; /* hex, or NULL: check len only */
    size_t len;
};

static const struct record_row record_rows[] = {
    {"visa PPSE FCI, AID",
     "6F3A840E325041592E5359532E4444463031A528BF0C2561234F07A0000000031010500A5669736120446562"
     "69748701019F0A080001050100000000",
     0x4F, 0, "A0000000031010", 7},
    {"visa app FCI, PDOL",
     "6F6F8407A0000000031010A564500A566973612044656269749F120F636F6D6469726563742044656269749F"
     "1101018701015F2D046465656E9F38189F66049F02069F03069F1A0295055F2A029A039C019F3704BF0C1A9F"
     "0A0800010501000000009F5A053109780276BF6304DF200180",
     0x9F38, 0, "9F66049F02069F03069F1A0295055F2A029A039C019F3704", 24},
    {"visa app FCI, DF20 inside BF63",
     "6F6F8407A0000000031010A564500A566973612044656269749F120F636F6D6469726563742044656269749F"
     "1101018701015F2D046465656E9F38189F66049F02069F03069F1A0295055F2A029A039C019F3704BF0C1A9F"
     "0A0800010501000000009F5A053109780276BF6304DF200180",
     0xDF20, 0, "80", 1},
    {"visa GPO format 2, cryptogram",
     "77428202202094041001030057134871780000000005D25072211328662101000F9F100706011203A000009F"
     "2608EC1C5779FF2670379F2701809F360200C39F6C020400",
     0x9F26, 0, "EC1C5779FF267037", 8},
    {"visa record, expiry",
     "70335A0848717800000000055F24032507315F3401015F280202769F070200809F4A01829F6E04207000009F"
     "690701859209CF0400",
     0x5F24, 0, "250731", 3},
    {"mastercard contact record 81 8F, PAN",
     "70818F5A0854133300896000445F24031412315F25030401015F280200565F3401018C219F02069F03069F09"
     "0295055F2A029A039C019F37049F35019F45029F4C089F34038D0C910A8A0295059F37049F4C088E0C000000"
     "00000000005E031F039F0702FF009F080200029F0D0500000000009F0E0500000000009F0F0500000000009F"
     "420209789F4A0182DF4F03123456",
     0x5A, 0, "5413330089600044", 8},
    {"mastercard contact record 81 8F, DF4F last",
     "70818F5A0854133300896000445F24031412315F25030401015F280200565F3401018C219F02069F03069F09"
     "0295055F2A029A039C019F37049F35019F45029F4C089F34038D0C910A8A0295059F37049F4C088E0C000000"
     "00000000005E031F039F0702FF009F080200029F0D0500000000009F0E0500000000009F0F0500000000009F"
     "420209789F4A0182DF4F03123456",
     0xDF4F, 0, "123456", 3},
    {"girocard record of 32 padding bytes",
     "70200000000000000000000000000000000000000000000000000000000000000000", 0x5A, KV_ERR_NOT_FOUND,
     NULL, 0},
    {"girocard PPSE, first of three AIDs",
     "6F67840E325041592E5359532E4444463031A555BF0C5261194F09A000000059454301008701019F0A080001"
     "050100000000611A4F0AA00000035910100280018701019F0A08000105010000000061194F09D27600002547"
     "4101008701019F0A080001050100000000",
     0x4F, 0, "A00000005945430100", 9},
    {"unionpay GPO format 1", "800E7C00080103001001050120010100", 0x80, 0,
     "7C00080103001001050120010100", 14},
    {"unionpay GET DATA 9F13", "9F13020001", 0x9F13, 0, "0001", 2},
    {"unionpay record 81 88, CDOL2",
     "7081885F24033010315A0862109480000000115F3401019F0702FF008E0E00000000000000005E0342031F00"
     "9F0D05D8609CA8009F0E0500100000009F0F05D8689CF8005F280201568C1E9F02069F03069F1A0295055F2A"
     "029A039C019F37049F21039F4E149F34038D1C8A029F02069F03069F1A0295055F2A029A039C019F37049F21"
     "039B029F4A0182",
     0x8D, 0, "8A029F02069F03069F1A0295055F2A029A039C019F37049F21039B02", 28},
    {"mastercard debit record 81 A6, track 2",
     "7081A69F420209785F25032203015F24032403315A0853750500000000015F3401009F0702FFC09F08020002"
     "8C279F02069F03069F1A0295055F2A029A039C019F37049F35019F45029F4C089F34039F21039F7C148D0C91"
     "0A8A0295059F37049F4C088E0E000000000000000042031E031F039F0D05B4508400009F0E0500000000009F"
     "0F05B4708480005F280202809F4A018257135375050000000001D24032212794329000000F",
     0x57, 0, "5375050000000001D24032212794329000000F", 19},
};

static void test_tlv_real_records(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(record_rows) / sizeof(record_rows[0]); i++) {
        const struct record_row *row = &record_rows[i];
        uint8_t in[512], want[512];
        size_t n = unhex(row->hex, in, sizeof(in));
        kv_tlv t;
        int rc;

        if (kv_tlv_validate(in, n) != 0) {
            print_error("row '%s': %s does not validate\n", row->name, row->hex);
            fail();
        }
        rc = kv_tlv_find(in, n, row->tag, &t);
        if (rc != row->rc) {
            print_error("row '%s': find %X rc %d, want %d\n", row->name, row->tag, rc, row->rc);
            fail();
        }
        if (rc == 0) {
            size_t wn = row->value != NULL ? unhex(row->value, want, sizeof(want)) : row->len;
            if (t.len != row->len || wn != row->len ||
                (row->value != NULL && memcmp(t.value, want, wn) != 0)) {
                print_error("row '%s': %X = %s, want %s\n", row->name, row->tag, hx(t.value, t.len),
                            row->value ? row->value : "(len only)");
                fail();
            }
        }
        check_round_trip(row->name, in, n);
    }
}

/* Facts a trace file states, found in its records (tests/data/traces/README.md). */
struct card_facts {
    char pan[24];
    char expiry[8];
    char psn[4];
    char label[24];
};

static void digits_of(const kv_tlv *t, char stop_nibble, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < 2 * t->len && n + 1 < cap; i++) {
        unsigned d = (i & 1) ? (t->value[i / 2] & 15) : (t->value[i / 2] >> 4);
        if (d > 9 || (stop_nibble && d == (unsigned)stop_nibble))
            break;
        out[n++] = (char)('0' + d);
    }
    out[n] = '\0';
}

static void facts_from_record(const uint8_t *p, size_t n, const char *selected_aid,
                              struct card_facts *f)
{
    kv_tlv t;

    if (f->pan[0] == '\0' && kv_tlv_find(p, n, 0x5A, &t) == 0)
        digits_of(&t, 0, f->pan, sizeof(f->pan));
    if (f->expiry[0] == '\0' && kv_tlv_find(p, n, 0x5F24, &t) == 0 && t.len == 3)
        snprintf(f->expiry, sizeof(f->expiry), "%02X%02X", t.value[0], t.value[1]);
    if (f->psn[0] == '\0' && kv_tlv_find(p, n, 0x5F34, &t) == 0 && t.len == 1)
        snprintf(f->psn, sizeof(f->psn), "%02X", t.value[0]);
    if (f->label[0] == '\0' && selected_aid != NULL && kv_tlv_find(p, n, 0x84, &t) == 0) {
        char aid[40] = "";
        if (t.len <= 16)
            kv_hex_encode(t.value, t.len, aid);
        if (strcmp(aid, selected_aid) == 0 && kv_tlv_find(p, n, 0x50, &t) == 0 && t.len < 24) {
            memcpy(f->label, t.value, t.len);
            f->label[t.len] = '\0';
        }
    }
}

static void test_tlv_trace_files(void **state)
{
    const char *data = getenv("KV_TEST_DATA");
    const char *slash = strrchr(__FILE__, '/');
    char pattern[1024];
    glob_t g;
    size_t records = 0;
    (void)state;

    if (data != NULL && data[0] != '\0')
        snprintf(pattern, sizeof(pattern), "%s/traces/cards/*.json", data);
    else /* tests/unit/test_tlv.c -> tests/data */
        snprintf(pattern, sizeof(pattern), "%.*s/../data/traces/cards/*.json",
                 slash != NULL ? (int)(slash - __FILE__) : 1, slash != NULL ? __FILE__ : ".");
    assert_int_equal(glob(pattern, 0, NULL, &g), 0);
    assert_true(g.gl_pathc >= 6);
    for (size_t fi = 0; fi < g.gl_pathc; fi++) {
        json_error_t jerr;
        json_t *card = json_load_file(g.gl_pathv[fi], 0, &jerr);
        json_t *ex;
        size_t i;
        struct card_facts f;
        const char *sel, *want;

        if (card == NULL) {
            print_error("%s: %s\n", g.gl_pathv[fi], jerr.text);
            fail();
        }
        memset(&f, 0, sizeof(f));
        sel = json_string_value(json_object_get(card, "selected_aid"));
        json_array_foreach(json_object_get(card, "exchanges"), i, ex)
        {
            const char *rapdu = json_string_value(json_object_get(ex, "rapdu"));
            static uint8_t buf[MAXBUF];
            size_t n;
            int rc;

            assert_non_null(rapdu);
            n = unhex(rapdu, buf, sizeof(buf));
            assert_true(n >= 2);
            n -= 2; /* SW1 SW2 */
            rc = kv_tlv_validate(buf, n);
            if (rc != 0) {
                print_error("%s exchange %zu: rc %d for %s\n", g.gl_pathv[fi], i, rc, rapdu);
                fail();
            }
            check_round_trip(g.gl_pathv[fi], buf, n);
            facts_from_record(buf, n, sel, &f);
            records++;
        }
        want = json_string_value(json_object_get(card, "pan"));
        if (want == NULL || strcmp(f.pan, want) != 0) {
            print_error("%s: PAN from 5A '%s', file says '%s'\n", g.gl_pathv[fi], f.pan,
                        want ? want : "?");
            fail();
        }
        want = json_string_value(json_object_get(card, "expiry"));
        if (want == NULL || strcmp(f.expiry, want) != 0) {
            print_error("%s: expiry from 5F24 '%s', file says '%s'\n", g.gl_pathv[fi], f.expiry,
                        want ? want : "?");
            fail();
        }
        want = json_string_value(json_object_get(card, "psn"));
        if (strcmp(f.psn, want != NULL ? want : "") != 0) {
            print_error("%s: PSN from 5F34 '%s', file says '%s'\n", g.gl_pathv[fi], f.psn,
                        want ? want : "null");
            fail();
        }
        want = json_string_value(json_object_get(card, "label"));
        if (want == NULL || strcmp(f.label, want) != 0) {
            print_error("%s: label from 50 '%s', file says '%s'\n", g.gl_pathv[fi], f.label,
                        want ? want : "?");
            fail();
        }
        json_decref(card);
    }
    globfree(&g);
    assert_true(records >= 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tlv_next_table),
        cmocka_unit_test(test_tlv_next_sequence),
        cmocka_unit_test(test_tlv_long_lengths),
        cmocka_unit_test(test_tlv_validate_table),
        cmocka_unit_test(test_tlv_depth_limit),
        cmocka_unit_test(test_tlv_find_table),
        cmocka_unit_test(test_tlv_walk_table),
        cmocka_unit_test(test_tlv_writer_nested),
        cmocka_unit_test(test_tlv_writer_grow),
        cmocka_unit_test(test_tlv_writer_sticky),
        cmocka_unit_test(test_tlv_writer_misuse),
        cmocka_unit_test(test_tlv_writer_structure_errors),
        cmocka_unit_test(test_tlv_header_size),
        cmocka_unit_test(test_tlv_real_records),
        cmocka_unit_test(test_tlv_trace_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Table tests of apdu/apdu.h: C-APDU encoding and parsing for the four cases,
 * short and extended, with the length rules of ISO/IEC 7816-3 §12.1.3 (Le 256
 * short = 00, Le 65536 extended = 0000, extended Lc 000001..00FFFF), bad
 * lengths, and the R-APDU split.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "apdu/apdu.h"
#include "src/base/err.h"
#include "tests/unit/apdu_test_util.h"

#define BIG 70000

/* Data of a row: hex, or fill bytes of a pattern (i & 0xFF) when fill > 0. */
struct enc_row {
    const char *name;
    uint8_t cla, ins, p1, p2;
    const char *data; /* hex */
    size_t fill;      /* instead of data: this many pattern bytes */
    uint32_t le;
    int extended;
    size_t cap;       /* output capacity; 0 = BIG */
    int rc;           /* 0 or error */
    const char *head; /* expected encoding up to the data (hex) */
    const char *tail; /* expected encoding after the data (hex) */
    enum kv_apdu_case c;
};

static const struct enc_row enc_rows[] = {
    {"case 1", 0x00, 0xA4, 0x04, 0x00, "", 0, 0, 0, 0, 0, "00A40400", "", KV_APDU_CASE_1},
    {"case 1 asked extended is still 4 bytes", 0x00, 0xA4, 0x04, 0x00, "", 0, 0, 1, 0, 0,
     "00A40400", "", KV_APDU_CASE_1},
    {"case 2S Le 1", 0x80, 0xCA, 0x9F, 0x17, "", 0, 1, 0, 0, 0, "80CA9F1701", "", KV_APDU_CASE_2},
    {"case 2S Le 256 -> 00", 0x80, 0xCA, 0x9F, 0x17, "", 0, 256, 0, 0, 0, "80CA9F1700", "",
     KV_APDU_CASE_2},
    {"case 2E Le 257", 0x00, 0xB0, 0x00, 0x00, "", 0, 257, 0, 0, 0, "00B00000000101", "",
     KV_APDU_CASE_2},
    {"case 2E Le 65536 -> 000000", 0x00, 0xB0, 0x00, 0x00, "", 0, 65536, 0, 0, 0, "00B00000000000",
     "", KV_APDU_CASE_2},
    {"case 2E forced, Le 256", 0x00, 0xB0, 0x00, 0x00, "", 0, 256, 1, 0, 0, "00B00000000100", "",
     KV_APDU_CASE_2},
    {"case 3S", 0x00, 0x20, 0x00, 0x80, "241234FFFFFFFFFF", 0, 0, 0, 0, 0, "0020008008", "",
     KV_APDU_CASE_3},
    {"case 3S Lc 255", 0x00, 0xD6, 0x00, 0x00, NULL, 255, 0, 0, 0, 0, "00D60000FF", "",
     KV_APDU_CASE_3},
    {"case 3E Lc 256", 0x00, 0xD6, 0x00, 0x00, NULL, 256, 0, 0, 0, 0, "00D60000000100", "",
     KV_APDU_CASE_3},
    {"case 3E Lc 65535", 0x00, 0xD6, 0x00, 0x00, NULL, 65535, 0, 0, 0, 0, "00D6000000FFFF", "",
     KV_APDU_CASE_3},
    {"case 4S SELECT, Le 256", 0x00, 0xA4, 0x04, 0x00, "A0000000031010", 0, 256, 0, 0, 0,
     "00A4040007", "00", KV_APDU_CASE_4},
    {"case 4S Le 2", 0x00, 0x88, 0x00, 0x00, "01020304", 0, 2, 0, 0, 0, "0088000004", "02",
     KV_APDU_CASE_4},
    {"case 4E by Le 512", 0x00, 0x88, 0x00, 0x00, "01020304", 0, 512, 0, 0, 0, "00880000000004",
     "0200", KV_APDU_CASE_4},
    {"case 4E by Lc 300, Le 256 -> 0100", 0x00, 0xD6, 0x00, 0x00, NULL, 300, 256, 0, 0, 0,
     "00D6000000012C", "0100", KV_APDU_CASE_4},
    {"case 4E Le 65536 -> 0000", 0x00, 0x88, 0x00, 0x00, "0102", 0, 65536, 1, 0, 0,
     "00880000000002", "0000", KV_APDU_CASE_4},
    {"Lc 65536 rejected", 0x00, 0xD6, 0x00, 0x00, NULL, 65536, 0, 0, 0, KV_ERR_APDU, NULL, NULL, 0},
    {"Le 65537 rejected", 0x00, 0xB0, 0x00, 0x00, "", 0, 65537, 0, 0, KV_ERR_APDU, NULL, NULL, 0},
    {"buffer one short", 0x00, 0xA4, 0x04, 0x00, "A0000000031010", 0, 256, 0, 12, KV_ERR_BUFFER,
     NULL, NULL, 0},
    {"buffer exact", 0x00, 0xA4, 0x04, 0x00, "A0000000031010", 0, 256, 0, 13, 0, "00A4040007", "00",
     KV_APDU_CASE_4},
};

static size_t row_data(const char *hex, size_t fill, uint8_t *out)
{
    if (hex == NULL) {
        for (size_t i = 0; i < fill; i++)
            out[i] = (uint8_t)i;
        return fill;
    }
    return unhex(hex, out, BIG);
}

static void test_encode(void **state)
{
    static uint8_t data[BIG], want[BIG + 16], got[BIG + 16];
    (void)state;
    for (size_t i = 0; i < sizeof(enc_rows) / sizeof(enc_rows[0]); i++) {
        const struct enc_row *t = &enc_rows[i];
        size_t dlen = row_data(t->data, t->fill, data), glen = 0, wlen;
        kv_capdu c = {t->cla, t->ins, t->p1, t->p2, dlen ? data : NULL, dlen, t->le, t->extended};
        int rc = kv_capdu_encode(&c, got, t->cap ? t->cap : sizeof(got), &glen);
        if (rc != t->rc) {
            print_error("%s: rc %d, want %d\n", t->name, rc, t->rc);
            fail();
        }
        if (rc != 0)
            continue;
        wlen = unhex(t->head, want, sizeof(want));
        memcpy(want + wlen, data, dlen);
        wlen += dlen;
        wlen += unhex(t->tail, want + wlen, sizeof(want) - wlen);
        assert_bytes(t->name, got, glen, want, wlen);
        if (kv_capdu_case(&c) != t->c) {
            print_error("%s: case %d, want %d\n", t->name, kv_capdu_case(&c), t->c);
            fail();
        }
    }
}

struct parse_row {
    const char *name;
    const char *in;
    int rc;
    enum kv_apdu_case c;
    size_t lc;
    uint32_t le;
    int extended;
    const char *data;
};

static const struct parse_row parse_rows[] = {
    {"empty", "", KV_ERR_APDU, 0, 0, 0, 0, NULL},
    {"3 bytes", "00A404", KV_ERR_APDU, 0, 0, 0, 0, NULL},
    {"case 1", "00A40400", 0, KV_APDU_CASE_1, 0, 0, 0, ""},
    {"case 2S Le 00 = 256", "00B2010C00", 0, KV_APDU_CASE_2, 0, 256, 0, ""},
    {"case 2S Le 05", "80CA9F1705", 0, KV_APDU_CASE_2, 0, 5, 0, ""},
    {"case 3S", "00A4040002 3F00", 0, KV_APDU_CASE_3, 2, 0, 0, "3F00"},
    {"case 4S", "00A4040007 A0000000041010 00", 0, KV_APDU_CASE_4, 7, 256, 0, "A0000000041010"},
    {"case 4S GPO of a trace card", "80A8000002830000", 0, KV_APDU_CASE_4, 2, 256, 0, "8300"},
    {"case 3S Lc longer than data", "00A4040003 3F00", KV_ERR_APDU, 0, 0, 0, 0, NULL},
    {"case 4S two Le bytes", "00A4040002 3F00 0000", KV_ERR_APDU, 0, 0, 0, 0, NULL},
    {"case 2E Le 0000 = 65536", "00B00000 000000", 0, KV_APDU_CASE_2, 0, 65536, 1, ""},
    {"case 2E Le 0102", "00B00000 000102", 0, KV_APDU_CASE_2, 0, 258, 1, ""},
    {"6 bytes with b5 00", "00B00000 0000", KV_ERR_APDU, 0, 0, 0, 0, NULL},
    {"case 3E", "00D60000 000002 1122", 0, KV_APDU_CASE_3, 2, 0, 1, "1122"},
    {"case 4E Le 0000", "00D60000 000002 1122 0000", 0, KV_APDU_CASE_4, 2, 65536, 1, "1122"},
    {"case 4E Le 0010", "00D60000 000002 1122 0010", 0, KV_APDU_CASE_4, 2, 16, 1, "1122"},
    {"case 4E one Le byte", "00D60000 000002 1122 01", KV_ERR_APDU, 0, 0, 0, 0, NULL},
    {"case 4E three Le bytes", "00D60000 000002 1122 000000", KV_ERR_APDU, 0, 0, 0, 0, NULL},
    {"extended Lc 0000 with data", "00D60000 000000 11", KV_ERR_APDU, 0, 0, 0, 0, NULL},
    {"extended Lc beyond data", "00D60000 000003 1122", KV_ERR_APDU, 0, 0, 0, 0, NULL},
};

static void test_parse(void **state)
{
    uint8_t in[300], data[300], again[300];
    (void)state;
    for (size_t i = 0; i < sizeof(parse_rows) / sizeof(parse_rows[0]); i++) {
        const struct parse_row *t = &parse_rows[i];
        size_t n = unhex(t->in, in, sizeof(in)), dlen, alen;
        kv_capdu c;
        int rc = kv_capdu_parse(in, n, &c);
        if (rc != t->rc) {
            print_error("%s (%s): rc %d, want %d\n", t->name, t->in, rc, t->rc);
            fail();
        }
        if (rc != 0)
            continue;
        if (kv_capdu_case(&c) != t->c || c.lc != t->lc || c.le != t->le ||
            c.extended != t->extended) {
            print_error("%s: case %d lc %zu le %u ext %d, want case %d lc %zu le %u ext %d\n",
                        t->name, kv_capdu_case(&c), c.lc, c.le, c.extended, t->c, t->lc, t->le,
                        t->extended);
            fail();
        }
        dlen = unhex(t->data, data, sizeof(data));
        assert_bytes(t->name, c.data, c.lc, data, dlen);
        /* and back: the encoding of a parsed APDU is the APDU */
        assert_int_equal(kv_capdu_encode(&c, again, sizeof(again), &alen), 0);
        assert_bytes(t->name, again, alen, in, n);
    }
}

struct rapdu_row {
    const char *name;
    const char *in;
    int rc;
    const char *data;
    uint16_t sw;
};

static const struct rapdu_row rapdu_rows[] = {
    {"empty", "", KV_ERR_APDU, NULL, 0}, {"one byte", "90", KV_ERR_APDU, NULL, 0},
    {"SW only", "6A82", 0, "", 0x6A82},  {"data and SW", "9F1701039000", 0, "9F170103", 0x9000},
    {"61xx", "6110", 0, "", 0x6110},
};

static void test_rapdu(void **state)
{
    uint8_t in[64], data[64];
    (void)state;
    for (size_t i = 0; i < sizeof(rapdu_rows) / sizeof(rapdu_rows[0]); i++) {
        const struct rapdu_row *t = &rapdu_rows[i];
        size_t n = unhex(t->in, in, sizeof(in)), dlen;
        kv_rapdu r;
        int rc = kv_rapdu_parse(in, n, &r);
        if (rc != t->rc) {
            print_error("%s: rc %d, want %d\n", t->name, rc, t->rc);
            fail();
        }
        if (rc != 0)
            continue;
        dlen = unhex(t->data, data, sizeof(data));
        assert_bytes(t->name, r.data, r.len, data, dlen);
        if (r.sw != t->sw) {
            print_error("%s: SW %04X, want %04X\n", t->name, r.sw, t->sw);
            fail();
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_rapdu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

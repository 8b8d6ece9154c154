/* Table tests of src/base/cursor.h: every read at exact fit, one short and zero length. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "src/base/cursor.h"
#include "src/base/err.h"
#include "src/base/hex.h"

enum cur_op { OP_U8, OP_U16, OP_U32, OP_COPY, OP_TAKE, OP_SKIP, OP_SUB, OP_PEEK };

static const char *const op_names[] = {"u8",   "u16be", "u32be", "copy",
                                       "take", "skip",  "sub",   "peek"};

struct cur_row {
    const char *name;
    enum cur_op op;
    const char *in;  /* cursor bytes, hex */
    size_t n;        /* n for copy/take/skip/sub */
    int rc;          /* expected return */
    size_t left;     /* expected kv_cursor_left after the call */
    const char *out; /* expected bytes read (hex; big-endian for integers), on success */
};

static const struct cur_row cur_rows[] = {
    {"u8 exact fit", OP_U8, "A5", 0, 0, 0, "A5"},
    {"u8 with more", OP_U8, "A5B6", 0, 0, 1, "A5"},
    {"u8 one short (empty)", OP_U8, "", 0, KV_ERR_TRUNCATED, 0, NULL},
    {"u16 exact fit", OP_U16, "0102", 0, 0, 0, "0102"},
    {"u16 with more", OP_U16, "FFFE00", 0, 0, 1, "FFFE"},
    {"u16 one short", OP_U16, "01", 0, KV_ERR_TRUNCATED, 1, NULL},
    {"u16 empty", OP_U16, "", 0, KV_ERR_TRUNCATED, 0, NULL},
    {"u32 exact fit", OP_U32, "DEADBEEF", 0, 0, 0, "DEADBEEF"},
    {"u32 high bit", OP_U32, "80000001AA", 0, 0, 1, "80000001"},
    {"u32 one short", OP_U32, "DEADBE", 0, KV_ERR_TRUNCATED, 3, NULL},
    {"copy exact fit", OP_COPY, "112233", 3, 0, 0, "112233"},
    {"copy part", OP_COPY, "112233", 2, 0, 1, "1122"},
    {"copy one short", OP_COPY, "112233", 4, KV_ERR_TRUNCATED, 3, NULL},
    {"copy zero length", OP_COPY, "112233", 0, 0, 3, ""},
    {"copy zero from empty", OP_COPY, "", 0, 0, 0, ""},
    {"take exact fit", OP_TAKE, "0A0B0C0D", 4, 0, 0, "0A0B0C0D"},
    {"take one short", OP_TAKE, "0A0B0C0D", 5, KV_ERR_TRUNCATED, 4, NULL},
    {"take zero length", OP_TAKE, "0A0B", 0, 0, 2, ""},
    {"take SIZE_MAX", OP_TAKE, "0A0B", SIZE_MAX, KV_ERR_TRUNCATED, 2, NULL},
    {"skip exact fit", OP_SKIP, "0102", 2, 0, 0, NULL},
    {"skip one short", OP_SKIP, "0102", 3, KV_ERR_TRUNCATED, 2, NULL},
    {"skip zero length", OP_SKIP, "0102", 0, 0, 2, NULL},
    {"skip SIZE_MAX", OP_SKIP, "0102", SIZE_MAX, KV_ERR_TRUNCATED, 2, NULL},
    {"sub exact fit", OP_SUB, "AABBCC", 3, 0, 0, "AABBCC"},
    {"sub part", OP_SUB, "AABBCC", 1, 0, 2, "AA"},
    {"sub one short", OP_SUB, "AABBCC", 4, KV_ERR_TRUNCATED, 3, NULL},
    {"sub zero length", OP_SUB, "AABBCC", 0, 0, 3, ""},
    {"peek", OP_PEEK, "7F80", 0, 0, 2, "7F"},
    {"peek empty", OP_PEEK, "", 0, KV_ERR_TRUNCATED, 0, NULL},
};

static void hexstr(const uint8_t *p, size_t n, char *out, size_t cap)
{
    size_t i;
    for (i = 0; i < n && 2 * i + 2 < cap; i++)
        snprintf(out + 2 * i, 3, "%02X", p[i]);
    out[2 * i] = '\0';
}

static int run_op(const struct cur_row *row, kv_cursor *c, uint8_t *got, size_t *got_len)
{
    int rc = KV_ERR_INTERNAL;
    uint16_t v16 = 0;
    uint32_t v32 = 0;
    const uint8_t *taken = NULL;
    kv_cursor sub;

    *got_len = 0;
    switch (row->op) {
    case OP_U8:
        rc = kv_cursor_u8(c, &got[0]);
        *got_len = 1;
        break;
    case OP_U16:
        rc = kv_cursor_u16be(c, &v16);
        got[0] = (uint8_t)(v16 >> 8);
        got[1] = (uint8_t)v16;
        *got_len = 2;
        break;
    case OP_U32:
        rc = kv_cursor_u32be(c, &v32);
        for (int i = 0; i < 4; i++)
            got[i] = (uint8_t)(v32 >> (24 - 8 * i));
        *got_len = 4;
        break;
    case OP_COPY:
        rc = kv_cursor_copy(c, got, row->n);
        *got_len = row->n;
        break;
    case OP_TAKE:
        rc = kv_cursor_take(c, row->n, &taken);
        if (rc == 0 && row->n > 0)
            memcpy(got, taken, row->n);
        *got_len = row->n;
        break;
    case OP_SKIP:
        rc = kv_cursor_skip(c, row->n);
        break;
    case OP_SUB:
        rc = kv_cursor_sub(c, row->n, &sub);
        if (rc == 0) {
            /* The sub-cursor holds exactly n bytes: read them all, then one more fails. */
            assert_int_equal(kv_cursor_left(&sub), row->n);
            assert_int_equal(kv_cursor_copy(&sub, got, row->n), 0);
            assert_int_equal(kv_cursor_u8(&sub, &got[row->n]), KV_ERR_TRUNCATED);
            *got_len = row->n;
        }
        break;
    case OP_PEEK:
        rc = kv_cursor_peek(c, &got[0]);
        *got_len = 1;
        break;
    }
    return rc;
}

static void test_cursor_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cur_rows) / sizeof(cur_rows[0]); i++) {
        const struct cur_row *row = &cur_rows[i];
        uint8_t in[16], got[16] = {0}, want[16];
        char got_hex[40], want_hex[40];
        size_t got_len = 0;
        int in_len = kv_hex_decode(row->in, in, sizeof(in));
        kv_cursor c;
        const uint8_t *before_p;
        int rc;

        assert_true(in_len >= 0);
        kv_cursor_init(&c, in, (size_t)in_len);
        before_p = c.p;
        rc = run_op(row, &c, got, &got_len);
        if (rc != row->rc || kv_cursor_left(&c) != row->left) {
            print_error("row '%s' (%s): rc %d left %zu, want rc %d left %zu\n", row->name,
                        op_names[row->op], rc, kv_cursor_left(&c), row->rc, row->left);
            fail();
        }
        if (rc != 0) {
            /* A failed read leaves the cursor where it was. */
            assert_ptr_equal(c.p, before_p);
            assert_int_equal(kv_cursor_left(&c), (size_t)in_len);
            continue;
        }
        if (row->out != NULL) {
            int want_len = kv_hex_decode(row->out, want, sizeof(want));
            assert_true(want_len >= 0);
            hexstr(got, got_len, got_hex, sizeof(got_hex));
            hexstr(want, (size_t)want_len, want_hex, sizeof(want_hex));
            if ((size_t)want_len != got_len || memcmp(got, want, got_len) != 0) {
                print_error("row '%s': read %s, want %s\n", row->name, got_hex, want_hex);
                fail();
            }
        }
        /* Consumed bytes are exactly those before the cursor. */
        if (row->op != OP_PEEK && (size_t)in_len > row->left)
            assert_ptr_equal(c.p, in + ((size_t)in_len - row->left));
    }
}

static void test_cursor_init_empty(void **state)
{
    kv_cursor c;
    uint8_t b = 0x55;
    const uint8_t *p = &b;
    (void)state;

    kv_cursor_init(&c, NULL, 0);
    assert_int_equal(kv_cursor_left(&c), 0);
    assert_null(c.p);
    assert_int_equal(kv_cursor_u8(&c, &b), KV_ERR_TRUNCATED);
    assert_int_equal(b, 0x55);
    assert_int_equal(kv_cursor_take(&c, 0, &p), 0);
    assert_int_equal(kv_cursor_skip(&c, 0), 0);

    /* A non-NULL pointer with length 0 behaves the same. */
    kv_cursor_init(&c, &b, 0);
    assert_int_equal(kv_cursor_left(&c), 0);
    assert_int_equal(kv_cursor_peek(&c, &b), KV_ERR_TRUNCATED);
}

static void test_cursor_sub_bounds(void **state)
{
    static const uint8_t buf[] = {0x01, 0x02, 0x03, 0x04, 0x05};
    kv_cursor c, sub, subsub;
    uint8_t b;
    uint16_t v;
    (void)state;

    kv_cursor_init(&c, buf, sizeof(buf));
    assert_int_equal(kv_cursor_skip(&c, 1), 0);
    assert_int_equal(kv_cursor_sub(&c, 3, &sub), 0);
    /* The parent moved past the sub-cursor's bytes. */
    assert_int_equal(kv_cursor_left(&c), 1);
    assert_int_equal(kv_cursor_u8(&c, &b), 0);
    assert_int_equal(b, 0x05);
    /* The sub-cursor cannot see the parent's remaining byte. */
    assert_int_equal(kv_cursor_sub(&sub, 4, &subsub), KV_ERR_TRUNCATED);
    assert_int_equal(kv_cursor_sub(&sub, 2, &subsub), 0);
    assert_int_equal(kv_cursor_u16be(&subsub, &v), 0);
    assert_int_equal(v, 0x0203);
    assert_int_equal(kv_cursor_u8(&subsub, &b), KV_ERR_TRUNCATED);
    assert_int_equal(kv_cursor_u16be(&sub, &v), KV_ERR_TRUNCATED);
    assert_int_equal(kv_cursor_u8(&sub, &b), 0);
    assert_int_equal(b, 0x04);
    assert_int_equal(kv_cursor_left(&sub), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cursor_table),
        cmocka_unit_test(test_cursor_init_empty),
        cmocka_unit_test(test_cursor_sub_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

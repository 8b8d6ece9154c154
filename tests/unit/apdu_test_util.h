/*
 * Helpers shared by the apdu/reader/selection unit tests (header-only, static):
 * hex in and out for table rows, and a scripted card for transport injection.
 * Include after <cmocka.h>.
 */
#ifndef KV_TESTS_APDU_TEST_UTIL_H
#define KV_TESTS_APDU_TEST_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/base/hex.h"

/* Decode a table's hex (spaces allowed) or fail the test. */
static inline size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    int n = kv_hex_decode(hex, out, cap);
    if (n < 0) {
        print_error("bad hex in test table: %s\n", hex);
        fail();
    }
    return (size_t)n;
}

/* Hex of n bytes into one of two static buffers (for messages; cut past 1000 bytes). */
static inline const char *hx(const uint8_t *p, size_t n)
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

/* Compare bytes; on mismatch print both sides in hex and fail. */
#define assert_bytes(what, got, glen, want, wlen)                                                  \
    do {                                                                                           \
        if ((glen) != (wlen) || ((glen) > 0 && memcmp((got), (want), (glen)) != 0)) {              \
            print_error("%s:\n  got  %s\n  want %s\n", (what), hx((got), (glen)),                  \
                        hx((want), (wlen)));                                                       \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

/*
 * Path of rel under the test data folder into buf: $KV_TEST_DATA (ctest sets
 * it to tests/data), else tests/data found from this header's own path.
 */
static inline const char *data_path(char *buf, size_t cap, const char *rel)
{
    const char *base = getenv("KV_TEST_DATA");
    const char *slash = strrchr(__FILE__, '/');

    if (base != NULL && base[0] != '\0')
        snprintf(buf, cap, "%s/%s", base, rel);
    else if (slash != NULL) /* .../tests/unit/apdu_test_util.h -> .../tests/data */
        snprintf(buf, cap, "%.*s/../data/%s", (int)(slash - __FILE__), __FILE__, rel);
    else
        snprintf(buf, cap, "../data/%s", rel);
    return buf;
}

/* Write text to a fresh temporary file; returns its path (static buffer), or fails. */
static inline const char *write_temp(const char *text)
{
    static char path[64];
    FILE *f = NULL;
    int fd;
    snprintf(path, sizeof(path), "/tmp/kv_test_XXXXXX");
    if ((fd = mkstemp(path)) < 0 || (f = fdopen(fd, "w")) == NULL) {
        print_error("cannot create a temporary file\n");
        fail();
    }
    fputs(text, f);
    fclose(f);
    return path;
}

#endif

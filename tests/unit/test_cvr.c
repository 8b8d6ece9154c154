/*
 * Tests of apdu/cvr.h: the Card Verification Results inside the Issuer
 * Application Data, for every layout kortvagt reads (Visa VIS format 0/1/3
 * and format 2, Mastercard M/Chip 4 / Advance, EMV Common Core Definitions),
 * from the IAD and from the AC data of each CVN the HSM verifies.
 *
 * Known answers: the M/Chip Select 4 IAD samples published with the M/Chip
 * data dictionary ("0110A00003240000000000000000000000FF": CVR A0 00 03 24
 * 00 00 = first GENERATE AC ARQC, second not requested, offline PIN not
 * performed, international transaction); the other rows are hand-computed
 * from the bit tables in apdu/cvr.h (each row's comment names its bits).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "apdu/cvr.h"
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

struct row {
    const char *name;
    const char *iad;
    kv_cvr_layout layout;
    kv_cvr_pin pin;
    int limit;
};

static void test_cvr_from_iad(void **state)
{
    static const struct row rows[] = {
        /* Visa format 0/1/3: 06 DKI CVN 03 CVR; CVR byte 2 A4 = 2nd AC not requested (10),
           1st ARQC (10), offline PIN performed (0x04), not failed */
        {"visa 18 pin verified", "06011203A40000", KV_CVR_LAYOUT_VISA, KV_CVR_PIN_VERIFIED, 0},
        /* A0: performed bit clear */
        {"visa 18 pin not performed", "06011203A00000", KV_CVR_LAYOUT_VISA,
         KV_CVR_PIN_NOT_PERFORMED, 0},
        /* A6: performed + failed (0x02) */
        {"visa 10 pin failed", "06010A03A60000", KV_CVR_LAYOUT_VISA, KV_CVR_PIN_FAILED, 0},
        /* A4 with byte 3 0x40: PIN try limit exceeded -> never verified */
        {"visa limit exceeded", "06011203A44000", KV_CVR_LAYOUT_VISA, KV_CVR_PIN_FAILED, 1},
        /* byte 3 0x02: application blocked because the PIN try limit was exceeded: not verified
           (the limit flag itself is byte 3 0x40 only) */
        {"visa app blocked", "06011203A40200", KV_CVR_LAYOUT_VISA, KV_CVR_PIN_FAILED, 0},
        /* with issuer discretionary data: length 0F and 15 bytes */
        {"visa with IDD",
         "06011203A40000"
         "0F"
         "010000000000000000000000000000",
         KV_CVR_LAYOUT_VISA, KV_CVR_PIN_VERIFIED, 0},
        /* an IDD length that does not match the rest: not a Visa IAD */
        {"visa bad IDD length",
         "06011203A40000"
         "05"
         "0100",
         KV_CVR_LAYOUT_UNKNOWN, KV_CVR_PIN_UNKNOWN, 0},
        /* cut short: no CVR */
        {"visa short", "06011203A400", KV_CVR_LAYOUT_UNKNOWN, KV_CVR_PIN_UNKNOWN, 0},
        /* length byte of the CVR not 03 */
        {"visa cvr length 05", "06011205A40000", KV_CVR_LAYOUT_UNKNOWN, KV_CVR_PIN_UNKNOWN, 0},
        /* Visa format 2: 1F CVN(22) DKI CVR(5) ...; byte 2 0x04 is CDCVM there: unknown */
        {"visa format 2",
         "1F2201"
         "00A4000000"
         "00"
         "0000000000000000000000000000000000000000000000",
         KV_CVR_LAYOUT_VISA_2, KV_CVR_PIN_UNKNOWN, 0},
        {"visa format 2 limit",
         "1F2201"
         "00A0400000"
         "00"
         "0000000000000000000000000000000000000000000000",
         KV_CVR_LAYOUT_VISA_2, KV_CVR_PIN_UNKNOWN, 1},
        /* the public M/Chip Select 4 samples: CVR A0 00 03 24 00 00, byte 4 0x20 not performed */
        {"mchip4 sample 1", "0110A00003240000000000000000000000FF", KV_CVR_LAYOUT_MCHIP,
         KV_CVR_PIN_NOT_PERFORMED, 0},
        {"mchip4 sample 2", "0110A00003240300000000000000000000FF", KV_CVR_LAYOUT_MCHIP,
         KV_CVR_PIN_NOT_PERFORMED, 0},
        /* A5: performed (0x04) + successful (0x01); byte 4 04 international */
        {"mchip pin ok", "0110A50003040000000000000000000000FF", KV_CVR_LAYOUT_MCHIP,
         KV_CVR_PIN_VERIFIED, 0},
        /* A7: + encrypted (0x02) */
        {"mchip enciphered pin ok", "0114A70003040000000000000000000000FF", KV_CVR_LAYOUT_MCHIP,
         KV_CVR_PIN_VERIFIED, 0},
        /* A4: performed, not successful; byte 4 0x10 failed */
        {"mchip pin failed", "0110A40003140000000000000000000000FF", KV_CVR_LAYOUT_MCHIP,
         KV_CVR_PIN_FAILED, 0},
        /* A5 but byte 4 0x08 PTL exceeded */
        {"mchip ptl exceeded", "0110A50003080000000000000000000000FF", KV_CVR_LAYOUT_MCHIP,
         KV_CVR_PIN_FAILED, 1},
        /* A5 but byte 4 0x01 terminal erroneously considers offline PIN OK */
        {"mchip terminal error", "0110A50003050000000000000000000000FF", KV_CVR_LAYOUT_MCHIP,
         KV_CVR_PIN_FAILED, 0},
        /* A5 with byte 4 0x20 (not performed) contradicting: not performed wins */
        {"mchip contradiction", "0110A50003240000000000000000000000FF", KV_CVR_LAYOUT_MCHIP,
         KV_CVR_PIN_NOT_PERFORMED, 0},
        /* CCD: 0F A5 DKI CVR(5) counters(8) 0F IDD(15); CVR byte 2 0x08 performed */
        {"ccd pin ok",
         "0FA501"
         "A008000000"
         "0000000000000000"
         "0F"
         "000000000000000000000000000000",
         KV_CVR_LAYOUT_CCD, KV_CVR_PIN_VERIFIED, 0},
        /* 0x0C: performed and not successfully verified */
        {"ccd pin failed",
         "0FA601"
         "A00C000000"
         "0000000000000000"
         "0F"
         "000000000000000000000000000000",
         KV_CVR_LAYOUT_CCD, KV_CVR_PIN_FAILED, 0},
        /* 0x0A: performed, PIN try limit exceeded */
        {"ccd limit",
         "0FA501"
         "A00A000000"
         "0000000000000000"
         "0F"
         "000000000000000000000000000000",
         KV_CVR_LAYOUT_CCD, KV_CVR_PIN_FAILED, 1},
        {"ccd not performed",
         "0FA501"
         "A000000000"
         "0000000000000000"
         "0F"
         "000000000000000000000000000000",
         KV_CVR_LAYOUT_CCD, KV_CVR_PIN_NOT_PERFORMED, 0},
        /* byte 17 not 0F: not CCD (nor anything else) */
        {"ccd broken",
         "0FA501"
         "A008000000"
         "0000000000000000"
         "00"
         "000000000000000000000000000000",
         KV_CVR_LAYOUT_UNKNOWN, KV_CVR_PIN_UNKNOWN, 0},
        {"empty", "", KV_CVR_LAYOUT_UNKNOWN, KV_CVR_PIN_UNKNOWN, 0},
        {"garbage", "FFFFFFFFFFFFFFFF", KV_CVR_LAYOUT_UNKNOWN, KV_CVR_PIN_UNKNOWN, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        uint8_t iad[64];
        size_t n = unhex(rows[i].iad, iad, sizeof(iad));
        kv_cvr_info info;
        assert_int_equal(kv_cvr_from_iad(iad, n, &info), 0);
        if (info.layout != rows[i].layout || info.offline_pin != rows[i].pin ||
            info.pin_try_limit_exceeded != rows[i].limit)
            print_error("row '%s': layout %s pin %s limit %d\n", rows[i].name,
                        kv_cvr_layout_name(info.layout), kv_cvr_pin_name(info.offline_pin),
                        info.pin_try_limit_exceeded);
        assert_int_equal(info.layout, rows[i].layout);
        assert_int_equal(info.offline_pin, rows[i].pin);
        assert_int_equal(info.pin_try_limit_exceeded, rows[i].limit);
        assert_true(info.offline_pin != KV_CVR_PIN_VERIFIED || !info.pin_try_limit_exceeded);
    }
}

struct ac_row {
    const char *name;
    int cvn;
    const char *tail; /* after the 33 bytes of standard data, AIP and ATC */
    kv_cvr_layout layout;
    kv_cvr_pin pin;
};

static void test_cvr_from_ac_data(void **state)
{
    static const struct ac_row rows[] = {
        {"cvn 10 verified", 10, "03A40000", KV_CVR_LAYOUT_VISA, KV_CVR_PIN_VERIFIED},
        {"cvn 10 not performed", 10, "03A00000", KV_CVR_LAYOUT_VISA, KV_CVR_PIN_NOT_PERFORMED},
        {"cvn 10 longer", 10, "03A4000000", KV_CVR_LAYOUT_UNKNOWN, KV_CVR_PIN_UNKNOWN},
        {"cvn 10 no length byte", 10, "A4000000", KV_CVR_LAYOUT_UNKNOWN, KV_CVR_PIN_UNKNOWN},
        {"cvn 18 verified", 18, "06011203A40000", KV_CVR_LAYOUT_VISA, KV_CVR_PIN_VERIFIED},
        {"cvn 18 not performed", 18, "06011203A00000", KV_CVR_LAYOUT_VISA,
         KV_CVR_PIN_NOT_PERFORMED},
        /* the IAD names CVN 10, the request CVN 18: not read */
        {"cvn 18 other cvn in iad", 18, "06010A03A40000", KV_CVR_LAYOUT_UNKNOWN,
         KV_CVR_PIN_UNKNOWN},
        {"cvn 18 nothing after ATC", 18, "", KV_CVR_LAYOUT_UNKNOWN, KV_CVR_PIN_UNKNOWN},
        {"cvn 22 format 2", 22,
         "1F2201"
         "00A4000000"
         "00"
         "0000000000000000000000000000000000000000000000",
         KV_CVR_LAYOUT_VISA_2, KV_CVR_PIN_UNKNOWN},
        {"cvn 16 verified", 16, "A50003040000", KV_CVR_LAYOUT_MCHIP, KV_CVR_PIN_VERIFIED},
        {"cvn 20 not performed", 20, "A00003240000", KV_CVR_LAYOUT_MCHIP, KV_CVR_PIN_NOT_PERFORMED},
        {"cvn 16 with extra bytes", 16, "A50003040000AA", KV_CVR_LAYOUT_UNKNOWN,
         KV_CVR_PIN_UNKNOWN},
        {"cvn 17 with counters", 17, "A500030400000000000000000000", KV_CVR_LAYOUT_MCHIP,
         KV_CVR_PIN_VERIFIED},
        {"cvn 21 without counters", 21, "A50003040000", KV_CVR_LAYOUT_UNKNOWN, KV_CVR_PIN_UNKNOWN},
        {"cvn 5 ccd", 5,
         "0FA501"
         "A008000000"
         "0000000000000000"
         "0F"
         "000000000000000000000000000000",
         KV_CVR_LAYOUT_CCD, KV_CVR_PIN_VERIFIED},
        {"cvn 6 with a CCI of 5", 6,
         "0FA501"
         "A008000000"
         "0000000000000000"
         "0F"
         "000000000000000000000000000000",
         KV_CVR_LAYOUT_UNKNOWN, KV_CVR_PIN_UNKNOWN},
        {"unknown cvn", 99, "03A40000", KV_CVR_LAYOUT_UNKNOWN, KV_CVR_PIN_UNKNOWN},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        uint8_t data[128];
        size_t n;
        kv_cvr_info info;
        memset(data, 0x5A, 33);
        n = 33 + unhex(rows[i].tail, data + 33, sizeof(data) - 33);
        assert_int_equal(kv_cvr_from_ac_data(rows[i].cvn, data, n, &info), 0);
        if (info.layout != rows[i].layout || info.offline_pin != rows[i].pin)
            print_error("row '%s': layout %s pin %s\n", rows[i].name,
                        kv_cvr_layout_name(info.layout), kv_cvr_pin_name(info.offline_pin));
        assert_int_equal(info.layout, rows[i].layout);
        assert_int_equal(info.offline_pin, rows[i].pin);
    }
    /* shorter than the standard data: nothing */
    {
        kv_cvr_info info;
        uint8_t d[33];
        memset(d, 0, sizeof(d));
        assert_int_equal(kv_cvr_from_ac_data(10, d, sizeof(d), &info), 0);
        assert_int_equal(info.layout, KV_CVR_LAYOUT_UNKNOWN);
        assert_int_equal(kv_cvr_from_ac_data(10, NULL, 0, &info), 0);
        assert_int_equal(info.offline_pin, KV_CVR_PIN_UNKNOWN);
    }
}

static void test_cvr_names(void **state)
{
    (void)state;
    assert_string_equal(kv_cvr_layout_name(KV_CVR_LAYOUT_VISA), "visa");
    assert_string_equal(kv_cvr_layout_name(KV_CVR_LAYOUT_VISA_2), "visa_format2");
    assert_string_equal(kv_cvr_layout_name(KV_CVR_LAYOUT_MCHIP), "mchip");
    assert_string_equal(kv_cvr_layout_name(KV_CVR_LAYOUT_CCD), "ccd");
    assert_string_equal(kv_cvr_layout_name(KV_CVR_LAYOUT_UNKNOWN), "unknown");
    assert_string_equal(kv_cvr_pin_name(KV_CVR_PIN_VERIFIED), "verified");
    assert_string_equal(kv_cvr_pin_name(KV_CVR_PIN_FAILED), "failed");
    assert_string_equal(kv_cvr_pin_name(KV_CVR_PIN_NOT_PERFORMED), "not_performed");
    assert_string_equal(kv_cvr_pin_name(KV_CVR_PIN_UNKNOWN), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cvr_from_iad),
        cmocka_unit_test(test_cvr_from_ac_data),
        cmocka_unit_test(test_cvr_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

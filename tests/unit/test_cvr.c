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

#include "apdu/ac_data.h"
#include "apdu/cvr.h"
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

/*
 * The other CVR facts and the IAD header, per layout. Bits as the tables in
 * apdu/cvr.h (EMV 4.4 Book 3 Annex C Table CCD 10; openemv/emv-utils
 * src/emv_fields.h for M/Chip and VSDC); each row's comment names its bits.
 */
struct field_row {
    const char *name;
    const char *iad;
    int layout; /* enum kv_iad_layout */
    int cvn, dki, visa_format, ac1, ac2, iaf, cda, dda, limit;
};

static const struct field_row field_rows[] = {
    /* A4: 2nd not requested (10), 1st ARQC (10), offline PIN performed */
    {"visa 18", "06011203A40000", KV_IAD_VISA, 18, 1, 1, KV_AC_ARQC, -1, 0, 0, 0, 0},
    /* 5C: 2nd TC (01), 1st TC (01), issuer auth failed (08), PIN performed (04); byte 4 02 DDA */
    {"visa 10 tc tc", "06020A035C0002", KV_IAD_VISA, 10, 2, 0, KV_AC_TC, KV_AC_TC, 1, 0, 1, 0},
    /* a Visa part of 07 bytes (one more Visa byte) */
    {"visa length 07", "07011203A00000AA", KV_IAD_VISA, 18, 1, 1, KV_AC_ARQC, -1, 0, 0, 0, 0},
    /* format 3 (CVN high nibble 3) with IDD */
    {"visa format 3", "06013203100000020102", KV_IAD_VISA, 50, 1, 3, KV_AC_TC, KV_AC_AAC, 0, 0, 0,
     0},
    /* format 2: CVR byte 2 = 68 (2nd TC, 1st ARQC, issuer auth failed), byte 3 40 PTL, byte 4 02 */
    {"visa format 2",
     "1F2203"
     "0068400200"
     "00"
     "0000000000000000000000000000000000000000000000",
     KV_IAD_VISA_2, 22, 3, 2, KV_AC_ARQC, KV_AC_TC, 1, 0, 1, 1},
    /* M/Chip: byte 1 60 (2nd TC, 1st ARQC), byte 2 C0 (DDA, CDA in 1st), byte 4 24, byte 5 04
       issuer authentication failed */
    {"mchip 16", "011060C0032404000000000000000000000FF0", KV_IAD_MCHIP, 16, 1, -1, KV_AC_ARQC,
     KV_AC_TC, 1, 1, 1, 0},
    /* M/Chip Advance CVN 0x15 with the last online ATC (20 bytes), byte 4 08 PTL exceeded */
    {"mchip advance 21", "0215A00003080000000000000000000322FF0017", KV_IAD_MCHIP, 21, 2, -1,
     KV_AC_ARQC, -1, 0, 0, 0, 1},
    {"mchip 20", "0314A00003240000000000000000000000FF", KV_IAD_MCHIP, 20, 3, -1, KV_AC_ARQC, -1, 0,
     0, 0, 0},
    /* CCD AES: byte 1 A9 (2nd not requested, 1st ARQC, CDA 08, issuer auth failed 01) */
    {"ccd 6",
     "0FA602"
     "A900000000"
     "0000000000000000"
     "0F"
     "000000000000000000000000000000",
     KV_IAD_CCD, 6, 2, -1, KV_AC_ARQC, -1, 1, 1, 0, 0},
    /* byte 1 54: 2nd TC (01), 1st TC (01), offline DDA performed (04) */
    {"ccd 5",
     "0FA501"
     "5400000000"
     "0000000000000000"
     "0F"
     "000000000000000000000000000000",
     KV_IAD_CCD, 5, 1, -1, KV_AC_TC, KV_AC_TC, 0, 0, 1, 0},
    {"unknown", "AABBCCDD", KV_IAD_UNKNOWN, -1, -1, -1, -1, -1, 0, 0, 0, 0},
};

static void test_iad_fields(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(field_rows) / sizeof(field_rows[0]); i++) {
        const struct field_row *w = &field_rows[i];
        uint8_t iad[64];
        size_t n = unhex(w->iad, iad, sizeof(iad));
        kv_iad_info info;
        assert_int_equal(kv_iad_decode(iad, n, &info), 0);
        if (info.layout != w->layout || info.cvn != w->cvn || info.dki != w->dki ||
            info.visa_format != w->visa_format || info.ac1_type != w->ac1 ||
            info.ac2_type != w->ac2 || info.issuer_auth_failed != w->iaf ||
            info.cda_performed != w->cda || info.dda_performed != w->dda ||
            info.pin_try_limit_exceeded != w->limit) {
            print_error("row '%s': layout %d cvn %d dki %d fmt %d ac1 %d ac2 %d iaf %d cda %d "
                        "dda %d limit %d\n",
                        w->name, info.layout, info.cvn, info.dki, info.visa_format, info.ac1_type,
                        info.ac2_type, info.issuer_auth_failed, info.cda_performed,
                        info.dda_performed, info.pin_try_limit_exceeded);
            fail();
        }
    }
    /* a Visa IAD cut before the end of its CVR is an error; other short data is unknown */
    {
        uint8_t cut[] = {0x06, 0x01, 0x12, 0x03, 0xA0};
        kv_iad_info info;
        assert_int_equal(kv_iad_decode(cut, sizeof(cut), &info), KV_ERR_CARD_DATA);
        assert_int_equal(kv_iad_decode(cut, 3, &info), 0);
        assert_int_equal(info.layout, KV_IAD_UNKNOWN);
        assert_int_equal(kv_iad_decode(NULL, 0, &info), 0);
        assert_int_equal(info.cvn, -1);
    }
}

/*
 * kv_ac_data_build per CVN against the IAD it must have, and the two CVR
 * decoders agreeing: the CVR read from the AC data of a CVN is the CVR read
 * from the IAD.
 */
struct build_row {
    const char *name;
    int cvn;
    const char *iad;
    int rc;
    const char *tail; /* after SD || AIP || ATC, when rc is 0 */
};

static const struct build_row build_rows[] = {
    {"10", 10, "06010A03A40000", 0, "03A40000"},
    {"10 no CVR length", 10, "06010A04A40000", KV_ERR_CARD_DATA, NULL},
    {"10 short", 10, "06010A03A4", KV_ERR_CARD_DATA, NULL},
    {"18", 18, "06011203A40000", 0, "06011203A40000"},
    {"22 format 2", 22,
     "1F220100A4000000"
     "000000000000000000000000000000000000000000000000",
     0,
     "1F220100A4000000"
     "000000000000000000000000000000000000000000000000"},
    {"16", 16, "0110A50003040000000000000000000000FF", 0, "A50003040000"},
    {"16 with a CVN 20 IAD", 16, "0114A50003040000000000000000000000FF", KV_ERR_CARD_DATA, NULL},
    {"16 with a Visa IAD", 16, "06011203A40000", KV_ERR_CARD_DATA, NULL},
    {"17", 17, "0111A50003040000AABB0102030405060708", 0, "A500030400000102030405060708"},
    {"20", 20, "0114A50003040000000000000000000000FF", 0, "A50003040000"},
    {"21, 18 bytes", 21, "0115A50003040000AABB0102030405060708", 0, "A500030400000102030405060708"},
    {"21, 28 bytes", 21, "0115A50003040000AABB01020304050607080910111213141516FFFF", 0,
     "A5000304000001020304050607080910111213141516FFFF"},
    {"21, 22 bytes", 21, "0115A50003040000AABB0102030405060708090A0B0C", KV_ERR_CARD_DATA, NULL},
    {"5", 5,
     "0FA501A008000000"
     "0000000000000000"
     "0F"
     "000000000000000000000000000000",
     0,
     "0FA501A008000000"
     "0000000000000000"
     "0F"
     "000000000000000000000000000000"},
    {"6 of 31 bytes", 6,
     "0FA601A008000000"
     "00000000000000"
     "0F"
     "000000000000000000000000000000",
     KV_ERR_CARD_DATA, NULL},
    {"unknown cvn", 99, "06011203A40000", KV_ERR_UNSUPPORTED, NULL},
};

static void test_ac_data_build(void **state)
{
    uint8_t sd[KV_AC_SD_LEN], aip[2] = {0x18, 0x00}, atc[2] = {0x00, 0x1C}, out[128];
    size_t olen;

    (void)state;
    memset(sd, 0x5A, sizeof(sd));
    for (size_t i = 0; i < sizeof(build_rows) / sizeof(build_rows[0]); i++) {
        const struct build_row *w = &build_rows[i];
        uint8_t iad[64], want[64];
        size_t n = unhex(w->iad, iad, sizeof(iad)), wl;
        int rc = kv_ac_data_build(w->cvn, sd, aip, atc, iad, n, out, sizeof(out), &olen);
        if (rc != w->rc) {
            print_error("row '%s': rc %d want %d\n", w->name, rc, w->rc);
            fail();
        }
        if (rc != 0)
            continue;
        wl = unhex(w->tail, want, sizeof(want));
        assert_int_equal(olen, 33 + wl);
        assert_memory_equal(out, sd, KV_AC_SD_LEN);
        assert_memory_equal(out + 29, aip, 2);
        assert_memory_equal(out + 31, atc, 2);
        if (memcmp(out + 33, want, wl) != 0) {
            print_error("row '%s': tail differs\n", w->name);
            fail();
        }
        {
            kv_cvr_info from_iad, from_ac;
            kv_cvr_from_iad(iad, n, &from_iad);
            kv_cvr_from_ac_data(w->cvn, out, olen, &from_ac);
            assert_int_equal(from_ac.layout, from_iad.layout);
            assert_int_equal(from_ac.offline_pin, from_iad.offline_pin);
            assert_int_equal(from_ac.cvr_len, from_iad.cvr_len);
            assert_memory_equal(from_ac.cvr, from_iad.cvr, from_iad.cvr_len);
            assert_int_equal(from_ac.cvn, w->cvn);
        }
    }
    /* the buffer */
    {
        uint8_t iad[8];
        size_t n = unhex("06011203A40000", iad, sizeof(iad));
        assert_int_equal(kv_ac_data_build(18, sd, aip, atc, iad, n, out, 39, &olen), KV_ERR_BUFFER);
        assert_int_equal(kv_ac_data_build(18, sd, aip, atc, NULL, 0, out, sizeof(out), &olen),
                         KV_ERR_CARD_DATA);
    }
    /* the UN of the standard data */
    {
        uint8_t un[4];
        sd[25] = 0x01, sd[26] = 0x02, sd[27] = 0x03, sd[28] = 0x04;
        kv_ac_data_un(sd, un);
        assert_int_equal(un[0], 0x01);
        assert_int_equal(un[3], 0x04);
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
        cmocka_unit_test(test_cvr_from_iad),  cmocka_unit_test(test_cvr_from_ac_data),
        cmocka_unit_test(test_cvr_names),     cmocka_unit_test(test_iad_fields),
        cmocka_unit_test(test_ac_data_build),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

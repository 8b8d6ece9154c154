/*
 * Tests of src/perso/perso_profile.h that need no token: the PANs of a
 * batch (Luhn check digit, counting up), the layout checks of
 * kv_perso_profile_check, the personalities (CVN -> Visa / M/Chip / CCD,
 * which CVN a card gets) and the consistency checks of perso check on
 * hand-written profiles (5F30 / 57, 5A / 57, 5F24 / 57, 5F25, a tag twice,
 * expect, 9F14 / risk, the CVN / the AID). Building a profile needs the HSM and is covered by
 * tests/integration/test_perso.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>
#include <string.h>

#include "src/base/err.h"
#include "src/perso/perso_profile.h"

static void test_luhn(void **state)
{
    (void)state;
    /* the lab PANs of tests/integration/test_perso.sh */
    assert_int_equal(kv_perso_pan_luhn_ok("4761730000000011"), 1);
    assert_int_equal(kv_perso_pan_luhn_ok("5413330000000019"), 1);
    assert_int_equal(kv_perso_pan_luhn_ok("4761730000000012"), 0);
    assert_int_equal(kv_perso_pan_luhn_ok("79927398713"), 1); /* the textbook example */
    assert_int_equal(kv_perso_pan_luhn_ok("7"), 0);
    assert_int_equal(kv_perso_pan_luhn_ok("12345678901234567890"), 0); /* 20 digits */
}

static void test_pan_step(void **state)
{
    char out[20];
    (void)state;
    assert_int_equal(kv_perso_pan_step("4761730000000011", 0, out), 0);
    assert_string_equal(out, "4761730000000011");
    assert_int_equal(kv_perso_pan_step("4761730000000011", 1, out), 0);
    assert_string_equal(out, "4761730000000029");
    assert_int_equal(kv_perso_pan_luhn_ok(out), 1);
    /* a carry through the body */
    assert_int_equal(kv_perso_pan_step("4761730000000993", 1, out), 0);
    assert_int_equal(strncmp(out, "476173000000100", 15), 0);
    assert_int_equal(kv_perso_pan_luhn_ok(out), 1);
    /* the body runs out of digits */
    assert_int_equal(kv_perso_pan_step("999999999999999", 1, out), -1);
}

static void check_layout(const char *text, const char *want_why)
{
    json_error_t e;
    json_t *p = json_loads(text, 0, &e);
    kv_perso_check_result res;
    char why[256] = "";
    assert_non_null(p);
    assert_int_equal(kv_perso_profile_check(p, NULL, 260101, &res, why, sizeof(why)),
                     KV_ERR_FORMAT);
    assert_string_equal(why, want_why);
    json_decref(p);
}

static void test_check_layout(void **state)
{
    (void)state;
    check_layout("{}", "no application with an aid and records");
    check_layout("{\"applications\": [{\"aid\": \"A000\", \"records\": []}]}",
                 "no application with an aid and records");
    check_layout("{\"applications\": [{\"aid\": \"A0000000031010\", \"records\": "
                 "[{\"sfi\": 2, \"record\": 1, \"hex\": \"7G\"}]}]}",
                 "record 1 of SFI 2 is not hex");
    check_layout("{\"applications\": [{\"aid\": \"A0000000031010\", \"records\": []}]}",
                 "application.aip is not 2 hex bytes");
}

/* No 8F / 5A in the records: a verdict (issuer data missing), not a format error. */
static void test_check_missing_data(void **state)
{
    json_error_t e;
    json_t *p = json_loads("{\"applications\": [{\"aid\": \"A0000000031010\", \"aip\": \"3900\", "
                           "\"records\": [{\"sfi\": 2, \"record\": 1, \"hex\": \"7003820100\"}]}]}",
                           0, &e);
    kv_perso_check_result res;
    char why[64];
    (void)state;
    assert_non_null(p);
    assert_int_equal(kv_perso_profile_check(p, NULL, 260101, &res, why, sizeof(why)), 0);
    assert_int_equal(res.ok, 0);
    assert_string_equal(res.issuer, kv_strerror(KV_ERR_ODA_DATA_MISSING));
    assert_string_equal(res.icc, "absent");
    assert_string_equal(res.ssad, "absent");
    json_decref(p);
}

/* The personality of each CVN and the CVN a card gets (template, issuer, card). */
static void test_personality(void **state)
{
    char why[160] = "";
    (void)state;
    assert_int_equal(kv_perso_personality(10), KV_PERSO_PERS_VISA);
    assert_int_equal(kv_perso_personality(18), KV_PERSO_PERS_VISA);
    assert_int_equal(kv_perso_personality(22), KV_PERSO_PERS_VISA);
    assert_int_equal(kv_perso_personality(16), KV_PERSO_PERS_MCHIP);
    assert_int_equal(kv_perso_personality(17), KV_PERSO_PERS_MCHIP);
    assert_int_equal(kv_perso_personality(20), KV_PERSO_PERS_MCHIP);
    assert_int_equal(kv_perso_personality(21), KV_PERSO_PERS_MCHIP);
    assert_int_equal(kv_perso_personality(5), KV_PERSO_PERS_CCD);
    assert_int_equal(kv_perso_personality(6), KV_PERSO_PERS_CCD);
    assert_int_equal(kv_perso_personality(11), KV_PERSO_PERS_NONE);
    assert_int_equal(kv_perso_personality(0), KV_PERSO_PERS_NONE);
    /* the template's CVN stands alone */
    assert_int_equal(kv_perso_resolve_cvn(16, 0, 0, why, sizeof(why)), 16);
    /* the issuer's CVN serves its own personality only */
    assert_int_equal(kv_perso_resolve_cvn(10, 18, 0, why, sizeof(why)), 18);
    assert_int_equal(kv_perso_resolve_cvn(16, 10, 0, why, sizeof(why)), 16);
    assert_int_equal(kv_perso_resolve_cvn(5, 10, 0, why, sizeof(why)), 5);
    /* the card's CVN wins within the personality, and may not leave it */
    assert_int_equal(kv_perso_resolve_cvn(10, 18, 22, why, sizeof(why)), 22);
    assert_int_equal(kv_perso_resolve_cvn(5, 0, 6, why, sizeof(why)), 6);
    assert_int_equal(kv_perso_resolve_cvn(10, 0, 16, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "does not fit the template's personality (Visa VSDC, CVN 10)"));
    assert_int_equal(kv_perso_resolve_cvn(10, 0, 11, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "cvn 11 is not one of"));
    assert_int_equal(kv_perso_resolve_cvn(99, 0, 0, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "the template's cvn 99"));
}

/* A consistent hand-written profile ("tags" records, no ODA): its records, then one edit. */
#define APP_HEAD "{\"applications\": [{\"aid\": \"%s\", \"aip\": \"1800\", %s\"records\": ["
#define REC1 "{\"sfi\": 1, \"record\": 1, \"tags\": [[\"57\", \"%s\"], [\"5F20\", \"2F\"]]},"
#define REC2                                                                                       \
    "{\"sfi\": 2, \"record\": 1, \"tags\": [[\"5A\", \"%s\"], [\"5F24\", \"%s\"], "                \
    "[\"5F25\", \"%s\"], [\"5F34\", \"01\"], [\"5F30\", \"%s\"]%s]}]}]%s}"

typedef struct {
    const char *aid, *app_extra, *t57, *t5a, *t5f24, *t5f25, *t5f30, *rec_extra, *top_extra;
} prof_parts;

static const prof_parts good = {
    "A0000000031010",
    "",
    "4761730000000011D30122010000000000000F",
    "4761730000000011",
    "301231",
    "230101",
    "0201",
    "",
    ", \"expect\": {\"pan\": \"4761730000000011\", \"expiry\": \"3012\", \"psn\": \"01\", "
    "\"service_code\": \"201\"}",
};

/* Check the profile of parts p; returns the result (findings in res). */
static void check_parts(const prof_parts *p, kv_perso_check_result *res)
{
    char text[2048], why[128] = "";
    json_error_t e;
    json_t *j;
    snprintf(text, sizeof(text), APP_HEAD REC1 REC2, p->aid, p->app_extra, p->t57, p->t5a, p->t5f24,
             p->t5f25, p->t5f30, p->rec_extra, p->top_extra);
    j = json_loads(text, 0, &e);
    if (j == NULL)
        fail_msg("bad test JSON: %s: %s", e.text, text);
    assert_int_equal(kv_perso_profile_check(j, NULL, 260101, res, why, sizeof(why)), 0);
    json_decref(j);
}

/* 1 when one of res's findings contains text. */
static int has_finding(const kv_perso_check_result *res, const char *text)
{
    for (size_t i = 0; i < res->nfindings; i++)
        if (strstr(res->findings[i], text) != NULL)
            return 1;
    return 0;
}

static void test_consistency(void **state)
{
    kv_perso_check_result res;
    prof_parts p;
    (void)state;

    check_parts(&good, &res);
    assert_int_equal(res.ok, 1);
    assert_string_equal(res.consistency, "ok");
    assert_int_equal(res.nfindings, 0);
    assert_string_equal(res.issuer, "absent"); /* AIP 1800: no ODA, no certificates */

    /* the case: 57 says 221, 5F30 kept the template's 0201 */
    p = good;
    p.t57 = "4761730000000011D30122210000000000000F";
    p.top_extra = "";
    check_parts(&p, &res);
    assert_int_equal(res.ok, 0);
    assert_string_equal(res.consistency, "mismatch");
    assert_true(
        has_finding(&res, "5F30 service code 201 differs from track 2 (57) service code 221"));

    p = good;
    p.t5a = "4761730000000029";
    p.top_extra = "";
    check_parts(&p, &res);
    assert_true(has_finding(&res, "5A (PAN) differs from the PAN in track 2 (57)"));
    assert_int_equal(res.nfindings, 1);

    p = good;
    p.t5f24 = "281231";
    p.top_extra = "";
    check_parts(&p, &res);
    assert_true(has_finding(&res, "5F24 expiry 2812 (YYMM) differs from track 2 (57) expiry 3012"));

    p = good;
    p.t5f25 = "310101";
    check_parts(&p, &res);
    assert_true(has_finding(&res, "5F25 effective date 310101 is after 5F24 expiry 301231"));

    /* a tag in two records */
    p = good;
    p.rec_extra = ", [\"57\", \"4761730000000011D30122010000000000000F\"]";
    check_parts(&p, &res);
    assert_true(has_finding(&res, "tag 57 appears twice: SFI 1 record 1 and SFI 2 record 1"));

    /* expect against the records */
    p = good;
    p.top_extra = ", \"expect\": {\"service_code\": \"221\", \"psn\": \"02\"}";
    check_parts(&p, &res);
    assert_true(
        has_finding(&res, "expect.service_code 221 differs from track 2 (57) service code 201"));
    assert_true(has_finding(&res, "expect.psn 02 differs from 5F34 01"));

    /* 9F14 / 9F23 against risk */
    p = good;
    p.rec_extra = ", [\"9F14\", \"03\"], [\"9F23\", \"05\"]";
    p.top_extra = ", \"risk\": {\"lcol\": 2, \"ucol\": 5}";
    check_parts(&p, &res);
    assert_true(has_finding(&res, "9F14 (lcol) differs from risk.lcol 2"));
    assert_int_equal(res.nfindings, 1);

    /* the personality against the AID: a Mastercard AID with a Visa CVN (the old sample) */
    p = good;
    p.aid = "A0000000041010";
    p.top_extra = ", \"keys\": {\"cvn\": 10}";
    check_parts(&p, &res);
    assert_true(has_finding(&res, "keys.cvn 10 (Visa VSDC) on a Mastercard AID A0000000041010"));
    p.top_extra = ", \"keys\": {\"cvn\": 16}";
    check_parts(&p, &res);
    assert_int_equal(res.ok, 1);
    p.top_extra = ", \"keys\": {\"cvn\": 16, \"iad_format\": 0}";
    check_parts(&p, &res);
    assert_true(has_finding(&res, "keys.iad_format with CVN 16"));
    /* per-application keys count */
    p.top_extra = "";
    p.app_extra = "\"keys\": {\"cvn\": 22}, ";
    check_parts(&p, &res);
    assert_true(has_finding(&res, "keys.cvn 22 (Visa VSDC) on a Mastercard AID"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_luhn),         cmocka_unit_test(test_pan_step),
        cmocka_unit_test(test_check_layout), cmocka_unit_test(test_check_missing_data),
        cmocka_unit_test(test_personality),  cmocka_unit_test(test_consistency),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Tests of src/perso/perso_profile.h that need no token: the PANs of a
 * batch (Luhn check digit, counting up) and the layout checks of
 * kv_perso_profile_check. Building a profile needs the HSM and is covered by
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_luhn),
        cmocka_unit_test(test_pan_step),
        cmocka_unit_test(test_check_layout),
        cmocka_unit_test(test_check_missing_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * The verification result of `card transact` as JSON (src/transact/
 * transact_json.c): the outcome names, the terminal's keys (issue 12) next
 * to the existing ones, the decoded CVR of each layout, the script results.
 * The CVR bytes below are hand-made to set the bits named in the public
 * layouts apdu/cvr.h lists.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "apdu/emv_txn.h"
#include "src/transact/transact.h"

static void base_result(kv_transact_result *r)
{
    memset(r, 0, sizeof(*r));
    r->cvn = -1;
    r->card_decision = -1;
    r->first_ac_requested = -1;
    r->first_ac = -1;
    r->second_ac = -1;
    r->reason = "x";
    memcpy(r->currency, "DKK", 4);
    kv_cvr_from_iad(NULL, 0, &r->cvr);
}

static const char *str(json_t *j, const char *k)
{
    return json_string_value(json_object_get(j, k));
}

static void test_outcome_names(void **state)
{
    (void)state;
    assert_string_equal(kv_transact_outcome_name(KV_TXN_OUT_TERMINATED), "terminated");
    assert_string_equal(kv_transact_outcome_name(KV_TXN_OUT_APPROVED_OFFLINE), "approved_offline");
    assert_string_equal(kv_transact_outcome_name(KV_TXN_OUT_DECLINED_OFFLINE), "declined_offline");
    assert_string_equal(kv_transact_outcome_name(KV_TXN_OUT_APPROVED_ONLINE), "approved_online");
    assert_string_equal(kv_transact_outcome_name(KV_TXN_OUT_DECLINED_ONLINE), "declined_online");
    assert_string_equal(kv_transact_outcome_name(KV_TXN_OUT_APPROVED_UNABLE_ONLINE),
                        "approved_unable_online");
    assert_string_equal(kv_transact_outcome_name(KV_TXN_OUT_DECLINED_UNABLE_ONLINE),
                        "declined_unable_online");
    assert_string_equal(kv_transact_outcome_name(99), "terminated");
}

/* Nothing happened yet: nulls, "terminated", "not_performed", no scripts. */
static void test_empty(void **state)
{
    kv_transact_result r;
    json_t *j;
    (void)state;

    base_result(&r);
    j = kv_transact_result_json(&r);
    assert_non_null(j);
    assert_string_equal(str(j, "outcome"), "terminated");
    assert_true(json_is_null(json_object_get(j, "first_ac")));
    assert_true(json_is_null(json_object_get(j, "second_ac")));
    assert_true(json_is_null(json_object_get(j, "arc")));
    assert_true(json_is_null(json_object_get(j, "cvn")));
    assert_true(json_is_null(json_object_get(j, "aid")));
    assert_string_equal(str(j, "issuer_authentication"), "not_performed");
    assert_string_equal(str(j, "cda_second"), "not_requested");
    assert_int_equal(json_array_size(json_object_get(j, "scripts")), 0);
    assert_null(json_object_get(j, "script_results"));
    assert_string_equal(str(json_object_get(j, "cvr"), "layout"), "unknown");
    /* the keys that were there before stay */
    assert_non_null(json_object_get(j, "decision"));
    assert_non_null(json_object_get(json_object_get(j, "cvr"), "offline_pin_performed"));
    json_decref(j);
}

/* An online approval of an M/Chip card with a 72 script. */
static void test_online_mchip(void **state)
{
    /* 9F10 of M/Chip: DKI, CVN 10 (16), CVR (6): ARQC in 1st AC, offline PIN performed and
     * successful; byte 4 "domestic"; then counters */
    static const uint8_t iad[] = {0x01, 0x10, 0xA5, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00,
                                  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    kv_transact_result r;
    json_t *j, *c, *s;
    (void)state;

    base_result(&r);
    kv_cvr_from_iad(iad, sizeof(iad), &r.cvr);
    assert_int_equal(r.cvr.layout, KV_CVR_LAYOUT_MCHIP);
    r.cvn = 16;
    r.first_ac_requested = KV_AC_ARQC;
    r.first_ac = KV_AC_ARQC;
    r.second_ac = KV_AC_TC;
    r.outcome = KV_TXN_OUT_APPROVED_ONLINE;
    r.issuer_authentication = 1;
    r.cda_second = 1;
    r.arc[0] = '0';
    r.arc[1] = '0';
    r.cid_flags = 0x08;
    memcpy(r.aid, "A0000000041010", 15);
    r.nscripts = 1;
    r.scripts[0].tag = 0x72;
    r.scripts[0].seq = 1;
    r.scripts[0].ins = 0x1E;
    r.scripts[0].sw = 0x9000;
    r.scripts[0].result = 2;
    j = kv_transact_result_json(&r);
    assert_non_null(j);
    assert_string_equal(str(j, "outcome"), "approved_online");
    assert_string_equal(str(j, "first_ac_requested"), "arqc");
    assert_string_equal(str(j, "first_ac"), "arqc");
    assert_string_equal(str(j, "second_ac"), "tc");
    assert_string_equal(str(j, "arc"), "00");
    assert_string_equal(str(j, "aid"), "A0000000041010");
    assert_string_equal(str(j, "issuer_authentication"), "ok");
    assert_string_equal(str(j, "cda_second"), "ok");
    assert_int_equal(json_integer_value(json_object_get(j, "cvn")), 16);
    assert_true(json_is_true(json_object_get(json_object_get(j, "cid"), "advice_required")));
    c = json_object_get(j, "cvr");
    assert_string_equal(str(c, "layout"), "mchip");
    assert_string_equal(str(c, "hex"), "A50000020000");
    assert_string_equal(str(c, "offline_pin"), "verified");
    assert_string_equal(str(c, "first_ac"), "arqc");
    assert_string_equal(str(c, "second_ac"), "not_requested");
    assert_int_equal(json_array_size(json_object_get(c, "bits")), 3);
    assert_string_equal(json_string_value(json_array_get(json_object_get(c, "bits"), 0)),
                        "offline_pin_performed");
    s = json_array_get(json_object_get(j, "scripts"), 0);
    assert_string_equal(str(s, "template"), "72");
    assert_string_equal(str(s, "ins"), "1E");
    assert_string_equal(str(s, "sw"), "9000");
    assert_string_equal(str(s, "result"), "successful");
    assert_string_equal(str(s, "id"), "00000000");
    /* 9F5B: result 2 in the high nibble, sequence 1, script id */
    assert_string_equal(str(j, "script_results"), "2100000000");
    json_decref(j);
}

/* A Visa format 0/1/3 CVR: offline PIN failed, PIN try limit exceeded. */
static void test_visa_cvr_bits(void **state)
{
    static const uint8_t iad[] = {0x06, 0x01, 0x0A, 0x03, 0x26, 0x40, 0x00};
    kv_transact_result r;
    json_t *j, *bits;
    (void)state;

    base_result(&r);
    kv_cvr_from_iad(iad, sizeof(iad), &r.cvr);
    j = kv_transact_result_json(&r);
    bits = json_object_get(json_object_get(j, "cvr"), "bits");
    assert_string_equal(str(json_object_get(j, "cvr"), "layout"), "visa");
    assert_string_equal(str(json_object_get(j, "cvr"), "offline_pin"), "failed");
    assert_int_equal(json_array_size(bits), 3);
    assert_string_equal(json_string_value(json_array_get(bits, 0)), "offline_pin_performed");
    assert_string_equal(json_string_value(json_array_get(bits, 1)), "offline_pin_failed");
    assert_string_equal(json_string_value(json_array_get(bits, 2)), "pin_try_limit_exceeded");
    assert_string_equal(str(json_object_get(j, "cvr"), "first_ac"), "arqc");
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outcome_names),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_online_mchip),
        cmocka_unit_test(test_visa_cvr_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

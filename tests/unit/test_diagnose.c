/*
 * The diagnosis report (src/blocklist/diagnose.h): the first failure is the
 * cause, every cause has its own text and the advice of the card-problems guide [0] in Danish
 * and English, decline reasons map to their causes, and the JSON has the
 * shape of src/RULES.md §4. The walk over real readers is
 * tests/integration/test_diagnose.sh.
 */
#include "src/blocklist/diagnose.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void test_decline_causes(void **state)
{
    static const struct {
        const char *reason;
        kv_diag_cause cause;
    } rows[] = {
        {"ecommerce_disabled", KV_CAUSE_ECOMMERCE_DISABLED},
        {"card_blocked", KV_CAUSE_CARD_BLOCKED},
        {"card_expired", KV_CAUSE_CARD_EXPIRED},
        {"sca_failed_attempts", KV_CAUSE_SCA_LOCKED},
        {"limit_card", KV_CAUSE_LIMIT_REACHED},
        {"limit_atm_daily", KV_CAUSE_LIMIT_REACHED},
        {"limit_gambling_daily", KV_CAUSE_LIMIT_REACHED},
        {"something_new", KV_CAUSE_DECLINED},
        {"", KV_CAUSE_DECLINED},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        kv_diag_cause got = kv_diag_cause_of_decline(rows[i].reason);
        if (got != rows[i].cause)
            fail_msg("decline '%s': cause %s, want %s", rows[i].reason, kv_diag_cause_name(got),
                     kv_diag_cause_name(rows[i].cause));
    }
    assert_int_equal(kv_diag_cause_of_decline(NULL), KV_CAUSE_DECLINED);
}

/* The advice of the card-problems guide [0] for the causes src/RULES.md §4 names. */
static void test_advice_from_guide(void **state)
{
    static const struct {
        kv_diag_cause cause;
        const char *da[3]; /* phrases of the card-problems guide [0] the Danish advice must carry */
        const char *en;
    } rows[] = {
        {KV_CAUSE_CHIP_UNREADABLE,
         {"betale kontaktløst", "Rens kortet forsigtigt med en tør klud", "nyt kort"},
         "contactless"},
        {KV_CAUSE_NO_APPLICATION, {"kontaktløst", "Rens kortet", "nyt kort"}, "new card"},
        {KV_CAUSE_PIN_BLOCKED, {"spærret", "Kontakt banken", NULL}, "Contact your bank"},
        {KV_CAUSE_CARD_BLOCKED, {"spærret", "netbank", NULL}, "blocked"},
        {KV_CAUSE_ECOMMERCE_DISABLED,
         {"onlinehandel i din netbank", NULL, NULL},
         "online shopping"},
        {KV_CAUSE_CARD_EXPIRED, {"nyt kort i god tid", NULL, NULL}, "new card"},
        {KV_CAUSE_SCA_LOCKED, {"MitID-appen", NULL, NULL}, "MitID"},
        {KV_CAUSE_LIMIT_REACHED, {"saldoen er for lav", NULL, NULL}, "balance"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const char *da = kv_diag_advice(rows[i].cause, KV_LANG_DA);
        const char *en = kv_diag_advice(rows[i].cause, KV_LANG_EN);
        for (int k = 0; k < 3; k++)
            if (rows[i].da[k] != NULL && strstr(da, rows[i].da[k]) == NULL)
                fail_msg("%s: Danish advice lacks '%s': %s", kv_diag_cause_name(rows[i].cause),
                         rows[i].da[k], da);
        if (strstr(en, rows[i].en) == NULL)
            fail_msg("%s: English advice lacks '%s': %s", kv_diag_cause_name(rows[i].cause),
                     rows[i].en, en);
    }
}

/* Every cause has its own name and text, and advice, in both languages. */
static void test_causes_distinct(void **state)
{
    (void)state;
    for (int a = 1; a < KV_CAUSE__COUNT; a++) {
        for (int lang = 0; lang < 2; lang++) {
            assert_true(strlen(kv_diag_cause_text((kv_diag_cause)a, (kv_lang)lang)) > 10);
            assert_true(strlen(kv_diag_advice((kv_diag_cause)a, (kv_lang)lang)) > 10);
        }
        assert_string_not_equal(kv_diag_cause_text((kv_diag_cause)a, KV_LANG_DA),
                                kv_diag_cause_text((kv_diag_cause)a, KV_LANG_EN));
        for (int b = a + 1; b < KV_CAUSE__COUNT; b++) {
            assert_string_not_equal(kv_diag_cause_name((kv_diag_cause)a),
                                    kv_diag_cause_name((kv_diag_cause)b));
            assert_string_not_equal(kv_diag_cause_text((kv_diag_cause)a, KV_LANG_DA),
                                    kv_diag_cause_text((kv_diag_cause)b, KV_LANG_DA));
        }
    }
    assert_string_equal(kv_diag_cause_name(KV_CAUSE_NONE), "none");
    assert_string_equal(kv_diag_advice(KV_CAUSE_NONE, KV_LANG_DA), "");
}

static void test_first_failure_and_json(void **state)
{
    kv_diag_report r;
    json_t *j, *steps, *s;
    char *text;
    (void)state;
    kv_diag_init(&r);
    assert_int_equal(kv_diag_add(&r, KV_DIAG_PCSC, 1, KV_CAUSE_NONE, "running"), 1);
    assert_int_equal(kv_diag_add(&r, KV_DIAG_READER, 1, KV_CAUSE_NONE, "Virtual PCD 00 00"), 1);
    assert_int_equal(kv_diag_add(&r, KV_DIAG_CARD, 0, KV_CAUSE_NO_CARD, "no card in %s", "X"), 0);
    /* a later failure does not replace the first cause */
    kv_diag_add(&r, KV_DIAG_ATR, 0, KV_CAUSE_CHIP_UNREADABLE, "x");
    assert_int_equal(r.cause, KV_CAUSE_NO_CARD);

    j = kv_diag_json(&r, KV_LANG_EN);
    assert_non_null(j);
    steps = json_object_get(j, "steps");
    assert_int_equal(json_array_size(steps), 4);
    s = json_array_get(steps, 2);
    assert_string_equal(json_string_value(json_object_get(s, "step")), "card_present");
    assert_true(json_is_false(json_object_get(s, "ok")));
    assert_string_equal(json_string_value(json_object_get(s, "detail")), "no card in X");
    assert_true(json_is_true(json_object_get(json_array_get(steps, 0), "ok")));
    assert_string_equal(json_string_value(json_object_get(j, "cause")), "no_card");
    assert_string_equal(json_string_value(json_object_get(j, "advice")),
                        kv_diag_advice(KV_CAUSE_NO_CARD, KV_LANG_EN));
    json_decref(j);

    /* all well: cause and advice null */
    kv_diag_init(&r);
    kv_diag_add(&r, KV_DIAG_PCSC, 1, KV_CAUSE_NONE, "running");
    j = kv_diag_json(&r, KV_LANG_DA);
    assert_true(json_is_null(json_object_get(j, "cause")));
    assert_true(json_is_null(json_object_get(j, "advice")));
    text = json_dumps(j, JSON_COMPACT);
    assert_non_null(text);
    free(text);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decline_causes),
        cmocka_unit_test(test_advice_from_guide),
        cmocka_unit_test(test_causes_distinct),
        cmocka_unit_test(test_first_failure_and_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

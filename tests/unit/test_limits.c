/*
 * Exemptions, counters and velocity limits (src/RULES.md §1): the pure decision
 * table of kv_limits_decide, the Copenhagen calendar of caltime.h (reference
 * instants computed with tzdata's Europe/Copenhagen: `TZ=Europe/Copenhagen
 * date -d ...`), and the [limits] configuration.
 */
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/config/config.h"
#include "src/base/caltime.h"
#include "src/limits/limits.h"
#include "src/authorize/authorize.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- calendar ---- */

static const struct {
    const char *text;
    int64_t t; /* -1: must not parse */
} parse_rows[] = {
    {"2026-03-01T10:00:00Z", 1772359200},
    {"2026-03-01t10:00:00z", 1772359200},
    {"2026-03-01T11:00:00+01:00", 1772359200},
    {"2026-03-01T08:30:00-01:30", 1772359200},
    {"2026-03-01T10:00:00.123456Z", 1772359200},
    {"1970-01-01T00:00:00Z", 0},
    {"2024-02-29T00:00:00Z", 1709164800},
    {"2026-02-29T00:00:00Z", -1},
    {"2026-02-30T00:00:00Z", -1},
    {"2026-13-01T00:00:00Z", -1},
    {"2026-03-01 10:00:00Z", -1},
    {"2026-03-01T10:00:00", -1},
    {"2026-03-01T10:00Z", -1},
    {"2026-03-01T24:00:00Z", -1},
    {"2026-03-01T10:00:00.Z", -1},
    {"2026-03-01T10:00:00Zx", -1},
    {"", -1},
    {"1969-12-31T23:59:59Z", -1},
};

static void test_time_parse(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(parse_rows) / sizeof(parse_rows[0]); i++) {
        int64_t t = -1;
        int r = kv_time_parse(parse_rows[i].text, &t);
        int64_t got = r == 0 ? t : -1;
        if (got != parse_rows[i].t) {
            fprintf(stderr, "row %zu '%s': want %lld got %lld (r=%d)\n", i, parse_rows[i].text,
                    (long long)parse_rows[i].t, (long long)got, r);
            fail();
        }
        if (r == 0) {
            char out[KV_TIME_TEXT], again_text[KV_TIME_TEXT];
            int64_t again;
            kv_time_format(t, out);
            assert_int_equal(kv_time_parse(out, &again), 0);
            assert_int_equal(again, t);
            kv_time_format(again, again_text);
            assert_string_equal(out, again_text);
        }
    }
}

static const struct {
    int64_t t;
    int offset;
    const char *day;
} cph_rows[] = {
    {1772359200, 3600, "2026-03-01"}, /* 2026-03-01T10:00:00Z = 11:00 CET */
    {1772405999, 3600, "2026-03-01"}, /* 22:59:59Z = 23:59:59 CET */
    {1772406000, 3600, "2026-03-02"}, /* 23:00:00Z = midnight CET */
    {1774745999, 3600, "2026-03-29"}, /* 2026-03-29T00:59:59Z: last second of CET */
    {1774746000, 7200, "2026-03-29"}, /* 01:00:00Z: 03:00 CEST */
    {1782943199, 7200, "2026-07-01"}, /* 2026-07-01T21:59:59Z = 23:59:59 CEST */
    {1782943200, 7200, "2026-07-02"}, /* 22:00:00Z = midnight CEST */
    {1792889999, 7200, "2026-10-25"}, /* 2026-10-25T00:59:59Z: 02:59:59 CEST */
    {1792890000, 3600, "2026-10-25"}, /* 01:00:00Z: 02:00 CET again */
    {1711846800, 7200, "2024-03-31"}, /* 2024-03-31T01:00:00Z */
    {1729990799, 7200, "2024-10-27"}, /* 2024-10-27T00:59:59Z */
    {1861916400, 3600, "2029-01-01"}, /* 2028-12-31T23:00:00Z */
};

static void test_copenhagen_day(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cph_rows) / sizeof(cph_rows[0]); i++) {
        char day[KV_DAY_TEXT];
        kv_time_cph_day(cph_rows[i].t, day);
        if (kv_time_cph_offset(cph_rows[i].t) != cph_rows[i].offset ||
            strcmp(day, cph_rows[i].day) != 0) {
            fprintf(stderr, "row %zu t=%lld: want %d %s got %d %s\n", i, (long long)cph_rows[i].t,
                    cph_rows[i].offset, cph_rows[i].day, kv_time_cph_offset(cph_rows[i].t), day);
            fail();
        }
    }
}

static void test_card_expiry(void **state)
{
    (void)state;
    assert_int_equal(kv_card_expired("2812", 1861916399), 0); /* 2028-12-31 23:59:59 local */
    assert_int_equal(kv_card_expired("2812", 1861916400), 1); /* 2029-01-01 00:00 local */
    assert_int_equal(kv_card_expired("2602", 1772359200), 1); /* March 2026 */
    assert_int_equal(kv_card_expired("2603", 1772359200), 0);
    assert_int_equal(kv_card_expired("2613", 0), KV_ERR_FORMAT);
    assert_int_equal(kv_card_expired("2600", 0), KV_ERR_FORMAT);
    assert_int_equal(kv_card_expired("26", 0), KV_ERR_FORMAT);
    assert_int_equal(kv_card_expired("26a1", 0), KV_ERR_FORMAT);
}

/* ---- decision table ---- */

enum { CFG_DEFAULT, CFG_AMOUNT, CFG_EXCLUDE_CURRENT };
#define KP (KV_CAT_KNOWLEDGE | KV_CAT_POSSESSION)
#define NO_DYN (-1)

struct dec_row {
    const char *name;
    int cfg;
    kv_channel ch;
    int64_t amount;
    int gambling;
    unsigned cats;
    int satisfied;
    int dyn;
    int failed, hsm_failed;
    kv_factor_type hsm_type;
    int trusted, recurring, blocked, expired;
    /* card before */
    int64_t cl_count, cl_amount, rm_count;
    int failures, ecom_off;
    int64_t single, daily; /* 0: none */
    int64_t day_total, day_atm, day_gambling;
    /* expected */
    kv_decision want;
    const char *reason;
    const char *exemption;
    int64_t want_cl_count, want_cl_amount, want_rm_count;
    int want_failures;
    kv_family counted;
};

#define APPROVE KV_DECISION_APPROVE
#define SCA KV_DECISION_SCA_REQUIRED
#define DECLINE KV_DECISION_DECLINE
#define CL KV_CH_CONTACTLESS
#define EC KV_CH_ECOMMERCE
#define CT KV_CH_CONTACT
#define FAM_CL KV_FAMILY_CONTACTLESS
#define FAM_RM KV_FAMILY_REMOTE
#define FAM_NO KV_FAMILY_NONE

static const struct dec_row dec_rows[] = {
    /* RTS Art. 11: contactless at and past its single-payment limit */
    {"cl at single max",
     0,
     CL,
     35000,
     0,
     0,
     0,
     NO_DYN,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     APPROVE,
     "contactless_low_value",
     "contactless_low_value",
     1,
     35000,
     0,
     0,
     FAM_CL},
    {"cl past single max",
     0,
     CL,
     35001,
     0,
     0,
     0,
     NO_DYN,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     SCA,
     "contactless_single_max",
     NULL,
     0,
     0,
     0,
     0,
     FAM_NO},
    /* count counter, include_current: the 5th passes, the 6th needs SCA */
    {"cl 5th payment",
     0,
     CL,
     100,
     0,
     0,
     0,
     NO_DYN,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     4,
     400,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     APPROVE,
     "contactless_low_value",
     "contactless_low_value",
     5,
     500,
     0,
     0,
     FAM_CL},
    {"cl 6th payment",
     0,
     CL,
     100,
     0,
     0,
     0,
     NO_DYN,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     5,
     500,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     SCA,
     "contactless_counter",
     NULL,
     5,
     500,
     0,
     0,
     FAM_NO},
    /* amount counter: the payment that takes the sum past the max needs SCA */
    {"cl amount at max",
     CFG_AMOUNT,
     CL,
     100,
     0,
     0,
     0,
     NO_DYN,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     9,
     112400,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     APPROVE,
     "contactless_low_value",
     "contactless_low_value",
     10,
     112500,
     0,
     0,
     FAM_CL},
    {"cl amount past max",
     CFG_AMOUNT,
     CL,
     101,
     0,
     0,
     0,
     NO_DYN,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     9,
     112400,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     SCA,
     "contactless_counter",
     NULL,
     9,
     112400,
     0,
     0,
     FAM_NO},
    /* include_current = false: the counter before this payment is checked */
    {"cl exclude current 6th",
     CFG_EXCLUDE_CURRENT,
     CL,
     100,
     0,
     0,
     0,
     NO_DYN,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     5,
     500,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     APPROVE,
     "contactless_low_value",
     "contactless_low_value",
     6,
     600,
     0,
     0,
     FAM_CL},
    {"cl exclude current 7th",
     CFG_EXCLUDE_CURRENT,
     CL,
     100,
     0,
     0,
     0,
     NO_DYN,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     6,
     600,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     SCA,
     "contactless_counter",
     NULL,
     6,
     600,
     0,
     0,
     FAM_NO},
    /* RTS Art. 12 */
    {"unattended transport",
     0,
     KV_CH_UNATTENDED_TRANSPORT,
     100000,
     0,
     0,
     0,
     NO_DYN,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     3,
     300,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     APPROVE,
     "unattended_transport_parking",
     "unattended_transport_parking",
     3,
     300,
     0,
     0,
     FAM_NO},
    {"unattended parking",
     0,
     KV_CH_UNATTENDED_PARKING,
     100,
     0,
     0,
     0,
     NO_DYN,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     APPROVE,
     "unattended_transport_parking",
     "unattended_transport_parking",
     0,
     0,
     0,
     0,
     FAM_NO},
    /* RTS Art. 16 */
    {"remote at single max",
     0,
     EC,
     22500,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     APPROVE,
     "low_value_remote",
     "low_value_remote",
     0,
     0,
     1,
     0,
     FAM_RM},
    {"remote past single max",
     0,
     EC,
     22501,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     SCA,
     "remote_single_max",
     NULL,
     0,
     0,
     0,
     0,
     FAM_NO},
    {"remote 5th",
     0,
     EC,
     100,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     4,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     APPROVE,
     "low_value_remote",
     "low_value_remote",
     0,
     0,
     5,
     0,
     FAM_RM},
    {"remote 6th",
     0,
     EC,
     100,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     5,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     SCA,
     "remote_counter",
     NULL,
     0,
     0,
     5,
     0,
     FAM_NO},
    /* RTS Art. 13 and 14; they count in the family of their channel */
    {"trusted remote",
     0,
     EC,
     50000,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     1,
     0,
     0,
     0,
     0,
     0,
     5,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     APPROVE,
     "trusted_beneficiary",
     "trusted_beneficiary",
     0,
     0,
     6,
     0,
     FAM_RM},
    {"trusted contact",
     0,
     CT,
     50000,
     0,
     0,
     0,
     NO_DYN,
     0,
     0,
     0,
     1,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     APPROVE,
     "trusted_beneficiary",
     "trusted_beneficiary",
     0,
     0,
     0,
     0,
     FAM_NO},
    {"trusted cl past counter",
     0,
     CL,
     100,
     0,
     0,
     0,
     NO_DYN,
     0,
     0,
     0,
     1,
     0,
     0,
     0,
     5,
     500,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     APPROVE,
     "trusted_beneficiary",
     "trusted_beneficiary",
     6,
     600,
     0,
     0,
     FAM_CL},
    {"recurring remote",
     0,
     EC,
     50000,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     1,
     0,
     0,
     0,
     0,
     2,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     APPROVE,
     "recurring",
     "recurring",
     0,
     0,
     3,
     0,
     FAM_RM},
    {"unattended before cl",
     0,
     KV_CH_UNATTENDED_PARKING,
     100,
     0,
     0,
     0,
     NO_DYN,
     0,
     0,
     0,
     1,
     1,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     APPROVE,
     "unattended_transport_parking",
     "unattended_transport_parking",
     0,
     0,
     0,
     0,
     FAM_NO},
    /* SCA satisfied resets the family of its channel (Q&A 2018_4226) */
    {"chip+pin resets cl",
     0,
     CT,
     500000,
     0,
     KP,
     1,
     NO_DYN,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     5,
     800,
     3,
     2,
     0,
     0,
     0,
     0,
     0,
     0,
     APPROVE,
     "sca_satisfied",
     NULL,
     0,
     0,
     3,
     0,
     FAM_NO},
    {"remote sca resets rm",
     0,
     EC,
     500000,
     0,
     KP,
     1,
     1,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     5,
     800,
     5,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     APPROVE,
     "sca_satisfied",
     NULL,
     5,
     800,
     0,
     0,
     FAM_NO},
    {"no sca contact",
     0,
     CT,
     100,
     0,
     KV_CAT_KNOWLEDGE,
     0,
     NO_DYN,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     SCA,
     "sca_required",
     NULL,
     0,
     0,
     0,
     0,
     FAM_NO},
    {"dynamic linking failed",
     0,
     EC,
     50000,
     0,
     KP,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     SCA,
     "dynamic_linking",
     NULL,
     0,
     0,
     0,
     0,
     FAM_NO},
    /* daily limits per Copenhagen calendar day */
    {"atm at daily max",
     0,
     KV_CH_ATM,
     50000,
     0,
     KP,
     1,
     NO_DYN,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     150000,
     150000,
     0,
     APPROVE,
     "sca_satisfied",
     NULL,
     0,
     0,
     0,
     0,
     FAM_NO},
    {"atm past daily max",
     0,
     KV_CH_ATM,
     50001,
     0,
     KP,
     1,
     NO_DYN,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     150000,
     150000,
     0,
     DECLINE,
     "limit_atm_daily",
     NULL,
     0,
     0,
     0,
     0,
     FAM_NO},
    {"gambling at daily max",
     0,
     CT,
     50000,
     1,
     KP,
     1,
     NO_DYN,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     450000,
     0,
     450000,
     APPROVE,
     "sca_satisfied",
     NULL,
     0,
     0,
     0,
     0,
     FAM_NO},
    {"gambling past daily max",
     0,
     EC,
     50001,
     1,
     KP,
     1,
     1,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     450000,
     0,
     450000,
     DECLINE,
     "limit_gambling_daily",
     NULL,
     0,
     0,
     0,
     0,
     FAM_NO},
    /* the child's wallet card */
    {"child single at max",
     0,
     CT,
     20000,
     0,
     KP,
     1,
     NO_DYN,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     20000,
     0,
     0,
     0,
     0,
     APPROVE,
     "sca_satisfied",
     NULL,
     0,
     0,
     0,
     0,
     FAM_NO},
    {"child single past max",
     0,
     CL,
     20001,
     0,
     0,
     0,
     NO_DYN,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     20000,
     0,
     0,
     0,
     0,
     DECLINE,
     "limit_card",
     NULL,
     0,
     0,
     0,
     0,
     FAM_NO},
    {"child daily at max",
     0,
     CL,
     10000,
     0,
     0,
     0,
     NO_DYN,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     50000,
     40000,
     0,
     0,
     APPROVE,
     "contactless_low_value",
     "contactless_low_value",
     1,
     10000,
     0,
     0,
     FAM_CL},
    {"child daily past max",
     0,
     CL,
     10001,
     0,
     0,
     0,
     NO_DYN,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     50000,
     40000,
     0,
     0,
     DECLINE,
     "limit_card",
     NULL,
     0,
     0,
     0,
     0,
     FAM_NO},
    /* e-commerce switched off by the cardholder */
    {"ecommerce disabled",
     0,
     EC,
     100,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     1,
     0,
     0,
     0,
     0,
     0,
     DECLINE,
     "ecommerce_disabled",
     NULL,
     0,
     0,
     0,
     0,
     FAM_NO},
    {"ecommerce disabled, cl ok",
     0,
     CL,
     100,
     0,
     0,
     0,
     NO_DYN,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     1,
     0,
     0,
     0,
     0,
     0,
     APPROVE,
     "contactless_low_value",
     "contactless_low_value",
     1,
     100,
     0,
     0,
     FAM_CL},
    {"moto",
     0,
     KV_CH_MOTO,
     1000000,
     0,
     0,
     0,
     NO_DYN,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     2,
     200,
     2,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     APPROVE,
     "moto_out_of_scope",
     "moto_out_of_scope",
     2,
     200,
     2,
     0,
     FAM_NO},
    {"expired", 0, CL, 100, 0, 0, 0,       NO_DYN,         0,    0, 0, 0, 0, 0,     1, 0, 0, 0, 0,
     0,         0, 0,  0,   0, 0, DECLINE, "card_expired", NULL, 0, 0, 0, 0, FAM_NO},
    {"blocked", 0, CL, 100, 0, KP, 1,       NO_DYN,         0,    0, 0, 0, 0, 1,     0, 0, 0, 0, 0,
     0,         0, 0,  0,   0, 0,  DECLINE, "card_blocked", NULL, 0, 0, 0, 0, FAM_NO},
    /* RTS Art. 4(3)(b): the 5th consecutive failure and every request after it */
    {"4th failure",
     0,
     CT,
     100,
     0,
     0,
     0,
     NO_DYN,
     1,
     1,
     KV_FACTOR_PIN_ONLINE,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     3,
     0,
     0,
     0,
     0,
     0,
     0,
     DECLINE,
     "pin_incorrect",
     NULL,
     0,
     0,
     0,
     4,
     FAM_NO},
    {"5th failure",
     0,
     CT,
     100,
     0,
     0,
     0,
     NO_DYN,
     1,
     1,
     KV_FACTOR_PIN_ONLINE,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     4,
     0,
     0,
     0,
     0,
     0,
     0,
     DECLINE,
     "sca_failed_attempts",
     NULL,
     0,
     0,
     0,
     5,
     FAM_NO},
    {"blocked after 5",
     0,
     CT,
     100,
     0,
     KP,
     1,
     NO_DYN,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     5,
     0,
     0,
     0,
     0,
     0,
     0,
     DECLINE,
     "sca_failed_attempts",
     NULL,
     0,
     0,
     0,
     5,
     FAM_NO},
    {"success resets failures",
     0,
     CT,
     100,
     0,
     KP,
     1,
     NO_DYN,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     3,
     0,
     0,
     0,
     0,
     0,
     0,
     APPROVE,
     "sca_satisfied",
     NULL,
     0,
     0,
     0,
     0,
     FAM_NO},
    {"upstream failure counts",
     0,
     CL,
     100,
     0,
     0,
     0,
     NO_DYN,
     1,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     1,
     0,
     0,
     0,
     0,
     0,
     0,
     APPROVE,
     "contactless_low_value",
     "contactless_low_value",
     1,
     100,
     0,
     2,
     FAM_CL},
    {"arqc failed",
     0,
     CT,
     100,
     0,
     0,
     0,
     NO_DYN,
     1,
     1,
     KV_FACTOR_CHIP_CRYPTOGRAM,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     DECLINE,
     "cryptogram_invalid",
     NULL,
     0,
     0,
     0,
     1,
     FAM_NO},
    {"cvc2 failed",
     0,
     EC,
     100,
     0,
     0,
     0,
     0,
     1,
     1,
     KV_FACTOR_CVC2,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     DECLINE,
     "cvc_invalid",
     NULL,
     0,
     0,
     0,
     1,
     FAM_NO},
    {"cvc3 failed",
     0,
     CL,
     100,
     0,
     0,
     0,
     NO_DYN,
     1,
     1,
     KV_FACTOR_CVC3,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     DECLINE,
     "cvc_invalid",
     NULL,
     0,
     0,
     0,
     1,
     FAM_NO},
};

static void cfg_for(int which, kv_limits_config *c)
{
    kv_limits_defaults(c);
    if (which == CFG_AMOUNT)
        c->contactless.counter = KV_COUNTER_AMOUNT;
    if (which == CFG_EXCLUDE_CURRENT)
        c->include_current = 0;
}

static void test_decision_table(void **state)
{
    int bad = 0;
    (void)state;
    for (size_t i = 0; i < sizeof(dec_rows) / sizeof(dec_rows[0]); i++) {
        const struct dec_row *row = &dec_rows[i];
        kv_limits_config cfg;
        kv_card_policy card;
        kv_decision_in in;
        kv_decision_out out;

        cfg_for(row->cfg, &cfg);
        kv_card_policy_init(&card);
        card.contactless.count = row->cl_count;
        card.contactless.amount = row->cl_amount;
        card.remote.count = row->rm_count;
        card.remote.amount = row->rm_count * 100;
        card.sca_failures = row->failures;
        card.ecommerce_enabled = !row->ecom_off;
        card.spend_single_max = row->single ? row->single : -1;
        card.spend_daily_max = row->daily ? row->daily : -1;
        memset(&in, 0, sizeof(in));
        in.channel = row->ch;
        in.amount = row->amount;
        in.gambling = row->gambling;
        in.sca.categories = row->cats;
        in.sca.satisfied = row->satisfied;
        in.sca.dynamic_linking = row->dyn;
        in.sca.failed = row->failed;
        in.sca.hsm_failed = row->hsm_failed;
        in.sca.hsm_failed_type = row->hsm_type;
        in.trusted_beneficiary = row->trusted;
        in.recurring_ok = row->recurring;
        in.card_blocked = row->blocked;
        in.card_expired = row->expired;
        in.day_total = row->day_total;
        in.day_atm = row->day_atm;
        in.day_gambling = row->day_gambling;

        kv_limits_decide(&cfg, &card, &in, &out);
        int ok = out.decision == row->want && strcmp(out.reason, row->reason) == 0 &&
                 ((out.exemption == NULL && row->exemption == NULL) ||
                  (out.exemption != NULL && row->exemption != NULL &&
                   strcmp(out.exemption, row->exemption) == 0)) &&
                 out.card.contactless.count == row->want_cl_count &&
                 out.card.contactless.amount == row->want_cl_amount &&
                 out.card.remote.count == row->want_rm_count &&
                 out.card.sca_failures == row->want_failures && out.counted == row->counted;
        if (!ok) {
            fprintf(stderr,
                    "row %zu '%s':\n  want %s/%s/%s cl=%lld/%lld rm=%lld fail=%d counted=%d\n"
                    "  got  %s/%s/%s cl=%lld/%lld rm=%lld fail=%d counted=%d\n",
                    i, row->name, kv_decision_name(row->want), row->reason,
                    row->exemption ? row->exemption : "-", (long long)row->want_cl_count,
                    (long long)row->want_cl_amount, (long long)row->want_rm_count,
                    row->want_failures, row->counted, kv_decision_name(out.decision), out.reason,
                    out.exemption ? out.exemption : "-", (long long)out.card.contactless.count,
                    (long long)out.card.contactless.amount, (long long)out.card.remote.count,
                    out.card.sca_failures, out.counted);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

/* The card reports its PIN blocked in the CVR of a verified cryptogram: pin_blocked. */
static void test_pin_blocked(void **state)
{
    static const struct {
        const char *name;
        int cvn;
        const char *tail; /* the last bytes of the AC data (hex) */
        int want;
    } rows[] = {
        /* CVN 10: data end with IAD bytes 4-7, 03 || CVR; CVR byte 2 0x40 = limit exceeded */
        {"cvn 10, limit exceeded", 10, "03A44000", 1},
        {"cvn 10, PIN verified", 10, "03A40000", 0},
        {"cvn 10, other bits of byte 2", 10, "03A4BF00", 0},
        {"cvn 10, not a Visa CVR length", 10, "05A44000", 0},
        /* CVN 18: data end with the whole IAD 06 DKI 12 03 CVR */
        {"cvn 18, limit exceeded", 18, "06011203A44000", 1},
        {"cvn 18, clean", 18, "06011203A40000", 0},
        /* Mastercard CVNs carry another layout: no claim */
        {"cvn 16", 16, "03A44000", 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        kv_auth_factor f;
        uint8_t tail[16];
        int n, got;
        memset(&f, 0, sizeof(f));
        f.type = KV_FACTOR_CHIP_CRYPTOGRAM;
        f.cvn = rows[i].cvn;
        memset(f.data, 0x11, 33); /* CDOL1 data, AIP, ATC */
        n = kv_hex_decode(rows[i].tail, tail, sizeof(tail));
        assert_true(n > 0);
        memcpy(f.data + 33, tail, (size_t)n);
        f.data_len = 33 + (size_t)n;
        got = kv_authz_cvr_pin_blocked(&f);
        if (got != rows[i].want)
            print_error("row '%s': got %d, want %d\n", rows[i].name, got, rows[i].want);
        assert_int_equal(got, rows[i].want);
    }

    /* the decision: declined pin_blocked; a listed card is still card_blocked first */
    {
        kv_limits_config cfg;
        kv_card_policy card;
        kv_decision_in in;
        kv_decision_out out;
        kv_limits_defaults(&cfg);
        kv_card_policy_init(&card);
        memset(&in, 0, sizeof(in));
        in.channel = KV_CH_CONTACT;
        in.amount = 10000;
        in.sca.satisfied = 1;
        in.sca.categories = KV_CAT_KNOWLEDGE | KV_CAT_POSSESSION;
        kv_limits_decide(&cfg, &card, &in, &out);
        assert_int_equal(out.decision, KV_DECISION_APPROVE);
        in.pin_blocked = 1;
        kv_limits_decide(&cfg, &card, &in, &out);
        assert_int_equal(out.decision, KV_DECISION_DECLINE);
        assert_string_equal(out.reason, "pin_blocked");
        in.card_blocked = 1;
        kv_limits_decide(&cfg, &card, &in, &out);
        assert_string_equal(out.reason, "card_blocked");
    }
}

static void test_reverse(void **state)
{
    kv_card_policy p;
    (void)state;
    kv_card_policy_init(&p);
    p.contactless.count = 3;
    p.contactless.amount = 30000;
    p.contactless.epoch = 2;
    kv_limits_reverse(&p, KV_FAMILY_CONTACTLESS, 2, 10000);
    assert_int_equal(p.contactless.count, 2);
    assert_int_equal(p.contactless.amount, 20000);
    /* counted before the last reset: no longer in the counter */
    kv_limits_reverse(&p, KV_FAMILY_CONTACTLESS, 1, 10000);
    assert_int_equal(p.contactless.count, 2);
    assert_int_equal(p.contactless.amount, 20000);
    kv_limits_reverse(&p, KV_FAMILY_NONE, 2, 10000);
    assert_int_equal(p.contactless.count, 2);
}

static void test_channels_and_mcc(void **state)
{
    kv_channel ch;
    (void)state;
    for (int i = 0; i < KV_CH__COUNT; i++) {
        assert_int_equal(kv_channel_parse(kv_channel_name((kv_channel)i), &ch), 0);
        assert_int_equal(ch, i);
    }
    assert_int_equal(kv_channel_parse("pos", &ch), KV_ERR_NOT_FOUND);
    assert_int_equal(kv_channel_family(KV_CH_CONTACTLESS), KV_FAMILY_CONTACTLESS);
    assert_int_equal(kv_channel_family(KV_CH_ECOMMERCE), KV_FAMILY_REMOTE);
    assert_int_equal(kv_channel_family(KV_CH_MOTO), KV_FAMILY_NONE);
    assert_int_equal(kv_channel_family(KV_CH_UNATTENDED_TRANSPORT), KV_FAMILY_NONE);
    const char *gambling[] = {"7800", "7801", "7802", "7995"};
    for (int i = 0; i < 4; i++)
        assert_true(kv_mcc_is_gambling(gambling[i]));
    assert_false(kv_mcc_is_gambling("7803"));
    assert_false(kv_mcc_is_gambling("5411"));
    assert_false(kv_mcc_is_gambling(NULL));
}

/* ---- configuration ---- */

static const struct {
    const char *text;
    int rc;
    const char *err_has; /* substring of the error message */
} config_rows[] = {
    {"", 0, NULL},
    {"[limits]\ncontactless_single_max = 50000\n", 0, NULL},
    {"[limits]\ncontactless_single_max = 5e4\n", KV_ERR_CONFIG, "contactless_single_max"},
    {"[limits]\natm_daily_max = -1\n", KV_ERR_CONFIG, "atm_daily_max"},
    {"[limits]\n\n# c\ngambling_daily_max = lots\n", KV_ERR_CONFIG,
     ":4: [limits] gambling_daily_max"},
    {"[limits]\ncontactless_counter = both\n", KV_ERR_CONFIG, "'count' or 'amount'"},
    {"[limits]\ninclude_current = maybe\n", KV_ERR_CONFIG, "include_current"},
    {"[limits]\ncontactless_limit = 5\n", KV_ERR_CONFIG, "contactless_limit: unknown key"},
    {"[blocklist]\npermission = 2018-123-4567\n[limits]\nremote_counter = amount\n", 0, NULL},
    {"[limits\n", KV_ERR_CONFIG, "INI"},
};

static void test_config(void **state)
{
    char path[] = "/tmp/kv_conf_XXXXXX";
    (void)state;
    for (size_t i = 0; i < sizeof(config_rows) / sizeof(config_rows[0]); i++) {
        char err[256];
        kv_config *c = NULL;
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, config_rows[i].text, strlen(config_rows[i].text)),
                         (ssize_t)strlen(config_rows[i].text));
        close(fd);
        int r = kv_config_load(path, &c, err, sizeof(err));
        if (r != config_rows[i].rc ||
            (config_rows[i].err_has != NULL && strstr(err, config_rows[i].err_has) == NULL)) {
            fprintf(stderr, "row %zu: want %d '%s' got %d '%s'\n", i, config_rows[i].rc,
                    config_rows[i].err_has ? config_rows[i].err_has : "", r, err);
            fail();
        }
        kv_config_free(c);
        unlink(path);
        memcpy(path + strlen(path) - 6, "XXXXXX", 6);
    }
}

static void test_config_values(void **state)
{
    char path[] = "/tmp/kv_conf_XXXXXX";
    const char *text = "[limits]\ncontactless_single_max = 50000\ncontactless_counter = amount\n"
                       "contactless_cumulative_max = 100000\nremote_count_max = 3\n"
                       "include_current = false\n[store]\nurl = sqlite:/tmp/x.db\n";
    char err[256];
    kv_config *c = NULL;
    int fd = mkstemp(path);
    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    assert_int_equal(kv_config_load(path, &c, err, sizeof(err)), 0);
    const kv_limits_config *l = kv_config_limits(c);
    assert_int_equal(l->contactless.single_max, 50000);
    assert_int_equal(l->contactless.counter, KV_COUNTER_AMOUNT);
    assert_int_equal(l->contactless.cumulative_max, 100000);
    assert_int_equal(l->remote.count_max, 3);
    assert_int_equal(l->remote.single_max, 22500); /* default kept */
    assert_int_equal(l->include_current, 0);
    /* the file's URL; $KORTVAGT_STORE over it: test_settings.c (src/app/settings.h) */
    assert_string_equal(kv_config_store_url(c), "sqlite:/tmp/x.db");
    assert_string_equal(kv_config_get(c, "store", "url"), "sqlite:/tmp/x.db");
    assert_null(kv_config_get(c, "store", "nope"));
    kv_config_free(c);
    unlink(path);

    /* defaults per src/RULES.md */
    kv_limits_config d;
    kv_limits_defaults(&d);
    assert_int_equal(d.contactless.single_max, 35000);
    assert_int_equal(d.contactless.counter, KV_COUNTER_COUNT);
    assert_int_equal(d.contactless.count_max, 5);
    assert_int_equal(d.contactless.cumulative_max, 112500);
    assert_int_equal(d.remote.single_max, 22500);
    assert_int_equal(d.remote.count_max, 5);
    assert_int_equal(d.remote.cumulative_max, 75000);
    assert_int_equal(d.atm_daily_max, 200000);
    assert_int_equal(d.gambling_daily_max, 500000);
    assert_int_equal(d.include_current, 1);

    /* a named file that does not exist */
    assert_int_equal(kv_config_load("/nonexistent/kortvagt.conf", &c, err, sizeof(err)), KV_ERR_IO);
    assert_non_null(strstr(err, "/nonexistent/kortvagt.conf"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_parse),       cmocka_unit_test(test_copenhagen_day),
        cmocka_unit_test(test_card_expiry),      cmocka_unit_test(test_decision_table),
        cmocka_unit_test(test_pin_blocked),      cmocka_unit_test(test_reverse),
        cmocka_unit_test(test_channels_and_mcc), cmocka_unit_test(test_config),
        cmocka_unit_test(test_config_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

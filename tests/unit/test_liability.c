/*
 * Table tests of src/liability/liability.h: one case per row of the decision
 * table of src/RULES.md §2 (each also meeting the conditions of later rows, so a
 * wrong order fails), the caps (shared, separate, mixed before/after the
 * notification), the burden of proof (claimed PIN without proof, evidence
 * records through an injected lookup, one with a broken MAC), the objection
 * boundaries, the examples of Forbrugerombudsmanden [1] and Visa/Dankort rules
 * [3] §10 (sources listed in src/RULES.md), and the decoder's contract errors.
 *
 * The expected amounts are worked out by hand from src/RULES.md and its sources,
 * never from the code under test. Case JSON is written with single quotes
 * (turned into double quotes before decoding) to keep the table readable.
 * A row's expectation is a summary of the result JSON:
 *   "<id> <class> <cardholder>/<issuer> <rule> <objection>; ... | total <ch>/<iss> <objection>"
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <unistd.h>

#include "src/base/err.h"
#include "src/evidence/evidence.h"
#include "src/liability/liability.h"
#include "src/liability/liability_evidence.h"
#include "src/store/store.h"

/* ---- case builders ---- */

#define DISC "'2026-03-01T10:00:00Z'"
#define NOTI "'2026-03-01T11:00:00Z'"
#define OBJ "'2026-03-02T09:00:00Z'"
#define CASE(notified, objection, facts, cards, txns)                                              \
    "{'currency':'DKK','discovered_at':" DISC ",'notified_at':" notified                           \
    ",'objection_at':" objection ",'facts':{" facts "},'cards':[" cards "],'transactions':[" txns  \
    "]}"
/* The standard incident: discovered 10:00, block requested 11:00, objection next morning. */
#define STD(facts, cards, txns) CASE(NOTI, OBJ, facts, cards, txns)

#define CARD(id, cred, blocked) "{'id':'" id "','credential':'" cred "','blocked_at':" blocked "}"
#define CARD_A CARD("A", "pin-1", NOTI)
#define CARD_B CARD("B", "pin-1", NOTI)

/* A transaction debited when made; extra is "" or more fields starting with a comma. */
#define TX(id, card, at, amount, channel, extra, verif)                                            \
    "{'id':'" id "','card':'" card "','at':'" at "','debited_at':'" at "','amount':" #amount       \
    ",'channel':'" channel "'" extra ",'verification':{" verif "}}"
#define TXD(id, card, at, debited, amount, verif)                                                  \
    "{'id':'" id "','card':'" card "','at':'" at "','debited_at':'" debited "','amount':" #amount  \
    ",'channel':'contact','verification':{" verif "}}"

#define EVE "2026-02-28T20:00:00Z" /* the evening before the discovery */
#define PIN "'method':'offline_pin','proven':true"
#define OPIN "'method':'online_pin','proven':true"
#define NONE "'method':'none'"

/* ---- helpers ---- */

static char *dq(const char *s)
{
    char *d = strdup(s);
    assert_non_null(d);
    for (char *p = d; *p != '\0'; p++)
        if (*p == '\'')
            *p = '"';
    return d;
}

static struct kv_liability_case *parse_ok(const char *single_quoted)
{
    char why[512];
    char *text = dq(single_quoted);
    struct kv_liability_case *c = NULL;
    int r = kv_liability_case_parse(text, strlen(text), &c, why, sizeof why);
    if (r != 0) {
        print_error("decode failed (%d): %s\n  case: %s\n", r, why, text);
        free(text);
        fail();
    }
    free(text);
    return c;
}

/* The summary of a result JSON (see the file comment). */
static void summarise(const json_t *res, char *out, size_t cap)
{
    size_t n = 0;
    json_t *txns = json_object_get(res, "transactions");
    long long total_ch = 0, total_iss = 0;
    out[0] = '\0';
    for (size_t i = 0; i < json_array_size(txns); i++) {
        json_t *t = json_array_get(txns, i);
        long long ch = json_integer_value(json_object_get(t, "cardholder"));
        long long iss = json_integer_value(json_object_get(t, "issuer"));
        total_ch += ch;
        total_iss += iss;
        n += (size_t)snprintf(out + n, cap - n, "%s%s %s %lld/%lld %s %s", i ? "; " : "",
                              json_string_value(json_object_get(t, "id")),
                              json_string_value(json_object_get(t, "class")), ch, iss,
                              json_string_value(json_object_get(t, "rule")),
                              json_string_value(json_object_get(t, "objection")));
        assert_true(n < cap);
    }
    snprintf(out + n, cap - n, " | total %lld/%lld %s",
             json_integer_value(json_object_get(res, "cardholder")),
             json_integer_value(json_object_get(res, "issuer")),
             json_string_value(json_object_get(res, "objection")));
    /* the totals are the sums of the transactions, and total = cardholder + issuer */
    assert_int_equal(json_integer_value(json_object_get(res, "cardholder")), total_ch);
    assert_int_equal(json_integer_value(json_object_get(res, "issuer")), total_iss);
    assert_int_equal(json_integer_value(json_object_get(res, "total")), total_ch + total_iss);
    assert_string_equal(json_string_value(json_object_get(res, "currency")), "DKK");
}

/* ---- an injected evidence store ---- */

struct fake_record {
    const char *id;
    int rc;   /* what the lookup returns */
    int fill; /* 1: overwrite *v with the record's verification */
    struct kv_liability_verification v;
};

static const struct fake_record fake_records[] = {
    /* a record whose chain and MAC check good: online PIN verified in the HSM */
    {"e-good", 0, 1, {KV_LIABILITY_METHOD_ONLINE_PIN, 0, true, true, false}},
    /* the same claim, but the MAC does not verify: proves nothing */
    {"e-broken-mac",
     KV_ERR_EVIDENCE_BROKEN,
     1,
     {KV_LIABILITY_METHOD_ONLINE_PIN, 0, true, true, false}},
    /* a record loaded and good that the lookup did not map: the case's claim must not count */
    {"e-lazy", 0, 0, {KV_LIABILITY_METHOD_NONE, 0, false, true, false}},
    /* the store failed */
    {"e-store-down",
     KV_ERR_STORE_UNAVAILABLE,
     0,
     {KV_LIABILITY_METHOD_NONE, 0, false, true, false}},
};

static int fake_lookup(void *ctx, const char *id, const struct kv_liability_txn *txn,
                       struct kv_liability_verification *v)
{
    int *calls = ctx;
    (void)txn;
    (*calls)++;
    /* the engine hands over the case's verification with proven cleared */
    assert_false(v->proven);
    for (size_t i = 0; i < sizeof fake_records / sizeof fake_records[0]; i++) {
        if (strcmp(fake_records[i].id, id) != 0)
            continue;
        if (fake_records[i].fill)
            *v = fake_records[i].v;
        return fake_records[i].rc;
    }
    return KV_ERR_NOT_FOUND;
}

struct row {
    const char *name;
    const char *json;
    const char *want;
};

/* no_lookup: assess without an evidence lookup */
static void run_rows(const struct row *rows, size_t n, int no_lookup)
{
    int failures = 0;
    for (size_t i = 0; i < n; i++) {
        struct kv_liability_case *c = parse_ok(rows[i].json);
        struct kv_liability_result *res = NULL;
        json_t *j = NULL;
        char got[2048];
        int calls = 0;
        int r = kv_liability_assess(c, no_lookup ? NULL : fake_lookup, &calls, &res);
        assert_int_equal(r, 0);
        assert_int_equal(kv_liability_result_to_json(c, res, &j), 0);
        summarise(j, got, sizeof got);
        if (strcmp(got, rows[i].want) != 0) {
            print_error("row \"%s\":\n  got  %s\n  want %s\n", rows[i].name, got, rows[i].want);
            failures++;
        }
        json_decref(j);
        kv_liability_result_free(res);
        kv_liability_case_free(c);
    }
    assert_int_equal(failures, 0);
}

/* ---- 1. the decision table, one row each, in order ---- */

static const struct row table_rows[] = {
    /* row 1 wins over after-notification, unauthenticated contactless and late notification */
    {"row 1 fraud",
     STD("'cardholder_fraud':true,'late_notification':true", CARD_A,
         TX("t1", "A", "2026-03-01T12:00:00Z", 300000, "contactless", "", NONE)),
     "t1 fraud 300000/0 § 100 stk. 2 timely | total 300000/0 timely"},
    /* row 2: debited 2026-02-28T20:00Z + 13 months = 2027-03-28T20:00Z < objection; wins over
     * a wrong booking (row 4) */
    {"row 2 barred",
     CASE(NOTI, "'2027-03-29T00:00:00Z'", "", CARD_A,
          TX("t1", "A", EVE, 300000, "contact", ",'booked_correctly':false", PIN)),
     "t1 barred 300000/0 § 97 barred | total 300000/0 barred"},
    /* row 3: intentional breach with SCA required; wins over a wrong booking */
    {"row 3 intentional breach",
     STD("'intentional_breach':true", CARD_A,
         TX("t1", "A", EVE, 300000, "contact", ",'booked_correctly':false", PIN)),
     "t1 intentional_breach 300000/0 § 100 stk. 2 timely | total 300000/0 timely"},
    /* row 3 needs sca_required: without it stk. 7 protects the cardholder (row 10) */
    {"row 3 not without SCA required",
     STD("'intentional_breach':true", CARD_A,
         TX("t1", "A", EVE, 300000, "contact", "", PIN ",'sca_required':false")),
     "t1 sca_not_required 0/300000 § 100 stk. 7 timely | total 0/300000 timely"},
    /* row 4 wins over after-notification */
    {"row 4 not booked",
     STD("", CARD_A,
         TX("t1", "A", "2026-03-01T12:00:00Z", 300000, "contact", ",'booked_correctly':false",
            PIN)),
     "t1 not_booked 0/300000 § 100 stk. 1 timely | total 0/300000 timely"},
    /* row 5: at exactly notified_at counts ("at or after"); one second before does not and
     * falls to row 6 (issuer staff) */
    {"row 5 after notification",
     STD("'issuer_staff_caused':true", CARD_A,
         TX("t1", "A", "2026-03-01T11:00:00Z", 300000, "contact", "",
            PIN) "," TX("t2", "A", "2026-03-01T10:59:59Z", 100000, "contact", "", PIN)),
     "t1 after_notification 0/300000 § 100 stk. 6 nr. 1 timely; "
     "t2 issuer_staff 0/100000 § 100 stk. 6 nr. 2 timely | total 0/400000 timely"},
    /* row 5 needs a notification: notified_at null means never notified */
    {"row 5 not when never notified",
     CASE("null", OBJ, "", CARD("A", "pin-1", "null"),
          TX("t1", "A", "2026-03-01T12:00:00Z", 300000, "contact", "", PIN)),
     "t1 credential_used 37500/262500 § 100 stk. 3 timely | total 37500/262500 timely"},
    {"row 6 issuer staff",
     STD("'issuer_staff_caused':true,'no_notification_channel':true", CARD_A,
         TX("t1", "A", EVE, 300000, "contact", "", PIN)),
     "t1 issuer_staff 0/300000 § 100 stk. 6 nr. 2 timely | total 0/300000 timely"},
    {"row 7 no notification channel",
     STD("'no_notification_channel':true,'payee_knew':true", CARD_A,
         TX("t1", "A", EVE, 300000, "contact", "", PIN)),
     "t1 no_channel 0/300000 § 100 stk. 6 nr. 3 timely | total 0/300000 timely"},
    {"row 8 payee knew",
     STD("'payee_knew':true,'undetectable_before_use':true", CARD_A,
         TX("t1", "A", EVE, 300000, "contact", "", PIN)),
     "t1 payee_knew 0/300000 § 100 stk. 9 timely | total 0/300000 timely"},
    {"row 9 undetectable",
     STD("'undetectable_before_use':true", CARD_A,
         TX("t1", "A", EVE, 300000, "contact", "", PIN ",'sca_required':false")),
     "t1 undetectable 0/300000 § 100 stk. 8 timely | total 0/300000 timely"},
    /* row 10 wins over "not proven" and over handed over with foreseeable risk */
    {"row 10 SCA not required",
     STD("'credential_handed_over':true,'risk_foreseeable':true", CARD_A,
         TX("t1", "A", EVE, 300000, "ecommerce", "", NONE ",'sca_required':false")),
     "t1 sca_not_required 0/300000 § 100 stk. 7 timely | total 0/300000 timely"},
    /* row 11 wins over row 12: handing over matters only when the credential was used */
    {"row 11 unauthenticated",
     STD("'credential_handed_over':true,'risk_foreseeable':true", CARD_A,
         TX("t1", "A", EVE, 300000, "contactless", "", NONE)),
     "t1 unauthenticated 0/300000 § 100 stk. 1 timely | total 0/300000 timely"},
    /* row 12 wins over row 13 (late notification) and is uncapped */
    {"row 12 credential disclosed",
     STD("'credential_handed_over':true,'risk_foreseeable':true,'late_notification':true", CARD_A,
         TX("t1", "A", EVE, 1200000, "atm", "", OPIN)),
     "t1 credential_disclosed 1200000/0 § 100 stk. 5 timely | total 1200000/0 timely"},
    /* row 13: 12,000 kr with the 8,000 kr cap */
    {"row 13 negligent (late notification)",
     STD("'late_notification':true", CARD_A, TX("t1", "A", EVE, 1200000, "atm", "", OPIN)),
     "t1 negligent 800000/400000 § 100 stk. 4 timely | total 800000/400000 timely"},
    {"row 13 negligent (handed over, risk not foreseeable)",
     STD("'credential_handed_over':true", CARD_A, TX("t1", "A", EVE, 300000, "atm", "", OPIN)),
     "t1 negligent 300000/0 § 100 stk. 4 timely | total 300000/0 timely"},
    {"row 13 negligent (gross negligence)",
     STD("'gross_negligence':true", CARD_A, TX("t1", "A", EVE, 900000, "atm", "", OPIN)),
     "t1 negligent 800000/100000 § 100 stk. 4 timely | total 800000/100000 timely"},
    /* row 14: 3,000 kr with the 375 kr cap */
    {"row 14 credential used", STD("", CARD_A, TX("t1", "A", EVE, 300000, "contact", "", PIN)),
     "t1 credential_used 37500/262500 § 100 stk. 3 timely | total 37500/262500 timely"},
};

static void test_decision_table(void **state)
{
    (void)state;
    run_rows(table_rows, sizeof table_rows / sizeof table_rows[0], 0);
}

/* ---- 2. caps ---- */

static const struct row cap_rows[] = {
    /* Shared: A and B have the same PIN and were blocked together (Visa/Dankort rules [3] §10.2).
     * File order is t2, t1 but t1 is earlier, so t1 takes the whole 375 kr and t2 nothing. */
    {"shared cap, taken in time order",
     STD("", CARD_A "," CARD_B,
         TX("t2", "B", "2026-02-28T21:00:00Z", 300000, "contact", "",
            PIN) "," TX("t1", "A", EVE, 200000, "contact", "", PIN)),
     "t2 credential_used 0/300000 § 100 stk. 3 timely; "
     "t1 credential_used 37500/162500 § 100 stk. 3 timely | total 37500/462500 timely"},
    /* Separate: the same PIN but blocked at different times: 375 kr each. */
    {"separate caps (blocked at different times)",
     STD("", CARD_A "," CARD("B", "pin-1", "'2026-03-01T12:00:00Z'"),
         TX("t1", "A", EVE, 200000, "contact", "", PIN) "," TX("t2", "B", "2026-02-28T21:00:00Z",
                                                               300000, "contact", "", PIN)),
     "t1 credential_used 37500/162500 § 100 stk. 3 timely; "
     "t2 credential_used 37500/262500 § 100 stk. 3 timely | total 75000/425000 timely"},
    /* Separate: blocked together, but different credentials. */
    {"separate caps (different credentials)",
     STD("", CARD_A "," CARD("B", "pin-2", NOTI),
         TX("t1", "A", EVE, 200000, "contact", "", PIN) "," TX("t2", "B", "2026-02-28T21:00:00Z",
                                                               300000, "contact", "", PIN)),
     "t1 credential_used 37500/162500 § 100 stk. 3 timely; "
     "t2 credential_used 37500/262500 § 100 stk. 3 timely | total 75000/425000 timely"},
    /* Separate: same credential, neither blocked (null never groups). */
    {"separate caps (never blocked)",
     CASE("null", OBJ, "", CARD("A", "pin-1", "null") "," CARD("B", "pin-1", "null"),
          TX("t1", "A", EVE, 200000, "contact", "", PIN) "," TX("t2", "B", "2026-02-28T21:00:00Z",
                                                                300000, "contact", "", PIN)),
     "t1 credential_used 37500/162500 § 100 stk. 3 timely; "
     "t2 credential_used 37500/262500 § 100 stk. 3 timely | total 75000/425000 timely"},
    /* Mixed before/after the notification at 11:00: 200 kr + 175 kr fill the 375 kr cap, the
     * third payment after the block request is the issuer's. */
    {"mixed before/after notification",
     STD("", CARD_A,
         TX("t1", "A", "2026-03-01T10:30:00Z", 20000, "contact", "",
            PIN) "," TX("t2", "A", "2026-03-01T10:45:00Z", 30000, "contact", "",
                        PIN) "," TX("t3", "A", "2026-03-01T11:30:00Z", 50000, "contact", "", PIN)),
     "t1 credential_used 20000/0 § 100 stk. 3 timely; "
     "t2 credential_used 17500/12500 § 100 stk. 3 timely; "
     "t3 after_notification 0/50000 § 100 stk. 6 nr. 1 timely | total 37500/62500 timely"},
    /* Equal times: file order decides. */
    {"equal times, file order",
     STD("", CARD_A,
         TX("t1", "A", EVE, 30000, "contact", "", PIN) "," TX("t2", "A", EVE, 30000, "contact", "",
                                                              PIN)),
     "t1 credential_used 30000/0 § 100 stk. 3 timely; "
     "t2 credential_used 7500/22500 § 100 stk. 3 timely | total 37500/22500 timely"},
    /* The 8,000 kr cap shared the same way (Visa/Dankort rules [3] §10.2, second part). */
    {"shared 8,000 kr cap",
     STD("'late_notification':true", CARD_A "," CARD_B,
         TX("t1", "A", EVE, 500000, "atm", "", OPIN) "," TX("t2", "B", "2026-02-28T21:00:00Z",
                                                            500000, "atm", "", OPIN)),
     "t1 negligent 500000/0 § 100 stk. 4 timely; "
     "t2 negligent 300000/200000 § 100 stk. 4 timely | total 800000/200000 timely"},
    /* Uncapped rows do not use up the cap: the barred payment (debited 2025-01-01T12:00Z,
     * limit 2026-02-01T12:00Z) is all the cardholder's, and the later one still takes 375 kr. */
    {"uncapped rows leave the cap alone",
     STD("", CARD_A,
         TXD("old", "A", "2025-01-01T12:00:00Z", "2025-01-01T12:00:00Z", 100000,
             PIN) "," TX("new", "A", EVE, 300000, "contact", "", PIN)),
     "old barred 100000/0 § 97 barred; "
     "new credential_used 37500/262500 § 100 stk. 3 timely | total 137500/262500 barred"},
    /* Row 12 card by card: each card's whole amount (Visa/Dankort rules [3] §10.3, last
       paragraph). */
    {"row 12 card by card",
     STD("'credential_handed_over':true,'risk_foreseeable':true", CARD_A "," CARD_B,
         TX("t1", "A", EVE, 200000, "contact", "", PIN) "," TX("t2", "B", "2026-02-28T21:00:00Z",
                                                               300000, "contact", "", PIN)),
     "t1 credential_disclosed 200000/0 § 100 stk. 5 timely; "
     "t2 credential_disclosed 300000/0 § 100 stk. 5 timely | total 500000/0 timely"},
    /* Three cards: A and B share a cap, C (other PIN) has its own. */
    {"two groups",
     STD("", CARD_A "," CARD_B "," CARD("C", "pin-2", NOTI),
         TX("t1", "A", "2026-02-28T18:00:00Z", 20000, "contact", "",
            PIN) "," TX("t2", "B", "2026-02-28T19:00:00Z", 30000, "contact", "",
                        PIN) "," TX("t3", "C", "2026-02-28T19:30:00Z", 50000, "contact", "", PIN)),
     "t1 credential_used 20000/0 § 100 stk. 3 timely; "
     "t2 credential_used 17500/12500 § 100 stk. 3 timely; "
     "t3 credential_used 37500/12500 § 100 stk. 3 timely | total 75000/25000 timely"},
};

static void test_caps(void **state)
{
    (void)state;
    run_rows(cap_rows, sizeof cap_rows / sizeof cap_rows[0], 0);
}

/* ---- 3. burden of proof (§ 98) and the credential-used test ---- */

#define USED "credential_used 37500/262500 § 100 stk. 3 timely | total 37500/262500 timely"
#define UNAUTH "unauthenticated 0/300000 § 100 stk. 1 timely | total 0/300000 timely"
#define ONE(verif) STD("", CARD_A, TX("t1", "A", EVE, 300000, "ecommerce", "", verif))
#define ONE_EV(verif, ev)                                                                          \
    STD("", CARD_A, TX("t1", "A", EVE, 300000, "contact", ",'evidence':'" ev "'", verif))

static const struct row proof_rows[] = {
    {"claimed offline PIN, no proof", ONE("'method':'offline_pin'"), "t1 " UNAUTH},
    {"claimed online PIN, proven false", ONE("'method':'online_pin','proven':false"), "t1 " UNAUTH},
    {"online PIN proven", ONE(OPIN), "t1 " USED},
    {"SMS code alone is not SCA", ONE("'method':'sca','factors':['sms_otp'],'proven':true"),
     "t1 " UNAUTH},
    {"password + SMS code", ONE("'method':'sca','factors':['password','sms_otp'],'proven':true"),
     "t1 " USED},
    {"SCA factors not proven",
     ONE("'method':'sca','factors':['password','sms_otp'],'proven':false"), "t1 " UNAUTH},
    {"MitID alone covers two categories", ONE("'method':'sca','factors':['mitid'],'proven':true"),
     "t1 " USED},
    {"card data is no category",
     ONE("'method':'sca','factors':['cvc2','card_number','expiry','sms_otp'],'proven':true"),
     "t1 " UNAUTH},
    {"two knowledge factors are one category",
     ONE("'method':'sca','factors':['pin_online','password'],'proven':true"), "t1 " UNAUTH},
    {"biometric + wallet token",
     ONE("'method':'sca','factors':['biometric','wallet_token'],'proven':true"), "t1 " USED},
    {"wallet keypad lock (no per-transaction code)", ONE("'method':'wallet_code','proven':true"),
     "t1 " UNAUTH},
    {"wallet code per purchase",
     ONE("'method':'wallet_code','proven':true,'per_transaction_code':true"), "t1 " USED},
    {"mobile code per purchase",
     ONE("'method':'mobile_code','proven':true,'per_transaction_code':true"), "t1 " USED},
    {"signature", ONE("'method':'signature','proven':true"), "t1 " UNAUTH},
    {"cvc2", ONE("'method':'cvc2','proven':true"), "t1 " UNAUTH},
    {"none", ONE("'method':'none','proven':true"), "t1 " UNAUTH},
    /* the case claims a proven PIN, the record's MAC is broken: nothing is proven */
    {"evidence record with a broken MAC", ONE_EV(PIN, "e-broken-mac"), "t1 " UNAUTH},
    /* the case claims nothing, the good record shows an online PIN verified in the HSM */
    {"evidence record good", ONE_EV(NONE, "e-good"), "t1 " USED},
    {"evidence record missing", ONE_EV(PIN, "e-nowhere"), "t1 " UNAUTH},
    {"evidence loaded but not mapped: the claim does not count", ONE_EV(PIN, "e-lazy"),
     "t1 " UNAUTH},
};

static const struct row no_lookup_rows[] = {
    {"evidence named, no lookup available", ONE_EV(PIN, "e-good"), "t1 " UNAUTH},
};

static void test_burden_of_proof(void **state)
{
    (void)state;
    run_rows(proof_rows, sizeof proof_rows / sizeof proof_rows[0], 0);
    run_rows(no_lookup_rows, sizeof no_lookup_rows / sizeof no_lookup_rows[0], 1);
}

static void test_evidence_status_and_store_failure(void **state)
{
    struct kv_liability_case *c =
        parse_ok(STD("", CARD_A,
                     TX("t1", "A", EVE, 100, "contact", ",'evidence':'e-broken-mac'",
                        PIN) "," TX("t2", "A", EVE, 100, "contact", ",'evidence':'e-good'",
                                    NONE) "," TX("t3", "A", EVE, 100, "contact", "", PIN)));
    struct kv_liability_result *res = NULL;
    int calls = 0;
    (void)state;
    assert_int_equal(kv_liability_assess(c, fake_lookup, &calls, &res), 0);
    assert_int_equal(calls, 2); /* only transactions that name a record */
    assert_int_equal(res->txns[0].evidence, KV_LIABILITY_EVIDENCE_BROKEN);
    assert_int_equal(res->txns[1].evidence, KV_LIABILITY_EVIDENCE_VERIFIED);
    assert_int_equal(res->txns[2].evidence, KV_LIABILITY_EVIDENCE_NONE);
    kv_liability_result_free(res);
    res = NULL;
    assert_int_equal(kv_liability_assess(c, NULL, NULL, &res), 0);
    assert_int_equal(res->txns[0].evidence, KV_LIABILITY_EVIDENCE_UNAVAILABLE);
    kv_liability_result_free(res);
    kv_liability_case_free(c);

    /* a failing store is an error, not a silent "not proven" */
    c = parse_ok(ONE_EV(PIN, "e-store-down"));
    res = NULL;
    assert_int_equal(kv_liability_assess(c, fake_lookup, &calls, &res), KV_ERR_STORE_UNAVAILABLE);
    assert_null(res);
    kv_liability_case_free(c);
}

/* ---- 3b. the real evidence chain (src/evidence) in an SQLite store ---- */

/* A software HMAC-SHA256 standing in for the HSM's "evidence" key. */
static int soft_hmac(void *ctx, const uint8_t *in, size_t len, uint8_t out[32])
{
    const uint8_t *key = ctx;
    unsigned int n = 32;
    return HMAC(EVP_sha256(), key, 32, in, len, out, &n) != NULL ? 0 : KV_ERR_INTERNAL;
}

static void append_record(kv_store *s, const kv_mac *mac, const char *content_json)
{
    char *text = dq(content_json);
    json_t *content = json_loads(text, 0, NULL);
    int64_t id = 0;
    assert_non_null(content);
    assert_int_equal(kv_store_begin(s, 1), 0);
    assert_int_equal(
        kv_evidence_append(s, mac, "authorization", 1772308800, 1772308800, content, &id), 0);
    assert_int_equal(kv_store_commit(s), 0);
    assert_true(id > 0);
    json_decref(content);
    free(text);
}

#define RECORD(amount, decision, verification)                                                     \
    "{'request':{'channel':'atm','amount':" #amount                                                \
    ",'currency':'DKK'},'verification':{" verification "},'response':{'decision':'" decision "'}}"

static void test_evidence_store(void **state)
{
    static uint8_t key_good[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                   17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
    static uint8_t key_other[32] = {0xEE};
    kv_mac good = {soft_hmac, key_good}, other = {soft_hmac, key_other};
    char dir[] = "/tmp/kv_liab_XXXXXX", path[64], err[256];
    kv_store *s = NULL;
    struct kv_liability_case *c;
    struct kv_liability_result *res = NULL;
    struct kv_liability_evidence_store ctx;
    /* t1: record 1, online PIN verified in the HSM (the case claims nothing);
     * t2: record 2, offline PIN claimed upstream without a cryptogram (not proven);
     * t3: record 3, a declined authorization: not this payment;
     * t4: no record 99; t5: not an id; t6: record 1 but another amount */
    static const struct {
        enum kv_liability_class cls;
        enum kv_liability_evidence_status ev;
        int64_t cardholder;
    } want_good[] = {
        {KV_LIABILITY_CREDENTIAL_USED, KV_LIABILITY_EVIDENCE_VERIFIED, 37500},
        {KV_LIABILITY_UNAUTHENTICATED, KV_LIABILITY_EVIDENCE_VERIFIED, 0},
        {KV_LIABILITY_UNAUTHENTICATED, KV_LIABILITY_EVIDENCE_NOT_FOUND, 0},
        {KV_LIABILITY_UNAUTHENTICATED, KV_LIABILITY_EVIDENCE_NOT_FOUND, 0},
        {KV_LIABILITY_UNAUTHENTICATED, KV_LIABILITY_EVIDENCE_NOT_FOUND, 0},
        {KV_LIABILITY_UNAUTHENTICATED, KV_LIABILITY_EVIDENCE_NOT_FOUND, 0},
    };
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/ev.db", dir);
    assert_int_equal(kv_store_open_sqlite(path, KV_SQLITE_SYNC_NORMAL, &s, err, sizeof err), 0);
    append_record(s, &good,
                  RECORD(300000, "approve",
                         "'method':'online_pin','factors':['pin_online'],'proven':true,"
                         "'sca_required':true,'per_transaction_code':false"));
    append_record(s, &good,
                  RECORD(300000, "approve",
                         "'method':'offline_pin','factors':['pin_offline'],'proven':false,"
                         "'sca_required':true,'per_transaction_code':false"));
    append_record(s, &good,
                  RECORD(300000, "decline",
                         "'method':'online_pin','factors':['pin_online'],'proven':true,"
                         "'sca_required':true,'per_transaction_code':false"));

    c = parse_ok(
        STD("", CARD_A,
            TX("t1", "A", EVE, 300000, "atm", ",'evidence':'1'", NONE) "," TX(
                "t2", "A", EVE, 300000, "atm", ",'evidence':'2'",
                PIN) "," TX("t3", "A", EVE, 300000, "atm", ",'evidence':'3'",
                            OPIN) "," TX("t4", "A", EVE, 300000, "atm", ",'evidence':'99'",
                                         OPIN) "," TX("t5", "A", EVE, 300000, "atm",
                                                      ",'evidence':'ev-1'",
                                                      OPIN) "," TX("t6", "A", EVE, 100, "atm",
                                                                   ",'evidence':'1'", OPIN)));

    ctx.store = s;
    ctx.mac = &good;
    assert_int_equal(kv_liability_assess(c, kv_liability_evidence_from_store, &ctx, &res), 0);
    for (size_t i = 0; i < c->n_txns; i++) {
        if (res->txns[i].cls != want_good[i].cls || res->txns[i].evidence != want_good[i].ev ||
            res->txns[i].cardholder != want_good[i].cardholder) {
            print_error("%s: got %s evidence %d cardholder %lld, want %s evidence %d %lld\n",
                        c->txns[i].id, kv_liability_class_name(res->txns[i].cls),
                        res->txns[i].evidence, (long long)res->txns[i].cardholder,
                        kv_liability_class_name(want_good[i].cls), want_good[i].ev,
                        (long long)want_good[i].cardholder);
            fail();
        }
    }
    kv_liability_result_free(res);
    res = NULL;

    /* The same records checked under another key: every MAC fails, nothing is proven. */
    ctx.mac = &other;
    assert_int_equal(kv_liability_assess(c, kv_liability_evidence_from_store, &ctx, &res), 0);
    assert_int_equal(res->txns[0].evidence, KV_LIABILITY_EVIDENCE_BROKEN);
    assert_int_equal(res->txns[0].cls, KV_LIABILITY_UNAUTHENTICATED);
    assert_int_equal(res->cardholder, 0);
    kv_liability_result_free(res);

    kv_liability_case_free(c);
    kv_store_close(s);
    unlink(path);
    snprintf(path, sizeof path, "%s/ev.db-wal", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/ev.db-shm", dir);
    unlink(path);
    rmdir(dir);
}

/* ---- 4. objection boundaries ---- */

struct obj_row {
    const char *name;
    const char *discovered, *debited, *objection;
    bool final_amount_unknown;
    enum kv_liability_objection want;
};

static const struct obj_row obj_rows[] = {
    /* 14 x 24 h after the discovery */
    {"exactly 14 days", "2026-03-01T10:00:00Z", "2026-02-28T20:00:00Z", "2026-03-15T10:00:00Z",
     false, KV_LIABILITY_TIMELY},
    {"14 days and 1 s", "2026-03-01T10:00:00Z", "2026-02-28T20:00:00Z", "2026-03-15T10:00:01Z",
     false, KV_LIABILITY_LATE},
    {"15 days", "2026-03-01T10:00:00Z", "2026-02-28T20:00:00Z", "2026-03-16T10:00:00Z", false,
     KV_LIABILITY_LATE},
    {"before the discovery", "2026-03-01T10:00:00Z", "2026-02-28T20:00:00Z", "2026-03-01T09:00:00Z",
     false, KV_LIABILITY_TIMELY},
    /* 13 calendar months after the debit */
    {"13 months exactly", "2026-03-05T00:00:00Z", "2025-02-10T12:00:00Z", "2026-03-10T12:00:00Z",
     false, KV_LIABILITY_TIMELY},
    {"13 months and 1 ms", "2026-03-05T00:00:00Z", "2025-02-10T12:00:00Z",
     "2026-03-10T12:00:00.001Z", false, KV_LIABILITY_OBJECTION_BARRED},
    {"13 months and a day", "2026-03-05T00:00:00Z", "2025-02-10T12:00:00Z", "2026-03-11T12:00:00Z",
     false, KV_LIABILITY_OBJECTION_BARRED},
    {"late but not barred", "2025-03-01T00:00:00Z", "2025-02-10T12:00:00Z", "2026-03-10T12:00:00Z",
     false, KV_LIABILITY_LATE},
    /* month-end clamping: 2025-01-31 + 13 months = 2026-02-31 -> 2026-02-28 */
    {"clamped to 28 Feb, on the limit", "2026-02-20T00:00:00Z", "2025-01-31T12:00:00Z",
     "2026-02-28T12:00:00Z", false, KV_LIABILITY_TIMELY},
    {"clamped to 28 Feb, 1 s past", "2026-02-20T00:00:00Z", "2025-01-31T12:00:00Z",
     "2026-02-28T12:00:01Z", false, KV_LIABILITY_OBJECTION_BARRED},
    {"clamped, 1 March is past", "2026-02-20T00:00:00Z", "2025-01-31T12:00:00Z",
     "2026-03-01T00:00:00Z", false, KV_LIABILITY_OBJECTION_BARRED},
    /* leap year: 2023-01-31 + 13 months = 2024-02-29 */
    {"clamped to 29 Feb in a leap year", "2024-02-20T00:00:00Z", "2023-01-31T08:00:00Z",
     "2024-02-29T08:00:00Z", false, KV_LIABILITY_TIMELY},
    /* an offset is converted to UTC first: 13:00+01:00 is 12:00Z, on the limit */
    {"offset converted to UTC", "2026-03-05T00:00:00Z", "2025-02-10T12:00:00Z",
     "2026-03-10T13:00:00+01:00", false, KV_LIABILITY_TIMELY},
    /* 8 weeks (56 x 24 h) for a payment authorised without its final amount
       (Visa/Dankort rules [3] §7.1) */
    {"8 weeks exactly", "2026-02-20T00:00:00Z", "2026-01-01T00:00:00Z", "2026-02-26T00:00:00Z",
     true, KV_LIABILITY_TIMELY},
    {"8 weeks and 1 s", "2026-02-20T00:00:00Z", "2026-01-01T00:00:00Z", "2026-02-26T00:00:01Z",
     true, KV_LIABILITY_OBJECTION_BARRED},
    {"same dates without the flag: 13 months", "2026-02-20T00:00:00Z", "2026-01-01T00:00:00Z",
     "2026-02-26T00:00:01Z", false, KV_LIABILITY_TIMELY},
    {"8 weeks, late within them", "2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z",
     "2026-02-20T00:00:00Z", true, KV_LIABILITY_LATE},
};

static void test_objection_boundaries(void **state)
{
    int failures = 0;
    (void)state;
    for (size_t i = 0; i < sizeof obj_rows / sizeof obj_rows[0]; i++) {
        const struct obj_row *o = &obj_rows[i];
        struct kv_liability_case c;
        struct kv_liability_txn t;
        enum kv_liability_objection got;
        memset(&c, 0, sizeof c);
        memset(&t, 0, sizeof t);
        assert_int_equal(kv_liability_time_parse(o->discovered, &c.discovered_at), 0);
        assert_int_equal(kv_liability_time_parse(o->objection, &c.objection_at), 0);
        assert_int_equal(kv_liability_time_parse(o->debited, &t.debited_at), 0);
        t.at = t.debited_at;
        t.final_amount_unknown = o->final_amount_unknown;
        got = kv_liability_objection_of(&c, &t, NULL);
        if (got != o->want) {
            print_error("row \"%s\": got %s, want %s\n", o->name, kv_liability_objection_name(got),
                        kv_liability_objection_name(o->want));
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* The 8-week rule through the whole engine: the rule names it, the cardholder bears all. */
static const struct row eight_week_rows[] = {
    {"8 weeks passed",
     CASE(
         "null", "'2026-03-02T09:00:00Z'", "", CARD("A", "pin-1", "null"),
         "{'id':'hotel','card':'A','at':'2026-01-01T09:00:00Z','debited_at':'2026-01-03T09:00:00Z',"
         "'amount':250000,'channel':'contact','final_amount_unknown':true,"
         "'verification':{'method':'offline_pin','proven':true}}"),
     "hotel barred 250000/0 PSD2 art. 77 barred | total 250000/0 barred"},
    {"within 8 weeks",
     CASE(
         "null", "'2026-02-20T09:00:00Z'", "", CARD("A", "pin-1", "null"),
         "{'id':'hotel','card':'A','at':'2026-01-01T09:00:00Z','debited_at':'2026-01-03T09:00:00Z',"
         "'amount':250000,'channel':'contact','final_amount_unknown':true,"
         "'verification':{'method':'offline_pin','proven':true}}"),
     /* objection 2026-02-20 is before the discovery (timely) and within 8 weeks of the debit
      * (limit 2026-01-03T09:00Z + 56 days = 2026-02-28T09:00Z): the table applies as usual */
     "hotel credential_used 37500/212500 § 100 stk. 3 timely | total 37500/212500 timely"},
};

static void test_eight_weeks(void **state)
{
    (void)state;
    run_rows(eight_week_rows, sizeof eight_week_rows / sizeof eight_week_rows[0], 0);
}

struct months_row {
    const char *from;
    int months;
    const char *want;
};

static void test_add_months(void **state)
{
    static const struct months_row rows[] = {
        {"2025-01-31T12:00:00Z", 13, "2026-02-28T12:00:00Z"},
        {"2023-01-31T00:00:00Z", 13, "2024-02-29T00:00:00Z"},
        {"2025-02-10T12:00:00Z", 13, "2026-03-10T12:00:00Z"},
        {"2025-12-31T23:59:59Z", 13, "2027-01-31T23:59:59Z"},
        {"2025-03-31T06:00:00Z", 13, "2026-04-30T06:00:00Z"},
        {"2099-12-15T00:00:00Z", 1, "2100-01-15T00:00:00Z"},
        {"2099-01-29T00:00:00Z", 13, "2100-02-28T00:00:00Z"}, /* 2100 is not a leap year */
        {"1999-01-29T00:00:00Z", 13, "2000-02-29T00:00:00Z"}, /* 2000 is */
        {"1960-05-31T10:00:00Z", 1, "1960-06-30T10:00:00Z"},  /* before the epoch */
    };
    int failures = 0;
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int64_t t;
        char got[32];
        assert_int_equal(kv_liability_time_parse(rows[i].from, &t), 0);
        kv_liability_time_format(kv_liability_add_months(t, rows[i].months), got);
        if (strcmp(got, rows[i].want) != 0) {
            print_error("%s + %d months: got %s, want %s\n", rows[i].from, rows[i].months, got,
                        rows[i].want);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

struct time_row {
    const char *in;
    int rc;
    long long want_ms;
};

static void test_time_parse(void **state)
{
    static const struct time_row rows[] = {
        {"1970-01-01T00:00:00Z", 0, 0},
        {"2026-03-01T10:00:00Z", 0, 1772359200000LL},
        {"2026-03-01t10:00:00z", 0, 1772359200000LL},
        {"2026-03-01T11:00:00+01:00", 0, 1772359200000LL},
        {"2026-03-01T09:30:00-00:30", 0, 1772359200000LL},
        {"2026-03-01T10:00:00.5Z", 0, 1772359200500LL},
        {"2026-03-01T10:00:00.123456789Z", 0, 1772359200123LL},
        {"1969-12-31T23:59:59Z", 0, -1000},
        {"2024-02-29T00:00:00Z", 0, 1709164800000LL},
        {"2025-02-29T00:00:00Z", KV_ERR_FORMAT, 0},
        {"2026-13-01T00:00:00Z", KV_ERR_FORMAT, 0},
        {"2026-00-01T00:00:00Z", KV_ERR_FORMAT, 0},
        {"2026-03-01T24:00:00Z", KV_ERR_FORMAT, 0},
        {"2026-03-01T10:60:00Z", KV_ERR_FORMAT, 0},
        {"2026-03-01T10:00:60Z", KV_ERR_FORMAT, 0},
        {"2026-03-01T10:00:00", KV_ERR_FORMAT, 0},
        {"2026-03-01 10:00:00Z", KV_ERR_FORMAT, 0},
        {"2026-03-01T10:00:00.Z", KV_ERR_FORMAT, 0},
        {"2026-03-01T10:00:00.1234567890Z", KV_ERR_FORMAT, 0},
        {"2026-03-01T10:00:00+0100", KV_ERR_FORMAT, 0},
        {"2026-03-01T10:00:00Zjunk", KV_ERR_FORMAT, 0},
        {"2026-3-01T10:00:00Z", KV_ERR_FORMAT, 0},
        {"", KV_ERR_FORMAT, 0},
    };
    int failures = 0;
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int64_t t = 0;
        int rc = kv_liability_time_parse(rows[i].in, &t);
        if (rc != rows[i].rc || (rc == 0 && t != rows[i].want_ms)) {
            print_error("\"%s\": got rc %d ms %lld, want rc %d ms %lld\n", rows[i].in, rc,
                        (long long)t, rows[i].rc, rows[i].want_ms);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* ---- 5. the examples of the public sources (src/RULES.md, Sources) ---- */

/*
 * Forbrugerombudsmanden [1] ("Hvis dit betalingskort bliver misbrugt"):
 *  a "Du hæfter selv med op til 375 kr., hvis ... PIN-koden ... er brugt": a 1,000 kr ATM
 *    withdrawal with the PIN -> 375 kr cardholder, 625 kr issuer.
 *  b "op til 8.000 kr., hvis ... du ikke har givet besked ... snarest muligt": 12,000 kr with the
 *    PIN and a late notification -> 8,000 / 4,000.
 *  c "Du hæfter ubegrænset, hvis ... du har givet ... PIN-koden ... til misbrugeren, og du var
 *    eller burde være klar over ... risiko": 12,000 kr -> all 12,000.
 *  d "Udstederen ... hæfter for al misbrug, der er foretaget, efter du har givet besked": a
 *    payment after the block request -> 0.
 *  e "Har du ikke godkendt din betaling med to elementer ... hæfter du ikke": an online purchase
 *    with an SMS code only -> 0.
 *  f Contactless "banken som udgangspunkt hæfter ... kun selv hæfte ... hvis du har handlet
 *    svigagtigt": 300 kr contactless without PIN -> 0; the same with fraud -> 300 kr.
 *  g Mobile: "Tastaturlås ... ikke ... særlig, personlig kode": keypad lock -> 0; a code entered
 *    for each purchase -> up to 375 kr of a 500 kr purchase.
 *  h "senest klage inden for 13 måneder. Overskrider du den frist, går dine penge helt tabt":
 *    debited 2025-01-15, objection 2026-03-02 (> 2026-02-15) -> barred, all the cardholder's;
 *    "Klager du inden for 14 dage": discovered 2026-03-01, objection 2026-03-20 -> late, amounts
 *    unchanged (375 kr).
 */
static const struct row ombudsman_rows[] = {
    {"001 a 375 kr", STD("", CARD_A, TX("t1", "A", EVE, 100000, "atm", "", OPIN)),
     "t1 credential_used 37500/62500 § 100 stk. 3 timely | total 37500/62500 timely"},
    {"001 b 8,000 kr",
     STD("'late_notification':true", CARD_A, TX("t1", "A", EVE, 1200000, "atm", "", OPIN)),
     "t1 negligent 800000/400000 § 100 stk. 4 timely | total 800000/400000 timely"},
    {"001 c unlimited",
     STD("'credential_handed_over':true,'risk_foreseeable':true", CARD_A,
         TX("t1", "A", EVE, 1200000, "atm", "", OPIN)),
     "t1 credential_disclosed 1200000/0 § 100 stk. 5 timely | total 1200000/0 timely"},
    {"001 d after notification",
     STD("", CARD_A, TX("t1", "A", "2026-03-01T11:05:00Z", 1200000, "atm", "", OPIN)),
     "t1 after_notification 0/1200000 § 100 stk. 6 nr. 1 timely | total 0/1200000 timely"},
    {"001 e one element only",
     STD("", CARD_A,
         TX("t1", "A", EVE, 450000, "ecommerce", "",
            "'method':'sca','factors':['sms_otp'],'proven':true")),
     "t1 unauthenticated 0/450000 § 100 stk. 1 timely | total 0/450000 timely"},
    {"001 f contactless", STD("", CARD_A, TX("t1", "A", EVE, 30000, "contactless", "", NONE)),
     "t1 unauthenticated 0/30000 § 100 stk. 1 timely | total 0/30000 timely"},
    {"001 f contactless with fraud",
     STD("'cardholder_fraud':true", CARD_A, TX("t1", "A", EVE, 30000, "contactless", "", NONE)),
     "t1 fraud 30000/0 § 100 stk. 2 timely | total 30000/0 timely"},
    {"001 g keypad lock",
     STD("", CARD_A,
         TX("t1", "A", EVE, 50000, "mobile", "", "'method':'mobile_code','proven':true")),
     "t1 unauthenticated 0/50000 § 100 stk. 1 timely | total 0/50000 timely"},
    {"001 g code for each purchase",
     STD("", CARD_A,
         TX("t1", "A", EVE, 50000, "mobile", "",
            "'method':'mobile_code','proven':true,'per_transaction_code':true")),
     "t1 credential_used 37500/12500 § 100 stk. 3 timely | total 37500/12500 timely"},
    {"001 h 13 months passed",
     STD("", CARD_A, TXD("t1", "A", "2025-01-15T12:00:00Z", "2025-01-15T12:00:00Z", 100000, OPIN)),
     "t1 barred 100000/0 § 97 barred | total 100000/0 barred"},
    {"001 h after 14 days: late",
     CASE(NOTI, "'2026-03-20T09:00:00Z'", "", CARD_A, TX("t1", "A", EVE, 100000, "atm", "", OPIN)),
     "t1 credential_used 37500/62500 § 100 stk. 3 late | total 37500/62500 late"},
};

static void test_ombudsman_examples(void **state)
{
    (void)state;
    run_rows(ombudsman_rows, sizeof ombudsman_rows / sizeof ombudsman_rows[0], 0);
}

/*
 * Visa/Dankort rules [3] §10 (a savings bank's card rules):
 *  10.1 "Det er pengeinstituttet, der skal bevise": a PIN the bank claims but cannot prove ->
 *       the bank covers the loss (0 for the cardholder).
 *  10.2 "op til 375 kr. i alt, hvis flere af dine kort med samme personlige
 *       sikkerhedsforanstaltning ... bliver misbrugt i forbindelse med samme hændelse. Det
 *       forudsætter dog, at alle kort er spærret samtidigt": Visa/Dankort 2,000 kr at 20:00 and
 *       Mastercard 3,000 kr at 21:00, one PIN, blocked together -> 375 kr in all, taken from the
 *       first payment; blocked at different times -> 375 kr per card (750 kr).
 *  10.2 "højst betale 8.000 kr. i alt, hvis flere af dine kort med samme sikkerhedsforanstaltning"
 *       with a late notification: 6,000 + 5,000 kr -> 6,000 + 2,000 = 8,000 kr.
 *  10.3 "den ubegrænsede hæftelse ... også for hvert kort": handed over with foreseeable risk,
 *       two cards -> 2,000 + 3,000 = 5,000 kr, no cap.
 *  10.3 "med forsæt har undladt at opfylde dine forpligtelser ... at spærre kortet": intentional
 *       breach -> all.
 *  10.4 after the bank was told to block -> 0; no way to block because of the bank -> 0; loss not
 *       detectable before the use -> 0; the bank's staff -> 0; the payee knew -> 0; the bank does
 *       not require the credential -> 0 "medmindre du har handlet svigagtigt" (fraud -> all);
 *       "kun ... hvis transaktionen er korrekt registreret og bogført" -> not booked: 0.
 */
#define CARD_VISA CARD("visa", "pin-1", NOTI)
#define CARD_MC CARD("mc", "pin-1", NOTI)
#define TWO_CARDS(a1, a2, verif)                                                                   \
    TX("v1", "visa", EVE, a1, "contact", "", verif)                                                \
    "," TX("m1", "mc", "2026-02-28T21:00:00Z", a2, "contact", "", verif)

static const struct row card_rules_rows[] = {
    {"003 10.1 burden of proof",
     STD("", CARD_A, TX("t1", "A", EVE, 300000, "contact", "", "'method':'offline_pin'")),
     "t1 " UNAUTH},
    {"003 10.2 375 kr for several cards blocked together",
     STD("", CARD_VISA "," CARD_MC, TWO_CARDS(200000, 300000, PIN)),
     "v1 credential_used 37500/162500 § 100 stk. 3 timely; "
     "m1 credential_used 0/300000 § 100 stk. 3 timely | total 37500/462500 timely"},
    {"003 10.2 not blocked together: 375 kr each",
     STD("", CARD_VISA "," CARD("mc", "pin-1", "'2026-03-02T08:00:00Z'"),
         TWO_CARDS(200000, 300000, PIN)),
     "v1 credential_used 37500/162500 § 100 stk. 3 timely; "
     "m1 credential_used 37500/262500 § 100 stk. 3 timely | total 75000/425000 timely"},
    {"003 10.2 8,000 kr in all",
     STD("'late_notification':true", CARD_VISA "," CARD_MC, TWO_CARDS(600000, 500000, PIN)),
     "v1 negligent 600000/0 § 100 stk. 4 timely; "
     "m1 negligent 200000/300000 § 100 stk. 4 timely | total 800000/300000 timely"},
    {"003 10.3 full loss for each card",
     STD("'credential_handed_over':true,'risk_foreseeable':true", CARD_VISA "," CARD_MC,
         TWO_CARDS(200000, 300000, PIN)),
     "v1 credential_disclosed 200000/0 § 100 stk. 5 timely; "
     "m1 credential_disclosed 300000/0 § 100 stk. 5 timely | total 500000/0 timely"},
    {"003 10.3 intentionally did not block",
     STD("'intentional_breach':true", CARD_A, TX("t1", "A", EVE, 300000, "contact", "", PIN)),
     "t1 intentional_breach 300000/0 § 100 stk. 2 timely | total 300000/0 timely"},
    {"003 10.4 after the block request",
     STD("", CARD_A, TX("t1", "A", "2026-03-01T13:00:00Z", 300000, "contact", "", PIN)),
     "t1 after_notification 0/300000 § 100 stk. 6 nr. 1 timely | total 0/300000 timely"},
    {"003 10.4 could not block",
     STD("'no_notification_channel':true", CARD_A, TX("t1", "A", EVE, 300000, "contact", "", PIN)),
     "t1 no_channel 0/300000 § 100 stk. 6 nr. 3 timely | total 0/300000 timely"},
    {"003 10.4 not detectable",
     STD("'undetectable_before_use':true", CARD_A, TX("t1", "A", EVE, 300000, "contact", "", PIN)),
     "t1 undetectable 0/300000 § 100 stk. 8 timely | total 0/300000 timely"},
    {"003 10.4 bank staff",
     STD("'issuer_staff_caused':true", CARD_A, TX("t1", "A", EVE, 300000, "contact", "", PIN)),
     "t1 issuer_staff 0/300000 § 100 stk. 6 nr. 2 timely | total 0/300000 timely"},
    {"003 10.4 payee knew",
     STD("'payee_knew':true", CARD_A, TX("t1", "A", EVE, 300000, "contact", "", PIN)),
     "t1 payee_knew 0/300000 § 100 stk. 9 timely | total 0/300000 timely"},
    {"003 10.4 credential not required",
     STD("", CARD_A, TX("t1", "A", EVE, 300000, "ecommerce", "", NONE ",'sca_required':false")),
     "t1 sca_not_required 0/300000 § 100 stk. 7 timely | total 0/300000 timely"},
    {"003 10.4 credential not required, but fraud",
     STD("'cardholder_fraud':true", CARD_A,
         TX("t1", "A", EVE, 300000, "ecommerce", "", NONE ",'sca_required':false")),
     "t1 fraud 300000/0 § 100 stk. 2 timely | total 300000/0 timely"},
    {"003 10.4 not correctly booked",
     STD("", CARD_A, TX("t1", "A", EVE, 300000, "contact", ",'booked_correctly':false", PIN)),
     "t1 not_booked 0/300000 § 100 stk. 1 timely | total 0/300000 timely"},
};

static void test_card_rules_examples(void **state)
{
    (void)state;
    run_rows(card_rules_rows, sizeof card_rules_rows / sizeof card_rules_rows[0], 0);
}

/* ---- 6. the decoder's contract ---- */

struct bad_row {
    const char *json;
    const char *want; /* the start of the message, naming the field */
};

#define GOOD_TX TX("t1", "A", EVE, 100, "contact", "", PIN)

static void test_decoder_errors(void **state)
{
    static const struct bad_row rows[] = {
        {"not json", "case: not valid JSON"},
        {"[1,2]", "case: must be a JSON object"},
        {"{'currency':'DKK'} trailing", "case: not valid JSON"},
        {STD("", CARD_A, GOOD_TX) "x", "case: not valid JSON"},
        {"{'currency':'DKK','currency':'DKK'}", "case: not valid JSON"}, /* duplicate key */
        {"{'currency':'DKK','discovered_at':" DISC ",'objection_at':" OBJ
         ",'cards':[],'transactions':[],'foo':1}",
         "foo: unknown field"},
        {"{'discovered_at':" DISC ",'objection_at':" OBJ ",'cards':[],'transactions':[]}",
         "currency: missing required field"},
        {"{'currency':'EUR','discovered_at':" DISC ",'objection_at':" OBJ
         ",'cards':[],'transactions':[]}",
         "currency: \"EUR\" is not supported"},
        {"{'currency':'DKK','objection_at':" OBJ ",'cards':[],'transactions':[]}",
         "discovered_at: missing required field"},
        {"{'currency':'DKK','discovered_at':" DISC ",'cards':[],'transactions':[]}",
         "objection_at: missing required field"},
        {"{'currency':'DKK','discovered_at':" DISC ",'objection_at':" OBJ ",'transactions':[]}",
         "cards: missing required field"},
        {"{'currency':'DKK','discovered_at':" DISC ",'objection_at':" OBJ ",'cards':[]}",
         "transactions: missing required field"},
        {"{'currency':'DKK','discovered_at':'yesterday','objection_at':" OBJ
         ",'cards':[],'transactions':[]}",
         "discovered_at: must be an RFC 3339 time"},
        {"{'currency':'DKK','discovered_at':" DISC ",'objection_at':null,'cards':[],"
         "'transactions':[]}",
         "objection_at: must be an RFC 3339 time, not null"},
        {STD("'cardholder_fraud':1", CARD_A, GOOD_TX),
         "facts.cardholder_fraud: must be true or false"},
        {STD("'lost':true", CARD_A, GOOD_TX), "facts: unknown field \"lost\""},
        {STD("", "{'credential':'pin-1'}", GOOD_TX), "cards[0].id: missing required field"},
        {STD("", CARD_A ",{'id':'A'}", GOOD_TX), "cards[1].id: duplicate card id \"A\""},
        {STD("", "{'id':'A','pin':'1234'}", GOOD_TX), "cards[0]: unknown field \"pin\""},
        {STD("", CARD_A,
             "{'id':'t1','card':'A','at':'" EVE "','debited_at':'" EVE
             "','channel':'contact','verification':{" PIN "}}"),
         "transactions[0].amount: missing required field"},
        {STD("", CARD_A, TX("t1", "A", EVE, -5, "contact", "", PIN)),
         "transactions[0].amount: must be an integer amount in øre"},
        {STD("", CARD_A, TX("t1", "A", EVE, 375.0, "contact", "", PIN)),
         "transactions[0].amount: must be an integer amount in øre"},
        {STD("", CARD_A, TX("t1", "A", EVE, '375', "contact", "", PIN)),
         "transactions[0].amount: must be an integer amount in øre"},
        {STD("", CARD_A, TX("t1", "A", EVE, 100000000000000, "contact", "", PIN)),
         "transactions[0].amount: must be an integer amount in øre"},
        {STD("", CARD_A, TX("t1", "B", EVE, 100, "contact", "", PIN)),
         "transactions[0].card: no card \"B\" in cards"},
        {STD("", CARD_A, GOOD_TX "," GOOD_TX),
         "transactions[1].id: duplicate transaction id \"t1\""},
        {STD("", CARD_A, TX("t1", "A", EVE, 100, "carrier_pigeon", "", PIN)),
         "transactions[0].channel: unknown value \"carrier_pigeon\""},
        {STD("", CARD_A, TX("t1", "A", EVE, 100, "contact", "", "'method':'telepathy'")),
         "transactions[0].verification.method: unknown value \"telepathy\""},
        {STD("", CARD_A, TX("t1", "A", EVE, 100, "contact", "", "'proven':true")),
         "transactions[0].verification.method: missing required field"},
        {STD("", CARD_A, TX("t1", "A", EVE, 100, "contact", "", PIN ",'pin':'1234'")),
         "transactions[0].verification: unknown field \"pin\""},
        {STD("", CARD_A,
             TX("t1", "A", EVE, 100, "contact", "", "'method':'sca','factors':['sms_otp','face']")),
         "transactions[0].verification.factors[1]: unknown factor type \"face\""},
        {STD("", CARD_A,
             TX("t1", "A", EVE, 100, "contact", "", "'method':'sca','factors':'sms_otp'")),
         "transactions[0].verification.factors: must be an array"},
        {STD("", CARD_A, TX("t1", "A", EVE, 100, "contact", ",'merchant':'x'", PIN)),
         "transactions[0]: unknown field \"merchant\""},
        {STD("", CARD_A, TX("t1", "A", EVE, 100, "contact", ",'final_amount_unknown':'yes'", PIN)),
         "transactions[0].final_amount_unknown: must be true or false"},
        {STD("", CARD_A, TX("t1", "A", EVE, 100, "contact", ",'evidence':''", PIN)),
         "transactions[0].evidence: must not be empty"},
        {STD("", CARD_A, TX("t\\u0001", "A", EVE, 100, "contact", "", PIN)),
         "transactions[0].id: contains a control character"},
        {STD("", CARD_A,
             "{'id':'t1','card':'A','at':'" EVE "','debited_at':'2026-02-30T00:00:00Z',"
             "'amount':1,'channel':'contact','verification':{" PIN "}}"),
         "transactions[0].debited_at: must be an RFC 3339 time"},
        {STD("", CARD_A, "7"), "transactions[0]: must be an object"},
    };
    int failures = 0;
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char why[512];
        char *text = dq(rows[i].json);
        struct kv_liability_case *c = NULL;
        int r = kv_liability_case_parse(text, strlen(text), &c, why, sizeof why);
        if (r != KV_ERR_JSON || c != NULL ||
            strncmp(why, rows[i].want, strlen(rows[i].want)) != 0) {
            print_error("case %s\n  got  rc %d: %s\n  want rc %d: %s...\n", text, r, why,
                        KV_ERR_JSON, rows[i].want);
            failures++;
        }
        kv_liability_case_free(c);
        free(text);
    }
    assert_int_equal(failures, 0);
}

/* Defaults of src/RULES.md §2 and the accepted nulls. */
static void test_decoder_defaults(void **state)
{
    struct kv_liability_case *c =
        parse_ok("{'currency':'DKK','discovered_at':" DISC ",'notified_at':null,'objection_at':" OBJ
                 ",'cards':[{'id':'A','credential':null,'blocked_at':null}],'transactions':["
                 "{'id':'t1','card':'A','at':'" EVE "','debited_at':'" EVE "','amount':0,"
                 "'channel':'magstripe','evidence':null,'verification':{'method':'signature'}}]}");
    const struct kv_liability_txn *t = &c->txns[0];
    (void)state;
    assert_false(c->notified);
    assert_false(c->facts.cardholder_fraud);
    assert_false(c->facts.payee_knew);
    assert_false(c->cards[0].blocked);
    assert_string_equal(c->cards[0].credential, "");
    assert_true(t->booked_correctly);
    assert_false(t->verification.proven);
    assert_true(t->verification.sca_required);
    assert_false(t->verification.per_transaction_code);
    assert_int_equal(t->verification.factors, 0);
    assert_false(t->has_evidence);
    assert_false(t->final_amount_unknown);
    assert_int_equal(t->channel, KV_LIABILITY_CHANNEL_MAGSTRIPE);
    kv_liability_case_free(c);
}

/* The src/RULES.md §2 example case gives the src/RULES.md §2 example result, field for field. */
static void test_rules_example(void **state)
{
    static const char example[] =
        "{'currency':'DKK','discovered_at':'2026-03-01T10:00:00Z',"
        "'notified_at':'2026-03-01T11:00:00Z','objection_at':'2026-03-02T09:00:00Z',"
        "'facts':{'cardholder_fraud':false,'intentional_breach':false,'late_notification':false,"
        "'credential_handed_over':false,'risk_foreseeable':false,'gross_negligence':false,"
        "'issuer_staff_caused':false,'no_notification_channel':false,"
        "'undetectable_before_use':false,'payee_knew':false},"
        "'cards':[{'id':'A','credential':'pin-1','blocked_at':'2026-03-01T11:00:00Z'}],"
        "'transactions':[{'id':'t1','card':'A','at':'2026-02-28T20:00:00Z',"
        "'debited_at':'2026-02-28T20:00:00Z','amount':300000,'booked_correctly':true,"
        "'channel':'contact','verification':{'method':'offline_pin',"
        "'factors':['password','sms_otp'],'proven':true,'sca_required':true,"
        "'per_transaction_code':true}}]}";
    static const char want[] =
        "{'currency':'DKK','total':300000,'cardholder':37500,'issuer':262500,"
        "'objection':'timely','transactions':[{'id':'t1','class':'credential_used',"
        "'cardholder':37500,'issuer':262500,'rule':'§ 100 stk. 3','objection':'timely'}]}";
    struct kv_liability_case *c = parse_ok(example);
    struct kv_liability_result *res = NULL;
    json_t *got = NULL, *exp;
    char *w = dq(want), *g, *e;
    (void)state;
    assert_int_equal(kv_liability_assess(c, NULL, NULL, &res), 0);
    assert_int_equal(kv_liability_result_to_json(c, res, &got), 0);
    exp = json_loads(w, 0, NULL);
    assert_non_null(exp);
    /* same fields and values, in the order of src/RULES.md */
    g = json_dumps(got, JSON_COMPACT | JSON_PRESERVE_ORDER);
    e = json_dumps(exp, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_non_null(g);
    assert_non_null(e);
    if (!json_equal(got, exp) || strcmp(g, e) != 0) {
        print_error("got  %s\nwant %s\n", g, e);
        fail();
    }
    free(e);
    free(g);
    free(w);
    json_decref(exp);
    json_decref(got);
    kv_liability_result_free(res);
    kv_liability_case_free(c);
}

/* ---- 7. money and text ---- */

struct money_row {
    long long ore;
    enum kv_liability_lang lang;
    const char *want;
};

static void test_money_format(void **state)
{
    static const struct money_row rows[] = {
        {0, KV_LIABILITY_LANG_DA, "0,00 kr"},
        {5, KV_LIABILITY_LANG_DA, "0,05 kr"},
        {37500, KV_LIABILITY_LANG_DA, "375,00 kr"},
        {123456, KV_LIABILITY_LANG_DA, "1.234,56 kr"},
        {800000, KV_LIABILITY_LANG_DA, "8.000,00 kr"},
        {100000000, KV_LIABILITY_LANG_DA, "1.000.000,00 kr"},
        {-262550, KV_LIABILITY_LANG_DA, "-2.625,50 kr"},
        {123456, KV_LIABILITY_LANG_EN, "1,234.56 kr"},
        {800000, KV_LIABILITY_LANG_EN, "8,000.00 kr"},
        {99999, KV_LIABILITY_LANG_EN, "999.99 kr"},
        {10000000000000LL, KV_LIABILITY_LANG_DA, "100.000.000.000,00 kr"},
    };
    int failures = 0;
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char out[48];
        kv_liability_money_format(rows[i].ore, rows[i].lang, out);
        if (strcmp(out, rows[i].want) != 0) {
            print_error("%lld øre: got \"%s\", want \"%s\"\n", rows[i].ore, out, rows[i].want);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* The human statement names the rule and the amounts; a PAN used as card id is masked. */
static void test_text_and_svg_output(void **state)
{
    struct kv_liability_case *c =
        parse_ok(STD("", CARD("4761739001010119", "pin-1", NOTI),
                     TX("t<1>", "4761739001010119", EVE, 300000, "contact", "", PIN)));
    struct kv_liability_result *res = NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *f;
    (void)state;
    assert_int_equal(kv_liability_assess(c, NULL, NULL, &res), 0);

    f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(kv_liability_write_text(f, c, res, KV_LIABILITY_LANG_DA), 0);
    fclose(f);
    if (strstr(buf, "§ 100 stk. 3") == NULL || strstr(buf, "Kortholder 375,00 kr") == NULL ||
        strstr(buf, "udsteder 2.625,00 kr") == NULL || strstr(buf, "476173******0119") == NULL ||
        strstr(buf, "4761739001010119") != NULL || strstr(buf, "I alt 3.000,00 kr") == NULL) {
        print_error("Danish text:\n%s\n", buf);
        fail();
    }
    free(buf);

    buf = NULL;
    f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(kv_liability_write_text(f, c, res, KV_LIABILITY_LANG_EN), 0);
    fclose(f);
    if (strstr(buf, "Cardholder 375.00 kr, issuer 2,625.00 kr") == NULL ||
        strstr(buf, "Total 3,000.00 kr") == NULL) {
        print_error("English text:\n%s\n", buf);
        fail();
    }
    free(buf);

    buf = NULL;
    f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(kv_liability_write_svg(f, c, res, KV_LIABILITY_LANG_DA), 0);
    fclose(f);
    /* the id "t<1>" is escaped, the PAN masked, one mark */
    assert_non_null(strstr(buf, "t&lt;1&gt;"));
    assert_null(strstr(buf, "t<1>"));
    assert_null(strstr(buf, "4761739001010119"));
    assert_non_null(strstr(buf, "class=\"mark credential_used\""));
    assert_null(strstr(strstr(buf, "class=\"mark ") + 1, "class=\"mark "));
    free(buf);

    kv_liability_result_free(res);
    kv_liability_case_free(c);
}

/* Issue 11: a record's factors are read from "proven_factors" when it has them. */
static void test_record_proven_factors(void **state)
{
    struct kv_liability_txn txn;
    struct kv_liability_verification v;
    json_t *body;
    (void)state;
    memset(&txn, 0, sizeof(txn));
    txn.amount = 5000;
    body = json_loads("{\"type\":\"authorization\",\"request\":{\"amount\":5000},"
                      "\"response\":{\"decision\":\"approve\"},\"verification\":{"
                      "\"method\":\"sca\",\"factors\":[\"pin_offline\",\"chip_cryptogram\"],"
                      "\"proven\":false,\"sca_required\":true,\"per_transaction_code\":false,"
                      "\"proven_factors\":[\"chip_cryptogram\"],"
                      "\"asserted_factors\":[\"pin_offline\"]}}",
                      0, NULL);
    assert_non_null(body);
    memset(&v, 0, sizeof(v));
    assert_int_equal(kv_liability_verification_from_record(body, &txn, &v), 0);
    assert_int_equal(v.method, KV_LIABILITY_METHOD_SCA);
    assert_false(v.proven);
    assert_int_equal(v.factors, 1u << KV_LIABILITY_FACTOR_CHIP_CRYPTOGRAM);
    json_decref(body);
    /* an older record without proven_factors: its "factors" as before */
    body = json_loads("{\"type\":\"authorization\",\"request\":{\"amount\":5000},"
                      "\"response\":{\"decision\":\"approve\"},\"verification\":{"
                      "\"method\":\"online_pin\",\"factors\":[\"pin_online\"],\"proven\":true}}",
                      0, NULL);
    memset(&v, 0, sizeof(v));
    assert_int_equal(kv_liability_verification_from_record(body, &txn, &v), 0);
    assert_true(v.proven);
    assert_int_equal(v.factors, 1u << KV_LIABILITY_FACTOR_PIN_ONLINE);
    json_decref(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decision_table),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_burden_of_proof),
        cmocka_unit_test(test_evidence_status_and_store_failure),
        cmocka_unit_test(test_evidence_store),
        cmocka_unit_test(test_objection_boundaries),
        cmocka_unit_test(test_eight_weeks),
        cmocka_unit_test(test_add_months),
        cmocka_unit_test(test_time_parse),
        cmocka_unit_test(test_ombudsman_examples),
        cmocka_unit_test(test_card_rules_examples),
        cmocka_unit_test(test_decoder_errors),
        cmocka_unit_test(test_decoder_defaults),
        cmocka_unit_test(test_rules_example),
        cmocka_unit_test(test_money_format),
        cmocka_unit_test(test_text_and_svg_output),
        cmocka_unit_test(test_record_proven_factors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Processing restrictions (apdu/restrict.h) and the cash conditions of CVM
 * processing (apdu/cvm.h): expected values worked out by hand from EMV Book 3
 * §10.4.2 (application usage control: cash needs the cash bit; a purchase of
 * goods the goods bit; a purchase of services the services bit; a cashback
 * also the cashback bit; each domestic when 5F28 = 9F1A, else international)
 * and Book 3 Annex C3 (CVM condition codes 01 unattended cash, 02 not
 * unattended cash / not manual cash / not cashback, 04 manual cash), with
 * transaction types 9C 01 (cash) and 17 (cash disbursement) both cash.
 *
 * AUC (9F07) bits, byte 1: 80 domestic cash, 40 international cash, 20
 * domestic goods, 10 international goods, 08 domestic services, 04
 * international services, 02 ATMs, 01 other terminals; byte 2: 80 domestic
 * cashback, 40 international cashback. TVR byte 2 bit 10: requested service
 * not allowed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "apdu/cvm.h"
#include "apdu/restrict.h"
#include "apdu/termcfg.h"
#include "src/base/hex.h"

struct auc_row {
    const char *why;
    const char *auc, *country; /* hex; country NULL: 5F28 absent */
    uint8_t terminal_type, txn_type, services;
    uint64_t amount_other;
    uint8_t tvr2; /* TVR byte 2 expected */
};

static const struct auc_row auc_rows[] = {
    {"domestic goods purchase, goods bit", "2100", "0208", 22, 0, 0, 0, 0x00},
    {"domestic services purchase, goods bit only", "2100", "0208", 22, 0, 1, 0, 0x10},
    {"domestic services purchase, services bit", "0900", "0208", 22, 0, 1, 0, 0x00},
    {"domestic goods purchase, services bit only", "0900", "0208", 22, 0, 0, 0, 0x10},
    {"domestic goods purchase, international goods bit only", "1100", "0208", 22, 0, 0, 0, 0x10},
    {"international goods purchase, international goods bit", "1100", "0752", 22, 0, 0, 0, 0x00},
    {"international services purchase, international goods bit only", "1100", "0752", 22, 0, 1, 0,
     0x10},
    {"international services purchase, international services bit", "0500", "0752", 22, 0, 1, 0,
     0x00},
    {"international services purchase, domestic services bit only", "0900", "0752", 22, 0, 1, 0,
     0x10},
    {"goods and services bits, either purchase", "2D00", "0208", 22, 0, 1, 0, 0x00},
    {"cash 01 at an ATM, domestic cash", "8200", "0208", 14, 1, 0, 0, 0x00},
    {"cash 17 at an ATM, domestic cash", "8200", "0208", 14, 17, 0, 0, 0x00},
    {"cash 17 at an ATM, international cash only, domestic card", "4200", "0208", 14, 17, 0, 0,
     0x10},
    {"cash 17 at an ATM, international cash, foreign card", "4200", "0752", 14, 17, 0, 0, 0x00},
    {"cash 17 at an ATM, goods bits only", "3E00", "0208", 14, 17, 0, 0, 0x10},
    {"cash 01 at an ATM, goods bits only", "3E00", "0208", 14, 1, 0, 0, 0x10},
    {"cash 17 over the counter, domestic cash", "8100", "0208", 22, 17, 0, 0, 0x00},
    {"cash: the services flag plays no part", "8200", "0208", 14, 1, 1, 0, 0x00},
    {"cashback 09, goods and cashback", "2180", "0208", 22, 9, 0, 100, 0x00},
    {"cashback 09, goods without cashback", "2100", "0208", 22, 9, 0, 100, 0x10},
    {"cashback 09 of services, services and cashback", "0980", "0208", 22, 9, 1, 100, 0x00},
    {"cashback 09 of goods, services and cashback only", "0980", "0208", 22, 9, 0, 100, 0x10},
    {"cashback 09, international cashback, foreign card", "1140", "0752", 22, 9, 0, 100, 0x00},
    {"cashback 09, domestic cashback only, foreign card", "1180", "0752", 22, 9, 0, 100, 0x10},
    {"purchase 00 with an amount other is a cashback", "2100", "0208", 22, 0, 0, 500, 0x10},
    {"refund 20: only the ATM / other-terminal bit", "0100", "0208", 22, 20, 0, 0, 0x00},
    {"refund 20 at a POS without the other-terminal bit", "FE00", "0208", 22, 20, 0, 0, 0x10},
    {"no 5F28: only the ATM / other-terminal bit", "0100", NULL, 22, 0, 1, 0, 0x00},
};

/*
 * Book 4 Annex A1: terminal types 14, 15 and 16 are ATMs only with "cash" in
 * 9F40 byte 1 (bit 8); the rows above run with it, these without it.
 */
static const struct auc_row no_cash_rows[] = {
    {"type 14 without cash capability is no ATM: ATM-only card", "0200", NULL, 14, 0, 0, 0, 0x10},
    {"type 14 without cash capability is no ATM: other-terminal card", "0100", NULL, 14, 1, 0, 0,
     0x00},
    {"type 16 without cash capability is no ATM: other-terminal card", "0100", NULL, 16, 0, 0, 0,
     0x00},
};

/* ...and these with it: the ATM bit decides at 14-16 only. */
static const struct auc_row cash_rows[] = {
    {"type 16 with cash capability is an ATM: other-terminal card", "0100", NULL, 16, 1, 0, 0,
     0x10},
    {"type 15 with cash capability is an ATM: ATM card", "0200", NULL, 15, 1, 0, 0, 0x00},
    {"type 22 with cash capability is no ATM: ATM-only card", "0200", NULL, 22, 1, 0, 0, 0x10},
    {"type 25 with cash capability is no ATM: other-terminal card", "0100", NULL, 25, 1, 0, 0,
     0x00},
    /* public: openemv/emv-utils tests/emv_processing_restrictions_test.c "ATM not allowed" */
    {"emv-utils: type 15 with cash, AUC all but ATMs", "FDC0", NULL, 15, 0, 0, 0, 0x10},
};

static void run_auc_rows(const struct auc_row *rows, size_t n, int cash_capability)
{
    for (size_t i = 0; i < n; i++) {
        const struct auc_row *r = &rows[i];
        uint8_t auc[2], country[2], tvr[5] = {0};
        kv_restrict_card rc;
        kv_terminal t;
        memset(&rc, 0, sizeof(rc));
        assert_int_equal(kv_terminal_init(&t), 0);
        assert_int_equal(t.services, 0); /* goods by default */
        t.date = 250131;
        t.country = 208;
        t.terminal_type = r->terminal_type;
        if (cash_capability)
            t.add_capabilities[0] |= 0x80; /* 9F40 byte 1 "cash" */
        else
            t.add_capabilities[0] &= 0x7F;
        t.txn_type = r->txn_type;
        t.services = r->services;
        t.amount_other = r->amount_other;
        assert_int_equal(kv_hex_decode(r->auc, auc, 2), 2);
        rc.auc = auc;
        rc.auc_len = 2;
        if (r->country != NULL) {
            assert_int_equal(kv_hex_decode(r->country, country, 2), 2);
            rc.issuer_country = country;
            rc.issuer_country_len = 2;
        }
        kv_emv_restrictions(&rc, &t, tvr);
        if (tvr[1] != r->tvr2 || tvr[0] || tvr[2] || tvr[3] || tvr[4]) {
            print_error("row %zu (%s): TVR %02X%02X%02X%02X%02X, want byte 2 %02X\n", i, r->why,
                        tvr[0], tvr[1], tvr[2], tvr[3], tvr[4], r->tvr2);
            fail();
        }
    }
}

static void test_auc(void **state)
{
    (void)state;
    run_auc_rows(auc_rows, sizeof(auc_rows) / sizeof(auc_rows[0]), 1);
    run_auc_rows(no_cash_rows, sizeof(no_cash_rows) / sizeof(no_cash_rows[0]), 0);
    run_auc_rows(cash_rows, sizeof(cash_rows) / sizeof(cash_rows[0]), 1);
}

static void test_cash_types(void **state)
{
    (void)state;
    assert_int_equal(kv_txn_type_is_cash(1), 1);
    assert_int_equal(kv_txn_type_is_cash(17), 1);
    assert_int_equal(kv_txn_type_is_cash(0), 0);
    assert_int_equal(kv_txn_type_is_cash(9), 0);
    assert_int_equal(kv_txn_type_is_cash(20), 0);
    assert_int_equal(kv_txn_type_is_cash(0x17), 0); /* 9C is n2: 17 is the integer 17 */
}

/*
 * The version check (§10.4.1) with 9F09 from the terminal configuration:
 * the built-in Visa entry's 008C matches a VIS 1.4 card's 9F08 008C, the
 * Mastercard entry's 0002 does not.
 */
static void test_version_from_config(void **state)
{
    static const uint8_t visa[] = {0xA0, 0, 0, 0, 0x03, 0x10, 0x10};
    static const uint8_t mc[] = {0xA0, 0, 0, 0, 0x04, 0x10, 0x10};
    static const uint8_t card_version[2] = {0x00, 0x8C};
    kv_term_config c;
    kv_terminal t;
    kv_restrict_card rc;
    uint8_t tvr[5] = {0};
    (void)state;
    kv_term_config_defaults(&c);
    assert_int_equal(kv_terminal_init(&t), 0);
    memset(&rc, 0, sizeof(rc));
    rc.app_version = card_version;
    rc.app_version_len = 2;
    kv_term_config_apply_app(kv_term_config_match(&c, visa, sizeof(visa)), &t);
    kv_emv_restrictions(&rc, &t, tvr);
    assert_int_equal(tvr[1], 0x00);
    kv_term_config_apply_app(kv_term_config_match(&c, mc, sizeof(mc)), &t);
    kv_emv_restrictions(&rc, &t, tvr);
    assert_int_equal(tvr[1], 0x80);
}

/*
 * CVM conditions with cash: a CVM list of one rule "no CVM required" (1F)
 * under the condition; satisfied -> CVM Results 1F cc 02, else no rule
 * applies and verification fails with 3F0001 (Book 3 §10.5.5).
 * Terminal types: 22 attended, 25 unattended (Book 4 Annex A1).
 */
struct cvm_row {
    uint8_t txn_type, terminal_type, condition;
    int satisfied;
};

static const struct cvm_row cvm_rows[] = {
    {1, 25, 0x01, 1},                     /* unattended cash */
    {17, 25, 0x01, 1},                    /* cash disbursement is unattended cash too */
    {0, 25, 0x01, 0},  {17, 22, 0x01, 0}, /* attended: not unattended cash */
    {1, 22, 0x04, 1},                     /* manual cash */
    {17, 22, 0x04, 1},                    /* manual cash by cash disbursement */
    {17, 25, 0x04, 0},                    /* unattended: not manual cash */
    {0, 22, 0x02, 1},                     /* purchase: not cash, not cashback */
    {1, 22, 0x02, 0},  {17, 22, 0x02, 0}, {17, 25, 0x02, 0},
};

static void test_cvm_cash(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cvm_rows) / sizeof(cvm_rows[0]); i++) {
        const struct cvm_row *r = &cvm_rows[i];
        uint8_t list[10] = {0, 0, 0, 0, 0, 0, 0, 0, 0x1F, r->condition};
        uint8_t tvr[5] = {0}, tsi[2] = {0};
        kv_cvm_txn txn;
        kv_cvm_result res;
        memset(&txn, 0, sizeof(txn));
        txn.cvm_list = list;
        txn.cvm_list_len = sizeof(list);
        txn.aip[0] = 0x10; /* cardholder verification supported */
        txn.app_currency = 208;
        txn.amount = 10000;
        txn.currency = 208;
        txn.txn_type = r->txn_type;
        txn.terminal_type = r->terminal_type;
        txn.capabilities[0] = 0xE0;
        txn.capabilities[1] = 0xB8; /* no CVM (08) supported */
        txn.capabilities[2] = 0xC8;
        assert_int_equal(kv_cvm_process(&txn, NULL, NULL, tvr, tsi, &res), 0);
        if (r->satisfied) {
            if (res.results[0] != 0x1F || res.results[1] != r->condition ||
                res.results[2] != 0x02) {
                print_error("row %zu: results %02X%02X%02X, want 1F%02X02\n", i, res.results[0],
                            res.results[1], res.results[2], r->condition);
                fail();
            }
        } else if (res.results[0] != 0x3F || res.results[2] != 0x01) {
            print_error("row %zu: results %02X%02X%02X, want 3F0001\n", i, res.results[0],
                        res.results[1], res.results[2]);
            fail();
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auc),
        cmocka_unit_test(test_cash_types),
        cmocka_unit_test(test_version_from_config),
        cmocka_unit_test(test_cvm_cash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

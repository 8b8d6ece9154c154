/*
 * Terminal risk management (apdu/trm.h): tables of (configuration, what the
 * terminal and card know) -> (TVR, TSI). Every expected value is worked out
 * by hand from the text of EMV Book 3 §10.6 (the section of each table is
 * named above it), never by running the code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "apdu/termcfg.h"
#include "apdu/trm.h"
#include "src/base/hex.h"

static void cfg(kv_aid_config *a, uint64_t floor, uint64_t threshold, unsigned target, unsigned max)
{
    memset(a, 0, sizeof(*a));
    a->floor_limit = floor;
    a->threshold = threshold;
    a->target_percent = target;
    a->max_target_percent = max;
}

/*
 * Book 3 §10.6.2 (random transaction selection). Below the threshold: selected
 * when random <= target percentage. From the threshold up to the floor limit:
 * transaction target percent = ((max - target) x (amount - threshold) /
 * (floor - threshold)) + target, selected when random <= it. At or above the
 * floor limit random selection does not apply.
 * Configuration A: floor 10000, threshold 2000, target 20, max 80.
 */
struct random_row {
    const char *why;
    uint64_t floor, threshold;
    unsigned target, max;
    uint64_t amount;
    unsigned random;
    int selected;
};

static const struct random_row random_rows[] = {
    {"A below threshold, random = target", 10000, 2000, 20, 80, 1000, 20, 1},
    {"A below threshold, random = target + 1", 10000, 2000, 20, 80, 1000, 21, 0},
    {"A below threshold, random 1", 10000, 2000, 20, 80, 0, 1, 1},
    {"A at threshold: TTP = 20 + 60 * 0 / 8000 = 20", 10000, 2000, 20, 80, 2000, 20, 1},
    {"A at threshold, random 21", 10000, 2000, 20, 80, 2000, 21, 0},
    {"A 3000: TTP = 20 + 60 * 1000 / 8000 = 27.5, random 27", 10000, 2000, 20, 80, 3000, 27, 1},
    {"A 3000: TTP 27.5, random 28", 10000, 2000, 20, 80, 3000, 28, 0},
    {"A 6000: TTP = 20 + 60 * 4000 / 8000 = 50, random 50", 10000, 2000, 20, 80, 6000, 50, 1},
    {"A 6000: TTP 50, random 51", 10000, 2000, 20, 80, 6000, 51, 0},
    {"A 9999: TTP = 20 + 60 * 7999 / 8000 = 79.9925, random 79", 10000, 2000, 20, 80, 9999, 79, 1},
    {"A 9999: TTP 79.9925, random 80", 10000, 2000, 20, 80, 9999, 80, 0},
    {"A at the floor limit: not selected", 10000, 2000, 20, 80, 10000, 1, 0},
    {"A above the floor limit: not selected", 10000, 2000, 20, 80, 50000, 1, 0},
    {"target 0: never below the threshold", 10000, 2000, 0, 0, 1000, 1, 0},
    {"target 0, max 0: never between", 10000, 2000, 0, 0, 5000, 1, 0},
    {"floor 0 (the built-in default): never", 0, 0, 99, 99, 0, 1, 0},
    {"threshold 0, target 0, max 99, amount 5000 of floor 10000: TTP 49.5, random 49", 10000, 0, 0,
     99, 5000, 49, 1},
    {"same, random 50", 10000, 0, 0, 99, 5000, 50, 0},
    {"max below target is taken as no bias: TTP 50, random 50", 10000, 2000, 50, 10, 6000, 50, 1},
    {"max below target: random 51", 10000, 2000, 50, 10, 6000, 51, 0},
    {"random 0 is no draw", 10000, 2000, 99, 99, 1000, 0, 0},
    {"random 100 is no draw", 10000, 2000, 99, 99, 1000, 100, 0},
    {"huge floor: TTP = 0 + 99 * 2^62 / 2^63 = 49.5, random 49", 1ull << 63, 0, 0, 99, 1ull << 62,
     49, 1},
    {"huge floor: random 50", 1ull << 63, 0, 0, 99, 1ull << 62, 50, 0},
};

static void test_random_selection(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(random_rows) / sizeof(random_rows[0]); i++) {
        const struct random_row *r = &random_rows[i];
        kv_aid_config a;
        cfg(&a, r->floor, r->threshold, r->target, r->max);
        int got = kv_trm_random_selected(r->amount, &a, r->random);
        if (got != r->selected) {
            print_error("row %zu (%s): selected %d, want %d\n", i, r->why, got, r->selected);
            fail();
        }
    }
}

/*
 * kv_trm_run. Book 3 §10.6.1: "Transaction exceeds floor limit" when amount
 * (plus the approvals of the same card in the terminal's log) is equal to
 * or greater than the floor limit; the exception file sets TVR byte 1 bit
 * 5 (10). §10.6.3 velocity checking, only when the card has both 9F14 and
 * 9F23: ATC or last online ATC (9F13) missing, or ATC <= 9F13, sets both
 * LCOL (byte 4, 40) and UCOL (byte 4, 20); else ATC - 9F13 greater than
 * LCOL sets LCOL, greater than UCOL sets UCOL; 9F13 = 0 sets "new card"
 * (byte 2, 08). Merchant forced online: byte 4, 08. TSI byte 1 08 always.
 * Configuration: floor 100000, threshold 0, target 0, max 0 (random
 * selection never fires: TTP 0 at random 99).
 */
struct run_row {
    const char *why;
    uint64_t floor;
    uint64_t amount, prior;
    int exception;
    int has_lcol, has_ucol;
    unsigned lcol, ucol;
    int has_atc, has_last;
    unsigned atc, last;
    int forced;
    const char *tvr; /* expected, hex */
};

static const struct run_row run_rows[] = {
    {"nothing to flag", 100000, 100, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, "0000000000"},
    {"amount below floor", 100000, 99999, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, "0000000000"},
    {"amount = floor", 100000, 100000, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, "0000008000"},
    {"amount + prior = floor", 100000, 50000, 50000, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, "0000008000"},
    {"amount + prior below floor", 100000, 50000, 49999, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
     "0000000000"},
    {"floor 0: every amount, 0 too", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, "0000008000"},
    {"prior saturates", 100000, UINT64_MAX, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, "0000008000"},
    {"exception file", 100000, 100, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, "1000000000"},
    {"merchant forced online", 100000, 100, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, "0000000800"},
    {"velocity: 10 - 8 = 2, not > LCOL 2", 100000, 100, 0, 0, 1, 1, 2, 5, 1, 1, 10, 8, 0,
     "0000000000"},
    {"velocity: 11 - 8 = 3 > LCOL 2", 100000, 100, 0, 0, 1, 1, 2, 5, 1, 1, 11, 8, 0, "0000004000"},
    {"velocity: 13 - 8 = 5 > 2, not > UCOL 5", 100000, 100, 0, 0, 1, 1, 2, 5, 1, 1, 13, 8, 0,
     "0000004000"},
    {"velocity: 14 - 8 = 6 > both", 100000, 100, 0, 0, 1, 1, 2, 5, 1, 1, 14, 8, 0, "0000006000"},
    {"velocity: ATC = 9F13 sets both", 100000, 100, 0, 0, 1, 1, 2, 5, 1, 1, 8, 8, 0, "0000006000"},
    {"velocity: ATC below 9F13 sets both", 100000, 100, 0, 0, 1, 1, 2, 5, 1, 1, 7, 8, 0,
     "0000006000"},
    {"velocity: no ATC sets both", 100000, 100, 0, 0, 1, 1, 2, 5, 0, 1, 0, 8, 0, "0000006000"},
    {"velocity: no 9F13 sets both, no new card", 100000, 100, 0, 0, 1, 1, 2, 5, 1, 0, 3, 0, 0,
     "0000006000"},
    {"new card: 9F13 = 0, 1 - 0 = 1", 100000, 100, 0, 0, 1, 1, 2, 5, 1, 1, 1, 0, 0, "0008000000"},
    {"new card and LCOL: 3 - 0 = 3", 100000, 100, 0, 0, 1, 1, 2, 5, 1, 1, 3, 0, 0, "0008004000"},
    {"LCOL 0 UCOL 0: 1 offline is above both", 100000, 100, 0, 0, 1, 1, 0, 0, 1, 1, 9, 8, 0,
     "0000006000"},
    {"only 9F14: no velocity checking", 100000, 100, 0, 0, 1, 0, 2, 5, 1, 1, 1, 0, 0, "0000000000"},
    {"only 9F23: no velocity checking", 100000, 100, 0, 0, 0, 1, 2, 5, 0, 0, 0, 0, 0, "0000000000"},
    {"all at once", 100000, 100000, 0, 1, 1, 1, 2, 5, 1, 1, 9, 0, 1, "100800E800"},
    /*
     * Public vectors: openemv/emv-utils tests/emv_terminal_risk_management_test.c
     * (9F14 12 = 18, 9F23 34 = 52; ATC and 9F13 from GET DATA), its expected TVRs.
     */
    {"emv-utils: LCOL matched, 1234 - 1216 = 18", 100000, 100, 0, 0, 1, 1, 18, 52, 1, 1, 1234, 1216,
     0, "0000000000"},
    {"emv-utils: LCOL exceeded, 1234 - 1215 = 19", 100000, 100, 0, 0, 1, 1, 18, 52, 1, 1, 1234,
     1215, 0, "0000004000"},
    {"emv-utils: UCOL matched, 1234 - 1182 = 52", 100000, 100, 0, 0, 1, 1, 18, 52, 1, 1, 1234, 1182,
     0, "0000004000"},
    {"emv-utils: UCOL exceeded, 1234 - 1181 = 53", 100000, 100, 0, 0, 1, 1, 18, 52, 1, 1, 1234,
     1181, 0, "0000006000"},
    {"emv-utils: velocity checking not possible", 100000, 100, 0, 0, 1, 1, 18, 52, 0, 0, 0, 0, 0,
     "0000006000"},
    {"emv-utils: new card, ATC 5, 9F13 0", 100000, 100, 0, 0, 1, 1, 18, 52, 1, 1, 5, 0, 0,
     "0008000000"},
    {"emv-utils: new card with no ATC", 100000, 100, 0, 0, 1, 1, 18, 52, 0, 1, 0, 0, 0,
     "0008006000"},
};

static void test_run(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(run_rows) / sizeof(run_rows[0]); i++) {
        const struct run_row *r = &run_rows[i];
        kv_aid_config a;
        kv_trm_in in;
        uint8_t tvr[5] = {0}, tsi[2] = {0}, want[5];
        char got[11];
        cfg(&a, r->floor, 0, 0, 0);
        memset(&in, 0, sizeof(in));
        in.amount = r->amount;
        in.prior_amount = r->prior;
        in.on_exception_file = r->exception;
        in.has_lcol = r->has_lcol;
        in.has_ucol = r->has_ucol;
        in.lcol = r->lcol;
        in.ucol = r->ucol;
        in.has_atc = r->has_atc;
        in.has_last_online_atc = r->has_last;
        in.atc = r->atc;
        in.last_online_atc = r->last;
        in.random = 99;
        in.merchant_forced_online = r->forced;
        kv_trm_run(&in, &a, tvr, tsi);
        assert_int_equal(kv_hex_decode(r->tvr, want, sizeof(want)), 5);
        kv_hex_encode(tvr, 5, got);
        if (memcmp(tvr, want, 5) != 0) {
            print_error("row %zu (%s): TVR %s, want %s\n", i, r->why, got, r->tvr);
            fail();
        }
        assert_int_equal(tsi[0], 0x08);
        assert_int_equal(tsi[1], 0x00);
    }
}

/* Bits already in the TVR and TSI stay; random selection sets byte 4 bit 5 (10). */
static void test_run_keeps_bits_and_random(void **state)
{
    kv_aid_config a;
    kv_trm_in in;
    uint8_t tvr[5] = {0x80, 0x00, 0x00, 0x00, 0x00}, tsi[2] = {0x80, 0x00};
    (void)state;
    /* floor 10000, threshold 2000, target 20, max 80; amount 1000, random 20: selected */
    cfg(&a, 10000, 2000, 20, 80);
    memset(&in, 0, sizeof(in));
    in.amount = 1000;
    in.random = 20;
    kv_trm_run(&in, &a, tvr, tsi);
    assert_int_equal(tvr[0], 0x80);
    assert_int_equal(tvr[3], 0x10);
    assert_int_equal(tsi[0], 0x88);
    /* the same at random 21: nothing in byte 4 */
    tvr[3] = 0;
    in.random = 21;
    kv_trm_run(&in, &a, tvr, tsi);
    assert_int_equal(tvr[3], 0x00);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_selection),
        cmocka_unit_test(test_run),
        cmocka_unit_test(test_run_keeps_bits_and_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

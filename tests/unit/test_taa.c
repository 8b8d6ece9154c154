/*
 * Terminal action analysis (apdu/trm.h): TVR x TAC x IAC -> the first
 * GENERATE AC's cryptogram, and the unable-to-go-online decision. Expected
 * values worked out by hand from EMV Book 3 §10.7:
 *  - denial: a bit set in the TVR and in TAC-Denial or IAC-Denial -> AAC;
 *    an absent IAC-Denial is all zeros;
 *  - an online-capable terminal: a bit in the TVR and in TAC-Online or
 *    IAC-Online -> ARQC, else TC; an absent IAC-Online is all ones;
 *  - an offline-only terminal, and a terminal that could not go online
 *    (Book 4 §6.3.2 for the ARC Z3/Y3 it then uses): a bit in the TVR and
 *    in TAC-Default or IAC-Default -> AAC (Z3), else TC (Y3); an absent
 *    IAC-Default is all ones.
 * TAC sets: V = Visa (denial 0010000000, online DC4004F800, default
 * DC4000A800), M = Mastercard (0000000000, F45084800C, F45084800C), Z = all
 * zeros.
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

struct taa_row {
    const char *why;
    char tacs; /* 'V', 'M' or 'Z' */
    const char *tvr;
    const char *iac_denial, *iac_online, *iac_default; /* hex, NULL: absent */
    int online_capable;
    int first;  /* KV_TAA_* */
    int unable; /* KV_TAA_AAC or KV_TAA_TC */
};

#define AAC KV_TAA_AAC
#define TC KV_TAA_TC
#define ARQC KV_TAA_ARQC

static const struct taa_row rows[] = {
    /* an empty TVR matches nothing, whatever the codes */
    {"empty TVR, no IACs", 'V', "0000000000", NULL, NULL, NULL, 1, TC, TC},
    {"empty TVR, offline-only", 'V', "0000000000", NULL, NULL, NULL, 0, TC, TC},
    /* floor limit exceeded: Visa online byte 4 F8 has 80; default A8 has 80 */
    {"floor limit, Visa", 'V', "0000008000", NULL, NULL, NULL, 1, ARQC, AAC},
    {"floor limit, Visa, IACs all zero", 'V', "0000008000", "0000000000", "0000000000",
     "0000000000", 1, ARQC, AAC},
    /* service not allowed: Visa denial byte 2 has 10 */
    {"service not allowed, Visa", 'V', "0010000000", NULL, NULL, NULL, 1, AAC, AAC},
    /* Mastercard denial is zero; online and default byte 2 50 have 10 */
    {"service not allowed, Mastercard, IAC-Denial zero", 'M', "0010000000", "0000000000", NULL,
     NULL, 1, ARQC, AAC},
    {"service not allowed, Mastercard, IAC-Denial 0010000000", 'M', "0010000000", "0010000000",
     NULL, NULL, 1, AAC, AAC},
    /* expired application (byte 2, 40): Visa online 40 and default 40 */
    {"expired, Visa", 'V', "0040000000", NULL, "0000000000", "0000000000", 1, ARQC, AAC},
    {"expired, issuer denies expired cards", 'V', "0040000000", "0040000000", NULL, NULL, 1, AAC,
     AAC},
    /* LCOL exceeded (byte 4, 40): Visa online F8 has it, default A8 does not */
    {"LCOL, Visa, IAC-Default zero", 'V', "0000004000", "0000000000", "0000000000", "0000000000", 1,
     ARQC, TC},
    {"LCOL, Visa, offline-only, IAC-Default zero", 'V', "0000004000", "0000000000", "0000000000",
     "0000000000", 0, TC, TC},
    {"LCOL, Visa, offline-only, IAC-Default absent (all ones)", 'V', "0000004000", "0000000000",
     "0000000000", NULL, 0, AAC, AAC},
    {"LCOL, Visa, offline-only, IAC-Default has it", 'V', "0000004000", NULL, NULL, "0000004000", 0,
     AAC, AAC},
    /* UCOL (byte 4, 20): Visa default A8 has it */
    {"UCOL, Visa, offline-only", 'V', "0000002000", "0000000000", "0000000000", "0000000000", 0,
     AAC, AAC},
    /* online PIN entered (byte 3, 04): Visa online has it, Visa default not */
    {"online PIN, Visa", 'V', "0000040000", "0000000000", "0000000000", "0000000000", 1, ARQC, TC},
    /* zero TACs: only the IACs decide */
    {"ODA not performed, zero TACs, IACs zero", 'Z', "8000000000", "0000000000", "0000000000",
     "0000000000", 1, TC, TC},
    {"ODA not performed, zero TACs, IACs absent", 'Z', "8000000000", NULL, NULL, NULL, 1, ARQC,
     AAC},
    {"ODA not performed, zero TACs, IAC-Online has it", 'Z', "8000000000", "0000000000",
     "8000000000", "0000000000", 1, ARQC, TC},
    {"ODA not performed, zero TACs, IAC-Denial has it", 'Z', "8000000000", "8000000000",
     "0000000000", "0000000000", 1, AAC, TC},
    {"offline-only, zero TACs, IAC-Default has it", 'Z', "8000000000", "0000000000", "0000000000",
     "8000000000", 0, AAC, AAC},
    {"offline-only, zero TACs, IAC-Online ignored", 'Z', "8000000000", "0000000000", "8000000000",
     "0000000000", 0, TC, TC},
    /* byte 5: Mastercard online/default 0C; issuer authentication failed (40) is not in them */
    {"issuer auth failed, Mastercard, IACs zero", 'M', "0000000040", "0000000000", "0000000000",
     "0000000000", 1, TC, TC},
    {"byte 5 bit 04, Mastercard, IACs zero", 'M', "0000000004", "0000000000", "0000000000",
     "0000000000", 1, ARQC, AAC},
    /* many bits: denial wins over online */
    {"all TVR bits, Visa", 'V', "FFFFFFFFFF", NULL, NULL, NULL, 1, AAC, AAC},
};

static void set_tacs(kv_aid_config *a, char which)
{
    const char *d = "0000000000", *o = "0000000000", *f = "0000000000";
    memset(a, 0, sizeof(*a));
    if (which == 'V') {
        d = "0010000000";
        o = "DC4004F800";
        f = "DC4000A800";
    } else if (which == 'M') {
        o = "F45084800C";
        f = "F45084800C";
    }
    assert_int_equal(kv_hex_decode(d, a->tac_denial, 5), 5);
    assert_int_equal(kv_hex_decode(o, a->tac_online, 5), 5);
    assert_int_equal(kv_hex_decode(f, a->tac_default, 5), 5);
}

static int set_iac(const char *hex, uint8_t out[5])
{
    if (hex == NULL)
        return 0;
    assert_int_equal(kv_hex_decode(hex, out, 5), 5);
    return 1;
}

static const char *name(int d)
{
    return d == AAC ? "AAC" : d == TC ? "TC" : d == ARQC ? "ARQC" : "?";
}

static void test_taa_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const struct taa_row *r = &rows[i];
        kv_aid_config a;
        kv_taa_iac iac;
        uint8_t tvr[5];
        memset(&iac, 0, sizeof(iac));
        set_tacs(&a, r->tacs);
        assert_int_equal(kv_hex_decode(r->tvr, tvr, 5), 5);
        iac.has_denial = set_iac(r->iac_denial, iac.iac_denial);
        iac.has_online = set_iac(r->iac_online, iac.iac_online);
        iac.has_default = set_iac(r->iac_default, iac.iac_default);
        int first = kv_taa_first(tvr, &a, &iac, r->online_capable);
        int unable = kv_taa_unable_online(tvr, &a, &iac);
        if (first != r->first || unable != r->unable) {
            print_error("row %zu (%s): first %s unable %s, want %s and %s\n", i, r->why,
                        name(first), name(unable), name(r->first), name(r->unable));
            fail();
        }
    }
}

/* No IAC structure at all counts as every IAC absent. */
static void test_taa_null_iac(void **state)
{
    kv_aid_config a;
    uint8_t tvr[5] = {0x80, 0, 0, 0, 0};
    (void)state;
    set_tacs(&a, 'Z');
    assert_int_equal(kv_taa_first(tvr, &a, NULL, 1), ARQC);
    assert_int_equal(kv_taa_first(tvr, &a, NULL, 0), AAC);
    assert_int_equal(kv_taa_unable_online(tvr, &a, NULL), AAC);
    memset(tvr, 0, 5);
    assert_int_equal(kv_taa_first(tvr, &a, NULL, 1), TC);
    assert_int_equal(kv_taa_unable_online(tvr, &a, NULL), TC);
}

/* The built-in entries carry the published TACs (README "Terminal configuration"). */
static void test_builtin_tacs(void **state)
{
    kv_term_config c;
    uint8_t want[5];
    static const uint8_t visa[] = {0xA0, 0, 0, 0, 0x03, 0x10, 0x10};
    static const uint8_t mc[] = {0xA0, 0, 0, 0, 0x04, 0x10, 0x10};
    (void)state;
    kv_term_config_defaults(&c);
    const kv_aid_config *v = kv_term_config_match(&c, visa, sizeof(visa));
    const kv_aid_config *m = kv_term_config_match(&c, mc, sizeof(mc));
    assert_non_null(v);
    assert_non_null(m);
    assert_int_equal(kv_hex_decode("0010000000", want, 5), 5);
    assert_memory_equal(v->tac_denial, want, 5);
    assert_int_equal(kv_hex_decode("DC4004F800", want, 5), 5);
    assert_memory_equal(v->tac_online, want, 5);
    assert_int_equal(kv_hex_decode("DC4000A800", want, 5), 5);
    assert_memory_equal(v->tac_default, want, 5);
    assert_int_equal(kv_hex_decode("0000000000", want, 5), 5);
    assert_memory_equal(m->tac_denial, want, 5);
    assert_int_equal(kv_hex_decode("F45084800C", want, 5), 5);
    assert_memory_equal(m->tac_online, want, 5);
    assert_memory_equal(m->tac_default, want, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_taa_table),
        cmocka_unit_test(test_taa_null_iac),
        cmocka_unit_test(test_builtin_tacs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

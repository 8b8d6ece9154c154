/*
 * The terminal configuration per AID: the built-in table (apdu/termcfg.h,
 * README "Terminal configuration"), AID matching under the application
 * selection indicator (EMV Book 1 §12.3.1), adding entries, and the INI
 * sections [terminal] and [aid HEX] (src/config/terminal.h, read by
 * kv_config_load): good files, and bad ones whose error names the file, the
 * line, the section and the key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "apdu/termcfg.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/config/config.h"
#include "src/config/terminal.h"

static size_t unhex(const char *s, uint8_t *out, size_t cap)
{
    int n = kv_hex_decode(s, out, cap);
    assert_true(n >= 0);
    return (size_t)n;
}

static const kv_aid_config *match_hex(const kv_term_config *c, const char *aid)
{
    uint8_t b[16];
    size_t n = unhex(aid, b, sizeof(b));
    return kv_term_config_match(c, b, n);
}

/* The built-in table: README "Terminal configuration". */
static void test_defaults(void **state)
{
    static const struct {
        const char *aid, *name, *version, *online;
        int kernel;
    } want[] = {
        {"A0000000031010", "visa", "008C", "DC4004F800", 3},
        {"A0000000032010", "visa_electron", "008C", "DC4004F800", 3},
        {"A0000000032020", "vpay", "008C", "DC4004F800", 3},
        {"A0000000041010", "mastercard", "0002", "F45084800C", 2},
        {"A0000000043060", "maestro", "0002", "F45084800C", 2},
        {"A0000001211010", "dankort", "0002", "DC4004F800", 0},
    };
    kv_term_config c;
    uint8_t b[8];
    (void)state;
    kv_term_config_defaults(&c);
    assert_int_equal(c.naids, sizeof(want) / sizeof(want[0]));
    assert_int_equal(c.country, 208);
    assert_int_equal(c.currency, 208);
    assert_int_equal(c.terminal_type, 22);
    assert_int_equal(c.mcc, 5999);
    assert_int_equal(c.online_capable, 1);
    for (size_t i = 0; i < c.naids; i++) {
        const kv_aid_config *a = match_hex(&c, want[i].aid);
        assert_non_null(a);
        assert_string_equal(a->name, want[i].name);
        assert_int_equal(a->asi, KV_ASI_PARTIAL);
        unhex(want[i].version, b, sizeof(b));
        assert_memory_equal(a->app_version, b, 2);
        unhex(want[i].online, b, sizeof(b));
        assert_memory_equal(a->tac_online, b, 5);
        assert_int_equal(a->floor_limit, 0);
        assert_int_equal(a->threshold, 0);
        assert_int_equal(a->target_percent, 0);
        assert_int_equal(a->max_target_percent, 0);
        assert_int_equal(a->ddol_default_len, 3);
        assert_memory_equal(a->ddol_default, "\x9F\x37\x04", 3);
        assert_int_equal(a->tdol_default_len, 15);
        assert_int_equal(a->kernel, want[i].kernel);
        assert_true(a->cl_transaction_limit == UINT64_MAX);
        assert_int_equal(a->cl_floor_limit, 0);
        assert_int_equal(a->cl_cvm_limit, 35001); /* 350 kr without a CVM, src/RULES.md */
        assert_int_equal(a->zero_amount, KV_ZERO_AMOUNT_ONLINE);
    }
}

/* kv_term_config_apply_terminal of the defaults gives what kv_terminal_init gives. */
static void test_defaults_agree_with_terminal_init(void **state)
{
    kv_term_config c;
    kv_terminal a, b;
    (void)state;
    kv_term_config_defaults(&c);
    assert_int_equal(kv_terminal_init(&a), 0);
    b = a;
    memset(b.capabilities, 0, 3);
    memset(b.add_capabilities, 0, 5);
    b.country = b.currency = b.mcc = 0;
    b.terminal_type = 0;
    kv_term_config_apply_terminal(&c, &b);
    assert_int_equal(b.country, a.country);
    assert_int_equal(b.currency, a.currency);
    assert_int_equal(b.terminal_type, a.terminal_type);
    assert_int_equal(b.mcc, a.mcc);
    assert_memory_equal(b.capabilities, a.capabilities, 3);
    assert_memory_equal(b.add_capabilities, a.add_capabilities, 5);
}

/*
 * Book 1 §12.3.1: partial selection matches a card AID that starts with the
 * terminal's; exact needs the same AID. The longest match wins.
 */
static void test_match(void **state)
{
    kv_term_config c;
    uint8_t aid[16];
    (void)state;
    kv_term_config_defaults(&c);
    /* a longer card AID (suffix) under partial selection */
    const kv_aid_config *a = match_hex(&c, "A000000003101001");
    assert_non_null(a);
    assert_string_equal(a->name, "visa");
    /* a shorter card AID does not match */
    assert_null(match_hex(&c, "A00000000310"));
    assert_null(match_hex(&c, "A0000000051010"));
    assert_null(kv_term_config_match(&c, NULL, 0));
    /* exact: the suffixed AID no longer matches, the AID itself does */
    size_t n = unhex("A0000000041010", aid, sizeof(aid));
    kv_aid_config *m = kv_term_config_find(&c, aid, n);
    assert_non_null(m);
    m->asi = KV_ASI_EXACT;
    assert_null(match_hex(&c, "A000000004101001"));
    assert_ptr_equal(match_hex(&c, "A0000000041010"), m);
    /* the longest match wins: a configured RID entry and a longer one */
    n = unhex("A000000003", aid, sizeof(aid));
    kv_aid_config *rid = kv_term_config_add(&c, aid, n);
    assert_non_null(rid);
    assert_string_equal(match_hex(&c, "A0000000031010")->name, "visa");
    assert_ptr_equal(match_hex(&c, "A0000000039999"), rid);
}

static void test_add(void **state)
{
    kv_term_config c;
    uint8_t aid[16], want[5];
    (void)state;
    kv_term_config_defaults(&c);
    /* a new Visa AID (Visa Interlink) takes the Visa defaults */
    size_t n = unhex("A0000000033010", aid, sizeof(aid));
    kv_aid_config *a = kv_term_config_add(&c, aid, n);
    assert_non_null(a);
    assert_int_equal(c.naids, 7);
    assert_string_equal(a->name, "");
    assert_memory_equal(a->app_version, "\x00\x8C", 2);
    unhex("DC4000A800", want, 5);
    assert_memory_equal(a->tac_default, want, 5);
    assert_int_equal(a->kernel, 3);
    /* the same again: the same entry */
    assert_ptr_equal(kv_term_config_add(&c, aid, n), a);
    assert_int_equal(c.naids, 7);
    /* an unknown RID: 0000, zero denial, the generic online/default codes */
    n = unhex("A0000000251010", aid, sizeof(aid));
    a = kv_term_config_add(&c, aid, n);
    assert_non_null(a);
    assert_memory_equal(a->app_version, "\x00\x00", 2);
    unhex("0000000000", want, 5);
    assert_memory_equal(a->tac_denial, want, 5);
    unhex("FCF8FCF800", want, 5);
    assert_memory_equal(a->tac_online, want, 5);
    assert_memory_equal(a->tac_default, want, 5);
    assert_int_equal(a->kernel, 0);
    /* too short, too long */
    assert_null(kv_term_config_add(&c, aid, 4));
    assert_null(kv_term_config_add(&c, aid, 17));
    /* a full table */
    while (c.naids < KV_TERMCFG_MAX_AIDS) {
        aid[5] = (uint8_t)c.naids;
        assert_non_null(kv_term_config_add(&c, aid, 6));
    }
    aid[5] = 0xFF;
    assert_null(kv_term_config_add(&c, aid, 6));
}

static void test_apply_and_online_capable(void **state)
{
    kv_term_config c;
    kv_terminal t;
    (void)state;
    kv_term_config_defaults(&c);
    assert_int_equal(kv_terminal_init(&t), 0);
    t.app_version[0] = t.app_version[1] = 0xFF;
    kv_term_config_apply_app(match_hex(&c, "A0000001211010"), &t);
    assert_memory_equal(t.app_version, "\x00\x02", 2);
    kv_term_config_apply_app(match_hex(&c, "A0000000032020"), &t);
    assert_memory_equal(t.app_version, "\x00\x8C", 2);
    /* Book 4 Annex A1: second digit 3 and 6 are offline only */
    static const struct {
        uint8_t type;
        int online;
    } rows[] = {{11, 1}, {12, 1}, {13, 0}, {14, 1}, {15, 1}, {16, 0}, {21, 1},
                {22, 1}, {23, 0}, {24, 1}, {25, 1}, {26, 0}, {34, 1}, {36, 0}};
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        assert_int_equal(kv_term_config_online_capable(rows[i].type), rows[i].online);
}

/* ---- the INI sections ---- */

static int load(const char *text, kv_config **c, char *err, size_t errlen)
{
    char path[] = "/tmp/kv_termcfg_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    int r = kv_config_load(path, c, err, errlen);
    unlink(path);
    return r;
}

static void test_config_good(void **state)
{
    kv_config *c = NULL;
    char err[512];
    uint8_t b[16];
    (void)state;
    assert_int_equal(load("[terminal]\n"
                          "country = 752\n"
                          "currency = 0752\n"
                          "terminal_type = 23\n"
                          "capabilities = e0b8c8\n"
                          "additional_capabilities = 6000F0A001\n"
                          "merchant_category = 5411\n"
                          "[aid A0000000041010]\n"
                          "asi = exact\n"
                          "app_version = 0003\n"
                          "floor_limit = 10000\n"
                          "threshold = 2000\n"
                          "max_target_percent = 80\n"
                          "target_percent = 20\n"
                          "tac_denial = 0010000000\n"
                          "tac_online = FC50BCF800\n"
                          "tac_default = FC50BCA000\n"
                          "ddol_default = 9F37049F0206\n"
                          "tdol_default =\n"
                          "kernel = 2\n"
                          "cl_transaction_limit = none\n"
                          "cl_floor_limit = 5000\n"
                          "cl_cvm_limit = 50000\n"
                          "ttq = 3600C000\n"
                          "status_check = true\n"
                          "zero_amount = decline\n"
                          "[aid  a0000000251010 ]\n"
                          "floor_limit = 0\n",
                          &c, err, sizeof(err)),
                     0);
    const kv_term_config *t = kv_config_terminal(c);
    assert_int_equal(t->country, 752);
    assert_int_equal(t->currency, 752);
    assert_int_equal(t->terminal_type, 23);
    assert_int_equal(t->online_capable, 0);
    assert_memory_equal(t->capabilities, "\xE0\xB8\xC8", 3);
    assert_int_equal(t->mcc, 5411);
    assert_int_equal(t->naids, 7);
    const kv_aid_config *a = match_hex(t, "A0000000041010");
    assert_non_null(a);
    assert_null(match_hex(t, "A000000004101001")); /* exact now */
    assert_int_equal(a->asi, KV_ASI_EXACT);
    assert_memory_equal(a->app_version, "\x00\x03", 2);
    assert_int_equal(a->floor_limit, 10000);
    assert_int_equal(a->threshold, 2000);
    assert_int_equal(a->target_percent, 20);
    assert_int_equal(a->max_target_percent, 80);
    unhex("0010000000", b, 5);
    assert_memory_equal(a->tac_denial, b, 5);
    unhex("FC50BCF800", b, 5);
    assert_memory_equal(a->tac_online, b, 5);
    unhex("FC50BCA000", b, 5);
    assert_memory_equal(a->tac_default, b, 5);
    assert_int_equal(a->ddol_default_len, 6);
    assert_int_equal(a->tdol_default_len, 0);
    assert_int_equal(a->kernel, 2);
    assert_true(a->cl_transaction_limit == UINT64_MAX);
    assert_int_equal(a->cl_floor_limit, 5000);
    assert_int_equal(a->cl_cvm_limit, 50000);
    assert_memory_equal(a->ttq, "\x36\x00\xC0\x00", 4);
    assert_int_equal(a->status_check, 1);
    assert_int_equal(a->zero_amount, KV_ZERO_AMOUNT_DECLINE);
    /* the others keep their defaults; the added AID has the generic ones */
    a = match_hex(t, "A0000000043060");
    assert_int_equal(a->floor_limit, 0);
    assert_memory_equal(a->app_version, "\x00\x02", 2);
    a = match_hex(t, "A0000000251010");
    assert_non_null(a);
    assert_int_equal(a->floor_limit, 0);
    kv_config_free(c);

    /* no file: the defaults */
    c = kv_config_new_defaults();
    assert_non_null(c);
    assert_int_equal(kv_config_terminal(c)->naids, 6);
    kv_config_free(c);
}

/* Each bad line: the error names the file, the line, the section and the key. */
static void test_config_bad(void **state)
{
    static const struct {
        const char *text;
        const char *want; /* a part of the message after the file name */
    } rows[] = {
        {"[terminal]\ncolour = red\n", ":2: [terminal] colour: unknown key"},
        {"[terminal]\ncountry = DK\n", ":2: [terminal] country: 'DK'"},
        {"[terminal]\ncountry = 1000\n", ":2: [terminal] country: '1000'"},
        {"[terminal]\ncurrency = -1\n", ":2: [terminal] currency: '-1'"},
        {"[terminal]\nterminal_type = 27\n", ":2: [terminal] terminal_type: '27'"},
        {"[terminal]\nterminal_type = 31\n", ":2: [terminal] terminal_type: '31'"},
        {"[terminal]\ncapabilities = E0F8\n", ":2: [terminal] capabilities: 'E0F8'"},
        {"[terminal]\nadditional_capabilities = 6000F0A0ZZ\n",
         ":2: [terminal] additional_capabilities:"},
        {"[terminal]\nmerchant_category = 59999\n", ":2: [terminal] merchant_category:"},
        {"\n[aid A0000000041010]\nfloor = 1\n", ":3: [aid A0000000041010] floor: unknown key"},
        {"[aid A0000000041010]\nasi = prefix\n", ":2: [aid A0000000041010] asi: 'prefix'"},
        {"[aid A0000000041010]\napp_version = 2\n", ":2: [aid A0000000041010] app_version:"},
        {"[aid A0000000041010]\nfloor_limit = 1.5\n", ":2: [aid A0000000041010] floor_limit:"},
        {"[aid A0000000041010]\nfloor_limit = none\n", ":2: [aid A0000000041010] floor_limit:"},
        {"[aid A0000000041010]\nthreshold = 1000000000000\n",
         ":2: [aid A0000000041010] threshold:"},
        {"[aid A0000000041010]\ntarget_percent = 100\n",
         ":2: [aid A0000000041010] target_percent:"},
        {"[aid A0000000041010]\nmax_target_percent = x\n",
         ":2: [aid A0000000041010] max_target_percent:"},
        {"[aid A0000000041010]\ntac_denial = 00100000\n", ":2: [aid A0000000041010] tac_denial:"},
        {"[aid A0000000041010]\ntac_online = DC4004F80G\n", ":2: [aid A0000000041010] tac_online:"},
        {"[aid A0000000041010]\ntac_default = DC 4000A800\n",
         ":2: [aid A0000000041010] tac_default:"},
        {"[aid A0000000041010]\nddol_default = 9F37\n", ":2: [aid A0000000041010] ddol_default:"},
        {"[aid A0000000041010]\ntdol_default = 9F0\n", ":2: [aid A0000000041010] tdol_default:"},
        {"[aid A0000000041010]\nkernel = 8\n", ":2: [aid A0000000041010] kernel:"},
        {"[aid A0000000041010]\ncl_transaction_limit = unlimited\n",
         ":2: [aid A0000000041010] cl_transaction_limit:"},
        {"[aid A0000000041010]\ncl_floor_limit = -5\n", ":2: [aid A0000000041010] cl_floor_limit:"},
        {"[aid A0000000041010]\ncl_cvm_limit = 350kr\n", ":2: [aid A0000000041010] cl_cvm_limit:"},
        {"[aid A0000000041010]\nttq = 360040\n", ":2: [aid A0000000041010] ttq:"},
        {"[aid A0000000041010]\nstatus_check = maybe\n", ":2: [aid A0000000041010] status_check:"},
        {"[aid A0000000041010]\nzero_amount = approve\n", ":2: [aid A0000000041010] zero_amount:"},
        {"[aid]\nfloor_limit = 0\n", ":2: [aid] floor_limit: the section needs an AID"},
        {"[aid A00000]\nfloor_limit = 0\n", ":2: [aid A00000] floor_limit: the section needs"},
        {"[aid A0000000041010XYZ]\nasi = exact\n", ":2: [aid A0000000041010XYZ] asi:"},
        {"[aid A0000000041010]\ntarget_percent = 50\nmax_target_percent = 10\n",
         ":3: [aid A0000000041010] max_target_percent: 10 is below target_percent 50"},
        {"[aid A0000000041010]\nmax_target_percent = 10\n\ntarget_percent = 50\n",
         ":4: [aid A0000000041010] max_target_percent: 10 is below target_percent 50"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        kv_config *c = NULL;
        char err[1024];
        int r = load(rows[i].text, &c, err, sizeof(err));
        if (r != KV_ERR_CONFIG || strstr(err, rows[i].want) == NULL ||
            strstr(err, "/tmp/kv_termcfg_") != err) {
            print_error("row %zu: %d '%s', want '%s'\n", i, r, err, rows[i].want);
            fail();
        }
        assert_null(c);
    }
}

/*
 * The commented examples of scripts/kortvagtd.conf.sample, from ";[terminal]"
 * on, uncommented (";key = value" and ";[section]" lines), load and give
 * the built-in values back.
 */
static void test_sample_config(void **state)
{
    const char *data = getenv("KV_TEST_DATA");
    char path[4096], line[512], err[512];
    char *text = NULL;
    size_t len = 0, cap = 0;
    int on = 0;
    kv_config *c = NULL;
    (void)state;
    if (data == NULL)
        skip();
    snprintf(path, sizeof(path), "%s/../../scripts/kortvagtd.conf.sample", data);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        const char *l = line;
        if (strncmp(line, ";[terminal]", 11) == 0)
            on = 1;
        if (!on)
            continue;
        if (line[0] == ';' && line[1] != ' ' && line[1] != '\n')
            l = line + 1;
        else
            continue;
        size_t n = strlen(l);
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            text = realloc(text, cap);
            assert_non_null(text);
        }
        memcpy(text + len, l, n + 1);
        len += n;
    }
    fclose(f);
    assert_true(on);
    assert_non_null(strstr(text, "[aid A0000000041010]"));
    assert_int_equal(load(text, &c, err, sizeof(err)), 0);
    free(text);
    kv_term_config d;
    kv_term_config_defaults(&d);
    const kv_term_config *t = kv_config_terminal(c);
    assert_int_equal(t->naids, d.naids);
    assert_memory_equal(t->capabilities, d.capabilities, 3);
    assert_memory_equal(t->add_capabilities, d.add_capabilities, 5);
    assert_memory_equal(&t->aids[3], &d.aids[3], sizeof(d.aids[3])); /* mastercard */
    kv_config_free(c);
}

/* kv_term_config_set directly: the error classes. */
static void test_set(void **state)
{
    kv_term_config c;
    char why[400];
    size_t idx = 99;
    (void)state;
    kv_term_config_defaults(&c);
    assert_int_equal(kv_term_config_is_section("terminal"), 1);
    assert_int_equal(kv_term_config_is_section("aid A0000000031010"), 1);
    assert_int_equal(kv_term_config_is_section("aid"), 1);
    assert_int_equal(kv_term_config_is_section("aids"), 0);
    assert_int_equal(kv_term_config_is_section("limits"), 0);
    assert_int_equal(
        kv_term_config_set(&c, "aid A0000000031010", "floor_limit", "500", &idx, why, sizeof(why)),
        0);
    assert_int_equal(idx, 0);
    assert_int_equal(c.aids[0].floor_limit, 500);
    assert_int_equal(
        kv_term_config_set(&c, "aid A0000000031010", "nope", "1", &idx, why, sizeof(why)),
        KV_ERR_NOT_FOUND);
    assert_non_null(strstr(why, "zero_amount"));
    assert_int_equal(kv_term_config_set(&c, "terminal", "nope", "1", NULL, why, sizeof(why)),
                     KV_ERR_NOT_FOUND);
    assert_non_null(strstr(why, "merchant_category"));
    assert_int_equal(kv_term_config_set(&c, "terminal", "country", "x", NULL, why, sizeof(why)),
                     KV_ERR_CONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_defaults_agree_with_terminal_init),
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_add),
        cmocka_unit_test(test_apply_and_online_capable),
        cmocka_unit_test(test_config_good),
        cmocka_unit_test(test_config_bad),
        cmocka_unit_test(test_sample_config),
        cmocka_unit_test(test_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

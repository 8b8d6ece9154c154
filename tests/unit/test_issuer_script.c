/*
 * hsm/issuer_script.h against a real SoftHSM2 token in a temporary directory:
 * issuer script commands (secure-messaging MAC and enciphered PIN of EMV Book
 * 2 §9) for every supported CVN, key roles, argument checks. Skipped when
 * SoftHSM2 is not installed.
 *
 * Expected values, none from the code under test:
 *   - "pyemv" rows: the published chain of github.com/knovichikhin/pyemv
 *     tests/test_sm.py (IMK 0123456789ABCDEFFEDCBA9876543210, PAN
 *     1234567890123456, PSN 01, option A, common session key with R =
 *     ABCDEF1234567890, MAC of 8424000008 = CF323F09A0F6AB9E), which is our
 *     Mastercard method with R = the ARQC;
 *   - the table rows: tests/tools/issuer_script_ref.py vectors, an independent
 *     Python implementation (python3-cryptography) written from the EMV Book 2
 *     and 3 texts, with the lab's public test keys imk-smi / imk-smc.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "hsm/issuer_script.h"
#include "hsm/keys.h"
#include "hsm/p11.h"
#include "hsm/p11_admin.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/base/secure.h"
#include "tests/unit/hsm_fixture.h"

static kv_test_token T;
static kv_hsm *H; /* T.h */

#define LAB_SMI "4B3A2918F7E6D5C4C4D5E6F718293A4B"
#define LAB_SMC "9A8B7C6D5E4F30211203F4E5D6C7B8A9"

static int import(const char *label, kv_key_type t, kv_key_usage u, const char *hex)
{
    return kv_test_token_import(&T, label, t, u, hex);
}

static int setup(void **state)
{
    (void)state;
    kv_test_token_open(&T, "/tmp/kv-test-iscript", "kv-iscript");
    if ((H = T.h) == NULL)
        return 0; /* every test skips */
    assert_int_equal(import("imk-smi", KV_KEY_DES2, KV_USAGE_IMK_SMI, LAB_SMI), 0);
    assert_int_equal(import("imk-smc", KV_KEY_DES2, KV_USAGE_IMK_SMC, LAB_SMC), 0);
    assert_int_equal(
        import("pub-smi", KV_KEY_DES2, KV_USAGE_IMK_SMI, "0123456789ABCDEFFEDCBA9876543210"), 0);
    assert_int_equal(
        import("imk-ac", KV_KEY_DES2, KV_USAGE_IMK, "0123456789ABCDEFFEDCBA9876543210"), 0);
    /* the ceremony keeps imk-smi DES2: CVN 6 (AES) has no script method */
    assert_int_equal(
        import("aes-ac", KV_KEY_AES128, KV_USAGE_IMK, "2B7E151628AED2A6ABF7158809CF4F3C"), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    H = NULL;
    return kv_test_token_close(&T);
}

#define NEED_HSM()                                                                                 \
    do {                                                                                           \
        if (H == NULL)                                                                             \
            skip();                                                                                \
    } while (0)

static void find(const char *name, kv_hsm_key *k)
{
    if (kv_hsm_key_find(H, name, k) != 0) {
        print_message("find %s: %s\n", name, kv_hsm_last_error(H));
        fail();
    }
}

static void txn(kv_script_txn *t, int cvn, const char *pan, const char *psn, const char *atc,
                const char *arqc)
{
    memset(t, 0, sizeof(*t));
    t->cvn = cvn;
    t->pan = pan;
    t->psn = psn;
    assert_int_equal(kv_hex_decode(atc, t->atc, 2), 2);
    assert_int_equal(kv_hex_decode(arqc, t->arqc, 8), 8);
}

static void expect_apdu(const char *what, const uint8_t *got, size_t n, const char *want_hex)
{
    char g[2 * 261 + 1];
    kv_hex_encode(got, n, g);
    if (strcmp(g, want_hex) != 0) {
        print_error("%s:\n  got  %s\n  want %s\n", what, g, want_hex);
        fail();
    }
}

/* ---- the public chain (pyemv tests/test_sm.py) ---- */

static void test_public_chain(void **state)
{
    kv_hsm_key smi;
    kv_script_txn t;
    kv_script_spec sp = {.kind = KV_SCRIPT_PIN_UNBLOCK};
    uint8_t apdu[261];
    size_t n;

    (void)state;
    NEED_HSM();
    find("pub-smi", &smi);
    /* CVN 16: option A, R = ARQC, MAC over CLA INS P1 P2 Lc only */
    txn(&t, 16, "1234567890123456", "01", "0001", "ABCDEF1234567890");
    assert_int_equal(kv_hsm_script_command(H, &smi, NULL, &t, &sp, apdu, sizeof(apdu), &n), 0);
    expect_apdu("pyemv CF323F09A0F6AB9E", apdu, n, "8424000008CF323F09A0F6AB9E");
    /* a 4-byte MAC covers Lc = 04: another MAC, not a cut one */
    sp.mac_len = 4;
    assert_int_equal(kv_hsm_script_command(H, &smi, NULL, &t, &sp, apdu, sizeof(apdu), &n), 0);
    assert_int_equal(n, 9);
    assert_int_equal(apdu[4], 4);
}

/* ---- the independent implementation's table ---- */

static const struct row {
    const char *name;
    int cvn;
    const char *pan, *psn, *atc, *arqc, *kind, *pin, *p1p2_data;
    size_t mac_len;
    const char *apdu;
} rows[] = {
#include "test_issuer_script_vectors.inc"
};

static void test_vectors(void **state)
{
    kv_hsm_key smi, smc;

    (void)state;
    NEED_HSM();
    find("imk-smi", &smi);
    find("imk-smc", &smc);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const struct row *w = &rows[i];
        kv_script_txn t;
        kv_script_spec sp;
        kv_secbuf *pin = NULL;
        uint8_t apdu[261], data[128];
        size_t n = 0;
        int r;

        txn(&t, w->cvn, w->pan, w->psn, w->atc, w->arqc);
        memset(&sp, 0, sizeof(sp));
        sp.kind = kv_script_kind_parse(w->kind);
        assert_true(sp.kind != 0);
        sp.mac_len = w->mac_len;
        if (w->pin[0] != '\0') {
            assert_non_null(pin = kv_secbuf_new(16));
            memcpy(kv_secbuf_ptr(pin), w->pin, strlen(w->pin));
            sp.new_pin = pin;
            sp.pin_len = strlen(w->pin);
        }
        if (w->p1p2_data[0] != '\0') {
            int dn = kv_hex_decode(w->p1p2_data, data, sizeof(data));
            assert_true(dn > 2);
            sp.p1 = data[0];
            sp.p2 = data[1];
            sp.data = data + 2;
            sp.data_len = (size_t)dn - 2;
        }
        r = kv_hsm_script_command(H, &smi, &smc, &t, &sp, apdu, sizeof(apdu), &n);
        kv_secbuf_free(pin);
        if (r != 0) {
            print_error("%s: rc %d (%s)\n", w->name, r, kv_hsm_last_error(H));
            fail();
        }
        expect_apdu(w->name, apdu, n, w->apdu);
    }
}

/* ---- refusals ---- */

static void test_refusals(void **state)
{
    kv_hsm_key smi, smc, ac;
    kv_script_txn t;
    kv_script_spec sp;
    kv_secbuf *pin;
    uint8_t apdu[261], one = 0x05;
    size_t n = 99;

    (void)state;
    NEED_HSM();
    find("imk-smi", &smi);
    find("imk-smc", &smc);
    find("imk-ac", &ac);
    txn(&t, 18, "4761739001010010", "01", "0012", "1122334455667788");
    memset(&sp, 0, sizeof(sp));
    sp.kind = KV_SCRIPT_APP_BLOCK;

    /* keys of the wrong role, before any token work */
    assert_int_equal(kv_hsm_script_command(H, &ac, NULL, &t, &sp, apdu, sizeof(apdu), &n),
                     KV_ERR_HSM_ROLE);
    assert_int_equal(n, 0);
    assert_int_equal(kv_hsm_script_command(H, &smc, NULL, &t, &sp, apdu, sizeof(apdu), &n),
                     KV_ERR_HSM_ROLE);
    assert_non_null(pin = kv_secbuf_new(16));
    memcpy(kv_secbuf_ptr(pin), "1234", 4);
    sp.kind = KV_SCRIPT_PIN_CHANGE;
    sp.new_pin = pin;
    sp.pin_len = 4;
    assert_int_equal(kv_hsm_script_command(H, &smi, &smi, &t, &sp, apdu, sizeof(apdu), &n),
                     KV_ERR_HSM_ROLE);
    assert_int_equal(kv_hsm_script_command(H, &smi, NULL, &t, &sp, apdu, sizeof(apdu), &n),
                     KV_ERR_ARG);
    /* PINs of 3 and 13 digits, a letter */
    sp.pin_len = 3;
    assert_int_equal(kv_hsm_script_command(H, &smi, &smc, &t, &sp, apdu, sizeof(apdu), &n),
                     KV_ERR_ARG);
    sp.pin_len = 13;
    assert_int_equal(kv_hsm_script_command(H, &smi, &smc, &t, &sp, apdu, sizeof(apdu), &n),
                     KV_ERR_ARG);
    memcpy(kv_secbuf_ptr(pin), "12a4", 4);
    sp.pin_len = 4;
    assert_int_equal(kv_hsm_script_command(H, &smi, &smc, &t, &sp, apdu, sizeof(apdu), &n),
                     KV_ERR_ARG);
    sp.new_pin = NULL;
    assert_int_equal(kv_hsm_script_command(H, &smi, &smc, &t, &sp, apdu, sizeof(apdu), &n),
                     KV_ERR_ARG);
    kv_secbuf_free(pin);

    /* CVNs without a method here: CCD 6 (AES), an unknown one */
    memset(&sp, 0, sizeof(sp));
    sp.kind = KV_SCRIPT_CARD_BLOCK;
    t.cvn = 6;
    assert_int_equal(kv_hsm_script_command(H, &smi, NULL, &t, &sp, apdu, sizeof(apdu), &n),
                     KV_ERR_UNSUPPORTED);
    /* an AES IMK of the AC role is refused for its role first */
    {
        kv_hsm_key aes;
        find("aes-ac", &aes);
        t.cvn = 18;
        assert_int_equal(kv_hsm_script_command(H, &aes, NULL, &t, &sp, apdu, sizeof(apdu), &n),
                         KV_ERR_HSM_ROLE);
    }
    t.cvn = 99;
    assert_int_equal(kv_hsm_script_command(H, &smi, NULL, &t, &sp, apdu, sizeof(apdu), &n),
                     KV_ERR_UNSUPPORTED);
    t.cvn = 10;
    /* MAC lengths outside 4..8 */
    sp.mac_len = 3;
    assert_int_equal(kv_hsm_script_command(H, &smi, NULL, &t, &sp, apdu, sizeof(apdu), &n),
                     KV_ERR_ARG);
    sp.mac_len = 9;
    assert_int_equal(kv_hsm_script_command(H, &smi, NULL, &t, &sp, apdu, sizeof(apdu), &n),
                     KV_ERR_ARG);
    sp.mac_len = 0;
    /* too little room: 5 + 8 bytes needed */
    assert_int_equal(kv_hsm_script_command(H, &smi, NULL, &t, &sp, apdu, 12, &n), KV_ERR_BUFFER);
    assert_int_equal(kv_hsm_script_command(H, &smi, NULL, &t, &sp, apdu, 13, &n), 0);
    assert_int_equal(n, 13);
    /* data on a command that has none; an unknown kind */
    sp.data = &one;
    sp.data_len = 1;
    assert_int_equal(kv_hsm_script_command(H, &smi, NULL, &t, &sp, apdu, sizeof(apdu), &n),
                     KV_ERR_ARG);
    sp.kind = 0;
    assert_int_equal(kv_hsm_script_command(H, &smi, NULL, &t, &sp, apdu, sizeof(apdu), &n),
                     KV_ERR_ARG);
    /* PUT DATA without a value or a tag; UPDATE RECORD with a bad P2 or record 0 */
    sp.kind = KV_SCRIPT_PUT_DATA;
    sp.data = NULL;
    sp.data_len = 0;
    sp.p1 = 0x9F;
    sp.p2 = 0x14;
    assert_int_equal(kv_hsm_script_command(H, &smi, NULL, &t, &sp, apdu, sizeof(apdu), &n),
                     KV_ERR_ARG);
    sp.data = &one;
    sp.data_len = 1;
    assert_int_equal(kv_hsm_script_command(H, &smi, NULL, &t, &sp, apdu, sizeof(apdu), &n), 0);
    sp.p1 = sp.p2 = 0;
    assert_int_equal(kv_hsm_script_command(H, &smi, NULL, &t, &sp, apdu, sizeof(apdu), &n),
                     KV_ERR_ARG);
    sp.kind = KV_SCRIPT_UPDATE_RECORD;
    sp.p1 = 1;
    sp.p2 = 0x0B; /* SFI 1, P2 low bits 011 */
    assert_int_equal(kv_hsm_script_command(H, &smi, NULL, &t, &sp, apdu, sizeof(apdu), &n),
                     KV_ERR_ARG);
    sp.p1 = 0;
    sp.p2 = 0x0C;
    assert_int_equal(kv_hsm_script_command(H, &smi, NULL, &t, &sp, apdu, sizeof(apdu), &n),
                     KV_ERR_ARG);
    /* a PAN that is no PAN */
    sp.p1 = 1;
    t.pan = "47617390010100x0";
    assert_int_equal(kv_hsm_script_command(H, &smi, NULL, &t, &sp, apdu, sizeof(apdu), &n),
                     KV_ERR_ARG);
}

static void test_kind_names(void **state)
{
    (void)state;
    for (int k = KV_SCRIPT_PIN_UNBLOCK; k <= KV_SCRIPT_UPDATE_RECORD; k++) {
        assert_non_null(kv_script_kind_name(k));
        assert_int_equal(kv_script_kind_parse(kv_script_kind_name(k)), k);
    }
    assert_null(kv_script_kind_name(0));
    assert_null(kv_script_kind_name(KV_SCRIPT_UPDATE_RECORD + 1));
    assert_int_equal(kv_script_kind_parse("pin-reset"), 0);
    assert_int_equal(kv_script_kind_parse(NULL), 0);
    assert_string_equal(kv_script_kind_name(KV_SCRIPT_APP_BLOCK), "app-block");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind_names),
        cmocka_unit_test(test_public_chain),
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/*
 * Every cryptogram version kortvagt verifies, end to end through a real
 * SoftHSM2 token made in a temporary directory: the AC data
 * (apdu/ac_data.h kv_ac_data_build), the ICC master key and session key
 * (pure derivation inputs enciphered by an OpenSSL reference), and the
 * token path (hsm/emv_crypto.h kv_hsm_arqc_verify, kv_hsm_arqc_generate,
 * kv_hsm_arpc_generate) for Visa CVN 10, 18, 22 (formats 0/1 and 2),
 * Mastercard 16, 17, 20, 21 and EMV CCD 5 (TDES) and 6 (AES-128). Skipped
 * when SoftHSM2 is not installed.
 *
 * Expected values, none from the code under test:
 *  - rows marked "pyemv": published in knovichikhin/pyemv
 *    tests/test_cvn_hsm.py (IMK 0123456789ABCDEFFEDCBA9876543210, PAN
 *    1234567890123456, PSN 00, ATC 001C; ARQC and ARPC);
 *  - every value (including the pyemv rows' MK, SK and AC data, and the rows
 *    without a public vector): printed by tests/tools/emv_vectors.py, an
 *    independent Python implementation of EMV Book 2 A1.2-A1.4 and §8.2
 *    with python3-cryptography that also checks the published pyemv values.
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
#include <openssl/evp.h>

#include "apdu/ac_data.h"
#include "hsm/emv_crypto.h"
#include "hsm/keys.h"
#include "hsm/p11.h"
#include "hsm/p11_admin.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/base/secure.h"
#include "tests/unit/hsm_fixture.h"

static kv_test_token T;
static kv_hsm *H; /* T.h */

static size_t unhex(const char *s, uint8_t *out, size_t cap)
{
    int n = kv_hex_decode(s, out, cap);
    if (n < 0) {
        print_error("bad hex in a test row: %s\n", s);
        fail();
    }
    return (size_t)n;
}

static void same(const char *row, const char *what, const uint8_t *got, size_t n,
                 const char *want_hex)
{
    uint8_t want[256];
    char g[513];
    size_t wl = unhex(want_hex, want, sizeof(want));
    if (wl != n || memcmp(got, want, n) != 0) {
        kv_hex_encode(got, n, g);
        print_error("%s, %s:\n  got  %s\n  want %s\n", row, what, g, want_hex);
        fail();
    }
}

/* ---- OpenSSL reference ciphers for the derivation checks ---- */

static void ref_ecb(const EVP_CIPHER *c, const uint8_t *key, const uint8_t *in, size_t len,
                    uint8_t *out)
{
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    int n = 0, m = 0;
    assert_non_null(x);
    assert_int_equal(EVP_EncryptInit_ex(x, c, NULL, key, NULL), 1);
    EVP_CIPHER_CTX_set_padding(x, 0);
    assert_int_equal(EVP_EncryptUpdate(x, out, &n, in, (int)len), 1);
    assert_int_equal(EVP_EncryptFinal_ex(x, out + n, &m), 1);
    EVP_CIPHER_CTX_free(x);
}

/* ---- the token ---- */

static int import(const char *label, kv_key_type t, const char *hex)
{
    return kv_test_token_import(&T, label, t, KV_USAGE_IMK, hex);
}

static int setup(void **state)
{
    (void)state;
    kv_test_token_open(&T, "/tmp/kv-test-cvn", "kv-cvn");
    if ((H = T.h) == NULL)
        return 0; /* every test skips */
    /* the lab's imk-ac and imk-ac-aes (scripts/lab.sh), public test values */
    assert_int_equal(import("imk", KV_KEY_DES2, "0123456789ABCDEFFEDCBA9876543210"), 0);
    assert_int_equal(import("imk-aes", KV_KEY_AES128, "2B7E151628AED2A6ABF7158809CF4F3C"), 0);
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

/* ---- the vectors (tests/tools/emv_vectors.py) ---- */

#define PAN "1234567890123456"
#define SD_VISA "000000004000000000000000012480000480000124191105 01 52BF4585"
#define SD_MC "000000009999000000000000012480000000000124209906 00 ABCDEF12"
#define MK_TDES "154E349D8485CA7E6A0798E9839B10C1"
#define SK_CSK "426B942BD737E18465B532B1EC96CA27"
#define SK_MC "5D8F37BDD9E4DB68058CDFA2EB255D9E"

struct cvn_row {
    const char *name;
    int cvn;
    const char *imk; /* "imk" or "imk-aes" */
    const char *pan, *psn, *atc, *sd, *aip, *iad;
    const char *mk, *sk; /* sk NULL: the ICC MK is the AC key */
    const char *data;    /* the whole AC data */
    const char *ac, *arc, *csu, *arpc;
    int iad_layout; /* what kv_iad_decode says */
    int iad_cvn;    /* the CVN the IAD names when not cvn (0: cvn) */
};

static const struct cvn_row rows[] = {
    {"visa 10 (pyemv)", 10, "imk", PAN, "00", "001C", SD_VISA, "1800", "06010A03A06010", MK_TDES,
     NULL, "0000000040000000000000000124800004800001241911050152BF45851800001C03A06010",
     "29CCA15AE665FA2E", "3030", "00000000", "28993816AFAE4AEB", KV_IAD_VISA, 0},
    {"visa 18 (pyemv)", 18, "imk", PAN, "00", "001C", SD_VISA, "1800", "06011203A0B800", MK_TDES,
     SK_CSK, "0000000040000000000000000124800004800001241911050152BF45851800001C06011203A0B800",
     "7A788EA6B8A3E733", "0000", "00000000", "9AF514C1", KV_IAD_VISA, 0},
    {"visa 22 format 1 IAD (pyemv)", 22, "imk", PAN, "00", "001C", SD_VISA, "1800",
     "06011203A0B800", MK_TDES, SK_CSK,
     "0000000040000000000000000124800004800001241911050152BF45851800001C06011203A0B800",
     "7A788EA6B8A3E733", "0000", "00000000", "9AF514C1", KV_IAD_VISA, 18},
    {"visa 22 format 2", 22, "imk", PAN, "00", "001C", SD_VISA, "1800",
     "1F220100A0000000000000000000000000000000000000000000000000000000", MK_TDES, SK_CSK,
     "0000000040000000000000000124800004800001241911050152BF45851800001C"
     "1F220100A0000000000000000000000000000000000000000000000000000000",
     "BDA9EA6688A8B7CB", "0000", "00000000", "8AFE424B", KV_IAD_VISA_2, 0},
    {"mc 16 (pyemv)", 16, "imk", PAN, "00", "001C", SD_MC, "1800",
     "0110A00003220000000000000000000000FF", MK_TDES, SK_MC,
     "00000000999900000000000001248000000000012420990600ABCDEF121800001CA00003220000",
     "24CCF3DEE3158C70", "0010", "00000000", "73F6BBF389A6586C", KV_IAD_MCHIP, 0},
    {"mc 17 (pyemv)", 17, "imk", PAN, "00", "001C", SD_MC, "1800",
     "0111A00003220000000000000000000322FF", MK_TDES, SK_MC,
     "00000000999900000000000001248000000000012420990600ABCDEF121800001CA000032200000000000000"
     "0322FF",
     "EAE8A620A75648D8", "0010", "00000000", "29CF11FBDB9CA650", KV_IAD_MCHIP, 0},
    {"mc 20 (pyemv)", 20, "imk", PAN, "00", "001C", SD_MC, "1800",
     "0114A00003220000000000000000000000FF", MK_TDES, SK_CSK,
     "00000000999900000000000001248000000000012420990600ABCDEF121800001CA00003220000",
     "CD29615D6452E70E", "0010", "00000000", "DFD0956606B68D64", KV_IAD_MCHIP, 0},
    {"mc 21 (pyemv)", 21, "imk", PAN, "00", "001C", SD_MC, "1800",
     "0115A00003220000000000000000000322FF", MK_TDES, SK_CSK,
     "00000000999900000000000001248000000000012420990600ABCDEF121800001CA000032200000000000000"
     "0322FF",
     "C30E54BE496CF5E5", "0010", "00000000", "4F51F9CC63CE8B3C", KV_IAD_MCHIP, 0},
    {"mc 21 advance, last online ATC", 21, "imk", PAN, "00", "001C", SD_MC, "1800",
     "0115A00003220000000000000000000322FF0017", MK_TDES, SK_CSK,
     "00000000999900000000000001248000000000012420990600ABCDEF121800001CA000032200000000000000"
     "0322FF0017",
     "60552FAFAA6DF461", "0010", "00000000", "71FA8C36BF36DF65", KV_IAD_MCHIP, 0},
    {"ccd 5", 5, "imk", PAN, "00", "001C", SD_VISA, "1800",
     "0FA501A00000000000000000000000000F000000000000000000000000000000", MK_TDES, SK_CSK,
     "0000000040000000000000000124800004800001241911050152BF45851800001C"
     "0FA501A00000000000000000000000000F000000000000000000000000000000",
     "4CCC98107D2C85CB", "0000", "00800000", "41ABECC5", KV_IAD_CCD, 0},
    {"ccd 6 (aes)", 6, "imk-aes", PAN, "00", "001C", SD_VISA, "1800",
     "0FA601A00000000000000000000000000F000000000000000000000000000000",
     "67D00097BDDDCC5C46621F444B0FF9CD", "4C6A3B07F8D15A20C0284EE6360C0FB4",
     "0000000040000000000000000124800004800001241911050152BF45851800001C"
     "0FA601A00000000000000000000000000F000000000000000000000000000000",
     "853C1FCD782FDCDD", "0000", "00800000", "EBEED730", KV_IAD_CCD, 0},
    {"visa 18, option B, 19-digit PAN", 18, "imk", "4761739001010010018", "01", "0102", SD_VISA,
     "3900", "06011203A00000", "2078E18958DB52D95CBC3B323A6C6BAE",
     "42CC8E13C85C11992E2FC15563B00598",
     "0000000040000000000000000124800004800001241911050152BF45853900010206011203A00000",
     "EF7E82BFA7A1999C", "0000", "00000000", "EF4E403C", KV_IAD_VISA, 0},
};

struct built {
    uint8_t sd[KV_AC_SD_LEN], aip[2], atc[2], iad[KV_IAD_MAX], data[128];
    size_t iad_len, data_len;
};

static void build(const struct cvn_row *w, struct built *b)
{
    assert_int_equal(unhex(w->sd, b->sd, sizeof(b->sd)), KV_AC_SD_LEN);
    assert_int_equal(unhex(w->aip, b->aip, 2), 2);
    assert_int_equal(unhex(w->atc, b->atc, 2), 2);
    b->iad_len = unhex(w->iad, b->iad, sizeof(b->iad));
    assert_int_equal(kv_ac_data_build(w->cvn, b->sd, b->aip, b->atc, b->iad, b->iad_len, b->data,
                                      sizeof(b->data), &b->data_len),
                     0);
}

/* The AC data of every CVN and what kv_iad_decode reads from the IAD. */
static void test_ac_data_per_cvn(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const struct cvn_row *w = &rows[i];
        struct built b;
        kv_iad_info info;
        build(w, &b);
        same(w->name, "AC data", b.data, b.data_len, w->data);
        assert_int_equal(kv_iad_decode(b.iad, b.iad_len, &info), 0);
        if (info.layout != w->iad_layout || info.cvn != (w->iad_cvn ? w->iad_cvn : w->cvn)) {
            print_error("%s: layout %d cvn %d\n", w->name, info.layout, info.cvn);
            fail();
        }
        assert_int_equal(info.ac1_type, KV_AC_ARQC);
    }
}

/* ICC MK and session key from the pure derivation inputs, enciphered by OpenSSL. */
static void test_key_derivation(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const struct cvn_row *w = &rows[i];
        kv_emv_params p;
        uint8_t imk[16], y[8], d[16], comp[16], mk[16], r[8], sk[16], un[4], atc[2], sd[64];
        assert_int_equal(kv_emv_params_for_cvn(w->cvn, &p), 0);
        unhex(strcmp(w->imk, "imk") == 0 ? "0123456789ABCDEFFEDCBA9876543210"
                                         : "2B7E151628AED2A6ABF7158809CF4F3C",
              imk, sizeof(imk));
        if (p.aes) {
            /* Book 2 A1.4.3 option C: no 8-byte Y */
            assert_int_equal(kv_emv_aes_mk_input(w->pan, w->psn, d), 0);
            ref_ecb(EVP_aes_128_ecb(), imk, d, 16, mk);
        } else {
            assert_int_equal(kv_emv_mk_input(p.mk_option, w->pan, w->psn, y), 0);
            kv_emv_mk_derivation_data(y, d, comp);
            ref_ecb(EVP_des_ede_ecb(), imk, d, 16, mk);
        }
        same(w->name, "ICC MK", mk, 16, w->mk);
        if (w->sk == NULL) {
            assert_int_equal(p.skd, KV_EMV_SKD_NONE);
            continue;
        }
        unhex(w->atc, atc, 2);
        unhex(w->sd, sd, sizeof(sd));
        kv_ac_data_un(sd, un);
        assert_int_equal(kv_emv_session_r(p.skd, atc, un, r), 0);
        if (p.aes) {
            kv_emv_aes_csk_derivation_data(r, d);
            ref_ecb(EVP_aes_128_ecb(), mk, d, 16, sk);
        } else {
            kv_emv_csk_derivation_data(r, d, comp);
            ref_ecb(EVP_des_ede_ecb(), mk, d, 16, sk);
        }
        same(w->name, "session key", sk, 16, w->sk);
    }
}

static void txn_of(const struct cvn_row *w, const struct built *b, kv_emv_txn *t)
{
    memset(t, 0, sizeof(*t));
    t->pan = w->pan;
    t->psn = w->psn;
    memcpy(t->atc, b->atc, 2);
    t->has_un = 1;
    kv_ac_data_un(b->sd, t->un);
    t->data = b->data;
    t->data_len = b->data_len;
}

/* ARQC verify and generate, ARPC, all in the token. */
static void test_token_per_cvn(void **state)
{
    (void)state;
    NEED_HSM();
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const struct cvn_row *w = &rows[i];
        struct built b;
        kv_emv_params p;
        kv_emv_txn t;
        kv_emv_arpc_in in;
        kv_hsm_key imk;
        uint8_t ac[8], arqc[8], arpc[8];
        size_t arpc_len = 0;
        int match = -1, r;

        build(w, &b);
        txn_of(w, &b, &t);
        assert_int_equal(kv_emv_params_for_cvn(w->cvn, &p), 0);
        assert_int_equal(kv_hsm_key_find(H, w->imk, &imk), 0);
        unhex(w->ac, arqc, 8);

        if ((r = kv_hsm_arqc_verify(H, &imk, &p, &t, arqc, &match)) != 0 || match != 1) {
            print_error("%s: verify r=%d match=%d (%s)\n", w->name, r, match, kv_hsm_last_error(H));
            fail();
        }
        assert_int_equal(kv_hsm_arqc_generate(H, &imk, &p, &t, ac), 0);
        same(w->name, "AC", ac, 8, w->ac);
        arqc[7] ^= 0x01;
        assert_int_equal(kv_hsm_arqc_verify(H, &imk, &p, &t, arqc, &match), 0);
        assert_int_equal(match, 0);
        arqc[7] ^= 0x01;

        memset(&in, 0, sizeof(in));
        memcpy(in.arqc, arqc, 8);
        unhex(w->arc, in.arc, 2);
        unhex(w->csu, in.csu, 4);
        if ((r = kv_hsm_arpc_generate(H, &imk, &p, &t, &in, arpc, &arpc_len)) != 0) {
            print_error("%s: arpc r=%d (%s)\n", w->name, r, kv_hsm_last_error(H));
            fail();
        }
        same(w->name, "ARPC", arpc, arpc_len, w->arpc);
    }
}

/* The key must fit the CVN; the Mastercard SKD needs the UN. */
static void test_token_refusals(void **state)
{
    kv_emv_params p;
    kv_emv_txn t;
    kv_hsm_key des, aes;
    struct built b;
    uint8_t ac[8];
    int match = 1;

    (void)state;
    NEED_HSM();
    assert_int_equal(kv_hsm_key_find(H, "imk", &des), 0);
    assert_int_equal(kv_hsm_key_find(H, "imk-aes", &aes), 0);
    build(&rows[10], &b); /* CCD 6 */
    txn_of(&rows[10], &b, &t);
    assert_int_equal(kv_emv_params_for_cvn(6, &p), 0);
    assert_int_equal(kv_hsm_arqc_verify(H, &des, &p, &t, ac, &match), KV_ERR_HSM_KEY);
    assert_int_equal(match, 0);
    assert_int_equal(kv_emv_params_for_cvn(5, &p), 0);
    assert_int_equal(kv_hsm_arqc_generate(H, &aes, &p, &t, ac), KV_ERR_HSM_KEY);
    /*
     * An AES IMK has one ICC MK derivation, Book 2 A1.4.3 option C: mk_option A, B and C give
     * the same (published-method) key; option C is no TDES method.
     */
    {
        static const int opts[] = {KV_EMV_MK_OPTION_A, KV_EMV_MK_OPTION_B, KV_EMV_MK_OPTION_C};
        uint8_t arqc[8];
        build(&rows[10], &b);
        txn_of(&rows[10], &b, &t);
        unhex(rows[10].ac, arqc, 8);
        for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
            assert_int_equal(kv_emv_params_for_cvn(6, &p), 0);
            p.mk_option = opts[i];
            match = 0;
            assert_int_equal(kv_hsm_arqc_verify(H, &aes, &p, &t, arqc, &match), 0);
            assert_int_equal(match, 1);
        }
        build(&rows[9], &b); /* CCD 5 */
        txn_of(&rows[9], &b, &t);
        assert_int_equal(kv_emv_params_for_cvn(5, &p), 0);
        p.mk_option = KV_EMV_MK_OPTION_C;
        assert_int_equal(kv_hsm_arqc_generate(H, &des, &p, &t, ac), KV_ERR_ARG);
    }
    build(&rows[4], &b); /* MC 16 without its UN */
    txn_of(&rows[4], &b, &t);
    t.has_un = 0;
    assert_int_equal(kv_emv_params_for_cvn(16, &p), 0);
    assert_int_equal(kv_hsm_arqc_generate(H, &des, &p, &t, ac), KV_ERR_ARG);
}

/* The methods table of hsm/emv_crypto.h. */
static void test_params(void **state)
{
    static const struct {
        int cvn, option, skd, arpc_method, arpc_key, aes;
    } want[] = {
        {10, 'A', KV_EMV_SKD_NONE, 1, KV_EMV_ARPC_KEY_MK, 0},
        {18, 'B', KV_EMV_SKD_CSK, 2, KV_EMV_ARPC_KEY_SK, 0},
        {22, 'B', KV_EMV_SKD_CSK, 2, KV_EMV_ARPC_KEY_SK, 0},
        {16, 'A', KV_EMV_SKD_MASTERCARD, 1, KV_EMV_ARPC_KEY_MK, 0},
        {17, 'A', KV_EMV_SKD_MASTERCARD, 1, KV_EMV_ARPC_KEY_MK, 0},
        {20, 'A', KV_EMV_SKD_CSK, 1, KV_EMV_ARPC_KEY_SK, 0},
        {21, 'A', KV_EMV_SKD_CSK, 1, KV_EMV_ARPC_KEY_SK, 0},
        {5, 'A', KV_EMV_SKD_CSK, 2, KV_EMV_ARPC_KEY_SK, 0},
        {6, 'A', KV_EMV_SKD_CSK, 2, KV_EMV_ARPC_KEY_SK, 1},
    };
    kv_emv_params p;
    (void)state;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(kv_emv_params_for_cvn(want[i].cvn, &p), 0);
        assert_int_equal(p.cvn, want[i].cvn);
        assert_int_equal(p.mk_option, want[i].option);
        assert_int_equal(p.skd, want[i].skd);
        assert_int_equal(p.arpc_method, want[i].arpc_method);
        assert_int_equal(p.arpc_key, want[i].arpc_key);
        assert_int_equal(p.aes, want[i].aes);
    }
    assert_int_equal(kv_emv_params_for_cvn(14, &p), KV_ERR_UNSUPPORTED);
    assert_int_equal(kv_emv_params_for_cvn(7, &p), KV_ERR_UNSUPPORTED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params),         cmocka_unit_test(test_ac_data_per_cvn),
        cmocka_unit_test(test_key_derivation), cmocka_unit_test(test_token_per_cvn),
        cmocka_unit_test(test_token_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/*
 * Table tests of the pure parts of the key ceremony (hsm/keymat.h, the
 * policy and label rules of hsm/keys.h): DES parity, component XOR, hex
 * component errors, KCV parsing, and KCVs of combined keys computed with
 * OpenSSL as an independent reference against published values.
 *
 * Sources of the expected values (none from the code under test):
 *  - DES2 key 0123456789ABCDEF FEDCBA9876543210 has KCV 08D7 (tests/data/VECTORS.md,
 *    pyemv) / 08D7B4 (3 bytes; also SoftHSM2's CKA_CHECK_VALUE);
 *  - parity: pyemv's ICC MK F84315C7B95BD3B0C74694922C3808B0 is the
 *    parity-adjusted form of the raw 3DES output F84314C6B85BD3B0C74794922C3809B0
 *    (tests/data/VECTORS.md "EMV ARQC"; raw value by OpenSSL);
 *  - component rows were XORed by hand (Python) from that key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "hsm/keymat.h"
#include "hsm/keys.h"
#include "hsm/p11_admin.h"
#include "src/base/err.h"
#include "src/base/hex.h"

static void hexdump(const char *what, const uint8_t *p, size_t n)
{
    char buf[2 * KV_KEYMAT_MAX + 1];
    kv_hex_encode(p, n, buf);
    print_message("    %s: %s\n", what, buf);
}

static void assert_bytes(const char *row, const uint8_t *got, const uint8_t *want, size_t n)
{
    if (memcmp(got, want, n) != 0) {
        print_message("row '%s' mismatch\n", row);
        hexdump("got ", got, n);
        hexdump("want", want, n);
        fail();
    }
}

/* --- parity ---------------------------------------------------------------- */

static const struct {
    const char *name;
    const char *in, *want;
    int in_ok; /* kv_des_parity_ok on the input */
} parity_rows[] = {
    {"zero byte gets the low bit", "00", "01", 0},
    {"FF loses the low bit", "FF", "FE", 0},
    {"01 already odd", "01", "01", 1},
    {"80 already odd", "80", "80", 1},
    {"08 already odd", "08", "08", 1},
    {"classic odd-parity key unchanged", "0123456789ABCDEFFEDCBA9876543210",
     "0123456789ABCDEFFEDCBA9876543210", 1},
    {"low bits all flipped", "0022446688AACCEEFFDDBB9977553311", "0123456789ABCDEFFEDCBA9876543210",
     0},
    {"pyemv ICC MK (tests/data/VECTORS.md)", "F84314C6B85BD3B0C74794922C3809B0",
     "F84315C7B95BD3B0C74694922C3808B0", 0},
};

static void test_parity(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(parity_rows) / sizeof(parity_rows[0]); i++) {
        uint8_t in[32], want[32];
        int n = kv_hex_decode(parity_rows[i].in, in, sizeof(in));
        assert_int_equal(kv_hex_decode(parity_rows[i].want, want, sizeof(want)), n);
        if (kv_des_parity_ok(in, (size_t)n) != parity_rows[i].in_ok) {
            print_message("row '%s': parity_ok %d, want %d\n", parity_rows[i].name,
                          !parity_rows[i].in_ok, parity_rows[i].in_ok);
            fail();
        }
        kv_des_parity_fix(in, (size_t)n);
        assert_bytes(parity_rows[i].name, in, want, (size_t)n);
        assert_true(kv_des_parity_ok(in, (size_t)n));
    }
}

/* --- combining components, with the KCV by OpenSSL ------------------------- */

/* Independent KCV: OpenSSL 3DES-ECB (two-key EDE) of 8 zero bytes. */
static void openssl_des_kcv(const uint8_t *key, size_t len, uint8_t out[3])
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    uint8_t zero[8] = {0}, ct[16];
    int n = 0;
    assert_non_null(c);
    assert_int_equal(
        EVP_EncryptInit_ex(c, len == 16 ? EVP_des_ede_ecb() : EVP_des_ede3_ecb(), NULL, key, NULL),
        1);
    EVP_CIPHER_CTX_set_padding(c, 0);
    assert_int_equal(EVP_EncryptUpdate(c, ct, &n, zero, 8), 1);
    assert_int_equal(n, 8);
    EVP_CIPHER_CTX_free(c);
    memcpy(out, ct, 3);
}

static const struct {
    const char *name;
    kv_key_type type;
    const char *comps[4]; /* NULL-terminated */
    const char *want_key;
    const char *want_kcv; /* published; NULL: not checked */
} combine_rows[] = {
    {"one component",
     KV_KEY_DES2,
     {"0123456789ABCDEFFEDCBA9876543210", NULL},
     "0123456789ABCDEFFEDCBA9876543210",
     "08D7B4"},
    {"two components",
     KV_KEY_DES2,
     {"11111111111111112222222222222222", "1032547698BADCFEDCFE98BA54761032", NULL},
     "0123456789ABCDEFFEDCBA9876543210",
     "08D7B4"},
    {"three components, lower case and spaces",
     KV_KEY_DES2,
     {"1111 1111 1111 1111 2222 2222 2222 2222", "a5a5a5a5a5a5a5a55a5a5a5a5a5a5a5a",
      "B597F1D33D1F795B86A4C2E00E2C4A68", NULL},
     "0123456789ABCDEFFEDCBA9876543210",
     "08D7B4"},
    {"parity fixed after XOR",
     KV_KEY_DES2,
     {"0022446688AACCEEFFDDBB9977553311", NULL},
     "0123456789ABCDEFFEDCBA9876543210",
     "08D7B4"},
    {"tab separated",
     KV_KEY_DES2,
     {"0123456789ABCDEF\tFEDCBA9876543210", NULL},
     "0123456789ABCDEFFEDCBA9876543210",
     "08D7B4"},
    {"AES-128 no parity change",
     KV_KEY_AES128,
     {"00112233445566778899AABBCCDDEEFF", NULL},
     "00112233445566778899AABBCCDDEEFF",
     NULL},
    {"HMAC 32 bytes XOR",
     KV_KEY_HMAC,
     {"0000000000000000000000000000000000000000000000000000000000000001",
      "FF00000000000000000000000000000000000000000000000000000000000000", NULL},
     "FF00000000000000000000000000000000000000000000000000000000000001",
     NULL},
};

static void test_combine(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(combine_rows) / sizeof(combine_rows[0]); i++) {
        uint8_t key[KV_KEYMAT_MAX], want[KV_KEYMAT_MAX], kcv[3], want_kcv[3];
        kv_keymat_problem p;
        size_t n = 0;
        int len, wl;
        while (combine_rows[i].comps[n] != NULL)
            n++;
        len =
            kv_keymat_combine(combine_rows[i].comps, n, combine_rows[i].type, key, sizeof(key), &p);
        wl = kv_hex_decode(combine_rows[i].want_key, want, sizeof(want));
        if (len != wl) {
            print_message("row '%s': length %d, want %d (problem %d)\n", combine_rows[i].name, len,
                          wl, (int)p.kind);
            fail();
        }
        assert_bytes(combine_rows[i].name, key, want, (size_t)len);
        if (combine_rows[i].want_kcv != NULL) {
            openssl_des_kcv(key, (size_t)len, kcv);
            assert_int_equal(kv_kcv_parse(combine_rows[i].want_kcv, want_kcv), 3);
            assert_bytes(combine_rows[i].name, kcv, want_kcv, 3);
            assert_true(kv_kcv_matches(kcv, want_kcv, 3));
            assert_true(kv_kcv_matches(kcv, want_kcv, 2)); /* "08D7" of tests/data/VECTORS.md */
        }
    }
}

/* --- component errors ------------------------------------------------------ */

#define K16 "0123456789ABCDEFFEDCBA9876543210"
#define K32 K16 K16

static const struct {
    const char *name;
    kv_key_type type;
    const char *comps[11]; /* NULL-terminated */
    kv_keymat_problem_kind kind;
    size_t component, position, got, want;
    const char *text; /* must appear in the problem text */
} problem_rows[] = {
    {"odd number of digits",
     KV_KEY_DES2,
     {"0123456789ABCDEFFEDCBA987654321", NULL},
     KV_KEYMAT_ODD,
     1,
     0,
     31,
     0,
     "odd number of hex digits"},
    {"non-hex character",
     KV_KEY_DES2,
     {"0123456789ABCDEFFEDCBA98765432G0", NULL},
     KV_KEYMAT_NOT_HEX,
     1,
     31,
     0,
     0,
     "character 31 is not"},
    {"non-hex in component 2",
     KV_KEY_DES2,
     {K16, "01234567-9ABCDEFFEDCBA9876543210", NULL},
     KV_KEYMAT_NOT_HEX,
     2,
     9,
     0,
     0,
     "component 2 is not hex"},
    {"single length for des2",
     KV_KEY_DES2,
     {"0123456789ABCDEF", NULL},
     KV_KEYMAT_LENGTH,
     1,
     0,
     8,
     16,
     "component 1 has 8 bytes; type des2 needs 16"},
    {"des2 component for des3",
     KV_KEY_DES3,
     {K16, NULL},
     KV_KEYMAT_LENGTH,
     1,
     0,
     16,
     24,
     "type des3 needs 24"},
    {"second component shorter",
     KV_KEY_DES2,
     {K16, "0123456789ABCDEF", NULL},
     KV_KEYMAT_LENGTH,
     2,
     0,
     8,
     16,
     "component 2 has 8 bytes"},
    {"hmac lengths differ",
     KV_KEY_HMAC,
     {K32, K32 "00", NULL},
     KV_KEYMAT_MISMATCH,
     2,
     0,
     33,
     32,
     "components differ in length"},
    {"hmac too short",
     KV_KEY_HMAC,
     {K16, NULL},
     KV_KEYMAT_LENGTH,
     1,
     0,
     16,
     32,
     "type hmac needs 32 to 64"},
    {"empty component", KV_KEY_DES2, {"  ", NULL}, KV_KEYMAT_EMPTY, 1, 0, 0, 0, "is empty"},
    {"no component", KV_KEY_DES2, {NULL}, KV_KEYMAT_NONE, 0, 0, 0, 0, "no key component"},
    {"ten components",
     KV_KEY_DES2,
     {K16, K16, K16, K16, K16, K16, K16, K16, K16, K16, NULL},
     KV_KEYMAT_TOO_MANY,
     0,
     0,
     10,
     0,
     "at most 9"},
    {"des2 with equal halves",
     KV_KEY_DES2,
     {"0123456789ABCDEF0123456789ABCDEF", NULL},
     KV_KEYMAT_DEGENERATE,
     0,
     0,
     0,
     0,
     "two equal 8-byte parts"},
    {"des2 equal halves after XOR",
     KV_KEY_DES2,
     {"11111111111111112222222222222222", "1032547698BADCFE23016745AB89EFCD", NULL},
     KV_KEYMAT_DEGENERATE,
     0,
     0,
     0,
     0,
     "single-DES strength"},
};

static void test_problems(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(problem_rows) / sizeof(problem_rows[0]); i++) {
        uint8_t key[KV_KEYMAT_MAX], zero[KV_KEYMAT_MAX] = {0};
        kv_keymat_problem p;
        char text[256];
        size_t n = 0;
        int r;
        while (problem_rows[i].comps[n] != NULL)
            n++;
        memset(key, 0x5A, sizeof(key));
        r = kv_keymat_combine(problem_rows[i].comps, n, problem_rows[i].type, key, sizeof(key), &p);
        kv_keymat_problem_text(&p, problem_rows[i].type, text, sizeof(text));
        if (r != KV_ERR_FORMAT || p.kind != problem_rows[i].kind ||
            p.component != problem_rows[i].component || p.position != problem_rows[i].position ||
            p.got != problem_rows[i].got || p.want != problem_rows[i].want ||
            strstr(text, problem_rows[i].text) == NULL) {
            print_message("row '%s': r=%d kind=%d comp=%zu pos=%zu got=%zu want=%zu text '%s'\n",
                          problem_rows[i].name, r, (int)p.kind, p.component, p.position, p.got,
                          p.want, text);
            print_message("    want: kind=%d comp=%zu pos=%zu got=%zu want=%zu text '%s'\n",
                          (int)problem_rows[i].kind, problem_rows[i].component,
                          problem_rows[i].position, problem_rows[i].got, problem_rows[i].want,
                          problem_rows[i].text);
            fail();
        }
        /* nothing of a rejected key is left behind */
        assert_bytes(problem_rows[i].name, key, zero, sizeof(key));
        /* the text never repeats component digits */
        assert_null(strstr(text, "0123456789"));
    }
}

/*
 * --allow-single-des: a DES2 key with equal halves is combined (parity fixed)
 * when allowed; a DES3 key with equal parts never is; the refusal text names
 * the flag for DES2 only.
 */
static void test_single_des(void **state)
{
    const char *w2[] = {"11111111111111112222222222222222", "1032547698BADCFE23016745AB89EFCD"};
    const char *w3[] = {"0123456789ABCDEF0123456789ABCDEFFEDCBA9876543210"};
    const char *ok[] = {"0123456789ABCDEFFEDCBA9876543210"};
    uint8_t key[KV_KEYMAT_MAX], want[16];
    kv_keymat_problem p;
    char text[256];
    (void)state;
    /* 1111.. XOR 1032.. = 0123456789ABCDEF (odd parity already), twice */
    assert_int_equal(kv_keymat_combine_opt(w2, 2, KV_KEY_DES2, 1, key, sizeof(key), &p), 16);
    assert_int_equal(kv_hex_decode("0123456789ABCDEF0123456789ABCDEF", want, 16), 16);
    assert_bytes("single-DES des2 allowed", key, want, 16);
    assert_int_equal(kv_keymat_des_single_strength(key, 16), 1);
    assert_int_equal(kv_keymat_combine_opt(w2, 2, KV_KEY_DES2, 0, key, sizeof(key), &p),
                     KV_ERR_FORMAT);
    kv_keymat_problem_text(&p, KV_KEY_DES2, text, sizeof(text));
    assert_non_null(strstr(text, "--allow-single-des"));
    assert_int_equal(kv_keymat_combine_opt(w3, 1, KV_KEY_DES3, 1, key, sizeof(key), &p),
                     KV_ERR_FORMAT);
    assert_int_equal(p.kind, KV_KEYMAT_DEGENERATE);
    kv_keymat_problem_text(&p, KV_KEY_DES3, text, sizeof(text));
    assert_null(strstr(text, "--allow-single-des"));
    assert_int_equal(kv_keymat_combine_opt(ok, 1, KV_KEY_DES2, 1, key, sizeof(key), &p), 16);
    assert_int_equal(kv_keymat_des_single_strength(key, 16), 0);
    /* K1 K2 K3 with K2 = K3 is single-DES strength too */
    assert_int_equal(kv_hex_decode("0123456789ABCDEFFEDCBA9876543210FEDCBA9876543210", key, 24),
                     24);
    assert_int_equal(kv_keymat_des_single_strength(key, 24), 1);
}

/* --- KCV text -------------------------------------------------------------- */

static const struct {
    const char *in;
    int rc;
    const char *bytes;
} kcv_rows[] = {
    {"08D7B4", 3, "08D7B4"},        {"08d7", 2, "08D7"},
    {"08D7B", KV_ERR_FORMAT, NULL}, {"08D7B4C1", KV_ERR_FORMAT, NULL},
    {"08G7", KV_ERR_FORMAT, NULL},  {"", KV_ERR_FORMAT, NULL},
};

static void test_kcv_parse(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(kcv_rows) / sizeof(kcv_rows[0]); i++) {
        uint8_t out[3], want[3];
        int r = kv_kcv_parse(kcv_rows[i].in, out);
        if (r != kcv_rows[i].rc) {
            print_message("kcv '%s': rc %d, want %d\n", kcv_rows[i].in, r, kcv_rows[i].rc);
            fail();
        }
        if (r > 0) {
            assert_int_equal(kv_hex_decode(kcv_rows[i].bytes, want, sizeof(want)), r);
            assert_bytes(kcv_rows[i].in, out, want, (size_t)r);
        }
    }
    {
        const uint8_t k[3] = {0x08, 0xD7, 0xB4}, other[3] = {0x08, 0xD7, 0xB5};
        assert_true(kv_kcv_matches(k, other, 2));
        assert_false(kv_kcv_matches(k, other, 3));
        assert_false(kv_kcv_matches(k, other, 1)); /* 1 byte proves nothing */
    }
}

static void test_kcv_input(void **state)
{
    static const struct {
        kv_key_type t;
        size_t len;
        const char *method;
    } rows[] = {
        {KV_KEY_DES2, 8, "3DES-ECB"},     {KV_KEY_DES3, 8, "3DES-ECB"},
        {KV_KEY_AES128, 16, "AES-CMAC"},  {KV_KEY_AES256, 16, "AES-CMAC"},
        {KV_KEY_HMAC, 32, "HMAC-SHA256"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        size_t n = 0;
        const uint8_t *in = kv_kcv_input(rows[i].t, &n);
        assert_int_equal(n, rows[i].len);
        for (size_t j = 0; j < n; j++)
            assert_int_equal(in[j], 0);
        assert_non_null(strstr(kv_kcv_method(rows[i].t), rows[i].method));
    }
}

/* RFC 4493 §4 subkey generation example: L -> K1 -> K2 */
static void test_cmac_dbl(void **state)
{
    static const struct {
        const char *in, *out;
    } rows[] = {
        {"7df76b0c1ab899b33e42f047b91b546f", "fbeed618357133667c85e08f7236a8de"},
        {"fbeed618357133667c85e08f7236a8de", "f7ddac306ae266ccf90bc11ee46d513b"},
        {"00000000000000000000000000000000", "00000000000000000000000000000000"},
        {"80000000000000000000000000000000", "00000000000000000000000000000087"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        uint8_t in[16], want[16], out[16];
        assert_int_equal(kv_hex_decode(rows[i].in, in, 16), 16);
        assert_int_equal(kv_hex_decode(rows[i].out, want, 16), 16);
        kv_kcv_cmac_dbl(in, out);
        assert_bytes(rows[i].in, out, want, 16);
        kv_kcv_cmac_dbl(in, in); /* in place */
        assert_bytes(rows[i].in, in, want, 16);
    }
}

static void aes_ecb(const uint8_t key[16], const uint8_t in[16], uint8_t out[16])
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0;
    assert_non_null(c);
    assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_128_ecb(), NULL, key, NULL), 1);
    EVP_CIPHER_CTX_set_padding(c, 0);
    assert_int_equal(EVP_EncryptUpdate(c, out, &n, in, 16), 1);
    assert_int_equal(n, 16);
    EVP_CIPHER_CTX_free(c);
}

/*
 * The AES KCV from two ECB encryptions equals OpenSSL's AES-CMAC of 16 zero
 * bytes, and OpenSSL's CMAC gives RFC 4493 example 2 (checks the reference).
 */
static void test_aes_kcv_by_ecb(void **state)
{
    static const char *const keys[] = {"2b7e151628aed2a6abf7158809cf4f3c",
                                       "00112233445566778899AABBCCDDEEFF",
                                       "00000000000000000000000000000000"};
    uint8_t k[16], zero[16] = {0}, l[16], t[16], ref[16], msg[16], want[16];
    size_t n = sizeof(ref);
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "CMAC", NULL);
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("cipher", (char *)"AES-128-CBC", 0),
                           OSSL_PARAM_construct_end()};
    (void)state;
    assert_non_null(mac);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]) + 1; i++) {
        EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
        int rfc = i == sizeof(keys) / sizeof(keys[0]);
        assert_non_null(ctx);
        assert_int_equal(kv_hex_decode(keys[rfc ? 0 : i], k, 16), 16);
        if (rfc)
            assert_int_equal(kv_hex_decode("6bc1bee22e409f96e93d7e117393172a", msg, 16), 16);
        assert_int_equal(EVP_MAC_init(ctx, k, 16, params), 1);
        assert_int_equal(EVP_MAC_update(ctx, rfc ? msg : zero, 16), 1);
        assert_int_equal(EVP_MAC_final(ctx, ref, &n, sizeof(ref)), 1);
        EVP_MAC_CTX_free(ctx);
        if (rfc) {
            assert_int_equal(kv_hex_decode("070a16b46b4d4144f79bdd9dd04a287c", want, 16), 16);
            assert_bytes("RFC 4493 example 2", ref, want, 16);
            continue;
        }
        aes_ecb(k, zero, l);
        kv_kcv_cmac_dbl(l, l);
        aes_ecb(k, l, t);
        assert_bytes(keys[i], t, ref, 16);
    }
    EVP_MAC_free(mac);
}

/* --- usage policy and labels ------------------------------------------------ */

static const struct {
    const char *type, *usage; /* usage NULL: default */
    int ok;
    unsigned attrs;
    int companion;
} policy_rows[] = {
    {"des2", "cvk", 1, KV_HSM_USE_ENCRYPT, 1},
    {"des3", "cvk", 0, 0, 0},
    {"aes128", "cvk", 0, 0, 0},
    {"des2", "mac", 1, KV_HSM_USE_ENCRYPT, 1},
    {"aes128", "mac", 1, KV_HSM_USE_SIGN | KV_HSM_USE_VERIFY, 0},
    {"des2", "pvk", 1, KV_HSM_USE_ENCRYPT, 0},
    {"des3", "pvk", 1, KV_HSM_USE_ENCRYPT, 0},
    {"aes128", "pvk", 0, 0, 0},
    {"des2", "pin", 1, KV_HSM_USE_ENCRYPT | KV_HSM_USE_DECRYPT, 0},
    {"aes256", "pin", 1, KV_HSM_USE_ENCRYPT | KV_HSM_USE_DECRYPT, 0},
    {"hmac", "pin", 0, 0, 0},
    /* issue 11: an IMK of any role only derives, and has no companion */
    {"des2", "imk", 1, KV_HSM_USE_DERIVE, 0},
    {"des3", "imk", 0, 0, 0},
    {"des2", "imk-cvc3", 1, KV_HSM_USE_DERIVE, 0},
    {"des2", "imk-smi", 1, KV_HSM_USE_DERIVE, 0},
    {"des2", "imk-smc", 1, KV_HSM_USE_DERIVE, 0},
    {"aes128", "imk-smc", 0, 0, 0},
    {"hmac", "state-mac", 1, KV_HSM_USE_SIGN | KV_HSM_USE_VERIFY, 0},
    {"aes256", "pan-enc", 1, KV_HSM_USE_ENCRYPT | KV_HSM_USE_DECRYPT, 0},
    {"des2", "pan-enc", 0, 0, 0},
    {"des2", "kek", 1, KV_HSM_USE_WRAP | KV_HSM_USE_UNWRAP, 0},
    {"aes128", "kek", 1, KV_HSM_USE_WRAP | KV_HSM_USE_UNWRAP, 0},
    {"hmac", "token", 1, KV_HSM_USE_SIGN | KV_HSM_USE_VERIFY, 0},
    {"hmac", "evidence", 1, KV_HSM_USE_SIGN | KV_HSM_USE_VERIFY, 0},
    {"des2", "token", 0, 0, 0},
    {"des2", NULL, 1, KV_HSM_USE_ENCRYPT | KV_HSM_USE_DECRYPT, 0},
    {"hmac", NULL, 1, KV_HSM_USE_SIGN | KV_HSM_USE_VERIFY, 0},
};

static void test_policy(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(policy_rows) / sizeof(policy_rows[0]); i++) {
        kv_key_type t;
        kv_key_usage u = KV_USAGE_DEFAULT;
        unsigned attrs = 99;
        int comp = 99, r;
        char why[200] = "";
        assert_int_equal(kv_key_type_parse(policy_rows[i].type, &t), 0);
        if (policy_rows[i].usage != NULL)
            assert_int_equal(kv_key_usage_parse(policy_rows[i].usage, &u), 0);
        r = kv_keys_policy(t, u, &attrs, &comp, why, sizeof(why));
        if ((r == 0) != policy_rows[i].ok || attrs != policy_rows[i].attrs ||
            comp != policy_rows[i].companion) {
            print_message(
                "policy %s/%s: r=%d attrs=0x%x comp=%d (want ok=%d attrs=0x%x comp=%d) %s\n",
                policy_rows[i].type, policy_rows[i].usage ? policy_rows[i].usage : "-", r, attrs,
                comp, policy_rows[i].ok, policy_rows[i].attrs, policy_rows[i].companion, why);
            fail();
        }
        if (!policy_rows[i].ok)
            assert_non_null(strstr(why, "cannot have usage"));
    }
    {
        kv_key_type t;
        kv_key_usage u;
        assert_int_equal(kv_key_type_parse("des", &t), KV_ERR_ARG);
        assert_int_equal(kv_key_usage_parse("default", &u), KV_ERR_ARG);
        assert_int_equal(kv_key_usage_parse("cvv", &u), KV_ERR_ARG);
        /* derived roles and "none" are not given by the ceremony */
        assert_int_equal(kv_key_usage_parse("icc-ac", &u), KV_ERR_ARG);
        assert_int_equal(kv_key_usage_parse("none", &u), KV_ERR_ARG);
        assert_int_equal(kv_key_usage_parse("imk", &u), 0);
        assert_int_equal(u, KV_ROLE_IMK_AC);
        assert_string_equal(kv_key_usage_name(KV_USAGE_DEFAULT), "default");
        for (unsigned r = 0; r < KV_ROLE__COUNT; r++) {
            kv_key_role back;
            assert_int_equal(kv_key_role_parse(kv_key_role_name((kv_key_role)r), &back), 0);
            assert_int_equal(back, r);
        }
    }
}

static const struct {
    const char *label;
    int ok;
} label_rows[] = {
    {"cvk1", 1},
    {"lab.cvk-2_x", 1},
    {"", 0},
    {"cvk.aa", 0},
    {"has space", 0},
    {"pkcs11:object=x", 0},
    {"123456789012345678901234567890123456789012345678901234567890", 1},  /* 60 */
    {"1234567890123456789012345678901234567890123456789012345678901", 0}, /* 61 */
    {"uni\xc3\xa6", 0},
};

static void test_labels(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(label_rows) / sizeof(label_rows[0]); i++) {
        char why[200] = "";
        int r = kv_keys_label_check(label_rows[i].label, why, sizeof(why));
        if ((r == 0) != label_rows[i].ok) {
            print_message("label '%s': r=%d, want ok=%d (%s)\n", label_rows[i].label, r,
                          label_rows[i].ok, why);
            fail();
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parity),         cmocka_unit_test(test_combine),
        cmocka_unit_test(test_problems),       cmocka_unit_test(test_kcv_parse),
        cmocka_unit_test(test_kcv_input),      cmocka_unit_test(test_cmac_dbl),
        cmocka_unit_test(test_aes_kcv_by_ecb), cmocka_unit_test(test_policy),
        cmocka_unit_test(test_labels),         cmocka_unit_test(test_single_des),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * hsm/p11.h and the key ceremony (hsm/keys.h) against a real SoftHSM2 token
 * created in a temporary directory: known-answer tables through every
 * operation, the A||A companion, derivation, usage enforcement, key names
 * (label and pkcs11: URI), error texts, and the session reopen after the
 * session is closed under our feet. Skipped when SoftHSM2 is not installed.
 *
 * Expected values, none from the code under test: tests/data/VECTORS.md (3DES "Now is
 * t", the EMV ICC MK of IMK 0123456789ABCDEFFEDCBA9876543210); FIPS 81 (single
 * DES "Now is t" under 0123456789ABCDEF: 3FA40E8A984D4815); FIPS-197 C.1;
 * RFC 4493 example 2; values marked "OpenSSL" computed with the openssl
 * command line from those keys.
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
#include <dlfcn.h>
#include <p11-kit-1/p11-kit/pkcs11.h>

#include "hsm/keymat.h"
#include "hsm/emv_crypto.h"
#include "hsm/keys.h"
#include "hsm/p11.h"
#include "hsm/p11_admin.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/base/secure.h"

static char tmpdir[] = "/tmp/kv-test-p11.XXXXXX";
static kv_hsm *H;
static kv_secbuf *user_pin; /* "unit-user-1", the settings' locked PIN */

/* A PIN in a new locked buffer, as a front end's settings hold it. */
static kv_secbuf *locked(const char *pin)
{
    kv_secbuf *b = kv_secbuf_new(64);
    assert_non_null(b);
    memcpy(kv_secbuf_ptr(b), pin, strlen(pin) + 1);
    return b;
}

static void unhex(const char *s, uint8_t *out, size_t want)
{
    assert_int_equal(kv_hex_decode(s, out, 128), (int)want);
}

static void assert_hex(const char *row, const uint8_t *got, size_t n, const char *want_hex)
{
    uint8_t want[128];
    char g[257];
    int wl = kv_hex_decode(want_hex, want, sizeof(want));
    if (wl != (int)n || memcmp(got, want, n) != 0) {
        kv_hex_encode(got, n, g);
        print_message("row '%s':\n    got  %s\n    want %s\n", row, g, want_hex);
        fail();
    }
}

static int import(const char *label, kv_key_type t, kv_key_usage u, const char *hex)
{
    uint8_t key[64];
    kv_keys_result res;
    char why[512];
    int n = kv_hex_decode(hex, key, sizeof(key)), r;
    assert_true(n > 0);
    r = kv_keys_import(H, label, t, u, NULL, 0, key, (size_t)n, NULL, 0, &res, why, sizeof(why));
    if (r != 0)
        print_message("import %s: %s\n", label, why);
    return r;
}

static int setup(void **state)
{
    char conf[256], tokens[256];
    FILE *f;
    kv_hsm *h = NULL;
    kv_hsm_token_info ti;
    kv_hsm_config cfg = {.token = "kv-unit"};

    (void)state;
    if (access(KV_HSM_DEFAULT_MODULE, R_OK) != 0)
        return 0; /* each test skips */
    assert_non_null(mkdtemp(tmpdir));
    snprintf(tokens, sizeof(tokens), "%s/tokens", tmpdir);
    assert_int_equal(mkdir(tokens, 0700), 0);
    snprintf(conf, sizeof(conf), "%s/softhsm2.conf", tmpdir);
    assert_non_null(f = fopen(conf, "w"));
    fprintf(f, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens);
    fclose(f);
    setenv("SOFTHSM2_CONF", conf, 1);
    /* hsm/ reads no environment: these must change nothing */
    setenv("KORTVAGT_PKCS11_MODULE", "/nonexistent/libnothing.so", 1);
    setenv("KORTVAGT_TOKEN", "no-such-token", 1);
    setenv("KORTVAGT_PIN", "wrong-pin", 1);
    user_pin = locked("unit-user-1");

    assert_int_equal(kv_hsm_open_ex(&cfg, KV_HSM_OPEN_NO_TOKEN, &h), 0);
    assert_int_equal(kv_hsm_token_lookup(h, "kv-unit", &ti), KV_ERR_HSM_TOKEN);
    assert_int_equal(kv_hsm_token_init(h, "kv-unit", (const uint8_t *)"unit-so-1", 9,
                                       (const uint8_t *)"unit-user-1", 11, &ti),
                     0);
    assert_string_equal(ti.label, "kv-unit");
    kv_hsm_close(h);

    cfg.pin = user_pin;
    cfg.pin_len = 11;
    if (kv_hsm_open(&cfg, &H) != 0) {
        print_message("open: %s\n", kv_hsm_last_error(NULL));
        fail();
    }
    assert_int_equal(import("cvk", KV_KEY_DES2, KV_USAGE_CVK, "0123456789ABCDEFFEDCBA9876543210"),
                     0);
    assert_int_equal(import("imk", KV_KEY_DES2, KV_USAGE_IMK, "0123456789ABCDEFFEDCBA9876543210"),
                     0);
    assert_int_equal(import("zpk", KV_KEY_AES128, KV_USAGE_PIN, "000102030405060708090a0b0c0d0e0f"),
                     0);
    assert_int_equal(
        import("amac", KV_KEY_AES128, KV_USAGE_MAC, "2b7e151628aed2a6abf7158809cf4f3c"), 0);
    assert_int_equal(import("tok", KV_KEY_HMAC, KV_USAGE_TOKEN,
                            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"),
                     0);
    assert_int_equal(
        import("data", KV_KEY_DES2, KV_USAGE_DEFAULT, "0123456789ABCDEFFEDCBA9876543210"), 0);
    return 0;
}

static int teardown(void **state)
{
    char cmd[300];
    (void)state;
    kv_hsm_close(H);
    H = NULL;
    kv_secbuf_free(user_pin);
    user_pin = NULL;
    if (strchr(tmpdir, 'X') == NULL) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            return -1;
    }
    return 0;
}

#define NEED_HSM()                                                                                 \
    do {                                                                                           \
        if (H == NULL)                                                                             \
            skip();                                                                                \
    } while (0)

enum op { ECB_ENC, ECB_DEC, CBC_ENC, CBC_DEC, HMAC, CMAC };

static const struct {
    const char *name;
    const char *key;
    int companion;
    enum op op;
    const char *iv, *in, *out;
} kat[] = {
    {"3DES-ECB DES2 (tests/data/VECTORS.md)", "cvk", 0, ECB_ENC, NULL, "4E6F772069732074",
     "D80A0D8B2BAE5E4E"},
    {"companion A||A = single DES (FIPS 81)", "cvk", 1, ECB_ENC, NULL, "4E6F772069732074",
     "3FA40E8A984D4815"},
    {"3DES-CBC two blocks (OpenSSL)", "cvk", 0, CBC_ENC, "0000000000000000",
     "4E6F7720697320744E6F772069732074", "D80A0D8B2BAE5E4ECA323C95DB511FEA"},
    {"3DES-CBC decrypt (OpenSSL)", "data", 0, CBC_DEC, "0000000000000000",
     "D80A0D8B2BAE5E4ECA323C95DB511FEA", "4E6F7720697320744E6F772069732074"},
    {"3DES-ECB decrypt", "data", 0, ECB_DEC, NULL, "D80A0D8B2BAE5E4E", "4E6F772069732074"},
    {"AES-ECB FIPS-197 C.1", "zpk", 0, ECB_ENC, NULL, "00112233445566778899aabbccddeeff",
     "69c4e0d86a7b0430d8cdb78070b4c55a"},
    {"AES-ECB decrypt FIPS-197 C.1", "zpk", 0, ECB_DEC, NULL, "69c4e0d86a7b0430d8cdb78070b4c55a",
     "00112233445566778899aabbccddeeff"},
    {"AES-CMAC RFC 4493 example 2", "amac", 0, CMAC, NULL, "6bc1bee22e409f96e93d7e117393172a",
     "070a16b46b4d4144f79bdd9dd04a287c"},
    {"HMAC-SHA256 (OpenSSL)", "tok", 0, HMAC, NULL, "6B6F727476616774",
     "18EB82E854AECD1205E169FF5A919EA0DDCC6422989D842F0CC608EB9730261D"},
};

static void run_kat(size_t i)
{
    kv_hsm_key k;
    uint8_t in[64], iv[16], out[64];
    int n = kv_hex_decode(kat[i].in, in, sizeof(in)), r = KV_ERR_INTERNAL;
    size_t olen = (size_t)n;

    if (kv_hsm_key_find(H, kat[i].key, &k) != 0) {
        print_message("find %s: %s\n", kat[i].key, kv_hsm_last_error(H));
        fail();
    }
    if (kat[i].iv != NULL)
        kv_hex_decode(kat[i].iv, iv, sizeof(iv));
    switch (kat[i].op) {
    case ECB_ENC:
        r = kv_hsm_ecb_encrypt(H, &k, kat[i].companion, in, (size_t)n, out);
        break;
    case ECB_DEC:
        r = kv_hsm_ecb_decrypt(H, &k, kat[i].companion, in, (size_t)n, out);
        break;
    case CBC_ENC:
        r = kv_hsm_cbc_encrypt(H, &k, kat[i].companion, iv, in, (size_t)n, out);
        break;
    case CBC_DEC:
        r = kv_hsm_cbc_decrypt(H, &k, kat[i].companion, iv, in, (size_t)n, out);
        break;
    case HMAC:
        r = kv_hsm_hmac_sha256(H, &k, in, (size_t)n, out);
        olen = 32;
        break;
    case CMAC:
        r = kv_hsm_aes_cmac(H, &k, in, (size_t)n, out);
        olen = 16;
        break;
    }
    if (r != 0) {
        print_message("row '%s': %s\n", kat[i].name, kv_hsm_last_error(H));
        fail();
    }
    assert_hex(kat[i].name, out, olen, kat[i].out);
    /* in place */
    if (kat[i].op == ECB_ENC) {
        assert_int_equal(kv_hsm_ecb_encrypt(H, &k, kat[i].companion, in, (size_t)n, in), 0);
        assert_hex(kat[i].name, in, (size_t)n, kat[i].out);
    }
}

static void test_kat(void **state)
{
    (void)state;
    NEED_HSM();
    for (size_t i = 0; i < sizeof(kat) / sizeof(kat[0]); i++)
        run_kat(i);
}

/* EMV ICC MK option A of tests/data/VECTORS.md, derived in the token */
static void test_derive(void **state)
{
    kv_hsm_key imk, mk, again;
    uint8_t data[16], comp[16], zero[8] = {0}, now[8], out[8];
    (void)state;
    NEED_HSM();
    unhex("0123456789012345FEDCBA9876FEDCBA", data, 16);
    unhex("01234567890123450123456789012345", comp, 16);
    unhex("4E6F772069732074", now, 8);
    assert_int_equal(kv_hsm_key_find(H, "imk", &imk), 0);
    /* issue 11: an IMK only derives; it has no A||A companion and its role is recorded */
    assert_int_equal(imk.companion, 0);
    assert_int_equal(imk.role, KV_ROLE_IMK_AC);
    if (kv_hsm_derive_des2(H, &imk, data, comp, &mk) != 0) {
        print_message("derive: %s\n", kv_hsm_last_error(H));
        fail();
    }
    assert_int_equal(mk.session_object, 1);
    assert_int_equal(mk.type, KV_KEY_DES2);
    assert_int_equal(mk.role, KV_ROLE_ICC_AC);
    /* ICC MK F84315C7B95BD3B0C74694922C3808B0: 3DES-ECB of zeros (OpenSSL) */
    assert_int_equal(kv_hsm_ecb_encrypt(H, &mk, 0, zero, 8, out), 0);
    assert_hex("ICC MK KCV block", out, 8, "1DA5E16CBEFF24F1");
    /* its companion: single DES under F84315C7B95BD3B0 (OpenSSL) */
    assert_int_equal(kv_hsm_ecb_encrypt(H, &mk, 1, now, 8, out), 0);
    assert_hex("ICC MK companion", out, 8, "BBA70A59FAFB9187");
    /* a session key derived from the derived key (CKA_DERIVE on derived keys) */
    assert_int_equal(kv_hsm_derive_des2(H, &mk, data, NULL, &again), 0);
    assert_int_equal(again.companion, 0);
    kv_hsm_key_destroy(H, &again);
    kv_hsm_key_destroy(H, &mk);
    assert_int_equal(mk.handle, 0);
    /* a CVK may not derive */
    assert_int_equal(kv_hsm_key_find(H, "cvk", &imk), 0);
    assert_int_equal(kv_hsm_derive_des2(H, &imk, data, NULL, &mk), KV_ERR_HSM_KEY);
    assert_non_null(strstr(kv_hsm_last_error(H), "CKR_KEY_FUNCTION_NOT_PERMITTED"));
}

static void test_usage_enforced(void **state)
{
    kv_hsm_key k;
    uint8_t b[16] = {0}, o[32];
    (void)state;
    NEED_HSM();
    assert_int_equal(kv_hsm_key_find(H, "cvk", &k), 0);
    assert_int_equal(kv_hsm_ecb_decrypt(H, &k, 0, b, 8, o), KV_ERR_HSM_KEY);
    assert_non_null(strstr(kv_hsm_last_error(H), "CKR_KEY_FUNCTION_NOT_PERMITTED"));
    assert_non_null(strstr(kv_hsm_last_error(H), "'cvk'"));
    assert_int_equal(kv_hsm_hmac_sha256(H, &k, b, 8, o), KV_ERR_HSM_KEY); /* wrong type */
    assert_int_equal(kv_hsm_ecb_encrypt(H, &k, 0, b, 7, o), KV_ERR_ARG);  /* not a block */
    assert_int_equal(kv_hsm_ecb_encrypt(H, &k, 0, b, 0, o), KV_ERR_ARG);
    assert_int_equal(kv_hsm_key_find(H, "zpk", &k), 0);
    assert_int_equal(k.companion, 0);
    assert_int_equal(kv_hsm_ecb_encrypt(H, &k, 1, b, 16, o), KV_ERR_HSM_KEY); /* no companion */
    assert_int_equal(kv_hsm_aes_cmac(H, &k, b, 16, o), KV_ERR_HSM_KEY);       /* PIN key: no sign */
}

static const struct {
    const char *name;
    int rc;
    kv_key_type type;
    const char *err; /* substring of kv_hsm_last_error on failure */
} names[] = {
    {"cvk", 0, KV_KEY_DES2, NULL},
    {"pkcs11:object=cvk", 0, KV_KEY_DES2, NULL},
    {"pkcs11:token=kv-unit;object=zpk;type=secret-key", 0, KV_KEY_AES128, NULL},
    {"pkcs11:object=tok", 0, KV_KEY_HMAC, NULL},
    {"nosuch", KV_ERR_HSM_KEY, 0, "key 'nosuch' not found on token 'kv-unit'"},
    {"cvk.aa", 0, KV_KEY_DES2, NULL},
    {"pkcs11:token=other;object=cvk", KV_ERR_HSM_KEY, 0, "names token 'other'"},
    {"pkcs11:object=cvk;type=public", KV_ERR_HSM_KEY, 0, "not a secret key"},
    {"pkcs11:token=kv-unit", KV_ERR_ARG, 0, "neither object= nor id="},
    {"pkcs11:object=cvk?pin-value=1", KV_ERR_ARG, 0, "pin-value"},
    {"", KV_ERR_ARG, 0, "empty key label"},
};

static void test_names(void **state)
{
    (void)state;
    NEED_HSM();
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        kv_hsm_key k;
        int r = kv_hsm_key_find(H, names[i].name, &k);
        if (r != names[i].rc || (r == 0 && k.type != names[i].type) ||
            (r != 0 && strstr(kv_hsm_last_error(H), names[i].err) == NULL)) {
            print_message("name '%s': rc %d (want %d), error '%s'\n", names[i].name, r, names[i].rc,
                          kv_hsm_last_error(H));
            fail();
        }
    }
}

/* C_CloseAllSessions behind kv_hsm's back: the next call reopens, logs in, retries. */
static void test_reopen(void **state)
{
    kv_hsm_key k, mk;
    CK_FUNCTION_LIST_PTR f = NULL;
    CK_C_GetFunctionList get;
    CK_SLOT_ID slots[16];
    CK_ULONG n = 16;
    void *dl;
    uint8_t in[8], out[8], data[16] = {0};
    kv_hsm_token_info ti;
    (void)state;
    NEED_HSM();
    assert_int_equal(kv_hsm_key_find(H, "cvk", &k), 0);
    assert_int_equal(kv_hsm_key_find(H, "imk", &mk), 0);
    assert_int_equal(kv_hsm_derive_des2(H, &mk, data, NULL, &mk), 0);
    assert_int_equal(kv_hsm_get_token_info(H, &ti), 0);
    dl = dlopen(KV_HSM_DEFAULT_MODULE, RTLD_NOW | RTLD_NOLOAD);
    assert_non_null(dl);
    *(void **)(&get) = dlsym(dl, "C_GetFunctionList");
    assert_int_equal(get(&f), CKR_OK);
    assert_int_equal(f->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
    assert_int_equal(f->C_CloseAllSessions(ti.slot), CKR_OK);

    unhex("4E6F772069732074", in, 8);
    if (kv_hsm_ecb_encrypt(H, &k, 0, in, 8, out) != 0) {
        print_message("after reopen: %s\n", kv_hsm_last_error(H));
        fail();
    }
    assert_hex("after reopen", out, 8, "D80A0D8B2BAE5E4E");
    assert_int_equal(kv_hsm_ecb_encrypt(H, &k, 1, in, 8, out), 0);
    assert_hex("companion after reopen", out, 8, "3FA40E8A984D4815");
    /* a derived key died with the old session: a clear error, no crash */
    assert_int_not_equal(kv_hsm_ecb_encrypt(H, &mk, 0, in, 8, out), 0);
    assert_non_null(strstr(kv_hsm_last_error(H), "derive the key again"));
    kv_hsm_key_destroy(H, &mk);
    dlclose(dl);
}

/*
 * Issue 11, finding 7: a held kv_hsm_key follows its label when the key is
 * deleted and created again by another session (as another process would),
 * refuses a key that came back with another role, notices a deleted key, and
 * kv_hsm_keys_flush makes the next find ask the token.
 */
static int import_on(kv_hsm *h, const char *label, kv_key_usage u, const char *hex)
{
    uint8_t key[16];
    kv_keys_result res;
    char why[512];
    int r;
    assert_int_equal(kv_hex_decode(hex, key, 16), 16);
    r = kv_keys_import(h, label, KV_KEY_DES2, u, NULL, 0, key, 16, NULL, 0, &res, why, sizeof(why));
    if (r != 0)
        print_message("import %s: %s\n", label, why);
    return r;
}

static void test_rotation(void **state)
{
    kv_hsm_config cfg = {.token = "kv-unit", .pin = user_pin, .pin_len = 11};
    kv_hsm *h2 = NULL;
    kv_hsm_key k, k2;
    uint8_t zero[8] = {0}, out[8];
    char why[256];
    int deleted = 0;
    (void)state;
    NEED_HSM();
    assert_int_equal(kv_hsm_open(&cfg, &h2), 0);
    /* version 1: the VECTORS.md key, 3DES-ECB of zeros 08D7B4FB629D0885 */
    assert_int_equal(import_on(H, "rot", KV_USAGE_PVK, "0123456789ABCDEFFEDCBA9876543210"), 0);
    assert_int_equal(kv_hsm_key_find(H, "rot", &k), 0);
    assert_int_equal(k.role, KV_ROLE_PVK);
    assert_int_equal(kv_hsm_ecb_encrypt(H, &k, 0, zero, 8, out), 0);
    assert_hex("rot v1", out, 8, "08D7B4FB629D0885");
    /* rotated by another session: the held struct uses the new key at once */
    assert_int_equal(kv_keys_delete(h2, "rot", &deleted, why, sizeof(why)), 0);
    assert_int_equal(import_on(h2, "rot", KV_USAGE_PVK, "FEDCBA98765432100123456789ABCDEF"), 0);
    if (kv_hsm_ecb_encrypt(H, &k, 0, zero, 8, out) != 0) {
        print_message("after rotation: %s\n", kv_hsm_last_error(H));
        fail();
    }
    assert_false(memcmp(out, "\x08\xD7\xB4\xFB\x62\x9D\x08\x85", 8) == 0);
    /* a find within the staleness bound gives the same (remapped) key */
    assert_int_equal(kv_hsm_key_find(H, "rot", &k2), 0);
    assert_int_equal(kv_hsm_ecb_encrypt(H, &k2, 0, zero, 8, zero + 0), 0);
    assert_memory_equal(zero, out, 8);
    memset(zero, 0, sizeof(zero));
    /* back with another role: never used under the old one */
    assert_int_equal(kv_keys_delete(h2, "rot", &deleted, why, sizeof(why)), 0);
    assert_int_equal(import_on(h2, "rot", KV_USAGE_CVK, "FEDCBA98765432100123456789ABCDEF"), 0);
    assert_int_equal(kv_hsm_ecb_encrypt(H, &k, 0, zero, 8, out), KV_ERR_HSM_KEY);
    assert_non_null(strstr(kv_hsm_last_error(H), "changed on the token"));
    assert_int_equal(kv_hsm_key_find(H, "rot", &k2), 0);
    assert_int_equal(k2.role, KV_ROLE_CVK);
    assert_int_not_equal(k2.companion, 0);
    /* deleted: an operation on the held key says so */
    assert_int_equal(kv_keys_delete(h2, "rot", &deleted, why, sizeof(why)), 0);
    assert_int_equal(kv_hsm_ecb_encrypt(H, &k2, 0, zero, 8, out), KV_ERR_HSM_KEY);
    assert_non_null(strstr(kv_hsm_last_error(H), "no longer on token"));
    /* flush: the next find asks the token (no 5 s wait) */
    assert_int_equal(import_on(h2, "rot", KV_USAGE_PVK, "0123456789ABCDEFFEDCBA9876543210"), 0);
    kv_hsm_keys_flush(H);
    assert_int_equal(kv_hsm_key_find(H, "rot", &k2), 0);
    assert_int_equal(k2.role, KV_ROLE_PVK);
    assert_int_equal(kv_hsm_ecb_encrypt(H, &k2, 0, zero, 8, out), 0);
    assert_hex("rot v4", out, 8, "08D7B4FB629D0885");
    /* a held struct from before the flush works too */
    assert_int_equal(kv_hsm_ecb_encrypt(H, &k, 0, zero, 8, out), 0);
    assert_hex("held after flush", out, 8, "08D7B4FB629D0885");
    assert_int_equal(kv_keys_delete(h2, "rot", &deleted, why, sizeof(why)), 0);
    kv_hsm_close(h2);
}

/* Issue 11: emv_crypto names the role it needs and gives derived keys theirs. */
static void test_emv_roles(void **state)
{
    kv_hsm_key imk, cvk, mk, sk;
    kv_emv_params p;
    kv_emv_txn t;
    uint8_t ac[8], data[8] = {1, 2, 3, 4, 5, 6, 7, 8}, r[8] = {0, 1};
    (void)state;
    NEED_HSM();
    assert_int_equal(kv_hsm_key_find(H, "imk", &imk), 0);
    assert_int_equal(kv_hsm_key_find(H, "cvk", &cvk), 0);
    assert_int_equal(kv_hsm_derive_template(H) != 0, 1); /* tried: 1 or -1 (SoftHSM2 2.6) */
    assert_int_equal(
        kv_hsm_emv_derive_icc_mk(H, &imk, KV_EMV_MK_OPTION_A, "9901234567890123", "45", 1, &mk), 0);
    assert_int_equal(mk.role, KV_ROLE_ICC_AC);
    assert_int_equal(kv_hsm_emv_derive_session_key(H, &mk, r, &sk), 0);
    assert_int_equal(sk.role, KV_ROLE_ICC_AC);
    kv_hsm_key_destroy(H, &sk);
    kv_hsm_key_destroy(H, &mk);
    /* a CVK is no IMK, and an IMK is no ICC master key */
    assert_int_equal(
        kv_hsm_emv_derive_icc_mk(H, &cvk, KV_EMV_MK_OPTION_A, "9901234567890123", "45", 0, &mk),
        KV_ERR_HSM_ROLE);
    assert_non_null(strstr(kv_hsm_last_error(H), "key 'cvk' has role cvk"));
    assert_int_equal(kv_hsm_emv_derive_session_key(H, &imk, r, &sk), KV_ERR_HSM_ROLE);
    assert_non_null(strstr(kv_hsm_last_error(H), "needs a icc-ac key"));
    assert_int_equal(kv_emv_params_for_cvn(10, &p), 0);
    memset(&t, 0, sizeof(t));
    t.pan = "9901234567890123";
    t.psn = "45";
    t.data = data;
    t.data_len = sizeof(data);
    assert_int_equal(kv_hsm_arqc_generate(H, &cvk, &p, &t, ac), KV_ERR_HSM_ROLE);
    assert_non_null(strstr(kv_hsm_last_error(H), "this operation needs a imk key"));
    assert_int_equal(kv_hsm_arqc_generate(H, &imk, &p, &t, ac), 0);
}

static void test_open_errors(void **state)
{
    kv_hsm *h = NULL;
    kv_secbuf *wrong = locked("wrong-pin");
    kv_hsm_config missing = {"/nonexistent/libnothing.so", "kv-unit", user_pin, 11};
    kv_hsm_config notoken = {NULL, "no-such-token", user_pin, 11};
    kv_hsm_config nopin = {NULL, "kv-unit", NULL, 0};
    kv_hsm_config ok = {NULL, "kv-unit", wrong, 9};
    (void)state;
    NEED_HSM();
    /* PKCS#11 login belongs to the process: with H open, any PIN would do */
    kv_hsm_close(H);
    H = NULL;
    assert_int_equal(kv_hsm_open(&missing, &h), KV_ERR_HSM_MODULE);
    assert_null(h);
    assert_non_null(strstr(kv_hsm_last_error(NULL), "/nonexistent/libnothing.so"));
    assert_int_equal(kv_hsm_open(&notoken, &h), KV_ERR_HSM_TOKEN);
    assert_non_null(strstr(kv_hsm_last_error(NULL), "'no-such-token' not found"));
    /* no PIN in the settings: a login error, after the module and token were found */
    assert_int_equal(kv_hsm_open(&nopin, &h), KV_ERR_HSM_LOGIN);
    assert_null(h);
    assert_non_null(strstr(kv_hsm_last_error(NULL), "no user PIN for token 'kv-unit'"));
    /* without a login no PIN is needed */
    assert_int_equal(kv_hsm_open_ex(&nopin, KV_HSM_OPEN_NO_LOGIN, &h), 0);
    kv_hsm_close(h);
    assert_int_equal(kv_hsm_open(&ok, &h), KV_ERR_HSM_LOGIN);
    assert_null(h);
    assert_string_equal(kv_hsm_last_error(NULL),
                        "token login failed: CKR_PIN_INCORRECT (wrong user PIN)");
    /* a PIN given as bytes wins over the one in the settings */
    assert_int_equal(kv_hsm_open_pin(&ok, (const uint8_t *)"unit-user-1", 11, &h), 0);
    kv_hsm_close(h);
    ok.pin = user_pin;
    ok.pin_len = 11;
    assert_int_equal(kv_hsm_open_pin(&ok, (const uint8_t *)"unit-user-2", 11, &h),
                     KV_ERR_HSM_LOGIN);
    assert_null(h);
    assert_int_equal(kv_hsm_open(&ok, &h), 0);
    kv_hsm_close(h);
    kv_secbuf_free(wrong);
}

/* PIN input: a value, else a file, else stdin; the sources named in errors. */
static void test_pin_read(void **state)
{
    char path[300];
    kv_secbuf *b = NULL;
    size_t n = 0;
    FILE *f;
    kv_hsm_pin_source src = {"1234-value", "$X_PIN", NULL, "$X_PIN_FILE", NULL};
    (void)state;
    assert_int_equal(kv_hsm_pin_read(&src, &b, &n), 0);
    assert_int_equal(n, 10);
    assert_string_equal((const char *)kv_secbuf_ptr(b), "1234-value");
    kv_secbuf_free(b);
    snprintf(path, sizeof(path), "/tmp/kv-test-p11-pin.%d", (int)getpid());
    assert_non_null(f = fopen(path, "w"));
    fputs("from-file\nsecond line\n", f);
    fclose(f);
    src.value = NULL;
    src.file = path;
    assert_int_equal(kv_hsm_pin_read(&src, &b, &n), 0);
    assert_string_equal((const char *)kv_secbuf_ptr(b), "from-file");
    assert_int_equal(n, 9);
    kv_secbuf_free(b);
    /* the value wins over the file */
    src.value = "v";
    assert_int_equal(kv_hsm_pin_read(&src, &b, &n), 0);
    assert_string_equal((const char *)kv_secbuf_ptr(b), "v");
    kv_secbuf_free(b);
    unlink(path);
    src.value = NULL;
    assert_int_equal(kv_hsm_pin_read(&src, &b, &n), KV_ERR_IO);
    assert_null(b);
    assert_non_null(strstr(kv_hsm_last_error(NULL), "($X_PIN_FILE)"));
}

/*
 * Weak keys: a DES2 key with equal halves is refused by kv_keys_import,
 * stored marked by kv_keys_import_single_des (CKA_ID prefix), found with
 * weak set, refused by the strength check unless allowed; DES3 with equal
 * parts is refused either way. Key 0123456789ABCDEF twice: 3DES = single DES,
 * so "Now is t" gives FIPS 81's 3FA40E8A984D4815.
 */
static void test_weak(void **state)
{
    uint8_t key[24], in[8], out[8];
    uint8_t id[2] = {0xAB, 0xCD};
    kv_keys_result res;
    kv_hsm_key k, d;
    kv_hsm_object_info info;
    unsigned long o;
    char why[512];
    (void)state;
    NEED_HSM();
    unhex("0123456789ABCDEF0123456789ABCDEF", key, 16);
    assert_int_equal(kv_keys_import(H, "weak", KV_KEY_DES2, KV_USAGE_PVK, NULL, 0, key, 16, NULL, 0,
                                    &res, why, sizeof(why)),
                     KV_ERR_ARG);
    assert_non_null(strstr(why, "single-DES strength"));
    assert_int_equal(kv_hsm_object_find(H, "weak", &o), KV_ERR_HSM_KEY);
    /* KCV of single DES 0123456789ABCDEF over zeros (OpenSSL): D5D44F */
    unhex("D5D44F", out, 3);
    /* issue 11: a CVK (encrypt + A||A), since an IMK no longer encrypts */
    assert_int_equal(kv_keys_import_single_des(H, "weak", KV_KEY_DES2, KV_USAGE_CVK, id, 2, key, 16,
                                               out, 3, &res, why, sizeof(why)),
                     0);
    assert_true(res.weak);
    assert_true(res.has_companion);
    assert_int_equal(kv_hsm_key_find(H, "weak", &k), 0);
    assert_true(kv_hsm_key_is_weak(&k));
    unhex("4E6F772069732074", in, 8);
    assert_int_equal(kv_hsm_ecb_encrypt(H, &k, 0, in, 8, out), 0);
    assert_hex("weak key = single DES (FIPS 81)", out, 8, "3FA40E8A984D4815");
    assert_int_equal(kv_hsm_key_check_strength(H, &k, 1), 0);
    assert_int_equal(kv_hsm_key_check_strength(H, &k, 0), KV_ERR_HSM_KEY);
    assert_non_null(strstr(kv_hsm_last_error(H), "key 'weak' has single-DES strength"));
    /* a handle that refuses weak keys: find fails, and says why through k.weak */
    kv_hsm_refuse_weak_keys(H, 1);
    assert_int_equal(kv_hsm_key_find(H, "weak", &k), KV_ERR_HSM_KEY);
    assert_true(k.weak);
    assert_int_equal(k.handle, 0);
    assert_string_equal(k.label, "weak");
    assert_int_equal(kv_hsm_key_find(H, "no-such-key", &k), KV_ERR_HSM_KEY);
    assert_false(k.weak);
    assert_int_equal(kv_hsm_key_find(H, "cvk", &k), 0);
    kv_hsm_refuse_weak_keys(H, 0);
    assert_int_equal(kv_hsm_key_find(H, "weak", &k), 0);
    /* a derived key is no stronger than its parent (a weak IMK: issue 11, only IMKs derive) */
    unhex("D5D44F", out, 3);
    assert_int_equal(kv_keys_import_single_des(H, "weakimk", KV_KEY_DES2, KV_USAGE_IMK, NULL, 0,
                                               key, 16, out, 3, &res, why, sizeof(why)),
                     0);
    assert_int_equal(kv_hsm_key_find(H, "weakimk", &d), 0);
    assert_true(d.weak);
    assert_int_equal(d.role, KV_ROLE_IMK_AC);
    assert_int_equal(kv_hsm_derive_des2(H, &d, key, NULL, &d), 0);
    assert_true(kv_hsm_key_is_weak(&d));
    kv_hsm_key_destroy(H, &d);
    /* the mark is the CKA_ID prefix, followed by the ID asked for */
    assert_int_equal(kv_hsm_object_find(H, "weak", &o), 0);
    assert_int_equal(kv_hsm_object_get_info(H, o, &info), 0);
    assert_true(info.weak);
    /* issue 11: then the role mark, then the ID asked for */
    {
        static const char mark[] = KV_HSM_WEAK_ID_PREFIX KV_HSM_ROLE_ID_PREFIX "cvk:";
        const uint8_t *rest;
        size_t rest_len;
        assert_int_equal(info.id_len, sizeof(mark) - 1 + 2);
        assert_memory_equal(info.id, mark, sizeof(mark) - 1);
        assert_memory_equal(info.id + sizeof(mark) - 1, id, 2);
        assert_int_equal(kv_hsm_id_role(info.id, info.id_len, &rest, &rest_len), KV_ROLE_CVK);
        assert_int_equal(rest_len, 2);
        assert_memory_equal(rest, id, 2);
        assert_int_equal(info.role, KV_ROLE_CVK);
        assert_false(info.modifiable);
        assert_int_equal(info.copyable, 0);
    }
    /* a strong key is not weak */
    assert_int_equal(kv_hsm_key_find(H, "cvk", &k), 0);
    assert_false(kv_hsm_key_is_weak(&k));
    assert_int_equal(kv_hsm_key_check_strength(H, &k, 0), 0);
    assert_int_equal(kv_hsm_object_find(H, "cvk", &o), 0);
    assert_int_equal(kv_hsm_object_get_info(H, o, &info), 0);
    assert_false(info.weak);
    /* triple-length with equal parts: refused even with single DES allowed */
    unhex("0123456789ABCDEF0123456789ABCDEFFEDCBA9876543210", key, 24);
    assert_int_equal(kv_keys_import_single_des(H, "weak3", KV_KEY_DES3, KV_USAGE_PVK, NULL, 0, key,
                                               24, NULL, 0, &res, why, sizeof(why)),
                     KV_ERR_ARG);
    assert_int_equal(kv_hsm_object_find(H, "weak3", &o), KV_ERR_HSM_KEY);
    /* a strong key through the single-DES door is stored unmarked */
    unhex("0123456789ABCDEFFEDCBA9876543210", key, 16);
    assert_int_equal(kv_keys_import_single_des(H, "strong2", KV_KEY_DES2, KV_USAGE_PVK, NULL, 0,
                                               key, 16, NULL, 0, &res, why, sizeof(why)),
                     0);
    assert_false(res.weak);
    assert_int_equal(kv_hsm_key_find(H, "strong2", &k), 0);
    assert_false(kv_hsm_key_is_weak(&k));
    int deleted = 0;
    assert_int_equal(kv_keys_delete(H, "weak", &deleted, why, sizeof(why)), 0);
    assert_int_equal(deleted, 2);
    assert_int_equal(kv_keys_delete(H, "strong2", &deleted, why, sizeof(why)), 0);
}

/* The ceremony on the token: KCV mismatch stores nothing; companions; delete. */
static void test_ceremony(void **state)
{
    uint8_t key[16], kcv[3];
    kv_keys_result res;
    char why[512];
    unsigned long o;
    int deleted = 0;
    (void)state;
    NEED_HSM();
    unhex("0123456789ABCDEFFEDCBA9876543210", key, 16);
    unhex("08D7B5", kcv, 3);
    assert_int_equal(kv_keys_import(H, "bad", KV_KEY_DES2, KV_USAGE_CVK, NULL, 0, key, 16, kcv, 3,
                                    &res, why, sizeof(why)),
                     KV_ERR_HSM_KCV);
    assert_non_null(strstr(why, "computes 08D7B4"));
    assert_int_equal(kv_hsm_object_find(H, "bad", &o), KV_ERR_HSM_KEY);
    assert_int_equal(kv_hsm_object_find(H, "bad.aa", &o), KV_ERR_HSM_KEY);
    unhex("08D7B4", kcv, 3);
    assert_int_equal(kv_keys_import(H, "good", KV_KEY_DES2, KV_USAGE_MAC, NULL, 0, key, 16, kcv, 3,
                                    &res, why, sizeof(why)),
                     0);
    assert_true(res.has_companion);
    /* A||A with A = 0123456789ABCDEF: single DES of zeros (OpenSSL: D5D44FF720683D0D) */
    assert_hex("companion KCV", res.companion_kcv, 3, "D5D44F");
    assert_int_equal(kv_keys_import(H, "good", KV_KEY_DES2, KV_USAGE_MAC, NULL, 0, key, 16, NULL, 0,
                                    &res, why, sizeof(why)),
                     KV_ERR_ARG);
    assert_non_null(strstr(why, "exists already"));
    assert_int_equal(kv_keys_delete(H, "good.aa", &deleted, why, sizeof(why)), KV_ERR_ARG);
    assert_int_equal(kv_keys_delete(H, "good", &deleted, why, sizeof(why)), 0);
    assert_int_equal(deleted, 2);
    assert_int_equal(kv_keys_delete(H, "good", &deleted, why, sizeof(why)), KV_ERR_HSM_KEY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kat),
        cmocka_unit_test(test_derive),
        cmocka_unit_test(test_usage_enforced),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_ceremony),
        cmocka_unit_test(test_weak),
        cmocka_unit_test(test_pin_read),
        cmocka_unit_test(test_reopen),
        cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_emv_roles),
        cmocka_unit_test(test_open_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

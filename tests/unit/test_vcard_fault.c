/*
 * The virtual card's test-lab faults and transaction log (tests/data/README.md
 * "Faults" and "Transaction log"), driven in process through kv_vcard_process:
 * one test per fault kind, the strict parser's messages, and the log (9F4D in
 * the FCI and by GET DATA, 9F4F, records written when a GENERATE AC ends a
 * transaction, newest first, cyclic, kept in the state file).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "apdu/tlv.h"
#include "apdu/vcard/vcard.h"
#include "apdu/vcard/vpcd.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "tests/unit/apdu_test_util.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

static EVP_PKEY *icc_key;
static char *icc_pem;

static int setup(void **state)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p;
    long n;
    (void)state;
    icc_key = EVP_RSA_gen(768);
    if (icc_key == NULL || b == NULL ||
        !PEM_write_bio_PrivateKey(b, icc_key, NULL, NULL, 0, NULL, NULL))
        return -1;
    n = BIO_get_mem_data(b, &p);
    icc_pem = strndup(p, (size_t)n);
    BIO_free(b);
    return icc_pem == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(icc_key);
    free(icc_pem);
    return 0;
}

#define CDOL1 "9F02069F03069F1A0295055F2A029A039C019F3704"
#define CDOL2 "8A029F02069F03069F1A0295055F2A029A039C019F3704"
/* amount 1000 (10.00), other 0, country 0208, TVR 0, currency 0978, date 2025-11-21, type 00 */
#define CDOL1_DATA "000000001000 000000000000 0208 0000000000 0978 251121 00 11223344"
#define CDOL2_TC "3030 000000001000 000000000000 0208 0000000000 0978 251121 00 55667788"
#define LOG_FORMAT "9F02065F2A029A039C019F36029F2701"

/*
 * A CVN 10 card (ATC 0010, AIP 3901, one record on SFI 2) with the members
 * extra (",\"faults\": [...]" etc.; may be "") added to the profile.
 */
static kv_vcard *card_with(const char *extra, char *why, size_t whylen, int *rc)
{
    char text[6000];
    json_t *root;
    json_error_t e;
    kv_vcard *vc = NULL;
    char *dump;
    snprintf(text, sizeof(text),
             "{\"atr\": \"3B00\", \"applications\": [{\"aid\": \"A0000000031010\","
             " \"aip\": \"3901\", \"afl\": \"10010100\", \"gpo_format\": 1,"
             " \"records\": [{\"sfi\": 2, \"record\": 1, \"tags\": [[\"5A\", \"9901234567890123\"],"
             " [\"5F24\", \"301231\"], [\"5F34\", \"45\"], [\"8C\", \"" CDOL1 "\"],"
             " [\"8D\", \"" CDOL2 "\"], [\"9F49\", \"9F3704\"]]}]}],"
             " \"data\": {\"9F36\": \"0010\"},"
             " \"keys\": {\"cvn\": 10, \"icc_mk_ac\": \"F84315C7B95BD3B0C74694922C3808B0\"}%s}",
             extra);
    root = json_loads(text, 0, &e);
    if (root == NULL) {
        print_error("test profile: %s\n", e.text);
        fail();
    }
    json_object_set_new(json_object_get(root, "keys"), "icc_rsa", json_string(icc_pem));
    dump = json_dumps(root, 0);
    *rc = kv_vcard_load_text(dump, strlen(dump), &vc, why, whylen);
    free(dump);
    json_decref(root);
    return vc;
}

static kv_vcard *card(const char *extra)
{
    char why[256] = "";
    int rc;
    kv_vcard *vc = card_with(extra, why, sizeof(why), &rc);
    if (rc != 0) {
        print_error("profile: %s\n", why);
        fail();
    }
    return vc;
}

/* Send hex; SW back, data into resp/rlen when given. The process call must succeed. */
static unsigned xchg(kv_vcard *vc, const char *hex, uint8_t *resp, size_t *rlen)
{
    uint8_t c[300], out[KV_VCARD_RAPDU_MAX];
    size_t n = unhex(hex, c, sizeof(c)), olen = 0;
    assert_int_equal(kv_vcard_process(vc, c, n, out, sizeof(out), &olen), 0);
    assert_true(olen >= 2);
    if (resp != NULL) {
        memcpy(resp, out, olen - 2);
        *rlen = olen - 2;
    }
    return (unsigned)out[olen - 2] << 8 | out[olen - 1];
}

/* The return of kv_vcard_process itself (for tears). */
static int process_rc(kv_vcard *vc, const char *hex, size_t *olen)
{
    uint8_t c[300], out[KV_VCARD_RAPDU_MAX];
    size_t n = unhex(hex, c, sizeof(c));
    return kv_vcard_process(vc, c, n, out, sizeof(out), olen);
}

#define SELECT "00A4040007A000000003101000"
#define GPO "80A8000002830000"
#define READ_REC "00B2011400"

static void start(kv_vcard *vc)
{
    assert_int_equal(xchg(vc, SELECT, NULL, NULL), 0x9000);
    assert_int_equal(xchg(vc, GPO, NULL, NULL), 0x9000);
}

static unsigned genac(kv_vcard *vc, const char *p1, const char *data_hex, uint8_t *r, size_t *rl)
{
    char cmd[400];
    uint8_t d[128];
    size_t n = unhex(data_hex, d, sizeof(d));
    snprintf(cmd, sizeof(cmd), "80AE%s00%02zX%s00", p1, n, hx(d, n));
    return xchg(vc, cmd, r, rl);
}

static void value_of(const uint8_t *r, size_t n, uint32_t tag, uint8_t *v, size_t *vlen)
{
    kv_tlv t;
    if (kv_tlv_find(r, n, tag, &t) != 0) {
        print_error("tag %X not in %s\n", (unsigned)tag, hx(r, n));
        fail();
    }
    memcpy(v, t.value, t.len);
    *vlen = t.len;
}

/* ---- faults ------------------------------------------------------------- */

static void test_sw_nth_and_power_cycle(void **state)
{
    kv_vcard *vc = card(",\"faults\": [{\"ins\": \"B2\", \"nth\": 2, \"sw\": \"6A83\"}]");
    uint8_t r[256];
    size_t rl = 99;
    (void)state;
    assert_int_equal(kv_vcard_fault_count(vc), 1);
    start(vc);
    assert_int_equal(xchg(vc, READ_REC, r, &rl), 0x9000);
    assert_int_equal(xchg(vc, READ_REC, r, &rl), 0x6A83);
    assert_int_equal(rl, 0); /* the fault's SW alone */
    assert_int_equal(xchg(vc, READ_REC, r, &rl), 0x9000);
    /* the count starts again at power on / reset */
    kv_vcard_reset(vc);
    start(vc);
    assert_int_equal(xchg(vc, READ_REC, NULL, NULL), 0x9000);
    assert_int_equal(xchg(vc, READ_REC, NULL, NULL), 0x6A83);
    kv_vcard_free(vc);
}

static void test_sw_every_time_p1_p2_and_not_run(void **state)
{
    kv_vcard *vc = card(",\"faults\": [{\"ins\": \"B2\", \"p1\": \"01\", \"p2\": \"14\","
                        " \"sw\": \"6581\"}, {\"ins\": \"A8\", \"sw\": \"6985\"}]");
    (void)state;
    assert_int_equal(xchg(vc, SELECT, NULL, NULL), 0x9000);
    /* GPO refused by the fault: not run, the ATC stays */
    assert_int_equal(xchg(vc, GPO, NULL, NULL), 0x6985);
    assert_int_equal(kv_vcard_atc(vc), 0x0010);
    assert_int_equal(xchg(vc, READ_REC, NULL, NULL), 0x6581);
    assert_int_equal(xchg(vc, READ_REC, NULL, NULL), 0x6581);
    /* another record (P1 02) does not match: the card's own answer */
    assert_int_equal(xchg(vc, "00B2021400", NULL, NULL), 0x6A83);
    kv_vcard_free(vc);
}

static void test_once(void **state)
{
    kv_vcard *vc = card(",\"faults\": [{\"ins\": \"A4\", \"once\": true, \"sw\": \"6A82\"}]");
    (void)state;
    assert_int_equal(xchg(vc, SELECT, NULL, NULL), 0x6A82);
    assert_int_equal(xchg(vc, SELECT, NULL, NULL), 0x9000);
    kv_vcard_reset(vc); /* not re-armed */
    assert_int_equal(xchg(vc, SELECT, NULL, NULL), 0x9000);
    kv_vcard_free(vc);
}

static void test_corrupt_ac(void **state)
{
    kv_vcard *good = card(""),
             *bad = card(",\"faults\": [{\"ins\": \"AE\", \"corrupt\": \"ac\", \"bit\": 63}]");
    uint8_t r1[256], r2[256], ac1[8], ac2[8];
    size_t l1, l2, n1, n2;
    (void)state;
    start(good);
    start(bad);
    assert_int_equal(genac(good, "80", CDOL1_DATA, r1, &l1), 0x9000);
    assert_int_equal(genac(bad, "80", CDOL1_DATA, r2, &l2), 0x9000);
    assert_int_equal(l1, l2);
    value_of(r1, l1, 0x9F26, ac1, &n1);
    value_of(r2, l2, 0x9F26, ac2, &n2);
    assert_int_equal(n1, 8);
    assert_int_equal(n2, 8);
    ac2[7] ^= 0x01; /* bit 63: the last bit of the last byte */
    assert_bytes("AC with the bit flipped back", ac2, 8, ac1, 8);
    kv_vcard_free(good);
    kv_vcard_free(bad);
}

/* RSA-recover an SDAD with the ICC public key: 1 when it has the 6A ... BC frame. */
static int sdad_frame_ok(const uint8_t *s, size_t n)
{
    uint8_t out[256];
    size_t outlen = sizeof(out);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(icc_key, NULL);
    int ok;
    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_verify_recover_init(ctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING), 1);
    ok = EVP_PKEY_verify_recover(ctx, out, &outlen, s, n) == 1 && outlen == n && out[0] == 0x6A &&
         out[n - 1] == 0xBC;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

static void test_corrupt_sdad(void **state)
{
    /* INTERNAL AUTHENTICATE answers 80 { SDAD }; bit 0 is the top bit of the first byte */
    kv_vcard *vc = card(",\"faults\": [{\"ins\": \"88\", \"corrupt\": \"sdad\"}]");
    uint8_t r[256], s[256];
    size_t rl, sl;
    (void)state;
    start(vc);
    assert_int_equal(xchg(vc,
                          "008800000411223344"
                          "00",
                          r, &rl),
                     0x9000);
    value_of(r, rl, 0x80, s, &sl);
    assert_int_equal(sl, (size_t)EVP_PKEY_get_size(icc_key));
    s[0] ^= 0x80;
    assert_true(sdad_frame_ok(s, sl)); /* exactly that bit was flipped */
    kv_vcard_free(vc);
}

static void test_corrupt_sdad_cda(void **state)
{
    kv_vcard *vc = card(",\"faults\": [{\"ins\": \"AE\", \"corrupt\": \"sdad\", \"bit\": 9}]");
    uint8_t r[256], s[256];
    size_t rl, sl;
    (void)state;
    start(vc);
    assert_int_equal(genac(vc, "90", CDOL1_DATA, r, &rl), 0x9000); /* ARQC with CDA */
    assert_int_equal(kv_tlv_validate(r, rl), 0);
    value_of(r, rl, 0x9F4B, s, &sl);
    assert_false(sdad_frame_ok(s, sl));
    s[1] ^= 0x40;
    assert_true(sdad_frame_ok(s, sl));
    kv_vcard_free(vc);
}

static void test_atc_skew(void **state)
{
    kv_vcard *vc = card(",\"faults\": [{\"ins\": \"CA\", \"atc_skew\": 5},"
                        " {\"ins\": \"AE\", \"atc_skew\": -1}]");
    uint8_t r[256], v[8];
    size_t rl, vl;
    (void)state;
    assert_int_equal(xchg(vc, "80CA9F3600", r, &rl), 0x9000);
    value_of(r, rl, 0x9F36, v, &vl);
    assert_bytes("GET DATA 9F36 skewed", v, vl, (const uint8_t *)"\x00\x15", 2);
    assert_int_equal(kv_vcard_atc(vc), 0x0010); /* the real counter */
    start(vc);
    assert_int_equal(genac(vc, "80", CDOL1_DATA, r, &rl), 0x9000);
    value_of(r, rl, 0x9F36, v, &vl);
    assert_bytes("GENERATE AC 9F36 skewed", v, vl, (const uint8_t *)"\x00\x10", 2);
    assert_int_equal(kv_vcard_atc(vc), 0x0011);
    kv_vcard_free(vc);
}

static void test_atc_add_and_set(void **state)
{
    kv_vcard *vc = card(",\"faults\": [{\"ins\": \"A8\", \"nth\": 1, \"atc_add\": 3}]");
    kv_vcard *full = card(",\"faults\": [{\"ins\": \"A8\", \"atc_set\": 65535}]");
    uint8_t r[256], v[8];
    size_t rl, vl;
    (void)state;
    start(vc); /* +3 then GPO's +1 */
    assert_int_equal(kv_vcard_atc(vc), 0x0014);
    assert_int_equal(genac(vc, "80", CDOL1_DATA, r, &rl), 0x9000);
    value_of(r, rl, 0x9F36, v, &vl);
    assert_bytes("the real ATC in GENERATE AC", v, vl, (const uint8_t *)"\x00\x14", 2);
    start(full); /* the counter at its end stays there */
    assert_int_equal(kv_vcard_atc(full), 0xFFFF);
    kv_vcard_free(vc);
    kv_vcard_free(full);
}

static void test_drop_and_dup_tag(void **state)
{
    kv_vcard *drop = card(",\"faults\": [{\"ins\": \"B2\", \"drop_tag\": \"5F24\"}]");
    kv_vcard *dup = card(",\"faults\": [{\"ins\": \"B2\", \"dup_tag\": \"5A\"}]");
    kv_vcard *plain = card("");
    uint8_t r[256], p[256];
    size_t rl, pl, n5a = 0;
    kv_tlv t;
    kv_cursor c, in;
    (void)state;
    start(drop);
    start(dup);
    start(plain);
    assert_int_equal(xchg(plain, READ_REC, p, &pl), 0x9000);
    assert_int_equal(xchg(drop, READ_REC, r, &rl), 0x9000);
    assert_int_equal(kv_tlv_validate(r, rl), 0); /* the 70 length was re-encoded */
    assert_int_equal(rl, pl - 6);
    assert_int_equal(kv_tlv_find(r, rl, 0x5F24, &t), KV_ERR_NOT_FOUND);
    assert_int_equal(kv_tlv_find(r, rl, 0x5A, &t), 0);

    assert_int_equal(xchg(dup, READ_REC, r, &rl), 0x9000);
    assert_int_equal(kv_tlv_validate(r, rl), 0);
    assert_int_equal(rl, pl + 10);
    kv_cursor_init(&c, r, rl);
    assert_int_equal(kv_tlv_next(&c, &t), 1);
    kv_cursor_init(&in, t.value, t.len);
    while (kv_tlv_next(&in, &t) == 1)
        n5a += t.tag == 0x5A;
    assert_int_equal(n5a, 2);
    kv_vcard_free(drop);
    kv_vcard_free(dup);
    kv_vcard_free(plain);
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_delay(void **state)
{
    kv_vcard *vc = card(",\"faults\": [{\"ins\": \"A4\", \"delay_ms\": 120}]");
    long t0;
    (void)state;
    t0 = now_ms();
    assert_int_equal(xchg(vc, SELECT, NULL, NULL), 0x9000);
    assert_true(now_ms() - t0 >= 120);
    kv_vcard_free(vc);
}

static void test_tear_before_and_after(void **state)
{
    kv_vcard *vc = card(",\"faults\": [{\"ins\": \"AE\", \"nth\": 1, \"tear\": \"before\"},"
                        " {\"ins\": \"A8\", \"nth\": 2, \"tear\": \"after\"}]");
    size_t olen = 99;
    uint8_t r[256];
    size_t rl;
    (void)state;
    start(vc);
    assert_int_equal(process_rc(vc, "80AE80001D" CDOL1_DATA "00", &olen), KV_ERR_PCSC_REMOVED);
    assert_int_equal(olen, 0);
    /* the session ended: nothing is selected any more */
    assert_int_equal(xchg(vc, READ_REC, NULL, NULL), 0x6A82);
    /* power on again: the count restarts, so the first GENERATE AC tears again */
    kv_vcard_power_on(vc);
    start(vc); /* GPO 1 after power on: ATC 0012 */
    assert_int_equal(kv_vcard_atc(vc), 0x0012);
    assert_int_equal(process_rc(vc, "80AE80001D" CDOL1_DATA "00", &olen), KV_ERR_PCSC_REMOVED);
    kv_vcard_reset(vc);
    assert_int_equal(xchg(vc, SELECT, NULL, NULL), 0x9000);
    assert_int_equal(xchg(vc, GPO, NULL, NULL), 0x9000); /* GPO 1 after the reset */
    assert_int_equal(xchg(vc, SELECT, NULL, NULL), 0x9000);
    /* GPO 2: runs (ATC counts) and the answer is lost */
    assert_int_equal(process_rc(vc, GPO, &olen), KV_ERR_PCSC_REMOVED);
    assert_int_equal(kv_vcard_atc(vc), 0x0014);
    kv_vcard_reset(vc);
    assert_int_equal(xchg(vc, SELECT, r, &rl), 0x9000);
    kv_vcard_free(vc);
}

/*
 * Behind vpcd a tear is a frame without a reply and the error the client closes on. A tear
 * ends the power cycle (the nth counts restart): "once" lets the card come back healthy.
 */
static void test_tear_vpcd_frame(void **state)
{
    kv_vcard *vc = card(",\"faults\": [{\"ins\": \"A4\", \"once\": true, \"tear\": \"before\"}]");
    uint8_t sel[32], out[KV_VPCD_REPLY_MAX];
    size_t n = unhex(SELECT, sel, sizeof(sel)), olen = 99;
    kv_vpcd_frame f = {0, 0, sel, n};
    (void)state;
    assert_int_equal(kv_vpcd_frame_handle(vc, &f, out, sizeof(out), &olen), KV_ERR_PCSC_REMOVED);
    assert_int_equal(olen, 0);
    assert_int_equal(kv_vpcd_frame_handle(vc, &f, out, sizeof(out), &olen), 0);
    assert_true(olen > 4); /* the 2nd SELECT is answered: FCI and 9000 */
    assert_int_equal(out[olen - 2], 0x90);
    kv_vcard_free(vc);
}

static void test_api_set_faults(void **state)
{
    kv_vcard *vc = card("");
    char why[256] = "";
    const char *obj = "{\"faults\": [{\"ins\": \"A4\", \"sw\": \"6A82\"}]}";
    const char *arr = "[{\"ins\": \"A4\", \"sw\": \"6283\"}, {\"ins\": \"B2\", \"delay_ms\": 0}]";
    const char *path;
    (void)state;
    assert_int_equal(kv_vcard_set_faults(vc, obj, strlen(obj), why, sizeof(why)), 0);
    assert_int_equal(xchg(vc, SELECT, NULL, NULL), 0x6A82);
    assert_int_equal(kv_vcard_set_faults(vc, arr, strlen(arr), why, sizeof(why)), 0);
    assert_int_equal(kv_vcard_fault_count(vc), 2);
    assert_int_equal(xchg(vc, SELECT, NULL, NULL), 0x6283);
    /* a bad script leaves the faults in effect */
    assert_int_equal(kv_vcard_set_faults(vc, "{\"x\": 1}", 8, why, sizeof(why)), KV_ERR_JSON);
    assert_int_equal(kv_vcard_fault_count(vc), 2);
    assert_int_equal(kv_vcard_set_faults(vc, NULL, 0, NULL, 0), 0);
    assert_int_equal(xchg(vc, SELECT, NULL, NULL), 0x9000);
    path = write_temp("[{\"ins\": \"CA\", \"sw\": \"6A88\"}]");
    assert_int_equal(kv_vcard_load_faults(vc, path, why, sizeof(why)), 0);
    unlink(path);
    assert_int_equal(xchg(vc, "80CA9F3600", NULL, NULL), 0x6A88);
    assert_int_equal(kv_vcard_load_faults(vc, "/nonexistent/faults.json", why, sizeof(why)),
                     KV_ERR_IO);
    kv_vcard_free(vc);
}

static void test_parse_errors(void **state)
{
    static const struct {
        const char *extra, *why;
    } rows[] = {
        {",\"faults\": {}", "faults: not an array"},
        {",\"faults\": [1]", "faults[0]: not an object"},
        {",\"faults\": [{\"sw\": \"6A83\"}]", "faults[0].ins: missing"},
        {",\"faults\": [{\"ins\": \"B2\"}]", "faults[0]: no action"},
        {",\"faults\": [{\"ins\": \"B2\", \"sw\": \"6A83\", \"tear\": \"after\"}]",
         "faults[0]: both"},
        {",\"faults\": [{\"ins\": \"B2\", \"sw\": \"6A83\", \"when\": 1}]",
         "faults[0]: unknown field \"when\""},
        {",\"faults\": [{\"ins\": \"B2X\", \"sw\": \"6A83\"}]", "faults[0].ins:"},
        {",\"faults\": [{\"ins\": \"B2\", \"sw\": \"1234\"}]", "faults[0].sw:"},
        {",\"faults\": [{\"ins\": \"B2\", \"nth\": 0, \"sw\": \"6A83\"}]", "faults[0].nth:"},
        {",\"faults\": [{\"ins\": \"AE\", \"corrupt\": \"arqc\"}]", "faults[0].corrupt:"},
        {",\"faults\": [{\"ins\": \"AE\", \"atc_skew\": 0}]", "faults[0].atc_skew:"},
        {",\"faults\": [{\"ins\": \"AE\", \"atc_set\": 70000}]", "faults[0].atc_set:"},
        {",\"faults\": [{\"ins\": \"B2\", \"drop_tag\": \"00\"}]", "faults[0].drop_tag:"},
        {",\"faults\": [{\"ins\": \"B2\", \"delay_ms\": -1}]", "faults[0].delay_ms:"},
        {",\"faults\": [{\"ins\": \"B2\", \"tear\": true}]", "faults[0].tear:"},
        {",\"faults\": [{\"ins\": \"B2\", \"tear\": \"after\", \"once\": 1}]", "faults[0].once:"},
        {",\"faults\": [{\"ins\": \"B2\", \"sw\": \"6A83\", \"bit\": 3}]", "faults[0].bit:"},
        {",\"log\": {\"sfi\": 3, \"records\": 5}", "log.sfi:"},
        {",\"log\": {\"sfi\": 11}", "log.records: missing"},
        {",\"log\": {\"sfi\": 11, \"records\": 31}", "log.records:"},
        {",\"log\": {\"sfi\": 11, \"records\": 5, \"format\": \"9F02\"}", "log.format:"},
        {",\"log\": {\"sfi\": 11, \"records\": 5, \"size\": 1}", "log: unknown field \"size\""},
        {",\"log\": {\"sfi\": 2, \"records\": 5}", "log.sfi:"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char why[256] = "";
        int rc;
        kv_vcard *vc = card_with(rows[i].extra, why, sizeof(why), &rc);
        if (rc == 0 || strstr(why, rows[i].why) == NULL) {
            print_error("row %zu: rc %d, why \"%s\", want \"%s\"\n", i, rc, why, rows[i].why);
            kv_vcard_free(vc);
            fail();
        }
    }
}

/* ---- the transaction log ------------------------------------------------ */

#define LOG ",\"log\": {\"sfi\": 11, \"records\": 3, \"format\": \"" LOG_FORMAT "\"}"
#define READ_LOG(n) "00B2" n "5C00"

static void test_log_entry_and_format(void **state)
{
    kv_vcard *vc = card(LOG), *plain = card("");
    uint8_t r[256], v[64];
    size_t rl, vl;
    (void)state;
    assert_int_equal(xchg(vc, SELECT, r, &rl), 0x9000);
    value_of(r, rl, 0xBF0C, v, &vl); /* 9F4D inside the FCI's BF0C */
    assert_bytes("BF0C", v, vl, (const uint8_t *)"\x9F\x4D\x02\x0B\x03", 5);
    assert_int_equal(kv_tlv_validate(r, rl), 0);
    assert_int_equal(xchg(vc, "80CA9F4D00", r, &rl), 0x9000);
    assert_bytes("GET DATA 9F4D", r, rl, (const uint8_t *)"\x9F\x4D\x02\x0B\x03", 5);
    assert_int_equal(xchg(vc, "80CA9F4F00", r, &rl), 0x9000);
    value_of(r, rl, 0x9F4F, v, &vl);
    assert_int_equal(vl, 16);
    /* no transaction yet: no record */
    assert_int_equal(xchg(vc, READ_LOG("01"), NULL, NULL), 0x6A83);
    /* a profile without "log" answers as before */
    assert_int_equal(xchg(plain, "80CA9F4D00", NULL, NULL), 0x6A88);
    assert_int_equal(xchg(plain, SELECT, r, &rl), 0x9000);
    assert_int_equal(kv_tlv_find(r, rl, 0x9F4D, (kv_tlv[1]){0}), KV_ERR_NOT_FOUND);
    assert_int_equal(xchg(plain, READ_LOG("01"), NULL, NULL), 0x6A82);
    kv_vcard_free(vc);
    kv_vcard_free(plain);
}

/* amount, currency, date, type, ATC, CID of a record */
static void want_record(kv_vcard *vc, const char *n, const char *want_hex)
{
    uint8_t r[256], w[64];
    size_t rl, wl = unhex(want_hex, w, sizeof(w));
    char cmd[16];
    snprintf(cmd, sizeof(cmd), "00B2%s5C00", n);
    assert_int_equal(xchg(vc, cmd, r, &rl), 0x9000);
    assert_bytes(cmd, r, rl, w, wl);
}

static void online_tc(kv_vcard *vc)
{
    uint8_t r[256];
    size_t rl;
    start(vc);
    assert_int_equal(genac(vc, "80", CDOL1_DATA, r, &rl), 0x9000);
    /* no record for an ARQC: the transaction goes on */
    assert_int_equal(genac(vc, "40", CDOL2_TC, r, &rl), 0x9000);
}

static void test_log_records(void **state)
{
    kv_vcard *vc = card(LOG);
    uint8_t r[256];
    size_t rl;
    (void)state;
    online_tc(vc); /* ATC 0011: TC after the online approval (ARC 3030) */
    want_record(vc, "01", "000000001000 0978 251121 00 0011 40");
    assert_int_equal(xchg(vc, READ_LOG("02"), NULL, NULL), 0x6A83);
    /* an offline decline: the first GENERATE AC ends it (AAC) */
    start(vc);
    assert_int_equal(genac(vc, "00", CDOL1_DATA, r, &rl), 0x9000);
    want_record(vc, "01", "000000001000 0978 251121 00 0012 00");
    want_record(vc, "02", "000000001000 0978 251121 00 0011 40");
    /* cyclic: 3 records kept, the oldest goes */
    online_tc(vc);
    online_tc(vc);
    want_record(vc, "01", "000000001000 0978 251121 00 0014 40");
    want_record(vc, "03", "000000001000 0978 251121 00 0012 00");
    assert_int_equal(xchg(vc, READ_LOG("04"), NULL, NULL), 0x6A83);
    assert_int_equal(xchg(vc, READ_LOG("00"), NULL, NULL), 0x6A83);
    kv_vcard_free(vc);
}

static void test_log_state_file(void **state)
{
    kv_vcard *vc = card(LOG), *again = card(LOG);
    char path[64];
    FILE *f;
    char text[4096];
    size_t n;
    int fd;
    (void)state;
    snprintf(path, sizeof(path), "/tmp/kv_vlab_state_XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    assert_int_equal(kv_vcard_state_attach(vc, path), 0);
    online_tc(vc);
    f = fopen(path, "r");
    assert_non_null(f);
    n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    assert_non_null(strstr(text, "\"A0000000031010\""));
    assert_non_null(strstr(text, "000000001000097825112100001140"));
    /* another card attaching the same file finds the record */
    assert_int_equal(kv_vcard_state_attach(again, path), 0);
    assert_int_equal(kv_vcard_atc(again), 0x0011);
    assert_int_equal(xchg(again, SELECT, NULL, NULL), 0x9000);
    want_record(again, "01", "000000001000 0978 251121 00 0011 40");
    unlink(path);
    kv_vcard_free(vc);
    kv_vcard_free(again);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sw_nth_and_power_cycle),
        cmocka_unit_test(test_sw_every_time_p1_p2_and_not_run),
        cmocka_unit_test(test_once),
        cmocka_unit_test(test_corrupt_ac),
        cmocka_unit_test(test_corrupt_sdad),
        cmocka_unit_test(test_corrupt_sdad_cda),
        cmocka_unit_test(test_atc_skew),
        cmocka_unit_test(test_atc_add_and_set),
        cmocka_unit_test(test_drop_and_dup_tag),
        cmocka_unit_test(test_delay),
        cmocka_unit_test(test_tear_before_and_after),
        cmocka_unit_test(test_tear_vpcd_frame),
        cmocka_unit_test(test_api_set_faults),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_log_entry_and_format),
        cmocka_unit_test(test_log_records),
        cmocka_unit_test(test_log_state_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

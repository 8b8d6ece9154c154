/*
 * Verification attempts (src/attempts, issue 11 finding 4) against a real
 * SQLite store in a temp file: consecutive wrong PINs and card codes per
 * card, the block after the limit with no HSM work, a match resetting the
 * count, the reset, the card's reference values, the evidence records, and
 * the [verify] limits; plus the per-PVK PIN parameters (pin_params.h).
 */
#include "src/attempts/attempts.h"
#include "src/base/err.h"
#include "src/config/config.h"
#include "src/config/pin_params.h"
#include "src/evidence/evidence.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PAN "4761739001010119"
#define PAN2 "5413330089020011"

static uint8_t key_token[32] = {1, 2, 3}, key_evidence[32] = {4, 5, 6};

static int soft_hmac(void *ctx, const uint8_t *in, size_t len, uint8_t out[32])
{
    unsigned int n = 32;
    return HMAC(EVP_sha256(), ctx, 32, in, len, out, &n) != NULL ? 0 : KV_ERR_INTERNAL;
}

typedef struct {
    char dir[64], path[96];
    kv_store *store;
    kv_mac token_mac, evidence_mac;
    kv_attempts_config cfg;
    /* the fake HSM */
    int calls;          /* how often it was asked */
    int answer;         /* what it answers */
    kv_card_state seen; /* the row it was given */
} fx;

static int fake_hsm(void *ctx, const kv_card_state *card, int *match)
{
    fx *f = ctx;
    f->calls++;
    f->seen = *card;
    *match = f->answer;
    return 0;
}

static int failing_hsm(void *ctx, const kv_card_state *card, int *match)
{
    (void)ctx, (void)card, (void)match;
    return KV_ERR_HSM_KEY;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    char err[256];
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/kv_attempts_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/store.db", f->dir);
    assert_int_equal(
        kv_store_open_sqlite(f->path, KV_SQLITE_SYNC_NORMAL, &f->store, err, sizeof(err)), 0);
    f->token_mac.fn = soft_hmac;
    f->token_mac.ctx = key_token;
    f->evidence_mac.fn = soft_hmac;
    f->evidence_mac.ctx = key_evidence;
    kv_attempts_defaults(&f->cfg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char p[128];
    kv_store_close(f->store);
    unlink(f->path);
    snprintf(p, sizeof(p), "%s-wal", f->path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", f->path);
    unlink(p);
    rmdir(f->dir);
    free(f);
    return 0;
}

static kv_verify_result verify(fx *f, const char *pan, kv_attempt_kind kind, int answer,
                               kv_attempts_outcome *o)
{
    kv_attempts_request rq = {kind, kind == KV_ATTEMPT_PIN ? "pvv" : "cvc2", "cli", pan};
    char why[256];
    f->answer = answer;
    assert_int_equal(kv_attempts_verify(f->store, &f->cfg, &f->token_mac, &f->evidence_mac, &rq,
                                        fake_hsm, f, o, why, sizeof(why)),
                     0);
    return o->result;
}

static json_t *record(fx *f, int64_t id)
{
    kv_evidence_record rec;
    json_t *b;
    assert_int_equal(kv_evidence_load(f->store, &f->evidence_mac, id, &rec), 0);
    assert_true(rec.intact);
    b = json_incref(rec.body);
    kv_evidence_record_clear(&rec);
    return b;
}

static void test_defaults_and_config(void **state)
{
    kv_attempts_config c;
    char why[128];
    (void)state;
    kv_attempts_defaults(&c);
    assert_int_equal(c.pin_max, 3);
    assert_int_equal(c.code_max, 5);
    assert_int_equal(kv_attempts_config_from(&c, NULL, NULL, why, sizeof(why)), 0);
    assert_int_equal(c.pin_max, 3);
    assert_int_equal(c.code_max, 5);
    assert_int_equal(kv_attempts_config_from(&c, "4", "10", why, sizeof(why)), 0);
    assert_int_equal(c.pin_max, 4);
    assert_int_equal(c.code_max, 10);
    assert_int_equal(kv_attempts_config_from(&c, "0", NULL, why, sizeof(why)), KV_ERR_CONFIG);
    assert_non_null(strstr(why, "pin_tries_max"));
    assert_int_equal(kv_attempts_config_from(&c, NULL, "x", why, sizeof(why)), KV_ERR_CONFIG);
    assert_non_null(strstr(why, "code_tries_max"));
    assert_int_equal(kv_attempts_config_from(&c, "1001", NULL, why, sizeof(why)), KV_ERR_CONFIG);
}

/* 5 wrong codes, then even the right one is blocked and the HSM is not asked */
static void test_code_block(void **state)
{
    fx *f = *state;
    kv_attempts_outcome o;
    for (int i = 1; i <= 5; i++) {
        assert_int_equal(verify(f, PAN, KV_ATTEMPT_CODE, 0, &o), KV_VERIFY_MISMATCH);
        assert_int_equal(o.failures, i);
        assert_int_equal(o.max, 5);
    }
    assert_int_equal(f->calls, 5);
    assert_int_equal(verify(f, PAN, KV_ATTEMPT_CODE, 1, &o), KV_VERIFY_BLOCKED);
    assert_int_equal(f->calls, 5); /* no HSM work */
    assert_int_equal(o.failures, 5);
    assert_true(o.evidence_id == 6);

    json_t *b = record(f, o.evidence_id);
    assert_string_equal(json_string_value(json_object_get(b, "type")), "verification");
    json_t *card = json_object_get(b, "card"), *chk = json_object_get(b, "check");
    assert_string_equal(json_string_value(json_object_get(card, "pan")), "476173******0119");
    assert_int_equal(strlen(json_string_value(json_object_get(card, "token"))), 64);
    assert_string_equal(json_string_value(json_object_get(chk, "result")), "blocked");
    assert_string_equal(json_string_value(json_object_get(chk, "kind")), "code");
    assert_string_equal(json_string_value(json_object_get(chk, "method")), "cvc2");
    assert_true(json_is_false(json_object_get(chk, "hsm")));
    json_decref(b);

    /* the PIN counter is its own; another card is not touched */
    assert_int_equal(verify(f, PAN, KV_ATTEMPT_PIN, 1, &o), KV_VERIFY_MATCH);
    assert_int_equal(verify(f, PAN2, KV_ATTEMPT_CODE, 1, &o), KV_VERIFY_MATCH);
    assert_int_equal(f->calls, 7);

    /* the reset clears both */
    uint8_t token[KV_TOKEN_LEN];
    assert_int_equal(kv_pan_token(&f->token_mac, PAN, token), 0);
    assert_int_equal(kv_attempts_reset(f->store, token), 0);
    assert_int_equal(verify(f, PAN, KV_ATTEMPT_CODE, 1, &o), KV_VERIFY_MATCH);
    assert_int_equal(o.failures, 0);
    assert_int_equal(f->calls, 8);
}

/* 3 wrong PINs block; a match before the limit resets the count */
static void test_pin_block_and_reset_on_match(void **state)
{
    fx *f = *state;
    kv_attempts_outcome o;
    int blocked = -1, n = -1;
    uint8_t token[KV_TOKEN_LEN];

    assert_int_equal(verify(f, PAN, KV_ATTEMPT_PIN, 0, &o), KV_VERIFY_MISMATCH);
    assert_int_equal(verify(f, PAN, KV_ATTEMPT_PIN, 0, &o), KV_VERIFY_MISMATCH);
    assert_int_equal(o.failures, 2);
    assert_int_equal(verify(f, PAN, KV_ATTEMPT_PIN, 1, &o), KV_VERIFY_MATCH);
    assert_int_equal(o.failures, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(verify(f, PAN, KV_ATTEMPT_PIN, 0, &o), KV_VERIFY_MISMATCH);
    assert_int_equal(verify(f, PAN, KV_ATTEMPT_PIN, 1, &o), KV_VERIFY_BLOCKED);
    assert_int_equal(f->calls, 6);

    /* the lower-level calls see the same */
    assert_int_equal(kv_pan_token(&f->token_mac, PAN, token), 0);
    assert_int_equal(kv_store_begin(f->store, 1), 0);
    assert_int_equal(kv_attempts_check(f->store, &f->cfg, token, KV_ATTEMPT_PIN, &blocked, &n), 0);
    assert_int_equal(blocked, 1);
    assert_int_equal(n, 3);
    assert_int_equal(kv_attempts_check(f->store, &f->cfg, token, KV_ATTEMPT_CODE, &blocked, &n), 0);
    assert_int_equal(blocked, 0);
    assert_int_equal(n, 0);
    assert_int_equal(kv_attempts_record(f->store, token, KV_ATTEMPT_CODE, 0, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(kv_attempts_record(f->store, token, KV_ATTEMPT_CODE, 1, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(kv_store_commit(f->store), 0);

    /* a higher limit from [verify] lets the card try again */
    f->cfg.pin_max = 4;
    assert_int_equal(verify(f, PAN, KV_ATTEMPT_PIN, 1, &o), KV_VERIFY_MATCH);
}

/* an HSM error counts nothing and records nothing */
static void test_hsm_error_counts_nothing(void **state)
{
    fx *f = *state;
    kv_attempts_request rq = {KV_ATTEMPT_PIN, "pvv", "daemon", PAN};
    kv_attempts_outcome o;
    int64_t head = -1;
    uint8_t hash[32];
    char why[64];
    assert_int_equal(kv_attempts_verify(f->store, &f->cfg, &f->token_mac, &f->evidence_mac, &rq,
                                        failing_hsm, f, &o, why, sizeof(why)),
                     KV_ERR_HSM_KEY);
    assert_int_equal(kv_store_evidence_head(f->store, &head, hash), 0);
    assert_int_equal(head, 0);
    rq.pan = "123";
    assert_int_equal(kv_attempts_verify(f->store, &f->cfg, &f->token_mac, &f->evidence_mac, &rq,
                                        fake_hsm, f, &o, why, sizeof(why)),
                     KV_ERR_ARG);
    assert_int_equal(f->calls, 0);
}

/* card settings: reference values reach the HSM callback; the record never holds them */
static void test_reference_values(void **state)
{
    fx *f = *state;
    kv_attempts_change ch;
    kv_attempts_outcome o;
    kv_card_state st;
    int64_t id = 0;
    char why[128];

    for (int i = 0; i < 5; i++)
        verify(f, PAN, KV_ATTEMPT_CODE, 0, &o);
    memset(&ch, 0, sizeof(ch));
    ch.set_pvv = 1;
    memcpy(ch.pvv, "8523", 5);
    ch.pvki = 1;
    ch.set_ibm_offset = 1;
    memcpy(ch.ibm_offset, "7710", 5);
    ch.reset_tries = 1;
    assert_int_equal(kv_attempts_set(f->store, &f->token_mac, &f->evidence_mac, PAN, &ch, &st, &id,
                                     why, sizeof(why)),
                     0);
    assert_int_equal(st.code_failures, 0);
    assert_true(id > 0);
    json_t *b = record(f, id);
    const char *text = json_dumps(b, JSON_COMPACT);
    assert_null(strstr(text, "8523"));
    assert_null(strstr(text, "7710"));
    assert_non_null(strstr(text, "\"reset_tries\":true"));
    assert_non_null(strstr(text, "\"code_failures_before\":5"));
    free((void *)text);
    json_decref(b);

    assert_int_equal(verify(f, PAN, KV_ATTEMPT_PIN, 1, &o), KV_VERIFY_MATCH);
    assert_true(f->seen.has_pvv);
    assert_string_equal(f->seen.pvv, "8523");
    assert_int_equal(f->seen.pvki, 1);
    assert_true(f->seen.has_ibm_offset);
    assert_string_equal(f->seen.ibm_offset, "7710");

    memset(&ch, 0, sizeof(ch));
    ch.set_pvv = 1;
    memcpy(ch.pvv, "85x3", 5);
    assert_int_equal(kv_attempts_set(f->store, &f->token_mac, &f->evidence_mac, PAN, &ch, NULL,
                                     NULL, why, sizeof(why)),
                     KV_ERR_ARG);
}

static void test_pin_params(void **state)
{
    kv_pin_params p;
    char v[17], why[160];
    (void)state;
    kv_pin_params_defaults(&p);
    assert_string_equal(p.dec_table, "0123456789012345");
    assert_int_equal(p.pad, 'F');
    /* default: the 11 digits before the check digit, padded with F */
    assert_int_equal(kv_pin_params_vdata(&p, "4761739001010119", v, why, sizeof(why)), 0);
    assert_string_equal(v, "73900101011FFFFF");
    assert_int_equal(kv_pin_params_set(&p, "validation_data", "pan:0:16", why, sizeof(why)), 0);
    assert_int_equal(kv_pin_params_vdata(&p, "1122334455667788", v, why, sizeof(why)), 0);
    assert_string_equal(v, "1122334455667788");
    assert_int_equal(kv_pin_params_vdata(&p, "112233445566", v, why, sizeof(why)), KV_ERR_ARG);
    assert_non_null(strstr(why, "too short"));
    assert_int_equal(kv_pin_params_set(&p, "pad", "0", why, sizeof(why)), 0);
    assert_int_equal(kv_pin_params_set(&p, "validation_data", "pan:1:4", why, sizeof(why)), 0);
    assert_int_equal(kv_pin_params_vdata(&p, "1122334455667788", v, why, sizeof(why)), 0);
    assert_string_equal(v, "6778000000000000");
    assert_int_equal(kv_pin_params_set(&p, "dec_table", "123456789012345A", why, sizeof(why)),
                     KV_ERR_CONFIG);
    assert_int_equal(kv_pin_params_set(&p, "pad", "G", why, sizeof(why)), KV_ERR_CONFIG);
    assert_int_equal(kv_pin_params_set(&p, "validation_data", "pan:1:17", why, sizeof(why)),
                     KV_ERR_CONFIG);
    assert_int_equal(kv_pin_params_set(&p, "validation_data", "1122334455667788", why, sizeof(why)),
                     KV_ERR_CONFIG);
    assert_int_equal(kv_pin_params_set(&p, "zzz", "1", why, sizeof(why)), KV_ERR_NOT_FOUND);
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void test_pin_params_config(void **state)
{
    char path[] = "/tmp/kv_pinparams_XXXXXX";
    kv_config *c = NULL;
    kv_pin_params p;
    char err[256];
    int fd = mkstemp(path);
    (void)state;
    assert_true(fd >= 0);
    close(fd);
    write_file(path, "[verify]\npin_tries_max = 4\n[pvk.pvk]\ndec_table = 1234567890123456\n"
                     "validation_data = pan:0:16\npad = 0\n");
    assert_int_equal(kv_config_load(path, &c, err, sizeof(err)), 0);
    kv_pin_params_source src = kv_pin_params_config_source(c);
    assert_int_equal(src.lookup(src.ctx, "pvk", &p), 0);
    assert_string_equal(p.dec_table, "1234567890123456");
    assert_string_equal(p.vdata_spec, "pan:0:16");
    assert_int_equal(p.pad, '0');
    assert_int_equal(src.lookup(src.ctx, "other", &p), 0); /* no section: defaults */
    assert_string_equal(p.dec_table, "0123456789012345");
    assert_string_equal(kv_config_get(c, "verify", "pin_tries_max"), "4");
    kv_config_free(c);

    write_file(path, "[pvk.pvk]\ndec_table = 12345678901234\n");
    assert_int_equal(kv_config_load(path, &c, err, sizeof(err)), KV_ERR_CONFIG);
    assert_non_null(strstr(err, ":2: [pvk.pvk] dec_table"));
    write_file(path, "[verify]\ncode_tries_max = 0\n");
    assert_int_equal(kv_config_load(path, &c, err, sizeof(err)), KV_ERR_CONFIG);
    assert_non_null(strstr(err, "[verify] code_tries_max"));
    write_file(path, "[verify]\ntries = 3\n");
    assert_int_equal(kv_config_load(path, &c, err, sizeof(err)), KV_ERR_CONFIG);
    assert_non_null(strstr(err, "unknown key"));
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_config),
        cmocka_unit_test_setup_teardown(test_code_block, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pin_block_and_reset_on_match, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hsm_error_counts_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reference_values, setup, teardown),
        cmocka_unit_test(test_pin_params),
        cmocka_unit_test(test_pin_params_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

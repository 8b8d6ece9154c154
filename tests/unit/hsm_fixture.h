/*
 * A throwaway SoftHSM2 token for unit tests that need an HSM: a temporary
 * token directory and softhsm2.conf (SOFTHSM2_CONF), a new token initialised
 * with test PINs, a logged-in kv_hsm, and a key importer. Header only: each
 * test program includes it once, after <cmocka.h>.
 *
 * When SoftHSM2 is not installed kv_test_token_open leaves t->h NULL and the
 * tests skip (NEED_HSM); any other failure fails the test.
 */
#ifndef KV_TESTS_HSM_FIXTURE_H
#define KV_TESTS_HSM_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hsm/keys.h"
#include "hsm/p11.h"
#include "hsm/p11_admin.h"
#include "src/base/hex.h"
#include "src/base/secure.h"

#define KV_TEST_USER_PIN "unit-user-1"

typedef struct {
    char dir[64]; /* mkdtemp template, then the directory */
    kv_secbuf *pin;
    kv_hsm *h;
} kv_test_token;

/* Open a fresh token labelled label in a new directory named from prefix ("/tmp/kv-test-x"). */
static inline void kv_test_token_open(kv_test_token *t, const char *prefix, const char *label)
{
    char conf[128], tokens[128];
    FILE *f;
    kv_hsm *h = NULL;
    kv_hsm_token_info ti;
    kv_hsm_config cfg = {.token = label};
    size_t pin_len = strlen(KV_TEST_USER_PIN);

    memset(t, 0, sizeof(*t));
    if (access(KV_HSM_DEFAULT_MODULE, R_OK) != 0)
        return; /* every test skips */
    snprintf(t->dir, sizeof(t->dir), "%s.XXXXXX", prefix);
    assert_non_null(mkdtemp(t->dir));
    snprintf(tokens, sizeof(tokens), "%s/tokens", t->dir);
    assert_int_equal(mkdir(tokens, 0700), 0);
    snprintf(conf, sizeof(conf), "%s/softhsm2.conf", t->dir);
    assert_non_null(f = fopen(conf, "w"));
    fprintf(f, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens);
    fclose(f);
    setenv("SOFTHSM2_CONF", conf, 1);
    assert_non_null(t->pin = kv_secbuf_new(64));
    memcpy(kv_secbuf_ptr(t->pin), KV_TEST_USER_PIN, pin_len);

    assert_int_equal(kv_hsm_open_ex(&cfg, KV_HSM_OPEN_NO_TOKEN, &h), 0);
    assert_int_equal(kv_hsm_token_init(h, label, (const uint8_t *)"unit-so-1", 9,
                                       (const uint8_t *)KV_TEST_USER_PIN, pin_len, &ti),
                     0);
    kv_hsm_close(h);
    cfg.pin = t->pin;
    cfg.pin_len = pin_len;
    if (kv_hsm_open(&cfg, &t->h) != 0) {
        print_message("open: %s\n", kv_hsm_last_error(NULL));
        fail();
    }
}

/* Import a test key (hex) with type and role; 0 or the kv_keys_import error (printed). */
static inline int kv_test_token_import(kv_test_token *t, const char *label, kv_key_type type,
                                       kv_key_usage usage, const char *hex)
{
    uint8_t key[64];
    kv_keys_result res;
    char why[512];
    int n = kv_hex_decode(hex, key, sizeof(key)), r;

    assert_true(n > 0);
    r = kv_keys_import(t->h, label, type, usage, NULL, 0, key, (size_t)n, NULL, 0, &res, why,
                       sizeof(why));
    if (r != 0)
        print_message("import %s: %s\n", label, why);
    kv_wipe(key, sizeof(key));
    return r;
}

/* Log out, free the PIN, remove the token directory. 0, or -1 when it cannot be removed. */
static inline int kv_test_token_close(kv_test_token *t)
{
    char cmd[128];

    kv_hsm_close(t->h);
    t->h = NULL;
    kv_secbuf_free(t->pin);
    t->pin = NULL;
    if (t->dir[0] != '\0' && strchr(t->dir, 'X') == NULL) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
        if (system(cmd) != 0)
            return -1;
    }
    return 0;
}

#endif

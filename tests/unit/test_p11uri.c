/*
 * Table tests of hsm/p11uri.h (RFC 7512 PKCS#11 URIs). The accepted examples
 * follow RFC 7512 §3.3; the rejections are the rules stated in p11uri.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "hsm/p11uri.h"
#include "src/base/err.h"
#include "src/base/hex.h"

static const struct {
    const char *uri;
    int rc;
    const char *token, *object, *serial, *model, *manufacturer, *type, *module_path;
    const char *id_hex; /* NULL: no id */
    long slot_id;       /* -1: none */
    const char *why;    /* substring of the reason on failure */
} rows[] = {
    {"pkcs11:", 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, -1, NULL},
    {"pkcs11:token=kortvagt", 0, "kortvagt", NULL, NULL, NULL, NULL, NULL, NULL, NULL, -1, NULL},
    {"PKCS11:token=kortvagt;object=cvk1", 0, "kortvagt", "cvk1", NULL, NULL, NULL, NULL, NULL, NULL,
     -1, NULL},
    /* RFC 7512 §3.3 style examples */
    {"pkcs11:object=my-pubkey;type=public", 0, NULL, "my-pubkey", NULL, NULL, NULL, "public", NULL,
     NULL, -1, NULL},
    {"pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;"
     "model=1.0;object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91",
     0, "The Software PKCS#11 Softtoken", "my-certificate", NULL, "1.0", "Snake Oil, Inc.", "cert",
     NULL, "69953E5CF4BDEC91", -1, NULL},
    {"pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;object=my-certificate;type=cert", 0,
     "A name with a substring %;", "my-certificate", NULL, NULL, NULL, "cert", NULL, NULL, -1,
     NULL},
    {"pkcs11:object=cvk;id=%01", 0, NULL, "cvk", NULL, NULL, NULL, NULL, NULL, "01", -1, NULL},
    {"pkcs11:slot-id=1698764971;serial=1f82b6e9e54118ab", 0, NULL, NULL, "1f82b6e9e54118ab", NULL,
     NULL, NULL, NULL, NULL, 1698764971L, NULL},
    {"pkcs11:token=x?module-path=/usr/lib/softhsm/libsofthsm2.so", 0, "x", NULL, NULL, NULL, NULL,
     NULL, "/usr/lib/softhsm/libsofthsm2.so", NULL, -1, NULL},
    {"pkcs11:token=x;x-vendor=1;library-version=2.6", 0, "x", NULL, NULL, NULL, NULL, NULL, NULL,
     NULL, -1, NULL},
    /* rejections */
    {"token=x", KV_ERR_FORMAT, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, -1, "not a pkcs11"},
    {"pkcs11:token=x?pin-value=1234", KV_ERR_ARG, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     -1, "pin-value"},
    {"pkcs11:token=x?pin-source=file:/tmp/p", KV_ERR_ARG, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     NULL, -1, "pin-source"},
    {"pkcs11:objct=cvk", KV_ERR_FORMAT, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, -1,
     "unknown attribute 'objct'"},
    {"pkcs11:token=a;token=b", KV_ERR_FORMAT, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, -1,
     "twice"},
    {"pkcs11:token=a%2", KV_ERR_FORMAT, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, -1,
     "percent"},
    {"pkcs11:token=a%zz", KV_ERR_FORMAT, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, -1,
     "percent"},
    {"pkcs11:token=a%00b", KV_ERR_FORMAT, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, -1,
     "NUL"},
    {"pkcs11:token=123456789012345678901234567890123", KV_ERR_FORMAT, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL, NULL, -1, "too long"},
    {"pkcs11:token", KV_ERR_FORMAT, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, -1, "'='"},
    {"pkcs11:token=x;", KV_ERR_FORMAT, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, -1,
     "empty attribute"},
    {"pkcs11:;token=x", KV_ERR_FORMAT, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, -1,
     "empty attribute"},
    {"pkcs11:slot-id=12a", KV_ERR_FORMAT, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, -1,
     "decimal"},
    {"pkcs11:slot-id=99999999999999999999999", KV_ERR_FORMAT, NULL, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL, -1, "decimal"},
    {"pkcs11:token=x?module-path=a&&b", KV_ERR_FORMAT, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     NULL, -1, "empty query"},
};

static int str_eq(const char *want, int has, const char *got)
{
    if (want == NULL)
        return !has;
    return has && strcmp(want, got) == 0;
}

static void test_rows(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        kv_p11uri u;
        char why[200];
        int r = kv_p11uri_parse(rows[i].uri, &u, why, sizeof(why));
        int ok = r == rows[i].rc;
        if (ok && r == 0) {
            ok = str_eq(rows[i].token, u.has_token, u.token) &&
                 str_eq(rows[i].object, u.has_object, u.object) &&
                 str_eq(rows[i].serial, u.has_serial, u.serial) &&
                 str_eq(rows[i].model, u.has_model, u.model) &&
                 str_eq(rows[i].manufacturer, u.has_manufacturer, u.manufacturer) &&
                 str_eq(rows[i].type, u.has_type, u.type) &&
                 str_eq(rows[i].module_path, u.has_module_path, u.module_path) &&
                 (rows[i].slot_id < 0
                      ? !u.has_slot_id
                      : u.has_slot_id && u.slot_id == (unsigned long)rows[i].slot_id);
            if (ok && rows[i].id_hex == NULL)
                ok = !u.has_id;
            if (ok && rows[i].id_hex != NULL) {
                uint8_t want[64];
                int n = kv_hex_decode(rows[i].id_hex, want, sizeof(want));
                char got[129];
                ok = u.has_id && (size_t)n == u.id_len && memcmp(want, u.id, u.id_len) == 0;
                if (!ok) {
                    kv_hex_encode(u.id, u.id_len, got);
                    print_message("    id got %s want %s\n", got, rows[i].id_hex);
                }
            }
        }
        if (ok && r != 0)
            ok = strstr(why, rows[i].why) != NULL;
        if (!ok) {
            print_message(
                "uri '%s': rc %d (want %d), why '%s' (want '%s'), token '%s' object '%s'\n",
                rows[i].uri, r, rows[i].rc, r ? why : "", rows[i].why ? rows[i].why : "", u.token,
                u.object);
            fail();
        }
    }
}

static void test_is_uri(void **state)
{
    (void)state;
    assert_true(kv_p11uri_is_uri("pkcs11:"));
    assert_true(kv_p11uri_is_uri("Pkcs11:token=x"));
    assert_false(kv_p11uri_is_uri("pkcs11"));
    assert_false(kv_p11uri_is_uri("cvk1"));
    assert_false(kv_p11uri_is_uri(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_is_uri),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

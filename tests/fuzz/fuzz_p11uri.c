/*
 * libFuzzer target for hsm/p11uri.h (RFC 7512 URIs) and the key component
 * decoder of hsm/keymat.h: any input must parse or be refused without a
 * crash; a successful parse keeps every text field NUL-terminated within its
 * array, and a failed one leaves nothing behind. A broken invariant aborts.
 *
 * The input is used twice: as a URI (after "pkcs11:" unless it starts with
 * it), and split at newlines as the clear components of a des2 and an hmac
 * key.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hsm/keymat.h"
#include "hsm/p11uri.h"
#include "src/base/err.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_p11uri: invariant failed: %s (line %d)\n", #cond, __LINE__);     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define TERMINATED(field) (memchr((field), '\0', sizeof(field)) != NULL)

static void fuzz_uri(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 8);
    kv_p11uri u;
    char why[200];
    int r;

    if (s == NULL)
        return;
    if (size >= 7 && memcmp(data, "pkcs11:", 7) == 0) {
        memcpy(s, data, size);
        s[size] = '\0';
    } else {
        memcpy(s, "pkcs11:", 7);
        memcpy(s + 7, data, size);
        s[size + 7] = '\0';
    }
    r = kv_p11uri_parse(s, &u, why, sizeof(why));
    CHECK(r == 0 || r == KV_ERR_FORMAT || r == KV_ERR_ARG);
    CHECK(TERMINATED(why));
    CHECK(TERMINATED(u.token) && TERMINATED(u.object) && TERMINATED(u.serial) &&
          TERMINATED(u.model) && TERMINATED(u.manufacturer) && TERMINATED(u.type) &&
          TERMINATED(u.module_path));
    CHECK(u.id_len <= sizeof(u.id));
    if (r != 0)
        CHECK(!u.has_token && !u.has_object && !u.has_id && u.id_len == 0 && why[0] != '\0');
    free(s);
}

static void fuzz_components(const uint8_t *data, size_t size, kv_key_type t)
{
    char *s = malloc(size + 1);
    const char *lines[KV_KEYMAT_MAX_COMPONENTS + 2];
    uint8_t key[KV_KEYMAT_MAX];
    kv_keymat_problem p;
    char text[256];
    size_t n = 0;
    int r;

    if (s == NULL)
        return;
    memcpy(s, data, size);
    s[size] = '\0';
    for (char *line = s; line != NULL && n < KV_KEYMAT_MAX_COMPONENTS + 2;) {
        char *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        lines[n++] = line;
        line = nl != NULL ? nl + 1 : NULL;
    }
    r = kv_keymat_combine(lines, n, t, key, sizeof(key), &p);
    kv_keymat_problem_text(&p, t, text, sizeof(text));
    CHECK(memchr(text, '\0', sizeof(text)) != NULL);
    if (r >= 0) {
        size_t min, max;
        kv_key_type_lengths(t, &min, &max);
        CHECK((size_t)r >= min && (size_t)r <= max && p.kind == KV_KEYMAT_OK);
        if (kv_key_type_is_des(t))
            CHECK(kv_des_parity_ok(key, (size_t)r));
    } else {
        uint8_t zero[KV_KEYMAT_MAX] = {0};
        CHECK(r == KV_ERR_FORMAT && p.kind != KV_KEYMAT_OK);
        CHECK(memcmp(key, zero, sizeof(key)) == 0);
    }
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_uri(data, size);
    fuzz_components(data, size, KV_KEY_DES2);
    fuzz_components(data, size, KV_KEY_HMAC);
    return 0;
}

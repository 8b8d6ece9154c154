/* see capk.h */
#include "apdu/capk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "src/base/err.h"
#include "src/base/hex.h"

/* A key file is a few kilobytes per key; refuse anything absurd. */
#define CAPK_FILE_MAX (4u << 20)

struct kv_capk_store {
    kv_capk *keys;
    size_t n, cap;
};

/* see capk.h */
kv_capk_store *kv_capk_store_new(void)
{
    return calloc(1, sizeof(kv_capk_store));
}

/* see capk.h */
void kv_capk_store_free(kv_capk_store *s)
{
    if (s == NULL)
        return;
    free(s->keys);
    free(s);
}

/* see capk.h */
int kv_capk_checksum(const kv_capk *k, uint8_t out[20])
{
    int r = KV_ERR_INTERNAL;
    EVP_MD_CTX *md = NULL;
    unsigned int n = 0;

    if ((md = EVP_MD_CTX_new()) == NULL) {
        r = KV_ERR_NOMEM;
        goto out;
    }
    /* Book 2 §11.2.2: SHA-1 of RID || index || modulus || exponent */
    if (EVP_DigestInit_ex(md, EVP_sha1(), NULL) != 1 || EVP_DigestUpdate(md, k->rid, 5) != 1 ||
        EVP_DigestUpdate(md, &k->index, 1) != 1 ||
        EVP_DigestUpdate(md, k->modulus, k->modulus_len) != 1 ||
        EVP_DigestUpdate(md, k->exponent, k->exponent_len) != 1 ||
        EVP_DigestFinal_ex(md, out, &n) != 1 || n != 20)
        goto out;
    r = 0;
out:
    EVP_MD_CTX_free(md);
    return r;
}

/* Sound key: lengths, exponent 3 or 65537, algorithms, no leading zero, odd modulus. */
static const char *capk_problem(const kv_capk *k)
{
    static const uint8_t f4[3] = {0x01, 0x00, 0x01};

    if (k->modulus_len < KV_CAPK_MOD_MIN || k->modulus_len > KV_CAPK_MOD_MAX)
        return "modulus must be 64..248 bytes";
    if (k->modulus[0] == 0x00)
        return "modulus has a leading 00 byte";
    if ((k->modulus[k->modulus_len - 1] & 1) == 0)
        return "modulus is even";
    if (!((k->exponent_len == 1 && k->exponent[0] == 0x03) ||
          (k->exponent_len == 3 && memcmp(k->exponent, f4, 3) == 0)))
        return "exponent must be 03 or 010001";
    if (k->hash_alg != 0x01)
        return "hash_algorithm must be 01 (SHA-1)";
    if (k->pk_alg != 0x01)
        return "pk_algorithm must be 01 (RSA)";
    return NULL;
}

/* see capk.h */
const kv_capk *kv_capk_find(const kv_capk_store *s, const uint8_t rid[5], uint8_t index)
{
    size_t i;

    if (s == NULL)
        return NULL;
    for (i = 0; i < s->n; i++)
        if (s->keys[i].index == index && memcmp(s->keys[i].rid, rid, 5) == 0)
            return &s->keys[i];
    return NULL;
}

/* see capk.h */
size_t kv_capk_count(const kv_capk_store *s)
{
    return s != NULL ? s->n : 0;
}

/* see capk.h */
const kv_capk *kv_capk_at(const kv_capk_store *s, size_t i)
{
    return (s != NULL && i < s->n) ? &s->keys[i] : NULL;
}

/* see capk.h */
int kv_capk_store_add(kv_capk_store *s, const kv_capk *k, const uint8_t *checksum)
{
    int r = KV_ERR_ARG;
    uint8_t sum[20];

    if (s == NULL || k == NULL || capk_problem(k) != NULL ||
        kv_capk_find(s, k->rid, k->index) != NULL)
        goto out;
    if (checksum != NULL) {
        if ((r = kv_capk_checksum(k, sum)) != 0)
            goto out;
        if (memcmp(sum, checksum, 20) != 0) { /* public data: no constant time needed */
            r = KV_ERR_CAPK_CHECKSUM;
            goto out;
        }
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        kv_capk *p = realloc(s->keys, cap * sizeof(*p));

        if (p == NULL) {
            r = KV_ERR_NOMEM;
            goto out;
        }
        s->keys = p;
        s->cap = cap;
    }
    s->keys[s->n++] = *k;
    r = 0;
out:
    return r;
}

/* Hex field of exactly min..max bytes into out; returns the length or -1. */
static int hex_field(json_t *v, uint8_t *out, size_t min, size_t max)
{
    const char *s;
    int n;

    if (!json_is_string(v))
        return -1;
    s = json_string_value(v);
    n = kv_hex_decode(s, out, max);
    if (n < 0 || (size_t)n < min)
        return -1;
    return n;
}

static int text_field(json_t *v, char *out, size_t cap)
{
    const char *s;

    if (!json_is_string(v))
        return -1;
    s = json_string_value(v);
    if (strlen(s) >= cap)
        return -1;
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

/* One element of "keys" into the store. */
static int load_key(kv_capk_store *s, json_t *o, size_t pos, char *why, size_t whylen)
{
    static const char *const known[] = {
        "rid",          "index", "modulus", "exponent", "checksum", "hash_algorithm",
        "pk_algorithm", "name",  "kind",    "source",   NULL};
    int r = KV_ERR_JSON;
    kv_capk k;
    uint8_t sum[20], b[1];
    int has_sum = 0, n;
    const char *field, *problem;
    json_t *v;
    size_t i;

    memset(&k, 0, sizeof(k));
    k.hash_alg = 0x01;
    k.pk_alg = 0x01;
    if (!json_is_object(o)) {
        kv_errf(why, whylen, "keys[%zu]: not an object", pos);
        goto out;
    }
    json_object_foreach(o, field, v)
    {
        for (i = 0; known[i] != NULL; i++)
            if (strcmp(known[i], field) == 0)
                break;
        if (known[i] == NULL) {
            kv_errf(why, whylen, "keys[%zu]: unknown field \"%s\"", pos, field);
            goto out;
        }
    }
    if (hex_field(json_object_get(o, "rid"), k.rid, 5, 5) != 5) {
        kv_errf(why, whylen, "keys[%zu]: \"rid\" must be 5 bytes of hex", pos);
        goto out;
    }
    if (hex_field(json_object_get(o, "index"), b, 1, 1) != 1) {
        kv_errf(why, whylen, "keys[%zu]: \"index\" must be 1 byte of hex", pos);
        goto out;
    }
    k.index = b[0];
    if ((n = hex_field(json_object_get(o, "modulus"), k.modulus, 1, KV_CAPK_MOD_MAX)) < 0) {
        kv_errf(why, whylen,
                "keys[%zu] (%02X%02X%02X%02X%02X/%02X): \"modulus\" must be hex, at most %d bytes",
                pos, k.rid[0], k.rid[1], k.rid[2], k.rid[3], k.rid[4], k.index, KV_CAPK_MOD_MAX);
        goto out;
    }
    k.modulus_len = (size_t)n;
    if ((n = hex_field(json_object_get(o, "exponent"), k.exponent, 1, 3)) < 0) {
        kv_errf(why, whylen,
                "keys[%zu] (%02X%02X%02X%02X%02X/%02X): \"exponent\" must be 1-3 bytes of hex", pos,
                k.rid[0], k.rid[1], k.rid[2], k.rid[3], k.rid[4], k.index);
        goto out;
    }
    k.exponent_len = (size_t)n;
    if ((v = json_object_get(o, "checksum")) != NULL) {
        if (hex_field(v, sum, 20, 20) != 20) {
            kv_errf(why, whylen, "keys[%zu]: \"checksum\" must be 20 bytes of hex", pos);
            goto out;
        }
        has_sum = 1;
    }
    if ((v = json_object_get(o, "hash_algorithm")) != NULL) {
        if (hex_field(v, &k.hash_alg, 1, 1) != 1) {
            kv_errf(why, whylen, "keys[%zu]: \"hash_algorithm\" must be 1 byte of hex", pos);
            goto out;
        }
    }
    if ((v = json_object_get(o, "pk_algorithm")) != NULL) {
        if (hex_field(v, &k.pk_alg, 1, 1) != 1) {
            kv_errf(why, whylen, "keys[%zu]: \"pk_algorithm\" must be 1 byte of hex", pos);
            goto out;
        }
    }
    if (((v = json_object_get(o, "name")) != NULL && text_field(v, k.name, sizeof(k.name)) != 0) ||
        ((v = json_object_get(o, "kind")) != NULL && text_field(v, k.kind, sizeof(k.kind)) != 0) ||
        ((v = json_object_get(o, "source")) != NULL && !json_is_string(v))) {
        kv_errf(why, whylen, "keys[%zu]: \"name\", \"kind\" and \"source\" must be short strings",
                pos);
        goto out;
    }
    if ((problem = capk_problem(&k)) != NULL) {
        kv_errf(why, whylen, "keys[%zu] (%02X%02X%02X%02X%02X/%02X): %s", pos, k.rid[0], k.rid[1],
                k.rid[2], k.rid[3], k.rid[4], k.index, problem);
        goto out;
    }
    if (kv_capk_find(s, k.rid, k.index) != NULL) {
        kv_errf(why, whylen, "keys[%zu]: RID %02X%02X%02X%02X%02X index %02X appears twice", pos,
                k.rid[0], k.rid[1], k.rid[2], k.rid[3], k.rid[4], k.index);
        goto out;
    }
    if ((r = kv_capk_store_add(s, &k, has_sum ? sum : NULL)) != 0) {
        if (r == KV_ERR_CAPK_CHECKSUM)
            kv_errf(why, whylen,
                    "keys[%zu] (%02X%02X%02X%02X%02X/%02X): checksum does not match RID, index, "
                    "modulus and exponent",
                    pos, k.rid[0], k.rid[1], k.rid[2], k.rid[3], k.rid[4], k.index);
        else
            kv_errf(why, whylen, "keys[%zu]: %s", pos, kv_strerror(r));
        goto out;
    }
    r = 0;
out:
    return r;
}

/* see capk.h */
int kv_capk_store_load_text(const char *text, size_t len, kv_capk_store **out, char *why,
                            size_t whylen)
{
    int r = KV_ERR_JSON;
    kv_capk_store *s = NULL;
    json_t *root = NULL, *keys, *v;
    json_error_t jerr;
    const char *field;
    size_t i;

    *out = NULL;
    kv_errf(why, whylen, "%s", "");
    if (text == NULL) {
        r = KV_ERR_ARG;
        goto out;
    }
    if ((root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
        kv_errf(why, whylen, "line %d: %s", jerr.line, jerr.text);
        goto out;
    }
    if (!json_is_object(root)) {
        kv_errf(why, whylen, "the key file must be a JSON object");
        goto out;
    }
    json_object_foreach(root, field, v)
    {
        if (strcmp(field, "format") != 0 && strcmp(field, "comment") != 0 &&
            strcmp(field, "keys") != 0) {
            kv_errf(why, whylen, "unknown field \"%s\"", field);
            goto out;
        }
    }
    v = json_object_get(root, "format");
    if (!json_is_string(v) || strcmp(json_string_value(v), "kortvagt-capk-1") != 0) {
        kv_errf(why, whylen, "\"format\" must be \"kortvagt-capk-1\"");
        goto out;
    }
    keys = json_object_get(root, "keys");
    if (!json_is_array(keys)) {
        kv_errf(why, whylen, "\"keys\" must be an array");
        goto out;
    }
    if ((s = kv_capk_store_new()) == NULL) {
        r = KV_ERR_NOMEM;
        goto out;
    }
    for (i = 0; i < json_array_size(keys); i++)
        if ((r = load_key(s, json_array_get(keys, i), i, why, whylen)) != 0)
            goto out;
    *out = s;
    s = NULL; /* transferred */
    r = 0;
out:
    kv_capk_store_free(s);
    json_decref(root);
    return r;
}

/* see capk.h */
int kv_capk_store_load(const char *path, kv_capk_store **out, char *why, size_t whylen)
{
    int r = KV_ERR_IO;
    FILE *f = NULL;
    char *buf = NULL;
    size_t len = 0;

    *out = NULL;
    if (path == NULL) {
        r = KV_ERR_ARG;
        goto out;
    }
    if ((f = fopen(path, "rb")) == NULL) {
        kv_errf(why, whylen, "%s: %s", path, strerror(errno));
        goto out;
    }
    if ((buf = malloc(CAPK_FILE_MAX + 1)) == NULL) {
        r = KV_ERR_NOMEM;
        goto out;
    }
    len = fread(buf, 1, CAPK_FILE_MAX + 1, f);
    if (ferror(f)) {
        kv_errf(why, whylen, "%s: read error", path);
        goto out;
    }
    if (len > CAPK_FILE_MAX) {
        r = KV_ERR_JSON;
        kv_errf(why, whylen, "%s: larger than %u bytes", path, CAPK_FILE_MAX);
        goto out;
    }
    r = kv_capk_store_load_text(buf, len, out, why, whylen);
out:
    free(buf);
    if (f != NULL)
        fclose(f);
    return r;
}

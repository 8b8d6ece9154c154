/* see capk.h */
#include "apdu/capk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/base/jdec.h"

/* A key file is a few kilobytes per key; refuse anything absurd. */
#define CAPK_FILE_MAX (4u << 20)

/* One revoked issuer certificate: RID, CA index, serial (9 bytes, kept sorted for search). */
typedef struct {
    uint8_t b[9];
} capk_revoked;

struct kv_capk_store {
    kv_capk *keys;
    size_t n, cap;
    capk_revoked *revoked; /* sorted by rid || index || serial */
    size_t nrevoked, caprevoked;
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
    free(s->revoked);
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

/* One element of "keys" as decoded, before it goes into the store. */
struct capk_row {
    kv_capk k;
    uint8_t sum[20];
    int has_sum;
};

static void capk_row_init(void *obj)
{
    struct capk_row *row = obj;
    memset(row, 0, sizeof(*row));
    row->k.hash_alg = 0x01;
    row->k.pk_alg = 0x01;
}

/* "source" is any string (kept in the file for people, not loaded). */
static int any_string(kv_jdec *d, const json_t *v, void *field, void *obj, void *ctx)
{
    (void)field, (void)obj, (void)ctx;
    if (!json_is_string(v))
        return kv_jdec_fail(d, KV_JDEC_WRONG_TYPE, "must be a string");
    return 0;
}

/* A decoded key: sound, not yet in the store, checksum right; then added (ctx: the store). */
static int capk_row_add(kv_jdec *d, const json_t *o, void *obj, void *ctx)
{
    struct capk_row *row = obj;
    const kv_capk *k = &row->k;
    kv_capk_store *s = ctx;
    const char *problem;
    char where[KV_JDEC_PATH_MAX];
    int r;
    (void)o;
    snprintf(where, sizeof(where), "%.120s (%02X%02X%02X%02X%02X/%02X)", kv_jdec_path(d), k->rid[0],
             k->rid[1], k->rid[2], k->rid[3], k->rid[4], k->index);
    if ((problem = capk_problem(k)) != NULL) {
        r = kv_jdec_fail(d, KV_JDEC_BAD_FORMAT, "%s", problem);
        snprintf(kv_jdec_err(d)->path, sizeof(kv_jdec_err(d)->path), "%s", where);
        return r;
    }
    if (kv_capk_find(s, k->rid, k->index) != NULL)
        return kv_jdec_fail(d, KV_JDEC_DUPLICATE,
                            "RID %02X%02X%02X%02X%02X index %02X appears twice", k->rid[0],
                            k->rid[1], k->rid[2], k->rid[3], k->rid[4], k->index);
    if ((r = kv_capk_store_add(s, k, row->has_sum ? row->sum : NULL)) != 0) {
        if (r == KV_ERR_CAPK_CHECKSUM) {
            kv_jdec_fail(d, KV_JDEC_BAD_FORMAT,
                         "checksum does not match RID, index, modulus and exponent");
            snprintf(kv_jdec_err(d)->path, sizeof(kv_jdec_err(d)->path), "%s", where);
        } else {
            kv_jdec_fail(d, r == KV_ERR_NOMEM ? KV_JDEC_NOMEM : KV_JDEC_BAD_FORMAT, "%s",
                         kv_strerror(r));
        }
        return r;
    }
    return 0;
}

#define HEXROW(nm, fl, mn, mx, fld, lo, ho)                                                        \
    {                                                                                              \
        nm, KV_JT_HEX, (fl) | KV_JF_HEX_SPACES, mn, mx, offsetof(struct capk_row, fld), mx, lo,    \
            ho, NULL, NULL, 0, NULL, NULL                                                          \
    }
#define NONE KV_JDEC_NONE
static const kv_jdec_field key_rows[] = {
    HEXROW("rid", KV_JF_REQUIRED, 5, 5, k.rid, NONE, NONE),
    HEXROW("index", KV_JF_REQUIRED, 1, 1, k.index, NONE, NONE),
    HEXROW("modulus", KV_JF_REQUIRED, 1, KV_CAPK_MOD_MAX, k.modulus,
           offsetof(struct capk_row, k.modulus_len), NONE),
    HEXROW("exponent", KV_JF_REQUIRED, 1, 3, k.exponent, offsetof(struct capk_row, k.exponent_len),
           NONE),
    HEXROW("checksum", 0, 20, 20, sum, NONE, offsetof(struct capk_row, has_sum)),
    HEXROW("hash_algorithm", 0, 1, 1, k.hash_alg, NONE, NONE),
    HEXROW("pk_algorithm", 0, 1, 1, k.pk_alg, NONE, NONE),
    {"name", KV_JT_STRING, 0, 0, 79, offsetof(struct capk_row, k.name), 80, NONE, NONE, NULL, NULL,
     0, NULL, NULL},
    {"kind", KV_JT_STRING, 0, 0, 15, offsetof(struct capk_row, k.kind), 16, NONE, NONE, NULL, NULL,
     0, NULL, NULL},
    {"source", KV_JT_CUSTOM, 0, 0, 0, 0, 0, NONE, NONE, NULL, NULL, 0, any_string, NULL},
};
static const kv_jdec_table key_tbl = KV_JDEC_TABLE(NULL, key_rows, 0, capk_row_init, capk_row_add);

static int format_tag(kv_jdec *d, const json_t *v, void *field, void *obj, void *ctx)
{
    (void)field, (void)obj, (void)ctx;
    if (!json_is_string(v) || strcmp(json_string_value(v), "kortvagt-capk-1") != 0)
        return kv_jdec_fail(d, KV_JDEC_BAD_FORMAT, "must be \"kortvagt-capk-1\"");
    return 0;
}

struct capk_file {
    const json_t *comment;
    struct capk_row row;
};

/* The file: every key decodes into the one struct capk_row (stride 0) and goes to the store. */
static const kv_jdec_field file_rows[] = {
    {"format", KV_JT_CUSTOM, KV_JF_REQUIRED, 0, 0, 0, 0, NONE, NONE, NULL, NULL, 0, format_tag,
     NULL},
    {"comment", KV_JT_RAW, 0, 0, 0, offsetof(struct capk_file, comment), 0, NONE, NONE, NULL, NULL,
     0, NULL, NULL},
    {"keys", KV_JT_ARRAY, KV_JF_REQUIRED, 0, 100000, offsetof(struct capk_file, row), 0, NONE, NONE,
     NULL, &key_tbl, 0, NULL, NULL},
};
static const kv_jdec_table file_tbl = KV_JDEC_TABLE("key file", file_rows, 0, NULL, NULL);

/* see capk.h */
int kv_capk_store_load_text(const char *text, size_t len, kv_capk_store **out, char *why,
                            size_t whylen)
{
    int r = KV_ERR_JSON;
    kv_capk_store *s = NULL;
    struct capk_file *f = NULL;
    json_t *root = NULL;
    kv_jdec_error e;

    *out = NULL;
    kv_errf(why, whylen, "%s", "");
    if (text == NULL) {
        r = KV_ERR_ARG;
        goto out;
    }
    if (kv_jdec_parse(text, len, CAPK_FILE_MAX, &root, &e) != 0) {
        if (e.code == KV_JDEC_SYNTAX)
            kv_errf(why, whylen, "line %d: %s", e.line, e.msg);
        else
            kv_errf(why, whylen, "%s", e.msg);
        goto out;
    }
    if ((s = kv_capk_store_new()) == NULL || (f = calloc(1, sizeof(*f))) == NULL) {
        r = KV_ERR_NOMEM;
        goto out;
    }
    if ((r = kv_jdec_decode(root, &file_tbl, f, s, &e)) != 0) {
        kv_jdec_format(&e, why, whylen);
        goto out;
    }
    *out = s;
    s = NULL; /* transferred */
    r = 0;
out:
    free(f);
    kv_capk_store_free(s);
    json_decref(root);
    return r;
}

/*
 * Read the whole file path, at most max bytes, into *buf (malloc'd; the
 * caller frees it, also on failure) and *len. A larger file is too_big, an
 * unreadable one KV_ERR_IO, each with a reason in why.
 */
static int read_capped(const char *path, size_t max, int too_big, char **buf, size_t *len,
                       char *why, size_t whylen)
{
    int r = KV_ERR_IO;
    FILE *f;

    *buf = NULL;
    *len = 0;
    if ((f = fopen(path, "rb")) == NULL) {
        kv_errf(why, whylen, "%s: %s", path, strerror(errno));
        return r;
    }
    if ((*buf = malloc(max + 1)) == NULL) {
        r = KV_ERR_NOMEM;
        goto out;
    }
    *len = fread(*buf, 1, max + 1, f);
    if (ferror(f)) {
        kv_errf(why, whylen, "%s: read error", path);
        goto out;
    }
    if (*len > max) {
        r = too_big;
        kv_errf(why, whylen, "%s: larger than %zu bytes", path, max);
        goto out;
    }
    r = 0;
out:
    fclose(f);
    return r;
}

/* see capk.h */
int kv_capk_store_load(const char *path, kv_capk_store **out, char *why, size_t whylen)
{
    char *buf = NULL;
    size_t len = 0;
    int r;

    *out = NULL;
    if (path == NULL)
        return KV_ERR_ARG;
    if ((r = read_capped(path, CAPK_FILE_MAX, KV_ERR_JSON, &buf, &len, why, whylen)) == 0)
        r = kv_capk_store_load_text(buf, len, out, why, whylen);
    free(buf);
    return r;
}

/* see capk.h */
const char *kv_capk_locate(const kv_capk_search *s)
{
    const char *const found[] = {s->source, s->sysconf, s->data, s->data_abs};

    if (s->flag != NULL)
        return s->flag;
    if (s->env != NULL && s->env[0] != '\0')
        return s->env;
    for (size_t i = 0; i < sizeof(found) / sizeof(found[0]); i++)
        if (found[i] != NULL && found[i][0] != '\0' && access(found[i], R_OK) == 0)
            return found[i];
    return NULL;
}

/* ---- revocation list ---- */

/* A revocation list is a line per certificate: refuse more than this many. */
#define REVOKED_MAX 100000u
#define REVOKED_FILE_MAX (4u << 20)

static void revoked_key(const uint8_t rid[5], uint8_t index, const uint8_t serial[3], uint8_t k[9])
{
    memcpy(k, rid, 5);
    k[5] = index;
    memcpy(k + 6, serial, 3);
}

/* Index of the first entry >= k. */
static size_t revoked_lower(const kv_capk_store *s, const uint8_t k[9])
{
    size_t lo = 0, hi = s->nrevoked;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (memcmp(s->revoked[mid].b, k, 9) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* see capk.h */
int kv_capk_revoke(kv_capk_store *s, const uint8_t rid[5], uint8_t index, const uint8_t serial[3])
{
    uint8_t k[9];
    size_t at;

    if (s == NULL || rid == NULL || serial == NULL)
        return KV_ERR_ARG;
    revoked_key(rid, index, serial, k);
    at = revoked_lower(s, k);
    if (at < s->nrevoked && memcmp(s->revoked[at].b, k, 9) == 0)
        return 0; /* listed already */
    if (s->nrevoked >= REVOKED_MAX)
        return KV_ERR_BUFFER;
    if (s->nrevoked == s->caprevoked) {
        size_t cap = s->caprevoked ? 2 * s->caprevoked : 16;
        capk_revoked *p = realloc(s->revoked, cap * sizeof(*p));
        if (p == NULL)
            return KV_ERR_NOMEM;
        s->revoked = p;
        s->caprevoked = cap;
    }
    memmove(s->revoked + at + 1, s->revoked + at, (s->nrevoked - at) * sizeof(*s->revoked));
    memcpy(s->revoked[at].b, k, 9);
    s->nrevoked++;
    return 0;
}

/* see capk.h */
int kv_capk_is_revoked(const kv_capk_store *s, const uint8_t rid[5], uint8_t index,
                       const uint8_t serial[3])
{
    uint8_t k[9];
    size_t at;

    if (s == NULL || s->nrevoked == 0)
        return 0;
    revoked_key(rid, index, serial, k);
    at = revoked_lower(s, k);
    return at < s->nrevoked && memcmp(s->revoked[at].b, k, 9) == 0;
}

/* see capk.h */
size_t kv_capk_revoked_count(const kv_capk_store *s)
{
    return s != NULL ? s->nrevoked : 0;
}

/* Next whitespace-separated field of the line [*p, end): hex of exactly n bytes into out. */
static int revoked_field(const char **p, const char *end, uint8_t *out, size_t n)
{
    const char *q = *p, *start;
    char hex[16];
    size_t len;

    while (q < end && (*q == ' ' || *q == '\t'))
        q++;
    start = q;
    while (q < end && *q != ' ' && *q != '\t')
        q++;
    len = (size_t)(q - start);
    *p = q;
    if (len != 2 * n || len >= sizeof(hex))
        return KV_ERR_FORMAT;
    memcpy(hex, start, len);
    hex[len] = '\0';
    return kv_hex_decode(hex, out, n) == (int)n ? 0 : KV_ERR_FORMAT;
}

/* see capk.h */
int kv_capk_revoked_load_text(kv_capk_store *s, const char *text, size_t len, char *why,
                              size_t whylen)
{
    const char *p = text, *end = text + len;
    unsigned line = 0;
    int r;

    kv_errf(why, whylen, "%s", "");
    if (s == NULL || (text == NULL && len > 0))
        return KV_ERR_ARG;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p)), *q;
        uint8_t rid[5], index, serial[3];

        if (eol == NULL)
            eol = end;
        line++;
        /* the line without its comment, CR and trailing blanks */
        q = memchr(p, '#', (size_t)(eol - p));
        if (q == NULL)
            q = eol;
        while (q > p && (q[-1] == ' ' || q[-1] == '\t' || q[-1] == '\r'))
            q--;
        {
            const char *f = p;
            while (f < q && (*f == ' ' || *f == '\t'))
                f++;
            if (f == q) { /* blank or comment only */
                p = eol < end ? eol + 1 : end;
                continue;
            }
            if (revoked_field(&f, q, rid, 5) != 0 || revoked_field(&f, q, &index, 1) != 0 ||
                revoked_field(&f, q, serial, 3) != 0) {
                kv_errf(why, whylen, "line %u: want \"RID INDEX SERIAL\": 10, 2 and 6 hex digits",
                        line);
                return KV_ERR_FORMAT;
            }
            while (f < q && (*f == ' ' || *f == '\t'))
                f++;
            if (f != q) {
                kv_errf(why, whylen, "line %u: text after the serial number", line);
                return KV_ERR_FORMAT;
            }
        }
        if ((r = kv_capk_revoke(s, rid, index, serial)) != 0) {
            kv_errf(why, whylen, "line %u: %s", line,
                    r == KV_ERR_BUFFER ? "more than 100000 entries" : kv_strerror(r));
            return r;
        }
        p = eol < end ? eol + 1 : end;
    }
    return 0;
}

/* see capk.h */
int kv_capk_revoked_load(kv_capk_store *s, const char *path, char *why, size_t whylen)
{
    char *buf = NULL;
    size_t len = 0;
    int r;

    kv_errf(why, whylen, "%s", "");
    if (s == NULL || path == NULL)
        return KV_ERR_ARG;
    if ((r = read_capped(path, REVOKED_FILE_MAX, KV_ERR_FORMAT, &buf, &len, why, whylen)) == 0)
        r = kv_capk_revoked_load_text(s, buf, len, why, whylen);
    free(buf);
    return r;
}

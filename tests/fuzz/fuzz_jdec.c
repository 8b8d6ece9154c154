/*
 * libFuzzer target for the strict JSON decoder (src/base/jdec.h): any bytes
 * either decode by a table that uses every member type, or fail with a typed
 * code, a path that fits its buffer and a message; the decoded struct keeps
 * its bounds (counts, lengths, NUL-terminated strings).
 */
#include "src/base/err.h"
#include "src/base/jdec.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct leaf {
    char id[9];
    int64_t amount;
    bool on;
    unsigned tags;
};

struct doc {
    char name[17];
    char digits[7];
    uint8_t hex[6];
    size_t hex_len;
    int has_hex;
    int64_t n;
    uint8_t byte;
    int color;
    struct leaf leaves[4];
    size_t n_leaves;
    struct leaf *heap;
    size_t n_heap;
    const char *words[3];
    size_t n_words;
    const json_t *raw;
    struct leaf inner;
    int has_inner;
};

#define NONE KV_JDEC_NONE
static const char *const names[] = {"x", "y", "z", NULL};

static int odd_check(kv_jdec *d, const json_t *o, void *obj, void *ctx)
{
    (void)o, (void)ctx;
    if (((struct leaf *)obj)->amount == 7)
        return kv_jdec_fail(d, KV_JDEC_CONFLICT, "seven");
    return 0;
}

static const kv_jdec_field leaf_rows[] = {
    {"id", KV_JT_STRING, KV_JF_REQUIRED | KV_JF_TEXT, 1, 8, offsetof(struct leaf, id), 9, NONE,
     NONE, NULL, NULL, 0, NULL, NULL},
    {"amount", KV_JT_AMOUNT, 0, 0, 100000, offsetof(struct leaf, amount), 0, NONE, NONE, NULL, NULL,
     0, NULL, NULL},
    {"on", KV_JT_BOOL, 0, 0, 0, offsetof(struct leaf, on), sizeof(bool), NONE, NONE, NULL, NULL, 0,
     NULL, NULL},
    {"tags", KV_JT_ENUMS, 0, 0, 3, offsetof(struct leaf, tags), sizeof(unsigned), NONE, NONE, names,
     NULL, 0, NULL, NULL},
};
static const kv_jdec_table leaf_tbl = KV_JDEC_TABLE(NULL, leaf_rows, 0, NULL, odd_check);

static int any_number(kv_jdec *d, const json_t *v, void *field, void *obj, void *ctx)
{
    (void)field, (void)obj, (void)ctx;
    if (!json_is_number(v))
        return kv_jdec_fail(d, KV_JDEC_WRONG_TYPE, "must be a number");
    return 0;
}

static const kv_jdec_field doc_rows[] = {
    {"name", KV_JT_STRING, KV_JF_REQUIRED, 0, 16, offsetof(struct doc, name), 17, NONE, NONE, NULL,
     NULL, 0, NULL, NULL},
    {"digits", KV_JT_DIGITS, 0, 2, 6, offsetof(struct doc, digits), 7, NONE, NONE, NULL, NULL, 0,
     NULL, NULL},
    {"hex", KV_JT_HEX, KV_JF_HEX_SPACES, 1, 6, offsetof(struct doc, hex), 6,
     offsetof(struct doc, hex_len), offsetof(struct doc, has_hex), NULL, NULL, 0, NULL, NULL},
    {"n", KV_JT_INT, KV_JF_NULL_OK, INT64_MIN, INT64_MAX, offsetof(struct doc, n), 0, NONE, NONE,
     NULL, NULL, 0, NULL, NULL},
    {"byte", KV_JT_INT, 0, 0, 255, offsetof(struct doc, byte), 1, NONE, NONE, NULL, NULL, 0, NULL,
     NULL},
    {"color", KV_JT_ENUM, 0, 0, 0, offsetof(struct doc, color), sizeof(int), NONE, NONE, names,
     NULL, 0, NULL, NULL},
    {"leaves", KV_JT_ARRAY, 0, 0, 4, offsetof(struct doc, leaves), 0,
     offsetof(struct doc, n_leaves), NONE, NULL, &leaf_tbl, sizeof(struct leaf), NULL, NULL},
    {"heap", KV_JT_ARRAY, KV_JF_ALLOC, 1, 64, offsetof(struct doc, heap), 0,
     offsetof(struct doc, n_heap), NONE, NULL, &leaf_tbl, sizeof(struct leaf), NULL, NULL},
    {"words", KV_JT_STRINGS, 0, 0, 3, offsetof(struct doc, words), 0, offsetof(struct doc, n_words),
     NONE, NULL, NULL, 0, NULL, NULL},
    {"raw", KV_JT_RAW, 0, 0, 0, offsetof(struct doc, raw), 0, NONE, NONE, NULL, NULL, 0, NULL,
     NULL},
    {"inner", KV_JT_OBJECT, KV_JF_NULL_OK, 0, 0, offsetof(struct doc, inner), 0, NONE,
     offsetof(struct doc, has_inner), NULL, &leaf_tbl, 0, NULL, NULL},
    {"num", KV_JT_CUSTOM, 0, 0, 0, 0, 0, NONE, NONE, NULL, NULL, 0, any_number, NULL},
};
static const kv_jdec_table doc_tbl = KV_JDEC_TABLE("doc", doc_rows, 0, NULL, NULL);
static const kv_jdec_table open_tbl =
    KV_JDEC_TABLE("doc", doc_rows, KV_JDEC_ALLOW_UNKNOWN, NULL, NULL);

static void check_leaf(const struct leaf *l)
{
    if (memchr(l->id, '\0', sizeof(l->id)) == NULL || l->amount < 0 || l->amount > 100000 ||
        l->tags > 7)
        abort();
}

static void run(const uint8_t *data, size_t size, const kv_jdec_table *t)
{
    struct doc doc;
    kv_jdec_error e;
    char msg[512];
    json_t *j;
    int r;

    memset(&doc, 0, sizeof(doc));
    if (kv_jdec_parse((const char *)data, size, 65536, &j, &e) != 0) {
        if (e.code != KV_JDEC_SYNTAX && e.code != KV_JDEC_TOO_LARGE)
            abort();
        return;
    }
    r = kv_jdec_decode(j, t, &doc, NULL, &e);
    kv_jdec_format(&e, msg, sizeof(msg));
    if (r != 0) {
        if (e.code == KV_JDEC_OK || e.code >= KV_JDEC_CODE_COUNT ||
            memchr(e.path, '\0', sizeof(e.path)) == NULL || e.msg[0] == '\0' ||
            (r != KV_ERR_JSON && r != KV_ERR_NOMEM))
            abort();
    } else {
        if (doc.n_leaves > 4 || doc.n_words > 3 || doc.hex_len > 6 || doc.n_heap > 64 ||
            memchr(doc.name, '\0', sizeof(doc.name)) == NULL ||
            memchr(doc.digits, '\0', sizeof(doc.digits)) == NULL || doc.color < 0 || doc.color > 2)
            abort();
        for (size_t i = 0; i < doc.n_leaves; i++)
            check_leaf(&doc.leaves[i]);
        for (size_t i = 0; i < doc.n_heap; i++)
            check_leaf(&doc.heap[i]);
        for (size_t i = 0; i < doc.n_words; i++)
            if (doc.words[i] == NULL)
                abort();
        if (doc.has_inner)
            check_leaf(&doc.inner);
    }
    free(doc.heap);
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run(data, size, &doc_tbl);
    run(data, size, &open_tbl);
    return 0;
}

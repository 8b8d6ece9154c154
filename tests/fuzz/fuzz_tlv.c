/*
 * libFuzzer target for apdu/tlv.h and the renderings of apdu/tags.h: any
 * input must decode without a crash, the entry points must agree with each
 * other, and well-formed input must survive a re-encoding through the writer
 * with the same objects. A broken invariant aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "apdu/tags.h"
#include "apdu/tlv.h"
#include "src/base/err.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_tlv: invariant failed: %s (line %d)\n", #cond, __LINE__);        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

struct flat {
    uint32_t tag;
    unsigned depth;
    const uint8_t *value;
    size_t len;
    uint8_t constructed;
};

struct walk_ctx {
    const uint8_t *base;
    size_t size;
    struct flat *items; /* NULL: only check bounds */
    size_t n, cap;
    uint32_t first_tag;
};

static int check_visit(const kv_tlv *t, unsigned depth, void *arg)
{
    struct walk_ctx *ctx = arg;

    /* Everything points inside the input, and the pieces fit together. */
    CHECK(depth <= KV_TLV_MAX_DEPTH);
    CHECK(!t->constructed || depth < KV_TLV_MAX_DEPTH);
    CHECK(t->tag_len >= 1 && t->tag_len <= 3);
    CHECK(kv_tlv_tag_is_valid(t->tag));
    CHECK(t->raw >= ctx->base && t->raw_len <= ctx->size &&
          (size_t)(t->raw - ctx->base) <= ctx->size - t->raw_len);
    CHECK(t->raw_len >= (size_t)t->tag_len + 1 + t->len);
    CHECK(t->raw_len - t->len <= (size_t)t->tag_len + 5);
    CHECK((t->len == 0) == (t->value == NULL));
    if (t->value != NULL)
        CHECK(t->value + t->len == t->raw + t->raw_len);
    if (ctx->n == 0)
        ctx->first_tag = t->tag;
    if (ctx->items != NULL) {
        CHECK(ctx->n < ctx->cap);
        ctx->items[ctx->n].tag = t->tag;
        ctx->items[ctx->n].depth = depth;
        ctx->items[ctx->n].value = t->value;
        ctx->items[ctx->n].len = t->len;
        ctx->items[ctx->n].constructed = t->constructed;
    }
    ctx->n++;
    return 0;
}

static int reencode_visit(const kv_tlv *t, unsigned depth, void *arg)
{
    kv_tlv_writer *w = arg;
    while (w->depth > depth)
        kv_tlv_end(w);
    if (t->constructed)
        return kv_tlv_begin(w, t->tag);
    return kv_tlv_put(w, t->tag, t->value, t->len);
}

/* Top-level kv_tlv_next loop: agrees with validate at the top level, never moves on error. */
static void check_next_loop(const uint8_t *data, size_t size)
{
    kv_cursor c;
    kv_tlv t;
    int r;

    kv_cursor_init(&c, data, size);
    while ((r = kv_tlv_next(&c, &t)) == 1)
        CHECK(t.raw + t.raw_len == c.p);
    if (r == 0) {
        CHECK(kv_cursor_left(&c) == 0);
    } else {
        kv_cursor before = c;
        CHECK(kv_tlv_next(&c, &t) == r);
        CHECK(c.p == before.p && c.left == before.left);
    }
}

static void check_reencode(const uint8_t *data, size_t size, const struct walk_ctx *orig)
{
    uint8_t *out = malloc(size + 1);
    struct walk_ctx again;
    kv_tlv_writer w;

    CHECK(out != NULL);
    memset(&again, 0, sizeof(again));
    /* Dropping padding and using minimal lengths never makes the encoding longer. */
    kv_tlv_writer_init(&w, out, size);
    CHECK(kv_tlv_walk(data, size, reencode_visit, &w) == 0);
    while (w.depth > 0)
        kv_tlv_end(&w);
    CHECK(kv_tlv_finish(&w) == 0);
    CHECK(w.len <= size);
    CHECK(kv_tlv_validate(out, w.len) == 0);

    again.base = out;
    again.size = w.len;
    again.cap = orig->n;
    again.items = calloc(orig->n + 1, sizeof(*again.items));
    CHECK(again.items != NULL);
    CHECK(kv_tlv_walk(out, w.len, check_visit, &again) == 0);
    CHECK(again.n == orig->n);
    for (size_t i = 0; i < orig->n; i++) {
        const struct flat *a = &orig->items[i], *b = &again.items[i];
        CHECK(a->tag == b->tag && a->depth == b->depth && a->constructed == b->constructed);
        if (!a->constructed)
            CHECK(a->len == b->len && (a->len == 0 || memcmp(a->value, b->value, a->len) == 0));
    }
    free(again.items);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *sink;
    struct walk_ctx ctx;
    size_t bad = (size_t)-1;
    json_t *tree = NULL;
    kv_tlv t;
    int v, r;

    if (sink == NULL)
        sink = fopen("/dev/null", "w");
    CHECK(sink != NULL);

    v = kv_tlv_validate_offset(data, size, &bad);
    CHECK(v == 0 || (v <= KV_ERR_TRUNCATED && v >= KV_ERR_TLV_DEPTH));
    CHECK(v == 0 ? bad == (size_t)-1 : bad < size);
    CHECK(kv_tlv_validate(data, size) == v);

    memset(&ctx, 0, sizeof(ctx));
    ctx.base = data;
    ctx.size = size;
    ctx.cap = size / 2 + 1; /* every object takes at least two bytes */
    ctx.items = calloc(ctx.cap, sizeof(*ctx.items));
    CHECK(ctx.items != NULL);
    CHECK(kv_tlv_walk(data, size, check_visit, &ctx) == v);

    check_next_loop(data, size);

    /* find agrees with the walk for the first tag and reports the error for an absent one. */
    if (ctx.n > 0) {
        CHECK(kv_tlv_find(data, size, ctx.first_tag, &t) == 0);
        CHECK(t.tag == ctx.first_tag);
    }
    r = kv_tlv_find(data, size, 0x5A, &t);
    CHECK(r == 0 || r == KV_ERR_NOT_FOUND || r == v);
    r = kv_tlv_find(data, size, 0xDF8129, &t);
    CHECK(r == 0 || r == KV_ERR_NOT_FOUND || r == v);
    if (v == 0)
        CHECK(kv_tlv_find(data, size, 0xFF8101, &t) == KV_ERR_NOT_FOUND); /* FF is padding */

    CHECK(kv_tag_print_tree(sink, data, size, 0) == v);
    CHECK(kv_tag_print_tree(sink, data, size, KV_TAG_REVEAL) == v);
    r = kv_tag_json_tree(data, size, 0, &tree);
    CHECK(r == v || r == KV_ERR_NOMEM);
    CHECK((r == 0) == (tree != NULL));
    if (tree != NULL) {
        char *dump = json_dumps(tree, JSON_COMPACT);
        CHECK(dump != NULL); /* all strings are valid UTF-8 */
        free(dump);
        json_decref(tree);
    }

    if (v == 0)
        check_reencode(data, size, &ctx);
    free(ctx.items);
    return 0;
}

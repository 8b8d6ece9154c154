/* see reader.h: the replay and recorded backends */
#include "apdu/reader.h"
#include "apdu/recorded.h"
#include "src/base/err.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    kv_trace_script *s;
    size_t pos;
} replay_ctx;

static int replay_transmit(void *ctx, const uint8_t *capdu, size_t len, uint8_t *out, size_t cap,
                           size_t *outlen)
{
    replay_ctx *rc = ctx;
    const kv_trace_entry *e;

    if (rc->pos >= rc->s->n)
        return KV_ERR_REPLAY_END;
    e = &rc->s->e[rc->pos];
    if (!kv_trace_entry_matches(e, capdu, len))
        return KV_ERR_REPLAY_MISMATCH;
    if (e->rlen > cap)
        return KV_ERR_BUFFER;
    memcpy(out, e->r, e->rlen);
    *outlen = e->rlen;
    rc->pos++;
    return 0;
}

static int replay_atr(void *ctx, uint8_t *out, size_t cap, size_t *len)
{
    replay_ctx *rc = ctx;
    if (rc->s->atr_len == 0)
        return KV_ERR_NOT_FOUND;
    if (rc->s->atr_len > cap)
        return KV_ERR_BUFFER;
    memcpy(out, rc->s->atr, rc->s->atr_len);
    *len = rc->s->atr_len;
    return 0;
}

/* A script goes on after a reset as recorded: nothing to do. */
static int replay_reset(void *ctx)
{
    (void)ctx;
    return 0;
}

static void replay_close(void *ctx)
{
    replay_ctx *rc = ctx;
    if (rc == NULL)
        return;
    kv_trace_script_free(rc->s);
    free(rc);
}

static const kv_transport_ops replay_ops = {
    .name = "replay",
    .transmit = replay_transmit,
    .atr = replay_atr,
    .reset = replay_reset,
    .close = replay_close,
};

static int open_script(kv_trace_script *s, const char *name, kv_reader **out)
{
    int r = KV_ERR_NOMEM;
    replay_ctx *rc = NULL;
    kv_reader *rd = NULL;

    if ((rc = calloc(1, sizeof(*rc))) == NULL) {
        kv_trace_script_free(s);
        goto out;
    }
    rc->s = s;
    if ((r = kv_reader_new(&replay_ops, rc, &rd)) != 0) /* closes rc on failure */
        goto out;
    if (name != NULL && (r = kv_reader_set_name(rd, name)) != 0)
        goto out;
    *out = rd;
    rd = NULL; /* transferred */
    r = 0;
out:
    kv_reader_free(rd);
    return r;
}

int kv_reader_open_replay(const char *path, kv_reader **out)
{
    int r;
    kv_trace_script *s = NULL;
    if ((r = kv_trace_load(path, &s)) != 0)
        return r;
    return open_script(s, path, out);
}

int kv_reader_open_replay_text(const char *text, size_t len, kv_reader **out)
{
    int r;
    kv_trace_script *s = NULL;
    if ((r = kv_trace_parse(text, len, &s)) != 0)
        return r;
    return open_script(s, NULL, out);
}

size_t kv_reader_replay_left(const kv_reader *r)
{
    const replay_ctx *rc;
    if (kv_reader_ops(r) != &replay_ops)
        return 0;
    rc = kv_reader_ctx(r);
    return rc->s->n - rc->pos;
}

/* ---- recorded card ---- */

static int recorded_transmit(void *ctx, const uint8_t *capdu, size_t len, uint8_t *out, size_t cap,
                             size_t *outlen)
{
    return kv_recorded_answer(ctx, capdu, len, out, cap, outlen);
}

static int recorded_atr(void *ctx, uint8_t *out, size_t cap, size_t *len)
{
    size_t n = kv_recorded_atr(ctx, out, cap);
    if (n == 0)
        return KV_ERR_NOT_FOUND;
    if (n > cap)
        return KV_ERR_BUFFER;
    *len = n;
    return 0;
}

static int recorded_reset(void *ctx)
{
    kv_recorded_reset(ctx);
    return 0;
}

static void recorded_close(void *ctx)
{
    kv_recorded_free(ctx);
}

static const kv_transport_ops recorded_ops = {
    .name = "recorded",
    .transmit = recorded_transmit,
    .atr = recorded_atr,
    .reset = recorded_reset,
    .close = recorded_close,
};

int kv_reader_open_recorded(const char *path, kv_reader **out)
{
    int r;
    kv_recorded *card = NULL;
    kv_reader *rd = NULL;

    if ((r = kv_recorded_load(path, &card)) != 0)
        goto out;
    if ((r = kv_reader_new(&recorded_ops, card, &rd)) != 0) /* frees card on failure */
        goto out;
    if ((r = kv_reader_set_name(rd, path)) != 0)
        goto out;
    *out = rd;
    rd = NULL; /* transferred */
out:
    kv_reader_free(rd);
    return r;
}

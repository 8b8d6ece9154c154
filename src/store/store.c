/* see store.h */
#include "src/store/store.h"
#include "src/base/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kv_store {
    const kv_store_ops *ops;
    void *impl;
};

void kv_evidence_row_clear(kv_evidence_row *r)
{
    if (r == NULL)
        return;
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
}

int kv_store_wrap(const kv_store_ops *ops, void *impl, kv_store **out)
{
    kv_store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return KV_ERR_NOMEM;
    s->ops = ops;
    s->impl = impl;
    *out = s;
    return 0;
}

static void set_err(char *err, size_t errlen, const char *fmt, const char *arg)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, fmt, arg);
}

int kv_store_open(const char *url, kv_store **out, char *err, size_t errlen)
{
    kv_sqlite_sync sync = KV_SQLITE_SYNC_NORMAL;
    int external = 0, r;
    char path[4096];
    const char *q;
    size_t n;

    *out = NULL;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (url == NULL)
        url = "sqlite:./kortvagt.db";
    if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0) {
        return kv_store_open_pg(url, out, err, errlen);
    }
    if (strncmp(url, "sqlite:", 7) != 0) {
        set_err(err, errlen, "store URL '%s' is neither sqlite:PATH nor postgresql://...", url);
        return KV_ERR_ARG;
    }
    url += 7;
    q = strchr(url, '?');
    n = q != NULL ? (size_t)(q - url) : strlen(url);
    if (n == 0 || n >= sizeof(path)) {
        set_err(err, errlen, "%s", "store URL sqlite:PATH has no usable PATH");
        return KV_ERR_ARG;
    }
    memcpy(path, url, n);
    path[n] = '\0';
    /* options: ?synchronous=normal|full and checkpoint=auto|external, joined by & */
    for (const char *o = q; o != NULL && *o != '\0';) {
        const char *end = strchr(o + 1, '&');
        size_t len = end != NULL ? (size_t)(end - o - 1) : strlen(o + 1);
        o++;
        if (len == 18 && strncmp(o, "synchronous=normal", len) == 0) {
            sync = KV_SQLITE_SYNC_NORMAL;
        } else if (len == 16 && strncmp(o, "synchronous=full", len) == 0) {
            sync = KV_SQLITE_SYNC_FULL;
        } else if (len == 15 && strncmp(o, "checkpoint=auto", len) == 0) {
            external = 0;
        } else if (len == 19 && strncmp(o, "checkpoint=external", len) == 0) {
            external = 1;
        } else {
            set_err(err, errlen,
                    "store URL option '%s' is not synchronous=normal|full or "
                    "checkpoint=auto|external",
                    o);
            return KV_ERR_ARG;
        }
        o = end;
    }
    if ((r = kv_store_open_sqlite(path, sync, out, err, errlen)) != 0)
        return r;
    if (external && (r = kv_store_checkpoint_external(*out)) != 0) {
        set_err(err, errlen, "%s", "store: cannot turn off checkpoints on commit");
        kv_store_close(*out);
        *out = NULL;
    }
    return r;
}

int kv_store_checkpoint_external(kv_store *s)
{
    return s->ops->checkpoint_external != NULL ? s->ops->checkpoint_external(s->impl) : 0;
}

int kv_store_checkpoint(kv_store *s)
{
    return s->ops->checkpoint != NULL ? s->ops->checkpoint(s->impl) : 0;
}

void kv_store_close(kv_store *s)
{
    if (s == NULL)
        return;
    s->ops->close(s->impl);
    free(s);
}

const char *kv_store_backend(const kv_store *s)
{
    return s->ops->name;
}

const char *kv_store_last_error(const kv_store *s)
{
    return s->ops->last_error(s->impl);
}

int kv_store_begin(kv_store *s, int write)
{
    return s->ops->begin(s->impl, write);
}

int kv_store_commit(kv_store *s)
{
    return s->ops->commit(s->impl);
}

void kv_store_rollback(kv_store *s)
{
    s->ops->rollback(s->impl);
}

int kv_store_card_get(kv_store *s, const uint8_t token[KV_TOKEN_LEN], kv_card_state *out,
                      int *found)
{
    int dummy;
    return s->ops->card_get(s->impl, token, out, found != NULL ? found : &dummy);
}

int kv_store_card_put(kv_store *s, const kv_card_state *c)
{
    return s->ops->card_put(s->impl, c);
}

int kv_store_day_sum(kv_store *s, const uint8_t token[KV_TOKEN_LEN], const char *day,
                     kv_day_kind kind, int64_t *sum)
{
    return s->ops->day_sum(s->impl, token, day, kind, sum);
}

int kv_store_day_add(kv_store *s, const uint8_t token[KV_TOKEN_LEN], const char *day,
                     kv_day_kind kind, int64_t delta)
{
    return s->ops->day_add(s->impl, token, day, kind, delta);
}

int kv_store_code_use(kv_store *s, const uint8_t hash[32], int64_t at, int *fresh)
{
    return s->ops->code_use(s->impl, hash, at, fresh);
}

int kv_store_series_first(kv_store *s, const uint8_t token[KV_TOKEN_LEN], const char *series,
                          int64_t amount, const char *payee, int *found)
{
    return s->ops->series_first(s->impl, token, series, amount, payee, found);
}

int kv_store_txn_put(kv_store *s, const kv_txn *t)
{
    return s->ops->txn_put(s->impl, t);
}

int kv_store_txn_get(kv_store *s, int64_t id, kv_txn *t, int *found)
{
    return s->ops->txn_get(s->impl, id, t, found);
}

int kv_store_txn_set_reversed(kv_store *s, int64_t id)
{
    return s->ops->txn_set_reversed(s->impl, id);
}

int kv_store_txn_scan_card(kv_store *s, const uint8_t token[KV_TOKEN_LEN], int limit, kv_txn_cb cb,
                           void *ctx)
{
    return s->ops->txn_scan_card(s->impl, token, limit, cb, ctx);
}

int kv_store_evidence_head(kv_store *s, int64_t *id, uint8_t hash[32])
{
    return s->ops->evidence_head(s->impl, id, hash);
}

int kv_store_evidence_put(kv_store *s, const kv_evidence_row *r)
{
    return s->ops->evidence_put(s->impl, r);
}

int kv_store_evidence_get(kv_store *s, int64_t id, kv_evidence_row *r, int *found)
{
    return s->ops->evidence_get(s->impl, id, r, found);
}

int kv_store_evidence_scan(kv_store *s, int64_t id_from, int64_t t_from, int64_t t_to,
                           kv_evidence_cb cb, void *ctx)
{
    return s->ops->evidence_scan(s->impl, id_from, t_from, t_to, cb, ctx);
}

/* block list (see store.h "block list") */

#define BL_CALL(s, op, ...)                                                                        \
    ((s)->ops->blocklist == NULL || (s)->ops->blocklist->op == NULL                                \
         ? KV_ERR_UNSUPPORTED                                                                      \
         : (s)->ops->blocklist->op((s)->impl, __VA_ARGS__))

int kv_store_bl_put(kv_store *s, const kv_bl_entry *e)
{
    return BL_CALL(s, put, e);
}

int kv_store_bl_get(kv_store *s, const uint8_t token[KV_TOKEN_LEN], kv_bl_entry *e, int *found)
{
    int dummy;
    return BL_CALL(s, get, token, e, found != NULL ? found : &dummy);
}

int kv_store_bl_delete(kv_store *s, const uint8_t token[KV_TOKEN_LEN])
{
    return BL_CALL(s, del, token);
}

int kv_store_bl_scan(kv_store *s, kv_bl_entry_cb cb, void *ctx)
{
    return BL_CALL(s, scan, cb, ctx);
}

int kv_store_bl_listed(kv_store *s, const uint8_t token[KV_TOKEN_LEN], int *listed)
{
    return BL_CALL(s, listed, token, listed);
}

int kv_store_bl_wallet_put(kv_store *s, const kv_bl_wallet *w)
{
    return BL_CALL(s, wallet_put, w);
}

int kv_store_bl_wallet_scan(kv_store *s, const uint8_t card_token[KV_TOKEN_LEN], kv_bl_wallet_cb cb,
                            void *ctx)
{
    return BL_CALL(s, wallet_scan, card_token, cb, ctx);
}

int kv_store_bl_recipient_put(kv_store *s, const char *name, int64_t at)
{
    return BL_CALL(s, recipient_put, name, at);
}

int kv_store_bl_recipient_scan(kv_store *s, kv_bl_recipient_cb cb, void *ctx)
{
    return BL_CALL(s, recipient_scan, cb, ctx);
}

int kv_store_bl_correction_put(kv_store *s, kv_bl_correction *c)
{
    return BL_CALL(s, correction_put, c);
}

int kv_store_bl_correction_scan(kv_store *s, kv_bl_correction_cb cb, void *ctx)
{
    return BL_CALL(s, correction_scan, cb, ctx);
}

int kv_store_bl_request_put(kv_store *s, kv_bl_request *q)
{
    return BL_CALL(s, request_put, q);
}

int kv_store_bl_request_answer(kv_store *s, int64_t id, int64_t at, int *found)
{
    int dummy;
    return BL_CALL(s, request_answer, id, at, found != NULL ? found : &dummy);
}

int kv_store_bl_request_scan(kv_store *s, kv_bl_request_cb cb, void *ctx)
{
    return BL_CALL(s, request_scan, cb, ctx);
}

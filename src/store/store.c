/* see store.h */
#include "src/store/store.h"
#include "src/base/err.h"
#include "src/base/hex.h"

#include <openssl/sha.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kv_store {
    const kv_store_ops *ops;
    void *impl;
    int has_mac; /* row MACs on (kv_store_set_row_mac) */
    kv_mac mac;
    int bl_tampered; /* the block list's digest did not match its rows at open */
    int adopting;    /* kv_store_set_row_mac_adopt is MACing rows: no digest updates */
    int err_on;      /* err below is the last failure's text (a tampered row) */
    char err[160];
};

/* Record that what was found tampered with; returns KV_ERR_STORE_TAMPERED. */
static int tampered(kv_store *s, const char *what)
{
    snprintf(s->err, sizeof(s->err),
             "%s tampered with: changed outside kortvagt (its MAC does not verify)", what);
    s->err_on = 1;
    return KV_ERR_STORE_TAMPERED;
}

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
    /* FULL unless the URL says synchronous=normal (store.h: durability) */
    kv_sqlite_sync sync = KV_SQLITE_SYNC_FULL;
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

int kv_store_sqlite_synchronous(kv_store *s, int *level)
{
    return s->ops->synchronous != NULL ? s->ops->synchronous(s->impl, level) : KV_ERR_UNSUPPORTED;
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
    return s->err_on ? s->err : s->ops->last_error(s->impl);
}

int kv_store_begin(kv_store *s, int write)
{
    s->err_on = 0;
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

/* ---- row MACs (store.h "Row MACs") ---- */

/* A bounded writer of the MAC input: big-endian integers, length-prefixed bytes. */
typedef struct {
    uint8_t *p;
    size_t n, cap;
    int over;
} enc;

static void enc_raw(enc *e, const void *b, size_t n)
{
    if (e->over || n > e->cap - e->n) {
        e->over = 1;
        return;
    }
    memcpy(e->p + e->n, b, n);
    e->n += n;
}

static void enc_i64(enc *e, int64_t v)
{
    uint8_t b[8];
    uint64_t u = (uint64_t)v;
    for (int i = 7; i >= 0; i--) {
        b[i] = (uint8_t)(u & 0xff);
        u >>= 8;
    }
    enc_raw(e, b, 8);
}

static void enc_bytes(enc *e, const void *b, size_t n)
{
    enc_i64(e, (int64_t)n);
    enc_raw(e, b, n);
}

static void enc_str(enc *e, const char *str, size_t cap)
{
    size_t n = 0;
    while (n < cap && str[n] != '\0')
        n++;
    enc_bytes(e, str, n);
}

size_t kv_store_card_mac_input(const kv_card_state *c, uint8_t *buf, size_t cap)
{
    static const char domain[] = "kortvagt row MAC: cards v3";
    const kv_card_policy *p = &c->policy;
    enc e = {buf, 0, cap, 0};
    enc_bytes(&e, domain, sizeof(domain) - 1);
    enc_bytes(&e, c->token, KV_TOKEN_LEN);
    enc_str(&e, c->pan_masked, sizeof(c->pan_masked));
    enc_i64(&e, p->ecommerce_enabled ? 1 : 0);
    enc_i64(&e, p->spend_single_max);
    enc_i64(&e, p->spend_daily_max);
    enc_i64(&e, p->sca_failures);
    enc_i64(&e, p->contactless.count);
    enc_i64(&e, p->contactless.amount);
    enc_i64(&e, p->contactless.epoch);
    enc_i64(&e, p->remote.count);
    enc_i64(&e, p->remote.amount);
    enc_i64(&e, p->remote.epoch);
    enc_i64(&e, c->pin_failures);
    enc_i64(&e, c->code_failures);
    enc_i64(&e, c->has_pvv ? 1 : 0);
    enc_i64(&e, c->has_pvv ? c->pvki : 0);
    enc_str(&e, c->has_pvv ? c->pvv : "", sizeof(c->pvv));
    enc_i64(&e, c->has_ibm_offset ? 1 : 0);
    enc_str(&e, c->has_ibm_offset ? c->ibm_offset : "", sizeof(c->ibm_offset));
    return e.over ? 0 : e.n;
}

static size_t bl_entry_mac_input(const kv_bl_entry *b, uint8_t *buf, size_t cap)
{
    static const char domain[] = "kortvagt row MAC: blocklist v3";
    enc e = {buf, 0, cap, 0};
    enc_bytes(&e, domain, sizeof(domain) - 1);
    enc_bytes(&e, b->token, KV_TOKEN_LEN);
    enc_str(&e, b->pan_masked, sizeof(b->pan_masked));
    enc_bytes(&e, b->pan_sealed, KV_BL_SEALED_LEN);
    enc_bytes(&e, b->reason_sealed, KV_BL_SEALED_LEN);
    enc_i64(&e, (int64_t)b->source);
    enc_i64(&e, b->reminders);
    enc_i64(&e, (int64_t)b->report);
    enc_i64(&e, b->expiry_yymm);
    enc_i64(&e, b->listed_at);
    enc_i64(&e, b->expires_at);
    return e.over ? 0 : e.n;
}

static size_t bl_wallet_mac_input(const kv_bl_wallet *w, uint8_t *buf, size_t cap)
{
    static const char domain[] = "kortvagt row MAC: blocklist_wallet v3";
    enc e = {buf, 0, cap, 0};
    enc_bytes(&e, domain, sizeof(domain) - 1);
    enc_bytes(&e, w->wallet_token, KV_TOKEN_LEN);
    enc_bytes(&e, w->card_token, KV_TOKEN_LEN);
    enc_str(&e, w->wallet_masked, sizeof(w->wallet_masked));
    enc_bytes(&e, w->wallet_sealed, KV_BL_SEALED_LEN);
    return e.over ? 0 : e.n;
}

#define MAC_INPUT_MAX 512

/* Compute the MAC of an encoded row into out. */
static int row_mac(kv_store *s, const uint8_t *in, size_t n, uint8_t out[32])
{
    if (n == 0)
        return KV_ERR_INTERNAL;
    return kv_mac_compute(&s->mac, in, n, out);
}

/* 0 when the row's MAC (has, got) is the MAC of in; KV_ERR_STORE_TAMPERED otherwise. */
static int row_check(kv_store *s, const char *what, const uint8_t *in, size_t n, int has,
                     const uint8_t got[32])
{
    uint8_t want[32];
    unsigned diff = 0;
    int r;
    if (!has)
        return tampered(s, what);
    if ((r = row_mac(s, in, n, want)) != 0)
        return r;
    for (int i = 0; i < 32; i++)
        diff |= (unsigned)(want[i] ^ got[i]);
    return diff == 0 ? 0 : tampered(s, what);
}

static int card_check(kv_store *s, const kv_card_state *c)
{
    uint8_t in[MAC_INPUT_MAX];
    s->err_on = 0;
    return row_check(s, "card state", in, kv_store_card_mac_input(c, in, sizeof(in)),
                     c->has_row_mac, c->row_mac);
}

static int bl_entry_check(kv_store *s, const kv_bl_entry *e)
{
    uint8_t in[MAC_INPUT_MAX];
    return row_check(s, "block-list entry", in, bl_entry_mac_input(e, in, sizeof(in)),
                     e->has_row_mac, e->row_mac);
}

static int bl_wallet_check(kv_store *s, const kv_bl_wallet *w)
{
    uint8_t in[MAC_INPUT_MAX];
    return row_check(s, "block-list wallet token", in, bl_wallet_mac_input(w, in, sizeof(in)),
                     w->has_row_mac, w->row_mac);
}

void kv_store_set_row_mac(kv_store *s, const kv_mac *m)
{
    s->has_mac = m != NULL;
    if (m != NULL)
        s->mac = *m;
}

int kv_store_card_get(kv_store *s, const uint8_t token[KV_TOKEN_LEN], kv_card_state *out,
                      int *found)
{
    int dummy, r;
    if (found == NULL)
        found = &dummy;
    r = s->ops->card_get(s->impl, token, out, found);
    if (r == 0 && *found && s->has_mac)
        r = card_check(s, out);
    return r;
}

int kv_store_card_put(kv_store *s, const kv_card_state *c)
{
    kv_card_state w = *c;
    uint8_t in[MAC_INPUT_MAX];
    int r;
    w.has_row_mac = 0;
    memset(w.row_mac, 0, sizeof(w.row_mac));
    if (s->has_mac) {
        if ((r = row_mac(s, in, kv_store_card_mac_input(&w, in, sizeof(in)), w.row_mac)) != 0)
            return r;
        w.has_row_mac = 1;
    }
    return s->ops->card_put(s->impl, &w);
}

/* The MAC of a stored answer (its input is malloc'ed: an answer may be long). */
static int request_mac(kv_store *s, const uint8_t key[32], const char *answer, int64_t at,
                       uint8_t out[32])
{
    static const char domain[] = "kortvagt row MAC: requests v3";
    size_t len = strlen(answer), cap = sizeof(domain) + 32 + len + 64;
    uint8_t *in = malloc(cap);
    enc e;
    int r;
    if (in == NULL)
        return KV_ERR_NOMEM;
    e = (enc){in, 0, cap, 0};
    enc_bytes(&e, domain, sizeof(domain) - 1);
    enc_bytes(&e, key, 32);
    enc_bytes(&e, answer, len);
    enc_i64(&e, at);
    r = row_mac(s, in, e.over ? 0 : e.n, out);
    free(in);
    return r;
}

int kv_store_request_get(kv_store *s, const uint8_t key[32], char **answer, int *found)
{
    kv_request_meta m;
    uint8_t want[32];
    unsigned diff = 0;
    int r;
    *answer = NULL;
    *found = 0;
    s->err_on = 0;
    if (s->ops->request_get == NULL)
        return KV_ERR_UNSUPPORTED;
    memset(&m, 0, sizeof(m));
    if ((r = s->ops->request_get(s->impl, key, answer, &m, found)) != 0 || !*found || !s->has_mac)
        return r;
    if (!m.has_mac) {
        r = tampered(s, "stored answer of a request id");
    } else if ((r = request_mac(s, key, *answer, m.at, want)) == 0) {
        for (int i = 0; i < 32; i++)
            diff |= (unsigned)(want[i] ^ m.mac[i]);
        if (diff != 0)
            r = tampered(s, "stored answer of a request id");
    }
    if (r != 0) {
        free(*answer);
        *answer = NULL;
        *found = 0;
    }
    return r;
}

int kv_store_request_put(kv_store *s, const uint8_t key[32], const char *answer, int64_t at)
{
    kv_request_meta m;
    int r;
    if (s->ops->request_put == NULL)
        return KV_ERR_UNSUPPORTED;
    memset(&m, 0, sizeof(m));
    m.at = at;
    if (s->has_mac) {
        if ((r = request_mac(s, key, answer, at, m.mac)) != 0)
            return r;
        m.has_mac = 1;
    }
    return s->ops->request_put(s->impl, key, answer, &m);
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

/*
 * The block list's digest (store.h "Row MACs"): a row MAC cannot tell that a
 * row is gone, so the set of rows is MAC'd as a whole too. meta "bl_digest"
 * holds the number of entry and wallet rows and the XOR of SHA-256(kind ||
 * key || row MAC) over them, with an HMAC under the row-MAC key. Every put
 * and delete through the store updates it; every open with the key
 * recomputes it from the rows (the block list is small) and compares, so a
 * row deleted, added or re-keyed in the database file makes the block list
 * read as tampered.
 */
#define META_BL_DIGEST "bl_digest"

typedef struct {
    int64_t count;
    uint8_t x[32];
} bl_digest;

static void digest_toggle(bl_digest *d, char kind, const uint8_t key[KV_TOKEN_LEN],
                          const uint8_t mac[32], int add)
{
    uint8_t in[1 + KV_TOKEN_LEN + 32], h[32];
    in[0] = (uint8_t)kind;
    memcpy(in + 1, key, KV_TOKEN_LEN);
    memcpy(in + 1 + KV_TOKEN_LEN, mac, 32);
    SHA256(in, sizeof(in), h);
    for (int i = 0; i < 32; i++)
        d->x[i] ^= h[i];
    d->count += add ? 1 : -1;
}

static int digest_mac(kv_store *s, const bl_digest *d, uint8_t out[32])
{
    static const char domain[] = "kortvagt block-list digest v3";
    uint8_t in[MAC_INPUT_MAX];
    enc e = {in, 0, sizeof(in), 0};
    enc_bytes(&e, domain, sizeof(domain) - 1);
    enc_i64(&e, d->count);
    enc_bytes(&e, d->x, sizeof(d->x));
    return row_mac(s, in, e.over ? 0 : e.n, out);
}

/* Load and check the stored digest; *found 0 when there is none. */
static int digest_load(kv_store *s, bl_digest *d, int *found)
{
    char v[200], *colon;
    uint8_t mac[32];
    int r;
    memset(d, 0, sizeof(*d));
    if ((r = s->ops->meta_get(s->impl, META_BL_DIGEST, v, sizeof(v), found)) != 0 || !*found)
        return r;
    /* "COUNT:XOR-HEX:MAC-HEX" */
    d->count = strtoll(v, &colon, 10);
    if (*colon != ':' || strlen(colon) != 1 + 64 + 1 + 64 || colon[65] != ':')
        return tampered(s, "block-list digest");
    colon[65] = '\0';
    if (kv_hex_decode(colon + 1, d->x, sizeof(d->x)) != 32 ||
        kv_hex_decode(colon + 66, mac, sizeof(mac)) != 32)
        return tampered(s, "block-list digest");
    {
        uint8_t in[MAC_INPUT_MAX];
        static const char domain[] = "kortvagt block-list digest v3";
        enc e = {in, 0, sizeof(in), 0};
        enc_bytes(&e, domain, sizeof(domain) - 1);
        enc_i64(&e, d->count);
        enc_bytes(&e, d->x, sizeof(d->x));
        return row_check(s, "block-list digest", in, e.over ? 0 : e.n, 1, mac);
    }
}

static int digest_save(kv_store *s, const bl_digest *d)
{
    char v[200], xh[65], mh[65];
    uint8_t mac[32];
    int r;
    if ((r = digest_mac(s, d, mac)) != 0)
        return r;
    kv_hex_encode(d->x, 32, xh);
    kv_hex_encode(mac, 32, mh);
    snprintf(v, sizeof(v), "%lld:%s:%s", (long long)d->count, xh, mh);
    return s->ops->meta_put(s->impl, META_BL_DIGEST, v);
}

/* Row MACs on, with a digest to keep: only then are the digest functions used. */
static int digest_on(const kv_store *s)
{
    return s->has_mac && !s->adopting && s->ops->meta_get != NULL && s->ops->blocklist != NULL &&
           s->ops->blocklist->wallet_get != NULL;
}

/* Replace the element of (kind, key) in the stored digest: old (may be NULL) out, new in. */
static int digest_update(kv_store *s, char kind, const uint8_t key[KV_TOKEN_LEN],
                         const uint8_t *old_mac, const uint8_t *new_mac)
{
    bl_digest d;
    int found = 0, r;
    if (s->bl_tampered)
        return tampered(s, "block list (rows deleted, added or re-keyed)");
    if ((r = digest_load(s, &d, &found)) != 0)
        return r;
    if (old_mac != NULL)
        digest_toggle(&d, kind, key, old_mac, 0);
    if (new_mac != NULL)
        digest_toggle(&d, kind, key, new_mac, 1);
    return digest_save(s, &d);
}

static const uint8_t zero_mac[32];

int kv_store_bl_put(kv_store *s, const kv_bl_entry *e)
{
    kv_bl_entry w = *e;
    uint8_t in[MAC_INPUT_MAX];
    int r;
    w.has_row_mac = 0;
    memset(w.row_mac, 0, sizeof(w.row_mac));
    if (s->has_mac) {
        if ((r = row_mac(s, in, bl_entry_mac_input(&w, in, sizeof(in)), w.row_mac)) != 0)
            return r;
        w.has_row_mac = 1;
    }
    if (digest_on(s)) {
        kv_bl_entry old;
        int found = 0;
        if ((r = BL_CALL(s, get, w.token, &old, &found)) != 0)
            return r;
        if ((r = digest_update(s, 'E', w.token, found ? old.row_mac : NULL, w.row_mac)) != 0)
            return r;
    }
    return BL_CALL(s, put, &w);
}

int kv_store_bl_get(kv_store *s, const uint8_t token[KV_TOKEN_LEN], kv_bl_entry *e, int *found)
{
    int dummy, r;
    if (found == NULL)
        found = &dummy;
    if (s->bl_tampered)
        return tampered(s, "block list (rows deleted, added or re-keyed)");
    r = BL_CALL(s, get, token, e, found);
    if (r == 0 && *found && s->has_mac)
        r = bl_entry_check(s, e);
    return r;
}

typedef struct {
    kv_store *s;
    int r;
} digest_out_ctx;

static int digest_out_wallet(void *ctx, const kv_bl_wallet *w)
{
    digest_out_ctx *c = ctx;
    return digest_update(c->s, 'W', w->wallet_token, w->row_mac, NULL);
}

int kv_store_bl_delete(kv_store *s, const uint8_t token[KV_TOKEN_LEN])
{
    if (digest_on(s)) {
        kv_bl_entry old;
        digest_out_ctx c = {s, 0};
        int found = 0, r;
        if ((r = BL_CALL(s, get, token, &old, &found)) != 0)
            return r;
        if (found && (r = digest_update(s, 'E', token, old.row_mac, NULL)) != 0)
            return r;
        if ((r = BL_CALL(s, wallet_scan, token, digest_out_wallet, &c)) != 0)
            return r;
    }
    return BL_CALL(s, del, token);
}

/* A scan whose rows are checked before the caller's callback sees them. */
typedef struct {
    kv_store *s;
    kv_bl_entry_cb entry;
    kv_bl_wallet_cb wallet;
    void *ctx;
} checked_scan;

static int checked_entry(void *ctx, const kv_bl_entry *e)
{
    checked_scan *c = ctx;
    int r = bl_entry_check(c->s, e);
    return r != 0 ? r : c->entry(c->ctx, e);
}

static int checked_wallet(void *ctx, const kv_bl_wallet *w)
{
    checked_scan *c = ctx;
    int r = bl_wallet_check(c->s, w);
    return r != 0 ? r : c->wallet(c->ctx, w);
}

int kv_store_bl_scan(kv_store *s, kv_bl_entry_cb cb, void *ctx)
{
    checked_scan c = {s, cb, NULL, ctx};
    if (s->bl_tampered)
        return tampered(s, "block list (rows deleted, added or re-keyed)");
    if (!s->has_mac)
        return BL_CALL(s, scan, cb, ctx);
    return BL_CALL(s, scan, checked_entry, &c);
}

int kv_store_bl_listed(kv_store *s, const uint8_t token[KV_TOKEN_LEN], int *listed)
{
    kv_bl_entry e;
    kv_bl_wallet w;
    int r, found = 0;
    if (!s->has_mac || s->ops->blocklist == NULL || s->ops->blocklist->wallet_get == NULL)
        return BL_CALL(s, listed, token, listed);
    /* with row MACs: the listing row itself, checked (the card's entry, else a wallet link) */
    *listed = 0;
    if (s->bl_tampered)
        return tampered(s, "block list (rows deleted, added or re-keyed)");
    if ((r = kv_store_bl_get(s, token, &e, &found)) != 0)
        return r;
    if (!found) {
        if ((r = s->ops->blocklist->wallet_get(s->impl, token, &w, &found)) != 0)
            return r;
        if (found && (r = bl_wallet_check(s, &w)) != 0)
            return r;
    }
    *listed = found;
    return 0;
}

int kv_store_bl_wallet_put(kv_store *s, const kv_bl_wallet *w)
{
    kv_bl_wallet c = *w;
    uint8_t in[MAC_INPUT_MAX];
    int r;
    c.has_row_mac = 0;
    memset(c.row_mac, 0, sizeof(c.row_mac));
    if (s->has_mac) {
        if ((r = row_mac(s, in, bl_wallet_mac_input(&c, in, sizeof(in)), c.row_mac)) != 0)
            return r;
        c.has_row_mac = 1;
    }
    if (digest_on(s)) {
        kv_bl_wallet old;
        int found = 0;
        if ((r = s->ops->blocklist->wallet_get(s->impl, c.wallet_token, &old, &found)) != 0)
            return r;
        if ((r = digest_update(s, 'W', c.wallet_token, found ? old.row_mac : NULL, c.row_mac)) != 0)
            return r;
    }
    return BL_CALL(s, wallet_put, &c);
}

int kv_store_bl_wallet_scan(kv_store *s, const uint8_t card_token[KV_TOKEN_LEN], kv_bl_wallet_cb cb,
                            void *ctx)
{
    checked_scan c = {s, NULL, cb, ctx};
    if (s->bl_tampered)
        return tampered(s, "block list (rows deleted, added or re-keyed)");
    if (!s->has_mac)
        return BL_CALL(s, wallet_scan, card_token, cb, ctx);
    return BL_CALL(s, wallet_scan, card_token, checked_wallet, &c);
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

/* ---- adoption of rows without a MAC (store.h "Row MACs") ---- */

#define META_ROW_MACS "row_macs"

typedef struct {
    void *rows;
    size_t n, cap, size;
} row_list;

static int row_list_add(row_list *l, const void *row)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        void *p = realloc(l->rows, cap * l->size);
        if (p == NULL)
            return KV_ERR_NOMEM;
        l->rows = p;
        l->cap = cap;
    }
    memcpy((uint8_t *)l->rows + l->n * l->size, row, l->size);
    l->n++;
    return 0;
}

static int collect_card(void *ctx, const kv_card_state *c)
{
    return c->has_row_mac ? 0 : row_list_add(ctx, c);
}

static int collect_entry(void *ctx, const kv_bl_entry *e)
{
    return e->has_row_mac ? 0 : row_list_add(ctx, e);
}

static int collect_wallet(void *ctx, const kv_bl_wallet *w)
{
    return w->has_row_mac ? 0 : row_list_add(ctx, w);
}

/* MAC every row without one (the caller holds the write transaction). */
static int adopt_rows(kv_store *s)
{
    row_list cards = {NULL, 0, 0, sizeof(kv_card_state)};
    row_list entries = {NULL, 0, 0, sizeof(kv_bl_entry)};
    row_list wallets = {NULL, 0, 0, sizeof(kv_bl_wallet)};
    int r = s->ops->card_scan(s->impl, collect_card, &cards);
    if (r == 0 && s->ops->blocklist != NULL) {
        r = s->ops->blocklist->scan(s->impl, collect_entry, &entries);
        if (r == 0)
            r = s->ops->blocklist->wallet_scan(s->impl, NULL, collect_wallet, &wallets);
    }
    for (size_t i = 0; r == 0 && i < cards.n; i++)
        r = kv_store_card_put(s, (const kv_card_state *)cards.rows + i);
    for (size_t i = 0; r == 0 && i < entries.n; i++)
        r = kv_store_bl_put(s, (const kv_bl_entry *)entries.rows + i);
    for (size_t i = 0; r == 0 && i < wallets.n; i++)
        r = kv_store_bl_wallet_put(s, (const kv_bl_wallet *)wallets.rows + i);
    free(cards.rows);
    free(entries.rows);
    free(wallets.rows);
    return r;
}

static int digest_entry(void *ctx, const kv_bl_entry *e)
{
    digest_toggle(ctx, 'E', e->token, e->has_row_mac ? e->row_mac : zero_mac, 1);
    return 0;
}

static int digest_wallet(void *ctx, const kv_bl_wallet *w)
{
    digest_toggle(ctx, 'W', w->wallet_token, w->has_row_mac ? w->row_mac : zero_mac, 1);
    return 0;
}

/* The digest of the block list's rows as they are. */
static int digest_rows(kv_store *s, bl_digest *d)
{
    int r;
    memset(d, 0, sizeof(*d));
    if ((r = s->ops->blocklist->scan(s->impl, digest_entry, d)) != 0)
        return r;
    return s->ops->blocklist->wallet_scan(s->impl, NULL, digest_wallet, d);
}

/*
 * Compare the block list's rows with the stored digest (a read transaction);
 * a mismatch sets bl_tampered. save: write the digest of the rows when none
 * is stored (the caller holds the write transaction of the adoption).
 */
static int digest_check(kv_store *s, int save)
{
    bl_digest have, want;
    int r, found = 0;
    if ((r = digest_rows(s, &have)) != 0)
        return r;
    r = digest_load(s, &want, &found);
    if (r == KV_ERR_STORE_TAMPERED) {
        s->bl_tampered = 1;
        return 0;
    }
    if (r != 0)
        return r;
    if (!found) {
        if (save)
            return digest_save(s, &have);
        s->bl_tampered = 1; /* MAC'd rows without their digest: the digest was removed */
        return 0;
    }
    if (have.count != want.count || memcmp(have.x, want.x, sizeof(have.x)) != 0)
        s->bl_tampered = 1;
    return 0;
}

int kv_store_bl_tampered(const kv_store *s)
{
    return s->bl_tampered;
}

int kv_store_set_row_mac_adopt(kv_store *s)
{
    char state[16];
    int r, found = 0, any = 0;
    if (!s->has_mac || s->ops->meta_get == NULL)
        return 0;
    if ((r = s->ops->meta_get(s->impl, META_ROW_MACS, state, sizeof(state), &found)) != 0)
        return r;
    if (found && strcmp(state, "on") == 0) {
        /* every row has been MAC'd once: a row without a MAC is tampered */
        if (!digest_on(s))
            return 0;
        if ((r = kv_store_begin(s, 0)) != 0)
            return r;
        r = digest_check(s, 0);
        kv_store_rollback(s);
        return r;
    }
    if ((r = kv_store_begin(s, 1)) != 0)
        return r;
    if ((r = s->ops->meta_get(s->impl, META_ROW_MACS, state, sizeof(state), &found)) != 0)
        goto out;
    if (found && strcmp(state, "on") == 0)
        goto out; /* another process adopted meanwhile */
    if ((r = s->ops->row_mac_any(s->impl, &any)) != 0)
        goto out;
    /*
     * Adopt only a store no row MAC has ever been written to (schema 2 rows,
     * or rows of a store used without the key so far). If some rows carry a
     * MAC, those without one were stripped of it: they stay tampered.
     */
    s->adopting = 1;
    r = !any ? adopt_rows(s) : 0;
    s->adopting = 0;
    if (r != 0)
        goto out;
    if (digest_on(s) && (r = digest_check(s, !any)) != 0)
        goto out;
    r = s->ops->meta_put(s->impl, META_ROW_MACS, "on");
out:
    if (r == 0)
        return kv_store_commit(s);
    kv_store_rollback(s);
    return r;
}

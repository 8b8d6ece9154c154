/* see store.h "block list" — the SQLite implementation (store_sqlite_blocklist.h) */
#include "src/store/store_sqlite_blocklist.h"
#include "src/base/err.h"

#include <string.h>

/*
 * Statements are prepared per call and finalized before return: the block
 * list is small and rarely written, and the backend's close finalizes only
 * its own statements.
 */
static int prep(void *impl, const char *sql, sqlite3_stmt **st)
{
    int rc = sqlite3_prepare_v2(kv_sqlite_db(impl), sql, -1, st, NULL);
    return rc == SQLITE_OK ? 0 : kv_sqlite_fail(impl, rc, "block list: prepare");
}

/* Step a statement that returns no rows, then finalize it. */
static int run(void *impl, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    int r = rc == SQLITE_DONE ? 0 : kv_sqlite_fail(impl, rc, what);
    sqlite3_finalize(st);
    return r;
}

static void copy_blob(uint8_t *dst, size_t cap, sqlite3_stmt *st, int col)
{
    const void *b = sqlite3_column_blob(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    memset(dst, 0, cap);
    if (b != NULL)
        memcpy(dst, b, n < cap ? n : cap);
}

/* A sealed column (keyed.h: schema 2's 48-byte values are read as legacy CBC). */
static void copy_sealed(uint8_t dst[KV_BL_SEALED_LEN], sqlite3_stmt *st, int col)
{
    kv_sealed_load(dst, sqlite3_column_blob(st, col), (size_t)sqlite3_column_bytes(st, col));
}

/* The row MAC column: *has 0 when NULL; a wrong length reads as zeros (never verifies). */
static void copy_mac(int *has, uint8_t mac[32], sqlite3_stmt *st, int col)
{
    *has = sqlite3_column_type(st, col) != SQLITE_NULL;
    memset(mac, 0, 32);
    if (*has && sqlite3_column_bytes(st, col) == 32)
        memcpy(mac, sqlite3_column_blob(st, col), 32);
}

static void bind_mac(sqlite3_stmt *st, int col, int has, const uint8_t mac[32])
{
    if (has)
        sqlite3_bind_blob(st, col, mac, 32, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, col);
}

#define ENTRY_COLS                                                                                 \
    "token, pan_masked, pan_sealed, reason_sealed, source, reminders, report, expiry_yymm,"        \
    " listed_at, expires_at, mac"
#define WALLET_COLS "wallet_token, card_token, wallet_masked, wallet_sealed, mac"

static void read_entry(sqlite3_stmt *st, kv_bl_entry *e)
{
    memset(e, 0, sizeof(*e));
    copy_blob(e->token, sizeof(e->token), st, 0);
    kv_sqlite_get_text(st, 1, e->pan_masked, sizeof(e->pan_masked));
    copy_sealed(e->pan_sealed, st, 2);
    copy_sealed(e->reason_sealed, st, 3);
    e->source = sqlite3_column_int(st, 4) == 1 ? KV_BL_SOURCE_ISSUER : KV_BL_SOURCE_CARDHOLDER;
    e->reminders = sqlite3_column_int(st, 5);
    e->report = (kv_bl_report)sqlite3_column_int(st, 6);
    e->expiry_yymm = sqlite3_column_int(st, 7);
    e->listed_at = sqlite3_column_int64(st, 8);
    e->expires_at = sqlite3_column_int64(st, 9);
    copy_mac(&e->has_row_mac, e->row_mac, st, 10);
}

static void read_wallet(sqlite3_stmt *st, kv_bl_wallet *w)
{
    memset(w, 0, sizeof(*w));
    copy_blob(w->wallet_token, sizeof(w->wallet_token), st, 0);
    copy_blob(w->card_token, sizeof(w->card_token), st, 1);
    kv_sqlite_get_text(st, 2, w->wallet_masked, sizeof(w->wallet_masked));
    copy_sealed(w->wallet_sealed, st, 3);
    copy_mac(&w->has_row_mac, w->row_mac, st, 4);
}

static int bl_put(void *impl, const kv_bl_entry *e)
{
    sqlite3_stmt *st = NULL;
    int r = prep(impl,
                 "INSERT OR REPLACE INTO blocklist(" ENTRY_COLS
                 ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                 &st);
    if (r != 0)
        return r;
    sqlite3_bind_blob(st, 1, e->token, KV_TOKEN_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, e->pan_masked, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, e->pan_sealed, KV_BL_SEALED_LEN, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, e->reason_sealed, KV_BL_SEALED_LEN, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, (int)e->source);
    sqlite3_bind_int(st, 6, e->reminders);
    sqlite3_bind_int(st, 7, (int)e->report);
    sqlite3_bind_int(st, 8, e->expiry_yymm);
    sqlite3_bind_int64(st, 9, e->listed_at);
    sqlite3_bind_int64(st, 10, e->expires_at);
    bind_mac(st, 11, e->has_row_mac, e->row_mac);
    return run(impl, st, "block list: put");
}

static int bl_get(void *impl, const uint8_t token[KV_TOKEN_LEN], kv_bl_entry *e, int *found)
{
    sqlite3_stmt *st = NULL;
    int rc, r = prep(impl, "SELECT " ENTRY_COLS " FROM blocklist WHERE token = ?1", &st);
    if (r != 0)
        return r;
    sqlite3_bind_blob(st, 1, token, KV_TOKEN_LEN, SQLITE_STATIC);
    memset(e, 0, sizeof(*e));
    *found = 0;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        read_entry(st, e);
        *found = 1;
    } else if (rc != SQLITE_DONE) {
        r = kv_sqlite_fail(impl, rc, "block list: get");
    }
    sqlite3_finalize(st);
    return r;
}

static int bl_del(void *impl, const uint8_t token[KV_TOKEN_LEN])
{
    static const char *const sql[2] = {"DELETE FROM blocklist_wallet WHERE card_token = ?1",
                                       "DELETE FROM blocklist WHERE token = ?1"};
    int r = 0;
    for (int i = 0; i < 2 && r == 0; i++) {
        sqlite3_stmt *st = NULL;
        if ((r = prep(impl, sql[i], &st)) != 0)
            break;
        sqlite3_bind_blob(st, 1, token, KV_TOKEN_LEN, SQLITE_STATIC);
        r = run(impl, st, "block list: delete");
    }
    return r;
}

/* Step st, calling each(row) per row; finalizes st. */
static int scan_rows(void *impl, sqlite3_stmt *st, int (*each)(sqlite3_stmt *st, void *c), void *c,
                     const char *what)
{
    int rc, r = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int v = each(st, c);
        if (v != 0) {
            r = v < 0 ? v : 0;
            goto out;
        }
    }
    if (rc != SQLITE_DONE)
        r = kv_sqlite_fail(impl, rc, what);
out:
    sqlite3_finalize(st);
    return r;
}

typedef struct {
    union {
        kv_bl_entry_cb entry;
        kv_bl_wallet_cb wallet;
        kv_bl_recipient_cb recipient;
        kv_bl_correction_cb correction;
        kv_bl_request_cb request;
    } cb;
    void *ctx;
} scan_ctx;

static int each_entry(sqlite3_stmt *st, void *c)
{
    scan_ctx *sc = c;
    kv_bl_entry e;
    read_entry(st, &e);
    return sc->cb.entry(sc->ctx, &e);
}

static int bl_scan(void *impl, kv_bl_entry_cb cb, void *ctx)
{
    sqlite3_stmt *st = NULL;
    scan_ctx sc = {.ctx = ctx};
    int r = prep(impl, "SELECT " ENTRY_COLS " FROM blocklist ORDER BY listed_at, token", &st);
    if (r != 0)
        return r;
    sc.cb.entry = cb;
    return scan_rows(impl, st, each_entry, &sc, "block list: scan");
}

static int bl_listed(void *impl, const uint8_t token[KV_TOKEN_LEN], int *listed)
{
    sqlite3_stmt *st = NULL;
    int rc, r = prep(impl,
                     "SELECT 1 FROM blocklist WHERE token = ?1 UNION ALL"
                     " SELECT 1 FROM blocklist_wallet WHERE wallet_token = ?1 LIMIT 1",
                     &st);
    if (r != 0)
        return r;
    sqlite3_bind_blob(st, 1, token, KV_TOKEN_LEN, SQLITE_STATIC);
    *listed = 0;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *listed = 1;
    else if (rc != SQLITE_DONE)
        r = kv_sqlite_fail(impl, rc, "block list: check");
    sqlite3_finalize(st);
    return r;
}

static int bl_wallet_put(void *impl, const kv_bl_wallet *w)
{
    sqlite3_stmt *st = NULL;
    int r =
        prep(impl,
             "INSERT OR REPLACE INTO blocklist_wallet(" WALLET_COLS ") VALUES (?1, ?2, ?3, ?4, ?5)",
             &st);
    if (r != 0)
        return r;
    sqlite3_bind_blob(st, 1, w->wallet_token, KV_TOKEN_LEN, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, w->card_token, KV_TOKEN_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, w->wallet_masked, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, w->wallet_sealed, KV_BL_SEALED_LEN, SQLITE_STATIC);
    bind_mac(st, 5, w->has_row_mac, w->row_mac);
    return run(impl, st, "block list: wallet put");
}

static int bl_wallet_get(void *impl, const uint8_t wallet_token[KV_TOKEN_LEN], kv_bl_wallet *w,
                         int *found)
{
    sqlite3_stmt *st = NULL;
    int rc,
        r = prep(impl, "SELECT " WALLET_COLS " FROM blocklist_wallet WHERE wallet_token = ?1", &st);
    if (r != 0)
        return r;
    sqlite3_bind_blob(st, 1, wallet_token, KV_TOKEN_LEN, SQLITE_STATIC);
    memset(w, 0, sizeof(*w));
    *found = 0;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        read_wallet(st, w);
        *found = 1;
    } else if (rc != SQLITE_DONE) {
        r = kv_sqlite_fail(impl, rc, "block list: wallet get");
    }
    sqlite3_finalize(st);
    return r;
}

static int each_wallet(sqlite3_stmt *st, void *c)
{
    scan_ctx *sc = c;
    kv_bl_wallet w;
    read_wallet(st, &w);
    return sc->cb.wallet(sc->ctx, &w);
}

static int bl_wallet_scan(void *impl, const uint8_t card_token[KV_TOKEN_LEN], kv_bl_wallet_cb cb,
                          void *ctx)
{
    sqlite3_stmt *st = NULL;
    scan_ctx sc = {.ctx = ctx};
    int r = prep(impl,
                 "SELECT " WALLET_COLS " FROM blocklist_wallet WHERE ?1 IS NULL OR card_token = ?1"
                 " ORDER BY wallet_token",
                 &st);
    if (r != 0)
        return r;
    if (card_token != NULL)
        sqlite3_bind_blob(st, 1, card_token, KV_TOKEN_LEN, SQLITE_STATIC);
    sc.cb.wallet = cb;
    return scan_rows(impl, st, each_wallet, &sc, "block list: wallet scan");
}

static int bl_recipient_put(void *impl, const char *name, int64_t at)
{
    sqlite3_stmt *st = NULL;
    int r = prep(impl,
                 "INSERT INTO blocklist_recipients(name, first_at, last_at) VALUES (?1, ?2, ?2)"
                 " ON CONFLICT(name) DO UPDATE SET last_at = excluded.last_at",
                 &st);
    if (r != 0)
        return r;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, at);
    return run(impl, st, "block list: recipient");
}

static int each_recipient(sqlite3_stmt *st, void *c)
{
    scan_ctx *sc = c;
    kv_bl_recipient rc;
    memset(&rc, 0, sizeof(rc));
    kv_sqlite_get_text(st, 0, rc.name, sizeof(rc.name));
    rc.first_at = sqlite3_column_int64(st, 1);
    rc.last_at = sqlite3_column_int64(st, 2);
    return sc->cb.recipient(sc->ctx, &rc);
}

static int bl_recipient_scan(void *impl, kv_bl_recipient_cb cb, void *ctx)
{
    sqlite3_stmt *st = NULL;
    scan_ctx sc = {.ctx = ctx};
    int r =
        prep(impl, "SELECT name, first_at, last_at FROM blocklist_recipients ORDER BY name", &st);
    if (r != 0)
        return r;
    sc.cb.recipient = cb;
    return scan_rows(impl, st, each_recipient, &sc, "block list: recipients");
}

static int bl_correction_put(void *impl, kv_bl_correction *c)
{
    sqlite3_stmt *st = NULL;
    int r = prep(impl,
                 "INSERT INTO blocklist_corrections(token, pan_masked, at, deleted, recipients)"
                 " VALUES (?1, ?2, ?3, ?4, ?5)",
                 &st);
    if (r != 0)
        return r;
    sqlite3_bind_blob(st, 1, c->token, KV_TOKEN_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c->pan_masked, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, c->at);
    sqlite3_bind_int(st, 4, c->deleted != 0);
    sqlite3_bind_text(st, 5, c->recipients, -1, SQLITE_STATIC);
    if ((r = run(impl, st, "block list: correction")) == 0)
        c->id = sqlite3_last_insert_rowid(kv_sqlite_db(impl));
    return r;
}

static int each_correction(sqlite3_stmt *st, void *c)
{
    scan_ctx *sc = c;
    kv_bl_correction k;
    memset(&k, 0, sizeof(k));
    k.id = sqlite3_column_int64(st, 0);
    copy_blob(k.token, sizeof(k.token), st, 1);
    kv_sqlite_get_text(st, 2, k.pan_masked, sizeof(k.pan_masked));
    k.at = sqlite3_column_int64(st, 3);
    k.deleted = sqlite3_column_int(st, 4);
    kv_sqlite_get_text(st, 5, k.recipients, sizeof(k.recipients));
    return sc->cb.correction(sc->ctx, &k);
}

static int bl_correction_scan(void *impl, kv_bl_correction_cb cb, void *ctx)
{
    sqlite3_stmt *st = NULL;
    scan_ctx sc = {.ctx = ctx};
    int r = prep(impl,
                 "SELECT id, token, pan_masked, at, deleted, recipients FROM blocklist_corrections"
                 " ORDER BY id",
                 &st);
    if (r != 0)
        return r;
    sc.cb.correction = cb;
    return scan_rows(impl, st, each_correction, &sc, "block list: corrections");
}

static int bl_request_put(void *impl, kv_bl_request *q)
{
    sqlite3_stmt *st = NULL;
    int r = prep(impl,
                 "INSERT INTO blocklist_requests(token, pan_masked, kind, at, due, answered_at)"
                 " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                 &st);
    if (r != 0)
        return r;
    sqlite3_bind_blob(st, 1, q->token, KV_TOKEN_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, q->pan_masked, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, (int)q->kind);
    sqlite3_bind_int64(st, 4, q->at);
    sqlite3_bind_int64(st, 5, q->due);
    sqlite3_bind_int64(st, 6, q->answered_at);
    if ((r = run(impl, st, "block list: request")) == 0)
        q->id = sqlite3_last_insert_rowid(kv_sqlite_db(impl));
    return r;
}

static int bl_request_answer(void *impl, int64_t id, int64_t at, int *found)
{
    sqlite3_stmt *st = NULL;
    int r = prep(impl, "UPDATE blocklist_requests SET answered_at = ?2 WHERE id = ?1", &st);
    if (r != 0)
        return r;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, at);
    if ((r = run(impl, st, "block list: answer")) == 0)
        *found = sqlite3_changes(kv_sqlite_db(impl)) > 0;
    return r;
}

static int each_request(sqlite3_stmt *st, void *c)
{
    scan_ctx *sc = c;
    kv_bl_request q;
    memset(&q, 0, sizeof(q));
    q.id = sqlite3_column_int64(st, 0);
    copy_blob(q.token, sizeof(q.token), st, 1);
    kv_sqlite_get_text(st, 2, q.pan_masked, sizeof(q.pan_masked));
    q.kind = sqlite3_column_int(st, 3) == 1 ? KV_BL_REQUEST_OBJECTION : KV_BL_REQUEST_ACCESS;
    q.at = sqlite3_column_int64(st, 4);
    q.due = sqlite3_column_int64(st, 5);
    q.answered_at = sqlite3_column_int64(st, 6);
    return sc->cb.request(sc->ctx, &q);
}

static int bl_request_scan(void *impl, kv_bl_request_cb cb, void *ctx)
{
    sqlite3_stmt *st = NULL;
    scan_ctx sc = {.ctx = ctx};
    int r = prep(impl,
                 "SELECT id, token, pan_masked, kind, at, due, answered_at"
                 " FROM blocklist_requests ORDER BY due, id",
                 &st);
    if (r != 0)
        return r;
    sc.cb.request = cb;
    return scan_rows(impl, st, each_request, &sc, "block list: requests");
}

const kv_bl_ops kv_sqlite_blocklist_ops = {
    .put = bl_put,
    .get = bl_get,
    .del = bl_del,
    .scan = bl_scan,
    .listed = bl_listed,
    .wallet_put = bl_wallet_put,
    .wallet_scan = bl_wallet_scan,
    .recipient_put = bl_recipient_put,
    .recipient_scan = bl_recipient_scan,
    .correction_put = bl_correction_put,
    .correction_scan = bl_correction_scan,
    .request_put = bl_request_put,
    .request_answer = bl_request_answer,
    .request_scan = bl_request_scan,
    .wallet_get = bl_wallet_get,
};

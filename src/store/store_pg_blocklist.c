/* see store_pg_blocklist.h: the block list's operations on PostgreSQL */
#include "src/store/store_pg_blocklist.h"
#include "src/base/err.h"

#ifdef KV_HAVE_LIBPQ

#include <string.h>

/* The callback of a scan and its context (one kind per scan). */
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

/*
 * Run a query and call each(res, row, sc) per row, in order, until one
 * returns non-zero. The whole result is read first, so a callback may use
 * the store.
 */
static int scan_rows(void *impl, const char *sql, const kv_pg_params *p,
                     int (*each)(const PGresult *res, int row, scan_ctx *sc), scan_ctx *sc,
                     const char *what)
{
    PGresult *res;
    int r = kv_pg_query(impl, sql, p, PGRES_TUPLES_OK, &res, what);
    if (r != 0)
        return r;
    for (int i = 0; i < PQntuples(res) && r == 0; i++)
        r = each(res, i, sc);
    PQclear(res);
    return r > 0 ? 0 : r;
}

/* An INSERT ... RETURNING id; *id is 0 when no row came back. */
static int insert_id(void *impl, const char *sql, const kv_pg_params *p, int64_t *id,
                     const char *what)
{
    PGresult *res;
    int r = kv_pg_query(impl, sql, p, PGRES_TUPLES_OK, &res, what);
    if (r != 0)
        return r;
    *id = PQntuples(res) == 1 ? kv_pg_get_i64(res, 0, 0) : 0;
    PQclear(res);
    return 0;
}

#define BL_ENTRY_COLS                                                                              \
    "token, pan_masked, pan_sealed, reason_sealed, source, reminders, report, expiry_yymm,"        \
    " listed_at, expires_at, mac"
#define BL_WALLET_COLS "wallet_token, card_token, wallet_masked, wallet_sealed, mac"

static void bl_param_mac(kv_pg_params *p, int has, const uint8_t mac[32])
{
    if (has)
        kv_pg_param_bytes(p, mac, 32);
    else
        kv_pg_param_null(p);
}

static void bl_read_entry(const PGresult *res, int row, kv_bl_entry *e)
{
    memset(e, 0, sizeof(*e));
    if (kv_pg_get_bytes(res, row, 0, e->token, KV_TOKEN_LEN) != 0)
        memset(e->token, 0, KV_TOKEN_LEN);
    kv_pg_get_text(res, row, 1, e->pan_masked, sizeof(e->pan_masked));
    kv_pg_get_sealed(res, row, 2, e->pan_sealed);
    kv_pg_get_sealed(res, row, 3, e->reason_sealed);
    e->source = kv_pg_get_i64(res, row, 4) == 1 ? KV_BL_SOURCE_ISSUER : KV_BL_SOURCE_CARDHOLDER;
    e->reminders = (int)kv_pg_get_i64(res, row, 5);
    e->report = (kv_bl_report)kv_pg_get_i64(res, row, 6);
    e->expiry_yymm = (int)kv_pg_get_i64(res, row, 7);
    e->listed_at = kv_pg_get_i64(res, row, 8);
    e->expires_at = kv_pg_get_i64(res, row, 9);
    kv_pg_get_mac(res, row, 10, &e->has_row_mac, e->row_mac);
}

static int bl_read_wallet(const PGresult *res, int row, kv_bl_wallet *w)
{
    memset(w, 0, sizeof(*w));
    if (kv_pg_get_bytes(res, row, 0, w->wallet_token, KV_TOKEN_LEN) != 0 ||
        kv_pg_get_bytes(res, row, 1, w->card_token, KV_TOKEN_LEN) != 0)
        return KV_ERR_STORE;
    kv_pg_get_text(res, row, 2, w->wallet_masked, sizeof(w->wallet_masked));
    kv_pg_get_sealed(res, row, 3, w->wallet_sealed);
    kv_pg_get_mac(res, row, 4, &w->has_row_mac, w->row_mac);
    return 0;
}

static int bl_put(void *impl, const kv_bl_entry *e)
{
    kv_pg_params p;
    kv_pg_param_init(&p);
    kv_pg_param_bytes(&p, e->token, KV_TOKEN_LEN);
    kv_pg_param_text(&p, e->pan_masked);
    kv_pg_param_bytes(&p, e->pan_sealed, KV_BL_SEALED_LEN);
    kv_pg_param_bytes(&p, e->reason_sealed, KV_BL_SEALED_LEN);
    kv_pg_param_int(&p, (int64_t)e->source);
    kv_pg_param_int(&p, e->reminders);
    kv_pg_param_int(&p, (int64_t)e->report);
    kv_pg_param_int(&p, e->expiry_yymm);
    kv_pg_param_int(&p, e->listed_at);
    kv_pg_param_int(&p, e->expires_at);
    bl_param_mac(&p, e->has_row_mac, e->row_mac);
    return kv_pg_query_done(impl,
                            "INSERT INTO blocklist(" BL_ENTRY_COLS
                            ") VALUES ($1, $2, $3, $4, $5, $6,"
                            " $7, $8, $9, $10, $11) ON CONFLICT(token) DO UPDATE SET"
                            " pan_masked = excluded.pan_masked, pan_sealed = excluded.pan_sealed,"
                            " reason_sealed = excluded.reason_sealed, source = excluded.source,"
                            " reminders = excluded.reminders, report = excluded.report,"
                            " expiry_yymm = excluded.expiry_yymm, listed_at = excluded.listed_at,"
                            " expires_at = excluded.expires_at, mac = excluded.mac",
                            &p, "block list: put");
}

static int bl_get(void *impl, const uint8_t token[KV_TOKEN_LEN], kv_bl_entry *e, int *found)
{
    PGresult *res;
    kv_pg_params p;
    int r;
    memset(e, 0, sizeof(*e));
    *found = 0;
    kv_pg_param_init(&p);
    kv_pg_param_bytes(&p, token, KV_TOKEN_LEN);
    if ((r = kv_pg_query(impl, "SELECT " BL_ENTRY_COLS " FROM blocklist WHERE token = $1", &p,
                         PGRES_TUPLES_OK, &res, "block list: get")) != 0)
        return r;
    if (PQntuples(res) == 1) {
        bl_read_entry(res, 0, e);
        *found = 1;
    }
    PQclear(res);
    return 0;
}

static int bl_del(void *impl, const uint8_t token[KV_TOKEN_LEN])
{
    kv_pg_params p;
    int r;
    kv_pg_param_init(&p);
    kv_pg_param_bytes(&p, token, KV_TOKEN_LEN);
    if ((r = kv_pg_query_done(impl, "DELETE FROM blocklist_wallet WHERE card_token = $1", &p,
                              "block list: delete")) != 0)
        return r;
    return kv_pg_query_done(impl, "DELETE FROM blocklist WHERE token = $1", &p,
                            "block list: delete");
}

static int each_entry(const PGresult *res, int row, scan_ctx *sc)
{
    kv_bl_entry e;
    bl_read_entry(res, row, &e);
    return sc->cb.entry(sc->ctx, &e);
}

static int bl_scan(void *impl, kv_bl_entry_cb cb, void *ctx)
{
    scan_ctx sc = {.cb.entry = cb, .ctx = ctx};
    return scan_rows(impl, "SELECT " BL_ENTRY_COLS " FROM blocklist ORDER BY listed_at, token",
                     NULL, each_entry, &sc, "block list: scan");
}

static int bl_listed(void *impl, const uint8_t token[KV_TOKEN_LEN], int *listed)
{
    PGresult *res;
    kv_pg_params p;
    int r;
    *listed = 0;
    kv_pg_param_init(&p);
    kv_pg_param_bytes(&p, token, KV_TOKEN_LEN);
    if ((r = kv_pg_query(impl,
                         "SELECT 1 FROM blocklist WHERE token = $1 UNION ALL"
                         " SELECT 1 FROM blocklist_wallet WHERE wallet_token = $1 LIMIT 1",
                         &p, PGRES_TUPLES_OK, &res, "block list: check")) != 0)
        return r;
    *listed = PQntuples(res) > 0;
    PQclear(res);
    return 0;
}

static int bl_wallet_put(void *impl, const kv_bl_wallet *w)
{
    kv_pg_params p;
    kv_pg_param_init(&p);
    kv_pg_param_bytes(&p, w->wallet_token, KV_TOKEN_LEN);
    kv_pg_param_bytes(&p, w->card_token, KV_TOKEN_LEN);
    kv_pg_param_text(&p, w->wallet_masked);
    kv_pg_param_bytes(&p, w->wallet_sealed, KV_BL_SEALED_LEN);
    bl_param_mac(&p, w->has_row_mac, w->row_mac);
    return kv_pg_query_done(impl,
                            "INSERT INTO blocklist_wallet(" BL_WALLET_COLS
                            ") VALUES ($1, $2, $3, $4, $5)"
                            " ON CONFLICT(wallet_token) DO UPDATE"
                            " SET card_token = excluded.card_token,"
                            " wallet_masked = excluded.wallet_masked,"
                            " wallet_sealed = excluded.wallet_sealed, mac = excluded.mac",
                            &p, "block list: wallet token");
}

static int bl_wallet_get(void *impl, const uint8_t wallet_token[KV_TOKEN_LEN], kv_bl_wallet *w,
                         int *found)
{
    PGresult *res;
    kv_pg_params p;
    int r;
    memset(w, 0, sizeof(*w));
    *found = 0;
    kv_pg_param_init(&p);
    kv_pg_param_bytes(&p, wallet_token, KV_TOKEN_LEN);
    if ((r = kv_pg_query(impl,
                         "SELECT " BL_WALLET_COLS " FROM blocklist_wallet WHERE wallet_token = $1",
                         &p, PGRES_TUPLES_OK, &res, "block list: wallet get")) != 0)
        return r;
    if (PQntuples(res) == 1 && (r = bl_read_wallet(res, 0, w)) == 0)
        *found = 1;
    PQclear(res);
    return r;
}

static int each_wallet(const PGresult *res, int row, scan_ctx *sc)
{
    kv_bl_wallet w;
    int r = bl_read_wallet(res, row, &w);
    return r != 0 ? r : sc->cb.wallet(sc->ctx, &w);
}

static int bl_wallet_scan(void *impl, const uint8_t card_token[KV_TOKEN_LEN], kv_bl_wallet_cb cb,
                          void *ctx)
{
    scan_ctx sc = {.cb.wallet = cb, .ctx = ctx};
    kv_pg_params p;
    kv_pg_param_init(&p);
    if (card_token != NULL)
        kv_pg_param_bytes(&p, card_token, KV_TOKEN_LEN);
    else
        kv_pg_param_null(&p);
    return scan_rows(impl,
                     "SELECT " BL_WALLET_COLS
                     " FROM blocklist_wallet WHERE $1::bytea IS NULL OR card_token = $1"
                     " ORDER BY wallet_token",
                     &p, each_wallet, &sc, "block list: wallet tokens");
}

static int bl_recipient_put(void *impl, const char *name, int64_t at)
{
    kv_pg_params p;
    kv_pg_param_init(&p);
    kv_pg_param_text(&p, name);
    kv_pg_param_int(&p, at);
    return kv_pg_query_done(impl,
                            "INSERT INTO blocklist_recipients(name, first_at, last_at)"
                            " VALUES ($1, $2, $2) ON CONFLICT(name) DO UPDATE"
                            " SET last_at = excluded.last_at",
                            &p, "block list: recipient");
}

static int each_recipient(const PGresult *res, int row, scan_ctx *sc)
{
    kv_bl_recipient rc;
    memset(&rc, 0, sizeof(rc));
    kv_pg_get_text(res, row, 0, rc.name, sizeof(rc.name));
    rc.first_at = kv_pg_get_i64(res, row, 1);
    rc.last_at = kv_pg_get_i64(res, row, 2);
    return sc->cb.recipient(sc->ctx, &rc);
}

static int bl_recipient_scan(void *impl, kv_bl_recipient_cb cb, void *ctx)
{
    scan_ctx sc = {.cb.recipient = cb, .ctx = ctx};
    return scan_rows(impl, "SELECT name, first_at, last_at FROM blocklist_recipients ORDER BY name",
                     NULL, each_recipient, &sc, "block list: recipients");
}

static int bl_correction_put(void *impl, kv_bl_correction *c)
{
    kv_pg_params p;
    kv_pg_param_init(&p);
    kv_pg_param_bytes(&p, c->token, KV_TOKEN_LEN);
    kv_pg_param_text(&p, c->pan_masked);
    kv_pg_param_int(&p, c->at);
    kv_pg_param_int(&p, c->deleted ? 1 : 0);
    kv_pg_param_text(&p, c->recipients);
    return insert_id(impl,
                     "INSERT INTO blocklist_corrections(token, pan_masked, at, deleted, recipients)"
                     " VALUES ($1, $2, $3, $4, $5) RETURNING id",
                     &p, &c->id, "block list: correction");
}

static int each_correction(const PGresult *res, int row, scan_ctx *sc)
{
    kv_bl_correction c;
    memset(&c, 0, sizeof(c));
    c.id = kv_pg_get_i64(res, row, 0);
    if (kv_pg_get_bytes(res, row, 1, c.token, KV_TOKEN_LEN) != 0)
        memset(c.token, 0, KV_TOKEN_LEN);
    kv_pg_get_text(res, row, 2, c.pan_masked, sizeof(c.pan_masked));
    c.at = kv_pg_get_i64(res, row, 3);
    c.deleted = (int)kv_pg_get_i64(res, row, 4);
    kv_pg_get_text(res, row, 5, c.recipients, sizeof(c.recipients));
    return sc->cb.correction(sc->ctx, &c);
}

static int bl_correction_scan(void *impl, kv_bl_correction_cb cb, void *ctx)
{
    scan_ctx sc = {.cb.correction = cb, .ctx = ctx};
    return scan_rows(impl,
                     "SELECT id, token, pan_masked, at, deleted, recipients"
                     " FROM blocklist_corrections ORDER BY id",
                     NULL, each_correction, &sc, "block list: corrections");
}

static int bl_request_put(void *impl, kv_bl_request *q)
{
    kv_pg_params p;
    kv_pg_param_init(&p);
    kv_pg_param_bytes(&p, q->token, KV_TOKEN_LEN);
    kv_pg_param_text(&p, q->pan_masked);
    kv_pg_param_int(&p, (int64_t)q->kind);
    kv_pg_param_int(&p, q->at);
    kv_pg_param_int(&p, q->due);
    kv_pg_param_int(&p, q->answered_at);
    return insert_id(impl,
                     "INSERT INTO blocklist_requests(token, pan_masked, kind, at, due, answered_at)"
                     " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                     &p, &q->id, "block list: request");
}

static int bl_request_answer(void *impl, int64_t id, int64_t at, int *found)
{
    PGresult *res;
    kv_pg_params p;
    int r;
    *found = 0;
    kv_pg_param_init(&p);
    kv_pg_param_int(&p, id);
    kv_pg_param_int(&p, at);
    if ((r = kv_pg_query(impl, "UPDATE blocklist_requests SET answered_at = $2 WHERE id = $1", &p,
                         PGRES_COMMAND_OK, &res, "block list: answer request")) != 0)
        return r;
    *found = strcmp(PQcmdTuples(res), "0") != 0;
    PQclear(res);
    return 0;
}

static int each_request(const PGresult *res, int row, scan_ctx *sc)
{
    kv_bl_request q;
    memset(&q, 0, sizeof(q));
    q.id = kv_pg_get_i64(res, row, 0);
    if (kv_pg_get_bytes(res, row, 1, q.token, KV_TOKEN_LEN) != 0)
        memset(q.token, 0, KV_TOKEN_LEN);
    kv_pg_get_text(res, row, 2, q.pan_masked, sizeof(q.pan_masked));
    q.kind = kv_pg_get_i64(res, row, 3) == 1 ? KV_BL_REQUEST_OBJECTION : KV_BL_REQUEST_ACCESS;
    q.at = kv_pg_get_i64(res, row, 4);
    q.due = kv_pg_get_i64(res, row, 5);
    q.answered_at = kv_pg_get_i64(res, row, 6);
    return sc->cb.request(sc->ctx, &q);
}

static int bl_request_scan(void *impl, kv_bl_request_cb cb, void *ctx)
{
    scan_ctx sc = {.cb.request = cb, .ctx = ctx};
    return scan_rows(impl,
                     "SELECT id, token, pan_masked, kind, at, due, answered_at"
                     " FROM blocklist_requests ORDER BY due, id",
                     NULL, each_request, &sc, "block list: requests");
}

const kv_bl_ops kv_pg_blocklist_ops = {
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

#else

typedef int
    kv_pg_blocklist_none; /* built without libpq: nothing here (ISO C needs a declaration) */

#endif

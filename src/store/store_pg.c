/*
 * see store.h — the PostgreSQL backend (libpq): the schema and the
 * operations of the SQLite backend, for any number of daemons on any number
 * of machines sharing one database.
 *
 * Concurrency. Every decision appends to the one evidence chain of the store
 * (evidence.h: ids 1, 2, 3, ... without gaps, each record linking the hash of
 * the one before), so appends must be serialised across every connection
 * anyway. A write transaction (kv_store_begin(s, 1)) therefore takes a
 * transaction-scoped advisory lock, pg_advisory_xact_lock(KV_PG_CHAIN_LOCK),
 * as its first statement: it is held until COMMIT or ROLLBACK, released by
 * the server when a connection dies, and costs no table write. This is the
 * "exclusive writer" of store.h. Inside it the counters are still written
 * the way that stays exact without the lock: the card row is read FOR UPDATE
 * and the daily sums are atomic upserts (amount = amount + delta), and the
 * evidence id is the primary key, so a second writer could never append the
 * same id twice. One chain per store keeps `kortvagt evidence verify`
 * unchanged. Read transactions take no lock (READ COMMITTED snapshot per
 * statement; REPEATABLE READ for the chain walk's consistent view).
 *
 * Connection loss. A failed command on a broken connection returns
 * KV_ERR_STORE_UNAVAILABLE; the next kv_store_begin (or the next operation
 * outside a transaction) resets the connection and prepares the statements
 * again, so a daemon recovers without restarting.
 *
 * Files, as the SQLite backend's: this one has the connection, the schema
 * and its migrations, and the operations on cards, counters, transactions
 * and evidence; store_pg_blocklist.c has the block list's operations (and
 * store_pg_blocklist.h what the two share).
 */
#include "src/store/store.h"
#include "src/base/err.h"
#include "src/base/hex.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef KV_HAVE_LIBPQ

int kv_store_open_pg(const char *url, kv_store **out, char *err, size_t errlen)
{
    (void)url;
    *out = NULL;
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s", "this build has no PostgreSQL store (KV_WITH_POSTGRESQL=OFF)");
    return KV_ERR_UNSUPPORTED;
}

#else

#include "src/store/store_pg_blocklist.h"

#include <libpq-fe.h>

/* "kvchain" as a 64-bit advisory lock key */
#define KV_PG_CHAIN_LOCK "7021218651734089582"
#define SCAN_PAGE 512
#define SESSION_SETUP "SET bytea_output = 'hex'; SET client_min_messages = warning"

static const char *const migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE cards("
    " token bytea PRIMARY KEY NOT NULL,"
    " pan_masked text NOT NULL,"
    " ecommerce_enabled integer NOT NULL,"
    " spend_single_max bigint NOT NULL," /* -1: none */
    " spend_daily_max bigint NOT NULL,"
    " sca_failures integer NOT NULL,"
    " cl_count bigint NOT NULL, cl_amount bigint NOT NULL, cl_epoch bigint NOT NULL,"
    " rm_count bigint NOT NULL, rm_amount bigint NOT NULL, rm_epoch bigint NOT NULL);"
    "CREATE TABLE day_totals("
    " token bytea NOT NULL, day text NOT NULL, kind integer NOT NULL, amount bigint NOT NULL,"
    " PRIMARY KEY(token, day, kind));"
    "CREATE TABLE auth_codes(hash bytea PRIMARY KEY NOT NULL, at bigint NOT NULL);"
    "CREATE TABLE transactions("
    " id bigint PRIMARY KEY, token bytea NOT NULL, at bigint NOT NULL, day text NOT NULL,"
    " channel text NOT NULL, amount bigint NOT NULL, payee text NOT NULL, mcc text NOT NULL,"
    " decision text NOT NULL, reason text NOT NULL, sca integer NOT NULL,"
    " family integer NOT NULL, epoch bigint NOT NULL, atm integer NOT NULL,"
    " gambling integer NOT NULL, series text, series_first integer NOT NULL,"
    " reversed integer NOT NULL DEFAULT 0);"
    "CREATE INDEX transactions_series ON transactions(token, series) WHERE series IS NOT NULL;"
    /* unlike SQLite's rowid scan, PostgreSQL needs this for a card's recent transactions */
    "CREATE INDEX transactions_card ON transactions(token, id);"
    "CREATE TABLE evidence("
    " id bigint PRIMARY KEY, t bigint NOT NULL, body text NOT NULL,"
    " hash bytea NOT NULL, mac bytea NOT NULL);"
    /* append-only: a record once written is never changed or removed */
    "CREATE FUNCTION evidence_append_only() RETURNS trigger LANGUAGE plpgsql AS"
    " $$BEGIN RAISE EXCEPTION 'evidence is append-only'; END$$;"
    "CREATE TRIGGER evidence_no_update BEFORE UPDATE OR DELETE ON evidence"
    " FOR EACH ROW EXECUTE FUNCTION evidence_append_only();"
    "CREATE TRIGGER evidence_no_truncate BEFORE TRUNCATE ON evidence"
    " FOR EACH STATEMENT EXECUTE FUNCTION evidence_append_only();",
    /* 1 -> 2: the block list (store_pg_blocklist.h) */
    KV_PG_BLOCKLIST_SCHEMA,
    /* 2 -> 3: as SQLite's (store_sqlite.c) */
    "ALTER TABLE cards ADD COLUMN pin_failures integer NOT NULL DEFAULT 0,"
    " ADD COLUMN code_failures integer NOT NULL DEFAULT 0, ADD COLUMN pvki integer,"
    " ADD COLUMN pvv text, ADD COLUMN ibm_offset text, ADD COLUMN mac bytea;"
    "ALTER TABLE blocklist ADD COLUMN mac bytea;"
    "ALTER TABLE blocklist_wallet ADD COLUMN mac bytea;"
    "CREATE TABLE requests(key bytea PRIMARY KEY NOT NULL, answer text NOT NULL,"
    " at bigint NOT NULL, mac bytea);"
    "CREATE TABLE meta(name text PRIMARY KEY NOT NULL, value text NOT NULL);",
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == KV_STORE_SCHEMA_VERSION,
               "one PostgreSQL migration per schema version");

enum {
    ST_CARD_GET,
    ST_CARD_GET_LOCK,
    ST_CARD_PUT,
    ST_DAY_SUM,
    ST_DAY_ADD,
    ST_CODE_USE,
    ST_SERIES_FIRST,
    ST_TXN_PUT,
    ST_TXN_GET,
    ST_TXN_REVERSED,
    ST_TXN_SCAN_CARD,
    ST_EV_HEAD,
    ST_EV_PUT,
    ST_EV_GET,
    ST_EV_SCAN,
    ST_REQ_GET,
    ST_REQ_PUT,
    ST_CARD_SCAN,
    ST_META_GET,
    ST_META_PUT,
    ST_ROW_MAC_ANY,
    ST__COUNT
};

#define CARD_COLS                                                                                  \
    "pan_masked, ecommerce_enabled, spend_single_max, spend_daily_max, sca_failures, cl_count,"    \
    " cl_amount, cl_epoch, rm_count, rm_amount, rm_epoch, pin_failures, code_failures, pvki, pvv," \
    " ibm_offset, mac"
#define TXN_COLS                                                                                   \
    "id, token, at, day, channel, amount, payee, mcc, decision, reason, sca, family, epoch, atm,"  \
    " gambling, series, series_first, reversed"

static const char *const statements[ST__COUNT] = {
    [ST_CARD_GET] = "SELECT " CARD_COLS " FROM cards WHERE token = $1",
    [ST_CARD_GET_LOCK] = "SELECT " CARD_COLS " FROM cards WHERE token = $1 FOR UPDATE",
    [ST_CARD_PUT] = "INSERT INTO cards(token, " CARD_COLS ")"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,"
                    " $16, $17, $18)"
                    " ON CONFLICT(token) DO UPDATE SET pan_masked = excluded.pan_masked,"
                    " ecommerce_enabled = excluded.ecommerce_enabled,"
                    " spend_single_max = excluded.spend_single_max,"
                    " spend_daily_max = excluded.spend_daily_max,"
                    " sca_failures = excluded.sca_failures, cl_count = excluded.cl_count,"
                    " cl_amount = excluded.cl_amount, cl_epoch = excluded.cl_epoch,"
                    " rm_count = excluded.rm_count, rm_amount = excluded.rm_amount,"
                    " rm_epoch = excluded.rm_epoch, pin_failures = excluded.pin_failures,"
                    " code_failures = excluded.code_failures, pvki = excluded.pvki,"
                    " pvv = excluded.pvv, ibm_offset = excluded.ibm_offset, mac = excluded.mac",
    [ST_DAY_SUM] = "SELECT amount FROM day_totals WHERE token = $1 AND day = $2 AND kind = $3",
    [ST_DAY_ADD] = "INSERT INTO day_totals(token, day, kind, amount) VALUES ($1, $2, $3, $4)"
                   " ON CONFLICT(token, day, kind) DO UPDATE"
                   " SET amount = day_totals.amount + excluded.amount",
    [ST_CODE_USE] = "INSERT INTO auth_codes(hash, at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    [ST_SERIES_FIRST] = "SELECT 1 FROM transactions WHERE token = $1 AND series = $2"
                        " AND series_first = 1 AND amount = $3 AND payee = $4"
                        " AND decision = 'approve' AND sca = 1 AND reversed = 0 LIMIT 1",
    [ST_TXN_PUT] = "INSERT INTO transactions(" TXN_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7,"
                   " $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
    [ST_TXN_GET] = "SELECT " TXN_COLS " FROM transactions WHERE id = $1",
    [ST_TXN_REVERSED] = "UPDATE transactions SET reversed = 1 WHERE id = $1",
    [ST_TXN_SCAN_CARD] = "SELECT " TXN_COLS " FROM transactions WHERE token = $1"
                         " ORDER BY id DESC LIMIT $2",
    [ST_EV_HEAD] = "SELECT id, hash FROM evidence ORDER BY id DESC LIMIT 1",
    [ST_EV_PUT] = "INSERT INTO evidence(id, t, body, hash, mac) VALUES ($1, $2, $3, $4, $5)",
    [ST_EV_GET] = "SELECT id, t, body, hash, mac FROM evidence WHERE id = $1",
    [ST_EV_SCAN] = "SELECT id, t, body, hash, mac FROM evidence"
                   " WHERE id >= $1 AND t >= $2 AND t < $3 ORDER BY id LIMIT "
                   "512",
    [ST_REQ_GET] = "SELECT answer, at, mac FROM requests WHERE key = $1",
    [ST_REQ_PUT] = "INSERT INTO requests(key, answer, at, mac) VALUES ($1, $2, $3, $4)",
    [ST_CARD_SCAN] = "SELECT token, " CARD_COLS " FROM cards ORDER BY token",
    [ST_META_GET] = "SELECT value FROM meta WHERE name = $1",
    [ST_META_PUT] = "INSERT INTO meta(name, value) VALUES ($1, $2)"
                    " ON CONFLICT(name) DO UPDATE SET value = excluded.value",
    [ST_ROW_MAC_ANY] = "SELECT EXISTS(SELECT 1 FROM cards WHERE mac IS NOT NULL)"
                       " OR EXISTS(SELECT 1 FROM blocklist WHERE mac IS NOT NULL)"
                       " OR EXISTS(SELECT 1 FROM blocklist_wallet WHERE mac IS NOT NULL)",
};

typedef struct {
    PGconn *conn;
    int prepared;  /* the statements exist on this connection */
    int in_txn;    /* between begin and commit/rollback */
    int write_txn; /* the open transaction holds the chain lock */
    char err[256];
} pg_store;

/* Set s->err and map a failed result (may be NULL) to a KV_ERR_*. */
static int map_result(pg_store *s, const PGresult *res, const char *what)
{
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res != NULL ? PQresultErrorMessage(res) : "";
    size_t n;

    if (msg == NULL || msg[0] == '\0')
        msg = PQerrorMessage(s->conn);
    snprintf(s->err, sizeof(s->err), "%s: %s", what, msg != NULL ? msg : "");
    n = strlen(s->err);
    while (n > 0 && (s->err[n - 1] == '\n' || s->err[n - 1] == ' '))
        s->err[--n] = '\0';
    if (PQstatus(s->conn) != CONNECTION_OK)
        return KV_ERR_STORE_UNAVAILABLE;
    if (state == NULL)
        return KV_ERR_STORE_UNAVAILABLE;
    /* class 08 connection exception, 57P0x shutdown, 53 insufficient resources */
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P0", 4) == 0 ||
        strncmp(state, "53", 2) == 0)
        return KV_ERR_STORE_UNAVAILABLE;
    /* serialization failure, deadlock, lock not available */
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 || strcmp(state, "55P03") == 0)
        return KV_ERR_STORE_BUSY;
    if (strcmp(state, "42P01") == 0 || strcmp(state, "42703") == 0)
        return KV_ERR_STORE_SCHEMA;
    return KV_ERR_STORE;
}

/* Run a prepared statement; *res is the result on success (PQclear it). */
static int run(pg_store *s, int which, const kv_pg_params *p, ExecStatusType want, PGresult **res,
               const char *what)
{
    char name[8];
    PGresult *r;
    int rc;

    *res = NULL;
    snprintf(name, sizeof(name), "s%d", which);
    r = PQexecPrepared(s->conn, name, p != NULL ? p->n : 0, p != NULL ? p->val : NULL,
                       p != NULL ? p->len : NULL, p != NULL ? p->fmt : NULL, 0);
    if (r != NULL && PQresultStatus(r) == want) {
        *res = r;
        return 0;
    }
    rc = map_result(s, r, what);
    PQclear(r);
    return rc;
}

static int run_done(pg_store *s, int which, const kv_pg_params *p, const char *what)
{
    PGresult *res;
    int r = run(s, which, p, PGRES_COMMAND_OK, &res, what);
    PQclear(res);
    return r;
}

static int exec_sql(pg_store *s, const char *sql, const char *what)
{
    PGresult *res = PQexec(s->conn, sql);
    int r = 0;
    if (res == NULL ||
        (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK))
        r = map_result(s, res, what);
    PQclear(res);
    return r;
}

static int prepare_all(pg_store *s)
{
    char name[8];
    for (int i = 0; i < ST__COUNT; i++) {
        PGresult *res;
        int r = 0;
        snprintf(name, sizeof(name), "s%d", i);
        res = PQprepare(s->conn, name, statements[i], 0, NULL);
        if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
            r = map_result(s, res, "prepare");
        PQclear(res);
        if (r != 0)
            return r;
    }
    s->prepared = 1;
    return 0;
}

/* Make sure the connection is usable; reset it when it broke. Only outside transactions. */
static int ensure_conn(pg_store *s)
{
    int r;
    if (PQstatus(s->conn) == CONNECTION_OK && s->prepared)
        return 0;
    if (PQstatus(s->conn) != CONNECTION_OK) {
        s->prepared = 0;
        PQreset(s->conn);
        if (PQstatus(s->conn) != CONNECTION_OK) {
            snprintf(s->err, sizeof(s->err), "reconnect: %s", PQerrorMessage(s->conn));
            return KV_ERR_STORE_UNAVAILABLE;
        }
        if ((r = exec_sql(s, SESSION_SETUP, "session settings")) != 0)
            return r;
    }
    return prepare_all(s);
}

/* Decode a bytea column (text output "\x..." hex) of exactly n bytes into out. */
int kv_pg_get_bytes(const PGresult *res, int row, int col, uint8_t *out, size_t n)
{
    const char *v = PQgetvalue(res, row, col);
    size_t len = (size_t)PQgetlength(res, row, col);
    if (len != 2 + 2 * n || v[0] != '\\' || v[1] != 'x')
        return KV_ERR_STORE;
    for (size_t i = 0; i < n; i++) {
        int hi = kv_hex_digit(v[2 + 2 * i]), lo = kv_hex_digit(v[3 + 2 * i]);
        if (hi < 0 || lo < 0)
            return KV_ERR_STORE;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int64_t kv_pg_get_i64(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

void kv_pg_get_text(const PGresult *res, int row, int col, char *dst, size_t cap)
{
    snprintf(dst, cap, "%s", PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col));
}

/* Outside a transaction each operation runs on its own; it may reconnect first. */
static int op_ready(pg_store *s)
{
    return s->in_txn ? 0 : ensure_conn(s);
}

/* see store_pg_blocklist.h */
int kv_pg_query(void *impl, const char *sql, const kv_pg_params *p, ExecStatusType want,
                PGresult **res, const char *what)
{
    pg_store *s = impl;
    PGresult *r;
    int rc;
    *res = NULL;
    if ((rc = op_ready(s)) != 0)
        return rc;
    r = PQexecParams(s->conn, sql, p != NULL ? p->n : 0, NULL, p != NULL ? p->val : NULL,
                     p != NULL ? p->len : NULL, p != NULL ? p->fmt : NULL, 0);
    if (r != NULL && PQresultStatus(r) == want) {
        *res = r;
        return 0;
    }
    rc = map_result(s, r, what);
    PQclear(r);
    return rc;
}

/* see store_pg_blocklist.h */
int kv_pg_query_done(void *impl, const char *sql, const kv_pg_params *p, const char *what)
{
    PGresult *res;
    int r = kv_pg_query(impl, sql, p, PGRES_COMMAND_OK, &res, what);
    PQclear(res);
    return r;
}

static void pg_close(void *impl)
{
    pg_store *s = impl;
    if (s == NULL)
        return;
    if (s->conn != NULL && s->in_txn && PQstatus(s->conn) == CONNECTION_OK)
        PQclear(PQexec(s->conn, "ROLLBACK"));
    PQfinish(s->conn);
    free(s);
}

static const char *pg_last_error(void *impl)
{
    return ((pg_store *)impl)->err;
}

static int pg_begin(void *impl, int write)
{
    pg_store *s = impl;
    int r;
    if (s->in_txn)
        return KV_ERR_INTERNAL; /* no nesting, as with SQLite */
    if ((r = ensure_conn(s)) != 0)
        return r;
    /* the chain lock: see the comment at the top */
    r = exec_sql(s,
                 write ? "BEGIN; SELECT pg_advisory_xact_lock(" KV_PG_CHAIN_LOCK ")"
                       : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                 "begin");
    if (r != 0) {
        if (PQstatus(s->conn) == CONNECTION_OK)
            PQclear(PQexec(s->conn, "ROLLBACK"));
        return r;
    }
    s->in_txn = 1;
    s->write_txn = write;
    return 0;
}

static int pg_commit(void *impl)
{
    pg_store *s = impl;
    PGresult *res;
    int r = 0;
    if (!s->in_txn)
        return KV_ERR_INTERNAL;
    res = PQexec(s->conn, "COMMIT");
    /* COMMIT of a failed transaction answers ROLLBACK: that is a failure */
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK ||
        strcmp(PQcmdStatus(res), "COMMIT") != 0) {
        r = map_result(s, res, "commit");
        if (r == 0 || (res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK))
            r = KV_ERR_STORE;
    }
    PQclear(res);
    s->in_txn = 0;
    s->write_txn = 0;
    return r;
}

static void pg_rollback(void *impl)
{
    pg_store *s = impl;
    if (!s->in_txn)
        return;
    if (PQstatus(s->conn) == CONNECTION_OK)
        PQclear(PQexec(s->conn, "ROLLBACK"));
    s->in_txn = 0;
    s->write_txn = 0;
}

/* see store_pg_blocklist.h */
void kv_pg_get_mac(const PGresult *res, int row, int col, int *has, uint8_t mac[32])
{
    *has = !PQgetisnull(res, row, col);
    if (!*has || kv_pg_get_bytes(res, row, col, mac, 32) != 0)
        memset(mac, 0, 32); /* a malformed MAC never verifies */
}

/* see store_pg_blocklist.h */
void kv_pg_get_sealed(const PGresult *res, int row, int col, uint8_t out[KV_PAN_SEALED_LEN])
{
    uint8_t b[KV_PAN_SEALED_LEN];
    if (kv_pg_get_bytes(res, row, col, b, KV_PAN_SEALED_LEN) == 0)
        kv_sealed_load(out, b, KV_PAN_SEALED_LEN);
    else if (kv_pg_get_bytes(res, row, col, b, KV_SEALED_LEGACY_LEN) == 0)
        kv_sealed_load(out, b, KV_SEALED_LEGACY_LEN);
    else
        kv_sealed_load(out, NULL, 0);
}

/* The card columns (CARD_COLS) of a row from column c0 on. */
static void read_card(const PGresult *res, int row, int c0, kv_card_state *out)
{
    kv_card_policy *c = &out->policy;
    kv_pg_get_text(res, row, c0, out->pan_masked, sizeof(out->pan_masked));
    c->ecommerce_enabled = (int)kv_pg_get_i64(res, row, c0 + 1);
    c->spend_single_max = kv_pg_get_i64(res, row, c0 + 2);
    c->spend_daily_max = kv_pg_get_i64(res, row, c0 + 3);
    c->sca_failures = (int)kv_pg_get_i64(res, row, c0 + 4);
    c->contactless.count = kv_pg_get_i64(res, row, c0 + 5);
    c->contactless.amount = kv_pg_get_i64(res, row, c0 + 6);
    c->contactless.epoch = kv_pg_get_i64(res, row, c0 + 7);
    c->remote.count = kv_pg_get_i64(res, row, c0 + 8);
    c->remote.amount = kv_pg_get_i64(res, row, c0 + 9);
    c->remote.epoch = kv_pg_get_i64(res, row, c0 + 10);
    out->pin_failures = (int)kv_pg_get_i64(res, row, c0 + 11);
    out->code_failures = (int)kv_pg_get_i64(res, row, c0 + 12);
    out->has_pvv = !PQgetisnull(res, row, c0 + 14);
    if (out->has_pvv) {
        out->pvki = (int)kv_pg_get_i64(res, row, c0 + 13);
        kv_pg_get_text(res, row, c0 + 14, out->pvv, sizeof(out->pvv));
    }
    out->has_ibm_offset = !PQgetisnull(res, row, c0 + 15);
    if (out->has_ibm_offset)
        kv_pg_get_text(res, row, c0 + 15, out->ibm_offset, sizeof(out->ibm_offset));
    kv_pg_get_mac(res, row, c0 + 16, &out->has_row_mac, out->row_mac);
}

static int pg_card_get(void *impl, const uint8_t token[KV_TOKEN_LEN], kv_card_state *out,
                       int *found)
{
    pg_store *s = impl;
    PGresult *res = NULL;
    kv_pg_params p;
    int r;

    memset(out, 0, sizeof(*out));
    memcpy(out->token, token, KV_TOKEN_LEN);
    kv_card_policy_init(&out->policy);
    *found = 0;
    if ((r = op_ready(s)) != 0)
        return r;
    kv_pg_param_init(&p);
    kv_pg_param_bytes(&p, token, KV_TOKEN_LEN);
    /* in a write transaction the row is locked until commit (row lock for the counters) */
    if ((r = run(s, s->write_txn ? ST_CARD_GET_LOCK : ST_CARD_GET, &p, PGRES_TUPLES_OK, &res,
                 "read card")) != 0)
        return r;
    if (PQntuples(res) == 1) {
        read_card(res, 0, 0, out);
        *found = 1;
    }
    PQclear(res);
    return 0;
}

static int pg_card_put(void *impl, const kv_card_state *c)
{
    pg_store *s = impl;
    const kv_card_policy *q = &c->policy;
    kv_pg_params p;
    int r;
    if ((r = op_ready(s)) != 0)
        return r;
    kv_pg_param_init(&p);
    kv_pg_param_bytes(&p, c->token, KV_TOKEN_LEN);
    kv_pg_param_text(&p, c->pan_masked);
    kv_pg_param_int(&p, q->ecommerce_enabled ? 1 : 0);
    kv_pg_param_int(&p, q->spend_single_max);
    kv_pg_param_int(&p, q->spend_daily_max);
    kv_pg_param_int(&p, q->sca_failures);
    kv_pg_param_int(&p, q->contactless.count);
    kv_pg_param_int(&p, q->contactless.amount);
    kv_pg_param_int(&p, q->contactless.epoch);
    kv_pg_param_int(&p, q->remote.count);
    kv_pg_param_int(&p, q->remote.amount);
    kv_pg_param_int(&p, q->remote.epoch);
    kv_pg_param_int(&p, c->pin_failures);
    kv_pg_param_int(&p, c->code_failures);
    if (c->has_pvv) {
        kv_pg_param_int(&p, c->pvki);
        kv_pg_param_text(&p, c->pvv);
    } else {
        kv_pg_param_null(&p);
        kv_pg_param_null(&p);
    }
    if (c->has_ibm_offset)
        kv_pg_param_text(&p, c->ibm_offset);
    else
        kv_pg_param_null(&p);
    if (c->has_row_mac)
        kv_pg_param_bytes(&p, c->row_mac, 32);
    else
        kv_pg_param_null(&p);
    return run_done(s, ST_CARD_PUT, &p, "write card");
}

static int pg_card_scan(void *impl, int (*cb)(void *ctx, const kv_card_state *c), void *ctx)
{
    pg_store *s = impl;
    PGresult *res;
    kv_card_state c;
    int r;
    if ((r = op_ready(s)) != 0)
        return r;
    if ((r = run(s, ST_CARD_SCAN, NULL, PGRES_TUPLES_OK, &res, "scan cards")) != 0)
        return r;
    for (int i = 0; i < PQntuples(res) && r == 0; i++) {
        memset(&c, 0, sizeof(c));
        kv_card_policy_init(&c.policy);
        if (kv_pg_get_bytes(res, i, 0, c.token, KV_TOKEN_LEN) != 0)
            memset(c.token, 0, KV_TOKEN_LEN);
        read_card(res, i, 1, &c);
        r = cb(ctx, &c);
    }
    PQclear(res);
    return r > 0 ? 0 : r;
}

static int pg_request_get(void *impl, const uint8_t key[32], char **answer, kv_request_meta *m,
                          int *found)
{
    pg_store *s = impl;
    PGresult *res;
    kv_pg_params p;
    int r;
    *answer = NULL;
    *found = 0;
    if ((r = op_ready(s)) != 0)
        return r;
    kv_pg_param_init(&p);
    kv_pg_param_bytes(&p, key, 32);
    if ((r = run(s, ST_REQ_GET, &p, PGRES_TUPLES_OK, &res, "read request id")) != 0)
        return r;
    if (PQntuples(res) == 1) {
        size_t n = (size_t)PQgetlength(res, 0, 0);
        if ((*answer = malloc(n + 1)) == NULL) {
            r = KV_ERR_NOMEM;
        } else {
            memcpy(*answer, PQgetvalue(res, 0, 0), n);
            (*answer)[n] = '\0';
            *found = 1;
            m->at = kv_pg_get_i64(res, 0, 1);
            kv_pg_get_mac(res, 0, 2, &m->has_mac, m->mac);
        }
    }
    PQclear(res);
    return r;
}

static int pg_request_put(void *impl, const uint8_t key[32], const char *answer,
                          const kv_request_meta *m)
{
    pg_store *s = impl;
    kv_pg_params p;
    int r;
    if ((r = op_ready(s)) != 0)
        return r;
    kv_pg_param_init(&p);
    kv_pg_param_bytes(&p, key, 32);
    kv_pg_param_text(&p, answer);
    kv_pg_param_int(&p, m->at);
    if (m->has_mac)
        kv_pg_param_bytes(&p, m->mac, 32);
    else
        kv_pg_param_null(&p);
    return run_done(s, ST_REQ_PUT, &p, "write request id");
}

static int pg_meta_get(void *impl, const char *name, char *val, size_t cap, int *found)
{
    pg_store *s = impl;
    PGresult *res;
    kv_pg_params p;
    int r;
    *found = 0;
    if (cap > 0)
        val[0] = '\0';
    if ((r = op_ready(s)) != 0)
        return r;
    kv_pg_param_init(&p);
    kv_pg_param_text(&p, name);
    if ((r = run(s, ST_META_GET, &p, PGRES_TUPLES_OK, &res, "read meta")) != 0)
        return r;
    if (PQntuples(res) == 1) {
        kv_pg_get_text(res, 0, 0, val, cap);
        *found = 1;
    }
    PQclear(res);
    return 0;
}

static int pg_meta_put(void *impl, const char *name, const char *val)
{
    pg_store *s = impl;
    kv_pg_params p;
    int r;
    if ((r = op_ready(s)) != 0)
        return r;
    kv_pg_param_init(&p);
    kv_pg_param_text(&p, name);
    kv_pg_param_text(&p, val);
    return run_done(s, ST_META_PUT, &p, "write meta");
}

static int pg_row_mac_any(void *impl, int *any)
{
    pg_store *s = impl;
    PGresult *res;
    int r;
    *any = 0;
    if ((r = op_ready(s)) != 0)
        return r;
    if ((r = run(s, ST_ROW_MAC_ANY, NULL, PGRES_TUPLES_OK, &res, "read row MACs")) != 0)
        return r;
    *any = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return 0;
}

static int pg_day_sum(void *impl, const uint8_t token[KV_TOKEN_LEN], const char *day,
                      kv_day_kind kind, int64_t *sum)
{
    pg_store *s = impl;
    PGresult *res;
    kv_pg_params p;
    int r;
    *sum = 0;
    if ((r = op_ready(s)) != 0)
        return r;
    kv_pg_param_init(&p);
    kv_pg_param_bytes(&p, token, KV_TOKEN_LEN);
    kv_pg_param_text(&p, day);
    kv_pg_param_int(&p, (int64_t)kind);
    if ((r = run(s, ST_DAY_SUM, &p, PGRES_TUPLES_OK, &res, "read daily sum")) != 0)
        return r;
    if (PQntuples(res) == 1)
        *sum = kv_pg_get_i64(res, 0, 0);
    PQclear(res);
    return 0;
}

static int pg_day_add(void *impl, const uint8_t token[KV_TOKEN_LEN], const char *day,
                      kv_day_kind kind, int64_t delta)
{
    pg_store *s = impl;
    kv_pg_params p;
    int r;
    if ((r = op_ready(s)) != 0)
        return r;
    kv_pg_param_init(&p);
    kv_pg_param_bytes(&p, token, KV_TOKEN_LEN);
    kv_pg_param_text(&p, day);
    kv_pg_param_int(&p, (int64_t)kind);
    kv_pg_param_int(&p, delta);
    return run_done(s, ST_DAY_ADD, &p, "update daily sum");
}

static int pg_code_use(void *impl, const uint8_t hash[32], int64_t at, int *fresh)
{
    pg_store *s = impl;
    PGresult *res;
    kv_pg_params p;
    int r;
    if ((r = op_ready(s)) != 0)
        return r;
    kv_pg_param_init(&p);
    kv_pg_param_bytes(&p, hash, 32);
    kv_pg_param_int(&p, at);
    if ((r = run(s, ST_CODE_USE, &p, PGRES_COMMAND_OK, &res, "record authentication code")) != 0)
        return r;
    *fresh = strcmp(PQcmdTuples(res), "1") == 0;
    PQclear(res);
    return 0;
}

static int pg_series_first(void *impl, const uint8_t token[KV_TOKEN_LEN], const char *series,
                           int64_t amount, const char *payee, int *found)
{
    pg_store *s = impl;
    PGresult *res;
    kv_pg_params p;
    int r;
    *found = 0;
    if ((r = op_ready(s)) != 0)
        return r;
    kv_pg_param_init(&p);
    kv_pg_param_bytes(&p, token, KV_TOKEN_LEN);
    kv_pg_param_text(&p, series);
    kv_pg_param_int(&p, amount);
    kv_pg_param_text(&p, payee);
    if ((r = run(s, ST_SERIES_FIRST, &p, PGRES_TUPLES_OK, &res, "read recurring series")) != 0)
        return r;
    *found = PQntuples(res) > 0;
    PQclear(res);
    return 0;
}

static int pg_txn_put(void *impl, const kv_txn *t)
{
    pg_store *s = impl;
    kv_pg_params p;
    int r;
    if ((r = op_ready(s)) != 0)
        return r;
    if ((unsigned)t->channel >= KV_CH__COUNT)
        return KV_ERR_ARG;
    kv_pg_param_init(&p);
    kv_pg_param_int(&p, t->id);
    kv_pg_param_bytes(&p, t->token, KV_TOKEN_LEN);
    kv_pg_param_int(&p, t->at);
    kv_pg_param_text(&p, t->day);
    kv_pg_param_text(&p, kv_channel_name(t->channel));
    kv_pg_param_int(&p, t->amount);
    kv_pg_param_text(&p, t->payee);
    kv_pg_param_text(&p, t->mcc);
    kv_pg_param_text(&p, kv_decision_name(t->decision));
    kv_pg_param_text(&p, t->reason);
    kv_pg_param_int(&p, t->sca_satisfied ? 1 : 0);
    kv_pg_param_int(&p, (int64_t)t->family);
    kv_pg_param_int(&p, t->epoch);
    kv_pg_param_int(&p, t->atm ? 1 : 0);
    kv_pg_param_int(&p, t->gambling ? 1 : 0);
    if (t->has_series)
        kv_pg_param_text(&p, t->series);
    else
        kv_pg_param_null(&p);
    kv_pg_param_int(&p, t->series_first ? 1 : 0);
    kv_pg_param_int(&p, t->reversed ? 1 : 0);
    return run_done(s, ST_TXN_PUT, &p, "write transaction");
}

static void read_txn(const PGresult *res, int row, kv_txn *t)
{
    char ch[32], dec[32];
    memset(t, 0, sizeof(*t));
    t->id = kv_pg_get_i64(res, row, 0);
    if (kv_pg_get_bytes(res, row, 1, t->token, KV_TOKEN_LEN) != 0)
        memset(t->token, 0, KV_TOKEN_LEN);
    t->at = kv_pg_get_i64(res, row, 2);
    kv_pg_get_text(res, row, 3, t->day, sizeof(t->day));
    kv_pg_get_text(res, row, 4, ch, sizeof(ch));
    if (kv_channel_parse(ch, &t->channel) != 0)
        t->channel = KV_CH_CONTACT;
    t->amount = kv_pg_get_i64(res, row, 5);
    kv_pg_get_text(res, row, 6, t->payee, sizeof(t->payee));
    kv_pg_get_text(res, row, 7, t->mcc, sizeof(t->mcc));
    kv_pg_get_text(res, row, 8, dec, sizeof(dec));
    t->decision = kv_decision_from_name(dec);
    kv_pg_get_text(res, row, 9, t->reason, sizeof(t->reason));
    t->sca_satisfied = (int)kv_pg_get_i64(res, row, 10);
    t->family = (kv_family)kv_pg_get_i64(res, row, 11);
    t->epoch = kv_pg_get_i64(res, row, 12);
    t->atm = (int)kv_pg_get_i64(res, row, 13);
    t->gambling = (int)kv_pg_get_i64(res, row, 14);
    t->has_series = !PQgetisnull(res, row, 15);
    kv_pg_get_text(res, row, 15, t->series, sizeof(t->series));
    t->series_first = (int)kv_pg_get_i64(res, row, 16);
    t->reversed = (int)kv_pg_get_i64(res, row, 17);
}

static int pg_txn_get(void *impl, int64_t id, kv_txn *t, int *found)
{
    pg_store *s = impl;
    PGresult *res;
    kv_pg_params p;
    int r;
    *found = 0;
    if ((r = op_ready(s)) != 0)
        return r;
    kv_pg_param_init(&p);
    kv_pg_param_int(&p, id);
    if ((r = run(s, ST_TXN_GET, &p, PGRES_TUPLES_OK, &res, "read transaction")) != 0)
        return r;
    if (PQntuples(res) == 1) {
        read_txn(res, 0, t);
        *found = 1;
    }
    PQclear(res);
    return 0;
}

static int pg_txn_set_reversed(void *impl, int64_t id)
{
    pg_store *s = impl;
    kv_pg_params p;
    int r;
    if ((r = op_ready(s)) != 0)
        return r;
    kv_pg_param_init(&p);
    kv_pg_param_int(&p, id);
    return run_done(s, ST_TXN_REVERSED, &p, "mark transaction reversed");
}

static int pg_txn_scan_card(void *impl, const uint8_t token[KV_TOKEN_LEN], int limit, kv_txn_cb cb,
                            void *ctx)
{
    pg_store *s = impl;
    PGresult *res;
    kv_pg_params p;
    kv_txn t;
    int r;
    if ((r = op_ready(s)) != 0)
        return r;
    kv_pg_param_init(&p);
    kv_pg_param_bytes(&p, token, KV_TOKEN_LEN);
    if (limit > 0)
        kv_pg_param_int(&p, limit);
    else
        kv_pg_param_null(&p); /* LIMIT NULL: all */
    if ((r = run(s, ST_TXN_SCAN_CARD, &p, PGRES_TUPLES_OK, &res, "scan transactions")) != 0)
        return r;
    /* the whole result is in memory, so the callback may use the store */
    for (int i = 0; i < PQntuples(res) && r == 0; i++) {
        read_txn(res, i, &t);
        r = cb(ctx, &t);
    }
    PQclear(res);
    return r > 0 ? 0 : r;
}

static int pg_evidence_head(void *impl, int64_t *id, uint8_t hash[32])
{
    pg_store *s = impl;
    PGresult *res;
    int r;
    *id = 0;
    memset(hash, 0, 32);
    if ((r = op_ready(s)) != 0)
        return r;
    if ((r = run(s, ST_EV_HEAD, NULL, PGRES_TUPLES_OK, &res, "read evidence head")) != 0)
        return r;
    if (PQntuples(res) == 1) {
        *id = kv_pg_get_i64(res, 0, 0);
        if (kv_pg_get_bytes(res, 0, 1, hash, 32) != 0)
            r = KV_ERR_EVIDENCE_BROKEN;
    }
    PQclear(res);
    return r;
}

static int pg_evidence_put(void *impl, const kv_evidence_row *e)
{
    pg_store *s = impl;
    kv_pg_params p;
    int r;
    if ((r = op_ready(s)) != 0)
        return r;
    if (memchr(e->body, '\0', e->body_len) != NULL)
        return KV_ERR_ARG; /* a text column cannot hold NUL */
    kv_pg_param_init(&p);
    kv_pg_param_int(&p, e->id);
    kv_pg_param_int(&p, e->time);
    kv_pg_param_text(&p, e->body); /* NUL-terminated per store.h */
    kv_pg_param_bytes(&p, e->hash, 32);
    kv_pg_param_bytes(&p, e->mac, 32);
    return run_done(s, ST_EV_PUT, &p, "append evidence");
}

/* Copy one row; the body is malloc'ed. Wrong-sized hash/mac stay zero. */
static int read_evidence(const PGresult *res, int row, kv_evidence_row *e)
{
    size_t n = (size_t)PQgetlength(res, row, 2);
    memset(e, 0, sizeof(*e));
    e->id = kv_pg_get_i64(res, row, 0);
    e->time = kv_pg_get_i64(res, row, 1);
    if ((e->body = malloc(n + 1)) == NULL)
        return KV_ERR_NOMEM;
    memcpy(e->body, PQgetvalue(res, row, 2), n);
    e->body[n] = '\0';
    e->body_len = n;
    if (kv_pg_get_bytes(res, row, 3, e->hash, 32) != 0)
        memset(e->hash, 0, 32);
    if (kv_pg_get_bytes(res, row, 4, e->mac, 32) != 0)
        memset(e->mac, 0, 32);
    return 0;
}

static int pg_evidence_get(void *impl, int64_t id, kv_evidence_row *e, int *found)
{
    pg_store *s = impl;
    PGresult *res;
    kv_pg_params p;
    int r;
    *found = 0;
    memset(e, 0, sizeof(*e));
    if ((r = op_ready(s)) != 0)
        return r;
    kv_pg_param_init(&p);
    kv_pg_param_int(&p, id);
    if ((r = run(s, ST_EV_GET, &p, PGRES_TUPLES_OK, &res, "read evidence")) != 0)
        return r;
    if (PQntuples(res) == 1 && (r = read_evidence(res, 0, e)) == 0)
        *found = 1;
    PQclear(res);
    return r;
}

static int pg_evidence_scan(void *impl, int64_t id_from, int64_t t_from, int64_t t_to,
                            kv_evidence_cb cb, void *ctx)
{
    pg_store *s = impl;
    kv_evidence_row e;
    int r, rows;

    if ((r = op_ready(s)) != 0)
        return r;
    /* pages of SCAN_PAGE rows by id, each fully read before the callbacks run */
    do {
        PGresult *res;
        kv_pg_params p;
        kv_pg_param_init(&p);
        kv_pg_param_int(&p, id_from);
        kv_pg_param_int(&p, t_from);
        kv_pg_param_int(&p, t_to);
        if ((r = run(s, ST_EV_SCAN, &p, PGRES_TUPLES_OK, &res, "scan evidence")) != 0)
            return r;
        rows = PQntuples(res);
        for (int i = 0; i < rows && r == 0; i++) {
            if ((r = read_evidence(res, i, &e)) != 0)
                break;
            id_from = e.id + 1;
            r = cb(ctx, &e);
            kv_evidence_row_clear(&e);
        }
        PQclear(res);
    } while (r == 0 && rows == SCAN_PAGE);
    return r > 0 ? 0 : r;
}

static const kv_store_ops pg_ops = {
    .name = "postgresql",
    .close = pg_close,
    .last_error = pg_last_error,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .card_get = pg_card_get,
    .card_put = pg_card_put,
    .day_sum = pg_day_sum,
    .day_add = pg_day_add,
    .code_use = pg_code_use,
    .series_first = pg_series_first,
    .txn_put = pg_txn_put,
    .txn_get = pg_txn_get,
    .txn_set_reversed = pg_txn_set_reversed,
    .txn_scan_card = pg_txn_scan_card,
    .evidence_head = pg_evidence_head,
    .evidence_put = pg_evidence_put,
    .evidence_get = pg_evidence_get,
    .evidence_scan = pg_evidence_scan,
    .blocklist = &kv_pg_blocklist_ops,
    .request_get = pg_request_get,
    .request_put = pg_request_put,
    .card_scan = pg_card_scan,
    .meta_get = pg_meta_get,
    .meta_put = pg_meta_put,
    .row_mac_any = pg_row_mac_any,
};

/*
 * Bring the schema to the newest version in one transaction, under an
 * advisory lock so that daemons starting together migrate once.
 */
static int migrate(pg_store *s)
{
    const int target = (int)(sizeof(migrations) / sizeof(migrations[0]));
    PGresult *res = NULL;
    char sql[128];
    int r, version = 0;

    if ((r = exec_sql(s, "BEGIN; SELECT pg_advisory_xact_lock(" KV_PG_CHAIN_LOCK ")",
                      "begin migration")) != 0)
        goto out;
    if ((r = exec_sql(s,
                      "SET LOCAL client_min_messages = warning;"
                      " CREATE TABLE IF NOT EXISTS schema_version(version integer NOT NULL)",
                      "create schema_version")) != 0)
        goto out;
    res = PQexec(s->conn, "SELECT coalesce(max(version), 0) FROM schema_version");
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        r = map_result(s, res, "read schema version");
        goto out;
    }
    version = (int)kv_pg_get_i64(res, 0, 0);
    if (version > target) {
        snprintf(s->err, sizeof(s->err),
                 "the store has schema version %d; this kortvagt knows up to %d", version, target);
        r = KV_ERR_STORE_SCHEMA;
        goto out;
    }
    for (int v = version; v < target; v++)
        if ((r = exec_sql(s, migrations[v], "migrate schema")) != 0)
            goto out;
    if (version < target) {
        snprintf(sql, sizeof(sql),
                 "DELETE FROM schema_version; INSERT INTO schema_version VALUES (%d)", target);
        if ((r = exec_sql(s, sql, "write schema version")) != 0)
            goto out;
    }
    r = exec_sql(s, "COMMIT", "commit migration");
out:
    PQclear(res);
    if (r != 0 && PQstatus(s->conn) == CONNECTION_OK)
        PQclear(PQexec(s->conn, "ROLLBACK"));
    return r;
}

/* see store.h */
int kv_store_open_pg(const char *url, kv_store **out, char *err, size_t errlen)
{
    int r = KV_ERR_INTERNAL;
    pg_store *s = NULL;

    *out = NULL;
    if ((s = calloc(1, sizeof(*s))) == NULL) {
        r = KV_ERR_NOMEM;
        goto out;
    }
    s->conn = PQconnectdb(url);
    if (s->conn == NULL) {
        r = KV_ERR_NOMEM;
        goto out;
    }
    if (PQstatus(s->conn) != CONNECTION_OK) {
        /* libpq's message names host and port, never the password */
        snprintf(s->err, sizeof(s->err), "connect: %s", PQerrorMessage(s->conn));
        r = KV_ERR_STORE_UNAVAILABLE;
        goto out;
    }
    if ((r = exec_sql(s, SESSION_SETUP, "session settings")) != 0)
        goto out;
    if ((r = migrate(s)) != 0)
        goto out;
    if ((r = prepare_all(s)) != 0)
        goto out;
    if ((r = kv_store_wrap(&pg_ops, s, out)) != 0)
        goto out;
    s = NULL; /* transferred */
    r = 0;
out:
    if (s != NULL && err != NULL && errlen > 0) {
        size_t n;
        snprintf(err, errlen, "%s", s->err[0] ? s->err : kv_strerror(r));
        n = strlen(err);
        while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
            err[--n] = '\0';
    }
    pg_close(s);
    return r;
}

#endif

/*
 * see store.h — the SQLite backend: one connection, WAL, a busy handler with
 * short backed-off sleeps, versioned migrations and prepared statements.
 * The block list's operations are store_sqlite_blocklist.c's (as
 * PostgreSQL's are store_pg_blocklist.c's).
 */
#include "src/store/store.h"
#include "src/base/err.h"
#include "src/store/store_sqlite_blocklist.h"

#include <sqlite3.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BUSY_TIMEOUT_MS 30000

/* Schema migrations: entry i takes the store from version i to i + 1. */
static const char *const migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE cards("
    " token BLOB PRIMARY KEY NOT NULL,"
    " pan_masked TEXT NOT NULL,"
    " ecommerce_enabled INTEGER NOT NULL,"
    " spend_single_max INTEGER NOT NULL," /* -1: none */
    " spend_daily_max INTEGER NOT NULL,"
    " sca_failures INTEGER NOT NULL,"
    " cl_count INTEGER NOT NULL, cl_amount INTEGER NOT NULL, cl_epoch INTEGER NOT NULL,"
    " rm_count INTEGER NOT NULL, rm_amount INTEGER NOT NULL, rm_epoch INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE TABLE day_totals("
    " token BLOB NOT NULL, day TEXT NOT NULL, kind INTEGER NOT NULL, amount INTEGER NOT NULL,"
    " PRIMARY KEY(token, day, kind)) WITHOUT ROWID;"
    "CREATE TABLE auth_codes(hash BLOB PRIMARY KEY NOT NULL, at INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE transactions("
    " id INTEGER PRIMARY KEY, token BLOB NOT NULL, at INTEGER NOT NULL, day TEXT NOT NULL,"
    " channel TEXT NOT NULL, amount INTEGER NOT NULL, payee TEXT NOT NULL, mcc TEXT NOT NULL,"
    " decision TEXT NOT NULL, reason TEXT NOT NULL, sca INTEGER NOT NULL,"
    " family INTEGER NOT NULL, epoch INTEGER NOT NULL, atm INTEGER NOT NULL,"
    " gambling INTEGER NOT NULL, series TEXT, series_first INTEGER NOT NULL,"
    " reversed INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX transactions_series ON transactions(token, series) WHERE series IS NOT NULL;"
    /*
     * No secondary indexes on transactions or evidence beyond the partial
     * series index: every index is one more page written by every decision.
     * A card's recent transactions and an export by time scan by id.
     */
    "CREATE TABLE evidence("
    " id INTEGER PRIMARY KEY, t INTEGER NOT NULL, body TEXT NOT NULL,"
    " hash BLOB NOT NULL, mac BLOB NOT NULL);"
    /* append-only: a record once written is never changed or removed */
    "CREATE TRIGGER evidence_no_update BEFORE UPDATE ON evidence"
    " BEGIN SELECT RAISE(ABORT, 'evidence is append-only'); END;"
    "CREATE TRIGGER evidence_no_delete BEFORE DELETE ON evidence"
    " BEGIN SELECT RAISE(ABORT, 'evidence is append-only'); END;",
    /* 1 -> 2: the block list (store_sqlite_blocklist.c) */
    KV_SQLITE_BLOCKLIST_SCHEMA,
    /*
     * 2 -> 3: attempt counters and reference values on cards, row MACs on
     * cards and block-list rows (NULL until kv_store_set_row_mac_adopt MACs
     * the rows of a migrated store), request ids, named values ("row_macs").
     */
    "ALTER TABLE cards ADD COLUMN pin_failures INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE cards ADD COLUMN code_failures INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE cards ADD COLUMN pvki INTEGER;" /* NULL: no PVV */
    "ALTER TABLE cards ADD COLUMN pvv TEXT;"
    "ALTER TABLE cards ADD COLUMN ibm_offset TEXT;" /* NULL: none */
    "ALTER TABLE cards ADD COLUMN mac BLOB;"
    "ALTER TABLE blocklist ADD COLUMN mac BLOB;"
    "ALTER TABLE blocklist_wallet ADD COLUMN mac BLOB;"
    "CREATE TABLE requests(key BLOB PRIMARY KEY NOT NULL, answer TEXT NOT NULL,"
    " at INTEGER NOT NULL, mac BLOB) WITHOUT ROWID;"
    "CREATE TABLE meta(name TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;",
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == KV_STORE_SCHEMA_VERSION,
               "one SQLite migration per schema version");

enum {
    ST_CARD_GET,
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

static const char *const statements[ST__COUNT] = {
    [ST_CARD_GET] = "SELECT " CARD_COLS " FROM cards WHERE token = ?1",
    [ST_CARD_PUT] = "INSERT OR REPLACE INTO cards(token, " CARD_COLS ")"
                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,"
                    " ?16, ?17, ?18)",
    [ST_DAY_SUM] = "SELECT amount FROM day_totals WHERE token = ?1 AND day = ?2 AND kind = ?3",
    [ST_DAY_ADD] = "INSERT INTO day_totals(token, day, kind, amount) VALUES (?1, ?2, ?3, ?4)"
                   " ON CONFLICT(token, day, kind) DO UPDATE SET amount = amount + excluded.amount",
    [ST_CODE_USE] = "INSERT OR IGNORE INTO auth_codes(hash, at) VALUES (?1, ?2)",
    [ST_SERIES_FIRST] = "SELECT 1 FROM transactions WHERE token = ?1 AND series = ?2"
                        " AND series_first = 1 AND amount = ?3 AND payee = ?4"
                        " AND decision = 'approve' AND sca = 1 AND reversed = 0 LIMIT 1",
    [ST_TXN_PUT] = "INSERT INTO transactions(id, token, at, day, channel, amount, payee, mcc,"
                   " decision, reason, sca, family, epoch, atm, gambling, series, series_first,"
                   " reversed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
                   " ?14, ?15, ?16, ?17, ?18)",
    [ST_TXN_GET] = "SELECT id, token, at, day, channel, amount, payee, mcc, decision, reason, sca,"
                   " family, epoch, atm, gambling, series, series_first, reversed"
                   " FROM transactions WHERE id = ?1",
    [ST_TXN_REVERSED] = "UPDATE transactions SET reversed = 1 WHERE id = ?1",
    [ST_TXN_SCAN_CARD] = "SELECT id, token, at, day, channel, amount, payee, mcc, decision,"
                         " reason, sca, family, epoch, atm, gambling, series, series_first,"
                         " reversed FROM transactions WHERE token = ?1 ORDER BY id DESC LIMIT ?2",
    [ST_EV_HEAD] = "SELECT id, hash FROM evidence ORDER BY id DESC LIMIT 1",
    [ST_EV_PUT] = "INSERT INTO evidence(id, t, body, hash, mac) VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_EV_GET] = "SELECT id, t, body, hash, mac FROM evidence WHERE id = ?1",
    [ST_EV_SCAN] = "SELECT id, t, body, hash, mac FROM evidence"
                   " WHERE id >= ?1 AND t >= ?2 AND t < ?3 ORDER BY id",
    [ST_REQ_GET] = "SELECT answer, at, mac FROM requests WHERE key = ?1",
    [ST_REQ_PUT] = "INSERT INTO requests(key, answer, at, mac) VALUES (?1, ?2, ?3, ?4)",
    [ST_CARD_SCAN] = "SELECT token, " CARD_COLS " FROM cards ORDER BY token",
    [ST_META_GET] = "SELECT value FROM meta WHERE name = ?1",
    [ST_META_PUT] = "INSERT OR REPLACE INTO meta(name, value) VALUES (?1, ?2)",
    [ST_ROW_MAC_ANY] = "SELECT EXISTS(SELECT 1 FROM cards WHERE mac IS NOT NULL)"
                       " OR EXISTS(SELECT 1 FROM blocklist WHERE mac IS NOT NULL)"
                       " OR EXISTS(SELECT 1 FROM blocklist_wallet WHERE mac IS NOT NULL)",
};

typedef struct {
    sqlite3 *db;
    sqlite3_stmt *st[ST__COUNT];
    char err[256];
    struct timespec busy_start;
    int wlock_fd; /* PATH-wlock, held across a write transaction; -1: none */
    int wlock_held;
} sq_store;

static int map_rc(sq_store *s, int rc, const char *what)
{
    int prim = rc & 0xff;
    snprintf(s->err, sizeof(s->err), "%s: %s", what, s->db ? sqlite3_errmsg(s->db) : "");
    switch (prim) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return KV_ERR_STORE_BUSY;
    case SQLITE_CANTOPEN:
    case SQLITE_NOTADB:
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_FULL:
    case SQLITE_IOERR:
        return KV_ERR_STORE_UNAVAILABLE;
    case SQLITE_NOMEM:
        return KV_ERR_NOMEM;
    default:
        return KV_ERR_STORE;
    }
}

/*
 * SQLite's own busy handler sleeps up to 100 ms at a time; a decision holds
 * the write lock for well under a millisecond, so wait in short, growing,
 * jittered steps instead.
 */
static int busy_handler(void *ctx, int n)
{
    sq_store *s = ctx;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (n == 0)
        s->busy_start = now;
    long long waited = (now.tv_sec - s->busy_start.tv_sec) * 1000LL +
                       (now.tv_nsec - s->busy_start.tv_nsec) / 1000000;
    if (waited >= BUSY_TIMEOUT_MS)
        return 0;
    long us = 20L << (n < 7 ? n : 7); /* 20 us .. 2.56 ms */
    us += (long)(((unsigned)now.tv_nsec >> 10) % (unsigned)us);
    struct timespec d = {0, us * 1000L};
    nanosleep(&d, NULL);
    return 1;
}

static void sq_close(void *impl)
{
    sq_store *s = impl;
    if (s == NULL)
        return;
    if (s->db != NULL && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    for (int i = 0; i < ST__COUNT; i++)
        sqlite3_finalize(s->st[i]);
    sqlite3_close(s->db);
    if (s->wlock_fd >= 0)
        close(s->wlock_fd); /* releases the flock too */
    free(s);
}

static const char *sq_last_error(void *impl)
{
    return ((sq_store *)impl)->err;
}

static int exec(sq_store *s, const char *sql, const char *what)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : map_rc(s, rc, what);
}

/*
 * Writers from several processes (daemon workers, CLI runs) queue on an
 * exclusive flock of PATH-wlock before BEGIN IMMEDIATE: the kernel wakes a
 * waiter when the lock is free, where SQLite's own busy handler can only poll,
 * and a poller can lose to the same process again and again (a long latency
 * tail). SQLite's locking stays in force underneath; the flock only orders.
 */
static void wlock_release(sq_store *s)
{
    if (s->wlock_held) {
        flock(s->wlock_fd, LOCK_UN);
        s->wlock_held = 0;
    }
}

static int sq_begin(void *impl, int write)
{
    sq_store *s = impl;
    int r;
    if (write && s->wlock_fd >= 0 && !s->wlock_held) {
        while (flock(s->wlock_fd, LOCK_EX) != 0)
            if (errno != EINTR)
                break;
        s->wlock_held = 1;
    }
    if ((r = exec(s, write ? "BEGIN IMMEDIATE" : "BEGIN", "begin")) != 0)
        wlock_release(s);
    return r;
}

static int sq_commit(void *impl)
{
    sq_store *s = impl;
    int r = exec(s, "COMMIT", "commit");
    if (sqlite3_get_autocommit(s->db))
        wlock_release(s);
    return r;
}

static void sq_rollback(void *impl)
{
    sq_store *s = impl;
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    wlock_release(s);
}

/* Reset and clear a statement before use. */
static sqlite3_stmt *stmt(sq_store *s, int which)
{
    sqlite3_stmt *st = s->st[which];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

/* Step a statement that returns no row. */
static int step_done(sq_store *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    int r = rc == SQLITE_DONE ? 0 : map_rc(s, rc, what);
    sqlite3_reset(st);
    return r;
}

/* see store_sqlite_blocklist.h */
void kv_sqlite_get_text(sqlite3_stmt *st, int col, char *dst, size_t cap)
{
    const unsigned char *src = sqlite3_column_text(st, col);
    snprintf(dst, cap, "%s", src != NULL ? (const char *)src : "");
}

/* The card columns (CARD_COLS) from column c0 on. */
static void read_card(sqlite3_stmt *st, int c0, kv_card_state *out)
{
    kv_card_policy *p = &out->policy;
    kv_sqlite_get_text(st, c0, out->pan_masked, sizeof(out->pan_masked));
    p->ecommerce_enabled = sqlite3_column_int(st, c0 + 1);
    p->spend_single_max = sqlite3_column_int64(st, c0 + 2);
    p->spend_daily_max = sqlite3_column_int64(st, c0 + 3);
    p->sca_failures = sqlite3_column_int(st, c0 + 4);
    p->contactless.count = sqlite3_column_int64(st, c0 + 5);
    p->contactless.amount = sqlite3_column_int64(st, c0 + 6);
    p->contactless.epoch = sqlite3_column_int64(st, c0 + 7);
    p->remote.count = sqlite3_column_int64(st, c0 + 8);
    p->remote.amount = sqlite3_column_int64(st, c0 + 9);
    p->remote.epoch = sqlite3_column_int64(st, c0 + 10);
    out->pin_failures = sqlite3_column_int(st, c0 + 11);
    out->code_failures = sqlite3_column_int(st, c0 + 12);
    out->has_pvv = sqlite3_column_type(st, c0 + 14) != SQLITE_NULL;
    if (out->has_pvv) {
        out->pvki = sqlite3_column_int(st, c0 + 13);
        kv_sqlite_get_text(st, c0 + 14, out->pvv, sizeof(out->pvv));
    }
    out->has_ibm_offset = sqlite3_column_type(st, c0 + 15) != SQLITE_NULL;
    if (out->has_ibm_offset)
        kv_sqlite_get_text(st, c0 + 15, out->ibm_offset, sizeof(out->ibm_offset));
    out->has_row_mac = sqlite3_column_type(st, c0 + 16) != SQLITE_NULL;
    if (out->has_row_mac) {
        const void *m = sqlite3_column_blob(st, c0 + 16);
        if (m != NULL && sqlite3_column_bytes(st, c0 + 16) == 32)
            memcpy(out->row_mac, m, 32);
        else
            memset(out->row_mac, 0, 32); /* a malformed MAC never verifies */
    }
}

static int sq_card_get(void *impl, const uint8_t token[KV_TOKEN_LEN], kv_card_state *out,
                       int *found)
{
    sq_store *s = impl;
    sqlite3_stmt *st = stmt(s, ST_CARD_GET);
    int rc, r = 0;

    memset(out, 0, sizeof(*out));
    memcpy(out->token, token, KV_TOKEN_LEN);
    kv_card_policy_init(&out->policy);
    *found = 0;
    sqlite3_bind_blob(st, 1, token, KV_TOKEN_LEN, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        read_card(st, 0, out);
        *found = 1;
    } else if (rc != SQLITE_DONE) {
        r = map_rc(s, rc, "read card");
    }
    sqlite3_reset(st);
    return r;
}

static int sq_card_put(void *impl, const kv_card_state *c)
{
    sq_store *s = impl;
    sqlite3_stmt *st = stmt(s, ST_CARD_PUT);
    const kv_card_policy *p = &c->policy;
    sqlite3_bind_blob(st, 1, c->token, KV_TOKEN_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c->pan_masked, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, p->ecommerce_enabled ? 1 : 0);
    sqlite3_bind_int64(st, 4, p->spend_single_max);
    sqlite3_bind_int64(st, 5, p->spend_daily_max);
    sqlite3_bind_int(st, 6, p->sca_failures);
    sqlite3_bind_int64(st, 7, p->contactless.count);
    sqlite3_bind_int64(st, 8, p->contactless.amount);
    sqlite3_bind_int64(st, 9, p->contactless.epoch);
    sqlite3_bind_int64(st, 10, p->remote.count);
    sqlite3_bind_int64(st, 11, p->remote.amount);
    sqlite3_bind_int64(st, 12, p->remote.epoch);
    sqlite3_bind_int(st, 13, c->pin_failures);
    sqlite3_bind_int(st, 14, c->code_failures);
    if (c->has_pvv) {
        sqlite3_bind_int(st, 15, c->pvki);
        sqlite3_bind_text(st, 16, c->pvv, -1, SQLITE_STATIC);
    }
    if (c->has_ibm_offset)
        sqlite3_bind_text(st, 17, c->ibm_offset, -1, SQLITE_STATIC);
    if (c->has_row_mac)
        sqlite3_bind_blob(st, 18, c->row_mac, 32, SQLITE_STATIC);
    return step_done(s, st, "write card");
}

static int sq_card_scan(void *impl, int (*cb)(void *ctx, const kv_card_state *c), void *ctx)
{
    sq_store *s = impl;
    sqlite3_stmt *st = stmt(s, ST_CARD_SCAN);
    kv_card_state c;
    int rc, r = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const void *tok = sqlite3_column_blob(st, 0);
        memset(&c, 0, sizeof(c));
        kv_card_policy_init(&c.policy);
        if (tok != NULL && sqlite3_column_bytes(st, 0) == KV_TOKEN_LEN)
            memcpy(c.token, tok, KV_TOKEN_LEN);
        read_card(st, 1, &c);
        if ((r = cb(ctx, &c)) != 0)
            break;
    }
    if (r == 0 && rc != SQLITE_DONE)
        r = map_rc(s, rc, "scan cards");
    sqlite3_reset(st);
    return r > 0 ? 0 : r;
}

static int sq_request_get(void *impl, const uint8_t key[32], char **answer, kv_request_meta *m,
                          int *found)
{
    sq_store *s = impl;
    sqlite3_stmt *st = stmt(s, ST_REQ_GET);
    int rc, r = 0;
    *answer = NULL;
    *found = 0;
    sqlite3_bind_blob(st, 1, key, 32, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *a = sqlite3_column_text(st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        if ((*answer = malloc(n + 1)) == NULL) {
            r = KV_ERR_NOMEM;
        } else {
            if (n > 0 && a != NULL)
                memcpy(*answer, a, n);
            (*answer)[n] = '\0';
            *found = 1;
            m->at = sqlite3_column_int64(st, 1);
            m->has_mac = sqlite3_column_type(st, 2) != SQLITE_NULL;
            if (m->has_mac && sqlite3_column_bytes(st, 2) == 32)
                memcpy(m->mac, sqlite3_column_blob(st, 2), 32);
        }
    } else if (rc != SQLITE_DONE) {
        r = map_rc(s, rc, "read request id");
    }
    sqlite3_reset(st);
    return r;
}

static int sq_request_put(void *impl, const uint8_t key[32], const char *answer,
                          const kv_request_meta *m)
{
    sq_store *s = impl;
    sqlite3_stmt *st = stmt(s, ST_REQ_PUT);
    sqlite3_bind_blob(st, 1, key, 32, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, answer, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, m->at);
    if (m->has_mac)
        sqlite3_bind_blob(st, 4, m->mac, 32, SQLITE_STATIC);
    return step_done(s, st, "write request id");
}

static int sq_meta_get(void *impl, const char *name, char *val, size_t cap, int *found)
{
    sq_store *s = impl;
    sqlite3_stmt *st = stmt(s, ST_META_GET);
    int rc, r = 0;
    *found = 0;
    if (cap > 0)
        val[0] = '\0';
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        kv_sqlite_get_text(st, 0, val, cap);
        *found = 1;
    } else if (rc != SQLITE_DONE) {
        r = map_rc(s, rc, "read meta");
    }
    sqlite3_reset(st);
    return r;
}

static int sq_meta_put(void *impl, const char *name, const char *val)
{
    sq_store *s = impl;
    sqlite3_stmt *st = stmt(s, ST_META_PUT);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, val, -1, SQLITE_STATIC);
    return step_done(s, st, "write meta");
}

static int sq_row_mac_any(void *impl, int *any)
{
    sq_store *s = impl;
    sqlite3_stmt *st = stmt(s, ST_ROW_MAC_ANY);
    int rc, r = 0;
    *any = 0;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *any = sqlite3_column_int(st, 0) != 0;
    else
        r = map_rc(s, rc, "read row MACs");
    sqlite3_reset(st);
    return r;
}

static int sq_day_sum(void *impl, const uint8_t token[KV_TOKEN_LEN], const char *day,
                      kv_day_kind kind, int64_t *sum)
{
    sq_store *s = impl;
    sqlite3_stmt *st = stmt(s, ST_DAY_SUM);
    int rc, r = 0;
    *sum = 0;
    sqlite3_bind_blob(st, 1, token, KV_TOKEN_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, day, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, (int)kind);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *sum = sqlite3_column_int64(st, 0);
    else if (rc != SQLITE_DONE)
        r = map_rc(s, rc, "read daily sum");
    sqlite3_reset(st);
    return r;
}

static int sq_day_add(void *impl, const uint8_t token[KV_TOKEN_LEN], const char *day,
                      kv_day_kind kind, int64_t delta)
{
    sq_store *s = impl;
    sqlite3_stmt *st = stmt(s, ST_DAY_ADD);
    sqlite3_bind_blob(st, 1, token, KV_TOKEN_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, day, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, (int)kind);
    sqlite3_bind_int64(st, 4, delta);
    return step_done(s, st, "update daily sum");
}

static int sq_code_use(void *impl, const uint8_t hash[32], int64_t at, int *fresh)
{
    sq_store *s = impl;
    sqlite3_stmt *st = stmt(s, ST_CODE_USE);
    int r;
    sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, at);
    if ((r = step_done(s, st, "record authentication code")) != 0)
        return r;
    *fresh = sqlite3_changes(s->db) == 1;
    return 0;
}

static int sq_series_first(void *impl, const uint8_t token[KV_TOKEN_LEN], const char *series,
                           int64_t amount, const char *payee, int *found)
{
    sq_store *s = impl;
    sqlite3_stmt *st = stmt(s, ST_SERIES_FIRST);
    int rc, r = 0;
    sqlite3_bind_blob(st, 1, token, KV_TOKEN_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, series, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, amount);
    sqlite3_bind_text(st, 4, payee, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    *found = rc == SQLITE_ROW;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        r = map_rc(s, rc, "read recurring series");
    sqlite3_reset(st);
    return r;
}

static int sq_txn_put(void *impl, const kv_txn *t)
{
    sq_store *s = impl;
    sqlite3_stmt *st = stmt(s, ST_TXN_PUT);
    sqlite3_bind_int64(st, 1, t->id);
    sqlite3_bind_blob(st, 2, t->token, KV_TOKEN_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, t->at);
    sqlite3_bind_text(st, 4, t->day, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, kv_channel_name(t->channel), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, t->amount);
    sqlite3_bind_text(st, 7, t->payee, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, t->mcc, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, kv_decision_name(t->decision), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, t->reason, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 11, t->sca_satisfied ? 1 : 0);
    sqlite3_bind_int(st, 12, (int)t->family);
    sqlite3_bind_int64(st, 13, t->epoch);
    sqlite3_bind_int(st, 14, t->atm ? 1 : 0);
    sqlite3_bind_int(st, 15, t->gambling ? 1 : 0);
    if (t->has_series)
        sqlite3_bind_text(st, 16, t->series, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 16);
    sqlite3_bind_int(st, 17, t->series_first ? 1 : 0);
    sqlite3_bind_int(st, 18, t->reversed ? 1 : 0);
    return step_done(s, st, "write transaction");
}

static void read_txn(sqlite3_stmt *st, kv_txn *t)
{
    const void *tok = sqlite3_column_blob(st, 1);
    const char *ch = (const char *)sqlite3_column_text(st, 4);
    const char *dec = (const char *)sqlite3_column_text(st, 8);
    memset(t, 0, sizeof(*t));
    t->id = sqlite3_column_int64(st, 0);
    if (tok != NULL && sqlite3_column_bytes(st, 1) == KV_TOKEN_LEN)
        memcpy(t->token, tok, KV_TOKEN_LEN);
    t->at = sqlite3_column_int64(st, 2);
    kv_sqlite_get_text(st, 3, t->day, sizeof(t->day));
    if (ch == NULL || kv_channel_parse(ch, &t->channel) != 0)
        t->channel = KV_CH_CONTACT;
    t->amount = sqlite3_column_int64(st, 5);
    kv_sqlite_get_text(st, 6, t->payee, sizeof(t->payee));
    kv_sqlite_get_text(st, 7, t->mcc, sizeof(t->mcc));
    t->decision = kv_decision_from_name(dec);
    kv_sqlite_get_text(st, 9, t->reason, sizeof(t->reason));
    t->sca_satisfied = sqlite3_column_int(st, 10);
    t->family = (kv_family)sqlite3_column_int(st, 11);
    t->epoch = sqlite3_column_int64(st, 12);
    t->atm = sqlite3_column_int(st, 13);
    t->gambling = sqlite3_column_int(st, 14);
    t->has_series = sqlite3_column_type(st, 15) != SQLITE_NULL;
    kv_sqlite_get_text(st, 15, t->series, sizeof(t->series));
    t->series_first = sqlite3_column_int(st, 16);
    t->reversed = sqlite3_column_int(st, 17);
}

static int sq_txn_get(void *impl, int64_t id, kv_txn *t, int *found)
{
    sq_store *s = impl;
    sqlite3_stmt *st = stmt(s, ST_TXN_GET);
    int rc, r = 0;
    *found = 0;
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        read_txn(st, t);
        *found = 1;
    } else if (rc != SQLITE_DONE) {
        r = map_rc(s, rc, "read transaction");
    }
    sqlite3_reset(st);
    return r;
}

static int sq_txn_set_reversed(void *impl, int64_t id)
{
    sq_store *s = impl;
    sqlite3_stmt *st = stmt(s, ST_TXN_REVERSED);
    sqlite3_bind_int64(st, 1, id);
    return step_done(s, st, "mark transaction reversed");
}

static int sq_txn_scan_card(void *impl, const uint8_t token[KV_TOKEN_LEN], int limit, kv_txn_cb cb,
                            void *ctx)
{
    sq_store *s = impl;
    sqlite3_stmt *st = stmt(s, ST_TXN_SCAN_CARD);
    kv_txn t;
    int rc, r = 0;
    sqlite3_bind_blob(st, 1, token, KV_TOKEN_LEN, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, limit > 0 ? limit : -1);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        read_txn(st, &t);
        if ((r = cb(ctx, &t)) != 0)
            break;
    }
    if (r == 0 && rc != SQLITE_DONE)
        r = map_rc(s, rc, "scan transactions");
    sqlite3_reset(st);
    return r > 0 ? 0 : r;
}

static int sq_evidence_head(void *impl, int64_t *id, uint8_t hash[32])
{
    sq_store *s = impl;
    sqlite3_stmt *st = stmt(s, ST_EV_HEAD);
    int rc, r = 0;
    *id = 0;
    memset(hash, 0, 32);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        if (sqlite3_column_bytes(st, 1) == 32)
            memcpy(hash, sqlite3_column_blob(st, 1), 32);
        else
            r = KV_ERR_EVIDENCE_BROKEN;
    } else if (rc != SQLITE_DONE) {
        r = map_rc(s, rc, "read evidence head");
    }
    sqlite3_reset(st);
    return r;
}

static int sq_evidence_put(void *impl, const kv_evidence_row *e)
{
    sq_store *s = impl;
    sqlite3_stmt *st = stmt(s, ST_EV_PUT);
    sqlite3_bind_int64(st, 1, e->id);
    sqlite3_bind_int64(st, 2, e->time);
    sqlite3_bind_text(st, 3, e->body, (int)e->body_len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, e->hash, 32, SQLITE_STATIC);
    sqlite3_bind_blob(st, 5, e->mac, 32, SQLITE_STATIC);
    return step_done(s, st, "append evidence");
}

/* Copy the current row; the body is malloc'ed. Wrong-sized hash/mac stay zero. */
static int read_evidence(sqlite3_stmt *st, kv_evidence_row *e)
{
    const unsigned char *body = sqlite3_column_text(st, 2);
    int n = sqlite3_column_bytes(st, 2);
    memset(e, 0, sizeof(*e));
    e->id = sqlite3_column_int64(st, 0);
    e->time = sqlite3_column_int64(st, 1);
    if ((e->body = malloc((size_t)n + 1)) == NULL)
        return KV_ERR_NOMEM;
    if (n > 0)
        memcpy(e->body, body, (size_t)n);
    e->body[n] = '\0';
    e->body_len = (size_t)n;
    if (sqlite3_column_bytes(st, 3) == 32)
        memcpy(e->hash, sqlite3_column_blob(st, 3), 32);
    if (sqlite3_column_bytes(st, 4) == 32)
        memcpy(e->mac, sqlite3_column_blob(st, 4), 32);
    return 0;
}

static int sq_evidence_get(void *impl, int64_t id, kv_evidence_row *e, int *found)
{
    sq_store *s = impl;
    sqlite3_stmt *st = stmt(s, ST_EV_GET);
    int rc, r = 0;
    *found = 0;
    memset(e, 0, sizeof(*e));
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if ((r = read_evidence(st, e)) == 0)
            *found = 1;
    } else if (rc != SQLITE_DONE) {
        r = map_rc(s, rc, "read evidence");
    }
    sqlite3_reset(st);
    return r;
}

static int sq_evidence_scan(void *impl, int64_t id_from, int64_t t_from, int64_t t_to,
                            kv_evidence_cb cb, void *ctx)
{
    sq_store *s = impl;
    /* its own statement: a callback may call evidence_get */
    sqlite3_stmt *st = stmt(s, ST_EV_SCAN);
    kv_evidence_row e;
    int rc, r = 0;
    sqlite3_bind_int64(st, 1, id_from);
    sqlite3_bind_int64(st, 2, t_from);
    sqlite3_bind_int64(st, 3, t_to);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((r = read_evidence(st, &e)) != 0)
            break;
        r = cb(ctx, &e);
        kv_evidence_row_clear(&e);
        if (r != 0)
            break;
    }
    if (r == 0 && rc != SQLITE_DONE)
        r = map_rc(s, rc, "scan evidence");
    sqlite3_reset(st);
    return r > 0 ? 0 : r;
}

static int sq_checkpoint_external(void *impl)
{
    return exec(impl, "PRAGMA wal_autocheckpoint=0", "checkpoint=external");
}

static int sq_checkpoint(void *impl)
{
    sq_store *s = impl;
    int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    /* BUSY: another checkpoint runs; the next call catches up */
    return rc == SQLITE_OK || rc == SQLITE_BUSY ? 0 : map_rc(s, rc, "checkpoint");
}

static int sq_synchronous(void *impl, int *level)
{
    sq_store *s = impl;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "PRAGMA synchronous", -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        *level = sqlite3_column_int(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : map_rc(s, rc, "PRAGMA synchronous");
}

static const kv_store_ops sqlite_ops = {
    .name = "sqlite",
    .close = sq_close,
    .last_error = sq_last_error,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .card_get = sq_card_get,
    .card_put = sq_card_put,
    .day_sum = sq_day_sum,
    .day_add = sq_day_add,
    .code_use = sq_code_use,
    .series_first = sq_series_first,
    .txn_put = sq_txn_put,
    .txn_get = sq_txn_get,
    .txn_set_reversed = sq_txn_set_reversed,
    .txn_scan_card = sq_txn_scan_card,
    .evidence_head = sq_evidence_head,
    .evidence_put = sq_evidence_put,
    .evidence_get = sq_evidence_get,
    .evidence_scan = sq_evidence_scan,
    .blocklist = &kv_sqlite_blocklist_ops,
    .checkpoint_external = sq_checkpoint_external,
    .checkpoint = sq_checkpoint,
    .request_get = sq_request_get,
    .request_put = sq_request_put,
    .card_scan = sq_card_scan,
    .meta_get = sq_meta_get,
    .meta_put = sq_meta_put,
    .row_mac_any = sq_row_mac_any,
    .synchronous = sq_synchronous,
};

/* see store_sqlite_blocklist.h */
sqlite3 *kv_sqlite_db(void *impl)
{
    return ((sq_store *)impl)->db;
}

/* see store_sqlite_blocklist.h */
int kv_sqlite_fail(void *impl, int rc, const char *what)
{
    return map_rc(impl, rc, what);
}

/* Bring the schema to KV_STORE_SCHEMA_VERSION in one write transaction. */
static int migrate(sq_store *s)
{
    int r, rc, version = 0;
    sqlite3_stmt *st = NULL;
    const int target = (int)(sizeof(migrations) / sizeof(migrations[0]));
    char sql[128];

    if ((r = exec(s, "BEGIN IMMEDIATE", "begin migration")) != 0)
        return r;
    if ((r = exec(s, "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)",
                  "create schema_version")) != 0)
        goto out;
    rc = sqlite3_prepare_v2(s->db, "SELECT max(version) FROM schema_version", -1, &st, NULL);
    if (rc != SQLITE_OK) {
        r = map_rc(s, rc, "read schema version");
        goto out;
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    else if (rc != SQLITE_DONE) {
        r = map_rc(s, rc, "read schema version");
        goto out;
    }
    if (version > target) {
        snprintf(s->err, sizeof(s->err),
                 "the store has schema version %d; this kortvagt knows up to %d", version, target);
        r = KV_ERR_STORE_SCHEMA;
        goto out;
    }
    for (int v = version; v < target; v++) {
        if ((r = exec(s, migrations[v], "migrate schema")) != 0)
            goto out;
    }
    if (version < target) {
        snprintf(sql, sizeof(sql),
                 "DELETE FROM schema_version; INSERT INTO schema_version "
                 "VALUES (%d)",
                 target);
        if ((r = exec(s, sql, "write schema version")) != 0)
            goto out;
    }
    r = 0;
out:
    sqlite3_finalize(st);
    if (r == 0)
        r = exec(s, "COMMIT", "commit migration");
    if (r != 0)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return r;
}

int kv_store_open_sqlite(const char *path, kv_sqlite_sync sync, kv_store **out, char *err,
                         size_t errlen)
{
    int r = KV_ERR_INTERNAL, rc;
    sq_store *s = NULL;

    *out = NULL;
    if ((s = calloc(1, sizeof(*s))) == NULL) {
        r = KV_ERR_NOMEM;
        goto out;
    }
    s->wlock_fd = -1;
    if (strcmp(path, ":memory:") != 0) {
        char lock[4200];
        int fd, n = snprintf(lock, sizeof(lock), "%s-wlock", path);
        /*
         * A new database file is created here, 0600 whatever the umask: SQLite
         * creates the -wal and -shm files with the database file's mode. An
         * existing file keeps its mode (the operator's choice). O_EXCL never
         * follows a symbolic link.
         */
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd >= 0) {
            if (fchmod(fd, 0600) != 0) {
                snprintf(s->err, sizeof(s->err), "%.200s: cannot set mode 0600", path);
                close(fd);
                r = KV_ERR_STORE_UNAVAILABLE;
                goto out;
            }
            close(fd);
        }
        if (n > 0 && (size_t)n < sizeof(lock)) {
            s->wlock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
            if (s->wlock_fd < 0 && errno == ELOOP) {
                snprintf(s->err, sizeof(s->err),
                         "%.180s-wlock: the lock file is a symbolic link; refused", path);
                r = KV_ERR_STORE_UNAVAILABLE;
                goto out;
            }
        }
    }
    rc = sqlite3_open_v2(path, &s->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        r = map_rc(s, rc, path);
        r = KV_ERR_STORE_UNAVAILABLE;
        goto out;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_handler(s->db, busy_handler, s);
    /*
     * WAL: readers never block the writer. FULL (the default) syncs the WAL
     * on every commit and survives power loss; NORMAL survives application
     * crashes but may lose the newest decisions on power loss.
     */
    if ((r = exec(s, "PRAGMA journal_mode=WAL", path)) != 0)
        goto out;
    if ((r = exec(s,
                  sync == KV_SQLITE_SYNC_FULL ? "PRAGMA synchronous=FULL"
                                              : "PRAGMA synchronous=NORMAL",
                  path)) != 0)
        goto out;
    /*
     * A checkpoint syncs the WAL and the database file even at NORMAL; the
     * hot pages (cards, day sums) change with every decision, so checkpoint
     * every 8000 pages (about 32 MB of WAL) rather than SQLite's 1000, and
     * trim the WAL back to 64 MB afterwards.
     */
    if ((r = exec(s,
                  "PRAGMA foreign_keys=OFF; PRAGMA secure_delete=ON;"
                  " PRAGMA wal_autocheckpoint=8000; PRAGMA journal_size_limit=67108864",
                  path)) != 0)
        goto out;
    if ((r = migrate(s)) != 0)
        goto out;
    for (int i = 0; i < ST__COUNT; i++) {
        rc = sqlite3_prepare_v3(s->db, statements[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i],
                                NULL);
        if (rc != SQLITE_OK) {
            r = map_rc(s, rc, "prepare");
            r = KV_ERR_STORE_SCHEMA;
            goto out;
        }
    }
    if ((r = kv_store_wrap(&sqlite_ops, s, out)) != 0)
        goto out;
    s = NULL; /* transferred */
    r = 0;
out:
    if (s != NULL && err != NULL && errlen > 0)
        snprintf(err, errlen, "%s", s->err[0] ? s->err : kv_strerror(r));
    sq_close(s);
    return r;
}

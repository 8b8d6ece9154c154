/*
 * The PostgreSQL backend's block list (store.h "block list"): private to the
 * backend (store_pg.c, the connection, schema and the other operations, and
 * store_pg_blocklist.c), as store_sqlite_blocklist.h is to SQLite's. Declares
 * what the block-list file needs of the core: statement parameters, result
 * readers and unprepared queries on the store's connection.
 */
#ifndef KV_STORE_STORE_PG_BLOCKLIST_H
#define KV_STORE_STORE_PG_BLOCKLIST_H

#include "src/store/store.h"

/* Migration 1 -> 2: the block-list tables (the columns of SQLite's). */
#define KV_PG_BLOCKLIST_SCHEMA                                                                     \
    "CREATE TABLE blocklist("                                                                      \
    " token bytea PRIMARY KEY NOT NULL, pan_masked text NOT NULL, pan_sealed bytea NOT NULL,"      \
    " reason_sealed bytea NOT NULL, source integer NOT NULL, reminders integer NOT NULL,"          \
    " report integer NOT NULL, expiry_yymm integer NOT NULL, listed_at bigint NOT NULL,"           \
    " expires_at bigint NOT NULL);"                                                                \
    "CREATE TABLE blocklist_wallet("                                                               \
    " wallet_token bytea PRIMARY KEY NOT NULL, card_token bytea NOT NULL,"                         \
    " wallet_masked text NOT NULL, wallet_sealed bytea NOT NULL);"                                 \
    "CREATE INDEX blocklist_wallet_card ON blocklist_wallet(card_token);"                          \
    "CREATE TABLE blocklist_recipients("                                                           \
    " name text PRIMARY KEY NOT NULL, first_at bigint NOT NULL, last_at bigint NOT NULL);"         \
    "CREATE TABLE blocklist_corrections("                                                          \
    " id bigserial PRIMARY KEY, token bytea NOT NULL, pan_masked text NOT NULL,"                   \
    " at bigint NOT NULL, deleted integer NOT NULL, recipients text NOT NULL);"                    \
    "CREATE TABLE blocklist_requests("                                                             \
    " id bigserial PRIMARY KEY, token bytea NOT NULL, pan_masked text NOT NULL,"                   \
    " kind integer NOT NULL, at bigint NOT NULL, due bigint NOT NULL,"                             \
    " answered_at bigint NOT NULL DEFAULT 0);"

#ifdef KV_HAVE_LIBPQ

#include <libpq-fe.h>

#include <stdio.h>
#include <string.h>

extern const kv_bl_ops kv_pg_blocklist_ops;

/* One statement's parameters: text values, bytea values sent in binary. */
typedef struct {
    int n;
    const char *val[18];
    int len[18];
    int fmt[18];
    char num[18][24];
} kv_pg_params;

static inline void kv_pg_param_init(kv_pg_params *p)
{
    memset(p, 0, sizeof(*p));
}

static inline void kv_pg_param_text(kv_pg_params *p, const char *s)
{
    p->val[p->n] = s;
    p->fmt[p->n] = 0;
    p->n++;
}

static inline void kv_pg_param_int(kv_pg_params *p, int64_t v)
{
    snprintf(p->num[p->n], sizeof(p->num[p->n]), "%lld", (long long)v);
    kv_pg_param_text(p, p->num[p->n]);
}

static inline void kv_pg_param_null(kv_pg_params *p)
{
    kv_pg_param_text(p, NULL);
}

static inline void kv_pg_param_bytes(kv_pg_params *p, const uint8_t *b, size_t len)
{
    p->val[p->n] = (const char *)b;
    p->len[p->n] = (int)len;
    p->fmt[p->n] = 1;
    p->n++;
}

/* Decode a bytea column (text output "\\x..." hex) of exactly n bytes into out. */
int kv_pg_get_bytes(const PGresult *res, int row, int col, uint8_t *out, size_t n);
/* A row MAC column: *has 0 when NULL; a malformed one reads as zeros. */
void kv_pg_get_mac(const PGresult *res, int row, int col, int *has, uint8_t mac[32]);
/* A sealed column (61 bytes, or schema 2's 48: keyed.h kv_sealed_load). */
void kv_pg_get_sealed(const PGresult *res, int row, int col, uint8_t out[KV_PAN_SEALED_LEN]);
/* An integer column; 0 when NULL. */
int64_t kv_pg_get_i64(const PGresult *res, int row, int col);
/* A text column into dst (cap bytes, truncated); "" when NULL. */
void kv_pg_get_text(const PGresult *res, int row, int col, char *dst, size_t cap);

/*
 * Run an unprepared statement on the store impl (a pg_store; the block list
 * is not on the decision's hot path); *res is the result when its status is
 * want (PQclear it). Outside a transaction it may reconnect first. Returns 0
 * or a KV_ERR_* with the store's last error set.
 */
int kv_pg_query(void *impl, const char *sql, const kv_pg_params *p, ExecStatusType want,
                PGresult **res, const char *what);
/* The same for a statement that returns no rows. */
int kv_pg_query_done(void *impl, const char *sql, const kv_pg_params *p, const char *what);

#endif

#endif

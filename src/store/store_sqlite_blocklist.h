/*
 * The SQLite backend's block list (store.h "block list"): private to the
 * backend (store_sqlite.c and store_sqlite_blocklist.c).
 */
#ifndef KV_STORE_STORE_SQLITE_BLOCKLIST_H
#define KV_STORE_STORE_SQLITE_BLOCKLIST_H

#include "src/store/store.h"

#include <sqlite3.h>

/* Migration 1 -> 2: the block-list tables. */
#define KV_SQLITE_BLOCKLIST_SCHEMA                                                                 \
    "CREATE TABLE blocklist("                                                                      \
    " token BLOB PRIMARY KEY NOT NULL, pan_masked TEXT NOT NULL, pan_sealed BLOB NOT NULL,"        \
    " reason_sealed BLOB NOT NULL, source INTEGER NOT NULL, reminders INTEGER NOT NULL,"           \
    " report INTEGER NOT NULL, expiry_yymm INTEGER NOT NULL, listed_at INTEGER NOT NULL,"          \
    " expires_at INTEGER NOT NULL) WITHOUT ROWID;"                                                 \
    "CREATE TABLE blocklist_wallet("                                                               \
    " wallet_token BLOB PRIMARY KEY NOT NULL, card_token BLOB NOT NULL,"                           \
    " wallet_masked TEXT NOT NULL, wallet_sealed BLOB NOT NULL) WITHOUT ROWID;"                    \
    "CREATE INDEX blocklist_wallet_card ON blocklist_wallet(card_token);"                          \
    "CREATE TABLE blocklist_recipients("                                                           \
    " name TEXT PRIMARY KEY NOT NULL, first_at INTEGER NOT NULL, last_at INTEGER NOT NULL)"        \
    " WITHOUT ROWID;"                                                                              \
    "CREATE TABLE blocklist_corrections("                                                          \
    " id INTEGER PRIMARY KEY AUTOINCREMENT, token BLOB NOT NULL, pan_masked TEXT NOT NULL,"        \
    " at INTEGER NOT NULL, deleted INTEGER NOT NULL, recipients TEXT NOT NULL);"                   \
    "CREATE TABLE blocklist_requests("                                                             \
    " id INTEGER PRIMARY KEY AUTOINCREMENT, token BLOB NOT NULL, pan_masked TEXT NOT NULL,"        \
    " kind INTEGER NOT NULL, at INTEGER NOT NULL, due INTEGER NOT NULL,"                           \
    " answered_at INTEGER NOT NULL DEFAULT 0);"

extern const kv_bl_ops kv_sqlite_blocklist_ops;

/* The connection of a SQLite store's impl (store_sqlite.c). */
sqlite3 *kv_sqlite_db(void *impl);
/* Record the SQLite failure rc of what as the store's last error; returns its KV_ERR_*. */
int kv_sqlite_fail(void *impl, int rc, const char *what);
/* A text column into dst (cap bytes, truncated); "" when NULL. */
void kv_sqlite_get_text(sqlite3_stmt *st, int col, char *dst, size_t cap);

#endif

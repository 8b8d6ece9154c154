/*
 * The store: one interface, several backends. Everything the policy layer
 * keeps (card state, counters, daily sums, used authentication codes,
 * transactions, the evidence chain) goes through the operations below; no
 * SQL lives outside a backend. SQLite is the embedded default; a PostgreSQL
 * backend implements the same kv_store_ops.
 *
 * URL ($KORTVAGT_STORE, config [store] url):
 * "sqlite:PATH[?synchronous=normal|full][&checkpoint=auto|external]"
 * (default "sqlite:./kortvagt.db"; the file and its schema are created on
 * first use, mode 0600 like its -wal, -shm and -wlock files). synchronous is
 * full by default: a committed decision survives power loss.
 * synchronous=normal is faster but may lose the newest decisions on power
 * loss (they survive an application crash). Or "postgresql://..." / "postgres://..." (a libpq
 * connection URI; kv_store_open_pg below).
 *
 * Transactions: kv_store_begin(s, 1) starts a write transaction that
 * excludes every other writer, in every process, until commit or rollback
 * (SQLite: BEGIN IMMEDIATE, waiting up to the busy timeout; PostgreSQL: a
 * transaction-scoped advisory lock, see store_pg.c). A decision, its
 * counter updates, its transaction row and its evidence record are written
 * in one such transaction, so a crash leaves all or none of them.
 *
 * PANs are never stored: cards are keyed by a 32-byte PAN token (HMAC-SHA256
 * in the HSM, kv_pan_token in keyed.h) and carry only the masked PAN.
 *
 * All functions return 0 or a negative KV_ERR_* (KV_ERR_STORE,
 * KV_ERR_STORE_BUSY after the busy timeout, KV_ERR_STORE_SCHEMA,
 * KV_ERR_STORE_UNAVAILABLE); kv_store_last_error gives the backend's text.
 */
#ifndef KV_STORE_STORE_H
#define KV_STORE_STORE_H

#include "src/base/caltime.h"
#include "src/limits/limits.h"
#include "src/store/keyed.h"

#include <stddef.h>
#include <stdint.h>

#define KV_TOKEN_LEN 32
#define KV_PAN_MASKED_MAX 24
#define KV_PAYEE_MAX 128
#define KV_SERIES_MAX 64

/* The schema version this build writes; older stores are migrated on open. */
#define KV_STORE_SCHEMA_VERSION                                                                    \
    3 /* 2: block list; 3: attempts, reference values, row MACs, request ids */

typedef struct {
    uint8_t token[KV_TOKEN_LEN];
    char pan_masked[KV_PAN_MASKED_MAX];
    kv_card_policy policy;
    /* verification attempts (issue 11; src/attempts): consecutive failures */
    int pin_failures;  /* wrong online PINs verified by kortvagt */
    int code_failures; /* wrong CVC2 / CVC3 */
    /* the issuer's reference values for online PIN verification (card settings, perso) */
    int has_pvv;
    int pvki;    /* 0..9 (6 in practice) */
    char pvv[5]; /* 4 digits */
    int has_ibm_offset;
    char ibm_offset[13]; /* 4..12 digits (IBM 3624 offset) */
    /* the row MAC as read (set by the store; callers ignore it, card_put recomputes it) */
    int has_row_mac;
    uint8_t row_mac[32];
} kv_card_state;

/* Daily sums per card and Copenhagen calendar day. */
typedef enum {
    KV_DAY_TOTAL = 0,    /* every approved amount (child card spend_daily_max) */
    KV_DAY_ATM = 1,      /* ATM cash */
    KV_DAY_GAMBLING = 2, /* MCC 7800, 7801, 7802, 7995 */
} kv_day_kind;

/* One authorization as kept for counters, reversals and recurring series. */
typedef struct {
    int64_t id; /* the evidence id of its decision */
    uint8_t token[KV_TOKEN_LEN];
    int64_t at;
    char day[KV_DAY_TEXT]; /* Copenhagen calendar day of at */
    kv_channel channel;
    int64_t amount;
    char payee[KV_PAYEE_MAX];
    char mcc[5];
    kv_decision decision;
    char reason[32];
    int sca_satisfied;
    kv_family family; /* the counter family it was counted in, or NONE */
    int64_t epoch;    /* that family's counter epoch when counted */
    int atm;          /* counted in KV_DAY_ATM */
    int gambling;     /* counted in KV_DAY_GAMBLING */
    int has_series;
    char series[KV_SERIES_MAX];
    int series_first;
    int reversed;
} kv_txn;

/* One evidence record as stored. */
typedef struct {
    int64_t id;   /* 1, 2, 3, ... without gaps */
    int64_t time; /* the event's time, seconds since the epoch (export range) */
    char *body;   /* the record's exact bytes (JSON text), NUL-terminated */
    size_t body_len;
    uint8_t hash[32]; /* SHA-256 of body */
    uint8_t mac[32];  /* HMAC-SHA256 of body under the HSM's evidence key */
} kv_evidence_row;

/* Free what kv_store_evidence_get put in r (body); r may be zeroed. */
void kv_evidence_row_clear(kv_evidence_row *r);

/*
 * Callback of the scans; the row/txn is borrowed for the call. Return 0 to
 * go on, 1 to stop, a negative KV_ERR_* to stop with that error.
 */
typedef int (*kv_evidence_cb)(void *ctx, const kv_evidence_row *r);
typedef int (*kv_txn_cb)(void *ctx, const kv_txn *t);

/* A stored request id's time and row MAC (backends keep them next to the answer). */
typedef struct {
    int64_t at;
    int has_mac;
    uint8_t mac[32];
} kv_request_meta;

/* Backend operations; impl is the backend's own state. */
typedef struct {
    const char *name;
    void (*close)(void *impl);
    const char *(*last_error)(void *impl);
    int (*begin)(void *impl, int write);
    int (*commit)(void *impl);
    void (*rollback)(void *impl);
    int (*card_get)(void *impl, const uint8_t token[KV_TOKEN_LEN], kv_card_state *out, int *found);
    int (*card_put)(void *impl, const kv_card_state *c);
    int (*day_sum)(void *impl, const uint8_t token[KV_TOKEN_LEN], const char *day, kv_day_kind kind,
                   int64_t *sum);
    int (*day_add)(void *impl, const uint8_t token[KV_TOKEN_LEN], const char *day, kv_day_kind kind,
                   int64_t delta);
    int (*code_use)(void *impl, const uint8_t hash[32], int64_t at, int *fresh);
    int (*series_first)(void *impl, const uint8_t token[KV_TOKEN_LEN], const char *series,
                        int64_t amount, const char *payee, int *found);
    int (*txn_put)(void *impl, const kv_txn *t);
    int (*txn_get)(void *impl, int64_t id, kv_txn *t, int *found);
    int (*txn_set_reversed)(void *impl, int64_t id);
    int (*txn_scan_card)(void *impl, const uint8_t token[KV_TOKEN_LEN], int limit, kv_txn_cb cb,
                         void *ctx);
    int (*evidence_head)(void *impl, int64_t *id, uint8_t hash[32]);
    int (*evidence_put)(void *impl, const kv_evidence_row *r);
    int (*evidence_get)(void *impl, int64_t id, kv_evidence_row *r, int *found);
    int (*evidence_scan)(void *impl, int64_t id_from, int64_t t_from, int64_t t_to,
                         kv_evidence_cb cb, void *ctx);
    /* the block list's operations (section "block list" below); NULL: none */
    const struct kv_bl_ops *blocklist;
    /* WAL checkpoints (SQLite); NULL where the backend has none */
    int (*checkpoint_external)(void *impl);
    int (*checkpoint)(void *impl);
    /* schema 3: request ids, every card (row-MAC adoption), small named values */
    int (*request_get)(void *impl, const uint8_t key[32], char **answer, kv_request_meta *m,
                       int *found);
    int (*request_put)(void *impl, const uint8_t key[32], const char *answer,
                       const kv_request_meta *m);
    int (*card_scan)(void *impl, int (*cb)(void *ctx, const kv_card_state *c), void *ctx);
    int (*meta_get)(void *impl, const char *name, char *val, size_t cap, int *found);
    int (*meta_put)(void *impl, const char *name, const char *val);
    /* *any 1 when some card or block-list row carries a row MAC */
    int (*row_mac_any)(void *impl, int *any);
    /* SQLite: the connection's PRAGMA synchronous (0 off, 1 normal, 2 full); NULL: none */
    int (*synchronous)(void *impl, int *level);
} kv_store_ops;

typedef struct kv_store kv_store;

/*
 * SQLite durability: NORMAL survives application crashes (WAL) but may lose
 * the newest decisions on power loss; FULL (the URL default) also survives
 * power loss.
 */
typedef enum {
    KV_SQLITE_SYNC_NORMAL,
    KV_SQLITE_SYNC_FULL,
} kv_sqlite_sync;

/*
 * Open the store a URL names (NULL: KV_CONFIG_DEFAULT_STORE's
 * "sqlite:./kortvagt.db"), creating and migrating the schema. Returns 0,
 * KV_ERR_ARG (malformed URL; err names it), KV_ERR_UNSUPPORTED (a backend
 * this build lacks), KV_ERR_STORE_SCHEMA (written by a newer kortvagt) or
 * KV_ERR_STORE_UNAVAILABLE. err (may be NULL) receives the reason.
 */
int kv_store_open(const char *url, kv_store **out, char *err, size_t errlen);

/*
 * WAL checkpoints. SQLite checkpoints on commit by default, and a checkpoint
 * syncs the database file: the commit that happens to run it waits for that.
 * A service leaves it to a process of its own instead:
 * kv_store_checkpoint_external (the URL option checkpoint=external) stops
 * checkpointing on commit for this connection, and kv_store_checkpoint runs
 * one PASSIVE checkpoint (it never blocks a writer). Both return 0 and do
 * nothing on a backend without checkpoints (PostgreSQL).
 */
int kv_store_checkpoint_external(kv_store *s);
int kv_store_checkpoint(kv_store *s);

/*
 * The SQLite connection's PRAGMA synchronous (1 NORMAL, 2 FULL); for tests
 * of the URL default. KV_ERR_UNSUPPORTED on other backends.
 */
int kv_store_sqlite_synchronous(kv_store *s, int *level);

/* Open an SQLite store file directly (tests, benchmarks). */
int kv_store_open_sqlite(const char *path, kv_sqlite_sync sync, kv_store **out, char *err,
                         size_t errlen);

/*
 * Open a PostgreSQL store by libpq connection URI ("postgresql://user@host:port/db").
 * The schema is created or migrated under an advisory lock. Returns as
 * kv_store_open; KV_ERR_UNSUPPORTED when built without KV_WITH_POSTGRESQL.
 * A write transaction holds the store-wide chain lock (see store_pg.c); a
 * broken connection gives KV_ERR_STORE_UNAVAILABLE and is re-opened by the
 * next kv_store_begin.
 */
int kv_store_open_pg(const char *url, kv_store **out, char *err, size_t errlen);

/* Wrap a backend's ops and state (the backends' constructors use this). */
int kv_store_wrap(const kv_store_ops *ops, void *impl, kv_store **out);

/* Close; NULL is a no-op. An open transaction is rolled back. */
void kv_store_close(kv_store *s);

const char *kv_store_backend(const kv_store *s);
/* The backend's text for the last failure ("" if none). */
const char *kv_store_last_error(const kv_store *s);

/* Transactions: write = 1 takes the exclusive write lock at once. */
int kv_store_begin(kv_store *s, int write);
int kv_store_commit(kv_store *s);
/* Roll back; a no-op outside a transaction. */
void kv_store_rollback(kv_store *s);

/*
 * Row MACs (issue 11): card-state rows and block-list entries carry an
 * HMAC-SHA256 (under the HSM key "state-mac") over their content and token.
 * With a row MAC set, every card_put / bl_put writes it and every card_get /
 * bl_get / bl_listed checks it: a row whose MAC fails gives
 * KV_ERR_STORE_TAMPERED (the policy declines "store_tampered"). Without one
 * (unit tests of other modules) rows carry no MAC and none is checked.
 * m is copied; its ctx is borrowed.
 *
 * The MAC input is a fixed, length-prefixed encoding of every column of the
 * row, the token (primary key) included, after a per-table domain string, so
 * a row moved to another token, a counter reset or a field edited in the
 * database file all fail. What a row MAC cannot see is a deleted row: a
 * deleted card row reads as a card never seen (counters zero); for the
 * block list see "Deleted rows" below.
 *
 * Rows without a MAC (a store migrated from schema 2, or rows written while
 * no row MAC was set): kv_store_set_row_mac_adopt, called once the MAC is
 * set, MACs them in one write transaction, but only while the store holds
 * no MAC'd row at all (the first open with the key after the upgrade). From
 * then on a row without a MAC is tampered like a row whose MAC fails.
 * Returns 0 or a store error (rows without a MAC next to MAC'd rows stay
 * tampered: they are not adopted).
 *
 * Deleted rows of the block list: its rows are also MAC'd as a set (meta
 * "bl_digest": their number and the XOR of a hash of each row's key and MAC,
 * with an HMAC), updated by every put and delete through the store and
 * recomputed from the rows by kv_store_set_row_mac_adopt at every open with
 * the key. A block-list row deleted, added or re-keyed in the database file
 * makes every block-list read of that connection KV_ERR_STORE_TAMPERED
 * (kv_store_bl_tampered 1). A daemon worker notices at its next open. Card
 * rows have no such digest (there are many and they change with every
 * decision): a deleted card row reads as a new card.
 */
void kv_store_set_row_mac(kv_store *s, const kv_mac *m);
int kv_store_set_row_mac_adopt(kv_store *s);
/* 1 when the open found the block list's rows changed behind the store's back. */
int kv_store_bl_tampered(const kv_store *s);

/* The row MAC inputs (exposed for tests); return the encoded length (<= cap) or 0. */
size_t kv_store_card_mac_input(const kv_card_state *c, uint8_t *buf, size_t cap);

/*
 * Idempotent authorizations: a request_id (scoped by the caller, e.g.
 * SHA-256 of client identity || request_id) keyed to the answer stored with
 * the decision, in the decision's own write transaction. *found 0 when the
 * key is new; *answer (malloc'ed, NUL-terminated JSON text) otherwise. With a
 * row MAC set the stored answer carries one too (over key, answer and time):
 * an answer changed in the database gives KV_ERR_STORE_TAMPERED.
 */
int kv_store_request_get(kv_store *s, const uint8_t key[32], char **answer, int *found);
int kv_store_request_put(kv_store *s, const uint8_t key[32], const char *answer, int64_t at);

/*
 * Card state by token. A card never seen gets kv_card_policy_init's state,
 * pan_masked "" and *found 0 (found may be NULL).
 */
int kv_store_card_get(kv_store *s, const uint8_t token[KV_TOKEN_LEN], kv_card_state *out,
                      int *found);
/* Insert or replace the card's state. */
int kv_store_card_put(kv_store *s, const kv_card_state *c);

/* The day's sum of one kind for a card (0 when none); add delta (may be negative). */
int kv_store_day_sum(kv_store *s, const uint8_t token[KV_TOKEN_LEN], const char *day,
                     kv_day_kind kind, int64_t *sum);
int kv_store_day_add(kv_store *s, const uint8_t token[KV_TOKEN_LEN], const char *day,
                     kv_day_kind kind, int64_t delta);

/*
 * Record the use of an authentication code by its 32-byte hash (unique):
 * *fresh is 1 the first time, 0 when the code was used before.
 */
int kv_store_code_use(kv_store *s, const uint8_t hash[32], int64_t at, int *fresh);

/*
 * *found 1 when the card has the first payment of series with this amount
 * and payee, approved with SCA and not reversed (RTS Art. 14).
 */
int kv_store_series_first(kv_store *s, const uint8_t token[KV_TOKEN_LEN], const char *series,
                          int64_t amount, const char *payee, int *found);

int kv_store_txn_put(kv_store *s, const kv_txn *t);
/* *found 0 when there is no transaction id. */
int kv_store_txn_get(kv_store *s, int64_t id, kv_txn *t, int *found);
int kv_store_txn_set_reversed(kv_store *s, int64_t id);
/* The card's transactions, newest first, at most limit (<= 0: all). */
int kv_store_txn_scan_card(kv_store *s, const uint8_t token[KV_TOKEN_LEN], int limit, kv_txn_cb cb,
                           void *ctx);

/* The last evidence record's id and hash; id 0 and hash zero when there is none. */
int kv_store_evidence_head(kv_store *s, int64_t *id, uint8_t hash[32]);
/* Append a record (the store refuses updates and deletes of records). */
int kv_store_evidence_put(kv_store *s, const kv_evidence_row *r);
/* Load one record; r->body is malloc'ed (kv_evidence_row_clear). */
int kv_store_evidence_get(kv_store *s, int64_t id, kv_evidence_row *r, int *found);
/* Records with id >= id_from and t_from <= time < t_to, by id. */
int kv_store_evidence_scan(kv_store *s, int64_t id_from, int64_t t_from, int64_t t_to,
                           kv_evidence_cb cb, void *ctx);

/* ==================== block list (src/RULES.md §3; owner: src/blocklist) ====================
 *
 * The issuer's block list (spærreliste): one entry per listed card, the
 * wallet tokens linked to it, the recipients the list was given to, the
 * corrections sent to them, and the cardholders' access requests and
 * objections. Like cards, entries are keyed by the PAN token; the number
 * itself is kept only sealed for the export (the block layout of
 * kv_pan_seal, src/app/keyed_hsm.h, under the AES key "pan-enc"), and the
 * reason only sealed the same way, so the store holds no clear PAN and no
 * clear reason.
 *
 * A backend implements kv_bl_ops and points kv_store_ops.blocklist at
 * it; without it the kv_store_bl_* wrappers return KV_ERR_UNSUPPORTED.
 * Reference schema (SQLite migration 1 -> 2, store_sqlite_blocklist.c;
 * other backends keep the same columns):
 *   blocklist(token PK, pan_masked, pan_sealed, reason_sealed, source,
 *             reminders, report, expiry_yymm, listed_at, expires_at)
 *   blocklist_wallet(wallet_token PK, card_token, wallet_masked, wallet_sealed)
 *   blocklist_recipients(name PK, first_at, last_at)
 *   blocklist_corrections(id PK autoincrement, token, pan_masked, at, deleted,
 *             recipients)
 *   blocklist_requests(id PK autoincrement, token, pan_masked, kind, at, due,
 *             answered_at)
 * Deleting an entry deletes its wallet tokens; requests and corrections stay
 * (they hold the token and the masked PAN only).
 */
#define KV_BL_SEALED_LEN 61 /* == KV_PAN_SEALED_LEN (keyed.h) */
#define KV_BL_NAME_MAX 128
#define KV_BL_TEXT_MAX 1024

typedef enum {
    KV_BL_SOURCE_CARDHOLDER = 0, /* the cardholder asked for the block */
    KV_BL_SOURCE_ISSUER = 1,     /* issuer-initiated (needs the authority's permission) */
} kv_bl_source;

typedef enum {
    KV_BL_REPORT_NONE = 0,      /* no report by the cardholder of the card's state */
    KV_BL_REPORT_LOST = 1,      /* the cardholder reported it lost */
    KV_BL_REPORT_STOLEN = 2,    /* ... stolen */
    KV_BL_REPORT_DEFECTIVE = 3, /* ... defective */
    KV_BL_REPORT_DESTROYED = 4, /* ... destroyed */
} kv_bl_report;

typedef struct {
    uint8_t token[KV_TOKEN_LEN]; /* PAN token: the key */
    char pan_masked[KV_PAN_MASKED_MAX];
    uint8_t pan_sealed[KV_BL_SEALED_LEN];    /* the PAN, sealed */
    uint8_t reason_sealed[KV_BL_SEALED_LEN]; /* the reason's name, sealed */
    kv_bl_source source;
    int reminders; /* written reminders that warned of the block */
    kv_bl_report report;
    int expiry_yymm;    /* the card's expiry, e.g. 2612 for December 2026 */
    int64_t listed_at;  /* the block time (a cardholder's report: liability notified_at) */
    int64_t expires_at; /* deleted from this time on: end of the expiry month */
    int has_row_mac;    /* the row MAC as read (set by the store) */
    uint8_t row_mac[32];
} kv_bl_entry;

typedef struct {
    uint8_t wallet_token[KV_TOKEN_LEN]; /* PAN token of the wallet token number */
    uint8_t card_token[KV_TOKEN_LEN];   /* the card it belongs to */
    char wallet_masked[KV_PAN_MASKED_MAX];
    uint8_t wallet_sealed[KV_BL_SEALED_LEN];
    int has_row_mac; /* the row MAC as read (set by the store) */
    uint8_t row_mac[32];
} kv_bl_wallet;

typedef struct {
    char name[KV_BL_NAME_MAX];
    int64_t first_at; /* first time it received the list */
    int64_t last_at;  /* last time */
} kv_bl_recipient;

typedef struct {
    int64_t id; /* assigned by the store */
    uint8_t token[KV_TOKEN_LEN];
    char pan_masked[KV_PAN_MASKED_MAX];
    int64_t at;
    int deleted; /* 1: the entry was deleted as wrong; 0: its reason was corrected */
    char recipients[KV_BL_TEXT_MAX]; /* names it was sent to, "; "-separated */
} kv_bl_correction;

typedef enum {
    KV_BL_REQUEST_ACCESS = 0,    /* the right of access */
    KV_BL_REQUEST_OBJECTION = 1, /* objection to the registration */
} kv_bl_request_kind;

typedef struct {
    int64_t id; /* assigned by the store */
    uint8_t token[KV_TOKEN_LEN];
    char pan_masked[KV_PAN_MASKED_MAX];
    kv_bl_request_kind kind;
    int64_t at;          /* received */
    int64_t due;         /* answer due (at + 4 weeks) */
    int64_t answered_at; /* 0: not answered */
} kv_bl_request;

/* Scan callbacks: the row is borrowed; return 0 go on, 1 stop, < 0 stop with that error. */
typedef int (*kv_bl_entry_cb)(void *ctx, const kv_bl_entry *e);
typedef int (*kv_bl_wallet_cb)(void *ctx, const kv_bl_wallet *w);
typedef int (*kv_bl_recipient_cb)(void *ctx, const kv_bl_recipient *r);
typedef int (*kv_bl_correction_cb)(void *ctx, const kv_bl_correction *c);
typedef int (*kv_bl_request_cb)(void *ctx, const kv_bl_request *q);

typedef struct kv_bl_ops {
    int (*put)(void *impl, const kv_bl_entry *e); /* insert or replace by token */
    int (*get)(void *impl, const uint8_t token[KV_TOKEN_LEN], kv_bl_entry *e, int *found);
    int (*del)(void *impl, const uint8_t token[KV_TOKEN_LEN]); /* + its wallet tokens */
    int (*scan)(void *impl, kv_bl_entry_cb cb, void *ctx);     /* by listed_at, token */
    int (*listed)(void *impl, const uint8_t token[KV_TOKEN_LEN], int *listed);
    int (*wallet_put)(void *impl, const kv_bl_wallet *w); /* insert or replace */
    int (*wallet_scan)(void *impl, const uint8_t card_token[KV_TOKEN_LEN], kv_bl_wallet_cb cb,
                       void *ctx);
    int (*recipient_put)(void *impl, const char *name, int64_t at);
    int (*recipient_scan)(void *impl, kv_bl_recipient_cb cb, void *ctx);
    int (*correction_put)(void *impl, kv_bl_correction *c);
    int (*correction_scan)(void *impl, kv_bl_correction_cb cb, void *ctx);
    int (*request_put)(void *impl, kv_bl_request *q);
    int (*request_answer)(void *impl, int64_t id, int64_t at, int *found);
    int (*request_scan)(void *impl, kv_bl_request_cb cb, void *ctx);
    /* the wallet link of wallet_token (*found 0: none); for the row-MAC check of listed */
    int (*wallet_get)(void *impl, const uint8_t wallet_token[KV_TOKEN_LEN], kv_bl_wallet *w,
                      int *found);
} kv_bl_ops;

/* Insert or replace the entry with e->token. */
int kv_store_bl_put(kv_store *s, const kv_bl_entry *e);
/* *found 0 (e zeroed) when token is not listed. */
int kv_store_bl_get(kv_store *s, const uint8_t token[KV_TOKEN_LEN], kv_bl_entry *e, int *found);
/* Delete the entry and its wallet tokens; a no-op when absent. */
int kv_store_bl_delete(kv_store *s, const uint8_t token[KV_TOKEN_LEN]);
/* Every entry, by listed_at then token. */
int kv_store_bl_scan(kv_store *s, kv_bl_entry_cb cb, void *ctx);
/* The hot-card check: *listed 1 when token is a listed card's or a listed wallet token's. */
int kv_store_bl_listed(kv_store *s, const uint8_t token[KV_TOKEN_LEN], int *listed);
/* Link a wallet token to its (listed) card; replaces an earlier link of the same token. */
int kv_store_bl_wallet_put(kv_store *s, const kv_bl_wallet *w);
/* The wallet tokens of card_token (NULL: all), by wallet token. */
int kv_store_bl_wallet_scan(kv_store *s, const uint8_t card_token[KV_TOKEN_LEN], kv_bl_wallet_cb cb,
                            void *ctx);
/* Record that name received the list at time at (first_at kept, last_at = at). */
int kv_store_bl_recipient_put(kv_store *s, const char *name, int64_t at);
/* Every recipient, by name. */
int kv_store_bl_recipient_scan(kv_store *s, kv_bl_recipient_cb cb, void *ctx);
/* Append a correction; c->id receives its id. */
int kv_store_bl_correction_put(kv_store *s, kv_bl_correction *c);
/* Every correction, by id. */
int kv_store_bl_correction_scan(kv_store *s, kv_bl_correction_cb cb, void *ctx);
/* Append a request; q->id receives its id. */
int kv_store_bl_request_put(kv_store *s, kv_bl_request *q);
/* Mark request id answered at time at; *found 0 when there is no such request. */
int kv_store_bl_request_answer(kv_store *s, int64_t id, int64_t at, int *found);
/* Every request, by due then id. */
int kv_store_bl_request_scan(kv_store *s, kv_bl_request_cb cb, void *ctx);

/* ==================== end of block list ==================== */

#endif

/*
 * The issuer's block list (spærreliste), src/RULES.md §3, after Datatilsynet
 * [2] (the data protection authority's page on block lists), Visa/Dankort
 * rules [3] §9/§11.1 and Dankort rules [4] §21 (sources: src/RULES.md).
 *
 * - Issuer-initiated listing needs the authority's permission
 *   ([blocklist] permission = <journal no.>): without it kv_bl_add returns
 *   KV_ERR_PERMISSION. A cardholder's own block request is always taken.
 * - The reason is kept sealed (never in clear in the store) and is never
 *   disclosed: check, export, show and notice do not contain it.
 * - `overdraft` needs at least 2 written reminders that warned of the block.
 * - Wallet tokens linked to a card are listed with it and removed with it;
 *   the hot-card check (kv_bl_hotcard) covers them.
 * - Deletion: at the end of the card's expiry month (kv_bl_purge); at once
 *   when the card is recovered unless listed for suspected_misuse or
 *   suspected_copy (kv_bl_recovered); at once when replaced (kv_bl_replaced)
 *   or wrong (kv_bl_remove, which sends a correction to every recipient).
 * - A written notice is due unless the cardholder reported the card lost,
 *   stolen, defective or destroyed (kv_bl_notice).
 * - Access requests and objections are answered within 4 weeks (28 days).
 * - The block time of a cardholder's report is the liability case's
 *   notified_at (kv_bl_entry.listed_at; `blocklist add`/`show` print it).
 *
 * Every operation runs in its own store write transaction. Times are seconds
 * since the epoch (UTC); calendar rules use Europe/Copenhagen.
 */
#ifndef KV_BLOCKLIST_BLOCKLIST_H
#define KV_BLOCKLIST_BLOCKLIST_H

#include "hsm/p11.h"
#include "src/store/keyed.h"
#include "src/store/store.h"

#include <stddef.h>
#include <stdint.h>

typedef enum {
    KV_BL_LOST = 0,
    KV_BL_STOLEN,
    KV_BL_SUSPECTED_MISUSE,
    KV_BL_SUSPECTED_COPY,
    KV_BL_ACCOUNT_CLOSED,
    KV_BL_RENEWED_NOT_RETURNED,
    KV_BL_OVERDRAFT,
    KV_BL_UNUSUAL_PATTERN,
    KV_BL_CARDHOLDER_REQUEST,
    KV_BL_REASON__COUNT
} kv_bl_reason;

/* The reason's name ("lost", ..., "cardholder_request"); "" for a bad value. */
const char *kv_bl_reason_name(kv_bl_reason r);
/* Parse a reason name. Returns 0 or KV_ERR_ARG. */
int kv_bl_reason_parse(const char *s, kv_bl_reason *out);

/* 1 when only the issuer can list for reason r (the cardholder cannot ask for it). */
int kv_bl_reason_issuer_only(kv_bl_reason r);

/*
 * Parse a card expiry "YYMM" (20YY, month 01..12; exactly 4 digits) into
 * *yymm (e.g. 2612). Returns 0 or KV_ERR_FORMAT.
 */
int kv_bl_expiry_parse(const char *s, int *yymm);

/*
 * The end of the expiry month: the first instant of the next month in
 * Copenhagen (the card is valid through the last day of its month; the entry
 * is deleted from this instant on). yymm as kv_bl_expiry_parse gives.
 * Returns 0 or KV_ERR_ARG.
 */
int kv_bl_expiry_end(int yymm, int64_t *out);

/*
 * The 4-week answer time of a request received at at: the same wall-clock
 * time in Copenhagen 28 calendar days later (an hour less or more across a
 * summer-time change).
 */
int64_t kv_bl_request_due(int64_t at);

/*
 * Parse a time argument: RFC 3339 (kv_time_parse) or "YYYY-MM-DD" (midnight
 * in Copenhagen). Returns 0 or KV_ERR_FORMAT.
 */
int kv_bl_time_parse(const char *s, int64_t *out);

/*
 * Sealing of the 32-byte blocks the store keeps (the PAN, the reason, a
 * wallet token number): seal writes KV_BL_SEALED_LEN bytes (keyed.h: version
 * byte, IV, AES-GCM, tag) with ad as associated data, and unseal reverses it;
 * unseal fails (KV_ERR_FORMAT) when ad differs. ad is the row's PAN token and
 * a letter for the field (KV_BL_AD_LEN bytes), so a sealed value copied into
 * another row, or into another field, does not open. In production the key is
 * "pan-enc" in the HSM (kv_bl_hsm_sealer); the indirection lets unit tests run
 * without one.
 */
#define KV_BL_AD_LEN (KV_TOKEN_LEN + 1)
typedef struct {
    int (*seal)(void *ctx, const uint8_t ad[KV_BL_AD_LEN], const uint8_t in[32],
                uint8_t out[KV_BL_SEALED_LEN]);
    int (*unseal)(void *ctx, const uint8_t ad[KV_BL_AD_LEN], const uint8_t in[KV_BL_SEALED_LEN],
                  uint8_t out[32]);
    void *ctx;
} kv_bl_sealer;

/* An HSM sealer over the AES key aes (both borrowed; they must outlive the sealer). */
typedef struct {
    kv_hsm *h;
    kv_hsm_key aes;
} kv_bl_hsm_sealer;

/*
 * Find KV_KEY_LABEL_PAN_ENC on h into hs; returns 0, KV_ERR_HSM_ROLE (not a
 * pan-enc key) or an HSM error.
 */
int kv_bl_hsm_sealer_init(kv_bl_hsm_sealer *hs, kv_hsm *h);
kv_bl_sealer kv_bl_hsm_sealer_get(kv_bl_hsm_sealer *hs);

/* The engine's collaborators; all borrowed. */
typedef struct {
    kv_store *store;
    kv_mac token_mac;           /* PAN tokens (the HSM's "token" key) */
    kv_bl_sealer seal;          /* PANs and reasons */
    const char *permission;     /* the authority's journal number; NULL or "": none */
    const char *issuer_name;    /* for the notice; NULL: "(udsteder ikke konfigureret)" */
    const char *issuer_address; /* for the notice */
    const char *recipients;     /* standing recipients ("; "-separated), NULL: none */
    const char *authority;      /* the authority's name and address; NULL: KV_BL_AUTHORITY */
} kv_blocklist;

/* The data protection authority as Dankort rules [4] §20 names it ([blocklist] authority
   overrides it). */
#define KV_BL_AUTHORITY "Datatilsynet, Borgergade 28, 5., 1300 København K (dt@datatilsynet.dk)"

#define KV_BL_WALLET_MAX 16

typedef struct {
    const char *pan;
    kv_bl_reason reason;
    kv_bl_source source;
    int reminders;       /* written reminders that warned of the block */
    kv_bl_report report; /* what the cardholder reported (KV_BL_REPORT_NONE: nothing) */
    int expiry_yymm;     /* 0: not given (the entry then waits for recovered, replaced or remove) */
    const char *wallet_tokens[KV_BL_WALLET_MAX];
    size_t n_wallet;
} kv_bl_add_req;

/*
 * Default source for a reason: cardholder for lost, stolen and
 * cardholder_request, issuer otherwise.
 */
kv_bl_source kv_bl_default_source(kv_bl_reason r);

/*
 * List a card (and its wallet tokens) at time now; *out (may be NULL)
 * receives the entry. lost/stolen from the cardholder imply report
 * lost/stolen. Returns 0; KV_ERR_ARG (bad PAN, wallet token, expiry or
 * report; err names it); KV_ERR_PERMISSION (issuer-initiated without the
 * permission); KV_ERR_POLICY (overdraft with fewer than 2 reminders, an
 * issuer-only reason from the cardholder, the card already listed, or a
 * card that has expired); store/HSM errors. err (may be NULL) receives the
 * reason of a refusal.
 */
int kv_bl_add(const kv_blocklist *bl, const kv_bl_add_req *req, int64_t now, kv_bl_entry *out,
              char *err, size_t errlen);

/* *blocked 1 when pan is a listed card or a listed wallet token. KV_ERR_ARG bad PAN. */
int kv_bl_check(const kv_blocklist *bl, const char *pan, int *blocked);

/* The card's entry; *found 0 when it is not listed (a wallet token is not an entry). */
int kv_bl_show(const kv_blocklist *bl, const char *pan, kv_bl_entry *e, int *found);

/* 1 when the cardholder reported the card: listed_at is the liability notified_at. */
int kv_bl_entry_is_report(const kv_bl_entry *e);
/* 1 when a written notice is due for e (not a cardholder's lost/stolen/defective/destroyed report).
 */
int kv_bl_entry_notice_due(const kv_bl_entry *e);

/*
 * The card was recovered or collected: deleted at once unless listed for
 * suspected_misuse or suspected_copy (*deleted 0, kept). KV_ERR_NOT_FOUND
 * when not listed.
 */
int kv_bl_recovered(const kv_blocklist *bl, const char *pan, int *deleted);

/* The card can no longer be used without the block (replaced): deleted at once. */
int kv_bl_replaced(const kv_blocklist *bl, const char *pan);

/*
 * A wrong entry: correct its reason (kv_bl_correct) or delete it
 * (kv_bl_remove); either sends a correction to every recipient of the list
 * (standing recipients and every recipient of an export since the listing),
 * logged with the names. *out (may be NULL) receives the log row. The new
 * reason follows the rules of kv_bl_add (overdraft, issuer-only reasons).
 */
int kv_bl_correct(const kv_blocklist *bl, const char *pan, kv_bl_reason reason, int64_t now,
                  kv_bl_correction *out, char *err, size_t errlen);
int kv_bl_remove(const kv_blocklist *bl, const char *pan, int64_t now, kv_bl_correction *out);

/* Delete every entry whose expiry month has ended at now; *n (may be NULL) how many. */
int kv_bl_purge(const kv_blocklist *bl, int64_t now, int *n);

/*
 * The list for a recipient: every listed card number and wallet token
 * number, one call of cb per number (the number only). When recipient is
 * not NULL it is recorded as having received the list at now.
 */
int kv_bl_export(const kv_blocklist *bl, const char *recipient, int64_t now,
                 int (*cb)(void *ctx, const char *number), void *ctx);

/*
 * The written notice to the cardholder (Danish): issuer name and address,
 * who received the listing, the right of access and the right to complain
 * to Datatilsynet. *text (malloc'ed) is NULL and *due 0 when no notice is
 * due (the cardholder reported the card lost, stolen, defective or
 * destroyed). KV_ERR_NOT_FOUND when not listed.
 */
int kv_bl_notice(const kv_blocklist *bl, const char *pan, int *due, char **text);

/* Record an access request or an objection received at at; *out (may be NULL) the row. */
int kv_bl_request_add(const kv_blocklist *bl, const char *pan, kv_bl_request_kind kind, int64_t at,
                      kv_bl_request *out);
/* Mark request id answered at at; KV_ERR_NOT_FOUND when there is none. */
int kv_bl_request_answer(const kv_blocklist *bl, int64_t id, int64_t at);
/* 1 when q is unanswered and its due time has passed at now. */
int kv_bl_request_overdue(const kv_bl_request *q, int64_t now);
/* Every request (by due date); the row is borrowed. */
int kv_bl_requests(const kv_blocklist *bl, kv_bl_request_cb cb, void *ctx);

/* Every recipient that received the list since the card's listing, plus the standing ones. */
int kv_bl_recipients_of(const kv_blocklist *bl, const kv_bl_entry *e, char *out, size_t cap);

/*
 * The hot-card check: *listed 1 when the card (token: its PAN token) or a
 * wallet token is on the block list of s. A store without a block list lists
 * nothing. ctx and pan are unused. Its signature is that of the authorization
 * engine's hot-card callback (src/authorize/authorize.h kv_hotcard_check),
 * which the composition root (src/app/app.c) points here; the block list
 * itself knows nothing of the authorization.
 */
int kv_bl_hotcard(void *ctx, kv_store *s, const uint8_t token[KV_TOKEN_LEN], const char *pan,
                  int *listed);

#endif

/*
 * Private to the authorize module, which is split along its seams:
 *   authorize.c           the kv_authz object and the decision (block list,
 *                         HSM checks, SCA and one-time codes, limits)
 *   authorize_evidence.c  the JSON it writes: the response of src/RULES.md §1
 *                         and the evidence records of decisions, reversals
 *                         and card-settings changes
 *   authorize_reverse.c   the reversal of an approved authorization
 *   authorize_settings.c  the per-card settings
 * This header holds what they share; nothing outside src/authorize includes it.
 */
#ifndef KV_AUTHORIZE_AUTHORIZE_INT_H
#define KV_AUTHORIZE_AUTHORIZE_INT_H

#include "src/authorize/authorize.h"

#include <stdint.h>

#define KV_AUTHZ_TOKEN_SLOTS 64

struct kv_authz_token_slot {
    int used;
    char pan[20];
    uint8_t token[KV_TOKEN_LEN];
};

struct kv_authz {
    kv_authz_config cfg;
    kv_attempts_config attempts; /* cfg.attempts or the defaults */
    struct kv_authz_token_slot cache[KV_AUTHZ_TOKEN_SLOTS];
    char err[256];
    /* the strings of a replayed answer (kv_authz_result points here until the next call) */
    char replay_reason[48], replay_rule[64], replay_exemption[48];
};

/* What kortvagt proved about one factor (src/RULES.md §2). */
typedef enum {
    KV_PROOF_NONE = 0, /* failed, replayed or not checked: proves nothing */
    KV_PROOF_HSM,      /* checked in the HSM and matched */
    KV_PROOF_CVR,      /* offline PIN: the CVR inside a cryptogram the HSM verified */
    KV_PROOF_ASSERTED, /* "verified": true from upstream: counted for SCA, not proven */
} kv_authz_proof;

typedef struct {
    kv_authz_proof proof;
    int has_cvr; /* a chip_cryptogram the HSM verified: its CVR, decoded */
    kv_cvr_info cvr;
} kv_authz_factor_note;

/* The times of one decision. */
typedef struct {
    int64_t at;         /* the time the decision is taken for (day, expiry, event time) */
    int64_t server;     /* the server clock */
    int has_request_at; /* the request carried "at" */
    int64_t request_at;
    int server_time; /* kv_authz_opts.server_time */
} kv_authz_times;

/* ---- authorize.c ---- */

/* Set the text of kv_authz_last_error; returns r. */
int kv_authz_set_err(kv_authz *a, int r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same with the store's last error as the text; returns r. */
int kv_authz_store_err(kv_authz *a, int r);
/*
 * End the store transaction the caller began: r 0 commits (a failed commit
 * becomes the result), any other r rolls back; store_failed says r is the
 * store's, whose text then becomes the last error (as it does for a failed
 * commit). Returns the result.
 */
int kv_authz_end_tx(kv_authz *a, int r, int store_failed);
/* The PAN token, from the kv_authz's cache or the HSM. Returns 0 or an HSM error (text set). */
int kv_authz_pan_token(kv_authz *a, const char *pan, uint8_t out[KV_TOKEN_LEN]);
/* The family whose counter a response shows for channel ch (NONE for moto). */
kv_family kv_authz_shown_family(kv_channel ch);
/* The counter fields of a response for family fam of card policy p. */
void kv_authz_fill_counter(const kv_limits_config *l, const kv_card_policy *p, kv_family fam,
                           int *has, kv_family *family, kv_counter_kind *kind, int64_t *value);

/* ---- authorize_evidence.c: each appends one record inside the caller's write transaction ---- */

/*
 * The authorization record of a decided request: card, request, factors with
 * their outcomes (sf), verification and the response res. res->evidence_id
 * receives the record's id. Returns 0 or a store/HSM error (text set).
 */
int kv_authz_record_decision(kv_authz *a, const kv_auth_request *req,
                             const uint8_t token[KV_TOKEN_LEN], const char *masked,
                             const kv_sca_factor *sf, const kv_authz_factor_note *notes,
                             kv_authz_result *res, const kv_authz_times *t);
/* The reversal record of txn (out filled but for evidence_id, which it sets). */
int kv_authz_record_reversal(kv_authz *a, const kv_txn *txn, const char *masked,
                             kv_authz_reversal *out, int64_t now);
/*
 * The card_settings record of change ch to the card of token; card is the
 * state after the change, sca_failures_before the failure count before it.
 */
int kv_authz_record_settings(kv_authz *a, const uint8_t token[KV_TOKEN_LEN],
                             const kv_card_state *card, const kv_card_settings_change *ch,
                             int sca_failures_before, int64_t now, int64_t *id);

#endif

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
    struct kv_authz_token_slot cache[KV_AUTHZ_TOKEN_SLOTS];
    char err[256];
};

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
                             const kv_sca_factor *sf, kv_authz_result *res, int64_t at,
                             int64_t now);
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

/*
 * Verification attempts (issue 11, finding 4): consecutive wrong PINs and
 * wrong card codes (CVC2 and CVC3 share one counter) per card, kept in the
 * card's state row in the store. Every path that verifies a PIN or a card
 * code for a card -- `kortvagt pin/cvv verify`, `kortvagt authorize`, every
 * kortvagtd endpoint -- calls kv_attempts_check before any HSM work and
 * kv_attempts_record after it, inside one write transaction of the store.
 * After max consecutive failures the card is blocked for that kind: the
 * answer is `blocked`, no HSM work is done, and evidence is recorded.
 * `kortvagt card settings --pan P --reset-tries` clears both counters.
 */
#ifndef KV_ATTEMPTS_ATTEMPTS_H
#define KV_ATTEMPTS_ATTEMPTS_H

#include "src/store/store.h"

typedef enum {
    KV_ATTEMPT_PIN = 0,  /* online PIN (PVV / IBM 3624) */
    KV_ATTEMPT_CODE = 1, /* CVC2 / CVV2 / CVC3 */
} kv_attempt_kind;

typedef struct {
    int pin_max;  /* default 3 */
    int code_max; /* default 5 */
} kv_attempts_config;

void kv_attempts_defaults(kv_attempts_config *c);

/*
 * In a write transaction of s: *blocked 1 when the card's consecutive
 * failures of kind reached the limit (then do no HSM work); *failures (may
 * be NULL) receives the count. A card never seen has 0.
 */
int kv_attempts_check(kv_store *s, const kv_attempts_config *c, const uint8_t token[KV_TOKEN_LEN],
                      kv_attempt_kind kind, int *blocked, int *failures);

/*
 * In the same transaction: a match sets the kind's counter to 0, a mismatch
 * adds 1. *failures (may be NULL) receives the count after it.
 */
int kv_attempts_record(kv_store *s, const uint8_t token[KV_TOKEN_LEN], kv_attempt_kind kind,
                       int match, int *failures);

/* Clear both counters of a card (its own write transaction). */
int kv_attempts_reset(kv_store *s, const uint8_t token[KV_TOKEN_LEN]);

/* ---- added by the verify helper (issue 11): one verification, end to end ---- */

#include "src/store/keyed.h"

#include <stddef.h>
#include <stdint.h>

/* [verify] pin_tries_max / code_tries_max of the configuration (1..1000). */
#define KV_ATTEMPTS_MAX_LIMIT 1000

/*
 * The defaults with the configuration's texts over them (NULL: not set):
 * pin_max and code_max are [verify] pin_tries_max and code_tries_max.
 * Returns 0 or KV_ERR_CONFIG (not an integer 1..1000; why says which).
 */
int kv_attempts_config_from(kv_attempts_config *c, const char *pin_max, const char *code_max,
                            char *why, size_t why_cap);

typedef enum {
    KV_VERIFY_MATCH = 0,
    KV_VERIFY_MISMATCH = 1,
    KV_VERIFY_BLOCKED = 2, /* the limit was reached before: no HSM work was done */
} kv_verify_result;

/* "match", "mismatch", "blocked". */
const char *kv_verify_result_name(kv_verify_result r);

/*
 * The HSM check of one verification, called inside the write transaction
 * with the card's row (its reference values: has_pvv/pvv/pvki,
 * has_ibm_offset/ibm_offset). *match 1 or 0. A non-zero return (an HSM
 * error, a missing reference value: KV_ERR_ARG) rolls everything back and
 * counts nothing.
 */
typedef int (*kv_attempts_hsm_fn)(void *ctx, const kv_card_state *card, int *match);

typedef struct {
    kv_attempt_kind kind;
    const char *method; /* recorded: "pvv", "ibm3624", "cvc2", "cvv", "cvc3" */
    const char *via;    /* recorded: "cli", "daemon" */
    const char *pan;    /* 12..19 digits: the card (its token keys the row) */
} kv_attempts_request;

typedef struct {
    kv_verify_result result;
    int failures;        /* the kind's consecutive failures after this verification */
    int max;             /* the limit that applies */
    int64_t evidence_id; /* the "verification" evidence record */
} kv_attempts_outcome;

/*
 * One verification of a card: in one write transaction of s, read the card's
 * row; when it is blocked for rq->kind, record a "verification" evidence
 * record with result "blocked" and "hsm": false and do nothing else;
 * otherwise call hsm(ctx, card, &match), count the result
 * (kv_attempts_record) and record it ("hsm": true). The record holds the
 * card's token and masked PAN, kind, method, via, result, failures and max
 * (never a PIN block, PIN, PVV, offset or code). Returns 0 (out filled), the
 * callback's error, KV_ERR_ARG (PAN), a store error (KV_ERR_STORE_TAMPERED
 * for a row whose MAC fails) or an HSM error of the MACs; why (may be NULL)
 * says what failed.
 */
int kv_attempts_verify(kv_store *s, const kv_attempts_config *c, const kv_mac *token_mac,
                       const kv_mac *evidence_mac, const kv_attempts_request *rq,
                       kv_attempts_hsm_fn hsm, void *ctx, kv_attempts_outcome *out, char *why,
                       size_t why_cap);

/* What kv_attempts_set changes; each set_* flag says whether to change that field. */
typedef struct {
    int reset_tries; /* both counters to 0 */
    int set_pvv;     /* pvv (4 digits) and pvki (0..9) */
    char pvv[5];
    int pvki;
    int set_ibm_offset; /* ibm_offset (4..12 digits) */
    char ibm_offset[13];
} kv_attempts_change;

/*
 * `card settings --reset-tries / --pvv --pvki / --ibm-offset` and perso: in
 * one write transaction, change the card's row and record a "card_settings"
 * evidence record naming what changed (never the values: "pvv": "set").
 * *out (may be NULL) receives the row after it, *evidence_id (may be NULL)
 * the record. Returns as kv_attempts_verify.
 */
int kv_attempts_set(kv_store *s, const kv_mac *token_mac, const kv_mac *evidence_mac,
                    const char *pan, const kv_attempts_change *ch, kv_card_state *out,
                    int64_t *evidence_id, char *why, size_t why_cap);

#endif

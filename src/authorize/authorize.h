/*
 * One authorization decision (src/RULES.md §1): block list -> HSM checks of the
 * factors that carry key material -> SCA and one-time use of codes ->
 * exemptions, counters and velocity limits -> evidence, with the card's
 * state, the day's sums, the transaction row and the evidence record written
 * in one store write transaction.
 *
 * A kv_authz is a heap object holding borrowed collaborators (store, limits,
 * keyed functions, factor verifier); it keeps a small cache of PAN tokens so
 * that a repeated card costs no HSM call for its token. One kv_authz per
 * thread.
 */
#ifndef KV_AUTHORIZE_AUTHORIZE_H
#define KV_AUTHORIZE_AUTHORIZE_H

#include "apdu/cvr.h"
#include "src/attempts/attempts.h"
#include "src/authorize/request.h"
#include "src/limits/limits.h"
#include "src/sca/sca.h"
#include "src/store/keyed.h"
#include "src/store/store.h"

#include <jansson.h>

#include <stdint.h>

/*
 * Checks a factor that carries key material (pin_online, chip_cryptogram,
 * cvc3, cvc2) through the HSM: *match 1 verified, 0 failed. Returns 0, or an
 * error (key not found, HSM failure, unsupported CVN) that stops the request.
 */
typedef struct {
    int (*verify)(void *ctx, const kv_auth_request *req, const kv_auth_factor *f, int *match);
    const char *(*last_error)(void *ctx); /* text of the last failure; may be NULL */
    void *ctx;
} kv_factor_verifier;

/*
 * Hot-card (block list) check: *listed 1 when the card may not be used. Runs
 * inside the decision's store transaction. (The block list module plugs in
 * here; without it no card is listed.)
 */
typedef struct {
    int (*check)(void *ctx, kv_store *s, const uint8_t token[KV_TOKEN_LEN], const char *pan,
                 int *listed);
    void *ctx;
} kv_hotcard_check;

typedef struct {
    kv_store *store;                /* borrowed */
    const kv_limits_config *limits; /* borrowed */
    kv_mac token_mac;               /* PAN tokens */
    kv_mac evidence_mac;            /* evidence MACs */
    kv_factor_verifier verifier;    /* verify NULL: key material is KV_ERR_UNSUPPORTED */
    kv_hotcard_check hotcard;       /* check NULL: no block list */
    int64_t (*clock)(void);         /* wall clock; NULL: time(NULL) */
    /* consecutive wrong PINs / card codes before a card is blocked (src/attempts);
       NULL: kv_attempts_defaults. Borrowed. */
    const kv_attempts_config *attempts;
} kv_authz_config;

typedef struct kv_authz kv_authz;

/* Returns 0 or KV_ERR_NOMEM. The collaborators must outlive the kv_authz. */
int kv_authz_new(const kv_authz_config *cfg, kv_authz **out);
/* Free (wipes the PAN-token cache); NULL is a no-op. */
void kv_authz_free(kv_authz *a);
/* Text of the last failure (names the field, key or store problem), "" if none. */
const char *kv_authz_last_error(const kv_authz *a);

typedef struct {
    kv_decision decision;
    const char *reason; /* static strings */
    const char *rule;
    const char *exemption; /* NULL: none */
    kv_sca_result sca;
    kv_channel channel;
    int has_counter; /* counter below is the channel family's (not for moto) */
    kv_family family;
    kv_counter_kind counter_kind;
    int64_t counter_value; /* after the decision */
    int64_t evidence_id;
    int replayed; /* 1: a repeat of a request_id: the stored answer, nothing counted */
} kv_authz_result;

/* How kv_authz_decide_opts takes the time. */
typedef struct {
    /*
     * 1 (kortvagtd): the day of the daily sums, the expiry check and the
     * record's event time are the server clock's; the request's "at" is only
     * recorded (the front end has checked it against [daemon] max_clock_skew).
     * 0 (the CLI): the request's "at" decides, as it always did (replays, tests).
     */
    int server_time;
} kv_authz_opts;

/*
 * Decide one request and record it. A failed HSM check is a decision
 * (decline with its reason), not an error. Returns 0 (res filled), or an
 * error: KV_ERR_UNSUPPORTED / KV_ERR_HSM_* from the verifier,
 * KV_ERR_STORE_* (nothing was recorded), KV_ERR_ARG.
 */
int kv_authz_decide(kv_authz *a, const kv_auth_request *req, kv_authz_result *res);

/*
 * The same with options (NULL: as kv_authz_decide). Order of the work
 * (src/RULES.md §1, issue 11):
 *   - a request_id seen before for this card: the stored answer (res->replayed),
 *     nothing counted, no HSM work; the same request_id with another request
 *     is KV_ERR_POLICY;
 *   - before any HSM work: the card's state row (a row whose MAC fails
 *     declines store_tampered), the SCA failure block, the block list and the
 *     PIN / card-code attempt counters (src/attempts: a blocked kind declines
 *     pin_tries_exceeded / code_tries_exceeded). When one of them applies no
 *     factor is sent to the HSM;
 *   - the HSM checks; a pin_online factor is checked against the card's
 *     stored reference value (PVV + PVKI or IBM offset) when the card has one;
 *   - in one write transaction: the checks again (another process may have
 *     moved them), the attempts counted, the decision, its evidence record
 *     (what was proven apart from what was asserted, src/RULES.md §2) and the
 *     request_id's answer.
 * A verified SCA resets the failure count; an SCA that rests on asserted
 * (upstream) factors satisfies §1 but leaves the count as it was.
 */
int kv_authz_decide_opts(kv_authz *a, const kv_auth_request *req, const kv_authz_opts *o,
                         kv_authz_result *res);

/*
 * The response of src/RULES.md §1: {"decision","reason","rule","sca":{"satisfied",
 * "categories","dynamic_linking"},"exemption","counters":{...},"evidence":"ID"}.
 * with_evidence 0 leaves "evidence" out (the evidence record's own copy).
 * NULL on out of memory.
 */
json_t *kv_authz_result_json(const kv_authz_result *res, int with_evidence);
/* The same as compact JSON text (malloc'ed; *len may be NULL), or NULL. */
char *kv_authz_result_text(const kv_authz_result *res, int with_evidence, size_t *len);

typedef struct {
    int64_t reversed_id; /* the authorization taken back */
    int64_t evidence_id; /* the reversal's own evidence record */
    int has_counter;
    kv_family family;
    kv_counter_kind counter_kind;
    int64_t counter_value; /* the family's counter after the reversal */
} kv_authz_reversal;

/*
 * Reverse the approved authorization whose evidence id is id: its amount
 * leaves the day's sums and, when its counter has not been reset since, the
 * family counter (src/RULES.md "a reversal takes its amount back out"); the
 * reversal gets an evidence record. Returns 0, KV_ERR_NOT_FOUND (no such
 * authorization), KV_ERR_POLICY (not an approval, or already reversed; see
 * kv_authz_last_error) or a store/HSM error.
 */
int kv_authz_reverse(kv_authz *a, int64_t id, kv_authz_reversal *out);

json_t *kv_authz_reversal_json(const kv_authz_reversal *rv);

/* Per-card settings; each set_* flag says whether to change that field. */
typedef struct {
    int set_ecommerce;
    int ecommerce_enabled;
    int set_single;
    int64_t spend_single_max; /* -1: no limit */
    int set_daily;
    int64_t spend_daily_max; /* -1: no limit */
    int unblock_sca;         /* reset the failed-attempt count */
} kv_card_settings_change;

/*
 * Read and, when ch changes anything, update a card's settings (an evidence
 * record of type card_settings is written with the change). *out receives
 * the state after; *evidence_id (may be NULL) the record id, 0 when nothing
 * changed. Returns 0, KV_ERR_ARG (bad PAN) or a store/HSM error.
 */
int kv_authz_card_settings(kv_authz *a, const char *pan, const kv_card_settings_change *ch,
                           kv_card_state *out, int64_t *evidence_id);

/*
 * What the card's CVR, carried inside the data of a chip_cryptogram, says
 * about the offline PIN: 1 when the PIN try limit is exceeded, else 0 (also
 * when the CVN's data carries no CVR kortvagt knows). The CVR is found as
 * apdu/cvr.h kv_cvr_from_ac_data says for each CVN. Only meaningful after the
 * ARQC verified: the cryptogram is what makes these bytes the card's own.
 */
int kv_authz_cvr_pin_blocked(const kv_auth_factor *f);

/* The CVR of a chip_cryptogram factor's data (apdu/cvr.h); layout UNKNOWN for other factors. */
void kv_authz_factor_cvr(const kv_auth_factor *f, kv_cvr_info *out);

#endif

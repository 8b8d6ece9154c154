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

#endif

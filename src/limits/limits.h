/*
 * Exemptions from SCA, the per-card cumulative counters and the velocity
 * limits (src/RULES.md §1), as one pure decision function: given the request's
 * facts, the SCA evaluation, the card's state and the day's approved sums,
 * kv_limits_decide returns the decision, its reason and rule, and the card's
 * state after it. No I/O: the authorize module loads the inputs and stores
 * the outputs in one store transaction.
 */
#ifndef KV_LIMITS_LIMITS_H
#define KV_LIMITS_LIMITS_H

#include "src/sca/sca.h"

#include <stdint.h>

typedef enum {
    KV_CH_CONTACT,
    KV_CH_CONTACTLESS,
    KV_CH_ECOMMERCE,
    KV_CH_MOTO,
    KV_CH_ATM,
    KV_CH_UNATTENDED_TRANSPORT,
    KV_CH_UNATTENDED_PARKING,
    KV_CH_WALLET,
    KV_CH__COUNT
} kv_channel;

/* Channel from its src/RULES.md name; 0 or KV_ERR_NOT_FOUND. */
int kv_channel_parse(const char *name, kv_channel *out);
const char *kv_channel_name(kv_channel ch);

/* Counter families: contactless and remote (src/RULES.md "Counter families by channel"). */
typedef enum {
    KV_FAMILY_NONE = 0,
    KV_FAMILY_CONTACTLESS = 1,
    KV_FAMILY_REMOTE = 2,
} kv_family;

/* The family whose counter an approved transaction without SCA on ch goes to. */
kv_family kv_channel_family(kv_channel ch);

/* 1 for the gambling MCCs that share one daily sum: 7800, 7801, 7802, 7995. */
int kv_mcc_is_gambling(const char *mcc);

typedef enum {
    KV_COUNTER_COUNT,
    KV_COUNTER_AMOUNT,
} kv_counter_kind;

/* One family's limits; the issuer chooses count or amount (EBA Q&A 2018_4225). */
typedef struct {
    int64_t single_max; /* per transaction, minor units */
    kv_counter_kind counter;
    int64_t count_max;      /* with KV_COUNTER_COUNT */
    int64_t cumulative_max; /* with KV_COUNTER_AMOUNT, minor units */
} kv_family_limits;

typedef struct {
    kv_family_limits contactless; /* RTS Art. 11 */
    kv_family_limits remote;      /* RTS Art. 16 */
    int64_t atm_daily_max;        /* per card per Copenhagen calendar day */
    int64_t gambling_daily_max;   /* MCC 7800, 7801, 7802, 7995 together */
    int include_current;          /* the current transaction counts in the check */
} kv_limits_config;

/* The defaults of src/RULES.md §1. */
void kv_limits_defaults(kv_limits_config *c);

/* A family's counter since its last reset; epoch counts the resets. */
typedef struct {
    int64_t count;
    int64_t amount;
    int64_t epoch;
} kv_counter;

/* The policy state of one card (kept in the store). */
typedef struct {
    int ecommerce_enabled;    /* default 1 */
    int64_t spend_single_max; /* child's wallet card; -1 none */
    int64_t spend_daily_max;  /* -1 none */
    int sca_failures;         /* consecutive failed attempts */
    kv_counter contactless;
    kv_counter remote;
} kv_card_policy;

/* A new card: e-commerce on, no card limits, no failures, counters zero. */
void kv_card_policy_init(kv_card_policy *p);

/* After this many consecutive failed attempts the card is blocked for SCA (RTS Art. 4(3)(b)). */
#define KV_SCA_MAX_FAILURES 5

typedef enum {
    KV_DECISION_APPROVE,
    KV_DECISION_SCA_REQUIRED,
    KV_DECISION_DECLINE,
} kv_decision;

const char *kv_decision_name(kv_decision d);
/* The decision a stored name stands for: "approve", "sca_required", anything else (NULL too)
 * decline. */
kv_decision kv_decision_from_name(const char *name);

typedef struct {
    kv_channel channel;
    int64_t amount;
    int gambling;            /* kv_mcc_is_gambling(merchant.mcc) */
    int card_blocked;        /* on the block list (hot card) */
    int card_expired;        /* kv_card_expired */
    int pin_blocked;         /* a verified cryptogram's CVR: offline PIN try limit exceeded */
    int trusted_beneficiary; /* payee on the payer's trusted list (RTS Art. 13) */
    int recurring_ok;        /* a later payment of a series whose first payment, with the
                                same amount and payee, the store holds approved with SCA */
    kv_sca_result sca;
    int64_t day_total;    /* approved today on this card, before this request */
    int64_t day_atm;      /* approved ATM cash today */
    int64_t day_gambling; /* approved gambling today */
} kv_decision_in;

typedef struct {
    kv_decision decision;
    const char *reason;    /* decline code, exemption, "sca_satisfied", or why SCA is required */
    const char *rule;      /* e.g. "RTS Art. 11" */
    const char *exemption; /* exemption name or NULL */
    kv_card_policy card;   /* the card's state after this decision */
    kv_family counted;     /* the family whose counter took this transaction */
    int approved_amount;   /* 1: add the amount to the day's sums */
} kv_decision_out;

/*
 * Decide one request. In order: block list, expiry, the SCA failure block
 * (5 consecutive failed attempts), a factor that failed the HSM check (its
 * decline reason), e-commerce disabled, the card's and the daily limits;
 * then approve with SCA, or with the first exemption that applies, or
 * require SCA. State changes: a failed attempt adds one to the failure count
 * (the 5th declines sca_failed_attempts); SCA satisfied without a failed
 * factor resets it and resets the contactless counters (non-remote
 * transaction) or the remote counters (ecommerce, Q&A 2018_4226); an
 * approval without SCA in a counter family adds to that family's counter.
 * moto is approved out of SCA scope and counts in no counter.
 */
void kv_limits_decide(const kv_limits_config *cfg, const kv_card_policy *card,
                      const kv_decision_in *in, kv_decision_out *out);

/*
 * Take an approved transaction back out (reversal): its amount and count
 * leave the family counter when the counter has not been reset since
 * (same epoch), never below zero.
 */
void kv_limits_reverse(kv_card_policy *card, kv_family family, int64_t epoch, int64_t amount);

#endif

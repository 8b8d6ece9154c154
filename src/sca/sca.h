/*
 * Strong customer authentication (src/RULES.md §1; RTS Art. 4, 5, 9): the
 * factor catalogue with each factor's category, and the evaluation of the
 * factors of one request: which categories are covered, whether dynamic
 * linking holds for a remote payment, and whether the request counts as a
 * failed attempt. Pure functions; no I/O, no HSM.
 */
#ifndef KV_SCA_SCA_H
#define KV_SCA_SCA_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    KV_FACTOR_PIN_OFFLINE,
    KV_FACTOR_PIN_ONLINE,
    KV_FACTOR_PASSWORD,
    KV_FACTOR_DEVICE_CODE,
    KV_FACTOR_CHIP_CRYPTOGRAM,
    KV_FACTOR_CVC3,
    KV_FACTOR_SMS_OTP,
    KV_FACTOR_WALLET_TOKEN,
    KV_FACTOR_BIOMETRIC,
    KV_FACTOR_MITID,
    KV_FACTOR_CVC2,
    KV_FACTOR_CARD_NUMBER,
    KV_FACTOR_EXPIRY,
    KV_FACTOR__COUNT
} kv_factor_type;

/* Category bits. */
enum {
    KV_CAT_KNOWLEDGE = 1,
    KV_CAT_POSSESSION = 2,
    KV_CAT_INHERENCE = 4,
};

/* Factor type from its src/RULES.md name; 0 or KV_ERR_NOT_FOUND. */
int kv_sca_factor_parse(const char *name, kv_factor_type *out);
/* src/RULES.md name of a factor type; static storage. */
const char *kv_sca_factor_name(kv_factor_type t);
/*
 * Category bits of a factor type: knowledge, possession, inherence; mitid
 * is possession + knowledge; cvc2, card_number and expiry have none (card
 * data, EBA Op-2019-06 §28).
 */
unsigned kv_sca_factor_categories(kv_factor_type t);
/*
 * 1 for the factor types kortvagt can check itself through the HSM when the
 * request carries key material (pin_online, chip_cryptogram, cvc3, cvc2).
 */
int kv_sca_factor_hsm_capable(kv_factor_type t);

/*
 * Fill names (room for 3) with the category names of bits, in the order
 * knowledge, possession, inherence; returns how many.
 */
size_t kv_sca_category_names(unsigned bits, const char *names[3]);

/* How a factor of one request came out. */
typedef enum {
    KV_FACTOR_VERIFIED,        /* verified upstream, or checked by the HSM and matched */
    KV_FACTOR_FAILED_UPSTREAM, /* "verified": false */
    KV_FACTOR_FAILED_HSM,      /* checked by the HSM: no match */
    KV_FACTOR_REPLAYED,        /* HSM matched, but this code was already used once */
    KV_FACTOR_NOT_CHECKED,     /* key material the HSM was not asked about (the card was
                                  blocked before any HSM work): neither counts nor fails */
} kv_factor_outcome;

typedef struct {
    kv_factor_type type;
    kv_factor_outcome outcome;
    int has_binding; /* bound_amount and bound_payee are given */
    int64_t bound_amount;
    const char *bound_payee; /* borrowed; NULL when !has_binding */
    int proven; /* kortvagt proved it (HSM match, or the CVR of a verified cryptogram); 0: the
                   request only asserts it (src/RULES.md §2) */
} kv_sca_factor;

typedef struct {
    int remote;        /* channel ecommerce: dynamic linking applies (RTS Art. 5) */
    int64_t amount;    /* the request's amount */
    const char *payee; /* the request's merchant.name */
} kv_sca_context;

typedef struct {
    int satisfied;        /* two or more categories, and for remote a dynamically linked factor */
    unsigned categories;  /* category bits of the factors that count */
    int dynamic_linking;  /* -1 not remote; 0 no verified factor bound to amount+payee; 1 bound */
    int binding_mismatch; /* remote: a verified factor was bound to another amount or payee */
    int failed;           /* a factor failed: the request is a failed attempt (RTS Art. 4(3)(b)) */
    int hsm_failed;       /* a factor checked by the HSM failed or was replayed */
    kv_factor_type hsm_failed_type; /* the first such factor */
    /* the same evaluation over the proven factors only (src/RULES.md §2): what the
       liability rules and the failure-count reset may rely on */
    unsigned proven_categories;
    int proven_satisfied;
} kv_sca_result;

/*
 * Evaluate n factors. A factor counts when it is verified and, for a remote
 * payment, when it carries no binding or a binding equal to the request's
 * amount and payee (a code bound to another amount or payee is invalid and
 * does not count). It is a failed attempt when any factor failed upstream,
 * failed the HSM check or was replayed. SCA is satisfied when the counting
 * factors cover two or more categories and, for a remote payment, one of
 * them carries the matching binding. proven_categories / proven_satisfied
 * apply the same rules to the factors with proven set; a binding is the
 * request's assertion, so a remote payment is never proven_satisfied.
 */
void kv_sca_evaluate(const kv_sca_factor *f, size_t n, const kv_sca_context *ctx,
                     kv_sca_result *out);

#endif

/*
 * The Danish liability engine for unauthorised use of a payment card
 * (betalingsloven § 100, § 97, § 98; Forbrugerombudsmanden [1], Visa/Dankort
 * rules [3] §10 — sources listed in src/RULES.md; src/RULES.md §2).
 *
 * A case (the JSON of src/RULES.md §2) is decoded into a kv_liability_case,
 * assessed into a kv_liability_result (per transaction: the first matching row
 * of the decision table, the cardholder's and the issuer's share, the
 * objection status) and rendered as the result JSON, a short statement per
 * transaction (Danish or English) or an SVG timeline of the incident.
 *
 * Money is an integer in øre (375 kr = 37500). Times are kept as milliseconds
 * since the Unix epoch, UTC.
 *
 * The case and result structures are plain data owned by the caller through
 * their _free functions; everything else is borrowed for the duration of one
 * call.
 */
#ifndef KV_LIABILITY_LIABILITY_H
#define KV_LIABILITY_LIABILITY_H

#include "src/base/jdec.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Longest id, card, credential or evidence string, in bytes (without NUL). */
#define KV_LIABILITY_ID_MAX 128
/* Most cards and transactions one case may hold. */
#define KV_LIABILITY_CARDS_MAX 1000
#define KV_LIABILITY_TXNS_MAX 10000
/* Largest single amount in øre (10^13 øre = 100 billion kr): sums cannot overflow. */
#define KV_LIABILITY_AMOUNT_MAX 10000000000000LL

/* The caps of § 100 stk. 3 and stk. 4, in øre. */
#define KV_LIABILITY_CAP_STK3 37500
#define KV_LIABILITY_CAP_STK4 800000

enum kv_liability_method {
    KV_LIABILITY_METHOD_OFFLINE_PIN,
    KV_LIABILITY_METHOD_ONLINE_PIN,
    KV_LIABILITY_METHOD_SCA,
    KV_LIABILITY_METHOD_WALLET_CODE,
    KV_LIABILITY_METHOD_MOBILE_CODE,
    KV_LIABILITY_METHOD_SIGNATURE,
    KV_LIABILITY_METHOD_NONE,
    KV_LIABILITY_METHOD_CVC2,
};

/* The factor types of src/RULES.md §1; a set of them is a bit mask (1u << factor). */
enum kv_liability_factor {
    KV_LIABILITY_FACTOR_PIN_OFFLINE,
    KV_LIABILITY_FACTOR_PIN_ONLINE,
    KV_LIABILITY_FACTOR_PASSWORD,
    KV_LIABILITY_FACTOR_DEVICE_CODE,
    KV_LIABILITY_FACTOR_CHIP_CRYPTOGRAM,
    KV_LIABILITY_FACTOR_CVC3,
    KV_LIABILITY_FACTOR_SMS_OTP,
    KV_LIABILITY_FACTOR_WALLET_TOKEN,
    KV_LIABILITY_FACTOR_BIOMETRIC,
    KV_LIABILITY_FACTOR_MITID,
    KV_LIABILITY_FACTOR_CVC2,
    KV_LIABILITY_FACTOR_CARD_NUMBER,
    KV_LIABILITY_FACTOR_EXPIRY,
    KV_LIABILITY_FACTOR_COUNT
};

/* SCA categories (RTS Art. 4), as a bit mask. */
enum {
    KV_LIABILITY_CAT_KNOWLEDGE = 1u << 0,
    KV_LIABILITY_CAT_POSSESSION = 1u << 1,
    KV_LIABILITY_CAT_INHERENCE = 1u << 2,
};

enum kv_liability_channel {
    KV_LIABILITY_CHANNEL_CONTACT,
    KV_LIABILITY_CHANNEL_CONTACTLESS,
    KV_LIABILITY_CHANNEL_ECOMMERCE,
    KV_LIABILITY_CHANNEL_MOTO,
    KV_LIABILITY_CHANNEL_ATM,
    KV_LIABILITY_CHANNEL_UNATTENDED_TRANSPORT,
    KV_LIABILITY_CHANNEL_UNATTENDED_PARKING,
    KV_LIABILITY_CHANNEL_WALLET,
    KV_LIABILITY_CHANNEL_MAGSTRIPE,
    KV_LIABILITY_CHANNEL_MOBILE,
};

/* The classes of src/RULES.md §2, in the order of the decision table (row = class + 1). */
enum kv_liability_class {
    KV_LIABILITY_FRAUD,                /* row 1, § 100 stk. 2 */
    KV_LIABILITY_BARRED,               /* row 2, § 97 */
    KV_LIABILITY_INTENTIONAL_BREACH,   /* row 3, § 100 stk. 2 */
    KV_LIABILITY_NOT_BOOKED,           /* row 4, § 100 stk. 1 */
    KV_LIABILITY_AFTER_NOTIFICATION,   /* row 5, § 100 stk. 6 nr. 1 */
    KV_LIABILITY_ISSUER_STAFF,         /* row 6, § 100 stk. 6 nr. 2 */
    KV_LIABILITY_NO_CHANNEL,           /* row 7, § 100 stk. 6 nr. 3 */
    KV_LIABILITY_PAYEE_KNEW,           /* row 8, § 100 stk. 9 */
    KV_LIABILITY_UNDETECTABLE,         /* row 9, § 100 stk. 8 */
    KV_LIABILITY_SCA_NOT_REQUIRED,     /* row 10, § 100 stk. 7 */
    KV_LIABILITY_UNAUTHENTICATED,      /* row 11, § 100 stk. 1 */
    KV_LIABILITY_CREDENTIAL_DISCLOSED, /* row 12, § 100 stk. 5 */
    KV_LIABILITY_NEGLIGENT,            /* row 13, § 100 stk. 4 */
    KV_LIABILITY_CREDENTIAL_USED,      /* row 14, § 100 stk. 3 */
    KV_LIABILITY_CLASS_COUNT
};

/* Objection status, ordered from best to worst (the overall status is the maximum). */
enum kv_liability_objection {
    KV_LIABILITY_TIMELY,
    KV_LIABILITY_LATE,
    KV_LIABILITY_OBJECTION_BARRED,
};

/* What became of a transaction's `evidence` reference. */
enum kv_liability_evidence_status {
    KV_LIABILITY_EVIDENCE_NONE,        /* the transaction names no evidence record */
    KV_LIABILITY_EVIDENCE_VERIFIED,    /* loaded, chain link and MAC good: verification from it */
    KV_LIABILITY_EVIDENCE_NOT_FOUND,   /* no such record (or not this transaction's): not proven */
    KV_LIABILITY_EVIDENCE_BROKEN,      /* chain link or MAC broken: proves nothing, not proven */
    KV_LIABILITY_EVIDENCE_UNAVAILABLE, /* no evidence lookup configured: not proven */
};

enum kv_liability_lang {
    KV_LIABILITY_LANG_DA, /* the default: a Danish product */
    KV_LIABILITY_LANG_EN,
};

struct kv_liability_verification {
    enum kv_liability_method method;
    uint32_t factors;          /* set of enum kv_liability_factor; matters for method sca */
    bool proven;               /* the issuer holds verified evidence (default false, § 98) */
    bool sca_required;         /* the issuer required SCA (default true; false: row 10) */
    bool per_transaction_code; /* a wallet/mobile code entered for this very purchase
                                  (Forbrugerombudsmanden [1]) */
};

/* Incident-wide facts; every one defaults to false. */
struct kv_liability_facts {
    bool cardholder_fraud;
    bool intentional_breach;
    bool late_notification;
    bool credential_handed_over;
    bool risk_foreseeable;
    bool gross_negligence;
    bool issuer_staff_caused;
    bool no_notification_channel;
    bool undetectable_before_use;
    bool payee_knew;
};

struct kv_liability_card {
    char id[KV_LIABILITY_ID_MAX + 1];
    char credential[KV_LIABILITY_ID_MAX + 1]; /* "" when absent or null: shares no cap */
    bool blocked;                             /* blocked_at is non-null */
    int64_t blocked_at;
};

struct kv_liability_txn {
    char id[KV_LIABILITY_ID_MAX + 1];
    size_t card; /* index into kv_liability_case.cards */
    int64_t at;
    int64_t debited_at;
    int64_t amount; /* øre, 0 .. KV_LIABILITY_AMOUNT_MAX */
    bool booked_correctly;
    enum kv_liability_channel channel;
    struct kv_liability_verification verification;
    bool has_evidence;
    char evidence[KV_LIABILITY_ID_MAX + 1];
    /*
     * Extension of the src/RULES.md §2 case (optional field "final_amount_unknown",
     * default false): the cardholder authorised this payment without knowing its
     * final amount (Visa/Dankort rules [3] §7.1, PSD2 art. 76-77). Its objection limit is
     * 8 weeks after debited_at instead of 13 months; nothing else changes.
     */
    bool final_amount_unknown;
};

struct kv_liability_case {
    char currency[4];
    int64_t discovered_at;
    bool notified; /* notified_at is non-null */
    int64_t notified_at;
    int64_t objection_at;
    struct kv_liability_facts facts;
    struct kv_liability_card *cards;
    size_t n_cards;
    struct kv_liability_txn *txns;
    size_t n_txns;
};

struct kv_liability_txn_result {
    enum kv_liability_class cls;
    const char *rule; /* static string, e.g. "§ 100 stk. 3" */
    int64_t cardholder;
    int64_t issuer;
    enum kv_liability_objection objection;
    enum kv_liability_evidence_status evidence;
    bool credential_used;    /* after the evidence lookup */
    int64_t cap;             /* 37500 or 800000 for rows 14 and 13, else 0 */
    size_t cap_group;        /* index of the first card of the cap group (rows 13, 14) */
    int64_t objection_limit; /* the barred limit: debited_at + 13 months or + 8 weeks */
};

struct kv_liability_result {
    char currency[4];
    int64_t total;
    int64_t cardholder;
    int64_t issuer;
    enum kv_liability_objection objection; /* the worst of the transactions' (timely if none) */
    struct kv_liability_txn_result *txns;  /* parallel to kv_liability_case.txns */
    size_t n_txns;
};

/*
 * Decode a case from JSON text (len bytes, need not be NUL-terminated).
 * Follows src/RULES.md §2 strictly: unknown fields, missing required fields,
 * wrong types, bad times, unknown enum strings, duplicate ids and references
 * to unknown cards are errors. On error returns KV_ERR_JSON (or KV_ERR_NOMEM)
 * and, when why is not NULL, writes a NUL-terminated message naming the field
 * (e.g. "transactions[0].amount: missing required field") into why[why_len].
 * On success *out is a new case for kv_liability_case_free.
 */
int kv_liability_case_parse(const char *text, size_t len, struct kv_liability_case **out, char *why,
                            size_t why_len);
/* The same from an already decoded JSON value (borrowed). */
int kv_liability_case_from_json(const json_t *root, struct kv_liability_case **out, char *why,
                                size_t why_len);
/* The same with the typed failure (code and path) of src/base/jdec.h, for the daemon. */
int kv_liability_case_decode(const json_t *root, struct kv_liability_case **out, kv_jdec_error *e);
/* Free a case; NULL is a no-op. */
void kv_liability_case_free(struct kv_liability_case *c);

/*
 * Evidence lookup, injected by the caller. Called once for each transaction
 * that names an evidence record. *v holds the case's verification with
 * `proven` already false; on success the callback overwrites *v with what the
 * stored record shows. Returns:
 *   0                      the record was loaded, its chain link and MAC
 *                          checked good, it belongs to this transaction, *v set;
 *   KV_ERR_EVIDENCE_BROKEN the link or the MAC is broken (proves nothing);
 *   KV_ERR_NOT_FOUND       no such record, or it is another transaction's;
 *   other negative         the lookup itself failed (store, HSM): the
 *                          assessment fails with that code.
 * The engine ignores *v unless 0 is returned.
 */
typedef int (*kv_liability_evidence_fn)(void *ctx, const char *evidence_id,
                                        const struct kv_liability_txn *txn,
                                        struct kv_liability_verification *v);

/*
 * Assess a case: every transaction gets the first matching row of the
 * decision table of src/RULES.md §2, caps (rows 13 and 14 only) are shared by the
 * cards with the same credential and the same non-null blocked_at and taken
 * in time order (at, then file order). lookup may be NULL: a transaction that
 * names an evidence record then counts as not proven. On success *out is a
 * new result for kv_liability_result_free. Returns 0, KV_ERR_NOMEM or an
 * error of the lookup.
 */
int kv_liability_assess(const struct kv_liability_case *c, kv_liability_evidence_fn lookup,
                        void *lookup_ctx, struct kv_liability_result **out);
/* Free a result; NULL is a no-op. */
void kv_liability_result_free(struct kv_liability_result *r);

/*
 * The result JSON of src/RULES.md §2 (currency, total, cardholder, issuer,
 * objection, transactions[{id, class, cardholder, issuer, rule, objection}]),
 * new reference in *out. Returns 0 or KV_ERR_NOMEM.
 */
int kv_liability_result_to_json(const struct kv_liability_case *c,
                                const struct kv_liability_result *r, json_t **out);

/*
 * Human output: one short statement per transaction (rule, amounts, objection)
 * and the totals. PAN-like card ids are masked. Returns 0 or KV_ERR_IO.
 */
int kv_liability_write_text(FILE *f, const struct kv_liability_case *c,
                            const struct kv_liability_result *r, enum kv_liability_lang lang);

/*
 * The incident as an SVG timeline: one <circle class="mark ..."> per
 * transaction (coloured by class, area by amount) on the lane of its card,
 * vertical lines for discovered_at, notified_at, each card's blocked_at and
 * objection_at, the totals and a legend of the classes used. All text is
 * XML-escaped. Returns 0 or KV_ERR_IO.
 */
int kv_liability_write_svg(FILE *f, const struct kv_liability_case *c,
                           const struct kv_liability_result *r, enum kv_liability_lang lang);

/* --- building blocks, exposed for tests and for the daemon --- */

/* 1 if the verification counts as "credential used" (src/RULES.md §2 "Precise meanings"). */
bool kv_liability_credential_used(const struct kv_liability_verification *v);
/* The SCA categories (KV_LIABILITY_CAT_*) covered by a factor set. */
unsigned kv_liability_factor_categories(uint32_t factors);

/* Objection status of one transaction of a case; *limit (may be NULL) gets the barred limit. */
enum kv_liability_objection kv_liability_objection_of(const struct kv_liability_case *c,
                                                      const struct kv_liability_txn *t,
                                                      int64_t *limit);

/*
 * Parse an RFC 3339 time ("2026-03-01T10:00:00Z", optional fraction, "Z" or
 * "+hh:mm"/"-hh:mm") into milliseconds since the epoch, UTC. Returns 0 or
 * KV_ERR_FORMAT.
 */
int kv_liability_time_parse(const char *s, int64_t *ms);
/* Format as "2026-03-01T10:00:00Z" (seconds; milliseconds dropped). Needs 21 bytes. */
void kv_liability_time_format(int64_t ms, char out[32]);
/* Add calendar months in UTC; a day past the target month's end becomes its last day. */
int64_t kv_liability_add_months(int64_t ms, int months);

/*
 * Format øre as kroner with two decimals and the thousands separator of the
 * language: "1.234,56 kr" (da) or "1,234.56 kr" (en). Returns out.
 */
const char *kv_liability_money_format(int64_t ore, enum kv_liability_lang lang, char out[48]);

/* Contract names: "credential_used", "timely", "offline_pin", ... (static strings). */
const char *kv_liability_class_name(enum kv_liability_class cls);
const char *kv_liability_objection_name(enum kv_liability_objection o);
/* The rule string of a decision-table class ("§ 100 stk. 3"). */
const char *kv_liability_class_rule(enum kv_liability_class cls);
/* A one-line description of a class in the language (static UTF-8 string). */
const char *kv_liability_class_text(enum kv_liability_class cls, enum kv_liability_lang lang);
/* The objection status in words ("rettidig", "timely", ...), static. */
const char *kv_liability_objection_text(enum kv_liability_objection o, enum kv_liability_lang lang);
/*
 * An id for display: a card id that looks like a PAN (12-19 digits) is
 * masked (first 6, last 4); anything else is copied.
 */
void kv_liability_display_id(const char *id, char out[KV_LIABILITY_ID_MAX + 1]);

#endif

/*
 * Cardholder verification (EMV Book 3 §10.5, Annex C3; Book 4 §6.3.4 and
 * Annex A for CVM Results): parsing the CVM List (8E), choosing and
 * performing CVMs against the terminal's capabilities (9F33 byte 2), and the
 * CVM Results (9F34), TVR byte 3 and TSI bits that come out of it.
 *
 * Performing a CVM (VERIFY, PIN entry, signature capture) is the caller's:
 * kv_cvm_process calls back with the method and the callback reports the
 * outcome. The processing rules:
 *
 *  - No CV Rules (AIP byte 1 bit 0x10 "cardholder verification supported"
 *    clear, 8E absent, or 8E with amounts only): nothing is performed, CVM
 *    Results 3F0000, no TVR or TSI bit.
 *  - Rules are tried in order. A rule whose condition is not satisfied, or
 *    whose condition code is RFU (0A-7F) or payment-system specific
 *    (80-FF, none known here), is skipped.
 *  - Condition satisfied, CVM code not recognised (06-1D, 20-3F): TVR
 *    "unrecognised CVM"; then bit 7 of the rule's byte 1 (0x40, "apply
 *    succeeding CV rule if this CVM is unsuccessful") decides: next rule, or
 *    cardholder verification fails.
 *  - Recognised but not supported by the terminal: for a PIN CVM whose PIN
 *    kind the terminal lacks, TVR "PIN entry required and PIN pad not
 *    present or not working"; then bit 7 as above.
 *  - Supported: 1F (no CVM required) succeeds with result 02; 00 (fail CVM
 *    processing) fails with result 01; 01-05 and 1E call the callback.
 *    Results: offline PIN (01, 04) verified 02; online PIN (02, TVR "online
 *    PIN entered") 00 unknown; signature (1E) 00 unknown; PIN and signature
 *    (03, 05) with the PIN verified 00 unknown (the signature is still to be
 *    checked). An unsuccessful CVM gives result 01 and bit 7 decides.
 *  - PIN try limit exceeded (TVR bit) makes every later offline PIN CVM of
 *    the list fail without another callback; a bypassed PIN (TVR "PIN not
 *    entered") makes every later PIN CVM of the list bypassed too, so the
 *    cardholder who declined to enter a PIN is not asked again.
 *  - Failure: TVR "cardholder verification was not successful"; CVM Results
 *    name the last CVM performed, with result 01, or 3F0001 when none was
 *    performed.
 *  - Whenever rules were processed, TSI "cardholder verification was
 *    performed".
 *
 * Conditions (Annex C3): 00 always; 01 unattended cash (cash, 9C 01 or 17,
 * at an unattended terminal, 9F35 second digit 4-6); 02 not unattended cash, not
 * manual cash and not purchase with cashback; 03 if the terminal supports
 * the CVM; 04 manual cash (cash at an attended terminal); 05 purchase with
 * cashback (9C 09, or an Amount Other above zero); 06/07 transaction in the
 * application currency (5F2A = 9F42) and under/over X; 08/09 the same with
 * Y ("under" is strictly below, "over" strictly above).
 */
#ifndef KV_APDU_CVM_H
#define KV_APDU_CVM_H

#include <stddef.h>
#include <stdint.h>

/* CVM codes (bits 1-6 of a CV rule's first byte). */
#define KV_CVM_FAIL 0x00
#define KV_CVM_PLAIN_PIN 0x01
#define KV_CVM_ONLINE_PIN 0x02
#define KV_CVM_PLAIN_PIN_SIG 0x03
#define KV_CVM_ENC_PIN 0x04
#define KV_CVM_ENC_PIN_SIG 0x05
#define KV_CVM_SIGNATURE 0x1E
#define KV_CVM_NO_CVM 0x1F
#define KV_CVM_NONE_PERFORMED 0x3F /* CVM Results byte 1 when no CVM was performed */
#define KV_CVM_APPLY_NEXT 0x40     /* bit 7: apply succeeding CV rule if unsuccessful */

/* CVM Results byte 3. */
#define KV_CVM_RESULT_UNKNOWN 0x00
#define KV_CVM_RESULT_FAILED 0x01
#define KV_CVM_RESULT_SUCCESSFUL 0x02

/* Largest number of rules an 8E (at most 252 bytes of value) can hold. */
#define KV_CVM_RULES_MAX 122

typedef struct {
    uint8_t code;      /* whole byte 1 (CVM code and bit 7) */
    uint8_t condition; /* byte 2 */
} kv_cvm_rule;

typedef struct {
    uint32_t x; /* amount X, binary, in the application currency's minor units */
    uint32_t y; /* amount Y */
    kv_cvm_rule rules[KV_CVM_RULES_MAX];
    size_t nrules;
} kv_cvm_list;

/*
 * Parse the value of 8E (len bytes at p, untrusted). Returns 0 or
 * KV_ERR_CVM_LIST: shorter than the 8 amount bytes, an odd number of rule
 * bytes (a cut rule), or more than KV_CVM_RULES_MAX rules. A list of 8 bytes
 * parses with nrules 0.
 */
int kv_cvm_list_parse(const uint8_t *p, size_t len, kv_cvm_list *out);

/* 1 if the 6-bit CVM code is one this terminal recognises (00-05, 1E, 1F), else 0. */
int kv_cvm_recognised(uint8_t method);

/* 1 if terminal capabilities (9F33) support the 6-bit CVM code, else 0. */
int kv_cvm_supported(uint8_t method, const uint8_t caps[3]);

/* Short English name of a 6-bit CVM code ("plaintext offline PIN"...); never NULL. */
const char *kv_cvm_method_name(uint8_t method);
/* Stable identifier for JSON ("offline_plaintext_pin", "online_pin", ..., "none"); never NULL. */
const char *kv_cvm_method_id(uint8_t method);
/* Short English name of a condition code ("always", "if unattended cash"...); never NULL. */
const char *kv_cvm_condition_name(uint8_t condition);

/*
 * Terminal profiles (the CLI --profile): 9F33 and 9F35.
 *   pos         attended POS: offline plaintext and enciphered PIN, signature,
 *               no CVM (9F33 E0B8C8, 9F35 22)
 *   atm         ATM: online PIN only (9F33 6040E8, 9F35 14)
 *   unattended  unattended merchant terminal: no CVM only (9F33 6008C8, 9F35 25)
 */
typedef struct {
    const char *name;
    uint8_t capabilities[3]; /* 9F33 */
    uint8_t terminal_type;   /* 9F35 as an integer, e.g. 22 */
} kv_cvm_profile;

/* The profile called name, or NULL. Static storage. */
const kv_cvm_profile *kv_cvm_profile_find(const char *name);

/* Profile i (0 <= i < count) for listing; NULL past the end. */
const kv_cvm_profile *kv_cvm_profile_at(size_t i);

/* Transaction facts CVM processing reads. */
typedef struct {
    const uint8_t *cvm_list; /* 8E value, NULL when absent */
    size_t cvm_list_len;
    uint8_t aip[2];          /* 82 */
    int app_currency;        /* 9F42 as an integer (978), -1 when absent */
    uint64_t amount;         /* 9F02, minor units */
    uint64_t amount_other;   /* 9F03, minor units (cashback) */
    uint16_t currency;       /* 5F2A as an integer (208) */
    uint8_t txn_type;        /* 9C: 0 purchase, 1/17 cash, 9 cashback, 20 refund */
    uint8_t terminal_type;   /* 9F35 as an integer, e.g. 22 */
    uint8_t capabilities[3]; /* 9F33 */
} kv_cvm_txn;

/* 9F42 / 5F2A value bytes (n3 BCD in 2 bytes, "0978") as an integer, or -1 if malformed. */
int kv_cvm_currency_value(const uint8_t *v, size_t len);

/* How a CVM went, as the callback reports it. */
enum kv_cvm_outcome {
    KV_CVM_OUT_OK = 0, /* PIN verified (offline) or captured (online), signature to be taken */
    KV_CVM_OUT_FAILED, /* wrong PIN with tries left, card refused, ICC key missing... */
    KV_CVM_OUT_PIN_TRY_LIMIT, /* PIN try counter 0 before or after entry: TVR "PIN try limit
                                 exceeded" */
    KV_CVM_OUT_PIN_PAD_FAULT, /* PIN pad absent or not working: TVR "PIN pad not present" */
    KV_CVM_OUT_PIN_BYPASSED,  /* PIN entry bypassed: TVR "PIN pad present, PIN not entered" */
};

/*
 * Perform CVM method (6-bit code: 01-05 or 1E) for the rule with condition
 * code condition; set *outcome. A non-zero return (a negative KV_ERR_*, e.g.
 * the card was removed) stops the processing and is returned by
 * kv_cvm_process.
 */
typedef int (*kv_cvm_perform_fn)(void *arg, uint8_t method, uint8_t condition, int *outcome);

/* What cardholder verification found. */
typedef struct {
    uint8_t results[3];     /* 9F34 */
    int processed;          /* 1 when rules were processed (TSI bit) */
    int successful;         /* 1 when a CVM completed (results 02, or 00 for online PIN and
                               signature); 0 when verification failed or nothing was processed */
    int rule;               /* index of the rule that decided, -1 when none */
    uint8_t method;         /* 6-bit code of results[0] (3F when no CVM performed) */
    int online_pin;         /* 1 when an online PIN was captured */
    int signature_required; /* 1 when a signature must be taken (1E, 03, 05) */
    int callbacks;          /* number of callbacks made */
} kv_cvm_result;

/*
 * Run cardholder verification for txn. fn (with arg) performs CVMs; fn may
 * be NULL, in which case every CVM that needs it is treated as failed. The
 * bits are ORed into tvr (5 bytes) and tsi (2 bytes). Returns 0 (outcome in
 * *res, verification failure included), KV_ERR_CVM_LIST (malformed 8E: the
 * caller terminates the transaction, Book 3 §7.5) or the callback's error.
 */
int kv_cvm_process(const kv_cvm_txn *txn, kv_cvm_perform_fn fn, void *arg, uint8_t tvr[5],
                   uint8_t tsi[2], kv_cvm_result *res);

#endif

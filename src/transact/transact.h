/*
 * One card-present EMV transaction, verified through the HSM (the flow the
 * README describes under "Card-present transactions"; EMV Book 3 §10):
 * selection among the terminal configuration's AIDs -> GPO -> records ->
 * mandatory data -> offline data authentication -> processing restrictions
 * -> cardholder verification -> (contactless: CVC3) -> terminal risk
 * management -> terminal action analysis (AAC, TC or ARQC asked for) -> 1st
 * GENERATE AC -> the cryptogram verified in the HSM per CVN -> card action
 * analysis -> for an ARQC: online PIN checked against the PVV, issuer
 * decision, ARPC, issuer authentication (EXTERNAL AUTHENTICATE or inside
 * the 2nd GENERATE AC), issuer scripts 71 -> 2nd GENERATE AC (CDA when the
 * card did CDA) -> scripts 72 -> the card's TC or AAC and the outcome.
 *
 * Offline decisions come from the action codes alone (TAC | IAC); the
 * issuer's side (this terminal is also the issuer host, with the HSM)
 * declines an online request whose ARQC does not verify or whose TVR shows
 * failed offline data authentication, an expired application or a service
 * not allowed, besides the CVM and PIN checks and the authorize hook.
 *
 * It lives in src/ because it needs both apdu/ (the card) and hsm/ (the
 * issuer keys). A clear PIN exists only in kv_secbuf memory (the caller's,
 * or one decrypted here from an ISO 9564 format 4 block under a PIN key)
 * and is wiped before kv_transact_run returns.
 *
 * The result is the verification result (kv_transact_result_json) that
 * later steps store as evidence. Integration point for src/authorize: the
 * fields pan/psn/expiry/amount/currency and the verified factors
 * (arqc_verified -> chip_cryptogram, offline/online PIN -> pin_offline /
 * pin_online, cvc3_verified -> cvc3) map onto a kv_auth_request with
 * upstream-verified factors ({"type", "verified"}) for kv_authz_decide; the
 * issuer's decision enters the transaction through the authorize hook of
 * kv_transact_params (called before the ARPC, so the ARC the card receives
 * carries it).
 */
#ifndef KV_TRANSACT_TRANSACT_H
#define KV_TRANSACT_TRANSACT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "apdu/capk.h"
#include "apdu/cvr.h"
#include "apdu/reader.h"
#include "apdu/script.h"
#include "apdu/termcfg.h"
#include "hsm/p11.h"
#include "src/base/secure.h"

#define KV_TRANSACT_DEFAULT_CVM_LIMIT 35000 /* øre: contactless CVM limit */
#define KV_TRANSACT_DEFAULT_IMK_AC "imk-ac"
#define KV_TRANSACT_DEFAULT_IMK_CVC3 "imk-cvc3"
#define KV_TRANSACT_DEFAULT_IMK_AES "imk-ac-aes" /* CVN 6 (EMV CCD, AES) */

typedef struct kv_transact_result kv_transact_result;

/*
 * The issuer's authorization, asked once per transaction that went online
 * (the card answered the 1st GENERATE AC with an ARQC), after the ARQC, the
 * online PIN and the CVC3 are verified and before the ARPC: res holds the
 * verification result so far (cvm, cvr, arqc_verified, ac_data, ...).
 * *approve 1 approves; 0 declines (the card then gets ARC "05" and answers
 * an AAC). A non-zero return ends the transaction with that error.
 */
typedef int (*kv_transact_authorize_fn)(void *ctx, const kv_transact_result *res, int *approve);

/* What to do. Strings are borrowed for the duration of kv_transact_run. */
typedef struct {
    uint64_t amount;       /* minor units */
    uint16_t currency;     /* ISO 4217 numeric (208) */
    char currency_code[4]; /* "DKK" */
    int cash;              /* 1: cash (9C 01), 0: purchase (9C 00) */
    int services;          /* a purchase of services, not goods (AUC check, Book 3 §10.4.2) */
    const char *profile;   /* "pos" (default when NULL), "atm", "unattended" */
    int contactless;       /* 1: PPSE only, contactless CVM limit rules, CVC3 */
    uint64_t cvm_limit;    /* contactless CVM limit; 0: the default */

    /* PIN sources (at most one): a clear PIN (lab) or a format 4 block under pin_key */
    kv_secbuf *pin; /* borrowed; pin_len digits at kv_secbuf_ptr */
    size_t pin_len;
    const uint8_t *pin_block; /* 16 bytes, ISO 9564 format 4 */
    size_t pin_block_len;
    const char *pin_key; /* label or pkcs11: URI of the AES PIN key */

    const char *imk_ac;   /* NULL: "imk-ac" */
    const char *imk_cvc3; /* NULL: "imk-cvc3" */
    const char *imk_aes;  /* AES IMK of the AES CVNs (CCD CVN 6); NULL: "imk-ac-aes" */
    const char *pvk;      /* online PIN: PVV key; NULL: online PIN cannot be checked */
    char pvv[5];          /* 4 digits */
    int pvki;             /* 0..9 */

    const kv_capk_store *capks; /* CA keys; NULL: every CA index unknown */
    kv_hsm *hsm;                /* borrowed, logged in */
    long long now;              /* transaction time (time_t); 0: time(NULL) */

    kv_transact_authorize_fn authorize; /* NULL: the local checks alone decide */
    void *authorize_ctx;

    /* terminal configuration (per AID, Book 3 §10.6-10.7); NULL: kv_term_config_defaults */
    const kv_term_config *term;
    const uint8_t *select_aid; /* --select: the operator's choice of application; NULL none */
    size_t select_aid_len;
    /*
     * Terminal risk management's view of kortvagt's store, asked once the PAN
     * is read: *listed 1 when the card is on the block list (exception file),
     * *prior the amount of earlier approvals of this card today that the
     * store knows (floor limit). NULL: not listed, 0.
     */
    int (*exception_check)(void *ctx, const char *pan, int *listed, uint64_t *prior);
    void *exception_ctx;
    unsigned random_override; /* 1..99: the random selection number (tests); 0: CSPRNG */
    int force_online;         /* merchant forced online (TVR byte 4 bit 4) */
    int unable_online;        /* lab: the issuer cannot be reached (ARC Z3/Y3 path) */

    /* issuer scripts (Book 3 §10.10) */
    const char *imk_smi; /* NULL: "imk-smi" */
    const char *imk_smc; /* NULL: "imk-smc" */
    int script_kind;     /* enum kv_script_kind of hsm/issuer_script.h; 0: none */
    int script_after;    /* 1: send it as 72 (after the 2nd GENERATE AC), 0: as 71 */
    kv_secbuf *new_pin;  /* PIN CHANGE: the new PIN (new_pin_len digits) */
    size_t new_pin_len;
    const uint8_t *issuer_scripts; /* raw 71/72 templates from an issuer host; NULL none */
    size_t issuer_scripts_len;
} kv_transact_params;

/* The transaction's outcome (Book 4 §6.3.2 ARCs and the card's final decision). */
enum kv_transact_outcome {
    KV_TXN_OUT_TERMINATED = 0,
    KV_TXN_OUT_APPROVED_OFFLINE,
    KV_TXN_OUT_DECLINED_OFFLINE,
    KV_TXN_OUT_APPROVED_ONLINE,
    KV_TXN_OUT_DECLINED_ONLINE,
    KV_TXN_OUT_APPROVED_UNABLE_ONLINE,
    KV_TXN_OUT_DECLINED_UNABLE_ONLINE,
};

/* "approved_offline", ... as in the JSON. */
const char *kv_transact_outcome_name(int outcome);

#define KV_TXN_MAX_SCRIPT_RESULTS 16

/* CVM as performed. */
enum kv_transact_cvm {
    KV_TXN_CVM_NONE_PERFORMED = 0, /* no rule applied / none performed */
    KV_TXN_CVM_OFFLINE_PLAIN,
    KV_TXN_CVM_OFFLINE_ENCIPHERED,
    KV_TXN_CVM_ONLINE_PIN,
    KV_TXN_CVM_SIGNATURE,
    KV_TXN_CVM_NO_CVM,
    KV_TXN_CVM_FAILED,
};

/* The verification result. Fixed-size; filled by kv_transact_run. */
struct kv_transact_result {
    /* cvm */
    int cvm_method;             /* enum kv_transact_cvm */
    int cvm_result;             /* 2 successful, 1 failed, 0 unknown */
    uint8_t cvm_results[3];     /* 9F34 */
    int online_pin_checked;     /* 1 when the PIN block was checked against the PVV */
    int online_pin_ok;          /* its result */
    int pin_try_counter_before; /* 9F17 before the CVM, -1 when not read */
    int pin_try_counter_after;  /* 9F17 after, -1 when not read */
    /* oda */
    int oda_method; /* enum kv_oda_method */
    int oda_state;  /* enum kv_oda_state */
    int oda_reason; /* 0 or KV_ERR_ODA_* */
    /* arqc */
    int arqc_present;
    int arqc_verified;
    int cvn; /* -1 unknown */
    uint8_t arqc[8];
    uint8_t ac_data[96]; /* the AC data the ARQC covers (CRYPTO.md §3); ac_data_len 0: none */
    size_t ac_data_len;
    uint8_t un[4]; /* 9F37 sent in the CDOL1 data */
    /* cvc3 (contactless) */
    int cvc3_present;
    int cvc3_verified;
    /* arpc */
    int arpc_sent;
    int arpc_method;    /* 1 or 2, 0 when none */
    int arpc_via_genac; /* 1: inside the 2nd GENERATE AC (91 in CDOL2), 0: EXTERNAL AUTHENTICATE */
    int issuer_auth_accepted; /* EXTERNAL AUTHENTICATE answered 9000 */
    /* the card */
    uint8_t first_cid; /* 9F27 of the 1st GENERATE AC */
    uint8_t final_cid; /* the card's last decision */
    int card_decision; /* KV_AC_TC / KV_AC_AAC / KV_AC_ARQC */
    int cvr_known;
    int offline_pin_performed, offline_pin_verified, offline_pin_failed, pin_try_limit_exceeded;
    uint8_t tvr[5];
    uint8_t tsi[2];
    uint8_t atc[2];
    int has_atc;
    char pan_masked[20];
    char pan[20]; /* full PAN (for the request mapping; never printed) */
    char psn[3];
    char expiry[5];
    uint64_t amount;
    char currency[4];
    long long at;           /* time_t */
    int authorize_called;   /* the authorize hook was asked */
    int authorize_approved; /* and approved */
    /* terminal risk management, action analysis, outcome (issue 12) */
    char aid[33];           /* selected AID, hex */
    int first_ac_requested; /* KV_AC_* asked for in the 1st GENERATE AC (terminal action analysis)
                             */
    int first_ac;           /* KV_AC_* the card answered */
    int second_ac;          /* KV_AC_* of the 2nd GENERATE AC; -1 none */
    uint8_t cid_flags;      /* 9F27 bits 4-1: advice required, reason/advice code */
    int outcome;            /* enum kv_transact_outcome */
    int issuer_authentication; /* 0 not performed, 1 ok, 2 failed */
    int cda_second;            /* CDA on the 2nd GENERATE AC: 0 not requested, 1 ok, 2 failed */
    uint8_t arc[2];            /* 8A sent to the card ("00", "05", "Z3", "Y3"...); 0 0 none */
    kv_cvr_info cvr;           /* the CVR decoded (apdu/cvr.h), layout UNKNOWN when none */
    kv_script_result scripts[KV_TXN_MAX_SCRIPT_RESULTS];
    size_t nscripts;
    int approved;       /* the final decision: local checks, authorization and the card's TC */
    const char *reason; /* static text */
    unsigned long apdus;
};

/*
 * Run one transaction on the card in reader r with p. Returns 0 with *res
 * filled (approved or declined: a decision, not an error), or an error that
 * ended the transaction before a decision: a transport error (card removed:
 * KV_ERR_PCSC_REMOVED), KV_ERR_NO_APPLICATION, KV_ERR_CARD_DATA / a
 * KV_ERR_CARD_* of a command that must succeed, KV_ERR_HSM_KEY (an IMK or
 * PIN key not found) or another HSM error, KV_ERR_ARG (bad parameters). On
 * an error res->approved is 0 and nothing about the card is to be recorded.
 */
int kv_transact_run(kv_reader *r, const kv_transact_params *p, kv_transact_result *res);

/*
 * The verification result as a new JSON object (the caller json_decref()s
 * it), NULL on out of memory:
 * {"cvm": {"method", "result", "cvm_results"}, "oda": {"method", "result",
 * "reason"}, "arqc": {"verified", "cvn", "atc"}, "arpc": {"sent", "method",
 * "via"}, "cvc3": {"verified"} (contactless), "card_decision", "cvr":
 * {"offline_pin_performed", "offline_pin_verified", "offline_pin_failed",
 * "pin_try_limit_exceeded"}, "tvr", "tsi", "atc", "pan" (masked), "amount",
 * "currency", "at" (RFC 3339 UTC), "decision", "reason", "apdu_count",
 * and the terminal's view: "aid", "first_ac_requested", "first_ac",
 * "second_ac" ("aac"|"tc"|"arqc"|null), "cid" {"advice_required",
 * "reason"}, "outcome" (kv_transact_outcome_name), "issuer_authentication"
 * ("ok"|"failed"|"not_performed"), "cda_second" ("ok"|"failed"|
 * "not_requested"), "arc" (two characters or null), "cvn", "scripts" [{
 * "template", "id", "seq", "ins", "sw", "result"}], "script_results" (9F5B
 * hex, when scripts ran); "cvr" also carries "layout", "hex", "offline_pin"
 * and "bits" (the named CVR bits of its layout), "first_ac"/"second_ac" as
 * the CVR reports them}.
 */
json_t *kv_transact_result_json(const kv_transact_result *res);

/* "offline_pin_plain", ... as in the JSON. */
const char *kv_transact_cvm_name(int method);

#endif

/*
 * Internal to kv_vcard: the parsed card profile that the card state machine
 * (card.c) answers from. The JSON format is described at the top of
 * profile.c and in tests/data/README.md.
 *
 * Everything the card sends is built here, at load time (FCIs, PSE directory
 * records, record templates), so that a profile that cannot be answered
 * (an FCI longer than 256 bytes, a malformed record) fails to load instead of
 * failing in the middle of a transaction.
 */
#ifndef KV_APDU_VCARD_PROFILE_H
#define KV_APDU_VCARD_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "src/base/secure.h"

#define KV_VCARD_DATA_MAX 256 /* data bytes of one R-APDU */
#define KV_VCARD_DF_NAME_MAX 16
#define KV_VCARD_MAX_APPS 8
#define KV_VCARD_MAX_DFS (2 + KV_VCARD_MAX_APPS) /* PSE, PPSE, applications */
#define KV_VCARD_MAX_RECORDS 32                  /* per DF */
#define KV_VCARD_MAX_DATA 16                     /* GET DATA objects per card or application */
#define KV_VCARD_VALUE_MAX 128                   /* one GET DATA value */
#define KV_VCARD_PIN_BLOCK_LEN 8
#define KV_VCARD_PIN_TRY_MAX 15 /* the x of 63Cx is 4 bits */
#define KV_VCARD_DOL_MAX 64     /* CDOL1/2, DDOL, UDOL kept per application */
#define KV_VCARD_TRACK_MAX 64   /* track 2 equivalent data (57) */

enum kv_vcard_df_kind { KV_VCARD_DF_PSE, KV_VCARD_DF_PPSE, KV_VCARD_DF_APP };

typedef struct {
    uint8_t sfi;    /* 1..30 */
    uint8_t number; /* 1..255 */
    size_t len;
    uint8_t data[KV_VCARD_DATA_MAX]; /* one 70 template */
} kv_vcard_record;

typedef struct {
    uint32_t tag;
    size_t len;
    uint8_t value[KV_VCARD_VALUE_MAX];
} kv_vcard_dataobj;

typedef struct {
    enum kv_vcard_df_kind kind;
    uint8_t name[KV_VCARD_DF_NAME_MAX]; /* DF name (AID for applications) */
    size_t name_len;
    uint8_t fci[KV_VCARD_DATA_MAX]; /* the whole 6F template */
    size_t fci_len;
    int blocked; /* SELECT answers the FCI with 6283 */
    kv_vcard_record records[KV_VCARD_MAX_RECORDS];
    size_t nrecords;

    /* applications only */
    size_t pdol_data_len; /* sum of the PDOL's lengths: the 83 template's length */
    uint8_t aip[2];
    uint8_t afl[252];
    size_t afl_len;
    int gpo_format;         /* 1 (80) or 2 (77) */
    uint8_t gpo_extra[240]; /* objects after 82 and 94 in a format 2 answer */
    size_t gpo_extra_len;
    kv_vcard_dataobj data[KV_VCARD_MAX_DATA]; /* GET DATA, looked up before the card's */
    size_t ndata;

    /* found in the application's records at load time (CRYPTO.md); len 0: absent */
    uint8_t cdol1[KV_VCARD_DOL_MAX], cdol2[KV_VCARD_DOL_MAX], ddol[KV_VCARD_DOL_MAX],
        udol[KV_VCARD_DOL_MAX];
    size_t cdol1_len, cdol2_len, ddol_len, udol_len;
    uint8_t track2[KV_VCARD_TRACK_MAX]; /* 57 value */
    size_t track2_len;
} kv_vcard_df;

/* The card's keys (profile "keys", CRYPTO.md §1). Test keys of a virtual card. */
typedef struct {
    int present; /* the profile has a "keys" object */
    int cvn;     /* 10, 18, 22 (Visa), 16, 17, 20, 21 (Mastercard), 5, 6 (CCD) */
    uint8_t dki;
    int iad_format;  /* Visa: 0, 1, 2, 3 (CRYPTO.md §3) */
    uint8_t idd[24]; /* issuer discretionary data of IAD formats 1, 2, 3 */
    size_t idd_len;
    int has_ac_mk;
    uint8_t ac_mk[16]; /* ICC AC master key A||B (AES-128 for CVN 6) */
    int has_smi_mk, has_smc_mk;
    uint8_t smi_mk[16], smc_mk[16]; /* secure messaging integrity / confidentiality MKs */
    size_t sm_mac_len;              /* issuer script MAC length 4..8 (default 8) */
    int has_cvc3_mk;
    uint8_t cvc3_mk[16];                    /* KDcvc3 */
    uint8_t cvc3_track[KV_VCARD_TRACK_MAX]; /* IVCVC3 input; len 0: the application's 57 */
    size_t cvc3_track_len;
    EVP_PKEY *icc_rsa;     /* NULL: no ODA key (no DDA/CDA/enciphered PIN) */
    EVP_PKEY *icc_pin_rsa; /* NULL: icc_rsa deciphers the PIN */
    int first_ac_follow;   /* 1: a TC request in 1st GEN AC gets a TC */
    int first_ac_set;      /* "first_ac" given (else "follow" when the card has "risk") */
} kv_vcard_keys;

#define KV_VCARD_CIAC_MAX 6 /* card issuer action codes: as long as the longest CVR */

/* Card risk management (profile "risk", CRYPTO.md §6). */
typedef struct {
    int present;
    int lcol, ucol; /* offline counter limits 0..255; -1: not checked */
    uint8_t ciac_denial[KV_VCARD_CIAC_MAX], ciac_online[KV_VCARD_CIAC_MAX],
        ciac_default[KV_VCARD_CIAC_MAX]; /* over the CVR bytes; zero-filled */
    int issuer_auth_required;            /* online without issuer authentication: AAC */
    unsigned script_mac_limit;           /* wrong script MACs before the application blocks */
} kv_vcard_risk;

/* What one application of a multi-application card has of its own ("applications"[i]). */
typedef struct {
    kv_vcard_keys *keys;  /* NULL: the card's */
    kv_vcard_risk *risk;  /* NULL: the card's */
    kv_secbuf *pin_block; /* NULL: the card's PIN */
    unsigned pin_try_limit, pin_tries;
    int has_atc; /* its own ATC (initial value atc) */
    unsigned atc;
} kv_vcard_app_own;

typedef struct {
    char name[128];
    uint8_t atr[33];
    size_t atr_len;
    kv_vcard_df dfs[KV_VCARD_MAX_DFS]; /* applications in profile order, then PSE, PPSE */
    size_t ndfs;
    kv_vcard_dataobj data[KV_VCARD_MAX_DATA]; /* card-level GET DATA objects */
    size_t ndata;
    kv_secbuf *pin_block; /* plaintext PIN block (EMV Book 3 §6.5.12); NULL: no PIN */
    unsigned pin_try_limit;
    unsigned pin_tries; /* initial tries left */
    unsigned atc;       /* initial ATC (GET DATA 9F36 in the profile) */
    unsigned quirks;    /* KV_VCARD_QUIRK_* */
    kv_vcard_keys keys;
    kv_vcard_risk risk;
    kv_vcard_app_own own[KV_VCARD_MAX_APPS]; /* per application, index as dfs */
    /*
     * The whole profile, kept (with the PIN wiped) for commands that a later
     * version reads more of, e.g. the "keys" object for GENERATE AC and
     * INTERNAL AUTHENTICATE.
     */
    json_t *root;
    /* "faults" and "log" (apdu/vcard/card_fault.h); NULL when absent */
    struct kv_vcard_faults *faults;
    struct kv_vcard_logcfg *log;
} kv_vcard_profile;

/*
 * Build a profile from the JSON object root (the caller keeps its reference;
 * the profile takes one of its own). The PIN string inside root is wiped.
 * Returns 0 and *out, KV_ERR_JSON / KV_ERR_FORMAT with a reason in why,
 * or KV_ERR_NOMEM.
 */
int kv_vcard_profile_build(json_t *root, kv_vcard_profile **out, char *why, size_t whylen);
/*
 * profile_keys.c: the "keys" and "risk" objects of the profile and the
 * per-application "keys", "risk", "pin", "atc" (CRYPTO.md §1, §6). Called by
 * kv_vcard_profile_build after the applications are parsed; why as there.
 */
int kv_vcard_profile_keys(json_t *root, kv_vcard_profile *p, char *why, size_t whylen);
/* Free and wipe what kv_vcard_profile_keys put into p. */
void kv_vcard_profile_keys_free(kv_vcard_profile *p);

/* Wipe the PIN block and the keys, free. NULL is a no-op. */
void kv_vcard_profile_free(kv_vcard_profile *p);

#endif

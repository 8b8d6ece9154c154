/*
 * The personalization bench's policy: the JSON profile of a personalized
 * virtual card (apdu/vcard/profile.h reads it back) built from a card
 * template, with the card's keys derived and its certificates signed in the
 * HSM (hsm/perso.h), CVV / iCVV / PVV computed in the HSM and written into
 * track 2, and the check of such a profile's certificates as a terminal
 * would do it. The `kortvagt perso` command (src/cli/cmd_perso.c) reads
 * its arguments and files, finds the keys and prints; everything between is
 * here.
 *
 * Template format (the files in tests/data/templates):
 * {
 *   "name", "atr", "pse", "ppse", "data", "quirks": as in a card profile,
 *   "pin": {"try_limit": 3},                the PIN is the caller's, else 1234
 *   "oda": "none" | "sda" | "dda" | "cda",  default for kv_perso_card.oda
 *   "cvn": 10 | 18 | 22 | 16 | 17 | 20 | 21 | 5 | 6
 *                                           the personality (default 10): Visa
 *                                           VSDC 10/18/22, Mastercard M/Chip
 *                                           16/17/20/21, EMV CCD 5/6 (6: AES)
 *   "ca_index": "E1",                       8F
 *   "cvc3": true,                           needs kv_perso_card.cvc3_imk
 *   "keys": {...},                          more "keys" fields (dki, iad_format,
 *                                           idd, first_ac, sm_mac_len)
 *   "risk": {"lcol", "ucol", "issuer_auth_required", "ciac_*", ...}
 *                                           card risk management (CRYPTO.md);
 *                                           lcol/ucol also become 9F14/9F23
 *   "application": {                        one application: the profile fields
 *       "aid", "label", "priority", "language", "pdol", "gpo_format", ...,
 *       "aip": "1800",                      base AIP; perso adds the ODA bits
 *       "service_code": "201",              track 2 (57) and 5F30
 *       "cardholder_name": "TEST/CARD",     5F20
 *       "track_tags": TLV list,             more objects in SFI 1 record 1
 *       "tags": TLV list                    static data of SFI 2 record 1 (signed)
 *   }
 * }
 * Records written: SFI 1 rec 1 (57, 5F20, track_tags); SFI 2 rec 1 (5A, 5F24,
 * 5F34, tags, 5F30, 9F14, 9F23, 9F49, 9F4A; the one record for ODA); SFI 2
 * rec 2 (8F, 90, 9F32, 92); SFI 2 rec 3 (93, or 9F46 9F47 9F48). AFL
 * 08010100 10010301.
 *
 * One source value per data element: the bench derives PAN (5A, 57, the
 * certificates), expiry (5F24, 57, the certificates), PSN (5F34, the key
 * derivation), service code (57, 5F30, the CVV), cardholder name (5F20),
 * effective date (5F25, when the card gives one) and the offline counter
 * limits (9F14/9F23 from "risk"). A template that lists one of these tags
 * has it replaced by the derived value (5F25, 5F30, 9F14, 9F23) or dropped
 * (5A, 5F24, 5F34, 57, 5F20: written once by the bench).
 */
#ifndef KV_PERSO_PERSO_PROFILE_H
#define KV_PERSO_PERSO_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "apdu/capk.h"
#include "hsm/p11.h"
#include "src/base/secure.h"

#define KV_PERSO_LAB_PIN "1234" /* the PIN of a card when the caller gives none */
#define KV_PERSO_ISSUER_BITS 1024
#define KV_PERSO_ICC_BITS 768
#define KV_PERSO_REC_MAX 253 /* a 70 template in one R-APDU */

/* What one card gets. Strings are the caller's; NULL means "not given". */
typedef struct {
    const char *tmpl; /* the template's file name, for messages */
    const char *imk;  /* IMK label (AC master key); required */
    const char *cvc3_imk;
    const char *pan, *psn, *expiry; /* digits: 12..19, 2, YYMM; checked by the caller */
    const char *oda, *cvn;          /* "none".."cda", a CVN of the template's personality;
                                       NULL: the template's */
    int issuer_cvn;                 /* the issuer's CVN (0: none): used when it is of the
                                       template's personality, else the template's stands */
    const char *imk_aes;            /* AES IMK label (the AC key of CVN 6) */
    const char *imk_smi, *imk_smc;  /* secure messaging IMKs (optional; DES2 or AES) */
    const char *effective;          /* YYMM: 5F25 (NULL: the template's 5F25, if any) */
    const char *issuer;             /* issuer RSA key label (created on first use) */
    const char *ca_key;             /* the CA private key as a PEM file (TEST ONLY) */
    const char *tamper;             /* "issuer-cert": flip one certificate byte */
    const char *transport;          /* AES transport key: ICC MKs leave the HSM wrapped under it */
    const char *ca_label;           /* CA private key in the HSM (else the PEM ca_key) */
    const char *cvk, *pvk;          /* CVV/iCVV and PVV keys; NULL: zeros in track 2 */
    int pvki;                       /* 0..9 */
    const char *service_code;       /* overrides the template's */
    const char *cardholder;         /* overrides the template's cardholder_name */
    const char *issuer_name;        /* into "expect" */
    int has_ca_index;
    uint8_t ca_index;
    kv_secbuf *pin; /* the PIN, NUL-terminated (the caller's); NULL: KV_PERSO_LAB_PIN */
} kv_perso_card;

/* Which kinds of key a lookup accepts (a bitmask). */
enum {
    KV_PERSO_KEY_DES = 1,     /* DES2 or DES3 */
    KV_PERSO_KEY_DES2_AA = 2, /* DES2 with its A||A companion */
    KV_PERSO_KEY_AES = 4,
};

/*
 * The caller's key lookup: find label of one of the kinds in want into out.
 * Returns 0, or nonzero when the key is missing or of the wrong kind (the
 * caller has said why, e.g. printed it; the value comes back in
 * kv_perso_fail.err).
 */
typedef int (*kv_perso_key_fn)(void *arg, const char *label, unsigned want, kv_hsm_key *out);

enum kv_perso_fail_kind {
    KV_PERSO_FAIL_NONE = 0,
    KV_PERSO_FAIL_INTERNAL, /* out of memory, no random bytes...: no message */
    KV_PERSO_FAIL_USAGE,    /* a bad template or argument: msg says what */
    KV_PERSO_FAIL_OP,       /* an HSM / crypto step failed: msg says which, err the KV_ERR_* */
    KV_PERSO_FAIL_KEY,      /* the key lookup failed: err is what it returned */
};

typedef struct {
    int kind; /* enum kv_perso_fail_kind */
    int err;
    char msg[512];
} kv_perso_fail;

/* What was built, for the caller's report. */
typedef struct {
    int method;      /* KV_ODA_* */
    int cvn;         /* the CVN */
    int personality; /* KV_PERSO_PERS_* */
    int has_cvc3;    /* 1: the card has a CVC3 key */
    int has_smi;     /* 1: the card has secure messaging keys (SMI, SMC) */
    int has_smc;
    int issuer_created; /* 1: the issuer RSA key was generated by this build */
} kv_perso_summary;

/* The card personalities, chosen by the CVN (COMMON "keys" format). */
enum {
    KV_PERSO_PERS_NONE = 0,
    KV_PERSO_PERS_VISA,  /* Visa VSDC: CVN 10, 18, 22 */
    KV_PERSO_PERS_MCHIP, /* Mastercard M/Chip 4 / Advance: CVN 16, 17, 20, 21 */
    KV_PERSO_PERS_CCD,   /* EMV Common Core Definitions: CVN 5 (TDES), 6 (AES) */
};

/* Pure. The personality of a CVN (KV_PERSO_PERS_NONE when unknown) and its name. */
int kv_perso_personality(int cvn);
const char *kv_perso_personality_name(int personality);

/*
 * Pure. The CVN a card gets: the template's (tmpl_cvn), the issuer's
 * (issuer_cvn, 0: none) when of the same personality, the card's (card_cvn,
 * 0: none) which must be of the same personality. Returns the CVN, or -1
 * with why filled (an unknown CVN, or the card's of another personality).
 */
int kv_perso_resolve_cvn(int tmpl_cvn, int issuer_cvn, int card_cvn, char *why, size_t whylen);

/*
 * Build the profile of card a from the template tmpl (a JSON object) with
 * the keys in h, found through find(find_arg, ...). On success returns 0,
 * *profile is a new JSON object (it holds the card's keys and PIN: write it
 * with mode 0600) and *sum is filled. Otherwise returns a negative KV_ERR_*
 * and says why in *fail.
 */
int kv_perso_profile_build(kv_hsm *h, const kv_perso_card *a, json_t *tmpl, kv_perso_key_fn find,
                           void *find_arg, json_t **profile, kv_perso_summary *sum,
                           kv_perso_fail *fail);

/*
 * The certificates of a profile made by kv_perso_profile_build, checked as a
 * terminal would with the CA keys in store: each result is "ok", "absent",
 * "not checked", "mismatch" or the reason (kv_strerror text).
 */
#define KV_PERSO_FINDINGS_MAX 24
#define KV_PERSO_FINDING_LEN 160

typedef struct {
    int ok;              /* 1: everything present checked out */
    const char *issuer;  /* issuer certificate (90, 92, 9F32 under the CA key 8F) */
    const char *icc;     /* ICC certificate (9F46, 9F48, 9F47) */
    const char *icc_key; /* the recovered ICC key is the profile's "icc_rsa" */
    const char *ssad;    /* signed static application data (93) */
    /*
     * The consistency of the data elements (every record of every
     * application): 5A / 57 PAN, 5F24 / 57 expiry, 5F30 / 57 service code,
     * 5F25 before 5F24, a tag in two records, 9F14 / 9F23 / "risk", the
     * certificates' expiry / 5F24, "expect" / the records, the CVN / the
     * AID's scheme. "ok" or "mismatch"; each finding names the tags.
     */
    const char *consistency;
    size_t nfindings;
    char findings[KV_PERSO_FINDINGS_MAX][KV_PERSO_FINDING_LEN];
} kv_perso_check_result;

/*
 * Check profile (the parsed JSON) on date (YYMMDD; 0: today, UTC). Returns 0
 * with *res filled (res->ok says the verdict); KV_ERR_FORMAT when the profile
 * does not have the perso layout (why says what, whylen bytes); or
 * KV_ERR_NOMEM. Records may be given as "hex" (the bench's) or "tags" (the
 * hand-written sample profiles). store may be NULL (certificates "not
 * checked"). A profile whose AIP asks for no ODA and that has no 8F / 90 has
 * its certificates "absent", not failed.
 */
int kv_perso_profile_check(const json_t *profile, const kv_capk_store *store, uint32_t date,
                           kv_perso_check_result *res, char *why, size_t whylen);

/* 1 when the last digit of pan (2..19 digits) is its Luhn check digit, else 0. */
int kv_perso_pan_luhn_ok(const char *pan);

/*
 * pan + step for a batch of cards: the PAN's body (all but the check digit)
 * counted up by step, and a new Luhn check digit, into out (same length as
 * pan). Returns 0, or -1 when the body runs out of digits.
 */
int kv_perso_pan_step(const char *pan, unsigned long step, char out[20]);

#endif

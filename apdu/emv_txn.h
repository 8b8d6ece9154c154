/*
 * The card side of one EMV transaction after the records are read: the
 * commands and the data the terminal builds or parses for them (EMV Book 3
 * §6.5, §10.4, §10.5; Book 2 §7; EMV Contactless Book C-2 for COMPUTE
 * CRYPTOGRAPHIC CHECKSUM). No key material lives here except the card's
 * public key for enciphered PIN (public-key RSA with OpenSSL); the issuer
 * checks (ARQC, ARPC, CVC3, PVV) are the HSM's, in src/transact.
 *
 * Every function that sends a command does it through kv_emv_command on a
 * session whose application is selected (kv_emv_select/kv_emv_gpo). Card
 * answers are untrusted: a malformed answer is KV_ERR_CARD_DATA, an error
 * status word its KV_ERR_CARD_* (kv_sw_to_err), and transport errors (card
 * removed: KV_ERR_PCSC_REMOVED) pass through unchanged. Result values (a
 * wrong PIN, issuer authentication refused) are not errors.
 */
#ifndef KV_APDU_EMV_TXN_H
#define KV_APDU_EMV_TXN_H

#include <stddef.h>
#include <stdint.h>

#include "apdu/ac_data.h"
#include "apdu/dol.h"
#include "apdu/emv.h"
#include "apdu/oda.h"
#include "apdu/restrict.h" /* processing restrictions (Book 3 §10.4) */

/* ---- GENERATE AC (Book 3 §6.5.5) ------------------------------------------ */

/* A parsed GENERATE AC answer. Pointers go into the parsed buffer. */
typedef struct {
    int format;     /* 1 (template 80) or 2 (template 77) */
    uint8_t cid;    /* 9F27 cryptogram information data */
    uint8_t atc[2]; /* 9F36 */
    uint8_t ac[8];  /* 9F26; all zero when has_ac is 0 (a CDA answer signs it instead) */
    int has_ac;
    uint8_t iad[KV_IAD_MAX]; /* 9F10 issuer application data */
    size_t iad_len;          /* 0 when absent */
    const uint8_t *sdad;     /* 9F4B (format 2, CDA); NULL when absent */
    size_t sdad_len;
    const uint8_t *tlvs; /* format 2: the content of the 77 template (for the CDA hash) */
    size_t tlvs_len;
} kv_genac_resp;

/*
 * Parse len bytes of a GENERATE AC answer (SW removed): format 1, 80 with
 * CID (1) || ATC (2) || AC (8) || IAD (0..32), nothing after the template;
 * format 2, 77 holding at least 9F27 (1 byte) and 9F36 (2 bytes), 9F26 (8
 * bytes) unless 9F4B is present, optional 9F10 (1..32) and 9F4B. Returns 0,
 * KV_ERR_CARD_DATA (anything else: other template, wrong lengths, trailing
 * bytes, a duplicated object, malformed TLV). out is zeroed first.
 */
int kv_genac_parse(const uint8_t *p, size_t len, kv_genac_resp *out);

/* "aac", "tc", "arqc" or "rfu" for the type bits of a CID. */
const char *kv_ac_type_name(uint8_t cid);

/*
 * GENERATE AC 80 AE p1 00 with the CDOL data; the answer data into resp
 * (capacity cap, at least 64; *rlen its length) and parsed into *out (whose
 * pointers then go into resp). Returns 0, KV_ERR_CONDITIONS (6985), another
 * KV_ERR_CARD_* of the SW, KV_ERR_CARD_DATA or a transport error.
 */
int kv_emv_generate_ac(kv_emv *s, uint8_t p1, const uint8_t *data, size_t len, uint8_t *resp,
                       size_t cap, size_t *rlen, kv_genac_resp *out);

/* ---- Offline PIN and challenge (Book 3 §6.5.8, §6.5.12; Book 2 §7.2) ------ */

/*
 * GET CHALLENGE 00 84 00 00 00: an 8-byte ICC unpredictable number into
 * un. Returns 0, KV_ERR_CARD_DATA (answer not 8 bytes), KV_ERR_CARD_* or a
 * transport error.
 */
int kv_emv_get_challenge(kv_emv *s, uint8_t un[8]);

/*
 * Pure but for the random padding (OpenSSL RAND_bytes): the PIN encipherment
 * data block of Book 2 §7.2, N = key->modulus_len bytes:
 * 7F || PIN block (8, 2N PIN F..F) || ICC unpredictable number (8) || random
 * padding (N - 17), RSA-enciphered with key (public exponent) into out (N
 * bytes). The clear block lives in locked memory and is wiped. Returns 0,
 * KV_ERR_ARG (PIN not 4..12 digits, modulus below 17+1 bytes or above
 * KV_ODA_MOD_MAX), KV_ERR_NOMEM or KV_ERR_INTERNAL.
 */
int kv_pin_encipher(const char *pin, size_t pin_len, const uint8_t icc_un[8],
                    const kv_oda_pubkey *key, uint8_t *out);

/*
 * Enciphered offline PIN: GET CHALLENGE, kv_pin_encipher, VERIFY 00 20 00
 * 88 with the enciphered block. key is the ICC PIN encipherment public key
 * or, when the card has none, the ICC public key (both recovered by ODA).
 * Returns as kv_emv_verify_plain_pin.
 */
int kv_emv_verify_enciphered_pin(kv_emv *s, const char *pin, size_t pin_len,
                                 const kv_oda_pubkey *key, kv_pin_result *res);

/*
 * Recover the ICC PIN encipherment public key (9F2D/9F2E/9F2F, Book 2 §7.1)
 * with the issuer key. Returns 0 (*out filled), KV_ERR_NOT_FOUND when the
 * card has no 9F2D, or a KV_ERR_ODA_* as kv_oda_icc_key_recover.
 */
int kv_emv_pin_key_recover(const kv_emv *s, const kv_oda_pubkey *issuer, uint32_t txn_date,
                           kv_oda_pubkey *out);

/* ---- Dynamic data authentication ----------------------------------------- */

/*
 * INTERNAL AUTHENTICATE 00 88 00 00 with the DDOL data: the signed dynamic
 * application data (format 1: the whole value of template 80; format 2: 9F4B
 * of template 77) into sdad (capacity cap), *sdad_len its length. Returns 0,
 * KV_ERR_CARD_DATA, KV_ERR_CARD_* or a transport error.
 */
int kv_emv_internal_authenticate(kv_emv *s, const uint8_t *ddol_data, size_t ddol_len,
                                 uint8_t *sdad, size_t cap, size_t *sdad_len);

/* ---- Issuer authentication (Book 3 §6.5.4) -------------------------------- */

/*
 * EXTERNAL AUTHENTICATE 00 82 00 00 with the issuer authentication data
 * (91 value: ARPC || ARC for method 1, ARPC || CSU [|| data] for method 2;
 * 8..16 bytes). *accepted is 1 on 9000, 0 on 6300 (authentication failed).
 * Returns 0, KV_ERR_ARG, KV_ERR_CARD_* for other SWs or a transport error.
 */
int kv_emv_external_authenticate(kv_emv *s, const uint8_t *iad, size_t len, int *accepted);

/* ---- Contactless: COMPUTE CRYPTOGRAPHIC CHECKSUM (Mastercard mag-stripe mode) ---- */

typedef struct {
    int has_cvc3_track1, has_cvc3_track2;
    uint8_t cvc3_track1[2]; /* 9F60 */
    uint8_t cvc3_track2[2]; /* 9F61 */
    uint8_t atc[2];         /* 9F36 */
    int has_atc;
} kv_cc_resp;

/*
 * COMPUTE CRYPTOGRAPHIC CHECKSUM 80 2A 8E 80 with the UDOL data (default UDOL
 * 9F6A04: the 4-byte unpredictable number); the 77 answer parsed into *out.
 * Returns 0, KV_ERR_CARD_DATA (no 77, no CVC3, lengths wrong), KV_ERR_CARD_*
 * or a transport error.
 */
int kv_emv_compute_cc(kv_emv *s, const uint8_t *udol_data, size_t len, kv_cc_resp *out);

/* Pure. Parse a COMPUTE CRYPTOGRAPHIC CHECKSUM answer (SW removed); as above. */
int kv_cc_parse(const uint8_t *p, size_t len, kv_cc_resp *out);

/* ---- DOL data with session values ----------------------------------------- */

/*
 * Values a DOL may ask for beyond the terminal profile: 8A (authorisation
 * response code), 91 (issuer authentication data), 9F4C (ICC dynamic
 * number), 82 (AIP), 9F36 (ATC); each NULL/0 when not known.
 */
typedef struct {
    const uint8_t *arc; /* 8A, 2 bytes */
    size_t arc_len;
    const uint8_t *issuer_auth; /* 91 */
    size_t issuer_auth_len;
    const uint8_t *icc_dn; /* 9F4C */
    size_t icc_dn_len;
    const uint8_t *aip;
    const uint8_t *atc;
} kv_emv_dol_values;

/*
 * kv_dol_build with v's values first, then the terminal profile. Returns as
 * kv_dol_build.
 */
int kv_emv_dol_build(const uint8_t *dol, size_t dol_len, const kv_terminal *t,
                     const kv_emv_dol_values *v, uint8_t *out, size_t cap, size_t *outlen);

#endif

/*
 * Offline data authentication (EMV Book 2 §5-§6, Book 3 §10.3): public key
 * recovery of issuer and ICC certificates, SDA, DDA and CDA verification,
 * their TVR/TSI bits, and the signing side used by personalization and the
 * virtual card.
 *
 * RSA here is the EMV "recovery" (raw public-key operation, no padding) with
 * OpenSSL BIGNUM; the hash is SHA-1 (hash algorithm indicator 01), the only
 * one EMV defines for these certificates. No function keeps a pointer to its
 * inputs; every input byte is untrusted card data and every check failure is
 * a distinct negative code:
 *   KV_ERR_ODA_CA_UNKNOWN    no CA key for (RID, 8F)
 *   KV_ERR_ODA_CERT_LENGTH   certificate/signature length != key modulus length
 *   KV_ERR_ODA_HEADER        recovered header not 6A or trailer not BC (bad padding)
 *   KV_ERR_ODA_FORMAT        format byte not 02 / 04 / 03 / 05 as the object needs
 *   KV_ERR_ODA_HASH          hash result mismatch (also the CDA transaction data hash)
 *   KV_ERR_ODA_EXPIRED       certificate expiration date (MMYY) before the transaction month
 *   KV_ERR_ODA_PAN           issuer identifier / certificate PAN does not match 5A
 *   KV_ERR_ODA_ALGORITHM     hash or public key algorithm indicator other than 01
 *   KV_ERR_ODA_KEY_LENGTH    key/exponent length fields inconsistent, remainder missing
 *                            or of the wrong length, dynamic data length out of range
 *   KV_ERR_ODA_DATA_MISSING  a needed data object is absent (8F, 90, 9F32, 93, 9F46, ...)
 *   KV_ERR_ODA_RECORD        a record for ODA (any SFI, Book 3 §10.3) is not a 70
 *                            template, or 9F4A names a tag other than 82
 *   KV_ERR_CAPK_REVOKED      the issuer certificate (RID, 8F, serial) is on the store's
 *                            revocation list (capk.h)
 *   KV_ERR_ODA_MISMATCH      CDA: CID in the signature differs from the response's 9F27
 * and KV_ERR_NOMEM / KV_ERR_INTERNAL for OpenSSL failures. The steps run in
 * the order of Book 2 (length, trailer, header, format, ..., hash, PAN,
 * date, algorithm), so the first failing check names the error.
 *
 * Dates: txn_date is the transaction date 9A as an integer YYMMDD
 * (251231), as kv_terminal.date holds it; years 00-49 are 20xx, 50-99 19xx
 * (Book 4 §6.7). A certificate is valid through the last day of its
 * expiration month.
 */
#ifndef KV_APDU_ODA_H
#define KV_APDU_ODA_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "apdu/capk.h"

#define KV_ODA_MOD_MAX 248 /* largest modulus EMV uses (1984 bits) */
#define KV_ODA_MOD_MIN 64

/* Method (selection of Book 3 §10.3: CDA, else DDA, else SDA). */
enum kv_oda_method {
    KV_ODA_NONE = 0,
    KV_ODA_SDA = 1,
    KV_ODA_DDA = 2,
    KV_ODA_CDA = 3,
};

/* "none", "sda", "dda", "cda"; "?" otherwise. */
const char *kv_oda_method_name(int method);

/*
 * The method both sides support: AIP (82) byte 1 bits 0x01 CDA, 0x20 DDA,
 * 0x40 SDA against terminal capabilities (9F33) byte 3 bits 0x08 CDA, 0x40
 * DDA, 0x80 SDA. Returns enum kv_oda_method.
 */
int kv_oda_select_method(const uint8_t aip[2], const uint8_t term_caps[3]);

/* A certificate as read from the card: value bytes of its three tags. */
typedef struct {
    const uint8_t *cert; /* 90 / 9F46 / 9F2D; NULL when absent */
    size_t cert_len;
    const uint8_t *remainder; /* 92 / 9F48 / 9F2F; NULL when absent */
    size_t remainder_len;
    const uint8_t *exponent; /* 9F32 / 9F47 / 9F2E; NULL when absent */
    size_t exponent_len;
} kv_oda_cert_in;

/* A recovered (or to-be-certified) public key and its certificate fields. */
typedef struct {
    uint8_t modulus[KV_ODA_MOD_MAX];
    size_t modulus_len;
    uint8_t exponent[3];
    size_t exponent_len;
    uint8_t id[10];    /* issuer identifier (4 bytes, cn, F-padded) or ICC PAN (10 bytes, cn) */
    uint8_t expiry[2]; /* certificate expiration date MMYY, BCD */
    uint8_t serial[3]; /* certificate serial number */
    uint8_t hash_alg;  /* 01 */
    uint8_t pk_alg;    /* 01 */
} kv_oda_pubkey;

/* One AFL record marked for ODA, as READ RECORD returned it (70 template, SW removed). */
typedef struct {
    uint8_t sfi; /* 1..30 */
    const uint8_t *data;
    size_t len;
} kv_oda_record;

/*
 * The static data to be authenticated (Book 3 §10.3): for each record of
 * SFI 1-10 the value of its 70 template, for SFI 11-30 the whole record (tag
 * 70 and length included); a record of either that is not one 70 template
 * fails ODA (KV_ERR_ODA_RECORD). Any number of records (kv_emv_oda_static
 * gives a session's, without a bound); then
 * the value of the AIP when the Static Data Authentication Tag List (9F4A) is
 * present and is 82 (the only tag it may list).
 */
typedef struct {
    const kv_oda_record *records;
    size_t nrecords;
    const uint8_t *tag_list; /* 9F4A value, NULL when absent */
    size_t tag_list_len;
    uint8_t aip[2];
} kv_oda_static;

/*
 * The hash every ODA object carries (Book 2 §5.3-§6.6): SHA-1 over data (the
 * recovered bytes from the format byte up to the hash result), the key
 * remainder, the key exponent, the static data sd and extra (terminal
 * dynamic data: DDOL data for DDA, the unpredictable number for CDA); each
 * NULL/0 when the object does not include it. Returns 0, KV_ERR_ODA_RECORD
 * (sd malformed) or KV_ERR_INTERNAL.
 */
int kv_oda_hash(const uint8_t *data, size_t data_len, const uint8_t *rem, size_t rem_len,
                const uint8_t *exp, size_t exp_len, const kv_oda_static *sd, const uint8_t *extra,
                size_t extra_len, uint8_t out[20]);

/*
 * Raw RSA public operation: out (mod_len bytes) = in ^ exp mod modulus.
 * in_len must equal mod_len (KV_ERR_ODA_CERT_LENGTH) and in must be below
 * the modulus (KV_ERR_ODA_HEADER: cannot be a signature). KV_ERR_ODA_KEY_LENGTH
 * for an empty or even modulus or a zero exponent.
 */
int kv_oda_rsa_recover(const uint8_t *mod, size_t mod_len, const uint8_t *exp, size_t exp_len,
                       const uint8_t *in, size_t in_len, uint8_t *out);

/*
 * Issuer public key recovery (Book 2 §5.3 / §6.3) from the issuer public key
 * certificate (90), remainder (92) and exponent (9F32) with CA key ca; pan is
 * the 5A value (cn, F-padded). On success *out holds the issuer key with its
 * identifier, expiry and serial.
 */
int kv_oda_issuer_key_recover(const kv_capk *ca, const kv_oda_cert_in *in, const uint8_t *pan,
                              size_t pan_len, uint32_t txn_date, kv_oda_pubkey *out);

/*
 * kv_oda_issuer_key_recover with the CA key found in capks by (rid,
 * ca_index) and the store's revocation list checked (Book 2 §5.3 step 9):
 * KV_ERR_ODA_DATA_MISSING (ca_index not 0..255: no 8F), KV_ERR_ODA_CA_UNKNOWN
 * (capks NULL or no such key), the recovery's errors, KV_ERR_CAPK_REVOKED
 * (out untouched). kv_oda_begin uses it; so should every other recovery of
 * an issuer key (the ICC PIN encipherment key's).
 */
int kv_oda_issuer_key_recover_store(const kv_capk_store *capks, const uint8_t rid[5], int ca_index,
                                    const kv_oda_cert_in *in, const uint8_t *pan, size_t pan_len,
                                    uint32_t txn_date, kv_oda_pubkey *out);

/*
 * The checks of kv_oda_issuer_key_recover after the RSA step, on data already
 * recovered (n bytes, n = CA modulus length); for tests and the fuzzer.
 */
int kv_oda_issuer_cert_check(const uint8_t *recovered, size_t n, const kv_oda_cert_in *in,
                             const uint8_t *pan, size_t pan_len, uint32_t txn_date,
                             kv_oda_pubkey *out);

/*
 * ICC public key recovery (Book 2 §6.4) from 9F46/9F48/9F47 with the issuer
 * key; the hash covers the static data sd. sd NULL: the certificate is an
 * ICC PIN Encipherment Public Key certificate (9F2D/9F2F/9F2E, Book 2 §7.1),
 * whose hash does not include static data. The recovered PAN must equal pan.
 */
int kv_oda_icc_key_recover(const kv_oda_pubkey *issuer, const kv_oda_cert_in *in,
                           const uint8_t *pan, size_t pan_len, uint32_t txn_date,
                           const kv_oda_static *sd, kv_oda_pubkey *out);

/* The checks of kv_oda_icc_key_recover after the RSA step (n = issuer modulus length). */
int kv_oda_icc_cert_check(const uint8_t *recovered, size_t n, const kv_oda_cert_in *in,
                          const uint8_t *pan, size_t pan_len, uint32_t txn_date,
                          const kv_oda_static *sd, kv_oda_pubkey *out);

/*
 * SDA (Book 2 §5.4): verify the Signed Static Application Data (93) with the
 * issuer key over sd; on success dac (may be NULL) gets the Data
 * Authentication Code (9F45).
 */
int kv_oda_sda_verify(const kv_oda_pubkey *issuer, const uint8_t *ssad, size_t ssad_len,
                      const kv_oda_static *sd, uint8_t dac[2]);

/*
 * DDA (Book 2 §6.5): verify the Signed Dynamic Application Data (9F4B, or
 * the whole 80 template value) returned by INTERNAL AUTHENTICATE with the
 * ICC key; ddol_data is the data sent in the command (DDOL values). On
 * success icc_dn (8 bytes, may be NULL) gets the ICC Dynamic Number (9F4C)
 * and *icc_dn_len its length (2-8).
 */
int kv_oda_dda_verify(const kv_oda_pubkey *icc, const uint8_t *sdad, size_t sdad_len,
                      const uint8_t *ddol_data, size_t ddol_len, uint8_t *icc_dn,
                      size_t *icc_dn_len);

/* What CDA verification needs from the GENERATE AC exchange (Book 2 §6.6.2). */
typedef struct {
    const uint8_t *pdol_data; /* values sent in GPO (83 value); NULL/0 without PDOL */
    size_t pdol_data_len;
    const uint8_t *cdol1_data; /* data of the first GENERATE AC */
    size_t cdol1_data_len;
    const uint8_t *cdol2_data; /* data of the second GENERATE AC; NULL for the first */
    size_t cdol2_data_len;
    const uint8_t *response; /* the GENERATE AC response data: the 77 template */
    size_t response_len;
    uint8_t un[4]; /* unpredictable number 9F37 sent in the CDOL data */
} kv_oda_cda_in;

/* What a verified CDA signature carries. */
typedef struct {
    uint8_t cid;   /* cryptogram information data (equal to the response's 9F27) */
    uint8_t ac[8]; /* application cryptogram (CDA responses carry no 9F26) */
    uint8_t icc_dn[8];
    size_t icc_dn_len;
} kv_oda_cda_out;

/*
 * CDA (Book 2 §6.6.2): verify the 9F4B of a GENERATE AC response (format 2)
 * with the ICC key: header, format 05, CID equal to 9F27 of the response,
 * hash over the dynamic data and the UN, and the transaction data hash code
 * over PDOL data, CDOL1 data, CDOL2 data and the response TLVs without 9F4B.
 * KV_ERR_ODA_DATA_MISSING when the response is not a 77 template or lacks
 * 9F27 or 9F4B. out may be NULL.
 */
int kv_oda_cda_verify(const kv_oda_pubkey *icc, const kv_oda_cda_in *in, kv_oda_cda_out *out);

/*
 * Transaction data hash code (Book 2 §6.6.1): SHA-1 over pdol data, cdol1
 * data, cdol2 data (each NULL/0 when absent) and the TLV objects of tlvs
 * (the content of the 77 template, tag, length and value each, in order)
 * except any 9F4B. Returns 0, a TLV decoding error, KV_ERR_INTERNAL.
 */
int kv_oda_cda_tdhc(const uint8_t *pdol, size_t pdol_len, const uint8_t *cdol1, size_t cdol1_len,
                    const uint8_t *cdol2, size_t cdol2_len, const uint8_t *tlvs, size_t tlvs_len,
                    uint8_t out[20]);

/* ---- The ODA step of a transaction ---------------------------------------- */

/* Card data the ODA step reads: values of the named tags, NULL/0 when absent. */
typedef struct {
    uint8_t rid[5];        /* first 5 bytes of the selected AID */
    int ca_index;          /* 8F, -1 when absent */
    kv_oda_cert_in issuer; /* 90, 92, 9F32 */
    kv_oda_cert_in icc;    /* 9F46, 9F48, 9F47 */
    const uint8_t *ssad;   /* 93 */
    size_t ssad_len;
    const uint8_t *pan; /* 5A */
    size_t pan_len;
    kv_oda_static sd;  /* records marked for ODA, 9F4A, AIP */
    uint32_t txn_date; /* 9A YYMMDD */
} kv_oda_card;

/* Where the ODA step stands. */
enum kv_oda_state {
    KV_ODA_ST_NOT_PERFORMED = 0, /* no common method: TVR "ODA not performed" */
    KV_ODA_ST_PENDING_DDA,       /* keys recovered; INTERNAL AUTHENTICATE next */
    KV_ODA_ST_PENDING_CDA,       /* keys recovered; GENERATE AC with CDA next */
    KV_ODA_ST_OK,                /* authenticated */
    KV_ODA_ST_FAILED,            /* failed: reason says why, TVR has the bit */
    KV_ODA_ST_NO_SIGNATURE,      /* CDA: the card answered an AAC without a signature */
};

/* "not_performed", "pending_dda", "pending_cda", "ok", "failed", "no_signature". */
const char *kv_oda_state_name(int state);

/* Fixed-size context of one card's ODA: caller-allocated, filled by kv_oda_begin, no free. */
typedef struct {
    int method; /* enum kv_oda_method */
    int state;  /* enum kv_oda_state */
    int reason; /* 0, or the KV_ERR_ODA_* that failed it */
    kv_oda_pubkey issuer;
    kv_oda_pubkey icc;
    int have_issuer, have_icc;
    uint8_t dac[2]; /* SDA: 9F45 */
    int has_dac;
    uint8_t icc_dn[8]; /* DDA/CDA: 9F4C */
    size_t icc_dn_len;
} kv_oda_ctx;

/*
 * Start ODA for one card: choose the method (kv_oda_select_method); none:
 * TVR "ODA not performed", state NOT_PERFORMED. Otherwise TSI "ODA
 * performed"; SDA also sets TVR "SDA selected" and is verified at once (OK or
 * FAILED); DDA and CDA recover the issuer and ICC keys (PENDING_DDA /
 * PENDING_CDA, or FAILED). A failure sets the method's TVR bit (SDA, DDA or
 * CDA failed) and, when the reason is missing data, "ICC data missing".
 * Returns 0 whatever the outcome (see ctx->state), or KV_ERR_NOMEM /
 * KV_ERR_INTERNAL. capks may be NULL (every CA index is then unknown).
 */
int kv_oda_begin(kv_oda_ctx *ctx, const kv_capk_store *capks, const kv_oda_card *card,
                 const uint8_t term_caps[3], uint8_t tvr[5], uint8_t tsi[2]);

/*
 * Finish DDA with the INTERNAL AUTHENTICATE answer: sdad is its 9F4B (NULL
 * when the card gave none: data missing). State PENDING_DDA -> OK or FAILED
 * (TVR "DDA failed"). Returns 0, KV_ERR_ARG when the state is not
 * PENDING_DDA, KV_ERR_NOMEM / KV_ERR_INTERNAL.
 */
int kv_oda_dda_finish(kv_oda_ctx *ctx, const uint8_t *ddol_data, size_t ddol_len,
                      const uint8_t *sdad, size_t sdad_len, uint8_t tvr[5]);

/*
 * Finish CDA with the GENERATE AC exchange. State PENDING_CDA -> OK (out
 * filled when not NULL), FAILED (TVR "CDA failed") or NO_SIGNATURE (the
 * response is an AAC without 9F4B, Book 2 §6.6: the card signs only TC and
 * ARQC; no TVR bit). Returns as kv_oda_dda_finish.
 */
int kv_oda_cda_finish(kv_oda_ctx *ctx, const kv_oda_cda_in *in, kv_oda_cda_out *out,
                      uint8_t tvr[5]);

/* ---- Signing side (oda_sign.c): personalization and the virtual card ---------- */

/*
 * A raw RSA private-key operation: out (len bytes) = in ^ d mod n, where len
 * is the signer's modulus length. Returns 0 or a negative KV_ERR_*. Lets the
 * same builders sign with an OpenSSL key (kv_oda_evp_signer) or a PKCS#11
 * key (CKM_RSA_X_509) held in the HSM.
 */
typedef int (*kv_oda_signer_fn)(void *arg, const uint8_t *in, size_t len, uint8_t *out);

/*
 * kv_oda_signer_fn over an OpenSSL RSA private key: arg is the EVP_PKEY *.
 * len must be the key's modulus length (KV_ERR_ARG). KV_ERR_INTERNAL when
 * OpenSSL fails.
 */
int kv_oda_evp_signer(void *arg, const uint8_t *in, size_t len, uint8_t *out);

/*
 * Fill modulus and exponent of out from an RSA key (public or private);
 * id/expiry/serial untouched, hash_alg and pk_alg set to 01. Returns 0,
 * KV_ERR_ARG (not RSA, modulus not 64..248 bytes, exponent not 3 or 65537),
 * KV_ERR_INTERNAL.
 */
int kv_oda_pubkey_from_pkey(const EVP_PKEY *key, kv_oda_pubkey *out);

/*
 * Issuer public key certificate (Book 2 Table 6) for issuer (modulus,
 * exponent, id, expiry, serial) signed by the CA signer whose modulus is
 * ca_len bytes: cert (ca_len bytes) and remainder (rem, capacity rem_cap,
 * *rem_len set, 0 when none). Returns 0, KV_ERR_ARG (lengths do not fit),
 * KV_ERR_BUFFER, or the signer's error.
 */
int kv_oda_issuer_cert_sign(kv_oda_signer_fn sign, void *arg, size_t ca_len,
                            const kv_oda_pubkey *issuer, uint8_t *cert, uint8_t *rem,
                            size_t rem_cap, size_t *rem_len);

/*
 * ICC public key certificate (Book 2 Table 14) for icc (id = PAN, 10 bytes
 * cn F-padded) signed by the issuer signer (modulus issuer_len bytes), hash
 * over the static data sd (NULL for an ICC PIN encipherment key
 * certificate). Output as kv_oda_issuer_cert_sign.
 */
int kv_oda_icc_cert_sign(kv_oda_signer_fn sign, void *arg, size_t issuer_len,
                         const kv_oda_pubkey *icc, const kv_oda_static *sd, uint8_t *cert,
                         uint8_t *rem, size_t rem_cap, size_t *rem_len);

/* Signed Static Application Data (93, Book 2 Table 7) into ssad (issuer_len bytes). */
int kv_oda_ssad_sign(kv_oda_signer_fn sign, void *arg, size_t issuer_len, const uint8_t dac[2],
                     const kv_oda_static *sd, uint8_t *ssad);

/*
 * Signed Dynamic Application Data for INTERNAL AUTHENTICATE (Book 2 Table
 * 17) into sdad (icc_len bytes): ICC dynamic data = length || ICC Dynamic
 * Number (icc_dn, 2-8 bytes), hash over it and ddol_data.
 */
int kv_oda_dda_sign(kv_oda_signer_fn sign, void *arg, size_t icc_len, const uint8_t *icc_dn,
                    size_t icc_dn_len, const uint8_t *ddol_data, size_t ddol_len, uint8_t *sdad);

/*
 * Signed Dynamic Application Data of a CDA GENERATE AC response (Book 2
 * Table 19) into sdad (icc_len bytes): ICC dynamic data = length || ICC
 * Dynamic Number || cid || ac || tdhc (kv_oda_cda_tdhc), hash over it and un.
 */
int kv_oda_cda_sign(kv_oda_signer_fn sign, void *arg, size_t icc_len, const uint8_t *icc_dn,
                    size_t icc_dn_len, uint8_t cid, const uint8_t ac[8], const uint8_t tdhc[20],
                    const uint8_t un[4], uint8_t *sdad);

#endif

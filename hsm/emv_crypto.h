/*
 * EMV card keys and cryptograms with keys that stay in the token:
 * ICC master key derivation (EMV Book 2 Annex A1.4, options A and B),
 * session keys (EMV common session key, Book 2 A1.3; Mastercard proprietary
 * SKD), ARQC verification and ARPC generation (Book 2 §8.1-8.2).
 *
 * Derived keys are session objects (kv_hsm_derive_des2) and are destroyed
 * before each kv_hsm_* call here returns. The pure functions build the
 * derivation inputs so that tests can check them against an independent
 * reference.
 */
#ifndef KV_HSM_EMV_CRYPTO_H
#define KV_HSM_EMV_CRYPTO_H

#include "hsm/p11.h"

#include <stddef.h>
#include <stdint.h>

enum {
    KV_EMV_MK_OPTION_A = 'A',
    KV_EMV_MK_OPTION_B = 'B',
};

/* Session key derivation. */
enum {
    KV_EMV_SKD_NONE = 0,       /* the ICC master key itself (Visa CVN 10) */
    KV_EMV_SKD_CSK = 1,        /* EMV common session key, R = ATC || 00*6 */
    KV_EMV_SKD_MASTERCARD = 2, /* Mastercard proprietary SKD, R = ATC || 00 00 || UN */
};

/* Which key the ARPC is computed under. */
enum {
    KV_EMV_ARPC_KEY_MK = 0, /* ICC master key (Visa CVN 10, Mastercard CVN 16/17) */
    KV_EMV_ARPC_KEY_SK = 1, /* AC session key */
};

/* The methods one cryptogram version number stands for. */
typedef struct {
    int cvn;         /* decimal CVN, 0 when built by hand */
    int mk_option;   /* KV_EMV_MK_OPTION_A / _B */
    int skd;         /* KV_EMV_SKD_* */
    int padding;     /* ISO 9797-1 padding of the AC data: KV_MAC_PAD1 or KV_MAC_PAD2 */
    int arpc_method; /* 1 or 2 */
    int arpc_key;    /* KV_EMV_ARPC_KEY_* */
    int aes;         /* 1: AES-128 keys and AES-CMAC (EMV CCD CVN 6, Book 2 A1.3/A1.4 for AES) */
    int r_explicit;  /* 1: use r below as the session key diversification value */
    uint8_t r[8];
} kv_emv_params;

/*
 * Pure. Fill p with the methods of a cryptogram version number:
 *   Visa 10: option A, no session key, padding 1, ARPC method 1 under the MK;
 *   Visa 18, 22: option B, CSK, padding 2, ARPC method 2 under the SK;
 *   Mastercard 16, 17: option A, Mastercard SKD, padding 2, ARPC method 1 under the MK;
 *   Mastercard 20, 21: option A, CSK, padding 2, ARPC method 1 under the SK;
 *   CCD 5: option A, CSK, padding 2 (MAC algorithm 3), ARPC method 2 under the SK;
 *   CCD 6: AES, option A of Book 2 A1.4 for AES, CSK for AES, AES-CMAC, ARPC method 2.
 * (CVN 17/21 add the counters to the AC data; the caller passes them in the data.)
 * Returns 0 or KV_ERR_UNSUPPORTED.
 */
int kv_emv_params_for_cvn(int cvn, kv_emv_params *p);

/*
 * Pure. The 8-byte value Y that option A or B enciphers:
 *   A: the rightmost 16 digits of PAN || PSN, left-padded with '0' to 16;
 *   B: for a PAN of more than 16 digits, SHA-1 over PAN || PSN as packed BCD
 *      (a leading '0' when the digit count is odd), decimalised: its decimal
 *      digits in order, then, if fewer than 16, its hex letters A-F as 0-5;
 *      for a PAN of 16 digits or fewer, option B is option A.
 * pan is 1..19 digits, psn 2 digits (NULL: "00"). Returns 0 or KV_ERR_ARG.
 */
int kv_emv_mk_input(int option, const char *pan, const char *psn, uint8_t y[8]);

/*
 * Pure. Data for kv_hsm_derive_des2 from an 8-byte value: data = Y || (Y XOR
 * FF..FF), the key (A||B); companion = Y || Y, the A||A object.
 */
void kv_emv_mk_derivation_data(const uint8_t y[8], uint8_t data[16], uint8_t companion[16]);

/*
 * Pure. The session key diversification value R for skd: CSK: ATC || 00*6;
 * Mastercard: ATC || 00 00 || UN (un must not be NULL). Returns 0 or
 * KV_ERR_ARG (KV_EMV_SKD_NONE, or no UN for Mastercard).
 */
int kv_emv_session_r(int skd, const uint8_t atc[2], const uint8_t *un, uint8_t r[8]);

/*
 * Pure. EMV Book 2 A1.3.1: F = R with byte 2 set to F0, G = R with byte 2 set
 * to 0F; data = F || G (the session key), companion = F || F (its A||A).
 */
void kv_emv_csk_derivation_data(const uint8_t r[8], uint8_t data[16], uint8_t companion[16]);

/*
 * Pure. ARPC method 1 input: ARQC XOR (ARC || 00*6), ARC 2 bytes.
 */
void kv_emv_arpc1_input(const uint8_t arqc[8], const uint8_t arc[2], uint8_t out[8]);

/*
 * Pure. ARPC method 2 MAC input: ARQC || CSU (4) || proprietary
 * authentication data (0..8 bytes). out needs 20 bytes. Returns the length
 * or KV_ERR_ARG.
 */
int kv_emv_arpc2_input(const uint8_t arqc[8], const uint8_t csu[4], const uint8_t *pad,
                       size_t pad_len, uint8_t *out);

/*
 * Derive the ICC master key from the issuer master key imk (DES2, any imk*
 * role) by option A or B with C_DeriveKey (CKM_DES3_ECB_ENCRYPT_DATA) as a
 * session object in the token, role icc-ac / icc-cvc3 / icc-smi / icc-smc
 * after the IMK's; with_companion also derives its A||A (needed when the MK
 * itself MACs, e.g. CVN 10 or CVC3). Release with kv_hsm_key_destroy.
 * Returns 0, KV_ERR_ARG, KV_ERR_HSM_ROLE (imk is no IMK), KV_ERR_HSM_KEY or
 * an HSM error.
 */
int kv_hsm_emv_derive_icc_mk(kv_hsm *h, const kv_hsm_key *imk, int option, const char *pan,
                             const char *psn, int with_companion, kv_hsm_key *out);

/*
 * Derive a session key from the ICC master key mk (role icc-ac, icc-smi or
 * icc-smc; the session key has the same role) with diversification value r
 * (EMV A1.3.1), always with its A||A companion. Release with
 * kv_hsm_key_destroy.
 */
int kv_hsm_emv_derive_session_key(kv_hsm *h, const kv_hsm_key *mk, const uint8_t r[8],
                                  kv_hsm_key *out);

/* The transaction inputs of one cryptogram. */
typedef struct {
    const char *pan;
    const char *psn; /* 2 digits; NULL: "00" */
    uint8_t atc[2];
    int has_un;
    uint8_t un[4];       /* required for KV_EMV_SKD_MASTERCARD without an explicit R */
    const uint8_t *data; /* the AC data (CDOL1 values etc.), unpadded */
    size_t data_len;     /* 1..1024 */
} kv_emv_txn;

/*
 * Compute the 8-byte application cryptogram (MAC algorithm 3 over the data
 * padded per p) under the key p selects, derived from imk (role imk, else
 * KV_ERR_HSM_ROLE; so for kv_hsm_arqc_verify and kv_hsm_arpc_generate). For labs and
 * tests (the virtual card side); issuers verify.
 */
int kv_hsm_arqc_generate(kv_hsm *h, const kv_hsm_key *imk, const kv_emv_params *p,
                         const kv_emv_txn *t, uint8_t ac[8]);

/*
 * Verify an ARQC: *match is 1 when it equals the computed cryptogram (constant
 * time), 0 otherwise. Returns 0, KV_ERR_ARG, KV_ERR_HSM_KEY or an HSM error.
 */
int kv_hsm_arqc_verify(kv_hsm *h, const kv_hsm_key *imk, const kv_emv_params *p,
                       const kv_emv_txn *t, const uint8_t arqc[8], int *match);

/* ARPC inputs beyond the transaction. */
typedef struct {
    uint8_t arqc[8];
    uint8_t arc[2];     /* method 1: authorisation response code */
    uint8_t csu[4];     /* method 2: card status update */
    const uint8_t *pad; /* method 2: proprietary authentication data, 0..8 bytes */
    size_t pad_len;
} kv_emv_arpc_in;

/*
 * Generate the ARPC by p->arpc_method under p->arpc_key: method 1 (8 bytes):
 * 3DES-ECB(key)(ARQC XOR ARC||00..); method 2 (4 bytes): the leftmost 4 bytes
 * of MAC algorithm 3 (padding method 2) over ARQC || CSU || proprietary data.
 * arpc needs 8 bytes; *arpc_len is set to 8 or 4. t->data is not used.
 */
int kv_hsm_arpc_generate(kv_hsm *h, const kv_hsm_key *imk, const kv_emv_params *p,
                         const kv_emv_txn *t, const kv_emv_arpc_in *in, uint8_t arpc[8],
                         size_t *arpc_len);

#endif

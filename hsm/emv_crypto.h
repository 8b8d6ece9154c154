/*
 * EMV card keys and cryptograms with keys that stay in the token:
 * ICC master key derivation (EMV Book 2 Annex A1.4, options A and B, TDES
 * and AES), session keys (EMV common session key, Book 2 A1.3, TDES and
 * AES; Mastercard proprietary SKD), ARQC verification and ARPC generation
 * (Book 2 §8.1-8.2).
 *
 * The cryptogram versions (CVN, decimal value of the IAD byte) and their
 * methods; "SD" is the recommended minimum data of Book 2 A1.2.1, the AC
 * data per CVN is built by apdu/ac_data.h kv_ac_data_build:
 *
 *   CVN scheme          ICC MK    session key      AC                 ARPC
 *   10  Visa VIS        option A  none (ICC MK)    MAC alg. 3, pad 1  method 1, ICC MK
 *   18  Visa VIS        option B  CSK              MAC alg. 3, pad 2  method 2, SK
 *   22  Visa VIS 1.6    option B  CSK              MAC alg. 3, pad 2  method 2, SK
 *   16  MC M/Chip 4     option A  MC SKD           MAC alg. 3, pad 2  method 1, ICC MK
 *   17  MC M/Chip 4     option A  MC SKD           MAC alg. 3, pad 2  method 1, ICC MK
 *   20  MC M/Chip Adv.  option A  CSK              MAC alg. 3, pad 2  method 1, SK
 *   21  MC M/Chip Adv.  option A  CSK              MAC alg. 3, pad 2  method 1, SK
 *   5   EMV CCD, TDES   option A  CSK              MAC alg. 3, pad 2  method 2, SK
 *   6   EMV CCD, AES    option C  CSK (AES)        AES-CMAC, 8 bytes  method 2 (AES-CMAC), SK
 *
 *   CSK: R = ATC || 00*6 (AES: ATC || 00*14); MC SKD: R = ATC || 00 00 || UN
 *   (the 9F37 of the AC data), then as CSK. pad 1/2: ISO/IEC 9797-1 padding
 *   method 1 (zeros) / 2 (80 00..). ARPC method 1: 3DES(key)[ARQC XOR ARC||00*6],
 *   8 bytes; method 2: leftmost 4 bytes of the MAC over ARQC || CSU || data.
 *
 * Sources: EMV Book 2 v4.3/4.4 Annex A1.2-A1.4 and §8.2 (options, CSK,
 * MAC algorithm 3, ARPC methods), EMV Book 3 Annex C (CCD: option A (TDES)
 * or C (AES), CSK, ARPC method 2, CVN 5 TDES and 6 AES); the Visa and Mastercard rows follow
 * the public pyemv library (knovichikhin/pyemv, pyemv/cvn.py and
 * tests/test_cvn_hsm.py: MK option, SKD, padding and which key the ARPC
 * uses), whose published vectors tests/unit/test_cvn.c checks. 17 and 21
 * differ from 16 and 20 only in the AC data (the counters of the IAD).
 *
 * AES (CVN 6, AES-128: block n = 16 bytes, key k = 128 bits): the ICC MK
 * by Book 2 A1.4.3 (option C, the AES method; options A and B are TDES
 * only): Y = PAN || PSN left-padded with '0' digits to 32 digits (16
 * bytes), MK = the leftmost k bits of AES(IMK)[Y] || AES(IMK)[Y XOR FF*16],
 * so AES(IMK)[Y]; an AES IMK always uses option C, whatever mk_option says.
 * The session key by Book 2 A1.3.1 with k = 8n bits: SK = AES(MK)[R], R =
 * ATC || 00*14 (the F0/0F blocks F1, F2 are for k > 8n only: TDES and
 * AES-192/256). The AC is the leftmost 8 bytes of AES-CMAC
 * (ISO/IEC 9797-1 MAC algorithm 5) under the session key over the AC data
 * (CMAC pads by itself); the ARPC (method 2) is the leftmost 4 bytes of
 * AES-CMAC over ARQC || CSU || proprietary data. Derivation is
 * CKM_AES_ECB_ENCRYPT_DATA and the MAC CKM_AES_CMAC in the token
 * (hsm/p11_aes_derive.h); tests/tools/emv_vectors.py computes the same
 * independently.
 *
 * Derived keys are session objects (kv_hsm_derive_des2,
 * kv_hsm_derive_aes128) and are destroyed before each kv_hsm_* call here
 * returns. The pure functions build the derivation inputs so that tests can
 * check them against an independent reference.
 */
#ifndef KV_HSM_EMV_CRYPTO_H
#define KV_HSM_EMV_CRYPTO_H

#include "hsm/p11.h"

#include <stddef.h>
#include <stdint.h>

enum {
    KV_EMV_MK_OPTION_A = 'A',
    KV_EMV_MK_OPTION_B = 'B',
    KV_EMV_MK_OPTION_C = 'C', /* Book 2 A1.4.3, AES (added by helper "review") */
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
 * Pure. Fill p with the methods of a cryptogram version number (the table
 * above):
 *   Visa 10: option A, no session key, padding 1, ARPC method 1 under the MK;
 *   Visa 18, 22: option B, CSK, padding 2, ARPC method 2 under the SK;
 *   Mastercard 16, 17: option A, Mastercard SKD, padding 2, ARPC method 1 under the MK;
 *   Mastercard 20, 21: option A, CSK, padding 2, ARPC method 1 under the SK;
 *   CCD 5: option A, CSK, padding 2 (MAC algorithm 3), ARPC method 2 under the SK;
 *   CCD 6: aes, mk_option A (kept for compatibility: an AES IMK is always
 *   derived by option C, Book 2 A1.4.3), CSK for AES, AES-CMAC, ARPC method 2
 *   under the SK (padding is KV_MAC_PAD2 and unused: CMAC pads itself).
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
 * Pure. The AES-128 variants (CVN 6, see the top of this file).
 * kv_emv_aes_mk_input: the block the IMK enciphers into the ICC MK, Book 2
 * A1.4.3 option C: PAN || PSN (psn NULL: "00") left-padded with '0' digits
 * to 32 digits, as 16 bytes of BCD. Returns 0 or KV_ERR_ARG (pan not 1..19
 * digits, psn not 2 digits). (Added by helper "review".)
 * kv_emv_aes_csk_derivation_data: the block the ICC MK enciphers into the
 * session key, Book 2 A1.3.1 for k = 8n: R itself, the 8-byte r of
 * kv_emv_session_r followed by 00*8 (R = ATC || 00*14).
 * kv_emv_aes_mk_derivation_data: Y || (Y XOR FF*8) from an 8-byte option A
 * or B Y. Kept for source compatibility only: it is NOT the AES ICC MK
 * derivation (EMV has none on an 8-byte Y); use kv_emv_aes_mk_input.
 */
int kv_emv_aes_mk_input(const char *pan, const char *psn, uint8_t data[16]);
void kv_emv_aes_mk_derivation_data(const uint8_t y[8], uint8_t data[16]);
void kv_emv_aes_csk_derivation_data(const uint8_t r[8], uint8_t data[16]);

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
 * itself MACs, e.g. CVN 10 or CVC3). An AES-128 imk gives an AES-128 ICC MK
 * by option C whatever option says (A, B or C; kv_emv_aes_mk_input,
 * CKM_AES_ECB_ENCRYPT_DATA; with_companion is ignored). Release with kv_hsm_key_destroy. Returns 0,
 * KV_ERR_ARG, KV_ERR_HSM_ROLE (imk is no IMK), KV_ERR_HSM_KEY or an HSM error.
 */
int kv_hsm_emv_derive_icc_mk(kv_hsm *h, const kv_hsm_key *imk, int option, const char *pan,
                             const char *psn, int with_companion, kv_hsm_key *out);

/*
 * Derive a session key from the ICC master key mk (role icc-ac, icc-smi or
 * icc-smc; the session key has the same role) with diversification value r
 * (EMV A1.3.1), always with its A||A companion. An AES-128 mk gives an
 * AES-128 session key (kv_emv_aes_csk_derivation_data) that may sign
 * (AES-CMAC) and encrypt. Release with kv_hsm_key_destroy.
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
 * padded per p; with p->aes the leftmost 8 bytes of AES-CMAC) under the key
 * p selects, derived from imk (role imk, else KV_ERR_HSM_ROLE; a DES2 imk
 * for p->aes 0, an AES-128 imk for p->aes 1, else KV_ERR_HSM_KEY; so for
 * kv_hsm_arqc_verify and kv_hsm_arpc_generate). For labs and tests (the
 * virtual card side); issuers verify. t->data is the AC data of
 * kv_ac_data_build; the Mastercard SKD (CVN 16, 17) needs t->un (the 9F37
 * of the standard data, kv_ac_data_un) unless p->r_explicit.
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
 * of MAC algorithm 3 (padding method 2), or with p->aes of AES-CMAC, over
 * ARQC || CSU || proprietary data. arpc needs 8 bytes; *arpc_len is set to
 * 8 or 4. t->data is not used; the Mastercard SKD needs t->un only when the
 * ARPC key is the session key (never for CVN 16/17, whose ARPC uses the ICC
 * MK). Method 1 with AES is KV_ERR_UNSUPPORTED (no CVN uses it).
 */
int kv_hsm_arpc_generate(kv_hsm *h, const kv_hsm_key *imk, const kv_emv_params *p,
                         const kv_emv_txn *t, const kv_emv_arpc_in *in, uint8_t arpc[8],
                         size_t *arpc_len);

#endif

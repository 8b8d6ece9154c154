/*
 * Card verification values: CVV/CVC1, CVV2/CVC2 (service code 000), iCVV
 * (service code 999) and Mastercard's dynamic CVC3; plus the decimalisation
 * helpers that PVV and IBM 3624 (pin.h) share.
 *
 * The pure functions (no kv_hsm) build the data blocks and decimalise; the
 * kv_hsm_* calls do the cipher work in the token. A verify reports match or
 * mismatch through *match (1/0) and never exposes the computed value; a
 * negative result is not an error (return 0).
 *
 * Inputs are text: PAN 1..19 digits (no Luhn check), expiry YYMM, service
 * code 3 digits. Bad text returns KV_ERR_ARG.
 */
#ifndef KV_HSM_CVV_H
#define KV_HSM_CVV_H

#include "hsm/p11.h"

#include <stddef.h>
#include <stdint.h>

#define KV_PAN_MIN 1
#define KV_PAN_MAX 19
#define KV_CVV_DIGITS 3
#define KV_CVC3_DIGITS 5
#define KV_CVC3_MIN_DIGITS 3 /* the fewest CVC3 digits any card profile carries */

/*
 * Pure. Visa decimalisation: the hex digits of in (len bytes, high nibble
 * first) that are 0-9, in order, then the digits A-F less 10, in order; the
 * first ndigits go to out as ASCII, NUL-terminated (out has ndigits+1 bytes).
 * Runs in time independent of the nibble values (PVV input is secret).
 * Returns 0, or KV_ERR_ARG when ndigits > 2*len.
 */
int kv_decimalise_visa(const uint8_t *in, size_t len, size_t ndigits, char *out);

/*
 * Pure. Table decimalisation (IBM 3624): nibble i of in (high nibble first)
 * becomes table[value of nibble]; table is 16 ASCII decimal digits. The first
 * ndigits go to out, NUL-terminated. Constant time in the nibble values.
 * Returns 0 or KV_ERR_ARG (table not 16 digits, ndigits > 2*len).
 */
int kv_decimalise_table(const uint8_t *in, size_t len, const char *table, size_t ndigits,
                        char *out);

/*
 * Pure. The CVV data: PAN || YYMM || service code, right-padded with '0' to
 * 32 digits and packed BCD; out[0..8) is block 1 and out[8..16) block 2.
 * Returns 0 or KV_ERR_ARG (PAN not 1..19 digits, expiry not 4 digits,
 * service code not 3 digits).
 */
int kv_cvv_build_block(const char *pan, const char *expiry, const char *service_code,
                       uint8_t out[16]);

/*
 * CVV = Visa-decimalised ECB(A||B)(ECB(A||A)(block1) XOR block2), 3 digits.
 * cvk is a DES2 key of role cvk with its A||A companion; a key of any other
 * role is refused before any token work (KV_ERR_HSM_ROLE, kv_hsm_last_error
 * names both roles). cvv receives 3 digits + NUL. Returns 0, KV_ERR_ARG,
 * KV_ERR_HSM_ROLE, KV_ERR_HSM_KEY (wrong key type, no companion) or an HSM
 * error.
 */
int kv_hsm_cvv_generate(kv_hsm *h, const kv_hsm_key *cvk, const char *pan, const char *expiry,
                        const char *service_code, char cvv[KV_CVV_DIGITS + 1]);

/*
 * Compare the CVV for these data with cvv (exactly 3 digits), in constant
 * time. *match is 1 on a match, 0 otherwise. Returns as kv_hsm_cvv_generate.
 */
int kv_hsm_cvv_verify(kv_hsm *h, const kv_hsm_key *cvk, const char *pan, const char *expiry,
                      const char *service_code, const char *cvv, int *match);

/*
 * Pure. The CVC3 input block: IVCVC3 (2) || UN (4) || ATC (2).
 */
void kv_cvc3_build_block(const uint8_t ivcvc3[2], const uint8_t un[4], const uint8_t atc[2],
                         uint8_t out[8]);

/*
 * Pure. CVC3 digits from the enciphered CVC3 block: the rightmost two bytes
 * as an unsigned integer, 5 decimal digits with leading zeros, NUL-terminated.
 */
void kv_cvc3_digits(const uint8_t enciphered[8], char out[KV_CVC3_DIGITS + 1]);

/*
 * Pure. How many CVC3 digits a Mastercard card puts into its track: the
 * number of bits set in its PCVC3 bitmap (tag 9F65 for track 2, 9F62 for
 * track 1; len 1..8 bytes). Returns that number, 3..5, or KV_ERR_ARG with why
 * (a bitmap of fewer than 3 or more than 5 positions is not a card profile
 * kortvagt verifies against).
 */
int kv_cvc3_digits_from_pcvc3(const uint8_t *pcvc3, size_t len, char *why, size_t why_cap);

/*
 * Mastercard CVC3 under the issuer master key imk (DES2 with companion, role
 * imk-cvc3; any other role is refused with KV_ERR_HSM_ROLE):
 * ICC key = option A derivation from imk with PAN and PSN (emv_crypto.h),
 * kept in the token as a session object and destroyed before return;
 * IVCVC3 = rightmost 2 bytes of MAC algorithm 3 (padding method 2) over the
 * track data (track 2 packed nibbles, or track 1 ASCII bytes) under the ICC
 * key; CVC3 = kv_cvc3_digits(3DES-ECB(ICC key)(IVCVC3 || UN || ATC)).
 * psn is 2 digits (NULL: "00"); track is 1..128 bytes. cvc3 receives 5
 * digits + NUL.
 */
int kv_hsm_cvc3_generate(kv_hsm *h, const kv_hsm_key *imk, const char *pan, const char *psn,
                         const uint8_t atc[2], const uint8_t un[4], const uint8_t *track,
                         size_t track_len, char cvc3[KV_CVC3_DIGITS + 1]);

/*
 * Compare a received CVC3 with the same number of rightmost digits of the
 * computed one (a card's track carries the last 3 to 5), in constant time.
 * want_digits is how many digits the card carries, as its profile or the
 * request's track data say (kv_cvc3_digits_from_pcvc3), 3..5; 0 when nothing
 * says: then KV_CVC3_MIN_DIGITS. A received CVC3 of fewer digits than that
 * (or more than 5) is refused with KV_ERR_ARG before any token work, with the
 * reason in why (may be NULL). *match is 1 on a match, 0 otherwise.
 */
int kv_hsm_cvc3_verify_len(kv_hsm *h, const kv_hsm_key *imk, const char *pan, const char *psn,
                           const uint8_t atc[2], const uint8_t un[4], const uint8_t *track,
                           size_t track_len, const char *cvc3, unsigned want_digits, int *match,
                           char *why, size_t why_cap);

/* kv_hsm_cvc3_verify_len with want_digits 0 (at least KV_CVC3_MIN_DIGITS digits). */
int kv_hsm_cvc3_verify(kv_hsm *h, const kv_hsm_key *imk, const char *pan, const char *psn,
                       const uint8_t atc[2], const uint8_t un[4], const uint8_t *track,
                       size_t track_len, const char *cvc3, int *match);

#endif

/*
 * PINs: ISO 9564-1 PIN blocks (formats 0, 1 and 3 under a 3DES key, format 4
 * under an AES key), translation between keys and formats, Visa PVV and
 * IBM 3624 offsets — from a clear PIN or from an encrypted PIN block.
 *
 * A clear PIN exists only in mlock'ed, dump-excluded memory (a per-thread
 * kv_secbuf scratch area here, the caller's kv_secbuf on input) and is wiped
 * before each call returns. Generic PKCS#11 cannot keep it inside the token
 * the way a payment HSM does (the README states this limit).
 *
 * Pure functions (no kv_hsm) build and parse the PIN and PAN fields; the
 * kv_hsm_* calls add the cipher work and the random fill (OpenSSL RAND_bytes).
 * A verify reports match or mismatch through *match and never the computed
 * value; a negative result is not an error (return 0). PINs are 4..12 ASCII
 * digits given with an explicit length; PANs 1..19 digits (no Luhn check).
 *
 * Key roles (p11.h): PIN block keys (key, in_key, out_key, pin_key) must have
 * role pin, PIN verification keys (pvk) role pvk. Every kv_hsm_* call checks
 * the roles of all its keys before any token work and refuses a key of
 * another role with KV_ERR_HSM_ROLE (kv_hsm_last_error names both roles): a
 * PVK never deciphers a PIN block and an IMK never computes a PVV or natural
 * PIN from chosen data.
 */
#ifndef KV_HSM_PIN_H
#define KV_HSM_PIN_H

#include "hsm/p11.h"

#include <stddef.h>
#include <stdint.h>

enum {
    KV_PINBLOCK_ISO0 = 0, /* PIN field XOR PAN field, fill F */
    KV_PINBLOCK_ISO1 = 1, /* PIN field alone, random fill 0-F */
    KV_PINBLOCK_ISO3 = 3, /* PIN field XOR PAN field, random fill A-F */
    KV_PINBLOCK_ISO4 = 4, /* AES: E(E(PIN field) XOR PAN field), 16 bytes */
};

#define KV_PIN_MIN 4
#define KV_PIN_MAX 12
#define KV_PIN_FILL 14 /* nibble positions after control and length */
#define KV_PINBLOCK_MAX 16
#define KV_PVV_DIGITS 4
#define KV_IBM3624_VDATA_MAX 16

/* Pure. 0 when pin (pin_len bytes, not NUL-terminated) is 4..12 digits, else KV_ERR_ARG. */
int kv_pin_check(const char *pin, size_t pin_len);

/* Pure. Block size of a format: 8 (0, 1, 3), 16 (4), or KV_ERR_ARG. */
int kv_pinblock_size(int format);

/*
 * Pure. The PIN field: control nibble (the format), PIN length, PIN digits,
 * then fill to 16 nibbles: format 0 F; format 1 fill[i]; format 3 fill[i]
 * (each A-F); format 4 A, followed by 8 more bytes fill[0..8) (the random
 * half). fill is indexed from the first nibble after the PIN for formats 1
 * and 3 (KV_PIN_FILL values 0..15, one per byte) and may be NULL for
 * format 0. out receives 8 bytes (16 for format 4). Returns 0 or KV_ERR_ARG.
 */
int kv_pin_field_build(int format, const char *pin, size_t pin_len, const uint8_t *fill,
                       uint8_t *out);

/*
 * Pure. The PAN field: formats 0 and 3: 0000 || the 12 rightmost PAN digits
 * without the check digit (zero-filled on the left when fewer), 8 bytes;
 * format 4: M (PAN length - 12, 0 when shorter) || the PAN (left-padded with
 * zeros to 12 digits) || zeros, 16 bytes. Returns 0 or KV_ERR_ARG (bad PAN,
 * format 1 which has no PAN field).
 */
int kv_pan_field_build(int format, const char *pan, uint8_t *out);

/*
 * Pure. Parse a PIN field of format (8 bytes; 16 for format 4): control
 * nibble, length 4..12, decimal PIN digits, fill per format (0: F, 3: A-F,
 * 4: A, 1: anything). pin receives the digits (capacity KV_PIN_MAX+1,
 * NUL-terminated) and *pin_len their count. Returns 0 or KV_ERR_FORMAT (not
 * a valid PIN field; pin is wiped). The checks do not branch on the digits.
 */
int kv_pin_field_parse(int format, const uint8_t *field, char *pin, size_t *pin_len);

/*
 * Pure. Clear PIN block of format 0, 1 or 3: PIN field XOR PAN field (format
 * 1: the PIN field), 8 bytes. pan may be NULL for format 1.
 */
int kv_pinblock_clear_build(int format, const char *pin, size_t pin_len, const char *pan,
                            const uint8_t *fill, uint8_t out[8]);

/* Pure. Inverse of kv_pinblock_clear_build; returns as kv_pin_field_parse. */
int kv_pinblock_clear_parse(int format, const uint8_t block[8], const char *pan, char *pin,
                            size_t *pin_len);

/*
 * Pure. Visa PVV transformed security parameter: the 11 rightmost PAN digits
 * without the check digit (zero-filled on the left) || PVKI || the 4 leftmost
 * PIN digits, packed into 8 bytes. Returns 0 or KV_ERR_ARG.
 */
int kv_pvv_tsp(const char *pan, int pvki, const char *pin, size_t pin_len, uint8_t out[8]);

/*
 * Pure. IBM 3624 validation block: vdata (1..16 hex digits) right-padded with
 * the hex digit pad to 16 digits, packed into 8 bytes. Returns 0 or KV_ERR_ARG.
 */
int kv_ibm3624_validation_block(const char *vdata, char pad, uint8_t out[8]);

/*
 * Pure. IBM 3624 offset digits: offset[i] = (pin[i] - natural[i]) mod 10 for
 * the first n digits; NUL-terminated. Constant time.
 */
void kv_ibm3624_offset_digits(const char *pin, const char *natural, size_t n, char *offset);

/* Random fill for format 1, 3 or 4 from OpenSSL RAND_bytes (KV_PIN_FILL bytes). */
int kv_pin_random_fill(int format, uint8_t fill[KV_PIN_FILL]);

/*
 * Encrypt a PIN block of format for pan under key (formats 0, 1, 3: DES2/DES3
 * key; format 4: AES key) with a fresh random fill. out receives
 * kv_pinblock_size(format) bytes, also stored in *out_len. Returns 0,
 * KV_ERR_ARG, KV_ERR_HSM_KEY (key type does not fit the format), or an HSM error.
 */
int kv_hsm_pinblock_encrypt(kv_hsm *h, const kv_hsm_key *key, int format, const char *pin,
                            size_t pin_len, const char *pan, uint8_t out[KV_PINBLOCK_MAX],
                            size_t *out_len);

/*
 * Decrypt and parse a PIN block. The PIN goes to pin (the caller's locked
 * buffer, capacity KV_PIN_MAX+1, NUL-terminated). Returns 0, KV_ERR_FORMAT
 * (the block does not decrypt to a valid block of that format for that PAN),
 * KV_ERR_ARG, KV_ERR_HSM_KEY or an HSM error. pin may be NULL to only check
 * validity.
 */
int kv_hsm_pinblock_decrypt(kv_hsm *h, const kv_hsm_key *key, int format, const uint8_t *block,
                            size_t block_len, const char *pan, char *pin, size_t *pin_len);

/*
 * Translate a PIN block from (in_key, in_format) to (out_key, out_format)
 * for the same PAN, with fresh random fill; the clear PIN lives only in the
 * locked scratch area and is wiped before return. Returns as
 * kv_hsm_pinblock_decrypt.
 */
int kv_hsm_pinblock_translate(kv_hsm *h, const kv_hsm_key *in_key, int in_format,
                              const uint8_t *in_block, size_t in_len, const char *pan,
                              const kv_hsm_key *out_key, int out_format,
                              uint8_t out[KV_PINBLOCK_MAX], size_t *out_len);

/*
 * Visa PVV: Visa-decimalised 3DES-ECB(pvk)(TSP), 4 digits + NUL. pvki 0..9.
 */
int kv_hsm_pvv_generate(kv_hsm *h, const kv_hsm_key *pvk, const char *pan, int pvki,
                        const char *pin, size_t pin_len, char pvv[KV_PVV_DIGITS + 1]);
int kv_hsm_pvv_verify(kv_hsm *h, const kv_hsm_key *pvk, const char *pan, int pvki, const char *pin,
                      size_t pin_len, const char *pvv, int *match);

/*
 * PVV verification of an encrypted PIN block (online PIN): the block is
 * decrypted under pin_key into the locked scratch area, the PVV computed and
 * compared, everything wiped. A block that does not decrypt to a valid block
 * is a mismatch (*match 0, return 0), so the call is no format oracle.
 */
int kv_hsm_pvv_verify_pinblock(kv_hsm *h, const kv_hsm_key *pvk, const kv_hsm_key *pin_key,
                               int format, const uint8_t *block, size_t block_len, const char *pan,
                               int pvki, const char *pvv, int *match);

/*
 * IBM 3624: natural PIN = table-decimalised 3DES-ECB(pvk)(validation block);
 * offset = PIN - natural PIN digit by digit mod 10, as many digits as the
 * PIN. dec_table is 16 decimal digits; vdata 1..16 hex digits padded with
 * pad (a hex digit). offset needs KV_PIN_MAX+1 bytes.
 */
int kv_hsm_ibm3624_offset(kv_hsm *h, const kv_hsm_key *pvk, const char *dec_table,
                          const char *vdata, char pad, const char *pin, size_t pin_len,
                          char *offset);

/*
 * Verify a PIN against an offset of 4..12 digits: the check covers the
 * leftmost strlen(offset) PIN digits (the PIN must have at least that many).
 */
int kv_hsm_ibm3624_verify(kv_hsm *h, const kv_hsm_key *pvk, const char *dec_table,
                          const char *vdata, char pad, const char *pin, size_t pin_len,
                          const char *offset, int *match);

/* The same from an encrypted PIN block; an invalid block is a mismatch. */
int kv_hsm_ibm3624_verify_pinblock(kv_hsm *h, const kv_hsm_key *pvk, const kv_hsm_key *pin_key,
                                   int format, const uint8_t *block, size_t block_len,
                                   const char *pan, const char *dec_table, const char *vdata,
                                   char pad, const char *offset, int *match);

#endif

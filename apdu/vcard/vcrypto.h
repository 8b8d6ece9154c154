/*
 * Internal to kv_vcard: the virtual card's own symmetric cryptography with
 * OpenSSL (the virtual card, and only it, holds its keys in its profile;
 * every other key stays in the HSM). Keys are double-length DES keys A||B
 * (16 bytes). Single DES under A is computed as 3DES-EDE under A||A, so no
 * legacy provider is needed.
 * All functions return 0, KV_ERR_ARG (bad lengths) or KV_ERR_INTERNAL
 * (OpenSSL failure). See CRYPTO.md for where each one is used.
 */
#ifndef KV_APDU_VCARD_VCRYPTO_H
#define KV_APDU_VCARD_VCRYPTO_H

#include <stddef.h>
#include <stdint.h>

/* 3DES-EDE ECB (enc 1) or decryption (enc 0) of len bytes (multiple of 8). */
int kv_vcard_des2_ecb(const uint8_t key[16], int enc, const uint8_t *in, size_t len, uint8_t *out);

/*
 * ISO/IEC 9797-1 MAC algorithm 3 with padding method pad (1: zeros, 2: 80
 * then zeros) over len bytes (len <= 1024).
 */
int kv_vcard_mac3(const uint8_t key[16], int pad, const uint8_t *in, size_t len, uint8_t mac[8]);

/* EMV common session key (Book 2 A1.3.1) from mk with R = ATC || 00*6. */
int kv_vcard_csk(const uint8_t mk[16], const uint8_t atc[2], uint8_t sk[16]);

/*
 * EMV common session key derivation with an explicit 8-byte diversification
 * value R (Mastercard SKD: R = ATC || 00 00 || UN): SK = 3DES(mk)[R with
 * byte 3 = F0] || 3DES(mk)[R with byte 3 = 0F] (Book 2 A1.3.1).
 */
int kv_vcard_csk_r(const uint8_t mk[16], const uint8_t r8[8], uint8_t sk[16]);

/* AES-128 ECB (enc 1) or decryption (enc 0) of len bytes (multiple of 16). */
int kv_vcard_aes_ecb(const uint8_t key[16], int enc, const uint8_t *in, size_t len, uint8_t *out);

/* CBC decryption with a zero IV, no padding removed: 3DES (aes 0) or AES-128 (aes 1). */
int kv_vcard_cbc_decrypt(int aes, const uint8_t key[16], const uint8_t *in, size_t len,
                         uint8_t *out);

/* AES-CMAC (NIST SP 800-38B, ISO/IEC 9797-1 MAC algorithm 5) over len bytes (<= 1024). */
int kv_vcard_aes_cmac(const uint8_t key[16], const uint8_t *in, size_t len, uint8_t mac[16]);

/*
 * AES common session key (Book 2 A1.3.1 with a 16-byte block and key):
 * SK = AES(mk)[ATC || 00 * 14] (Book 2 A1.3.1: AES-128 keys are one block long).
 */
int kv_vcard_aes_csk(const uint8_t mk[16], const uint8_t atc[2], uint8_t sk[16]);

/*
 * AES key unwrap (RFC 3394, default IV A6A6A6A6A6A6A6A6) of in (inlen: 24..40,
 * a multiple of 8) under kek (16, 24 or 32 bytes) into out (inlen - 8 bytes,
 * *outlen). Returns 0, KV_ERR_ARG (lengths) or KV_ERR_FORMAT when the
 * integrity check fails (wrong transport key).
 */
int kv_vcard_aes_unwrap(const uint8_t *kek, size_t keklen, const uint8_t *in, size_t inlen,
                        uint8_t *out, size_t *outlen);

/*
 * The transport key of the lab: the file set with
 * kv_vcard_set_transport_key_file (vcard.h) holds it in hex (16, 24 or 32
 * bytes; spaces and a newline allowed). Returns 0, KV_ERR_NOT_FOUND (no file
 * set), KV_ERR_IO or KV_ERR_FORMAT.
 * key is the caller's to wipe.
 */
int kv_vcard_transport_key(uint8_t key[32], size_t *keylen);

/* len random bytes (RAND_bytes). */
int kv_vcard_random(uint8_t *out, size_t len);

#endif

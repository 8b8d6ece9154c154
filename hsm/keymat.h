/*
 * Clear key material for the key ceremony, pure functions (no PKCS#11, no
 * I/O): key type names, clear components in hex, XOR of components, DES odd
 * parity, and the key check value (KCV) conventions.
 *
 * KCV conventions (the token computes them; see keys.h):
 *   DES2/DES3: first 3 bytes of 3DES-ECB encryption of 8 zero bytes
 *              (ANSI X9.24-1; the same as PKCS#11 CKA_CHECK_VALUE);
 *   AES:       first 3 bytes of AES-CMAC (RFC 4493) of 16 zero bytes
 *              (ANSI X9.24-1:2017 for AES keys; PKCS#11 CKA_CHECK_VALUE
 *              uses AES-ECB instead);
 *   HMAC:      first 3 bytes of HMAC-SHA256 of 32 zero bytes (kortvagt's own
 *              convention: no standard exists for generic secrets).
 * A KCV given by a key custodian may be 2 or 3 bytes (4 or 6 hex digits); a
 * 2-byte KCV is compared with the first 2 bytes.
 */
#ifndef KV_HSM_KEYMAT_H
#define KV_HSM_KEYMAT_H

#include "hsm/p11.h"

#include <stddef.h>
#include <stdint.h>

#define KV_KEYMAT_MAX 64      /* longest key value accepted (HMAC keys) */
#define KV_KEYMAT_HMAC_MIN 32 /* HMAC-SHA256 keys: at least the hash length */

/* "des2", "des3", "aes128", "aes192", "aes256", "hmac"; never NULL. */
const char *kv_key_type_name(kv_key_type t);
/* Parse a type name; 0 or KV_ERR_ARG. */
int kv_key_type_parse(const char *s, kv_key_type *out);
/* 1 for DES2/DES3. */
int kv_key_type_is_des(kv_key_type t);
/* 1 for AES-128/192/256. */
int kv_key_type_is_aes(kv_key_type t);
/*
 * Allowed value lengths of a type: DES2 16, DES3 24, AES 16/24/32, HMAC
 * KV_KEYMAT_HMAC_MIN..KV_KEYMAT_MAX.
 */
void kv_key_type_lengths(kv_key_type t, size_t *min, size_t *max);

/* Set odd parity on every byte (the low bit of each DES key byte). */
void kv_des_parity_fix(uint8_t *key, size_t len);
/* 1 if every byte has odd parity. */
int kv_des_parity_ok(const uint8_t *key, size_t len);

/* acc[i] ^= comp[i] for len bytes. */
void kv_keymat_xor(uint8_t *acc, const uint8_t *comp, size_t len);

/* What is wrong with a set of components; never holds a component's value. */
typedef enum {
    KV_KEYMAT_OK = 0,
    KV_KEYMAT_EMPTY,      /* a component line is empty */
    KV_KEYMAT_NOT_HEX,    /* a character that is not a hex digit (position given) */
    KV_KEYMAT_ODD,        /* an odd number of hex digits */
    KV_KEYMAT_LENGTH,     /* wrong byte length for the key type */
    KV_KEYMAT_MISMATCH,   /* a component's length differs from the first one's */
    KV_KEYMAT_NONE,       /* no component at all */
    KV_KEYMAT_TOO_MANY,   /* more than KV_KEYMAT_MAX_COMPONENTS */
    KV_KEYMAT_DEGENERATE, /* DES key whose parts are equal (single-length strength) */
} kv_keymat_problem_kind;

#define KV_KEYMAT_MAX_COMPONENTS 9

typedef struct {
    kv_keymat_problem_kind kind;
    size_t component; /* 1-based; 0 when about the combined key */
    size_t position;  /* 1-based character position for KV_KEYMAT_NOT_HEX */
    size_t got, want; /* byte lengths for LENGTH / MISMATCH */
} kv_keymat_problem;

/*
 * Decode one component (hex; spaces and tabs ignored; upper or lower case)
 * into out (capacity cap >= KV_KEYMAT_MAX). Returns the byte length, or
 * KV_ERR_FORMAT with *p saying why (component number left 0 for the caller).
 */
int kv_keymat_component_decode(const char *hex, uint8_t *out, size_t cap, kv_keymat_problem *p);

/*
 * Decode n components of a key of type t, check their lengths, XOR them into
 * key (capacity cap >= KV_KEYMAT_MAX) and, for DES keys, fix odd parity.
 * Returns the key length or KV_ERR_FORMAT with *p naming the problem and the
 * component. Intermediate copies are wiped; on failure key is wiped.
 */
int kv_keymat_combine(const char *const *hex, size_t n, kv_key_type t, uint8_t *key, size_t cap,
                      kv_keymat_problem *p);

/*
 * kv_keymat_combine, and with allow_single_des set a DES2 key whose halves
 * are equal (single-DES strength, as public test vectors use) is accepted
 * instead of KV_KEYMAT_DEGENERATE. A DES3 key with equal parts is always
 * refused.
 */
int kv_keymat_combine_opt(const char *const *hex, size_t n, kv_key_type t, int allow_single_des,
                          uint8_t *key, size_t cap, kv_keymat_problem *p);

/*
 * 1 if two adjacent 8-byte parts of a DES key (len 16 or 24) are equal:
 * single-DES strength. Not constant-time (the result is not secret).
 */
int kv_keymat_des_single_strength(const uint8_t *key, size_t len);

/* One line naming the problem, e.g. "component 2 has 15 bytes; type des2 needs 16". */
void kv_keymat_problem_text(const kv_keymat_problem *p, kv_key_type t, char *buf, size_t cap);

/*
 * Parse a KCV given by a custodian: 4 or 6 hex digits. Returns the byte
 * length (2 or 3) or KV_ERR_FORMAT.
 */
int kv_kcv_parse(const char *hex, uint8_t out[3]);

/* 1 if the first given_len bytes of kcv equal given. */
int kv_kcv_matches(const uint8_t kcv[3], const uint8_t *given, size_t given_len);

/*
 * The input the KCV of type t is computed over (all zero bytes): 8 for DES,
 * 16 for AES, 32 for HMAC. Points at static storage.
 */
const uint8_t *kv_kcv_input(kv_key_type t, size_t *len);

/*
 * RFC 4493 subkey doubling: out = L << 1, XOR 0x87 into the last byte when
 * the top bit of L was set. With L = AES-ECB(K, 0^16) and K1 = dbl(L), the
 * AES-CMAC of one zero block is AES-ECB(K, K1): the KCV of an AES key that
 * may encrypt but not sign. Constant-time. in and out may be the same.
 */
void kv_kcv_cmac_dbl(const uint8_t in[16], uint8_t out[16]);

/* The KCV method in words, e.g. "3DES-ECB of 8 zero bytes". */
const char *kv_kcv_method(kv_key_type t);

#endif

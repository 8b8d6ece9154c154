/* Hex text <-> bytes, and PAN masking for human output and logs. */
#ifndef KV_BASE_HEX_H
#define KV_BASE_HEX_H

#include <stddef.h>
#include <stdint.h>

/* Value of one hex digit (0-9, a-f, A-F), or -1. Not constant-time. */
int kv_hex_digit(char c);

/*
 * Decode hex text (upper or lower case; spaces ignored) into out (capacity
 * cap). Returns the number of bytes, KV_ERR_FORMAT for a non-hex character or
 * an odd number of digits, KV_ERR_BUFFER when out is too small.
 */
int kv_hex_decode(const char *hex, uint8_t *out, size_t cap);

/* Encode len bytes as upper-case hex into out, NUL-terminated; out needs 2*len+1 bytes. */
void kv_hex_encode(const uint8_t *in, size_t len, char *out);

/* 1 if s is a non-empty string of decimal digits of length in [min,max], else 0. */
int kv_is_digits(const char *s, size_t min, size_t max);

/*
 * Mask a PAN for display: first 6 and last 4 digits kept, the rest '*'
 * (PANs shorter than 11 digits keep only the last 4). out needs strlen(pan)+1.
 */
void kv_pan_mask(const char *pan, char *out);

#endif

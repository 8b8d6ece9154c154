/* see keymat.h */
#include "hsm/keymat.h"
#include "src/base/hex.h"
#include "src/base/err.h"
#include "src/base/secure.h"

#include <stdio.h>
#include <string.h>

static const struct {
    kv_key_type type;
    const char *name;
    size_t min, max;
} types[] = {
    {KV_KEY_DES2, "des2", 16, 16},     {KV_KEY_DES3, "des3", 24, 24},
    {KV_KEY_AES128, "aes128", 16, 16}, {KV_KEY_AES192, "aes192", 24, 24},
    {KV_KEY_AES256, "aes256", 32, 32}, {KV_KEY_HMAC, "hmac", KV_KEYMAT_HMAC_MIN, KV_KEYMAT_MAX},
};

#define NTYPES (sizeof(types) / sizeof(types[0]))

const char *kv_key_type_name(kv_key_type t)
{
    for (size_t i = 0; i < NTYPES; i++)
        if (types[i].type == t)
            return types[i].name;
    return "unknown";
}

int kv_key_type_parse(const char *s, kv_key_type *out)
{
    for (size_t i = 0; s != NULL && i < NTYPES; i++)
        if (strcmp(s, types[i].name) == 0) {
            *out = types[i].type;
            return 0;
        }
    return KV_ERR_ARG;
}

int kv_key_type_is_des(kv_key_type t)
{
    return t == KV_KEY_DES2 || t == KV_KEY_DES3;
}

int kv_key_type_is_aes(kv_key_type t)
{
    return t == KV_KEY_AES128 || t == KV_KEY_AES192 || t == KV_KEY_AES256;
}

void kv_key_type_lengths(kv_key_type t, size_t *min, size_t *max)
{
    *min = *max = 0;
    for (size_t i = 0; i < NTYPES; i++)
        if (types[i].type == t) {
            *min = types[i].min;
            *max = types[i].max;
        }
}

/* Odd parity without a branch on the key byte (key bytes are secret). */
static uint8_t odd_parity(uint8_t b)
{
    uint8_t x = (uint8_t)(b >> 1);
    x ^= (uint8_t)(x >> 4);
    x ^= (uint8_t)(x >> 2);
    x ^= (uint8_t)(x >> 1);
    /* x&1 = parity of the 7 high bits; the low bit makes the total odd */
    return (uint8_t)((b & 0xFE) | ((x & 1) ^ 1));
}

void kv_des_parity_fix(uint8_t *key, size_t len)
{
    for (size_t i = 0; i < len; i++)
        key[i] = odd_parity(key[i]);
}

int kv_des_parity_ok(const uint8_t *key, size_t len)
{
    uint8_t bad = 0;
    for (size_t i = 0; i < len; i++)
        bad |= (uint8_t)(key[i] ^ odd_parity(key[i]));
    return bad == 0;
}

void kv_keymat_xor(uint8_t *acc, const uint8_t *comp, size_t len)
{
    for (size_t i = 0; i < len; i++)
        acc[i] ^= comp[i];
}

int kv_keymat_component_decode(const char *hex, uint8_t *out, size_t cap, kv_keymat_problem *p)
{
    size_t n = 0, digits = 0, pos = 0;
    int hi = -1, r = KV_ERR_FORMAT;

    memset(p, 0, sizeof(*p));
    for (const char *c = hex; *c != '\0'; c++) {
        int v;
        pos++;
        if (*c == ' ' || *c == '\t')
            continue;
        /* not constant-time: the format is checked before use, and an error
         * names only the position, never a digit */
        if ((v = kv_hex_digit(*c)) < 0) {
            p->kind = KV_KEYMAT_NOT_HEX;
            p->position = pos;
            goto out;
        }
        digits++;
        if (hi < 0) {
            hi = v;
            continue;
        }
        if (n >= cap) {
            p->kind = KV_KEYMAT_LENGTH;
            p->got = n + 1;
            goto out;
        }
        out[n++] = (uint8_t)(hi << 4 | v);
        hi = -1;
    }
    if (digits == 0) {
        p->kind = KV_KEYMAT_EMPTY;
        goto out;
    }
    if (hi >= 0) {
        p->kind = KV_KEYMAT_ODD;
        p->got = digits;
        goto out;
    }
    r = (int)n;
out:
    if (r < 0)
        kv_wipe(out, cap);
    return r;
}

int kv_keymat_des_single_strength(const uint8_t *key, size_t len)
{
    /* not constant-time: compares the finished key once, the result is public */
    if (len >= 16 && kv_ct_equal(key, key + 8, 8))
        return 1;
    if (len >= 24 && kv_ct_equal(key + 8, key + 16, 8))
        return 1;
    return 0;
}

int kv_keymat_combine(const char *const *hex, size_t n, kv_key_type t, uint8_t *key, size_t cap,
                      kv_keymat_problem *p)
{
    return kv_keymat_combine_opt(hex, n, t, 0, key, cap, p);
}

int kv_keymat_combine_opt(const char *const *hex, size_t n, kv_key_type t, int allow_single_des,
                          uint8_t *key, size_t cap, kv_keymat_problem *p)
{
    uint8_t comp[KV_KEYMAT_MAX];
    size_t min, max, len = 0;
    int r = KV_ERR_FORMAT, got;

    memset(p, 0, sizeof(*p));
    kv_key_type_lengths(t, &min, &max);
    if (cap < KV_KEYMAT_MAX || max == 0)
        return KV_ERR_ARG;
    if (n == 0) {
        p->kind = KV_KEYMAT_NONE;
        goto out;
    }
    if (n > KV_KEYMAT_MAX_COMPONENTS) {
        p->kind = KV_KEYMAT_TOO_MANY;
        p->got = n;
        goto out;
    }
    memset(key, 0, cap);
    for (size_t i = 0; i < n; i++) {
        if ((got = kv_keymat_component_decode(hex[i], comp, sizeof(comp), p)) < 0) {
            p->component = i + 1;
            goto out;
        }
        if ((size_t)got < min || (size_t)got > max) {
            p->kind = KV_KEYMAT_LENGTH;
            p->component = i + 1;
            p->got = (size_t)got;
            p->want = min;
            goto out;
        }
        if (i > 0 && (size_t)got != len) {
            p->kind = KV_KEYMAT_MISMATCH;
            p->component = i + 1;
            p->got = (size_t)got;
            p->want = len;
            goto out;
        }
        len = (size_t)got;
        kv_keymat_xor(key, comp, len);
        kv_wipe(comp, sizeof(comp));
    }
    if (kv_key_type_is_des(t)) {
        kv_des_parity_fix(key, len);
        /* a double-length key with equal halves only when asked for (test vectors) */
        if (kv_keymat_des_single_strength(key, len) && !(allow_single_des && t == KV_KEY_DES2)) {
            p->kind = KV_KEYMAT_DEGENERATE;
            goto out;
        }
    }
    r = (int)len;
out:
    kv_wipe(comp, sizeof(comp));
    if (r < 0)
        kv_wipe(key, cap);
    return r;
}

void kv_keymat_problem_text(const kv_keymat_problem *p, kv_key_type t, char *buf, size_t cap)
{
    char who[32];
    size_t min, max;

    kv_key_type_lengths(t, &min, &max);
    if (p->component > 0)
        snprintf(who, sizeof(who), "component %zu", p->component);
    else
        snprintf(who, sizeof(who), "the key");
    switch (p->kind) {
    case KV_KEYMAT_OK:
        snprintf(buf, cap, "no problem");
        break;
    case KV_KEYMAT_EMPTY:
        snprintf(buf, cap, "%s is empty", who);
        break;
    case KV_KEYMAT_NOT_HEX:
        snprintf(buf, cap, "%s is not hex: character %zu is not 0-9 or A-F", who, p->position);
        break;
    case KV_KEYMAT_ODD:
        snprintf(buf, cap, "%s has an odd number of hex digits (%zu)", who, p->got);
        break;
    case KV_KEYMAT_LENGTH:
        if (min == max)
            snprintf(buf, cap, "%s has %zu bytes; type %s needs %zu", who, p->got,
                     kv_key_type_name(t), min);
        else
            snprintf(buf, cap, "%s has %zu bytes; type %s needs %zu to %zu", who, p->got,
                     kv_key_type_name(t), min, max);
        break;
    case KV_KEYMAT_MISMATCH:
        snprintf(buf, cap, "%s has %zu bytes, but component 1 has %zu: components differ in length",
                 who, p->got, p->want);
        break;
    case KV_KEYMAT_NONE:
        snprintf(buf, cap, "no key component on stdin (one hex component per line)");
        break;
    case KV_KEYMAT_TOO_MANY:
        snprintf(buf, cap, "%zu components: at most %d", p->got, KV_KEYMAT_MAX_COMPONENTS);
        break;
    case KV_KEYMAT_DEGENERATE:
        if (t == KV_KEY_DES2)
            snprintf(buf, cap,
                     "the combined %s key has two equal 8-byte parts (single-DES strength): "
                     "refused (--allow-single-des stores it for test vectors, marked weak)",
                     kv_key_type_name(t));
        else
            snprintf(
                buf, cap,
                "the combined %s key has two equal 8-byte parts (single-DES strength): refused",
                kv_key_type_name(t));
        break;
    }
}

int kv_kcv_parse(const char *hex, uint8_t out[3])
{
    size_t n = strlen(hex);
    if (n != 4 && n != 6)
        return KV_ERR_FORMAT;
    for (size_t i = 0; i < n; i += 2) {
        int hi = kv_hex_digit(hex[i]), lo = kv_hex_digit(hex[i + 1]);
        if (hi < 0 || lo < 0)
            return KV_ERR_FORMAT;
        out[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    return (int)(n / 2);
}

int kv_kcv_matches(const uint8_t kcv[3], const uint8_t *given, size_t given_len)
{
    if (given_len < 2 || given_len > 3)
        return 0;
    return kv_ct_equal(kcv, given, given_len);
}

static const uint8_t zeros[32];

const uint8_t *kv_kcv_input(kv_key_type t, size_t *len)
{
    if (kv_key_type_is_des(t))
        *len = 8;
    else if (kv_key_type_is_aes(t))
        *len = 16;
    else
        *len = 32;
    return zeros;
}

void kv_kcv_cmac_dbl(const uint8_t in[16], uint8_t out[16])
{
    uint8_t carry = (uint8_t)(in[0] >> 7);
    for (size_t i = 0; i < 15; i++)
        out[i] = (uint8_t)(in[i] << 1 | in[i + 1] >> 7);
    out[15] = (uint8_t)((in[15] << 1) ^ (0x87 & (uint8_t)(0 - carry)));
}

const char *kv_kcv_method(kv_key_type t)
{
    if (kv_key_type_is_des(t))
        return "3DES-ECB of 8 zero bytes";
    if (kv_key_type_is_aes(t))
        return "AES-CMAC of 16 zero bytes";
    return "HMAC-SHA256 of 32 zero bytes";
}

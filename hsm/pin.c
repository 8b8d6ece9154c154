/* see pin.h */
#include "hsm/pin.h"
#include "hsm/cvv.h"
#include "hsm/mac.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/base/secure.h"

#include <openssl/rand.h>
#include <string.h>

/* ---- constant-time helpers (secret nibbles and digits) ---- */

/* 1 when a < b (both below 2^31), else 0; no branch. */
static uint32_t ct_lt(uint32_t a, uint32_t b)
{
    return (a - b) >> 31;
}

/* 1 when a == b, else 0; no branch. */
static uint32_t ct_eq(uint32_t a, uint32_t b)
{
    uint32_t x = a ^ b;
    return 1u ^ ((x | (0u - x)) >> 31);
}

static uint8_t nib(const uint8_t *b, size_t i)
{
    return (uint8_t)((i % 2 == 0) ? b[i / 2] >> 4 : b[i / 2] & 0x0F);
}

static void set_nib(uint8_t *b, size_t i, uint8_t v)
{
    if (i % 2 == 0)
        b[i / 2] = (uint8_t)((b[i / 2] & 0x0F) | (v << 4));
    else
        b[i / 2] = (uint8_t)((b[i / 2] & 0xF0) | (v & 0x0F));
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* ---- per-thread locked scratch area for clear PIN material ---- */

struct pin_work {
    uint8_t field[KV_PINBLOCK_MAX];   /* clear PIN field */
    uint8_t pan[KV_PINBLOCK_MAX];     /* PAN field */
    uint8_t tmp[2 * KV_PINBLOCK_MAX]; /* cipher input / intermediate */
    uint8_t out[2 * KV_PINBLOCK_MAX]; /* cipher output */
    uint8_t fill[KV_PIN_FILL];
    char pin[KV_PIN_MAX + 4];
    char nat[KV_PIN_MAX + 4]; /* PVV or IBM 3624 natural PIN */
};

static _Thread_local kv_secbuf *tl_scratch;

/* The locked work area of this thread (allocated once), or NULL. */
static struct pin_work *work_get(void)
{
    if (tl_scratch == NULL)
        tl_scratch = kv_secbuf_new(sizeof(struct pin_work));
    if (tl_scratch == NULL)
        return NULL;
    return (struct pin_work *)(void *)kv_secbuf_ptr(tl_scratch);
}

static void work_wipe(struct pin_work *w)
{
    if (w != NULL)
        kv_wipe(w, sizeof(*w));
}

/* ---- pure parts ---- */

int kv_pin_check(const char *pin, size_t pin_len)
{
    uint32_t bad = 0;

    if (pin == NULL || pin_len < KV_PIN_MIN || pin_len > KV_PIN_MAX)
        return KV_ERR_ARG;
    for (size_t i = 0; i < pin_len; i++)
        bad |= ct_lt((uint8_t)pin[i], '0') | ct_lt('9', (uint8_t)pin[i]);
    return bad ? KV_ERR_ARG : 0;
}

int kv_pinblock_size(int format)
{
    switch (format) {
    case KV_PINBLOCK_ISO0:
    case KV_PINBLOCK_ISO1:
    case KV_PINBLOCK_ISO3:
        return 8;
    case KV_PINBLOCK_ISO4:
        return 16;
    default:
        return KV_ERR_ARG;
    }
}

int kv_pin_field_build(int format, const char *pin, size_t pin_len, const uint8_t *fill,
                       uint8_t *out)
{
    int r;

    if (kv_pinblock_size(format) < 0)
        return KV_ERR_ARG;
    if ((r = kv_pin_check(pin, pin_len)) != 0)
        return r;
    if (format != KV_PINBLOCK_ISO0 && fill == NULL)
        return KV_ERR_ARG;
    memset(out, 0, 8);
    set_nib(out, 0, (uint8_t)format);
    set_nib(out, 1, (uint8_t)pin_len);
    for (size_t i = 0; i < pin_len; i++)
        set_nib(out, 2 + i, (uint8_t)(pin[i] - '0'));
    for (size_t p = 2 + pin_len, i = 0; p < 16; p++, i++) {
        uint8_t v;
        switch (format) {
        case KV_PINBLOCK_ISO0:
            v = 0xF;
            break;
        case KV_PINBLOCK_ISO1:
            if (fill[i] > 0xF)
                goto bad;
            v = fill[i];
            break;
        case KV_PINBLOCK_ISO3:
            if (fill[i] < 0xA || fill[i] > 0xF)
                goto bad;
            v = fill[i];
            break;
        default: /* format 4 */
            v = 0xA;
            break;
        }
        set_nib(out, p, v);
    }
    if (format == KV_PINBLOCK_ISO4)
        memcpy(out + 8, fill, 8);
    return 0;
bad:
    kv_wipe(out, 8);
    return KV_ERR_ARG;
}

int kv_pan_field_build(int format, const char *pan, uint8_t *out)
{
    size_t n;

    if (pan == NULL || !kv_is_digits(pan, 1, 19))
        return KV_ERR_ARG;
    n = strlen(pan);
    if (format == KV_PINBLOCK_ISO0 || format == KV_PINBLOCK_ISO3) {
        /* ISO 9564-1: the 12 rightmost digits excluding the check digit */
        size_t avail = n - 1, take = avail < 12 ? avail : 12;
        const char *src = pan + avail - take;
        memset(out, 0, 8);
        for (size_t i = 0; i < take; i++)
            set_nib(out, 16 - take + i, (uint8_t)(src[i] - '0'));
        return 0;
    }
    if (format == KV_PINBLOCK_ISO4) {
        size_t width = n < 12 ? 12 : n;
        memset(out, 0, 16);
        set_nib(out, 0, (uint8_t)(n < 12 ? 0 : n - 12));
        for (size_t i = 0; i < n; i++)
            set_nib(out, 1 + width - n + i, (uint8_t)(pan[i] - '0'));
        return 0;
    }
    return KV_ERR_ARG;
}

int kv_pin_field_parse(int format, const uint8_t *field, char *pin, size_t *pin_len)
{
    uint32_t bad, n;

    if (kv_pinblock_size(format) < 0)
        return KV_ERR_ARG;
    n = nib(field, 1);
    bad = 1u ^ ct_eq(nib(field, 0), (uint32_t)format);
    bad |= ct_lt(n, KV_PIN_MIN) | ct_lt(KV_PIN_MAX, n);
    /* every position is checked both ways under masks: no branch on the digits */
    for (uint32_t i = 0; i < KV_PIN_FILL; i++) {
        uint32_t v = nib(field, 2 + i);
        uint32_t in_pin = ct_lt(i, n);
        uint32_t fill_bad;
        switch (format) {
        case KV_PINBLOCK_ISO0:
            fill_bad = 1u ^ ct_eq(v, 0xF);
            break;
        case KV_PINBLOCK_ISO3:
            fill_bad = ct_lt(v, 0xA);
            break;
        case KV_PINBLOCK_ISO4:
            fill_bad = 1u ^ ct_eq(v, 0xA);
            break;
        default: /* format 1: transaction field, any value */
            fill_bad = 0;
            break;
        }
        bad |= (in_pin & ct_lt(9, v)) | ((in_pin ^ 1u) & fill_bad);
        pin[i < KV_PIN_MAX ? i : KV_PIN_MAX] = (char)('0' + v);
    }
    /* The result itself may branch: it is what the caller learns anyway. */
    if (bad) {
        kv_wipe(pin, KV_PIN_MAX + 1);
        return KV_ERR_FORMAT;
    }
    pin[n] = '\0';
    *pin_len = n;
    return 0;
}

int kv_pinblock_clear_build(int format, const char *pin, size_t pin_len, const char *pan,
                            const uint8_t *fill, uint8_t out[8])
{
    uint8_t pf[8];
    int r;

    if (format != KV_PINBLOCK_ISO0 && format != KV_PINBLOCK_ISO1 && format != KV_PINBLOCK_ISO3)
        return KV_ERR_ARG;
    if ((r = kv_pin_field_build(format, pin, pin_len, fill, out)) != 0)
        return r;
    if (format == KV_PINBLOCK_ISO1)
        return 0;
    if ((r = kv_pan_field_build(format, pan, pf)) != 0) {
        kv_wipe(out, 8);
        return r;
    }
    for (size_t i = 0; i < 8; i++)
        out[i] ^= pf[i];
    return 0;
}

int kv_pinblock_clear_parse(int format, const uint8_t block[8], const char *pan, char *pin,
                            size_t *pin_len)
{
    uint8_t f[8], pf[8];
    int r;

    if (format != KV_PINBLOCK_ISO0 && format != KV_PINBLOCK_ISO1 && format != KV_PINBLOCK_ISO3)
        return KV_ERR_ARG;
    memcpy(f, block, 8);
    if (format != KV_PINBLOCK_ISO1) {
        if ((r = kv_pan_field_build(format, pan, pf)) != 0)
            goto out;
        for (size_t i = 0; i < 8; i++)
            f[i] ^= pf[i];
    }
    r = kv_pin_field_parse(format, f, pin, pin_len);
out:
    kv_wipe(f, sizeof(f));
    return r;
}

int kv_pvv_tsp(const char *pan, int pvki, const char *pin, size_t pin_len, uint8_t out[8])
{
    size_t n, avail, take;
    int r;

    if (pan == NULL || !kv_is_digits(pan, 1, 19) || pvki < 0 || pvki > 9)
        return KV_ERR_ARG;
    if ((r = kv_pin_check(pin, pin_len)) != 0)
        return r;
    n = strlen(pan);
    avail = n - 1; /* without the check digit */
    take = avail < 11 ? avail : 11;
    memset(out, 0, 8);
    for (size_t i = 0; i < take; i++)
        set_nib(out, 11 - take + i, (uint8_t)(pan[avail - take + i] - '0'));
    set_nib(out, 11, (uint8_t)pvki);
    for (size_t i = 0; i < 4; i++)
        set_nib(out, 12 + i, (uint8_t)(pin[i] - '0'));
    return 0;
}

int kv_ibm3624_validation_block(const char *vdata, char pad, uint8_t out[8])
{
    size_t n;
    int pv = hexval(pad);

    if (vdata == NULL || pv < 0)
        return KV_ERR_ARG;
    n = strlen(vdata);
    if (n < 1 || n > KV_IBM3624_VDATA_MAX)
        return KV_ERR_ARG;
    for (size_t i = 0; i < 16; i++) {
        int v = i < n ? hexval(vdata[i]) : pv;
        if (v < 0)
            return KV_ERR_ARG;
        set_nib(out, i, (uint8_t)v);
    }
    return 0;
}

void kv_ibm3624_offset_digits(const char *pin, const char *natural, size_t n, char *offset)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t d = (uint32_t)(pin[i] - '0') + 10u - (uint32_t)(natural[i] - '0');
        d -= 10u * (1u ^ ct_lt(d, 10)); /* mod 10 of 1..19 without a branch */
        offset[i] = (char)('0' + d);
    }
    offset[n] = '\0';
}

int kv_pin_random_fill(int format, uint8_t fill[KV_PIN_FILL])
{
    uint8_t rnd[64];
    size_t k = 0;
    int r = KV_ERR_INTERNAL;

    if (format == KV_PINBLOCK_ISO0) {
        memset(fill, 0xF, KV_PIN_FILL);
        return 0;
    }
    while (k < KV_PIN_FILL) {
        if (RAND_bytes(rnd, sizeof(rnd)) != 1)
            goto out;
        for (size_t i = 0; i < sizeof(rnd) && k < KV_PIN_FILL; i++) {
            if (format == KV_PINBLOCK_ISO3) {
                /* uniform over A-F: reject 252..255 (252 = 6 * 42) */
                if (rnd[i] < 252)
                    fill[k++] = (uint8_t)(0xA + rnd[i] % 6);
            } else if (format == KV_PINBLOCK_ISO1) {
                fill[k++] = rnd[i] & 0x0F;
            } else {
                fill[k++] = rnd[i];
            }
        }
    }
    r = 0;
out:
    kv_wipe(rnd, sizeof(rnd));
    return r;
}

/* ---- token work ---- */

static int key_fits(const kv_hsm_key *key, int format)
{
    if (format == KV_PINBLOCK_ISO4)
        return key->type == KV_KEY_AES128 || key->type == KV_KEY_AES192 ||
               key->type == KV_KEY_AES256;
    return key->type == KV_KEY_DES2 || key->type == KV_KEY_DES3;
}

/*
 * The role checks of every operation, before any token work: a PIN block key
 * (role pin) only enciphers and deciphers PIN blocks, a PIN verification key
 * (role pvk) only computes PVVs and IBM 3624 natural PINs. Either may be NULL
 * (not used by the operation).
 */
static int need_roles(kv_hsm *h, const kv_hsm_key *pvk, const kv_hsm_key *pin_key)
{
    int r;

    if (pvk != NULL && (r = kv_hsm_key_require_role(h, pvk, KV_ROLE_PVK)) != 0)
        return r;
    if (pin_key != NULL && (r = kv_hsm_key_require_role(h, pin_key, KV_ROLE_PIN)) != 0)
        return r;
    return 0;
}

/* Encrypt the PIN w->pin (pin_len digits) as a block of format into out. */
static int encrypt_block(kv_hsm *h, const kv_hsm_key *key, int format, size_t pin_len,
                         const char *pan, struct pin_work *w, uint8_t *out, size_t *out_len)
{
    static const uint8_t zero_iv[KV_AES_BLOCK];
    int r;

    if (!key_fits(key, format))
        return KV_ERR_HSM_KEY;
    if ((r = kv_pin_random_fill(format, w->fill)) != 0)
        return r;
    if (format != KV_PINBLOCK_ISO4) {
        if ((r = kv_pinblock_clear_build(format, w->pin, pin_len, pan, w->fill, w->tmp)) != 0)
            return r;
        if ((r = kv_hsm_ecb_encrypt(h, key, 0, w->tmp, 8, out)) != 0)
            return r;
        *out_len = 8;
        return 0;
    }
    if ((r = kv_pin_field_build(format, w->pin, pin_len, w->fill, w->tmp)) != 0)
        return r;
    if ((r = kv_pan_field_build(format, pan, w->tmp + 16)) != 0)
        return r;
    /*
     * E(E(PIN field) XOR PAN field) is CBC over the two blocks with a zero
     * IV: one token call, the result is the second ciphertext block.
     */
    if ((r = kv_hsm_cbc_encrypt(h, key, 0, zero_iv, w->tmp, 32, w->out)) != 0)
        return r;
    memcpy(out, w->out + 16, 16);
    *out_len = 16;
    return 0;
}

/* Decrypt and parse into w->pin; KV_ERR_FORMAT for an invalid block. */
static int decrypt_block(kv_hsm *h, const kv_hsm_key *key, int format, const uint8_t *block,
                         size_t block_len, const char *pan, struct pin_work *w, size_t *pin_len)
{
    int size = kv_pinblock_size(format), r;

    if (size < 0 || block == NULL)
        return KV_ERR_ARG;
    if (block_len != (size_t)size)
        return KV_ERR_ARG;
    if (format != KV_PINBLOCK_ISO1 && (pan == NULL || !kv_is_digits(pan, 1, 19)))
        return KV_ERR_ARG;
    if (!key_fits(key, format))
        return KV_ERR_HSM_KEY;
    if (format != KV_PINBLOCK_ISO4) {
        if ((r = kv_hsm_ecb_decrypt(h, key, 0, block, 8, w->tmp)) != 0)
            return r;
        return kv_pinblock_clear_parse(format, w->tmp, pan, w->pin, pin_len);
    }
    if ((r = kv_hsm_ecb_decrypt(h, key, 0, block, 16, w->tmp)) != 0)
        return r;
    if ((r = kv_pan_field_build(format, pan, w->pan)) != 0)
        return r;
    for (size_t i = 0; i < 16; i++)
        w->tmp[i] ^= w->pan[i];
    if ((r = kv_hsm_ecb_decrypt(h, key, 0, w->tmp, 16, w->field)) != 0)
        return r;
    return kv_pin_field_parse(format, w->field, w->pin, pin_len);
}

int kv_hsm_pinblock_encrypt(kv_hsm *h, const kv_hsm_key *key, int format, const char *pin,
                            size_t pin_len, const char *pan, uint8_t out[KV_PINBLOCK_MAX],
                            size_t *out_len)
{
    struct pin_work *w;
    int r;

    *out_len = 0;
    if ((r = need_roles(h, NULL, key)) != 0)
        return r;
    if ((w = work_get()) == NULL)
        return KV_ERR_NOMEM;
    if ((r = kv_pin_check(pin, pin_len)) != 0)
        goto out;
    if (kv_pinblock_size(format) < 0 || (format != KV_PINBLOCK_ISO1 && pan == NULL)) {
        r = KV_ERR_ARG;
        goto out;
    }
    memcpy(w->pin, pin, pin_len);
    r = encrypt_block(h, key, format, pin_len, pan, w, out, out_len);
out:
    work_wipe(w);
    return r;
}

int kv_hsm_pinblock_decrypt(kv_hsm *h, const kv_hsm_key *key, int format, const uint8_t *block,
                            size_t block_len, const char *pan, char *pin, size_t *pin_len)
{
    struct pin_work *w;
    size_t n = 0;
    int r;

    if ((r = need_roles(h, NULL, key)) != 0)
        return r;
    if ((w = work_get()) == NULL)
        return KV_ERR_NOMEM;
    if ((r = decrypt_block(h, key, format, block, block_len, pan, w, &n)) != 0)
        goto out;
    if (pin != NULL)
        memcpy(pin, w->pin, n + 1);
    if (pin_len != NULL)
        *pin_len = n;
out:
    work_wipe(w);
    return r;
}

int kv_hsm_pinblock_translate(kv_hsm *h, const kv_hsm_key *in_key, int in_format,
                              const uint8_t *in_block, size_t in_len, const char *pan,
                              const kv_hsm_key *out_key, int out_format,
                              uint8_t out[KV_PINBLOCK_MAX], size_t *out_len)
{
    struct pin_work *w;
    size_t n = 0;
    int r;

    *out_len = 0;
    if ((r = need_roles(h, NULL, in_key)) != 0 || (r = need_roles(h, NULL, out_key)) != 0)
        return r;
    if ((w = work_get()) == NULL)
        return KV_ERR_NOMEM;
    if (kv_pinblock_size(out_format) < 0) {
        r = KV_ERR_ARG;
        goto out;
    }
    if (!key_fits(out_key, out_format)) {
        r = KV_ERR_HSM_KEY;
        goto out;
    }
    if ((r = decrypt_block(h, in_key, in_format, in_block, in_len, pan, w, &n)) != 0)
        goto out;
    r = encrypt_block(h, out_key, out_format, n, pan, w, out, out_len);
out:
    work_wipe(w);
    return r;
}

/* PVV of w->pin into w->nat. */
static int pvv_compute(kv_hsm *h, const kv_hsm_key *pvk, const char *pan, int pvki, size_t pin_len,
                       struct pin_work *w)
{
    int r;

    if (pvk->type != KV_KEY_DES2 && pvk->type != KV_KEY_DES3)
        return KV_ERR_HSM_KEY;
    if ((r = kv_pvv_tsp(pan, pvki, w->pin, pin_len, w->tmp)) != 0)
        return r;
    if ((r = kv_hsm_ecb_encrypt(h, pvk, 0, w->tmp, 8, w->out)) != 0)
        return r;
    return kv_decimalise_visa(w->out, 8, KV_PVV_DIGITS, w->nat);
}

int kv_hsm_pvv_generate(kv_hsm *h, const kv_hsm_key *pvk, const char *pan, int pvki,
                        const char *pin, size_t pin_len, char pvv[KV_PVV_DIGITS + 1])
{
    struct pin_work *w;
    int r;

    if ((r = need_roles(h, pvk, NULL)) != 0)
        return r;
    if ((w = work_get()) == NULL)
        return KV_ERR_NOMEM;
    if ((r = kv_pin_check(pin, pin_len)) != 0)
        goto out;
    memcpy(w->pin, pin, pin_len);
    if ((r = pvv_compute(h, pvk, pan, pvki, pin_len, w)) != 0)
        goto out;
    memcpy(pvv, w->nat, KV_PVV_DIGITS + 1);
out:
    work_wipe(w);
    return r;
}

static int pvv_arg_ok(const char *pvv)
{
    return pvv != NULL && kv_is_digits(pvv, KV_PVV_DIGITS, KV_PVV_DIGITS);
}

int kv_hsm_pvv_verify(kv_hsm *h, const kv_hsm_key *pvk, const char *pan, int pvki, const char *pin,
                      size_t pin_len, const char *pvv, int *match)
{
    struct pin_work *w;
    int r;

    *match = 0;
    if ((r = need_roles(h, pvk, NULL)) != 0)
        return r;
    if ((w = work_get()) == NULL)
        return KV_ERR_NOMEM;
    if (!pvv_arg_ok(pvv) || (r = kv_pin_check(pin, pin_len)) != 0) {
        r = KV_ERR_ARG;
        goto out;
    }
    memcpy(w->pin, pin, pin_len);
    if ((r = pvv_compute(h, pvk, pan, pvki, pin_len, w)) != 0)
        goto out;
    *match = kv_ct_equal(w->nat, pvv, KV_PVV_DIGITS);
out:
    work_wipe(w);
    return r;
}

int kv_hsm_pvv_verify_pinblock(kv_hsm *h, const kv_hsm_key *pvk, const kv_hsm_key *pin_key,
                               int format, const uint8_t *block, size_t block_len, const char *pan,
                               int pvki, const char *pvv, int *match)
{
    struct pin_work *w;
    size_t n = 0;
    int r;

    *match = 0;
    if ((r = need_roles(h, pvk, pin_key)) != 0)
        return r;
    if ((w = work_get()) == NULL)
        return KV_ERR_NOMEM;
    if (!pvv_arg_ok(pvv) || pan == NULL || !kv_is_digits(pan, 1, 19) || pvki < 0 || pvki > 9) {
        r = KV_ERR_ARG;
        goto out;
    }
    r = decrypt_block(h, pin_key, format, block, block_len, pan, w, &n);
    if (r == KV_ERR_FORMAT) {
        r = 0; /* not a valid block: a mismatch, not an oracle */
        goto out;
    }
    if (r != 0)
        goto out;
    if ((r = pvv_compute(h, pvk, pan, pvki, n, w)) != 0)
        goto out;
    *match = kv_ct_equal(w->nat, pvv, KV_PVV_DIGITS);
out:
    work_wipe(w);
    return r;
}

/* Natural PIN of n digits into w->nat. */
static int ibm_natural(kv_hsm *h, const kv_hsm_key *pvk, const char *dec_table, const char *vdata,
                       char pad, size_t n, struct pin_work *w)
{
    int r;

    if (pvk->type != KV_KEY_DES2 && pvk->type != KV_KEY_DES3)
        return KV_ERR_HSM_KEY;
    if (dec_table == NULL || !kv_is_digits(dec_table, 16, 16))
        return KV_ERR_ARG;
    if ((r = kv_ibm3624_validation_block(vdata, pad, w->tmp)) != 0)
        return r;
    if ((r = kv_hsm_ecb_encrypt(h, pvk, 0, w->tmp, 8, w->out)) != 0)
        return r;
    return kv_decimalise_table(w->out, 8, dec_table, n, w->nat);
}

int kv_hsm_ibm3624_offset(kv_hsm *h, const kv_hsm_key *pvk, const char *dec_table,
                          const char *vdata, char pad, const char *pin, size_t pin_len,
                          char *offset)
{
    struct pin_work *w;
    int r;

    if ((r = need_roles(h, pvk, NULL)) != 0)
        return r;
    if ((w = work_get()) == NULL)
        return KV_ERR_NOMEM;
    if ((r = kv_pin_check(pin, pin_len)) != 0)
        goto out;
    memcpy(w->pin, pin, pin_len);
    if ((r = ibm_natural(h, pvk, dec_table, vdata, pad, pin_len, w)) != 0)
        goto out;
    kv_ibm3624_offset_digits(w->pin, w->nat, pin_len, offset);
out:
    work_wipe(w);
    return r;
}

/* Compare w->pin (pin_len digits) with natural + offset over strlen(offset) digits. */
static int ibm_check(kv_hsm *h, const kv_hsm_key *pvk, const char *dec_table, const char *vdata,
                     char pad, size_t pin_len, const char *offset, struct pin_work *w, int *match)
{
    size_t n = strlen(offset);
    char *mine = w->nat + 0;
    int r;

    if (pin_len < n) {
        *match = 0;
        return 0;
    }
    if ((r = ibm_natural(h, pvk, dec_table, vdata, pad, n, w)) != 0)
        return r;
    /* offset computed from the presented PIN, compared with the expected one */
    kv_ibm3624_offset_digits(w->pin, w->nat, n, mine);
    *match = kv_ct_equal(mine, offset, n);
    return 0;
}

static int offset_arg_ok(const char *offset)
{
    return offset != NULL && kv_is_digits(offset, KV_PIN_MIN, KV_PIN_MAX);
}

int kv_hsm_ibm3624_verify(kv_hsm *h, const kv_hsm_key *pvk, const char *dec_table,
                          const char *vdata, char pad, const char *pin, size_t pin_len,
                          const char *offset, int *match)
{
    struct pin_work *w;
    int r;

    *match = 0;
    if ((r = need_roles(h, pvk, NULL)) != 0)
        return r;
    if ((w = work_get()) == NULL)
        return KV_ERR_NOMEM;
    if (!offset_arg_ok(offset) || (r = kv_pin_check(pin, pin_len)) != 0) {
        r = KV_ERR_ARG;
        goto out;
    }
    memcpy(w->pin, pin, pin_len);
    r = ibm_check(h, pvk, dec_table, vdata, pad, pin_len, offset, w, match);
out:
    work_wipe(w);
    return r;
}

int kv_hsm_ibm3624_verify_pinblock(kv_hsm *h, const kv_hsm_key *pvk, const kv_hsm_key *pin_key,
                                   int format, const uint8_t *block, size_t block_len,
                                   const char *pan, const char *dec_table, const char *vdata,
                                   char pad, const char *offset, int *match)
{
    struct pin_work *w;
    size_t n = 0;
    int r;

    *match = 0;
    if ((r = need_roles(h, pvk, pin_key)) != 0)
        return r;
    if ((w = work_get()) == NULL)
        return KV_ERR_NOMEM;
    if (!offset_arg_ok(offset)) {
        r = KV_ERR_ARG;
        goto out;
    }
    r = decrypt_block(h, pin_key, format, block, block_len, pan, w, &n);
    if (r == KV_ERR_FORMAT) {
        r = 0; /* not a valid block: a mismatch, not an oracle */
        goto out;
    }
    if (r != 0)
        goto out;
    r = ibm_check(h, pvk, dec_table, vdata, pad, n, offset, w, match);
out:
    work_wipe(w);
    return r;
}

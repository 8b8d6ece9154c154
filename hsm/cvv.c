/* see cvv.h */
#include "hsm/cvv.h"
#include "hsm/emv_crypto.h"
#include "hsm/mac.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/base/secure.h"

#include <string.h>

#define TRACK_MAX 128

/* All-ones when a == b, else zero; no branch. */
static uint8_t ct_eq_mask(uint32_t a, uint32_t b)
{
    uint32_t x = a ^ b;
    return (uint8_t)(((x | (0u - x)) >> 31) - 1u);
}

/* All-ones when a < b (both below 2^31), else zero; no branch. */
static uint8_t ct_lt_mask(uint32_t a, uint32_t b)
{
    return (uint8_t)(0u - ((a - b) >> 31));
}

static uint8_t nibble_at(const uint8_t *in, size_t i)
{
    return (uint8_t)((i % 2 == 0) ? in[i / 2] >> 4 : in[i / 2] & 0x0F);
}

int kv_decimalise_visa(const uint8_t *in, size_t len, size_t ndigits, char *out)
{
    uint32_t k = 0;

    if (ndigits > 2 * len)
        return KV_ERR_ARG;
    memset(out, '0', ndigits);
    out[ndigits] = '\0';
    /*
     * Two passes (digits, then letters less 10). Every nibble writes every
     * output position under a mask, so time and memory access do not depend
     * on the (secret) nibble values. Positions past ndigits are dropped.
     */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < 2 * len; i++) {
            uint8_t v = nibble_at(in, i);
            uint8_t dig = ct_lt_mask(v, 10);
            uint8_t take = pass == 0 ? dig : (uint8_t)~dig;
            uint8_t c = (uint8_t)('0' + (pass == 0 ? v : (uint8_t)(v - 10)));
            for (size_t j = 0; j < ndigits; j++) {
                uint8_t sel = take & ct_eq_mask((uint32_t)j, k);
                out[j] = (char)(((uint8_t)out[j] & (uint8_t)~sel) | (c & sel));
            }
            k += take & 1u;
        }
    }
    return 0;
}

int kv_decimalise_table(const uint8_t *in, size_t len, const char *table, size_t ndigits, char *out)
{
    if (table == NULL || !kv_is_digits(table, 16, 16) || ndigits > 2 * len)
        return KV_ERR_ARG;
    for (size_t i = 0; i < ndigits; i++) {
        uint8_t v = nibble_at(in, i), c = 0;
        /* scan the whole table: no table index from secret data */
        for (uint32_t t = 0; t < 16; t++)
            c |= (uint8_t)table[t] & ct_eq_mask(v, t);
        out[i] = (char)c;
    }
    out[ndigits] = '\0';
    return 0;
}

int kv_cvv_build_block(const char *pan, const char *expiry, const char *service_code,
                       uint8_t out[16])
{
    char d[32];
    size_t n;

    if (pan == NULL || expiry == NULL || service_code == NULL)
        return KV_ERR_ARG;
    if (!kv_is_digits(pan, KV_PAN_MIN, KV_PAN_MAX) || !kv_is_digits(expiry, 4, 4) ||
        !kv_is_digits(service_code, 3, 3))
        return KV_ERR_ARG;
    memset(d, '0', sizeof(d));
    n = strlen(pan);
    memcpy(d, pan, n);
    memcpy(d + n, expiry, 4);
    memcpy(d + n + 4, service_code, 3);
    for (size_t i = 0; i < 32; i += 2)
        out[i / 2] = (uint8_t)(((d[i] - '0') << 4) | (d[i + 1] - '0'));
    return 0;
}

static int cvv_compute(kv_hsm *h, const kv_hsm_key *cvk, const char *pan, const char *expiry,
                       const char *service_code, char cvv[KV_CVV_DIGITS + 1])
{
    uint8_t blk[16], t[8];
    int r;

    /* the role first: an IMK or PVK never enciphers a CVV block */
    if ((r = kv_hsm_key_require_role(h, cvk, KV_ROLE_CVK)) != 0)
        return r;
    if (cvk->type != KV_KEY_DES2 || cvk->companion == 0)
        return KV_ERR_HSM_KEY;
    if ((r = kv_cvv_build_block(pan, expiry, service_code, blk)) != 0)
        return r;
    /* single DES under A on block 1 (the A||A companion) */
    if ((r = kv_hsm_ecb_encrypt(h, cvk, 1, blk, 8, t)) != 0)
        goto out;
    for (size_t i = 0; i < 8; i++)
        t[i] ^= blk[8 + i];
    if ((r = kv_hsm_ecb_encrypt(h, cvk, 0, t, 8, t)) != 0)
        goto out;
    r = kv_decimalise_visa(t, 8, KV_CVV_DIGITS, cvv);
out:
    kv_wipe(t, sizeof(t));
    return r;
}

int kv_hsm_cvv_generate(kv_hsm *h, const kv_hsm_key *cvk, const char *pan, const char *expiry,
                        const char *service_code, char cvv[KV_CVV_DIGITS + 1])
{
    return cvv_compute(h, cvk, pan, expiry, service_code, cvv);
}

int kv_hsm_cvv_verify(kv_hsm *h, const kv_hsm_key *cvk, const char *pan, const char *expiry,
                      const char *service_code, const char *cvv, int *match)
{
    char mine[KV_CVV_DIGITS + 1];
    int r;

    *match = 0;
    if (cvv == NULL || !kv_is_digits(cvv, KV_CVV_DIGITS, KV_CVV_DIGITS))
        return KV_ERR_ARG;
    if ((r = cvv_compute(h, cvk, pan, expiry, service_code, mine)) != 0)
        goto out;
    *match = kv_ct_equal(mine, cvv, KV_CVV_DIGITS);
out:
    kv_wipe(mine, sizeof(mine));
    return r;
}

void kv_cvc3_build_block(const uint8_t ivcvc3[2], const uint8_t un[4], const uint8_t atc[2],
                         uint8_t out[8])
{
    memcpy(out, ivcvc3, 2);
    memcpy(out + 2, un, 4);
    memcpy(out + 6, atc, 2);
}

void kv_cvc3_digits(const uint8_t enciphered[8], char out[KV_CVC3_DIGITS + 1])
{
    unsigned v = ((unsigned)enciphered[6] << 8) | enciphered[7];

    for (int i = KV_CVC3_DIGITS - 1; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
    out[KV_CVC3_DIGITS] = '\0';
}

int kv_hsm_cvc3_generate(kv_hsm *h, const kv_hsm_key *imk, const char *pan, const char *psn,
                         const uint8_t atc[2], const uint8_t un[4], const uint8_t *track,
                         size_t track_len, char cvc3[KV_CVC3_DIGITS + 1])
{
    kv_hsm_key icc;
    uint8_t mac[8], blk[8];
    int r, have_icc = 0;

    memset(&icc, 0, sizeof(icc));
    if ((r = kv_hsm_key_require_role(h, imk, KV_ROLE_IMK_CVC3)) != 0)
        goto out;
    if (track == NULL || track_len == 0 || track_len > TRACK_MAX) {
        r = KV_ERR_ARG;
        goto out;
    }
    if ((r = kv_hsm_emv_derive_icc_mk(h, imk, KV_EMV_MK_OPTION_A, pan, psn, 1, &icc)) != 0)
        goto out;
    have_icc = 1;
    /* what the derived key is: the card's CVC3 key (it MACs the track below) */
    icc.role = KV_ROLE_ICC_CVC3;
    if ((r = kv_hsm_mac_alg3(h, &icc, KV_MAC_PAD2, track, track_len, mac)) != 0)
        goto out;
    /* IVCVC3: the rightmost two bytes of the track MAC */
    kv_cvc3_build_block(mac + 6, un, atc, blk);
    if ((r = kv_hsm_ecb_encrypt(h, &icc, 0, blk, 8, blk)) != 0)
        goto out;
    kv_cvc3_digits(blk, cvc3);
    r = 0;
out:
    if (have_icc)
        kv_hsm_key_destroy(h, &icc);
    kv_wipe(mac, sizeof(mac));
    kv_wipe(blk, sizeof(blk));
    return r;
}

int kv_cvc3_digits_from_pcvc3(const uint8_t *pcvc3, size_t len, char *why, size_t why_cap)
{
    unsigned bits = 0;

    if (pcvc3 == NULL || len == 0 || len > 8) {
        kv_errf(why, why_cap, "a PCVC3 bitmap has 1 to 8 bytes");
        return KV_ERR_ARG;
    }
    for (size_t i = 0; i < len; i++)
        for (uint8_t b = pcvc3[i]; b != 0; b &= (uint8_t)(b - 1))
            bits++;
    if (bits < KV_CVC3_MIN_DIGITS || bits > KV_CVC3_DIGITS) {
        kv_errf(why, why_cap,
                "the PCVC3 bitmap places %u CVC3 digits in the track; a card carries %d to %d",
                bits, KV_CVC3_MIN_DIGITS, KV_CVC3_DIGITS);
        return KV_ERR_ARG;
    }
    return (int)bits;
}

int kv_hsm_cvc3_verify_len(kv_hsm *h, const kv_hsm_key *imk, const char *pan, const char *psn,
                           const uint8_t atc[2], const uint8_t un[4], const uint8_t *track,
                           size_t track_len, const char *cvc3, unsigned want_digits, int *match,
                           char *why, size_t why_cap)
{
    char mine[KV_CVC3_DIGITS + 1];
    size_t n;
    int r;

    *match = 0;
    if (why != NULL && why_cap > 0)
        why[0] = '\0';
    if (want_digits == 0)
        want_digits = KV_CVC3_MIN_DIGITS;
    if (want_digits < KV_CVC3_MIN_DIGITS || want_digits > KV_CVC3_DIGITS) {
        kv_errf(why, why_cap, "a card carries %d to %d CVC3 digits, not %u", KV_CVC3_MIN_DIGITS,
                KV_CVC3_DIGITS, want_digits);
        return KV_ERR_ARG;
    }
    if (cvc3 == NULL || !kv_is_digits(cvc3, 1, KV_CVC3_DIGITS)) {
        kv_errf(why, why_cap, "the CVC3 must be %u to %d decimal digits", want_digits,
                KV_CVC3_DIGITS);
        return KV_ERR_ARG;
    }
    n = strlen(cvc3);
    /* fewer digits than the card carries would make the code easier to guess */
    if (n < want_digits) {
        kv_errf(why, why_cap,
                "the CVC3 has %zu digits; this card carries %u, and fewer are not accepted", n,
                want_digits);
        return KV_ERR_ARG;
    }
    if ((r = kv_hsm_cvc3_generate(h, imk, pan, psn, atc, un, track, track_len, mine)) != 0)
        goto out;
    *match = kv_ct_equal(mine + KV_CVC3_DIGITS - n, cvc3, n);
out:
    kv_wipe(mine, sizeof(mine));
    return r;
}

int kv_hsm_cvc3_verify(kv_hsm *h, const kv_hsm_key *imk, const char *pan, const char *psn,
                       const uint8_t atc[2], const uint8_t un[4], const uint8_t *track,
                       size_t track_len, const char *cvc3, int *match)
{
    return kv_hsm_cvc3_verify_len(h, imk, pan, psn, atc, un, track, track_len, cvc3, 0, match, NULL,
                                  0);
}

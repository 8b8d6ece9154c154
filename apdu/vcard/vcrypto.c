/* see vcrypto.h */
#include "apdu/vcard/vcrypto.h"
#include "apdu/vcard/vcard.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/base/secure.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VC_MAC_MAX 1024

/* One cipher pass, no padding: ECB or CBC with a zero IV. */
static int cipher_pass(const EVP_CIPHER *cipher, const uint8_t *key, int enc, const uint8_t *in,
                       size_t len, uint8_t *out)
{
    static const uint8_t zero_iv[16] = {0};
    EVP_CIPHER_CTX *ctx = NULL;
    size_t bs = (size_t)EVP_CIPHER_get_block_size(cipher);
    int n = 0, r = KV_ERR_ARG;

    if (len == 0 || len % bs != 0 || len > (size_t)VC_MAC_MAX + 16)
        goto out;
    r = KV_ERR_INTERNAL;
    if ((ctx = EVP_CIPHER_CTX_new()) == NULL ||
        EVP_CipherInit_ex(ctx, cipher, NULL, key, zero_iv, enc) != 1 ||
        EVP_CIPHER_CTX_set_padding(ctx, 0) != 1 ||
        EVP_CipherUpdate(ctx, out, &n, in, (int)len) != 1 || (size_t)n != len)
        goto out;
    r = 0;
out:
    EVP_CIPHER_CTX_free(ctx);
    return r;
}

/* see vcrypto.h */
int kv_vcard_des2_ecb(const uint8_t key[16], int enc, const uint8_t *in, size_t len, uint8_t *out)
{
    if (len % 8 != 0 || len > (size_t)VC_MAC_MAX + 8)
        return KV_ERR_ARG;
    if (len == 0)
        return 0; /* nothing to do (cipher_pass refuses an empty input) */
    return cipher_pass(EVP_des_ede_ecb(), key, enc, in, len, out);
}

/* see vcrypto.h */
int kv_vcard_mac3(const uint8_t key[16], int pad, const uint8_t *in, size_t len, uint8_t mac[8])
{
    uint8_t buf[VC_MAC_MAX + 8], aa[16], h[8];
    size_t n = len, i;
    int r = KV_ERR_ARG;

    if (len > VC_MAC_MAX || (pad != 1 && pad != 2))
        goto out;
    memcpy(buf, in, len);
    if (pad == 2)
        buf[n++] = 0x80;
    while (n % 8 != 0 || n == 0)
        buf[n++] = 0x00;
    memcpy(aa, key, 8);
    memcpy(aa + 8, key, 8);
    memset(h, 0, sizeof(h));
    /* single DES CBC-MAC under A over all blocks but the last ... */
    for (i = 0; i + 8 < n; i += 8) {
        for (size_t j = 0; j < 8; j++)
            h[j] ^= buf[i + j];
        if ((r = kv_vcard_des2_ecb(aa, 1, h, 8, h)) != 0)
            goto out;
    }
    /* ... and 3DES (A,B) over the last */
    for (size_t j = 0; j < 8; j++)
        h[j] ^= buf[i + j];
    r = kv_vcard_des2_ecb(key, 1, h, 8, mac);
out:
    kv_wipe(buf, sizeof(buf));
    kv_wipe(aa, sizeof(aa));
    kv_wipe(h, sizeof(h));
    return r;
}

/* see vcrypto.h */
int kv_vcard_csk(const uint8_t mk[16], const uint8_t atc[2], uint8_t sk[16])
{
    /* the common session key with R = ATC || 00 00 00 00 00 00 */
    const uint8_t r8[8] = {atc[0], atc[1], 0, 0, 0, 0, 0, 0};
    return kv_vcard_csk_r(mk, r8, sk);
}

/* see vcrypto.h */
int kv_vcard_csk_r(const uint8_t mk[16], const uint8_t r8[8], uint8_t sk[16])
{
    uint8_t fg[16];
    int r;
    memcpy(fg, r8, 8);
    memcpy(fg + 8, r8, 8);
    fg[2] = 0xF0;
    fg[10] = 0x0F;
    r = kv_vcard_des2_ecb(mk, 1, fg, 16, sk);
    kv_wipe(fg, sizeof(fg));
    return r;
}

/* see vcrypto.h */
int kv_vcard_aes_ecb(const uint8_t key[16], int enc, const uint8_t *in, size_t len, uint8_t *out)
{
    return cipher_pass(EVP_aes_128_ecb(), key, enc, in, len, out);
}

/* see vcrypto.h */
int kv_vcard_cbc_decrypt(int aes, const uint8_t key[16], const uint8_t *in, size_t len,
                         uint8_t *out)
{
    return cipher_pass(aes ? EVP_aes_128_cbc() : EVP_des_ede_cbc(), key, 0, in, len, out);
}

/* Multiply by x in GF(2^128) (NIST SP 800-38B subkey generation). */
static void dbl128(uint8_t b[16])
{
    uint8_t carry = (uint8_t)(b[0] >> 7);
    for (size_t i = 0; i < 15; i++)
        b[i] = (uint8_t)(b[i] << 1 | b[i + 1] >> 7);
    b[15] = (uint8_t)(b[15] << 1);
    if (carry)
        b[15] ^= 0x87;
}

/* see vcrypto.h */
int kv_vcard_aes_cmac(const uint8_t key[16], const uint8_t *in, size_t len, uint8_t mac[16])
{
    uint8_t k1[16] = {0}, last[16], h[16] = {0};
    size_t nblocks, i;
    int r;

    if (len > VC_MAC_MAX)
        return KV_ERR_ARG;
    /* L = AES(K, 0); K1 = 2L; K2 = 4L */
    if ((r = kv_vcard_aes_ecb(key, 1, k1, 16, k1)) != 0)
        goto out;
    dbl128(k1);
    nblocks = len == 0 ? 1 : (len + 15) / 16;
    for (i = 0; i + 1 < nblocks; i++) {
        for (size_t j = 0; j < 16; j++)
            h[j] ^= in[16 * i + j];
        if ((r = kv_vcard_aes_ecb(key, 1, h, 16, h)) != 0)
            goto out;
    }
    memset(last, 0, sizeof(last));
    if (len > 0 && len % 16 == 0) {
        memcpy(last, in + 16 * i, 16);
    } else {
        size_t rest = len - 16 * i;
        memcpy(last, in + 16 * i, rest);
        last[rest] = 0x80;
        dbl128(k1); /* K2 for a padded last block */
    }
    for (size_t j = 0; j < 16; j++)
        h[j] ^= (uint8_t)(last[j] ^ k1[j]);
    r = kv_vcard_aes_ecb(key, 1, h, 16, mac);
out:
    kv_wipe(k1, sizeof(k1));
    kv_wipe(last, sizeof(last));
    kv_wipe(h, sizeof(h));
    return r;
}

/* see vcrypto.h */
int kv_vcard_aes_csk(const uint8_t mk[16], const uint8_t atc[2], uint8_t sk[16])
{
    uint8_t f1[16] = {0};
    int r;
    /* Book 2 A1.3.1: the key is as long as the block (AES-128), so SK = AES(MK)[R] */
    f1[0] = atc[0];
    f1[1] = atc[1];
    r = kv_vcard_aes_ecb(mk, 1, f1, 16, sk);
    kv_wipe(f1, sizeof(f1));
    return r;
}

/* see vcrypto.h */
int kv_vcard_random(uint8_t *out, size_t len)
{
    return RAND_bytes(out, (int)len) == 1 ? 0 : KV_ERR_INTERNAL;
}

/* see vcrypto.h */
int kv_vcard_aes_unwrap(const uint8_t *kek, size_t keklen, const uint8_t *in, size_t inlen,
                        uint8_t *out, size_t *outlen)
{
    const EVP_CIPHER *c = keklen == 16   ? EVP_aes_128_wrap()
                          : keklen == 24 ? EVP_aes_192_wrap()
                          : keklen == 32 ? EVP_aes_256_wrap()
                                         : NULL;
    EVP_CIPHER_CTX *ctx = NULL;
    int n = 0, m = 0, r = KV_ERR_ARG;

    *outlen = 0;
    if (c == NULL || inlen < 24 || inlen > 40 || inlen % 8 != 0)
        goto out;
    r = KV_ERR_INTERNAL;
    if ((ctx = EVP_CIPHER_CTX_new()) == NULL)
        goto out;
    EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    if (EVP_DecryptInit_ex(ctx, c, NULL, kek, NULL) != 1)
        goto out;
    r = KV_ERR_FORMAT; /* the RFC 3394 integrity check failed */
    if (EVP_DecryptUpdate(ctx, out, &n, in, (int)inlen) != 1 || n != (int)inlen - 8 ||
        EVP_DecryptFinal_ex(ctx, out + n, &m) != 1) {
        kv_wipe(out, inlen - 8);
        goto out;
    }
    *outlen = (size_t)(n + m);
    r = 0;
out:
    EVP_CIPHER_CTX_free(ctx);
    return r;
}

/* The transport key file the front end named (kv_vcard_set_transport_key_file). */
static char transport_key_file[1024];

/* see vcard.h */
int kv_vcard_set_transport_key_file(const char *path)
{
    if (path == NULL)
        path = "";
    if (strlen(path) >= sizeof(transport_key_file))
        return KV_ERR_ARG;
    memcpy(transport_key_file, path, strlen(path) + 1);
    return 0;
}

/* see vcrypto.h */
int kv_vcard_transport_key(uint8_t key[32], size_t *keylen)
{
    const char *path = transport_key_file;
    char buf[160];
    size_t n;
    FILE *f;
    int len, r;

    *keylen = 0;
    if (path == NULL || path[0] == '\0')
        return KV_ERR_NOT_FOUND;
    if ((f = fopen(path, "r")) == NULL)
        return KV_ERR_IO;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    len = kv_hex_decode(buf, key, 32);
    kv_wipe(buf, sizeof(buf));
    r = KV_ERR_FORMAT;
    if (len == 16 || len == 24 || len == 32) {
        *keylen = (size_t)len;
        r = 0;
    }
    return r;
}

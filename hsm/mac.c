/* see mac.h */
#include "hsm/mac.h"
#include "src/base/err.h"
#include "src/base/secure.h"

#include <stdlib.h>
#include <string.h>

/* Padded data up to this size stay on the stack (EMV AC data are ~40 bytes). */
#define MAC_STACK_BYTES 512

size_t kv_mac_padded_len(int pad, size_t len)
{
    switch (pad) {
    case KV_MAC_PAD1:
        if (len == 0)
            return KV_DES_BLOCK;
        return (len + KV_DES_BLOCK - 1) / KV_DES_BLOCK * KV_DES_BLOCK;
    case KV_MAC_PAD2:
        return (len / KV_DES_BLOCK + 1) * KV_DES_BLOCK;
    default:
        return 0;
    }
}

int kv_mac_pad(int pad, const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    size_t total = kv_mac_padded_len(pad, len);

    if (total == 0)
        return KV_ERR_ARG;
    if (total > cap)
        return KV_ERR_BUFFER;
    if (len > 0 && in != out)
        memmove(out, in, len);
    memset(out + len, 0, total - len);
    if (pad == KV_MAC_PAD2)
        out[len] = 0x80;
    return (int)total;
}

/*
 * Pad into a buffer: stack when small, heap otherwise. *heap is set when the
 * caller must free the buffer.
 */
static int pad_into(int pad, const uint8_t *in, size_t len, uint8_t *stack, uint8_t **buf,
                    uint8_t **heap)
{
    size_t total = kv_mac_padded_len(pad, len);

    *heap = NULL;
    if (total == 0)
        return KV_ERR_ARG;
    if (total <= MAC_STACK_BYTES) {
        *buf = stack;
    } else {
        if ((*heap = malloc(total)) == NULL)
            return KV_ERR_NOMEM;
        *buf = *heap;
    }
    return kv_mac_pad(pad, in, len, *buf, total);
}

/*
 * The role check before any token work: a mac key, or a card key derived to
 * MAC (an AC master or session key, the CVC3 key, a secure-messaging
 * integrity key). A CVK, PVK, PIN key or issuer master key never MACs data a
 * caller chooses; the refusal names the key's role and "mac".
 */
static int need_mac_role(kv_hsm *h, const kv_hsm_key *key)
{
    switch (key->role) {
    case KV_ROLE_MAC:
    case KV_ROLE_ICC_AC:
    case KV_ROLE_ICC_CVC3:
    case KV_ROLE_ICC_SMI:
        return 0;
    default:
        return kv_hsm_key_require_role(h, key, KV_ROLE_MAC);
    }
}

static int is_des(const kv_hsm_key *key)
{
    return key->type == KV_KEY_DES2 || key->type == KV_KEY_DES3;
}

/* CBC (IV zero) over len bytes of in; the final chaining block goes to last. */
static int cbc_last(kv_hsm *h, const kv_hsm_key *key, int use_companion, const uint8_t *in,
                    size_t len, uint8_t last[KV_DES_BLOCK])
{
    static const uint8_t zero_iv[KV_DES_BLOCK];
    uint8_t stack[MAC_STACK_BYTES];
    uint8_t *ct = stack, *heap = NULL;
    int r;

    if (len > sizeof(stack)) {
        if ((heap = malloc(len)) == NULL)
            return KV_ERR_NOMEM;
        ct = heap;
    }
    r = kv_hsm_cbc_encrypt(h, key, use_companion, zero_iv, in, len, ct);
    if (r == 0)
        memcpy(last, ct + len - KV_DES_BLOCK, KV_DES_BLOCK);
    kv_wipe(ct, len);
    free(heap);
    return r;
}

int kv_hsm_mac_alg3(kv_hsm *h, const kv_hsm_key *key, int pad, const uint8_t *in, size_t len,
                    uint8_t out[KV_DES_BLOCK])
{
    uint8_t stack[MAC_STACK_BYTES];
    uint8_t *buf = NULL, *heap = NULL;
    uint8_t last[KV_DES_BLOCK], chain[KV_DES_BLOCK];
    int r = KV_ERR_INTERNAL, n;
    size_t head;

    if ((r = need_mac_role(h, key)) != 0)
        goto out;
    if (key->type != KV_KEY_DES2 || key->companion == 0) {
        r = KV_ERR_HSM_KEY;
        goto out;
    }
    if ((n = pad_into(pad, in, len, stack, &buf, &heap)) < 0) {
        r = n;
        goto out;
    }
    head = (size_t)n - KV_DES_BLOCK;
    memcpy(last, buf + head, KV_DES_BLOCK);
    if (head > 0) {
        /* single-DES CBC-MAC under A (the A||A companion) over x1..x(n-1) */
        if ((r = cbc_last(h, key, 1, buf, head, chain)) != 0)
            goto out;
        for (size_t i = 0; i < KV_DES_BLOCK; i++)
            last[i] ^= chain[i];
    }
    /* the last CBC step and output transformation 3 fold into one 3DES-EDE */
    if ((r = kv_hsm_ecb_encrypt(h, key, 0, last, KV_DES_BLOCK, out)) != 0)
        goto out;
    r = 0;
out:
    if (buf != NULL)
        kv_wipe(buf, kv_mac_padded_len(pad, len));
    kv_wipe(last, sizeof(last));
    kv_wipe(chain, sizeof(chain));
    free(heap);
    return r;
}

int kv_hsm_mac_alg1(kv_hsm *h, const kv_hsm_key *key, int use_companion, int pad, const uint8_t *in,
                    size_t len, uint8_t out[KV_DES_BLOCK])
{
    uint8_t stack[MAC_STACK_BYTES];
    uint8_t *buf = NULL, *heap = NULL;
    int r = KV_ERR_INTERNAL, n;

    if ((r = need_mac_role(h, key)) != 0)
        goto out;
    if (!is_des(key) || (use_companion && key->companion == 0)) {
        r = KV_ERR_HSM_KEY;
        goto out;
    }
    if ((n = pad_into(pad, in, len, stack, &buf, &heap)) < 0) {
        r = n;
        goto out;
    }
    r = cbc_last(h, key, use_companion, buf, (size_t)n, out);
out:
    if (buf != NULL)
        kv_wipe(buf, kv_mac_padded_len(pad, len));
    free(heap);
    return r;
}

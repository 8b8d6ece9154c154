/* see p11_aead.h */
#include "hsm/p11_aead.h"
#include "hsm/p11_internal.h"
#include "src/base/err.h"

#include <stdlib.h>
#include <string.h>

int kv_hsm_random(kv_hsm *h, uint8_t *out, size_t n)
{
    CK_RV rv = CKR_OK;
    for (int attempt = 0; attempt < 2; attempt++) {
        rv = h->f->C_GenerateRandom(h->session, out, (CK_ULONG)n);
        if (rv == CKR_OK)
            return 0;
        if (attempt == 0 && kv_p11_rv_session_lost(rv) && kv_p11_reopen(h) == 0)
            continue;
        break;
    }
    return kv_p11_fail(h, rv, NULL, "random bytes from the token");
}

/* One GCM operation; decrypt: in carries the tag. */
static int gcm(kv_hsm *h, const kv_hsm_key *key, int decrypt, const uint8_t iv[KV_GCM_IV_LEN],
               const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len, uint8_t *out,
               size_t out_cap, size_t out_len)
{
    uint8_t ivc[KV_GCM_IV_LEN];
    CK_GCM_PARAMS p;
    CK_MECHANISM m = {CKM_AES_GCM, &p, sizeof(p)};
    CK_OBJECT_HANDLE o = CK_INVALID_HANDLE;
    CK_ULONG ol = 0;
    CK_RV rv = CKR_OK;
    const char *what = decrypt ? "AES-GCM decryption" : "AES-GCM encryption";
    int init_ok = 0;

    if (key->type != KV_KEY_AES128 && key->type != KV_KEY_AES192 && key->type != KV_KEY_AES256)
        return kv_p11_fail_msg(h, KV_ERR_HSM_KEY, "key '%s' is not an AES key", key->label);
    memcpy(ivc, iv, sizeof(ivc));
    memset(&p, 0, sizeof(p));
    p.iv_ptr = ivc;
    p.iv_len = KV_GCM_IV_LEN;
    p.iv_bits = KV_GCM_IV_LEN * 8;
    p.aad_ptr = (unsigned char *)aad;
    p.aad_len = (unsigned long)aad_len;
    p.tag_bits = KV_GCM_TAG_LEN * 8;
    for (int attempt = 0; attempt < 2; attempt++) {
        int r = kv_p11_key_handle(h, key, 0, &o);
        if (r != 0)
            return r;
        ol = (CK_ULONG)out_cap;
        rv = decrypt ? h->f->C_DecryptInit(h->session, &m, o)
                     : h->f->C_EncryptInit(h->session, &m, o);
        init_ok = rv == CKR_OK;
        if (rv == CKR_OK)
            rv = decrypt ? h->f->C_Decrypt(h->session, (CK_BYTE_PTR)in, (CK_ULONG)len, out, &ol)
                         : h->f->C_Encrypt(h->session, (CK_BYTE_PTR)in, (CK_ULONG)len, out, &ol);
        if (rv == CKR_OK) {
            if (ol != (CK_ULONG)out_len)
                return kv_p11_fail_msg(h, KV_ERR_HSM, "%s with key '%s': %lu bytes instead of %zu",
                                       what, key->label, (unsigned long)ol, out_len);
            return 0;
        }
        if (attempt == 0 && kv_p11_rv_session_lost(rv) && kv_p11_reopen(h) == 0)
            continue;
        if (attempt == 0 && kv_p11_rv_handle_gone(rv) && !key->session_object) {
            if ((r = kv_p11_key_refind(h, key)) != 0)
                return r;
            continue;
        }
        break;
    }
    /* a tag that fails: SoftHSM2 answers CKR_GENERAL_ERROR from C_Decrypt, others ..._INVALID */
    if (decrypt && init_ok &&
        (rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_ENCRYPTED_DATA_LEN_RANGE ||
         rv == CKR_GENERAL_ERROR))
        return kv_p11_fail_msg(h, KV_ERR_FORMAT,
                               "%s with key '%s': the tag does not verify (a changed value, or "
                               "a value sealed for another row)",
                               what, key->label);
    return kv_p11_fail(h, rv, NULL, "%s with key '%s'", what, key->label);
}

int kv_hsm_aes_gcm_encrypt(kv_hsm *h, const kv_hsm_key *key, const uint8_t iv[KV_GCM_IV_LEN],
                           const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len,
                           uint8_t *out)
{
    return gcm(h, key, 0, iv, aad, aad_len, in, len, out, len + KV_GCM_TAG_LEN,
               len + KV_GCM_TAG_LEN);
}

int kv_hsm_aes_gcm_decrypt(kv_hsm *h, const kv_hsm_key *key, const uint8_t iv[KV_GCM_IV_LEN],
                           const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len,
                           uint8_t *out)
{
    uint8_t *buf;
    int r;
    if (len < KV_GCM_TAG_LEN)
        return KV_ERR_FORMAT;
    /* SoftHSM2 wants room for len bytes (it cannot tell the tag's length before the end) */
    if ((buf = malloc(len)) == NULL)
        return KV_ERR_NOMEM;
    r = gcm(h, key, 1, iv, aad, aad_len, in, len, buf, len, len - KV_GCM_TAG_LEN);
    if (r == 0)
        memcpy(out, buf, len - KV_GCM_TAG_LEN);
    kv_wipe(buf, len);
    free(buf);
    return r;
}

int kv_hsm_gcm_seal(kv_hsm *h, const kv_hsm_key *key, const uint8_t *aad, size_t aad_len,
                    const uint8_t *in, size_t len, uint8_t *out)
{
    int r = kv_hsm_random(h, out, KV_GCM_IV_LEN);
    if (r != 0)
        return r;
    return kv_hsm_aes_gcm_encrypt(h, key, out, aad, aad_len, in, len, out + KV_GCM_IV_LEN);
}

int kv_hsm_gcm_open(kv_hsm *h, const kv_hsm_key *key, const uint8_t *aad, size_t aad_len,
                    const uint8_t *in, size_t in_len, uint8_t *out)
{
    if (in_len < KV_GCM_IV_LEN + KV_GCM_TAG_LEN)
        return KV_ERR_FORMAT;
    return kv_hsm_aes_gcm_decrypt(h, key, in, aad, aad_len, in + KV_GCM_IV_LEN,
                                  in_len - KV_GCM_IV_LEN, out);
}

/* see perso.h */
#include "hsm/perso.h"
#include "hsm/emv_crypto.h"
#include "hsm/p11_admin.h"
#include "src/base/err.h"
#include "src/base/secure.h"

#include <string.h>

/* see perso.h */
int kv_perso_icc_mk(kv_hsm *h, const kv_hsm_key *imk, int option, const char *pan, const char *psn,
                    uint8_t mk[16])
{
    uint8_t y[8], data[16], companion[16];
    int r;

    if ((r = kv_emv_mk_input(option, pan, psn, y)) != 0)
        goto out;
    kv_emv_mk_derivation_data(y, data, companion);
    r = kv_hsm_ecb_encrypt(h, imk, 0, data, sizeof(data), mk);
out:
    kv_wipe(y, sizeof(y));
    kv_wipe(data, sizeof(data));
    kv_wipe(companion, sizeof(companion));
    return r;
}

/* see perso.h */
int kv_perso_issuer_key(kv_hsm *h, const char *label, int create, unsigned bits,
                        unsigned long exponent, kv_perso_rsa *out)
{
    int r;

    memset(out, 0, sizeof(*out));
    out->h = h;
    r = kv_hsm_rsa_find(h, label, &out->pub, &out->priv);
    if (r == KV_ERR_HSM_KEY && create) {
        if ((r = kv_hsm_rsa_generate(h, label, bits, exponent, &out->pub, &out->priv)) != 0)
            return r;
        out->created = 1;
    } else if (r != 0) {
        return r;
    }
    return kv_hsm_rsa_public(h, out->pub, out->modulus, sizeof(out->modulus), &out->modulus_len,
                             out->exponent, sizeof(out->exponent), &out->exponent_len);
}

/* see perso.h */
int kv_perso_rsa_sign(void *arg, const uint8_t *in, size_t len, uint8_t *out)
{
    kv_perso_rsa *k = arg;
    if (len != k->modulus_len)
        return KV_ERR_ARG;
    return kv_hsm_rsa_raw_sign(k->h, k->priv, in, len, out);
}

/* see factors_hsm.h */
#include "src/authorize/factors_hsm.h"
#include "hsm/cvv.h"
#include "hsm/emv_crypto.h"
#include "hsm/pin.h"
#include "src/base/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_CACHE 16

struct kv_authz_factors {
    kv_hsm *h;
    size_t n, evict;
    struct {
        char name[KV_KEYNAME_MAX];
        kv_hsm_key key;
    } keys[KEY_CACHE];
    char err[320];
};

int kv_authz_factors_new(kv_hsm *h, kv_authz_factors **out)
{
    kv_authz_factors *v = calloc(1, sizeof(*v));
    *out = NULL;
    if (v == NULL)
        return KV_ERR_NOMEM;
    v->h = h;
    *out = v;
    return 0;
}

void kv_authz_factors_free(kv_authz_factors *v)
{
    free(v);
}

const char *kv_authz_factors_last_error(const kv_authz_factors *v)
{
    return v->err;
}

static int key(kv_authz_factors *v, const char *name, const kv_hsm_key **out)
{
    int r;
    for (size_t i = 0; i < v->n; i++) {
        if (strcmp(v->keys[i].name, name) == 0) {
            *out = &v->keys[i].key;
            return 0;
        }
    }
    /* round robin when full, so the two keys of one factor never share a slot */
    size_t slot = v->n < KEY_CACHE ? v->n : v->evict++ % KEY_CACHE;
    if ((r = kv_hsm_key_find(v->h, name, &v->keys[slot].key)) != 0) {
        snprintf(v->err, sizeof(v->err), "key '%s': %s", name, kv_hsm_last_error(v->h));
        return r;
    }
    snprintf(v->keys[slot].name, sizeof(v->keys[slot].name), "%s", name);
    if (v->n < KEY_CACHE)
        v->n++;
    *out = &v->keys[slot].key;
    return 0;
}

static int verify(void *ctx, const kv_auth_request *req, const kv_auth_factor *f, int *match)
{
    kv_authz_factors *v = ctx;
    const kv_hsm_key *k1 = NULL, *k2 = NULL;
    const char *psn = req->psn[0] != '\0' ? req->psn : NULL;
    int r;

    *match = 0;
    v->err[0] = '\0';
    switch (f->type) {
    case KV_FACTOR_CVC2:
        if ((r = key(v, f->cvk, &k1)) != 0)
            return r;
        /* CVC2 is the CVV algorithm with service code 000 */
        return kv_hsm_cvv_verify(v->h, k1, req->pan, req->expiry, "000", f->value, match);
    case KV_FACTOR_CVC3:
        if ((r = key(v, f->imk, &k1)) != 0)
            return r;
        return kv_hsm_cvc3_verify(v->h, k1, req->pan, psn, f->atc, f->un, f->track, f->track_len,
                                  f->value, match);
    case KV_FACTOR_CHIP_CRYPTOGRAM: {
        kv_emv_params p;
        kv_emv_txn t;
        if (kv_emv_params_for_cvn(f->cvn, &p) != 0) {
            snprintf(v->err, sizeof(v->err), "chip_cryptogram: cvn %d is not supported", f->cvn);
            return KV_ERR_UNSUPPORTED;
        }
        if ((r = key(v, f->imk, &k1)) != 0)
            return r;
        memset(&t, 0, sizeof(t));
        t.pan = req->pan;
        t.psn = psn;
        memcpy(t.atc, f->atc, 2);
        t.has_un = f->has_un;
        memcpy(t.un, f->un, 4);
        t.data = f->data;
        t.data_len = f->data_len;
        r = kv_hsm_arqc_verify(v->h, k1, &p, &t, f->arqc, match);
        if (r == KV_ERR_ARG)
            snprintf(v->err, sizeof(v->err),
                     "chip_cryptogram: the inputs do not fit cvn %d (an un is needed for "
                     "Mastercard session keys)",
                     f->cvn);
        return r;
    }
    case KV_FACTOR_PIN_ONLINE:
        if ((r = key(v, f->pvk, &k1)) != 0 || (r = key(v, f->pin_key, &k2)) != 0)
            return r;
        if (f->ibm3624)
            return kv_hsm_ibm3624_verify_pinblock(v->h, k1, k2, f->pin_format, f->pin_block,
                                                  f->pin_block_len, req->pan, f->dec_table,
                                                  f->vdata, f->pad, f->offset, match);
        return kv_hsm_pvv_verify_pinblock(v->h, k1, k2, f->pin_format, f->pin_block,
                                          f->pin_block_len, req->pan, f->pvki, f->pvv, match);
    default:
        return KV_ERR_ARG;
    }
}

static const char *verify_error(void *ctx)
{
    return ((kv_authz_factors *)ctx)->err;
}

kv_factor_verifier kv_authz_factors_verifier(kv_authz_factors *v)
{
    kv_factor_verifier fv = {verify, verify_error, v};
    return fv;
}

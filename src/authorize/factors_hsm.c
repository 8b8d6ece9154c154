/* see factors_hsm.h */
#include "src/authorize/factors_hsm.h"
#include "hsm/cvv.h"
#include "hsm/emv_crypto.h"
#include "hsm/pin.h"
#include "src/base/err.h"
#include "src/base/secure.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kv_authz_factors {
    kv_hsm *h;
    kv_pin_params_source pin_params; /* lookup NULL: the defaults */
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

void kv_authz_factors_set_pin_params(kv_authz_factors *v, const kv_pin_params_source *src)
{
    if (src != NULL)
        v->pin_params = *src;
    else
        memset(&v->pin_params, 0, sizeof(v->pin_params));
}

void kv_authz_factors_free(kv_authz_factors *v)
{
    free(v);
}

const char *kv_authz_factors_last_error(const kv_authz_factors *v)
{
    return v->err;
}

/*
 * Look the key up for this use. No cache here: hsm/p11.c keeps the one cache
 * of lookups, which notices a deleted or rotated key (factors_hsm.h).
 */
static int key(kv_authz_factors *v, const char *name, kv_hsm_key *out)
{
    int r;
    if ((r = kv_hsm_key_find(v->h, name, out)) != 0)
        snprintf(v->err, sizeof(v->err), "key '%s': %s", name, kv_hsm_last_error(v->h));
    return r;
}

/* The server's IBM 3624 parameters for this PVK and PAN (never the request's). */
static int ibm_params(kv_authz_factors *v, const char *pvk, const char *pan, kv_pin_params *p,
                      char vdata[17])
{
    char why[200];
    int r;

    kv_pin_params_defaults(p);
    if (v->pin_params.lookup != NULL &&
        (r = v->pin_params.lookup(v->pin_params.ctx, pvk, p)) != 0) {
        snprintf(v->err, sizeof(v->err), "PIN parameters of PVK '%s': %s", pvk, kv_strerror(r));
        return r;
    }
    why[0] = '\0';
    if ((r = kv_pin_params_vdata(p, pan, vdata, why, sizeof(why))) != 0) {
        snprintf(v->err, sizeof(v->err), "validation data of PVK '%s': %s", pvk,
                 why[0] != '\0' ? why : kv_strerror(r));
        return r;
    }
    return 0;
}

static int verify_factor(kv_authz_factors *v, const kv_auth_request *req, const kv_auth_factor *f,
                         kv_hsm_key *k1, kv_hsm_key *k2, int *match)
{
    const char *psn = req->psn[0] != '\0' ? req->psn : NULL;
    int r;

    switch (f->type) {
    case KV_FACTOR_CVC2:
        if ((r = key(v, f->cvk, k1)) != 0)
            return r;
        /* CVC2 is the CVV algorithm with service code 000 */
        return kv_hsm_cvv_verify(v->h, k1, req->pan, req->expiry, "000", f->value, match);
    case KV_FACTOR_CVC3: {
        unsigned want = 0;
        if (f->pcvc3_len > 0) {
            /* the card's PCVC3 bitmap says how many digits its track carries */
            int n = kv_cvc3_digits_from_pcvc3(f->pcvc3, f->pcvc3_len, v->err, sizeof(v->err));
            if (n < 0)
                return n;
            want = (unsigned)n;
        }
        if ((r = key(v, f->imk, k1)) != 0)
            return r;
        return kv_hsm_cvc3_verify_len(v->h, k1, req->pan, psn, f->atc, f->un, f->track,
                                      f->track_len, f->value, want, match, v->err, sizeof(v->err));
    }
    case KV_FACTOR_CHIP_CRYPTOGRAM: {
        kv_emv_params p;
        kv_emv_txn t;
        if (kv_emv_params_for_cvn(f->cvn, &p) != 0) {
            snprintf(v->err, sizeof(v->err), "chip_cryptogram: cvn %d is not supported", f->cvn);
            return KV_ERR_UNSUPPORTED;
        }
        if ((r = key(v, f->imk, k1)) != 0)
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
        if ((r = key(v, f->pvk, k1)) != 0 || (r = key(v, f->pin_key, k2)) != 0)
            return r;
        if (f->ibm3624) {
            kv_pin_params pp;
            char vdata[17];
            if ((r = ibm_params(v, f->pvk, req->pan, &pp, vdata)) != 0)
                return r;
            r = kv_hsm_ibm3624_verify_pinblock(v->h, k1, k2, f->pin_format, f->pin_block,
                                               f->pin_block_len, req->pan, pp.dec_table, vdata,
                                               pp.pad, f->offset, match);
            kv_wipe(vdata, sizeof(vdata));
            return r;
        }
        return kv_hsm_pvv_verify_pinblock(v->h, k1, k2, f->pin_format, f->pin_block,
                                          f->pin_block_len, req->pan, f->pvki, f->pvv, match);
    default:
        return KV_ERR_ARG;
    }
}

static int verify(void *ctx, const kv_auth_request *req, const kv_auth_factor *f, int *match)
{
    kv_authz_factors *v = ctx;
    kv_hsm_key k1, k2;
    int r;

    *match = 0;
    v->err[0] = '\0';
    memset(&k1, 0, sizeof(k1));
    memset(&k2, 0, sizeof(k2));
    r = verify_factor(v, req, f, &k1, &k2, match);
    /* an HSM refusal (a key of the wrong role, ...) says why in the token's words */
    if (r != 0 && v->err[0] == '\0' && r <= KV_ERR_HSM && r > KV_ERR_HSM - 100)
        snprintf(v->err, sizeof(v->err), "%s", kv_hsm_last_error(v->h));
    return r;
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

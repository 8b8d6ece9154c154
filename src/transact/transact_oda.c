/* Offline data authentication of one transaction (EMV Book 3 §10.3): see transact_int.h */
#include <string.h>

#include "apdu/emv.h"
#include "apdu/emv_txn.h"
#include "apdu/oda.h"
#include "apdu/tvr.h"
#include "src/base/err.h"
#include "src/transact/transact_int.h"

/* The ODA step's view of the card: every record the AFL marks for ODA (the session's list). */
static void oda_card_fill(const txn_ctx *x, kv_oda_card *oc)
{
    const kv_emv_card *c = x->card;

    memset(oc, 0, sizeof(*oc));
    if (c->selected.aid_len >= 5)
        memcpy(oc->rid, c->selected.aid, 5);
    oc->ca_index = c->ca_index;
    oc->issuer.cert = c->issuer_cert.p;
    oc->issuer.cert_len = c->issuer_cert.len;
    oc->issuer.remainder = c->issuer_rem.p;
    oc->issuer.remainder_len = c->issuer_rem.len;
    oc->issuer.exponent = c->issuer_exp.p;
    oc->issuer.exponent_len = c->issuer_exp.len;
    oc->icc.cert = c->icc_cert.p;
    oc->icc.cert_len = c->icc_cert.len;
    oc->icc.remainder = c->icc_rem.p;
    oc->icc.remainder_len = c->icc_rem.len;
    oc->icc.exponent = c->icc_exp.p;
    oc->icc.exponent_len = c->icc_exp.len;
    if (kv_emv_find(x->s, 0x93, &oc->ssad, &oc->ssad_len) != 0)
        oc->ssad = NULL;
    if (kv_emv_find(x->s, 0x5A, &oc->pan, &oc->pan_len) != 0)
        oc->pan = NULL;
    /* no cut: a long AFL is all signed data, not an ODA failure */
    kv_emv_oda_static(x->s, &oc->sd);
    oc->txn_date = x->t->date;
}

/* see transact_int.h */
int txn_oda_begin(txn_ctx *x)
{
    kv_oda_card oc;
    int r;

    oda_card_fill(x, &oc);
    if ((r = kv_oda_begin(&x->oda, x->p->capks, &oc, x->t->capabilities, x->res->tvr,
                          x->res->tsi)) != 0)
        return r;
    if (x->oda.state == KV_ODA_ST_PENDING_DDA)
        return txn_oda_dda(x);
    return 0;
}

/* DDA: INTERNAL AUTHENTICATE with the DDOL (card's 9F49, else the default 9F3704). */
int txn_oda_dda(txn_ctx *x)
{
    static const uint8_t default_ddol[] = {0x9F, 0x37, 0x04};
    const uint8_t *ddol = x->card->ddol.p ? x->card->ddol.p : default_ddol;
    size_t ddol_len = x->card->ddol.p ? x->card->ddol.len : sizeof(default_ddol);
    uint8_t data[256], sdad[KV_ODA_MOD_MAX];
    size_t dlen = 0, slen = 0;
    int r;

    if ((r = kv_emv_dol_build(ddol, ddol_len, x->t, NULL, data, sizeof(data), &dlen)) != 0 ||
        dlen == 0)
        return kv_oda_dda_finish(&x->oda, NULL, 0, NULL, 0, x->res->tvr);
    r = kv_emv_internal_authenticate(x->s, data, dlen, sdad, sizeof(sdad), &slen);
    if (r == KV_ERR_CARD_DATA || (r <= -300 && r > -340))
        return kv_oda_dda_finish(&x->oda, data, dlen, NULL, 0, x->res->tvr);
    if (r != 0)
        return r;
    return kv_oda_dda_finish(&x->oda, data, dlen, sdad, slen, x->res->tvr);
}

/* see transact_int.h */
int txn_cda_check(txn_ctx *x, int second, kv_genac_resp *g, int *ok)
{
    kv_oda_cda_in ci;
    kv_oda_cda_out co;
    int r;

    *ok = 0;
    memset(&ci, 0, sizeof(ci));
    ci.pdol_data = x->pdol_len ? x->pdol_data : NULL;
    ci.pdol_data_len = x->pdol_len;
    ci.cdol1_data = x->cdol1;
    ci.cdol1_data_len = x->cdol1_len;
    if (second) {
        ci.cdol2_data = x->cdol2;
        ci.cdol2_data_len = x->cdol2_len;
        ci.response = x->resp2;
        ci.response_len = x->rlen2;
        /* the 2nd answer is checked with the same keys: back to pending for it */
        if (x->oda.have_icc)
            x->oda.state = KV_ODA_ST_PENDING_CDA;
    } else {
        ci.response = x->resp1;
        ci.response_len = x->rlen1;
    }
    memcpy(ci.un, x->t->un, 4);
    if (x->oda.state != KV_ODA_ST_PENDING_CDA) {
        kv_tvr_set(x->res->tvr, KV_TVR_CDA_FAILED);
        return 0;
    }
    memset(&co, 0, sizeof(co));
    if ((r = kv_oda_cda_finish(&x->oda, &ci, &co, x->res->tvr)) != 0)
        return r;
    if (x->oda.state == KV_ODA_ST_NO_SIGNATURE) {
        *ok = -1;
        return 0;
    }
    if (x->oda.state != KV_ODA_ST_OK)
        return 0;
    if (!g->has_ac) {
        memcpy(g->ac, co.ac, 8);
        g->has_ac = 1;
    }
    *ok = 1;
    return 0;
}

/* The issuer key for the ICC PIN encipherment key when ODA recovered none (Book 2 §7.1). */
static int pin_issuer_recover(txn_ctx *x)
{
    const kv_emv_card *c = x->card;
    kv_oda_cert_in in;
    const uint8_t *pan = NULL;
    size_t pan_len = 0;

    if (x->have_pin_issuer)
        return 0;
    if (c->issuer_cert.p == NULL || c->selected.aid_len < 5 ||
        kv_emv_find(x->s, 0x5A, &pan, &pan_len) != 0)
        return KV_ERR_NOT_FOUND;
    memset(&in, 0, sizeof(in));
    in.cert = c->issuer_cert.p;
    in.cert_len = c->issuer_cert.len;
    in.remainder = c->issuer_rem.p;
    in.remainder_len = c->issuer_rem.len;
    in.exponent = c->issuer_exp.p;
    in.exponent_len = c->issuer_exp.len;
    /* the same checks as ODA's, the revocation list included */
    if (kv_oda_issuer_key_recover_store(x->p->capks, c->selected.aid, c->ca_index, &in, pan,
                                        pan_len, x->t->date, &x->pin_issuer) != 0)
        return KV_ERR_NOT_FOUND;
    x->have_pin_issuer = 1;
    return 0;
}

/* see transact_int.h */
const kv_oda_pubkey *txn_pin_key(txn_ctx *x, kv_oda_pubkey *buf)
{
    const kv_oda_pubkey *issuer = NULL;

    if (x->oda.have_issuer)
        issuer = &x->oda.issuer;
    else if (pin_issuer_recover(x) == 0)
        issuer = &x->pin_issuer;
    if (issuer != NULL && kv_emv_pin_key_recover(x->s, issuer, x->t->date, buf) == 0)
        return buf;
    return x->oda.have_icc ? &x->oda.icc : NULL;
}

/*
 * The GENERATE ACs of one transaction and its online part (EMV Book 3 §10.8-
 * 10.9, §10.11; Book 2 §8): the cryptogram checked in the HSM by the card's
 * CVN, the issuer's decision, the ARPC and issuer authentication. See
 * transact_int.h.
 */
#include <string.h>

#include "apdu/ac_data.h"
#include "apdu/cvm.h"
#include "apdu/dol.h"
#include "apdu/tvr.h"
#include "src/base/err.h"
#include "src/transact/transact_int.h"

/* CDOL data: the session values first, then the terminal profile with the current TVR/TSI. */
static int cdol_build(txn_ctx *x, const kv_emv_ref *dol, const kv_emv_dol_values *extra,
                      uint8_t *out, size_t *len)
{
    kv_emv_dol_values dv;

    if (extra != NULL)
        dv = *extra;
    else
        memset(&dv, 0, sizeof(dv));
    dv.icc_dn = x->oda.icc_dn_len ? x->oda.icc_dn : NULL;
    dv.icc_dn_len = x->oda.icc_dn_len;
    dv.aip = x->card->aip;
    memcpy(x->t->tvr, x->res->tvr, 5);
    memcpy(x->t->tsi, x->res->tsi, 2);
    memcpy(x->t->cvm_results, x->res->cvm_results, 3);
    *len = 0;
    if (dol->p == NULL || dol->len == 0)
        return 0;
    return kv_emv_dol_build(dol->p, dol->len, x->t, &dv, out, TXN_DOL_MAX, len);
}

/* see transact_int.h */
int txn_first_ac(txn_ctx *x, uint8_t type)
{
    static const uint8_t y1[2] = {'Y', '1'}, z1[2] = {'Z', '1'};
    kv_transact_result *res = x->res;
    kv_emv_dol_values dv;
    int r, ok = 0;

    /* CDA signs a TC or an ARQC; an AAC is asked for without it (Book 2 §6.6) */
    x->cda_requested =
        x->oda.state == KV_ODA_ST_PENDING_CDA && (type & KV_AC_TYPE_MASK) != KV_AC_AAC;
    res->first_ac_requested = type & KV_AC_TYPE_MASK;
    /* a CDOL1 asking for 8A gets the terminal's offline decision: Y1 approve, Z1 decline
     * (Book 4 Annex A6); an ARQC request has no response code yet (00 00) */
    memset(&dv, 0, sizeof(dv));
    if (res->first_ac_requested == KV_AC_TC || res->first_ac_requested == KV_AC_AAC) {
        dv.arc = res->first_ac_requested == KV_AC_TC ? y1 : z1;
        dv.arc_len = 2;
        memcpy(res->arc, dv.arc, 2);
    }
    if ((r = cdol_build(x, &x->card->cdol1, &dv, x->cdol1, &x->cdol1_len)) != 0)
        return r;
    r = kv_emv_generate_ac(x->s, (uint8_t)(type | (x->cda_requested ? KV_AC_CDA : 0)), x->cdol1,
                           x->cdol1_len, x->resp1, sizeof(x->resp1), &x->rlen1, &x->g1);
    if (r != 0)
        return r;
    res->first_cid = x->g1.cid;
    res->final_cid = x->g1.cid;
    res->cid_flags = x->g1.cid & 0x0F;
    res->first_ac = x->g1.cid & KV_AC_TYPE_MASK;
    res->card_decision = res->first_ac;
    memcpy(res->atc, x->g1.atc, 2);
    res->has_atc = 1;
    if (x->cda_requested && (r = txn_cda_check(x, 0, &x->g1, &ok)) != 0)
        return r;
    res->oda_method = x->oda.method;
    res->oda_state = x->oda.state;
    res->oda_reason = x->oda.reason;
    return 0;
}

/* The key the cryptogram of this CVN is computed under: the AES IMK for AES CVNs. */
static int ac_key(txn_ctx *x, const kv_hsm_key **key)
{
    const kv_transact_params *p = x->p;
    int r;

    if (!x->ep.aes) {
        *key = &x->imk;
        return 0;
    }
    if (!x->have_imk_aes) {
        if ((r = kv_hsm_key_find(p->hsm, p->imk_aes ? p->imk_aes : KV_TRANSACT_DEFAULT_IMK_AES,
                                 &x->imk_aes)) != 0)
            return r;
        x->have_imk_aes = 1;
    }
    *key = &x->imk_aes;
    return 0;
}

/* The CVR of the answer, for evidence and the offline PIN / PIN blocked flags. */
static void cvr_take(txn_ctx *x, const kv_iad_info *iad)
{
    kv_transact_result *res = x->res;
    kv_cvr_info *c = &res->cvr;

    if (x->aclen > 0)
        kv_cvr_from_ac_data(res->cvn, x->acdata, x->aclen, c);
    if (c->layout == KV_CVR_LAYOUT_UNKNOWN)
        kv_cvr_from_iad(x->g1.iad, x->g1.iad_len, c);
    if (iad->layout != KV_IAD_UNKNOWN) {
        res->cvr_known = 1;
        res->offline_pin_performed = iad->offline_pin_performed;
        res->offline_pin_verified = iad->offline_pin_verified;
        res->offline_pin_failed = iad->offline_pin_failed;
        res->pin_try_limit_exceeded = iad->pin_try_limit_exceeded;
    } else if (c->layout != KV_CVR_LAYOUT_UNKNOWN) {
        res->cvr_known = 1;
        res->offline_pin_performed =
            c->offline_pin == KV_CVR_PIN_VERIFIED || c->offline_pin == KV_CVR_PIN_FAILED;
        res->offline_pin_verified = c->offline_pin == KV_CVR_PIN_VERIFIED;
        res->offline_pin_failed = c->offline_pin == KV_CVR_PIN_FAILED;
    }
    if (c->layout != KV_CVR_LAYOUT_UNKNOWN && c->pin_try_limit_exceeded)
        res->pin_try_limit_exceeded = 1;
    if (kv_tvr_isset(res->tvr, KV_TVR_PIN_TRY_LIMIT))
        res->pin_try_limit_exceeded = 1;
}

/* see transact_int.h */
int txn_arqc_verify(txn_ctx *x)
{
    kv_transact_result *res = x->res;
    const kv_hsm_key *key;
    kv_iad_info iad;
    uint8_t sd[KV_AC_SD_LEN];
    int r, match = 0;

    if ((r = kv_iad_decode(x->g1.iad, x->g1.iad_len, &iad)) != 0)
        return r;
    res->cvn = iad.cvn;
    x->have_ep = iad.cvn >= 0 && kv_emv_params_for_cvn(iad.cvn, &x->ep) == 0;
    if (x->have_ep && x->g1.has_ac &&
        kv_ac_standard_data(x->card->cdol1.p, x->card->cdol1.len, x->cdol1, x->cdol1_len, NULL, 0,
                            NULL, 0, sd) == 0 &&
        kv_ac_data_build(iad.cvn, sd, x->card->aip, x->g1.atc, x->g1.iad, x->g1.iad_len, x->acdata,
                         sizeof(x->acdata), &x->aclen) != 0)
        x->aclen = 0;
    cvr_take(x, &iad);
    if (!x->g1.has_ac)
        return 0;
    /* the cryptogram through the HSM (AAC and TC are checked the same way) */
    res->arqc_present = 1;
    memcpy(res->arqc, x->g1.ac, 8);
    if (!x->have_ep || x->aclen == 0)
        return 0;
    memset(&x->et, 0, sizeof(x->et));
    x->et.pan = res->pan;
    x->et.psn = res->psn;
    memcpy(x->et.atc, x->g1.atc, 2);
    x->et.has_un = 1;
    memcpy(x->et.un, x->t->un, 4);
    x->et.data = x->acdata;
    x->et.data_len = x->aclen;
    if (x->aclen <= sizeof(res->ac_data)) {
        memcpy(res->ac_data, x->acdata, x->aclen);
        res->ac_data_len = x->aclen;
    }
    memcpy(res->un, x->t->un, 4);
    if ((r = ac_key(x, &key)) != 0)
        return r;
    if ((r = kv_hsm_arqc_verify(x->p->hsm, key, &x->ep, &x->et, x->g1.ac, &match)) != 0)
        return r;
    res->arqc_verified = match;
    return 0;
}

/*
 * The issuer's own checks of an online request (kortvagt is the issuer host
 * here too): the cryptogram must verify, and the request it carries must be
 * one an issuer approves. The TVR an issuer reads is the one inside the
 * verified ARQC; what it shows (ODA failed, expired, service not allowed) is
 * the issuer's reason to decline, not a terminal rule.
 */
static void issuer_checks(txn_ctx *x)
{
    kv_transact_result *res = x->res;
    const kv_transact_params *p = x->p;

    x->issuer_ok = 0;
    if (!res->arqc_present)
        res->reason = "no application cryptogram";
    else if (res->cvn < 0 || !res->arqc_verified)
        res->reason = "ARQC not verified";
    else if (kv_tvr_isset(res->tvr, KV_TVR_SDA_FAILED) ||
             kv_tvr_isset(res->tvr, KV_TVR_DDA_FAILED) || kv_tvr_isset(res->tvr, KV_TVR_CDA_FAILED))
        res->reason = "issuer: offline data authentication failed";
    else if (res->pin_try_limit_exceeded) /* issuer policy: a blocked PIN is not overridden */
        res->reason = "PIN try limit exceeded";
    else if (res->cvm_method == KV_TXN_CVM_FAILED || res->cvm_result == KV_CVM_RESULT_FAILED)
        res->reason = "cardholder verification failed";
    else if (x->online_pin_captured && !res->online_pin_checked)
        res->reason = "online PIN not checked (no PVV key)";
    else if (p->contactless && res->cvc3_present && !res->cvc3_verified)
        res->reason = "CVC3 not verified";
    else if (kv_tvr_isset(res->tvr, KV_TVR_EXPIRED_APP) ||
             kv_tvr_isset(res->tvr, KV_TVR_SERVICE_NOT_ALLOWED))
        res->reason = "issuer: processing restrictions";
    else
        x->issuer_ok = 1;
}

/* The ARPC (method 1 or 2 as the CVN says) and the issuer authentication data 91. */
static int arpc_build(txn_ctx *x)
{
    kv_transact_result *res = x->res;
    kv_emv_arpc_in ai;
    const kv_hsm_key *key;
    uint8_t arpc[8];
    size_t arpc_len = 0;
    int r;

    if (!res->arqc_verified || !x->have_ep)
        return 0;
    if ((r = ac_key(x, &key)) != 0)
        return r;
    memset(&ai, 0, sizeof(ai));
    memcpy(ai.arqc, x->g1.ac, 8);
    memcpy(ai.arc, res->arc, 2);
    ai.csu[1] = x->issuer_ok ? 0x80 : 0x00; /* CSU: issuer approves online */
    if ((r = kv_hsm_arpc_generate(x->p->hsm, key, &x->ep, &x->et, &ai, arpc, &arpc_len)) != 0)
        return r;
    memcpy(x->issuer_auth, arpc, arpc_len);
    if (x->ep.arpc_method == 1) {
        memcpy(x->issuer_auth + arpc_len, res->arc, 2);
        x->issuer_auth_len = arpc_len + 2;
    } else {
        memcpy(x->issuer_auth + arpc_len, ai.csu, 4);
        x->issuer_auth_len = arpc_len + 4;
    }
    res->arpc_method = x->ep.arpc_method;
    x->have_arpc = 1;
    return 0;
}

/* see transact_int.h */
int txn_online(txn_ctx *x)
{
    const kv_transact_params *p = x->p;
    kv_transact_result *res = x->res;
    int r;

    issuer_checks(x);
    /* the issuer's authorization (src/authorize through the hook): its decision goes into the
     * ARC */
    if (p->authorize != NULL) {
        int approve = 0;
        if ((r = p->authorize(p->authorize_ctx, res, &approve)) != 0)
            return r;
        res->authorize_called = 1;
        res->authorize_approved = approve != 0;
        if (x->issuer_ok && !approve)
            x->issuer_ok = 0, res->reason = "declined by authorization";
    }
    res->arc[0] = '0';
    res->arc[1] = x->issuer_ok ? '0' : '5'; /* "00" approved, "05" do not honour */
    return arpc_build(x);
}

/* see transact_int.h */
int txn_issuer_authenticate(txn_ctx *x)
{
    kv_transact_result *res = x->res;
    int r;

    if (!x->have_arpc || kv_dol_has_tag(x->card->cdol2.p, x->card->cdol2.len, 0x91) ||
        !(x->card->aip[0] & 0x04))
        return 0;
    if ((r = kv_emv_external_authenticate(x->s, x->issuer_auth, x->issuer_auth_len,
                                          &res->issuer_auth_accepted)) != 0)
        return r;
    res->arpc_sent = 1;
    kv_tsi_set(res->tsi, KV_TSI_ISSUER_AUTH_PERFORMED);
    res->issuer_authentication = res->issuer_auth_accepted ? 1 : 2;
    if (!res->issuer_auth_accepted)
        kv_tvr_set(res->tvr, KV_TVR_ISSUER_AUTH_FAILED);
    return 0;
}

/* 1 when the card's CVR says the issuer authentication of this transaction failed. */
static int cvr_issuer_auth_failed(const kv_genac_resp *g)
{
    kv_iad_info iad;
    kv_cvr_info c;

    if (kv_iad_decode(g->iad, g->iad_len, &iad) == 0 && iad.layout != KV_IAD_UNKNOWN)
        return iad.issuer_auth_failed;
    kv_cvr_from_iad(g->iad, g->iad_len, &c);
    switch (c.layout) {
    case KV_CVR_LAYOUT_VISA:
        return (c.cvr[0] & 0x08) != 0;
    case KV_CVR_LAYOUT_MCHIP:
        return c.cvr_len > 4 && (c.cvr[4] & 0x04) != 0;
    case KV_CVR_LAYOUT_CCD:
        return (c.cvr[0] & 0x01) != 0;
    default:
        return 0;
    }
}

/* see transact_int.h */
int txn_second_ac(txn_ctx *x, uint8_t type, const uint8_t arc[2])
{
    kv_transact_result *res = x->res;
    kv_emv_dol_values dv;
    int r, ok = 0, via_genac = kv_dol_has_tag(x->card->cdol2.p, x->card->cdol2.len, 0x91);
    int cda = 0;

    memset(&dv, 0, sizeof(dv));
    dv.arc = arc;
    dv.arc_len = 2;
    if (x->have_arpc && via_genac && x->online) {
        dv.issuer_auth = x->issuer_auth;
        dv.issuer_auth_len = x->issuer_auth_len;
        res->arpc_sent = 1;
        res->arpc_via_genac = 1;
        kv_tsi_set(res->tsi, KV_TSI_ISSUER_AUTH_PERFORMED);
    }
    if ((r = cdol_build(x, &x->card->cdol2, &dv, x->cdol2, &x->cdol2_len)) != 0)
        return r;
    /* CDA again when the card did CDA on the 1st and a TC is asked for (Book 2 §6.6) */
    cda = x->cda_requested && x->oda.state == KV_ODA_ST_OK && type == KV_AC_TC;
    r = kv_emv_generate_ac(x->s, (uint8_t)(type | (cda ? KV_AC_CDA : 0)),
                           x->cdol2_len ? x->cdol2 : NULL, x->cdol2_len, x->resp2, sizeof(x->resp2),
                           &x->rlen2, &x->g2);
    if (r != 0)
        return r;
    x->have_g2 = 1;
    res->final_cid = x->g2.cid;
    res->second_ac = x->g2.cid & KV_AC_TYPE_MASK;
    res->card_decision = res->second_ac;
    res->cid_flags = x->g2.cid & 0x0F;
    if (res->arpc_sent && res->arpc_via_genac) {
        if (cvr_issuer_auth_failed(&x->g2)) {
            kv_tvr_set(res->tvr, KV_TVR_ISSUER_AUTH_FAILED);
            res->issuer_authentication = 2;
        } else {
            res->issuer_authentication = 1;
        }
    }
    if (cda) {
        if ((r = txn_cda_check(x, 1, &x->g2, &ok)) != 0)
            return r;
        /* an unsigned AAC is no CDA failure; a TC or ARQC whose SDAD fails is (Book 4) */
        res->cda_second = ok == 1 ? 1 : ok == 0 ? 2 : 0;
    }
    return 0;
}

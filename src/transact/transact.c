/* One card-present EMV transaction verified through the HSM: see transact.h */
#include "src/transact/transact.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "apdu/cvm.h"
#include "apdu/dol.h"
#include "apdu/emv.h"
#include "apdu/emv_txn.h"
#include "apdu/oda.h"
#include "apdu/tvr.h"
#include "hsm/cvv.h"
#include "hsm/emv_crypto.h"
#include "hsm/pin.h"
#include "src/base/err.h"
#include "src/base/hex.h"

/* Everything one run holds. */
typedef struct {
    const kv_transact_params *p;
    kv_transact_result *res;
    kv_emv *s;
    kv_terminal *t;
    const kv_emv_card *card;
    kv_oda_ctx oda;
    kv_secbuf *pin; /* the clear PIN for offline verification (owned when decrypted here) */
    size_t pin_len;
    int pin_owned;
    int online_pin_captured;
} txn_ctx;

/* see transact.h */
const char *kv_transact_cvm_name(int method)
{
    switch (method) {
    case KV_TXN_CVM_OFFLINE_PLAIN:
        return "offline_pin_plain";
    case KV_TXN_CVM_OFFLINE_ENCIPHERED:
        return "offline_pin_enciphered";
    case KV_TXN_CVM_ONLINE_PIN:
        return "online_pin";
    case KV_TXN_CVM_SIGNATURE:
        return "signature";
    case KV_TXN_CVM_NO_CVM:
        return "no_cvm";
    case KV_TXN_CVM_FAILED:
        return "failed";
    default:
        return "none";
    }
}

/* PAN digits of 5A without F padding into out (capacity 20). */
static void pan_of(const kv_emv_card *c, char out[20])
{
    snprintf(out, 20, "%s", c->pan);
}

/* Get the clear PIN for an offline CVM: the caller's, or decrypted from the format 4 block. */
static int pin_obtain(txn_ctx *x)
{
    const kv_transact_params *p = x->p;
    kv_hsm_key key;
    size_t n = 0;
    int r;

    if (x->pin != NULL)
        return 0;
    if (p->pin != NULL) {
        x->pin = p->pin;
        x->pin_len = p->pin_len;
        return 0;
    }
    if (p->pin_block == NULL || p->pin_key == NULL || p->hsm == NULL)
        return KV_ERR_NOT_FOUND;
    if ((r = kv_hsm_key_find(p->hsm, p->pin_key, &key)) != 0)
        return r;
    if ((x->pin = kv_secbuf_new(KV_PIN_MAX + 1)) == NULL)
        return KV_ERR_NOMEM;
    x->pin_owned = 1;
    r = kv_hsm_pinblock_decrypt(p->hsm, &key, KV_PINBLOCK_ISO4, p->pin_block, p->pin_block_len,
                                x->res->pan, (char *)kv_secbuf_ptr(x->pin), &n);
    if (r != 0) {
        kv_secbuf_free(x->pin);
        x->pin = NULL;
        x->pin_owned = 0;
        return r == KV_ERR_FORMAT ? KV_ERR_NOT_FOUND : r;
    }
    x->pin_len = n;
    return 0;
}

static int have_pin_source(const kv_transact_params *p)
{
    return p->pin != NULL || (p->pin_block != NULL && p->pin_key != NULL);
}

/* Read 9F17 now; -1 when the card does not say. */
static int read_ptc(kv_emv *s, int *out)
{
    uint8_t v[4];
    size_t n = 0;
    int r = kv_emv_get_data(s, 0x9F17, v, sizeof(v), &n);

    *out = -1;
    if (r == KV_ERR_NOT_FOUND || r == KV_ERR_BUFFER)
        return 0;
    if (r != 0)
        return r;
    if (n == 1)
        *out = v[0];
    return 0;
}

/* kv_cvm_perform_fn: VERIFY (plain or enciphered), online PIN capture, signature. */
static int perform_cvm(void *arg, uint8_t method, uint8_t condition, int *outcome)
{
    txn_ctx *x = arg;
    kv_pin_result pr;
    kv_oda_pubkey pinkey;
    const kv_oda_pubkey *key = NULL;
    int r, ptc;

    (void)condition;
    switch (method) {
    case KV_CVM_PLAIN_PIN:
    case KV_CVM_PLAIN_PIN_SIG:
    case KV_CVM_ENC_PIN:
    case KV_CVM_ENC_PIN_SIG:
        /* Book 3 §10.5.1: PIN try counter 0 -> PIN try limit exceeded, no VERIFY */
        if ((r = read_ptc(x->s, &ptc)) != 0)
            return r;
        x->res->pin_try_counter_before = ptc;
        if (ptc == 0) {
            *outcome = KV_CVM_OUT_PIN_TRY_LIMIT;
            return 0;
        }
        if (!have_pin_source(x->p)) {
            *outcome = KV_CVM_OUT_PIN_BYPASSED;
            return 0;
        }
        if (method == KV_CVM_ENC_PIN || method == KV_CVM_ENC_PIN_SIG) {
            /* the ICC PIN encipherment key, else the ICC key (Book 2 §7.1) */
            if (x->oda.have_issuer &&
                kv_emv_pin_key_recover(x->s, &x->oda.issuer, x->t->date, &pinkey) == 0)
                key = &pinkey;
            else if (x->oda.have_icc)
                key = &x->oda.icc;
            if (key == NULL) {
                *outcome = KV_CVM_OUT_FAILED;
                return 0;
            }
        }
        if ((r = pin_obtain(x)) != 0) {
            if (r == KV_ERR_NOT_FOUND) { /* block not valid for this PAN: as not entered */
                *outcome = KV_CVM_OUT_PIN_BYPASSED;
                return 0;
            }
            return r;
        }
        if (key != NULL)
            r = kv_emv_verify_enciphered_pin(x->s, (const char *)kv_secbuf_ptr(x->pin), x->pin_len,
                                             key, &pr);
        else
            r = kv_emv_verify_plain_pin(x->s, (const char *)kv_secbuf_ptr(x->pin), x->pin_len, &pr);
        if (r != 0)
            return r;
        x->res->pin_try_counter_after =
            pr.status == KV_PIN_VERIFIED ? x->res->pin_try_counter_before : pr.tries_left;
        if (pr.status == KV_PIN_VERIFIED)
            *outcome = KV_CVM_OUT_OK;
        else if (pr.status == KV_PIN_BLOCKED || pr.tries_left == 0)
            *outcome = KV_CVM_OUT_PIN_TRY_LIMIT;
        else
            *outcome = KV_CVM_OUT_FAILED;
        return 0;
    case KV_CVM_ONLINE_PIN:
        if (x->p->pin_block == NULL && x->p->pin == NULL) {
            *outcome = KV_CVM_OUT_PIN_BYPASSED;
            return 0;
        }
        x->online_pin_captured = 1;
        *outcome = KV_CVM_OUT_OK;
        return 0;
    case KV_CVM_SIGNATURE:
        *outcome = KV_CVM_OUT_OK; /* the signature is taken on the receipt */
        return 0;
    default:
        *outcome = KV_CVM_OUT_FAILED;
        return 0;
    }
}

/* The ODA step's view of the card. */
static void oda_card_fill(const txn_ctx *x, kv_oda_card *oc, kv_oda_record *recs, size_t cap)
{
    const kv_emv_card *c = x->card;
    size_t n = 0;

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
    for (size_t i = 0; i < c->nrecords && n < cap; i++) {
        if (!c->records[i].oda)
            continue;
        recs[n].sfi = c->records[i].sfi;
        recs[n].data = c->records[i].data;
        recs[n].len = c->records[i].len;
        n++;
    }
    oc->sd.records = recs;
    oc->sd.nrecords = n;
    oc->sd.tag_list = c->sda_tag_list.p;
    oc->sd.tag_list_len = c->sda_tag_list.len;
    memcpy(oc->sd.aip, c->aip, 2);
    oc->txn_date = x->t->date;
}

/* DDA: INTERNAL AUTHENTICATE with the DDOL (card's 9F49, else the default 9F3704). */
static int oda_dda(txn_ctx *x)
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

static int cvm_map(const kv_cvm_result *cr)
{
    switch (cr->results[0] & 0x3F) {
    case KV_CVM_PLAIN_PIN:
    case KV_CVM_PLAIN_PIN_SIG:
        return KV_TXN_CVM_OFFLINE_PLAIN;
    case KV_CVM_ENC_PIN:
    case KV_CVM_ENC_PIN_SIG:
        return KV_TXN_CVM_OFFLINE_ENCIPHERED;
    case KV_CVM_ONLINE_PIN:
        return KV_TXN_CVM_ONLINE_PIN;
    case KV_CVM_SIGNATURE:
        return KV_TXN_CVM_SIGNATURE;
    case KV_CVM_NO_CVM:
        return KV_TXN_CVM_NO_CVM;
    default: /* 00 fail CVM processing, 3F none performed */
        return cr->successful ? KV_TXN_CVM_NONE_PERFORMED : KV_TXN_CVM_FAILED;
    }
}

/* Contact CVM: the card's CVM list against the terminal profile. */
static int cvm_contact(txn_ctx *x)
{
    kv_cvm_txn ct;
    kv_cvm_result cr;
    const uint8_t *v;
    size_t vl;
    int r;

    memset(&ct, 0, sizeof(ct));
    ct.cvm_list = x->card->cvm_list.p;
    ct.cvm_list_len = x->card->cvm_list.len;
    memcpy(ct.aip, x->card->aip, 2);
    ct.app_currency = kv_emv_find(x->s, 0x9F42, &v, &vl) == 0 ? kv_cvm_currency_value(v, vl) : -1;
    ct.amount = x->t->amount;
    ct.amount_other = x->t->amount_other;
    ct.currency = x->t->currency;
    ct.txn_type = x->t->txn_type;
    ct.terminal_type = x->t->terminal_type;
    memcpy(ct.capabilities, x->t->capabilities, 3);
    if ((r = kv_cvm_process(&ct, perform_cvm, x, x->res->tvr, x->res->tsi, &cr)) != 0)
        return r;
    memcpy(x->res->cvm_results, cr.results, 3);
    x->res->cvm_method = cvm_map(&cr);
    x->res->cvm_result = cr.results[2];
    if (!cr.processed)
        x->res->cvm_method = KV_TXN_CVM_NONE_PERFORMED;
    return 0;
}

/* Contactless: no CVM up to the CVM limit, online PIN above it. */
static void cvm_contactless(txn_ctx *x)
{
    uint64_t limit = x->p->cvm_limit ? x->p->cvm_limit : KV_TRANSACT_DEFAULT_CVM_LIMIT;

    if (x->t->amount <= limit) {
        x->res->cvm_method = KV_TXN_CVM_NO_CVM;
        x->res->cvm_results[0] = KV_CVM_NO_CVM;
        x->res->cvm_results[1] = 0x00;
        x->res->cvm_results[2] = KV_CVM_RESULT_SUCCESSFUL;
        x->res->cvm_result = KV_CVM_RESULT_SUCCESSFUL;
        return;
    }
    kv_tsi_set(x->res->tsi, KV_TSI_CV_PERFORMED);
    x->res->cvm_results[0] = KV_CVM_ONLINE_PIN;
    x->res->cvm_results[1] = 0x00;
    if (x->p->pin_block != NULL || x->p->pin != NULL) {
        x->online_pin_captured = 1;
        x->res->cvm_method = KV_TXN_CVM_ONLINE_PIN;
        x->res->cvm_results[2] = KV_CVM_RESULT_UNKNOWN;
        x->res->cvm_result = KV_CVM_RESULT_UNKNOWN;
        kv_tvr_set(x->res->tvr, KV_TVR_ONLINE_PIN);
    } else {
        x->res->cvm_method = KV_TXN_CVM_FAILED;
        x->res->cvm_results[2] = KV_CVM_RESULT_FAILED;
        x->res->cvm_result = KV_CVM_RESULT_FAILED;
        kv_tvr_set(x->res->tvr, KV_TVR_PIN_NOT_ENTERED);
        kv_tvr_set(x->res->tvr, KV_TVR_CV_NOT_SUCCESSFUL);
    }
}

/* Online PIN against the PVV through the HSM. */
static int online_pin_check(txn_ctx *x)
{
    const kv_transact_params *p = x->p;
    kv_hsm_key pvk, pk;
    int r, match = 0;

    if (p->pvk == NULL || p->pvv[0] == '\0')
        return 0; /* nothing to check against: stays unknown */
    if ((r = kv_hsm_key_find(p->hsm, p->pvk, &pvk)) != 0)
        return r;
    if (p->pin_block != NULL) {
        if (p->pin_key == NULL)
            return KV_ERR_ARG;
        if ((r = kv_hsm_key_find(p->hsm, p->pin_key, &pk)) != 0)
            return r;
        r = kv_hsm_pvv_verify_pinblock(p->hsm, &pvk, &pk, KV_PINBLOCK_ISO4, p->pin_block,
                                       p->pin_block_len, x->res->pan, p->pvki, p->pvv, &match);
    } else {
        r = kv_hsm_pvv_verify(p->hsm, &pvk, x->res->pan, p->pvki,
                              (const char *)kv_secbuf_ptr(p->pin), p->pin_len, p->pvv, &match);
    }
    if (r != 0)
        return r;
    x->res->online_pin_checked = 1;
    x->res->online_pin_ok = match;
    x->res->cvm_result = match ? KV_CVM_RESULT_SUCCESSFUL : KV_CVM_RESULT_FAILED;
    return 0;
}

/* Contactless CVC3: COMPUTE CRYPTOGRAPHIC CHECKSUM and the HSM check. */
static int cvc3_check(txn_ctx *x, const kv_hsm_key *imk)
{
    static const uint8_t default_udol[] = {0x9F, 0x6A, 0x04};
    const uint8_t *udol = default_udol, *track = NULL, *v = NULL;
    size_t udol_len = sizeof(default_udol), track_len = 0, dlen = 0, vlen = 0;
    uint8_t data[64], un[4];
    kv_cc_resp cc;
    char digits[8];
    int r, match = 0;

    if (kv_emv_find(x->s, 0x9F69, &udol, &udol_len) != 0) {
        udol = default_udol;
        udol_len = sizeof(default_udol);
    }
    if ((r = kv_emv_dol_build(udol, udol_len, x->t, NULL, data, sizeof(data), &dlen)) != 0)
        return KV_ERR_CARD_DATA;
    r = kv_emv_compute_cc(x->s, data, dlen, &cc);
    if (r == KV_ERR_CONDITIONS || r == KV_ERR_CARD_INS)
        return 0; /* the card has no CVC3: not present */
    if (r != 0)
        return r;
    x->res->cvc3_present = 1;
    if (kv_emv_find(x->s, 0x57, &track, &track_len) != 0 || !cc.has_cvc3_track2)
        return 0; /* cannot be checked: not verified */
    snprintf(digits, sizeof(digits), "%05u",
             (unsigned)(cc.cvc3_track2[0] << 8 | cc.cvc3_track2[1]) % 100000u);
    /* the UN the card MACed: the 9F6A (numeric, BCD) value as sent in the UDOL data */
    memcpy(un, x->t->un, 4);
    if (kv_dol_value(udol, udol_len, data, dlen, 0x9F6A, &v, &vlen) == 1 && vlen == 4)
        memcpy(un, v, 4);
    r = kv_hsm_cvc3_verify(x->p->hsm, imk, x->res->pan, x->res->psn, cc.atc, un, track, track_len,
                           digits, &match);
    if (r != 0)
        return r;
    x->res->cvc3_verified = match;
    return 0;
}

static void finish_pan(txn_ctx *x)
{
    kv_transact_result *res = x->res;
    /* 5F34 is n2: one BCD byte */
    unsigned psn = x->card->psn >= 0 ? (unsigned)x->card->psn & 0xFFu : 0u;

    pan_of(x->card, res->pan);
    kv_pan_mask(res->pan, res->pan_masked);
    res->psn[0] = (char)('0' + (psn >> 4) % 10u);
    res->psn[1] = (char)('0' + (psn & 0x0Fu) % 10u);
    res->psn[2] = '\0';
    snprintf(res->expiry, sizeof(res->expiry), "%s", x->card->expiry);
}

/* see transact.h */
int kv_transact_run(kv_reader *rd, const kv_transact_params *p, kv_transact_result *res)
{
    int r = KV_ERR_INTERNAL, oda_cda, issuer_ok, match = 0;
    txn_ctx x;
    kv_terminal term;
    const kv_cvm_profile *prof;
    kv_oda_card oc;
    kv_oda_record recs[32];
    kv_hsm_key imk, imk_cvc3;
    uint8_t pdol_data[256], cdol1[256], cdol2[256], resp1[KV_EMV_RESP_MAX], resp2[KV_EMV_RESP_MAX];
    size_t pdol_len = 0, cdol1_len = 0, cdol2_len = 0, rlen1 = 0, rlen2 = 0;
    kv_genac_resp g1, g2;
    kv_iad_info iad;
    kv_emv_params ep;
    kv_emv_txn et;
    uint8_t sd[KV_AC_SD_LEN], acdata[KV_AC_SD_LEN + 4 + KV_IAD_MAX];
    size_t aclen = 0;
    uint8_t arc[2], issuer_auth[16];
    size_t issuer_auth_len = 0;

    memset(&x, 0, sizeof(x));
    memset(res, 0, sizeof(*res));
    res->cvn = -1;
    res->pin_try_counter_before = -1;
    res->pin_try_counter_after = -1;
    res->amount = p->amount;
    res->card_decision = -1;
    snprintf(res->currency, sizeof(res->currency), "%s", p->currency_code);
    res->at = p->now ? p->now : (long long)time(NULL);
    res->reason = "transaction not completed";
    x.p = p;
    x.res = res;
    if (p->hsm == NULL || (prof = kv_cvm_profile_find(p->profile ? p->profile : "pos")) == NULL)
        return KV_ERR_ARG;

    /* the terminal: profile, amount, currency, time, a fresh UN (kv_emv_gpo draws it) */
    if ((r = kv_terminal_init(&term)) != 0)
        return r;
    memcpy(term.capabilities, prof->capabilities, 3);
    term.terminal_type = prof->terminal_type;
    term.amount = p->amount;
    term.currency = p->currency;
    term.txn_type = p->cash ? 1 : 0;
    term.pos_entry_mode = p->contactless ? 7 : 5;
    kv_terminal_set_time(&term, res->at);
    if ((r = kv_emv_new(rd, &term, &x.s)) != 0)
        return r;
    x.t = kv_emv_terminal(x.s);

    /* keys first: a missing IMK is a configuration error before the card is touched */
    if ((r = kv_hsm_key_find(p->hsm, p->imk_ac ? p->imk_ac : KV_TRANSACT_DEFAULT_IMK_AC, &imk)) !=
        0)
        goto out;
    if (p->contactless &&
        (r = kv_hsm_key_find(p->hsm, p->imk_cvc3 ? p->imk_cvc3 : KV_TRANSACT_DEFAULT_IMK_CVC3,
                             &imk_cvc3)) != 0)
        goto out;

    /* selection, GPO, records, GET DATA */
    if ((r = kv_emv_read_card(x.s, p->contactless ? KV_EMV_IFACE_CONTACTLESS
                                                  : KV_EMV_IFACE_CONTACT)) != 0)
        goto out;
    x.card = kv_emv_card_data(x.s);
    finish_pan(&x);
    if (x.card->pan[0] == '\0') {
        r = KV_ERR_CARD_DATA;
        goto out;
    }
    /* the GPO's PDOL data, rebuilt with the same terminal data (CDA hashes it) */
    if (x.card->pdol.len > 0 && (r = kv_dol_build(x.card->pdol.p, x.card->pdol.len, x.t, NULL, NULL,
                                                  pdol_data, sizeof(pdol_data), &pdol_len)) != 0)
        goto out;

    /* offline data authentication (Book 3 §10.3) */
    oda_card_fill(&x, &oc, recs, sizeof(recs) / sizeof(recs[0]));
    if ((r = kv_oda_begin(&x.oda, p->capks, &oc, x.t->capabilities, res->tvr, res->tsi)) != 0)
        goto out;
    if (x.oda.state == KV_ODA_ST_PENDING_DDA && (r = oda_dda(&x)) != 0)
        goto out;
    oda_cda = x.oda.state == KV_ODA_ST_PENDING_CDA;

    /* processing restrictions (§10.4) */
    {
        kv_restrict_card rc;
        kv_restrict_card_from_session(x.s, &rc);
        kv_emv_restrictions(&rc, x.t, res->tvr);
    }

    /* cardholder verification (§10.5) */
    if (p->contactless)
        cvm_contactless(&x);
    else if ((r = cvm_contact(&x)) != 0)
        goto out;
    if (x.online_pin_captured) {
        if ((r = online_pin_check(&x)) != 0)
            goto out;
    }
    if (p->contactless && (r = cvc3_check(&x, &imk_cvc3)) != 0)
        goto out;

    /* 1st GENERATE AC asking for an ARQC (online), CDA when selected */
    memcpy(x.t->tvr, res->tvr, 5);
    memcpy(x.t->tsi, res->tsi, 2);
    memcpy(x.t->cvm_results, res->cvm_results, 3);
    if (x.card->cdol1.p == NULL) {
        r = KV_ERR_CARD_DATA;
        goto out;
    }
    {
        kv_emv_dol_values dv;
        memset(&dv, 0, sizeof(dv));
        dv.icc_dn = x.oda.icc_dn_len ? x.oda.icc_dn : NULL;
        dv.icc_dn_len = x.oda.icc_dn_len;
        dv.aip = x.card->aip;
        if ((r = kv_emv_dol_build(x.card->cdol1.p, x.card->cdol1.len, x.t, &dv, cdol1,
                                  sizeof(cdol1), &cdol1_len)) != 0)
            goto out;
    }
    r = kv_emv_generate_ac(x.s, (uint8_t)(KV_AC_ARQC | (oda_cda ? KV_AC_CDA : 0)), cdol1, cdol1_len,
                           resp1, sizeof(resp1), &rlen1, &g1);
    if (r != 0)
        goto out;
    res->first_cid = g1.cid;
    res->final_cid = g1.cid;
    res->card_decision = g1.cid & KV_AC_TYPE_MASK;
    memcpy(res->atc, g1.atc, 2);
    res->has_atc = 1;
    if (oda_cda) {
        kv_oda_cda_in ci;
        kv_oda_cda_out co;
        memset(&ci, 0, sizeof(ci));
        ci.pdol_data = pdol_len ? pdol_data : NULL;
        ci.pdol_data_len = pdol_len;
        ci.cdol1_data = cdol1;
        ci.cdol1_data_len = cdol1_len;
        ci.response = resp1;
        ci.response_len = rlen1;
        memcpy(ci.un, x.t->un, 4);
        if ((r = kv_oda_cda_finish(&x.oda, &ci, &co, res->tvr)) != 0)
            goto out;
        if (x.oda.state == KV_ODA_ST_OK && !g1.has_ac) {
            memcpy(g1.ac, co.ac, 8);
            g1.has_ac = 1;
        }
    }
    res->oda_method = x.oda.method;
    res->oda_state = x.oda.state;
    res->oda_reason = x.oda.reason;

    /* the CVR (IAD) */
    if ((r = kv_iad_decode(g1.iad, g1.iad_len, &iad)) != 0)
        goto out;
    res->cvr_known = iad.layout != KV_IAD_UNKNOWN;
    res->offline_pin_performed = iad.offline_pin_performed;
    res->offline_pin_verified = iad.offline_pin_verified;
    res->offline_pin_failed = iad.offline_pin_failed;
    res->pin_try_limit_exceeded =
        iad.pin_try_limit_exceeded || kv_tvr_isset(res->tvr, KV_TVR_PIN_TRY_LIMIT);
    res->cvn = iad.cvn;

    /* the cryptogram through the HSM (AAC and TC are checked the same way) */
    if (g1.has_ac) {
        res->arqc_present = 1;
        memcpy(res->arqc, g1.ac, 8);
        if (kv_emv_params_for_cvn(iad.cvn, &ep) == 0 &&
            kv_ac_standard_data(x.card->cdol1.p, x.card->cdol1.len, cdol1, cdol1_len, NULL, 0, NULL,
                                0, sd) == 0 &&
            kv_ac_data_build(iad.cvn, sd, x.card->aip, g1.atc, g1.iad, g1.iad_len, acdata,
                             sizeof(acdata), &aclen) == 0) {
            memset(&et, 0, sizeof(et));
            et.pan = res->pan;
            et.psn = res->psn;
            memcpy(et.atc, g1.atc, 2);
            et.has_un = 1;
            memcpy(et.un, x.t->un, 4);
            et.data = acdata;
            et.data_len = aclen;
            if (aclen <= sizeof(res->ac_data)) {
                memcpy(res->ac_data, acdata, aclen);
                res->ac_data_len = aclen;
            }
            memcpy(res->un, x.t->un, 4);
            if ((r = kv_hsm_arqc_verify(p->hsm, &imk, &ep, &et, g1.ac, &match)) != 0)
                goto out;
            res->arqc_verified = match;
        }
    }

    /* the issuer's decision */
    issuer_ok = (g1.cid & KV_AC_TYPE_MASK) == KV_AC_ARQC && res->arqc_verified;
    if (!issuer_ok)
        res->reason = (g1.cid & KV_AC_TYPE_MASK) == KV_AC_AAC ? "card declined (AAC)"
                      : !res->arqc_present                    ? "no application cryptogram"
                      : res->cvn < 0 || !res->arqc_verified   ? "ARQC not verified"
                                                              : "card did not ask to go online";
    else if (x.oda.state == KV_ODA_ST_FAILED)
        issuer_ok = 0, res->reason = "offline data authentication failed";
    else if (res->pin_try_limit_exceeded) /* issuer policy: a blocked PIN is not overridden */
        issuer_ok = 0, res->reason = "PIN try limit exceeded";
    else if (res->cvm_method == KV_TXN_CVM_FAILED || res->cvm_result == KV_CVM_RESULT_FAILED)
        issuer_ok = 0, res->reason = "cardholder verification failed";
    else if (x.online_pin_captured && !res->online_pin_checked)
        issuer_ok = 0, res->reason = "online PIN not checked (no PVV key)";
    else if (p->contactless && res->cvc3_present && !res->cvc3_verified)
        issuer_ok = 0, res->reason = "CVC3 not verified";
    else if (kv_tvr_isset(res->tvr, KV_TVR_EXPIRED_APP) ||
             kv_tvr_isset(res->tvr, KV_TVR_SERVICE_NOT_ALLOWED))
        issuer_ok = 0, res->reason = "processing restrictions";

    /* the issuer's authorization (src/authorize through the hook): its decision goes into the ARC
     */
    if ((g1.cid & KV_AC_TYPE_MASK) == KV_AC_ARQC && p->authorize != NULL) {
        int approve = 0;
        if ((r = p->authorize(p->authorize_ctx, res, &approve)) != 0)
            goto out;
        res->authorize_called = 1;
        res->authorize_approved = approve != 0;
        if (issuer_ok && !approve)
            issuer_ok = 0, res->reason = "declined by authorization";
    }

    /* ARPC back to the card (only for an ARQC) and the card's final decision */
    if ((g1.cid & KV_AC_TYPE_MASK) == KV_AC_ARQC) {
        kv_emv_arpc_in ai;
        uint8_t arpc[8];
        size_t arpc_len = 0;
        int via_genac = kv_dol_has_tag(x.card->cdol2.p, x.card->cdol2.len, 0x91);
        int have_arpc = 0;

        arc[0] = '0';
        arc[1] = issuer_ok ? '0' : '5'; /* "00" approved, "05" do not honour */
        if (res->arqc_verified && kv_emv_params_for_cvn(iad.cvn, &ep) == 0) {
            memset(&ai, 0, sizeof(ai));
            memcpy(ai.arqc, g1.ac, 8);
            memcpy(ai.arc, arc, 2);
            ai.csu[1] = issuer_ok ? 0x80 : 0x00; /* CSU: issuer approves online */
            if ((r = kv_hsm_arpc_generate(p->hsm, &imk, &ep, &et, &ai, arpc, &arpc_len)) != 0)
                goto out;
            memcpy(issuer_auth, arpc, arpc_len);
            if (ep.arpc_method == 1) {
                memcpy(issuer_auth + arpc_len, arc, 2);
                issuer_auth_len = arpc_len + 2;
            } else {
                memcpy(issuer_auth + arpc_len, ai.csu, 4);
                issuer_auth_len = arpc_len + 4;
            }
            res->arpc_method = ep.arpc_method;
            have_arpc = 1;
        }
        if (have_arpc && !via_genac && (x.card->aip[0] & 0x04)) {
            if ((r = kv_emv_external_authenticate(x.s, issuer_auth, issuer_auth_len,
                                                  &res->issuer_auth_accepted)) != 0)
                goto out;
            res->arpc_sent = 1;
            kv_tsi_set(res->tsi, KV_TSI_ISSUER_AUTH_PERFORMED);
            if (!res->issuer_auth_accepted)
                kv_tvr_set(res->tvr, KV_TVR_ISSUER_AUTH_FAILED);
        }
        {
            kv_emv_dol_values dv;
            memset(&dv, 0, sizeof(dv));
            dv.arc = arc;
            dv.arc_len = 2;
            if (have_arpc && via_genac) {
                dv.issuer_auth = issuer_auth;
                dv.issuer_auth_len = issuer_auth_len;
                res->arpc_sent = 1;
                res->arpc_via_genac = 1;
                kv_tsi_set(res->tsi, KV_TSI_ISSUER_AUTH_PERFORMED);
            }
            dv.icc_dn = x.oda.icc_dn_len ? x.oda.icc_dn : NULL;
            dv.icc_dn_len = x.oda.icc_dn_len;
            dv.aip = x.card->aip;
            memcpy(x.t->tvr, res->tvr, 5);
            memcpy(x.t->tsi, res->tsi, 2);
            if (x.card->cdol2.p != NULL &&
                (r = kv_emv_dol_build(x.card->cdol2.p, x.card->cdol2.len, x.t, &dv, cdol2,
                                      sizeof(cdol2), &cdol2_len)) != 0)
                goto out;
        }
        r = kv_emv_generate_ac(x.s, issuer_ok ? KV_AC_TC : KV_AC_AAC, cdol2, cdol2_len, resp2,
                               sizeof(resp2), &rlen2, &g2);
        if (r != 0)
            goto out;
        res->final_cid = g2.cid;
        res->card_decision = g2.cid & KV_AC_TYPE_MASK;
        if (kv_iad_decode(g2.iad, g2.iad_len, &iad) == 0 && iad.layout != KV_IAD_UNKNOWN &&
            iad.issuer_auth_failed && res->arpc_sent && res->arpc_via_genac)
            kv_tvr_set(res->tvr, KV_TVR_ISSUER_AUTH_FAILED);
        if (issuer_ok && res->card_decision != KV_AC_TC)
            issuer_ok = 0,
            res->reason = res->arpc_sent && kv_tvr_isset(res->tvr, KV_TVR_ISSUER_AUTH_FAILED)
                              ? "issuer authentication failed"
                              : "card declined (AAC)";
    }
    res->approved = issuer_ok && res->card_decision == KV_AC_TC;
    if (res->approved)
        res->reason = "approved";
    kv_tsi_set(res->tsi, KV_TSI_CRM_PERFORMED);
    r = 0;
out:
    if (r != 0) {
        res->approved = 0;
        res->reason = "transaction not completed";
    }
    res->apdus = kv_reader_apdu_count(rd);
    if (x.pin_owned)
        kv_secbuf_free(x.pin);
    kv_wipe(cdol1, sizeof(cdol1));
    kv_emv_free(x.s);
    return r;
}

static json_t *hex_json(const uint8_t *p, size_t n)
{
    char buf[2 * 16 + 1];
    if (n > 16)
        return json_null();
    kv_hex_encode(p, n, buf);
    return json_string(buf);
}

/* see transact.h */
json_t *kv_transact_result_json(const kv_transact_result *res)
{
    json_t *j = json_object(), *o;
    char at[32];
    struct tm tm;
    time_t tt = (time_t)res->at;
    const char *cvm_res = res->cvm_result == KV_CVM_RESULT_SUCCESSFUL ? "successful"
                          : res->cvm_result == KV_CVM_RESULT_FAILED   ? "failed"
                                                                      : "unknown";
    const char *oda_res;

    if (j == NULL)
        return NULL;
    if (res->cvm_method == KV_TXN_CVM_FAILED)
        cvm_res = "failed";
    o = json_object();
    json_object_set_new(o, "method", json_string(kv_transact_cvm_name(res->cvm_method)));
    json_object_set_new(o, "result", json_string(cvm_res));
    json_object_set_new(o, "cvm_results", hex_json(res->cvm_results, 3));
    json_object_set_new(j, "cvm", o);

    oda_res = res->oda_state == KV_ODA_ST_OK       ? "passed"
              : res->oda_state == KV_ODA_ST_FAILED ? "failed"
                                                   : "not_performed";
    o = json_object();
    json_object_set_new(o, "method", json_string(kv_oda_method_name(res->oda_method)));
    json_object_set_new(o, "result", json_string(oda_res));
    json_object_set_new(o, "reason",
                        res->oda_reason ? json_string(kv_strerror(res->oda_reason))
                        : res->oda_state == KV_ODA_ST_NO_SIGNATURE
                            ? json_string("card answered an AAC without a CDA signature")
                            : json_null());
    json_object_set_new(j, "oda", o);

    o = json_object();
    json_object_set_new(o, "verified", json_boolean(res->arqc_verified));
    json_object_set_new(o, "cvn", res->cvn >= 0 ? json_integer(res->cvn) : json_null());
    json_object_set_new(o, "atc", res->has_atc ? hex_json(res->atc, 2) : json_null());
    json_object_set_new(j, "arqc", o);

    o = json_object();
    json_object_set_new(o, "sent", json_boolean(res->arpc_sent));
    json_object_set_new(o, "method",
                        res->arpc_method ? json_integer(res->arpc_method) : json_null());
    json_object_set_new(o, "via",
                        !res->arpc_sent       ? json_null()
                        : res->arpc_via_genac ? json_string("generate_ac")
                                              : json_string("external_authenticate"));
    json_object_set_new(j, "arpc", o);

    if (res->cvc3_present) {
        o = json_object();
        json_object_set_new(o, "verified", json_boolean(res->cvc3_verified));
        json_object_set_new(j, "cvc3", o);
    }
    json_object_set_new(j, "card_decision",
                        res->card_decision < 0
                            ? json_null()
                            : json_string(kv_ac_type_name((uint8_t)res->card_decision)));
    o = json_object();
    json_object_set_new(o, "offline_pin_performed", json_boolean(res->offline_pin_performed));
    json_object_set_new(o, "offline_pin_verified", json_boolean(res->offline_pin_verified));
    json_object_set_new(o, "offline_pin_failed", json_boolean(res->offline_pin_failed));
    json_object_set_new(o, "pin_try_limit_exceeded", json_boolean(res->pin_try_limit_exceeded));
    json_object_set_new(j, "cvr", o);
    json_object_set_new(j, "tvr", hex_json(res->tvr, 5));
    json_object_set_new(j, "tsi", hex_json(res->tsi, 2));
    json_object_set_new(j, "atc", res->has_atc ? hex_json(res->atc, 2) : json_null());
    json_object_set_new(j, "pan", json_string(res->pan_masked));
    json_object_set_new(j, "amount", json_integer((json_int_t)res->amount));
    json_object_set_new(j, "currency", json_string(res->currency));
    if (gmtime_r(&tt, &tm) != NULL && strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm) > 0)
        json_object_set_new(j, "at", json_string(at));
    else
        json_object_set_new(j, "at", json_null());
    json_object_set_new(j, "decision", json_string(res->approved ? "approved" : "declined"));
    json_object_set_new(j, "reason", json_string(res->reason));
    json_object_set_new(j, "apdu_count", json_integer((json_int_t)res->apdus));
    return j;
}

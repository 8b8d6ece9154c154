/* Cardholder verification of one transaction (EMV Book 3 §10.5): see transact_int.h */
#include <stdio.h>
#include <string.h>

#include "apdu/cvm.h"
#include "apdu/dol.h"
#include "apdu/tvr.h"
#include "hsm/cvv.h"
#include "hsm/pin.h"
#include "src/base/err.h"
#include "src/transact/transact_int.h"

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
            if ((key = txn_pin_key(x, &pinkey)) == NULL) {
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
int txn_cvm_contact(txn_ctx *x)
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
void txn_cvm_contactless(txn_ctx *x)
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
int txn_online_pin_check(txn_ctx *x)
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
int txn_cvc3_check(txn_ctx *x)
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
    r = kv_hsm_cvc3_verify(x->p->hsm, &x->imk_cvc3, x->res->pan, x->res->psn, cc.atc, un, track,
                           track_len, digits, &match);
    if (r != 0)
        return r;
    x->res->cvc3_verified = match;
    return 0;
}

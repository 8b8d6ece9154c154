/*
 * One card-present EMV transaction verified through the HSM (transact.h):
 * the flow of EMV Book 3 §10, step by step. The steps live in the files
 * transact_int.h lists.
 */
#include "src/transact/transact.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apdu/cvm.h"
#include "apdu/dol.h"
#include "apdu/emv.h"
#include "apdu/emv_txn.h"
#include "apdu/oda.h"
#include "apdu/tvr.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/transact/transact_int.h"

#include <openssl/rand.h>

/* PAN, masked PAN, PSN and expiry of the card into the result. */
static void finish_pan(txn_ctx *x)
{
    kv_transact_result *res = x->res;
    /* 5F34 is n2: one BCD byte */
    unsigned psn = x->card->psn >= 0 ? (unsigned)x->card->psn & 0xFFu : 0u;

    snprintf(res->pan, sizeof(res->pan), "%s", x->card->pan);
    kv_pan_mask(res->pan, res->pan_masked);
    res->psn[0] = (char)('0' + (psn >> 4) % 10u);
    res->psn[1] = (char)('0' + (psn & 0x0Fu) % 10u);
    res->psn[2] = '\0';
    snprintf(res->expiry, sizeof(res->expiry), "%s", x->card->expiry);
    if (x->card->has_selected && x->card->selected.aid_len <= 16)
        kv_hex_encode(x->card->selected.aid, x->card->selected.aid_len, res->aid);
}

/*
 * The terminal: its configuration ([terminal], the caller's or the built-in
 * one), the CVM profile when one is named, amount, currency, time; the
 * session over it, which selects among the configuration's AIDs.
 */
static int terminal_open(txn_ctx *x, kv_reader *rd)
{
    const kv_transact_params *p = x->p;
    const kv_cvm_profile *prof = p->profile ? kv_cvm_profile_find(p->profile) : NULL;
    kv_terminal term;
    int r;

    if (p->term != NULL) {
        x->cfg = p->term;
    } else {
        kv_term_config_defaults(&x->cfg_local);
        x->cfg = &x->cfg_local;
    }
    if ((r = kv_terminal_init(&term)) != 0)
        return r;
    kv_term_config_apply_terminal(x->cfg, &term);
    if (prof != NULL) { /* --profile: its capabilities and terminal type */
        memcpy(term.capabilities, prof->capabilities, 3);
        term.terminal_type = prof->terminal_type;
        /* an ATM (9F35 14-16) dispenses cash: 9F40 byte 1 "cash" (Book 4 Annex A1, A3) */
        if (prof->terminal_type >= 14 && prof->terminal_type <= 16)
            term.add_capabilities[0] |= 0x80;
    }
    x->online_capable = kv_term_config_online_capable(term.terminal_type);
    term.amount = p->amount;
    term.currency = p->currency;
    term.txn_type = p->cash ? 1 : 0;
    term.services = p->services ? 1 : 0;
    term.pos_entry_mode = p->contactless ? 7 : 5;
    kv_terminal_set_time(&term, x->res->at);
    if ((r = kv_emv_new(rd, &term, &x->s)) != 0)
        return r;
    x->t = kv_emv_terminal(x->s);
    kv_emv_set_term_config(x->s, x->cfg);
    if (p->select_aid != NULL &&
        (r = kv_emv_choose_aid(x->s, p->select_aid, p->select_aid_len)) != 0)
        return r;
    return 0;
}

/* The selected application's configuration entry (one of the RID's defaults if none). */
static void aid_config(txn_ctx *x)
{
    const kv_emv_card *c = x->card;
    kv_term_config *tmp;

    x->aid_cfg = kv_emv_selected_config(x->s);
    if (x->aid_cfg != NULL)
        return;
    /* the configuration has no entry (an AID-list hit of another terminal): its RID's */
    memset(&x->aid_fallback, 0, sizeof(x->aid_fallback));
    if ((tmp = calloc(1, sizeof(*tmp))) != NULL) {
        kv_aid_config *a;
        kv_term_config_defaults(tmp);
        tmp->naids = 0;
        if ((a = kv_term_config_add(tmp, c->selected.aid, c->selected.aid_len)) != NULL)
            x->aid_fallback = *a;
        free(tmp);
    }
    x->aid_cfg = &x->aid_fallback;
}

/* The card's issuer action codes (absent ones as kv_taa_first says). */
static void iac_read(txn_ctx *x)
{
    const kv_emv_card *c = x->card;

    memset(&x->iac, 0, sizeof(x->iac));
    if (c->iac_default.p != NULL && c->iac_default.len == 5) {
        x->iac.has_default = 1;
        memcpy(x->iac.iac_default, c->iac_default.p, 5);
    }
    if (c->iac_denial.p != NULL && c->iac_denial.len == 5) {
        x->iac.has_denial = 1;
        memcpy(x->iac.iac_denial, c->iac_denial.p, 5);
    }
    if (c->iac_online.p != NULL && c->iac_online.len == 5) {
        x->iac.has_online = 1;
        memcpy(x->iac.iac_online, c->iac_online.p, 5);
    }
}

/* A number 1..99 for random transaction selection, uniform, from the CSPRNG. */
static int random_1_99(unsigned *out)
{
    uint8_t b;

    do {
        if (RAND_bytes(&b, 1) != 1)
            return KV_ERR_INTERNAL;
    } while (b >= 198);
    *out = 1u + b % 99u;
    return 0;
}

/* A big-endian counter of n bytes (9F14, 9F23: 1 byte; 9F36, 9F13: 2). */
static unsigned be_value(const uint8_t *v, size_t n)
{
    unsigned x = 0;
    for (size_t i = 0; i < n && i < 4; i++)
        x = x << 8 | v[i];
    return x;
}

/*
 * Terminal risk management (Book 3 §10.6): floor limit with the store's
 * earlier approvals, random selection, velocity checking, the exception file
 * (kortvagt's block list through the caller's hook). Performed whatever the
 * AIP says: the schemes ask for the floor limit check on every transaction.
 */
static int risk_management(txn_ctx *x)
{
    const kv_transact_params *p = x->p;
    const kv_emv_card *c = x->card;
    kv_trm_in in;
    const uint8_t *v;
    size_t n;
    int r, listed = 0;
    uint64_t prior = 0;

    memset(&in, 0, sizeof(in));
    in.amount = p->amount;
    if (p->exception_check != NULL) {
        if ((r = p->exception_check(p->exception_ctx, x->res->pan, &listed, &prior)) != 0)
            return r;
        in.on_exception_file = listed != 0;
        in.prior_amount = prior;
    }
    if (kv_emv_find(x->s, 0x9F14, &v, &n) == 0 && n >= 1) {
        in.has_lcol = 1;
        in.lcol = be_value(v, n);
    }
    if (kv_emv_find(x->s, 0x9F23, &v, &n) == 0 && n >= 1) {
        in.has_ucol = 1;
        in.ucol = be_value(v, n);
    }
    if (c->has_atc) {
        in.has_atc = 1;
        in.atc = be_value(c->atc, 2);
    }
    if (c->has_last_online_atc) {
        in.has_last_online_atc = 1;
        in.last_online_atc = be_value(c->last_online_atc, 2);
    }
    if (p->random_override >= 1 && p->random_override <= 99)
        in.random = p->random_override;
    else if ((r = random_1_99(&in.random)) != 0)
        return r;
    in.merchant_forced_online = p->force_online != 0;
    kv_trm_run(&in, x->aid_cfg, x->res->tvr, x->res->tsi);
    return 0;
}

/* The issuer keys: a missing IMK is a configuration error before the card is touched. */
static int keys_find(txn_ctx *x)
{
    const kv_transact_params *p = x->p;
    int r;

    if ((r = kv_hsm_key_find(p->hsm, p->imk_ac ? p->imk_ac : KV_TRANSACT_DEFAULT_IMK_AC,
                             &x->imk)) != 0)
        return r;
    if (p->contactless &&
        (r = kv_hsm_key_find(p->hsm, p->imk_cvc3 ? p->imk_cvc3 : KV_TRANSACT_DEFAULT_IMK_CVC3,
                             &x->imk_cvc3)) != 0)
        return r;
    return 0;
}

/* Cardholder verification (§10.5), the online PIN and the contactless CVC3. */
static int cardholder_verification(txn_ctx *x)
{
    int r;

    if (x->p->contactless)
        txn_cvm_contactless(x);
    else if ((r = txn_cvm_contact(x)) != 0)
        return r;
    if (x->online_pin_captured && (r = txn_online_pin_check(x)) != 0)
        return r;
    if (x->p->contactless && (r = txn_cvc3_check(x)) != 0)
        return r;
    return 0;
}

/* The final result of an ARQC that went online: the 2nd GENERATE AC and its outcome. */
static int complete_online(txn_ctx *x)
{
    kv_transact_result *res = x->res;
    int r;

    if ((r = txn_online(x)) != 0)
        return r;
    /* the issuer's answer: ARPC, ARC and scripts */
    if ((r = txn_scripts_prepare(x)) != 0)
        return r;
    if ((r = txn_issuer_authenticate(x)) != 0)
        return r;
    if ((r = txn_scripts_run(x, 0x71)) != 0)
        return r;
    if ((r = txn_second_ac(x, x->issuer_ok ? KV_AC_TC : KV_AC_AAC, res->arc)) != 0)
        return r;
    if ((r = txn_scripts_run(x, 0x72)) != 0)
        return r;
    if (x->issuer_ok && res->card_decision != KV_AC_TC)
        x->issuer_ok = 0,
        res->reason = res->arpc_sent && kv_tvr_isset(res->tvr, KV_TVR_ISSUER_AUTH_FAILED)
                          ? "issuer authentication failed"
                          : "card declined (AAC)";
    else if (x->issuer_ok && res->cda_second == 2)
        x->issuer_ok = 0, res->reason = "CDA failed on the 2nd GENERATE AC";
    res->approved = x->issuer_ok && res->card_decision == KV_AC_TC;
    res->outcome = res->approved ? KV_TXN_OUT_APPROVED_ONLINE : KV_TXN_OUT_DECLINED_ONLINE;
    return 0;
}

/* An ARQC whose CDA signature failed: declined offline (Book 4), the card's AAC asked for. */
static int decline_cda_failed(txn_ctx *x)
{
    static const uint8_t z1[2] = {'Z', '1'};
    kv_transact_result *res = x->res;
    int r;

    memcpy(res->arc, z1, 2);
    if ((r = txn_second_ac(x, KV_AC_AAC, z1)) != 0)
        return r;
    res->approved = 0;
    res->reason = "CDA failed";
    res->outcome = KV_TXN_OUT_DECLINED_OFFLINE;
    return 0;
}

/*
 * No issuer answer (--unable-online, Book 3 §10.7 / Book 4 §6.3.2): the
 * default action codes decide, ARC "Y3" (approve) or "Z3" (decline) in the
 * 2nd GENERATE AC; the card has the last word.
 */
static int complete_unable_online(txn_ctx *x)
{
    static const uint8_t y3[2] = {'Y', '3'}, z3[2] = {'Z', '3'};
    kv_transact_result *res = x->res;
    int d = kv_taa_unable_online(res->tvr, x->aid_cfg, &x->iac), r;

    memcpy(res->arc, d == KV_TAA_TC ? y3 : z3, 2);
    if ((r = txn_second_ac(x, d == KV_TAA_TC ? KV_AC_TC : KV_AC_AAC, res->arc)) != 0)
        return r;
    res->approved = d == KV_TAA_TC && res->card_decision == KV_AC_TC && res->cda_second != 2;
    res->reason = res->approved                    ? "approved"
                  : d != KV_TAA_TC                 ? "unable to go online: default action codes"
                  : res->card_decision != KV_AC_TC ? "card declined (AAC)"
                                                   : "CDA failed on the 2nd GENERATE AC";
    res->outcome =
        res->approved ? KV_TXN_OUT_APPROVED_UNABLE_ONLINE : KV_TXN_OUT_DECLINED_UNABLE_ONLINE;
    return 0;
}

/* The card's answer to the 1st GENERATE AC decides what follows (card action analysis). */
static int card_action(txn_ctx *x)
{
    kv_transact_result *res = x->res;
    int first = res->first_ac;

    if (first == KV_AC_AAC) {
        res->approved = 0;
        res->reason = res->first_ac_requested == KV_AC_AAC ? "terminal action analysis: denial"
                                                           : "card declined (AAC)";
        res->outcome = KV_TXN_OUT_DECLINED_OFFLINE;
        return 0;
    }
    /* a signature that fails on a TC or an ARQC is an offline decline */
    if (x->cda_requested && x->oda.state != KV_ODA_ST_OK) {
        if (first == KV_AC_ARQC)
            return decline_cda_failed(x);
        res->approved = 0;
        res->reason = "CDA failed";
        res->outcome = KV_TXN_OUT_DECLINED_OFFLINE;
        return 0;
    }
    if (first == KV_AC_TC) {
        if (res->first_ac_requested != KV_AC_TC) {
            /* a card may only lower what it is asked for (Book 3 §6.5.5.4) */
            res->approved = 0;
            res->reason = "card answered a TC to a request for less";
            res->outcome = KV_TXN_OUT_DECLINED_OFFLINE;
            return 0;
        }
        res->approved = 1;
        res->reason = "approved";
        res->outcome = KV_TXN_OUT_APPROVED_OFFLINE;
        return 0;
    }
    if (first != KV_AC_ARQC || res->first_ac_requested == KV_AC_AAC) {
        res->approved = 0;
        res->reason = first != KV_AC_ARQC ? "card answered an unknown cryptogram type"
                                          : "card answered an ARQC to an AAC request";
        res->outcome = KV_TXN_OUT_DECLINED_OFFLINE;
        return 0;
    }
    if (x->p->unable_online)
        return complete_unable_online(x);
    x->online = 1;
    return complete_online(x);
}

/* see transact.h */
int kv_transact_run(kv_reader *rd, const kv_transact_params *p, kv_transact_result *res)
{
    int r = KV_ERR_INTERNAL, taa;
    txn_ctx *x;

    memset(res, 0, sizeof(*res));
    res->cvn = -1;
    res->pin_try_counter_before = -1;
    res->pin_try_counter_after = -1;
    res->amount = p->amount;
    res->card_decision = -1;
    res->first_ac_requested = -1;
    res->first_ac = -1;
    res->second_ac = -1;
    res->outcome = KV_TXN_OUT_TERMINATED;
    kv_cvr_from_iad(NULL, 0, &res->cvr);
    snprintf(res->currency, sizeof(res->currency), "%s", p->currency_code);
    res->at = p->now ? p->now : (long long)time(NULL);
    res->reason = "transaction not completed";
    if (p->hsm == NULL || (p->profile != NULL && kv_cvm_profile_find(p->profile) == NULL))
        return KV_ERR_ARG;
    if ((x = calloc(1, sizeof(*x))) == NULL)
        return KV_ERR_NOMEM;
    x->p = p;
    x->res = res;

    if ((r = terminal_open(x, rd)) != 0)
        goto out;
    if ((r = keys_find(x)) != 0)
        goto out;

    /* selection, GPO, records, GET DATA */
    if ((r = kv_emv_read_card(x->s, p->contactless ? KV_EMV_IFACE_CONTACTLESS
                                                   : KV_EMV_IFACE_CONTACT)) != 0)
        goto out;
    x->card = kv_emv_card_data(x->s);
    finish_pan(x);
    aid_config(x);
    iac_read(x);
    /* mandatory data (Book 3 §7.2): missing ones terminate the transaction */
    if ((r = kv_emv_check_mandatory(x->s, 1)) != 0) {
        if (r != KV_ERR_CARD_MISSING)
            goto out;
        kv_tvr_set(res->tvr, KV_TVR_ICC_DATA_MISSING);
        res->reason = "mandatory data missing (5A, 5F24, 8C or 8D)";
        res->outcome = KV_TXN_OUT_TERMINATED;
        r = 0;
        goto out;
    }
    /* the GPO's PDOL data, rebuilt with the same terminal data (CDA hashes it) */
    if (x->card->pdol.len > 0 &&
        (r = kv_dol_build(x->card->pdol.p, x->card->pdol.len, x->t, NULL, NULL, x->pdol_data,
                          sizeof(x->pdol_data), &x->pdol_len)) != 0)
        goto out;

    /* offline data authentication (§10.3) */
    if ((r = txn_oda_begin(x)) != 0)
        goto out;

    /* processing restrictions (§10.4) */
    {
        kv_restrict_card rc;
        kv_restrict_card_from_session(x->s, &rc);
        kv_emv_restrictions(&rc, x->t, res->tvr);
    }

    /* cardholder verification (§10.5) */
    if ((r = cardholder_verification(x)) != 0)
        goto out;

    /* terminal risk management (§10.6) and terminal action analysis (§10.7) */
    if ((r = risk_management(x)) != 0)
        goto out;
    taa = kv_taa_first(res->tvr, x->aid_cfg, &x->iac, x->online_capable);

    /* 1st GENERATE AC (§10.8), CDA when selected; the cryptogram checked in the HSM */
    if ((r = txn_first_ac(x, (uint8_t)(taa == KV_TAA_TC     ? KV_AC_TC
                                       : taa == KV_TAA_ARQC ? KV_AC_ARQC
                                                            : KV_AC_AAC))) != 0)
        goto out;
    if ((r = txn_arqc_verify(x)) != 0)
        goto out;

    /* card action analysis, online processing, completion (§10.8-10.11) */
    if ((r = card_action(x)) != 0)
        goto out;
    if (res->approved)
        res->reason = "approved";
    kv_tsi_set(res->tsi, KV_TSI_CRM_PERFORMED);
    r = 0;
out:
    if (r != 0) {
        res->approved = 0;
        res->reason = "transaction not completed";
        res->outcome = KV_TXN_OUT_TERMINATED;
    }
    res->apdus = kv_reader_apdu_count(rd);
    if (x->pin_owned)
        kv_secbuf_free(x->pin);
    kv_emv_free(x->s);
    kv_wipe(x, sizeof(*x));
    free(x);
    return r;
}

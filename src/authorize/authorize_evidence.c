/*
 * see authorize.h and authorize_int.h — the JSON the authorize module writes:
 * the response object of src/RULES.md §1 and the evidence records
 * (evidence.h) of decisions, reversals and card-settings changes. Key names
 * and public transaction data only: never a PIN block, PVV, offset or CVC.
 */
#include "src/authorize/authorize_int.h"
#include "src/base/caltime.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/base/jsonw.h"
#include "src/evidence/evidence.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *outcome_name(kv_factor_outcome o)
{
    switch (o) {
    case KV_FACTOR_VERIFIED:
        return "verified";
    case KV_FACTOR_FAILED_UPSTREAM:
    case KV_FACTOR_FAILED_HSM:
        return "failed";
    case KV_FACTOR_REPLAYED:
        return "replayed";
    case KV_FACTOR_NOT_CHECKED:
        return "not_checked";
    }
    return "?";
}

static const char *proof_name(kv_authz_proof p)
{
    switch (p) {
    case KV_PROOF_HSM:
        return "hsm";
    case KV_PROOF_CVR:
        return "cvr";
    case KV_PROOF_ASSERTED:
        return "asserted";
    case KV_PROOF_NONE:
        break;
    }
    return "none";
}

static int proven(kv_authz_proof p)
{
    return p == KV_PROOF_HSM || p == KV_PROOF_CVR;
}

static const char *counter_key(kv_family fam, kv_counter_kind kind)
{
    if (fam == KV_FAMILY_REMOTE)
        return kind == KV_COUNTER_COUNT ? "remote_count" : "remote_amount";
    return kind == KV_COUNTER_COUNT ? "contactless_count" : "contactless_amount";
}

static void write_counters(kv_jsonw *w, int has, kv_family fam, kv_counter_kind kind, int64_t value)
{
    kv_jsonw_object(w);
    if (has)
        kv_jsonw_kint(w, counter_key(fam, kind), value);
    kv_jsonw_end(w);
}

/* The response object of src/RULES.md §1. */
static void write_result(kv_jsonw *w, const kv_authz_result *res, int with_evidence)
{
    const char *names[3];
    size_t n = kv_sca_category_names(res->sca.categories, names);

    kv_jsonw_object(w);
    kv_jsonw_kstr(w, "decision", kv_decision_name(res->decision));
    kv_jsonw_kstr(w, "reason", res->reason);
    kv_jsonw_kstr(w, "rule", res->rule);
    kv_jsonw_key(w, "sca");
    kv_jsonw_object(w);
    kv_jsonw_kbool(w, "satisfied", res->sca.satisfied);
    kv_jsonw_key(w, "categories");
    kv_jsonw_array(w);
    for (size_t i = 0; i < n; i++)
        kv_jsonw_str(w, names[i]);
    kv_jsonw_end(w);
    kv_jsonw_key(w, "dynamic_linking");
    if (res->sca.dynamic_linking < 0)
        kv_jsonw_null(w);
    else
        kv_jsonw_bool(w, res->sca.dynamic_linking);
    kv_jsonw_end(w);
    kv_jsonw_kstr(w, "exemption", res->exemption); /* NULL: null */
    kv_jsonw_key(w, "counters");
    write_counters(w, res->has_counter, res->family, res->counter_kind, res->counter_value);
    if (with_evidence) {
        char id[24];
        snprintf(id, sizeof(id), "%lld", (long long)res->evidence_id);
        kv_jsonw_kstr(w, "evidence", id);
    }
    kv_jsonw_end(w);
}

char *kv_authz_result_text(const kv_authz_result *res, int with_evidence, size_t *len)
{
    kv_jsonw w;
    kv_jsonw_init(&w);
    write_result(&w, res, with_evidence);
    return kv_jsonw_finish(&w, len);
}

json_t *kv_authz_result_json(const kv_authz_result *res, int with_evidence)
{
    size_t len = 0;
    char *text = kv_authz_result_text(res, with_evidence, &len);
    json_t *j = text != NULL ? json_loadb(text, len, 0, NULL) : NULL;
    free(text);
    return j;
}

static void write_factor(kv_jsonw *w, const kv_auth_factor *f, kv_factor_outcome outcome,
                         const kv_authz_factor_note *note)
{
    char hex[2 * KV_AC_DATA_MAX + 1];
    kv_jsonw_object(w);
    kv_jsonw_kstr(w, "type", kv_sca_factor_name(f->type));
    kv_jsonw_kstr(w, "source", f->upstream ? "upstream" : "hsm");
    kv_jsonw_kstr(w, "outcome", outcome_name(outcome));
    /* src/RULES.md §2: what kortvagt proved, apart from what the request asserted */
    kv_jsonw_kbool(w, "proven", proven(note->proof));
    kv_jsonw_kstr(w, "proof", proof_name(note->proof));
    if (note->has_cvr) {
        kv_jsonw_key(w, "cvr");
        kv_jsonw_object(w);
        kv_jsonw_kstr(w, "layout", kv_cvr_layout_name(note->cvr.layout));
        kv_hex_encode(note->cvr.cvr, note->cvr.cvr_len, hex);
        kv_jsonw_kstr(w, "bytes", hex);
        kv_jsonw_kstr(w, "offline_pin", kv_cvr_pin_name(note->cvr.offline_pin));
        kv_jsonw_kbool(w, "pin_try_limit_exceeded", note->cvr.pin_try_limit_exceeded);
        kv_jsonw_end(w);
    }
    if (f->has_binding) {
        kv_jsonw_kint(w, "bound_amount", f->bound_amount);
        kv_jsonw_kstr(w, "bound_payee", f->bound_payee);
    }
    /* key names and public transaction data only: never the PIN block, PVV, offset or CVC */
    if (!f->upstream) {
        switch (f->type) {
        case KV_FACTOR_PIN_ONLINE:
            kv_jsonw_kint(w, "format", f->pin_format);
            kv_jsonw_kstr(w, "pin_key", f->pin_key);
            kv_jsonw_kstr(w, "pvk", f->pvk);
            kv_jsonw_kstr(w, "method", f->ibm3624 ? "ibm3624" : "pvv");
            if (!f->ibm3624)
                kv_jsonw_kint(w, "pvki", f->pvki);
            break;
        case KV_FACTOR_CHIP_CRYPTOGRAM:
            kv_jsonw_kstr(w, "imk", f->imk);
            kv_jsonw_kint(w, "cvn", f->cvn);
            kv_hex_encode(f->arqc, 8, hex);
            kv_jsonw_kstr(w, "arqc", hex);
            kv_hex_encode(f->atc, 2, hex);
            kv_jsonw_kstr(w, "atc", hex);
            if (f->has_un) {
                kv_hex_encode(f->un, 4, hex);
                kv_jsonw_kstr(w, "un", hex);
            }
            kv_hex_encode(f->data, f->data_len, hex);
            kv_jsonw_kstr(w, "data", hex);
            break;
        case KV_FACTOR_CVC3:
            kv_jsonw_kstr(w, "imk", f->imk);
            kv_hex_encode(f->atc, 2, hex);
            kv_jsonw_kstr(w, "atc", hex);
            kv_hex_encode(f->un, 4, hex);
            kv_jsonw_kstr(w, "un", hex);
            break;
        default:
            kv_jsonw_kstr(w, "cvk", f->cvk);
            break;
        }
    }
    kv_jsonw_end(w);
}

/*
 * evidence.h "verification": what the liability engine reads. "factors" are
 * the factors that counted for SCA (src/RULES.md §1, asserted ones included);
 * "proven_factors" those kortvagt proved (an HSM match; pin_offline through
 * the CVR of a verified cryptogram); "asserted_factors" those the request
 * only asserted. "method" and "proven" rest on the proven factors alone.
 */
static void write_verification(kv_jsonw *w, const kv_auth_request *req, const kv_sca_factor *sf,
                               const kv_authz_factor_note *notes, const kv_authz_result *res)
{
    int online_pin = 0, offline_pin = 0, offline_claimed = 0, cvc2 = 0, cvr_pin = 0;
    const char *method;
    int is_proven;

    for (size_t i = 0; i < req->n_factors; i++) {
        const kv_auth_factor *f = &req->factors[i];
        if (notes[i].has_cvr && notes[i].proof == KV_PROOF_HSM &&
            notes[i].cvr.offline_pin == KV_CVR_PIN_VERIFIED)
            cvr_pin = 1;
        if (sf[i].outcome != KV_FACTOR_VERIFIED)
            continue;
        if (f->type == KV_FACTOR_PIN_ONLINE && notes[i].proof == KV_PROOF_HSM)
            online_pin = 1;
        if (f->type == KV_FACTOR_PIN_OFFLINE && notes[i].proof == KV_PROOF_CVR)
            offline_pin = 1;
        if (f->type == KV_FACTOR_PIN_OFFLINE)
            offline_claimed = 1;
        if (f->type == KV_FACTOR_CVC2 && notes[i].proof == KV_PROOF_HSM)
            cvc2 = 1;
    }
    if (online_pin) {
        method = "online_pin"; /* the PIN block matched in the HSM */
        is_proven = 1;
    } else if (offline_pin || (cvr_pin && !offline_claimed)) {
        method = "offline_pin"; /* the CVR inside the HSM-verified ARQC says so */
        is_proven = 1;
    } else if (res->sca.proven_satisfied) {
        method = "sca";
        is_proven = 1;
    } else if (offline_claimed) {
        method = "offline_pin"; /* asserted upstream: no verified CVR shows it */
        is_proven = 0;
    } else if (res->sca.satisfied) {
        method = "sca"; /* satisfied for §1 on asserted factors: not proven */
        is_proven = 0;
    } else if (cvc2) {
        method = "cvc2";
        is_proven = 0;
    } else {
        method = "none";
        is_proven = 0;
    }
    kv_jsonw_object(w);
    kv_jsonw_kstr(w, "method", method);
    kv_jsonw_key(w, "factors");
    kv_jsonw_array(w);
    for (size_t i = 0; i < req->n_factors; i++)
        if (sf[i].outcome == KV_FACTOR_VERIFIED)
            kv_jsonw_str(w, kv_sca_factor_name(req->factors[i].type));
    kv_jsonw_end(w);
    kv_jsonw_kbool(w, "proven", is_proven);
    kv_jsonw_kbool(w, "sca_required",
                   !(res->decision == KV_DECISION_APPROVE && !res->sca.satisfied));
    kv_jsonw_kbool(w, "per_transaction_code", 0);
    kv_jsonw_key(w, "proven_factors");
    kv_jsonw_array(w);
    for (size_t i = 0; i < req->n_factors; i++)
        if (sf[i].outcome == KV_FACTOR_VERIFIED && proven(notes[i].proof))
            kv_jsonw_str(w, kv_sca_factor_name(req->factors[i].type));
    if (cvr_pin && !offline_claimed)
        kv_jsonw_str(w, "pin_offline");
    kv_jsonw_end(w);
    kv_jsonw_key(w, "asserted_factors");
    kv_jsonw_array(w);
    for (size_t i = 0; i < req->n_factors; i++)
        if (sf[i].outcome == KV_FACTOR_VERIFIED && notes[i].proof == KV_PROOF_ASSERTED)
            kv_jsonw_str(w, kv_sca_factor_name(req->factors[i].type));
    kv_jsonw_end(w);
    kv_jsonw_end(w);
}

static void write_card(kv_jsonw *w, const uint8_t token[KV_TOKEN_LEN], const char *masked,
                       const char *expiry, const char *psn)
{
    char hex[2 * KV_TOKEN_LEN + 1];
    kv_hex_encode(token, KV_TOKEN_LEN, hex);
    kv_jsonw_key(w, "card");
    kv_jsonw_object(w);
    kv_jsonw_kstr(w, "token", hex);
    kv_jsonw_kstr(w, "pan", masked);
    if (expiry != NULL)
        kv_jsonw_kstr(w, "expiry", expiry);
    if (psn != NULL && psn[0] != '\0')
        kv_jsonw_kstr(w, "psn", psn);
    kv_jsonw_end(w);
}

static void write_request(kv_jsonw *w, const kv_auth_request *req, const kv_authz_times *tm)
{
    char t[KV_TIME_TEXT];
    kv_time_format(tm->has_request_at ? tm->request_at : tm->at, t);
    kv_jsonw_key(w, "request");
    kv_jsonw_object(w);
    kv_jsonw_kstr(w, "at", t);
    if (req->has_request_id)
        kv_jsonw_kstr(w, "request_id", req->request_id);
    kv_jsonw_kstr(w, "channel", kv_channel_name(req->channel));
    kv_jsonw_kint(w, "amount", req->amount);
    kv_jsonw_kstr(w, "currency", req->currency);
    kv_jsonw_key(w, "merchant");
    kv_jsonw_object(w);
    kv_jsonw_kstr(w, "name", req->merchant_name);
    kv_jsonw_kstr(w, "mcc", req->mcc);
    if (req->country[0] != '\0')
        kv_jsonw_kstr(w, "country", req->country);
    kv_jsonw_end(w);
    kv_jsonw_kbool(w, "trusted_beneficiary", req->trusted_beneficiary);
    if (req->has_recurring) {
        kv_jsonw_key(w, "recurring");
        kv_jsonw_object(w);
        kv_jsonw_kstr(w, "series", req->series);
        kv_jsonw_kbool(w, "first", req->recurring_first);
        kv_jsonw_end(w);
    }
    kv_jsonw_end(w);
}

/* Append an evidence record whose members w holds (an open object, ended here). */
static int append_evidence(kv_authz *a, kv_jsonw *w, const char *type, int64_t time,
                           int64_t recorded, int64_t *id)
{
    size_t len = 0;
    char *text;
    int r;
    kv_jsonw_end(w);
    if ((text = kv_jsonw_finish(w, &len)) == NULL || len < 2) {
        free(text);
        return kv_authz_set_err(a, KV_ERR_NOMEM, "evidence: out of memory");
    }
    /* the members without the braces */
    r = kv_evidence_append_text(a->cfg.store, &a->cfg.evidence_mac, type, time, recorded, text + 1,
                                len - 2, id);
    free(text);
    if (r <= KV_ERR_HSM && r > KV_ERR_STORE)
        kv_authz_set_err(a, r, "evidence MAC: %s", kv_strerror(r));
    else if (r != 0)
        kv_authz_store_err(a, r);
    return r;
}

/* see authorize_int.h */
int kv_authz_record_decision(kv_authz *a, const kv_auth_request *req,
                             const uint8_t token[KV_TOKEN_LEN], const char *masked,
                             const kv_sca_factor *sf, const kv_authz_factor_note *notes,
                             kv_authz_result *res, const kv_authz_times *t)
{
    char tx[KV_TIME_TEXT];
    kv_jsonw w;
    int r;
    kv_jsonw_init(&w);
    kv_jsonw_object(&w);
    write_card(&w, token, masked, req->expiry, req->psn);
    write_request(&w, req, t);
    /* both times: the request's "at" and the server clock, and which one decided */
    kv_jsonw_key(&w, "clock");
    kv_jsonw_object(&w);
    kv_jsonw_kstr(&w, "basis", t->server_time || !t->has_request_at ? "server" : "request");
    kv_time_format(t->server, tx);
    kv_jsonw_kstr(&w, "server", tx);
    kv_jsonw_key(&w, "request_at");
    if (t->has_request_at) {
        kv_time_format(t->request_at, tx);
        kv_jsonw_str(&w, tx);
    } else {
        kv_jsonw_null(&w);
    }
    kv_time_format(t->at, tx);
    kv_jsonw_kstr(&w, "decided_for", tx);
    kv_jsonw_end(&w);
    kv_jsonw_key(&w, "factors");
    kv_jsonw_array(&w);
    for (size_t i = 0; i < req->n_factors; i++)
        write_factor(&w, &req->factors[i], sf[i].outcome, &notes[i]);
    kv_jsonw_end(&w);
    kv_jsonw_key(&w, "verification");
    write_verification(&w, req, sf, notes, res);
    kv_jsonw_key(&w, "response");
    write_result(&w, res, 0);
    r = append_evidence(a, &w, "authorization", t->at, t->server, &res->evidence_id);
    kv_jsonw_free(&w);
    return r;
}

json_t *kv_authz_reversal_json(const kv_authz_reversal *rv)
{
    char a[24], b[24];
    kv_jsonw w;
    size_t len = 0;
    char *text;
    json_t *j;
    snprintf(a, sizeof(a), "%lld", (long long)rv->reversed_id);
    snprintf(b, sizeof(b), "%lld", (long long)rv->evidence_id);
    kv_jsonw_init(&w);
    kv_jsonw_object(&w);
    kv_jsonw_kstr(&w, "decision", "reversed");
    kv_jsonw_kstr(&w, "reversed", a);
    kv_jsonw_kstr(&w, "evidence", b);
    kv_jsonw_key(&w, "counters");
    write_counters(&w, rv->has_counter, rv->family, rv->counter_kind, rv->counter_value);
    kv_jsonw_end(&w);
    text = kv_jsonw_finish(&w, &len);
    j = text != NULL ? json_loadb(text, len, 0, NULL) : NULL;
    free(text);
    return j;
}

/* see authorize_int.h */
int kv_authz_record_reversal(kv_authz *a, const kv_txn *txn, const char *masked,
                             kv_authz_reversal *out, int64_t now)
{
    kv_jsonw w;
    char rid[24];
    int r;
    snprintf(rid, sizeof(rid), "%lld", (long long)out->reversed_id);
    kv_jsonw_init(&w);
    kv_jsonw_object(&w);
    kv_jsonw_kstr(&w, "reverses", rid);
    write_card(&w, txn->token, masked, NULL, NULL);
    kv_jsonw_kint(&w, "amount", txn->amount);
    kv_jsonw_key(&w, "counters");
    write_counters(&w, out->has_counter, out->family, out->counter_kind, out->counter_value);
    r = append_evidence(a, &w, "reversal", now, now, &out->evidence_id);
    kv_jsonw_free(&w);
    return r;
}

/* a limit: -1 is "no limit", written as null */
static void write_limit(kv_jsonw *w, const char *key, int64_t v)
{
    kv_jsonw_key(w, key);
    if (v < 0)
        kv_jsonw_null(w);
    else
        kv_jsonw_int(w, v);
}

static void write_settings(kv_jsonw *w, const kv_card_policy *p)
{
    kv_jsonw_key(w, "settings");
    kv_jsonw_object(w);
    kv_jsonw_kbool(w, "ecommerce_enabled", p->ecommerce_enabled);
    write_limit(w, "spend_single_max", p->spend_single_max);
    write_limit(w, "spend_daily_max", p->spend_daily_max);
    kv_jsonw_kint(w, "sca_failures", p->sca_failures);
    kv_jsonw_end(w);
}

/* see authorize_int.h */
int kv_authz_record_settings(kv_authz *a, const uint8_t token[KV_TOKEN_LEN],
                             const kv_card_state *card, const kv_card_settings_change *ch,
                             int sca_failures_before, int64_t now, int64_t *id)
{
    kv_jsonw w;
    int r;
    kv_jsonw_init(&w);
    kv_jsonw_object(&w);
    write_card(&w, token, card->pan_masked, NULL, NULL);
    kv_jsonw_key(&w, "changes");
    kv_jsonw_object(&w);
    if (ch->set_ecommerce)
        kv_jsonw_kbool(&w, "ecommerce_enabled", ch->ecommerce_enabled);
    if (ch->set_single)
        write_limit(&w, "spend_single_max", ch->spend_single_max);
    if (ch->set_daily)
        write_limit(&w, "spend_daily_max", ch->spend_daily_max);
    if (ch->unblock_sca) {
        kv_jsonw_kbool(&w, "unblock_sca", 1);
        kv_jsonw_kint(&w, "sca_failures_before", sca_failures_before);
    }
    kv_jsonw_end(&w);
    write_settings(&w, &card->policy);
    r = append_evidence(a, &w, "card_settings", now, now, id);
    kv_jsonw_free(&w);
    return r;
}

/* see authorize.h */
#include "src/authorize/authorize.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/base/secure.h"
#include "src/evidence/evidence.h"
#include "src/base/jsonw.h"
#include "src/base/caltime.h"
#include "apdu/emv_txn.h"

#include <openssl/evp.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOKEN_CACHE_SLOTS 64

struct token_slot {
    int used;
    char pan[20];
    uint8_t token[KV_TOKEN_LEN];
};

struct kv_authz {
    kv_authz_config cfg;
    struct token_slot cache[TOKEN_CACHE_SLOTS];
    char err[256];
};

static int64_t default_clock(void)
{
    return (int64_t)time(NULL);
}

int kv_authz_new(const kv_authz_config *cfg, kv_authz **out)
{
    kv_authz *a = calloc(1, sizeof(*a));
    *out = NULL;
    if (a == NULL)
        return KV_ERR_NOMEM;
    a->cfg = *cfg;
    if (a->cfg.clock == NULL)
        a->cfg.clock = default_clock;
    *out = a;
    return 0;
}

void kv_authz_free(kv_authz *a)
{
    if (a == NULL)
        return;
    kv_wipe(a->cache, sizeof(a->cache));
    free(a);
}

const char *kv_authz_last_error(const kv_authz *a)
{
    return a->err;
}

static int set_err(kv_authz *a, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int set_err(kv_authz *a, int r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->err, sizeof(a->err), fmt, ap);
    va_end(ap);
    return r;
}

static int store_err(kv_authz *a, int r)
{
    return set_err(a, r, "store: %s", kv_store_last_error(a->cfg.store));
}

/*
 * The PAN token, from a small direct-mapped cache or the HSM. The cache
 * lookup compares PANs in constant time (the slot index leaks a few bits of
 * a hash of the PAN to timing, which is no more than the token itself).
 */
static int pan_token(kv_authz *a, const char *pan, uint8_t out[KV_TOKEN_LEN])
{
    uint32_t h = 2166136261u; /* FNV-1a */
    struct token_slot *slot;
    char padded[20];
    int r;

    for (const char *p = pan; *p != '\0'; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    slot = &a->cache[h % TOKEN_CACHE_SLOTS];
    memset(padded, 0, sizeof(padded));
    snprintf(padded, sizeof(padded), "%s", pan);
    if (slot->used && kv_ct_equal(slot->pan, padded, sizeof(padded))) {
        memcpy(out, slot->token, KV_TOKEN_LEN);
        kv_wipe(padded, sizeof(padded));
        return 0;
    }
    if ((r = kv_pan_token(&a->cfg.token_mac, pan, out)) != 0) {
        kv_wipe(padded, sizeof(padded));
        return set_err(a, r, "PAN token: %s", kv_strerror(r));
    }
    memcpy(slot->pan, padded, sizeof(padded));
    memcpy(slot->token, out, KV_TOKEN_LEN);
    slot->used = 1;
    kv_wipe(padded, sizeof(padded));
    return 0;
}

static int sha256_parts(const void *a, size_t alen, const void *b, size_t blen, const void *c,
                        size_t clen, uint8_t out[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int n = 0;
    int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(md, a, alen) == 1 && EVP_DigestUpdate(md, b, blen) == 1 &&
             EVP_DigestUpdate(md, c, clen) == 1 && EVP_DigestFinal_ex(md, out, &n) == 1;
    EVP_MD_CTX_free(md);
    return ok ? 0 : KV_ERR_INTERNAL;
}

/*
 * The one-time-use key of a matched factor's authentication code (RTS Art.
 * 4(3)(b)... "accepted once"): the ARQC with its ATC, the CVC3 with its ATC
 * and UN, a PIN block with random fill (formats 1, 3, 4). A format 0 block
 * and a CVC2 are the same on every use and have none. Returns 1 when there
 * is a key.
 */
static int code_key(const uint8_t token[KV_TOKEN_LEN], const kv_auth_factor *f, uint8_t out[32])
{
    uint8_t buf[16];
    switch (f->type) {
    case KV_FACTOR_CHIP_CRYPTOGRAM:
        memcpy(buf, f->atc, 2);
        memcpy(buf + 2, f->arqc, 8);
        return sha256_parts("kortvagt arqc", 13, token, KV_TOKEN_LEN, buf, 10, out) == 0;
    case KV_FACTOR_CVC3:
        memcpy(buf, f->atc, 2);
        memcpy(buf + 2, f->un, 4);
        memcpy(buf + 6, f->value, 5);
        return sha256_parts("kortvagt cvc3", 13, token, KV_TOKEN_LEN, buf, 11, out) == 0;
    case KV_FACTOR_PIN_ONLINE:
        if (f->pin_format == 0)
            return 0;
        return sha256_parts("kortvagt pinblock", 17, token, KV_TOKEN_LEN, f->pin_block,
                            f->pin_block_len, out) == 0;
    default:
        return 0;
    }
}

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
    }
    return "?";
}

static const char *counter_key(kv_family fam, kv_counter_kind kind)
{
    if (fam == KV_FAMILY_REMOTE)
        return kind == KV_COUNTER_COUNT ? "remote_count" : "remote_amount";
    return kind == KV_COUNTER_COUNT ? "contactless_count" : "contactless_amount";
}

/* The family shown in a response: the channel's, or contactless for non-remote channels. */
static kv_family shown_family(kv_channel ch)
{
    if (ch == KV_CH_MOTO)
        return KV_FAMILY_NONE;
    return ch == KV_CH_ECOMMERCE ? KV_FAMILY_REMOTE : KV_FAMILY_CONTACTLESS;
}

static void fill_counter(const kv_limits_config *l, const kv_card_policy *p, kv_family fam,
                         int *has, kv_family *family, kv_counter_kind *kind, int64_t *value)
{
    const kv_counter *c;
    const kv_family_limits *fl;
    *has = fam != KV_FAMILY_NONE;
    *family = fam;
    if (!*has)
        return;
    c = fam == KV_FAMILY_REMOTE ? &p->remote : &p->contactless;
    fl = fam == KV_FAMILY_REMOTE ? &l->remote : &l->contactless;
    *kind = fl->counter;
    *value = fl->counter == KV_COUNTER_COUNT ? c->count : c->amount;
}

static void write_counters(kv_jsonw *w, int has, kv_family fam, kv_counter_kind kind, int64_t value)
{
    kv_jsonw_object(w);
    if (has)
        kv_jsonw_kint(w, counter_key(fam, kind), value);
    kv_jsonw_end(w);
}

/* The response object of RULES.md §1. */
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

static void write_factor(kv_jsonw *w, const kv_auth_factor *f, kv_factor_outcome outcome)
{
    char hex[2 * KV_AC_DATA_MAX + 1];
    kv_jsonw_object(w);
    kv_jsonw_kstr(w, "type", kv_sca_factor_name(f->type));
    kv_jsonw_kstr(w, "source", f->upstream ? "upstream" : "hsm");
    kv_jsonw_kstr(w, "outcome", outcome_name(outcome));
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

/* evidence.h "verification": what the liability engine reads. */
static void write_verification(kv_jsonw *w, const kv_auth_request *req, const kv_sca_factor *sf,
                               const kv_authz_result *res)
{
    int online_pin = 0, offline_pin = 0, arqc = 0, cvc2 = 0;
    const char *method;
    int proven;

    for (size_t i = 0; i < req->n_factors; i++) {
        const kv_auth_factor *f = &req->factors[i];
        if (sf[i].outcome != KV_FACTOR_VERIFIED)
            continue;
        if (f->type == KV_FACTOR_PIN_ONLINE && !f->upstream)
            online_pin = 1;
        if (f->type == KV_FACTOR_PIN_OFFLINE)
            offline_pin = 1;
        if (f->type == KV_FACTOR_CHIP_CRYPTOGRAM && !f->upstream)
            arqc = 1;
        if (f->type == KV_FACTOR_CVC2 && !f->upstream)
            cvc2 = 1;
    }
    if (online_pin) {
        method = "online_pin";
        proven = 1;
    } else if (offline_pin && arqc) {
        method = "offline_pin"; /* CVM results inside the HSM-verified ARQC */
        proven = 1;
    } else if (res->sca.satisfied) {
        method = "sca";
        proven = 1;
    } else if (offline_pin) {
        method = "offline_pin"; /* claimed upstream, no cryptogram to prove it */
        proven = 0;
    } else if (cvc2) {
        method = "cvc2";
        proven = 0;
    } else {
        method = "none";
        proven = 0;
    }
    kv_jsonw_object(w);
    kv_jsonw_kstr(w, "method", method);
    kv_jsonw_key(w, "factors");
    kv_jsonw_array(w);
    for (size_t i = 0; i < req->n_factors; i++)
        if (sf[i].outcome == KV_FACTOR_VERIFIED)
            kv_jsonw_str(w, kv_sca_factor_name(req->factors[i].type));
    kv_jsonw_end(w);
    kv_jsonw_kbool(w, "proven", proven);
    kv_jsonw_kbool(w, "sca_required",
                   !(res->decision == KV_DECISION_APPROVE && !res->sca.satisfied));
    kv_jsonw_kbool(w, "per_transaction_code", 0);
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

static void write_request(kv_jsonw *w, const kv_auth_request *req, int64_t at)
{
    char t[KV_TIME_TEXT];
    kv_time_format(at, t);
    kv_jsonw_key(w, "request");
    kv_jsonw_object(w);
    kv_jsonw_kstr(w, "at", t);
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
        return set_err(a, KV_ERR_NOMEM, "evidence: out of memory");
    }
    /* the members without the braces */
    r = kv_evidence_append_text(a->cfg.store, &a->cfg.evidence_mac, type, time, recorded, text + 1,
                                len - 2, id);
    free(text);
    if (r <= KV_ERR_HSM && r > KV_ERR_STORE)
        set_err(a, r, "evidence MAC: %s", kv_strerror(r));
    else if (r != 0)
        store_err(a, r);
    return r;
}

int kv_authz_decide(kv_authz *a, const kv_auth_request *req, kv_authz_result *res)
{
    int r = KV_ERR_INTERNAL, in_tx = 0, listed = 0, found = 0;
    uint8_t token[KV_TOKEN_LEN];
    kv_sca_factor sf[KV_REQ_MAX_FACTORS];
    uint8_t codes[KV_REQ_MAX_FACTORS][32];
    int has_code[KV_REQ_MAX_FACTORS];
    kv_sca_context sctx;
    kv_card_state card;
    kv_decision_in din;
    kv_decision_out dout;
    kv_txn txn;
    char day[KV_DAY_TEXT], masked[KV_PAN_MASKED_MAX];
    kv_jsonw w;
    int64_t now = a->cfg.clock(), at = req->has_at ? req->at : now;
    kv_store *s = a->cfg.store;

    memset(res, 0, sizeof(*res));
    memset(&din, 0, sizeof(din));
    kv_jsonw_init(&w);
    memset(has_code, 0, sizeof(has_code));
    a->err[0] = '\0';
    if (req->n_factors > KV_REQ_MAX_FACTORS)
        return set_err(a, KV_ERR_ARG, "too many factors");
    if ((r = pan_token(a, req->pan, token)) != 0)
        goto out;
    kv_time_cph_day(at, day);
    kv_pan_mask(req->pan, masked);

    /* HSM checks first, outside the store's write lock */
    for (size_t i = 0; i < req->n_factors; i++) {
        const kv_auth_factor *f = &req->factors[i];
        int match = 0;
        sf[i].type = f->type;
        sf[i].has_binding = f->has_binding;
        sf[i].bound_amount = f->bound_amount;
        sf[i].bound_payee = f->has_binding ? f->bound_payee : NULL;
        if (f->upstream) {
            sf[i].outcome = f->verified ? KV_FACTOR_VERIFIED : KV_FACTOR_FAILED_UPSTREAM;
            continue;
        }
        if (a->cfg.verifier.verify == NULL) {
            r = set_err(a, KV_ERR_UNSUPPORTED, "factors[%zu] (%s): no HSM to verify it", i,
                        kv_sca_factor_name(f->type));
            goto out;
        }
        if ((r = a->cfg.verifier.verify(a->cfg.verifier.ctx, req, f, &match)) != 0) {
            const char *why = a->cfg.verifier.last_error != NULL
                                  ? a->cfg.verifier.last_error(a->cfg.verifier.ctx)
                                  : NULL;
            set_err(a, r, "factors[%zu] (%s): %s", i, kv_sca_factor_name(f->type),
                    why != NULL && why[0] != '\0' ? why : kv_strerror(r));
            goto out;
        }
        sf[i].outcome = match ? KV_FACTOR_VERIFIED : KV_FACTOR_FAILED_HSM;
        if (match)
            has_code[i] = code_key(token, f, codes[i]);
    }

    if ((r = kv_store_begin(s, 1)) != 0) {
        store_err(a, r);
        goto out;
    }
    in_tx = 1;
    if ((r = kv_store_card_get(s, token, &card, &found)) != 0)
        goto store_fail;
    snprintf(card.pan_masked, sizeof(card.pan_masked), "%s", masked);
    if (a->cfg.hotcard.check != NULL &&
        (r = a->cfg.hotcard.check(a->cfg.hotcard.ctx, s, token, req->pan, &listed)) != 0) {
        set_err(a, r, "block list: %s", kv_strerror(r));
        goto out;
    }
    /* an authentication code is accepted once (RULES.md §1) */
    for (size_t i = 0; i < req->n_factors; i++) {
        int fresh = 1;
        if (!has_code[i])
            continue;
        if ((r = kv_store_code_use(s, codes[i], now, &fresh)) != 0)
            goto store_fail;
        if (!fresh)
            sf[i].outcome = KV_FACTOR_REPLAYED;
    }
    sctx.remote = req->channel == KV_CH_ECOMMERCE;
    sctx.amount = req->amount;
    sctx.payee = req->merchant_name;
    kv_sca_evaluate(sf, req->n_factors, &sctx, &din.sca);

    din.channel = req->channel;
    din.amount = req->amount;
    din.gambling = kv_mcc_is_gambling(req->mcc);
    din.card_blocked = listed;
    for (size_t i = 0; i < req->n_factors; i++)
        if (req->factors[i].type == KV_FACTOR_CHIP_CRYPTOGRAM &&
            sf[i].outcome == KV_FACTOR_VERIFIED && !req->factors[i].upstream &&
            kv_authz_cvr_pin_blocked(&req->factors[i]))
            din.pin_blocked = 1;
    din.card_expired = kv_card_expired(req->expiry, at) == 1;
    din.trusted_beneficiary = req->trusted_beneficiary;
    if (card.policy.spend_daily_max >= 0 &&
        (r = kv_store_day_sum(s, token, day, KV_DAY_TOTAL, &din.day_total)) != 0)
        goto store_fail;
    if (req->channel == KV_CH_ATM &&
        (r = kv_store_day_sum(s, token, day, KV_DAY_ATM, &din.day_atm)) != 0)
        goto store_fail;
    if (din.gambling &&
        (r = kv_store_day_sum(s, token, day, KV_DAY_GAMBLING, &din.day_gambling)) != 0)
        goto store_fail;
    if (req->has_recurring && !req->recurring_first &&
        (r = kv_store_series_first(s, token, req->series, req->amount, req->merchant_name,
                                   &din.recurring_ok)) != 0)
        goto store_fail;

    kv_limits_decide(a->cfg.limits, &card.policy, &din, &dout);

    res->decision = dout.decision;
    res->reason = dout.reason;
    res->rule = dout.rule;
    res->exemption = dout.exemption;
    res->sca = din.sca;
    res->channel = req->channel;
    fill_counter(a->cfg.limits, &dout.card, shown_family(req->channel), &res->has_counter,
                 &res->family, &res->counter_kind, &res->counter_value);

    /* the evidence record, in this same transaction */
    kv_jsonw_object(&w);
    write_card(&w, token, masked, req->expiry, req->psn);
    write_request(&w, req, at);
    kv_jsonw_key(&w, "factors");
    kv_jsonw_array(&w);
    for (size_t i = 0; i < req->n_factors; i++)
        write_factor(&w, &req->factors[i], sf[i].outcome);
    kv_jsonw_end(&w);
    kv_jsonw_key(&w, "verification");
    write_verification(&w, req, sf, res);
    kv_jsonw_key(&w, "response");
    write_result(&w, res, 0);
    if ((r = append_evidence(a, &w, "authorization", at, now, &res->evidence_id)) != 0)
        goto out;

    card.policy = dout.card;
    if ((r = kv_store_card_put(s, &card)) != 0)
        goto store_fail;
    if (dout.approved_amount) {
        if ((r = kv_store_day_add(s, token, day, KV_DAY_TOTAL, req->amount)) != 0)
            goto store_fail;
        if (req->channel == KV_CH_ATM &&
            (r = kv_store_day_add(s, token, day, KV_DAY_ATM, req->amount)) != 0)
            goto store_fail;
        if (din.gambling &&
            (r = kv_store_day_add(s, token, day, KV_DAY_GAMBLING, req->amount)) != 0)
            goto store_fail;
    }
    memset(&txn, 0, sizeof(txn));
    txn.id = res->evidence_id;
    memcpy(txn.token, token, KV_TOKEN_LEN);
    txn.at = at;
    memcpy(txn.day, day, sizeof(txn.day));
    txn.channel = req->channel;
    txn.amount = req->amount;
    snprintf(txn.payee, sizeof(txn.payee), "%s", req->merchant_name);
    snprintf(txn.mcc, sizeof(txn.mcc), "%s", req->mcc);
    txn.decision = dout.decision;
    snprintf(txn.reason, sizeof(txn.reason), "%s", dout.reason);
    txn.sca_satisfied = din.sca.satisfied;
    txn.family = dout.counted;
    if (dout.counted == KV_FAMILY_CONTACTLESS)
        txn.epoch = dout.card.contactless.epoch;
    else if (dout.counted == KV_FAMILY_REMOTE)
        txn.epoch = dout.card.remote.epoch;
    txn.atm = dout.approved_amount && req->channel == KV_CH_ATM;
    txn.gambling = dout.approved_amount && din.gambling;
    txn.has_series = req->has_recurring;
    snprintf(txn.series, sizeof(txn.series), "%s", req->series);
    txn.series_first = req->has_recurring && req->recurring_first;
    if ((r = kv_store_txn_put(s, &txn)) != 0)
        goto store_fail;
    if ((r = kv_store_commit(s)) != 0)
        goto store_fail;
    in_tx = 0;
    r = 0;
    goto out;
store_fail:
    store_err(a, r);
out:
    if (in_tx)
        kv_store_rollback(s);
    kv_jsonw_free(&w);
    kv_wipe(token, sizeof(token));
    kv_wipe(codes, sizeof(codes));
    if (r != 0)
        res->evidence_id = 0;
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

int kv_authz_reverse(kv_authz *a, int64_t id, kv_authz_reversal *out)
{
    int r = KV_ERR_INTERNAL, in_tx = 0, found = 0;
    kv_store *s = a->cfg.store;
    kv_txn txn;
    kv_card_state card;
    kv_jsonw w;
    int64_t now = a->cfg.clock();
    char rid[24];

    memset(out, 0, sizeof(*out));
    kv_jsonw_init(&w);
    a->err[0] = '\0';
    if ((r = kv_store_begin(s, 1)) != 0)
        goto store_fail;
    in_tx = 1;
    if ((r = kv_store_txn_get(s, id, &txn, &found)) != 0)
        goto store_fail;
    if (!found) {
        r = set_err(a, KV_ERR_NOT_FOUND, "no authorization with evidence id %lld", (long long)id);
        goto out;
    }
    if (txn.decision != KV_DECISION_APPROVE) {
        r = set_err(a, KV_ERR_POLICY,
                    "authorization %lld was not approved (%s): nothing to reverse", (long long)id,
                    kv_decision_name(txn.decision));
        goto out;
    }
    if (txn.reversed) {
        r = set_err(a, KV_ERR_POLICY, "authorization %lld is already reversed", (long long)id);
        goto out;
    }
    if ((r = kv_store_card_get(s, txn.token, &card, NULL)) != 0)
        goto store_fail;
    kv_limits_reverse(&card.policy, txn.family, txn.epoch, txn.amount);
    if ((r = kv_store_day_add(s, txn.token, txn.day, KV_DAY_TOTAL, -txn.amount)) != 0 ||
        (txn.atm && (r = kv_store_day_add(s, txn.token, txn.day, KV_DAY_ATM, -txn.amount)) != 0) ||
        (txn.gambling &&
         (r = kv_store_day_add(s, txn.token, txn.day, KV_DAY_GAMBLING, -txn.amount)) != 0))
        goto store_fail;
    if ((r = kv_store_txn_set_reversed(s, id)) != 0 || (r = kv_store_card_put(s, &card)) != 0)
        goto store_fail;
    out->reversed_id = id;
    fill_counter(a->cfg.limits, &card.policy, shown_family(txn.channel), &out->has_counter,
                 &out->family, &out->counter_kind, &out->counter_value);
    snprintf(rid, sizeof(rid), "%lld", (long long)id);
    kv_jsonw_object(&w);
    kv_jsonw_kstr(&w, "reverses", rid);
    write_card(&w, txn.token, card.pan_masked, NULL, NULL);
    kv_jsonw_kint(&w, "amount", txn.amount);
    kv_jsonw_key(&w, "counters");
    write_counters(&w, out->has_counter, out->family, out->counter_kind, out->counter_value);
    if ((r = append_evidence(a, &w, "reversal", now, now, &out->evidence_id)) != 0)
        goto out;
    if ((r = kv_store_commit(s)) != 0)
        goto store_fail;
    in_tx = 0;
    r = 0;
    goto out;
store_fail:
    store_err(a, r);
out:
    if (in_tx)
        kv_store_rollback(s);
    kv_jsonw_free(&w);
    return r;
}

static void write_settings(kv_jsonw *w, const kv_card_policy *p)
{
    kv_jsonw_key(w, "settings");
    kv_jsonw_object(w);
    kv_jsonw_kbool(w, "ecommerce_enabled", p->ecommerce_enabled);
    kv_jsonw_key(w, "spend_single_max");
    if (p->spend_single_max < 0)
        kv_jsonw_null(w);
    else
        kv_jsonw_int(w, p->spend_single_max);
    kv_jsonw_key(w, "spend_daily_max");
    if (p->spend_daily_max < 0)
        kv_jsonw_null(w);
    else
        kv_jsonw_int(w, p->spend_daily_max);
    kv_jsonw_kint(w, "sca_failures", p->sca_failures);
    kv_jsonw_end(w);
}

int kv_authz_card_settings(kv_authz *a, const char *pan, const kv_card_settings_change *ch,
                           kv_card_state *out, int64_t *evidence_id)
{
    int r = KV_ERR_INTERNAL, in_tx = 0, change;
    kv_store *s = a->cfg.store;
    uint8_t token[KV_TOKEN_LEN];
    kv_jsonw w;
    int64_t now = a->cfg.clock(), id = 0;

    a->err[0] = '\0';
    kv_jsonw_init(&w);
    if (evidence_id != NULL)
        *evidence_id = 0;
    if (!kv_pan_valid(pan))
        return set_err(a, KV_ERR_ARG, "the PAN must be 12..19 digits");
    if ((r = pan_token(a, pan, token)) != 0)
        return r;
    change = ch->set_ecommerce || ch->set_single || ch->set_daily || ch->unblock_sca;
    if ((r = kv_store_begin(s, change)) != 0)
        goto store_fail;
    in_tx = 1;
    if ((r = kv_store_card_get(s, token, out, NULL)) != 0)
        goto store_fail;
    kv_pan_mask(pan, out->pan_masked);
    if (!change) {
        r = 0;
        goto out;
    }
    kv_jsonw_object(&w);
    write_card(&w, token, out->pan_masked, NULL, NULL);
    kv_jsonw_key(&w, "changes");
    kv_jsonw_object(&w);
    if (ch->set_ecommerce) {
        out->policy.ecommerce_enabled = ch->ecommerce_enabled;
        kv_jsonw_kbool(&w, "ecommerce_enabled", ch->ecommerce_enabled);
    }
    if (ch->set_single) {
        out->policy.spend_single_max = ch->spend_single_max;
        kv_jsonw_key(&w, "spend_single_max");
        if (ch->spend_single_max < 0)
            kv_jsonw_null(&w);
        else
            kv_jsonw_int(&w, ch->spend_single_max);
    }
    if (ch->set_daily) {
        out->policy.spend_daily_max = ch->spend_daily_max;
        kv_jsonw_key(&w, "spend_daily_max");
        if (ch->spend_daily_max < 0)
            kv_jsonw_null(&w);
        else
            kv_jsonw_int(&w, ch->spend_daily_max);
    }
    if (ch->unblock_sca) {
        /* RTS Art. 4(3)(b): the issuer unblocks the credential */
        kv_jsonw_kbool(&w, "unblock_sca", 1);
        kv_jsonw_kint(&w, "sca_failures_before", out->policy.sca_failures);
        out->policy.sca_failures = 0;
    }
    kv_jsonw_end(&w);
    write_settings(&w, &out->policy);
    if ((r = append_evidence(a, &w, "card_settings", now, now, &id)) != 0)
        goto out;
    if ((r = kv_store_card_put(s, out)) != 0)
        goto store_fail;
    if ((r = kv_store_commit(s)) != 0)
        goto store_fail;
    in_tx = 0;
    if (evidence_id != NULL)
        *evidence_id = id;
    r = 0;
    goto out;
store_fail:
    store_err(a, r);
out:
    if (in_tx)
        kv_store_rollback(s);
    kv_jsonw_free(&w);
    kv_wipe(token, sizeof(token));
    return r;
}

/* see authorize.h */
int kv_authz_cvr_pin_blocked(const kv_auth_factor *f)
{
    uint8_t iad[7];
    const uint8_t *src;
    kv_iad_info info;

    if (f->type != KV_FACTOR_CHIP_CRYPTOGRAM)
        return 0;
    if (f->cvn == 10 && f->data_len >= 4) {
        src = f->data + f->data_len - 4;
        iad[0] = 0x06;
        iad[1] = 0x00;
        iad[2] = 0x0A;
        memcpy(iad + 3, src, 4);
    } else if (f->cvn == 18 && f->data_len >= 7) {
        memcpy(iad, f->data + f->data_len - 7, 7);
    } else {
        return 0;
    }
    if (kv_iad_decode(iad, sizeof(iad), &info) != 0 || info.layout != KV_IAD_VISA)
        return 0;
    return info.pin_try_limit_exceeded;
}

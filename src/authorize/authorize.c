/*
 * see authorize.h — the kv_authz object and the decision; the JSON it writes
 * is authorize_evidence.c's, the reversal authorize_reverse.c's, the card
 * settings authorize_settings.c's (authorize_int.h).
 */
#include "src/authorize/authorize_int.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/base/secure.h"
#include "src/base/caltime.h"
#include "apdu/emv_txn.h"

#include <openssl/evp.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* see authorize_int.h */
int kv_authz_set_err(kv_authz *a, int r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->err, sizeof(a->err), fmt, ap);
    va_end(ap);
    return r;
}

/* see authorize_int.h */
int kv_authz_store_err(kv_authz *a, int r)
{
    return kv_authz_set_err(a, r, "store: %s", kv_store_last_error(a->cfg.store));
}

/* see authorize_int.h */
int kv_authz_end_tx(kv_authz *a, int r, int store_failed)
{
    if (r == 0) {
        if ((r = kv_store_commit(a->cfg.store)) == 0)
            return 0;
        store_failed = 1;
    }
    if (store_failed)
        kv_authz_store_err(a, r);
    kv_store_rollback(a->cfg.store);
    return r;
}

/*
 * The PAN token, from a small direct-mapped cache or the HSM. The cache
 * lookup compares PANs in constant time (the slot index leaks a few bits of
 * a hash of the PAN to timing, which is no more than the token itself).
 */
int kv_authz_pan_token(kv_authz *a, const char *pan, uint8_t out[KV_TOKEN_LEN])
{
    uint32_t h = 2166136261u; /* FNV-1a */
    struct kv_authz_token_slot *slot;
    char padded[20];
    int r;

    for (const char *p = pan; *p != '\0'; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    slot = &a->cache[h % KV_AUTHZ_TOKEN_SLOTS];
    memset(padded, 0, sizeof(padded));
    snprintf(padded, sizeof(padded), "%s", pan);
    if (slot->used && kv_ct_equal(slot->pan, padded, sizeof(padded))) {
        memcpy(out, slot->token, KV_TOKEN_LEN);
        kv_wipe(padded, sizeof(padded));
        return 0;
    }
    if ((r = kv_pan_token(&a->cfg.token_mac, pan, out)) != 0) {
        kv_wipe(padded, sizeof(padded));
        return kv_authz_set_err(a, r, "PAN token: %s", kv_strerror(r));
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

/* The family shown in a response: the channel's, or contactless for non-remote channels. */
kv_family kv_authz_shown_family(kv_channel ch)
{
    if (ch == KV_CH_MOTO)
        return KV_FAMILY_NONE;
    return ch == KV_CH_ECOMMERCE ? KV_FAMILY_REMOTE : KV_FAMILY_CONTACTLESS;
}

/* see authorize_int.h */
void kv_authz_fill_counter(const kv_limits_config *l, const kv_card_policy *p, kv_family fam,
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
    int64_t now = a->cfg.clock(), at = req->has_at ? req->at : now;
    kv_store *s = a->cfg.store;

    memset(res, 0, sizeof(*res));
    memset(&din, 0, sizeof(din));
    memset(has_code, 0, sizeof(has_code));
    a->err[0] = '\0';
    if (req->n_factors > KV_REQ_MAX_FACTORS)
        return kv_authz_set_err(a, KV_ERR_ARG, "too many factors");
    if ((r = kv_authz_pan_token(a, req->pan, token)) != 0)
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
            r = kv_authz_set_err(a, KV_ERR_UNSUPPORTED, "factors[%zu] (%s): no HSM to verify it", i,
                                 kv_sca_factor_name(f->type));
            goto out;
        }
        if ((r = a->cfg.verifier.verify(a->cfg.verifier.ctx, req, f, &match)) != 0) {
            const char *why = a->cfg.verifier.last_error != NULL
                                  ? a->cfg.verifier.last_error(a->cfg.verifier.ctx)
                                  : NULL;
            kv_authz_set_err(a, r, "factors[%zu] (%s): %s", i, kv_sca_factor_name(f->type),
                             why != NULL && why[0] != '\0' ? why : kv_strerror(r));
            goto out;
        }
        sf[i].outcome = match ? KV_FACTOR_VERIFIED : KV_FACTOR_FAILED_HSM;
        if (match)
            has_code[i] = code_key(token, f, codes[i]);
    }

    if ((r = kv_store_begin(s, 1)) != 0) {
        kv_authz_store_err(a, r);
        goto out;
    }
    in_tx = 1;
    if ((r = kv_store_card_get(s, token, &card, &found)) != 0)
        goto store_fail;
    snprintf(card.pan_masked, sizeof(card.pan_masked), "%s", masked);
    if (a->cfg.hotcard.check != NULL &&
        (r = a->cfg.hotcard.check(a->cfg.hotcard.ctx, s, token, req->pan, &listed)) != 0) {
        kv_authz_set_err(a, r, "block list: %s", kv_strerror(r));
        goto out;
    }
    /* an authentication code is accepted once (src/RULES.md §1) */
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
    kv_authz_fill_counter(a->cfg.limits, &dout.card, kv_authz_shown_family(req->channel),
                          &res->has_counter, &res->family, &res->counter_kind, &res->counter_value);

    /* the evidence record, in this same transaction */
    if ((r = kv_authz_record_decision(a, req, token, masked, sf, res, at, now)) != 0)
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
    kv_authz_store_err(a, r);
out:
    if (in_tx)
        kv_store_rollback(s);
    kv_wipe(token, sizeof(token));
    kv_wipe(codes, sizeof(codes));
    if (r != 0)
        res->evidence_id = 0;
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

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
#include <strings.h>
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
    if (cfg->attempts != NULL)
        a->attempts = *cfg->attempts;
    else
        kv_attempts_defaults(&a->attempts);
    a->cfg.attempts = &a->attempts;
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

/* The attempt kind (src/attempts) of a factor kortvagt checks in the HSM, or -1. */
static int attempt_kind(const kv_auth_factor *f)
{
    if (f->upstream)
        return -1;
    if (f->type == KV_FACTOR_PIN_ONLINE)
        return KV_ATTEMPT_PIN;
    if (f->type == KV_FACTOR_CVC2 || f->type == KV_FACTOR_CVC3)
        return KV_ATTEMPT_CODE;
    return -1;
}

/* The request_id's key in the store: scoped by the card's token. */
static int request_key(const uint8_t token[KV_TOKEN_LEN], const char *rid, uint8_t key[32])
{
    return sha256_parts("kortvagt request_id", 19, token, KV_TOKEN_LEN, rid, strlen(rid), key);
}

/*
 * What the request was, keyed (the token key in the HSM): a repeat of the
 * request_id must be the same request. The request holds a CVC and a PIN
 * block, so only a keyed digest of it is stored.
 */
static int request_fingerprint(kv_authz *a, const kv_auth_request *req, uint8_t fp[32])
{
    uint8_t d[32 + 21];
    int r;
    memcpy(d, "kortvagt request fp\0\0", 21);
    if ((r = sha256_parts(req, sizeof(*req), "", 0, "", 0, d + 21)) != 0)
        return r;
    r = kv_mac_compute(&a->cfg.token_mac, d, sizeof(d), fp);
    kv_wipe(d, sizeof(d));
    return r != 0 ? kv_authz_set_err(a, r, "request fingerprint: %s", kv_strerror(r)) : 0;
}

static unsigned category_bit(const char *name)
{
    if (strcmp(name, "knowledge") == 0)
        return KV_CAT_KNOWLEDGE;
    if (strcmp(name, "possession") == 0)
        return KV_CAT_POSSESSION;
    if (strcmp(name, "inherence") == 0)
        return KV_CAT_INHERENCE;
    return 0;
}

/* The stored answer of a request_id back into res (strings in a's replay buffers). */
static int answer_parse(kv_authz *a, const char *text, const uint8_t fp[32],
                        const kv_auth_request *req, kv_authz_result *res)
{
    char hex[65];
    json_t *j = json_loads(text, 0, NULL), *resp, *sca, *v, *cats, *ctr;
    const char *k;
    int r = 0;

    kv_hex_encode(fp, 32, hex);
    resp = json_object_get(j, "response");
    sca = json_object_get(resp, "sca");
    if (!json_is_object(resp) || !json_is_object(sca) ||
        !json_is_string(json_object_get(j, "fingerprint")) ||
        !json_is_string(json_object_get(resp, "decision")) ||
        !json_is_string(json_object_get(resp, "reason")) ||
        !json_is_string(json_object_get(resp, "rule"))) {
        r = kv_authz_set_err(a, KV_ERR_STORE, "store: the stored answer of request_id is broken");
        goto out;
    }
    if (strcasecmp(json_string_value(json_object_get(j, "fingerprint")), hex) != 0) {
        r = kv_authz_set_err(a, KV_ERR_POLICY,
                             "request_id '%s' was already used for a different request",
                             req->request_id);
        goto out;
    }
    memset(res, 0, sizeof(*res));
    res->replayed = 1;
    res->channel = req->channel;
    res->decision = kv_decision_from_name(json_string_value(json_object_get(resp, "decision")));
    snprintf(a->replay_reason, sizeof(a->replay_reason), "%s",
             json_string_value(json_object_get(resp, "reason")));
    snprintf(a->replay_rule, sizeof(a->replay_rule), "%s",
             json_string_value(json_object_get(resp, "rule")));
    res->reason = a->replay_reason;
    res->rule = a->replay_rule;
    if (json_is_string(v = json_object_get(resp, "exemption"))) {
        snprintf(a->replay_exemption, sizeof(a->replay_exemption), "%s", json_string_value(v));
        res->exemption = a->replay_exemption;
    }
    res->sca.satisfied = json_is_true(json_object_get(sca, "satisfied"));
    cats = json_object_get(sca, "categories");
    for (size_t i = 0; i < json_array_size(cats); i++)
        if (json_is_string(json_array_get(cats, i)))
            res->sca.categories |= category_bit(json_string_value(json_array_get(cats, i)));
    v = json_object_get(sca, "dynamic_linking");
    res->sca.dynamic_linking = json_is_boolean(v) ? json_is_true(v) : -1;
    ctr = json_object_get(resp, "counters");
    json_object_foreach(ctr, k, v)
    {
        res->has_counter = 1;
        res->family = strncmp(k, "remote", 6) == 0 ? KV_FAMILY_REMOTE : KV_FAMILY_CONTACTLESS;
        res->counter_kind = strstr(k, "_count") != NULL ? KV_COUNTER_COUNT : KV_COUNTER_AMOUNT;
        res->counter_value = json_integer_value(v);
    }
    if (json_is_string(v = json_object_get(resp, "evidence")))
        res->evidence_id = strtoll(json_string_value(v), NULL, 10);
out:
    json_decref(j);
    return r;
}

/* 1: the request_id's answer is in res; 0: new; < 0: an error (text set). */
static int replay_lookup(kv_authz *a, const uint8_t key[32], const uint8_t fp[32],
                         const kv_auth_request *req, kv_authz_result *res)
{
    char *ans = NULL;
    int found = 0, r;
    if ((r = kv_store_request_get(a->cfg.store, key, &ans, &found)) != 0)
        return kv_authz_store_err(a, r);
    if (!found) {
        free(ans);
        return 0;
    }
    r = answer_parse(a, ans != NULL ? ans : "", fp, req, res);
    free(ans);
    return r == 0 ? 1 : r;
}

/* Store the answer of a request_id in the decision's transaction. */
static int replay_store(kv_authz *a, const uint8_t key[32], const uint8_t fp[32],
                        const kv_authz_result *res, int64_t now)
{
    char hex[65], *resp, *text;
    size_t len = 0;
    int r;
    if ((resp = kv_authz_result_text(res, 1, &len)) == NULL)
        return kv_authz_set_err(a, KV_ERR_NOMEM, "out of memory");
    kv_hex_encode(fp, 32, hex);
    if ((text = malloc(len + 96)) == NULL) {
        free(resp);
        return kv_authz_set_err(a, KV_ERR_NOMEM, "out of memory");
    }
    snprintf(text, len + 96, "{\"fingerprint\":\"%s\",\"response\":%s}", hex, resp);
    r = kv_store_request_put(a->cfg.store, key, text, now);
    free(resp);
    free(text);
    return r != 0 ? kv_authz_store_err(a, r) : 0;
}

/* The factor as the HSM checks it: a pin_online takes the card's stored reference value. */
static const kv_auth_factor *with_reference(const kv_card_state *card, const kv_auth_factor *f,
                                            kv_auth_factor *copy)
{
    if (f->type != KV_FACTOR_PIN_ONLINE || f->upstream || (!card->has_pvv && !card->has_ibm_offset))
        return f;
    memcpy(copy, f, sizeof(*copy));
    if (card->has_pvv) {
        copy->ibm3624 = 0;
        copy->pvki = card->pvki;
        snprintf(copy->pvv, sizeof(copy->pvv), "%s", card->pvv);
    } else {
        copy->ibm3624 = 1;
        snprintf(copy->offset, sizeof(copy->offset), "%s", card->ibm_offset);
    }
    return copy;
}

int kv_authz_decide(kv_authz *a, const kv_auth_request *req, kv_authz_result *res)
{
    return kv_authz_decide_opts(a, req, NULL, res);
}

int kv_authz_decide_opts(kv_authz *a, const kv_auth_request *req, const kv_authz_opts *o,
                         kv_authz_result *res)
{
    int r = KV_ERR_INTERNAL, in_tx = 0, listed = 0, found = 0, need_hsm = 0, skip_hsm = 0;
    int tampered = 0, tries_blocked = 0 /* kind + 1 */, rr;
    uint8_t token[KV_TOKEN_LEN], rkey[32], fp[32];
    kv_sca_factor sf[KV_REQ_MAX_FACTORS];
    kv_authz_factor_note notes[KV_REQ_MAX_FACTORS];
    uint8_t codes[KV_REQ_MAX_FACTORS][32];
    int has_code[KV_REQ_MAX_FACTORS];
    kv_auth_factor *copy = NULL;
    kv_sca_context sctx;
    kv_card_state card;
    kv_decision_in din;
    kv_decision_out dout;
    kv_txn txn;
    kv_authz_times t;
    char day[KV_DAY_TEXT], masked[KV_PAN_MASKED_MAX];
    kv_store *s = a->cfg.store;

    memset(res, 0, sizeof(*res));
    memset(&din, 0, sizeof(din));
    memset(&dout, 0, sizeof(dout));
    memset(has_code, 0, sizeof(has_code));
    memset(notes, 0, sizeof(notes));
    memset(&card, 0, sizeof(card));
    memset(&t, 0, sizeof(t));
    a->err[0] = '\0';
    if (req->n_factors > KV_REQ_MAX_FACTORS)
        return kv_authz_set_err(a, KV_ERR_ARG, "too many factors");
    t.server = a->cfg.clock();
    t.server_time = o != NULL && o->server_time;
    t.has_request_at = req->has_at;
    t.request_at = req->at;
    t.at = t.server_time || !req->has_at ? t.server : req->at;
    if ((r = kv_authz_pan_token(a, req->pan, token)) != 0)
        goto out;
    kv_time_cph_day(t.at, day);
    kv_pan_mask(req->pan, masked);
    if (req->has_request_id && ((r = request_key(token, req->request_id, rkey)) != 0 ||
                                (r = request_fingerprint(a, req, fp)) != 0))
        goto out;
    for (size_t i = 0; i < req->n_factors; i++)
        need_hsm |= !req->factors[i].upstream;

    /* 1. before any HSM work: a repeat, a tampered row, the SCA block, the block list, tries */
    if (need_hsm) {
        if ((r = kv_store_begin(s, 0)) != 0) {
            kv_authz_store_err(a, r);
            goto out;
        }
        in_tx = 1;
        if (req->has_request_id && (rr = replay_lookup(a, rkey, fp, req, res)) != 0) {
            r = rr < 0 ? rr : 0;
            goto out;
        }
        r = kv_store_card_get(s, token, &card, &found);
        if (r == KV_ERR_STORE_TAMPERED) {
            skip_hsm = 1;
            memset(&card, 0, sizeof(card));
        } else if (r != 0) {
            goto store_fail;
        } else {
            if (card.policy.sca_failures >= KV_SCA_MAX_FAILURES)
                skip_hsm = 1;
            if (!skip_hsm && a->cfg.hotcard.check != NULL &&
                (r = a->cfg.hotcard.check(a->cfg.hotcard.ctx, s, token, req->pan, &listed)) != 0) {
                kv_authz_set_err(a, r, "block list: %s", kv_strerror(r));
                goto out;
            }
            skip_hsm |= listed;
            for (int kind = KV_ATTEMPT_PIN; !skip_hsm && kind <= KV_ATTEMPT_CODE; kind++) {
                int used = 0, blocked = 0;
                for (size_t i = 0; i < req->n_factors; i++)
                    used |= attempt_kind(&req->factors[i]) == kind;
                if (!used)
                    continue;
                r = kv_attempts_check(s, &a->attempts, token, (kv_attempt_kind)kind, &blocked,
                                      NULL);
                if (r == KV_ERR_STORE_TAMPERED) {
                    skip_hsm = 1;
                    break;
                }
                if (r != 0)
                    goto store_fail;
                if (blocked) {
                    tries_blocked = kind + 1;
                    skip_hsm = 1;
                }
            }
        }
        kv_store_rollback(s); /* a read: nothing to commit */
        in_tx = 0;
        listed = 0;
    }

    /* 2. the HSM checks, outside the store's write lock */
    for (size_t i = 0; i < req->n_factors; i++) {
        const kv_auth_factor *f = &req->factors[i], *use;
        int match = 0;
        sf[i].type = f->type;
        sf[i].has_binding = f->has_binding;
        sf[i].bound_amount = f->bound_amount;
        sf[i].bound_payee = f->has_binding ? f->bound_payee : NULL;
        sf[i].proven = 0;
        if (f->upstream) {
            sf[i].outcome = f->verified ? KV_FACTOR_VERIFIED : KV_FACTOR_FAILED_UPSTREAM;
            notes[i].proof = f->verified ? KV_PROOF_ASSERTED : KV_PROOF_NONE;
            continue;
        }
        if (skip_hsm) {
            sf[i].outcome = KV_FACTOR_NOT_CHECKED;
            continue;
        }
        if (a->cfg.verifier.verify == NULL) {
            r = kv_authz_set_err(a, KV_ERR_UNSUPPORTED, "factors[%zu] (%s): no HSM to verify it", i,
                                 kv_sca_factor_name(f->type));
            goto out;
        }
        if (copy == NULL && (copy = malloc(sizeof(*copy))) == NULL) {
            r = kv_authz_set_err(a, KV_ERR_NOMEM, "out of memory");
            goto out;
        }
        use = with_reference(&card, f, copy);
        r = a->cfg.verifier.verify(a->cfg.verifier.ctx, req, use, &match);
        if (use == copy)
            kv_wipe(copy, sizeof(*copy));
        if (r != 0) {
            const char *why = a->cfg.verifier.last_error != NULL
                                  ? a->cfg.verifier.last_error(a->cfg.verifier.ctx)
                                  : NULL;
            kv_authz_set_err(a, r, "factors[%zu] (%s): %s", i, kv_sca_factor_name(f->type),
                             why != NULL && why[0] != '\0' ? why : kv_strerror(r));
            goto out;
        }
        sf[i].outcome = match ? KV_FACTOR_VERIFIED : KV_FACTOR_FAILED_HSM;
        if (match) {
            has_code[i] = code_key(token, f, codes[i]);
            sf[i].proven = 1;
            notes[i].proof = KV_PROOF_HSM;
            if (f->type == KV_FACTOR_CHIP_CRYPTOGRAM) {
                notes[i].has_cvr = 1;
                kv_authz_factor_cvr(f, &notes[i].cvr);
            }
        }
    }
    /* an offline PIN is proven by the CVR of a verified cryptogram, never by the request */
    {
        int cvr_pin = 0;
        for (size_t i = 0; i < req->n_factors; i++)
            if (notes[i].has_cvr && notes[i].cvr.offline_pin == KV_CVR_PIN_VERIFIED)
                cvr_pin = 1;
        for (size_t i = 0; i < req->n_factors; i++)
            if (cvr_pin && req->factors[i].type == KV_FACTOR_PIN_OFFLINE &&
                sf[i].outcome == KV_FACTOR_VERIFIED) {
                sf[i].proven = 1;
                notes[i].proof = KV_PROOF_CVR;
            }
    }

    /* 3. the decision, in one write transaction */
    if ((r = kv_store_begin(s, 1)) != 0) {
        kv_authz_store_err(a, r);
        goto out;
    }
    in_tx = 1;
    if (req->has_request_id && (rr = replay_lookup(a, rkey, fp, req, res)) != 0) {
        r = rr < 0 ? rr : 0;
        goto out;
    }
    /* the attempts again (another process may have counted since) and this request's */
    for (int kind = KV_ATTEMPT_PIN; !skip_hsm && kind <= KV_ATTEMPT_CODE; kind++) {
        int used = 0, blocked = 0;
        for (size_t i = 0; i < req->n_factors; i++)
            used |= attempt_kind(&req->factors[i]) == kind;
        if (!used)
            continue;
        r = kv_attempts_check(s, &a->attempts, token, (kv_attempt_kind)kind, &blocked, NULL);
        if (r == KV_ERR_STORE_TAMPERED) {
            tampered = 1;
            break;
        }
        if (r != 0)
            goto store_fail;
        if (blocked && !tries_blocked)
            tries_blocked = kind + 1;
    }
    if (tries_blocked && !skip_hsm) {
        /* the limit was reached meanwhile: the HSM's answer is withheld and not counted */
        for (size_t i = 0; i < req->n_factors; i++)
            if (!req->factors[i].upstream) {
                sf[i].outcome = KV_FACTOR_NOT_CHECKED;
                sf[i].proven = 0;
                has_code[i] = 0;
                memset(&notes[i], 0, sizeof(notes[i]));
            }
        for (size_t i = 0; i < req->n_factors; i++)
            if (req->factors[i].type == KV_FACTOR_PIN_OFFLINE && notes[i].proof == KV_PROOF_CVR) {
                sf[i].proven = 0;
                notes[i].proof = KV_PROOF_ASSERTED;
            }
    }
    /* an authentication code is accepted once (src/RULES.md §1); before the attempts are
       counted, so that a replayed good code never resets a counter */
    for (size_t i = 0; i < req->n_factors; i++) {
        int fresh = 1;
        if (!has_code[i])
            continue;
        if ((r = kv_store_code_use(s, codes[i], t.server, &fresh)) != 0)
            goto store_fail;
        if (!fresh) {
            sf[i].outcome = KV_FACTOR_REPLAYED;
            sf[i].proven = 0;
            notes[i].proof = KV_PROOF_NONE;
        }
    }
    for (size_t i = 0; !tampered && !tries_blocked && i < req->n_factors; i++) {
        int kind = attempt_kind(&req->factors[i]);
        if (kind < 0 || sf[i].outcome == KV_FACTOR_NOT_CHECKED)
            continue;
        r = kv_attempts_record(s, token, (kv_attempt_kind)kind, sf[i].outcome == KV_FACTOR_VERIFIED,
                               NULL);
        if (r == KV_ERR_STORE_TAMPERED) {
            tampered = 1;
            break;
        }
        if (r != 0)
            goto store_fail;
    }
    if (!tampered) {
        r = kv_store_card_get(s, token, &card, &found);
        if (r == KV_ERR_STORE_TAMPERED)
            tampered = 1;
        else if (r != 0)
            goto store_fail;
    }
    if (tampered)
        memset(&card, 0, sizeof(card));
    if (tampered)
        kv_card_policy_init(&card.policy);
    snprintf(card.pan_masked, sizeof(card.pan_masked), "%s", masked);
    if (!tampered && a->cfg.hotcard.check != NULL &&
        (r = a->cfg.hotcard.check(a->cfg.hotcard.ctx, s, token, req->pan, &listed)) != 0) {
        kv_authz_set_err(a, r, "block list: %s", kv_strerror(r));
        goto out;
    }
    for (size_t i = 0; i < req->n_factors; i++) {
        /* a replayed cryptogram proves nothing, and so neither does its CVR */
        if (notes[i].has_cvr && sf[i].outcome != KV_FACTOR_VERIFIED) {
            for (size_t k = 0; k < req->n_factors; k++)
                if (notes[k].proof == KV_PROOF_CVR) {
                    notes[k].proof = KV_PROOF_ASSERTED;
                    sf[k].proven = 0;
                }
        }
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
    din.card_expired = kv_card_expired(req->expiry, t.at) == 1;
    din.trusted_beneficiary = req->trusted_beneficiary;
    if (!tampered && card.policy.spend_daily_max >= 0 &&
        (r = kv_store_day_sum(s, token, day, KV_DAY_TOTAL, &din.day_total)) != 0)
        goto store_fail;
    if (!tampered && req->channel == KV_CH_ATM &&
        (r = kv_store_day_sum(s, token, day, KV_DAY_ATM, &din.day_atm)) != 0)
        goto store_fail;
    if (!tampered && din.gambling &&
        (r = kv_store_day_sum(s, token, day, KV_DAY_GAMBLING, &din.day_gambling)) != 0)
        goto store_fail;
    if (!tampered && req->has_recurring && !req->recurring_first &&
        (r = kv_store_series_first(s, token, req->series, req->amount, req->merchant_name,
                                   &din.recurring_ok)) != 0)
        goto store_fail;

    kv_limits_decide(a->cfg.limits, &card.policy, &din, &dout);
    if (tampered || (tries_blocked && !listed)) {
        /* no decision on a state that cannot be trusted, nor on a card without tries */
        memset(&dout, 0, sizeof(dout));
        dout.card = card.policy;
        dout.counted = KV_FAMILY_NONE;
        dout.decision = KV_DECISION_DECLINE;
        if (tampered) {
            dout.reason = "store_tampered";
            dout.rule = "card state row MAC";
        } else if (tries_blocked == KV_ATTEMPT_PIN + 1) {
            dout.reason = "pin_tries_exceeded";
            dout.rule = "PIN attempt limit";
        } else {
            dout.reason = "code_tries_exceeded";
            dout.rule = "card code attempt limit";
        }
    } else if (!din.sca.failed && din.sca.satisfied && !din.sca.proven_satisfied) {
        /* only an SCA kortvagt verified resets the failure count (issue 11, finding 5) */
        dout.card.sca_failures = card.policy.sca_failures;
    }

    res->decision = dout.decision;
    res->reason = dout.reason;
    res->rule = dout.rule;
    res->exemption = dout.exemption;
    res->sca = din.sca;
    res->channel = req->channel;
    kv_authz_fill_counter(a->cfg.limits, &dout.card, kv_authz_shown_family(req->channel),
                          &res->has_counter, &res->family, &res->counter_kind, &res->counter_value);

    /* the evidence record, in this same transaction */
    if ((r = kv_authz_record_decision(a, req, token, masked, sf, notes, res, &t)) != 0)
        goto out;

    card.policy = dout.card;
    memcpy(card.token, token, KV_TOKEN_LEN);
    /* a tampered row is left as it is found: rewriting it would give it a valid MAC */
    if (!tampered && (r = kv_store_card_put(s, &card)) != 0)
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
    txn.at = t.at;
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
    if (req->has_request_id && (r = replay_store(a, rkey, fp, res, t.server)) != 0)
        goto out;
    if (tampered)
        kv_authz_set_err(a, 0, "card state of %s: the row's MAC does not verify (store_tampered)",
                         masked);
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
    kv_wipe(&card, sizeof(card));
    free(copy);
    if (r != 0)
        res->evidence_id = 0;
    return r;
}

/* see authorize.h */
void kv_authz_factor_cvr(const kv_auth_factor *f, kv_cvr_info *out)
{
    if (f->type != KV_FACTOR_CHIP_CRYPTOGRAM || f->upstream) {
        kv_cvr_from_ac_data(-1, NULL, 0, out);
        return;
    }
    kv_cvr_from_ac_data(f->cvn, f->data, f->data_len, out);
}

/* see authorize.h */
int kv_authz_cvr_pin_blocked(const kv_auth_factor *f)
{
    kv_cvr_info info;
    if (f->type != KV_FACTOR_CHIP_CRYPTOGRAM)
        return 0;
    kv_cvr_from_ac_data(f->cvn, f->data, f->data_len, &info);
    return info.layout != KV_CVR_LAYOUT_UNKNOWN && info.pin_try_limit_exceeded;
}

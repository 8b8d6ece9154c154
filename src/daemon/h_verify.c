/* see endpoints.h: POST /v1/verify/pin, /v1/verify/cvc, /v1/verify/arqc */
#include "hsm/cvv.h"
#include "hsm/emv_crypto.h"
#include "hsm/pin.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/base/secure.h"
#include "src/attempts/attempts.h"
#include "src/config/pin_params.h"
#include "src/daemon/endpoints.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define KEYNAME 256
#define NONE KV_JDEC_NONE
#define ROW(st, nm, ty, fl, mn, mx, fld, cp, lo, ho)                                               \
    {                                                                                              \
        nm, ty, fl, mn, mx, offsetof(st, fld), cp, lo, ho, NULL, NULL, 0, NULL, NULL               \
    }

/* Find a key by label or URI; answers 400 unknown_key / 503 itself. */
static int find_key(kv_daemon *d, kv_http_response *res, kv_endpoint ep, const char *name,
                    kv_hsm_key *k)
{
    int r = kv_hsm_key_find(kv_app_hsm(d->session), name, k);
    /* the worker's handle refuses weak keys unless allowed (handler.c) */
    if (r == KV_ERR_HSM_KEY && k->weak) {
        kv_reply_error(res, 403, "weak_key",
                       "key '%.200s' has single-DES strength; this service refuses weak keys "
                       "unless [hsm] allow_weak_keys = true",
                       name);
        return -1;
    }
    if (r == 0)
        return 0;
    if (r == KV_ERR_HSM_KEY || r == KV_ERR_NOT_FOUND || r == KV_ERR_ARG)
        kv_reply_error(res, 400, "unknown_key", "key '%.200s' is not in the token", name);
    else
        kv_reply_failure(d, res, ep, r, "");
    return -1;
}

static json_t *verdict(int match)
{
    return json_pack("{s:s}", "result", match ? "match" : "mismatch");
}

/*
 * Verifications of a card's PIN or card code count attempts in the card's
 * row (src/attempts): after [verify] pin_tries_max wrong PINs (default 3) or
 * code_tries_max wrong CVC2/CVC3 (default 5) in a row the answer is 200
 * {"result":"blocked"}, with no HSM work (not even the key lookups) and an
 * evidence record; `kortvagt card settings --pan P --reset-tries` clears it.
 */
struct verify_ctx {
    kv_daemon *d;
    kv_http_response *res;
    kv_endpoint ep;
    int replied; /* the callback answered res already */
    char method[16];
    const void *q;
};

/* Run one counted verification and answer it. */
static void run_counted(struct verify_ctx *c, kv_attempt_kind kind, const char *pan,
                        kv_attempts_hsm_fn fn)
{
    kv_daemon *d = c->d;
    kv_attempts_request rq;
    kv_attempts_outcome o;
    char why[256];
    int r;

    rq.kind = kind;
    rq.method = c->method; /* the callback names the method it used */
    rq.via = "daemon";
    rq.pan = pan;
    r = kv_attempts_verify(kv_app_store(d->session), kv_app_attempts(d->session),
                           kv_app_token_mac(d->session), kv_app_evidence_mac(d->session), &rq, fn,
                           c, &o, why, sizeof(why));
    if (r != 0) {
        /* an HSM refusal (e.g. a key of another role) says why in the token's words */
        if (!c->replied)
            kv_reply_failure(d, c->res, c->ep, r,
                             why[0] == '\0' && r <= KV_ERR_HSM && r > KV_ERR_HSM - 100
                                 ? kv_hsm_last_error(kv_app_hsm(d->session))
                                 : why);
        return;
    }
    kv_reply_json(c->res, 200, json_pack("{s:s}", "result", kv_verify_result_name(o.result)));
}

/* ---- PIN ---- */

struct pin_req {
    char pan[20], pin_key[KEYNAME], pvk[KEYNAME], pvv[5], offset[13];
    uint8_t block[16];
    size_t block_len;
    int64_t format, pvki;
    int has_pvv, has_pvki, has_offset, has_vdata, has_dec, has_pad;
};

static int pin_check(kv_jdec *d, const json_t *o, void *obj, void *ctx)
{
    static const char *const server_side[] = {"dec_table", "vdata", "pad"};
    struct pin_req *q = obj;
    const int has[] = {q->has_dec, q->has_vdata, q->has_pad};
    (void)o, (void)ctx;
    /* issue 11: a client that chooses these turns the endpoint into a PIN oracle */
    for (size_t i = 0; i < 3; i++)
        if (has[i])
            return kv_jdec_fail_at(d, server_side[i], KV_JDEC_CONFLICT,
                                   "is no longer accepted: the decimalisation table, validation "
                                   "data and pad come from the server's [pvk.LABEL] section");
    if (kv_pinblock_size((int)q->format) != (int)q->block_len)
        return kv_jdec_fail_at(d, "pin_block", KV_JDEC_OUT_OF_RANGE, "format %d needs %d bytes",
                               (int)q->format, kv_pinblock_size((int)q->format));
    if (q->has_pvv != q->has_pvki)
        return kv_jdec_fail(d, KV_JDEC_MISSING, "pvki and pvv go together (Visa PVV)");
    if (q->has_pvv && q->has_offset)
        return kv_jdec_fail(d, KV_JDEC_CONFLICT,
                            "either pvki and pvv (Visa PVV) or offset (IBM 3624), not both");
    return 0;
}

#define PROW(nm, ty, fl, mn, mx, fld, cp, ho)                                                      \
    ROW(struct pin_req, nm, ty, fl, mn, mx, fld, cp, NONE, ho)
#define AROW(nm, ho)                                                                               \
    {                                                                                              \
        nm, KV_JT_ANY, 0, 0, 0, 0, 0, NONE, offsetof(struct pin_req, ho), NULL, NULL, 0, NULL,     \
            NULL                                                                                   \
    }
static const kv_jdec_field pin_rows[] = {
    PROW("pan", KV_JT_DIGITS, KV_JF_REQUIRED, 12, 19, pan, 20, NONE),
    ROW(struct pin_req, "pin_block", KV_JT_HEX, KV_JF_REQUIRED, 8, 16, block, 16,
        offsetof(struct pin_req, block_len), NONE),
    PROW("format", KV_JT_INT, KV_JF_REQUIRED, 0, 4, format, 0, NONE),
    PROW("pin_key", KV_JT_STRING, KV_JF_REQUIRED, 1, KEYNAME - 1, pin_key, KEYNAME, NONE),
    PROW("pvk", KV_JT_STRING, KV_JF_REQUIRED, 1, KEYNAME - 1, pvk, KEYNAME, NONE),
    PROW("pvki", KV_JT_INT, 0, 0, 9, pvki, 0, offsetof(struct pin_req, has_pvki)),
    PROW("pvv", KV_JT_DIGITS, 0, 4, 4, pvv, 5, offsetof(struct pin_req, has_pvv)),
    PROW("offset", KV_JT_DIGITS, 0, 4, 12, offset, 13, offsetof(struct pin_req, has_offset)),
    /* refused by pin_check (they come from the configuration) */
    AROW("vdata", has_vdata),
    AROW("dec_table", has_dec),
    AROW("pad", has_pad),
};
static const kv_jdec_table pin_tbl = KV_JDEC_TABLE(NULL, pin_rows, 0, NULL, pin_check);

/*
 * The HSM part of a PIN verification, with the card's row: the stored
 * reference value (PVV + PVKI, or IBM offset) overrides the request's; the
 * IBM 3624 parameters come from [pvk.LABEL] of the PVK found.
 */
static int pin_hsm(void *ctx, const kv_card_state *card, int *match)
{
    struct verify_ctx *c = ctx;
    const struct pin_req *q = c->q;
    kv_daemon *d = c->d;
    kv_hsm *h = kv_app_hsm(d->session);
    kv_hsm_key kp, kk;
    kv_pin_params pp;
    kv_pin_params_source src;
    char vdata[17], why[160];
    const char *pvv = NULL, *offset = NULL;
    int pvki = 0, r;

    /* which reference value: the card's first, the method the request names first */
    if (card->has_pvv && (!q->has_offset || !card->has_ibm_offset)) {
        pvv = card->pvv;
        pvki = card->pvki;
    } else if (card->has_ibm_offset) {
        offset = card->ibm_offset;
    } else if (q->has_pvv) {
        pvv = q->pvv;
        pvki = (int)q->pvki;
    } else if (q->has_offset) {
        offset = q->offset;
    } else {
        c->replied = 1;
        kv_reply_error(c->res, 400, "missing_field",
                       "the card has no reference value in the store: pvki and pvv (Visa PVV) or "
                       "offset (IBM 3624) are needed");
        return KV_ERR_ARG;
    }
    snprintf(c->method, sizeof(c->method), "%s", pvv != NULL ? "pvv" : "ibm3624");
    if (find_key(d, c->res, c->ep, q->pvk, &kp) != 0 ||
        find_key(d, c->res, c->ep, q->pin_key, &kk) != 0) {
        c->replied = 1;
        return KV_ERR_HSM_KEY;
    }
    if (pvv != NULL) {
        r = kv_hsm_pvv_verify_pinblock(h, &kp, &kk, (int)q->format, q->block, q->block_len, q->pan,
                                       pvki, pvv, match);
    } else {
        src = kv_pin_params_config_source(kv_app_config(d->session));
        if ((r = src.lookup(src.ctx, kp.label, &pp)) != 0 ||
            (r = kv_pin_params_vdata(&pp, q->pan, vdata, why, sizeof(why))) != 0) {
            c->replied = 1;
            kv_reply_error(c->res, r == KV_ERR_ARG ? 400 : 500,
                           r == KV_ERR_ARG ? "invalid_field" : "internal", "[pvk.%.64s]: %s",
                           kp.label, r == KV_ERR_ARG ? why : kv_strerror(r));
            return r;
        }
        r = kv_hsm_ibm3624_verify_pinblock(h, &kp, &kk, (int)q->format, q->block, q->block_len,
                                           q->pan, pp.dec_table, vdata, pp.pad, offset, match);
        kv_wipe(vdata, sizeof(vdata));
    }
    return r;
}

int kv_ep_verify_pin(kv_daemon *d, const kv_http_request *req, kv_http_response *res,
                     const kv_route_args *a)
{
    struct pin_req q;
    struct verify_ctx c;
    (void)a;
    memset(&q, 0, sizeof(q));
    if (kv_body_decode(req, res, &pin_tbl, &q, NULL) != 0 || kv_need_session(d, res) != 0)
        goto out;
    memset(&c, 0, sizeof(c));
    c.d = d;
    c.res = res;
    c.ep = KV_EP_VERIFY_PIN;
    c.q = &q;
    snprintf(c.method, sizeof(c.method), "%s",
             q.has_pvv      ? "pvv"
             : q.has_offset ? "ibm3624"
                            : "pin");
    run_counted(&c, KV_ATTEMPT_PIN, q.pan, pin_hsm);
out:
    kv_wipe(&q, sizeof(q));
    return 0;
}

/* ---- CVC2 / CVV, CVC3 ---- */

struct cvc_req {
    char pan[20], expiry[5], cvk[KEYNAME], imk[KEYNAME], psn[3], value[KV_CVC3_DIGITS + 1], sc[4];
    uint8_t atc[2], un[4], track[128], pcvc3[8];
    size_t track_len, pcvc3_len;
    int has_cvk, has_imk, has_expiry, has_sc, has_psn, has_atc, has_un, has_track, has_pcvc3;
    unsigned want; /* CVC3: the digits the card carries (pcvc3), 0: not said */
};

static int cvc_check(kv_jdec *d, const json_t *o, void *obj, void *ctx)
{
    struct cvc_req *q = obj;
    char why[160];
    int n;
    (void)o, (void)ctx;
    if (q->has_cvk == q->has_imk)
        return kv_jdec_fail(d, q->has_cvk ? KV_JDEC_CONFLICT : KV_JDEC_MISSING,
                            "either cvk (CVC2/CVV2) or imk (CVC3) is needed");
    if (q->has_cvk) {
        if (q->has_psn || q->has_atc || q->has_un || q->has_track || q->has_pcvc3)
            return kv_jdec_fail(d, KV_JDEC_CONFLICT,
                                "psn, atc, un, track and pcvc3 belong to a CVC3 (imk)");
        if (!q->has_expiry)
            return kv_jdec_fail_at(d, "expiry", KV_JDEC_MISSING, "is required with cvk");
        if (strlen(q->value) != KV_CVV_DIGITS)
            return kv_jdec_fail_at(d, "value", KV_JDEC_OUT_OF_RANGE, "a CVC2 has 3 digits");
        return 0;
    }
    if (q->has_expiry || q->has_sc)
        return kv_jdec_fail(d, KV_JDEC_CONFLICT, "expiry and service_code belong to a CVC2 (cvk)");
    if (!q->has_atc || !q->has_un || !q->has_track)
        return kv_jdec_fail(d, KV_JDEC_MISSING, "a CVC3 needs atc, un and track");
    if (q->has_pcvc3) {
        if ((n = kv_cvc3_digits_from_pcvc3(q->pcvc3, q->pcvc3_len, why, sizeof(why))) < 0)
            return kv_jdec_fail_at(d, "pcvc3", KV_JDEC_OUT_OF_RANGE, "%s", why);
        q->want = (unsigned)n;
    }
    if (strlen(q->value) < (q->want ? q->want : KV_CVC3_MIN_DIGITS))
        return kv_jdec_fail_at(d, "value", KV_JDEC_OUT_OF_RANGE,
                               "the card's CVC3 has %u digits; fewer are refused",
                               q->want ? q->want : KV_CVC3_MIN_DIGITS);
    return 0;
}

#define CROW(nm, fl, mn, mx, fld, ho)                                                              \
    ROW(struct cvc_req, nm, KV_JT_DIGITS, fl, mn, mx, fld, sizeof(((struct cvc_req *)0)->fld),     \
        NONE, ho)
#define CHAS(fld) offsetof(struct cvc_req, fld)
#define XROW(nm, mn, mx, fld, lo, ho) ROW(struct cvc_req, nm, KV_JT_HEX, 0, mn, mx, fld, mx, lo, ho)
static const kv_jdec_field cvc_rows[] = {
    CROW("pan", KV_JF_REQUIRED, 12, 19, pan, NONE),
    CROW("expiry", 0, 4, 4, expiry, CHAS(has_expiry)),
    ROW(struct cvc_req, "cvk", KV_JT_STRING, 0, 1, KEYNAME - 1, cvk, KEYNAME, NONE, CHAS(has_cvk)),
    ROW(struct cvc_req, "imk", KV_JT_STRING, 0, 1, KEYNAME - 1, imk, KEYNAME, NONE, CHAS(has_imk)),
    CROW("value", KV_JF_REQUIRED, 3, KV_CVC3_DIGITS, value, NONE),
    CROW("service_code", 0, 3, 3, sc, CHAS(has_sc)),
    CROW("psn", 0, 2, 2, psn, CHAS(has_psn)),
    XROW("atc", 2, 2, atc, NONE, CHAS(has_atc)),
    XROW("un", 4, 4, un, NONE, CHAS(has_un)),
    XROW("track", 1, 128, track, CHAS(track_len), CHAS(has_track)),
    XROW("pcvc3", 1, 8, pcvc3, CHAS(pcvc3_len), CHAS(has_pcvc3)),
};
static const kv_jdec_table cvc_tbl = KV_JDEC_TABLE(NULL, cvc_rows, 0, NULL, cvc_check);

static int cvc_hsm(void *ctx, const kv_card_state *card, int *match)
{
    struct verify_ctx *c = ctx;
    const struct cvc_req *q = c->q;
    kv_hsm *h = kv_app_hsm(c->d->session);
    kv_hsm_key k;
    char why[160];
    int r;
    (void)card;
    if (find_key(c->d, c->res, c->ep, q->has_cvk ? q->cvk : q->imk, &k) != 0) {
        c->replied = 1;
        return KV_ERR_HSM_KEY;
    }
    if (q->has_cvk)
        return kv_hsm_cvv_verify(h, &k, q->pan, q->expiry, q->sc, q->value, match);
    why[0] = '\0';
    r = kv_hsm_cvc3_verify_len(h, &k, q->pan, q->has_psn ? q->psn : NULL, q->atc, q->un, q->track,
                               q->track_len, q->value, q->want, match, why, sizeof(why));
    if (r == KV_ERR_ARG) {
        c->replied = 1;
        kv_reply_error(c->res, 400, "invalid_field", "%s", why[0] ? why : "bad CVC3 inputs");
    }
    return r;
}

int kv_ep_verify_cvc(kv_daemon *d, const kv_http_request *req, kv_http_response *res,
                     const kv_route_args *a)
{
    struct cvc_req q;
    struct verify_ctx c;
    (void)a;
    memset(&q, 0, sizeof(q));
    memcpy(q.sc, "000", 4); /* CVC2 */
    if (kv_body_decode(req, res, &cvc_tbl, &q, NULL) != 0 || kv_need_session(d, res) != 0)
        goto out;
    memset(&c, 0, sizeof(c));
    c.d = d;
    c.res = res;
    c.ep = KV_EP_VERIFY_CVC;
    c.q = &q;
    snprintf(c.method, sizeof(c.method), "%s",
             q.has_imk                  ? "cvc3"
             : strcmp(q.sc, "000") == 0 ? "cvc2"
                                        : "cvv");
    run_counted(&c, KV_ATTEMPT_CODE, q.pan, cvc_hsm);
out:
    kv_wipe(&q, sizeof(q));
    return 0;
}

/* ---- ARQC (and the ARPC) ---- */

struct arqc_req {
    char pan[20], psn[3], imk[KEYNAME];
    uint8_t arqc[8], data[1024], atc[2], un[4], arc[2], csu[4];
    size_t data_len;
    int64_t cvn;
    int has_psn, has_un;
};

#define HROW(nm, fl, mn, mx, fld, lo, ho)                                                          \
    ROW(struct arqc_req, nm, KV_JT_HEX, fl, mn, mx, fld, mx, lo, ho)
static const kv_jdec_field arqc_rows[] = {
    ROW(struct arqc_req, "pan", KV_JT_DIGITS, KV_JF_REQUIRED, 12, 19, pan, 20, NONE, NONE),
    ROW(struct arqc_req, "psn", KV_JT_DIGITS, 0, 2, 2, psn, 3, NONE,
        offsetof(struct arqc_req, has_psn)),
    ROW(struct arqc_req, "imk", KV_JT_STRING, KV_JF_REQUIRED, 1, KEYNAME - 1, imk, KEYNAME, NONE,
        NONE),
    ROW(struct arqc_req, "cvn", KV_JT_INT, KV_JF_REQUIRED, 0, 255, cvn, 0, NONE, NONE),
    HROW("arqc", KV_JF_REQUIRED, 8, 8, arqc, NONE, NONE),
    HROW("data", KV_JF_REQUIRED, 1, 1024, data, offsetof(struct arqc_req, data_len), NONE),
    HROW("atc", KV_JF_REQUIRED, 2, 2, atc, NONE, NONE),
    HROW("un", 0, 4, 4, un, NONE, offsetof(struct arqc_req, has_un)),
    HROW("arc", 0, 2, 2, arc, NONE, NONE),
    HROW("csu", 0, 4, 4, csu, NONE, NONE),
};
static const kv_jdec_table arqc_tbl = KV_JDEC_TABLE(NULL, arqc_rows, 0, NULL, NULL);

int kv_ep_verify_arqc(kv_daemon *d, const kv_http_request *req, kv_http_response *res,
                      const kv_route_args *a)
{
    struct arqc_req req_body, *q = &req_body;
    int match = 0, r;
    kv_emv_params p;
    kv_emv_txn t;
    kv_emv_arpc_in in;
    uint8_t arpc[8];
    size_t arpc_len = 0;
    char hex[17];
    kv_hsm_key k;
    json_t *out;
    (void)a;
    memset(q, 0, sizeof(*q));
    q->arc[0] = q->arc[1] = 0x30;
    if (kv_body_decode(req, res, &arqc_tbl, q, NULL) != 0)
        goto out;
    if (kv_emv_params_for_cvn((int)q->cvn, &p) != 0) {
        kv_reply_error(res, 400, "unsupported", "cvn %d is not supported", (int)q->cvn);
        goto out;
    }
    if (kv_need_session(d, res) != 0 || find_key(d, res, KV_EP_VERIFY_ARQC, q->imk, &k) != 0)
        goto out;
    memset(&t, 0, sizeof(t));
    t.pan = q->pan;
    t.psn = q->has_psn ? q->psn : NULL;
    memcpy(t.atc, q->atc, 2);
    t.has_un = q->has_un;
    if (q->has_un)
        memcpy(t.un, q->un, 4);
    t.data = q->data;
    t.data_len = q->data_len;
    r = kv_hsm_arqc_verify(kv_app_hsm(d->session), &k, &p, &t, q->arqc, &match);
    if (r == KV_ERR_ARG) {
        kv_reply_error(res, 400, "invalid_field",
                       "the inputs do not fit cvn %d (an un is needed for Mastercard "
                       "session keys)",
                       (int)q->cvn);
        goto out;
    }
    if (r != 0) {
        kv_reply_failure(d, res, KV_EP_VERIFY_ARQC, r, "");
        goto out;
    }
    out = verdict(match);
    if (match) {
        /* EMV Book 2 §8.2: the ARPC answers the ARQC that was verified */
        memset(&in, 0, sizeof(in));
        memcpy(in.arqc, q->arqc, 8);
        memcpy(in.arc, q->arc, 2);
        memcpy(in.csu, q->csu, 4);
        r = kv_hsm_arpc_generate(kv_app_hsm(d->session), &k, &p, &t, &in, arpc, &arpc_len);
        if (r != 0) {
            json_decref(out);
            kv_reply_failure(d, res, KV_EP_VERIFY_ARQC, r, "");
            goto out;
        }
        kv_hex_encode(arpc, arpc_len, hex);
        json_object_set_new(out, "arpc", json_string(hex));
    }
    kv_reply_json(res, 200, out);
out:
    return 0;
}

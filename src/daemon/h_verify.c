/* see endpoints.h: POST /v1/verify/pin, /v1/verify/cvc, /v1/verify/arqc */
#include "apdu/script.h"
#include "hsm/cvv.h"
#include "hsm/emv_crypto.h"
#include "hsm/issuer_script.h"
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

/*
 * Issuer script commands answered with the ARPC (hsm/issuer_script.h): one
 * element of "scripts". PIN CHANGE takes the new PIN only as an ISO 9564
 * format 4 PIN block (AES) under the request's "pin_key" (role pin), for the
 * card's PAN: it is deciphered into locked memory, enciphered under the SMC
 * session key and wiped; a clear PIN is never accepted.
 */
#define SCRIPT_DATA_MAX 239 /* 255 - 8 (MAC) - 8 (room) */
struct script_req {
    int kind; /* index into script_kinds */
    int after;
    int64_t mac_len, sfi, record;
    uint8_t tag[2], data[SCRIPT_DATA_MAX], pin_block[16];
    size_t tag_len, data_len;
    int has_mac_len, has_tag, has_data, has_sfi, has_record, has_pin_block;
};

/* kv_script_kind_parse order: index + 1 is the enum kv_script_kind */
static const char *const script_kinds[] = {"pin-unblock",   "pin-change", "app-block",
                                           "app-unblock",   "card-block", "put-data",
                                           "update-record", NULL};

static int script_check(kv_jdec *d, const json_t *o, void *obj, void *ctx)
{
    struct script_req *s = obj;
    int kind = s->kind + 1;
    (void)o;
    (void)ctx;
    if (kind == KV_SCRIPT_PIN_CHANGE && !s->has_pin_block)
        return kv_jdec_fail_at(d, "pin_block", KV_JDEC_MISSING,
                               "pin-change needs the new PIN as an ISO 9564 format 4 PIN block "
                               "under \"pin_key\"");
    if (kind != KV_SCRIPT_PIN_CHANGE && s->has_pin_block)
        return kv_jdec_fail_at(d, "pin_block", KV_JDEC_CONFLICT, "goes with pin-change only");
    if (kind == KV_SCRIPT_PUT_DATA && (!s->has_tag || !s->has_data))
        return kv_jdec_fail(d, KV_JDEC_MISSING, "put-data needs \"tag\" and \"data\"");
    if (kind == KV_SCRIPT_UPDATE_RECORD && (!s->has_sfi || !s->has_record || !s->has_data))
        return kv_jdec_fail(d, KV_JDEC_MISSING,
                            "update-record needs \"sfi\", \"record\" and \"data\"");
    if (kind != KV_SCRIPT_PUT_DATA && s->has_tag)
        return kv_jdec_fail_at(d, "tag", KV_JDEC_CONFLICT, "goes with put-data only");
    if (kind != KV_SCRIPT_UPDATE_RECORD && (s->has_sfi || s->has_record))
        return kv_jdec_fail(d, KV_JDEC_CONFLICT, "\"sfi\" and \"record\" go with update-record");
    if (kind != KV_SCRIPT_PUT_DATA && kind != KV_SCRIPT_UPDATE_RECORD && s->has_data)
        return kv_jdec_fail_at(d, "data", KV_JDEC_CONFLICT,
                               "goes with put-data and update-record only");
    return 0;
}

#define SROW(nm, ty, mn, mx, fld, cp, lo, ho)                                                      \
    ROW(struct script_req, nm, ty, 0, mn, mx, fld, cp, lo, offsetof(struct script_req, ho))
static const kv_jdec_field script_rows[] = {
    {"kind", KV_JT_ENUM, KV_JF_REQUIRED, 0, 0, offsetof(struct script_req, kind), sizeof(int), NONE,
     NONE, script_kinds, NULL, 0, NULL, "script kind"},
    ROW(struct script_req, "after", KV_JT_BOOL, 0, 0, 0, after, sizeof(int), NONE, NONE),
    SROW("mac_len", KV_JT_INT, 4, 8, mac_len, 0, NONE, has_mac_len),
    SROW("tag", KV_JT_HEX, 1, 2, tag, 2, offsetof(struct script_req, tag_len), has_tag),
    SROW("data", KV_JT_HEX, 1, SCRIPT_DATA_MAX, data, SCRIPT_DATA_MAX,
         offsetof(struct script_req, data_len), has_data),
    SROW("sfi", KV_JT_INT, 1, 30, sfi, 0, NONE, has_sfi),
    SROW("record", KV_JT_INT, 1, 254, record, 0, NONE, has_record),
    SROW("pin_block", KV_JT_HEX, 16, 16, pin_block, 16, NONE, has_pin_block),
};
static const kv_jdec_table script_tbl = KV_JDEC_TABLE(NULL, script_rows, 0, NULL, script_check);

struct arqc_req {
    char pan[20], psn[3], imk[KEYNAME], imk_smi[KEYNAME], imk_smc[KEYNAME], pin_key[KEYNAME];
    uint8_t arqc[8], data[1024], atc[2], un[4], arc[2], csu[4], script_id[4];
    size_t data_len, nscripts;
    int64_t cvn;
    int has_psn, has_un, has_smi, has_smc, has_pin_key, has_script_id;
    struct script_req scripts[KV_SCRIPT_MAX_CMDS];
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
    {"scripts", KV_JT_ARRAY, 0, 0, KV_SCRIPT_MAX_CMDS, offsetof(struct arqc_req, scripts), 0,
     offsetof(struct arqc_req, nscripts), NONE, NULL, &script_tbl, sizeof(struct script_req), NULL,
     NULL},
    ROW(struct arqc_req, "imk_smi", KV_JT_STRING, 0, 1, KEYNAME - 1, imk_smi, KEYNAME, NONE,
        offsetof(struct arqc_req, has_smi)),
    ROW(struct arqc_req, "imk_smc", KV_JT_STRING, 0, 1, KEYNAME - 1, imk_smc, KEYNAME, NONE,
        offsetof(struct arqc_req, has_smc)),
    ROW(struct arqc_req, "pin_key", KV_JT_STRING, 0, 1, KEYNAME - 1, pin_key, KEYNAME, NONE,
        offsetof(struct arqc_req, has_pin_key)),
    HROW("script_id", 0, 4, 4, script_id, NONE, offsetof(struct arqc_req, has_script_id)),
};

/* A pin-change needs "pin_key"; "pin_key" needs a pin-change. */
static int arqc_check(kv_jdec *d, const json_t *o, void *obj, void *ctx)
{
    struct arqc_req *q = obj;
    int pin_change = 0;
    (void)o;
    (void)ctx;
    for (size_t i = 0; i < q->nscripts; i++)
        pin_change |= q->scripts[i].kind + 1 == KV_SCRIPT_PIN_CHANGE;
    if (pin_change && !q->has_pin_key)
        return kv_jdec_fail_at(d, "pin_key", KV_JDEC_MISSING,
                               "a pin-change script needs the PIN key of its pin_block");
    if (!pin_change && q->has_pin_key)
        return kv_jdec_fail_at(d, "pin_key", KV_JDEC_CONFLICT, "goes with a pin-change script");
    return 0;
}
static const kv_jdec_table arqc_tbl = KV_JDEC_TABLE(NULL, arqc_rows, 0, NULL, arqc_check);

/*
 * The issuer script templates of q->scripts (a 71 for those without "after",
 * then a 72 for the others) as hex into *hex_out (a new JSON string). 0, or
 * -1 with the answer given.
 */
static int build_scripts(kv_daemon *d, kv_http_response *res, const struct arqc_req *q,
                         json_t **hex_out)
{
    kv_hsm *h = kv_app_hsm(d->session);
    kv_hsm_key smi, smc, pk;
    int have_pin_keys = 0;
    kv_script tpl[2];
    kv_script_txn t;
    uint8_t buf[2 * (KV_SCRIPT_MAX_CMDS * (KV_SCRIPT_CMD_MAX + 4) + 16)];
    char hex[2 * sizeof(buf) + 1];
    size_t len = 0;
    int r;

    if (find_key(d, res, KV_EP_VERIFY_ARQC, q->has_smi ? q->imk_smi : "imk-smi", &smi) != 0)
        return -1;
    memset(tpl, 0, sizeof(tpl));
    memset(&t, 0, sizeof(t));
    t.cvn = (int)q->cvn;
    t.pan = q->pan;
    t.psn = q->has_psn ? q->psn : NULL;
    memcpy(t.atc, q->atc, 2);
    memcpy(t.arqc, q->arqc, 8);
    if (q->has_un)
        memcpy(t.un, q->un, 4);
    for (int i = 0; i < 2; i++) {
        tpl[i].tag = i == 0 ? 0x71 : 0x72;
        tpl[i].has_id = q->has_script_id;
        memcpy(tpl[i].id, q->script_id, 4);
    }
    for (size_t i = 0; i < q->nscripts; i++) {
        const struct script_req *e = &q->scripts[i];
        kv_script *sc = &tpl[e->after ? 1 : 0];
        kv_script_spec sp;
        memset(&sp, 0, sizeof(sp));
        sp.kind = e->kind + 1;
        sp.mac_len = e->has_mac_len ? (size_t)e->mac_len : 0;
        if (e->has_data) {
            sp.data = e->data;
            sp.data_len = e->data_len;
        }
        if (sp.kind == KV_SCRIPT_PIN_CHANGE) {
            kv_secbuf *pin;
            size_t pin_len = 0;
            if (!have_pin_keys) {
                if (find_key(d, res, KV_EP_VERIFY_ARQC, q->has_smc ? q->imk_smc : "imk-smc",
                             &smc) != 0 ||
                    find_key(d, res, KV_EP_VERIFY_ARQC, q->pin_key, &pk) != 0)
                    return -1;
                have_pin_keys = 1;
            }
            if ((pin = kv_secbuf_new(KV_PIN_MAX + 1)) == NULL) {
                kv_reply_failure(d, res, KV_EP_VERIFY_ARQC, KV_ERR_NOMEM, "");
                return -1;
            }
            r = kv_hsm_pinblock_decrypt(h, &pk, 4, e->pin_block, 16, q->pan,
                                        (char *)kv_secbuf_ptr(pin), &pin_len);
            if (r == 0) {
                sp.new_pin = pin;
                sp.pin_len = pin_len;
                r = kv_hsm_script_command(h, &smi, &smc, &t, &sp, sc->cmds[sc->ncmds].apdu,
                                          sizeof(sc->cmds[sc->ncmds].apdu),
                                          &sc->cmds[sc->ncmds].len);
            } else if (r == KV_ERR_FORMAT || r == KV_ERR_ARG) {
                kv_secbuf_free(pin);
                kv_reply_error(res, 400, "invalid_field",
                               "scripts[%zu].pin_block: not a format 4 PIN block of this PAN "
                               "under pin_key",
                               i);
                return -1;
            }
            kv_secbuf_free(pin);
        } else if (sp.kind == KV_SCRIPT_PUT_DATA) {
            sp.p1 = e->tag_len == 2 ? e->tag[0] : 0;
            sp.p2 = e->tag_len == 2 ? e->tag[1] : e->tag[0];
        } else if (sp.kind == KV_SCRIPT_UPDATE_RECORD) {
            sp.p1 = (uint8_t)e->record;
            sp.p2 = (uint8_t)((e->sfi << 3) | 4);
        }
        if (sp.kind != KV_SCRIPT_PIN_CHANGE)
            r = kv_hsm_script_command(h, &smi, NULL, &t, &sp, sc->cmds[sc->ncmds].apdu,
                                      sizeof(sc->cmds[sc->ncmds].apdu), &sc->cmds[sc->ncmds].len);
        if (r == KV_ERR_UNSUPPORTED) {
            kv_reply_error(res, 400, "unsupported", "cvn %d has no issuer script method",
                           (int)q->cvn);
            return -1;
        }
        if (r == KV_ERR_ARG) {
            kv_reply_error(res, 400, "invalid_field",
                           "scripts[%zu]: the command does not fit (tag of put-data, data "
                           "length with the MAC)",
                           i);
            return -1;
        }
        if (r != 0) {
            kv_reply_failure(d, res, KV_EP_VERIFY_ARQC, r, "");
            return -1;
        }
        sc->ncmds++;
    }
    for (int i = 0; i < 2; i++) {
        size_t n = 0;
        if (tpl[i].ncmds == 0)
            continue;
        if ((r = kv_script_encode(&tpl[i], buf + len, sizeof(buf) - len, &n)) != 0) {
            kv_reply_failure(d, res, KV_EP_VERIFY_ARQC, r, "");
            return -1;
        }
        len += n;
    }
    kv_hex_encode(buf, len, hex);
    *hex_out = json_string(hex);
    return 0;
}

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
        kv_reply_error(res, 400, "unsupported",
                       "cvn %d is not supported (10, 18, 22, 16, 17, 20, 21, 5, 6)", (int)q->cvn);
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
        /* issuer scripts answer only a verified ARQC: they are bound to it */
        if (q->nscripts > 0) {
            json_t *sh = NULL;
            if (build_scripts(d, res, q, &sh) != 0) {
                json_decref(out);
                goto out;
            }
            json_object_set_new(out, "scripts", sh);
        }
    }
    kv_reply_json(res, 200, out);
out:
    return 0;
}

/* see endpoints.h: POST /v1/verify/pin, /v1/verify/cvc, /v1/verify/arqc */
#include "hsm/cvv.h"
#include "hsm/emv_crypto.h"
#include "hsm/pin.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/base/secure.h"
#include "src/daemon/endpoints.h"

#include <stddef.h>
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

/* ---- PIN ---- */

struct pin_req {
    char pan[20], pin_key[KEYNAME], pvk[KEYNAME], pvv[5], offset[13], vdata[17], dec[17], pad[2];
    uint8_t block[16];
    size_t block_len;
    int64_t format, pvki;
    int has_pvv, has_pvki, has_offset, has_vdata, has_dec, has_pad;
};

static int pin_check(kv_jdec *d, const json_t *o, void *obj, void *ctx)
{
    struct pin_req *q = obj;
    (void)o, (void)ctx;
    if (kv_pinblock_size((int)q->format) != (int)q->block_len)
        return kv_jdec_fail_at(d, "pin_block", KV_JDEC_OUT_OF_RANGE, "format %d needs %d bytes",
                               (int)q->format, kv_pinblock_size((int)q->format));
    if (q->has_pvv != q->has_pvki || (q->has_pvv && q->has_offset) ||
        (!q->has_pvv && !q->has_offset) || q->has_offset != q->has_vdata)
        return kv_jdec_fail(d, q->has_pvv || q->has_offset ? KV_JDEC_CONFLICT : KV_JDEC_MISSING,
                            "either pvki and pvv (Visa PVV) or offset and vdata (IBM 3624) are "
                            "needed");
    return 0;
}

#define PROW(nm, ty, fl, mn, mx, fld, cp, ho)                                                      \
    ROW(struct pin_req, nm, ty, fl, mn, mx, fld, cp, NONE, ho)
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
    PROW("vdata", KV_JT_STRING, 0, 1, 16, vdata, 17, offsetof(struct pin_req, has_vdata)),
    PROW("dec_table", KV_JT_DIGITS, 0, 16, 16, dec, 17, offsetof(struct pin_req, has_dec)),
    PROW("pad", KV_JT_STRING, 0, 1, 1, pad, 2, offsetof(struct pin_req, has_pad)),
};
static const kv_jdec_table pin_tbl = KV_JDEC_TABLE(NULL, pin_rows, 0, NULL, pin_check);

int kv_ep_verify_pin(kv_daemon *d, const kv_http_request *req, kv_http_response *res,
                     const kv_route_args *a)
{
    struct pin_req q;
    kv_hsm_key kp, kk;
    int match = 0, r;
    (void)a;
    memset(&q, 0, sizeof(q));
    if (kv_body_decode(req, res, &pin_tbl, &q, NULL) != 0 || kv_need_session(d, res) != 0 ||
        find_key(d, res, KV_EP_VERIFY_PIN, q.pvk, &kp) != 0 ||
        find_key(d, res, KV_EP_VERIFY_PIN, q.pin_key, &kk) != 0)
        goto out;
    if (q.has_offset)
        r = kv_hsm_ibm3624_verify_pinblock(kv_app_hsm(d->session), &kp, &kk, (int)q.format, q.block,
                                           q.block_len, q.pan,
                                           q.has_dec ? q.dec : "0123456789012345", q.vdata,
                                           q.has_pad ? q.pad[0] : 'F', q.offset, &match);
    else
        r = kv_hsm_pvv_verify_pinblock(kv_app_hsm(d->session), &kp, &kk, (int)q.format, q.block,
                                       q.block_len, q.pan, (int)q.pvki, q.pvv, &match);
    if (r != 0) {
        kv_reply_failure(d, res, KV_EP_VERIFY_PIN, r, "");
        goto out;
    }
    kv_reply_json(res, 200, verdict(match));
out:
    kv_wipe(&q, sizeof(q));
    return 0;
}

/* ---- CVC2 / CVV ---- */

struct cvc_req {
    char pan[20], expiry[5], cvk[KEYNAME], value[4], sc[4];
};

#define CROW(nm, fl, mn, mx, fld)                                                                  \
    ROW(struct cvc_req, nm, KV_JT_DIGITS, fl, mn, mx, fld, sizeof(((struct cvc_req *)0)->fld),     \
        NONE, NONE)
static const kv_jdec_field cvc_rows[] = {
    CROW("pan", KV_JF_REQUIRED, 12, 19, pan),
    CROW("expiry", KV_JF_REQUIRED, 4, 4, expiry),
    ROW(struct cvc_req, "cvk", KV_JT_STRING, KV_JF_REQUIRED, 1, KEYNAME - 1, cvk, KEYNAME, NONE,
        NONE),
    CROW("value", KV_JF_REQUIRED, 3, 3, value),
    CROW("service_code", 0, 3, 3, sc),
};
static const kv_jdec_table cvc_tbl = KV_JDEC_TABLE(NULL, cvc_rows, 0, NULL, NULL);

int kv_ep_verify_cvc(kv_daemon *d, const kv_http_request *req, kv_http_response *res,
                     const kv_route_args *a)
{
    struct cvc_req q;
    int match = 0, r;
    kv_hsm_key k;
    (void)a;
    memset(&q, 0, sizeof(q));
    memcpy(q.sc, "000", 4); /* CVC2 */
    if (kv_body_decode(req, res, &cvc_tbl, &q, NULL) != 0 || kv_need_session(d, res) != 0 ||
        find_key(d, res, KV_EP_VERIFY_CVC, q.cvk, &k) != 0)
        goto out;
    if ((r = kv_hsm_cvv_verify(kv_app_hsm(d->session), &k, q.pan, q.expiry, q.sc, q.value,
                               &match)) != 0) {
        kv_reply_failure(d, res, KV_EP_VERIFY_CVC, r, "");
        goto out;
    }
    kv_reply_json(res, 200, verdict(match));
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

/* see endpoints.h: the block list (src/RULES.md §3) */
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/blocklist/blocklist.h"
#include "src/daemon/endpoints.h"

#include <stddef.h>
#include <string.h>
#include <time.h>

/* The session's block list, set up on the first request; -1 with a 503 answer made. */
static int bl_setup(kv_daemon *d, kv_http_response *res)
{
    int r;
    if (kv_need_session(d, res) != 0)
        return -1;
    if (d->bl != NULL)
        return 0;
    if ((r = kv_app_blocklist(d->session, &d->bl)) != 0) {
        kv_daemon_metrics_hsm_error(d->metrics);
        kv_reply_error(res, 503, "hsm_unavailable", "the block list keys: %s", kv_strerror(r));
        return -1;
    }
    return 0;
}

/* ---- POST /v1/blocklist ---- */

struct bl_body {
    char pan[20];
    char expiry[5];
    int has_source, has_expiry;
    kv_bl_add_req ar;
};

static int reason(kv_jdec *d, const json_t *v, void *field, void *obj, void *ctx)
{
    (void)obj, (void)ctx;
    if (!json_is_string(v))
        return kv_jdec_fail(d, KV_JDEC_WRONG_TYPE, "must be a string");
    if (json_string_length(v) == 0 || json_string_length(v) > 31 ||
        kv_bl_reason_parse(json_string_value(v), field) != 0)
        return kv_jdec_fail(d, KV_JDEC_UNKNOWN_VALUE, "unknown reason");
    return 0;
}

static int source(kv_jdec *d, const json_t *v, void *field, void *obj, void *ctx)
{
    const char *s = json_string_value(v);
    (void)obj, (void)ctx;
    if (!json_is_string(v))
        return kv_jdec_fail(d, KV_JDEC_WRONG_TYPE, "must be a string");
    if (strcmp(s, "cardholder") == 0)
        *(kv_bl_source *)field = KV_BL_SOURCE_CARDHOLDER;
    else if (strcmp(s, "issuer") == 0)
        *(kv_bl_source *)field = KV_BL_SOURCE_ISSUER;
    else
        return kv_jdec_fail(d, KV_JDEC_UNKNOWN_VALUE, "cardholder or issuer");
    return 0;
}

static int bl_body_check(kv_jdec *d, const json_t *o, void *obj, void *ctx)
{
    struct bl_body *b = obj;
    (void)o, (void)ctx;
    if (!b->has_source)
        b->ar.source = kv_bl_default_source(b->ar.reason);
    if (b->has_expiry && kv_bl_expiry_parse(b->expiry, &b->ar.expiry_yymm) != 0)
        return kv_jdec_fail_at(d, "expiry", KV_JDEC_BAD_FORMAT, "YYMM");
    return 0;
}

static const char *const reports[] = {"none", "lost", "stolen", "defective", "destroyed", NULL};

#define NONE KV_JDEC_NONE
static const kv_jdec_field bl_rows[] = {
    {"pan", KV_JT_DIGITS, KV_JF_REQUIRED, 12, 19, offsetof(struct bl_body, pan), 20, NONE, NONE,
     NULL, NULL, 0, NULL, NULL},
    {"reason", KV_JT_CUSTOM, KV_JF_REQUIRED, 0, 0, offsetof(struct bl_body, ar.reason), 0, NONE,
     NONE, NULL, NULL, 0, reason, NULL},
    {"expiry", KV_JT_DIGITS, 0, 4, 4, offsetof(struct bl_body, expiry), 5, NONE,
     offsetof(struct bl_body, has_expiry), NULL, NULL, 0, NULL, NULL},
    {"source", KV_JT_CUSTOM, 0, 0, 0, offsetof(struct bl_body, ar.source), 0, NONE,
     offsetof(struct bl_body, has_source), NULL, NULL, 0, source, NULL},
    {"reminders", KV_JT_INT, 0, 0, 100, offsetof(struct bl_body, ar.reminders), sizeof(int), NONE,
     NONE, NULL, NULL, 0, NULL, NULL},
    {"report", KV_JT_ENUM, 0, 0, 0, offsetof(struct bl_body, ar.report), sizeof(int), NONE, NONE,
     reports, NULL, 0, NULL, "report"},
    {"wallet_tokens", KV_JT_STRINGS, 0, 0, KV_BL_WALLET_MAX,
     offsetof(struct bl_body, ar.wallet_tokens), 0, offsetof(struct bl_body, ar.n_wallet), NONE,
     NULL, NULL, 0, NULL, NULL},
};
static const kv_jdec_table bl_tbl = KV_JDEC_TABLE(NULL, bl_rows, 0, NULL, bl_body_check);

/* A block list failure: no permission, a bad PAN, or the common ones. */
static int bl_failure(kv_daemon *d, kv_http_response *res, int r, const char *why)
{
    return kv_reply_failure(d, res, KV_EP_BLOCKLIST, r, why);
}

/* List a card. The answer holds no reason (src/RULES.md §3). */
int kv_ep_blocklist_add(kv_daemon *d, const kv_http_request *req, kv_http_response *res,
                        const kv_route_args *a)
{
    struct bl_body b;
    char why[256], msg[512];
    kv_jdec_error e;
    kv_bl_entry entry;
    json_t *j;
    int r;

    (void)a;
    if ((j = kv_body_object(req, res)) == NULL)
        return 0;
    memset(&b, 0, sizeof(b));
    b.ar.report = KV_BL_REPORT_NONE;
    /* wallet_tokens point into j: it lives until the entry is written */
    if ((r = kv_jdec_decode(j, &bl_tbl, &b, NULL, &e)) != 0) {
        kv_jdec_format(&e, msg, sizeof(msg));
        kv_reply_decode(res, r, &e, msg);
        goto out;
    }
    b.ar.pan = b.pan;
    if (bl_setup(d, res) != 0)
        goto out;
    why[0] = '\0';
    if ((r = kv_bl_add(d->bl, &b.ar, (int64_t)time(NULL), &entry, why, sizeof(why))) != 0) {
        bl_failure(d, res, r, why);
        goto out;
    }
    kv_reply_json(res, 200, json_pack("{s:b}", "listed", 1));
out:
    json_decref(j);
    return 0;
}

/* ---- GET and DELETE /v1/blocklist/{pan} ---- */

/* The PAN at the end of the path; -1 with a 400 (or 503) answer made. */
static int pan_of(kv_daemon *d, const kv_route_args *a, kv_http_response *res)
{
    if (!kv_is_digits(a->tail, 12, 19)) {
        kv_reply_error(res, 400, "invalid_field", "the path must end in a PAN (12-19 digits)");
        return -1;
    }
    return bl_setup(d, res);
}

/* The hot-card check answers blocked or not, nothing else. */
int kv_ep_blocklist_check(kv_daemon *d, const kv_http_request *req, kv_http_response *res,
                          const kv_route_args *a)
{
    int blocked = 0, r;
    (void)req;
    if (pan_of(d, a, res) != 0)
        return 0;
    if ((r = kv_bl_check(d->bl, a->tail, &blocked)) != 0)
        return bl_failure(d, res, r, "");
    return kv_reply_json(res, 200, json_pack("{s:b}", "blocked", blocked));
}

/* A wrong entry: deleted, and the correction goes to every recipient. */
int kv_ep_blocklist_delete(kv_daemon *d, const kv_http_request *req, kv_http_response *res,
                           const kv_route_args *a)
{
    int r;
    (void)req;
    if (pan_of(d, a, res) != 0)
        return 0;
    if ((r = kv_bl_remove(d->bl, a->tail, (int64_t)time(NULL), NULL)) != 0) {
        if (r == KV_ERR_NOT_FOUND)
            return kv_reply_error(res, 404, "not_found", "the card is not listed");
        return bl_failure(d, res, r, "");
    }
    return kv_reply_json(res, 200, json_pack("{s:b}", "deleted", 1));
}

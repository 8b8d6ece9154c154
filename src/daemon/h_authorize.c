/* see endpoints.h: POST /v1/authorize and POST /v1/authorize/{id}/reverse */
#include "src/authorize/authorize.h"
#include "src/base/err.h"
#include "src/config/config.h"
#include "src/daemon/endpoints.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KV_MAX_CLOCK_SKEW_DEFAULT 300 /* seconds */
#define KV_MAX_CLOCK_SKEW_LIMIT 86400

/*
 * [daemon] max_clock_skew: how far (seconds, 0..86400, default 300) a request's
 * "at" may lie from the server clock (issue 11, finding 6). -1 for a bad value.
 */
static long max_clock_skew(kv_daemon *d)
{
    const char *v = kv_config_get(kv_app_config(d->session), "daemon", "max_clock_skew");
    char *end;
    long x;
    if (v == NULL)
        return KV_MAX_CLOCK_SKEW_DEFAULT;
    errno = 0;
    x = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || x < 0 || x > KV_MAX_CLOCK_SKEW_LIMIT)
        return -1;
    return x;
}

int kv_ep_authorize(kv_daemon *d, const kv_http_request *req, kv_http_response *res,
                    const kv_route_args *a)
{
    kv_auth_request *ar = NULL;
    kv_authz_result out;
    kv_jdec_error e;
    char why[512];
    json_t *j;
    char *text;
    size_t len = 0;
    int r;

    (void)a;
    if ((j = kv_body_object(req, res)) == NULL)
        return 0;
    if ((ar = calloc(1, sizeof(*ar))) == NULL) {
        json_decref(j);
        return kv_reply_error(res, 500, "internal", "out of memory");
    }
    r = kv_auth_request_decode(j, ar, &e);
    json_decref(j);
    if (r != 0) {
        kv_jdec_format(&e, why, sizeof(why));
        kv_reply_decode(res, r, &e, why);
        goto out;
    }
    if (kv_need_session(d, res) != 0)
        goto out;
    /* the server's clock decides the day; the request's "at" must be close to it */
    {
        long skew = max_clock_skew(d);
        int64_t now = (int64_t)time(NULL);
        if (skew < 0) {
            kv_reply_error(res, 500, "internal",
                           "[daemon] max_clock_skew is not a number of seconds 0..%d",
                           KV_MAX_CLOCK_SKEW_LIMIT);
            goto out;
        }
        if (ar->has_at && (ar->at > now + skew || ar->at < now - skew)) {
            kv_reply_error(res, 400, "invalid_field",
                           "request.at: more than %ld seconds from the server clock "
                           "([daemon] max_clock_skew)",
                           skew);
            goto out;
        }
    }
    kv_authz_opts opts = {.server_time = 1};
    if ((r = kv_authz_decide_opts(kv_app_authz(d->session), ar, &opts, &out)) != 0) {
        const char *le = kv_authz_last_error(kv_app_authz(d->session));
        if (r <= KV_ERR_HSM)
            fprintf(stderr, "kortvagtd: authorize: %s: %s\n", kv_strerror(r), le);
        kv_reply_failure(d, res, KV_EP_AUTHORIZE, r, le);
        goto out;
    }
    if (strcmp(out.reason, "store_tampered") == 0)
        fprintf(stderr, "kortvagtd: authorize: store_tampered: %s\n",
                kv_authz_last_error(kv_app_authz(d->session)));
    kv_daemon_metrics_decision(d->metrics, out.decision == KV_DECISION_APPROVE        ? 0
                                           : out.decision == KV_DECISION_SCA_REQUIRED ? 1
                                                                                      : 2);
    text = kv_authz_result_text(&out, 1, &len);
    if (text == NULL)
        kv_reply_error(res, 500, "internal", "out of memory");
    else
        kv_reply_body(res, 200, "application/json", text, len);
out:
    kv_auth_request_wipe(ar);
    free(ar);
    return 0;
}

/* The body of a reversal is empty or {}. */
static const kv_jdec_table empty_tbl = {NULL, NULL, 0, 0, NULL, NULL};

int kv_ep_reverse(kv_daemon *d, const kv_http_request *req, kv_http_response *res,
                  const kv_route_args *a)
{
    kv_authz_reversal rv;
    int r;
    if (req->body_len > 0 && kv_body_decode(req, res, &empty_tbl, NULL, NULL) != 0)
        return 0;
    if (kv_need_session(d, res) != 0)
        return 0;
    if ((r = kv_authz_reverse(kv_app_authz(d->session), a->id, &rv)) != 0) {
        if (r == KV_ERR_NOT_FOUND)
            return kv_reply_error(res, 404, "not_found", "no authorization %lld", (long long)a->id);
        return kv_reply_failure(d, res, KV_EP_REVERSE, r,
                                kv_authz_last_error(kv_app_authz(d->session)));
    }
    return kv_reply_json(res, 200, kv_authz_reversal_json(&rv));
}

/* see endpoints.h: GET /healthz and GET /metrics */
#include "src/base/err.h"
#include "src/daemon/endpoints.h"

#include <stdint.h>

int kv_ep_healthz(kv_daemon *d, const kv_http_request *req, kv_http_response *res,
                  const kv_route_args *a)
{
    kv_hsm_key k;
    kv_store *s;
    int64_t head = 0;
    uint8_t hash[32];
    int r;
    (void)req;
    if (kv_need_session(d, res) != 0)
        return 0;
    /* the PKCS#11 session answers a key search */
    if ((r = kv_hsm_key_find(kv_app_hsm(d->session), "evidence", &k)) != 0) {
        kv_daemon_metrics_hsm_error(d->metrics);
        return kv_reply_error(res, 503, "hsm_unavailable", "the PKCS#11 session failed: %s",
                              kv_strerror(r));
    }
    s = kv_app_store(d->session);
    if ((r = kv_store_begin(s, 0)) == 0) {
        r = kv_store_evidence_head(s, &head, hash);
        kv_store_rollback(s);
    }
    if (r != 0) {
        kv_daemon_metrics_store_error(d->metrics);
        return kv_reply_error(res, 503, "store_unavailable", "the store failed: %s",
                              kv_strerror(r));
    }
    /* without a valid token: the status alone, no counter, no backend */
    if (!a->token_ok)
        return kv_reply_json(res, 200, json_pack("{s:s}", "status", "ok"));
    return kv_reply_json(res, 200,
                         json_pack("{s:s,s:s,s:s,s:I}", "status", "ok", "hsm", "ok", "store",
                                   kv_store_backend(s), "evidence_head", (json_int_t)head));
}

int kv_ep_metrics(kv_daemon *d, const kv_http_request *req, kv_http_response *res,
                  const kv_route_args *a)
{
    static kv_daemon_metrics empty;
    size_t len = 0;
    char *text;
    (void)req, (void)a;
    text = kv_daemon_metrics_text(d->metrics != NULL ? d->metrics : &empty, &len);
    if (text == NULL)
        return kv_reply_error(res, 500, "internal", "out of memory");
    return kv_reply_body(res, 200, "text/plain; version=0.0.4", text, len);
}

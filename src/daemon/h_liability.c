/* see endpoints.h: POST /v1/liability/assess */
#include "src/base/err.h"
#include "src/daemon/endpoints.h"
#include "src/liability/liability.h"
#include "src/liability/liability_evidence.h"

#include <stddef.h>

int kv_ep_liability(kv_daemon *d, const kv_http_request *req, kv_http_response *res,
                    const kv_route_args *a)
{
    struct kv_liability_case *c = NULL;
    struct kv_liability_result *lr = NULL;
    struct kv_liability_evidence_store es;
    kv_jdec_error e;
    char why[512];
    json_t *j, *out = NULL;
    int r, wants = 0;

    (void)a;
    if ((j = kv_body_object(req, res)) == NULL)
        return 0;
    r = kv_liability_case_decode(j, &c, &e);
    json_decref(j);
    if (r != 0) {
        kv_jdec_format(&e, why, sizeof(why));
        return kv_reply_decode(res, r, &e, why);
    }
    for (size_t i = 0; i < c->n_txns; i++)
        wants |= c->txns[i].has_evidence;
    if (wants && kv_need_session(d, res) != 0)
        goto out;
    es.store = d->session != NULL ? kv_app_store(d->session) : NULL;
    es.mac = d->session != NULL ? kv_app_evidence_mac(d->session) : NULL;
    if ((r = kv_liability_assess(c, wants ? kv_liability_evidence_from_store : NULL, &es, &lr)) !=
        0) {
        kv_reply_failure(d, res, KV_EP_LIABILITY, r, "");
        goto out;
    }
    if ((r = kv_liability_result_to_json(c, lr, &out)) != 0) {
        kv_reply_error(res, 500, "internal", "out of memory");
        goto out;
    }
    kv_reply_json(res, 200, out);
out:
    kv_liability_result_free(lr);
    kv_liability_case_free(c);
    return 0;
}

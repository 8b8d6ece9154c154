/* see endpoints.h: GET /v1/evidence/{id} */
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/daemon/endpoints.h"
#include "src/evidence/evidence.h"

#include <string.h>

int kv_ep_evidence(kv_daemon *d, const kv_http_request *req, kv_http_response *res,
                   const kv_route_args *a)
{
    kv_evidence_record rec;
    char hash[65], mac[65];
    json_t *out;
    int r;
    (void)req;
    if (kv_need_session(d, res) != 0)
        return 0;
    memset(&rec, 0, sizeof(rec));
    r = kv_evidence_load(kv_app_store(d->session), kv_app_evidence_mac(d->session), a->id, &rec);
    if (r == KV_ERR_NOT_FOUND)
        return kv_reply_error(res, 404, "not_found", "no evidence record %lld", (long long)a->id);
    if (r != 0)
        return kv_reply_failure(d, res, KV_EP_EVIDENCE, r, "");
    kv_hex_encode(rec.hash, 32, hash);
    kv_hex_encode(rec.mac, 32, mac);
    out = json_pack("{s:I,s:b,s:s,s:s}", "id", (json_int_t)rec.id, "intact", rec.intact, "hash",
                    hash, "mac", mac);
    if (out != NULL && !rec.intact)
        json_object_set_new(out, "why", json_string(rec.why));
    if (out != NULL)
        json_object_set(out, "record", rec.body != NULL ? rec.body : json_null());
    kv_evidence_record_clear(&rec);
    return kv_reply_json(res, 200, out);
}

/*
 * Inside kortvagtd's handler (handler.h): the state one worker holds, the
 * replies every endpoint shares, and one function per endpoint. handler.c
 * routes a request through its route table to one of the h_*.c files:
 *   h_authorize.c  POST /v1/authorize, POST /v1/authorize/{id}/reverse
 *   h_verify.c     POST /v1/verify/pin | cvc | arqc
 *   h_liability.c  POST /v1/liability/assess
 *   h_blocklist.c  POST /v1/blocklist, GET|DELETE /v1/blocklist/{pan}
 *   h_evidence.c   GET /v1/evidence/{id}
 *   h_status.c     GET /healthz, GET /metrics
 * Failures are typed (a KV_ERR_* code, or a kv_jdec_code from a body
 * decoder); handler.c turns them into the HTTP status and the API's error
 * code through one const table.
 */
#ifndef KV_DAEMON_ENDPOINTS_H
#define KV_DAEMON_ENDPOINTS_H

#include "src/base/jdec.h"
#include "src/blocklist/blocklist.h"
#include "src/daemon/handler.h"

#include <jansson.h>

struct kv_daemon {
    kv_app *session;        /* may be NULL */
    const kv_blocklist *bl; /* the session's block list (on the first block list request) */
    kv_daemon_tokens tokens;
    kv_daemon_metrics *metrics;
    size_t max_body;
    int allow_weak_keys; /* [hsm] allow_weak_keys = true: single-DES keys may be used */
};

/* What the route matched besides the endpoint. */
typedef struct {
    int64_t id;       /* /v1/authorize/{id}/reverse, /v1/evidence/{id} */
    const char *tail; /* /v1/blocklist/{pan}: the text after the prefix */
    int token_ok;     /* /healthz: a valid bearer token came with the request */
} kv_route_args;

/* An endpoint: answers into res; returns 0 (or KV_ERR_NOMEM when no body could be built). */
typedef int (*kv_endpoint_fn)(kv_daemon *d, const kv_http_request *req, kv_http_response *res,
                              const kv_route_args *a);

int kv_ep_authorize(kv_daemon *d, const kv_http_request *req, kv_http_response *res,
                    const kv_route_args *a);
int kv_ep_reverse(kv_daemon *d, const kv_http_request *req, kv_http_response *res,
                  const kv_route_args *a);
int kv_ep_verify_pin(kv_daemon *d, const kv_http_request *req, kv_http_response *res,
                     const kv_route_args *a);
int kv_ep_verify_cvc(kv_daemon *d, const kv_http_request *req, kv_http_response *res,
                     const kv_route_args *a);
int kv_ep_verify_arqc(kv_daemon *d, const kv_http_request *req, kv_http_response *res,
                      const kv_route_args *a);
int kv_ep_liability(kv_daemon *d, const kv_http_request *req, kv_http_response *res,
                    const kv_route_args *a);
int kv_ep_blocklist_add(kv_daemon *d, const kv_http_request *req, kv_http_response *res,
                        const kv_route_args *a);
int kv_ep_blocklist_check(kv_daemon *d, const kv_http_request *req, kv_http_response *res,
                          const kv_route_args *a);
int kv_ep_blocklist_delete(kv_daemon *d, const kv_http_request *req, kv_http_response *res,
                           const kv_route_args *a);
int kv_ep_evidence(kv_daemon *d, const kv_http_request *req, kv_http_response *res,
                   const kv_route_args *a);
int kv_ep_healthz(kv_daemon *d, const kv_http_request *req, kv_http_response *res,
                  const kv_route_args *a);
int kv_ep_metrics(kv_daemon *d, const kv_http_request *req, kv_http_response *res,
                  const kv_route_args *a);

/* ---- replies (handler.c) ---- */

/* Set the body (malloc'ed, taken over); KV_ERR_NOMEM when body is NULL. */
int kv_reply_body(kv_http_response *res, int status, const char *type, char *body, size_t len);
/* Answer obj (consumed) as compact JSON. */
int kv_reply_json(kv_http_response *res, int status, json_t *obj);
/* {"error":{"code","message"}} with the status and code given. */
int kv_reply_error(kv_http_response *res, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A body decoder's failure (r: KV_ERR_JSON or KV_ERR_NOMEM; message: "path: problem"). */
int kv_reply_decode(kv_http_response *res, int r, const kv_jdec_error *e, const char *message);
/*
 * An engine, store or HSM failure (KV_ERR_*) in endpoint ep; detail (may be
 * "") replaces the generic text for the failures that name their cause.
 */
int kv_reply_failure(kv_daemon *d, kv_http_response *res, kv_endpoint ep, int r,
                     const char *detail);

/* The body as a JSON object, or NULL with a 400 bad_json answer made. */
json_t *kv_body_object(const kv_http_request *req, kv_http_response *res);
/* Decode the body by t into dst; 0, or -1 with the 400 answer made. */
int kv_body_decode(const kv_http_request *req, kv_http_response *res, const kv_jdec_table *t,
                   void *dst, void *ctx);
/* 0, or -1 with a 503 answer made when this worker has no HSM session. */
int kv_need_session(kv_daemon *d, kv_http_response *res);

#endif

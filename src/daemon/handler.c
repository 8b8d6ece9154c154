/* see handler.h and endpoints.h: routing, tokens check, the error table, common replies */
#include "src/daemon/handler.h"
#include "src/base/err.h"
#include "src/base/secure.h"
#include "src/daemon/endpoints.h"

#include <jansson.h>
#include <openssl/sha.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void kv_http_response_clear(kv_http_response *r)
{
    if (r == NULL)
        return;
    free(r->body);
    memset(r, 0, sizeof(*r));
}

/* ---- the handler object -------------------------------------------------------- */

int kv_daemon_new(kv_app *session, const kv_daemon_tokens *tokens, kv_daemon_metrics *metrics,
                  size_t max_body, kv_daemon **out)
{
    kv_daemon *d = calloc(1, sizeof(*d));
    *out = NULL;
    if (d == NULL)
        return KV_ERR_NOMEM;
    d->session = session;
    if (tokens != NULL)
        d->tokens = *tokens;
    d->metrics = metrics;
    d->max_body = max_body != 0 ? max_body : KV_DAEMON_DEFAULT_MAX_BODY;
    /* weak (single-DES) keys only when the configuration says so explicitly */
    if (session != NULL) {
        const char *v = kv_config_get(kv_app_config(session), "hsm", "allow_weak_keys");
        d->allow_weak_keys = v != NULL && strcmp(v, "true") == 0;
        /* every key lookup of this worker (verify endpoints, authorization factors) */
        if (kv_app_hsm(session) != NULL)
            kv_hsm_refuse_weak_keys(kv_app_hsm(session), !d->allow_weak_keys);
    }
    *out = d;
    return 0;
}

void kv_daemon_free(kv_daemon *d)
{
    if (d == NULL)
        return;
    kv_wipe(&d->tokens, sizeof(d->tokens));
    free(d);
}

size_t kv_daemon_max_body(const kv_daemon *d)
{
    return d->max_body;
}

/* ---- the error table ------------------------------------------------------------ */

enum { COUNT_NONE, COUNT_STORE, COUNT_HSM };

/*
 * Every typed failure to its HTTP status and API error code, first match
 * wins. A row matches a body decoder's code (jdec >= 0) or a KV_ERR_* range
 * [hi, lo] (numerically lo <= r <= hi), optionally only in one endpoint.
 * The message: fixed when set; else what + ": " + kv_strerror(r) when what is
 * set; else the caller's detail, or fallback, or kv_strerror(r).
 */
static const struct err_row {
    int jdec; /* kv_jdec_code, or -1 */
    int hi, lo;
    kv_endpoint only; /* KV_EP__COUNT: every endpoint */
    int status;
    const char *code;
    int count; /* the metrics counter it feeds */
    const char *fixed, *what, *fallback;
} err_table[] = {
    /* the body decoders */
    {KV_JDEC_SYNTAX, 0, 0, KV_EP__COUNT, 400, "bad_json", COUNT_NONE, NULL, NULL, NULL},
    {KV_JDEC_TOO_DEEP, 0, 0, KV_EP__COUNT, 400, "bad_json", COUNT_NONE, NULL, NULL, NULL},
    {KV_JDEC_TOO_LARGE, 0, 0, KV_EP__COUNT, 413, "too_large", COUNT_NONE, NULL, NULL, NULL},
    {KV_JDEC_MISSING, 0, 0, KV_EP__COUNT, 400, "missing_field", COUNT_NONE, NULL, NULL, NULL},
    {KV_JDEC_UNKNOWN_FIELD, 0, 0, KV_EP__COUNT, 400, "unknown_field", COUNT_NONE, NULL, NULL, NULL},
    {KV_JDEC_NOMEM, 0, 0, KV_EP__COUNT, 500, "internal", COUNT_NONE, "out of memory", NULL, NULL},
    {KV_JDEC_WRONG_TYPE, 0, 0, KV_EP__COUNT, 400, "invalid_field", COUNT_NONE, NULL, NULL, NULL},
    {KV_JDEC_OUT_OF_RANGE, 0, 0, KV_EP__COUNT, 400, "invalid_field", COUNT_NONE, NULL, NULL, NULL},
    {KV_JDEC_BAD_FORMAT, 0, 0, KV_EP__COUNT, 400, "invalid_field", COUNT_NONE, NULL, NULL, NULL},
    {KV_JDEC_UNKNOWN_VALUE, 0, 0, KV_EP__COUNT, 400, "invalid_field", COUNT_NONE, NULL, NULL, NULL},
    {KV_JDEC_TOO_MANY, 0, 0, KV_EP__COUNT, 400, "invalid_field", COUNT_NONE, NULL, NULL, NULL},
    {KV_JDEC_TOO_FEW, 0, 0, KV_EP__COUNT, 400, "invalid_field", COUNT_NONE, NULL, NULL, NULL},
    {KV_JDEC_DUPLICATE, 0, 0, KV_EP__COUNT, 400, "invalid_field", COUNT_NONE, NULL, NULL, NULL},
    {KV_JDEC_CONFLICT, 0, 0, KV_EP__COUNT, 400, "invalid_field", COUNT_NONE, NULL, NULL, NULL},
    /* the block list's own */
    {-1, KV_ERR_PERMISSION, KV_ERR_PERMISSION, KV_EP_BLOCKLIST, 403, "permission", COUNT_NONE,
     "issuer-initiated listing needs the authority's permission ([blocklist] permission)", NULL,
     NULL},
    {-1, KV_ERR_ARG, KV_ERR_ARG, KV_EP_BLOCKLIST, 400, "invalid_field", COUNT_NONE, NULL, NULL,
     "bad PAN"},
    {-1, KV_ERR_FORMAT, KV_ERR_FORMAT, KV_EP_BLOCKLIST, 400, "invalid_field", COUNT_NONE, NULL,
     NULL, "bad PAN"},
    /* engine, store and HSM */
    {-1, KV_ERR_NOMEM, KV_ERR_NOMEM, KV_EP__COUNT, 500, "internal", COUNT_NONE, "out of memory",
     NULL, NULL},
    {-1, KV_ERR_STORE_BUSY, KV_ERR_STORE_BUSY, KV_EP__COUNT, 503, "store_busy", COUNT_STORE,
     "the store is busy: retry", NULL, NULL},
    {-1, KV_ERR_EVIDENCE_BROKEN, KV_ERR_EVIDENCE_BROKEN, KV_EP__COUNT, 500, "internal", COUNT_NONE,
     NULL, "", NULL},
    {-1, KV_ERR_STORE, KV_ERR_POLICY + 1, KV_EP__COUNT, 503, "store_unavailable", COUNT_STORE, NULL,
     "the store is unavailable", NULL},
    {-1, KV_ERR_HSM_KEY, KV_ERR_HSM_KEY, KV_EP__COUNT, 400, "unknown_key", COUNT_NONE, NULL, NULL,
     NULL},
    {-1, KV_ERR_HSM_ROLE, KV_ERR_HSM_ROLE, KV_EP__COUNT, 403, "key_role", COUNT_NONE, NULL, NULL,
     NULL},
    {-1, KV_ERR_HSM_MECHANISM, KV_ERR_HSM_MECHANISM, KV_EP__COUNT, 400, "unsupported", COUNT_NONE,
     NULL, NULL, NULL},
    {-1, KV_ERR_UNSUPPORTED, KV_ERR_UNSUPPORTED, KV_EP__COUNT, 400, "unsupported", COUNT_NONE, NULL,
     NULL, NULL},
    {-1, KV_ERR_HSM, KV_ERR_STORE + 1, KV_EP__COUNT, 503, "hsm_unavailable", COUNT_HSM, NULL,
     "the HSM failed", NULL},
    {-1, KV_ERR_NOT_FOUND, KV_ERR_NOT_FOUND, KV_EP__COUNT, 404, "not_found", COUNT_NONE, NULL, NULL,
     NULL},
    {-1, KV_ERR_POLICY, KV_ERR_POLICY, KV_EP__COUNT, 409, "conflict", COUNT_NONE, NULL, NULL, NULL},
    {-1, KV_ERR_ARG, KV_ERR_ARG, KV_EP__COUNT, 400, "invalid_field", COUNT_NONE, NULL, NULL, NULL},
    {-1, KV_ERR_JSON, KV_ERR_JSON, KV_EP__COUNT, 400, "invalid_field", COUNT_NONE, NULL, NULL,
     NULL},
};

static const struct err_row internal_row = {-1,         0,          0,    KV_EP__COUNT, 500,
                                            "internal", COUNT_NONE, NULL, "",           NULL};

static const struct err_row *err_lookup(int jdec, int r, kv_endpoint ep)
{
    for (size_t i = 0; i < sizeof(err_table) / sizeof(err_table[0]); i++) {
        const struct err_row *e = &err_table[i];
        if (e->only != KV_EP__COUNT && e->only != ep)
            continue;
        if (jdec >= 0 ? e->jdec == jdec : (e->jdec < 0 && r <= e->hi && r >= e->lo))
            return e;
    }
    return &internal_row;
}

/* Answer by a row of the table. */
static int reply_row(kv_daemon *d, kv_http_response *res, const struct err_row *e, int r,
                     const char *detail)
{
    if (d != NULL && e->count == COUNT_STORE)
        kv_daemon_metrics_store_error(d->metrics);
    if (d != NULL && e->count == COUNT_HSM)
        kv_daemon_metrics_hsm_error(d->metrics);
    if (e->fixed != NULL)
        return kv_reply_error(res, e->status, e->code, "%s", e->fixed);
    if (e->what != NULL && e->what[0] != '\0')
        return kv_reply_error(res, e->status, e->code, "%s: %s", e->what, kv_strerror(r));
    if (e->what == NULL && detail != NULL && detail[0] != '\0')
        return kv_reply_error(res, e->status, e->code, "%s", detail);
    return kv_reply_error(res, e->status, e->code, "%s",
                          e->what == NULL && e->fallback != NULL ? e->fallback : kv_strerror(r));
}

/* ---- replies -------------------------------------------------------------- */

int kv_reply_body(kv_http_response *res, int status, const char *type, char *body, size_t len)
{
    free(res->body);
    res->status = status;
    res->content_type = type;
    res->body = body;
    res->body_len = len;
    return body != NULL ? 0 : KV_ERR_NOMEM;
}

int kv_reply_json(kv_http_response *res, int status, json_t *obj)
{
    char *text = obj != NULL ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(obj);
    if (text == NULL) {
        res->error_code = "internal";
        return kv_reply_body(res, 500, "application/json", NULL, 0);
    }
    return kv_reply_body(res, status, "application/json", text, strlen(text));
}

int kv_reply_error(kv_http_response *res, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    res->error_code = code;
    return kv_reply_json(res, status,
                         json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg));
}

int kv_reply_decode(kv_http_response *res, int r, const kv_jdec_error *e, const char *message)
{
    kv_jdec_code c = r == KV_ERR_NOMEM ? KV_JDEC_NOMEM : e->code;
    if (c == KV_JDEC_OK) /* a callback failed without saying why */
        c = KV_JDEC_BAD_FORMAT;
    return reply_row(NULL, res, err_lookup((int)c, r, KV_EP__COUNT), r, message);
}

int kv_reply_failure(kv_daemon *d, kv_http_response *res, kv_endpoint ep, int r, const char *detail)
{
    return reply_row(d, res, err_lookup(-1, r, ep), r, detail);
}

json_t *kv_body_object(const kv_http_request *req, kv_http_response *res)
{
    kv_jdec_error e;
    json_t *j;
    if (req->body_len == 0) {
        kv_reply_error(res, 400, "bad_json",
                       "the request body is empty; a JSON object is expected");
        return NULL;
    }
    if (kv_jdec_parse(req->body, req->body_len, 0, &j, &e) != 0) {
        kv_reply_error(res, 400, "bad_json", "line %d column %d: %s", e.line, e.column, e.msg);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        kv_reply_error(res, 400, "bad_json", "the request body must be a JSON object");
        return NULL;
    }
    return j;
}

int kv_body_decode(const kv_http_request *req, kv_http_response *res, const kv_jdec_table *t,
                   void *dst, void *ctx)
{
    kv_jdec_error e;
    char msg[512];
    json_t *j;
    int r;
    if ((j = kv_body_object(req, res)) == NULL)
        return -1;
    r = kv_jdec_decode(j, t, dst, ctx, &e);
    json_decref(j);
    if (r == 0)
        return 0;
    kv_jdec_format(&e, msg, sizeof(msg));
    kv_reply_decode(res, r, &e, msg);
    return -1;
}

int kv_need_session(kv_daemon *d, kv_http_response *res)
{
    if (d->session != NULL)
        return 0;
    kv_daemon_metrics_hsm_error(d->metrics);
    kv_reply_error(res, 503, "hsm_unavailable", "this worker has no HSM session");
    return -1;
}

/* ---- routing ---------------------------------------------------------------- */

enum { M_GET = 1, M_POST = 2, M_DELETE = 4 };
enum { R_EXACT, R_ID, R_TAIL }; /* the path is prefix; prefix{id}suffix; prefix{tail} */

/*
 * scope: what the bearer token must allow (0: any valid token; /healthz needs
 * none). name: what the access log prints instead of the path.
 */
static const struct route {
    unsigned methods;
    int kind;
    const char *prefix, *suffix;
    kv_endpoint ep;
    kv_endpoint_fn fn;
    unsigned scope;
    const char *name;
} routes[] = {
    {M_GET, R_EXACT, "/healthz", NULL, KV_EP_HEALTHZ, kv_ep_healthz, 0, "/healthz"},
    {M_GET, R_EXACT, "/metrics", NULL, KV_EP_METRICS, kv_ep_metrics, 0, "/metrics"},
    {M_POST, R_EXACT, "/v1/authorize", NULL, KV_EP_AUTHORIZE, kv_ep_authorize, KV_SCOPE_AUTHORIZE,
     "/v1/authorize"},
    {M_POST, R_ID, "/v1/authorize/", "/reverse", KV_EP_REVERSE, kv_ep_reverse, KV_SCOPE_REVERSE,
     "/v1/authorize/{id}/reverse"},
    {M_POST, R_EXACT, "/v1/verify/pin", NULL, KV_EP_VERIFY_PIN, kv_ep_verify_pin, KV_SCOPE_VERIFY,
     "/v1/verify/pin"},
    {M_POST, R_EXACT, "/v1/verify/cvc", NULL, KV_EP_VERIFY_CVC, kv_ep_verify_cvc, KV_SCOPE_VERIFY,
     "/v1/verify/cvc"},
    {M_POST, R_EXACT, "/v1/verify/arqc", NULL, KV_EP_VERIFY_ARQC, kv_ep_verify_arqc,
     KV_SCOPE_VERIFY, "/v1/verify/arqc"},
    {M_POST, R_EXACT, "/v1/liability/assess", NULL, KV_EP_LIABILITY, kv_ep_liability,
     KV_SCOPE_LIABILITY, "/v1/liability/assess"},
    {M_POST, R_EXACT, "/v1/blocklist", NULL, KV_EP_BLOCKLIST, kv_ep_blocklist_add,
     KV_SCOPE_BLOCKLIST_WRITE, "/v1/blocklist"},
    {M_GET, R_TAIL, "/v1/blocklist/", NULL, KV_EP_BLOCKLIST, kv_ep_blocklist_check,
     KV_SCOPE_BLOCKLIST_CHECK, "/v1/blocklist/{pan}"},
    {M_DELETE, R_TAIL, "/v1/blocklist/", NULL, KV_EP_BLOCKLIST, kv_ep_blocklist_delete,
     KV_SCOPE_BLOCKLIST_WRITE, "/v1/blocklist/{pan}"},
    {M_GET, R_ID, "/v1/evidence/", "", KV_EP_EVIDENCE, kv_ep_evidence, KV_SCOPE_EVIDENCE_READ,
     "/v1/evidence/{id}"},
};

/* A positive decimal id of at most 18 digits, or 0. */
static int64_t parse_id(const char *s, size_t n)
{
    int64_t v = 0;
    if (n == 0 || n > 18 || s[0] == '0')
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* Does path match rt? Fills a. */
static int route_match(const struct route *rt, const char *path, kv_route_args *a)
{
    size_t n = strlen(path), pn = strlen(rt->prefix), sn;
    if (rt->kind == R_EXACT)
        return strcmp(path, rt->prefix) == 0;
    if (n <= pn || strncmp(path, rt->prefix, pn) != 0)
        return 0;
    if (rt->kind == R_TAIL) {
        a->tail = path + pn;
        return 1;
    }
    sn = strlen(rt->suffix);
    if (n <= pn + sn || strcmp(path + n - sn, rt->suffix) != 0)
        return 0;
    return (a->id = parse_id(path + pn, n - pn - sn)) > 0;
}

static unsigned method_bit(const char *m)
{
    if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0)
        return M_GET;
    if (strcmp(m, "POST") == 0)
        return M_POST;
    if (strcmp(m, "DELETE") == 0)
        return M_DELETE;
    return 0;
}

/*
 * "Bearer <token>" checked against every configured token in constant time;
 * *scopes receives the matching token's scopes (0 when none matched).
 */
static const char *check_token(const kv_daemon *d, const char *auth, unsigned *scopes)
{
    uint8_t h[32];
    int ok = 0;
    unsigned sc = 0;
    size_t n;
    *scopes = 0;
    if (auth == NULL)
        return "no_token";
    if (strncmp(auth, "Bearer ", 7) != 0)
        return "no_token";
    auth += 7;
    while (*auth == ' ')
        auth++;
    n = strlen(auth);
    while (n > 0 && auth[n - 1] == ' ')
        n--;
    if (n == 0)
        return "no_token";
    SHA256((const unsigned char *)auth, n, h);
    /* compare with all of them, whatever matched before */
    for (size_t i = 0; i < d->tokens.n; i++) {
        int eq = kv_ct_equal(h, d->tokens.hash[i], 32);
        ok |= eq;
        sc |= d->tokens.scopes[i] & (0u - (unsigned)eq);
    }
    kv_wipe(h, sizeof(h));
    *scopes = sc;
    return ok ? NULL : "wrong_token";
}

static int dispatch(kv_daemon *d, const kv_http_request *req, kv_http_response *res,
                    kv_endpoint *ep)
{
    const struct route *hit = NULL;
    unsigned allowed = 0, m;
    kv_route_args a, found;
    const char *tok;
    unsigned scopes = 0;

    if (req->method == NULL || req->path == NULL)
        return kv_reply_error(res, 400, "bad_request", "no method or path");
    m = method_bit(req->method);
    memset(&found, 0, sizeof(found));
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        memset(&a, 0, sizeof(a));
        if (!route_match(&routes[i], req->path, &a))
            continue;
        if (allowed == 0) {
            *ep = routes[i].ep;
            res->route = routes[i].name;
        }
        allowed |= routes[i].methods;
        if (hit == NULL && (routes[i].methods & m) != 0) {
            hit = &routes[i];
            found = a;
            res->route = routes[i].name;
        }
    }
    if (allowed == 0) {
        /* unknown paths need a token too: no probing without one */
        if ((tok = check_token(d, req->authorization, &scopes)) != NULL)
            return kv_reply_error(res, 401, tok, "a valid bearer token is required");
        return kv_reply_error(res, 404, "not_found", "no such endpoint");
    }
    tok = check_token(d, req->authorization, &scopes);
    if (*ep == KV_EP_HEALTHZ) {
        /* no token needed; only a valid one sees more than the status */
        found.token_ok = tok == NULL;
    } else if (tok != NULL)
        return kv_reply_error(res, 401, tok,
                              strcmp(tok, "no_token") == 0
                                  ? "an Authorization: Bearer <token> header is required"
                                  : "the bearer token is not valid");
    if (hit == NULL)
        return kv_reply_error(res, 405, "method_not_allowed", "method %.16s is not allowed here",
                              req->method);
    if ((hit->scope & ~scopes) != 0)
        return kv_reply_error(res, 403, "permission", "this token lacks the scope '%s'",
                              kv_daemon_scope_name(hit->scope));
    if (req->body_too_large || req->body_len > d->max_body)
        return kv_reply_error(res, 413, "too_large", "the request body is larger than %zu bytes",
                              d->max_body);
    return hit->fn(d, req, res, &found);
}

int kv_daemon_handle(kv_daemon *d, const kv_http_request *req, kv_http_response *res)
{
    struct timespec t0, t1;
    kv_endpoint ep = KV_EP_OTHER;
    uint64_t us;

    memset(res, 0, sizeof(*res));
    res->route = "-";
    clock_gettime(CLOCK_MONOTONIC, &t0);
    dispatch(d, req, res, &ep);
    if (res->status == 0) {
        res->status = 500;
        res->error_code = "internal";
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    us = (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000LL + (t1.tv_nsec - t0.tv_nsec) / 1000);
    kv_daemon_metrics_request(d->metrics, ep, res->status, us);
    return res->body != NULL ? 0 : KV_ERR_NOMEM;
}

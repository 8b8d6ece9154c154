/*
 * The HTTP/JSON API of kortvagtd, without the HTTP server: one call takes a
 * parsed request (method, path, Authorization header, body) and fills a
 * response (status, JSON or Prometheus text). server.c feeds it from
 * libmicrohttpd; the fuzz target calls it in-process. Inside: handler.c
 * holds the route table, the dispatch and the one table from typed errors to
 * status and code; one h_*.c file per endpoint family (endpoints.h); bodies
 * are decoded by the strict table decoder of src/base/jdec.h.
 *
 * Endpoints (JSON contracts in src/RULES.md):
 *   POST   /v1/authorize               §1 request -> §1 response
 *   POST   /v1/authorize/{id}/reverse  body {} or empty -> the reversal
 *   POST   /v1/verify/pin              {"pan","pin_block","format","pin_key","pvk",
 *                                        "pvki"+"pvv" | "offset"+"vdata"[+"dec_table","pad"]}
 *   POST   /v1/verify/cvc              {"pan","expiry","cvk","value"[,"service_code"]}
 *                                       (CVC2: service code 000, the default)
 *   POST   /v1/verify/arqc             {"pan","imk","cvn","arqc","data","atc"[,"psn","un",
 *                                        "arc","csu"]} -> {"result","arpc"} (ARPC only on a match)
 *   POST   /v1/liability/assess        §2 case -> §2 result (evidence ids resolved in the store)
 *   POST   /v1/blocklist               {"pan","reason"[,"expiry","source","reminders","report",
 *                                        "wallet_tokens"]} -> {"listed":true} (src/blocklist)
 *   GET    /v1/blocklist/{pan}         the hot-card check: {"blocked":bool}, nothing else
 *   DELETE /v1/blocklist/{pan}         delete a wrong entry (correction to every recipient)
 *   GET    /v1/evidence/{id}           {"id","intact","why"?,"hash","mac","record"}
 *   GET    /healthz                    200 {"status":"ok"} when the PKCS#11 session and the
 *                                       store answer, else 503 (no token needed)
 *   GET    /metrics                    Prometheus text (token needed)
 * A verification answers {"result":"match"|"mismatch"}; a mismatch is a
 * result (200), not an error.
 *
 * Every failure answers {"error":{"code":"...","message":"..."}}: 400
 * bad_json | unknown_field | missing_field | invalid_field | unknown_key |
 * unsupported, 401 no_token | wrong_token, 403 permission (block list
 * without the authority's permission), 404 not_found, 405
 * method_not_allowed, 409 conflict, 413 too_large, 503 store_unavailable | store_busy |
 * hsm_unavailable, 500 internal. The message names the field by its path
 * (e.g. "transactions[2].amount") or the problem, never a secret value.
 */
#ifndef KV_DAEMON_HANDLER_H
#define KV_DAEMON_HANDLER_H

#include "src/app/app.h"
#include "src/daemon/metrics.h"

#include <stddef.h>
#include <stdint.h>

#define KV_DAEMON_MAX_TOKENS 64
#define KV_DAEMON_DEFAULT_MAX_BODY KV_SETTINGS_DAEMON_MAX_BODY

/* One request; all borrowed for the call. */
typedef struct {
    const char *method;        /* "GET", "POST", ... */
    const char *path;          /* without the query string */
    const char *authorization; /* the Authorization header, NULL when absent */
    const char *body;          /* may be NULL when body_len is 0; need not be NUL-terminated */
    size_t body_len;
    int body_too_large; /* the server stopped reading past max_body */
} kv_http_request;

/* One response: body is malloc'ed (kv_http_response_clear). */
typedef struct {
    int status;
    const char *content_type; /* static */
    char *body;
    size_t body_len;
    const char *error_code; /* static; NULL on success (for the access log) */
    const char *route;      /* static: the route's pattern ("/v1/evidence/{id}"), "-" when
                               unknown; the access log prints it, never the raw path */
} kv_http_response;

void kv_http_response_clear(kv_http_response *r);

/*
 * Scopes: what a bearer token may do. Every route needs one (none for
 * /healthz and /metrics); a token without it is answered 403 permission.
 */
enum {
    KV_SCOPE_AUTHORIZE = 1u << 0,       /* "authorize": POST /v1/authorize */
    KV_SCOPE_VERIFY = 1u << 1,          /* "verify": POST /v1/verify/pin|cvc|arqc */
    KV_SCOPE_EVIDENCE_READ = 1u << 2,   /* "evidence:read": GET /v1/evidence/{id} */
    KV_SCOPE_BLOCKLIST_CHECK = 1u << 3, /* "blocklist:check": GET /v1/blocklist/{pan} */
    KV_SCOPE_BLOCKLIST_WRITE = 1u << 4, /* "blocklist:write": POST /v1/blocklist, DELETE */
    KV_SCOPE_REVERSE = 1u << 5,         /* "reverse": POST /v1/authorize/{id}/reverse */
    KV_SCOPE_LIABILITY = 1u << 6,       /* "liability": POST /v1/liability/assess */
};
/* A token listed without scopes. */
#define KV_SCOPES_DEFAULT                                                                          \
    (KV_SCOPE_AUTHORIZE | KV_SCOPE_VERIFY | KV_SCOPE_EVIDENCE_READ | KV_SCOPE_BLOCKLIST_CHECK)
#define KV_SCOPES_ALL 0x7fu

/* The name of one scope bit ("blocklist:write"), or "?". */
const char *kv_daemon_scope_name(unsigned scope);
/*
 * Parse "authorize,verify,..." (no spaces) into *out. Returns 0 or
 * KV_ERR_CONFIG with bad pointing at the unknown name (len in *bad_len).
 */
int kv_daemon_scopes_parse(const char *s, size_t len, unsigned *out, const char **bad,
                           size_t *bad_len);

/* The bearer tokens: SHA-256 of each, compared in constant time, and the scopes of each. */
typedef struct {
    size_t n;
    uint8_t hash[KV_DAEMON_MAX_TOKENS][32];
    unsigned scopes[KV_DAEMON_MAX_TOKENS];
} kv_daemon_tokens;

/*
 * Read tokens from a file: one per line, "TOKEN" or "TOKEN scope,scope,...";
 * blank lines and lines starting with '#' skipped, surrounding white space
 * trimmed; at least one. A token without scopes gets KV_SCOPES_DEFAULT. The
 * file's bytes are wiped after hashing. Returns 0, KV_ERR_IO, KV_ERR_CONFIG
 * (no token, too many, an unknown scope, or the file is readable by
 * group/others; err says which, never the token).
 */
int kv_daemon_tokens_load(const char *path, kv_daemon_tokens *t, char *err, size_t errlen);
/* Add one token with KV_SCOPES_DEFAULT (tests, the fuzz target). Returns 0 or KV_ERR_CONFIG when
 * full/empty. */
int kv_daemon_tokens_add(kv_daemon_tokens *t, const char *token, size_t len);
/* Add one token with the scopes given. */
int kv_daemon_tokens_add_scoped(kv_daemon_tokens *t, const char *token, size_t len,
                                unsigned scopes);

typedef struct kv_daemon kv_daemon;

/*
 * A worker's handler state. session (may be NULL: every endpoint that needs
 * the HSM or the store answers 503) is borrowed; tokens are copied; metrics
 * (may be NULL) is borrowed shared memory. max_body 0: the default.
 */
int kv_daemon_new(kv_app *session, const kv_daemon_tokens *tokens, kv_daemon_metrics *metrics,
                  size_t max_body, kv_daemon **out);
/* NULL is a no-op. */
void kv_daemon_free(kv_daemon *d);

/* The body limit in effect (the server stops reading beyond it). */
size_t kv_daemon_max_body(const kv_daemon *d);

/*
 * Handle one request. Always fills res (status 500 with a JSON error when
 * even that fails for lack of memory: body may then be NULL). Returns 0, or
 * KV_ERR_NOMEM when no response body could be built.
 */
int kv_daemon_handle(kv_daemon *d, const kv_http_request *req, kv_http_response *res);

#endif

/*
 * One kortvagtd worker process: libmicrohttpd on the listening socket the
 * master bound and shares with every worker, one PKCS#11 session and one
 * store connection of its own (opened after the fork), the handler of
 * handler.h. SIGTERM: stop accepting, finish the requests in flight (up to
 * drain_seconds), exit. Every request must be read whole within
 * request_read_timeout (from the accept, or from its request line on a
 * kept-alive connection), else the connection is closed; one address holds at
 * most max_connections_per_ip connections of a worker.
 */
#ifndef KV_DAEMON_SERVER_H
#define KV_DAEMON_SERVER_H

#include "src/daemon/handler.h"
#include "src/daemon/metrics.h"

#include <stddef.h>

typedef struct {
    int listen_fd;
    const char *config_path; /* NULL: the search order of config.h */
    const char *store_url;   /* NULL: the configuration's */
    const kv_daemon_tokens *tokens;
    kv_daemon_metrics *metrics; /* shared */
    size_t max_body;
    unsigned connection_timeout; /* seconds */
    unsigned drain_seconds;
    int access_log;
    const char *tls_key_pem; /* both or neither: HTTPS */
    const char *tls_cert_pem;
    const char *tls_priorities;      /* GnuTLS priority string; NULL: libmicrohttpd's */
    const char *tls_client_ca_pem;   /* NULL: no client certificates; else required */
    unsigned request_read_timeout;   /* seconds to read a whole request (0: 10) */
    unsigned max_connections_per_ip; /* per worker (0: 16) */
} kv_daemon_worker_opts;

/* The exit status of a worker whose token login failed (wrong PIN): not restarted. */
#define KV_DAEMON_EXIT_LOGIN 5

/*
 * 1 when a failed open (r, and the text why: kv_hsm_last_error or the
 * session's err) was a login the token refused (wrong, missing, locked or
 * expired PIN), which must not be tried again; 0 for anything else.
 */
int kv_daemon_login_refused(int r, const char *why);

/*
 * Run a worker until SIGTERM/SIGINT (which the caller has blocked in this
 * thread, with SIGHUP, so that every thread inherits the mask). SIGHUP:
 * forget the cached key handles (kv_hsm_keys_flush) before the next request.
 * Returns the process exit status: 0 after a clean shutdown, 3 when the
 * session cannot be opened, KV_DAEMON_EXIT_LOGIN when the token login failed,
 * 4 when the HTTP server cannot start.
 */
int kv_daemon_worker_run(const kv_daemon_worker_opts *o);

#endif

/*
 * One kortvagtd worker process: libmicrohttpd on the listening socket the
 * master bound and shares with every worker, one PKCS#11 session and one
 * store connection of its own (opened after the fork), the handler of
 * handler.h. SIGTERM: stop accepting, finish the requests in flight (up to
 * drain_seconds), exit.
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
} kv_daemon_worker_opts;

/*
 * Run a worker until SIGTERM/SIGINT (which the caller has blocked in this
 * thread, so that every thread inherits the mask). Returns the process exit
 * status: 0 after a clean shutdown, 3 when the session cannot be opened, 4
 * when the HTTP server cannot start.
 */
int kv_daemon_worker_run(const kv_daemon_worker_opts *o);

#endif

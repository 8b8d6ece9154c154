/* see server.h */
#include "src/daemon/server.h"
#include "src/app/app.h"
#include "src/base/err.h"

#include <microhttpd.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One request's state between libmicrohttpd's calls. */
typedef struct {
    char *body;
    size_t len, cap;
    int too_large;
} conn_ctx;

typedef struct {
    kv_daemon *handler;
    size_t max_body;
    int access_log;
    int inflight; /* requests begun and not completed (atomic) */
    int draining; /* set once SIGTERM arrived (atomic) */
} worker;

static enum MHD_Result respond(worker *w, struct MHD_Connection *c, const char *method,
                               const char *url, conn_ctx *cc)
{
    kv_http_request req;
    kv_http_response res;
    struct MHD_Response *mr;
    enum MHD_Result ok;
    static const char oom[] = "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";

    memset(&req, 0, sizeof(req));
    req.method = method;
    req.path = url;
    req.authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    req.body = cc->body;
    req.body_len = cc->len;
    req.body_too_large = cc->too_large;
    kv_daemon_handle(w->handler, &req, &res);
    if (res.body != NULL) {
        mr = MHD_create_response_from_buffer_with_free_callback(res.body_len, res.body, free);
        if (mr != NULL)
            res.body = NULL; /* transferred */
    } else {
        mr = MHD_create_response_from_buffer(sizeof(oom) - 1, (void *)oom, MHD_RESPMEM_PERSISTENT);
    }
    if (mr == NULL) {
        kv_http_response_clear(&res);
        return MHD_NO;
    }
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE,
                            res.content_type != NULL ? res.content_type : "application/json");
    if (__atomic_load_n(&w->draining, __ATOMIC_RELAXED) || cc->too_large)
        MHD_add_response_header(mr, MHD_HTTP_HEADER_CONNECTION, "close");
    ok = MHD_queue_response(c, (unsigned)res.status, mr);
    MHD_destroy_response(mr);
    if (w->access_log) {
        /* the endpoint's name, never the path: a block list path holds a PAN */
        fprintf(stderr, "kortvagtd[%d]: %s %s %d %s\n", (int)getpid(), method,
                res.status == 404                            ? "(unknown)"
                : url[1] == 'v' && strstr(url, "blocklist/") ? "/v1/blocklist/*"
                                                             : url,
                res.status, res.error_code != NULL ? res.error_code : "ok");
    }
    kv_http_response_clear(&res);
    return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    worker *w = cls;
    conn_ctx *cc = *con_cls;
    (void)version;

    if (cc == NULL) {
        const char *cl;
        if ((cc = calloc(1, sizeof(*cc))) == NULL)
            return MHD_NO;
        *con_cls = cc;
        __atomic_fetch_add(&w->inflight, 1, __ATOMIC_SEQ_CST);
        cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl != NULL && (strlen(cl) > 12 || strtoull(cl, NULL, 10) > w->max_body)) {
            /* answer 413 at once without reading the body (the connection closes) */
            cc->too_large = 1;
            return respond(w, c, method, url, cc);
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (cc->too_large)
            return MHD_YES;
        if (n > w->max_body - cc->len) {
            cc->too_large = 1;
            free(cc->body);
            cc->body = NULL;
            cc->len = cc->cap = 0;
            return MHD_YES;
        }
        if (cc->len + n > cc->cap) {
            size_t ncap = cc->cap != 0 ? cc->cap : 1024;
            char *p;
            while (ncap < cc->len + n)
                ncap *= 2;
            if ((p = realloc(cc->body, ncap)) == NULL)
                return MHD_NO;
            cc->body = p;
            cc->cap = ncap;
        }
        memcpy(cc->body + cc->len, upload_data, n);
        cc->len += n;
        return MHD_YES;
    }
    return respond(w, c, method, url, cc);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    worker *w = cls;
    conn_ctx *cc = *con_cls;
    (void)c;
    (void)toe;
    if (cc == NULL)
        return;
    free(cc->body);
    free(cc);
    *con_cls = NULL;
    __atomic_fetch_sub(&w->inflight, 1, __ATOMIC_SEQ_CST);
}

static void on_mhd_error(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    fprintf(stderr, "kortvagtd[%d]: http: ", (int)getpid());
    vfprintf(stderr, fmt, ap);
}

int kv_daemon_worker_run(const kv_daemon_worker_opts *o)
{
    kv_app_opts so;
    kv_app *session = NULL;
    struct MHD_Daemon *mhd = NULL;
    worker w;
    char err[1024];
    sigset_t set;
    int sig = 0, r, status = 0;
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;

    memset(&w, 0, sizeof(w));
    memset(&so, 0, sizeof(so));
    so.config = o->config_path;
    so.store = o->store_url;
    /* after the fork: a PKCS#11 session is not shared across processes */
    if ((r = kv_app_open(&so, &session, err, sizeof(err))) != 0) {
        fprintf(stderr, "kortvagtd[%d]: cannot start: %s\n", (int)getpid(), err);
        status = 3;
        goto out;
    }
    if ((r = kv_daemon_new(session, o->tokens, o->metrics, o->max_body, &w.handler)) != 0) {
        status = 3;
        goto out;
    }
    w.max_body = kv_daemon_max_body(w.handler);
    w.access_log = o->access_log;
    {
        struct MHD_OptionItem tls[3] = {
            {MHD_OPTION_END, 0, NULL}, {MHD_OPTION_END, 0, NULL}, {MHD_OPTION_END, 0, NULL}};
        if (o->tls_key_pem != NULL) {
            flags |= MHD_USE_TLS;
            tls[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)o->tls_key_pem};
            tls[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)o->tls_cert_pem};
        }
        mhd = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, &w, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_error, NULL,
            MHD_OPTION_LISTEN_SOCKET, o->listen_fd, MHD_OPTION_CONNECTION_TIMEOUT,
            o->connection_timeout, MHD_OPTION_NOTIFY_COMPLETED, on_completed, &w,
            MHD_OPTION_CONNECTION_LIMIT, 1000U, MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
    }
    if (mhd == NULL) {
        fprintf(stderr, "kortvagtd[%d]: the HTTP server did not start\n", (int)getpid());
        status = 4;
        goto out;
    }
    fprintf(stderr, "kortvagtd[%d]: worker ready (store %s)\n", (int)getpid(),
            kv_store_backend(kv_app_store(session)));
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    while (sigwait(&set, &sig) != 0)
        ;
    /* stop accepting; the other workers and the master keep the socket */
    __atomic_store_n(&w.draining, 1, __ATOMIC_RELAXED);
    {
        /* close our copy: once every process has, new connections are refused */
        MHD_socket lfd = MHD_quiesce_daemon(mhd);
        if (lfd != MHD_INVALID_SOCKET)
            close(lfd);
    }
    /*
     * Drain until no request is in flight AND no connection is open: a client
     * on a kept-alive connection may start another request at any moment (it
     * is answered, with Connection: close), and stopping in between would
     * close a connection whose decision was committed but not yet sent.
     */
    for (unsigned i = 0; i < o->drain_seconds * 100; i++) {
        const union MHD_DaemonInfo *di =
            MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
        if (__atomic_load_n(&w.inflight, __ATOMIC_SEQ_CST) == 0 &&
            (di == NULL || di->num_connections == 0))
            break;
        struct timespec d = {0, 10 * 1000000L};
        nanosleep(&d, NULL);
    }
out:
    if (mhd != NULL)
        MHD_stop_daemon(mhd);
    kv_daemon_free(w.handler);
    kv_app_close(session);
    return status;
}

/* see server.h */
#include "src/daemon/server.h"
#include "src/app/app.h"
#include "src/base/err.h"
#include "src/base/secure.h"

#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* One request's state between libmicrohttpd's calls. */
typedef struct {
    char *body;
    size_t len, cap;
    int too_large;
    int refused; /* answered before the body was read (refuse): ignore the rest */
} conn_ctx;

/*
 * One open connection, for the absolute read deadline: libmicrohttpd's
 * connection_timeout is an idle timeout (every byte restarts it), so a
 * client trickling one byte at a time would hold the connection forever.
 * deadline is when the request being read must be complete (monotonic ms; 0:
 * no request is being read). The worker's main thread sweeps the list and
 * shuts down the socket of a connection past its deadline; libmicrohttpd then
 * sees the end of the stream and closes it. A record leaves the list (under
 * the lock) before libmicrohttpd closes the descriptor.
 */
typedef struct conn_rec {
    struct conn_rec *prev, *next;
    int fd;
    int shut;
    int64_t deadline;
    int cert_ok; /* the client certificate was verified (HTTP thread only) */
} conn_rec;

typedef struct {
    kv_daemon *handler;
    kv_hsm *hsm; /* for the key flush on SIGHUP; may be NULL */
    size_t max_body;
    int access_log;
    int mtls;          /* client certificates required */
    int64_t read_ms;   /* request_read_timeout */
    int64_t idle_ms;   /* connection_timeout */
    int inflight;      /* requests begun and not completed (atomic) */
    int draining;      /* set once SIGTERM arrived (atomic) */
    int flush_keys;    /* set by SIGHUP, done before the next request (atomic) */
    unsigned long cut; /* connections closed at their deadline */
    pthread_mutex_t lock;
    conn_rec *conns;
} worker;

/*
 * Each connection's buffer (request line, headers, the body as it arrives).
 * Above 32 KiB libmicrohttpd maps it (mmap) instead of taking it from malloc,
 * so the raw request goes back to the kernel when the connection closes
 * instead of lying unwiped in the heap.
 */
#define KV_DAEMON_CONN_MEMORY (64 * 1024)

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static conn_rec *rec_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci != NULL ? ci->socket_context : NULL;
}

/* Set the deadline of c's connection: at (0: none); with keep_earlier an earlier one stays. */
static void set_deadline(worker *w, struct MHD_Connection *c, int64_t at, int keep_earlier)
{
    conn_rec *r = rec_of(c);
    if (r == NULL)
        return;
    pthread_mutex_lock(&w->lock);
    if (!keep_earlier || r->deadline == 0 || at < r->deadline)
        r->deadline = at;
    pthread_mutex_unlock(&w->lock);
}

/* Shut down every connection past its deadline (the worker's main thread). */
static void sweep(worker *w)
{
    int64_t now = now_ms();
    pthread_mutex_lock(&w->lock);
    for (conn_rec *r = w->conns; r != NULL; r = r->next) {
        if (r->deadline != 0 && now >= r->deadline && !r->shut) {
            shutdown(r->fd, SHUT_RDWR);
            r->shut = 1;
            w->cut++;
        }
    }
    pthread_mutex_unlock(&w->lock);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    worker *w = cls;
    conn_rec *r = *socket_context;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci == NULL || (r = calloc(1, sizeof(*r))) == NULL)
            return; /* no deadline for this one; the idle timeout still holds */
        r->fd = ci->connect_fd;
        /* the first request (and a TLS handshake) from the accept on */
        r->deadline = now_ms() + w->read_ms;
        pthread_mutex_lock(&w->lock);
        r->next = w->conns;
        if (w->conns != NULL)
            w->conns->prev = r;
        w->conns = r;
        pthread_mutex_unlock(&w->lock);
        *socket_context = r;
        return;
    }
    if (r == NULL)
        return;
    pthread_mutex_lock(&w->lock);
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        w->conns = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    pthread_mutex_unlock(&w->lock);
    free(r);
    *socket_context = NULL;
}

/* The request line has arrived: the rest of the request within request_read_timeout. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    worker *w = cls;
    (void)uri;
    set_deadline(w, c, now_ms() + w->read_ms, 1);
    return NULL;
}

/* The method for the access log: a known one, else "-" (never raw input). */
static const char *log_method(const char *m)
{
    static const char *const known[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(m, known[i]) == 0)
            return known[i];
    return "-";
}

static void access_line(const worker *w, const char *method, const char *route, int status,
                        const char *code)
{
    if (!w->access_log)
        return;
    /* the route's pattern, never the path: a block list path holds a PAN */
    fprintf(stderr, "kortvagtd[%d]: %s %s %d %s\n", (int)getpid(), log_method(method),
            route != NULL ? route : "-", status, code != NULL ? code : "ok");
}

/* A fixed error answer before the request is read; the connection closes after it. */
static enum MHD_Result refuse(worker *w, struct MHD_Connection *c, const char *method, int status,
                              const char *code, const char *message)
{
    char body[256];
    struct MHD_Response *mr;
    enum MHD_Result ok;
    int n = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code,
                     message);
    set_deadline(w, c, 0, 0);
    mr = MHD_create_response_from_buffer((size_t)n, body, MHD_RESPMEM_MUST_COPY);
    if (mr == NULL)
        return MHD_NO;
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CONNECTION, "close");
    ok = MHD_queue_response(c, (unsigned)status, mr);
    MHD_destroy_response(mr);
    access_line(w, method, "-", status, code);
    return ok;
}

/* Did the client show a certificate that chains to tls_client_ca? */
static int client_cert_ok(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    gnutls_session_t s;
    unsigned status = 0, n = 0;
    if (ci == NULL || (s = (gnutls_session_t)ci->tls_session) == NULL)
        return 0;
    if (gnutls_certificate_type_get(s) != GNUTLS_CRT_X509 ||
        gnutls_certificate_get_peers(s, &n) == NULL || n == 0)
        return 0;
    return gnutls_certificate_verify_peers2(s, &status) == 0 && status == 0;
}

static enum MHD_Result respond(worker *w, struct MHD_Connection *c, const char *method,
                               const char *url, conn_ctx *cc)
{
    kv_http_request req;
    kv_http_response res;
    struct MHD_Response *mr;
    enum MHD_Result ok;
    static const char oom[] = "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";

    /* the request is read: no deadline while it is answered */
    set_deadline(w, c, 0, 0);
    /* SIGHUP: forget the cached key handles, between two requests of this thread */
    if (__atomic_exchange_n(&w->flush_keys, 0, __ATOMIC_SEQ_CST) && w->hsm != NULL)
        kv_hsm_keys_flush(w->hsm);
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
    access_line(w, method, res.route, res.status, res.error_code);
    kv_http_response_clear(&res);
    return ok;
}

/* Free a body buffer after overwriting it: it may hold a PIN block, a CVC or a PVV. */
static void body_free(conn_ctx *cc)
{
    if (cc->body != NULL) {
        kv_wipe(cc->body, cc->cap);
        free(cc->body);
    }
    cc->body = NULL;
    cc->len = cc->cap = 0;
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
        if (w->mtls) {
            /* once per connection: the certificate cannot change within it */
            conn_rec *rec = rec_of(c);
            if (rec == NULL || !rec->cert_ok) {
                if (!client_cert_ok(c)) {
                    cc->refused = 1;
                    return refuse(w, c, method, 403, "client_certificate",
                                  "a valid client certificate is required");
                }
                if (rec != NULL)
                    rec->cert_ok = 1;
            }
        }
        cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl != NULL && MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                      MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL) {
            /* which of the two frames the body is ambiguous (request smuggling): refuse */
            cc->refused = 1;
            return refuse(w, c, method, 400, "bad_request",
                          "Content-Length and Transfer-Encoding together");
        }
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
        if (cc->too_large || cc->refused)
            return MHD_YES;
        if (n > w->max_body - cc->len) {
            cc->too_large = 1;
            body_free(cc);
            return MHD_YES;
        }
        if (cc->len + n > cc->cap) {
            size_t ncap = cc->cap != 0 ? cc->cap : 1024;
            char *p;
            while (ncap < cc->len + n)
                ncap *= 2;
            /* not realloc: the old block would be freed unwiped */
            if ((p = malloc(ncap)) == NULL)
                return MHD_NO;
            if (cc->len > 0)
                memcpy(p, cc->body, cc->len);
            if (cc->body != NULL) {
                kv_wipe(cc->body, cc->cap);
                free(cc->body);
            }
            cc->body = p;
            cc->cap = ncap;
        }
        memcpy(cc->body + cc->len, upload_data, n);
        cc->len += n;
        return MHD_YES;
    }
    if (cc->refused)
        return MHD_YES; /* answered already */
    return respond(w, c, method, url, cc);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    worker *w = cls;
    conn_ctx *cc = *con_cls;
    (void)toe;
    /*
     * The answer is out; a kept-alive connection may wait idle for the next
     * request (connection_timeout), whose request line then starts the read
     * deadline (on_uri). A client trickling that line is cut here.
     */
    set_deadline(w, c, now_ms() + w->idle_ms + w->read_ms, 0);
    if (cc == NULL)
        return;
    body_free(cc);
    free(cc);
    *con_cls = NULL;
    __atomic_fetch_sub(&w->inflight, 1, __ATOMIC_SEQ_CST);
}

/*
 * libmicrohttpd's messages: one line each, no control characters (a message
 * may quote what a client sent), and the same message repeated within
 * 10 seconds (one per refused connection of a flood) is counted instead of
 * printed.
 */
static void on_mhd_error(void *cls, const char *fmt, va_list ap)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static char last[512];
    static int64_t last_at;
    static unsigned repeats;
    char line[512];
    int64_t now = now_ms();
    size_t n;
    (void)cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] == 0x7f)
            line[i] = '?';
    pthread_mutex_lock(&mu);
    if (strcmp(line, last) == 0 && now - last_at < 10000) {
        repeats++;
        pthread_mutex_unlock(&mu);
        return;
    }
    if (repeats > 0)
        fprintf(stderr, "kortvagtd[%d]: http: (the message before %u more times)\n", (int)getpid(),
                repeats);
    fprintf(stderr, "kortvagtd[%d]: http: %s\n", (int)getpid(), line);
    memcpy(last, line, n + 1);
    last_at = now;
    repeats = 0;
    pthread_mutex_unlock(&mu);
}

int kv_daemon_login_refused(int r, const char *why)
{
    /*
     * SoftHSM2 reports a token file read while another process rewrites it as
     * CKR_USER_PIN_NOT_INITIALIZED (hsm/ retries it): no PIN was checked, so
     * trying again later is safe. Every other login failure is final.
     */
    return r == KV_ERR_HSM_LOGIN &&
           (why == NULL || strstr(why, "CKR_USER_PIN_NOT_INITIALIZED") == NULL);
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
    unsigned long cut_reported = 0;
    int64_t cut_at;
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;

    memset(&w, 0, sizeof(w));
    memset(&so, 0, sizeof(so));
    pthread_mutex_init(&w.lock, NULL);
    so.config = o->config_path;
    so.store = o->store_url;
    /* after the fork: a PKCS#11 session is not shared across processes */
    if ((r = kv_app_open(&so, &session, err, sizeof(err))) != 0) {
        fprintf(stderr, "kortvagtd[%d]: cannot start: %s\n", (int)getpid(), err);
        /* a wrong PIN is never tried again: the master stops instead of restarting */
        status = kv_daemon_login_refused(r, err) ? KV_DAEMON_EXIT_LOGIN : 3;
        goto out;
    }
    if ((r = kv_daemon_new(session, o->tokens, o->metrics, o->max_body, &w.handler)) != 0) {
        status = 3;
        goto out;
    }
    w.hsm = kv_app_hsm(session);
    w.max_body = kv_daemon_max_body(w.handler);
    w.access_log = o->access_log;
    w.read_ms = (int64_t)(o->request_read_timeout != 0 ? o->request_read_timeout : 10) * 1000;
    w.idle_ms = (int64_t)o->connection_timeout * 1000;
    w.mtls = o->tls_key_pem != NULL && o->tls_client_ca_pem != NULL;
    {
        struct MHD_OptionItem tls[5];
        size_t nt = 0;
        if (o->tls_key_pem != NULL) {
            flags |= MHD_USE_TLS;
            tls[nt++] =
                (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)o->tls_key_pem};
            tls[nt++] =
                (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)o->tls_cert_pem};
            if (o->tls_priorities != NULL)
                tls[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
                                                    (void *)o->tls_priorities};
            if (o->tls_client_ca_pem != NULL)
                tls[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0,
                                                    (void *)o->tls_client_ca_pem};
        }
        tls[nt] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
        mhd = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, &w, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_error, NULL,
            MHD_OPTION_LISTEN_SOCKET, o->listen_fd, MHD_OPTION_CONNECTION_TIMEOUT,
            o->connection_timeout, MHD_OPTION_NOTIFY_COMPLETED, on_completed, &w,
            MHD_OPTION_NOTIFY_CONNECTION, on_connection, &w, MHD_OPTION_URI_LOG_CALLBACK, on_uri,
            &w, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)KV_DAEMON_CONN_MEMORY,
            MHD_OPTION_CONNECTION_LIMIT, 1000U, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
            o->max_connections_per_ip != 0 ? o->max_connections_per_ip : 16U, MHD_OPTION_ARRAY, tls,
            MHD_OPTION_END);
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
    sigaddset(&set, SIGHUP);
    cut_at = now_ms() - 10000;
    for (;;) {
        struct timespec tick = {0, 100 * 1000000L};
        sig = sigtimedwait(&set, NULL, &tick);
        if (sig == SIGTERM || sig == SIGINT)
            break;
        if (sig == SIGHUP) /* acted on by the HTTP thread before its next request */
            __atomic_store_n(&w.flush_keys, 1, __ATOMIC_SEQ_CST);
        sweep(&w);
        if (w.cut != cut_reported && now_ms() - cut_at >= 10000) {
            /* at most one line in 10 s, however many clients trickle */
            fprintf(stderr, "kortvagtd[%d]: %lu connection(s) closed at request_read_timeout\n",
                    (int)getpid(), w.cut - cut_reported);
            cut_reported = w.cut;
            cut_at = now_ms();
        }
    }
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
     * close a connection whose decision was committed but not yet sent. The
     * read deadline still holds: a trickling client does not hold the drain.
     */
    for (unsigned i = 0; i < o->drain_seconds * 100; i++) {
        const union MHD_DaemonInfo *di =
            MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
        if (__atomic_load_n(&w.inflight, __ATOMIC_SEQ_CST) == 0 &&
            (di == NULL || di->num_connections == 0))
            break;
        struct timespec d = {0, 10 * 1000000L};
        nanosleep(&d, NULL);
        if (i % 10 == 0)
            sweep(&w);
    }
out:
    if (mhd != NULL)
        MHD_stop_daemon(mhd);
    kv_daemon_free(w.handler);
    kv_app_close(session);
    pthread_mutex_destroy(&w.lock);
    return status;
}

/*
 * kortvagtd: the master process. It reads the configuration and the bearer
 * tokens, binds the listening socket, forks the workers (server.h) that
 * share it, restarts a worker that dies, and on SIGTERM/SIGINT tells every
 * worker to finish its requests in flight and waits for them.
 *
 * Configuration ([daemon] of the INI file, see scripts/kortvagtd.conf.sample;
 * flags override): listen (127.0.0.1), port (8470), workers (2),
 * tokens_file (required), max_body (65536), connection_timeout (30),
 * drain_seconds (10), access_log (false), tls_key + tls_cert (PEM files:
 * HTTPS), tls_priorities, tls_client_ca (mutual TLS), request_read_timeout
 * (10), max_connections_per_ip (16). The store is [store] url /
 * $KORTVAGT_STORE / --store. Before forking, the master logs in to the token
 * once: a wrong PIN ends the daemon (exit 1) without another try. SIGHUP is
 * passed on to the workers (they look their keys up again).
 */
#include "src/app/app.h"
#include "src/app/settings.h"
#include "src/base/err.h"
#include "src/base/jalloc.h"
#include "src/base/secure.h"
#include "src/config/config.h"
#include "src/daemon/handler.h"
#include "src/daemon/metrics.h"
#include "src/daemon/server.h"
#include "src/store/store.h"

#include "kv_build_config.h"

#include <microhttpd.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS KV_SETTINGS_DAEMON_MAX_WORKERS
#define PEM_MAX 65536

typedef struct {
    const char *config_path;
    const char *listen;
    const char *store_url;
    const char *tokens_file;
    const char *tls_key;
    const char *tls_cert;
    const char *tls_priorities;
    const char *tls_client_ca;
    long port;
    long workers;
    long max_body;
    long timeout;
    long drain;
    long read_timeout;
    long per_ip;
    int access_log;
} settings;

static void usage(FILE *f)
{
    fprintf(f, "Usage: kortvagtd [--config FILE] [--listen ADDR] [--port N] [--workers N]\n"
               "                 [--tokens FILE] [--store URL] [--max-body BYTES] [--access-log]\n"
               "       kortvagtd --version | --help\n\n"
               "The kortvagt HTTP/JSON service (POST /v1/authorize, /v1/verify/pin|cvc|arqc,\n"
               "/v1/liability/assess, GET /v1/evidence/ID, /healthz, /metrics).\n\n"
               "  --config FILE   INI file (default $KORTVAGT_CONFIG, ./kortvagt.conf,\n"
               "                  /etc/kortvagt/kortvagt.conf); its [daemon] section:\n"
               "                  listen, port, workers, tokens_file, max_body,\n"
               "                  connection_timeout, request_read_timeout,\n"
               "                  max_connections_per_ip, drain_seconds, access_log, tls_key,\n"
               "                  tls_cert, tls_priorities, tls_client_ca\n"
               "  --listen ADDR   IPv4 or IPv6 address (default 127.0.0.1)\n"
               "  --port N        TCP port (default 8470; 0: any, printed on start)\n"
               "  --workers N     worker processes, each with its own PKCS#11 session (default 2)\n"
               "  --tokens FILE   bearer tokens, one per line (TOKEN [scope,...]), mode 600\n"
               "                  (required)\n"
               "  --store URL     sqlite:PATH or postgresql://... (default $KORTVAGT_STORE)\n"
               "  --max-body N    largest request body in bytes (default 65536; larger: 413)\n"
               "  --access-log    one line per request on stderr (no bodies, no secrets)\n"
               "  --version       print the version and exit\n\n"
               "The token PIN comes from $KORTVAGT_PIN or $KORTVAGT_PIN_FILE, never from argv.\n"
               "SIGTERM: stop accepting, finish the requests in flight, exit 0.\n"
               "SIGHUP: the workers look every key up on the token again (after a rotation).\n");
}

static int parse_long(const char *name, const char *v, long min, long max, long *out)
{
    char *end;
    long x;
    errno = 0;
    x = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || x < min || x > max) {
        fprintf(stderr, "kortvagtd: %s: '%s' is not a number %ld..%ld\n", name, v, min, max);
        return -1;
    }
    *out = x;
    return 0;
}

/* Read a small file (PEM) into a NUL-terminated malloc'ed buffer. */
static char *read_pem(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;
    if (f == NULL) {
        fprintf(stderr, "kortvagtd: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    if ((buf = malloc(PEM_MAX + 1)) == NULL) {
        fclose(f);
        return NULL;
    }
    n = fread(buf, 1, PEM_MAX, f);
    fclose(f);
    if (n == 0 || n == PEM_MAX) {
        fprintf(stderr, "kortvagtd: %s: empty or larger than %d bytes\n", path, PEM_MAX);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

static enum MHD_Result no_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)cls, (void)c, (void)url, (void)method, (void)version, (void)upload, (void)upload_size,
        (void)con_cls;
    return MHD_NO;
}

static void tls_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    fprintf(stderr, "kortvagtd: TLS: ");
    vfprintf(stderr, fmt, ap);
}

/*
 * Try the TLS settings once in the master (a libmicrohttpd instance without a
 * socket), so that a bad key, certificate, priority string or client CA stops
 * the daemon with a message instead of failing in every worker.
 */
static int tls_check(const char *key, const char *cert, const char *prio, const char *ca)
{
    struct MHD_OptionItem o[5];
    struct MHD_Daemon *m;
    size_t n = 0;
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)key};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)cert};
    if (prio != NULL)
        o[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)prio};
    if (ca != NULL)
        o[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, (void *)ca};
    o[n] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    m = MHD_start_daemon(MHD_USE_TLS | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                         no_request, NULL, MHD_OPTION_EXTERNAL_LOGGER, tls_log, NULL,
                         MHD_OPTION_ARRAY, o, MHD_OPTION_END);
    if (m == NULL) {
        fprintf(stderr,
                "kortvagtd: the TLS settings were refused (tls_key, tls_cert, "
                "tls_priorities '%s', tls_client_ca)\n",
                prio != NULL ? prio : "");
        return -1;
    }
    MHD_stop_daemon(m);
    return 0;
}

static int bind_listener(const char *addr, long port, int *out, unsigned *bound_port)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int fd = -1, one = 1;
    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, addr, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        ((struct sockaddr_in *)&ss)->sin_family = AF_INET;
        ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
        sl = sizeof(struct sockaddr_in);
    } else if (inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
        ((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
        sl = sizeof(struct sockaddr_in6);
    } else {
        fprintf(stderr, "kortvagtd: listen: '%s' is not an IPv4 or IPv6 address\n", addr);
        return -1;
    }
    if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 1024) != 0) {
        fprintf(stderr, "kortvagtd: listen on %s:%ld: %s\n", addr, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *bound_port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                                : ((struct sockaddr_in6 *)&ss)->sin6_port);
    *out = fd;
    return 0;
}

static pid_t spawn(const kv_daemon_worker_opts *wo)
{
    pid_t p = fork();
    if (p == 0) {
        /* the mask (SIGTERM, SIGINT, SIGCHLD blocked) is inherited; the worker sigwaits */
        signal(SIGCHLD, SIG_DFL);
        /* a worker never outlives its master */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        _exit(kv_daemon_worker_run(wo));
    }
    if (p < 0)
        fprintf(stderr, "kortvagtd: fork: %s\n", strerror(errno));
    return p;
}

/*
 * The SQLite checkpointer: one PASSIVE checkpoint every 50 ms on a connection
 * of its own, until SIGTERM. The workers open the store with
 * checkpoint=external, so no request waits for a checkpoint's fsync (store.h).
 */
static int checkpointer_run(const char *url)
{
    kv_store *s = NULL;
    char err[512];
    sigset_t set;
    int r, reported = 0;

    if (kv_store_open(url, &s, err, sizeof(err)) != 0) {
        fprintf(stderr, "kortvagtd: checkpointer: %s\n", err);
        return 1;
    }
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    for (;;) {
        struct timespec tmo = {0, 50 * 1000000L};
        int sig = sigtimedwait(&set, NULL, &tmo);
        if ((r = kv_store_checkpoint(s)) != 0 && !reported) {
            fprintf(stderr, "kortvagtd: checkpointer: %s\n", kv_store_last_error(s));
            reported = 1;
        }
        if (sig == SIGTERM || sig == SIGINT)
            break;
    }
    kv_store_close(s);
    return 0;
}

static pid_t spawn_checkpointer(const char *url)
{
    pid_t p = fork();
    if (p == 0) {
        signal(SIGCHLD, SIG_DFL);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        _exit(checkpointer_run(url));
    }
    if (p < 0)
        fprintf(stderr, "kortvagtd: fork: %s\n", strerror(errno));
    return p;
}

int main(int argc, char **argv)
{
    settings st;
    kv_settings ks; /* flags > environment > file > defaults */
    kv_config *cfg = NULL;
    kv_daemon_tokens tokens;
    kv_daemon_worker_opts wo;
    kv_daemon_metrics *metrics = NULL;
    pid_t pids[MAX_WORKERS], ckpt = 0;
    const char *ckpt_url = NULL;
    char worker_url[4400];
    struct timespec started[MAX_WORKERS];
    char err[1024], *key_pem = NULL, *cert_pem = NULL, *ca_pem = NULL;
    sigset_t set;
    unsigned port = 0;
    int fd = -1, rc = 1, stopping = 0, alive = 0, login_failed = 0;

    kv_disable_core_dumps();
    /* every JSON block (request bodies may hold PIN blocks, CVCs, PVVs) is wiped when freed */
    kv_jalloc_install();
    memset(&st, 0, sizeof(st));
    memset(&tokens, 0, sizeof(tokens));
    memset(pids, 0, sizeof(pids));
    st.port = -1; /* not given; the defaults are in src/app/settings.c */
    /* flags first (they override the file) */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "--version") == 0) {
            printf("kortvagtd %s\n", KV_VERSION);
            return 0;
        }
        if (strcmp(a, "--access-log") == 0) {
            st.access_log = 1;
            continue;
        }
        if (val == NULL) {
            fprintf(stderr, "kortvagtd: %s: unknown option or missing value (see --help)\n", a);
            return 2;
        }
        i++;
        if (strcmp(a, "--config") == 0)
            st.config_path = val;
        else if (strcmp(a, "--listen") == 0)
            st.listen = val;
        else if (strcmp(a, "--store") == 0)
            st.store_url = val;
        else if (strcmp(a, "--tokens") == 0)
            st.tokens_file = val;
        else if (strcmp(a, "--port") == 0) {
            if (parse_long("--port", val, 0, 65535, &st.port) != 0)
                return 2;
        } else if (strcmp(a, "--workers") == 0) {
            if (parse_long("--workers", val, 1, MAX_WORKERS, &st.workers) != 0)
                return 2;
        } else if (strcmp(a, "--max-body") == 0) {
            if (parse_long("--max-body", val, 1, 64L << 20, &st.max_body) != 0)
                return 2;
        } else {
            fprintf(stderr, "kortvagtd: %s: unknown option (see --help)\n", a);
            return 2;
        }
    }
    {
        /* flags > environment > file > defaults (src/app/settings.h) */
        kv_settings_flags sf = {.config = st.config_path, .store = st.store_url};
        if (kv_settings_init(&ks, &sf, err, sizeof(err)) != 0 ||
            kv_settings_load_config(&ks, &cfg, err, sizeof(err)) != 0) {
            fprintf(stderr, "kortvagtd: configuration: %s\n", err);
            kv_settings_clear(&ks);
            return 2;
        }
    }
    {
        /* flags > [daemon] of the file > defaults (src/app/settings.h) */
        kv_settings_daemon_flags df = {st.listen,  st.tokens_file, st.port,
                                       st.workers, st.max_body,    st.access_log};
        kv_settings_daemon ds;
        if (kv_settings_daemon_resolve(&df, cfg, &ds, err, sizeof(err)) != 0) {
            fprintf(stderr, "kortvagtd: %s\n", err);
            goto out;
        }
        st.listen = ds.listen;
        st.tokens_file = ds.tokens_file;
        st.tls_key = ds.tls_key;
        st.tls_cert = ds.tls_cert;
        st.tls_priorities = ds.tls_priorities;
        st.tls_client_ca = ds.tls_client_ca;
        st.read_timeout = ds.request_read_timeout;
        st.per_ip = ds.max_connections_per_ip;
        st.port = ds.port;
        st.workers = ds.workers;
        st.max_body = ds.max_body;
        st.timeout = ds.connection_timeout;
        st.drain = ds.drain_seconds;
        st.access_log = ds.access_log;
    }
    if (st.tokens_file == NULL) {
        fprintf(stderr, "kortvagtd: no bearer tokens: give --tokens FILE or [daemon] "
                        "tokens_file\n");
        rc = 2;
        goto out;
    }
    if (kv_daemon_tokens_load(st.tokens_file, &tokens, err, sizeof(err)) != 0) {
        fprintf(stderr, "kortvagtd: %s\n", err);
        rc = 2;
        goto out;
    }
    if ((st.tls_key == NULL) != (st.tls_cert == NULL)) {
        fprintf(stderr, "kortvagtd: [daemon] tls_key and tls_cert go together\n");
        rc = 2;
        goto out;
    }
    if (st.tls_key != NULL) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            fprintf(stderr, "kortvagtd: this libmicrohttpd has no TLS support\n");
            goto out;
        }
        if ((key_pem = read_pem(st.tls_key)) == NULL ||
            (cert_pem = read_pem(st.tls_cert)) == NULL ||
            (st.tls_client_ca != NULL && (ca_pem = read_pem(st.tls_client_ca)) == NULL))
            goto out;
        if (tls_check(key_pem, cert_pem, st.tls_priorities, ca_pem) != 0)
            goto out;
    } else if (st.tls_client_ca != NULL) {
        fprintf(stderr, "kortvagtd: [daemon] tls_client_ca needs tls_key and tls_cert\n");
        rc = 2;
        goto out;
    }
    /*
     * Log in to the token once here, before any worker exists: a wrong PIN
     * stops the daemon now with one message, instead of every worker trying
     * it again and again (a real HSM locks the PIN after a few tries). The
     * workers log in once each (a PKCS#11 login belongs to a process) and
     * are not restarted when that fails.
     */
    {
        kv_hsm *h = NULL;
        int r = kv_app_hsm_open(&ks, &h);
        if (kv_daemon_login_refused(r, kv_hsm_last_error(NULL))) {
            fprintf(stderr,
                    "kortvagtd: HSM: %s; not trying again (check "
                    "$KORTVAGT_PIN / $KORTVAGT_PIN_FILE)\n",
                    kv_hsm_last_error(NULL));
            kv_settings_clear(&ks);
            goto out;
        }
        if (r != 0)
            fprintf(stderr, "kortvagtd: the HSM is not available yet: %s (the workers try again)\n",
                    kv_hsm_last_error(NULL));
        kv_hsm_close(h);
        /* the workers read the PIN themselves; the master keeps no copy */
        kv_settings_clear(&ks);
    }
    if (bind_listener(st.listen, st.port, &fd, &port) != 0)
        goto out;
    if ((metrics = kv_daemon_metrics_new_shared()) == NULL) {
        fprintf(stderr, "kortvagtd: shared memory for the metrics: %s\n", strerror(errno));
        goto out;
    }
    memset(&wo, 0, sizeof(wo));
    wo.listen_fd = fd;
    wo.config_path = st.config_path;
    wo.store_url = st.store_url;
    wo.tokens = &tokens;
    wo.metrics = metrics;
    wo.max_body = (size_t)st.max_body;
    wo.connection_timeout = (unsigned)st.timeout;
    wo.drain_seconds = (unsigned)st.drain;
    wo.access_log = st.access_log;
    wo.tls_key_pem = key_pem;
    wo.tls_cert_pem = cert_pem;
    wo.tls_priorities = st.tls_priorities;
    wo.tls_client_ca_pem = ca_pem;
    wo.request_read_timeout = (unsigned)st.read_timeout;
    wo.max_connections_per_ip = (unsigned)st.per_ip;
    {
        const char *url = ks.store.url;
        int n;
        if (strncmp(url, "sqlite:", 7) == 0 && strstr(url, "checkpoint=") == NULL &&
            (n = snprintf(worker_url, sizeof(worker_url), "%s%ccheckpoint=external", url,
                          strchr(url, '?') != NULL ? '&' : '?')) > 0 &&
            (size_t)n < sizeof(worker_url)) {
            wo.store_url = worker_url;
            ckpt_url = url;
        }
    }

    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    fprintf(stderr, "kortvagtd: listening on %s:%u (%s), %ld workers\n", st.listen, port,
            key_pem != NULL ? "https" : "http", st.workers);
    if (ckpt_url != NULL)
        ckpt = spawn_checkpointer(ckpt_url);
    for (long i = 0; i < st.workers; i++) {
        if ((pids[i] = spawn(&wo)) > 0)
            alive++;
        clock_gettime(CLOCK_MONOTONIC, &started[i]);
    }
    for (;;) {
        siginfo_t si;
        struct timespec tmo = {1, 0};
        int sig = sigtimedwait(&set, &si, &tmo);
        if (sig == SIGHUP && !stopping) {
            /* key rotation: every worker looks its keys up again */
            fprintf(stderr, "kortvagtd: SIGHUP: the workers reload their keys\n");
            for (long i = 0; i < st.workers; i++)
                if (pids[i] > 0)
                    kill(pids[i], SIGHUP);
        }
        if (sig == SIGTERM || sig == SIGINT) {
            if (!stopping) {
                fprintf(stderr, "kortvagtd: %s: finishing requests in flight\n",
                        sig == SIGTERM ? "SIGTERM" : "SIGINT");
                stopping = 1;
                /* the workers close theirs after they stop accepting */
                close(fd);
                fd = -1;
                for (long i = 0; i < st.workers; i++)
                    if (pids[i] > 0)
                        kill(pids[i], SIGTERM);
            }
        }
        /* reap every worker that ended */
        for (;;) {
            int status;
            pid_t p = waitpid(-1, &status, WNOHANG);
            if (p <= 0)
                break;
            if (p == ckpt) {
                ckpt = 0;
                if (!stopping) {
                    struct timespec d = {0, 200 * 1000000L};
                    fprintf(stderr, "kortvagtd: checkpointer %d ended; restarting\n", (int)p);
                    nanosleep(&d, NULL);
                    ckpt = spawn_checkpointer(ckpt_url);
                }
                continue;
            }
            for (long i = 0; i < st.workers; i++) {
                struct timespec now;
                if (pids[i] != p)
                    continue;
                pids[i] = 0;
                alive--;
                if (stopping)
                    break;
                if (WIFEXITED(status) && WEXITSTATUS(status) == KV_DAEMON_EXIT_LOGIN) {
                    /* the PIN changed under us: never log in again with it */
                    fprintf(stderr,
                            "kortvagtd: worker %d: the token login failed; stopping without "
                            "trying again\n",
                            (int)p);
                    login_failed = 1;
                    stopping = 1;
                    close(fd);
                    fd = -1;
                    for (long k = 0; k < st.workers; k++)
                        if (pids[k] > 0)
                            kill(pids[k], SIGTERM);
                    break;
                }
                if (WIFSIGNALED(status))
                    fprintf(stderr, "kortvagtd: worker %d killed by signal %d; restarting\n",
                            (int)p, WTERMSIG(status));
                else
                    fprintf(stderr, "kortvagtd: worker %d exited with %d; restarting\n", (int)p,
                            WEXITSTATUS(status));
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (now.tv_sec - started[i].tv_sec < 2) {
                    /* it died young (the store or the token is not there): back off */
                    struct timespec d = {0, 500 * 1000000L};
                    nanosleep(&d, NULL);
                }
                kv_daemon_metrics_worker_restart(metrics);
                if ((pids[i] = spawn(&wo)) > 0)
                    alive++;
                clock_gettime(CLOCK_MONOTONIC, &started[i]);
                break;
            }
        }
        if (stopping && alive <= 0 && ckpt > 0) {
            /* the workers are done: one last checkpoint, then the checkpointer goes */
            kill(ckpt, SIGTERM);
        }
        if (stopping && alive <= 0 && ckpt <= 0)
            break;
        if (sig < 0 && errno != EAGAIN && errno != EINTR) {
            fprintf(stderr, "kortvagtd: sigtimedwait: %s\n", strerror(errno));
            break;
        }
    }
    fprintf(stderr, "kortvagtd: stopped\n");
    rc = login_failed ? 1 : 0;
out:
    if (fd >= 0)
        close(fd);
    kv_daemon_metrics_free_shared(metrics);
    kv_wipe(&tokens, sizeof(tokens));
    if (key_pem != NULL) {
        kv_wipe(key_pem, strlen(key_pem));
        free(key_pem);
    }
    free(cert_pem);
    free(ca_pem);
    kv_config_free(cfg);
    kv_settings_clear(&ks);
    return rc;
}

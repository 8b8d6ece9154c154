/* see metrics.h */
#include "src/daemon/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static const int statuses[KV_METRIC_STATUSES - 1] = {200, 400, 401, 404, 405, 409,
                                                     413, 500, 403, 503, 204};
/* seconds; the last bucket is +Inf */
static const double bounds[KV_METRIC_BUCKETS - 1] = {0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                     0.025,   0.05,   0.1,   0.25,   1.0};
static const char *const ep_names[KV_EP__COUNT] = {
    "authorize", "reverse",  "verify_pin", "verify_cvc", "verify_arqc", "liability",
    "blocklist", "evidence", "healthz",    "metrics",    "other",
};
static const char *const decision_names[3] = {"approve", "sca_required", "decline"};

kv_daemon_metrics *kv_daemon_metrics_new_shared(void)
{
    void *p = mmap(NULL, sizeof(kv_daemon_metrics), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    memset(p, 0, sizeof(kv_daemon_metrics));
    return p;
}

void kv_daemon_metrics_free_shared(kv_daemon_metrics *m)
{
    if (m != NULL)
        munmap(m, sizeof(*m));
}

const char *kv_endpoint_name(kv_endpoint ep)
{
    return (unsigned)ep < KV_EP__COUNT ? ep_names[ep] : "other";
}

static void add(uint64_t *p, uint64_t v)
{
    __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}

static uint64_t get(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

void kv_daemon_metrics_request(kv_daemon_metrics *m, kv_endpoint ep, int status, uint64_t micros)
{
    size_t si = KV_METRIC_STATUSES - 1, bi = KV_METRIC_BUCKETS - 1;
    if (m == NULL)
        return;
    if ((unsigned)ep >= KV_EP__COUNT)
        ep = KV_EP_OTHER;
    for (size_t i = 0; i < KV_METRIC_STATUSES - 1; i++)
        if (statuses[i] == status) {
            si = i;
            break;
        }
    for (size_t i = 0; i < KV_METRIC_BUCKETS - 1; i++)
        if ((double)micros / 1e6 <= bounds[i]) {
            bi = i;
            break;
        }
    add(&m->requests[ep][si], 1);
    add(&m->latency_bucket[ep][bi], 1);
    add(&m->latency_count[ep], 1);
    add(&m->latency_sum_us[ep], micros);
}

void kv_daemon_metrics_decision(kv_daemon_metrics *m, int decision)
{
    if (m != NULL && decision >= 0 && decision < 3)
        add(&m->decisions[decision], 1);
}

void kv_daemon_metrics_hsm_error(kv_daemon_metrics *m)
{
    if (m != NULL)
        add(&m->hsm_errors, 1);
}

void kv_daemon_metrics_store_error(kv_daemon_metrics *m)
{
    if (m != NULL)
        add(&m->store_errors, 1);
}

void kv_daemon_metrics_worker_restart(kv_daemon_metrics *m)
{
    if (m != NULL)
        add(&m->worker_restarts, 1);
}

typedef struct {
    char *p;
    size_t len, cap;
    int failed;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (b->failed)
        return;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = b->cap * 2 + (size_t)n;
        char *q = realloc(b->p, ncap);
        if (q == NULL) {
            b->failed = 1;
            return;
        }
        b->p = q;
        b->cap = ncap;
    }
}

char *kv_daemon_metrics_text(const kv_daemon_metrics *m, size_t *len)
{
    sbuf b = {NULL, 0, 8192, 0};
    if ((b.p = malloc(b.cap)) == NULL)
        return NULL;
    b.p[0] = '\0';
    sb_printf(&b, "# HELP kortvagtd_requests_total HTTP requests by endpoint and status.\n"
                  "# TYPE kortvagtd_requests_total counter\n");
    for (int e = 0; e < KV_EP__COUNT; e++)
        for (int s = 0; s < KV_METRIC_STATUSES; s++) {
            uint64_t v = get(&m->requests[e][s]);
            if (v == 0)
                continue;
            if (s < KV_METRIC_STATUSES - 1)
                sb_printf(&b, "kortvagtd_requests_total{endpoint=\"%s\",code=\"%d\"} %llu\n",
                          ep_names[e], statuses[s], (unsigned long long)v);
            else
                sb_printf(&b, "kortvagtd_requests_total{endpoint=\"%s\",code=\"other\"} %llu\n",
                          ep_names[e], (unsigned long long)v);
        }
    sb_printf(&b, "# HELP kortvagtd_decisions_total Authorization decisions by outcome.\n"
                  "# TYPE kortvagtd_decisions_total counter\n");
    for (int i = 0; i < 3; i++)
        sb_printf(&b, "kortvagtd_decisions_total{decision=\"%s\"} %llu\n", decision_names[i],
                  (unsigned long long)get(&m->decisions[i]));
    sb_printf(&b, "# HELP kortvagtd_request_duration_seconds Time to answer a request.\n"
                  "# TYPE kortvagtd_request_duration_seconds histogram\n");
    for (int e = 0; e < KV_EP__COUNT; e++) {
        uint64_t cum = 0, count = get(&m->latency_count[e]);
        if (count == 0)
            continue;
        for (int i = 0; i < KV_METRIC_BUCKETS; i++) {
            cum += get(&m->latency_bucket[e][i]);
            if (i < KV_METRIC_BUCKETS - 1)
                sb_printf(&b,
                          "kortvagtd_request_duration_seconds_bucket{endpoint=\"%s\",le=\"%g\"} "
                          "%llu\n",
                          ep_names[e], bounds[i], (unsigned long long)cum);
            else
                sb_printf(&b,
                          "kortvagtd_request_duration_seconds_bucket{endpoint=\"%s\",le=\"+Inf\"} "
                          "%llu\n",
                          ep_names[e], (unsigned long long)cum);
        }
        sb_printf(&b, "kortvagtd_request_duration_seconds_sum{endpoint=\"%s\"} %.6f\n", ep_names[e],
                  (double)get(&m->latency_sum_us[e]) / 1e6);
        sb_printf(&b, "kortvagtd_request_duration_seconds_count{endpoint=\"%s\"} %llu\n",
                  ep_names[e], (unsigned long long)count);
    }
    sb_printf(&b,
              "# HELP kortvagtd_hsm_errors_total PKCS#11 failures (not negative results).\n"
              "# TYPE kortvagtd_hsm_errors_total counter\n"
              "kortvagtd_hsm_errors_total %llu\n"
              "# HELP kortvagtd_store_errors_total Store failures.\n"
              "# TYPE kortvagtd_store_errors_total counter\n"
              "kortvagtd_store_errors_total %llu\n"
              "# HELP kortvagtd_worker_restarts_total Workers restarted by the master.\n"
              "# TYPE kortvagtd_worker_restarts_total counter\n"
              "kortvagtd_worker_restarts_total %llu\n",
              (unsigned long long)get(&m->hsm_errors), (unsigned long long)get(&m->store_errors),
              (unsigned long long)get(&m->worker_restarts));
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    if (len != NULL)
        *len = b.len;
    return b.p;
}

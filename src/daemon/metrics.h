/*
 * The daemon's Prometheus metrics, kept in one block of memory shared by the
 * master and every worker (mmap'ed before the workers are forked, so a
 * restarted worker keeps counting into the same totals). Updates are relaxed
 * atomic adds; a scrape of any worker sees all of them.
 */
#ifndef KV_DAEMON_METRICS_H
#define KV_DAEMON_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* Endpoints, for the labels. */
typedef enum {
    KV_EP_AUTHORIZE,
    KV_EP_REVERSE,
    KV_EP_VERIFY_PIN,
    KV_EP_VERIFY_CVC,
    KV_EP_VERIFY_ARQC,
    KV_EP_LIABILITY,
    KV_EP_BLOCKLIST,
    KV_EP_EVIDENCE,
    KV_EP_HEALTHZ,
    KV_EP_METRICS,
    KV_EP_OTHER,
    KV_EP__COUNT
} kv_endpoint;

/* Status codes counted per endpoint; anything else counts as "other". */
#define KV_METRIC_STATUSES 12
#define KV_METRIC_BUCKETS 12

typedef struct {
    uint64_t requests[KV_EP__COUNT][KV_METRIC_STATUSES];
    uint64_t latency_bucket[KV_EP__COUNT][KV_METRIC_BUCKETS]; /* cumulative at scrape */
    uint64_t latency_count[KV_EP__COUNT];
    uint64_t latency_sum_us[KV_EP__COUNT];
    uint64_t decisions[3]; /* approve, sca_required, decline */
    uint64_t hsm_errors;
    uint64_t store_errors;
    uint64_t worker_restarts;
} kv_daemon_metrics;

/* A zeroed block in shared anonymous memory (MAP_SHARED), or NULL. */
kv_daemon_metrics *kv_daemon_metrics_new_shared(void);
/* Unmap; NULL is a no-op. */
void kv_daemon_metrics_free_shared(kv_daemon_metrics *m);

/* The label of an endpoint ("authorize", ...). */
const char *kv_endpoint_name(kv_endpoint ep);

/* Count one request (m may be NULL). */
void kv_daemon_metrics_request(kv_daemon_metrics *m, kv_endpoint ep, int status, uint64_t micros);
/* Count a decision (0 approve, 1 sca_required, 2 decline), an HSM or a store error. */
void kv_daemon_metrics_decision(kv_daemon_metrics *m, int decision);
void kv_daemon_metrics_hsm_error(kv_daemon_metrics *m);
void kv_daemon_metrics_store_error(kv_daemon_metrics *m);
void kv_daemon_metrics_worker_restart(kv_daemon_metrics *m);

/* The Prometheus text exposition (malloc'ed, NUL-terminated; *len may be NULL), or NULL. */
char *kv_daemon_metrics_text(const kv_daemon_metrics *m, size_t *len);

#endif

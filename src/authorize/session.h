/*
 * Everything one process (a CLI command, a daemon worker) needs to decide:
 * the configuration, the store, one logged-in PKCS#11 session with the
 * "token" and "evidence" HMAC keys, the HSM factor verifier and the engine.
 * A heap object; one per process or thread.
 */
#ifndef KV_AUTHORIZE_SESSION_H
#define KV_AUTHORIZE_SESSION_H

#include "hsm/p11.h"
#include "src/authorize/authorize.h"
#include "src/config/config.h"
#include "src/store/keyed.h"
#include "src/store/store.h"

#include <stddef.h>

typedef struct {
    const char *config_path;  /* NULL: config.h's search order */
    const char *store_url;    /* NULL: kv_config_store_url */
    const kv_hsm_config *hsm; /* NULL: the environment's module and token */
} kv_authz_session_opts;

typedef struct kv_authz_session kv_authz_session;

/*
 * Open in order: configuration, store (created on first use), HSM session,
 * the token and evidence keys, the engine. On failure err (may be NULL)
 * receives what failed ("store sqlite:/x.db: ...", "HSM key 'evidence': ...
 * run `kortvagt hsm init`") and the code says the class: KV_ERR_CONFIG,
 * KV_ERR_IO, KV_ERR_STORE_*, KV_ERR_HSM_*, KV_ERR_ARG (bad store URL).
 */
int kv_authz_session_open(const kv_authz_session_opts *o, kv_authz_session **out, char *err,
                          size_t errlen);
/* Close all; NULL is a no-op. */
void kv_authz_session_close(kv_authz_session *s);

kv_authz *kv_authz_session_authz(kv_authz_session *s);
kv_store *kv_authz_session_store(kv_authz_session *s);
kv_hsm *kv_authz_session_hsm(kv_authz_session *s);
const kv_config *kv_authz_session_config(kv_authz_session *s);
/* The evidence MAC (for kv_evidence_load / kv_evidence_verify_chain). */
const kv_mac *kv_authz_session_evidence_mac(kv_authz_session *s);
/* The URL of the open store. */
const char *kv_authz_session_store_url(kv_authz_session *s);

#endif

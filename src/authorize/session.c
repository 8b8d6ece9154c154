/* see session.h */
#include "src/authorize/session.h"
#include "src/authorize/factors_hsm.h"
#include "src/base/err.h"
#include "src/blocklist/blocklist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kv_authz_session {
    kv_config *config;
    kv_store *store;
    kv_hsm *hsm;
    kv_hsm_mac token_key;
    kv_hsm_mac evidence_key;
    kv_mac evidence_mac;
    kv_hsm_factors *factors;
    kv_authz *authz;
    char store_url[1024];
};

static int fail(char *err, size_t errlen, int r, const char *what, const char *why)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s: %s", what, why != NULL && why[0] != '\0' ? why : kv_strerror(r));
    return r;
}

int kv_authz_session_open(const kv_authz_session_opts *o, kv_authz_session **out, char *err,
                          size_t errlen)
{
    int r = KV_ERR_INTERNAL;
    kv_authz_session *s = NULL;
    kv_authz_config cfg;
    char why[512], what[1100];
    const char *url;

    *out = NULL;
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return fail(err, errlen, KV_ERR_NOMEM, "session", NULL);
    if ((r = kv_config_load(o->config_path, &s->config, why, sizeof(why))) != 0) {
        fail(err, errlen, r, "configuration", why);
        goto out;
    }
    url = o->store_url != NULL ? o->store_url : kv_config_store_url(s->config);
    snprintf(s->store_url, sizeof(s->store_url), "%s", url);
    if ((r = kv_store_open(url, &s->store, why, sizeof(why))) != 0) {
        snprintf(what, sizeof(what), "store %s", url);
        fail(err, errlen, r, what, why);
        goto out;
    }
    /* transient SoftHSM2 races of processes that start together are retried in hsm/p11.c */
    if ((r = kv_hsm_open(o->hsm, &s->hsm)) != 0) {
        fail(err, errlen, r, "HSM", kv_hsm_last_error(NULL));
        goto out;
    }
    if ((r = kv_hsm_mac_init(&s->token_key, s->hsm, KV_KEY_LABEL_TOKEN)) != 0 ||
        (r = kv_hsm_mac_init(&s->evidence_key, s->hsm, KV_KEY_LABEL_EVIDENCE)) != 0) {
        snprintf(why, sizeof(why),
                 "the HMAC keys '" KV_KEY_LABEL_TOKEN "' and '" KV_KEY_LABEL_EVIDENCE
                 "' are needed (run `kortvagt hsm init`): %s",
                 kv_hsm_last_error(s->hsm));
        fail(err, errlen, r, "HSM", why);
        goto out;
    }
    s->evidence_mac = kv_hsm_mac_get(&s->evidence_key);
    if ((r = kv_hsm_factors_new(s->hsm, &s->factors)) != 0) {
        fail(err, errlen, r, "session", NULL);
        goto out;
    }
    memset(&cfg, 0, sizeof(cfg));
    cfg.store = s->store;
    cfg.limits = kv_config_limits(s->config);
    cfg.token_mac = kv_hsm_mac_get(&s->token_key);
    cfg.evidence_mac = s->evidence_mac;
    cfg.verifier = kv_hsm_factors_verifier(s->factors);
    cfg.hotcard = kv_blocklist_hotcard(); /* RULES.md §3: a listed card or token is declined */
    if ((r = kv_authz_new(&cfg, &s->authz)) != 0) {
        fail(err, errlen, r, "session", NULL);
        goto out;
    }
    *out = s;
    s = NULL; /* transferred */
    r = 0;
out:
    kv_authz_session_close(s);
    return r;
}

void kv_authz_session_close(kv_authz_session *s)
{
    if (s == NULL)
        return;
    kv_authz_free(s->authz);
    kv_hsm_factors_free(s->factors);
    kv_hsm_close(s->hsm);
    kv_store_close(s->store);
    kv_config_free(s->config);
    free(s);
}

kv_authz *kv_authz_session_authz(kv_authz_session *s)
{
    return s->authz;
}

kv_store *kv_authz_session_store(kv_authz_session *s)
{
    return s->store;
}

kv_hsm *kv_authz_session_hsm(kv_authz_session *s)
{
    return s->hsm;
}

const kv_config *kv_authz_session_config(kv_authz_session *s)
{
    return s->config;
}

const kv_mac *kv_authz_session_evidence_mac(kv_authz_session *s)
{
    return &s->evidence_mac;
}

const char *kv_authz_session_store_url(kv_authz_session *s)
{
    return s->store_url;
}

/* see app.h */
#include "src/app/app.h"
#include "src/app/keyed_hsm.h"
#include "src/attempts/attempts.h"
#include "src/authorize/factors_hsm.h"
#include "hsm/p11_admin.h"
#include "src/base/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kv_app {
    kv_settings settings;
    kv_config *config;
    kv_store *store;
    kv_hsm *hsm;
    kv_hsm_mac token_key;
    kv_hsm_mac evidence_key;
    kv_hsm_mac state_key; /* row MACs of the store (issue 11) */
    kv_mac token_mac;
    kv_mac evidence_mac;
    kv_mac state_mac;
    kv_authz_factors *factors;
    kv_authz *authz;
    kv_attempts_config attempts; /* [verify] pin_tries_max, code_tries_max */
    int bl_ready;                /* bl below is set up */
    kv_bl_hsm_sealer bl_sealer;
    kv_blocklist bl;
};

static int fail(char *err, size_t errlen, int r, const char *what, const char *why)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s: %s", what, why != NULL && why[0] != '\0' ? why : kv_strerror(r));
    return r;
}

int kv_app_hsm_open(kv_settings *s, kv_hsm **out)
{
    kv_hsm_config cfg = {.module = kv_settings_opt(s->hsm.module),
                         .token = kv_settings_opt(s->hsm.token),
                         .pin = s->hsm.pin,
                         .pin_len = s->hsm.pin_len};
    kv_secbuf *pin = NULL;
    char prompt[120];
    int r;

    *out = NULL;
    if ((r = kv_settings_read_secrets(s, NULL, 0)) != 0)
        return r;
    cfg.pin = s->hsm.pin;
    cfg.pin_len = s->hsm.pin_len;
    if (cfg.pin == NULL) {
        /* no $KORTVAGT_PIN: the first line of $KORTVAGT_PIN_FILE, else a line of stdin */
        kv_hsm_pin_source src = {NULL, "$KORTVAGT_PIN", kv_settings_opt(s->hsm.pin_file),
                                 "$KORTVAGT_PIN_FILE", prompt};
        snprintf(prompt, sizeof(prompt), "User PIN for token '%.64s': ",
                 cfg.token != NULL ? cfg.token : KV_HSM_DEFAULT_TOKEN);
        if ((r = kv_hsm_pin_read(&src, &pin, &cfg.pin_len)) != 0) {
            *out = NULL;
            return r;
        }
        cfg.pin = pin;
    }
    r = kv_hsm_open(&cfg, out);
    kv_secbuf_free(pin);
    return r;
}

int kv_app_open(const kv_app_opts *o, kv_app **out, char *err, size_t errlen)
{
    int r = KV_ERR_INTERNAL;
    kv_app *a = NULL;
    kv_authz_config cfg;
    char why[512], what[1100];

    *out = NULL;
    if ((a = calloc(1, sizeof(*a))) == NULL)
        return fail(err, errlen, KV_ERR_NOMEM, "session", NULL);
    if ((r = kv_settings_init(&a->settings, o, why, sizeof(why))) != 0) {
        fail(err, errlen, r, "settings", why);
        goto out;
    }
    if ((r = kv_settings_load_config(&a->settings, &a->config, why, sizeof(why))) != 0) {
        fail(err, errlen, r, "configuration", why);
        goto out;
    }
    if ((r = kv_store_open(a->settings.store.url, &a->store, why, sizeof(why))) != 0) {
        snprintf(what, sizeof(what), "store %s", a->settings.store.url);
        fail(err, errlen, r, what, why);
        goto out;
    }
    /* transient SoftHSM2 races of processes that start together are retried in hsm/ */
    if ((r = kv_app_hsm_open(&a->settings, &a->hsm)) != 0) {
        fail(err, errlen, r, "HSM", kv_hsm_last_error(NULL));
        goto out;
    }
    if ((r = kv_hsm_mac_init(&a->token_key, a->hsm, KV_KEY_LABEL_TOKEN)) != 0 ||
        (r = kv_hsm_mac_init(&a->evidence_key, a->hsm, KV_KEY_LABEL_EVIDENCE)) != 0) {
        snprintf(why, sizeof(why),
                 "the HMAC keys '" KV_KEY_LABEL_TOKEN "' and '" KV_KEY_LABEL_EVIDENCE
                 "' are needed (run `kortvagt hsm init`): %s",
                 kv_hsm_last_error(a->hsm));
        fail(err, errlen, r, "HSM", why);
        goto out;
    }
    a->token_mac = kv_hsm_mac_get(&a->token_key);
    a->evidence_mac = kv_hsm_mac_get(&a->evidence_key);
    /* card-state and block-list rows carry a MAC under "state-mac" (store.h "Row MACs") */
    if ((r = kv_hsm_mac_init(&a->state_key, a->hsm, KV_KEY_LABEL_STATE_MAC)) != 0 ||
        (r = kv_hsm_key_require_role(a->hsm, &a->state_key.key, KV_ROLE_STATE_MAC)) != 0) {
        snprintf(why, sizeof(why),
                 "the HMAC key '" KV_KEY_LABEL_STATE_MAC "' (role state-mac) is needed (run "
                 "`kortvagt hsm init`): %s",
                 kv_hsm_last_error(a->hsm));
        fail(err, errlen, r, "HSM", why);
        goto out;
    }
    a->state_mac = kv_hsm_mac_get(&a->state_key);
    kv_store_set_row_mac(a->store, &a->state_mac);
    if ((r = kv_store_set_row_mac_adopt(a->store)) != 0) {
        fail(err, errlen, r, "store row MACs", kv_store_last_error(a->store));
        goto out;
    }
    if ((r = kv_authz_factors_new(a->hsm, &a->factors)) != 0) {
        fail(err, errlen, r, "session", NULL);
        goto out;
    }
    {
        /* IBM 3624 parameters per PVK from [pvk.LABEL] of the configuration (issue 11) */
        kv_pin_params_source pps = kv_pin_params_config_source(a->config);
        kv_authz_factors_set_pin_params(a->factors, &pps);
    }
    /* the same attempt limits as the verify commands and endpoints (src/attempts) */
    if ((r = kv_attempts_config_from(
             &a->attempts, kv_config_get(a->config, "verify", "pin_tries_max"),
             kv_config_get(a->config, "verify", "code_tries_max"), why, sizeof(why))) != 0) {
        fail(err, errlen, r, "configuration", why);
        goto out;
    }
    memset(&cfg, 0, sizeof(cfg));
    cfg.attempts = &a->attempts;
    cfg.store = a->store;
    cfg.limits = kv_config_limits(a->config);
    cfg.token_mac = a->token_mac;
    cfg.evidence_mac = a->evidence_mac;
    cfg.verifier = kv_authz_factors_verifier(a->factors);
    /* src/RULES.md §3: a listed card or token is declined */
    cfg.hotcard.check = kv_bl_hotcard;
    cfg.hotcard.ctx = NULL;
    if ((r = kv_authz_new(&cfg, &a->authz)) != 0) {
        fail(err, errlen, r, "session", NULL);
        goto out;
    }
    *out = a;
    a = NULL; /* transferred */
    r = 0;
out:
    kv_app_close(a);
    return r;
}

int kv_app_blocklist(kv_app *a, const kv_blocklist **out)
{
    int r;
    *out = NULL;
    if (!a->bl_ready) {
        if ((r = kv_bl_hsm_sealer_init(&a->bl_sealer, a->hsm)) != 0)
            return r;
        memset(&a->bl, 0, sizeof(a->bl));
        a->bl.store = a->store;
        a->bl.token_mac = a->token_mac;
        a->bl.seal = kv_bl_hsm_sealer_get(&a->bl_sealer);
        a->bl.permission = kv_config_get(a->config, "blocklist", "permission");
        a->bl.issuer_name = kv_config_get(a->config, "blocklist", "issuer_name");
        a->bl.issuer_address = kv_config_get(a->config, "blocklist", "issuer_address");
        a->bl.recipients = kv_config_get(a->config, "blocklist", "recipients");
        a->bl.authority = kv_config_get(a->config, "blocklist", "authority");
        a->bl_ready = 1;
    }
    *out = &a->bl;
    return 0;
}

void kv_app_close(kv_app *a)
{
    if (a == NULL)
        return;
    kv_authz_free(a->authz);
    kv_authz_factors_free(a->factors);
    kv_hsm_close(a->hsm);
    kv_store_close(a->store);
    kv_config_free(a->config);
    kv_settings_clear(&a->settings);
    free(a);
}

kv_authz *kv_app_authz(kv_app *a)
{
    return a->authz;
}

kv_store *kv_app_store(kv_app *a)
{
    return a->store;
}

kv_hsm *kv_app_hsm(kv_app *a)
{
    return a->hsm;
}

const kv_config *kv_app_config(kv_app *a)
{
    return a->config;
}

const kv_attempts_config *kv_app_attempts(kv_app *a)
{
    return &a->attempts;
}

const kv_settings *kv_app_settings(kv_app *a)
{
    return &a->settings;
}

const kv_mac *kv_app_evidence_mac(kv_app *a)
{
    return &a->evidence_mac;
}

const kv_mac *kv_app_token_mac(kv_app *a)
{
    return &a->token_mac;
}

const char *kv_app_store_url(kv_app *a)
{
    return a->settings.store.url;
}

/*
 * The composition root: the one place that opens and wires the parts of a
 * process that decides (a CLI command, a daemon worker):
 *
 *   settings      flags > environment > file > defaults (settings.h)
 *   configuration the INI file (src/config)
 *   store         SQLite or PostgreSQL (src/store), created on first use
 *   HSM           one logged-in PKCS#11 session (hsm/) with the "token" and
 *                 "evidence" HMAC keys bound to the store's kv_mac callbacks
 *   engine        the authorization engine (src/authorize) with the HSM
 *                 factor verifier and the block list's hot-card check
 *                 (src/blocklist kv_bl_hotcard) plugged in
 *   block list    the engine of src/blocklist with its HSM sealer ("pan-enc")
 *                 and the [blocklist] section, set up on first use
 *
 * The policy modules do not know each other's wiring: the authorization
 * engine consults the block list only through its hot-card callback, the
 * store sees keys only as kv_mac callbacks. A heap object; one per process or
 * thread.
 */
#ifndef KV_APP_APP_H
#define KV_APP_APP_H

#include "hsm/p11.h"
#include "src/app/settings.h"
#include "src/attempts/attempts.h"
#include "src/authorize/authorize.h"
#include "src/blocklist/blocklist.h"
#include "src/config/config.h"
#include "src/store/keyed.h"
#include "src/store/store.h"

#include <stddef.h>

/* What the command line gave (config, store, module, token, ...); NULL fields: not given. */
typedef kv_settings_flags kv_app_opts;

typedef struct kv_app kv_app;

/*
 * Resolve the settings (settings.h), then open in order: configuration,
 * store (created on first use), HSM session, the token and evidence keys,
 * the engine. On failure err (may be NULL) receives what failed ("store
 * sqlite:/x.db: ...", "HSM key 'evidence': ... run `kortvagt hsm init`")
 * and the code says the class: KV_ERR_CONFIG, KV_ERR_IO, KV_ERR_STORE_*,
 * KV_ERR_HSM_*, KV_ERR_ARG (bad store URL). o may be NULL (no flags).
 */
int kv_app_open(const kv_app_opts *o, kv_app **out, char *err, size_t errlen);
/* Close all; NULL is a no-op. */
void kv_app_close(kv_app *a);

kv_authz *kv_app_authz(kv_app *a);
kv_store *kv_app_store(kv_app *a);
kv_hsm *kv_app_hsm(kv_app *a);
const kv_config *kv_app_config(kv_app *a);
/* The attempt limits of [verify] (pin_tries_max, code_tries_max), read once at open. */
const kv_attempts_config *kv_app_attempts(kv_app *a);
const kv_settings *kv_app_settings(kv_app *a);
/* The evidence MAC (for kv_evidence_load / kv_evidence_verify_chain). */
const kv_mac *kv_app_evidence_mac(kv_app *a);
/* The PAN-token MAC (the store's card tokens). */
const kv_mac *kv_app_token_mac(kv_app *a);
/* The URL of the open store. */
const char *kv_app_store_url(kv_app *a);

/*
 * The block list over the open store and HSM: set up on the first call (the
 * "pan-enc" key is looked up then) and kept. Returns 0 with *out borrowed
 * from a, or the HSM error of the key lookup (KV_ERR_HSM_KEY: run `kortvagt
 * hsm init`); a later call tries again.
 */
int kv_app_blocklist(kv_app *a, const kv_blocklist **out);

/*
 * Open the HSM alone (commands that need no store): module and token from
 * the settings, the user PIN from the settings ($KORTVAGT_PIN) when one is
 * set, else the first line of $KORTVAGT_PIN_FILE, else one line of stdin
 * (kv_hsm_pin_read). Returns as kv_hsm_open.
 */
int kv_app_hsm_open(kv_settings *s, kv_hsm **out);

#endif

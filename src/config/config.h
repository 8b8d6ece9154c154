/*
 * The INI configuration file (libinih). Which file: the one the caller names
 * (it must exist; src/app/settings.c resolves --config and $KORTVAGT_CONFIG),
 * else ./kortvagt.conf, else /etc/kortvagt/kortvagt.conf, else none (all
 * defaults). Flags > environment > file > defaults is applied in one place,
 * src/app/settings.h; this module reads no environment variable.
 *
 * This module validates the sections it owns and keeps every line of the
 * file so that other modules can read their own sections with
 * kv_config_get:
 *
 *   [limits]   the keys of src/RULES.md §1's defaults table:
 *              contactless_single_max, contactless_counter (count|amount),
 *              contactless_count_max, contactless_cumulative_max,
 *              remote_single_max, remote_counter (count|amount),
 *              remote_count_max, remote_cumulative_max, atm_daily_max,
 *              gambling_daily_max (minor units / counts: non-negative
 *              integers), include_current (true|false). An unknown key in
 *              [limits] is an error.
 *   [store]    url = sqlite:PATH | postgresql://...  (settings.h: --store and
 *              $KORTVAGT_STORE override it)
 *   [verify]   pin_tries_max (default 3), code_tries_max (default 5):
 *              consecutive wrong PINs / card codes before a card answers
 *              "blocked" (src/attempts); integers 1..1000.
 *   [pvk.LABEL] dec_table, validation_data, pad: the IBM 3624 parameters of
 *              the PIN verification key LABEL (src/config/pin_params.h).
 *   [terminal], [aid HEX] the terminal's configuration per AID
 *              (src/config/terminal.h, README "Terminal configuration").
 *   An unknown key in [verify], [pvk.*], [terminal] or [aid HEX], or a bad
 *   value, is an error.
 */
#ifndef KV_CONFIG_CONFIG_H
#define KV_CONFIG_CONFIG_H

#include "apdu/termcfg.h"
#include "src/limits/limits.h"

#include <stddef.h>

#define KV_CONFIG_DEFAULT_STORE "sqlite:./kortvagt.db"

typedef struct kv_config kv_config;

/*
 * Load path (NULL: the search order above) into a new kv_config. On
 * KV_ERR_CONFIG, err (may be NULL) receives a message naming the file, the
 * line and the key, e.g. "kortvagt.conf:3: [limits] atm_daily_max: 'x' is
 * not a non-negative integer". KV_ERR_IO when a named file cannot be read,
 * KV_ERR_NOMEM.
 */
int kv_config_load(const char *path, kv_config **out, char *err, size_t errlen);

/* A configuration with every default and no file. NULL on out of memory. */
kv_config *kv_config_new_defaults(void);

/* Free; NULL is a no-op. */
void kv_config_free(kv_config *c);

/* The limits of [limits] over the src/RULES.md defaults. */
const kv_limits_config *kv_config_limits(const kv_config *c);

/*
 * The terminal configuration: [terminal] and [aid HEX] over
 * kv_term_config_defaults (apdu/termcfg.h). Owned by c; never NULL.
 */
const kv_term_config *kv_config_terminal(const kv_config *c);

/* The file that was read, or NULL when none was. */
const char *kv_config_path(const kv_config *c);

/* The last value of section.key in the file, or NULL. Owned by c. */
const char *kv_config_get(const kv_config *c, const char *section, const char *key);

/* The store URL of the file: [store] url, else KV_CONFIG_DEFAULT_STORE. */
const char *kv_config_store_url(const kv_config *c);

/*
 * Set one [limits] key from text, as the file would (used by the loader and
 * by tests). Returns 0, KV_ERR_NOT_FOUND (unknown key) or KV_ERR_CONFIG (bad value).
 */
int kv_limits_set(kv_limits_config *l, const char *key, const char *value);

#endif

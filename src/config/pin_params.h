/*
 * Server-side parameters of online PIN verification, per PIN verification
 * key (issue 11, finding 4). Clients no longer send a decimalisation table,
 * validation data or pad: a client that chooses them turns the verify
 * endpoints into a PIN oracle. They come from the configuration file, one
 * section per PVK label:
 *
 *   [pvk.LABEL]
 *   dec_table = 0123456789012345   ; IBM 3624 decimalisation table (16 digits)
 *   validation_data = pan:1:11      ; IBM 3624: see kv_pin_params_vdata
 *   pad = F                         ; IBM 3624 pad character (one hex digit)
 *
 * A PVK without a section gets the defaults below. The reference value (PVV
 * and PVKI, or the IBM offset) comes from the card's row in the store when it
 * has one (card settings, perso), and then overrides anything a client sends.
 */
#ifndef KV_CONFIG_PIN_PARAMS_H
#define KV_CONFIG_PIN_PARAMS_H

#include <stddef.h>

typedef struct {
    char dec_table[17];  /* default "0123456789012345" */
    char vdata_spec[32]; /* default "pan:1:11" (see kv_pin_params_vdata) */
    char pad;            /* default 'F' */
} kv_pin_params;

/* The defaults above. */
void kv_pin_params_defaults(kv_pin_params *p);

/*
 * The IBM 3624 validation data (16 hex characters + NUL) for pan under p's
 * vdata_spec. Spec "pan:R:N": the N (1..16) PAN digits that end R digits
 * before the PAN's last digit (R = 1 skips the check digit), right-padded
 * with p->pad to 16. Returns 0 or KV_ERR_ARG (PAN too short, bad spec; why
 * says which).
 */
int kv_pin_params_vdata(const kv_pin_params *p, const char *pan, char out[17], char *why,
                        size_t why_cap);

/* A lookup by PVK label (the composition root binds it to the config). */
typedef struct {
    /* fill out for pvk_label (defaults when the config has no section); 0 or KV_ERR_* */
    int (*lookup)(void *ctx, const char *pvk_label, kv_pin_params *out);
    void *ctx;
} kv_pin_params_source;

/* ---- added by the verify helper (issue 11) ---- */

struct kv_config;

/*
 * Set one key of a [pvk.LABEL] section from its text, as the file would:
 * dec_table (16 decimal digits), validation_data ("pan:R:N", R 0..18, N
 * 1..16), pad (one hex digit). Returns 0, KV_ERR_NOT_FOUND (unknown key) or
 * KV_ERR_CONFIG (bad value; why says what is wrong).
 */
int kv_pin_params_set(kv_pin_params *p, const char *key, const char *value, char *why,
                      size_t why_cap);

/*
 * The source that reads [pvk.LABEL] of c (borrowed; it must outlive the
 * source): the defaults with the section's keys over them. The loader
 * (config.c) has validated every [pvk.*] key already.
 */
kv_pin_params_source kv_pin_params_config_source(const struct kv_config *c);

#endif

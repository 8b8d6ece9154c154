/*
 * The terminal's configuration in the INI file (EMV Book 3 §10.6-10.7, Book
 * 4 §6.3; README "Terminal configuration"): the sections
 *
 *   [terminal]            country, currency, terminal_type, capabilities,
 *                         additional_capabilities, merchant_category
 *   [aid A0000000041010]  asi, app_version, floor_limit, threshold,
 *                         target_percent, max_target_percent, tac_denial,
 *                         tac_online, tac_default, ddol_default,
 *                         tdol_default, kernel, cl_transaction_limit,
 *                         cl_floor_limit, cl_cvm_limit, ttq, status_check,
 *                         zero_amount
 *
 * read over kv_term_config_defaults (apdu/termcfg.h). An [aid] section of a
 * built-in AID changes that entry; another AID is added with the defaults of
 * its RID's built-in entry (kv_term_config_add). The loader (config.c) calls
 * kv_term_config_set for every line of these sections and
 * kv_term_config_check once at the end; kv_config_terminal hands the result
 * to `card transact` and kortvagtd.
 */
#ifndef KV_CONFIG_TERMINAL_H
#define KV_CONFIG_TERMINAL_H

#include <stddef.h>

#include "apdu/termcfg.h"

/* 1 when section is one of these: "terminal", or "aid" and what follows. */
int kv_term_config_is_section(const char *section);

/*
 * Set key of section (kv_term_config_is_section) from its text, as the file
 * would. For an [aid HEX] section the entry is found or added first
 * (*aid_index, may be NULL, receives its index in c->aids). Returns 0,
 * KV_ERR_NOT_FOUND (unknown key; why lists the keys of the section) or
 * KV_ERR_CONFIG (bad value, a section name that is not "aid" + 5..16 bytes
 * of hex, or the table is full; why says what is wrong).
 */
int kv_term_config_set(kv_term_config *c, const char *section, const char *key, const char *value,
                       size_t *aid_index, char *why, size_t why_cap);

/*
 * Checks across keys, after the whole file: every entry's max_target_percent
 * is at least its target_percent. Returns 0, or KV_ERR_CONFIG with
 * *bad_index the entry and why the reason.
 */
int kv_term_config_check(const kv_term_config *c, size_t *bad_index, char *why, size_t why_cap);

#endif

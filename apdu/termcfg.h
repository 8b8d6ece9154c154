/*
 * The terminal's configuration: what it is (country, currency, type,
 * capabilities, merchant category) and, per application it supports (AID),
 * the data of EMV Book 3 §10.6-10.7 and Book 4 §6.3: application selection
 * indicator, application version number (9F09), floor limit, random
 * transaction selection threshold and percentages, terminal action codes,
 * default DDOL and TDOL, and the contactless limits (EMV Contactless Book A
 * §5.7 / Book B §3.1; used by the contactless kernels).
 *
 * The built-in table (kv_term_config_defaults) holds Visa, Visa Electron,
 * V PAY, Mastercard, Maestro and Dankort with the values documented in
 * README "Terminal configuration"; src/config/terminal.c reads the INI
 * sections [terminal] and [aid HEX] over it. Fixed-size, no allocation.
 */
#ifndef KV_APDU_TERMCFG_H
#define KV_APDU_TERMCFG_H

#include <stddef.h>
#include <stdint.h>

#include "apdu/dol.h"

#define KV_TERMCFG_MAX_AIDS 32
#define KV_TERMCFG_DOL_MAX 64

/* Application selection indicator (Book 1 §12.3.1). */
enum kv_asi {
    KV_ASI_PARTIAL = 0, /* the card's AID may be longer than the terminal's (same prefix) */
    KV_ASI_EXACT = 1,   /* the card's AID must equal the terminal's */
};

/* Contactless zero-amount handling (Book B §3.1.1). */
enum kv_zero_amount {
    KV_ZERO_AMOUNT_ONLINE = 0,
    KV_ZERO_AMOUNT_DECLINE = 1,
};

/* One supported application: the terminal data that depend on the AID. */
typedef struct {
    uint8_t aid[16];
    size_t aid_len;              /* 5..16 */
    int asi;                     /* enum kv_asi */
    char name[17];               /* "visa", "mastercard", ... for humans; "" when configured bare */
    uint8_t app_version[2];      /* 9F09 */
    uint64_t floor_limit;        /* minor units; 9F1B */
    uint64_t threshold;          /* random selection threshold (minor units) */
    unsigned target_percent;     /* 0..99 */
    unsigned max_target_percent; /* 0..99, >= target_percent */
    uint8_t tac_denial[5];
    uint8_t tac_online[5];
    uint8_t tac_default[5];
    uint8_t ddol_default[KV_TERMCFG_DOL_MAX];
    size_t ddol_default_len;
    uint8_t tdol_default[KV_TERMCFG_DOL_MAX];
    size_t tdol_default_len;
    /* contactless (next issue: the kernels read these) */
    int kernel;                    /* 9F2A kernel id: 2 (Mastercard), 3 (Visa); 0 none */
    uint64_t cl_transaction_limit; /* minor units; UINT64_MAX: none */
    uint64_t cl_floor_limit;
    uint64_t cl_cvm_limit; /* a CVM is required at amount >= this */
    uint8_t ttq[4];        /* 9F66 for kernel 3 */
    int status_check;      /* 1: status check supported */
    int zero_amount;       /* enum kv_zero_amount */
} kv_aid_config;

/* The whole terminal configuration. */
typedef struct {
    uint16_t country;            /* 9F1A, n3 */
    uint16_t currency;           /* 5F2A, n3 */
    uint8_t terminal_type;       /* 9F35 */
    uint8_t capabilities[3];     /* 9F33 */
    uint8_t add_capabilities[5]; /* 9F40 */
    uint16_t mcc;                /* 9F15 */
    int online_capable;          /* derived from terminal_type: 1 unless an offline-only type */
    kv_aid_config aids[KV_TERMCFG_MAX_AIDS];
    size_t naids;
} kv_term_config;

/*
 * The built-in configuration: Danish attended POS (the kv_terminal_init
 * values) and the built-in AIDs with their documented defaults. Never fails.
 */
void kv_term_config_defaults(kv_term_config *c);

/*
 * The entry for a card's AID (aid_len bytes) under its ASI: exact needs
 * equality, partial that the card's AID starts with the configured one
 * (Book 1 §12.3.1). The longest match wins. NULL when no entry matches.
 */
const kv_aid_config *kv_term_config_match(const kv_term_config *c, const uint8_t *aid,
                                          size_t aid_len);

/* The entry with exactly this AID (for configuration updates), or NULL. */
kv_aid_config *kv_term_config_find(kv_term_config *c, const uint8_t *aid, size_t aid_len);

/*
 * Add an entry for aid with the defaults of its RID's built-in entry when
 * there is one (else zeros, ASI partial, 9F09 0000, TACs of Book 4 §6.3.1's
 * recommendation) and return it; an existing entry is returned as is.
 * NULL when the table is full or the AID is not 5..16 bytes.
 * (Helper "risk": Book 4 leaves the values to the acquirer; an unknown RID
 * gets TAC denial 0000000000 and online = default FCF8FCF800, every bit
 * of bytes 1-4 but the RFU ones and "SDA selected", as README "Terminal
 * configuration" documents.)
 */
kv_aid_config *kv_term_config_add(kv_term_config *c, const uint8_t *aid, size_t aid_len);

/* Copy the terminal-wide values into the profile t (9F1A, 5F2A, 9F35, 9F33, 9F40, 9F15). */
void kv_term_config_apply_terminal(const kv_term_config *c, kv_terminal *t);

/* Copy the application's values into t (9F09; the others live in the config). */
void kv_term_config_apply_app(const kv_aid_config *a, kv_terminal *t);

/*
 * Added by helper "risk": 1 when a terminal of type terminal_type (9F35 as
 * an integer, 22) can go online: every type but the offline-only ones,
 * second digit 3 or 6 (Book 4 Annex A1). kv_term_config.online_capable.
 */
int kv_term_config_online_capable(uint8_t terminal_type);

#endif

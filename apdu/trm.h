/*
 * Terminal risk management (EMV Book 3 §10.6) and terminal action analysis
 * (Book 3 §10.7): pure functions over the TVR, the terminal's action codes
 * and the card's issuer action codes. The random number of random
 * transaction selection is an input, so every decision is reproducible in
 * tests; the caller draws it (1..99) from a CSPRNG.
 */
#ifndef KV_APDU_TRM_H
#define KV_APDU_TRM_H

#include <stddef.h>
#include <stdint.h>

#include "apdu/termcfg.h"

/* What terminal risk management looks at. */
typedef struct {
    uint64_t amount;       /* this transaction, minor units (in the floor-limit currency) */
    uint64_t prior_amount; /* earlier approvals of this card the terminal knows of (exception
                              log / store), added for the floor-limit check (§10.6.1) */
    int on_exception_file; /* the PAN is on kortvagt's block list (§10.6.1) */
    /* velocity checking (§10.6.3): the card's values, has_* 0 when absent */
    int has_lcol, has_ucol;
    unsigned lcol; /* 9F14 lower consecutive offline limit */
    unsigned ucol; /* 9F23 upper consecutive offline limit */
    int has_atc, has_last_online_atc;
    unsigned atc;             /* 9F36 */
    unsigned last_online_atc; /* 9F13 */
    unsigned random;          /* 1..99, drawn by the caller for random selection (§10.6.2) */
    int merchant_forced_online;
} kv_trm_in;

/*
 * Terminal risk management with the application's configuration a: sets
 * TVR byte 4 (floor limit exceeded, LCOL / UCOL exceeded, random selection,
 * merchant forced online), byte 1 "card appears on exception file", byte 2
 * "new card" (9F13 = 0) and TSI "terminal risk management was performed".
 * Velocity checking is skipped unless both 9F14 and 9F23 are present; ATC
 * or last online ATC missing (or ATC <= last online ATC) sets both LCOL and
 * UCOL exceeded as Book 3 §10.6.3 says. Never fails.
 */
void kv_trm_run(const kv_trm_in *in, const kv_aid_config *a, uint8_t tvr[5], uint8_t tsi[2]);

/*
 * Random transaction selection alone (§10.6.2), for tables: 1 when the
 * transaction is selected for online processing. Amounts below the
 * threshold are selected when random <= target_percent; from the threshold
 * up to (not including) the floor limit with the interpolated percentage
 * target + (max - target) * (amount - threshold) / (floor - threshold);
 * at or above the floor limit never (the floor limit decides there).
 */
int kv_trm_random_selected(uint64_t amount, const kv_aid_config *a, unsigned random);

/* The card's issuer action codes (9F0D default, 9F0E denial, 9F0F online). */
typedef struct {
    int has_default, has_denial, has_online;
    uint8_t iac_default[5], iac_denial[5], iac_online[5];
} kv_taa_iac;

/* Terminal action analysis outcome. */
enum kv_taa_decision {
    KV_TAA_AAC = 0x00,  /* decline offline */
    KV_TAA_TC = 0x40,   /* approve offline */
    KV_TAA_ARQC = 0x80, /* go online */
};

/*
 * First GENERATE AC decision (§10.7): denial (TAC-Denial | IAC-Denial, an
 * absent IAC-Denial as all zeros) -> AAC; else, for an online-capable
 * terminal, online (TAC-Online | IAC-Online, absent IAC-Online as all ones)
 * -> ARQC, else TC; for an offline-only terminal, default (TAC-Default |
 * IAC-Default, absent as all ones) -> AAC, else TC. Returns the KV_TAA_*.
 */
int kv_taa_first(const uint8_t tvr[5], const kv_aid_config *a, const kv_taa_iac *iac,
                 int online_capable);

/*
 * The unable-to-go-online decision (§10.7, Book 4 §6.3.2): default (TAC-
 * Default | IAC-Default, absent IAC-Default as all ones) matching the TVR ->
 * AAC (ARC "Z3"), else TC (ARC "Y3"). Returns KV_TAA_AAC or KV_TAA_TC.
 */
int kv_taa_unable_online(const uint8_t tvr[5], const kv_aid_config *a, const kv_taa_iac *iac);

#endif

/*
 * Card diagnosis (src/RULES.md §4, advice after the card-problems guide [0]): the walk PC/SC
 * service -> reader -> card present -> ATR -> application selection ->
 * expiry -> PIN try counter -> block list -> recent declines, stopping at the
 * first failure, whose cause and advice are reported in Danish (default) or
 * English. This module holds the report, the causes and their texts; the
 * probing is `kortvagt diagnose` (src/cli/cmd_diagnose.c).
 */
#ifndef KV_BLOCKLIST_DIAGNOSE_H
#define KV_BLOCKLIST_DIAGNOSE_H

#include <jansson.h>

#include <stddef.h>
#include <stdio.h>

typedef enum {
    KV_DIAG_PCSC = 0,  /* "pcsc_service" */
    KV_DIAG_READER,    /* "reader" */
    KV_DIAG_CARD,      /* "card_present" */
    KV_DIAG_ATR,       /* "atr" */
    KV_DIAG_APP,       /* "application" */
    KV_DIAG_EXPIRY,    /* "expiry" */
    KV_DIAG_PIN,       /* "pin_try_counter" */
    KV_DIAG_BLOCKLIST, /* "block_list" */
    KV_DIAG_DECLINES,  /* "recent_declines" */
    KV_DIAG__STEPS
} kv_diag_step;

typedef enum {
    KV_CAUSE_NONE = 0,
    KV_CAUSE_NO_PCSC_SERVICE,    /* "no_pcsc_service" */
    KV_CAUSE_NO_READER,          /* "no_reader" */
    KV_CAUSE_NO_CARD,            /* "no_card" */
    KV_CAUSE_CHIP_UNREADABLE,    /* "chip_unreadable": no ATR / no answer */
    KV_CAUSE_NO_APPLICATION,     /* "no_application": no payment application selected */
    KV_CAUSE_CARD_EXPIRED,       /* "card_expired" */
    KV_CAUSE_PIN_BLOCKED,        /* "pin_blocked": PIN try counter 0 */
    KV_CAUSE_CARD_BLOCKED,       /* "card_blocked": on the block list */
    KV_CAUSE_ECOMMERCE_DISABLED, /* "ecommerce_disabled": remote payment declined */
    KV_CAUSE_SCA_LOCKED,         /* "sca_locked": declined after failed SCA attempts */
    KV_CAUSE_LIMIT_REACHED,      /* "limit_reached": a spending limit declined it */
    KV_CAUSE_DECLINED,           /* "declined": another decline */
    KV_CAUSE__COUNT
} kv_diag_cause;

typedef enum {
    KV_LANG_DA = 0,
    KV_LANG_EN = 1,
} kv_lang;

/* The step's name ("pcsc_service", ...); "" for a bad value. */
const char *kv_diag_step_name(kv_diag_step s);
/* The cause's name ("pin_blocked", ...; "none"). */
const char *kv_diag_cause_name(kv_diag_cause c);
/* One sentence saying what is wrong, in lang; "" for KV_CAUSE_NONE. */
const char *kv_diag_cause_text(kv_diag_cause c, kv_lang lang);
/* The advice of the card-problems guide [0] for the cause, in lang; "" for KV_CAUSE_NONE. */
const char *kv_diag_advice(kv_diag_cause c, kv_lang lang);
/* The cause of an authorization declined with reason (limits.c names); DECLINED if unknown. */
kv_diag_cause kv_diag_cause_of_decline(const char *reason);

#define KV_DIAG_DETAIL_MAX 256

typedef struct {
    kv_diag_step step;
    int ok;
    char detail[KV_DIAG_DETAIL_MAX];
} kv_diag_result;

typedef struct {
    kv_diag_result steps[KV_DIAG__STEPS];
    size_t n;
    kv_diag_cause cause; /* the first failure's; NONE when all is well */
} kv_diag_report;

void kv_diag_init(kv_diag_report *r);
/*
 * Record a step: ok 1 passed, 0 failed with cause (the report's cause when it
 * is the first failure). Returns ok (so the walk can stop at a failure).
 */
int kv_diag_add(kv_diag_report *r, kv_diag_step step, int ok, kv_diag_cause cause, const char *fmt,
                ...) __attribute__((format(printf, 5, 6)));

/* {"steps":[{"step","ok","detail"}],"cause","cause_text","advice"} (null when no cause). */
json_t *kv_diag_json(const kv_diag_report *r, kv_lang lang);
/* The human report: one line per step, then the cause and the advice. */
void kv_diag_print(FILE *f, const kv_diag_report *r, kv_lang lang);

#endif

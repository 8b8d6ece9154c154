/*
 * Internal to kv_vcard: the test-lab faults (profile "faults", `vcard
 * --fault FILE`, kv_vcard_set_faults) and the transaction log (profile
 * "log"), both described in tests/data/README.md.
 *
 * profile_faults.c parses both from JSON (strictly: an error names the
 * field); card_fault.c applies the faults to the card's answers;
 * card_log.c keeps the log records, answers GET DATA 9F4D / 9F4F and the
 * READ RECORDs of the log file, and writes a record when a GENERATE AC ends
 * a transaction.
 */
#ifndef KV_APDU_VCARD_CARD_FAULT_H
#define KV_APDU_VCARD_CARD_FAULT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "apdu/apdu.h"
#include "apdu/vcard/card.h"

#define KV_VCARD_FAULTS_MAX 32
#define KV_VCARD_LOG_RECORDS_MAX 30
#define KV_VCARD_LOG_FORMAT_MAX 64  /* 9F4F bytes */
#define KV_VCARD_LOG_RECORD_MAX 128 /* bytes of one log record */

enum kv_vcard_fault_kind {
    KV_FAULT_SW = 1,       /* answer only sw; the command is not run */
    KV_FAULT_CORRUPT_AC,   /* flip bit `bit` of 9F26 (or the AC in an 80 GENERATE AC answer) */
    KV_FAULT_CORRUPT_SDAD, /* flip bit `bit` of 9F4B (or an 80 INTERNAL AUTHENTICATE answer) */
    KV_FAULT_ATC_SKEW,     /* add n (mod 2^16) to every 9F36 the answer carries */
    KV_FAULT_ATC_ADD,      /* add n to the real ATC before the command runs (0..FFFF) */
    KV_FAULT_ATC_SET,      /* set the real ATC to n before the command runs */
    KV_FAULT_DROP_TAG,     /* remove every object with tag from the answer */
    KV_FAULT_DUP_TAG,      /* repeat the first object with tag right after itself */
    KV_FAULT_DELAY,        /* wait n ms before answering */
    KV_FAULT_TEAR_BEFORE,  /* the card goes away before running the command */
    KV_FAULT_TEAR_AFTER,   /* the card runs the command, then goes away unanswered */
};

typedef struct {
    uint8_t ins;
    int p1, p2;   /* -1: any */
    unsigned nth; /* 0: every matching command; else only the nth since power on or reset */
    int once;     /* acts once in the card's life: power on and reset do not re-arm it */
    enum kv_vcard_fault_kind kind;
    uint16_t sw;
    uint32_t tag;
    long n;       /* skew, add, set, delay ms */
    unsigned bit; /* corrupt: bit index from the most significant bit of the first byte */
} kv_vcard_fault;

typedef struct kv_vcard_faults {
    kv_vcard_fault f[KV_VCARD_FAULTS_MAX];
    size_t n;
    unsigned seen[KV_VCARD_FAULTS_MAX]; /* matching commands since power on or reset */
    uint8_t spent[KV_VCARD_FAULTS_MAX]; /* a "once" fault that has acted */
} kv_vcard_faults;

typedef struct kv_vcard_logcfg {
    uint8_t sfi;                             /* 11..30 */
    uint8_t records;                         /* 1..30 */
    uint8_t format[KV_VCARD_LOG_FORMAT_MAX]; /* 9F4F: a DOL */
    size_t format_len;
    size_t record_len; /* sum of the format's lengths */
    int in_fci;        /* 9F4D also in the FCI's BF0C (default 1) */
} kv_vcard_logcfg;

/* The log of one application: newest record first. */
typedef struct {
    uint8_t rec[KV_VCARD_LOG_RECORDS_MAX][KV_VCARD_LOG_RECORD_MAX];
    size_t n;
} kv_vcard_log_area;

/* Parse a "faults" array into out. 0, or KV_ERR_JSON / KV_ERR_FORMAT with the field in why. */
int kv_vcard_faults_parse(const json_t *arr, const char *where, kv_vcard_faults *out, char *why,
                          size_t whylen);
/* Parse a "log" object into out. 0, or KV_ERR_JSON / KV_ERR_FORMAT with the field in why. */
int kv_vcard_logcfg_parse(const json_t *obj, kv_vcard_logcfg *out, char *why, size_t whylen);
/*
 * The profile's "faults" and "log" into p->faults, p->log (absent: NULL),
 * with 9F4D put into each application's FCI when the log asks for it,
 * checked against the rest of the profile (the log SFI holds no record, no
 * "data" 9F4D / 9F4F). Called by kv_vcard_profile_build after the rest.
 */
int kv_vcard_profile_lab(json_t *root, kv_vcard_profile *p, char *why, size_t whylen);
/* Free p->faults and p->log (kv_vcard_profile_free). */
void kv_vcard_profile_lab_free(kv_vcard_profile *p);

/* The card's faults and log (kv_vcard.lab). */
typedef struct kv_vcard_lab {
    kv_vcard_faults faults;     /* in effect (the profile's, or set by the API) */
    const kv_vcard_logcfg *log; /* the profile's; NULL: no log */
    kv_vcard_log_area *areas;   /* one per DF of the profile (only applications use theirs) */
    uint32_t active;            /* bit i: fault i acts on the command in progress */
} kv_vcard_lab;

/* Set up the card's faults and log from its profile (card_load.c). 0 or KV_ERR_NOMEM. */
int kv_vcard_lab_init(kv_vcard *vc);
/* Free them (kv_vcard_free). */
void kv_vcard_lab_free(kv_vcard *vc);
/* Power on, off, reset: the fault counters restart. */
void kv_vcard_lab_session(kv_vcard *vc);

/*
 * Before the command runs: count it, apply the delays and the changes of
 * the real ATC. Returns 1 when the card must not run the command (a->sw is
 * set: a "sw" fault), KV_ERR_PCSC_REMOVED for a tear before the command,
 * else 0. *tear_after is set when a tear follows the command.
 */
int kv_vcard_fault_before(kv_vcard *vc, const kv_capdu *c, kv_vcard_answer *a, int *tear_after);
/* After the command ran: rewrite the answer (corrupt, skew, drop, duplicate). */
void kv_vcard_fault_after(kv_vcard *vc, const kv_capdu *c, kv_vcard_answer *a);

/* GET DATA 9F4D / 9F4F of a card with a log: 1 and the whole TLV in a, else 0. */
int kv_vcard_log_get_data(kv_vcard *vc, uint32_t tag, kv_vcard_answer *a);
/* READ RECORD of the log SFI: 1 and the answer in a, else 0 (not the log file). */
int kv_vcard_log_read_record(kv_vcard *vc, const kv_capdu *c, kv_vcard_answer *a);
/*
 * After a GENERATE AC: when it ended the transaction (ac_before 0 or 1,
 * now 2, SW 9000), write a log record. A state file that cannot be written
 * turns the answer into 6581.
 */
void kv_vcard_log_after_genac(kv_vcard *vc, const kv_capdu *c, kv_vcard_answer *a, int ac_before);
/* The state file's "log" member: read (KV_ERR_FORMAT when malformed) and written. */
int kv_vcard_log_from_json(kv_vcard *vc, const json_t *v);
int kv_vcard_log_to_json(const kv_vcard *vc, json_t *root);

#endif

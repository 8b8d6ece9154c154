/*
 * The EMV host session: application selection, GET PROCESSING OPTIONS, the
 * records of the AFL, GET DATA and offline plaintext PIN verification, over
 * a kv_reader (reader.h). The session holds what the card said in a card
 * data model (kv_emv_card) and keeps every raw record for later steps
 * (offline data authentication, CVM processing, GENERATE AC).
 *
 * A session is a heap object: kv_emv_new / kv_emv_free. It borrows the
 * reader, which must outlive it. One session reads one card once; steps run
 * in order: kv_emv_select -> kv_emv_gpo -> kv_emv_read_records ->
 * kv_emv_get_data_all, or all of them through kv_emv_read_card. Later steps
 * (GENERATE AC, INTERNAL AUTHENTICATE, GET CHALLENGE) are built on
 * kv_emv_command and kv_emv_find.
 *
 * Status words the card answers with are either the step's normal outcome
 * (an absent GET DATA object, a wrong PIN) or an error translated with
 * kv_sw_to_err; transport errors (card removed: KV_ERR_PCSC_REMOVED) pass
 * through unchanged.
 */
#ifndef KV_APDU_EMV_H
#define KV_APDU_EMV_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "apdu/dol.h"
#include "apdu/oda.h"
#include "apdu/reader.h"
#include "apdu/termcfg.h"

#define KV_AID_MIN 5
#define KV_AID_MAX 16
#define KV_EMV_MAX_APPS 16
/* Largest answer the session accepts (data of GET RESPONSE chains included). */
#define KV_EMV_RESP_MAX 4096

/* Which selection methods to try (by default: PSE, then PPSE, then the AID list). */
enum kv_emv_iface {
    KV_EMV_IFACE_ANY = 0,         /* PSE, PPSE, AID list */
    KV_EMV_IFACE_CONTACT = 1,     /* PSE, AID list */
    KV_EMV_IFACE_CONTACTLESS = 2, /* PPSE, AID list */
};

/* How the candidate list was built. */
enum kv_emv_selection {
    KV_EMV_SEL_NONE = 0,
    KV_EMV_SEL_PSE,      /* 1PAY.SYS.DDF01 directory records */
    KV_EMV_SEL_PPSE,     /* 2PAY.SYS.DDF01 FCI directory (BF0C) */
    KV_EMV_SEL_AID_LIST, /* SELECT of each known AID */
};

/* "pse", "ppse", "aid_list" or "none". */
const char *kv_emv_selection_name(int selection);

/* One application: a directory entry or an AID-list hit, and after final selection its FCI. */
typedef struct {
    uint8_t aid[KV_AID_MAX];
    size_t aid_len;
    char label[17];          /* 50, printable ASCII (others as '?'); "" when absent */
    char preferred_name[17]; /* 9F12, same rules */
    int priority;            /* 87 low nibble 1..15; -1 when absent or 0 */
    int api;                 /* the whole 87 byte; -1 when absent */
} kv_emv_app;

/* A value inside the session's buffers (valid until kv_emv_free); p NULL when absent. */
typedef struct {
    const uint8_t *p;
    size_t len;
} kv_emv_ref;

/* One record of the AFL, as the card returned it (SW removed). */
typedef struct {
    uint8_t sfi;    /* 1..30 */
    uint8_t record; /* 1..255 */
    int oda;        /* 1 if the AFL marks it for offline data authentication */
    uint8_t *data;  /* owned by the session */
    size_t len;
} kv_emv_record;

/* What the read found. References point into the session. */
typedef struct {
    int selection;                    /* enum kv_emv_selection */
    kv_emv_app apps[KV_EMV_MAX_APPS]; /* candidates, in card order */
    size_t napps;
    kv_emv_app selected; /* FCI of the selected application */
    int has_selected;
    kv_emv_ref fci;  /* the selected application's FCI (6F) */
    kv_emv_ref pdol; /* 9F38 of that FCI */
    kv_emv_ref gpo;  /* GPO answer data (80 or 77 template) */
    uint8_t aip[2];  /* 82 */
    int has_aip;
    kv_emv_ref afl;         /* 94 */
    kv_emv_record *records; /* in AFL order */
    size_t nrecords;

    char pan[20];                                   /* digits; "" when absent */
    char expiry[5];                                 /* YYMM; "" when absent */
    int psn;                                        /* 5F34, -1 when absent */
    kv_emv_ref track2;                              /* 57 (or 9F6B) */
    kv_emv_ref cvm_list;                            /* 8E */
    kv_emv_ref iac_default, iac_denial, iac_online; /* 9F0D, 9F0E, 9F0F */
    int ca_index;                                   /* 8F, -1 when absent */
    kv_emv_ref issuer_cert, issuer_rem, issuer_exp; /* 90, 92, 9F32 */
    kv_emv_ref icc_cert, icc_exp, icc_rem;          /* 9F46, 9F47, 9F48 */
    kv_emv_ref cdol1, cdol2, ddol;                  /* 8C, 8D, 9F49 */
    kv_emv_ref sda_tag_list;                        /* 9F4A */

    int pin_try_counter; /* 9F17, -1 when absent */
    uint8_t atc[2];      /* 9F36 */
    int has_atc;
    uint8_t last_online_atc[2]; /* 9F13 */
    int has_last_online_atc;
    uint8_t log_format[64]; /* 9F4F */
    size_t log_format_len;  /* 0 when absent */
} kv_emv_card;

typedef struct kv_emv kv_emv;

/*
 * New session over reader r (borrowed). t is copied; NULL takes
 * kv_terminal_init's defaults. Returns 0, KV_ERR_NOMEM or KV_ERR_INTERNAL
 * (no random number for 9F37).
 */
int kv_emv_new(kv_reader *r, const kv_terminal *t, kv_emv **out);

/* Free the session and everything the card data points at; NULL is a no-op. */
void kv_emv_free(kv_emv *s);

/* The terminal profile the session uses (changes apply to later steps). */
kv_terminal *kv_emv_terminal(kv_emv *s);

/*
 * Add an AID (5..16 bytes) to the end of the AID list tried when neither
 * PSE nor PPSE gives applications. Built in: Visa A0000000031010, Visa
 * Electron A0000000032010, V PAY A0000000032020, Mastercard A0000000041010,
 * Maestro A0000000043060, Dankort A0000001211010. Returns 0, KV_ERR_ARG or
 * KV_ERR_BUFFER (list full, 32 entries). A session with a terminal
 * configuration (kv_emv_set_term_config) tries the configuration's AIDs
 * instead.
 */
int kv_emv_add_aid(kv_emv *s, const uint8_t *aid, size_t len);

/*
 * Selection rules (EMV Book 1 §12), as kortvagt applies them:
 *   - without kv_emv_set_term_config the session is a card reader (`card
 *     read`): every application the card lists is a candidate, the AID list
 *     is the built-in one plus kv_emv_add_aid's (all with partial ASI), and
 *     the selected AID's entry of the built-in configuration, if it has one,
 *     gives 9F09;
 *   - with it the session is a terminal: only applications that match one
 *     of the configuration's AIDs under its ASI are candidates, from the
 *     PSE (directory entries 61/4F; DDF entries 61/9D are selected and their
 *     directories read once the directory naming them is read, at most 4
 *     levels deep and 8 DDFs, never one twice)
 *     and from the AID list, which is the configuration's (a DF name longer
 *     than the AID is a candidate only under ASI partial, and only then is
 *     SELECT with P2 02 "next occurrence" sent for more);
 *   - 6A81 to SELECT of the PSE terminates: KV_ERR_CARD_BLOCKED (Book 1
 *     §12.3.2); 6A81 during the AID list ends the list;
 *   - an application whose API (87) has bit 8 set asks for the cardholder's
 *     confirmation. kortvagt has no cardholder to ask, so it is never
 *     selected automatically: without kv_emv_choose_aid it is excluded (Book
 *     1 §12.4, terminal without confirmation), and when only such
 *     applications are left the selection fails with KV_ERR_APP_CONFIRM;
 *     kv_emv_choose_aid of its AID is the confirmation;
 *   - after GPO 6985 the next candidate is selected (none after a chosen AID:
 *     KV_ERR_NO_APPLICATION) and its entry's terminal data are applied.
 */

/*
 * Use c (borrowed; must outlive the session) for selection and the
 * per-application terminal data: candidates are the card's applications
 * that match one of c's AIDs under its ASI (Book 1 §12.3), the AID list is
 * c's, and after final selection (also after a re-selection that follows
 * GPO 6985) the matched entry is applied to the terminal profile
 * (kv_term_config_apply_app). NULL: the built-in kv_term_config_defaults.
 */
void kv_emv_set_term_config(kv_emv *s, const kv_term_config *c);

/*
 * The cardholder's (operator's) choice: select this AID (5..16 bytes) among
 * the candidates instead of the highest priority; the only way to select an
 * application whose API (87) bit 8 asks for confirmation. Returns 0 or
 * KV_ERR_ARG. kv_emv_select then fails with KV_ERR_NO_APPLICATION when the
 * card has no such candidate.
 */
int kv_emv_choose_aid(kv_emv *s, const uint8_t *aid, size_t len);

/* The terminal configuration entry of the selected application, NULL before selection. */
const kv_aid_config *kv_emv_selected_config(const kv_emv *s);

/*
 * Build the candidate list (PSE, PPSE, AID list, as iface allows, stopping at
 * the first method that yields applications) and select the application of
 * highest priority (87; absent last; card order among equals); when its
 * SELECT fails (or its FCI names another DF) the next is tried. Returns 0,
 * KV_ERR_NO_APPLICATION, KV_ERR_CARD_BLOCKED (SELECT PSE answered 6A81),
 * KV_ERR_APP_CONFIRM (only applications that ask for confirmation are
 * left; see the selection rules above) or a transport error.
 */
int kv_emv_select(kv_emv *s, unsigned iface);

/*
 * GET PROCESSING OPTIONS with the PDOL data (83 template) from the terminal
 * profile; parses format 1 (80) and format 2 (77) into AIP and AFL. A 6985
 * answer removes the application and selects the next candidate, as EMV
 * Book 3 §10.1 asks. Returns 0, KV_ERR_NO_APPLICATION (or
 * KV_ERR_APP_CONFIRM) when no candidate is left, KV_ERR_CARD_DATA
 * (answer without AIP/AFL or malformed), a KV_ERR_CARD_* of the SW, or a
 * transport error.
 */
int kv_emv_gpo(kv_emv *s);

/*
 * READ RECORD (P2 = SFI << 3 | 4) of every record of the AFL; each must be
 * answered 9000 (for SFI 1..10 with a 70 template). Extracts the card data
 * model from the records and the GPO answer. Returns 0, KV_ERR_CARD_DATA (bad
 * AFL entry, malformed record), KV_ERR_CARD_DUPLICATE (a primitive data
 * object twice among the objects of the GPO answer's 77 template and the
 * records' 70 templates, Book 3 §10.2), the KV_ERR_CARD_* of a failed READ
 * RECORD or a transport error.
 */
int kv_emv_read_records(kv_emv *s);

/*
 * GET DATA (80 CA P1 P2) for tag: the value (unwrapped from its TLV when the
 * card wraps it) into out (capacity cap), *len its length. Returns 0,
 * KV_ERR_NOT_FOUND when the card has no such object (any SW but 9000: 6A88,
 * 6A81, 6D00 ...), KV_ERR_BUFFER or a transport error.
 */
int kv_emv_get_data(kv_emv *s, uint32_t tag, uint8_t *out, size_t cap, size_t *len);

/* GET DATA for 9F17, 9F36, 9F13, 9F4F into the card data; absent ones stay absent. */
int kv_emv_get_data_all(kv_emv *s);

/* select, gpo, read_records, get_data_all. */
int kv_emv_read_card(kv_emv *s, unsigned iface);

/*
 * EMV Book 3 §7.2 mandatory data: KV_ERR_CARD_MISSING unless 5F24, 5A and 8C
 * (and 8D when need_cdol2) are present with a non-empty value in the GPO
 * answer or the records; else 0. Call after kv_emv_read_records.
 */
int kv_emv_check_mandatory(const kv_emv *s, int need_cdol2);

/*
 * The static data to be authenticated for kv_oda_begin (card->sd): every
 * record the AFL marks for ODA, however many (the array lives in the
 * session: valid until kv_emv_free or the next kv_emv_read_records), the
 * 9F4A tag list and the AIP.
 */
void kv_emv_oda_static(const kv_emv *s, kv_oda_static *sd);

/* The card data found so far (valid until kv_emv_free). */
const kv_emv_card *kv_emv_card_data(const kv_emv *s);

/*
 * First primitive object with tag in the GPO answer and the records (in
 * that order), e.g. 9F4A, 5F25. Returns 0 with *v and *len pointing into the
 * session, or KV_ERR_NOT_FOUND.
 */
int kv_emv_find(const kv_emv *s, uint32_t tag, const uint8_t **v, size_t *len);

/*
 * Send one command through the session's reader and split the answer:
 * resp (capacity cap) gets the data, *len its length, *sw the status word.
 * Returns 0 whatever the SW, or a transport error.
 */
int kv_emv_command(kv_emv *s, const kv_capdu *c, uint8_t *resp, size_t cap, size_t *len,
                   uint16_t *sw);

/* Outcome of a PIN verification: a result, not an error. */
enum kv_pin_status {
    KV_PIN_VERIFIED = 0,
    KV_PIN_WRONG = 1,   /* tries_left says how many remain (63Cx) */
    KV_PIN_BLOCKED = 2, /* 6983 / 6984: no more tries */
};

typedef struct {
    int status;     /* enum kv_pin_status */
    int tries_left; /* for KV_PIN_WRONG: 0..15; -1 when the card did not say (6300) */
} kv_pin_result;

/*
 * The plaintext PIN block (EMV Book 3 §6.5.12.2: control 2, length N, the
 * PIN digits, F filler) of pin (pin_len ASCII digits, 4..12) into block (8
 * bytes), for VERIFY and for the enciphered PIN. Returns 0, or KV_ERR_ARG
 * (block untouched) for a PIN that is not 4..12 digits.
 */
int kv_pin_block_plain(const char *pin, size_t pin_len, uint8_t block[8]);

/*
 * The outcome of the status word of a VERIFY (plaintext or enciphered PIN)
 * into *res: 9000 verified; 63Cx wrong, x tries left; 6300 wrong, count not
 * given; 6983 / 6984 blocked. Returns 0, or for any other status word its
 * KV_ERR_CARD_* (kv_sw_to_err; res->tries_left is -1, status untouched).
 */
int kv_pin_result_of_sw(uint16_t sw, kv_pin_result *res);

/*
 * Offline plaintext PIN: VERIFY 00 20 00 80 08 with the PIN block 2N PIN
 * F..F (EMV Book 3 §6.5.12). pin is pin_len ASCII digits (4..12). The block
 * lives in locked memory and is wiped. Returns 0 with *res filled (9000,
 * 63Cx, 6300, 6983, 6984), KV_ERR_ARG for a PIN that is not 4..12 digits,
 * another status word as its KV_ERR_CARD_*, or a transport error.
 */
int kv_emv_verify_plain_pin(kv_emv *s, const char *pin, size_t pin_len, kv_pin_result *res);

/* ---- reports (emv_report.c) ---- */

#define KV_EMV_REVEAL 0x01 /* PANs in full (default: first 6 and last 4 digits) */

/*
 * The card data as a new JSON object (caller json_decref()s it): "pan",
 * "expiry" (YYMM), "aids" (card order), "selected_aid", "psn" ("01"), "label",
 * "applications" [{"aid","label","priority"}], "selection", "pin_try_counter",
 * "atc", "last_online_atc", "log_format", "aip", "afl", "records"
 * [{"sfi","record","oda","tlv"}] with "tlv" the tree of tags.h. Absent values
 * are null. NULL when memory runs out.
 */
json_t *kv_emv_to_json(const kv_emv *s, unsigned opts);

/* A readable summary of the card data to f (PAN masked unless KV_EMV_REVEAL). */
void kv_emv_print(FILE *f, const kv_emv *s, unsigned opts);

#endif

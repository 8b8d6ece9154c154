/*
 * Internal to kv_vcard: the card state and the pieces the card's source files
 * share. card.c runs the session and dispatches C-APDUs (SELECT, READ RECORD,
 * GPO, GET DATA, VERIFY, GET RESPONSE, the quirks); card_crypto.c answers the
 * cryptographic commands (apdu/vcard/CRYPTO.md); card_load.c makes a card
 * from a profile or a trace card; card_state.c keeps the persistent counters
 * in the state file.
 */
#ifndef KV_APDU_VCARD_CARD_H
#define KV_APDU_VCARD_CARD_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "apdu/apdu.h"
#include "apdu/recorded.h"
#include "apdu/tlv.h"
#include "apdu/vcard/profile.h"
#include "apdu/vcard/vcard.h"

/* Status words the card sends (ISO/IEC 7816-4 §5.6, EMV Book 3 Annex A). */
enum {
    SW_OK = 0x9000,
    SW_MORE = 0x6100, /* | bytes still available */
    SW_SELECTED_BLOCKED = 0x6283,
    SW_VERIFY_FAILED = 0x6300,
    SW_TRIES_LEFT = 0x63C0, /* | tries left */
    SW_MEMORY_FAILURE = 0x6581,
    SW_WRONG_LENGTH = 0x6700,
    SW_PIN_BLOCKED = 0x6983,
    SW_CONDITIONS = 0x6985,
    SW_WRONG_DATA = 0x6A80,
    SW_FILE_NOT_FOUND = 0x6A82,
    SW_RECORD_NOT_FOUND = 0x6A83,
    SW_WRONG_P1P2 = 0x6A86,
    SW_DATA_NOT_FOUND = 0x6A88,
    SW_WRONG_LE = 0x6C00, /* | exact length */
    SW_INS_UNKNOWN = 0x6D00,
    SW_CLA_UNKNOWN = 0x6E00,
    SW_NO_DIAGNOSIS = 0x6F00,
};

struct kv_vcard {
    kv_vcard_profile *prof; /* a profile card, or */
    kv_recorded *rec;       /* a recorded card */
    char name[128];
    uint8_t atr[KV_VCARD_ATR_MAX];
    size_t atr_len;
    unsigned quirks;

    /* session: cleared by power on/off and reset */
    int selected; /* index into prof->dfs; -1: nothing selected */
    int gpo_done;
    uint8_t pending[KV_VCARD_DATA_MAX]; /* data held back for GET RESPONSE */
    size_t pending_len, pending_off;
    uint8_t challenge[8]; /* GET CHALLENGE, for the next VERIFY */
    int has_challenge;
    int pin_performed, pin_failed; /* CVR bits of this transaction */
    int dda_performed;
    uint8_t pdol_data[KV_VCARD_DATA_MAX]; /* GPO 83 value, for CDA */
    size_t pdol_len;
    int ac_state; /* 0 no GEN AC yet, 1 ARQC given (online), 2 done */
    uint8_t first_cid;
    uint8_t arqc[8];
    uint8_t cdol1_data[KV_VCARD_DATA_MAX];
    size_t cdol1_len;
    int issuer_auth; /* 0 not performed, 1 passed, -1 failed */

    /* persistent: the state file */
    unsigned pin_tries;
    unsigned atc;
    char *state_path;
    char card_id[512]; /* the profile's real path: whose counters the state file holds */

    struct kv_vcard_lab *lab; /* test-lab faults and the transaction log (card_fault.h) */

    /* card risk management and issuer scripts (card_sm.c, CRYPTO.md §6-§7) */
    int terminal_offline_only; /* 9F35 in the CDOL1 data says the terminal cannot go online */
    int unable_online;         /* ARC Z3 / Y3 in the 2nd GEN AC */
    int crm_lcol, crm_ucol;    /* this transaction went over LCOL / UCOL */
    int iss_auth_missing;      /* online approval without issuer authentication */
    int cda_first;             /* CDA signature returned in the 1st GEN AC */
    struct kv_vcard_appstate {
        unsigned atc, pin_tries;  /* an application with its own counters: while not active */
        unsigned offline;         /* consecutive offline transactions since the last online one */
        unsigned last_online_atc; /* 9F13 */
        int has_last_online;
        unsigned bad_macs; /* wrong script MACs since the last good one */
        unsigned scripts;  /* SM commands processed since the CVR last reported them */
        int script_failed;
        int last_ia_failed; /* issuer authentication failed in the last online transaction */
        int blocked;        /* APPLICATION BLOCK (or too many wrong MACs) */
        int banked;         /* atc/pin_tries hold its own counters (loaded or switched out) */
    } apps[KV_VCARD_MAX_APPS];
    int card_blocked;
    int active_own; /* 0: atc/pin_tries are the card's; i + 1: application i's own */
    unsigned card_atc, card_pin_tries; /* the card's counters while active_own > 0 */
};

typedef struct {
    uint8_t data[KV_VCARD_DATA_MAX];
    size_t len;
    uint16_t sw;
} kv_vcard_answer;

/* The selected DF when it is an application, else NULL. */
const kv_vcard_df *kv_vcard_selected_app(const kv_vcard *vc);
/* data = the whole of a TLV writer's output (w writes into a->data), or 6F00 if it did not fit */
void kv_vcard_answer_tlv(kv_vcard_answer *a, kv_tlv_writer *w);
/*
 * A well-formed plaintext PIN block (EMV Book 3 §6.5.12; VERIFY and PIN
 * CHANGE): control 2, length 4..12, that many BCD digits, F filler
 * (KV_VCARD_PIN_BLOCK_LEN bytes). This looks at the digits the terminal
 * sent, not at the card's PIN. Returns 1 or 0 (card.c).
 */
int kv_vcard_pin_block_ok(const uint8_t *b);

/*
 * Enciphered PIN (EMV Book 2 §7.2): RSA-decipher the data and check
 * 7F || PIN block || challenge || pad; the PIN block goes to block. Returns
 * the status word to answer, or 0 to go on with block. (card_crypto.c)
 */
uint16_t kv_vcard_decipher_pin(kv_vcard *vc, const kv_capdu *c,
                               uint8_t block[KV_VCARD_PIN_BLOCK_LEN]);

/* The cryptographic commands (card_crypto.c), rows of the command table. */
void kv_vcard_cmd_get_challenge(kv_vcard *vc, const kv_capdu *c, kv_vcard_answer *a);
void kv_vcard_cmd_internal_auth(kv_vcard *vc, const kv_capdu *c, kv_vcard_answer *a);
void kv_vcard_cmd_generate_ac(kv_vcard *vc, const kv_capdu *c, kv_vcard_answer *a);
void kv_vcard_cmd_external_auth(kv_vcard *vc, const kv_capdu *c, kv_vcard_answer *a);
void kv_vcard_cmd_ccc(kv_vcard *vc, const kv_capdu *c, kv_vcard_answer *a);

/* The keys and risk parameters of the selected application (its own, else the card's). */
const kv_vcard_keys *kv_vcard_keys_of(const kv_vcard *vc);
const kv_vcard_risk *kv_vcard_risk_of(const kv_vcard *vc);
/* The persistent state of the selected application, or NULL. */
struct kv_vcard_appstate *kv_vcard_app_state(kv_vcard *vc);

/*
 * card_sm.c: run one command of the table through the card's life-cycle
 * gate: a blocked card answers SELECT with 6A81, a blocked application
 * answers SELECT with 6283 and GPO with 6985, per-application ATC and PIN
 * are switched in at SELECT, GET DATA 9F13 answers the last online ATC.
 */
typedef void (*kv_vcard_cmd_fn)(kv_vcard *vc, const kv_capdu *c, kv_vcard_answer *a);
void kv_vcard_gated(kv_vcard *vc, const kv_capdu *c, kv_vcard_answer *a, kv_vcard_cmd_fn run);
/*
 * The state file's "crm" object (card_sm.c, CRYPTO.md §6): card block,
 * per-application blocks, offline counters, 9F13, wrong script MACs and the
 * applications' own ATC/PIN counters. from_json: 0 or KV_ERR_FORMAT;
 * to_json adds it to root (nothing when all is as new) and writes the
 * card's own ATC/PIN at the top while an application's own are active.
 */
int kv_vcard_crm_from_json(kv_vcard *vc, const json_t *root);
int kv_vcard_crm_to_json(const kv_vcard *vc, json_t *root);
/* Issuer script commands with secure messaging (card_sm.c, CRYPTO.md §7). */
void kv_vcard_cmd_script(kv_vcard *vc, const kv_capdu *c, kv_vcard_answer *a);

/* A new card with nothing selected, or NULL (card_load.c). */
kv_vcard *kv_vcard_alloc(void);

#endif

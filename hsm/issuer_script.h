/*
 * Issuer script commands built in the HSM (EMV Book 2 §9, Book 3 §6.5 and
 * the card's CVN): secure-messaging session keys for integrity (SMI) and
 * confidentiality (SMC) derived from their own issuer master keys (roles
 * imk-smi, imk-smc) by the CVN's session-key method, the command MAC of
 * Book 2 §9.2 (MAC algorithm 3, padding method 2, 4..8 bytes) and the new
 * PIN of PIN CHANGE/UNBLOCK enciphered under the SMC key (Book 2 §9.3).
 * What the MAC covers depends on the CVN (README "Issuer scripts"): Visa
 * (session key R = ATC || 00*6) CLA INS P1 P2 Lc || ATC || ARQC || data;
 * Mastercard and CCD (session key R = the ARQC, which binds the command to
 * the transaction) CLA INS P1 P2 Lc || data. No key and no PIN leaves the
 * token or a kv_secbuf.
 */
#ifndef KV_HSM_ISSUER_SCRIPT_H
#define KV_HSM_ISSUER_SCRIPT_H

#include <stddef.h>
#include <stdint.h>

#include "hsm/p11.h"
#include "src/base/secure.h"

enum kv_script_kind {
    KV_SCRIPT_PIN_UNBLOCK = 1, /* 84 24 00 00 + MAC */
    KV_SCRIPT_PIN_CHANGE,      /* 84 24 00 02 + enciphered PIN + MAC */
    KV_SCRIPT_APP_BLOCK,       /* 84 1E 00 00 + MAC */
    KV_SCRIPT_APP_UNBLOCK,     /* 84 18 00 00 + MAC */
    KV_SCRIPT_CARD_BLOCK,      /* 84 16 00 00 + MAC */
    KV_SCRIPT_PUT_DATA,        /* 04 DA P1 P2 (tag) + value + MAC */
    KV_SCRIPT_UPDATE_RECORD,   /* 04 DC rec (SFI<<3|4) + record + MAC */
};

/* "pin-unblock", "pin-change", "app-block", "app-unblock", "card-block", "put-data",
 * "update-record"; kv_script_kind_parse is the inverse (0 when unknown). */
const char *kv_script_kind_name(int kind);
int kv_script_kind_parse(const char *name);

/* The transaction a script is bound to. */
typedef struct {
    int cvn;         /* the card's CVN (hsm/emv_crypto.h): picks MK option and SKD */
    const char *pan; /* 5A digits */
    const char *psn; /* 2 digits; NULL "00" */
    uint8_t atc[2];
    uint8_t arqc[8]; /* the application cryptogram the script answers */
    uint8_t un[4];   /* 9F37 (Mastercard SKD) */
} kv_script_txn;

/* What one command does beyond its kind. */
typedef struct {
    int kind;                 /* enum kv_script_kind */
    const kv_secbuf *new_pin; /* PIN CHANGE: the new PIN's digits (pin_len) */
    size_t pin_len;
    const uint8_t *data; /* PUT DATA: the value; UPDATE RECORD: the record */
    size_t data_len;
    uint8_t p1, p2; /* PUT DATA: the tag; UPDATE RECORD: record number, SFI<<3|4 */
    size_t mac_len; /* 4..8; 0: 8 */
} kv_script_spec;

/*
 * Build one issuer script command (the whole C-APDU, Lc including the MAC)
 * into apdu (capacity cap; KV_SCRIPT_CMD_MAX of apdu/script.h is enough),
 * *len its length: SMI session key from imk_smi, SMC from imk_smc (needed
 * only for PIN CHANGE; may be NULL otherwise). Returns 0, KV_ERR_ARG,
 * KV_ERR_HSM_ROLE (a key not in its role), KV_ERR_UNSUPPORTED (CVN),
 * KV_ERR_BUFFER or an HSM error.
 */
int kv_hsm_script_command(kv_hsm *h, const kv_hsm_key *imk_smi, const kv_hsm_key *imk_smc,
                          const kv_script_txn *t, const kv_script_spec *spec, uint8_t *apdu,
                          size_t cap, size_t *len);

#endif

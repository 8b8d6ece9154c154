/*
 * Inside one card-present transaction (transact.h): the state a run holds
 * and the steps the flow in transact.c calls, one file per concern:
 *   transact.c          the flow of EMV Book 3 §10, terminal set-up, outcome;
 *   transact_oda.c      offline data authentication (SDA/DDA/CDA on both
 *                       GENERATE ACs) and the ICC PIN encipherment key;
 *   transact_cvm.c      cardholder verification (offline/online PIN, CVC3);
 *   transact_online.c   the GENERATE ACs, the cryptogram checked in the HSM
 *                       per CVN, the issuer's decision, ARPC and issuer
 *                       authentication;
 *   transact_script.c   issuer scripts (71 before, 72 after the 2nd AC);
 *   transact_json.c     the result as JSON.
 * Not a public interface: only src/transact/ includes it.
 */
#ifndef KV_TRANSACT_TRANSACT_INT_H
#define KV_TRANSACT_TRANSACT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "apdu/emv.h"
#include "apdu/emv_txn.h"
#include "apdu/oda.h"
#include "apdu/script.h"
#include "apdu/termcfg.h"
#include "apdu/trm.h"
#include "hsm/emv_crypto.h"
#include "hsm/p11.h"
#include "src/transact/transact.h"

#define TXN_DOL_MAX 256

/* Everything one run holds. */
typedef struct {
    const kv_transact_params *p;
    kv_transact_result *res;
    kv_emv *s;
    kv_terminal *t;
    const kv_emv_card *card;
    /* the terminal configuration and the selected application's entry */
    kv_term_config cfg_local; /* the built-in one, when the caller gives none */
    const kv_term_config *cfg;
    const kv_aid_config *aid_cfg;
    kv_aid_config aid_fallback; /* an entry for an AID the configuration lacks */
    int online_capable;
    kv_taa_iac iac;
    kv_oda_ctx oda;
    /* the ICC PIN encipherment key's issuer key when ODA did not recover one */
    kv_oda_pubkey pin_issuer;
    int have_pin_issuer;

    kv_secbuf *pin; /* the clear PIN for offline verification (owned when decrypted here) */
    size_t pin_len;
    int pin_owned;
    int online_pin_captured;

    kv_hsm_key imk, imk_cvc3, imk_aes;
    int have_imk_aes;

    /* the exchange */
    uint8_t pdol_data[TXN_DOL_MAX];
    size_t pdol_len;
    uint8_t cdol1[TXN_DOL_MAX];
    size_t cdol1_len;
    uint8_t cdol2[TXN_DOL_MAX];
    size_t cdol2_len;
    uint8_t resp1[KV_EMV_RESP_MAX];
    size_t rlen1;
    uint8_t resp2[KV_EMV_RESP_MAX];
    size_t rlen2;
    kv_genac_resp g1, g2;
    int have_g2;
    int cda_requested; /* the 1st GENERATE AC asked for a CDA signature */

    /* the cryptogram as the issuer checks it */
    kv_emv_params ep;
    int have_ep;
    kv_emv_txn et;
    uint8_t acdata[KV_AC_SD_LEN + 4 + KV_IAD_MAX];
    size_t aclen;

    /* online processing */
    int online;    /* the card asked to go online (ARQC) and the issuer was reached */
    int issuer_ok; /* the issuer's (and the local checks') approval */
    uint8_t issuer_auth[16];
    size_t issuer_auth_len;
    int have_arpc;

    /* issuer scripts: the templates to send (71 and 72) */
    kv_script scripts[KV_SCRIPT_MAX];
    size_t nscripts;
} txn_ctx;

/* ---- transact_cvm.c ---- */

/* Contact CVM: the card's CVM list against the terminal profile. */
int txn_cvm_contact(txn_ctx *x);
/* Contactless: no CVM up to the CVM limit, online PIN above it. */
void txn_cvm_contactless(txn_ctx *x);
/* Online PIN against the PVV through the HSM (nothing to check against: stays unknown). */
int txn_online_pin_check(txn_ctx *x);
/* Contactless CVC3: COMPUTE CRYPTOGRAPHIC CHECKSUM and the HSM check. */
int txn_cvc3_check(txn_ctx *x);

/* ---- transact_oda.c ---- */

/* The ODA step's view of the card (records marked for ODA, all of them). */
int txn_oda_begin(txn_ctx *x);
/* DDA: INTERNAL AUTHENTICATE with the DDOL (card's 9F49, else the default). */
int txn_oda_dda(txn_ctx *x);
/*
 * CDA of a GENERATE AC answer (second 0 for the 1st, 1 for the 2nd):
 * verify the SDAD and, when it holds, take the AC it signs into g. Returns
 * 0 with *ok 1 verified, 0 failed (TVR "CDA failed"), -1 not signed (an
 * AAC), or an error.
 */
int txn_cda_check(txn_ctx *x, int second, kv_genac_resp *g, int *ok);
/* The public key for an enciphered PIN: 9F2D under the issuer key, else the ICC key; NULL. */
const kv_oda_pubkey *txn_pin_key(txn_ctx *x, kv_oda_pubkey *buf);

/* ---- transact_online.c ---- */

/* The 1st GENERATE AC asking for p1 (KV_AC_* | CDA); the card's answer into x->g1 and res. */
int txn_first_ac(txn_ctx *x, uint8_t type);
/* The CVR and the cryptogram of x->g1 checked in the HSM (res->arqc_verified, cvr, cvn). */
int txn_arqc_verify(txn_ctx *x);
/* Online processing for an ARQC: local checks, the authorize hook, the ARPC. */
int txn_online(txn_ctx *x);
/* EXTERNAL AUTHENTICATE when the card asks for it (AIP) and 91 is not in CDOL2. */
int txn_issuer_authenticate(txn_ctx *x);
/* The 2nd GENERATE AC asking for type (TC or AAC), ARC arc; CDA when the card does CDA. */
int txn_second_ac(txn_ctx *x, uint8_t type, const uint8_t arc[2]);

/* ---- transact_script.c ---- */

/* Build the --issuer-script command and take the raw templates; before any is sent. */
int txn_scripts_prepare(txn_ctx *x);
/* Send the templates of tag (0x71 or 0x72) to the card; results into res->scripts. */
int txn_scripts_run(txn_ctx *x, uint8_t tag);

#endif

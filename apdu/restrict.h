/*
 * Processing restrictions (EMV Book 3 §10.4): application version number,
 * application usage control and the effective / expiration dates, checked
 * against the terminal profile; the outcome goes into TVR byte 2. Pure but
 * for kv_restrict_card_from_session, which only reads the session's records.
 */
#ifndef KV_APDU_RESTRICT_H
#define KV_APDU_RESTRICT_H

#include <stddef.h>
#include <stdint.h>

#include "apdu/dol.h"
#include "apdu/emv.h"

/* Application usage control (9F07) byte 1 and 2 bits (Book 3 Annex C2). */
#define KV_AUC_DOMESTIC_CASH 0x8000
#define KV_AUC_INTL_CASH 0x4000
#define KV_AUC_DOMESTIC_GOODS 0x2000
#define KV_AUC_INTL_GOODS 0x1000
#define KV_AUC_DOMESTIC_SERVICES 0x0800
#define KV_AUC_INTL_SERVICES 0x0400
#define KV_AUC_ATM 0x0200
#define KV_AUC_NON_ATM 0x0100
#define KV_AUC_DOMESTIC_CASHBACK 0x0080
#define KV_AUC_INTL_CASHBACK 0x0040

/* The card data processing restrictions read (values, NULL when absent). */
typedef struct {
    const uint8_t *app_version; /* 9F08, 2 bytes */
    size_t app_version_len;
    const uint8_t *auc; /* 9F07, 2 bytes */
    size_t auc_len;
    const uint8_t *issuer_country; /* 5F28, 2 bytes n3 */
    size_t issuer_country_len;
    const uint8_t *effective; /* 5F25 YYMMDD */
    size_t effective_len;
    const uint8_t *expiry; /* 5F24 YYMMDD */
    size_t expiry_len;
} kv_restrict_card;

/* Fill rc from the session's records (kv_emv_find). */
void kv_restrict_card_from_session(const kv_emv *s, kv_restrict_card *rc);

/* 1 when 9C (an n2 value as an integer) is a cash transaction: 01 cash, 17 cash disbursement. */
int kv_txn_type_is_cash(uint8_t txn_type);

/*
 * Processing restrictions against terminal t into tvr (bits ORed):
 *  - 9F08 present and different from 9F09: "different application versions";
 *  - 9F07 present: ATM (9F35 14, 15 or 16 with "cash" in 9F40 byte 1, bit 8:
 *    Book 4 Annex A1) needs "valid at ATMs", any other
 *    terminal "valid at terminals other than ATMs"; with 5F28 present, domestic
 *    (5F28 = 9F1A) or international: cash (9C 01 or 17) needs "cash"; a
 *    purchase (9C 00, or 09 purchase with cashback) needs "goods" when
 *    t->services is 0 and "services" when it is 1 (each bit on its own, Book 3
 *    §10.4.2); a cashback (9C 09, or an amount other above zero) also needs
 *    "cashback"; a failed check sets "requested service not allowed";
 *  - 5F25 after the transaction date 9A: "application not yet effective";
 *  - 5F24 before it: "expired application". A date that is not BCD YYMMDD
 *    counts as failed (effective: not effective; expiry: expired).
 * Never fails.
 */
void kv_emv_restrictions(const kv_restrict_card *rc, const kv_terminal *t, uint8_t tvr[5]);

#endif

/*
 * Terminal Verification Results (95, 5 bytes) and Transaction Status
 * Information (9B, 2 bytes): the bit names of EMV Book 3 Annex C5 and C6 as
 * constants, and helpers to set, test and name them.
 *
 * A bit constant encodes its byte (0-based) in bits 8-10 and its mask in
 * bits 0-7: KV_TVR_SDA_FAILED is byte 1 (index 0), mask 0x40. TVR bits go
 * with kv_tvr_set / kv_tvr_isset on a uint8_t[5]; TSI bits with kv_tsi_set /
 * kv_tsi_isset on a uint8_t[2]. Header only.
 */
#ifndef KV_APDU_TVR_H
#define KV_APDU_TVR_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define KV_TVR_BIT(byte, mask) ((((unsigned)(byte)-1u) << 8) | (unsigned)(mask))

/* TVR byte 1: offline data authentication */
#define KV_TVR_ODA_NOT_PERFORMED KV_TVR_BIT(1, 0x80)
#define KV_TVR_SDA_FAILED KV_TVR_BIT(1, 0x40)
#define KV_TVR_ICC_DATA_MISSING KV_TVR_BIT(1, 0x20)
#define KV_TVR_EXCEPTION_FILE KV_TVR_BIT(1, 0x10)
#define KV_TVR_DDA_FAILED KV_TVR_BIT(1, 0x08)
#define KV_TVR_CDA_FAILED KV_TVR_BIT(1, 0x04)
#define KV_TVR_SDA_SELECTED KV_TVR_BIT(1, 0x02)
/* TVR byte 2: processing restrictions */
#define KV_TVR_VERSION_MISMATCH KV_TVR_BIT(2, 0x80)
#define KV_TVR_EXPIRED_APP KV_TVR_BIT(2, 0x40)
#define KV_TVR_APP_NOT_EFFECTIVE KV_TVR_BIT(2, 0x20)
#define KV_TVR_SERVICE_NOT_ALLOWED KV_TVR_BIT(2, 0x10)
#define KV_TVR_NEW_CARD KV_TVR_BIT(2, 0x08)
/* TVR byte 3: cardholder verification */
#define KV_TVR_CV_NOT_SUCCESSFUL KV_TVR_BIT(3, 0x80)
#define KV_TVR_UNRECOGNISED_CVM KV_TVR_BIT(3, 0x40)
#define KV_TVR_PIN_TRY_LIMIT KV_TVR_BIT(3, 0x20)
#define KV_TVR_PIN_PAD_ABSENT KV_TVR_BIT(3, 0x10)
#define KV_TVR_PIN_NOT_ENTERED KV_TVR_BIT(3, 0x08)
#define KV_TVR_ONLINE_PIN KV_TVR_BIT(3, 0x04)
/* TVR byte 4: terminal risk management */
#define KV_TVR_FLOOR_LIMIT KV_TVR_BIT(4, 0x80)
#define KV_TVR_LCOL_EXCEEDED KV_TVR_BIT(4, 0x40)
#define KV_TVR_UCOL_EXCEEDED KV_TVR_BIT(4, 0x20)
#define KV_TVR_RANDOM_ONLINE KV_TVR_BIT(4, 0x10)
#define KV_TVR_MERCHANT_ONLINE KV_TVR_BIT(4, 0x08)
/* TVR byte 5: issuer authentication and scripts */
#define KV_TVR_DEFAULT_TDOL KV_TVR_BIT(5, 0x80)
#define KV_TVR_ISSUER_AUTH_FAILED KV_TVR_BIT(5, 0x40)
#define KV_TVR_SCRIPT_FAILED_BEFORE KV_TVR_BIT(5, 0x20)
#define KV_TVR_SCRIPT_FAILED_AFTER KV_TVR_BIT(5, 0x10)

/* TSI byte 1 */
#define KV_TSI_ODA_PERFORMED KV_TVR_BIT(1, 0x80)
#define KV_TSI_CV_PERFORMED KV_TVR_BIT(1, 0x40)
#define KV_TSI_CRM_PERFORMED KV_TVR_BIT(1, 0x20)
#define KV_TSI_ISSUER_AUTH_PERFORMED KV_TVR_BIT(1, 0x10)
#define KV_TSI_TRM_PERFORMED KV_TVR_BIT(1, 0x08)
#define KV_TSI_SCRIPT_PERFORMED KV_TVR_BIT(1, 0x04)

/* A bit constant outside the 5 TVR bytes (or 2 TSI bytes) is a programming error: abort. */
static inline void kv_tvr_set(uint8_t tvr[5], unsigned bit)
{
    if ((bit >> 8) >= 5)
        abort();
    tvr[bit >> 8] |= (uint8_t)(bit & 0xFF);
}

static inline int kv_tvr_isset(const uint8_t tvr[5], unsigned bit)
{
    if ((bit >> 8) >= 5)
        abort();
    return (tvr[bit >> 8] & (bit & 0xFF)) == (bit & 0xFF);
}

static inline void kv_tsi_set(uint8_t tsi[2], unsigned bit)
{
    if ((bit >> 8) >= 2)
        abort();
    tsi[bit >> 8] |= (uint8_t)(bit & 0xFF);
}

static inline int kv_tsi_isset(const uint8_t tsi[2], unsigned bit)
{
    if ((bit >> 8) >= 2)
        abort();
    return (tsi[bit >> 8] & (bit & 0xFF)) == (bit & 0xFF);
}

/* EMV name of a TVR bit constant; NULL for an RFU or unknown bit. Static storage. */
static inline const char *kv_tvr_bit_name(unsigned bit)
{
    switch (bit) {
    case KV_TVR_ODA_NOT_PERFORMED:
        return "Offline data authentication was not performed";
    case KV_TVR_SDA_FAILED:
        return "SDA failed";
    case KV_TVR_ICC_DATA_MISSING:
        return "ICC data missing";
    case KV_TVR_EXCEPTION_FILE:
        return "Card appears on terminal exception file";
    case KV_TVR_DDA_FAILED:
        return "DDA failed";
    case KV_TVR_CDA_FAILED:
        return "CDA failed";
    case KV_TVR_SDA_SELECTED:
        return "SDA selected";
    case KV_TVR_VERSION_MISMATCH:
        return "ICC and terminal have different application versions";
    case KV_TVR_EXPIRED_APP:
        return "Expired application";
    case KV_TVR_APP_NOT_EFFECTIVE:
        return "Application not yet effective";
    case KV_TVR_SERVICE_NOT_ALLOWED:
        return "Requested service not allowed for card product";
    case KV_TVR_NEW_CARD:
        return "New card";
    case KV_TVR_CV_NOT_SUCCESSFUL:
        return "Cardholder verification was not successful";
    case KV_TVR_UNRECOGNISED_CVM:
        return "Unrecognised CVM";
    case KV_TVR_PIN_TRY_LIMIT:
        return "PIN Try Limit exceeded";
    case KV_TVR_PIN_PAD_ABSENT:
        return "PIN entry required and PIN pad not present or not working";
    case KV_TVR_PIN_NOT_ENTERED:
        return "PIN entry required, PIN pad present, but PIN was not entered";
    case KV_TVR_ONLINE_PIN:
        return "Online PIN entered";
    case KV_TVR_FLOOR_LIMIT:
        return "Transaction exceeds floor limit";
    case KV_TVR_LCOL_EXCEEDED:
        return "Lower consecutive offline limit exceeded";
    case KV_TVR_UCOL_EXCEEDED:
        return "Upper consecutive offline limit exceeded";
    case KV_TVR_RANDOM_ONLINE:
        return "Transaction selected randomly for online processing";
    case KV_TVR_MERCHANT_ONLINE:
        return "Merchant forced transaction online";
    case KV_TVR_DEFAULT_TDOL:
        return "Default TDOL used";
    case KV_TVR_ISSUER_AUTH_FAILED:
        return "Issuer authentication failed";
    case KV_TVR_SCRIPT_FAILED_BEFORE:
        return "Script processing failed before final GENERATE AC";
    case KV_TVR_SCRIPT_FAILED_AFTER:
        return "Script processing failed after final GENERATE AC";
    default:
        return NULL;
    }
}

/* EMV name of a TSI bit constant; NULL for an RFU or unknown bit. Static storage. */
static inline const char *kv_tsi_bit_name(unsigned bit)
{
    switch (bit) {
    case KV_TSI_ODA_PERFORMED:
        return "Offline data authentication was performed";
    case KV_TSI_CV_PERFORMED:
        return "Cardholder verification was performed";
    case KV_TSI_CRM_PERFORMED:
        return "Card risk management was performed";
    case KV_TSI_ISSUER_AUTH_PERFORMED:
        return "Issuer authentication was performed";
    case KV_TSI_TRM_PERFORMED:
        return "Terminal risk management was performed";
    case KV_TSI_SCRIPT_PERFORMED:
        return "Script processing was performed";
    default:
        return NULL;
    }
}

#endif

/* Processing restrictions (EMV Book 3 §10.4): see restrict.h */
#include "apdu/restrict.h"

#include <string.h>

#include "apdu/tvr.h"

static int bcd_byte(uint8_t b, unsigned *v)
{
    if ((b >> 4) > 9 || (b & 0x0F) > 9)
        return -1;
    *v = (unsigned)(b >> 4) * 10u + (b & 0x0Fu);
    return 0;
}

/* YYMMDD (BCD, 3 bytes) to YYYYMMDD with the Book 4 §6.7 window; -1 when not a date. */
static long bcd_date(const uint8_t *p, size_t len)
{
    unsigned yy, mm, dd;

    if (p == NULL || len != 3 || bcd_byte(p[0], &yy) || bcd_byte(p[1], &mm) ||
        bcd_byte(p[2], &dd) || mm < 1 || mm > 12 || dd < 1 || dd > 31)
        return -1;
    return (long)(yy < 50 ? 2000 + yy : 1900 + yy) * 10000L + (long)mm * 100L + (long)dd;
}

static long int_date(uint32_t yymmdd)
{
    unsigned yy = yymmdd / 10000;
    return (long)(yy < 50 ? 2000 + yy : 1900 + yy) * 10000L + (long)(yymmdd % 10000);
}

/* see restrict.h */
void kv_restrict_card_from_session(const kv_emv *s, kv_restrict_card *rc)
{
    memset(rc, 0, sizeof(*rc));
    if (kv_emv_find(s, 0x9F08, &rc->app_version, &rc->app_version_len) != 0)
        rc->app_version = NULL;
    if (kv_emv_find(s, 0x9F07, &rc->auc, &rc->auc_len) != 0)
        rc->auc = NULL;
    if (kv_emv_find(s, 0x5F28, &rc->issuer_country, &rc->issuer_country_len) != 0)
        rc->issuer_country = NULL;
    if (kv_emv_find(s, 0x5F25, &rc->effective, &rc->effective_len) != 0)
        rc->effective = NULL;
    if (kv_emv_find(s, 0x5F24, &rc->expiry, &rc->expiry_len) != 0)
        rc->expiry = NULL;
}

/* see restrict.h */
int kv_txn_type_is_cash(uint8_t txn_type)
{
    return txn_type == 1 || txn_type == 17;
}

static unsigned n3_value(const uint8_t *p)
{
    unsigned hi, lo;
    if (bcd_byte(p[0], &hi) || bcd_byte(p[1], &lo))
        return 0xFFFF;
    return hi * 100u + lo;
}

/* see restrict.h */
void kv_emv_restrictions(const kv_restrict_card *rc, const kv_terminal *t, uint8_t tvr[5])
{
    long today = int_date(t->date), d;

    /* §10.4.1 application version number */
    if (rc->app_version != NULL &&
        (rc->app_version_len != 2 || memcmp(rc->app_version, t->app_version, 2) != 0))
        kv_tvr_set(tvr, KV_TVR_VERSION_MISMATCH);

    /* §10.4.2 application usage control */
    if (rc->auc != NULL) {
        unsigned auc = rc->auc_len == 2 ? (unsigned)(rc->auc[0] << 8 | rc->auc[1]) : 0;
        /*
         * Book 4 Annex A1: terminal types 14, 15 and 16 with "cash" in the
         * additional terminal capabilities (9F40 byte 1 bit 8) are ATMs, every
         * other terminal is not
         */
        int atm = (t->terminal_type == 14 || t->terminal_type == 15 || t->terminal_type == 16) &&
                  (t->add_capabilities[0] & 0x80) != 0;
        int ok = (auc & (atm ? KV_AUC_ATM : KV_AUC_NON_ATM)) != 0;
        if (ok && rc->issuer_country != NULL) {
            int domestic =
                rc->issuer_country_len == 2 && n3_value(rc->issuer_country) == t->country;
            int cashback = t->txn_type == 9 || t->amount_other > 0;
            if (kv_txn_type_is_cash(t->txn_type))
                ok = (auc & (domestic ? KV_AUC_DOMESTIC_CASH : KV_AUC_INTL_CASH)) != 0;
            else if (t->txn_type == 0 || t->txn_type == 9) {
                /* a purchase of goods needs the goods bit, of services the services bit */
                unsigned need = t->services
                                    ? (domestic ? KV_AUC_DOMESTIC_SERVICES : KV_AUC_INTL_SERVICES)
                                    : (domestic ? KV_AUC_DOMESTIC_GOODS : KV_AUC_INTL_GOODS);
                ok = (auc & need) != 0;
            }
            if (ok && cashback)
                ok = (auc & (domestic ? KV_AUC_DOMESTIC_CASHBACK : KV_AUC_INTL_CASHBACK)) != 0;
        }
        if (!ok)
            kv_tvr_set(tvr, KV_TVR_SERVICE_NOT_ALLOWED);
    }

    /* §10.4.3 application effective and expiration dates */
    if (rc->effective != NULL) {
        d = bcd_date(rc->effective, rc->effective_len);
        if (d < 0 || d > today)
            kv_tvr_set(tvr, KV_TVR_APP_NOT_EFFECTIVE);
    }
    if (rc->expiry != NULL) {
        d = bcd_date(rc->expiry, rc->expiry_len);
        if (d < 0 || d < today)
            kv_tvr_set(tvr, KV_TVR_EXPIRED_APP);
    }
}

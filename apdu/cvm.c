/* see cvm.h */
#include "apdu/cvm.h"

#include <string.h>

#include "src/base/cursor.h"
#include "apdu/tvr.h"
#include "src/base/err.h"

/* Terminal capabilities (9F33) byte 2, CVM capability (Book 4 Annex A2). */
#define CAP_PLAIN_PIN 0x80
#define CAP_ONLINE_PIN 0x40
#define CAP_SIGNATURE 0x20
#define CAP_ENC_PIN 0x10
#define CAP_NO_CVM 0x08

/* AIP byte 1: cardholder verification is supported (Book 3 Annex C1). */
#define AIP_CV_SUPPORTED 0x10

static const kv_cvm_profile kv_cvm_profiles[] = {
    {"pos", {0xE0, CAP_PLAIN_PIN | CAP_ENC_PIN | CAP_SIGNATURE | CAP_NO_CVM, 0xC8}, 22},
    {"atm", {0x60, CAP_ONLINE_PIN, 0xE8}, 14},
    {"unattended", {0x60, CAP_NO_CVM, 0xC8}, 25},
};

/* see cvm.h */
const kv_cvm_profile *kv_cvm_profile_find(const char *name)
{
    size_t i;

    if (name == NULL)
        return NULL;
    for (i = 0; i < sizeof(kv_cvm_profiles) / sizeof(kv_cvm_profiles[0]); i++)
        if (strcmp(kv_cvm_profiles[i].name, name) == 0)
            return &kv_cvm_profiles[i];
    return NULL;
}

/* see cvm.h */
const kv_cvm_profile *kv_cvm_profile_at(size_t i)
{
    if (i >= sizeof(kv_cvm_profiles) / sizeof(kv_cvm_profiles[0]))
        return NULL;
    return &kv_cvm_profiles[i];
}

/* see cvm.h */
int kv_cvm_list_parse(const uint8_t *p, size_t len, kv_cvm_list *out)
{
    int r = KV_ERR_CVM_LIST;
    kv_cursor c;
    size_t n;

    memset(out, 0, sizeof(*out));
    kv_cursor_init(&c, p, len);
    if (kv_cursor_u32be(&c, &out->x) != 0 || kv_cursor_u32be(&c, &out->y) != 0)
        goto out;
    n = kv_cursor_left(&c);
    if (n % 2 != 0 || n / 2 > KV_CVM_RULES_MAX)
        goto out;
    while (kv_cursor_left(&c) > 0) {
        kv_cvm_rule *rule = &out->rules[out->nrules];

        if (kv_cursor_u8(&c, &rule->code) != 0 || kv_cursor_u8(&c, &rule->condition) != 0)
            goto out;
        out->nrules++;
    }
    r = 0;
out:
    if (r != 0)
        memset(out, 0, sizeof(*out));
    return r;
}

/* see cvm.h */
int kv_cvm_recognised(uint8_t method)
{
    return method <= KV_CVM_ENC_PIN_SIG || method == KV_CVM_SIGNATURE || method == KV_CVM_NO_CVM;
}

/* see cvm.h */
int kv_cvm_supported(uint8_t method, const uint8_t caps[3])
{
    uint8_t b = caps[1];

    switch (method) {
    case KV_CVM_FAIL:
        return 1;
    case KV_CVM_PLAIN_PIN:
        return (b & CAP_PLAIN_PIN) != 0;
    case KV_CVM_ONLINE_PIN:
        return (b & CAP_ONLINE_PIN) != 0;
    case KV_CVM_PLAIN_PIN_SIG:
        return (b & CAP_PLAIN_PIN) != 0 && (b & CAP_SIGNATURE) != 0;
    case KV_CVM_ENC_PIN:
        return (b & CAP_ENC_PIN) != 0;
    case KV_CVM_ENC_PIN_SIG:
        return (b & CAP_ENC_PIN) != 0 && (b & CAP_SIGNATURE) != 0;
    case KV_CVM_SIGNATURE:
        return (b & CAP_SIGNATURE) != 0;
    case KV_CVM_NO_CVM:
        return (b & CAP_NO_CVM) != 0;
    default:
        return 0;
    }
}

/* see cvm.h */
const char *kv_cvm_method_name(uint8_t method)
{
    switch (method) {
    case KV_CVM_FAIL:
        return "fail CVM processing";
    case KV_CVM_PLAIN_PIN:
        return "plaintext offline PIN";
    case KV_CVM_ONLINE_PIN:
        return "enciphered online PIN";
    case KV_CVM_PLAIN_PIN_SIG:
        return "plaintext offline PIN and signature";
    case KV_CVM_ENC_PIN:
        return "enciphered offline PIN";
    case KV_CVM_ENC_PIN_SIG:
        return "enciphered offline PIN and signature";
    case KV_CVM_SIGNATURE:
        return "signature";
    case KV_CVM_NO_CVM:
        return "no CVM required";
    case KV_CVM_NONE_PERFORMED:
        return "no CVM performed";
    default:
        return "unrecognised CVM";
    }
}

/* see cvm.h */
const char *kv_cvm_method_id(uint8_t method)
{
    switch (method) {
    case KV_CVM_FAIL:
        return "fail";
    case KV_CVM_PLAIN_PIN:
        return "offline_plaintext_pin";
    case KV_CVM_ONLINE_PIN:
        return "online_pin";
    case KV_CVM_PLAIN_PIN_SIG:
        return "offline_plaintext_pin_and_signature";
    case KV_CVM_ENC_PIN:
        return "offline_enciphered_pin";
    case KV_CVM_ENC_PIN_SIG:
        return "offline_enciphered_pin_and_signature";
    case KV_CVM_SIGNATURE:
        return "signature";
    case KV_CVM_NO_CVM:
        return "no_cvm";
    case KV_CVM_NONE_PERFORMED:
        return "none";
    default:
        return "unrecognised";
    }
}

/* see cvm.h */
const char *kv_cvm_condition_name(uint8_t condition)
{
    switch (condition) {
    case 0x00:
        return "always";
    case 0x01:
        return "if unattended cash";
    case 0x02:
        return "if not unattended cash, not manual cash and not purchase with cashback";
    case 0x03:
        return "if terminal supports the CVM";
    case 0x04:
        return "if manual cash";
    case 0x05:
        return "if purchase with cashback";
    case 0x06:
        return "if in application currency and under X";
    case 0x07:
        return "if in application currency and over X";
    case 0x08:
        return "if in application currency and under Y";
    case 0x09:
        return "if in application currency and over Y";
    default:
        return condition < 0x80 ? "RFU" : "payment system specific";
    }
}

/* see cvm.h */
int kv_cvm_currency_value(const uint8_t *v, size_t len)
{
    int value = 0;
    size_t i;

    if (v == NULL || len != 2)
        return -1;
    for (i = 0; i < 4; i++) {
        unsigned d = (i % 2 == 0) ? (v[i / 2] >> 4) : (v[i / 2] & 0x0F);

        if (d > 9)
            return -1;
        value = value * 10 + (int)d;
    }
    return value;
}

/*
 * 9C 01 (cash) or 17 (cash disbursement): both are cash (Book 4 Annex A:
 * transaction type, ISO 8583 processing code), for the conditions as for the
 * processing restrictions (kv_txn_type_is_cash in restrict.h).
 */
static int is_cash(const kv_cvm_txn *t)
{
    return t->txn_type == 1 || t->txn_type == 17;
}

/* 9F35 second digit 4, 5, 6: unattended (Book 4 Annex A1). */
static int is_unattended(const kv_cvm_txn *t)
{
    unsigned d = t->terminal_type % 10;

    return d >= 4 && d <= 6;
}

static int is_cashback(const kv_cvm_txn *t)
{
    return t->txn_type == 9 || t->amount_other > 0;
}

static int in_app_currency(const kv_cvm_txn *t)
{
    return t->app_currency >= 0 && t->app_currency == (int)t->currency;
}

/* Book 3 Annex C3, Table 40: CVM condition codes. */
static int condition_met(const kv_cvm_txn *t, const kv_cvm_list *l, uint8_t method, uint8_t cond)
{
    switch (cond) {
    case 0x00:
        return 1;
    case 0x01:
        return is_cash(t) && is_unattended(t);
    case 0x02: /* neither unattended nor manual cash means not cash at all */
        return !is_cash(t) && !is_cashback(t);
    case 0x03:
        return kv_cvm_recognised(method) && kv_cvm_supported(method, t->capabilities);
    case 0x04:
        return is_cash(t) && !is_unattended(t);
    case 0x05:
        return is_cashback(t);
    case 0x06:
        return in_app_currency(t) && t->amount < l->x;
    case 0x07:
        return in_app_currency(t) && t->amount > l->x;
    case 0x08:
        return in_app_currency(t) && t->amount < l->y;
    case 0x09:
        return in_app_currency(t) && t->amount > l->y;
    default: /* RFU and payment-system specific codes: the rule is skipped */
        return 0;
    }
}

static int is_offline_pin(uint8_t method)
{
    return method == KV_CVM_PLAIN_PIN || method == KV_CVM_PLAIN_PIN_SIG ||
           method == KV_CVM_ENC_PIN || method == KV_CVM_ENC_PIN_SIG;
}

static int is_pin(uint8_t method)
{
    return is_offline_pin(method) || method == KV_CVM_ONLINE_PIN;
}

/* The terminal lacks the kind of PIN entry the CVM needs (Book 3 §10.5.1, §10.5.2). */
static int pin_entry_missing(uint8_t method, const uint8_t caps[3])
{
    switch (method) {
    case KV_CVM_PLAIN_PIN:
    case KV_CVM_PLAIN_PIN_SIG:
        return (caps[1] & CAP_PLAIN_PIN) == 0;
    case KV_CVM_ENC_PIN:
    case KV_CVM_ENC_PIN_SIG:
        return (caps[1] & CAP_ENC_PIN) == 0;
    case KV_CVM_ONLINE_PIN:
        return (caps[1] & CAP_ONLINE_PIN) == 0;
    default:
        return 0;
    }
}

/* CVM Results byte 3 for a CVM that completed (Book 4 §6.3.4.5). */
static uint8_t success_result(uint8_t method)
{
    switch (method) {
    case KV_CVM_PLAIN_PIN:
    case KV_CVM_ENC_PIN:
    case KV_CVM_NO_CVM:
        return KV_CVM_RESULT_SUCCESSFUL;
    default: /* online PIN, signature, PIN and signature: decided later */
        return KV_CVM_RESULT_UNKNOWN;
    }
}

static void set_results(kv_cvm_result *res, uint8_t code, uint8_t cond, uint8_t result)
{
    res->results[0] = code;
    res->results[1] = cond;
    res->results[2] = result;
    res->method = code & 0x3F;
}

/* see cvm.h */
int kv_cvm_process(const kv_cvm_txn *txn, kv_cvm_perform_fn fn, void *arg, uint8_t tvr[5],
                   uint8_t tsi[2], kv_cvm_result *res)
{
    int r = KV_ERR_INTERNAL;
    kv_cvm_list list;
    int pin_blocked = 0, pin_bypassed = 0, failed_rule = -1;
    size_t i;

    memset(res, 0, sizeof(*res));
    set_results(res, KV_CVM_NONE_PERFORMED, 0x00, KV_CVM_RESULT_UNKNOWN);
    res->rule = -1;

    /* Book 3 §10.5: no CVM List (or no rules) or CV not supported: nothing is performed. */
    if ((txn->aip[0] & AIP_CV_SUPPORTED) == 0 || txn->cvm_list == NULL) {
        r = 0;
        goto out;
    }
    if ((r = kv_cvm_list_parse(txn->cvm_list, txn->cvm_list_len, &list)) != 0)
        goto out;
    if (list.nrules == 0) {
        r = 0;
        goto out;
    }
    res->processed = 1;
    kv_tsi_set(tsi, KV_TSI_CV_PERFORMED);

    for (i = 0; i < list.nrules; i++) {
        uint8_t code = list.rules[i].code, cond = list.rules[i].condition;
        uint8_t method = code & 0x3F;
        int next = (code & KV_CVM_APPLY_NEXT) != 0;
        int outcome = KV_CVM_OUT_FAILED;

        if (!condition_met(txn, &list, method, cond))
            continue;
        if (!kv_cvm_recognised(method)) {
            kv_tvr_set(tvr, KV_TVR_UNRECOGNISED_CVM);
            if (next)
                continue;
            break;
        }
        if (!kv_cvm_supported(method, txn->capabilities)) {
            if (pin_entry_missing(method, txn->capabilities))
                kv_tvr_set(tvr, KV_TVR_PIN_PAD_ABSENT);
            if (next)
                continue;
            break;
        }

        if (method == KV_CVM_NO_CVM) {
            outcome = KV_CVM_OUT_OK;
        } else if (method == KV_CVM_FAIL) {
            outcome = KV_CVM_OUT_FAILED;
        } else if (is_offline_pin(method) && pin_blocked) {
            outcome = KV_CVM_OUT_FAILED;
        } else if (is_pin(method) && pin_bypassed) {
            outcome = KV_CVM_OUT_FAILED;
        } else if (fn != NULL) {
            res->callbacks++;
            if ((r = fn(arg, method, cond, &outcome)) != 0)
                goto out;
        }

        switch (outcome) {
        case KV_CVM_OUT_OK:
            set_results(res, code, cond, success_result(method));
            res->rule = (int)i;
            res->successful = 1;
            if (method == KV_CVM_ONLINE_PIN) {
                kv_tvr_set(tvr, KV_TVR_ONLINE_PIN);
                res->online_pin = 1;
            }
            res->signature_required = method == KV_CVM_SIGNATURE ||
                                      method == KV_CVM_PLAIN_PIN_SIG ||
                                      method == KV_CVM_ENC_PIN_SIG;
            r = 0;
            goto out;
        case KV_CVM_OUT_PIN_TRY_LIMIT:
            kv_tvr_set(tvr, KV_TVR_PIN_TRY_LIMIT);
            if (is_offline_pin(method))
                pin_blocked = 1;
            break;
        case KV_CVM_OUT_PIN_PAD_FAULT:
            kv_tvr_set(tvr, KV_TVR_PIN_PAD_ABSENT);
            break;
        case KV_CVM_OUT_PIN_BYPASSED:
            kv_tvr_set(tvr, KV_TVR_PIN_NOT_ENTERED);
            pin_bypassed = 1;
            break;
        default: /* KV_CVM_OUT_FAILED, or a value the callback should not give */
            break;
        }
        /* performed and unsuccessful */
        set_results(res, code, cond, KV_CVM_RESULT_FAILED);
        failed_rule = (int)i;
        if (!next)
            break;
    }

    /* Verification failed: a CVM that failed, or the list ran out. */
    kv_tvr_set(tvr, KV_TVR_CV_NOT_SUCCESSFUL);
    if (failed_rule < 0)
        set_results(res, KV_CVM_NONE_PERFORMED, 0x00, KV_CVM_RESULT_FAILED);
    res->rule = failed_rule;
    r = 0;
out:
    return r;
}

/*
 * Fuzz target: CVM List (8E) parsing and cardholder verification
 * (apdu/cvm.h) with a cardholder whose every answer comes from the input.
 *
 * Input: profile (1 byte, mod 3: pos, atm, unattended), transaction type
 * (1: 0 purchase, 1 cash, 9 cashback, other values as they come), flags (1:
 * bit 0 AIP without CV support, bit 1 no 9F42, bit 2 no 8E, bit 3 no callback),
 * amount (4, big-endian), amount other (2), application currency (2, BCD as
 * 9F42), outcomes (4: one per callback, mod 5, reused in a cycle), then the
 * 8E value.
 *
 * After each run the invariants of cvm.h are checked: only TVR byte 3 and the
 * TSI "CV performed" bit change, CVM Results byte 3 is 00-02, a failure sets
 * "CV not successful", and no callback is made for methods other than 01-05
 * and 1E.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "apdu/cvm.h"
#include "apdu/tvr.h"
#include "src/base/err.h"

#define HDR 15

typedef struct {
    const uint8_t *outcomes;
    size_t i;
} cardholder;

static int perform(void *arg, uint8_t method, uint8_t condition, int *outcome)
{
    cardholder *c = arg;

    (void)condition;
    if (!(method <= KV_CVM_ENC_PIN_SIG && method != KV_CVM_FAIL) && method != KV_CVM_SIGNATURE)
        abort();
    *outcome = c->outcomes[c->i++ % 4] % 5;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const kv_cvm_profile *p;
    kv_cvm_txn t;
    kv_cvm_result res;
    kv_cvm_list list;
    cardholder ch;
    uint8_t tvr[5] = {0}, tsi[2] = {0};
    int r;

    if (size < HDR)
        return 0;
    (void)kv_cvm_list_parse(data + HDR, size - HDR, &list);

    p = kv_cvm_profile_at(data[0] % 3);
    memset(&t, 0, sizeof(t));
    t.txn_type = data[1];
    t.aip[0] = (data[2] & 0x01) ? 0x40 : 0x5C;
    t.amount = (uint64_t)data[3] << 24 | (uint64_t)data[4] << 16 | (uint64_t)data[5] << 8 | data[6];
    t.amount_other = (uint64_t)data[7] << 8 | data[8];
    t.app_currency = (data[2] & 0x02) ? -1 : kv_cvm_currency_value(data + 9, 2);
    t.currency = 208;
    t.terminal_type = p->terminal_type;
    memcpy(t.capabilities, p->capabilities, 3);
    if (!(data[2] & 0x04)) {
        t.cvm_list = data + HDR;
        t.cvm_list_len = size - HDR;
    }
    ch.outcomes = data + 11;
    ch.i = 0;

    r = kv_cvm_process(&t, (data[2] & 0x08) ? NULL : perform, &ch, tvr, tsi, &res);
    if (r != 0 && r != KV_ERR_CVM_LIST)
        abort();
    if (tvr[0] != 0 || tvr[1] != 0 || tvr[3] != 0 || tvr[4] != 0 || (tvr[2] & 0x03) != 0 ||
        tsi[1] != 0 || (tsi[0] & ~0x40) != 0)
        abort();
    if (res.results[2] > KV_CVM_RESULT_SUCCESSFUL)
        abort();
    if (res.processed && !res.successful && !kv_tvr_isset(tvr, KV_TVR_CV_NOT_SUCCESSFUL))
        abort();
    if (res.successful && kv_tvr_isset(tvr, KV_TVR_CV_NOT_SUCCESSFUL))
        abort();
    if (res.processed != kv_tsi_isset(tsi, KV_TSI_CV_PERFORMED))
        abort();
    return 0;
}

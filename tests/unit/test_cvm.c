/*
 * CVM list processing (apdu/cvm.h): rows of (CVM list, amount, currencies,
 * transaction type, terminal profile, what the cardholder/card do) ->
 * (CVM Results 9F34, TVR byte 3, TSI, which CVMs were performed).
 *
 * Expected values are worked out by hand from EMV Book 3 §10.5 and Annex C3
 * and Book 4 Annex A (CVM Results), as cvm.h summarises them. Three lists
 * are the real ones of the recorded test cards in tests/data/traces/cards.
 *
 * Profiles: pos 9F33 byte 2 B8 (plaintext PIN, signature, enciphered offline
 * PIN, no CVM), attended (22); atm 40 (online PIN only), unattended (14);
 * unattended 08 (no CVM only), unattended (25).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "apdu/cvm.h"
#include "apdu/tvr.h"
#include "src/base/err.h"
#include "src/base/hex.h"

/* A cardholder and card that behave as scripted: one letter per callback. */
typedef struct {
    const char *outcomes; /* O ok, F failed, L try limit, P PIN pad fault, B bypassed */
    size_t next;
    uint8_t calls[16];
    size_t ncalls;
    int overrun;
    int err; /* returned by every callback when non-zero */
} script;

static int perform(void *arg, uint8_t method, uint8_t condition, int *outcome)
{
    script *s = arg;
    char c;

    (void)condition;
    if (s->ncalls < sizeof(s->calls))
        s->calls[s->ncalls++] = method;
    if (s->err != 0)
        return s->err;
    c = s->outcomes[s->next];
    if (c == '\0') {
        s->overrun = 1;
        *outcome = KV_CVM_OUT_FAILED;
        return 0;
    }
    s->next++;
    switch (c) {
    case 'O':
        *outcome = KV_CVM_OUT_OK;
        break;
    case 'L':
        *outcome = KV_CVM_OUT_PIN_TRY_LIMIT;
        break;
    case 'P':
        *outcome = KV_CVM_OUT_PIN_PAD_FAULT;
        break;
    case 'B':
        *outcome = KV_CVM_OUT_PIN_BYPASSED;
        break;
    default:
        *outcome = KV_CVM_OUT_FAILED;
        break;
    }
    return 0;
}

static void hex_of(const uint8_t *p, size_t n, char *out)
{
    size_t i;

    out[0] = '\0';
    for (i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02X", p[i]);
}

struct cvm_row {
    const char *name;
    const char *list; /* 8E value; NULL: absent */
    const char *profile;
    uint64_t amount, other;
    int app_cur; /* 0: same as the transaction's (208), -1 absent, else the code */
    uint8_t type;
    int no_cv;            /* AIP without "cardholder verification supported" */
    const char *outcomes; /* script */
    const char *results;  /* 9F34 */
    uint8_t tvr3;
    int tsi;
    const char *calls; /* CVM codes called back, in order */
    int want;          /* return of kv_cvm_process */
};

#define Z "0000000000000000"
#define XY "000003E800001388" /* X = 1000, Y = 5000 */
#define CASH 1
#define CASHBACK 9

static const struct cvm_row rows[] = {
    /* each method against each profile, condition 00 (always) */
    {"pos fail CVM", Z "0000", "pos", 1000, 0, 0, 0, 0, "", "000001", 0x80, 1, "", 0},
    {"pos plaintext PIN", Z "0100", "pos", 1000, 0, 0, 0, 0, "O", "010002", 0x00, 1, "01", 0},
    {"pos online PIN unsupported", Z "0200", "pos", 1000, 0, 0, 0, 0, "", "3F0001", 0x90, 1, "", 0},
    {"pos plaintext PIN and signature", Z "0300", "pos", 1000, 0, 0, 0, 0, "O", "030000", 0x00, 1,
     "03", 0},
    {"pos enciphered PIN", Z "0400", "pos", 1000, 0, 0, 0, 0, "O", "040002", 0x00, 1, "04", 0},
    {"pos enciphered PIN and signature", Z "0500", "pos", 1000, 0, 0, 0, 0, "O", "050000", 0x00, 1,
     "05", 0},
    {"pos signature", Z "1E00", "pos", 1000, 0, 0, 0, 0, "O", "1E0000", 0x00, 1, "1E", 0},
    {"pos no CVM", Z "1F00", "pos", 1000, 0, 0, 0, 0, "", "1F0002", 0x00, 1, "", 0},
    {"pos RFU method 06", Z "0600", "pos", 1000, 0, 0, 0, 0, "", "3F0001", 0xC0, 1, "", 0},
    {"pos payment-system method 20", Z "2000", "pos", 1000, 0, 0, 0, 0, "", "3F0001", 0xC0, 1, "",
     0},
    {"pos method 3F", Z "3F00", "pos", 1000, 0, 0, 0, 0, "", "3F0001", 0xC0, 1, "", 0},
    {"atm fail CVM", Z "0000", "atm", 1000, 0, 0, CASH, 0, "", "000001", 0x80, 1, "", 0},
    {"atm plaintext PIN unsupported", Z "0100", "atm", 1000, 0, 0, CASH, 0, "", "3F0001", 0x90, 1,
     "", 0},
    {"atm online PIN", Z "0200", "atm", 1000, 0, 0, CASH, 0, "O", "020000", 0x04, 1, "02", 0},
    {"atm plaintext PIN and signature", Z "0300", "atm", 1000, 0, 0, CASH, 0, "", "3F0001", 0x90, 1,
     "", 0},
    {"atm enciphered PIN unsupported", Z "0400", "atm", 1000, 0, 0, CASH, 0, "", "3F0001", 0x90, 1,
     "", 0},
    {"atm enciphered PIN and signature", Z "0500", "atm", 1000, 0, 0, CASH, 0, "", "3F0001", 0x90,
     1, "", 0},
    {"atm signature unsupported", Z "1E00", "atm", 1000, 0, 0, CASH, 0, "", "3F0001", 0x80, 1, "",
     0},
    {"atm no CVM unsupported", Z "1F00", "atm", 1000, 0, 0, CASH, 0, "", "3F0001", 0x80, 1, "", 0},
    {"atm RFU method 06", Z "0600", "atm", 1000, 0, 0, CASH, 0, "", "3F0001", 0xC0, 1, "", 0},
    {"unattended fail CVM", Z "0000", "unattended", 1000, 0, 0, 0, 0, "", "000001", 0x80, 1, "", 0},
    {"unattended plaintext PIN", Z "0100", "unattended", 1000, 0, 0, 0, 0, "", "3F0001", 0x90, 1,
     "", 0},
    {"unattended online PIN", Z "0200", "unattended", 1000, 0, 0, 0, 0, "", "3F0001", 0x90, 1, "",
     0},
    {"unattended PIN and signature", Z "0300", "unattended", 1000, 0, 0, 0, 0, "", "3F0001", 0x90,
     1, "", 0},
    {"unattended enciphered PIN", Z "0400", "unattended", 1000, 0, 0, 0, 0, "", "3F0001", 0x90, 1,
     "", 0},
    {"unattended enc. PIN and signature", Z "0500", "unattended", 1000, 0, 0, 0, 0, "", "3F0001",
     0x90, 1, "", 0},
    {"unattended signature", Z "1E00", "unattended", 1000, 0, 0, 0, 0, "", "3F0001", 0x80, 1, "",
     0},
    {"unattended no CVM", Z "1F00", "unattended", 1000, 0, 0, 0, 0, "", "1F0002", 0x00, 1, "", 0},
    {"unattended RFU method 06", Z "0600", "unattended", 1000, 0, 0, 0, 0, "", "3F0001", 0xC0, 1,
     "", 0},

    /* each condition against each profile: pos tries plaintext PIN, atm online PIN, unattended no
       CVM */
    {"00 pos", Z "0100", "pos", 1000, 0, 0, 0, 0, "O", "010002", 0x00, 1, "01", 0},
    {"00 atm", Z "0200", "atm", 1000, 0, 0, 0, 0, "O", "020000", 0x04, 1, "02", 0},
    {"00 unattended", Z "1F00", "unattended", 1000, 0, 0, 0, 0, "", "1F0002", 0x00, 1, "", 0},
    {"01 pos cash (attended)", Z "0101", "pos", 1000, 0, 0, CASH, 0, "", "3F0001", 0x80, 1, "", 0},
    {"01 atm cash", Z "0201", "atm", 1000, 0, 0, CASH, 0, "O", "020100", 0x04, 1, "02", 0},
    {"01 atm purchase", Z "0201", "atm", 1000, 0, 0, 0, 0, "", "3F0001", 0x80, 1, "", 0},
    {"01 unattended cash", Z "1F01", "unattended", 1000, 0, 0, CASH, 0, "", "1F0102", 0x00, 1, "",
     0},
    {"02 pos purchase", Z "0102", "pos", 1000, 0, 0, 0, 0, "O", "010202", 0x00, 1, "01", 0},
    {"02 atm purchase", Z "0202", "atm", 1000, 0, 0, 0, 0, "O", "020200", 0x04, 1, "02", 0},
    {"02 unattended purchase", Z "1F02", "unattended", 1000, 0, 0, 0, 0, "", "1F0202", 0x00, 1, "",
     0},
    {"02 pos cash", Z "0102", "pos", 1000, 0, 0, CASH, 0, "", "3F0001", 0x80, 1, "", 0},
    {"02 atm cash", Z "0202", "atm", 1000, 0, 0, CASH, 0, "", "3F0001", 0x80, 1, "", 0},
    {"02 unattended cash", Z "1F02", "unattended", 1000, 0, 0, CASH, 0, "", "3F0001", 0x80, 1, "",
     0},
    {"02 pos cashback", Z "0102", "pos", 1000, 0, 0, CASHBACK, 0, "", "3F0001", 0x80, 1, "", 0},
    {"02 pos amount other", Z "0102", "pos", 1000, 500, 0, 0, 0, "", "3F0001", 0x80, 1, "", 0},
    {"03 pos plaintext PIN", Z "0103", "pos", 1000, 0, 0, 0, 0, "O", "010302", 0x00, 1, "01", 0},
    {"03 atm online PIN", Z "0203", "atm", 1000, 0, 0, 0, 0, "O", "020300", 0x04, 1, "02", 0},
    {"03 unattended no CVM", Z "1F03", "unattended", 1000, 0, 0, 0, 0, "", "1F0302", 0x00, 1, "",
     0},
    {"03 pos online PIN: skipped", Z "0203", "pos", 1000, 0, 0, 0, 0, "", "3F0001", 0x80, 1, "", 0},
    {"03 atm plaintext PIN: skipped", Z "0103", "atm", 1000, 0, 0, 0, 0, "", "3F0001", 0x80, 1, "",
     0},
    {"03 unattended signature: skipped", Z "1E03", "unattended", 1000, 0, 0, 0, 0, "", "3F0001",
     0x80, 1, "", 0},
    {"04 pos cash", Z "0104", "pos", 1000, 0, 0, CASH, 0, "O", "010402", 0x00, 1, "01", 0},
    {"04 pos purchase", Z "0104", "pos", 1000, 0, 0, 0, 0, "", "3F0001", 0x80, 1, "", 0},
    {"04 atm cash", Z "0204", "atm", 1000, 0, 0, CASH, 0, "", "3F0001", 0x80, 1, "", 0},
    {"04 unattended cash", Z "1F04", "unattended", 1000, 0, 0, CASH, 0, "", "3F0001", 0x80, 1, "",
     0},
    {"05 pos cashback", Z "0105", "pos", 1000, 0, 0, CASHBACK, 0, "O", "010502", 0x00, 1, "01", 0},
    {"05 pos amount other", Z "0105", "pos", 1000, 500, 0, 0, 0, "O", "010502", 0x00, 1, "01", 0},
    {"05 pos purchase", Z "0105", "pos", 1000, 0, 0, 0, 0, "", "3F0001", 0x80, 1, "", 0},
    {"05 atm cashback", Z "0205", "atm", 1000, 0, 0, CASHBACK, 0, "O", "020500", 0x04, 1, "02", 0},
    {"05 unattended cashback", Z "1F05", "unattended", 1000, 0, 0, CASHBACK, 0, "", "1F0502", 0x00,
     1, "", 0},
    {"06 pos under X", XY "0106", "pos", 999, 0, 0, 0, 0, "O", "010602", 0x00, 1, "01", 0},
    {"06 pos at X", XY "0106", "pos", 1000, 0, 0, 0, 0, "", "3F0001", 0x80, 1, "", 0},
    {"06 pos other currency", XY "0106", "pos", 999, 0, 978, 0, 0, "", "3F0001", 0x80, 1, "", 0},
    {"06 pos no 9F42", XY "0106", "pos", 999, 0, -1, 0, 0, "", "3F0001", 0x80, 1, "", 0},
    {"06 atm under X", XY "0206", "atm", 999, 0, 0, CASH, 0, "O", "020600", 0x04, 1, "02", 0},
    {"06 unattended under X", XY "1F06", "unattended", 999, 0, 0, 0, 0, "", "1F0602", 0x00, 1, "",
     0},
    {"07 atm over X", XY "0207", "atm", 1001, 0, 0, CASH, 0, "O", "020700", 0x04, 1, "02", 0},
    {"07 atm at X", XY "0207", "atm", 1000, 0, 0, CASH, 0, "", "3F0001", 0x80, 1, "", 0},
    {"07 pos over X", XY "0107", "pos", 1001, 0, 0, 0, 0, "O", "010702", 0x00, 1, "01", 0},
    {"07 unattended over X", XY "1F07", "unattended", 1001, 0, 0, 0, 0, "", "1F0702", 0x00, 1, "",
     0},
    {"08 unattended under Y", XY "1F08", "unattended", 4999, 0, 0, 0, 0, "", "1F0802", 0x00, 1, "",
     0},
    {"08 unattended at Y", XY "1F08", "unattended", 5000, 0, 0, 0, 0, "", "3F0001", 0x80, 1, "", 0},
    {"08 pos under Y", XY "0108", "pos", 4999, 0, 0, 0, 0, "O", "010802", 0x00, 1, "01", 0},
    {"08 atm under Y", XY "0208", "atm", 4999, 0, 0, CASH, 0, "O", "020800", 0x04, 1, "02", 0},
    {"09 pos over Y", XY "0109", "pos", 5001, 0, 0, 0, 0, "O", "010902", 0x00, 1, "01", 0},
    {"09 pos at Y", XY "0109", "pos", 5000, 0, 0, 0, 0, "", "3F0001", 0x80, 1, "", 0},
    {"09 atm over Y", XY "0209", "atm", 5001, 0, 0, CASH, 0, "O", "020900", 0x04, 1, "02", 0},
    {"09 unattended over Y", XY "1F09", "unattended", 5001, 0, 0, 0, 0, "", "1F0902", 0x00, 1, "",
     0},
    {"0A RFU condition pos", Z "010A1F00", "pos", 1000, 0, 0, 0, 0, "", "1F0002", 0x00, 1, "", 0},
    {"0A RFU condition atm", Z "020A", "atm", 1000, 0, 0, CASH, 0, "", "3F0001", 0x80, 1, "", 0},
    {"0A RFU condition unattended", Z "1F0A", "unattended", 1000, 0, 0, 0, 0, "", "3F0001", 0x80, 1,
     "", 0},
    {"80 payment-system condition", Z "01801F00", "pos", 1000, 0, 0, 0, 0, "", "1F0002", 0x00, 1,
     "", 0},
    {"FF payment-system condition", Z "01FF", "pos", 1000, 0, 0, 0, 0, "", "3F0001", 0x80, 1, "",
     0},

    /* what the cardholder and the card do */
    {"bit 7 kept in results", Z "4100", "pos", 1000, 0, 0, 0, 0, "O", "410002", 0x00, 1, "01", 0},
    {"wrong PIN, then signature", Z "41001E00", "pos", 1000, 0, 0, 0, 0, "FO", "1E0000", 0x00, 1,
     "011E", 0},
    {"wrong PIN, no fallback", Z "0100", "pos", 1000, 0, 0, 0, 0, "F", "010001", 0x80, 1, "01", 0},
    {"two wrong PINs, list ends", Z "41004400", "pos", 1000, 0, 0, 0, 0, "FF", "440001", 0x80, 1,
     "0104", 0},
    {"try limit, then signature", Z "41001E00", "pos", 1000, 0, 0, 0, 0, "LO", "1E0000", 0x20, 1,
     "011E", 0},
    {"try limit, no fallback", Z "0100", "pos", 1000, 0, 0, 0, 0, "L", "010001", 0xA0, 1, "01", 0},
    {"try limit skips enciphered PIN", Z "410044001F00", "pos", 1000, 0, 0, 0, 0, "L", "1F0002",
     0x20, 1, "01", 0},
    {"try limit fails enciphered PIN unasked", Z "41000400", "pos", 1000, 0, 0, 0, 0, "L", "040001",
     0xA0, 1, "01", 0},
    {"PIN pad fault, then no CVM", Z "41001F00", "pos", 1000, 0, 0, 0, 0, "P", "1F0002", 0x10, 1,
     "01", 0},
    {"PIN pad fault, no fallback", Z "0100", "pos", 1000, 0, 0, 0, 0, "P", "010001", 0x90, 1, "01",
     0},
    {"PIN bypassed, later PIN too, signature", Z "410044001E00", "pos", 1000, 0, 0, 0, 0, "BO",
     "1E0000", 0x08, 1, "011E", 0},
    {"PIN bypassed, no fallback", Z "0400", "pos", 1000, 0, 0, 0, 0, "B", "040001", 0x88, 1, "04",
     0},
    {"online PIN pad fault", Z "4200", "atm", 1000, 0, 0, CASH, 0, "P", "420001", 0x90, 1, "02", 0},
    {"online PIN bypassed, fallback unsupported", Z "42001E00", "atm", 1000, 0, 0, CASH, 0, "B",
     "420001", 0x88, 1, "02", 0},
    {"signature refused", Z "1E00", "pos", 1000, 0, 0, 0, 0, "F", "1E0001", 0x80, 1, "1E", 0},
    {"fail CVM with bit 7, then no CVM", Z "40001F00", "pos", 1000, 0, 0, 0, 0, "", "1F0002", 0x00,
     1, "", 0},
    {"unrecognised with bit 7, then no CVM", Z "46001F00", "pos", 1000, 0, 0, 0, 0, "", "1F0002",
     0x40, 1, "", 0},
    {"unrecognised under condition 03 is skipped", Z "46031F00", "pos", 1000, 0, 0, 0, 0, "",
     "1F0002", 0x00, 1, "", 0},
    {"online PIN unsupported with bit 7", Z "42001F00", "pos", 1000, 0, 0, 0, 0, "", "1F0002", 0x10,
     1, "", 0},
    {"enciphered PIN and signature, bit 7", Z "4500", "pos", 1000, 0, 0, 0, 0, "O", "450000", 0x00,
     1, "05", 0},
    {"wrong PIN, unsupported rule ends it", Z "41000200", "pos", 1000, 0, 0, 0, 0, "F", "410001",
     0x90, 1, "01", 0},

    /* the recorded test cards' lists */
    {"Visa test card, pos", Z "410342031E031F02", "pos", 1000, 0, 0, 0, 0, "O", "410302", 0x00, 1,
     "01", 0},
    {"Visa test card, pos, wrong PIN", Z "410342031E031F02", "pos", 1000, 0, 0, 0, 0, "FO",
     "1E0300", 0x00, 1, "011E", 0},
    {"Visa test card, atm cash", Z "410342031E031F02", "atm", 1000, 0, 0, CASH, 0, "O", "420300",
     0x04, 1, "02", 0},
    {"Visa test card, unattended", Z "410342031E031F02", "unattended", 1000, 0, 0, 0, 0, "",
     "1F0202", 0x00, 1, "", 0},
    {"Visa test card, unattended cash", Z "410342031E031F02", "unattended", 1000, 0, 0, CASH, 0, "",
     "3F0001", 0x80, 1, "", 0},
    {"Mastercard test card, pos", Z "5E031F03", "pos", 1000, 0, 0, 0, 0, "O", "5E0300", 0x00, 1,
     "1E", 0},
    {"Mastercard test card, atm", Z "5E031F03", "atm", 1000, 0, 0, CASH, 0, "", "3F0001", 0x80, 1,
     "", 0},
    {"Mastercard test card, unattended", Z "5E031F03", "unattended", 1000, 0, 0, 0, 0, "", "1F0302",
     0x00, 1, "", 0},
    {"UnionPay test card, atm", Z "5E0342031F00", "atm", 1000, 0, 0, CASH, 0, "O", "420300", 0x04,
     1, "02", 0},
    {"UnionPay test card, pos", Z "5E0342031F00", "pos", 1000, 0, 0, 0, 0, "O", "5E0300", 0x00, 1,
     "1E", 0},

    /* nothing to process */
    {"AIP without CV", Z "0100", "pos", 1000, 0, 0, 0, 1, "", "3F0000", 0x00, 0, "", 0},
    {"no 8E", NULL, "pos", 1000, 0, 0, 0, 0, "", "3F0000", 0x00, 0, "", 0},
    {"8E with amounts only", Z, "pos", 1000, 0, 0, 0, 0, "", "3F0000", 0x00, 0, "", 0},
    {"8E of 7 bytes", "00000000000000", "pos", 1000, 0, 0, 0, 0, "", "3F0000", 0x00, 0, "",
     KV_ERR_CVM_LIST},
    {"8E with a cut rule", Z "01001F", "pos", 1000, 0, 0, 0, 0, "", "3F0000", 0x00, 0, "",
     KV_ERR_CVM_LIST},
    {"8E of 9 bytes", Z "01", "pos", 1000, 0, 0, 0, 0, "", "3F0000", 0x00, 0, "", KV_ERR_CVM_LIST},
};

static void test_cvm_table(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const struct cvm_row *w = &rows[i];
        const kv_cvm_profile *p = kv_cvm_profile_find(w->profile);
        uint8_t list[300], tvr[5] = {0}, tsi[2] = {0};
        char got_results[8], got_calls[40], want_tvr[12], got_tvr[12];
        script s;
        kv_cvm_txn t;
        kv_cvm_result res;
        int r, n;

        assert_non_null(p);
        memset(&s, 0, sizeof(s));
        s.outcomes = w->outcomes;
        memset(&t, 0, sizeof(t));
        if (w->list != NULL) {
            n = kv_hex_decode(w->list, list, sizeof(list));
            assert_true(n >= 0);
            t.cvm_list = list;
            t.cvm_list_len = (size_t)n;
        }
        t.aip[0] = w->no_cv ? 0x48 : 0x58;
        t.app_currency = w->app_cur == 0 ? 208 : w->app_cur;
        t.currency = 208;
        t.amount = w->amount;
        t.amount_other = w->other;
        t.txn_type = w->type;
        t.terminal_type = p->terminal_type;
        memcpy(t.capabilities, p->capabilities, 3);

        r = kv_cvm_process(&t, perform, &s, tvr, tsi, &res);
        hex_of(res.results, 3, got_results);
        hex_of(s.calls, s.ncalls, got_calls);
        hex_of(tvr, 5, got_tvr);
        snprintf(want_tvr, sizeof(want_tvr), "0000%02X0000", w->tvr3);
        if (r != w->want || strcmp(got_results, w->results) != 0 ||
            strcmp(got_tvr, want_tvr) != 0 || kv_tsi_isset(tsi, KV_TSI_CV_PERFORMED) != w->tsi ||
            tsi[1] != 0 || (tsi[0] & ~0x40) != 0 || strcmp(got_calls, w->calls) != 0 || s.overrun ||
            s.next != strlen(w->outcomes))
            fail_msg("%s:\n  got  return %d 9F34 %s TVR %s TSI %02X%02X calls [%s]%s\n"
                     "  want return %d 9F34 %s TVR %s TSI %s calls [%s]",
                     w->name, r, got_results, got_tvr, tsi[0], tsi[1], got_calls,
                     s.overrun ? " (more callbacks than scripted)" : "", w->want, w->results,
                     want_tvr, w->tsi ? "4000" : "0000", w->calls);
        /* the result summary agrees with 9F34 */
        assert_int_equal(res.method, res.results[0] & 0x3F);
        assert_int_equal(res.processed, w->tsi);
        assert_int_equal(res.successful,
                         w->tsi && res.results[2] != KV_CVM_RESULT_FAILED && w->want == 0);
        assert_int_equal(res.callbacks, (int)s.ncalls);
        if (res.successful)
            assert_int_equal(res.online_pin, res.method == KV_CVM_ONLINE_PIN);
    }
}

static void test_cvm_callback_error(void **state)
{
    uint8_t list[16], tvr[5] = {0}, tsi[2] = {0};
    const kv_cvm_profile *p = kv_cvm_profile_find("pos");
    script s;
    kv_cvm_txn t;
    kv_cvm_result res;

    (void)state;
    memset(&s, 0, sizeof(s));
    s.outcomes = "";
    s.err = KV_ERR_PCSC_REMOVED;
    memset(&t, 0, sizeof(t));
    t.cvm_list = list;
    t.cvm_list_len = (size_t)kv_hex_decode(Z "41001F00", list, sizeof(list));
    t.aip[0] = 0x10;
    memcpy(t.capabilities, p->capabilities, 3);
    t.terminal_type = p->terminal_type;
    assert_int_equal(kv_cvm_process(&t, perform, &s, tvr, tsi, &res), KV_ERR_PCSC_REMOVED);
    assert_int_equal(s.ncalls, 1);

    /* without a callback every PIN CVM fails: then no CVM */
    memset(tvr, 0, sizeof(tvr));
    assert_int_equal(kv_cvm_process(&t, NULL, NULL, tvr, tsi, &res), 0);
    assert_memory_equal(res.results, "\x1F\x00\x02", 3);
    assert_int_equal(res.rule, 1);
}

static void test_cvm_parse(void **state)
{
    uint8_t buf[8 + 2 * (KV_CVM_RULES_MAX + 1)];
    kv_cvm_list l;

    (void)state;
    memset(buf, 0, sizeof(buf));
    buf[3] = 0x64; /* X = 100 */
    buf[6] = 0x01; /* Y = 256 */
    buf[8] = 0x5E;
    buf[9] = 0x03;
    assert_int_equal(kv_cvm_list_parse(buf, 10, &l), 0);
    assert_int_equal(l.x, 100);
    assert_int_equal(l.y, 256);
    assert_int_equal(l.nrules, 1);
    assert_int_equal(l.rules[0].code, 0x5E);
    assert_int_equal(l.rules[0].condition, 0x03);
    assert_int_equal(kv_cvm_list_parse(buf, 8 + 2 * KV_CVM_RULES_MAX, &l), 0);
    assert_int_equal(l.nrules, KV_CVM_RULES_MAX);
    assert_int_equal(kv_cvm_list_parse(buf, sizeof(buf), &l), KV_ERR_CVM_LIST);
    assert_int_equal(kv_cvm_list_parse(NULL, 0, &l), KV_ERR_CVM_LIST);
    assert_int_equal(l.nrules, 0);
}

static void test_cvm_helpers(void **state)
{
    static const struct {
        const char *hex;
        int want;
    } cur[] = {{"0208", 208}, {"0978", 978}, {"0840", 840}, {"0A08", -1}, {"020", -1}};
    uint8_t b[4];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cur) / sizeof(cur[0]); i++) {
        int n = kv_hex_decode(cur[i].hex, b, sizeof(b));

        assert_int_equal(kv_cvm_currency_value(n < 0 ? NULL : b, n < 0 ? 0 : (size_t)n),
                         cur[i].want);
    }
    assert_null(kv_cvm_profile_find("kiosk"));
    assert_memory_equal(kv_cvm_profile_find("pos")->capabilities, "\xE0\xB8\xC8", 3);
    assert_memory_equal(kv_cvm_profile_find("atm")->capabilities, "\x60\x40\xE8", 3);
    assert_memory_equal(kv_cvm_profile_find("unattended")->capabilities, "\x60\x08\xC8", 3);
    assert_non_null(kv_cvm_profile_at(2));
    assert_null(kv_cvm_profile_at(3));
    assert_string_equal(kv_cvm_method_id(0x02), "online_pin");
    assert_string_equal(kv_cvm_method_id(0x3F), "none");
    assert_string_equal(kv_cvm_condition_name(0x0B), "RFU");
    assert_string_equal(kv_tvr_bit_name(KV_TVR_PIN_TRY_LIMIT), "PIN Try Limit exceeded");
    assert_null(kv_tvr_bit_name(KV_TVR_BIT(3, 0x01)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cvm_table),
        cmocka_unit_test(test_cvm_callback_error),
        cmocka_unit_test(test_cvm_parse),
        cmocka_unit_test(test_cvm_helpers),
    };

    return cmocka_run_group_tests_name("cvm", tests, NULL, NULL);
}

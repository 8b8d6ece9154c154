/*
 * Table test of the status-word table (apdu/apdu.h kv_sw_text, kv_sw_to_err):
 * meanings per ISO/IEC 7816-4 §5.6 and EMV Book 3 Annex A / Book 1 §9.4, and
 * the KV_ERR_* code each maps to, including the 61xx, 6Cxx and 63Cx families.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "apdu/apdu.h"
#include "src/base/err.h"

struct sw_row {
    uint16_t sw;
    int err;
    const char *text_has; /* a phrase the meaning must contain */
};

static const struct sw_row rows[] = {
    {0x9000, 0, "normal"},
    {0x6110, 0, "more data"},
    {0x6100, 0, "GET RESPONSE"},
    {0x6C08, KV_ERR_CARD_LENGTH, "wrong Le"},
    {0x63C3, KV_ERR_CARD_VERIFY, "tries left"},
    {0x63C0, KV_ERR_CARD_VERIFY, "verification failed"},
    {0x6300, KV_ERR_CARD_VERIFY, "authentication failed"},
    {0x6283, KV_ERR_CARD_BLOCKED, "invalidated"},
    {0x6700, KV_ERR_CARD_LENGTH, "wrong length"},
    {0x6981, KV_ERR_CARD_SW, "incompatible with file structure"},
    {0x6982, KV_ERR_CARD_SECURITY, "security status"},
    {0x6983, KV_ERR_PIN_BLOCKED, "blocked"},
    {0x6984, KV_ERR_CARD_SECURITY, "invalidated"},
    {0x6985, KV_ERR_CONDITIONS, "conditions of use"},
    {0x6986, KV_ERR_CARD_SW, "not allowed"},
    {0x6A80, KV_ERR_CARD_PARAM, "data field"},
    {0x6A81, KV_ERR_CARD_BLOCKED, "function not supported"},
    {0x6A82, KV_ERR_CARD_NOT_FOUND, "not found"},
    {0x6A83, KV_ERR_CARD_RECORD, "record not found"},
    {0x6A86, KV_ERR_CARD_PARAM, "P1 P2"},
    {0x6A88, KV_ERR_CARD_NO_DATA, "referenced data not found"},
    {0x6B00, KV_ERR_CARD_PARAM, "P1 P2"},
    {0x6D00, KV_ERR_CARD_INS, "instruction"},
    {0x6E00, KV_ERR_CARD_INS, "class"},
    {0x6F00, KV_ERR_CARD_SW, "no precise diagnosis"},
    {0x6581, KV_ERR_CARD_SW, "memory failure"},
    {0x9876, KV_ERR_CARD_SW, "unknown"},
    {0x0000, KV_ERR_CARD_SW, "unknown"},
};

static void test_sw_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const char *text = kv_sw_text(rows[i].sw);
        int err = kv_sw_to_err(rows[i].sw);
        if (text == NULL || strstr(text, rows[i].text_has) == NULL) {
            print_error("SW %04X: text \"%s\", want it to contain \"%s\"\n", rows[i].sw,
                        text ? text : "(null)", rows[i].text_has);
            fail();
        }
        if (err != rows[i].err) {
            print_error("SW %04X: err %d (%s), want %d (%s)\n", rows[i].sw, err, kv_strerror(err),
                        rows[i].err, kv_strerror(rows[i].err));
            fail();
        }
    }
}

/* Every card-status code has its own text (err.c table), and maps to exit code 4. */
static void test_sw_errors_have_text(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        if (rows[i].err == 0)
            continue;
        if (strcmp(kv_strerror(rows[i].err), "unknown error") == 0) {
            print_error("SW %04X: code %d has no text\n", rows[i].sw, rows[i].err);
            fail();
        }
        assert_int_equal(kv_exit_code(rows[i].err), KV_EXIT_CARD);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sw_table),
        cmocka_unit_test(test_sw_errors_have_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Fuzz target for the pure parsers and builders of the payment crypto
 * (hsm/pin.h, hsm/cvv.h, hsm/emv_crypto.h, hsm/mac.h): decrypted PIN blocks
 * and PIN fields as hostile bytes, PAN/PSN/expiry/validation-data text as
 * hostile strings. Byte 0 selects the function; the rest is its input, with
 * strings separated by '|'. Every call must return a code, never crash, and
 * a parsed PIN must satisfy its own contract.
 */
#include "hsm/cvv.h"
#include "hsm/emv_crypto.h"
#include "hsm/mac.h"
#include "hsm/pin.h"
#include "src/base/err.h"

#include <stdlib.h>
#include <string.h>

#define FIELDS 4

/* Split data into up to FIELDS NUL-terminated strings in buf (separator '|'). */
static void split(const uint8_t *data, size_t size, char *buf, const char *f[FIELDS])
{
    size_t k = 0;

    memcpy(buf, data, size);
    buf[size] = '\0';
    for (int i = 0; i < FIELDS; i++)
        f[i] = "";
    f[0] = buf;
    for (size_t i = 0; i < size && k + 1 < FIELDS; i++)
        if (buf[i] == '|') {
            buf[i] = '\0';
            f[++k] = buf + i + 1;
        }
}

static void check_pin(int rc, const char *pin, size_t n)
{
    if (rc != 0)
        return;
    if (n < KV_PIN_MIN || n > KV_PIN_MAX || strlen(pin) != n || kv_pin_check(pin, n) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int formats[] = {0, 1, 3, 4, 2, -1};
    char *buf, pin[KV_PIN_MAX + 1], out[40];
    const char *f[FIELDS];
    uint8_t b[64];
    size_t n = 0;
    int sel, fmt;

    if (size < 1 || size > 4096)
        return 0;
    sel = data[0];
    fmt = formats[(sel >> 4) % 6];
    data++;
    size--;
    if ((buf = malloc(size + 1)) == NULL)
        return 0;
    split(data, size, buf, f);

    switch (sel & 0x0F) {
    case 0: /* a decrypted PIN field */
        if (size >= 16) {
            int rc = kv_pin_field_parse(fmt, data, pin, &n);
            check_pin(rc, pin, n);
        }
        break;
    case 1: /* a decrypted format 0/1/3 block with a PAN */
        if (size >= 8) {
            memcpy(b, data, 8);
            split(data + 8, size - 8, buf, f);
            int rc = kv_pinblock_clear_parse(fmt, b, f[0], pin, &n);
            check_pin(rc, pin, n);
        }
        break;
    case 2: /* PIN field and PAN field building, then parsing back */
        n = strlen(f[0]);
        if (kv_pin_field_build(fmt, f[0], n,
                               (const uint8_t *)"\x0a\x0b\x0c\x0d\x0e\x0f\x0a\x0b"
                                                "\x0c\x0d\x0e\x0f\x0a\x0b",
                               b) == 0) {
            size_t m = 0;
            if (kv_pin_field_parse(fmt, b, pin, &m) != 0 || m != n || memcmp(pin, f[0], n) != 0)
                abort();
        }
        kv_pan_field_build(fmt, f[1], b);
        break;
    case 3:
        kv_cvv_build_block(f[0], f[1], f[2], b);
        break;
    case 4: {
        uint8_t y[8];
        kv_emv_mk_input((sel & 0x10) ? KV_EMV_MK_OPTION_B : KV_EMV_MK_OPTION_A, f[0],
                        f[1][0] ? f[1] : NULL, y);
        break;
    }
    case 5:
        kv_ibm3624_validation_block(f[0], f[1][0], b);
        break;
    case 6:
        kv_pvv_tsp(f[0], f[1][0] - '0', f[2], strlen(f[2]), b);
        break;
    case 7:
        if (size <= 32) {
            kv_decimalise_visa(data, size, (size_t)(sel >> 4), out);
            kv_decimalise_table(data, size, f[0], (size_t)(sel >> 4), out);
        }
        break;
    case 8: {
        uint8_t *p = malloc(size + 16);
        if (p != NULL) {
            int r = kv_mac_pad((sel >> 4) & 3, data, size, p, size + 16);
            if (r > 0 && ((size_t)r % 8 != 0 || (size_t)r < size))
                abort();
            free(p);
        }
        break;
    }
    default: {
        uint8_t d[16], c[16], r[8];
        if (size >= 8) {
            kv_emv_csk_derivation_data(data, d, c);
            kv_emv_mk_derivation_data(data, d, c);
            if (size >= 14)
                kv_emv_session_r((sel >> 4) % 3, data, data + 2, r);
            kv_emv_arpc2_input(data, data, data, size > 16 ? 16 : size - 8, b);
        }
        break;
    }
    }
    free(buf);
    return 0;
}

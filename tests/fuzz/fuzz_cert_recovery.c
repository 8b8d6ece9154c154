/*
 * Fuzz target: certificate recovery and the ODA signature checks
 * (apdu/oda.h). The input is a certificate with its remainder and exponent,
 * checked against a fixed CA key: the kortvagt lab test CA (capk.json,
 * A000000003 index E1; its private key signs the corpus).
 *
 * Input: mode (1 byte), remainder length (1), exponent length (1, mod 4),
 * remainder, exponent, then the rest ("body"). Modes (mode % 4):
 *   0  body is an issuer public key certificate: RSA recovery with the CA key
 *   1  body is already-recovered data: the issuer and ICC certificate checks
 *      (RSA cannot be steered by a fuzzer; this reaches every check after it)
 *   2  body is an ICC certificate, an SSAD and a DDA signature under the CA
 *      key used as issuer/ICC key; the remainder doubles as DDOL data
 *   3  body is a GENERATE AC response (77 template) for CDA; the remainder is
 *      the CDOL1 data
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "apdu/capk.h"
#include "apdu/oda.h"
#include "src/base/hex.h"

static const char LAB_CA_MODULUS[] =
    "C22F36E640864FA97DC588CDB171E21D6AB25D2A7E564445FBA2F6755CD68BE3C4CF5D1F98CC298DFEADCA34"
    "420B9E22B2EB32F2E86CCDB7FFE19BF022713A4CAD75DD68861B26451FBC5952AC10AED7FFE10F2A0AB1D023"
    "DA24A64785ED7CA5FF6C983CB8A0C47B3ABF007017BFDC2448CFDFFC9312C5D2628D50C6C3888156AAEDE8B4"
    "A8186777FDAF163A29932730C80859715517E77D046A96DB2500B4B6167D3F60C71C517F3E3898AF43083E5B";

/* PAN 4761739001010010, and the static data the corpus was signed over */
static const uint8_t PAN[8] = {0x47, 0x61, 0x73, 0x90, 0x01, 0x01, 0x00, 0x10};
static const uint8_t REC1[18] = {0x70, 0x10, 0x5A, 0x08, 0x47, 0x61, 0x73, 0x90, 0x01,
                                 0x01, 0x00, 0x10, 0x5F, 0x24, 0x03, 0x29, 0x12, 0x31};
static const uint8_t TAG_LIST[1] = {0x82};
static const uint8_t UN[4] = {0x01, 0x02, 0x03, 0x04};
#define TXN_DATE 250615

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static kv_capk ca;
    static kv_oda_pubkey key;
    static int ready;
    kv_oda_record rec = {1, REC1, sizeof(REC1)};
    kv_oda_static sd;
    kv_oda_cert_in in;
    kv_oda_pubkey out;
    const uint8_t *rem, *exp, *body;
    size_t rl, el, bl;
    uint8_t dac[2], dn[8], tdhc[20];
    size_t dn_len = 0;

    if (!ready) {
        int n = kv_hex_decode(LAB_CA_MODULUS, ca.modulus, sizeof(ca.modulus));

        if (n <= 0)
            return 0;
        ca.modulus_len = (size_t)n;
        ca.exponent[0] = 0x03;
        ca.exponent_len = 1;
        ca.hash_alg = ca.pk_alg = 0x01;
        memcpy(key.modulus, ca.modulus, ca.modulus_len);
        key.modulus_len = ca.modulus_len;
        key.exponent[0] = 0x03;
        key.exponent_len = 1;
        ready = 1;
    }
    if (size < 3)
        return 0;
    rl = data[1];
    el = data[2] % 4;
    if (size - 3 < rl + el)
        return 0;
    rem = data + 3;
    exp = rem + rl;
    body = exp + el;
    bl = size - 3 - rl - el;

    memset(&sd, 0, sizeof(sd));
    sd.records = &rec;
    sd.nrecords = 1;
    sd.tag_list = TAG_LIST;
    sd.tag_list_len = 1;
    sd.aip[0] = 0x79;
    in.cert = bl > 0 ? body : NULL;
    in.cert_len = bl;
    in.remainder = rl > 0 ? rem : NULL;
    in.remainder_len = rl;
    in.exponent = el > 0 ? exp : NULL;
    in.exponent_len = el;

    switch (data[0] % 4) {
    case 0:
        if (kv_oda_issuer_key_recover(&ca, &in, PAN, sizeof(PAN), TXN_DATE, &out) == 0 &&
            out.modulus_len > sizeof(out.modulus))
            abort();
        break;
    case 1:
        /* a key is never longer than its buffer (c13/c14: key length byte 255) */
        if (kv_oda_issuer_cert_check(body, bl, &in, PAN, sizeof(PAN), TXN_DATE, &out) == 0 &&
            out.modulus_len > sizeof(out.modulus))
            abort();
        if (kv_oda_icc_cert_check(body, bl, &in, PAN, sizeof(PAN), TXN_DATE, &sd, &out) == 0 &&
            out.modulus_len > sizeof(out.modulus))
            abort();
        if (kv_oda_icc_cert_check(body, bl, &in, PAN, sizeof(PAN), TXN_DATE, NULL, &out) == 0 &&
            out.modulus_len > sizeof(out.modulus))
            abort();
        break;
    case 2:
        (void)kv_oda_icc_key_recover(&key, &in, PAN, sizeof(PAN), TXN_DATE, &sd, &out);
        (void)kv_oda_sda_verify(&key, body, bl, &sd, dac);
        if (kv_oda_dda_verify(&key, body, bl, rem, rl, dn, &dn_len) == 0 &&
            (dn_len < 2 || dn_len > 8))
            abort();
        break;
    default: {
        kv_oda_cda_in cin;
        kv_oda_cda_out cout;

        memset(&cin, 0, sizeof(cin));
        cin.cdol1_data = rem;
        cin.cdol1_data_len = rl;
        cin.response = body;
        cin.response_len = bl;
        memcpy(cin.un, UN, 4);
        if (kv_oda_cda_verify(&key, &cin, &cout) == 0 && cout.icc_dn_len > 8)
            abort();
        (void)kv_oda_cda_tdhc(NULL, 0, rem, rl, NULL, 0, body, bl, tdhc);
        break;
    }
    }
    return 0;
}

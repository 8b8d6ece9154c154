/*
 * C-APDUs into the virtual card's cryptographic commands (apdu/vcard/CRYPTO.md):
 * a card with keys (its CVN -- 10, 18, 22, 16, 17, 20, 21, 5, 6 -- by the
 * first input byte, an ICC RSA key, a CVC3 key, script keys, card risk
 * management, AIP with DDA and CDA) answers the rest of the input as a
 * sequence of [length byte][C-APDU] records. Every command must get an
 * answer; nothing may crash, leak or read out of bounds.
 */
#include "apdu/vcard/vcard.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *pem; /* one ICC key for the whole run */

static const char *icc_pem(void)
{
    if (pem == NULL) {
        EVP_PKEY *k = EVP_RSA_gen(512);
        BIO *b = BIO_new(BIO_s_mem());
        char *p;
        long n;
        if (k == NULL || b == NULL || !PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL))
            abort();
        n = BIO_get_mem_data(b, &p);
        pem = calloc(1, (size_t)n + 1);
        if (pem == NULL)
            abort();
        memcpy(pem, p, (size_t)n);
        BIO_free(b);
        EVP_PKEY_free(k);
    }
    return pem;
}

static kv_vcard *load(int cvn)
{
    static char text[4096];
    char why[200];
    kv_vcard *vc = NULL;
    const char *k = icc_pem();
    char esc[2048];
    size_t j = 0;
    for (size_t i = 0; k[i] != '\0' && j + 3 < sizeof(esc); i++) { /* JSON-escape newlines */
        if (k[i] == '\n') {
            esc[j++] = '\\';
            esc[j++] = 'n';
        } else {
            esc[j++] = k[i];
        }
    }
    esc[j] = '\0';
    snprintf(
        text, sizeof(text),
        "{\"atr\": \"3B00\", \"ppse\": true, \"applications\": [{\"aid\": \"A0000000031010\","
        " \"aip\": \"3901\", \"afl\": \"08010100 10010100\", \"gpo_format\": 1,"
        " \"pdol\": \"9F3704\", \"records\": ["
        "{\"sfi\": 1, \"record\": 1, \"tags\": [[\"57\", \"4761730000000011D28122010000012345\"]]},"
        "{\"sfi\": 2, \"record\": 1, \"tags\": [[\"5A\", \"4761730000000011\"],"
        " [\"8C\", \"9F02069F03069F1A0295055F2A029A039C019F3704\"],"
        " [\"8D\", \"910A8A029F02069F03069F1A0295055F2A029A039C019F3704\"],"
        " [\"9F49\", \"9F3704\"]]}]}],"
        " \"data\": {\"9F36\": \"0010\"}, \"pin\": {\"value\": \"1234\", \"try_limit\": 3},"
        " \"risk\": {\"lcol\": 1, \"ucol\": 3, \"ciac_online\": \"000001\", \"script_mac_limit\": "
        "2},"
        " \"keys\": {\"cvn\": %d, \"icc_mk_ac\": \"0123456789ABCDEFFEDCBA9876543210\","
        " \"icc_mk_smi\": \"4B3A2918F7E6D5C4C4D5E6F718293A4B\","
        " \"icc_mk_smc\": \"9A8B7C6D5E4F30211203F4E5D6C7B8A9\", \"sm_mac_len\": %d,"
        " \"icc_mk_cvc3\": \"01234567899876543210012345678998\", \"icc_rsa\": \"%s\"}}",
        cvn, cvn == 16 ? 4 : 8, esc);
    if (kv_vcard_load_text(text, strlen(text), &vc, why, sizeof(why)) != 0) {
        fprintf(stderr, "fuzz_vcard_crypto: profile: %s\n", why);
        abort();
    }
    return vc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kv_vcard *vc;
    uint8_t out[KV_VCARD_RAPDU_MAX];
    size_t off = 1, outlen;

    if (size < 1)
        return 0;
    {
        static const int cvns[] = {10, 18, 22, 16, 17, 20, 21, 5, 6};
        vc = load(cvns[data[0] % 9]);
    }
    while (off < size) {
        size_t n = data[off++];
        if (n > size - off)
            n = size - off;
        if (kv_vcard_process(vc, data + off, n, out, sizeof(out), &outlen) != 0 || outlen < 2)
            abort();
        off += n;
    }
    kv_vcard_free(vc);
    return 0;
}

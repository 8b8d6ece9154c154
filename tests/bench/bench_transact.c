/*
 * Benchmark: one full contact transaction (selection -> GPO -> records ->
 * ODA -> restrictions -> CVM with the offline PIN -> 1st GENERATE AC ->
 * ARQC verified in the HSM -> ARPC -> 2nd GENERATE AC), N times from one
 * process: APDUs per transaction, milliseconds per transaction and
 * transactions per second.
 *
 *   bench_transact [N] [--vcard PROFILE] [--no-pcsc]
 *
 * runs N transactions through PC/SC on the card in $KORTVAGT_READER (the
 * lab's virtual card behind pcscd + vpcd; skipped when there is no card, or
 * with --no-pcsc), then, with --vcard, N on the same profile in process (no
 * PC/SC: the cost of our code, the card's RSA and the HSM alone) and the
 * ratio of the two. Exit 77 when there is neither. HSM from $KORTVAGT_TOKEN
 * etc.; a personalized profile needs $KORTVAGT_TRANSPORT_KEY (the lab's).
 * An enciphered-PIN CDA card, inside `scripts/lab.sh run --`:
 *   kortvagt perso --issuer tests/data/templates/issuer_lab.json \
 *     --card tests/data/templates/card_visa_cda.json --out $KORTVAGT_LAB/cda.json
 *   scripts/lab.sh insert $KORTVAGT_LAB/cda.json
 *   bench_transact 50 --vcard $KORTVAGT_LAB/cda.json
 *
 * Environment: KV_BENCH_PIN (default 1234), KORTVAGT_CAPK (default
 * tests/data/capk/capk.json), KV_BENCH_IMK (default imk-ac). The PIN is lab
 * test data.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apdu/capk.h"
#include "apdu/oda.h"
#include "apdu/reader.h"
#include "apdu/vcard/vcard.h"
#include "hsm/p11.h"
#include "hsm/p11_admin.h"
#include "src/base/err.h"
#include "src/base/secure.h"
#include "src/transact/transact.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

typedef struct {
    unsigned long apdus;
    double first_ms, ms_per_txn, tps;
    int approved;
    long n;
} series;

/* n transactions on the in-process card vc, or through PC/SC (reader) when vc is NULL. */
static int run_series(kv_vcard *vc, const char *reader, long n, const kv_transact_params *p,
                      series *out)
{
    kv_transact_result res;
    double t0 = now_ms(), el;
    int r;

    memset(out, 0, sizeof(*out));
    for (long i = 0; i < n; i++) {
        kv_reader *rd = NULL;
        double ti = now_ms();
        if (vc != NULL) {
            kv_vcard_reset(vc);
            r = kv_vcard_reader(vc, &rd);
        } else {
            r = kv_reader_open_pcsc(reader, &rd);
        }
        if (r != 0) {
            fprintf(stderr, "bench_transact: reader: %s\n", kv_strerror(r));
            return r;
        }
        r = kv_transact_run(rd, p, &res);
        kv_reader_free(rd);
        if (r != 0) {
            fprintf(stderr, "bench_transact: transaction %ld: %s\n", i, kv_strerror(r));
            return r;
        }
        out->approved += res.approved;
        if (i == 0) {
            out->apdus = res.apdus;
            out->first_ms = now_ms() - ti;
            printf("%s first: %s, CVM %s, ODA %s %s, ARQC %s, ARPC %s, %lu APDUs, %.2f ms\n",
                   vc != NULL ? "in-process" : "PC/SC", res.approved ? "approved" : "declined",
                   kv_transact_cvm_name(res.cvm_method), kv_oda_method_name(res.oda_method),
                   kv_oda_state_name(res.oda_state),
                   res.arqc_verified ? "verified" : "NOT verified",
                   res.arpc_sent ? "sent" : "not sent", res.apdus, out->first_ms);
        }
    }
    el = now_ms() - t0;
    out->n = n;
    out->ms_per_txn = el / (double)n;
    out->tps = (double)n * 1000.0 / el;
    printf("%s: %ld transactions, %lu APDUs each, %.2f ms per transaction, %.1f "
           "transactions/s (one process), %d approved\n",
           vc != NULL ? "in-process virtual card" : "PC/SC (pcscd + vpcd + vcard process)", n,
           out->apdus, out->ms_per_txn, out->tps, out->approved);
    return 0;
}

int main(int argc, char **argv)
{
    long n = argc > 1 && argv[1][0] != '-' ? strtol(argv[1], NULL, 10) : 20;
    const char *profile = NULL, *pin_env = getenv("KV_BENCH_PIN");
    const char *capk = getenv("KORTVAGT_CAPK"), *reader = getenv("KORTVAGT_READER");
    kv_vcard *vc = NULL;
    kv_hsm *h = NULL;
    /* a front end of its own: the HSM settings from the environment */
    kv_hsm_config cfg = {.module = getenv("KORTVAGT_PKCS11_MODULE"),
                         .token = getenv("KORTVAGT_TOKEN")};
    const char *token_pin = getenv("KORTVAGT_PIN");
    kv_capk_store *cs = NULL;
    kv_secbuf *pin = NULL;
    kv_transact_params p;
    series pc, ip;
    char why[256];
    int rc = 1, r, pcsc = 1, have_pc = 0, have_ip = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--vcard") == 0 && i + 1 < argc)
            profile = argv[++i];
        else if (strcmp(argv[i], "--no-pcsc") == 0)
            pcsc = 0;
    }
    if (n < 1)
        n = 1;
    if (pin_env == NULL)
        pin_env = "1234";
    if (capk == NULL)
        capk = "tests/data/capk/capk.json";
    if ((r = kv_capk_store_load(capk, &cs, why, sizeof(why))) != 0) {
        fprintf(stderr, "bench_transact: %s: %s\n", capk, why);
        goto out;
    }
    if ((r = token_pin != NULL
                 ? kv_hsm_open_pin(&cfg, (const uint8_t *)token_pin, strlen(token_pin), &h)
                 : kv_hsm_open(&cfg, &h)) != 0) {
        fprintf(stderr, "bench_transact: HSM: %s\n", kv_hsm_last_error(NULL));
        rc = 77;
        goto out;
    }
    /* a personalized profile unwraps its keys under the lab's transport key */
    kv_vcard_set_transport_key_file(getenv("KORTVAGT_TRANSPORT_KEY"));
    if (profile != NULL && (r = kv_vcard_load(profile, &vc, why, sizeof(why))) != 0) {
        fprintf(stderr, "bench_transact: %s: %s\n", profile, why);
        goto out;
    }
    if ((pin = kv_secbuf_new(16)) == NULL)
        goto out;
    snprintf((char *)kv_secbuf_ptr(pin), 16, "%s", pin_env);
    memset(&p, 0, sizeof(p));
    p.amount = 12345;
    p.currency = 208;
    memcpy(p.currency_code, "DKK", 4);
    p.profile = "pos";
    p.pin = pin;
    p.pin_len = strlen(pin_env);
    p.imk_ac = getenv("KV_BENCH_IMK");
    p.capks = cs;
    p.hsm = h;
    /* the PC/SC path: the card the lab put in the reader ($KORTVAGT_READER) */
    if (pcsc) {
        r = run_series(NULL, reader, n, &p, &pc);
        if (r == 0)
            have_pc = 1;
        else if (r != KV_ERR_PCSC_NO_SERVICE && r != KV_ERR_PCSC_NO_READER &&
                 r != KV_ERR_PCSC_NO_CARD)
            goto out;
    }
    /* the baseline: the same profile in process (our code and the HSM alone) */
    if (vc != NULL) {
        if ((r = run_series(vc, NULL, n, &p, &ip)) != 0)
            goto out;
        have_ip = 1;
    }
    if (!have_pc && !have_ip) {
        fprintf(stderr, "bench_transact: no card in a reader and no --vcard PROFILE\n");
        rc = 77;
        goto out;
    }
    if (have_pc && have_ip)
        printf("PC/SC / in-process: %.1fx the time per transaction (%.2f ms of transport and "
               "the card process per transaction, %.3f ms per APDU)\n",
               pc.ms_per_txn / ip.ms_per_txn, pc.ms_per_txn - ip.ms_per_txn,
               (pc.ms_per_txn - ip.ms_per_txn) / (double)(pc.apdus ? pc.apdus : 1));
    rc = 0;
out:
    kv_secbuf_free(pin);
    kv_vcard_free(vc);
    kv_hsm_close(h);
    kv_capk_store_free(cs);
    return rc;
}

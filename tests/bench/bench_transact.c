/*
 * Benchmark: one full contact transaction (selection -> GPO -> records ->
 * ODA -> restrictions -> CVM with the offline PIN -> 1st GENERATE AC ->
 * ARQC verified in the HSM -> ARPC -> 2nd GENERATE AC), N times from one
 * process: APDUs per transaction, milliseconds per transaction and
 * transactions per second.
 *
 *   bench_transact [N]                  the card in $KORTVAGT_READER (the
 *                                       lab's virtual card; exit 77 without
 *                                       one), HSM from $KORTVAGT_TOKEN etc.
 *   bench_transact [N] --vcard PROFILE  the virtual card in process (no
 *                                       PC/SC): the cost of our code and the
 *                                       HSM alone
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
#include "src/base/err.h"
#include "src/base/secure.h"
#include "src/transact/transact.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int vc_transmit(void *ctx, const uint8_t *c, size_t len, uint8_t *out, size_t cap,
                       size_t *outlen)
{
    return kv_vcard_process(ctx, c, len, out, cap, outlen);
}

static int vc_atr(void *ctx, uint8_t *out, size_t cap, size_t *len)
{
    *len = kv_vcard_atr(ctx, out, cap);
    return *len ? 0 : KV_ERR_BUFFER;
}

static int vc_reset(void *ctx)
{
    kv_vcard_reset(ctx);
    return 0;
}

static const kv_transport_ops vc_ops = {"vcard", vc_transmit, vc_atr, vc_reset, NULL};

int main(int argc, char **argv)
{
    long n = argc > 1 && argv[1][0] != '-' ? strtol(argv[1], NULL, 10) : 20;
    const char *profile = NULL, *pin_env = getenv("KV_BENCH_PIN");
    const char *capk = getenv("KORTVAGT_CAPK");
    kv_vcard *vc = NULL;
    kv_hsm *h = NULL;
    kv_hsm_config cfg = {NULL, NULL};
    kv_capk_store *cs = NULL;
    kv_secbuf *pin = NULL;
    kv_transact_params p;
    kv_transact_result res;
    char why[256];
    double t0, el, first_ms = 0;
    unsigned long apdus = 0;
    int rc = 1, r, approved = 0;

    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--vcard") == 0)
            profile = argv[i + 1];
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
    if ((r = kv_hsm_open(&cfg, &h)) != 0) {
        fprintf(stderr, "bench_transact: HSM: %s\n", kv_hsm_last_error(NULL));
        rc = 77;
        goto out;
    }
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
    t0 = now_ms();
    for (long i = 0; i < n; i++) {
        kv_reader *rd = NULL;
        double ti = now_ms();
        if (vc != NULL) {
            kv_vcard_reset(vc);
            r = kv_reader_new(&vc_ops, vc, &rd);
        } else {
            r = kv_reader_open_pcsc(NULL, &rd);
        }
        if (r != 0) {
            fprintf(stderr, "bench_transact: reader: %s\n", kv_strerror(r));
            rc = r == KV_ERR_PCSC_NO_SERVICE || r == KV_ERR_PCSC_NO_READER ||
                         r == KV_ERR_PCSC_NO_CARD
                     ? 77
                     : 1;
            goto out;
        }
        r = kv_transact_run(rd, &p, &res);
        kv_reader_free(rd);
        if (r != 0) {
            fprintf(stderr, "bench_transact: transaction %ld: %s\n", i, kv_strerror(r));
            goto out;
        }
        approved += res.approved;
        if (i == 0) {
            apdus = res.apdus;
            first_ms = now_ms() - ti;
            printf("first: %s, CVM %s, ODA %s %s, ARQC %s, %lu APDUs, %.2f ms\n",
                   res.approved ? "approved" : "declined", kv_transact_cvm_name(res.cvm_method),
                   kv_oda_method_name(res.oda_method), kv_oda_state_name(res.oda_state),
                   res.arqc_verified ? "verified" : "NOT verified", res.apdus, first_ms);
        }
    }
    el = now_ms() - t0;
    printf("%s: %ld transactions, %lu APDUs each, %.2f ms per transaction, %.1f "
           "transactions/s (one process), %d approved\n",
           vc != NULL ? "in-process virtual card" : "PC/SC", n, apdus, el / (double)n,
           (double)n * 1000.0 / el, approved);
    rc = 0;
out:
    kv_secbuf_free(pin);
    kv_vcard_free(vc);
    kv_hsm_close(h);
    kv_capk_store_free(cs);
    return rc;
}

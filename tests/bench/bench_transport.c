/*
 * Benchmark: APDUs per second through our transport (kv_reader_transmit over
 * the PC/SC backend, with its 61xx/6Cxx handling, counting and APDU check)
 * against a bare SCardTransmit loop, in the same run, on the same card: the
 * card in the reader named by $KORTVAGT_READER, else the first reader with a
 * card (in the lab: the virtual card behind vpcd). The command is SELECT
 * PPSE, repeated N times (argv[1], default 2000), alternating two rounds of
 * each so that drift hits both. Target: ours >= 95% of bare.
 *
 * Exit 0 with the figures, 77 (skipped) when there is no reader or card.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <winscard.h>

#include "apdu/reader.h"
#include "src/base/err.h"

static const uint8_t select_ppse[] = {0x00, 0xA4, 0x04, 0x00, 0x0E, '2', 'P', 'A', 'Y', '.',
                                      'S',  'Y',  'S',  '.',  'D',  'D', 'F', '0', '1', 0x00};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* N exchanges through kv_reader; returns elapsed ms or -1. */
static double run_ours(kv_reader *r, long n)
{
    uint8_t out[300];
    size_t olen;
    double t0 = now_ms();
    for (long i = 0; i < n; i++) {
        int rc = kv_reader_transmit(r, select_ppse, sizeof(select_ppse), out, sizeof(out), &olen);
        if (rc != 0) {
            fprintf(stderr, "bench_transport: our transport failed: %s\n", kv_strerror(rc));
            return -1;
        }
    }
    return now_ms() - t0;
}

static double run_bare(SCARDHANDLE h, DWORD proto, long n)
{
    BYTE out[300];
    const SCARD_IO_REQUEST *pci = proto == SCARD_PROTOCOL_T0 ? SCARD_PCI_T0 : SCARD_PCI_T1;
    double t0 = now_ms();
    for (long i = 0; i < n; i++) {
        DWORD olen = sizeof(out);
        LONG rv = SCardTransmit(h, pci, select_ppse, sizeof(select_ppse), NULL, out, &olen);
        if (rv != SCARD_S_SUCCESS) {
            fprintf(stderr, "bench_transport: SCardTransmit failed: %s\n",
                    pcsc_stringify_error(rv));
            return -1;
        }
    }
    return now_ms() - t0;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 2000;
    char name[KV_READER_NAME_MAX];
    kv_reader *r = NULL;
    SCARDCONTEXT ctx;
    SCARDHANDLE h;
    DWORD proto;
    double ours = 0, bare = 0;
    int rc;

    if (n < 1)
        n = 2000;
    if ((rc = kv_reader_pick(getenv("KORTVAGT_READER"), name, sizeof(name))) != 0) {
        fprintf(stderr,
                "bench_transport: skipped, no card to measure: %s (start the lab: "
                "scripts/lab.sh, or set KORTVAGT_READER)\n",
                kv_strerror(rc));
        return 77;
    }
    if ((rc = kv_reader_open_pcsc(name, &r)) != 0) {
        fprintf(stderr, "bench_transport: skipped, %s: %s\n", name, kv_strerror(rc));
        return 77;
    }
    if (SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx) != SCARD_S_SUCCESS ||
        SCardConnect(ctx, name, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, &h,
                     &proto) != SCARD_S_SUCCESS) {
        fprintf(stderr, "bench_transport: skipped, bare PC/SC connect to %s failed\n", name);
        kv_reader_free(r);
        return 77;
    }
    /* warm up both paths, then two alternating rounds of each */
    if (run_ours(r, n / 10 + 1) < 0 || run_bare(h, proto, n / 10 + 1) < 0)
        return 1;
    for (int round = 0; round < 2; round++) {
        double a = run_ours(r, n), b = run_bare(h, proto, n);
        if (a < 0 || b < 0)
            return 1;
        ours += a;
        bare += b;
    }
    printf("reader: %s\n", name);
    printf("command: SELECT PPSE, %ld x 2 rounds each\n", n);
    printf("our transport (kv_reader_transmit): %.0f APDU/s (%.3f ms/APDU)\n",
           2.0 * (double)n * 1000.0 / ours, ours / (2.0 * (double)n));
    printf("bare SCardTransmit:                 %.0f APDU/s (%.3f ms/APDU)\n",
           2.0 * (double)n * 1000.0 / bare, bare / (2.0 * (double)n));
    printf("ratio ours/bare: %.1f%% (target >= 95%%)\n", 100.0 * bare / ours);
    SCardDisconnect(h, SCARD_LEAVE_CARD);
    SCardReleaseContext(ctx);
    kv_reader_free(r);
    return 0;
}

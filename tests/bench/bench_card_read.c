/*
 * Benchmark: a full card read (selection -> GPO -> records -> GET DATA), N
 * times (argv[1], default 50): APDUs per read and milliseconds per read.
 *
 *   bench_card_read [N]             the card in $KORTVAGT_READER, else the
 *                                   first reader with a card (the lab's
 *                                   virtual card); exit 77 without one
 *   bench_card_read [N] --recorded  each trace card of $KV_TEST_DATA/traces/cards
 *                                   (default: tests/data of this source tree) through the
 *                                   recorded backend: the cost of our own
 *                                   code, without PC/SC
 */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apdu/emv.h"
#include "apdu/reader.h"
#include "src/base/err.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* N reads over r; prints one line. Returns 0 or an error. */
static int bench(const char *what, kv_reader *r, long n)
{
    unsigned long before = kv_reader_apdu_count(r);
    double t0 = now_ms(), el;
    for (long i = 0; i < n; i++) {
        kv_emv *s = NULL;
        int rc = kv_emv_new(r, NULL, &s);
        if (rc == 0)
            rc = kv_emv_read_card(s, KV_EMV_IFACE_ANY);
        kv_emv_free(s);
        if (rc != 0) {
            fprintf(stderr, "bench_card_read: %s: read %ld failed: %s\n", what, i + 1,
                    kv_strerror(rc));
            return rc;
        }
    }
    el = now_ms() - t0;
    printf("%-40s %3lu APDUs/read  %8.3f ms/read  (%ld reads, %.0f APDU/s)\n", what,
           (kv_reader_apdu_count(r) - before) / (unsigned long)n, el / (double)n, n,
           (double)(kv_reader_apdu_count(r) - before) * 1000.0 / el);
    return 0;
}

static int bench_recorded(long n)
{
    const char *base = getenv("KV_TEST_DATA");
    const char *slash = strrchr(__FILE__, '/');
    char pattern[600];
    glob_t g;
    int rc = 0;
    if (base != NULL && base[0] != '\0')
        snprintf(pattern, sizeof(pattern), "%s/traces/cards/*.json", base);
    else /* tests/bench/bench_card_read.c -> tests/data */
        snprintf(pattern, sizeof(pattern), "%.*s/../data/traces/cards/*.json",
                 slash != NULL ? (int)(slash - __FILE__) : 1, slash != NULL ? __FILE__ : ".");
    if (glob(pattern, 0, NULL, &g) != 0) {
        fprintf(stderr, "bench_card_read: no trace cards at %s\n", pattern);
        return 77;
    }
    for (size_t i = 0; i < g.gl_pathc && rc == 0; i++) {
        kv_reader *r = NULL;
        const char *name = strrchr(g.gl_pathv[i], '/') + 1;
        if ((rc = kv_reader_open_recorded(g.gl_pathv[i], &r)) == 0)
            rc = bench(name, r, n);
        kv_reader_free(r);
    }
    globfree(&g);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    long n = 50;
    int recorded = 0, rc;
    char name[KV_READER_NAME_MAX];
    kv_reader *r = NULL;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--recorded") == 0)
            recorded = 1;
        else
            n = strtol(argv[i], NULL, 10);
    }
    if (n < 1)
        n = 50;
    if (recorded)
        return bench_recorded(n);
    if ((rc = kv_reader_pick(getenv("KORTVAGT_READER"), name, sizeof(name))) != 0 ||
        (rc = kv_reader_open_pcsc(name, &r)) != 0) {
        fprintf(stderr,
                "bench_card_read: skipped, no card to read: %s (start the lab: scripts/lab.sh, "
                "or set KORTVAGT_READER; --recorded measures the trace cards instead)\n",
                kv_strerror(rc));
        return 77;
    }
    rc = bench(name, r, n);
    kv_reader_free(r);
    return rc == 0 ? 0 : 1;
}

/*
 * Throughput of the BER-TLV decoder over real card records, and its heap use.
 *
 * The corpus is the distinct FCI, GPO and READ RECORD answers (SELECT, GET
 * PROCESSING OPTIONS and READ RECORD answered 9000; status word stripped) of
 * the recorded cards in DATA/traces/cards/<card>.json (DATA: argv[1], else
 * $KV_TEST_DATA, else tests/data of this source tree), repeated until it
 * holds a few MB. Each record is one parse, as a card reader would do it.
 * Printed: MB/s and records/s of kv_tlv_validate, kv_tlv_walk and
 * kv_tlv_find per record and of one kv_tlv_validate over the whole buffer;
 * next to them, measured in the same run over the same bytes, a plain
 * byte-sum pass (a memory-speed baseline) and the header-walk floor: the tag
 * and length bytes of every object only, entering constructed values,
 * bounds the only check (no depth limit, no distinct errors, no object
 * handed to anyone): what no decoder with kortvagt's guarantees can beat.
 * The ratio of kv_tlv_walk to the floor is the figure to watch. Each figure
 * is the best of REPEATS timings of ROUNDS passes (the machine is shared).
 * Last: the number of heap allocations per parse, counted by a
 * malloc/calloc/realloc interposer in this executable (target: 0).
 */
#include <glob.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "apdu/tags.h"
#include "apdu/tlv.h"
#include "src/base/err.h"
#include "src/base/hex.h"

#define CORPUS_TARGET (4u * 1024 * 1024)
#define ROUNDS 10
#define REPEATS 7

/* --- allocation counter --- */

#if defined(__SANITIZE_ADDRESS__)
#define BENCH_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BENCH_ASAN 1
#endif
#endif

static volatile unsigned long bench_allocs;

#ifndef BENCH_ASAN
/* glibc's own entry points; the sanitizers interpose malloc themselves, so only without them. */
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);

void *malloc(size_t n)
{
    bench_allocs++;
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    bench_allocs++;
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    bench_allocs++;
    return __libc_realloc(p, n);
}
#define BENCH_COUNTING 1
#else
#define BENCH_COUNTING 0
#endif

/* --- corpus --- */

struct record {
    size_t off, len;
};

struct corpus {
    uint8_t *buf;
    size_t len, cap;
    struct record *rec;
    size_t nrec, caprec;
};

/* Used when the trace files cannot be read: records from visa_debit_ppse.json. */
static const char *const fallback_records[] = {
    "6F3A840E325041592E5359532E4444463031A528BF0C2561234F07A0000000031010500A566973612044656269"
    "748701019F0A080001050100000000",
    "77428202202094041001030057134871780000000005D25072211328662101000F9F100706011203A000009F26"
    "08EC1C5779FF2670379F2701809F360200C39F6C020400",
    "70335A0848717800000000055F24032507315F3401015F280202769F070200809F4A01829F6E04207000009F69"
    "0701859209CF0400",
};

static int corpus_add(struct corpus *c, const uint8_t *p, size_t len)
{
    if (c->cap - c->len < len) {
        size_t cap = c->cap ? c->cap : 1024;
        uint8_t *nb;
        while (cap - c->len < len)
            cap *= 2;
        if ((nb = realloc(c->buf, cap)) == NULL)
            return KV_ERR_NOMEM;
        c->buf = nb;
        c->cap = cap;
    }
    if (c->nrec == c->caprec) {
        size_t cap = c->caprec ? 2 * c->caprec : 64;
        struct record *nr = realloc(c->rec, cap * sizeof(*nr));
        if (nr == NULL)
            return KV_ERR_NOMEM;
        c->rec = nr;
        c->caprec = cap;
    }
    memcpy(c->buf + c->len, p, len);
    c->rec[c->nrec].off = c->len;
    c->rec[c->nrec].len = len;
    c->nrec++;
    c->len += len;
    return 0;
}

/* The distinct FCI, GPO and record bodies of the trace files, once each. */
static int load_traces(const char *data, struct corpus *c, unsigned *files)
{
    char pattern[1024];
    glob_t g;
    uint8_t body[4096];

    *files = 0;
    if ((size_t)snprintf(pattern, sizeof(pattern), "%s/traces/cards/*.json", data) >=
            sizeof(pattern) ||
        glob(pattern, 0, NULL, &g) != 0)
        return KV_ERR_NOT_FOUND;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        json_t *card = json_load_file(g.gl_pathv[i], 0, NULL);
        json_t *ex;
        size_t j;
        if (card == NULL)
            continue;
        (*files)++;
        json_array_foreach(json_object_get(card, "exchanges"), j, ex)
        {
            const char *cmd = json_string_value(json_object_get(ex, "capdu"));
            const char *hex = json_string_value(json_object_get(ex, "rapdu"));
            int n = hex ? kv_hex_decode(hex, body, sizeof(body)) : -1;
            int seen = 0;
            /* SELECT (A4), GET PROCESSING OPTIONS (A8), READ RECORD (B2) answered 9000 */
            if (cmd == NULL || strlen(cmd) < 4 ||
                (strncmp(cmd + 2, "A4", 2) != 0 && strncmp(cmd + 2, "A8", 2) != 0 &&
                 strncmp(cmd + 2, "B2", 2) != 0) ||
                n <= 2 || body[n - 2] != 0x90 || body[n - 1] != 0x00)
                continue;
            for (size_t k = 0; k < c->nrec && !seen; k++)
                seen = c->rec[k].len == (size_t)n - 2 &&
                       memcmp(c->buf + c->rec[k].off, body, (size_t)n - 2) == 0;
            if (!seen && corpus_add(c, body, (size_t)n - 2) != 0) {
                json_decref(card);
                globfree(&g);
                return KV_ERR_NOMEM;
            }
        }
        json_decref(card);
    }
    globfree(&g);
    return c->nrec > 0 ? 0 : KV_ERR_NOT_FOUND;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int count_visit(const kv_tlv *t, unsigned depth, void *arg)
{
    unsigned long *n = arg;
    (void)t;
    (void)depth;
    (*n)++;
    return 0;
}

/*
 * The floor: read each object's tag and length bytes and nothing else;
 * enter constructed values, skip primitive ones; stop at the end of the
 * buffer. Returns the number of objects (so the work cannot be dropped).
 */
static unsigned long header_floor(const uint8_t *p, size_t len)
{
    const uint8_t *end = p + len;
    unsigned long n = 0;
    while (p < end) {
        uint8_t b = *p++, cons;
        size_t l;
        if (b == 0x00 || b == 0xFF)
            continue;
        cons = b & 0x20;
        if ((b & 0x1F) == 0x1F)
            while (p < end && (*p++ & 0x80) != 0)
                ;
        if (p >= end)
            break;
        l = *p++;
        if (l & 0x80) {
            unsigned k = l & 0x7F;
            for (l = 0; k > 0 && p < end; k--)
                l = l << 8 | *p++;
        }
        n++;
        if (!cons) {
            if ((size_t)(end - p) < l)
                break;
            p += l;
        }
    }
    return n;
}

static const struct corpus *C;
static volatile unsigned long sink;
static unsigned long objects;

static void pass_bytesum(void)
{
    unsigned long sum = 0;
    for (size_t i = 0; i < C->len; i++)
        sum += C->buf[i];
    sink += sum;
}

static void pass_floor(void)
{
    for (size_t i = 0; i < C->nrec; i++)
        sink += header_floor(C->buf + C->rec[i].off, C->rec[i].len);
}

static void pass_validate(void)
{
    for (size_t i = 0; i < C->nrec; i++)
        sink += (unsigned long)-kv_tlv_validate(C->buf + C->rec[i].off, C->rec[i].len);
}

static void pass_walk(void)
{
    for (size_t i = 0; i < C->nrec; i++)
        sink += (unsigned long)-kv_tlv_walk(C->buf + C->rec[i].off, C->rec[i].len, count_visit,
                                            (void *)&objects);
}

static void pass_find(void)
{
    for (size_t i = 0; i < C->nrec; i++) {
        kv_tlv t;
        /* 9F4A sits at the end of most records: a near-full search. */
        sink += (unsigned long)-kv_tlv_find(C->buf + C->rec[i].off, C->rec[i].len, 0x9F4A, &t);
    }
}

static void pass_validate_whole(void)
{
    sink += (unsigned long)-kv_tlv_validate(C->buf, C->len);
}

/* MB/s of the best of REPEATS timings of ROUNDS passes. */
static double best_mbs(void (*pass)(void))
{
    double best = 0;
    for (int k = 0; k < REPEATS; k++) {
        double t0 = now(), secs, mbs;
        for (int r = 0; r < ROUNDS; r++)
            pass();
        secs = now() - t0;
        mbs = (double)C->len * ROUNDS / secs / 1e6;
        if (mbs > best)
            best = mbs;
    }
    return best;
}

static void report(const char *what, double mbs, size_t parses_per_pass, double base_mbs,
                   double floor_mbs)
{
    printf("  %-34s %9.1f MB/s", what, mbs);
    if (parses_per_pass > 0)
        printf(" %12.0f parses/s", mbs * 1e6 / (double)C->len * (double)parses_per_pass);
    else
        printf(" %21s", "");
    if (base_mbs > 0)
        printf("   %5.1f%% of byte-sum", 100.0 * mbs / base_mbs);
    if (floor_mbs > 0)
        printf("   %.2fx the floor", mbs / floor_mbs);
    printf("\n");
}

int main(int argc, char **argv)
{
    const char *data = argc > 1 ? argv[1] : getenv("KV_TEST_DATA");
    char here[512];
    struct corpus seed = {0}, c = {0};
    unsigned files = 0;
    unsigned long allocs_before, allocs;
    size_t parses = 0;
    int rc = 1;

    if (data == NULL || data[0] == '\0') {
        /* tests/bench/bench_tlv.c -> tests/data */
        const char *slash = strrchr(__FILE__, '/');
        snprintf(here, sizeof(here), "%.*s/../data", slash != NULL ? (int)(slash - __FILE__) : 1,
                 slash != NULL ? __FILE__ : ".");
        data = here;
    }
    if (load_traces(data, &seed, &files) != 0) {
        fprintf(stderr, "bench_tlv: no traces under %s; using %zu embedded records\n", data,
                sizeof(fallback_records) / sizeof(fallback_records[0]));
        for (size_t i = 0; i < sizeof(fallback_records) / sizeof(fallback_records[0]); i++) {
            uint8_t body[512];
            int n = kv_hex_decode(fallback_records[i], body, sizeof(body));
            if (n <= 0 || corpus_add(&seed, body, (size_t)n) != 0)
                goto out;
        }
    }
    for (size_t i = 0; i < seed.nrec; i++) {
        if (kv_tlv_validate(seed.buf + seed.rec[i].off, seed.rec[i].len) != 0) {
            fprintf(stderr, "bench_tlv: record %zu of the traces does not validate\n", i);
            goto out;
        }
    }
    while (c.len < CORPUS_TARGET)
        for (size_t i = 0; i < seed.nrec; i++)
            if (corpus_add(&c, seed.buf + seed.rec[i].off, seed.rec[i].len) != 0)
                goto out;
    printf("bench_tlv: %zu distinct records from %u trace files, repeated to %zu records, "
           "%.2f MB; best of %d x %d rounds\n",
           seed.nrec, files, c.nrec, (double)c.len / 1e6, REPEATS, ROUNDS);

    C = &c;
    {
        double base = best_mbs(pass_bytesum), floor, mbs;
        report("baseline byte-sum", base, 0, 0, 0);
        floor = best_mbs(pass_floor);
        report("floor: bare header walk", floor, c.nrec, base, 0);
        allocs_before = bench_allocs;
        mbs = best_mbs(pass_validate);
        report("kv_tlv_validate per record", mbs, c.nrec, base, floor);
        objects = 0;
        mbs = best_mbs(pass_walk);
        report("kv_tlv_walk per record", mbs, c.nrec, base, floor);
        mbs = best_mbs(pass_find);
        report("kv_tlv_find(9F4A) per record", mbs, c.nrec, base, floor);
        mbs = best_mbs(pass_validate_whole);
        report("kv_tlv_validate whole buffer", mbs, 1, base, floor);
        allocs = bench_allocs - allocs_before;
        parses = (c.nrec * 3 + 1) * (size_t)ROUNDS * REPEATS;
    }
    printf("  objects per walk round: %lu (%.1f per record)\n", objects / ROUNDS / REPEATS,
           (double)objects / ROUNDS / REPEATS / (double)c.nrec);
    if (BENCH_COUNTING) {
        unsigned long check_before = bench_allocs;
        json_t *tree = NULL;
        (void)kv_tag_json_tree(c.buf + c.rec[0].off, c.rec[0].len, 0, &tree);
        json_decref(tree);
        printf("  heap allocations: %lu in %zu parses = %.3f per parse "
               "(counter check: one kv_tag_json_tree = %lu allocations)\n",
               allocs, parses, (double)allocs / (double)parses, bench_allocs - check_before);
    } else {
        printf("  heap allocations: not counted under AddressSanitizer\n");
    }
    if (sink == 0xFFFFFFFFu)
        printf("(sink %lu)\n", sink);
    rc = BENCH_COUNTING && allocs != 0 ? 1 : 0;
out:
    free(seed.buf);
    free(seed.rec);
    free(c.buf);
    free(c.rec);
    return rc;
}

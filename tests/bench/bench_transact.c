/*
 * Benchmark: full contact transactions (selection -> GPO -> records -> ODA ->
 * restrictions -> CVM -> terminal risk management and action analysis -> 1st
 * GENERATE AC -> the cryptogram verified in the HSM -> ARPC -> 2nd GENERATE
 * AC), per card personality, through PC/SC and in process, each next to the
 * bare APDU exchange of the same sequence in the same run: the C-APDUs of
 * the first in-process transaction are recorded and replayed to the card as
 * they are (no terminal logic, no HSM; VERIFY is left out of the replay,
 * since a replayed PIN block would count as a wrong PIN).
 *
 *   bench_transact [N] [--card NAME=PROFILE]... [--vcard PROFILE] [--no-pcsc]
 *
 * For each --card (--vcard PROFILE is --card card=PROFILE): N transactions on
 * the profile's card in process (kv_vcard_reader: our code, the card's RSA
 * and the HSM), N replays of the recorded sequence in process, and, unless
 * --no-pcsc, N transactions and N replays through PC/SC on the card in
 * $KORTVAGT_READER with the profile's AID selected (--select: the lab card
 * must hold that application, e.g. a multi-application card of every
 * personality, as tests/integration/emv_cards.sh builds it). Exit 77 when
 * there is no HSM or nothing to run. HSM from $KORTVAGT_TOKEN etc.; a
 * personalized profile needs $KORTVAGT_TRANSPORT_KEY (the lab's). Inside
 * `scripts/lab.sh run --`, with the cards of tests/integration/emv_cards.sh in
 * $D (emv_perso, emv_multi) and s_NAME.json each p_NAME.json with its
 * application's "aid" set to the one the multi-application card gives it:
 *   scripts/lab.sh insert $D/multi.json
 *   bench_transact 50 --card v10=$D/s_v10.json --card m16=$D/s_m16.json ...
 *
 * Environment: KV_BENCH_PIN (default 1234), KORTVAGT_CAPK (default
 * tests/data/capk/capk.json), KV_BENCH_IMK (default imk-ac). The PIN is lab
 * test data.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "apdu/capk.h"
#include "apdu/oda.h"
#include "apdu/reader.h"
#include "apdu/vcard/vcard.h"
#include "hsm/p11.h"
#include "hsm/p11_admin.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/base/secure.h"
#include "src/transact/transact.h"

#define MAX_CARDS 16
#define MAX_REC 64
#define REC_CMD_MAX 272

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* The C-APDUs of one transaction, as the transport saw them. */
typedef struct {
    uint8_t cmd[MAX_REC][REC_CMD_MAX];
    size_t len[MAX_REC];
    size_t n;
    int overflow;
} recording;

/* A transport that passes every exchange on to inner and records the command. */
typedef struct {
    kv_reader *inner;
    recording *rec;
} recorder;

static int rec_transmit(void *ctx, const uint8_t *c, size_t len, uint8_t *out, size_t cap,
                        size_t *outlen)
{
    recorder *rc = ctx;
    if (rc->rec != NULL) {
        if (rc->rec->n < MAX_REC && len <= REC_CMD_MAX) {
            memcpy(rc->rec->cmd[rc->rec->n], c, len);
            rc->rec->len[rc->rec->n++] = len;
        } else {
            rc->rec->overflow = 1;
        }
    }
    return kv_reader_transmit_raw(rc->inner, c, len, out, cap, outlen);
}

static int rec_atr(void *ctx, uint8_t *out, size_t cap, size_t *len)
{
    return kv_reader_atr(((recorder *)ctx)->inner, out, cap, len);
}

static int rec_reset(void *ctx)
{
    return kv_reader_reset(((recorder *)ctx)->inner);
}

static void rec_close(void *ctx)
{
    recorder *rc = ctx;
    kv_reader_free(rc->inner);
    free(rc);
}

static const kv_transport_ops rec_ops = {"recorder", rec_transmit, rec_atr, rec_reset, rec_close};

/* A reader over inner (taken) that records into rec. */
static int reader_recording(kv_reader *inner, recording *rec, kv_reader **out)
{
    recorder *rc = calloc(1, sizeof(*rc));
    if (rc == NULL) {
        kv_reader_free(inner);
        return KV_ERR_NOMEM;
    }
    rc->inner = inner;
    rc->rec = rec;
    return kv_reader_new(&rec_ops, rc, out);
}

typedef struct {
    unsigned long apdus;
    double ms_per_txn, tps;
    int approved;
    const char *outcome;
    const char *reason;
    int cvn;
} series;

/* A fresh reader: the in-process card vc after a reset, or PC/SC (reader) when vc is NULL. */
static int reader_open(kv_vcard *vc, const char *reader, kv_reader **rd)
{
    if (vc != NULL) {
        kv_vcard_reset(vc);
        return kv_vcard_reader(vc, rd);
    }
    return kv_reader_open_pcsc(reader, rd);
}

/* n transactions; the first one's C-APDUs into rec when rec is not NULL. */
static int run_txns(kv_vcard *vc, const char *reader, long n, const kv_transact_params *p,
                    recording *rec, series *out)
{
    kv_transact_result res;
    double t0 = now_ms();
    int r;

    memset(out, 0, sizeof(*out));
    for (long i = 0; i < n; i++) {
        kv_reader *rd = NULL;
        if ((r = reader_open(vc, reader, &rd)) != 0)
            return r;
        if (i == 0 && rec != NULL) {
            memset(rec, 0, sizeof(*rec));
            if ((r = reader_recording(rd, rec, &rd)) != 0)
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
            out->outcome = kv_transact_outcome_name(res.outcome);
            out->reason = res.reason;
            out->cvn = res.cvn;
        }
    }
    out->ms_per_txn = (now_ms() - t0) / (double)n;
    out->tps = 1000.0 / out->ms_per_txn;
    return 0;
}

/* n replays of the recorded sequence (VERIFY left out), each on a fresh reader. */
static int run_replay(kv_vcard *vc, const char *reader, long n, const recording *rec, series *out)
{
    uint8_t resp[KV_EMV_RESP_MAX];
    size_t rl;
    double t0 = now_ms();
    int r;

    memset(out, 0, sizeof(*out));
    for (long i = 0; i < n; i++) {
        kv_reader *rd = NULL;
        if ((r = reader_open(vc, reader, &rd)) != 0)
            return r;
        for (size_t k = 0; k < rec->n; k++) {
            if (rec->len[k] >= 2 && rec->cmd[k][1] == 0x20)
                continue;
            if ((r = kv_reader_transmit_raw(rd, rec->cmd[k], rec->len[k], resp, sizeof(resp),
                                            &rl)) != 0) {
                kv_reader_free(rd);
                fprintf(stderr, "bench_transact: replay %ld: %s\n", i, kv_strerror(r));
                return r;
            }
        }
        if (i == 0)
            out->apdus = kv_reader_apdu_count(rd);
        kv_reader_free(rd);
    }
    out->ms_per_txn = (now_ms() - t0) / (double)n;
    out->tps = 1000.0 / out->ms_per_txn;
    return 0;
}

/* The AID of the profile's first application (hex "aid"), for --select on the lab card. */
static int profile_aid(const char *path, uint8_t aid[16], size_t *len)
{
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e), *a;
    const char *s;
    int n = -1;

    a = json_array_get(json_object_get(j, "applications"), 0);
    if ((s = json_string_value(json_object_get(a, "aid"))) != NULL)
        n = kv_hex_decode(s, aid, 16);
    json_decref(j);
    if (n < 5)
        return KV_ERR_FORMAT;
    *len = (size_t)n;
    return 0;
}

static void print_row(const char *name, const char *path, const series *s, const series *rep)
{
    printf("%-5s %-7s cvn %-3d %-22s %3lu APDUs  %8.2f ms  %8.1f txn/s | bare replay %3lu APDUs "
           "%7.3f ms %8.1f seq/s | terminal+HSM %.2f ms (%.0f%%)\n",
           name, path, s->cvn, s->outcome, s->apdus, s->ms_per_txn, s->tps, rep->apdus,
           rep->ms_per_txn, rep->tps, s->ms_per_txn - rep->ms_per_txn,
           s->ms_per_txn > 0 ? 100.0 * (s->ms_per_txn - rep->ms_per_txn) / s->ms_per_txn : 0.0);
    if (s->approved < 1 && s->reason != NULL)
        printf("%-5s %-7s declined: %s\n", name, path, s->reason);
}

int main(int argc, char **argv)
{
    long n = argc > 1 && argv[1][0] != '-' ? strtol(argv[1], NULL, 10) : 20;
    const char *names[MAX_CARDS], *paths[MAX_CARDS];
    size_t ncards = 0;
    const char *pin_env = getenv("KV_BENCH_PIN");
    const char *capk = getenv("KORTVAGT_CAPK"), *reader = getenv("KORTVAGT_READER");
    kv_hsm *h = NULL;
    /* a front end of its own: the HSM settings from the environment */
    kv_hsm_config cfg = {.module = getenv("KORTVAGT_PKCS11_MODULE"),
                         .token = getenv("KORTVAGT_TOKEN")};
    const char *token_pin = getenv("KORTVAGT_PIN");
    kv_capk_store *cs = NULL;
    kv_secbuf *pin = NULL;
    kv_transact_params p;
    recording *rec = NULL;
    char why[256];
    int rc = 1, r, pcsc = 1, ran = 0;

    for (int i = 1; i < argc; i++) {
        char *eq;
        if ((strcmp(argv[i], "--card") == 0 || strcmp(argv[i], "--vcard") == 0) && i + 1 < argc &&
            ncards < MAX_CARDS) {
            if (argv[i][2] == 'c' && (eq = strchr(argv[i + 1], '=')) != NULL) {
                *eq = '\0';
                names[ncards] = argv[i + 1];
                paths[ncards++] = eq + 1;
            } else {
                names[ncards] = "card";
                paths[ncards++] = argv[i + 1];
            }
            i++;
        } else if (strcmp(argv[i], "--no-pcsc") == 0) {
            pcsc = 0;
        }
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
    if ((pin = kv_secbuf_new(16)) == NULL || (rec = calloc(1, sizeof(*rec))) == NULL)
        goto out;
    snprintf((char *)kv_secbuf_ptr(pin), 16, "%s", pin_env);
    memset(&p, 0, sizeof(p));
    p.amount = 12345;
    p.currency = 208;
    memcpy(p.currency_code, "DKK", 4);
    p.pin = pin;
    p.pin_len = strlen(pin_env);
    p.profile = "pos"; /* the attended POS, as `card transact` without a [terminal] */
    p.imk_ac = getenv("KV_BENCH_IMK");
    p.capks = cs;
    p.hsm = h;
    printf("bench_transact: %ld transactions per series; bare replay = the same C-APDUs "
           "without the terminal and the HSM (VERIFY left out)\n",
           n);
    for (size_t c = 0; c < ncards; c++) {
        kv_vcard *vc = NULL;
        uint8_t aid[16];
        size_t aid_len = 0;
        series tx, rp;

        if ((r = kv_vcard_load(paths[c], &vc, why, sizeof(why))) != 0) {
            fprintf(stderr, "bench_transact: %s: %s\n", paths[c], why);
            goto out;
        }
        p.select_aid = profile_aid(paths[c], aid, &aid_len) == 0 ? aid : NULL;
        p.select_aid_len = aid_len;
        /* in process: the same card, reset before each transaction */
        r = run_txns(vc, NULL, n, &p, rec, &tx);
        if (r == 0 && !rec->overflow)
            r = run_replay(vc, NULL, n, rec, &rp);
        kv_vcard_free(vc);
        if (r != 0)
            goto out;
        print_row(names[c], "inproc", &tx, &rp);
        ran = 1;
        /* PC/SC: the lab card, this personality's AID selected */
        if (pcsc) {
            recording *prec = calloc(1, sizeof(*prec));
            if (prec == NULL)
                goto out;
            r = run_txns(NULL, reader, n, &p, prec, &tx);
            if (r == 0)
                r = run_replay(NULL, reader, n, prec, &rp);
            free(prec);
            if (r == 0)
                print_row(names[c], "pcsc", &tx, &rp);
            else if (r == KV_ERR_PCSC_NO_SERVICE || r == KV_ERR_PCSC_NO_READER ||
                     r == KV_ERR_PCSC_NO_CARD || r == KV_ERR_NO_APPLICATION)
                printf("%-5s pcsc    skipped: %s\n", names[c], kv_strerror(r));
            else
                goto out;
        }
    }
    if (!ran) {
        fprintf(stderr, "bench_transact: no --card NAME=PROFILE\n");
        rc = 77;
        goto out;
    }
    rc = 0;
out:
    free(rec);
    kv_secbuf_free(pin);
    kv_hsm_close(h);
    kv_capk_store_free(cs);
    return rc;
}

/*
 * bench_authorize: authorization decisions per second from one process with
 * the SQLite store (WAL), as `kortvagt authorize --batch` and a daemon worker
 * make them: JSON request decode, PAN token (HMAC-SHA256 in the token),
 * SCA, exemptions and counters, the store transaction (BEGIN IMMEDIATE,
 * card, day sums, transaction row, evidence record with its HSM MAC), commit.
 *
 * It creates its own SoftHSM2 token in a temporary directory (SOFTHSM2_CONF
 * points there; the user's tokens are untouched), provisions it in a child
 * process (the "token" and "evidence" HMAC keys, a CVK and an IMK from
 * tests/data/VECTORS.md), and measures in the parent, one PKCS#11 session for the run.
 *
 * Rows (each with synchronous=NORMAL, durable across application crashes, and
 * synchronous=FULL, durable across power loss):
 *   baseline sqlite      BEGIN IMMEDIATE; INSERT ~700-byte row; UPDATE a counter;
 *                        COMMIT -- the floor a decision's transaction stands on
 *   hsm hmac             one CKM_SHA256_HMAC in SoftHSM2 (a decision needs 1, or 2
 *                        when the PAN token is not cached)
 *   decide, 1 card       contactless, no HSM-checked factor, PAN token cached
 *   decide, new cards    contactless, a different card each time (token HMAC each time)
 *   decide + cvc2        ecommerce with a CVC2 checked in the HSM (2 DES operations)
 *   decide + arqc        contact with an ARQC checked in the HSM (CVN 18: key
 *                        derivations, MAC algorithm 3)
 * and the ratio of each to the baseline of the same durability.
 *
 * Usage: bench_authorize [-n N] [--dir DIR]   (N decisions per row, default 20000;
 * DIR for the store files, default $TMPDIR or /tmp)
 */
#include "hsm/cvv.h"
#include "hsm/emv_crypto.h"
#include "hsm/keys.h"
#include "hsm/p11.h"
#include "hsm/p11_admin.h"
#include "src/app/keyed_hsm.h"
#include "src/authorize/authorize.h"
#include "src/authorize/factors_hsm.h"
#include "src/authorize/request.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/limits/limits.h"
#include "src/store/keyed.h"
#include "src/store/store.h"

#include <sqlite3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TOKEN "kv-bench-authz"
#define USER_PIN "bench-user-1"
#define SO_PIN "bench-so-12"
#define KEY_2DES "0123456789ABCDEFFEDCBA9876543210"

static char g_dir[512];

static void die(const char *what, int r)
{
    fprintf(stderr, "bench_authorize: %s: %s\n", what, kv_strerror(r));
    exit(1);
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- provisioning, in a child: SoftHSM2 is not fork-safe ---- */

static void provision(void)
{
    kv_hsm_config cfg = {.token = TOKEN};
    kv_hsm *h = NULL;
    kv_hsm_token_info info;
    kv_keys_result res;
    uint8_t key[16];
    char why[256] = "";
    int r;

    if ((r = kv_hsm_open_ex(&cfg, KV_HSM_OPEN_NO_TOKEN, &h)) != 0)
        die(kv_hsm_last_error(NULL), r);
    if ((r = kv_hsm_token_init(h, TOKEN, (const uint8_t *)SO_PIN, strlen(SO_PIN),
                               (const uint8_t *)USER_PIN, strlen(USER_PIN), &info)) != 0)
        die(kv_hsm_last_error(h), r);
    kv_hsm_close(h);
    if ((r = kv_hsm_open_pin(&cfg, (const uint8_t *)USER_PIN, strlen(USER_PIN), &h)) != 0)
        die(kv_hsm_last_error(NULL), r);
    if ((r = kv_keys_generate(h, KV_KEY_LABEL_TOKEN, KV_KEY_HMAC, KV_USAGE_TOKEN, NULL, 0, &res,
                              why, sizeof(why))) != 0 ||
        (r = kv_keys_generate(h, KV_KEY_LABEL_EVIDENCE, KV_KEY_HMAC, KV_USAGE_EVIDENCE, NULL, 0,
                              &res, why, sizeof(why))) != 0)
        die(why, r);
    kv_hex_decode(KEY_2DES, key, sizeof(key));
    if ((r = kv_keys_import(h, "cvk", KV_KEY_DES2, KV_USAGE_CVK, NULL, 0, key, 16, NULL, 0, &res,
                            why, sizeof(why))) != 0 ||
        (r = kv_keys_import(h, "imk-ac", KV_KEY_DES2, KV_USAGE_IMK, NULL, 0, key, 16, NULL, 0, &res,
                            why, sizeof(why))) != 0)
        die(why, r);
    kv_hsm_close(h);
}

static void setup_token(void)
{
    char conf[600];
    FILE *f;
    pid_t pid;
    int status;

    snprintf(g_dir, sizeof(g_dir), "%s/kv-bench-authz-XXXXXX",
             getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(g_dir) == NULL)
        die("mkdtemp", KV_ERR_IO);
    snprintf(conf, sizeof(conf), "%s/tokens", g_dir);
    if (mkdir(conf, 0700) != 0)
        die("mkdir", KV_ERR_IO);
    snprintf(conf, sizeof(conf), "%s/softhsm2.conf", g_dir);
    if ((f = fopen(conf, "w")) == NULL)
        die("softhsm2.conf", KV_ERR_IO);
    fprintf(f,
            "directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n"
            "slots.removable = false\n",
            g_dir);
    fclose(f);
    setenv("SOFTHSM2_CONF", conf, 1);
    setenv("KORTVAGT_PIN", USER_PIN, 1);
    unsetenv("KORTVAGT_PIN_FILE");
    if ((pid = fork()) < 0)
        die("fork", KV_ERR_INTERNAL);
    if (pid == 0) {
        provision();
        _exit(0);
    }
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("provisioning the token", KV_ERR_HSM);
}

static void cleanup(void)
{
    char cmd[600];
    if (g_dir[0] == '\0')
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_authorize: could not remove %s\n", g_dir);
}

/* ---- the baseline: a bare SQLite transaction ---- */

static double bench_sqlite(const char *path, int full, int n)
{
    sqlite3 *db;
    sqlite3_stmt *ins, *upd;
    char blob[700];
    double t0;
    memset(blob, 'x', sizeof(blob));
    unlink(path);
    if (sqlite3_open(path, &db) != SQLITE_OK)
        die("sqlite open", KV_ERR_STORE);
    sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
    sqlite3_exec(db, full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", NULL, NULL,
                 NULL);
    sqlite3_exec(db,
                 "CREATE TABLE t(id INTEGER PRIMARY KEY, body BLOB);"
                 "CREATE TABLE c(k INTEGER PRIMARY KEY, n INTEGER); INSERT INTO c VALUES (1, 0);",
                 NULL, NULL, NULL);
    sqlite3_prepare_v2(db, "INSERT INTO t(body) VALUES (?1)", -1, &ins, NULL);
    sqlite3_prepare_v2(db, "UPDATE c SET n = n + 1 WHERE k = 1", -1, &upd, NULL);
    t0 = now();
    for (int i = 0; i < n; i++) {
        sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        sqlite3_bind_blob(ins, 1, blob, sizeof(blob), SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE || sqlite3_step(upd) != SQLITE_DONE)
            die("sqlite step", KV_ERR_STORE);
        sqlite3_reset(ins);
        sqlite3_reset(upd);
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    }
    double rate = n / (now() - t0);
    sqlite3_finalize(ins);
    sqlite3_finalize(upd);
    sqlite3_close(db);
    return rate;
}

/* ---- decisions ---- */

enum { ROW_ONE_CARD, ROW_NEW_CARDS, ROW_CVC2, ROW_ARQC, ROW__COUNT };
static const char *const row_names[ROW__COUNT] = {
    "decide, 1 card (token cached)",
    "decide, new card each time",
    "decide + cvc2 in the HSM",
    "decide + arqc in the HSM",
};

/* A Luhn-irrelevant 16-digit PAN for card i. */
static void pan_for(int i, char out[17])
{
    snprintf(out, 17, "47617390%08u", (unsigned)i % 100000000u);
}

static int make_request(int row, int i, const char *cvc2, const char *arqc, char *buf, size_t cap)
{
    char pan[17];
    pan_for(row == ROW_ONE_CARD || row == ROW_CVC2 || row == ROW_ARQC ? 1 : i, pan);
    switch (row) {
    case ROW_CVC2:
        return snprintf(buf, cap,
                        "{\"card\":{\"pan\":\"%s\",\"expiry\":\"2812\"},\"at\":\"2026-03-01T10:"
                        "00:00Z\",\"channel\":\"ecommerce\",\"amount\":10000,\"currency\":\"DKK\","
                        "\"merchant\":{\"name\":\"Shop A\",\"mcc\":\"5411\"},\"factors\":[{"
                        "\"type\":\"cvc2\",\"cvk\":\"cvk\",\"value\":\"%s\"}]}",
                        pan, cvc2);
    case ROW_ARQC:
        /* the same ARQC each time is a replay after the first: declined, but fully checked */
        return snprintf(buf, cap,
                        "{\"card\":{\"pan\":\"%s\",\"expiry\":\"2812\",\"psn\":\"00\"},\"at\":"
                        "\"2026-03-01T10:00:00Z\",\"channel\":\"contact\",\"amount\":10000,"
                        "\"currency\":\"DKK\",\"merchant\":{\"name\":\"Shop A\",\"mcc\":\"5411\"},"
                        "\"factors\":[{\"type\":\"pin_offline\",\"verified\":true},{\"type\":"
                        "\"chip_cryptogram\",\"imk\":\"imk-ac\",\"cvn\":18,\"arqc\":\"%s\","
                        "\"data\":\"0000000100000000000000000208000000000002082603010039123456"
                        "78\",\"atc\":\"001C\"}]}",
                        pan, arqc);
    default:
        return snprintf(buf, cap,
                        "{\"card\":{\"pan\":\"%s\",\"expiry\":\"2812\"},\"at\":\"2026-03-01T10:"
                        "00:00Z\",\"channel\":\"contactless\",\"amount\":100,\"currency\":\"DKK\","
                        "\"merchant\":{\"name\":\"Shop A\",\"mcc\":\"5411\"}}",
                        pan);
    }
}

struct ctx {
    kv_hsm *h;
    kv_hsm_mac token_key, evidence_key;
    kv_authz_factors *factors;
    kv_limits_config limits;
    char cvc2[4];
    char arqc[17];
};

static double bench_decisions(struct ctx *c, const char *path, int full, int row, int n,
                              int *approved)
{
    kv_store *s = NULL;
    kv_authz *a = NULL;
    kv_authz_config cfg;
    kv_auth_request *req = calloc(1, sizeof(*req));
    kv_authz_result res;
    char err[256], buf[1024], wal[720], shm[720];
    double t0, rate;
    int r;

    unlink(path);
    snprintf(wal, sizeof(wal), "%s-wal", path);
    snprintf(shm, sizeof(shm), "%s-shm", path);
    unlink(wal);
    unlink(shm);
    if (req == NULL)
        die("calloc", KV_ERR_NOMEM);
    if ((r = kv_store_open_sqlite(path, full ? KV_SQLITE_SYNC_FULL : KV_SQLITE_SYNC_NORMAL, &s, err,
                                  sizeof(err))) != 0)
        die(err, r);
    memset(&cfg, 0, sizeof(cfg));
    cfg.store = s;
    cfg.limits = &c->limits;
    cfg.token_mac = kv_hsm_mac_get(&c->token_key);
    cfg.evidence_mac = kv_hsm_mac_get(&c->evidence_key);
    cfg.verifier = kv_authz_factors_verifier(c->factors);
    if ((r = kv_authz_new(&cfg, &a)) != 0)
        die("authz", r);
    *approved = 0;
    t0 = now();
    for (int i = 0; i < n; i++) {
        int len = make_request(row, i, c->cvc2, c->arqc, buf, sizeof(buf));
        if ((r = kv_auth_request_parse(buf, (size_t)len, req, err, sizeof(err))) != 0)
            die(err, r);
        if ((r = kv_authz_decide(a, req, &res)) != 0)
            die(kv_authz_last_error(a), r);
        *approved += res.decision == KV_DECISION_APPROVE;
    }
    rate = n / (now() - t0);
    kv_authz_free(a);
    kv_store_close(s);
    free(req);
    return rate;
}

int main(int argc, char **argv)
{
    int n = 20000;
    const char *dir = NULL;
    struct ctx c;
    kv_hsm_config hcfg = {.token = TOKEN};
    kv_hsm_key cvk, imk;
    char path[700];
    double base[2], hmac_rate;
    int r;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            n = atoi(argv[++i]);
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else {
            fprintf(stderr, "Usage: bench_authorize [-n N] [--dir DIR]\n");
            return 2;
        }
    }
    if (n < 100)
        n = 100;
    setup_token();
    atexit(cleanup);
    if (dir == NULL)
        dir = g_dir;

    memset(&c, 0, sizeof(c));
    if ((r = kv_hsm_open_pin(&hcfg, (const uint8_t *)USER_PIN, strlen(USER_PIN), &c.h)) != 0)
        die(kv_hsm_last_error(NULL), r);
    if ((r = kv_hsm_mac_init(&c.token_key, c.h, KV_KEY_LABEL_TOKEN)) != 0 ||
        (r = kv_hsm_mac_init(&c.evidence_key, c.h, KV_KEY_LABEL_EVIDENCE)) != 0 ||
        (r = kv_hsm_key_find(c.h, "cvk", &cvk)) != 0 || (r = kv_hsm_key_find(c.h, "imk-ac", &imk)))
        die(kv_hsm_last_error(c.h), r);
    if ((r = kv_authz_factors_new(c.h, &c.factors)) != 0)
        die("factors", r);
    kv_limits_defaults(&c.limits);
    c.limits.contactless.count_max = INT64_MAX / 2; /* every contactless payment is approved */
    c.limits.remote.count_max = INT64_MAX / 2;

    /* the right CVC2 and ARQC for the requests, computed in the token */
    {
        char pan[17];
        uint8_t data[64], ac[8];
        kv_emv_params p;
        kv_emv_txn t;
        pan_for(1, pan);
        if ((r = kv_hsm_cvv_generate(c.h, &cvk, pan, "2812", "000", c.cvc2)) != 0)
            die("cvv", r);
        int dl = kv_hex_decode("000000010000000000000000020800000000000208260301003912345678", data,
                               sizeof(data));
        memset(&t, 0, sizeof(t));
        t.pan = pan;
        t.psn = "00";
        t.atc[1] = 0x1C;
        t.data = data;
        t.data_len = (size_t)dl;
        if ((r = kv_emv_params_for_cvn(18, &p)) != 0 ||
            (r = kv_hsm_arqc_generate(c.h, &imk, &p, &t, ac)) != 0)
            die("arqc", r);
        kv_hex_encode(ac, 8, c.arqc);
    }

    printf("bench_authorize: %d decisions per row, one process, one PKCS#11 session (SoftHSM2),\n"
           "store files in %s\n\n",
           n, dir);
    printf("%-34s %12s %12s %8s %8s\n", "row", "NORMAL /s", "FULL /s", "x base", "x base");

    for (int full = 0; full <= 1; full++) {
        snprintf(path, sizeof(path), "%s/baseline.db", dir);
        base[full] = bench_sqlite(path, full, full ? n / 10 : n);
    }
    printf("%-34s %12.0f %12.0f %8.2f %8.2f\n", "baseline sqlite txn (insert+update)", base[0],
           base[1], 1.0, 1.0);
    {
        uint8_t in[700], out[32];
        memset(in, 'x', sizeof(in));
        double t0 = now();
        for (int i = 0; i < n; i++)
            if ((r = kv_hsm_hmac_sha256(c.h, &c.evidence_key.key, in, sizeof(in), out)) != 0)
                die("hmac", r);
        hmac_rate = n / (now() - t0);
        printf("%-34s %12.0f %12s\n", "hsm hmac-sha256 (700 bytes)", hmac_rate, "-");
    }
    for (int row = 0; row < ROW__COUNT; row++) {
        double rate[2];
        int approved[2];
        for (int full = 0; full <= 1; full++) {
            snprintf(path, sizeof(path), "%s/decide.db", dir);
            /* FULL fsyncs every commit: a tenth of the decisions is enough to measure it */
            rate[full] = bench_decisions(&c, path, full, row, full ? n / 10 : n, &approved[full]);
        }
        printf("%-34s %12.0f %12.0f %8.2f %8.2f   (%d/%d approved)\n", row_names[row], rate[0],
               rate[1], rate[0] / base[0], rate[1] / base[1], approved[0], n);
    }
    printf("\ntarget: >= 10000 decisions/s without HSM-checked factors (synchronous=NORMAL)\n");
    kv_authz_factors_free(c.factors);
    kv_hsm_close(c.h);
    return 0;
}

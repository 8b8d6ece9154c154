/*
 * The SQLite store and the authorization engine on it: schema and
 * migrations, card state, daily sums, one-time codes; and sequences of
 * requests per src/RULES.md §1 that walk the counters to SCA and reset them,
 * reverse approvals, run recurring series, and hit the ATM, gambling and
 * child-card limits across midnight in Copenhagen.
 */
#include "tests/unit/authz_fixture.h"
#include "hsm/keys.h"
#include "hsm/p11_admin.h"
#include "src/app/keyed_hsm.h"
#include "src/evidence/evidence.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <sys/stat.h>

static void test_schema(void **state)
{
    fx f;
    sqlite3 *db;
    sqlite3_stmt *st;
    char err[256];
    kv_store *s2 = NULL;
    (void)state;
    if (fx_pg_url() != NULL) {
        /* PostgreSQL: the schema is checked by test_store_pg.sh with psql */
        assert_int_equal(fx_open(&f, NULL), 0);
        assert_string_equal(kv_store_backend(f.store), "postgresql");
        fx_close(&f);
        return;
    }
    assert_int_equal(fx_open(&f, NULL), 0);
    assert_string_equal(kv_store_backend(f.store), "sqlite");
    assert_int_equal(sqlite3_open(f.path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT version FROM schema_version", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), KV_STORE_SCHEMA_VERSION);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    /* a store written by a newer kortvagt is refused */
    assert_int_equal(sqlite3_exec(db, "UPDATE schema_version SET version = 99", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(kv_store_open_sqlite(f.path, KV_SQLITE_SYNC_NORMAL, &s2, err, sizeof(err)),
                     KV_ERR_STORE_SCHEMA);
    assert_non_null(strstr(err, "schema version 99"));
    fx_close(&f);

    /* URLs */
    assert_int_equal(kv_store_open("mysql://x", &s2, err, sizeof(err)), KV_ERR_ARG);
    assert_int_equal(kv_store_open("sqlite:", &s2, err, sizeof(err)), KV_ERR_ARG);
    assert_int_equal(kv_store_open("sqlite:/tmp/x.db?fast=1", &s2, err, sizeof(err)), KV_ERR_ARG);
#ifdef KV_HAVE_LIBPQ
    /* nothing listens on port 1 */
    assert_int_equal(kv_store_open("postgresql://127.0.0.1:1/x", &s2, err, sizeof(err)),
                     KV_ERR_STORE_UNAVAILABLE);
    assert_non_null(strstr(err, "connect"));
#else
    assert_int_equal(kv_store_open("postgresql://localhost/x", &s2, err, sizeof(err)),
                     KV_ERR_UNSUPPORTED);
#endif
    assert_int_equal(kv_store_open("sqlite:/nonexistent/dir/x.db", &s2, err, sizeof(err)),
                     KV_ERR_STORE_UNAVAILABLE);
}

/* URL options, and checkpoints left to another connection (store.h). */
static void test_url_options_and_checkpoint(void **state)
{
    static const struct {
        const char *query;
        int want;
    } rows[] = {
        {"", 0},
        {"?synchronous=normal", 0},
        {"?synchronous=full", 0},
        {"?checkpoint=auto", 0},
        {"?checkpoint=external", 0},
        {"?synchronous=full&checkpoint=external", 0},
        {"?checkpoint=external&synchronous=normal", 0},
        {"?checkpoint=sometimes", KV_ERR_ARG},
        {"?synchronous=full&", KV_ERR_ARG},
        {"?synchronous=fullx", KV_ERR_ARG},
        {"?checkpoint=external&fast=1", KV_ERR_ARG},
    };
    char dir[] = "/tmp/kv-store-url-XXXXXX", url[256], err[256], wal[128];
    struct stat st;
    (void)state;
    assert_non_null(mkdtemp(dir));
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        kv_store *s = NULL;
        int r;
        snprintf(url, sizeof(url), "sqlite:%s/u.db%s", dir, rows[i].query);
        r = kv_store_open(url, &s, err, sizeof(err));
        if (r != rows[i].want)
            print_error("row %zu (%s): got %d, want %d (%s)\n", i, rows[i].query, r, rows[i].want,
                        err);
        assert_int_equal(r, rows[i].want);
        if (r == 0) {
            assert_int_equal(kv_store_checkpoint(s), 0);
            kv_store_close(s);
        } else {
            assert_null(s);
            assert_non_null(strstr(err, "option"));
        }
    }
    /* with checkpoint=external, commits leave the WAL to kv_store_checkpoint */
    {
        kv_store *s = NULL;
        kv_card_state c;
        snprintf(url, sizeof(url), "sqlite:%s/u.db?checkpoint=external", dir);
        assert_int_equal(kv_store_open(url, &s, err, sizeof(err)), 0);
        memset(&c, 0, sizeof(c));
        for (int i = 0; i < 50; i++) {
            c.token[0] = (uint8_t)i;
            assert_int_equal(kv_store_begin(s, 1), 0);
            assert_int_equal(kv_store_card_put(s, &c), 0);
            assert_int_equal(kv_store_commit(s), 0);
        }
        snprintf(wal, sizeof(wal), "%s/u.db-wal", dir);
        assert_int_equal(stat(wal, &st), 0);
        assert_true(st.st_size > 0);
        assert_int_equal(kv_store_checkpoint(s), 0);
        kv_store_close(s);
    }
    snprintf(url, sizeof(url), "rm -rf '%s'", dir);
    assert_int_equal(system(url), 0);
}

static void test_store_ops(void **state)
{
    fx f;
    kv_card_state c;
    int found = 1, fresh = 0;
    int64_t sum = -1, id = -1;
    uint8_t tok[KV_TOKEN_LEN], hash[32], code[32];
    (void)state;
    assert_int_equal(fx_open(&f, NULL), 0);
    memset(tok, 0x5A, sizeof(tok));
    memset(code, 0x33, sizeof(code));
    assert_int_equal(kv_store_card_get(f.store, tok, &c, &found), 0);
    assert_int_equal(found, 0);
    assert_int_equal(c.policy.ecommerce_enabled, 1);
    assert_int_equal(c.policy.spend_single_max, -1);
    assert_int_equal(kv_store_begin(f.store, 1), 0);
    c.policy.contactless.count = 4;
    c.policy.remote.epoch = 7;
    snprintf(c.pan_masked, sizeof(c.pan_masked), "476173******0119");
    assert_int_equal(kv_store_card_put(f.store, &c), 0);
    assert_int_equal(kv_store_day_add(f.store, tok, "2026-03-01", KV_DAY_ATM, 1000), 0);
    assert_int_equal(kv_store_day_add(f.store, tok, "2026-03-01", KV_DAY_ATM, 500), 0);
    assert_int_equal(kv_store_day_add(f.store, tok, "2026-03-02", KV_DAY_ATM, 7), 0);
    assert_int_equal(kv_store_code_use(f.store, code, 1, &fresh), 0);
    assert_int_equal(fresh, 1);
    assert_int_equal(kv_store_code_use(f.store, code, 2, &fresh), 0);
    assert_int_equal(fresh, 0);
    assert_int_equal(kv_store_commit(f.store), 0);
    assert_int_equal(kv_store_card_get(f.store, tok, &c, &found), 0);
    assert_int_equal(found, 1);
    assert_int_equal(c.policy.contactless.count, 4);
    assert_int_equal(c.policy.remote.epoch, 7);
    assert_string_equal(c.pan_masked, "476173******0119");
    assert_int_equal(kv_store_day_sum(f.store, tok, "2026-03-01", KV_DAY_ATM, &sum), 0);
    assert_int_equal(sum, 1500);
    assert_int_equal(kv_store_day_sum(f.store, tok, "2026-03-01", KV_DAY_GAMBLING, &sum), 0);
    assert_int_equal(sum, 0);

    /* a rolled-back transaction leaves nothing */
    assert_int_equal(kv_store_begin(f.store, 1), 0);
    assert_int_equal(kv_store_day_add(f.store, tok, "2026-03-01", KV_DAY_ATM, 99), 0);
    kv_store_rollback(f.store);
    assert_int_equal(kv_store_day_sum(f.store, tok, "2026-03-01", KV_DAY_ATM, &sum), 0);
    assert_int_equal(sum, 1500);

    assert_int_equal(kv_store_evidence_head(f.store, &id, hash), 0);
    assert_int_equal(id, 0);
    fx_close(&f);
}

struct step {
    const char *at;
    const char *channel;
    long long amount;
    const char *mcc;
    const char *factors;
    const char *extra;
    kv_decision want;
    const char *reason;
    long long counter; /* the response's counter; -1: none shown */
};

static void run_steps(fx *f, const struct step *steps, size_t n, int64_t *ids)
{
    for (size_t i = 0; i < n; i++) {
        kv_authz_result res;
        int r = fx_auth(f, FX_PAN, steps[i].at, steps[i].channel, steps[i].amount, "Shop A",
                        steps[i].mcc, steps[i].factors, steps[i].extra, &res);
        assert_int_equal(r, 0);
        long long counter = res.has_counter ? res.counter_value : -1;
        if (res.decision != steps[i].want || strcmp(res.reason, steps[i].reason) != 0 ||
            counter != steps[i].counter) {
            fprintf(stderr, "step %zu (%s %lld at %s): want %s/%s counter %lld got %s/%s %lld\n", i,
                    steps[i].channel, steps[i].amount, steps[i].at, kv_decision_name(steps[i].want),
                    steps[i].reason, steps[i].counter, kv_decision_name(res.decision), res.reason,
                    counter);
            fail();
        }
        if (ids != NULL)
            ids[i] = res.evidence_id;
    }
}

#define T0 "2026-03-01T10:00:00Z"
#define T3 "2026-03-03T10:00:00Z"
#define APPROVE KV_DECISION_APPROVE
#define SCA KV_DECISION_SCA_REQUIRED
#define DECLINE KV_DECISION_DECLINE
#define CHIP_PIN F_PIN_OFF "," F_CHIP_UP

static void test_contactless_counter_walk(void **state)
{
    fx f;
    int64_t ids[16];
    (void)state;
    const struct step steps[] = {
        {T0, "contactless", 35000, "5411", "", "", APPROVE, "contactless_low_value", 1},
        {T0, "contactless", 35001, "5411", "", "", SCA, "contactless_single_max", 1},
        {T0, "contactless", 100, "5411", "", "", APPROVE, "contactless_low_value", 2},
        {T0, "contactless", 100, "5411", "", "", APPROVE, "contactless_low_value", 3},
        {T0, "contactless", 100, "5411", "", "", APPROVE, "contactless_low_value", 4},
        {T0, "contactless", 100, "5411", "", "", APPROVE, "contactless_low_value", 5},
        /* the 6th since the last SCA */
        {T0, "contactless", 100, "5411", "", "", SCA, "contactless_counter", 5},
        /* a remote payment does not touch the contactless family */
        {T0, "ecommerce", 100, "5411", "", "", APPROVE, "low_value_remote", 1},
        /* contactless with PIN: SCA at a non-remote transaction resets the counter */
        {T0, "contactless", 100, "5411", CHIP_PIN, "", APPROVE, "sca_satisfied", 0},
        {T0, "contactless", 100, "5411", "", "", APPROVE, "contactless_low_value", 1},
        /* and so does chip+PIN at a shop or an ATM */
        {T0, "contactless", 100, "5411", "", "", APPROVE, "contactless_low_value", 2},
        {T0, "atm", 10000, "6011", CHIP_PIN, "", APPROVE, "sca_satisfied", 0},
        /* the remote family resets only on a remote SCA */
        {T0, "ecommerce", 100, "5411", "", "", APPROVE, "low_value_remote", 2},
    };
    assert_int_equal(fx_open(&f, NULL), 0);
    run_steps(&f, steps, sizeof(steps) / sizeof(steps[0]), ids);
    fx_close(&f);
}

static void test_amount_counter_and_reversal(void **state)
{
    fx f;
    kv_limits_config l;
    int64_t ids[8];
    kv_authz_reversal rv;
    kv_authz_result res;
    (void)state;
    kv_limits_defaults(&l);
    l.contactless.counter = KV_COUNTER_AMOUNT; /* 112500 */
    const struct step steps[] = {
        {T0, "contactless", 35000, "5411", "", "", APPROVE, "contactless_low_value", 35000},
        {T0, "contactless", 35000, "5411", "", "", APPROVE, "contactless_low_value", 70000},
        {T0, "contactless", 35000, "5411", "", "", APPROVE, "contactless_low_value", 105000},
        {T0, "contactless", 7500, "5411", "", "", APPROVE, "contactless_low_value", 112500},
        /* would take the sum past the max */
        {T0, "contactless", 1, "5411", "", "", SCA, "contactless_counter", 112500},
    };
    assert_int_equal(fx_open(&f, &l), 0);
    run_steps(&f, steps, sizeof(steps) / sizeof(steps[0]), ids);

    /* a reversal takes its amount back out */
    assert_int_equal(kv_authz_reverse(f.authz, ids[1], &rv), 0);
    assert_int_equal(rv.counter_value, 77500);
    assert_true(rv.evidence_id > ids[4]);
    /* twice is refused; so is reversing a decision that was not an approval */
    assert_int_equal(kv_authz_reverse(f.authz, ids[1], &rv), KV_ERR_POLICY);
    assert_non_null(strstr(kv_authz_last_error(f.authz), "already reversed"));
    assert_int_equal(kv_authz_reverse(f.authz, ids[4], &rv), KV_ERR_POLICY);
    assert_int_equal(kv_authz_reverse(f.authz, 9999, &rv), KV_ERR_NOT_FOUND);

    assert_int_equal(fx_auth(&f, FX_PAN, T0, "contactless", 35000, "Shop A", "5411", "", "", &res),
                     0);
    assert_int_equal(res.decision, APPROVE);
    assert_int_equal(res.counter_value, 112500);

    /* after an SCA reset, reversing an older payment leaves the new counter alone */
    assert_int_equal(fx_auth(&f, FX_PAN, T0, "contact", 100, "Shop A", "5411", CHIP_PIN, "", &res),
                     0);
    assert_int_equal(res.counter_value, 0);
    assert_int_equal(kv_authz_reverse(f.authz, ids[0], &rv), 0);
    assert_int_equal(rv.counter_value, 0);
    fx_close(&f);
}

static void test_atm_midnight_copenhagen(void **state)
{
    fx f;
    int64_t ids[8];
    kv_authz_reversal rv;
    kv_authz_result res;
    (void)state;
    const struct step steps[] = {
        /* 2026-03-01 23:59 in Copenhagen (CET, UTC+1) */
        {"2026-03-01T22:59:00Z", "atm", 150000, "6011", CHIP_PIN, "", APPROVE, "sca_satisfied", 0},
        {"2026-03-01T22:59:30Z", "atm", 50000, "6011", CHIP_PIN, "", APPROVE, "sca_satisfied", 0},
        {"2026-03-01T22:59:59Z", "atm", 1, "6011", CHIP_PIN, "", DECLINE, "limit_atm_daily", 0},
        /* 00:00 on 2 March in Copenhagen, still 1 March in UTC: a new day */
        {"2026-03-01T23:00:00Z", "atm", 200000, "6011", CHIP_PIN, "", APPROVE, "sca_satisfied", 0},
        {"2026-03-01T23:30:00Z", "atm", 1, "6011", CHIP_PIN, "", DECLINE, "limit_atm_daily", 0},
        /* summer time: midnight is 22:00 UTC */
        {"2026-07-01T21:59:59Z", "atm", 200000, "6011", CHIP_PIN, "", APPROVE, "sca_satisfied", 0},
        {"2026-07-01T22:00:00Z", "atm", 200000, "6011", CHIP_PIN, "", APPROVE, "sca_satisfied", 0},
        /* cash at a shop counter is not ATM cash */
        {"2026-07-01T22:10:00Z", "contact", 1000, "5411", CHIP_PIN, "", APPROVE, "sca_satisfied",
         0},
    };
    assert_int_equal(fx_open(&f, NULL), 0);
    run_steps(&f, steps, sizeof(steps) / sizeof(steps[0]), ids);
    /* only approved amounts count, and a reversal frees its amount on its own day */
    assert_int_equal(kv_authz_reverse(f.authz, ids[3], &rv), 0);
    assert_int_equal(fx_auth(&f, FX_PAN, "2026-03-02T10:00:00Z", "atm", 200000, "ATM", "6011",
                             CHIP_PIN, "", &res),
                     0);
    assert_int_equal(res.decision, APPROVE);
    fx_close(&f);
}

static void test_gambling_and_child_card(void **state)
{
    fx f;
    kv_card_settings_change ch;
    kv_card_state st;
    int64_t ev;
    (void)state;
    const struct step gambling[] = {
        /* the four MCCs share one daily sum of 500000 */
        {T0, "contact", 200000, "7995", CHIP_PIN, "", APPROVE, "sca_satisfied", 0},
        {T0, "contact", 200000, "7800", CHIP_PIN, "", APPROVE, "sca_satisfied", 0},
        {T0, "contact", 100000, "7801", CHIP_PIN, "", APPROVE, "sca_satisfied", 0},
        {T0, "contact", 1, "7802", CHIP_PIN, "", DECLINE, "limit_gambling_daily", 0},
        {T0, "contact", 1, "5411", CHIP_PIN, "", APPROVE, "sca_satisfied", 0},
        {"2026-03-01T23:00:00Z", "contact", 500000, "7802", CHIP_PIN, "", APPROVE, "sca_satisfied",
         0},
    };
    assert_int_equal(fx_open(&f, NULL), 0);
    run_steps(&f, gambling, sizeof(gambling) / sizeof(gambling[0]), NULL);
    fx_close(&f);

    /* a parent sets the child's wallet card limits */
    assert_int_equal(fx_open(&f, NULL), 0);
    memset(&ch, 0, sizeof(ch));
    ch.set_single = 1;
    ch.spend_single_max = 20000;
    ch.set_daily = 1;
    ch.spend_daily_max = 30000;
    assert_int_equal(kv_authz_card_settings(f.authz, FX_PAN, &ch, &st, &ev), 0);
    assert_int_equal(st.policy.spend_single_max, 20000);
    const struct step child[] = {
        {T0, "contactless", 20001, "5411", "", "", DECLINE, "limit_card", 0},
        {T0, "contactless", 20000, "5411", "", "", APPROVE, "contactless_low_value", 1},
        /* a wallet payment with SCA at a shop resets the contactless counter */
        {T0, "wallet", 10000, "5411", F_WALLET "," F_BIO, "", APPROVE, "sca_satisfied", 0},
        {T0, "contactless", 1, "5411", "", "", DECLINE, "limit_card", 0},
        {"2026-03-02T08:00:00Z", "contactless", 1, "5411", "", "", APPROVE, "contactless_low_value",
         1},
    };
    run_steps(&f, child, sizeof(child) / sizeof(child[0]), NULL);

    /* e-commerce switched off, then on again */
    memset(&ch, 0, sizeof(ch));
    ch.set_ecommerce = 1;
    ch.ecommerce_enabled = 0;
    assert_int_equal(kv_authz_card_settings(f.authz, FX_PAN, &ch, &st, &ev), 0);
    const struct step ecom[] = {
        {T3, "ecommerce", 100, "5411", "", "", DECLINE, "ecommerce_disabled", 0},
        {T3, "moto", 100, "5411", "", "", APPROVE, "moto_out_of_scope", -1},
        {T3, "contactless", 100, "5411", "", "", APPROVE, "contactless_low_value", 2},
    };
    run_steps(&f, ecom, sizeof(ecom) / sizeof(ecom[0]), NULL);
    ch.ecommerce_enabled = 1;
    assert_int_equal(kv_authz_card_settings(f.authz, FX_PAN, &ch, &st, &ev), 0);
    const struct step ecom2[] = {
        {T3, "ecommerce", 100, "5411", "", "", APPROVE, "low_value_remote", 1},
    };
    run_steps(&f, ecom2, 1, NULL);
    fx_close(&f);
}

static void test_recurring_and_trusted(void **state)
{
    fx f;
    char bound[256], fs[512];
    (void)state;
    fx_sms(bound, sizeof(bound), 50000, "Shop A");
    snprintf(fs, sizeof(fs), "%s,%s", F_PASSWORD, bound);
    const struct step steps[] = {
        /* a later payment before the series' first is stored: no exemption */
        {T0, "ecommerce", 50000, "5411", "", ",\"recurring\":{\"series\":\"S1\",\"first\":false}",
         SCA, "remote_single_max", 0},
        /* the first payment with SCA */
        {T0, "ecommerce", 50000, "5411", fs, ",\"recurring\":{\"series\":\"S1\",\"first\":true}",
         APPROVE, "sca_satisfied", 0},
        {T0, "ecommerce", 50000, "5411", "", ",\"recurring\":{\"series\":\"S1\",\"first\":false}",
         APPROVE, "recurring", 1},
        /* another amount is not the same series payment */
        {T0, "ecommerce", 50001, "5411", "", ",\"recurring\":{\"series\":\"S1\",\"first\":false}",
         SCA, "remote_single_max", 1},
        {T0, "ecommerce", 50000, "5411", "", ",\"recurring\":{\"series\":\"S2\",\"first\":false}",
         SCA, "remote_single_max", 1},
        /* trusted beneficiary (RTS Art. 13) */
        {T0, "ecommerce", 90000, "5411", "", ",\"trusted_beneficiary\":true", APPROVE,
         "trusted_beneficiary", 2},
        /* unattended transport comes first (RTS Art. 12) */
        {T0, "unattended_transport", 5000, "4111", "", ",\"trusted_beneficiary\":true", APPROVE,
         "unattended_transport_parking", 0},
    };
    assert_int_equal(fx_open(&f, NULL), 0);
    run_steps(&f, steps, sizeof(steps) / sizeof(steps[0]), NULL);
    fx_close(&f);
}

static void test_expired_and_persisted(void **state)
{
    fx f;
    kv_authz_result res;
    kv_store *s2 = NULL;
    kv_card_state c;
    int found = 0;
    char err[128];
    (void)state;
    assert_int_equal(fx_open(&f, NULL), 0);
    /* expiry 2812: valid through 31 Dec 2028 in Copenhagen */
    assert_int_equal(
        fx_auth(&f, FX_PAN, "2028-12-31T22:59:59Z", "contactless", 100, "A", "5411", "", "", &res),
        0);
    assert_int_equal(res.decision, APPROVE);
    assert_int_equal(
        fx_auth(&f, FX_PAN, "2028-12-31T23:00:00Z", "contactless", 100, "A", "5411", "", "", &res),
        0);
    assert_int_equal(res.decision, DECLINE);
    assert_string_equal(res.reason, "card_expired");
    /* the state is on disk for the next process */
    if (fx_pg_url() != NULL)
        assert_int_equal(kv_store_open(fx_pg_url(), &s2, err, sizeof(err)), 0);
    else
        assert_int_equal(kv_store_open_sqlite(f.path, KV_SQLITE_SYNC_FULL, &s2, err, sizeof(err)),
                         0);
    uint8_t tok[32];
    kv_mac m = {fx_soft_hmac, &f.token_key};
    assert_int_equal(kv_pan_token(&m, FX_PAN, tok), 0);
    assert_int_equal(kv_store_card_get(s2, tok, &c, &found), 0);
    assert_int_equal(found, 1);
    assert_int_equal(c.policy.contactless.count, 1);
    assert_string_equal(c.pan_masked, "476173******0119");
    kv_store_close(s2);
    fx_close(&f);
}

/* ---- row MACs (store.h "Row MACs"; issue 11 finding 11) ---- */

/* 1 when needle (m bytes) occurs in hay (n bytes). */
static int contains(const void *hay, size_t n, const void *needle, size_t m)
{
    for (size_t i = 0; m <= n && i <= n - m; i++)
        if (memcmp((const uint8_t *)hay + i, needle, m) == 0)
            return 1;
    return 0;
}

/* Run SQL on the store's database behind the store's back (SQLite file or PostgreSQL). */
static void raw_sql(fx *f, const char *sql)
{
#ifdef KV_HAVE_LIBPQ
    if (fx_pg_url() != NULL) {
        PGconn *c = PQconnectdb(fx_pg_url());
        PGresult *res = PQexec(c, sql);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            print_error("%s: %s\n", sql, PQerrorMessage(c));
        assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
        PQclear(res);
        PQfinish(c);
        return;
    }
#endif
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static int count_entry(void *ctx, const kv_bl_entry *e)
{
    (void)e;
    (*(int *)ctx)++;
    return 0;
}

static int count_wallet(void *ctx, const kv_bl_wallet *w)
{
    (void)w;
    (*(int *)ctx)++;
    return 0;
}

static void test_row_macs(void **state)
{
    fx f;
    fx_soft_key rk;
    kv_mac m = {fx_soft_hmac, &rk};
    kv_card_state c, got;
    kv_bl_entry e, ge;
    kv_bl_wallet w;
    uint8_t tok[KV_TOKEN_LEN], wtok[KV_TOKEN_LEN], mac_in[512];
    int found = 0, listed = 0, n = 0;
    (void)state;
    memset(rk.key, 0x44, sizeof(rk.key));
    memset(tok, 0x61, sizeof(tok));
    memset(wtok, 0x62, sizeof(wtok));
    assert_int_equal(fx_open(&f, NULL), 0);

    /* rows written without a row MAC (as a schema-2 store's) */
    memset(&c, 0, sizeof(c));
    kv_card_policy_init(&c.policy);
    memcpy(c.token, tok, sizeof(tok));
    snprintf(c.pan_masked, sizeof(c.pan_masked), "476173******0119");
    c.policy.sca_failures = 4;
    c.pin_failures = 2;
    c.has_pvv = 1;
    c.pvki = 1;
    snprintf(c.pvv, sizeof(c.pvv), "1234");
    c.has_ibm_offset = 1;
    snprintf(c.ibm_offset, sizeof(c.ibm_offset), "5678");
    memset(&e, 0, sizeof(e));
    memcpy(e.token, tok, sizeof(tok));
    snprintf(e.pan_masked, sizeof(e.pan_masked), "476173******0119");
    memset(e.pan_sealed, 0x01, sizeof(e.pan_sealed));
    memset(e.reason_sealed, 0x01, sizeof(e.reason_sealed));
    e.listed_at = 1000;
    e.expires_at = INT64_MAX;
    memset(&w, 0, sizeof(w));
    memcpy(w.wallet_token, wtok, sizeof(wtok));
    memcpy(w.card_token, tok, sizeof(tok));
    snprintf(w.wallet_masked, sizeof(w.wallet_masked), "520000******0001");
    memset(w.wallet_sealed, 0x01, sizeof(w.wallet_sealed));
    assert_int_equal(kv_store_begin(f.store, 1), 0);
    assert_int_equal(kv_store_card_put(f.store, &c), 0);
    assert_int_equal(kv_store_bl_put(f.store, &e), 0);
    assert_int_equal(kv_store_bl_wallet_put(f.store, &w), 0);
    assert_int_equal(kv_store_commit(f.store), 0);
    assert_int_equal(kv_store_card_get(f.store, tok, &got, &found), 0);
    assert_int_equal(got.has_row_mac, 0);

    /* with the key bound, a row without a MAC is tampered ... */
    kv_store_set_row_mac(f.store, &m);
    assert_int_equal(kv_store_card_get(f.store, tok, &got, &found), KV_ERR_STORE_TAMPERED);
    /* ... until the first open with the key MACs every row once */
    assert_int_equal(kv_store_set_row_mac_adopt(f.store), 0);
    assert_int_equal(kv_store_card_get(f.store, tok, &got, &found), 0);
    assert_int_equal(found, 1);
    assert_int_equal(got.has_row_mac, 1);
    assert_int_equal(got.policy.sca_failures, 4);
    assert_int_equal(got.pin_failures, 2);
    assert_int_equal(got.code_failures, 0);
    assert_int_equal(got.has_pvv, 1);
    assert_int_equal(got.pvki, 1);
    assert_string_equal(got.pvv, "1234");
    assert_int_equal(got.has_ibm_offset, 1);
    assert_string_equal(got.ibm_offset, "5678");
    assert_int_equal(kv_store_bl_get(f.store, tok, &ge, &found), 0);
    assert_int_equal(found, 1);
    assert_int_equal(kv_store_bl_listed(f.store, tok, &listed), 0);
    assert_int_equal(listed, 1);
    assert_int_equal(kv_store_bl_listed(f.store, wtok, &listed), 0);
    assert_int_equal(listed, 1);
    assert_int_equal(kv_store_bl_scan(f.store, count_entry, &n), 0);
    assert_int_equal(n, 1);
    /* the MAC covers the token: the encoding starts with the domain, then the token */
    assert_true(kv_store_card_mac_input(&got, mac_in, sizeof(mac_in)) > 64);
    assert_true(contains(mac_in, sizeof(mac_in), tok, sizeof(tok)));

    /* puts and deletes through the store keep the block list's digest: a new open agrees */
    {
        kv_bl_entry e2 = e;
        kv_bl_wallet w2 = w;
        memset(e2.token, 0x71, sizeof(e2.token));
        memset(w2.wallet_token, 0x72, sizeof(w2.wallet_token));
        memcpy(w2.card_token, e2.token, sizeof(e2.token));
        assert_int_equal(kv_store_begin(f.store, 1), 0);
        assert_int_equal(kv_store_bl_put(f.store, &e2), 0);
        assert_int_equal(kv_store_bl_wallet_put(f.store, &w2), 0);
        e2.reminders = 2;
        assert_int_equal(kv_store_bl_put(f.store, &e2), 0);
        assert_int_equal(kv_store_commit(f.store), 0);
        assert_int_equal(kv_store_set_row_mac_adopt(f.store), 0);
        assert_int_equal(kv_store_bl_tampered(f.store), 0);
        assert_int_equal(kv_store_begin(f.store, 1), 0);
        assert_int_equal(kv_store_bl_delete(f.store, e2.token), 0);
        assert_int_equal(kv_store_commit(f.store), 0);
        assert_int_equal(kv_store_set_row_mac_adopt(f.store), 0);
        assert_int_equal(kv_store_bl_tampered(f.store), 0);
        assert_int_equal(kv_store_bl_listed(f.store, w2.wallet_token, &listed), 0);
        assert_int_equal(listed, 0);
    }

    /* writes through the store keep verifying */
    got.code_failures = 3;
    assert_int_equal(kv_store_begin(f.store, 1), 0);
    assert_int_equal(kv_store_card_put(f.store, &got), 0);
    assert_int_equal(kv_store_commit(f.store), 0);
    assert_int_equal(kv_store_card_get(f.store, tok, &c, &found), 0);
    assert_int_equal(c.code_failures, 3);

    /* a counter reset in the database file is detected */
    raw_sql(&f, "UPDATE cards SET pin_failures = 0");
    assert_int_equal(kv_store_card_get(f.store, tok, &c, &found), KV_ERR_STORE_TAMPERED);
    raw_sql(&f, "UPDATE cards SET pin_failures = 2, sca_failures = 0");
    assert_int_equal(kv_store_card_get(f.store, tok, &c, &found), KV_ERR_STORE_TAMPERED);
    raw_sql(&f, "UPDATE cards SET sca_failures = 4, pvv = '0000'");
    assert_int_equal(kv_store_card_get(f.store, tok, &c, &found), KV_ERR_STORE_TAMPERED);
    raw_sql(&f, "UPDATE cards SET pvv = '1234'");
    assert_int_equal(kv_store_card_get(f.store, tok, &c, &found), 0);
    /* a stripped MAC is tampered, also after the adoption marker is removed */
    raw_sql(&f, "UPDATE cards SET mac = NULL");
    assert_int_equal(kv_store_card_get(f.store, tok, &c, &found), KV_ERR_STORE_TAMPERED);
    raw_sql(&f, "DELETE FROM meta WHERE name = 'row_macs'");
    assert_int_equal(kv_store_set_row_mac_adopt(f.store), 0);
    assert_int_equal(kv_store_card_get(f.store, tok, &c, &found), KV_ERR_STORE_TAMPERED);

    /* block list: an entry edited in the file (here: made to expire) is tampered */
    raw_sql(&f, "UPDATE blocklist SET expires_at = 1");
    assert_int_equal(kv_store_bl_get(f.store, tok, &ge, &found), KV_ERR_STORE_TAMPERED);
    assert_int_equal(kv_store_bl_listed(f.store, tok, &listed), KV_ERR_STORE_TAMPERED);
    assert_int_equal(kv_store_bl_scan(f.store, count_entry, &n), KV_ERR_STORE_TAMPERED);
    raw_sql(&f, "UPDATE blocklist_wallet SET wallet_masked = '520000******0002'");
    assert_int_equal(kv_store_bl_listed(f.store, wtok, &listed), KV_ERR_STORE_TAMPERED);
    assert_int_equal(kv_store_bl_wallet_scan(f.store, NULL, count_wallet, &n),
                     KV_ERR_STORE_TAMPERED);
    /*
     * A deleted row: its own MAC cannot tell (this connection reads the card
     * as not listed), the block list's digest can: the next open (here:
     * adopt, as kv_app_open calls it) finds the rows changed.
     */
    raw_sql(&f, "DELETE FROM blocklist");
    assert_int_equal(kv_store_bl_get(f.store, tok, &ge, &found), 0);
    assert_int_equal(found, 0);
    assert_int_equal(kv_store_set_row_mac_adopt(f.store), 0);
    assert_int_equal(kv_store_bl_tampered(f.store), 1);
    assert_int_equal(kv_store_bl_listed(f.store, tok, &listed), KV_ERR_STORE_TAMPERED);
    assert_int_equal(kv_store_bl_get(f.store, tok, &ge, &found), KV_ERR_STORE_TAMPERED);
    /* a deleted card row reads as a new card (no digest over cards) */
    raw_sql(&f, "DELETE FROM cards");
    assert_int_equal(kv_store_card_get(f.store, tok, &c, &found), 0);
    assert_int_equal(found, 0);
    fx_close(&f);
}

/*
 * A schema-2 store (made here by taking a new one back to version 2: no
 * attempt counters, reference values, MACs, request ids; 48-byte CBC sealed
 * values) is migrated on open, keeps its rows, and gets its row MACs at the
 * first open with the key.
 */
static void test_migrate_v2(void **state)
{
    static const char *const down[] = {
        "UPDATE blocklist SET pan_sealed = substr(pan_sealed, 2, 48)",
        "UPDATE blocklist SET reason_sealed = substr(reason_sealed, 2, 48)",
        "UPDATE blocklist_wallet SET wallet_sealed = substr(wallet_sealed, 2, 48)",
        "ALTER TABLE cards DROP COLUMN pin_failures",
        "ALTER TABLE cards DROP COLUMN code_failures",
        "ALTER TABLE cards DROP COLUMN pvki",
        "ALTER TABLE cards DROP COLUMN pvv",
        "ALTER TABLE cards DROP COLUMN ibm_offset",
        "ALTER TABLE cards DROP COLUMN mac",
        "ALTER TABLE blocklist DROP COLUMN mac",
        "ALTER TABLE blocklist_wallet DROP COLUMN mac",
        "DROP TABLE requests",
        "DROP TABLE meta",
        "UPDATE schema_version SET version = 2",
    };
    fx f;
    fx_soft_key rk;
    kv_mac m = {fx_soft_hmac, &rk};
    kv_card_state c;
    kv_bl_entry e;
    kv_bl_wallet w;
    uint8_t tok[KV_TOKEN_LEN], wtok[KV_TOKEN_LEN], key[32];
    char err[256], *answer = NULL;
    int found = 0, listed = 0;
    (void)state;
    memset(rk.key, 0x45, sizeof(rk.key));
    memset(tok, 0x63, sizeof(tok));
    memset(wtok, 0x64, sizeof(wtok));
    assert_int_equal(fx_open(&f, NULL), 0);
    memset(&c, 0, sizeof(c));
    kv_card_policy_init(&c.policy);
    memcpy(c.token, tok, sizeof(tok));
    c.policy.contactless.count = 3;
    c.policy.sca_failures = 2;
    memset(&e, 0, sizeof(e));
    memcpy(e.token, tok, sizeof(tok));
    e.pan_sealed[0] = KV_SEALED_LEGACY_CBC;
    memset(e.pan_sealed + 1, 0x5E, KV_SEALED_LEGACY_LEN);
    e.reason_sealed[0] = KV_SEALED_LEGACY_CBC;
    memset(e.reason_sealed + 1, 0x5F, KV_SEALED_LEGACY_LEN);
    e.listed_at = 1000;
    e.expires_at = 2000000000;
    memset(&w, 0, sizeof(w));
    memcpy(w.wallet_token, wtok, sizeof(wtok));
    memcpy(w.card_token, tok, sizeof(tok));
    w.wallet_sealed[0] = KV_SEALED_LEGACY_CBC;
    memset(w.wallet_sealed + 1, 0x60, KV_SEALED_LEGACY_LEN);
    assert_int_equal(kv_store_begin(f.store, 1), 0);
    assert_int_equal(kv_store_card_put(f.store, &c), 0);
    assert_int_equal(kv_store_bl_put(f.store, &e), 0);
    assert_int_equal(kv_store_bl_wallet_put(f.store, &w), 0);
    assert_int_equal(kv_store_commit(f.store), 0);
    kv_store_close(f.store);
    f.store = NULL;
    kv_authz_free(f.authz);
    f.authz = NULL;
    for (size_t i = 0; i < sizeof(down) / sizeof(down[0]); i++)
        raw_sql(&f, down[i]);

    if (fx_pg_url() != NULL)
        assert_int_equal(kv_store_open(fx_pg_url(), &f.store, err, sizeof(err)), 0);
    else
        assert_int_equal(
            kv_store_open_sqlite(f.path, KV_SQLITE_SYNC_FULL, &f.store, err, sizeof(err)), 0);
    kv_store_set_row_mac(f.store, &m);
    assert_int_equal(kv_store_set_row_mac_adopt(f.store), 0);
    assert_int_equal(kv_store_card_get(f.store, tok, &c, &found), 0);
    assert_int_equal(found, 1);
    assert_int_equal(c.policy.contactless.count, 3);
    assert_int_equal(c.policy.sca_failures, 2);
    assert_int_equal(c.pin_failures, 0);
    assert_int_equal(c.code_failures, 0);
    assert_int_equal(c.has_pvv, 0);
    assert_int_equal(c.has_ibm_offset, 0);
    assert_int_equal(c.has_row_mac, 1);
    assert_int_equal(kv_store_bl_get(f.store, tok, &e, &found), 0);
    assert_int_equal(found, 1);
    /* a 48-byte value reads as the legacy CBC form: version 0, the bytes, zeros */
    assert_int_equal(e.pan_sealed[0], KV_SEALED_LEGACY_CBC);
    assert_int_equal(e.pan_sealed[1], 0x5E);
    assert_int_equal(e.pan_sealed[KV_SEALED_LEGACY_LEN], 0x5E);
    assert_int_equal(e.pan_sealed[KV_SEALED_LEGACY_LEN + 1], 0);
    assert_int_equal(e.reason_sealed[1], 0x5F);
    assert_int_equal(kv_store_bl_listed(f.store, wtok, &listed), 0);
    assert_int_equal(listed, 1);
    assert_int_equal(kv_store_bl_tampered(f.store), 0);

    /* request ids: the stored answer comes back; a second put of the key fails */
    memset(key, 0x21, sizeof(key));
    assert_int_equal(kv_store_request_get(f.store, key, &answer, &found), 0);
    assert_int_equal(found, 0);
    assert_null(answer);
    assert_int_equal(kv_store_begin(f.store, 1), 0);
    assert_int_equal(kv_store_request_put(f.store, key, "{\"decision\":\"approve\"}", 1), 0);
    assert_int_equal(kv_store_commit(f.store), 0);
    assert_int_equal(kv_store_request_get(f.store, key, &answer, &found), 0);
    assert_int_equal(found, 1);
    assert_string_equal(answer, "{\"decision\":\"approve\"}");
    free(answer);
    assert_int_equal(kv_store_begin(f.store, 1), 0);
    assert_int_not_equal(kv_store_request_put(f.store, key, "{}", 2), 0);
    kv_store_rollback(f.store);
    /* a stored answer changed in the database is tampered (it would be replayed to the client) */
    raw_sql(&f, "UPDATE requests SET answer = '{\"decision\":\"decline\"}'");
    assert_int_equal(kv_store_request_get(f.store, key, &answer, &found), KV_ERR_STORE_TAMPERED);
    assert_null(answer);
    assert_int_equal(found, 0);
    fx_close(&f);
}

/* SQLite files: 0600, the lock file never through a symbolic link, synchronous FULL by default. */
static void test_sqlite_files(void **state)
{
    char dir[] = "/tmp/kv-store-files-XXXXXX", url[256], path[256], link[256], err[256];
    static const char *const suffix[] = {"", "-wal", "-shm", "-wlock"};
    kv_store *s = NULL;
    kv_card_state c;
    struct stat st;
    int level = -1;
    mode_t old;
    (void)state;
    if (fx_pg_url() != NULL)
        return;
    assert_non_null(mkdtemp(dir));
    old = umask(022);
    snprintf(url, sizeof(url), "sqlite:%s/k.db", dir);
    assert_int_equal(kv_store_open(url, &s, err, sizeof(err)), 0);
    /* the default URL is FULL: a committed decision survives power loss */
    assert_int_equal(kv_store_sqlite_synchronous(s, &level), 0);
    assert_int_equal(level, 2);
    memset(&c, 0, sizeof(c));
    kv_card_policy_init(&c.policy);
    assert_int_equal(kv_store_begin(s, 1), 0);
    assert_int_equal(kv_store_card_put(s, &c), 0);
    assert_int_equal(kv_store_commit(s), 0);
    for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
        snprintf(path, sizeof(path), "%s/k.db%s", dir, suffix[i]);
        assert_int_equal(stat(path, &st), 0);
        if ((st.st_mode & 0777) != 0600)
            print_error("%s: mode %o\n", path, (unsigned)(st.st_mode & 0777));
        assert_int_equal(st.st_mode & 0777, 0600);
    }
    kv_store_close(s);
    snprintf(url, sizeof(url), "sqlite:%s/k.db?synchronous=normal", dir);
    assert_int_equal(kv_store_open(url, &s, err, sizeof(err)), 0);
    assert_int_equal(kv_store_sqlite_synchronous(s, &level), 0);
    assert_int_equal(level, 1);
    kv_store_close(s);
    umask(old);

    /* a symbolic link where the lock file goes is refused, and nothing is created there */
    snprintf(link, sizeof(link), "%s/l.db-wlock", dir);
    snprintf(path, sizeof(path), "%s/elsewhere", dir);
    assert_int_equal(symlink(path, link), 0);
    snprintf(url, sizeof(url), "sqlite:%s/l.db", dir);
    s = NULL;
    assert_int_equal(kv_store_open(url, &s, err, sizeof(err)), KV_ERR_STORE_UNAVAILABLE);
    assert_null(s);
    assert_non_null(strstr(err, "symbolic link"));
    assert_int_not_equal(access(path, F_OK), 0);
    snprintf(url, sizeof(url), "rm -rf '%s'", dir);
    assert_int_equal(system(url), 0);
}

/* ---- the HSM side: policy keys, PAN tokens, PAN encryption (SoftHSM2) ---- */

static void test_hsm_keys_and_pan(void **state)
{
    char dir[] = "/tmp/kv_store_hsm_XXXXXX", conf[128], tokens[128], cmd[160];
    kv_hsm_config cfg = {.token = "kv-store-unit"};
    kv_hsm *h = NULL;
    kv_hsm_token_info ti;
    kv_keys_result kr;
    kv_hsm_mac tok;
    kv_hsm_key aes;
    unsigned long handle;
    uint8_t key[32], want[32], got[32], sealed[KV_PAN_SEALED_LEN], sealed2[KV_PAN_SEALED_LEN];
    char why[256], pan[20];
    unsigned int n = 32;
    FILE *f;
    (void)state;

    if (access(KV_HSM_DEFAULT_MODULE, R_OK) != 0) {
        print_message("SoftHSM2 not installed: skipped\n");
        return;
    }
    assert_non_null(mkdtemp(dir));
    snprintf(tokens, sizeof(tokens), "%s/tokens", dir);
    assert_int_equal(mkdir(tokens, 0700), 0);
    snprintf(conf, sizeof(conf), "%s/softhsm2.conf", dir);
    assert_non_null(f = fopen(conf, "w"));
    fprintf(f, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens);
    fclose(f);
    setenv("SOFTHSM2_CONF", conf, 1);
    unsetenv("KORTVAGT_PKCS11_MODULE");
    unsetenv("KORTVAGT_PIN_FILE");
    setenv("KORTVAGT_PIN", "unit-user-2", 1);
    assert_int_equal(kv_hsm_open_ex(&cfg, KV_HSM_OPEN_NO_TOKEN, &h), 0);
    assert_int_equal(kv_hsm_token_init(h, "kv-store-unit", (const uint8_t *)"unit-so-2", 9,
                                       (const uint8_t *)"unit-user-2", 11, &ti),
                     0);
    kv_hsm_close(h);
    assert_int_equal(kv_hsm_open_pin(&cfg, (const uint8_t *)"unit-user-2", 11, &h), 0);

    /* `hsm init`'s policy keys: created when absent, left alone when present */
    assert_int_equal(kv_hsm_mac_init(&tok, h, KV_KEY_LABEL_TOKEN), KV_ERR_HSM_KEY);
    assert_int_equal(kv_evidence_keys_ensure(h), 0);
    assert_int_equal(kv_hsm_object_find(h, KV_KEY_LABEL_TOKEN, &handle), 0);
    assert_int_equal(kv_hsm_object_find(h, KV_KEY_LABEL_EVIDENCE, &handle), 0);
    assert_int_equal(kv_hsm_object_find(h, KV_KEY_LABEL_PAN_ENC, &handle), 0);
    assert_int_equal(kv_hsm_object_find(h, KV_KEY_LABEL_STATE_MAC, &handle), 0);
    assert_int_equal(kv_evidence_keys_ensure(h), 0); /* no duplicates: find is exact */
    assert_int_equal(kv_hsm_object_find(h, KV_KEY_LABEL_TOKEN, &handle), 0);

    /* PAN token: HMAC-SHA256 in the token equals OpenSSL's under the same (test) key */
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)i;
    assert_int_equal(kv_keys_import(h, "tok-known", KV_KEY_HMAC, KV_USAGE_TOKEN, NULL, 0, key, 32,
                                    NULL, 0, &kr, why, sizeof(why)),
                     0);
    assert_int_equal(kv_hsm_mac_init(&tok, h, "tok-known"), 0);
    kv_mac m = kv_hsm_mac_get(&tok);
    assert_int_equal(kv_pan_token(&m, FX_PAN, got), 0);
    HMAC(EVP_sha256(), key, 32, (const uint8_t *)FX_PAN, strlen(FX_PAN), want, &n);
    assert_memory_equal(got, want, 32);
    assert_int_equal(kv_pan_token(&m, "12345", got), KV_ERR_ARG);
    /* an AES key is no HMAC key */
    assert_int_equal(kv_hsm_mac_init(&tok, h, KV_KEY_LABEL_PAN_ENC), KV_ERR_HSM_KEY);

    /* the row-MAC key: an HMAC key of role state-mac */
    assert_int_equal(kv_hsm_mac_init(&tok, h, KV_KEY_LABEL_STATE_MAC), 0);
    assert_int_equal(kv_hsm_key_require_role(h, &tok.key, KV_ROLE_STATE_MAC), 0);

    /* recoverable PANs: AES-GCM in the token, the row's token as associated data */
    uint8_t ad_a[32], ad_b[32];
    memset(ad_a, 0xA1, sizeof(ad_a));
    memset(ad_b, 0xB2, sizeof(ad_b));
    assert_int_equal(kv_hsm_key_find(h, KV_KEY_LABEL_PAN_ENC, &aes), 0);
    assert_int_equal(kv_hsm_key_require_role(h, &aes, KV_ROLE_PAN_ENC), 0);
    assert_int_equal(kv_pan_seal(h, &aes, ad_a, 32, FX_PAN, sealed), 0);
    assert_int_equal(sealed[0], KV_SEALED_GCM);
    assert_false(contains(sealed, sizeof(sealed), FX_PAN, strlen(FX_PAN)));
    assert_int_equal(kv_pan_seal(h, &aes, ad_a, 32, FX_PAN, sealed2), 0);
    assert_memory_not_equal(sealed, sealed2, sizeof(sealed));
    assert_int_equal(kv_pan_unseal(h, &aes, ad_a, 32, sealed, pan), 0);
    assert_string_equal(pan, FX_PAN);
    assert_int_equal(kv_pan_unseal(h, &aes, ad_a, 32, sealed2, pan), 0);
    assert_string_equal(pan, FX_PAN);
    /* moved to another row (other associated data): it does not open */
    assert_int_equal(kv_pan_unseal(h, &aes, ad_b, 32, sealed, pan), KV_ERR_FORMAT);
    assert_int_equal(kv_pan_seal(h, &aes, ad_b, 32, "5413330000000000001", sealed), 0);
    assert_int_equal(kv_pan_unseal(h, &aes, ad_b, 32, sealed, pan), 0);
    assert_string_equal(pan, "5413330000000000001");
    sealed[20] ^= 1; /* a changed ciphertext fails the tag */
    assert_int_equal(kv_pan_unseal(h, &aes, ad_b, 32, sealed, pan), KV_ERR_FORMAT);
    sealed[20] ^= 1;
    sealed[0] = 7; /* an unknown version */
    assert_int_equal(kv_pan_unseal(h, &aes, ad_b, 32, sealed, pan), KV_ERR_FORMAT);
    assert_int_equal(kv_pan_seal(h, &aes, ad_a, 32, "4761", sealed), KV_ERR_ARG);
    /* a schema-2 value (IV || AES-CBC, 48 bytes) still opens through the legacy path */
    {
        uint8_t block[32], legacy[KV_SEALED_LEGACY_LEN];
        memset(block, 0, sizeof(block));
        block[0] = (uint8_t)strlen(FX_PAN);
        memcpy(block + 1, FX_PAN, strlen(FX_PAN));
        memset(legacy, 0x5C, 16);
        assert_int_equal(kv_hsm_cbc_encrypt(h, &aes, 0, legacy, block, 32, legacy + 16), 0);
        kv_sealed_load(sealed, legacy, sizeof(legacy));
        assert_int_equal(sealed[0], KV_SEALED_LEGACY_CBC);
        assert_int_equal(kv_pan_unseal(h, &aes, ad_b, 32, sealed, pan), 0);
        assert_string_equal(pan, FX_PAN);
    }

    kv_hsm_close(h);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema),
        cmocka_unit_test(test_url_options_and_checkpoint),
        cmocka_unit_test(test_store_ops),
        cmocka_unit_test(test_contactless_counter_walk),
        cmocka_unit_test(test_amount_counter_and_reversal),
        cmocka_unit_test(test_atm_midnight_copenhagen),
        cmocka_unit_test(test_gambling_and_child_card),
        cmocka_unit_test(test_recurring_and_trusted),
        cmocka_unit_test(test_expired_and_persisted),
        cmocka_unit_test(test_row_macs),
        cmocka_unit_test(test_sqlite_files),
        cmocka_unit_test(test_migrate_v2),
        cmocka_unit_test(test_hsm_keys_and_pan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Evidence: the hash chain and MAC over every decision, the checks of
 * kv_evidence_load and kv_evidence_verify_chain against single-byte
 * tampering, a removed record and a foreign key, the append-only store, and
 * what a record holds (no PAN, no PIN block; the verification summary for
 * the liability engine).
 */
#include "tests/unit/authz_fixture.h"
#include "src/base/hex.h"
#include "src/evidence/evidence.h"
#include "src/base/jsonw.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/sha.h>
#include <sqlite3.h>

/* Fill a store with n decisions of different kinds. */
static void fill(fx *f, int n)
{
    kv_authz_result res;
    const char *factors[] = {"", F_PIN_OFF "," F_ARQC_OK, F_PVV_BAD, F_CVC2_OK, F_PVV_OK};
    for (int i = 0; i < n; i++) {
        char arqc_factor[512];
        const char *fs = factors[i % 5];
        if (i % 5 == 1) {
            /* a fresh ARQC per request: codes are accepted once */
            snprintf(arqc_factor, sizeof(arqc_factor),
                     F_PIN_OFF ",{\"type\":\"chip_cryptogram\",\"imk\":\"imk-ac\",\"cvn\":18,"
                               "\"arqc\":\"AA%014X\",\"data\":\"" FX_AC_HEAD "06011203A40000\","
                               "\"atc\":\"%04X\"}",
                     i, i);
            fs = arqc_factor;
        }
        if (i % 5 == 4) {
            snprintf(arqc_factor, sizeof(arqc_factor),
                     "{\"type\":\"pin_online\",\"pin_block\":\"%032X\",\"format\":4,"
                     "\"pin_key\":\"tpk\",\"pvk\":\"pvk\",\"pvki\":1,\"pvv\":\"1111\"}",
                     i);
            fs = arqc_factor;
        }
        assert_int_equal(fx_auth(f, FX_PAN, "2026-03-01T10:00:00Z",
                                 i % 2 ? "contact" : "contactless", 100 + i, "Shop A", "5411", fs,
                                 "", &res),
                         0);
        assert_int_equal(res.evidence_id, i + 1);
    }
}

static void test_chain_intact(void **state)
{
    fx f;
    kv_evidence_report rep;
    kv_evidence_record rec;
    kv_mac mac;
    (void)state;
    assert_int_equal(fx_open(&f, NULL), 0);
    mac = fx_evidence_mac(&f);
    assert_int_equal(kv_evidence_verify_chain(f.store, &mac, &rep), 0);
    assert_int_equal(rep.records, 0);
    assert_int_equal(rep.broken_id, 0);
    fill(&f, 20);
    assert_int_equal(kv_evidence_verify_chain(f.store, &mac, &rep), 0);
    assert_int_equal(rep.records, 20);
    assert_int_equal(rep.broken_id, 0);
    assert_int_equal(rep.head_id, 20);

    /* record 1 links to 64 zeros; record 2 to SHA-256 of record 1's bytes */
    assert_int_equal(kv_evidence_load(f.store, &mac, 1, &rec), 0);
    assert_true(rec.intact);
    assert_string_equal(json_string_value(json_object_get(rec.body, "prev")),
                        "0000000000000000000000000000000000000000000000000000000000000000");
    uint8_t h1[32];
    char h1hex[65];
    SHA256((const unsigned char *)rec.text, rec.text_len, h1);
    kv_hex_encode(h1, 32, h1hex);
    kv_evidence_record_clear(&rec);
    assert_int_equal(kv_evidence_load(f.store, &mac, 2, &rec), 0);
    assert_true(rec.intact);
    assert_string_equal(json_string_value(json_object_get(rec.body, "prev")), h1hex);
    assert_string_equal(json_string_value(json_object_get(rec.body, "type")), "authorization");
    /* record 2 is chip (ARQC verified in the HSM) + offline PIN */
    json_t *v = json_object_get(rec.body, "verification");
    assert_string_equal(json_string_value(json_object_get(v, "method")), "offline_pin");
    assert_true(json_is_true(json_object_get(v, "proven")));
    kv_evidence_record_clear(&rec);
    /* record 5: online PIN verified in the HSM */
    assert_int_equal(kv_evidence_load(f.store, &mac, 5, &rec), 0);
    v = json_object_get(rec.body, "verification");
    assert_string_equal(json_string_value(json_object_get(v, "method")), "online_pin");
    kv_evidence_record_clear(&rec);
    /* record 1: contactless without PIN on an exemption */
    assert_int_equal(kv_evidence_load(f.store, &mac, 1, &rec), 0);
    v = json_object_get(rec.body, "verification");
    assert_string_equal(json_string_value(json_object_get(v, "method")), "none");
    assert_true(json_is_false(json_object_get(v, "proven")));
    assert_true(json_is_false(json_object_get(v, "sca_required")));
    kv_evidence_record_clear(&rec);
    assert_int_equal(kv_evidence_load(f.store, &mac, 21, &rec), KV_ERR_NOT_FOUND);

    /* the store refuses to change or remove a record */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f.path, &db), SQLITE_OK);
    assert_int_not_equal(
        sqlite3_exec(db, "UPDATE evidence SET body = 'x' WHERE id = 3", NULL, NULL, NULL),
        SQLITE_OK);
    assert_int_not_equal(sqlite3_exec(db, "DELETE FROM evidence WHERE id = 3", NULL, NULL, NULL),
                         SQLITE_OK);
    sqlite3_close(db);
    fx_close(&f);
}

/* Tamper with the store behind its back, as someone with file access would. */
static void tamper(const char *path, const char *sql)
{
    sqlite3 *db;
    char *err = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    if (sqlite3_exec(db, "DROP TRIGGER evidence_no_update; DROP TRIGGER evidence_no_delete;", NULL,
                     NULL, &err) != SQLITE_OK ||
        sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "tamper: %s\n", err);
        fail();
    }
    sqlite3_close(db);
}

static const struct {
    const char *name;
    const char *sql;
    int64_t broken;
    const char *why;
} tamper_rows[] = {
    /* one byte of the body: the amount 107 becomes 108 */
    {"one byte of a body",
     "UPDATE evidence SET body = replace(body, '\"amount\":107', '\"amount\":108') WHERE id = 8", 8,
     "does not match its stored hash"},
    /* body and stored hash rewritten together: the next record's link breaks */
    {"body and hash",
     "UPDATE evidence SET body = replace(body, '\"amount\":107', '\"amount\":108') WHERE id = 8;"
     "UPDATE evidence SET hash = sha3(body, 256) WHERE id = 8",
     8, NULL},
    {"one byte of a MAC", "UPDATE evidence SET mac = zeroblob(32) WHERE id = 12", 12,
     "MAC does not verify"},
    {"a record removed", "DELETE FROM evidence WHERE id = 5", 5, "record 5 is missing"},
    {"the first record removed", "DELETE FROM evidence WHERE id = 1", 1, "record 1 is missing"},
};

static void test_chain_tamper(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(tamper_rows) / sizeof(tamper_rows[0]); i++) {
        fx f;
        kv_evidence_report rep;
        kv_mac mac;
        assert_int_equal(fx_open(&f, NULL), 0);
        mac = fx_evidence_mac(&f);
        fill(&f, 15);
        /* sha3() is not in every SQLite: recompute the SHA-256 hash in C instead */
        if (strstr(tamper_rows[i].sql, "sha3(") != NULL) {
            sqlite3 *db;
            sqlite3_stmt *st;
            uint8_t h[32];
            tamper(f.path, "UPDATE evidence SET body = replace(body, '\"amount\":107', "
                           "'\"amount\":108') WHERE id = 8");
            assert_int_equal(sqlite3_open(f.path, &db), SQLITE_OK);
            assert_int_equal(
                sqlite3_prepare_v2(db, "SELECT body FROM evidence WHERE id = 8", -1, &st, NULL),
                SQLITE_OK);
            assert_int_equal(sqlite3_step(st), SQLITE_ROW);
            SHA256(sqlite3_column_text(st, 0), (size_t)sqlite3_column_bytes(st, 0), h);
            sqlite3_finalize(st);
            assert_int_equal(
                sqlite3_prepare_v2(db, "UPDATE evidence SET hash = ?1 WHERE id = 8", -1, &st, NULL),
                SQLITE_OK);
            sqlite3_bind_blob(st, 1, h, 32, SQLITE_STATIC);
            assert_int_equal(sqlite3_step(st), SQLITE_DONE);
            sqlite3_finalize(st);
            sqlite3_close(db);
        } else {
            tamper(f.path, tamper_rows[i].sql);
        }
        assert_int_equal(kv_evidence_verify_chain(f.store, &mac, &rep), 0);
        if (rep.broken_id != tamper_rows[i].broken ||
            (tamper_rows[i].why != NULL && strstr(rep.why, tamper_rows[i].why) == NULL)) {
            fprintf(stderr, "row %zu '%s': want broken %lld (%s) got %lld (%s)\n", i,
                    tamper_rows[i].name, (long long)tamper_rows[i].broken,
                    tamper_rows[i].why ? tamper_rows[i].why : "-", (long long)rep.broken_id,
                    rep.why);
            fail();
        }
        fx_close(&f);
    }
}

static void test_foreign_key(void **state)
{
    fx f;
    kv_evidence_report rep;
    kv_evidence_record rec;
    fx_soft_key other;
    kv_mac mac = {fx_soft_hmac, &other};
    (void)state;
    memset(other.key, 0x23, 32);
    assert_int_equal(fx_open(&f, NULL), 0);
    fill(&f, 3);
    assert_int_equal(kv_evidence_verify_chain(f.store, &mac, &rep), 0);
    assert_int_equal(rep.broken_id, 1);
    assert_int_equal(kv_evidence_load(f.store, &mac, 2, &rec), 0);
    assert_false(rec.intact);
    assert_non_null(strstr(rec.why, "MAC"));
    kv_evidence_record_clear(&rec);
    fx_close(&f);
}

static void test_no_secrets_and_export(void **state)
{
    fx f;
    kv_evidence_record rec;
    kv_mac mac;
    kv_authz_result res;
    (void)state;
    assert_int_equal(fx_open(&f, NULL), 0);
    mac = fx_evidence_mac(&f);
    assert_int_equal(fx_auth(&f, FX_PAN, "2026-03-01T10:00:00Z", "atm", 10000, "ATM 1", "6011",
                             F_PVV_OK "," F_CHIP_UP, "", &res),
                     0);
    assert_int_equal(fx_auth(&f, FX_PAN, "2026-03-01T10:00:00Z", "ecommerce", 100, "Shop A", "5411",
                             F_CVC2_BAD, "", &res),
                     0);
    for (int64_t id = 1; id <= 2; id++) {
        assert_int_equal(kv_evidence_load(f.store, &mac, id, &rec), 0);
        assert_true(rec.intact);
        /* the PAN, the PIN block, the PVV and the CVC2 are nowhere in the record */
        assert_null(strstr(rec.text, FX_PAN));
        assert_null(strstr(rec.text, "00112233445566778899AABBCCDDEEFF"));
        assert_null(strstr(rec.text, "\"1111\""));
        assert_null(strstr(rec.text, "636"));
        assert_non_null(strstr(rec.text, "476173******0119"));
        kv_evidence_record_clear(&rec);
    }
    kv_evidence_row row;
    int found = 0;
    assert_int_equal(kv_store_evidence_get(f.store, 1, &row, &found), 0);
    char *line = kv_evidence_export_line(&row);
    assert_non_null(line);
    json_t *j = json_loads(line, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "id")), 1);
    assert_int_equal(strlen(json_string_value(json_object_get(j, "hash"))), 64);
    assert_true(json_is_object(json_object_get(j, "record")));
    /* the record round-trips to its exact stored bytes */
    char *again = json_dumps(json_object_get(j, "record"), JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_string_equal(again, row.body);
    free(again);
    json_decref(j);
    free(line);
    kv_evidence_row_clear(&row);
    fx_close(&f);
}

/* The writer against jansson's own compact output (the independent reference). */
static void test_jsonw(void **state)
{
    static const char *const strings[] = {
        "",
        "Shop A",
        "quote \" and \\ backslash",
        "tab\tnewline\ncr\r",
        "\x01\x1f",
        "bell\b form\f",
        "slash / stays",
        "Købmand Ærø ÅØÆ",
        "€ and 日本",
        "\x7f del",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        kv_jsonw w;
        size_t len = 0;
        kv_jsonw_init(&w);
        kv_jsonw_object(&w);
        kv_jsonw_kstr(&w, strings[i], strings[i]);
        kv_jsonw_kint(&w, "n", -9007199254740993LL);
        kv_jsonw_key(&w, "a");
        kv_jsonw_array(&w);
        kv_jsonw_bool(&w, 1);
        kv_jsonw_null(&w);
        kv_jsonw_object(&w);
        kv_jsonw_end(&w);
        kv_jsonw_array(&w);
        kv_jsonw_end(&w);
        kv_jsonw_str(&w, NULL);
        kv_jsonw_end(&w);
        kv_jsonw_members(&w, "\"m\":1", 5);
        kv_jsonw_end(&w);
        char *got = kv_jsonw_finish(&w, &len);
        assert_non_null(got);
        assert_int_equal(strlen(got), len);
        json_t *j = json_pack("{sssIs[bn{}[]n]si}", strings[i], strings[i], "n",
                              (json_int_t)-9007199254740993LL, "a", 1, "m", 1);
        char *want = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (strcmp(got, want) != 0) {
            fprintf(stderr, "row %zu:\n want %s\n got  %s\n", i, want, got);
            fail();
        }
        free(want);
        free(got);
        json_decref(j);
    }
    /* unbalanced: no text */
    kv_jsonw w;
    kv_jsonw_init(&w);
    kv_jsonw_object(&w);
    assert_null(kv_jsonw_finish(&w, NULL));
    kv_jsonw_init(&w);
    kv_jsonw_end(&w);
    assert_null(kv_jsonw_finish(&w, NULL));
}

/* The record of authorization id: its "verification" and "factors" (caller decrefs body). */
static json_t *record_body(fx *f, int64_t id)
{
    kv_mac mac = fx_evidence_mac(f);
    kv_evidence_record rec;
    json_t *body;
    assert_int_equal(kv_evidence_load(f->store, &mac, id, &rec), 0);
    assert_true(rec.intact);
    body = json_incref(rec.body);
    kv_evidence_record_clear(&rec);
    return body;
}

/*
 * Issue 11: what kortvagt proved apart from what the request asserted (finding 1), the SCA
 * block before any HSM work (5), the PIN attempts of authorize (4) and request_id (11).
 */
static void test_proven_apart_from_asserted(void **state)
{
    fx f;
    kv_authz_result res, res2;
    json_t *body, *v;
    int calls;
    (void)state;
    assert_int_equal(fx_open(&f, NULL), 0);

    /* an ARQC the HSM verified whose CVR says "offline PIN not performed" */
    assert_int_equal(fx_auth(&f, FX_PAN, "2026-03-01T10:00:00Z", "contact", 10000, "Shop A", "5411",
                             F_PIN_OFF "," F_ARQC_NOPIN, "", &res),
                     0);
    assert_int_equal(res.decision, KV_DECISION_APPROVE); /* §1 counts the asserted PIN */
    body = record_body(&f, res.evidence_id);
    v = json_object_get(body, "verification");
    assert_string_equal(json_string_value(json_object_get(v, "method")), "offline_pin");
    assert_true(json_is_false(json_object_get(v, "proven")));
    assert_int_equal(json_array_size(json_object_get(v, "proven_factors")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(v, "proven_factors"), 0)),
                        "chip_cryptogram");
    v = json_array_get(json_object_get(body, "factors"), 0);
    assert_string_equal(json_string_value(json_object_get(v, "proof")), "asserted");
    assert_true(json_is_false(json_object_get(v, "proven")));
    v = json_object_get(json_array_get(json_object_get(body, "factors"), 1), "cvr");
    assert_string_equal(json_string_value(json_object_get(v, "offline_pin")), "not_performed");
    assert_string_equal(json_string_value(json_object_get(v, "layout")), "visa");
    json_decref(body);

    /* the CVR says verified: proven through the CVR */
    assert_int_equal(fx_auth(&f, FX_PAN, "2026-03-01T10:01:00Z", "contact", 10000, "Shop A", "5411",
                             F_PIN_OFF "," F_ARQC_OK, "", &res),
                     0);
    body = record_body(&f, res.evidence_id);
    v = json_object_get(body, "verification");
    assert_true(json_is_true(json_object_get(v, "proven")));
    v = json_array_get(json_object_get(body, "factors"), 0);
    assert_string_equal(json_string_value(json_object_get(v, "proof")), "cvr");
    json_decref(body);

    /* request_id: the repeat gets the stored answer and counts once */
    assert_int_equal(fx_auth(&f, "4761739001010127", "2026-03-01T10:00:00Z", "contactless", 100,
                             "Shop A", "5411", "", ",\"request_id\":\"r-1\"", &res),
                     0);
    assert_int_equal(fx_auth(&f, "4761739001010127", "2026-03-01T10:00:00Z", "contactless", 100,
                             "Shop A", "5411", "", ",\"request_id\":\"r-1\"", &res2),
                     0);
    assert_true(res2.replayed);
    assert_int_equal(res2.evidence_id, res.evidence_id);
    assert_int_equal(res2.counter_value, 1);
    assert_string_equal(res2.reason, res.reason);
    /* the same request_id with another request is refused */
    assert_int_equal(fx_auth(&f, "4761739001010127", "2026-03-01T10:00:00Z", "contactless", 200,
                             "Shop A", "5411", "", ",\"request_id\":\"r-1\"", &res2),
                     KV_ERR_POLICY);

    /* three wrong PINs, then the right one: declined without asking the HSM */
    for (int i = 0; i < 3; i++) {
        char pb[256];
        snprintf(pb, sizeof(pb),
                 "{\"type\":\"pin_online\",\"pin_block\":\"3%031X\",\"format\":4,"
                 "\"pin_key\":\"tpk\",\"pvk\":\"pvk\",\"pvki\":1,\"pvv\":\"8523\"}",
                 i);
        assert_int_equal(fx_auth(&f, "4761739001010135", "2026-03-01T10:00:00Z", "atm", 100, "ATM",
                                 "6011", pb, "", &res),
                         0);
        assert_string_equal(res.reason, "pin_incorrect");
    }
    calls = fx_verify_calls;
    assert_int_equal(fx_auth(&f, "4761739001010135", "2026-03-01T10:00:00Z", "atm", 100, "ATM",
                             "6011", F_PVV_OK, "", &res),
                     0);
    assert_string_equal(res.reason, "pin_tries_exceeded");
    assert_int_equal(fx_verify_calls, calls);

    /* five failed attempts block SCA; after that no factor reaches the HSM */
    for (int i = 0; i < 5; i++)
        assert_int_equal(fx_auth(&f, "4761739001010143", "2026-03-01T10:00:00Z", "contactless", 100,
                                 "Shop A", "5411", F_PIN_OFF_BAD, "", &res),
                         0);
    assert_string_equal(res.reason, "sca_failed_attempts");
    calls = fx_verify_calls;
    assert_int_equal(fx_auth(&f, "4761739001010143", "2026-03-01T10:00:00Z", "ecommerce", 100,
                             "Shop A", "5411", F_CVC2_OK, "", &res),
                     0);
    assert_string_equal(res.reason, "sca_failed_attempts");
    assert_int_equal(fx_verify_calls, calls);
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain_intact), cmocka_unit_test(test_chain_tamper),
        cmocka_unit_test(test_foreign_key),  cmocka_unit_test(test_no_secrets_and_export),
        cmocka_unit_test(test_jsonw),        cmocka_unit_test(test_proven_apart_from_asserted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

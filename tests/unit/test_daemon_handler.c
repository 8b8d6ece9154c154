/*
 * kortvagtd's request handler in process (handler.h) without an HSM session
 * or a store: routing, bearer tokens, size limits, the strict body decoders
 * and the error contract {"error":{"code","message"}} — one table row per
 * request; and the tokens file and the metrics text.
 */
#include "src/base/err.h"
#include "src/base/jalloc.h"
#include "src/daemon/handler.h"
#include "src/daemon/metrics.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define GOOD "Bearer t0ken-one"
#define AUTH_REQ                                                                                   \
    "{\"card\":{\"pan\":\"4761739001010119\",\"expiry\":\"2812\"},\"channel\":\"contactless\","    \
    "\"amount\":1000,\"currency\":\"DKK\",\"merchant\":{\"name\":\"Shop A\",\"mcc\":\"5411\"}}"
#define PIN_REQ                                                                                    \
    "{\"pan\":\"1122334455667788\",\"pin_block\":\"00112233445566778899AABBCCDDEEFF\","            \
    "\"format\":4,\"pin_key\":\"tpk\",\"pvk\":\"pvk\",\"pvki\":1,\"pvv\":\"8523\"}"

struct row {
    const char *method, *path, *auth, *body;
    int too_large;
    int status;
    const char *code; /* NULL: success */
};

static const struct row rows[] = {
    /* tokens */
    {"POST", "/v1/authorize", NULL, AUTH_REQ, 0, 401, "no_token"},
    {"POST", "/v1/authorize", "Basic dXNlcg==", AUTH_REQ, 0, 401, "no_token"},
    {"POST", "/v1/authorize", "Bearer ", AUTH_REQ, 0, 401, "no_token"},
    {"POST", "/v1/authorize", "Bearer t0ken-on", AUTH_REQ, 0, 401, "wrong_token"},
    {"POST", "/v1/authorize", "Bearer t0ken-one2", AUTH_REQ, 0, 401, "wrong_token"},
    {"GET", "/metrics", "Bearer nope", NULL, 0, 401, "wrong_token"},
    {"GET", "/nope", NULL, NULL, 0, 401, "no_token"},
    /* routing */
    {"GET", "/nope", GOOD, NULL, 0, 404, "not_found"},
    {"GET", "/v1/evidence/0", GOOD, NULL, 0, 404, "not_found"},
    {"GET", "/v1/evidence/-1", GOOD, NULL, 0, 404, "not_found"},
    {"GET", "/v1/evidence/1234567890123456789", GOOD, NULL, 0, 404, "not_found"},
    {"POST", "/v1/authorize/x/reverse", GOOD, NULL, 0, 404, "not_found"},
    {"GET", "/v1/authorize", GOOD, NULL, 0, 405, "method_not_allowed"},
    {"PUT", "/v1/verify/pin", GOOD, PIN_REQ, 0, 405, "method_not_allowed"},
    {"DELETE", "/v1/evidence/1", GOOD, NULL, 0, 405, "method_not_allowed"},
    {"POST", "/v1/blocklist/4761739001010119", GOOD, "{}", 0, 405, "method_not_allowed"},
    /* size */
    {"POST", "/v1/authorize", GOOD, AUTH_REQ, 1, 413, "too_large"},
    /* bodies */
    {"POST", "/v1/authorize", GOOD, "", 0, 400, "bad_json"},
    {"POST", "/v1/authorize", GOOD, "{\"card\":", 0, 400, "bad_json"},
    {"POST", "/v1/authorize", GOOD, "[1]", 0, 400, "bad_json"},
    {"POST", "/v1/authorize", GOOD, "{\"a\":1,\"a\":2}", 0, 400, "bad_json"},
    {"POST", "/v1/authorize", GOOD, "{\"card\":{\"pan\":\"4761739001010119\",\"expiry\":\"2812\"}}",
     0, 400, "missing_field"},
    {"POST", "/v1/authorize", GOOD, "{\"zzz\":1}", 0, 400, "unknown_field"},
    {"POST", "/v1/verify/pin", GOOD, "{\"pan\":\"1122334455667788\"}", 0, 400, "missing_field"},
    {"POST", "/v1/verify/pin", GOOD, "{\"pin\":\"1234\"}", 0, 400, "unknown_field"},
    {"POST", "/v1/verify/pin", GOOD,
     "{\"pan\":\"1122334455667788\",\"pin_block\":\"0011\",\"format\":4,\"pin_key\":\"t\","
     "\"pvk\":\"p\",\"pvki\":1,\"pvv\":\"8523\"}",
     0, 400, "invalid_field"},
    /* issue 11: without pvv/offset the card's stored reference value is used, so a missing
       reference value is found only with a store; pvki without its pvv still is missing */
    {"POST", "/v1/verify/pin", GOOD,
     "{\"pan\":\"1122334455667788\",\"pin_block\":\"00112233445566778899AABBCCDDEEFF\","
     "\"format\":4,\"pin_key\":\"t\",\"pvk\":\"p\",\"pvki\":1}",
     0, 400, "missing_field"},
    /* issue 11: decimalisation table, validation data and pad come from [pvk.LABEL] */
    {"POST", "/v1/verify/pin", GOOD,
     "{\"pan\":\"1122334455667788\",\"pin_block\":\"00112233445566778899AABBCCDDEEFF\","
     "\"format\":4,\"pin_key\":\"t\",\"pvk\":\"p\",\"offset\":\"1234\","
     "\"dec_table\":\"0000000000000000\"}",
     0, 400, "invalid_field"},
    {"POST", "/v1/verify/pin", GOOD,
     "{\"pan\":\"1122334455667788\",\"pin_block\":\"00112233445566778899AABBCCDDEEFF\","
     "\"format\":4,\"pin_key\":\"t\",\"pvk\":\"p\",\"offset\":\"1234\","
     "\"vdata\":\"1234\"}",
     0, 400, "invalid_field"},
    /* CVC3 on /v1/verify/cvc: 3..5 digits; fewer are refused */
    {"POST", "/v1/verify/cvc", GOOD,
     "{\"pan\":\"5123456789012345\",\"imk\":\"i\",\"atc\":\"005E\",\"un\":\"00000899\","
     "\"track\":\"5123456789012345D35121010000000000000F\",\"value\":\"48\"}",
     0, 400, "invalid_field"},
    {"POST", "/v1/verify/cvc", GOOD,
     "{\"pan\":\"5123456789012345\",\"imk\":\"i\",\"atc\":\"005E\",\"un\":\"00000899\","
     "\"track\":\"5123456789012345D35121010000000000000F\",\"pcvc3\":\"000F\","
     "\"value\":\"488\"}",
     0, 400, "invalid_field"},
    {"POST", "/v1/verify/cvc", GOOD,
     "{\"pan\":\"4123456789012345\",\"expiry\":\"87\",\"cvk\":\"c\",\"value\":\"561\"}", 0, 400,
     "invalid_field"},
    {"POST", "/v1/verify/arqc", GOOD,
     "{\"pan\":\"9901234567890123\",\"imk\":\"i\",\"cvn\":99,\"arqc\":\"0000000000000000\","
     "\"data\":\"00\",\"atc\":\"0001\"}",
     0, 400, "unsupported"},
    {"POST", "/v1/authorize/5/reverse", GOOD, "{\"x\":1}", 0, 400, "unknown_field"},
    {"POST", "/v1/liability/assess", GOOD, "{\"currency\":\"DKK\"}", 0, 400, "missing_field"},
    {"POST", "/v1/blocklist", GOOD, "{\"pan\":\"4761739001010119\"}", 0, 400, "missing_field"},
    {"POST", "/v1/blocklist", GOOD,
     "{\"pan\":\"4761739001010119\",\"reason\":\"lost\",\"expiry\":\"2813\"}", 0, 400,
     "invalid_field"},
    {"POST", "/v1/blocklist", GOOD,
     "{\"pan\":\"4761739001010119\",\"reason\":\"bored\",\"expiry\":\"2812\"}", 0, 400,
     "invalid_field"},
    /* the decoder's typed codes through the daemon's error table */
    {"POST", "/v1/blocklist", GOOD,
     "{\"pan\":\"4761739001010119\",\"reason\":\"lost\",\"wallet_tokens\":[1]}", 0, 400,
     "invalid_field"},
    {"POST", "/v1/blocklist", GOOD,
     "{\"pan\":\"4761739001010119\",\"reason\":\"lost\",\"report\":\"eaten\"}", 0, 400,
     "invalid_field"},
    {"POST", "/v1/liability/assess", GOOD, "{\"currency\":\"DKK\",\"zzz\":1}", 0, 400,
     "unknown_field"},
    {"POST", "/v1/verify/cvc", GOOD,
     "{\"pan\":\"4123456789012345\",\"expiry\":\"8701\",\"cvk\":\"c\"}", 0, 400, "missing_field"},
    {"POST", "/v1/verify/arqc", GOOD,
     "{\"pan\":\"9901234567890123\",\"imk\":\"i\",\"cvn\":\"18\",\"arqc\":"
     "\"0000000000000000\",\"data\":\"00\",\"atc\":\"0001\"}",
     0, 400, "invalid_field"},
    {"POST", "/v1/authorize", GOOD, "{\"card\":{\"pan\":\"47617390010101\",\"expiry\":\"2813\"}}",
     0, 400, "invalid_field"},
    /* valid requests that need the HSM session this handler lacks */
    {"POST", "/v1/blocklist", GOOD, "{\"pan\":\"4761739001010119\",\"reason\":\"lost\"}", 0, 503,
     "hsm_unavailable"},
    {"POST", "/v1/authorize", GOOD, AUTH_REQ, 0, 503, "hsm_unavailable"},
    {"POST", "/v1/verify/pin", GOOD, PIN_REQ, 0, 503, "hsm_unavailable"},
    {"GET", "/v1/evidence/7", GOOD, NULL, 0, 503, "hsm_unavailable"},
    {"GET", "/healthz", NULL, NULL, 0, 503, "hsm_unavailable"},
    {"GET", "/v1/blocklist/4761739001010119", GOOD, NULL, 0, 503, "hsm_unavailable"},
    /* scopes (finding 8): "second-token" has the default scopes, "verify-only" one */
    {"POST", "/v1/authorize", "Bearer verify-only", AUTH_REQ, 0, 403, "permission"},
    {"GET", "/v1/evidence/7", "Bearer verify-only", NULL, 0, 403, "permission"},
    {"GET", "/v1/blocklist/4761739001010119", "Bearer verify-only", NULL, 0, 403, "permission"},
    {"POST", "/v1/verify/pin", "Bearer verify-only", PIN_REQ, 0, 503, "hsm_unavailable"},
    {"POST", "/v1/blocklist", "Bearer second-token",
     "{\"pan\":\"4761739001010119\",\"reason\":\"lost\"}", 0, 403, "permission"},
    {"DELETE", "/v1/blocklist/4761739001010119", "Bearer second-token", NULL, 0, 403, "permission"},
    {"POST", "/v1/authorize/5/reverse", "Bearer second-token", NULL, 0, 403, "permission"},
    {"POST", "/v1/liability/assess", "Bearer second-token", "{\"currency\":\"DKK\"}", 0, 403,
     "permission"},
    {"GET", "/v1/blocklist/4761739001010119", "Bearer second-token", NULL, 0, 503,
     "hsm_unavailable"},
    {"POST", "/v1/authorize", "Bearer second-token", AUTH_REQ, 0, 503, "hsm_unavailable"},
    {"GET", "/v1/evidence/7", "Bearer second-token", NULL, 0, 503, "hsm_unavailable"},
    {"GET", "/metrics", "Bearer verify-only", NULL, 0, 200, NULL},
    /* no session needed */
    {"GET", "/metrics", GOOD, NULL, 0, 200, NULL},
    {"GET", "/metrics", "Bearer   second-token  ", NULL, 0, 200, NULL},
};

static kv_daemon *new_handler(kv_daemon_metrics *m)
{
    kv_daemon_tokens t;
    kv_daemon *d = NULL;
    memset(&t, 0, sizeof(t));
    assert_int_equal(kv_daemon_tokens_add_scoped(&t, "t0ken-one", 9, KV_SCOPES_ALL), 0);
    assert_int_equal(kv_daemon_tokens_add(&t, "second-token", 12), 0);
    assert_int_equal(kv_daemon_tokens_add_scoped(&t, "verify-only", 11, KV_SCOPE_VERIFY), 0);
    assert_int_equal(kv_daemon_new(NULL, &t, m, 1024, &d), 0);
    return d;
}

static void test_table(void **state)
{
    static kv_daemon_metrics m;
    kv_daemon *d = new_handler(&m);
    char want[96];
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const struct row *w = &rows[i];
        kv_http_request req = {
            w->method,   w->path, w->auth, w->body, w->body != NULL ? strlen(w->body) : 0,
            w->too_large};
        kv_http_response res;
        assert_int_equal(kv_daemon_handle(d, &req, &res), 0);
        if (res.status != w->status ||
            (w->code != NULL && (res.error_code == NULL || strcmp(res.error_code, w->code) != 0))) {
            fprintf(stderr, "row %zu: %s %s\n  want %d %s\n  got  %d %s: %.*s\n", i, w->method,
                    w->path, w->status, w->code ? w->code : "-", res.status,
                    res.error_code ? res.error_code : "-", (int)res.body_len,
                    res.body ? res.body : "");
            fail();
        }
        if (w->code != NULL) {
            snprintf(want, sizeof(want), "{\"error\":{\"code\":\"%s\",\"message\":\"", w->code);
            assert_non_null(res.body);
            assert_memory_equal(res.body, want, strlen(want));
        }
        kv_http_response_clear(&res);
    }
    /* the field named in the message */
    {
        kv_http_request req = {"POST", "/v1/authorize", GOOD, "{\"zzz\":1}", 9, 0};
        kv_http_response res;
        kv_daemon_handle(d, &req, &res);
        assert_non_null(strstr(res.body, "zzz"));
        kv_http_response_clear(&res);
    }
    /* nested members are named by their path */
    {
        static const struct {
            const char *path, *body, *names;
        } named[] = {
            {"/v1/authorize",
             "{\"card\":{\"pan\":\"4761739001010119\",\"expiry\":\"2813\"},\"channel\":"
             "\"contact\",\"amount\":1,\"currency\":\"DKK\",\"merchant\":{\"name\":\"A\","
             "\"mcc\":\"5411\"}}",
             "card.expiry"},
            {"/v1/liability/assess",
             "{\"currency\":\"DKK\",\"discovered_at\":\"2026-03-01T10:00:00Z\","
             "\"objection_at\":\"2026-03-01T10:00:00Z\",\"cards\":[{\"id\":\"A\"}],"
             "\"transactions\":[{\"id\":\"t\"}]}",
             "transactions[0].card"},
            {"/v1/blocklist",
             "{\"pan\":\"4761739001010119\",\"reason\":\"lost\",\"wallet_tokens\":[\"1\",2]}",
             "wallet_tokens[1]"},
        };
        for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
            kv_http_request req = {"POST",        named[i].path,         GOOD,
                                   named[i].body, strlen(named[i].body), 0};
            kv_http_response res;
            kv_daemon_handle(d, &req, &res);
            if (res.body == NULL || strstr(res.body, named[i].names) == NULL) {
                fprintf(stderr, "%s: want '%s' in %s\n", named[i].path, named[i].names,
                        res.body ? res.body : "(null)");
                fail();
            }
            kv_http_response_clear(&res);
        }
    }
    kv_daemon_free(d);
}

static void test_metrics(void **state)
{
    static kv_daemon_metrics m;
    kv_daemon *d = new_handler(&m);
    kv_http_request req = {"GET", "/nope", GOOD, NULL, 0, 0};
    kv_http_response res;
    char *text;
    (void)state;
    kv_daemon_handle(d, &req, &res);
    kv_http_response_clear(&res);
    kv_daemon_metrics_decision(&m, 0);
    kv_daemon_metrics_decision(&m, 2);
    kv_daemon_metrics_decision(&m, 2);
    kv_daemon_metrics_request(&m, KV_EP_AUTHORIZE, 200, 700);   /* 0.7 ms */
    kv_daemon_metrics_request(&m, KV_EP_AUTHORIZE, 200, 20000); /* 20 ms */
    text = kv_daemon_metrics_text(&m, NULL);
    assert_non_null(text);
    assert_non_null(strstr(text, "kortvagtd_requests_total{endpoint=\"other\",code=\"404\"} 1\n"));
    assert_non_null(strstr(text, "kortvagtd_decisions_total{decision=\"decline\"} 2\n"));
    assert_non_null(strstr(text, "kortvagtd_request_duration_seconds_bucket{endpoint=\"authorize\","
                                 "le=\"0.0005\"} 0\n"));
    assert_non_null(strstr(text, "kortvagtd_request_duration_seconds_bucket{endpoint=\"authorize\","
                                 "le=\"0.001\"} 1\n"));
    assert_non_null(strstr(text, "kortvagtd_request_duration_seconds_bucket{endpoint=\"authorize\","
                                 "le=\"0.025\"} 2\n"));
    assert_non_null(
        strstr(text, "kortvagtd_request_duration_seconds_count{endpoint=\"authorize\"} 2\n"));
    free(text);
    kv_daemon_free(d);
}

static void test_tokens_file(void **state)
{
    char path[] = "/tmp/kv_tokens_XXXXXX", err[256];
    kv_daemon_tokens t;
    int fd;
    (void)state;
    assert_true((fd = mkstemp(path)) >= 0);
    assert_int_equal(write(fd, "# c\n\n  abc \r\nxyz\n", 17), 17);
    close(fd);
    assert_int_equal(kv_daemon_tokens_load(path, &t, err, sizeof(err)), 0);
    assert_int_equal(t.n, 2);
    chmod(path, 0644);
    assert_int_equal(kv_daemon_tokens_load(path, &t, err, sizeof(err)), KV_ERR_CONFIG);
    assert_non_null(strstr(err, "chmod 600"));
    chmod(path, 0600);
    assert_true((fd = open(path, O_WRONLY | O_TRUNC)) >= 0);
    assert_int_equal(write(fd, "# only a comment\n", 17), 17);
    close(fd);
    assert_int_equal(kv_daemon_tokens_load(path, &t, err, sizeof(err)), KV_ERR_CONFIG);
    /* scopes: "TOKEN scope,scope"; none: the default four */
    {
        static const char text[] = "plain\nwriter  blocklist:write,reverse\n\tall "
                                   "authorize,verify,evidence:read,blocklist:check,"
                                   "blocklist:write,reverse,liability \n";
        assert_true((fd = open(path, O_WRONLY | O_TRUNC)) >= 0);
        assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
        close(fd);
        assert_int_equal(kv_daemon_tokens_load(path, &t, err, sizeof(err)), 0);
        assert_int_equal(t.n, 3);
        assert_int_equal(t.scopes[0], KV_SCOPES_DEFAULT);
        assert_int_equal(t.scopes[1], KV_SCOPE_BLOCKLIST_WRITE | KV_SCOPE_REVERSE);
        assert_int_equal(t.scopes[2], KV_SCOPES_ALL);
    }
    {
        /* an unknown scope is named, the token never */
        static const char text[] = "s3cret-tok authorize,admin\n";
        assert_true((fd = open(path, O_WRONLY | O_TRUNC)) >= 0);
        assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
        close(fd);
        assert_int_equal(kv_daemon_tokens_load(path, &t, err, sizeof(err)), KV_ERR_CONFIG);
        assert_non_null(strstr(err, "'admin'"));
        assert_null(strstr(err, "s3cret"));
    }
    {
        static const char text[] = "s3cret-tok authorize, verify\n";
        assert_true((fd = open(path, O_WRONLY | O_TRUNC)) >= 0);
        assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
        close(fd);
        assert_int_equal(kv_daemon_tokens_load(path, &t, err, sizeof(err)), KV_ERR_CONFIG);
        assert_null(strstr(err, "s3cret"));
    }
    unlink(path);
    assert_int_equal(kv_daemon_tokens_load(path, &t, err, sizeof(err)), KV_ERR_IO);
}

/* /healthz without a valid token shows the status only; the access log gets the route */
static void test_route_names(void **state)
{
    kv_daemon *d = new_handler(NULL);
    static const struct {
        const char *method, *path, *route;
    } r[] = {
        {"GET", "/v1/evidence/12", "/v1/evidence/{id}"},
        {"GET", "/v1/blocklist/4761739001010119", "/v1/blocklist/{pan}"},
        {"POST", "/v1/authorize/3/reverse", "/v1/authorize/{id}/reverse"},
        {"GET", "/secret\r\ninjected", "-"},
        {"GET", "/v1/evidence/abc", "-"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
        kv_http_request req = {r[i].method, r[i].path, GOOD, NULL, 0, 0};
        kv_http_response res;
        kv_daemon_handle(d, &req, &res);
        assert_non_null(res.route);
        assert_string_equal(res.route, r[i].route);
        kv_http_response_clear(&res);
    }
    kv_daemon_free(d);
}

/*
 * The wiping allocator: jansson works on it, and text jansson hands out
 * (json_dumps) may still be released with free() (no header before the block).
 */
static void test_jalloc(void **state)
{
    json_t *j;
    char *text;
    (void)state;
    kv_jalloc_install();
    j = json_pack("{s:s,s:i}", "pin_block", "00112233445566778899AABBCCDDEEFF", "n", 1);
    assert_non_null(j);
    text = json_dumps(j, JSON_COMPACT);
    assert_non_null(text);
    assert_string_equal(text, "{\"pin_block\":\"00112233445566778899AABBCCDDEEFF\",\"n\":1}");
    free(text);
    json_decref(j);
    kv_jalloc_free(NULL);
    text = kv_jalloc_malloc(40);
    assert_non_null(text);
    memset(text, 'x', 40);
    kv_jalloc_free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),       cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_tokens_file), cmocka_unit_test(test_route_names),
        cmocka_unit_test(test_jalloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Test fixture for the authorization engine (test_sca.c, test_limits.c,
 * test_store.c, test_evidence.c): a fresh SQLite store in a temporary
 * directory, software HMAC keys standing in for the HSM's "token" and
 * "evidence" keys, and a scripted factor verifier. The HSM-backed pieces are
 * covered by the integration tests against SoftHSM2; here the policy is
 * tested on its own.
 *
 * Scripted verifier: a factor with key material matches when its value is
 * the lab's "good" one: cvc2 value "111", cvc3 value "11111", pin_online pvv
 * "1111" (or offset "1111"), chip_cryptogram arqc beginning with AA.
 */
#ifndef KV_TEST_AUTHZ_FIXTURE_H
#define KV_TEST_AUTHZ_FIXTURE_H

#include "src/authorize/authorize.h"
#include "src/authorize/request.h"
#include "src/base/err.h"
#include "src/base/caltime.h"
#include "src/store/keyed.h"
#include "src/store/store.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#ifdef KV_HAVE_LIBPQ
#include <libpq-fe.h>
#endif

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    uint8_t key[32];
} fx_soft_key;

static int fx_soft_hmac(void *ctx, const uint8_t *in, size_t len, uint8_t out[32])
{
    fx_soft_key *k = ctx;
    unsigned int n = 32;
    return HMAC(EVP_sha256(), k->key, 32, in, len, out, &n) != NULL ? 0 : KV_ERR_INTERNAL;
}

static int fx_verify_calls; /* how often the HSM stand-in was asked */

static int fx_verify(void *ctx, const kv_auth_request *req, const kv_auth_factor *f, int *match)
{
    (void)ctx;
    (void)req;
    fx_verify_calls++;
    switch (f->type) {
    case KV_FACTOR_CVC2:
        *match = strcmp(f->value, "111") == 0;
        break;
    case KV_FACTOR_CVC3:
        *match = strcmp(f->value, "11111") == 0;
        break;
    case KV_FACTOR_PIN_ONLINE:
        *match = f->ibm3624 ? strcmp(f->offset, "1111") == 0 : strcmp(f->pvv, "1111") == 0;
        break;
    case KV_FACTOR_CHIP_CRYPTOGRAM:
        *match = f->arqc[0] == 0xAA;
        break;
    default:
        return KV_ERR_ARG;
    }
    return 0;
}

typedef struct {
    char dir[64];
    char path[128];
    kv_store *store;
    kv_limits_config limits;
    fx_soft_key token_key, evidence_key;
    kv_authz *authz;
    int64_t now;
} fx;

static fx *fx_current; /* for the clock */
/* the attempt limits of the next fx_open (NULL: src/attempts defaults: 3 PINs, 5 codes) */
static const kv_attempts_config *fx_attempts;

static int64_t fx_clock(void)
{
    return fx_current->now;
}

/*
 * $KORTVAGT_TEST_PG_URL set: the store is that PostgreSQL database instead of
 * an SQLite file, emptied (schema public dropped) by every fx_open; the
 * integration test test_store_pg.sh runs the store tests this way.
 */
static inline const char *fx_pg_url(void)
{
    const char *u = getenv("KORTVAGT_TEST_PG_URL");
    return u != NULL && u[0] != '\0' ? u : NULL;
}

/* Empty the PostgreSQL test database and open it as a store. */
static inline int fx_open_pg(const char *url, kv_store **out)
{
#ifdef KV_HAVE_LIBPQ
    char err[256];
    PGconn *c = PQconnectdb(url);
    PGresult *res;
    int ok;
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "postgresql: %s\n", PQerrorMessage(c));
        PQfinish(c);
        return KV_ERR_STORE_UNAVAILABLE;
    }
    res = PQexec(c, "SET client_min_messages = warning; DROP SCHEMA IF EXISTS public CASCADE;"
                    " CREATE SCHEMA public");
    ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "postgresql reset: %s\n", PQerrorMessage(c));
    PQclear(res);
    PQfinish(c);
    if (!ok)
        return KV_ERR_STORE;
    if ((ok = kv_store_open(url, out, err, sizeof(err))) != 0)
        fprintf(stderr, "store: %s\n", err);
    return ok;
#else
    (void)url;
    (void)out;
    return KV_ERR_UNSUPPORTED;
#endif
}

/* Open a fresh store with the given limits (NULL: defaults) and an engine on it. */
static inline int fx_open(fx *f, const kv_limits_config *limits)
{
    kv_authz_config cfg;
    char err[256];
    int r;
    memset(f, 0, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/kv_authz_XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return KV_ERR_IO;
    snprintf(f->path, sizeof(f->path), "%s/store.db", f->dir);
    if (fx_pg_url() != NULL) {
        if ((r = fx_open_pg(fx_pg_url(), &f->store)) != 0)
            return r;
    } else if ((r = kv_store_open_sqlite(f->path, KV_SQLITE_SYNC_NORMAL, &f->store, err,
                                         sizeof(err))) != 0) {
        fprintf(stderr, "store: %s\n", err);
        return r;
    }
    if (limits != NULL)
        f->limits = *limits;
    else
        kv_limits_defaults(&f->limits);
    memset(f->token_key.key, 0x11, 32);
    memset(f->evidence_key.key, 0x22, 32);
    memset(&cfg, 0, sizeof(cfg));
    cfg.store = f->store;
    cfg.limits = &f->limits;
    cfg.token_mac.fn = fx_soft_hmac;
    cfg.token_mac.ctx = &f->token_key;
    cfg.evidence_mac.fn = fx_soft_hmac;
    cfg.evidence_mac.ctx = &f->evidence_key;
    cfg.verifier.verify = fx_verify;
    cfg.clock = fx_clock;
    cfg.attempts = fx_attempts;
    f->now = 1772359200; /* 2026-03-01T10:00:00Z */
    fx_current = f;
    return kv_authz_new(&cfg, &f->authz);
}

static inline kv_mac fx_evidence_mac(fx *f)
{
    kv_mac m = {fx_soft_hmac, &f->evidence_key};
    return m;
}

static inline void fx_close(fx *f)
{
    char cmd[256];
    kv_authz_free(f->authz);
    kv_store_close(f->store);
    f->authz = NULL;
    f->store = NULL;
    if (f->dir[0] != '\0') {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", f->dir);
    }
}

#define FX_PAN "4761739001010119"

/*
 * Authorize a request built from parts: factors is the inside of the JSON
 * array, extra further top-level members (",\"trusted_beneficiary\":true")
 * or "". Returns the engine's return code; *res the result.
 */
static inline int fx_auth(fx *f, const char *pan, const char *at, const char *channel,
                          long long amount, const char *payee, const char *mcc, const char *factors,
                          const char *extra, kv_authz_result *res)
{
    char json[4096], err[256];
    kv_auth_request *req = calloc(1, sizeof(*req));
    int r;
    if (req == NULL)
        return KV_ERR_NOMEM;
    snprintf(json, sizeof(json),
             "{\"card\":{\"pan\":\"%s\",\"expiry\":\"2812\",\"psn\":\"00\"},\"at\":\"%s\","
             "\"channel\":\"%s\",\"amount\":%lld,\"currency\":\"DKK\","
             "\"merchant\":{\"name\":\"%s\",\"mcc\":\"%s\",\"country\":\"DK\"},"
             "\"factors\":[%s]%s}",
             pan, at, channel, amount, payee, mcc, factors, extra);
    r = kv_auth_request_parse(json, strlen(json), req, err, sizeof(err));
    if (r != 0) {
        fprintf(stderr, "request: %s\n  %s\n", err, json);
    } else {
        r = kv_authz_decide(f->authz, req, res);
        if (r != 0)
            fprintf(stderr, "decide: %s\n", kv_authz_last_error(f->authz));
    }
    kv_auth_request_wipe(req);
    free(req);
    return r;
}

/* Factor snippets */
#define F_PIN_OFF "{\"type\":\"pin_offline\",\"verified\":true}"
#define F_PIN_OFF_BAD "{\"type\":\"pin_offline\",\"verified\":false}"
/*
 * AC data of CVN 18: standard data (29) || AIP || ATC || the IAD 06 01 12 03 CVR; CVR A4 00 00 =
 * offline PIN performed and not failed (apdu/cvr.h), A0 00 00 = offline PIN not performed.
 */
#define FX_AC_HEAD "00000000100000000000000000000000000000000000000000000000005800001C"
#define F_ARQC_OK                                                                                  \
    "{\"type\":\"chip_cryptogram\",\"imk\":\"imk-ac\",\"cvn\":18,\"arqc\":\"AA00000000000001\","   \
    "\"data\":\"" FX_AC_HEAD "06011203A40000\",\"atc\":\"001C\"}"
#define F_ARQC_NOPIN                                                                               \
    "{\"type\":\"chip_cryptogram\",\"imk\":\"imk-ac\",\"cvn\":18,\"arqc\":\"AA00000000000002\","   \
    "\"data\":\"" FX_AC_HEAD "06011203A00000\",\"atc\":\"001E\"}"
#define F_ARQC_BAD                                                                                 \
    "{\"type\":\"chip_cryptogram\",\"imk\":\"imk-ac\",\"cvn\":18,\"arqc\":\"BB00000000000001\","   \
    "\"data\":\"0000000010000000\",\"atc\":\"001D\"}"
#define F_CHIP_UP "{\"type\":\"chip_cryptogram\",\"verified\":true}"
#define F_BIO "{\"type\":\"biometric\",\"verified\":true}"
#define F_PASSWORD "{\"type\":\"password\",\"verified\":true}"
#define F_DEVICE_CODE "{\"type\":\"device_code\",\"verified\":true}"
#define F_WALLET "{\"type\":\"wallet_token\",\"verified\":true}"
#define F_MITID "{\"type\":\"mitid\",\"verified\":true}"
#define F_CVC2_OK "{\"type\":\"cvc2\",\"cvk\":\"cvk\",\"value\":\"111\"}"
#define F_CVC2_BAD "{\"type\":\"cvc2\",\"cvk\":\"cvk\",\"value\":\"636\"}"
#define F_CARDNO "{\"type\":\"card_number\",\"verified\":true}"
#define F_EXPIRY "{\"type\":\"expiry\",\"verified\":true}"
#define F_PVV_OK                                                                                   \
    "{\"type\":\"pin_online\",\"pin_block\":\"00112233445566778899AABBCCDDEEFF\",\"format\":4,"    \
    "\"pin_key\":\"tpk\",\"pvk\":\"pvk\",\"pvki\":1,\"pvv\":\"1111\"}"
#define F_PVV_OK2                                                                                  \
    "{\"type\":\"pin_online\",\"pin_block\":\"20112233445566778899AABBCCDDEEFF\",\"format\":4,"    \
    "\"pin_key\":\"tpk\",\"pvk\":\"pvk\",\"pvki\":1,\"pvv\":\"1111\"}"
#define F_PVV_BAD                                                                                  \
    "{\"type\":\"pin_online\",\"pin_block\":\"10112233445566778899AABBCCDDEEFF\",\"format\":4,"    \
    "\"pin_key\":\"tpk\",\"pvk\":\"pvk\",\"pvki\":1,\"pvv\":\"8523\"}"

/* "sms_otp" verified and bound to amount/payee */
static inline const char *fx_sms(char *buf, size_t cap, long long amount, const char *payee)
{
    snprintf(
        buf, cap,
        "{\"type\":\"sms_otp\",\"verified\":true,\"bound_amount\":%lld,\"bound_payee\":\"%s\"}",
        amount, payee);
    return buf;
}

#endif

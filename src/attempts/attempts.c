/*
 * see attempts.h: consecutive wrong PINs and card codes per card, counted in
 * the card's row inside the verification's own write transaction, with one
 * evidence record per verification (and per blocked attempt).
 */
#include "src/attempts/attempts.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/base/jsonw.h"
#include "src/base/secure.h"
#include "src/evidence/evidence.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void kv_attempts_defaults(kv_attempts_config *c)
{
    c->pin_max = 3;
    c->code_max = 5;
}

static int parse_max(const char *key, const char *v, int *out, char *why, size_t why_cap)
{
    char *end;
    long x;
    if (v == NULL)
        return 0;
    errno = 0;
    x = strtol(v, &end, 10);
    if (v[0] < '0' || v[0] > '9' || errno != 0 || *end != '\0' || x < 1 ||
        x > KV_ATTEMPTS_MAX_LIMIT) {
        kv_errf(why, why_cap, "[verify] %s: '%.40s' is not an integer from 1 to %d", key, v,
                KV_ATTEMPTS_MAX_LIMIT);
        return KV_ERR_CONFIG;
    }
    *out = (int)x;
    return 0;
}

int kv_attempts_config_from(kv_attempts_config *c, const char *pin_max, const char *code_max,
                            char *why, size_t why_cap)
{
    int r;
    kv_attempts_defaults(c);
    if ((r = parse_max("pin_tries_max", pin_max, &c->pin_max, why, why_cap)) != 0)
        return r;
    return parse_max("code_tries_max", code_max, &c->code_max, why, why_cap);
}

const char *kv_verify_result_name(kv_verify_result r)
{
    switch (r) {
    case KV_VERIFY_MATCH:
        return "match";
    case KV_VERIFY_MISMATCH:
        return "mismatch";
    case KV_VERIFY_BLOCKED:
        return "blocked";
    }
    return "?";
}

static int limit_of(const kv_attempts_config *c, kv_attempt_kind kind)
{
    kv_attempts_config d;
    if (c == NULL) {
        kv_attempts_defaults(&d);
        c = &d;
    }
    return kind == KV_ATTEMPT_PIN ? c->pin_max : c->code_max;
}

static int *counter_of(kv_card_state *st, kv_attempt_kind kind)
{
    return kind == KV_ATTEMPT_PIN ? &st->pin_failures : &st->code_failures;
}

int kv_attempts_check(kv_store *s, const kv_attempts_config *c, const uint8_t token[KV_TOKEN_LEN],
                      kv_attempt_kind kind, int *blocked, int *failures)
{
    kv_card_state st;
    int r, n;
    *blocked = 0;
    if ((r = kv_store_card_get(s, token, &st, NULL)) != 0)
        return r;
    n = *counter_of(&st, kind);
    *blocked = n >= limit_of(c, kind);
    if (failures != NULL)
        *failures = n;
    kv_wipe(&st, sizeof(st));
    return 0;
}

/* Count one result in st (the row as read); 1 when the row changed. */
static int count(kv_card_state *st, kv_attempt_kind kind, int match)
{
    int *n = counter_of(st, kind);
    if (match) {
        if (*n == 0)
            return 0;
        *n = 0;
        return 1;
    }
    if (*n < KV_ATTEMPTS_MAX_LIMIT * 1000) /* a bound, far above any limit */
        (*n)++;
    return 1;
}

int kv_attempts_record(kv_store *s, const uint8_t token[KV_TOKEN_LEN], kv_attempt_kind kind,
                       int match, int *failures)
{
    kv_card_state st;
    int r = 0, found = 0;
    if ((r = kv_store_card_get(s, token, &st, &found)) != 0)
        return r;
    if (count(&st, kind, match) || !found) {
        memcpy(st.token, token, KV_TOKEN_LEN);
        r = kv_store_card_put(s, &st);
    }
    if (r == 0 && failures != NULL)
        *failures = *counter_of(&st, kind);
    kv_wipe(&st, sizeof(st));
    return r;
}

int kv_attempts_reset(kv_store *s, const uint8_t token[KV_TOKEN_LEN])
{
    kv_card_state st;
    int r, found = 0;
    if ((r = kv_store_begin(s, 1)) != 0)
        return r;
    if ((r = kv_store_card_get(s, token, &st, &found)) == 0 && found &&
        (st.pin_failures != 0 || st.code_failures != 0)) {
        st.pin_failures = 0;
        st.code_failures = 0;
        r = kv_store_card_put(s, &st);
    }
    kv_wipe(&st, sizeof(st));
    if (r != 0) {
        kv_store_rollback(s);
        return r;
    }
    return kv_store_commit(s);
}

/* ---- one verification ---- */

static void write_card(kv_jsonw *w, const uint8_t token[KV_TOKEN_LEN], const char *masked)
{
    char hex[2 * KV_TOKEN_LEN + 1];
    kv_hex_encode(token, KV_TOKEN_LEN, hex);
    kv_jsonw_key(w, "card");
    kv_jsonw_object(w);
    kv_jsonw_kstr(w, "token", hex);
    kv_jsonw_kstr(w, "pan", masked);
    kv_jsonw_end(w);
}

/* Append the members written into w (an open object) as a record of type. */
static int append(kv_store *s, const kv_mac *evidence_mac, kv_jsonw *w, const char *type,
                  int64_t *id)
{
    int64_t now = (int64_t)time(NULL);
    size_t len = 0;
    char *text;
    int r;
    kv_jsonw_end(w);
    if ((text = kv_jsonw_finish(w, &len)) == NULL || len < 2) {
        free(text);
        return KV_ERR_NOMEM;
    }
    r = kv_evidence_append_text(s, evidence_mac, type, now, now, text + 1, len - 2, id);
    free(text);
    return r;
}

static int record_verification(kv_store *s, const kv_mac *evidence_mac,
                               const uint8_t token[KV_TOKEN_LEN], const char *masked,
                               const kv_attempts_request *rq, kv_attempts_outcome *out, int hsm)
{
    kv_jsonw w;
    int r;
    kv_jsonw_init(&w);
    kv_jsonw_object(&w);
    write_card(&w, token, masked);
    kv_jsonw_key(&w, "check");
    kv_jsonw_object(&w);
    kv_jsonw_kstr(&w, "kind", rq->kind == KV_ATTEMPT_PIN ? "pin" : "code");
    kv_jsonw_kstr(&w, "method", rq->method != NULL ? rq->method : "?");
    kv_jsonw_kstr(&w, "via", rq->via != NULL ? rq->via : "?");
    kv_jsonw_kbool(&w, "hsm", hsm);
    kv_jsonw_kstr(&w, "result", kv_verify_result_name(out->result));
    kv_jsonw_kint(&w, "failures", out->failures);
    kv_jsonw_kint(&w, "max", out->max);
    kv_jsonw_end(&w);
    r = append(s, evidence_mac, &w, "verification", &out->evidence_id);
    kv_jsonw_free(&w);
    return r;
}

static int fail(kv_store *s, int r, const char *what, char *why, size_t why_cap)
{
    kv_store_rollback(s);
    if (why != NULL && why_cap > 0 && why[0] == '\0') {
        const char *le = r <= KV_ERR_STORE && r > KV_ERR_POLICY ? kv_store_last_error(s) : "";
        kv_errf(why, why_cap, "%s: %s%s%s", what, kv_strerror(r), le[0] ? ": " : "", le);
    }
    return r;
}

int kv_attempts_verify(kv_store *s, const kv_attempts_config *c, const kv_mac *token_mac,
                       const kv_mac *evidence_mac, const kv_attempts_request *rq,
                       kv_attempts_hsm_fn hsm, void *ctx, kv_attempts_outcome *out, char *why,
                       size_t why_cap)
{
    uint8_t token[KV_TOKEN_LEN];
    kv_card_state st;
    int r, found = 0, match = 0, *n;

    if (why != NULL && why_cap > 0)
        why[0] = '\0';
    memset(out, 0, sizeof(*out));
    out->max = limit_of(c, rq->kind);
    if (rq->pan == NULL || !kv_pan_valid(rq->pan)) {
        kv_errf(why, why_cap, "the PAN must be 12..19 digits");
        return KV_ERR_ARG;
    }
    if ((r = kv_pan_token(token_mac, rq->pan, token)) != 0) {
        kv_errf(why, why_cap, "PAN token: %s", kv_strerror(r));
        return r;
    }
    if ((r = kv_store_begin(s, 1)) != 0) {
        r = fail(s, r, "store", why, why_cap);
        goto out;
    }
    if ((r = kv_store_card_get(s, token, &st, &found)) != 0) {
        r = fail(s, r, "card state", why, why_cap);
        goto out;
    }
    if (!found) {
        memcpy(st.token, token, KV_TOKEN_LEN);
        kv_pan_mask(rq->pan, st.pan_masked);
    }
    n = counter_of(&st, rq->kind);
    if (*n >= out->max) {
        /* blocked: no HSM work; the attempt itself is evidence */
        out->result = KV_VERIFY_BLOCKED;
        out->failures = *n;
        if ((r = record_verification(s, evidence_mac, token, st.pan_masked, rq, out, 0)) != 0) {
            r = fail(s, r, "evidence", why, why_cap);
            goto out;
        }
    } else {
        if ((r = hsm(ctx, &st, &match)) != 0) {
            kv_store_rollback(s); /* nothing is counted; the callback said why */
            goto out;
        }
        out->result = match ? KV_VERIFY_MATCH : KV_VERIFY_MISMATCH;
        if ((count(&st, rq->kind, match) || !found) && (r = kv_store_card_put(s, &st)) != 0) {
            r = fail(s, r, "card state", why, why_cap);
            goto out;
        }
        out->failures = *n;
        if ((r = record_verification(s, evidence_mac, token, st.pan_masked, rq, out, 1)) != 0) {
            r = fail(s, r, "evidence", why, why_cap);
            goto out;
        }
    }
    if ((r = kv_store_commit(s)) != 0)
        r = fail(s, r, "store commit", why, why_cap);
out:
    kv_wipe(&st, sizeof(st));
    kv_wipe(token, sizeof(token));
    if (r != 0)
        memset(out, 0, sizeof(*out));
    return r;
}

/* ---- the card's reference values and the reset ---- */

static int digits(const char *s, size_t min, size_t max)
{
    size_t n = strlen(s);
    if (n < min || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

int kv_attempts_set(kv_store *s, const kv_mac *token_mac, const kv_mac *evidence_mac,
                    const char *pan, const kv_attempts_change *ch, kv_card_state *out,
                    int64_t *evidence_id, char *why, size_t why_cap)
{
    uint8_t token[KV_TOKEN_LEN];
    kv_card_state st;
    kv_jsonw w;
    int64_t id = 0;
    int r, found = 0, pin_before, code_before;

    if (why != NULL && why_cap > 0)
        why[0] = '\0';
    if (evidence_id != NULL)
        *evidence_id = 0;
    if (pan == NULL || !kv_pan_valid(pan)) {
        kv_errf(why, why_cap, "the PAN must be 12..19 digits");
        return KV_ERR_ARG;
    }
    if ((ch->set_pvv && (!digits(ch->pvv, 4, 4) || ch->pvki < 0 || ch->pvki > 9)) ||
        (ch->set_ibm_offset && !digits(ch->ibm_offset, 4, 12))) {
        kv_errf(why, why_cap, "a PVV is 4 digits with a PVKI 0..9, an IBM offset 4..12 digits");
        return KV_ERR_ARG;
    }
    if ((r = kv_pan_token(token_mac, pan, token)) != 0) {
        kv_errf(why, why_cap, "PAN token: %s", kv_strerror(r));
        return r;
    }
    memset(&st, 0, sizeof(st));
    if ((r = kv_store_begin(s, 1)) != 0) {
        r = fail(s, r, "store", why, why_cap);
        goto out;
    }
    if ((r = kv_store_card_get(s, token, &st, &found)) != 0) {
        r = fail(s, r, "card state", why, why_cap);
        goto out;
    }
    memcpy(st.token, token, KV_TOKEN_LEN);
    kv_pan_mask(pan, st.pan_masked);
    pin_before = st.pin_failures;
    code_before = st.code_failures;
    if (ch->reset_tries)
        st.pin_failures = st.code_failures = 0;
    if (ch->set_pvv) {
        st.has_pvv = 1;
        st.pvki = ch->pvki;
        memcpy(st.pvv, ch->pvv, 5);
    }
    if (ch->set_ibm_offset) {
        st.has_ibm_offset = 1;
        memset(st.ibm_offset, 0, sizeof(st.ibm_offset));
        memcpy(st.ibm_offset, ch->ibm_offset, strlen(ch->ibm_offset));
    }
    kv_jsonw_init(&w);
    kv_jsonw_object(&w);
    write_card(&w, token, st.pan_masked);
    kv_jsonw_key(&w, "changes");
    kv_jsonw_object(&w);
    if (ch->reset_tries) {
        kv_jsonw_kbool(&w, "reset_tries", 1);
        kv_jsonw_kint(&w, "pin_failures_before", pin_before);
        kv_jsonw_kint(&w, "code_failures_before", code_before);
    }
    if (ch->set_pvv) {
        kv_jsonw_kstr(&w, "pvv", "set"); /* never the value */
        kv_jsonw_kint(&w, "pvki", ch->pvki);
    }
    if (ch->set_ibm_offset)
        kv_jsonw_kstr(&w, "ibm_offset", "set");
    kv_jsonw_end(&w);
    r = append(s, evidence_mac, &w, "card_settings", &id);
    kv_jsonw_free(&w);
    if (r != 0) {
        r = fail(s, r, "evidence", why, why_cap);
        goto out;
    }
    if ((r = kv_store_card_put(s, &st)) != 0) {
        r = fail(s, r, "card state", why, why_cap);
        goto out;
    }
    if ((r = kv_store_commit(s)) != 0) {
        r = fail(s, r, "store commit", why, why_cap);
        goto out;
    }
    if (out != NULL)
        *out = st;
    if (evidence_id != NULL)
        *evidence_id = id;
out:
    kv_wipe(&st, sizeof(st));
    kv_wipe(token, sizeof(token));
    return r;
}

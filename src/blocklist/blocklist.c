/* see blocklist.h */
#include "src/blocklist/blocklist.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/base/secure.h"
#include "src/base/caltime.h"

#include "hsm/p11_aead.h"

#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

static const char *const reason_names[KV_BL_REASON__COUNT] = {
    [KV_BL_LOST] = "lost",
    [KV_BL_STOLEN] = "stolen",
    [KV_BL_SUSPECTED_MISUSE] = "suspected_misuse",
    [KV_BL_SUSPECTED_COPY] = "suspected_copy",
    [KV_BL_ACCOUNT_CLOSED] = "account_closed",
    [KV_BL_RENEWED_NOT_RETURNED] = "renewed_not_returned",
    [KV_BL_OVERDRAFT] = "overdraft",
    [KV_BL_UNUSUAL_PATTERN] = "unusual_pattern",
    [KV_BL_CARDHOLDER_REQUEST] = "cardholder_request",
};

const char *kv_bl_reason_name(kv_bl_reason r)
{
    return (unsigned)r < KV_BL_REASON__COUNT ? reason_names[r] : "";
}

int kv_bl_reason_parse(const char *s, kv_bl_reason *out)
{
    if (s == NULL)
        return KV_ERR_ARG;
    for (int i = 0; i < KV_BL_REASON__COUNT; i++)
        if (strcmp(s, reason_names[i]) == 0) {
            *out = (kv_bl_reason)i;
            return 0;
        }
    return KV_ERR_ARG;
}

int kv_bl_reason_issuer_only(kv_bl_reason r)
{
    return r == KV_BL_ACCOUNT_CLOSED || r == KV_BL_RENEWED_NOT_RETURNED || r == KV_BL_OVERDRAFT ||
           r == KV_BL_UNUSUAL_PATTERN;
}

kv_bl_source kv_bl_default_source(kv_bl_reason r)
{
    return r == KV_BL_LOST || r == KV_BL_STOLEN || r == KV_BL_CARDHOLDER_REQUEST
               ? KV_BL_SOURCE_CARDHOLDER
               : KV_BL_SOURCE_ISSUER;
}

int kv_bl_expiry_parse(const char *s, int *yymm)
{
    int v;
    if (s == NULL || !kv_is_digits(s, 4, 4))
        return KV_ERR_FORMAT;
    v = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    if (v % 100 < 1 || v % 100 > 12)
        return KV_ERR_FORMAT;
    *yymm = v;
    return 0;
}

int kv_bl_expiry_end(int yymm, int64_t *out)
{
    int64_t y, days, t;
    unsigned m;
    if (yymm < 0 || yymm > 9999 || yymm % 100 < 1 || yymm % 100 > 12)
        return KV_ERR_ARG;
    y = 2000 + yymm / 100;
    m = (unsigned)(yymm % 100) + 1;
    if (m == 13) {
        m = 1;
        y++;
    }
    days = kv_days_from_civil(y, m, 1);
    /* midnight in Copenhagen; no summer-time change falls near midnight on the 1st */
    t = days * 86400 - 3600;
    if (kv_time_cph_offset(t) == 7200)
        t = days * 86400 - 7200;
    *out = t;
    return 0;
}

int64_t kv_bl_request_due(int64_t at)
{
    /* the same Copenhagen wall-clock time 28 calendar days later */
    int64_t local = at + kv_time_cph_offset(at) + 28 * 86400;
    int64_t due = local - 3600;
    if (kv_time_cph_offset(due) == 7200)
        due = local - 7200;
    return due;
}

int kv_bl_time_parse(const char *s, int64_t *out)
{
    int64_t y, days, t;
    unsigned m, d;
    int64_t yy;
    if (s == NULL)
        return KV_ERR_FORMAT;
    if (strlen(s) == 10 && s[4] == '-' && s[7] == '-') {
        char buf[32];
        /* validate the date through the RFC 3339 parser */
        snprintf(buf, sizeof(buf), "%.10sT12:00:00Z", s);
        if (kv_time_parse(buf, &t) != 0)
            return KV_ERR_FORMAT;
        kv_civil_from_days(t / 86400, &yy, &m, &d);
        y = yy;
        days = kv_days_from_civil(y, m, d);
        t = days * 86400 - 3600;
        if (kv_time_cph_offset(t) == 7200)
            t = days * 86400 - 7200;
        *out = t;
        return 0;
    }
    return kv_time_parse(s, out) == 0 ? 0 : KV_ERR_FORMAT;
}

/* ---- sealing ---- */

/* The associated data of a sealed field: the row's token and the field's letter. */
static void seal_ad(uint8_t ad[KV_BL_AD_LEN], const uint8_t token[KV_TOKEN_LEN], char field)
{
    memcpy(ad, token, KV_TOKEN_LEN);
    ad[KV_TOKEN_LEN] = (uint8_t)field;
}

#define AD_PAN 'P'
#define AD_REASON 'R'
#define AD_WALLET 'W'

/*
 * Seal up to 31 characters (a PAN, a wallet token number, a reason's name)
 * in the block layout of kv_pan_seal, bound to the row's token and field.
 */
static int seal_short(const kv_blocklist *bl, const uint8_t token[KV_TOKEN_LEN], char field,
                      const char *text, uint8_t out[KV_BL_SEALED_LEN])
{
    uint8_t block[32], ad[KV_BL_AD_LEN];
    size_t n = strlen(text);
    int r;
    if (n > 31)
        return KV_ERR_ARG;
    memset(block, 0, sizeof(block));
    block[0] = (uint8_t)n;
    memcpy(block + 1, text, n);
    seal_ad(ad, token, field);
    r = bl->seal.seal(bl->seal.ctx, ad, block, out);
    kv_wipe(block, sizeof(block));
    return r;
}

/* What seal_short sealed, into text (32 bytes: up to 31 characters + NUL); KV_ERR_FORMAT if
 * malformed. */
static int unseal_short(const kv_blocklist *bl, const uint8_t token[KV_TOKEN_LEN], char field,
                        const uint8_t in[KV_BL_SEALED_LEN], char text[32])
{
    uint8_t block[32], ad[KV_BL_AD_LEN];
    int r;
    seal_ad(ad, token, field);
    r = bl->seal.unseal(bl->seal.ctx, ad, in, block);
    if (r == 0) {
        size_t n = block[0];
        if (n > 31) {
            r = KV_ERR_FORMAT;
        } else {
            memcpy(text, block + 1, n);
            text[n] = '\0';
            if (strlen(text) != n)
                r = KV_ERR_FORMAT;
        }
    }
    kv_wipe(block, sizeof(block));
    return r;
}

static int entry_reason(const kv_blocklist *bl, const kv_bl_entry *e, kv_bl_reason *out)
{
    char name[32];
    int r = unseal_short(bl, e->token, AD_REASON, e->reason_sealed, name);
    if (r == 0 && kv_bl_reason_parse(name, out) != 0)
        r = KV_ERR_FORMAT;
    kv_wipe(name, sizeof(name));
    return r;
}

static int pan_token(const kv_blocklist *bl, const char *pan, uint8_t token[KV_TOKEN_LEN])
{
    if (!kv_pan_valid(pan))
        return KV_ERR_ARG;
    return kv_pan_token(&bl->token_mac, pan, token);
}

/* pan is valid (at most 19 digits): its mask fits */
static void mask(const char *pan, char out[KV_PAN_MASKED_MAX])
{
    kv_pan_mask(pan, out);
}

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s", msg);
}

/* The rules a reason must meet for an entry (kv_bl_add, kv_bl_correct). */
static int check_reason(const kv_blocklist *bl, kv_bl_reason reason, kv_bl_source source,
                        int reminders, char *err, size_t errlen)
{
    if ((unsigned)reason >= KV_BL_REASON__COUNT) {
        set_err(err, errlen, "unknown reason");
        return KV_ERR_ARG;
    }
    if (source == KV_BL_SOURCE_CARDHOLDER && kv_bl_reason_issuer_only(reason)) {
        set_err(err, errlen, "this reason is the issuer's: list it with source issuer");
        return KV_ERR_POLICY;
    }
    if (source == KV_BL_SOURCE_ISSUER && (bl->permission == NULL || bl->permission[0] == '\0')) {
        set_err(err, errlen,
                "issuer-initiated listing needs the authority's permission "
                "([blocklist] permission = <journal no.>)");
        return KV_ERR_PERMISSION;
    }
    if (reason == KV_BL_OVERDRAFT && reminders < 2) {
        set_err(err, errlen,
                "overdraft: at least 2 written reminders that warned of the block are needed");
        return KV_ERR_POLICY;
    }
    return 0;
}

static int begin(const kv_blocklist *bl)
{
    return kv_store_begin(bl->store, 1);
}

/* Commit when r == 0, else roll back; returns r or the commit's error. */
static int finish(const kv_blocklist *bl, int r)
{
    if (r == 0)
        return kv_store_commit(bl->store);
    kv_store_rollback(bl->store);
    return r;
}

int kv_bl_add(const kv_blocklist *bl, const kv_bl_add_req *req, int64_t now, kv_bl_entry *out,
              char *err, size_t errlen)
{
    kv_bl_entry e, old;
    kv_bl_wallet w[KV_BL_WALLET_MAX];
    int r, found = 0, in_txn = 0;

    memset(&e, 0, sizeof(e));
    memset(w, 0, sizeof(w));
    set_err(err, errlen, "");
    if (req->n_wallet > KV_BL_WALLET_MAX) {
        set_err(err, errlen, "too many wallet tokens");
        r = KV_ERR_ARG;
        goto out;
    }
    if (!kv_pan_valid(req->pan)) {
        set_err(err, errlen, "the PAN is not 12..19 digits");
        r = KV_ERR_ARG;
        goto out;
    }
    if ((r = check_reason(bl, req->reason, req->source, req->reminders, err, errlen)) != 0)
        goto out;
    e.report = req->report;
    if (req->source == KV_BL_SOURCE_CARDHOLDER && e.report == KV_BL_REPORT_NONE) {
        if (req->reason == KV_BL_LOST)
            e.report = KV_BL_REPORT_LOST;
        else if (req->reason == KV_BL_STOLEN)
            e.report = KV_BL_REPORT_STOLEN;
    }
    if ((unsigned)e.report > KV_BL_REPORT_DESTROYED ||
        (req->source == KV_BL_SOURCE_ISSUER && e.report != KV_BL_REPORT_NONE)) {
        set_err(err, errlen, "a report (lost, stolen, defective, destroyed) is the cardholder's");
        r = KV_ERR_ARG;
        goto out;
    }
    /* without the card's expiry, purge cannot date the entry: it stays until the
     * card is recovered or replaced or the entry is removed */
    if (req->expiry_yymm == 0) {
        e.expires_at = INT64_MAX;
    } else if ((r = kv_bl_expiry_end(req->expiry_yymm, &e.expires_at)) != 0) {
        set_err(err, errlen, "the card's expiry is not YYMM");
        goto out;
    }
    if (e.expires_at <= now) {
        set_err(err, errlen, "the card has expired: there is nothing to block");
        r = KV_ERR_POLICY;
        goto out;
    }
    if ((r = pan_token(bl, req->pan, e.token)) != 0)
        goto out;
    mask(req->pan, e.pan_masked);
    e.source = req->source;
    e.reminders = req->reminders;
    e.expiry_yymm = req->expiry_yymm;
    e.listed_at = now;
    if ((r = seal_short(bl, e.token, AD_PAN, req->pan, e.pan_sealed)) != 0)
        goto out;
    if ((r = seal_short(bl, e.token, AD_REASON, kv_bl_reason_name(req->reason), e.reason_sealed)) !=
        0)
        goto out;
    for (size_t i = 0; i < req->n_wallet; i++) {
        const char *t = req->wallet_tokens[i];
        if (!kv_pan_valid(t)) {
            set_err(err, errlen, "a wallet token is not 12..19 digits");
            r = KV_ERR_ARG;
            goto out;
        }
        if (strcmp(t, req->pan) == 0) {
            set_err(err, errlen, "a wallet token equals the card's PAN");
            r = KV_ERR_ARG;
            goto out;
        }
        if ((r = pan_token(bl, t, w[i].wallet_token)) != 0)
            goto out;
        memcpy(w[i].card_token, e.token, KV_TOKEN_LEN);
        mask(t, w[i].wallet_masked);
        if ((r = seal_short(bl, w[i].wallet_token, AD_WALLET, t, w[i].wallet_sealed)) != 0)
            goto out;
    }
    if ((r = begin(bl)) != 0)
        goto out;
    in_txn = 1;
    if ((r = kv_store_bl_get(bl->store, e.token, &old, &found)) != 0)
        goto out;
    if (found) {
        set_err(err, errlen, "the card is already listed (use correct to change the reason)");
        r = KV_ERR_POLICY;
        goto out;
    }
    if ((r = kv_store_bl_put(bl->store, &e)) != 0)
        goto out;
    for (size_t i = 0; i < req->n_wallet; i++)
        if ((r = kv_store_bl_wallet_put(bl->store, &w[i])) != 0)
            goto out;
    r = 0;
out:
    if (in_txn)
        r = finish(bl, r);
    if (r == 0 && out != NULL)
        *out = e;
    return r;
}

int kv_bl_check(const kv_blocklist *bl, const char *pan, int *blocked)
{
    uint8_t token[KV_TOKEN_LEN];
    int r;
    *blocked = 0;
    if ((r = pan_token(bl, pan, token)) != 0)
        return r;
    return kv_store_bl_listed(bl->store, token, blocked);
}

int kv_bl_show(const kv_blocklist *bl, const char *pan, kv_bl_entry *e, int *found)
{
    uint8_t token[KV_TOKEN_LEN];
    int r;
    *found = 0;
    memset(e, 0, sizeof(*e));
    if ((r = pan_token(bl, pan, token)) != 0)
        return r;
    return kv_store_bl_get(bl->store, token, e, found);
}

int kv_bl_entry_is_report(const kv_bl_entry *e)
{
    return e->source == KV_BL_SOURCE_CARDHOLDER;
}

int kv_bl_entry_notice_due(const kv_bl_entry *e)
{
    return !(e->source == KV_BL_SOURCE_CARDHOLDER && e->report != KV_BL_REPORT_NONE);
}

/* Load the entry of pan inside a write transaction; KV_ERR_NOT_FOUND when absent. */
static int load(const kv_blocklist *bl, const char *pan, kv_bl_entry *e)
{
    uint8_t token[KV_TOKEN_LEN];
    int r, found = 0;
    if ((r = pan_token(bl, pan, token)) != 0)
        return r;
    if ((r = kv_store_bl_get(bl->store, token, e, &found)) != 0)
        return r;
    return found ? 0 : KV_ERR_NOT_FOUND;
}

int kv_bl_recovered(const kv_blocklist *bl, const char *pan, int *deleted)
{
    kv_bl_entry e;
    kv_bl_reason reason;
    int r;
    *deleted = 0;
    if (!kv_pan_valid(pan))
        return KV_ERR_ARG;
    if ((r = begin(bl)) != 0)
        return r;
    if ((r = load(bl, pan, &e)) != 0)
        goto out;
    if ((r = entry_reason(bl, &e, &reason)) != 0)
        goto out;
    /* Datatilsynet [2]: kept when blocked for (suspected) misuse with a risk of copying */
    if (reason == KV_BL_SUSPECTED_MISUSE || reason == KV_BL_SUSPECTED_COPY) {
        r = 0;
        goto out;
    }
    if ((r = kv_store_bl_delete(bl->store, e.token)) != 0)
        goto out;
    *deleted = 1;
out:
    r = finish(bl, r);
    if (r != 0)
        *deleted = 0;
    return r;
}

int kv_bl_replaced(const kv_blocklist *bl, const char *pan)
{
    kv_bl_entry e;
    int r;
    if (!kv_pan_valid(pan))
        return KV_ERR_ARG;
    if ((r = begin(bl)) != 0)
        return r;
    if ((r = load(bl, pan, &e)) == 0)
        r = kv_store_bl_delete(bl->store, e.token);
    return finish(bl, r);
}

typedef struct {
    char *out;
    size_t cap;
    size_t len;
    int64_t since;
    int overflow;
} names_ctx;

static void names_add(names_ctx *c, const char *name)
{
    size_t n = strlen(name);
    if (n == 0)
        return;
    /* skip a name already present */
    for (const char *p = c->out; p != NULL && *p != '\0';) {
        const char *end = strstr(p, "; ");
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0)
            return;
        p = end != NULL ? end + 2 : NULL;
    }
    if (c->len + (c->len > 0 ? 2 : 0) + n + 1 > c->cap) {
        c->overflow = 1;
        return;
    }
    if (c->len > 0) {
        memcpy(c->out + c->len, "; ", 2);
        c->len += 2;
    }
    memcpy(c->out + c->len, name, n);
    c->len += n;
    c->out[c->len] = '\0';
}

static int recipient_cb(void *ctx, const kv_bl_recipient *rc)
{
    names_ctx *c = ctx;
    if (rc->last_at >= c->since)
        names_add(c, rc->name);
    return 0;
}

int kv_bl_recipients_of(const kv_blocklist *bl, const kv_bl_entry *e, char *out, size_t cap)
{
    names_ctx c = {out, cap, 0, e->listed_at, 0};
    int r;
    if (cap == 0)
        return KV_ERR_BUFFER;
    out[0] = '\0';
    if (bl->recipients != NULL) {
        /* the standing recipients, "; "- or ";"-separated */
        const char *p = bl->recipients;
        while (*p != '\0') {
            char name[KV_BL_NAME_MAX];
            size_t len;
            const char *end = strchr(p, ';');
            while (*p == ' ' || *p == '\t')
                p++;
            end = strchr(p, ';');
            len = end != NULL ? (size_t)(end - p) : strlen(p);
            while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
                len--;
            if (len >= sizeof(name))
                len = sizeof(name) - 1;
            memcpy(name, p, len);
            name[len] = '\0';
            names_add(&c, name);
            if (end == NULL)
                break;
            p = end + 1;
        }
    }
    if ((r = kv_store_bl_recipient_scan(bl->store, recipient_cb, &c)) != 0)
        return r;
    return c.overflow ? KV_ERR_BUFFER : 0;
}

static int correction(const kv_blocklist *bl, const kv_bl_entry *e, int64_t now, int deleted,
                      kv_bl_correction *out)
{
    kv_bl_correction c;
    int r;
    memset(&c, 0, sizeof(c));
    memcpy(c.token, e->token, KV_TOKEN_LEN);
    snprintf(c.pan_masked, sizeof(c.pan_masked), "%s", e->pan_masked);
    c.at = now;
    c.deleted = deleted;
    if ((r = kv_bl_recipients_of(bl, e, c.recipients, sizeof(c.recipients))) != 0)
        return r;
    if ((r = kv_store_bl_correction_put(bl->store, &c)) != 0)
        return r;
    if (out != NULL)
        *out = c;
    return 0;
}

int kv_bl_correct(const kv_blocklist *bl, const char *pan, kv_bl_reason reason, int64_t now,
                  kv_bl_correction *out, char *err, size_t errlen)
{
    kv_bl_entry e;
    int r;
    set_err(err, errlen, "");
    if (!kv_pan_valid(pan))
        return KV_ERR_ARG;
    if ((r = begin(bl)) != 0)
        return r;
    if ((r = load(bl, pan, &e)) != 0)
        goto out;
    if ((r = check_reason(bl, reason, e.source, e.reminders, err, errlen)) != 0)
        goto out;
    if ((r = seal_short(bl, e.token, AD_REASON, kv_bl_reason_name(reason), e.reason_sealed)) != 0)
        goto out;
    /* the PAN is at hand: re-seal it too (a schema-2 CBC value becomes AES-GCM) */
    if ((r = seal_short(bl, e.token, AD_PAN, pan, e.pan_sealed)) != 0)
        goto out;
    if ((r = kv_store_bl_put(bl->store, &e)) != 0)
        goto out;
    r = correction(bl, &e, now, 0, out);
out:
    return finish(bl, r);
}

int kv_bl_remove(const kv_blocklist *bl, const char *pan, int64_t now, kv_bl_correction *out)
{
    kv_bl_entry e;
    int r;
    if (!kv_pan_valid(pan))
        return KV_ERR_ARG;
    if ((r = begin(bl)) != 0)
        return r;
    if ((r = load(bl, pan, &e)) != 0)
        goto out;
    if ((r = correction(bl, &e, now, 1, out)) != 0)
        goto out;
    r = kv_store_bl_delete(bl->store, e.token);
out:
    return finish(bl, r);
}

typedef struct {
    int64_t now;
    uint8_t (*tokens)[KV_TOKEN_LEN];
    size_t n, cap;
} purge_ctx;

static int purge_cb(void *ctx, const kv_bl_entry *e)
{
    purge_ctx *p = ctx;
    if (e->expires_at > p->now)
        return 0;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        void *t = realloc(p->tokens, cap * KV_TOKEN_LEN);
        if (t == NULL)
            return KV_ERR_NOMEM;
        p->tokens = t;
        p->cap = cap;
    }
    memcpy(p->tokens[p->n++], e->token, KV_TOKEN_LEN);
    return 0;
}

int kv_bl_purge(const kv_blocklist *bl, int64_t now, int *n)
{
    purge_ctx p = {now, NULL, 0, 0};
    int r;
    if (n != NULL)
        *n = 0;
    if ((r = begin(bl)) != 0)
        return r;
    if ((r = kv_store_bl_scan(bl->store, purge_cb, &p)) != 0)
        goto out;
    for (size_t i = 0; i < p.n; i++)
        if ((r = kv_store_bl_delete(bl->store, p.tokens[i])) != 0)
            goto out;
    r = 0;
out:
    r = finish(bl, r);
    if (r == 0 && n != NULL)
        *n = (int)p.n;
    free(p.tokens);
    return r;
}

typedef struct {
    const kv_blocklist *bl;
    int (*cb)(void *ctx, const char *number);
    void *ctx;
} export_ctx;

static int emit_sealed(export_ctx *x, const uint8_t token[KV_TOKEN_LEN], char field,
                       const uint8_t sealed[KV_BL_SEALED_LEN])
{
    char pan[32];
    int r = unseal_short(x->bl, token, field, sealed, pan);
    if (r == 0)
        r = kv_pan_valid(pan) ? x->cb(x->ctx, pan) : KV_ERR_FORMAT;
    kv_wipe(pan, sizeof(pan));
    return r;
}

static int export_entry(void *ctx, const kv_bl_entry *e)
{
    return emit_sealed(ctx, e->token, AD_PAN, e->pan_sealed);
}

static int export_wallet(void *ctx, const kv_bl_wallet *w)
{
    return emit_sealed(ctx, w->wallet_token, AD_WALLET, w->wallet_sealed);
}

int kv_bl_export(const kv_blocklist *bl, const char *recipient, int64_t now,
                 int (*cb)(void *ctx, const char *number), void *ctx)
{
    export_ctx x = {bl, cb, ctx};
    int r;
    if (recipient != NULL && (recipient[0] == '\0' || strlen(recipient) >= KV_BL_NAME_MAX))
        return KV_ERR_ARG;
    if ((r = begin(bl)) != 0)
        return r;
    if ((r = kv_store_bl_scan(bl->store, export_entry, &x)) != 0)
        goto out;
    if ((r = kv_store_bl_wallet_scan(bl->store, NULL, export_wallet, &x)) != 0)
        goto out;
    if (recipient != NULL)
        r = kv_store_bl_recipient_put(bl->store, recipient, now);
out:
    return finish(bl, r);
}

int kv_bl_request_add(const kv_blocklist *bl, const char *pan, kv_bl_request_kind kind, int64_t at,
                      kv_bl_request *out)
{
    kv_bl_request q;
    int r;
    memset(&q, 0, sizeof(q));
    if (kind != KV_BL_REQUEST_ACCESS && kind != KV_BL_REQUEST_OBJECTION)
        return KV_ERR_ARG;
    if ((r = pan_token(bl, pan, q.token)) != 0)
        return r;
    mask(pan, q.pan_masked);
    q.kind = kind;
    q.at = at;
    q.due = kv_bl_request_due(at);
    if ((r = begin(bl)) != 0)
        return r;
    r = finish(bl, kv_store_bl_request_put(bl->store, &q));
    if (r == 0 && out != NULL)
        *out = q;
    return r;
}

int kv_bl_request_answer(const kv_blocklist *bl, int64_t id, int64_t at)
{
    int r, found = 0;
    if ((r = begin(bl)) != 0)
        return r;
    r = kv_store_bl_request_answer(bl->store, id, at, &found);
    if (r == 0 && !found)
        r = KV_ERR_NOT_FOUND;
    return finish(bl, r);
}

int kv_bl_request_overdue(const kv_bl_request *q, int64_t now)
{
    return q->answered_at == 0 && now > q->due;
}

int kv_bl_requests(const kv_blocklist *bl, kv_bl_request_cb cb, void *ctx)
{
    return kv_store_bl_request_scan(bl->store, cb, ctx);
}

int kv_bl_hotcard(void *ctx, kv_store *s, const uint8_t token[KV_TOKEN_LEN], const char *pan,
                  int *listed)
{
    int r;
    (void)ctx;
    (void)pan;
    *listed = 0;
    r = kv_store_bl_listed(s, token, listed);
    if (r == KV_ERR_UNSUPPORTED) {
        /* a backend without a block list cannot hold a listing */
        *listed = 0;
        r = 0;
    }
    return r;
}

/* ---- the HSM sealer ---- */

/* keyed.h: KV_SEALED_GCM || IV || AES-GCM || tag, the token's random IV */
static int hsm_seal(void *ctx, const uint8_t ad[KV_BL_AD_LEN], const uint8_t in[32],
                    uint8_t out[KV_BL_SEALED_LEN])
{
    kv_bl_hsm_sealer *hs = ctx;
    out[0] = KV_SEALED_GCM;
    return kv_hsm_gcm_seal(hs->h, &hs->aes, ad, KV_BL_AD_LEN, in, 32, out + 1);
}

static int hsm_unseal(void *ctx, const uint8_t ad[KV_BL_AD_LEN], const uint8_t in[KV_BL_SEALED_LEN],
                      uint8_t out[32])
{
    kv_bl_hsm_sealer *hs = ctx;
    switch (in[0]) {
    case KV_SEALED_GCM:
        return kv_hsm_gcm_open(hs->h, &hs->aes, ad, KV_BL_AD_LEN, in + 1, KV_BL_SEALED_LEN - 1,
                               out);
    case KV_SEALED_LEGACY_CBC:
        /* a schema-2 value: IV (16) || AES-CBC (32), no associated data (keyed.h) */
        return kv_hsm_cbc_decrypt(hs->h, &hs->aes, 0, in + 1, in + 17, 32, out);
    default:
        return KV_ERR_FORMAT;
    }
}

int kv_bl_hsm_sealer_init(kv_bl_hsm_sealer *hs, kv_hsm *h)
{
    int r;
    memset(hs, 0, sizeof(*hs));
    hs->h = h;
    if ((r = kv_hsm_key_find(h, KV_KEY_LABEL_PAN_ENC, &hs->aes)) != 0)
        return r;
    /*
     * A token initialised before key roles has a "pan-enc" without one (role
     * none); it sealed the entries already listed, so it stays usable here.
     * Any other role is refused.
     */
    if (hs->aes.role == KV_ROLE_NONE)
        return 0;
    return kv_hsm_key_require_role(h, &hs->aes, KV_ROLE_PAN_ENC);
}

kv_bl_sealer kv_bl_hsm_sealer_get(kv_bl_hsm_sealer *hs)
{
    kv_bl_sealer s = {hsm_seal, hsm_unseal, hs};
    return s;
}

/* see evidence.h */
#include "src/evidence/evidence.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/base/secure.h"
#include "src/base/jsonw.h"

#include <openssl/evp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int sha256(const void *in, size_t len, uint8_t out[32])
{
    unsigned int n = 0;
    if (EVP_Digest(in, len, out, &n, EVP_sha256(), NULL) != 1 || n != 32)
        return KV_ERR_INTERNAL;
    return 0;
}

int kv_evidence_append(kv_store *s, const kv_mac *mac, const char *type, int64_t time,
                       int64_t recorded, json_t *content, int64_t *id_out)
{
    char *text = NULL;
    size_t len;
    int r;
    if (content == NULL || !json_is_object(content))
        return KV_ERR_ARG;
    if ((text = json_dumps(content, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL)
        return KV_ERR_NOMEM;
    len = strlen(text); /* "{...}": the members are between the braces */
    r = kv_evidence_append_text(s, mac, type, time, recorded, text + 1, len - 2, id_out);
    free(text);
    return r;
}

int kv_evidence_append_text(kv_store *s, const kv_mac *mac, const char *type, int64_t time,
                            int64_t recorded, const char *members, size_t members_len,
                            int64_t *id_out)
{
    int r = KV_ERR_INTERNAL;
    kv_jsonw w;
    char prev_hex[65], t_text[KV_TIME_TEXT], rec_text[KV_TIME_TEXT];
    kv_evidence_row row;
    int64_t head_id;
    uint8_t head_hash[32];

    memset(&row, 0, sizeof(row));
    kv_jsonw_init(&w);
    if ((r = kv_store_evidence_head(s, &head_id, head_hash)) != 0)
        goto out;
    kv_hex_encode(head_hash, 32, prev_hex);
    kv_time_format(time, t_text);
    kv_time_format(recorded, rec_text);
    kv_jsonw_object(&w);
    kv_jsonw_kint(&w, "id", head_id + 1);
    kv_jsonw_kstr(&w, "prev", prev_hex);
    kv_jsonw_kstr(&w, "type", type);
    kv_jsonw_kstr(&w, "time", t_text);
    kv_jsonw_kstr(&w, "recorded", rec_text);
    if (members != NULL)
        kv_jsonw_members(&w, members, members_len);
    kv_jsonw_end(&w);
    if ((row.body = kv_jsonw_finish(&w, &row.body_len)) == NULL) {
        r = KV_ERR_NOMEM;
        goto out;
    }
    row.id = head_id + 1;
    row.time = time;
    if ((r = sha256(row.body, row.body_len, row.hash)) != 0)
        goto out;
    if ((r = kv_mac_compute(mac, (const uint8_t *)row.body, row.body_len, row.mac)) != 0)
        goto out;
    if ((r = kv_store_evidence_put(s, &row)) != 0)
        goto out;
    if (id_out != NULL)
        *id_out = row.id;
    r = 0;
out:
    kv_jsonw_free(&w);
    free(row.body);
    return r;
}

void kv_evidence_record_clear(kv_evidence_record *r)
{
    if (r == NULL)
        return;
    json_decref(r->body);
    free(r->text);
    memset(r, 0, sizeof(*r));
}

/*
 * Check one record: stored hash, id, link (prev_hash: SHA-256 of the
 * previous record's body) and MAC. *ok 0 with why set when it fails;
 * body_out (may be NULL) receives the parsed body.
 */
static int check_record(const kv_mac *mac, const kv_evidence_row *row, const uint8_t prev_hash[32],
                        int *ok, char *why, size_t whylen, json_t **body_out)
{
    uint8_t h[32], m[32], want_prev[32];
    json_t *body = NULL, *jid, *jprev;
    int r;

    *ok = 0;
    if (body_out != NULL)
        *body_out = NULL;
    if ((r = sha256(row->body, row->body_len, h)) != 0)
        return r;
    body = json_loadb(row->body, row->body_len, JSON_REJECT_DUPLICATES, NULL);
    if (!kv_ct_equal(h, row->hash, 32)) {
        snprintf(why, whylen, "record %lld: content does not match its stored hash",
                 (long long)row->id);
        goto done;
    }
    if (body == NULL || !json_is_object(body)) {
        snprintf(why, whylen, "record %lld: content is not a JSON object", (long long)row->id);
        goto done;
    }
    jid = json_object_get(body, "id");
    jprev = json_object_get(body, "prev");
    if (!json_is_integer(jid) || json_integer_value(jid) != row->id) {
        snprintf(why, whylen, "record %lld: id inside the record differs", (long long)row->id);
        goto done;
    }
    if (!json_is_string(jprev) || strlen(json_string_value(jprev)) != 64 ||
        kv_hex_decode(json_string_value(jprev), want_prev, sizeof(want_prev)) != 32 ||
        memcmp(want_prev, prev_hash, 32) != 0) {
        snprintf(why, whylen, "record %lld: link to record %lld is broken (prev hash differs)",
                 (long long)row->id, (long long)(row->id - 1));
        goto done;
    }
    if ((r = kv_mac_compute(mac, (const uint8_t *)row->body, row->body_len, m)) != 0) {
        json_decref(body);
        return r;
    }
    if (!kv_ct_equal(m, row->mac, 32)) {
        snprintf(why, whylen, "record %lld: MAC does not verify under the evidence key",
                 (long long)row->id);
        goto done;
    }
    *ok = 1;
done:
    if (body_out != NULL)
        *body_out = body;
    else
        json_decref(body);
    return 0;
}

int kv_evidence_load(kv_store *s, const kv_mac *mac, int64_t id, kv_evidence_record *out)
{
    int r = KV_ERR_INTERNAL, found = 0, ok = 0;
    kv_evidence_row row, prev;
    uint8_t prev_hash[32];

    memset(out, 0, sizeof(*out));
    memset(&row, 0, sizeof(row));
    memset(&prev, 0, sizeof(prev));
    memset(prev_hash, 0, sizeof(prev_hash));
    /* no transaction of its own: records never change once written */
    if ((r = kv_store_evidence_get(s, id, &row, &found)) != 0)
        goto out;
    if (!found) {
        r = KV_ERR_NOT_FOUND;
        goto out;
    }
    out->id = row.id;
    out->time = row.time;
    memcpy(out->hash, row.hash, 32);
    memcpy(out->mac, row.mac, 32);
    if (id > 1) {
        if ((r = kv_store_evidence_get(s, id - 1, &prev, &found)) != 0)
            goto out;
        if (!found) {
            snprintf(out->why, sizeof(out->why), "record %lld: previous record %lld is missing",
                     (long long)id, (long long)(id - 1));
        } else if ((r = sha256(prev.body, prev.body_len, prev_hash)) != 0) {
            goto out;
        }
    }
    if (out->why[0] == '\0') {
        if ((r = check_record(mac, &row, prev_hash, &ok, out->why, sizeof(out->why), &out->body)) !=
            0)
            goto out;
        out->intact = ok;
    } else {
        out->body = json_loadb(row.body, row.body_len, 0, NULL);
    }
    out->text = row.body;
    out->text_len = row.body_len;
    row.body = NULL; /* transferred */
    r = 0;
out:
    kv_evidence_row_clear(&row);
    kv_evidence_row_clear(&prev);
    if (r != 0)
        kv_evidence_record_clear(out);
    return r;
}

struct walk {
    const kv_mac *mac;
    kv_evidence_report *rep;
    uint8_t prev_hash[32]; /* SHA-256 of the previous body */
    int64_t expect_id;
};

static int walk_one(void *ctx, const kv_evidence_row *row)
{
    struct walk *w = ctx;
    int r, ok = 0;

    if (row->id != w->expect_id) {
        w->rep->broken_id = w->expect_id;
        snprintf(w->rep->why, sizeof(w->rep->why),
                 "record %lld is missing (the next stored record is %lld)", (long long)w->expect_id,
                 (long long)row->id);
        return 1;
    }
    if ((r = check_record(w->mac, row, w->prev_hash, &ok, w->rep->why, sizeof(w->rep->why),
                          NULL)) != 0)
        return r;
    if (!ok) {
        w->rep->broken_id = row->id;
        return 1;
    }
    /* the link the next record must carry is the hash of this body, now checked */
    memcpy(w->prev_hash, row->hash, 32);
    w->rep->records++;
    w->rep->head_id = row->id;
    memcpy(w->rep->head_hash, row->hash, 32);
    w->expect_id++;
    return 0;
}

int kv_evidence_verify_chain(kv_store *s, const kv_mac *mac, kv_evidence_report *rep)
{
    struct walk w;
    int r;

    memset(rep, 0, sizeof(*rep));
    memset(&w, 0, sizeof(w));
    w.mac = mac;
    w.rep = rep;
    w.expect_id = 1;
    if ((r = kv_store_begin(s, 0)) != 0)
        return r;
    r = kv_store_evidence_scan(s, 1, INT64_MIN, INT64_MAX, walk_one, &w);
    kv_store_rollback(s);
    return r;
}

char *kv_evidence_export_line(const kv_evidence_row *r)
{
    char hash[65], mac[65];
    json_t *body, *line;
    char *text;

    kv_hex_encode(r->hash, 32, hash);
    kv_hex_encode(r->mac, 32, mac);
    body = json_loadb(r->body, r->body_len, 0, NULL);
    if (body != NULL)
        line = json_pack("{sIsssssO}", "id", (json_int_t)r->id, "hash", hash, "mac", mac, "record",
                         body);
    else
        line = json_pack("{sIsssssnss#}", "id", (json_int_t)r->id, "hash", hash, "mac", mac,
                         "record", NULL, "text", r->body, (int)r->body_len);
    json_decref(body);
    if (line == NULL)
        return NULL;
    text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(line);
    return text;
}

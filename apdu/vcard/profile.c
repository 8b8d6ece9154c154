/*
 * see profile.h
 *
 * JSON card profile format (also in tests/data/README.md). Hex strings may
 * contain spaces. A "TLV list" is either an object {"TAG": "VALUE", ...}
 * (kept in file order) or an array of pairs [["TAG", "VALUE"], ...]; tags
 * are hex (1-3 bytes, BER-TLV), values hex.
 *
 * {
 *   "name": "text",                        optional
 *   "atr": "3B...",                        required, 2..33 bytes
 *   "pse": true | false | {                optional; PSE 1PAY.SYS.DDF01
 *       "sfi": 1,                          directory SFI (1..10), default 1
 *       "language": "en",                  5F2D in the PSE FCI
 *       "fci_extra": "hex TLVs",           more objects in the A5 template
 *       "records": [RECORD...]             directory records; by default one record
 *   },                                     per application: 70 { 61 { 4F 50 9F12 87 } }
 *   "ppse": true | false | {               optional; PPSE 2PAY.SYS.DDF01, its FCI
 *       "fci_extra": "hex TLVs"            carries BF0C { 61 { 4F 50 87 } ... }
 *   },
 *   "applications": [{                     required, 1..8, in directory order
 *       "aid": "A0000000031010",           required, 5..16 bytes
 *       "label": "VISA DEBIT",             50, 1..16 characters
 *       "priority": 1,                     87 byte as is (bit 8: confirmation)
 *       "preferred_name": "text",          9F12
 *       "issuer_code_table": 1,            9F11
 *       "language": "daen",                5F2D
 *       "pdol": "9F1A02...",               9F38; GPO then needs 83 with that many bytes
 *       "fci_extra": "hex TLVs",           more objects in A5 (before BF0C)
 *       "fci_discretionary": "hex TLVs",   contents of BF0C
 *       "directory_extra": "hex TLVs",     more objects in its PSE/PPSE entries
 *       "pse": true, "ppse": true,         listed in the directories (default true)
 *       "blocked": false,                  SELECT answers FCI + 6283
 *       "aip": "1800",                     required
 *       "afl": "08010100 10010200",        required, 4-byte entries
 *       "gpo_format": 1 | 2,               80 { AIP AFL } or 77 { 82 94 ... }
 *       "gpo_extra": TLV list,             format 2: objects after 82 and 94
 *       "records": [RECORD...],
 *       "data": TLV list                   GET DATA objects of this application
 *   }],
 *   "data": TLV list,                      card GET DATA objects: 9F13, 9F4F, 9F36
 *                                          (the initial ATC, 2 bytes); 9F17 comes from "pin"
 *   "pin": {"value": "1234",               4..12 digits (test data; never printed)
 *           "try_limit": 3,                1..15
 *           "tries_left": 3},              default try_limit
 *   "quirks": {"get_response": false, "wrong_le": false},
 *   "expect": {...},                       facts for the tests; not read here
 *   "keys": {...},                         the card's test keys and personality,
 *   "risk": {...}                          card risk management: parsed in
 *                                          profile_keys.c (apdu/vcard/CRYPTO.md §1, §6);
 *                                          an application may have its own "keys",
 *                                          "risk", "pin" and "atc"
 * }
 * "faults": [...] and "log": {...}: the test-lab faults and the transaction
 * log, parsed by profile_faults.c (tests/data/README.md "Faults", "Transaction log").
 * RECORD: {"sfi": 1..30, "record": 1..255, "hex": "70..."} (one whole 70 template)
 *      or {"sfi": ..., "record": ..., "tags": TLV list} (wrapped in 70).
 */
#include "apdu/vcard/profile.h"
#include "apdu/vcard/profile_int.h"
#include "apdu/vcard/card_fault.h"
#include "apdu/dol.h"
#include "apdu/tlv.h"
#include "apdu/vcard/vcard.h"
#include "apdu/vcard/vcrypto.h"
#include "src/base/err.h"
#include "src/base/secure.h"
#include "src/base/hex.h"
#include "src/base/jdec.h"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t pse_name[] = "1PAY.SYS.DDF01";
static const uint8_t ppse_name[] = "2PAY.SYS.DDF01";

typedef kv_vcard_loader loader;

/* see profile_int.h */
int kv_vcard_why(char *why, size_t whylen, int err, const char *fmt, ...)
{
    va_list ap;
    if (why != NULL && whylen > 0) {
        va_start(ap, fmt);
        vsnprintf(why, whylen, fmt, ap);
        va_end(ap);
    }
    return err;
}

/* see profile_int.h */
int kv_vcard_strict(loader *l, const json_t *obj, const char *where, const kv_jdec_table *t,
                    void *in)
{
    kv_jdec_error e;
    int r;
    if (!json_is_object(obj))
        return kv_vcard_bad(l, KV_ERR_JSON, "%s: not an object",
                            where[0] != '\0' ? where : "profile");
    if ((r = kv_jdec_decode(obj, t, in, NULL, &e)) == 0)
        return 0;
    if (e.code == KV_JDEC_UNKNOWN_FIELD)
        return kv_vcard_bad(l, KV_ERR_JSON, "%s%s%.*s: unknown field \"%s\"",
                            where[0] != '\0' ? where : "profile", e.parent_len > 0 ? "." : "",
                            (int)e.parent_len, e.path, e.key);
    if (r == KV_ERR_JSON && e.code != KV_JDEC_WRONG_TYPE && e.code != KV_JDEC_MISSING &&
        e.code != KV_JDEC_TOO_MANY && e.code != KV_JDEC_TOO_FEW)
        r = KV_ERR_FORMAT;
    return kv_vcard_bad(l, r, "%s%s%s: %s", where, where[0] != '\0' ? "." : "", e.path, e.msg);
}

/* A printable ASCII text member (the row's min..max characters) into uint8_t[], its length to
 * len_off. */
static int ascii(kv_jdec *d, const json_t *v, void *field, void *obj, void *ctx)
{
    const kv_jdec_field *f = kv_jdec_row(d);
    const char *s;
    size_t n;
    (void)ctx;
    if (!json_is_string(v))
        return kv_jdec_fail(d, KV_JDEC_WRONG_TYPE, "not a string");
    s = json_string_value(v);
    n = strlen(s);
    if ((int64_t)n < f->min || (int64_t)n > f->max)
        return kv_jdec_fail(d, KV_JDEC_OUT_OF_RANGE, "length %zu is outside %lld..%lld", n,
                            (long long)f->min, (long long)f->max);
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7E)
            return kv_jdec_fail(d, KV_JDEC_BAD_FORMAT, "not printable ASCII");
    memcpy(field, s, n);
    *(size_t *)(void *)((char *)obj + f->len_off) = n;
    return 0;
}

/* NONE, ANY, INT and BOOL: profile_int.h */
#define NEED(nm)                                                                                   \
    {                                                                                              \
        nm, KV_JT_ANY, KV_JF_REQUIRED, 0, 0, 0, 0, NONE, NONE, NULL, NULL, 0, NULL, NULL           \
    }
#define TEXT(st, nm, mn, mx, fld)                                                                  \
    {                                                                                              \
        nm, KV_JT_CUSTOM, 0, mn, mx, offsetof(st, fld), 0, offsetof(st, fld##_len), NONE, NULL,    \
            NULL, 0, ascii, NULL                                                                   \
    }

/* see profile_int.h */
int kv_vcard_hex_value(loader *l, json_t *v, const char *where, uint8_t *out, size_t min,
                       size_t max, size_t *len)
{
    int n;
    if (!json_is_string(v))
        return kv_vcard_bad(l, KV_ERR_JSON, "%s: not a hex string", where);
    n = kv_hex_decode(json_string_value(v), out, max);
    if (n == KV_ERR_BUFFER)
        return kv_vcard_bad(l, KV_ERR_FORMAT, "%s: longer than %zu bytes", where, max);
    if (n < 0)
        return kv_vcard_bad(l, KV_ERR_FORMAT, "%s: not hex", where);
    if ((size_t)n < min)
        return kv_vcard_bad(l, KV_ERR_FORMAT, "%s: shorter than %zu bytes", where, min);
    *len = (size_t)n;
    return 0;
}

/* Parse one BER tag given as hex ("9F36"): 1-3 bytes forming one well-formed tag. */
static int tag_value(loader *l, const char *hex, const char *where, uint32_t *tag)
{
    uint8_t buf[3];
    uint32_t t = 0;
    int n = kv_hex_decode(hex, buf, sizeof(buf));
    if (n < 1)
        return kv_vcard_bad(l, KV_ERR_FORMAT, "%s: tag \"%s\" is not 1..3 bytes of hex", where,
                            hex);
    for (int i = 0; i < n; i++)
        t = t << 8 | buf[i];
    if (buf[0] == 0x00 || !kv_tlv_tag_is_valid(t))
        return kv_vcard_bad(l, KV_ERR_FORMAT, "%s: \"%s\" is not a BER-TLV tag", where, hex);
    *tag = t;
    return 0;
}

/* Hex that must be a sequence of well-formed TLV objects (may be empty). */
static int tlv_hex(loader *l, json_t *obj, const char *key, const char *where, uint8_t *out,
                   size_t max, size_t *len)
{
    json_t *v = json_object_get(obj, key);
    char w[160];
    int r;
    *len = 0;
    if (v == NULL)
        return 0;
    snprintf(w, sizeof(w), "%s.%s", where, key);
    if ((r = kv_vcard_hex_value(l, v, w, out, 0, max, len)) != 0)
        return r;
    if (kv_tlv_validate(out, *len) != 0)
        return kv_vcard_bad(l, KV_ERR_FORMAT, "%s: not well-formed BER-TLV", w);
    return 0;
}

typedef int (*tlv_item_fn)(loader *l, const char *where, uint32_t tag, const uint8_t *value,
                           size_t len, void *arg);

/* Walk a TLV list (object or array of pairs), calling fn for each item in order. */
static int tlv_list(loader *l, json_t *v, const char *where, tlv_item_fn fn, void *arg)
{
    uint8_t value[KV_VCARD_DATA_MAX];
    char w[192];
    size_t i, len;
    uint32_t tag;
    int r;

    if (json_is_object(v)) {
        const char *key;
        json_t *hex;
        json_object_foreach(v, key, hex)
        {
            snprintf(w, sizeof(w), "%s.%s", where, key);
            if ((r = tag_value(l, key, w, &tag)) != 0 ||
                (r = kv_vcard_hex_value(l, hex, w, value, 0, sizeof(value), &len)) != 0 ||
                (r = fn(l, w, tag, value, len, arg)) != 0)
                return r;
        }
        return 0;
    }
    if (!json_is_array(v))
        return kv_vcard_bad(l, KV_ERR_JSON, "%s: not a TLV list (object or array of pairs)", where);
    for (i = 0; i < json_array_size(v); i++) {
        json_t *pair = json_array_get(v, i);
        if (snprintf(w, sizeof(w), "%s[%zu]", where, i) >= (int)sizeof(w))
            w[sizeof(w) - 1] = '\0'; /* a cut name is still a name */
        if (!json_is_array(pair) || json_array_size(pair) != 2 ||
            !json_is_string(json_array_get(pair, 0)))
            return kv_vcard_bad(l, KV_ERR_JSON, "%s: not a [\"TAG\", \"VALUE\"] pair", w);
        if ((r = tag_value(l, json_string_value(json_array_get(pair, 0)), w, &tag)) != 0 ||
            (r = kv_vcard_hex_value(l, json_array_get(pair, 1), w, value, 0, sizeof(value),
                                    &len)) != 0 ||
            (r = fn(l, w, tag, value, len, arg)) != 0)
            return r;
    }
    return 0;
}

static int put_item(loader *l, const char *where, uint32_t tag, const uint8_t *value, size_t len,
                    void *arg)
{
    kv_tlv_writer *w = arg;
    if (kv_tlv_put(w, tag, value, len) != 0)
        return kv_vcard_bad(l, KV_ERR_FORMAT, "%s: does not fit in %zu bytes", where, w->cap);
    return 0;
}

typedef struct {
    kv_vcard_dataobj *objs;
    size_t *n;
} data_sink;

static int data_item(loader *l, const char *where, uint32_t tag, const uint8_t *value, size_t len,
                     void *arg)
{
    data_sink *s = arg;
    kv_vcard_dataobj *o;
    if (tag == 0x9F17)
        return kv_vcard_bad(l, KV_ERR_FORMAT, "%s: 9F17 (PIN try counter) comes from \"pin\"",
                            where);
    if (*s->n >= KV_VCARD_MAX_DATA)
        return kv_vcard_bad(l, KV_ERR_FORMAT, "%s: more than %d objects", where, KV_VCARD_MAX_DATA);
    if (len > KV_VCARD_VALUE_MAX)
        return kv_vcard_bad(l, KV_ERR_FORMAT, "%s: longer than %d bytes", where,
                            KV_VCARD_VALUE_MAX);
    o = &s->objs[(*s->n)++];
    o->tag = tag;
    o->len = len;
    memcpy(o->value, value, len);
    return 0;
}

static int data_list(loader *l, json_t *obj, const char *where, kv_vcard_dataobj *objs, size_t *n)
{
    json_t *v = json_object_get(obj, "data");
    char w[160];
    data_sink s = {objs, n};
    if (v == NULL)
        return 0;
    snprintf(w, sizeof(w), "%s.data", where);
    return tlv_list(l, v, w, data_item, &s);
}

static int add_record(loader *l, kv_vcard_df *df, const char *where, unsigned sfi, unsigned number,
                      const uint8_t *data, size_t len)
{
    kv_vcard_record *rec;
    for (size_t i = 0; i < df->nrecords; i++)
        if (df->records[i].sfi == sfi && df->records[i].number == number)
            return kv_vcard_bad(l, KV_ERR_FORMAT, "%s: SFI %u record %u appears twice", where, sfi,
                                number);
    if (df->nrecords >= KV_VCARD_MAX_RECORDS)
        return kv_vcard_bad(l, KV_ERR_FORMAT, "%s: more than %d records", where,
                            KV_VCARD_MAX_RECORDS);
    rec = &df->records[df->nrecords++];
    rec->sfi = (uint8_t)sfi;
    rec->number = (uint8_t)number;
    rec->len = len;
    memcpy(rec->data, data, len);
    return 0;
}

struct record_in {
    int64_t sfi, record;
};
static const kv_jdec_field record_rows[] = {
    INT(struct record_in, "sfi", 1, 30, sfi),
    INT(struct record_in, "record", 1, 255, record),
    ANY("hex"),
    ANY("tags"),
};
static const kv_jdec_table record_tbl = KV_JDEC_TABLE(NULL, record_rows, 0, NULL, NULL);

/* One RECORD object; default_sfi 0 means "sfi" is required. */
static int parse_record(loader *l, json_t *r, const char *where, unsigned default_sfi,
                        kv_vcard_df *df)
{
    uint8_t buf[KV_VCARD_DATA_MAX];
    size_t len = 0;
    struct record_in in = {default_sfi, 0};
    int64_t sfi, number;
    json_t *hex, *tags;
    int rc;

    if ((rc = kv_vcard_strict(l, r, where, &record_tbl, &in)) != 0)
        return rc;
    sfi = in.sfi;
    number = in.record;
    if (sfi == 0 || number == 0)
        return kv_vcard_bad(l, KV_ERR_JSON, "%s: needs \"sfi\" and \"record\"", where);
    hex = json_object_get(r, "hex");
    tags = json_object_get(r, "tags");
    if ((hex == NULL) == (tags == NULL))
        return kv_vcard_bad(l, KV_ERR_JSON, "%s: needs one of \"hex\" and \"tags\"", where);
    if (hex != NULL) {
        kv_cursor c;
        kv_tlv t;
        char w[176];
        snprintf(w, sizeof(w), "%s.hex", where);
        if ((rc = kv_vcard_hex_value(l, hex, w, buf, 2, sizeof(buf), &len)) != 0)
            return rc;
        kv_cursor_init(&c, buf, len);
        if (kv_tlv_validate(buf, len) != 0 || kv_tlv_next(&c, &t) != 1 || t.tag != 0x70 ||
            t.raw != buf || t.raw_len != len)
            return kv_vcard_bad(l, KV_ERR_FORMAT, "%s: not one well-formed 70 template", w);
    } else {
        kv_tlv_writer w;
        char wh[176];
        snprintf(wh, sizeof(wh), "%s.tags", where);
        kv_tlv_writer_init(&w, buf, sizeof(buf));
        kv_tlv_begin(&w, 0x70);
        if ((rc = tlv_list(l, tags, wh, put_item, &w)) != 0)
            return rc;
        if (kv_tlv_end(&w) != 0 || w.err != 0)
            return kv_vcard_bad(l, KV_ERR_FORMAT, "%s: record longer than %d bytes", wh,
                                KV_VCARD_DATA_MAX);
        len = w.len;
    }
    return add_record(l, df, where, (unsigned)sfi, (unsigned)number, buf, len);
}

static int parse_records(loader *l, json_t *obj, const char *where, unsigned default_sfi,
                         kv_vcard_df *df)
{
    json_t *arr = json_object_get(obj, "records");
    char w[160];
    int r;
    if (arr == NULL)
        return 0;
    if (!json_is_array(arr))
        return kv_vcard_bad(l, KV_ERR_JSON, "%s.records: not an array", where);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        if (snprintf(w, sizeof(w), "%s.records[%zu]", where, i) >= (int)sizeof(w))
            w[sizeof(w) - 1] = '\0'; /* a cut name is still a name */
        if ((r = parse_record(l, json_array_get(arr, i), w, default_sfi, df)) != 0)
            return r;
    }
    return 0;
}

/* What an application contributes to the FCIs and directories. */
typedef struct {
    uint8_t label[16];
    size_t label_len;
    uint8_t pref[16];
    size_t pref_len;
    long priority; /* -1: none */
    int in_pse, in_ppse;
    uint8_t dir_extra[128];
    size_t dir_extra_len;
} app_dir;

/* 61 { 4F 50 [9F12] [87] extra } */
static void put_dir_entry(kv_tlv_writer *w, const kv_vcard_df *app, const app_dir *d, int with_pref)
{
    uint8_t prio;
    kv_tlv_begin(w, 0x61);
    kv_tlv_put(w, 0x4F, app->name, app->name_len);
    if (d->label_len > 0)
        kv_tlv_put(w, 0x50, d->label, d->label_len);
    if (with_pref && d->pref_len > 0)
        kv_tlv_put(w, 0x9F12, d->pref, d->pref_len);
    if (d->priority >= 0) {
        prio = (uint8_t)d->priority;
        kv_tlv_put(w, 0x87, &prio, 1);
    }
    kv_tlv_put_raw(w, d->dir_extra, d->dir_extra_len);
    kv_tlv_end(w);
}

/* The typed members of an application; the rest are read from the object below. */
struct app_in {
    uint8_t label[16];
    size_t label_len;
    uint8_t preferred_name[16];
    size_t preferred_name_len;
    uint8_t language[8];
    size_t language_len;
    int64_t priority, issuer_code_table, gpo_format;
    int pse, ppse, blocked;
};
static const kv_jdec_field app_rows[] = {
    NEED("aid"),
    TEXT(struct app_in, "label", 1, 16, label),
    INT(struct app_in, "priority", 0, 255, priority),
    TEXT(struct app_in, "preferred_name", 1, 16, preferred_name),
    INT(struct app_in, "issuer_code_table", 1, 10, issuer_code_table),
    TEXT(struct app_in, "language", 2, 8, language),
    ANY("pdol"),
    ANY("fci_extra"),
    ANY("fci_discretionary"),
    ANY("directory_extra"),
    BOOL(struct app_in, "pse", pse),
    BOOL(struct app_in, "ppse", ppse),
    BOOL(struct app_in, "blocked", blocked),
    NEED("aip"),
    NEED("afl"),
    INT(struct app_in, "gpo_format", 1, 2, gpo_format),
    ANY("gpo_extra"),
    ANY("records"),
    ANY("data"),
    ANY("keys"), /* the application's own keys, risk, PIN, ATC: profile_keys.c */
    ANY("risk"),
    ANY("pin"),
    ANY("atc"),
};
static const kv_jdec_table app_tbl = KV_JDEC_TABLE(NULL, app_rows, 0, NULL, NULL);

static int parse_app(loader *l, json_t *a, const char *where, kv_vcard_df *df, app_dir *d)
{
    uint8_t pdol[252], fci_extra[200], disc[200];
    size_t pdol_len = 0, fci_extra_len = 0, disc_len = 0, n;
    struct app_in in;
    long code_table, gpo_format;
    const uint8_t *lang;
    size_t lang_len;
    char w[160];
    json_t *v;
    kv_tlv_writer tw;
    int r;

    memset(&in, 0, sizeof(in));
    in.priority = in.issuer_code_table = -1;
    in.gpo_format = 1;
    in.pse = in.ppse = 1;
    if ((r = kv_vcard_strict(l, a, where, &app_tbl, &in)) != 0)
        return r;
    df->kind = KV_VCARD_DF_APP;
    memcpy(d->label, in.label, sizeof(d->label));
    d->label_len = in.label_len;
    memcpy(d->pref, in.preferred_name, sizeof(d->pref));
    d->pref_len = in.preferred_name_len;
    d->priority = (long)in.priority;
    d->in_pse = in.pse;
    d->in_ppse = in.ppse;
    df->blocked = in.blocked;
    code_table = (long)in.issuer_code_table;
    gpo_format = (long)in.gpo_format;
    lang = in.language;
    lang_len = in.language_len;

    snprintf(w, sizeof(w), "%s.aid", where);
    if ((v = json_object_get(a, "aid")) == NULL)
        return kv_vcard_bad(l, KV_ERR_JSON, "%s: missing", w);
    if ((r = kv_vcard_hex_value(l, v, w, df->name, 5, KV_VCARD_DF_NAME_MAX, &df->name_len)) != 0)
        return r;
    if ((r = tlv_hex(l, a, "fci_extra", where, fci_extra, sizeof(fci_extra), &fci_extra_len)) !=
            0 ||
        (r = tlv_hex(l, a, "fci_discretionary", where, disc, sizeof(disc), &disc_len)) != 0 ||
        (r = tlv_hex(l, a, "directory_extra", where, d->dir_extra, sizeof(d->dir_extra),
                     &d->dir_extra_len)) != 0)
        return r;
    if (lang_len % 2 != 0)
        return kv_vcard_bad(l, KV_ERR_FORMAT, "%s.language: not 2-letter codes", where);
    df->gpo_format = (int)gpo_format;

    if ((v = json_object_get(a, "pdol")) != NULL) {
        snprintf(w, sizeof(w), "%s.pdol", where);
        if ((r = kv_vcard_hex_value(l, v, w, pdol, 2, sizeof(pdol), &pdol_len)) != 0)
            return r;
        if (kv_dol_data_len(pdol, pdol_len, &df->pdol_data_len) != 0)
            return kv_vcard_bad(l, KV_ERR_FORMAT, "%s: not a data object list", w);
        if (df->pdol_data_len > 252)
            return kv_vcard_bad(l, KV_ERR_FORMAT, "%s: PDOL data longer than 252 bytes", w);
    }

    snprintf(w, sizeof(w), "%s.aip", where);
    if ((v = json_object_get(a, "aip")) == NULL)
        return kv_vcard_bad(l, KV_ERR_JSON, "%s: missing", w);
    if ((r = kv_vcard_hex_value(l, v, w, df->aip, 2, 2, &n)) != 0)
        return r;
    snprintf(w, sizeof(w), "%s.afl", where);
    if ((v = json_object_get(a, "afl")) == NULL)
        return kv_vcard_bad(l, KV_ERR_JSON, "%s: missing", w);
    if ((r = kv_vcard_hex_value(l, v, w, df->afl, 4, sizeof(df->afl), &df->afl_len)) != 0)
        return r;
    if (df->afl_len % 4 != 0)
        return kv_vcard_bad(l, KV_ERR_FORMAT, "%s: not a multiple of 4 bytes", w);
    for (size_t i = 0; i < df->afl_len; i += 4) {
        /* EMV Book 3 §10.2: SFI in bits 8-4, first >= 1, last >= first, ODA count <= span */
        const uint8_t *e = &df->afl[i];
        if ((e[0] & 7) != 0 || (e[0] >> 3) < 1 || (e[0] >> 3) > 30 || e[1] == 0 || e[2] < e[1] ||
            e[3] > e[2] - e[1] + 1)
            return kv_vcard_bad(l, KV_ERR_FORMAT, "%s: entry %zu is not a valid AFL entry", w,
                                i / 4 + 1);
    }

    if ((v = json_object_get(a, "gpo_extra")) != NULL) {
        snprintf(w, sizeof(w), "%s.gpo_extra", where);
        if (df->gpo_format != 2)
            return kv_vcard_bad(l, KV_ERR_FORMAT, "%s: only with gpo_format 2", w);
        kv_tlv_writer_init(&tw, df->gpo_extra, sizeof(df->gpo_extra));
        if ((r = tlv_list(l, v, w, put_item, &tw)) != 0)
            return r;
        df->gpo_extra_len = tw.len;
    }
    n = df->gpo_format == 1
            ? 2 + df->afl_len
            : kv_tlv_header_size(0x82, 2) + 2 + kv_tlv_header_size(0x94, df->afl_len) +
                  df->afl_len + df->gpo_extra_len;
    if (kv_tlv_header_size(0x77, n) + n > KV_VCARD_DATA_MAX)
        return kv_vcard_bad(l, KV_ERR_FORMAT, "%s: GPO answer longer than %d bytes", where,
                            KV_VCARD_DATA_MAX);
    if ((r = parse_records(l, a, where, 0, df)) != 0 ||
        (r = data_list(l, a, where, df->data, &df->ndata)) != 0)
        return r;

    /* FCI of an ADF, EMV Book 1 §11.3.4: 6F { 84 A5 { 50 87 9F38 5F2D 9F11 9F12 BF0C } } */
    kv_tlv_writer_init(&tw, df->fci, sizeof(df->fci));
    kv_tlv_begin(&tw, 0x6F);
    kv_tlv_put(&tw, 0x84, df->name, df->name_len);
    kv_tlv_begin(&tw, 0xA5);
    if (d->label_len > 0)
        kv_tlv_put(&tw, 0x50, d->label, d->label_len);
    if (d->priority >= 0) {
        uint8_t prio = (uint8_t)d->priority;
        kv_tlv_put(&tw, 0x87, &prio, 1);
    }
    if (pdol_len > 0)
        kv_tlv_put(&tw, 0x9F38, pdol, pdol_len);
    if (lang_len > 0)
        kv_tlv_put(&tw, 0x5F2D, lang, lang_len);
    if (code_table > 0) {
        uint8_t ct = (uint8_t)code_table;
        kv_tlv_put(&tw, 0x9F11, &ct, 1);
    }
    if (d->pref_len > 0)
        kv_tlv_put(&tw, 0x9F12, d->pref, d->pref_len);
    kv_tlv_put_raw(&tw, fci_extra, fci_extra_len);
    if (disc_len > 0)
        kv_tlv_put(&tw, 0xBF0C, disc, disc_len);
    kv_tlv_end(&tw);
    kv_tlv_end(&tw);
    if (tw.err != 0)
        return kv_vcard_bad(l, KV_ERR_FORMAT, "%s: FCI longer than %d bytes", where,
                            KV_VCARD_DATA_MAX);
    df->fci_len = tw.len;
    return 0;
}

/* PSE or PPSE: true/false or an object. Returns 1 when present, 0 absent, <0 error. */
static int parse_dir(loader *l, json_t *root, const char *key, json_t **obj)
{
    json_t *v = json_object_get(root, key);
    *obj = NULL;
    if (v == NULL || json_is_false(v))
        return 0;
    if (json_is_true(v))
        return 1;
    if (!json_is_object(v))
        return kv_vcard_bad(l, KV_ERR_JSON, "%s: not true, false or an object", key);
    *obj = v;
    return 1;
}

struct pse_in {
    uint8_t language[8];
    size_t language_len;
    int64_t sfi;
};
static const kv_jdec_field pse_rows[] = {
    INT(struct pse_in, "sfi", 1, 10, sfi),
    TEXT(struct pse_in, "language", 2, 8, language),
    ANY("fci_extra"),
    ANY("records"),
};
static const kv_jdec_table pse_tbl = KV_JDEC_TABLE(NULL, pse_rows, 0, NULL, NULL);
static const kv_jdec_field ppse_rows[] = {ANY("fci_extra")};
static const kv_jdec_table ppse_tbl = KV_JDEC_TABLE(NULL, ppse_rows, 0, NULL, NULL);

static int build_pse(loader *l, json_t *o, kv_vcard_df *pse, const kv_vcard_df *apps,
                     const app_dir *dirs, size_t napps)
{
    struct pse_in in = {{0}, 0, 1};
    uint8_t extra[200];
    size_t extra_len = 0;
    long sfi = 1;
    kv_tlv_writer w;
    uint8_t s;
    int r;

    pse->kind = KV_VCARD_DF_PSE;
    memcpy(pse->name, pse_name, sizeof(pse_name) - 1);
    pse->name_len = sizeof(pse_name) - 1;
    if (o != NULL) {
        if ((r = kv_vcard_strict(l, o, "pse", &pse_tbl, &in)) != 0)
            return r;
        sfi = (long)in.sfi;
        if ((r = tlv_hex(l, o, "fci_extra", "pse", extra, sizeof(extra), &extra_len)) != 0 ||
            (r = parse_records(l, o, "pse", (unsigned)sfi, pse)) != 0)
            return r;
    }
    if (json_object_get(o, "records") == NULL) {
        /* one directory entry per record, in profile order (EMV Book 1 §12.2.3) */
        unsigned number = 1;
        for (size_t i = 0; i < napps; i++) {
            uint8_t rec[KV_VCARD_DATA_MAX];
            if (!dirs[i].in_pse)
                continue;
            kv_tlv_writer_init(&w, rec, sizeof(rec));
            kv_tlv_begin(&w, 0x70);
            put_dir_entry(&w, &apps[i], &dirs[i], 1);
            kv_tlv_end(&w);
            if (w.err != 0)
                return kv_vcard_bad(l, KV_ERR_FORMAT, "applications[%zu]: PSE entry too long", i);
            if ((r = add_record(l, pse, "pse", (unsigned)sfi, number++, rec, w.len)) != 0)
                return r;
        }
    }
    s = (uint8_t)sfi;
    kv_tlv_writer_init(&w, pse->fci, sizeof(pse->fci));
    kv_tlv_begin(&w, 0x6F);
    kv_tlv_put(&w, 0x84, pse->name, pse->name_len);
    kv_tlv_begin(&w, 0xA5);
    kv_tlv_put(&w, 0x88, &s, 1);
    if (in.language_len > 0)
        kv_tlv_put(&w, 0x5F2D, in.language, in.language_len);
    kv_tlv_put_raw(&w, extra, extra_len);
    kv_tlv_end(&w);
    kv_tlv_end(&w);
    if (w.err != 0)
        return kv_vcard_bad(l, KV_ERR_FORMAT, "pse: FCI longer than %d bytes", KV_VCARD_DATA_MAX);
    pse->fci_len = w.len;
    return 0;
}

static int build_ppse(loader *l, json_t *o, kv_vcard_df *ppse, const kv_vcard_df *apps,
                      const app_dir *dirs, size_t napps)
{
    uint8_t extra[200];
    size_t extra_len = 0;
    kv_tlv_writer w;
    int r;

    ppse->kind = KV_VCARD_DF_PPSE;
    memcpy(ppse->name, ppse_name, sizeof(ppse_name) - 1);
    ppse->name_len = sizeof(ppse_name) - 1;
    if (o != NULL &&
        ((r = kv_vcard_strict(l, o, "ppse", &ppse_tbl, NULL)) != 0 ||
         (r = tlv_hex(l, o, "fci_extra", "ppse", extra, sizeof(extra), &extra_len)) != 0))
        return r;
    /* EMV Book B: 6F { 84 A5 { BF0C { 61 {4F 50 87} ... } } } */
    kv_tlv_writer_init(&w, ppse->fci, sizeof(ppse->fci));
    kv_tlv_begin(&w, 0x6F);
    kv_tlv_put(&w, 0x84, ppse->name, ppse->name_len);
    kv_tlv_begin(&w, 0xA5);
    kv_tlv_begin(&w, 0xBF0C);
    for (size_t i = 0; i < napps; i++)
        if (dirs[i].in_ppse)
            put_dir_entry(&w, &apps[i], &dirs[i], 0);
    kv_tlv_end(&w);
    kv_tlv_put_raw(&w, extra, extra_len);
    kv_tlv_end(&w);
    kv_tlv_end(&w);
    if (w.err != 0)
        return kv_vcard_bad(l, KV_ERR_FORMAT, "ppse: FCI longer than %d bytes", KV_VCARD_DATA_MAX);
    ppse->fci_len = w.len;
    return 0;
}

struct pin_in {
    int64_t try_limit, tries_left;
};
static const kv_jdec_field pin_rows[] = {
    ANY("value"),
    INT(struct pin_in, "try_limit", 1, KV_VCARD_PIN_TRY_MAX, try_limit),
    INT(struct pin_in, "tries_left", 0, KV_VCARD_PIN_TRY_MAX, tries_left),
};
static const kv_jdec_table pin_tbl = KV_JDEC_TABLE(NULL, pin_rows, 0, NULL, NULL);

/* see profile_int.h */
int kv_vcard_parse_pin(loader *l, json_t *o, const char *where, kv_secbuf **block,
                       unsigned *try_limit, unsigned *tries)
{
    struct pin_in in = {3, -1};
    long limit, left;
    const char *digits;
    json_t *v;
    size_t n;
    uint8_t *b;
    int r;

    if ((r = kv_vcard_strict(l, o, where, &pin_tbl, &in)) != 0)
        return r;
    limit = (long)in.try_limit;
    left = (long)in.tries_left;
    if (left > limit)
        return kv_vcard_bad(l, KV_ERR_FORMAT, "%s.tries_left: more than try_limit", where);
    v = json_object_get(o, "value");
    if (!json_is_string(v) || !kv_is_digits(json_string_value(v), 4, 12))
        return kv_vcard_bad(l, KV_ERR_FORMAT, "%s.value: not a string of 4 to 12 digits", where);
    if ((*block = kv_secbuf_new(KV_VCARD_PIN_BLOCK_LEN)) == NULL)
        return kv_vcard_bad(l, KV_ERR_NOMEM, "%s: cannot allocate locked memory", where);
    /* plaintext PIN block: 2N, PIN digits in BCD, F filler (EMV Book 3 §6.5.12) */
    digits = json_string_value(v);
    n = strlen(digits);
    b = kv_secbuf_ptr(*block);
    memset(b, 0xFF, KV_VCARD_PIN_BLOCK_LEN);
    b[0] = (uint8_t)(0x20 | n);
    for (size_t i = 0; i < n; i++) {
        uint8_t d = (uint8_t)(digits[i] - '0');
        size_t nib = 2 + i;
        b[nib / 2] = (nib % 2) ? (uint8_t)((b[nib / 2] & 0xF0) | d)
                               : (uint8_t)((b[nib / 2] & 0x0F) | d << 4);
    }
    /* The profile is kept (root); wipe the PIN text inside it (jansson owns the buffer). */
    kv_wipe((char *)digits, n);
    *try_limit = (unsigned)limit;
    *tries = left < 0 ? (unsigned)limit : (unsigned)left;
    return 0;
}

static int parse_pin(loader *l, json_t *root, kv_vcard_profile *p)
{
    json_t *o = json_object_get(root, "pin");

    if (o == NULL)
        return 0;
    return kv_vcard_parse_pin(l, o, "pin", &p->pin_block, &p->pin_try_limit, &p->pin_tries);
}

struct quirks_in {
    int get_response, wrong_le;
};
static const kv_jdec_field quirks_rows[] = {
    BOOL(struct quirks_in, "get_response", get_response),
    BOOL(struct quirks_in, "wrong_le", wrong_le),
};
static const kv_jdec_table quirks_tbl = KV_JDEC_TABLE(NULL, quirks_rows, 0, NULL, NULL);

static int parse_quirks(loader *l, json_t *root, kv_vcard_profile *p)
{
    json_t *o = json_object_get(root, "quirks");
    struct quirks_in in = {0, 0};
    int r;
    if (o == NULL)
        return 0;
    if ((r = kv_vcard_strict(l, o, "quirks", &quirks_tbl, &in)) != 0)
        return r;
    p->quirks = (in.get_response ? KV_VCARD_QUIRK_GET_RESPONSE : 0) |
                (in.wrong_le ? KV_VCARD_QUIRK_WRONG_LE : 0);
    return 0;
}

/* The card data GENERATE AC, INTERNAL AUTHENTICATE and CCC need, from the records. */
static int scan_app_records(loader *l, const char *where, kv_vcard_df *df)
{
    static const struct {
        uint32_t tag;
        size_t off, lenoff, cap;
    } want[] = {
        {0x8C, offsetof(kv_vcard_df, cdol1), offsetof(kv_vcard_df, cdol1_len), KV_VCARD_DOL_MAX},
        {0x8D, offsetof(kv_vcard_df, cdol2), offsetof(kv_vcard_df, cdol2_len), KV_VCARD_DOL_MAX},
        {0x9F49, offsetof(kv_vcard_df, ddol), offsetof(kv_vcard_df, ddol_len), KV_VCARD_DOL_MAX},
        {0x9F69, offsetof(kv_vcard_df, udol), offsetof(kv_vcard_df, udol_len), KV_VCARD_DOL_MAX},
        {0x57, offsetof(kv_vcard_df, track2), offsetof(kv_vcard_df, track2_len),
         KV_VCARD_TRACK_MAX},
    };
    for (size_t i = 0; i < df->nrecords; i++) {
        for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
            kv_tlv t;
            size_t total;
            if (kv_tlv_find(df->records[i].data, df->records[i].len, want[k].tag, &t) != 0)
                continue;
            if (t.len > want[k].cap)
                return kv_vcard_bad(l, KV_ERR_FORMAT,
                                    "%s: tag %X in a record is longer than %zu bytes", where,
                                    (unsigned)want[k].tag, want[k].cap);
            if (want[k].tag != 0x57 && kv_dol_data_len(t.value, t.len, &total) != 0)
                return kv_vcard_bad(l, KV_ERR_FORMAT, "%s: tag %X in a record is not a DOL", where,
                                    (unsigned)want[k].tag);
            if (t.len > 0)
                memcpy((uint8_t *)df + want[k].off, t.value, t.len);
            *(size_t *)(void *)((uint8_t *)df + want[k].lenoff) = t.len;
        }
    }
    return 0;
}

/* see profile.h */
int kv_vcard_profile_build(json_t *root, kv_vcard_profile **out, char *why, size_t whylen)
{
    static const kv_jdec_field profile_rows[] = {
        ANY("name"),   ANY("description"),  NEED("atr"), ANY("notes"),  ANY("pse"),
        ANY("ppse"),   ANY("applications"), ANY("data"), ANY("pin"),    ANY("quirks"),
        ANY("expect"), ANY("keys"),         ANY("risk"), ANY("faults"), ANY("log"),
    };
    static const kv_jdec_table profile_tbl = KV_JDEC_TABLE(NULL, profile_rows, 0, NULL, NULL);
    loader l = {why, whylen};
    kv_vcard_profile *p = NULL;
    app_dir dirs[KV_VCARD_MAX_APPS];
    json_t *arr, *v, *pse_obj, *ppse_obj;
    size_t napps;
    int has_pse, has_ppse;
    int r = KV_ERR_INTERNAL;

    *out = NULL;
    if (!json_is_object(root)) {
        r = kv_vcard_bad(&l, KV_ERR_JSON, "profile: not a JSON object");
        goto out;
    }
    if ((p = calloc(1, sizeof(*p))) == NULL) {
        r = KV_ERR_NOMEM;
        goto out;
    }
    memset(dirs, 0, sizeof(dirs));
    if ((r = kv_vcard_strict(&l, root, "", &profile_tbl, NULL)) != 0)
        goto out;
    if ((v = json_object_get(root, "name")) != NULL) {
        if (!json_is_string(v)) {
            r = kv_vcard_bad(&l, KV_ERR_JSON, "name: not a string");
            goto out;
        }
        snprintf(p->name, sizeof(p->name), "%s", json_string_value(v));
    }
    v = json_object_get(root, "atr");
    if ((r = kv_vcard_hex_value(&l, v, "atr", p->atr, 2, KV_VCARD_ATR_MAX, &p->atr_len)) != 0)
        goto out;

    arr = json_object_get(root, "applications");
    if (!json_is_array(arr) || json_array_size(arr) < 1 ||
        json_array_size(arr) > KV_VCARD_MAX_APPS) {
        r = kv_vcard_bad(&l, KV_ERR_JSON, "applications: not an array of 1..%d applications",
                         KV_VCARD_MAX_APPS);
        goto out;
    }
    napps = json_array_size(arr);
    for (size_t i = 0; i < napps; i++) {
        char w[48];
        if (snprintf(w, sizeof(w), "applications[%zu]", i) >= (int)sizeof(w))
            w[sizeof(w) - 1] = '\0'; /* a cut name is still a name */
        if ((r = parse_app(&l, json_array_get(arr, i), w, &p->dfs[i], &dirs[i])) != 0 ||
            (r = scan_app_records(&l, w, &p->dfs[i])) != 0)
            goto out;
        for (size_t j = 0; j < i; j++)
            if (p->dfs[j].name_len == p->dfs[i].name_len &&
                memcmp(p->dfs[j].name, p->dfs[i].name, p->dfs[i].name_len) == 0) {
                r = kv_vcard_bad(&l, KV_ERR_FORMAT, "%s.aid: same AID as applications[%zu]", w, j);
                goto out;
            }
    }

    if ((has_pse = parse_dir(&l, root, "pse", &pse_obj)) < 0 ||
        (has_ppse = parse_dir(&l, root, "ppse", &ppse_obj)) < 0) {
        r = has_pse < 0 ? has_pse : has_ppse;
        goto out;
    }
    p->ndfs = napps;
    if (has_pse && (r = build_pse(&l, pse_obj, &p->dfs[p->ndfs++], p->dfs, dirs, napps)) != 0)
        goto out;
    if (has_ppse && (r = build_ppse(&l, ppse_obj, &p->dfs[p->ndfs++], p->dfs, dirs, napps)) != 0)
        goto out;

    if ((r = data_list(&l, root, "profile", p->data, &p->ndata)) != 0)
        goto out;
    for (size_t i = 0; i < p->ndata; i++) {
        if (p->data[i].tag != 0x9F36)
            continue;
        if (p->data[i].len != 2) {
            r = kv_vcard_bad(&l, KV_ERR_FORMAT, "data.9F36: the ATC is 2 bytes");
            goto out;
        }
        p->atc = (unsigned)p->data[i].value[0] << 8 | p->data[i].value[1];
    }
    if ((r = parse_pin(&l, root, p)) != 0 || (r = parse_quirks(&l, root, p)) != 0 ||
        (r = kv_vcard_profile_keys(root, p, why, whylen)) != 0 ||
        (r = kv_vcard_profile_lab(root, p, why, whylen)) != 0) /* profile_faults.c */
        goto out;
    p->root = json_incref(root);
    *out = p;
    p = NULL; /* transferred */
    r = 0;
out:
    kv_vcard_profile_free(p);
    return r;
}

/* see profile.h */
void kv_vcard_profile_free(kv_vcard_profile *p)
{
    if (p == NULL)
        return;
    kv_secbuf_free(p->pin_block);
    kv_vcard_profile_keys_free(p);
    kv_vcard_profile_lab_free(p);
    json_decref(p->root);
    free(p);
}

/*
 * see card_fault.h: the profile's "faults" and "log" members and the fault
 * files of `vcard --fault`, parsed strictly (tests/data/README.md, "Faults"
 * and "Transaction log"): an unknown member, a value of the wrong type or
 * out of range fails the load with a reason that names the field.
 */
#include "apdu/vcard/card_fault.h"
#include "apdu/vcard/profile_int.h"
#include "apdu/dol.h"
#include "apdu/tlv.h"
#include "src/base/err.h"
#include "src/base/hex.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* exactly n bytes of hex (n 1..3) as a big-endian integer */
static int hex_exact(const json_t *v, size_t n, uint32_t *out)
{
    uint8_t b[4];
    uint32_t x = 0;
    if (!json_is_string(v) || kv_hex_decode(json_string_value(v), b, sizeof(b)) != (int)n)
        return -1;
    for (size_t i = 0; i < n; i++)
        x = x << 8 | b[i];
    *out = x;
    return 0;
}

/* a BER-TLV tag of 1..3 bytes given as hex */
static int hex_tag(const json_t *v, uint32_t *out)
{
    uint8_t b[4];
    uint32_t t = 0;
    int n;
    if (!json_is_string(v) || (n = kv_hex_decode(json_string_value(v), b, sizeof(b))) < 1 ||
        n > 3 || b[0] == 0x00)
        return -1;
    for (int i = 0; i < n; i++)
        t = t << 8 | b[i];
    if (!kv_tlv_tag_is_valid(t))
        return -1;
    *out = t;
    return 0;
}

static int int_in(const json_t *v, long lo, long hi, long *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return -1;
    *out = (long)json_integer_value(v);
    return 0;
}

static const char *const actions[] = {"sw",       "corrupt", "atc_skew", "atc_add", "atc_set",
                                      "drop_tag", "dup_tag", "delay_ms", "tear"};
static const char *const matchers[] = {"ins", "p1", "p2", "nth", "once", "bit", "note"};

static int known_key(const char *k)
{
    for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
        if (strcmp(k, actions[i]) == 0)
            return 1;
    for (size_t i = 0; i < sizeof(matchers) / sizeof(matchers[0]); i++)
        if (strcmp(k, matchers[i]) == 0)
            return 1;
    return 0;
}

/* One fault object; w is its name ("faults[2]"). */
static int parse_fault(const json_t *o, const char *w, kv_vcard_fault *f, char *why, size_t whylen)
{
    const char *key, *action = NULL;
    const json_t *v;
    uint32_t x;
    long n;

    if (!json_is_object(o))
        return kv_vcard_why(why, whylen, KV_ERR_JSON, "%s: not an object", w);
    json_object_foreach((json_t *)o, key, v)
    {
        if (!known_key(key))
            return kv_vcard_why(why, whylen, KV_ERR_JSON, "%s: unknown field \"%s\"", w, key);
        for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
            if (strcmp(key, actions[i]) != 0)
                continue;
            if (action != NULL)
                return kv_vcard_why(why, whylen, KV_ERR_JSON,
                                    "%s: both \"%s\" and \"%s\" (one action per fault)", w, action,
                                    key);
            action = actions[i];
        }
    }
    if (action == NULL)
        return kv_vcard_why(
            why, whylen, KV_ERR_JSON,
            "%s: no action (one of sw, corrupt, atc_skew, atc_add, atc_set, drop_tag, "
            "dup_tag, delay_ms, tear)",
            w);
    memset(f, 0, sizeof(*f));
    f->p1 = f->p2 = -1;
    if ((v = json_object_get(o, "ins")) == NULL)
        return kv_vcard_why(why, whylen, KV_ERR_JSON, "%s.ins: missing (the instruction byte, hex)",
                            w);
    if (hex_exact(v, 1, &x) != 0)
        return kv_vcard_why(why, whylen, KV_ERR_FORMAT, "%s.ins: not one byte of hex (e.g. \"B2\")",
                            w);
    f->ins = (uint8_t)x;
    if ((v = json_object_get(o, "p1")) != NULL) {
        if (hex_exact(v, 1, &x) != 0)
            return kv_vcard_why(why, whylen, KV_ERR_FORMAT, "%s.p1: not one byte of hex", w);
        f->p1 = (int)x;
    }
    if ((v = json_object_get(o, "p2")) != NULL) {
        if (hex_exact(v, 1, &x) != 0)
            return kv_vcard_why(why, whylen, KV_ERR_FORMAT, "%s.p2: not one byte of hex", w);
        f->p2 = (int)x;
    }
    if ((v = json_object_get(o, "nth")) != NULL) {
        if (int_in(v, 1, 65535, &n) != 0)
            return kv_vcard_why(why, whylen, KV_ERR_FORMAT, "%s.nth: not an integer 1..65535", w);
        f->nth = (unsigned)n;
    }
    if ((v = json_object_get(o, "once")) != NULL) {
        if (!json_is_boolean(v))
            return kv_vcard_why(why, whylen, KV_ERR_JSON, "%s.once: not true or false", w);
        f->once = json_is_true(v);
    }
    if ((v = json_object_get(o, "note")) != NULL && !json_is_string(v))
        return kv_vcard_why(why, whylen, KV_ERR_JSON, "%s.note: not a string", w);
    if (json_object_get(o, "bit") != NULL && strcmp(action, "corrupt") != 0)
        return kv_vcard_why(why, whylen, KV_ERR_JSON, "%s.bit: only with \"corrupt\"", w);

    v = json_object_get(o, action);
    if (strcmp(action, "sw") == 0) {
        if (hex_exact(v, 2, &x) != 0 || ((x >> 12) != 0x6 && (x >> 12) != 0x9) || (x >> 8) == 0x60)
            return kv_vcard_why(
                why, whylen, KV_ERR_FORMAT,
                "%s.sw: not a status word of 2 bytes of hex (6xxx or 9xxx, not 60xx)", w);
        f->kind = KV_FAULT_SW;
        f->sw = (uint16_t)x;
    } else if (strcmp(action, "corrupt") == 0) {
        const char *s = json_string_value(v);
        if (s == NULL || (strcmp(s, "ac") != 0 && strcmp(s, "sdad") != 0))
            return kv_vcard_why(why, whylen, KV_ERR_FORMAT, "%s.corrupt: not \"ac\" or \"sdad\"",
                                w);
        f->kind = strcmp(s, "ac") == 0 ? KV_FAULT_CORRUPT_AC : KV_FAULT_CORRUPT_SDAD;
        if ((v = json_object_get(o, "bit")) != NULL) {
            if (int_in(v, 0, 2047, &n) != 0)
                return kv_vcard_why(why, whylen, KV_ERR_FORMAT, "%s.bit: not an integer 0..2047",
                                    w);
            f->bit = (unsigned)n;
        }
    } else if (strcmp(action, "atc_skew") == 0) {
        if (int_in(v, -65535, 65535, &n) != 0 || n == 0)
            return kv_vcard_why(why, whylen, KV_ERR_FORMAT,
                                "%s.atc_skew: not a non-zero integer -65535..65535", w);
        f->kind = KV_FAULT_ATC_SKEW;
        f->n = n;
    } else if (strcmp(action, "atc_add") == 0) {
        if (int_in(v, -65535, 65535, &n) != 0 || n == 0)
            return kv_vcard_why(why, whylen, KV_ERR_FORMAT,
                                "%s.atc_add: not a non-zero integer -65535..65535", w);
        f->kind = KV_FAULT_ATC_ADD;
        f->n = n;
    } else if (strcmp(action, "atc_set") == 0) {
        if (int_in(v, 0, 65535, &n) != 0)
            return kv_vcard_why(why, whylen, KV_ERR_FORMAT, "%s.atc_set: not an integer 0..65535",
                                w);
        f->kind = KV_FAULT_ATC_SET;
        f->n = n;
    } else if (strcmp(action, "drop_tag") == 0 || strcmp(action, "dup_tag") == 0) {
        if (hex_tag(v, &x) != 0)
            return kv_vcard_why(why, whylen, KV_ERR_FORMAT,
                                "%s.%s: not a BER-TLV tag of 1..3 bytes hex", w, action);
        f->kind = action[1] == 'r' ? KV_FAULT_DROP_TAG : KV_FAULT_DUP_TAG;
        f->tag = x;
    } else if (strcmp(action, "delay_ms") == 0) {
        if (int_in(v, 0, 60000, &n) != 0)
            return kv_vcard_why(why, whylen, KV_ERR_FORMAT, "%s.delay_ms: not an integer 0..60000",
                                w);
        f->kind = KV_FAULT_DELAY;
        f->n = n;
    } else { /* tear */
        const char *s = json_string_value(v);
        if (s == NULL || (strcmp(s, "before") != 0 && strcmp(s, "after") != 0))
            return kv_vcard_why(why, whylen, KV_ERR_FORMAT, "%s.tear: not \"before\" or \"after\"",
                                w);
        f->kind = strcmp(s, "before") == 0 ? KV_FAULT_TEAR_BEFORE : KV_FAULT_TEAR_AFTER;
    }
    return 0;
}

/* see card_fault.h */
int kv_vcard_faults_parse(const json_t *arr, const char *where, kv_vcard_faults *out, char *why,
                          size_t whylen)
{
    char w[64];
    int r;

    memset(out, 0, sizeof(*out));
    if (!json_is_array(arr))
        return kv_vcard_why(why, whylen, KV_ERR_JSON, "%s: not an array of faults", where);
    if (json_array_size(arr) > KV_VCARD_FAULTS_MAX)
        return kv_vcard_why(why, whylen, KV_ERR_FORMAT, "%s: more than %d faults", where,
                            KV_VCARD_FAULTS_MAX);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        if (snprintf(w, sizeof(w), "%s[%zu]", where, i) >= (int)sizeof(w))
            w[sizeof(w) - 1] = '\0'; /* a cut name is still a name */
        if ((r = parse_fault(json_array_get(arr, i), w, &out->f[i], why, whylen)) != 0)
            return r;
        out->n = i + 1;
    }
    return 0;
}

/* the default log format: date, time, amounts, country, currency, type, ATC, CID */
static const uint8_t default_format[] = {0x9A, 0x03, 0x9F, 0x21, 0x03, 0x9F, 0x02, 0x06, 0x9F,
                                         0x03, 0x06, 0x9F, 0x1A, 0x02, 0x5F, 0x2A, 0x02, 0x9C,
                                         0x01, 0x9F, 0x36, 0x02, 0x9F, 0x27, 0x01};

/* see card_fault.h */
int kv_vcard_logcfg_parse(const json_t *obj, kv_vcard_logcfg *out, char *why, size_t whylen)
{
    static const char *const keys[] = {"sfi", "records", "format", "in_fci", "note"};
    const char *key;
    const json_t *v;
    kv_dol_entry e[KV_VCARD_LOG_FORMAT_MAX];
    size_t ne, total;
    long n;
    int dn;

    memset(out, 0, sizeof(*out));
    if (!json_is_object(obj))
        return kv_vcard_why(why, whylen, KV_ERR_JSON, "log: not an object");
    json_object_foreach((json_t *)obj, key, v)
    {
        size_t i;
        for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
            if (strcmp(key, keys[i]) == 0)
                break;
        if (i == sizeof(keys) / sizeof(keys[0]))
            return kv_vcard_why(why, whylen, KV_ERR_JSON, "log: unknown field \"%s\"", key);
    }
    if ((v = json_object_get(obj, "sfi")) == NULL)
        return kv_vcard_why(why, whylen, KV_ERR_JSON, "log.sfi: missing (11..30)");
    if (int_in(v, 11, 30, &n) != 0)
        return kv_vcard_why(why, whylen, KV_ERR_FORMAT, "log.sfi: not an integer 11..30");
    out->sfi = (uint8_t)n;
    if ((v = json_object_get(obj, "records")) == NULL)
        return kv_vcard_why(why, whylen, KV_ERR_JSON, "log.records: missing (1..%d)",
                            KV_VCARD_LOG_RECORDS_MAX);
    if (int_in(v, 1, KV_VCARD_LOG_RECORDS_MAX, &n) != 0)
        return kv_vcard_why(why, whylen, KV_ERR_FORMAT, "log.records: not an integer 1..%d",
                            KV_VCARD_LOG_RECORDS_MAX);
    out->records = (uint8_t)n;
    out->in_fci = 1;
    if ((v = json_object_get(obj, "in_fci")) != NULL) {
        if (!json_is_boolean(v))
            return kv_vcard_why(why, whylen, KV_ERR_JSON, "log.in_fci: not true or false");
        out->in_fci = json_is_true(v);
    }
    if ((v = json_object_get(obj, "note")) != NULL && !json_is_string(v))
        return kv_vcard_why(why, whylen, KV_ERR_JSON, "log.note: not a string");
    if ((v = json_object_get(obj, "format")) != NULL) {
        if (!json_is_string(v))
            return kv_vcard_why(why, whylen, KV_ERR_JSON, "log.format: not a hex string");
        dn = kv_hex_decode(json_string_value(v), out->format, sizeof(out->format));
        if (dn < 1)
            return kv_vcard_why(why, whylen, KV_ERR_FORMAT, "log.format: not 1..%d bytes of hex",
                                KV_VCARD_LOG_FORMAT_MAX);
        out->format_len = (size_t)dn;
    } else {
        memcpy(out->format, default_format, sizeof(default_format));
        out->format_len = sizeof(default_format);
    }
    if (kv_dol_parse(out->format, out->format_len, e, KV_VCARD_LOG_FORMAT_MAX, &ne) != 0 ||
        kv_dol_data_len(out->format, out->format_len, &total) != 0)
        return kv_vcard_why(why, whylen, KV_ERR_FORMAT,
                            "log.format: not a DOL (tag, length pairs)");
    for (size_t i = 0; i < ne; i++)
        if (e[i].len == 0)
            return kv_vcard_why(why, whylen, KV_ERR_FORMAT, "log.format: tag %X has length 0",
                                (unsigned)e[i].tag);
    if (total == 0 || total > KV_VCARD_LOG_RECORD_MAX)
        return kv_vcard_why(why, whylen, KV_ERR_FORMAT, "log.format: records of %zu bytes (1..%d)",
                            total, KV_VCARD_LOG_RECORD_MAX);
    out->record_len = total;
    return 0;
}

/*
 * The FCI 6F { 84 ... A5 { ... BF0C { ... } } } again with 9F4D (SFI,
 * records) appended to BF0C (made when absent). 0, or -1 when the FCI is
 * not of that shape or the result does not fit.
 */
static int fci_add_log_entry(kv_vcard_df *df, const uint8_t entry[2])
{
    uint8_t out[KV_VCARD_DATA_MAX];
    kv_tlv_writer w;
    kv_cursor c, a5c;
    kv_tlv t, fci, a5, x;
    int have_bf0c = 0, r;

    kv_cursor_init(&c, df->fci, df->fci_len);
    if (kv_tlv_next(&c, &fci) != 1 || fci.tag != 0x6F || kv_cursor_left(&c) != 0)
        return -1;
    kv_tlv_writer_init(&w, out, sizeof(out));
    kv_tlv_begin(&w, 0x6F);
    kv_cursor_init(&c, fci.value, fci.len);
    while ((r = kv_tlv_next(&c, &t)) == 1) {
        if (t.tag != 0xA5) {
            kv_tlv_put_raw(&w, t.raw, t.raw_len);
            continue;
        }
        a5 = t;
        kv_tlv_begin(&w, 0xA5);
        kv_cursor_init(&a5c, a5.value, a5.len);
        while ((r = kv_tlv_next(&a5c, &x)) == 1) {
            if (x.tag != 0xBF0C) {
                kv_tlv_put_raw(&w, x.raw, x.raw_len);
                continue;
            }
            have_bf0c = 1;
            kv_tlv_begin(&w, 0xBF0C);
            kv_tlv_put_raw(&w, x.value, x.len);
            kv_tlv_put(&w, 0x9F4D, entry, 2);
            kv_tlv_end(&w);
        }
        if (r < 0)
            return -1;
        if (!have_bf0c) {
            kv_tlv_begin(&w, 0xBF0C);
            kv_tlv_put(&w, 0x9F4D, entry, 2);
            kv_tlv_end(&w);
            have_bf0c = 1;
        }
        kv_tlv_end(&w);
    }
    if (r < 0 || !have_bf0c)
        return -1;
    kv_tlv_end(&w);
    if (kv_tlv_finish(&w) != 0)
        return -1;
    memcpy(df->fci, out, w.len);
    df->fci_len = w.len;
    return 0;
}

/* see card_fault.h */
int kv_vcard_profile_lab(json_t *root, kv_vcard_profile *p, char *why, size_t whylen)
{
    json_t *v;
    kv_tlv t;
    int r;

    if ((v = json_object_get(root, "faults")) != NULL) {
        if ((p->faults = calloc(1, sizeof(*p->faults))) == NULL)
            return KV_ERR_NOMEM;
        if ((r = kv_vcard_faults_parse(v, "faults", p->faults, why, whylen)) != 0)
            return r;
    }
    if ((v = json_object_get(root, "log")) == NULL)
        return 0;
    if ((p->log = calloc(1, sizeof(*p->log))) == NULL)
        return KV_ERR_NOMEM;
    if ((r = kv_vcard_logcfg_parse(v, p->log, why, whylen)) != 0)
        return r;
    for (size_t i = 0; i < p->ndata; i++)
        if (p->data[i].tag == 0x9F4D || p->data[i].tag == 0x9F4F)
            return kv_vcard_why(why, whylen, KV_ERR_FORMAT, "data.%X: comes from \"log\"",
                                (unsigned)p->data[i].tag);
    for (size_t i = 0; i < p->ndfs; i++) {
        kv_vcard_df *df = &p->dfs[i];
        uint8_t entry[2] = {p->log->sfi, p->log->records};
        if (df->kind != KV_VCARD_DF_APP)
            continue;
        for (size_t k = 0; k < df->nrecords; k++)
            if (df->records[k].sfi == p->log->sfi)
                return kv_vcard_why(why, whylen, KV_ERR_FORMAT,
                                    "log.sfi: SFI %u holds records of applications[%zu]",
                                    p->log->sfi, i);
        for (size_t k = 0; k < df->ndata; k++)
            if (df->data[k].tag == 0x9F4D || df->data[k].tag == 0x9F4F)
                return kv_vcard_why(why, whylen, KV_ERR_FORMAT,
                                    "applications[%zu].data.%X: comes from \"log\"", i,
                                    (unsigned)df->data[k].tag);
        if (!p->log->in_fci)
            continue;
        if (kv_tlv_find(df->fci, df->fci_len, 0x9F4D, &t) == 0)
            return kv_vcard_why(why, whylen, KV_ERR_FORMAT,
                                "applications[%zu]: the FCI already has 9F4D; \"log\" adds it", i);
        if (fci_add_log_entry(df, entry) != 0)
            return kv_vcard_why(why, whylen, KV_ERR_FORMAT,
                                "applications[%zu]: the FCI with 9F4D is longer than %d bytes", i,
                                KV_VCARD_DATA_MAX);
    }
    return 0;
}

/* see card_fault.h */
void kv_vcard_profile_lab_free(kv_vcard_profile *p)
{
    free(p->faults);
    free(p->log);
    p->faults = NULL;
    p->log = NULL;
}

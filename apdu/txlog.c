/* see txlog.h: the card's transaction log on the terminal side */
#include "apdu/txlog.h"
#include "apdu/apdu.h"
#include "apdu/dol.h"
#include "apdu/tlv.h"
#include "src/base/err.h"
#include "src/base/hex.h"

#include <string.h>

/* see txlog.h */
int kv_txlog_entry_parse(const uint8_t *v, size_t len, uint8_t *sfi, uint8_t *max_records)
{
    if (len != 2 || v[0] < 11 || v[0] > 30 || v[1] == 0)
        return KV_ERR_CARD_DATA;
    *sfi = v[0];
    *max_records = v[1];
    return 0;
}

/* see txlog.h */
int kv_txlog_decode(const uint8_t *format, size_t flen, const uint8_t *rec, size_t rlen,
                    kv_txlog_record *out)
{
    kv_dol_entry e[KV_DOL_MAX_ENTRIES];
    size_t n = 0, off = 0;

    out->raw_len = 0;
    out->nfields = 0;
    if (kv_dol_parse(format, flen, e, KV_DOL_MAX_ENTRIES, &n) != 0 || n > KV_TXLOG_FIELDS_MAX)
        return KV_ERR_DOL;
    if (rlen > sizeof(out->raw))
        return KV_ERR_CARD_DATA;
    if (rlen > 0)
        memcpy(out->raw, rec, rlen);
    out->raw_len = rlen;
    for (size_t i = 0; i < n; i++) {
        if (e[i].len > rlen - off) {
            out->nfields = 0;
            return KV_ERR_CARD_DATA;
        }
        out->fields[i].tag = e[i].tag;
        out->fields[i].value = out->raw + off;
        out->fields[i].len = e[i].len;
        off += e[i].len;
    }
    if (off != rlen) {
        out->nfields = 0;
        return KV_ERR_CARD_DATA;
    }
    out->nfields = n;
    return 0;
}

/* The value of tag inside the FCI at fci (any depth), or NULL. */
static const uint8_t *fci_value(const kv_emv_ref *fci, uint32_t tag, size_t *len)
{
    kv_tlv t;
    if (fci->p == NULL || kv_tlv_find(fci->p, fci->len, tag, &t) != 0)
        return NULL;
    *len = t.len;
    return t.value != NULL ? t.value : fci->p; /* empty value: any non-NULL pointer */
}

/* see txlog.h */
int kv_txlog_read(kv_emv *s, kv_txlog *out)
{
    const kv_emv_card *c = kv_emv_card_data(s);
    uint8_t v[KV_TXLOG_FORMAT_MAX], resp[KV_TXLOG_RECORD_MAX];
    const uint8_t *p;
    size_t len = 0;
    int r;

    memset(out, 0, sizeof(*out));
    if (!c->has_selected)
        return 0;
    if ((p = fci_value(&c->fci, 0x9F4D, &len)) != NULL) {
        out->entry_in_fci = 1;
    } else {
        r = kv_emv_get_data(s, 0x9F4D, v, sizeof(v), &len);
        if (r == KV_ERR_NOT_FOUND || r == KV_ERR_BUFFER)
            return 0; /* no log */
        if (r != 0)
            return r;
        p = v;
    }
    if ((r = kv_txlog_entry_parse(p, len, &out->sfi, &out->max_records)) != 0)
        return r;
    out->present = 1;
    if (c->log_format_len > 0 && c->log_format_len <= sizeof(out->format)) {
        memcpy(out->format, c->log_format, c->log_format_len);
        out->format_len = c->log_format_len;
    } else {
        r = kv_emv_get_data(s, 0x9F4F, out->format, sizeof(out->format), &out->format_len);
        if (r == KV_ERR_NOT_FOUND || r == KV_ERR_BUFFER)
            out->format_len = 0;
        else if (r != 0)
            return r;
    }
    if (out->format_len > 0 && kv_dol_data_len(out->format, out->format_len, &len) != 0)
        return KV_ERR_DOL;

    for (unsigned i = 1; i <= out->max_records && out->nrecords < KV_TXLOG_RECORDS_MAX; i++) {
        kv_capdu cmd = {0x00, 0xB2, (uint8_t)i, (uint8_t)(out->sfi << 3 | 0x04), NULL, 0, 256, 0};
        kv_txlog_record *rec = &out->records[out->nrecords];
        uint16_t sw = 0;
        size_t n = 0;
        if ((r = kv_emv_command(s, &cmd, resp, sizeof(resp), &n, &sw)) != 0)
            return r == KV_ERR_BUFFER ? KV_ERR_CARD_DATA : r;
        if (sw == 0x6A83 || (sw == 0x6A82 && i == 1))
            break; /* the log holds fewer records (or the file is not there yet) */
        if (sw != 0x9000)
            return KV_ERR_CARD_SW;
        if (out->format_len > 0) {
            if ((r = kv_txlog_decode(out->format, out->format_len, resp, n, rec)) != 0)
                return r;
        } else {
            if (n > sizeof(rec->raw))
                return KV_ERR_CARD_DATA;
            memcpy(rec->raw, resp, n);
            rec->raw_len = n;
        }
        out->nrecords++;
    }
    return 0;
}

/* BCD digits of len bytes as an integer; -1 when a nibble is not a digit or it is too long. */
static long long bcd(const uint8_t *p, size_t len)
{
    long long v = 0;
    if (len > 8)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned hi = p[i] >> 4, lo = p[i] & 0x0F;
        if (hi > 9 || lo > 9)
            return -1;
        v = v * 100 + hi * 10 + lo;
    }
    return v;
}

static const kv_txlog_field *field(const kv_txlog_record *r, uint32_t tag)
{
    for (size_t i = 0; i < r->nfields; i++)
        if (r->fields[i].tag == tag)
            return &r->fields[i];
    return NULL;
}

static const char *ac_type(uint8_t cid)
{
    switch (cid & 0xC0) {
    case 0x00:
        return "aac";
    case 0x40:
        return "tc";
    case 0x80:
        return "arqc";
    default:
        return "rfu";
    }
}

/* "YYYY-MM-DD" of a 9A value (YYMMDD, EMV: YY < 50 is 20YY), or "" */
static void date_text(const kv_txlog_field *f, char out[11])
{
    long long d;
    out[0] = '\0';
    if (f == NULL || f->len != 3 || (d = bcd(f->value, 3)) < 0)
        return;
    snprintf(out, 11, "%04d-%02d-%02d", (int)(d / 10000 < 50 ? 2000 + d / 10000 : 1900 + d / 10000),
             (int)(d / 100 % 100), (int)(d % 100));
}

static void time_text(const kv_txlog_field *f, char out[9])
{
    long long t;
    out[0] = '\0';
    if (f == NULL || f->len != 3 || (t = bcd(f->value, 3)) < 0)
        return;
    snprintf(out, 9, "%02d:%02d:%02d", (int)(t / 10000), (int)(t / 100 % 100), (int)(t % 100));
}

static json_t *hex_json(const uint8_t *p, size_t len)
{
    char h[2 * KV_TXLOG_RECORD_MAX + 1];
    kv_hex_encode(p, len, h);
    return json_string(h);
}

/* see txlog.h */
/* data objects that carry the PAN or the cardholder's name */
static int sensitive(uint32_t tag)
{
    return tag == 0x5A || tag == 0x56 || tag == 0x57 || tag == 0x5F20 || tag == 0x9F6B;
}

json_t *kv_txlog_to_json(const kv_txlog *l, int reveal)
{
    json_t *arr = json_array();
    if (arr == NULL)
        return NULL;
    for (size_t i = 0; i < l->nrecords; i++) {
        const kv_txlog_record *r = &l->records[i];
        const kv_txlog_field *f;
        json_t *o = json_object(), *vals = json_object();
        char text[16], tag[8];
        long long n;
        if (o == NULL || vals == NULL || json_array_append_new(arr, o) != 0) {
            json_decref(o);
            json_decref(vals);
            json_decref(arr);
            return NULL;
        }
        json_object_set_new(o, "record", json_integer((json_int_t)(i + 1)));
        for (size_t k = 0; k < r->nfields; k++) {
            snprintf(tag, sizeof(tag), "%X", (unsigned)r->fields[k].tag);
            json_object_set_new(vals, tag,
                                !reveal && sensitive(r->fields[k].tag)
                                    ? json_string("masked")
                                    : hex_json(r->fields[k].value, r->fields[k].len));
        }
        json_object_set_new(o, "values", vals);
        if (r->nfields == 0) /* no format to split it by: the bytes as the card sent them */
            json_object_set_new(o, "raw", hex_json(r->raw, r->raw_len));
        if ((f = field(r, 0x9F02)) != NULL && (n = bcd(f->value, f->len)) >= 0)
            json_object_set_new(o, "amount", json_integer(n));
        if ((f = field(r, 0x9F03)) != NULL && (n = bcd(f->value, f->len)) >= 0)
            json_object_set_new(o, "amount_other", json_integer(n));
        if ((f = field(r, 0x5F2A)) != NULL && (n = bcd(f->value, f->len)) >= 0)
            json_object_set_new(o, "currency", json_integer(n));
        if ((f = field(r, 0x9F1A)) != NULL && (n = bcd(f->value, f->len)) >= 0)
            json_object_set_new(o, "country", json_integer(n));
        date_text(field(r, 0x9A), text);
        if (text[0] != '\0')
            json_object_set_new(o, "date", json_string(text));
        time_text(field(r, 0x9F21), text);
        if (text[0] != '\0')
            json_object_set_new(o, "time", json_string(text));
        if ((f = field(r, 0x9C)) != NULL && f->len == 1)
            json_object_set_new(o, "type", hex_json(f->value, 1));
        if ((f = field(r, 0x9F36)) != NULL && f->len == 2)
            json_object_set_new(o, "atc", hex_json(f->value, 2));
        if ((f = field(r, 0x9F27)) != NULL && f->len == 1) {
            json_object_set_new(o, "cid", hex_json(f->value, 1));
            json_object_set_new(o, "ac_type", json_string(ac_type(f->value[0])));
        }
    }
    return arr;
}

/* see txlog.h */
void kv_txlog_print(FILE *f, const kv_txlog *l)
{
    if (!l->present) {
        fprintf(f, "%-18s-\n", "Transaction log:");
        return;
    }
    fprintf(f, "%-18sSFI %u, %zu of %u records (9F4D from %s)\n", "Transaction log:", l->sfi,
            l->nrecords, l->max_records, l->entry_in_fci ? "the FCI" : "GET DATA");
    for (size_t i = 0; i < l->nrecords; i++) {
        const kv_txlog_record *r = &l->records[i];
        const kv_txlog_field *fl;
        char date[11], tm[9];
        long long n;
        fprintf(f, "  %2zu ", i + 1);
        if (r->nfields == 0) {
            fprintf(f, "(no log format) ");
            for (size_t k = 0; k < r->raw_len; k++)
                fprintf(f, "%02X", r->raw[k]);
            fprintf(f, "\n");
            continue;
        }
        date_text(field(r, 0x9A), date);
        time_text(field(r, 0x9F21), tm);
        fprintf(f, "%s%s%s", date[0] ? date : "date -", tm[0] ? " " : "", tm);
        if ((fl = field(r, 0x9F02)) != NULL && (n = bcd(fl->value, fl->len)) >= 0)
            fprintf(f, "  amount %lld", n);
        if ((fl = field(r, 0x5F2A)) != NULL && (n = bcd(fl->value, fl->len)) >= 0)
            fprintf(f, " (currency %03lld)", n);
        if ((fl = field(r, 0x9C)) != NULL && fl->len == 1)
            fprintf(f, "  type %02X", fl->value[0]);
        if ((fl = field(r, 0x9F36)) != NULL && fl->len == 2)
            fprintf(f, "  ATC %02X%02X", fl->value[0], fl->value[1]);
        if ((fl = field(r, 0x9F27)) != NULL && fl->len == 1)
            fprintf(f, "  %s", ac_type(fl->value[0]));
        fprintf(f, "\n");
    }
}

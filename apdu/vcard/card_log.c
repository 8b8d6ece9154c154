/*
 * see card_fault.h: the transaction log of a profile card (EMV Book 3
 * Annex D.5 and §7: Log Entry 9F4D, Log Format 9F4F).
 *
 * Each application has its own cyclic log file of "records" records on SFI
 * "sfi"; record 1 is the newest. A record is the values the log format (a
 * DOL) asks for, concatenated without tags or lengths, written when a
 * GENERATE AC ends a transaction: the second one, or the first when it
 * gives a TC or an AAC. The values come from the card (9F36 its ATC, 9F27
 * the CID it answered, 9F26 and 9F10 from that answer), then from the
 * terminal's CDOL2 data (second GENERATE AC), CDOL1 data and PDOL data,
 * then from the card's GET DATA objects; anything else is zeros, fitted to
 * the format's length by the DOL rules (kv_dol_fit).
 */
#include "apdu/vcard/card_fault.h"
#include "apdu/dol.h"
#include "apdu/tlv.h"
#include "src/base/err.h"
#include "src/base/hex.h"

#include <stdlib.h>
#include <string.h>

static const kv_vcard_logcfg *log_of(const kv_vcard *vc)
{
    return vc->lab != NULL ? vc->lab->log : NULL;
}

/* see card_fault.h */
int kv_vcard_log_get_data(kv_vcard *vc, uint32_t tag, kv_vcard_answer *a)
{
    const kv_vcard_logcfg *lc = log_of(vc);
    kv_tlv_writer w;
    if (lc == NULL || (tag != 0x9F4D && tag != 0x9F4F))
        return 0;
    kv_tlv_writer_init(&w, a->data, sizeof(a->data));
    if (tag == 0x9F4D) {
        uint8_t entry[2] = {lc->sfi, lc->records};
        kv_tlv_put(&w, tag, entry, 2);
    } else {
        kv_tlv_put(&w, tag, lc->format, lc->format_len);
    }
    kv_vcard_answer_tlv(a, &w);
    return 1;
}

/* see card_fault.h */
int kv_vcard_log_read_record(kv_vcard *vc, const kv_capdu *c, kv_vcard_answer *a)
{
    const kv_vcard_logcfg *lc = log_of(vc);
    const kv_vcard_log_area *area;
    if (lc == NULL || (c->p2 >> 3) != lc->sfi || (c->p2 & 0x07) != 0x04 ||
        kv_vcard_selected_app(vc) == NULL)
        return 0;
    area = &vc->lab->areas[vc->selected];
    if (c->p1 == 0 || c->p1 > area->n) {
        a->sw = SW_RECORD_NOT_FOUND;
        return 1;
    }
    memcpy(a->data, area->rec[c->p1 - 1], lc->record_len);
    a->len = lc->record_len;
    a->sw = SW_OK;
    return 1;
}

/* the value of tag in a DOL's data, or 0 */
static int from_dol(const uint8_t *dol, size_t dol_len, const uint8_t *data, size_t data_len,
                    uint32_t tag, const uint8_t **v, size_t *vlen)
{
    if (dol_len == 0)
        return 0;
    return kv_dol_value(dol, dol_len, data, data_len, tag, v, vlen) == 1;
}

static int from_objs(const kv_vcard_dataobj *o, size_t n, uint32_t tag, const uint8_t **v,
                     size_t *vlen)
{
    for (size_t i = 0; i < n; i++)
        if (o[i].tag == tag) {
            *v = o[i].value;
            *vlen = o[i].len;
            return 1;
        }
    return 0;
}

/* The value the log stores for tag (module comment); 0 when there is none. */
static int log_value(const kv_vcard *vc, const kv_vcard_df *app, const kv_capdu *c, int second,
                     const kv_vcard_answer *a, uint32_t tag, uint8_t atc[2], const uint8_t **v,
                     size_t *vlen)
{
    kv_tlv t;
    if (tag == 0x9F36) {
        atc[0] = (uint8_t)(vc->atc >> 8);
        atc[1] = (uint8_t)vc->atc;
        *v = atc;
        *vlen = 2;
        return 1;
    }
    if (tag == 0x9F27 || tag == 0x9F26 || tag == 0x9F10) {
        if (kv_tlv_find(a->data, a->len, tag, &t) == 0) {
            *v = t.value;
            *vlen = t.len;
            return 1;
        }
        /* format 1: 80 { CID ATC AC IAD } */
        if (kv_tlv_find(a->data, a->len, 0x80, &t) == 0 && t.len >= 11) {
            *v = tag == 0x9F27 ? t.value : tag == 0x9F26 ? t.value + 3 : t.value + 11;
            *vlen = tag == 0x9F27 ? 1 : tag == 0x9F26 ? 8 : t.len - 11;
            return 1;
        }
        return 0;
    }
    if (second && from_dol(app->cdol2, app->cdol2_len, c->data, c->lc, tag, v, vlen))
        return 1;
    if (from_dol(app->cdol1, app->cdol1_len, vc->cdol1_data, vc->cdol1_len, tag, v, vlen))
        return 1;
    if (kv_tlv_find(app->fci, app->fci_len, 0x9F38, &t) == 0 &&
        from_dol(t.value, t.len, vc->pdol_data, vc->pdol_len, tag, v, vlen))
        return 1;
    return from_objs(app->data, app->ndata, tag, v, vlen) ||
           from_objs(vc->prof->data, vc->prof->ndata, tag, v, vlen);
}

/* see card_fault.h */
void kv_vcard_log_after_genac(kv_vcard *vc, const kv_capdu *c, kv_vcard_answer *a, int ac_before)
{
    const kv_vcard_logcfg *lc = log_of(vc);
    const kv_vcard_df *app = kv_vcard_selected_app(vc);
    kv_vcard_log_area *area;
    kv_dol_entry e[KV_VCARD_LOG_FORMAT_MAX];
    uint8_t rec[KV_VCARD_LOG_RECORD_MAX], atc[2];
    size_t ne, off = 0;

    if (lc == NULL || app == NULL || c->cla != 0x80 || c->ins != 0xAE || a->sw != SW_OK ||
        ac_before == 2 || vc->ac_state != 2)
        return;
    if (kv_dol_parse(lc->format, lc->format_len, e, KV_VCARD_LOG_FORMAT_MAX, &ne) != 0)
        return; /* checked at load */
    for (size_t i = 0; i < ne; i++) {
        static const uint8_t none[1] = {0};
        const uint8_t *v = none;
        size_t vlen = 0;
        if (!log_value(vc, app, c, ac_before == 1, a, e[i].tag, atc, &v, &vlen)) {
            v = none; /* zeros (kv_dol_fit pads) */
            vlen = 0;
        }
        kv_dol_fit(e[i].tag, v, vlen, rec + off, e[i].len);
        off += e[i].len;
    }
    area = &vc->lab->areas[vc->selected];
    if (area->n == lc->records)
        area->n--;
    memmove(area->rec[1], area->rec[0], area->n * sizeof(area->rec[0]));
    memcpy(area->rec[0], rec, lc->record_len);
    area->n++;
    if (kv_vcard_state_save(vc) != 0) {
        a->len = 0;
        a->sw = SW_MEMORY_FAILURE;
    }
}

/* see card_fault.h */
int kv_vcard_log_from_json(kv_vcard *vc, const json_t *v)
{
    const kv_vcard_logcfg *lc = log_of(vc);
    kv_vcard_log_area *tmp;
    const char *aid;
    json_t *recs;
    size_t ndfs;

    if (lc == NULL)
        return 0; /* this profile keeps no log */
    if (!json_is_object(v))
        return KV_ERR_FORMAT;
    ndfs = vc->prof->ndfs;
    if ((tmp = calloc(ndfs, sizeof(*tmp))) == NULL)
        return KV_ERR_NOMEM;
    json_object_foreach((json_t *)v, aid, recs)
    {
        uint8_t name[KV_VCARD_DF_NAME_MAX];
        int n = kv_hex_decode(aid, name, sizeof(name));
        size_t d;
        if (n < 1 || !json_is_array(recs))
            goto bad;
        for (d = 0; d < ndfs; d++)
            if (vc->prof->dfs[d].kind == KV_VCARD_DF_APP &&
                vc->prof->dfs[d].name_len == (size_t)n &&
                memcmp(vc->prof->dfs[d].name, name, (size_t)n) == 0)
                break;
        if (d == ndfs)
            continue; /* not on this card */
        for (size_t i = 0; i < json_array_size(recs); i++) {
            json_t *r = json_array_get(recs, i);
            uint8_t b[KV_VCARD_LOG_RECORD_MAX];
            int len;
            if (!json_is_string(r) || (len = kv_hex_decode(json_string_value(r), b, sizeof(b))) < 0)
                goto bad;
            /* a record of another format (the profile changed) or beyond the file: dropped */
            if ((size_t)len != lc->record_len || tmp[d].n >= lc->records)
                continue;
            memcpy(tmp[d].rec[tmp[d].n++], b, lc->record_len);
        }
    }
    memcpy(vc->lab->areas, tmp, ndfs * sizeof(*tmp));
    free(tmp);
    return 0;
bad:
    free(tmp);
    return KV_ERR_FORMAT;
}

/* see card_fault.h */
int kv_vcard_log_to_json(const kv_vcard *vc, json_t *root)
{
    const kv_vcard_logcfg *lc = log_of(vc);
    json_t *o;

    if (lc == NULL)
        return 0;
    if ((o = json_object()) == NULL)
        return KV_ERR_NOMEM;
    for (size_t d = 0; d < vc->prof->ndfs; d++) {
        const kv_vcard_df *df = &vc->prof->dfs[d];
        const kv_vcard_log_area *area = &vc->lab->areas[d];
        char aid[2 * KV_VCARD_DF_NAME_MAX + 1], hex[2 * KV_VCARD_LOG_RECORD_MAX + 1];
        json_t *arr;
        if (df->kind != KV_VCARD_DF_APP || area->n == 0)
            continue;
        if ((arr = json_array()) == NULL)
            goto nomem;
        kv_hex_encode(df->name, df->name_len, aid);
        if (json_object_set_new(o, aid, arr) != 0)
            goto nomem;
        for (size_t i = 0; i < area->n; i++) {
            kv_hex_encode(area->rec[i], lc->record_len, hex);
            if (json_array_append_new(arr, json_string(hex)) != 0)
                goto nomem;
        }
    }
    if (json_object_set_new(root, "log", o) != 0)
        return KV_ERR_NOMEM;
    return 0;
nomem:
    json_decref(o);
    return KV_ERR_NOMEM;
}

/* see emv.h: JSON and human reports of the card data */
#include "apdu/emv.h"
#include "apdu/tags.h"
#include "apdu/trace.h"
#include "src/base/err.h"
#include "src/base/hex.h"

#include <stdlib.h>
#include <string.h>

/* New JSON string of hex, or null when absent. */
static json_t *hex_or_null(const uint8_t *p, size_t len, int present)
{
    char buf[2 * 256 + 1];
    char *h = buf;
    json_t *j;
    if (!present)
        return json_null();
    if (len > 256 && (h = malloc(2 * len + 1)) == NULL)
        return NULL;
    kv_hex_encode(p, len, h);
    j = json_string(h);
    if (h != buf)
        free(h);
    return j;
}

static json_t *text_or_null(const char *s)
{
    return s[0] != '\0' ? json_string(s) : json_null();
}

static json_t *pan_json(const char *pan, unsigned opts)
{
    char masked[sizeof(((kv_emv_card *)0)->pan)];
    if (pan[0] == '\0')
        return json_null();
    if (opts & KV_EMV_REVEAL)
        return json_string(pan);
    kv_pan_mask(pan, masked);
    return json_string(masked);
}

static json_t *app_json(const kv_emv_app *a)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    json_object_set_new(o, "aid", hex_or_null(a->aid, a->aid_len, 1));
    json_object_set_new(o, "label", text_or_null(a->label));
    json_object_set_new(o, "preferred_name", text_or_null(a->preferred_name));
    json_object_set_new(o, "priority", a->priority >= 0 ? json_integer(a->priority) : json_null());
    /* API (87) bit 8: selected only with --select (apdu/emv.h, selection rules) */
    json_object_set_new(o, "confirmation", json_boolean(a->api >= 0 && (a->api & 0x80) != 0));
    return o;
}

/*
 * tags.h masks the PAN in 5A, 57, 9F6B and 56; the PAN also shows up
 * elsewhere (9F1F track 1 discretionary data, proprietary tags), so mask
 * every remaining occurrence of its digits, BCD or ASCII, in "value" and
 * "text" too.
 */
static void mask_pan_in_tree(json_t *node, const char *pan)
{
    size_t n = strlen(pan), i;
    json_t *v;
    const char *key;

    if (json_is_array(node)) {
        json_array_foreach(node, i, v) mask_pan_in_tree(v, pan);
        return;
    }
    if (!json_is_object(node))
        return;
    json_object_foreach(node, key, v)
    {
        const char *str = json_string_value(v);
        char *copy, *hit;
        int changed = 0;
        if (json_is_array(v)) {
            mask_pan_in_tree(v, pan);
            continue;
        }
        if (str == NULL || (strcmp(key, "value") != 0 && strcmp(key, "text") != 0))
            continue;
        if ((copy = strdup(str)) == NULL)
            continue;
        if (strcmp(key, "value") == 0) {
            size_t len = strlen(copy) / 2;
            uint8_t *bytes = malloc(len + 1);
            const char *pl[1] = {pan};
            if (bytes != NULL && kv_hex_decode(copy, bytes, len + 1) == (int)len) {
                kv_trace_mask_hex(bytes, len, 0, pl, 1, copy);
                for (char *q = copy; *q; q++)
                    if (*q == 'X') {
                        *q = '*';
                        changed = 1;
                    }
            }
            free(bytes);
        } else {
            for (hit = strstr(copy, pan); hit != NULL; hit = strstr(hit + n, pan)) {
                memset(hit + 6, '*', n - 10);
                changed = 1;
            }
        }
        if (changed)
            json_object_set_new(node, key, json_string(copy));
        free(copy);
    }
}

static json_t *records_json(const kv_emv_card *c, unsigned opts)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < c->nrecords; i++) {
        const kv_emv_record *rec = &c->records[i];
        json_t *o = json_object(), *tree = NULL;
        if (o == NULL)
            break;
        json_object_set_new(o, "sfi", json_integer(rec->sfi));
        json_object_set_new(o, "record", json_integer(rec->record));
        json_object_set_new(o, "oda", json_boolean(rec->oda));
        if (kv_tag_json_tree(rec->data, rec->len, (opts & KV_EMV_REVEAL) ? KV_TAG_REVEAL : 0,
                             &tree) != 0)
            tree = NULL;
        if (tree != NULL && !(opts & KV_EMV_REVEAL) && strlen(c->pan) >= 12)
            mask_pan_in_tree(tree, c->pan);
        json_object_set_new(o, "tlv", tree != NULL ? tree : json_null());
        json_array_append_new(arr, o);
    }
    return arr;
}

json_t *kv_emv_to_json(const kv_emv *s, unsigned opts)
{
    const kv_emv_card *c = kv_emv_card_data(s);
    json_t *o = json_object(), *aids = json_array(), *apps = json_array();
    char psn[3];

    if (o == NULL || aids == NULL || apps == NULL) {
        json_decref(o);
        json_decref(aids);
        json_decref(apps);
        return NULL;
    }
    for (size_t i = 0; i < c->napps; i++) {
        json_array_append_new(aids, hex_or_null(c->apps[i].aid, c->apps[i].aid_len, 1));
        json_array_append_new(apps, app_json(&c->apps[i]));
    }
    json_object_set_new(o, "pan", pan_json(c->pan, opts));
    json_object_set_new(o, "expiry", text_or_null(c->expiry));
    json_object_set_new(o, "aids", aids);
    json_object_set_new(o, "selected_aid",
                        hex_or_null(c->selected.aid, c->selected.aid_len, c->has_selected));
    if (c->psn >= 0)
        snprintf(psn, sizeof(psn), "%02X", (unsigned)(c->psn & 0xFF));
    json_object_set_new(o, "psn", c->psn >= 0 ? json_string(psn) : json_null());
    json_object_set_new(o, "label",
                        c->has_selected ? text_or_null(c->selected.label) : json_null());
    json_object_set_new(o, "preferred_name",
                        c->has_selected ? text_or_null(c->selected.preferred_name) : json_null());
    json_object_set_new(o, "applications", apps);
    json_object_set_new(o, "selection", json_string(kv_emv_selection_name(c->selection)));
    json_object_set_new(o, "pin_try_counter",
                        c->pin_try_counter >= 0 ? json_integer(c->pin_try_counter) : json_null());
    json_object_set_new(o, "atc", hex_or_null(c->atc, 2, c->has_atc));
    json_object_set_new(o, "last_online_atc",
                        hex_or_null(c->last_online_atc, 2, c->has_last_online_atc));
    json_object_set_new(o, "log_format",
                        hex_or_null(c->log_format, c->log_format_len, c->log_format_len > 0));
    json_object_set_new(o, "aip", hex_or_null(c->aip, 2, c->has_aip));
    json_object_set_new(o, "afl", hex_or_null(c->afl.p, c->afl.len, c->has_aip));
    json_object_set_new(o, "ca_index", c->ca_index >= 0 ? json_integer(c->ca_index) : json_null());
    json_object_set_new(o, "records", records_json(c, opts));
    return o;
}

static void print_hex(FILE *f, const char *what, const uint8_t *p, size_t len, int present)
{
    fprintf(f, "%-18s", what);
    if (!present) {
        fprintf(f, "-\n");
        return;
    }
    for (size_t i = 0; i < len; i++)
        fprintf(f, "%02X", p[i]);
    fprintf(f, "\n");
}

void kv_emv_print(FILE *f, const kv_emv *s, unsigned opts)
{
    const kv_emv_card *c = kv_emv_card_data(s);
    char pan[sizeof(c->pan)];
    size_t oda = 0;

    fprintf(f, "%-18s%s, %zu application%s\n", "Selection:", kv_emv_selection_name(c->selection),
            c->napps, c->napps == 1 ? "" : "s");
    for (size_t i = 0; i < c->napps; i++) {
        const kv_emv_app *a = &c->apps[i];
        int chosen = c->has_selected && a->aid_len == c->selected.aid_len &&
                     memcmp(a->aid, c->selected.aid, a->aid_len) == 0;
        fprintf(f, "  %c ", chosen ? '*' : ' ');
        for (size_t k = 0; k < a->aid_len; k++)
            fprintf(f, "%02X", a->aid[k]);
        fprintf(f, "%*s", (int)(2 * (KV_AID_MAX - a->aid_len)) + 1, "");
        if (a->priority >= 0)
            fprintf(f, "priority %-2d  ", a->priority);
        else
            fprintf(f, "priority -   ");
        fprintf(f, "%s%s\n", a->label[0] ? a->label : "",
                a->api >= 0 && (a->api & 0x80) != 0 ? "  (asks for confirmation: --select)" : "");
    }
    print_hex(f, "Selected AID:", c->selected.aid, c->selected.aid_len, c->has_selected);
    fprintf(f, "%-18s%s\n",
            "Label:", c->has_selected && c->selected.label[0] ? c->selected.label : "-");
    if (c->has_selected && c->selected.preferred_name[0])
        fprintf(f, "%-18s%s\n", "Preferred name:", c->selected.preferred_name);
    if (c->pan[0] == '\0') {
        fprintf(f, "%-18s-\n", "PAN:");
    } else {
        if (opts & KV_EMV_REVEAL)
            memcpy(pan, c->pan, sizeof(pan));
        else
            kv_pan_mask(c->pan, pan);
        fprintf(f, "%-18s%s\n", "PAN:", pan);
    }
    if (c->expiry[0])
        fprintf(f, "%-18s%.2s/%.2s (MM/YY)\n", "Expiry:", c->expiry + 2, c->expiry);
    else
        fprintf(f, "%-18s-\n", "Expiry:");
    if (c->psn >= 0)
        fprintf(f, "%-18s%02X\n", "PSN:", (unsigned)c->psn);
    else
        fprintf(f, "%-18s-\n", "PSN:");
    print_hex(f, "AIP:", c->aip, 2, c->has_aip);
    print_hex(f, "AFL:", c->afl.p, c->afl.len, c->has_aip);
    print_hex(f, "CVM list:", c->cvm_list.p, c->cvm_list.len, c->cvm_list.p != NULL);
    if (c->ca_index >= 0)
        fprintf(f, "%-18s%02X\n", "CA key index:", (unsigned)c->ca_index);
    if (c->pin_try_counter >= 0)
        fprintf(f, "%-18s%d\n", "PIN tries left:", c->pin_try_counter);
    else
        fprintf(f, "%-18s-\n", "PIN tries left:");
    print_hex(f, "ATC:", c->atc, 2, c->has_atc);
    print_hex(f, "Last online ATC:", c->last_online_atc, 2, c->has_last_online_atc);
    print_hex(f, "Log format:", c->log_format, c->log_format_len, c->log_format_len > 0);
    for (size_t i = 0; i < c->nrecords; i++)
        oda += c->records[i].oda ? 1 : 0;
    fprintf(f, "%-18s%zu (%zu for offline data authentication)\n", "Records:", c->nrecords, oda);
}

/*
 * see vcard.h
 *
 * One C-APDU goes: parse (kv_capdu_parse) -> GET RESPONSE of pending data, or
 * the answer of the card (the command table for a profile card, the recording
 * for a recorded card) -> the test-lab quirks (6Cxx, 61xx) -> out.
 *
 * New commands are rows of commands[] below: a later version adds GET
 * CHALLENGE (00 84), INTERNAL AUTHENTICATE (00 88), GENERATE AC (80 AE),
 * COMPUTE CRYPTOGRAPHIC CHECKSUM (80 2A) and enciphered PIN (VERIFY P2 88).
 */
#include "apdu/vcard/vcard.h"
#include "apdu/apdu.h"
#include "apdu/recorded.h"
#include "apdu/tlv.h"
#include "apdu/vcard/profile.h"
#include "src/base/err.h"
#include "src/base/secure.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Status words the card sends (ISO/IEC 7816-4 §5.6, EMV Book 3 Annex A). */
enum {
    SW_OK = 0x9000,
    SW_MORE = 0x6100, /* | bytes still available */
    SW_SELECTED_BLOCKED = 0x6283,
    SW_TRIES_LEFT = 0x63C0, /* | tries left */
    SW_MEMORY_FAILURE = 0x6581,
    SW_WRONG_LENGTH = 0x6700,
    SW_PIN_BLOCKED = 0x6983,
    SW_CONDITIONS = 0x6985,
    SW_WRONG_DATA = 0x6A80,
    SW_FILE_NOT_FOUND = 0x6A82,
    SW_RECORD_NOT_FOUND = 0x6A83,
    SW_WRONG_P1P2 = 0x6A86,
    SW_DATA_NOT_FOUND = 0x6A88,
    SW_WRONG_LE = 0x6C00, /* | exact length */
    SW_INS_UNKNOWN = 0x6D00,
    SW_CLA_UNKNOWN = 0x6E00,
    SW_NO_DIAGNOSIS = 0x6F00,
};

struct kv_vcard {
    kv_vc_profile *prof; /* a profile card, or */
    kv_recorded *rec;    /* a recorded card */
    char name[128];
    uint8_t atr[KV_VCARD_ATR_MAX];
    size_t atr_len;
    unsigned quirks;

    /* session: cleared by power on/off and reset */
    int selected; /* index into prof->dfs; -1: nothing selected */
    int gpo_done;
    uint8_t pending[KV_VC_DATA_MAX]; /* data held back for GET RESPONSE */
    size_t pending_len, pending_off;

    /* persistent: the state file */
    unsigned pin_tries;
    unsigned atc;
    char *state_path;
};

typedef struct {
    uint8_t data[KV_VC_DATA_MAX];
    size_t len;
    uint16_t sw;
} answer;

static void session_clear(kv_vcard *vc)
{
    vc->selected = -1;
    vc->gpo_done = 0;
    kv_wipe(vc->pending, sizeof(vc->pending));
    vc->pending_len = vc->pending_off = 0;
    if (vc->rec != NULL)
        kv_recorded_reset(vc->rec);
}

static const kv_vc_df *selected_app(const kv_vcard *vc)
{
    const kv_vc_df *df;
    if (vc->selected < 0)
        return NULL;
    df = &vc->prof->dfs[vc->selected];
    return df->kind == KV_VC_DF_APP ? df : NULL;
}

/* data = the whole of a TLV writer's output, or 6F00 if it did not fit */
static void answer_tlv(answer *a, kv_tlv_writer *w)
{
    if (kv_tlv_finish(w) != 0) {
        a->len = 0;
        a->sw = SW_NO_DIAGNOSIS;
        return;
    }
    a->len = w->len;
    a->sw = SW_OK;
}

/* SELECT by DF name, EMV Book 1 §11.3: P2 b2-b1 occurrence, b4-b3 FCI or nothing. */
static void cmd_select(kv_vcard *vc, const kv_capdu *c, answer *a)
{
    const kv_vc_profile *p = vc->prof;
    unsigned occurrence = c->p2 & 0x03, fci = c->p2 & 0x0C;
    size_t start = 0, i;

    if (c->p1 != 0x04 || (c->p2 & 0xF0) != 0 || (occurrence != 0x00 && occurrence != 0x02) ||
        (fci != 0x00 && fci != 0x0C)) {
        a->sw = SW_WRONG_P1P2;
        return;
    }
    if (c->lc == 0 || c->lc > KV_VC_DF_NAME_MAX) {
        a->sw = SW_FILE_NOT_FOUND;
        return;
    }
    /* "next occurrence" continues after the current DF when it matches the name too */
    if (occurrence == 0x02 && vc->selected >= 0) {
        const kv_vc_df *cur = &p->dfs[vc->selected];
        if (cur->name_len >= c->lc && memcmp(cur->name, c->data, c->lc) == 0)
            start = (size_t)vc->selected + 1;
    }
    for (i = start; i < p->ndfs; i++)
        if (p->dfs[i].name_len >= c->lc && memcmp(p->dfs[i].name, c->data, c->lc) == 0)
            break;
    if (i == p->ndfs) {
        a->sw = SW_FILE_NOT_FOUND; /* the current DF stays selected (ISO/IEC 7816-4 §7.1.1) */
        return;
    }
    vc->selected = (int)i;
    vc->gpo_done = 0;
    if (fci == 0x00) {
        memcpy(a->data, p->dfs[i].fci, p->dfs[i].fci_len);
        a->len = p->dfs[i].fci_len;
    }
    a->sw = p->dfs[i].blocked ? SW_SELECTED_BLOCKED : SW_OK;
}

/* READ RECORD: P1 record number, P2 = SFI << 3 | 100 (EMV Book 3 §6.5.11). */
static void cmd_read_record(kv_vcard *vc, const kv_capdu *c, answer *a)
{
    const kv_vc_df *df;
    unsigned sfi = c->p2 >> 3;
    int sfi_seen = 0;

    if ((c->p2 & 0x07) != 0x04 || sfi == 0) {
        a->sw = SW_WRONG_P1P2;
        return;
    }
    if (vc->selected < 0) {
        a->sw = SW_FILE_NOT_FOUND;
        return;
    }
    df = &vc->prof->dfs[vc->selected];
    for (size_t i = 0; i < df->nrecords; i++) {
        if (df->records[i].sfi != sfi)
            continue;
        sfi_seen = 1;
        if (df->records[i].number == c->p1) {
            memcpy(a->data, df->records[i].data, df->records[i].len);
            a->len = df->records[i].len;
            a->sw = SW_OK;
            return;
        }
    }
    a->sw = sfi_seen ? SW_RECORD_NOT_FOUND : SW_FILE_NOT_FOUND;
}

/* GET PROCESSING OPTIONS, EMV Book 3 §6.5.8: data 83 { PDOL data }. */
static void cmd_gpo(kv_vcard *vc, const kv_capdu *c, answer *a)
{
    const kv_vc_df *app = selected_app(vc);
    kv_tlv_writer w;
    kv_cursor cur;
    kv_tlv t, extra;

    if (c->p1 != 0x00 || c->p2 != 0x00) {
        a->sw = SW_WRONG_P1P2;
        return;
    }
    if (app == NULL || vc->gpo_done) { /* GPO once per application selection */
        a->sw = SW_CONDITIONS;
        return;
    }
    if (c->lc == 0) {
        a->sw = SW_WRONG_LENGTH;
        return;
    }
    kv_cursor_init(&cur, c->data, c->lc);
    if (kv_tlv_next(&cur, &t) != 1 || t.tag != 0x83 || kv_tlv_next(&cur, &extra) != 0) {
        a->sw = SW_WRONG_DATA;
        return;
    }
    if (t.len != app->pdol_data_len) {
        a->sw = SW_WRONG_LENGTH;
        return;
    }
    if (vc->atc < 0xFFFF)
        vc->atc++;
    vc->gpo_done = 1;

    kv_tlv_writer_init(&w, a->data, sizeof(a->data));
    if (app->gpo_format == 1) {
        /* 80 is primitive: its value is AIP || AFL */
        uint8_t v[sizeof(app->aip) + sizeof(app->afl)];
        memcpy(v, app->aip, sizeof(app->aip));
        memcpy(v + sizeof(app->aip), app->afl, app->afl_len);
        kv_tlv_put(&w, 0x80, v, sizeof(app->aip) + app->afl_len);
    } else {
        kv_tlv_begin(&w, 0x77);
        kv_tlv_put(&w, 0x82, app->aip, sizeof(app->aip));
        kv_tlv_put(&w, 0x94, app->afl, app->afl_len);
        kv_tlv_put_raw(&w, app->gpo_extra, app->gpo_extra_len);
        kv_tlv_end(&w);
    }
    answer_tlv(a, &w);
}

static const kv_vc_dataobj *find_data(const kv_vc_dataobj *objs, size_t n, uint32_t tag)
{
    for (size_t i = 0; i < n; i++)
        if (objs[i].tag == tag)
            return &objs[i];
    return NULL;
}

/* GET DATA, EMV Book 3 §6.5.7: P1 P2 is the tag; answer the whole object. */
static void cmd_get_data(kv_vcard *vc, const kv_capdu *c, answer *a)
{
    uint32_t tag = c->p1 != 0 ? (uint32_t)c->p1 << 8 | c->p2 : c->p2;
    const kv_vc_df *app = selected_app(vc);
    const kv_vc_dataobj *o = NULL;
    uint8_t v[2];
    kv_tlv_writer w;

    kv_tlv_writer_init(&w, a->data, sizeof(a->data));
    if (tag == 0x9F17 && vc->prof->pin_block != NULL) {
        v[0] = (uint8_t)vc->pin_tries;
        kv_tlv_put(&w, tag, v, 1);
    } else if (tag == 0x9F36) {
        v[0] = (uint8_t)(vc->atc >> 8);
        v[1] = (uint8_t)vc->atc;
        kv_tlv_put(&w, tag, v, 2);
    } else if ((app != NULL && (o = find_data(app->data, app->ndata, tag)) != NULL) ||
               (o = find_data(vc->prof->data, vc->prof->ndata, tag)) != NULL) {
        kv_tlv_put(&w, tag, o->value, o->len);
    } else {
        a->sw = SW_DATA_NOT_FOUND;
        return;
    }
    answer_tlv(a, &w);
}

/*
 * A plaintext PIN block: control 2, length 4..12, that many BCD digits, F
 * filler. This looks at the digits the terminal sent, not at the card's PIN.
 */
static int pin_block_well_formed(const uint8_t *b)
{
    unsigned n = b[0] & 0x0F;
    if ((b[0] >> 4) != 0x2 || n < 4 || n > 12)
        return 0;
    for (unsigned nib = 2; nib < 2 * KV_VC_PIN_BLOCK_LEN; nib++) {
        unsigned d = (nib % 2) ? (b[nib / 2] & 0x0F) : (b[nib / 2] >> 4);
        if (nib < 2 + n ? d > 9 : d != 0x0F)
            return 0;
    }
    return 1;
}

/* VERIFY, EMV Book 3 §6.5.12; P2 80 plaintext PIN. */
static void cmd_verify(kv_vcard *vc, const kv_capdu *c, answer *a)
{
    const kv_vc_profile *p = vc->prof;
    unsigned before = vc->pin_tries;

    if (c->p1 != 0x00 || c->p2 != 0x80) {
        a->sw = SW_WRONG_P1P2;
        return;
    }
    if (p->pin_block == NULL) {
        a->sw = SW_DATA_NOT_FOUND;
        return;
    }
    if (c->lc == 0) { /* no data: ask for the tries left (ISO/IEC 7816-4 §11.5.6) */
        a->sw = vc->pin_tries == 0 ? SW_PIN_BLOCKED : (uint16_t)(SW_TRIES_LEFT | vc->pin_tries);
        return;
    }
    if (c->lc != KV_VC_PIN_BLOCK_LEN) {
        a->sw = SW_WRONG_LENGTH;
        return;
    }
    if (vc->pin_tries == 0) {
        a->sw = SW_PIN_BLOCKED;
        return;
    }
    if (!pin_block_well_formed(c->data)) {
        a->sw = SW_WRONG_DATA;
        return;
    }
    if (kv_ct_equal(c->data, kv_secbuf_ptr(p->pin_block), KV_VC_PIN_BLOCK_LEN)) {
        vc->pin_tries = p->pin_try_limit;
        a->sw = SW_OK;
    } else {
        vc->pin_tries--;
        a->sw = (uint16_t)(SW_TRIES_LEFT | vc->pin_tries);
    }
    if (vc->pin_tries != before && kv_vcard_state_save(vc) != 0)
        a->sw = SW_MEMORY_FAILURE;
}

/* GET RESPONSE (ISO/IEC 7816-4 §7.6.1): the next Le bytes of the held-back data. */
static void cmd_get_response(kv_vcard *vc, const kv_capdu *c, answer *a)
{
    size_t left = vc->pending_len - vc->pending_off, n;

    if (c->p1 != 0x00 || c->p2 != 0x00) {
        a->sw = SW_WRONG_P1P2;
        return;
    }
    if (left == 0) {
        a->sw = SW_CONDITIONS;
        return;
    }
    n = (c->le == 0 || c->le > left) ? left : c->le;
    memcpy(a->data, vc->pending + vc->pending_off, n);
    a->len = n;
    vc->pending_off += n;
    left -= n;
    a->sw = left > 0 ? (uint16_t)(SW_MORE | (left & 0xFF)) : SW_OK;
    if (left == 0)
        vc->pending_len = vc->pending_off = 0;
}

typedef void (*command_fn)(kv_vcard *vc, const kv_capdu *c, answer *a);

/*
 * The command table of a profile card. GET RESPONSE is answered before the
 * table (recorded cards need it too); its row makes 80 C0 a class error.
 */
static const struct command {
    uint8_t cla, ins;
    command_fn run;
} commands[] = {
    {0x00, 0xA4, cmd_select},       {0x00, 0xB2, cmd_read_record}, {0x00, 0x20, cmd_verify},
    {0x00, 0xC0, cmd_get_response}, {0x80, 0xA8, cmd_gpo},         {0x80, 0xCA, cmd_get_data},
};

static void dispatch(kv_vcard *vc, const kv_capdu *c, answer *a)
{
    int cla_known = 0, ins_known = 0;
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (commands[i].cla == c->cla && commands[i].ins == c->ins) {
            commands[i].run(vc, c, a);
            return;
        }
        cla_known |= commands[i].cla == c->cla;
        ins_known |= commands[i].ins == c->ins;
    }
    /* an instruction this card knows under another class is a class problem */
    a->sw = (!cla_known || ins_known) ? SW_CLA_UNKNOWN : SW_INS_UNKNOWN;
}

static void answer_recorded(kv_vcard *vc, const uint8_t *capdu, size_t len, answer *a)
{
    uint8_t buf[KV_VCARD_RAPDU_MAX];
    size_t n = 0;
    if (kv_recorded_answer(vc->rec, capdu, len, buf, sizeof(buf), &n) != 0 || n < 2) {
        a->sw = SW_NO_DIAGNOSIS;
        return;
    }
    a->len = n - 2;
    memcpy(a->data, buf, a->len);
    a->sw = kv_sw_of(buf, n);
}

/* The T=0 round trips a test lab asks for (ISO/IEC 7816-3 §10.3.4). */
static void apply_quirks(kv_vcard *vc, const kv_capdu *c, answer *a)
{
    /* Le 00 (or 0000) means "whatever there is" */
    int le_any = (c->le == KV_APDU_SHORT_LE_MAX && !c->extended) || c->le == KV_APDU_EXT_LE_MAX;

    if (a->len == 0 || a->sw != SW_OK)
        return;
    if ((vc->quirks & KV_VCARD_QUIRK_WRONG_LE) && c->le != 0 && !le_any && c->le != a->len) {
        a->sw = (uint16_t)(SW_WRONG_LE | (a->len & 0xFF));
        a->len = 0;
        return;
    }
    if (vc->quirks & KV_VCARD_QUIRK_GET_RESPONSE) {
        memcpy(vc->pending, a->data, a->len);
        vc->pending_len = a->len;
        vc->pending_off = 0;
        a->sw = (uint16_t)(SW_MORE | (a->len & 0xFF));
        a->len = 0;
    }
}

/* see vcard.h */
int kv_vcard_process(kv_vcard *vc, const uint8_t *capdu, size_t len, uint8_t *out, size_t cap,
                     size_t *outlen)
{
    answer a;
    kv_capdu c;

    *outlen = 0;
    if (cap < KV_VCARD_RAPDU_MAX)
        return KV_ERR_BUFFER;
    a.len = 0;
    a.sw = SW_NO_DIAGNOSIS;
    if (kv_capdu_parse(capdu, len, &c) != 0) {
        a.sw = SW_WRONG_LENGTH;
    } else if (c.cla == 0x00 && c.ins == 0xC0) {
        cmd_get_response(vc, &c, &a);
    } else {
        vc->pending_len = vc->pending_off = 0; /* any other command drops held-back data */
        if (vc->rec != NULL)
            answer_recorded(vc, capdu, len, &a);
        else
            dispatch(vc, &c, &a);
        apply_quirks(vc, &c, &a);
    }
    memcpy(out, a.data, a.len);
    out[a.len] = (uint8_t)(a.sw >> 8);
    out[a.len + 1] = (uint8_t)a.sw;
    *outlen = a.len + 2;
    return 0;
}

static kv_vcard *card_alloc(void)
{
    kv_vcard *vc = calloc(1, sizeof(*vc));
    if (vc != NULL)
        vc->selected = -1;
    return vc;
}

/* The profile card of a parsed JSON root. */
static int card_from_json(json_t *root, kv_vcard **out, char *why, size_t whylen)
{
    kv_vcard *vc = NULL;
    int r = KV_ERR_NOMEM;

    if ((vc = card_alloc()) == NULL)
        goto out;
    if ((r = kv_vc_profile_build(root, &vc->prof, why, whylen)) != 0)
        goto out;
    snprintf(vc->name, sizeof(vc->name), "%s", vc->prof->name);
    memcpy(vc->atr, vc->prof->atr, vc->prof->atr_len);
    vc->atr_len = vc->prof->atr_len;
    vc->quirks = vc->prof->quirks;
    vc->pin_tries = vc->prof->pin_tries;
    vc->atc = vc->prof->atc;
    *out = vc;
    vc = NULL; /* transferred */
    r = 0;
out:
    kv_vcard_free(vc);
    return r;
}

static int card_from_recording(const char *path, json_t *root, kv_vcard **out, char *why,
                               size_t whylen)
{
    kv_vcard *vc = NULL;
    int r = KV_ERR_NOMEM;

    if ((vc = card_alloc()) == NULL)
        goto out;
    if ((r = kv_recorded_load(path, &vc->rec)) != 0) {
        snprintf(why, whylen, "not a valid trace card: %s", kv_strerror(r));
        goto out;
    }
    vc->atr_len = kv_recorded_atr(vc->rec, vc->atr, sizeof(vc->atr));
    if (vc->atr_len == 0 || vc->atr_len > sizeof(vc->atr)) {
        r = KV_ERR_JSON;
        snprintf(why, whylen, "atr: a trace card needs an ATR of 1..%d bytes", KV_VCARD_ATR_MAX);
        goto out;
    }
    snprintf(vc->name, sizeof(vc->name), "%s",
             json_is_string(json_object_get(root, "name"))
                 ? json_string_value(json_object_get(root, "name"))
                 : "recorded card");
    *out = vc;
    vc = NULL; /* transferred */
    r = 0;
out:
    kv_vcard_free(vc);
    return r;
}

/* The code and reason of a failed jansson load. */
static int json_failure(const json_error_t *e, char *why, size_t whylen)
{
    if (json_error_code(e) == json_error_cannot_open_file) {
        snprintf(why, whylen, "%s", e->text);
        return KV_ERR_IO;
    }
    snprintf(why, whylen, "line %d: %s", e->line, e->text);
    return KV_ERR_JSON;
}

/* A card from a parsed file (path) or text (path NULL: no trace cards, they load by path). */
static int card_from_root(json_t *root, const char *path, kv_vcard **out, char *why, size_t whylen)
{
    if (json_object_get(root, "exchanges") == NULL)
        return card_from_json(root, out, why, whylen);
    if (path == NULL) {
        snprintf(why, whylen, "a trace card loads from its file only");
        return KV_ERR_UNSUPPORTED;
    }
    return card_from_recording(path, root, out, why, whylen);
}

/* see vcard.h */
int kv_vcard_load(const char *path, kv_vcard **out, char *why, size_t whylen)
{
    json_error_t e;
    json_t *root;
    int r;

    *out = NULL;
    if ((root = json_load_file(path, JSON_REJECT_DUPLICATES, &e)) == NULL)
        return json_failure(&e, why, whylen);
    r = card_from_root(root, path, out, why, whylen);
    json_decref(root);
    return r;
}

/* see vcard.h */
int kv_vcard_new(const char *path, kv_vcard **out)
{
    return kv_vcard_load(path, out, NULL, 0);
}

/* see vcard.h */
int kv_vcard_load_text(const char *text, size_t len, kv_vcard **out, char *why, size_t whylen)
{
    json_error_t e;
    json_t *root;
    int r;

    *out = NULL;
    if ((root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e)) == NULL)
        return json_failure(&e, why, whylen);
    r = card_from_root(root, NULL, out, why, whylen);
    json_decref(root);
    return r;
}

/* see vcard.h */
void kv_vcard_free(kv_vcard *vc)
{
    if (vc == NULL)
        return;
    kv_vc_profile_free(vc->prof);
    kv_recorded_free(vc->rec);
    free(vc->state_path);
    kv_wipe(vc, sizeof(*vc));
    free(vc);
}

/* see vcard.h */
size_t kv_vcard_atr(const kv_vcard *vc, uint8_t *out, size_t cap)
{
    if (cap < vc->atr_len)
        return 0;
    memcpy(out, vc->atr, vc->atr_len);
    return vc->atr_len;
}

/* see vcard.h */
void kv_vcard_power_on(kv_vcard *vc)
{
    session_clear(vc);
}

/* see vcard.h */
void kv_vcard_power_off(kv_vcard *vc)
{
    session_clear(vc);
}

/* see vcard.h */
void kv_vcard_reset(kv_vcard *vc)
{
    session_clear(vc);
}

/* see vcard.h */
unsigned kv_vcard_quirks(const kv_vcard *vc)
{
    return vc->quirks;
}

/* see vcard.h */
void kv_vcard_set_quirks(kv_vcard *vc, unsigned quirks)
{
    vc->quirks = quirks & (KV_VCARD_QUIRK_GET_RESPONSE | KV_VCARD_QUIRK_WRONG_LE);
}

/* see vcard.h */
int kv_vcard_pin_tries(const kv_vcard *vc)
{
    return (vc->prof != NULL && vc->prof->pin_block != NULL) ? (int)vc->pin_tries : -1;
}

/* see vcard.h */
unsigned kv_vcard_atc(const kv_vcard *vc)
{
    return vc->atc;
}

/* see vcard.h */
int kv_vcard_is_recorded(const kv_vcard *vc)
{
    return vc->rec != NULL;
}

/* see vcard.h */
const char *kv_vcard_name(const kv_vcard *vc)
{
    return vc->name;
}

/*
 * State file: {"pin_tries_left": n, "atc": n}. Fields are optional so that
 * a file written for a card without a PIN still loads.
 */

/* see vcard.h */
int kv_vcard_state_attach(kv_vcard *vc, const char *path)
{
    json_t *root = NULL, *v;
    json_error_t e;
    FILE *f = NULL;
    char *copy = NULL;
    unsigned tries = vc->pin_tries, atc = vc->atc;
    int r = KV_ERR_NOMEM;

    if ((copy = strdup(path)) == NULL)
        goto out;
    if ((f = fopen(path, "r")) == NULL) {
        r = errno == ENOENT ? 0 : KV_ERR_IO;
        if (r != 0)
            goto out;
        goto attach;
    }
    r = KV_ERR_FORMAT;
    if ((root = json_loadf(f, 0, &e)) == NULL || !json_is_object(root))
        goto out;
    if ((v = json_object_get(root, "pin_tries_left")) != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) > KV_VC_PIN_TRY_MAX)
            goto out;
        tries = (unsigned)json_integer_value(v);
        /* a profile with a lower limit than the one that wrote the file */
        if (vc->prof != NULL && tries > vc->prof->pin_try_limit)
            tries = vc->prof->pin_try_limit;
    }
    if ((v = json_object_get(root, "atc")) != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 0xFFFF)
            goto out;
        atc = (unsigned)json_integer_value(v);
    }
attach:
    if (vc->prof != NULL && vc->prof->pin_block != NULL)
        vc->pin_tries = tries;
    vc->atc = atc;
    free(vc->state_path);
    vc->state_path = copy;
    copy = NULL; /* transferred */
    r = 0;
out:
    free(copy);
    json_decref(root);
    if (f != NULL)
        fclose(f);
    return r;
}

/* see vcard.h */
int kv_vcard_state_save(kv_vcard *vc)
{
    char *tmp = NULL, *text = NULL;
    json_t *root = NULL;
    size_t len;
    int fd = -1, r = KV_ERR_NOMEM;

    if (vc->state_path == NULL)
        return 0;
    if ((root = json_object()) == NULL)
        goto out;
    if (kv_vcard_pin_tries(vc) >= 0 &&
        json_object_set_new(root, "pin_tries_left", json_integer(vc->pin_tries)) != 0)
        goto out;
    if (json_object_set_new(root, "atc", json_integer(vc->atc)) != 0 ||
        (text = json_dumps(root, JSON_INDENT(2))) == NULL)
        goto out;
    len = strlen(text);
    if ((tmp = malloc(strlen(vc->state_path) + 8)) == NULL)
        goto out;
    sprintf(tmp, "%s.XXXXXX", vc->state_path);
    r = KV_ERR_IO;
    if ((fd = mkstemp(tmp)) < 0) {
        free(tmp);
        tmp = NULL;
        goto out;
    }
    /* temporary file in the same directory, fsync, rename: the old or the new file, never half */
    if (write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 || fsync(fd) != 0)
        goto out;
    r = close(fd);
    fd = -1;
    if (r != 0 || rename(tmp, vc->state_path) != 0) {
        r = KV_ERR_IO;
        goto out;
    }
    free(tmp);
    tmp = NULL;
    r = 0;
out:
    if (fd >= 0)
        close(fd);
    if (tmp != NULL) {
        unlink(tmp);
        free(tmp);
    }
    free(text);
    json_decref(root);
    return r;
}

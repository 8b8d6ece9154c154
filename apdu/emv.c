/* see emv.h */
#include "apdu/emv.h"
#include "src/base/cursor.h"
#include "apdu/tlv.h"
#include "src/base/err.h"
#include "src/base/secure.h"

#include <stdlib.h>
#include <string.h>

#define KV_EMV_MAX_AIDS 32
/* Bounds against a hostile card: directory records per PSE, next occurrences per AID. */
#define KV_EMV_MAX_DIR_RECORDS 32
#define KV_EMV_MAX_OCCURRENCES 16
/* DDFs (9D entries) followed below the PSE: nesting depth and how many in all. */
#define KV_EMV_MAX_DDF_DEPTH 4
#define KV_EMV_MAX_DDFS 8

struct kv_emv {
    kv_reader *r; /* borrowed */
    kv_terminal term;
    uint8_t app_version0[2]; /* 9F09 of the profile as given, before any application's */
    uint8_t aids[KV_EMV_MAX_AIDS][KV_AID_MAX];
    size_t aid_len[KV_EMV_MAX_AIDS];
    size_t naids;
    /* terminal configuration: NULL cfg = card reader (every application a candidate) */
    const kv_term_config *cfg;
    kv_term_config builtin;       /* kv_term_config_defaults */
    const kv_aid_config *sel_cfg; /* entry of the selected application, NULL when none */
    uint8_t chosen[KV_AID_MAX];   /* kv_emv_choose_aid */
    size_t chosen_len;            /* 0: no choice */
    /* DDF names already followed (loop guard) */
    uint8_t ddf[KV_EMV_MAX_DDFS][KV_AID_MAX];
    size_t ddf_len[KV_EMV_MAX_DDFS];
    size_t nddf;
    kv_emv_card card;
    int removed[KV_EMV_MAX_APPS]; /* candidates taken off the list (SELECT failed, GPO 6985) */
    uint8_t *fci;                 /* owned copies the card data points into */
    uint8_t *gpo;
    size_t records_cap;
    kv_oda_record *oda; /* the records marked for ODA (kv_emv_oda_static) */
    size_t noda;
    uint8_t resp[KV_EMV_RESP_MAX + 2];
};

/* The AID list (EMV Book 1 §12.3.3): the schemes a Danish terminal accepts. */
static const struct {
    const char *name;
    uint8_t aid[7];
} kv_emv_default_aids[] = {
    {"Visa", {0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10}},
    {"Visa Electron", {0xA0, 0x00, 0x00, 0x00, 0x03, 0x20, 0x10}},
    {"V PAY", {0xA0, 0x00, 0x00, 0x00, 0x03, 0x20, 0x20}},
    {"Mastercard", {0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10}},
    {"Maestro", {0xA0, 0x00, 0x00, 0x00, 0x04, 0x30, 0x60}},
    {"Dankort", {0xA0, 0x00, 0x00, 0x01, 0x21, 0x10, 0x10}},
};

static const uint8_t kv_pse_name[] = "1PAY.SYS.DDF01";
static const uint8_t kv_ppse_name[] = "2PAY.SYS.DDF01";

const char *kv_emv_selection_name(int selection)
{
    switch (selection) {
    case KV_EMV_SEL_PSE:
        return "pse";
    case KV_EMV_SEL_PPSE:
        return "ppse";
    case KV_EMV_SEL_AID_LIST:
        return "aid_list";
    default:
        return "none";
    }
}

int kv_emv_new(kv_reader *r, const kv_terminal *t, kv_emv **out)
{
    int ret = KV_ERR_NOMEM;
    kv_emv *s = calloc(1, sizeof(*s));

    if (s == NULL)
        goto out;
    s->r = r;
    if (t != NULL) {
        s->term = *t;
    } else if ((ret = kv_terminal_init(&s->term)) != 0) {
        goto out;
    }
    memcpy(s->app_version0, s->term.app_version, 2);
    kv_term_config_defaults(&s->builtin);
    for (size_t i = 0; i < sizeof(kv_emv_default_aids) / sizeof(kv_emv_default_aids[0]); i++) {
        memcpy(s->aids[i], kv_emv_default_aids[i].aid, sizeof(kv_emv_default_aids[i].aid));
        s->aid_len[i] = sizeof(kv_emv_default_aids[i].aid);
        s->naids++;
    }
    s->card.psn = -1;
    s->card.ca_index = -1;
    s->card.pin_try_counter = -1;
    *out = s;
    s = NULL; /* transferred */
    ret = 0;
out:
    free(s);
    return ret;
}

static void free_records(kv_emv *s)
{
    for (size_t i = 0; i < s->card.nrecords; i++)
        free(s->card.records[i].data);
    free(s->card.records);
    s->card.records = NULL;
    s->card.nrecords = 0;
    s->records_cap = 0;
    free(s->oda);
    s->oda = NULL;
    s->noda = 0;
}

void kv_emv_free(kv_emv *s)
{
    if (s == NULL)
        return;
    free_records(s);
    free(s->fci);
    free(s->gpo);
    free(s);
}

kv_terminal *kv_emv_terminal(kv_emv *s)
{
    return &s->term;
}

const kv_emv_card *kv_emv_card_data(const kv_emv *s)
{
    return &s->card;
}

int kv_emv_add_aid(kv_emv *s, const uint8_t *aid, size_t len)
{
    if (len < KV_AID_MIN || len > KV_AID_MAX)
        return KV_ERR_ARG;
    if (s->naids == KV_EMV_MAX_AIDS)
        return KV_ERR_BUFFER;
    memcpy(s->aids[s->naids], aid, len);
    s->aid_len[s->naids] = len;
    s->naids++;
    return 0;
}

int kv_emv_command(kv_emv *s, const kv_capdu *c, uint8_t *resp, size_t cap, size_t *len,
                   uint16_t *sw)
{
    int r;
    size_t n;
    if ((r = kv_reader_exchange(s->r, c, s->resp, sizeof(s->resp), &n)) != 0)
        return r;
    if (n - 2 > cap)
        return KV_ERR_BUFFER;
    memcpy(resp, s->resp, n - 2);
    *len = n - 2;
    *sw = kv_sw_of(s->resp, n);
    return 0;
}

/* A command whose answer stays in s->resp (data length *dlen). */
static int cmd(kv_emv *s, uint8_t cla, uint8_t ins, uint8_t p1, uint8_t p2, const uint8_t *data,
               size_t lc, uint16_t *sw, size_t *dlen)
{
    int r;
    size_t n;
    kv_capdu c = {.cla = cla, .ins = ins, .p1 = p1, .p2 = p2, .data = data, .lc = lc, .le = 256};
    if ((r = kv_reader_exchange(s->r, &c, s->resp, sizeof(s->resp), &n)) != 0)
        return r;
    *sw = kv_sw_of(s->resp, n);
    *dlen = n - 2;
    return 0;
}

static int select_df(kv_emv *s, const uint8_t *name, size_t len, uint8_t p2, uint16_t *sw,
                     size_t *dlen)
{
    /* SELECT by DF name; P2 00 first occurrence, 02 next (EMV Book 1 §11.3.2) */
    return cmd(s, 0x00, 0xA4, 0x04, p2, name, len, sw, dlen);
}

static int read_record(kv_emv *s, uint8_t sfi, uint8_t rec, uint16_t *sw, size_t *dlen)
{
    return cmd(s, 0x00, 0xB2, rec, (uint8_t)(sfi << 3 | 4), NULL, 0, sw, dlen);
}

/* Printable ASCII copy of an an/ans value; others become '?'. */
static void copy_text(char *dst, size_t cap, const uint8_t *v, size_t len)
{
    size_t n = len < cap - 1 ? len : cap - 1;
    for (size_t i = 0; i < n; i++)
        dst[i] = (v[i] >= 0x20 && v[i] < 0x7F) ? (char)v[i] : '?';
    dst[n] = '\0';
}

/* Fill app from the children of a directory entry (61) or an FCI proprietary template (A5). */
static void app_field(kv_emv_app *app, const kv_tlv *t)
{
    switch (t->tag) {
    case 0x4F:
    case 0x84:
        if (t->len >= KV_AID_MIN && t->len <= KV_AID_MAX) {
            memcpy(app->aid, t->value, t->len);
            app->aid_len = t->len;
        }
        break;
    case 0x50:
        copy_text(app->label, sizeof(app->label), t->value, t->len);
        break;
    case 0x9F12:
        copy_text(app->preferred_name, sizeof(app->preferred_name), t->value, t->len);
        break;
    case 0x87:
        if (t->len == 1) {
            app->api = t->value[0];
            /* EMV Book 1 §12.2.3: priority in bits 4-1, 0 = no priority */
            app->priority = (t->value[0] & 0x0F) != 0 ? (t->value[0] & 0x0F) : -1;
        }
        break;
    default:
        break;
    }
}

static void app_init(kv_emv_app *app)
{
    memset(app, 0, sizeof(*app));
    app->priority = -1;
    app->api = -1;
}

static int app_from_entry(const uint8_t *p, size_t len, kv_emv_app *app)
{
    int r;
    kv_cursor c;
    kv_tlv t;
    app_init(app);
    kv_cursor_init(&c, p, len);
    while ((r = kv_tlv_next(&c, &t)) == 1)
        app_field(app, &t);
    if (r < 0)
        return r;
    return app->aid_len > 0 ? 0 : KV_ERR_CARD_DATA;
}

/* The configuration whose entries decide the selected application's terminal data. */
static const kv_term_config *config_of(const kv_emv *s)
{
    return s->cfg != NULL ? s->cfg : &s->builtin;
}

/*
 * Whether the terminal supports the card's application (Book 1 §12.3.1):
 * with a terminal configuration, an entry must match under its ASI; a
 * session without one is a card reader and takes every application.
 */
static int supported(const kv_emv *s, const uint8_t *aid, size_t len)
{
    return s->cfg == NULL || kv_term_config_match(s->cfg, aid, len) != NULL;
}

/* Append an application unless its AID is already listed or the terminal does not support it. */
static void add_candidate(kv_emv *s, const kv_emv_app *app)
{
    if (!supported(s, app->aid, app->aid_len))
        return;
    for (size_t i = 0; i < s->card.napps; i++)
        if (s->card.apps[i].aid_len == app->aid_len &&
            memcmp(s->card.apps[i].aid, app->aid, app->aid_len) == 0)
            return;
    if (s->card.napps < KV_EMV_MAX_APPS)
        s->card.apps[s->card.napps++] = *app;
}

/* DDF names met in one directory, followed once the directory is read. */
struct ddf_queue {
    uint8_t name[KV_EMV_MAX_DDFS][KV_AID_MAX];
    size_t len[KV_EMV_MAX_DDFS];
    size_t n;
};

static int directory(kv_emv *s, uint8_t sfi, unsigned depth);

/*
 * A DDF entry (9D, Book 1 §12.3.2): SELECT the DDF by name and read its own
 * directory (the SFI of 88 in its FCI), unless the nesting is too deep, too
 * many DDFs were followed or this one was already (a loop). A DDF that does
 * not answer 9000 with an SFI is skipped.
 */
static int follow_ddf(kv_emv *s, const uint8_t *name, size_t len, unsigned depth)
{
    int r;
    uint16_t sw;
    size_t dlen;
    kv_tlv t;

    if (depth >= KV_EMV_MAX_DDF_DEPTH || s->nddf >= KV_EMV_MAX_DDFS)
        return 0;
    for (size_t i = 0; i < s->nddf; i++)
        if (s->ddf_len[i] == len && memcmp(s->ddf[i], name, len) == 0)
            return 0;
    memcpy(s->ddf[s->nddf], name, len);
    s->ddf_len[s->nddf++] = len;
    if ((r = select_df(s, name, len, 0x00, &sw, &dlen)) != 0)
        return r;
    if (sw != 0x9000 || kv_tlv_find(s->resp, dlen, 0x88, &t) != 0 || t.len != 1 || t.value[0] < 1 ||
        t.value[0] > 30)
        return 0;
    return directory(s, t.value[0], depth + 1);
}

/*
 * The entries (61) of one directory record (the value of its 70 template):
 * an ADF (4F) is a candidate when the terminal supports it; a DDF (9D) is
 * queued (copied: s->resp is reused). Returns 0, or 1 when the record is
 * malformed (the directory ends there).
 */
static int directory_entries(kv_emv *s, const uint8_t *p, size_t len, struct ddf_queue *q)
{
    int r;
    kv_cursor c;
    kv_tlv t, ddf;
    kv_emv_app app;

    kv_cursor_init(&c, p, len);
    while ((r = kv_tlv_next(&c, &t)) == 1) {
        if (t.tag != 0x61)
            continue;
        if (app_from_entry(t.value, t.len, &app) == 0) {
            add_candidate(s, &app);
        } else if (kv_tlv_find(t.value, t.len, 0x9D, &ddf) == 0 && ddf.len >= 1 &&
                   ddf.len <= KV_AID_MAX && q->n < KV_EMV_MAX_DDFS) {
            memcpy(q->name[q->n], ddf.value, ddf.len);
            q->len[q->n++] = ddf.len;
        }
    }
    return r < 0 ? 1 : 0;
}

/*
 * The directory records of SFI sfi (of the DF selected last), from record 1
 * until the card says there are no more (6A83); then the DDFs its entries
 * named, each selected and its directory read in turn. Reading the whole
 * directory first keeps every READ RECORD inside the DF it belongs to.
 */
static int directory(kv_emv *s, uint8_t sfi, unsigned depth)
{
    int r;
    uint16_t sw;
    size_t dlen;
    kv_tlv t;
    struct ddf_queue q;

    q.n = 0;
    for (unsigned rec = 1; rec <= KV_EMV_MAX_DIR_RECORDS; rec++) {
        kv_cursor c;
        if ((r = read_record(s, sfi, (uint8_t)rec, &sw, &dlen)) != 0)
            return r;
        if (sw != 0x9000) /* 6A83: end of the directory */
            break;
        kv_cursor_init(&c, s->resp, dlen);
        if (kv_tlv_next(&c, &t) != 1 || t.tag != 0x70)
            break;
        if (directory_entries(s, t.value, t.len, &q) != 0)
            break; /* a malformed record ends this directory */
    }
    for (size_t i = 0; i < q.n; i++)
        if ((r = follow_ddf(s, q.name[i], q.len[i], depth)) != 0)
            return r;
    return 0;
}

/*
 * EMV Book 1 §12.3.2: PSE, directory records read by the SFI of 88 until
 * 6A83, DDF entries followed. 6A81 to the SELECT (card blocked or SELECT not
 * supported) terminates the card session: KV_ERR_CARD_BLOCKED.
 */
static int try_pse(kv_emv *s)
{
    int r;
    uint16_t sw;
    size_t dlen;
    kv_tlv t;
    uint8_t sfi;

    if ((r = select_df(s, kv_pse_name, sizeof(kv_pse_name) - 1, 0x00, &sw, &dlen)) != 0)
        return r;
    if (sw == 0x6A81)
        return KV_ERR_CARD_BLOCKED;
    if (sw != 0x9000 || kv_tlv_find(s->resp, dlen, 0x88, &t) != 0 || t.len != 1)
        return 0;
    sfi = t.value[0];
    if (sfi < 1 || sfi > 30)
        return 0;
    s->nddf = 0;
    return directory(s, sfi, 0);
}

/* Add every 61 entry among the objects of len bytes at p (a PPSE's BF0C). */
static int add_directory_entries(kv_emv *s, const uint8_t *p, size_t len)
{
    int r;
    kv_cursor c;
    kv_tlv t;
    kv_emv_app app;
    kv_cursor_init(&c, p, len);
    while ((r = kv_tlv_next(&c, &t)) == 1) {
        if (t.tag == 0x61 && app_from_entry(t.value, t.len, &app) == 0)
            add_candidate(s, &app);
    }
    return r;
}

/* EMV Contactless Book B §3.3: PPSE, directory entries in the FCI (BF0C). */
static int try_ppse(kv_emv *s)
{
    int r;
    uint16_t sw;
    size_t dlen;
    kv_tlv t;

    if ((r = select_df(s, kv_ppse_name, sizeof(kv_ppse_name) - 1, 0x00, &sw, &dlen)) != 0)
        return r;
    if (sw != 0x9000 || kv_tlv_find(s->resp, dlen, 0xBF0C, &t) != 0)
        return 0;
    (void)add_directory_entries(s, t.value, t.len);
    return 0;
}

/* The FCI's DF name (84) and proprietary template fields (A5: 50, 87, 9F12). */
static int app_from_fci(const uint8_t *p, size_t len, kv_emv_app *app)
{
    kv_tlv t;
    app_init(app);
    /* A5 first (it holds no AID, so its parse "fails" harmlessly), then the DF name */
    if (kv_tlv_find(p, len, 0xA5, &t) == 0)
        (void)app_from_entry(t.value, t.len, app);
    if (kv_tlv_find(p, len, 0x84, &t) != 0)
        return KV_ERR_CARD_DATA;
    app_field(app, &t);
    return app->aid_len > 0 ? 0 : KV_ERR_CARD_DATA;
}

/*
 * One AID of the list (EMV Book 1 §12.3.3): SELECT it; a DF name equal to it
 * is a candidate and ends the search for this AID; a longer one (the AID is
 * a prefix) is a candidate only when the ASI allows partial selection (asi),
 * and only then is the next occurrence (P2 02) asked for (under ASI exact
 * the list moves on to its next AID). 6283 (blocked) answers are never
 * candidates. Returns 0, 1 when the card answered 6A81 (stop the list) or a
 * transport error.
 */
static int try_aid(kv_emv *s, const uint8_t *aid, size_t alen, int asi)
{
    int r;
    uint16_t sw;
    size_t dlen;
    kv_emv_app app;
    uint8_t p2 = 0x00;

    for (unsigned occ = 0; occ < KV_EMV_MAX_OCCURRENCES; occ++) {
        int exact;
        if ((r = select_df(s, aid, alen, p2, &sw, &dlen)) != 0)
            return r;
        if (sw == 0x6A81) /* card blocked or SELECT not supported: stop */
            return 1;
        if (sw != 0x9000 && sw != 0x6283)
            break;
        if (app_from_fci(s->resp, dlen, &app) != 0 || app.aid_len < alen ||
            memcmp(app.aid, aid, alen) != 0)
            break;
        exact = app.aid_len == alen;
        if (sw == 0x9000 && (exact || asi == KV_ASI_PARTIAL))
            add_candidate(s, &app);
        /* Book 1 §12.3.3 steps 5-7: only a partial match under ASI partial asks for more */
        if (exact || asi != KV_ASI_PARTIAL)
            break;
        p2 = 0x02;
    }
    return 0;
}

/*
 * EMV Book 1 §12.3.3: the AID list. With a terminal configuration its AIDs
 * with their ASI; without one the built-in list and kv_emv_add_aid's, every
 * one partial.
 */
static int try_aid_list(kv_emv *s)
{
    int r = 0;

    if (s->cfg != NULL) {
        for (size_t i = 0; i < s->cfg->naids && r == 0; i++)
            r = try_aid(s, s->cfg->aids[i].aid, s->cfg->aids[i].aid_len, s->cfg->aids[i].asi);
    } else {
        for (size_t i = 0; i < s->naids && r == 0; i++)
            r = try_aid(s, s->aids[i], s->aid_len[i], KV_ASI_PARTIAL);
    }
    return r < 0 ? r : 0;
}

/* Candidates in selection order: priority 1 first, absent last, card order among equals. */
static size_t selection_order(const kv_emv *s, size_t *order)
{
    size_t n = 0;
    for (int prio = 1; prio <= 16; prio++)
        for (size_t i = 0; i < s->card.napps; i++) {
            int p = s->card.apps[i].priority < 0 ? 16 : s->card.apps[i].priority;
            if (p == prio)
                order[n++] = i;
        }
    return n;
}

/* API (87) bit 8: the application may be selected only with the cardholder's confirmation. */
static int needs_confirmation(const kv_emv_app *a)
{
    return a->api >= 0 && (a->api & 0x80) != 0;
}

/* The selected application's terminal data: its configuration entry applied to the profile. */
static void apply_app_config(kv_emv *s)
{
    memcpy(s->term.app_version, s->app_version0, 2);
    s->sel_cfg = kv_term_config_match(config_of(s), s->card.selected.aid, s->card.selected.aid_len);
    if (s->sel_cfg != NULL)
        kv_term_config_apply_app(s->sel_cfg, &s->term);
}

/*
 * Final selection (EMV Book 1 §12.4): SELECT the best candidate left and
 * keep its FCI. With kv_emv_choose_aid only the chosen candidate; without,
 * the highest priority among those that do not ask for confirmation (API bit
 * 8): kortvagt has no cardholder to ask, so such an application is excluded
 * as Book 1 §12.4 says for a terminal without confirmation, and when only
 * such applications are left the answer is KV_ERR_APP_CONFIRM.
 */
static int final_select(kv_emv *s)
{
    int r, confirm_only = 0;
    size_t order[KV_EMV_MAX_APPS], n = selection_order(s, order);
    uint16_t sw;
    size_t dlen;
    kv_tlv t;

    for (size_t k = 0; k < n; k++) {
        size_t i = order[k];
        const kv_emv_app *cand = &s->card.apps[i];
        kv_emv_app app;
        if (s->removed[i])
            continue;
        if (s->chosen_len > 0) {
            if (cand->aid_len != s->chosen_len || memcmp(cand->aid, s->chosen, s->chosen_len) != 0)
                continue;
        } else if (needs_confirmation(cand)) {
            confirm_only = 1;
            continue;
        }
        if ((r = select_df(s, cand->aid, cand->aid_len, 0x00, &sw, &dlen)) != 0)
            return r;
        /* the FCI must name the application asked for (its DF name, 84) */
        if (sw != 0x9000 || app_from_fci(s->resp, dlen, &app) != 0 ||
            app.aid_len != cand->aid_len || memcmp(app.aid, cand->aid, app.aid_len) != 0) {
            s->removed[i] = 1;
            continue;
        }
        free(s->fci);
        if ((s->fci = malloc(dlen)) == NULL)
            return KV_ERR_NOMEM;
        memcpy(s->fci, s->resp, dlen);
        s->card.fci.p = s->fci;
        s->card.fci.len = dlen;
        s->card.selected = app;
        s->card.has_selected = 1;
        s->card.pdol.p = NULL;
        s->card.pdol.len = 0;
        if (kv_tlv_find(s->fci, dlen, 0x9F38, &t) == 0) {
            s->card.pdol.p = t.value;
            s->card.pdol.len = t.len;
        }
        s->removed[i] = 1; /* chosen: a later 6985 moves on to the next one */
        apply_app_config(s);
        return 0;
    }
    s->card.has_selected = 0;
    s->sel_cfg = NULL;
    return confirm_only ? KV_ERR_APP_CONFIRM : KV_ERR_NO_APPLICATION;
}

/* see emv.h */
void kv_emv_set_term_config(kv_emv *s, const kv_term_config *c)
{
    s->cfg = c != NULL ? c : &s->builtin;
}

/* see emv.h */
int kv_emv_choose_aid(kv_emv *s, const uint8_t *aid, size_t len)
{
    if (aid == NULL || len < KV_AID_MIN || len > KV_AID_MAX)
        return KV_ERR_ARG;
    memcpy(s->chosen, aid, len);
    s->chosen_len = len;
    return 0;
}

/* see emv.h */
const kv_aid_config *kv_emv_selected_config(const kv_emv *s)
{
    return s->card.has_selected ? s->sel_cfg : NULL;
}

int kv_emv_select(kv_emv *s, unsigned iface)
{
    int r;

    s->card.napps = 0;
    s->card.has_selected = 0;
    s->sel_cfg = NULL;
    memset(s->removed, 0, sizeof(s->removed));
    if (iface != KV_EMV_IFACE_CONTACTLESS) {
        if ((r = try_pse(s)) != 0)
            return r;
        if (s->card.napps > 0)
            s->card.selection = KV_EMV_SEL_PSE;
    }
    if (s->card.napps == 0 && iface != KV_EMV_IFACE_CONTACT) {
        if ((r = try_ppse(s)) != 0)
            return r;
        if (s->card.napps > 0)
            s->card.selection = KV_EMV_SEL_PPSE;
    }
    if (s->card.napps == 0) {
        if ((r = try_aid_list(s)) != 0)
            return r;
        if (s->card.napps > 0)
            s->card.selection = KV_EMV_SEL_AID_LIST;
    }
    if (s->card.napps == 0)
        return KV_ERR_NO_APPLICATION;
    /* contactless readers tell the card how the data was captured (9F39 07) */
    s->term.pos_entry_mode = s->card.selection == KV_EMV_SEL_PPSE ? 7 : 5;
    return final_select(s);
}

/* Parse a GPO answer (EMV Book 3 §6.5.8.4) kept in s->gpo. */
static int parse_gpo(kv_emv *s, size_t len)
{
    kv_cursor c;
    kv_tlv t, x;

    kv_cursor_init(&c, s->gpo, len);
    if (kv_tlv_next(&c, &t) != 1 || kv_tlv_validate(s->gpo, len) != 0)
        return KV_ERR_CARD_DATA;
    if (t.tag == 0x80) { /* format 1: AIP then AFL */
        if (t.len < 2 || (t.len - 2) % 4 != 0)
            return KV_ERR_CARD_DATA;
        memcpy(s->card.aip, t.value, 2);
        s->card.afl.p = t.len > 2 ? t.value + 2 : NULL;
        s->card.afl.len = t.len - 2;
    } else if (t.tag == 0x77) { /* format 2: TLV objects */
        if (kv_tlv_find(t.value, t.len, 0x82, &x) != 0 || x.len != 2)
            return KV_ERR_CARD_DATA;
        memcpy(s->card.aip, x.value, 2);
        s->card.afl.p = NULL;
        s->card.afl.len = 0;
        if (kv_tlv_find(t.value, t.len, 0x94, &x) == 0) {
            if (x.len % 4 != 0)
                return KV_ERR_CARD_DATA;
            s->card.afl.p = x.value;
            s->card.afl.len = x.len;
        }
    } else {
        return KV_ERR_CARD_DATA;
    }
    s->card.has_aip = 1;
    s->card.gpo.p = s->gpo;
    s->card.gpo.len = len;
    return 0;
}

int kv_emv_gpo(kv_emv *s)
{
    int r;
    uint8_t data[256], cmdata[260];
    size_t dlen = 0, rlen;
    uint16_t sw;
    kv_tlv_writer w;

    if (!s->card.has_selected)
        return KV_ERR_NO_APPLICATION;
    for (;;) {
        if ((r = kv_terminal_new_un(&s->term)) != 0)
            return r;
        if (s->card.pdol.len > 0 && (r = kv_dol_build(s->card.pdol.p, s->card.pdol.len, &s->term,
                                                      NULL, NULL, data, sizeof(data), &dlen)) != 0)
            return r == KV_ERR_BUFFER ? KV_ERR_CARD_DATA : r;
        /* command template 83 with the PDOL data (EMV Book 3 §5.4) */
        kv_tlv_writer_init(&w, cmdata, sizeof(cmdata));
        kv_tlv_put(&w, 0x83, dlen ? data : NULL, dlen);
        if (w.err != 0 || w.len > KV_APDU_SHORT_LC_MAX)
            return KV_ERR_CARD_DATA;
        if ((r = cmd(s, 0x80, 0xA8, 0x00, 0x00, cmdata, w.len, &sw, &rlen)) != 0)
            return r;
        if (sw != 0x6985)
            break;
        /* conditions of use not satisfied: this application is out, try the next */
        if ((r = final_select(s)) != 0)
            return r;
    }
    if (sw != 0x9000)
        return kv_sw_to_err(sw);
    free(s->gpo);
    if ((s->gpo = malloc(rlen ? rlen : 1)) == NULL)
        return KV_ERR_NOMEM;
    memcpy(s->gpo, s->resp, rlen);
    return parse_gpo(s, rlen);
}

static int add_record(kv_emv *s, uint8_t sfi, uint8_t rec, int oda, const uint8_t *p, size_t len)
{
    kv_emv_record *nr;
    if (s->card.nrecords == s->records_cap) {
        size_t cap = s->records_cap ? s->records_cap * 2 : 16;
        if ((nr = realloc(s->card.records, cap * sizeof(*nr))) == NULL)
            return KV_ERR_NOMEM;
        s->card.records = nr;
        s->records_cap = cap;
    }
    nr = &s->card.records[s->card.nrecords];
    if ((nr->data = malloc(len ? len : 1)) == NULL)
        return KV_ERR_NOMEM;
    memcpy(nr->data, p, len);
    nr->len = len;
    nr->sfi = sfi;
    nr->record = rec;
    nr->oda = oda;
    s->card.nrecords++;
    return 0;
}

struct find_ctx {
    uint32_t tag;
    const uint8_t *v;
    size_t len;
};

static int find_visit(const kv_tlv *t, unsigned depth, void *arg)
{
    struct find_ctx *f = arg;
    (void)depth;
    if (t->constructed || t->tag != f->tag)
        return 0;
    f->v = t->value;
    f->len = t->len;
    return 1;
}

int kv_emv_find(const kv_emv *s, uint32_t tag, const uint8_t **v, size_t *len)
{
    struct find_ctx f = {.tag = tag};
    /* records are validated when read; a walk error only ends the search in that buffer */
    if (s->card.gpo.len > 0 && kv_tlv_walk(s->card.gpo.p, s->card.gpo.len, find_visit, &f) == 1)
        goto found;
    for (size_t i = 0; i < s->card.nrecords; i++)
        if (kv_tlv_walk(s->card.records[i].data, s->card.records[i].len, find_visit, &f) == 1)
            goto found;
    return KV_ERR_NOT_FOUND;
found:
    *v = f.v;
    *len = f.len;
    return 0;
}

static void ref(const kv_emv *s, uint32_t tag, kv_emv_ref *out)
{
    const uint8_t *v;
    size_t len;
    if (kv_emv_find(s, tag, &v, &len) == 0) {
        out->p = v;
        out->len = len;
    } else {
        out->p = NULL;
        out->len = 0;
    }
}

/* BCD digits from nibble index start until a non-digit nibble; returns the count. */
static size_t bcd_digits(const uint8_t *v, size_t len, size_t start, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = start; i < 2 * len && n + 1 < cap; i++) {
        uint8_t d = (uint8_t)(i % 2 == 0 ? v[i / 2] >> 4 : v[i / 2] & 0x0F);
        if (d > 9)
            break;
        out[n++] = (char)('0' + d);
    }
    out[n] = '\0';
    return n;
}

/* The card data model from the GPO answer and records (EMV Book 3 Annex A). */
static void extract(kv_emv *s)
{
    kv_emv_card *c = &s->card;
    kv_emv_ref pan, exp, psn, ca;
    char digits[40];

    ref(s, 0x57, &c->track2);
    if (c->track2.p == NULL)
        ref(s, 0x9F6B, &c->track2);
    ref(s, 0x5A, &pan);
    c->pan[0] = '\0';
    if (pan.p != NULL)
        bcd_digits(pan.p, pan.len, 0, c->pan, sizeof(c->pan));
    if (c->pan[0] == '\0' && c->track2.p != NULL)
        bcd_digits(c->track2.p, c->track2.len, 0, c->pan, sizeof(c->pan));
    c->expiry[0] = '\0';
    ref(s, 0x5F24, &exp);
    if (exp.p != NULL && exp.len == 3 && bcd_digits(exp.p, 3, 0, digits, sizeof(digits)) == 6) {
        memcpy(c->expiry, digits, 4);
        c->expiry[4] = '\0';
    } else if (c->track2.p != NULL) {
        /* track 2: PAN, separator D, YYMM (ISO/IEC 7813) */
        size_t n = bcd_digits(c->track2.p, c->track2.len, 0, digits, sizeof(digits));
        size_t after = n + 1;
        char yymm[8];
        if (after < 2 * c->track2.len &&
            bcd_digits(c->track2.p, c->track2.len, after, yymm, sizeof(yymm)) >= 4) {
            memcpy(c->expiry, yymm, 4);
            c->expiry[4] = '\0';
        }
    }
    ref(s, 0x5F34, &psn);
    c->psn = (psn.p != NULL && psn.len == 1) ? psn.p[0] : -1;
    ref(s, 0x8E, &c->cvm_list);
    ref(s, 0x9F0D, &c->iac_default);
    ref(s, 0x9F0E, &c->iac_denial);
    ref(s, 0x9F0F, &c->iac_online);
    ref(s, 0x8F, &ca);
    c->ca_index = (ca.p != NULL && ca.len == 1) ? ca.p[0] : -1;
    ref(s, 0x90, &c->issuer_cert);
    ref(s, 0x92, &c->issuer_rem);
    ref(s, 0x9F32, &c->issuer_exp);
    ref(s, 0x9F46, &c->icc_cert);
    ref(s, 0x9F47, &c->icc_exp);
    ref(s, 0x9F48, &c->icc_rem);
    ref(s, 0x8C, &c->cdol1);
    ref(s, 0x8D, &c->cdol2);
    ref(s, 0x9F49, &c->ddol);
    ref(s, 0x9F4A, &c->sda_tag_list);
}

/* Growing list of tags (the duplicate check). */
struct tag_list {
    uint32_t *v;
    size_t n, cap;
};

static int tag_list_add(struct tag_list *l, uint32_t tag)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        uint32_t *nv = realloc(l->v, cap * sizeof(*nv));
        if (nv == NULL)
            return KV_ERR_NOMEM;
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = tag;
    return 0;
}

/* The primitive objects directly inside a 70 / 77 template value. */
static int template_tags(struct tag_list *l, const uint8_t *p, size_t len)
{
    int r;
    kv_cursor c;
    kv_tlv t;

    kv_cursor_init(&c, p, len);
    while ((r = kv_tlv_next(&c, &t)) == 1)
        if (!t.constructed && (r = tag_list_add(l, t.tag)) != 0)
            return r;
    return r < 0 ? KV_ERR_CARD_DATA : 0;
}

static int cmp_tag(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/*
 * EMV Book 3 §10.2: a primitive data object may appear only once in the
 * data the card gives while reading application data: the GPO answer (the
 * objects of its 77 template; a format 1 answer gives 82 and 94) and the
 * records that are 70 templates (SFI 11-30 records in other formats are
 * the issuer's, not TLV). Counted are the objects directly inside those
 * templates, the application's data objects; the children of a constructed
 * object nested inside are that template's business (their tags can be
 * context-specific) and the templates themselves (70 in every record) are
 * not data objects. Returns 0, KV_ERR_CARD_DUPLICATE or KV_ERR_NOMEM.
 */
static int check_duplicates(const kv_emv *s)
{
    int r = 0;
    struct tag_list l = {0};
    kv_cursor c;
    kv_tlv t;

    if (s->card.gpo.len > 0) {
        kv_cursor_init(&c, s->card.gpo.p, s->card.gpo.len);
        if (kv_tlv_next(&c, &t) == 1) {
            if (t.tag == 0x77)
                r = template_tags(&l, t.value, t.len);
            else if ((r = tag_list_add(&l, 0x82)) == 0 && t.len > 2)
                r = tag_list_add(&l, 0x94);
        }
    }
    for (size_t i = 0; i < s->card.nrecords && r == 0; i++) {
        const kv_emv_record *rec = &s->card.records[i];
        kv_cursor_init(&c, rec->data, rec->len);
        if (kv_tlv_next(&c, &t) != 1 || t.tag != 0x70 || t.raw_len != rec->len)
            continue; /* SFI 11-30 in a format of the issuer's */
        r = template_tags(&l, t.value, t.len);
        if (r == KV_ERR_CARD_DATA) /* not TLV inside: not ours to count */
            r = 0;
    }
    if (r == 0 && l.n > 1) {
        qsort(l.v, l.n, sizeof(*l.v), cmp_tag);
        for (size_t i = 1; i < l.n; i++)
            if (l.v[i] == l.v[i - 1]) {
                r = KV_ERR_CARD_DUPLICATE;
                break;
            }
    }
    free(l.v);
    return r;
}

/* The records marked for ODA as kv_oda_record, in AFL order (kv_emv_oda_static). */
static int collect_oda(kv_emv *s)
{
    size_t n = 0;

    for (size_t i = 0; i < s->card.nrecords; i++)
        n += s->card.records[i].oda ? 1 : 0;
    free(s->oda);
    s->oda = NULL;
    s->noda = 0;
    if (n == 0)
        return 0;
    if ((s->oda = calloc(n, sizeof(*s->oda))) == NULL)
        return KV_ERR_NOMEM;
    for (size_t i = 0; i < s->card.nrecords; i++) {
        const kv_emv_record *rec = &s->card.records[i];
        if (!rec->oda)
            continue;
        s->oda[s->noda].sfi = rec->sfi;
        s->oda[s->noda].data = rec->data;
        s->oda[s->noda].len = rec->len;
        s->noda++;
    }
    return 0;
}

int kv_emv_read_records(kv_emv *s)
{
    int r;
    const uint8_t *afl = s->card.afl.p;
    size_t n = s->card.afl.len;

    if (!s->card.has_aip)
        return KV_ERR_NO_APPLICATION;
    free_records(s);
    for (size_t i = 0; i + 4 <= n; i += 4) {
        uint8_t sfi = afl[i] >> 3, first = afl[i + 1], last = afl[i + 2], oda = afl[i + 3];
        /* EMV Book 3 §10.2: SFI 1..30, first >= 1, last >= first, ODA count within range */
        if ((afl[i] & 0x07) != 0 || sfi < 1 || sfi > 30 || first < 1 || last < first ||
            oda > last - first + 1)
            return KV_ERR_CARD_DATA;
        for (unsigned rec = first; rec <= last; rec++) {
            uint16_t sw;
            size_t dlen;
            if ((r = read_record(s, sfi, (uint8_t)rec, &sw, &dlen)) != 0)
                return r;
            if (sw != 0x9000)
                return kv_sw_to_err(sw);
            if (sfi <= 10) { /* EMV Book 3 §10.2: records of SFI 1..10 are a 70 template */
                kv_cursor c;
                kv_tlv t;
                kv_cursor_init(&c, s->resp, dlen);
                if (kv_tlv_next(&c, &t) != 1 || t.tag != 0x70 ||
                    kv_tlv_validate(s->resp, dlen) != 0)
                    return KV_ERR_CARD_DATA;
            }
            if ((r = add_record(s, sfi, (uint8_t)rec, rec < (unsigned)first + oda, s->resp,
                                dlen)) != 0)
                return r;
        }
    }
    if ((r = check_duplicates(s)) != 0 || (r = collect_oda(s)) != 0)
        return r;
    extract(s);
    return 0;
}

/* see emv.h */
void kv_emv_oda_static(const kv_emv *s, kv_oda_static *sd)
{
    memset(sd, 0, sizeof(*sd));
    sd->records = s->oda;
    sd->nrecords = s->noda;
    sd->tag_list = s->card.sda_tag_list.p;
    sd->tag_list_len = s->card.sda_tag_list.len;
    memcpy(sd->aip, s->card.aip, 2);
}

/* A data object present with a value (Book 3 §5.2: a zero length counts as absent). */
static int present(const kv_emv *s, uint32_t tag)
{
    const uint8_t *v;
    size_t len;
    return kv_emv_find(s, tag, &v, &len) == 0 && len > 0;
}

/* see emv.h */
int kv_emv_check_mandatory(const kv_emv *s, int need_cdol2)
{
    /* Book 3 §7.2: 5F24, 5A, 8C, 8D are mandatory (8D where the second GENERATE AC needs it) */
    if (!present(s, 0x5F24) || !present(s, 0x5A) || !present(s, 0x8C) ||
        (need_cdol2 && !present(s, 0x8D)))
        return KV_ERR_CARD_MISSING;
    return 0;
}

int kv_emv_get_data(kv_emv *s, uint32_t tag, uint8_t *out, size_t cap, size_t *len)
{
    int r;
    uint16_t sw;
    size_t dlen;
    kv_tlv t;
    const uint8_t *v = s->resp;
    size_t vlen;

    if (tag > 0xFFFF)
        return KV_ERR_ARG;
    if ((r = cmd(s, 0x80, 0xCA, (uint8_t)(tag >> 8), (uint8_t)tag, NULL, 0, &sw, &dlen)) != 0)
        return r;
    if (sw != 0x9000) /* 6A88, 6A81, 6D00...: the card does not have it */
        return KV_ERR_NOT_FOUND;
    vlen = dlen;
    if (kv_tlv_find(s->resp, dlen, tag, &t) == 0) {
        v = t.value;
        vlen = t.len;
    }
    if (vlen > cap)
        return KV_ERR_BUFFER;
    if (vlen > 0)
        memcpy(out, v, vlen);
    *len = vlen;
    return 0;
}

/* A GET DATA whose absence (or odd size) leaves the field absent; transport errors count. */
static int get_data_opt(kv_emv *s, uint32_t tag, uint8_t *out, size_t cap, size_t *len)
{
    int r = kv_emv_get_data(s, tag, out, cap, len);
    if (r == KV_ERR_NOT_FOUND || r == KV_ERR_BUFFER) {
        *len = 0;
        return 0;
    }
    return r;
}

int kv_emv_get_data_all(kv_emv *s)
{
    int r;
    uint8_t v[64];
    size_t len;
    kv_emv_card *c = &s->card;

    if ((r = get_data_opt(s, 0x9F17, v, sizeof(v), &len)) != 0)
        return r;
    c->pin_try_counter = len == 1 ? v[0] : -1;
    if ((r = get_data_opt(s, 0x9F36, v, sizeof(v), &len)) != 0)
        return r;
    if ((c->has_atc = len == 2))
        memcpy(c->atc, v, 2);
    if ((r = get_data_opt(s, 0x9F13, v, sizeof(v), &len)) != 0)
        return r;
    if ((c->has_last_online_atc = len == 2))
        memcpy(c->last_online_atc, v, 2);
    if ((r = get_data_opt(s, 0x9F4F, c->log_format, sizeof(c->log_format), &len)) != 0)
        return r;
    c->log_format_len = len;
    return 0;
}

int kv_emv_read_card(kv_emv *s, unsigned iface)
{
    int r;
    if ((r = kv_emv_select(s, iface)) != 0)
        return r;
    if ((r = kv_emv_gpo(s)) != 0)
        return r;
    if ((r = kv_emv_read_records(s)) != 0)
        return r;
    return kv_emv_get_data_all(s);
}

/* see emv.h */
int kv_pin_block_plain(const char *pin, size_t pin_len, uint8_t block[8])
{
    if (pin_len < 4 || pin_len > 12)
        return KV_ERR_ARG;
    for (size_t i = 0; i < pin_len; i++) /* format check only: reveals no more than the length */
        if (pin[i] < '0' || pin[i] > '9')
            return KV_ERR_ARG;
    /* control 2, length N, PIN digits, filler F (EMV Book 3 §6.5.12.2) */
    memset(block, 0xFF, 8);
    block[0] = (uint8_t)(0x20 | pin_len);
    for (size_t i = 0; i < pin_len; i++) {
        uint8_t d = (uint8_t)(pin[i] - '0');
        uint8_t *b = &block[1 + i / 2];
        *b = (uint8_t)(i % 2 == 0 ? (d << 4) | (*b & 0x0F) : (*b & 0xF0) | d);
    }
    return 0;
}

/* see emv.h */
int kv_pin_result_of_sw(uint16_t sw, kv_pin_result *res)
{
    res->tries_left = -1;
    if (sw == 0x9000) {
        res->status = KV_PIN_VERIFIED;
    } else if ((sw & 0xFFF0) == 0x63C0) {
        res->status = KV_PIN_WRONG;
        res->tries_left = sw & 0x0F;
    } else if (sw == 0x6300) {
        res->status = KV_PIN_WRONG;
    } else if (sw == 0x6983 || sw == 0x6984) {
        res->status = KV_PIN_BLOCKED;
        res->tries_left = 0;
    } else {
        return kv_sw_to_err(sw);
    }
    return 0;
}

/* see emv.h */
int kv_emv_verify_plain_pin(kv_emv *s, const char *pin, size_t pin_len, kv_pin_result *res)
{
    int r = KV_ERR_NOMEM;
    kv_secbuf *sb = NULL;
    uint8_t *apdu, *block;
    size_t n;
    uint16_t sw;

    if (pin_len < 4 || pin_len > 12)
        return KV_ERR_ARG;
    /* C-APDU (13 bytes) and its answer in locked memory, wiped on free */
    if ((sb = kv_secbuf_new(13 + 258)) == NULL)
        goto out;
    apdu = kv_secbuf_ptr(sb);
    apdu[0] = 0x00;
    apdu[1] = 0x20;
    apdu[2] = 0x00;
    apdu[3] = 0x80; /* plaintext PIN (EMV Book 3 §6.5.12) */
    apdu[4] = 0x08;
    block = apdu + 5;
    if ((r = kv_pin_block_plain(pin, pin_len, block)) != 0)
        goto out;
    if ((r = kv_reader_transmit(s->r, apdu, 13, apdu + 13, 258, &n)) != 0)
        goto out;
    sw = kv_sw_of(apdu + 13, n);
    r = kv_pin_result_of_sw(sw, res);
out:
    kv_secbuf_free(sb);
    return r;
}

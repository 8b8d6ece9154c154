/*
 * see vcard.h: the card session and the command dispatch. The cryptographic
 * commands are in card_crypto.c, loading in card_load.c, the state file in
 * card_state.c (card.h).
 *
 * One C-APDU goes: parse (kv_capdu_parse) -> GET RESPONSE of pending data, or
 * the answer of the card (the command table for a profile card, the recording
 * for a recorded card) -> the test-lab quirks (6Cxx, 61xx) -> out. The
 * test-lab faults (card_fault.c) act before the command and on its answer;
 * the transaction log (card_log.c) answers its GET DATA and READ RECORDs
 * and takes a record when a GENERATE AC ends a transaction.
 *
 * New commands are rows of commands[] below. The cryptographic commands --
 * GET CHALLENGE (00 84), enciphered PIN (VERIFY P2 88), INTERNAL
 * AUTHENTICATE (00 88), GENERATE AC (80 AE), EXTERNAL AUTHENTICATE (00 82),
 * COMPUTE CRYPTOGRAPHIC CHECKSUM (80 2A) -- follow apdu/vcard/CRYPTO.md
 * and live in card_crypto.c.
 */
#include "apdu/vcard/card.h"
#include "apdu/vcard/card_fault.h"
#include "apdu/vcard/vcard.h"
#include "src/base/err.h"
#include "src/base/secure.h"

#include <string.h>

/* The per-transaction state: SELECT and every session change clear it. */
static void txn_clear(kv_vcard *vc)
{
    kv_wipe(vc->challenge, sizeof(vc->challenge));
    vc->has_challenge = 0;
    vc->pin_performed = vc->pin_failed = vc->dda_performed = 0;
    vc->pdol_len = 0;
    vc->ac_state = 0;
    vc->first_cid = 0;
    vc->cdol1_len = 0;
    vc->issuer_auth = 0;
}

static void session_clear(kv_vcard *vc)
{
    vc->selected = -1;
    vc->gpo_done = 0;
    txn_clear(vc);
    kv_wipe(vc->pending, sizeof(vc->pending));
    vc->pending_len = vc->pending_off = 0;
    if (vc->rec != NULL)
        kv_recorded_reset(vc->rec);
    kv_vcard_lab_session(vc); /* fault counters count from power on or reset */
}

/* see card.h */
const kv_vcard_df *kv_vcard_selected_app(const kv_vcard *vc)
{
    const kv_vcard_df *df;
    if (vc->selected < 0)
        return NULL;
    df = &vc->prof->dfs[vc->selected];
    return df->kind == KV_VCARD_DF_APP ? df : NULL;
}

/* see card.h */
void kv_vcard_answer_tlv(kv_vcard_answer *a, kv_tlv_writer *w)
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
static void cmd_select(kv_vcard *vc, const kv_capdu *c, kv_vcard_answer *a)
{
    const kv_vcard_profile *p = vc->prof;
    unsigned occurrence = c->p2 & 0x03, fci = c->p2 & 0x0C;
    size_t start = 0, i;

    if (c->p1 != 0x04 || (c->p2 & 0xF0) != 0 || (occurrence != 0x00 && occurrence != 0x02) ||
        (fci != 0x00 && fci != 0x0C)) {
        a->sw = SW_WRONG_P1P2;
        return;
    }
    if (c->lc == 0 || c->lc > KV_VCARD_DF_NAME_MAX) {
        a->sw = SW_FILE_NOT_FOUND;
        return;
    }
    /* "next occurrence" continues after the current DF when it matches the name too */
    if (occurrence == 0x02 && vc->selected >= 0) {
        const kv_vcard_df *cur = &p->dfs[vc->selected];
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
    txn_clear(vc);
    if (fci == 0x00) {
        memcpy(a->data, p->dfs[i].fci, p->dfs[i].fci_len);
        a->len = p->dfs[i].fci_len;
    }
    a->sw = p->dfs[i].blocked ? SW_SELECTED_BLOCKED : SW_OK;
}

/* READ RECORD: P1 record number, P2 = SFI << 3 | 100 (EMV Book 3 §6.5.11). */
static void cmd_read_record(kv_vcard *vc, const kv_capdu *c, kv_vcard_answer *a)
{
    const kv_vcard_df *df;
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
    if (kv_vcard_log_read_record(vc, c, a)) /* the transaction log file (card_log.c) */
        return;
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
static void cmd_gpo(kv_vcard *vc, const kv_capdu *c, kv_vcard_answer *a)
{
    const kv_vcard_df *app = kv_vcard_selected_app(vc);
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
    vc->pdol_len = t.len; /* <= the C-APDU data, < KV_VCARD_DATA_MAX */
    if (t.len > 0)
        memcpy(vc->pdol_data, t.value, t.len);
    if (kv_vcard_state_save(vc) != 0) { /* the ATC is persistent */
        a->sw = SW_MEMORY_FAILURE;
        return;
    }

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
    kv_vcard_answer_tlv(a, &w);
}

static const kv_vcard_dataobj *find_data(const kv_vcard_dataobj *objs, size_t n, uint32_t tag)
{
    for (size_t i = 0; i < n; i++)
        if (objs[i].tag == tag)
            return &objs[i];
    return NULL;
}

/* GET DATA, EMV Book 3 §6.5.7: P1 P2 is the tag; answer the whole object. */
static void cmd_get_data(kv_vcard *vc, const kv_capdu *c, kv_vcard_answer *a)
{
    uint32_t tag = c->p1 != 0 ? (uint32_t)c->p1 << 8 | c->p2 : c->p2;
    const kv_vcard_df *app = kv_vcard_selected_app(vc);
    const kv_vcard_dataobj *o = NULL;
    uint8_t v[2];
    kv_tlv_writer w;

    if (kv_vcard_log_get_data(vc, tag, a)) /* 9F4D, 9F4F of the transaction log */
        return;
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
    kv_vcard_answer_tlv(a, &w);
}

/* see card.h */
int kv_vcard_pin_block_ok(const uint8_t *b)
{
    unsigned n = b[0] & 0x0F;
    if ((b[0] >> 4) != 0x2 || n < 4 || n > 12)
        return 0;
    for (unsigned nib = 2; nib < 2 * KV_VCARD_PIN_BLOCK_LEN; nib++) {
        unsigned d = (nib % 2) ? (b[nib / 2] & 0x0F) : (b[nib / 2] >> 4);
        if (nib < 2 + n ? d > 9 : d != 0x0F)
            return 0;
    }
    return 1;
}

/* VERIFY, EMV Book 3 §6.5.12; P2 80 plaintext PIN, P2 88 enciphered PIN. */
static void cmd_verify(kv_vcard *vc, const kv_capdu *c, kv_vcard_answer *a)
{
    const kv_vcard_profile *p = vc->prof;
    unsigned before = vc->pin_tries;
    uint8_t block[KV_VCARD_PIN_BLOCK_LEN];
    uint16_t sw;

    if (c->p1 != 0x00 || (c->p2 != 0x80 && c->p2 != 0x88)) {
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
    if (c->p2 == 0x88) {
        if ((sw = kv_vcard_decipher_pin(vc, c, block)) != 0) {
            a->sw = sw;
            return;
        }
    } else {
        vc->has_challenge = 0;
        if (c->lc != KV_VCARD_PIN_BLOCK_LEN) {
            a->sw = SW_WRONG_LENGTH;
            return;
        }
        memcpy(block, c->data, KV_VCARD_PIN_BLOCK_LEN);
    }
    if (vc->pin_tries == 0) {
        vc->pin_performed = vc->pin_failed = 1;
        a->sw = SW_PIN_BLOCKED;
        goto out;
    }
    if (!kv_vcard_pin_block_ok(block)) {
        a->sw = SW_WRONG_DATA;
        goto out;
    }
    vc->pin_performed = 1;
    if (kv_ct_equal(block, kv_secbuf_ptr(p->pin_block), KV_VCARD_PIN_BLOCK_LEN)) {
        vc->pin_tries = p->pin_try_limit;
        vc->pin_failed = 0;
        a->sw = SW_OK;
    } else {
        vc->pin_tries--;
        vc->pin_failed = 1;
        a->sw = (uint16_t)(SW_TRIES_LEFT | vc->pin_tries);
    }
    if (vc->pin_tries != before && kv_vcard_state_save(vc) != 0)
        a->sw = SW_MEMORY_FAILURE;
out:
    kv_wipe(block, sizeof(block));
}

/* GET RESPONSE (ISO/IEC 7816-4 §7.6.1): the next Le bytes of the held-back data. */
static void cmd_get_response(kv_vcard *vc, const kv_capdu *c, kv_vcard_answer *a)
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

typedef void (*command_fn)(kv_vcard *vc, const kv_capdu *c, kv_vcard_answer *a);

/*
 * The command table of a profile card. GET RESPONSE is answered before the
 * table (recorded cards need it too); its row makes 80 C0 a class error.
 */
static const struct command {
    uint8_t cla, ins;
    command_fn run;
} commands[] = {
    {0x00, 0xA4, cmd_select},
    {0x00, 0xB2, cmd_read_record},
    {0x00, 0x20, cmd_verify},
    {0x00, 0xC0, cmd_get_response},
    {0x80, 0xA8, cmd_gpo},
    {0x80, 0xCA, cmd_get_data},
    {0x00, 0x84, kv_vcard_cmd_get_challenge},
    {0x00, 0x88, kv_vcard_cmd_internal_auth},
    {0x80, 0xAE, kv_vcard_cmd_generate_ac},
    {0x00, 0x82, kv_vcard_cmd_external_auth},
    {0x80, 0x2A, kv_vcard_cmd_ccc},
    /* issuer script commands with secure messaging (card_sm.c, CRYPTO.md §7) */
    {0x84, 0x24, kv_vcard_cmd_script}, /* PIN CHANGE/UNBLOCK */
    {0x84, 0x1E, kv_vcard_cmd_script}, /* APPLICATION BLOCK */
    {0x84, 0x18, kv_vcard_cmd_script}, /* APPLICATION UNBLOCK */
    {0x84, 0x16, kv_vcard_cmd_script}, /* CARD BLOCK */
    {0x04, 0xDA, kv_vcard_cmd_script}, /* PUT DATA */
    {0x04, 0xDC, kv_vcard_cmd_script}, /* UPDATE RECORD */
};

static void dispatch(kv_vcard *vc, const kv_capdu *c, kv_vcard_answer *a)
{
    int cla_known = 0, ins_known = 0;
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (commands[i].cla == c->cla && commands[i].ins == c->ins) {
            kv_vcard_gated(vc, c, a, commands[i].run); /* blocked card/app: card_sm.c */
            return;
        }
        cla_known |= commands[i].cla == c->cla;
        ins_known |= commands[i].ins == c->ins;
    }
    /* an instruction this card knows under another class is a class problem */
    a->sw = (!cla_known || ins_known) ? SW_CLA_UNKNOWN : SW_INS_UNKNOWN;
}

static void answer_recorded(kv_vcard *vc, const uint8_t *capdu, size_t len, kv_vcard_answer *a)
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
static void apply_quirks(kv_vcard *vc, const kv_capdu *c, kv_vcard_answer *a)
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
    kv_vcard_answer a;
    kv_capdu c;
    int skip = 0, tear_after = 0;

    *outlen = 0;
    if (cap < KV_VCARD_RAPDU_MAX)
        return KV_ERR_BUFFER;
    a.len = 0;
    a.sw = SW_NO_DIAGNOSIS;
    /* the test-lab faults (card_fault.c): tear, delay, ATC, a status word instead */
    if (kv_capdu_parse(capdu, len, &c) == 0 &&
        (skip = kv_vcard_fault_before(vc, &c, &a, &tear_after)) < 0) {
        session_clear(vc); /* torn: the card left the reader */
        return skip;
    }
    if (skip) {
        /* the fault's status word answers */
    } else if (kv_capdu_parse(capdu, len, &c) != 0) {
        a.sw = SW_WRONG_LENGTH;
    } else if (c.cla == 0x00 && c.ins == 0xC0) {
        cmd_get_response(vc, &c, &a);
    } else {
        int ac_before = vc->ac_state;
        vc->pending_len = vc->pending_off = 0; /* any other command drops held-back data */
        if (vc->rec != NULL)
            answer_recorded(vc, capdu, len, &a);
        else
            dispatch(vc, &c, &a);
        kv_vcard_log_after_genac(vc, &c, &a, ac_before); /* card_log.c */
        kv_vcard_fault_after(vc, &c, &a);
        apply_quirks(vc, &c, &a);
    }
    if (tear_after) {
        session_clear(vc); /* the command ran; its answer is lost */
        return KV_ERR_PCSC_REMOVED;
    }
    memcpy(out, a.data, a.len);
    out[a.len] = (uint8_t)(a.sw >> 8);
    out[a.len + 1] = (uint8_t)a.sw;
    *outlen = a.len + 2;
    return 0;
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

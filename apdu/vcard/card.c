/*
 * see vcard.h
 *
 * One C-APDU goes: parse (kv_capdu_parse) -> GET RESPONSE of pending data, or
 * the answer of the card (the command table for a profile card, the recording
 * for a recorded card) -> the test-lab quirks (6Cxx, 61xx) -> out.
 *
 * New commands are rows of commands[] below. The cryptographic commands --
 * GET CHALLENGE (00 84), enciphered PIN (VERIFY P2 88), INTERNAL
 * AUTHENTICATE (00 88), GENERATE AC (80 AE), EXTERNAL AUTHENTICATE (00 82),
 * COMPUTE CRYPTOGRAPHIC CHECKSUM (80 2A) -- follow apdu/vcard/CRYPTO.md.
 */
#include "apdu/vcard/vcard.h"
#include "apdu/apdu.h"
#include "apdu/dol.h"
#include "apdu/oda.h"
#include "apdu/recorded.h"
#include "apdu/tlv.h"
#include "apdu/vcard/profile.h"
#include "apdu/vcard/vcrypto.h"
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
    SW_VERIFY_FAILED = 0x6300,
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
    uint8_t challenge[8]; /* GET CHALLENGE, for the next VERIFY */
    int has_challenge;
    int pin_performed, pin_failed; /* CVR bits of this transaction */
    int dda_performed;
    uint8_t pdol_data[KV_VC_DATA_MAX]; /* GPO 83 value, for CDA */
    size_t pdol_len;
    int ac_state; /* 0 no GEN AC yet, 1 ARQC given (online), 2 done */
    uint8_t first_cid;
    uint8_t arqc[8];
    uint8_t cdol1_data[KV_VC_DATA_MAX];
    size_t cdol1_len;
    int issuer_auth; /* 0 not performed, 1 passed, -1 failed */

    /* persistent: the state file */
    unsigned pin_tries;
    unsigned atc;
    char *state_path;
    char card_id[512]; /* the profile's real path: whose counters the state file holds */
};

typedef struct {
    uint8_t data[KV_VC_DATA_MAX];
    size_t len;
    uint16_t sw;
} answer;

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
    txn_clear(vc);
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
    vc->pdol_len = t.len; /* <= the C-APDU data, < KV_VC_DATA_MAX */
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

/* The key that deciphers an enciphered PIN: the PIN encipherment key, else the ICC key. */
static EVP_PKEY *pin_key(const kv_vcard *vc)
{
    return vc->prof->keys.icc_pin_rsa != NULL ? vc->prof->keys.icc_pin_rsa : vc->prof->keys.icc_rsa;
}

/*
 * Enciphered PIN (EMV Book 2 §7.2): RSA-decipher the data and check
 * 7F || PIN block || challenge || pad; the PIN block goes to block. Returns
 * the status word to answer, or 0 to go on with block.
 */
static uint16_t decipher_pin(kv_vcard *vc, const kv_capdu *c, uint8_t block[KV_VC_PIN_BLOCK_LEN])
{
    uint8_t plain[KV_VC_DATA_MAX];
    EVP_PKEY *key = pin_key(vc);
    size_t n;
    uint16_t sw = SW_WRONG_DATA;
    int had = vc->has_challenge;

    vc->has_challenge = 0; /* one VERIFY per challenge */
    if (key == NULL)
        return SW_DATA_NOT_FOUND;
    n = (size_t)EVP_PKEY_get_size(key);
    if (c->lc != n)
        return SW_WRONG_LENGTH;
    if (!had)
        return SW_CONDITIONS;
    if (kv_oda_evp_signer(key, c->data, n, plain) != 0) /* data not below the modulus */
        goto out;
    if (plain[0] != 0x7F || !kv_ct_equal(plain + 1 + KV_VC_PIN_BLOCK_LEN, vc->challenge, 8))
        goto out;
    memcpy(block, plain + 1, KV_VC_PIN_BLOCK_LEN);
    sw = 0;
out:
    kv_wipe(plain, sizeof(plain));
    kv_wipe(vc->challenge, sizeof(vc->challenge));
    return sw;
}

/* VERIFY, EMV Book 3 §6.5.12; P2 80 plaintext PIN, P2 88 enciphered PIN. */
static void cmd_verify(kv_vcard *vc, const kv_capdu *c, answer *a)
{
    const kv_vc_profile *p = vc->prof;
    unsigned before = vc->pin_tries;
    uint8_t block[KV_VC_PIN_BLOCK_LEN];
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
        if ((sw = decipher_pin(vc, c, block)) != 0) {
            a->sw = sw;
            return;
        }
    } else {
        vc->has_challenge = 0;
        if (c->lc != KV_VC_PIN_BLOCK_LEN) {
            a->sw = SW_WRONG_LENGTH;
            return;
        }
        memcpy(block, c->data, KV_VC_PIN_BLOCK_LEN);
    }
    if (vc->pin_tries == 0) {
        vc->pin_performed = vc->pin_failed = 1;
        a->sw = SW_PIN_BLOCKED;
        goto out;
    }
    if (!pin_block_well_formed(block)) {
        a->sw = SW_WRONG_DATA;
        goto out;
    }
    vc->pin_performed = 1;
    if (kv_ct_equal(block, kv_secbuf_ptr(p->pin_block), KV_VC_PIN_BLOCK_LEN)) {
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

/* GET CHALLENGE (EMV Book 3 §6.5.6): 8 random bytes, kept for the next VERIFY. */
static void cmd_get_challenge(kv_vcard *vc, const kv_capdu *c, answer *a)
{
    if (c->p1 != 0x00 || c->p2 != 0x00) {
        a->sw = SW_WRONG_P1P2;
        return;
    }
    if (c->lc != 0) {
        a->sw = SW_WRONG_LENGTH;
        return;
    }
    if (kv_vc_random(vc->challenge, sizeof(vc->challenge)) != 0) {
        a->sw = SW_NO_DIAGNOSIS;
        return;
    }
    vc->has_challenge = 1;
    memcpy(a->data, vc->challenge, sizeof(vc->challenge));
    a->len = sizeof(vc->challenge);
    a->sw = SW_OK;
}

/* INTERNAL AUTHENTICATE (EMV Book 3 §6.5.9): DDA signature, format 1 response 80 { SDAD }. */
static void cmd_internal_auth(kv_vcard *vc, const kv_capdu *c, answer *a)
{
    EVP_PKEY *key = vc->prof->keys.icc_rsa;
    uint8_t dn[8], sdad[KV_VC_DATA_MAX];
    size_t n;
    kv_tlv_writer w;

    if (c->p1 != 0x00 || c->p2 != 0x00) {
        a->sw = SW_WRONG_P1P2;
        return;
    }
    if (key == NULL || selected_app(vc) == NULL) {
        a->sw = SW_CONDITIONS;
        return;
    }
    if (c->lc == 0 || c->lc > KV_VC_DATA_MAX) {
        a->sw = SW_WRONG_LENGTH;
        return;
    }
    n = (size_t)EVP_PKEY_get_size(key);
    if (kv_vc_random(dn, sizeof(dn)) != 0 ||
        kv_oda_dda_sign(kv_oda_evp_signer, key, n, dn, sizeof(dn), c->data, c->lc, sdad) != 0) {
        a->sw = SW_NO_DIAGNOSIS;
        return;
    }
    vc->dda_performed = 1;
    kv_tlv_writer_init(&w, a->data, sizeof(a->data));
    kv_tlv_put(&w, 0x80, sdad, n);
    answer_tlv(a, &w);
}

/* The value of tag in DOL data (dol describes data); 1 found (*v, *vlen set), 0 not. */
static int dol_value(const uint8_t *dol, size_t dol_len, const uint8_t *data, size_t data_len,
                     uint32_t tag, const uint8_t **v, size_t *vlen)
{
    kv_dol_entry e[KV_DOL_MAX_ENTRIES];
    size_t n, off = 0;
    if (kv_dol_parse(dol, dol_len, e, KV_DOL_MAX_ENTRIES, &n) != 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (off + e[i].len > data_len)
            return 0;
        if (e[i].tag == tag) {
            *v = data + off;
            *vlen = e[i].len;
            return 1;
        }
        off += e[i].len;
    }
    return 0;
}

/* The 29 bytes of "standard data" (CRYPTO.md §3), from CDOL2 data first, then CDOL1 data. */
static void standard_data(const kv_vc_df *app, const uint8_t *cdol1, size_t cdol1_len,
                          const uint8_t *cdol2, size_t cdol2_len, uint8_t out[29])
{
    static const struct {
        uint32_t tag;
        size_t len;
    } sd[] = {{0x9F02, 6}, {0x9F03, 6}, {0x9F1A, 2}, {0x95, 5},
              {0x5F2A, 2}, {0x9A, 3},   {0x9C, 1},   {0x9F37, 4}};
    size_t off = 0;
    for (size_t i = 0; i < sizeof(sd) / sizeof(sd[0]); i++) {
        const uint8_t *v = NULL;
        size_t vlen = 0;
        if ((cdol2 != NULL &&
             dol_value(app->cdol2, app->cdol2_len, cdol2, cdol2_len, sd[i].tag, &v, &vlen)) ||
            dol_value(app->cdol1, app->cdol1_len, cdol1, cdol1_len, sd[i].tag, &v, &vlen))
            kv_dol_fit(sd[i].tag, v, vlen, out + off, sd[i].len);
        else
            memset(out + off, 0, sd[i].len);
        off += sd[i].len;
    }
}

/* CVR (CRYPTO.md §4) of the current transaction; second: 0x80 / TC 0x40 / AAC 0x00. */
static void build_cvr(const kv_vcard *vc, uint8_t first_cid, uint8_t second, uint8_t cvr[3])
{
    cvr[0] = second;
    cvr[0] |= first_cid == 0x80 ? 0x20 : first_cid == 0x40 ? 0x10 : 0x00;
    if (vc->issuer_auth < 0)
        cvr[0] |= 0x08;
    if (vc->pin_performed)
        cvr[0] |= 0x04;
    if (vc->pin_performed && vc->pin_failed)
        cvr[0] |= 0x02;
    cvr[1] = (vc->prof->pin_block != NULL && vc->pin_tries == 0) ? 0x42 : 0x00;
    cvr[2] = vc->dda_performed ? 0x02 : 0x00;
}

/* The session key of this ATC (CVN 18) into sk. */
static int session_key(const kv_vcard *vc, uint8_t sk[16])
{
    uint8_t atc[2] = {(uint8_t)(vc->atc >> 8), (uint8_t)vc->atc};
    return kv_vc_csk(vc->prof->keys.ac_mk, atc, sk);
}

/* The application cryptogram over sd (29 bytes) with iad (7 bytes), CRYPTO.md §3. */
static int compute_ac(const kv_vcard *vc, const kv_vc_df *app, const uint8_t sd[29],
                      const uint8_t iad[7], uint8_t ac[8])
{
    uint8_t data[29 + 2 + 2 + 7], sk[16];
    size_t n = 0;
    int r;

    memcpy(data, sd, 29);
    n = 29;
    memcpy(data + n, app->aip, 2);
    n += 2;
    data[n++] = (uint8_t)(vc->atc >> 8);
    data[n++] = (uint8_t)vc->atc;
    if (vc->prof->keys.cvn == 10) {
        memcpy(data + n, iad + 3, 4); /* 03 || CVR */
        n += 4;
        return kv_vc_mac3(vc->prof->keys.ac_mk, 1, data, n, ac);
    }
    memcpy(data + n, iad, 7);
    n += 7;
    if ((r = session_key(vc, sk)) == 0)
        r = kv_vc_mac3(sk, 2, data, n, ac);
    kv_wipe(sk, sizeof(sk));
    return r;
}

/*
 * Issuer authentication with the 91 value (CRYPTO.md §5). Returns 1 passed,
 * 0 failed, -1 wrong length (nothing changes).
 */
static int issuer_authenticate(kv_vcard *vc, const uint8_t *v, size_t len)
{
    uint8_t blk[24], mac[8], sk[16];
    int ok = 0;

    if (vc->prof->keys.cvn == 10) {
        if (len != 10)
            return -1;
        memcpy(blk, vc->arqc, 8);
        blk[0] ^= v[8];
        blk[1] ^= v[9];
        ok = kv_vc_des2_ecb(vc->prof->keys.ac_mk, 1, blk, 8, mac) == 0 && kv_ct_equal(mac, v, 8);
    } else {
        if (len < 8 || len > 16)
            return -1;
        memcpy(blk, vc->arqc, 8);
        memcpy(blk + 8, v + 4, len - 4); /* CSU || proprietary data */
        ok = session_key(vc, sk) == 0 && kv_vc_mac3(sk, 2, blk, 8 + len - 4, mac) == 0 &&
             kv_ct_equal(mac, v, 4);
        kv_wipe(sk, sizeof(sk));
    }
    vc->issuer_auth = ok ? 1 : -1;
    return ok;
}

/* EXTERNAL AUTHENTICATE (EMV Book 3 §6.5.4): the ARPC, once, after an online ARQC. */
static void cmd_external_auth(kv_vcard *vc, const kv_capdu *c, answer *a)
{
    int r;
    if (c->p1 != 0x00 || c->p2 != 0x00) {
        a->sw = SW_WRONG_P1P2;
        return;
    }
    if (selected_app(vc) == NULL || vc->ac_state != 1 || vc->issuer_auth != 0) {
        a->sw = SW_CONDITIONS;
        return;
    }
    r = issuer_authenticate(vc, c->data, c->lc);
    a->sw = r < 0 ? SW_WRONG_LENGTH : r ? SW_OK : SW_VERIFY_FAILED;
}

/* ARC (8A) of an approval: "00", "10", "11". */
static int arc_approves(const uint8_t arc[2])
{
    return (arc[0] == '0' && arc[1] == '0') || (arc[0] == '1' && arc[1] == '0') ||
           (arc[0] == '1' && arc[1] == '1');
}

/* GENERATE AC (EMV Book 3 §6.5.5), first and second; CRYPTO.md §5. */
static void cmd_generate_ac(kv_vcard *vc, const kv_capdu *c, answer *a)
{
    const kv_vc_df *app = selected_app(vc);
    const kv_vc_keys *k = &vc->prof->keys;
    uint8_t type = c->p1 & 0xC0, cid, cvr[3], iad[7], sd[29], ac[8], dn[8], tdhc[20];
    uint8_t tlvs[64], sdad[KV_VC_DATA_MAX], un[4] = {0};
    const uint8_t *cdol2 = NULL, *v;
    size_t cdol2_len = 0, need, vlen, n;
    int second = vc->ac_state == 1, cda;
    kv_tlv_writer w;

    if ((c->p1 & 0x2F) != 0 || type == 0xC0 || c->p2 != 0x00 || (second && type == 0x80)) {
        a->sw = SW_WRONG_P1P2;
        return;
    }
    if (app == NULL || !vc->gpo_done || !k->has_ac_mk || vc->ac_state == 2 ||
        (second ? app->cdol2_len : app->cdol1_len) == 0) {
        a->sw = SW_CONDITIONS;
        return;
    }
    if (kv_dol_data_len(second ? app->cdol2 : app->cdol1, second ? app->cdol2_len : app->cdol1_len,
                        &need) != 0 ||
        c->lc != need || need > sizeof(vc->cdol1_data)) {
        a->sw = SW_WRONG_LENGTH;
        return;
    }
    if (!second) {
        memcpy(vc->cdol1_data, c->data, c->lc);
        vc->cdol1_len = c->lc;
        cid = type == 0x00 ? 0x00 : (type == 0x80 || !k->first_ac_follow) ? 0x80 : 0x40;
        vc->first_cid = cid;
        build_cvr(vc, cid, 0x80, cvr);
    } else {
        const uint8_t *arc = NULL;
        size_t arc_len = 0;
        cdol2 = c->data;
        cdol2_len = c->lc;
        /* issuer authentication data in CDOL2, unless EXTERNAL AUTHENTICATE ran */
        if (vc->issuer_auth == 0 &&
            dol_value(app->cdol2, app->cdol2_len, cdol2, cdol2_len, 0x91, &v, &vlen)) {
            int zero = 1;
            for (size_t i = 0; i < vlen; i++)
                zero &= v[i] == 0;
            if (!zero)
                (void)issuer_authenticate(vc, v, vlen); /* wrong length: not performed */
        }
        dol_value(app->cdol2, app->cdol2_len, cdol2, cdol2_len, 0x8A, &arc, &arc_len);
        cid = (type == 0x40 && vc->issuer_auth >= 0 && arc != NULL && arc_len == 2 &&
               arc_approves(arc))
                  ? 0x40
                  : 0x00;
        build_cvr(vc, vc->first_cid, cid == 0x40 ? 0x40 : 0x00, cvr);
    }
    iad[0] = 0x06;
    iad[1] = k->dki;
    iad[2] = (uint8_t)k->cvn; /* 10 = 0x0A, 18 = 0x12 */
    iad[3] = 0x03;
    memcpy(iad + 4, cvr, 3);
    standard_data(app, vc->cdol1_data, vc->cdol1_len, cdol2, cdol2_len, sd);
    if (compute_ac(vc, app, sd, iad, ac) != 0) {
        a->sw = SW_NO_DIAGNOSIS;
        return;
    }
    if (!second && cid == 0x80)
        memcpy(vc->arqc, ac, 8);
    vc->ac_state = (!second && cid == 0x80) ? 1 : 2;

    cda = (c->p1 & 0x10) && (app->aip[0] & 0x01) && k->icc_rsa != NULL && cid != 0x00;
    if (c->p1 & 0x10)
        vc->dda_performed = 1;
    kv_tlv_writer_init(&w, tlvs, sizeof(tlvs));
    {
        uint8_t atc[2] = {(uint8_t)(vc->atc >> 8), (uint8_t)vc->atc};
        kv_tlv_put(&w, 0x9F27, &cid, 1);
        kv_tlv_put(&w, 0x9F36, atc, 2);
        if (!cda)
            kv_tlv_put(&w, 0x9F26, ac, 8);
        kv_tlv_put(&w, 0x9F10, iad, 7);
    }
    if (kv_tlv_finish(&w) != 0) {
        a->sw = SW_NO_DIAGNOSIS;
        return;
    }
    if (cda) {
        if (!(second &&
              dol_value(app->cdol2, app->cdol2_len, cdol2, cdol2_len, 0x9F37, &v, &vlen)) &&
            !dol_value(app->cdol1, app->cdol1_len, vc->cdol1_data, vc->cdol1_len, 0x9F37, &v,
                       &vlen))
            vlen = 0;
        if (vlen > 0)
            kv_dol_fit(0x9F37, v, vlen, un, 4);
        n = (size_t)EVP_PKEY_get_size(k->icc_rsa);
        if (kv_vc_random(dn, sizeof(dn)) != 0 ||
            kv_oda_cda_tdhc(vc->pdol_data, vc->pdol_len, vc->cdol1_data, vc->cdol1_len, cdol2,
                            cdol2_len, tlvs, w.len, tdhc) != 0 ||
            kv_oda_cda_sign(kv_oda_evp_signer, k->icc_rsa, n, dn, sizeof(dn), cid, ac, tdhc, un,
                            sdad) != 0) {
            a->sw = SW_NO_DIAGNOSIS;
            return;
        }
    }
    n = w.len;
    kv_tlv_writer_init(&w, a->data, sizeof(a->data));
    kv_tlv_begin(&w, 0x77);
    kv_tlv_put_raw(&w, tlvs, n);
    if (cda)
        kv_tlv_put(&w, 0x9F4B, sdad, (size_t)EVP_PKEY_get_size(k->icc_rsa));
    kv_tlv_end(&w);
    answer_tlv(a, &w);
}

/*
 * COMPUTE CRYPTOGRAPHIC CHECKSUM (Mastercard contactless, P1 8E P2 80):
 * CVC3 over UDOL data (UN), CRYPTO.md §5.
 */
static void cmd_ccc(kv_vcard *vc, const kv_capdu *c, answer *a)
{
    static const uint8_t default_udol[] = {0x9F, 0x6A, 0x04};
    const kv_vc_df *app = selected_app(vc);
    const kv_vc_keys *k = &vc->prof->keys;
    const uint8_t *udol, *track, *v;
    size_t udol_len, track_len, need, vlen;
    uint8_t un[4] = {0}, mac[8], blk[8];
    kv_tlv_writer w;

    if (c->p1 != 0x8E || c->p2 != 0x80) {
        a->sw = SW_WRONG_P1P2;
        return;
    }
    if (app == NULL || !vc->gpo_done || !k->has_cvc3_mk) {
        a->sw = SW_CONDITIONS;
        return;
    }
    udol = app->udol_len > 0 ? app->udol : default_udol;
    udol_len = app->udol_len > 0 ? app->udol_len : sizeof(default_udol);
    track = k->cvc3_track_len > 0 ? k->cvc3_track : app->track2;
    track_len = k->cvc3_track_len > 0 ? k->cvc3_track_len : app->track2_len;
    if (track_len == 0) {
        a->sw = SW_CONDITIONS;
        return;
    }
    if (kv_dol_data_len(udol, udol_len, &need) != 0 || c->lc != need) {
        a->sw = SW_WRONG_LENGTH;
        return;
    }
    if (dol_value(udol, udol_len, c->data, c->lc, 0x9F6A, &v, &vlen) ||
        dol_value(udol, udol_len, c->data, c->lc, 0x9F37, &v, &vlen))
        kv_dol_fit(0x9F6A, v, vlen, un, 4);
    if (kv_vc_mac3(k->cvc3_mk, 2, track, track_len, mac) != 0) {
        a->sw = SW_NO_DIAGNOSIS;
        return;
    }
    blk[0] = mac[6]; /* IVCVC3 */
    blk[1] = mac[7];
    memcpy(blk + 2, un, 4);
    blk[6] = (uint8_t)(vc->atc >> 8);
    blk[7] = (uint8_t)vc->atc;
    if (kv_vc_des2_ecb(k->cvc3_mk, 1, blk, 8, blk) != 0) {
        a->sw = SW_NO_DIAGNOSIS;
        return;
    }
    kv_tlv_writer_init(&w, a->data, sizeof(a->data));
    kv_tlv_begin(&w, 0x77);
    kv_tlv_put(&w, 0x9F61, blk + 6, 2);
    {
        uint8_t atc[2] = {(uint8_t)(vc->atc >> 8), (uint8_t)vc->atc};
        kv_tlv_put(&w, 0x9F36, atc, 2);
    }
    kv_tlv_end(&w);
    answer_tlv(a, &w);
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
    {0x00, 0xA4, cmd_select},        {0x00, 0xB2, cmd_read_record},   {0x00, 0x20, cmd_verify},
    {0x00, 0xC0, cmd_get_response},  {0x80, 0xA8, cmd_gpo},           {0x80, 0xCA, cmd_get_data},
    {0x00, 0x84, cmd_get_challenge}, {0x00, 0x88, cmd_internal_auth}, {0x80, 0xAE, cmd_generate_ac},
    {0x00, 0x82, cmd_external_auth}, {0x80, 0x2A, cmd_ccc},
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
    if (r == 0) {
        char *rp = realpath(path, NULL);
        snprintf((*out)->card_id, sizeof((*out)->card_id), "%s", rp != NULL ? rp : path);
        free(rp);
    }
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
    /* counters of another card (another profile was inserted since): a fresh card */
    if ((v = json_object_get(root, "card")) != NULL) {
        if (!json_is_string(v))
            goto out;
        if (vc->card_id[0] != '\0' && strcmp(json_string_value(v), vc->card_id) != 0)
            goto attach;
    }
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
        (vc->card_id[0] != '\0' &&
         json_object_set_new(root, "card", json_string(vc->card_id)) != 0) ||
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

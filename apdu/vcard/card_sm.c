/*
 * see card.h: the card's life cycle around the command table (blocked card,
 * blocked application, per-application ATC and PIN, 9F13) and the issuer
 * script commands with secure messaging (EMV Book 2 §9, Book 3 §6.5;
 * apdu/vcard/CRYPTO.md §7):
 *
 *   PIN UNBLOCK          84 24 00 00 Lc MAC
 *   PIN CHANGE           84 24 00 02 Lc enciphered-PIN-block MAC
 *   APPLICATION BLOCK    84 1E 00 00 Lc MAC
 *   APPLICATION UNBLOCK  84 18 00 00 Lc MAC
 *   CARD BLOCK           84 16 00 00 Lc MAC
 *   PUT DATA             04 DA tag(2) Lc value MAC
 *   UPDATE RECORD        04 DC rec SFI<<3|4 Lc record(70...) MAC
 *
 * MAC (k->sm_mac_len bytes, leftmost) = MAC algorithm 3, padding method 2
 * (AES-CMAC for CVN 6) under the SMI session key over CLA INS P1 P2 Lc ||
 * [ATC || ARQC, Visa only] || data; ATC and ARQC are those of this
 * transaction's 1st GENERATE AC. The session keys come from icc_mk_smi /
 * icc_mk_smc as sm_session_key says; this is the layout of README "Issuer
 * scripts" (hsm/issuer_script.c builds the same commands).
 */
#include "apdu/tlv.h"
#include "apdu/vcard/card.h"
#include "apdu/vcard/vcrypto.h"
#include "src/base/err.h"
#include "src/base/secure.h"

#include <string.h>

enum {
    SW_SM_WRONG = 0x6988,  /* incorrect secure messaging data objects */
    SW_NOT_FOUND = 0x6A81, /* function not supported: a blocked card */
};

/* Visa's script layout: ATC-based keys, ATC || ARQC inside the MAC, length-prefixed PIN data. */
static int visa_sm(int cvn)
{
    return cvn == 10 || cvn == 18 || cvn == 22;
}

/* The application's own PIN/ATC, if it has them (profile "applications"[i]). */
static int has_own_counters(const kv_vcard *vc, int i)
{
    const kv_vcard_app_own *o;
    if (i < 0 || i >= KV_VCARD_MAX_APPS || vc->prof->dfs[i].kind != KV_VCARD_DF_APP)
        return 0;
    o = &vc->prof->own[i];
    return o->has_atc || o->pin_block != NULL;
}

/* Put the counters of owner (0 the card, i + 1 application i) into atc/pin_tries. */
static void switch_counters(kv_vcard *vc, int owner)
{
    struct kv_vcard_appstate *st;
    const kv_vcard_app_own *o;

    if (owner == vc->active_own)
        return;
    /* put the active ones away */
    if (vc->active_own == 0) {
        vc->card_atc = vc->atc;
        vc->card_pin_tries = vc->pin_tries;
    } else {
        /* the counters the application does not have of its own are the card's, live */
        o = &vc->prof->own[vc->active_own - 1];
        st = &vc->apps[vc->active_own - 1];
        if (o->has_atc)
            st->atc = vc->atc;
        else
            vc->card_atc = vc->atc;
        if (o->pin_block != NULL)
            st->pin_tries = vc->pin_tries;
        else
            vc->card_pin_tries = vc->pin_tries;
        st->banked = 1;
    }
    /* and take the new owner's */
    if (owner == 0) {
        vc->atc = vc->card_atc;
        vc->pin_tries = vc->card_pin_tries;
    } else {
        st = &vc->apps[owner - 1];
        o = &vc->prof->own[owner - 1];
        if (!st->banked) {
            st->atc = o->has_atc ? o->atc : vc->card_atc;
            st->pin_tries = o->pin_block != NULL ? o->pin_tries : vc->card_pin_tries;
            st->banked = 1;
        }
        vc->atc = o->has_atc ? st->atc : vc->card_atc;
        vc->pin_tries = o->pin_block != NULL ? st->pin_tries : vc->card_pin_tries;
    }
    vc->active_own = owner;
}

/*
 * Run one command with the active application's own PIN in the profile's
 * place (VERIFY, GET DATA 9F17, the CVR and PIN CHANGE read it there), and
 * the card's back afterwards: the profile always owns its PIN blocks.
 */
static void run_with_pin(kv_vcard *vc, const kv_capdu *c, kv_vcard_answer *a, kv_vcard_cmd_fn run)
{
    kv_vcard_profile *p = vc->prof;
    const kv_vcard_app_own *o = vc->active_own > 0 ? &p->own[vc->active_own - 1] : NULL;
    kv_secbuf *card_pin = p->pin_block;
    unsigned card_limit = p->pin_try_limit;

    if (o == NULL || o->pin_block == NULL) {
        run(vc, c, a);
        return;
    }
    p->pin_block = o->pin_block;
    p->pin_try_limit = o->pin_try_limit;
    run(vc, c, a);
    p->pin_block = card_pin;
    p->pin_try_limit = card_limit;
}

/* see card.h */
void kv_vcard_gated(kv_vcard *vc, const kv_capdu *c, kv_vcard_answer *a, kv_vcard_cmd_fn run)
{
    const struct kv_vcard_appstate *st;

    if (c->ins == 0xA4 && c->cla == 0x00) {
        if (vc->card_blocked) {
            vc->selected = -1;
            a->sw = SW_NOT_FOUND;
            return;
        }
        run(vc, c, a);
        if (a->sw == SW_OK || a->sw == SW_SELECTED_BLOCKED) {
            int i = vc->selected;
            switch_counters(vc, has_own_counters(vc, i) ? i + 1 : 0);
            if ((st = kv_vcard_app_state(vc)) != NULL && st->blocked)
                a->sw = SW_SELECTED_BLOCKED;
        }
        return;
    }
    st = kv_vcard_app_state(vc);
    if (st != NULL && st->blocked && c->cla == 0x80 && c->ins == 0xA8) {
        a->sw = SW_CONDITIONS; /* a blocked application: no new transaction */
        return;
    }
    if (c->cla == 0x80 && c->ins == 0xCA && c->p1 == 0x9F && c->p2 == 0x13 && st != NULL &&
        st->has_last_online) {
        uint8_t v[2] = {(uint8_t)(st->last_online_atc >> 8), (uint8_t)st->last_online_atc};
        kv_tlv_writer w;
        kv_tlv_writer_init(&w, a->data, sizeof(a->data));
        kv_tlv_put(&w, 0x9F13, v, 2);
        kv_vcard_answer_tlv(a, &w);
        return;
    }
    run_with_pin(vc, c, a, run);
}

/*
 * The secure messaging session key of mk (SMI or SMC) for this transaction
 * (CRYPTO.md §7, the layout of README "Issuer scripts"): Visa CVNs the EMV
 * common session key with R = ATC || 00 * 6; Mastercard and CCD CVN 5 with
 * R = the ARQC (Book 2 A1.3.1); CCD CVN 6 the AES form with R = ARQC || 00 * 8.
 */
static int sm_session_key(const kv_vcard *vc, const kv_vcard_keys *k, const uint8_t mk[16],
                          uint8_t sk[16])
{
    uint8_t r[16] = {0};
    int ret;
    if (visa_sm(k->cvn)) {
        r[0] = (uint8_t)(vc->atc >> 8);
        r[1] = (uint8_t)vc->atc;
        return kv_vcard_csk_r(mk, r, sk);
    }
    memcpy(r, vc->arqc, 8);
    if (k->cvn != 6)
        return kv_vcard_csk_r(mk, r, sk);
    /* AES-128: SK = AES(MK)[R], R = ARQC || 00*8 (Book 2 A1.3.1, key length = block length) */
    ret = kv_vcard_aes_ecb(mk, 1, r, 16, sk);
    kv_wipe(r, sizeof(r));
    return ret;
}

/*
 * PIN CHANGE: decipher the new PIN data under the SMC session key
 * (CRYPTO.md §7): Visa 3DES-ECB of 08 || PIN block || 80 00.. (16 bytes);
 * Mastercard 3DES-CBC (zero IV) of the PIN block (8 bytes); CCD 3DES- or
 * AES-CBC (zero IV) of PIN block || 80 00.. (16 bytes). Returns the SW.
 */
static uint16_t change_pin(kv_vcard *vc, const kv_vcard_keys *k, const uint8_t *data, size_t len)
{
    uint8_t sk[16], plain[16];
    const uint8_t *pb = plain, *pad = NULL;
    size_t want = 16;
    uint16_t sw = SW_WRONG_DATA;
    int r;

    if (vc->prof->pin_block == NULL || !k->has_smc_mk)
        return SW_CONDITIONS;
    if (visa_sm(k->cvn)) {
        pb = plain + 1;
        pad = plain + 9;
    } else if (k->cvn == 5 || k->cvn == 6) {
        pad = plain + 8;
    } else {
        want = 8;
    }
    if (len != want)
        return SW_WRONG_LENGTH;
    if ((r = sm_session_key(vc, k, k->smc_mk, sk)) == 0)
        r = visa_sm(k->cvn) ? kv_vcard_des2_ecb(sk, 0, data, len, plain)
                            : kv_vcard_cbc_decrypt(k->cvn == 6, sk, data, len, plain);
    if (r != 0) {
        sw = SW_NO_DIAGNOSIS;
        goto out;
    }
    if (visa_sm(k->cvn) && plain[0] != KV_VCARD_PIN_BLOCK_LEN)
        goto out;
    if (pad != NULL) {
        if (pad[0] != 0x80)
            goto out;
        for (const uint8_t *q = pad + 1; q < plain + 16; q++)
            if (*q != 0x00)
                goto out;
    }
    if (!kv_vcard_pin_block_ok(pb))
        goto out;
    memcpy(kv_secbuf_ptr(vc->prof->pin_block), pb, KV_VCARD_PIN_BLOCK_LEN);
    vc->pin_tries = vc->prof->pin_try_limit;
    sw = SW_OK;
out:
    kv_wipe(sk, sizeof(sk));
    kv_wipe(plain, sizeof(plain));
    return sw;
}

/* PUT DATA: replace the value of a GET DATA object the card or the application has. */
static uint16_t put_data(kv_vcard *vc, uint32_t tag, const uint8_t *data, size_t len)
{
    kv_vcard_df *app = &vc->prof->dfs[vc->selected];
    kv_vcard_dataobj *objs[2] = {app->data, vc->prof->data};
    size_t counts[2] = {app->ndata, vc->prof->ndata};

    if (len > KV_VCARD_VALUE_MAX)
        return SW_WRONG_LENGTH;
    for (size_t s = 0; s < 2; s++)
        for (size_t i = 0; i < counts[s]; i++)
            if (objs[s][i].tag == tag) {
                memcpy(objs[s][i].value, data, len);
                objs[s][i].len = len;
                return SW_OK;
            }
    return SW_DATA_NOT_FOUND;
}

/* UPDATE RECORD: replace an existing record of the application with a 70 template. */
static uint16_t update_record(kv_vcard *vc, uint8_t number, uint8_t p2, const uint8_t *data,
                              size_t len)
{
    kv_vcard_df *app = &vc->prof->dfs[vc->selected];
    unsigned sfi = p2 >> 3;
    kv_cursor cur;
    kv_tlv t;

    if ((p2 & 0x07) != 0x04 || sfi == 0 || number == 0)
        return SW_WRONG_P1P2;
    kv_cursor_init(&cur, data, len);
    if (len == 0 || kv_tlv_validate(data, len) != 0 || kv_tlv_next(&cur, &t) != 1 ||
        t.tag != 0x70 || kv_tlv_next(&cur, &t) != 0)
        return SW_WRONG_DATA;
    for (size_t i = 0; i < app->nrecords; i++)
        if (app->records[i].sfi == sfi && app->records[i].number == number) {
            memcpy(app->records[i].data, data, len);
            app->records[i].len = len;
            return SW_OK;
        }
    return SW_RECORD_NOT_FOUND;
}

/* see card.h */
void kv_vcard_cmd_script(kv_vcard *vc, const kv_capdu *c, kv_vcard_answer *a)
{
    const kv_vcard_df *app = kv_vcard_selected_app(vc);
    const kv_vcard_keys *k = kv_vcard_keys_of(vc);
    const kv_vcard_risk *rk = kv_vcard_risk_of(vc);
    struct kv_vcard_appstate *st = kv_vcard_app_state(vc);
    uint8_t buf[5 + 2 + 8 + KV_VCARD_DATA_MAX], sk[16], mac[16];
    size_t n = 0, dlen, mlen = k->sm_mac_len;
    int ok;
    uint16_t sw;

    /* command and P1 P2 */
    if (c->cla == 0x84 && c->ins == 0x24) {
        if (c->p1 != 0x00 || (c->p2 != 0x00 && c->p2 != 0x02)) {
            a->sw = SW_WRONG_P1P2;
            return;
        }
    } else if (c->cla == 0x84 && (c->ins == 0x1E || c->ins == 0x18 || c->ins == 0x16)) {
        if (c->p1 != 0x00 || c->p2 != 0x00) {
            a->sw = SW_WRONG_P1P2;
            return;
        }
    } else if (!(c->cla == 0x04 && (c->ins == 0xDA || c->ins == 0xDC))) {
        a->sw = SW_INS_UNKNOWN;
        return;
    }
    /* after an ARQC of this transaction, with the keys for it */
    if (app == NULL || st == NULL || vc->ac_state == 0 || vc->first_cid != 0x80 || !k->has_smi_mk) {
        a->sw = SW_CONDITIONS;
        return;
    }
    if (c->lc < mlen || c->lc > KV_VCARD_DATA_MAX) {
        a->sw = SW_WRONG_LENGTH;
        return;
    }
    dlen = c->lc - mlen;
    buf[n++] = c->cla;
    buf[n++] = c->ins;
    buf[n++] = c->p1;
    buf[n++] = c->p2;
    buf[n++] = (uint8_t)c->lc;
    if (visa_sm(k->cvn)) { /* the transaction data inside the MAC (Visa) */
        buf[n++] = (uint8_t)(vc->atc >> 8);
        buf[n++] = (uint8_t)vc->atc;
        memcpy(buf + n, vc->arqc, 8);
        n += 8;
    }
    memcpy(buf + n, c->data, dlen);
    n += dlen;
    if (sm_session_key(vc, k, k->smi_mk, sk) != 0 ||
        (k->cvn == 6 ? kv_vcard_aes_cmac(sk, buf, n, mac) : kv_vcard_mac3(sk, 2, buf, n, mac)) !=
            0) {
        kv_wipe(sk, sizeof(sk));
        a->sw = SW_NO_DIAGNOSIS;
        return;
    }
    kv_wipe(sk, sizeof(sk));
    ok = kv_ct_equal(mac, c->data + dlen, mlen);
    kv_wipe(mac, sizeof(mac));
    if (!ok) {
        /* a wrong MAC counts; at the limit the application blocks itself */
        st->bad_macs++;
        st->script_failed = 1;
        if (st->bad_macs >= rk->script_mac_limit)
            st->blocked = 1;
        (void)kv_vcard_state_save(vc);
        a->sw = SW_SM_WRONG;
        return;
    }
    st->bad_macs = 0;
    switch (c->ins) {
    case 0x24:
        if (c->p2 == 0x00) { /* PIN UNBLOCK */
            if (vc->prof->pin_block == NULL)
                sw = SW_CONDITIONS;
            else if (dlen != 0)
                sw = SW_WRONG_LENGTH;
            else {
                vc->pin_tries = vc->prof->pin_try_limit;
                sw = SW_OK;
            }
        } else {
            sw = change_pin(vc, k, c->data, dlen);
        }
        break;
    case 0x1E: /* APPLICATION BLOCK */
        st->blocked = 1;
        sw = SW_OK;
        break;
    case 0x18: /* APPLICATION UNBLOCK */
        st->blocked = 0;
        sw = SW_OK;
        break;
    case 0x16: /* CARD BLOCK */
        vc->card_blocked = 1;
        sw = SW_OK;
        break;
    case 0xDA:
        sw = put_data(vc, (uint32_t)c->p1 << 8 | c->p2, c->data, dlen);
        break;
    default:
        sw = update_record(vc, c->p1, c->p2, c->data, dlen);
        break;
    }
    if (sw == SW_OK)
        st->scripts++;
    else
        st->script_failed = 1;
    if (kv_vcard_state_save(vc) != 0 && sw == SW_OK)
        sw = SW_MEMORY_FAILURE;
    a->sw = sw;
}

/* One unsigned member of o into *out (absent: unchanged); 0 or -1 (not an integer 0..max). */
static int get_uint(const json_t *o, const char *key, unsigned max, unsigned *out)
{
    const json_t *v = json_object_get(o, key);
    if (v == NULL)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > (json_int_t)max)
        return -1;
    *out = (unsigned)json_integer_value(v);
    return 0;
}

/*
 * "crm": {"card_blocked": true, "apps": [{"atc", "pin_tries_left", "offline",
 * "last_online_atc", "bad_macs", "scripts", "script_failed", "last_ia_failed",
 * "blocked"}, ...]} -- one entry per application in profile order.
 */
/* see card.h */
int kv_vcard_crm_from_json(kv_vcard *vc, const json_t *root)
{
    const json_t *crm = json_object_get(root, "crm"), *apps, *e, *v;
    if (crm == NULL || vc->prof == NULL)
        return 0;
    if (!json_is_object(crm))
        return KV_ERR_FORMAT;
    if ((v = json_object_get(crm, "card_blocked")) != NULL) {
        if (!json_is_boolean(v))
            return KV_ERR_FORMAT;
        vc->card_blocked = json_is_true(v);
    }
    apps = json_object_get(crm, "apps");
    if (apps == NULL)
        return 0;
    if (!json_is_array(apps) || json_array_size(apps) > KV_VCARD_MAX_APPS)
        return KV_ERR_FORMAT;
    for (size_t i = 0; i < json_array_size(apps); i++) {
        struct kv_vcard_appstate *st = &vc->apps[i];
        unsigned flags[3] = {0, 0, 0}, has_last = 0;
        const kv_vcard_app_own *o = &vc->prof->own[i];
        e = json_array_get(apps, i);
        if (!json_is_object(e))
            return KV_ERR_FORMAT;
        if (get_uint(e, "offline", 0xFFFF, &st->offline) != 0 ||
            get_uint(e, "bad_macs", 0xFFFF, &st->bad_macs) != 0 ||
            get_uint(e, "scripts", 0xFFFF, &st->scripts) != 0 ||
            get_uint(e, "script_failed", 1, &flags[0]) != 0 ||
            get_uint(e, "last_ia_failed", 1, &flags[1]) != 0 ||
            get_uint(e, "blocked", 1, &flags[2]) != 0)
            return KV_ERR_FORMAT;
        st->script_failed = (int)flags[0];
        st->last_ia_failed = (int)flags[1];
        st->blocked = (int)flags[2];
        if (json_object_get(e, "last_online_atc") != NULL) {
            if (get_uint(e, "last_online_atc", 0xFFFF, &st->last_online_atc) != 0)
                return KV_ERR_FORMAT;
            has_last = 1;
        }
        st->has_last_online = (int)has_last;
        if (o->has_atc || o->pin_block != NULL) {
            st->atc = o->has_atc ? o->atc : 0;
            st->pin_tries = o->pin_block != NULL ? o->pin_tries : 0;
            if (get_uint(e, "atc", 0xFFFF, &st->atc) != 0 ||
                get_uint(e, "pin_tries_left", KV_VCARD_PIN_TRY_MAX, &st->pin_tries) != 0)
                return KV_ERR_FORMAT;
            if (o->pin_block != NULL && st->pin_tries > o->pin_try_limit)
                st->pin_tries = o->pin_try_limit;
            st->banked = 1;
        }
    }
    return 0;
}

/* see card.h */
int kv_vcard_crm_to_json(const kv_vcard *vc, json_t *root)
{
    json_t *crm = NULL, *apps = NULL, *e;
    size_t napps = 0, used = 0;
    int any = vc->card_blocked;

    if (vc->prof == NULL)
        return 0;
    for (size_t i = 0; i < vc->prof->ndfs && i < KV_VCARD_MAX_APPS; i++)
        if (vc->prof->dfs[i].kind == KV_VCARD_DF_APP)
            napps = i + 1;
    if (vc->active_own != 0) { /* the card's own counters stay at the top */
        const kv_vcard_app_own *o = &vc->prof->own[vc->active_own - 1];
        if ((o->has_atc && json_object_set_new(root, "atc", json_integer(vc->card_atc)) != 0) ||
            (o->pin_block != NULL &&
             json_object_set_new(root, "pin_tries_left", json_integer(vc->card_pin_tries)) != 0))
            return KV_ERR_NOMEM;
    }
    if ((apps = json_array()) == NULL)
        return KV_ERR_NOMEM;
    for (size_t i = 0; i < napps; i++) {
        const struct kv_vcard_appstate *st = &vc->apps[i];
        const kv_vcard_app_own *o = &vc->prof->own[i];
        int active = vc->active_own == (int)i + 1;
        if ((e = json_object()) == NULL || json_array_append_new(apps, e) != 0)
            goto nomem;
        if ((st->offline != 0 && json_object_set_new(e, "offline", json_integer(st->offline))) ||
            (st->bad_macs != 0 && json_object_set_new(e, "bad_macs", json_integer(st->bad_macs))) ||
            (st->scripts != 0 && json_object_set_new(e, "scripts", json_integer(st->scripts))) ||
            (st->script_failed && json_object_set_new(e, "script_failed", json_integer(1))) ||
            (st->last_ia_failed && json_object_set_new(e, "last_ia_failed", json_integer(1))) ||
            (st->blocked && json_object_set_new(e, "blocked", json_integer(1))) ||
            (st->has_last_online &&
             json_object_set_new(e, "last_online_atc", json_integer(st->last_online_atc))))
            goto nomem;
        if ((active || st->banked) && o->has_atc &&
            json_object_set_new(e, "atc", json_integer(active ? vc->atc : st->atc)) != 0)
            goto nomem;
        if ((active || st->banked) && o->pin_block != NULL &&
            json_object_set_new(e, "pin_tries_left",
                                json_integer(active ? vc->pin_tries : st->pin_tries)) != 0)
            goto nomem;
        if (json_object_size(e) > 0)
            used = 1;
    }
    any |= (int)used;
    if (!any) {
        json_decref(apps);
        return 0;
    }
    if ((crm = json_object()) == NULL ||
        (vc->card_blocked && json_object_set_new(crm, "card_blocked", json_true()) != 0) ||
        json_object_set_new(crm, "apps", apps) != 0) {
        apps = NULL;
        goto nomem;
    }
    return json_object_set_new(root, "crm", crm) == 0 ? 0 : KV_ERR_NOMEM;
nomem:
    json_decref(apps);
    json_decref(crm);
    return KV_ERR_NOMEM;
}

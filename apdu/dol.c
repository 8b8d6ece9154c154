/* see dol.h */
#include "apdu/dol.h"
#include "apdu/termcfg.h"
#include "src/base/cursor.h"
#include "apdu/tags.h"
#include "src/base/err.h"

#include <openssl/rand.h>
#include <string.h>
#include <time.h>

int kv_dol_parse(const uint8_t *dol, size_t len, kv_dol_entry *out, size_t cap, size_t *n)
{
    int r = KV_ERR_DOL;
    kv_cursor c;
    size_t count = 0;

    kv_cursor_init(&c, dol, len);
    while (kv_cursor_left(&c) > 0) {
        uint8_t b, l;
        uint32_t tag;
        unsigned tl = 1;
        if (kv_cursor_u8(&c, &b) != 0)
            goto out;
        tag = b;
        /* subsequent tag bytes follow when bits 5-1 are all one (EMV Book 3 Annex B1) */
        if ((b & 0x1F) == 0x1F) {
            do {
                if (++tl > 3 || kv_cursor_u8(&c, &b) != 0)
                    goto out;
                tag = tag << 8 | b;
            } while (b & 0x80);
        }
        if (kv_cursor_u8(&c, &l) != 0)
            goto out;
        if (count == cap) {
            r = KV_ERR_BUFFER;
            goto out;
        }
        out[count].tag = tag;
        out[count].len = l;
        count++;
    }
    *n = count;
    r = 0;
out:
    return r;
}

int kv_dol_data_len(const uint8_t *dol, size_t len, size_t *total)
{
    kv_dol_entry e[KV_DOL_MAX_ENTRIES];
    size_t n, sum = 0;
    int r = kv_dol_parse(dol, len, e, KV_DOL_MAX_ENTRIES, &n);
    if (r != 0)
        return r;
    for (size_t i = 0; i < n; i++)
        sum += e[i].len;
    *total = sum;
    return 0;
}

int kv_dol_value(const uint8_t *dol, size_t dol_len, const uint8_t *data, size_t data_len,
                 uint32_t tag, const uint8_t **v, size_t *vlen)
{
    kv_dol_entry e[KV_DOL_MAX_ENTRIES];
    size_t n, off = 0;

    if (dol == NULL || dol_len == 0)
        return 0;
    if (kv_dol_parse(dol, dol_len, e, KV_DOL_MAX_ENTRIES, &n) != 0)
        return KV_ERR_DOL;
    for (size_t i = 0; i < n; i++) {
        if (off > data_len || data_len - off < e[i].len)
            return KV_ERR_CARD_DATA;
        if (e[i].tag == tag) {
            *v = data + off;
            *vlen = e[i].len;
            return 1;
        }
        off += e[i].len;
    }
    return 0;
}

int kv_dol_has_tag(const uint8_t *dol, size_t len, uint32_t tag)
{
    kv_dol_entry e[KV_DOL_MAX_ENTRIES];
    size_t n;

    if (dol == NULL || kv_dol_parse(dol, len, e, KV_DOL_MAX_ENTRIES, &n) != 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (e[i].tag == tag)
            return 1;
    return 0;
}

int kv_terminal_new_un(kv_terminal *t)
{
    return RAND_bytes(t->un, sizeof(t->un)) == 1 ? 0 : KV_ERR_INTERNAL;
}

void kv_terminal_set_time(kv_terminal *t, long long when)
{
    time_t tt = (time_t)when;
    struct tm tm;
    if (localtime_r(&tt, &tm) == NULL)
        return;
    t->date = (uint32_t)((tm.tm_year % 100) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday);
    t->time = (uint32_t)(tm.tm_hour * 10000 + tm.tm_min * 100 + tm.tm_sec);
}

int kv_terminal_init(kv_terminal *t)
{
    static const uint8_t caps[3] = {0xE0, 0xF8, 0xC8};
    static const uint8_t addcaps[5] = {0x60, 0x00, 0xF0, 0xA0, 0x01};
    static const uint8_t ttq[4] = {0x36, 0x00, 0x40, 0x00};

    memset(t, 0, sizeof(*t));
    t->country = 208;
    t->currency = 208;
    t->currency_exp = 2;
    t->terminal_type = 22;
    memcpy(t->capabilities, caps, sizeof(caps));
    memcpy(t->add_capabilities, addcaps, sizeof(addcaps));
    memcpy(t->ttq, ttq, sizeof(ttq));
    t->mcc = 5999;
    t->pos_entry_mode = 5;
    t->app_version[1] = 0x02;
    t->txn_seq = 1;
    t->category = 'R';
    memcpy(t->terminal_id, "KV000001", 9);
    memcpy(t->merchant_id, "KORTVAGT0000001", 16);
    memcpy(t->merchant_name, "kortvagt, Copenhagen DK", 24);
    memcpy(t->ifd_serial, "KORTVAGT", 9);
    kv_terminal_set_time(t, (long long)time(NULL));
    return kv_terminal_new_un(t);
}

/* v as nbytes of BCD, right-aligned (digits beyond 2*nbytes are dropped). */
static void bcd(uint64_t v, uint8_t *out, size_t nbytes)
{
    for (size_t i = nbytes; i-- > 0;) {
        out[i] = (uint8_t)(v % 10);
        v /= 10;
        out[i] |= (uint8_t)((v % 10) << 4);
        v /= 10;
    }
}

static void be32(uint32_t v, uint8_t *out)
{
    out[0] = (uint8_t)(v >> 24);
    out[1] = (uint8_t)(v >> 16);
    out[2] = (uint8_t)(v >> 8);
    out[3] = (uint8_t)v;
}

static size_t text(const char *s, uint8_t *out, size_t cap)
{
    size_t n = strnlen(s, cap);
    memcpy(out, s, n);
    return n;
}

int kv_terminal_value(const kv_terminal *t, uint32_t tag, uint8_t *out, size_t cap, size_t *len)
{
    size_t n;
    if (cap < 64)
        return KV_ERR_BUFFER;
    switch (tag) {
    case 0x9F1A:
        bcd(t->country, out, n = 2);
        break;
    case 0x5F2A:
        bcd(t->currency, out, n = 2);
        break;
    case 0x5F36:
        bcd(t->currency_exp, out, n = 1);
        break;
    case 0x9F02:
        bcd(t->amount, out, n = 6);
        break;
    case 0x9F03:
        bcd(t->amount_other, out, n = 6);
        break;
    case 0x81: /* binary amounts saturate at 2^32-1 */
        be32(t->amount > UINT32_MAX ? UINT32_MAX : (uint32_t)t->amount, out);
        n = 4;
        break;
    case 0x9F04:
        be32(t->amount_other > UINT32_MAX ? UINT32_MAX : (uint32_t)t->amount_other, out);
        n = 4;
        break;
    case 0x9F37:
        memcpy(out, t->un, n = 4);
        break;
    case 0x9F6A: /* unpredictable number (numeric), n8: from the same random bytes */
        bcd(((uint32_t)t->un[0] << 24 | (uint32_t)t->un[1] << 16 | (uint32_t)t->un[2] << 8 |
             t->un[3]) %
                100000000u,
            out, n = 4);
        break;
    case 0x95:
        memcpy(out, t->tvr, n = 5);
        break;
    case 0x9B:
        memcpy(out, t->tsi, n = 2);
        break;
    case 0x9F34:
        memcpy(out, t->cvm_results, n = 3);
        break;
    case 0x9A:
        bcd(t->date, out, n = 3);
        break;
    case 0x9F21:
        bcd(t->time, out, n = 3);
        break;
    case 0x9C:
        bcd(t->txn_type, out, n = 1);
        break;
    case 0x9F35:
        bcd(t->terminal_type, out, n = 1);
        break;
    case 0x9F33:
        memcpy(out, t->capabilities, n = 3);
        break;
    case 0x9F40:
        memcpy(out, t->add_capabilities, n = 5);
        break;
    case 0x9F66:
        memcpy(out, t->ttq, n = 4);
        break;
    case 0x9F15:
        bcd(t->mcc, out, n = 2);
        break;
    case 0x9F39:
        bcd(t->pos_entry_mode, out, n = 1);
        break;
    case 0x9F09:
        memcpy(out, t->app_version, n = 2);
        break;
    case 0x9F41:
        bcd(t->txn_seq, out, n = 4);
        break;
    case 0x9F1D:
        memcpy(out, t->risk_data, n = 8);
        break;
    case 0x9F53:
        out[0] = (uint8_t)t->category;
        n = 1;
        break;
    case 0x9F1C:
        n = text(t->terminal_id, out, 8);
        break;
    case 0x9F16:
        n = text(t->merchant_id, out, 15);
        break;
    case 0x9F4E:
        n = text(t->merchant_name, out, 40);
        break;
    case 0x9F1E:
        n = text(t->ifd_serial, out, 8);
        break;
    case 0x9F01:
        memcpy(out, t->acquirer_id, n = 6);
        break;
    default:
        return KV_ERR_NOT_FOUND;
    }
    *len = n;
    return 0;
}

void kv_dol_fit(uint32_t tag, const uint8_t *v, size_t vlen, uint8_t *out, size_t want)
{
    const kv_tag_info *info = kv_tag_lookup(tag);
    unsigned fmt = info != NULL ? info->format : KV_TAG_FMT_B;

    if (fmt == KV_TAG_FMT_N) {
        /* right-aligned: keep the rightmost digits, zero-fill on the left */
        if (vlen >= want) {
            memcpy(out, v + (vlen - want), want);
        } else {
            memset(out, 0x00, want - vlen);
            memcpy(out + (want - vlen), v, vlen);
        }
        return;
    }
    if (vlen >= want) {
        memcpy(out, v, want);
        return;
    }
    memcpy(out, v, vlen);
    memset(out + vlen, fmt == KV_TAG_FMT_CN ? 0xFF : 0x00, want - vlen);
}

/* bit 6 of the first tag byte */
static int tag_is_constructed(uint32_t tag)
{
    while (tag > 0xFF)
        tag >>= 8;
    return (tag & 0x20) != 0;
}

int kv_dol_build(const uint8_t *dol, size_t dol_len, const kv_terminal *t, kv_dol_lookup_fn lookup,
                 void *arg, uint8_t *out, size_t cap, size_t *outlen)
{
    int r;
    kv_dol_entry e[KV_DOL_MAX_ENTRIES];
    size_t n, pos = 0;
    uint8_t buf[64];

    if ((r = kv_dol_parse(dol, dol_len, e, KV_DOL_MAX_ENTRIES, &n)) != 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *v = NULL;
        size_t vlen = 0;
        if (cap - pos < e[i].len) {
            r = KV_ERR_BUFFER;
            goto out;
        }
        if (lookup != NULL && lookup(arg, e[i].tag, &v, &vlen) == 1) {
            /* session data */
        } else if (t != NULL && kv_terminal_value(t, e[i].tag, buf, sizeof(buf), &vlen) == 0) {
            v = buf;
        } else {
            v = NULL; /* unknown: zeros of the requested length (EMV Book 3 §5.4) */
            vlen = 0;
        }
        /* a constructed tag is never filled from data (EMV Book 3 §5.4) */
        if (v == NULL || tag_is_constructed(e[i].tag))
            memset(out + pos, 0, e[i].len);
        else
            kv_dol_fit(e[i].tag, v, vlen, out + pos, e[i].len);
        pos += e[i].len;
    }
    *outlen = pos;
    r = 0;
out:
    return r;
}

/* see dol.h: the built-in terminal configuration decides (termcfg.c) */
void kv_terminal_select_app(kv_terminal *t, const uint8_t *aid, size_t aid_len)
{
    kv_term_config c;
    const kv_aid_config *a;

    if (aid == NULL || aid_len < 5)
        return;
    kv_term_config_defaults(&c);
    if ((a = kv_term_config_match(&c, aid, aid_len)) == NULL) {
        /* another AID of a known RID gets that RID's entry's 9F09; an unknown RID keeps t's */
        int known = 0;
        for (size_t i = 0; i < c.naids && !known; i++)
            known = memcmp(c.aids[i].aid, aid, 5) == 0;
        if (!known || (a = kv_term_config_add(&c, aid, aid_len)) == NULL)
            return;
    }
    kv_term_config_apply_app(a, t);
}

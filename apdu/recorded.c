/* see recorded.h */
#include "apdu/recorded.h"
#include "apdu/apdu.h"
#include "apdu/trace.h"
#include "src/base/err.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* A DF name is at most 16 bytes (ISO/IEC 7816-4 §5.3.1.2). */
#define KV_DF_NAME_MAX 16

typedef struct {
    uint8_t hdr[4];
    uint8_t *data, *mask; /* command data and its match mask (XX = 00) */
    size_t lc;
    uint8_t *rapdu;
    size_t rlen;
    uint8_t selected[KV_DF_NAME_MAX];
    size_t selected_len; /* 0 = valid whatever is selected */
} rec_exchange;

struct kv_recorded {
    uint8_t atr[33];
    size_t atr_len;
    rec_exchange *x;
    size_t n;
    uint8_t df[KV_DF_NAME_MAX]; /* the selected DF name */
    size_t df_len;              /* 0 = nothing selected */
};

void kv_recorded_free(kv_recorded *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++) {
        free(c->x[i].data);
        free(c->x[i].mask);
        free(c->x[i].rapdu);
    }
    free(c->x);
    free(c);
}

/* Hex string (with XX wildcards) into fresh buffers. */
static int hex_member(json_t *o, const char *key, uint8_t **val, uint8_t **mask, size_t *len)
{
    const char *h = json_string_value(json_object_get(o, key));
    size_t cap;
    int n;
    if (h == NULL)
        return KV_ERR_JSON;
    cap = strlen(h) / 2 + 1;
    if ((*val = malloc(cap)) == NULL || (*mask = malloc(cap)) == NULL)
        return KV_ERR_NOMEM;
    if ((n = kv_trace_hex_decode(h, *val, *mask, cap)) < 0)
        return KV_ERR_JSON;
    *len = (size_t)n;
    return 0;
}

static int load_exchange(json_t *o, rec_exchange *x)
{
    int r = KV_ERR_JSON;
    uint8_t *c = NULL, *cm = NULL, *rm = NULL;
    size_t clen = 0;
    kv_capdu ap;
    json_t *sel;

    if (!json_is_object(o))
        goto out;
    if ((r = hex_member(o, "capdu", &c, &cm, &clen)) != 0 ||
        (r = hex_member(o, "rapdu", &x->rapdu, &rm, &x->rlen)) != 0)
        goto out;
    r = KV_ERR_JSON;
    /* the header must be plain bytes: only command data may hold wildcards */
    if (clen < 4 || x->rlen < 2 || cm[0] != 0xFF || cm[1] != 0xFF || cm[2] != 0xFF || cm[3] != 0xFF)
        goto out;
    /* the wildcard bytes decode as 00, which keeps the lengths parseable */
    if (kv_capdu_parse(c, clen, &ap) != 0)
        goto out;
    memcpy(x->hdr, c, 4);
    x->lc = ap.lc;
    if (ap.lc > 0) {
        size_t off = (size_t)(ap.data - c);
        if ((x->data = malloc(ap.lc)) == NULL || (x->mask = malloc(ap.lc)) == NULL) {
            r = KV_ERR_NOMEM;
            goto out;
        }
        memcpy(x->data, c + off, ap.lc);
        memcpy(x->mask, cm + off, ap.lc);
    }
    if ((sel = json_object_get(o, "selected")) != NULL && !json_is_null(sel)) {
        const char *h = json_string_value(sel);
        int n;
        if (h == NULL || (n = kv_trace_hex_decode(h, x->selected, NULL, KV_DF_NAME_MAX)) <= 0)
            goto out;
        x->selected_len = (size_t)n;
    }
    r = 0;
out:
    free(c);
    free(cm);
    free(rm);
    return r;
}

int kv_recorded_load(const char *path, kv_recorded **out)
{
    int r = KV_ERR_NOMEM;
    kv_recorded *c = NULL;
    json_t *j = NULL, *xs, *atr;
    json_error_t jerr;

    if ((c = calloc(1, sizeof(*c))) == NULL)
        goto out;
    if ((j = json_load_file(path, 0, &jerr)) == NULL) {
        r = json_error_code(&jerr) == json_error_cannot_open_file ? KV_ERR_IO : KV_ERR_JSON;
        goto out;
    }
    r = KV_ERR_JSON;
    if (!json_is_object(j) || !json_is_array(xs = json_object_get(j, "exchanges")))
        goto out;
    if ((atr = json_object_get(j, "atr")) != NULL && !json_is_null(atr)) {
        int n;
        if (!json_is_string(atr) ||
            (n = kv_trace_hex_decode(json_string_value(atr), c->atr, NULL, sizeof(c->atr))) < 0)
            goto out;
        c->atr_len = (size_t)n;
    }
    if (json_array_size(xs) > 0 && (c->x = calloc(json_array_size(xs), sizeof(*c->x))) == NULL) {
        r = KV_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < json_array_size(xs); i++) {
        c->n++; /* counted first: a half-loaded exchange is freed with the card */
        if ((r = load_exchange(json_array_get(xs, i), &c->x[i])) != 0)
            goto out;
    }
    *out = c;
    c = NULL; /* transferred */
    r = 0;
out:
    json_decref(j);
    kv_recorded_free(c);
    return r;
}

size_t kv_recorded_atr(const kv_recorded *c, uint8_t *out, size_t cap)
{
    if (c->atr_len <= cap)
        memcpy(out, c->atr, c->atr_len);
    return c->atr_len;
}

void kv_recorded_reset(kv_recorded *c)
{
    c->df_len = 0;
}

static int exchange_matches(const kv_recorded *c, const rec_exchange *x, const kv_capdu *ap,
                            const uint8_t *hdr)
{
    if (memcmp(x->hdr, hdr, 4) != 0 || x->lc != ap->lc)
        return 0;
    for (size_t i = 0; i < ap->lc; i++)
        if ((ap->data[i] & x->mask[i]) != (x->data[i] & x->mask[i]))
            return 0;
    if (x->selected_len != 0 &&
        (x->selected_len != c->df_len || memcmp(x->selected, c->df, c->df_len) != 0))
        return 0;
    return 1;
}

static int put_sw(uint16_t sw, uint8_t *out, size_t *outlen)
{
    out[0] = (uint8_t)(sw >> 8);
    out[1] = (uint8_t)sw;
    *outlen = 2;
    return 0;
}

int kv_recorded_answer(kv_recorded *c, const uint8_t *capdu, size_t len, uint8_t *out, size_t cap,
                       size_t *outlen)
{
    kv_capdu ap;
    int known_ins = 0;

    if (cap < 2)
        return KV_ERR_ARG;
    if (kv_capdu_parse(capdu, len, &ap) != 0)
        return put_sw(0x6700, out, outlen);
    for (size_t i = 0; i < c->n; i++) {
        const rec_exchange *x = &c->x[i];
        uint16_t sw;
        if (x->hdr[1] == ap.ins)
            known_ins = 1;
        if (!exchange_matches(c, x, &ap, capdu))
            continue;
        if (x->rlen > cap)
            return KV_ERR_BUFFER;
        memcpy(out, x->rapdu, x->rlen);
        *outlen = x->rlen;
        sw = kv_sw_of(x->rapdu, x->rlen);
        if (ap.ins == 0xA4 && (sw == 0x9000 || (sw >> 8) == 0x62 || (sw >> 8) == 0x63) &&
            ap.lc > 0 && ap.lc <= KV_DF_NAME_MAX) {
            memcpy(c->df, ap.data, ap.lc);
            c->df_len = ap.lc;
        }
        return 0;
    }
    switch (ap.ins) {
    case 0xA4:
        return put_sw(0x6A82, out, outlen);
    case 0xB2:
        return put_sw(0x6A83, out, outlen);
    case 0xCA:
    case 0xCB:
        return put_sw(0x6A88, out, outlen);
    default:
        return put_sw(known_ins ? 0x6A88 : 0x6D00, out, outlen);
    }
}

/* see trace.h */
#include "apdu/trace.h"
#include "apdu/apdu.h"
#include "apdu/tlv.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/base/outfile.h"
#include "src/base/secure.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KV_PAN_MIN 12
#define KV_PAN_MAX 19

struct kv_trace {
    FILE *f;
    int owned;
    kv_outfile out; /* kv_trace_open: the file (0600, a new inode) */
    struct timespec t0;
    char pans[KV_TRACE_MAX_PANS][KV_TRACE_PAN_SIZE];
    size_t npans;
};

struct pan_list {
    char (*pans)[KV_TRACE_PAN_SIZE];
    size_t n, cap;
};

static int trace_init(FILE *f, int owned, kv_trace **out)
{
    kv_trace *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return KV_ERR_NOMEM;
    t->f = f;
    t->owned = owned;
    clock_gettime(CLOCK_MONOTONIC, &t->t0);
    *out = t;
    return 0;
}

int kv_trace_open(const char *path, kv_trace **out)
{
    kv_outfile o;
    int r;
    /*
     * A trace may hold card data: a new file of mode 0600, renamed over the
     * target at once, so that it is readable while the session runs
     */
    if ((r = kv_outfile_open(path, &o)) != 0)
        return r;
    if ((r = kv_outfile_publish(&o)) != 0 || (r = trace_init(o.f, 1, out)) != 0) {
        kv_outfile_abort(&o);
        return r;
    }
    (*out)->out = o;
    return 0;
}

int kv_trace_new_fp(FILE *f, kv_trace **out)
{
    return trace_init(f, 0, out);
}

void kv_trace_free(kv_trace *t)
{
    if (t == NULL)
        return;
    if (t->owned)
        (void)kv_outfile_commit(&t->out);
    else
        fflush(t->f);
    kv_wipe(t->pans, sizeof(t->pans));
    free(t);
}

/* Digits of a BCD value up to the first nibble that is not a digit. */
static size_t bcd_digits(const uint8_t *v, size_t len, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < len * 2 && n + 1 < cap; i++) {
        uint8_t d = (uint8_t)(i % 2 == 0 ? v[i / 2] >> 4 : v[i / 2] & 0x0F);
        if (d > 9)
            break;
        out[n++] = (char)('0' + d);
    }
    out[n] = '\0';
    return n;
}

static void remember_pan(struct pan_list *t, const char *pan, size_t n)
{
    if (n < KV_PAN_MIN || n > KV_PAN_MAX)
        return;
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->pans[i], pan) == 0)
            return;
    if (t->n == t->cap)
        return;
    memcpy(t->pans[t->n], pan, n + 1);
    t->n++;
}

static int find_pans(const kv_tlv *tlv, unsigned depth, void *arg)
{
    struct pan_list *t = arg;
    char pan[KV_PAN_MAX + 2];
    size_t n = 0;
    (void)depth;
    if (tlv->constructed || tlv->len == 0)
        return 0;
    if (tlv->tag == 0x5A || tlv->tag == 0x57 || tlv->tag == 0x9F6B) {
        /* 5A is cn padded with F; 57 / 9F6B end the PAN with the separator D */
        n = bcd_digits(tlv->value, tlv->len, pan, sizeof(pan));
    } else if (tlv->tag == 0x56 && tlv->len > 1 && tlv->value[0] == 'B') {
        /* track 1: format code B, then the PAN up to '^' (ISO/IEC 7813) */
        for (size_t i = 1; i < tlv->len && n + 1 < sizeof(pan); i++) {
            if (tlv->value[i] < '0' || tlv->value[i] > '9')
                break;
            pan[n++] = (char)tlv->value[i];
        }
        pan[n] = '\0';
    }
    if (n > 0)
        remember_pan(t, pan, n);
    return 0;
}

size_t kv_trace_find_pans(const uint8_t *r, size_t rlen, char (*pans)[KV_TRACE_PAN_SIZE],
                          size_t npans, size_t cap)
{
    struct pan_list l = {pans, npans, cap};
    if (rlen > 2)
        (void)kv_tlv_walk(r, rlen - 2, find_pans, &l); /* malformed: nothing more to mask */
    return l.n;
}

/* Mask with 'X' the hex chars [from, to) of every even-aligned occurrence of needle in hex. */
static void mask_occurrences(char *hex, const char *needle, size_t from, size_t to)
{
    size_t hl = strlen(hex), nl = strlen(needle);
    if (nl == 0 || nl > hl)
        return;
    for (size_t i = 0; i + nl <= hl; i += 2) {
        if (memcmp(hex + i, needle, nl) != 0)
            continue;
        for (size_t k = from; k < to; k++)
            hex[i + k] = 'X';
    }
}

void kv_trace_mask_hex(const uint8_t *p, size_t len, int is_command, const char *const *pans,
                       size_t npans, char *hex)
{
    kv_capdu c;

    kv_hex_encode(p, len, hex);
    if (is_command && len >= 5 && p[1] == 0x20 && kv_capdu_parse(p, len, &c) == 0 && c.lc > 0) {
        size_t off = (size_t)(c.data - p);
        for (size_t k = 2 * off; k < 2 * (off + c.lc); k++)
            hex[k] = 'X';
    }
    for (size_t i = 0; i < npans; i++) {
        char ascii[2 * KV_PAN_MAX + 1];
        size_t n = strlen(pans[i]);
        if (n < KV_PAN_MIN || n > KV_PAN_MAX)
            continue;
        /* BCD: the PAN's digits are its own hex text */
        mask_occurrences(hex, pans[i], 6, n - 4);
        for (size_t k = 0; k < n; k++) {
            ascii[2 * k] = '3';
            ascii[2 * k + 1] = pans[i][k];
        }
        ascii[2 * n] = '\0';
        mask_occurrences(hex, ascii, 12, 2 * (n - 4));
    }
}

int kv_trace_write(kv_trace *t, const uint8_t *c, size_t clen, const uint8_t *r, size_t rlen)
{
    int ret = KV_ERR_NOMEM;
    char *hc = NULL, *hr = NULL;
    const char *pans[KV_TRACE_MAX_PANS];
    struct timespec now;
    long ms;

    t->npans = kv_trace_find_pans(r, rlen, t->pans, t->npans, KV_TRACE_MAX_PANS);
    for (size_t i = 0; i < t->npans; i++)
        pans[i] = t->pans[i];
    if ((hc = malloc(2 * clen + 1)) == NULL || (hr = malloc(2 * rlen + 1)) == NULL)
        goto out;
    kv_trace_mask_hex(c, clen, 1, pans, t->npans, hc);
    kv_trace_mask_hex(r, rlen, 0, pans, t->npans, hr);
    clock_gettime(CLOCK_MONOTONIC, &now);
    ms = (long)(now.tv_sec - t->t0.tv_sec) * 1000 + (now.tv_nsec - t->t0.tv_nsec) / 1000000;
    ret = fprintf(t->f, "{\"c\":\"%s\",\"r\":\"%s\",\"t\":%ld}\n", hc, hr, ms) < 0 ? KV_ERR_IO : 0;
    if (ret == 0 && fflush(t->f) != 0)
        ret = KV_ERR_IO;
out:
    free(hc);
    free(hr);
    return ret;
}

static int nibble(char ch, uint8_t *v, uint8_t *m)
{
    *m = 0x0F;
    if (ch >= '0' && ch <= '9')
        *v = (uint8_t)(ch - '0');
    else if (ch >= 'A' && ch <= 'F')
        *v = (uint8_t)(ch - 'A' + 10);
    else if (ch >= 'a' && ch <= 'f')
        *v = (uint8_t)(ch - 'a' + 10);
    else if (ch == 'X' || ch == 'x')
        *v = *m = 0;
    else
        return KV_ERR_FORMAT;
    return 0;
}

int kv_trace_hex_decode(const char *hex, uint8_t *val, uint8_t *mask, size_t cap)
{
    size_t n = strlen(hex);
    if (n % 2 != 0)
        return KV_ERR_FORMAT;
    if (n / 2 > cap)
        return KV_ERR_BUFFER;
    for (size_t i = 0; i < n / 2; i++) {
        uint8_t hv, hm, lv, lm;
        if (nibble(hex[2 * i], &hv, &hm) != 0 || nibble(hex[2 * i + 1], &lv, &lm) != 0)
            return KV_ERR_FORMAT;
        val[i] = (uint8_t)(hv << 4 | lv);
        if (mask != NULL)
            mask[i] = (uint8_t)(hm << 4 | lm);
    }
    return (int)(n / 2);
}

void kv_trace_script_free(kv_trace_script *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->e[i].c);
        free(s->e[i].cmask);
        free(s->e[i].r);
    }
    free(s->e);
    free(s);
}

/* Decode a hex JSON string member into fresh buffers (mask optional). */
static int take_hex(json_t *obj, const char *key, uint8_t **val, uint8_t **mask, size_t *len)
{
    const char *h = json_string_value(json_object_get(obj, key));
    size_t cap;
    int n;
    if (h == NULL)
        return KV_ERR_TRACE;
    cap = strlen(h) / 2 + 1;
    if ((*val = malloc(cap)) == NULL)
        return KV_ERR_NOMEM;
    if (mask != NULL && (*mask = malloc(cap)) == NULL)
        return KV_ERR_NOMEM;
    if ((n = kv_trace_hex_decode(h, *val, mask ? *mask : NULL, cap)) < 0)
        return KV_ERR_TRACE;
    *len = (size_t)n;
    return 0;
}

static int parse_line(kv_trace_script *s, const char *line, size_t len, size_t *alloc)
{
    int r = KV_ERR_TRACE;
    json_t *j = NULL, *t;
    kv_trace_entry *e;
    const char *atr;

    if ((j = json_loadb(line, len, 0, NULL)) == NULL || !json_is_object(j))
        goto out;
    if ((atr = json_string_value(json_object_get(j, "atr"))) != NULL &&
        json_object_get(j, "c") == NULL) {
        int n = kv_trace_hex_decode(atr, s->atr, NULL, sizeof(s->atr));
        if (n <= 0)
            goto out;
        s->atr_len = (size_t)n;
        r = 0;
        goto out;
    }
    if (s->n == *alloc) {
        size_t na = *alloc ? *alloc * 2 : 16;
        kv_trace_entry *ne = realloc(s->e, na * sizeof(*ne));
        if (ne == NULL) {
            r = KV_ERR_NOMEM;
            goto out;
        }
        s->e = ne;
        *alloc = na;
    }
    e = &s->e[s->n];
    memset(e, 0, sizeof(*e));
    s->n++; /* counted now so that a half-filled entry is freed with the script */
    e->t = -1;
    if ((r = take_hex(j, "c", &e->c, &e->cmask, &e->clen)) != 0 ||
        (r = take_hex(j, "r", &e->r, NULL, &e->rlen)) != 0)
        goto out;
    r = KV_ERR_TRACE;
    if (e->clen < 4 || e->rlen < 2)
        goto out;
    if ((t = json_object_get(j, "t")) != NULL) {
        if (!json_is_integer(t))
            goto out;
        e->t = (long)json_integer_value(t);
    }
    r = 0;
out:
    json_decref(j);
    return r;
}

int kv_trace_parse(const char *text, size_t len, kv_trace_script **out)
{
    int r = KV_ERR_NOMEM;
    kv_trace_script *s = NULL;
    size_t alloc = 0, start = 0;

    if ((s = calloc(1, sizeof(*s))) == NULL)
        goto out;
    while (start < len) {
        size_t end = start, i;
        int blank = 1;
        while (end < len && text[end] != '\n')
            end++;
        for (i = start; i < end; i++)
            if (text[i] != ' ' && text[i] != '\t' && text[i] != '\r')
                blank = 0;
        if (!blank && (r = parse_line(s, text + start, end - start, &alloc)) != 0)
            goto out;
        start = end + 1;
    }
    *out = s;
    s = NULL; /* transferred */
    r = 0;
out:
    kv_trace_script_free(s);
    return r;
}

int kv_trace_load(const char *path, kv_trace_script **out)
{
    int r = KV_ERR_IO;
    FILE *f = NULL;
    char *buf = NULL;
    long n;

    if ((f = fopen(path, "rb")) == NULL)
        goto out;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto out;
    if ((buf = malloc((size_t)n + 1)) == NULL) {
        r = KV_ERR_NOMEM;
        goto out;
    }
    if (fread(buf, 1, (size_t)n, f) != (size_t)n)
        goto out;
    r = kv_trace_parse(buf, (size_t)n, out);
out:
    if (f != NULL)
        fclose(f);
    free(buf);
    return r;
}

int kv_trace_entry_matches(const kv_trace_entry *e, const uint8_t *c, size_t clen)
{
    size_t n = clen;
    if (clen != e->clen)
        return 0;
    /* terminal-generated DOL data (UN, date) differs on every run: header and Lc only */
    if (clen >= 5 && (c[1] == 0xA8 || c[1] == 0xAE || c[1] == 0x88))
        n = 5;
    for (size_t i = 0; i < n; i++)
        if ((c[i] & e->cmask[i]) != (e->c[i] & e->cmask[i]))
            return 0;
    return 1;
}

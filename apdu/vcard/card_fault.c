/*
 * see card_fault.h: applying the test-lab faults to the card's answers, and
 * the kv_vcard API that sets them (vcard.h).
 *
 * A fault matches a command by INS (and P1, P2 when given). Every matching
 * command counts, from power on or reset; a fault with "nth" acts on the
 * nth only, one without on every one. Faults that act before the command
 * (tear before, delay, the real ATC, a status word instead of the command)
 * run in kv_vcard_fault_before; those that rewrite the answer (corrupt,
 * skew, drop, duplicate) in kv_vcard_fault_after, over the answer's BER-TLV
 * objects at any depth, re-encoding the lengths of the templates around
 * them. An answer that is not BER-TLV (a log record) is left as it is.
 */
#include "apdu/vcard/card_fault.h"
#include "apdu/tlv.h"
#include "src/base/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* see card_fault.h */
int kv_vcard_lab_init(kv_vcard *vc)
{
    kv_vcard_lab *lab = calloc(1, sizeof(*lab));
    if (lab == NULL)
        return KV_ERR_NOMEM;
    if (vc->prof != NULL && vc->prof->faults != NULL)
        lab->faults = *vc->prof->faults;
    memset(lab->faults.seen, 0, sizeof(lab->faults.seen));
    if (vc->prof != NULL && vc->prof->log != NULL) {
        if ((lab->areas = calloc(vc->prof->ndfs, sizeof(*lab->areas))) == NULL) {
            free(lab);
            return KV_ERR_NOMEM;
        }
        lab->log = vc->prof->log;
    }
    vc->lab = lab;
    return 0;
}

/* see card_fault.h */
void kv_vcard_lab_free(kv_vcard *vc)
{
    if (vc->lab == NULL)
        return;
    free(vc->lab->areas);
    free(vc->lab);
    vc->lab = NULL;
}

/* see card_fault.h */
void kv_vcard_lab_session(kv_vcard *vc)
{
    if (vc->lab != NULL)
        memset(vc->lab->faults.seen, 0, sizeof(vc->lab->faults.seen));
}

/* see vcard.h */
int kv_vcard_set_faults(kv_vcard *vc, const char *json, size_t len, char *why, size_t whylen)
{
    kv_vcard_faults f;
    json_error_t e;
    json_t *root, *arr;
    int r;

    if (vc->lab == NULL && (r = kv_vcard_lab_init(vc)) != 0)
        return r;
    if (json == NULL || len == 0) {
        memset(&vc->lab->faults, 0, sizeof(vc->lab->faults));
        return 0;
    }
    if ((root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &e)) == NULL) {
        if (why != NULL && whylen > 0)
            snprintf(why, whylen, "line %d: %s", e.line, e.text);
        return KV_ERR_JSON;
    }
    /* a bare array, or {"faults": [...]} and nothing else */
    arr = root;
    if (json_is_object(root)) {
        arr = json_object_get(root, "faults");
        if (arr == NULL || json_object_size(root) != 1) {
            json_decref(root);
            if (why != NULL && whylen > 0)
                snprintf(why, whylen, "a fault file is [...] or {\"faults\": [...]}");
            return KV_ERR_JSON;
        }
    }
    r = kv_vcard_faults_parse(arr, "faults", &f, why, whylen);
    json_decref(root);
    if (r != 0)
        return r;
    vc->lab->faults = f; /* counters start at zero */
    return 0;
}

/* see vcard.h */
int kv_vcard_load_faults(kv_vcard *vc, const char *path, char *why, size_t whylen)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int r;

    if (f == NULL) {
        if (why != NULL && whylen > 0)
            snprintf(why, whylen, "cannot read %s", path);
        return KV_ERR_IO;
    }
    for (;;) {
        size_t got;
        if (n == cap) {
            char *nb;
            if (cap >= (1u << 20)) {
                free(buf);
                fclose(f);
                if (why != NULL && whylen > 0)
                    snprintf(why, whylen, "%s: larger than 1 MiB", path);
                return KV_ERR_FORMAT;
            }
            cap = cap == 0 ? 4096 : cap * 2;
            if ((nb = realloc(buf, cap)) == NULL) {
                free(buf);
                fclose(f);
                return KV_ERR_NOMEM;
            }
            buf = nb;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    r = ferror(f) ? KV_ERR_IO : 0;
    fclose(f);
    if (r == 0 && n == 0) {
        if (why != NULL && whylen > 0)
            snprintf(why, whylen, "%s: empty", path);
        r = KV_ERR_JSON;
    }
    if (r == 0)
        r = kv_vcard_set_faults(vc, buf, n, why, whylen);
    else if (r == KV_ERR_IO && why != NULL && whylen > 0)
        snprintf(why, whylen, "cannot read %s", path);
    free(buf);
    return r;
}

/* see vcard.h */
size_t kv_vcard_fault_count(const kv_vcard *vc)
{
    return vc->lab != NULL ? vc->lab->faults.n : 0;
}

static unsigned delay_max = 60000;

/* see vcard.h */
void kv_vcard_set_fault_delay_max(unsigned ms)
{
    delay_max = ms;
}

static void sleep_ms(long ms)
{
    if (ms > (long)delay_max)
        ms = (long)delay_max;
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ; /* a signal: sleep the rest */
}

static int matches(const kv_vcard_fault *f, const kv_capdu *c)
{
    return f->ins == c->ins && (f->p1 < 0 || f->p1 == c->p1) && (f->p2 < 0 || f->p2 == c->p2);
}

/* see card_fault.h */
int kv_vcard_fault_before(kv_vcard *vc, const kv_capdu *c, kv_vcard_answer *a, int *tear_after)
{
    kv_vcard_faults *fs;
    int skip = 0;

    *tear_after = 0;
    if (vc->lab == NULL)
        return 0;
    vc->lab->active = 0;
    if (vc->lab->faults.n == 0)
        return 0;
    fs = &vc->lab->faults;
    for (size_t i = 0; i < fs->n; i++) {
        const kv_vcard_fault *f = &fs->f[i];
        if (!matches(f, c))
            continue;
        if (fs->seen[i] < 0xFFFFFFFFu)
            fs->seen[i]++;
        if ((f->nth != 0 && fs->seen[i] != f->nth) || fs->spent[i])
            continue;
        if (f->once)
            fs->spent[i] = 1;
        vc->lab->active |= 1u << i;
        switch (f->kind) {
        case KV_FAULT_TEAR_BEFORE:
            return KV_ERR_PCSC_REMOVED;
        case KV_FAULT_TEAR_AFTER:
            *tear_after = 1;
            break;
        case KV_FAULT_DELAY:
            sleep_ms(f->n);
            break;
        case KV_FAULT_ATC_ADD:
        case KV_FAULT_ATC_SET: {
            long atc = f->kind == KV_FAULT_ATC_SET ? f->n : (long)vc->atc + f->n;
            vc->atc = (unsigned)(atc < 0 ? 0 : atc > 0xFFFF ? 0xFFFF : atc);
            if (kv_vcard_state_save(vc) != 0) {
                a->len = 0;
                a->sw = SW_MEMORY_FAILURE;
                skip = 1;
            }
            break;
        }
        case KV_FAULT_SW:
            a->len = 0;
            a->sw = f->sw;
            skip = 1;
            break;
        default:
            break; /* rewrites: after the command */
        }
    }
    return skip;
}

/* Flip bit `bit` (from the MSB of the first byte, modulo the length) of len bytes at p. */
static void flip(uint8_t *p, size_t len, unsigned bit)
{
    if (len == 0)
        return;
    bit %= (unsigned)(8 * len);
    p[bit / 8] ^= (uint8_t)(0x80u >> (bit % 8));
}

static void skew(uint8_t *p, long n)
{
    unsigned v = ((unsigned)p[0] << 8 | p[1]) + (unsigned)(n + 65536);
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

typedef struct {
    const kv_vcard_fault *f;
    uint8_t ins;
    int done; /* dup: the first occurrence was repeated */
} rewriter;

/* Change a primitive value in place as the fault asks. */
static void change_value(const rewriter *x, uint32_t tag, uint8_t *v, size_t len)
{
    const kv_vcard_fault *f = x->f;
    switch (f->kind) {
    case KV_FAULT_CORRUPT_AC:
        if (tag == 0x9F26)
            flip(v, len, f->bit);
        else if (tag == 0x80 && x->ins == 0xAE && len >= 11) /* CID ATC AC IAD */
            flip(v + 3, 8, f->bit);
        break;
    case KV_FAULT_CORRUPT_SDAD:
        if (tag == 0x9F4B || (tag == 0x80 && x->ins == 0x88))
            flip(v, len, f->bit);
        break;
    case KV_FAULT_ATC_SKEW:
        if (tag == 0x9F36 && len == 2)
            skew(v, f->n);
        else if (tag == 0x80 && x->ins == 0xAE && len >= 3)
            skew(v + 1, f->n);
        break;
    default:
        break;
    }
}

/* Copy len bytes of TLV objects at p into w with the fault applied; 0 or < 0. */
static int rewrite(rewriter *x, const uint8_t *p, size_t len, kv_tlv_writer *w, unsigned depth)
{
    uint8_t v[KV_VCARD_DATA_MAX];
    kv_cursor c;
    kv_tlv t;
    int r;

    kv_cursor_init(&c, p, len);
    while ((r = kv_tlv_next(&c, &t)) == 1) {
        if (x->f->kind == KV_FAULT_DROP_TAG && t.tag == x->f->tag)
            continue;
        if (x->f->kind == KV_FAULT_DUP_TAG && t.tag == x->f->tag && !x->done) {
            kv_tlv_put_raw(w, t.raw, t.raw_len);
            kv_tlv_put_raw(w, t.raw, t.raw_len);
            x->done = 1;
            continue;
        }
        if (t.constructed && depth + 1 < KV_TLV_MAX_DEPTH) {
            kv_tlv_begin(w, t.tag);
            if ((r = rewrite(x, t.value, t.len, w, depth + 1)) != 0)
                return r;
            kv_tlv_end(w);
            continue;
        }
        if (!t.constructed && t.len > 0 && t.len <= sizeof(v)) {
            memcpy(v, t.value, t.len);
            change_value(x, t.tag, v, t.len);
            kv_tlv_put(w, t.tag, v, t.len);
            continue;
        }
        kv_tlv_put_raw(w, t.raw, t.raw_len);
    }
    return r;
}

/* see card_fault.h */
void kv_vcard_fault_after(kv_vcard *vc, const kv_capdu *c, kv_vcard_answer *a)
{
    const kv_vcard_faults *fs;

    if (vc->lab == NULL || vc->lab->active == 0 || a->len == 0)
        return;
    fs = &vc->lab->faults;
    for (size_t i = 0; i < fs->n; i++) {
        const kv_vcard_fault *f = &fs->f[i];
        uint8_t out[KV_VCARD_DATA_MAX];
        rewriter x = {f, c->ins, 0};
        kv_tlv_writer w;

        if (!(vc->lab->active & (1u << i)))
            continue;
        if (f->kind != KV_FAULT_CORRUPT_AC && f->kind != KV_FAULT_CORRUPT_SDAD &&
            f->kind != KV_FAULT_ATC_SKEW && f->kind != KV_FAULT_DROP_TAG &&
            f->kind != KV_FAULT_DUP_TAG)
            continue;
        kv_tlv_writer_init(&w, out, sizeof(out));
        if (rewrite(&x, a->data, a->len, &w, 0) != 0 || kv_tlv_finish(&w) != 0)
            continue; /* not BER-TLV, or a duplicate that does not fit: unchanged */
        memcpy(a->data, out, w.len);
        a->len = w.len;
    }
}

/* see jdec.h */
#include "src/base/jdec.h"
#include "src/base/err.h"
#include "src/base/hex.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kv_jdec {
    kv_jdec_error *e;
    void *ctx;
    char path[KV_JDEC_PATH_MAX];
    size_t plen;
    int depth;
    const kv_jdec_field *row; /* the custom row being decoded */
};

static const char *const code_names[KV_JDEC_CODE_COUNT] = {
    "ok",         "syntax",       "too_large",  "too_deep",      "missing",
    "wrong_type", "out_of_range", "bad_format", "unknown_field", "unknown_value",
    "too_many",   "too_few",      "duplicate",  "conflict",      "nomem",
};

const char *kv_jdec_code_name(kv_jdec_code c)
{
    if ((int)c < 0 || c >= KV_JDEC_CODE_COUNT)
        return "unknown";
    return code_names[c];
}

void kv_jdec_format(const kv_jdec_error *e, char *buf, size_t cap)
{
    if (buf == NULL || cap == 0)
        return;
    if (e->path[0] != '\0')
        snprintf(buf, cap, "%s: %s", e->path, e->msg);
    else
        snprintf(buf, cap, "%s", e->msg);
}

void kv_jdec_printable(const char *s, char out[48])
{
    size_t i = 0;
    for (; s[i] != '\0' && i < 40; i++)
        out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (s[i] != '\0' && i >= 40)
        out[i - 3] = out[i - 2] = out[i - 1] = '.';
    out[i] = '\0';
}

int kv_jdec_text_ok(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned b0 = *p++;
        uint32_t cp;
        int extra;
        if (b0 < 0x20 || b0 == 0x7f)
            return 0;
        if (b0 < 0x80)
            continue;
        if (b0 >= 0xc2 && b0 <= 0xdf) {
            extra = 1;
            cp = b0 & 0x1f;
        } else if (b0 >= 0xe0 && b0 <= 0xef) {
            extra = 2;
            cp = b0 & 0x0f;
        } else if (b0 >= 0xf0 && b0 <= 0xf4) {
            extra = 3;
            cp = b0 & 0x07;
        } else {
            return 0;
        }
        for (int i = 0; i < extra; i++) {
            if (p == end || (*p & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (*p++ & 0x3f);
        }
        if ((extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return 0; /* overlong or beyond Unicode */
        if ((cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff)
            return 0;
        if (cp >= 0x80 && cp <= 0x9f)
            return 0; /* C1 controls */
    }
    return 1;
}

/* ---- path and failures ---------------------------------------------------- */

/* Append ".name" (or "name" at the top) or "[i]"; returns the old length. */
static size_t push_name(kv_jdec *d, const char *name)
{
    size_t old = d->plen;
    int n = snprintf(d->path + d->plen, sizeof(d->path) - d->plen, "%s%s", d->plen > 0 ? "." : "",
                     name);
    if (n > 0)
        d->plen +=
            (size_t)n < sizeof(d->path) - d->plen ? (size_t)n : sizeof(d->path) - 1 - d->plen;
    return old;
}

static size_t push_index(kv_jdec *d, size_t i)
{
    size_t old = d->plen;
    int n = snprintf(d->path + d->plen, sizeof(d->path) - d->plen, "[%zu]", i);
    if (n > 0)
        d->plen +=
            (size_t)n < sizeof(d->path) - d->plen ? (size_t)n : sizeof(d->path) - 1 - d->plen;
    return old;
}

static void pop(kv_jdec *d, size_t old)
{
    d->plen = old;
    d->path[old] = '\0';
}

static int vfail(kv_jdec *d, kv_jdec_code code, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static int vfail(kv_jdec *d, kv_jdec_code code, const char *fmt, va_list ap)
{
    kv_jdec_error *e = d->e;
    e->code = code;
    memcpy(e->path, d->path, d->plen + 1);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    return code == KV_JDEC_NOMEM ? KV_ERR_NOMEM : KV_ERR_JSON;
}

int kv_jdec_fail(kv_jdec *d, kv_jdec_code code, const char *fmt, ...)
{
    va_list ap;
    int r;
    va_start(ap, fmt);
    r = vfail(d, code, fmt, ap);
    va_end(ap);
    return r;
}

int kv_jdec_fail_at(kv_jdec *d, const char *member, kv_jdec_code code, const char *fmt, ...)
{
    va_list ap;
    size_t old = push_name(d, member);
    int r;
    va_start(ap, fmt);
    r = vfail(d, code, fmt, ap);
    va_end(ap);
    pop(d, old);
    return r;
}

/* The row's own wording when it has one. */
static int bad(kv_jdec *d, const kv_jdec_field *f, kv_jdec_code code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int bad(kv_jdec *d, const kv_jdec_field *f, kv_jdec_code code, const char *fmt, ...)
{
    va_list ap;
    int r;
    if (f->expect != NULL)
        return kv_jdec_fail(d, code, "%s", f->expect);
    va_start(ap, fmt);
    r = vfail(d, code, fmt, ap);
    va_end(ap);
    return r;
}

kv_jdec_error *kv_jdec_err(kv_jdec *d)
{
    return d->e;
}

const kv_jdec_field *kv_jdec_row(const kv_jdec *d)
{
    return d->row;
}

const char *kv_jdec_path(const kv_jdec *d)
{
    return d->path;
}

/* ---- scalar members ---------------------------------------------------------- */

static void *at(void *obj, size_t off)
{
    return (char *)obj + off;
}

static int get_string(kv_jdec *d, const kv_jdec_field *f, const json_t *v, const char **s,
                      size_t *n)
{
    if (json_is_null(v))
        return bad(d, f, KV_JDEC_WRONG_TYPE, "must be a string, not null");
    if (!json_is_string(v))
        return bad(d, f, KV_JDEC_WRONG_TYPE, "must be a string");
    *s = json_string_value(v);
    *n = json_string_length(v);
    if (memchr(*s, '\0', *n) != NULL)
        return bad(d, f, KV_JDEC_BAD_FORMAT, "contains a NUL character");
    return 0;
}

static int dec_string(kv_jdec *d, const kv_jdec_field *f, const json_t *v, void *dst)
{
    const char *s;
    size_t n;
    int r;
    if ((r = get_string(d, f, v, &s, &n)) != 0)
        return r;
    if (n == 0 && f->min > 0)
        return bad(d, f, KV_JDEC_OUT_OF_RANGE, "must not be empty");
    if ((int64_t)n > f->max || n >= f->cap)
        return bad(d, f, KV_JDEC_OUT_OF_RANGE, "longer than %lld bytes",
                   (long long)(f->max < (int64_t)f->cap ? f->max : (int64_t)f->cap - 1));
    if ((int64_t)n < f->min) {
        if (f->min == f->max)
            return bad(d, f, KV_JDEC_OUT_OF_RANGE, "length must be %lld", (long long)f->min);
        return bad(d, f, KV_JDEC_OUT_OF_RANGE, "length must be %lld..%lld", (long long)f->min,
                   (long long)f->max);
    }
    if (f->type == KV_JT_DIGITS && !kv_is_digits(s, (size_t)f->min, (size_t)f->max)) {
        if (f->min == f->max)
            return bad(d, f, KV_JDEC_BAD_FORMAT, "must be %lld decimal digits", (long long)f->min);
        return bad(d, f, KV_JDEC_BAD_FORMAT, "must be %lld..%lld decimal digits", (long long)f->min,
                   (long long)f->max);
    }
    if ((f->flags & KV_JF_TEXT) && !kv_jdec_text_ok(s, n))
        return bad(d, f, KV_JDEC_BAD_FORMAT, "contains a control character or invalid text");
    memcpy(dst, s, n);
    ((char *)dst)[n] = '\0';
    return 0;
}

static int dec_hex(kv_jdec *d, const kv_jdec_field *f, const json_t *v, void *dst, void *obj)
{
    const char *s;
    size_t n;
    int r, got;
    if ((r = get_string(d, f, v, &s, &n)) != 0)
        return r;
    if (!(f->flags & KV_JF_HEX_SPACES) && memchr(s, ' ', n) != NULL)
        return bad(d, f, KV_JDEC_BAD_FORMAT, "must be hex digits without spaces");
    got = kv_hex_decode(s, dst, f->cap);
    if (got == KV_ERR_FORMAT)
        return bad(d, f, KV_JDEC_BAD_FORMAT, "must be hex (an even number of 0-9 A-F)");
    if (got < 0 || got < f->min || got > f->max) {
        if (f->min == f->max)
            return bad(d, f, KV_JDEC_OUT_OF_RANGE, "must be %lld bytes (%lld hex digits)",
                       (long long)f->min, 2 * (long long)f->min);
        return bad(d, f, KV_JDEC_OUT_OF_RANGE, "must be %lld..%lld bytes of hex", (long long)f->min,
                   (long long)f->max);
    }
    if (f->len_off != KV_JDEC_NONE)
        *(size_t *)at(obj, f->len_off) = (size_t)got;
    return 0;
}

static void store_int(const kv_jdec_field *f, void *dst, int64_t x)
{
    if (f->cap == sizeof(int))
        *(int *)dst = (int)x;
    else if (f->cap == 1)
        *(uint8_t *)dst = (uint8_t)x;
    else
        *(int64_t *)dst = x;
}

static int dec_int(kv_jdec *d, const kv_jdec_field *f, const json_t *v, void *dst)
{
    json_int_t x;
    if (!json_is_integer(v)) {
        if (f->type == KV_JT_AMOUNT)
            return bad(d, f, KV_JDEC_WRONG_TYPE,
                       "must be an integer amount in minor units, 0 to %lld", (long long)f->max);
        return bad(d, f, KV_JDEC_WRONG_TYPE, "must be an integer");
    }
    x = json_integer_value(v);
    if (x < f->min || x > f->max) {
        if (f->type == KV_JT_AMOUNT)
            return bad(d, f, KV_JDEC_OUT_OF_RANGE,
                       "must be an integer amount in minor units, 0 to %lld", (long long)f->max);
        return bad(d, f, KV_JDEC_OUT_OF_RANGE, "must be %lld..%lld", (long long)f->min,
                   (long long)f->max);
    }
    store_int(f, dst, (int64_t)x);
    return 0;
}

static int lookup(const char *const *names, const json_t *v)
{
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v))
        return -1;
    for (int i = 0; names[i] != NULL; i++)
        if (strcmp(names[i], s) == 0)
            return i;
    return -1;
}

static int dec_enum(kv_jdec *d, const kv_jdec_field *f, const json_t *v, void *dst)
{
    char val[48];
    int i;
    if (!json_is_string(v))
        return kv_jdec_fail(d, KV_JDEC_WRONG_TYPE, "must be a string");
    if ((i = lookup(f->names, v)) < 0) {
        kv_jdec_printable(json_string_value(v), val);
        return kv_jdec_fail(d, KV_JDEC_UNKNOWN_VALUE, "unknown %s \"%s\"",
                            f->expect != NULL ? f->expect : "value", val);
    }
    *(int *)dst = i;
    return 0;
}

static int dec_enums(kv_jdec *d, const kv_jdec_field *f, const json_t *v, void *dst)
{
    unsigned bits = 0;
    size_t i, old;
    json_t *x;
    char val[48];
    if (!json_is_array(v))
        return kv_jdec_fail(d, KV_JDEC_WRONG_TYPE, "must be an array of %ss",
                            f->expect != NULL ? f->expect : "string");
    if ((int64_t)json_array_size(v) > f->max)
        return kv_jdec_fail(d, KV_JDEC_TOO_MANY, "at most %lld values", (long long)f->max);
    json_array_foreach(v, i, x)
    {
        int k;
        old = push_index(d, i);
        if (!json_is_string(x)) {
            kv_jdec_fail(d, KV_JDEC_WRONG_TYPE, "must be a string");
            pop(d, old);
            return KV_ERR_JSON;
        }
        if ((k = lookup(f->names, x)) < 0 || k >= 32) {
            kv_jdec_printable(json_string_value(x), val);
            kv_jdec_fail(d, KV_JDEC_UNKNOWN_VALUE, "unknown %s \"%s\"",
                         f->expect != NULL ? f->expect : "value", val);
            pop(d, old);
            return KV_ERR_JSON;
        }
        pop(d, old);
        bits |= 1u << k;
    }
    *(unsigned *)dst = bits;
    return 0;
}

static int dec_strings(kv_jdec *d, const kv_jdec_field *f, const json_t *v, void *dst, void *obj)
{
    const char **out = dst;
    size_t i, old;
    json_t *x;
    if (!json_is_array(v))
        return bad(d, f, KV_JDEC_WRONG_TYPE, "must be an array of strings");
    if ((int64_t)json_array_size(v) > f->max)
        return bad(d, f, KV_JDEC_TOO_MANY, "at most %lld strings", (long long)f->max);
    json_array_foreach(v, i, x)
    {
        if (!json_is_string(x) || strlen(json_string_value(x)) != json_string_length(x)) {
            old = push_index(d, i);
            kv_jdec_fail(d, KV_JDEC_WRONG_TYPE, "must be a string");
            pop(d, old);
            return KV_ERR_JSON;
        }
        out[i] = json_string_value(x);
    }
    if (f->len_off != KV_JDEC_NONE)
        *(size_t *)at(obj, f->len_off) = json_array_size(v);
    return 0;
}

/* ---- objects and arrays -------------------------------------------------------- */

static int dec_object(kv_jdec *d, const json_t *o, const kv_jdec_table *t, void *obj);

static int dec_array(kv_jdec *d, const kv_jdec_field *f, const json_t *v, void *dst, void *obj)
{
    size_t n, i, old;
    char *base;
    int r;
    if (!json_is_array(v))
        return bad(d, f, KV_JDEC_WRONG_TYPE, "must be an array");
    n = json_array_size(v);
    if ((int64_t)n > f->max)
        return kv_jdec_fail(d, KV_JDEC_TOO_MANY, "at most %lld elements", (long long)f->max);
    if ((int64_t)n < f->min)
        return kv_jdec_fail(d, KV_JDEC_TOO_FEW, "at least %lld elements", (long long)f->min);
    if (f->flags & KV_JF_ALLOC) {
        base = NULL;
        if (n > 0 && (base = calloc(n, f->stride)) == NULL)
            return kv_jdec_fail(d, KV_JDEC_NOMEM, "out of memory");
        *(void **)dst = base;
    } else {
        base = dst;
    }
    for (i = 0; i < n; i++) {
        void *el = base + i * f->stride;
        if (f->sub->init != NULL)
            f->sub->init(el);
        old = push_index(d, i);
        r = dec_object(d, json_array_get(v, i), f->sub, el);
        pop(d, old);
        if (r != 0)
            return r;
        if (f->len_off != KV_JDEC_NONE)
            *(size_t *)at(obj, f->len_off) = i + 1;
    }
    if (f->len_off != KV_JDEC_NONE)
        *(size_t *)at(obj, f->len_off) = n;
    return 0;
}

static int dec_value(kv_jdec *d, const kv_jdec_field *f, const json_t *v, void *obj)
{
    void *dst = obj != NULL ? at(obj, f->off) : NULL; /* NULL: a table of KV_JT_ANY rows */
    switch (f->type) {
    case KV_JT_STRING:
    case KV_JT_DIGITS:
        return dec_string(d, f, v, dst);
    case KV_JT_HEX:
        return dec_hex(d, f, v, dst, obj);
    case KV_JT_INT:
    case KV_JT_AMOUNT:
        return dec_int(d, f, v, dst);
    case KV_JT_BOOL:
        if (!json_is_boolean(v))
            return bad(d, f, KV_JDEC_WRONG_TYPE, "must be true or false");
        if (f->cap == sizeof(bool))
            *(bool *)dst = json_is_true(v);
        else
            *(int *)dst = json_is_true(v);
        return 0;
    case KV_JT_ENUM:
        return dec_enum(d, f, v, dst);
    case KV_JT_ENUMS:
        return dec_enums(d, f, v, dst);
    case KV_JT_OBJECT:
        if (!json_is_object(v))
            return bad(d, f, KV_JDEC_WRONG_TYPE, "must be an object");
        return dec_object(d, v, f->sub, dst);
    case KV_JT_ARRAY:
        return dec_array(d, f, v, dst, obj);
    case KV_JT_STRINGS:
        return dec_strings(d, f, v, dst, obj);
    case KV_JT_RAW:
        *(const json_t **)dst = v;
        return 0;
    case KV_JT_ANY:
        return 0;
    case KV_JT_CUSTOM: {
        const kv_jdec_field *up = d->row;
        int r;
        d->row = f;
        r = f->fn(d, v, dst, obj, d->ctx);
        d->row = up;
        return r;
    }
    }
    return kv_jdec_fail(d, KV_JDEC_WRONG_TYPE, "unsupported member type");
}

static void set_present(const kv_jdec_field *f, void *obj, int yes)
{
    if (f->has_off == KV_JDEC_NONE)
        return;
    if (f->flags & KV_JF_PRESENT_BOOL)
        *(bool *)at(obj, f->has_off) = yes != 0;
    else
        *(int *)at(obj, f->has_off) = yes;
}

static int dec_object(kv_jdec *d, const json_t *o, const kv_jdec_table *t, void *obj)
{
    const char *key;
    json_t *v;
    size_t i, old;
    int r;

    if (!json_is_object(o))
        return kv_jdec_fail(d, KV_JDEC_WRONG_TYPE, "must be an object");
    if (d->depth >= KV_JDEC_MAX_DEPTH)
        return kv_jdec_fail(d, KV_JDEC_TOO_DEEP, "nested deeper than %d", KV_JDEC_MAX_DEPTH);
    d->depth++;
    if (!(t->flags & KV_JDEC_ALLOW_UNKNOWN)) {
        json_object_foreach((json_t *)o, key, v)
        {
            for (i = 0; i < t->n && strcmp(t->fields[i].name, key) != 0; i++)
                ;
            if (i == t->n) {
                kv_jdec_error *e = d->e;
                e->parent_len = d->plen;
                kv_jdec_printable(key, e->key);
                old = push_name(d, e->key);
                r = kv_jdec_fail(d, KV_JDEC_UNKNOWN_FIELD, "unknown field");
                pop(d, old);
                d->depth--;
                return r;
            }
        }
    }
    for (i = 0; i < t->n; i++) {
        const kv_jdec_field *f = &t->fields[i];
        v = json_object_get(o, f->name);
        if (v != NULL && json_is_null(v) && (f->flags & KV_JF_NULL_OK))
            v = NULL;
        set_present(f, obj, v != NULL);
        if (v == NULL) {
            if (f->flags & KV_JF_REQUIRED) {
                old = push_name(d, f->name);
                r = kv_jdec_fail(d, KV_JDEC_MISSING, "missing required field");
                pop(d, old);
                d->depth--;
                return r;
            }
            continue;
        }
        old = push_name(d, f->name);
        r = dec_value(d, f, v, obj);
        pop(d, old);
        if (r != 0) {
            set_present(f, obj, 0);
            d->depth--;
            return r;
        }
    }
    r = t->check != NULL ? t->check(d, o, obj, d->ctx) : 0;
    d->depth--;
    return r;
}

int kv_jdec_sub(kv_jdec *d, const json_t *o, const kv_jdec_table *t, void *obj)
{
    return dec_object(d, o, t, obj);
}

/* ---- entry points ------------------------------------------------------------------ */

static void clear(kv_jdec_error *e)
{
    memset(e, 0, sizeof(*e));
}

int kv_jdec_parse(const char *text, size_t len, size_t max_len, json_t **out, kv_jdec_error *e)
{
    json_error_t je;
    clear(e);
    *out = NULL;
    if (max_len != 0 && len > max_len) {
        e->code = KV_JDEC_TOO_LARGE;
        snprintf(e->msg, sizeof(e->msg), "larger than %zu bytes", max_len);
        return KV_ERR_JSON;
    }
    *out =
        json_loadb(text != NULL ? text : "", text != NULL ? len : 0, JSON_REJECT_DUPLICATES, &je);
    if (*out == NULL) {
        e->code = KV_JDEC_SYNTAX;
        e->line = je.line;
        e->column = je.column;
        snprintf(e->msg, sizeof(e->msg), "%s", je.text);
        return KV_ERR_JSON;
    }
    return 0;
}

int kv_jdec_decode(const json_t *j, const kv_jdec_table *t, void *dst, void *ctx, kv_jdec_error *e)
{
    kv_jdec d;
    int r;
    clear(e);
    memset(&d, 0, sizeof(d));
    d.e = e;
    d.ctx = ctx;
    if (j == NULL || !json_is_object(j)) {
        snprintf(e->path, sizeof(e->path), "%s", t->name != NULL ? t->name : "");
        e->code = KV_JDEC_WRONG_TYPE;
        snprintf(e->msg, sizeof(e->msg), "must be a JSON object");
        return KV_ERR_JSON;
    }
    r = dec_object(&d, j, t, dst);
    if (r != 0 && e->code == KV_JDEC_OK)
        e->code = r == KV_ERR_NOMEM ? KV_JDEC_NOMEM : KV_JDEC_BAD_FORMAT;
    return r;
}

int kv_jdec_text(const char *text, size_t len, size_t max_len, const kv_jdec_table *t, void *dst,
                 void *ctx, kv_jdec_error *e)
{
    json_t *j;
    int r;
    if ((r = kv_jdec_parse(text, len, max_len, &j, e)) != 0)
        return r;
    r = kv_jdec_decode(j, t, dst, ctx, e);
    json_decref(j);
    return r;
}

/* see jsonw.h */
#include "src/base/jsonw.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kv_jsonw_init(kv_jsonw *w)
{
    memset(w, 0, sizeof(*w));
}

void kv_jsonw_free(kv_jsonw *w)
{
    free(w->buf);
    memset(w, 0, sizeof(*w));
}

static void put(kv_jsonw *w, const char *s, size_t n)
{
    if (w->failed)
        return;
    if (w->cap - w->len <= n) {
        size_t cap = w->cap ? w->cap : 1024;
        while (cap - w->len <= n)
            cap *= 2;
        char *b = realloc(w->buf, cap);
        if (b == NULL) {
            w->failed = 1;
            return;
        }
        w->buf = b;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

/* Before a value: a comma unless it is the first at its level or follows a key. */
static void before_value(kv_jsonw *w)
{
    if (w->after_key) {
        w->after_key = 0;
        return;
    }
    if (w->count[w->depth]++ > 0)
        put(w, ",", 1);
}

static void begin(kv_jsonw *w, char open_char, char close_char)
{
    before_value(w);
    put(w, &open_char, 1);
    if (w->depth + 1 >= KV_JSONW_DEPTH) {
        w->failed = 1;
        return;
    }
    w->depth++;
    w->count[w->depth] = 0;
    w->close[w->depth] = close_char;
}

void kv_jsonw_object(kv_jsonw *w)
{
    begin(w, '{', '}');
}

void kv_jsonw_array(kv_jsonw *w)
{
    begin(w, '[', ']');
}

void kv_jsonw_end(kv_jsonw *w)
{
    if (w->failed || w->depth == 0 || w->after_key) {
        w->failed = 1;
        return;
    }
    put(w, &w->close[w->depth], 1);
    w->depth--;
}

static void escaped(kv_jsonw *w, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    const char *run = s;
    put(w, "\"", 1);
    for (const char *p = s; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        const char *e = NULL;
        char u[7];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(w, run, (size_t)(p - run));
        run = p + 1;
        switch (c) {
        case '"':
            e = "\\\"";
            break;
        case '\\':
            e = "\\\\";
            break;
        case '\b':
            e = "\\b";
            break;
        case '\f':
            e = "\\f";
            break;
        case '\n':
            e = "\\n";
            break;
        case '\r':
            e = "\\r";
            break;
        case '\t':
            e = "\\t";
            break;
        default:
            memcpy(u, "\\u00", 4);
            u[4] = hex[c >> 4];
            u[5] = hex[c & 15];
            u[6] = '\0';
            e = u;
            break;
        }
        put(w, e, strlen(e));
    }
    put(w, run, strlen(run));
    put(w, "\"", 1);
}

void kv_jsonw_key(kv_jsonw *w, const char *key)
{
    if (w->count[w->depth]++ > 0)
        put(w, ",", 1);
    escaped(w, key);
    put(w, ":", 1);
    w->after_key = 1;
}

void kv_jsonw_str(kv_jsonw *w, const char *s)
{
    if (s == NULL) {
        kv_jsonw_null(w);
        return;
    }
    before_value(w);
    escaped(w, s);
}

void kv_jsonw_int(kv_jsonw *w, int64_t v)
{
    char t[24];
    int n = snprintf(t, sizeof(t), "%" PRId64, v);
    before_value(w);
    put(w, t, (size_t)n);
}

void kv_jsonw_bool(kv_jsonw *w, int v)
{
    before_value(w);
    if (v)
        put(w, "true", 4);
    else
        put(w, "false", 5);
}

void kv_jsonw_null(kv_jsonw *w)
{
    before_value(w);
    put(w, "null", 4);
}

void kv_jsonw_raw(kv_jsonw *w, const char *json, size_t len)
{
    before_value(w);
    put(w, json, len);
}

void kv_jsonw_members(kv_jsonw *w, const char *members, size_t len)
{
    if (len == 0)
        return;
    if (w->count[w->depth]++ > 0)
        put(w, ",", 1);
    put(w, members, len);
}

void kv_jsonw_kstr(kv_jsonw *w, const char *key, const char *s)
{
    kv_jsonw_key(w, key);
    kv_jsonw_str(w, s);
}

void kv_jsonw_kint(kv_jsonw *w, const char *key, int64_t v)
{
    kv_jsonw_key(w, key);
    kv_jsonw_int(w, v);
}

void kv_jsonw_kbool(kv_jsonw *w, const char *key, int v)
{
    kv_jsonw_key(w, key);
    kv_jsonw_bool(w, v);
}

char *kv_jsonw_finish(kv_jsonw *w, size_t *len)
{
    char *out = NULL;
    if (!w->failed && w->depth == 0 && w->buf != NULL) {
        out = w->buf;
        if (len != NULL)
            *len = w->len;
        w->buf = NULL;
    }
    kv_jsonw_free(w);
    return out;
}

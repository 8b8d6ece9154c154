/*
 * A small JSON text writer for the hot path (evidence records and responses
 * are written for every decision): compact output with the separators and
 * string escapes jansson's JSON_COMPACT uses, so that a record parsed by
 * jansson and dumped with JSON_COMPACT | JSON_PRESERVE_ORDER gives back the
 * same bytes. Strings must be valid UTF-8 (they come from jansson-parsed
 * input or from kortvagt itself).
 *
 * A kv_jsonw is caller-allocated (kv_jsonw_init / kv_jsonw_free). Allocation
 * failure is sticky: every later call does nothing and kv_jsonw_finish
 * returns NULL.
 */
#ifndef KV_BASE_JSONW_H
#define KV_BASE_JSONW_H

#include <stddef.h>
#include <stdint.h>

#define KV_JSONW_DEPTH 16

typedef struct {
    char *buf;
    size_t len, cap;
    int failed;
    int depth;
    int count[KV_JSONW_DEPTH];  /* values written at each level */
    char close[KV_JSONW_DEPTH]; /* '}' or ']' closing each level */
    int after_key;
} kv_jsonw;

void kv_jsonw_init(kv_jsonw *w);
/* Free the buffer (unless taken by kv_jsonw_finish). */
void kv_jsonw_free(kv_jsonw *w);

void kv_jsonw_object(kv_jsonw *w); /* { */
void kv_jsonw_array(kv_jsonw *w);  /* [ */
void kv_jsonw_end(kv_jsonw *w);    /* } or ] of the innermost open one */
void kv_jsonw_key(kv_jsonw *w, const char *key);
void kv_jsonw_str(kv_jsonw *w, const char *s); /* s NULL: null */
void kv_jsonw_int(kv_jsonw *w, int64_t v);
void kv_jsonw_bool(kv_jsonw *w, int v);
void kv_jsonw_null(kv_jsonw *w);
/* A value that is already JSON text (len bytes). */
void kv_jsonw_raw(kv_jsonw *w, const char *json, size_t len);

/*
 * Members already written as text ("\"a\":1,\"b\":2", len bytes) into the
 * current object, with a comma before them when needed. len 0 adds nothing.
 */
void kv_jsonw_members(kv_jsonw *w, const char *members, size_t len);

/* Shorthands: key then value. */
void kv_jsonw_kstr(kv_jsonw *w, const char *key, const char *s);
void kv_jsonw_kint(kv_jsonw *w, const char *key, int64_t v);
void kv_jsonw_kbool(kv_jsonw *w, const char *key, int v);

/*
 * The text (NUL-terminated, malloc'ed, the caller frees it) and its length,
 * or NULL after an allocation failure or with objects left open. w is empty
 * afterwards.
 */
char *kv_jsonw_finish(kv_jsonw *w, size_t *len);

#endif

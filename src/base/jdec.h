/*
 * The one strict JSON decoder of kortvagt: a const table per JSON object says
 * which members exist, their type, whether they are required, their bounds and
 * where the decoded value goes (an offset into the caller's struct, or a
 * callback). Every input that reaches a policy module or the daemon is decoded
 * here: the authorization request, the liability case, the virtual card
 * profile, the CA key file and the daemon bodies.
 *
 * Strict by default: a member that is not in the table is an error
 * (KV_JDEC_UNKNOWN_FIELD) unless the table allows unknown members; duplicate
 * keys are a syntax error when the text is parsed here. A failure carries a
 * typed code and the failing path as text, e.g. "transactions[2].amount", plus
 * a short message that never holds the value of a secret field.
 *
 * Bounds: text at most the max_len given to the parser, nesting of decoded
 * objects at most KV_JDEC_MAX_DEPTH, arrays at most the row's max count. The
 * decoder itself allocates nothing, except for an array row with
 * KV_JF_ALLOC, whose elements the caller frees with free().
 *
 * Values are read from a jansson tree (json_t); strings are copied into the
 * caller's fixed-size buffers, so the tree may be freed after the decode
 * (except for KV_JT_RAW and KV_JT_STRINGS, which borrow from it).
 */
#ifndef KV_BASE_JDEC_H
#define KV_BASE_JDEC_H

#include <jansson.h>

#include <stddef.h>
#include <stdint.h>

#define KV_JDEC_MAX_DEPTH 16
#define KV_JDEC_PATH_MAX 160
#define KV_JDEC_MSG_MAX 200
#define KV_JDEC_NONE ((size_t)-1) /* no length / presence destination */

/* Why a decode failed. */
typedef enum {
    KV_JDEC_OK = 0,
    KV_JDEC_SYNTAX,        /* not JSON text (or a duplicate key) */
    KV_JDEC_TOO_LARGE,     /* the text is longer than allowed */
    KV_JDEC_TOO_DEEP,      /* nesting deeper than KV_JDEC_MAX_DEPTH */
    KV_JDEC_MISSING,       /* a required member is absent */
    KV_JDEC_WRONG_TYPE,    /* string where a number belongs, ... */
    KV_JDEC_OUT_OF_RANGE,  /* a number or length outside its bounds */
    KV_JDEC_BAD_FORMAT,    /* right type, wrong shape: not hex, not digits, not a date */
    KV_JDEC_UNKNOWN_FIELD, /* a member the table does not know */
    KV_JDEC_UNKNOWN_VALUE, /* an enum string outside its list */
    KV_JDEC_TOO_MANY,      /* an array longer than its maximum */
    KV_JDEC_TOO_FEW,       /* an array shorter than its minimum */
    KV_JDEC_DUPLICATE,     /* the same id twice (found by a table's check) */
    KV_JDEC_CONFLICT,      /* members that may not go together, or must */
    KV_JDEC_NOMEM,
    KV_JDEC_CODE_COUNT
} kv_jdec_code;

/* Member types. */
typedef enum {
    KV_JT_STRING,  /* char[cap]; length min..max bytes, no NUL inside */
    KV_JT_DIGITS,  /* char[cap]; min..max decimal digits */
    KV_JT_HEX,     /* uint8_t[cap]; hex text of min..max bytes; length to len_off */
    KV_JT_INT,     /* integer min..max into int64_t, int or uint8_t (by cap) */
    KV_JT_AMOUNT,  /* a decimal amount in minor units: integer 0..max, as KV_JT_INT */
    KV_JT_BOOL,    /* true/false into int or bool (by cap) */
    KV_JT_ENUM,    /* one of names (NULL-terminated) into int: its index */
    KV_JT_ENUMS,   /* array of names (at most max) into unsigned: bit per index */
    KV_JT_OBJECT,  /* nested object decoded by sub into dst + off */
    KV_JT_ARRAY,   /* array of min..max objects decoded by sub, elements stride bytes apart;
                      count (size_t) to len_off */
    KV_JT_STRINGS, /* array of at most max strings: const char * each, borrowed from the tree;
                      count (size_t) to len_off */
    KV_JT_RAW,     /* any JSON value: const json_t * borrowed from the tree */
    KV_JT_CUSTOM,  /* fn decodes the value (null included unless KV_JF_NULL_OK) */
    KV_JT_ANY,     /* any JSON value, not stored (the caller reads it from the tree) */
} kv_jdec_type;

/* Row flags. */
enum {
    KV_JF_REQUIRED = 1u << 0,
    KV_JF_NULL_OK = 1u << 1,     /* null counts as absent */
    KV_JF_TEXT = 1u << 2,        /* string: valid UTF-8 without control characters */
    KV_JF_HEX_SPACES = 1u << 3,  /* hex: spaces between digits allowed */
    KV_JF_ALLOC = 1u << 4,       /* array: dst + off is a pointer; elements calloc'ed */
    KV_JF_PRESENT_BOOL = 1u << 5 /* has_off names a bool, not an int */
};

typedef struct kv_jdec kv_jdec; /* the decoder's state, passed to callbacks */
typedef struct kv_jdec_table kv_jdec_table;

/*
 * A custom member: v is the value (json null only when the row has no
 * KV_JF_NULL_OK), field points at dst + off, obj at the enclosing struct.
 * Return 0 or what kv_jdec_fail returned.
 */
typedef int (*kv_jdec_fn)(kv_jdec *d, const json_t *v, void *field, void *obj, void *ctx);
/* A whole-object check after its members were decoded (cross-field rules). */
typedef int (*kv_jdec_check_fn)(kv_jdec *d, const json_t *o, void *obj, void *ctx);

typedef struct {
    const char *name;
    kv_jdec_type type;
    unsigned flags;
    int64_t min, max;         /* length, byte count, value range or element count */
    size_t off;               /* destination: offsetof into the object's struct */
    size_t cap;               /* destination size (strings, hex; 0 = int64_t for numbers) */
    size_t len_off;           /* hex length / array count (size_t), or KV_JDEC_NONE */
    size_t has_off;           /* presence flag (int, or bool), or KV_JDEC_NONE */
    const char *const *names; /* KV_JT_ENUM / KV_JT_ENUMS */
    const kv_jdec_table *sub; /* KV_JT_OBJECT / KV_JT_ARRAY */
    size_t stride;            /* KV_JT_ARRAY element size */
    kv_jdec_fn fn;            /* KV_JT_CUSTOM */
    const char *expect; /* message for a bad value ("must be ..."); ENUM/ENUMS: the kind of value */
} kv_jdec_field;

enum { KV_JDEC_ALLOW_UNKNOWN = 1u << 0 };

struct kv_jdec_table {
    const char *name; /* the path of a top-level value that is not an object ("request") */
    const kv_jdec_field *fields;
    size_t n;
    unsigned flags;
    void (*init)(void *obj); /* called before an array element is decoded; may be NULL */
    kv_jdec_check_fn check;  /* may be NULL */
};

#define KV_JDEC_TABLE(nm, rows, fl, ini, chk)                                                      \
    {                                                                                              \
        (nm), (rows), sizeof(rows) / sizeof((rows)[0]), (fl), (ini), (chk)                         \
    }

/* A failure: code, path and message (the message does not repeat the path). */
typedef struct {
    kv_jdec_code code;
    char path[KV_JDEC_PATH_MAX]; /* "transactions[2].amount"; "" for the whole text */
    char msg[KV_JDEC_MSG_MAX];
    size_t parent_len; /* KV_JDEC_UNKNOWN_FIELD: length of the object's path in path */
    char key[48];      /* KV_JDEC_UNKNOWN_FIELD: the member name, printable ASCII */
    int line, column;  /* KV_JDEC_SYNTAX */
} kv_jdec_error;

/* Stable snake_case name of a code ("missing", "wrong_type", ...). */
const char *kv_jdec_code_name(kv_jdec_code c);

/* "path: message" (or just the message when the path is empty) into buf. */
void kv_jdec_format(const kv_jdec_error *e, char *buf, size_t cap);

/*
 * Parse text (len bytes; at most max_len, 0 for no limit) into a tree,
 * rejecting duplicate keys. Returns 0 and *out (json_decref it), or KV_ERR_JSON
 * with e->code SYNTAX or TOO_LARGE (line and column set for SYNTAX).
 */
int kv_jdec_parse(const char *text, size_t len, size_t max_len, json_t **out, kv_jdec_error *e);

/*
 * Decode the object j by table t into dst. Returns 0, KV_ERR_JSON (e filled)
 * or KV_ERR_NOMEM (e->code NOMEM). On failure dst may be partly written;
 * arrays allocated with KV_JF_ALLOC are left for the caller to free.
 */
int kv_jdec_decode(const json_t *j, const kv_jdec_table *t, void *dst, void *ctx, kv_jdec_error *e);

/* kv_jdec_parse then kv_jdec_decode. */
int kv_jdec_text(const char *text, size_t len, size_t max_len, const kv_jdec_table *t, void *dst,
                 void *ctx, kv_jdec_error *e);

/* ---- for callbacks ---- */

/* Fail at the current path (the value a kv_jdec_fn got, or the object of a check). */
int kv_jdec_fail(kv_jdec *d, kv_jdec_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Fail at the current path + "." + member. */
int kv_jdec_fail_at(kv_jdec *d, const char *member, kv_jdec_code code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Decode o (an object) by t into obj at the current path (polymorphic members). */
int kv_jdec_sub(kv_jdec *d, const json_t *o, const kv_jdec_table *t, void *obj);
/* The error being built (a check may reword a failure of kv_jdec_sub). */
kv_jdec_error *kv_jdec_err(kv_jdec *d);
/* The row being decoded (in a kv_jdec_fn: its bounds and destinations); NULL elsewhere. */
const kv_jdec_field *kv_jdec_row(const kv_jdec *d);
/* The current path. */
const char *kv_jdec_path(const kv_jdec *d);

/* 1 when s (len bytes) is valid UTF-8 without C0/C1 controls, DEL, surrogates, U+FFFE/F. */
int kv_jdec_text_ok(const char *s, size_t len);
/* A value quoted in a message: printable ASCII, at most 40 bytes (then "..."). */
void kv_jdec_printable(const char *s, char out[48]);

#endif

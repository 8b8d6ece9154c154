/*
 * The strict JSON decoder of src/base/jdec.h: one table describes a small
 * document with every member type; each row of the test table is an input
 * and the code and path (and a piece of the message) it must fail with, or
 * success and what was decoded.
 */
#include "src/base/err.h"
#include "src/base/jdec.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct item {
    char id[9];
    int64_t amount;
    bool flag;
};

struct doc {
    char name[17];
    char pan[20];
    uint8_t key[8];
    size_t key_len;
    int has_key;
    int64_t n;
    int small;
    int color;
    unsigned tags;
    int on;
    char inner_x[5];
    int has_inner;
    struct item items[3];
    size_t n_items;
    const char *words[4];
    size_t n_words;
    const json_t *extra;
    int even;
};

#define NONE KV_JDEC_NONE
static const char *const colors[] = {"red", "green", "blue", NULL};
static const char *const tags[] = {"a", "b", "c", NULL};

static int even(kv_jdec *d, const json_t *v, void *field, void *obj, void *ctx)
{
    (void)obj, (void)ctx;
    if (!json_is_integer(v) || json_integer_value(v) % 2 != 0)
        return kv_jdec_fail(d, KV_JDEC_BAD_FORMAT, "must be an even integer");
    *(int *)field = (int)json_integer_value(v);
    return 0;
}

static void item_init(void *obj)
{
    ((struct item *)obj)->flag = true;
}

static int item_check(kv_jdec *d, const json_t *o, void *obj, void *ctx)
{
    struct item *it = obj;
    (void)o, (void)ctx;
    if (it->amount == 13)
        return kv_jdec_fail_at(d, "amount", KV_JDEC_CONFLICT, "13 is unlucky");
    return 0;
}

static const kv_jdec_field item_rows[] = {
    {"id", KV_JT_STRING, KV_JF_REQUIRED | KV_JF_TEXT, 1, 8, offsetof(struct item, id), 9, NONE,
     NONE, NULL, NULL, 0, NULL, NULL},
    {"amount", KV_JT_AMOUNT, KV_JF_REQUIRED, 0, 1000, offsetof(struct item, amount), 0, NONE, NONE,
     NULL, NULL, 0, NULL, NULL},
    {"flag", KV_JT_BOOL, 0, 0, 0, offsetof(struct item, flag), sizeof(bool), NONE, NONE, NULL, NULL,
     0, NULL, NULL},
};
static const kv_jdec_table item_tbl = KV_JDEC_TABLE(NULL, item_rows, 0, item_init, item_check);

static const kv_jdec_field inner_rows[] = {
    {"x", KV_JT_STRING, KV_JF_REQUIRED, 1, 4, offsetof(struct doc, inner_x), 5, NONE, NONE, NULL,
     NULL, 0, NULL, NULL},
};
static const kv_jdec_table inner_tbl = KV_JDEC_TABLE(NULL, inner_rows, 0, NULL, NULL);

static const kv_jdec_field doc_rows[] = {
    {"name", KV_JT_STRING, KV_JF_REQUIRED, 1, 16, offsetof(struct doc, name), 17, NONE, NONE, NULL,
     NULL, 0, NULL, NULL},
    {"pan", KV_JT_DIGITS, 0, 12, 19, offsetof(struct doc, pan), 20, NONE, NONE, NULL, NULL, 0, NULL,
     NULL},
    {"key", KV_JT_HEX, 0, 2, 8, offsetof(struct doc, key), 8, offsetof(struct doc, key_len),
     offsetof(struct doc, has_key), NULL, NULL, 0, NULL, NULL},
    {"n", KV_JT_INT, 0, -5, 5, offsetof(struct doc, n), 0, NONE, NONE, NULL, NULL, 0, NULL, NULL},
    {"small", KV_JT_INT, 0, 0, 9, offsetof(struct doc, small), sizeof(int), NONE, NONE, NULL, NULL,
     0, NULL, NULL},
    {"color", KV_JT_ENUM, 0, 0, 0, offsetof(struct doc, color), sizeof(int), NONE, NONE, colors,
     NULL, 0, NULL, "color"},
    {"tags", KV_JT_ENUMS, 0, 0, 3, offsetof(struct doc, tags), sizeof(unsigned), NONE, NONE, tags,
     NULL, 0, NULL, NULL},
    {"on", KV_JT_BOOL, 0, 0, 0, offsetof(struct doc, on), sizeof(int), NONE, NONE, NULL, NULL, 0,
     NULL, NULL},
    {"inner", KV_JT_OBJECT, KV_JF_NULL_OK, 0, 0, 0, 0, NONE, offsetof(struct doc, has_inner), NULL,
     &inner_tbl, 0, NULL, NULL},
    {"items", KV_JT_ARRAY, 0, 0, 3, offsetof(struct doc, items), 0, offsetof(struct doc, n_items),
     NONE, NULL, &item_tbl, sizeof(struct item), NULL, NULL},
    {"words", KV_JT_STRINGS, 0, 0, 4, offsetof(struct doc, words), 0, offsetof(struct doc, n_words),
     NONE, NULL, NULL, 0, NULL, NULL},
    {"extra", KV_JT_RAW, 0, 0, 0, offsetof(struct doc, extra), 0, NONE, NONE, NULL, NULL, 0, NULL,
     NULL},
    {"even", KV_JT_CUSTOM, 0, 0, 0, offsetof(struct doc, even), 0, NONE, NONE, NULL, NULL, 0, even,
     NULL},
};
static const kv_jdec_table doc_tbl = KV_JDEC_TABLE("doc", doc_rows, 0, NULL, NULL);

static const struct row {
    const char *json;
    kv_jdec_code code;
    const char *path; /* the failing path (exact) */
    const char *msg;  /* a piece of the message */
} rows[] = {
    {"{'name':'a'}", KV_JDEC_OK, "", ""},
    {"{'name':'abc','pan':'4761739001010119','key':'0011AABB','n':-5,'small':9,'color':'blue',"
     "'tags':['a','c'],'on':true,'inner':{'x':'xy'},'items':[{'id':'i1','amount':5},"
     "{'id':'i2','amount':1000,'flag':false}],'words':['w1','w2'],'extra':[1,{}],'even':4}",
     KV_JDEC_OK, "", ""},
    {"{'name':'a','inner':null}", KV_JDEC_OK, "", ""},
    /* syntax and shape */
    {"{'name':", KV_JDEC_SYNTAX, "", ""},
    {"{'name':'a','name':'b'}", KV_JDEC_SYNTAX, "", "duplicate"},
    {"[1]", KV_JDEC_WRONG_TYPE, "doc", "must be a JSON object"},
    /* members */
    {"{}", KV_JDEC_MISSING, "name", "missing required field"},
    {"{'name':'a','zz':1}", KV_JDEC_UNKNOWN_FIELD, "zz", "unknown field"},
    {"{'name':1}", KV_JDEC_WRONG_TYPE, "name", "must be a string"},
    {"{'name':null}", KV_JDEC_WRONG_TYPE, "name", "not null"},
    {"{'name':''}", KV_JDEC_OUT_OF_RANGE, "name", "must not be empty"},
    {"{'name':'12345678901234567'}", KV_JDEC_OUT_OF_RANGE, "name", "longer than 16"},
    {"{'name':'a\\u0000b'}", KV_JDEC_SYNTAX, "", "not allowed"}, /* NUL: jansson refuses */
    {"{'name':'a','pan':'47617390010101x9'}", KV_JDEC_BAD_FORMAT, "pan", "decimal digits"},
    {"{'name':'a','pan':'47617'}", KV_JDEC_OUT_OF_RANGE, "pan", "12..19"},
    {"{'name':'a','key':'0'}", KV_JDEC_BAD_FORMAT, "key", "hex"},
    {"{'name':'a','key':'00 11'}", KV_JDEC_BAD_FORMAT, "key", "without spaces"},
    {"{'name':'a','key':'00'}", KV_JDEC_OUT_OF_RANGE, "key", "2..8 bytes"},
    {"{'name':'a','key':'001122334455667788'}", KV_JDEC_OUT_OF_RANGE, "key", "2..8 bytes"},
    {"{'name':'a','n':6}", KV_JDEC_OUT_OF_RANGE, "n", "-5..5"},
    {"{'name':'a','n':1.5}", KV_JDEC_WRONG_TYPE, "n", "integer"},
    {"{'name':'a','n':'1'}", KV_JDEC_WRONG_TYPE, "n", "integer"},
    {"{'name':'a','color':'pink'}", KV_JDEC_UNKNOWN_VALUE, "color", "unknown color \"pink\""},
    {"{'name':'a','color':3}", KV_JDEC_WRONG_TYPE, "color", "string"},
    {"{'name':'a','tags':['a','d']}", KV_JDEC_UNKNOWN_VALUE, "tags[1]", "unknown value \"d\""},
    {"{'name':'a','tags':['a',1]}", KV_JDEC_WRONG_TYPE, "tags[1]", "string"},
    {"{'name':'a','tags':'a'}", KV_JDEC_WRONG_TYPE, "tags", "array"},
    {"{'name':'a','tags':['a','b','c','a']}", KV_JDEC_TOO_MANY, "tags", "at most 3"},
    {"{'name':'a','on':1}", KV_JDEC_WRONG_TYPE, "on", "true or false"},
    {"{'name':'a','inner':{}}", KV_JDEC_MISSING, "inner.x", "missing"},
    {"{'name':'a','inner':{'x':'a','y':1}}", KV_JDEC_UNKNOWN_FIELD, "inner.y", "unknown field"},
    {"{'name':'a','inner':[]}", KV_JDEC_WRONG_TYPE, "inner", "object"},
    {"{'name':'a','items':{}}", KV_JDEC_WRONG_TYPE, "items", "array"},
    {"{'name':'a','items':[{'id':'1','amount':1},{'id':'2','amount':1},{'id':'3','amount':1},"
     "{'id':'4','amount':1}]}",
     KV_JDEC_TOO_MANY, "items", "at most 3"},
    {"{'name':'a','items':[{'id':'1','amount':1},7]}", KV_JDEC_WRONG_TYPE, "items[1]", "object"},
    {"{'name':'a','items':[{'id':'1','amount':1},{'id':'2','amount':-1}]}", KV_JDEC_OUT_OF_RANGE,
     "items[1].amount", "amount in minor units, 0 to 1000"},
    {"{'name':'a','items':[{'id':'1','amount':1},{'id':'2','amount':'5'}]}", KV_JDEC_WRONG_TYPE,
     "items[1].amount", "integer amount"},
    {"{'name':'a','items':[{'id':'1'}]}", KV_JDEC_MISSING, "items[0].amount", "missing"},
    {"{'name':'a','items':[{'id':'1','amount':1,'x':0}]}", KV_JDEC_UNKNOWN_FIELD, "items[0].x",
     "unknown"},
    {"{'name':'a','items':[{'id':'a\\u0001','amount':1}]}", KV_JDEC_BAD_FORMAT, "items[0].id",
     "control character"},
    {"{'name':'a','items':[{'id':'a','amount':13}]}", KV_JDEC_CONFLICT, "items[0].amount",
     "unlucky"},
    {"{'name':'a','words':['a',2]}", KV_JDEC_WRONG_TYPE, "words[1]", "string"},
    {"{'name':'a','words':['a','b','c','d','e']}", KV_JDEC_TOO_MANY, "words", "at most 4"},
    {"{'name':'a','even':3}", KV_JDEC_BAD_FORMAT, "even", "even integer"},
    {"{'name':'a','even':null}", KV_JDEC_BAD_FORMAT, "even", "even integer"},
};

/* Single quotes to double quotes (the inputs read better that way). */
static char *dq(const char *s)
{
    char *d = malloc(strlen(s) + 1);
    assert_non_null(d);
    for (size_t i = 0; (d[i] = s[i]) != '\0'; i++)
        if (d[i] == '\'')
            d[i] = '"';
    return d;
}

static void test_rows(void **state)
{
    int failures = 0;
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct doc doc;
        kv_jdec_error e;
        char *text = dq(rows[i].json);
        int r;
        memset(&doc, 0, sizeof(doc));
        r = kv_jdec_text(text, strlen(text), 4096, &doc_tbl, &doc, NULL, &e);
        if ((rows[i].code == KV_JDEC_OK) != (r == 0) || e.code != rows[i].code ||
            strcmp(e.path, rows[i].path) != 0 || strstr(e.msg, rows[i].msg) == NULL) {
            fprintf(stderr, "row %zu %s\n  want %s '%s' '%s'\n  got  %d %s '%s' '%s'\n", i, text,
                    kv_jdec_code_name(rows[i].code), rows[i].path, rows[i].msg, r,
                    kv_jdec_code_name(e.code), e.path, e.msg);
            failures++;
        }
        free(text);
    }
    assert_int_equal(failures, 0);
}

static void test_values(void **state)
{
    struct doc doc;
    kv_jdec_error e;
    json_t *j;
    char *text = dq(rows[1].json);
    (void)state;
    memset(&doc, 0, sizeof(doc));
    assert_int_equal(kv_jdec_parse(text, strlen(text), 0, &j, &e), 0);
    assert_int_equal(kv_jdec_decode(j, &doc_tbl, &doc, NULL, &e), 0);
    assert_string_equal(doc.name, "abc");
    assert_string_equal(doc.pan, "4761739001010119");
    assert_int_equal(doc.key_len, 4);
    assert_int_equal(doc.has_key, 1);
    assert_int_equal(doc.key[3], 0xBB);
    assert_int_equal(doc.n, -5);
    assert_int_equal(doc.small, 9);
    assert_int_equal(doc.color, 2);
    assert_int_equal(doc.tags, 5u);
    assert_int_equal(doc.on, 1);
    assert_string_equal(doc.inner_x, "xy");
    assert_int_equal(doc.has_inner, 1);
    assert_int_equal(doc.n_items, 2);
    assert_string_equal(doc.items[0].id, "i1");
    assert_true(doc.items[0].flag); /* the element's init */
    assert_false(doc.items[1].flag);
    assert_int_equal(doc.items[1].amount, 1000);
    assert_int_equal(doc.n_words, 2);
    assert_string_equal(doc.words[1], "w2");
    assert_true(json_is_array(doc.extra));
    assert_int_equal(doc.even, 4);
    json_decref(j);
    free(text);
}

static void test_limits(void **state)
{
    struct doc doc;
    kv_jdec_error e;
    char buf[256];
    (void)state;
    /* too large before parsing */
    assert_int_equal(kv_jdec_text("{\"name\":\"a\"}", 12, 11, &doc_tbl, &doc, NULL, &e),
                     KV_ERR_JSON);
    assert_int_equal(e.code, KV_JDEC_TOO_LARGE);
    /* the syntax error's position */
    assert_int_equal(kv_jdec_text("{\n\"name\" 1}", 11, 0, &doc_tbl, &doc, NULL, &e), KV_ERR_JSON);
    assert_int_equal(e.code, KV_JDEC_SYNTAX);
    assert_int_equal(e.line, 2);
    /* unknown field: parent path and key kept apart */
    memset(&doc, 0, sizeof(doc));
    assert_int_equal(kv_jdec_text("{\"name\":\"a\",\"inner\":{\"x\":\"a\",\"q\\u0001\":1}}", 42, 0,
                                  &doc_tbl, &doc, NULL, &e),
                     KV_ERR_JSON);
    assert_int_equal(e.code, KV_JDEC_UNKNOWN_FIELD);
    assert_int_equal(e.parent_len, 5);
    assert_string_equal(e.key, "q?");
    kv_jdec_format(&e, buf, sizeof(buf));
    assert_string_equal(buf, "inner.q?: unknown field");
    /* code names */
    assert_string_equal(kv_jdec_code_name(KV_JDEC_MISSING), "missing");
    assert_string_equal(kv_jdec_code_name(KV_JDEC_UNKNOWN_FIELD), "unknown_field");
    assert_string_equal(kv_jdec_code_name((kv_jdec_code)99), "unknown");
    /* text check */
    assert_true(kv_jdec_text_ok("K\xc3\xb8"
                                "benhavn",
                                10));
    assert_false(kv_jdec_text_ok("\xc0\xaf", 2));     /* overlong */
    assert_false(kv_jdec_text_ok("\xed\xa0\x80", 3)); /* surrogate */
    assert_false(kv_jdec_text_ok("\xc2\x85", 2));     /* C1 control */
    assert_false(kv_jdec_text_ok("\xef\xbf\xbe", 3)); /* U+FFFE */
}

/* A self-referencing table nests without end: the depth bound stops it. */
static const kv_jdec_table deep_tbl;
static const kv_jdec_field deep_rows[] = {
    {"a", KV_JT_OBJECT, 0, 0, 0, 0, 0, NONE, NONE, NULL, &deep_tbl, 0, NULL, NULL},
};
static const kv_jdec_table deep_tbl = KV_JDEC_TABLE("deep", deep_rows, 0, NULL, NULL);

static void test_depth(void **state)
{
    char text[256] = "";
    kv_jdec_error e;
    int dummy = 0;
    (void)state;
    for (int i = 0; i < 20; i++)
        strcat(text, "{\"a\":");
    strcat(text, "{}");
    for (int i = 0; i < 20; i++)
        strcat(text, "}");
    assert_int_equal(kv_jdec_text(text, strlen(text), 0, &deep_tbl, &dummy, NULL, &e), KV_ERR_JSON);
    assert_int_equal(e.code, KV_JDEC_TOO_DEEP);
    assert_non_null(strstr(e.path, "a.a.a"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_depth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Internal to the profile loader (profile.c, profile_keys.c,
 * profile_faults.c): the reason buffer, the strict table decoder and the
 * hex member reader they share, and the jdec row shorthands of their
 * tables. Not for use outside apdu/vcard/profile*.c.
 */
#ifndef KV_APDU_VCARD_PROFILE_INT_H
#define KV_APDU_VCARD_PROFILE_INT_H

#include "src/base/jdec.h"
#include "src/base/secure.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Where a failed load writes its reason (why may be NULL or whylen 0: no reason). */
typedef struct {
    char *why;
    size_t whylen;
} kv_vcard_loader;

/* Write the reason fmt into why (when there is room) and return err. */
int kv_vcard_why(char *why, size_t whylen, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* kv_vcard_why into the loader l's buffer. */
#define kv_vcard_bad(l, ...) kv_vcard_why((l)->why, (l)->whylen, __VA_ARGS__)

/*
 * Decode the object obj strictly by the table t (src/base/jdec.h) into in:
 * members outside the table, missing required members and values of the
 * wrong type are KV_ERR_JSON, values out of bounds KV_ERR_FORMAT; the message
 * names the member under where ("" at the top: "profile").
 */
int kv_vcard_strict(kv_vcard_loader *l, const json_t *obj, const char *where,
                    const kv_jdec_table *t, void *in);

/* Decode the hex string v (min..max bytes) into out, its length to *len; a
 * missing v (NULL) is "not a hex string"; where names v in the message. */
int kv_vcard_hex_value(kv_vcard_loader *l, json_t *v, const char *where, uint8_t *out, size_t min,
                       size_t max, size_t *len);

/* The PIN object o ({"value", "try_limit", "tries_left"}) named where: its
 * plaintext PIN block (EMV Book 3 §6.5.12) into *block (locked memory; the
 * PIN text in o is wiped), the try limit and the tries left. */
int kv_vcard_parse_pin(kv_vcard_loader *l, json_t *o, const char *where, kv_secbuf **block,
                       unsigned *try_limit, unsigned *tries);

/* Row shorthands for the loader's kv_jdec tables. */
#define NONE KV_JDEC_NONE
/* A member read later by the code (hex, TLV lists, keys): only its name is checked. */
#define ANY(nm)                                                                                    \
    {                                                                                              \
        nm, KV_JT_ANY, 0, 0, 0, 0, 0, NONE, NONE, NULL, NULL, 0, NULL, NULL                        \
    }
#define INT(st, nm, mn, mx, fld)                                                                   \
    {                                                                                              \
        nm, KV_JT_INT, 0, mn, mx, offsetof(st, fld), 0, NONE, NONE, NULL, NULL, 0, NULL, NULL      \
    }
#define BOOL(st, nm, fld)                                                                          \
    {                                                                                              \
        nm, KV_JT_BOOL, 0, 0, 0, offsetof(st, fld), sizeof(int), NONE, NONE, NULL, NULL, 0, NULL,  \
            NULL                                                                                   \
    }

#endif

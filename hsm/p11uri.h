/*
 * RFC 7512 PKCS#11 URIs: "pkcs11:token=kortvagt;object=cvk;id=%01%02".
 *
 * Pure parsing, no PKCS#11 calls. Path attributes are separated by ';', query
 * attributes follow '?' and are separated by '&'; values are percent-decoded.
 * Accepted path attributes: token, manufacturer, serial, model, object, id,
 * type, slot-id, and (ignored) library-manufacturer, library-description,
 * library-version, slot-description, slot-manufacturer; vendor attributes
 * ("x-...") are ignored. Accepted query attributes: module-path,
 * module-name (ignored). "pin-value" and "pin-source" are refused: PINs come
 * from $KORTVAGT_PIN, $KORTVAGT_PIN_FILE or stdin, never from a name that may
 * sit on a command line. Any other attribute, a repeated attribute, a bad
 * percent escape, a NUL in a text value or a value too long for its field is
 * an error.
 */
#ifndef KV_HSM_P11URI_H
#define KV_HSM_P11URI_H

#include <stddef.h>
#include <stdint.h>

#define KV_P11URI_ID_MAX 64

typedef struct {
    /* text attributes, NUL-terminated; has_* says whether the URI named them */
    char token[33];
    char manufacturer[33];
    char serial[17];
    char model[17];
    char object[128];
    char type[16]; /* "secret-key", "public", ... */
    char module_path[512];
    uint8_t id[KV_P11URI_ID_MAX];
    size_t id_len;
    unsigned long slot_id;
    unsigned has_token : 1, has_manufacturer : 1, has_serial : 1, has_model : 1, has_object : 1,
        has_id : 1, has_type : 1, has_slot_id : 1, has_module_path : 1;
} kv_p11uri;

/* 1 if s starts with "pkcs11:" (case-insensitive scheme), else 0. s may be NULL. */
int kv_p11uri_is_uri(const char *s);

/*
 * Parse a NUL-terminated URI into out (zeroed first). Returns 0,
 * KV_ERR_FORMAT (not a pkcs11: URI, bad escape, unknown or repeated
 * attribute, value too long) or KV_ERR_ARG (pin-value / pin-source given).
 * When why is not NULL, a one-line reason (never containing a value) is
 * written to it (capacity why_cap).
 */
int kv_p11uri_parse(const char *uri, kv_p11uri *out, char *why, size_t why_cap);

#endif

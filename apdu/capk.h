/*
 * Certification Authority public keys (EMV Book 2 §5.1, §11.2): the keys of
 * the payment schemes that sign issuer public key certificates, looked up by
 * RID (first 5 bytes of the AID) and CA public key index (tag 8F).
 *
 * Key file (JSON, UTF-8), e.g. tests/data/capk/capk.json:
 *
 *   {
 *     "format": "kortvagt-capk-1",
 *     "comment": "free text (optional)",
 *     "keys": [
 *       { "rid": "A000000004", "index": "EF",
 *         "modulus": "A191CB87...", "exponent": "03",
 *         "checksum": "21766EBB...",            (optional)
 *         "hash_algorithm": "01",               (optional, default 01 SHA-1)
 *         "pk_algorithm": "01",                 (optional, default 01 RSA)
 *         "name": "Mastercard 1984-bit test CA key EF",  (optional)
 *         "kind": "test",                       (optional: test, production, lab)
 *         "source": "where the key comes from"  (optional) }
 *     ]
 *   }
 *
 * Hex is upper or lower case. rid is 5 bytes, index 1 byte, modulus 64..248
 * bytes without a leading 00 byte, exponent 03 or 010001 (EMV allows 3 and
 * 2^16+1), checksum 20 bytes: the SHA-1 of RID || index || modulus ||
 * exponent, as the schemes publish it with each key; when present it must
 * match or the whole file is refused (KV_ERR_CAPK_CHECKSUM). Only hash
 * algorithm 01 (SHA-1) and public key algorithm 01 (RSA) are accepted. A
 * (rid, index) pair appears at most once. Unknown fields are refused, so a
 * misspelt "checksum" does not silently disable the check.
 */
#ifndef KV_APDU_CAPK_H
#define KV_APDU_CAPK_H

#include <stddef.h>
#include <stdint.h>

#define KV_CAPK_MOD_MIN 64
#define KV_CAPK_MOD_MAX 248 /* 1984 bits, the EMV maximum */

typedef struct {
    uint8_t rid[5];
    uint8_t index;
    uint8_t modulus[KV_CAPK_MOD_MAX];
    size_t modulus_len;
    uint8_t exponent[3];
    size_t exponent_len;
    uint8_t hash_alg; /* 01 SHA-1 */
    uint8_t pk_alg;   /* 01 RSA */
    char name[80];    /* "" when the file has none */
    char kind[16];    /* "test", "production", "lab" or "" */
} kv_capk;

/* A set of CA keys. Heap object: kv_capk_store_new / load, kv_capk_store_free. */
typedef struct kv_capk_store kv_capk_store;

/* An empty store; NULL when out of memory. */
kv_capk_store *kv_capk_store_new(void);

/* Free the store; NULL is a no-op. */
void kv_capk_store_free(kv_capk_store *s);

/*
 * Load the key file at path into a new store (*out, owned by the caller).
 * Returns 0, KV_ERR_IO (cannot read), KV_ERR_JSON (not JSON, or a field of
 * the wrong type, unknown field or bad value), KV_ERR_CAPK_CHECKSUM,
 * KV_ERR_NOMEM. On failure *out is NULL and why (when not NULL and whylen >
 * 0) gets a one-line reason naming the key (by position, RID and index) and
 * the field.
 */
int kv_capk_store_load(const char *path, kv_capk_store **out, char *why, size_t whylen);

/* As kv_capk_store_load, from len bytes of JSON text (need not be NUL-terminated). */
int kv_capk_store_load_text(const char *text, size_t len, kv_capk_store **out, char *why,
                            size_t whylen);

/*
 * Add a copy of k after checking it as the loader does (lengths, exponent,
 * algorithms, no leading zero). checksum (20 bytes) may be NULL; when given
 * it must equal kv_capk_checksum(k). Returns 0, KV_ERR_ARG (k invalid or
 * (rid, index) already present), KV_ERR_CAPK_CHECKSUM or KV_ERR_NOMEM.
 */
int kv_capk_store_add(kv_capk_store *s, const kv_capk *k, const uint8_t *checksum);

/* The key for (rid, index), or NULL (the caller reports KV_ERR_ODA_CA_UNKNOWN). Owned by s. */
const kv_capk *kv_capk_find(const kv_capk_store *s, const uint8_t rid[5], uint8_t index);

/* Number of keys, and key i (0 <= i < count, in file order). Owned by s. */
size_t kv_capk_count(const kv_capk_store *s);
const kv_capk *kv_capk_at(const kv_capk_store *s, size_t i);

/* SHA-1 over RID || index || modulus || exponent into out. Returns 0 or KV_ERR_INTERNAL. */
int kv_capk_checksum(const kv_capk *k, uint8_t out[20]);

/*
 * The certification authorities' revocation list of issuer public key
 * certificates (EMV Book 2 §5.3 step 9 and §6.3 step 9: the concatenation
 * of RID, CA public key index and certificate serial number must not be
 * listed; Book 4 keeps the list at the terminal). A store carries its list
 * beside its keys; kv_oda_begin and kv_oda_issuer_key_recover_store refuse a
 * listed certificate with KV_ERR_CAPK_REVOKED (ODA failed, TVR bit set).
 *
 * File format (text, one revoked certificate per line), e.g.
 * tests/data/capk/revoked.txt:
 *
 *   # comment to the end of the line; blank lines are ignored
 *   # RID        INDEX  SERIAL
 *   A000000003   92     0A1B2C
 *
 * RID 10 hex digits, CA public key index 2, certificate serial number 6
 * (the 3 bytes of the issuer public key certificate, Book 2 Table 6),
 * separated by spaces or tabs, upper or lower case. Anything else on a line
 * refuses the whole file (KV_ERR_FORMAT, why names the line). A repeated
 * entry counts once; at most 100000 entries, 4 MiB of text.
 */

/* List (rid, index, serial) as revoked. Returns 0, KV_ERR_ARG, KV_ERR_BUFFER (list full),
 * KV_ERR_NOMEM. */
int kv_capk_revoke(kv_capk_store *s, const uint8_t rid[5], uint8_t index, const uint8_t serial[3]);

/* 1 if (rid, index, serial) is on s's revocation list, else 0 (also for a NULL store). */
int kv_capk_is_revoked(const kv_capk_store *s, const uint8_t rid[5], uint8_t index,
                       const uint8_t serial[3]);

/* Number of revoked certificates listed. */
size_t kv_capk_revoked_count(const kv_capk_store *s);

/*
 * Add the entries of the revocation list file at path (or len bytes of its
 * text) to s. Returns 0, KV_ERR_IO, KV_ERR_FORMAT, KV_ERR_BUFFER or
 * KV_ERR_NOMEM, with why (when not NULL) set to a one-line reason; on
 * failure the entries of the lines before the bad one stay listed, so load
 * into a store that is thrown away on error.
 */
int kv_capk_revoked_load(kv_capk_store *s, const char *path, char *why, size_t whylen);
int kv_capk_revoked_load_text(kv_capk_store *s, const char *text, size_t len, char *why,
                              size_t whylen);

/*
 * Where the CA key file is looked for: the one search order of every command
 * that reads it (README, "The CA key file"). The front end fills in what it
 * resolved; this layer reads no environment. Any field may be NULL.
 */
typedef struct {
    const char *flag;     /* 1. --capk FILE, used as given */
    const char *env;      /* 2. $KORTVAGT_CAPK as read by the front end; "" counts as unset */
    const char *source;   /* 3. the source tree's tests/data/capk/capk.json; set only for
                                an uninstalled build (the binary runs from its build tree) */
    const char *sysconf;  /* 4. the administrator's file, SYSCONFDIR/kortvagt/capk.json */
    const char *data;     /* 5. the file installed with kortvagt, DATADIR/kortvagt/capk.json,
                                found relative to the binary (DESTDIR, unpacked packages) */
    const char *data_abs; /* 6. the same at the configured absolute DATADIR */
} kv_capk_search;

/*
 * The CA key file: flag, else a non-empty env, each returned as given even
 * when unreadable (so that the load error names it); else the first of
 * source, sysconf, data, data_abs that is readable; else NULL (no key file).
 */
const char *kv_capk_locate(const kv_capk_search *s);

#endif

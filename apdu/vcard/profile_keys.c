/*
 * see profile.h: the card's keys, its card risk management parameters and
 * what each application of a multi-application card has of its own
 * (apdu/vcard/CRYPTO.md §1 and §6).
 *
 *   "keys": { "cvn", "dki", "iad_format", "idd", "icc_mk_ac", "icc_mk_smi",
 *             "icc_mk_smc", "icc_mk_cvc3" (each also "<name>_wrapped"),
 *             "sm_mac_len", "cvc3_track2", "icc_rsa", "icc_rsa_file",
 *             "icc_pin_rsa", "icc_pin_rsa_file", "first_ac" }
 *   "risk": { "lcol", "ucol", "ciac_denial", "ciac_online", "ciac_default",
 *             "issuer_auth_required", "script_mac_limit" }
 *   "applications"[i]: "keys", "risk" (replace the card's objects for that
 *             application), "pin" (as the card's), "atc" (0..65535)
 */
#include "apdu/vcard/profile.h"
#include "apdu/vcard/profile_int.h"
#include "apdu/vcard/vcard.h"
#include "apdu/vcard/vcrypto.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/base/jdec.h"
#include "src/base/secure.h"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef kv_vcard_loader kctx;

/* the loader helpers and row shorthands: profile_int.h */

/* The hex member key of o (absent: 0 and *len 0) of min..max bytes. */
static int hex_member(kctx *c, json_t *o, const char *where, const char *key, uint8_t *out,
                      size_t min, size_t max, size_t *len)
{
    json_t *v = json_object_get(o, key);
    char w[128];
    *len = 0;
    if (v == NULL)
        return 0;
    snprintf(w, sizeof(w), "%s.%s", where, key);
    return kv_vcard_hex_value(c, v, w, out, min, max, len);
}

/* A PEM private RSA key from the member key (PEM text) or key_file (a path). */
static int pem_member(kctx *c, json_t *o, const char *where, const char *key, const char *key_file,
                      EVP_PKEY **out)
{
    json_t *v = json_object_get(o, key), *f = json_object_get(o, key_file);
    BIO *bio = NULL;
    int r = 0;

    *out = NULL;
    if (v == NULL && f == NULL)
        return 0;
    if (v != NULL && f != NULL)
        return kv_vcard_bad(c, KV_ERR_JSON, "%s: both %s and %s", where, key, key_file);
    if (!json_is_string(v != NULL ? v : f))
        return kv_vcard_bad(c, KV_ERR_JSON, "%s.%s: not a string", where,
                            v != NULL ? key : key_file);
    if (v != NULL)
        bio = BIO_new_mem_buf(json_string_value(v), (int)json_string_length(v));
    else
        bio = BIO_new_file(json_string_value(f), "r");
    if (bio == NULL) {
        r = v != NULL ? KV_ERR_NOMEM
                      : kv_vcard_bad(c, KV_ERR_IO, "%s.%s: cannot read %s", where, key_file,
                                     json_string_value(f));
        goto out;
    }
    *out = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    if (*out == NULL || EVP_PKEY_get_base_id(*out) != EVP_PKEY_RSA ||
        EVP_PKEY_get_size(*out) < 64 || EVP_PKEY_get_size(*out) > KV_VCARD_DATA_MAX - 8) {
        EVP_PKEY_free(*out);
        *out = NULL;
        r = kv_vcard_bad(c, KV_ERR_FORMAT, "%s.%s: not a PEM RSA private key of 512..1984 bits",
                         where, v != NULL ? key : key_file);
    }
out:
    BIO_free(bio);
    return r;
}

/*
 * A 16-byte master key: "<name>" in clear hex, or "<name>_wrapped", the key
 * as the personalization bench ships it, AES-wrapped (RFC 3394) under the
 * lab's transport key ($KORTVAGT_TRANSPORT_KEY).
 */
static int master_key(kctx *c, json_t *o, const char *where, const char *name, uint8_t mk[16],
                      int *has)
{
    char field[48];
    json_t *v;
    uint8_t in[40], kek[32], clear[32];
    size_t n, keklen = 0, cl = 0;
    int r;

    if ((r = hex_member(c, o, where, name, mk, 16, 16, &n)) != 0)
        return r;
    if (n == 16)
        *has = 1;
    snprintf(field, sizeof(field), "%s_wrapped", name);
    if ((v = json_object_get(o, field)) == NULL)
        return 0;
    if (*has)
        return kv_vcard_bad(c, KV_ERR_JSON, "%s: both %s and %s", where, name, field);
    if ((r = hex_member(c, o, where, field, in, 24, 24, &n)) != 0)
        return r;
    r = kv_vcard_transport_key(kek, &keklen);
    if (r != 0) {
        r = kv_vcard_bad(c, r == KV_ERR_NOT_FOUND ? KV_ERR_ARG : r, "%s.%s: %s", where, field,
                         r == KV_ERR_NOT_FOUND
                             ? "needs the transport key (--transport-key FILE or "
                               "$KORTVAGT_TRANSPORT_KEY)"
                             : "the transport key file is unreadable or not 16/24/32 "
                               "bytes of hex");
        goto out;
    }
    if ((r = kv_vcard_aes_unwrap(kek, keklen, in, n, clear, &cl)) != 0 || cl != 16) {
        r = kv_vcard_bad(c, KV_ERR_FORMAT, "%s.%s: does not unwrap under the transport key", where,
                         field);
        goto out;
    }
    memcpy(mk, clear, 16);
    *has = 1;
    r = 0;
out:
    kv_wipe(kek, sizeof(kek));
    kv_wipe(clear, sizeof(clear));
    return r;
}

static int visa_cvn(int cvn)
{
    return cvn == 10 || cvn == 18 || cvn == 22;
}

struct keys_in {
    int64_t cvn, iad_format, sm_mac_len;
};
static const kv_jdec_field keys_rows[] = {
    INT(struct keys_in, "cvn", 5, 22, cvn),
    INT(struct keys_in, "iad_format", 0, 3, iad_format),
    INT(struct keys_in, "sm_mac_len", 4, 8, sm_mac_len),
    ANY("dki"),
    ANY("idd"),
    ANY("icc_mk_ac"),
    ANY("icc_mk_ac_wrapped"),
    ANY("icc_mk_smi"),
    ANY("icc_mk_smi_wrapped"),
    ANY("icc_mk_smc"),
    ANY("icc_mk_smc_wrapped"),
    ANY("icc_mk_cvc3"),
    ANY("icc_mk_cvc3_wrapped"),
    ANY("cvc3_track2"),
    ANY("icc_rsa"),
    ANY("icc_rsa_file"),
    ANY("icc_pin_rsa"),
    ANY("icc_pin_rsa_file"),
    ANY("first_ac"),
};
static const kv_jdec_table keys_tbl = KV_JDEC_TABLE(NULL, keys_rows, 0, NULL, NULL);

/* The defaults of a card without "keys": CVN 10, DKI 01. */
static void keys_defaults(kv_vcard_keys *k)
{
    k->cvn = 10;
    k->dki = 0x01;
    k->iad_format = 0;
    k->sm_mac_len = 8;
}

static int parse_keys(kctx *c, json_t *o, const char *where, kv_vcard_keys *k)
{
    struct keys_in in = {10, -1, 8};
    json_t *v;
    uint8_t dki[1] = {0x01};
    size_t n;
    int cvn, r;

    keys_defaults(k);
    if ((r = kv_vcard_strict(c, o, where, &keys_tbl, &in)) != 0)
        return r;
    cvn = (int)in.cvn;
    if (!visa_cvn(cvn) && cvn != 16 && cvn != 17 && cvn != 20 && cvn != 21 && cvn != 5 && cvn != 6)
        return kv_vcard_bad(
            c, KV_ERR_FORMAT,
            "%s.cvn: %d is not 10, 18, 22 (Visa), 16, 17, 20, 21 (Mastercard), 5 or 6 "
            "(CCD)",
            where, cvn);
    k->present = 1;
    k->cvn = cvn;
    if (in.iad_format >= 0 && !visa_cvn(cvn))
        return kv_vcard_bad(c, KV_ERR_FORMAT, "%s.iad_format: only for the Visa CVNs 10, 18, 22",
                            where);
    k->iad_format = in.iad_format >= 0 ? (int)in.iad_format : cvn == 22 ? 2 : 0;
    if ((cvn == 22) != (k->iad_format == 2))
        return kv_vcard_bad(c, KV_ERR_FORMAT,
                            "%s.iad_format: format 2 goes with CVN 22 and only with it", where);
    k->sm_mac_len = (size_t)in.sm_mac_len;
    if ((r = hex_member(c, o, where, "dki", dki, 1, 1, &n)) != 0)
        return r;
    k->dki = dki[0];
    if ((r = hex_member(c, o, where, "idd", k->idd, 1, k->iad_format == 2 ? 24 : 24,
                        &k->idd_len)) != 0)
        return r;
    if (k->idd_len > 0 && visa_cvn(cvn) && k->iad_format == 0)
        return kv_vcard_bad(c, KV_ERR_FORMAT,
                            "%s.idd: IAD format 0 has no issuer discretionary data", where);
    if (k->idd_len == 0 && (k->iad_format == 1 || k->iad_format == 3))
        k->idd_len = 15; /* zeros */
    if (k->iad_format == 2)
        k->idd_len = 24; /* fixed: the IAD is 32 bytes; a shorter idd is zero-filled */
    if ((r = master_key(c, o, where, "icc_mk_ac", k->ac_mk, &k->has_ac_mk)) != 0 ||
        (r = master_key(c, o, where, "icc_mk_smi", k->smi_mk, &k->has_smi_mk)) != 0 ||
        (r = master_key(c, o, where, "icc_mk_smc", k->smc_mk, &k->has_smc_mk)) != 0 ||
        (r = master_key(c, o, where, "icc_mk_cvc3", k->cvc3_mk, &k->has_cvc3_mk)) != 0)
        return r;
    if ((r = hex_member(c, o, where, "cvc3_track2", k->cvc3_track, 1, KV_VCARD_TRACK_MAX,
                        &k->cvc3_track_len)) != 0)
        return r;
    if ((v = json_object_get(o, "first_ac")) != NULL) {
        if (!json_is_string(v) || (strcmp(json_string_value(v), "online") != 0 &&
                                   strcmp(json_string_value(v), "follow") != 0))
            return kv_vcard_bad(c, KV_ERR_FORMAT, "%s.first_ac: not \"online\" or \"follow\"",
                                where);
        k->first_ac_follow = strcmp(json_string_value(v), "follow") == 0;
        k->first_ac_set = 1;
    }
    if ((r = pem_member(c, o, where, "icc_rsa", "icc_rsa_file", &k->icc_rsa)) != 0 ||
        (r = pem_member(c, o, where, "icc_pin_rsa", "icc_pin_rsa_file", &k->icc_pin_rsa)) != 0)
        return r;
    return 0;
}

struct risk_in {
    int64_t lcol, ucol, script_mac_limit;
    int issuer_auth_required;
};
static const kv_jdec_field risk_rows[] = {
    INT(struct risk_in, "lcol", 0, 255, lcol),
    INT(struct risk_in, "ucol", 0, 255, ucol),
    INT(struct risk_in, "script_mac_limit", 1, 15, script_mac_limit),
    BOOL(struct risk_in, "issuer_auth_required", issuer_auth_required),
    ANY("ciac_denial"),
    ANY("ciac_online"),
    ANY("ciac_default"),
};
static const kv_jdec_table risk_tbl = KV_JDEC_TABLE(NULL, risk_rows, 0, NULL, NULL);

static void risk_defaults(kv_vcard_risk *rk)
{
    memset(rk, 0, sizeof(*rk));
    rk->lcol = -1;
    rk->ucol = -1;
    rk->script_mac_limit = 3;
}

static int parse_risk(kctx *c, json_t *o, const char *where, kv_vcard_risk *rk)
{
    struct risk_in in = {-1, -1, 3, 0};
    size_t n;
    int r;

    risk_defaults(rk);
    if ((r = kv_vcard_strict(c, o, where, &risk_tbl, &in)) != 0)
        return r;
    if (in.lcol >= 0 && in.ucol >= 0 && in.lcol > in.ucol)
        return kv_vcard_bad(c, KV_ERR_FORMAT, "%s.lcol: more than ucol", where);
    rk->present = 1;
    rk->lcol = (int)in.lcol;
    rk->ucol = (int)in.ucol;
    rk->script_mac_limit = (unsigned)in.script_mac_limit;
    rk->issuer_auth_required = in.issuer_auth_required;
    if ((r = hex_member(c, o, where, "ciac_denial", rk->ciac_denial, 1, KV_VCARD_CIAC_MAX, &n)) !=
            0 ||
        (r = hex_member(c, o, where, "ciac_online", rk->ciac_online, 1, KV_VCARD_CIAC_MAX, &n)) !=
            0 ||
        (r = hex_member(c, o, where, "ciac_default", rk->ciac_default, 1, KV_VCARD_CIAC_MAX, &n)) !=
            0)
        return r;
    return 0;
}

/* see profile.h */
int kv_vcard_profile_keys(json_t *root, kv_vcard_profile *p, char *why, size_t whylen)
{
    kctx c = {why, whylen};
    json_t *o, *apps, *a;
    char w[64];
    int r;

    keys_defaults(&p->keys);
    risk_defaults(&p->risk);
    if ((o = json_object_get(root, "keys")) != NULL &&
        (r = parse_keys(&c, o, "keys", &p->keys)) != 0)
        return r;
    if ((o = json_object_get(root, "risk")) != NULL &&
        (r = parse_risk(&c, o, "risk", &p->risk)) != 0)
        return r;
    apps = json_object_get(root, "applications");
    for (size_t i = 0; i < json_array_size(apps) && i < KV_VCARD_MAX_APPS; i++) {
        kv_vcard_app_own *own = &p->own[i];
        a = json_array_get(apps, i);
        if ((o = json_object_get(a, "keys")) != NULL) {
            if (snprintf(w, sizeof(w), "applications[%zu].keys", i) >= (int)sizeof(w))
                w[sizeof(w) - 1] = '\0'; /* a cut name is still a name */
            if ((own->keys = calloc(1, sizeof(*own->keys))) == NULL)
                return KV_ERR_NOMEM;
            if ((r = parse_keys(&c, o, w, own->keys)) != 0)
                return r;
        }
        if ((o = json_object_get(a, "risk")) != NULL) {
            if (snprintf(w, sizeof(w), "applications[%zu].risk", i) >= (int)sizeof(w))
                w[sizeof(w) - 1] = '\0'; /* a cut name is still a name */
            if ((own->risk = calloc(1, sizeof(*own->risk))) == NULL)
                return KV_ERR_NOMEM;
            if ((r = parse_risk(&c, o, w, own->risk)) != 0)
                return r;
        }
        if ((o = json_object_get(a, "pin")) != NULL) {
            if (snprintf(w, sizeof(w), "applications[%zu].pin", i) >= (int)sizeof(w))
                w[sizeof(w) - 1] = '\0'; /* a cut name is still a name */
            if ((r = kv_vcard_parse_pin(&c, o, w, &own->pin_block, &own->pin_try_limit,
                                        &own->pin_tries)) != 0)
                return r;
        }
        if ((o = json_object_get(a, "atc")) != NULL) {
            if (!json_is_integer(o) || json_integer_value(o) < 0 || json_integer_value(o) > 0xFFFF)
                return kv_vcard_bad(&c, KV_ERR_FORMAT,
                                    "applications[%zu].atc: not an integer 0..65535", i);
            own->has_atc = 1;
            own->atc = (unsigned)json_integer_value(o);
        }
    }
    return 0;
}

static void keys_free(kv_vcard_keys *k)
{
    EVP_PKEY_free(k->icc_rsa);
    EVP_PKEY_free(k->icc_pin_rsa);
    kv_wipe(k, sizeof(*k));
}

/* see profile.h */
void kv_vcard_profile_keys_free(kv_vcard_profile *p)
{
    keys_free(&p->keys);
    for (size_t i = 0; i < KV_VCARD_MAX_APPS; i++) {
        kv_vcard_app_own *own = &p->own[i];
        if (own->keys != NULL) {
            keys_free(own->keys);
            free(own->keys);
        }
        free(own->risk);
        kv_secbuf_free(own->pin_block);
        memset(own, 0, sizeof(*own));
    }
}

/* see perso_profile.h */
#include "src/perso/perso_profile.h"

#include "apdu/oda.h"
#include "apdu/tlv.h"
#include "hsm/cvv.h"
#include "hsm/emv_crypto.h"
#include "hsm/perso.h"
#include "hsm/pin.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/base/secure.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- failures ------------------------------------------------------------------ */

/* A usage failure: the template or an argument is wrong. Returns KV_ERR_ARG. */
static int usage_fail(kv_perso_fail *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage_fail(kv_perso_fail *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->msg, sizeof(f->msg), fmt, ap);
    va_end(ap);
    f->kind = KV_PERSO_FAIL_USAGE;
    f->err = KV_ERR_ARG;
    return KV_ERR_ARG;
}

/* A step failed with err; what names the step. Returns err. */
static int op_fail(kv_perso_fail *f, int err, const char *what)
{
    snprintf(f->msg, sizeof(f->msg), "%s", what);
    f->kind = KV_PERSO_FAIL_OP;
    f->err = err;
    return err;
}

/* The caller's key lookup; its failure is KV_PERSO_FAIL_KEY. Returns 0 or KV_ERR_HSM_KEY. */
static int find_key(kv_perso_fail *f, kv_perso_key_fn find, void *arg, const char *label,
                    unsigned want, kv_hsm_key *out)
{
    int r = find(arg, label, want, out);
    if (r == 0)
        return 0;
    f->kind = KV_PERSO_FAIL_KEY;
    f->err = r;
    f->msg[0] = '\0';
    return KV_ERR_HSM_KEY;
}

/* ---- small helpers ----------------------------------------------------------- */

static int hexstr(json_t *o, const char *key, const uint8_t *p, size_t n)
{
    char buf[2 * 512 + 1];
    if (n > 512)
        return KV_ERR_BUFFER;
    kv_hex_encode(p, n, buf);
    return json_object_set_new(o, key, json_string(buf)) == 0 ? 0 : KV_ERR_NOMEM;
}

/*
 * Digits as packed BCD, F-padded to an even count (or to cap bytes when fill);
 * never more than cap bytes (the digits beyond are cut). Returns the bytes written.
 */
static size_t bcd(const char *digits, uint8_t *out, size_t cap, int fill)
{
    size_t n = strlen(digits), bytes = (fill || (n + 1) / 2 > cap) ? cap : (n + 1) / 2;
    memset(out, 0xFF, bytes);
    for (size_t i = 0; i < n && i / 2 < bytes; i++) {
        uint8_t d = (uint8_t)(digits[i] - '0');
        out[i / 2] =
            (i % 2) ? (uint8_t)((out[i / 2] & 0xF0) | d) : (uint8_t)((out[i / 2] & 0x0F) | d << 4);
    }
    return bytes;
}

static unsigned last_day(unsigned yy, unsigned mm)
{
    static const unsigned d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mm == 2 && (2000 + yy) % 4 == 0)
        return 29;
    return d[mm - 1];
}

/*
 * A data element the bench derives from one source value: a template that
 * lists it gets the derived value in its place (REPLACE) or loses its copy
 * (DROP: the bench writes it once elsewhere).
 */
enum { DERIVED_DROP = 1, DERIVED_REPLACE = 2 };
typedef struct {
    uint32_t tag;
    int mode;
    uint8_t v[16];
    size_t len;
    int done; /* REPLACE: written */
} derived_tag;

typedef struct {
    derived_tag t[12];
    size_t n;
} derived_set;

static void derived_add(derived_set *d, uint32_t tag, int mode, const uint8_t *v, size_t len)
{
    derived_tag *x = &d->t[d->n++];
    x->tag = tag;
    x->mode = mode;
    if (len > 0)
        memcpy(x->v, v, len);
    x->len = len;
    x->done = 0;
}

/* Put tag/value, or what the derived set says for tag. */
static void put_one(kv_tlv_writer *w, derived_set *d, uint32_t tag, const uint8_t *val, size_t n)
{
    for (size_t i = 0; d != NULL && i < d->n; i++) {
        derived_tag *x = &d->t[i];
        if (x->tag != tag)
            continue;
        if (x->mode == DERIVED_REPLACE && !x->done) {
            kv_tlv_put(w, tag, x->v, x->len);
            x->done = 1;
        }
        return; /* dropped, or written once already */
    }
    kv_tlv_put(w, tag, val, n);
}

/* The REPLACE elements no template list has placed yet, appended to w. */
static void put_rest(kv_tlv_writer *w, derived_set *d)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->t[i].mode == DERIVED_REPLACE && !d->t[i].done) {
            kv_tlv_put(w, d->t[i].tag, d->t[i].v, d->t[i].len);
            d->t[i].done = 1;
        }
}

/*
 * Parse a TLV list (object or array of pairs) and append each object to w,
 * the derived elements (d, may be NULL) as d says.
 */
static int put_tlv_list(json_t *v, kv_tlv_writer *w, derived_set *d, const char *where, char *why,
                        size_t whylen)
{
    uint8_t tagb[3], val[256];
    if (v == NULL)
        return 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x)
        {
            int tn = kv_hex_decode(k, tagb, sizeof(tagb)), vn;
            uint32_t tag = 0;
            if (tn < 1 || !json_is_string(x) ||
                (vn = kv_hex_decode(json_string_value(x), val, sizeof(val))) < 0) {
                snprintf(why, whylen, "%s: bad tag or value \"%s\"", where, k);
                return KV_ERR_FORMAT;
            }
            for (int i = 0; i < tn; i++)
                tag = tag << 8 | tagb[i];
            put_one(w, d, tag, val, (size_t)vn);
        }
        return 0;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *pair;
        json_array_foreach(v, i, pair)
        {
            json_t *t = json_array_get(pair, 0), *x = json_array_get(pair, 1);
            int tn, vn;
            uint32_t tag = 0;
            if (!json_is_string(t) || !json_is_string(x) ||
                (tn = kv_hex_decode(json_string_value(t), tagb, sizeof(tagb))) < 1 ||
                (vn = kv_hex_decode(json_string_value(x), val, sizeof(val))) < 0) {
                snprintf(why, whylen, "%s[%zu]: not a [\"TAG\", \"HEX\"] pair", where, i);
                return KV_ERR_FORMAT;
            }
            for (int j = 0; j < tn; j++)
                tag = tag << 8 | tagb[j];
            put_one(w, d, tag, val, (size_t)vn);
        }
        return 0;
    }
    snprintf(why, whylen, "%s: not a TLV list", where);
    return KV_ERR_FORMAT;
}

/* Does the TLV list v contain tag (hex, upper case)? */
static int list_has(json_t *v, const char *tag)
{
    size_t i;
    json_t *pair;
    if (json_is_object(v))
        return json_object_get(v, tag) != NULL;
    if (json_is_array(v))
        json_array_foreach(v, i, pair)
        {
            json_t *t = json_array_get(pair, 0);
            if (json_is_string(t) && strcasecmp(json_string_value(t), tag) == 0)
                return 1;
        }
    return 0;
}

static int add_record(json_t *records, unsigned sfi, unsigned number, const uint8_t *p, size_t n)
{
    json_t *r = json_object();
    if (r == NULL || json_object_set_new(r, "sfi", json_integer(sfi)) != 0 ||
        json_object_set_new(r, "record", json_integer(number)) != 0 ||
        hexstr(r, "hex", p, n) != 0 || json_array_append_new(records, r) != 0)
        return KV_ERR_NOMEM;
    return 0;
}

/* The PEM text of a private key (caller frees). */
static char *pem_of(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p = NULL, *out = NULL;
    long n;
    if (b != NULL && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) &&
        (n = BIO_get_mem_data(b, &p)) > 0 && (out = malloc((size_t)n + 1)) != NULL) {
        memcpy(out, p, (size_t)n);
        out[n] = '\0';
    }
    BIO_free(b);
    return out;
}

static int oda_method(const char *s)
{
    if (strcmp(s, "none") == 0)
        return KV_ODA_NONE;
    if (strcmp(s, "sda") == 0)
        return KV_ODA_SDA;
    if (strcmp(s, "dda") == 0)
        return KV_ODA_DDA;
    if (strcmp(s, "cda") == 0)
        return KV_ODA_CDA;
    return -1;
}

/* ---- personalities ------------------------------------------------------------ */

/* see perso_profile.h */
int kv_perso_personality(int cvn)
{
    switch (cvn) {
    case 10:
    case 18:
    case 22:
        return KV_PERSO_PERS_VISA;
    case 16:
    case 17:
    case 20:
    case 21:
        return KV_PERSO_PERS_MCHIP;
    case 5:
    case 6:
        return KV_PERSO_PERS_CCD;
    default:
        return KV_PERSO_PERS_NONE;
    }
}

/* see perso_profile.h */
const char *kv_perso_personality_name(int personality)
{
    switch (personality) {
    case KV_PERSO_PERS_VISA:
        return "Visa VSDC";
    case KV_PERSO_PERS_MCHIP:
        return "Mastercard M/Chip";
    case KV_PERSO_PERS_CCD:
        return "EMV CCD";
    default:
        return "unknown";
    }
}

#define KNOWN_CVNS "10, 18, 22 (Visa), 16, 17, 20, 21 (Mastercard), 5, 6 (CCD)"

/* see perso_profile.h */
int kv_perso_resolve_cvn(int tmpl_cvn, int issuer_cvn, int card_cvn, char *why, size_t whylen)
{
    int pt = kv_perso_personality(tmpl_cvn), cvn = tmpl_cvn;
    if (pt == KV_PERSO_PERS_NONE) {
        snprintf(why, whylen, "the template's cvn %d is not one of " KNOWN_CVNS, tmpl_cvn);
        return -1;
    }
    /* the issuer's CVN is its choice for its cards of that personality */
    if (issuer_cvn != 0 && kv_perso_personality(issuer_cvn) == pt)
        cvn = issuer_cvn;
    if (card_cvn != 0) {
        int pc = kv_perso_personality(card_cvn);
        if (pc == KV_PERSO_PERS_NONE) {
            snprintf(why, whylen, "cvn %d is not one of " KNOWN_CVNS, card_cvn);
            return -1;
        }
        if (pc != pt) {
            snprintf(why, whylen,
                     "cvn %d (%s) does not fit the template's personality (%s, CVN %d)", card_cvn,
                     kv_perso_personality_name(pc), kv_perso_personality_name(pt), tmpl_cvn);
            return -1;
        }
        cvn = card_cvn;
    }
    return cvn;
}

/* The ICC master key derivation option of a CVN (EMV Book 2 A1.4). */
static int mk_option(int cvn)
{
    return cvn == 18 || cvn == 22 ? KV_EMV_MK_OPTION_B : KV_EMV_MK_OPTION_A;
}

/*
 * One more ICC master key (SMI, SMC) from the IMK labelled label in role:
 * wrapped under transport when given, else clear. out receives mk_len bytes.
 */
static int extra_mk(kv_hsm *h, kv_perso_fail *fail, kv_perso_key_fn find, void *find_arg,
                    const char *label, kv_key_role role, int option, const kv_perso_card *a,
                    const kv_hsm_key *transport, uint8_t out[KV_PERSO_WRAPPED_MK_LEN])
{
    kv_hsm_key k;
    int r;
    if ((r = find_key(fail, find, find_arg, label, KV_PERSO_KEY_DES | KV_PERSO_KEY_AES, &k)) != 0)
        return r;
    if ((r = kv_hsm_key_require_role(h, &k, role)) != 0)
        return op_fail(fail, r, "the secure messaging master keys");
    r = transport != NULL ? kv_perso_icc_mk_wrapped(h, &k, option, a->pan, a->psn, transport, out)
                          : kv_perso_icc_mk(h, &k, option, a->pan, a->psn, out);
    return r != 0 ? op_fail(fail, r, "deriving the secure messaging master key") : 0;
}

/* ---- the profile -------------------------------------------------------------- */

/* see perso_profile.h */
int kv_perso_profile_build(kv_hsm *h, const kv_perso_card *a, json_t *tmpl, kv_perso_key_fn find,
                           void *find_arg, json_t **profile, kv_perso_summary *sum,
                           kv_perso_fail *fail)
{
    json_t *app_t = json_object_get(tmpl, "application"), *prof = NULL, *app = NULL,
           *records = NULL, *keys = NULL, *v, *expect = NULL,
           *risk_t = json_object_get(tmpl, "risk");
    kv_hsm_key imk, cvc3_imk, transport, cvk, pvk;
    kv_perso_rsa issuer, ca_k;
    EVP_PKEY *ca = NULL, *icc = NULL;
    kv_secbuf *pinbuf = a->pin;
    uint8_t mk[KV_PERSO_WRAPPED_MK_LEN], cvc3_mk[KV_PERSO_WRAPPED_MK_LEN],
        smi_mk[KV_PERSO_WRAPPED_MK_LEN], smc_mk[KV_PERSO_WRAPPED_MK_LEN], aip[2],
        rec[KV_PERSO_REC_MAX + 3], static_rec[KV_PERSO_REC_MAX + 3];
    uint8_t cert[KV_ODA_MOD_MAX], rem[KV_ODA_MOD_MAX], ca_index = 0xE1, t[64];
    size_t static_len, rem_len, n;
    char why[256] = "", date[8], pvv[KV_PVV_DIGITS + 1] = "0000", cvv[KV_CVV_DIGITS + 1] = "000",
         icvv[KV_CVV_DIGITS + 1] = "000";
    const char *sc;
    const char *pin_value = pinbuf != NULL ? (const char *)kv_secbuf_ptr(pinbuf) : KV_PERSO_LAB_PIN;
    size_t mk_len = a->transport != NULL ? KV_PERSO_WRAPPED_MK_LEN : 16;
    const char *key;
    int method, cvn, tmpl_cvn, card_cvn = 0, option, has_cvc3 = 0, rc = KV_ERR_INTERNAL, r;
    int pers, has_smi = 0, has_smc = 0, lcol = -1, ucol = -1;
    derived_set der;
    kv_tlv_writer w;
    kv_oda_record odarec;
    kv_oda_static sd;
    kv_oda_pubkey iss_pk, icc_pk;

    *profile = NULL;
    memset(sum, 0, sizeof(*sum));
    memset(fail, 0, sizeof(*fail));
    fail->kind = KV_PERSO_FAIL_INTERNAL;
    fail->err = KV_ERR_INTERNAL;
    memset(&iss_pk, 0, sizeof(iss_pk));
    memset(&issuer, 0, sizeof(issuer));
    memset(&ca_k, 0, sizeof(ca_k));
    memset(&icc_pk, 0, sizeof(icc_pk));
    memset(&der, 0, sizeof(der));
    if (!json_is_object(app_t) || !json_is_string(json_object_get(app_t, "aid")))
        return usage_fail(fail, "%s: no \"application\" object with an \"aid\"", a->tmpl);
    /* ODA method and CVN: option, else template, else dda / 10 */
    v = json_object_get(tmpl, "oda");
    method = oda_method(a->oda != NULL ? a->oda : json_is_string(v) ? json_string_value(v) : "dda");
    if (method < 0)
        return usage_fail(fail, "--oda: not none, sda, dda or cda");
    /* the CVN: the template's personality, the issuer's or the card's choice within it */
    v = json_object_get(tmpl, "cvn");
    if (v != NULL &&
        (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 99))
        return usage_fail(fail, "%s: cvn is not a number", a->tmpl);
    tmpl_cvn = v != NULL ? (int)json_integer_value(v) : 10;
    if (a->cvn != NULL) {
        if (!kv_is_digits(a->cvn, 1, 2))
            return usage_fail(fail, "--cvn: '%s' is not one of " KNOWN_CVNS, a->cvn);
        card_cvn = atoi(a->cvn);
    }
    if ((cvn = kv_perso_resolve_cvn(tmpl_cvn, a->issuer_cvn, card_cvn, why, sizeof(why))) < 0)
        return usage_fail(fail, "%s: %s", a->tmpl, why);
    pers = kv_perso_personality(cvn);
    option = mk_option(cvn);
    if (cvn == 6 && a->imk_aes == NULL)
        return usage_fail(fail, "CVN 6 (CCD, AES) needs an AES issuer master key: \"imk_ac_aes\" "
                                "in the issuer file (perso card: --imk-aes LABEL)");
    if (cvn != 6 && a->imk == NULL)
        return usage_fail(fail, "no issuer master key for the AC key (\"imk_ac\", --imk)");
    /* the service code: one value for 57, 5F30 and the CVVs */
    sc = a->service_code != NULL ? a->service_code
         : json_is_string(json_object_get(app_t, "service_code"))
             ? json_string_value(json_object_get(app_t, "service_code"))
             : "201";
    if (!kv_is_digits(sc, 3, 3))
        return usage_fail(fail, "%s: service_code is not 3 digits", a->tmpl);
    /* card risk management: lcol/ucol also go into 9F14/9F23 */
    if (risk_t != NULL) {
        json_t *l = json_object_get(risk_t, "lcol"), *u = json_object_get(risk_t, "ucol");
        if (!json_is_object(risk_t) ||
            (l != NULL &&
             (!json_is_integer(l) || json_integer_value(l) < 0 || json_integer_value(l) > 255)) ||
            (u != NULL &&
             (!json_is_integer(u) || json_integer_value(u) < 0 || json_integer_value(u) > 255)))
            return usage_fail(fail, "%s: risk is not an object with lcol/ucol 0..255", a->tmpl);
        lcol = l != NULL ? (int)json_integer_value(l) : -1;
        ucol = u != NULL ? (int)json_integer_value(u) : -1;
        if (lcol >= 0 && ucol >= 0 && lcol > ucol)
            return usage_fail(fail, "%s: risk.lcol %d is more than risk.ucol %d", a->tmpl, lcol,
                              ucol);
    }
    if (a->effective != NULL &&
        (!kv_is_digits(a->effective, 4, 4) || atoi(a->effective) % 100 < 1 ||
         atoi(a->effective) % 100 > 12 || atoi(a->effective) > atoi(a->expiry)))
        return usage_fail(fail, "effective date %s is not a YYMM on or before the expiry %s",
                          a->effective, a->expiry);
    {
        /* the derived data elements a template may list */
        uint8_t b[4];
        char d5[5];
        derived_add(&der, 0x5A, DERIVED_DROP, NULL, 0);
        derived_add(&der, 0x5F24, DERIVED_DROP, NULL, 0);
        derived_add(&der, 0x5F34, DERIVED_DROP, NULL, 0);
        derived_add(&der, 0x57, DERIVED_DROP, NULL, 0);
        derived_add(&der, 0x5F20, DERIVED_DROP, NULL, 0);
        snprintf(d5, sizeof(d5), "0%s", sc);
        bcd(d5, b, 2, 0);
        derived_add(&der, 0x5F30, DERIVED_REPLACE, b, 2);
        if (a->effective != NULL) {
            char d7[7];
            snprintf(d7, sizeof(d7), "%s01", a->effective);
            bcd(d7, b, 3, 0);
            derived_add(&der, 0x5F25, DERIVED_REPLACE, b, 3);
        }
        if (lcol >= 0) {
            b[0] = (uint8_t)lcol;
            derived_add(&der, 0x9F14, DERIVED_REPLACE, b, 1);
        }
        if (ucol >= 0) {
            b[0] = (uint8_t)ucol;
            derived_add(&der, 0x9F23, DERIVED_REPLACE, b, 1);
        }
    }
    if (json_is_true(json_object_get(tmpl, "cvc3"))) {
        if (a->cvc3_imk == NULL)
            return usage_fail(fail, "the template needs a CVC3 key: --cvc3-imk LABEL");
        has_cvc3 = 1;
    }
    if ((v = json_object_get(tmpl, "ca_index")) != NULL &&
        (!json_is_string(v) || kv_hex_decode(json_string_value(v), &ca_index, 1) != 1))
        return usage_fail(fail, "%s: ca_index is not one hex byte", a->tmpl);
    if (a->has_ca_index)
        ca_index = a->ca_index;
    v = json_object_get(app_t, "aip");
    if (!json_is_string(v) || kv_hex_decode(json_string_value(v), aip, 2) != 2)
        return usage_fail(fail, "%s: application.aip is not 2 hex bytes", a->tmpl);
    aip[0] &= (uint8_t) ~(0x40 | 0x20 | 0x01);
    aip[0] |= method == KV_ODA_SDA   ? 0x40
              : method == KV_ODA_DDA ? 0x20
              : method == KV_ODA_CDA ? 0x21
                                     : 0;

    rc = KV_ERR_INTERNAL;

    /* the CA key (the scheme's, not the issuer's: in the HSM, or a PEM outside it) */
    if (method != KV_ODA_NONE && a->ca_label == NULL) {
        FILE *cf = fopen(a->ca_key, "r");
        if (cf == NULL) {
            rc = usage_fail(fail, "--ca-key: cannot read %s", a->ca_key);
            goto out;
        }
        ca = PEM_read_PrivateKey(cf, NULL, NULL, NULL);
        fclose(cf);
        if (ca == NULL || EVP_PKEY_get_base_id(ca) != EVP_PKEY_RSA) {
            rc = usage_fail(fail, "--ca-key: %s is not a PEM RSA private key", a->ca_key);
            goto out;
        }
    }

    if ((rc = find_key(fail, find, find_arg, cvn == 6 ? a->imk_aes : a->imk,
                       cvn == 6 ? KV_PERSO_KEY_AES : KV_PERSO_KEY_DES, &imk)) != 0 ||
        (has_cvc3 &&
         (rc = find_key(fail, find, find_arg, a->cvc3_imk, KV_PERSO_KEY_DES, &cvc3_imk)) != 0))
        goto out;
    /* roles (issue 11): the AC key from an imk, the CVC3 key from an imk-cvc3 */
    if ((r = kv_hsm_key_require_role(h, &imk, KV_ROLE_IMK_AC)) != 0 ||
        (has_cvc3 && (r = kv_hsm_key_require_role(h, &cvc3_imk, KV_ROLE_IMK_CVC3)) != 0)) {
        rc = op_fail(fail, r, "the issuer master keys");
        goto out;
    }
    if (a->transport != NULL) {
        /* derived in the token, leaves it only wrapped under the transport key */
        if ((rc = find_key(fail, find, find_arg, a->transport, KV_PERSO_KEY_AES, &transport)) != 0)
            goto out;
        if ((r = kv_perso_icc_mk_wrapped(h, &imk, option, a->pan, a->psn, &transport, mk)) != 0 ||
            (has_cvc3 && (r = kv_perso_icc_mk_wrapped(h, &cvc3_imk, KV_EMV_MK_OPTION_A, a->pan,
                                                      a->psn, &transport, cvc3_mk)) != 0)) {
            rc = op_fail(fail, r, "deriving and wrapping the ICC master key");
            goto out;
        }
    } else if ((r = kv_perso_icc_mk(h, &imk, option, a->pan, a->psn, mk)) != 0 ||
               (has_cvc3 && (r = kv_perso_icc_mk(h, &cvc3_imk, KV_EMV_MK_OPTION_A, a->pan, a->psn,
                                                 cvc3_mk)) != 0)) {
        rc = op_fail(fail, r, "deriving the ICC master key");
        goto out;
    }
    /* the secure messaging keys (issuer scripts), same option as the AC key */
    if (a->imk_smi != NULL) {
        if ((rc = extra_mk(h, fail, find, find_arg, a->imk_smi, KV_ROLE_IMK_SMI, option, a,
                           a->transport != NULL ? &transport : NULL, smi_mk)) != 0)
            goto out;
        has_smi = 1;
    }
    if (a->imk_smc != NULL) {
        if ((rc = extra_mk(h, fail, find, find_arg, a->imk_smc, KV_ROLE_IMK_SMC, option, a,
                           a->transport != NULL ? &transport : NULL, smc_mk)) != 0)
            goto out;
        has_smc = 1;
    }

    /* records */
    rc = KV_ERR_INTERNAL; /* from here, a bare goto out is an internal failure (memory) */
    if ((prof = json_object()) == NULL || (app = json_object()) == NULL ||
        (records = json_array()) == NULL || (keys = json_object()) == NULL ||
        (expect = json_object()) == NULL)
        goto out;

    /* SFI 1 record 1: track 2 equivalent data and the name */
    {
        char track[64];
        uint8_t tb[24];
        size_t tn, i;
        /* discretionary data: PVKI, PVV (4), iCVV (3, the chip's: service code 999), 00 */
        if (a->pvk != NULL) {
            if ((rc = find_key(fail, find, find_arg, a->pvk, KV_PERSO_KEY_DES, &pvk)) != 0)
                goto out;
            if ((r = kv_hsm_pvv_generate(h, &pvk, a->pan, a->pvki, pin_value, strlen(pin_value),
                                         pvv)) != 0) {
                rc = op_fail(fail, r, "computing the PVV");
                goto out;
            }
        }
        if (a->cvk != NULL) {
            if ((rc = find_key(fail, find, find_arg, a->cvk, KV_PERSO_KEY_DES2_AA, &cvk)) != 0)
                goto out;
            if ((r = kv_hsm_cvv_generate(h, &cvk, a->pan, a->expiry, sc, cvv)) != 0 ||
                (r = kv_hsm_cvv_generate(h, &cvk, a->pan, a->expiry, "999", icvv)) != 0) {
                rc = op_fail(fail, r, "computing the CVV / iCVV");
                goto out;
            }
        }
        snprintf(track, sizeof(track), "%sD%s%s%d%s%s00", a->pan, a->expiry, sc,
                 a->pvk != NULL ? a->pvki : 0, pvv, icvv);
        /* 'D' is the separator nibble: pack by hand */
        memset(tb, 0xFF, sizeof(tb));
        for (i = 0; track[i] != '\0' && i / 2 < sizeof(tb); i++) {
            uint8_t d = track[i] == 'D' ? 0x0D : (uint8_t)(track[i] - '0');
            tb[i / 2] = (i % 2) ? (uint8_t)((tb[i / 2] & 0xF0) | d)
                                : (uint8_t)((tb[i / 2] & 0x0F) | d << 4);
        }
        tn = (i + 1) / 2;
        kv_tlv_writer_init(&w, rec, KV_PERSO_REC_MAX);
        kv_tlv_begin(&w, 0x70);
        kv_tlv_put(&w, 0x57, tb, tn);
        if (a->cardholder != NULL)
            kv_tlv_put(&w, 0x5F20, (const uint8_t *)a->cardholder, strlen(a->cardholder));
        else if (json_is_string(v = json_object_get(app_t, "cardholder_name")))
            kv_tlv_put(&w, 0x5F20, (const uint8_t *)json_string_value(v),
                       strlen(json_string_value(v)));
        if ((r = put_tlv_list(json_object_get(app_t, "track_tags"), &w, &der,
                              "application.track_tags", why, sizeof(why))) != 0) {
            rc = usage_fail(fail, "%s: %s", a->tmpl, why);
            goto out;
        }
        kv_tlv_end(&w);
        if (kv_tlv_finish(&w) != 0 || add_record(records, 1, 1, rec, w.len) != 0) {
            rc = usage_fail(fail, "%s: SFI 1 record 1 longer than %d bytes", a->tmpl,
                            KV_PERSO_REC_MAX);
            goto out;
        }
    }

    rc = KV_ERR_INTERNAL; /* the key lookups above left 0 */

    /* SFI 2 record 1: the static data to be authenticated */
    {
        unsigned yy = (unsigned)((a->expiry[0] - '0') * 10 + (a->expiry[1] - '0'));
        unsigned mm = (unsigned)((a->expiry[2] - '0') * 10 + (a->expiry[3] - '0'));
        json_t *tags = json_object_get(app_t, "tags");
        snprintf(date, sizeof(date), "%02u%02u%02u", yy % 100, mm % 100, last_day(yy, mm) % 100);
        kv_tlv_writer_init(&w, static_rec, KV_PERSO_REC_MAX);
        kv_tlv_begin(&w, 0x70);
        n = bcd(a->pan, t, 10, 0);
        kv_tlv_put(&w, 0x5A, t, n);
        n = bcd(date, t, 3, 0);
        kv_tlv_put(&w, 0x5F24, t, n);
        n = bcd(a->psn, t, 1, 0);
        kv_tlv_put(&w, 0x5F34, t, n);
        if ((r = put_tlv_list(tags, &w, &der, "application.tags", why, sizeof(why))) != 0) {
            rc = usage_fail(fail, "%s: %s", a->tmpl, why);
            goto out;
        }
        put_rest(&w, &der); /* 5F30 (and 5F25, 9F14, 9F23) when the template has none */
        if ((method == KV_ODA_DDA || method == KV_ODA_CDA) && !list_has(tags, "9F49"))
            kv_tlv_put(&w, 0x9F49, (const uint8_t *)"\x9F\x37\x04", 3);
        if (method != KV_ODA_NONE)
            kv_tlv_put(&w, 0x9F4A, (const uint8_t *)"\x82", 1);
        kv_tlv_end(&w);
        if (kv_tlv_finish(&w) != 0) {
            rc = usage_fail(fail, "%s: SFI 2 record 1 longer than %d bytes", a->tmpl,
                            KV_PERSO_REC_MAX);
            goto out;
        }
        static_len = w.len;
        if (add_record(records, 2, 1, static_rec, static_len) != 0)
            goto out;
    }
    odarec.sfi = 2;
    odarec.data = static_rec;
    odarec.len = static_len;
    sd.records = &odarec;
    sd.nrecords = 1;
    sd.tag_list = (const uint8_t *)"\x82";
    sd.tag_list_len = 1;
    memcpy(sd.aip, aip, 2);

    if (method != KV_ODA_NONE) {
        uint8_t mmyy[2];
        bcd(a->expiry + 2, mmyy, 1, 0); /* MM */
        bcd(a->expiry, mmyy + 1, 1, 0); /* YY: the first two digits only */
        /* the issuer key in the HSM */
        if ((r = kv_perso_issuer_key(h, a->issuer, 1, KV_PERSO_ISSUER_BITS, 3, &issuer)) != 0) {
            rc = op_fail(fail, r, "issuer RSA key");
            goto out;
        }
        memcpy(iss_pk.modulus, issuer.modulus, issuer.modulus_len);
        iss_pk.modulus_len = issuer.modulus_len;
        memcpy(iss_pk.exponent, issuer.exponent, issuer.exponent_len);
        iss_pk.exponent_len = issuer.exponent_len;
        memset(iss_pk.id, 0xFF, sizeof(iss_pk.id));
        {
            char bin[7];
            snprintf(bin, sizeof(bin), "%.6s", a->pan);
            bcd(bin, iss_pk.id, 4, 1);
        }
        memcpy(iss_pk.expiry, mmyy, 2);
        memcpy(iss_pk.serial, "\x00\x00\x01", 3);
        iss_pk.hash_alg = iss_pk.pk_alg = 1;
        if (a->ca_label != NULL) {
            /* the CA private key lives in the HSM too (imported once by the ceremony) */
            if ((r = kv_perso_issuer_key(h, a->ca_label, 0, 0, 0, &ca_k)) != 0) {
                rc = r == KV_ERR_HSM_KEY
                         ? usage_fail(fail,
                                      "no CA RSA key '%s' in the token (kortvagt perso "
                                      "ca-import)",
                                      a->ca_label)
                         : op_fail(fail, r, "CA RSA key");
                goto out;
            }
            n = ca_k.modulus_len;
            r = kv_oda_issuer_cert_sign(kv_perso_rsa_sign, &ca_k, n, &iss_pk, cert, rem,
                                        sizeof(rem), &rem_len);
        } else {
            n = (size_t)EVP_PKEY_get_size(ca);
            r = kv_oda_issuer_cert_sign(kv_oda_evp_signer, ca, n, &iss_pk, cert, rem, sizeof(rem),
                                        &rem_len);
        }
        if (r != 0) {
            rc = op_fail(fail, r, "signing the issuer certificate with the CA key");
            goto out;
        }
        if (a->tamper != NULL)
            cert[n / 2] ^= 0x01;
        kv_tlv_writer_init(&w, rec, KV_PERSO_REC_MAX);
        kv_tlv_begin(&w, 0x70);
        kv_tlv_put(&w, 0x8F, &ca_index, 1);
        kv_tlv_put(&w, 0x90, cert, n);
        kv_tlv_put(&w, 0x9F32, issuer.exponent, issuer.exponent_len);
        if (rem_len > 0)
            kv_tlv_put(&w, 0x92, rem, rem_len);
        kv_tlv_end(&w);
        if (kv_tlv_finish(&w) != 0 || add_record(records, 2, 2, rec, w.len) != 0)
            goto out;

        kv_tlv_writer_init(&w, rec, KV_PERSO_REC_MAX);
        kv_tlv_begin(&w, 0x70);
        if (method == KV_ODA_SDA) {
            uint8_t dac[2];
            if (RAND_bytes(dac, sizeof(dac)) != 1)
                goto out;
            if ((r = kv_oda_ssad_sign(kv_perso_rsa_sign, &issuer, issuer.modulus_len, dac, &sd,
                                      cert)) != 0) {
                rc = op_fail(fail, r, "signing the static data (SSAD)");
                goto out;
            }
            kv_tlv_put(&w, 0x93, cert, issuer.modulus_len);
        } else {
            if ((icc = EVP_RSA_gen(KV_PERSO_ICC_BITS)) == NULL ||
                kv_oda_pubkey_from_pkey(icc, &icc_pk) != 0)
                goto out;
            bcd(a->pan, icc_pk.id, 10, 1);
            memcpy(icc_pk.expiry, mmyy, 2);
            memcpy(icc_pk.serial, "\x00\x00\x01", 3);
            if ((r = kv_oda_icc_cert_sign(kv_perso_rsa_sign, &issuer, issuer.modulus_len, &icc_pk,
                                          &sd, cert, rem, sizeof(rem), &rem_len)) != 0) {
                rc = op_fail(fail, r, "signing the ICC certificate in the HSM");
                goto out;
            }
            kv_tlv_put(&w, 0x9F46, cert, issuer.modulus_len);
            kv_tlv_put(&w, 0x9F47, icc_pk.exponent, icc_pk.exponent_len);
            if (rem_len > 0)
                kv_tlv_put(&w, 0x9F48, rem, rem_len);
        }
        kv_tlv_end(&w);
        if (kv_tlv_finish(&w) != 0 || add_record(records, 2, 3, rec, w.len) != 0)
            goto out;
    }

    /* the application: template fields, AIP, AFL, records */
    json_object_foreach(app_t, key, v)
    {
        if (strcmp(key, "aip") == 0 || strcmp(key, "service_code") == 0 ||
            strcmp(key, "cardholder_name") == 0 || strcmp(key, "tags") == 0 ||
            strcmp(key, "track_tags") == 0)
            continue;
        json_object_set(app, key, v);
    }
    if (hexstr(app, "aip", aip, 2) != 0 ||
        json_object_set_new(
            app, "afl",
            json_string(method != KV_ODA_NONE ? "08010100 10010301" : "08010100 10010100")) != 0 ||
        json_object_set(app, "records", records) != 0)
        goto out;

    /* keys */
    if ((v = json_object_get(tmpl, "keys")) != NULL && json_is_object(v))
        json_object_update(keys, v);
    json_object_set_new(keys, "cvn", json_integer(cvn));
    if (!json_is_string(json_object_get(keys, "dki")))
        json_object_set_new(keys, "dki", json_string("01"));
    v = json_object_get(keys, "iad_format");
    if (pers == KV_PERSO_PERS_VISA) {
        /* the template's format when its CVN stands, else the CVN's: 2 for 22, 0 otherwise */
        int fmt = cvn == 22 ? 2 : 0;
        if (v != NULL && cvn == tmpl_cvn) {
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 3 ||
                (json_integer_value(v) == 2) != (cvn == 22)) {
                rc = usage_fail(fail, "%s: keys.iad_format is not 0..3 (2 with CVN 22 only)",
                                a->tmpl);
                goto out;
            }
            fmt = (int)json_integer_value(v);
        }
        json_object_set_new(keys, "iad_format", json_integer(fmt));
        if (fmt == 0)
            json_object_del(keys, "idd");
    } else if (v != NULL) {
        rc = usage_fail(fail, "%s: keys.iad_format is for the Visa CVNs only", a->tmpl);
        goto out;
    }
    if (hexstr(keys, a->transport != NULL ? "icc_mk_ac_wrapped" : "icc_mk_ac", mk, mk_len) != 0 ||
        (has_cvc3 && hexstr(keys, a->transport != NULL ? "icc_mk_cvc3_wrapped" : "icc_mk_cvc3",
                            cvc3_mk, mk_len) != 0) ||
        (has_smi && hexstr(keys, a->transport != NULL ? "icc_mk_smi_wrapped" : "icc_mk_smi", smi_mk,
                           mk_len) != 0) ||
        (has_smc && hexstr(keys, a->transport != NULL ? "icc_mk_smc_wrapped" : "icc_mk_smc", smc_mk,
                           mk_len) != 0))
        goto out;
    if (icc != NULL) {
        char *pem = pem_of(icc);
        if (pem == NULL)
            goto out;
        json_object_set_new(keys, "icc_rsa", json_string(pem));
        kv_wipe(pem, strlen(pem));
        free(pem);
    }

    /* the profile */
    {
        static const char *copy[] = {"name", "atr", "pse", "ppse", "data", "quirks", NULL};
        json_t *pin = json_object(), *apps = json_array(), *tl;
        for (const char **k = copy; *k != NULL; k++)
            if ((v = json_object_get(tmpl, *k)) != NULL)
                json_object_set(prof, *k, v);
        json_array_append(apps, app);
        json_object_set_new(prof, "applications", apps);
        json_object_set_new(pin, "value", json_string(pin_value));
        tl = json_object_get(json_object_get(tmpl, "pin"), "try_limit");
        json_object_set_new(pin, "try_limit",
                            json_integer(json_is_integer(tl) ? json_integer_value(tl) : 3));
        json_object_set_new(prof, "pin", pin);
        json_object_set(prof, "keys", keys);
        if (risk_t != NULL)
            json_object_set_new(prof, "risk", json_deep_copy(risk_t));
        json_object_set_new(expect, "pan", json_string(a->pan));
        json_object_set_new(expect, "expiry", json_string(a->expiry));
        json_object_set_new(expect, "psn", json_string(a->psn));
        json_object_set(expect, "selected_aid", json_object_get(app_t, "aid"));
        json_object_set_new(expect, "oda", json_string(kv_oda_method_name(method)));
        json_object_set_new(expect, "cvn", json_integer(cvn));
        json_object_set_new(expect, "personality", json_string(kv_perso_personality_name(pers)));
        if (a->effective != NULL)
            json_object_set_new(expect, "effective", json_string(a->effective));
        if (a->tamper != NULL)
            json_object_set_new(expect, "tampered", json_string(a->tamper));
        json_object_set_new(expect, "service_code", json_string(sc));
        if (a->issuer_name != NULL)
            json_object_set_new(expect, "issuer", json_string(a->issuer_name));
        if (a->transport != NULL)
            json_object_set_new(expect, "transport_key", json_string(a->transport));
        if (a->pvk != NULL) {
            json_object_set_new(expect, "pvki", json_integer(a->pvki));
            json_object_set_new(expect, "pvv", json_string(pvv));
        }
        if (a->cvk != NULL) {
            json_object_set_new(expect, "cvv", json_string(cvv));
            json_object_set_new(expect, "icvv", json_string(icvv));
        }
        json_object_set(prof, "expect", expect);
    }
    {
        /* what the bench wrote must pass its own consistency check (a template may still
           list a data object twice, or disagree with itself) */
        kv_perso_check_result *res = calloc(1, sizeof(*res));
        int bad = 0;
        if (res == NULL) {
            rc = KV_ERR_NOMEM;
            goto out;
        }
        r = kv_perso_profile_check(prof, NULL, 0, res, why, sizeof(why));
        if (r == 0 && res->nfindings > 0) {
            rc = usage_fail(fail, "%s: the profile would not be consistent: %s%s", a->tmpl,
                            res->findings[0], res->nfindings > 1 ? " (and more)" : "");
            bad = 1;
        } else if (r != 0) {
            rc = op_fail(fail, r, why[0] != '\0' ? why : "checking the profile");
            bad = 1;
        }
        free(res);
        if (bad)
            goto out;
    }
    sum->method = method;
    sum->cvn = cvn;
    sum->personality = pers;
    sum->has_cvc3 = has_cvc3;
    sum->has_smi = has_smi;
    sum->has_smc = has_smc;
    sum->issuer_created = issuer.created;
    *profile = prof;
    prof = NULL; /* the caller's */
    fail->kind = KV_PERSO_FAIL_NONE;
    fail->err = 0;
    rc = 0;
out:
    kv_wipe(mk, sizeof(mk));
    kv_wipe(cvc3_mk, sizeof(cvc3_mk));
    kv_wipe(smi_mk, sizeof(smi_mk));
    kv_wipe(smc_mk, sizeof(smc_mk));
    kv_wipe(pvv, sizeof(pvv));
    EVP_PKEY_free(ca);
    EVP_PKEY_free(icc);
    json_decref(prof);
    json_decref(app);
    json_decref(records);
    json_decref(keys);
    json_decref(expect);
    return rc;
}

/* ---- batches ------------------------------------------------------------------- */

/* Luhn check digit for the digits of body. */
static char luhn_digit(const char *body)
{
    size_t n = strlen(body);
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(body[n - 1 - i] - '0');
        if (i % 2 == 0) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
    }
    return (char)('0' + (10 - sum % 10) % 10);
}

/* see perso_profile.h */
int kv_perso_pan_luhn_ok(const char *pan)
{
    char body[20];
    size_t n = strlen(pan);
    if (n < 2 || n > 19)
        return 0;
    memcpy(body, pan, n - 1);
    body[n - 1] = '\0';
    return luhn_digit(body) == pan[n - 1];
}

/* see perso_profile.h */
int kv_perso_pan_step(const char *pan, unsigned long step, char out[20])
{
    size_t n = strlen(pan);
    char body[20];
    unsigned long carry = step;

    memcpy(body, pan, n - 1);
    body[n - 1] = '\0';
    for (size_t i = n - 1; i-- > 0 && carry > 0;) {
        unsigned long d = (unsigned long)(body[i] - '0') + carry;
        body[i] = (char)('0' + d % 10);
        carry = d / 10;
    }
    if (carry > 0)
        return -1; /* ran out of digits */
    memcpy(out, body, n - 1);
    out[n - 1] = luhn_digit(body);
    out[n] = '\0';
    return 0;
}

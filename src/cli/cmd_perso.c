/*
 * `kortvagt perso`: the personalization bench for virtual cards.
 *
 *   perso card   build a virtual-card profile from a template: ICC master keys
 *                from the IMKs in the HSM, an ICC RSA key, the issuer
 *                certificate (signed by the scheme's test CA, a PEM outside the
 *                HSM), ICC certificate / SSAD signed by the issuer key in the HSM
 *   perso check  read a profile back and verify its certificates under the CA
 *                key file (capk.json), as a terminal would
 *
 * Template format (the files in tests/data/templates):
 * {
 *   "name", "atr", "pse", "ppse", "data", "quirks": as in a card profile,
 *   "pin": {"try_limit": 3},                the PIN comes from --pin-stdin or 1234
 *   "oda": "none" | "sda" | "dda" | "cda",  default for --oda
 *   "cvn": 10 | 18,                         default for --cvn
 *   "ca_index": "E1",                       8F
 *   "cvc3": true,                           needs --cvc3-imk (contactless CVC3)
 *   "keys": {...},                          more "keys" fields (first_ac)
 *   "application": {                        one application: the profile fields
 *       "aid", "label", "priority", "language", "pdol", "gpo_format", ...,
 *       "aip": "1800",                      base AIP; perso adds the ODA bits
 *       "service_code": "201",              track 2 (57)
 *       "cardholder_name": "TEST/CARD",     5F20
 *       "track_tags": TLV list,             more objects in SFI 1 record 1
 *       "tags": TLV list                    static data of SFI 2 record 1 (signed)
 *   }
 * }
 * Records written: SFI 1 rec 1 (57, 5F20, track_tags); SFI 2 rec 1 (5A, 5F24,
 * 5F34, tags, 9F49, 9F4A; the one record for ODA); SFI 2 rec 2 (8F, 90, 9F32,
 * 92); SFI 2 rec 3 (93, or 9F46 9F47 9F48). AFL 08010100 10010301.
 */
#include "apdu/capk.h"
#include "apdu/oda.h"
#include "apdu/tlv.h"
#include "hsm/cvv.h"
#include "hsm/emv_crypto.h"
#include "hsm/pin.h"
#include "hsm/p11_admin.h"
#include "hsm/perso.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/base/secure.h"
#include "src/cli/cli.h"
#include "src/cli/pay_cli.h"

#include <fcntl.h>
#include <limits.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define G "perso"
#define DEFAULT_ISSUER_KEY "perso-issuer"
#define DEFAULT_CA_KEY "tests/data/capk/kortvagt-test-ca-e1.pem"
#define DEFAULT_CAPK "tests/data/capk/capk.json"
#define LAB_PIN "1234"
#define ISSUER_BITS 1024
#define ICC_BITS 768
#define REC_MAX 253 /* a 70 template in one R-APDU */

static int usage(FILE *f)
{
    fprintf(f,
            "Usage: kortvagt perso --issuer FILE --card FILE --out PROFILE [--count N]\n"
            "                      (the bench; kortvagt perso --issuer x --help for the files)\n"
            "       kortvagt perso card --template FILE --out PROFILE --imk LABEL --pan PAN\n"
            "                           --psn NN --expiry YYMM [--oda none|sda|dda|cda]\n"
            "                           [--cvn 10|18] [--cvc3-imk LABEL] [--issuer-key LABEL]\n"
            "                           [--ca-key PEM] [--pin-stdin] [--tamper issuer-cert]\n"
            "                           [--token T] [--module M] [--json]\n"
            "       kortvagt perso check --profile PROFILE [--capk FILE] [--json]\n"
            "       kortvagt perso issuer-key [--label LABEL] [--create] [--json]\n\n"
            "perso card builds a virtual-card profile as an issuer bench would:\n"
            "  the ICC AC master key from the IMK in the HSM (option A; B for CVN 18),\n"
            "  the CVC3 key from --cvc3-imk, an ICC RSA key (768 bits, in the profile),\n"
            "  the issuer RSA key (1024 bits) in the HSM (created on first use, sign-only,\n"
            "  not extractable) signing the ICC certificate / SSAD, and the issuer\n"
            "  certificate signed by the scheme's CA private key (--ca-key, default\n"
            "  " DEFAULT_CA_KEY ", TEST ONLY). The profile (mode 0600) holds\n"
            "  the card's keys and PIN: it is a virtual card, not for real cards.\n"
            "  The PIN is read from stdin with --pin-stdin, else the lab PIN " LAB_PIN ".\n"
            "  --tamper issuer-cert flips one byte of the issuer certificate (negative tests).\n\n"
            "perso check verifies the profile's certificates with the CA key file (default\n"
            "  $KORTVAGT_CAPK, else the source tree's " DEFAULT_CAPK "\n"
            "  beside the binary, else /etc/kortvagt/capk.json, else ./" DEFAULT_CAPK "):\n"
            "  issuer certificate, ICC certificate and the ICC key\n"
            "  in the profile, or the SSAD.\n\n"
            "perso issuer-key shows the issuer RSA key (default label " DEFAULT_ISSUER_KEY ") and\n"
            "  checks that the token refuses to reveal its private parts (exit 1 if not).\n\n"
            "Exit codes: 0 ok, 1 a check failed, 2 usage or bad template/profile, others per\n"
            "kortvagt(1).\n");
    return f == stdout ? KV_EXIT_OK : KV_EXIT_USAGE;
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

/* Parse a TLV list (object or array of pairs) and append each object to w. */
static int put_tlv_list(json_t *v, kv_tlv_writer *w, const char *where, char *why, size_t whylen)
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
            kv_tlv_put(w, tag, val, (size_t)vn);
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
            kv_tlv_put(w, tag, val, (size_t)vn);
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

/* ---- perso card --------------------------------------------------------------- */

typedef struct {
    const char *tmpl, *out, *imk, *cvc3_imk, *pan, *psn, *expiry, *oda, *cvn, *issuer, *ca_key,
        *tamper;
    int pin_stdin;
    /* the issuer-file form (`perso --issuer --card`) */
    const char *transport;    /* AES transport key: ICC MKs leave the HSM wrapped under it */
    const char *ca_label;     /* CA private key in the HSM (else the PEM ca_key) */
    const char *cvk, *pvk;    /* CVV/iCVV and PVV keys; NULL: zeros in track 2 */
    int pvki;                 /* 0..9 */
    const char *service_code; /* overrides the template's */
    const char *cardholder;   /* overrides the template's cardholder_name */
    const char *issuer_name;  /* into "expect" */
    int has_ca_index;
    uint8_t ca_index;
    kv_secbuf *pin; /* the PIN (read by the caller); NULL: the lab PIN */
    int quiet;      /* batch: no per-card output on stdout */
} perso_args;

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

/* The whole build after the arguments are checked; prints its own errors. */
static int perso_build(const perso_args *a, const struct kv_pay_common *c, json_t *tmpl, kv_hsm *h)
{
    json_t *app_t = json_object_get(tmpl, "application"), *prof = NULL, *app = NULL,
           *records = NULL, *keys = NULL, *v, *expect = NULL;
    kv_hsm_key imk, cvc3_imk, transport, cvk, pvk;
    kv_perso_rsa issuer, ca_k;
    EVP_PKEY *ca = NULL, *icc = NULL;
    FILE *f = NULL;
    kv_secbuf *pinbuf = a->pin;
    uint8_t mk[KV_PERSO_WRAPPED_MK_LEN], cvc3_mk[KV_PERSO_WRAPPED_MK_LEN], aip[2], rec[REC_MAX + 3],
        static_rec[REC_MAX + 3];
    uint8_t cert[KV_ODA_MOD_MAX], rem[KV_ODA_MOD_MAX], ca_index = 0xE1, t[64];
    size_t static_len, rem_len, n;
    char why[256] = "", pan_f[20], date[8], pvv[KV_PVV_DIGITS + 1] = "0000",
         cvv[KV_CVV_DIGITS + 1] = "000", icvv[KV_CVV_DIGITS + 1] = "000";
    char track_sc[4] = "201";
    const char *pin_value = pinbuf != NULL ? (const char *)kv_secbuf_ptr(pinbuf) : LAB_PIN;
    size_t mk_len = a->transport != NULL ? KV_PERSO_WRAPPED_MK_LEN : 16;
    const char *key;
    int method, cvn, option, has_cvc3 = 0, rc = KV_EXIT_INTERNAL, r, fd;
    kv_tlv_writer w;
    kv_oda_record odarec;
    kv_oda_static sd;
    kv_oda_pubkey iss_pk, icc_pk;

    memset(&iss_pk, 0, sizeof(iss_pk));
    memset(&issuer, 0, sizeof(issuer));
    memset(&ca_k, 0, sizeof(ca_k));
    memset(&icc_pk, 0, sizeof(icc_pk));
    if (!json_is_object(app_t) || !json_is_string(json_object_get(app_t, "aid")))
        return kv_pay_usage(G, "card", "%s: no \"application\" object with an \"aid\"", a->tmpl);
    /* ODA method and CVN: option, else template, else dda / 10 */
    v = json_object_get(tmpl, "oda");
    method = oda_method(a->oda != NULL ? a->oda : json_is_string(v) ? json_string_value(v) : "dda");
    if (method < 0)
        return kv_pay_usage(G, "card", "--oda: not none, sda, dda or cda");
    if (a->cvn != NULL)
        cvn = strcmp(a->cvn, "10") == 0 ? 10 : strcmp(a->cvn, "18") == 0 ? 18 : -1;
    else
        cvn = json_is_integer(json_object_get(tmpl, "cvn"))
                  ? (int)json_integer_value(json_object_get(tmpl, "cvn"))
                  : 10;
    if (cvn != 10 && cvn != 18)
        return kv_pay_usage(G, "card", "--cvn: not 10 or 18");
    option = cvn == 18 ? KV_EMV_MK_OPTION_B : KV_EMV_MK_OPTION_A;
    if (json_is_true(json_object_get(tmpl, "cvc3"))) {
        if (a->cvc3_imk == NULL)
            return kv_pay_usage(G, "card", "the template needs a CVC3 key: --cvc3-imk LABEL");
        has_cvc3 = 1;
    }
    if ((v = json_object_get(tmpl, "ca_index")) != NULL &&
        (!json_is_string(v) || kv_hex_decode(json_string_value(v), &ca_index, 1) != 1))
        return kv_pay_usage(G, "card", "%s: ca_index is not one hex byte", a->tmpl);
    if (a->has_ca_index)
        ca_index = a->ca_index;
    v = json_object_get(app_t, "aip");
    if (!json_is_string(v) || kv_hex_decode(json_string_value(v), aip, 2) != 2)
        return kv_pay_usage(G, "card", "%s: application.aip is not 2 hex bytes", a->tmpl);
    aip[0] &= (uint8_t) ~(0x40 | 0x20 | 0x01);
    aip[0] |= method == KV_ODA_SDA   ? 0x40
              : method == KV_ODA_DDA ? 0x20
              : method == KV_ODA_CDA ? 0x21
                                     : 0;

    rc = KV_EXIT_INTERNAL;

    /* the CA key (the scheme's, not the issuer's: in the HSM, or a PEM outside it) */
    if (method != KV_ODA_NONE && a->ca_label == NULL) {
        FILE *cf = fopen(a->ca_key, "r");
        if (cf == NULL) {
            rc = kv_pay_usage(G, "card", "--ca-key: cannot read %s", a->ca_key);
            goto out;
        }
        ca = PEM_read_PrivateKey(cf, NULL, NULL, NULL);
        fclose(cf);
        if (ca == NULL || EVP_PKEY_get_base_id(ca) != EVP_PKEY_RSA) {
            rc = kv_pay_usage(G, "card", "--ca-key: %s is not a PEM RSA private key", a->ca_key);
            goto out;
        }
    }

    if ((rc = kv_pay_key(G, "card", h, a->imk, KV_PAY_WANT_DES, &imk)) != 0 ||
        (has_cvc3 && (rc = kv_pay_key(G, "card", h, a->cvc3_imk, KV_PAY_WANT_DES, &cvc3_imk)) != 0))
        goto out;
    if (a->transport != NULL) {
        /* derived in the token, leaves it only wrapped under the transport key */
        if ((rc = kv_pay_key(G, "card", h, a->transport, KV_PAY_WANT_AES, &transport)) != 0)
            goto out;
        if ((r = kv_perso_icc_mk_wrapped(h, &imk, option, a->pan, a->psn, &transport, mk)) != 0 ||
            (has_cvc3 && (r = kv_perso_icc_mk_wrapped(h, &cvc3_imk, KV_EMV_MK_OPTION_A, a->pan,
                                                      a->psn, &transport, cvc3_mk)) != 0)) {
            rc = kv_pay_fail(G, "card", h, r, "deriving and wrapping the ICC master key");
            goto out;
        }
    } else if ((r = kv_perso_icc_mk(h, &imk, option, a->pan, a->psn, mk)) != 0 ||
               (has_cvc3 && (r = kv_perso_icc_mk(h, &cvc3_imk, KV_EMV_MK_OPTION_A, a->pan, a->psn,
                                                 cvc3_mk)) != 0)) {
        rc = kv_pay_fail(G, "card", h, r, "deriving the ICC master key");
        goto out;
    }

    /* records */
    if ((prof = json_object()) == NULL || (app = json_object()) == NULL ||
        (records = json_array()) == NULL || (keys = json_object()) == NULL ||
        (expect = json_object()) == NULL)
        goto out;
    snprintf(pan_f, sizeof(pan_f), "%s", a->pan);

    /* SFI 1 record 1: track 2 equivalent data and the name */
    {
        char track[64];
        const char *sc = a->service_code != NULL ? a->service_code
                         : json_is_string(json_object_get(app_t, "service_code"))
                             ? json_string_value(json_object_get(app_t, "service_code"))
                             : "201";
        uint8_t tb[24];
        size_t tn, i;
        if (!kv_is_digits(sc, 3, 3)) {
            rc = kv_pay_usage(G, "card", "%s: service_code is not 3 digits", a->tmpl);
            goto out;
        }
        /* discretionary data: PVKI, PVV (4), iCVV (3, the chip's: service code 999), 00 */
        if (a->pvk != NULL) {
            if ((rc = kv_pay_key(G, "card", h, a->pvk, KV_PAY_WANT_DES, &pvk)) != 0)
                goto out;
            if ((r = kv_hsm_pvv_generate(h, &pvk, a->pan, a->pvki, pin_value, strlen(pin_value),
                                         pvv)) != 0) {
                rc = kv_pay_fail(G, "card", h, r, "computing the PVV");
                goto out;
            }
        }
        if (a->cvk != NULL) {
            if ((rc = kv_pay_key(G, "card", h, a->cvk, KV_PAY_WANT_DES2_AA, &cvk)) != 0)
                goto out;
            if ((r = kv_hsm_cvv_generate(h, &cvk, a->pan, a->expiry, sc, cvv)) != 0 ||
                (r = kv_hsm_cvv_generate(h, &cvk, a->pan, a->expiry, "999", icvv)) != 0) {
                rc = kv_pay_fail(G, "card", h, r, "computing the CVV / iCVV");
                goto out;
            }
        }
        snprintf(track, sizeof(track), "%sD%s%s%d%s%s00", a->pan, a->expiry, sc,
                 a->pvk != NULL ? a->pvki : 0, pvv, icvv);
        snprintf(track_sc, sizeof(track_sc), "%s", sc);
        /* 'D' is the separator nibble: pack by hand */
        memset(tb, 0xFF, sizeof(tb));
        for (i = 0; track[i] != '\0' && i / 2 < sizeof(tb); i++) {
            uint8_t d = track[i] == 'D' ? 0x0D : (uint8_t)(track[i] - '0');
            tb[i / 2] = (i % 2) ? (uint8_t)((tb[i / 2] & 0xF0) | d)
                                : (uint8_t)((tb[i / 2] & 0x0F) | d << 4);
        }
        tn = (i + 1) / 2;
        kv_tlv_writer_init(&w, rec, REC_MAX);
        kv_tlv_begin(&w, 0x70);
        kv_tlv_put(&w, 0x57, tb, tn);
        if (a->cardholder != NULL)
            kv_tlv_put(&w, 0x5F20, (const uint8_t *)a->cardholder, strlen(a->cardholder));
        else if (json_is_string(v = json_object_get(app_t, "cardholder_name")))
            kv_tlv_put(&w, 0x5F20, (const uint8_t *)json_string_value(v),
                       strlen(json_string_value(v)));
        if ((r = put_tlv_list(json_object_get(app_t, "track_tags"), &w, "application.track_tags",
                              why, sizeof(why))) != 0) {
            rc = kv_pay_usage(G, "card", "%s: %s", a->tmpl, why);
            goto out;
        }
        kv_tlv_end(&w);
        if (kv_tlv_finish(&w) != 0 || add_record(records, 1, 1, rec, w.len) != 0) {
            rc = kv_pay_usage(G, "card", "%s: SFI 1 record 1 longer than %d bytes", a->tmpl,
                              REC_MAX);
            goto out;
        }
    }

    /* SFI 2 record 1: the static data to be authenticated */
    {
        unsigned yy = (unsigned)((a->expiry[0] - '0') * 10 + (a->expiry[1] - '0'));
        unsigned mm = (unsigned)((a->expiry[2] - '0') * 10 + (a->expiry[3] - '0'));
        json_t *tags = json_object_get(app_t, "tags");
        snprintf(date, sizeof(date), "%02u%02u%02u", yy % 100, mm % 100, last_day(yy, mm) % 100);
        kv_tlv_writer_init(&w, static_rec, REC_MAX);
        kv_tlv_begin(&w, 0x70);
        n = bcd(a->pan, t, 10, 0);
        kv_tlv_put(&w, 0x5A, t, n);
        n = bcd(date, t, 3, 0);
        kv_tlv_put(&w, 0x5F24, t, n);
        n = bcd(a->psn, t, 1, 0);
        kv_tlv_put(&w, 0x5F34, t, n);
        if ((r = put_tlv_list(tags, &w, "application.tags", why, sizeof(why))) != 0) {
            rc = kv_pay_usage(G, "card", "%s: %s", a->tmpl, why);
            goto out;
        }
        if ((method == KV_ODA_DDA || method == KV_ODA_CDA) && !list_has(tags, "9F49"))
            kv_tlv_put(&w, 0x9F49, (const uint8_t *)"\x9F\x37\x04", 3);
        if (method != KV_ODA_NONE)
            kv_tlv_put(&w, 0x9F4A, (const uint8_t *)"\x82", 1);
        kv_tlv_end(&w);
        if (kv_tlv_finish(&w) != 0) {
            rc = kv_pay_usage(G, "card", "%s: SFI 2 record 1 longer than %d bytes", a->tmpl,
                              REC_MAX);
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
        if ((r = kv_perso_issuer_key(h, a->issuer, 1, ISSUER_BITS, 3, &issuer)) != 0) {
            rc = kv_pay_fail(G, "card", h, r, "issuer RSA key");
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
                         ? kv_pay_usage(G, "card",
                                        "no CA RSA key '%s' in the token (kortvagt perso "
                                        "ca-import)",
                                        a->ca_label)
                         : kv_pay_fail(G, "card", h, r, "CA RSA key");
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
            rc = kv_pay_fail(G, "card", h, r, "signing the issuer certificate with the CA key");
            goto out;
        }
        if (a->tamper != NULL)
            cert[n / 2] ^= 0x01;
        kv_tlv_writer_init(&w, rec, REC_MAX);
        kv_tlv_begin(&w, 0x70);
        kv_tlv_put(&w, 0x8F, &ca_index, 1);
        kv_tlv_put(&w, 0x90, cert, n);
        kv_tlv_put(&w, 0x9F32, issuer.exponent, issuer.exponent_len);
        if (rem_len > 0)
            kv_tlv_put(&w, 0x92, rem, rem_len);
        kv_tlv_end(&w);
        if (kv_tlv_finish(&w) != 0 || add_record(records, 2, 2, rec, w.len) != 0)
            goto out;

        kv_tlv_writer_init(&w, rec, REC_MAX);
        kv_tlv_begin(&w, 0x70);
        if (method == KV_ODA_SDA) {
            uint8_t dac[2];
            if (RAND_bytes(dac, sizeof(dac)) != 1)
                goto out;
            if ((r = kv_oda_ssad_sign(kv_perso_rsa_sign, &issuer, issuer.modulus_len, dac, &sd,
                                      cert)) != 0) {
                rc = kv_pay_fail(G, "card", h, r, "signing the static data (SSAD)");
                goto out;
            }
            kv_tlv_put(&w, 0x93, cert, issuer.modulus_len);
        } else {
            if ((icc = EVP_RSA_gen(ICC_BITS)) == NULL || kv_oda_pubkey_from_pkey(icc, &icc_pk) != 0)
                goto out;
            bcd(a->pan, icc_pk.id, 10, 1);
            memcpy(icc_pk.expiry, mmyy, 2);
            memcpy(icc_pk.serial, "\x00\x00\x01", 3);
            if ((r = kv_oda_icc_cert_sign(kv_perso_rsa_sign, &issuer, issuer.modulus_len, &icc_pk,
                                          &sd, cert, rem, sizeof(rem), &rem_len)) != 0) {
                rc = kv_pay_fail(G, "card", h, r, "signing the ICC certificate in the HSM");
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
    if (hexstr(keys, a->transport != NULL ? "icc_mk_ac_wrapped" : "icc_mk_ac", mk, mk_len) != 0 ||
        (has_cvc3 && hexstr(keys, a->transport != NULL ? "icc_mk_cvc3_wrapped" : "icc_mk_cvc3",
                            cvc3_mk, mk_len) != 0))
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
        json_object_set_new(expect, "pan", json_string(a->pan));
        json_object_set_new(expect, "expiry", json_string(a->expiry));
        json_object_set_new(expect, "psn", json_string(a->psn));
        json_object_set(expect, "selected_aid", json_object_get(app_t, "aid"));
        json_object_set_new(expect, "oda", json_string(kv_oda_method_name(method)));
        json_object_set_new(expect, "cvn", json_integer(cvn));
        if (a->tamper != NULL)
            json_object_set_new(expect, "tampered", json_string(a->tamper));
        json_object_set_new(expect, "service_code", json_string(track_sc));
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
    fd = open(a->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
        if (fd >= 0)
            close(fd);
        rc = kv_pay_usage(G, "card", "--out: cannot write %s", a->out);
        goto out;
    }
    if (json_dumpf(prof, f, JSON_INDENT(2)) != 0 || fputc('\n', f) == EOF) {
        rc = kv_cli_fail(KV_ERR_IO, a->out);
        goto out;
    }
    if (c->json) {
        json_t *o = json_object();
        json_object_set_new(o, "out", json_string(a->out));
        json_object_set_new(o, "pan", kv_pay_json_pan(a->pan));
        json_object_set_new(o, "psn", json_string(a->psn));
        json_object_set_new(o, "oda", json_string(kv_oda_method_name(method)));
        json_object_set_new(o, "cvn", json_integer(cvn));
        json_object_set_new(o, "cvc3", json_boolean(has_cvc3));
        if (method != KV_ODA_NONE) {
            json_object_set_new(o, "issuer_key", json_string(a->issuer));
            json_object_set_new(o, "issuer_key_created", json_boolean(issuer.created));
        }
        json_object_set_new(o, "keys_wrapped", json_boolean(a->transport != NULL));
        rc = a->quiet ? (json_decref(o), KV_EXIT_OK) : kv_pay_json(o);
    } else if (a->quiet) {
        rc = KV_EXIT_OK;
    } else {
        char masked[32];
        kv_pan_mask(a->pan, masked);
        printf("personalized %s: PAN %s PSN %s, ODA %s, CVN %d%s -> %s\n",
               json_string_value(json_object_get(app_t, "aid")), masked, a->psn,
               kv_oda_method_name(method), cvn, has_cvc3 ? ", CVC3" : "", a->out);
        if (method != KV_ODA_NONE)
            printf("issuer key '%s' in the HSM%s\n", a->issuer, issuer.created ? " (created)" : "");
        rc = KV_EXIT_OK;
    }
out:
    if (f != NULL && fclose(f) != 0 && rc == KV_EXIT_OK)
        rc = kv_cli_fail(KV_ERR_IO, a->out);
    kv_wipe(mk, sizeof(mk));
    kv_wipe(cvc3_mk, sizeof(cvc3_mk));
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

static int cmd_card(int argc, char **argv)
{
    perso_args a;
    struct kv_pay_common c;
    json_t *tmpl = NULL;
    json_error_t e;
    int rc;
    memset(&a, 0, sizeof(a));
    struct kv_pay_opt opts[] = {
        {"template", &a.tmpl, NULL},       {"out", &a.out, NULL},       {"imk", &a.imk, NULL},
        {"cvc3-imk", &a.cvc3_imk, NULL},   {"pan", &a.pan, NULL},       {"psn", &a.psn, NULL},
        {"expiry", &a.expiry, NULL},       {"oda", &a.oda, NULL},       {"cvn", &a.cvn, NULL},
        {"issuer-key", &a.issuer, NULL},   {"ca-key", &a.ca_key, NULL}, {"tamper", &a.tamper, NULL},
        {"pin-stdin", NULL, &a.pin_stdin}, {NULL, NULL, NULL},
    };
    if ((rc = kv_pay_parse(G, "card", argc, argv, 2, opts, &c)) != KV_EXIT_OK)
        return rc;
    if (c.help)
        return usage(stdout);
    if ((rc = kv_pay_require(G, "card", "template", a.tmpl)) != 0 ||
        (rc = kv_pay_require(G, "card", "out", a.out)) != 0 ||
        (rc = kv_pay_require(G, "card", "imk", a.imk)) != 0 ||
        (rc = kv_pay_require(G, "card", "pan", a.pan)) != 0 ||
        (rc = kv_pay_require(G, "card", "psn", a.psn)) != 0 ||
        (rc = kv_pay_require(G, "card", "expiry", a.expiry)) != 0)
        return rc;
    if ((rc = kv_pay_pan(G, "card", a.pan)) != 0 ||
        (rc = kv_pay_digits(G, "card", "psn", a.psn, 2, 2)) != 0 ||
        (rc = kv_pay_digits(G, "card", "expiry", a.expiry, 4, 4)) != 0)
        return rc;
    if (strlen(a.pan) < 12 || strlen(a.pan) > 19)
        return kv_pay_usage(G, "card", "--pan: a card PAN has 12..19 digits");
    if ((a.expiry[2] - '0') * 10 + (a.expiry[3] - '0') < 1 ||
        (a.expiry[2] - '0') * 10 + (a.expiry[3] - '0') > 12)
        return kv_pay_usage(G, "card", "--expiry: month %.2s is not 01..12", a.expiry + 2);
    if (a.tamper != NULL && strcmp(a.tamper, "issuer-cert") != 0)
        return kv_pay_usage(G, "card", "--tamper: only issuer-cert is known");
    if (a.issuer == NULL)
        a.issuer = DEFAULT_ISSUER_KEY;
    if (a.ca_key == NULL)
        a.ca_key = DEFAULT_CA_KEY;
    if ((tmpl = json_load_file(a.tmpl, JSON_REJECT_DUPLICATES, &e)) == NULL ||
        !json_is_object(tmpl)) {
        rc = kv_pay_usage(G, "card", "--template: %s: %s", a.tmpl,
                          tmpl == NULL ? e.text : "not a JSON object");
        json_decref(tmpl);
        return rc;
    }
    {
        kv_hsm *h = NULL;
        size_t pinlen = 0;
        if (a.pin_stdin && (rc = kv_pay_read_pin(G, "card", &a.pin, &pinlen)) != 0)
            goto card_out;
        if ((rc = kv_pay_open(G, "card", &c, &h)) != 0)
            goto card_out;
        rc = perso_build(&a, &c, tmpl, h);
    card_out:
        kv_hsm_close(h);
        kv_secbuf_free(a.pin);
    }
    json_decref(tmpl);
    return rc;
}

/* ---- perso check ----------------------------------------------------------------- */

/* Values of the tags perso check needs, pointing into the decoded records. */
typedef struct {
    uint8_t recs[3][REC_MAX + 3];
    size_t rec_len[3];
    kv_oda_record oda[1];
} check_recs;

static const uint8_t *find_in(const check_recs *cr, size_t nrec, uint32_t tag, size_t *len)
{
    kv_tlv t;
    for (size_t i = 0; i < nrec; i++)
        if (kv_tlv_find(cr->recs[i], cr->rec_len[i], tag, &t) == 0) {
            *len = t.len;
            return t.value;
        }
    *len = 0;
    return NULL;
}

static uint32_t today(void)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    return (uint32_t)((tm.tm_year % 100) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday);
}

/*
 * The CA key file when no --capk is given: $KORTVAGT_CAPK, else the source
 * tree's test keys next to the binary (BUILD/bin/kortvagt ->
 * BUILD/../tests/data/capk/capk.json), else /etc/kortvagt/capk.json, else
 * tests/data/capk/capk.json in the current directory. Never NULL.
 */
static const char *capk_default_path(char *buf, size_t cap)
{
    const char *env = getenv("KORTVAGT_CAPK");
    char exe[PATH_MAX];
    ssize_t n;

    if (env != NULL && env[0] != '\0')
        return env;
    if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) > 0) {
        char *slash;
        exe[n] = '\0';
        for (int up = 0; up < 3 && (slash = strrchr(exe, '/')) != NULL; up++) {
            *slash = '\0'; /* .../bin/kortvagt -> .../bin -> BUILD -> the tree */
            if (up == 2 && (size_t)snprintf(buf, cap, "%s/tests/data/capk/capk.json", exe) < cap &&
                access(buf, R_OK) == 0)
                return buf;
        }
    }
    if (access("/etc/kortvagt/capk.json", R_OK) == 0)
        return "/etc/kortvagt/capk.json";
    return "tests/data/capk/capk.json";
}

static int cmd_check(int argc, char **argv)
{
    const char *profile = NULL, *capk_path = NULL;
    char capk_buf[PATH_MAX];
    struct kv_pay_common c;
    struct kv_pay_opt opts[] = {
        {"profile", &profile, NULL}, {"capk", &capk_path, NULL}, {NULL, NULL, NULL}};
    json_t *root = NULL, *app, *recs, *r, *out = NULL;
    json_error_t e;
    kv_capk_store *store = NULL;
    const kv_capk *ca;
    check_recs *cr = NULL;
    size_t nrec = 0, i, l90, l92, l9f32, l8f, l5a, l46, l47, l48, l93;
    const uint8_t *p8f, *p5a, *p46, *p93;
    uint8_t aid[16], rid[5];
    char why[256];
    kv_oda_cert_in in;
    kv_oda_pubkey iss, icc;
    kv_oda_static sd;
    uint32_t date = today();
    int rc, ok = 1, res;
    const char *issuer_res = "not checked", *icc_res = "absent", *ssad_res = "absent",
               *key_res = "absent";

    if ((rc = kv_pay_parse(G, "check", argc, argv, 2, opts, &c)) != KV_EXIT_OK)
        return rc;
    if (c.help)
        return usage(stdout);
    if ((rc = kv_pay_require(G, "check", "profile", profile)) != 0)
        return rc;
    if (capk_path == NULL)
        capk_path = capk_default_path(capk_buf, sizeof(capk_buf));
    rc = KV_EXIT_INTERNAL;
    if ((root = json_load_file(profile, 0, &e)) == NULL) {
        rc = kv_pay_usage(G, "check", "--profile: %s: %s", profile, e.text);
        goto out;
    }
    if (kv_capk_store_load(capk_path, &store, why, sizeof(why)) != 0) {
        rc = kv_pay_usage(G, "check", "--capk: %s: %s", capk_path, why);
        goto out;
    }
    app = json_array_get(json_object_get(root, "applications"), 0);
    recs = json_object_get(app, "records");
    if (!json_is_string(json_object_get(app, "aid")) ||
        kv_hex_decode(json_string_value(json_object_get(app, "aid")), aid, sizeof(aid)) < 5 ||
        !json_is_array(recs)) {
        rc = kv_pay_usage(G, "check", "%s: no application with an aid and records", profile);
        goto out;
    }
    memcpy(rid, aid, 5);
    if ((cr = calloc(1, sizeof(*cr))) == NULL)
        goto out;
    /* the perso layout: SFI 2 records 1..3 ("hex") */
    json_array_foreach(recs, i, r)
    {
        json_t *hx = json_object_get(r, "hex");
        json_int_t sfi = json_integer_value(json_object_get(r, "sfi")),
                   num = json_integer_value(json_object_get(r, "record"));
        int n;
        if (sfi != 2 || num < 1 || num > 3 || !json_is_string(hx))
            continue;
        if ((n = kv_hex_decode(json_string_value(hx), cr->recs[num - 1], REC_MAX + 3)) < 0) {
            rc = kv_pay_usage(G, "check", "%s: record %d of SFI 2 is not hex", profile, (int)num);
            goto out;
        }
        cr->rec_len[num - 1] = (size_t)n;
        if ((size_t)num > nrec)
            nrec = (size_t)num;
    }
    memset(&sd, 0, sizeof(sd));
    cr->oda[0].sfi = 2;
    cr->oda[0].data = cr->recs[0];
    cr->oda[0].len = cr->rec_len[0];
    sd.records = cr->oda;
    sd.nrecords = 1;
    sd.tag_list = (const uint8_t *)"\x82";
    sd.tag_list_len = 1;
    if (!json_is_string(json_object_get(app, "aip")) ||
        kv_hex_decode(json_string_value(json_object_get(app, "aip")), sd.aip, 2) != 2) {
        rc = kv_pay_usage(G, "check", "%s: application.aip is not 2 hex bytes", profile);
        goto out;
    }
    p8f = find_in(cr, nrec, 0x8F, &l8f);
    p5a = find_in(cr, nrec, 0x5A, &l5a);
    memset(&in, 0, sizeof(in));
    in.cert = find_in(cr, nrec, 0x90, &l90);
    in.cert_len = l90;
    in.remainder = find_in(cr, nrec, 0x92, &l92);
    in.remainder_len = l92;
    in.exponent = find_in(cr, nrec, 0x9F32, &l9f32);
    in.exponent_len = l9f32;
    if (p8f == NULL || l8f != 1 || p5a == NULL) {
        issuer_res = kv_strerror(KV_ERR_ODA_DATA_MISSING);
        ok = 0;
        goto report;
    }
    if ((ca = kv_capk_find(store, rid, p8f[0])) == NULL) {
        issuer_res = kv_strerror(KV_ERR_ODA_CA_UNKNOWN);
        ok = 0;
        goto report;
    }
    if ((res = kv_oda_issuer_key_recover(ca, &in, p5a, l5a, date, &iss)) != 0) {
        issuer_res = kv_strerror(res);
        ok = 0;
        goto report;
    }
    issuer_res = "ok";
    if ((p46 = find_in(cr, nrec, 0x9F46, &l46)) != NULL) {
        kv_oda_cert_in ii = {p46, l46, NULL, 0, NULL, 0};
        ii.remainder = find_in(cr, nrec, 0x9F48, &l48);
        ii.remainder_len = l48;
        ii.exponent = find_in(cr, nrec, 0x9F47, &l47);
        ii.exponent_len = l47;
        if ((res = kv_oda_icc_key_recover(&iss, &ii, p5a, l5a, date, &sd, &icc)) != 0) {
            icc_res = kv_strerror(res);
            ok = 0;
        } else {
            /* the recovered key must be the profile's ICC key */
            json_t *pem = json_object_get(json_object_get(root, "keys"), "icc_rsa");
            BIO *b = json_is_string(pem) ? BIO_new_mem_buf(json_string_value(pem), -1) : NULL;
            EVP_PKEY *k = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
            kv_oda_pubkey mine;
            icc_res = "ok";
            key_res = "mismatch";
            if (k != NULL && kv_oda_pubkey_from_pkey(k, &mine) == 0 &&
                mine.modulus_len == icc.modulus_len &&
                memcmp(mine.modulus, icc.modulus, icc.modulus_len) == 0)
                key_res = "ok";
            else
                ok = 0;
            EVP_PKEY_free(k);
            BIO_free(b);
        }
    }
    if ((p93 = find_in(cr, nrec, 0x93, &l93)) != NULL) {
        if ((res = kv_oda_sda_verify(&iss, p93, l93, &sd, NULL)) != 0) {
            ssad_res = kv_strerror(res);
            ok = 0;
        } else {
            ssad_res = "ok";
        }
    }
report:
    if (c.json) {
        out = json_object();
        json_object_set_new(out, "profile", json_string(profile));
        json_object_set_new(out, "ok", json_boolean(ok));
        json_object_set_new(out, "issuer_certificate", json_string(issuer_res));
        json_object_set_new(out, "icc_certificate", json_string(icc_res));
        json_object_set_new(out, "icc_key_matches_profile", json_string(key_res));
        json_object_set_new(out, "ssad", json_string(ssad_res));
        rc = kv_pay_json(out);
        if (rc == KV_EXIT_OK && !ok)
            rc = KV_EXIT_MISMATCH;
    } else {
        printf("issuer certificate: %s\nICC certificate: %s\nICC key matches profile: %s\n"
               "SSAD: %s\n%s\n",
               issuer_res, icc_res, key_res, ssad_res, ok ? "ok" : "FAILED");
        rc = ok ? KV_EXIT_OK : KV_EXIT_MISMATCH;
    }
out:
    free(cr);
    kv_capk_store_free(store);
    json_decref(root);
    return rc;
}

/* ---- perso issuer-key -------------------------------------------------------------- */

/*
 * Show (or --create) the issuer RSA key in the HSM and probe that its private
 * parts cannot be read: CKA_PRIVATE_EXPONENT and CKA_VALUE must fail.
 */
static int cmd_issuer_key(int argc, char **argv)
{
    const char *label = NULL;
    int create = 0, rc, r, refused = 1;
    struct kv_pay_common c;
    struct kv_pay_opt opts[] = {
        {"label", &label, NULL}, {"create", NULL, &create}, {NULL, NULL, NULL}};
    static const struct {
        unsigned long attr;
        const char *name;
    } probes[] = {{0x123 /* CKA_PRIVATE_EXPONENT */, "CKA_PRIVATE_EXPONENT"},
                  {0x124 /* CKA_PRIME_1 */, "CKA_PRIME_1"},
                  {0x11 /* CKA_VALUE */, "CKA_VALUE"}};
    unsigned long rv[3];
    kv_hsm *h = NULL;
    kv_perso_rsa k;

    if ((rc = kv_pay_parse(G, "issuer-key", argc, argv, 2, opts, &c)) != KV_EXIT_OK)
        return rc;
    if (c.help)
        return usage(stdout);
    if (label == NULL)
        label = DEFAULT_ISSUER_KEY;
    if ((rc = kv_pay_open(G, "issuer-key", &c, &h)) != 0)
        return rc;
    if ((r = kv_perso_issuer_key(h, label, create, ISSUER_BITS, 3, &k)) != 0) {
        rc = r == KV_ERR_HSM_KEY
                 ? kv_pay_usage(G, "issuer-key", "no RSA key '%s' in the token (use --create)",
                                label)
                 : kv_pay_fail(G, "issuer-key", h, r, "issuer RSA key");
        goto out;
    }
    for (size_t i = 0; i < 3; i++) {
        if ((r = kv_hsm_object_probe_attr(h, k.priv, probes[i].attr, &rv[i])) != 0) {
            rc = kv_pay_fail(G, "issuer-key", h, r, "reading key attributes");
            goto out;
        }
        refused &= rv[i] != 0; /* CKR_OK: the value came out */
    }
    if (c.json) {
        json_t *o = json_object(), *p = json_object();
        json_object_set_new(o, "label", json_string(label));
        json_object_set_new(o, "created", json_boolean(k.created));
        json_object_set_new(o, "modulus_bits", json_integer((json_int_t)k.modulus_len * 8));
        json_object_set_new(o, "exponent", kv_pay_json_hex(k.exponent, k.exponent_len));
        for (size_t i = 0; i < 3; i++)
            json_object_set_new(p, probes[i].name, json_string(kv_hsm_rv_name(rv[i])));
        json_object_set_new(o, "private_read", p);
        json_object_set_new(o, "private_parts_readable", json_boolean(!refused));
        rc = kv_pay_json(o);
    } else {
        printf("issuer key '%s'%s: RSA %zu bits, exponent %s\n", label,
               k.created ? " (created)" : "", k.modulus_len * 8,
               k.exponent_len == 1 ? "3" : "65537");
        for (size_t i = 0; i < 3; i++)
            printf("read %s: %s\n", probes[i].name, kv_hsm_rv_name(rv[i]));
        printf("private parts %s\n", refused ? "not readable" : "READABLE");
        rc = KV_EXIT_OK;
    }
    if (rc == KV_EXIT_OK && !refused)
        rc = KV_EXIT_MISMATCH;
out:
    kv_hsm_close(h);
    return rc;
}

/* ---- perso --issuer FILE --card FILE --out PROFILE [--count N] ------------------ */

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

/* 1 when the last digit of pan is its Luhn check digit. */
static int luhn_digit_ok(const char *pan)
{
    char body[20];
    size_t n = strlen(pan);
    if (n < 2 || n > 19)
        return 0;
    memcpy(body, pan, n - 1);
    body[n - 1] = '\0';
    return luhn_digit(body) == pan[n - 1];
}

/* pan + step: the body (all but the check digit) counted up, a new Luhn digit. */
static int pan_step(const char *pan, unsigned long step, char out[20])
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

/* Only the allowed fields; names the first other one. */
static int only_fields(json_t *o, const char *const *allowed, const char *file, const char *what)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        size_t i;
        for (i = 0; allowed[i] != NULL && strcmp(allowed[i], k) != 0; i++)
            ;
        if (allowed[i] == NULL)
            return kv_pay_usage(G, "", "%s %s: unknown field \"%s\"", what, file, k);
    }
    return 0;
}

/* A string field (NULL when absent); a non-string is a usage error (*rc). */
static const char *str_field(json_t *o, const char *key, const char *file, int *rc)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL)
        return NULL;
    if (!json_is_string(v)) {
        *rc = kv_pay_usage(G, "", "%s: \"%s\" is not a string", file, key);
        return NULL;
    }
    return json_string_value(v);
}

static int usage_bench(FILE *f)
{
    fprintf(
        f,
        "Usage: kortvagt perso --issuer FILE --card FILE --out PROFILE [--count N]\n"
        "                      [--pin-stdin] [--tamper issuer-cert] [--token T] [--module M]\n"
        "                      [--json]\n"
        "       kortvagt perso ca-import --label LABEL --pem FILE   (key ceremony, TEST CA)\n\n"
        "The personalization bench: one virtual-card profile per card, built with the\n"
        "issuer's keys in the HSM. ICC master keys are derived from the IMKs inside the\n"
        "HSM and leave it only wrapped under the transport key (CKM_AES_KEY_WRAP); the\n"
        "virtual card unwraps them with $KORTVAGT_TRANSPORT_KEY. The issuer RSA key and\n"
        "the CA key are in the HSM and sign the certificates; CVV, iCVV and PVV are\n"
        "computed in the HSM and written into track 2 (57: PVKI, PVV, iCVV) and\n"
        "the profile's \"expect\".\n\n"
        "Issuer file (JSON): {\"issuer\": NAME, \"imk_ac\": LABEL, \"imk_cvc3\": LABEL,\n"
        "  \"cvk\": LABEL, \"pvk\": LABEL, \"pvki\": 0..9, \"issuer_key\": LABEL, \"ca_key\":\n"
        "  LABEL (HSM), \"ca_index\": \"E1\", \"rid\": \"A000000003\", \"transport_key\": LABEL,\n"
        "  \"cvn\": 10|18, \"oda\": \"none|sda|dda|cda\"}  (imk_ac, transport_key required)\n"
        "Card file (JSON): {\"template\": FILE (relative to the card file), \"pan\",\n"
        "  \"psn\": \"01\", \"expiry\": \"YYMM\", \"service_code\": \"201\", \"cardholder_name\",\n"
        "  \"pin\": \"lab\" (1234) | \"stdin\", \"oda\", \"cvn\" (override the issuer's)}\n\n"
        "--count N   N cards with consecutive PANs (Luhn check digit recomputed), written\n"
        "            to PROFILE-0001.json ... (PROFILE without its .json), progress on stderr\n"
        "--pin-stdin the PIN from stdin (same as \"pin\": \"stdin\"); never on argv\n\n"
        "Exit codes: 0 ok, 2 usage or bad issuer/card file, 5 HSM (key missing), 8 I/O.\n");
    return f == stdout ? KV_EXIT_OK : KV_EXIT_USAGE;
}

static int cmd_bench(int argc, char **argv)
{
    static const char *const issuer_fields[] = {
        "issuer",   "imk_ac",        "imk_cvc3", "cvk", "pvk", "pvki",  "issuer_key", "ca_key",
        "ca_index", "transport_key", "cvn",      "oda", "rid", "notes", NULL};
    static const char *const card_fields[] = {
        "template", "pan", "psn",   "expiry", "service_code", "cardholder_name", "pin",
        "oda",      "cvn", "notes", NULL};
    const char *issuer_f = NULL, *card_f = NULL, *out = NULL, *count_s = NULL, *tamper = NULL,
               *tname, *pin_src, *rid;
    int pin_stdin = 0, rc, bad = 0;
    struct kv_pay_common c;
    struct kv_pay_opt opts[] = {
        {"issuer", &issuer_f, NULL}, {"card", &card_f, NULL},   {"out", &out, NULL},
        {"count", &count_s, NULL},   {"tamper", &tamper, NULL}, {"pin-stdin", NULL, &pin_stdin},
        {NULL, NULL, NULL},
    };
    json_t *iss = NULL, *card = NULL, *tmpl = NULL, *v;
    json_error_t e;
    perso_args a;
    kv_hsm *h = NULL;
    size_t pinlen = 0;
    unsigned long count = 1;
    char tpath[4096], cvn_s[4], outname[4096], pan[20];
    uint8_t ridb[5], aid[16];

    memset(&a, 0, sizeof(a));
    if ((rc = kv_pay_parse(G, "", argc, argv, 1, opts, &c)) != KV_EXIT_OK)
        return rc;
    if (c.help)
        return usage_bench(stdout);
    if ((rc = kv_pay_require(G, "", "issuer", issuer_f)) != 0 ||
        (rc = kv_pay_require(G, "", "card", card_f)) != 0 ||
        (rc = kv_pay_require(G, "", "out", out)) != 0)
        return rc;
    if (count_s != NULL) {
        char *end;
        if (!kv_is_digits(count_s, 1, 6) || (count = strtoul(count_s, &end, 10)) < 1 ||
            count > 100000)
            return kv_pay_usage(G, "", "--count: '%s' is not 1..100000", count_s);
    }
    if (tamper != NULL && strcmp(tamper, "issuer-cert") != 0)
        return kv_pay_usage(G, "", "--tamper: only issuer-cert is known");
    a.tamper = tamper;
    rc = KV_EXIT_USAGE;
    if ((iss = json_load_file(issuer_f, JSON_REJECT_DUPLICATES, &e)) == NULL ||
        !json_is_object(iss)) {
        rc = kv_pay_usage(G, "", "--issuer: %s: %s", issuer_f, iss ? "not a JSON object" : e.text);
        goto out;
    }
    if ((card = json_load_file(card_f, JSON_REJECT_DUPLICATES, &e)) == NULL ||
        !json_is_object(card)) {
        rc = kv_pay_usage(G, "", "--card: %s: %s", card_f, card ? "not a JSON object" : e.text);
        goto out;
    }
    if ((rc = only_fields(iss, issuer_fields, issuer_f, "issuer file")) != 0 ||
        (rc = only_fields(card, card_fields, card_f, "card file")) != 0)
        goto out;
    /* the issuer */
    a.issuer_name = str_field(iss, "issuer", issuer_f, &bad);
    a.imk = str_field(iss, "imk_ac", issuer_f, &bad);
    a.cvc3_imk = str_field(iss, "imk_cvc3", issuer_f, &bad);
    a.cvk = str_field(iss, "cvk", issuer_f, &bad);
    a.pvk = str_field(iss, "pvk", issuer_f, &bad);
    a.issuer = str_field(iss, "issuer_key", issuer_f, &bad);
    a.ca_label = str_field(iss, "ca_key", issuer_f, &bad);
    a.transport = str_field(iss, "transport_key", issuer_f, &bad);
    a.oda = str_field(iss, "oda", issuer_f, &bad);
    rid = str_field(iss, "rid", issuer_f, &bad);
    if ((rc = bad) != 0)
        goto out;
    if (a.imk == NULL || a.transport == NULL) {
        rc = kv_pay_usage(G, "", "issuer file %s: \"imk_ac\" and \"transport_key\" are required",
                          issuer_f);
        goto out;
    }
    if (a.issuer == NULL)
        a.issuer = DEFAULT_ISSUER_KEY;
    if (a.ca_label == NULL)
        a.ca_key = DEFAULT_CA_KEY; /* fallback: the PEM (TEST ONLY) */
    if ((v = json_object_get(iss, "pvki")) != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 9) {
            rc = kv_pay_usage(G, "", "issuer file %s: \"pvki\" is not 0..9", issuer_f);
            goto out;
        }
        a.pvki = (int)json_integer_value(v);
    } else {
        a.pvki = 1;
    }
    if ((v = json_object_get(iss, "ca_index")) != NULL) {
        if (!json_is_string(v) || kv_hex_decode(json_string_value(v), &a.ca_index, 1) != 1) {
            rc = kv_pay_usage(G, "", "issuer file %s: \"ca_index\" is not one hex byte", issuer_f);
            goto out;
        }
        a.has_ca_index = 1;
    }
    cvn_s[0] = '\0';
    if ((v = json_object_get(card, "cvn")) == NULL)
        v = json_object_get(iss, "cvn");
    if (v != NULL) {
        if (!json_is_integer(v) || (json_integer_value(v) != 10 && json_integer_value(v) != 18)) {
            rc = kv_pay_usage(G, "", "\"cvn\" is not 10 or 18");
            goto out;
        }
        snprintf(cvn_s, sizeof(cvn_s), "%d", (int)json_integer_value(v));
        a.cvn = cvn_s;
    }
    /* the card */
    tname = str_field(card, "template", card_f, &bad);
    a.pan = str_field(card, "pan", card_f, &bad);
    a.psn = str_field(card, "psn", card_f, &bad);
    a.expiry = str_field(card, "expiry", card_f, &bad);
    a.service_code = str_field(card, "service_code", card_f, &bad);
    a.cardholder = str_field(card, "cardholder_name", card_f, &bad);
    pin_src = str_field(card, "pin", card_f, &bad);
    if (json_object_get(card, "oda") != NULL)
        a.oda = str_field(card, "oda", card_f, &bad);
    if ((rc = bad) != 0)
        goto out;
    if (tname == NULL || a.pan == NULL || a.expiry == NULL) {
        rc = kv_pay_usage(G, "", "card file %s: \"template\", \"pan\" and \"expiry\" are required",
                          card_f);
        goto out;
    }
    if (a.psn == NULL)
        a.psn = "00";
    if (!kv_is_digits(a.pan, 12, 19) || luhn_digit_ok(a.pan) != 1) {
        rc = kv_pay_usage(G, "",
                          "card file %s: \"pan\" is not 12..19 digits with a valid Luhn "
                          "check digit",
                          card_f);
        goto out;
    }
    if (!kv_is_digits(a.psn, 2, 2) || !kv_is_digits(a.expiry, 4, 4) ||
        (a.expiry[2] - '0') * 10 + (a.expiry[3] - '0') < 1 ||
        (a.expiry[2] - '0') * 10 + (a.expiry[3] - '0') > 12 ||
        (a.service_code != NULL && !kv_is_digits(a.service_code, 3, 3))) {
        rc = kv_pay_usage(G, "",
                          "card file %s: \"psn\" must be 2 digits, \"expiry\" YYMM, "
                          "\"service_code\" 3 digits",
                          card_f);
        goto out;
    }
    if (pin_src != NULL && strcmp(pin_src, "lab") != 0 && strcmp(pin_src, "stdin") != 0) {
        rc = kv_pay_usage(G, "",
                          "card file %s: \"pin\" is not \"lab\" or \"stdin\" (a PIN "
                          "value never goes in a file)",
                          card_f);
        goto out;
    }
    if (pin_src != NULL && strcmp(pin_src, "stdin") == 0)
        pin_stdin = 1;
    if (tname[0] == '/') {
        snprintf(tpath, sizeof(tpath), "%s", tname);
    } else {
        const char *slash = strrchr(card_f, '/');
        snprintf(tpath, sizeof(tpath), "%.*s%s", slash ? (int)(slash - card_f + 1) : 0, card_f,
                 tname);
    }
    a.tmpl = tpath;
    if ((tmpl = json_load_file(tpath, JSON_REJECT_DUPLICATES, &e)) == NULL ||
        !json_is_object(tmpl)) {
        rc = kv_pay_usage(G, "", "card file %s: template %s: %s", card_f, tpath,
                          tmpl ? "not a JSON object" : e.text);
        goto out;
    }
    v = json_object_get(json_object_get(tmpl, "application"), "aid");
    if (rid != NULL &&
        (kv_hex_decode(rid, ridb, sizeof(ridb)) != 5 || !json_is_string(v) ||
         kv_hex_decode(json_string_value(v), aid, sizeof(aid)) < 5 || memcmp(aid, ridb, 5) != 0)) {
        rc = kv_pay_usage(G, "", "issuer file %s: \"rid\" %s is not the RID of the template's AID",
                          issuer_f, rid);
        goto out;
    }
    if (pin_stdin && (rc = kv_pay_read_pin(G, "", &a.pin, &pinlen)) != 0)
        goto out;
    if ((rc = kv_pay_open(G, "", &c, &h)) != 0)
        goto out;
    a.quiet = count > 1;
    for (unsigned long i = 0; i < count; i++) {
        char masked[32];
        if (pan_step(a.pan == pan ? pan : a.pan, i == 0 ? 0 : 1, pan) != 0) {
            rc =
                kv_pay_usage(G, "", "--count: the PAN range runs out of digits at card %lu", i + 1);
            goto out;
        }
        a.pan = pan;
        if (count > 1) {
            size_t ol = strlen(out);
            int base = ol > 5 && strcmp(out + ol - 5, ".json") == 0 ? (int)(ol - 5) : (int)ol;
            snprintf(outname, sizeof(outname), "%.*s-%04lu.json", base, out, i + 1);
        } else {
            snprintf(outname, sizeof(outname), "%s", out);
        }
        a.out = outname;
        if ((rc = perso_build(&a, &c, tmpl, h)) != KV_EXIT_OK)
            goto out;
        if (count > 1) {
            kv_pan_mask(pan, masked);
            fprintf(stderr, "perso: %lu/%lu %s -> %s\n", i + 1, count, masked, outname);
        }
    }
    if (count > 1) {
        if (c.json) {
            json_t *o = json_object();
            json_object_set_new(o, "count", json_integer((json_int_t)count));
            json_object_set_new(o, "out", json_string(out));
            rc = kv_pay_json(o);
        } else {
            printf("personalized %lu cards\n", count);
        }
    }
out:
    kv_hsm_close(h);
    kv_secbuf_free(a.pin);
    json_decref(iss);
    json_decref(card);
    json_decref(tmpl);
    return rc;
}

/* ---- perso ca-import: the key ceremony of the (test) CA private key ------------ */

static int cmd_ca_import(int argc, char **argv)
{
    const char *label = NULL, *pem = NULL;
    struct kv_pay_common c;
    struct kv_pay_opt opts[] = {{"label", &label, NULL}, {"pem", &pem, NULL}, {NULL, NULL, NULL}};
    kv_hsm *h = NULL;
    EVP_PKEY *k = NULL;
    FILE *f;
    unsigned long pub, priv;
    int rc, r;

    if ((rc = kv_pay_parse(G, "ca-import", argc, argv, 2, opts, &c)) != KV_EXIT_OK)
        return rc;
    if (c.help)
        return usage_bench(stdout);
    if ((rc = kv_pay_require(G, "ca-import", "label", label)) != 0 ||
        (rc = kv_pay_require(G, "ca-import", "pem", pem)) != 0)
        return rc;
    if ((f = fopen(pem, "r")) == NULL)
        return kv_pay_usage(G, "ca-import", "--pem: cannot read %s", pem);
    k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (k == NULL || EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA) {
        EVP_PKEY_free(k);
        return kv_pay_usage(G, "ca-import", "--pem: %s is not a PEM RSA private key", pem);
    }
    if ((rc = kv_pay_open(G, "ca-import", &c, &h)) != 0)
        goto out;
    if (kv_hsm_rsa_find(h, label, &pub, &priv) == 0) {
        printf("CA key '%s' is already in the token\n", label);
        rc = KV_EXIT_OK;
        goto out;
    }
    if ((r = kv_perso_rsa_import(h, label, k)) != 0) {
        rc = kv_pay_fail(G, "ca-import", h, r, "importing the CA key");
        goto out;
    }
    printf("CA key '%s' imported: RSA %d bits, sensitive, not extractable, sign only\n", label,
           EVP_PKEY_get_bits(k));
    rc = KV_EXIT_OK;
out:
    EVP_PKEY_free(k);
    kv_hsm_close(h);
    return rc;
}

/* see cli.h */
int kv_cmd_perso(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0)
        return usage(argc < 2 ? stderr : stdout);
    if (argv[1][0] == '-')
        return cmd_bench(argc, argv);
    if (strcmp(argv[1], "card") == 0)
        return cmd_card(argc, argv);
    if (strcmp(argv[1], "ca-import") == 0)
        return cmd_ca_import(argc, argv);
    if (strcmp(argv[1], "check") == 0)
        return cmd_check(argc, argv);
    if (strcmp(argv[1], "issuer-key") == 0)
        return cmd_issuer_key(argc, argv);
    return kv_cli_usage_error(G,
                              "unknown command '%s' (--issuer ..., card, check, issuer-key, "
                              "ca-import)",
                              argv[1]);
}

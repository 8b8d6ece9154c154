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
 * The profile building and checking are in src/perso/perso_profile.h (with
 * the template format); this file reads the arguments and the issuer, card
 * and template files, finds the keys and prints.
 */
#include "apdu/capk.h"
#include "apdu/oda.h"
#include "hsm/p11_admin.h"
#include "hsm/perso.h"
#include "hsm/pin.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/base/outfile.h"
#include "src/base/secure.h"
#include "src/cli/cli.h"
#include "src/cli/install_paths.h"
#include "src/cli/pay_cli.h"
#include "src/cli/verify_cli.h"
#include "src/perso/perso_profile.h"

#include <fcntl.h>
#include <limits.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kv_build_config.h"

#define G "perso"
#define DEFAULT_ISSUER_KEY "perso-issuer"
#define DEFAULT_CA_KEY "tests/data/capk/kortvagt-test-ca-e1.pem"
#define DEFAULT_CAPK "tests/data/capk/capk.json"
#define LAB_PIN KV_PERSO_LAB_PIN

static int usage(FILE *f)
{
    fprintf(f,
            "Usage: kortvagt perso --issuer FILE --card FILE --out PROFILE [--count N]\n"
            "                      (the bench; kortvagt perso --issuer x --help for the files)\n"
            "       kortvagt perso card --template FILE --out PROFILE --imk LABEL --pan PAN\n"
            "                           --psn NN --expiry YYMM [--oda none|sda|dda|cda]\n"
            "                           [--cvn N] [--cvc3-imk LABEL] [--imk-aes LABEL]\n"
            "                           [--imk-smi LABEL] [--imk-smc LABEL]\n"
            "                           [--service-code NNN] [--effective YYMM]\n"
            "                           [--issuer-key LABEL] [--ca-key PEM] [--pin-stdin]\n"
            "                           [--tamper issuer-cert] [--token T] [--module M] [--json]\n"
            "       kortvagt perso check --profile PROFILE [--capk FILE] [--json]\n"
            "       kortvagt perso issuer-key [--label LABEL] [--create] [--json]\n\n"
            "perso card builds a virtual-card profile as an issuer bench would:\n"
            "  the ICC AC master key from the IMK in the HSM (option A; B for CVN 18, 22;\n"
            "  an AES key from --imk-aes for CVN 6), the CVC3 key from --cvc3-imk, the\n"
            "  secure messaging keys from --imk-smi / --imk-smc (issuer scripts), an ICC\n"
            "  RSA key (768 bits, in the profile),\n"
            "  the issuer RSA key (1024 bits) in the HSM (created on first use, sign-only,\n"
            "  not extractable) signing the ICC certificate / SSAD, and the issuer\n"
            "  certificate signed by the scheme's CA private key (--ca-key, default\n"
            "  " DEFAULT_CA_KEY ", TEST ONLY). The profile (mode 0600) holds\n"
            "  the card's keys and PIN: it is a virtual card, not for real cards.\n"
            "  The PIN is read from stdin with --pin-stdin, else the lab PIN " LAB_PIN ".\n"
            "  --tamper issuer-cert flips one byte of the issuer certificate (negative tests).\n"
            "  The template's CVN sets the personality: Visa VSDC (10, 18, 22), Mastercard\n"
            "  M/Chip (16, 17, 20, 21), EMV CCD (5, 6 = AES); --cvn picks another CVN of\n"
            "  the same personality. The service code goes into track 2 (57), 5F30 and\n"
            "  the CVVs alike; --effective YYMM sets 5F25.\n\n"
            "perso check verifies the profile's certificates with the CA key file (default\n"
            "  $KORTVAGT_CAPK, else the build's source tree " DEFAULT_CAPK ",\n"
            "  else " KV_INSTALL_SYSCONFDIR "/capk.json, else " KV_INSTALL_DATADIR "/capk.json):\n"
            "  issuer certificate, ICC certificate and the ICC key\n"
            "  in the profile, or the SSAD; and the consistency of the data elements:\n"
            "  5A / 57 PAN, 5F24 / 57 expiry, 5F30 / 57 service code, 5F25 before 5F24,\n"
            "  a tag in two records, 9F14 / 9F23 / risk, the certificates' expiry,\n"
            "  \"expect\" / the records, the CVN / the AID's scheme (each mismatch named).\n\n"
            "perso issuer-key shows the issuer RSA key (default label " DEFAULT_ISSUER_KEY ") and\n"
            "  checks that the token refuses to reveal its private parts (exit 1 if not).\n\n"
            "Exit codes: 0 ok, 1 a check failed, 2 usage or bad template/profile, others per\n"
            "kortvagt(1).\n");
    return f == stdout ? KV_EXIT_OK : KV_EXIT_USAGE;
}

/* ---- perso card --------------------------------------------------------------- */

/* One card of `perso card` or of the bench: what it gets and where it goes. */
typedef struct {
    kv_perso_card k; /* the card (its pin is set from pin below) */
    const char *out;
    int pin_stdin;
    kv_secbuf *pin; /* the PIN (read by the caller); NULL: the lab PIN */
    int quiet;      /* batch: no per-card output on stdout */
} perso_args;

/* The key lookup of the profile build: kv_pay_key, which says what is wrong. */
static int find_key(void *arg, const char *label, unsigned want, kv_hsm_key *out)
{
    unsigned w = ((want & KV_PERSO_KEY_DES) ? KV_PAY_WANT_DES : 0) |
                 ((want & KV_PERSO_KEY_DES2_AA) ? KV_PAY_WANT_DES2_AA : 0) |
                 ((want & KV_PERSO_KEY_AES) ? KV_PAY_WANT_AES : 0);
    return kv_pay_key(G, "card", (kv_hsm *)arg, label, w, out);
}

/* Build one card's profile, write it (mode 0600) and report; prints its own errors. */
static int perso_card(perso_args *a, const struct kv_pay_common *c, json_t *tmpl, kv_hsm *h)
{
    json_t *prof = NULL;
    kv_perso_summary sum;
    kv_perso_fail fail;
    kv_outfile of = {0};
    int rc = KV_EXIT_INTERNAL;

    a->k.pin = a->pin;
    if (kv_perso_profile_build(h, &a->k, tmpl, find_key, h, &prof, &sum, &fail) != 0) {
        switch (fail.kind) {
        case KV_PERSO_FAIL_USAGE:
            return kv_pay_usage(G, "card", "%s", fail.msg);
        case KV_PERSO_FAIL_OP:
            return kv_pay_fail(G, "card", h, fail.err, fail.msg);
        case KV_PERSO_FAIL_KEY:
            return fail.err; /* kv_pay_key said why */
        default:
            return KV_EXIT_INTERNAL;
        }
    }
    /*
     * The profile holds the card's keys and PIN: a new file of mode 0600 in
     * the same directory, renamed over --out once complete (an existing file
     * keeps neither its mode nor its inode; nothing is seen half-written)
     */
    if (kv_outfile_open(a->out, &of) != 0) {
        rc = kv_pay_usage(G, "card", "--out: cannot write %s", a->out);
        goto out;
    }
    if (json_dumpf(prof, of.f, JSON_INDENT(2)) != 0 || fputc('\n', of.f) == EOF) {
        rc = kv_cli_fail(KV_ERR_IO, a->out);
        goto out;
    }
    if (kv_outfile_commit(&of) != 0) {
        rc = kv_cli_fail(KV_ERR_IO, a->out);
        goto out;
    }
    if (c->json) {
        json_t *o = json_object();
        json_object_set_new(o, "out", json_string(a->out));
        json_object_set_new(o, "pan", kv_pay_json_pan(a->k.pan));
        json_object_set_new(o, "psn", json_string(a->k.psn));
        json_object_set_new(o, "oda", json_string(kv_oda_method_name(sum.method)));
        json_object_set_new(o, "cvn", json_integer(sum.cvn));
        json_object_set_new(o, "personality",
                            json_string(kv_perso_personality_name(sum.personality)));
        json_object_set_new(o, "cvc3", json_boolean(sum.has_cvc3));
        json_object_set_new(o, "secure_messaging_keys", json_boolean(sum.has_smi && sum.has_smc));
        if (sum.method != KV_ODA_NONE) {
            json_object_set_new(o, "issuer_key", json_string(a->k.issuer));
            json_object_set_new(o, "issuer_key_created", json_boolean(sum.issuer_created));
        }
        json_object_set_new(o, "keys_wrapped", json_boolean(a->k.transport != NULL));
        rc = a->quiet ? (json_decref(o), KV_EXIT_OK) : kv_pay_json(o);
    } else if (a->quiet) {
        rc = KV_EXIT_OK;
    } else {
        char masked[32];
        kv_pan_mask(a->k.pan, masked);
        printf("personalized %s: PAN %s PSN %s, ODA %s, CVN %d (%s)%s%s -> %s\n",
               json_string_value(json_object_get(json_object_get(tmpl, "application"), "aid")),
               masked, a->k.psn, kv_oda_method_name(sum.method), sum.cvn,
               kv_perso_personality_name(sum.personality), sum.has_cvc3 ? ", CVC3" : "",
               sum.has_smi || sum.has_smc ? ", SM keys" : "", a->out);
        if (sum.method != KV_ODA_NONE)
            printf("issuer key '%s' in the HSM%s\n", a->k.issuer,
                   sum.issuer_created ? " (created)" : "");
        rc = KV_EXIT_OK;
    }
out:
    kv_outfile_abort(&of); /* after a commit: nothing to do */
    json_decref(prof);
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
        {"template", &a.k.tmpl, NULL},
        {"out", &a.out, NULL},
        {"imk", &a.k.imk, NULL},
        {"cvc3-imk", &a.k.cvc3_imk, NULL},
        {"pan", &a.k.pan, NULL},
        {"psn", &a.k.psn, NULL},
        {"expiry", &a.k.expiry, NULL},
        {"oda", &a.k.oda, NULL},
        {"cvn", &a.k.cvn, NULL},
        {"issuer-key", &a.k.issuer, NULL},
        {"ca-key", &a.k.ca_key, NULL},
        {"tamper", &a.k.tamper, NULL},
        {"imk-aes", &a.k.imk_aes, NULL},
        {"imk-smi", &a.k.imk_smi, NULL},
        {"imk-smc", &a.k.imk_smc, NULL},
        {"service-code", &a.k.service_code, NULL},
        {"effective", &a.k.effective, NULL},
        {"pin-stdin", NULL, &a.pin_stdin},
        {NULL, NULL, NULL},
    };
    if ((rc = kv_pay_parse(G, "card", argc, argv, 2, opts, &c)) != KV_EXIT_OK)
        return rc;
    if (c.help)
        return usage(stdout);
    if ((rc = kv_pay_require(G, "card", "template", a.k.tmpl)) != 0 ||
        (rc = kv_pay_require(G, "card", "out", a.out)) != 0 ||
        (rc = kv_pay_require(G, "card", "imk", a.k.imk)) != 0 ||
        (rc = kv_pay_require(G, "card", "pan", a.k.pan)) != 0 ||
        (rc = kv_pay_require(G, "card", "psn", a.k.psn)) != 0 ||
        (rc = kv_pay_require(G, "card", "expiry", a.k.expiry)) != 0)
        return rc;
    if ((rc = kv_pay_pan(G, "card", a.k.pan)) != 0 ||
        (rc = kv_pay_digits(G, "card", "psn", a.k.psn, 2, 2)) != 0 ||
        (rc = kv_pay_digits(G, "card", "expiry", a.k.expiry, 4, 4)) != 0)
        return rc;
    if (strlen(a.k.pan) < 12 || strlen(a.k.pan) > 19)
        return kv_pay_usage(G, "card", "--pan: a card PAN has 12..19 digits");
    if ((a.k.expiry[2] - '0') * 10 + (a.k.expiry[3] - '0') < 1 ||
        (a.k.expiry[2] - '0') * 10 + (a.k.expiry[3] - '0') > 12)
        return kv_pay_usage(G, "card", "--expiry: month %.2s is not 01..12", a.k.expiry + 2);
    if (a.k.tamper != NULL && strcmp(a.k.tamper, "issuer-cert") != 0)
        return kv_pay_usage(G, "card", "--tamper: only issuer-cert is known");
    if (a.k.service_code != NULL &&
        (rc = kv_pay_digits(G, "card", "service-code", a.k.service_code, 3, 3)) != 0)
        return rc;
    if (a.k.issuer == NULL)
        a.k.issuer = DEFAULT_ISSUER_KEY;
    if (a.k.ca_key == NULL)
        a.k.ca_key = DEFAULT_CA_KEY;
    if ((tmpl = json_load_file(a.k.tmpl, JSON_REJECT_DUPLICATES, &e)) == NULL ||
        !json_is_object(tmpl)) {
        rc = kv_pay_usage(G, "card", "--template: %s: %s", a.k.tmpl,
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
        rc = perso_card(&a, &c, tmpl, h);
    card_out:
        kv_hsm_close(h);
        kv_secbuf_free(a.pin);
    }
    json_decref(tmpl);
    return rc;
}

/* ---- perso check ----------------------------------------------------------------- */

static int cmd_check(int argc, char **argv)
{
    const char *profile = NULL, *capk_path = NULL;
    char capk_buf[PATH_MAX];
    struct kv_pay_common c;
    struct kv_pay_opt opts[] = {
        {"profile", &profile, NULL}, {"capk", &capk_path, NULL}, {NULL, NULL, NULL}};
    json_t *root = NULL, *out = NULL;
    json_error_t e;
    kv_capk_store *store = NULL;
    kv_perso_check_result res;
    char why[256];
    int rc, r;

    if ((rc = kv_pay_parse(G, "check", argc, argv, 2, opts, &c)) != KV_EXIT_OK)
        return rc;
    if (c.help)
        return usage(stdout);
    if ((rc = kv_pay_require(G, "check", "profile", profile)) != 0)
        return rc;
    if ((capk_path = kv_cli_capk_path(capk_path, capk_buf, sizeof(capk_buf))) == NULL)
        return kv_pay_usage(G, "check",
                            "--capk: no CA key file (see --help for where it is looked for)");
    rc = KV_EXIT_INTERNAL;
    if ((root = json_load_file(profile, 0, &e)) == NULL) {
        rc = kv_pay_usage(G, "check", "--profile: %s: %s", profile, e.text);
        goto out;
    }
    if (kv_capk_store_load(capk_path, &store, why, sizeof(why)) != 0) {
        rc = kv_pay_usage(G, "check", "--capk: %s: %s", capk_path, why);
        goto out;
    }
    if ((r = kv_perso_profile_check(root, store, 0, &res, why, sizeof(why))) != 0) {
        if (r == KV_ERR_FORMAT)
            rc = kv_pay_usage(G, "check", "%s: %s", profile, why);
        goto out;
    }
    if (c.json) {
        out = json_object();
        json_object_set_new(out, "profile", json_string(profile));
        json_object_set_new(out, "ok", json_boolean(res.ok));
        json_object_set_new(out, "issuer_certificate", json_string(res.issuer));
        json_object_set_new(out, "icc_certificate", json_string(res.icc));
        json_object_set_new(out, "icc_key_matches_profile", json_string(res.icc_key));
        json_object_set_new(out, "ssad", json_string(res.ssad));
        json_object_set_new(out, "consistency", json_string(res.consistency));
        {
            json_t *fa = json_array();
            for (size_t i = 0; i < res.nfindings; i++)
                json_array_append_new(fa, json_string(res.findings[i]));
            json_object_set_new(out, "findings", fa);
        }
        rc = kv_pay_json(out);
        if (rc == KV_EXIT_OK && !res.ok)
            rc = KV_EXIT_MISMATCH;
    } else {
        printf("issuer certificate: %s\nICC certificate: %s\nICC key matches profile: %s\n"
               "SSAD: %s\nconsistency: %s\n",
               res.issuer, res.icc, res.icc_key, res.ssad, res.consistency);
        for (size_t i = 0; i < res.nfindings; i++)
            printf("  mismatch: %s\n", res.findings[i]);
        printf("%s\n", res.ok ? "ok" : "FAILED");
        rc = res.ok ? KV_EXIT_OK : KV_EXIT_MISMATCH;
    }
out:
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
    if ((r = kv_perso_issuer_key(h, label, create, KV_PERSO_ISSUER_BITS, 3, &k)) != 0) {
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
        "Issuer file (JSON): {\"issuer\": NAME, \"imk_ac\": LABEL, \"imk_ac_aes\": LABEL (AES,\n"
        "  CVN 6), \"imk_smi\": LABEL, \"imk_smc\": LABEL (secure messaging, issuer scripts),\n"
        "  \"imk_cvc3\": LABEL, \"cvk\": LABEL, \"pvk\": LABEL, \"pvki\": 0..9, \"issuer_key\":\n"
        "  LABEL, \"ca_key\": LABEL (HSM), \"ca_index\": \"E1\", \"rid\": \"A000000003\",\n"
        "  \"transport_key\": LABEL, \"cvn\": N (used for templates of that CVN's\n"
        "  personality), \"oda\": \"none|sda|dda|cda\"}  (imk_ac, transport_key required)\n"
        "Card file (JSON): {\"template\": FILE (relative to the card file), \"pan\",\n"
        "  \"psn\": \"01\", \"expiry\": \"YYMM\", \"effective\": \"YYMM\" (5F25), "
        "\"service_code\":\n"
        "  \"201\" (57, 5F30 and the CVVs), \"cardholder_name\", \"pin\": \"lab\" (1234) |\n"
        "  \"stdin\", \"oda\", \"cvn\" (a CVN of the template's personality)}\n"
        "The template's CVN sets the personality: Visa VSDC 10/18/22, Mastercard M/Chip\n"
        "16/17/20/21, EMV CCD 5/6 (6: AES keys from imk_ac_aes).\n\n"
        "--count N   N cards with consecutive PANs (Luhn check digit recomputed), written\n"
        "            to PROFILE-0001.json ... (PROFILE without its .json), progress on stderr\n"
        "--pin-stdin the PIN from stdin (same as \"pin\": \"stdin\"); never on argv\n"
        "--store URL the card's PVV and PVKI (the issuer's pvk) also go into the card's row\n"
        "            of this store: online PIN verifications of the card then use them\n"
        "            (kortvagt pvv verify, POST /v1/verify/pin), whatever PVV a client sends\n\n"
        "Exit codes: 0 ok, 2 usage or bad issuer/card file, 5 HSM (key missing), 8 I/O.\n");
    return f == stdout ? KV_EXIT_OK : KV_EXIT_USAGE;
}

/*
 * perso --store: the card's PVV, computed in the HSM, into the card's row of
 * the store (src/attempts), where it overrides any PVV a verification is given.
 */
static int store_pvv(kv_app *app, perso_args *a)
{
    kv_hsm *h = kv_app_hsm(app);
    const char *pin = a->pin != NULL ? (const char *)kv_secbuf_ptr(a->pin) : LAB_PIN;
    kv_attempts_change ch;
    kv_hsm_key pvk;
    char why[256];
    int rc, r;

    if ((rc = kv_pay_key(G, "", h, a->k.pvk, KV_PAY_WANT_DES, &pvk)) != 0)
        return rc;
    memset(&ch, 0, sizeof(ch));
    ch.set_pvv = 1;
    ch.pvki = a->k.pvki;
    if ((r = kv_hsm_pvv_generate(h, &pvk, a->k.pan, ch.pvki, pin, strlen(pin), ch.pvv)) != 0)
        return kv_pay_fail(G, "", h, r, "PVV for the store");
    r = kv_attempts_set(kv_app_store(app), kv_app_token_mac(app), kv_app_evidence_mac(app),
                        a->k.pan, &ch, NULL, NULL, why, sizeof(why));
    kv_wipe(&ch, sizeof(ch));
    if (r != 0) {
        fprintf(stderr, "kortvagt perso: the card's PVV into the store: %s\n", why);
        return kv_exit_code(r);
    }
    return KV_EXIT_OK;
}

static int cmd_bench(int argc, char **argv)
{
    static const char *const issuer_fields[] = {
        "issuer",        "imk_ac", "imk_ac_aes", "imk_smi",    "imk_smc", "imk_cvc3",
        "cvk",           "pvk",    "pvki",       "issuer_key", "ca_key",  "ca_index",
        "transport_key", "cvn",    "oda",        "rid",        "notes",   NULL};
    static const char *const card_fields[] = {
        "template",        "pan", "psn", "expiry", "effective", "service_code",
        "cardholder_name", "pin", "oda", "cvn",    "notes",     NULL};
    const char *issuer_f = NULL, *card_f = NULL, *out = NULL, *count_s = NULL, *tamper = NULL,
               *tname, *pin_src, *rid;
    struct kv_verify_opts vo = {NULL, NULL};
    kv_app *app = NULL;
    int pin_stdin = 0, rc, bad = 0;
    struct kv_pay_common c;
    struct kv_pay_opt opts[] = {
        {"issuer", &issuer_f, NULL}, {"card", &card_f, NULL},   {"out", &out, NULL},
        {"count", &count_s, NULL},   {"tamper", &tamper, NULL}, {"pin-stdin", NULL, &pin_stdin},
        {"store", &vo.store, NULL},  {NULL, NULL, NULL},
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
    a.k.tamper = tamper;
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
    a.k.issuer_name = str_field(iss, "issuer", issuer_f, &bad);
    a.k.imk = str_field(iss, "imk_ac", issuer_f, &bad);
    a.k.imk_aes = str_field(iss, "imk_ac_aes", issuer_f, &bad);
    a.k.imk_smi = str_field(iss, "imk_smi", issuer_f, &bad);
    a.k.imk_smc = str_field(iss, "imk_smc", issuer_f, &bad);
    a.k.cvc3_imk = str_field(iss, "imk_cvc3", issuer_f, &bad);
    a.k.cvk = str_field(iss, "cvk", issuer_f, &bad);
    a.k.pvk = str_field(iss, "pvk", issuer_f, &bad);
    a.k.issuer = str_field(iss, "issuer_key", issuer_f, &bad);
    a.k.ca_label = str_field(iss, "ca_key", issuer_f, &bad);
    a.k.transport = str_field(iss, "transport_key", issuer_f, &bad);
    a.k.oda = str_field(iss, "oda", issuer_f, &bad);
    rid = str_field(iss, "rid", issuer_f, &bad);
    if ((rc = bad) != 0)
        goto out;
    if (a.k.imk == NULL || a.k.transport == NULL) {
        rc = kv_pay_usage(G, "", "issuer file %s: \"imk_ac\" and \"transport_key\" are required",
                          issuer_f);
        goto out;
    }
    if (a.k.issuer == NULL)
        a.k.issuer = DEFAULT_ISSUER_KEY;
    if (a.k.ca_label == NULL)
        a.k.ca_key = DEFAULT_CA_KEY; /* fallback: the PEM (TEST ONLY) */
    if ((v = json_object_get(iss, "pvki")) != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 9) {
            rc = kv_pay_usage(G, "", "issuer file %s: \"pvki\" is not 0..9", issuer_f);
            goto out;
        }
        a.k.pvki = (int)json_integer_value(v);
    } else {
        a.k.pvki = 1;
    }
    if ((v = json_object_get(iss, "ca_index")) != NULL) {
        if (!json_is_string(v) || kv_hex_decode(json_string_value(v), &a.k.ca_index, 1) != 1) {
            rc = kv_pay_usage(G, "", "issuer file %s: \"ca_index\" is not one hex byte", issuer_f);
            goto out;
        }
        a.k.has_ca_index = 1;
    }
    cvn_s[0] = '\0';
    /* the issuer's CVN serves templates of its personality; the card's must fit its template */
    if ((v = json_object_get(iss, "cvn")) != NULL) {
        if (!json_is_integer(v) ||
            kv_perso_personality((int)json_integer_value(v)) == KV_PERSO_PERS_NONE) {
            rc = kv_pay_usage(G, "",
                              "issuer file %s: \"cvn\" is not 10, 18, 22, 16, 17, 20, 21, 5 "
                              "or 6",
                              issuer_f);
            goto out;
        }
        a.k.issuer_cvn = (int)json_integer_value(v);
    }
    if ((v = json_object_get(card, "cvn")) != NULL) {
        if (!json_is_integer(v) ||
            kv_perso_personality((int)json_integer_value(v)) == KV_PERSO_PERS_NONE) {
            rc = kv_pay_usage(
                G, "", "card file %s: \"cvn\" is not 10, 18, 22, 16, 17, 20, 21, 5 or 6", card_f);
            goto out;
        }
        snprintf(cvn_s, sizeof(cvn_s), "%d", (int)json_integer_value(v));
        a.k.cvn = cvn_s;
    }
    /* the card */
    tname = str_field(card, "template", card_f, &bad);
    a.k.pan = str_field(card, "pan", card_f, &bad);
    a.k.psn = str_field(card, "psn", card_f, &bad);
    a.k.expiry = str_field(card, "expiry", card_f, &bad);
    a.k.service_code = str_field(card, "service_code", card_f, &bad);
    a.k.effective = str_field(card, "effective", card_f, &bad);
    a.k.cardholder = str_field(card, "cardholder_name", card_f, &bad);
    pin_src = str_field(card, "pin", card_f, &bad);
    if (json_object_get(card, "oda") != NULL)
        a.k.oda = str_field(card, "oda", card_f, &bad);
    if ((rc = bad) != 0)
        goto out;
    if (tname == NULL || a.k.pan == NULL || a.k.expiry == NULL) {
        rc = kv_pay_usage(G, "", "card file %s: \"template\", \"pan\" and \"expiry\" are required",
                          card_f);
        goto out;
    }
    if (a.k.psn == NULL)
        a.k.psn = "00";
    if (!kv_is_digits(a.k.pan, 12, 19) || kv_perso_pan_luhn_ok(a.k.pan) != 1) {
        rc = kv_pay_usage(G, "",
                          "card file %s: \"pan\" is not 12..19 digits with a valid Luhn "
                          "check digit",
                          card_f);
        goto out;
    }
    if (!kv_is_digits(a.k.psn, 2, 2) || !kv_is_digits(a.k.expiry, 4, 4) ||
        (a.k.expiry[2] - '0') * 10 + (a.k.expiry[3] - '0') < 1 ||
        (a.k.expiry[2] - '0') * 10 + (a.k.expiry[3] - '0') > 12 ||
        (a.k.service_code != NULL && !kv_is_digits(a.k.service_code, 3, 3))) {
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
    a.k.tmpl = tpath;
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
    if (vo.store != NULL && a.k.pvk == NULL) {
        rc = kv_pay_usage(G, "", "--store needs a \"pvk\" in the issuer file %s", issuer_f);
        goto out;
    }
    if (vo.store != NULL) {
        if ((rc = kv_verify_open(G, "", &c, &vo, &app)) != 0)
            goto out;
        h = kv_app_hsm(app);
    } else if ((rc = kv_pay_open(G, "", &c, &h)) != 0) {
        goto out;
    }
    a.quiet = count > 1;
    for (unsigned long i = 0; i < count; i++) {
        char masked[32];
        if (kv_perso_pan_step(a.k.pan == pan ? pan : a.k.pan, i == 0 ? 0 : 1, pan) != 0) {
            rc =
                kv_pay_usage(G, "", "--count: the PAN range runs out of digits at card %lu", i + 1);
            goto out;
        }
        a.k.pan = pan;
        if (count > 1) {
            size_t ol = strlen(out);
            int base = ol > 5 && strcmp(out + ol - 5, ".json") == 0 ? (int)(ol - 5) : (int)ol;
            snprintf(outname, sizeof(outname), "%.*s-%04lu.json", base, out, i + 1);
        } else {
            snprintf(outname, sizeof(outname), "%s", out);
        }
        a.out = outname;
        if ((rc = perso_card(&a, &c, tmpl, h)) != KV_EXIT_OK)
            goto out;
        if (app != NULL && (rc = store_pvv(app, &a)) != KV_EXIT_OK)
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
    if (app != NULL)
        kv_app_close(app); /* h is the app's */
    else
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

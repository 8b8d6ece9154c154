/*
 * `kortvagt arqc` and `kortvagt arpc`: EMV application cryptograms with keys
 * derived inside the token (see cli.h, hsm/emv_crypto.h).
 */
#include "hsm/emv_crypto.h"
#include "hsm/mac.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/cli/cli.h"
#include "src/cli/pay_cli.h"

#include <stdlib.h>
#include <string.h>

#define AC_DATA_MAX 1024

#define EMV_COMMON_HELP                                                                            \
    "  --key NAME        issuer master key for AC (des2, imported with --usage imk)\n"             \
    "  --pan PAN         1 to 19 digits\n"                                                         \
    "  --psn NN          PAN sequence number, 2 digits (default 00)\n"                             \
    "  --cvn N           cryptogram version number: Visa 10, 18, 22; Mastercard 16, 17,\n"         \
    "                    20, 21 (decimal; CVN 17/21 data include the counters)\n"                  \
    "  --atc HEX         application transaction counter, 2 bytes\n"                               \
    "  --un HEX          unpredictable number, 4 bytes (Mastercard SKD, CVN 16/17)\n"              \
    "  --r HEX           session key diversification value R, 8 bytes, instead of the\n"           \
    "                    CVN's (EMV Book 2 A1.3.1 is applied to it)\n"                             \
    "  --mk-option A|B   ICC master key derivation option instead of the CVN's\n"                  \
    "  --token LABEL     token label or pkcs11: URI (default $KORTVAGT_TOKEN, kortvagt)\n"         \
    "  --module PATH     PKCS#11 module (default $KORTVAGT_PKCS11_MODULE, SoftHSM2)\n"             \
    "  --json            machine-readable output\n"                                                \
    "  --help            show this help\n\n"                                                       \
    "CVN methods: 10: option A, no session key, padding 1 (zeros), ARPC method 1 under\n"          \
    "the ICC MK; 18/22: option B (A for PANs of 16 digits or fewer), EMV common session\n"         \
    "key (R = ATC || 00..), padding 2 (80..), ARPC method 2 under the session key;\n"              \
    "16/17: option A, Mastercard SKD (R = ATC || 0000 || UN), padding 2, ARPC method 1\n"          \
    "under the ICC MK; 20/21: option A, EMV common session key, padding 2, ARPC\n"                 \
    "method 1 under the session key. Derived keys are token session objects,\n"                    \
    "destroyed after use.\n"

/* The options arqc and arpc share. */
struct emv_args {
    const char *pan, *psn, *cvn_s, *atc_s, *un_s, *r_s, *opt_s;
    kv_emv_params p;
    kv_emv_txn t;
};

/* Check the shared options and fill a->p and a->t (no data). */
static int emv_args_check(const char *group, const char *cmd, struct kv_pay_common *c,
                          struct emv_args *a, int need_sk)
{
    int rc, cvn;
    char *end = NULL;

    if ((rc = kv_pay_require(group, cmd, "key", c->key)) != 0 ||
        (rc = kv_pay_pan(group, cmd, a->pan)) != 0)
        return rc;
    if (a->psn != NULL && (rc = kv_pay_digits(group, cmd, "psn", a->psn, 2, 2)) != 0)
        return rc;
    if ((rc = kv_pay_require(group, cmd, "cvn", a->cvn_s)) != 0)
        return rc;
    cvn = (int)strtol(a->cvn_s, &end, 10);
    if (end == a->cvn_s || *end != '\0' || kv_emv_params_for_cvn(cvn, &a->p) != 0)
        return kv_pay_usage(group, cmd,
                            "--cvn '%s' is not supported (Visa 10, 18, 22; Mastercard 16, 17, "
                            "20, 21; EMV CCD 5, 6)",
                            a->cvn_s);
    if (a->opt_s != NULL) {
        if (strcmp(a->opt_s, "A") == 0 || strcmp(a->opt_s, "a") == 0)
            a->p.mk_option = KV_EMV_MK_OPTION_A;
        else if (strcmp(a->opt_s, "B") == 0 || strcmp(a->opt_s, "b") == 0)
            a->p.mk_option = KV_EMV_MK_OPTION_B;
        else
            return kv_pay_usage(group, cmd, "--mk-option must be A or B");
    }
    if (a->r_s != NULL) {
        if ((rc = kv_pay_hex(group, cmd, "r", a->r_s, a->p.r, 8, 8, NULL)) != 0)
            return rc;
        a->p.r_explicit = 1;
    }
    a->t.pan = a->pan;
    a->t.psn = a->psn;
    if (a->un_s != NULL) {
        if ((rc = kv_pay_hex(group, cmd, "un", a->un_s, a->t.un, 4, 4, NULL)) != 0)
            return rc;
        a->t.has_un = 1;
    }
    /* the ATC and UN matter only where a session key is derived from them */
    if (need_sk && !a->p.r_explicit) {
        if (a->p.skd == KV_EMV_SKD_NONE)
            return kv_pay_usage(group, cmd, "CVN %d has no session key (give --r to use one)", cvn);
        if ((rc = kv_pay_hex(group, cmd, "atc", a->atc_s, a->t.atc, 2, 2, NULL)) != 0)
            return rc;
        if (a->p.skd == KV_EMV_SKD_MASTERCARD && !a->t.has_un)
            return kv_pay_usage(
                group, cmd, "missing --un (CVN %d derives the session key from ATC and UN)", cvn);
    } else if (a->atc_s != NULL &&
               (rc = kv_pay_hex(group, cmd, "atc", a->atc_s, a->t.atc, 2, 2, NULL)) != 0) {
        return rc;
    }
    return KV_EXIT_OK;
}

/* ---- arqc ---- */

static void arqc_usage(FILE *f)
{
    fprintf(f,
            "Usage: kortvagt arqc verify   --key IMK --pan PAN [--psn NN] --cvn N --atc HEX\n"
            "                             [--un HEX] --data HEX --arqc HEX\n"
            "       kortvagt arqc generate --key IMK --pan PAN [--psn NN] --cvn N --atc HEX\n"
            "                             [--un HEX] --data HEX\n\n"
            "Verify an ARQC (ISO 9797-1 MAC algorithm 3 over the AC data, padded per CVN)\n"
            "under the key the CVN prescribes, derived in the token from the issuer master\n"
            "key. generate computes the cryptogram the card would (labs, tests). verify\n"
            "prints only 'match' or 'mismatch'.\n\n"
            "Options:\n"
            "  --data HEX        the AC data (CDOL1 values, AIP, ATC, IAD...), 1 to 1024 bytes\n"
            "  --arqc HEX        (verify) the cryptogram, 8 bytes\n"
            "  --padding 1|2     ISO 9797-1 padding method instead of the CVN's\n" EMV_COMMON_HELP
            "Exit codes: 0 generated / match, 1 mismatch, 2 usage error, 5 HSM error.\n");
}

static int arqc_run(const char *cmd, int argc, char **argv)
{
    struct emv_args a;
    const char *data_s = NULL, *arqc_s = NULL, *pad_s = NULL;
    struct kv_pay_common c;
    int verify = strcmp(cmd, "verify") == 0, rc, r, match = 0;
    uint8_t *data = NULL, arqc[8], ac[8];
    size_t data_len = 0;
    kv_hsm *h = NULL;
    kv_hsm_key imk;

    memset(&a, 0, sizeof(a));
    {
        const struct kv_pay_opt opts[] = {
            {"pan", &a.pan, NULL},         {"psn", &a.psn, NULL},   {"cvn", &a.cvn_s, NULL},
            {"atc", &a.atc_s, NULL},       {"un", &a.un_s, NULL},   {"r", &a.r_s, NULL},
            {"mk-option", &a.opt_s, NULL}, {"data", &data_s, NULL}, {"arqc", &arqc_s, NULL},
            {"padding", &pad_s, NULL},     {NULL, NULL, NULL},
        };
        if ((rc = kv_pay_parse("arqc", cmd, argc, argv, 2, opts, &c)) != 0)
            return rc;
    }
    if (c.help) {
        arqc_usage(stdout);
        return KV_EXIT_OK;
    }
    if ((rc = kv_pay_require("arqc", cmd, "key", c.key)) != 0)
        return rc;
    /* derive kv_emv_params first; the session key need follows from the CVN */
    {
        kv_emv_params probe;
        int cvn = a.cvn_s != NULL ? atoi(a.cvn_s) : 0;
        int need_sk = kv_emv_params_for_cvn(cvn, &probe) == 0 && probe.skd != KV_EMV_SKD_NONE;
        if ((rc = emv_args_check("arqc", cmd, &c, &a, need_sk)) != 0)
            return rc;
    }
    if (pad_s != NULL) {
        if (strcmp(pad_s, "1") != 0 && strcmp(pad_s, "2") != 0)
            return kv_pay_usage("arqc", cmd, "--padding must be 1 or 2");
        a.p.padding = pad_s[0] - '0';
    }
    if ((data = malloc(AC_DATA_MAX)) == NULL)
        return kv_pay_fail("arqc", cmd, NULL, KV_ERR_NOMEM, "memory");
    if ((rc = kv_pay_hex("arqc", cmd, "data", data_s, data, 1, AC_DATA_MAX, &data_len)) != 0)
        goto out;
    a.t.data = data;
    a.t.data_len = data_len;
    if (verify) {
        if ((rc = kv_pay_hex("arqc", cmd, "arqc", arqc_s, arqc, 8, 8, NULL)) != 0)
            goto out;
    } else if (arqc_s != NULL) {
        rc = kv_pay_usage("arqc", cmd, "--arqc belongs to 'arqc verify'");
        goto out;
    }

    if ((rc = kv_pay_open("arqc", cmd, &c, &h)) != 0)
        goto out;
    /* CVN 6 (EMV CCD AES) needs an AES-128 IMK, every other CVN a des2 one */
    if ((rc = kv_pay_key("arqc", cmd, h, c.key, a.p.aes ? KV_PAY_WANT_AES : KV_PAY_WANT_DES,
                         &imk)) != 0)
        goto out;
    if (imk.type != (a.p.aes ? KV_KEY_AES128 : KV_KEY_DES2)) {
        fprintf(stderr, "kortvagt arqc %s: key '%s' must be a %s issuer master key\n", cmd, c.key,
                a.p.aes ? "aes128" : "des2");
        rc = KV_EXIT_HSM;
        goto out;
    }
    if (verify) {
        if ((r = kv_hsm_arqc_verify(h, &imk, &a.p, &a.t, arqc, &match)) != 0) {
            rc = kv_pay_fail("arqc", cmd, h, r, "ARQC verification");
            goto out;
        }
        {
            json_t *o = c.json ? json_object() : NULL;
            if (o != NULL)
                json_object_set_new(o, "cvn", json_integer(a.p.cvn));
            rc = kv_pay_verdict(&c, match, o);
        }
        goto out;
    }
    if ((r = kv_hsm_arqc_generate(h, &imk, &a.p, &a.t, ac)) != 0) {
        rc = kv_pay_fail("arqc", cmd, h, r, "ARQC generation");
        goto out;
    }
    if (c.json) {
        json_t *o = json_object();
        json_object_set_new(o, "cvn", json_integer(a.p.cvn));
        json_object_set_new(o, "arqc", kv_pay_json_hex(ac, 8));
        rc = kv_pay_json(o);
    } else {
        char hex[17];
        kv_hex_encode(ac, 8, hex);
        printf("%s\n", hex);
        rc = KV_EXIT_OK;
    }
out:
    free(data);
    kv_hsm_close(h);
    return rc;
}

int kv_cmd_arqc(int argc, char **argv)
{
    int rc;
    if ((rc = kv_cli_group_help(argc, argv, arqc_usage)) >= 0)
        return rc;
    if (strcmp(argv[1], "verify") == 0 || strcmp(argv[1], "generate") == 0)
        return arqc_run(argv[1], argc, argv);
    return kv_cli_usage_error("arqc", "unknown command '%s' (verify, generate)", argv[1]);
}

/* ---- arpc ---- */

static void arpc_usage(FILE *f)
{
    fprintf(f, "Usage: kortvagt arpc generate --key IMK --pan PAN [--psn NN] --cvn N [--atc HEX]\n"
               "                             [--un HEX] --arqc HEX (--rc HEX | --csu HEX\n"
               "                             [--pad HEX])\n\n"
               "Generate the authorisation response cryptogram. --rc selects ARPC method 1:\n"
               "3DES(key)(ARQC XOR (ARC || 00..)), 8 bytes; --csu selects method 2: the\n"
               "leftmost 4 bytes of MAC algorithm 3 (padding 2) over ARQC || CSU || proprietary\n"
               "authentication data. The key is the one the CVN prescribes (see below) unless\n"
               "--arpc-key says otherwise.\n\n"
               "Options:\n"
               "  --arqc HEX        the ARQC, 8 bytes\n"
               "  --rc HEX          authorisation response code, 2 bytes (method 1)\n"
               "  --csu HEX         card status update, 4 bytes (method 2)\n"
               "  --pad HEX         proprietary authentication data, 0 to 8 bytes (method 2)\n"
               "  --arpc-key mk|sk  the ICC master key or the AC session key\n" EMV_COMMON_HELP
               "Exit codes: 0 generated, 2 usage error, 5 HSM error.\n");
}

static int arpc_run(const char *cmd, int argc, char **argv)
{
    struct emv_args a;
    const char *arqc_s = NULL, *rc_s = NULL, *csu_s = NULL, *pad_s = NULL, *key_s = NULL;
    struct kv_pay_common c;
    kv_emv_arpc_in in;
    uint8_t pad[8], arpc[8];
    size_t pad_len = 0, arpc_len = 0;
    int rc, r, method, arpc_key;
    kv_hsm *h = NULL;
    kv_hsm_key imk;

    memset(&a, 0, sizeof(a));
    memset(&in, 0, sizeof(in));
    {
        const struct kv_pay_opt opts[] = {
            {"pan", &a.pan, NULL},
            {"psn", &a.psn, NULL},
            {"cvn", &a.cvn_s, NULL},
            {"atc", &a.atc_s, NULL},
            {"un", &a.un_s, NULL},
            {"r", &a.r_s, NULL},
            {"mk-option", &a.opt_s, NULL},
            {"arqc", &arqc_s, NULL},
            {"rc", &rc_s, NULL},
            {"csu", &csu_s, NULL},
            {"pad", &pad_s, NULL},
            {"arpc-key", &key_s, NULL},
            {NULL, NULL, NULL},
        };
        if ((rc = kv_pay_parse("arpc", cmd, argc, argv, 2, opts, &c)) != 0)
            return rc;
    }
    if (c.help) {
        arpc_usage(stdout);
        return KV_EXIT_OK;
    }
    if ((rc_s == NULL) == (csu_s == NULL))
        return kv_pay_usage("arpc", cmd,
                            "give exactly one of --rc (ARPC method 1) and --csu (method 2)");
    if (pad_s != NULL && csu_s == NULL)
        return kv_pay_usage("arpc", cmd, "--pad goes with --csu (ARPC method 2)");
    method = rc_s != NULL ? 1 : 2;
    {
        kv_emv_params probe;
        int cvn = a.cvn_s != NULL ? atoi(a.cvn_s) : 0;
        arpc_key = KV_EMV_ARPC_KEY_SK;
        if (kv_emv_params_for_cvn(cvn, &probe) == 0)
            arpc_key = probe.arpc_key;
        if (key_s != NULL) {
            if (strcmp(key_s, "mk") == 0)
                arpc_key = KV_EMV_ARPC_KEY_MK;
            else if (strcmp(key_s, "sk") == 0)
                arpc_key = KV_EMV_ARPC_KEY_SK;
            else
                return kv_pay_usage("arpc", cmd, "--arpc-key must be mk or sk");
        }
        if ((rc = emv_args_check("arpc", cmd, &c, &a, arpc_key == KV_EMV_ARPC_KEY_SK)) != 0)
            return rc;
    }
    a.p.arpc_method = method;
    a.p.arpc_key = arpc_key;
    if ((rc = kv_pay_hex("arpc", cmd, "arqc", arqc_s, in.arqc, 8, 8, NULL)) != 0)
        return rc;
    if (method == 1) {
        if ((rc = kv_pay_hex("arpc", cmd, "rc", rc_s, in.arc, 2, 2, NULL)) != 0)
            return rc;
    } else {
        if ((rc = kv_pay_hex("arpc", cmd, "csu", csu_s, in.csu, 4, 4, NULL)) != 0)
            return rc;
        if (pad_s != NULL && pad_s[0] != '\0' &&
            (rc = kv_pay_hex("arpc", cmd, "pad", pad_s, pad, 0, 8, &pad_len)) != 0)
            return rc;
        in.pad = pad;
        in.pad_len = pad_len;
    }

    if ((rc = kv_pay_open("arpc", cmd, &c, &h)) != 0)
        goto out;
    /* CVN 6 (EMV CCD AES) needs an AES-128 IMK, every other CVN a des2 one */
    if ((rc = kv_pay_key("arpc", cmd, h, c.key, a.p.aes ? KV_PAY_WANT_AES : KV_PAY_WANT_DES,
                         &imk)) != 0)
        goto out;
    if (imk.type != (a.p.aes ? KV_KEY_AES128 : KV_KEY_DES2)) {
        fprintf(stderr, "kortvagt arpc %s: key '%s' must be a %s issuer master key\n", cmd, c.key,
                a.p.aes ? "aes128" : "des2");
        rc = KV_EXIT_HSM;
        goto out;
    }
    if ((r = kv_hsm_arpc_generate(h, &imk, &a.p, &a.t, &in, arpc, &arpc_len)) != 0) {
        rc = kv_pay_fail("arpc", cmd, h, r, "ARPC generation");
        goto out;
    }
    if (c.json) {
        json_t *o = json_object();
        json_object_set_new(o, "cvn", json_integer(a.p.cvn));
        json_object_set_new(o, "method", json_integer(method));
        json_object_set_new(o, "key", json_string(arpc_key == KV_EMV_ARPC_KEY_MK ? "mk" : "sk"));
        json_object_set_new(o, "arpc", kv_pay_json_hex(arpc, arpc_len));
        rc = kv_pay_json(o);
    } else {
        char hex[17];
        kv_hex_encode(arpc, arpc_len, hex);
        printf("%s\n", hex);
        rc = KV_EXIT_OK;
    }
out:
    kv_hsm_close(h);
    return rc;
}

int kv_cmd_arpc(int argc, char **argv)
{
    int rc;
    if ((rc = kv_cli_group_help(argc, argv, arpc_usage)) >= 0)
        return rc;
    if (strcmp(argv[1], "generate") == 0)
        return arpc_run(argv[1], argc, argv);
    return kv_cli_usage_error("arpc", "unknown command '%s' (generate)", argv[1]);
}

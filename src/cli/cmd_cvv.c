/* `kortvagt cvv` and `kortvagt cvc3`: card verification values in the HSM (see cli.h). */
#include "hsm/cvv.h"
#include "src/base/err.h"
#include "src/cli/cli.h"
#include "src/cli/pay_cli.h"
#include "src/cli/verify_cli.h"

#include <stdio.h>
#include <string.h>

static void cvv_usage(FILE *f)
{
    fprintf(f,
            "Usage: kortvagt cvv generate --key CVK --pan PAN --expiry YYMM --service-code SSS\n"
            "       kortvagt cvv verify   --key CVK --pan PAN --expiry YYMM --service-code SSS\n"
            "                             --cvv DDD\n\n"
            "Compute or check a Visa CVV / Mastercard CVC1 (the service code of the card),\n"
            "CVV2 / CVC2 (service code 000) or iCVV (service code 999): the CVK halves A,B\n"
            "encipher PAN || YYMM || service code, zero-padded to 32 digits, as\n"
            "3DES(A,B)(DES(A)(block 1) XOR block 2); the result is Visa-decimalised to 3\n"
            "digits. The CVK is a des2 key imported with --usage cvk (it has an A||A\n"
            "companion). PAN: 1 to 19 digits (no Luhn check).\n\n"
            "Options:\n"
            "  --key NAME        CVK label or pkcs11: URI\n"
            "  --pan PAN, --expiry YYMM, --service-code SSS, --cvv DDD\n"
            "  --store URL       (verify) the store that counts the attempts (default\n"
            "                    $KORTVAGT_STORE, [store] url, sqlite:./kortvagt.db)\n"
            "  --config PATH     (verify) the INI file ([verify] code_tries_max)\n"
            "  --token LABEL     token label or pkcs11: URI (default $KORTVAGT_TOKEN, kortvagt)\n"
            "  --module PATH     PKCS#11 module (default $KORTVAGT_PKCS11_MODULE, SoftHSM2)\n"
            "  --json            machine-readable output\n"
            "  --help            show this help\n\n"
            "The token PIN comes from $KORTVAGT_PIN, the file named by $KORTVAGT_PIN_FILE, or\n"
            "one line of standard input. verify prints only 'match', 'mismatch' or\n"
            "'blocked'.\n\n"
            "verify counts the wrong codes of the card (--pan of 12 to 19 digits) in the\n"
            "store; CVV2/CVC2 and CVC3 share one count. After [verify] code_tries_max wrong\n"
            "codes in a row (default 5) the card is blocked: 'blocked', no HSM work, an\n"
            "evidence record, exit 10, until `kortvagt card settings --pan PAN\n"
            "--reset-tries`. A match resets the count.\n"
            "Exit codes: 0 generated / match, 1 mismatch, 2 usage error, 5 HSM error,\n"
            "6 store error, 10 blocked.\n");
}

/* The HSM part of `cvv verify` (a kv_attempts_hsm_fn): nothing runs for a blocked card. */
struct cvv_vctx {
    kv_app *app;
    const char *cmd, *key, *pan, *expiry, *sc, *cvv;
    int rc; /* the exit code of a failure printed here */
};

static int cvv_verify_hsm(void *ctx, const kv_card_state *card, int *match)
{
    struct cvv_vctx *v = ctx;
    kv_hsm *h = kv_app_hsm(v->app);
    kv_hsm_key key;
    int r;
    (void)card;
    /* the key's role before its shape, as for generate */
    if ((v->rc = kv_pay_key("cvv", v->cmd, h, v->key, KV_PAY_WANT_DES, &key)) != 0)
        return KV_ERR_HSM_KEY;
    if ((r = kv_hsm_key_require_role(h, &key, KV_ROLE_CVK)) != 0) {
        v->rc = kv_pay_fail("cvv", v->cmd, h, r, "key");
        return r;
    }
    if ((v->rc = kv_pay_key("cvv", v->cmd, h, v->key, KV_PAY_WANT_DES2_AA, &key)) != 0)
        return KV_ERR_HSM_KEY;
    if ((r = kv_hsm_cvv_verify(h, &key, v->pan, v->expiry, v->sc, v->cvv, match)) != 0)
        v->rc = kv_pay_fail("cvv", v->cmd, h, r, "CVV verification");
    return r;
}

static int cvv_run(const char *cmd, int argc, char **argv)
{
    const char *pan = NULL, *expiry = NULL, *sc = NULL, *cvv = NULL;
    struct kv_verify_opts vo = {NULL, NULL};
    const struct kv_pay_opt opts[] = {
        {"pan", &pan, NULL}, {"expiry", &expiry, NULL},  {"service-code", &sc, NULL},
        {"cvv", &cvv, NULL}, {"store", &vo.store, NULL}, {"config", &vo.config, NULL},
        {NULL, NULL, NULL},
    };
    struct kv_pay_common c;
    int verify = strcmp(cmd, "verify") == 0, rc, r;
    kv_hsm *h = NULL;
    kv_hsm_key key;
    char out[KV_CVV_DIGITS + 1];

    if ((rc = kv_pay_parse("cvv", cmd, argc, argv, 2, opts, &c)) != 0)
        return rc;
    if (c.help) {
        cvv_usage(stdout);
        return KV_EXIT_OK;
    }
    if ((rc = kv_pay_require("cvv", cmd, "key", c.key)) != 0 ||
        (rc = kv_pay_pan("cvv", cmd, pan)) != 0 ||
        (rc = kv_pay_digits("cvv", cmd, "expiry", expiry, 4, 4)) != 0 ||
        (rc = kv_pay_digits("cvv", cmd, "service-code", sc, 3, 3)) != 0)
        return rc;
    if (verify && (rc = kv_pay_digits("cvv", cmd, "cvv", cvv, KV_CVV_DIGITS, KV_CVV_DIGITS)) != 0)
        return rc;
    if (!verify && cvv != NULL)
        return kv_pay_usage("cvv", cmd, "--cvv belongs to 'cvv verify'");
    if (!verify && (vo.store != NULL || vo.config != NULL))
        return kv_pay_usage("cvv", cmd, "--store/--config belong to 'cvv verify'");
    if (verify) {
        /* counted per card in the store (verify_cli.h) */
        struct cvv_vctx v = {NULL, cmd, c.key, pan, expiry, sc, cvv, 0};
        kv_app *app = NULL;
        char method[16];
        if ((rc = kv_verify_pan("cvv", cmd, pan)) != 0 ||
            (rc = kv_verify_open("cvv", cmd, &c, &vo, &app)) != 0)
            return rc;
        v.app = app;
        snprintf(method, sizeof(method), "%s",
                 strcmp(sc, "000") == 0   ? "cvc2"
                 : strcmp(sc, "999") == 0 ? "icvv"
                                          : "cvv");
        rc = kv_verify_run("cvv", cmd, &c, app, KV_ATTEMPT_CODE, method, pan, cvv_verify_hsm, &v,
                           &v.rc);
        kv_app_close(app);
        return rc;
    }

    if ((rc = kv_pay_open("cvv", cmd, &c, &h)) != 0)
        goto out;
    /* the key's role before its shape: an IMK or a PVK is refused naming both roles */
    if ((rc = kv_pay_key("cvv", cmd, h, c.key, KV_PAY_WANT_DES, &key)) != 0)
        goto out;
    if ((r = kv_hsm_key_require_role(h, &key, KV_ROLE_CVK)) != 0) {
        rc = kv_pay_fail("cvv", cmd, h, r, "key");
        goto out;
    }
    if ((rc = kv_pay_key("cvv", cmd, h, c.key, KV_PAY_WANT_DES2_AA, &key)) != 0)
        goto out;
    if ((r = kv_hsm_cvv_generate(h, &key, pan, expiry, sc, out)) != 0) {
        rc = kv_pay_fail("cvv", cmd, h, r, "CVV generation");
        goto out;
    }
    if (c.json) {
        json_t *o = json_object();
        json_object_set_new(o, "pan", kv_pay_json_pan(pan));
        json_object_set_new(o, "expiry", json_string(expiry));
        json_object_set_new(o, "service_code", json_string(sc));
        json_object_set_new(o, "cvv", json_string(out));
        rc = kv_pay_json(o);
    } else {
        printf("%s\n", out);
        rc = KV_EXIT_OK;
    }
out:
    kv_hsm_close(h);
    return rc;
}

int kv_cmd_cvv(int argc, char **argv)
{
    int rc;
    if ((rc = kv_cli_group_help(argc, argv, cvv_usage)) >= 0)
        return rc;
    if (strcmp(argv[1], "generate") == 0 || strcmp(argv[1], "verify") == 0)
        return cvv_run(argv[1], argc, argv);
    return kv_cli_usage_error("cvv", "unknown command '%s' (generate, verify)", argv[1]);
}

/* ---- CVC3 ---- */

static void cvc3_usage(FILE *f)
{
    fprintf(f, "Usage: kortvagt cvc3 generate --key IMK --pan PAN [--psn NN] --atc HEX --un HEX\n"
               "                              (--track HEX | --track-ascii TEXT)\n"
               "       kortvagt cvc3 verify   ... --cvc3 DIGITS\n\n"
               "Mastercard dynamic CVC3: the ICC key is derived in the token from the issuer\n"
               "master key by EMV option A (PAN, PSN); IVCVC3 is the rightmost 2 bytes of ISO\n"
               "9797-1 MAC algorithm 3 (padding method 2) over the track data under the ICC key;\n"
               "CVC3 is the rightmost 2 bytes of 3DES(ICC key)(IVCVC3 || UN || ATC) as a\n"
               "5-digit number. verify compares the digits given (3 to 5: as many as the card's\n"
               "track carries, the bits set in its PCVC3 bitmap) with as many rightmost\n"
               "computed digits; fewer digits than the card carries are refused.\n\n"
               "Options:\n"
               "  --key NAME          issuer master key for CVC3 (des2, --usage imk-cvc3)\n"
               "  --pan PAN           1 to 19 digits\n"
               "  --psn NN            PAN sequence number, 2 digits (default 00)\n"
               "  --atc HEX           application transaction counter, 2 bytes\n"
               "  --un HEX            unpredictable number, 4 bytes\n"
               "  --track HEX         track 2 data as packed nibbles (pad to whole bytes with F)\n"
               "  --track-ascii TEXT  track 1 data as ASCII characters\n"
               "  --cvc3 DIGITS       (verify) received CVC3, 3 to 5 digits\n"
               "  --pcvc3 HEX         (verify) the card's PCVC3 bitmap (9F65 track 2, 9F62\n"
               "                      track 1): the CVC3 needs as many digits as it has bits set\n"
               "  --store, --config, --token, --module, --json, --help   as for 'kortvagt cvv'\n\n"
               "verify counts the wrong codes of the card in the store like 'cvv verify' (CVC3\n"
               "and CVC2 share one count; [verify] code_tries_max, default 5): a blocked card\n"
               "answers 'blocked' (exit 10) without HSM work.\n"
               "Exit codes: 0 generated / match, 1 mismatch, 2 usage error, 5 HSM error,\n"
               "6 store error, 10 blocked.\n");
}

/* The HSM part of `cvc3 verify` (a kv_attempts_hsm_fn): nothing runs for a blocked card. */
struct cvc3_vctx {
    kv_app *app;
    const char *cmd, *key, *pan, *psn, *cvc3;
    const uint8_t *atc, *un, *track;
    size_t track_len;
    unsigned want;
    int rc; /* the exit code of a failure printed here */
};

static int cvc3_verify_hsm(void *ctx, const kv_card_state *card, int *match)
{
    struct cvc3_vctx *v = ctx;
    kv_hsm *h = kv_app_hsm(v->app);
    kv_hsm_key key;
    char why[200];
    int r;
    (void)card;
    if ((v->rc = kv_pay_key("cvc3", v->cmd, h, v->key, KV_PAY_WANT_DES, &key)) != 0)
        return KV_ERR_HSM_KEY;
    if (key.type != KV_KEY_DES2) {
        fprintf(stderr, "kortvagt cvc3 %s: key '%s' must be a des2 issuer master key\n", v->cmd,
                v->key);
        v->rc = KV_EXIT_HSM;
        return KV_ERR_HSM_KEY;
    }
    why[0] = '\0';
    r = kv_hsm_cvc3_verify_len(h, &key, v->pan, v->psn, v->atc, v->un, v->track, v->track_len,
                               v->cvc3, v->want, match, why, sizeof(why));
    if (r == KV_ERR_ARG && why[0] != '\0')
        v->rc = kv_pay_usage("cvc3", v->cmd, "%s", why);
    else if (r != 0)
        v->rc = kv_pay_fail("cvc3", v->cmd, h, r, "CVC3 verification");
    return r;
}

static int cvc3_run(const char *cmd, int argc, char **argv)
{
    const char *pan = NULL, *psn = NULL, *atc_s = NULL, *un_s = NULL, *track_s = NULL;
    const char *ascii = NULL, *cvc3 = NULL, *pcvc3_s = NULL;
    struct kv_verify_opts vo = {NULL, NULL};
    const struct kv_pay_opt opts[] = {
        {"pan", &pan, NULL},          {"psn", &psn, NULL},       {"atc", &atc_s, NULL},
        {"un", &un_s, NULL},          {"track", &track_s, NULL}, {"track-ascii", &ascii, NULL},
        {"cvc3", &cvc3, NULL},        {"pcvc3", &pcvc3_s, NULL}, {"store", &vo.store, NULL},
        {"config", &vo.config, NULL}, {NULL, NULL, NULL},
    };
    struct kv_pay_common c;
    int verify = strcmp(cmd, "verify") == 0, rc, r;
    uint8_t atc[2], un[4], track[128], pcvc3[8];
    size_t track_len = 0, pcvc3_len = 0;
    unsigned want = 0;
    char why[200];
    kv_hsm *h = NULL;
    kv_hsm_key key;
    char out[KV_CVC3_DIGITS + 1];

    if ((rc = kv_pay_parse("cvc3", cmd, argc, argv, 2, opts, &c)) != 0)
        return rc;
    if (c.help) {
        cvc3_usage(stdout);
        return KV_EXIT_OK;
    }
    if ((rc = kv_pay_require("cvc3", cmd, "key", c.key)) != 0 ||
        (rc = kv_pay_pan("cvc3", cmd, pan)) != 0)
        return rc;
    if (psn != NULL && (rc = kv_pay_digits("cvc3", cmd, "psn", psn, 2, 2)) != 0)
        return rc;
    if ((rc = kv_pay_hex("cvc3", cmd, "atc", atc_s, atc, 2, 2, NULL)) != 0 ||
        (rc = kv_pay_hex("cvc3", cmd, "un", un_s, un, 4, 4, NULL)) != 0)
        return rc;
    if ((track_s == NULL) == (ascii == NULL))
        return kv_pay_usage("cvc3", cmd, "give exactly one of --track and --track-ascii");
    if (track_s != NULL) {
        if ((rc = kv_pay_hex("cvc3", cmd, "track", track_s, track, 1, sizeof(track), &track_len)) !=
            0)
            return rc;
    } else {
        track_len = strlen(ascii);
        if (track_len == 0 || track_len > sizeof(track))
            return kv_pay_usage("cvc3", cmd, "--track-ascii must be 1 to %zu characters",
                                sizeof(track));
        memcpy(track, ascii, track_len);
    }
    if (verify && (rc = kv_pay_digits("cvc3", cmd, "cvc3", cvc3, 1, KV_CVC3_DIGITS)) != 0)
        return rc;
    if (!verify && cvc3 != NULL)
        return kv_pay_usage("cvc3", cmd, "--cvc3 belongs to 'cvc3 verify'");
    if (!verify && pcvc3_s != NULL)
        return kv_pay_usage("cvc3", cmd, "--pcvc3 belongs to 'cvc3 verify'");
    if (pcvc3_s != NULL) {
        int n;
        if ((rc = kv_pay_hex("cvc3", cmd, "pcvc3", pcvc3_s, pcvc3, 1, sizeof(pcvc3), &pcvc3_len)) !=
            0)
            return rc;
        if ((n = kv_cvc3_digits_from_pcvc3(pcvc3, pcvc3_len, why, sizeof(why))) < 0)
            return kv_pay_usage("cvc3", cmd, "--pcvc3: %s", why);
        want = (unsigned)n;
    }
    if (!verify && (vo.store != NULL || vo.config != NULL))
        return kv_pay_usage("cvc3", cmd, "--store/--config belong to 'cvc3 verify'");
    if (verify) {
        /* counted per card in the store (verify_cli.h) */
        struct cvc3_vctx v = {NULL, cmd, c.key, pan, psn, cvc3, atc, un, track, track_len, want, 0};
        kv_app *app = NULL;
        char method[16] = "cvc3";
        if ((rc = kv_verify_pan("cvc3", cmd, pan)) != 0)
            return rc;
        if (strlen(cvc3) < (want != 0 ? want : KV_CVC3_MIN_DIGITS))
            return kv_pay_usage(
                "cvc3", cmd, "--cvc3 must have at least %u digits (the card carries %u)",
                want != 0 ? want : KV_CVC3_MIN_DIGITS, want != 0 ? want : KV_CVC3_MIN_DIGITS);
        if ((rc = kv_verify_open("cvc3", cmd, &c, &vo, &app)) != 0)
            return rc;
        v.app = app;
        rc = kv_verify_run("cvc3", cmd, &c, app, KV_ATTEMPT_CODE, method, pan, cvc3_verify_hsm, &v,
                           &v.rc);
        kv_app_close(app);
        return rc;
    }

    if ((rc = kv_pay_open("cvc3", cmd, &c, &h)) != 0)
        goto out;
    if ((rc = kv_pay_key("cvc3", cmd, h, c.key, KV_PAY_WANT_DES, &key)) != 0)
        goto out;
    if (key.type != KV_KEY_DES2) {
        fprintf(stderr, "kortvagt cvc3 %s: key '%s' must be a des2 issuer master key\n", cmd,
                c.key);
        rc = KV_EXIT_HSM;
        goto out;
    }
    if ((r = kv_hsm_cvc3_generate(h, &key, pan, psn, atc, un, track, track_len, out)) != 0) {
        rc = kv_pay_fail("cvc3", cmd, h, r, "CVC3 generation");
        goto out;
    }
    if (c.json) {
        json_t *o = json_object();
        json_object_set_new(o, "pan", kv_pay_json_pan(pan));
        json_object_set_new(o, "atc", kv_pay_json_hex(atc, 2));
        json_object_set_new(o, "un", kv_pay_json_hex(un, 4));
        json_object_set_new(o, "cvc3", json_string(out));
        rc = kv_pay_json(o);
    } else {
        printf("%s\n", out);
        rc = KV_EXIT_OK;
    }
out:
    kv_hsm_close(h);
    return rc;
}

int kv_cmd_cvc3(int argc, char **argv)
{
    int rc;
    if ((rc = kv_cli_group_help(argc, argv, cvc3_usage)) >= 0)
        return rc;
    if (strcmp(argv[1], "generate") == 0 || strcmp(argv[1], "verify") == 0)
        return cvc3_run(argv[1], argc, argv);
    return kv_cli_usage_error("cvc3", "unknown command '%s' (generate, verify)", argv[1]);
}

/* `kortvagt cvv` and `kortvagt cvc3`: card verification values in the HSM (see cli.h). */
#include "hsm/cvv.h"
#include "src/base/err.h"
#include "src/cli/cli.h"
#include "src/cli/pay_cli.h"

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
            "  --token LABEL     token label or pkcs11: URI (default $KORTVAGT_TOKEN, kortvagt)\n"
            "  --module PATH     PKCS#11 module (default $KORTVAGT_PKCS11_MODULE, SoftHSM2)\n"
            "  --json            machine-readable output\n"
            "  --help            show this help\n\n"
            "The token PIN comes from $KORTVAGT_PIN, the file named by $KORTVAGT_PIN_FILE, or\n"
            "one line of standard input. verify prints only 'match' or 'mismatch'.\n"
            "Exit codes: 0 generated / match, 1 mismatch, 2 usage error, 5 HSM error.\n");
}

static int cvv_run(const char *cmd, int argc, char **argv)
{
    const char *pan = NULL, *expiry = NULL, *sc = NULL, *cvv = NULL;
    const struct kv_pay_opt opts[] = {
        {"pan", &pan, NULL}, {"expiry", &expiry, NULL}, {"service-code", &sc, NULL},
        {"cvv", &cvv, NULL}, {NULL, NULL, NULL},
    };
    struct kv_pay_common c;
    int verify = strcmp(cmd, "verify") == 0, rc, r, match = 0;
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

    if ((rc = kv_pay_open("cvv", cmd, &c, &h)) != 0)
        goto out;
    if ((rc = kv_pay_key("cvv", cmd, h, c.key, KV_PAY_WANT_DES2_AA, &key)) != 0)
        goto out;
    if (verify) {
        if ((r = kv_hsm_cvv_verify(h, &key, pan, expiry, sc, cvv, &match)) != 0) {
            rc = kv_pay_fail("cvv", cmd, h, r, "CVV verification");
            goto out;
        }
        rc = kv_pay_verdict(&c, match, NULL);
        goto out;
    }
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
               "5-digit number. verify compares the digits given (1 to 5, e.g. the 3 a track\n"
               "carries) with as many rightmost computed digits.\n\n"
               "Options:\n"
               "  --key NAME          issuer master key for CVC3 (des2, --usage imk)\n"
               "  --pan PAN           1 to 19 digits\n"
               "  --psn NN            PAN sequence number, 2 digits (default 00)\n"
               "  --atc HEX           application transaction counter, 2 bytes\n"
               "  --un HEX            unpredictable number, 4 bytes\n"
               "  --track HEX         track 2 data as packed nibbles (pad to whole bytes with F)\n"
               "  --track-ascii TEXT  track 1 data as ASCII characters\n"
               "  --cvc3 DIGITS       (verify) received CVC3, 1 to 5 digits\n"
               "  --token, --module, --json, --help   as for 'kortvagt cvv'\n\n"
               "Exit codes: 0 generated / match, 1 mismatch, 2 usage error, 5 HSM error.\n");
}

static int cvc3_run(const char *cmd, int argc, char **argv)
{
    const char *pan = NULL, *psn = NULL, *atc_s = NULL, *un_s = NULL, *track_s = NULL;
    const char *ascii = NULL, *cvc3 = NULL;
    const struct kv_pay_opt opts[] = {
        {"pan", &pan, NULL},   {"psn", &psn, NULL},       {"atc", &atc_s, NULL},
        {"un", &un_s, NULL},   {"track", &track_s, NULL}, {"track-ascii", &ascii, NULL},
        {"cvc3", &cvc3, NULL}, {NULL, NULL, NULL},
    };
    struct kv_pay_common c;
    int verify = strcmp(cmd, "verify") == 0, rc, r, match = 0;
    uint8_t atc[2], un[4], track[128];
    size_t track_len = 0;
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
    if (verify) {
        if ((r = kv_hsm_cvc3_verify(h, &key, pan, psn, atc, un, track, track_len, cvc3, &match)) !=
            0) {
            rc = kv_pay_fail("cvc3", cmd, h, r, "CVC3 verification");
            goto out;
        }
        rc = kv_pay_verdict(&c, match, NULL);
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

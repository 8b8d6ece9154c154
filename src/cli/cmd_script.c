/*
 * `kortvagt script build`: one issuer script command built in the HSM
 * (hsm/issuer_script.h), printed as its script template 71 or 72 (apdu/script.h)
 * for an issuer host to put in its authorisation answer.
 */
#include "apdu/script.h"
#include "hsm/issuer_script.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/base/secure.h"
#include "src/cli/cli.h"
#include "src/cli/pay_cli.h"

#include <stdlib.h>
#include <string.h>

#define SCRIPT_DATA_MAX 247 /* 255 - a 8-byte MAC */

static void script_usage(FILE *f)
{
    fprintf(f,
            "Usage: kortvagt script build KIND --pan PAN [--psn NN] --cvn N --atc HEX --arqc HEX\n"
            "                             [--un HEX] [--imk-smi LABEL] [--imk-smc LABEL]\n"
            "                             [--after] [--id HEX] [--mac-len N] [--json]\n"
            "       KIND: pin-unblock | pin-change | app-block | app-unblock | card-block |\n"
            "             put-data --tag HEX --data HEX | update-record --sfi N --record N --data "
            "HEX\n\n"
            "Build one issuer script command for the card of an online transaction (EMV Book 2\n"
            "§9, Book 3 §10.10) and print its script template as hex: 71 (sent before the\n"
            "second GENERATE AC) or, with --after, 72 (sent after it), with the script\n"
            "identifier 9F18 when --id is given, around the command 86. The command carries\n"
            "the secure-messaging MAC (ISO 9797-1 MAC algorithm 3, padding 2) under the\n"
            "integrity session key, and for pin-change the new PIN block enciphered under the\n"
            "confidentiality session key; both keys are derived in the token from the issuer\n"
            "master keys (roles imk-smi and imk-smc) and destroyed after use.\n\n"
            "pin-change reads the new PIN (4 to 12 digits) from one line of standard input,\n"
            "never from the command line; when the token PIN also comes from standard input,\n"
            "it is the first line and the new PIN the second. The PIN is never printed.\n\n"
            "Options:\n"
            "  --pan PAN         1 to 19 digits\n"
            "  --psn NN          PAN sequence number, 2 digits (default 00)\n"
            "  --cvn N           the card's cryptogram version number: Visa 10, 18, 22;\n"
            "                    Mastercard 16, 17, 20, 21; CCD 5 (decimal)\n"
            "  --atc HEX         the ATC of the ARQC, 2 bytes\n"
            "  --arqc HEX        the ARQC the script answers, 8 bytes\n"
            "  --un HEX          unpredictable number, 4 bytes (accepted for CVNs whose\n"
            "                    secure-messaging keys use it; none of the above does)\n"
            "  --imk-smi LABEL   integrity issuer master key (default imk-smi)\n"
            "  --imk-smc LABEL   confidentiality issuer master key (default imk-smc)\n"
            "  --after           template 72 instead of 71\n"
            "  --id HEX          issuer script identifier 9F18, 4 bytes\n"
            "  --mac-len N       MAC length 4 to 8 bytes (default 8)\n"
            "  --tag HEX         (put-data) the data object's tag, 1 or 2 bytes (P1 P2)\n"
            "  --data HEX        (put-data) the value; (update-record) the record\n"
            "  --sfi N           (update-record) short file identifier 1 to 30\n"
            "  --record N        (update-record) record number 1 to 254\n"
            "  --token LABEL     token label or pkcs11: URI (default $KORTVAGT_TOKEN, kortvagt)\n"
            "  --module PATH     PKCS#11 module (default $KORTVAGT_PKCS11_MODULE, SoftHSM2)\n"
            "  --json            {\"kind\", \"cvn\", \"template\", \"command\", \"script\"}\n"
            "  --help            show this help\n\n"
            "Secure-messaging method per CVN (README \"Issuer scripts\"): session keys are the\n"
            "EMV common session key (Book 2 A1.3) with R = ATC || 00.. for Visa and R = ARQC\n"
            "for Mastercard and CCD; the Visa MAC covers CLA INS P1 P2 Lc ATC ARQC data, the\n"
            "others CLA INS P1 P2 Lc data.\n"
            "Exit codes: 0 built, 2 usage error, 5 HSM error (missing key, key of the wrong\n"
            "role, CVN without a method).\n");
}

/* A decimal option in lo..hi. */
static int dec_opt(const char *cmd, const char *name, const char *v, long lo, long hi, long *out)
{
    char *end = NULL;
    long x;

    if (v == NULL)
        return kv_pay_usage("script", cmd, "missing --%s", name);
    x = strtol(v, &end, 10);
    if (end == v || *end != '\0' || x < lo || x > hi)
        return kv_pay_usage("script", cmd, "--%s must be a number from %ld to %ld", name, lo, hi);
    *out = x;
    return KV_EXIT_OK;
}

static int script_build(int argc, char **argv)
{
    const char *cmd = "build";
    const char *pan = NULL, *psn = NULL, *cvn_s = NULL, *atc_s = NULL, *arqc_s = NULL, *un_s = NULL,
               *smi_s = NULL, *smc_s = NULL, *id_s = NULL, *mac_s = NULL, *tag_s = NULL,
               *data_s = NULL, *sfi_s = NULL, *rec_s = NULL;
    int after = 0, kind, rc, r;
    struct kv_pay_common c;
    kv_script_txn t;
    kv_script_spec sp;
    kv_script sc;
    kv_secbuf *pin = NULL;
    size_t pin_len = 0, data_len = 0, n = 0, tlen = 0;
    uint8_t data[SCRIPT_DATA_MAX], tag[2], tpl[KV_SCRIPT_CMD_MAX + 16];
    long v = 0;
    kv_hsm *h = NULL;
    kv_hsm_key smi, smc;

    if (argc < 3 || strncmp(argv[2], "-", 1) == 0) {
        if (argc >= 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
            script_usage(stdout);
            return KV_EXIT_OK;
        }
        return kv_pay_usage("script", cmd,
                            "missing the kind (pin-unblock, pin-change, app-block, app-unblock, "
                            "card-block, put-data, update-record)");
    }
    if ((kind = kv_script_kind_parse(argv[2])) == 0)
        return kv_pay_usage("script", cmd,
                            "unknown kind '%s' (pin-unblock, pin-change, app-block, app-unblock, "
                            "card-block, put-data, update-record)",
                            argv[2]);
    {
        int dummy_after = 0;
        const struct kv_pay_opt opts[] = {
            {"pan", &pan, NULL},       {"psn", &psn, NULL},       {"cvn", &cvn_s, NULL},
            {"atc", &atc_s, NULL},     {"arqc", &arqc_s, NULL},   {"un", &un_s, NULL},
            {"imk-smi", &smi_s, NULL}, {"imk-smc", &smc_s, NULL}, {"after", NULL, &dummy_after},
            {"id", &id_s, NULL},       {"mac-len", &mac_s, NULL}, {"tag", &tag_s, NULL},
            {"data", &data_s, NULL},   {"sfi", &sfi_s, NULL},     {"record", &rec_s, NULL},
            {NULL, NULL, NULL},
        };
        if ((rc = kv_pay_parse("script", cmd, argc, argv, 3, opts, &c)) != 0)
            return rc;
        after = dummy_after;
    }
    if (c.help) {
        script_usage(stdout);
        return KV_EXIT_OK;
    }
    if (c.key != NULL)
        return kv_pay_usage("script", cmd, "--key does not apply: use --imk-smi / --imk-smc");
    memset(&t, 0, sizeof(t));
    memset(&sp, 0, sizeof(sp));
    memset(&sc, 0, sizeof(sc));
    sp.kind = kind;
    if ((rc = kv_pay_pan("script", cmd, pan)) != 0)
        return rc;
    if (psn != NULL && (rc = kv_pay_digits("script", cmd, "psn", psn, 2, 2)) != 0)
        return rc;
    if ((rc = dec_opt(cmd, "cvn", cvn_s, 0, 255, &v)) != 0)
        return rc;
    t.cvn = (int)v;
    t.pan = pan;
    t.psn = psn;
    if ((rc = kv_pay_hex("script", cmd, "atc", atc_s, t.atc, 2, 2, NULL)) != 0 ||
        (rc = kv_pay_hex("script", cmd, "arqc", arqc_s, t.arqc, 8, 8, NULL)) != 0)
        return rc;
    if (un_s != NULL && (rc = kv_pay_hex("script", cmd, "un", un_s, t.un, 4, 4, NULL)) != 0)
        return rc;
    if (mac_s != NULL) {
        if ((rc = dec_opt(cmd, "mac-len", mac_s, 4, 8, &v)) != 0)
            return rc;
        sp.mac_len = (size_t)v;
    }
    if (id_s != NULL) {
        if ((rc = kv_pay_hex("script", cmd, "id", id_s, sc.id, 4, 4, NULL)) != 0)
            return rc;
        sc.has_id = 1;
    }
    /* the options of put-data and update-record, and only theirs */
    if (kind != KV_SCRIPT_PUT_DATA && tag_s != NULL)
        return kv_pay_usage("script", cmd, "--tag goes with put-data");
    if (kind != KV_SCRIPT_UPDATE_RECORD && (sfi_s != NULL || rec_s != NULL))
        return kv_pay_usage("script", cmd, "--sfi and --record go with update-record");
    if (kind != KV_SCRIPT_PUT_DATA && kind != KV_SCRIPT_UPDATE_RECORD && data_s != NULL)
        return kv_pay_usage("script", cmd, "--data goes with put-data and update-record");
    if (kind == KV_SCRIPT_PUT_DATA || kind == KV_SCRIPT_UPDATE_RECORD) {
        size_t room = SCRIPT_DATA_MAX + 8 - (sp.mac_len ? sp.mac_len : 8);
        if ((rc = kv_pay_hex("script", cmd, "data", data_s, data, 1, room, &data_len)) != 0)
            return rc;
        sp.data = data;
        sp.data_len = data_len;
    }
    if (kind == KV_SCRIPT_PUT_DATA) {
        size_t tl = 0;
        if ((rc = kv_pay_hex("script", cmd, "tag", tag_s, tag, 1, 2, &tl)) != 0)
            return rc;
        sp.p1 = tl == 2 ? tag[0] : 0;
        sp.p2 = tl == 2 ? tag[1] : tag[0];
    } else if (kind == KV_SCRIPT_UPDATE_RECORD) {
        if ((rc = dec_opt(cmd, "sfi", sfi_s, 1, 30, &v)) != 0)
            return rc;
        sp.p2 = (uint8_t)((v << 3) | 4);
        if ((rc = dec_opt(cmd, "record", rec_s, 1, 254, &v)) != 0)
            return rc;
        sp.p1 = (uint8_t)v;
    }

    if ((rc = kv_pay_open("script", cmd, &c, &h)) != 0)
        goto out;
    if ((rc = kv_pay_key("script", cmd, h, smi_s != NULL ? smi_s : "imk-smi", KV_PAY_WANT_DES,
                         &smi)) != 0)
        goto out;
    if (kind == KV_SCRIPT_PIN_CHANGE) {
        if ((rc = kv_pay_key("script", cmd, h, smc_s != NULL ? smc_s : "imk-smc", KV_PAY_WANT_DES,
                             &smc)) != 0)
            goto out;
        if ((rc = kv_pay_read_pin("script", cmd, &pin, &pin_len)) != 0)
            goto out;
        sp.new_pin = pin;
        sp.pin_len = pin_len;
    }
    r = kv_hsm_script_command(h, &smi, kind == KV_SCRIPT_PIN_CHANGE ? &smc : NULL, &t, &sp,
                              sc.cmds[0].apdu, sizeof(sc.cmds[0].apdu), &sc.cmds[0].len);
    kv_secbuf_free(pin);
    pin = NULL;
    if (r == KV_ERR_UNSUPPORTED) {
        fprintf(stderr,
                "kortvagt script build: CVN %d has no secure-messaging method here (Visa 10, "
                "18, 22; Mastercard 16, 17, 20, 21; CCD 5)\n",
                t.cvn);
        rc = KV_EXIT_HSM;
        goto out;
    }
    if (r != 0) {
        rc = kv_pay_fail("script", cmd, h, r, "issuer script command");
        goto out;
    }
    sc.tag = after ? 0x72 : 0x71;
    sc.ncmds = 1;
    if ((r = kv_script_encode(&sc, tpl, sizeof(tpl), &tlen)) != 0) {
        rc = kv_pay_fail("script", cmd, NULL, r, "script template");
        goto out;
    }
    n = sc.cmds[0].len;
    if (c.json) {
        json_t *o = json_object();
        json_object_set_new(o, "kind", json_string(kv_script_kind_name(kind)));
        json_object_set_new(o, "cvn", json_integer(t.cvn));
        json_object_set_new(o, "template", json_string(after ? "72" : "71"));
        if (sc.has_id)
            json_object_set_new(o, "id", kv_pay_json_hex(sc.id, 4));
        json_object_set_new(o, "command", kv_pay_json_hex(sc.cmds[0].apdu, n));
        json_object_set_new(o, "script", kv_pay_json_hex(tpl, tlen));
        rc = kv_pay_json(o);
    } else {
        char hex[2 * sizeof(tpl) + 1];
        kv_hex_encode(tpl, tlen, hex);
        printf("%s\n", hex);
        rc = KV_EXIT_OK;
    }
out:
    kv_secbuf_free(pin);
    kv_wipe(&sc, sizeof(sc));
    kv_hsm_close(h);
    return rc;
}

int kv_cmd_script(int argc, char **argv)
{
    int rc;
    if ((rc = kv_cli_group_help(argc, argv, script_usage)) >= 0)
        return rc;
    if (strcmp(argv[1], "build") == 0)
        return script_build(argc, argv);
    return kv_cli_usage_error("script", "unknown command '%s' (build)", argv[1]);
}

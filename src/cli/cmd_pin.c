/*
 * `kortvagt pvv`, `kortvagt ibm3624`, `kortvagt pinblock`: PIN verification
 * values, IBM 3624 offsets and ISO 9564 PIN blocks in the HSM (see cli.h).
 * A clear PIN comes only from standard input into locked memory; it is never
 * taken from the command line.
 */
#include "hsm/pin.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/base/secure.h"
#include "src/app/settings.h"
#include "src/cli/cli.h"
#include "src/cli/pay_cli.h"
#include "src/cli/verify_cli.h"
#include "src/config/pin_params.h"

#include <stdio.h>
#include <string.h>

#define COMMON_HELP                                                                                \
    "  --token LABEL     token label or pkcs11: URI (default $KORTVAGT_TOKEN, kortvagt)\n"         \
    "  --module PATH     PKCS#11 module (default $KORTVAGT_PKCS11_MODULE, SoftHSM2)\n"             \
    "  --json            machine-readable output\n"                                                \
    "  --help            show this help\n\n"                                                       \
    "Standard input: the token PIN first, unless $KORTVAGT_PIN or $KORTVAGT_PIN_FILE\n"            \
    "gives it, then the cardholder PIN (4 to 12 digits, one line). A PIN is never an\n"            \
    "argument. A verify prints only 'match' or 'mismatch'.\n"

/* "--format" value: 0, 1, 3 or 4. */
static int parse_format(const char *group, const char *cmd, const char *name, const char *v,
                        int *format)
{
    if (v == NULL)
        return kv_pay_usage(group, cmd, "missing --%s", name);
    if (strlen(v) == 1 && (v[0] == '0' || v[0] == '1' || v[0] == '3' || v[0] == '4')) {
        *format = v[0] - '0';
        return KV_EXIT_OK;
    }
    return kv_pay_usage(group, cmd,
                        "--%s must be 0, 1, 3 or 4 (ISO 9564 PIN block format), got '%s'", name, v);
}

static unsigned want_for_format(int format)
{
    return format == KV_PINBLOCK_ISO4 ? KV_PAY_WANT_AES : KV_PAY_WANT_DES;
}

/* The encrypted PIN block options of a verify, all or none. */
struct pinblock_in {
    const char *block_s, *key_s, *format_s;
    int format;
    uint8_t block[KV_PINBLOCK_MAX];
    size_t block_len;
};

static int pinblock_in_check(const char *group, const char *cmd, struct pinblock_in *b)
{
    int rc, size;

    if (b->block_s == NULL && b->key_s == NULL && b->format_s == NULL)
        return KV_EXIT_OK;
    if (b->block_s == NULL || b->key_s == NULL || b->format_s == NULL)
        return kv_pay_usage(group, cmd,
                            "--pin-block, --pin-key and --format go together (missing --%s)",
                            b->block_s == NULL ? "pin-block"
                            : b->key_s == NULL ? "pin-key"
                                               : "format");
    if ((rc = parse_format(group, cmd, "format", b->format_s, &b->format)) != 0)
        return rc;
    size = kv_pinblock_size(b->format);
    return kv_pay_hex(group, cmd, "pin-block", b->block_s, b->block, (size_t)size, (size_t)size,
                      &b->block_len);
}

/* ---- pvv ---- */

static void pvv_usage(FILE *f)
{
    fprintf(f, "Usage: kortvagt pvv generate --key PVK --pan PAN --pvki N  < PIN\n"
               "       kortvagt pvv verify   --key PVK --pan PAN [--pvki N --pvv DDDD]  < PIN\n"
               "       kortvagt pvv verify   --key PVK --pan PAN [--pvki N --pvv DDDD]\n"
               "                             --pin-block HEX --pin-key KEY --format F\n\n"
               "Visa PIN verification value: TSP = the 11 rightmost PAN digits without the\n"
               "check digit || PVKI || the 4 leftmost PIN digits, enciphered under the PVK\n"
               "(3DES) and Visa-decimalised to 4 digits. With --pin-block the PIN comes from\n"
               "an ISO 9564 PIN block encrypted under --pin-key (online PIN); it is decrypted\n"
               "into locked memory only and wiped at once. A block that does not decrypt to a\n"
               "valid block is a mismatch.\n\n"
               "verify checks a card's PIN (--pan of 12 to 19 digits) and counts wrong PINs in\n"
               "the store: after [verify] pin_tries_max wrong PINs in a row (default 3) the card\n"
               "is blocked ('blocked', no HSM work, an evidence record, exit 10) until\n"
               "`kortvagt card settings --pan PAN --reset-tries`; a match resets the count.\n"
               "The card's PVV and PVKI in the store (card settings --pvv, perso) override\n"
               "--pvv and --pvki, which are needed only when the store has none.\n\n"
               "Options:\n"
               "  --key NAME        PVK (des2/des3)\n"
               "  --pan PAN         1 to 19 digits (verify: 12 to 19)\n"
               "  --pvki N          PIN verification key index, one digit\n"
               "  --pvv DDDD        (verify) the card's PVV, when the store has none\n"
               "  --store URL       (verify) the store (default $KORTVAGT_STORE, [store] url,\n"
               "                    sqlite:./kortvagt.db)\n"
               "  --config PATH     (verify) the INI file ([verify] pin_tries_max)\n"
               "  --pin-block HEX   (verify) encrypted PIN block instead of a PIN on stdin\n"
               "  --pin-key NAME    its key (des2/des3; aes for format 4)\n"
               "  --format F        its ISO 9564 format: 0, 1, 3 or 4\n" COMMON_HELP
               "Exit codes: 0 generated / match, 1 mismatch, 2 usage error, 5 HSM error,\n"
               "6 store error, 10 blocked.\n");
}

/* The HSM part of `pvv verify` (a kv_attempts_hsm_fn): nothing runs for a blocked card. */
struct pvv_vctx {
    kv_app *app;
    const char *cmd, *key, *pan, *pvv;
    int pvki;
    const struct pinblock_in *pb;
    kv_secbuf *pin;
    size_t pin_len;
    int rc; /* the exit code of a failure printed here */
};

static int pvv_verify_hsm(void *ctx, const kv_card_state *card, int *match)
{
    struct pvv_vctx *v = ctx;
    kv_hsm *h = kv_app_hsm(v->app);
    kv_hsm_key pvk, pink;
    const char *pvv = v->pvv;
    int pvki = v->pvki, r;

    if (card->has_pvv) { /* the card's reference value overrides the command line */
        pvv = card->pvv;
        pvki = card->pvki;
    } else if (pvv == NULL) {
        v->rc =
            kv_pay_usage("pvv", v->cmd, "the card has no PVV in the store: give --pvki and --pvv");
        return KV_ERR_ARG;
    }
    if ((v->rc = kv_pay_key("pvv", v->cmd, h, v->key, KV_PAY_WANT_DES, &pvk)) != 0)
        return KV_ERR_HSM_KEY;
    if (v->pb->block_s != NULL) {
        if ((v->rc = kv_pay_key("pvv", v->cmd, h, v->pb->key_s, want_for_format(v->pb->format),
                                &pink)) != 0)
            return KV_ERR_HSM_KEY;
        r = kv_hsm_pvv_verify_pinblock(h, &pvk, &pink, v->pb->format, v->pb->block,
                                       v->pb->block_len, v->pan, pvki, pvv, match);
    } else {
        r = kv_hsm_pvv_verify(h, &pvk, v->pan, pvki, (const char *)kv_secbuf_ptr(v->pin),
                              v->pin_len, pvv, match);
    }
    if (r != 0)
        v->rc = kv_pay_fail("pvv", v->cmd, h, r, "PVV verification");
    return r;
}

static int pvv_run(const char *cmd, int argc, char **argv)
{
    const char *pan = NULL, *pvki_s = NULL, *pvv = NULL;
    struct kv_verify_opts vo = {NULL, NULL};
    struct pinblock_in pb;
    struct kv_pay_common c;
    int verify = strcmp(cmd, "verify") == 0, rc, r;
    kv_hsm *h = NULL;
    kv_hsm_key pvk;
    kv_secbuf *pin = NULL;
    size_t pin_len = 0;
    char out[KV_PVV_DIGITS + 1];

    memset(&pb, 0, sizeof(pb));
    {
        const struct kv_pay_opt opts[] = {
            {"pan", &pan, NULL},          {"pvki", &pvki_s, NULL},
            {"pvv", &pvv, NULL},          {"pin-block", &pb.block_s, NULL},
            {"pin-key", &pb.key_s, NULL}, {"format", &pb.format_s, NULL},
            {"store", &vo.store, NULL},   {"config", &vo.config, NULL},
            {NULL, NULL, NULL},
        };
        if ((rc = kv_pay_parse("pvv", cmd, argc, argv, 2, opts, &c)) != 0)
            return rc;
    }
    if (c.help) {
        pvv_usage(stdout);
        return KV_EXIT_OK;
    }
    if ((rc = kv_pay_require("pvv", cmd, "key", c.key)) != 0 ||
        (rc = kv_pay_pan("pvv", cmd, pan)) != 0)
        return rc;
    if ((!verify || pvki_s != NULL || pvv != NULL) &&
        (rc = kv_pay_digits("pvv", cmd, "pvki", pvki_s, 1, 1)) != 0)
        return rc;
    if (verify && pvki_s != NULL &&
        (rc = kv_pay_digits("pvv", cmd, "pvv", pvv, KV_PVV_DIGITS, KV_PVV_DIGITS)) != 0)
        return rc;
    if (!verify && pvv != NULL)
        return kv_pay_usage("pvv", cmd, "--pvv belongs to 'pvv verify'");
    if (!verify && (pb.block_s || pb.key_s || pb.format_s))
        return kv_pay_usage("pvv", cmd, "--pin-block/--pin-key/--format belong to 'pvv verify'");
    if (!verify && (vo.store != NULL || vo.config != NULL))
        return kv_pay_usage("pvv", cmd, "--store/--config belong to 'pvv verify'");
    if ((rc = pinblock_in_check("pvv", cmd, &pb)) != 0)
        return rc;
    if (verify) {
        /* counted per card in the store (verify_cli.h) */
        struct pvv_vctx v;
        kv_app *app = NULL;
        char method[16] = "pvv";
        if ((rc = kv_verify_pan("pvv", cmd, pan)) != 0 ||
            (rc = kv_verify_open("pvv", cmd, &c, &vo, &app)) != 0)
            return rc;
        memset(&v, 0, sizeof(v));
        v.app = app;
        v.cmd = cmd;
        v.key = c.key;
        v.pan = pan;
        v.pvv = pvv;
        v.pvki = pvki_s != NULL ? pvki_s[0] - '0' : 0;
        v.pb = &pb;
        if (pb.block_s == NULL && (rc = kv_pay_read_pin("pvv", cmd, &pin, &pin_len)) != 0) {
            kv_app_close(app);
            return rc;
        }
        v.pin = pin;
        v.pin_len = pin_len;
        rc = kv_verify_run("pvv", cmd, &c, app, KV_ATTEMPT_PIN, method, pan, pvv_verify_hsm, &v,
                           &v.rc);
        kv_secbuf_free(pin);
        kv_app_close(app);
        return rc;
    }

    if ((rc = kv_pay_open("pvv", cmd, &c, &h)) != 0)
        goto out;
    if ((rc = kv_pay_key("pvv", cmd, h, c.key, KV_PAY_WANT_DES, &pvk)) != 0)
        goto out;
    if ((rc = kv_pay_read_pin("pvv", cmd, &pin, &pin_len)) != 0)
        goto out;
    r = kv_hsm_pvv_generate(h, &pvk, pan, pvki_s[0] - '0', (const char *)kv_secbuf_ptr(pin),
                            pin_len, out);
    kv_secbuf_free(pin);
    pin = NULL;
    if (r != 0) {
        rc = kv_pay_fail("pvv", cmd, h, r, "PVV generation");
        goto out;
    }
    if (c.json) {
        json_t *o = json_object();
        json_object_set_new(o, "pan", kv_pay_json_pan(pan));
        json_object_set_new(o, "pvki", json_integer(pvki_s[0] - '0'));
        json_object_set_new(o, "pvv", json_string(out));
        rc = kv_pay_json(o);
    } else {
        printf("%s\n", out);
        rc = KV_EXIT_OK;
    }
out:
    kv_secbuf_free(pin);
    kv_hsm_close(h);
    return rc;
}

int kv_cmd_pvv(int argc, char **argv)
{
    int rc;
    if ((rc = kv_cli_group_help(argc, argv, pvv_usage)) >= 0)
        return rc;
    if (strcmp(argv[1], "generate") == 0 || strcmp(argv[1], "verify") == 0)
        return pvv_run(argv[1], argc, argv);
    return kv_cli_usage_error("pvv", "unknown command '%s' (generate, verify)", argv[1]);
}

/* ---- ibm3624 ---- */

static void ibm_usage(FILE *f)
{
    fprintf(f, "Usage: kortvagt ibm3624 offset --key PVK --pan PAN  < PIN\n"
               "       kortvagt ibm3624 verify --key PVK --pan PAN [--offset O]  < PIN\n"
               "       kortvagt ibm3624 verify --key PVK --pan PAN [--offset O]\n"
               "                               --pin-block HEX --pin-key KEY --format F\n\n"
               "IBM 3624 PIN offset: the validation data (hex, right-padded with the pad\n"
               "character to 16 digits) enciphered under the PVK (3DES) and decimalised with\n"
               "the table gives the natural PIN; offset = PIN - natural PIN, digit by digit\n"
               "mod 10, as many digits as the PIN. verify checks the leftmost digits the offset\n"
               "covers. With --pin-block the PIN comes from an encrypted ISO 9564 PIN block.\n\n"
               "The decimalisation table, the validation data and the pad come from the\n"
               "configuration, section [pvk.LABEL] of the PVK's label (dec_table,\n"
               "validation_data = pan:R:N: the N PAN digits that end R digits before the PAN's\n"
               "end, pad; defaults 0123456789012345, pan:1:11, F), for offset and verify alike;\n"
               "a caller who chose them could read PINs through the verify answers.\n\n"
               "verify checks a card's PIN (--pan of 12 to 19 digits) and counts wrong PINs in\n"
               "the store like 'pvv verify' ([verify] pin_tries_max, default 3; blocked: exit\n"
               "10, no HSM work, until `kortvagt card settings --pan PAN --reset-tries`). The\n"
               "card's offset in the store (card settings --ibm-offset) overrides --offset,\n"
               "which is needed only when the store has none.\n\n"
               "Options:\n"
               "  --key NAME              PVK (des2/des3)\n"
               "  --pan PAN               the card (offset: 1 to 19 digits; verify: 12 to 19)\n"
               "  --offset O              (verify) 4 to 12 digits, when the store has none\n"
               "  --pin-block HEX, --pin-key NAME, --format F\n"
               "                          (verify) encrypted PIN block instead of a PIN on "
               "stdin\n"
               "  --config PATH           the INI file ([pvk.LABEL], [verify])\n"
               "  --store URL             (verify) the store (default $KORTVAGT_STORE, [store]\n"
               "                          url, sqlite:./kortvagt.db)\n" COMMON_HELP
               "Exit codes: 0 computed / match, 1 mismatch, 2 usage error, 5 HSM error,\n"
               "6 store error, 10 blocked.\n");
}

/* The [pvk.LABEL] parameters of pvk and the validation data of pan; prints why on failure. */
static int ibm_params(const char *cmd, const kv_config *cfg, const kv_hsm_key *pvk, const char *pan,
                      kv_pin_params *pp, char vdata[17])
{
    kv_pin_params_source src = kv_pin_params_config_source(cfg);
    char why[200];
    int r;
    if ((r = src.lookup(src.ctx, pvk->label, pp)) != 0) {
        fprintf(stderr, "kortvagt ibm3624 %s: [pvk.%s]: %s\n", cmd, pvk->label, kv_strerror(r));
        return kv_exit_code(r);
    }
    if ((r = kv_pin_params_vdata(pp, pan, vdata, why, sizeof(why))) != 0)
        return kv_pay_usage("ibm3624", cmd, "[pvk.%s]: %s", pvk->label, why);
    return KV_EXIT_OK;
}

/* The HSM part of `ibm3624 verify` (a kv_attempts_hsm_fn): nothing runs for a blocked card. */
struct ibm_vctx {
    kv_app *app;
    const char *cmd, *key, *pan, *offset;
    const struct pinblock_in *pb;
    kv_secbuf *pin;
    size_t pin_len;
    int rc; /* the exit code of a failure printed here */
};

static int ibm_verify_hsm(void *ctx, const kv_card_state *card, int *match)
{
    struct ibm_vctx *v = ctx;
    kv_hsm *h = kv_app_hsm(v->app);
    kv_hsm_key pvk, pink;
    kv_pin_params pp;
    const char *offset = card->has_ibm_offset ? card->ibm_offset : v->offset;
    char vdata[17];
    int r;

    if (offset == NULL) {
        v->rc = kv_pay_usage("ibm3624", v->cmd,
                             "the card has no IBM 3624 offset in the store: give --offset");
        return KV_ERR_ARG;
    }
    if ((v->rc = kv_pay_key("ibm3624", v->cmd, h, v->key, KV_PAY_WANT_DES, &pvk)) != 0)
        return KV_ERR_HSM_KEY;
    if ((v->rc = ibm_params(v->cmd, kv_app_config(v->app), &pvk, v->pan, &pp, vdata)) != 0)
        return KV_ERR_ARG;
    if (v->pb->block_s != NULL) {
        if ((v->rc = kv_pay_key("ibm3624", v->cmd, h, v->pb->key_s, want_for_format(v->pb->format),
                                &pink)) != 0)
            return KV_ERR_HSM_KEY;
        r = kv_hsm_ibm3624_verify_pinblock(h, &pvk, &pink, v->pb->format, v->pb->block,
                                           v->pb->block_len, v->pan, pp.dec_table, vdata, pp.pad,
                                           offset, match);
    } else {
        r = kv_hsm_ibm3624_verify(h, &pvk, pp.dec_table, vdata, pp.pad,
                                  (const char *)kv_secbuf_ptr(v->pin), v->pin_len, offset, match);
    }
    kv_wipe(vdata, sizeof(vdata));
    if (r != 0)
        v->rc = kv_pay_fail("ibm3624", v->cmd, h, r, "IBM 3624 verification");
    return r;
}

static int ibm_run(const char *cmd, int argc, char **argv)
{
    const char *table = NULL, *vdata_s = NULL, *pad_s = NULL, *offset = NULL, *pan = NULL;
    struct kv_verify_opts vo = {NULL, NULL};
    struct pinblock_in pb;
    struct kv_pay_common c;
    int verify = strcmp(cmd, "verify") == 0, rc, r;
    kv_hsm *h = NULL;
    kv_hsm_key pvk;
    kv_secbuf *pin = NULL;
    size_t pin_len = 0;
    char out[KV_PIN_MAX + 1], vdata[17];
    kv_pin_params pp;
    kv_config *cfg = NULL;

    memset(&pb, 0, sizeof(pb));
    {
        const struct kv_pay_opt opts[] = {
            {"dec-table", &table, NULL},  {"validation-data", &vdata_s, NULL},
            {"pad-char", &pad_s, NULL},   {"offset", &offset, NULL},
            {"pan", &pan, NULL},          {"pin-block", &pb.block_s, NULL},
            {"pin-key", &pb.key_s, NULL}, {"format", &pb.format_s, NULL},
            {"store", &vo.store, NULL},   {"config", &vo.config, NULL},
            {NULL, NULL, NULL},
        };
        if ((rc = kv_pay_parse("ibm3624", cmd, argc, argv, 2, opts, &c)) != 0)
            return rc;
    }
    if (c.help) {
        ibm_usage(stdout);
        return KV_EXIT_OK;
    }
    /* issue 11: a caller who chooses these reads PINs through the verify answers */
    if (table != NULL || vdata_s != NULL || pad_s != NULL)
        return kv_pay_usage("ibm3624", cmd,
                            "--%s is no longer accepted: the decimalisation table, validation "
                            "data and pad come from [pvk.LABEL] of the configuration",
                            table != NULL     ? "dec-table"
                            : vdata_s != NULL ? "validation-data"
                                              : "pad-char");
    if ((rc = kv_pay_require("ibm3624", cmd, "key", c.key)) != 0 ||
        (rc = kv_pay_pan("ibm3624", cmd, pan)) != 0)
        return rc;
    if (verify && offset != NULL &&
        (rc = kv_pay_digits("ibm3624", cmd, "offset", offset, KV_PIN_MIN, KV_PIN_MAX)) != 0)
        return rc;
    if (!verify && offset != NULL)
        return kv_pay_usage("ibm3624", cmd, "--offset belongs to 'ibm3624 verify'");
    if (!verify && (pb.block_s || pb.key_s || pb.format_s))
        return kv_pay_usage("ibm3624", cmd,
                            "--pin-block/--pin-key/--format belong to 'ibm3624 verify'");
    if (!verify && vo.store != NULL)
        return kv_pay_usage("ibm3624", cmd, "--store belongs to 'ibm3624 verify'");
    if ((rc = pinblock_in_check("ibm3624", cmd, &pb)) != 0)
        return rc;

    if (verify) {
        /* counted per card in the store (verify_cli.h) */
        struct ibm_vctx v;
        kv_app *app = NULL;
        char method[16] = "ibm3624";
        if ((rc = kv_verify_pan("ibm3624", cmd, pan)) != 0 ||
            (rc = kv_verify_open("ibm3624", cmd, &c, &vo, &app)) != 0)
            return rc;
        memset(&v, 0, sizeof(v));
        v.app = app;
        v.cmd = cmd;
        v.key = c.key;
        v.pan = pan;
        v.offset = offset;
        v.pb = &pb;
        if (pb.block_s == NULL && (rc = kv_pay_read_pin("ibm3624", cmd, &pin, &pin_len)) != 0) {
            kv_app_close(app);
            return rc;
        }
        v.pin = pin;
        v.pin_len = pin_len;
        rc = kv_verify_run("ibm3624", cmd, &c, app, KV_ATTEMPT_PIN, method, pan, ibm_verify_hsm, &v,
                           &v.rc);
        kv_secbuf_free(pin);
        kv_app_close(app);
        return rc;
    }

    /* offset: the configuration alone (no store) */
    {
        kv_settings_flags sf;
        kv_settings st;
        char err[512] = "";
        memset(&sf, 0, sizeof(sf));
        sf.config = vo.config;
        if ((r = kv_settings_init(&st, &sf, err, sizeof(err))) == 0)
            r = kv_settings_load_config(&st, &cfg, err, sizeof(err));
        kv_settings_clear(&st);
        if (r != 0) {
            fprintf(stderr, "kortvagt ibm3624 %s: configuration: %s\n", cmd,
                    err[0] ? err : kv_strerror(r));
            return kv_exit_code(r);
        }
    }
    if ((rc = kv_pay_open("ibm3624", cmd, &c, &h)) != 0)
        goto out;
    if ((rc = kv_pay_key("ibm3624", cmd, h, c.key, KV_PAY_WANT_DES, &pvk)) != 0)
        goto out;
    if ((rc = ibm_params(cmd, cfg, &pvk, pan, &pp, vdata)) != 0)
        goto out;
    if ((rc = kv_pay_read_pin("ibm3624", cmd, &pin, &pin_len)) != 0)
        goto out;
    r = kv_hsm_ibm3624_offset(h, &pvk, pp.dec_table, vdata, pp.pad,
                              (const char *)kv_secbuf_ptr(pin), pin_len, out);
    kv_secbuf_free(pin);
    pin = NULL;
    if (r != 0) {
        rc = kv_pay_fail("ibm3624", cmd, h, r, "IBM 3624 offset");
        goto out;
    }
    if (c.json) {
        json_t *o = json_object();
        json_object_set_new(o, "offset", json_string(out));
        rc = kv_pay_json(o);
    } else {
        printf("%s\n", out);
        rc = KV_EXIT_OK;
    }
out:
    kv_wipe(vdata, sizeof(vdata));
    kv_secbuf_free(pin);
    kv_hsm_close(h);
    kv_config_free(cfg);
    return rc;
}

int kv_cmd_ibm3624(int argc, char **argv)
{
    int rc;
    if ((rc = kv_cli_group_help(argc, argv, ibm_usage)) >= 0)
        return rc;
    if (strcmp(argv[1], "offset") == 0 || strcmp(argv[1], "verify") == 0)
        return ibm_run(argv[1], argc, argv);
    return kv_cli_usage_error("ibm3624", "unknown command '%s' (offset, verify)", argv[1]);
}

/* ---- pinblock ---- */

static void pinblock_usage(FILE *f)
{
    fprintf(f, "Usage: kortvagt pinblock encode    --format F --pan PAN [--key K]  < PIN\n"
               "       kortvagt pinblock decode    --format F --pan PAN [--key K] --block HEX\n"
               "                                   [--reveal]\n"
               "       kortvagt pinblock translate --format F --pan PAN --key K --block HEX\n"
               "                                   --to-format F2 --to-key K2\n\n"
               "ISO 9564-1 PIN blocks: formats 0 (PAN-bound, fill F), 1 (no PAN, random fill)\n"
               "and 3 (PAN-bound, random fill A-F) under a 3DES key; format 4 under an AES key\n"
               "as AES(AES(PIN field) XOR PAN field) with a random half. Random fill comes from\n"
               "OpenSSL's RAND_bytes. decode says only whether the block is valid unless\n"
               "--reveal (a lab function) prints the PIN. translate decrypts and re-encrypts\n"
               "with the clear PIN in locked memory only, wiped at once. --pan may be left out\n"
               "for format 1.\n\n"
               "Without --key, encode and decode work on the CLEAR PIN block (ISO 9564-1; a lab\n"
               "function, no token is opened): encode prints the clear block of formats 0, 1\n"
               "and 3 (8 bytes: PIN field XOR PAN field; format 1: the PIN field), and for\n"
               "format 4 its two 16-byte plaintext fields, the PIN field and the PAN field\n"
               "(format 4 enciphers PIN field, XORs the PAN field, enciphers again). decode\n"
               "reads a clear block of format 0, 1 or 3 (8 bytes) or, for format 4, the\n"
               "16-byte plaintext PIN field (it has no PAN part: --pan may be left out), and\n"
               "says whether it is well-formed and the PIN's length; --reveal prints the PIN.\n\n"
               "Options:\n"
               "  --format F        0, 1, 3 or 4\n"
               "  --pan PAN         1 to 19 digits\n"
               "  --key NAME        PIN encryption key (des2/des3; aes for format 4); without\n"
               "                    it: the clear PIN block (encode, decode)\n"
               "  --block HEX       encrypted PIN block (8 bytes; 16 for format 4), or without\n"
               "                    --key the clear block (format 4: the plaintext PIN field)\n"
               "  --to-format F2, --to-key NAME   (translate) output format and key\n"
               "  --reveal          (decode) print the clear PIN\n" COMMON_HELP
               "Exit codes: 0 done / valid, 1 decode: not a valid PIN block, 2 usage error,\n"
               "5 HSM error.\n");
}

/* Print len bytes as hex after a label ("" for none), then wipe them. */
static void print_wipe(const char *label, uint8_t *b, size_t len)
{
    char hex[2 * KV_PINBLOCK_MAX + 1];
    kv_hex_encode(b, len, hex);
    printf("%s%s\n", label, hex);
    kv_wipe(hex, sizeof(hex));
    kv_wipe(b, len);
}

/*
 * pinblock encode without --key: the clear block (formats 0, 1, 3) or the
 * plaintext PIN and PAN fields (format 4) of the PIN on stdin.
 */
static int pinblock_clear_encode(const struct kv_pay_common *c, int format, const char *pan)
{
    uint8_t fill[KV_PIN_FILL], a[KV_PINBLOCK_MAX], b[KV_PINBLOCK_MAX];
    kv_secbuf *pin = NULL;
    size_t pin_len = 0, n = (size_t)kv_pinblock_size(format);
    int rc, r;

    if ((rc = kv_pay_read_pin("pinblock", "encode", &pin, &pin_len)) != 0)
        return rc;
    if ((r = kv_pin_random_fill(format, fill)) == 0) {
        if (format == KV_PINBLOCK_ISO4) {
            if ((r = kv_pin_field_build(format, (const char *)kv_secbuf_ptr(pin), pin_len, fill,
                                        a)) == 0)
                r = kv_pan_field_build(format, pan, b);
        } else {
            r = kv_pinblock_clear_build(format, (const char *)kv_secbuf_ptr(pin), pin_len, pan,
                                        fill, a);
        }
    }
    kv_secbuf_free(pin);
    kv_wipe(fill, sizeof(fill));
    if (r != 0) {
        kv_wipe(a, sizeof(a));
        return kv_pay_fail("pinblock", "encode", NULL, r, "clear PIN block");
    }
    if (c->json) {
        json_t *o = json_object();
        json_object_set_new(o, "format", json_integer(format));
        json_object_set_new(o, "clear", json_true());
        if (format == KV_PINBLOCK_ISO4) {
            json_object_set_new(o, "pin_field", kv_pay_json_hex(a, n));
            json_object_set_new(o, "pan_field", kv_pay_json_hex(b, n));
        } else {
            json_object_set_new(o, "block", kv_pay_json_hex(a, n));
        }
        kv_wipe(a, sizeof(a));
        return kv_pay_json(o);
    }
    if (format == KV_PINBLOCK_ISO4) {
        print_wipe("PIN field: ", a, n);
        print_wipe("PAN field: ", b, n);
    } else {
        print_wipe("", a, n);
    }
    return KV_EXIT_OK;
}

/*
 * pinblock decode without --key: is the clear block (format 4: the plaintext
 * PIN field) well-formed for the PAN; the PIN only with --reveal.
 */
static int pinblock_clear_decode(const struct kv_pay_common *c, int format, const char *pan,
                                 const uint8_t *block, int reveal)
{
    kv_secbuf *pin = kv_secbuf_new(KV_PIN_MAX + 1);
    const char *what = format == KV_PINBLOCK_ISO4 ? "plaintext PIN field" : "clear PIN block";
    size_t pin_len = 0;
    int r, rc;

    if (pin == NULL)
        return kv_pay_fail("pinblock", "decode", NULL, KV_ERR_NOMEM, "locked memory");
    if (format == KV_PINBLOCK_ISO4)
        r = kv_pin_field_parse(format, block, (char *)kv_secbuf_ptr(pin), &pin_len);
    else
        r = kv_pinblock_clear_parse(format, block, pan, (char *)kv_secbuf_ptr(pin), &pin_len);
    if (r != 0 && r != KV_ERR_FORMAT) {
        kv_secbuf_free(pin);
        return kv_pay_fail("pinblock", "decode", NULL, r, what);
    }
    rc = r == 0 ? KV_EXIT_OK : KV_EXIT_MISMATCH;
    if (c->json) {
        json_t *o = json_object();
        json_object_set_new(o, "format", json_integer(format));
        json_object_set_new(o, "clear", json_true());
        json_object_set_new(o, "valid", json_boolean(r == 0));
        if (r == 0)
            json_object_set_new(o, "pin_length", json_integer((json_int_t)pin_len));
        if (r == 0 && reveal)
            json_object_set_new(o, "pin", json_string((const char *)kv_secbuf_ptr(pin)));
        if (kv_pay_json(o) != KV_EXIT_OK)
            rc = KV_EXIT_INTERNAL;
    } else if (r != 0) {
        printf("format %d: not a well-formed %s%s\n", format, what,
               format == KV_PINBLOCK_ISO0 || format == KV_PINBLOCK_ISO3 ? " for this PAN" : "");
    } else if (reveal) {
        printf("%s\n", (const char *)kv_secbuf_ptr(pin));
    } else {
        printf("format %d: well-formed %s, PIN of %zu digits\n", format, what, pin_len);
    }
    kv_secbuf_free(pin);
    return rc;
}

static int pinblock_run(const char *cmd, int argc, char **argv)
{
    const char *format_s = NULL, *pan = NULL, *block_s = NULL, *to_format_s = NULL;
    const char *to_key_s = NULL;
    int reveal = 0, format = 0, to_format = 0, rc, r, size, clear;
    int encode = strcmp(cmd, "encode") == 0, decode = strcmp(cmd, "decode") == 0;
    struct kv_pay_common c;
    uint8_t block[KV_PINBLOCK_MAX], out[KV_PINBLOCK_MAX];
    size_t block_len = 0, out_len = 0, pin_len = 0;
    kv_hsm *h = NULL;
    kv_hsm_key key, to_key;
    kv_secbuf *pin = NULL;

    {
        const struct kv_pay_opt opts[] = {
            {"format", &format_s, NULL}, {"pan", &pan, NULL},
            {"block", &block_s, NULL},   {"to-format", &to_format_s, NULL},
            {"to-key", &to_key_s, NULL}, {"reveal", NULL, &reveal},
            {NULL, NULL, NULL},
        };
        if ((rc = kv_pay_parse("pinblock", cmd, argc, argv, 2, opts, &c)) != 0)
            return rc;
    }
    if (c.help) {
        pinblock_usage(stdout);
        return KV_EXIT_OK;
    }
    if ((rc = parse_format("pinblock", cmd, "format", format_s, &format)) != 0)
        return rc;
    /* encode and decode without --key: the clear PIN block, no token */
    clear = c.key == NULL && (encode || decode);
    if (!clear && (rc = kv_pay_require("pinblock", cmd, "key", c.key)) != 0)
        return rc;
    if (clear && (c.token != NULL || c.module != NULL))
        return kv_pay_usage("pinblock", cmd,
                            "--token/--module need --key (without --key the block is clear)");
    if (!encode) {
        size = kv_pinblock_size(format);
        if ((rc = kv_pay_hex("pinblock", cmd, "block", block_s, block, (size_t)size, (size_t)size,
                             &block_len)) != 0)
            return rc;
    } else if (block_s != NULL) {
        return kv_pay_usage("pinblock", cmd,
                            "--block is not used by encode (the PIN comes from stdin)");
    }
    if (strcmp(cmd, "translate") == 0) {
        if ((rc = parse_format("pinblock", cmd, "to-format", to_format_s, &to_format)) != 0 ||
            (rc = kv_pay_require("pinblock", cmd, "to-key", to_key_s)) != 0)
            return rc;
        if (pan == NULL && to_format != KV_PINBLOCK_ISO1)
            return kv_pay_usage("pinblock", cmd, "missing --pan (format %d needs the PAN)",
                                to_format);
    } else if (to_format_s != NULL || to_key_s != NULL) {
        return kv_pay_usage("pinblock", cmd, "--to-format/--to-key belong to 'pinblock translate'");
    }
    if (reveal && !decode)
        return kv_pay_usage("pinblock", cmd, "--reveal belongs to 'pinblock decode'");
    /* a clear format 4 PIN field has no PAN part */
    if (pan == NULL && format != KV_PINBLOCK_ISO1 &&
        !(clear && decode && format == KV_PINBLOCK_ISO4))
        return kv_pay_usage("pinblock", cmd, "missing --pan (format %d needs the PAN)", format);
    if (pan != NULL && (rc = kv_pay_pan("pinblock", cmd, pan)) != 0)
        return rc;
    if (clear && encode)
        return pinblock_clear_encode(&c, format, pan);
    if (clear)
        return pinblock_clear_decode(&c, format, pan, block, reveal);

    if ((rc = kv_pay_open("pinblock", cmd, &c, &h)) != 0)
        goto out;
    if ((rc = kv_pay_key("pinblock", cmd, h, c.key, want_for_format(format), &key)) != 0)
        goto out;

    if (encode) {
        if ((rc = kv_pay_read_pin("pinblock", cmd, &pin, &pin_len)) != 0)
            goto out;
        r = kv_hsm_pinblock_encrypt(h, &key, format, (const char *)kv_secbuf_ptr(pin), pin_len, pan,
                                    out, &out_len);
        kv_secbuf_free(pin);
        pin = NULL;
        if (r != 0) {
            rc = kv_pay_fail("pinblock", cmd, h, r, "PIN block encryption");
            goto out;
        }
    } else if (decode) {
        if ((pin = kv_secbuf_new(KV_PIN_MAX + 1)) == NULL) {
            rc = kv_pay_fail("pinblock", cmd, NULL, KV_ERR_NOMEM, "locked memory");
            goto out;
        }
        r = kv_hsm_pinblock_decrypt(h, &key, format, block, block_len, pan,
                                    reveal ? (char *)kv_secbuf_ptr(pin) : NULL, &pin_len);
        if (r != 0 && r != KV_ERR_FORMAT) {
            rc = kv_pay_fail("pinblock", cmd, h, r, "PIN block decryption");
            goto out;
        }
        if (c.json) {
            json_t *o = json_object();
            json_object_set_new(o, "format", json_integer(format));
            json_object_set_new(o, "valid", json_boolean(r == 0));
            if (r == 0 && reveal)
                json_object_set_new(o, "pin", json_string((const char *)kv_secbuf_ptr(pin)));
            rc = kv_pay_json(o);
        } else if (r != 0) {
            printf("format %d: not a valid PIN block for this key and PAN\n", format);
        } else if (reveal) {
            printf("%s\n", (const char *)kv_secbuf_ptr(pin));
        } else {
            printf("format %d: valid PIN block\n", format);
        }
        if (rc == KV_EXIT_OK)
            rc = r == 0 ? KV_EXIT_OK : KV_EXIT_MISMATCH;
        goto out;
    } else {
        if ((rc = kv_pay_key("pinblock", cmd, h, to_key_s, want_for_format(to_format), &to_key)) !=
            0)
            goto out;
        r = kv_hsm_pinblock_translate(h, &key, format, block, block_len, pan, &to_key, to_format,
                                      out, &out_len);
        if (r == KV_ERR_FORMAT) {
            fprintf(stderr,
                    "kortvagt pinblock translate: the input is not a valid format %d PIN block "
                    "for this key and PAN\n",
                    format);
            rc = KV_EXIT_MISMATCH;
            goto out;
        }
        if (r != 0) {
            rc = kv_pay_fail("pinblock", cmd, h, r, "PIN block translation");
            goto out;
        }
        format = to_format;
    }
    if (c.json) {
        json_t *o = json_object();
        json_object_set_new(o, "format", json_integer(format));
        json_object_set_new(o, "block", kv_pay_json_hex(out, out_len));
        rc = kv_pay_json(o);
    } else {
        char hex[2 * KV_PINBLOCK_MAX + 1];
        kv_hex_encode(out, out_len, hex);
        printf("%s\n", hex);
        rc = KV_EXIT_OK;
    }
out:
    kv_secbuf_free(pin);
    kv_hsm_close(h);
    return rc;
}

int kv_cmd_pinblock(int argc, char **argv)
{
    int rc;
    if ((rc = kv_cli_group_help(argc, argv, pinblock_usage)) >= 0)
        return rc;
    if (strcmp(argv[1], "encode") == 0 || strcmp(argv[1], "decode") == 0 ||
        strcmp(argv[1], "translate") == 0)
        return pinblock_run(argv[1], argc, argv);
    return kv_cli_usage_error("pinblock", "unknown command '%s' (encode, decode, translate)",
                              argv[1]);
}

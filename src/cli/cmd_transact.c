/* `kortvagt card transact`: one EMV transaction verified through the HSM (see cli.h). */
#include "src/cli/cli.h"
#include "src/authorize/authorize.h"
#include "src/authorize/request.h"
#include "src/app/app.h"
#include "apdu/capk.h"
#include "apdu/cvm.h"
#include "apdu/emv_txn.h"
#include "apdu/oda.h"
#include "apdu/reader.h"
#include "apdu/trace.h"
#include "hsm/p11.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/base/secure.h"
#include "src/cli/install_paths.h"
#include "src/transact/transact.h"
#include "src/blocklist/blocklist.h"
#include "src/base/caltime.h"
#include "src/store/keyed.h"
#include "src/store/store.h"
#include "hsm/issuer_script.h"

#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kv_build_config.h"

static void transact_usage(FILE *f)
{
    fprintf(f,
            "Usage: kortvagt card transact --amount N --currency CCY\n"
            "           [--type purchase|services|cash] [--profile pos|atm|unattended]\n"
            "           [--contactless] [--cvm-limit N]\n"
            "           [--pin-stdin | --pin-block HEX --pin-key KEY]\n"
            "           [--imk KEY] [--imk-aes KEY] [--imk-cvc3 KEY]\n"
            "           [--pvk KEY --pvv DDDD --pvki N] [--select AID] [--config FILE]\n"
            "           [--force-online] [--unable-online] [--random N]\n"
            "           [--issuer-script KIND [--script-after] [--imk-smi KEY] [--imk-smc KEY]]\n"
            "           [--script-tlv HEX] [--merchant NAME] [--mcc NNNN] [--no-authorize]\n"
            "           [--store URL] [--capk FILE] [--capk-revoked FILE] [--reader NAME]\n"
            "           [--token LABEL|URI] [--module PATH] [--trace FILE] [--json]\n\n"
            "One EMV transaction with the card in the reader, as an EMV contact terminal\n"
            "(EMV Book 3 section 10): selection among the configured AIDs, GET PROCESSING\n"
            "OPTIONS, records, mandatory data, offline data authentication (SDA/DDA/CDA),\n"
            "processing restrictions, cardholder verification (CVM list against the\n"
            "terminal profile), terminal risk management (floor limit, random selection,\n"
            "velocity, the block list as exception file), terminal action analysis (TACs\n"
            "of [aid HEX] and the card's IACs decide AAC, TC or ARQC), the cryptogram\n"
            "verified in the HSM for its CVN (Visa 10/18/22, M/Chip 16/17/20/21, CCD 5/6),\n"
            "the ARPC sent back (EXTERNAL AUTHENTICATE or 2nd GENERATE AC), issuer scripts,\n"
            "and the card's TC or AAC (CDA on the 2nd GENERATE AC when the card does CDA).\n"
            "Before the ARPC the verification result goes to the authorization engine\n"
            "(`kortvagt authorize`, src/RULES.md §1) as a request with the card, channel\n"
            "(contact, contactless, atm), amount, merchant and the factors the card and the\n"
            "HSM proved (pin_offline from the CVR, chip_cryptogram re-checked in the HSM,\n"
            "pin_online, cvc3); its decision and evidence id are in the output, and a\n"
            "decline there declines the transaction (the card gets ARC 05 and gives an\n"
            "AAC). An approval the card then does not complete is reversed.\n\n");
    fprintf(f,
            "Options:\n"
            "  --amount N        amount in minor units (øre), 0..999999999999\n"
            "  --currency CCY    DKK, EUR, SEK, NOK, USD, GBP or a numeric ISO 4217 code\n"
            "  --type T          purchase (default; of goods), services or cash\n"
            "  --profile P       terminal profile: pos (offline PIN, signature, no CVM),\n"
            "                    atm (online PIN only), unattended (no CVM); default: the\n"
            "                    configuration's [terminal] capabilities and terminal_type\n"
            "                    when it sets them, else pos\n"
            "  --contactless     PPSE card: no CVM up to the CVM limit, online PIN above it,\n"
            "                    dynamic CVC3 (COMPUTE CRYPTOGRAPHIC CHECKSUM) checked in the HSM\n"
            "  --cvm-limit N     contactless CVM limit in minor units (default 35000)\n"
            "  --pin-stdin       read the PIN from standard input (lab; never from argv)\n"
            "  --pin-block HEX   PIN pad block, ISO 9564 format 4 (16 bytes) under --pin-key\n"
            "  --pin-key KEY     AES PIN key (label or pkcs11: URI) of --pin-block\n"
            "  --imk KEY         issuer master key for the AC (default imk-ac)\n"
            "  --imk-aes KEY     AES issuer master key of CCD CVN 6 (default imk-ac-aes)\n"
            "  --imk-cvc3 KEY    issuer master key for CVC3 (default imk-cvc3)\n"
            "  --pvk KEY --pvv DDDD --pvki N   online PIN: PVV key, the card's PVV, PVKI\n");
    fprintf(f,
            "  --select AID      the application to select (hex; also one that asks for\n"
            "                    confirmation)\n"
            "  --config FILE     configuration file ([terminal], [aid HEX]: floor limit,\n"
            "                    TACs, ...; default $KORTVAGT_CONFIG, then the search order)\n"
            "  --force-online    merchant forces the transaction online (TVR byte 4)\n"
            "  --unable-online   lab: the issuer cannot be reached; the default action codes\n"
            "                    decide (ARC Y3 approve, Z3 decline)\n"
            "  --random N        lab: the random selection number 1..99 (default: random)\n"
            "  --issuer-script K pin-unblock, pin-change, app-block, app-unblock or\n"
            "                    card-block: one command built in the HSM, sent as 71 before\n"
            "                    the 2nd GENERATE AC (72 after it with --script-after).\n"
            "                    pin-change reads the new PIN from standard input: the\n"
            "                    first line, or the second after the --pin-stdin PIN\n"
            "  --imk-smi, --imk-smc KEY  script keys (default imk-smi, imk-smc)\n"
            "  --script-tlv HEX  an issuer host's 71/72 script templates, sent as they are\n"
            "  --capk-revoked FILE  revoked issuer certificates (RID, CA index, serial;\n"
            "                    default $KORTVAGT_CAPK_REVOKED)\n"
            "  --merchant NAME   merchant name for the authorization (default \"kortvagt lab\")\n"
            "  --mcc NNNN        merchant category code (default 5411; 6011 for --type cash)\n"
            "  --no-authorize    decide on the card and HSM checks alone, record nothing\n"
            "  --store URL       authorization store (default $KORTVAGT_STORE, then the\n"
            "                    configuration's [store] url)\n"
            "  --capk FILE       CA public keys (default $KORTVAGT_CAPK, else the build's\n"
            "                    source tree tests/data/capk/capk.json, else\n"
            "                    " KV_INSTALL_SYSCONFDIR "/capk.json, else\n"
            "                    " KV_INSTALL_DATADIR "/capk.json)\n"
            "  --reader NAME     PC/SC reader (default $KORTVAGT_READER, else the first with a "
            "card)\n"
            "  --token, --module HSM token and PKCS#11 module (default $KORTVAGT_TOKEN, ...)\n"
            "  --trace FILE      write every exchange as JSON lines (VERIFY data masked)\n"
            "  --json            the verification result as JSON\n"
            "  --help            show this help\n\n"
            "The JSON result has the outcome (approved_offline, declined_offline,\n"
            "approved_online, declined_online, approved_unable_online,\n"
            "declined_unable_online, terminated), TVR, TSI, both GENERATE ACs, issuer\n"
            "authentication, the decoded CVR and every script command's SW.\n\n"
            "Exit codes: 0 approved, 1 declined, 2 usage error, 3 reader (no card, card\n"
            "removed), 4 card error, 5 HSM error (key not found...), 8 I/O error, others\n"
            "for store and configuration errors (as `kortvagt authorize`).\n");
}

struct txn_opts {
    const char *amount, *currency, *type, *profile, *cvm_limit, *pin_block, *pin_key, *imk,
        *imk_cvc3, *pvk, *pvv, *pvki, *capk, *reader, *token, *module, *trace, *merchant, *mcc,
        *store;
    int contactless, pin_stdin, json, no_authorize;
    /* the terminal (issue 12) */
    const char *select, *capk_revoked, *random, *imk_aes, *imk_smi, *imk_smc, *issuer_script,
        *script_tlv, *config;
    int unable_online, force_online, script_after;
};

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (s == NULL || !kv_is_digits(s, 1, 19))
        return -1;
    v = strtoull(s, &end, 10);
    if (*end != '\0' || v > max)
        return -1;
    *out = v;
    return 0;
}

static int currency_code(const char *s, uint16_t *num, char alpha[4])
{
    static const struct {
        const char *alpha;
        uint16_t num;
    } known[] = {{"DKK", 208}, {"EUR", 978}, {"SEK", 752},
                 {"NOK", 578}, {"USD", 840}, {"GBP", 826}};
    uint64_t v;

    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(s, known[i].alpha) == 0) {
            *num = known[i].num;
            memcpy(alpha, known[i].alpha, 4);
            return 0;
        }
    if (strlen(s) == 3 && parse_u64(s, 999, &v) == 0) {
        *num = (uint16_t)v;
        memcpy(alpha, s, 4);
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
            if (known[i].num == v)
                memcpy(alpha, known[i].alpha, 4); /* the authorization wants the letters */
        return 0;
    }
    return -1;
}

static int txn_parse(int argc, char **argv, struct txn_opts *o)
{
    static const struct option opts[] = {
        {"amount", required_argument, NULL, 'a'},
        {"currency", required_argument, NULL, 'c'},
        {"type", required_argument, NULL, 't'},
        {"profile", required_argument, NULL, 'p'},
        {"contactless", no_argument, NULL, 'l'},
        {"cvm-limit", required_argument, NULL, 'L'},
        {"pin-stdin", no_argument, NULL, 's'},
        {"pin-block", required_argument, NULL, 'b'},
        {"pin-key", required_argument, NULL, 'k'},
        {"imk", required_argument, NULL, 'i'},
        {"imk-cvc3", required_argument, NULL, 'I'},
        {"pvk", required_argument, NULL, 'v'},
        {"pvv", required_argument, NULL, 'V'},
        {"pvki", required_argument, NULL, 'n'},
        {"capk", required_argument, NULL, 'C'},
        {"reader", required_argument, NULL, 'r'},
        {"token", required_argument, NULL, 'T'},
        {"module", required_argument, NULL, 'M'},
        {"trace", required_argument, NULL, 'x'},
        {"json", no_argument, NULL, 'j'},
        {"merchant", required_argument, NULL, 'm'},
        {"mcc", required_argument, NULL, 'G'},
        {"no-authorize", no_argument, NULL, 'N'},
        {"store", required_argument, NULL, 'S'},
        {"select", required_argument, NULL, 1},
        {"capk-revoked", required_argument, NULL, 2},
        {"unable-online", no_argument, NULL, 3},
        {"force-online", no_argument, NULL, 4},
        {"random", required_argument, NULL, 5},
        {"imk-aes", required_argument, NULL, 6},
        {"imk-smi", required_argument, NULL, 7},
        {"imk-smc", required_argument, NULL, 8},
        {"issuer-script", required_argument, NULL, 9},
        {"script-after", no_argument, NULL, 10},
        {"script-tlv", required_argument, NULL, 11},
        {"config", required_argument, NULL, 12},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;

    memset(o, 0, sizeof(*o));
    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (ch) {
        case 'a':
            o->amount = optarg;
            break;
        case 'c':
            o->currency = optarg;
            break;
        case 't':
            o->type = optarg;
            break;
        case 'p':
            o->profile = optarg;
            break;
        case 'l':
            o->contactless = 1;
            break;
        case 'L':
            o->cvm_limit = optarg;
            break;
        case 's':
            o->pin_stdin = 1;
            break;
        case 'b':
            o->pin_block = optarg;
            break;
        case 'k':
            o->pin_key = optarg;
            break;
        case 'i':
            o->imk = optarg;
            break;
        case 'I':
            o->imk_cvc3 = optarg;
            break;
        case 'v':
            o->pvk = optarg;
            break;
        case 'V':
            o->pvv = optarg;
            break;
        case 'n':
            o->pvki = optarg;
            break;
        case 'C':
            o->capk = optarg;
            break;
        case 'r':
            o->reader = optarg;
            break;
        case 'T':
            o->token = optarg;
            break;
        case 'M':
            o->module = optarg;
            break;
        case 'x':
            o->trace = optarg;
            break;
        case 'j':
            o->json = 1;
            break;
        case 'm':
            o->merchant = optarg;
            break;
        case 'G':
            o->mcc = optarg;
            break;
        case 'N':
            o->no_authorize = 1;
            break;
        case 'S':
            o->store = optarg;
            break;
        case 1:
            o->select = optarg;
            break;
        case 2:
            o->capk_revoked = optarg;
            break;
        case 3:
            o->unable_online = 1;
            break;
        case 4:
            o->force_online = 1;
            break;
        case 5:
            o->random = optarg;
            break;
        case 6:
            o->imk_aes = optarg;
            break;
        case 7:
            o->imk_smi = optarg;
            break;
        case 8:
            o->imk_smc = optarg;
            break;
        case 9:
            o->issuer_script = optarg;
            break;
        case 10:
            o->script_after = 1;
            break;
        case 11:
            o->script_tlv = optarg;
            break;
        case 12:
            o->config = optarg;
            break;
        case 'h':
            transact_usage(stdout);
            return -1;
        case ':':
            return kv_cli_usage_error("card", "transact: option '%s' needs a value",
                                      argv[optind - 1]);
        default:
            return kv_cli_usage_error("card", "transact: unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return kv_cli_usage_error("card", "transact: unexpected argument '%s'", argv[optind]);
    return 0;
}

/* Check the options into p. Returns 0 or the usage exit code. */
/* Buffers the parameters point into. */
struct txn_bufs {
    uint8_t select_aid[16];
    uint8_t scripts[1024];
};

static int txn_check(const struct txn_opts *o, kv_transact_params *p, uint8_t pin_block[16],
                     struct txn_bufs *t)
{
    uint64_t v;
    int n;

    if (o->amount == NULL || parse_u64(o->amount, 999999999999ULL, &p->amount) != 0)
        return kv_cli_usage_error("card", "transact: --amount must be a whole number of minor "
                                          "units (0..999999999999)");
    if (o->currency == NULL || currency_code(o->currency, &p->currency, p->currency_code) != 0)
        return kv_cli_usage_error("card",
                                  "transact: --currency '%s' is not DKK, EUR, SEK, NOK, "
                                  "USD, GBP or a 3-digit ISO 4217 code",
                                  o->currency ? o->currency : "");
    if (o->type != NULL && strcmp(o->type, "purchase") != 0 && strcmp(o->type, "cash") != 0 &&
        strcmp(o->type, "services") != 0)
        return kv_cli_usage_error("card", "transact: --type '%s' is not purchase, services or cash",
                                  o->type);
    p->cash = o->type != NULL && strcmp(o->type, "cash") == 0;
    p->services = o->type != NULL && strcmp(o->type, "services") == 0;
    /* no --profile: the configuration's [terminal] (by default the attended POS) */
    p->profile = o->profile;
    if (p->profile != NULL && kv_cvm_profile_find(p->profile) == NULL)
        return kv_cli_usage_error("card",
                                  "transact: --profile '%s' is not pos, atm or "
                                  "unattended",
                                  p->profile);
    p->contactless = o->contactless;
    if (o->cvm_limit != NULL) {
        if (parse_u64(o->cvm_limit, 999999999999ULL, &v) != 0)
            return kv_cli_usage_error("card", "transact: --cvm-limit must be a whole number of "
                                              "minor units");
        p->cvm_limit = v;
    }
    if (o->pin_stdin && o->pin_block != NULL)
        return kv_cli_usage_error("card", "transact: --pin-stdin and --pin-block exclude each "
                                          "other");
    if ((o->pin_block != NULL) != (o->pin_key != NULL))
        return kv_cli_usage_error("card", "transact: --pin-block and --pin-key go together");
    if (o->pin_block != NULL) {
        n = kv_hex_decode(o->pin_block, pin_block, 16);
        if (n != 16)
            return kv_cli_usage_error("card", "transact: --pin-block must be 16 bytes in hex "
                                              "(ISO 9564 format 4)");
        p->pin_block = pin_block;
        p->pin_block_len = 16;
        p->pin_key = o->pin_key;
    }
    if ((o->pvk != NULL) != (o->pvv != NULL))
        return kv_cli_usage_error("card", "transact: --pvk and --pvv go together");
    if (o->pvv != NULL) {
        if (!kv_is_digits(o->pvv, 4, 4))
            return kv_cli_usage_error("card", "transact: --pvv must be 4 digits");
        memcpy(p->pvv, o->pvv, 5);
        p->pvk = o->pvk;
        p->pvki = 1;
        if (o->pvki != NULL) {
            if (parse_u64(o->pvki, 9, &v) != 0)
                return kv_cli_usage_error("card", "transact: --pvki must be 0..9");
            p->pvki = (int)v;
        }
    }
    p->imk_ac = o->imk;
    p->imk_cvc3 = o->imk_cvc3;
    p->imk_aes = o->imk_aes;
    p->imk_smi = o->imk_smi;
    p->imk_smc = o->imk_smc;
    if (o->select != NULL) {
        n = kv_hex_decode(o->select, t->select_aid, sizeof(t->select_aid));
        if (n < 5 || n > 16)
            return kv_cli_usage_error("card", "transact: --select must be an AID of 5 to 16 "
                                              "bytes in hex");
        p->select_aid = t->select_aid;
        p->select_aid_len = (size_t)n;
    }
    if (o->random != NULL) {
        if (parse_u64(o->random, 99, &v) != 0 || v < 1)
            return kv_cli_usage_error("card", "transact: --random must be 1..99");
        p->random_override = (unsigned)v;
    }
    p->unable_online = o->unable_online;
    p->force_online = o->force_online;
    if (o->issuer_script != NULL) {
        int k = kv_script_kind_parse(o->issuer_script);
        if (k != KV_SCRIPT_PIN_UNBLOCK && k != KV_SCRIPT_PIN_CHANGE && k != KV_SCRIPT_APP_BLOCK &&
            k != KV_SCRIPT_APP_UNBLOCK && k != KV_SCRIPT_CARD_BLOCK)
            return kv_cli_usage_error("card",
                                      "transact: --issuer-script '%s' is not pin-unblock, "
                                      "pin-change, app-block, app-unblock or card-block",
                                      o->issuer_script);
        p->script_kind = k;
    }
    if (o->script_after && o->issuer_script == NULL && o->script_tlv == NULL)
        return kv_cli_usage_error("card", "transact: --script-after needs --issuer-script");
    p->script_after = o->script_after;
    if (o->script_tlv != NULL) {
        size_t hl = strlen(o->script_tlv);
        n = hl % 2 == 0 && hl / 2 <= sizeof(t->scripts)
                ? kv_hex_decode(o->script_tlv, t->scripts, sizeof(t->scripts))
                : -1;
        if (n <= 0 || (size_t)n * 2 != hl)
            return kv_cli_usage_error("card",
                                      "transact: --script-tlv must be 71/72 templates in "
                                      "hex (at most %zu bytes)",
                                      sizeof(t->scripts));
        {
            kv_script tmp[KV_SCRIPT_MAX];
            size_t nt = 0;
            if (kv_script_parse_all(t->scripts, (size_t)n, tmp, KV_SCRIPT_MAX - 1, &nt) != 0)
                return kv_cli_usage_error("card",
                                          "transact: --script-tlv: not 71/72 templates "
                                          "of issuer script commands (86), at most %d",
                                          KV_SCRIPT_MAX - 1);
        }
        p->issuer_scripts = t->scripts;
        p->issuer_scripts_len = (size_t)n;
    }
    if (p->unable_online && (p->script_kind != 0 || p->issuer_scripts != NULL))
        return kv_cli_usage_error("card", "transact: no issuer scripts without an issuer "
                                          "(--unable-online)");
    if (o->merchant != NULL && (o->merchant[0] == '\0' || strlen(o->merchant) >= KV_PAYEE_MAX))
        return kv_cli_usage_error("card", "transact: --merchant must be 1..%d characters",
                                  KV_PAYEE_MAX - 1);
    if (o->mcc != NULL && !kv_is_digits(o->mcc, 4, 4))
        return kv_cli_usage_error("card", "transact: --mcc '%s' is not 4 digits", o->mcc);
    if (o->no_authorize && (o->merchant != NULL || o->mcc != NULL || o->store != NULL))
        return kv_cli_usage_error("card", "transact: --merchant, --mcc and --store need the "
                                          "authorization (drop --no-authorize)");
    return 0;
}

/* The CA key file (install_paths.h gives the one search order); none found: no key file,
 * every CA index is unknown and ODA fails. */
static int capk_load(const char *flag, kv_capk_store **out)
{
    char buf[PATH_MAX], why[256];
    const char *path = kv_cli_capk_path(flag, buf, sizeof(buf));

    if (path != NULL)
        return kv_capk_store_load(path, out, why, sizeof(why));
    *out = NULL;
    return 0;
}

/* The authorization of one transaction (the kv_transact_authorize_fn context). */
struct txn_authz {
    kv_app *s;
    const struct txn_opts *o;
    const kv_transact_params *p;
    int decided;
    kv_authz_result res;
    int reversed;
    kv_authz_reversal rv;
};

static json_t *hexj(const uint8_t *b, size_t n)
{
    char buf[2 * sizeof(((kv_transact_result *)0)->ac_data) + 1];
    if (n > sizeof(((kv_transact_result *)0)->ac_data))
        return NULL;
    kv_hex_encode(b, n, buf);
    return json_string(buf);
}

static json_t *factor_upstream(const char *type, int verified)
{
    return json_pack("{sssb}", "type", type, "verified", verified != 0);
}

/*
 * The src/RULES.md §1 request of a transaction: the card, the channel of the
 * terminal, amount, merchant and what was proved. chip_cryptogram carries
 * its key material so that the engine checks it in the HSM itself (evidence
 * "proven", one-time use of the cryptogram); the PIN and CVC3 results are
 * upstream-verified factors.
 */
static json_t *authz_request(const struct txn_authz *a, const kv_transact_result *res)
{
    const struct txn_opts *o = a->o;
    const kv_transact_params *p = a->p;
    json_t *j = json_object(), *card = json_object(), *m = json_object(), *f = json_array();
    char at[32];
    struct tm tm;
    time_t tt = (time_t)res->at;
    const char *channel = p->contactless                                         ? "contactless"
                          : p->profile != NULL && strcmp(p->profile, "atm") == 0 ? "atm"
                                                                                 : "contact";

    if (j == NULL || card == NULL || m == NULL || f == NULL)
        goto fail;
    json_object_set_new(card, "pan", json_string(res->pan));
    json_object_set_new(card, "expiry", json_string(res->expiry));
    if (res->psn[0] != '\0')
        json_object_set_new(card, "psn", json_string(res->psn));
    json_object_set_new(j, "card", card);
    card = NULL;
    if (gmtime_r(&tt, &tm) != NULL && strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm) > 0)
        json_object_set_new(j, "at", json_string(at));
    json_object_set_new(j, "channel", json_string(channel));
    json_object_set_new(j, "amount", json_integer((json_int_t)res->amount));
    json_object_set_new(j, "currency", json_string(p->currency_code));
    json_object_set_new(m, "name", json_string(o->merchant ? o->merchant : "kortvagt lab"));
    json_object_set_new(m, "mcc", json_string(o->mcc ? o->mcc : p->cash ? "6011" : "5411"));
    json_object_set_new(j, "merchant", m);
    m = NULL;
    if (res->cvr_known && res->offline_pin_performed)
        json_array_append_new(f, factor_upstream("pin_offline", res->offline_pin_verified));
    if (res->arqc_present && res->cvn >= 0 && res->ac_data_len > 0) {
        json_t *c = json_object();
        if (c == NULL)
            goto fail;
        json_object_set_new(c, "type", json_string("chip_cryptogram"));
        /* the AES CVN (CCD 6) is computed under the AES IMK */
        json_object_set_new(
            c, "imk",
            json_string(res->cvn == 6 ? (p->imk_aes ? p->imk_aes : KV_TRANSACT_DEFAULT_IMK_AES)
                        : p->imk_ac   ? p->imk_ac
                                      : KV_TRANSACT_DEFAULT_IMK_AC));
        json_object_set_new(c, "cvn", json_integer(res->cvn));
        json_object_set_new(c, "arqc", hexj(res->arqc, 8));
        json_object_set_new(c, "data", hexj(res->ac_data, res->ac_data_len));
        json_object_set_new(c, "atc", hexj(res->atc, 2));
        json_object_set_new(c, "un", hexj(res->un, 4));
        json_array_append_new(f, c);
    } else if (res->arqc_present) {
        json_array_append_new(f, factor_upstream("chip_cryptogram", 0));
    }
    if (res->online_pin_checked)
        json_array_append_new(f, factor_upstream("pin_online", res->online_pin_ok));
    if (res->cvc3_present)
        json_array_append_new(f, factor_upstream("cvc3", res->cvc3_verified));
    json_object_set_new(j, "factors", f);
    return j;
fail:
    json_decref(j);
    json_decref(card);
    json_decref(m);
    json_decref(f);
    return NULL;
}

/* kv_transact_authorize_fn: decide the request with the engine (and record the evidence). */
static int authz_hook(void *ctx, const kv_transact_result *res, int *approve)
{
    struct txn_authz *a = ctx;
    kv_auth_request *req = calloc(1, sizeof(*req));
    json_t *j = NULL;
    char err[512];
    int r;

    *approve = 0;
    if (req == NULL || (j = authz_request(a, res)) == NULL) {
        r = KV_ERR_NOMEM;
        goto out;
    }
    if ((r = kv_auth_request_from_json(j, req, err, sizeof(err))) != 0) {
        fprintf(stderr, "kortvagt card: authorization request: %s\n", err);
        goto out;
    }
    if ((r = kv_authz_decide(kv_app_authz(a->s), req, &a->res)) != 0) {
        fprintf(stderr, "kortvagt card: authorization: %s\n",
                kv_authz_last_error(kv_app_authz(a->s)));
        goto out;
    }
    a->decided = 1;
    *approve = a->res.decision == KV_DECISION_APPROVE;
out:
    json_decref(j);
    if (req != NULL)
        kv_auth_request_wipe(req);
    free(req);
    return r;
}

/*
 * Terminal risk management's exception file and log (transact.h
 * exception_check): the block list says whether the card is listed; the
 * store's approved amount of the card today is the floor limit's "earlier
 * approvals". A block list the HSM cannot open (no pan-enc key) lists
 * nothing; the engine checks the list again online.
 */
static int txn_exception(void *ctx, const char *pan, int *listed, uint64_t *prior)
{
    struct txn_authz *a = ctx;
    const kv_blocklist *bl = NULL;
    uint8_t token[KV_TOKEN_LEN];
    char day[KV_DAY_TEXT];
    int64_t sum = 0;
    int r;

    *listed = 0;
    *prior = 0;
    if (kv_app_blocklist(a->s, &bl) == 0 && (r = kv_bl_check(bl, pan, listed)) != 0)
        return r;
    if (kv_pan_token(kv_app_token_mac(a->s), pan, token) != 0)
        return 0;
    kv_time_cph_day((int64_t)time(NULL), day);
    if (kv_store_day_sum(kv_app_store(a->s), token, day, KV_DAY_TOTAL, &sum) == 0 && sum > 0)
        *prior = (uint64_t)sum;
    kv_wipe(token, sizeof(token));
    return 0;
}

/* An approval the transaction did not complete is taken back (its amount and counter). */
static void authz_settle(struct txn_authz *a, int completed_approved)
{
    int r;

    if (!a->decided || a->res.decision != KV_DECISION_APPROVE || completed_approved)
        return;
    if ((r = kv_authz_reverse(kv_app_authz(a->s), a->res.evidence_id, &a->rv)) != 0)
        fprintf(stderr, "kortvagt card: reversing authorization %lld: %s\n",
                (long long)a->res.evidence_id, kv_authz_last_error(kv_app_authz(a->s)));
    else
        a->reversed = 1;
}

static void print_human(const kv_transact_result *res)
{
    char tvr[11], tsi[5], cvmr[7], atc[5];

    kv_hex_encode(res->tvr, 5, tvr);
    kv_hex_encode(res->tsi, 2, tsi);
    kv_hex_encode(res->cvm_results, 3, cvmr);
    kv_hex_encode(res->atc, 2, atc);
    printf("%-16s%s\n", "PAN:", res->pan_masked);
    printf("%-16s%llu %s\n", "Amount:", (unsigned long long)res->amount, res->currency);
    printf("%-16s%s (%s), CVM results %s\n", "CVM:", kv_transact_cvm_name(res->cvm_method),
           res->cvm_result == 2   ? "successful"
           : res->cvm_result == 1 ? "failed"
                                  : "unknown",
           cvmr);
    printf("%-16s%s: %s\n", "ODA:", kv_oda_method_name(res->oda_method),
           kv_oda_state_name(res->oda_state));
    printf("%-16s%s (CVN %d, ATC %s)\n", "ARQC:", res->arqc_verified ? "verified" : "NOT verified",
           res->cvn, res->has_atc ? atc : "-");
    if (res->cvc3_present)
        printf("%-16s%s\n", "CVC3:", res->cvc3_verified ? "verified" : "NOT verified");
    printf("%-16s%s\n", "ARPC:",
           !res->arpc_sent       ? "not sent"
           : res->arpc_via_genac ? "sent in 2nd GENERATE AC"
                                 : (res->issuer_auth_accepted ? "EXTERNAL AUTHENTICATE accepted"
                                                              : "EXTERNAL AUTHENTICATE refused"));
    printf("%-16s%s\n", "Card decision:",
           res->card_decision < 0 ? "-" : kv_ac_type_name((uint8_t)res->card_decision));
    printf("%-16soffline PIN performed %s, verified %s, failed %s, try limit exceeded %s\n",
           "CVR:", res->offline_pin_performed ? "yes" : "no",
           res->offline_pin_verified ? "yes" : "no", res->offline_pin_failed ? "yes" : "no",
           res->pin_try_limit_exceeded ? "yes" : "no");
    printf("%-16s%s  TSI %s\n", "TVR:", tvr, tsi);
    printf("%-16s1st %s asked, %s given; 2nd %s\n", "GENERATE AC:",
           res->first_ac_requested < 0 ? "-" : kv_ac_type_name((uint8_t)res->first_ac_requested),
           res->first_ac < 0 ? "-" : kv_ac_type_name((uint8_t)res->first_ac),
           res->second_ac < 0 ? "-" : kv_ac_type_name((uint8_t)res->second_ac));
    if (res->nscripts > 0)
        for (size_t i = 0; i < res->nscripts && i < KV_TXN_MAX_SCRIPT_RESULTS; i++)
            printf("%-16s%02X #%u INS %02X: SW %04X\n", i == 0 ? "Scripts:" : "",
                   (unsigned)res->scripts[i].tag, res->scripts[i].seq,
                   (unsigned)res->scripts[i].ins, (unsigned)res->scripts[i].sw);
    printf("%-16s%s\n", "Outcome:", kv_transact_outcome_name(res->outcome));
    printf("%-16s%s (%s)\n", "Decision:", res->approved ? "APPROVED" : "DECLINED", res->reason);
}

/* see cli.h */
int kv_cmd_card_transact(int argc, char **argv)
{
    struct txn_opts o;
    kv_transact_params p;
    kv_transact_result res;
    uint8_t pin_block[16];
    kv_capk_store *capks = NULL;
    kv_hsm *h = NULL;
    kv_settings st;
    kv_settings_flags sf;
    char serr[256];
    kv_reader *rd = NULL;
    kv_trace *tr = NULL;
    kv_secbuf *pin = NULL;
    kv_app *sess = NULL;
    struct txn_authz az;
    struct txn_bufs bufs;
    kv_config *cfg = NULL;
    kv_secbuf *new_pin = NULL;
    int rc, r, len;

    memset(&p, 0, sizeof(p));
    memset(&res, 0, sizeof(res));
    memset(&az, 0, sizeof(az));
    memset(&st, 0, sizeof(st));
    if ((rc = txn_parse(argc, argv, &o)) != 0)
        return rc < 0 ? KV_EXIT_OK : rc;
    if ((rc = txn_check(&o, &p, pin_block, &bufs)) != 0)
        return rc;
    kv_disable_core_dumps();
    if (o.pin_stdin) {
        if ((pin = kv_secbuf_new(64)) == NULL) {
            rc = kv_cli_fail(KV_ERR_NOMEM, "PIN buffer");
            goto out;
        }
        len = kv_secret_read_line(STDIN_FILENO, "PIN: ", pin);
        if (len < 0 && len != KV_ERR_NOT_FOUND && len != KV_ERR_BUFFER) {
            rc = kv_cli_fail(len, "reading the PIN");
            goto out;
        }
        if (len < 0 || !kv_is_digits((const char *)kv_secbuf_ptr(pin), 4, 12)) {
            rc = kv_cli_usage_error("card", "transact: --pin-stdin needs a PIN of 4 to 12 digits "
                                            "on standard input");
            goto out;
        }
        p.pin = pin;
        p.pin_len = (size_t)len;
    }
    if (p.script_kind == KV_SCRIPT_PIN_CHANGE) {
        /* the new PIN: the next line of stdin (after the PIN of --pin-stdin), never argv */
        if ((new_pin = kv_secbuf_new(64)) == NULL) {
            rc = kv_cli_fail(KV_ERR_NOMEM, "PIN buffer");
            goto out;
        }
        len = kv_secret_read_line(STDIN_FILENO, "New PIN: ", new_pin);
        if (len < 0 && len != KV_ERR_NOT_FOUND && len != KV_ERR_BUFFER) {
            rc = kv_cli_fail(len, "reading the new PIN");
            goto out;
        }
        if (len < 0 || !kv_is_digits((const char *)kv_secbuf_ptr(new_pin), 4, 12)) {
            rc = kv_cli_usage_error("card",
                                    "transact: --issuer-script pin-change needs the new "
                                    "PIN (4 to 12 digits) on standard input%s",
                                    o.pin_stdin ? ", on the line after the PIN" : "");
            goto out;
        }
        p.new_pin = new_pin;
        p.new_pin_len = (size_t)len;
    }
    if ((r = capk_load(o.capk, &capks)) != 0) {
        rc = kv_cli_fail(r, o.capk ? o.capk : "CA key file");
        goto out;
    }
    if (o.capk_revoked == NULL && getenv("KORTVAGT_CAPK_REVOKED") != NULL &&
        getenv("KORTVAGT_CAPK_REVOKED")[0] != '\0')
        o.capk_revoked = getenv("KORTVAGT_CAPK_REVOKED");
    if (o.capk_revoked != NULL) {
        char why[256] = "";
        if (capks == NULL && (capks = kv_capk_store_new()) == NULL) {
            rc = kv_cli_fail(KV_ERR_NOMEM, "CA key store");
            goto out;
        }
        if ((r = kv_capk_revoked_load(capks, o.capk_revoked, why, sizeof(why))) != 0) {
            fprintf(stderr, "kortvagt card: %s: %s\n", o.capk_revoked, why);
            rc = r == KV_ERR_FORMAT ? KV_EXIT_USAGE : kv_exit_code(r);
            goto out;
        }
    }
    p.capks = capks;
    memset(&sf, 0, sizeof(sf));
    sf.store = o.store;
    sf.module = o.module;
    sf.token = o.token;
    sf.reader = o.reader;
    sf.config = o.config;
    if ((r = kv_settings_init(&st, &sf, serr, sizeof(serr))) != 0) {
        rc = kv_cli_fail(r, serr);
        goto out;
    }
    if (!o.no_authorize) {
        /* the engine's session: store, HSM (shared with the transaction), evidence keys */
        char err[1024];
        if ((r = kv_app_open(&sf, &sess, err, sizeof(err))) != 0) {
            fprintf(stderr, "kortvagt card: authorization: %s\n", err);
            rc = kv_exit_code(r);
            goto out;
        }
        p.hsm = kv_app_hsm(sess);
        az.s = sess;
        az.o = &o;
        az.p = &p;
        p.authorize = authz_hook;
        p.authorize_ctx = &az;
        /* terminal risk management: the block list is the exception file, the store the log */
        p.exception_check = txn_exception;
        p.exception_ctx = &az;
        p.term = kv_config_terminal(kv_app_config(sess));
    } else {
        if ((r = kv_app_hsm_open(&st, &h)) != 0) {
            fprintf(stderr, "kortvagt card: %s\n", kv_hsm_last_error(NULL));
            rc = kv_cli_fail(r, "HSM");
            goto out;
        }
        p.hsm = h;
        {
            char err[1024];
            if ((r = kv_settings_load_config(&st, &cfg, err, sizeof(err))) != 0) {
                fprintf(stderr, "kortvagt card: %s\n", err);
                rc = kv_exit_code(r);
                goto out;
            }
            p.term = cfg != NULL ? kv_config_terminal(cfg) : NULL;
        }
    }
    {
        /* no --profile and no [terminal] capabilities or type in the file: the attended POS
         * profile, as before the terminal configuration existed */
        const kv_config *conf = sess != NULL ? kv_app_config(sess) : cfg;
        if (p.profile == NULL &&
            (conf == NULL || (kv_config_get(conf, "terminal", "capabilities") == NULL &&
                              kv_config_get(conf, "terminal", "terminal_type") == NULL)))
            p.profile = "pos";
    }
    if ((r = kv_reader_open_pcsc(kv_settings_opt(st.reader.name), &rd)) != 0) {
        rc = kv_cli_fail(r, o.reader ? o.reader : "PC/SC");
        goto out;
    }
    if (o.trace != NULL) {
        if ((r = kv_trace_open(o.trace, &tr)) != 0) {
            rc = kv_cli_fail(r, o.trace);
            goto out;
        }
        kv_reader_set_trace(rd, tr);
    }
    r = kv_transact_run(rd, &p, &res);
    /* an approval the card did not complete (removed, AAC, local decline) is reversed */
    if (sess != NULL)
        authz_settle(&az, r == 0 && res.approved);
    if (r != 0) {
        /* no decision: nothing to record as approved */
        if (r <= -400 && r > -500 && kv_hsm_last_error(p.hsm)[0] != '\0')
            fprintf(stderr, "kortvagt card: %s\n", kv_hsm_last_error(p.hsm));
        if (az.reversed)
            fprintf(stderr, "kortvagt card: authorization %lld reversed (evidence %lld)\n",
                    (long long)az.res.evidence_id, (long long)az.rv.evidence_id);
        rc = kv_cli_fail(r, "card transact");
        goto out;
    }
    if (o.json) {
        json_t *j = kv_transact_result_json(&res);
        if (j != NULL && sess != NULL) {
            json_object_set_new(j, "authorization",
                                az.decided ? kv_authz_result_json(&az.res, 1) : json_null());
            if (az.reversed)
                json_object_set_new(j, "authorization_reversal", kv_authz_reversal_json(&az.rv));
        }
        if (j == NULL || json_dumpf(j, stdout, JSON_INDENT(2)) != 0) {
            json_decref(j);
            rc = kv_cli_fail(KV_ERR_IO, "output");
            goto out;
        }
        printf("\n");
        json_decref(j);
    } else {
        print_human(&res);
        if (sess != NULL && !az.decided)
            printf("%-16s%s\n", "Authorization:", "not asked (the card did not go online)");
        else if (sess != NULL)
            printf("%-16s%s (%s, %s), evidence %lld%s\n",
                   "Authorization:", kv_decision_name(az.res.decision), az.res.reason, az.res.rule,
                   (long long)az.res.evidence_id, az.reversed ? ", reversed" : "");
    }
    rc = res.approved ? KV_EXIT_OK : KV_EXIT_MISMATCH;
out:
    kv_wipe(pin_block, sizeof(pin_block));
    kv_wipe(&res, sizeof(res));
    kv_secbuf_free(pin);
    kv_secbuf_free(new_pin);
    kv_config_free(cfg);
    kv_reader_free(rd);
    kv_trace_free(tr);
    kv_hsm_close(h);
    kv_app_close(sess);
    kv_settings_clear(&st);
    kv_capk_store_free(capks);
    return rc;
}

/* `kortvagt vcard`: the virtual EMV card behind pcscd's vpcd reader (see cli.h). */
#include "src/cli/cli.h"
#include "apdu/vcard/vcard.h"
#include "apdu/vcard/vpcd.h"
#include "src/app/settings.h"
#include "src/base/err.h"

#include <getopt.h>
#include <stdlib.h>
#include <unistd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t vcard_stop;

static void vcard_on_signal(int sig)
{
    (void)sig;
    vcard_stop = 1;
}

static void vcard_usage(FILE *f)
{
    fprintf(f,
            "Usage: kortvagt vcard --profile FILE [--host HOST] [--port PORT] [--state FILE]\n"
            "                      [--quirk-get-response] [--quirk-wrong-le] [--once]\n"
            "                      [--delay-ms N] [--transport-key FILE] [--fault FILE]\n"
            "                      [--check]\n\n"
            "Run a virtual EMV card: connect to the vpcd virtual reader of pcscd and answer\n"
            "its APDUs from a JSON card profile (tests/data/README.md) or a recorded trace\n"
            "card (an \"exchanges\" file). The card waits for vpcd to listen, reconnects when\n"
            "the connection ends, and stops cleanly on SIGTERM or SIGINT.\n\n"
            "Options:\n"
            "  --profile FILE         card profile or trace-card JSON (required)\n"
            "  --host HOST            vpcd host (default 127.0.0.1)\n"
            "  --port PORT            vpcd port (default %d)\n"
            "  --state FILE           keep the PIN try counter and ATC in FILE across restarts\n"
            "  --quirk-get-response   answer data with 61xx; the host must GET RESPONSE\n"
            "  --quirk-wrong-le       answer 6Cxx to a command whose Le is not 00 or exact\n"
            "  --once                 exit 0 when the first connection ends\n"
            "  --delay-ms N           wait N ms (0..10000) before each answer (a slow card)\n"
            "  --transport-key FILE   hex file of the AES transport key that unwraps the\n"
            "                         profile's *_wrapped keys (default $KORTVAGT_TRANSPORT_KEY)\n"
            "  --fault FILE           test-lab faults (JSON, tests/data/README.md \"Faults\"):\n"
            "                         they replace the profile's \"faults\"\n"
            "  --check                load the profile, print a summary and exit\n"
            "  --help                 show this help\n\n"
            "Exit codes: 0 stopped or --once done, 2 usage error or bad profile/state file,\n"
            "8 I/O error.\n",
            KV_VPCD_DEFAULT_PORT);
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    unsigned long v;
    if (s[0] < '0' || s[0] > '9')
        return -1;
    v = strtoul(s, &end, 10);
    if (*end != '\0' || v > max)
        return -1;
    *out = v;
    return 0;
}

static int install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = vcard_on_signal; /* no SA_RESTART: a blocked read returns at once */
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
        return KV_ERR_INTERNAL;
    sa.sa_handler = SIG_IGN;
    return sigaction(SIGPIPE, &sa, NULL) != 0 ? KV_ERR_INTERNAL : 0;
}

int kv_cmd_vcard(int argc, char **argv)
{
    enum {
        OPT_PROFILE = 256,
        OPT_HOST,
        OPT_PORT,
        OPT_STATE,
        OPT_QGR,
        OPT_QLE,
        OPT_ONCE,
        OPT_DELAY,
        OPT_CHECK,
        OPT_TKEY,
        OPT_FAULT,
        OPT_HELP
    };
    static const struct option longopts[] = {
        {"profile", required_argument, NULL, OPT_PROFILE},
        {"host", required_argument, NULL, OPT_HOST},
        {"port", required_argument, NULL, OPT_PORT},
        {"state", required_argument, NULL, OPT_STATE},
        {"quirk-get-response", no_argument, NULL, OPT_QGR},
        {"quirk-wrong-le", no_argument, NULL, OPT_QLE},
        {"once", no_argument, NULL, OPT_ONCE},
        {"delay-ms", required_argument, NULL, OPT_DELAY},
        {"check", no_argument, NULL, OPT_CHECK},
        {"transport-key", required_argument, NULL, OPT_TKEY},
        {"fault", required_argument, NULL, OPT_FAULT},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *profile = NULL, *state = NULL, *fault = NULL;
    kv_vpcd_opts opts = {
        .host = "127.0.0.1", .port = KV_VPCD_DEFAULT_PORT, .stop = &vcard_stop, .log = stderr};
    unsigned quirks = 0;
    unsigned long v;
    int check = 0, opt, r, rc = KV_EXIT_INTERNAL;
    kv_vcard *vc = NULL;
    kv_settings_flags sf = {.transport_key = NULL};
    kv_settings st;
    char why[256] = "", what[4200] = "";

    opterr = 0;
    optind = 0; /* full reset of getopt's state (glibc) */
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_PROFILE:
            profile = optarg;
            break;
        case OPT_HOST:
            opts.host = optarg;
            break;
        case OPT_PORT:
            if (parse_uint(optarg, 65535, &v) != 0 || v == 0)
                return kv_cli_usage_error("vcard", "--port: '%s' is not a port (1..65535)", optarg);
            opts.port = (uint16_t)v;
            break;
        case OPT_STATE:
            state = optarg;
            break;
        case OPT_QGR:
            quirks |= KV_VCARD_QUIRK_GET_RESPONSE;
            break;
        case OPT_QLE:
            quirks |= KV_VCARD_QUIRK_WRONG_LE;
            break;
        case OPT_ONCE:
            opts.once = 1;
            break;
        case OPT_DELAY:
            if (parse_uint(optarg, 10000, &v) != 0)
                return kv_cli_usage_error("vcard", "--delay-ms: '%s' is not 0..10000", optarg);
            opts.delay_ms = (unsigned)v;
            break;
        case OPT_CHECK:
            check = 1;
            break;
        case OPT_TKEY:
            /* the settings hand it to the profile loader (vcard.h) */
            if (access(optarg, R_OK) != 0)
                return kv_cli_usage_error("vcard", "--transport-key: cannot read '%s'", optarg);
            sf.transport_key = optarg;
            break;
        case OPT_FAULT:
            fault = optarg;
            break;
        case OPT_HELP:
            vcard_usage(stdout);
            return KV_EXIT_OK;
        default:
            return kv_cli_usage_error("vcard", "unknown option or missing value: '%s'",
                                      argv[optind - 1]);
        }
    }
    if (optind < argc)
        return kv_cli_usage_error("vcard", "unexpected argument '%s'", argv[optind]);
    if (profile == NULL)
        return kv_cli_usage_error("vcard", "--profile FILE is required");

    /* --transport-key > $KORTVAGT_TRANSPORT_KEY (src/app/settings.h) */
    if ((r = kv_settings_init(&st, &sf, why, sizeof(why))) != 0 ||
        (r = kv_vcard_set_transport_key_file(st.vcard.transport_key)) != 0)
        return kv_cli_usage_error("vcard", "--transport-key: %s",
                                  why[0] != '\0' ? why : "the file name is too long");
    if ((r = kv_vcard_load(profile, &vc, why, sizeof(why))) != 0) {
        rc = kv_cli_usage_error("vcard", "profile %s: %s", profile, why);
        goto out;
    }
    kv_vcard_set_quirks(vc, kv_vcard_quirks(vc) | quirks);
    if (fault != NULL && (r = kv_vcard_load_faults(vc, fault, why, sizeof(why))) != 0) {
        rc = r == KV_ERR_IO ? kv_cli_fail(r, why)
                            : kv_cli_usage_error("vcard", "--fault %s: %s", fault, why);
        goto out;
    }
    if (state != NULL)
        snprintf(what, sizeof(what), "state file %s", state);
    if (state != NULL && (r = kv_vcard_state_attach(vc, state)) != 0) {
        rc = r == KV_ERR_FORMAT ? kv_cli_usage_error("vcard", "%s: not a vcard state file", what)
             : r == KV_ERR_ARG  ? kv_cli_usage_error("vcard", "%s: not a regular file", what)
                                : kv_cli_fail(r, what);
        goto out;
    }
    if (check) {
        printf("profile %s: %s card \"%s\", PIN tries %d, ATC %u, quirks %u", profile,
               kv_vcard_is_recorded(vc) ? "recorded" : "profile", kv_vcard_name(vc),
               kv_vcard_pin_tries(vc), kv_vcard_atc(vc), kv_vcard_quirks(vc));
        if (kv_vcard_fault_count(vc) > 0)
            printf(", faults %zu", kv_vcard_fault_count(vc));
        printf("\n");
        rc = KV_EXIT_OK;
        goto out;
    }
    /* write the state file now: a path that cannot be written shows at start, not at a PIN try */
    if ((r = kv_vcard_state_save(vc)) != 0) {
        rc = kv_cli_fail(r, what);
        goto out;
    }
    if ((r = install_signals()) != 0) {
        rc = kv_cli_fail(r, "signals");
        goto out;
    }
    fprintf(stderr, "kortvagt vcard: card \"%s\" from %s\n", kv_vcard_name(vc), profile);
    r = kv_vpcd_serve(vc, &opts);
    if (r == KV_ERR_ARG) {
        rc = kv_cli_usage_error("vcard", "--host: '%s' does not resolve", opts.host);
        goto out;
    }
    if (kv_vcard_state_save(vc) != 0 && r == 0)
        r = KV_ERR_IO;
    rc = r == 0 ? KV_EXIT_OK : kv_cli_fail(r, "vpcd");
    if (r == 0)
        fprintf(stderr, "kortvagt vcard: stopped\n");
out:
    kv_vcard_free(vc);
    return rc;
}

/* `kortvagt card`: read an EMV card, send raw APDUs, verify the offline PIN (see cli.h). */
#include "src/cli/cli.h"
#include "apdu/apdu.h"
#include "apdu/emv.h"
#include "apdu/reader.h"
#include "apdu/vcard/vcard.h"
#include "apdu/trace.h"
#include "apdu/txlog.h"
#include "src/app/settings.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/base/secure.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CARD_MAX_EXTRA_AIDS 16

static void card_usage(FILE *f)
{
    fprintf(f,
            "Usage: kortvagt card read [--reader NAME] [--contact|--contactless] [--json]\n"
            "                          [--reveal] [--trace FILE] [--aid HEX]... [--wait SEC]\n"
            "                          [--select AID]\n"
            "       kortvagt card apdu [--reader NAME] [--json] [--reveal] [--trace FILE]\n"
            "                          [--pin-stdin] HEX...\n"
            "       kortvagt card verify-pin [--reader NAME] [--contact|--contactless] [--json]\n"
            "                          [--trace FILE]\n"
            "       kortvagt card transact --amount N --currency CCY [...] (see card transact "
            "--help)\n\n"
            "read        select the payment application (PSE, then PPSE, then the list of\n"
            "            known AIDs), GET PROCESSING OPTIONS, read the records of the AFL and\n"
            "            GET DATA (PIN try counter, ATC, last online ATC, log format)\n"
            "apdu        send each C-APDU (hex) and print the answer, SW and its meaning;\n"
            "            61xx and 6Cxx are answered by the transport. A VERIFY carrying a\n"
            "            plaintext PIN (INS 20, P2 80 or 88, up to 16 data bytes) is refused:\n"
            "            PIN digits on the command line are visible to every local user\n"
            "            (ps, /proc) and stay in the shell history; use --pin-stdin\n"
            "verify-pin  select the application, GET PROCESSING OPTIONS, then VERIFY the\n"
            "            offline plaintext PIN read from standard input (no echo on a\n"
            "            terminal; 4 to 12 digits; never from the command line)\n\n"
            "Options:\n"
            "  --reader NAME     PC/SC reader (exact name or prefix); default $KORTVAGT_READER,\n"
            "                    else the first reader holding a card\n"
            "  --contact         only PSE and the AID list (no PPSE)\n"
            "  --contactless     only PPSE and the AID list (no PSE)\n"
            "  --json            machine-readable output\n"
            "  --reveal          print PANs in full (masked to first 6 / last 4 otherwise)\n"
            "  --trace FILE      write every exchange as JSON lines {\"c\",\"r\",\"t\"}, with\n"
            "                    VERIFY data and PAN digits masked as X\n"
            "  --aid HEX         add an AID to the list tried when there is no PSE/PPSE\n"
            "  --select AID      (read) select this application among the card's (hex, 5 to\n"
            "                    16 bytes); the only way to read one whose priority\n"
            "                    indicator asks for cardholder confirmation (never selected\n"
            "                    automatically)\n"
            "  --pin-stdin       (apdu) read a PIN of 4 to 12 digits from standard input (no\n"
            "                    echo on a terminal) and send it in the one VERIFY given\n"
            "                    without data (00200080) as an ISO 9564 format 2 plaintext\n"
            "                    PIN block; the PIN is never printed and is wiped after use\n"
            "  --wait SEC        wait up to SEC seconds for a card to be inserted\n"
            "  --recorded FILE   serve a card from FILE in this process instead of PC/SC: a\n"
            "                    recorded trace card (traces/cards/*.json) or a card profile\n"
            "                    (tests, demos, labs without pcscd)\n"
            "  --replay FILE     replay a trace written by --trace instead of a PC/SC reader\n"
            "  --help            show this help\n\n"
            "Exit codes: 0 success / PIN verified, 1 wrong or blocked PIN, 2 usage error,\n"
            "3 reader: pcscd not running, reader absent, no card, card removed;\n"
            "4 card error or malformed card data, 8 I/O error.\n");
}

struct card_opts {
    const char *reader;
    const char *recorded;
    const char *replay;
    const char *trace;
    unsigned iface;
    int json, reveal;
    int pin_stdin; /* apdu: the PIN of the VERIFY comes from stdin */
    long wait_sec;
    uint8_t aids[CARD_MAX_EXTRA_AIDS][KV_AID_MAX];
    size_t aid_len[CARD_MAX_EXTRA_AIDS];
    size_t naids;
    uint8_t select[KV_AID_MAX]; /* --select */
    size_t select_len;
};

/* Parse the options of a card command (argv[0] is the command). Returns 0 or an exit code. */
static int card_parse(const char *cmd, int argc, char **argv, struct card_opts *o)
{
    static const struct option opts[] = {
        {"reader", required_argument, NULL, 'r'},   {"contact", no_argument, NULL, 'c'},
        {"contactless", no_argument, NULL, 'l'},    {"json", no_argument, NULL, 'j'},
        {"reveal", no_argument, NULL, 'v'},         {"trace", required_argument, NULL, 't'},
        {"aid", required_argument, NULL, 'a'},      {"wait", required_argument, NULL, 'w'},
        {"recorded", required_argument, NULL, 'R'}, {"replay", required_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},           {"pin-stdin", no_argument, NULL, 'S'},
        {"select", required_argument, NULL, 's'},   {NULL, 0, NULL, 0},
    };
    int ch, n;
    char *end;

    memset(o, 0, sizeof(*o));
    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (ch) {
        case 'r':
            o->reader = optarg;
            break;
        case 'c':
        case 'l':
            if (o->iface != 0)
                return kv_cli_usage_error("card",
                                          "%s: --contact and --contactless exclude "
                                          "each other",
                                          cmd);
            o->iface = ch == 'c' ? KV_EMV_IFACE_CONTACT : KV_EMV_IFACE_CONTACTLESS;
            break;
        case 'j':
            o->json = 1;
            break;
        case 'v':
            o->reveal = 1;
            break;
        case 't':
            o->trace = optarg;
            break;
        case 'a':
            if (o->naids == CARD_MAX_EXTRA_AIDS)
                return kv_cli_usage_error("card", "%s: at most %d --aid options", cmd,
                                          CARD_MAX_EXTRA_AIDS);
            n = kv_hex_decode(optarg, o->aids[o->naids], KV_AID_MAX);
            if (n < KV_AID_MIN)
                return kv_cli_usage_error("card",
                                          "%s: --aid '%s' is not an AID of 5 to 16 "
                                          "bytes in hex",
                                          cmd, optarg);
            o->aid_len[o->naids++] = (size_t)n;
            break;
        case 's':
            if (strcmp(cmd, "read") != 0)
                return kv_cli_usage_error("card", "%s: --select is an option of card read", cmd);
            n = kv_hex_decode(optarg, o->select, KV_AID_MAX);
            if (n < KV_AID_MIN)
                return kv_cli_usage_error("card",
                                          "%s: --select '%s' is not an AID of 5 to 16 "
                                          "bytes in hex",
                                          cmd, optarg);
            o->select_len = (size_t)n;
            break;
        case 'w':
            o->wait_sec = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || o->wait_sec < 1 || o->wait_sec > 86400)
                return kv_cli_usage_error("card",
                                          "%s: --wait '%s' is not a number of seconds "
                                          "(1..86400)",
                                          cmd, optarg);
            break;
        case 'R':
            o->recorded = optarg;
            break;
        case 'P':
            o->replay = optarg;
            break;
        case 'S':
            if (strcmp(cmd, "apdu") != 0)
                return kv_cli_usage_error("card", "%s: --pin-stdin is an option of card apdu", cmd);
            o->pin_stdin = 1;
            break;
        case 'h':
            card_usage(stdout);
            return -1;
        case ':':
            return kv_cli_usage_error("card", "%s: option '%s' needs a value", cmd,
                                      argv[optind - 1]);
        default:
            return kv_cli_usage_error("card", "%s: unknown option '%s'", cmd, argv[optind - 1]);
        }
    }
    if ((o->recorded != NULL) + (o->replay != NULL) + (o->reader != NULL) > 1)
        return kv_cli_usage_error("card",
                                  "%s: --reader, --recorded and --replay exclude each "
                                  "other",
                                  cmd);
    return 0;
}

/* Open the backend the options name; attach the trace. Returns 0 or a KV_ERR_*; *what names it. */
static int card_open(const struct card_opts *o, kv_reader **rd, kv_trace **tr, const char **what)
{
    /* --reader > $KORTVAGT_READER; $KORTVAGT_TRANSPORT_KEY (src/app/settings.h). Static: *what
     * may point into it after the return. */
    static kv_settings st;
    kv_settings_flags sf = {.reader = o->reader};
    const char *reader;
    int r;

    *what = "PC/SC";
    if ((r = kv_settings_init(&st, &sf, NULL, 0)) != 0)
        return r;
    reader = kv_settings_opt(st.reader.name);
    if (o->recorded != NULL) {
        static char why[300];
        *what = o->recorded;
        why[0] = '\0';
        if ((r = kv_vcard_set_transport_key_file(st.vcard.transport_key)) == 0 &&
            (r = kv_vcard_open_reader(o->recorded, rd, why, sizeof(why))) != 0 && why[0] != '\0')
            *what = why;
    } else if (o->replay != NULL) {
        *what = o->replay;
        r = kv_reader_open_replay(o->replay, rd);
    } else {
        if (o->wait_sec > 0) {
            char name[KV_READER_NAME_MAX];
            const char *want = reader;
            kv_reader_info *info = NULL;
            size_t n = 0;
            if (want == NULL || want[0] == '\0') {
                /* no name: wait on the first reader */
                if ((r = kv_reader_list(&info, &n)) != 0)
                    return r;
                snprintf(name, sizeof(name), "%s", info[0].name);
                free(info);
            } else if ((r = kv_reader_pick(want, name, sizeof(name))) != 0) {
                *what = want;
                return r;
            }
            if ((r = kv_reader_wait(name, 1, (unsigned)o->wait_sec * 1000u)) != 0) {
                *what = "waiting for a card";
                return r == KV_ERR_TIMEOUT ? KV_ERR_PCSC_NO_CARD : r;
            }
        }
        if (reader != NULL)
            *what = reader;
        r = kv_reader_open_pcsc(reader, rd);
    }
    if (r != 0)
        return r;
    if (o->trace != NULL) {
        if ((r = kv_trace_open(o->trace, tr)) != 0) {
            *what = o->trace;
            kv_reader_free(*rd);
            *rd = NULL;
            return r;
        }
        kv_reader_set_trace(*rd, *tr);
    }
    return 0;
}

static int print_json(json_t *j)
{
    int r = 0;
    if (j == NULL || json_dumpf(j, stdout, JSON_INDENT(2)) != 0)
        r = KV_ERR_IO;
    else
        printf("\n");
    json_decref(j);
    return r;
}

/* A failure that means the card (or the reader) went away, not a malformed answer. */
static int card_gone(int r)
{
    return (r <= KV_ERR_PCSC_NO_SERVICE && r >= KV_ERR_PCSC) || r == KV_ERR_TIMEOUT ||
           r == KV_ERR_INTERRUPTED || r == KV_ERR_NOMEM;
}

static int card_read(int argc, char **argv)
{
    struct card_opts o;
    int rc, r, log_rc = 0;
    kv_txlog txlog;
    kv_reader *rd = NULL;
    kv_trace *tr = NULL;
    kv_emv *s = NULL;
    const char *what;
    uint8_t atr[KV_ATR_MAX];
    size_t atr_len = 0;
    char atr_hex[2 * KV_ATR_MAX + 1];
    unsigned opts;

    if ((rc = card_parse("read", argc, argv, &o)) != 0)
        return rc < 0 ? KV_EXIT_OK : rc;
    if (optind < argc)
        return kv_cli_usage_error("card", "read: unexpected argument '%s'", argv[optind]);
    opts = o.reveal ? KV_EMV_REVEAL : 0;
    if ((r = card_open(&o, &rd, &tr, &what)) != 0) {
        rc = kv_cli_fail(r, what);
        goto out;
    }
    if (kv_reader_atr(rd, atr, sizeof(atr), &atr_len) != 0)
        atr_len = 0;
    kv_hex_encode(atr, atr_len, atr_hex);
    if ((r = kv_emv_new(rd, NULL, &s)) != 0) {
        rc = kv_cli_fail(r, "card read");
        goto out;
    }
    for (size_t i = 0; i < o.naids; i++)
        if ((r = kv_emv_add_aid(s, o.aids[i], o.aid_len[i])) != 0) {
            rc = kv_cli_fail(r, "--aid");
            goto out;
        }
    if (o.select_len > 0 && (r = kv_emv_choose_aid(s, o.select, o.select_len)) != 0) {
        rc = kv_cli_fail(r, "--select");
        goto out;
    }
    if ((r = kv_emv_read_card(s, o.iface)) != 0) {
        rc = kv_cli_fail(r, "card read");
        goto out;
    }
    /* the transaction log (9F4D, 9F4F, READ RECORD of its SFI): a card that lost its reader
       fails the read; a malformed log is reported next to the card data */
    if ((log_rc = kv_txlog_read(s, &txlog)) != 0 && card_gone(log_rc)) {
        rc = kv_cli_fail(log_rc, "card read: transaction log");
        goto out;
    }
    if (o.json) {
        json_t *j = kv_emv_to_json(s, opts);
        if (j != NULL) {
            json_object_set_new(j, "log",
                                log_rc == 0 && txlog.present ? kv_txlog_to_json(&txlog, o.reveal)
                                                             : json_null());
            if (log_rc != 0)
                json_object_set_new(j, "log_error", json_string(kv_strerror(log_rc)));
            json_object_set_new(j, "reader", json_string(kv_reader_name(rd)));
            json_object_set_new(j, "atr", atr_len ? json_string(atr_hex) : json_null());
            json_object_set_new(j, "apdu_count",
                                json_integer((json_int_t)kv_reader_apdu_count(rd)));
        }
        if ((r = print_json(j)) != 0) {
            rc = kv_cli_fail(r, "output");
            goto out;
        }
    } else {
        printf("%-18s%s\n", "Reader:", kv_reader_name(rd));
        printf("%-18s%s\n", "ATR:", atr_len ? atr_hex : "-");
        kv_emv_print(stdout, s, opts);
        if (log_rc != 0)
            printf("%-18sunreadable: %s\n", "Transaction log:", kv_strerror(log_rc));
        else
            kv_txlog_print(stdout, &txlog);
        printf("%-18s%lu\n", "APDUs exchanged:", kv_reader_apdu_count(rd));
    }
    rc = KV_EXIT_OK;
out:
    kv_emv_free(s);
    kv_reader_free(rd);
    kv_trace_free(tr);
    return rc;
}

/* A VERIFY whose data would be a plaintext PIN: INS 20, P2 80 (EMV) or 88. */
static int is_plain_verify(const kv_capdu *p)
{
    return p->ins == 0x20 && (p->p2 == 0x80 || p->p2 == 0x88);
}

/*
 * --pin-stdin: read the PIN from standard input (no echo on a terminal) and
 * make the VERIFY header at apdu (4 bytes and perhaps an Le) the case 3
 * command header || 08 || format 2 PIN block (EMV Book 3 §6.5.12, ISO 9564
 * format 2). The PIN lives in locked memory and is wiped; the block in the
 * caller's buffer is wiped by the caller.
 */
static int fill_pin_block(uint8_t *apdu, size_t *len)
{
    kv_secbuf *pin;
    int n, rc = KV_EXIT_OK;

    kv_disable_core_dumps();
    if ((pin = kv_secbuf_new(64)) == NULL)
        return kv_cli_fail(KV_ERR_NOMEM, "PIN buffer");
    n = kv_secret_read_line(STDIN_FILENO, "PIN: ", pin);
    if (n == KV_ERR_NOT_FOUND || n == KV_ERR_BUFFER)
        rc = kv_cli_usage_error("card", "apdu: no PIN of 4 to 12 digits on standard input");
    else if (n < 0)
        rc = kv_cli_fail(n, "reading the PIN");
    else if (!kv_is_digits((const char *)kv_secbuf_ptr(pin), 4, 12))
        rc = kv_cli_usage_error("card", "apdu: the PIN must be 4 to 12 digits");
    else if (kv_pin_block_plain((const char *)kv_secbuf_ptr(pin), (size_t)n, apdu + 5) != 0)
        rc = kv_cli_usage_error("card", "apdu: the PIN must be 4 to 12 digits");
    else {
        apdu[4] = 0x08;
        *len = 13;
    }
    kv_secbuf_free(pin);
    return rc;
}

static int card_apdu(int argc, char **argv)
{
    struct card_opts o;
    int rc, r;
    kv_reader *rd = NULL;
    kv_trace *tr = NULL;
    const char *what;
    uint8_t *c = NULL, *resp = NULL;
    size_t *clen = NULL, nc;
    char(*pans)[KV_TRACE_PAN_SIZE] = NULL;
    size_t npans = 0, pin_at = (size_t)-1;
    json_t *arr = NULL;

    if ((rc = card_parse("apdu", argc, argv, &o)) != 0)
        return rc < 0 ? KV_EXIT_OK : rc;
    if (optind >= argc)
        return kv_cli_usage_error("card", "apdu: give at least one C-APDU in hex");
    nc = (size_t)(argc - optind);
    if ((c = malloc(nc * KV_CAPDU_MAX)) == NULL || (clen = calloc(nc, sizeof(*clen))) == NULL ||
        (resp = malloc(KV_RAPDU_MAX)) == NULL ||
        (pans = calloc(KV_TRACE_MAX_PANS, sizeof(*pans))) == NULL) {
        rc = kv_cli_fail(KV_ERR_NOMEM, "card apdu");
        goto out;
    }
    /* check every APDU before the first goes to the card */
    for (size_t i = 0; i < nc; i++) {
        kv_capdu parsed;
        int n = kv_hex_decode(argv[optind + (int)i], c + i * KV_CAPDU_MAX, KV_CAPDU_MAX);
        if (n < 0 || kv_capdu_parse(c + i * KV_CAPDU_MAX, (size_t)n, &parsed) != 0) {
            /* not echoed when it may be a VERIFY: it could hold PIN digits */
            if (n >= 2 && c[i * KV_CAPDU_MAX + 1] == 0x20)
                rc = kv_cli_usage_error("card", "apdu: C-APDU %zu is not a C-APDU in hex", i + 1);
            else
                rc = kv_cli_usage_error("card",
                                        "apdu: '%s' is not a C-APDU in hex (CLA INS P1 P2 "
                                        "[Lc data] [Le])",
                                        argv[optind + (int)i]);
            goto out;
        }
        if (is_plain_verify(&parsed) && parsed.lc > 0 && parsed.lc <= 16) {
            /* the digits are in argv already: take them out of /proc/PID/cmdline at least */
            kv_wipe(argv[optind + (int)i], strlen(argv[optind + (int)i]));
            rc = kv_cli_usage_error(
                "card",
                "apdu: C-APDU %zu is a VERIFY with a plaintext PIN (INS 20, P2 %02X): refused, "
                "PIN digits on the command line are visible to other users and stay in the "
                "shell history. Give the VERIFY without data (00 20 00 %02X) and --pin-stdin, "
                "and type the PIN on standard input",
                i + 1, parsed.p2, parsed.p2);
            goto out;
        }
        if (o.pin_stdin && is_plain_verify(&parsed) && parsed.lc == 0) {
            if (pin_at != (size_t)-1) {
                rc = kv_cli_usage_error("card",
                                        "apdu: --pin-stdin fills one VERIFY; C-APDUs %zu "
                                        "and %zu are both VERIFY without data",
                                        pin_at + 1, i + 1);
                goto out;
            }
            pin_at = i;
        }
        clen[i] = (size_t)n;
    }
    if (o.pin_stdin) {
        if (pin_at == (size_t)-1) {
            rc = kv_cli_usage_error("card", "apdu: --pin-stdin needs a VERIFY without data "
                                            "(00200080) among the C-APDUs to put the PIN in");
            goto out;
        }
        if ((rc = fill_pin_block(c + pin_at * KV_CAPDU_MAX, &clen[pin_at])) != KV_EXIT_OK)
            goto out;
    }
    if ((r = card_open(&o, &rd, &tr, &what)) != 0) {
        rc = kv_cli_fail(r, what);
        goto out;
    }
    if (o.json && (arr = json_array()) == NULL) {
        rc = kv_cli_fail(KV_ERR_NOMEM, "card apdu");
        goto out;
    }
    for (size_t i = 0; i < nc; i++) {
        const uint8_t *cmdp = c + i * KV_CAPDU_MAX;
        size_t n;
        uint16_t sw;
        char *hc = NULL, *hr = NULL;
        const char *pl[KV_TRACE_MAX_PANS];
        if ((r = kv_reader_transmit(rd, cmdp, clen[i], resp, KV_RAPDU_MAX, &n)) != 0) {
            rc = kv_cli_fail(r, "card apdu");
            goto out;
        }
        sw = kv_sw_of(resp, n);
        if (!o.reveal)
            npans = kv_trace_find_pans(resp, n, pans, npans, KV_TRACE_MAX_PANS);
        for (size_t k = 0; k < npans; k++)
            pl[k] = pans[k];
        if ((hc = malloc(2 * clen[i] + 1)) == NULL || (hr = malloc(2 * n + 1)) == NULL) {
            free(hc);
            rc = kv_cli_fail(KV_ERR_NOMEM, "card apdu");
            goto out;
        }
        /* human output masks PANs too; VERIFY data is never echoed */
        kv_trace_mask_hex(cmdp, clen[i], 1, pl, o.reveal ? 0 : npans, hc);
        kv_trace_mask_hex(resp, n - 2, 0, pl, o.reveal ? 0 : npans, hr);
        for (char *q = hc; *q; q++)
            *q = *q == 'X' ? '*' : *q;
        for (char *q = hr; *q; q++)
            *q = *q == 'X' ? '*' : *q;
        if (o.json) {
            json_t *e = json_object();
            char swh[5];
            snprintf(swh, sizeof(swh), "%04X", sw);
            json_object_set_new(e, "c", json_string(hc));
            json_object_set_new(e, "data", json_string(hr));
            json_object_set_new(e, "sw", json_string(swh));
            json_object_set_new(e, "meaning", json_string(kv_sw_text(sw)));
            json_array_append_new(arr, e);
        } else {
            printf("> %s\n< %s%s%04X (%s)\n", hc, hr, n > 2 ? " " : "", sw, kv_sw_text(sw));
        }
        free(hc);
        free(hr);
    }
    if (o.json) {
        json_t *root = json_object();
        json_object_set_new(root, "reader", json_string(kv_reader_name(rd)));
        json_object_set_new(root, "exchanges", arr);
        arr = NULL; /* transferred */
        json_object_set_new(root, "apdu_count", json_integer((json_int_t)kv_reader_apdu_count(rd)));
        if ((r = print_json(root)) != 0) {
            rc = kv_cli_fail(r, "output");
            goto out;
        }
    }
    rc = KV_EXIT_OK;
out:
    json_decref(arr);
    if (c != NULL)
        kv_wipe(c, nc * KV_CAPDU_MAX); /* a VERIFY given here carries a PIN block */
    free(c);
    free(clen);
    free(resp);
    free(pans);
    kv_reader_free(rd);
    kv_trace_free(tr);
    return rc;
}

static int card_verify_pin(int argc, char **argv)
{
    struct card_opts o;
    int rc, r;
    kv_reader *rd = NULL;
    kv_trace *tr = NULL;
    kv_emv *s = NULL;
    kv_secbuf *pin = NULL;
    const char *what;
    kv_pin_result res;
    int len;

    if ((rc = card_parse("verify-pin", argc, argv, &o)) != 0)
        return rc < 0 ? KV_EXIT_OK : rc;
    if (optind < argc)
        return kv_cli_usage_error("card", "verify-pin: unexpected argument (the PIN is read "
                                          "from standard input, never from the command line)");
    kv_disable_core_dumps();
    if ((pin = kv_secbuf_new(64)) == NULL) {
        rc = kv_cli_fail(KV_ERR_NOMEM, "PIN buffer");
        goto out;
    }
    if ((r = card_open(&o, &rd, &tr, &what)) != 0) {
        rc = kv_cli_fail(r, what);
        goto out;
    }
    len = kv_secret_read_line(STDIN_FILENO, "PIN: ", pin);
    if (len == KV_ERR_NOT_FOUND || len == KV_ERR_BUFFER) {
        rc = kv_cli_usage_error("card", "verify-pin: no PIN of 4 to 12 digits on standard input");
        goto out;
    }
    if (len < 0) {
        rc = kv_cli_fail(len, "reading the PIN");
        goto out;
    }
    if (!kv_is_digits((const char *)kv_secbuf_ptr(pin), 4, 12)) {
        rc = kv_cli_usage_error("card", "verify-pin: the PIN must be 4 to 12 digits");
        goto out;
    }
    if ((r = kv_emv_new(rd, NULL, &s)) != 0 || (r = kv_emv_select(s, o.iface)) != 0 ||
        (r = kv_emv_gpo(s)) != 0) {
        rc = kv_cli_fail(r, "card verify-pin");
        goto out;
    }
    r = kv_emv_verify_plain_pin(s, (const char *)kv_secbuf_ptr(pin), (size_t)len, &res);
    if (r != 0) {
        rc = kv_cli_fail(r, "card verify-pin");
        goto out;
    }
    rc = res.status == KV_PIN_VERIFIED ? KV_EXIT_OK : KV_EXIT_MISMATCH;
    if (o.json) {
        json_t *j = json_object();
        const char *st = res.status == KV_PIN_VERIFIED ? "verified"
                         : res.status == KV_PIN_WRONG  ? "wrong"
                                                       : "blocked";
        json_object_set_new(j, "result", json_string(st));
        json_object_set_new(j, "tries_left",
                            res.tries_left >= 0 ? json_integer(res.tries_left) : json_null());
        if ((r = print_json(j)) != 0)
            rc = kv_cli_fail(r, "output");
    } else if (res.status == KV_PIN_VERIFIED) {
        printf("PIN verified\n");
    } else if (res.status == KV_PIN_BLOCKED) {
        printf("PIN blocked\n");
    } else if (res.tries_left >= 0) {
        printf("wrong PIN, %d tries left\n", res.tries_left);
    } else {
        printf("wrong PIN\n");
    }
out:
    kv_secbuf_free(pin);
    kv_emv_free(s);
    kv_reader_free(rd);
    kv_trace_free(tr);
    return rc;
}

int kv_cmd_card(int argc, char **argv)
{
    int rc;
    if ((rc = kv_cli_group_help(argc, argv, card_usage)) >= 0)
        return rc;
    if (strcmp(argv[1], "read") == 0)
        return card_read(argc - 1, argv + 1);
    if (strcmp(argv[1], "apdu") == 0)
        return card_apdu(argc - 1, argv + 1);
    if (strcmp(argv[1], "verify-pin") == 0)
        return card_verify_pin(argc - 1, argv + 1);
    if (strcmp(argv[1], "settings") == 0) /* cmd_cardsettings.c */
        return kv_cmd_card_settings(argc - 1, argv + 1);
    if (strcmp(argv[1], "transact") == 0) /* cmd_transact.c */
        return kv_cmd_card_transact(argc - 1, argv + 1);
    return kv_cli_usage_error("card", "unknown command '%s' (read, apdu, verify-pin, transact)",
                              argv[1]);
}

/* `kortvagt tlv`: decode BER-TLV hex into a tree with EMV tag names (see cli.h). */
#include "src/cli/cli.h"
#include "apdu/tags.h"
#include "apdu/tlv.h"
#include "src/base/err.h"
#include "src/base/hex.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* Larger than any card exchange or trace record by far; stops runaway pipes. */
#define TLV_MAX_INPUT (64u * 1024 * 1024)

static void tlv_usage(FILE *f)
{
    fprintf(f, "Usage: kortvagt tlv decode [--json] [--reveal] HEX...\n"
               "       kortvagt tlv decode [--json] [--reveal] -\n\n"
               "Decode BER-TLV (EMV Book 3 Annex B) and print it as a tree with EMV tag\n"
               "names, lengths, values in hex, the text of an/ans values and the dates of\n"
               "n 6 date fields. HEX may be split over several arguments and contain\n"
               "whitespace; '-' reads the hex from standard input.\n\n"
               "Options:\n"
               "  --json     print a JSON array of {tag, name, len, value | children}\n"
               "  --reveal   print PANs in full (masked to first 6 / last 4 digits otherwise)\n"
               "  --help     show this help\n\n"
               "Exit codes: 0 decoded, 2 usage error or bad hex, 4 malformed TLV, 8 I/O error.\n");
}

/*
 * Keep the hex digits of text, dropping whitespace. Names the first bad
 * character and its offset in the text; returns the exit code (0 when fine).
 */
static int tlv_clean_hex(const char *text, char *digits, size_t *ndigits)
{
    size_t n = 0;

    for (size_t i = 0; text[i] != '\0'; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (isspace(ch))
            continue;
        if (!isxdigit(ch)) {
            if (isprint(ch))
                fprintf(stderr,
                        "kortvagt tlv decode: bad hex: character '%c' at offset %zu of the "
                        "input is not a hex digit\n",
                        ch, i);
            else
                fprintf(stderr,
                        "kortvagt tlv decode: bad hex: byte 0x%02X at offset %zu of the input is "
                        "not a hex digit\n",
                        ch, i);
            return KV_EXIT_USAGE;
        }
        digits[n++] = (char)ch;
    }
    digits[n] = '\0';
    if (n % 2 != 0) {
        fprintf(stderr,
                "kortvagt tlv decode: bad hex: odd number of hex digits (%zu); the last byte is "
                "incomplete\n",
                n);
        return KV_EXIT_USAGE;
    }
    *ndigits = n;
    return KV_EXIT_OK;
}

static const char *tlv_problem(int err)
{
    switch (err) {
    case KV_ERR_TRUNCATED:
        return "tag or length field cut off by the end of the data";
    case KV_ERR_TLV_TAG:
        return "tag longer than 3 bytes";
    case KV_ERR_TLV_LENGTH:
        return "length field longer than 4 bytes (first length byte 0x85 or above)";
    case KV_ERR_TLV_INDEFINITE:
        return "indefinite length (0x80), which EMV does not allow";
    case KV_ERR_TLV_OVERLONG:
        return "value runs past the end of the enclosing data";
    case KV_ERR_TLV_DEPTH:
        return "constructed objects nested too deep";
    default:
        return kv_strerror(err);
    }
}

static int tlv_decode(int argc, char **argv)
{
    int json = 0, reveal = 0, from_stdin = 0, rc = KV_EXIT_INTERNAL, r;
    size_t text_len = 0, ndigits = 0, bad = 0;
    char *text = NULL, *digits = NULL;
    uint8_t *bytes = NULL;
    json_t *tree = NULL;
    int npos = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            tlv_usage(stdout);
            return KV_EXIT_OK;
        }
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "--reveal") == 0)
            reveal = 1;
        else if (strcmp(argv[i], "-") == 0)
            from_stdin = 1;
        else if (argv[i][0] == '-')
            return kv_cli_usage_error("tlv", "decode: unknown option '%s'", argv[i]);
        else {
            npos++;
            text_len += strlen(argv[i]) + 1;
        }
    }
    if (from_stdin && npos > 0)
        return kv_cli_usage_error("tlv", "decode: give either hex arguments or '-', not both");
    if (!from_stdin && npos == 0)
        return kv_cli_usage_error("tlv", "decode: missing HEX (or '-' to read stdin)");

    if (from_stdin) {
        if ((r = kv_cli_read_input("-", TLV_MAX_INPUT, &text, &text_len)) != 0) {
            rc = kv_cli_fail(r == KV_ERR_BUFFER ? KV_ERR_ARG : r, "tlv decode: reading stdin");
            goto out;
        }
    } else {
        /* Join the arguments with spaces so that "6F 0A 84 ..." unquoted works. */
        size_t at = 0;
        if ((text = malloc(text_len + 1)) == NULL) {
            rc = kv_cli_fail(KV_ERR_NOMEM, "tlv decode");
            goto out;
        }
        for (int i = 1; i < argc; i++) {
            size_t n;
            if (argv[i][0] == '-')
                continue;
            n = strlen(argv[i]);
            memcpy(text + at, argv[i], n);
            at += n;
            text[at++] = ' ';
        }
        text[at] = '\0';
    }

    if ((digits = malloc(strlen(text) + 1)) == NULL) {
        rc = kv_cli_fail(KV_ERR_NOMEM, "tlv decode");
        goto out;
    }
    if ((rc = tlv_clean_hex(text, digits, &ndigits)) != KV_EXIT_OK)
        goto out;
    if ((bytes = malloc(ndigits / 2 + 1)) == NULL) {
        rc = kv_cli_fail(KV_ERR_NOMEM, "tlv decode");
        goto out;
    }
    if ((r = kv_hex_decode(digits, bytes, ndigits / 2 + 1)) < 0) {
        rc = kv_cli_fail(r, "tlv decode: hex");
        goto out;
    }

    if ((r = kv_tlv_validate_offset(bytes, ndigits / 2, &bad)) != 0) {
        fprintf(stderr, "kortvagt tlv decode: malformed TLV at byte offset %zu: %s (%s)\n", bad,
                tlv_problem(r), kv_strerror(r));
        rc = kv_exit_code(r);
        goto out;
    }

    if (json) {
        if ((r = kv_tag_json_tree(bytes, ndigits / 2, reveal ? KV_TAG_REVEAL : 0, &tree)) != 0) {
            rc = kv_cli_fail(r, "tlv decode");
            goto out;
        }
        if (json_dumpf(tree, stdout, JSON_INDENT(2)) != 0 || fputc('\n', stdout) == EOF ||
            fflush(stdout) != 0) {
            rc = kv_cli_fail(KV_ERR_IO, "tlv decode: writing output");
            goto out;
        }
    } else if ((r = kv_tag_print_tree(stdout, bytes, ndigits / 2, reveal ? KV_TAG_REVEAL : 0)) !=
               0) {
        rc = kv_cli_fail(r, "tlv decode: writing output");
        goto out;
    }
    rc = KV_EXIT_OK;
out:
    json_decref(tree);
    free(bytes);
    free(digits);
    free(text);
    return rc;
}

int kv_cmd_tlv(int argc, char **argv)
{
    if (argc < 2)
        return kv_cli_usage_error("tlv", "missing command (decode)");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        tlv_usage(stdout);
        return KV_EXIT_OK;
    }
    if (strcmp(argv[1], "decode") == 0)
        return tlv_decode(argc - 1, argv + 1);
    return kv_cli_usage_error("tlv", "unknown command '%s' (expected decode)", argv[1]);
}

/* `kortvagt readers`: list the PC/SC readers and their cards (see cli.h). */
#include "src/cli/cli.h"
#include "apdu/reader.h"
#include "src/base/err.h"
#include "src/base/hex.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void readers_usage(FILE *f)
{
    fprintf(f, "Usage: kortvagt readers [--json]\n\n"
               "List the PC/SC readers, whether a card is present and its ATR.\n\n"
               "Options:\n"
               "  --json     print {\"readers\":[{\"name\",\"card_present\",\"atr\"}]}\n"
               "  --help     show this help\n\n"
               "Exit codes: 0 listed, 2 usage error, 3 pcscd not running or no reader.\n");
}

int kv_cmd_readers(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int json = 0, ch, r, rc;
    kv_reader_info *info = NULL;
    size_t n = 0;

    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'j':
            json = 1;
            break;
        case 'h':
            readers_usage(stdout);
            return KV_EXIT_OK;
        default:
            return kv_cli_usage_error("readers", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return kv_cli_usage_error("readers", "unexpected argument '%s'", argv[optind]);
    if ((r = kv_reader_list(&info, &n)) != 0) {
        rc = kv_cli_fail(r, "PC/SC");
        goto out;
    }
    if (json) {
        json_t *root = json_object(), *arr = json_array();
        for (size_t i = 0; root != NULL && arr != NULL && i < n; i++) {
            json_t *o = json_object();
            char atr[2 * KV_ATR_MAX + 1];
            kv_hex_encode(info[i].atr, info[i].atr_len, atr);
            json_object_set_new(o, "name", json_string(info[i].name));
            json_object_set_new(o, "card_present", json_boolean(info[i].card_present));
            json_object_set_new(o, "atr", info[i].atr_len ? json_string(atr) : json_null());
            json_array_append_new(arr, o);
        }
        json_object_set_new(root, "readers", arr);
        if (root == NULL || json_dumpf(root, stdout, JSON_INDENT(2)) != 0) {
            json_decref(root);
            rc = kv_cli_fail(KV_ERR_IO, "output");
            goto out;
        }
        printf("\n");
        json_decref(root);
    } else {
        for (size_t i = 0; i < n; i++) {
            char atr[2 * KV_ATR_MAX + 1];
            kv_hex_encode(info[i].atr, info[i].atr_len, atr);
            printf("%s\n  card: %s%s%s\n", info[i].name, info[i].card_present ? "present" : "none",
                   info[i].atr_len ? ", ATR " : "", info[i].atr_len ? atr : "");
        }
    }
    rc = KV_EXIT_OK;
out:
    free(info);
    return rc;
}

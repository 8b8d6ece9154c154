/* kortvagt: command-line front end. Dispatches to the command groups of cli.h. */
#include "src/cli/cli.h"
#include "src/base/err.h"

#include <string.h>

const struct kv_cmd_group kv_cmd_groups[] = {
    {"readers", kv_cmd_readers, "list PC/SC readers and whether a card is present"},
    {"card", kv_cmd_card, "read an EMV card, send raw APDUs, verify the offline PIN"},
    {"tlv", kv_cmd_tlv, "decode BER-TLV into a readable tree with EMV tag names"},
    {"vcard", kv_cmd_vcard, "run the virtual EMV card behind the vpcd virtual reader"},
    {NULL, NULL, NULL},
};

static void usage(FILE *f)
{
    fprintf(f, "Usage: kortvagt <group> <command> [options]\n\n"
               "A host for EMV payment cards and an HSM-backed cardholder verification module.\n\n"
               "Groups:\n");
    for (const struct kv_cmd_group *g = kv_cmd_groups; g->name != NULL; g++)
        fprintf(f, "  %-10s %s\n", g->name, g->summary);
    fprintf(f, "\nRun 'kortvagt <group> --help' for the commands of a group.\n"
               "Exit codes: 0 success/match, 1 negative verification result, 2 usage error,\n"
               "3 reader/PC/SC, 4 card data, 5 HSM, 6 store, 7 policy, 8 I/O, 9 internal.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return KV_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return KV_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("kortvagt 0.1.0\n");
        return KV_EXIT_OK;
    }
    for (const struct kv_cmd_group *g = kv_cmd_groups; g->name != NULL; g++)
        if (strcmp(argv[1], g->name) == 0)
            return g->run(argc - 1, argv + 1);
    fprintf(stderr, "kortvagt: unknown command group '%s'\n", argv[1]);
    usage(stderr);
    return KV_EXIT_USAGE;
}

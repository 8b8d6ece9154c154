/* kortvagt: command-line front end. Dispatches to the command groups of cli.h. */
#include "src/cli/cli.h"
#include "src/base/err.h"
#include "src/base/jalloc.h"

#include "kv_build_config.h"

#include <string.h>

const struct kv_cmd_group kv_cmd_groups[] = {
    {"readers", kv_cmd_readers, "list PC/SC readers and whether a card is present"},
    {"card", kv_cmd_card, "read an EMV card, send raw APDUs, verify the offline PIN"},
    {"tlv", kv_cmd_tlv, "decode BER-TLV into a readable tree with EMV tag names"},
    {"vcard", kv_cmd_vcard, "run the virtual EMV card behind the vpcd virtual reader"},
    {"hsm", kv_cmd_hsm, "create the PKCS#11 token, show module, token and mechanisms"},
    {"key", kv_cmd_key, "key ceremony: import from components, generate, list, delete"},
    {"cvv", kv_cmd_cvv, "generate or verify CVV/CVC1, CVV2/CVC2 and iCVV in the HSM"},
    {"cvc3", kv_cmd_cvc3, "generate or verify a Mastercard dynamic CVC3 in the HSM"},
    {"pvv", kv_cmd_pvv, "generate or verify a Visa PVV (PIN on stdin or PIN block)"},
    {"ibm3624", kv_cmd_ibm3624, "compute or verify an IBM 3624 PIN offset"},
    {"pinblock", kv_cmd_pinblock, "encode, decode or translate ISO 9564 PIN blocks"},
    {"arqc", kv_cmd_arqc, "verify (or generate) an EMV ARQC with keys in the HSM"},
    {"arpc", kv_cmd_arpc, "generate an EMV ARPC (method 1 or 2)"},
    {"script", kv_cmd_script, "build issuer script commands (MAC, enciphered PIN) in the HSM"},
    {"liability", kv_cmd_liability, "assess liability for unauthorised card use (§ 100)"},
    {"authorize", kv_cmd_authorize, "decide an authorization: SCA, exemptions, limits, evidence"},
    {"evidence", kv_cmd_evidence, "show, verify and export the tamper-evident evidence chain"},
    {"perso", kv_cmd_perso, "personalize a virtual card from a template (keys in the HSM)"},
    {"blocklist", kv_cmd_blocklist, "the issuer's block list: add, check, export, notices"},
    {"diagnose", kv_cmd_diagnose, "find why a card does not work: reader, chip, PIN, block list"},
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
    /* JSON that held a PIN block, a CVC or a PVV is wiped when jansson frees it */
    kv_jalloc_install();
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
        printf("kortvagt %s\n", KV_VERSION);
        return KV_EXIT_OK;
    }
    for (const struct kv_cmd_group *g = kv_cmd_groups; g->name != NULL; g++)
        if (strcmp(argv[1], g->name) == 0)
            return g->run(argc - 1, argv + 1);
    fprintf(stderr, "kortvagt: unknown command group '%s'\n", argv[1]);
    usage(stderr);
    return KV_EXIT_USAGE;
}

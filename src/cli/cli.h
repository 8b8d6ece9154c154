/*
 * The `kortvagt` command line: one entry point per command group, each in a
 * file of its own (cmd_<group>.c). argv[0] is the group name; the entry point
 * parses the rest, prints and returns the process exit code (err.h KV_EXIT_*).
 */
#ifndef KV_CLI_CLI_H
#define KV_CLI_CLI_H

#include <stdio.h>

typedef int (*kv_cmd_fn)(int argc, char **argv);

struct kv_cmd_group {
    const char *name;
    kv_cmd_fn run;
    const char *summary;
};

/* The group table (main.c), terminated by a NULL name. */
extern const struct kv_cmd_group kv_cmd_groups[];

/* Print "kortvagt: <what>: <kv_strerror(err)>" to stderr; returns kv_exit_code(err). */
int kv_cli_fail(int err, const char *what);
/*
 * The common front of a command group's entry point: with no command, usage
 * goes to stderr and the result is KV_EXIT_USAGE; with --help, -h or help,
 * usage goes to stdout and the result is KV_EXIT_OK. Returns -1 when argv[1]
 * names a command for the caller to run.
 */
int kv_cli_group_help(int argc, char **argv, void (*usage)(FILE *f));

/*
 * Read all of a file, or of stdin when path is "-", into a heap buffer
 * (*out, NUL-terminated, caller frees; *len without the NUL). Returns 0,
 * KV_ERR_IO (cannot open or read), KV_ERR_BUFFER (more than max bytes) or
 * KV_ERR_NOMEM.
 */
int kv_cli_read_input(const char *path, size_t max, char **out, size_t *len);

/* Print a usage error naming the problem to stderr; returns KV_EXIT_USAGE. */
int kv_cli_usage_error(const char *group, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

int kv_cmd_readers(int argc, char **argv);
int kv_cmd_card(int argc, char **argv);
int kv_cmd_tlv(int argc, char **argv);
int kv_cmd_vcard(int argc, char **argv);
int kv_cmd_hsm(int argc, char **argv);
int kv_cmd_key(int argc, char **argv);
int kv_cmd_cvv(int argc, char **argv);
int kv_cmd_cvc3(int argc, char **argv);
int kv_cmd_pvv(int argc, char **argv);
int kv_cmd_ibm3624(int argc, char **argv);
int kv_cmd_pinblock(int argc, char **argv);
int kv_cmd_arqc(int argc, char **argv);
int kv_cmd_arpc(int argc, char **argv);
int kv_cmd_script(int argc, char **argv);
int kv_cmd_liability(int argc, char **argv);
int kv_cmd_authorize(int argc, char **argv);
int kv_cmd_evidence(int argc, char **argv);
int kv_cmd_blocklist(int argc, char **argv);
int kv_cmd_diagnose(int argc, char **argv);
int kv_cmd_perso(int argc, char **argv);
/* `kortvagt card settings` (cmd_cardsettings.c); argv[0] is "settings". */
int kv_cmd_card_settings(int argc, char **argv);
/* `kortvagt card transact` (cmd_transact.c); argv[0] is "transact". */
int kv_cmd_card_transact(int argc, char **argv);

#endif

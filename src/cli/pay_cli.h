/*
 * What the payment-crypto command groups (cmd_cvv.c, cmd_pin.c, cmd_emv.c)
 * share: a small option parser with error messages that name the option,
 * checked conversions of hex and digit arguments, opening the token and
 * finding keys with errors that name the key, reading the PIN from stdin
 * into locked memory, and match/mismatch output.
 */
#ifndef KV_CLI_PAY_CLI_H
#define KV_CLI_PAY_CLI_H

#include "hsm/p11.h"
#include "src/base/secure.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* One long option: "--name VALUE" / "--name=VALUE" sets *value; a flag sets *flag = 1. */
struct kv_pay_opt {
    const char *name; /* without the leading "--" */
    const char **value;
    int *flag;
};

/* Options every payment command takes. */
struct kv_pay_common {
    const char *key;
    const char *token;
    const char *module;
    int json;
    int help;
};

/*
 * Parse argv[first..argc) against opts (terminated by a NULL name) plus the
 * common options (--key, --token, --module, --json, --help) into c.
 * Positional arguments, unknown or repeated options and missing values are
 * usage errors naming the option ("kortvagt <group> <cmd>: ..."). Returns
 * KV_EXIT_OK or KV_EXIT_USAGE (the message is printed).
 */
int kv_pay_parse(const char *group, const char *cmd, int argc, char **argv, int first,
                 const struct kv_pay_opt *opts, struct kv_pay_common *c);

/* Usage error "kortvagt <group> <cmd>: <message>"; returns KV_EXIT_USAGE. */
int kv_pay_usage(const char *group, const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Require an option: usage error "missing --name" when v is NULL. */
int kv_pay_require(const char *group, const char *cmd, const char *name, const char *v);

/*
 * Hex argument of exactly len bytes (min == max) or min..max bytes into out;
 * *n receives the length (may be NULL when min == max). Errors name the
 * option: not hex (first bad character), odd digit count, wrong length.
 */
int kv_pay_hex(const char *group, const char *cmd, const char *name, const char *v, uint8_t *out,
               size_t min, size_t max, size_t *n);

/* Digits argument of min..max digits; error names the option and the rule. */
int kv_pay_digits(const char *group, const char *cmd, const char *name, const char *v, size_t min,
                  size_t max);

/* PAN argument: 1..19 digits (no Luhn check). */
int kv_pay_pan(const char *group, const char *cmd, const char *v);

/*
 * Open the token (c->module / c->token, else environment, else defaults),
 * disabling core dumps first. Prints the reason on failure; returns the exit
 * code (0 on success).
 */
int kv_pay_open(const char *group, const char *cmd, const struct kv_pay_common *c, kv_hsm **h);

/*
 * Find key name; want is a bitmask of acceptable kinds (KV_PAY_WANT_*). Prints
 * a message naming the key when it is missing or of the wrong kind. Returns
 * the exit code (0 on success).
 */
enum {
    KV_PAY_WANT_DES = 1,     /* DES2 or DES3 */
    KV_PAY_WANT_DES2_AA = 2, /* DES2 with its A||A companion */
    KV_PAY_WANT_AES = 4,
};
int kv_pay_key(const char *group, const char *cmd, kv_hsm *h, const char *name, unsigned want,
               kv_hsm_key *key);

/*
 * Read the cardholder PIN: one line of stdin (no echo on a terminal) into a
 * new locked buffer (*buf, NUL-terminated, *len digits). A PIN that is not
 * 4..12 digits is a usage error that says what is wrong without echoing it.
 * Returns the exit code (0 on success); the caller frees *buf.
 */
int kv_pay_read_pin(const char *group, const char *cmd, kv_secbuf **buf, size_t *len);

/* Print an error of a library call: "kortvagt <group> <cmd>: <what>: <text>"; returns exit code. */
int kv_pay_fail(const char *group, const char *cmd, kv_hsm *h, int err, const char *what);

/*
 * Print a verification result ("match" / "mismatch", or {"result": ...} plus
 * the members of extra with --json; extra may be NULL and is consumed).
 * Returns KV_EXIT_OK or KV_EXIT_MISMATCH.
 */
int kv_pay_verdict(const struct kv_pay_common *c, int match, json_t *extra);

/* Print obj (consumed) as one compact JSON line; returns KV_EXIT_OK or KV_EXIT_INTERNAL. */
int kv_pay_json(json_t *obj);

/* Upper-case hex of len bytes into a new JSON string. */
json_t *kv_pay_json_hex(const uint8_t *p, size_t len);

/* Masked PAN (first 6, last 4) as a JSON string. */
json_t *kv_pay_json_pan(const char *pan);

#endif

/*
 * The counted verifications of the CLI (issue 11, finding 4): `cvv verify`,
 * `cvc3 verify`, `pvv verify` and `ibm3624 verify` check a card's PIN or
 * card code like kortvagtd does, with the attempts counted in the card's
 * row of the store (src/attempts). After [verify] pin_tries_max wrong PINs
 * (default 3) or code_tries_max wrong codes (default 5) in a row the card is
 * blocked: the command prints "blocked" ({"result":"blocked"} with --json)
 * and a hint on stderr, does no HSM work and exits KV_EXIT_BLOCKED (10).
 * `kortvagt card settings --pan PAN --reset-tries` clears it.
 */
#ifndef KV_CLI_VERIFY_CLI_H
#define KV_CLI_VERIFY_CLI_H

#include "src/app/app.h"
#include "src/attempts/attempts.h"
#include "src/cli/pay_cli.h"

/* The exit code of a blocked verification. */
#define KV_EXIT_BLOCKED 10

/* The options every counted verify takes besides the common ones: --store, --config. */
struct kv_verify_opts {
    const char *store;
    const char *config;
};

/* The PAN of a counted verify: 12..19 digits (a card the store can key). */
int kv_verify_pan(const char *group, const char *cmd, const char *pan);

/*
 * Open configuration, store and HSM (kv_app_open with --config, --store,
 * --module, --token); core dumps off. Prints the reason on failure and
 * returns the exit code (0 with *app set).
 */
int kv_verify_open(const char *group, const char *cmd, const struct kv_pay_common *c,
                   const struct kv_verify_opts *v, kv_app **app);

/*
 * Run one counted verification (kv_attempts_verify with via "cli"); fn gets
 * ctx and the card's row. method (a buffer of 16 bytes) names the method in
 * the evidence record; fn may rewrite it. When fn fails it prints its own
 * message and sets *fn_rc (an exit code); else the failure is printed here.
 * Prints match / mismatch / blocked and returns 0, 1 or KV_EXIT_BLOCKED.
 */
int kv_verify_run(const char *group, const char *cmd, const struct kv_pay_common *c, kv_app *app,
                  kv_attempt_kind kind, char method[16], const char *pan, kv_attempts_hsm_fn fn,
                  void *ctx, const int *fn_rc);

#endif

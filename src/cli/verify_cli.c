/* see verify_cli.h */
#include "src/cli/verify_cli.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/base/secure.h"
#include "src/cli/cli.h"
#include "src/store/keyed.h"

#include <stdio.h>
#include <string.h>

int kv_verify_pan(const char *group, const char *cmd, const char *pan)
{
    int rc;
    if ((rc = kv_pay_pan(group, cmd, pan)) != 0)
        return rc;
    if (!kv_pan_valid(pan))
        return kv_pay_usage(group, cmd,
                            "--pan must be 12 to 19 digits: a verify counts the attempts of "
                            "that card");
    return KV_EXIT_OK;
}

int kv_verify_open(const char *group, const char *cmd, const struct kv_pay_common *c,
                   const struct kv_verify_opts *v, kv_app **app)
{
    kv_app_opts o;
    char err[1024];
    int r;
    memset(&o, 0, sizeof(o));
    o.config = v->config;
    o.store = v->store;
    o.module = c->module;
    o.token = c->token;
    kv_disable_core_dumps();
    if ((r = kv_app_open(&o, app, err, sizeof(err))) != 0) {
        fprintf(stderr, "kortvagt %s %s: %s\n", group, cmd, err);
        *app = NULL;
        return kv_exit_code(r);
    }
    return KV_EXIT_OK;
}

int kv_verify_run(const char *group, const char *cmd, const struct kv_pay_common *c, kv_app *app,
                  kv_attempt_kind kind, char method[16], const char *pan, kv_attempts_hsm_fn fn,
                  void *ctx, const int *fn_rc)
{
    kv_attempts_request rq;
    kv_attempts_outcome o;
    char why[256], masked[KV_PAN_MASKED_MAX];
    int r;

    rq.kind = kind;
    rq.method = method;
    rq.via = "cli";
    rq.pan = pan;
    r = kv_attempts_verify(kv_app_store(app), kv_app_attempts(app), kv_app_token_mac(app),
                           kv_app_evidence_mac(app), &rq, fn, ctx, &o, why, sizeof(why));
    if (r != 0) {
        if (fn_rc != NULL && *fn_rc != 0)
            return *fn_rc;
        fprintf(stderr, "kortvagt %s %s: %s\n", group, cmd, why[0] ? why : kv_strerror(r));
        return kv_exit_code(r);
    }
    if (o.result != KV_VERIFY_BLOCKED)
        return kv_pay_verdict(c, o.result == KV_VERIFY_MATCH, NULL);
    kv_pan_mask(pan, masked);
    fprintf(stderr,
            "kortvagt %s %s: card %s is blocked after %d wrong %s in a row; nothing was "
            "verified. `kortvagt card settings --pan PAN --reset-tries` clears it.\n",
            group, cmd, masked, o.failures, kind == KV_ATTEMPT_PIN ? "PINs" : "card codes");
    if (c->json) {
        json_t *j = json_pack("{s:s}", "result", "blocked");
        if (kv_pay_json(j) != KV_EXIT_OK)
            return KV_EXIT_INTERNAL;
    } else {
        printf("blocked\n");
    }
    return KV_EXIT_BLOCKED;
}

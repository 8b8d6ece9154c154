/*
 * `kortvagt blocklist ...` (src/RULES.md §3; the rules live in src/blocklist).
 *
 * Exit codes: 0 done; 1 the card is not listed (show, recovered, replaced,
 * correct, remove, notice) -- `check` exits 0 whether or not the card is
 * listed and prints "blocked" / "not blocked"; 2 usage; 5 HSM; 6 store;
 * 7 policy (issuer-initiated listing without the configured permission,
 * overdraft without 2 reminders, already listed, expired card).
 */
#include "src/app/app.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/base/secure.h"
#include "src/blocklist/blocklist.h"
#include "src/cli/cli.h"
#include "src/base/caltime.h"

#include <jansson.h>

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void blocklist_usage(FILE *f)
{
    fprintf(f, "Usage: kortvagt blocklist <command> [options]\n\n"
               "The issuer's block list (spærreliste), src/RULES.md §3.\n\n"
               "Commands:\n"
               "  add --pan P --reason R [--expiry YYMM] [--source cardholder|issuer]\n"
               "      [--reminders N] [--report lost|stolen|defective|destroyed]\n"
               "      [--wallet-token T]... [--at T]       list a card (and its wallet tokens)\n"
               "  check --pan P           'blocked' or 'not blocked' (exit 0 both); nothing else\n"
               "  show --pan P            block time (notified_at of a cardholder's report),\n"
               "                          expiry, whether a notice is due; never the reason\n"
               "  recovered --pan P       card recovered: deleted unless listed for\n"
               "                          suspected_misuse or suspected_copy\n"
               "  replaced --pan P        card replaced: deleted at once\n"
               "  correct --pan P --reason R [--at T]   correct the reason; the correction\n"
               "                          is sent to every recipient\n"
               "  remove --pan P [--at T] delete a wrong entry; the correction is sent to\n"
               "                          every recipient\n"
               "  purge [--now T]         delete entries whose expiry month has ended\n"
               "  export [--to NAME] [--at T]   card and wallet token numbers, one per line\n"
               "  notice --pan P          the written notice to the cardholder (Danish)\n"
               "  request add --pan P --kind access|objection [--at T]\n"
               "  request answer --id N [--at T]\n"
               "  requests [--now T]      access requests and objections, 4-week due dates,\n"
               "                          OVERDUE marked\n"
               "  corrections             the corrections log (who received each correction)\n"
               "  recipients              who received the list, and when\n\n"
               "Reasons: lost stolen suspected_misuse suspected_copy account_closed\n"
               "  renewed_not_returned overdraft unusual_pattern cardholder_request\n"
               "  (source defaults to cardholder for lost, stolen, cardholder_request).\n"
               "Times T: RFC 3339 (2026-03-01T10:00:00Z) or YYYY-MM-DD (Copenhagen midnight).\n"
               "Every command takes --json, --config FILE and --store URL.\n"
               "Configuration [blocklist]: permission = <journal no.> (needed for issuer-\n"
               "  initiated listing), issuer_name, issuer_address, recipients = A; B,\n"
               "  authority.\n"
               "Exit: 0 done (check: listed or not), 1 not listed, 2 usage, 5 HSM, 6 store,\n"
               "  7 refused by policy (e.g. issuer listing without permission).\n");
}

#define MAX_OPTS 24

typedef struct {
    const char *pan, *reason, *source, *reminders, *report, *expiry, *at, *now, *to, *kind, *id;
    const char *config, *store;
    const char *wallet[KV_BL_WALLET_MAX];
    size_t n_wallet;
    int json, help;
} bl_opts;

/* Parse options from argv[first..]; returns KV_EXIT_OK or KV_EXIT_USAGE. */
static int parse(const char *cmd, int argc, char **argv, int first, bl_opts *o)
{
    static const struct {
        const char *name;
        size_t off;
    } vals[] = {
        {"pan", offsetof(bl_opts, pan)},       {"reason", offsetof(bl_opts, reason)},
        {"source", offsetof(bl_opts, source)}, {"reminders", offsetof(bl_opts, reminders)},
        {"report", offsetof(bl_opts, report)}, {"expiry", offsetof(bl_opts, expiry)},
        {"at", offsetof(bl_opts, at)},         {"now", offsetof(bl_opts, now)},
        {"to", offsetof(bl_opts, to)},         {"kind", offsetof(bl_opts, kind)},
        {"id", offsetof(bl_opts, id)},         {"config", offsetof(bl_opts, config)},
        {"store", offsetof(bl_opts, store)},
    };
    for (int i = first; i < argc; i++) {
        const char *a = argv[i], *eq, *v = NULL;
        char name[32];
        size_t n;
        int hit = 0;
        if (strcmp(a, "--json") == 0) {
            o->json = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            o->help = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0)
            return kv_cli_usage_error("blocklist", "%s: unexpected argument '%s'", cmd, a);
        a += 2;
        eq = strchr(a, '=');
        n = eq != NULL ? (size_t)(eq - a) : strlen(a);
        if (n >= sizeof(name))
            return kv_cli_usage_error("blocklist", "%s: unknown option '--%s'", cmd, a);
        memcpy(name, a, n);
        name[n] = '\0';
        if (eq != NULL)
            v = eq + 1;
        else if (i + 1 < argc)
            v = argv[++i];
        else
            return kv_cli_usage_error("blocklist", "%s: option --%s needs a value", cmd, name);
        if (strcmp(name, "wallet-token") == 0) {
            if (o->n_wallet >= KV_BL_WALLET_MAX)
                return kv_cli_usage_error("blocklist", "%s: at most %d --wallet-token", cmd,
                                          KV_BL_WALLET_MAX);
            o->wallet[o->n_wallet++] = v;
            continue;
        }
        for (size_t k = 0; k < sizeof(vals) / sizeof(vals[0]); k++) {
            if (strcmp(name, vals[k].name) == 0) {
                const char **slot = (const char **)((char *)o + vals[k].off);
                if (*slot != NULL)
                    return kv_cli_usage_error("blocklist", "%s: option --%s given twice", cmd,
                                              name);
                *slot = v;
                hit = 1;
                break;
            }
        }
        if (!hit)
            return kv_cli_usage_error("blocklist", "%s: unknown option '--%s'", cmd, name);
    }
    return KV_EXIT_OK;
}

static int need(const char *cmd, const char *name, const char *v)
{
    if (v == NULL)
        return kv_cli_usage_error("blocklist", "%s: missing --%s", cmd, name);
    return KV_EXIT_OK;
}

static int need_pan(const char *cmd, const char *pan)
{
    int rc = need(cmd, "pan", pan);
    if (rc != 0)
        return rc;
    if (!kv_pan_valid(pan))
        return kv_cli_usage_error("blocklist", "%s: --pan must be 12..19 digits", cmd);
    return KV_EXIT_OK;
}

/* Parse --at/--now (default: the clock). */
static int time_opt(const char *cmd, const char *name, const char *v, int64_t *out)
{
    if (v == NULL) {
        *out = (int64_t)time(NULL);
        return KV_EXIT_OK;
    }
    if (kv_bl_time_parse(v, out) != 0)
        return kv_cli_usage_error("blocklist",
                                  "%s: --%s '%s' is not RFC 3339 (2026-03-01T10:00:00Z) or "
                                  "YYYY-MM-DD",
                                  cmd, name, v);
    return KV_EXIT_OK;
}

static int print_json(json_t *j)
{
    char *s;
    if (j == NULL)
        return kv_cli_fail(KV_ERR_NOMEM, "blocklist");
    s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (s == NULL)
        return kv_cli_fail(KV_ERR_NOMEM, "blocklist");
    printf("%s\n", s);
    free(s);
    return KV_EXIT_OK;
}

static json_t *time_json(int64_t t)
{
    char buf[KV_TIME_TEXT];
    kv_time_format(t, buf);
    return json_string(buf);
}

/* The engine over an open session (the composition root sets it up). */
typedef struct {
    kv_app *session;
    const kv_blocklist *blp;
    kv_blocklist bl;
} bl_env;

static int env_open(const char *cmd, const bl_opts *o, bl_env *env)
{
    kv_app_opts so = {.config = o->config, .store = o->store};
    char err[1024];
    int r;

    memset(env, 0, sizeof(*env));
    kv_disable_core_dumps();
    if ((r = kv_app_open(&so, &env->session, err, sizeof(err))) != 0) {
        fprintf(stderr, "kortvagt blocklist %s: %s\n", cmd, err);
        return kv_exit_code(r);
    }
    if ((r = kv_app_blocklist(env->session, &env->blp)) != 0) {
        fprintf(stderr,
                "kortvagt blocklist %s: HSM keys '" KV_KEY_LABEL_TOKEN
                "' and '" KV_KEY_LABEL_PAN_ENC "' are needed (run `kortvagt hsm init`): %s\n",
                cmd, kv_strerror(r));
        kv_app_close(env->session);
        env->session = NULL;
        return kv_exit_code(r);
    }
    env->bl = *env->blp;
    return KV_EXIT_OK;
}

static void env_close(bl_env *env)
{
    kv_app_close(env->session);
    env->session = NULL;
}

static int engine_fail(const char *cmd, int r, const char *why)
{
    if (why != NULL && why[0] != '\0')
        fprintf(stderr, "kortvagt blocklist %s: %s (%s)\n", cmd, why, kv_strerror(r));
    else
        fprintf(stderr, "kortvagt blocklist %s: %s\n", cmd, kv_strerror(r));
    return kv_exit_code(r);
}

static int not_listed(const char *cmd, const char *pan, int json)
{
    char masked[KV_PAN_MASKED_MAX];
    kv_pan_mask(pan, masked);
    if (json)
        print_json(json_pack("{sbss}", "listed", 0, "pan", masked));
    else
        printf("%s is not on the block list\n", masked);
    (void)cmd;
    return KV_EXIT_MISMATCH;
}

static json_t *entry_json(const kv_blocklist *bl, const kv_bl_entry *e)
{
    char recipients[KV_BL_TEXT_MAX];
    json_t *j = json_object();
    if (j == NULL)
        return NULL;
    json_object_set_new(j, "listed", json_true());
    json_object_set_new(j, "pan", json_string(e->pan_masked));
    json_object_set_new(j, "source",
                        json_string(e->source == KV_BL_SOURCE_ISSUER ? "issuer" : "cardholder"));
    json_object_set_new(j, "listed_at", time_json(e->listed_at));
    json_object_set_new(j, "notified_at",
                        kv_bl_entry_is_report(e) ? time_json(e->listed_at) : json_null());
    json_object_set_new(j, "expires_at",
                        e->expiry_yymm == 0 ? json_null() : time_json(e->expires_at));
    json_object_set_new(j, "notice_due", json_boolean(kv_bl_entry_notice_due(e)));
    if (kv_bl_recipients_of(bl, e, recipients, sizeof(recipients)) == 0)
        json_object_set_new(j, "recipients", json_string(recipients));
    return j;
}

static void entry_text(const kv_blocklist *bl, const kv_bl_entry *e)
{
    char t[KV_TIME_TEXT], recipients[KV_BL_TEXT_MAX];
    kv_time_format(e->listed_at, t);
    printf("%s is blocked\n", e->pan_masked);
    printf("  listed at:   %s (%s)\n", t,
           e->source == KV_BL_SOURCE_ISSUER ? "issuer-initiated" : "cardholder's report");
    if (kv_bl_entry_is_report(e))
        printf("  notified_at: %s (the liability case's notification time)\n", t);
    if (e->expiry_yymm == 0) {
        printf("  deleted by:  no expiry given: when recovered, replaced or removed\n");
    } else {
        kv_time_format(e->expires_at, t);
        printf("  deleted by:  %s (end of expiry month %02d/%02d)\n", t, e->expiry_yymm % 100,
               e->expiry_yymm / 100);
    }
    printf("  notice due:  %s\n", kv_bl_entry_notice_due(e) ? "yes" : "no");
    if (kv_bl_recipients_of(bl, e, recipients, sizeof(recipients)) == 0)
        printf("  recipients:  %s\n", recipients[0] ? recipients : "(none yet)");
}

static int wallet_count_cb(void *ctx, const kv_bl_wallet *w)
{
    (void)w;
    (*(int *)ctx)++;
    return 0;
}

static int cmd_add(bl_env *env, const bl_opts *o)
{
    kv_bl_add_req req;
    kv_bl_entry e;
    char err[256];
    int64_t at;
    int rc, r, nw = 0;

    memset(&req, 0, sizeof(req));
    if ((rc = need_pan("add", o->pan)) != 0 || (rc = need("add", "reason", o->reason)) != 0 ||
        (rc = time_opt("add", "at", o->at, &at)))
        return rc;
    req.pan = o->pan;
    if (kv_bl_reason_parse(o->reason, &req.reason) != 0)
        return kv_cli_usage_error("blocklist",
                                  "add: --reason '%s' is not one of lost, stolen, "
                                  "suspected_misuse, suspected_copy, account_closed, "
                                  "renewed_not_returned, overdraft, unusual_pattern, "
                                  "cardholder_request",
                                  o->reason);
    if (o->expiry != NULL && kv_bl_expiry_parse(o->expiry, &req.expiry_yymm) != 0)
        return kv_cli_usage_error("blocklist", "add: --expiry '%s' is not YYMM (e.g. 2612)",
                                  o->expiry);
    req.source = kv_bl_default_source(req.reason);
    if (o->source != NULL) {
        if (strcmp(o->source, "cardholder") == 0)
            req.source = KV_BL_SOURCE_CARDHOLDER;
        else if (strcmp(o->source, "issuer") == 0)
            req.source = KV_BL_SOURCE_ISSUER;
        else
            return kv_cli_usage_error("blocklist", "add: --source '%s' is not cardholder|issuer",
                                      o->source);
    }
    if (o->reminders != NULL) {
        char *end;
        long v = strtol(o->reminders, &end, 10);
        if (o->reminders[0] < '0' || o->reminders[0] > '9' || *end != '\0' || v > 1000)
            return kv_cli_usage_error("blocklist", "add: --reminders '%s' is not a count 0..1000",
                                      o->reminders);
        req.reminders = (int)v;
    }
    if (o->report != NULL) {
        static const char *const names[] = {"", "lost", "stolen", "defective", "destroyed"};
        int hit = 0;
        for (int i = 1; i <= 4; i++)
            if (strcmp(o->report, names[i]) == 0) {
                req.report = (kv_bl_report)i;
                hit = 1;
            }
        if (!hit)
            return kv_cli_usage_error("blocklist",
                                      "add: --report '%s' is not lost|stolen|defective|destroyed",
                                      o->report);
    }
    for (size_t i = 0; i < o->n_wallet; i++)
        if (!kv_pan_valid(o->wallet[i]))
            return kv_cli_usage_error("blocklist", "add: --wallet-token must be 12..19 digits");
    memcpy(req.wallet_tokens, o->wallet, sizeof(o->wallet));
    req.n_wallet = o->n_wallet;
    if ((r = kv_bl_add(&env->bl, &req, at, &e, err, sizeof(err))) != 0) {
        if (r == KV_ERR_ARG)
            return kv_cli_usage_error("blocklist", "add: %s", err);
        return engine_fail("add", r, err);
    }
    kv_store_bl_wallet_scan(env->bl.store, e.token, wallet_count_cb, &nw);
    if (o->json) {
        json_t *j = entry_json(&env->bl, &e);
        if (j != NULL)
            json_object_set_new(j, "wallet_tokens", json_integer(nw));
        return print_json(j);
    }
    entry_text(&env->bl, &e);
    if (nw > 0)
        printf("  wallet tokens blocked with it: %d\n", nw);
    return KV_EXIT_OK;
}

static int cmd_check(bl_env *env, const bl_opts *o)
{
    int rc, r, blocked = 0;
    if ((rc = need_pan("check", o->pan)) != 0)
        return rc;
    if ((r = kv_bl_check(&env->bl, o->pan, &blocked)) != 0)
        return engine_fail("check", r, NULL);
    if (o->json)
        return print_json(json_pack("{sb}", "blocked", blocked));
    printf("%s\n", blocked ? "blocked" : "not blocked");
    return KV_EXIT_OK;
}

static int cmd_show(bl_env *env, const bl_opts *o)
{
    kv_bl_entry e;
    int rc, r, found = 0;
    if ((rc = need_pan("show", o->pan)) != 0)
        return rc;
    if ((r = kv_bl_show(&env->bl, o->pan, &e, &found)) != 0)
        return engine_fail("show", r, NULL);
    if (!found)
        return not_listed("show", o->pan, o->json);
    if (o->json)
        return print_json(entry_json(&env->bl, &e));
    entry_text(&env->bl, &e);
    return KV_EXIT_OK;
}

static int cmd_recovered(bl_env *env, const bl_opts *o)
{
    char masked[KV_PAN_MASKED_MAX];
    int rc, r, deleted = 0;
    if ((rc = need_pan("recovered", o->pan)) != 0)
        return rc;
    r = kv_bl_recovered(&env->bl, o->pan, &deleted);
    if (r == KV_ERR_NOT_FOUND)
        return not_listed("recovered", o->pan, o->json);
    if (r != 0)
        return engine_fail("recovered", r, NULL);
    kv_pan_mask(o->pan, masked);
    if (o->json)
        return print_json(json_pack("{sssb}", "pan", masked, "deleted", deleted));
    if (deleted)
        printf("%s recovered: deleted from the block list\n", masked);
    else
        printf("%s recovered: kept on the block list (listed for misuse or suspected "
               "copying)\n",
               masked);
    return KV_EXIT_OK;
}

static int cmd_replaced(bl_env *env, const bl_opts *o)
{
    char masked[KV_PAN_MASKED_MAX];
    int rc, r;
    if ((rc = need_pan("replaced", o->pan)) != 0)
        return rc;
    r = kv_bl_replaced(&env->bl, o->pan);
    if (r == KV_ERR_NOT_FOUND)
        return not_listed("replaced", o->pan, o->json);
    if (r != 0)
        return engine_fail("replaced", r, NULL);
    kv_pan_mask(o->pan, masked);
    if (o->json)
        return print_json(json_pack("{sssb}", "pan", masked, "deleted", 1));
    printf("%s replaced: deleted from the block list\n", masked);
    return KV_EXIT_OK;
}

static int print_correction(const kv_bl_correction *c)
{
    printf("%s %s: correction #%lld sent to: %s\n", c->pan_masked,
           c->deleted ? "deleted as wrong" : "reason corrected", (long long)c->id,
           c->recipients[0] ? c->recipients : "(no recipient has received the list)");
    return KV_EXIT_OK;
}

static int cmd_correct(bl_env *env, const bl_opts *o, int remove)
{
    const char *cmd = remove ? "remove" : "correct";
    kv_bl_correction c;
    kv_bl_reason reason = KV_BL_LOST;
    char err[256] = "";
    int64_t at;
    int rc, r;
    if ((rc = need_pan(cmd, o->pan)) != 0 || (rc = time_opt(cmd, "at", o->at, &at)) != 0)
        return rc;
    if (!remove) {
        if ((rc = need(cmd, "reason", o->reason)) != 0)
            return rc;
        if (kv_bl_reason_parse(o->reason, &reason) != 0)
            return kv_cli_usage_error("blocklist", "correct: --reason '%s' is not a reason",
                                      o->reason);
        r = kv_bl_correct(&env->bl, o->pan, reason, at, &c, err, sizeof(err));
    } else {
        r = kv_bl_remove(&env->bl, o->pan, at, &c);
    }
    if (r == KV_ERR_NOT_FOUND)
        return not_listed(cmd, o->pan, o->json);
    if (r != 0)
        return engine_fail(cmd, r, err);
    if (o->json) {
        char t[KV_TIME_TEXT];
        kv_time_format(c.at, t);
        return print_json(json_pack("{sIsssssssb}", "id", (json_int_t)c.id, "pan", c.pan_masked,
                                    "at", t, "recipients", c.recipients, "deleted", c.deleted));
    }
    return print_correction(&c);
}

static int cmd_purge(bl_env *env, const bl_opts *o)
{
    int64_t now;
    int rc, r, n = 0;
    if ((rc = time_opt("purge", "now", o->now, &now)) != 0)
        return rc;
    if ((r = kv_bl_purge(&env->bl, now, &n)) != 0)
        return engine_fail("purge", r, NULL);
    if (o->json)
        return print_json(json_pack("{si}", "purged", n));
    printf("purged %d entr%s whose expiry month has ended\n", n, n == 1 ? "y" : "ies");
    return KV_EXIT_OK;
}

static int export_print(void *ctx, const char *number)
{
    json_t *arr = ctx;
    if (arr != NULL)
        return json_array_append_new(arr, json_string(number)) == 0 ? 0 : KV_ERR_NOMEM;
    printf("%s\n", number);
    return 0;
}

static int cmd_export(bl_env *env, const bl_opts *o)
{
    json_t *arr = NULL;
    int64_t at;
    int rc, r;
    if ((rc = time_opt("export", "at", o->at, &at)) != 0)
        return rc;
    if (o->to != NULL && (o->to[0] == '\0' || strlen(o->to) >= KV_BL_NAME_MAX))
        return kv_cli_usage_error("blocklist", "export: --to must be a name of 1..%d bytes",
                                  KV_BL_NAME_MAX - 1);
    if (o->json && (arr = json_array()) == NULL)
        return kv_cli_fail(KV_ERR_NOMEM, "blocklist export");
    if ((r = kv_bl_export(&env->bl, o->to, at, export_print, arr)) != 0) {
        json_decref(arr);
        return engine_fail("export", r, NULL);
    }
    if (arr != NULL)
        return print_json(json_pack("{so}", "numbers", arr));
    return KV_EXIT_OK;
}

static int cmd_notice(bl_env *env, const bl_opts *o)
{
    char *text = NULL;
    int rc, r, due = 0;
    if ((rc = need_pan("notice", o->pan)) != 0)
        return rc;
    r = kv_bl_notice(&env->bl, o->pan, &due, &text);
    if (r == KV_ERR_NOT_FOUND)
        return not_listed("notice", o->pan, o->json);
    if (r != 0)
        return engine_fail("notice", r, NULL);
    if (o->json) {
        rc = print_json(json_pack("{sbs?}", "due", due, "text", text));
    } else if (due) {
        fputs(text, stdout);
        rc = KV_EXIT_OK;
    } else {
        printf("no notice is due: the cardholder reported the card lost, stolen, defective or "
               "destroyed\n");
        rc = KV_EXIT_OK;
    }
    free(text);
    return rc;
}

static int cmd_request(bl_env *env, const bl_opts *o, const char *sub)
{
    int64_t at;
    int rc, r;
    if ((rc = time_opt("request", "at", o->at, &at)) != 0)
        return rc;
    if (strcmp(sub, "add") == 0) {
        kv_bl_request q;
        kv_bl_request_kind kind;
        char t[KV_TIME_TEXT];
        if ((rc = need_pan("request add", o->pan)) != 0 ||
            (rc = need("request add", "kind", o->kind)) != 0)
            return rc;
        if (strcmp(o->kind, "access") == 0)
            kind = KV_BL_REQUEST_ACCESS;
        else if (strcmp(o->kind, "objection") == 0)
            kind = KV_BL_REQUEST_OBJECTION;
        else
            return kv_cli_usage_error("blocklist",
                                      "request add: --kind '%s' is not "
                                      "access|objection",
                                      o->kind);
        if ((r = kv_bl_request_add(&env->bl, o->pan, kind, at, &q)) != 0)
            return engine_fail("request add", r, NULL);
        kv_time_format(q.due, t);
        if (o->json)
            return print_json(
                json_pack("{sIssss}", "id", (json_int_t)q.id, "pan", q.pan_masked, "due", t));
        printf("request #%lld (%s, %s) recorded; answer due by %s\n", (long long)q.id, o->kind,
               q.pan_masked, t);
        return KV_EXIT_OK;
    }
    if (strcmp(sub, "answer") == 0) {
        char *end;
        long long id;
        if ((rc = need("request answer", "id", o->id)) != 0)
            return rc;
        id = strtoll(o->id, &end, 10);
        if (o->id[0] < '1' || o->id[0] > '9' || *end != '\0')
            return kv_cli_usage_error("blocklist", "request answer: --id '%s' is not a number",
                                      o->id);
        r = kv_bl_request_answer(&env->bl, id, at);
        if (r == KV_ERR_NOT_FOUND) {
            fprintf(stderr, "kortvagt blocklist request answer: no request #%lld\n", id);
            return KV_EXIT_MISMATCH;
        }
        if (r != 0)
            return engine_fail("request answer", r, NULL);
        if (o->json)
            return print_json(json_pack("{sIsb}", "id", (json_int_t)id, "answered", 1));
        printf("request #%lld answered\n", id);
        return KV_EXIT_OK;
    }
    return kv_cli_usage_error("blocklist", "request: unknown subcommand '%s' (add|answer)", sub);
}

typedef struct {
    int64_t now;
    json_t *arr;
    int overdue;
} requests_ctx;

static int request_cb(void *ctx, const kv_bl_request *q)
{
    requests_ctx *c = ctx;
    char at[KV_TIME_TEXT], due[KV_TIME_TEXT], ans[KV_TIME_TEXT];
    int overdue = kv_bl_request_overdue(q, c->now);
    const char *kind = q->kind == KV_BL_REQUEST_OBJECTION ? "objection" : "access";
    const char *status = q->answered_at != 0 ? "answered" : overdue ? "overdue" : "due";
    kv_time_format(q->at, at);
    kv_time_format(q->due, due);
    kv_time_format(q->answered_at, ans);
    c->overdue += overdue;
    if (c->arr != NULL) {
        json_t *j =
            json_pack("{sIsssssssssssbso}", "id", (json_int_t)q->id, "kind", kind, "pan",
                      q->pan_masked, "received", at, "due", due, "status", status, "overdue",
                      overdue, "answered_at", q->answered_at != 0 ? json_string(ans) : json_null());
        return j != NULL && json_array_append_new(c->arr, j) == 0 ? 0 : KV_ERR_NOMEM;
    }
    printf("#%-4lld %-9s %-20s received %s  due %s  %s\n", (long long)q->id, kind, q->pan_masked,
           at, due,
           overdue               ? "OVERDUE"
           : q->answered_at != 0 ? "answered"
                                 : "open");
    return 0;
}

static int cmd_requests(bl_env *env, const bl_opts *o)
{
    requests_ctx c = {0, NULL, 0};
    int rc, r;
    if ((rc = time_opt("requests", "now", o->now, &c.now)) != 0)
        return rc;
    if (o->json && (c.arr = json_array()) == NULL)
        return kv_cli_fail(KV_ERR_NOMEM, "blocklist requests");
    if ((r = kv_bl_requests(&env->bl, request_cb, &c)) != 0) {
        json_decref(c.arr);
        return engine_fail("requests", r, NULL);
    }
    if (c.arr != NULL)
        return print_json(json_pack("{sosi}", "requests", c.arr, "overdue", c.overdue));
    printf("%d overdue\n", c.overdue);
    return KV_EXIT_OK;
}

static int correction_cb(void *ctx, const kv_bl_correction *c)
{
    json_t *arr = ctx;
    char t[KV_TIME_TEXT];
    kv_time_format(c->at, t);
    if (arr != NULL) {
        json_t *j = json_pack("{sIsssssssb}", "id", (json_int_t)c->id, "pan", c->pan_masked, "at",
                              t, "recipients", c->recipients, "deleted", c->deleted);
        return j != NULL && json_array_append_new(arr, j) == 0 ? 0 : KV_ERR_NOMEM;
    }
    printf("#%-4lld %s %-20s %-16s sent to: %s\n", (long long)c->id, t, c->pan_masked,
           c->deleted ? "deleted" : "reason corrected",
           c->recipients[0] ? c->recipients : "(none)");
    return 0;
}

static int recipient_cb(void *ctx, const kv_bl_recipient *rc)
{
    json_t *arr = ctx;
    char a[KV_TIME_TEXT], b[KV_TIME_TEXT];
    kv_time_format(rc->first_at, a);
    kv_time_format(rc->last_at, b);
    if (arr != NULL) {
        json_t *j = json_pack("{ssssss}", "name", rc->name, "first_at", a, "last_at", b);
        return j != NULL && json_array_append_new(arr, j) == 0 ? 0 : KV_ERR_NOMEM;
    }
    printf("%s (first %s, last %s)\n", rc->name, a, b);
    return 0;
}

static int cmd_log(bl_env *env, const bl_opts *o, int recipients)
{
    json_t *arr = NULL;
    int r;
    if (o->json && (arr = json_array()) == NULL)
        return kv_cli_fail(KV_ERR_NOMEM, "blocklist");
    r = recipients ? kv_store_bl_recipient_scan(env->bl.store, recipient_cb, arr)
                   : kv_store_bl_correction_scan(env->bl.store, correction_cb, arr);
    if (r != 0) {
        json_decref(arr);
        return engine_fail(recipients ? "recipients" : "corrections", r, NULL);
    }
    if (arr != NULL)
        return print_json(json_pack("{so}", recipients ? "recipients" : "corrections", arr));
    return KV_EXIT_OK;
}

/* Check what can be checked before the HSM and the store are opened. */
static int validate(const char *cmd, const char *sub, const bl_opts *o)
{
    static const char *const need_pan_cmds[] = {
        "add", "check", "show", "recovered", "replaced", "correct", "remove", "notice", NULL};
    kv_bl_reason reason;
    int64_t t;
    int yymm, rc;
    for (int i = 0; need_pan_cmds[i] != NULL; i++)
        if (strcmp(cmd, need_pan_cmds[i]) == 0 && (rc = need_pan(cmd, o->pan)) != 0)
            return rc;
    if (sub != NULL && strcmp(sub, "add") == 0 &&
        ((rc = need_pan("request add", o->pan)) != 0 ||
         (rc = need("request add", "kind", o->kind)) != 0))
        return rc;
    if (sub != NULL && strcmp(sub, "answer") == 0 && (rc = need("request answer", "id", o->id)))
        return rc;
    if ((strcmp(cmd, "add") == 0 || strcmp(cmd, "correct") == 0) &&
        (rc = need(cmd, "reason", o->reason)) != 0)
        return rc;
    if (o->pan != NULL && (rc = need_pan(cmd, o->pan)) != 0)
        return rc;
    if (o->reason != NULL && kv_bl_reason_parse(o->reason, &reason) != 0)
        return kv_cli_usage_error("blocklist",
                                  "%s: --reason '%s' is not one of lost, stolen, "
                                  "suspected_misuse, suspected_copy, account_closed, "
                                  "renewed_not_returned, overdraft, unusual_pattern, "
                                  "cardholder_request",
                                  cmd, o->reason);
    if (o->expiry != NULL && kv_bl_expiry_parse(o->expiry, &yymm) != 0)
        return kv_cli_usage_error("blocklist", "%s: --expiry '%s' is not YYMM (e.g. 2612)", cmd,
                                  o->expiry);
    if ((rc = time_opt(cmd, "at", o->at, &t)) != 0 || (rc = time_opt(cmd, "now", o->now, &t)))
        return rc;
    return KV_EXIT_OK;
}

int kv_cmd_blocklist(int argc, char **argv)
{
    static const char *const cmds[] = {
        "add",    "check",  "show",    "recovered", "replaced",    "correct",    "remove", "purge",
        "export", "notice", "request", "requests",  "corrections", "recipients", NULL};
    bl_opts o;
    bl_env env;
    const char *cmd, *sub = NULL;
    int first = 2, rc, known = 0;

    memset(&o, 0, sizeof(o));
    if (argc < 2) {
        blocklist_usage(stderr);
        return KV_EXIT_USAGE;
    }
    cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        blocklist_usage(stdout);
        return KV_EXIT_OK;
    }
    for (int i = 0; cmds[i] != NULL; i++)
        known |= strcmp(cmd, cmds[i]) == 0;
    if (!known)
        return kv_cli_usage_error("blocklist", "unknown command '%s'", cmd);
    if (strcmp(cmd, "request") == 0) {
        if (argc < 3 || strncmp(argv[2], "--", 2) == 0) {
            if (argc >= 3 && (strcmp(argv[2], "--help") == 0)) {
                blocklist_usage(stdout);
                return KV_EXIT_OK;
            }
            return kv_cli_usage_error("blocklist", "request: add or answer?");
        }
        sub = argv[2];
        first = 3;
    }
    if ((rc = parse(cmd, argc, argv, first, &o)) != 0)
        return rc;
    if (o.help) {
        blocklist_usage(stdout);
        return KV_EXIT_OK;
    }
    if ((rc = validate(cmd, sub, &o)) != 0)
        return rc;
    if ((rc = env_open(cmd, &o, &env)) != 0)
        return rc;
    if (strcmp(cmd, "add") == 0)
        rc = cmd_add(&env, &o);
    else if (strcmp(cmd, "check") == 0)
        rc = cmd_check(&env, &o);
    else if (strcmp(cmd, "show") == 0)
        rc = cmd_show(&env, &o);
    else if (strcmp(cmd, "recovered") == 0)
        rc = cmd_recovered(&env, &o);
    else if (strcmp(cmd, "replaced") == 0)
        rc = cmd_replaced(&env, &o);
    else if (strcmp(cmd, "correct") == 0)
        rc = cmd_correct(&env, &o, 0);
    else if (strcmp(cmd, "remove") == 0)
        rc = cmd_correct(&env, &o, 1);
    else if (strcmp(cmd, "purge") == 0)
        rc = cmd_purge(&env, &o);
    else if (strcmp(cmd, "export") == 0)
        rc = cmd_export(&env, &o);
    else if (strcmp(cmd, "notice") == 0)
        rc = cmd_notice(&env, &o);
    else if (strcmp(cmd, "request") == 0)
        rc = cmd_request(&env, &o, sub);
    else if (strcmp(cmd, "requests") == 0)
        rc = cmd_requests(&env, &o);
    else
        rc = cmd_log(&env, &o, strcmp(cmd, "recipients") == 0);
    env_close(&env);
    return rc;
}

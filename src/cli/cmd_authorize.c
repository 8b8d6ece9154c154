/* `kortvagt authorize`: one authorization decision per src/RULES.md §1 (see cli.h, authorize.h). */
#include "src/authorize/authorize.h"
#include "src/authorize/request.h"
#include "src/app/app.h"
#include "src/base/err.h"
#include "src/base/secure.h"
#include "src/cli/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define REQUEST_MAX_INPUT (1024u * 1024)

static void authorize_usage(FILE *f)
{
    fprintf(f,
            "Usage: kortvagt authorize FILE|- [--json] [--batch]\n"
            "       kortvagt authorize --reverse ID [--json]\n\n"
            "Decide an authorization request (src/RULES.md §1): block list, the HSM checks of\n"
            "pin_online / chip_cryptogram / cvc3 / cvc2 factors that carry key material,\n"
            "SCA (two categories, dynamic linking for ecommerce, one-time codes, 5 failures\n"
            "block), the exemptions in src/RULES.md order with the card's counters, the ATM,\n"
            "gambling and per-card daily limits (Europe/Copenhagen calendar days) and\n"
            "e-commerce on/off. The decision, the counter updates and a hash-chained,\n"
            "HSM-MAC'd evidence record are written in one store transaction.\n\n"
            "FILE is the request JSON ('-' reads standard input; then the token PIN must\n"
            "come from KORTVAGT_PIN or KORTVAGT_PIN_FILE). Money is in minor units (øre).\n\n"
            "Options:\n"
            "  --json          print the response JSON of src/RULES.md §1 (one line)\n"
            "  --batch         FILE holds one request per line; one response line each\n"
            "                  (always JSON; a bad line gives {\"error\": ...} and exit 2 at end)\n"
            "  --reverse ID    take the approved authorization with evidence id ID back out\n"
            "                  of the counters and daily sums (a reversal)\n"
            "  --store URL     sqlite:PATH (default $KORTVAGT_STORE, [store] url, then\n"
            "                  sqlite:./kortvagt.db)\n"
            "  --config PATH   the INI file with [limits] (default $KORTVAGT_CONFIG,\n"
            "                  ./kortvagt.conf, /etc/kortvagt/kortvagt.conf)\n"
            "  --help          show this help\n\n"
            "Required request fields: card.pan, card.expiry, channel, amount, currency,\n"
            "merchant.name, merchant.mcc; \"at\" defaults to now, factors to [].\n"
            "\"request_id\" (1..64 printable characters) makes a retry safe: a repeat for\n"
            "the same card gets the stored answer and is counted once.\n\n"
            "\"reason\" of a response: for decline the code of src/RULES.md §1 (card_blocked,\n"
            "card_expired, pin_incorrect, cryptogram_invalid, cvc_invalid, ecommerce_disabled,\n"
            "limit_atm_daily, limit_gambling_daily, limit_card, sca_failed_attempts,\n"
            "pin_tries_exceeded, code_tries_exceeded, store_tampered); for\n"
            "approve sca_satisfied, the exemption, or moto_out_of_scope; for sca_required\n"
            "what is missing: contactless_single_max, contactless_counter, remote_single_max,\n"
            "remote_counter, dynamic_linking (a code not bound to this amount and payee)\n"
            "or sca_required. \"counters\" shows the channel family's counter after the\n"
            "decision (contactless_count|_amount, remote_count|_amount; none for moto).\n\n"
            "Environment: KORTVAGT_PKCS11_MODULE, KORTVAGT_TOKEN, KORTVAGT_PIN, KORTVAGT_STORE.\n\n"
            "Exit codes: 0 a decision was made and printed (approve, sca_required or\n"
            "decline alike: read \"decision\"), or the reversal was recorded; 2 usage error or\n"
            "a request that breaks the contract (the message names the field) or an unknown\n"
            "ID; 5 HSM (e.g. a key the request names does not exist); 6 store; 7 the\n"
            "authorization cannot be reversed; 8 I/O.\n");
}

struct opts {
    const char *file;
    const char *store;
    const char *config;
    const char *reverse;
    int json;
    int batch;
};

static int parse(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof(*o));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            authorize_usage(stdout);
            return -1;
        } else if (strcmp(a, "--json") == 0) {
            o->json = 1;
        } else if (strcmp(a, "--batch") == 0) {
            o->batch = 1;
        } else if (strcmp(a, "--reverse") == 0 || strcmp(a, "--store") == 0 ||
                   strcmp(a, "--config") == 0) {
            if (i + 1 >= argc)
                return kv_cli_usage_error("authorize", "%s needs a value", a);
            const char *v = argv[++i];
            if (strcmp(a, "--reverse") == 0)
                o->reverse = v;
            else if (strcmp(a, "--store") == 0)
                o->store = v;
            else
                o->config = v;
        } else if (a[0] == '-' && a[1] != '\0') {
            return kv_cli_usage_error("authorize", "unknown option '%s'", a);
        } else if (o->file == NULL) {
            o->file = a;
        } else {
            return kv_cli_usage_error("authorize", "more than one request file ('%s')", a);
        }
    }
    if (o->reverse != NULL && (o->file != NULL || o->batch))
        return kv_cli_usage_error("authorize", "--reverse takes no request file");
    if (o->reverse == NULL && o->file == NULL)
        return kv_cli_usage_error("authorize", "no request file (FILE or - for stdin)");
    return 0;
}

static int print_json(json_t *j)
{
    char *text = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (text == NULL)
        return kv_cli_fail(KV_ERR_NOMEM, "authorize");
    printf("%s\n", text);
    fflush(stdout);
    free(text);
    return KV_EXIT_OK;
}

static void print_human(const kv_authz_result *res)
{
    const char *names[3];
    size_t n = kv_sca_category_names(res->sca.categories, names);
    printf("decision   %s\n", kv_decision_name(res->decision));
    printf("reason     %s\n", res->reason);
    printf("rule       %s\n", res->rule);
    printf("sca        %s (", res->sca.satisfied ? "satisfied" : "not satisfied");
    for (size_t i = 0; i < n; i++)
        printf("%s%s", i ? ", " : "", names[i]);
    printf("%s)", n == 0 ? "no category" : "");
    if (res->sca.dynamic_linking >= 0)
        printf(", dynamic linking %s", res->sca.dynamic_linking ? "ok" : "missing");
    printf("\n");
    if (res->exemption != NULL)
        printf("exemption  %s\n", res->exemption);
    if (res->has_counter) {
        json_t *j = kv_authz_result_json(res, 0);
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(j, "counters"), k, v)
        {
            printf("counter    %s = %lld\n", k, (long long)json_integer_value(v));
        }
        json_decref(j);
    }
    printf("evidence   %lld\n", (long long)res->evidence_id);
    fflush(stdout);
}

static int session_open(const struct opts *o, kv_app **s)
{
    kv_app_opts so = {.config = o->config, .store = o->store};
    char err[1024];
    int r = kv_app_open(&so, s, err, sizeof(err));
    if (r != 0) {
        fprintf(stderr, "kortvagt authorize: %s\n", err);
        return kv_exit_code(r);
    }
    return KV_EXIT_OK;
}

/* Decide one request text; prints the response. Returns an exit code. */
static int decide_one(kv_app *s, const char *text, size_t len, int json, int batch)
{
    kv_auth_request *req = calloc(1, sizeof(*req));
    kv_authz_result res;
    char err[512];
    int r, rc;

    if (req == NULL)
        return kv_cli_fail(KV_ERR_NOMEM, "authorize");
    if ((r = kv_auth_request_parse(text, len, req, err, sizeof(err))) != 0) {
        if (batch) {
            json_t *e = json_pack("{ss}", "error", err);
            print_json(e);
            json_decref(e);
        }
        rc = kv_cli_usage_error("authorize", "%s", err);
        goto out;
    }
    if ((r = kv_authz_decide(kv_app_authz(s), req, &res)) != 0) {
        const char *why = kv_authz_last_error(kv_app_authz(s));
        if (batch) {
            json_t *e = json_pack("{ss}", "error", why);
            print_json(e);
            json_decref(e);
        }
        fprintf(stderr, "kortvagt authorize: %s\n", why[0] ? why : kv_strerror(r));
        rc = kv_exit_code(r);
        goto out;
    }
    if (strcmp(res.reason, "store_tampered") == 0)
        fprintf(stderr, "kortvagt authorize: store_tampered: %s\n",
                kv_authz_last_error(kv_app_authz(s)));
    if (json || batch) {
        json_t *j = kv_authz_result_json(&res, 1);
        rc = print_json(j);
        json_decref(j);
    } else {
        print_human(&res);
        rc = KV_EXIT_OK;
    }
out:
    kv_auth_request_wipe(req);
    free(req);
    return rc;
}

static int run_batch(kv_app *s, const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = KV_EXIT_OK, lineno = 0;

    if (f == NULL) {
        fprintf(stderr, "kortvagt authorize: %s: %s\n", path, strerror(errno));
        return KV_EXIT_IO;
    }
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0)
            continue;
        int one = decide_one(s, line, (size_t)n, 1, 1);
        if (one == KV_EXIT_USAGE) {
            fprintf(stderr, "kortvagt authorize: (line %d)\n", lineno);
            rc = KV_EXIT_USAGE;
        } else if (one != KV_EXIT_OK) {
            rc = one; /* store or HSM trouble: stop */
            break;
        }
    }
    if (line != NULL)
        kv_wipe(line, cap);
    free(line);
    if (f != stdin)
        fclose(f);
    return rc;
}

static int run_reverse(kv_app *s, const char *id_text, int json)
{
    kv_authz_reversal rv;
    char *end;
    long long id;
    int r;

    errno = 0;
    id = strtoll(id_text, &end, 10);
    if (errno != 0 || *end != '\0' || id <= 0 || id_text[0] < '0' || id_text[0] > '9')
        return kv_cli_usage_error("authorize", "--reverse: '%s' is not an evidence id", id_text);
    r = kv_authz_reverse(kv_app_authz(s), id, &rv);
    if (r == KV_ERR_NOT_FOUND) {
        fprintf(stderr, "kortvagt authorize: %s\n", kv_authz_last_error(kv_app_authz(s)));
        return KV_EXIT_USAGE;
    }
    if (r != 0) {
        fprintf(stderr, "kortvagt authorize: %s\n", kv_authz_last_error(kv_app_authz(s)));
        return kv_exit_code(r);
    }
    if (json) {
        json_t *j = kv_authz_reversal_json(&rv);
        int rc = print_json(j);
        json_decref(j);
        return rc;
    }
    printf("reversed   %lld\nevidence   %lld\n", (long long)rv.reversed_id,
           (long long)rv.evidence_id);
    if (rv.has_counter) {
        json_t *j = kv_authz_reversal_json(&rv);
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(j, "counters"), k, v)
        {
            printf("counter    %s = %lld\n", k, (long long)json_integer_value(v));
        }
        json_decref(j);
    }
    return KV_EXIT_OK;
}

int kv_cmd_authorize(int argc, char **argv)
{
    struct opts o;
    kv_app *s = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc, r;

    if ((rc = parse(argc, argv, &o)) != 0)
        return rc < 0 ? KV_EXIT_OK : rc;
    kv_disable_core_dumps(); /* requests carry PIN blocks */
    if (o.reverse == NULL && !o.batch) {
        /* read the request first: a broken request needs no HSM login */
        if ((r = kv_cli_read_input(o.file, REQUEST_MAX_INPUT, &text, &len)) != 0) {
            fprintf(stderr, "kortvagt authorize: %s: %s\n", o.file,
                    r == KV_ERR_BUFFER ? "request larger than 1 MiB" : kv_strerror(r));
            return r == KV_ERR_BUFFER ? KV_EXIT_USAGE : kv_exit_code(r);
        }
        kv_auth_request *req = calloc(1, sizeof(*req));
        char err[512];
        if (req == NULL) {
            rc = kv_cli_fail(KV_ERR_NOMEM, "authorize");
            goto out;
        }
        r = kv_auth_request_parse(text, len, req, err, sizeof(err));
        kv_auth_request_wipe(req);
        free(req);
        if (r != 0) {
            rc = kv_cli_usage_error("authorize", "%s", err);
            goto out;
        }
    }
    if ((rc = session_open(&o, &s)) != KV_EXIT_OK)
        goto out;
    if (o.reverse != NULL)
        rc = run_reverse(s, o.reverse, o.json);
    else if (o.batch)
        rc = run_batch(s, o.file);
    else
        rc = decide_one(s, text, len, o.json, 0);
out:
    kv_app_close(s);
    if (text != NULL)
        kv_wipe(text, len);
    free(text);
    return rc;
}

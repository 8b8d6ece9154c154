/* `kortvagt evidence`: show, verify and export the evidence chain (see cli.h, evidence.h). */
#include "src/app/app.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/cli/cli.h"
#include "src/config/config.h"
#include "src/evidence/evidence.h"
#include "src/base/caltime.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void evidence_usage(FILE *f)
{
    fprintf(f,
            "Usage: kortvagt evidence show ID [--json]\n"
            "       kortvagt evidence verify [--json]\n"
            "       kortvagt evidence export [--from TIME] [--to TIME]\n\n"
            "Every authorization decision, reversal and card-settings change is one record in\n"
            "an append-only chain: each record holds the SHA-256 of the previous record and\n"
            "an HMAC-SHA256 computed in the HSM under the 'evidence' key.\n\n"
            "  show ID      print record ID and check its hash, its link to the previous\n"
            "               record and its MAC\n"
            "  verify       walk the whole chain; report the first broken record by id\n"
            "  export       print the records whose time (the transaction's time) is in\n"
            "               [--from, --to) as JSON lines: {\"id\",\"hash\",\"mac\",\"record\"};\n"
            "               TIME is RFC 3339 (2026-03-01T00:00:00Z); both are optional\n\n"
            "Options:\n"
            "  --json          machine output\n"
            "  --store URL     sqlite:PATH (default $KORTVAGT_STORE, [store] url, then\n"
            "                  sqlite:./kortvagt.db)\n"
            "  --config PATH   the INI file\n"
            "  --help          show this help\n\n"
            "Exit codes: 0 intact / exported, 1 a broken record or chain, 2 usage error or\n"
            "no such record, 5 HSM, 6 store, 8 I/O.\n");
}

struct opts {
    const char *cmd;
    const char *id;
    const char *from;
    const char *to;
    const char *store;
    const char *config;
    int json;
};

static int parse(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof(*o));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            evidence_usage(stdout);
            return -1;
        } else if (strcmp(a, "--json") == 0) {
            o->json = 1;
        } else if (strcmp(a, "--from") == 0 || strcmp(a, "--to") == 0 ||
                   strcmp(a, "--store") == 0 || strcmp(a, "--config") == 0) {
            if (i + 1 >= argc)
                return kv_cli_usage_error("evidence", "%s needs a value", a);
            const char *v = argv[++i];
            if (strcmp(a, "--from") == 0)
                o->from = v;
            else if (strcmp(a, "--to") == 0)
                o->to = v;
            else if (strcmp(a, "--store") == 0)
                o->store = v;
            else
                o->config = v;
        } else if (a[0] == '-' && a[1] != '\0') {
            return kv_cli_usage_error("evidence", "unknown option '%s'", a);
        } else if (o->cmd == NULL) {
            o->cmd = a;
        } else if (o->id == NULL && strcmp(o->cmd, "show") == 0) {
            o->id = a;
        } else {
            return kv_cli_usage_error("evidence", "unexpected argument '%s'", a);
        }
    }
    if (o->cmd == NULL)
        return kv_cli_usage_error("evidence", "no command (show, verify, export)");
    if (strcmp(o->cmd, "show") != 0 && strcmp(o->cmd, "verify") != 0 &&
        strcmp(o->cmd, "export") != 0)
        return kv_cli_usage_error("evidence", "unknown command '%s' (show, verify, export)",
                                  o->cmd);
    if (strcmp(o->cmd, "show") == 0 && o->id == NULL)
        return kv_cli_usage_error("evidence", "show needs a record ID");
    if ((o->from != NULL || o->to != NULL) && strcmp(o->cmd, "export") != 0)
        return kv_cli_usage_error("evidence", "--from and --to belong to export");
    return 0;
}

static int open_session(const struct opts *o, kv_app **s)
{
    kv_app_opts so = {.config = o->config, .store = o->store};
    char err[1024];
    int r = kv_app_open(&so, s, err, sizeof(err));
    if (r != 0) {
        fprintf(stderr, "kortvagt evidence: %s\n", err);
        return kv_exit_code(r);
    }
    return KV_EXIT_OK;
}

static int print_json(json_t *j)
{
    char *text = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (text == NULL)
        return kv_cli_fail(KV_ERR_NOMEM, "evidence");
    printf("%s\n", text);
    free(text);
    return KV_EXIT_OK;
}

static int cmd_show(const struct opts *o)
{
    kv_app *s = NULL;
    kv_evidence_record rec;
    char *end, hash[65], mac[65];
    long long id;
    int r, rc;

    memset(&rec, 0, sizeof(rec));
    errno = 0;
    id = strtoll(o->id, &end, 10);
    if (errno != 0 || *end != '\0' || id <= 0 || o->id[0] < '0' || o->id[0] > '9')
        return kv_cli_usage_error("evidence", "'%s' is not a record id", o->id);
    if ((rc = open_session(o, &s)) != KV_EXIT_OK)
        return rc;
    r = kv_evidence_load(kv_app_store(s), kv_app_evidence_mac(s), id, &rec);
    if (r == KV_ERR_NOT_FOUND) {
        fprintf(stderr, "kortvagt evidence: no record %lld\n", id);
        rc = KV_EXIT_USAGE;
        goto out;
    }
    if (r != 0) {
        fprintf(stderr, "kortvagt evidence: record %lld: %s\n", id,
                r <= KV_ERR_HSM && r > KV_ERR_STORE ? kv_hsm_last_error(kv_app_hsm(s))
                                                    : kv_store_last_error(kv_app_store(s)));
        rc = kv_exit_code(r);
        goto out;
    }
    kv_hex_encode(rec.hash, 32, hash);
    kv_hex_encode(rec.mac, 32, mac);
    if (o->json) {
        json_t *j =
            json_pack("{sIsbss?sssssO?}", "id", (json_int_t)rec.id, "intact", rec.intact, "why",
                      rec.intact ? NULL : rec.why, "hash", hash, "mac", mac, "record", rec.body);
        rc = print_json(j);
        json_decref(j);
    } else {
        char *pretty =
            rec.body != NULL ? json_dumps(rec.body, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        printf("record     %lld\n", (long long)rec.id);
        printf("chain      %s\n", rec.intact ? "intact (hash, link and MAC verified)" : rec.why);
        printf("hash       %s\nmac        %s\n", hash, mac);
        printf("%s\n", pretty != NULL ? pretty : rec.text);
        free(pretty);
        rc = KV_EXIT_OK;
    }
    if (rc == KV_EXIT_OK && !rec.intact) {
        fprintf(stderr, "kortvagt evidence: %s\n", rec.why);
        rc = KV_EXIT_MISMATCH;
    }
out:
    kv_evidence_record_clear(&rec);
    kv_app_close(s);
    return rc;
}

static int cmd_verify(const struct opts *o)
{
    kv_app *s = NULL;
    kv_evidence_report rep;
    char head[65];
    int r, rc;

    if ((rc = open_session(o, &s)) != KV_EXIT_OK)
        return rc;
    r = kv_evidence_verify_chain(kv_app_store(s), kv_app_evidence_mac(s), &rep);
    if (r != 0) {
        fprintf(stderr, "kortvagt evidence: verify: %s\n",
                r <= KV_ERR_HSM && r > KV_ERR_STORE ? kv_hsm_last_error(kv_app_hsm(s))
                                                    : kv_store_last_error(kv_app_store(s)));
        rc = kv_exit_code(r);
        goto out;
    }
    kv_hex_encode(rep.head_hash, 32, head);
    if (o->json) {
        json_t *j =
            rep.broken_id == 0
                ? json_pack("{sbsIsnsns{sIss}}", "intact", 1, "records", (json_int_t)rep.records,
                            "broken", "why", "head", "id", (json_int_t)rep.head_id, "hash", head)
                : json_pack("{sbsIsIsss{sIss}}", "intact", 0, "records", (json_int_t)rep.records,
                            "broken", (json_int_t)rep.broken_id, "why", rep.why, "head", "id",
                            (json_int_t)rep.head_id, "hash", head);
        rc = print_json(j);
        json_decref(j);
    } else if (rep.broken_id == 0) {
        printf("evidence chain intact: %lld records", (long long)rep.records);
        if (rep.records > 0)
            printf(", head %lld %s", (long long)rep.head_id, head);
        printf("\n");
    } else {
        printf("evidence chain broken at record %lld: %s (%lld records before it are intact)\n",
               (long long)rep.broken_id, rep.why, (long long)rep.records);
    }
    if (rc == KV_EXIT_OK && rep.broken_id != 0)
        rc = KV_EXIT_MISMATCH;
out:
    kv_app_close(s);
    return rc;
}

struct export_ctx {
    long long n;
    int failed;
};

static int export_one(void *ctx, const kv_evidence_row *row)
{
    struct export_ctx *e = ctx;
    char *line = kv_evidence_export_line(row);
    if (line == NULL)
        return KV_ERR_NOMEM;
    if (printf("%s\n", line) < 0)
        e->failed = 1;
    free(line);
    e->n++;
    return e->failed ? KV_ERR_IO : 0;
}

static int cmd_export(const struct opts *o)
{
    int64_t from = INT64_MIN, to = INT64_MAX;
    kv_config *cfg = NULL;
    kv_store *store = NULL;
    struct export_ctx e = {0, 0};
    kv_settings_flags sf = {.config = o->config, .store = o->store};
    kv_settings set;
    char err[512];
    const char *url;
    int r, rc = KV_EXIT_OK;

    if (o->from != NULL && kv_time_parse(o->from, &from) != 0)
        return kv_cli_usage_error("evidence", "--from '%s' is not an RFC 3339 time", o->from);
    if (o->to != NULL && kv_time_parse(o->to, &to) != 0)
        return kv_cli_usage_error("evidence", "--to '%s' is not an RFC 3339 time", o->to);
    if ((r = kv_settings_init(&set, &sf, err, sizeof(err))) != 0 ||
        (r = kv_settings_load_config(&set, &cfg, err, sizeof(err))) != 0) {
        fprintf(stderr, "kortvagt evidence: configuration: %s\n", err);
        kv_settings_clear(&set);
        return kv_exit_code(r);
    }
    url = set.store.url;
    if ((r = kv_store_open(url, &store, err, sizeof(err))) != 0) {
        fprintf(stderr, "kortvagt evidence: store %s: %s\n", url, err);
        rc = kv_exit_code(r);
        goto out;
    }
    /* a reader of a WAL database sees one snapshot for the whole scan */
    if ((r = kv_store_begin(store, 0)) == 0) {
        r = kv_store_evidence_scan(store, 1, from, to, export_one, &e);
        kv_store_rollback(store);
    }
    if (r != 0) {
        fprintf(stderr, "kortvagt evidence: export: %s\n",
                r == KV_ERR_IO ? "cannot write the output" : kv_store_last_error(store));
        rc = kv_exit_code(r);
    }
    if (fflush(stdout) != 0)
        rc = KV_EXIT_IO;
out:
    kv_store_close(store);
    kv_config_free(cfg);
    kv_settings_clear(&set);
    return rc;
}

int kv_cmd_evidence(int argc, char **argv)
{
    struct opts o;
    int rc;
    if ((rc = parse(argc, argv, &o)) != 0)
        return rc < 0 ? KV_EXIT_OK : rc;
    if (strcmp(o.cmd, "show") == 0)
        return cmd_show(&o);
    if (strcmp(o.cmd, "verify") == 0)
        return cmd_verify(&o);
    return cmd_export(&o);
}

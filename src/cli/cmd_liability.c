/* `kortvagt liability`: the liability engine of src/RULES.md §2 (see cli.h,
 * src/liability/liability.h).
 */
#include "src/cli/cli.h"
#include "hsm/p11.h"
#include "src/base/outfile.h"
#include "src/base/err.h"
#include "src/base/secure.h"
#include "src/config/config.h"
#include "src/liability/liability.h"
#include "src/liability/liability_evidence.h"
#include "src/app/app.h"
#include "src/app/keyed_hsm.h"
#include "src/store/store.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Far above any real case (10,000 transactions of ~400 bytes); stops runaway pipes. */
#define CASE_MAX_INPUT (16u * 1024 * 1024)

static void liability_usage(FILE *f)
{
    fprintf(f,
            "Usage: kortvagt liability assess FILE|- [--json] [--lang da|en] [--svg OUT.svg]\n\n"
            "Assess a case of unauthorised card use under betalingsloven § 100 (src/RULES.md §2):\n"
            "for each transaction the first matching row of the decision table, the\n"
            "cardholder's and the issuer's share (375 / 8,000 kr caps per incident, shared by\n"
            "cards with the same credential blocked together) and the objection status\n"
            "(timely within 14 days of discovery, barred after 13 months from the debit, or\n"
            "after 8 weeks for a payment authorised without its final amount).\n\n"
            "FILE is the case JSON ('-' reads standard input). Money is in øre.\n\n"
            "Options:\n"
            "  --json          print the result JSON of src/RULES.md §2\n"
            "  --lang da|en    language of the statements (default da)\n"
            "  --svg OUT.svg   also draw the incident as an SVG timeline into OUT.svg\n"
            "  --store URL     the evidence store (default $KORTVAGT_STORE, the config file's\n"
            "                  [store] url, then sqlite:./kortvagt.db)\n"
            "  --help          show this help\n\n"
            "A transaction that names an \"evidence\" record is judged on the stored record:\n"
            "a record that is missing or whose chain or MAC is broken proves nothing.\n\n"
            "Exit codes: 0 assessed, 2 usage error or a case that breaks the contract\n"
            "(the message names the field), 8 I/O error.\n");
}

static int write_svg(const char *path, const struct kv_liability_case *c,
                     const struct kv_liability_result *res, enum kv_liability_lang lang)
{
    kv_outfile o; /* a new file of mode 0600, renamed over path when complete */
    int r;
    if ((r = kv_outfile_open(path, &o)) != 0)
        return r;
    if ((r = kv_liability_write_svg(o.f, c, res, lang)) != 0) {
        kv_outfile_abort(&o);
        return r;
    }
    return kv_outfile_commit(&o);
}

/* What the evidence lookup needs; opened only when the case names a record. */
struct evidence_source {
    kv_store *store;
    kv_hsm *hsm;
    kv_hsm_mac hmac;
    kv_mac mac;
    struct kv_liability_evidence_store ctx;
};

static void evidence_close(struct evidence_source *es)
{
    kv_store_close(es->store);
    kv_hsm_close(es->hsm);
    memset(es, 0, sizeof *es);
}

/*
 * Open the store and the HSM's evidence key. *available is 0 when the store
 * is an SQLite file that does not exist (no evidence at all; the file is not
 * created). Returns the exit code (0 on success), the reason printed.
 */
static int evidence_open(const char *store_flag, struct evidence_source *es, int *available)
{
    kv_config *cfg = NULL;
    kv_settings_flags sf = {.store = store_flag};
    kv_settings set;
    char err[256] = "";
    const char *url;
    struct stat st;
    int r, rc = KV_EXIT_INTERNAL;

    *available = 0;
    if ((r = kv_settings_init(&set, &sf, err, sizeof err)) != 0) {
        fprintf(stderr, "kortvagt liability: %s\n", err);
        rc = kv_exit_code(r);
        goto out;
    }
    if (set.store_flag) {
        url = set.store.url;
    } else {
        if ((r = kv_settings_load_config(&set, &cfg, err, sizeof err)) != 0) {
            fprintf(stderr, "kortvagt liability: configuration: %s\n",
                    err[0] != '\0' ? err : kv_strerror(r));
            rc = kv_exit_code(r);
            goto out;
        }
        url = set.store.url;
    }
    if (strncmp(url, "sqlite:", 7) == 0 && stat(url + 7, &st) != 0) {
        fprintf(stderr, "kortvagt liability: note: no evidence store at %s\n", url + 7);
        rc = KV_EXIT_OK;
        goto out;
    }
    if ((r = kv_store_open(url, &es->store, err, sizeof err)) != 0) {
        fprintf(stderr, "kortvagt liability: evidence store: %s\n",
                err[0] != '\0' ? err : kv_strerror(r));
        rc = kv_exit_code(r);
        goto out;
    }
    kv_disable_core_dumps();
    if ((r = kv_app_hsm_open(&set, &es->hsm)) != 0) {
        const char *why = kv_hsm_last_error(NULL);
        fprintf(stderr, "kortvagt liability: the evidence MACs need the HSM token: %s\n",
                why != NULL && why[0] != '\0' ? why : kv_strerror(r));
        rc = kv_exit_code(r);
        goto out;
    }
    if ((r = kv_hsm_mac_init(&es->hmac, es->hsm, KV_KEY_LABEL_EVIDENCE)) != 0) {
        fprintf(stderr, "kortvagt liability: evidence key '%s': %s\n", KV_KEY_LABEL_EVIDENCE,
                r == KV_ERR_HSM_KEY ? "not on the token (run 'kortvagt hsm init')"
                                    : kv_strerror(r));
        rc = kv_exit_code(r);
        goto out;
    }
    es->mac = kv_hsm_mac_get(&es->hmac);
    es->ctx.store = es->store;
    es->ctx.mac = &es->mac;
    *available = 1;
    rc = KV_EXIT_OK;
out:
    kv_config_free(cfg);
    kv_settings_clear(&set);
    if (rc != KV_EXIT_OK || !*available)
        evidence_close(es);
    return rc;
}

static int liability_assess(int argc, char **argv)
{
    const char *file = NULL, *svg = NULL, *store = NULL;
    enum kv_liability_lang lang = KV_LIABILITY_LANG_DA;
    int json = 0, rc = KV_EXIT_INTERNAL, r;
    char *text = NULL, *dump = NULL, why[512];
    size_t len = 0;
    struct kv_liability_case *c = NULL;
    struct kv_liability_result *res = NULL;
    json_t *out = NULL;
    kv_liability_evidence_fn lookup = NULL;
    void *lookup_ctx = NULL;
    struct evidence_source es;
    int wants_evidence = 0, available = 0;

    memset(&es, 0, sizeof es);

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *lang_arg = NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            liability_usage(stdout);
            rc = KV_EXIT_OK;
            goto out;
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "--lang") == 0) {
            if (++i >= argc) {
                rc = kv_cli_usage_error("liability", "--lang needs a value: da or en");
                goto out;
            }
            lang_arg = argv[i];
        } else if (strncmp(a, "--lang=", 7) == 0) {
            lang_arg = a + 7;
        } else if (strcmp(a, "--svg") == 0 || strncmp(a, "--svg=", 6) == 0) {
            if (a[5] == '=') {
                svg = a + 6;
            } else if (++i >= argc) {
                rc = kv_cli_usage_error("liability", "--svg needs an output file name");
                goto out;
            } else {
                svg = argv[i];
            }
            if (svg[0] == '\0' || strcmp(svg, "-") == 0) {
                rc = kv_cli_usage_error("liability", "--svg needs an output file name, not '%s'",
                                        svg);
                goto out;
            }
        } else if (strcmp(a, "--store") == 0 || strncmp(a, "--store=", 8) == 0) {
            if (a[7] == '=') {
                store = a + 8;
            } else if (++i >= argc) {
                rc = kv_cli_usage_error("liability", "--store needs a URL (sqlite:PATH or "
                                                     "postgresql://...)");
                goto out;
            } else {
                store = argv[i];
            }
        } else if (a[0] == '-' && a[1] != '\0') {
            rc = kv_cli_usage_error("liability", "unknown option '%s'", a);
            goto out;
        } else if (file == NULL) {
            file = a;
        } else {
            rc = kv_cli_usage_error("liability", "one case file only ('%s' is extra)", a);
            goto out;
        }
        if (lang_arg != NULL) {
            if (strcmp(lang_arg, "da") == 0) {
                lang = KV_LIABILITY_LANG_DA;
            } else if (strcmp(lang_arg, "en") == 0) {
                lang = KV_LIABILITY_LANG_EN;
            } else {
                rc = kv_cli_usage_error("liability", "--lang must be da or en, not '%s'", lang_arg);
                goto out;
            }
        }
    }
    if (file == NULL) {
        rc = kv_cli_usage_error("liability", "assess needs a case file (or '-' for stdin)");
        goto out;
    }
    if ((r = kv_cli_read_input(file, CASE_MAX_INPUT, &text, &len)) != 0) {
        if (r == KV_ERR_BUFFER)
            rc = kv_cli_usage_error("liability", "%s: larger than %u bytes", file, CASE_MAX_INPUT);
        else
            rc = kv_cli_fail(r, file);
        goto out;
    }
    if ((r = kv_liability_case_parse(text, len, &c, why, sizeof why)) != 0) {
        if (r == KV_ERR_JSON) {
            fprintf(stderr, "kortvagt liability: %s: %s\n", file, why);
            rc = KV_EXIT_USAGE;
        } else {
            rc = kv_cli_fail(r, file);
        }
        goto out;
    }
    for (size_t i = 0; i < c->n_txns; i++)
        wants_evidence |= c->txns[i].has_evidence;
    if (wants_evidence) {
        if ((rc = evidence_open(store, &es, &available)) != KV_EXIT_OK)
            goto out;
        if (available) {
            lookup = kv_liability_evidence_from_store;
            lookup_ctx = &es.ctx;
        }
    }
    for (size_t i = 0; i < c->n_txns && lookup == NULL; i++)
        if (c->txns[i].has_evidence)
            fprintf(stderr,
                    "kortvagt liability: note: transaction %s names evidence record %s, but no "
                    "evidence store is available: it counts as not proven\n",
                    c->txns[i].id, c->txns[i].evidence);
    if ((r = kv_liability_assess(c, lookup, lookup_ctx, &res)) != 0) {
        rc = kv_cli_fail(r, "liability assessment");
        goto out;
    }
    if (json) {
        if ((r = kv_liability_result_to_json(c, res, &out)) != 0 ||
            (dump = json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER)) == NULL) {
            rc = kv_cli_fail(r != 0 ? r : KV_ERR_NOMEM, "result JSON");
            goto out;
        }
        printf("%s\n", dump);
    } else if ((r = kv_liability_write_text(stdout, c, res, lang)) != 0) {
        rc = kv_cli_fail(r, "standard output");
        goto out;
    }
    if (svg != NULL && (r = write_svg(svg, c, res, lang)) != 0) {
        rc = kv_cli_fail(r, svg);
        goto out;
    }
    if (fflush(stdout) != 0) {
        rc = kv_cli_fail(KV_ERR_IO, "standard output");
        goto out;
    }
    rc = KV_EXIT_OK;
out:
    evidence_close(&es);
    free(dump);
    json_decref(out);
    kv_liability_result_free(res);
    kv_liability_case_free(c);
    free(text);
    return rc;
}

/* see cli.h */
int kv_cmd_liability(int argc, char **argv)
{
    int rc;
    if ((rc = kv_cli_group_help(argc, argv, liability_usage)) >= 0)
        return rc;
    if (strcmp(argv[1], "assess") == 0)
        return liability_assess(argc - 1, argv + 1);
    return kv_cli_usage_error("liability", "unknown command '%s' (try: assess)", argv[1]);
}

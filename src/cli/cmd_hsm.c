/*
 * `kortvagt hsm`: create the token (init) and show what the PKCS#11 module
 * and token can do (info). See cli.h.
 */
#include "src/cli/cli.h"
#include "src/app/settings.h"
#include "src/cli/install_paths.h"
#include "kv_build_config.h"
#include "src/evidence/keys_ensure.h"
#include "hsm/keys.h"
#include "hsm/keymat.h"
#include "hsm/p11.h"
#include "hsm/p11_admin.h"
#include "hsm/p11_probe.h"
#include "hsm/p11uri.h"
#include "src/base/err.h"
#include "src/base/secure.h"

#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void hsm_usage(FILE *f)
{
    fprintf(f,
            "Usage: kortvagt hsm init [--token LABEL] [--module PATH]\n"
            "       kortvagt hsm info [--json] [--token LABEL|URI] [--module PATH]\n\n"
            "init  creates the token through PKCS#11 (C_InitToken on a free slot, then\n"
            "      C_InitPIN). If a token with the label exists, it says so and exits 0.\n"
            "      SO PIN: $KORTVAGT_SO_PIN, else the first line of stdin.\n"
            "      User PIN: $KORTVAGT_PIN, else the file $KORTVAGT_PIN_FILE, else the next\n"
            "      line of stdin (after the SO PIN line when both come from stdin).\n"
            "info  shows the module, the library and token facts, and whether each\n"
            "      mechanism kortvagt needs works: each is run on a temporary session key\n"
            "      of a public test value and checked against a published answer. It also\n"
            "      tests whether the module enforces CKA_DERIVE_TEMPLATE (a derive key whose\n"
            "      template says sensitive, unextractable is asked for an extractable key)\n"
            "      and says plainly when it does not. Needs no PIN.\n\n"
            "Options:\n"
            "  --token LABEL   token label (default $KORTVAGT_TOKEN, then \"%s\");\n"
            "                  info also takes an RFC 7512 pkcs11: URI\n"
            "  --module PATH   PKCS#11 module (default $KORTVAGT_PKCS11_MODULE, then\n"
            "                  %s)\n"
            "  --json          machine-readable output (info)\n"
            "  --help          show this help\n\n"
            "SoftHSM2: the token directory comes from $SOFTHSM2_CONF. Single DES on SoftHSM2\n"
            "2.6 needs OPENSSL_CONF=<repo>/scripts/openssl-legacy.cnf (see hsm info).\n"
            "Exit codes: 0 ok, 2 usage error, 5 HSM error (module, token, PIN), 8 I/O.\n",
            KV_HSM_DEFAULT_TOKEN, KV_HSM_DEFAULT_MODULE);
}

struct hsm_opts {
    const char *token;
    const char *module;
    int json;
};

static int hsm_parse(const char *cmd, int argc, char **argv, struct hsm_opts *o, int allow_json)
{
    memset(o, 0, sizeof(*o));
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        const char *name = NULL;
        if (strcmp(a, "--json") == 0 && allow_json) {
            o->json = 1;
            continue;
        }
        if (strncmp(a, "--token", 7) == 0 && (a[7] == '\0' || a[7] == '=')) {
            dst = &o->token;
            name = "--token";
        } else if (strncmp(a, "--module", 8) == 0 && (a[8] == '\0' || a[8] == '=')) {
            dst = &o->module;
            name = "--module";
        } else {
            return kv_cli_usage_error("hsm", "%s: unknown option or argument '%s'", cmd, a);
        }
        if (*dst != NULL)
            return kv_cli_usage_error("hsm", "%s: %s given twice", cmd, name);
        if (strchr(a, '=') != NULL) {
            *dst = strchr(a, '=') + 1;
        } else {
            if (i + 1 >= argc)
                return kv_cli_usage_error("hsm", "%s: %s needs a value", cmd, name);
            *dst = argv[++i];
        }
        if ((*dst)[0] == '\0')
            return kv_cli_usage_error("hsm", "%s: %s is empty", cmd, name);
    }
    return KV_EXIT_OK;
}

static int hsm_fail(const char *cmd, int err, const char *text)
{
    fprintf(stderr, "kortvagt hsm %s: %s\n", cmd,
            text != NULL && text[0] ? text : kv_strerror(err));
    return kv_exit_code(err);
}

/* --- init ------------------------------------------------------------------ */

static void report_generated(void *ctx, const kv_policy_key *k)
{
    (void)ctx;
    printf("generated %s key '%s' (usage %s)\n", kv_key_type_name(k->type), k->label,
           kv_key_usage_name(k->usage));
}

/* A PIN as the settings give it ($KORTVAGT_PIN or $KORTVAGT_SO_PIN), else the PIN file, else stdin.
 */
static int read_pin(const kv_settings *set, int so, const char *prompt, kv_secbuf **out,
                    size_t *len)
{
    kv_secbuf *v = so ? set->hsm.so_pin : set->hsm.pin;
    kv_hsm_pin_source src = {v != NULL ? (const char *)kv_secbuf_ptr(v) : NULL,
                             so ? "$KORTVAGT_SO_PIN" : "$KORTVAGT_PIN",
                             so ? NULL : kv_settings_opt(set->hsm.pin_file),
                             so ? NULL : "$KORTVAGT_PIN_FILE", prompt};
    return kv_hsm_pin_read(&src, out, len);
}

/*
 * Generate each policy key (src/evidence/keys_ensure.h) that the token
 * lacks. Logs in with user_pin when given (a new token: the PIN was read
 * already), else reads the PIN as every command does.
 */
static int ensure_init_keys(const kv_settings *set, const char *label, kv_secbuf *user_pin,
                            size_t user_len)
{
    kv_hsm_config cfg = {.module = kv_settings_opt(set->hsm.module), .token = label};
    kv_secbuf *pin = NULL;
    kv_hsm *h = NULL;
    char why[512];
    int r = 0, rc = KV_EXIT_OK;

    if (user_pin == NULL) {
        snprintf(why, sizeof(why), "User PIN for token '%s': ", label);
        if ((r = read_pin(set, 0, why, &pin, &user_len)) != 0)
            return hsm_fail("init", r, kv_hsm_last_error(NULL));
        user_pin = pin;
    }
    cfg.pin = user_pin;
    cfg.pin_len = user_len;
    r = kv_hsm_open(&cfg, &h);
    kv_secbuf_free(pin);
    if (r != 0)
        return hsm_fail("init", r, kv_hsm_last_error(NULL));
    if ((r = kv_policy_keys_ensure(h, report_generated, NULL, why, sizeof(why))) != 0)
        rc = hsm_fail("init", r, why);
    kv_hsm_close(h);
    return rc;
}

/* The token label for init: --token, $KORTVAGT_TOKEN (label or URI token=), default. */
static int init_label(const struct hsm_opts *o, char out[33])
{
    const char *t = o->token;
    kv_p11uri u;
    char why[200];

    if (t == NULL || t[0] == '\0')
        t = KV_HSM_DEFAULT_TOKEN;
    if (kv_p11uri_is_uri(t)) {
        if (kv_p11uri_parse(t, &u, why, sizeof(why)) != 0)
            return kv_cli_usage_error("hsm", "init: token name: %s", why);
        if (!u.has_token)
            return kv_cli_usage_error("hsm", "init: the pkcs11: URI names no token=");
        t = u.token;
    }
    if (strlen(t) > 32)
        return kv_cli_usage_error("hsm", "init: token label '%s' is longer than 32 bytes", t);
    strcpy(out, t);
    return KV_EXIT_OK;
}

static int hsm_init(int argc, char **argv)
{
    struct hsm_opts o;
    kv_settings_flags sf;
    kv_settings set;
    kv_hsm_config cfg;
    kv_hsm *h = NULL;
    kv_hsm_token_info ti;
    kv_secbuf *so = NULL, *user = NULL;
    size_t so_len = 0, user_len = 0;
    char label[33], why[256];
    int rc, r;

    if ((rc = hsm_parse("init", argc, argv, &o, 0)) != KV_EXIT_OK)
        return rc;
    /* flags > environment (src/app/settings.h) */
    memset(&sf, 0, sizeof(sf));
    sf.module = o.module;
    sf.token = o.token;
    kv_disable_core_dumps();
    if ((r = kv_settings_init(&set, &sf, why, sizeof(why))) != 0 ||
        (r = kv_settings_read_secrets(&set, why, sizeof(why))) != 0) {
        rc = hsm_fail("init", r, why);
        goto out;
    }
    o.token = kv_settings_opt(set.hsm.token);
    if ((rc = init_label(&o, label)) != KV_EXIT_OK)
        goto out;
    memset(&cfg, 0, sizeof(cfg));
    cfg.module = kv_settings_opt(set.hsm.module);
    cfg.token = label;
    if ((r = kv_hsm_open_ex(&cfg, KV_HSM_OPEN_NO_TOKEN, &h)) != 0) {
        rc = hsm_fail("init", r, kv_hsm_last_error(NULL));
        goto out;
    }
    if ((r = kv_hsm_token_lookup(h, label, &ti)) == 0) {
        printf("token '%s' exists already (slot %lu, serial %s): nothing to do\n", ti.label,
               ti.slot, ti.serial);
        kv_hsm_close(h);
        h = NULL;
        rc = ensure_init_keys(&set, label, NULL, 0);
        goto out;
    }
    if (r != KV_ERR_HSM_TOKEN) {
        rc = hsm_fail("init", r, kv_hsm_last_error(h));
        goto out;
    }
    if ((r = read_pin(&set, 1, "SO PIN for the new token: ", &so, &so_len)) != 0) {
        rc = hsm_fail("init", r, kv_hsm_last_error(NULL));
        goto out;
    }
    if ((r = read_pin(&set, 0, "User PIN for the new token: ", &user, &user_len)) != 0) {
        rc = hsm_fail("init", r, kv_hsm_last_error(NULL));
        goto out;
    }
    if (so_len < 4 || user_len < 4) {
        rc = kv_cli_usage_error("hsm", "init: the %s PIN is shorter than 4 characters",
                                so_len < 4 ? "SO" : "user");
        goto out;
    }
    if ((r = kv_hsm_token_init(h, label, kv_secbuf_ptr(so), so_len, kv_secbuf_ptr(user), user_len,
                               &ti)) != 0) {
        rc = hsm_fail("init", r, kv_hsm_last_error(h));
        goto out;
    }
    kv_secbuf_free(so);
    so = NULL;
    printf("token '%s' initialised (slot %lu, serial %s) in %s\n", ti.label, ti.slot, ti.serial,
           kv_hsm_module_path(h));
    kv_hsm_close(h);
    h = NULL;
    rc = ensure_init_keys(&set, label, user, user_len);
out:
    kv_secbuf_free(so);
    kv_secbuf_free(user);
    kv_hsm_close(h);
    kv_settings_clear(&set);
    return rc;
}

/* --- info ------------------------------------------------------------------ */

/*
 * scripts/openssl-legacy.cnf as kortvagt ships it: the source tree's for an
 * uninstalled build, else DATADIR/kortvagt/ beside the binary's install
 * prefix, else the configured DATADIR (kv_build_config.h); "" when none is
 * readable.
 */
static void legacy_cnf_path(char *out, size_t cap)
{
    char exe[PATH_MAX], *slash;
    ssize_t n;

    if (kv_cli_uninstalled() &&
        snprintf(out, cap, "%s", KV_SOURCE_DIR "/scripts/openssl-legacy.cnf") < (int)cap &&
        access(out, R_OK) == 0)
        return;
    if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) > 0) {
        exe[n] = '\0';
        if ((slash = strrchr(exe, '/')) != NULL) {
            *slash = '\0';
            if (snprintf(out, cap, "%s/" KV_BINDIR_TO_DATADIR "/openssl-legacy.cnf", exe) <
                    (int)cap &&
                access(out, R_OK) == 0)
                return;
        }
    }
    if (snprintf(out, cap, "%s", KV_INSTALL_DATADIR "/openssl-legacy.cnf") < (int)cap &&
        access(out, R_OK) == 0)
        return;
    out[0] = '\0';
}

static void legacy_advice(const kv_hsm_selftest_result *res, char *buf, size_t cap)
{
    char path[1024];
    const char *env = getenv("OPENSSL_CONF");

    if (env != NULL && env[0] == '\0')
        env = NULL;

    legacy_cnf_path(path, sizeof(path));
    /* a very long path only cuts the advice short (the result is checked for gcc -O2) */
    if (snprintf(
            buf, cap,
            "CKM_DES_ECB does not work (%s): SoftHSM2 2.6 does its cryptography with OpenSSL 3, "
            "which keeps single DES in its \"legacy\" provider, and that provider is not "
            "loaded by default%s%s%s. Set OPENSSL_CONF=%s (it activates the default and the "
            "legacy provider) for every kortvagt process. kortvagt's own CVV/MAC work uses "
            "3DES with A||A companions and does not need single DES.",
            res->detail, env != NULL ? " (OPENSSL_CONF is now " : "", env != NULL ? env : "",
            env != NULL ? ", which does not load it)" : "",
            path[0] ? path : "<kortvagt source tree>/scripts/openssl-legacy.cnf") < 0 &&
        cap > 0)
        buf[0] = '\0';
}

static int hsm_info(int argc, char **argv)
{
    struct hsm_opts o;
    kv_settings_flags sf;
    kv_settings set;
    kv_hsm_config cfg;
    kv_hsm *h = NULL;
    kv_hsm_module_info mi;
    kv_hsm_token_info ti;
    const char *flags[32];
    char advice[1024] = "";
    json_t *root = NULL, *mechs = NULL, *jflags = NULL;
    size_t nflags;
    int rc = KV_EXIT_INTERNAL, r, token_err = 0;
    char token_why[512] = "";

    if ((rc = hsm_parse("info", argc, argv, &o, 1)) != KV_EXIT_OK)
        return rc;
    memset(&sf, 0, sizeof(sf));
    sf.module = o.module;
    sf.token = o.token;
    if ((r = kv_settings_init(&set, &sf, token_why, sizeof(token_why))) != 0) {
        kv_settings_clear(&set);
        return hsm_fail("info", r, token_why);
    }
    /* no login: the PINs are not needed */
    memset(&cfg, 0, sizeof(cfg));
    cfg.module = kv_settings_opt(set.hsm.module);
    cfg.token = kv_settings_opt(set.hsm.token);
    if ((r = kv_hsm_open_ex(&cfg, KV_HSM_OPEN_NO_LOGIN, &h)) != 0 && r == KV_ERR_HSM_TOKEN) {
        /* no token: still show the module */
        token_err = r;
        snprintf(token_why, sizeof(token_why), "%s", kv_hsm_last_error(NULL));
        r = kv_hsm_open_ex(&cfg, KV_HSM_OPEN_NO_TOKEN, &h);
    }
    kv_settings_clear(&set); /* the open copied what it needs */
    if (r != 0)
        return hsm_fail("info", r, kv_hsm_last_error(NULL));
    if ((r = kv_hsm_get_module_info(h, &mi)) != 0) {
        rc = hsm_fail("info", r, kv_hsm_last_error(h));
        goto out;
    }
    root = json_object();
    json_object_set_new(root, "module", json_string(kv_hsm_module_path(h)));
    json_object_set_new(root, "cryptoki_version",
                        json_sprintf("%u.%u", mi.cryptoki_major, mi.cryptoki_minor));
    json_object_set_new(root, "library",
                        json_pack("{s:s, s:s, s:o}", "manufacturer", mi.manufacturer, "description",
                                  mi.description, "version",
                                  json_sprintf("%u.%u", mi.lib_major, mi.lib_minor)));
    if (!o.json) {
        printf("module:      %s\n", kv_hsm_module_path(h));
        printf("library:     %s, %s, version %u.%u (Cryptoki %u.%u)\n", mi.manufacturer,
               mi.description, mi.lib_major, mi.lib_minor, mi.cryptoki_major, mi.cryptoki_minor);
    }
    if (token_err) {
        json_object_set_new(root, "token", json_null());
        json_object_set_new(root, "error", json_string(token_why));
        if (o.json) {
            char *s = json_dumps(root, JSON_INDENT(2));
            if (s != NULL)
                puts(s);
            free(s);
        } else {
            printf("token:       not found\n");
        }
        rc = hsm_fail("info", token_err, token_why);
        goto out;
    }
    if ((r = kv_hsm_get_token_info(h, &ti)) != 0) {
        rc = hsm_fail("info", r, kv_hsm_last_error(h));
        goto out;
    }
    nflags = kv_hsm_token_flag_names(ti.flags, flags, sizeof(flags) / sizeof(flags[0]));
    jflags = json_array();
    for (size_t i = 0; i < nflags; i++)
        json_array_append_new(jflags, json_string(flags[i]));
    json_object_set_new(
        root, "token",
        json_pack("{s:s, s:s, s:s, s:s, s:I, s:o, s:o, s:o}", "label", ti.label, "serial",
                  ti.serial, "manufacturer", ti.manufacturer, "model", ti.model, "slot",
                  (json_int_t)ti.slot, "flags", jflags, "hardware_version",
                  json_sprintf("%u.%u", ti.hw_major, ti.hw_minor), "firmware_version",
                  json_sprintf("%u.%u", ti.fw_major, ti.fw_minor)));
    if (!o.json) {
        printf("token:       '%s', serial %s, %s %s, slot %lu\n", ti.label, ti.serial,
               ti.manufacturer, ti.model, ti.slot);
        printf("flags:      ");
        for (size_t i = 0; i < nflags; i++)
            printf(" %s", flags[i]);
        printf("\nmechanisms (each run against a published test vector):\n");
    }
    mechs = json_array();
    for (size_t i = 0; i < kv_hsm_selftest_count(); i++) {
        kv_hsm_selftest_result res;
        if ((r = kv_hsm_selftest_run(h, i, &res)) != 0) {
            rc = hsm_fail("info", r, kv_hsm_last_error(h));
            goto out;
        }
        json_array_append_new(mechs, json_pack("{s:s, s:b, s:b, s:s, s:s}", "name", res.mechanism,
                                               "works", res.works, "listed", res.listed, "detail",
                                               res.detail, "purpose", res.purpose));
        if (!o.json)
            printf("  %-26s %-5s %s%s%s\n", res.mechanism, res.works ? "works" : "FAILS",
                   res.works ? "" : res.detail, res.works ? "" : "; ", res.purpose);
        if (!res.works && strcmp(res.mechanism, "CKM_DES_ECB") == 0)
            legacy_advice(&res, advice, sizeof(advice));
    }
    json_object_set_new(root, "mechanisms", mechs);
    mechs = NULL;
    /* issue 11: does the module keep what an IMK derives sensitive? (hsm/p11_probe.h) */
    {
        kv_hsm_dt_probe dt;
        const char *warn;
        if ((r = kv_hsm_probe_derive_template(h, &dt)) != 0) {
            rc = hsm_fail("info", r, kv_hsm_last_error(h));
            goto out;
        }
        warn = kv_dt_warning(dt.result);
        json_object_set_new(root, "derive_template",
                            json_pack("{s:s, s:b, s:s, s:o}", "result",
                                      kv_dt_result_name(dt.result), "enforced",
                                      dt.result == KV_DT_ENFORCED, "detail", dt.detail, "warning",
                                      warn != NULL ? json_string(warn) : json_null()));
        if (!o.json) {
            printf("derive template (CKA_DERIVE_TEMPLATE): %s (%s)\n",
                   dt.result == KV_DT_ENFORCED ? "enforced" : "NOT enforced", dt.detail);
            if (warn != NULL)
                printf("WARNING: %s\n", warn);
        }
    }
    json_object_set_new(root, "advice", advice[0] ? json_string(advice) : json_null());
    if (o.json) {
        char *s = json_dumps(root, JSON_INDENT(2));
        if (s == NULL) {
            rc = KV_EXIT_INTERNAL;
            goto out;
        }
        puts(s);
        free(s);
    } else if (advice[0]) {
        printf("\nadvice: %s\n", advice);
    }
    rc = KV_EXIT_OK;
out:
    json_decref(mechs);
    json_decref(root);
    kv_hsm_close(h);
    return rc;
}

int kv_cmd_hsm(int argc, char **argv)
{
    if (argc < 2) {
        hsm_usage(stderr);
        return KV_EXIT_USAGE;
    }
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            hsm_usage(stdout);
            return KV_EXIT_OK;
        }
    if (strcmp(argv[1], "init") == 0)
        return hsm_init(argc, argv);
    if (strcmp(argv[1], "info") == 0)
        return hsm_info(argc, argv);
    return kv_cli_usage_error("hsm", "unknown command '%s' (init, info)", argv[1]);
}

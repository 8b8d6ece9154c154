/*
 * `kortvagt key`: the key ceremony -- import from clear components, generate,
 * list, delete (hsm/keys.h). See cli.h.
 */
#include "src/cli/cli.h"
#include "src/app/app.h"
#include "src/app/settings.h"
#include "hsm/keymat.h"
#include "hsm/keys.h"
#include "hsm/p11.h"
#include "hsm/p11_admin.h"
#include "hsm/p11_audit.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/base/secure.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define COMPONENT_LINE_MAX 256
#define LIST_MAX 1024

static void key_usage(FILE *f)
{
    fprintf(f,
            "Usage: kortvagt key import   --label NAME --type TYPE [--usage USAGE] [--kcv HEX]\n"
            "                             [--id HEX] [--allow-single-des] [--json] < components\n"
            "       kortvagt key generate --label NAME --type TYPE [--usage USAGE] [--id HEX] "
            "[--json]\n"
            "       kortvagt key list     [--json]\n"
            "       kortvagt key audit    [--json]\n"
            "       kortvagt key delete   --label NAME\n"
            "All take [--token LABEL|URI] [--module PATH].\n\n"
            "TYPE:  des2 | des3 | aes128 | aes192 | aes256 | hmac (32..64 bytes, HMAC-SHA256)\n"
            "USAGE (the key's role, recorded with it and fixed):\n"
            "       cvk (des2; CVV/CVC)        encrypt            + A||A companion NAME.aa\n"
            "       mac (des2 | aes*)          encrypt (DES) / sign+verify (AES-CMAC)\n"
            "                                                     + A||A companion (des2)\n"
            "       pvk (des2 | des3; PVV/IBM 3624)  encrypt\n"
            "       pin (des*, aes*; TPK/ZPK)  encrypt + decrypt\n"
            "       imk (des2; EMV issuer master key for cryptograms)  derive only\n"
            "       imk-cvc3, imk-smi, imk-smc (des2; IMKs for CVC3, secure messaging\n"
            "                                  integrity / confidentiality)  derive only\n"
            "       kek (des*, aes*)           wrap + unwrap\n"
            "       token, evidence, state-mac (hmac)  sign + verify\n"
            "       pan-enc (aes*; sealed PANs)        encrypt + decrypt\n"
            "       none given: encrypt + decrypt (hmac: sign + verify), role none: no\n"
            "       payment operation accepts it\n"
            "Every key is CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE true, CKA_EXTRACTABLE,\n"
            "CKA_MODIFIABLE and CKA_COPYABLE false; its role is in CKA_ID (\"" KV_HSM_ROLE_ID_PREFIX
            "ROLE:\"). A derive key (imk*) has CKA_DERIVE_TEMPLATE {sensitive, not extractable}\n"
            "where the module knows the attribute (SoftHSM2 2.6 does not).\n\n"
            "import reads the clear components from stdin, one hex component per line (spaces\n"
            "allowed), until end of input (on a terminal: until an empty line), XORs them,\n"
            "sets DES odd parity, stores the key and has the token compute its KCV. Components\n"
            "and PINs are never taken from the command line. If neither $KORTVAGT_PIN nor\n"
            "$KORTVAGT_PIN_FILE is set, the first line of stdin is the user PIN.\n"
            "--kcv HEX (4 or 6 hex digits) must match the KCV of the stored key, else nothing\n"
            "is stored. KCV: DES first 3 bytes of 3DES-ECB of 8 zero bytes; AES first 3 bytes\n"
            "of AES-CMAC of 16 zero bytes; HMAC first 3 bytes of HMAC-SHA256 of 32 zero bytes.\n"
            "A DES key with two equal 8-byte parts has single-DES strength and is refused.\n"
            "--allow-single-des stores such a des2 key (public test vectors for Visa PVV,\n"
            "IBM 3624 and PIN blocks use them), marked weak on the token: its CKA_ID starts\n"
            "with \"" KV_HSM_WEAK_ID_PREFIX "\" (then the --id bytes). key list shows it as\n"
            "weak; kortvagtd refuses weak keys unless [hsm] allow_weak_keys = true.\n\n"
            "generate creates the key inside the token. Keys with an A||A companion are\n"
            "derived (CKM_DES3_ECB_ENCRYPT_DATA) from a random session seed key that is then\n"
            "destroyed, since A is never visible (hsm/keys.h explains why this is sound).\n\n"
            "list shows label, type, KCV and attributes -- never a key value.\n"
            "delete removes the key and its A||A companion.\n\n"
            "audit lists every key whose attributes are weaker than its role requires:\n"
            "no role recorded, modifiable, copyable, not sensitive, extractable, not\n"
            "private, usages beyond its role, a derive key without a derive template that\n"
            "keeps derived keys sensitive and unextractable; RSA private keys that may do\n"
            "more than sign. One line per key (--json: an array); exit 1 if any, 0 if none.\n\n"
            "Exit codes: 0 ok, 2 usage or input error (bad component, wrong KCV, label\n"
            "exists), 5 HSM error (module, token, PIN, key not found), 8 I/O.\n");
}

struct key_opts {
    const char *label, *type, *usage, *kcv, *id, *token, *module;
    int json;
    int allow_single_des;
};

static const struct {
    const char *name;
    size_t off;
} value_opts[] = {
    {"label", offsetof(struct key_opts, label)},   {"type", offsetof(struct key_opts, type)},
    {"usage", offsetof(struct key_opts, usage)},   {"kcv", offsetof(struct key_opts, kcv)},
    {"id", offsetof(struct key_opts, id)},         {"token", offsetof(struct key_opts, token)},
    {"module", offsetof(struct key_opts, module)},
};

/* allowed: the value options this command takes, as "label,type,..." */
static int key_parse(const char *cmd, int argc, char **argv, const char *allowed, int allow_json,
                     struct key_opts *o)
{
    memset(o, 0, sizeof(*o));
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        const char *name = NULL;
        size_t nl;
        if (strcmp(a, "--json") == 0 && allow_json) {
            o->json = 1;
            continue;
        }
        if (strcmp(a, "--allow-single-des") == 0 && strcmp(cmd, "import") == 0) {
            o->allow_single_des = 1;
            continue;
        }
        if (strncmp(a, "--", 2) == 0) {
            for (size_t k = 0; k < sizeof(value_opts) / sizeof(value_opts[0]); k++) {
                nl = strlen(value_opts[k].name);
                if (strncmp(a + 2, value_opts[k].name, nl) == 0 &&
                    (a[2 + nl] == '\0' || a[2 + nl] == '=')) {
                    const char *hit = strstr(allowed, value_opts[k].name);
                    if (hit != NULL && (hit == allowed || hit[-1] == ',') &&
                        (hit[nl] == ',' || hit[nl] == '\0')) {
                        dst = (const char **)((char *)o + value_opts[k].off);
                        name = value_opts[k].name;
                    }
                }
            }
        }
        /* an argument is never echoed: it might be a key component typed in by mistake */
        if (dst == NULL && strncmp(a, "--", 2) != 0)
            return kv_cli_usage_error("key",
                                      "%s: unexpected argument %d; key components and PINs are "
                                      "read from stdin, never from the command line",
                                      cmd, i);
        if (dst == NULL)
            return kv_cli_usage_error("key", "%s: unknown option '%.*s'", cmd, (int)strcspn(a, "="),
                                      a);
        if (*dst != NULL)
            return kv_cli_usage_error("key", "%s: --%s given twice", cmd, name);
        if (strchr(a, '=') != NULL) {
            *dst = strchr(a, '=') + 1;
        } else {
            if (i + 1 >= argc)
                return kv_cli_usage_error("key", "%s: --%s needs a value", cmd, name);
            *dst = argv[++i];
        }
        if ((*dst)[0] == '\0')
            return kv_cli_usage_error("key", "%s: --%s is empty", cmd, name);
    }
    return KV_EXIT_OK;
}

static int key_fail(const char *cmd, int err, const char *text)
{
    fprintf(stderr, "kortvagt key %s: %s\n", cmd,
            text != NULL && text[0] ? text : kv_strerror(err));
    /* a wrong KCV is wrong input from the key custodians, not an HSM fault */
    if (err == KV_ERR_HSM_KCV)
        return KV_EXIT_USAGE;
    return kv_exit_code(err);
}

static int key_open(const char *cmd, const struct key_opts *o, kv_hsm **h)
{
    kv_settings_flags sf = {.module = o->module, .token = o->token};
    kv_settings s;
    char err[256] = "";
    int r;
    kv_disable_core_dumps();
    if ((r = kv_settings_init(&s, &sf, err, sizeof(err))) != 0) {
        kv_settings_clear(&s);
        return key_fail(cmd, r, err);
    }
    r = kv_app_hsm_open(&s, h);
    kv_settings_clear(&s);
    if (r != 0)
        return key_fail(cmd, r, kv_hsm_last_error(NULL));
    return KV_EXIT_OK;
}

static void print_kcv_line(const kv_keys_result *res, const char *verb, const char *label)
{
    char k[8], c[8];
    kv_hex_encode(res->kcv, 3, k);
    printf("%s %s key '%s' (usage %s): KCV %s (%s)\n", verb, kv_key_type_name(res->type), label,
           kv_key_usage_name(res->usage), k, kv_kcv_method(res->type));
    if (res->weak)
        printf("the key has single-DES strength (equal halves): stored marked weak\n");
    if (res->derive_template < 0)
        printf("the module does not know CKA_DERIVE_TEMPLATE: the key derives without a template "
               "(a token-PIN holder can derive extractable keys from it; see kortvagt hsm info)\n");
    if (res->has_companion) {
        kv_hex_encode(res->companion_kcv, 3, c);
        printf("A||A companion '%s.aa': KCV %s\n", label, c);
    }
}

static int print_result_json(const kv_keys_result *res, const char *label)
{
    char k[8], c[8];
    json_t *o;
    char *s;
    kv_hex_encode(res->kcv, 3, k);
    o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "label", label, "type", kv_key_type_name(res->type),
                  "usage", kv_key_usage_name(res->usage), "kcv", k, "kcv_method",
                  kv_kcv_method(res->type));
    if (o == NULL)
        return KV_EXIT_INTERNAL;
    json_object_set_new(o, "weak", json_boolean(res->weak));
    json_object_set_new(o, "role", json_string(kv_key_role_name(res->usage)));
    json_object_set_new(o, "derive_template",
                        res->derive_template > 0   ? json_true()
                        : res->derive_template < 0 ? json_string("unsupported")
                                                   : json_null());
    if (res->has_companion) {
        char cl[80];
        snprintf(cl, sizeof(cl), "%s.aa", label);
        kv_hex_encode(res->companion_kcv, 3, c);
        json_object_set_new(o, "companion", json_pack("{s:s, s:s}", "label", cl, "kcv", c));
    } else {
        json_object_set_new(o, "companion", json_null());
    }
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (s == NULL)
        return KV_EXIT_INTERNAL;
    puts(s);
    free(s);
    return KV_EXIT_OK;
}

/* Checks shared by import and generate; fills type/usage/id. */
static int check_key_args(const char *cmd, const struct key_opts *o, kv_key_type *t,
                          kv_key_usage *u, uint8_t *id, size_t *id_len)
{
    char why[256];
    unsigned attrs;
    int companion, n;

    if (o->label == NULL)
        return kv_cli_usage_error("key", "%s: missing --label", cmd);
    if (o->type == NULL)
        return kv_cli_usage_error("key", "%s: missing --type", cmd);
    if (kv_keys_label_check(o->label, why, sizeof(why)) != 0)
        return kv_cli_usage_error("key", "%s: %s", cmd, why);
    if (kv_key_type_parse(o->type, t) != 0)
        return kv_cli_usage_error(
            "key", "%s: unknown --type '%s' (des2, des3, aes128, aes192, aes256, hmac)", cmd,
            o->type);
    *u = KV_USAGE_DEFAULT;
    if (o->usage != NULL && kv_key_usage_parse(o->usage, u) != 0)
        return kv_cli_usage_error(
            "key",
            "%s: unknown --usage '%s' (cvk, pvk, pin, imk, imk-cvc3, imk-smi, imk-smc, mac, kek, "
            "token, evidence, pan-enc, state-mac)",
            cmd, o->usage);
    if (kv_keys_policy(*t, *u, &attrs, &companion, why, sizeof(why)) != 0)
        return kv_cli_usage_error("key", "%s: %s", cmd, why);
    *id_len = 0;
    if (o->id != NULL) {
        if ((n = kv_hex_decode(o->id, id, 64)) <= 0)
            return kv_cli_usage_error("key", "%s: --id must be 1 to 64 bytes of hex", cmd);
        *id_len = (size_t)n;
    }
    return KV_EXIT_OK;
}

static int key_import(int argc, char **argv)
{
    struct key_opts o;
    kv_key_type t;
    kv_key_usage u;
    uint8_t id[64], kcv[3];
    size_t id_len = 0, ncomp = 0;
    int kcv_len = 0, rc, r, tty = isatty(STDIN_FILENO);
    kv_secbuf *lines[KV_KEYMAT_MAX_COMPONENTS + 1] = {NULL};
    const char *texts[KV_KEYMAT_MAX_COMPONENTS + 1];
    kv_secbuf *key = NULL;
    kv_hsm *h = NULL;
    kv_keymat_problem p;
    kv_keys_result res;
    char why[512];

    if ((rc = key_parse("import", argc, argv, "label,type,usage,kcv,id,token,module", 1, &o)) !=
        KV_EXIT_OK)
        return rc;
    if ((rc = check_key_args("import", &o, &t, &u, id, &id_len)) != KV_EXIT_OK)
        return rc;
    if (o.kcv != NULL && (kcv_len = kv_kcv_parse(o.kcv, kcv)) < 0)
        return kv_cli_usage_error("key", "import: --kcv must be 4 or 6 hex digits");
    if ((rc = key_open("import", &o, &h)) != KV_EXIT_OK)
        return rc;
    /* refuse a taken label before the custodians enter their components */
    if ((r = kv_keys_label_free(h, o.label, why, sizeof(why))) != 0) {
        rc = key_fail("import", r, why);
        goto out;
    }

    /* the components: one per line, each in its own locked buffer */
    for (;;) {
        char prompt[48];
        kv_secbuf *b = kv_secbuf_new(COMPONENT_LINE_MAX);
        int n;
        if (b == NULL) {
            rc = key_fail("import", KV_ERR_NOMEM, "cannot allocate locked memory");
            goto out;
        }
        snprintf(prompt, sizeof(prompt), "component %zu (empty line ends): ", ncomp + 1);
        n = kv_secret_read_line(STDIN_FILENO, prompt, b);
        if (n == KV_ERR_NOT_FOUND || (n == 0 && tty)) {
            kv_secbuf_free(b);
            break;
        }
        if (n < 0) {
            kv_secbuf_free(b);
            snprintf(why, sizeof(why),
                     n == KV_ERR_BUFFER ? "component %zu is longer than %d characters"
                                        : "cannot read component %zu from stdin",
                     ncomp + 1, COMPONENT_LINE_MAX - 1);
            rc = key_fail("import", n == KV_ERR_BUFFER ? KV_ERR_FORMAT : n, why);
            goto out;
        }
        if (strspn((const char *)kv_secbuf_ptr(b), " \t") == (size_t)n) {
            kv_secbuf_free(b); /* blank line in piped input */
            continue;
        }
        if (ncomp >= KV_KEYMAT_MAX_COMPONENTS) {
            kv_secbuf_free(b);
            snprintf(why, sizeof(why), "more than %d components on stdin: nothing stored",
                     KV_KEYMAT_MAX_COMPONENTS);
            rc = key_fail("import", KV_ERR_FORMAT, why);
            goto out;
        }
        lines[ncomp] = b;
        texts[ncomp] = (const char *)kv_secbuf_ptr(b);
        ncomp++;
    }
    if ((key = kv_secbuf_new(KV_KEYMAT_MAX)) == NULL) {
        rc = key_fail("import", KV_ERR_NOMEM, "cannot allocate locked memory");
        goto out;
    }
    r = kv_keymat_combine_opt(texts, ncomp, t, o.allow_single_des, kv_secbuf_ptr(key),
                              KV_KEYMAT_MAX, &p);
    for (size_t i = 0; i < ncomp; i++) {
        kv_secbuf_free(lines[i]);
        lines[i] = NULL;
    }
    if (r < 0) {
        char text[200];
        kv_keymat_problem_text(&p, t, text, sizeof(text));
        snprintf(why, sizeof(why), "%s: nothing stored", text);
        rc = key_fail("import", KV_ERR_FORMAT, why);
        goto out;
    }
    r = (o.allow_single_des ? kv_keys_import_single_des : kv_keys_import)(
        h, o.label, t, u, id_len ? id : NULL, id_len, kv_secbuf_ptr(key), (size_t)r,
        kcv_len > 0 ? kcv : NULL, (size_t)(kcv_len > 0 ? kcv_len : 0), &res, why, sizeof(why));
    kv_secbuf_free(key);
    key = NULL;
    if (r != 0) {
        rc = key_fail("import", r, why);
        goto out;
    }
    if (o.json)
        rc = print_result_json(&res, o.label);
    else {
        print_kcv_line(&res, "imported", o.label);
        if (kcv_len > 0)
            printf("KCV matches the value given (%d bytes)\n", kcv_len);
        rc = KV_EXIT_OK;
    }
out:
    for (size_t i = 0; i < ncomp; i++)
        kv_secbuf_free(lines[i]);
    kv_secbuf_free(key);
    kv_hsm_close(h);
    return rc;
}

static int key_generate(int argc, char **argv)
{
    struct key_opts o;
    kv_key_type t;
    kv_key_usage u;
    uint8_t id[64];
    size_t id_len = 0;
    kv_hsm *h = NULL;
    kv_keys_result res;
    char why[512];
    int rc, r;

    if ((rc = key_parse("generate", argc, argv, "label,type,usage,id,token,module", 1, &o)) !=
        KV_EXIT_OK)
        return rc;
    if ((rc = check_key_args("generate", &o, &t, &u, id, &id_len)) != KV_EXIT_OK)
        return rc;
    if ((rc = key_open("generate", &o, &h)) != KV_EXIT_OK)
        return rc;
    if ((r = kv_keys_generate(h, o.label, t, u, id_len ? id : NULL, id_len, &res, why,
                              sizeof(why))) != 0) {
        rc = key_fail("generate", r, why);
        goto out;
    }
    if (o.json)
        rc = print_result_json(&res, o.label);
    else {
        print_kcv_line(&res, "generated", o.label);
        rc = KV_EXIT_OK;
    }
out:
    kv_hsm_close(h);
    return rc;
}

static json_t *usage_array(unsigned usage, char *text, size_t cap)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {
        {KV_HSM_USE_ENCRYPT, "encrypt"}, {KV_HSM_USE_DECRYPT, "decrypt"},
        {KV_HSM_USE_SIGN, "sign"},       {KV_HSM_USE_VERIFY, "verify"},
        {KV_HSM_USE_WRAP, "wrap"},       {KV_HSM_USE_UNWRAP, "unwrap"},
        {KV_HSM_USE_DERIVE, "derive"},
    };
    json_t *a = json_array();
    size_t n = 0;
    text[0] = '\0';
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (!(usage & names[i].bit))
            continue;
        json_array_append_new(a, json_string(names[i].name));
        n += (size_t)snprintf(text + n, n < cap ? cap - n : 0, "%s%s", n ? "," : "", names[i].name);
    }
    if (n == 0)
        snprintf(text, cap, "-");
    return a;
}

struct list_row {
    kv_hsm_object_info info;
    char kcv[8];
    const char *kcv_method;
    int token_kcv; /* the token's CKA_CHECK_VALUE, not kortvagt's convention */
};

static int row_cmp(const void *a, const void *b)
{
    return strcmp(((const struct list_row *)a)->info.label,
                  ((const struct list_row *)b)->info.label);
}

static int key_list(int argc, char **argv)
{
    struct key_opts o;
    kv_hsm *h = NULL;
    unsigned long *handles = NULL;
    struct list_row *rows = NULL;
    size_t n = 0;
    json_t *arr = NULL;
    int rc, r, any_token_kcv = 0;

    if ((rc = key_parse("list", argc, argv, "token,module", 1, &o)) != KV_EXIT_OK)
        return rc;
    if ((rc = key_open("list", &o, &h)) != KV_EXIT_OK)
        return rc;
    if ((handles = calloc(LIST_MAX, sizeof(*handles))) == NULL ||
        (rows = calloc(LIST_MAX, sizeof(*rows))) == NULL) {
        rc = key_fail("list", KV_ERR_NOMEM, NULL);
        goto out;
    }
    if ((r = kv_hsm_object_list(h, handles, LIST_MAX, &n)) != 0) {
        rc = key_fail("list", r, kv_hsm_last_error(h));
        goto out;
    }
    if (n > LIST_MAX) {
        fprintf(stderr, "kortvagt key list: %zu keys; showing the first %d\n", n, LIST_MAX);
        n = LIST_MAX;
    }
    for (size_t i = 0; i < n; i++) {
        struct list_row *row = &rows[i];
        uint8_t k[3];
        if ((r = kv_hsm_object_get_info(h, handles[i], &row->info)) != 0) {
            rc = key_fail("list", r, kv_hsm_last_error(h));
            goto out;
        }
        snprintf(row->kcv, sizeof(row->kcv), "-");
        row->kcv_method = NULL;
        if (row->info.type_known &&
            kv_keys_kcv(h, handles[i], row->info.type, row->info.usage, k) == 0) {
            kv_hex_encode(k, 3, row->kcv);
            row->kcv_method = kv_kcv_method(row->info.type);
        } else if (row->info.has_check_value) {
            /* the key may not run the KCV operation (a KEK); the token's own value */
            kv_hex_encode(row->info.check_value, 3, row->kcv);
            if (row->info.type_known && kv_key_type_is_des(row->info.type)) {
                row->kcv_method = kv_kcv_method(row->info.type); /* same definition */
            } else {
                row->kcv_method = "token CKA_CHECK_VALUE (PKCS#11: AES-ECB of 16 zero bytes; "
                                  "generic secret: SHA-1 of the value)";
                row->token_kcv = 1;
                strcat(row->kcv, "*");
                any_token_kcv = 1;
            }
        }
    }
    qsort(rows, n, sizeof(*rows), row_cmp);
    arr = json_array();
    if (!o.json && n > 0)
        printf("%-28s %-7s %-7s %-22s %s\n", "LABEL", "TYPE", "KCV", "USAGE", "ATTRIBUTES");
    for (size_t i = 0; i < n; i++) {
        const kv_hsm_object_info *in = &rows[i].info;
        char use[80], attrs[160];
        const char *type = in->type_known ? kv_key_type_name(in->type) : "other";
        size_t ll = strlen(in->label);
        json_t *ju = usage_array(in->usage, use, sizeof(use));
        json_t *jo;
        snprintf(
            attrs, sizeof(attrs), "%s%s%s%s%s%s", in->sensitive ? "sensitive" : "NOT-SENSITIVE",
            in->extractable ? ",EXTRACTABLE" : ",unextractable",
            in->private_ ? ",private" : ",public", in->always_sensitive ? ",always-sensitive" : "",
            in->never_extractable ? ",never-extractable" : "", in->weak ? ",WEAK(single-DES)" : "");
        jo = json_pack("{s:s, s:s, s:I, s:s, s:o, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b}", "label",
                       in->label, "type", type, "value_len", (json_int_t)in->value_len, "kcv",
                       rows[i].kcv, "usage", ju, "token", in->token, "private", in->private_,
                       "sensitive", in->sensitive, "extractable", in->extractable,
                       "always_sensitive", in->always_sensitive, "never_extractable",
                       in->never_extractable, "modifiable", in->modifiable, "local", in->local);
        if (jo == NULL) {
            rc = KV_EXIT_INTERNAL;
            goto out;
        }
        json_object_set_new(jo, "weak", json_boolean(in->weak));
        if (rows[i].token_kcv)
            json_object_set_new(jo, "kcv", json_stringn(rows[i].kcv, 6));
        json_object_set_new(jo, "kcv_method",
                            rows[i].kcv_method ? json_string(rows[i].kcv_method) : json_null());
        if (ll > 3 && strcmp(in->label + ll - 3, ".aa") == 0)
            json_object_set_new(jo, "companion_of", json_stringn(in->label, ll - 3));
        else
            json_object_set_new(jo, "companion_of", json_null());
        if (in->id_len > 0) {
            char idh[129];
            kv_hex_encode(in->id, in->id_len, idh);
            json_object_set_new(jo, "id", json_string(idh));
        }
        json_array_append_new(arr, jo);
        if (!o.json)
            printf("%-28s %-7s %-7s %-22s %s\n", in->label[0] ? in->label : "(no label)", type,
                   rows[i].kcv, use, attrs);
    }
    if (o.json) {
        char *s = json_dumps(arr, JSON_INDENT(2));
        if (s == NULL) {
            rc = KV_EXIT_INTERNAL;
            goto out;
        }
        puts(s);
        free(s);
    } else if (n == 0) {
        printf("no keys on the token\n");
    } else if (any_token_kcv) {
        printf("* the token's CKA_CHECK_VALUE (AES: AES-ECB of 16 zero bytes; HMAC: SHA-1 of the\n"
               "  value): the key's usage allows neither encryption nor signing, so kortvagt's\n"
               "  KCV (shown by import and generate) cannot be computed here.\n");
    }
    rc = KV_EXIT_OK;
out:
    json_decref(arr);
    free(handles);
    free(rows);
    kv_hsm_close(h);
    return rc;
}

static int key_delete(int argc, char **argv)
{
    struct key_opts o;
    kv_hsm *h = NULL;
    char why[512];
    int rc, r, deleted = 0;

    if ((rc = key_parse("delete", argc, argv, "label,token,module", 0, &o)) != KV_EXIT_OK)
        return rc;
    if (o.label == NULL)
        return kv_cli_usage_error("key", "delete: missing --label");
    if ((rc = key_open("delete", &o, &h)) != KV_EXIT_OK)
        return rc;
    if ((r = kv_keys_delete(h, o.label, &deleted, why, sizeof(why))) != 0) {
        rc = key_fail("delete", r, why);
        goto out;
    }
    printf("deleted key '%s'%s\n", o.label, deleted > 1 ? " and its A||A companion" : "");
    rc = KV_EXIT_OK;
out:
    kv_hsm_close(h);
    return rc;
}

/*
 * Hidden test aid: try to read CKA_VALUE of a key object and print the
 * CK_RV name. Exit 0 when the token refuses, 1 when it would hand out the
 * value (which is never printed).
 */
static int key_probe_value(int argc, char **argv)
{
    struct key_opts o;
    kv_hsm *h = NULL;
    unsigned long handle, rv;
    int rc, r;

    if ((rc = key_parse("probe-value", argc, argv, "label,token,module", 0, &o)) != KV_EXIT_OK)
        return rc;
    if (o.label == NULL)
        return kv_cli_usage_error("key", "probe-value: missing --label");
    if ((rc = key_open("probe-value", &o, &h)) != KV_EXIT_OK)
        return rc;
    if ((r = kv_hsm_object_find(h, o.label, &handle)) != 0) {
        char why[160];
        snprintf(why, sizeof(why), "key '%s' not found on the token", o.label);
        rc = key_fail("probe-value", r, r == KV_ERR_HSM_KEY ? why : kv_hsm_last_error(h));
        goto out;
    }
    if ((r = kv_hsm_object_probe_value(h, handle, &rv)) != 0) {
        rc = key_fail("probe-value", r, kv_hsm_last_error(h));
        goto out;
    }
    printf("%s: CKA_VALUE -> %s\n", o.label, kv_hsm_rv_name(rv));
    rc = rv == 0 ? KV_EXIT_MISMATCH : KV_EXIT_OK;
out:
    kv_hsm_close(h);
    return rc;
}

/*
 * `key audit`: every key object weaker than its role requires (hsm/p11_audit.h).
 * Exit 1 when there is one, 0 when there is none.
 */
static int key_audit(int argc, char **argv)
{
    struct key_opts o;
    kv_hsm *h = NULL;
    kv_hsm_audit_entry *e = NULL;
    size_t n = 0, bad = 0, dt_unknown = 0;
    json_t *arr = NULL;
    char text[1024], use[96];
    int rc, r;

    if ((rc = key_parse("audit", argc, argv, "token,module", 1, &o)) != KV_EXIT_OK)
        return rc;
    if ((rc = key_open("audit", &o, &h)) != KV_EXIT_OK)
        return rc;
    if ((r = kv_hsm_audit_keys(h, &e, &n)) != 0) {
        rc = key_fail("audit", r, r == KV_ERR_NOMEM ? NULL : kv_hsm_last_error(h));
        goto out;
    }
    if ((arr = json_array()) == NULL) {
        rc = key_fail("audit", KV_ERR_NOMEM, NULL);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const kv_hsm_audit_entry *k = &e[i];
        const char *label = k->label[0] ? k->label : "(no label)";
        json_t *jp, *jo;
        dt_unknown += k->derive_template_unknown != 0;
        if (k->problems == 0)
            continue;
        bad++;
        kv_hsm_audit_describe(k, text, sizeof(text));
        if (!o.json) {
            printf("%s: %s\n", label, text);
            continue;
        }
        jp = json_array();
        for (unsigned b = 0; b < KV_AUDIT_PROBLEM_COUNT; b++)
            if (k->problems & (1u << b))
                json_array_append_new(jp, json_string(kv_hsm_audit_problem_name(1u << b)));
        kv_hsm_usage_text(k->usage, use, sizeof(use));
        jo = json_pack("{s:s, s:s, s:s, s:s, s:o, s:s}", "label", label, "class",
                       k->private_key ? "private-key" : "secret-key", "type",
                       kv_hsm_audit_type_name(k), "role", kv_hsm_audit_role_name(k), "problems", jp,
                       "text", text);
        if (jo == NULL) {
            rc = KV_EXIT_INTERNAL;
            goto out;
        }
        json_object_set_new(jo, "usage", json_string(use));
        json_array_append_new(arr, jo);
    }
    if (o.json) {
        char *s = json_dumps(arr, JSON_INDENT(2));
        if (s == NULL) {
            rc = KV_EXIT_INTERNAL;
            goto out;
        }
        puts(s);
        free(s);
    } else if (bad == 0) {
        printf("%zu key%s audited: none is weaker than its role requires\n", n, n == 1 ? "" : "s");
    }
    if (dt_unknown > 0)
        fprintf(stderr,
                "kortvagt key audit: note: %zu derive key%s without CKA_DERIVE_TEMPLATE: this "
                "module does not know the attribute, so no key on it can carry one; a holder of "
                "the token PIN can derive clear keys from them (see kortvagt hsm info)\n",
                dt_unknown, dt_unknown == 1 ? "" : "s");
    rc = bad > 0 ? KV_EXIT_MISMATCH : KV_EXIT_OK;
out:
    json_decref(arr);
    free(e);
    kv_hsm_close(h);
    return rc;
}

int kv_cmd_key(int argc, char **argv)
{
    if (argc < 2) {
        key_usage(stderr);
        return KV_EXIT_USAGE;
    }
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            key_usage(stdout);
            return KV_EXIT_OK;
        }
    if (strcmp(argv[1], "import") == 0)
        return key_import(argc, argv);
    if (strcmp(argv[1], "generate") == 0)
        return key_generate(argc, argv);
    if (strcmp(argv[1], "list") == 0)
        return key_list(argc, argv);
    if (strcmp(argv[1], "delete") == 0)
        return key_delete(argc, argv);
    if (strcmp(argv[1], "probe-value") == 0)
        return key_probe_value(argc, argv);
    if (strcmp(argv[1], "audit") == 0)
        return key_audit(argc, argv);
    return kv_cli_usage_error("key", "unknown command '%s' (import, generate, list, delete, audit)",
                              argv[1]);
}

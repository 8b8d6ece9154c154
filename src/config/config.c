/* see config.h */
#include "src/config/config.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/config/pin_params.h"
#include "src/config/terminal.h"

#include <ini.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct kv_entry {
    char *section;
    char *key;
    char *value;
};

struct kv_config {
    kv_limits_config limits;
    kv_term_config terminal; /* [terminal] and [aid HEX] (terminal.h) */
    /* the line of each AID entry's last target_percent / max_target_percent (0: none) */
    int term_lines[KV_TERMCFG_MAX_AIDS];
    char *path;
    struct kv_entry *entries;
    size_t n, cap;
    /* parse state */
    char *err;
    size_t errlen;
    int rc;
    FILE *file;
    int lineno;
};

static int parse_amount(const char *v, int64_t *out)
{
    char *end;
    if (v[0] < '0' || v[0] > '9')
        return KV_ERR_CONFIG;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno != 0 || *end != '\0' || x < 0)
        return KV_ERR_CONFIG;
    *out = (int64_t)x;
    return 0;
}

static int parse_counter(const char *v, kv_counter_kind *out)
{
    if (strcmp(v, "count") == 0)
        *out = KV_COUNTER_COUNT;
    else if (strcmp(v, "amount") == 0)
        *out = KV_COUNTER_AMOUNT;
    else
        return KV_ERR_CONFIG;
    return 0;
}

static int parse_bool(const char *v, int *out)
{
    if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "on") == 0 ||
        strcmp(v, "1") == 0)
        *out = 1;
    else if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0 || strcmp(v, "off") == 0 ||
             strcmp(v, "0") == 0)
        *out = 0;
    else
        return KV_ERR_CONFIG;
    return 0;
}

int kv_limits_set(kv_limits_config *l, const char *key, const char *value)
{
    static const struct {
        const char *key;
        size_t off;
    } amounts[] = {
        {"contactless_single_max", offsetof(kv_limits_config, contactless.single_max)},
        {"contactless_count_max", offsetof(kv_limits_config, contactless.count_max)},
        {"contactless_cumulative_max", offsetof(kv_limits_config, contactless.cumulative_max)},
        {"remote_single_max", offsetof(kv_limits_config, remote.single_max)},
        {"remote_count_max", offsetof(kv_limits_config, remote.count_max)},
        {"remote_cumulative_max", offsetof(kv_limits_config, remote.cumulative_max)},
        {"atm_daily_max", offsetof(kv_limits_config, atm_daily_max)},
        {"gambling_daily_max", offsetof(kv_limits_config, gambling_daily_max)},
    };
    for (size_t i = 0; i < sizeof(amounts) / sizeof(amounts[0]); i++)
        if (strcmp(key, amounts[i].key) == 0)
            return parse_amount(value, (int64_t *)(void *)((char *)l + amounts[i].off));
    if (strcmp(key, "contactless_counter") == 0)
        return parse_counter(value, &l->contactless.counter);
    if (strcmp(key, "remote_counter") == 0)
        return parse_counter(value, &l->remote.counter);
    if (strcmp(key, "include_current") == 0)
        return parse_bool(value, &l->include_current);
    return KV_ERR_NOT_FOUND;
}

static const char *value_hint(const char *key)
{
    if (strstr(key, "_counter") != NULL)
        return "must be 'count' or 'amount'";
    if (strcmp(key, "include_current") == 0)
        return "must be true or false";
    return "is not a non-negative integer (minor units or a count)";
}

static char *str_dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

static int add_entry(kv_config *c, const char *section, const char *key, const char *value)
{
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 16;
        struct kv_entry *e = realloc(c->entries, ncap * sizeof(*e));
        if (e == NULL)
            return KV_ERR_NOMEM;
        c->entries = e;
        c->cap = ncap;
    }
    struct kv_entry *e = &c->entries[c->n];
    e->section = str_dup(section);
    e->key = str_dup(key);
    e->value = str_dup(value);
    if (e->section == NULL || e->key == NULL || e->value == NULL) {
        free(e->section);
        free(e->key);
        free(e->value);
        return KV_ERR_NOMEM;
    }
    c->n++;
    return 0;
}

/*
 * inih's handler has no line number unless the library was built with
 * INI_HANDLER_LINENO (Debian's is not), so the reader counts the lines: inih
 * handles each line right after reading it.
 */
static char *read_line(char *str, int num, void *stream)
{
    kv_config *c = stream;
    char *s = fgets(str, num, c->file);
    if (s != NULL)
        c->lineno++;
    return s;
}

/*
 * [verify] pin_tries_max / code_tries_max (src/attempts) and [pvk.LABEL]
 * dec_table / validation_data / pad (pin_params.h): checked on load, so a
 * bad file stops at its line instead of at the first verification.
 */
static int check_verify_line(kv_config *c, int lineno, const char *section, const char *name,
                             const char *value)
{
    char why[160];
    why[0] = '\0';
    if (section[0] == 'p') {
        kv_pin_params p;
        int r;
        kv_pin_params_defaults(&p);
        if (section[4] == '\0') {
            snprintf(c->err, c->errlen, "%s:%d: [pvk.] needs a key label: [pvk.LABEL]", c->path,
                     lineno);
            c->rc = KV_ERR_CONFIG;
            return 0;
        }
        if ((r = kv_pin_params_set(&p, name, value, why, sizeof(why))) == 0)
            return 1;
        if (r == KV_ERR_NOT_FOUND)
            snprintf(c->err, c->errlen, "%s:%d: [%s] %s: %s", c->path, lineno, section, name, why);
        else
            snprintf(c->err, c->errlen, "%s:%d: [%s] %s: '%s' %s", c->path, lineno, section, name,
                     value, why);
        c->rc = KV_ERR_CONFIG;
        return 0;
    }
    if (strcmp(name, "pin_tries_max") != 0 && strcmp(name, "code_tries_max") != 0) {
        snprintf(c->err, c->errlen,
                 "%s:%d: [verify] %s: unknown key (pin_tries_max, "
                 "code_tries_max)",
                 c->path, lineno, name);
        c->rc = KV_ERR_CONFIG;
        return 0;
    }
    int64_t v;
    if (parse_amount(value, &v) != 0 || v < 1 || v > 1000) {
        snprintf(c->err, c->errlen, "%s:%d: [verify] %s: '%s' is not an integer from 1 to 1000",
                 c->path, lineno, name, value);
        c->rc = KV_ERR_CONFIG;
        return 0;
    }
    return 1;
}

/* [terminal] and [aid HEX] (terminal.h), read into c->terminal as the file goes */
static int check_terminal_line(kv_config *c, int lineno, const char *section, const char *name,
                               const char *value)
{
    char why[400];
    size_t idx = KV_TERMCFG_MAX_AIDS;
    int r = kv_term_config_set(&c->terminal, section, name, value, &idx, why, sizeof(why));
    if (r != 0) {
        snprintf(c->err, c->errlen, "%s:%d: [%s] %s: %s", c->path, lineno, section, name, why);
        c->rc = KV_ERR_CONFIG;
        return 0;
    }
    if (idx < KV_TERMCFG_MAX_AIDS &&
        (strcmp(name, "target_percent") == 0 || strcmp(name, "max_target_percent") == 0))
        c->term_lines[idx] = lineno;
    return 1;
}

/* After the whole file: the checks across keys of terminal.h. */
static int check_terminal_file(kv_config *c)
{
    char why[160], hex[33];
    size_t bad = 0;
    if (kv_term_config_check(&c->terminal, &bad, why, sizeof(why)) == 0)
        return 0;
    kv_hex_encode(c->terminal.aids[bad].aid, c->terminal.aids[bad].aid_len, hex);
    snprintf(c->err, c->errlen, "%s:%d: [aid %s] max_target_percent: %s", c->path,
             c->term_lines[bad], hex, why);
    return KV_ERR_CONFIG;
}

static int on_line(void *user, const char *section, const char *name, const char *value)
{
    kv_config *c = user;
    int lineno = c->lineno;
    int r;
    if (c->rc != 0)
        return 0;
    if ((r = add_entry(c, section, name, value)) != 0) {
        c->rc = r;
        return 0;
    }
    if (strncmp(section, "pvk.", 4) == 0 || strcmp(section, "verify") == 0)
        return check_verify_line(c, lineno, section, name, value);
    if (kv_term_config_is_section(section))
        return check_terminal_line(c, lineno, section, name, value);
    if (strcmp(section, "limits") != 0)
        return 1;
    r = kv_limits_set(&c->limits, name, value);
    if (r == KV_ERR_NOT_FOUND) {
        snprintf(c->err, c->errlen, "%s:%d: [limits] %s: unknown key", c->path, lineno, name);
        c->rc = KV_ERR_CONFIG;
        return 0;
    }
    if (r != 0) {
        snprintf(c->err, c->errlen, "%s:%d: [limits] %s: '%s' %s", c->path, lineno, name, value,
                 value_hint(name));
        c->rc = KV_ERR_CONFIG;
        return 0;
    }
    return 1;
}

kv_config *kv_config_new_defaults(void)
{
    kv_config *c = calloc(1, sizeof(*c));
    if (c != NULL) {
        kv_limits_defaults(&c->limits);
        kv_term_config_defaults(&c->terminal);
    }
    return c;
}

int kv_config_load(const char *path, kv_config **out, char *err, size_t errlen)
{
    int r = KV_ERR_INTERNAL;
    char dummy[1];
    kv_config *c = NULL;
    FILE *f = NULL;

    *out = NULL;
    if (err == NULL) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = '\0';
    if ((c = kv_config_new_defaults()) == NULL) {
        r = KV_ERR_NOMEM;
        goto out;
    }
    c->err = err;
    c->errlen = errlen;
    if (path == NULL) {
        if (access("./kortvagt.conf", F_OK) == 0)
            path = "./kortvagt.conf";
        else if (access("/etc/kortvagt/kortvagt.conf", F_OK) == 0)
            path = "/etc/kortvagt/kortvagt.conf";
    }
    if (path != NULL) {
        if ((c->path = str_dup(path)) == NULL) {
            r = KV_ERR_NOMEM;
            goto out;
        }
        if ((f = fopen(path, "r")) == NULL) {
            snprintf(err, errlen, "%s: cannot read the configuration file: %s", path,
                     strerror(errno));
            r = KV_ERR_IO;
            goto out;
        }
        c->file = f;
        int line = ini_parse_stream(read_line, c, on_line, c);
        if (c->rc != 0) {
            r = c->rc;
            goto out;
        }
        if (line != 0) {
            snprintf(err, errlen, "%s:%d: not valid INI syntax", path, line);
            r = KV_ERR_CONFIG;
            goto out;
        }
        if ((r = check_terminal_file(c)) != 0)
            goto out;
    }
    c->err = NULL;
    c->errlen = 0;
    *out = c;
    c = NULL; /* transferred */
    r = 0;
out:
    if (f != NULL)
        fclose(f);
    kv_config_free(c);
    return r;
}

void kv_config_free(kv_config *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++) {
        free(c->entries[i].section);
        free(c->entries[i].key);
        free(c->entries[i].value);
    }
    free(c->entries);
    free(c->path);
    free(c);
}

const kv_limits_config *kv_config_limits(const kv_config *c)
{
    return &c->limits;
}

const kv_term_config *kv_config_terminal(const kv_config *c)
{
    return &c->terminal;
}

const char *kv_config_path(const kv_config *c)
{
    return c->path;
}

const char *kv_config_get(const kv_config *c, const char *section, const char *key)
{
    for (size_t i = c->n; i > 0; i--)
        if (strcmp(c->entries[i - 1].section, section) == 0 &&
            strcmp(c->entries[i - 1].key, key) == 0)
            return c->entries[i - 1].value;
    return NULL;
}

const char *kv_config_store_url(const kv_config *c)
{
    const char *v;
    if (c != NULL && (v = kv_config_get(c, "store", "url")) != NULL && v[0] != '\0')
        return v;
    return KV_CONFIG_DEFAULT_STORE;
}

/* see settings.h */
#include "src/app/settings.h"
#include "src/base/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The value of an environment variable; NULL when unset or empty. */
static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* flag > environment into out; "" when neither. */
static int pick(char *out, size_t cap, const char *flag, const char *var, const char *what,
                char *err, size_t errlen)
{
    const char *v = flag != NULL && flag[0] != '\0' ? flag : env(var);
    out[0] = '\0';
    if (v == NULL)
        return 0;
    if (strlen(v) >= cap) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s is longer than %zu bytes", what, cap - 1);
        return KV_ERR_ARG;
    }
    memcpy(out, v, strlen(v) + 1);
    return 0;
}

/* A secret variable into locked memory; *out NULL when unset. */
static int secret(const char *var, kv_secbuf **out, size_t *len, char *err, size_t errlen)
{
    const char *v = env(var);
    size_t n;
    *out = NULL;
    *len = 0;
    if (v == NULL)
        return 0;
    n = strlen(v);
    if ((*out = kv_secbuf_new(n + 1)) == NULL) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "cannot allocate locked memory for $%s", var);
        return KV_ERR_NOMEM;
    }
    memcpy(kv_secbuf_ptr(*out), v, n + 1);
    *len = n;
    return 0;
}

int kv_settings_init(kv_settings *s, const kv_settings_flags *flags, char *err, size_t errlen)
{
    static const kv_settings_flags none;
    const kv_settings_flags *f = flags != NULL ? flags : &none;
    int r;

    memset(s, 0, sizeof(*s));
    if ((r = pick(s->config_path, sizeof(s->config_path), f->config, "KORTVAGT_CONFIG",
                  "the configuration file name", err, errlen)) != 0 ||
        (r = pick(s->store.url, sizeof(s->store.url), f->store, "KORTVAGT_STORE", "the store URL",
                  err, errlen)) != 0 ||
        (r = pick(s->hsm.module, sizeof(s->hsm.module), f->module, "KORTVAGT_PKCS11_MODULE",
                  "the PKCS#11 module path", err, errlen)) != 0 ||
        (r = pick(s->hsm.token, sizeof(s->hsm.token), f->token, "KORTVAGT_TOKEN", "the token name",
                  err, errlen)) != 0 ||
        (r = pick(s->hsm.pin_file, sizeof(s->hsm.pin_file), NULL, "KORTVAGT_PIN_FILE",
                  "the PIN file name", err, errlen)) != 0 ||
        (r = pick(s->reader.name, sizeof(s->reader.name), f->reader, "KORTVAGT_READER",
                  "the reader name", err, errlen)) != 0 ||
        (r = pick(s->vcard.transport_key, sizeof(s->vcard.transport_key), f->transport_key,
                  "KORTVAGT_TRANSPORT_KEY", "the transport key file name", err, errlen)) != 0 ||
        (r = pick(s->terminal.capk, sizeof(s->terminal.capk), f->capk, "KORTVAGT_CAPK",
                  "the CA key file name", err, errlen)) != 0)
        return r;
    s->store_flag = s->store.url[0] != '\0';
    return 0;
}

int kv_settings_read_secrets(kv_settings *s, char *err, size_t errlen)
{
    int r;
    if (s->hsm.secrets_read)
        return 0;
    if ((r = secret("KORTVAGT_PIN", &s->hsm.pin, &s->hsm.pin_len, err, errlen)) != 0 ||
        (r = secret("KORTVAGT_SO_PIN", &s->hsm.so_pin, &s->hsm.so_pin_len, err, errlen)) != 0)
        return r;
    s->hsm.secrets_read = 1;
    return 0;
}

const char *kv_settings_store_url(const kv_settings *s, const kv_config *c)
{
    if (s != NULL && s->store_flag)
        return s->store.url;
    return kv_config_store_url(c);
}

int kv_settings_load_config(kv_settings *s, kv_config **out, char *err, size_t errlen)
{
    int r = kv_config_load(kv_settings_opt(s->config_path), out, err, errlen);
    if (r != 0)
        return r;
    if (!s->store_flag) /* else the flag's or the variable's URL stays */
        snprintf(s->store.url, sizeof(s->store.url), "%s", kv_config_store_url(*out));
    return 0;
}

/* A [daemon] number within min..max into *out; an absent key leaves *out. */
static int daemon_number(const kv_config *c, const char *key, long min, long max, long *out,
                         char *err, size_t errlen)
{
    const char *v = kv_config_get(c, "daemon", key);
    char *end;
    long x;
    if (v == NULL)
        return 0;
    errno = 0;
    x = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || x < min || x > max) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "[daemon] %s: '%s' is not a number %ld..%ld", key, v, min, max);
        return KV_ERR_CONFIG;
    }
    *out = x;
    return 0;
}

int kv_settings_daemon_resolve(const kv_settings_daemon_flags *f, const kv_config *c,
                               kv_settings_daemon *out, char *err, size_t errlen)
{
    const char *v;
    int r;

    memset(out, 0, sizeof(*out));
    out->port = 8470;
    out->workers = 2;
    out->max_body = KV_SETTINGS_DAEMON_MAX_BODY;
    out->connection_timeout = 30;
    out->drain_seconds = 10;
    out->request_read_timeout = 10;
    out->max_connections_per_ip = KV_SETTINGS_DAEMON_PER_IP;
    out->listen = f->listen != NULL                                    ? f->listen
                  : (v = kv_config_get(c, "daemon", "listen")) != NULL ? v
                                                                       : "127.0.0.1";
    out->tokens_file =
        f->tokens_file != NULL ? f->tokens_file : kv_config_get(c, "daemon", "tokens_file");
    out->tls_key = kv_config_get(c, "daemon", "tls_key");
    out->tls_cert = kv_config_get(c, "daemon", "tls_cert");
    out->tls_client_ca = kv_config_get(c, "daemon", "tls_client_ca");
    out->tls_priorities = (v = kv_config_get(c, "daemon", "tls_priorities")) != NULL && v[0] != '\0'
                              ? v
                              : KV_SETTINGS_DAEMON_TLS_PRIO;
    if (f->port >= 0)
        out->port = f->port;
    else if ((r = daemon_number(c, "port", 0, 65535, &out->port, err, errlen)) != 0)
        return r;
    if (f->workers > 0)
        out->workers = f->workers;
    else if ((r = daemon_number(c, "workers", 1, KV_SETTINGS_DAEMON_MAX_WORKERS, &out->workers, err,
                                errlen)) != 0)
        return r;
    if (f->max_body > 0)
        out->max_body = f->max_body;
    else if ((r = daemon_number(c, "max_body", 1, 64L << 20, &out->max_body, err, errlen)) != 0)
        return r;
    if ((r = daemon_number(c, "connection_timeout", 1, 3600, &out->connection_timeout, err,
                           errlen)) != 0 ||
        (r = daemon_number(c, "drain_seconds", 0, 3600, &out->drain_seconds, err, errlen)) != 0 ||
        (r = daemon_number(c, "request_read_timeout", 1, 3600, &out->request_read_timeout, err,
                           errlen)) != 0 ||
        (r = daemon_number(c, "max_connections_per_ip", 1, 1000, &out->max_connections_per_ip, err,
                           errlen)) != 0)
        return r;
    {
        /* read per request by the authorize endpoint; checked here so a bad value stops the start
         */
        long skew = 300;
        if ((r = daemon_number(c, "max_clock_skew", 0, 86400, &skew, err, errlen)) != 0)
            return r;
    }
    out->access_log = f->access_log;
    if ((v = kv_config_get(c, "daemon", "access_log")) != NULL)
        out->access_log |= strcmp(v, "true") == 0 || strcmp(v, "1") == 0 || strcmp(v, "yes") == 0;
    return 0;
}

void kv_settings_clear(kv_settings *s)
{
    if (s == NULL)
        return;
    kv_secbuf_free(s->hsm.pin);
    kv_secbuf_free(s->hsm.so_pin);
    s->hsm.pin = NULL;
    s->hsm.so_pin = NULL;
    s->hsm.pin_len = 0;
    s->hsm.so_pin_len = 0;
    s->hsm.secrets_read = 0;
}

/*
 * Settings resolved once (src/app/settings.h): flags > environment >
 * configuration file > defaults, every variable with the meaning the README
 * gives it, the PINs in locked memory and only on request.
 */
#include "src/app/settings.h"
#include "src/base/err.h"
#include "src/config/config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const vars[] = {"KORTVAGT_CONFIG", "KORTVAGT_STORE",  "KORTVAGT_PKCS11_MODULE",
                                   "KORTVAGT_TOKEN",  "KORTVAGT_PIN",    "KORTVAGT_PIN_FILE",
                                   "KORTVAGT_SO_PIN", "KORTVAGT_READER", "KORTVAGT_TRANSPORT_KEY",
                                   "KORTVAGT_CAPK"};

static void clear_env(void)
{
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
}

/* A configuration file with [store] url = sqlite:/tmp/x.db; path receives its name. */
static void write_config(char path[64])
{
    static const char text[] = "[store]\nurl = sqlite:/tmp/x.db\n";
    int fd;
    snprintf(path, 64, "/tmp/kv_settings_XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void test_defaults(void **state)
{
    kv_settings s;
    (void)state;
    clear_env();
    assert_int_equal(kv_settings_init(&s, NULL, NULL, 0), 0);
    assert_string_equal(s.config_path, "");
    assert_string_equal(s.hsm.module, "");
    assert_string_equal(s.hsm.token, "");
    assert_string_equal(s.reader.name, "");
    assert_string_equal(s.vcard.transport_key, "");
    assert_string_equal(s.terminal.capk, "");
    assert_null(kv_settings_opt(s.reader.name));
    assert_int_equal(s.store_flag, 0);
    assert_null(s.hsm.pin);
    assert_int_equal(kv_settings_read_secrets(&s, NULL, 0), 0);
    assert_null(s.hsm.pin);
    assert_null(s.hsm.so_pin);
    /* no file, no variable: the default store */
    assert_string_equal(kv_settings_store_url(&s, NULL), KV_CONFIG_DEFAULT_STORE);
    kv_settings_clear(&s);
}

static void test_environment_over_file(void **state)
{
    char path[64], err[256];
    kv_settings s;
    kv_config *c = NULL;
    (void)state;
    clear_env();
    write_config(path);

    /* $KORTVAGT_CONFIG names the file; its [store] url counts without a variable */
    setenv("KORTVAGT_CONFIG", path, 1);
    assert_int_equal(kv_settings_init(&s, NULL, err, sizeof(err)), 0);
    assert_string_equal(s.config_path, path);
    assert_int_equal(kv_settings_load_config(&s, &c, err, sizeof(err)), 0);
    assert_string_equal(kv_config_path(c), path);
    assert_string_equal(s.store.url, "sqlite:/tmp/x.db");
    assert_string_equal(kv_config_store_url(c), "sqlite:/tmp/x.db");

    /* $KORTVAGT_STORE over [store] url (what test_limits asserted of config.c before) */
    setenv("KORTVAGT_STORE", "sqlite:/tmp/y.db", 1);
    assert_string_equal(kv_settings_store_url(&s, c), "sqlite:/tmp/x.db"); /* s resolved before */
    kv_settings_clear(&s);
    assert_int_equal(kv_settings_init(&s, NULL, err, sizeof(err)), 0);
    assert_string_equal(kv_settings_store_url(&s, c), "sqlite:/tmp/y.db");
    kv_config_free(c);
    c = NULL;
    assert_int_equal(kv_settings_load_config(&s, &c, err, sizeof(err)), 0);
    assert_string_equal(s.store.url, "sqlite:/tmp/y.db");
    /* the file keeps its own value */
    assert_string_equal(kv_config_get(c, "store", "url"), "sqlite:/tmp/x.db");
    kv_config_free(c);
    c = NULL;
    kv_settings_clear(&s);

    /* an empty variable counts as unset */
    setenv("KORTVAGT_STORE", "", 1);
    assert_int_equal(kv_settings_init(&s, NULL, err, sizeof(err)), 0);
    assert_int_equal(kv_settings_load_config(&s, &c, err, sizeof(err)), 0);
    assert_string_equal(s.store.url, "sqlite:/tmp/x.db");
    kv_config_free(c);
    c = NULL;
    kv_settings_clear(&s);

    /* a named file that does not exist */
    setenv("KORTVAGT_CONFIG", "/nonexistent/kortvagt.conf", 1);
    assert_int_equal(kv_settings_init(&s, NULL, err, sizeof(err)), 0);
    assert_int_equal(kv_settings_load_config(&s, &c, err, sizeof(err)), KV_ERR_IO);
    assert_non_null(strstr(err, "/nonexistent/kortvagt.conf"));
    assert_null(c);
    kv_settings_clear(&s);

    clear_env();
    unlink(path);
}

static void test_flags_over_environment(void **state)
{
    char path[64], err[256];
    kv_settings s;
    kv_config *c = NULL;
    kv_settings_flags f = {.config = NULL,
                           .store = "sqlite:/tmp/flag.db",
                           .module = "/flag/module.so",
                           .token = "flagtoken",
                           .reader = "Flag Reader",
                           .transport_key = "/flag/transport.key"};
    (void)state;
    clear_env();
    write_config(path);
    f.config = path;
    setenv("KORTVAGT_CONFIG", "/nonexistent/kortvagt.conf", 1);
    setenv("KORTVAGT_STORE", "sqlite:/tmp/env.db", 1);
    setenv("KORTVAGT_PKCS11_MODULE", "/env/module.so", 1);
    setenv("KORTVAGT_TOKEN", "envtoken", 1);
    setenv("KORTVAGT_READER", "Env Reader", 1);
    setenv("KORTVAGT_TRANSPORT_KEY", "/env/transport.key", 1);
    setenv("KORTVAGT_CAPK", "/env/capk.json", 1);

    assert_int_equal(kv_settings_init(&s, &f, err, sizeof(err)), 0);
    assert_string_equal(s.config_path, path);
    assert_string_equal(s.hsm.module, "/flag/module.so");
    assert_string_equal(s.hsm.token, "flagtoken");
    assert_string_equal(s.reader.name, "Flag Reader");
    assert_string_equal(s.vcard.transport_key, "/flag/transport.key");
    assert_string_equal(s.terminal.capk, "/env/capk.json"); /* no --capk flag given */
    assert_int_equal(kv_settings_load_config(&s, &c, err, sizeof(err)), 0);
    assert_string_equal(s.store.url, "sqlite:/tmp/flag.db");
    kv_config_free(c);
    kv_settings_clear(&s);

    /* without flags: the environment */
    assert_int_equal(kv_settings_init(&s, NULL, err, sizeof(err)), 0);
    assert_string_equal(s.config_path, "/nonexistent/kortvagt.conf");
    assert_string_equal(s.store.url, "sqlite:/tmp/env.db");
    assert_int_equal(s.store_flag, 1);
    assert_string_equal(s.hsm.module, "/env/module.so");
    assert_string_equal(s.hsm.token, "envtoken");
    assert_string_equal(s.reader.name, "Env Reader");
    assert_string_equal(s.vcard.transport_key, "/env/transport.key");
    assert_string_equal(s.terminal.capk, "/env/capk.json");
    kv_settings_clear(&s);

    clear_env();
    unlink(path);
}

static void test_secrets(void **state)
{
    char err[256];
    kv_settings s;
    (void)state;
    clear_env();
    setenv("KORTVAGT_PIN", "123456", 1);
    setenv("KORTVAGT_SO_PIN", "so-secret", 1);
    setenv("KORTVAGT_PIN_FILE", "/run/kortvagt/pin", 1);
    assert_int_equal(kv_settings_init(&s, NULL, err, sizeof(err)), 0);
    /* not read until asked */
    assert_null(s.hsm.pin);
    assert_null(s.hsm.so_pin);
    assert_string_equal(s.hsm.pin_file, "/run/kortvagt/pin");
    assert_int_equal(kv_settings_read_secrets(&s, err, sizeof(err)), 0);
    assert_non_null(s.hsm.pin);
    assert_int_equal(s.hsm.pin_len, 6);
    assert_memory_equal(kv_secbuf_ptr(s.hsm.pin), "123456", 7);
    assert_non_null(s.hsm.so_pin);
    assert_int_equal(s.hsm.so_pin_len, 9);
    assert_memory_equal(kv_secbuf_ptr(s.hsm.so_pin), "so-secret", 10);
    /* once */
    assert_int_equal(kv_settings_read_secrets(&s, err, sizeof(err)), 0);
    kv_settings_clear(&s);
    assert_null(s.hsm.pin);
    assert_null(s.hsm.so_pin);
    assert_int_equal(s.hsm.pin_len, 0);
    clear_env();
}

static void test_too_long(void **state)
{
    static char longname[KV_SETTINGS_PATH_MAX + 10];
    char err[256] = "";
    kv_settings s;
    kv_settings_flags f = {.reader = longname};
    (void)state;
    clear_env();
    memset(longname, 'r', sizeof(longname) - 1);
    assert_int_equal(kv_settings_init(&s, &f, err, sizeof(err)), KV_ERR_ARG);
    assert_non_null(strstr(err, "reader"));
    kv_settings_clear(&s);
}

/* A configuration file with the given text; path receives its name. */
static kv_config *config_of(const char *text, char path[64], int *rc, char *err, size_t errlen)
{
    kv_config *c = NULL;
    int fd;
    snprintf(path, 64, "/tmp/kv_settings_XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    *rc = kv_config_load(path, &c, err, errlen);
    unlink(path);
    return c;
}

static void test_daemon(void **state)
{
    char path[64], err[256];
    int rc;
    kv_config *c;
    kv_settings_daemon d;
    kv_settings_daemon_flags none = {NULL, NULL, -1, 0, 0, 0};
    kv_settings_daemon_flags f = {"::1", "/flag/tokens", 0, 3, 1000, 1};
    (void)state;

    /* defaults */
    c = config_of("", path, &rc, err, sizeof(err));
    assert_int_equal(rc, 0);
    assert_int_equal(kv_settings_daemon_resolve(&none, c, &d, err, sizeof(err)), 0);
    assert_string_equal(d.listen, "127.0.0.1");
    assert_null(d.tokens_file);
    assert_null(d.tls_key);
    assert_int_equal(d.port, 8470);
    assert_int_equal(d.workers, 2);
    assert_int_equal(d.max_body, KV_SETTINGS_DAEMON_MAX_BODY);
    assert_int_equal(d.connection_timeout, 30);
    assert_int_equal(d.drain_seconds, 10);
    assert_int_equal(d.access_log, 0);
    kv_config_free(c);

    /* the file over the defaults, the flags over the file */
    c = config_of("[daemon]\nlisten = 0.0.0.0\nport = 9000\nworkers = 4\ntokens_file = /f/t\n"
                  "max_body = 2048\nconnection_timeout = 5\ndrain_seconds = 0\naccess_log = yes\n"
                  "tls_key = /k.pem\ntls_cert = /c.pem\n",
                  path, &rc, err, sizeof(err));
    assert_int_equal(rc, 0);
    assert_int_equal(kv_settings_daemon_resolve(&none, c, &d, err, sizeof(err)), 0);
    assert_string_equal(d.listen, "0.0.0.0");
    assert_string_equal(d.tokens_file, "/f/t");
    assert_string_equal(d.tls_key, "/k.pem");
    assert_string_equal(d.tls_cert, "/c.pem");
    assert_int_equal(d.port, 9000);
    assert_int_equal(d.workers, 4);
    assert_int_equal(d.max_body, 2048);
    assert_int_equal(d.connection_timeout, 5);
    assert_int_equal(d.drain_seconds, 0);
    assert_int_equal(d.access_log, 1);
    assert_int_equal(kv_settings_daemon_resolve(&f, c, &d, err, sizeof(err)), 0);
    assert_string_equal(d.listen, "::1");
    assert_string_equal(d.tokens_file, "/flag/tokens");
    assert_int_equal(d.port, 0); /* --port 0: any port */
    assert_int_equal(d.workers, 3);
    assert_int_equal(d.max_body, 1000);
    kv_config_free(c);

    /* a bad value names the key and the bounds */
    c = config_of("[daemon]\nworkers = 65\n", path, &rc, err, sizeof(err));
    assert_int_equal(rc, 0);
    assert_int_equal(kv_settings_daemon_resolve(&none, c, &d, err, sizeof(err)), KV_ERR_CONFIG);
    assert_string_equal(err, "[daemon] workers: '65' is not a number 1..64");
    /* a flag wins without the file's value being read */
    f.port = -1;
    assert_int_equal(kv_settings_daemon_resolve(&f, c, &d, err, sizeof(err)), 0);
    assert_int_equal(d.workers, 3);
    kv_config_free(c);
    c = config_of("[daemon]\nport = x\n", path, &rc, err, sizeof(err));
    assert_int_equal(kv_settings_daemon_resolve(&none, c, &d, err, sizeof(err)), KV_ERR_CONFIG);
    assert_string_equal(err, "[daemon] port: 'x' is not a number 0..65535");
    kv_config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_environment_over_file),
        cmocka_unit_test(test_flags_over_environment),
        cmocka_unit_test(test_secrets),
        cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_daemon),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

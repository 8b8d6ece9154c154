/*
 * Settings, resolved once: flags > environment > configuration file >
 * defaults, into typed structs. This is the only place of the project that
 * reads the environment for a setting; every layer below takes its values
 * as arguments (the HSM its module, token and PIN, the reader its name, the
 * virtual card its transport key, the store its URL).
 *
 *   variable                 setting              flag
 *   KORTVAGT_CONFIG          the file (config.h)  --config
 *   KORTVAGT_STORE           store.url            --store    (file: [store] url)
 *   KORTVAGT_PKCS11_MODULE   hsm.module           --module
 *   KORTVAGT_TOKEN           hsm.token            --token
 *   KORTVAGT_PIN             hsm.pin              (never a flag)
 *   KORTVAGT_PIN_FILE        hsm.pin_file         (never a flag)
 *   KORTVAGT_SO_PIN          hsm.so_pin           (never a flag)
 *   KORTVAGT_READER          reader.name          --reader
 *   KORTVAGT_TRANSPORT_KEY   vcard.transport_key  --transport-key
 *   KORTVAGT_CAPK            terminal.capk        --capk     (then the install's
 *                                                            search order, apdu/capk.h)
 *
 * An empty variable counts as unset. The PINs are read only when a command
 * opens the HSM (kv_settings_read_secrets), straight into locked,
 * dump-excluded buffers (src/base/secure.h); kv_settings_clear wipes and
 * frees them.
 */
#ifndef KV_APP_SETTINGS_H
#define KV_APP_SETTINGS_H

#include "src/base/secure.h"
#include "src/config/config.h"

#include <stddef.h>

#define KV_SETTINGS_PATH_MAX 1024

/* What the command line gave; NULL: not given. */
typedef struct {
    const char *config;        /* --config FILE */
    const char *store;         /* --store URL */
    const char *module;        /* --module PATH */
    const char *token;         /* --token LABEL|URI */
    const char *reader;        /* --reader NAME */
    const char *transport_key; /* --transport-key FILE */
    const char *capk;          /* --capk FILE */
} kv_settings_flags;

/* The PKCS#11 token. */
typedef struct {
    char module[KV_SETTINGS_PATH_MAX]; /* "": the token URI's module-path, then the default */
    char token[KV_SETTINGS_PATH_MAX];  /* label or pkcs11: URI; "": KV_HSM_DEFAULT_TOKEN */
    kv_secbuf *pin;                    /* the user PIN ($KORTVAGT_PIN); NULL: not set */
    size_t pin_len;
    char pin_file[KV_SETTINGS_PATH_MAX]; /* $KORTVAGT_PIN_FILE; "": none */
    kv_secbuf *so_pin;                   /* the SO PIN ($KORTVAGT_SO_PIN); NULL: not set */
    size_t so_pin_len;
    int secrets_read; /* 1: pin and so_pin above were taken from the environment */
} kv_settings_hsm;

/* The PC/SC reader. */
typedef struct {
    char name[KV_SETTINGS_PATH_MAX]; /* exact name or prefix; "": the first reader with a card */
} kv_settings_reader;

/* The store. */
typedef struct {
    char url[KV_SETTINGS_PATH_MAX]; /* sqlite:PATH | postgresql://...; "" until the file is read */
} kv_settings_store;

/* The virtual card. */
typedef struct {
    char transport_key[KV_SETTINGS_PATH_MAX]; /* file of the lab's AES transport key; "": none */
} kv_settings_vcard;

/* The terminal. */
typedef struct {
    char capk[KV_SETTINGS_PATH_MAX]; /* the CA public key file; "": the install's search order */
} kv_settings_terminal;

/* kortvagtd ([daemon] of the file; scripts/kortvagtd.conf.sample). */
#define KV_SETTINGS_DAEMON_MAX_WORKERS 64
#define KV_SETTINGS_DAEMON_MAX_BODY 65536 /* the default largest request body */
#define KV_SETTINGS_DAEMON_PER_IP 16      /* the default [daemon] max_connections_per_ip */
#define KV_SETTINGS_DAEMON_TLS_PRIO "SECURE256:+SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/* The daemon's flags; NULL / -1 / 0 as noted: not given. */
typedef struct {
    const char *listen;      /* --listen ADDR */
    const char *tokens_file; /* --tokens FILE */
    long port;               /* --port N; -1: not given */
    long workers;            /* --workers N; 0: not given */
    long max_body;           /* --max-body N; 0: not given */
    int access_log;          /* --access-log */
} kv_settings_daemon_flags;

/* The strings are borrowed from the flags or the kv_config they were resolved from. */
typedef struct {
    const char *listen;      /* default 127.0.0.1 */
    const char *tokens_file; /* NULL: none (the daemon refuses to start) */
    const char *tls_key;     /* PEM files: HTTPS; NULL: HTTP */
    const char *tls_cert;
    long port;                   /* 0..65535, default 8470 (0: any) */
    long workers;                /* 1..KV_SETTINGS_DAEMON_MAX_WORKERS, default 2 */
    long max_body;               /* 1..64 MiB, default KV_SETTINGS_DAEMON_MAX_BODY */
    long connection_timeout;     /* seconds, 1..3600, default 30 */
    long drain_seconds;          /* 0..3600, default 10 */
    int access_log;              /* flag, or [daemon] access_log = true|1|yes */
    long request_read_timeout;   /* seconds to read a whole request, 1..3600, default 10 */
    long max_connections_per_ip; /* open connections of one address per worker, 1..1000,
                                    default KV_SETTINGS_DAEMON_PER_IP */
    const char *tls_priorities;  /* GnuTLS priority string, default KV_SETTINGS_DAEMON_TLS_PRIO */
    const char *tls_client_ca;   /* PEM file of the CA(s) client certificates must chain to;
                                    NULL: no client certificates asked */
} kv_settings_daemon;

typedef struct {
    char config_path[KV_SETTINGS_PATH_MAX]; /* flag or $KORTVAGT_CONFIG; "": the search order */
    kv_settings_hsm hsm;
    kv_settings_reader reader;
    kv_settings_store store;
    kv_settings_vcard vcard;
    kv_settings_terminal terminal;
    int store_flag; /* 1: store.url came from a flag or the environment */
} kv_settings;

/*
 * Flags over the environment, without reading any file (a command that needs
 * no configuration file never fails on one) and without the PINs
 * (kv_settings_read_secrets). flags may be NULL. Returns 0 or KV_ERR_ARG (a
 * value longer than its field; err names it). kv_settings_clear releases s,
 * also after a failure.
 */
int kv_settings_init(kv_settings *s, const kv_settings_flags *flags, char *err, size_t errlen);

/*
 * The PINs ($KORTVAGT_PIN, $KORTVAGT_SO_PIN) into locked memory, once.
 * Returns 0 or KV_ERR_NOMEM (err says which).
 */
int kv_settings_read_secrets(kv_settings *s, char *err, size_t errlen);

/*
 * The configuration file: load config_path (or the search order of config.h)
 * into *out and take the file's part of the settings (the store URL when no
 * flag or variable gave one, else [store] url, else the default). Returns as
 * kv_config_load.
 */
int kv_settings_load_config(kv_settings *s, kv_config **out, char *err, size_t errlen);

/* The store URL over a loaded file: flag > $KORTVAGT_STORE > [store] url > default. */
const char *kv_settings_store_url(const kv_settings *s, const kv_config *c);

/*
 * The daemon's settings: flags > [daemon] of c > defaults. Returns 0 or
 * KV_ERR_CONFIG with err naming the key and the bounds ("[daemon] port: 'x'
 * is not a number 0..65535").
 */
int kv_settings_daemon_resolve(const kv_settings_daemon_flags *f, const kv_config *c,
                               kv_settings_daemon *out, char *err, size_t errlen);

/* Wipe the PINs and free their buffers; s stays usable as empty settings. */
void kv_settings_clear(kv_settings *s);

/* NULL for "" (the lower layers take NULL as "not given"). */
static inline const char *kv_settings_opt(const char *v)
{
    return v != NULL && v[0] != '\0' ? v : NULL;
}

#endif

/*
 * The PKCS#11 module and session of a kv_hsm (see p11.h and p11_admin.h):
 * loading the module, the per-process C_Initialize reference, finding the
 * token's slot, opening, logging in, reopening after a lost session, and
 * closing. The kv_hsm structure is in p11_internal.h; CK_RV texts are in
 * p11_rv.c, PIN input in p11_pin.c, key lookup in p11_find.c and the
 * operations in p11_ops.c.
 */
#include "hsm/p11.h"
#include "hsm/p11_admin.h"
#include "hsm/p11_internal.h"
#include "src/base/err.h"
#include "src/base/secure.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void kv_p11_trim(const CK_UTF8CHAR *field, size_t n, char *out, size_t cap)
{
    size_t len = n;
    while (len > 0 && (field[len - 1] == ' ' || field[len - 1] == '\0'))
        len--;
    if (len >= cap)
        len = cap - 1;
    for (size_t i = 0; i < len; i++)
        out[i] = (field[i] >= 0x20 && field[i] < 0x7f) ? (char)field[i] : '?';
    out[len] = '\0';
}

int kv_p11_token_matches(const kv_p11uri *want, const CK_TOKEN_INFO *ti, CK_SLOT_ID slot)
{
    char buf[33];
    if (!(ti->flags & CKF_TOKEN_INITIALIZED))
        return 0;
    if (want->has_slot_id && want->slot_id != slot)
        return 0;
    kv_p11_trim(ti->label, sizeof(ti->label), buf, sizeof(buf));
    if (want->has_token && strcmp(want->token, buf) != 0)
        return 0;
    kv_p11_trim(ti->manufacturerID, sizeof(ti->manufacturerID), buf, sizeof(buf));
    if (want->has_manufacturer && strcmp(want->manufacturer, buf) != 0)
        return 0;
    kv_p11_trim(ti->serialNumber, sizeof(ti->serialNumber), buf, sizeof(buf));
    if (want->has_serial && strcmp(want->serial, buf) != 0)
        return 0;
    kv_p11_trim(ti->model, sizeof(ti->model), buf, sizeof(buf));
    if (want->has_model && strcmp(want->model, buf) != 0)
        return 0;
    return 1;
}

/* --- module loading -------------------------------------------------------- */

/*
 * C_Initialize / C_Finalize are per process: several kv_hsm on one module
 * (threads) share one initialisation, finalised when the last one closes.
 */
static pthread_mutex_t module_lock = PTHREAD_MUTEX_INITIALIZER;
static CK_FUNCTION_LIST_PTR module_fl;
static int module_refs;
static int module_we_initialized;

static int module_ref(kv_hsm *h)
{
    CK_C_INITIALIZE_ARGS ia;
    CK_RV rv;
    int r = 0;

    pthread_mutex_lock(&module_lock);
    if (module_refs > 0 && module_fl == h->f) {
        module_refs++;
        h->counted = 1;
        goto out;
    }
    if (module_refs > 0) {
        r = kv_p11_fail_msg(NULL, KV_ERR_HSM_MODULE,
                            "another PKCS#11 module is already in use in this process");
        goto out;
    }
    memset(&ia, 0, sizeof(ia));
    ia.flags = CKF_OS_LOCKING_OK;
    rv = h->f->C_Initialize(&ia);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        r = kv_p11_fail(NULL, rv, NULL, "C_Initialize of PKCS#11 module %s failed", h->module);
        if (r != KV_ERR_HSM_MODULE)
            r = KV_ERR_HSM_MODULE;
        goto out;
    }
    module_we_initialized = rv == CKR_OK;
    module_fl = h->f;
    module_refs = 1;
    h->counted = 1;
out:
    pthread_mutex_unlock(&module_lock);
    return r;
}

static void module_unref(kv_hsm *h)
{
    if (!h->counted)
        return;
    pthread_mutex_lock(&module_lock);
    if (--module_refs == 0) {
        if (module_we_initialized)
            module_fl->C_Finalize(NULL);
        module_fl = NULL;
        module_we_initialized = 0;
    }
    pthread_mutex_unlock(&module_lock);
    h->counted = 0;
}

static int module_load(kv_hsm *h)
{
    CK_C_GetFunctionList get;
    CK_RV rv;
    const char *e;

    if (access(h->module, F_OK) != 0)
        return kv_p11_fail_msg(NULL, KV_ERR_HSM_MODULE,
                               "cannot load PKCS#11 module %s: %s (set KORTVAGT_PKCS11_MODULE "
                               "or --module; Debian: apt install softhsm2)",
                               h->module, strerror(errno));
    if ((h->dl = dlopen(h->module, RTLD_NOW | RTLD_LOCAL)) == NULL) {
        e = dlerror();
        return kv_p11_fail_msg(NULL, KV_ERR_HSM_MODULE, "cannot load PKCS#11 module %s: %s",
                               h->module, e != NULL ? e : "dlopen failed");
    }
    /* POSIX dlsym returns void *; the module exports a function (PKCS#11 §5.2) */
    *(void **)(&get) = dlsym(h->dl, "C_GetFunctionList");
    if (get == NULL)
        return kv_p11_fail_msg(NULL, KV_ERR_HSM_MODULE,
                               "%s is not a PKCS#11 module (no C_GetFunctionList)", h->module);
    if ((rv = get(&h->f)) != CKR_OK || h->f == NULL) {
        kv_p11_fail(NULL, rv, NULL, "C_GetFunctionList of %s failed", h->module);
        return KV_ERR_HSM_MODULE;
    }
    return module_ref(h);
}

/* --- sessions -------------------------------------------------------------- */

/* Find the slot of the wanted token; fills h->slot and h->token_label. */
static int find_slot(kv_hsm *h)
{
    CK_SLOT_ID slots[64];
    CK_ULONG n = sizeof(slots) / sizeof(slots[0]);
    CK_TOKEN_INFO ti;
    CK_RV rv;
    char want[160];

    if ((rv = h->f->C_GetSlotList(CK_TRUE, slots, &n)) != CKR_OK)
        return kv_p11_fail(h, rv, NULL, "listing the slots of %s failed", h->module);
    for (CK_ULONG i = 0; i < n; i++) {
        if (h->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
            continue;
        if (kv_p11_token_matches(&h->want, &ti, slots[i])) {
            h->slot = slots[i];
            h->have_slot = 1;
            kv_p11_trim(ti.label, sizeof(ti.label), h->token_label, sizeof(h->token_label));
            return 0;
        }
    }
    if (h->want.has_token && !h->want.has_serial && !h->want.has_slot_id)
        snprintf(want, sizeof(want), "'%s'", h->want.token);
    else
        snprintf(want, sizeof(want), "matching the pkcs11: URI");
    return kv_p11_fail_msg(h, KV_ERR_HSM_TOKEN,
                           "token %s not found in %s (create it: kortvagt hsm init; check "
                           "SOFTHSM2_CONF and KORTVAGT_TOKEN)",
                           want, h->module);
}

/*
 * SoftHSM2's file store can fail a login or a session while another process
 * rewrites the token's files at the same moment (processes that start
 * together: daemon workers, parallel CLI runs); it reports CKR_GENERAL_ERROR
 * or CKR_DEVICE_ERROR and succeeds when asked again. Such answers are retried
 * a few times after a short, jittered pause. A wrong PIN (CKR_PIN_INCORRECT)
 * is never retried: it counts against the token's PIN.
 */
#define KV_P11_LOGIN_TRIES 4 /* in one module initialisation */
/*
 * Module initialisations are retried for a time, not a count: on a loaded
 * machine the other process's rewrite takes longer, and a count of pauses
 * would give up sooner than it finishes. A token that is really absent is
 * reported after this long.
 */
#define KV_P11_TOKEN_BUDGET_MS 1500

/* 1 while less than KV_P11_TOKEN_BUDGET_MS have passed since t0 (CLOCK_MONOTONIC). */
static int token_budget_left(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long ms =
        (long long)(now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
    return ms < KV_P11_TOKEN_BUDGET_MS;
}

static int transient_rv(CK_RV rv)
{
    /* CKR_USER_PIN_NOT_INITIALIZED too: a token file read half-written looks that way */
    return rv == CKR_GENERAL_ERROR || rv == CKR_DEVICE_ERROR || rv == CKR_FUNCTION_FAILED ||
           rv == CKR_USER_PIN_NOT_INITIALIZED;
}

static void transient_pause(int attempt)
{
    unsigned jitter = ((unsigned)getpid() * 2654435761u + (unsigned)attempt * 40503u) >> 16;
    struct timespec d = {0, (5 + (long)(jitter % 25)) * 1000000L};
    nanosleep(&d, NULL);
}

static int login(kv_hsm *h)
{
    CK_RV rv;
    for (int attempt = 0;; attempt++) {
        rv = h->f->C_Login(h->session, CKU_USER, (CK_UTF8CHAR_PTR)kv_secbuf_ptr(h->pin),
                           (CK_ULONG)h->pin_len);
        if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN) {
            h->logged_in = 1;
            return 0;
        }
        if (!transient_rv(rv) || attempt + 1 >= KV_P11_LOGIN_TRIES)
            break;
        transient_pause(attempt);
    }
    h->open_rv = rv;
    return kv_p11_fail(h, rv, rv == CKR_PIN_INCORRECT ? "wrong user PIN" : NULL,
                       "token login failed");
}

static int open_session(kv_hsm *h)
{
    CK_RV rv;
    int r;

    if (!h->have_slot && (r = find_slot(h)) != 0)
        return r;
    for (int attempt = 0;; attempt++) {
        rv = h->f->C_OpenSession(h->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
                                 &h->session);
        if (rv == CKR_OK || !transient_rv(rv) || attempt + 1 >= KV_P11_LOGIN_TRIES)
            break;
        transient_pause(attempt);
    }
    if (rv != CKR_OK) {
        h->open_rv = rv;
        return kv_p11_fail(h, rv, NULL, "opening a session on token '%s' failed", h->token_label);
    }
    h->have_session = 1;
    if (h->pin != NULL)
        return login(h);
    return 0;
}

static void close_session(kv_hsm *h)
{
    if (h->have_session)
        h->f->C_CloseSession(h->session);
    h->have_session = 0;
    h->logged_in = 0;
}

int kv_p11_reopen(kv_hsm *h)
{
    CK_RV rv;
    int r;

    close_session(h);
    /* the token may have moved to another slot (removed and inserted again) */
    if ((rv = h->f->C_OpenSession(h->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
                                  &h->session)) != CKR_OK) {
        h->have_slot = 0;
        if ((r = find_slot(h)) != 0)
            return r;
        if ((rv = h->f->C_OpenSession(h->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
                                      &h->session)) != CKR_OK)
            return kv_p11_fail(h, rv, NULL, "reopening the session on token '%s' failed",
                               h->token_label);
    }
    h->have_session = 1;
    if (h->pin != NULL && (r = login(h)) != 0)
        return r;
    h->reopens++;
    /* token object handles survive a reopen on SoftHSM2; elsewhere they may not: look again */
    kv_hsm_keys_flush(h);
    return 0;
}

/*
 * Open as kv_hsm_open_ex says; the user PIN is pin (pin_len bytes) when not
 * NULL, else the one in cfg.
 */
static int open_common(const kv_hsm_config *cfg, unsigned flags, const uint8_t *pin, size_t pin_len,
                       kv_hsm **out)
{
    kv_hsm *h = NULL;
    const char *module = cfg != NULL ? cfg->module : NULL;
    const char *token = cfg != NULL ? cfg->token : NULL;
    char why[200];
    int r = KV_ERR_INTERNAL;
    struct timespec t0;

    *out = NULL;
    kv_p11_open_err_clear();
    if (pin == NULL && cfg != NULL && cfg->pin != NULL) {
        pin = kv_secbuf_ptr(cfg->pin);
        pin_len = cfg->pin_len;
    }
    if (token == NULL || token[0] == '\0')
        token = KV_HSM_DEFAULT_TOKEN;
    if ((h = calloc(1, sizeof(*h))) == NULL) {
        r = kv_p11_fail_msg(NULL, KV_ERR_NOMEM, "out of memory");
        goto out;
    }
    h->flags = flags;
    if (kv_p11uri_is_uri(token)) {
        if ((r = kv_p11uri_parse(token, &h->want, why, sizeof(why))) != 0) {
            kv_p11_fail_msg(NULL, r, "token name: %s", why);
            goto out;
        }
    }
    /* module: the settings > module-path of a token URI > default */
    if ((module == NULL || module[0] == '\0') && h->want.has_module_path)
        module = h->want.module_path;
    if (module == NULL || module[0] == '\0')
        module = KV_HSM_DEFAULT_MODULE;
    if (strlen(module) >= sizeof(h->module)) {
        r = kv_p11_fail_msg(NULL, KV_ERR_ARG, "PKCS#11 module path too long");
        goto out;
    }
    strcpy(h->module, module);
    if (!kv_p11uri_is_uri(token)) {
        if (strlen(token) >= sizeof(h->want.token)) {
            r = kv_p11_fail_msg(NULL, KV_ERR_ARG, "token label '%.40s...' longer than 32 bytes",
                                token);
            goto out;
        }
        strcpy(h->want.token, token);
        h->want.has_token = 1;
    }

    /*
     * SoftHSM2 reads its token files at C_Initialize; while another process
     * rewrites them (its login, at the same moment) the token can look absent
     * (SoftHSMv2 issue #757). Not found: finalize, pause and look again, a few
     * times, when this handle is the module's only user in the process.
     */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int attempt = 0;; attempt++) {
        if ((r = module_load(h)) != 0)
            goto out;
        if (flags & KV_HSM_OPEN_NO_TOKEN) {
            r = 0;
            goto out;
        }
        if ((r = find_slot(h)) == 0)
            break;
        if (r != KV_ERR_HSM_TOKEN || !token_budget_left(&t0) || module_refs != 1)
            goto out;
        module_unref(h);
        transient_pause(attempt);
    }
    if (!(flags & KV_HSM_OPEN_NO_LOGIN)) {
        if (pin == NULL) {
            r = kv_p11_fail_msg(h, KV_ERR_HSM_LOGIN, "no user PIN for token '%s' was given",
                                h->token_label);
            goto out;
        }
        if (pin_len == 0 || pin_len > KV_HSM_PIN_MAX) {
            r = kv_p11_fail_msg(h, KV_ERR_HSM_LOGIN, "the PIN has %zu bytes: 1 to %d", pin_len,
                                KV_HSM_PIN_MAX);
            goto out;
        }
        if ((h->pin = kv_secbuf_new(KV_HSM_PIN_MAX + 1)) == NULL) {
            r = kv_p11_fail_msg(h, KV_ERR_NOMEM, "cannot allocate locked memory for the PIN");
            goto out;
        }
        memcpy(kv_secbuf_ptr(h->pin), pin, pin_len);
        h->pin_len = pin_len;
    }
    /* a transient failure again after the in-place retries: the module's view
     * of the token is stale; initialise it afresh and open again */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int attempt = 0;; attempt++) {
        h->open_rv = CKR_OK;
        if ((r = open_session(h)) == 0 || !transient_rv(h->open_rv) || !token_budget_left(&t0) ||
            module_refs != 1)
            break;
        close_session(h);
        module_unref(h);
        h->have_slot = 0;
        transient_pause(attempt);
        if ((r = module_load(h)) != 0)
            break;
    }
out:
    if (r != 0 && h != NULL) {
        kv_p11_open_err_keep(h);
        kv_hsm_close(h);
        h = NULL;
    }
    *out = h;
    return r;
}

int kv_hsm_open_ex(const kv_hsm_config *cfg, unsigned flags, kv_hsm **out)
{
    return open_common(cfg, flags, NULL, 0, out);
}

int kv_hsm_open_pin(const kv_hsm_config *cfg, const uint8_t *pin, size_t pin_len, kv_hsm **out)
{
    if (pin == NULL) {
        *out = NULL;
        return kv_p11_fail_msg(NULL, KV_ERR_ARG, "no PIN given");
    }
    return open_common(cfg, 0, pin, pin_len, out);
}

int kv_hsm_open(const kv_hsm_config *cfg, kv_hsm **out)
{
    return open_common(cfg, 0, NULL, 0, out);
}

void kv_hsm_close(kv_hsm *h)
{
    if (h == NULL)
        return;
    /* closing the session ends the login and destroys every session object */
    if (h->f != NULL)
        close_session(h);
    module_unref(h);
    /* the module stays mapped: its atexit handlers and OpenSSL state may point into it */
    kv_secbuf_free(h->pin);
    kv_wipe(h, sizeof(*h));
    free(h);
}

const char *kv_hsm_module_path(const kv_hsm *h)
{
    return h->module;
}

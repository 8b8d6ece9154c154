/* see p11.h and p11_admin.h; the kv_hsm structure is in p11_internal.h */
#include "hsm/p11.h"
#include "hsm/p11_admin.h"
#include "hsm/p11_internal.h"
#include "src/base/err.h"
#include "src/base/secure.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <unistd.h>

#define KV_PIN_MAX 256

/* --- CK_RV translation ----------------------------------------------------- */

static const struct {
    CK_RV rv;
    const char *name;
    const char *meaning;
    int err;
} rv_table[] = {
    {CKR_OK, "CKR_OK", "success", 0},
    {CKR_CANCEL, "CKR_CANCEL", "the operation was cancelled", KV_ERR_HSM},
    {CKR_HOST_MEMORY, "CKR_HOST_MEMORY", "the module ran out of memory", KV_ERR_HSM},
    {CKR_SLOT_ID_INVALID, "CKR_SLOT_ID_INVALID", "no such slot", KV_ERR_HSM_TOKEN},
    {CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR", "unrecoverable error in the module", KV_ERR_HSM},
    {CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED", "the module could not do it", KV_ERR_HSM},
    {CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD", "the module rejected the arguments", KV_ERR_HSM},
    {CKR_CANT_LOCK, "CKR_CANT_LOCK", "the module cannot use OS locking", KV_ERR_HSM_MODULE},
    {CKR_ATTRIBUTE_READ_ONLY, "CKR_ATTRIBUTE_READ_ONLY", "the attribute cannot be changed",
     KV_ERR_HSM},
    {CKR_ATTRIBUTE_SENSITIVE, "CKR_ATTRIBUTE_SENSITIVE",
     "the attribute is sensitive and cannot be read", KV_ERR_HSM_KEY},
    {CKR_ATTRIBUTE_TYPE_INVALID, "CKR_ATTRIBUTE_TYPE_INVALID", "the object has no such attribute",
     KV_ERR_HSM},
    {CKR_ATTRIBUTE_VALUE_INVALID, "CKR_ATTRIBUTE_VALUE_INVALID",
     "an attribute value is invalid (wrong key length?)", KV_ERR_HSM},
    {CKR_ACTION_PROHIBITED, "CKR_ACTION_PROHIBITED", "the object's policy forbids this",
     KV_ERR_HSM_KEY},
    {CKR_DATA_INVALID, "CKR_DATA_INVALID", "the input data is invalid", KV_ERR_HSM},
    {CKR_DATA_LEN_RANGE, "CKR_DATA_LEN_RANGE", "the input length is wrong for the mechanism",
     KV_ERR_HSM},
    {CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR", "the device failed", KV_ERR_HSM},
    {CKR_DEVICE_MEMORY, "CKR_DEVICE_MEMORY", "the token is out of memory", KV_ERR_HSM},
    {CKR_DEVICE_REMOVED, "CKR_DEVICE_REMOVED", "the token was removed", KV_ERR_HSM_SESSION},
    {CKR_ENCRYPTED_DATA_INVALID, "CKR_ENCRYPTED_DATA_INVALID", "the ciphertext is invalid",
     KV_ERR_HSM},
    {CKR_ENCRYPTED_DATA_LEN_RANGE, "CKR_ENCRYPTED_DATA_LEN_RANGE",
     "the ciphertext length is wrong for the mechanism", KV_ERR_HSM},
    {CKR_FUNCTION_CANCELED, "CKR_FUNCTION_CANCELED", "the function was cancelled", KV_ERR_HSM},
    {CKR_FUNCTION_NOT_SUPPORTED, "CKR_FUNCTION_NOT_SUPPORTED",
     "the module does not implement this function", KV_ERR_HSM_MECHANISM},
    {CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID", "the key handle is not valid",
     KV_ERR_HSM_KEY},
    {CKR_KEY_SIZE_RANGE, "CKR_KEY_SIZE_RANGE", "the key length is wrong for the mechanism",
     KV_ERR_HSM_KEY},
    {CKR_KEY_TYPE_INCONSISTENT, "CKR_KEY_TYPE_INCONSISTENT",
     "the key type does not fit the mechanism", KV_ERR_HSM_KEY},
    {CKR_KEY_NOT_NEEDED, "CKR_KEY_NOT_NEEDED", "the mechanism takes no key", KV_ERR_HSM},
    {CKR_KEY_CHANGED, "CKR_KEY_CHANGED", "the key changed", KV_ERR_HSM_KEY},
    {CKR_KEY_NEEDED, "CKR_KEY_NEEDED", "a key is needed", KV_ERR_HSM_KEY},
    {CKR_KEY_INDIGESTIBLE, "CKR_KEY_INDIGESTIBLE", "the key cannot be digested", KV_ERR_HSM_KEY},
    {CKR_KEY_FUNCTION_NOT_PERMITTED, "CKR_KEY_FUNCTION_NOT_PERMITTED",
     "the key's usage attributes do not allow this operation", KV_ERR_HSM_KEY},
    {CKR_KEY_NOT_WRAPPABLE, "CKR_KEY_NOT_WRAPPABLE", "the key cannot be wrapped", KV_ERR_HSM_KEY},
    {CKR_KEY_UNEXTRACTABLE, "CKR_KEY_UNEXTRACTABLE", "the key is not extractable", KV_ERR_HSM_KEY},
    {CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID", "the token does not support the mechanism",
     KV_ERR_HSM_MECHANISM},
    {CKR_MECHANISM_PARAM_INVALID, "CKR_MECHANISM_PARAM_INVALID",
     "the mechanism parameter is invalid", KV_ERR_HSM_MECHANISM},
    {CKR_OBJECT_HANDLE_INVALID, "CKR_OBJECT_HANDLE_INVALID", "the object handle is not valid",
     KV_ERR_HSM_KEY},
    {CKR_OPERATION_ACTIVE, "CKR_OPERATION_ACTIVE", "another operation is active in the session",
     KV_ERR_HSM_SESSION},
    {CKR_OPERATION_NOT_INITIALIZED, "CKR_OPERATION_NOT_INITIALIZED",
     "no operation is active in the session", KV_ERR_HSM_SESSION},
    {CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT", "wrong PIN", KV_ERR_HSM_LOGIN},
    {CKR_PIN_INVALID, "CKR_PIN_INVALID", "the PIN has invalid characters", KV_ERR_HSM_LOGIN},
    {CKR_PIN_LEN_RANGE, "CKR_PIN_LEN_RANGE", "the PIN is too long or too short", KV_ERR_HSM_LOGIN},
    {CKR_PIN_EXPIRED, "CKR_PIN_EXPIRED", "the PIN has expired", KV_ERR_HSM_LOGIN},
    {CKR_PIN_LOCKED, "CKR_PIN_LOCKED", "the PIN is locked (too many wrong tries)",
     KV_ERR_HSM_LOGIN},
    {CKR_SESSION_CLOSED, "CKR_SESSION_CLOSED", "the session was closed", KV_ERR_HSM_SESSION},
    {CKR_SESSION_COUNT, "CKR_SESSION_COUNT", "the token has too many sessions open",
     KV_ERR_HSM_SESSION},
    {CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID", "the session handle is not valid",
     KV_ERR_HSM_SESSION},
    {CKR_SESSION_PARALLEL_NOT_SUPPORTED, "CKR_SESSION_PARALLEL_NOT_SUPPORTED",
     "the token does not support parallel sessions", KV_ERR_HSM_SESSION},
    {CKR_SESSION_READ_ONLY, "CKR_SESSION_READ_ONLY", "the session is read-only",
     KV_ERR_HSM_SESSION},
    {CKR_SESSION_EXISTS, "CKR_SESSION_EXISTS",
     "a session is open on the token (close other programs using it)", KV_ERR_HSM_SESSION},
    {CKR_SESSION_READ_ONLY_EXISTS, "CKR_SESSION_READ_ONLY_EXISTS",
     "a read-only session exists, so the SO cannot log in", KV_ERR_HSM_SESSION},
    {CKR_SESSION_READ_WRITE_SO_EXISTS, "CKR_SESSION_READ_WRITE_SO_EXISTS",
     "the SO is logged in elsewhere", KV_ERR_HSM_SESSION},
    {CKR_SIGNATURE_INVALID, "CKR_SIGNATURE_INVALID", "the signature or MAC does not verify",
     KV_ERR_HSM},
    {CKR_SIGNATURE_LEN_RANGE, "CKR_SIGNATURE_LEN_RANGE", "the signature has the wrong length",
     KV_ERR_HSM},
    {CKR_TEMPLATE_INCOMPLETE, "CKR_TEMPLATE_INCOMPLETE", "the object template lacks an attribute",
     KV_ERR_HSM},
    {CKR_TEMPLATE_INCONSISTENT, "CKR_TEMPLATE_INCONSISTENT",
     "the object template has conflicting attributes", KV_ERR_HSM},
    {CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT", "no token in the slot", KV_ERR_HSM_TOKEN},
    {CKR_TOKEN_NOT_RECOGNIZED, "CKR_TOKEN_NOT_RECOGNIZED", "the token is not recognised",
     KV_ERR_HSM_TOKEN},
    {CKR_TOKEN_WRITE_PROTECTED, "CKR_TOKEN_WRITE_PROTECTED", "the token is write-protected",
     KV_ERR_HSM_TOKEN},
    {CKR_UNWRAPPING_KEY_HANDLE_INVALID, "CKR_UNWRAPPING_KEY_HANDLE_INVALID",
     "the unwrapping key handle is not valid", KV_ERR_HSM_KEY},
    {CKR_UNWRAPPING_KEY_SIZE_RANGE, "CKR_UNWRAPPING_KEY_SIZE_RANGE",
     "the unwrapping key has the wrong length", KV_ERR_HSM_KEY},
    {CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT, "CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT",
     "the unwrapping key type does not fit", KV_ERR_HSM_KEY},
    {CKR_USER_ALREADY_LOGGED_IN, "CKR_USER_ALREADY_LOGGED_IN", "already logged in", 0},
    {CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN", "not logged in to the token",
     KV_ERR_HSM_LOGIN},
    {CKR_USER_PIN_NOT_INITIALIZED, "CKR_USER_PIN_NOT_INITIALIZED",
     "the token has no user PIN yet (kortvagt hsm init)", KV_ERR_HSM_LOGIN},
    {CKR_USER_TYPE_INVALID, "CKR_USER_TYPE_INVALID", "invalid user type", KV_ERR_HSM_LOGIN},
    {CKR_USER_ANOTHER_ALREADY_LOGGED_IN, "CKR_USER_ANOTHER_ALREADY_LOGGED_IN",
     "another user is logged in", KV_ERR_HSM_LOGIN},
    {CKR_USER_TOO_MANY_TYPES, "CKR_USER_TOO_MANY_TYPES", "too many users logged in",
     KV_ERR_HSM_LOGIN},
    {CKR_WRAPPED_KEY_INVALID, "CKR_WRAPPED_KEY_INVALID", "the wrapped key is invalid",
     KV_ERR_HSM_KEY},
    {CKR_WRAPPED_KEY_LEN_RANGE, "CKR_WRAPPED_KEY_LEN_RANGE", "the wrapped key length is wrong",
     KV_ERR_HSM_KEY},
    {CKR_WRAPPING_KEY_HANDLE_INVALID, "CKR_WRAPPING_KEY_HANDLE_INVALID",
     "the wrapping key handle is not valid", KV_ERR_HSM_KEY},
    {CKR_WRAPPING_KEY_SIZE_RANGE, "CKR_WRAPPING_KEY_SIZE_RANGE",
     "the wrapping key has the wrong length", KV_ERR_HSM_KEY},
    {CKR_WRAPPING_KEY_TYPE_INCONSISTENT, "CKR_WRAPPING_KEY_TYPE_INCONSISTENT",
     "the wrapping key type does not fit", KV_ERR_HSM_KEY},
    {CKR_RANDOM_SEED_NOT_SUPPORTED, "CKR_RANDOM_SEED_NOT_SUPPORTED", "the token cannot be seeded",
     KV_ERR_HSM},
    {CKR_RANDOM_NO_RNG, "CKR_RANDOM_NO_RNG", "the token has no random number generator",
     KV_ERR_HSM},
    {CKR_DOMAIN_PARAMS_INVALID, "CKR_DOMAIN_PARAMS_INVALID", "invalid domain parameters",
     KV_ERR_HSM},
    {CKR_CURVE_NOT_SUPPORTED, "CKR_CURVE_NOT_SUPPORTED", "the curve is not supported",
     KV_ERR_HSM_MECHANISM},
    {CKR_BUFFER_TOO_SMALL, "CKR_BUFFER_TOO_SMALL", "the output buffer is too small", KV_ERR_BUFFER},
    {CKR_SAVED_STATE_INVALID, "CKR_SAVED_STATE_INVALID", "the saved state is invalid", KV_ERR_HSM},
    {CKR_INFORMATION_SENSITIVE, "CKR_INFORMATION_SENSITIVE", "the information is sensitive",
     KV_ERR_HSM},
    {CKR_STATE_UNSAVEABLE, "CKR_STATE_UNSAVEABLE", "the state cannot be saved", KV_ERR_HSM},
    {CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED", "the module is not initialised",
     KV_ERR_HSM_MODULE},
    {CKR_CRYPTOKI_ALREADY_INITIALIZED, "CKR_CRYPTOKI_ALREADY_INITIALIZED",
     "the module is already initialised", 0},
    {CKR_MUTEX_BAD, "CKR_MUTEX_BAD", "bad mutex", KV_ERR_HSM},
    {CKR_MUTEX_NOT_LOCKED, "CKR_MUTEX_NOT_LOCKED", "mutex not locked", KV_ERR_HSM},
    {CKR_FUNCTION_REJECTED, "CKR_FUNCTION_REJECTED", "the token rejected the function", KV_ERR_HSM},
    {CKR_PIN_TOO_WEAK, "CKR_PIN_TOO_WEAK", "the PIN is too weak", KV_ERR_HSM_LOGIN},
    {CKR_LIBRARY_LOAD_FAILED, "CKR_LIBRARY_LOAD_FAILED", "the module could not load a library",
     KV_ERR_HSM_MODULE},
};

#define RV_COUNT (sizeof(rv_table) / sizeof(rv_table[0]))

static size_t rv_index(CK_RV rv)
{
    for (size_t i = 0; i < RV_COUNT; i++)
        if (rv_table[i].rv == rv)
            return i;
    return RV_COUNT;
}

const char *kv_p11_rv_name(CK_RV rv)
{
    static _Thread_local char unknown[40];
    size_t i = rv_index(rv);
    if (i < RV_COUNT)
        return rv_table[i].name;
    if (rv & CKR_VENDOR_DEFINED)
        snprintf(unknown, sizeof(unknown), "CKR_VENDOR_DEFINED+0x%lx",
                 (unsigned long)(rv & ~CKR_VENDOR_DEFINED));
    else
        snprintf(unknown, sizeof(unknown), "CK_RV 0x%lx", (unsigned long)rv);
    return unknown;
}

const char *kv_hsm_rv_name(unsigned long rv)
{
    return kv_p11_rv_name((CK_RV)rv);
}

/* Text of the last failed kv_hsm_open in this thread (kv_hsm_last_error(NULL)). */
static _Thread_local char open_err[512];

static char *err_buf(kv_hsm *h, size_t *cap)
{
    if (h != NULL) {
        *cap = sizeof(h->err);
        return h->err;
    }
    *cap = sizeof(open_err);
    return open_err;
}

int kv_p11_fail(kv_hsm *h, CK_RV rv, const char *meaning, const char *fmt, ...)
{
    size_t cap, n;
    char *buf = err_buf(h, &cap);
    size_t i = rv_index(rv);
    int err = i < RV_COUNT ? rv_table[i].err : KV_ERR_HSM;
    va_list ap;

    if (err == 0) /* a CK_RV we treat as success is no failure to report */
        err = KV_ERR_HSM;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    n = strlen(buf);
    if (meaning == NULL)
        meaning = i < RV_COUNT ? rv_table[i].meaning : "error code not known to kortvagt";
    snprintf(buf + n, cap - n, ": %s (%s)", kv_p11_rv_name(rv), meaning);
    return err;
}

int kv_p11_fail_msg(kv_hsm *h, int err, const char *fmt, ...)
{
    size_t cap;
    char *buf = err_buf(h, &cap);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    return err;
}

const char *kv_hsm_last_error(const kv_hsm *h)
{
    return h != NULL ? h->err : open_err;
}

int kv_p11_rv_session_lost(CK_RV rv)
{
    return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED ||
           rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT;
}

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

/* --- PIN ------------------------------------------------------------------- */

int kv_hsm_read_pin(const char *env_name, const char *file_env_name, const char *prompt,
                    kv_secbuf **out, size_t *len)
{
    kv_secbuf *b = NULL;
    const char *v = env_name != NULL ? getenv(env_name) : NULL;
    const char *file = file_env_name != NULL ? getenv(file_env_name) : NULL;
    int fd = -1, n, r = KV_ERR_INTERNAL;

    *out = NULL;
    *len = 0;
    if ((b = kv_secbuf_new(KV_PIN_MAX + 1)) == NULL) {
        r = kv_p11_fail_msg(NULL, KV_ERR_NOMEM, "cannot allocate locked memory for the PIN");
        goto out;
    }
    if (v != NULL && v[0] != '\0') {
        size_t l = strlen(v);
        if (l > KV_PIN_MAX) {
            r = kv_p11_fail_msg(NULL, KV_ERR_HSM_LOGIN, "the PIN in $%s is longer than %d bytes",
                                env_name, KV_PIN_MAX);
            goto out;
        }
        memcpy(kv_secbuf_ptr(b), v, l + 1);
        n = (int)l;
    } else if (file != NULL && file[0] != '\0') {
        if ((fd = open(file, O_RDONLY | O_CLOEXEC)) < 0) {
            r = kv_p11_fail_msg(NULL, KV_ERR_IO, "cannot open the PIN file %s ($%s): %s", file,
                                file_env_name, strerror(errno));
            goto out;
        }
        if ((n = kv_secret_read_line(fd, NULL, b)) < 0) {
            r = kv_p11_fail_msg(NULL, n == KV_ERR_NOT_FOUND ? KV_ERR_HSM_LOGIN : n,
                                "cannot read a PIN from %s ($%s)%s", file, file_env_name,
                                n == KV_ERR_NOT_FOUND ? ": the file is empty" : "");
            goto out;
        }
    } else {
        if ((n = kv_secret_read_line(STDIN_FILENO, prompt, b)) < 0) {
            r = kv_p11_fail_msg(NULL, n == KV_ERR_NOT_FOUND ? KV_ERR_HSM_LOGIN : n,
                                "no PIN: set $%s%s%s or give it as a line on stdin", env_name,
                                file_env_name != NULL ? " or $" : "",
                                file_env_name != NULL ? file_env_name : "");
            goto out;
        }
    }
    if (n == 0) {
        r = kv_p11_fail_msg(NULL, KV_ERR_HSM_LOGIN, "the PIN is empty");
        goto out;
    }
    *out = b;
    b = NULL; /* transferred */
    *len = (size_t)n;
    r = 0;
out:
    if (fd >= 0)
        close(fd);
    kv_secbuf_free(b);
    return r;
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
#define KV_P11_LOGIN_TRIES 4  /* in one module initialisation */
#define KV_P11_TOKEN_TRIES 12 /* module initialisations */

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

static CK_OBJECT_HANDLE copy_to_session(kv_hsm *h, CK_OBJECT_HANDLE token)
{
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE t = {CKA_TOKEN, &no, sizeof(no)};
    CK_OBJECT_HANDLE c = CK_INVALID_HANDLE;
    if (h->f->C_CopyObject(h->session, token, &t, 1, &c) != CKR_OK)
        return CK_INVALID_HANDLE;
    return c;
}

static int find_token_object(kv_hsm *h, const char *label, const uint8_t *id, size_t id_len,
                             CK_OBJECT_HANDLE *found, CK_ULONG *count);

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
    /* session copies died with the old session: copy the token keys again */
    for (size_t i = 0; i < h->ncopies; i++) {
        struct kv_hsm_copy *c = &h->copies[i];
        CK_OBJECT_HANDLE tok;
        CK_ULONG cnt = 0;
        c->current = copy_to_session(h, c->token);
        if (c->current != CK_INVALID_HANDLE)
            continue;
        if (find_token_object(h, c->label, NULL, 0, &tok, &cnt) == 0 && cnt == 1) {
            c->token = tok;
            c->current = copy_to_session(h, tok);
            if (c->current == CK_INVALID_HANDLE)
                c->current = tok;
        }
    }
    return 0;
}

CK_OBJECT_HANDLE kv_p11_resolve(const kv_hsm *h, CK_OBJECT_HANDLE issued)
{
    if (h->reopens == 0)
        return issued;
    for (size_t i = 0; i < h->ncopies; i++)
        if (h->copies[i].issued == issued && h->copies[i].current != CK_INVALID_HANDLE)
            return h->copies[i].current;
    return issued;
}

/* kv_hsm_open_ex, with the user PIN given (pin != NULL) instead of read. */
static int open_common(const kv_hsm_config *cfg, unsigned flags, const uint8_t *pin, size_t pin_len,
                       kv_hsm **out)
{
    kv_hsm *h = NULL;
    const char *module = cfg != NULL ? cfg->module : NULL;
    const char *token = cfg != NULL ? cfg->token : NULL;
    char why[200];
    int r = KV_ERR_INTERNAL;

    *out = NULL;
    open_err[0] = '\0';
    if (token == NULL || token[0] == '\0')
        token = getenv("KORTVAGT_TOKEN");
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
    /* module: flag > environment > module-path of a token URI > default */
    if (module == NULL || module[0] == '\0')
        module = getenv("KORTVAGT_PKCS11_MODULE");
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
    for (int attempt = 0;; attempt++) {
        if ((r = module_load(h)) != 0)
            goto out;
        if (flags & KV_HSM_OPEN_NO_TOKEN) {
            r = 0;
            goto out;
        }
        if ((r = find_slot(h)) == 0)
            break;
        if (r != KV_ERR_HSM_TOKEN || attempt + 1 >= KV_P11_TOKEN_TRIES || module_refs != 1)
            goto out;
        module_unref(h);
        transient_pause(attempt);
    }
    if (!(flags & KV_HSM_OPEN_NO_LOGIN) && pin != NULL) {
        if (pin_len == 0 || pin_len > KV_PIN_MAX) {
            r = kv_p11_fail_msg(h, KV_ERR_HSM_LOGIN, "the PIN has %zu bytes: 1 to %d", pin_len,
                                KV_PIN_MAX);
            goto out;
        }
        if ((h->pin = kv_secbuf_new(KV_PIN_MAX + 1)) == NULL) {
            r = kv_p11_fail_msg(h, KV_ERR_NOMEM, "cannot allocate locked memory for the PIN");
            goto out;
        }
        memcpy(kv_secbuf_ptr(h->pin), pin, pin_len);
        h->pin_len = pin_len;
    } else if (!(flags & KV_HSM_OPEN_NO_LOGIN)) {
        char prompt[80];
        snprintf(prompt, sizeof(prompt), "User PIN for token '%s': ", h->token_label);
        if ((r = kv_hsm_read_pin("KORTVAGT_PIN", "KORTVAGT_PIN_FILE", prompt, &h->pin,
                                 &h->pin_len)) != 0)
            goto out;
    }
    /* a transient failure again after the in-place retries: the module's view
     * of the token is stale; initialise it afresh and open again */
    for (int attempt = 0;; attempt++) {
        h->open_rv = CKR_OK;
        if ((r = open_session(h)) == 0 || !transient_rv(h->open_rv) ||
            attempt + 1 >= KV_P11_TOKEN_TRIES || module_refs != 1)
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
        if (h->err[0] != '\0' && open_err[0] == '\0')
            snprintf(open_err, sizeof(open_err), "%s", h->err);
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

/* --- finding keys ---------------------------------------------------------- */

static int find_token_object(kv_hsm *h, const char *label, const uint8_t *id, size_t id_len,
                             CK_OBJECT_HANDLE *found, CK_ULONG *count)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE t[4];
    CK_ULONG nt = 0;
    CK_OBJECT_HANDLE hs[2];
    CK_RV rv;

    t[nt++] = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof(cls)};
    /* token objects only: our own session copies carry the same label */
    t[nt++] = (CK_ATTRIBUTE){CKA_TOKEN, &yes, sizeof(yes)};
    if (label != NULL)
        t[nt++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)label, (CK_ULONG)strlen(label)};
    if (id != NULL)
        t[nt++] = (CK_ATTRIBUTE){CKA_ID, (void *)id, (CK_ULONG)id_len};
    *count = 0;
    if ((rv = h->f->C_FindObjectsInit(h->session, t, nt)) != CKR_OK)
        return kv_p11_fail(h, rv, NULL, "searching the token failed");
    rv = h->f->C_FindObjects(h->session, hs, 2, count);
    h->f->C_FindObjectsFinal(h->session);
    if (rv != CKR_OK)
        return kv_p11_fail(h, rv, NULL, "searching the token failed");
    if (*count > 0)
        *found = hs[0];
    return 0;
}

/* Map a token key's CKA_KEY_TYPE and CKA_VALUE_LEN to our key types. */
static int map_key_type(CK_KEY_TYPE kt, CK_ULONG len, kv_key_type *out)
{
    switch (kt) {
    case CKK_DES2:
        *out = KV_KEY_DES2;
        return 0;
    case CKK_DES3:
        *out = KV_KEY_DES3;
        return 0;
    case CKK_AES:
        if (len == 16)
            *out = KV_KEY_AES128;
        else if (len == 24)
            *out = KV_KEY_AES192;
        else if (len == 32)
            *out = KV_KEY_AES256;
        else
            return KV_ERR_HSM_KEY;
        return 0;
    case CKK_GENERIC_SECRET:
    case CKK_SHA256_HMAC:
        *out = KV_KEY_HMAC;
        return 0;
    default:
        return KV_ERR_HSM_KEY;
    }
}

static int key_attrs(kv_hsm *h, CK_OBJECT_HANDLE o, kv_key_type *type, char *label, size_t lcap)
{
    CK_KEY_TYPE kt = 0;
    CK_ULONG vlen = 0;
    char lab[129];
    CK_ATTRIBUTE a[3] = {
        {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_VALUE_LEN, &vlen, sizeof(vlen)},
        {CKA_LABEL, lab, sizeof(lab) - 1},
    };
    CK_RV rv = h->f->C_GetAttributeValue(h->session, o, a, 3);
    /* some tokens have no CKA_VALUE_LEN for DES keys: only the type matters then */
    if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_BUFFER_TOO_SMALL)
        return kv_p11_fail(h, rv, NULL, "reading the attributes of a key failed");
    if (a[0].ulValueLen == CK_UNAVAILABLE_INFORMATION)
        return kv_p11_fail_msg(h, KV_ERR_HSM_KEY, "the token does not tell the key's type");
    if (a[1].ulValueLen == CK_UNAVAILABLE_INFORMATION)
        vlen = 0;
    if (a[2].ulValueLen == CK_UNAVAILABLE_INFORMATION)
        a[2].ulValueLen = 0;
    lab[a[2].ulValueLen] = '\0';
    if (label != NULL)
        snprintf(label, lcap, "%s", lab);
    if (map_key_type(kt, vlen, type) != 0)
        return kv_p11_fail_msg(h, KV_ERR_HSM_KEY,
                               "key '%s' has a type kortvagt does not use (CKK 0x%lx, %lu bytes)",
                               lab, (unsigned long)kt, (unsigned long)vlen);
    return 0;
}

/* The session copy for a token key, made once per kv_hsm. */
static CK_OBJECT_HANDLE session_handle(kv_hsm *h, CK_OBJECT_HANDLE token, const char *label)
{
    struct kv_hsm_copy *c;
    for (size_t i = 0; i < h->ncopies; i++)
        if (h->copies[i].token == token)
            return h->copies[i].issued;
    if (h->ncopies >= KV_HSM_MAX_COPIES)
        return token; /* table full: use the (slower) token object itself */
    c = &h->copies[h->ncopies];
    c->token = token;
    c->issued = copy_to_session(h, token);
    if (c->issued == CK_INVALID_HANDLE)
        return token; /* the token does not copy (CKA_COPYABLE false): use it as it is */
    /*
     * After a reopen, a module may hand out again the number of a copy that
     * died with the old session; that number must keep meaning the old key.
     */
    for (size_t i = 0; i < h->ncopies; i++)
        if (h->copies[i].issued == c->issued) {
            h->f->C_DestroyObject(h->session, c->issued);
            return token;
        }
    c->current = c->issued;
    snprintf(c->label, sizeof(c->label), "%s", label);
    h->ncopies++;
    return c->issued;
}

static int key_find_once(kv_hsm *h, const char *name, kv_hsm_key *out)
{
    kv_p11uri u;
    char why[200];
    const char *label = name;
    const uint8_t *id = NULL;
    size_t id_len = 0;
    CK_OBJECT_HANDLE o = CK_INVALID_HANDLE, comp = CK_INVALID_HANDLE;
    CK_ULONG n = 0;
    char complabel[140];
    int r;

    if (kv_p11uri_is_uri(name)) {
        if ((r = kv_p11uri_parse(name, &u, why, sizeof(why))) != 0)
            return kv_p11_fail_msg(h, r, "key name: %s", why);
        if (u.has_token && strcmp(u.token, h->token_label) != 0)
            return kv_p11_fail_msg(h, KV_ERR_HSM_KEY,
                                   "key %s names token '%s', but the open token is '%s'", name,
                                   u.token, h->token_label);
        if (u.has_type && strcmp(u.type, "secret-key") != 0)
            return kv_p11_fail_msg(h, KV_ERR_HSM_KEY, "key %s: type=%s is not a secret key", name,
                                   u.type);
        if (!u.has_object && !u.has_id)
            return kv_p11_fail_msg(h, KV_ERR_ARG, "key %s names neither object= nor id=", name);
        label = u.has_object ? u.object : NULL;
        if (u.has_id) {
            id = u.id;
            id_len = u.id_len;
        }
    } else if (name[0] == '\0') {
        return kv_p11_fail_msg(h, KV_ERR_ARG, "empty key label");
    }
    if ((r = find_token_object(h, label, id, id_len, &o, &n)) != 0)
        return r;
    if (n == 0)
        return kv_p11_fail_msg(h, KV_ERR_HSM_KEY, "key '%s' not found on token '%s'", name,
                               h->token_label);
    if (n > 1)
        return kv_p11_fail_msg(h, KV_ERR_HSM_KEY,
                               "key name '%s' is ambiguous: several keys on token '%s' match", name,
                               h->token_label);
    memset(out, 0, sizeof(*out));
    if ((r = key_attrs(h, o, &out->type, out->label, sizeof(out->label))) != 0)
        return r;
    /* the A||A companion: "<label>.aa" (MAC algorithm 3, CVV) */
    if (out->label[0] != '\0' && (out->type == KV_KEY_DES2 || out->type == KV_KEY_DES3)) {
        snprintf(complabel, sizeof(complabel), "%s.aa", out->label);
        if ((r = find_token_object(h, complabel, NULL, 0, &comp, &n)) != 0)
            return r;
        if (n == 1)
            out->companion = session_handle(h, comp, complabel);
    }
    out->handle = session_handle(h, o, out->label);
    out->session_object = 0;
    return 0;
}

int kv_hsm_key_find(kv_hsm *h, const char *name, kv_hsm_key *out)
{
    int r;
    memset(out, 0, sizeof(*out));
    if (!h->have_session)
        return kv_p11_fail_msg(h, KV_ERR_HSM_SESSION, "no session open on the token");
    r = key_find_once(h, name, out);
    if (r == KV_ERR_HSM_SESSION && kv_p11_reopen(h) == 0)
        r = key_find_once(h, name, out);
    if (r != 0)
        memset(out, 0, sizeof(*out));
    return r;
}

int kv_hsm_key_from_handle(kv_hsm *h, unsigned long handle, kv_hsm_key *out)
{
    int r;
    memset(out, 0, sizeof(*out));
    if ((r = key_attrs(h, (CK_OBJECT_HANDLE)handle, &out->type, out->label, sizeof(out->label))) !=
        0)
        return r;
    out->handle = handle;
    return 0;
}

/* --- operations ------------------------------------------------------------ */

typedef CK_RV (*op_init_fn)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE);
typedef CK_RV (*op_do_fn)(CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR);

static int is_des(kv_key_type t)
{
    return t == KV_KEY_DES2 || t == KV_KEY_DES3;
}

static int is_aes(kv_key_type t)
{
    return t == KV_KEY_AES128 || t == KV_KEY_AES192 || t == KV_KEY_AES256;
}

/*
 * One single-part operation (init + do), retried once after a session reopen
 * when the session was lost. No allocation; the CK_RV is translated only on
 * failure. what names the operation for the error text.
 */
static int one_shot(kv_hsm *h, const kv_hsm_key *key, int use_companion, CK_MECHANISM *m, int which,
                    const uint8_t *in, size_t len, uint8_t *out, size_t out_len, const char *what)
{
    CK_OBJECT_HANDLE o;
    CK_ULONG ol;
    CK_RV rv = CKR_OK;
    op_init_fn init;
    op_do_fn run;

    switch (which) {
    case 0:
        init = h->f->C_EncryptInit;
        run = h->f->C_Encrypt;
        break;
    case 1:
        init = h->f->C_DecryptInit;
        run = h->f->C_Decrypt;
        break;
    default:
        init = h->f->C_SignInit;
        run = h->f->C_Sign;
        break;
    }
    if (use_companion && key->companion == 0)
        return kv_p11_fail_msg(h, KV_ERR_HSM_KEY,
                               "key '%s' has no A||A companion ('%s.aa'); import it with the "
                               "key ceremony (kortvagt key import --usage cvk|mac|imk)",
                               key->label, key->label);
    for (int attempt = 0; attempt < 2; attempt++) {
        o = use_companion ? key->companion : key->handle;
        if (!key->session_object) /* derived keys are never remapped */
            o = kv_p11_resolve(h, o);
        ol = (CK_ULONG)out_len;
        if ((rv = init(h->session, m, o)) == CKR_OK &&
            (rv = run(h->session, (CK_BYTE_PTR)in, (CK_ULONG)len, out, &ol)) == CKR_OK) {
            if (ol != (CK_ULONG)out_len)
                return kv_p11_fail_msg(h, KV_ERR_HSM, "%s with key '%s': %lu bytes instead of %zu",
                                       what, key->label, (unsigned long)ol, out_len);
            return 0;
        }
        if (attempt == 0 && kv_p11_rv_session_lost(rv) && kv_p11_reopen(h) == 0)
            continue;
        break;
    }
    if ((rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID) && key->session_object &&
        h->reopens > 0)
        return kv_p11_fail(h, rv, "the session was reopened; derive the key again",
                           "%s with a derived key", what);
    return kv_p11_fail(h, rv, NULL, "%s with key '%s'%s", what, key->label[0] ? key->label : "-",
                       use_companion ? " (A||A companion)" : "");
}

static int block_op(kv_hsm *h, const kv_hsm_key *key, int use_companion, int which, int cbc,
                    const uint8_t *iv, const uint8_t *in, size_t len, uint8_t *out)
{
    CK_MECHANISM m = {0, NULL, 0};
    size_t bs;
    static const char *const names[2][2] = {{"ECB encryption", "ECB decryption"},
                                            {"CBC encryption", "CBC decryption"}};

    if (is_des(key->type)) {
        m.mechanism = cbc ? CKM_DES3_CBC : CKM_DES3_ECB;
        bs = 8;
    } else if (is_aes(key->type)) {
        m.mechanism = cbc ? CKM_AES_CBC : CKM_AES_ECB;
        bs = 16;
    } else {
        return kv_p11_fail_msg(h, KV_ERR_HSM_KEY, "key '%s' is not a block-cipher key", key->label);
    }
    if (len == 0 || len % bs != 0)
        return kv_p11_fail_msg(h, KV_ERR_ARG, "%s: %zu bytes is not a multiple of %zu",
                               names[cbc][which], len, bs);
    if (cbc) {
        m.pParameter = (void *)iv;
        m.ulParameterLen = (CK_ULONG)bs;
    }
    return one_shot(h, key, use_companion, &m, which, in, len, out, len, names[cbc][which]);
}

int kv_hsm_ecb_encrypt(kv_hsm *h, const kv_hsm_key *key, int use_companion, const uint8_t *in,
                       size_t len, uint8_t *out)
{
    return block_op(h, key, use_companion, 0, 0, NULL, in, len, out);
}

int kv_hsm_ecb_decrypt(kv_hsm *h, const kv_hsm_key *key, int use_companion, const uint8_t *in,
                       size_t len, uint8_t *out)
{
    return block_op(h, key, use_companion, 1, 0, NULL, in, len, out);
}

int kv_hsm_cbc_encrypt(kv_hsm *h, const kv_hsm_key *key, int use_companion, const uint8_t *iv,
                       const uint8_t *in, size_t len, uint8_t *out)
{
    return block_op(h, key, use_companion, 0, 1, iv, in, len, out);
}

int kv_hsm_cbc_decrypt(kv_hsm *h, const kv_hsm_key *key, int use_companion, const uint8_t *iv,
                       const uint8_t *in, size_t len, uint8_t *out)
{
    return block_op(h, key, use_companion, 1, 1, iv, in, len, out);
}

int kv_hsm_hmac_sha256(kv_hsm *h, const kv_hsm_key *key, const uint8_t *in, size_t len,
                       uint8_t out[32])
{
    CK_MECHANISM m = {CKM_SHA256_HMAC, NULL, 0};
    if (key->type != KV_KEY_HMAC)
        return kv_p11_fail_msg(h, KV_ERR_HSM_KEY, "key '%s' is not an HMAC key", key->label);
    return one_shot(h, key, 0, &m, 2, in, len, out, 32, "HMAC-SHA256");
}

int kv_hsm_aes_cmac(kv_hsm *h, const kv_hsm_key *key, const uint8_t *in, size_t len,
                    uint8_t out[16])
{
    CK_MECHANISM m = {CKM_AES_CMAC, NULL, 0};
    if (!is_aes(key->type))
        return kv_p11_fail_msg(h, KV_ERR_HSM_KEY, "key '%s' is not an AES key", key->label);
    return one_shot(h, key, 0, &m, 2, in, len, out, 16, "AES-CMAC");
}

/* --- derivation ------------------------------------------------------------ */

static int derive_one(kv_hsm *h, CK_OBJECT_HANDLE parent, const uint8_t data[16],
                      CK_OBJECT_HANDLE *out, CK_RV *rvp)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_DES2;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_KEY_DERIVATION_STRING_DATA p = {(CK_BYTE_PTR)data, 16};
    CK_MECHANISM m = {CKM_DES3_ECB_ENCRYPT_DATA, &p, sizeof(p)};
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},     {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_TOKEN, &no, sizeof(no)},       {CKA_SENSITIVE, &yes, sizeof(yes)},
        {CKA_EXTRACTABLE, &no, sizeof(no)}, {CKA_ENCRYPT, &yes, sizeof(yes)},
        {CKA_DECRYPT, &yes, sizeof(yes)},   {CKA_DERIVE, &yes, sizeof(yes)},
    };
    *rvp = h->f->C_DeriveKey(h->session, &m, parent, t, sizeof(t) / sizeof(t[0]), out);
    return *rvp == CKR_OK ? 0 : -1;
}

int kv_hsm_derive_des2(kv_hsm *h, const kv_hsm_key *parent, const uint8_t data[16],
                       const uint8_t *companion_data, kv_hsm_key *out)
{
    CK_OBJECT_HANDLE k = CK_INVALID_HANDLE, c = CK_INVALID_HANDLE;
    CK_RV rv = CKR_OK;
    kv_hsm_key par = *parent; /* parent and out may be the same struct */
    int r = KV_ERR_INTERNAL;

    parent = &par;
    memset(out, 0, sizeof(*out));
    if (!is_des(parent->type))
        return kv_p11_fail_msg(h, KV_ERR_HSM_KEY, "key '%s' is not a DES key: cannot derive",
                               parent->label);
    for (int attempt = 0; attempt < 2; attempt++) {
        CK_OBJECT_HANDLE p =
            parent->session_object ? parent->handle : kv_p11_resolve(h, parent->handle);
        if (derive_one(h, p, data, &k, &rv) == 0 &&
            (companion_data == NULL || derive_one(h, p, companion_data, &c, &rv) == 0))
            break;
        if (k != CK_INVALID_HANDLE)
            h->f->C_DestroyObject(h->session, k);
        k = CK_INVALID_HANDLE;
        if (attempt == 0 && kv_p11_rv_session_lost(rv) && kv_p11_reopen(h) == 0)
            continue;
        r = kv_p11_fail(h, rv, NULL, "deriving a key from '%s' (CKM_DES3_ECB_ENCRYPT_DATA)",
                        parent->label);
        goto out;
    }
    out->handle = k;
    out->companion = c;
    out->type = KV_KEY_DES2;
    out->session_object = 1;
    snprintf(out->label, sizeof(out->label), "derived from %.40s", parent->label);
    r = 0;
out:
    return r;
}

void kv_hsm_key_destroy(kv_hsm *h, kv_hsm_key *key)
{
    if (h == NULL || key == NULL || !key->session_object)
        return;
    if (h->have_session) {
        if (key->handle != 0)
            h->f->C_DestroyObject(h->session, key->handle);
        if (key->companion != 0)
            h->f->C_DestroyObject(h->session, key->companion);
    }
    memset(key, 0, sizeof(*key));
}

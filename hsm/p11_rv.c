/*
 * CK_RV translation and failure texts of the PKCS#11 module: the table of
 * CK_RV names, meanings and KV_ERR_* codes, and the per-handle (or, before a
 * handle exists, per-thread) text kv_hsm_last_error returns. See
 * p11_internal.h.
 */
#include "hsm/p11.h"
#include "hsm/p11_admin.h"
#include "hsm/p11_internal.h"
#include "src/base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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

void kv_p11_open_err_clear(void)
{
    open_err[0] = '\0';
}

void kv_p11_open_err_keep(const kv_hsm *h)
{
    if (h->err[0] != '\0' && open_err[0] == '\0')
        snprintf(open_err, sizeof(open_err), "%s", h->err);
}

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

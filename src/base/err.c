/* see err.h */
#include "src/base/err.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

static const struct {
    int code;
    const char *text;
} kv_errors[] = {
    {KV_OK, "success"},
    {KV_ERR_INTERNAL, "internal error"},
    {KV_ERR_NOMEM, "out of memory"},
    {KV_ERR_ARG, "invalid argument"},
    {KV_ERR_IO, "input/output error"},
    {KV_ERR_BUFFER, "buffer too small"},
    {KV_ERR_FORMAT, "malformed input"},
    {KV_ERR_NOT_FOUND, "not found"},
    {KV_ERR_UNSUPPORTED, "not supported"},
    {KV_ERR_TIMEOUT, "timed out"},
    {KV_ERR_INTERRUPTED, "interrupted"},
    {KV_ERR_CONFIG, "configuration error"},
    {KV_ERR_JSON, "JSON does not follow its contract"},
    {KV_ERR_TRUNCATED, "data truncated"},
    {KV_ERR_TLV_TAG, "malformed TLV tag"},
    {KV_ERR_TLV_LENGTH, "malformed TLV length"},
    {KV_ERR_TLV_INDEFINITE, "indefinite TLV length not allowed"},
    {KV_ERR_TLV_OVERLONG, "TLV length exceeds the enclosing data"},
    {KV_ERR_TLV_DEPTH, "TLV nesting too deep"},
    {KV_ERR_APDU, "malformed APDU"},
    {KV_ERR_DOL, "malformed data object list"},
    {KV_ERR_TRACE, "malformed trace"},
    {KV_ERR_REPLAY_MISMATCH, "replay: command does not match the script"},
    {KV_ERR_REPLAY_END, "replay: script exhausted"},
    {KV_ERR_VPCD_FRAME, "malformed vpcd frame"},
    {KV_ERR_PCSC_NO_SERVICE, "PC/SC service not running (start pcscd)"},
    {KV_ERR_PCSC_NO_READER, "reader not found"},
    {KV_ERR_PCSC_NO_CARD, "no card in the reader"},
    {KV_ERR_PCSC_REMOVED, "card removed"},
    {KV_ERR_PCSC_RESET, "card was reset"},
    {KV_ERR_PCSC_UNRESPONSIVE, "card does not respond"},
    {KV_ERR_PCSC_SHARING, "reader in use by another application"},
    {KV_ERR_PCSC, "PC/SC error"},
    {KV_ERR_CARD_SW, "card returned an error status"},
    {KV_ERR_NO_APPLICATION, "no supported application on the card"},
    {KV_ERR_CARD_DATA, "card data missing or malformed"},
    {KV_ERR_PIN_BLOCKED, "PIN blocked"},
    {KV_ERR_CONDITIONS, "conditions of use not satisfied"},
    {KV_ERR_ODA, "offline data authentication failed"},
    {KV_ERR_CARD_NOT_FOUND, "card: file or application not found"},
    {KV_ERR_CARD_RECORD, "card: record not found"},
    {KV_ERR_CARD_NO_DATA, "card: referenced data not found"},
    {KV_ERR_CARD_SECURITY, "card: security status not satisfied"},
    {KV_ERR_CARD_VERIFY, "card: verification failed"},
    {KV_ERR_CARD_LENGTH, "card: wrong length"},
    {KV_ERR_CARD_PARAM, "card: wrong parameters or data"},
    {KV_ERR_CARD_INS, "card: instruction or class not supported"},
    {KV_ERR_CARD_BLOCKED, "card: application or card blocked"},
    {KV_ERR_ODA_CA_UNKNOWN, "ODA: unknown CA public key index"},
    {KV_ERR_ODA_CERT_LENGTH, "ODA: certificate length differs from the key modulus"},
    {KV_ERR_ODA_HEADER, "ODA: bad recovered data header or trailer"},
    {KV_ERR_ODA_FORMAT, "ODA: wrong certificate format"},
    {KV_ERR_ODA_HASH, "ODA: hash mismatch"},
    {KV_ERR_ODA_EXPIRED, "ODA: certificate expired"},
    {KV_ERR_ODA_PAN, "ODA: certificate does not match the PAN"},
    {KV_ERR_ODA_ALGORITHM, "ODA: unknown hash or public key algorithm"},
    {KV_ERR_ODA_DATA_MISSING, "ODA: card data missing"},
    {KV_ERR_ODA_KEY_LENGTH, "ODA: inconsistent key, exponent or remainder length"},
    {KV_ERR_ODA_MISMATCH, "ODA: signed dynamic data does not match the response"},
    {KV_ERR_ODA_RECORD, "ODA: static data malformed (record not a 70 template, or 9F4A)"},
    {KV_ERR_CAPK_CHECKSUM, "CA public key checksum mismatch"},
    {KV_ERR_CVM_LIST, "malformed CVM list"},
    {KV_ERR_CAPK_REVOKED, "issuer public key certificate revoked by its certification authority"},
    {KV_ERR_APP_CONFIRM,
     "the application asks for cardholder confirmation: choose it with --select AID"},
    {KV_ERR_CARD_MISSING, "mandatory card data missing"},
    {KV_ERR_CARD_DUPLICATE, "a data object appears more than once in the card's records"},
    {KV_ERR_HSM, "HSM error"},
    {KV_ERR_HSM_MODULE, "PKCS#11 module cannot be loaded"},
    {KV_ERR_HSM_TOKEN, "token not found"},
    {KV_ERR_HSM_LOGIN, "token login failed"},
    {KV_ERR_HSM_KEY, "key not found or not usable"},
    {KV_ERR_HSM_MECHANISM, "mechanism not supported by the token"},
    {KV_ERR_HSM_KCV, "key check value mismatch"},
    {KV_ERR_HSM_SESSION, "PKCS#11 session lost"},
    {KV_ERR_HSM_ROLE, "key role does not allow this operation"},
    {KV_ERR_STORE, "store error"},
    {KV_ERR_STORE_BUSY, "store busy"},
    {KV_ERR_STORE_UNAVAILABLE, "store unavailable"},
    {KV_ERR_STORE_SCHEMA, "store schema mismatch"},
    {KV_ERR_STORE_TAMPERED, "store row tampered with (MAC mismatch)"},
    {KV_ERR_EVIDENCE_BROKEN, "evidence chain broken"},
    {KV_ERR_POLICY, "policy error"},
    {KV_ERR_PERMISSION, "not permitted"},
    {KV_ERR_TRIES_BLOCKED, "blocked after too many wrong attempts"},
};

const char *kv_strerror(int err)
{
    for (size_t i = 0; i < sizeof(kv_errors) / sizeof(kv_errors[0]); i++)
        if (kv_errors[i].code == err)
            return kv_errors[i].text;
    return "unknown error";
}

int kv_exit_code(int err)
{
    if (err == 0)
        return KV_EXIT_OK;
    if (err == KV_ERR_ARG || err == KV_ERR_FORMAT || err == KV_ERR_JSON)
        return KV_EXIT_USAGE;
    if (err == KV_ERR_IO)
        return KV_EXIT_IO;
    if (err <= -200 && err > -300)
        return KV_EXIT_READER;
    if (err <= -100 && err > -400)
        return KV_EXIT_CARD;
    if (err <= -400 && err > -500)
        return KV_EXIT_HSM;
    if (err <= -500 && err > -600)
        return KV_EXIT_STORE;
    if (err <= -600 && err > -700)
        return KV_EXIT_POLICY;
    return KV_EXIT_INTERNAL;
}

void kv_errf(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    if (buf == NULL || cap == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
}

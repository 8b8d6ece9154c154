/*
 * The authorization request of src/RULES.md §1 (`kortvagt authorize`, `POST
 * /v1/authorize`), decoded from JSON into a fixed-size struct with every
 * field checked. Unknown fields and missing required fields are errors whose
 * message names the field (e.g. "factors[1].pvv: unknown field").
 *
 * Required: card.pan (12..19 digits), card.expiry (YYMM), channel, amount
 * (integer >= 0, minor units), currency (3 letters A-Z), merchant.name,
 * merchant.mcc (4 digits). Optional: card.psn (2 digits), at (RFC 3339;
 * default: now), merchant.country, factors (default []), recurring
 * {series, first (default false)}, trusted_beneficiary (default false),
 * request_id (1..64 printable ASCII characters: the client's idempotency
 * key; a repeat with the same card and request_id gets the stored answer).
 *
 * A factor is either upstream-verified — {"type", "verified": bool} — or
 * carries key material that kortvagt verifies through the HSM (never both):
 *   pin_online:      pin_block (hex, 8 or 16 bytes), format (0|1|3|4), pin_key,
 *                    pvk, and either pvki (0..9) + pvv (4 digits) [Visa PVV]
 *                    or offset (4..12 digits) [IBM 3624]; the decimalisation
 *                    table, validation data and pad are the server's (per PVK,
 *                    src/config/pin_params.h): dec_table, vdata and pad are
 *                    refused (issue 11). The card's stored reference value,
 *                    when it has one, overrides pvv/pvki/offset (authorize.h);
 *   chip_cryptogram: imk, cvn, arqc (8 bytes hex), data (1..1024 bytes hex),
 *                    atc (2 bytes hex) [+ un (4 bytes hex)];
 *   cvc3:            imk, atc (2 bytes), un (4 bytes), track (1..128 bytes hex),
 *                    value (1..5 digits; the verifier refuses fewer than 3)
 *                    [+ pcvc3 (1..8 bytes hex): the card's PCVC3 bitmap; the
 *                    verifier then refuses fewer digits than it has bits set];
 *   cvc2:            cvk, value (3 digits).
 * Any factor may carry bound_amount and bound_payee (both or neither): the
 * amount and payee its authentication code was bound to (dynamic linking).
 * Key names are token labels or pkcs11: URIs.
 */
#ifndef KV_AUTHORIZE_REQUEST_H
#define KV_AUTHORIZE_REQUEST_H

#include "src/base/jdec.h"
#include "src/limits/limits.h"
#include "src/sca/sca.h"
#include "src/store/store.h"

#include <jansson.h>

#include <stddef.h>
#include <stdint.h>

#define KV_REQ_MAX_FACTORS 16
#define KV_KEYNAME_MAX 256
#define KV_AC_DATA_MAX 1024
#define KV_TRACK_MAX 128

typedef struct {
    kv_factor_type type;
    int upstream; /* 1: "verified" given; 0: key material for the HSM */
    int verified; /* the upstream result */
    int has_binding;
    int64_t bound_amount;
    char bound_payee[KV_PAYEE_MAX];

    /* pin_online */
    uint8_t pin_block[16];
    size_t pin_block_len;
    int pin_format;
    char pin_key[KV_KEYNAME_MAX];
    char pvk[KV_KEYNAME_MAX];
    int ibm3624; /* 0: Visa PVV (pvki, pvv); 1: IBM 3624 offset */
    int pvki;
    char pvv[5];
    char offset[13];
    char vdata[17];
    char dec_table[17];
    char pad;

    /* chip_cryptogram and cvc3 */
    char imk[KV_KEYNAME_MAX];
    int cvn;
    uint8_t arqc[8];
    uint8_t data[KV_AC_DATA_MAX];
    size_t data_len;
    uint8_t atc[2];
    int has_un;
    uint8_t un[4];
    uint8_t track[KV_TRACK_MAX];
    size_t track_len;
    uint8_t pcvc3[8]; /* cvc3: the card's PCVC3 bitmap (9F65 / 9F62), pcvc3_len 0 if not given */
    size_t pcvc3_len;

    /* cvc2 (cvk) and cvc3 (value) */
    char cvk[KV_KEYNAME_MAX];
    char value[6];
} kv_auth_factor;

typedef struct {
    char pan[20];
    char expiry[5];
    char psn[3]; /* "" when absent */
    int has_at;
    int64_t at;
    kv_channel channel;
    int64_t amount;
    char currency[4];
    char merchant_name[KV_PAYEE_MAX];
    char mcc[5];
    char country[4];
    size_t n_factors;
    kv_auth_factor factors[KV_REQ_MAX_FACTORS];
    int has_recurring;
    char series[KV_SERIES_MAX];
    int recurring_first;
    int trusted_beneficiary;
    /* request_id (1..64 printable ASCII): a repeat gets the stored answer and counts once */
    int has_request_id;
    char request_id[65];
} kv_auth_request;

/*
 * Decode a request object into out (caller-allocated, overwritten). Returns
 * 0 or KV_ERR_JSON with err (may be NULL) naming the field and the problem.
 * out is wiped on failure.
 */
int kv_auth_request_from_json(const json_t *j, kv_auth_request *out, char *err, size_t errlen);

/*
 * The same with the typed failure (code and path) of src/base/jdec.h: the
 * daemon maps e->code to its HTTP status and error code.
 */
int kv_auth_request_decode(const json_t *j, kv_auth_request *out, kv_jdec_error *e);

/* Parse JSON text (len bytes) and decode it; KV_ERR_JSON for bad JSON text too. */
int kv_auth_request_parse(const char *text, size_t len, kv_auth_request *out, char *err,
                          size_t errlen);

/* Wipe a request (it holds an encrypted PIN block and CVC values). */
void kv_auth_request_wipe(kv_auth_request *r);

#endif

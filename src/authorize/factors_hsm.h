/*
 * The factor verifier of authorize.h backed by the PKCS#11 token: pin_online
 * (PIN block -> Visa PVV or IBM 3624 offset, hsm/pin.h), chip_cryptogram
 * (ARQC, hsm/emv_crypto.h), cvc3 and cvc2 (hsm/cvv.h; CVC2 uses service code
 * 000).
 *
 * Keys are looked up by name for every factor (kv_hsm_key_find): hsm/p11.c
 * keeps the one cache of lookups and bounds its staleness
 * (KV_HSM_KEY_STALE_SECONDS, kv_hsm_keys_flush on SIGHUP), so a key deleted
 * or rotated on the token is noticed here as everywhere else. Each key must
 * have the role of its use (cvk, pvk, pin, imk, imk-cvc3); a key of another
 * role is refused by the hsm/ operation and the message names both roles.
 *
 * IBM 3624 parameters (decimalisation table, validation data, pad) come from
 * the server's configuration per PVK (src/config/pin_params.h), never from
 * the request.
 */
#ifndef KV_AUTHORIZE_FACTORS_HSM_H
#define KV_AUTHORIZE_FACTORS_HSM_H

#include "hsm/p11.h"
#include "src/authorize/authorize.h"
#include "src/config/pin_params.h"

typedef struct kv_authz_factors kv_authz_factors;

/*
 * h is borrowed and must outlive the object. The PIN parameters are the
 * defaults (kv_pin_params_defaults) until kv_authz_factors_set_pin_params.
 * Returns 0 or KV_ERR_NOMEM.
 */
int kv_authz_factors_new(kv_hsm *h, kv_authz_factors **out);
/*
 * Take the IBM 3624 parameters per PVK label from src (copied; its ctx is
 * borrowed and must outlive v). src NULL or src->lookup NULL: the defaults.
 */
void kv_authz_factors_set_pin_params(kv_authz_factors *v, const kv_pin_params_source *src);
/* NULL is a no-op. */
void kv_authz_factors_free(kv_authz_factors *v);
/* The verifier to put in kv_authz_config. */
kv_factor_verifier kv_authz_factors_verifier(kv_authz_factors *v);
/* Text of the last failure (names the key), "" if none. */
const char *kv_authz_factors_last_error(const kv_authz_factors *v);

#endif

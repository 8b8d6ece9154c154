/*
 * The factor verifier of authorize.h backed by the PKCS#11 token: pin_online
 * (PIN block -> Visa PVV or IBM 3624 offset, hsm/pin.h), chip_cryptogram
 * (ARQC, hsm/emv_crypto.h), cvc3 and cvc2 (hsm/cvv.h; CVC2 uses service code
 * 000). Keys are found by name once and kept for the life of the object.
 */
#ifndef KV_AUTHORIZE_FACTORS_HSM_H
#define KV_AUTHORIZE_FACTORS_HSM_H

#include "hsm/p11.h"
#include "src/authorize/authorize.h"

typedef struct kv_authz_factors kv_authz_factors;

/* h is borrowed and must outlive the object. Returns 0 or KV_ERR_NOMEM. */
int kv_authz_factors_new(kv_hsm *h, kv_authz_factors **out);
/* NULL is a no-op. */
void kv_authz_factors_free(kv_authz_factors *v);
/* The verifier to put in kv_authz_config. */
kv_factor_verifier kv_authz_factors_verifier(kv_authz_factors *v);
/* Text of the last failure (names the key), "" if none. */
const char *kv_authz_factors_last_error(const kv_authz_factors *v);

#endif

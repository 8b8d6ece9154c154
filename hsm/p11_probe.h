/*
 * Does the module enforce CKA_DERIVE_TEMPLATE? (`kortvagt hsm info`, issue 11)
 *
 * An IMK derives ICC master keys. The ceremony gives every derive key the
 * template {CKA_SENSITIVE true, CKA_EXTRACTABLE false}; only a module that
 * enforces it keeps a holder of the token PIN from deriving a key with
 * CKA_SENSITIVE false / CKA_EXTRACTABLE true and reading it in the clear.
 *
 * The probe makes a throwaway public session DES2 key of a public test value
 * with CKA_DERIVE and that template, then asks C_DeriveKey
 * (CKM_DES3_ECB_ENCRYPT_DATA) twice: once with a template that obeys it (the
 * mechanism must work for the answer to mean anything) and once with
 * CKA_SENSITIVE false, CKA_EXTRACTABLE true. Refused, or a result that is
 * sensitive and not extractable all the same, is "enforced"; a derived key
 * that is extractable, or whose value can be read, is "not enforced"; a
 * module that does not know the attribute does not enforce it. Every object
 * made is destroyed. Needs a session (no login: the objects are public).
 */
#ifndef KV_HSM_P11_PROBE_H
#define KV_HSM_P11_PROBE_H

#include "hsm/p11.h"

#include <stddef.h>

typedef enum {
    KV_DT_ENFORCED = 1,
    KV_DT_NOT_ENFORCED = 0,  /* the weak derivation was allowed */
    KV_DT_UNKNOWN_ATTR = -1, /* the module does not know CKA_DERIVE_TEMPLATE: not enforced */
    KV_DT_UNTESTABLE = -2,   /* the test could not run (mechanism missing, ...): see detail */
} kv_dt_result;

typedef struct {
    kv_dt_result result;
    char detail[240]; /* what was observed (CK_RV names, attributes of the derived key) */
} kv_hsm_dt_probe;

/* Run the probe. Returns 0 (see out->result) or a KV_ERR_* when no session is open. */
int kv_hsm_probe_derive_template(kv_hsm *h, kv_hsm_dt_probe *out);

/* "enforced", "not_enforced", "attribute_unknown", "untestable". */
const char *kv_dt_result_name(kv_dt_result r);

/*
 * The plain statement for a user when the result is not KV_DT_ENFORCED
 * (NULL when it is).
 */
const char *kv_dt_warning(kv_dt_result r);

#endif

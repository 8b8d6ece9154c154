/*
 * The policy keys: the token keys the policy modules need, one table that
 * `kortvagt hsm init` and kv_evidence_keys_ensure (evidence.h) both use.
 * Each is generated in the token when absent, sensitive and not extractable.
 */
#ifndef KV_EVIDENCE_KEYS_ENSURE_H
#define KV_EVIDENCE_KEYS_ENSURE_H

#include "hsm/keys.h"
#include "hsm/p11.h"

#include <stddef.h>

typedef struct {
    const char *label; /* KV_KEY_LABEL_* of src/store/keyed.h */
    kv_key_type type;
    kv_key_usage usage;
    const char *purpose; /* what it is for, in words */
} kv_policy_key;

/* The policy keys; *n receives their number. */
const kv_policy_key *kv_policy_keys(size_t *n);

/*
 * Generate every policy key the token lacks; made (may be NULL) is called
 * with ctx for each key generated. Returns 0, or the error of the first key
 * that could not be found or generated, with a one-line reason in why
 * (capacity why_cap; may be NULL).
 */
int kv_policy_keys_ensure(kv_hsm *h, void (*made)(void *ctx, const kv_policy_key *k), void *ctx,
                          char *why, size_t why_cap);

#endif

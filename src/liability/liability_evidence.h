/*
 * The evidence lookup of the liability engine over the real evidence chain
 * (src/evidence/evidence.h): a transaction's "evidence" names a record id
 * (the decimal "evidence" string an authorization returns). The record is
 * loaded and its hash, chain link and MAC are checked before anything in it
 * is believed (betalingsloven § 98: the issuer proves the credential was
 * used; a broken record proves nothing).
 */
#ifndef KV_LIABILITY_LIABILITY_EVIDENCE_H
#define KV_LIABILITY_LIABILITY_EVIDENCE_H

#include "src/liability/liability.h"
#include "src/store/keyed.h"
#include "src/store/store.h"

#include <jansson.h>

/* The lookup's context: both borrowed, and must outlive kv_liability_assess. */
struct kv_liability_evidence_store {
    kv_store *store;
    const kv_mac *mac; /* the HMAC under the HSM's "evidence" key */
};

/*
 * A kv_liability_evidence_fn (ctx: struct kv_liability_evidence_store *).
 * Returns KV_ERR_NOT_FOUND for an id that is not a positive decimal number,
 * a record that does not exist, or one that is not this transaction's (not an
 * approved authorization of the same amount); KV_ERR_EVIDENCE_BROKEN when
 * the hash, the link to the previous record or the MAC fails, or when an
 * intact record has no usable "verification"; a store or HSM error when the
 * load itself fails; 0 with *v from the record's "verification" otherwise.
 */
int kv_liability_evidence_from_store(void *ctx, const char *evidence_id,
                                     const struct kv_liability_txn *txn,
                                     struct kv_liability_verification *v);

/*
 * The mapping alone, for an intact record body (borrowed): the same returns
 * as above without the store errors. *v keeps its sca_required and
 * per_transaction_code when the record lacks them.
 */
int kv_liability_verification_from_record(const json_t *body, const struct kv_liability_txn *txn,
                                          struct kv_liability_verification *v);

#endif

/*
 * Tamper-evident evidence (betalingsloven § 98: the issuer proves that the
 * credential was used). Every decision, reversal and card-settings change
 * appends one record to a single chain in the store, in the same store
 * transaction as the change it records.
 *
 * A record is its body: compact JSON text whose first members are
 *   {"id":N,"prev":"<hex SHA-256 of record N-1's body, 64 zeros for N=1>",
 *    "type":"authorization|reversal|card_settings","time":"<event time>",
 *    "recorded":"<wall clock>", ...type-specific members}
 * stored byte for byte, with hash = SHA-256(body) and mac = HMAC-SHA256(body)
 * computed in the HSM under the "evidence" key. Ids run 1, 2, 3, ... without
 * gaps. The store refuses updates and deletes of records.
 *
 * An authorization record carries "card" (token, masked PAN, expiry, PSN;
 * never the PAN), "request" (channel, amount, currency, merchant, recurring,
 * trusted_beneficiary, the request's own "at" and request_id), "clock"
 * (basis "server"|"request", server, request_at, decided_for), "factors"
 * (type, source "upstream"|"hsm", outcome
 * "verified|failed|replayed|not_checked", proven, proof
 * "hsm|cvr|asserted|none", key names, ATC/ARQC, for a verified ARQC its
 * decoded "cvr"; never a PIN block, PIN, PVV or CVC value),
 * "verification" (see below), "response" (the decision as returned, without
 * the evidence id) — and nothing secret.
 *
 * "verification" is what the liability engine (src/RULES.md §2) reads for a
 * transaction that names this record:
 *   {"method":"online_pin|offline_pin|sca|none|cvc2", "factors":[types that
 *    counted for SCA], "proven":bool, "sca_required":bool,
 *    "per_transaction_code":false, "proven_factors":[types kortvagt proved],
 *    "asserted_factors":[types the request only asserted]}
 *   (src/RULES.md §2: proven apart from asserted)
 *   online_pin, proven: a pin_online factor matched in the HSM;
 *   offline_pin, proven: the CVR inside an ARQC verified in the HSM says
 *                offline PIN performed and passed (apdu/cvr.h);
 *   sca, proven: the proven factors cover two categories (not remote);
 *   offline_pin / sca, not proven: claimed or satisfied on asserted factors
 *                only; cvc2: only a cvc2 matched; none otherwise.
 *   sca_required is false when the payment went through on an exemption or
 *   out of scope.
 */
#ifndef KV_EVIDENCE_EVIDENCE_H
#define KV_EVIDENCE_EVIDENCE_H

#include "hsm/p11.h"
#include "src/store/keyed.h"
#include "src/store/store.h"

#include <jansson.h>

#include <stdint.h>

/*
 * Append a record of type with the members of content (a JSON object,
 * borrowed; its members follow the chain header in order) to the chain.
 * time is the event's time (for export ranges), recorded the wall clock.
 * Must run inside kv_store_begin(s, 1). *id_out (may be NULL) receives the
 * new record's id. Returns 0, KV_ERR_EVIDENCE_BROKEN (the head record is
 * malformed), KV_ERR_NOMEM, a store or an HSM error.
 */
int kv_evidence_append(kv_store *s, const kv_mac *mac, const char *type, int64_t time,
                       int64_t recorded, json_t *content, int64_t *id_out);

/*
 * The same with the members given as text (members_len bytes; may be
 * NULL/0): the record's own JSON object members without the braces, e.g.
 * "\"card\":{...},\"request\":{...}" as jsonw.h writes them. The decision
 * path uses this one: no JSON objects are built per decision.
 */
int kv_evidence_append_text(kv_store *s, const kv_mac *mac, const char *type, int64_t time,
                            int64_t recorded, const char *members, size_t members_len,
                            int64_t *id_out);

/* One loaded record and the outcome of its checks. */
typedef struct {
    int64_t id;
    int64_t time;
    json_t *body; /* the parsed record (NULL when the body is not JSON) */
    char *text;   /* the stored bytes */
    size_t text_len;
    uint8_t hash[32]; /* as stored */
    uint8_t mac[32];  /* as stored */
    int intact;       /* 1: hash, link to the previous record and MAC all check */
    char why[160];    /* when !intact: what failed */
} kv_evidence_record;

/*
 * Load record id and check it: its stored hash against its body, its id,
 * its "prev" against the SHA-256 of record id-1's body, and its MAC in the
 * HSM (mac). A record that fails a check is still returned (intact 0, why
 * set). Returns 0, KV_ERR_NOT_FOUND, a store or an HSM error. Release with
 * kv_evidence_record_clear. May run inside or outside a store transaction.
 * (The liability engine uses this.)
 */
int kv_evidence_load(kv_store *s, const kv_mac *mac, int64_t id, kv_evidence_record *out);
void kv_evidence_record_clear(kv_evidence_record *r);

typedef struct {
    int64_t records;       /* records checked */
    int64_t broken_id;     /* 0: the chain is intact; else the first record that fails */
    char why[160];         /* what failed */
    int64_t head_id;       /* the last record's id */
    uint8_t head_hash[32]; /* and its hash */
} kv_evidence_report;

/*
 * Walk the whole chain in id order inside one read transaction (so not
 * inside another transaction on s): ids without
 * gaps from 1, each record's hash, id, link and MAC. Stops at the first
 * broken record (rep->broken_id). Returns 0 (see rep), a store or an HSM
 * error.
 */
int kv_evidence_verify_chain(kv_store *s, const kv_mac *mac, kv_evidence_report *rep);

/*
 * One export line for a stored row: {"id":N,"hash":"hex","mac":"hex",
 * "record":<the body>} as compact JSON text without a newline (malloc'ed;
 * free()). Records whose body is not JSON are exported with "record" null
 * and "text" holding the stored bytes. Returns NULL on out of memory.
 */
char *kv_evidence_export_line(const kv_evidence_row *r);

/*
 * Make sure the token holds the HMAC keys "token" and "evidence" (and the
 * AES key "pan-enc"): each one absent is generated in the token, sensitive
 * and not extractable. Called by `kortvagt hsm init`. Returns 0, or an HSM
 * error.
 */
int kv_evidence_keys_ensure(kv_hsm *h);

#endif

/*
 * The key audit (`kortvagt key audit`, issue 11): every key object on the
 * token whose attributes are weaker than its role requires.
 *
 * A secret key is weaker than its role when
 *   - it has no role recorded (no role mark in CKA_ID, p11.h), so no
 *     operation may use it and nothing says what it may do;
 *   - it is CKA_MODIFIABLE (its usages and its role mark could be changed);
 *   - it is CKA_COPYABLE (a copy could be made with other attributes);
 *   - it is not CKA_SENSITIVE, or CKA_EXTRACTABLE, or (a token key) not
 *     CKA_PRIVATE;
 *   - it has a usage attribute its role does not need: the role's usages are
 *     those of kv_keys_policy() (hsm/keys.h), the one table of what each role
 *     needs;
 *   - it may derive (CKA_DERIVE) without a CKA_DERIVE_TEMPLATE that forces
 *     CKA_SENSITIVE true and CKA_EXTRACTABLE false on what it derives. On a
 *     module that does not know the attribute at all (SoftHSM2 2.6) no key
 *     can have one: such a key is not counted as weaker than its role, but
 *     marked derive_template_unknown, and the module's limit is what
 *     `kortvagt hsm info` reports (p11_probe.h);
 *   - its type does not fit its role.
 * An RSA private key (the issuer keys of the personalization bench) is
 * weaker than its use when it is modifiable, copyable, not sensitive,
 * extractable, not private, or may do anything but sign.
 *
 * Whether the module enforces a derive template is another question
 * (p11_probe.h): the audit says what the objects ask for.
 */
#ifndef KV_HSM_P11_AUDIT_H
#define KV_HSM_P11_AUDIT_H

#include "hsm/p11.h"

#include <stddef.h>

/* Problems of a key (bits of kv_hsm_audit_entry.problems) */
enum {
    KV_AUDIT_NO_ROLE = 1u << 0,
    KV_AUDIT_MODIFIABLE = 1u << 1,
    KV_AUDIT_COPYABLE = 1u << 2,
    KV_AUDIT_NOT_SENSITIVE = 1u << 3,
    KV_AUDIT_EXTRACTABLE = 1u << 4,
    KV_AUDIT_NOT_PRIVATE = 1u << 5,
    KV_AUDIT_EXTRA_USAGE = 1u << 6,
    KV_AUDIT_NO_DERIVE_TEMPLATE = 1u << 7,
    KV_AUDIT_ROLE_TYPE = 1u << 8, /* the key's type does not fit its role */
};
#define KV_AUDIT_PROBLEM_COUNT 9

typedef struct {
    unsigned long handle;
    char label[129];
    int private_key; /* 1: an RSA (or other) private key; 0: a secret key */
    int type_known;  /* type is meaningful (secret keys kortvagt uses) */
    kv_key_type type;
    unsigned long ck_key_type;
    kv_key_role role;  /* the role mark in CKA_ID (read even on a modifiable object) */
    unsigned usage;    /* KV_HSM_USE_* the object has */
    unsigned allowed;  /* KV_HSM_USE_* its role allows (valid unless NO_ROLE or ROLE_TYPE) */
    unsigned problems; /* KV_AUDIT_* */
    char why[160]; /* ROLE_TYPE: why the type does not fit; NO_DERIVE_TEMPLATE: what is missing */
    int derive_template_unknown; /* may derive, on a module that has no CKA_DERIVE_TEMPLATE */
} kv_hsm_audit_entry;

/*
 * Audit every token key object (secret and private keys). *out receives a
 * heap array (free with free()) of *n entries, one per key, in the token's
 * order, problems or not. Returns 0 or a KV_ERR_* (kv_hsm_last_error(h)).
 */
int kv_hsm_audit_keys(kv_hsm *h, kv_hsm_audit_entry **out, size_t *n);

/* "des2", "aes128", "hmac", "rsa" (private keys), "other". */
const char *kv_hsm_audit_type_name(const kv_hsm_audit_entry *e);
/* The role name (kv_key_role_name); "issuer-rsa" for a private key. */
const char *kv_hsm_audit_role_name(const kv_hsm_audit_entry *e);

/* Short name of one problem bit: "modifiable", "extra_usage", ...; "?" for others. */
const char *kv_hsm_audit_problem_name(unsigned bit);

/*
 * One line of text saying what is wrong with e ("modifiable; usages beyond
 * role pin: sign"), without the label. Returns the length written.
 */
size_t kv_hsm_audit_describe(const kv_hsm_audit_entry *e, char *buf, size_t cap);

/* Names of usage bits, comma-separated ("encrypt,decrypt"); "-" for none. */
size_t kv_hsm_usage_text(unsigned usage, char *buf, size_t cap);

#endif

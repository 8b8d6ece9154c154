/* see keys.h */
#include "hsm/keys.h"
#include "hsm/keymat.h"
#include "hsm/p11_admin.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/base/secure.h"

#include <stdio.h>
#include <string.h>

static int hsm_fail(kv_hsm *h, int r, char *why, size_t cap)
{
    kv_errf(why, cap, "%s", kv_hsm_last_error(h));
    return r;
}

const char *kv_key_usage_name(kv_key_usage u)
{
    return u == KV_USAGE_DEFAULT ? "default" : kv_key_role_name(u);
}

/* Roles the ceremony creates (the derived icc-* roles are given by derivation only). */
static int ceremony_role(kv_key_role r)
{
    return r > KV_ROLE_NONE && r < KV_ROLE_ICC_AC;
}

int kv_key_usage_parse(const char *s, kv_key_usage *out)
{
    kv_key_role r;
    /* "default" is not a name users give: it is the absence of --usage */
    if (s == NULL || kv_key_role_parse(s, &r) != 0 || !ceremony_role(r))
        return KV_ERR_ARG;
    *out = r;
    return 0;
}

int kv_keys_policy(kv_key_type t, kv_key_usage u, unsigned *attrs, int *companion, char *why,
                   size_t why_cap)
{
    int des = kv_key_type_is_des(t), aes = kv_key_type_is_aes(t), hmac = t == KV_KEY_HMAC;
    int ok = 0;
    const char *fits = "no type";

    *attrs = 0;
    *companion = 0;
    switch (u) {
    case KV_ROLE_NONE:
        ok = 1;
        fits = "any type";
        *attrs =
            hmac ? KV_HSM_USE_SIGN | KV_HSM_USE_VERIFY : KV_HSM_USE_ENCRYPT | KV_HSM_USE_DECRYPT;
        break;
    case KV_ROLE_CVK:
        ok = t == KV_KEY_DES2;
        fits = "des2";
        *attrs = KV_HSM_USE_ENCRYPT;
        *companion = 1;
        break;
    case KV_ROLE_MAC:
        ok = t == KV_KEY_DES2 || aes;
        fits = "des2 or aes*";
        *attrs = aes ? KV_HSM_USE_SIGN | KV_HSM_USE_VERIFY : KV_HSM_USE_ENCRYPT;
        *companion = t == KV_KEY_DES2;
        break;
    case KV_ROLE_PVK:
        ok = des;
        fits = "des2 or des3";
        *attrs = KV_HSM_USE_ENCRYPT;
        break;
    case KV_ROLE_PIN:
        ok = des || aes;
        fits = "des2, des3 or aes*";
        *attrs = KV_HSM_USE_ENCRYPT | KV_HSM_USE_DECRYPT;
        break;
    case KV_ROLE_IMK_AC:
        /* an IMK derives ICC master keys and does nothing else; AES-128 for EMV CCD CVN 6 */
        ok = t == KV_KEY_DES2 || t == KV_KEY_AES128;
        fits = "des2 or aes128";
        *attrs = KV_HSM_USE_DERIVE;
        break;
    case KV_ROLE_IMK_CVC3:
    case KV_ROLE_IMK_SMI:
    case KV_ROLE_IMK_SMC:
        ok = t == KV_KEY_DES2;
        fits = "des2";
        *attrs = KV_HSM_USE_DERIVE;
        break;
    case KV_ROLE_KEK:
        ok = des || aes;
        fits = "des2, des3 or aes*";
        *attrs = KV_HSM_USE_WRAP | KV_HSM_USE_UNWRAP;
        break;
    case KV_ROLE_TOKEN:
    case KV_ROLE_EVIDENCE:
    case KV_ROLE_STATE_MAC:
        ok = hmac;
        fits = "hmac";
        *attrs = KV_HSM_USE_SIGN | KV_HSM_USE_VERIFY;
        break;
    case KV_ROLE_PAN_ENC:
        ok = aes;
        fits = "aes*";
        *attrs = KV_HSM_USE_ENCRYPT | KV_HSM_USE_DECRYPT;
        break;
    default:
        kv_errf(why, why_cap, "role %s is given to derived keys only, not by the key ceremony",
                kv_key_role_name(u));
        return KV_ERR_ARG;
    }
    if (!ok) {
        kv_errf(why, why_cap, "a %s key cannot have usage %s (usage %s takes %s)",
                kv_key_type_name(t), kv_key_usage_name(u), kv_key_usage_name(u), fits);
        *attrs = 0;
        *companion = 0;
        return KV_ERR_ARG;
    }
    return 0;
}

int kv_keys_label_check(const char *label, char *why, size_t why_cap)
{
    size_t n = label != NULL ? strlen(label) : 0;
    if (n == 0 || n > KV_KEYS_LABEL_MAX) {
        kv_errf(why, why_cap, "a key label has 1 to %d characters", KV_KEYS_LABEL_MAX);
        return KV_ERR_ARG;
    }
    for (size_t i = 0; i < n; i++) {
        char c = label[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-')) {
            kv_errf(why, why_cap, "key label '%s': character %zu is not A-Z a-z 0-9 . _ -", label,
                    i + 1);
            return KV_ERR_ARG;
        }
    }
    if (n >= 3 && strcmp(label + n - 3, ".aa") == 0) {
        kv_errf(why, why_cap,
                "key label '%s': labels ending in .aa are reserved for A||A companions", label);
        return KV_ERR_ARG;
    }
    return 0;
}

/* The attribute the KCV of type t needs. */
static unsigned kcv_op(kv_key_type t)
{
    return kv_key_type_is_des(t) ? KV_HSM_USE_ENCRYPT : KV_HSM_USE_SIGN;
}

/* 1 when a key with usage attrs cannot give its own KCV: it gets it from a twin. */
static int needs_twin(kv_key_type t, unsigned attrs)
{
    if (kv_key_type_is_aes(t) && (attrs & KV_HSM_USE_ENCRYPT))
        return 0; /* CMAC of one block from two ECB encryptions, see kv_keys_kcv */
    return (kcv_op(t) & ~attrs) != 0;
}

int kv_keys_kcv(kv_hsm *h, unsigned long handle, kv_key_type t, unsigned usage, uint8_t kcv[3])
{
    kv_hsm_key k;
    uint8_t out[32];
    size_t in_len;
    const uint8_t *in = kv_kcv_input(t, &in_len);
    int r;

    if (kv_key_type_is_aes(t) && !(usage & KV_HSM_USE_SIGN) && (usage & KV_HSM_USE_ENCRYPT)) {
        /* an AES key that may encrypt but not sign (a PIN key): CMAC of one zero block by hand */
        uint8_t l[16];
        if ((r = kv_hsm_key_from_handle(h, handle, &k)) != 0)
            return r;
        k.type = t;
        if ((r = kv_hsm_ecb_encrypt(h, &k, 0, in, 16, l)) == 0) {
            kv_kcv_cmac_dbl(l, l);
            r = kv_hsm_ecb_encrypt(h, &k, 0, l, 16, out);
        }
        kv_wipe(l, sizeof(l));
        if (r == 0)
            memcpy(kcv, out, 3);
        kv_wipe(out, sizeof(out));
        return r;
    }
    if (!(usage & kcv_op(t)))
        return KV_ERR_UNSUPPORTED;
    if ((r = kv_hsm_key_from_handle(h, handle, &k)) != 0)
        return r;
    k.type = t;
    if (kv_key_type_is_des(t))
        r = kv_hsm_ecb_encrypt(h, &k, 0, in, in_len, out);
    else if (kv_key_type_is_aes(t))
        r = kv_hsm_aes_cmac(h, &k, in, in_len, out);
    else
        r = kv_hsm_hmac_sha256(h, &k, in, in_len, out);
    if (r == 0)
        memcpy(kcv, out, 3);
    return r;
}

int kv_keys_label_free(kv_hsm *h, const char *label, char *why, size_t cap)
{
    char comp[KV_KEYS_LABEL_MAX + 4];
    unsigned long o;
    int r;

    snprintf(comp, sizeof(comp), "%s.aa", label);
    if ((r = kv_hsm_object_find(h, label, &o)) == 0 || r != KV_ERR_HSM_KEY) {
        if (r == 0) {
            kv_errf(why, cap,
                    "a key labelled '%s' exists already on the token: nothing stored "
                    "(delete it first: kortvagt key delete --label %s)",
                    label, label);
            return KV_ERR_ARG;
        }
        return hsm_fail(h, r, why, cap);
    }
    if ((r = kv_hsm_object_find(h, comp, &o)) == 0 || r != KV_ERR_HSM_KEY) {
        if (r == 0) {
            kv_errf(why, cap, "an A||A companion '%s' exists already on the token: nothing stored",
                    comp);
            return KV_ERR_ARG;
        }
        return hsm_fail(h, r, why, cap);
    }
    return 0;
}

static void fmt_kcv(const uint8_t *k, size_t n, char *out)
{
    kv_hex_encode(k, n, out);
}

/*
 * The CKA_ID of a new key: [weak mark] role mark [importer's id] (p11.h).
 * buf has room for KV_KEYS_ID_BUF bytes.
 */
#define KV_KEYS_ID_BUF                                                                             \
    (sizeof(KV_HSM_WEAK_ID_PREFIX) + sizeof(KV_HSM_ROLE_ID_PREFIX) + 16 + KV_KEYS_ID_MAX)

static size_t build_id(int weak, kv_key_role role, const uint8_t *id, size_t id_len, uint8_t *buf)
{
    size_t n = 0;
    const char *name = kv_key_role_name(role);
    if (weak) {
        memcpy(buf, KV_HSM_WEAK_ID_PREFIX, sizeof(KV_HSM_WEAK_ID_PREFIX) - 1);
        n += sizeof(KV_HSM_WEAK_ID_PREFIX) - 1;
    }
    if (role != KV_ROLE_NONE) {
        memcpy(buf + n, KV_HSM_ROLE_ID_PREFIX, sizeof(KV_HSM_ROLE_ID_PREFIX) - 1);
        n += sizeof(KV_HSM_ROLE_ID_PREFIX) - 1;
        memcpy(buf + n, name, strlen(name));
        n += strlen(name);
        buf[n++] = ':';
    }
    if (id != NULL && id_len > 0) {
        memcpy(buf + n, id, id_len);
        n += id_len;
    }
    return n;
}

/* Compute the KCV of object o (usage attrs) and compare it with the expected one. */
static int check_kcv(kv_hsm *h, unsigned long o, const char *label, kv_key_type t, unsigned attrs,
                     const uint8_t *kcv, size_t kcv_len, uint8_t out[3], char *why, size_t cap)
{
    char a[8], b[8];
    int r;

    if ((r = kv_keys_kcv(h, o, t, attrs, out)) != 0)
        return hsm_fail(h, r, why, cap);
    if (kcv != NULL && !kv_kcv_matches(out, kcv, kcv_len)) {
        fmt_kcv(out, kcv_len, a);
        fmt_kcv(kcv, kcv_len, b);
        kv_errf(why, cap,
                "key check value mismatch for '%s': the token computes %s (%s) for the combined "
                "components, the KCV given is %s: nothing stored",
                label, a, kv_kcv_method(t), b);
        return KV_ERR_HSM_KCV;
    }
    return 0;
}

/* The usage of a KCV twin of type t: the one operation its KCV needs. */
static kv_hsm_key_spec twin_spec(kv_key_type t)
{
    kv_hsm_key_spec tw;
    memset(&tw, 0, sizeof(tw));
    tw.type = t;
    tw.usage = kcv_op(t);
    tw.token = 0;
    return tw;
}

static void init_result(kv_keys_result *res, const char *label, kv_key_type t, kv_key_usage u)
{
    memset(res, 0, sizeof(*res));
    snprintf(res->label, sizeof(res->label), "%s", label);
    res->type = t;
    res->usage = u;
}

static int template_state(kv_hsm *h, unsigned attrs)
{
    return (attrs & KV_HSM_USE_DERIVE) ? kv_hsm_derive_template(h) : 0;
}

/* kv_keys_import; allow_single_des: store a DES2 key with equal halves, marked weak. */
static int import_key(kv_hsm *h, const char *label, kv_key_type t, kv_key_usage u,
                      const uint8_t *id, size_t id_len, const uint8_t *key, size_t key_len,
                      const uint8_t *kcv, size_t kcv_len, int allow_single_des, kv_keys_result *res,
                      char *why, size_t why_cap)
{
    kv_hsm_key_spec spec, tw;
    kv_secbuf *aa = NULL;
    char comp_label[KV_KEYS_LABEL_MAX + 4];
    uint8_t full_id[KV_KEYS_ID_BUF];
    unsigned long o = 0, c = 0, twin = 0;
    unsigned attrs;
    size_t min, max;
    int companion, r, weak = 0;

    init_result(res, label, t, u);
    if (id_len > KV_KEYS_ID_MAX) {
        kv_errf(why, why_cap, "a key ID has at most %d bytes", KV_KEYS_ID_MAX);
        r = KV_ERR_ARG;
        goto out;
    }
    if ((r = kv_keys_label_check(label, why, why_cap)) != 0)
        goto out;
    if ((r = kv_keys_policy(t, u, &attrs, &companion, why, why_cap)) != 0)
        goto out;
    kv_key_type_lengths(t, &min, &max);
    if (key_len < min || key_len > max) {
        kv_errf(why, why_cap, "a %s key has %zu bytes, not %zu", kv_key_type_name(t), min, key_len);
        r = KV_ERR_ARG;
        goto out;
    }
    if (kcv != NULL && kcv_len != 2 && kcv_len != 3) {
        kv_errf(why, why_cap, "a KCV has 2 or 3 bytes");
        r = KV_ERR_ARG;
        goto out;
    }
    if (kv_key_type_is_des(t) && kv_keymat_des_single_strength(key, key_len)) {
        if (!allow_single_des || t != KV_KEY_DES2) {
            kv_errf(why, why_cap,
                    "the %s key has two equal 8-byte parts (single-DES strength): refused",
                    kv_key_type_name(t));
            r = KV_ERR_ARG;
            goto out;
        }
        weak = 1;
    }
    if ((r = kv_keys_label_free(h, label, why, why_cap)) != 0)
        goto out;

    /* the KCV first: of the stored object itself, or of a session twin of the same value */
    if (needs_twin(t, attrs)) {
        tw = twin_spec(t);
        if ((r = kv_hsm_object_create(h, &tw, key, key_len, &twin)) != 0) {
            hsm_fail(h, r, why, why_cap);
            goto out;
        }
        if ((r = check_kcv(h, twin, label, t, tw.usage, kcv, kcv_len, res->kcv, why, why_cap)) != 0)
            goto out;
    }

    memset(&spec, 0, sizeof(spec));
    spec.type = t;
    spec.label = label;
    spec.id = full_id;
    spec.id_len = build_id(weak, u, id, id_len, full_id);
    spec.usage = attrs;
    spec.token = 1;
    if ((r = kv_hsm_object_create(h, &spec, key, key_len, &o)) != 0) {
        hsm_fail(h, r, why, why_cap);
        goto out;
    }
    if (!needs_twin(t, attrs) &&
        (r = check_kcv(h, o, label, t, attrs, kcv, kcv_len, res->kcv, why, why_cap)) != 0)
        goto out;
    res->derive_template = template_state(h, attrs);
    if (companion) {
        /* A||A: the left half twice; built in locked memory, wiped at once */
        if ((aa = kv_secbuf_new(16)) == NULL) {
            kv_errf(why, why_cap, "cannot allocate locked memory");
            r = KV_ERR_NOMEM;
            goto out;
        }
        memcpy(kv_secbuf_ptr(aa), key, 8);
        memcpy(kv_secbuf_ptr(aa) + 8, key, 8);
        snprintf(comp_label, sizeof(comp_label), "%s.aa", label);
        spec.label = comp_label;
        r = kv_hsm_object_create(h, &spec, kv_secbuf_ptr(aa), 16, &c);
        kv_secbuf_free(aa);
        aa = NULL;
        if (r != 0) {
            hsm_fail(h, r, why, why_cap);
            goto out;
        }
        if ((r = check_kcv(h, c, comp_label, t, attrs, NULL, 0, res->companion_kcv, why,
                           why_cap)) != 0)
            goto out;
        res->has_companion = 1;
    }
    res->weak = weak;
    r = 0;
out:
    kv_secbuf_free(aa);
    if (twin != 0)
        kv_hsm_object_destroy(h, twin);
    if (r != 0) {
        /* nothing stays on the token after a failure */
        if (c != 0)
            kv_hsm_object_destroy(h, c);
        if (o != 0)
            kv_hsm_object_destroy(h, o);
        memset(res->kcv, 0, sizeof(res->kcv));
        memset(res->companion_kcv, 0, sizeof(res->companion_kcv));
        res->has_companion = 0;
    }
    return r;
}

int kv_keys_import(kv_hsm *h, const char *label, kv_key_type t, kv_key_usage u, const uint8_t *id,
                   size_t id_len, const uint8_t *key, size_t key_len, const uint8_t *kcv,
                   size_t kcv_len, kv_keys_result *res, char *why, size_t why_cap)
{
    return import_key(h, label, t, u, id, id_len, key, key_len, kcv, kcv_len, 0, res, why, why_cap);
}

int kv_keys_import_single_des(kv_hsm *h, const char *label, kv_key_type t, kv_key_usage u,
                              const uint8_t *id, size_t id_len, const uint8_t *key, size_t key_len,
                              const uint8_t *kcv, size_t kcv_len, kv_keys_result *res, char *why,
                              size_t why_cap)
{
    return import_key(h, label, t, u, id, id_len, key, key_len, kcv, kcv_len, 1, res, why, why_cap);
}

/* d1..d4 of keys.h: public, distinct derivation blocks ("kortvagA", ... "kortvagD"). */
static const uint8_t gen_data[32] = {'k', 'o', 'r', 't', 'v', 'a', 'g', 'A', 'k', 'o', 'r',
                                     't', 'v', 'a', 'g', 'B', 'k', 'o', 'r', 't', 'v', 'a',
                                     'g', 'C', 'k', 'o', 'r', 't', 'v', 'a', 'g', 'D'};
static const uint8_t gen_aa[16] = {'k', 'o', 'r', 't', 'v', 'a', 'g', 'A',
                                   'k', 'o', 'r', 't', 'v', 'a', 'g', 'A'};

int kv_keys_generate(kv_hsm *h, const char *label, kv_key_type t, kv_key_usage u, const uint8_t *id,
                     size_t id_len, kv_keys_result *res, char *why, size_t why_cap)
{
    kv_hsm_key_spec spec, seed_spec, tw;
    char comp_label[KV_KEYS_LABEL_MAX + 4];
    uint8_t full_id[KV_KEYS_ID_BUF];
    unsigned long o = 0, c = 0, seed = 0, twin = 0;
    unsigned attrs;
    size_t klen = kv_hsm_key_len(t);
    int companion, r, twin_kcv;

    init_result(res, label, t, u);
    if (id_len > KV_KEYS_ID_MAX) {
        kv_errf(why, why_cap, "a key ID has at most %d bytes", KV_KEYS_ID_MAX);
        r = KV_ERR_ARG;
        goto out;
    }
    if ((r = kv_keys_label_check(label, why, why_cap)) != 0)
        goto out;
    if ((r = kv_keys_policy(t, u, &attrs, &companion, why, why_cap)) != 0)
        goto out;
    if ((r = kv_keys_label_free(h, label, why, why_cap)) != 0)
        goto out;
    twin_kcv = needs_twin(t, attrs);
    memset(&spec, 0, sizeof(spec));
    spec.type = t;
    spec.label = label;
    spec.id = full_id;
    spec.id_len = build_id(0, u, id, id_len, full_id);
    spec.usage = attrs;
    spec.token = 1;
    if (!companion && !twin_kcv) {
        if ((r = kv_hsm_object_generate(h, &spec, &o)) != 0) {
            hsm_fail(h, r, why, why_cap);
            goto out;
        }
        r = check_kcv(h, o, label, t, attrs, NULL, 0, res->kcv, why, why_cap);
        goto out;
    }
    if (klen > sizeof(gen_data)) {
        kv_errf(why, why_cap, "a %s key cannot be generated with a %s role", kv_key_type_name(t),
                kv_key_usage_name(u));
        r = KV_ERR_ARG;
        goto out;
    }
    memset(&seed_spec, 0, sizeof(seed_spec));
    seed_spec.type = KV_KEY_DES3;
    seed_spec.usage = KV_HSM_USE_DERIVE;
    seed_spec.token = 0;
    if ((r = kv_hsm_object_generate(h, &seed_spec, &seed)) != 0) {
        hsm_fail(h, r, why, why_cap);
        goto out;
    }
    if ((r = kv_hsm_object_derive_data(h, seed, gen_data, klen, &spec, &o)) != 0) {
        hsm_fail(h, r, why, why_cap);
        goto out;
    }
    if (twin_kcv) {
        /* the same seed and data: a twin of equal value that may only compute the KCV */
        tw = twin_spec(t);
        if ((r = kv_hsm_object_derive_data(h, seed, gen_data, klen, &tw, &twin)) != 0) {
            hsm_fail(h, r, why, why_cap);
            goto out;
        }
        if ((r = check_kcv(h, twin, label, t, tw.usage, NULL, 0, res->kcv, why, why_cap)) != 0)
            goto out;
    } else if ((r = check_kcv(h, o, label, t, attrs, NULL, 0, res->kcv, why, why_cap)) != 0) {
        goto out;
    }
    if (companion) {
        snprintf(comp_label, sizeof(comp_label), "%s.aa", label);
        spec.label = comp_label;
        spec.id_len = build_id(0, u, NULL, 0, full_id);
        if ((r = kv_hsm_object_derive_data(h, seed, gen_aa, 16, &spec, &c)) != 0) {
            hsm_fail(h, r, why, why_cap);
            goto out;
        }
        if ((r = check_kcv(h, c, comp_label, t, attrs, NULL, 0, res->companion_kcv, why,
                           why_cap)) != 0)
            goto out;
        res->has_companion = 1;
    }
    r = 0;
out:
    if (twin != 0)
        kv_hsm_object_destroy(h, twin);
    if (seed != 0)
        kv_hsm_object_destroy(h, seed);
    if (r == 0)
        res->derive_template = template_state(h, attrs);
    if (r != 0) {
        if (c != 0)
            kv_hsm_object_destroy(h, c);
        if (o != 0)
            kv_hsm_object_destroy(h, o);
        res->has_companion = 0;
    }
    return r;
}

int kv_keys_delete(kv_hsm *h, const char *label, int *deleted, char *why, size_t why_cap)
{
    char comp[160];
    unsigned long o = 0, c = 0;
    size_t n = strlen(label);
    int r, have_main, have_comp;

    *deleted = 0;
    if (n >= 3 && strcmp(label + n - 3, ".aa") == 0 && n - 3 < sizeof(comp)) {
        memcpy(comp, label, n - 3);
        comp[n - 3] = '\0';
        if (kv_hsm_object_find(h, comp, &o) == 0) {
            kv_errf(why, why_cap,
                    "'%s' is the A||A companion of '%s': delete '%s' (both go together)", label,
                    comp, comp);
            return KV_ERR_ARG;
        }
    }
    if ((r = kv_hsm_object_find(h, label, &o)) != 0 && r != KV_ERR_HSM_KEY)
        return hsm_fail(h, r, why, why_cap);
    have_main = r == 0;
    snprintf(comp, sizeof(comp), "%s.aa", label);
    if ((r = kv_hsm_object_find(h, comp, &c)) != 0 && r != KV_ERR_HSM_KEY)
        return hsm_fail(h, r, why, why_cap);
    have_comp = r == 0;
    if (!have_main && !have_comp) {
        kv_errf(why, why_cap, "key '%s' not found on the token", label);
        return KV_ERR_HSM_KEY;
    }
    if (have_comp) {
        if ((r = kv_hsm_object_destroy(h, c)) != 0)
            return hsm_fail(h, r, why, why_cap);
        (*deleted)++;
    }
    if (have_main) {
        if ((r = kv_hsm_object_destroy(h, o)) != 0)
            return hsm_fail(h, r, why, why_cap);
        (*deleted)++;
    }
    return 0;
}

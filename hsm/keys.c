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

static const char *const usage_names[] = {"default", "cvk", "pvk",   "pin",     "imk",
                                          "mac",     "kek", "token", "evidence"};

const char *kv_key_usage_name(kv_key_usage u)
{
    if ((size_t)u < sizeof(usage_names) / sizeof(usage_names[0]))
        return usage_names[u];
    return "unknown";
}

int kv_key_usage_parse(const char *s, kv_key_usage *out)
{
    /* "default" is not a name users give: it is the absence of --usage */
    for (size_t i = 1; s != NULL && i < sizeof(usage_names) / sizeof(usage_names[0]); i++)
        if (strcmp(s, usage_names[i]) == 0) {
            *out = (kv_key_usage)i;
            return 0;
        }
    return KV_ERR_ARG;
}

int kv_keys_policy(kv_key_type t, kv_key_usage u, unsigned *attrs, int *companion, char *why,
                   size_t why_cap)
{
    int des = kv_key_type_is_des(t), aes = kv_key_type_is_aes(t), hmac = t == KV_KEY_HMAC;
    int ok = 0;

    *attrs = 0;
    *companion = 0;
    switch (u) {
    case KV_USAGE_DEFAULT:
        ok = 1;
        *attrs =
            hmac ? KV_HSM_USE_SIGN | KV_HSM_USE_VERIFY : KV_HSM_USE_ENCRYPT | KV_HSM_USE_DECRYPT;
        break;
    case KV_USAGE_CVK:
        ok = t == KV_KEY_DES2;
        *attrs = KV_HSM_USE_ENCRYPT;
        *companion = 1;
        break;
    case KV_USAGE_MAC:
        ok = t == KV_KEY_DES2 || aes;
        *attrs = aes ? KV_HSM_USE_SIGN | KV_HSM_USE_VERIFY : KV_HSM_USE_ENCRYPT;
        *companion = t == KV_KEY_DES2;
        break;
    case KV_USAGE_PVK:
        ok = des;
        *attrs = KV_HSM_USE_ENCRYPT;
        break;
    case KV_USAGE_PIN:
        ok = des || aes;
        *attrs = KV_HSM_USE_ENCRYPT | KV_HSM_USE_DECRYPT;
        break;
    case KV_USAGE_IMK:
        ok = t == KV_KEY_DES2;
        *attrs = KV_HSM_USE_DERIVE | KV_HSM_USE_ENCRYPT;
        *companion = 1;
        break;
    case KV_USAGE_KEK:
        ok = des || aes;
        *attrs = KV_HSM_USE_WRAP | KV_HSM_USE_UNWRAP;
        break;
    case KV_USAGE_TOKEN:
    case KV_USAGE_EVIDENCE:
        ok = hmac;
        *attrs = KV_HSM_USE_SIGN | KV_HSM_USE_VERIFY;
        break;
    }
    if (!ok) {
        static const char *const fits[] = {"any type",           "des2", "des2 or des3",
                                           "des2, des3 or aes*", "des2", "des2 or aes*",
                                           "des2, des3 or aes*", "hmac", "hmac"};
        kv_errf(why, why_cap, "a %s key cannot have usage %s (usage %s takes %s)",
                kv_key_type_name(t), kv_key_usage_name(u), kv_key_usage_name(u),
                (size_t)u < sizeof(fits) / sizeof(fits[0]) ? fits[u] : "no type");
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

/* The attribute a key with usage attrs lacks for its KCV (0: none). */
static unsigned kcv_extra(kv_key_type t, unsigned attrs)
{
    if (kv_key_type_is_aes(t) && (attrs & KV_HSM_USE_ENCRYPT))
        return 0; /* CMAC of one block from two ECB encryptions, see kv_keys_kcv */
    return kcv_op(t) & ~attrs;
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
 * After a key object exists: compute its KCV, compare it with the expected
 * one, and drop the KCV operation if its usage does not include it.
 */
static int finish_object(kv_hsm *h, unsigned long o, const char *label, kv_key_type t,
                         unsigned attrs, const uint8_t *kcv, size_t kcv_len, uint8_t out[3],
                         char *why, size_t cap)
{
    char a[8], b[8];
    int r;

    if ((r = kv_keys_kcv(h, o, t, attrs | kcv_extra(t, attrs), out)) != 0)
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
    if (kcv_extra(t, attrs) != 0 && (r = kv_hsm_object_usage_off(h, o, kcv_extra(t, attrs))) != 0)
        return hsm_fail(h, r, why, cap);
    return 0;
}

static void init_result(kv_keys_result *res, const char *label, kv_key_type t, kv_key_usage u)
{
    memset(res, 0, sizeof(*res));
    snprintf(res->label, sizeof(res->label), "%s", label);
    res->type = t;
    res->usage = u;
}

/* kv_keys_import; allow_single_des: store a DES2 key with equal halves, marked weak. */
static int import_key(kv_hsm *h, const char *label, kv_key_type t, kv_key_usage u,
                      const uint8_t *id, size_t id_len, const uint8_t *key, size_t key_len,
                      const uint8_t *kcv, size_t kcv_len, int allow_single_des, kv_keys_result *res,
                      char *why, size_t why_cap)
{
    kv_hsm_key_spec spec;
    kv_secbuf *aa = NULL;
    char comp_label[KV_KEYS_LABEL_MAX + 4];
    uint8_t weak_id[sizeof(KV_HSM_WEAK_ID_PREFIX) - 1 + KV_KEYS_ID_MAX];
    unsigned long o = 0, c = 0;
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

    memset(&spec, 0, sizeof(spec));
    spec.type = t;
    spec.label = label;
    spec.id = id;
    spec.id_len = id_len;
    if (weak) {
        /* the weak-key mark (p11.h): the prefix, then the ID asked for */
        memcpy(weak_id, KV_HSM_WEAK_ID_PREFIX, sizeof(KV_HSM_WEAK_ID_PREFIX) - 1);
        if (id_len > 0)
            memcpy(weak_id + sizeof(KV_HSM_WEAK_ID_PREFIX) - 1, id, id_len);
        spec.id = weak_id;
        spec.id_len = sizeof(KV_HSM_WEAK_ID_PREFIX) - 1 + id_len;
    }
    spec.usage = attrs | kcv_extra(t, attrs);
    spec.token = 1;
    if ((r = kv_hsm_object_create(h, &spec, key, key_len, &o)) != 0) {
        hsm_fail(h, r, why, why_cap);
        goto out;
    }
    if ((r = finish_object(h, o, label, t, attrs, kcv, kcv_len, res->kcv, why, why_cap)) != 0)
        goto out;
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
        spec.usage = attrs | kcv_extra(t, attrs);
        r = kv_hsm_object_create(h, &spec, kv_secbuf_ptr(aa), 16, &c);
        kv_secbuf_free(aa);
        aa = NULL;
        if (r != 0) {
            hsm_fail(h, r, why, why_cap);
            goto out;
        }
        if ((r = finish_object(h, c, comp_label, t, attrs, NULL, 0, res->companion_kcv, why,
                               why_cap)) != 0)
            goto out;
        res->has_companion = 1;
    }
    res->weak = weak;
    r = 0;
out:
    kv_secbuf_free(aa);
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

/* d1 and d2 of keys.h: public, distinct derivation blocks ("kortvagA", "kortvagB"). */
static const uint8_t gen_ab[16] = {'k', 'o', 'r', 't', 'v', 'a', 'g', 'A',
                                   'k', 'o', 'r', 't', 'v', 'a', 'g', 'B'};
static const uint8_t gen_aa[16] = {'k', 'o', 'r', 't', 'v', 'a', 'g', 'A',
                                   'k', 'o', 'r', 't', 'v', 'a', 'g', 'A'};

int kv_keys_generate(kv_hsm *h, const char *label, kv_key_type t, kv_key_usage u, const uint8_t *id,
                     size_t id_len, kv_keys_result *res, char *why, size_t why_cap)
{
    kv_hsm_key_spec spec, seed_spec;
    char comp_label[KV_KEYS_LABEL_MAX + 4];
    unsigned long o = 0, c = 0, seed = 0;
    unsigned attrs;
    int companion, r;

    init_result(res, label, t, u);
    if ((r = kv_keys_label_check(label, why, why_cap)) != 0)
        goto out;
    if ((r = kv_keys_policy(t, u, &attrs, &companion, why, why_cap)) != 0)
        goto out;
    if ((r = kv_keys_label_free(h, label, why, why_cap)) != 0)
        goto out;
    memset(&spec, 0, sizeof(spec));
    spec.type = t;
    spec.label = label;
    spec.id = id;
    spec.id_len = id_len;
    spec.usage = attrs | kcv_extra(t, attrs);
    spec.token = 1;
    if (!companion) {
        if ((r = kv_hsm_object_generate(h, &spec, &o)) != 0) {
            hsm_fail(h, r, why, why_cap);
            goto out;
        }
        r = finish_object(h, o, label, t, attrs, NULL, 0, res->kcv, why, why_cap);
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
    if ((r = kv_hsm_object_derive(h, seed, gen_ab, &spec, &o)) != 0) {
        hsm_fail(h, r, why, why_cap);
        goto out;
    }
    snprintf(comp_label, sizeof(comp_label), "%s.aa", label);
    spec.label = comp_label;
    spec.id = NULL;
    spec.id_len = 0;
    if ((r = kv_hsm_object_derive(h, seed, gen_aa, &spec, &c)) != 0) {
        hsm_fail(h, r, why, why_cap);
        goto out;
    }
    if ((r = finish_object(h, o, label, t, attrs, NULL, 0, res->kcv, why, why_cap)) != 0)
        goto out;
    if ((r = finish_object(h, c, comp_label, t, attrs, NULL, 0, res->companion_kcv, why,
                           why_cap)) != 0)
        goto out;
    res->has_companion = 1;
    r = 0;
out:
    if (seed != 0)
        kv_hsm_object_destroy(h, seed);
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

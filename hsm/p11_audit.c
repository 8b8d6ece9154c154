/* see p11_audit.h */
#include "hsm/p11_audit.h"
#include "hsm/keymat.h"
#include "hsm/keys.h"
#include "hsm/p11_admin.h"
#include "hsm/p11_internal.h"
#include "src/base/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const problem_names[KV_AUDIT_PROBLEM_COUNT] = {
    "no_role",     "modifiable",  "copyable",           "not_sensitive", "extractable",
    "not_private", "extra_usage", "no_derive_template", "role_type",
};

const char *kv_hsm_audit_problem_name(unsigned bit)
{
    for (unsigned i = 0; i < KV_AUDIT_PROBLEM_COUNT; i++)
        if (bit == 1u << i)
            return problem_names[i];
    return "?";
}

const char *kv_hsm_audit_type_name(const kv_hsm_audit_entry *e)
{
    if (e->private_key)
        return e->ck_key_type == CKK_RSA ? "rsa" : "other";
    return e->type_known ? kv_key_type_name(e->type) : "other";
}

const char *kv_hsm_audit_role_name(const kv_hsm_audit_entry *e)
{
    return e->private_key ? "issuer-rsa" : kv_key_role_name(e->role);
}

size_t kv_hsm_usage_text(unsigned usage, char *buf, size_t cap)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {
        {KV_HSM_USE_ENCRYPT, "encrypt"}, {KV_HSM_USE_DECRYPT, "decrypt"},
        {KV_HSM_USE_SIGN, "sign"},       {KV_HSM_USE_VERIFY, "verify"},
        {KV_HSM_USE_WRAP, "wrap"},       {KV_HSM_USE_UNWRAP, "unwrap"},
        {KV_HSM_USE_DERIVE, "derive"},
    };
    size_t n = 0;
    if (cap == 0)
        return 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        int w;
        if (!(usage & names[i].bit))
            continue;
        w = snprintf(buf + n, cap - n, "%s%s", n ? "," : "", names[i].name);
        if (w < 0 || (size_t)w >= cap - n)
            return strlen(buf);
        n += (size_t)w;
    }
    if (n == 0)
        n = (size_t)snprintf(buf, cap, "-");
    return n < cap ? n : cap - 1;
}

/*
 * The usages role r allows a key of type t: kv_keys_policy() of hsm/keys.h,
 * the one table of what each role needs. Returns 0, or KV_ERR_ARG with why
 * when the type does not fit the role.
 */
static int role_usage(kv_key_type t, kv_key_role r, unsigned *attrs, char *why, size_t cap)
{
    int companion;
    return kv_keys_policy(t, r, attrs, &companion, why, cap);
}

/* --- reading one object ------------------------------------------------------ */

enum {
    B_ENCRYPT,
    B_DECRYPT,
    B_SIGN,
    B_VERIFY,
    B_WRAP,
    B_UNWRAP,
    B_DERIVE,
    B_PRIVATE,
    B_SENSITIVE,
    B_EXTRACTABLE,
    B_MODIFIABLE,
    B_COPYABLE,
    B_COUNT
};

static const CK_ATTRIBUTE_TYPE bool_types[B_COUNT] = {
    CKA_ENCRYPT, CKA_DECRYPT, CKA_SIGN,      CKA_VERIFY,      CKA_WRAP,       CKA_UNWRAP,
    CKA_DERIVE,  CKA_PRIVATE, CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_MODIFIABLE, CKA_COPYABLE,
};

/* The CK_BBOOLs of o: val[i] 0/1, or -1 when the module does not have the attribute. */
static int read_bools(kv_hsm *h, CK_OBJECT_HANDLE o, int val[B_COUNT])
{
    CK_BBOOL b[B_COUNT];
    CK_ATTRIBUTE a[B_COUNT];
    CK_RV rv;

    for (int i = 0; i < B_COUNT; i++) {
        b[i] = CK_FALSE;
        a[i] = (CK_ATTRIBUTE){bool_types[i], &b[i], sizeof(CK_BBOOL)};
    }
    rv = h->f->C_GetAttributeValue(h->session, o, a, B_COUNT);
    if (rv == CKR_OK || rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE) {
        for (int i = 0; i < B_COUNT; i++)
            val[i] = a[i].ulValueLen == CK_UNAVAILABLE_INFORMATION ? -1 : b[i] != CK_FALSE;
        return 0;
    }
    if (rv != CKR_BUFFER_TOO_SMALL && rv != CKR_ARGUMENTS_BAD)
        return kv_p11_fail(h, rv, NULL, "reading the attributes of a key failed");
    /* a module that stops at the first odd attribute: one at a time */
    for (int i = 0; i < B_COUNT; i++) {
        CK_ATTRIBUTE one = {bool_types[i], &b[i], sizeof(CK_BBOOL)};
        b[i] = CK_FALSE;
        rv = h->f->C_GetAttributeValue(h->session, o, &one, 1);
        val[i] = rv == CKR_OK && one.ulValueLen == sizeof(CK_BBOOL) ? b[i] != CK_FALSE : -1;
    }
    return 0;
}

/* A byte-string attribute into a new heap buffer (*len bytes); *p NULL when absent or empty. */
static int read_bytes(kv_hsm *h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type, uint8_t **p,
                      size_t *len)
{
    CK_ATTRIBUTE a = {type, NULL, 0};
    CK_RV rv;

    *p = NULL;
    *len = 0;
    rv = h->f->C_GetAttributeValue(h->session, o, &a, 1);
    if (rv != CKR_OK || a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen == 0)
        return 0;
    if (a.ulValueLen > 4096)
        return kv_p11_fail_msg(h, KV_ERR_HSM, "a key attribute of %lu bytes",
                               (unsigned long)a.ulValueLen);
    if ((*p = malloc(a.ulValueLen)) == NULL)
        return KV_ERR_NOMEM;
    a.pValue = *p;
    if ((rv = h->f->C_GetAttributeValue(h->session, o, &a, 1)) != CKR_OK ||
        a.ulValueLen == CK_UNAVAILABLE_INFORMATION) {
        free(*p);
        *p = NULL;
        return 0;
    }
    *len = a.ulValueLen;
    return 0;
}

/*
 * Whether o's CKA_DERIVE_TEMPLATE forces CKA_SENSITIVE true and
 * CKA_EXTRACTABLE false: 1 yes, 0 no (why says what is missing), -1 the
 * module does not know the attribute (no object on it can carry one).
 */
static int derive_template_ok(kv_hsm *h, CK_OBJECT_HANDLE o, char *why, size_t cap)
{
    CK_ATTRIBUTE outer = {CKA_DERIVE_TEMPLATE, NULL, 0}, *t = NULL;
    CK_BBOOL vals[32];
    CK_ULONG n;
    CK_RV rv;
    int sensitive = 0, unextractable = 0;

    rv = h->f->C_GetAttributeValue(h->session, o, &outer, 1);
    if (rv == CKR_ATTRIBUTE_TYPE_INVALID)
        return -1;
    if (rv != CKR_OK || outer.ulValueLen == CK_UNAVAILABLE_INFORMATION || outer.ulValueLen == 0) {
        snprintf(why, cap, "may derive, with no CKA_DERIVE_TEMPLATE");
        return 0;
    }
    n = outer.ulValueLen / sizeof(CK_ATTRIBUTE);
    if (n == 0 || n > 32 || (t = calloc(n, sizeof(*t))) == NULL) {
        snprintf(why, cap, "may derive; its CKA_DERIVE_TEMPLATE cannot be read");
        return 0;
    }
    /* twice: the types and sizes, then the values (PKCS#11 array attributes) */
    outer.pValue = t;
    outer.ulValueLen = n * sizeof(CK_ATTRIBUTE);
    rv = h->f->C_GetAttributeValue(h->session, o, &outer, 1);
    if (rv == CKR_OK) {
        for (CK_ULONG i = 0; i < n; i++) {
            if (t[i].ulValueLen == sizeof(CK_BBOOL)) {
                vals[i] = CK_FALSE;
                t[i].pValue = &vals[i];
            } else {
                t[i].pValue = NULL; /* not a boolean: not one of the two we look for */
            }
        }
        for (CK_ULONG i = 0; i < n; i++)
            if (t[i].pValue == NULL)
                t[i].ulValueLen = 0;
        rv = h->f->C_GetAttributeValue(h->session, o, &outer, 1);
    }
    if (rv == CKR_OK)
        for (CK_ULONG i = 0; i < n; i++) {
            if (t[i].pValue == NULL || t[i].ulValueLen != sizeof(CK_BBOOL))
                continue;
            if (t[i].type == CKA_SENSITIVE && *(CK_BBOOL *)t[i].pValue == CK_TRUE)
                sensitive = 1;
            if (t[i].type == CKA_EXTRACTABLE && *(CK_BBOOL *)t[i].pValue == CK_FALSE)
                unextractable = 1;
        }
    free(t);
    if (rv != CKR_OK) {
        snprintf(why, cap, "may derive; its CKA_DERIVE_TEMPLATE cannot be read (%s)",
                 kv_p11_rv_name(rv));
        return 0;
    }
    if (sensitive && unextractable)
        return 1;
    snprintf(why, cap, "may derive; its CKA_DERIVE_TEMPLATE does not force %s%s%s",
             sensitive ? "" : "CKA_SENSITIVE=TRUE", !sensitive && !unextractable ? " and " : "",
             unextractable ? "" : "CKA_EXTRACTABLE=FALSE");
    return 0;
}

static int map_type(CK_KEY_TYPE kt, CK_ULONG len, kv_key_type *out)
{
    switch (kt) {
    case CKK_DES2:
        *out = KV_KEY_DES2;
        return 1;
    case CKK_DES3:
        *out = KV_KEY_DES3;
        return 1;
    case CKK_AES:
        *out = len == 32 ? KV_KEY_AES256 : len == 24 ? KV_KEY_AES192 : KV_KEY_AES128;
        return len == 16 || len == 24 || len == 32;
    case CKK_GENERIC_SECRET:
    case CKK_SHA256_HMAC:
        *out = KV_KEY_HMAC;
        return 1;
    default:
        return 0;
    }
}

static int audit_one(kv_hsm *h, CK_OBJECT_HANDLE o, int private_key, kv_hsm_audit_entry *e)
{
    CK_KEY_TYPE kt = 0;
    CK_ULONG vlen = 0;
    CK_ATTRIBUTE a[2] = {{CKA_KEY_TYPE, &kt, sizeof(kt)}, {CKA_VALUE_LEN, &vlen, sizeof(vlen)}};
    int b[B_COUNT];
    uint8_t *label = NULL, *id = NULL;
    size_t label_len = 0, id_len = 0;
    char why[160];
    CK_RV rv;
    int r;

    memset(e, 0, sizeof(*e));
    e->handle = o;
    e->private_key = private_key;
    rv = h->f->C_GetAttributeValue(h->session, o, a, private_key ? 1 : 2);
    if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_ATTRIBUTE_SENSITIVE)
        return kv_p11_fail(h, rv, NULL, "reading the attributes of a key failed");
    if (a[1].ulValueLen == CK_UNAVAILABLE_INFORMATION)
        vlen = 0;
    if (a[0].ulValueLen != CK_UNAVAILABLE_INFORMATION) {
        e->ck_key_type = kt;
        if (!private_key)
            e->type_known = map_type(kt, vlen, &e->type);
    }
    if ((r = read_bools(h, o, b)) != 0)
        return r;
    if ((r = read_bytes(h, o, CKA_LABEL, &label, &label_len)) != 0 ||
        (r = read_bytes(h, o, CKA_ID, &id, &id_len)) != 0) {
        free(label);
        return r;
    }
    for (size_t i = 0; i < label_len && i < sizeof(e->label) - 1; i++)
        e->label[i] = label[i] >= 0x20 && label[i] < 0x7f ? (char)label[i] : '?';
    free(label);
    e->role = private_key ? KV_ROLE_NONE : kv_hsm_id_role(id, id_len, NULL, NULL);
    free(id);

    e->usage = (b[B_ENCRYPT] == 1 ? KV_HSM_USE_ENCRYPT : 0) |
               (b[B_DECRYPT] == 1 ? KV_HSM_USE_DECRYPT : 0) |
               (b[B_SIGN] == 1 ? KV_HSM_USE_SIGN : 0) | (b[B_VERIFY] == 1 ? KV_HSM_USE_VERIFY : 0) |
               (b[B_WRAP] == 1 ? KV_HSM_USE_WRAP : 0) | (b[B_UNWRAP] == 1 ? KV_HSM_USE_UNWRAP : 0) |
               (b[B_DERIVE] == 1 ? KV_HSM_USE_DERIVE : 0);
    /*
     * CKA_COPYABLE came with PKCS#11 2.40: a module that does not know it
     * cannot be asked for it, so that is not counted. A key the module does
     * not say is unmodifiable, sensitive, unextractable and private is not
     * trusted to be so.
     */
    if (b[B_MODIFIABLE] != 0)
        e->problems |= KV_AUDIT_MODIFIABLE;
    if (b[B_COPYABLE] == 1)
        e->problems |= KV_AUDIT_COPYABLE;
    if (b[B_SENSITIVE] != 1)
        e->problems |= KV_AUDIT_NOT_SENSITIVE;
    if (b[B_EXTRACTABLE] != 0)
        e->problems |= KV_AUDIT_EXTRACTABLE;
    if (b[B_PRIVATE] != 1)
        e->problems |= KV_AUDIT_NOT_PRIVATE;

    if (private_key) {
        /*
         * an issuer key signs (certificates, raw RSA of EMV Book 2) and does
         * nothing else; CKA_SIGN_RECOVER (SoftHSM2's default) is signing too,
         * no more than the raw CKM_RSA_X_509 signature it already makes
         */
        e->allowed = KV_HSM_USE_SIGN;
        if ((e->usage & ~e->allowed) != 0)
            e->problems |= KV_AUDIT_EXTRA_USAGE;
    } else if (e->role == KV_ROLE_NONE) {
        e->problems |= KV_AUDIT_NO_ROLE;
    } else if (!e->type_known || role_usage(e->type, e->role, &e->allowed, why, sizeof(why)) != 0) {
        e->problems |= KV_AUDIT_ROLE_TYPE;
        if (!e->type_known)
            snprintf(why, sizeof(why), "a key of type CKK 0x%lx cannot have role %s",
                     (unsigned long)kt, kv_key_role_name(e->role));
        snprintf(e->why, sizeof(e->why), "%s", why);
    } else if ((e->usage & ~e->allowed) != 0) {
        e->problems |= KV_AUDIT_EXTRA_USAGE;
    }
    if ((e->usage & KV_HSM_USE_DERIVE) && !private_key) {
        int ok = derive_template_ok(h, o, why, sizeof(why));
        if (ok < 0) {
            e->derive_template_unknown = 1;
        } else if (ok == 0) {
            e->problems |= KV_AUDIT_NO_DERIVE_TEMPLATE;
            if (e->why[0] == '\0')
                snprintf(e->why, sizeof(e->why), "%s", why);
        }
    }
    return 0;
}

/* Handles of the token objects of class cls; *hs a heap array of *n. */
static int list_class(kv_hsm *h, CK_OBJECT_CLASS cls, CK_OBJECT_HANDLE **hs, size_t *n)
{
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE t[2] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_TOKEN, &yes, sizeof(yes)}};
    CK_OBJECT_HANDLE batch[32];
    CK_ULONG got = 0;
    size_t cap = 0;
    CK_RV rv;

    *hs = NULL;
    *n = 0;
    if ((rv = h->f->C_FindObjectsInit(h->session, t, 2)) != CKR_OK)
        return kv_p11_fail(h, rv, NULL, "listing the token's keys failed");
    do {
        if ((rv = h->f->C_FindObjects(h->session, batch, 32, &got)) != CKR_OK || got == 0)
            break;
        if (*n + got > cap) {
            size_t nc = cap ? 2 * cap + got : 64 + got;
            CK_OBJECT_HANDLE *m = realloc(*hs, nc * sizeof(**hs));
            if (m == NULL) {
                h->f->C_FindObjectsFinal(h->session);
                free(*hs);
                *hs = NULL;
                *n = 0;
                return KV_ERR_NOMEM;
            }
            *hs = m;
            cap = nc;
        }
        memcpy(*hs + *n, batch, got * sizeof(*batch));
        *n += got;
    } while (got > 0);
    h->f->C_FindObjectsFinal(h->session);
    if (rv != CKR_OK) {
        free(*hs);
        *hs = NULL;
        *n = 0;
        return kv_p11_fail(h, rv, NULL, "listing the token's keys failed");
    }
    return 0;
}

int kv_hsm_audit_keys(kv_hsm *h, kv_hsm_audit_entry **out, size_t *n)
{
    CK_OBJECT_HANDLE *sec = NULL, *priv = NULL;
    size_t nsec = 0, npriv = 0, k = 0;
    kv_hsm_audit_entry *e = NULL;
    int r;

    *out = NULL;
    *n = 0;
    if (!h->have_session)
        return kv_p11_fail_msg(h, KV_ERR_HSM_SESSION, "no session open on a token");
    if ((r = list_class(h, CKO_SECRET_KEY, &sec, &nsec)) != 0 ||
        (r = list_class(h, CKO_PRIVATE_KEY, &priv, &npriv)) != 0)
        goto out;
    if (nsec + npriv > 0 && (e = calloc(nsec + npriv, sizeof(*e))) == NULL) {
        r = KV_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < nsec; i++)
        if ((r = audit_one(h, sec[i], 0, &e[k++])) != 0)
            goto out;
    for (size_t i = 0; i < npriv; i++)
        if ((r = audit_one(h, priv[i], 1, &e[k++])) != 0)
            goto out;
    *out = e;
    *n = k;
    e = NULL;
    r = 0;
out:
    free(e);
    free(sec);
    free(priv);
    return r;
}

size_t kv_hsm_audit_describe(const kv_hsm_audit_entry *e, char *buf, size_t cap)
{
    char u[96];
    size_t n = 0;

#define ADD(...)                                                                                   \
    do {                                                                                           \
        int w_ = snprintf(buf + n, n < cap ? cap - n : 0, __VA_ARGS__);                            \
        if (w_ > 0)                                                                                \
            n += (size_t)w_;                                                                       \
    } while (0)
#define SEP (n ? "; " : "")

    if (cap == 0)
        return 0;
    buf[0] = '\0';
    if (e->problems & KV_AUDIT_NO_ROLE)
        ADD("%sno role recorded (not made by the key ceremony): nothing says what it may do", SEP);
    if (e->problems & KV_AUDIT_ROLE_TYPE)
        ADD("%s%s", SEP, e->why);
    if (e->problems & KV_AUDIT_MODIFIABLE)
        ADD("%smodifiable (CKA_MODIFIABLE true: its usages can be switched on again)", SEP);
    if (e->problems & KV_AUDIT_COPYABLE)
        ADD("%scopyable (CKA_COPYABLE true)", SEP);
    if (e->problems & KV_AUDIT_NOT_SENSITIVE)
        ADD("%snot sensitive", SEP);
    if (e->problems & KV_AUDIT_EXTRACTABLE)
        ADD("%sextractable", SEP);
    if (e->problems & KV_AUDIT_NOT_PRIVATE)
        ADD("%snot private (usable without login)", SEP);
    if (e->problems & KV_AUDIT_EXTRA_USAGE) {
        kv_hsm_usage_text(e->usage & ~e->allowed, u, sizeof(u));
        if (e->private_key)
            ADD("%susages beyond signing: %s", SEP, (e->usage & ~e->allowed) ? u : "sign-recover");
        else
            ADD("%susages beyond role %s: %s", SEP, kv_key_role_name(e->role), u);
    }
    if (e->problems & KV_AUDIT_NO_DERIVE_TEMPLATE)
        ADD("%s%s", SEP,
            (e->problems & KV_AUDIT_ROLE_TYPE) ? "may derive without a sufficient template"
                                               : e->why);
#undef ADD
#undef SEP
    return n < cap ? n : cap - 1;
}

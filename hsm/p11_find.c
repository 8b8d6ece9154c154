/*
 * Finding keys: token objects by label, CKA_ID or pkcs11: URI, their type,
 * role and weakness, the A||A companion, the table of found keys that keeps
 * held kv_hsm_key structs working when a key is rotated, and the key roles
 * (see p11.h and p11_internal.h).
 */
#include "hsm/p11.h"
#include "hsm/p11_admin.h"
#include "hsm/p11_internal.h"
#include "src/base/err.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int kv_p11_find_token_object(kv_hsm *h, const char *label, const uint8_t *id, size_t id_len,
                             CK_OBJECT_HANDLE *found, CK_ULONG *count)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE t[4];
    CK_ULONG nt = 0;
    CK_OBJECT_HANDLE hs[2];
    CK_RV rv;

    t[nt++] = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof(cls)};
    /* token objects only: derived session keys are not looked up by label */
    t[nt++] = (CK_ATTRIBUTE){CKA_TOKEN, &yes, sizeof(yes)};
    if (label != NULL)
        t[nt++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)label, (CK_ULONG)strlen(label)};
    if (id != NULL)
        t[nt++] = (CK_ATTRIBUTE){CKA_ID, (void *)id, (CK_ULONG)id_len};
    *count = 0;
    if ((rv = h->f->C_FindObjectsInit(h->session, t, nt)) != CKR_OK)
        return kv_p11_fail(h, rv, NULL, "searching the token failed");
    rv = h->f->C_FindObjects(h->session, hs, 2, count);
    h->f->C_FindObjectsFinal(h->session);
    if (rv != CKR_OK)
        return kv_p11_fail(h, rv, NULL, "searching the token failed");
    if (*count > 0)
        *found = hs[0];
    return 0;
}

/* Map a token key's CKA_KEY_TYPE and CKA_VALUE_LEN to our key types. */
static int map_key_type(CK_KEY_TYPE kt, CK_ULONG len, kv_key_type *out)
{
    switch (kt) {
    case CKK_DES2:
        *out = KV_KEY_DES2;
        return 0;
    case CKK_DES3:
        *out = KV_KEY_DES3;
        return 0;
    case CKK_AES:
        if (len == 16)
            *out = KV_KEY_AES128;
        else if (len == 24)
            *out = KV_KEY_AES192;
        else if (len == 32)
            *out = KV_KEY_AES256;
        else
            return KV_ERR_HSM_KEY;
        return 0;
    case CKK_GENERIC_SECRET:
    case CKK_SHA256_HMAC:
        *out = KV_KEY_HMAC;
        return 0;
    default:
        return KV_ERR_HSM_KEY;
    }
}

int kv_hsm_id_is_weak(const uint8_t *id, size_t id_len)
{
    size_t n = sizeof(KV_HSM_WEAK_ID_PREFIX) - 1;
    return id != NULL && id_len >= n && memcmp(id, KV_HSM_WEAK_ID_PREFIX, n) == 0;
}

/* --- roles --------------------------------------------------------------------- */

static const char *const role_names[KV_ROLE__COUNT] = {
    [KV_ROLE_NONE] = "none",       [KV_ROLE_CVK] = "cvk",
    [KV_ROLE_PVK] = "pvk",         [KV_ROLE_PIN] = "pin",
    [KV_ROLE_IMK_AC] = "imk",      [KV_ROLE_IMK_CVC3] = "imk-cvc3",
    [KV_ROLE_IMK_SMI] = "imk-smi", [KV_ROLE_IMK_SMC] = "imk-smc",
    [KV_ROLE_MAC] = "mac",         [KV_ROLE_KEK] = "kek",
    [KV_ROLE_TOKEN] = "token",     [KV_ROLE_EVIDENCE] = "evidence",
    [KV_ROLE_PAN_ENC] = "pan-enc", [KV_ROLE_STATE_MAC] = "state-mac",
    [KV_ROLE_ICC_AC] = "icc-ac",   [KV_ROLE_ICC_CVC3] = "icc-cvc3",
    [KV_ROLE_ICC_SMI] = "icc-smi", [KV_ROLE_ICC_SMC] = "icc-smc",
};

const char *kv_key_role_name(kv_key_role r)
{
    if ((unsigned)r < KV_ROLE__COUNT && role_names[r] != NULL)
        return role_names[r];
    return "none";
}

int kv_key_role_parse(const char *s, kv_key_role *out)
{
    for (unsigned i = 0; s != NULL && i < KV_ROLE__COUNT; i++)
        if (role_names[i] != NULL && strcmp(s, role_names[i]) == 0) {
            *out = (kv_key_role)i;
            return 0;
        }
    return KV_ERR_ARG;
}

kv_key_role kv_hsm_id_role(const uint8_t *id, size_t id_len, const uint8_t **rest, size_t *rest_len)
{
    size_t w = sizeof(KV_HSM_WEAK_ID_PREFIX) - 1, p = sizeof(KV_HSM_ROLE_ID_PREFIX) - 1;
    char name[16];
    size_t n = 0;
    kv_key_role r = KV_ROLE_NONE;

    if (rest != NULL) {
        *rest = NULL;
        *rest_len = 0;
    }
    if (id == NULL)
        return KV_ROLE_NONE;
    if (kv_hsm_id_is_weak(id, id_len)) {
        id += w;
        id_len -= w;
    }
    if (id_len < p || memcmp(id, KV_HSM_ROLE_ID_PREFIX, p) != 0)
        return KV_ROLE_NONE;
    id += p;
    id_len -= p;
    while (n < id_len && n < sizeof(name) - 1 && id[n] != ':') {
        name[n] = (char)id[n];
        n++;
    }
    if (n >= id_len || id[n] != ':')
        return KV_ROLE_NONE;
    name[n] = '\0';
    if (kv_key_role_parse(name, &r) != 0)
        return KV_ROLE_NONE;
    if (rest != NULL) {
        *rest = id + n + 1;
        *rest_len = id_len - n - 1;
    }
    return r;
}

int kv_hsm_key_require_role(kv_hsm *h, const kv_hsm_key *key, kv_key_role want)
{
    if (key->role == want && want != KV_ROLE_NONE)
        return 0;
    if (key->role == KV_ROLE_NONE)
        return kv_p11_fail_msg(h, KV_ERR_HSM_ROLE,
                               "key '%s' has no role recorded (not made by the key ceremony, or "
                               "modifiable); this operation needs a %s key: import or generate it "
                               "with --usage %s",
                               key->label, kv_key_role_name(want), kv_key_role_name(want));
    return kv_p11_fail_msg(h, KV_ERR_HSM_ROLE,
                           "key '%s' has role %s; this operation needs a %s key", key->label,
                           kv_key_role_name(key->role), kv_key_role_name(want));
}

/* --- reading a key object ------------------------------------------------------ */

/*
 * Type, label, weakness and role of a key object, in one C_GetAttributeValue
 * (both marks are in CKA_ID; CKA_MODIFIABLE says whether the role can be
 * trusted).
 */
static int key_attrs(kv_hsm *h, CK_OBJECT_HANDLE o, kv_key_type *type, char *label, size_t lcap,
                     int *weak, kv_key_role *role, CK_RV *rvp)
{
    CK_KEY_TYPE kt = 0;
    CK_ULONG vlen = 0;
    CK_BBOOL modifiable = CK_TRUE;
    char lab[129];
    uint8_t id[128];
    CK_ATTRIBUTE a[5] = {
        {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_VALUE_LEN, &vlen, sizeof(vlen)},
        {CKA_LABEL, lab, sizeof(lab) - 1},
        {CKA_ID, id, sizeof(id)},
        {CKA_MODIFIABLE, &modifiable, sizeof(modifiable)},
    };
    CK_RV rv = h->f->C_GetAttributeValue(h->session, o, a, 5);
    if (rvp != NULL)
        *rvp = rv;
    /* some tokens have no CKA_VALUE_LEN for DES keys: only the type matters then */
    if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_BUFFER_TOO_SMALL)
        return kv_p11_fail(h, rv, NULL, "reading the attributes of a key failed");
    if (a[0].ulValueLen == CK_UNAVAILABLE_INFORMATION)
        return kv_p11_fail_msg(h, KV_ERR_HSM_KEY, "the token does not tell the key's type");
    if (a[1].ulValueLen == CK_UNAVAILABLE_INFORMATION)
        vlen = 0;
    if (a[2].ulValueLen == CK_UNAVAILABLE_INFORMATION)
        a[2].ulValueLen = 0;
    lab[a[2].ulValueLen] = '\0';
    /* an ID longer than the buffer is not one kortvagt wrote */
    if (a[3].ulValueLen == CK_UNAVAILABLE_INFORMATION)
        a[3].ulValueLen = 0;
    *weak = kv_hsm_id_is_weak(id, (size_t)a[3].ulValueLen);
    /* a role is only as fixed as the object: a modifiable one could have been re-marked */
    *role = KV_ROLE_NONE;
    if (a[4].ulValueLen != CK_UNAVAILABLE_INFORMATION && modifiable == CK_FALSE)
        *role = kv_hsm_id_role(id, (size_t)a[3].ulValueLen, NULL, NULL);
    if (label != NULL && lcap > 0) {
        /* a longer label is cut to the caller's buffer (64 bytes in kv_hsm_key) */
        size_t l = strnlen(lab, lcap - 1);
        memcpy(label, lab, l);
        label[l] = '\0';
    }
    if (map_key_type(kt, vlen, type) != 0)
        return kv_p11_fail_msg(h, KV_ERR_HSM_KEY,
                               "key '%s' has a type kortvagt does not use (CKK 0x%lx, %lu bytes)",
                               lab, (unsigned long)kt, (unsigned long)vlen);
    return 0;
}

/* --- the table of found keys --------------------------------------------------- */

static unsigned long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000ull + (unsigned long long)ts.tv_nsec / 1000000ull;
}

int kv_p11_rv_handle_gone(CK_RV rv)
{
    return rv == CKR_OBJECT_HANDLE_INVALID || rv == CKR_KEY_HANDLE_INVALID;
}

static struct kv_hsm_cached_key *entry_by_name(kv_hsm *h, const char *name)
{
    for (size_t i = 0; i < h->nkeys; i++)
        if (strcmp(h->keys[i].name, name) == 0)
            return &h->keys[i];
    return NULL;
}

/* The entry a held key was issued from (by its handle and label). */
static struct kv_hsm_cached_key *entry_for(const kv_hsm *h, const kv_hsm_key *key)
{
    for (size_t i = 0; i < h->nkeys; i++)
        if (h->keys[i].issued == key->handle && strcmp(h->keys[i].label, key->label) == 0)
            return (struct kv_hsm_cached_key *)&h->keys[i];
    return NULL;
}

/* Search a key and its A||A companion by the object's label. */
static int find_by_label(kv_hsm *h, const char *label, CK_OBJECT_HANDLE *o, CK_OBJECT_HANDLE *comp,
                         kv_hsm_key *attrs)
{
    char complabel[140];
    CK_ULONG n = 0;
    int r;

    *o = *comp = CK_INVALID_HANDLE;
    memset(attrs, 0, sizeof(*attrs));
    if ((r = kv_p11_find_token_object(h, label, NULL, 0, o, &n)) != 0)
        return r;
    if (n != 1)
        return kv_p11_fail_msg(h, KV_ERR_HSM_KEY, "key '%s' is no longer on token '%s'%s", label,
                               h->token_label, n > 1 ? " (the label is ambiguous now)" : "");
    if ((r = key_attrs(h, *o, &attrs->type, attrs->label, sizeof(attrs->label), &attrs->weak,
                       &attrs->role, NULL)) != 0)
        return r;
    if (attrs->type == KV_KEY_DES2 || attrs->type == KV_KEY_DES3) {
        snprintf(complabel, sizeof(complabel), "%s.aa", label);
        if ((r = kv_p11_find_token_object(h, complabel, NULL, 0, comp, &n)) != 0)
            return r;
        if (n != 1)
            *comp = CK_INVALID_HANDLE;
    }
    return 0;
}

/* Look up the object of a held key again; remap its entry. */
static int refresh(kv_hsm *h, const kv_hsm_key *key, struct kv_hsm_cached_key *e)
{
    CK_OBJECT_HANDLE o, comp;
    kv_hsm_key now;
    int r;

    if (key->label[0] == '\0')
        return kv_p11_fail_msg(h, KV_ERR_HSM_KEY,
                               "a key without a label is gone from the token: find it again");
    if (e != NULL)
        e->stale = 1; /* until the lookup below succeeds: the next find asks the token */
    if ((r = find_by_label(h, key->label, &o, &comp, &now)) != 0)
        return r;
    if (now.type != key->type || now.role != key->role || now.weak != key->weak)
        return kv_p11_fail_msg(h, KV_ERR_HSM_KEY,
                               "key '%s' changed on the token (now %s, role %s): not used; find "
                               "it again",
                               key->label, now.type == key->type ? "same type" : "another type",
                               kv_key_role_name(now.role));
    if (e == NULL) {
        /* a key from before a full table: keep the new handles in a new entry if there is room */
        if (h->nkeys >= KV_HSM_MAX_KEYS)
            return kv_p11_fail_msg(h, KV_ERR_HSM_KEY,
                                   "key '%s' was replaced on the token: find it again", key->label);
        e = &h->keys[h->nkeys++];
        memset(e, 0, sizeof(*e));
        snprintf(e->label, sizeof(e->label), "%s", key->label);
        e->issued = key->handle;
        e->comp_issued = key->companion;
        e->type = key->type;
        e->role = key->role;
        e->weak = key->weak;
    }
    e->current = o;
    e->comp_current = comp;
    if (e->comp_issued == 0)
        e->comp_issued = comp;
    e->stale = 0;
    e->at = mono_ms();
    return 0;
}

CK_OBJECT_HANDLE kv_p11_resolve(const kv_hsm *h, CK_OBJECT_HANDLE issued)
{
    for (size_t i = 0; i < h->nkeys; i++) {
        if (h->keys[i].issued == issued)
            return h->keys[i].current;
        if (h->keys[i].comp_issued == issued && issued != 0)
            return h->keys[i].comp_current;
    }
    return issued;
}

int kv_p11_key_handle(kv_hsm *h, const kv_hsm_key *key, int use_companion, CK_OBJECT_HANDLE *o)
{
    struct kv_hsm_cached_key *e;
    int r;

    *o = use_companion ? key->companion : key->handle;
    if (key->session_object)
        return 0;
    if ((e = entry_for(h, key)) == NULL)
        return 0;
    if (e->stale && (r = refresh(h, key, e)) != 0)
        return r;
    *o = use_companion ? e->comp_current : e->current;
    if (use_companion && *o == CK_INVALID_HANDLE)
        return kv_p11_fail_msg(h, KV_ERR_HSM_KEY, "the A||A companion of key '%s' is gone",
                               key->label);
    return 0;
}

int kv_p11_key_refind(kv_hsm *h, const kv_hsm_key *key)
{
    if (key->session_object)
        return kv_p11_fail_msg(h, KV_ERR_HSM_KEY, "a derived key is gone: derive it again");
    return refresh(h, key, entry_for(h, key));
}

void kv_hsm_keys_flush(kv_hsm *h)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < h->nkeys; i++)
        h->keys[i].stale = 1;
}

/* --- finding ------------------------------------------------------------------- */

static int key_find_once(kv_hsm *h, const char *name, kv_hsm_key *out)
{
    kv_p11uri u;
    char why[200];
    const char *label = name;
    const uint8_t *id = NULL;
    size_t id_len = 0;
    CK_OBJECT_HANDLE o = CK_INVALID_HANDLE, comp = CK_INVALID_HANDLE;
    CK_ULONG n = 0;
    char complabel[140];
    int r;

    if (kv_p11uri_is_uri(name)) {
        if ((r = kv_p11uri_parse(name, &u, why, sizeof(why))) != 0)
            return kv_p11_fail_msg(h, r, "key name: %s", why);
        if (u.has_token && strcmp(u.token, h->token_label) != 0)
            return kv_p11_fail_msg(h, KV_ERR_HSM_KEY,
                                   "key %s names token '%s', but the open token is '%s'", name,
                                   u.token, h->token_label);
        if (u.has_type && strcmp(u.type, "secret-key") != 0)
            return kv_p11_fail_msg(h, KV_ERR_HSM_KEY, "key %s: type=%s is not a secret key", name,
                                   u.type);
        if (!u.has_object && !u.has_id)
            return kv_p11_fail_msg(h, KV_ERR_ARG, "key %s names neither object= nor id=", name);
        label = u.has_object ? u.object : NULL;
        if (u.has_id) {
            id = u.id;
            id_len = u.id_len;
        }
    } else if (name[0] == '\0') {
        return kv_p11_fail_msg(h, KV_ERR_ARG, "empty key label");
    }
    if ((r = kv_p11_find_token_object(h, label, id, id_len, &o, &n)) != 0)
        return r;
    if (n == 0)
        return kv_p11_fail_msg(h, KV_ERR_HSM_KEY, "key '%s' not found on token '%s'", name,
                               h->token_label);
    if (n > 1)
        return kv_p11_fail_msg(h, KV_ERR_HSM_KEY,
                               "key name '%s' is ambiguous: several keys on token '%s' match", name,
                               h->token_label);
    memset(out, 0, sizeof(*out));
    if ((r = key_attrs(h, o, &out->type, out->label, sizeof(out->label), &out->weak, &out->role,
                       NULL)) != 0)
        return r;
    /* the A||A companion: "<label>.aa" (MAC algorithm 3, CVV) */
    if (out->label[0] != '\0' && (out->type == KV_KEY_DES2 || out->type == KV_KEY_DES3)) {
        snprintf(complabel, sizeof(complabel), "%s.aa", out->label);
        if ((r = kv_p11_find_token_object(h, complabel, NULL, 0, &comp, &n)) != 0)
            return r;
        if (n == 1)
            out->companion = comp;
    }
    out->handle = o;
    out->session_object = 0;
    return 0;
}

/*
 * Remember what name resolved to. A held key keeps the handle it was issued;
 * when the name now resolves to another object of the same type, role and
 * strength, the entry is remapped (issued -> current). A different key under
 * the name gets a fresh entry, so that keys found before never reach it.
 */
static void remember(kv_hsm *h, const char *name, kv_hsm_key *out)
{
    struct kv_hsm_cached_key *e = entry_by_name(h, name);

    if (strlen(name) >= sizeof(e->name))
        return;
    if (e != NULL && (e->type != out->type || e->role != out->role || e->weak != out->weak ||
                      strcmp(e->label, out->label) != 0)) {
        *e = h->keys[--h->nkeys]; /* forget it: a new entry below */
        e = NULL;
    }
    if (e == NULL) {
        if (h->nkeys >= KV_HSM_MAX_KEYS)
            return; /* full: out keeps the raw handles */
        e = &h->keys[h->nkeys++];
        memset(e, 0, sizeof(*e));
        snprintf(e->name, sizeof(e->name), "%s", name);
        snprintf(e->label, sizeof(e->label), "%s", out->label);
        e->issued = out->handle;
        e->comp_issued = out->companion;
        e->type = out->type;
        e->role = out->role;
        e->weak = out->weak;
    }
    e->current = out->handle;
    e->comp_current = out->companion;
    if (e->comp_issued == 0)
        e->comp_issued = out->companion;
    e->stale = 0;
    e->at = mono_ms();
    out->handle = e->issued;
    out->companion = e->comp_current != 0 ? e->comp_issued : 0;
}

int kv_hsm_key_find(kv_hsm *h, const char *name, kv_hsm_key *out)
{
    struct kv_hsm_cached_key *e;
    int r;

    memset(out, 0, sizeof(*out));
    if (!h->have_session)
        return kv_p11_fail_msg(h, KV_ERR_HSM_SESSION, "no session open on the token");
    if (name == NULL)
        return kv_p11_fail_msg(h, KV_ERR_ARG, "no key name");
    e = entry_by_name(h, name);
    if (e != NULL && !e->stale && mono_ms() - e->at < KV_HSM_KEY_STALE_MS) {
        /* looked up a moment ago: trusted for KV_HSM_KEY_STALE_SECONDS */
        out->handle = e->issued;
        out->companion = e->comp_current != 0 ? e->comp_issued : 0;
        out->type = e->type;
        out->role = e->role;
        out->weak = e->weak;
        snprintf(out->label, sizeof(out->label), "%s", e->label);
        r = 0;
    } else {
        r = key_find_once(h, name, out);
        if (r == KV_ERR_HSM_SESSION && kv_p11_reopen(h) == 0)
            r = key_find_once(h, name, out);
        if (r == 0)
            remember(h, name, out);
    }
    if (r != 0) {
        memset(out, 0, sizeof(*out));
    } else if (out->weak && h->refuse_weak) {
        /* refused for its strength: say so through out->weak, with no usable handle */
        out->handle = 0;
        out->companion = 0;
        r = kv_hsm_key_check_strength(h, out, 0);
    }
    return r;
}

void kv_hsm_refuse_weak_keys(kv_hsm *h, int refuse)
{
    h->refuse_weak = refuse != 0;
}

int kv_hsm_key_from_handle(kv_hsm *h, unsigned long handle, kv_hsm_key *out)
{
    int r;
    memset(out, 0, sizeof(*out));
    if ((r = key_attrs(h, (CK_OBJECT_HANDLE)handle, &out->type, out->label, sizeof(out->label),
                       &out->weak, &out->role, NULL)) != 0)
        return r;
    out->handle = handle;
    return 0;
}

int kv_hsm_key_is_weak(const kv_hsm_key *key)
{
    return key != NULL && key->weak;
}

int kv_hsm_key_check_strength(kv_hsm *h, const kv_hsm_key *key, int allow_weak)
{
    if (!key->weak || allow_weak)
        return 0;
    return kv_p11_fail_msg(h, KV_ERR_HSM_KEY,
                           "key '%s' has single-DES strength (a double-length key with equal "
                           "halves, imported with --allow-single-des): refused; allow weak keys "
                           "explicitly to use it",
                           key->label);
}

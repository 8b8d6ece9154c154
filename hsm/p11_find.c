/*
 * Finding keys: token objects by label, CKA_ID or pkcs11: URI, their type and
 * weakness, the A||A companion, and the session copies that make operations
 * fast (see p11.h and p11_internal.h).
 */
#include "hsm/p11.h"
#include "hsm/p11_admin.h"
#include "hsm/p11_internal.h"
#include "src/base/err.h"

#include <stdio.h>
#include <string.h>

CK_OBJECT_HANDLE kv_p11_copy_to_session(kv_hsm *h, CK_OBJECT_HANDLE token)
{
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE t = {CKA_TOKEN, &no, sizeof(no)};
    CK_OBJECT_HANDLE c = CK_INVALID_HANDLE;
    if (h->f->C_CopyObject(h->session, token, &t, 1, &c) != CKR_OK)
        return CK_INVALID_HANDLE;
    return c;
}

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
    /* token objects only: our own session copies carry the same label */
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

/*
 * Type, label and weakness of a key object, in one C_GetAttributeValue (the
 * weakness mark is a CKA_ID prefix, so checking it costs nothing extra).
 */
static int key_attrs(kv_hsm *h, CK_OBJECT_HANDLE o, kv_key_type *type, char *label, size_t lcap,
                     int *weak)
{
    CK_KEY_TYPE kt = 0;
    CK_ULONG vlen = 0;
    char lab[129];
    uint8_t id[128];
    CK_ATTRIBUTE a[4] = {
        {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_VALUE_LEN, &vlen, sizeof(vlen)},
        {CKA_LABEL, lab, sizeof(lab) - 1},
        {CKA_ID, id, sizeof(id)},
    };
    CK_RV rv = h->f->C_GetAttributeValue(h->session, o, a, 4);
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
    *weak = a[3].ulValueLen != CK_UNAVAILABLE_INFORMATION &&
            kv_hsm_id_is_weak(id, (size_t)a[3].ulValueLen);
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

/* The session copy for a token key, made once per kv_hsm. */
static CK_OBJECT_HANDLE session_handle(kv_hsm *h, CK_OBJECT_HANDLE token, const char *label)
{
    struct kv_hsm_copy *c;
    for (size_t i = 0; i < h->ncopies; i++)
        if (h->copies[i].token == token)
            return h->copies[i].issued;
    if (h->ncopies >= KV_HSM_MAX_COPIES)
        return token; /* table full: use the (slower) token object itself */
    c = &h->copies[h->ncopies];
    c->token = token;
    c->issued = kv_p11_copy_to_session(h, token);
    if (c->issued == CK_INVALID_HANDLE)
        return token; /* the token does not copy (CKA_COPYABLE false): use it as it is */
    /*
     * After a reopen, a module may hand out again the number of a copy that
     * died with the old session; that number must keep meaning the old key.
     */
    for (size_t i = 0; i < h->ncopies; i++)
        if (h->copies[i].issued == c->issued) {
            h->f->C_DestroyObject(h->session, c->issued);
            return token;
        }
    c->current = c->issued;
    snprintf(c->label, sizeof(c->label), "%s", label);
    h->ncopies++;
    return c->issued;
}

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
    if ((r = key_attrs(h, o, &out->type, out->label, sizeof(out->label), &out->weak)) != 0)
        return r;
    /* the A||A companion: "<label>.aa" (MAC algorithm 3, CVV) */
    if (out->label[0] != '\0' && (out->type == KV_KEY_DES2 || out->type == KV_KEY_DES3)) {
        snprintf(complabel, sizeof(complabel), "%s.aa", out->label);
        if ((r = kv_p11_find_token_object(h, complabel, NULL, 0, &comp, &n)) != 0)
            return r;
        if (n == 1)
            out->companion = session_handle(h, comp, complabel);
    }
    out->handle = session_handle(h, o, out->label);
    out->session_object = 0;
    return 0;
}

int kv_hsm_key_find(kv_hsm *h, const char *name, kv_hsm_key *out)
{
    int r;
    memset(out, 0, sizeof(*out));
    if (!h->have_session)
        return kv_p11_fail_msg(h, KV_ERR_HSM_SESSION, "no session open on the token");
    r = key_find_once(h, name, out);
    if (r == KV_ERR_HSM_SESSION && kv_p11_reopen(h) == 0)
        r = key_find_once(h, name, out);
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
                       &out->weak)) != 0)
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

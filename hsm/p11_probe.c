/* see p11_probe.h */
#include "hsm/p11_probe.h"
#include "hsm/p11_internal.h"
#include "src/base/err.h"
#include "src/base/secure.h"

#include <stdio.h>
#include <string.h>

const char *kv_dt_result_name(kv_dt_result r)
{
    switch (r) {
    case KV_DT_ENFORCED:
        return "enforced";
    case KV_DT_NOT_ENFORCED:
        return "not_enforced";
    case KV_DT_UNKNOWN_ATTR:
        return "attribute_unknown";
    case KV_DT_UNTESTABLE:
        return "untestable";
    }
    return "untestable";
}

const char *kv_dt_warning(kv_dt_result r)
{
    switch (r) {
    case KV_DT_ENFORCED:
        return NULL;
    case KV_DT_UNTESTABLE:
        return "whether this module enforces CKA_DERIVE_TEMPLATE could not be tested: assume it "
               "does not (a holder of the token PIN may be able to derive clear session keys "
               "from an IMK); use an HSM that enforces it in production";
    case KV_DT_NOT_ENFORCED:
    case KV_DT_UNKNOWN_ATTR:
        break;
    }
    return "this module does not enforce CKA_DERIVE_TEMPLATE: a holder of the token PIN can "
           "derive clear session keys from an IMK; use an HSM that enforces it in production";
}

/* A public test key (tests/data/VECTORS.md, the EMV test IMK): nothing secret is involved. */
static const uint8_t probe_key[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF,
                                      0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10};
static const uint8_t probe_data[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0x01, 0x23, 0x45,
                                       0xFE, 0xDC, 0xBA, 0x98, 0x76, 0xFE, 0xDC, 0xBA};

/* C_DeriveKey from base with CKA_SENSITIVE / CKA_EXTRACTABLE as given. */
static CK_RV derive(kv_hsm *h, CK_OBJECT_HANDLE base, CK_BBOOL sensitive, CK_BBOOL extractable,
                    CK_OBJECT_HANDLE *out)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_DES2;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_KEY_DERIVATION_STRING_DATA p = {(CK_BYTE_PTR)probe_data, sizeof(probe_data)};
    CK_MECHANISM m = {CKM_DES3_ECB_ENCRYPT_DATA, &p, sizeof(p)};
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_TOKEN, &no, sizeof(no)},
        {CKA_PRIVATE, &no, sizeof(no)},
        {CKA_ENCRYPT, &yes, sizeof(yes)},
        {CKA_SENSITIVE, &sensitive, sizeof(sensitive)},
        {CKA_EXTRACTABLE, &extractable, sizeof(extractable)},
    };
    *out = CK_INVALID_HANDLE;
    return h->f->C_DeriveKey(h->session, &m, base, t, sizeof(t) / sizeof(t[0]), out);
}

int kv_hsm_probe_derive_template(kv_hsm *h, kv_hsm_dt_probe *out)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_DES2;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE dt[2] = {{CKA_SENSITIVE, &yes, sizeof(yes)}, {CKA_EXTRACTABLE, &no, sizeof(no)}};
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},        {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_TOKEN, &no, sizeof(no)},          {CKA_PRIVATE, &no, sizeof(no)},
        {CKA_SENSITIVE, &yes, sizeof(yes)},    {CKA_EXTRACTABLE, &no, sizeof(no)},
        {CKA_DERIVE, &yes, sizeof(yes)},       {CKA_VALUE, (void *)probe_key, sizeof(probe_key)},
        {CKA_DERIVE_TEMPLATE, dt, sizeof(dt)},
    };
    CK_OBJECT_HANDLE base = CK_INVALID_HANDLE, good = CK_INVALID_HANDLE, weak = CK_INVALID_HANDLE;
    CK_RV rv;
    int unknown = 0;

    memset(out, 0, sizeof(*out));
    out->result = KV_DT_UNTESTABLE;
    if (!h->have_session)
        return kv_p11_fail_msg(h, KV_ERR_HSM_SESSION, "no session open on a token");
    rv = h->f->C_CreateObject(h->session, t, sizeof(t) / sizeof(t[0]), &base);
    if (rv == CKR_ATTRIBUTE_TYPE_INVALID) {
        /* is it the template the module does not know? the same key without it */
        rv = h->f->C_CreateObject(h->session, t, sizeof(t) / sizeof(t[0]) - 1, &base);
        unknown = rv == CKR_OK;
    }
    if (rv != CKR_OK) {
        snprintf(out->detail, sizeof(out->detail), "creating the test key: %s", kv_p11_rv_name(rv));
        goto out;
    }
    /* the control: a derivation that obeys the template must work */
    if ((rv = derive(h, base, CK_TRUE, CK_FALSE, &good)) != CKR_OK) {
        snprintf(out->detail, sizeof(out->detail),
                 "CKM_DES3_ECB_ENCRYPT_DATA with a template that obeys the derive template "
                 "fails: %s",
                 kv_p11_rv_name(rv));
        goto done;
    }
    rv = derive(h, base, CK_FALSE, CK_TRUE, &weak);
    if (rv != CKR_OK) {
        out->result = KV_DT_ENFORCED;
        snprintf(out->detail, sizeof(out->detail),
                 "deriving with CKA_SENSITIVE false, CKA_EXTRACTABLE true is refused: %s",
                 kv_p11_rv_name(rv));
    } else {
        /* allowed: what did the module make? */
        CK_BBOOL s = CK_TRUE, x = CK_FALSE;
        CK_ATTRIBUTE a[2] = {{CKA_SENSITIVE, &s, sizeof(s)}, {CKA_EXTRACTABLE, &x, sizeof(x)}};
        uint8_t v[64];
        CK_ATTRIBUTE va = {CKA_VALUE, v, sizeof(v)};
        CK_RV arv = h->f->C_GetAttributeValue(h->session, weak, a, 2);
        CK_RV vrv = h->f->C_GetAttributeValue(h->session, weak, &va, 1);
        kv_wipe(v, sizeof(v));
        if (vrv == CKR_OK) {
            out->result = KV_DT_NOT_ENFORCED;
            snprintf(out->detail, sizeof(out->detail),
                     "deriving with CKA_SENSITIVE false, CKA_EXTRACTABLE true is allowed and the "
                     "derived key's value can be read");
        } else if (arv == CKR_OK && s == CK_TRUE && x == CK_FALSE) {
            out->result = KV_DT_ENFORCED;
            snprintf(out->detail, sizeof(out->detail),
                     "deriving with CKA_SENSITIVE false, CKA_EXTRACTABLE true gives a sensitive, "
                     "unextractable key (the template wins)");
        } else {
            out->result = KV_DT_NOT_ENFORCED;
            snprintf(out->detail, sizeof(out->detail),
                     "deriving with CKA_SENSITIVE false, CKA_EXTRACTABLE true is allowed (%s)",
                     arv == CKR_OK ? (x == CK_TRUE ? "the derived key is extractable"
                                                   : "the derived key is not sensitive")
                                   : kv_p11_rv_name(arv));
        }
    }
done:
    if (unknown) {
        /* what the module does with a derive key that cannot carry a template */
        char seen[sizeof(out->detail)];
        snprintf(seen, sizeof(seen), "%s", out->detail);
        out->result = KV_DT_UNKNOWN_ATTR;
        /* the result is checked only so that gcc -O2 accepts a cut (the text is still useful) */
        if (snprintf(out->detail, sizeof(out->detail),
                     "the module does not know CKA_DERIVE_TEMPLATE (CKR_ATTRIBUTE_TYPE_INVALID); "
                     "without it: %s",
                     seen) < 0)
            out->detail[0] = '\0';
    }
out:
    if (weak != CK_INVALID_HANDLE)
        h->f->C_DestroyObject(h->session, weak);
    if (good != CK_INVALID_HANDLE)
        h->f->C_DestroyObject(h->session, good);
    if (base != CK_INVALID_HANDLE)
        h->f->C_DestroyObject(h->session, base);
    return 0;
}

/* see p11_aes_derive.h */
#include "hsm/p11_aes_derive.h"
#include "hsm/p11_internal.h"
#include "src/base/err.h"

#include <stdio.h>
#include <string.h>

static CK_RV derive_once(kv_hsm *h, CK_OBJECT_HANDLE parent, const uint8_t data[16], unsigned uses,
                         CK_OBJECT_HANDLE *out)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_ULONG vlen = 16;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE dt[2] = {{CKA_SENSITIVE, &yes, sizeof(yes)}, {CKA_EXTRACTABLE, &no, sizeof(no)}};
    CK_KEY_DERIVATION_STRING_DATA p = {(CK_BYTE_PTR)data, 16};
    CK_MECHANISM m = {CKM_AES_ECB_ENCRYPT_DATA, &p, sizeof(p)};
    CK_BBOOL *drv = (uses & KV_AES_DERIVED_DERIVE) ? &yes : &no;
    CK_BBOOL *sig = (uses & KV_AES_DERIVED_SIGN) ? &yes : &no;
    CK_BBOOL *enc = (uses & KV_AES_DERIVED_ENCRYPT) ? &yes : &no;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_VALUE_LEN, &vlen, sizeof(vlen)},
        {CKA_TOKEN, &no, sizeof(no)},
        {CKA_SENSITIVE, &yes, sizeof(yes)},
        {CKA_EXTRACTABLE, &no, sizeof(no)},
        {CKA_ENCRYPT, enc, sizeof(yes)},
        {CKA_DECRYPT, &no, sizeof(no)},
        {CKA_SIGN, sig, sizeof(yes)},
        {CKA_VERIFY, &no, sizeof(no)},
        {CKA_DERIVE, drv, sizeof(yes)},
        {CKA_COPYABLE, &no, sizeof(no)},
        {CKA_DERIVE_TEMPLATE, dt, sizeof(dt)},
        /* last: SoftHSM2 2.6 refuses every attribute after it in a derive template */
        {CKA_MODIFIABLE, &no, sizeof(no)},
    };

    return kv_p11_derive_key(h, &m, parent, t, sizeof(t) / sizeof(t[0]),
                             (uses & KV_AES_DERIVED_DERIVE) != 0, out);
}

int kv_hsm_derive_aes128(kv_hsm *h, const kv_hsm_key *parent, const uint8_t data[16], unsigned uses,
                         kv_hsm_key *out)
{
    CK_OBJECT_HANDLE k = CK_INVALID_HANDLE;
    CK_RV rv = CKR_OK;
    kv_hsm_key par = *parent; /* parent and out may be the same struct */
    int r;

    memset(out, 0, sizeof(*out));
    if (par.type != KV_KEY_AES128)
        return kv_p11_fail_msg(h, KV_ERR_HSM_KEY, "key '%s' is not an AES-128 key: cannot derive",
                               par.label);
    for (int attempt = 0; attempt < 2; attempt++) {
        CK_OBJECT_HANDLE p;
        if ((r = kv_p11_key_handle(h, &par, 0, &p)) != 0)
            return r;
        if ((rv = derive_once(h, p, data, uses, &k)) == CKR_OK)
            break;
        k = CK_INVALID_HANDLE;
        if (attempt == 0 && kv_p11_rv_session_lost(rv) && !par.session_object &&
            kv_p11_reopen(h) == 0)
            continue;
        if (attempt == 0 && kv_p11_rv_handle_gone(rv) && !par.session_object) {
            if ((r = kv_p11_key_refind(h, &par)) != 0)
                return r;
            continue;
        }
        return kv_p11_fail(h, rv, NULL, "deriving an AES key from '%s' (CKM_AES_ECB_ENCRYPT_DATA)",
                           par.label);
    }
    out->handle = k;
    out->companion = 0;
    out->type = KV_KEY_AES128;
    out->session_object = 1;
    out->weak = par.weak;
    out->role = kv_p11_derived_role(par.role);
    snprintf(out->label, sizeof(out->label), "derived from %.40s", par.label);
    return 0;
}

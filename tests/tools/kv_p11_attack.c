/*
 * kv_p11_attack: a test-only PKCS#11 client (never installed) that tries on a
 * kortvagt token what a holder of the token's user PIN could try with any
 * PKCS#11 tool, one attempt per run, and prints what the module answered.
 * tests/integration/test_sec_keys.sh (issue 11, findings 2 and 3) uses it.
 *
 *   kv_p11_attack OP LABEL
 *     setattr   C_SetAttributeValue(CKA_DECRYPT = true) on the key
 *     copy      C_CopyObject(CKA_TOKEN = false) of the key
 *     encrypt   C_EncryptInit(CKM_DES3_ECB or CKM_AES_ECB) with the key
 *     derive    C_DeriveKey(CKM_DES3_ECB_ENCRYPT_DATA) with the template
 *               {CKA_SENSITIVE false, CKA_EXTRACTABLE true}, then reads the
 *               derived CKA_VALUE (its length is printed, never the value)
 *     info      CKA_ID (hex), CKA_MODIFIABLE, CKA_COPYABLE, the usage flags
 *               and whether CKA_DERIVE_TEMPLATE can be read
 *
 * Output: one line "OP LABEL: CKR_NAME" (and "key=value" words for info).
 * Exit 0 when the call was made (whatever it answered), 2 on bad arguments,
 * 3 when the module, token, login or key is not there. The module, token and
 * PIN come from $KORTVAGT_PKCS11_MODULE, $KORTVAGT_TOKEN and $KORTVAGT_PIN,
 * as for kortvagt. Derived objects are session objects and die with the run.
 */
#include <p11-kit-1/p11-kit/pkcs11.h>

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static CK_FUNCTION_LIST_PTR f;
static CK_SESSION_HANDLE s;

static const char *rv_name(CK_RV rv)
{
    static char buf[32];
    switch (rv) {
    case CKR_OK:
        return "CKR_OK";
    case CKR_ACTION_PROHIBITED:
        return "CKR_ACTION_PROHIBITED";
    case CKR_ATTRIBUTE_READ_ONLY:
        return "CKR_ATTRIBUTE_READ_ONLY";
    case CKR_ATTRIBUTE_SENSITIVE:
        return "CKR_ATTRIBUTE_SENSITIVE";
    case CKR_ATTRIBUTE_TYPE_INVALID:
        return "CKR_ATTRIBUTE_TYPE_INVALID";
    case CKR_ATTRIBUTE_VALUE_INVALID:
        return "CKR_ATTRIBUTE_VALUE_INVALID";
    case CKR_KEY_FUNCTION_NOT_PERMITTED:
        return "CKR_KEY_FUNCTION_NOT_PERMITTED";
    case CKR_KEY_TYPE_INCONSISTENT:
        return "CKR_KEY_TYPE_INCONSISTENT";
    case CKR_TEMPLATE_INCONSISTENT:
        return "CKR_TEMPLATE_INCONSISTENT";
    case CKR_MECHANISM_INVALID:
        return "CKR_MECHANISM_INVALID";
    default:
        snprintf(buf, sizeof(buf), "CKR_0x%lX", (unsigned long)rv);
        return buf;
    }
}

static int open_token(void)
{
    const char *module = getenv("KORTVAGT_PKCS11_MODULE"), *token = getenv("KORTVAGT_TOKEN"),
               *pin = getenv("KORTVAGT_PIN");
    CK_C_GetFunctionList get;
    CK_SLOT_ID slots[64];
    CK_ULONG n = 64;
    CK_TOKEN_INFO ti;
    void *dl;

    if (module == NULL || module[0] == '\0')
        module = "/usr/lib/softhsm/libsofthsm2.so";
    if (token == NULL || token[0] == '\0')
        token = "kortvagt";
    if (pin == NULL || (dl = dlopen(module, RTLD_NOW | RTLD_LOCAL)) == NULL)
        return -1;
    *(void **)(&get) = dlsym(dl, "C_GetFunctionList");
    if (get == NULL || get(&f) != CKR_OK || f->C_Initialize(NULL) != CKR_OK ||
        f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
        return -1;
    for (CK_ULONG i = 0; i < n; i++) {
        size_t l = strlen(token);
        if (f->C_GetTokenInfo(slots[i], &ti) != CKR_OK || l > sizeof(ti.label) ||
            memcmp(ti.label, token, l) != 0 || (l < sizeof(ti.label) && ti.label[l] != ' '))
            continue;
        if (f->C_OpenSession(slots[i], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s) !=
            CKR_OK)
            return -1;
        return f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)strlen(pin)) == CKR_OK ? 0
                                                                                              : -1;
    }
    return -1;
}

static int find(const char *label, CK_OBJECT_HANDLE *o)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                        {CKA_TOKEN, &yes, sizeof(yes)},
                        {CKA_LABEL, (void *)label, (CK_ULONG)strlen(label)}};
    CK_ULONG n = 0;
    if (f->C_FindObjectsInit(s, t, 3) != CKR_OK)
        return -1;
    f->C_FindObjects(s, o, 1, &n);
    f->C_FindObjectsFinal(s);
    return n == 1 ? 0 : -1;
}

int main(int argc, char **argv)
{
    CK_OBJECT_HANDLE o, d = CK_INVALID_HANDLE;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_RV rv;
    const char *op, *label;

    if (argc != 3) {
        fprintf(stderr, "usage: kv_p11_attack setattr|copy|encrypt|derive|info LABEL\n");
        return 2;
    }
    op = argv[1];
    label = argv[2];
    if (open_token() != 0) {
        fprintf(stderr, "kv_p11_attack: cannot open and log in to the token\n");
        return 3;
    }
    if (find(label, &o) != 0) {
        fprintf(stderr, "kv_p11_attack: no key '%s'\n", label);
        return 3;
    }
    if (strcmp(op, "setattr") == 0) {
        CK_ATTRIBUTE a = {CKA_DECRYPT, &yes, sizeof(yes)};
        rv = f->C_SetAttributeValue(s, o, &a, 1);
    } else if (strcmp(op, "copy") == 0) {
        CK_ATTRIBUTE a = {CKA_TOKEN, &no, sizeof(no)};
        rv = f->C_CopyObject(s, o, &a, 1, &d);
    } else if (strcmp(op, "encrypt") == 0) {
        CK_KEY_TYPE kt = 0;
        CK_ATTRIBUTE a = {CKA_KEY_TYPE, &kt, sizeof(kt)};
        CK_MECHANISM m = {CKM_DES3_ECB, NULL, 0};
        f->C_GetAttributeValue(s, o, &a, 1);
        if (kt == CKK_AES)
            m.mechanism = CKM_AES_ECB;
        rv = f->C_EncryptInit(s, &m, o);
    } else if (strcmp(op, "derive") == 0) {
        CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
        CK_KEY_TYPE kt = CKK_DES2;
        CK_BYTE data[16] = {0x99, 0x01, 0x23, 0x45, 0x67, 0x89, 0x01, 0x23,
                            0x66, 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0xFE, 0xDC};
        CK_KEY_DERIVATION_STRING_DATA p = {data, sizeof(data)};
        CK_MECHANISM m = {CKM_DES3_ECB_ENCRYPT_DATA, &p, sizeof(p)};
        CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                            {CKA_KEY_TYPE, &kt, sizeof(kt)},
                            {CKA_TOKEN, &no, sizeof(no)},
                            {CKA_SENSITIVE, &no, sizeof(no)},
                            {CKA_EXTRACTABLE, &yes, sizeof(yes)}};
        rv = f->C_DeriveKey(s, &m, o, t, 5, &d);
        if (rv == CKR_OK) {
            CK_BYTE v[64];
            CK_ATTRIBUTE a = {CKA_VALUE, v, sizeof(v)};
            CK_RV r2 = f->C_GetAttributeValue(s, d, &a, 1);
            memset(v, 0, sizeof(v));
            printf("%s %s: %s value=%s(%lu bytes)\n", op, label, rv_name(rv),
                   r2 == CKR_OK ? "readable" : rv_name(r2),
                   r2 == CKR_OK ? (unsigned long)a.ulValueLen : 0ul);
            return 0;
        }
    } else if (strcmp(op, "info") == 0) {
        CK_BYTE id[256];
        CK_BBOOL b[9] = {0};
        static const CK_ATTRIBUTE_TYPE at[9] = {CKA_MODIFIABLE, CKA_COPYABLE, CKA_ENCRYPT,
                                                CKA_DECRYPT,    CKA_SIGN,     CKA_WRAP,
                                                CKA_UNWRAP,     CKA_DERIVE,   CKA_EXTRACTABLE};
        static const char *const an[9] = {"modifiable", "copyable", "encrypt", "decrypt",    "sign",
                                          "wrap",       "unwrap",   "derive",  "extractable"};
        CK_ATTRIBUTE ia = {CKA_ID, id, sizeof(id)}, ta = {CKA_DERIVE_TEMPLATE, NULL, 0};
        printf("info %s:", label);
        if (f->C_GetAttributeValue(s, o, &ia, 1) == CKR_OK) {
            printf(" id=");
            for (CK_ULONG i = 0; i < ia.ulValueLen; i++)
                printf("%02x", id[i]);
        }
        for (int i = 0; i < 9; i++) {
            CK_ATTRIBUTE a = {at[i], &b[i], sizeof(CK_BBOOL)};
            CK_RV r2 = f->C_GetAttributeValue(s, o, &a, 1);
            printf(" %s=%s", an[i], r2 != CKR_OK ? "?" : b[i] ? "1" : "0");
        }
        rv = f->C_GetAttributeValue(s, o, &ta, 1);
        printf(" derive_template=%s\n", rv == CKR_OK ? "present" : rv_name(rv));
        return 0;
    } else {
        fprintf(stderr, "kv_p11_attack: unknown operation '%s'\n", op);
        return 2;
    }
    printf("%s %s: %s\n", op, label, rv_name(rv));
    return 0;
}

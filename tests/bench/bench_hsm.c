/*
 * bench_hsm: operations per second of the payment-crypto library calls
 * (hsm/cvv.h, hsm/pin.h, hsm/emv_crypto.h) on SoftHSM2, each next to a floor
 * measured in the same run: a bare loop of the same PKCS#11 calls on the same
 * key objects, made directly through the module's function list in a session
 * of its own. The ratio ours/floor is the library's efficiency (target >= 90%);
 * CVV verify also has an absolute target (>= 50,000/s in one process).
 *
 * Setup: the bench makes its own SoftHSM2 token in a temporary directory
 * (SOFTHSM2_CONF points there; the user's tokens are not touched), creates it
 * with kv_hsm_token_init and imports test keys with the key ceremony library
 * (kv_keys_import): a CVK, a PVK, a 3DES ZPK, an AES TPK and an IMK. It is
 * removed at the end unless --keep.
 *
 * Every measurement runs in forked worker processes (SoftHSM2 is not
 * fork-safe, so the parent never loads the module); each worker opens its own
 * session, checks that ours and the floor give the expected answer, waits for
 * the start signal, runs for the given time and reports its count. One and
 * two processes; ours and the floor alternate; best of --rounds.
 *
 * Usage: bench_hsm [--seconds S] [--rounds N] [--module PATH] [--keep]
 */
#include "hsm/cvv.h"
#include "hsm/emv_crypto.h"
#include "hsm/keys.h"
#include "hsm/mac.h"
#include "hsm/p11.h"
#include "hsm/p11_admin.h"
#include "hsm/pin.h"
#include "src/base/err.h"
#include "src/base/hex.h"

#include <p11-kit-1/p11-kit/pkcs11.h>

#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TOKEN "kvbench"
#define USER_PIN "1234"
#define SO_PIN "87654321"

static const char *g_module = KV_HSM_DEFAULT_MODULE;
static double g_seconds = 1.0;
static int g_rounds = 3;

/* ---- test data (tests/data/VECTORS.md) ---- */

static const char *const KEY_2DES = "0123456789ABCDEFFEDCBA9876543210";
static const char *const KEY_AES = "00112233445566778899AABBCCDDEEFF";
#define CVV_PAN "4123456789012345"
#define PVV_PAN "1122334455667788"
#define EMV_PAN "9901234567890123"
/* CVN 18 AC data: 9F02 9F03 9F1A 95 5F2A 9A 9C 9F37 82 9F36 and a 32-byte IAD (format 2) */
static const char *const AC_DATA = "000000010000"
                                   "000000000000"
                                   "0208"
                                   "0000000000"
                                   "0208"
                                   "240101"
                                   "00"
                                   "A1B2C3D4"
                                   "3900"
                                   "005E"
                                   "1F4A01A0000000001000000000000000"
                                   "00000000000000000000000000000000";

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what, int r)
{
    fprintf(stderr, "bench_hsm[%ld]: %s: %s\n", (long)getpid(), what,
            r ? kv_strerror(r) : "failed");
    _exit(3);
}

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    int n = kv_hex_decode(hex, out, cap);
    if (n < 0)
        die("bad built-in hex", n);
    return (size_t)n;
}

/* ---- provisioning (in a child) ---- */

static void import(kv_hsm *h, const char *label, kv_key_type t, kv_key_usage u, const char *hex)
{
    uint8_t key[32];
    size_t n = unhex(hex, key, sizeof(key));
    kv_keys_result res;
    char why[256] = "";
    int r = kv_keys_import(h, label, t, u, NULL, 0, key, n, NULL, 0, &res, why, sizeof(why));
    if (r != 0) {
        fprintf(stderr, "bench_hsm: import %s: %s\n", label, why);
        _exit(3);
    }
}

static void provision(void)
{
    kv_hsm_config cfg = {.module = g_module, .token = TOKEN};
    kv_hsm *h = NULL;
    kv_hsm_token_info info;
    int r;

    if ((r = kv_hsm_open_ex(&cfg, KV_HSM_OPEN_NO_TOKEN, &h)) != 0)
        die(kv_hsm_last_error(NULL), r);
    if ((r = kv_hsm_token_init(h, TOKEN, (const uint8_t *)SO_PIN, strlen(SO_PIN),
                               (const uint8_t *)USER_PIN, strlen(USER_PIN), &info)) != 0)
        die(kv_hsm_last_error(h), r);
    kv_hsm_close(h);
    if ((r = kv_hsm_open_pin(&cfg, (const uint8_t *)USER_PIN, strlen(USER_PIN), &h)) != 0)
        die(kv_hsm_last_error(NULL), r);
    import(h, "bench.cvk", KV_KEY_DES2, KV_USAGE_CVK, KEY_2DES);
    import(h, "bench.pvk", KV_KEY_DES2, KV_USAGE_PVK, KEY_2DES);
    import(h, "bench.zpk", KV_KEY_DES2, KV_USAGE_PIN, KEY_2DES);
    import(h, "bench.tpk", KV_KEY_AES128, KV_USAGE_PIN, KEY_AES);
    import(h, "bench.imk", KV_KEY_DES2, KV_USAGE_IMK, KEY_2DES);
    kv_hsm_close(h);
}

/* ---- one worker's state ---- */

struct worker {
    kv_hsm *h;
    kv_hsm_key cvk, pvk, zpk, tpk, imk;
    CK_FUNCTION_LIST_PTR f;
    CK_SESSION_HANDLE s; /* the floor's own session */
    uint8_t pinblock4[16];
    uint8_t ac_data[128];
    size_t ac_len;
    uint8_t arqc[8];
    kv_emv_params p;
    kv_emv_txn t;
    /* floor inputs, prepared outside the loop */
    uint8_t cvv_blk[16], pvv_pan4[16], mk_data[16], sk_data[16], sk_comp[16];
};

static void worker_open(struct worker *w)
{
    kv_hsm_config cfg = {.module = g_module, .token = TOKEN};
    kv_hsm_token_info info;
    CK_C_GetFunctionList get;
    void *dl;
    int r;

    memset(w, 0, sizeof(*w));
    if ((r = kv_hsm_open_pin(&cfg, (const uint8_t *)USER_PIN, strlen(USER_PIN), &w->h)) != 0)
        die(kv_hsm_last_error(NULL), r);
    if (kv_hsm_key_find(w->h, "bench.cvk", &w->cvk) ||
        kv_hsm_key_find(w->h, "bench.pvk", &w->pvk) ||
        kv_hsm_key_find(w->h, "bench.zpk", &w->zpk) ||
        kv_hsm_key_find(w->h, "bench.tpk", &w->tpk) || kv_hsm_key_find(w->h, "bench.imk", &w->imk))
        die(kv_hsm_last_error(w->h), KV_ERR_HSM_KEY);
    if ((r = kv_hsm_get_token_info(w->h, &info)) != 0)
        die("token info", r);
    /* the floor: the same module (already loaded and initialised), its own session */
    if ((dl = dlopen(kv_hsm_module_path(w->h), RTLD_NOW | RTLD_NOLOAD)) == NULL)
        die("dlopen of the loaded module", 0);
    {
        void *sym = dlsym(dl, "C_GetFunctionList");
        if (sym == NULL)
            die("C_GetFunctionList", 0);
        memcpy(&get, &sym, sizeof(get)); /* POSIX: a dlsym result converts to a function */
        if (get(&w->f) != CKR_OK)
            die("C_GetFunctionList", 0);
    }
    if (w->f->C_OpenSession((CK_SLOT_ID)info.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
                            &w->s) != CKR_OK)
        die("C_OpenSession for the floor", 0);

    /* inputs */
    if (kv_hsm_pinblock_encrypt(w->h, &w->tpk, KV_PINBLOCK_ISO4, "4524", 4, PVV_PAN, w->pinblock4,
                                &(size_t){0}) != 0)
        die("PIN block setup", KV_ERR_HSM);
    w->ac_len = unhex(AC_DATA, w->ac_data, sizeof(w->ac_data));
    kv_emv_params_for_cvn(18, &w->p);
    w->t.pan = EMV_PAN;
    w->t.psn = "45";
    w->t.atc[0] = 0x00;
    w->t.atc[1] = 0x5E;
    w->t.data = w->ac_data;
    w->t.data_len = w->ac_len;
    if ((r = kv_hsm_arqc_generate(w->h, &w->imk, &w->p, &w->t, w->arqc)) != 0)
        die(kv_hsm_last_error(w->h), r);

    kv_cvv_build_block(CVV_PAN, "8701", "101", w->cvv_blk);
    kv_pan_field_build(KV_PINBLOCK_ISO4, PVV_PAN, w->pvv_pan4);
    {
        uint8_t y[8], comp[16], r8[8];
        kv_emv_mk_input(w->p.mk_option, EMV_PAN, "45", y);
        kv_emv_mk_derivation_data(y, w->mk_data, comp);
        kv_emv_session_r(KV_EMV_SKD_CSK, w->t.atc, NULL, r8);
        kv_emv_csk_derivation_data(r8, w->sk_data, w->sk_comp);
    }
}

/* ---- ours ---- */

static int ours_cvv(struct worker *w)
{
    int m = 0;
    if (kv_hsm_cvv_verify(w->h, &w->cvk, CVV_PAN, "8701", "101", "561", &m) != 0)
        return -1;
    return m;
}

static int ours_pvv(struct worker *w)
{
    int m = 0;
    if (kv_hsm_pvv_verify_pinblock(w->h, &w->pvk, &w->tpk, KV_PINBLOCK_ISO4, w->pinblock4, 16,
                                   PVV_PAN, 1, "8523", &m) != 0)
        return -1;
    return m;
}

static int ours_translate(struct worker *w)
{
    uint8_t out[16];
    size_t n = 0;
    if (kv_hsm_pinblock_translate(w->h, &w->tpk, KV_PINBLOCK_ISO4, w->pinblock4, 16, PVV_PAN,
                                  &w->zpk, KV_PINBLOCK_ISO0, out, &n) != 0)
        return -1;
    return n == 8;
}

static int ours_arqc(struct worker *w)
{
    int m = 0;
    if (kv_hsm_arqc_verify(w->h, &w->imk, &w->p, &w->t, w->arqc, &m) != 0)
        return -1;
    return m;
}

/* ---- floor: the same PKCS#11 calls, bare ---- */

static CK_RV enc(struct worker *w, CK_MECHANISM_TYPE mt, void *iv, CK_OBJECT_HANDLE k,
                 const uint8_t *in, size_t len, uint8_t *out)
{
    CK_MECHANISM m = {mt, iv, iv ? 8 : 0};
    CK_ULONG ol = (CK_ULONG)len;
    CK_RV rv = w->f->C_EncryptInit(w->s, &m, k);
    if (rv == CKR_OK)
        rv = w->f->C_Encrypt(w->s, (CK_BYTE_PTR)in, (CK_ULONG)len, out, &ol);
    return rv;
}

static CK_RV dec(struct worker *w, CK_MECHANISM_TYPE mt, CK_OBJECT_HANDLE k, const uint8_t *in,
                 size_t len, uint8_t *out)
{
    CK_MECHANISM m = {mt, NULL, 0};
    CK_ULONG ol = (CK_ULONG)len;
    CK_RV rv = w->f->C_DecryptInit(w->s, &m, k);
    if (rv == CKR_OK)
        rv = w->f->C_Decrypt(w->s, (CK_BYTE_PTR)in, (CK_ULONG)len, out, &ol);
    return rv;
}

static int floor_cvv(struct worker *w)
{
    uint8_t t[8];
    char d[4];
    if (enc(w, CKM_DES3_ECB, NULL, w->cvk.companion, w->cvv_blk, 8, t) != CKR_OK)
        return -1;
    for (int i = 0; i < 8; i++)
        t[i] ^= w->cvv_blk[8 + i];
    if (enc(w, CKM_DES3_ECB, NULL, w->cvk.handle, t, 8, t) != CKR_OK)
        return -1;
    kv_decimalise_visa(t, 8, 3, d);
    return memcmp(d, "561", 3) == 0;
}

static int floor_pvv(struct worker *w)
{
    uint8_t a[16], b[16], tsp[8], e[8];
    char pin[13], pvv[5];
    size_t pl = 0;
    if (dec(w, CKM_AES_ECB, w->tpk.handle, w->pinblock4, 16, a) != CKR_OK)
        return -1;
    for (int i = 0; i < 16; i++)
        a[i] ^= w->pvv_pan4[i];
    if (dec(w, CKM_AES_ECB, w->tpk.handle, a, 16, b) != CKR_OK)
        return -1;
    if (kv_pin_field_parse(KV_PINBLOCK_ISO4, b, pin, &pl) != 0)
        return 0;
    kv_pvv_tsp(PVV_PAN, 1, pin, pl, tsp);
    if (enc(w, CKM_DES3_ECB, NULL, w->pvk.handle, tsp, 8, e) != CKR_OK)
        return -1;
    kv_decimalise_visa(e, 8, 4, pvv);
    return memcmp(pvv, "8523", 4) == 0;
}

static int floor_translate(struct worker *w)
{
    uint8_t a[16], b[16], blk[8];
    char pin[13];
    size_t pl = 0;
    if (dec(w, CKM_AES_ECB, w->tpk.handle, w->pinblock4, 16, a) != CKR_OK)
        return -1;
    for (int i = 0; i < 16; i++)
        a[i] ^= w->pvv_pan4[i];
    if (dec(w, CKM_AES_ECB, w->tpk.handle, a, 16, b) != CKR_OK)
        return -1;
    if (kv_pin_field_parse(KV_PINBLOCK_ISO4, b, pin, &pl) != 0)
        return 0;
    kv_pinblock_clear_build(KV_PINBLOCK_ISO0, pin, pl, PVV_PAN, NULL, blk);
    return enc(w, CKM_DES3_ECB, NULL, w->zpk.handle, blk, 8, blk) == CKR_OK ? 1 : -1;
}

static CK_RV derive(struct worker *w, CK_OBJECT_HANDLE parent, const uint8_t data[16],
                    CK_OBJECT_HANDLE *out)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_DES2;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_KEY_DERIVATION_STRING_DATA p = {(CK_BYTE_PTR)data, 16};
    CK_MECHANISM m = {CKM_DES3_ECB_ENCRYPT_DATA, &p, sizeof(p)};
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},     {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_TOKEN, &no, sizeof(no)},       {CKA_SENSITIVE, &yes, sizeof(yes)},
        {CKA_EXTRACTABLE, &no, sizeof(no)}, {CKA_ENCRYPT, &yes, sizeof(yes)},
        {CKA_DECRYPT, &yes, sizeof(yes)},   {CKA_DERIVE, &yes, sizeof(yes)},
    };
    return w->f->C_DeriveKey(w->s, &m, parent, t, sizeof(t) / sizeof(t[0]), out);
}

static int floor_arqc(struct worker *w)
{
    CK_OBJECT_HANDLE mk = 0, sk = 0, skaa = 0;
    uint8_t buf[136], ct[136], last[8], iv[8] = {0};
    size_t n = kv_mac_padded_len(KV_MAC_PAD2, w->ac_len);
    int ok = -1;

    kv_mac_pad(KV_MAC_PAD2, w->ac_data, w->ac_len, buf, sizeof(buf));
    if (derive(w, w->imk.handle, w->mk_data, &mk) != CKR_OK ||
        derive(w, mk, w->sk_data, &sk) != CKR_OK || derive(w, mk, w->sk_comp, &skaa) != CKR_OK)
        goto out;
    if (enc(w, CKM_DES3_CBC, iv, skaa, buf, n - 8, ct) != CKR_OK)
        goto out;
    for (int i = 0; i < 8; i++)
        last[i] = ct[n - 16 + i] ^ buf[n - 8 + i];
    if (enc(w, CKM_DES3_ECB, NULL, sk, last, 8, last) != CKR_OK)
        goto out;
    ok = memcmp(last, w->arqc, 8) == 0;
out:
    if (sk)
        w->f->C_DestroyObject(w->s, sk);
    if (skaa)
        w->f->C_DestroyObject(w->s, skaa);
    if (mk)
        w->f->C_DestroyObject(w->s, mk);
    return ok;
}

typedef int (*op_fn)(struct worker *);

struct op {
    const char *name;
    const char *calls; /* the PKCS#11 calls of one operation */
    op_fn ours, floor;
};

static const struct op ops[] = {
    {"CVV verify", "2x (C_EncryptInit + C_Encrypt), DES3-ECB", ours_cvv, floor_cvv},
    {"PVV verify from PIN block (fmt 4)",
     "2x (C_DecryptInit + C_Decrypt) AES-ECB, 1x (C_EncryptInit + C_Encrypt) DES3-ECB", ours_pvv,
     floor_pvv},
    {"PIN block translate (fmt 4 -> 0)",
     "2x (C_DecryptInit + C_Decrypt) AES-ECB, 1x (C_EncryptInit + C_Encrypt) DES3-ECB",
     ours_translate, floor_translate},
    {"ARQC verify (CVN 18)",
     "3x C_DeriveKey, 1x CBC + 1x ECB (C_EncryptInit + C_Encrypt), 3x C_DestroyObject", ours_arqc,
     floor_arqc},
};

/* ---- workers ---- */

static void worker_main(const struct op *op, int use_floor, int ready_fd, int start_fd,
                        int result_fd)
{
    struct worker w;
    op_fn fn = use_floor ? op->floor : op->ours;
    unsigned long long n = 0;
    double t0, t;
    char c;

    worker_open(&w);
    /* both implementations must agree with the expected answer before timing */
    if (op->ours(&w) != 1 || op->floor(&w) != 1) {
        fprintf(stderr, "bench_hsm: %s: self-check failed (ours %d, floor %d)\n", op->name,
                op->ours(&w), op->floor(&w));
        _exit(4);
    }
    for (int i = 0; i < 200; i++)
        fn(&w);
    if (write(ready_fd, "r", 1) != 1 || read(start_fd, &c, 1) != 1)
        _exit(5);
    t0 = now();
    do {
        for (int i = 0; i < 64; i++)
            if (fn(&w) != 1)
                _exit(6);
        n += 64;
        t = now();
    } while (t - t0 < g_seconds);
    {
        double rate = (double)n / (t - t0);
        if (write(result_fd, &rate, sizeof(rate)) != (ssize_t)sizeof(rate))
            _exit(7);
    }
    w.f->C_CloseSession(w.s);
    kv_hsm_close(w.h);
    _exit(0);
}

/*
 * Run nproc workers of op at once; returns the summed rate, or -1. Workers
 * start one after the other (SoftHSM2's file store does not like processes
 * loading a token while another writes it), then run together.
 */
static double run(const struct op *op, int use_floor, int nproc)
{
    int start[2], result[2];
    pid_t pids[8];
    double sum = 0;
    int ok = 1, forked = 0;

    if (pipe(start) || pipe(result))
        die("pipe", 0);
    for (int i = 0; i < nproc && ok; i++) {
        int ready[2];
        char c;
        pid_t p;

        if (pipe(ready))
            die("pipe", 0);
        if ((p = fork()) < 0)
            die("fork", 0);
        if (p == 0) {
            close(ready[0]);
            close(start[1]);
            close(result[0]);
            worker_main(op, use_floor, ready[1], start[0], result[1]);
        }
        pids[forked++] = p;
        close(ready[1]);
        if (read(ready[0], &c, 1) != 1)
            ok = 0;
        close(ready[0]);
    }
    close(start[0]);
    close(result[1]);
    for (int i = 0; i < forked && ok; i++)
        if (write(start[1], "g", 1) != 1)
            ok = 0;
    if (!ok)
        for (int i = 0; i < forked; i++)
            kill(pids[i], SIGKILL);
    for (int i = 0; i < forked && ok; i++) {
        double r;
        if (read(result[0], &r, sizeof(r)) != (ssize_t)sizeof(r))
            ok = 0;
        else
            sum += r;
    }
    for (int i = 0; i < forked; i++) {
        int st = 0;
        waitpid(pids[i], &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            ok = 0;
    }
    close(start[1]);
    close(result[0]);
    return ok ? sum : -1;
}

static char g_dir[] = "/tmp/kvbench.XXXXXX";

int main(int argc, char **argv)
{
    int keep = 0, fails = 0;
    char path[256];
    FILE *f;
    pid_t p;
    int st = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            g_seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            g_rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--module") == 0 && i + 1 < argc)
            g_module = argv[++i];
        else if (strcmp(argv[i], "--keep") == 0)
            keep = 1;
        else {
            fprintf(stderr, "Usage: bench_hsm [--seconds S] [--rounds N] [--module PATH] "
                            "[--keep]\n");
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    if (g_seconds <= 0 || g_rounds < 1)
        return 2;

    /* a private SoftHSM2 token directory */
    if (mkdtemp(g_dir) == NULL)
        die("mkdtemp", 0);
    snprintf(path, sizeof(path), "%s/tokens", g_dir);
    if (mkdir(path, 0700) != 0)
        die("mkdir", 0);
    snprintf(path, sizeof(path), "%s/softhsm2.conf", g_dir);
    if ((f = fopen(path, "w")) == NULL)
        die("softhsm2.conf", 0);
    fprintf(f,
            "directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n"
            "slots.removable = false\n",
            g_dir);
    fclose(f);
    setenv("SOFTHSM2_CONF", path, 1);
    setenv("KORTVAGT_PIN", USER_PIN, 1);
    unsetenv("KORTVAGT_PIN_FILE");

    if ((p = fork()) == 0) {
        provision();
        _exit(0);
    }
    waitpid(p, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "bench_hsm: provisioning the token failed\n");
        return 3;
    }

    printf(
        "kortvagt HSM benchmark\n"
        "  module: %s, token '%s' in %s (temporary; keys imported with kv_keys_import)\n"
        "  ours:  the library call (hsm/cvv.h, hsm/pin.h, hsm/emv_crypto.h) in a loop\n"
        "  floor: the same PKCS#11 calls on the same key objects (token objects), made\n"
        "         directly through the module's function list in a session of its own\n"
        "  %.1f s per run, best of %d rounds, ours and floor alternating; 2 processes = fork\n\n",
        g_module, TOKEN, g_dir, g_seconds, g_rounds);
    printf("%-36s %5s %11s %11s %7s\n", "operation", "procs", "ours/s", "floor/s", "ratio");
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        for (int nproc = 1; nproc <= 2; nproc++) {
            double best_ours = 0, best_floor = 0;
            for (int r = 0; r < g_rounds; r++) {
                double o = run(&ops[i], 0, nproc), fl = run(&ops[i], 1, nproc);
                if (o < 0 || fl < 0) {
                    fprintf(stderr, "bench_hsm: %s: a worker failed\n", ops[i].name);
                    return 4;
                }
                if (o > best_ours)
                    best_ours = o;
                if (fl > best_floor)
                    best_floor = fl;
            }
            printf("%-36s %5d %11.0f %11.0f %6.1f%%\n", ops[i].name, nproc, best_ours, best_floor,
                   100.0 * best_ours / best_floor);
            if (best_ours < 0.9 * best_floor)
                fails++;
            if (i == 0 && nproc == 1 && best_ours < 50000)
                fails++;
        }
    }
    printf("\nPKCS#11 calls per operation:\n");
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        printf("  %-36s %s\n", ops[i].name, ops[i].calls);
    printf("\ntargets: ours >= 90%% of the floor; CVV verify >= 50000/s in one process: %s\n",
           fails ? "NOT MET" : "met");

    if (!keep) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "bench_hsm: could not remove %s\n", g_dir);
    } else {
        printf("token kept: SOFTHSM2_CONF=%s/softhsm2.conf\n", g_dir);
    }
    return fails ? 1 : 0;
}

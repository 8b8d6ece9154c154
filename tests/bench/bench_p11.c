/*
 * PKCS#11 hot-path figures: single-block 3DES-ECB under a found key and its
 * A||A companion (the two token calls of one CVV), HMAC-SHA256 and a
 * derive+destroy pair, per second in one process.
 *
 *   bench_p11 DES2_LABEL [HMAC_LABEL] [SECONDS] [IMK_LABEL]
 *
 * Takes the HSM settings from the environment (KORTVAGT_PKCS11_MODULE,
 * KORTVAGT_TOKEN, KORTVAGT_PIN). The DES2 key needs an A||A companion (kortvagt key import
 * --usage cvk); the derive figure needs CKA_DERIVE: the IMK_LABEL key (--usage imk; since
 * issue 11 an IMK only derives and a CVK does not derive), else the DES2 key if it can.
 * Also: kv_hsm_key_find of the same name again (cached for KV_HSM_KEY_STALE_SECONDS).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hsm/p11.h"
#include "hsm/p11_admin.h"
#include "src/base/err.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    kv_hsm *h = NULL;
    kv_hsm_key k, m, dk;
    uint8_t b[8] = {0}, out[32];
    double secs = argc > 3 ? atof(argv[3]) : 2.0, t0, t;
    long n;
    int r;
    kv_hsm_config cfg = {.module = getenv("KORTVAGT_PKCS11_MODULE"),
                         .token = getenv("KORTVAGT_TOKEN")};
    const char *pin = getenv("KORTVAGT_PIN");

    if (argc < 2) {
        fprintf(stderr, "usage: bench_p11 DES2_LABEL [HMAC_LABEL] [SECONDS] [IMK_LABEL]\n");
        return 2;
    }
    if (pin == NULL) {
        fprintf(stderr, "bench_p11: set KORTVAGT_PIN\n");
        return 2;
    }
    if ((r = kv_hsm_open_pin(&cfg, (const uint8_t *)pin, strlen(pin), &h)) != 0) {
        fprintf(stderr, "bench_p11: %s\n", kv_hsm_last_error(NULL));
        return 5;
    }
    if ((r = kv_hsm_key_find(h, argv[1], &k)) != 0) {
        fprintf(stderr, "bench_p11: %s\n", kv_hsm_last_error(h));
        return 5;
    }
    for (n = 0, t0 = now(); (t = now() - t0) < secs; n++)
        if (kv_hsm_ecb_encrypt(h, &k, 0, b, 8, b) != 0)
            goto fail;
    printf("3DES-ECB 1 block (A||B):          %9.0f /s\n", (double)n / t);
    if (k.companion != 0) {
        for (n = 0, t0 = now(); (t = now() - t0) < secs; n++)
            if (kv_hsm_ecb_encrypt(h, &k, 1, b, 8, b) != 0 || kv_hsm_ecb_encrypt(h, &k, 0, b, 8, b))
                goto fail;
        printf("CVV core (A||A then A||B):        %9.0f /s\n", (double)n / t);
    }
    for (n = 0, t0 = now(); (t = now() - t0) < secs; n++)
        if (kv_hsm_key_find(h, argv[1], &m) != 0)
            goto fail;
    printf("key find (same name again):       %9.0f /s\n", (double)n / t);
    dk = k;
    if (argc > 4 && kv_hsm_key_find(h, argv[4], &dk) != 0)
        goto fail;
    if (kv_hsm_derive_des2(h, &dk, (const uint8_t *)"0123456789ABCDEF", NULL, &m) == 0) {
        kv_hsm_key_destroy(h, &m);
        for (n = 0, t0 = now(); (t = now() - t0) < secs; n++) {
            if (kv_hsm_derive_des2(h, &dk, (const uint8_t *)"0123456789ABCDEF",
                                   (const uint8_t *)"01234567012345670", &m) != 0)
                goto fail;
            kv_hsm_key_destroy(h, &m);
        }
        printf("derive DES2 + companion, destroy: %9.0f /s\n", (double)n / t);
    }
    if (argc > 2) {
        kv_hsm_key hk;
        if (kv_hsm_key_find(h, argv[2], &hk) != 0) {
            fprintf(stderr, "bench_p11: %s\n", kv_hsm_last_error(h));
            return 5;
        }
        for (n = 0, t0 = now(); (t = now() - t0) < secs; n++)
            if (kv_hsm_hmac_sha256(h, &hk, (const uint8_t *)"4123456789012345", 16, out) != 0)
                goto fail;
        printf("HMAC-SHA256 16 bytes:             %9.0f /s\n", (double)n / t);
    }
    kv_hsm_close(h);
    return 0;
fail:
    fprintf(stderr, "bench_p11: %s\n", kv_hsm_last_error(h));
    kv_hsm_close(h);
    return 5;
}

/*
 * libFuzzer target for the virtual card's profile loader (apdu/vcard/): any
 * JSON text either loads or is refused with a reason, never a crash. A
 * profile that loads is put through a short terminal session (selection,
 * GPO, records, GET DATA, VERIFY) so that what the loader accepted is also
 * safe to serve. Recorded trace cards ("exchanges") load from a path, so
 * those inputs go through an in-memory file.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "apdu/vcard/vcard.h"
#include "src/base/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const session[] = {
    "00A404000E315041592E5359532E444446303100", /* SELECT PSE */
    "00B2010C00",                               /* READ RECORD 1, SFI 1 */
    "00A404000E325041592E5359532E444446303100", /* SELECT PPSE */
    "00A4040007A000000003101000",               /* SELECT Visa */
    "00A4040007A000000004101000",               /* SELECT Mastercard */
    "80A8000002830000",                         /* GPO, empty PDOL data */
    "00B2010C00",
    "00B2011400",
    "00B2021400", /* records */
    "80CA9F1700",
    "80CA9F3600",                 /* GET DATA */
    "0020008008241234FFFFFFFFFF", /* VERIFY plaintext */
    "0084000008",                 /* GET CHALLENGE */
};

static void serve(kv_vcard *vc)
{
    uint8_t c[300], out[KV_VCARD_RAPDU_MAX];
    size_t outlen;
    kv_vcard_power_on(vc);
    for (size_t i = 0; i < sizeof(session) / sizeof(session[0]); i++) {
        size_t n = strlen(session[i]) / 2;
        for (size_t k = 0; k < n; k++)
            sscanf(session[i] + 2 * k, "%2hhx", &c[k]);
        int r = kv_vcard_process(vc, c, n, out, sizeof(out), &outlen);
        if (r == KV_ERR_PCSC_REMOVED && outlen == 0) /* a "tear" fault: the card went away */
            continue;
        if (r != 0 || outlen < 2 || outlen > sizeof(out))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kv_vcard *vc = NULL;
    char why[256] = "";
    int r;

    kv_vcard_set_fault_delay_max(0); /* a "delay_ms" fault must not stall the fuzzer */
    if (memmem(data, size, "exchanges", 9) != NULL) {
        char path[64];
        int fd = memfd_create("fuzz-card", MFD_CLOEXEC);
        if (fd < 0 || write(fd, data, size) != (ssize_t)size)
            abort();
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        r = kv_vcard_load(path, &vc, why, sizeof(why));
        close(fd);
    } else {
        r = kv_vcard_load_text((const char *)data, size, &vc, why, sizeof(why));
    }
    if (r != 0) {
        if (vc != NULL)
            abort();
        return 0;
    }
    serve(vc);
    kv_vcard_free(vc);
    return 0;
}

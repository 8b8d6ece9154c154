/*
 * vpcd frames into the virtual card: the input's first byte picks a sample
 * profile (bits 2-3) and the quirks (bits 0-1); the rest is the byte stream
 * pcscd's vpcd driver would send, parsed frame by frame and answered by the
 * card state machine, as kv_vpcd_serve does with its socket buffer.
 */
#include "apdu/vcard/vcard.h"
#include "apdu/vcard/vpcd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static kv_vcard *load(unsigned which)
{
    static const char *const names[] = {"visa_contact_pse.json", "mc_contactless_ppse.json",
                                        "dankort_visa_cobadge.json"};
    char path[4096];
    const char *dir = getenv("KV_TEST_DATA");
    kv_vcard *vc = NULL;

    if (dir != NULL) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[which % 3]);
    } else {
        /* tests/fuzz/fuzz_vpcd_frame.c -> tests/data */
        snprintf(path, sizeof(path), "%s", __FILE__);
        *strrchr(path, '/') = '\0';
        snprintf(path + strlen(path), sizeof(path) - strlen(path), "/../data/%s", names[which % 3]);
    }
    if (kv_vcard_new(path, &vc) != 0) {
        fprintf(stderr, "fuzz_vpcd_frame: cannot load %s\n", path);
        abort();
    }
    return vc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t reply[KV_VPCD_REPLY_MAX];
    kv_vpcd_frame f;
    kv_cursor c;
    kv_vcard *vc;
    size_t n;

    if (size < 1)
        return 0;
    vc = load(data[0] >> 2 & 3);
    kv_vcard_set_quirks(vc, data[0] & 3);
    kv_cursor_init(&c, data + 1, size - 1);
    while (kv_vpcd_frame_parse(&c, &f) == 1) {
        if (kv_vpcd_frame_handle(vc, &f, reply, sizeof(reply), &n) != 0)
            abort(); /* the buffer is large enough: any failure is a bug */
        if (n > sizeof(reply) || (n > 0 && (size_t)(reply[0] << 8 | reply[1]) + 2 != n))
            abort();
    }
    kv_vcard_free(vc);
    return 0;
}

/*
 * libFuzzer target for `kortvagt perso check` (src/perso/perso_check.c): any
 * JSON text is either refused with a reason or checked -- its records ("hex"
 * or "tags"), their data objects (57, 5A, 5F24, 5F25, 5F30, 9F14, ...), the
 * consistency findings and the certificate recovery -- never a crash. No CA
 * key store: the certificates are "not checked" once the layout is there.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "src/perso/perso_profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t e;
    json_t *j = json_loadb((const char *)data, size, 0, &e);
    kv_perso_check_result res;
    char why[128];
    if (j == NULL)
        return 0;
    (void)kv_perso_profile_check(j, NULL, 260101, &res, why, sizeof(why));
    json_decref(j);
    return 0;
}

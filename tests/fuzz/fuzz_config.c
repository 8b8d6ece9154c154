/*
 * libFuzzer target for the INI configuration (src/config): any file either
 * loads or is refused with a message, never a crash; the limits of a loaded
 * file are never negative (the loader refuses negative amounts and counts).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "src/base/err.h"
#include "src/config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kv_config *c = NULL;
    char path[64], err[512] = "";
    int fd = memfd_create("fuzz-config", MFD_CLOEXEC), r;

    if (fd < 0 || write(fd, data, size) != (ssize_t)size)
        abort();
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    r = kv_config_load(path, &c, err, sizeof(err));
    close(fd);
    if (r != 0) {
        if (c != NULL || err[0] == '\0')
            abort();
        return 0;
    }
    {
        const kv_limits_config *l = kv_config_limits(c);
        if (l == NULL || l->atm_daily_max < 0 || l->gambling_daily_max < 0 ||
            l->contactless.single_max < 0 || l->remote.single_max < 0 ||
            l->contactless.count_max < 0 || l->remote.cumulative_max < 0)
            abort();
    }
    (void)kv_config_get(c, "daemon", "listen");
    (void)kv_config_store_url(c);
    kv_config_free(c);
    return 0;
}

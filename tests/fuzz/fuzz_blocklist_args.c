/*
 * libFuzzer target for the block list's argument parsers (blocklist.h):
 * kv_bl_expiry_parse, kv_bl_expiry_end, kv_bl_time_parse and
 * kv_bl_reason_parse. Any input must parse or be refused without a crash;
 * an accepted expiry has a month 01..12 and ends after its month began; an
 * accepted reason names itself back. A broken invariant aborts.
 *
 * The input is split at newlines; each line is tried as every kind.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/base/err.h"
#include "src/blocklist/blocklist.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_blocklist_args: invariant failed: %s (line %d)\n", #cond,        \
                    __LINE__);                                                                     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void one(const char *s)
{
    int yymm = -1;
    int64_t t = 0, end = 0;
    kv_bl_reason reason;

    if (kv_bl_expiry_parse(s, &yymm) == 0) {
        CHECK(strlen(s) == 4);
        CHECK(yymm >= 1 && yymm <= 9912 && yymm % 100 >= 1 && yymm % 100 <= 12);
        CHECK(kv_bl_expiry_end(yymm, &end) == 0);
        /* the month ends 28..31 days after it began: later than 2000-01-28 */
        CHECK(end > 949000000);
    }
    if (kv_bl_time_parse(s, &t) == 0)
        CHECK(t >= -2 * 86400); /* 1970 onwards, less a time-zone offset */
    if (kv_bl_reason_parse(s, &reason) == 0)
        CHECK(strcmp(kv_bl_reason_name(reason), s) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    char *line, *save = NULL;
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    one(buf);
    for (line = strtok_r(buf, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save))
        one(line);
    free(buf);
    return 0;
}

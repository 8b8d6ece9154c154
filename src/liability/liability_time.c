/*
 * see liability.h: the liability engine's times are those of the base
 * layer's calendar (src/base/caltime.h, in milliseconds); these names keep
 * the liability API.
 */
#include "src/liability/liability.h"

#include "src/base/caltime.h"

int kv_liability_time_parse(const char *s, int64_t *ms)
{
    return kv_time_parse_ms(s, ms);
}

void kv_liability_time_format(int64_t ms, char out[32])
{
    kv_time_format_ms(ms, out);
}

int64_t kv_liability_add_months(int64_t ms, int months)
{
    return kv_time_add_months_ms(ms, months);
}

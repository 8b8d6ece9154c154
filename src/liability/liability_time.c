/* see liability.h: RFC 3339 times and calendar arithmetic in UTC */
#include "src/liability/liability.h"

#include "src/base/cursor.h"
#include "src/base/err.h"

#include <stdio.h>
#include <string.h>

#define MS_PER_DAY 86400000LL

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b) != 0 && ((a < 0) != (b < 0)))
        q--;
    return q;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (the civil-days formula, era of 400 years).
 */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;
    y -= m <= 2;
    era = floor_div(y, 400);
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    int64_t era, doe, yoe, doy, mp;
    z += 719468;
    era = floor_div(z, 146097);
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Read exactly n decimal digits. */
static int read_digits(kv_cursor *c, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        uint8_t ch;
        if (kv_cursor_u8(c, &ch) != 0 || ch < '0' || ch > '9')
            return KV_ERR_FORMAT;
        v = v * 10 + (ch - '0');
    }
    *out = v;
    return 0;
}

static int expect(kv_cursor *c, char a, char b)
{
    uint8_t ch;
    if (kv_cursor_u8(c, &ch) != 0 || (ch != (uint8_t)a && ch != (uint8_t)b))
        return KV_ERR_FORMAT;
    return 0;
}

/* see liability.h */
int kv_liability_time_parse(const char *s, int64_t *ms)
{
    kv_cursor c;
    int y, mo, d, h, mi, sec, frac_ms = 0, off_min = 0;
    uint8_t ch;
    int64_t t;

    if (s == NULL || ms == NULL)
        return KV_ERR_FORMAT;
    kv_cursor_init(&c, (const uint8_t *)s, strlen(s));
    if (read_digits(&c, 4, &y) != 0 || expect(&c, '-', '-') != 0 || read_digits(&c, 2, &mo) != 0 ||
        expect(&c, '-', '-') != 0 || read_digits(&c, 2, &d) != 0 || expect(&c, 'T', 't') != 0 ||
        read_digits(&c, 2, &h) != 0 || expect(&c, ':', ':') != 0 || read_digits(&c, 2, &mi) != 0 ||
        expect(&c, ':', ':') != 0 || read_digits(&c, 2, &sec) != 0)
        return KV_ERR_FORMAT;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59)
        return KV_ERR_FORMAT;
    if (kv_cursor_u8(&c, &ch) != 0)
        return KV_ERR_FORMAT;
    if (ch == '.') {
        /* Fraction: keep milliseconds, accept up to 9 digits. */
        int n = 0;
        for (;;) {
            if (kv_cursor_peek(&c, &ch) != 0)
                return KV_ERR_FORMAT;
            if (ch < '0' || ch > '9')
                break;
            (void)kv_cursor_u8(&c, &ch);
            if (n < 3)
                frac_ms = frac_ms * 10 + (ch - '0');
            if (++n > 9)
                return KV_ERR_FORMAT;
        }
        if (n == 0)
            return KV_ERR_FORMAT;
        for (int i = n; i < 3; i++)
            frac_ms *= 10;
        (void)kv_cursor_u8(&c, &ch);
    }
    if (ch == '+' || ch == '-') {
        int oh, om;
        int sign = ch == '-' ? -1 : 1;
        if (read_digits(&c, 2, &oh) != 0 || expect(&c, ':', ':') != 0 ||
            read_digits(&c, 2, &om) != 0 || oh > 23 || om > 59)
            return KV_ERR_FORMAT;
        off_min = sign * (oh * 60 + om);
    } else if (ch != 'Z' && ch != 'z') {
        return KV_ERR_FORMAT;
    }
    if (kv_cursor_left(&c) != 0)
        return KV_ERR_FORMAT;
    t = days_from_civil(y, mo, d) * MS_PER_DAY + ((int64_t)h * 3600 + mi * 60 + sec) * 1000 +
        frac_ms;
    *ms = t - (int64_t)off_min * 60000;
    return 0;
}

/* see liability.h */
void kv_liability_time_format(int64_t ms, char out[32])
{
    int64_t days = floor_div(ms, MS_PER_DAY);
    int64_t in_day = ms - days * MS_PER_DAY;
    int64_t y;
    int m, d;
    int secs = (int)(in_day / 1000);
    civil_from_days(days, &y, &m, &d);
    snprintf(out, 32, "%04lld-%02d-%02dT%02d:%02d:%02dZ", (long long)y, m, d, secs / 3600,
             (secs / 60) % 60, secs % 60);
}

/* see liability.h */
int64_t kv_liability_add_months(int64_t ms, int months)
{
    int64_t days = floor_div(ms, MS_PER_DAY);
    int64_t in_day = ms - days * MS_PER_DAY;
    int64_t y, idx;
    int m, d, dim;
    civil_from_days(days, &y, &m, &d);
    idx = y * 12 + (m - 1) + months;
    y = floor_div(idx, 12);
    m = (int)(idx - y * 12) + 1;
    dim = days_in_month(y, m);
    if (d > dim)
        d = dim; /* "a day past the month's end is clamped to its last day" (RULES.md §2) */
    return days_from_civil(y, m, d) * MS_PER_DAY + in_day;
}

/* see caltime.h */
#include "src/base/caltime.h"
#include "src/base/err.h"

#include <stdio.h>
#include <string.h>

/* H. Hinnant's civil-date algorithms (public domain description). */
int64_t kv_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void kv_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int days_in_month(int64_t y, unsigned m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 ? 28 + leap : dim[m - 1];
}

/* Reads exactly n decimal digits at *p. */
static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return KV_ERR_FORMAT;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int expect(const char **p, char a, char b)
{
    if (**p != a && **p != b)
        return KV_ERR_FORMAT;
    (*p)++;
    return 0;
}

int kv_time_parse(const char *s, int64_t *out)
{
    int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
    const char *p = s;
    if (s == NULL)
        return KV_ERR_FORMAT;
    if (digits(&p, 4, &y) || expect(&p, '-', '-') || digits(&p, 2, &mo) || expect(&p, '-', '-') ||
        digits(&p, 2, &d) || expect(&p, 'T', 't') || digits(&p, 2, &h) || expect(&p, ':', ':') ||
        digits(&p, 2, &mi) || expect(&p, ':', ':') || digits(&p, 2, &sec))
        return KV_ERR_FORMAT;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return KV_ERR_FORMAT;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p == '+' ? 1 : -1;
        p++;
        if (digits(&p, 2, &oh) || expect(&p, ':', ':') || digits(&p, 2, &om))
            return KV_ERR_FORMAT;
        if (oh > 23 || om > 59)
            return KV_ERR_FORMAT;
    } else {
        return KV_ERR_FORMAT;
    }
    if (*p != '\0')
        return KV_ERR_FORMAT;
    /* RFC 3339 allows second 60 (leap second); it is folded into the next second. */
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, (unsigned)mo) || h > 23 ||
        mi > 59 || sec > 60)
        return KV_ERR_FORMAT;
    int64_t t = kv_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec;
    t -= (int64_t)sign * (oh * 3600 + om * 60);
    if (t < 0)
        return KV_ERR_FORMAT;
    *out = t;
    return 0;
}

/* Write v (0 <= v < 10^n) as n digits. */
static void put_digits(char *out, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

static void put_date(char *out, int64_t y, unsigned m, unsigned d)
{
    put_digits(out, (unsigned)(y < 0 ? 0 : y % 10000), 4);
    out[4] = '-';
    put_digits(out + 5, m, 2);
    out[7] = '-';
    put_digits(out + 8, d, 2);
}

void kv_time_format(int64_t t, char out[KV_TIME_TEXT])
{
    int64_t days = t / 86400, rem = t % 86400, y;
    unsigned m, d;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    kv_civil_from_days(days, &y, &m, &d);
    put_date(out, y, m, d);
    out[10] = 'T';
    put_digits(out + 11, (unsigned)(rem / 3600), 2);
    out[13] = ':';
    put_digits(out + 14, (unsigned)(rem / 60 % 60), 2);
    out[16] = ':';
    put_digits(out + 17, (unsigned)(rem % 60), 2);
    out[19] = 'Z';
    out[20] = '\0';
}

/* 01:00 UTC on the last Sunday of month m of year y. */
static int64_t last_sunday_0100(int64_t y, unsigned m)
{
    int64_t last = kv_days_from_civil(y, m, (unsigned)days_in_month(y, m));
    /* 1970-01-01 was a Thursday: weekday (0 = Sunday) = (days + 4) mod 7 */
    int64_t wd = ((last + 4) % 7 + 7) % 7;
    return (last - wd) * 86400 + 3600;
}

int kv_time_cph_offset(int64_t t)
{
    int64_t days = t / 86400, y;
    unsigned m, d;
    if (t % 86400 < 0)
        days--;
    kv_civil_from_days(days, &y, &m, &d);
    /* Directive 2000/84/EC Art. 2 and 3 */
    if (t >= last_sunday_0100(y, 3) && t < last_sunday_0100(y, 10))
        return 7200;
    return 3600;
}

void kv_time_cph_date(int64_t t, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t local = t + kv_time_cph_offset(t);
    int64_t days = local / 86400;
    if (local % 86400 < 0)
        days--;
    kv_civil_from_days(days, y, m, d);
}

void kv_time_cph_day(int64_t t, char out[KV_DAY_TEXT])
{
    int64_t y;
    unsigned m, d;
    kv_time_cph_date(t, &y, &m, &d);
    put_date(out, y, m, d);
    out[10] = '\0';
}

int kv_card_expired(const char *expiry, int64_t t)
{
    int64_t y;
    unsigned m, d;
    if (expiry == NULL || strlen(expiry) != 4)
        return KV_ERR_FORMAT;
    for (int i = 0; i < 4; i++)
        if (expiry[i] < '0' || expiry[i] > '9')
            return KV_ERR_FORMAT;
    int ey = 2000 + (expiry[0] - '0') * 10 + (expiry[1] - '0');
    int em = (expiry[2] - '0') * 10 + (expiry[3] - '0');
    if (em < 1 || em > 12)
        return KV_ERR_FORMAT;
    kv_time_cph_date(t, &y, &m, &d);
    return (y * 12 + (int64_t)m) > ((int64_t)ey * 12 + em) ? 1 : 0;
}

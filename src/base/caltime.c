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

/* An RFC 3339 date-time as written: the one grammar both parsers below read. */
typedef struct {
    int y, mo, d, h, mi, sec; /* sec 0..60 (60: a leap second) */
    int frac_digits;          /* digits after '.', 0 when none; stops counting at 10 */
    int frac_ms;              /* the first three of them as milliseconds */
    int off_min;              /* the zone's offset east of UTC, minutes */
} rfc3339;

/*
 * "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)", 'T' and 'Z' in either
 * case, with a date that exists and fields in range. Returns 0 or
 * KV_ERR_FORMAT.
 */
static int rfc3339_split(const char *s, rfc3339 *t)
{
    const char *p = s;
    int oh = 0, om = 0, sign = 0;

    memset(t, 0, sizeof(*t));
    if (s == NULL)
        return KV_ERR_FORMAT;
    if (digits(&p, 4, &t->y) || expect(&p, '-', '-') || digits(&p, 2, &t->mo) ||
        expect(&p, '-', '-') || digits(&p, 2, &t->d) || expect(&p, 'T', 't') ||
        digits(&p, 2, &t->h) || expect(&p, ':', ':') || digits(&p, 2, &t->mi) ||
        expect(&p, ':', ':') || digits(&p, 2, &t->sec))
        return KV_ERR_FORMAT;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return KV_ERR_FORMAT;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (t->frac_digits < 3)
                t->frac_ms = t->frac_ms * 10 + (*p - '0');
            if (t->frac_digits < 10)
                t->frac_digits++;
        }
        for (int i = t->frac_digits; i < 3; i++)
            t->frac_ms *= 10;
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
    if (t->mo < 1 || t->mo > 12 || t->d < 1 || t->d > days_in_month(t->y, (unsigned)t->mo) ||
        t->h > 23 || t->mi > 59 || t->sec > 60)
        return KV_ERR_FORMAT;
    t->off_min = sign * (oh * 60 + om);
    return 0;
}

int kv_time_parse(const char *s, int64_t *out)
{
    rfc3339 p;
    int64_t t;
    /* RFC 3339 allows second 60 (leap second); it is folded into the next second. */
    if (rfc3339_split(s, &p) != 0 || p.y < 1970)
        return KV_ERR_FORMAT;
    t = kv_days_from_civil(p.y, (unsigned)p.mo, (unsigned)p.d) * 86400 + p.h * 3600 + p.mi * 60 +
        p.sec;
    t -= (int64_t)p.off_min * 60; /* the fraction is dropped */
    if (t < 0)
        return KV_ERR_FORMAT;
    *out = t;
    return 0;
}

#define MS_PER_DAY 86400000LL

int kv_time_parse_ms(const char *s, int64_t *ms)
{
    rfc3339 p;
    if (ms == NULL || rfc3339_split(s, &p) != 0 || p.sec > 59 || p.frac_digits > 9)
        return KV_ERR_FORMAT;
    *ms = kv_days_from_civil(p.y, (unsigned)p.mo, (unsigned)p.d) * MS_PER_DAY +
          ((int64_t)p.h * 3600 + p.mi * 60 + p.sec) * 1000 + p.frac_ms - (int64_t)p.off_min * 60000;
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

/* "-MM-DD" */
static void put_month_day(char *out, unsigned m, unsigned d)
{
    out[0] = '-';
    put_digits(out + 1, m, 2);
    out[3] = '-';
    put_digits(out + 4, d, 2);
}

/* "YYYY-MM-DD", the year taken modulo 10000 (0 before year 0) */
static void put_date(char *out, int64_t y, unsigned m, unsigned d)
{
    put_digits(out, (unsigned)(y < 0 ? 0 : y % 10000), 4);
    put_month_day(out + 4, m, d);
}

/* "THH:MM:SSZ" and the NUL, for a second of the day (0..86399) */
static void put_clock(char *out, int64_t sec)
{
    out[0] = 'T';
    put_digits(out + 1, (unsigned)(sec / 3600), 2);
    out[3] = ':';
    put_digits(out + 4, (unsigned)(sec / 60 % 60), 2);
    out[6] = ':';
    put_digits(out + 7, (unsigned)(sec % 60), 2);
    out[9] = 'Z';
    out[10] = '\0';
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b) != 0 && ((a < 0) != (b < 0)))
        q--;
    return q;
}

void kv_time_format(int64_t t, char out[KV_TIME_TEXT])
{
    int64_t days = floor_div(t, 86400), y;
    unsigned m, d;
    kv_civil_from_days(days, &y, &m, &d);
    put_date(out, y, m, d);
    put_clock(out + 10, t - days * 86400);
}

/*
 * The year as printf's "%04lld" writes it; returns the characters written.
 * An int64 of milliseconds spans less than 300 million years either way, so
 * the year has at most nine digits and a sign: the date-time fits
 * KV_TIME_MS_TEXT.
 */
static size_t put_year(char *out, int64_t y)
{
    char rev[20];
    size_t n = 0, len = 0;
    uint64_t v = y < 0 ? (uint64_t)0 - (uint64_t)y : (uint64_t)y;
    do {
        rev[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    if (y < 0)
        out[len++] = '-';
    while (len + n < 4)
        out[len++] = '0';
    while (n > 0)
        out[len++] = rev[--n];
    return len;
}

void kv_time_format_ms(int64_t ms, char out[KV_TIME_MS_TEXT])
{
    int64_t days = floor_div(ms, MS_PER_DAY), y;
    unsigned m, d;
    size_t n;
    kv_civil_from_days(days, &y, &m, &d);
    n = put_year(out, y);
    put_month_day(out + n, m, d);
    put_clock(out + n + 6, (ms - days * MS_PER_DAY) / 1000);
}

int64_t kv_time_add_months_ms(int64_t ms, int months)
{
    int64_t days = floor_div(ms, MS_PER_DAY), in_day = ms - days * MS_PER_DAY, y, idx;
    unsigned m, d, dim;
    kv_civil_from_days(days, &y, &m, &d);
    idx = y * 12 + ((int64_t)m - 1) + months;
    y = floor_div(idx, 12);
    m = (unsigned)(idx - y * 12) + 1;
    dim = (unsigned)days_in_month(y, m);
    if (d > dim)
        d = dim; /* "a day past the month's end is clamped to its last day" (src/RULES.md §2) */
    return kv_days_from_civil(y, m, d) * MS_PER_DAY + in_day;
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

/*
 * Calendar and time for every layer above (the only civil-date code in the
 * tree): RFC 3339 text <-> seconds since the epoch (UTC) for authorization,
 * evidence and the block list, the same in milliseconds with calendar-month
 * arithmetic for the liability engine, and the calendar day in
 * Europe/Copenhagen, which daily limits and card expiry use (src/RULES.md §1
 * "per calendar day in Europe/Copenhagen").
 *
 * Copenhagen is CET (UTC+1) with EU summer time (UTC+2) from 01:00 UTC on
 * the last Sunday of March to 01:00 UTC on the last Sunday of October
 * (Directive 2000/84/EC). The rule is computed here rather than through the
 * C library's TZ database so that the result does not depend on the
 * process's TZ or on the tzdata installed; it is applied to every year (the
 * EU rule has been the same since 1996).
 */
#ifndef KV_BASE_CALTIME_H
#define KV_BASE_CALTIME_H

#include <stdint.h>

#define KV_TIME_TEXT 21 /* "YYYY-MM-DDTHH:MM:SSZ" + NUL */
#define KV_DAY_TEXT 11  /* "YYYY-MM-DD" + NUL */

/*
 * Parse RFC 3339 "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)" (the 'T'
 * and 'Z' may be lower case) into seconds since 1970-01-01T00:00:00Z; the
 * fraction is dropped. Years 1970..9999. Returns 0 or KV_ERR_FORMAT (any
 * deviation, including impossible dates such as 02-30).
 */
int kv_time_parse(const char *s, int64_t *out);

/* Format t as "YYYY-MM-DDTHH:MM:SSZ" into out (KV_TIME_TEXT bytes). */
void kv_time_format(int64_t t, char out[KV_TIME_TEXT]);

/*
 * The same calendar in milliseconds since the epoch (the liability engine's
 * unit, src/RULES.md §2), for any year 0000..9999 including those before 1970.
 * kv_time_parse_ms reads the grammar of kv_time_parse but keeps the first
 * three fraction digits, refuses second 60 and a fraction of more than nine
 * digits. Returns 0 or KV_ERR_FORMAT.
 */
#define KV_TIME_MS_TEXT 32
int kv_time_parse_ms(const char *s, int64_t *ms);
/*
 * Format ms as "YYYY-MM-DDTHH:MM:SSZ" (milliseconds dropped; the year as
 * printf's "%04lld": at least four digits, a sign when negative) into out.
 */
void kv_time_format_ms(int64_t ms, char out[KV_TIME_MS_TEXT]);
/* Add calendar months in UTC; a day past the target month's end becomes its last day. */
int64_t kv_time_add_months_ms(int64_t ms, int months);

/* Days since 1970-01-01 of the civil date y-m-d (proleptic Gregorian). */
int64_t kv_days_from_civil(int64_t y, unsigned m, unsigned d);
/* Inverse of kv_days_from_civil. */
void kv_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);

/* Offset of Europe/Copenhagen from UTC at instant t, in seconds: 3600 or 7200. */
int kv_time_cph_offset(int64_t t);

/* The calendar date in Copenhagen at instant t, as "YYYY-MM-DD" and as parts. */
void kv_time_cph_day(int64_t t, char out[KV_DAY_TEXT]);
void kv_time_cph_date(int64_t t, int64_t *y, unsigned *m, unsigned *d);

/*
 * 1 if a card with expiry "YYMM" (20YY) has expired at instant t: the card is
 * valid through the last day of its expiry month in Copenhagen. Returns 0
 * (valid), 1 (expired) or KV_ERR_FORMAT (expiry not YYMM with month 01..12).
 */
int kv_card_expired(const char *expiry, int64_t t);

#endif

/* pvtime: parsing and formatting of the times feeds carry.
 *
 * Accepts ISO 8601 (a date, or a date-time with or without seconds,
 * fraction and zone; no zone means UTC) and HL7 TS
 * (YYYY[MM[DD[HH[MM[SS[.S]]]]]] with an optional +/-ZZZZ offset). Rejects
 * impossible dates (2026-13-45, Feb 30, hour 24+). Times are whole seconds
 * since the Unix epoch, UTC; fractions are dropped. Pure functions: no I/O, no
 * locale, no global state. Depends on error.h only. */
#ifndef PV_TIME_H
#define PV_TIME_H

#include <stddef.h>
#include <stdint.h>

typedef int64_t pv_time_t;

/* Enough for "YYYY-MM-DDTHH:MM:SSZ" and its NUL, with room to spare. */
#define PV_TIME_BUFSZ 32

/* Parses s[0..len) (no NUL needed; surrounding blanks are not allowed) into
 * *out. Returns 0, or PV_EINVAL with *out untouched. */
int pv_time_parse(const char *s, size_t len, pv_time_t *out);

/* Writes t as ISO 8601 UTC ("2026-01-31T14:05:00Z") into buf, which must
 * hold PV_TIME_BUFSZ bytes. Returns buf. */
char *pv_time_format(pv_time_t t, char *buf);

/* Days from 1970-01-01 to the given civil date (proleptic Gregorian).
 * Exact for month 1..12, day 1..31 and |y| below 10^12; the date is not
 * checked (pv_time_parse() does that). */
int64_t pv_time_days_from_civil(int64_t y, unsigned m, unsigned d);

/* The first time a clinical fact may carry: 1850-01-01T00:00:00Z. Older
 * dates in feeds are typing or conversion errors (0000, 00000000, 1066). */
#define PV_TIME_FACT_MIN INT64_C(-3786825600)
/* How far past 'now' the time of a result or event may lie: a day, for
 * clocks that differ and zones written wrong. */
#define PV_TIME_FACT_AHEAD INT64_C(86400)

/* Whether t is plausible as the time a result was observed or an event
 * began: not before PV_TIME_FACT_MIN and not more than PV_TIME_FACT_AHEAD
 * after now. A year-9999 result would otherwise be a patient's "latest"
 * value for ever. The caller chooses 'now' (the ingest path passes the later
 * of the wall clock and the store's clock, so fixed test clocks in the past
 * do not reject data). Returns NULL when plausible, else a short reason
 * ("before 1850", "more than a day in the future"). */
const char *pv_time_implausible(pv_time_t t, pv_time_t now);

/* A number of seconds (from Lua, a spec, a config) as a time: 0, or -1
 * for a NaN, an infinity or a value outside the years 0000-9999, whose
 * cast to an integer would be undefined behaviour. */
int pv_time_from_number(double v, pv_time_t *out);

#endif

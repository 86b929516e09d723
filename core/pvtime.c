/* pvtime: parsing and formatting of feed times; pvtime.h is the contract.
 *
 * The calendar arithmetic is done here (Howard Hinnant's days_from_civil and
 * its inverse) rather than with timegm() or mktime(), which depend on the
 * platform, the TZ variable and the locale, and so could make a replayed feed
 * give different times on different machines. */
#include "pvtime.h"

#include "error.h"

#define SECS_PER_DAY 86400

/* The fields a parser fills in; anything absent keeps its default. */
struct civil {
    unsigned year, month, day, hour, minute, second;
    long zone; /* seconds east of UTC */
};

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Reads exactly n digits at s[*i], bounded by len. */
static int digits(const char *s, size_t len, size_t *i, size_t n, unsigned *out)
{
    unsigned v = 0;
    if (len - *i < n)
        return 0;
    for (size_t k = 0; k < n; k++) {
        char c = s[*i + k];
        if (!is_digit(c))
            return 0;
        v = v * 10 + (unsigned)(c - '0');
    }
    *i += n;
    *out = v;
    return 1;
}

/* Skips a fraction of a second: the caller has seen the '.'. Fractions are
 * dropped, as the header promises, but their digits must still be digits. */
static int fraction(const char *s, size_t len, size_t *i, size_t max)
{
    size_t n = 0;
    while (*i < len && is_digit(s[*i]) && n < max) {
        (*i)++;
        n++;
    }
    return n > 0;
}

static int is_leap(unsigned y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(unsigned y, unsigned m)
{
    static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30,
                                          31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Seconds east of UTC from hours and minutes; the sign is applied by the
 * caller. An offset is limited to under a day, as RFC 3339 allows. */
static int zone_ok(unsigned h, unsigned m)
{
    return h <= 23 && m <= 59;
}

/* ISO 8601 extended form: the caller has checked "YYYY-" and that s[7] is
 * '-', so the date is at fixed places. */
static int parse_iso(const char *s, size_t len, struct civil *c)
{
    size_t i = 5;
    if (!digits(s, len, &i, 2, &c->month) || s[i++] != '-' ||
        !digits(s, len, &i, 2, &c->day))
        return 0;
    if (i == len)
        return 1;
    if (s[i] != 'T' && s[i] != 't' && s[i] != ' ')
        return 0;
    i++;
    if (!digits(s, len, &i, 2, &c->hour) || i >= len || s[i++] != ':' ||
        !digits(s, len, &i, 2, &c->minute))
        return 0;
    if (i < len && s[i] == ':') {
        i++;
        if (!digits(s, len, &i, 2, &c->second))
            return 0;
        if (i < len && s[i] == '.') {
            i++;
            if (!fraction(s, len, &i, 9))
                return 0;
        }
    }
    if (i == len)
        return 1;
    if (s[i] == 'Z' || s[i] == 'z')
        return i + 1 == len;
    if (s[i] == '+' || s[i] == '-') {
        long sign = s[i] == '-' ? -1 : 1;
        unsigned zh, zm = 0;
        i++;
        if (!digits(s, len, &i, 2, &zh))
            return 0;
        if (i < len) {
            if (s[i] == ':')
                i++;
            if (!digits(s, len, &i, 2, &zm))
                return 0;
        }
        if (i != len || !zone_ok(zh, zm))
            return 0;
        c->zone = sign * (long)(zh * 3600 + zm * 60);
        return 1;
    }
    return 0;
}

/* HL7 TS/DTM: YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]; the caller has
 * read the year. */
static int parse_hl7(const char *s, size_t len, struct civil *c)
{
    unsigned *parts[5] = {&c->month, &c->day, &c->hour, &c->minute, &c->second};
    size_t i = 4, n = 0;
    while (n < 5 && i < len && is_digit(s[i]))
        if (!digits(s, len, &i, 2, parts[n++]))
            return 0;
    if (n == 5 && i < len && s[i] == '.') {
        i++;
        if (!fraction(s, len, &i, 4))
            return 0;
    }
    if (i < len && (s[i] == '+' || s[i] == '-')) {
        long sign = s[i] == '-' ? -1 : 1;
        unsigned zh, zm;
        i++;
        if (!digits(s, len, &i, 2, &zh) || !digits(s, len, &i, 2, &zm) ||
            !zone_ok(zh, zm))
            return 0;
        c->zone = sign * (long)(zh * 3600 + zm * 60);
    }
    return i == len;
}

int pv_time_parse(const char *s, size_t len, pv_time_t *out)
{
    struct civil c = {0, 1, 1, 0, 0, 0, 0};
    size_t i = 0;
    int ok;
    if (!s || !digits(s, len, &i, 4, &c.year))
        return PV_EINVAL;
    /* "YYYY-MM-DD..." is ISO; "YYYY-ZZZZ" is an HL7 year with a zone. */
    if (len >= 10 && s[4] == '-' && s[7] == '-')
        ok = parse_iso(s, len, &c);
    else
        ok = parse_hl7(s, len, &c);
    if (!ok || c.month < 1 || c.month > 12 || c.day < 1 ||
        c.day > days_in_month(c.year, c.month) || c.hour > 23 ||
        c.minute > 59 || c.second > 59)
        return PV_EINVAL;
    *out = pv_time_days_from_civil(c.year, c.month, c.day) * SECS_PER_DAY +
           (pv_time_t)c.hour * 3600 + (pv_time_t)c.minute * 60 +
           (pv_time_t)c.second - c.zone;
    return 0;
}

const char *pv_time_implausible(pv_time_t t, pv_time_t now)
{
    if (t < PV_TIME_FACT_MIN)
        return "before 1850";
    if (now <= INT64_MAX - PV_TIME_FACT_AHEAD && t > now + PV_TIME_FACT_AHEAD)
        return "more than a day in the future";
    return NULL;
}

int64_t pv_time_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    /* The year is shifted to start in March so that the leap day falls at
     * its end; an era is the 400-year cycle of the Gregorian calendar. */
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t mp = m > 2 ? (int64_t)m - 3 : (int64_t)m + 9;
    int64_t doy = (153 * mp + 2) / 5 + (int64_t)d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The inverse of pv_time_days_from_civil(). */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* Writes v with at least 'width' digits and returns the next position. */
static char *put_num(char *p, uint64_t v, int width)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n < width)
        tmp[n++] = '0';
    while (n)
        *p++ = tmp[--n];
    return p;
}

char *pv_time_format(pv_time_t t, char *buf)
{
    /* Floor division without multiplying back, which could overflow near
     * INT64_MIN. */
    int64_t days = t / SECS_PER_DAY;
    int64_t secs = t % SECS_PER_DAY;
    if (secs < 0) {
        secs += SECS_PER_DAY;
        days--;
    }
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    char *p = buf;
    /* Years outside 0..9999 cannot come from the parser, but any pv_time_t
     * must format without overflowing buf: the sign and extra digits fit. */
    if (y < 0) {
        *p++ = '-';
        p = put_num(p, (uint64_t)0 - (uint64_t)y, 4);
    } else {
        p = put_num(p, (uint64_t)y, 4);
    }
    *p++ = '-';
    p = put_num(p, m, 2);
    *p++ = '-';
    p = put_num(p, d, 2);
    *p++ = 'T';
    p = put_num(p, (uint64_t)(secs / 3600), 2);
    *p++ = ':';
    p = put_num(p, (uint64_t)(secs / 60 % 60), 2);
    *p++ = ':';
    p = put_num(p, (uint64_t)(secs % 60), 2);
    *p++ = 'Z';
    *p = '\0';
    return buf;
}

int pv_time_from_number(double v, pv_time_t *out)
{
    /* 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z. */
    if (!(v >= -62167219200.0 && v <= 253402300799.0))
        return -1;
    *out = (pv_time_t)v;
    return 0;
}

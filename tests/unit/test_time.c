/* test_time: ISO 8601 and HL7 TS parsing, formatting, and the calendar
 * arithmetic checked day by day against a naive count for 1900..2199. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "pvtime.h"
#include "test.h"

/* 2026-01-31T14:05:00Z, the time most cases below spell differently. */
#define T0 INT64_C(1769868300)

static pv_time_t parse_ok(const char *s)
{
    pv_time_t t = INT64_MIN;
    int rc = pv_time_parse(s, strlen(s), &t);
    if (rc != 0)
        fprintf(stderr, "rejected: \"%s\"\n", s);
    return t;
}

#define CHECK_PARSE(s, want) CHECK_INT(parse_ok(s), want)

/* A rejected string must leave *out as it was. */
#define CHECK_REJECT(s)                                                        \
    do {                                                                       \
        pv_time_t t_ = 42;                                                     \
        CHECK_INT(pv_time_parse(s, strlen(s), &t_), PV_EINVAL);                \
        CHECK_INT(t_, 42);                                                     \
    } while (0)

static void test_iso(void)
{
    CHECK_PARSE("2026-01-31", INT64_C(1769817600));
    CHECK_PARSE("2026-01-31T14:05", T0);
    CHECK_PARSE("2026-01-31T14:05:00", T0);
    CHECK_PARSE("2026-01-31T14:05:00.123", T0);
    CHECK_PARSE("2026-01-31T14:05:00.999999999", T0);
    CHECK_PARSE("2026-01-31T14:05:00Z", T0);
    CHECK_PARSE("2026-01-31T14:05:00.123Z", T0);
    CHECK_PARSE("2026-01-31T14:05Z", T0);
    CHECK_PARSE("2026-01-31 14:05:00", T0);
    CHECK_PARSE("2026-01-31 14:05", T0);
    CHECK_PARSE("2026-01-31t14:05:00z", T0);
    CHECK_PARSE("2026-01-31T15:05:00+01:00", T0);
    CHECK_PARSE("2026-01-31T15:05:00.5+01:00", T0);
    CHECK_PARSE("2026-01-31T09:05:00-0500", T0);
    CHECK_PARSE("2026-01-31T09:05-05:00", T0);
    CHECK_PARSE("2026-01-31T15:05+01", T0);
    CHECK_PARSE("2026-01-31T14:05:00-00:00", T0);
    CHECK_PARSE("2026-01-31T14:05:00+00:00", T0);
    /* Zones move the date across day, month and year ends. */
    CHECK_PARSE("2026-02-01T00:35:00+10:30", T0);
    CHECK_PARSE("2026-03-01T00:30:00+01:00", INT64_C(1772321400));
    CHECK_PARSE("2027-01-01T00:00:00+01:00", INT64_C(1798758000));
    CHECK_PARSE("1970-01-01T00:00:00Z", 0);
    CHECK_PARSE("1969-12-31T23:59:59Z", -1);
    CHECK_PARSE("1970-01-01T00:00:00+00:01", -60);
}

static void test_hl7(void)
{
    CHECK_PARSE("2026", INT64_C(1767225600));
    CHECK_PARSE("202601", INT64_C(1767225600));
    CHECK_PARSE("20260131", INT64_C(1769817600));
    CHECK_PARSE("2026013114", T0 - 300);
    CHECK_PARSE("202601311405", T0);
    CHECK_PARSE("20260131140500", T0);
    CHECK_PARSE("20260131140500.1", T0);
    CHECK_PARSE("20260131140500.1234", T0);
    CHECK_PARSE("20260131150500+0100", T0);
    CHECK_PARSE("20260131090500.5-0500", T0);
    CHECK_PARSE("202601311505+0100", T0);
    CHECK_PARSE("20260131+0000", INT64_C(1769817600));
    /* A year with a zone looks like an ISO date cut short; it is HL7. */
    CHECK_PARSE("2026-0500", INT64_C(1767225600) + 5 * 3600);
}

static void test_range(void)
{
    CHECK_PARSE("1900-01-01", INT64_C(-2208988800));
    CHECK_PARSE("2199-12-31T23:59:59Z", INT64_C(7258118399));
    CHECK_PARSE("2000-02-29T12:00:00Z", INT64_C(951825600));
    CHECK_PARSE("20240229", INT64_C(1709164800));
    CHECK_PARSE("0000-01-01", INT64_C(-719528) * 86400);
    CHECK_PARSE("9999-12-31T23:59:59Z", INT64_C(253402300799));
}

static void test_reject(void)
{
    static const char *bad[] = {"",
                                "2",
                                "202",
                                "abcd",
                                "2026/01/31",
                                "26-01-31",
                                "2026-1-31",
                                "2026-01-3",
                                "2026-01",
                                "2026-13-01",
                                "2026-00-10",
                                "2026-01-00",
                                "2026-01-32",
                                "2026-01-45",
                                "2026-02-29",
                                "1900-02-29",
                                "2100-02-29",
                                "2026-04-31",
                                "2026-06-31",
                                "2026-09-31",
                                "2026-11-31",
                                "2026-01-31T24:00",
                                "2026-01-31T23:60",
                                "2026-01-31T23:59:60",
                                "2026-01-31T23:59:61",
                                "2026-01-31T99:99:99",
                                "2026-01-31T",
                                "2026-01-31T14",
                                "2026-01-31T14:5",
                                "2026-01-31T1405",
                                "2026-01-31T14:05:0",
                                "2026-01-31T14:05:00.",
                                "2026-01-31T14:05:00.1234567890",
                                "2026-01-31T14:05.5",
                                "2026-01-31T14:05:00Zjunk",
                                "2026-01-31T14:05:00ZZ",
                                "2026-01-31T14:05:00+",
                                "2026-01-31T14:05:00+1",
                                "2026-01-31T14:05:00+01:",
                                "2026-01-31T14:05:00+01:0",
                                "2026-01-31T14:05:00+0100x",
                                "2026-01-31T14:05:00+01:00:00",
                                "2026-01-31T14:05:00+24:00",
                                "2026-01-31T14:05:00+01:60",
                                "2026-01-31T14:05:00 +01:00",
                                "2026-01-31Z",
                                "2026-01-31+01:00",
                                "2026-01-31 ",
                                " 2026-01-31",
                                "2026-01-31x",
                                "2026-01-31T14:05:00 ",
                                "2026-01-31  14:05",
                                "2026-01-31_14:05",
                                "20261",
                                "2026013",
                                "202613",
                                "202600",
                                "20260230",
                                "20260100",
                                "2026013124",
                                "202601312360",
                                "20260131235960",
                                "20260131235959.",
                                "20260131235959.12345",
                                "202601311405.5",
                                "2026013114.5",
                                "20260131+01",
                                "20260131+010",
                                "20260131+0160",
                                "20260131+2400",
                                "20260131+01000",
                                "20260131 1405",
                                "20260131T140500",
                                "2026+",
                                "-2026-01-31",
                                "+2026-01-31",
                                "2026-01-31T14:05:00-",
                                "１２３４"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pv_time_t t = 42;
        int rc = pv_time_parse(bad[i], strlen(bad[i]), &t);
        if (rc != PV_EINVAL || t != 42)
            fprintf(stderr, "accepted: \"%s\"\n", bad[i]);
        CHECK_INT(rc, PV_EINVAL);
        CHECK_INT(t, 42);
    }
    /* Embedded NULs are bytes like any other, and not digits. */
    CHECK_INT(pv_time_parse("2026\0", 5, &(pv_time_t){0}), PV_EINVAL);
    CHECK_INT(pv_time_parse("2026-01-31\0", 11, &(pv_time_t){0}), PV_EINVAL);
    CHECK_INT(pv_time_parse(NULL, 0, &(pv_time_t){0}), PV_EINVAL);
    CHECK_REJECT("2026-01-31T14:05:00.123+01:00 ");
}

static void test_length_bound(void)
{
    /* The string need not end at len, and nothing past len is read. */
    pv_time_t t = 0;
    const char *s = "2026-01-31T14:05:00Zjunk";
    CHECK_INT(pv_time_parse(s, 20, &t), 0);
    CHECK_INT(t, T0);
    CHECK_INT(pv_time_parse(s, 16, &t), 0);
    CHECK_INT(t, T0);
    CHECK_INT(pv_time_parse(s, 10, &t), 0);
    CHECK_INT(t, INT64_C(1769817600));
    CHECK_INT(pv_time_parse(s, 11, &t), PV_EINVAL);
    /* A heap copy of exactly len bytes lets ASan catch a read past it. */
    char *h = malloc(8);
    memcpy(h, "20260131", 8);
    CHECK_INT(pv_time_parse(h, 8, &t), 0);
    CHECK_INT(t, INT64_C(1769817600));
    CHECK_INT(pv_time_parse(h, 7, &t), PV_EINVAL);
    CHECK_INT(pv_time_parse(h, 6, &t), 0);
    free(h);
}

static void test_format(void)
{
    char buf[PV_TIME_BUFSZ];
    CHECK_STR(pv_time_format(T0, buf), "2026-01-31T14:05:00Z");
    CHECK_STR(pv_time_format(0, buf), "1970-01-01T00:00:00Z");
    CHECK_STR(pv_time_format(-1, buf), "1969-12-31T23:59:59Z");
    CHECK_STR(pv_time_format(INT64_C(-2208988800), buf),
              "1900-01-01T00:00:00Z");
    CHECK_STR(pv_time_format(INT64_C(7258118399), buf), "2199-12-31T23:59:59Z");
    CHECK_STR(pv_time_format(INT64_C(951825600), buf), "2000-02-29T12:00:00Z");
    CHECK_STR(pv_time_format(INT64_C(-719528) * 86400, buf),
              "0000-01-01T00:00:00Z");
    CHECK_STR(pv_time_format(INT64_C(-719528) * 86400 - 1, buf),
              "-0001-12-31T23:59:59Z");
    CHECK_STR(pv_time_format(INT64_C(253402300800), buf),
              "10000-01-01T00:00:00Z");
    /* The extremes must fit the buffer and not overflow the arithmetic. */
    CHECK_STR(pv_time_format(INT64_MAX, buf), "292277026596-12-04T15:30:07Z");
    CHECK_STR(pv_time_format(INT64_MIN, buf), "-292277022657-01-27T08:29:52Z");
    CHECK(strlen(buf) < PV_TIME_BUFSZ);
}

/* Counts days the slow way, to check the closed-form arithmetic. */
static int naive_leap(long y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static void test_every_day(void)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    long bad = 0, days = 0;
    int64_t n = -25567; /* 1900-01-01 */
    for (long y = 1900; y <= 2199; y++) {
        for (unsigned m = 1; m <= 12; m++) {
            int nd = dim[m - 1] + (m == 2 && naive_leap(y));
            for (unsigned d = 1; d <= (unsigned)nd; d++, n++, days++) {
                /* Walk the time of day too, so that every hour, minute and
                 * second value is formatted and parsed somewhere. */
                int64_t sod = (days * 7919) % 86400;
                pv_time_t t = n * 86400 + sod;
                char want[64], iso[64], hl7[64], buf[PV_TIME_BUFSZ];
                snprintf(want, sizeof want, "%04ld-%02u-%02uT%02d:%02d:%02dZ",
                         y, m, d, (int)(sod / 3600), (int)(sod / 60 % 60),
                         (int)(sod % 60));
                snprintf(hl7, sizeof hl7, "%04ld%02u%02u%02d%02d%02d", y, m, d,
                         (int)(sod / 3600), (int)(sod / 60 % 60),
                         (int)(sod % 60));
                memcpy(iso, want, strlen(want) + 1);
                pv_time_t pi = 0, ph = 0;
                if (pv_time_days_from_civil(y, m, d) != n ||
                    strcmp(pv_time_format(t, buf), want) != 0 ||
                    pv_time_parse(iso, strlen(iso), &pi) != 0 || pi != t ||
                    pv_time_parse(hl7, strlen(hl7), &ph) != 0 || ph != t) {
                    if (bad++ < 5)
                        fprintf(stderr, "day %s: days %lld, got %s\n", want,
                                (long long)pv_time_days_from_civil(y, m, d),
                                buf);
                }
            }
            /* The day after the month's last must be rejected. */
            char over[64];
            snprintf(over, sizeof over, "%04ld-%02u-%02d", y, m, nd + 1);
            pv_time_t t = 42;
            if (pv_time_parse(over, strlen(over), &t) != PV_EINVAL)
                bad++;
        }
    }
    CHECK_INT(days, 109573);
    CHECK_INT(bad, 0);

    /* Year starts over the whole four-digit range. */
    int64_t jan1 = pv_time_days_from_civil(0, 1, 1);
    bad = 0;
    for (long y = 0; y < 10000; y++) {
        if (pv_time_days_from_civil(y, 1, 1) != jan1)
            bad++;
        jan1 += 365 + naive_leap(y);
    }
    CHECK_INT(bad, 0);
    CHECK_INT(pv_time_days_from_civil(-1, 1, 1), -719528 - 365);
}

int main(void)
{
    test_iso();
    test_hl7();
    test_range();
    test_reject();
    test_length_bound();
    test_format();
    test_every_day();
    return pv_test_report();
}

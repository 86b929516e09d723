/* fuzz_time: the time parser and formatter.
 *
 * Whatever the input, parsing must not read past it, and an accepted time
 * must format to a string that parses back to the same time and whose date
 * pv_time_days_from_civil() maps back to the same day. The first eight bytes
 * are also taken as a raw time, which must format within the buffer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "pvtime.h"

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_time invariant broken: %s\n", what);
    abort();
}

static unsigned num(const char *s, size_t n)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (unsigned)(s[i] - '0');
    return v;
}

/* Checks a formatted time: its length, and for four-digit years that it
 * parses back and that its date agrees with days_from_civil. */
static void check_format(pv_time_t t)
{
    char buf[PV_TIME_BUFSZ + 8];
    memset(buf, 0x55, sizeof buf);
    pv_time_format(t, buf);
    size_t len = strnlen(buf, sizeof buf);
    if (len >= PV_TIME_BUFSZ)
        fail("format overflows the buffer");
    if (len != 20)
        return;
    pv_time_t back;
    if (pv_time_parse(buf, len, &back) != 0 || back != t)
        fail("format does not parse back");
    int64_t days = t / 86400 - (t % 86400 < 0);
    if (pv_time_days_from_civil(num(buf, 4), num(buf + 5, 2),
                                num(buf + 8, 2)) != days)
        fail("days_from_civil disagrees with format");
}

/* libFuzzer's entry point (and replay.c's). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly 'size' bytes, so that ASan sees any read past it. */
    char *s = malloc(size ? size : 1);
    if (!s)
        return 0;
    if (size)
        memcpy(s, data, size);
    pv_time_t t = 42;
    int rc = pv_time_parse(s, size, &t);
    if (rc != 0 && rc != PV_EINVAL)
        fail("unexpected return");
    if (rc != 0 && t != 42)
        fail("rejected input changed *out");
    if (rc == 0) {
        if (size < 4)
            fail("accepted a string shorter than a year");
        /* Four-digit years with a zone of under a day stay near 0..9999. */
        if (t < INT64_C(-62167305600) || t > INT64_C(253402387200))
            fail("accepted time out of range");
        check_format(t);
    }
    if (size >= 8) {
        int64_t raw;
        memcpy(&raw, data, sizeof raw);
        check_format(raw);
    }
    free(s);
    return 0;
}

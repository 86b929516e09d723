/* fuzz_csv: the CSV parser under every way of feeding it.
 *
 * The first three bytes choose max_record and a cut point; the rest is the
 * file. It is parsed in one chunk, in two chunks split at the cut, in random
 * chunks, byte by byte, stopped by its callback and fed again from the
 * offset, and resumed from the offset reported at the cut. Every run must
 * report the same records, errors, offsets and lines, and each report must
 * keep the invariants the header promises; any difference aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"

/* A serialized trace of one run, compared byte for byte. */
struct trace {
    unsigned char *s;
    size_t len, cap;
    pv_csv *p;
    const unsigned char *data; /* the whole file, for line checks */
    size_t size;
    size_t max;
    uint64_t last_off;
    long last_line;
    int stop_every; /* stop at every n-th record (0 = never) */
    int nrec;
};

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_csv invariant broken: %s\n", what);
    abort();
}

static void put(struct trace *t, const void *b, size_t n)
{
    if (t->len + n > t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 1024;
        while (ncap < t->len + n)
            ncap *= 2;
        unsigned char *ns = realloc(t->s, ncap);
        if (!ns)
            abort();
        t->s = ns;
        t->cap = ncap;
    }
    if (n)
        memcpy(t->s + t->len, b, n);
    t->len += n;
}

static void put_u64(struct trace *t, uint64_t v)
{
    put(t, &v, sizeof v);
}

/* An independent UTF-8 check by code point, rather than by byte ranges as
 * the parser does it. */
static int utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t k;
        if (s[i] < 0x80) {
            i++;
            continue;
        } else if ((s[i] & 0xE0) == 0xC0) {
            cp = s[i] & 0x1F;
            k = 1;
        } else if ((s[i] & 0xF0) == 0xE0) {
            cp = s[i] & 0x0F;
            k = 2;
        } else if ((s[i] & 0xF8) == 0xF0) {
            cp = s[i] & 0x07;
            k = 3;
        } else {
            return 0;
        }
        if (n - i <= k)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        static const uint32_t min[4] = {0, 0x80, 0x800, 0x10000};
        if (cp < min[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += k + 1;
    }
    return 1;
}

/* Checks what holds at every report: offsets grow, stay inside the input
 * and stand on the line the file says they do. */
static void check_place(struct trace *t, long line)
{
    uint64_t off = pv_csv_offset(t->p);
    long off_line = pv_csv_line(t->p);
    if (off > t->size)
        fail("offset past the input");
    if (off <= t->last_off)
        fail("offset did not advance");
    long want = 1;
    for (uint64_t i = 0; i < off; i++)
        want += t->data[i] == '\n';
    if (off_line != want)
        fail("line at offset");
    if (line < 1 || line < t->last_line || line > off_line)
        fail("record line");
    t->last_off = off;
    t->last_line = line;
    put_u64(t, (uint64_t)line);
    put_u64(t, off);
}

static int on_record(void *ud, long line, const pv_span *f, size_t n)
{
    struct trace *t = ud;
    size_t total = 0;
    put(t, "R", 1);
    check_place(t, line);
    if (n == 0)
        fail("record without fields");
    put_u64(t, n);
    for (size_t i = 0; i < n; i++) {
        if (f[i].len && !f[i].ptr)
            fail("field without bytes");
        if (!utf8_ok((const unsigned char *)f[i].ptr, f[i].len))
            fail("invalid UTF-8 delivered");
        total += f[i].len;
        put_u64(t, f[i].len);
        put(t, f[i].ptr, f[i].len);
    }
    if (total > t->max)
        fail("record over max_record delivered");
    t->nrec++;
    return t->stop_every && t->nrec % t->stop_every == 0 ? 1 : 0;
}

static void on_error(void *ud, long line, const char *reason)
{
    struct trace *t = ud;
    put(t, "E", 1);
    check_place(t, line);
    put(t, reason, strlen(reason) + 1);
}

static void trace_init(struct trace *t, const unsigned char *d, size_t n,
                       size_t max)
{
    memset(t, 0, sizeof *t);
    t->data = d;
    t->size = n;
    t->max = max;
}

static pv_csv *new_parser(struct trace *t, size_t max_arg)
{
    t->p = pv_csv_new(max_arg, on_record, on_error, t);
    if (!t->p)
        abort();
    return t->p;
}

static int feed(struct trace *t, const unsigned char *d, size_t n,
                uint64_t fed_before)
{
    int rc = pv_csv_feed(t->p, (const char *)d, n);
    if (rc == 0 && pv_csv_offset(t->p) > fed_before + n)
        fail("offset past what was fed");
    return rc;
}

/* Finishes a run and checks the offset lands on the end of the input. */
static void finish(struct trace *t)
{
    if (pv_csv_finish(t->p) != 0)
        fail("finish failed");
    if (pv_csv_offset(t->p) != t->size)
        fail("finish left input unconsumed");
    pv_csv_free(t->p);
    t->p = NULL;
}

static void same(const struct trace *a, const struct trace *b, const char *what)
{
    if (a->len != b->len || (a->len && memcmp(a->s, b->s, a->len) != 0))
        fail(what);
}

/* libFuzzer's entry point (and replay.c's). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    /* Small limits exercise the record-too-long paths; 0 is the default. */
    size_t max_arg = data[0] & 0x80 ? 0 : (size_t)(data[0] & 0x7F) + 1;
    size_t max = max_arg ? max_arg : (size_t)1024 * 1024;
    unsigned cutsel = (unsigned)data[1] << 8 | data[2];
    const unsigned char *d = data + 3;
    size_t n = size - 3;
    size_t cut = cutsel % (n + 1);

    struct trace a, b;

    /* One chunk: the reference. */
    trace_init(&a, d, n, max);
    new_parser(&a, max_arg);
    if (feed(&a, d, n, 0) != 0)
        fail("feed failed");
    finish(&a);

    /* Two chunks split at the cut. */
    trace_init(&b, d, n, max);
    new_parser(&b, max_arg);
    if (feed(&b, d, cut, 0) || feed(&b, d + cut, n - cut, cut))
        fail("feed failed");
    finish(&b);
    same(&a, &b, "two chunks differ from one");
    free(b.s);

    /* Random chunk sizes from a generator seeded by the cut. */
    trace_init(&b, d, n, max);
    new_parser(&b, max_arg);
    uint32_t rs = cutsel * 2654435761u + 1;
    for (size_t i = 0; i < n;) {
        rs ^= rs << 13;
        rs ^= rs >> 17;
        rs ^= rs << 5;
        size_t k = 1 + rs % 17;
        if (k > n - i)
            k = n - i;
        if (feed(&b, d + i, k, i))
            fail("feed failed");
        i += k;
    }
    finish(&b);
    same(&a, &b, "random chunks differ from one");
    free(b.s);

    /* Byte by byte, on inputs small enough to keep the fuzzer fast. */
    if (n <= 1024) {
        trace_init(&b, d, n, max);
        new_parser(&b, max_arg);
        for (size_t i = 0; i < n; i++)
            if (feed(&b, d + i, 1, i))
                fail("feed failed");
        finish(&b);
        same(&a, &b, "byte by byte differs from one chunk");
        free(b.s);
    }

    /* Stopped by the callback and fed again from the offset each time. */
    trace_init(&b, d, n, max);
    b.stop_every = 1 + cutsel % 3;
    new_parser(&b, max_arg);
    uint64_t at = 0;
    for (int guard = 0;; guard++) {
        if (guard > (int)n + 2)
            fail("stopping does not progress");
        int rc = feed(&b, d + at, n - (size_t)at, at);
        if (rc == 0) {
            /* Finish can stop too: on the last record, or while the first
             * record is replayed, which leaves the rest to feed again. */
            rc = pv_csv_finish(b.p);
            if (rc == 0 || (rc == 1 && pv_csv_offset(b.p) == n))
                break;
        }
        if (rc != 1)
            fail("feed or finish failed");
        at = pv_csv_offset(b.p);
    }
    if (pv_csv_offset(b.p) != n)
        fail("stopped run left input unconsumed");
    pv_csv_free(b.p);
    same(&a, &b, "stopped run differs");
    free(b.s);

    /* Resumed from the offset reported at the cut. */
    trace_init(&b, d, n, max);
    new_parser(&b, max_arg);
    if (feed(&b, d, cut, 0))
        fail("feed failed");
    uint64_t off = pv_csv_offset(b.p);
    long line = pv_csv_line(b.p);
    char delim = pv_csv_delimiter(b.p);
    pv_csv_free(b.p);
    if (off > cut)
        fail("offset past the cut");
    if (b.len > a.len || (b.len && memcmp(a.s, b.s, b.len) != 0))
        fail("first half is not a prefix");
    new_parser(&b, max_arg);
    pv_csv_resume(b.p, delim, line, off);
    if (feed(&b, d + off, n - (size_t)off, off))
        fail("feed failed");
    finish(&b);
    same(&a, &b, "resumed run differs");
    free(b.s);

    free(a.s);
    return 0;
}

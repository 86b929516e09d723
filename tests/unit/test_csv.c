/* test_csv: the streaming CSV parser, on hand-written edge cases, on the
 * Synthea corpus and on generated files, each fed whole, byte by byte, in
 * random chunks and resumed from every offset it reports. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "test.h"

/* A growing text log of what the parser reported, so that two runs can be
 * compared as strings and a failure shows both sides. */
struct log {
    char *s;
    size_t len, cap;
    pv_csv *p;
    int with_offsets; /* also log pv_csv_offset() and pv_csv_line() */
    int stop_at;      /* return 1 from this record (1-based), 0 = never */
    int nrec;
};

static void log_bytes(struct log *l, const char *s, size_t n)
{
    if (l->len + n + 1 > l->cap) {
        size_t ncap = l->cap ? l->cap : 256;
        while (ncap < l->len + n + 1)
            ncap *= 2;
        char *ns = realloc(l->s, ncap);
        if (!ns) {
            fputs("out of memory\n", stderr);
            exit(2);
        }
        l->s = ns;
        l->cap = ncap;
    }
    memcpy(l->s + l->len, s, n);
    l->len += n;
    l->s[l->len] = '\0';
}

static void log_str(struct log *l, const char *s)
{
    log_bytes(l, s, strlen(s));
}

static void log_num(struct log *l, unsigned long long v)
{
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%llu", v);
    log_str(l, tmp);
}

/* Control bytes and bytes above 0x7F are escaped so that logs print. */
static void log_field(struct log *l, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') {
            log_str(l, "\\n");
        } else if (c == '\r') {
            log_str(l, "\\r");
        } else if (c < 0x20 || c >= 0x7F) {
            char tmp[8];
            snprintf(tmp, sizeof tmp, "\\x%02X", c);
            log_str(l, tmp);
        } else {
            log_bytes(l, s + i, 1);
        }
    }
}

static void log_place(struct log *l, long line)
{
    log_num(l, (unsigned long long)line);
    if (l->with_offsets) {
        log_str(l, "@");
        log_num(l, pv_csv_offset(l->p));
        log_str(l, "/");
        log_num(l, (unsigned long long)pv_csv_line(l->p));
    }
    log_str(l, ":");
}

static int on_record(void *ud, long line, const pv_span *f, size_t n)
{
    struct log *l = ud;
    log_str(l, "R");
    log_place(l, line);
    for (size_t i = 0; i < n; i++) {
        log_str(l, "[");
        log_field(l, f[i].ptr, f[i].len);
        log_str(l, "]");
    }
    log_str(l, "\n");
    return ++l->nrec == l->stop_at ? 1 : 0;
}

static void on_error(void *ud, long line, const char *reason)
{
    struct log *l = ud;
    log_str(l, "E");
    log_place(l, line);
    log_str(l, reason);
    log_str(l, "\n");
}

/* A small deterministic generator, so that failures reproduce. */
static uint32_t rng_next(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return x;
}

enum { ONE_CHUNK, BYTE_BY_BYTE, RANDOM_CHUNKS };

/* Parses in[0..len) in the given chunking and returns the log, which the
 * caller frees. Any feed result other than 0 is logged too. */
static char *parse_mode(const char *in, size_t len, size_t max, int mode,
                        uint32_t seed, int with_offsets)
{
    struct log l = {0};
    l.with_offsets = with_offsets;
    l.p = pv_csv_new(max, on_record, on_error, &l);
    if (!l.p)
        return NULL;
    size_t i = 0;
    uint32_t rs = seed | 1;
    while (i < len) {
        size_t n = len - i;
        if (mode == BYTE_BY_BYTE)
            n = 1;
        else if (mode == RANDOM_CHUNKS)
            n = 1 + rng_next(&rs) % (n < 64 ? n : 64);
        int rc = pv_csv_feed(l.p, in + i, n);
        if (rc) {
            log_str(&l, "feed rc ");
            log_num(&l, (unsigned long long)(long long)rc);
        }
        i += n;
    }
    int rc = pv_csv_finish(l.p);
    if (rc) {
        log_str(&l, "finish rc ");
        log_num(&l, (unsigned long long)(long long)rc);
    }
    log_str(&l, "");
    pv_csv_free(l.p);
    return l.s;
}

static long lines_before(const char *in, uint64_t off)
{
    long line = 1;
    for (uint64_t i = 0; i < off; i++)
        if (in[i] == '\n')
            line++;
    return line;
}

/* Feeds in[0..cut) to one parser, then resumes a fresh one from the offset
 * the first reported and feeds it the rest. Returns the two logs joined. */
static char *parse_resumed(const char *in, size_t len, size_t max, size_t cut,
                           int *bad_offset)
{
    struct log l = {0};
    l.with_offsets = 1;
    l.p = pv_csv_new(max, on_record, on_error, &l);
    pv_csv_feed(l.p, in, cut);
    uint64_t off = pv_csv_offset(l.p);
    long line = pv_csv_line(l.p);
    char delim = pv_csv_delimiter(l.p);
    pv_csv_free(l.p);
    /* The offset must stand on a record boundary inside what was fed, and
     * the line must be the one that boundary is on. */
    if (off > cut || line != lines_before(in, off)) {
        *bad_offset = 1;
        log_str(&l, "");
        return l.s;
    }
    l.p = pv_csv_new(max, on_record, on_error, &l);
    pv_csv_resume(l.p, delim, line, off);
    pv_csv_feed(l.p, in + off, len - (size_t)off);
    pv_csv_finish(l.p);
    pv_csv_free(l.p);
    log_str(&l, "");
    return l.s;
}

/* Checks that every chunking, and resuming at every cut, gives the same
 * records, errors, offsets and lines as one chunk. 'cuts' limits how many
 * cut points are tried (0 = all). */
static int same_all_ways(const char *in, size_t len, size_t max, size_t cuts)
{
    int ok = 1;
    char *want = parse_mode(in, len, max, ONE_CHUNK, 0, 1);
    char *got = parse_mode(in, len, max, BYTE_BY_BYTE, 0, 1);
    if (strcmp(want, got) != 0) {
        fprintf(stderr, "byte by byte differs:\n%s---\n%s", want, got);
        ok = 0;
    }
    free(got);
    for (uint32_t seed = 1; seed <= 20 && ok; seed++) {
        got = parse_mode(in, len, max, RANDOM_CHUNKS, seed * 2654435761u, 1);
        if (strcmp(want, got) != 0) {
            fprintf(stderr, "chunks (seed %u) differ:\n%s---\n%s",
                    (unsigned)seed, want, got);
            ok = 0;
        }
        free(got);
    }
    uint32_t rs = 12345;
    size_t ncuts = cuts && cuts < len + 1 ? cuts : len + 1;
    for (size_t k = 0; k < ncuts && ok; k++) {
        size_t cut = cuts ? rng_next(&rs) % (len + 1) : k;
        int bad = 0;
        got = parse_resumed(in, len, max, cut, &bad);
        if (bad || strcmp(want, got) != 0) {
            fprintf(stderr, "resumed at cut %zu differs%s:\n%s---\n%s", cut,
                    bad ? " (bad offset)" : "", want, got);
            ok = 0;
        }
        free(got);
    }
    free(want);
    return ok;
}

/* Checks the records of a literal, then that every chunking agrees. */
#define EXPECT_MAX(in, max, want)                                              \
    do {                                                                       \
        char *got_ = parse_mode(in, sizeof(in) - 1, max, ONE_CHUNK, 0, 0);     \
        CHECK_STR(got_, want);                                                 \
        CHECK(same_all_ways(in, sizeof(in) - 1, max, 0));                      \
        free(got_);                                                            \
    } while (0)
#define EXPECT(in, want) EXPECT_MAX(in, 0, want)

static void test_basic(void)
{
    EXPECT("a,b,c\n1,2,3\n", "R1:[a][b][c]\nR2:[1][2][3]\n");
    EXPECT("a,b\n1,2", "R1:[a][b]\nR2:[1][2]\n");
    EXPECT("a,b\r\n1,2\r\n", "R1:[a][b]\nR2:[1][2]\n");
    EXPECT("a,b\r\n1,2\n3,4\r\n", "R1:[a][b]\nR2:[1][2]\nR3:[3][4]\n");
    EXPECT("", "");
    EXPECT("x", "R1:[x]\n");
    EXPECT(",\n", "R1:[][]\n");
    EXPECT(",,\n,", "R1:[][][]\nR2:[][]\n");
    EXPECT("\"\"\n", "R1:[]\n");
    EXPECT("a,\"\"\n", "R1:[a][]\n");
}

static void test_quotes(void)
{
    EXPECT("\"a,b\",c\n", "R1:[a,b][c]\n");
    EXPECT("\"say \"\"hi\"\"\",x\n", "R1:[say \"hi\"][x]\n");
    EXPECT("\"\"\"\"\n", "R1:[\"]\n");
    EXPECT("h\n\"line1\nline2\",b\nnext\n",
           "R1:[h]\nR2:[line1\\nline2][b]\nR4:[next]\n");
    EXPECT("h\r\n\"a\r\nb\",c\r\nd\r\n", "R1:[h]\nR2:[a\\r\\nb][c]\nR4:[d]\n");
    EXPECT("\"a\"\r\n", "R1:[a]\n");
    EXPECT("\"a\"", "R1:[a]\n");
    /* A quote that does not open a field is data. */
    EXPECT("5'10\",x\n", "R1:[5'10\"][x]\n");
    EXPECT(" \"a\",b\n", "R1:[ \"a\"][b]\n");
    EXPECT("\"\n\n\"\nz\n", "R1:[\\n\\n]\nR4:[z]\n");
}

static void test_blank_lines(void)
{
    EXPECT("\n\na\n\nb\n\n", "R3:[a]\nR5:[b]\n");
    EXPECT("\r\n\r\na,b\r\n\r\nc,d\r\n", "R3:[a][b]\nR5:[c][d]\n");
    EXPECT("\n", "");
    EXPECT("\r", "");
    /* A line of blanks is a record of one field, not an empty line. */
    EXPECT(" \n", "R1:[ ]\n");
}

static void test_bare_cr(void)
{
    /* RFC 4180 ends lines with CRLF; a lone CR is kept as data. */
    EXPECT("a\rb,c\n", "R1:[a\\rb][c]\n");
    EXPECT("\rx\n", "R1:[\\rx]\n");
    EXPECT("a\r\r\n", "R1:[a\\r]\n");
    EXPECT("a,\rb\n", "R1:[a][\\rb]\n");
    EXPECT("a\r", "R1:[a]\n");
    EXPECT("\"a\"\rb\nc\n", "E1:text after closing quote in field 1\nR2:[c]\n");
}

static void test_bom(void)
{
    EXPECT("\xEF\xBB\xBF"
           "a,b\n1,2\n",
           "R1:[a][b]\nR2:[1][2]\n");
    EXPECT("\xEF\xBB\xBF", "");
    EXPECT("\xEF\xBB\xBF\n\nx\n", "R3:[x]\n");
    /* Only the first bytes can be a BOM; a later one is data. */
    EXPECT("a\n\xEF\xBB\xBF"
           "b\n",
           "R1:[a]\nR2:[\\xEF\\xBB\\xBFb]\n");
    /* A BOM cut short is not one: its bytes are (invalid) data. */
    EXPECT("\xEF\xBB"
           "a\nb\n",
           "E1:invalid UTF-8 in field 1\nR2:[b]\n");
    EXPECT("\xEF", "E1:invalid UTF-8 in field 1\n");
}

static void test_delimiter(void)
{
    EXPECT("a;b;c\n1;2,5;3\n", "R1:[a][b][c]\nR2:[1][2,5][3]\n");
    EXPECT("a\tb\n1\t2\n", "R1:[a][b]\nR2:[1][2]\n");
    EXPECT("a,b;c;d\n", "R1:[a,b][c][d]\n");
    /* Delimiters inside quotes are not counted. */
    EXPECT("\"a;b;c\",d\n", "R1:[a;b;c][d]\n");
    EXPECT("\"a,b,c\";d\n", "R1:[a,b,c][d]\n");
    /* A tie goes to the comma, and so does a single column. */
    EXPECT("a,b;c\n", "R1:[a][b;c]\n");
    EXPECT("a\n1;2\n", "R1:[a]\nR2:[1;2]\n");

    struct log l = {0};
    pv_csv *p = pv_csv_new(0, on_record, on_error, &l);
    CHECK_INT(pv_csv_delimiter(p), 0);
    pv_csv_feed(p, "\n\nx;y", 5);
    CHECK_INT(pv_csv_delimiter(p), 0);
    CHECK_INT(pv_csv_offset(p), 2);
    CHECK_INT(pv_csv_line(p), 3);
    pv_csv_feed(p, "\n", 1);
    CHECK_INT(pv_csv_delimiter(p), ';');
    pv_csv_free(p);
    free(l.s);
}

static void test_unterminated_quote(void)
{
    EXPECT("a\n\"b,c\nd\n", "R1:[a]\nE2:unterminated quote\n");
    /* The error names the line the quote opened on, not the record's. */
    EXPECT("h\np,\"q\nr\",\"t\nu", "R1:[h]\nE3:unterminated quote\n");
    EXPECT("\"", "E1:unterminated quote\n");
    EXPECT("a,\"b\"\"", "E1:unterminated quote\n");
}

static void test_text_after_quote(void)
{
    EXPECT("\"a\"b,c\nx\n", "E1:text after closing quote in field 1\nR2:[x]\n");
    EXPECT("a,\"b\" ,c\nx\n",
           "E1:text after closing quote in field 2\nR2:[x]\n");
    /* After the error the rest is unquoted, so its quotes are data and the
     * record ends at the line end. */
    EXPECT("\"He said \"hi\" there\",x\ny\n",
           "E1:text after closing quote in field 1\nR2:[y]\n");
    EXPECT("\"a\"\"b\"c\n", "E1:text after closing quote in field 1\n");
}

static void test_utf8(void)
{
    EXPECT("caf\xC3\xA9,\xE2\x82\xAC,\xF0\x9F\x98\x80,\xF4\x8F\xBF\xBF\n",
           "R1:[caf\\xC3\\xA9][\\xE2\\x82\\xAC][\\xF0\\x9F\\x98\\x80]"
           "[\\xF4\\x8F\\xBF\\xBF]\n");
    EXPECT("\xC0\x80\n", "E1:invalid UTF-8 in field 1\n");
    EXPECT("a,\xC1\xBF\n", "E1:invalid UTF-8 in field 2\n");
    EXPECT("a,b,\xE0\x80\x80\n", "E1:invalid UTF-8 in field 3\n");
    EXPECT("\xF0\x80\x80\x80\n", "E1:invalid UTF-8 in field 1\n");
    EXPECT("\xED\xA0\x80\n", "E1:invalid UTF-8 in field 1\n");
    EXPECT("\xED\xBF\xBF\n", "E1:invalid UTF-8 in field 1\n");
    EXPECT("\xED\x9F\xBF\n", "R1:[\\xED\\x9F\\xBF]\n");
    EXPECT("\xF4\x90\x80\x80\n", "E1:invalid UTF-8 in field 1\n");
    EXPECT("\xF5\x80\x80\x80\n", "E1:invalid UTF-8 in field 1\n");
    EXPECT("\xFF\n", "E1:invalid UTF-8 in field 1\n");
    EXPECT("\x80\n", "E1:invalid UTF-8 in field 1\n");
    /* Sequences cut short by the field end, a delimiter or a quote. */
    EXPECT("a,\xE2\x82\n", "E1:invalid UTF-8 in field 2\n");
    EXPECT("\xE2\x82,\xAC\n", "E1:invalid UTF-8 in field 1\n");
    EXPECT("x,\"\xC3\"\"\xA9\"\n", "E1:invalid UTF-8 in field 2\n");
    EXPECT("\xC3", "E1:invalid UTF-8 in field 1\n");
    /* The bad record is skipped and the next one read. */
    EXPECT("ok\n\xC3(\nfine\n",
           "R1:[ok]\nE2:invalid UTF-8 in field 1\nR3:[fine]\n");
    /* A NUL is valid UTF-8 and spans carry lengths, so it is kept. */
    EXPECT("a\0b,c\n", "R1:[a\\x00b][c]\n");
}

static void test_too_long(void)
{
    EXPECT_MAX("0123456789\n", 10, "R1:[0123456789]\n");
    EXPECT_MAX("0123456789\r\n", 10, "R1:[0123456789]\n");
    EXPECT_MAX("01234,6789\n", 10, "R1:[01234][6789]\n");
    EXPECT_MAX("0123456789A\nok\n", 10,
               "E1:record longer than 10 bytes\nR2:[ok]\n");
    /* Quotes count: the limit is on the bytes of the file. */
    EXPECT_MAX("\"01234567\"\n\"012345678\"\nok", 10,
               "R1:[01234567]\nE2:record longer than 10 bytes\nR3:[ok]\n");
    /* A long quoted field with line breaks still ends where it should. */
    EXPECT_MAX("a\n\"0123\n4567\n89AB\",x\nok\n", 10,
               "R1:[a]\nE2:record longer than 10 bytes\nR5:[ok]\n");
    EXPECT_MAX("a\n\"0123\n4567\n89AB", 10,
               "R1:[a]\nE2:record longer than 10 bytes\n");
    /* The first record is over the limit before the delimiter is known. */
    EXPECT_MAX("aaaaaaaaaaaaaaaaaaaa;b\nc;d\n", 10,
               "E1:record longer than 10 bytes\nR2:[c;d]\n");
    /* Detection looks no further than the limit, so a delimiter first seen
     * past it is not chosen. */
    EXPECT_MAX("aaaaaaaaaaaa;b;c\nc;d\n", 10,
               "E1:record longer than 10 bytes\nR2:[c;d]\n");
    EXPECT_MAX("x\n", 1, "R1:[x]\n");
    EXPECT_MAX("xy\nz\n", 1, "E1:record longer than 1 bytes\nR2:[z]\n");

    /* The default ceiling is 1 MiB. */
    size_t n = 1024 * 1024 + 1;
    char *big = malloc(n + 4);
    memset(big, 'x', n);
    memcpy(big + n, "\nok\n", 4);
    char *got = parse_mode(big, n + 4, 0, RANDOM_CHUNKS, 7, 0);
    CHECK_STR(got, "E1:record longer than 1048576 bytes\nR2:[ok]\n");
    free(got);
    got = parse_mode(big, n - 1, 0, ONE_CHUNK, 0, 0);
    CHECK(got && strlen(got) == n - 1 + 6);
    free(got);
    free(big);
}

static void test_offsets(void)
{
    struct log l = {0};
    pv_csv *p = pv_csv_new(0, on_record, on_error, &l);
    l.p = p;
    l.with_offsets = 1;
    CHECK_INT(pv_csv_offset(p), 0);
    CHECK_INT(pv_csv_feed(p, "a,b\r\n\"c\nd\",e\nf", 14), 0);
    CHECK_INT(pv_csv_offset(p), 13);
    CHECK_INT(pv_csv_line(p), 4);
    CHECK_INT(pv_csv_finish(p), 0);
    CHECK_INT(pv_csv_offset(p), 14);
    CHECK_STR(l.s, "R1@5/2:[a][b]\nR2@13/4:[c\\nd][e]\nR4@14/4:[f]\n");
    CHECK_INT(pv_csv_feed(p, "x", 1), PV_ESTATE);
    CHECK_INT(pv_csv_finish(p), 0);
    pv_csv_free(p);
    free(l.s);

    /* A BOM alone is consumed; resuming past it must not look for one. */
    memset(&l, 0, sizeof l);
    p = pv_csv_new(0, on_record, on_error, &l);
    pv_csv_feed(p, "\xEF\xBB\xBF", 3);
    CHECK_INT(pv_csv_offset(p), 3);
    pv_csv_free(p);
}

static void test_stop(void)
{
    /* A callback stop leaves the rest unconsumed; feeding again from the
     * offset picks up where it stopped, in the main machine... */
    struct log l = {0};
    l.stop_at = 2;
    pv_csv *p = pv_csv_new(0, on_record, on_error, &l);
    const char *in = "a,b\nc,d\ne,f\n";
    CHECK_INT(pv_csv_feed(p, in, 12), 1);
    CHECK_INT(pv_csv_offset(p), 8);
    CHECK_INT(pv_csv_line(p), 3);
    CHECK_INT(pv_csv_feed(p, in + 8, 4), 0);
    CHECK_INT(pv_csv_finish(p), 0);
    CHECK_STR(l.s, "R1:[a][b]\nR2:[c][d]\nR3:[e][f]\n");
    pv_csv_free(p);
    free(l.s);

    /* ...and while the first record is replayed after detection. */
    memset(&l, 0, sizeof l);
    l.stop_at = 1;
    p = pv_csv_new(0, on_record, on_error, &l);
    CHECK_INT(pv_csv_feed(p, in, 12), 1);
    CHECK_INT(pv_csv_offset(p), 4);
    CHECK_INT(pv_csv_feed(p, in + 4, 8), 0);
    CHECK_INT(pv_csv_finish(p), 0);
    CHECK_STR(l.s, "R1:[a][b]\nR2:[c][d]\nR3:[e][f]\n");
    pv_csv_free(p);
    free(l.s);

    /* Detection takes a quote after any candidate delimiter as opening a
     * field, so it can see one record where the chosen delimiter makes two;
     * a stop in that replay at finish leaves the rest to feed again. */
    memset(&l, 0, sizeof l);
    l.stop_at = 1;
    p = pv_csv_new(0, on_record, on_error, &l);
    CHECK_INT(pv_csv_feed(p, "a,b;\"c\nd,e", 11), 0);
    CHECK_INT(pv_csv_delimiter(p), 0);
    CHECK_INT(pv_csv_finish(p), 1);
    CHECK_INT(pv_csv_offset(p), 7);
    CHECK_INT(pv_csv_feed(p, "d,e", 3), 0);
    CHECK_INT(pv_csv_finish(p), 0);
    CHECK_STR(l.s, "R1:[a][b;\"c]\nR2:[d][e]\n");
    pv_csv_free(p);
    free(l.s);

    /* A stop from the last record, delivered by finish. */
    memset(&l, 0, sizeof l);
    l.stop_at = 1;
    p = pv_csv_new(0, on_record, on_error, &l);
    CHECK_INT(pv_csv_feed(p, "a;b", 3), 0);
    CHECK_INT(pv_csv_finish(p), 1);
    CHECK_INT(pv_csv_offset(p), 3);
    pv_csv_free(p);
    free(l.s);
}

static void test_resume(void)
{
    /* Resuming with the delimiter known skips detection and the BOM. */
    struct log l = {0};
    pv_csv *p = pv_csv_new(0, on_record, on_error, &l);
    pv_csv_resume(p, ';', 7, 100);
    pv_csv_feed(p, "a,b;c\n", 6);
    CHECK_INT(pv_csv_offset(p), 106);
    CHECK_INT(pv_csv_line(p), 8);
    pv_csv_finish(p);
    CHECK_STR(l.s, "R7:[a,b][c]\n");
    pv_csv_free(p);
    free(l.s);

    /* A quote or line end cannot be a delimiter: asking for one detects. */
    memset(&l, 0, sizeof l);
    p = pv_csv_new(0, on_record, on_error, &l);
    pv_csv_resume(p, '"', 3, 10);
    pv_csv_feed(p, "a;b\n", 4);
    CHECK_INT(pv_csv_delimiter(p), ';');
    pv_csv_finish(p);
    CHECK_STR(l.s, "R3:[a][b]\n");
    pv_csv_free(p);
    free(l.s);
    pv_csv_free(NULL);

    /* Resuming at 0 with no delimiter is a fresh start. */
    memset(&l, 0, sizeof l);
    p = pv_csv_new(0, on_record, on_error, &l);
    pv_csv_resume(p, 0, 1, 0);
    pv_csv_feed(p, "\xEF\xBB\xBFx\ty\n", 7);
    pv_csv_finish(p);
    CHECK_STR(l.s, "R1:[x][y]\n");
    pv_csv_free(p);
    free(l.s);
}

/* Reads a corpus file; the path is relative to the shared directory. */
static char *read_shared(const char *name, size_t *len)
{
    const char *dir = getenv("PV_SHARED_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "../../../shared", name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return NULL;
    }
    size_t cap = 1 << 16, n = 0, got;
    char *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb)
                free(buf);
            buf = nb;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

struct shape {
    long nrec, nerr, first_line, last_line;
    size_t nfields;
    int ragged;
};

static int shape_record(void *ud, long line, const pv_span *f, size_t n)
{
    struct shape *s = ud;
    (void)f;
    if (s->nrec == 0) {
        s->nfields = n;
        s->first_line = line;
    } else if (n != s->nfields) {
        s->ragged = 1;
    }
    if (line != s->last_line + 1)
        s->ragged = 1;
    s->last_line = line;
    s->nrec++;
    return 0;
}

static void shape_error(void *ud, long line, const char *reason)
{
    struct shape *s = ud;
    fprintf(stderr, "corpus error at line %ld: %s\n", line, reason);
    s->nerr++;
}

static void test_corpus(void)
{
    static const struct {
        const char *name;
        long lines;
        size_t fields;
    } files[] = {
        {"corpus/csv/synthea_conditions_head300.csv", 301, 6},
        {"corpus/csv/synthea_encounters_head200.csv", 201, 15},
        {"corpus/csv/synthea_medications_head300.csv", 301, 13},
        {"corpus/csv/synthea_observations_head300.csv", 301, 9},
        {"corpus/csv/synthea_observations_laboratory.csv", 252, 9},
        {"corpus/csv/synthea_patients.csv", 28, 25},
    };
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        size_t len;
        char *in = read_shared(files[k].name, &len);
        CHECK(in != NULL);
        if (!in)
            continue;
        struct shape s = {0};
        pv_csv *p = pv_csv_new(0, shape_record, shape_error, &s);
        CHECK_INT(pv_csv_feed(p, in, len), 0);
        CHECK_INT(pv_csv_finish(p), 0);
        CHECK_INT(pv_csv_delimiter(p), ',');
        CHECK_INT(pv_csv_offset(p), len);
        pv_csv_free(p);
        CHECK_INT(s.nrec, files[k].lines);
        CHECK_INT(s.nerr, 0);
        CHECK_INT(s.nfields, files[k].fields);
        CHECK_INT(s.first_line, 1);
        CHECK_INT(s.ragged, 0);
        CHECK(same_all_ways(in, len, 0, 40));

        /* The same file with CRLF, ';' or TAB, and every field quoted, must
         * give the same fields. These extracts quote nothing and hold no
         * ';', TAB or quote, so the rewrites are plain substitutions. */
        char *want = parse_mode(in, len, 0, ONE_CHUNK, 0, 0);
        static const char *seps[] = {";", "\t", "\",\""};
        for (size_t v = 0; v < 4; v++) {
            char *alt = malloc(len * 3 + 2);
            size_t n = 0;
            if (v == 2)
                alt[n++] = '"';
            for (size_t i = 0; i < len; i++) {
                if (in[i] == ',' && v < 3) {
                    memcpy(alt + n, seps[v], strlen(seps[v]));
                    n += strlen(seps[v]);
                } else if (in[i] == '\n' && v == 2) {
                    memcpy(alt + n, "\"\n", 2);
                    n += 2;
                    if (i + 1 < len)
                        alt[n++] = '"';
                } else if (in[i] == '\n' && v == 3) {
                    memcpy(alt + n, "\r\n", 2);
                    n += 2;
                } else {
                    alt[n++] = in[i];
                }
            }
            char *got = parse_mode(alt, n, 0, RANDOM_CHUNKS, 99 + v, 0);
            CHECK_STR(got, want);
            free(got);
            free(alt);
        }
        free(want);
        free(in);
    }
}

/* Writes random records the way a careful producer would, tracking the
 * expected log as it goes, and checks the parser reads them back. */
static void test_generated(void)
{
    static const char *atoms[] = {"a",
                                  "Z",
                                  "0",
                                  " ",
                                  ",",
                                  ";",
                                  "\t",
                                  "\"",
                                  "\r",
                                  "\n",
                                  "\xC3\xA9",
                                  "\xE2\x82\xAC",
                                  "\xF0\x9F\x98\x80",
                                  "''",
                                  "x y"};
    static const char delims[] = {',', ';', '\t'};
    uint32_t rs = 2026;
    for (int round = 0; round < 200; round++) {
        struct log want = {0}, text = {0};
        char d = delims[rng_next(&rs) % 3];
        const char *eol = rng_next(&rs) % 2 ? "\r\n" : "\n";
        long line = 1;
        int nrec = 1 + (int)(rng_next(&rs) % 8);
        for (int r = 0; r < nrec; r++) {
            while (rng_next(&rs) % 4 == 0) {
                log_str(&text, eol);
                line++;
            }
            /* The first record needs two fields for detection to see the
             * delimiter. */
            int nf = (r == 0 ? 2 : 1) + (int)(rng_next(&rs) % 5);
            log_str(&want, "R");
            log_num(&want, (unsigned long long)line);
            log_str(&want, ":");
            for (int f = 0; f < nf; f++) {
                char field[64];
                size_t fl = 0;
                int na = (int)(rng_next(&rs) % 5);
                for (int a = 0; a < na; a++) {
                    const char *atom =
                        atoms[rng_next(&rs) % (sizeof atoms / sizeof *atoms)];
                    memcpy(field + fl, atom, strlen(atom));
                    fl += strlen(atom);
                }
                /* Quoting is needed for specials, for a lone empty field
                 * (else it is a blank line), and is sometimes just used. */
                int quote = (nf == 1 && fl == 0) || rng_next(&rs) % 3 == 0;
                for (size_t i = 0; i < fl; i++)
                    if (strchr(",;\t\"\r\n", field[i]))
                        quote = 1;
                if (f)
                    log_bytes(&text, &d, 1);
                if (quote)
                    log_str(&text, "\"");
                for (size_t i = 0; i < fl; i++) {
                    if (field[i] == '"')
                        log_str(&text, "\"");
                    if (field[i] == '\n')
                        line++;
                    log_bytes(&text, field + i, 1);
                }
                if (quote)
                    log_str(&text, "\"");
                log_str(&want, "[");
                log_field(&want, field, fl);
                log_str(&want, "]");
            }
            log_str(&want, "\n");
            if (r + 1 < nrec || rng_next(&rs) % 2) {
                log_str(&text, eol);
                line++;
            }
        }
        log_str(&text, "");
        char *got = parse_mode(text.s, text.len, 0, RANDOM_CHUNKS, rs, 0);
        CHECK_STR(got, want.s);
        CHECK(same_all_ways(text.s, text.len, 0, 30));
        free(got);
        free(want.s);
        free(text.s);
    }
}

int main(void)
{
    test_basic();
    test_quotes();
    test_blank_lines();
    test_bare_cr();
    test_bom();
    test_delimiter();
    test_unterminated_quote();
    test_text_after_quote();
    test_utf8();
    test_too_long();
    test_offsets();
    test_stop();
    test_resume();
    test_corpus();
    test_generated();
    return pv_test_report();
}

/* test_mllp: the MLLP framer, fed whole, byte by byte and split at every
 * point, with the faults a peer can cause. */
#include "mllp.h"
#include "test.h"

#include <stdlib.h>

struct rec {
    int n;
    char msgs[8][512];
    size_t lens[8];
    int faults;
    pv_mllp_fault kinds[8];
    size_t bytes[8];
    char reasons[8][160];
    int stop_at; /* on_message returns 7 at this message, when > 0 */
    pv_mllp *f;  /* the framer, for pv_mllp_fault_head */
    char heads[8][64];
};

static int on_message(void *ud, pv_span msg)
{
    struct rec *r = ud;
    if (r->n < 8) {
        size_t n = msg.len < 511 ? msg.len : 511;
        memcpy(r->msgs[r->n], msg.ptr, n);
        r->msgs[r->n][n] = '\0';
        r->lens[r->n] = msg.len;
    }
    r->n++;
    return r->stop_at && r->n == r->stop_at ? 7 : 0;
}

static void on_error(void *ud, pv_mllp_fault fault, size_t bytes,
                     const char *reason)
{
    struct rec *r = ud;
    if (r->faults < 8) {
        r->kinds[r->faults] = fault;
        r->bytes[r->faults] = bytes;
        snprintf(r->reasons[r->faults], sizeof r->reasons[0], "%s", reason);
        pv_span h = r->f ? pv_mllp_fault_head(r->f) : (pv_span){NULL, 0};
        size_t n = h.len < 63 ? h.len : 63;
        if (n)
            memcpy(r->heads[r->faults], h.ptr, n);
        r->heads[r->faults][n] = '\0';
    }
    r->faults++;
}

static const pv_mllp_callbacks cbs = {on_message, on_error};

/* Feeds s in chunks of 'chunk' bytes (0 = all at once). */
static struct rec feed(const char *s, size_t len, size_t max, size_t chunk,
                       int *finish_rc)
{
    struct rec r;
    memset(&r, 0, sizeof r);
    pv_mllp *f = pv_mllp_new(max, &cbs, &r);
    CHECK(f != NULL);
    if (!f)
        return r;
    r.f = f;
    if (chunk == 0)
        chunk = len ? len : 1;
    for (size_t i = 0; i < len; i += chunk) {
        size_t n = len - i < chunk ? len - i : chunk;
        CHECK_INT(pv_mllp_feed(f, s + i, n), 0);
    }
    int rc = pv_mllp_finish(f);
    if (finish_rc)
        *finish_rc = rc;
    pv_mllp_free(f);
    return r;
}

#define FEED(lit, max, chunk, rc)                                              \
    feed((lit), sizeof(lit) - 1, (max), (chunk), (rc))

#define MSG_A "MSH|^~\\&|A|B|C|D|2026||ORU^R01|1|P|2.5\rPID|1||P1\r"
#define MSG_B "MSH|^~\\&|A|B|C|D|2026||ORU^R01|2|P|2.5\rOBX|1|NM|x||5\r"

static void test_basic(void)
{
    int rc = -1;
    struct rec r = FEED("\x0b" MSG_A "\x1c\r", 0, 0, &rc);
    CHECK_INT(r.n, 1);
    CHECK_STR(r.msgs[0], MSG_A);
    CHECK_INT(r.faults, 0);
    CHECK_INT(rc, 0);

    /* Byte by byte gives the same. */
    r = FEED("\x0b" MSG_A "\x1c\r", 0, 1, &rc);
    CHECK_INT(r.n, 1);
    CHECK_STR(r.msgs[0], MSG_A);
    CHECK_INT(r.faults, 0);

    /* Two messages in one chunk, with the LF some senders add between. */
    r = FEED("\x0b" MSG_A "\x1c\r\n\x0b" MSG_B "\x1c\r", 0, 0, &rc);
    CHECK_INT(r.n, 2);
    CHECK_STR(r.msgs[0], MSG_A);
    CHECK_STR(r.msgs[1], MSG_B);
    CHECK_INT(r.faults, 0);
    CHECK_INT(rc, 0);

    /* An empty frame is delivered as an empty message (parse rejects it). */
    r = FEED("\x0b\x1c\r", 0, 0, &rc);
    CHECK_INT(r.n, 1);
    CHECK_INT(r.lens[0], 0);
}

/* Every split of a two-frame stream into two chunks gives the same
 * messages. */
static void test_every_split(void)
{
    const char s[] = "junk\x0b" MSG_A "\x1c\r\x0b" MSG_B "\x1c\r";
    size_t len = sizeof s - 1;
    int bad = 0;
    for (size_t k = 0; k <= len; k++) {
        struct rec r;
        memset(&r, 0, sizeof r);
        pv_mllp *f = pv_mllp_new(0, &cbs, &r);
        if (!f)
            return;
        pv_mllp_feed(f, s, k);
        pv_mllp_feed(f, s + k, len - k);
        int rc = pv_mllp_finish(f);
        pv_mllp_free(f);
        if (r.n != 2 || strcmp(r.msgs[0], MSG_A) || strcmp(r.msgs[1], MSG_B) ||
            rc != 0 || r.faults < 1 || r.kinds[0] != PV_MLLP_SKIPPED)
            bad++;
    }
    CHECK_INT(bad, 0);
}

static void test_incomplete(void)
{
    /* Missing trailing 0x0D: no message, incomplete at the end. */
    int rc = 0;
    struct rec r = FEED("\x0b" MSG_A "\x1c", 0, 0, &rc);
    CHECK_INT(r.n, 0);
    CHECK_INT(rc, PV_EAGAIN);
    /* No end at all. */
    r = FEED("\x0b" MSG_A, 0, 3, &rc);
    CHECK_INT(r.n, 0);
    CHECK_INT(rc, PV_EAGAIN);

    /* pending() shows the frame in progress; finish() resets. */
    struct rec q;
    memset(&q, 0, sizeof q);
    pv_mllp *f = pv_mllp_new(0, &cbs, &q);
    if (!f)
        return;
    CHECK_INT(pv_mllp_pending(f), 0);
    pv_mllp_feed(f,
                 "\x0b"
                 "abc",
                 4);
    CHECK_INT(pv_mllp_pending(f), 3);
    CHECK_INT(pv_mllp_finish(f), PV_EAGAIN);
    CHECK_INT(pv_mllp_pending(f), 0);
    CHECK_INT(pv_mllp_finish(f), 0);
    pv_mllp_feed(f,
                 "\x0b"
                 "abc\x1c\r",
                 6);
    CHECK_INT(q.n, 1);
    CHECK_STR(q.msgs[0], "abc");
    pv_mllp_free(f);
}

static void test_faults(void)
{
    int rc;
    /* Garbage before the start byte is skipped and reported. */
    struct rec r = FEED("GET / HTTP/1.0\r\n\x0b" MSG_A "\x1c\r", 0, 0, &rc);
    CHECK_INT(r.n, 1);
    CHECK_STR(r.msgs[0], MSG_A);
    CHECK_INT(r.faults, 1);
    CHECK_INT(r.kinds[0], PV_MLLP_SKIPPED);
    CHECK_INT(r.bytes[0], 16);
    CHECK_STR(r.reasons[0], "16 bytes outside a frame skipped");
    /* ... also when it ends the stream. */
    r = FEED("\x0b"
             "a\x1c\rxyz",
             0, 0, &rc);
    CHECK_INT(r.n, 1);
    CHECK_INT(r.faults, 1);
    CHECK_INT(r.bytes[0], 3);
    CHECK_INT(rc, 0);
    /* White space alone between frames is not a fault. */
    r = FEED("\r\n \x0b"
             "a\x1c\r\r\n",
             0, 1, &rc);
    CHECK_INT(r.n, 1);
    CHECK_INT(r.faults, 0);

    /* 0x1C must be followed by 0x0D. */
    r = FEED("\x0b"
             "abc\x1cX\x0b"
             "def\x1c\r",
             0, 0, &rc);
    CHECK_INT(r.n, 1);
    CHECK_STR(r.msgs[0], "def");
    CHECK(r.faults >= 1);
    CHECK_INT(r.kinds[0], PV_MLLP_BAD_FRAME);
    CHECK_STR(r.reasons[0], "0x1C followed by 0x58 instead of 0x0D; 3 bytes "
                            "dropped");
    /* The byte after 0x1C may start the next frame. */
    r = FEED("\x0b"
             "abc\x1c\x0b"
             "def\x1c\r",
             0, 1, &rc);
    CHECK_INT(r.n, 1);
    CHECK_STR(r.msgs[0], "def");
    CHECK_INT(r.faults, 1);

    /* A start byte inside a frame drops the frame so far. */
    r = FEED("\x0b"
             "abc\x0b"
             "def\x1c\r",
             0, 0, &rc);
    CHECK_INT(r.n, 1);
    CHECK_STR(r.msgs[0], "def");
    CHECK_INT(r.faults, 1);
    CHECK_INT(r.kinds[0], PV_MLLP_BAD_FRAME);
    CHECK_STR(r.reasons[0], "0x0B inside a frame; 3 bytes dropped");
}

static void test_oversize(void)
{
    int rc;
    /* At the ceiling is fine; one byte over is reported once. */
    struct rec r = FEED("\x0b"
                        "0123456789\x1c\r",
                        10, 0, &rc);
    CHECK_INT(r.n, 1);
    CHECK_INT(r.faults, 0);
    for (size_t chunk = 0; chunk <= 3; chunk++) {
        r = FEED("\x0b"
                 "0123456789A0123456789\x1c\r\x0b"
                 "ok\x1c\r",
                 10, chunk, &rc);
        CHECK_INT(r.n, 1);
        CHECK_STR(r.msgs[0], "ok");
        CHECK_INT(r.faults, 1);
        CHECK_INT(r.kinds[0], PV_MLLP_TOO_BIG);
        CHECK(r.bytes[0] > 10);
        CHECK_STR(r.reasons[0],
                  "message longer than 10 bytes; frame discarded");
        /* The report shows the start of the frame, up to the ceiling
         * (for the AR's MSA-2), however it arrived. */
        CHECK_STR(r.heads[0], "0123456789");
        CHECK_INT(rc, 0);
    }
    /* An oversized frame that never ends is incomplete at the end. */
    r = FEED("\x0b"
             "0123456789ABC",
             10, 0, &rc);
    CHECK_INT(r.faults, 1);
    CHECK_INT(rc, PV_EAGAIN);
    /* A 0x1C without 0x0D inside the discarded part does not end it. */
    r = FEED("\x0b"
             "0123456789AB\x1cZ\x1c\r\x0b"
             "ok\x1c\r",
             10, 0, &rc);
    CHECK_INT(r.n, 1);
    CHECK_STR(r.msgs[0], "ok");

    /* The default ceiling is 1 MiB, and memory stays bounded by it. */
    size_t n = PV_MLLP_MAX_MESSAGE + 4;
    char *big = malloc(n);
    if (!big)
        return;
    big[0] = 0x0b;
    memset(big + 1, 'x', n - 1);
    struct rec q;
    memset(&q, 0, sizeof q);
    pv_mllp *f = pv_mllp_new(0, &cbs, &q);
    if (f) {
        CHECK_INT(pv_mllp_feed(f, big, PV_MLLP_MAX_MESSAGE + 1), 0);
        CHECK_INT(q.faults, 0);
        CHECK_INT(pv_mllp_pending(f), PV_MLLP_MAX_MESSAGE);
        CHECK_INT(pv_mllp_feed(f, big + 1, 1), 0);
        CHECK_INT(q.faults, 1);
        CHECK_INT(q.kinds[0], PV_MLLP_TOO_BIG);
        CHECK_INT(pv_mllp_pending(f), 0);
        CHECK_INT(pv_mllp_fault_head(f).len, 0); /* only during the call */
        pv_mllp_free(f);
    }
    free(big);
}

static void test_stop(void)
{
    struct rec r;
    memset(&r, 0, sizeof r);
    r.stop_at = 1;
    pv_mllp *f = pv_mllp_new(0, &cbs, &r);
    if (!f)
        return;
    const char s[] = "\x0b"
                     "a\x1c\r\x0b"
                     "b\x1c\r";
    CHECK_INT(pv_mllp_feed(f, s, sizeof s - 1), 7);
    CHECK_INT(r.n, 1);
    pv_mllp_free(f);

    /* NULL callbacks are allowed. */
    pv_mllp *g = pv_mllp_new(0, NULL, NULL);
    if (g) {
        CHECK_INT(pv_mllp_feed(g,
                               "zz\x0b"
                               "a\x1c\r\x0b",
                               7),
                  0);
        CHECK_INT(pv_mllp_finish(g), PV_EAGAIN);
        pv_mllp_free(g);
    }
    pv_mllp_free(NULL);
}

static void test_wrap(void)
{
    char *out = NULL;
    size_t len = 0;
    pv_span m = {MSG_A, sizeof MSG_A - 1};
    CHECK_INT(pv_mllp_wrap(m, &out, &len), 0);
    CHECK_INT(len, m.len + 3);
    if (out) {
        CHECK_INT(out[0], 0x0b);
        CHECK(memcmp(out + 1, MSG_A, m.len) == 0);
        CHECK_INT(out[len - 2], 0x1c);
        CHECK_INT(out[len - 1], 0x0d);
        /* Round trip through the framer. */
        struct rec r = feed(out, len, 0, 1, NULL);
        CHECK_INT(r.n, 1);
        CHECK_STR(r.msgs[0], MSG_A);
        free(out);
    }
    pv_span e = {"", 0};
    CHECK_INT(pv_mllp_wrap(e, &out, &len), 0);
    CHECK_INT(len, 3);
    free(out);
    pv_span bad1 = {"a\x1c"
                    "b",
                    3};
    CHECK_INT(pv_mllp_wrap(bad1, &out, &len), PV_EINVAL);
    CHECK(out == NULL);
    pv_span bad2 = {"\x0b", 1};
    CHECK_INT(pv_mllp_wrap(bad2, &out, &len), PV_EINVAL);
}

int main(void)
{
    test_basic();
    test_every_split();
    test_incomplete();
    test_faults();
    test_oversize();
    test_stop();
    test_wrap();
    return pv_test_report();
}

/* fuzz_mllp: libFuzzer target for the MLLP framer. The input is the byte
 * stream of a connection; it is fed whole and again in chunks whose sizes
 * come from the input's hash, and both runs must deliver the same messages
 * and the same frame faults. Every message must fit the ceiling and survive
 * pv_mllp_wrap() and a second trip through a framer. During a TOO_BIG report
 * pv_mllp_fault_head() holds the frame's first bytes (the same in both runs),
 * and it is empty at any other time. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mllp.h"

#define REQUIRE(c)                                                             \
    do {                                                                       \
        if (!(c))                                                              \
            abort();                                                           \
    } while (0)

struct run {
    size_t max;
    uint64_t digest; /* order-sensitive hash of the messages */
    size_t count;
    size_t too_big, bad_frame;
    const char *expect; /* for the round trip: the one message expected */
    size_t expect_len;
    pv_mllp *f;             /* the framer, for pv_mllp_fault_head() */
    uint64_t heads;         /* order-sensitive hash of the fault heads */
    volatile unsigned sink; /* every byte of a fault head is read into it */
};

static uint64_t mix(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    return (h ^ n) * 1099511628211ULL;
}

/* Outside a TOO_BIG report the fault head is empty. */
static void require_no_head(const struct run *r)
{
    pv_span head = pv_mllp_fault_head(r->f);
    REQUIRE(head.len == 0);
}

static int on_roundtrip(void *ud, pv_span msg)
{
    struct run *r = ud;
    require_no_head(r);
    REQUIRE(msg.len == r->expect_len);
    REQUIRE(msg.len == 0 || memcmp(msg.ptr, r->expect, msg.len) == 0);
    r->count++;
    return 0;
}

static void on_error(void *ud, pv_mllp_fault fault, size_t bytes,
                     const char *reason)
{
    struct run *r = ud;
    REQUIRE(reason && reason[0]);
    if (fault == PV_MLLP_TOO_BIG) {
        REQUIRE(bytes > r->max);
        r->too_big++;
        pv_span head = pv_mllp_fault_head(r->f);
        REQUIRE(head.len > 0 && head.len <= r->max && head.ptr);
        unsigned sum = 0;
        for (size_t i = 0; i < head.len; i++)
            sum += (unsigned char)head.ptr[i];
        r->sink += sum;
        REQUIRE(memchr(head.ptr, PV_MLLP_START, head.len) == NULL);
        REQUIRE(memchr(head.ptr, PV_MLLP_END, head.len) == NULL);
        r->heads = mix(r->heads, head.ptr, head.len);
        return;
    }
    require_no_head(r);
    if (fault == PV_MLLP_BAD_FRAME) {
        r->bad_frame++;
    } else {
        REQUIRE(fault == PV_MLLP_SKIPPED && bytes > 0);
    }
}

static int on_message(void *ud, pv_span msg)
{
    struct run *r = ud;
    require_no_head(r);
    REQUIRE(msg.len <= r->max);
    REQUIRE(memchr(msg.ptr, PV_MLLP_START, msg.len) == NULL);
    REQUIRE(memchr(msg.ptr, PV_MLLP_END, msg.len) == NULL);
    r->digest = mix(r->digest, msg.ptr, msg.len);
    r->count++;

    char *w = NULL;
    size_t wl = 0;
    REQUIRE(pv_mllp_wrap(msg, &w, &wl) == 0 && wl == msg.len + 3);
    struct run rt = {r->max, 0, 0, 0, 0, msg.ptr, msg.len, NULL, 0, 0};
    pv_mllp_callbacks cb = {on_roundtrip, on_error};
    pv_mllp *f = pv_mllp_new(r->max, &cb, &rt);
    REQUIRE(f);
    rt.f = f;
    REQUIRE(pv_mllp_feed(f, w, wl) == 0);
    require_no_head(&rt);
    REQUIRE(pv_mllp_finish(f) == 0);
    require_no_head(&rt);
    REQUIRE(rt.count == 1 && rt.too_big == 0 && rt.bad_frame == 0);
    pv_mllp_free(f);
    free(w);
    return 0;
}

/* libFuzzer's entry point (and replay.c's). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    uint64_t h = mix(14695981039346656037ULL, in, size);
    /* Small ceilings half the time, so that fuzz inputs reach them. */
    size_t max = h & 1 ? 1 + (h >> 8) % 64 : 0;
    pv_mllp_callbacks cb = {on_message, on_error};

    struct run whole = {max ? max : PV_MLLP_MAX_MESSAGE,
                        14695981039346656037ULL,
                        0,
                        0,
                        0,
                        NULL,
                        0,
                        NULL,
                        14695981039346656037ULL,
                        0};
    pv_mllp *f = pv_mllp_new(max, &cb, &whole);
    REQUIRE(f);
    whole.f = f;
    REQUIRE(pv_mllp_feed(f, in, size) == 0);
    require_no_head(&whole);
    int rc_whole = pv_mllp_finish(f);
    require_no_head(&whole);
    pv_mllp_free(f);

    struct run parts = whole;
    parts.digest = parts.heads = 14695981039346656037ULL;
    parts.count = parts.too_big = parts.bad_frame = 0;
    f = pv_mllp_new(max, &cb, &parts);
    REQUIRE(f);
    parts.f = f;
    uint64_t s = h | 1;
    for (size_t i = 0; i < size;) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        size_t n = 1 + s % 7;
        if (n > size - i)
            n = size - i;
        REQUIRE(pv_mllp_feed(f, in + i, n) == 0);
        require_no_head(&parts);
        i += n;
    }
    int rc_parts = pv_mllp_finish(f);
    require_no_head(&parts);
    pv_mllp_free(f);

    REQUIRE(rc_whole == rc_parts);
    REQUIRE(rc_whole == 0 || rc_whole == PV_EAGAIN);
    REQUIRE(whole.count == parts.count && whole.digest == parts.digest);
    REQUIRE(whole.too_big == parts.too_big);
    REQUIRE(whole.bad_frame == parts.bad_frame);
    REQUIRE(whole.heads == parts.heads);
    return 0;
}

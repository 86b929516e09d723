/* mllp: see mllp.h. */
#include "mllp.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum state {
    OUTSIDE, /* between frames, waiting for 0x0B */
    INSIDE,  /* collecting a message */
    GOT_FS,  /* saw 0x1C, waiting for 0x0D */
    DISCARD, /* dropping the rest of an oversized frame */
    DISCARD_FS,
};

struct pv_mllp {
    pv_mllp_callbacks cb;
    void *ud;
    size_t max;
    enum state st;
    char *buf;
    size_t len, cap;
    size_t skipped;       /* bytes outside frames not yet reported */
    bool skipped_visible; /* some of them were not white space */
    pv_span head;         /* during a TOO_BIG report: the frame's start */
};

pv_mllp *pv_mllp_new(size_t max_message, const pv_mllp_callbacks *cb, void *ud)
{
    pv_mllp *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    if (cb)
        f->cb = *cb;
    f->ud = ud;
    f->max = max_message ? max_message : PV_MLLP_MAX_MESSAGE;
    f->st = OUTSIDE;
    return f;
}

void pv_mllp_free(pv_mllp *f)
{
    if (!f)
        return;
    free(f->buf);
    free(f);
}

static void report(pv_mllp *f, pv_mllp_fault fault, size_t bytes,
                   const char *reason)
{
    if (f->cb.on_error)
        f->cb.on_error(f->ud, fault, bytes, reason);
}

/* White space between frames is what many senders put after 0x1C 0x0D (an
 * extra LF), so it is skipped quietly; anything else is reported, once per
 * run of skipped bytes. */
static void flush_skipped(pv_mllp *f)
{
    if (f->skipped && f->skipped_visible) {
        char why[96];
        snprintf(why, sizeof why, "%zu bytes outside a frame skipped",
                 f->skipped);
        report(f, PV_MLLP_SKIPPED, f->skipped, why);
    }
    f->skipped = 0;
    f->skipped_visible = false;
}

static void start_frame(pv_mllp *f)
{
    flush_skipped(f);
    f->len = 0;
    f->st = INSIDE;
}

static int grow_copy(pv_mllp *f, const char *p, size_t n);

/* Appends n bytes of message, growing the buffer up to the ceiling. */
static int append(pv_mllp *f, const char *p, size_t n)
{
    if (n == 0)
        return 0;
    if (n > f->max - f->len) {
        size_t total = f->len + n;
        char why[128];
        snprintf(why, sizeof why,
                 "message longer than %zu bytes; frame discarded", f->max);
        /* Hold the frame's first max bytes while reporting: they start
         * with the MSH segment the answer names (pv_mllp_fault_head). */
        int rc = grow_copy(f, p, f->max - f->len);
        if (rc == 0)
            f->head = (pv_span){f->buf, f->len};
        report(f, PV_MLLP_TOO_BIG, total, why);
        f->head = (pv_span){NULL, 0};
        f->len = 0;
        f->st = DISCARD;
        return rc; /* PV_ENOMEM: reported, but without the frame's start */
    }
    return grow_copy(f, p, n);
}

/* Copies n bytes after what is held; len + n <= max. */
static int grow_copy(pv_mllp *f, const char *p, size_t n)
{
    if (n == 0)
        return 0;
    if (f->len + n > f->cap) {
        size_t cap = f->cap ? f->cap : 4096;
        while (cap < f->len + n)
            cap = cap > f->max / 2 ? f->max : cap * 2;
        char *b = realloc(f->buf, cap);
        if (!b) {
            f->len = 0;
            f->st = DISCARD;
            return PV_ENOMEM;
        }
        f->buf = b;
        f->cap = cap;
    }
    memcpy(f->buf + f->len, p, n);
    f->len += n;
    return 0;
}

int pv_mllp_feed(pv_mllp *f, const char *buf, size_t len)
{
    size_t i = 0;
    int result = 0;
    while (i < len) {
        unsigned char c = (unsigned char)buf[i];
        switch (f->st) {
        case OUTSIDE:
            if (c == PV_MLLP_START) {
                start_frame(f);
            } else {
                f->skipped++;
                if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
                    f->skipped_visible = true;
            }
            i++;
            break;
        case INSIDE: {
            /* Copy the run up to the next framing byte in one go. */
            size_t j = i;
            while (j < len && buf[j] != PV_MLLP_END && buf[j] != PV_MLLP_START)
                j++;
            /* Out of memory drops only this frame: the stream goes on. */
            if (append(f, buf + i, j - i))
                result = PV_ENOMEM;
            i = j;
            if (i == len || f->st != INSIDE)
                break;
            if (buf[i] == PV_MLLP_END) {
                f->st = GOT_FS;
            } else {
                char why[128];
                snprintf(why, sizeof why,
                         "0x0B inside a frame; %zu bytes dropped", f->len);
                report(f, PV_MLLP_BAD_FRAME, f->len, why);
                start_frame(f);
            }
            i++;
            break;
        }
        case GOT_FS:
            if (c == PV_MLLP_CR) {
                f->st = OUTSIDE;
                i++;
                pv_span msg = {f->buf ? f->buf : "", f->len};
                f->len = 0;
                if (f->cb.on_message) {
                    int rc = f->cb.on_message(f->ud, msg);
                    if (rc)
                        return rc;
                }
            } else {
                char why[128];
                snprintf(why, sizeof why,
                         "0x1C followed by 0x%02X instead of 0x0D; %zu "
                         "bytes dropped",
                         c, f->len);
                report(f, PV_MLLP_BAD_FRAME, f->len, why);
                f->len = 0;
                /* The byte is looked at again outside a frame: it may be the
                 * 0x0B of the next frame. */
                f->st = OUTSIDE;
            }
            break;
        case DISCARD:
        case DISCARD_FS:
            if (c == PV_MLLP_START) {
                start_frame(f);
            } else if (f->st == DISCARD_FS && c == PV_MLLP_CR) {
                f->st = OUTSIDE;
            } else {
                f->st = c == PV_MLLP_END ? DISCARD_FS : DISCARD;
            }
            i++;
            break;
        }
    }
    if (f->st == OUTSIDE)
        flush_skipped(f);
    return result;
}

int pv_mllp_finish(pv_mllp *f)
{
    bool open = f->st != OUTSIDE;
    flush_skipped(f);
    f->st = OUTSIDE;
    f->len = 0;
    return open ? PV_EAGAIN : 0;
}

size_t pv_mllp_pending(const pv_mllp *f)
{
    return f->st == INSIDE || f->st == GOT_FS ? f->len : 0;
}

int pv_mllp_wrap(pv_span msg, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (msg.len && (memchr(msg.ptr, PV_MLLP_START, msg.len) ||
                    memchr(msg.ptr, PV_MLLP_END, msg.len)))
        return PV_EINVAL;
    if (msg.len > (size_t)-1 - 3)
        return PV_ETOOBIG;
    char *b = malloc(msg.len + 3);
    if (!b)
        return PV_ENOMEM;
    b[0] = PV_MLLP_START;
    if (msg.len)
        memcpy(b + 1, msg.ptr, msg.len);
    b[msg.len + 1] = PV_MLLP_END;
    b[msg.len + 2] = PV_MLLP_CR;
    *out = b;
    *len = msg.len + 3;
    return 0;
}

pv_span pv_mllp_fault_head(const pv_mllp *f)
{
    return f->head;
}

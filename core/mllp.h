/* mllp: a pure, incremental MLLP framer: 0x0B message 0x1C 0x0D.
 *
 * Feed it the bytes of a connection in chunks of any size; it calls back
 * once per complete frame with the message inside (without the framing
 * bytes) and once per protocol fault. It keeps at most max_message bytes of
 * an unfinished frame, so a hostile peer cannot make it grow. It does not
 * touch sockets (engine.c owns them), does not parse HL7 (hl7.c does) and
 * calls nothing but its callbacks and the C allocator. Depends on error.h.
 *
 * Strictness: 0x1C must be followed directly by 0x0D; any other byte there is
 * a fault and the frame is dropped. A frame is only complete once its 0x0D
 * has arrived, so a peer that stops after 0x1C has sent an incomplete frame,
 * never a message. */
#ifndef PV_MLLP_H
#define PV_MLLP_H

#include <stddef.h>

#include "error.h"

#define PV_MLLP_START 0x0B /* VT: starts a frame */
#define PV_MLLP_END 0x1C   /* FS: ends the message */
#define PV_MLLP_CR 0x0D    /* CR: must follow FS */

/* Default ceiling of one message, the same as the engine configuration's
 * mllp.max_message default. */
#define PV_MLLP_MAX_MESSAGE ((size_t)1024 * 1024)

typedef struct pv_mllp pv_mllp;

/* Kinds of fault passed to on_error. */
typedef enum pv_mllp_fault {
    /* Bytes outside a frame were skipped (garbage before 0x0B, or between
     * frames). Harmless: framing goes on. */
    PV_MLLP_SKIPPED,
    /* The frame grew over max_message. It is reported once, as soon as the
     * ceiling is crossed, and its remaining bytes are discarded up to its
     * 0x1C 0x0D. The engine answers AR and closes the connection. */
    PV_MLLP_TOO_BIG,
    /* 0x1C was followed by a byte other than 0x0D, or 0x0B arrived inside a
     * frame. The frame so far is dropped; a 0x0B starts a new frame. */
    PV_MLLP_BAD_FRAME,
} pv_mllp_fault;

typedef struct pv_mllp_callbacks {
    /* Called once per complete frame. 'msg' is the message without 0x0B and
     * 0x1C 0x0D; its bytes are owned by the framer and valid only during the
     * call. Return 0 to go on; nonzero stops pv_mllp_feed(), which returns
     * that value and drops the rest of its chunk (use it when the connection
     * is about to close). Must not call pv_mllp_free() or pv_mllp_feed(). */
    int (*on_message)(void *ud, pv_span msg);
    /* Called once per fault; 'bytes' is how many bytes it concerns (skipped
     * bytes, the frame's size so far) and 'reason' a short English phrase
     * valid during the call, e.g. "12 bytes outside a frame skipped". May be
     * NULL. */
    void (*on_error)(void *ud, pv_mllp_fault fault, size_t bytes,
                     const char *reason);
} pv_mllp_callbacks;

/* Creates a framer. max_message bounds one message (0 = the default); the
 * buffer grows as frames need, up to that. The callbacks are copied. Returns
 * NULL when out of memory. Free with pv_mllp_free(). */
pv_mllp *pv_mllp_new(size_t max_message, const pv_mllp_callbacks *cb, void *ud);

/* Frees the framer, dropping any unfinished frame. NULL is allowed. */
void pv_mllp_free(pv_mllp *f);

/* Feeds the next len bytes of the stream. Frames completed by them are
 * delivered before it returns. Returns 0, PV_ENOMEM (only the frame in
 * progress is lost: it is discarded up to its end and the frames after it
 * are delivered), or the nonzero value on_message returned. */
int pv_mllp_feed(pv_mllp *f, const char *buf, size_t len);

/* Ends the stream. Returns 0 when it stopped between frames, or PV_EAGAIN
 * when a frame was started and not finished (an incomplete frame: no
 * message was delivered for it). Reports bytes skipped since the last frame.
 * The framer is then reset and can be fed again. */
int pv_mllp_finish(pv_mllp *f);

/* Only during on_error for PV_MLLP_TOO_BIG: the start of the oversized
 * frame (what arrived of it, at most max_message bytes), so that the
 * answer can name the message by its MSH-10. Empty at any other time. */
pv_span pv_mllp_fault_head(const pv_mllp *f);

/* Bytes held for the frame in progress (0 between frames). */
size_t pv_mllp_pending(const pv_mllp *f);

/* Frames msg for sending: *out is a new buffer of *len = msg.len + 3 bytes
 * (not NUL-terminated) that the caller frees with free(). Returns 0,
 * PV_EINVAL when msg contains 0x0B or 0x1C (they would break the framing),
 * or PV_ENOMEM. */
int pv_mllp_wrap(pv_span msg, char **out, size_t *len);

#endif

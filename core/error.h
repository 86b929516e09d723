/* error: the error codes every module returns, and pv_strerror().
 *
 * Functions return 0 on success or one of the negative codes below; a call
 * that fails never runs its callback. Messages meant for people (file, line,
 * field) are built by the caller, which knows the place; these codes only say
 * what kind of failure it was. Depends on nothing. */
#ifndef PV_ERROR_H
#define PV_ERROR_H

#include <stddef.h>

enum {
    PV_OK = 0,
    PV_ENOMEM = -1,    /* allocation failed */
    PV_EINVAL = -2,    /* malformed input or argument */
    PV_EIO = -3,       /* a file or socket operation failed; see errno */
    PV_ETOOBIG = -4,   /* input over a configured ceiling */
    PV_ENOTFOUND = -5, /* no such record, file or key */
    PV_EDB = -6,       /* SQLite failed; the store keeps its message */
    PV_ELUA = -7,      /* a Lua chunk failed to load or run */
    PV_ESTATE = -8,    /* not allowed in the current state */
    PV_EBUSY = -9,     /* the database is locked by another process */
    PV_EAGAIN = -10,   /* incomplete input: feed more and call again */
    PV_EGONE = -11,    /* the database file was deleted or replaced while
                          open: nothing more may be acknowledged */
    PV_ELOCKED = -12,  /* another pvwatch holds the database's lock file */
    PV_EAUTH = -13,    /* wrong user name or password, or user disabled */
    PV_ELIMIT = -14,   /* too many attempts: rate-limited, try later */
};

/* Returns a static, human-readable description of an error code. */
const char *pv_strerror(int err);

/* A read-only view of bytes owned by someone else. */
typedef struct pv_span {
    const char *ptr;
    size_t len;
} pv_span;

#endif

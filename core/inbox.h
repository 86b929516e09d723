/* inbox: the directory operators drop files into.
 *
 * Watches it with uv_fs_event and rescans it on a timer as a fallback (some
 * file systems send no events). A file is taken once it has stopped
 * changing for inbox.settle seconds; names starting with '.' are ignored
 * (the usual "write to .name, rename when done" convention). Only regular
 * files with one link, owned by pvwatch's user, root or inbox.owners, are
 * read (opened O_NOFOLLOW | O_NONBLOCK and checked with fstat); anything
 * else is moved to rejected/ with NAME.error saying why, never opened
 * blocking or followed. Due files are taken in slices (at most 64 files or
 * 20 ms per loop turn, one transaction each, each file its savepoint), so
 * MLLP ACKs flow during a backlog; each is then moved to processed/, or to
 * rejected/ with NAME.error listing every bad line. A file is moved only
 * after its rows are committed; if pvwatch dies in between, the file is
 * read again on restart and recognised as a duplicate. Calls ingest. */
#ifndef PV_INBOX_H
#define PV_INBOX_H

#include <uv.h>

#include "ingest.h"

typedef struct pv_inbox pv_inbox;

/* Creates the directory (and processed/, rejected/) when missing and
 * starts watching. Returns 0 or a negative code with a sentence in err. */
int pv_inbox_start(uv_loop_t *loop, pv_ingest *p, const char *dir,
                   double rescan, double settle, pv_inbox **out, char *err,
                   size_t errcap);
/* Stops watching; the struct is freed once libuv has closed its handles. */
void pv_inbox_stop(pv_inbox *in);

/* Moves a file that was ingested to processed/ or rejected/ (writing the
 * .error file for the latter). Shared with 'pvwatch ingest --move'. */
int pv_inbox_file_done(const char *dir, const char *name,
                       const pv_file_report *rep);

#endif

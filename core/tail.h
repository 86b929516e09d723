/* tail: CSV files that keep growing (config 'tail').
 *
 * Each file is polled (uv_fs_poll); new complete records are ingested as
 * they arrive, one transaction per read, and the offset reached — with the
 * file's identity (device, inode) and its header — is written in that same
 * transaction, so a restart resumes at the next unread record: nothing lost,
 * nothing read twice. A partial last line waits for its newline. A file
 * that was replaced (new inode) or truncated is read again from its start.
 * Calls ingest, csv, map and the store's connection. */
#ifndef PV_TAIL_H
#define PV_TAIL_H

#include <uv.h>

#include "config.h"
#include "ingest.h"

typedef struct pv_tail pv_tail;

int pv_tail_start(uv_loop_t *loop, pv_ingest *p, const pv_strlist *paths,
                  pv_tail **out, char *err, size_t errcap);
void pv_tail_stop(pv_tail *t);

/* Reads what is new in every followed file now (used at start and by
 * tests); returns the number of records stored. */
long pv_tail_poll_all(pv_tail *t);

#endif

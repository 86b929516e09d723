/* service: what a service manager and 'pvwatch status' see of a running
 * engine (issue 21 part 3).
 *
 * systemd: with PV_HAVE_SYSTEMD (CMake option PV_SYSTEMD, on when
 * libsystemd is found) pv_service_notify is sd_notify(3), so a unit with
 * Type=notify (packaging/systemd/pvwatch.service) is "started" only once
 * the listeners accept; without it, and outside systemd (no NOTIFY_SOCKET),
 * it does nothing.
 *
 * The run file: the single-instance lock file <database>.lock
 * (pv_store_lock) already holds the pid of its exclusive holder on its
 * first line. Once 'pvwatch run' listens it appends lines "KEY VALUE":
 *   command run
 *   started EPOCH-SECONDS
 *   config PATH          (absent on built-in defaults)
 *   mllp HOST:PORT       (the bound address: the real port for port 0)
 *   inbox PATH
 *   tail PATH            (one a followed file)
 * The first line stays the pid alone, as pv_store_lock's readers expect.
 * A file whose exclusive flock is held is a running pvwatch. */
#ifndef PV_SERVICE_H
#define PV_SERVICE_H

#include <stddef.h>

#include "config.h"

/* sd_notify(0, state); no-op without libsystemd. */
void pv_service_notify(const char *state);

/* The listeners are bound: writes the run file for cfg->database and sends
 * READY=1 with a STATUS= line naming them. mllp_addr: the bound address. */
void pv_service_ready(const pv_config *cfg, const char *mllp_addr);

typedef struct pv_service_info {
    int exists;   /* the lock file exists */
    int running;  /* its exclusive lock is held */
    long pid;     /* its first line, 0 if none */
    int is_run;   /* 'command run' was written: a 'pvwatch run' */
    long started; /* epoch seconds, 0 if unknown */
    char *text;   /* the whole file, NUL-terminated (free) */
} pv_service_info;

/* Reads <db_path>.lock without taking or disturbing its lock for long (a
 * shared flock, tried once and let go). 0, or PV_EIO with err set. */
int pv_service_read(const char *db_path, pv_service_info *out, char *err,
                    size_t errcap);
void pv_service_info_free(pv_service_info *i);

#endif

/* engine: 'pvwatch run' — the libuv loop that owns everything.
 *
 * Starts the inbox watcher, the tail followers and the MLLP listener,
 * handles SIGINT/SIGTERM (finish the batch at hand, close, exit 0) and
 * SIGHUP (reload the rules beside the old ones; switch only if all load).
 * The loop thread is the only writer to the database. Calls inbox, tail,
 * mllp_server, ingest. */
#ifndef PV_ENGINE_H
#define PV_ENGINE_H

#include "config.h"
#include "ingest.h"

/* The exit status of 'pvwatch run' when it stopped because its database
 * file was deleted or replaced while it ran (pv_store_check): every
 * message since was answered AE, an engine alert names the path, and the
 * open database was copied beside it. A supervisor should not simply
 * restart (the next start would create an empty database): systemd
 * RestartPreventExitStatus=4. */
#define PV_EXIT_DB_GONE 4

/* Runs until a stop signal. Returns the process exit status: 0 after
 * SIGINT/SIGTERM, 1 when it could not start, PV_EXIT_DB_GONE. */
int pv_engine_run(const pv_config *cfg, pv_ingest *p);

#endif

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

/* Runs until a stop signal. Returns the process exit status. */
int pv_engine_run(const pv_config *cfg, pv_ingest *p);

#endif

/* mllp_server: HL7 over MLLP on TCP, driven by the libuv loop.
 *
 * Each complete frame is stored (with its facts and the alerts they raise)
 * in the open batch transaction; the batch is committed when the loop is
 * about to wait again (a uv_check handle) or when it reaches its cap, and
 * only then are its ACKs written: an ACK means on disk. A connection does
 * not read while its messages wait for their commit (backpressure), so
 * memory stays bounded. Frames over mllp.max_message get AR and the
 * connection is closed; idle connections are closed after
 * mllp.idle_timeout; connections beyond mllp.max_connections are refused.
 * An ACK is never answered. Calls mllp, hl7 and ingest. */
#ifndef PV_MLLP_SERVER_H
#define PV_MLLP_SERVER_H

#include <uv.h>

#include "config.h"
#include "ingest.h"

typedef struct pv_mllp_server pv_mllp_server;

/* Starts listening on cfg->mllp.listen ("host:port" or "[v6]:port"). */
int pv_mllp_server_start(uv_loop_t *loop, pv_ingest *p, const pv_config *cfg,
                         pv_mllp_server **out, char *err, size_t errcap);
/* Commits and acknowledges the batch at hand, then closes the listener and
 * every connection. Freed when libuv has closed the handles. */
void pv_mllp_server_stop(pv_mllp_server *s);

/* Counters, for logs and tests. messages counts every frame received;
 * acks the ACKs among them, never answered; batches the commits. */
typedef struct pv_mllp_stats {
    unsigned long connections, messages, duplicates, aa, ae, ar, batches, acks;
} pv_mllp_stats;
void pv_mllp_server_stats(const pv_mllp_server *s, pv_mllp_stats *out);

/* The address the listener is bound to, as "host:port" or "[v6]:port" (the
 * port the system chose for port 0), for 'pvwatch status' and systemd's
 * STATUS= line; "?" when it cannot be read. */
void pv_mllp_server_address(const pv_mllp_server *s, char *out, size_t cap);

#endif

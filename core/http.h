/* http: the review console's HTTP server (issue 16), on libmicrohttpd.
 *
 * The server runs on libmicrohttpd's own threads (an internal polling
 * thread per pool thread, epoll, http.threads of them), never on the libuv
 * loop: a slow page never delays an ACK. Each pool thread opens, at its
 * first request, its own read-only SQLite connection (WAL: readers run
 * beside the engine's writer); the page functions (web.h) run on it. The
 * few writes -- login sessions, and the alert actions (acknowledge,
 * assign, comment, close) -- go through a writable path serialized by one
 * mutex: the sessions on one plain writable connection, the actions on a
 * pipeline opened per action exactly as 'pvwatch alerts' opens one beside
 * a running engine (pv_ingest_open_as CLIENT: its alert-log lines are
 * queued for the engine), with the logged-in user as actor and
 * entered_by.
 *
 * Routes (docs/operations.md "Review console"): GET / /alerts/ID
 * /patients/ID /rules /login /static/NAME; POST /login /logout
 * /alerts/ID/{ack,assign,comment,close}; and, without login and without
 * patient data, /livez /healthz /readyz /metrics. Calls web.h (pages),
 * auth.h (sessions), alerts.h via ingest.h (actions), metrics.h, tmpl.h
 * and chart.h. */
#ifndef PV_HTTP_H
#define PV_HTTP_H

#include <stddef.h>

#include "config.h"

typedef struct pv_http pv_http;

/* Starts the console for cfg's database. listen is "HOST:PORT" (NULL:
 * cfg->http.listen); port 0 takes a free port (pv_http_address tells
 * which). Never creates the database: a missing file is an error. Returns
 * 0, or an error code with a sentence in err. */
int pv_http_start(const pv_config *cfg, const char *listen, pv_http **out,
                  char *err, size_t errcap);
/* pv_http_start with flags. pv_http_start is pv_http_start_ex with
 * PV_HTTP_YIELD: beside the engine ('pvwatch run'), each pool thread, at
 * its first request, moves itself to SCHED_IDLE (else nice 19), so that a
 * page never takes a core the engine's loop wants; 'pvwatch serve' alone
 * passes 0. */
#define PV_HTTP_YIELD 1u
int pv_http_start_ex(const pv_config *cfg, const char *listen, unsigned flags,
                     pv_http **out, char *err, size_t errcap);
/* "HOST:PORT" the console is bound to, the port resolved. */
void pv_http_address(const pv_http *h, char *out, size_t cap);
/* Stops serving (requests in progress finish), closes the connections.
 * NULL is a no-op. */
void pv_http_stop(pv_http *h);

/* Limits (docs/architecture.md "The review console"). */
#define PV_HTTP_MAX_BODY (64 * 1024) /* request body (forms) */
#define PV_HTTP_MAX_CONNECTIONS 128  /* at once, over all threads */
#define PV_HTTP_TIMEOUT_S 30         /* an idle or stalled connection */

#endif

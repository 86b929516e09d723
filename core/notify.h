/* notify: e-mail for alerts — the durable outbox and the SMTP sender.
 *
 * Queuing: an alert that opens or escalates (not a repeat) and passes
 * email.min_severity becomes an outbox row, written in the alert's own
 * transaction, holding the complete message (headers and body) so a retry
 * sends the same bytes under the same Message-ID. Its recipients: email.to,
 * plus those of every route that matches; a route with exclusive = true
 * takes the alert alone (docs/operations.md, "Routes"). Low-severity alerts
 * under email.digest_* wait for one digest mail per period.
 * Sending: a transport thread of its own (transport_main) runs libcurl's
 * multi interface on its own libuv loop, so a stalled SMTP server never
 * blocks the engine; the loop hands transfers over and takes results back
 * under one mutex (docs/architecture.md, "Threads"), and only the loop
 * writes outbox rows. A row is marked sent only after the server accepted
 * it; failures are retried with exponential backoff and jitter; after
 * email.max_attempts the row is 'failed' and an engine alert is raised.
 * With email.dir, .eml files are written instead (each synced, then its
 * directory, before the row is marked sent). Without an email
 * configuration nothing is queued. Calls store, alerts (hook) and curl. */
#ifndef PV_NOTIFY_H
#define PV_NOTIFY_H

#include <stdio.h>
#include <uv.h>

#include "alerts.h"
#include "config.h"
#include "store.h"

typedef struct pv_notify pv_notify;

/* Creates the notifier and hooks it into the alerts (queuing starts now).
 * Returns 0 with *out NULL when email is not configured. */
int pv_notify_open(const pv_config *cfg, pv_store *store, pv_alerts *alerts,
                   pv_notify **out, char *err, size_t errcap);
void pv_notify_free(pv_notify *n);
/* SIGHUP (engine.c, reload.h): the notifier reads cfg from now on (routes,
 * recipients, min_severity, retries, digest). Loop thread only: the
 * transport thread never reads the configuration. n may be NULL. The
 * caller keeps cfg alive while it is in use, and kicks (pv_notify_kick). */
void pv_notify_set_config(pv_notify *n, const pv_config *cfg);

/* Reads the SMTP password (email.password_env or password_file) now, so a
 * missing one is a start-up error; pv_notify_start does it otherwise. */
int pv_notify_prepare(pv_notify *n, char *err, size_t errcap);

/* Starts sending on the loop: due rows are picked up every second and
 * right after new ones are committed. */
int pv_notify_start(pv_notify *n, uv_loop_t *loop);
/* Stops sending; in-flight transfers are abandoned (their rows stay
 * pending and are sent again later: at-least-once, same Message-ID). */
void pv_notify_stop(pv_notify *n);
/* Tells the sender that rows were committed. */
void pv_notify_kick(pv_notify *n);

/* A mail goes out only once the row's commit is on disk: after a power cut
 * no mail may tell of an alert the database does not have. Rows committed
 * by relaxed transactions (MLLP batches, whose ACKs wait for one WAL sync)
 * are held back until their sync: the committer reads the outbox's highest
 * id right after COMMIT (pv_notify_outbox_max) and hands it over once the
 * commit is durable (pv_notify_durable). When nothing waits for a sync,
 * every committed row may go. Both accept n == NULL (no e-mail). */
int64_t pv_notify_outbox_max(pv_notify *n);
void pv_notify_durable(pv_notify *n, int64_t upto);

/* Sends what is due now on a private loop, each row at most once, for at
 * most max_seconds (for 'pvwatch ingest'). Returns rows sent. */
long pv_notify_drain(pv_notify *n, double max_seconds);

/* The engine alert hook: how the notifier raises "mail failed" alerts. */
typedef int (*pv_notify_fail_fn)(void *ud, int64_t outbox_id,
                                 const char *error);
void pv_notify_on_failure(pv_notify *n, pv_notify_fail_fn fn, void *ud);

/* Routing (docs/operations.md, "E-mail"): an alert passing
 * email.min_severity goes to email.to; each matching route adds its 'to'
 * (an address gets one mail per event: later rows leave out addresses
 * already served); the first matching route with exclusive = true takes
 * the alert alone (no email.to, no other route). Appends to rows one
 * comma-joined recipient list per outbox row (none: the alert is not
 * mailed). The caller frees rows. */
int pv_notify_route(const pv_config *cfg, const char *severity,
                    const char *signal, pv_strlist *rows);
/* 'pvwatch check': the routing table, per signal named in a route and '*'
 * (any other), per severity. Appends a warning line per (signal,
 * severity) at or above email.min_severity that reaches nobody; returns
 * their number. */
int pv_notify_print_routes(const pv_config *cfg, FILE *out, pv_buf *warnings);

/* email.digest (issue 21 part 2; docs/operations.md "Digest of open
 * alerts"): the start of the digest period holding t, i.e. the latest
 * boundary anchor + k * every at or before t. A digest of the open alerts
 * is queued (an outbox row with alert_id 0, through the usual retries)
 * once per boundary passed, the period recorded in the same transaction
 * (rule_state pvwatch.notify/digest_period): never twice for one period,
 * across restarts. The first boundary after the digest is first seen
 * sends the first digest. */
pv_time_t pv_notify_digest_period(const pv_config *cfg, pv_time_t t);
/* 'pvwatch check': email.digest.signals against the rule pack's signals
 * (known, plus "engine"), or DESIGN.md's list when known is NULL. Appends
 * one "FILE:LINE: ..." line per unknown signal; returns their number. */
int pv_notify_check_digest(const pv_config *cfg, const pv_strlist *known,
                           pv_buf *errors);
/* 'pvwatch check': the digest schedules (digest_interval batching and
 * email.digest with its next boundary after now). */
void pv_notify_print_digest(const pv_config *cfg, FILE *out, pv_time_t now);

/* 'pvwatch outbox list [--status S]' and 'pvwatch outbox retry [ID]'. */
int pv_notify_print_outbox(pv_store *s, FILE *out, const char *status);
/* Makes failed rows (one, or all with id 0) pending again with a fresh
 * attempt count. Returns the number of rows, or a negative code. */
long pv_notify_retry(pv_store *s, int64_t id);

#endif

/* ingest: the pipeline every feed goes through — store the facts, run the
 * rules on each, record the alerts — and the reading of whole files.
 *
 * A pipeline owns the store, the rule set and the alerts of one engine.
 * Work happens inside a transaction the caller opens (pv_ingest_begin) and
 * closes (pv_ingest_commit): that is the group commit of DESIGN.md, and a
 * file or message inside it is one savepoint, so it can fail alone. The
 * alert log is written only after commit. Calls store, rules, alerts, csv,
 * map and ingest_hl7 (one HL7 message, which calls nothing of ingest.c:
 * pv_hl7_pipe); the engine and the CLI call it. */
#ifndef PV_INGEST_H
#define PV_INGEST_H

#include <stdint.h>
#include <stdio.h>

#include "alerts.h"
#include "buf.h"
#include "config.h"
#include "error.h"
#include "facts.h"
#include "ingest_hl7.h" /* pv_hl7_result, pv_hl7_result_free */
#include "map.h"
#include "rules.h"
#include "store.h"

typedef struct pv_ingest pv_ingest;

/* Opens the database of cfg (or db_path when not NULL), loads the rules
 * (unless no_rules) and opens the alert log. Errors are appended to
 * errors as lines; returns PV_EINVAL for configuration or rule errors,
 * other codes for runtime failures. */
int pv_ingest_open(const pv_config *cfg, const char *db_path, int no_rules,
                   pv_ingest **out, pv_buf *errors);
/* pv_ingest_open is pv_ingest_open_as(..., PV_INGEST_WRITER, ...). The
 * role says what to do with the database's single-instance lock
 * (pv_store_lock):
 * - WRITER (run, ingest, replay, and tests): takes it exclusively for the
 *   pipeline's lifetime, or fails with PV_ELOCKED (the sentence, naming
 *   the holder's pid, in errors) when another process holds it;
 * - CLIENT (alerts, outbox): takes it shared when no writer holds it;
 *   when one does, opens the alert log not at all, so that the engine's
 *   recovery of the log is never run beside the engine (it would write
 *   the engine's queued lines a second time). Workflow changes are still
 *   made (SQLite transactions); their log lines wait in alert_log_queue
 *   and the running engine writes them (pv_engine_run).
 * ":memory:" takes no lock. */
enum pv_ingest_role { PV_INGEST_WRITER, PV_INGEST_CLIENT };
int pv_ingest_open_as(const pv_config *cfg, const char *db_path, int no_rules,
                      enum pv_ingest_role role, pv_ingest **out,
                      pv_buf *errors);
/* The pid of the writer that held the lock when a CLIENT pipeline was
 * opened (it then writes no alert log), 0 when none, -1 when unknown. */
long pv_ingest_lock_holder(const pv_ingest *p);
void pv_ingest_close(pv_ingest *p);

pv_store *pv_ingest_store(pv_ingest *p);
pv_alerts *pv_ingest_alerts(pv_ingest *p);
pv_rules *pv_ingest_rules(pv_ingest *p);
/* The e-mail notifier, or NULL when email is not configured. */
struct pv_notify *pv_ingest_notify(pv_ingest *p);
const pv_config *pv_ingest_config(pv_ingest *p);
/* Replaces the configuration the pipeline reads (csv.layouts, the MLLP
 * duplicate and authority settings, email.max_attempts) on a SIGHUP
 * reload (engine.c); the caller keeps cfg alive while it is in use. */
void pv_ingest_set_config(pv_ingest *p, const pv_config *cfg);
/* Replaces the rule set (hot reload); the old one is freed. */
void pv_ingest_set_rules(pv_ingest *p, pv_rules *r);

/* Opens a transaction. When one is open already (an MLLP batch waiting for
 * its commit point) the flush hook is called first, so that the batch is
 * committed and acknowledged before other work starts its own. */
int pv_ingest_begin(pv_ingest *p);
void pv_ingest_set_flush(pv_ingest *p, void (*flush)(void *ud), void *ud);
/* Commits and then writes the alert log lines of the transaction. */
int pv_ingest_commit(pv_ingest *p);
void pv_ingest_rollback(pv_ingest *p);

/* The MLLP server's group commit, in two steps so that the loop need not
 * wait for the disk: begin_relaxed opens a transaction that commits without
 * syncing (pv_store_begin_relaxed); commit_deferred commits it and hands
 * back its alert-log lines; once pv_store_sync_wal() has returned, durable
 * writes them and wakes the mailer (so that nothing leaves pvwatch before
 * the commit is on disk). Durable calls go in commit order. When the
 * commit fails, commit_deferred leaves the transaction for the caller to
 * report (pv_store_errmsg) and then pv_ingest_rollback. */
int pv_ingest_begin_relaxed(pv_ingest *p);
int pv_ingest_commit_deferred(pv_ingest *p, pv_alerts_lines *lines);
int pv_ingest_durable(pv_ingest *p, pv_alerts_lines lines);

/* One fact: stored, then offered to the rules. Inside a transaction. */
int pv_ingest_lab(pv_ingest *p, const pv_obs *o, int64_t *id);
int pv_ingest_exposure(pv_ingest *p, const pv_exposure *e, int64_t *id);
int pv_ingest_event(pv_ingest *p, const pv_event *e, int64_t *id);

/* Runs the scheduled rules due at 'now' (all when force) for every
 * patient who has an exposure, in one transaction of its own. */
int pv_ingest_tick(pv_ingest *p, pv_time_t now, int force);

/* Raises an engine alert not tied to a patient (patient id "-"), e.g. a
 * failed rule reload, in a transaction of its own. */
int pv_ingest_engine_alert(pv_ingest *p, const char *rule, const char *key,
                           const char *title, const char *detail,
                           const char *action);

/* Stores one HL7 message (raw bytes, one message) and its facts inside the
 * open transaction, as one savepoint, and runs the rules on them. 'peer'
 * names where it came from (file or address) for messages; first_line is
 * the line of the message in its file (1 for MLLP). Returns 0 with the
 * outcome in res (AA, AE or AR), or a negative code when the database
 * failed (the savepoint is rolled back; answer AE). The work is
 * ingest_hl7.c's (pv_hl7_ingest), on this pipeline's store, alerts, mllp
 * settings and fact steps. */
int pv_ingest_hl7(pv_ingest *p, const char *raw, size_t len, const char *peer,
                  long first_line, pv_hl7_result *res);

/* What happened to one file. */
typedef struct pv_file_report {
    const char *kind; /* "labs", "synthea observations", ... or NULL */
    long stored;
    long rejected;
    int duplicate; /* the same bytes were ingested before */
    int64_t duplicate_of;
    int failed;    /* unreadable, unknown header, database failure */
    pv_buf errors; /* "NAME:LINE: reason\n" per bad record */
    uint64_t bytes;
} pv_file_report;

void pv_file_report_free(pv_file_report *r);

/* Ingests one file ("-" = stdin) inside the open transaction, as one
 * savepoint: rows are stored one by one, bad rows are listed in
 * rep->errors and skipped, the good rows kept. 'name' is how the file is
 * named in messages. Returns 0 when the file was read (even with rejected
 * rows or as a duplicate), or a negative code when the database failed,
 * in which case the savepoint was rolled back. */
int pv_ingest_file(pv_ingest *p, const char *path, const char *name,
                   pv_file_report *rep);
/* The same for a descriptor the caller opened (the inbox opens its files
 * itself, without following links or blocking: inbox.c). Takes fd and
 * closes it (except 0, stdin). */
int pv_ingest_fd(pv_ingest *p, int fd, const char *name, pv_file_report *rep);

/* Feeds CSV bytes of a followed file (see tail.c): the parser state lives
 * with the caller. Exposed for tail.c only. */
int pv_ingest_csv_record(pv_ingest *p, const pv_csv_map *m,
                         const pv_span *fields, size_t n, long line,
                         int64_t message_id, const char *name,
                         pv_file_report *rep);

#endif

/* alerts: what happens to an alert a rule raised — deduplication,
 * escalation, the follow-up workflow (acknowledge, close, audit trail) and
 * the JSON-lines alert log.
 *
 * Alerts with the same (patient, rule, key) while one is not closed are one
 * alert: a higher grade (or, without grades, a higher severity) escalates
 * it; anything else only counts an occurrence. Changes are written in the
 * caller's open transaction; the log lines they produce are held back until
 * pv_alerts_committed(), so the log never shows what was rolled back. Calls
 * store.c (via its connection) and buf.c. */
#ifndef PV_ALERTS_H
#define PV_ALERTS_H

#include <stdint.h>
#include <stdio.h>

#include "buf.h"
#include "rules.h"
#include "store.h"

typedef struct pv_alerts pv_alerts;

/* A sink for each committed alert event, e.g. the notifier. The JSON line
 * and the fields are valid during the call. */
typedef struct pv_alert_event {
    const char
        *event; /* opened | escalated | repeated | acknowledged | closed */
    int64_t alert_id;
    const char *json; /* the alert log line, without newline */
} pv_alert_event;

/* Opens the alert log for appending ("-" = stdout; NULL = no log file).
 * The log file is created with mode 0640. */
int pv_alerts_open(pv_store *store, const char *log_path, pv_alerts **out,
                   char *err, size_t errcap);
void pv_alerts_close(pv_alerts *a);
/* Opened without a log file (NULL) beside an engine that holds the lock:
 * lines are still queued in alert_log_queue, for that engine to write. */
void pv_alerts_set_queue_only(pv_alerts *a);

/* Records an alert a rule raised. Must be called inside a transaction.
 * *event_out (may be NULL) receives "opened", "escalated" or "repeated";
 * *id_out the alert's id. */
int pv_alerts_raise(pv_alerts *a, const pv_alert_in *in, const char **event_out,
                    int64_t *id_out);

/* After the transaction committed: writes the held-back log lines. After a
 * rollback: forgets them. The log is written with checked write(2) calls;
 * a write that fails (the disk is full) is cut back to the last whole
 * line, and its lines stay in alert_log_queue, to be written, in order, by
 * the next call (any commit) or the next start; queue rows are deleted
 * only after an fdatasync of the file that covers their lines succeeded.
 * Returns 0 either way: the transaction stands, and nothing is lost
 * (pv_alerts_flush tells what is still owed). */
int pv_alerts_committed(pv_alerts *a);
void pv_alerts_rolled_back(pv_alerts *a);

/* pv_alerts_committed in two steps, for a commit that becomes durable later
 * (pv_ingest_commit_deferred): take the lines right after COMMIT, write
 * them once the commit is on disk. Lines are written in the order taken. */
typedef struct {
    int64_t first, last; /* rows of alert_log_queue; 0, 0: none */
    int64_t outbox;      /* the outbox's highest id after the commit
                            (pv_ingest_commit_deferred; notify.h) */
} pv_alerts_lines;
pv_alerts_lines pv_alerts_take(pv_alerts *a);
int pv_alerts_write(pv_alerts *a, pv_alerts_lines lines);

/* Tries once more to write the committed lines a failed write left out;
 * returns how many are still not in the file (0: the file has every
 * committed line; always 0 without a log file). */
long pv_alerts_flush(pv_alerts *a);

/* Replay mode: an alert whose (patient, rule, key) exists already, in any
 * status, is left alone (event "existing"); only new ones open. */
void pv_alerts_set_replay(pv_alerts *a, int on);

/* For undoing one item of a batch (a savepoint rolled back): mark before
 * it, rewind to the mark after. */
size_t pv_alerts_mark(const pv_alerts *a);
void pv_alerts_rewind(pv_alerts *a, size_t mark);

/* Hook for every committed event (notify.c uses it to queue mail inside
 * the same transaction: called at raise time, not at commit). */
typedef int (*pv_alert_hook)(void *ud, const pv_alert_event *ev,
                             const pv_alert_in *in, int64_t alert_id);
void pv_alerts_set_hook(pv_alerts *a, pv_alert_hook hook, void *ud);

/* Workflow. action is "ack" or "close". Runs in its own transaction.
 * Returns PV_ENOTFOUND for an unknown id, PV_ESTATE (with a sentence in
 * err) when the alert's status does not allow it. */
int pv_alerts_act(pv_alerts *a, int64_t id, const char *action,
                  const char *actor, const char *note, char *err,
                  size_t errcap);
/* The same, signed (issue 21 part 2): entered_by is the login name of
 * whoever typed the action, stored beside actor (alert_actions.entered_by)
 * and, when it differs from actor, written to the log line as
 * "entered_by". NULL: not known (pv_alerts_act). */
int pv_alerts_act_as(pv_alerts *a, int64_t id, const char *action,
                     const char *actor, const char *entered_by,
                     const char *note, char *err, size_t errcap);

/* Issue 16: the outcome of a closed alert, from a fixed list, NULL-
 * terminated, in display order. The "intervention:*" ones count as an
 * intervention in the rule statistics (rule_stats.h). */
extern const char *const pv_alert_outcomes[];
/* Human text for an outcome ("Intervention: dose interrupted"); NULL for
 * an outcome not in pv_alert_outcomes. */
const char *pv_alert_outcome_label(const char *outcome);
/* Index of outcome in pv_alert_outcomes, -1 when not in the list. */
int pv_alert_outcome_index(const char *outcome);

/* One workflow action (issue 16). action is "ack", "assign", "comment" or
 * "close". actor is required; entered_by, note, outcome, assignee and
 * request_id may be NULL.
 * - ack: open -> acknowledged.
 * - assign: assignee required (trimmed, 1..64 characters, no control
 *   characters); allowed while open or acknowledged; sets
 *   alerts.assignee; the person who has it already is PV_ESTATE.
 * - comment: note required; allowed in any status (closed too: a comment
 *   on a closed alert is for hand-over and review).
 * - close: open/acknowledged -> closed; outcome, when given, must be one
 *   of pv_alert_outcomes; require_outcome (the console sets it) makes it
 *   required. (The CLI requires a note; the API does not.)
 * An outcome with another action, or an assignee with another action than
 * assign, is PV_EINVAL; an empty outcome or request_id ("" from a form)
 * is one not given. Notes are at most 8 KiB. ack and close write an
 * alert log line ("acknowledged", "closed"; a close's carries "outcome"
 * when given); assign and comment are in the audit trail only.
 * request_id: a one-time id (the form's): an action whose request_id was
 * recorded already for the same alert and action records nothing and
 * returns 0 (a double submit); the same request_id for another alert or
 * action is PV_EINVAL. */
typedef struct pv_alert_action {
    int64_t alert_id;
    const char *action; /* ack|assign|comment|close */
    const char *actor, *entered_by, *note, *outcome, *assignee, *request_id;
    int require_outcome; /* close: an outcome is required */
} pv_alert_action;
/* Runs in its own transaction, like pv_alerts_act_as (same log queue
 * behaviour). Returns 0, PV_ENOTFOUND for an unknown id, PV_ESTATE when
 * the status does not allow the action, PV_EINVAL for bad input (a
 * sentence in err either way). */
int pv_alerts_do(pv_alerts *a, const pv_alert_action *act, char *err,
                 size_t errcap);

/* Counts opened/escalated/repeated since the last reset. */
typedef struct pv_alerts_counts {
    long opened, escalated, repeated;
} pv_alerts_counts;
void pv_alerts_counts_take(pv_alerts *a, pv_alerts_counts *out);

/* Severity ordering: low 1 .. critical 4, unknown 0. */
int pv_severity_rank(const char *s);

/* Prints alerts for the CLI: a table, or JSON lines with --json. status
 * NULL = all. */
int pv_alerts_print_list(pv_store *store, FILE *out, const char *status,
                         int json);
/* The same, only the alerts assigned to assignee (NULL: any). --json
 * lines carry "assignee" too (issue 16). */
int pv_alerts_print_list_for(pv_store *store, FILE *out, const char *status,
                             const char *assignee, int json);
/* Prints one alert with its evidence and audit trail (and, issue 16, its
 * assignee and the outcome of its close; --json: "assignee", "outcome",
 * and "outcome" in each action). */
int pv_alerts_print_show(pv_store *store, FILE *out, int64_t id, int json);

#endif

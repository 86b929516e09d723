/* metrics: pvwatch's own health as Prometheus metrics, and readiness.
 *
 * A process-wide registry of C11 atomic counters, gauges and histograms.
 * They are bumped on the libuv loop thread (and the store's checkpoint
 * thread) with one relaxed atomic add per event: no lock and no
 * allocation on a hot path. They are read from the console's threads by
 * pv_metrics_render, which writes the Prometheus text exposition format
 * 0.0.4. Nothing here ever holds patient data: labels are feed names, ACK
 * codes, rule names, severities and events, never a patient id or an
 * alert title. Per-rule counters live in a fixed table filled when rules
 * are loaded (pv_metrics_rule_get; a hot reload adds new names; entries are
 * never removed, so a handle stays valid for the process' lifetime).
 * Depends on buf.c and SQLite only. */
#ifndef PV_METRICS_H
#define PV_METRICS_H

#include <sqlite3.h>
#include <stdint.h>

#include "buf.h"

/* The feeds, as the configuration and the messages' sources name them. */
enum pv_metrics_feed {
    PV_FEED_MLLP,      /* "mllp" */
    PV_FEED_INBOX_HL7, /* "inbox_hl7": HL7 files dropped in the inbox */
    PV_FEED_INBOX_CSV, /* "inbox_csv": CSV files dropped in the inbox */
    PV_FEED_TAIL,      /* "tail": lines appended to a tailed CSV file */
    PV_FEED_COUNT
};
const char *pv_metrics_feed_name(int feed);

/* A message (an HL7 message, a CSV file or tailed line batch) arrived. */
void pv_metrics_received(int feed);
/* A message was stored (its transaction committed); ack is the ACK code
 * it got: 0 AA, 1 AE, 2 AR (pv_hl7_result.ack); other values count as
 * AA for feeds without ACKs. */
void pv_metrics_stored(int feed, int ack);
void pv_metrics_stored_n(int feed, int ack, long n);
/* n messages were not stored because the database failed (MLLP: answered
 * AE "send it again"). */
void pv_metrics_failed(int feed, long n);
/* n rows (CSV rows, HL7 segments) of a feed were rejected. */
void pv_metrics_rejected(int feed, long n);
/* MLLP connections: +1 when one is accepted, -1 when it is closed. */
void pv_metrics_mllp_conn(int delta);

/* Per-rule counters. pv_metrics_rule_get returns the entry for name
 * (created on first use, under a mutex: call it at rule load, not per
 * message; a known name is found without the lock);
 * never NULL (past PV_METRICS_MAX_RULES names, one shared entry labelled
 * "_other"). */
#define PV_METRICS_MAX_RULES 1024
typedef struct pv_metrics_rule pv_metrics_rule;
pv_metrics_rule *pv_metrics_rule_get(const char *name);
enum pv_metrics_rule_outcome {
    PV_RULE_OK,
    PV_RULE_ERROR,      /* the rule raised a Lua error */
    PV_RULE_KILL_INSNS, /* stopped: instruction budget */
    PV_RULE_KILL_MEM,   /* stopped: memory budget */
    PV_RULE_KILL_TIME   /* stopped: time limit (limits.rule_time_ms) */
};
/* One call of a rule that took ns nanoseconds. */
void pv_metrics_rule_call(pv_metrics_rule *r, uint64_t ns, int outcome);
/* One fact the exposure gate spared the rule (rules.c gate_skip). */
void pv_metrics_rule_gated(pv_metrics_rule *r);

/* An alert event for the alert's rule; severity as in the alerts table
 * ("low".."critical", else counted as "unknown"); event one of opened,
 * escalated, repeated, acknowledged, closed (others are ignored). Safe to
 * call per event: the rule is looked up without a lock when known. */
void pv_metrics_alert(const char *rule, const char *severity,
                      const char *event);
/* The same from an alert-log line (its "rule" and "severity" fields), for
 * alerts.c's emit, which has the line but not always the alert. */
void pv_metrics_alert_line(const char *event, const char *json);

/* An e-mail delivery attempt of the outbox (notify.c): accepted by the
 * server, failed and retried later, failed for the last time. */
enum { PV_MAIL_SENT, PV_MAIL_RETRY, PV_MAIL_GAVE_UP };
void pv_metrics_mail(int result);

/* Histograms of durations (seconds) and sizes. */
void pv_metrics_wal_sync(uint64_t ns); /* one fdatasync of the WAL */
/* One WAL checkpoint pass; on_writer: run by the writer itself (on the
 * loop, holding up commits), else by the store's checkpoint thread. */
void pv_metrics_checkpoint(uint64_t ns, int on_writer);
void pv_metrics_commit_batch(long n); /* messages in one group commit */

/* Nanoseconds of a monotonic clock, for timing the above. */
uint64_t pv_metrics_now_ns(void);

/* Appends every metric in the Prometheus text format 0.0.4. With ro (a
 * read-only connection of the caller's thread) not NULL, gauges read from
 * the database at scrape time are added: the outbox by status. Safe to
 * call from several threads at once. */
void pv_metrics_render(sqlite3 *ro, pv_buf *out);

/* Readiness: what pvwatch needs before it serves (/readyz). */
enum { PV_READY_DB = 1, PV_READY_RULES = 2, PV_READY_LISTENERS = 4 };
#define PV_READY_ALL (PV_READY_DB | PV_READY_RULES | PV_READY_LISTENERS)
void pv_metrics_set_ready(unsigned bits, int on);
/* 1 when every bit is set and the last write to the database succeeded;
 * else 0 and, with why not NULL, one line per missing part appended to it
 * ("database not open and writable\n" ...). */
int pv_metrics_ready(pv_buf *why);
/* The outcome of a commit or a WAL sync (store.c): after a failure the
 * database counts as not writable until the next success. */
void pv_metrics_db_write(int ok);

/* For tests: zeroes every counter and forgets the rules and readiness. */
void pv_metrics_reset(void);

#endif

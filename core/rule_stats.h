/* rule_stats: per rule, what became of its alerts (issue 16) — the number
 * a safety committee uses to retire or tune a rule. Read-only; reentrant
 * (the console calls it from several threads, each with its own
 * connection). Calls alerts.h (the outcome list). */
#ifndef PV_RULE_STATS_H
#define PV_RULE_STATS_H

#include <stddef.h>

#include <sqlite3.h>

typedef struct pv_rule_stat {
    char rule[128];
    long opened;               /* alerts opened (created_at >= since) */
    long acknowledged;         /* of those, ever acknowledged */
    long closed;               /* of those, closed now */
    long by_outcome[16];       /* closed, by outcome, indexed like
                                  pv_alert_outcomes */
    long closed_no_outcome;    /* closed without an outcome */
    double median_ack_s;       /* median seconds from opened to the first
                                  acknowledgement; < 0: none acknowledged */
    double intervention_share; /* closed with an "intervention:*" outcome
                                  / closed with any outcome; < 0: none
                                  closed with an outcome */
} pv_rule_stat;

/* Fills *out (malloc'd, free() it) with one row per rule that opened an
 * alert at or after since (ISO 8601 date or time; NULL: all), ordered by
 * rule. Returns 0, or PV_EDB. */
int pv_rule_stats(sqlite3 *db, const char *since, pv_rule_stat **out,
                  size_t *n);

#endif

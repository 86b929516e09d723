/* rule_stats.c: see rule_stats.h.
 *
 * Two queries, whatever the number of alerts: one grouped count per (rule,
 * outcome of the close), one of the acknowledgement delays ordered by rule
 * and delay, from which the medians are read in one pass. Both read the
 * covering index alerts_by_rule (db/migrations/0009). */
#include "rule_stats.h"

#include <stdlib.h>
#include <string.h>

#include "alerts.h"
#include "error.h"
#include "pvtime.h"

/* Per (rule, outcome): alerts opened, acknowledged ever, closed. The
 * alert's copies of its audit trail (alerts.acknowledged_at, the first
 * acknowledgement; alerts.outcome, its close's) are read, from the
 * covering index alerts_by_rule, in rule order. */
static const char counts_sql[] =
    "SELECT rule, outcome, count(*), count(acknowledged_at), "
    "sum(status = 'closed') FROM alerts "
    "WHERE ?1 IS NULL OR created_at >= ?1 "
    "GROUP BY rule, outcome ORDER BY rule";

/* Seconds from opened to the first acknowledgement, per acknowledged
 * alert, in order. Times are stored as ISO 8601 UTC text. */
static const char delays_sql[] =
    "SELECT rule, strftime('%s', acknowledged_at) - strftime('%s', "
    "created_at) AS d FROM alerts "
    "WHERE acknowledged_at IS NOT NULL AND (?1 IS NULL OR created_at >= ?1) "
    "ORDER BY rule, d";

static void set_rule(pv_rule_stat *r, const char *rule)
{
    snprintf(r->rule, sizeof r->rule, "%s", rule ? rule : "");
}

/* The row for rule: the last one when it has that (truncated) name, else a
 * new one. Rows come in rule order. */
static pv_rule_stat *row_for(pv_rule_stat **rows, size_t *n, size_t *cap,
                             const char *rule)
{
    pv_rule_stat probe;
    set_rule(&probe, rule);
    if (*n && strcmp((*rows)[*n - 1].rule, probe.rule) == 0)
        return &(*rows)[*n - 1];
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 16;
        pv_rule_stat *g = realloc(*rows, c * sizeof *g);
        if (!g)
            return NULL;
        *rows = g;
        *cap = c;
    }
    pv_rule_stat *r = &(*rows)[(*n)++];
    memset(r, 0, sizeof *r);
    memcpy(r->rule, probe.rule, sizeof r->rule);
    r->median_ack_s = -1;
    r->intervention_share = -1;
    return r;
}

static double median_of(const double *v, size_t n)
{
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

int pv_rule_stats(sqlite3 *db, const char *since, pv_rule_stat **out,
                  size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    char since_iso[PV_TIME_BUFSZ];
    if (since) {
        pv_time_t t;
        if (pv_time_parse(since, strlen(since), &t))
            return PV_EINVAL;
        pv_time_format(t, since_iso);
    }
    pv_rule_stat *rows = NULL;
    size_t n = 0, cap = 0;
    int n_outcomes = 0, n_interv = 0;
    while (pv_alert_outcomes[n_outcomes])
        n_outcomes++;
    while (n_interv < n_outcomes &&
           strncmp(pv_alert_outcomes[n_interv], "intervention:", 13) == 0)
        n_interv++;

    sqlite3_stmt *st = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(db, counts_sql, -1, &st, NULL) != SQLITE_OK) {
        rc = PV_EDB;
        goto fail;
    }
    if (since)
        sqlite3_bind_text(st, 1, since_iso, -1, SQLITE_TRANSIENT);
    int sr;
    while ((sr = sqlite3_step(st)) == SQLITE_ROW) {
        pv_rule_stat *r =
            row_for(&rows, &n, &cap, (const char *)sqlite3_column_text(st, 0));
        if (!r) {
            rc = PV_ENOMEM;
            goto fail;
        }
        const char *outcome = (const char *)sqlite3_column_text(st, 1);
        long closed = (long)sqlite3_column_int64(st, 4);
        r->opened += (long)sqlite3_column_int64(st, 2);
        r->acknowledged += (long)sqlite3_column_int64(st, 3);
        r->closed += closed;
        if (!outcome) {
            r->closed_no_outcome += closed;
        } else {
            int i = pv_alert_outcome_index(outcome);
            /* An outcome not in the list (written by hand into the
             * database) counts as closed with an outcome, in no
             * column. */
            if (i >= 0 && i < 16)
                r->by_outcome[i] += closed;
        }
    }
    if (sr != SQLITE_DONE) {
        rc = PV_EDB;
        goto fail;
    }
    sqlite3_finalize(st);
    st = NULL;
    for (size_t k = 0; k < n; k++) {
        pv_rule_stat *r = &rows[k];
        long with = r->closed - r->closed_no_outcome, interv = 0;
        for (int i = 0; i < n_interv && i < 16; i++)
            interv += r->by_outcome[i];
        if (with > 0)
            r->intervention_share = (double)interv / (double)with;
    }

    /* The medians: delays arrive sorted within each rule. */
    if (sqlite3_prepare_v2(db, delays_sql, -1, &st, NULL) != SQLITE_OK) {
        rc = PV_EDB;
        goto fail;
    }
    if (since)
        sqlite3_bind_text(st, 1, since_iso, -1, SQLITE_TRANSIENT);
    double *d = NULL;
    size_t dn = 0, dcap = 0, at = 0;
    char cur[sizeof rows->rule] = "";
    int have_cur = 0;
    for (;;) {
        sr = sqlite3_step(st);
        pv_rule_stat probe;
        if (sr == SQLITE_ROW)
            set_rule(&probe, (const char *)sqlite3_column_text(st, 0));
        if (have_cur && (sr != SQLITE_ROW || strcmp(probe.rule, cur))) {
            /* The rows are in the same order: find cur from at on. */
            while (at < n && strcmp(rows[at].rule, cur) < 0)
                at++;
            if (at < n && strcmp(rows[at].rule, cur) == 0 && dn)
                rows[at].median_ack_s = median_of(d, dn);
            dn = 0;
            have_cur = 0;
        }
        if (sr != SQLITE_ROW)
            break;
        if (!have_cur) {
            memcpy(cur, probe.rule, sizeof cur);
            have_cur = 1;
        }
        if (dn == dcap) {
            size_t c = dcap ? 2 * dcap : 64;
            double *g = realloc(d, c * sizeof *g);
            if (!g) {
                free(d);
                rc = PV_ENOMEM;
                goto fail;
            }
            d = g;
            dcap = c;
        }
        d[dn++] = sqlite3_column_double(st, 1);
    }
    free(d);
    if (sr != SQLITE_DONE) {
        rc = PV_EDB;
        goto fail;
    }
    sqlite3_finalize(st);
    *out = rows;
    *n_out = n;
    return 0;
fail:
    sqlite3_finalize(st);
    free(rows);
    return rc;
}

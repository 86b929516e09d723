/* cli_replay.c: 'pvwatch replay' — re-runs the rules over stored facts.
 *
 * For a new rule, or facts that arrived late: every stored lab, exposure
 * and event (since --since, for --rule only if given) is offered to the
 * rules again in time order, and only alerts that do not exist yet (for
 * that patient, rule and key, in any status) are opened. Works in
 * transactions of REPLAY_BATCH facts; shows progress on a terminal. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "error.h"
#include "ingest.h"
#include "log.h"

#define REPLAY_BATCH 10000

static const char usage_replay[] =
    "usage: pvwatch replay [-c CONFIG] [--since TIME] [--rule NAME]\n"
    "\n"
    "Re-runs the rules over the stored facts in time order (all of them, or\n"
    "those at or after TIME; all rules, or only NAME). Opens only alerts\n"
    "that do not exist yet; existing alerts are left as they are.\n";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int replay_sink(void *ud, const pv_alert_in *a)
{
    return pv_alerts_raise(ud, a, NULL, NULL);
}

static const char *txt(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

static pv_time_t tm_of(sqlite3_stmt *st, int i)
{
    const char *s = txt(st, i);
    pv_time_t t = 0;
    if (s)
        pv_time_parse(s, strlen(s), &t);
    return t;
}

int pv_cli_replay(int argc, char **argv)
{
    static const struct option longs[] = {
        {"config", required_argument, NULL, 'c'},
        {"since", required_argument, NULL, 's'},
        {"rule", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *since = NULL, *rule = NULL;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+c:", longs, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 's':
            since = optarg;
            break;
        case 'r':
            rule = optarg;
            break;
        case 'h':
            fputs(usage_replay, stdout);
            return 0;
        default:
            fprintf(stderr, "pvwatch replay: unknown option\n%s", usage_replay);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "pvwatch replay: unexpected argument '%s'\n%s",
                argv[optind], usage_replay);
        return 2;
    }
    char since_iso[PV_TIME_BUFSZ] = "";
    if (since) {
        pv_time_t t;
        if (pv_time_parse(since, strlen(since), &t)) {
            fprintf(stderr,
                    "pvwatch replay: --since '%s' is not a valid "
                    "time\n",
                    since);
            return 2;
        }
        pv_time_format(t, since_iso);
    }
    pv_config cfg;
    pv_buf errors = PV_BUF_INIT;
    if (pv_config_load(config, &cfg, &errors)) {
        fprintf(stderr, "pvwatch: %s", pv_buf_cstr(&errors));
        pv_buf_free(&errors);
        pv_config_free(&cfg);
        return 2;
    }
    if (pv_cli_need_db("replay", &cfg, NULL)) {
        pv_buf_free(&errors);
        pv_config_free(&cfg);
        return 2;
    }
    pv_ingest *p;
    int rc = pv_ingest_open(&cfg, NULL, 0, &p, &errors);
    if (rc) {
        fprintf(stderr, "pvwatch: %s", pv_buf_cstr(&errors));
        pv_buf_free(&errors);
        pv_config_free(&cfg);
        /* Another pvwatch holds the lock (pv_ingest_open): replay runs in
         * one long transaction that would hold up its commits. */
        return rc == PV_EINVAL || rc == PV_ELOCKED ? 2 : 1;
    }
    pv_buf_free(&errors);
    pv_rules *rules = pv_ingest_rules(p);
    if (rule) {
        int found = 0;
        for (size_t i = 0; i < pv_rules_count(rules); i++)
            found |= strcmp(pv_rules_name(rules, i), rule) == 0;
        if (!found) {
            fprintf(stderr, "pvwatch replay: no rule named '%s'\n", rule);
            pv_ingest_close(p);
            pv_config_free(&cfg);
            return 2;
        }
        pv_rules_only(rules, rule);
    }
    pv_alerts *alerts = pv_ingest_alerts(p);
    pv_alerts_set_replay(alerts, 1);
    sqlite3 *db = pv_store_db(pv_ingest_store(p));
    /* One time-ordered stream of every kind of fact. */
    const char *sql = "SELECT 1 AS k, id, observed_at AS t FROM observations "
                      "WHERE ?1 = '' OR observed_at >= ?1 "
                      "UNION ALL SELECT 2, id, start_at FROM exposures "
                      "WHERE ?1 = '' OR start_at >= ?1 "
                      "UNION ALL SELECT 3, id, onset_at FROM events "
                      "WHERE ?1 = '' OR onset_at >= ?1 ORDER BY 3, 1, 2";
    sqlite3_stmt *all, *count, *obs, *exp, *ev;
    char *csql = sqlite3_mprintf("SELECT count(*) FROM (%s)", sql);
    sqlite3_prepare_v2(db, sql, -1, &all, NULL);
    sqlite3_prepare_v2(db, csql, -1, &count, NULL);
    sqlite3_free(csql);
    sqlite3_prepare_v2(db,
                       "SELECT patient_id, code, code_system, name, "
                       "value_num, value_text, unit, ref_low, ref_high, "
                       "flag, status, observed_at, comparator FROM "
                       "observations WHERE id = ?",
                       -1, &obs, NULL);
    sqlite3_prepare_v2(db,
                       "SELECT patient_id, drug, drug_code, code_system, "
                       "dose, dose_unit, route, start_at, end_at, "
                       "start_source FROM exposures WHERE id = ?",
                       -1, &exp, NULL);
    sqlite3_prepare_v2(db,
                       "SELECT patient_id, code, code_system, term, "
                       "onset_at, serious, outcome FROM events WHERE id = ?",
                       -1, &ev, NULL);
    sqlite3_bind_text(all, 1, since_iso, -1, SQLITE_STATIC);
    sqlite3_bind_text(count, 1, since_iso, -1, SQLITE_STATIC);
    long total = sqlite3_step(count) == SQLITE_ROW
                     ? (long)sqlite3_column_int64(count, 0)
                     : 0;
    sqlite3_finalize(count);

    int tty = isatty(2);
    double t0 = now_s();
    long done = 0;
    rc = pv_ingest_begin(p);
    while (!rc && sqlite3_step(all) == SQLITE_ROW) {
        int kind = sqlite3_column_int(all, 0);
        sqlite3_int64 id = sqlite3_column_int64(all, 1);
        sqlite3_stmt *q = kind == 1 ? obs : kind == 2 ? exp : ev;
        sqlite3_bind_int64(q, 1, id);
        if (sqlite3_step(q) == SQLITE_ROW) {
            if (kind == 1) {
                pv_obs o = {0};
                o.patient_id = txt(q, 0);
                o.code = txt(q, 1);
                o.code_system = txt(q, 2);
                o.name = txt(q, 3);
                o.has_num = sqlite3_column_type(q, 4) != SQLITE_NULL;
                o.value_num = sqlite3_column_double(q, 4);
                o.value_text = txt(q, 5);
                o.unit = txt(q, 6);
                o.has_low = sqlite3_column_type(q, 7) != SQLITE_NULL;
                o.ref_low = sqlite3_column_double(q, 7);
                o.has_high = sqlite3_column_type(q, 8) != SQLITE_NULL;
                o.ref_high = sqlite3_column_double(q, 8);
                o.flag = txt(q, 9);
                o.status = txt(q, 10);
                o.at = tm_of(q, 11);
                o.comparator = txt(q, 12);
                /* As at ingest: W, X, I, R, N... are never judged. */
                if (pv_obs_judged(o.status))
                    rc = pv_rules_on_lab(rules, &o, id, replay_sink, alerts);
            } else if (kind == 2) {
                pv_exposure e = {0};
                e.patient_id = txt(q, 0);
                e.drug = txt(q, 1);
                e.drug_code = txt(q, 2);
                e.code_system = txt(q, 3);
                e.has_dose = sqlite3_column_type(q, 4) != SQLITE_NULL;
                e.dose = sqlite3_column_double(q, 4);
                e.dose_unit = txt(q, 5);
                e.route = txt(q, 6);
                e.start = tm_of(q, 7);
                e.has_end = txt(q, 8) != NULL;
                e.end = tm_of(q, 8);
                e.start_source = txt(q, 9);
                rc = pv_rules_on_exposure(rules, &e, id, replay_sink, alerts);
            } else {
                pv_event e = {0};
                e.patient_id = txt(q, 0);
                e.code = txt(q, 1);
                e.code_system = txt(q, 2);
                e.term = txt(q, 3);
                e.onset = tm_of(q, 4);
                e.serious = sqlite3_column_type(q, 5) == SQLITE_NULL
                                ? -1
                                : sqlite3_column_int(q, 5);
                e.outcome = txt(q, 6);
                rc = pv_rules_on_event(rules, &e, id, replay_sink, alerts);
            }
        }
        sqlite3_reset(q);
        done++;
        if (!rc && done % REPLAY_BATCH == 0) {
            rc = pv_ingest_commit(p);
            if (!rc)
                rc = pv_ingest_begin(p);
            if (tty && total) {
                int w = (int)(40.0 * done / total);
                fprintf(stderr, "\rreplay [%-40.*s] %ld/%ld", w,
                        "########################################", done,
                        total);
            }
        }
    }
    if (!rc)
        rc = pv_ingest_commit(p);
    else
        pv_ingest_rollback(p);
    if (tty && total)
        fputc('\n', stderr);
    double secs = now_s() - t0;
    pv_alerts_counts counts;
    pv_alerts_counts_take(alerts, &counts);
    sqlite3_finalize(all);
    sqlite3_finalize(obs);
    sqlite3_finalize(exp);
    sqlite3_finalize(ev);
    if (rc)
        fprintf(stderr, "pvwatch replay: stopped: %s\n", pv_strerror(rc));
    printf("replayed %ld facts in %.2fs (%.0f facts/s); %ld alerts "
           "opened\n",
           done, secs, secs > 0 ? done / secs : 0.0, counts.opened);
    pv_ingest_close(p);
    pv_config_free(&cfg);
    return rc ? 1 : 0;
}

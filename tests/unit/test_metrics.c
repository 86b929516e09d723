/* test_metrics: the registry and its Prometheus text (core/metrics.c).
 *
 * With an argument "--print", prints a populated exposition to stdout
 * instead (tests/e2e/test_metrics_promtool.sh feeds it to promtool). */
#include <stdatomic.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>

#include "metrics.h"
#include "test.h"

/* Whether the exposition has exactly this line. */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return 1;
    return 0;
}

static int count_lines_starting(const char *text, const char *prefix)
{
    int c = 0;
    size_t n = strlen(prefix);
    for (const char *p = text; p && *p;) {
        if (strncmp(p, prefix, n) == 0)
            c++;
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return c;
}

#define CHECK_LINE(text, line)                                                 \
    do {                                                                       \
        if (has_line(text, line))                                              \
            pv_test_passed++;                                                  \
        else                                                                   \
            PV_FAIL_("missing line: %s", line);                                \
    } while (0)

static void populate(void)
{
    pv_metrics_reset();
    for (int i = 0; i < 5; i++)
        pv_metrics_received(PV_FEED_MLLP);
    pv_metrics_stored(PV_FEED_MLLP, 0);
    pv_metrics_stored(PV_FEED_MLLP, 0);
    pv_metrics_stored(PV_FEED_MLLP, 1);
    pv_metrics_stored_n(PV_FEED_MLLP, 2, 2);
    pv_metrics_stored(PV_FEED_TAIL, 7); /* out of range: AA */
    pv_metrics_received(PV_FEED_INBOX_CSV);
    pv_metrics_rejected(PV_FEED_INBOX_CSV, 3);
    pv_metrics_failed(PV_FEED_MLLP, 1);
    pv_metrics_received(99); /* ignored */
    pv_metrics_mllp_conn(1);
    pv_metrics_mllp_conn(1);
    pv_metrics_mllp_conn(-1);

    pv_metrics_rule *r = pv_metrics_rule_get("anc_low");
    CHECK(r == pv_metrics_rule_get("anc_low"));
    pv_metrics_rule_call(r, 1500000000u, PV_RULE_OK);
    pv_metrics_rule_call(r, 500000000u, PV_RULE_ERROR);
    pv_metrics_rule_call(r, 0, PV_RULE_KILL_INSNS);
    pv_metrics_rule_call(r, 0, PV_RULE_KILL_MEM);
    pv_metrics_rule_call(r, 0, PV_RULE_KILL_MEM);
    pv_metrics_rule *w = pv_metrics_rule_get("we\"ird\\na\nme");
    pv_metrics_rule_call(w, 1000, PV_RULE_KILL_TIME);

    pv_metrics_alert("anc_low", "high", "opened");
    pv_metrics_alert("anc_low", "high", "opened");
    pv_metrics_alert("anc_low", "bogus", "escalated");
    pv_metrics_alert("anc_low", "high", "existing"); /* ignored */
    pv_metrics_alert_line(
        "closed",
        "{\"seq\":4,\"event\":\"closed\",\"alert_id\":9,"
        "\"patient_id\":\"P\\\"rule\\\":\\\"x\",\"rule\":\"anc_low\","
        "\"signal\":\"s\",\"severity\":\"critical\",\"title\":\"t\"}");
    /* An engine alert's rule, new at raise time. */
    pv_metrics_alert("pvwatch.notify", "medium", "acknowledged");

    pv_metrics_wal_sync(50000);       /* 50 us: first bucket */
    pv_metrics_wal_sync(3000000);     /* 3 ms: le 0.005 */
    pv_metrics_wal_sync(20000000000); /* 20 s: +Inf only */
    pv_metrics_checkpoint(1000000, 0);
    pv_metrics_checkpoint(100000000, 1);
    pv_metrics_commit_batch(1);
    pv_metrics_commit_batch(16);
    pv_metrics_commit_batch(17);
    pv_metrics_commit_batch(5000);
}

static void test_render(void)
{
    populate();
    pv_buf b = PV_BUF_INIT;
    pv_metrics_render(NULL, &b);
    CHECK(pv_buf_ok(&b));
    const char *t = pv_buf_cstr(&b);
    CHECK_LINE(t, "pvwatch_messages_received_total{feed=\"mllp\"} 5");
    CHECK_LINE(t, "pvwatch_messages_received_total{feed=\"inbox_csv\"} 1");
    CHECK_LINE(t, "pvwatch_messages_received_total{feed=\"inbox_hl7\"} 0");
    CHECK_LINE(t, "pvwatch_messages_stored_total{feed=\"mllp\",ack=\"AA\"} 2");
    CHECK_LINE(t, "pvwatch_messages_stored_total{feed=\"mllp\",ack=\"AE\"} 1");
    CHECK_LINE(t, "pvwatch_messages_stored_total{feed=\"mllp\",ack=\"AR\"} 2");
    CHECK_LINE(t, "pvwatch_messages_stored_total{feed=\"tail\",ack=\"AA\"} 1");
    CHECK_LINE(t, "pvwatch_messages_failed_total{feed=\"mllp\"} 1");
    CHECK_LINE(t, "pvwatch_rows_rejected_total{feed=\"inbox_csv\"} 3");
    CHECK_LINE(t, "pvwatch_mllp_connections 1");
    CHECK_LINE(t, "pvwatch_mllp_connections_total 2");
    CHECK_LINE(t, "pvwatch_rule_calls_total{rule=\"anc_low\"} 5");
    CHECK_LINE(t, "pvwatch_rule_errors_total{rule=\"anc_low\"} 1");
    CHECK_LINE(t, "pvwatch_rule_budget_kills_total{rule=\"anc_low\","
                  "limit=\"instructions\"} 1");
    CHECK_LINE(t, "pvwatch_rule_budget_kills_total{rule=\"anc_low\","
                  "limit=\"memory\"} 2");
    CHECK_LINE(t, "pvwatch_rule_budget_kills_total{rule=\"anc_low\","
                  "limit=\"time\"} 0");
    CHECK_LINE(t, "pvwatch_rule_seconds_total{rule=\"anc_low\"} 2");
    /* Backslash, quote and newline escaped in a label value. */
    CHECK_LINE(t,
               "pvwatch_rule_budget_kills_total{rule=\"we\\\"ird\\\\na\\nme\","
               "limit=\"time\"} 1");
    CHECK_LINE(t, "pvwatch_alert_events_total{rule=\"anc_low\","
                  "severity=\"high\",event=\"opened\"} 2");
    CHECK_LINE(t, "pvwatch_alert_events_total{rule=\"anc_low\","
                  "severity=\"unknown\",event=\"escalated\"} 1");
    CHECK_LINE(t, "pvwatch_alert_events_total{rule=\"anc_low\","
                  "severity=\"critical\",event=\"closed\"} 1");
    CHECK_LINE(t, "pvwatch_alert_events_total{rule=\"pvwatch.notify\","
                  "severity=\"medium\",event=\"acknowledged\"} 1");
    CHECK(!strstr(t, "event=\"existing\""));
    CHECK(!strstr(t, "rule=\"x\""));
    CHECK_INT(count_lines_starting(t, "pvwatch_alert_events_total{"), 4);

    /* Histograms: cumulative, +Inf = count. */
    CHECK_LINE(t, "pvwatch_wal_sync_seconds_bucket{le=\"0.0001\"} 1");
    CHECK_LINE(t, "pvwatch_wal_sync_seconds_bucket{le=\"0.0025\"} 1");
    CHECK_LINE(t, "pvwatch_wal_sync_seconds_bucket{le=\"0.005\"} 2");
    CHECK_LINE(t, "pvwatch_wal_sync_seconds_bucket{le=\"10\"} 2");
    CHECK_LINE(t, "pvwatch_wal_sync_seconds_bucket{le=\"+Inf\"} 3");
    CHECK_LINE(t, "pvwatch_wal_sync_seconds_count 3");
    CHECK_LINE(t, "pvwatch_wal_sync_seconds_sum 20.00305");
    CHECK_LINE(t, "pvwatch_checkpoint_seconds_bucket{by=\"thread\","
                  "le=\"0.001\"} 1");
    CHECK_LINE(t, "pvwatch_checkpoint_seconds_bucket{by=\"writer\","
                  "le=\"0.05\"} 0");
    CHECK_LINE(t, "pvwatch_checkpoint_seconds_bucket{by=\"writer\","
                  "le=\"0.1\"} 1");
    CHECK_LINE(t, "pvwatch_checkpoint_seconds_count{by=\"writer\"} 1");
    CHECK_LINE(t, "pvwatch_commit_batch_messages_bucket{le=\"1\"} 1");
    CHECK_LINE(t, "pvwatch_commit_batch_messages_bucket{le=\"16\"} 2");
    CHECK_LINE(t, "pvwatch_commit_batch_messages_bucket{le=\"32\"} 3");
    CHECK_LINE(t, "pvwatch_commit_batch_messages_bucket{le=\"1000\"} 3");
    CHECK_LINE(t, "pvwatch_commit_batch_messages_bucket{le=\"+Inf\"} 4");
    CHECK_LINE(t, "pvwatch_commit_batch_messages_sum 5034");
    CHECK_LINE(t, "pvwatch_commit_batch_messages_count 4");

    CHECK(strstr(t, "pvwatch_build_info{version=\"") != NULL);
    CHECK(strstr(t, "\n# TYPE process_start_time_seconds gauge\n") != NULL);

    /* Every family: one HELP and one TYPE line, TYPE right after HELP. */
    static const char *const fams[] = {"pvwatch_messages_received_total",
                                       "pvwatch_messages_stored_total",
                                       "pvwatch_rule_calls_total",
                                       "pvwatch_alert_events_total",
                                       "pvwatch_wal_sync_seconds",
                                       "pvwatch_checkpoint_seconds",
                                       "pvwatch_commit_batch_messages",
                                       "pvwatch_build_info",
                                       "pvwatch_ready"};
    for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++) {
        char help[128], type[128];
        snprintf(help, sizeof help, "# HELP %s ", fams[i]);
        snprintf(type, sizeof type, "# TYPE %s ", fams[i]);
        CHECK_INT(count_lines_starting(t, help), 1);
        CHECK_INT(count_lines_starting(t, type), 1);
    }
    /* Counters are named _total; no line is longer than a sane limit and
     * every sample line ends with a number. */
    for (const char *p = t; *p;) {
        const char *nl = strchr(p, '\n');
        CHECK(nl != NULL);
        if (!nl)
            break;
        if (strncmp(p, "# TYPE ", 7) == 0 && strstr(p, " counter\n") &&
            strstr(p, " counter\n") < nl + 1) {
            const char *name_end = strchr(p + 7, ' ');
            CHECK(name_end - 6 >= p && strncmp(name_end - 6, "_total", 6) == 0);
        }
        p = nl + 1;
    }
    pv_buf_free(&b);
}

static void test_outbox_gauge(void)
{
    pv_metrics_reset();
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open(":memory:", &db), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db,
                           "CREATE TABLE outbox (id INTEGER PRIMARY KEY, "
                           "status TEXT NOT NULL DEFAULT 'pending');"
                           "INSERT INTO outbox (status) VALUES ('pending'),"
                           "('pending'),('sent'),('failed'),('pending');",
                           NULL, NULL, NULL),
              SQLITE_OK);
    pv_buf b = PV_BUF_INIT;
    pv_metrics_render(db, &b);
    const char *t = pv_buf_cstr(&b);
    CHECK_LINE(t, "pvwatch_outbox_messages{status=\"pending\"} 3");
    CHECK_LINE(t, "pvwatch_outbox_messages{status=\"sent\"} 1");
    CHECK_LINE(t, "pvwatch_outbox_messages{status=\"failed\"} 1");
    /* No rule registered: no empty rule family. */
    CHECK(!strstr(t, "pvwatch_rule_calls_total"));
    pv_buf_free(&b);
    /* No outbox table (a database from elsewhere): the gauge is left out. */
    CHECK_INT(sqlite3_exec(db, "DROP TABLE outbox", NULL, NULL, NULL),
              SQLITE_OK);
    pv_metrics_render(db, &b);
    CHECK(!strstr(pv_buf_cstr(&b), "pvwatch_outbox_messages"));
    pv_buf_free(&b);
    sqlite3_close(db);
}

static void test_ready(void)
{
    pv_metrics_reset();
    pv_buf why = PV_BUF_INIT;
    CHECK_INT(pv_metrics_ready(&why), 0);
    CHECK_STR(pv_buf_cstr(&why), "database not open and writable\n"
                                 "rules not loaded\nlisteners not bound\n");
    pv_buf_reset(&why);
    pv_metrics_set_ready(PV_READY_DB | PV_READY_LISTENERS, 1);
    CHECK_INT(pv_metrics_ready(&why), 0);
    CHECK_STR(pv_buf_cstr(&why), "rules not loaded\n");
    pv_metrics_set_ready(PV_READY_RULES, 1);
    pv_buf_reset(&why);
    CHECK_INT(pv_metrics_ready(&why), 1);
    CHECK_INT(why.len, 0);
    CHECK_INT(pv_metrics_ready(NULL), 1);
    pv_buf b = PV_BUF_INIT;
    pv_metrics_render(NULL, &b);
    CHECK_LINE(pv_buf_cstr(&b), "pvwatch_ready{part=\"db\"} 1");
    pv_buf_free(&b);
    /* A failed commit: not writable until the next one succeeds. */
    pv_metrics_db_write(0);
    pv_buf_reset(&why);
    CHECK_INT(pv_metrics_ready(&why), 0);
    CHECK_STR(pv_buf_cstr(&why), "database not writable: the last commit or "
                                 "WAL sync failed\n");
    pv_metrics_render(NULL, &b);
    CHECK_LINE(pv_buf_cstr(&b), "pvwatch_ready{part=\"db\"} 0");
    pv_buf_free(&b);
    pv_metrics_db_write(1);
    CHECK_INT(pv_metrics_ready(NULL), 1);
    pv_buf_reset(&why);
    pv_metrics_set_ready(PV_READY_DB, 0);
    CHECK_INT(pv_metrics_ready(&why), 0);
    CHECK_STR(pv_buf_cstr(&why), "database not open and writable\n");
    pv_metrics_render(NULL, &b);
    CHECK_LINE(pv_buf_cstr(&b), "pvwatch_ready{part=\"db\"} 0");
    CHECK_LINE(pv_buf_cstr(&b), "pvwatch_ready{part=\"rules\"} 1");
    pv_buf_free(&b);
    pv_buf_free(&why);
}

/* The table: past its end, one shared "_other" entry; names too long for
 * an entry go there too. */
static void test_rule_table(void)
{
    pv_metrics_reset();
    char longname[200];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    pv_metrics_rule *lg = pv_metrics_rule_get(longname);
    pv_metrics_rule_call(lg, 1, PV_RULE_OK);
    char name[64];
    for (int i = 0; i < PV_METRICS_MAX_RULES; i++) {
        snprintf(name, sizeof name, "r%d", i);
        pv_metrics_rule_call(pv_metrics_rule_get(name), 1, PV_RULE_OK);
    }
    pv_metrics_rule *o1 = pv_metrics_rule_get("one-too-many");
    pv_metrics_rule *o2 = pv_metrics_rule_get("two-too-many");
    CHECK(o1 == o2);
    CHECK(o1 == lg);
    pv_metrics_rule_call(o1, 1, PV_RULE_OK);
    pv_metrics_rule_call(o2, 1, PV_RULE_OK);
    CHECK(pv_metrics_rule_get("r7") != o1);
    pv_buf b = PV_BUF_INIT;
    pv_metrics_render(NULL, &b);
    const char *t = pv_buf_cstr(&b);
    CHECK_LINE(t, "pvwatch_rule_calls_total{rule=\"r1023\"} 1");
    CHECK_LINE(t, "pvwatch_rule_calls_total{rule=\"_other\"} 3");
    CHECK_INT(count_lines_starting(t, "pvwatch_rule_calls_total{"),
              PV_METRICS_MAX_RULES + 1);
    pv_buf_free(&b);
    pv_metrics_reset();
}

/* Readers on other threads while the loop thread bumps and registers:
 * every scrape sees whole, non-decreasing values (run under valgrind's
 * helgrind or TSan to see the absence of races; here: the values). */
/* Atomic, not volatile: ThreadSanitizer reported the plain int (issue 20). */
static atomic_int stop_readers;
static void *reader(void *arg)
{
    (void)arg;
    long scrapes = 0;
    while (!atomic_load(&stop_readers) || scrapes < 3) {
        pv_buf b = PV_BUF_INIT;
        pv_metrics_render(NULL, &b);
        if (!pv_buf_ok(&b))
            abort();
        pv_buf_free(&b);
        scrapes++;
    }
    return NULL;
}

static void test_threads(void)
{
    pv_metrics_reset();
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, reader, NULL);
    char name[32];
    for (int i = 0; i < 20000; i++) {
        pv_metrics_received(PV_FEED_MLLP);
        if (i % 100 == 0) {
            snprintf(name, sizeof name, "rule%d", i / 100);
            pv_metrics_rule_call(pv_metrics_rule_get(name), 10, PV_RULE_OK);
        }
        pv_metrics_commit_batch(i % 40);
    }
    atomic_store(&stop_readers, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    pv_buf b = PV_BUF_INIT;
    pv_metrics_render(NULL, &b);
    CHECK_LINE(pv_buf_cstr(&b),
               "pvwatch_messages_received_total{feed=\"mllp\"} 20000");
    CHECK_LINE(pv_buf_cstr(&b), "pvwatch_commit_batch_messages_count 20000");
    CHECK_LINE(pv_buf_cstr(&b), "pvwatch_rule_calls_total{rule=\"rule199\"} 1");
    pv_buf_free(&b);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--print") == 0) {
        populate();
        pv_metrics_set_ready(PV_READY_DB, 1);
        sqlite3 *db = NULL;
        sqlite3_open(":memory:", &db);
        sqlite3_exec(db,
                     "CREATE TABLE outbox (status TEXT);"
                     "INSERT INTO outbox VALUES ('pending'), ('sent');",
                     NULL, NULL, NULL);
        pv_buf b = PV_BUF_INIT;
        pv_metrics_render(db, &b);
        fputs(pv_buf_cstr(&b), stdout);
        pv_buf_free(&b);
        sqlite3_close(db);
        return pv_buf_ok(&b) ? 0 : 1;
    }
    test_render();
    test_outbox_gauge();
    test_ready();
    test_rule_table();
    test_threads();
    return pv_test_report();
}

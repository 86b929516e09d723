/* test_alert_log_queue: the alert-log line of a workflow action taken by a
 * command beside a running engine (issue 22 item 9). The command must not
 * write the log (only the lock holder does: recovery beside the engine
 * would write the engine's lines twice), so it opens no log file; with
 * pv_alerts_set_queue_only its action's line is still queued in
 * alert_log_queue, in the action's own transaction, and the engine writes
 * it (pv_alerts_write up to the queue's last row, as engine.c's
 * write_others_lines does). Each line reaches the file once: the engine's
 * next write and a restart's recovery write nothing twice. Without queue
 * mode (before the fix) the action left no line anywhere.
 * Real SQLite and a real log file in a temporary directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alerts.h"
#include "error.h"
#include "store.h"
#include "test.h"

static char tmpdir[] = "/tmp/pv_test_alert_log_queue.XXXXXX";

/* How many lines of the file contain 'needle'. */
static int count_lines(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, needle))
            n++;
    fclose(f);
    return n;
}

static int64_t one_int(pv_store *s, const char *sql)
{
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_prepare_v2(pv_store_db(s), sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void issue22_item09_cli_action_line_queued(void)
{
    char db[512], log[512], err[256];
    snprintf(db, sizeof db, "%s/q.db", tmpdir);
    snprintf(log, sizeof log, "%s/q.jsonl", tmpdir);
    pv_store *es = NULL, *cs = NULL;
    pv_alerts *eng = NULL, *cli = NULL;
    CHECK_INT(pv_store_open(db, &es, err, sizeof err), 0);
    if (!es)
        return;
    CHECK_INT(pv_alerts_open(es, log, &eng, err, sizeof err), 0);
    /* The engine raises an alert; its line is written. */
    pv_alert_in in = {.patient_id = "P1",
                      .rule = "t.rule",
                      .signal = "test",
                      .severity = "low",
                      .title = "t",
                      .key = "k",
                      .evidence_json = "[]"};
    int64_t id = 0;
    CHECK_INT(pv_store_begin(es), 0);
    CHECK_INT(pv_alerts_raise(eng, &in, NULL, &id), 0);
    CHECK_INT(pv_store_commit(es), 0);
    CHECK_INT(pv_alerts_committed(eng), 0);
    CHECK_INT(count_lines(log, "\"opened\""), 1);

    /* A command beside it: its own connection, no log file, queue mode. */
    CHECK_INT(pv_store_open(db, &cs, err, sizeof err), 0);
    CHECK_INT(pv_alerts_open(cs, NULL, &cli, err, sizeof err), 0);
    if (!cs || !cli)
        goto out;
    pv_alerts_set_queue_only(cli);
    CHECK_INT(pv_alerts_act(cli, id, "ack", "nurse", "called", err, sizeof err),
              0);
    /* Committed with the action, not written by the command. */
    CHECK_INT(count_lines(log, "\"acknowledged\""), 0);
    CHECK_INT(one_int(cs, "SELECT count(*) FROM alert_log_queue WHERE line "
                          "LIKE '%\"acknowledged\"%'"),
              1);
    pv_alerts_close(cli);
    cli = NULL;

    /* The engine writes what the queue holds past its own lines. */
    int64_t last = one_int(es, "SELECT max(id) FROM alert_log_queue");
    CHECK(last > 0);
    pv_alerts_lines l = {0, last, 0};
    CHECK_INT(pv_alerts_write(eng, l), 0);
    CHECK_INT(count_lines(log, "\"acknowledged\""), 1);
    CHECK_INT(count_lines(log, "\"note\":\"called\""), 1);
    /* Again (the next watch tick): nothing twice. */
    CHECK_INT(pv_alerts_write(eng, l), 0);
    CHECK_INT(count_lines(log, "\"acknowledged\""), 1);

    /* A restart: recovery writes no line twice; the queue is emptied. */
    pv_alerts_close(eng);
    eng = NULL;
    CHECK_INT(pv_alerts_open(es, log, &eng, err, sizeof err), 0);
    CHECK_INT(count_lines(log, "\"opened\""), 1);
    CHECK_INT(count_lines(log, "\"acknowledged\""), 1);
    CHECK_INT(one_int(es, "SELECT count(*) FROM alert_log_queue"), 0);

    /* Without queue mode a log-less pv_alerts queues nothing (reads and
     * tests that want no log at all). */
    CHECK_INT(pv_alerts_open(cs, NULL, &cli, err, sizeof err), 0);
    CHECK_INT(pv_alerts_act(cli, id, "close", "nurse", NULL, err, sizeof err),
              0);
    CHECK_INT(one_int(cs, "SELECT count(*) FROM alert_log_queue"), 0);
out:
    pv_alerts_close(cli);
    pv_alerts_close(eng);
    pv_store_close(cs);
    pv_store_close(es);
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s%s", db, sfx[i]);
        unlink(p);
    }
    unlink(log);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    issue22_item09_cli_action_line_queued();
    rmdir(tmpdir);
    return pv_test_report();
}

/* test_alert_log: the order and completeness of the alert log when commits
 * become durable in two ways: an MLLP batch's lines wait for its WAL sync
 * (pv_alerts_take, later pv_alerts_write) while an ordinary commit writes
 * its lines at once (pv_alerts_committed). Lines must reach the file in
 * seq order and each once; otherwise a crash before the batch's sync would
 * leave earlier lines out for good (recovery trusts the file's last seq).
 * Real SQLite and a real log file in a temporary directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alerts.h"
#include "error.h"
#include "store.h"
#include "test.h"

static char tmpdir[] = "/tmp/pv_test_alert_log.XXXXXX";

static int raise(pv_alerts *a, const char *patient)
{
    pv_alert_in in = {.patient_id = patient,
                      .rule = "t.rule",
                      .signal = "test",
                      .severity = "low",
                      .title = "t",
                      .key = "k",
                      .evidence_json = "[]"};
    return pv_alerts_raise(a, &in, NULL, NULL);
}

/* The patient ids of the log's lines, in file order, joined by ','. */
static void log_patients(const char *path, char *out, size_t cap)
{
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[8192];
    while (fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "\"patient_id\":\"");
        if (!p)
            continue;
        p += strlen("\"patient_id\":\"");
        const char *e = strchr(p, '"');
        if (!e)
            continue;
        if (out[0])
            strncat(out, ",", cap - strlen(out) - 1);
        strncat(out, p,
                (size_t)(e - p) < cap - strlen(out) - 1
                    ? (size_t)(e - p)
                    : cap - strlen(out) - 1);
    }
    fclose(f);
}

static void test_order(void)
{
    char db[512], log[512], err[256], got[512];
    snprintf(db, sizeof db, "%s/order.db", tmpdir);
    snprintf(log, sizeof log, "%s/order.jsonl", tmpdir);
    pv_store *s = NULL;
    pv_alerts *a = NULL;
    CHECK_INT(pv_store_open(db, &s, err, sizeof err), 0);
    CHECK_INT(pv_alerts_open(s, log, &a, err, sizeof err), 0);
    if (!s || !a)
        return;

    /* Batch 1 (relaxed): A, its lines taken, waiting for the sync. */
    CHECK_INT(pv_store_begin_relaxed(s), 0);
    CHECK_INT(raise(a, "A"), 0);
    CHECK_INT(pv_store_commit(s), 0);
    pv_alerts_lines l1 = pv_alerts_take(a);
    CHECK(l1.last > 0);
    log_patients(log, got, sizeof got);
    CHECK_STR(got, "");

    /* Batch 2 (relaxed): B, also waiting. */
    CHECK_INT(pv_store_begin_relaxed(s), 0);
    CHECK_INT(raise(a, "B"), 0);
    CHECK_INT(pv_store_commit(s), 0);
    pv_alerts_lines l2 = pv_alerts_take(a);
    CHECK(l2.first > l1.last);

    /* An ordinary commit (C) meanwhile: it is on disk, and so is all
     * before it, so A, B and C are written, in that order. */
    CHECK_INT(pv_store_begin(s), 0);
    CHECK_INT(raise(a, "C"), 0);
    CHECK_INT(pv_store_commit(s), 0);
    CHECK_INT(pv_alerts_committed(a), 0);
    log_patients(log, got, sizeof got);
    CHECK_STR(got, "A,B,C");

    /* The batches' syncs return later: nothing is written twice. */
    CHECK_INT(pv_alerts_write(a, l1), 0);
    CHECK_INT(pv_alerts_write(a, l2), 0);
    log_patients(log, got, sizeof got);
    CHECK_STR(got, "A,B,C");

    /* Batch 3 waits while batch 4 is synced first would be a bug in the
     * caller; in order: D then E, each once. */
    CHECK_INT(pv_store_begin_relaxed(s), 0);
    CHECK_INT(raise(a, "D"), 0);
    CHECK_INT(pv_store_commit(s), 0);
    pv_alerts_lines l3 = pv_alerts_take(a);
    CHECK_INT(pv_store_begin_relaxed(s), 0);
    CHECK_INT(raise(a, "E"), 0);
    /* A batch still open is never written, even when an earlier one is. */
    CHECK_INT(pv_alerts_write(a, l3), 0);
    log_patients(log, got, sizeof got);
    CHECK_STR(got, "A,B,C,D");
    CHECK_INT(pv_store_commit(s), 0);
    pv_alerts_lines l4 = pv_alerts_take(a);
    CHECK_INT(pv_alerts_write(a, l4), 0);
    log_patients(log, got, sizeof got);
    CHECK_STR(got, "A,B,C,D,E");

    /* A stop after a commit whose lines were never written: the next open
     * writes them (recovery), once. */
    CHECK_INT(pv_store_begin_relaxed(s), 0);
    CHECK_INT(raise(a, "F"), 0);
    CHECK_INT(pv_store_commit(s), 0);
    (void)pv_alerts_take(a);
    pv_alerts_close(a);
    a = NULL;
    CHECK_INT(pv_alerts_open(s, log, &a, err, sizeof err), 0);
    log_patients(log, got, sizeof got);
    CHECK_STR(got, "A,B,C,D,E,F");
    pv_alerts_close(a);
    a = NULL;
    CHECK_INT(pv_alerts_open(s, log, &a, err, sizeof err), 0);
    log_patients(log, got, sizeof got);
    CHECK_STR(got, "A,B,C,D,E,F");
    pv_alerts_close(a);
    pv_store_close(s);
    unlink(log);
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s%s", db, sfx[i]);
        unlink(p);
    }
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    test_order();
    rmdir(tmpdir);
    return pv_test_report();
}

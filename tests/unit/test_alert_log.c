/* test_alert_log: the order and completeness of the alert log when commits
 * become durable in two ways: an MLLP batch's lines wait for its WAL sync
 * (pv_alerts_take, later pv_alerts_write) while an ordinary commit writes
 * its lines at once (pv_alerts_committed). Lines must reach the file in
 * seq order and each once; otherwise a crash before the batch's sync would
 * leave earlier lines out for good (recovery trusts the file's last seq).
 * Lines of a savepoint that was rolled back (an inbox file found to be a
 * duplicate after its rules ran) leave no gap: their seqs are used again,
 * and those lines are written. A last line cut short (a crash in the
 * middle of a write, or a power cut) is cut off at the next open and
 * written again whole.
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

/* A store and an alert log of their own in tmpdir (NAME.db, NAME.jsonl);
 * 0 when either did not open. */
static int open_case(const char *name, char *db, char *log, size_t cap,
                     pv_store **s, pv_alerts **a)
{
    char err[256];
    snprintf(db, cap, "%s/%s.db", tmpdir, name);
    snprintf(log, cap, "%s/%s.jsonl", tmpdir, name);
    *s = NULL;
    *a = NULL;
    CHECK_INT(pv_store_open(db, s, err, sizeof err), 0);
    if (*s)
        CHECK_INT(pv_alerts_open(*s, log, a, err, sizeof err), 0);
    return *s && *a;
}

static void close_case(pv_store *s, pv_alerts *a, const char *db,
                       const char *log)
{
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

static void test_order(void)
{
    char db[512], log[512], err[256], got[512];
    pv_store *s;
    pv_alerts *a;
    if (!open_case("order", db, log, sizeof db, &s, &a))
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
    close_case(s, a, db, log);
}

static void test_rolled_back_savepoint(void)
{
    char db[512], log[512], got[512];
    pv_store *s;
    pv_alerts *a;
    if (!open_case("rewind", db, log, sizeof db, &s, &a))
        return;
    /* One transaction: A, then a savepoint with B that is rolled back
     * (pv_store_rollback_to releases it too). */
    CHECK_INT(pv_store_begin(s), 0);
    CHECK_INT(raise(a, "A"), 0);
    CHECK_INT(pv_store_savepoint(s), 0);
    size_t mark = pv_alerts_mark(a);
    CHECK_INT(raise(a, "B"), 0);
    pv_store_rollback_to(s);
    pv_alerts_rewind(a, mark);
    CHECK_INT(pv_store_commit(s), 0);
    CHECK_INT(pv_alerts_committed(a), 0);
    log_patients(log, got, sizeof got);
    CHECK_STR(got, "A");
    /* The next line takes B's seq again, and is written. */
    CHECK_INT(pv_store_begin(s), 0);
    CHECK_INT(raise(a, "C"), 0);
    CHECK_INT(pv_store_commit(s), 0);
    CHECK_INT(pv_alerts_committed(a), 0);
    log_patients(log, got, sizeof got);
    CHECK_STR(got, "A,C");
    /* Only a savepoint rolled back: A stays queued for its commit. */
    CHECK_INT(pv_store_begin(s), 0);
    CHECK_INT(pv_store_savepoint(s), 0);
    mark = pv_alerts_mark(a);
    CHECK_INT(raise(a, "D"), 0);
    pv_store_rollback_to(s);
    pv_alerts_rewind(a, mark);
    CHECK_INT(raise(a, "E"), 0);
    CHECK_INT(pv_store_commit(s), 0);
    CHECK_INT(pv_alerts_committed(a), 0);
    log_patients(log, got, sizeof got);
    CHECK_STR(got, "A,C,E");
    close_case(s, a, db, log);
}

static void test_torn_last_line(void)
{
    char db[512], log[512], err[256], got[512];
    pv_store *s;
    pv_alerts *a;
    if (!open_case("torn", db, log, sizeof db, &s, &a))
        return;
    CHECK_INT(pv_store_begin(s), 0);
    CHECK_INT(raise(a, "A"), 0);
    CHECK_INT(raise(a, "B"), 0);
    CHECK_INT(pv_store_commit(s), 0);
    CHECK_INT(pv_alerts_committed(a), 0);
    /* Closed inside a transaction, as a kill leaves it: no row leaves the
     * queue (a clean stop syncs the file, then empties the queue). */
    CHECK_INT(pv_store_begin(s), 0);
    pv_alerts_close(a);
    a = NULL;
    pv_store_rollback(s);
    /* The file loses the end of B's line, as after a power cut. */
    FILE *f = fopen(log, "r");
    CHECK(f != NULL);
    char text[8192];
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f)
        fclose(f);
    CHECK(n > 40);
    CHECK_INT(truncate(log, (off_t)(n - 20)), 0);
    CHECK_INT(pv_alerts_open(s, log, &a, err, sizeof err), 0);
    log_patients(log, got, sizeof got);
    CHECK_STR(got, "A,B");
    f = fopen(log, "r");
    int lines = 0, whole = 1;
    char line[8192];
    while (f && fgets(line, sizeof line, f)) {
        lines++;
        size_t len = strlen(line);
        whole = whole && len > 2 && line[0] == '{' && line[len - 2] == '}' &&
                line[len - 1] == '\n';
    }
    if (f)
        fclose(f);
    CHECK_INT(lines, 2);
    CHECK(whole);
    close_case(s, a, db, log);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    test_order();
    test_rolled_back_savepoint();
    test_torn_last_line();
    rmdir(tmpdir);
    return pv_test_report();
}

/* test_alert_log_enospc: the alert log when the file cannot grow (issue
 * 22, item 10). Without a mount: a file-size limit (RLIMIT_FSIZE, SIGXFSZ
 * ignored) makes write(2) fail with EFBIG part-way through a chunk, as a
 * full disk fails with ENOSPC. The file must keep only whole lines (the
 * part of a line is cut off), every committed line must stay queued until
 * it is in the file, the commit must stand (pv_alerts_committed returns
 * 0), pv_alerts_flush must count exactly the lines still owed, and once
 * the limit is lifted every line must be in the file exactly once, in seq
 * order, and the queue empty after the close; the same again across a
 * close and a reopen (the start-up recovery on a file that cannot grow).
 * Real SQLite and a real log file in a temporary directory. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alerts.h"
#include "error.h"
#include "store.h"
#include "test.h"

static char tmpdir[] = "/tmp/pv_test_alert_log_enospc.XXXXXX";
static char db[600], logp[600];

/* Lines with no seq that make the log big, so that the limit is above
 * what the database needs (RLIMIT_FSIZE binds its WAL too: after the
 * migrations of issue 16 a new database's WAL is about 400 KB until the
 * first checkpoint, so the log starts at about 800 KB). */
#define FILLER_LINES 8000

static void set_limit(rlim_t bytes)
{
    struct rlimit r;
    getrlimit(RLIMIT_FSIZE, &r);
    r.rlim_cur = bytes;
    CHECK_INT(setrlimit(RLIMIT_FSIZE, &r), 0);
}

static off_t file_size(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 ? sb.st_size : -1;
}

/* The seqs of the log's lines in order (filler lines skipped); -1 when a
 * line is not whole (no newline at the end, or not one JSON object). */
static int read_seqs(long long *seqs, int cap)
{
    FILE *f = fopen(logp, "r");
    if (!f)
        return -1;
    char line[8192];
    int n = 0, bad = 0;
    while (fgets(line, sizeof line, f)) {
        size_t len = strlen(line);
        if (len == 0 || line[len - 1] != '\n' || line[0] != '{' || len < 3 ||
            line[len - 2] != '}')
            bad = 1;
        if (strncmp(line, "{\"seq\":", 7) == 0 && n < cap)
            seqs[n++] = strtoll(line + 7, NULL, 10);
    }
    fclose(f);
    return bad ? -1 : n;
}

static long queued(pv_store *s)
{
    sqlite3_stmt *st;
    long n = -1;
    if (sqlite3_prepare_v2(pv_store_db(s),
                           "SELECT count(*) FROM alert_log_queue", -1, &st,
                           NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = (long)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static int raise_many(pv_store *s, pv_alerts *a, int from, int count)
{
    int rc = pv_store_begin(s);
    for (int i = from; !rc && i < from + count; i++) {
        char patient[32];
        snprintf(patient, sizeof patient, "P%d", i);
        pv_alert_in in = {.patient_id = patient,
                          .rule = "t.rule",
                          .signal = "test",
                          .severity = "low",
                          .title = "a title of some length for the line",
                          .detail = "a detail that makes the line longer",
                          .key = "k",
                          .evidence_json = "[]"};
        rc = pv_alerts_raise(a, &in, NULL, NULL);
    }
    if (!rc)
        rc = pv_store_commit(s);
    if (rc) {
        pv_store_rollback(s);
        pv_alerts_rolled_back(a);
        return rc;
    }
    return pv_alerts_committed(a);
}

/* Every seq 1..n once, in order. */
static void check_complete(int n)
{
    long long seqs[512];
    int got = read_seqs(seqs, 512);
    CHECK_INT(got, n);
    int in_order = got == n;
    for (int i = 0; in_order && i < n; i++)
        in_order = seqs[i] == i + 1;
    CHECK(in_order);
}

static void issue22_item10_full_file(void)
{
    pv_store *s = NULL;
    pv_alerts *a = NULL;
    char err[256];
    FILE *f = fopen(logp, "w");
    for (int i = 0; f && i < FILLER_LINES; i++)
        fprintf(f,
                "{\"filler\":%d,\"text\":\"................................"
                "..........................................\"}\n",
                i);
    if (f)
        fclose(f);
    CHECK_INT(pv_store_open(db, &s, err, sizeof err), 0);
    CHECK_INT(pv_alerts_open(s, logp, &a, err, sizeof err), 0);
    if (!s || !a)
        return;
    off_t base = file_size(logp);
    CHECK(base > 300000);

    /* Room for a few lines and a part of one. */
    set_limit((rlim_t)base + 2500);
    CHECK_INT(raise_many(s, a, 0, 60), 0); /* the commit stands */
    long long seqs[512];
    int in_file = read_seqs(seqs, 512);
    CHECK(in_file > 0 && in_file < 60); /* whole lines only (-1 if torn) */
    CHECK_INT(pv_alerts_flush(a), 60 - in_file);
    CHECK(queued(s) >= 60 - in_file);

    /* More commits while full: their lines wait behind the first ones. */
    CHECK_INT(raise_many(s, a, 60, 20), 0);
    CHECK_INT(read_seqs(seqs, 512), in_file);
    CHECK_INT(pv_alerts_flush(a), 80 - in_file);

    /* Close and reopen while still full: the recovery writes nothing it
     * cannot write whole and deletes nothing not in the file. */
    pv_alerts_close(a);
    a = NULL;
    CHECK_INT(pv_alerts_open(s, logp, &a, err, sizeof err), 0);
    if (!a) {
        pv_store_close(s);
        return;
    }
    in_file = read_seqs(seqs, 512);
    CHECK(in_file >= 0 && in_file < 80);
    CHECK_INT(pv_alerts_flush(a), 80 - in_file);
    CHECK(queued(s) >= 80 - in_file);

    /* Space returns: the next commit writes the waiting lines first. */
    set_limit(RLIM_INFINITY);
    CHECK_INT(raise_many(s, a, 80, 1), 0);
    CHECK_INT(pv_alerts_flush(a), 0);
    check_complete(81);
    pv_alerts_close(a);
    CHECK_INT(queued(s), 0);

    /* And the recovery alone, with space: nothing written twice. */
    CHECK_INT(pv_alerts_open(s, logp, &a, err, sizeof err), 0);
    check_complete(81);
    pv_alerts_close(a);
    pv_store_close(s);
}

int main(void)
{
    signal(SIGXFSZ, SIG_IGN); /* write(2) fails with EFBIG instead */
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(db, sizeof db, "%s/t.db", tmpdir);
    snprintf(logp, sizeof logp, "%s/t.jsonl", tmpdir);
    issue22_item10_full_file();
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char p[700];
        snprintf(p, sizeof p, "%s%s", db, sfx[i]);
        unlink(p);
    }
    unlink(logp);
    rmdir(tmpdir);
    return pv_test_report();
}

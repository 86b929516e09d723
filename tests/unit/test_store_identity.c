/* test_store_identity: issue 22 items 8 and 9 at the store's level.
 *
 * Item 8: a database file deleted, replaced (mv over it) or whose WAL is
 * deleted while the store has it open makes every later commit, ordinary
 * or relaxed, fail with PV_EGONE and commit nothing; the sentence names
 * the path; the open database can be copied out with every commit; the
 * engine's last commit can be let through. Item 9: the single-instance
 * lock file beside the database. Real files in a temporary directory,
 * real SQLite, real flock(2) (a child process for the other holder). */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "store.h"
#include "test.h"

static char tmpdir[] = "/tmp/pv_test_store_identity.XXXXXX";

static pv_store *open_or_die(const char *path)
{
    pv_store *s = NULL;
    char err[512] = "";
    int rc = pv_store_open(path, &s, err, sizeof err);
    if (rc || !s) {
        fprintf(stderr, "pv_store_open(%s): %d %s\n", path, rc, err);
        exit(2);
    }
    return s;
}

/* One transaction that adds patient id, committed the ordinary or the
 * relaxed way; returns the commit's result (rolled back on failure). */
static int add_patient(pv_store *s, const char *id, int relaxed)
{
    int rc = relaxed ? pv_store_begin_relaxed(s) : pv_store_begin(s);
    if (rc)
        return rc;
    rc = pv_store_patient(s, id, NULL, NULL);
    if (!rc)
        rc = pv_store_commit(s);
    if (rc)
        pv_store_rollback(s);
    return rc;
}

static long long count_patients(const char *path)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    long long n = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT count(*) FROM patients", -1, &st,
                           NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return n;
}

static int contains(const char *hay, const char *needle)
{
    return hay && strstr(hay, needle) != NULL;
}

/* The database unlinked: both kinds of commit refused, for good. */
static void issue22_item08_database_deleted(void)
{
    char path[256], copy[4200];
    snprintf(path, sizeof path, "%s/deleted.db", tmpdir);
    pv_store *s = open_or_die(path);
    CHECK_INT(pv_store_check(s), 0);
    CHECK(pv_store_gone(s) == NULL);
    CHECK_INT(add_patient(s, "P1", 0), 0);
    CHECK_INT(add_patient(s, "P2", 1), 0);
    CHECK_INT(pv_store_sync_wal(s), 0);
    CHECK_INT(unlink(path), 0);
    CHECK_INT(add_patient(s, "P3", 1), PV_EGONE);
    CHECK(contains(pv_store_gone(s), path));
    CHECK(contains(pv_store_gone(s), "was deleted"));
    CHECK(contains(pv_store_errmsg(s), "was deleted"));
    CHECK_INT(pv_store_in_tx(s), 0);
    /* Sticky, the ordinary way too. */
    CHECK_INT(add_patient(s, "P4", 0), PV_EGONE);
    CHECK_INT(pv_store_check(s), PV_EGONE);
    /* The open database holds every commit before the deletion, and the
     * copy has them. */
    CHECK_INT(pv_store_rescue(s, copy, sizeof copy), 0);
    CHECK(strncmp(copy, path, strlen(path)) == 0 &&
          contains(copy, ".rescued-"));
    CHECK_INT(count_patients(copy), 2);
    /* The engine's last alert goes into the open file once allowed. */
    pv_store_accept_gone(s);
    CHECK_INT(add_patient(s, "P5", 0), 0);
    /* A second copy never overwrites the first. */
    char copy2[4200];
    CHECK_INT(pv_store_rescue(s, copy2, sizeof copy2), 0);
    CHECK(strcmp(copy, copy2) != 0);
    CHECK_INT(count_patients(copy2), 3);
    CHECK_INT(count_patients(copy), 2);
    pv_store_close(s);
    /* Nothing was stored at the path: a new file would be empty. */
    struct stat st;
    CHECK(stat(path, &st) != 0);
}

/* Another database moved over the path (mv new.db pv.db). */
static void issue22_item08_database_replaced(void)
{
    char path[256], other[256];
    snprintf(path, sizeof path, "%s/replaced.db", tmpdir);
    snprintf(other, sizeof other, "%s/other.db", tmpdir);
    pv_store *s = open_or_die(path);
    CHECK_INT(add_patient(s, "P1", 0), 0);
    pv_store *o = open_or_die(other);
    pv_store_close(o);
    CHECK_INT(rename(other, path), 0);
    CHECK_INT(add_patient(s, "P2", 0), PV_EGONE);
    CHECK(contains(pv_store_gone(s), "was replaced"));
    CHECK(contains(pv_store_gone(s), path));
    CHECK_INT(add_patient(s, "P3", 1), PV_EGONE);
    pv_store_close(s);
    /* The replaced database's WAL is not left at the path, where the
     * next open would replay it into the other file. */
    char wal[300];
    snprintf(wal, sizeof wal, "%s-wal", path);
    struct stat st;
    CHECK(stat(wal, &st) != 0);
    /* The file now at the path got none of them. */
    CHECK_INT(count_patients(path), 0);
}

/* The WAL deleted: its commits would be lost with it. */
static void issue22_item08_wal_deleted(void)
{
    char path[256], wal[300];
    snprintf(path, sizeof path, "%s/walgone.db", tmpdir);
    snprintf(wal, sizeof wal, "%s-wal", path);
    pv_store *s = open_or_die(path);
    CHECK_INT(add_patient(s, "P1", 1), 0);
    CHECK_INT(unlink(wal), 0);
    CHECK_INT(add_patient(s, "P2", 1), PV_EGONE);
    CHECK(contains(pv_store_gone(s), "WAL"));
    CHECK(contains(pv_store_gone(s), wal));
    pv_store_close(s);
    /* The database file itself was never gone: closing copied the
     * deleted WAL's commit into it; the refused one is not there. */
    CHECK_INT(count_patients(path), 1);
}

/* A store that is left alone passes, commit after commit; in memory
 * there is nothing to check. */
static void issue22_item08_unchanged_passes(void)
{
    char path[256];
    snprintf(path, sizeof path, "%s/same.db", tmpdir);
    pv_store *s = open_or_die(path);
    char id[32];
    int bad = 0;
    for (int i = 0; i < 200; i++) {
        snprintf(id, sizeof id, "P%d", i);
        bad += add_patient(s, id, i % 2) != 0;
    }
    CHECK_INT(bad, 0);
    CHECK(pv_store_gone(s) == NULL);
    pv_store_close(s);
    pv_store *m = open_or_die(":memory:");
    CHECK_INT(add_patient(m, "P1", 0), 0);
    CHECK_INT(pv_store_check(m), 0);
    char copy[64];
    CHECK_INT(pv_store_rescue(m, copy, sizeof copy), PV_ESTATE);
    pv_store_close(m);
}

static long read_pid(const char *lock)
{
    char buf[32] = "";
    int fd = open(lock, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return strtol(buf, NULL, 10);
}

/* Item 9: one exclusive holder; a second is refused at once, naming the
 * holder's pid; a shared taker is told who holds it. */
static void issue22_item09_lock_exclusive(void)
{
    char path[256], lock[300], err[512];
    snprintf(path, sizeof path, "%s/locked.db", tmpdir);
    snprintf(lock, sizeof lock, "%s.lock", path);
    int fd = -1, fd2 = -1;
    long holder = 99;
    CHECK_INT(pv_store_lock(path, 1, &fd, &holder, err, sizeof err), 0);
    CHECK(fd >= 0);
    CHECK_INT(holder, 0);
    CHECK_INT(read_pid(lock), getpid());
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_INT(pv_store_lock(path, 1, &fd2, &holder, err, sizeof err),
              PV_ELOCKED);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK(t1.tv_sec - t0.tv_sec < 2); /* at once, not after the wait */
    CHECK_INT(fd2, -1);
    CHECK_INT(holder, getpid());
    char want[400];
    snprintf(want, sizeof want, "another pvwatch (pid %ld) is running on %s",
             (long)getpid(), path);
    CHECK(contains(err, want));
    /* A client: no lock, and the holder's pid. */
    CHECK_INT(pv_store_lock(path, 0, &fd2, &holder, err, sizeof err), 0);
    CHECK_INT(fd2, -1);
    CHECK_INT(holder, getpid());
    close(fd);
    /* Released: a client takes it shared. */
    CHECK_INT(pv_store_lock(path, 0, &fd2, &holder, err, sizeof err), 0);
    CHECK(fd2 >= 0);
    CHECK_INT(holder, 0);
    close(fd2);
    /* In memory: nothing to lock. */
    CHECK_INT(pv_store_lock(":memory:", 1, &fd, &holder, err, sizeof err), 0);
    CHECK_INT(fd, -1);
}

/* A command holding the lock shared (another process) is waited for: the
 * engine starts once it has finished, well within the 10 s wait. */
static void issue22_item09_lock_waits_for_shared(void)
{
    char path[256], err[512];
    snprintf(path, sizeof path, "%s/shared.db", tmpdir);
    int ready[2];
    CHECK_INT(pipe(ready), 0);
    pid_t child = fork();
    if (child == 0) {
        int fd;
        long holder;
        int rc = pv_store_lock(path, 0, &fd, &holder, err, sizeof err);
        char c = rc == 0 && fd >= 0 ? 'y' : 'n';
        if (write(ready[1], &c, 1) != 1)
            _exit(3);
        struct timespec hold = {0, 300 * 1000 * 1000};
        nanosleep(&hold, NULL);
        _exit(0); /* the lock goes with the process */
    }
    char c = 0;
    CHECK_INT(read(ready[0], &c, 1), 1);
    CHECK_INT(c, 'y');
    int fd = -1;
    long holder = 0;
    CHECK_INT(pv_store_lock(path, 1, &fd, &holder, err, sizeof err), 0);
    CHECK(fd >= 0);
    int status = 0;
    CHECK_INT(waitpid(child, &status, 0), child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (fd >= 0)
        close(fd);
    close(ready[0]);
    close(ready[1]);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    issue22_item08_database_deleted();
    issue22_item08_database_replaced();
    issue22_item08_wal_deleted();
    issue22_item08_unchanged_passes();
    issue22_item09_lock_exclusive();
    issue22_item09_lock_waits_for_shared();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return pv_test_report();
}

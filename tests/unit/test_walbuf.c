/* test_walbuf: the store's VFS that writes a WAL commit with few system
 * calls (walbuf.h). What must hold: a commit is in the file before another
 * connection can see it; commits larger than the gathering buffer are
 * whole; a process killed between commits leaves every commit it made and
 * no other; a write that fails (a real EFBIG from RLIMIT_FSIZE) fails its
 * commit, leaves the database intact, and the next commit works; frames
 * of a transaction that rolled back are never written over another
 * connection's commit. Real
 * SQLite files in a temporary directory; a second connection on SQLite's
 * default VFS reads what the store wrote. */
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store.h"
#include "test.h"
#include "walbuf.h"

static char tmpdir[] = "/tmp/pv_test_walbuf.XXXXXX";

static void db_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

static void remove_db(const char *path)
{
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s%s", path, sfx[i]);
        unlink(p);
    }
}

/* Rows of t, read through SQLite's default VFS; -1 on error. */
static long count_rows(sqlite3 *db)
{
    sqlite3_stmt *st;
    long n = -1;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &st, NULL) ==
        SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    return n;
}

static int integrity_ok(sqlite3 *db)
{
    sqlite3_stmt *st;
    int ok = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) ==
        SQLITE_OK) {
        ok = sqlite3_step(st) == SQLITE_ROW &&
             strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
        sqlite3_finalize(st);
    }
    return ok;
}

/* Inserts n rows of a blob of size bytes in one transaction. */
static int insert_tx(sqlite3 *db, int n, int size)
{
    char sql[160];
    snprintf(sql, sizeof sql,
             "BEGIN; WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
             "FROM c WHERE i < %d) INSERT INTO t SELECT randomblob(%d) FROM c",
             n, size);
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* sync: the connection's synchronous setting. With FULL, SQLite syncs
 * the WAL at each commit (which writes out what is gathered); with OFF, as
 * in the MLLP batch commit (pv_store_begin_relaxed), only the commit
 * frame's write does. */
static pv_store *open_store(const char *path, const char *sync)
{
    char err[256];
    pv_store *s = NULL;
    if (pv_store_open(path, &s, err, sizeof err) != 0) {
        fprintf(stderr, "pv_store_open: %s\n", err);
        return NULL;
    }
    char sql[80];
    snprintf(sql, sizeof sql,
             "PRAGMA synchronous=%s; CREATE TABLE IF NOT EXISTS t (x BLOB)",
             sync);
    if (sqlite3_exec(pv_store_db(s), sql, NULL, NULL, NULL) != SQLITE_OK) {
        pv_store_close(s);
        return NULL;
    }
    return s;
}

static sqlite3 *open_reader(const char *path)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

/* Commits are gathered into few writes and visible to another connection
 * as soon as COMMIT returns, including one far larger than the buffer. */
static void test_commits_visible(const char *sync)
{
    char path[512];
    db_path(path, sizeof path, "visible.db");
    pv_store *s = open_store(path, sync);
    CHECK(s != NULL);
    if (!s)
        return;
    sqlite3 *r = open_reader(path);
    CHECK(r != NULL);
    pv_walbuf_stats before, after;
    pv_walbuf_stats_get(&before);
    long want = 0;
    for (int i = 0; i < 20; i++) {
        CHECK_INT(insert_tx(pv_store_db(s), 50, 300), SQLITE_OK);
        want += 50;
        CHECK_INT(count_rows(r), want);
    }
    pv_walbuf_stats_get(&after);
    unsigned long long asked = after.asked - before.asked;
    unsigned long long written = after.written - before.written;
    /* Each commit writes a few pages as header + page each; gathered,
     * it is one write. */
    CHECK(asked >= 20 * 4);
    CHECK(written <= 20 + 2);
    /* 4 MiB in one commit: gathered 1 MiB at a time. */
    CHECK_INT(insert_tx(pv_store_db(s), 1000, 4000), SQLITE_OK);
    want += 1000;
    CHECK_INT(count_rows(r), want);
    CHECK(integrity_ok(r));
    sqlite3_close(r);
    pv_store_close(s);
    r = open_reader(path);
    CHECK_INT(count_rows(r), want);
    CHECK(integrity_ok(r));
    sqlite3_close(r);
    remove_db(path);
}

/* A process killed after a commit (no close, no checkpoint) leaves every
 * commit it reported, and the uncommitted rows of its last transaction
 * are not there. */
static void test_killed_writer(const char *sync)
{
    char path[512];
    db_path(path, sizeof path, "killed.db");
    int fds[2];
    CHECK_INT(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        pv_store *s = open_store(path, sync);
        if (!s)
            _exit(2);
        for (int i = 1; i <= 30; i++) {
            if (insert_tx(pv_store_db(s), 7 * i, 200) != SQLITE_OK)
                _exit(3);
            int done = i;
            if (write(fds[1], &done, sizeof done) != sizeof done)
                _exit(4);
        }
        /* Rows gathered but never committed; then wait for the end. The
         * parent kills (not this process: valgrind would run its exit
         * checks on a kill of one's self, on a store left open on
         * purpose). */
        sqlite3_exec(pv_store_db(s),
                     "BEGIN; INSERT INTO t SELECT x FROM t LIMIT 500", NULL,
                     NULL, NULL);
        int end = -1;
        if (write(fds[1], &end, sizeof end) != sizeof end)
            _exit(5);
        for (;;)
            pause();
    }
    close(fds[1]);
    int done = 0, last = 0;
    while (read(fds[0], &done, sizeof done) == sizeof done && done > 0)
        last = done;
    kill(pid, SIGKILL);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    CHECK_INT(last, 30);
    sqlite3 *r = open_reader(path);
    CHECK(r != NULL);
    /* 7 * (1 + 2 + ... + 30) */
    CHECK_INT(count_rows(r), 7 * 30 * 31 / 2);
    CHECK(integrity_ok(r));
    sqlite3_close(r);
    remove_db(path);
}

/* A real write failure: the file-size limit makes the gathered write fail
 * with EFBIG. The commit fails, nothing of it is visible, and once the
 * limit is lifted the next commit works and the database is intact. */
static void test_write_failure(void)
{
    char path[512];
    db_path(path, sizeof path, "efbig.db");
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        pv_store *s = open_store(path, "OFF");
        if (!s)
            _exit(2);
        if (insert_tx(pv_store_db(s), 10, 100) != SQLITE_OK)
            _exit(3);
        char wal[600];
        snprintf(wal, sizeof wal, "%s-wal", path);
        struct stat st;
        struct rlimit lim;
        if (stat(wal, &st) != 0 || getrlimit(RLIMIT_FSIZE, &lim) != 0)
            _exit(4);
        rlim_t hard = lim.rlim_max;
        lim.rlim_cur = (rlim_t)st.st_size + 64 * 1024;
        if (setrlimit(RLIMIT_FSIZE, &lim) != 0)
            _exit(5);
        /* About 1.2 MiB of WAL: past the limit. */
        if (insert_tx(pv_store_db(s), 300, 4000) == SQLITE_OK)
            _exit(6);
        lim.rlim_cur = hard;
        if (setrlimit(RLIMIT_FSIZE, &lim) != 0)
            _exit(7);
        if (insert_tx(pv_store_db(s), 5, 100) != SQLITE_OK)
            _exit(8);
        pv_store_close(s);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK_INT(WEXITSTATUS(status), 0);
    sqlite3 *r = open_reader(path);
    CHECK(r != NULL);
    CHECK_INT(count_rows(r), 15);
    CHECK(integrity_ok(r));
    sqlite3_close(r);
    remove_db(path);
}

static int exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* Frames spilled by a transaction that then rolls back must never reach
 * the file: once the write lock is free another connection writes its
 * commit at those offsets, and the stale frames written later would
 * overwrite it. Here A (this VFS, a tiny page cache so that its big
 * transaction spills) rolls back, B (the default VFS) commits over the same
 * offsets, then A commits again: B's rows must all be there, sound. The
 * WAL is emptied first, so that the rollback reads the pages it restores
 * from the database file and not from the WAL (a WAL read would write the
 * gathered frames out while A still holds the lock, which is harmless and
 * would hide the case). */
static void test_rolled_back_frames_dropped(void)
{
    char path[512];
    db_path(path, sizeof path, "stale.db");
    sqlite3 *a = NULL;
    CHECK_INT(sqlite3_open_v2(path, &a,
                              SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                              PV_WALBUF_VFS),
              SQLITE_OK);
    CHECK_INT(exec(a, "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; "
                      "PRAGMA wal_autocheckpoint=0; PRAGMA cache_size=20; "
                      "CREATE TABLE t (x BLOB); "
                      "PRAGMA wal_checkpoint(TRUNCATE)"),
              SQLITE_OK);
    sqlite3 *b = open_reader(path);
    CHECK(b != NULL);
    CHECK_INT(exec(b, "PRAGMA wal_autocheckpoint=0; PRAGMA synchronous=OFF"),
              SQLITE_OK);
    pv_walbuf_stats before, after;
    pv_walbuf_stats_get(&before);
    CHECK_INT(exec(a, "BEGIN; WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL "
                      "SELECT i + 1 FROM c WHERE i < 200) INSERT INTO t "
                      "SELECT randomblob(3000) FROM c"),
              SQLITE_OK);
    pv_walbuf_stats_get(&after);
    /* The transaction did spill frames into the WAL before its end. */
    CHECK(after.asked - before.asked > 40);
    CHECK_INT(exec(a, "ROLLBACK"), SQLITE_OK);
    CHECK_INT(insert_tx(b, 20, 3000), SQLITE_OK);
    CHECK_INT(insert_tx(a, 3, 100), SQLITE_OK);
    CHECK_INT(count_rows(b), 23);
    CHECK(integrity_ok(b));
    sqlite3_close(a);
    sqlite3_close(b);
    sqlite3 *r = open_reader(path);
    CHECK_INT(count_rows(r), 23);
    CHECK(integrity_ok(r));
    sqlite3_close(r);
    remove_db(path);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    CHECK_INT(pv_walbuf_register(), 0);
    const char *modes[] = {"OFF", "FULL"};
    for (int i = 0; i < 2; i++) {
        test_commits_visible(modes[i]);
        test_killed_writer(modes[i]);
    }
    test_rolled_back_frames_dropped();
    test_write_failure();
    rmdir(tmpdir);
    return pv_test_report();
}

/* test_walbuf_switch: the config key database.walbuf (issue 20 part 4)
 * turns the store's WAL-gathering VFS (walbuf.h) off and on. What must
 * hold: the table form `database = { path = ..., walbuf = false }` is read
 * (path relative to the config file, like the string form), bad values
 * and unknown keys are errors naming the file, line and key; the string
 * form keeps the VFS on; a database written by pvwatch's pipeline
 * (pv_ingest_open, which reads the key) with walbuf off never goes through
 * the VFS (its counters do not move), keeps every commit and passes
 * PRAGMA integrity_check; with it on, the VFS does the WAL's writes. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "ingest.h"
#include "store.h"
#include "test.h"
#include "walbuf.h"

static char tmpdir[] = "/tmp/pv_test_walbuf_switch.XXXXXX";

static int load(const char *text, pv_config *cfg, pv_buf *errors)
{
    char path[600];
    snprintf(path, sizeof path, "%s/pv.lua", tmpdir);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    fclose(f);
    return pv_config_load(path, cfg, errors);
}

static void test_config_forms(void)
{
    pv_config cfg;
    pv_buf errors = {0};
    char want[600];

    CHECK_INT(
        load("database = { path = 'sw.db', walbuf = false }\n", &cfg, &errors),
        0);
    CHECK_INT(cfg.walbuf, 0);
    snprintf(want, sizeof want, "%s/sw.db", tmpdir);
    CHECK_STR(cfg.database, want);
    pv_config_free(&cfg);

    CHECK_INT(load("database = { walbuf = true }\n", &cfg, &errors), 0);
    CHECK_INT(cfg.walbuf, 1);
    CHECK_STR(cfg.database, "pvwatch.db"); /* the default path */
    pv_config_free(&cfg);

    CHECK_INT(load("database = 'plain.db'\n", &cfg, &errors), 0);
    CHECK_INT(cfg.walbuf, 1); /* the default */
    pv_config_free(&cfg);

    CHECK_INT(load("", &cfg, &errors), 0);
    CHECK_INT(cfg.walbuf, 1);
    pv_config_free(&cfg);

    pv_buf_free(&errors);
    pv_buf e1 = {0};
    CHECK_INT(load("\ndatabase = { walbuf = 'no' }\n", &cfg, &e1), PV_EINVAL);
    CHECK(strstr(pv_buf_cstr(&e1), "pv.lua:2:"));
    CHECK(strstr(pv_buf_cstr(&e1), "database.walbuf must be true or false"));
    pv_config_free(&cfg);
    pv_buf_free(&e1);

    pv_buf e2 = {0};
    CHECK_INT(load("database = { pth = 'x.db' }\n", &cfg, &e2), PV_EINVAL);
    CHECK(strstr(pv_buf_cstr(&e2), "unknown key 'database.pth'"));
    pv_config_free(&cfg);
    pv_buf_free(&e2);

    pv_buf e3 = {0};
    CHECK_INT(load("database = { path = 5 }\n", &cfg, &e3), PV_EINVAL);
    CHECK(strstr(pv_buf_cstr(&e3), "database.path must be a string"));
    pv_config_free(&cfg);
    pv_buf_free(&e3);
}

static long scalar(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    long n = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    return n;
}

/* Writes 50 commits of 20 rows (4 KB each: several WAL pages a commit)
 * through a pipeline opened on the config; returns the WAL writes the VFS
 * was asked for meanwhile, or -1 on an error. */
static long write_through_pipeline(const char *conf, const char *db)
{
    pv_config cfg;
    pv_buf errors = {0};
    long asked = -1;
    if (load(conf, &cfg, &errors) != 0) {
        fprintf(stderr, "config: %s\n", pv_buf_cstr(&errors));
        goto out;
    }
    pv_walbuf_stats before, after;
    pv_walbuf_stats_get(&before);
    pv_ingest *p;
    if (pv_ingest_open(&cfg, NULL, 1, &p, &errors) != 0) {
        fprintf(stderr, "open: %s\n", pv_buf_cstr(&errors));
        goto out;
    }
    pv_store *s = pv_ingest_store(p);
    int ok = sqlite3_exec(pv_store_db(s), "CREATE TABLE t (x BLOB)", NULL, NULL,
                          NULL) == SQLITE_OK;
    for (int c = 0; ok && c < 50; c++) {
        ok = pv_store_begin(s) == 0;
        for (int r = 0; ok && r < 20; r++)
            ok = sqlite3_exec(pv_store_db(s),
                              "INSERT INTO t VALUES (randomblob(4000))", NULL,
                              NULL, NULL) == SQLITE_OK;
        ok = ok && pv_store_commit(s) == 0;
    }
    pv_ingest_close(p);
    pv_walbuf_stats_get(&after);
    if (ok)
        asked = (long)(after.asked - before.asked);
    /* Read back on SQLite's default VFS, as any other tool would. */
    sqlite3 *rd;
    if (sqlite3_open_v2(db, &rd, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        asked = -1;
    } else {
        CHECK_INT(scalar(rd, "SELECT count(*) FROM t"), 1000);
        sqlite3_stmt *st;
        const char *res = NULL;
        if (sqlite3_prepare_v2(rd, "PRAGMA integrity_check", -1, &st, NULL) ==
                SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            res = (const char *)sqlite3_column_text(st, 0);
        CHECK_STR(res ? res : "(none)", "ok");
        sqlite3_finalize(st);
        /* The schema is pvwatch's: the migrations ran. */
        CHECK(scalar(rd, "SELECT count(*) FROM schema_migrations") > 0);
    }
    sqlite3_close(rd);
out:
    pv_config_free(&cfg);
    pv_buf_free(&errors);
    return asked;
}

static void test_pipeline_off_and_on(void)
{
    char db[600];
    snprintf(db, sizeof db, "%s/off.db", tmpdir);
    long off = write_through_pipeline(
        "database = { path = 'off.db', walbuf = false }\n"
        "alert_log = 'alerts-off.jsonl'\n",
        db);
    CHECK_INT(off, 0); /* the VFS never saw a WAL write */

    snprintf(db, sizeof db, "%s/on.db", tmpdir);
    long on = write_through_pipeline("database = { path = 'on.db' }\n"
                                     "alert_log = 'alerts-on.jsonl'\n",
                                     db);
    CHECK(on > 50); /* at least a header and a page per commit */
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_config_forms();
    test_pipeline_off_and_on();
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return pv_test_report();
}

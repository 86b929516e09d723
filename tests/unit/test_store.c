/* test_store: the SQLite store. Migrations on a fresh and on an existing
 * database, the file's mode, the pragmas an ACK relies on, transactions and
 * savepoints, duplicate messages, history queries, rule state and the fixed
 * clock. Each case opens its own database in a temporary directory or in
 * memory. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "migrations.h"
#include "store.h"
#include "test.h"

static char tmpdir[] = "/tmp/pv_test_store.XXXXXX";

static void path_in_tmp(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

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

/* The integer result of one SQL query (its first column), or -1. */
static long long q_int(pv_store *s, const char *sql)
{
    sqlite3_stmt *st;
    long long v = -1;
    if (sqlite3_prepare_v2(pv_store_db(s), sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(pv_store_db(s)));
        return -1;
    }
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* The text result of one SQL query, copied into buf ("" when none). */
static const char *q_text(pv_store *s, const char *sql, char *buf, size_t cap)
{
    sqlite3_stmt *st;
    buf[0] = '\0';
    if (sqlite3_prepare_v2(pv_store_db(s), sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(pv_store_db(s)));
        return buf;
    }
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        snprintf(buf, cap, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return buf;
}

static int has_column(pv_store *s, const char *table, const char *column)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pragma_table_info('%s') WHERE name = '%s'",
             table, column);
    return q_int(s, sql) == 1;
}

/* DESIGN.md "Storage": every table and the columns others rely on. */
static const char *const contract[][16] = {
    {"patients", "id", NULL},
    {"observations", "id", "patient_id", "code", "code_system", "value_num",
     "value_text", "unit", "ref_low", "ref_high", "flag", "status",
     "observed_at", "message_id", NULL},
    {"exposures", "id", "patient_id", "drug", "drug_code", "code_system",
     "dose", "dose_unit", "start_at", "end_at", "message_id", NULL},
    {"events", "id", "patient_id", "code", "code_system", "term", "onset_at",
     "serious", "message_id", NULL},
    {"messages", "id", "source", "control_id", "type", "received_at", "status",
     "error", "raw", NULL},
    {"alerts", "id", "patient_id", "rule", "signal", "severity", "grade",
     "title", "detail", "action", "dedup_key", "status", "created_at",
     "updated_at", "occurrences", NULL},
    {"alert_actions", "id", "alert_id", "at", "actor", "action", "note", NULL},
    {"outbox", "id", "alert_id", "channel", "payload", "attempts",
     "next_attempt_at", "status", "last_error", NULL},
    {"schema_migrations", "name", NULL},
};

static void check_contract(pv_store *s)
{
    for (size_t t = 0; t < sizeof contract / sizeof contract[0]; t++) {
        const char *table = contract[t][0];
        char sql[256];
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM sqlite_schema WHERE type = 'table' "
                 "AND name = '%s'",
                 table);
        if (q_int(s, sql) != 1) {
            PV_FAIL_("table %s is missing", table);
            continue;
        }
        for (int c = 1; contract[t][c]; c++)
            if (has_column(s, table, contract[t][c]))
                pv_test_passed++;
            else
                PV_FAIL_("column %s.%s is missing", table, contract[t][c]);
    }
}

static void test_fresh_database(void)
{
    char path[512];
    path_in_tmp(path, sizeof path, "fresh.db");
    /* A permissive umask, so that only the store's own choice of mode can
     * make the file private. */
    mode_t old = umask(022);
    pv_store *s = open_or_die(path);
    umask(old);
    check_contract(s);

    /* messages: UNIQUE (source, control_id). */
    CHECK_INT(q_int(s, "SELECT count(*) FROM pragma_index_list('messages') "
                       "l WHERE l.\"unique\" = 1 AND (SELECT group_concat("
                       "name) FROM pragma_index_info(l.name)) = "
                       "'source,control_id'"),
              1);

    CHECK_INT(q_int(s, "SELECT count(*) FROM schema_migrations"),
              (long long)pv_migrations_count);
    CHECK(pv_migrations_count >= 1);

    struct stat st;
    CHECK_INT(stat(path, &st), 0);
    CHECK_INT(st.st_mode & 0777, 0600);

    char buf[64];
    CHECK_STR(q_text(s, "PRAGMA journal_mode", buf, sizeof buf), "wal");
    CHECK_INT(q_int(s, "PRAGMA synchronous"), 2);

    /* In WAL mode a write creates the -wal file; it holds patient data
     * too. */
    CHECK_INT(pv_store_patient(s, "P1", "1980-02-03", "F"), 0);
    char wal[600];
    snprintf(wal, sizeof wal, "%s-wal", path);
    CHECK_INT(stat(wal, &st), 0);
    CHECK_INT(st.st_mode & 0777, 0600);
    pv_store_close(s);
}

static void test_existing_database(void)
{
    char path[512];
    path_in_tmp(path, sizeof path, "existing.db");
    pv_store *s = open_or_die(path);
    CHECK_INT(pv_store_patient(s, "P7", "1970-01-01", "M"), 0);
    pv_obs o = {.patient_id = "P7",
                .code = "718-7",
                .value_text = "13.1",
                .has_num = 1,
                .value_num = 13.1,
                .unit = "g/dL",
                .at = 1767225600};
    CHECK_INT(pv_store_add_obs(s, &o, NULL), 0);
    pv_store_close(s);

    /* Opened again (twice): no migration runs a second time, the data
     * stays. */
    for (int round = 0; round < 2; round++) {
        s = open_or_die(path);
        CHECK_INT(q_int(s, "SELECT count(*) FROM schema_migrations"),
                  (long long)pv_migrations_count);
        CHECK_INT(q_int(s, "SELECT count(*) FROM (SELECT name FROM "
                           "schema_migrations GROUP BY name HAVING "
                           "count(*) > 1)"),
                  0);
        for (size_t i = 0; i < pv_migrations_count; i++) {
            char sql[256];
            snprintf(sql, sizeof sql,
                     "SELECT count(*) FROM schema_migrations WHERE name = "
                     "'%s'",
                     pv_migrations[i].name);
            CHECK_INT(q_int(s, sql), 1);
        }
        CHECK_INT(q_int(s, "SELECT count(*) FROM patients WHERE id = 'P7' "
                           "AND birth_date = '1970-01-01'"),
                  1);
        CHECK_INT(q_int(s, "SELECT count(*) FROM observations"), 1);
        check_contract(s);
        pv_store_close(s);
    }
}

static void test_open_failure(void)
{
    pv_store *s = (pv_store *)1;
    char err[256] = "";
    char path[512];
    path_in_tmp(path, sizeof path, "no/such/dir/x.db");
    int rc = pv_store_open(path, &s, err, sizeof err);
    CHECK(rc < 0);
    CHECK(s == NULL);
    CHECK(strstr(err, "x.db") != NULL);
}

static long long count_patients(pv_store *s)
{
    return q_int(s, "SELECT count(*) FROM patients");
}

static void test_transactions(void)
{
    pv_store *s = open_or_die(":memory:");
    CHECK_INT(pv_store_in_tx(s), 0);
    CHECK_INT(pv_store_commit(s), PV_ESTATE);
    CHECK_INT(pv_store_begin(s), 0);
    CHECK_INT(pv_store_in_tx(s), 1);
    CHECK_INT(pv_store_begin(s), PV_ESTATE);
    CHECK_INT(pv_store_in_tx(s), 1);
    CHECK_INT(pv_store_patient(s, "A", NULL, NULL), 0);
    pv_store_rollback(s);
    CHECK_INT(pv_store_in_tx(s), 0);
    CHECK_INT(count_patients(s), 0);

    CHECK_INT(pv_store_begin(s), 0);
    CHECK_INT(pv_store_patient(s, "A", NULL, NULL), 0);
    CHECK_INT(pv_store_commit(s), 0);
    CHECK_INT(pv_store_in_tx(s), 0);
    CHECK_INT(count_patients(s), 1);
    /* Rolling back with no transaction does nothing. */
    pv_store_rollback(s);
    CHECK_INT(count_patients(s), 1);

    /* Savepoints: the undone item goes, the rest of the batch stays. */
    CHECK_INT(pv_store_begin(s), 0);
    CHECK_INT(pv_store_patient(s, "B", NULL, NULL), 0);
    CHECK_INT(pv_store_savepoint(s), 0);
    CHECK_INT(pv_store_patient(s, "C", NULL, NULL), 0);
    CHECK_INT(pv_store_patient(s, "D", NULL, NULL), 0);
    pv_store_rollback_to(s);
    CHECK_INT(pv_store_in_tx(s), 1);
    /* rollback_to also ended the savepoint: nothing is left to release. */
    CHECK(pv_store_release(s) != 0);
    CHECK_INT(pv_store_savepoint(s), 0);
    CHECK_INT(pv_store_patient(s, "E", NULL, NULL), 0);
    CHECK_INT(pv_store_release(s), 0);
    CHECK_INT(pv_store_commit(s), 0);
    CHECK_INT(count_patients(s), 3);
    CHECK_INT(q_int(s, "SELECT count(*) FROM patients WHERE id IN "
                       "('A','B','E')"),
              3);
    CHECK_INT(q_int(s, "SELECT count(*) FROM patients WHERE id IN "
                       "('C','D')"),
              0);

    /* A savepoint rolled back inside a transaction that is then rolled
     * back leaves nothing. */
    CHECK_INT(pv_store_begin(s), 0);
    CHECK_INT(pv_store_patient(s, "F", NULL, NULL), 0);
    CHECK_INT(pv_store_savepoint(s), 0);
    CHECK_INT(pv_store_patient(s, "G", NULL, NULL), 0);
    CHECK_INT(pv_store_release(s), 0);
    pv_store_rollback(s);
    CHECK_INT(count_patients(s), 3);
    pv_store_close(s);
}

static void test_patient_upsert(void)
{
    pv_store *s = open_or_die(":memory:");
    char buf[64];
    CHECK_INT(pv_store_patient(s, "P1", NULL, NULL), 0);
    CHECK_INT(pv_store_patient(s, "P1", "1980-05-06", "F"), 0);
    /* A later mention without details keeps what is known. */
    CHECK_INT(pv_store_patient(s, "P1", NULL, NULL), 0);
    CHECK_STR(q_text(s, "SELECT birth_date FROM patients WHERE id='P1'", buf,
                     sizeof buf),
              "1980-05-06");
    CHECK_STR(
        q_text(s, "SELECT sex FROM patients WHERE id='P1'", buf, sizeof buf),
        "F");
    CHECK_INT(count_patients(s), 1);
    /* The same details again change nothing (not even updated_at); new
     * ones replace the old. */
    CHECK_INT(sqlite3_exec(pv_store_db(s),
                           "UPDATE patients SET updated_at = 'then'", NULL,
                           NULL, NULL),
              SQLITE_OK);
    CHECK_INT(pv_store_patient(s, "P1", "1980-05-06", "F"), 0);
    CHECK_STR(q_text(s, "SELECT updated_at FROM patients WHERE id='P1'", buf,
                     sizeof buf),
              "then");
    CHECK_INT(pv_store_patient(s, "P1", NULL, "M"), 0);
    CHECK_STR(
        q_text(s, "SELECT sex FROM patients WHERE id='P1'", buf, sizeof buf),
        "M");
    CHECK_STR(q_text(s, "SELECT birth_date FROM patients WHERE id='P1'", buf,
                     sizeof buf),
              "1980-05-06");
    CHECK(strcmp(q_text(s, "SELECT updated_at FROM patients WHERE id='P1'", buf,
                        sizeof buf),
                 "then") != 0);
    pv_store_close(s);
}

static void test_messages(void)
{
    pv_store *s = open_or_die(":memory:");
    int64_t id1 = 0, id2 = 0, dup = 0;
    CHECK_INT(pv_store_message_add(s, "file", "sha-1", "csv", "a.csv", "x,y", 3,
                                   "accepted", &id1, &dup),
              0);
    CHECK(id1 > 0);
    CHECK_INT(dup, 0);
    int64_t id_again = -1;
    CHECK_INT(pv_store_message_add(s, "file", "sha-1", "csv", "b.csv", NULL, 0,
                                   "accepted", &id_again, &dup),
              PV_ESTATE);
    CHECK_INT(dup, id1);
    CHECK_INT(id_again, -1);
    CHECK_INT(q_int(s, "SELECT count(*) FROM messages"), 1);
    char buf[64];
    CHECK_STR(q_text(s, "SELECT raw FROM messages", buf, sizeof buf), "x,y");

    /* The same control id from another source is another message. */
    CHECK_INT(pv_store_message_add(s, "mllp", "sha-1", "ORU^R01", NULL, NULL, 0,
                                   "accepted", &id2, &dup),
              0);
    CHECK(id2 > id1);

    /* Rekey: to a control id the source already has is a duplicate; to a
     * new one it takes it. */
    int64_t id3 = 0;
    dup = 0;
    CHECK_INT(pv_store_message_add(s, "file", "pending-3", "csv", "c.csv", NULL,
                                   0, "accepted", &id3, NULL),
              0);
    CHECK_INT(pv_store_message_rekey(s, id3, "file", "sha-1", &dup), PV_ESTATE);
    CHECK_INT(dup, id1);
    CHECK_INT(q_int(s, "SELECT count(*) FROM messages WHERE control_id = "
                       "'pending-3'"),
              1);
    CHECK_INT(pv_store_message_rekey(s, id3, "file", "sha-3", &dup), 0);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT control_id FROM messages WHERE id=%lld",
             (long long)id3);
    CHECK_STR(q_text(s, sql, buf, sizeof buf), "sha-3");

    CHECK_INT(
        pv_store_message_finish(s, id3, "partial", "2 rows rejected", 5, 2), 0);
    snprintf(sql, sizeof sql,
             "SELECT status || '|' || error || '|' || rows_stored || '|' || "
             "rows_rejected FROM messages WHERE id=%lld",
             (long long)id3);
    CHECK_STR(q_text(s, sql, buf, sizeof buf), "partial|2 rows rejected|5|2");

    /* Regression: a NOT NULL failure is not a duplicate (it used to be
     * reported as PV_ESTATE with *dup_id left as it was). */
    dup = -7;
    int rc = pv_store_message_add(s, "file", NULL, "csv", NULL, NULL, 0,
                                  "accepted", NULL, &dup);
    CHECK(rc < 0);
    CHECK(rc != PV_ESTATE);
    CHECK_INT(dup, -7);
    pv_store_close(s);
}

/* Collects what a history query returns, one "id:code:value" per row. */
struct collect {
    char out[1024];
    int n;
    int stop_after; /* 0 = never */
};

static int collect_lab(void *ud, sqlite3_stmt *row)
{
    struct collect *c = ud;
    size_t len = strlen(c->out);
    snprintf(c->out + len, sizeof c->out - len, "%s%s=%s@%s", c->n ? " " : "",
             (const char *)sqlite3_column_text(row, 1),
             sqlite3_column_type(row, 4) == SQLITE_NULL
                 ? (const char *)sqlite3_column_text(row, 5)
                 : (const char *)sqlite3_column_text(row, 4),
             (const char *)sqlite3_column_text(row, 11));
    c->n++;
    return c->stop_after && c->n >= c->stop_after;
}

static int collect_text(void *ud, sqlite3_stmt *row)
{
    struct collect *c = ud;
    size_t len = strlen(c->out);
    snprintf(c->out + len, sizeof c->out - len, "%s%s@%s", c->n ? " " : "",
             (const char *)sqlite3_column_text(row, 1),
             (const char *)sqlite3_column_text(row, 7));
    c->n++;
    return 0;
}

static int collect_event(void *ud, sqlite3_stmt *row)
{
    struct collect *c = ud;
    size_t len = strlen(c->out);
    snprintf(c->out + len, sizeof c->out - len, "%s%s@%s", c->n ? " " : "",
             (const char *)sqlite3_column_text(row, 1),
             (const char *)sqlite3_column_text(row, 4));
    c->n++;
    return 0;
}

static pv_time_t day(int d)
{
    /* 2026-01-01T00:00:00Z plus d days. */
    return (pv_time_t)1767225600 + (pv_time_t)d * 86400;
}

static void add_lab(pv_store *s, const char *pid, const char *code, double v,
                    int d, const char *status)
{
    char text[32];
    snprintf(text, sizeof text, "%g", v);
    pv_obs o = {.patient_id = pid,
                .code = code,
                .value_text = text,
                .has_num = 1,
                .value_num = v,
                .unit = "x",
                .status = status,
                .at = day(d)};
    int64_t id = 0;
    CHECK_INT(pv_store_add_obs(s, &o, &id), 0);
    CHECK(id > 0);
}

static void test_history(void)
{
    pv_store *s = open_or_die(":memory:");
    add_lab(s, "P1", "718-7", 13, 1, NULL);
    add_lab(s, "P1", "789-8", 4.5, 2, NULL);
    add_lab(s, "P1", "718-7", 12, 3, "F");
    add_lab(s, "P1", "777-3", 250, 4, NULL);
    add_lab(s, "P1", "718-7", 11, 5, "C");
    add_lab(s, "P1", "718-7", 99, 6, "D"); /* deleted: never returned */
    add_lab(s, "P2", "718-7", 8, 7, NULL); /* another patient */
    /* Two results at the same time come in insertion order reversed. */
    add_lab(s, "P1", "789-8", 4.1, 5, NULL);
    pv_obs t = {.patient_id = "P1",
                .code = "789-8",
                .value_text = "hemolysed",
                .at = day(0)};
    CHECK_INT(pv_store_add_obs(s, &t, NULL), 0);

    struct collect c = {0};
    CHECK_INT(
        pv_store_labs(s, "P1", "[\"718-7\"]", NULL, NULL, 0, collect_lab, &c),
        0);
    CHECK_STR(c.out, "718-7=11.0@2026-01-06T00:00:00Z "
                     "718-7=12.0@2026-01-04T00:00:00Z "
                     "718-7=13.0@2026-01-02T00:00:00Z");

    memset(&c, 0, sizeof c);
    CHECK_INT(pv_store_labs(s, "P1", "[\"718-7\",\"789-8\"]", NULL, NULL, 0,
                            collect_lab, &c),
              0);
    CHECK_STR(c.out, "789-8=4.1@2026-01-06T00:00:00Z "
                     "718-7=11.0@2026-01-06T00:00:00Z "
                     "718-7=12.0@2026-01-04T00:00:00Z "
                     "789-8=4.5@2026-01-03T00:00:00Z "
                     "718-7=13.0@2026-01-02T00:00:00Z "
                     "789-8=hemolysed@2026-01-01T00:00:00Z");

    /* since and until are inclusive. */
    memset(&c, 0, sizeof c);
    CHECK_INT(pv_store_labs(s, "P1", "[\"718-7\",\"789-8\"]",
                            "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z", 0,
                            collect_lab, &c),
              0);
    CHECK_STR(c.out, "718-7=12.0@2026-01-04T00:00:00Z "
                     "789-8=4.5@2026-01-03T00:00:00Z");

    memset(&c, 0, sizeof c);
    CHECK_INT(pv_store_labs(s, "P1", NULL, "2026-01-05T00:00:00Z", NULL, 0,
                            collect_lab, &c),
              0);
    CHECK_STR(c.out, "789-8=4.1@2026-01-06T00:00:00Z "
                     "718-7=11.0@2026-01-06T00:00:00Z "
                     "777-3=250.0@2026-01-05T00:00:00Z");

    /* limit, and a callback that stops early. */
    memset(&c, 0, sizeof c);
    CHECK_INT(
        pv_store_labs(s, "P1", "[\"718-7\"]", NULL, NULL, 2, collect_lab, &c),
        0);
    CHECK_INT(c.n, 2);
    CHECK_STR(c.out, "718-7=11.0@2026-01-06T00:00:00Z "
                     "718-7=12.0@2026-01-04T00:00:00Z");
    memset(&c, 0, sizeof c);
    c.stop_after = 1;
    CHECK_INT(pv_store_labs(s, "P1", NULL, NULL, NULL, 0, collect_lab, &c), 0);
    CHECK_INT(c.n, 1);

    /* Several codes: one index range each, the limit applies to the merged
     * list; more codes than the per-code statements take (the general
     * query) give the same rows in the same order. */
    memset(&c, 0, sizeof c);
    CHECK_INT(pv_store_labs(s, "P1", "[\"718-7\",\"789-8\"]", NULL, NULL, 2,
                            collect_lab, &c),
              0);
    CHECK_STR(c.out, "789-8=4.1@2026-01-06T00:00:00Z "
                     "718-7=11.0@2026-01-06T00:00:00Z");
    const char *many = "[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"718-7\","
                       "\"789-8\"]";
    memset(&c, 0, sizeof c);
    CHECK_INT(pv_store_labs(s, "P1", many, "2026-01-03T00:00:00Z", NULL, 3,
                            collect_lab, &c),
              0);
    CHECK_STR(c.out, "789-8=4.1@2026-01-06T00:00:00Z "
                     "718-7=11.0@2026-01-06T00:00:00Z "
                     "718-7=12.0@2026-01-04T00:00:00Z");
    memset(&c, 0, sizeof c);
    CHECK_INT(pv_store_labs(s, "P1", "[\"7\",\"718-7\",\"789-8\"]",
                            "2026-01-03T00:00:00Z", NULL, 3, collect_lab, &c),
              0);
    CHECK_STR(c.out, "789-8=4.1@2026-01-06T00:00:00Z "
                     "718-7=11.0@2026-01-06T00:00:00Z "
                     "718-7=12.0@2026-01-04T00:00:00Z");
    /* A code holding a quote and a backslash is still one code. */
    add_lab(s, "P1", "x\"y\\z", 1, 1, NULL);
    memset(&c, 0, sizeof c);
    CHECK_INT(pv_store_labs(s, "P1", "[\"x\\\"y\\\\z\"]", NULL, NULL, 0,
                            collect_lab, &c),
              0);
    CHECK_INT(c.n, 1);

    /* No codes match, an empty list, an unknown patient. */
    memset(&c, 0, sizeof c);
    CHECK_INT(
        pv_store_labs(s, "P1", "[\"0000-0\"]", NULL, NULL, 0, collect_lab, &c),
        0);
    CHECK_INT(c.n, 0);
    CHECK_INT(pv_store_labs(s, "P1", "[]", NULL, NULL, 0, collect_lab, &c), 0);
    CHECK_INT(c.n, 0);
    CHECK_INT(pv_store_labs(s, "P9", NULL, NULL, NULL, 0, collect_lab, &c), 0);
    CHECK_INT(c.n, 0);
    /* The statement is reusable after each of them. */
    memset(&c, 0, sizeof c);
    CHECK_INT(pv_store_labs(s, "P2", NULL, NULL, NULL, 0, collect_lab, &c), 0);
    CHECK_STR(c.out, "718-7=8.0@2026-01-08T00:00:00Z");

    /* Exposures oldest first; events newest first with since/until. */
    pv_exposure e1 = {.patient_id = "P1",
                      .drug = "baricitinib",
                      .has_dose = 1,
                      .dose = 4,
                      .dose_unit = "mg",
                      .start = day(10)};
    pv_exposure e2 = {.patient_id = "P1",
                      .drug = "methotrexate",
                      .start = day(2),
                      .has_end = 1,
                      .end = day(9)};
    CHECK_INT(pv_store_add_exposure(s, &e1, NULL), 0);
    CHECK_INT(pv_store_add_exposure(s, &e2, NULL), 0);
    memset(&c, 0, sizeof c);
    CHECK_INT(pv_store_exposures(s, "P1", collect_text, &c), 0);
    CHECK_STR(c.out, "methotrexate@2026-01-03T00:00:00Z "
                     "baricitinib@2026-01-11T00:00:00Z");

    pv_event v1 = {
        .patient_id = "P1", .code = "B02.9", .onset = day(3), .serious = -1};
    pv_event v2 = {
        .patient_id = "P1", .code = "I26.9", .onset = day(8), .serious = 1};
    CHECK_INT(pv_store_add_event(s, &v1, NULL), 0);
    CHECK_INT(pv_store_add_event(s, &v2, NULL), 0);
    memset(&c, 0, sizeof c);
    CHECK_INT(pv_store_events(s, "P1", NULL, NULL, NULL, 0, collect_event, &c),
              0);
    CHECK_STR(c.out, "I26.9@2026-01-09T00:00:00Z B02.9@2026-01-04T00:00:00Z");
    memset(&c, 0, sizeof c);
    CHECK_INT(pv_store_events(s, "P1", "[\"B02.9\"]", NULL,
                              "2026-01-04T00:00:00Z", 0, collect_event, &c),
              0);
    CHECK_STR(c.out, "B02.9@2026-01-04T00:00:00Z");
    CHECK_INT(q_int(s, "SELECT serious IS NULL FROM events WHERE code = "
                       "'B02.9'"),
              1);
    CHECK_INT(q_int(s, "SELECT code_system = 'ICD10CM' FROM events WHERE "
                       "code = 'B02.9'"),
              1);
    pv_store_close(s);
}

static void test_state(void)
{
    pv_store *s = open_or_die(":memory:");
    char *v = (char *)"sentinel";
    CHECK_INT(pv_store_state_get(s, "r1", "k", &v), PV_ENOTFOUND);
    CHECK(v == NULL);
    CHECK_INT(pv_store_state_set(s, "r1", "k", "one"), 0);
    CHECK_INT(pv_store_state_get(s, "r1", "k", &v), 0);
    CHECK_STR(v, "one");
    free(v);
    CHECK_INT(pv_store_state_set(s, "r1", "k", "two"), 0);
    CHECK_INT(pv_store_state_get(s, "r1", "k", &v), 0);
    CHECK_STR(v, "two");
    free(v);
    /* Each rule has its own keys. */
    CHECK_INT(pv_store_state_get(s, "r2", "k", &v), PV_ENOTFOUND);
    CHECK_INT(pv_store_state_set(s, "r2", "k", ""), 0);
    CHECK_INT(pv_store_state_get(s, "r2", "k", &v), 0);
    CHECK_STR(v, "");
    free(v);
    /* NULL deletes. */
    CHECK_INT(pv_store_state_set(s, "r1", "k", NULL), 0);
    CHECK_INT(pv_store_state_get(s, "r1", "k", &v), PV_ENOTFOUND);
    CHECK(v == NULL);
    CHECK_INT(pv_store_state_get(s, "r2", "k", &v), 0);
    free(v);
    CHECK_INT(q_int(s, "SELECT count(*) FROM rule_state"), 1);
    pv_store_close(s);
}

static void test_clock(void)
{
    pv_store *s = open_or_die(":memory:");
    time_t before = time(NULL);
    pv_time_t now = pv_store_now(s);
    time_t after = time(NULL);
    CHECK(now >= before && now <= after);

    pv_time_t fixed = 1769868300; /* 2026-01-31T14:05:00Z */
    pv_store_set_clock(s, fixed);
    CHECK_INT(pv_store_now(s), fixed);
    int64_t id = 0;
    CHECK_INT(pv_store_message_add(s, "file", "c1", "csv", NULL, NULL, 0,
                                   "accepted", &id, NULL),
              0);
    CHECK_INT(pv_store_state_set(s, "r", "k", "v"), 0);
    CHECK_INT(pv_store_patient(s, "P1", "1990-01-01", NULL), 0);
    char buf[64];
    CHECK_STR(q_text(s, "SELECT received_at FROM messages", buf, sizeof buf),
              "2026-01-31T14:05:00Z");
    CHECK_STR(q_text(s, "SELECT updated_at FROM rule_state", buf, sizeof buf),
              "2026-01-31T14:05:00Z");
    CHECK_STR(q_text(s, "SELECT updated_at FROM patients", buf, sizeof buf),
              "2026-01-31T14:05:00Z");

    pv_store_set_clock(s, 0);
    before = time(NULL);
    now = pv_store_now(s);
    after = time(NULL);
    CHECK(now >= before && now <= after);
    pv_store_close(s);
}

static void cleanup(void)
{
    const char *names[] = {"fresh.db",    "fresh.db-wal",    "fresh.db-shm",
                           "existing.db", "existing.db-wal", "existing.db-shm",
                           "relaxed.db",  "relaxed.db-wal",  "relaxed.db-shm",
                           "ckpt.db",     "ckpt.db-wal",     "ckpt.db-shm"};
    char path[512];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        path_in_tmp(path, sizeof path, names[i]);
        unlink(path);
    }
    rmdir(tmpdir);
}

/* Relaxed transactions (the MLLP group commit): synchronous=OFF for the
 * transaction alone, FULL again after commit or rollback; the WAL sync
 * succeeds; what was committed is there after reopening. */
static void test_relaxed(void)
{
    char path[512];
    path_in_tmp(path, sizeof path, "relaxed.db");
    pv_store *s = open_or_die(path);
    CHECK_INT(q_int(s, "PRAGMA synchronous"), 2);
    CHECK_INT(pv_store_begin_relaxed(s), 0);
    CHECK_INT(pv_store_in_tx(s), 1);
    CHECK_INT(q_int(s, "PRAGMA synchronous"), 0);
    CHECK_INT(pv_store_begin_relaxed(s), PV_ESTATE);
    CHECK_INT(pv_store_patient(s, "R1", NULL, NULL), 0);
    CHECK_INT(pv_store_commit(s), 0);
    CHECK_INT(pv_store_in_tx(s), 0);
    CHECK_INT(q_int(s, "PRAGMA synchronous"), 2);
    CHECK_INT(pv_store_sync_wal(s), 0);
    CHECK_INT(count_patients(s), 1);

    /* Rolled back: nothing stored, FULL again. */
    CHECK_INT(pv_store_begin_relaxed(s), 0);
    CHECK_INT(pv_store_patient(s, "R2", NULL, NULL), 0);
    pv_store_rollback(s);
    CHECK_INT(q_int(s, "PRAGMA synchronous"), 2);
    CHECK_INT(count_patients(s), 1);

    /* An ordinary transaction after a relaxed one is FULL throughout. */
    CHECK_INT(pv_store_begin(s), 0);
    CHECK_INT(q_int(s, "PRAGMA synchronous"), 2);
    CHECK_INT(pv_store_patient(s, "R3", NULL, NULL), 0);
    CHECK_INT(pv_store_commit(s), 0);
    pv_store_close(s);

    s = open_or_die(path);
    CHECK_INT(q_int(s, "SELECT count(*) FROM patients WHERE id IN "
                       "('R1','R3')"),
              2);
    CHECK_INT(count_patients(s), 2);
    pv_store_close(s);

    /* In memory there is no WAL: an ordinary transaction. */
    s = open_or_die(":memory:");
    CHECK_INT(pv_store_begin_relaxed(s), 0);
    CHECK_INT(pv_store_patient(s, "M", NULL, NULL), 0);
    CHECK_INT(pv_store_commit(s), 0);
    CHECK_INT(pv_store_sync_wal(s), 0);
    CHECK_INT(count_patients(s), 1);
    pv_store_close(s);
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* WAL checkpoints happen on the store's thread: after enough commits the
 * thread has copied frames into the database (waited for with a
 * deadline), and neither ordinary nor relaxed commits failed meanwhile. */
static void test_background_checkpoints(void)
{
    char path[512];
    path_in_tmp(path, sizeof path, "ckpt.db");
    pv_store *s = open_or_die(path);
    pv_store_ckpt_stats st;
    char pid[32], text[200];
    memset(text, 'x', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    int failures = 0;
    /* About 12,000 WAL pages (past store.c's CKPT_PAGES, 8,000, where the
     * thread is first asked for a pass, and below CKPT_RESTART_PAGES,
     * 16,000): 95 commits of 200 observations each. */
    enum { COMMITS = 95 };
    for (int t = 0; t < COMMITS; t++) {
        int rc = t % 2 ? pv_store_begin_relaxed(s) : pv_store_begin(s);
        for (int i = 0; !rc && i < 200; i++) {
            snprintf(pid, sizeof pid, "CK%04d", (t * 7919 + i * 104729) % 5000);
            pv_obs o = {.patient_id = pid,
                        .code = "751-8",
                        .value_text = text,
                        .has_num = 1,
                        .value_num = i,
                        .at = 1700000000 + t * 1000 + i};
            rc = pv_store_add_obs(s, &o, NULL);
        }
        if (!rc)
            rc = pv_store_commit(s);
        failures += rc != 0;
    }
    CHECK_INT(failures, 0);
    CHECK_INT(pv_store_sync_wal(s), 0);
    /* The premise: the WAL grew past CKPT_PAGES and stayed below
     * CKPT_RESTART_PAGES (a WAL that starts over is not truncated, so its
     * size tells the most frames it held: a 32-byte header, then frames of
     * a 24-byte header and a page). */
    char wal[600];
    snprintf(wal, sizeof wal, "%s-wal", path);
    struct stat sb;
    CHECK_INT(stat(wal, &sb), 0);
    long long frames =
        ((long long)sb.st_size - 32) / (q_int(s, "PRAGMA page_size") + 24);
    CHECK(frames >= 8000);
    CHECK(frames < 16000);
    double deadline = mono_now() + 20;
    do {
        pv_store_ckpt_get(s, &st);
        if (st.runs > 0 && st.frames > 0)
            break;
        struct timespec nap = {0, 10 * 1000 * 1000};
        nanosleep(&nap, NULL);
    } while (mono_now() < deadline);
    CHECK_INT(st.running, 1);
    CHECK(st.runs > 0);
    CHECK(st.frames > 0);
    CHECK_INT((long long)st.errors, 0);
    /* Below CKPT_RESTART_PAGES, with the thread running, the writer never
     * checkpoints itself: no commit waited for one. */
    CHECK_INT((long long)st.writer_runs, 0);
    CHECK_INT((long long)st.writer_us, 0);
    CHECK_INT(q_int(s, "SELECT count(*) FROM observations"), COMMITS * 200);
    pv_store_close(s);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    test_fresh_database();
    test_existing_database();
    test_open_failure();
    test_transactions();
    test_patient_upsert();
    test_messages();
    test_history();
    test_state();
    test_clock();
    test_relaxed();
    test_background_checkpoints();
    cleanup();
    return pv_test_report();
}

/* hl7_fixture.h: the set-up the HL7 unit tests share (test_hl7_map,
 * test_hl7_status, test_hl7_types; issue 20 part 4: shared fixtures, not
 * copied set-up). A pipeline on an in-memory database without rules, on the
 * built-in configuration (read in an empty directory, no alert log) that a
 * test may change between messages (cfg.mllp...: read at each message);
 * one message ingested in a transaction of its own, as the MLLP listener
 * does, with the ACK pv_hl7_ack builds for it; the rows read back from
 * SQLite. Include after test.h. */
#ifndef PV_HL7_FIXTURE_H
#define PV_HL7_FIXTURE_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "error.h"
#include "hl7.h"
#include "ingest.h"
#include "store.h"

#define HL7_FIXTURE_UNUSED __attribute__((unused))

static pv_config cfg;
static pv_ingest *p;
static char hl7_fixture_dir[PATH_MAX];
static char hl7_fixture_cwd[PATH_MAX];

HL7_FIXTURE_UNUSED static void die(const char *what)
{
    perror(what);
    exit(2);
}

/* The outcome of one message, kept after its result is freed. */
struct out {
    int rc;
    int ack;
    int error;
    int duplicate;
    long facts;
    long skipped;
    char text[1024];
    char ack_raw[2048]; /* the ACK pv_hl7_ack builds, segments ended by CR */
    char ackmsg[2048];  /* the same, segments joined by \n */
};

HL7_FIXTURE_UNUSED static struct out ingest(const char *raw, size_t len)
{
    struct out o;
    memset(&o, 0, sizeof o);
    pv_hl7_result res;
    CHECK_INT(pv_ingest_begin(p), 0);
    o.rc = pv_ingest_hl7(p, raw, len, "test", 1, &res);
    CHECK_INT(pv_ingest_commit(p), 0);
    o.ack = res.ack;
    o.error = res.error;
    o.duplicate = res.duplicate;
    o.facts = res.facts;
    o.skipped = res.skipped;
    snprintf(o.text, sizeof o.text, "%s", res.text);
    if (res.msg && res.ack >= 0) {
        pv_hl7_ack_info info = {.code = (pv_hl7_ack_code)res.ack,
                                .error = res.error,
                                .text = res.text[0] ? res.text : NULL,
                                .control_id = "ACK1",
                                .now = 1772323200};
        char *a = NULL;
        size_t alen = 0;
        CHECK_INT(pv_hl7_ack(res.msg, &info, &a, &alen), 0);
        if (a) {
            snprintf(o.ack_raw, sizeof o.ack_raw, "%.*s", (int)alen, a);
            for (size_t i = 0; i < alen; i++)
                if (a[i] == '\r')
                    a[i] = '\n';
            snprintf(o.ackmsg, sizeof o.ackmsg, "%.*s", (int)alen, a);
        }
        free(a);
    }
    pv_hl7_result_free(&res);
    return o;
}

HL7_FIXTURE_UNUSED static struct out ingest_str(const char *msg)
{
    return ingest(msg, strlen(msg));
}

/* The whole of a file, or NULL. */
HL7_FIXTURE_UNUSED static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb)
                free(buf);
            buf = nb;
        }
    }
    fclose(f);
    if (buf)
        *len = n;
    return buf;
}

/* The rows of a query, columns joined by '|' as the sqlite3 shell prints
 * them (NULL as empty), rows by ';' when all (else the first row only, and
 * "(no row)" when there is none). */
static const char *hl7_fixture_query(const char *sql, int all)
{
    static char out[4096];
    sqlite3 *db = pv_store_db(pv_ingest_store(p));
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        PV_FAIL_("%s: %s", sql, sqlite3_errmsg(db));
        return "(error)";
    }
    size_t n = 0;
    snprintf(out, sizeof out, "%s", all ? "" : "(no row)");
    int rows = 0;
    while (n < sizeof out && (all || rows == 0) &&
           sqlite3_step(st) == SQLITE_ROW) {
        if (rows++ == 0)
            out[0] = '\0';
        else
            n += (size_t)snprintf(out + n, sizeof out - n, ";");
        for (int i = 0; i < sqlite3_column_count(st) && n < sizeof out; i++) {
            const unsigned char *t = sqlite3_column_text(st, i);
            n += (size_t)snprintf(out + n, sizeof out - n, "%s%s", i ? "|" : "",
                                  t ? (const char *)t : "");
        }
    }
    sqlite3_finalize(st);
    return out;
}

HL7_FIXTURE_UNUSED static const char *q(const char *sql)
{
    return hl7_fixture_query(sql, 0);
}

HL7_FIXTURE_UNUSED static const char *q_rows(const char *sql)
{
    return hl7_fixture_query(sql, 1);
}

HL7_FIXTURE_UNUSED static long long qi(const char *sql)
{
    return atoll(q(sql));
}

/* Opens the pipeline; 'name' names the scratch directory
 * (/tmp/pv_test_NAME.XXXXXX). Exits 2 when it cannot. */
HL7_FIXTURE_UNUSED static void hl7_fixture_open(const char *name)
{
    if (!getcwd(hl7_fixture_cwd, sizeof hl7_fixture_cwd))
        die("getcwd");
    snprintf(hl7_fixture_dir, sizeof hl7_fixture_dir, "/tmp/pv_test_%s.XXXXXX",
             name);
    /* Built-in defaults, read in an empty directory. */
    if (!mkdtemp(hl7_fixture_dir) || chdir(hl7_fixture_dir) != 0)
        die(hl7_fixture_dir);
    pv_buf errors = PV_BUF_INIT;
    if (pv_config_load(NULL, &cfg, &errors) != 0)
        die(pv_buf_cstr(&errors));
    if (chdir(hl7_fixture_cwd) != 0)
        die(hl7_fixture_cwd);
    free(cfg.alert_log);
    cfg.alert_log = NULL;
    int rc = pv_ingest_open(&cfg, ":memory:", 1, &p, &errors);
    if (rc || !p) {
        fprintf(stderr, "pv_ingest_open: %d: %s\n", rc, pv_buf_cstr(&errors));
        exit(2);
    }
    pv_buf_free(&errors);
}

/* Closes it and removes the scratch directory; returns the exit status. */
HL7_FIXTURE_UNUSED static int hl7_fixture_close(void)
{
    pv_ingest_close(p);
    pv_config_free(&cfg);
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", hl7_fixture_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", hl7_fixture_dir);
    return pv_test_report();
}

#endif

/* rule_harness.h: what the rule-sandbox tests share — a temporary base
 * directory, plugin directories and files written into it, a pipeline on an
 * in-memory database with the configured plugins, one-lab ingestion and
 * queries on the alerts table.
 *
 * Include after test.h, having defined 'static char base[]' (a mkdtemp
 * template). Functions a test does not use are allowed to be unused. */
#ifndef PV_RULE_HARNESS_H
#define PV_RULE_HARNESS_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "ingest.h"
#include "store.h"

#define PV_HARNESS_FN static __attribute__((unused))

static char cwd0[PATH_MAX];
static pv_config cfg;
static char plugdir[PATH_MAX];

PV_HARNESS_FN void die(const char *what)
{
    perror(what);
    exit(2);
}

PV_HARNESS_FN void write_bytes(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len)
        die(path);
    fclose(f);
}

/* A new, empty plugin directory base/NAME becomes cfg.plugins. */
PV_HARNESS_FN void use_plugin_dir(const char *name)
{
    snprintf(plugdir, sizeof plugdir, "%s/%s", base, name);
    if (mkdir(plugdir, 0700) != 0)
        die(plugdir);
    pv_strlist_free(&cfg.plugins);
    pv_strlist_add(&cfg.plugins, plugdir);
}

PV_HARNESS_FN void write_plugin(const char *file, const char *src)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", plugdir, file);
    write_bytes(path, src, strlen(src));
}

/* The set-up every sandbox test starts with: a temporary base directory,
 * the built-in configuration (loaded from an empty directory, so that no
 * pvwatch.lua around is read) without an alert log, and scripts/ of the
 * source tree. harness_done() frees it and removes the directory. */
PV_HARNESS_FN void harness_init(void)
{
    if (!getcwd(cwd0, sizeof cwd0))
        die("getcwd");
    if (!mkdtemp(base))
        die("mkdtemp");
    char empty[PATH_MAX];
    snprintf(empty, sizeof empty, "%s/empty", base);
    if (mkdir(empty, 0700) != 0 || chdir(empty) != 0)
        die(empty);
    pv_buf errors = PV_BUF_INIT;
    if (pv_config_load(NULL, &cfg, &errors) != 0)
        die(pv_buf_cstr(&errors));
    pv_buf_free(&errors);
    if (chdir(cwd0) != 0)
        die(cwd0);
    free(cfg.alert_log);
    cfg.alert_log = NULL;
    pv_strlist_free(&cfg.scripts);
    char scripts[PATH_MAX];
    snprintf(scripts, sizeof scripts, "%s/scripts",
             getenv("PV_SOURCE_DIR") ? getenv("PV_SOURCE_DIR") : PV_SOURCE_DIR);
    pv_strlist_add(&cfg.scripts, scripts);
}

PV_HARNESS_FN void harness_done(void)
{
    pv_config_free(&cfg);
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", base);
}

/* Under valgrind every rule call runs tens of times slower: the default
 * wall-clock limit of a call (limits.rule_time_ms, 2 s) would stop rules
 * that are not runaways. The instruction budget still applies. */
PV_HARNESS_FN void relax_deadline_under_valgrind(void)
{
    const char *pre = getenv("LD_PRELOAD");
    if (pre && strstr(pre, "vgpreload") && cfg.limits.rule_time_ms == 2000)
        cfg.limits.rule_time_ms = 600000;
}

PV_HARNESS_FN pv_ingest *open_pipeline(void)
{
    relax_deadline_under_valgrind();
    pv_ingest *p = NULL;
    pv_buf errors = PV_BUF_INIT;
    int rc = pv_ingest_open(&cfg, ":memory:", 0, &p, &errors);
    if (rc || !p) {
        PV_FAIL_("pv_ingest_open(%s): %d: %s", plugdir, rc,
                 pv_buf_cstr(&errors));
        pv_buf_free(&errors);
        return NULL;
    }
    CHECK_STR(pv_buf_cstr(&errors), "");
    pv_buf_free(&errors);
    pv_store_set_clock(pv_ingest_store(p), 1769868300);
    return p;
}

/* Ingests one lab in its own transaction; returns the row id. */
PV_HARNESS_FN int64_t lab(pv_ingest *p, const char *pid, const char *code,
                          double value)
{
    char text[32];
    snprintf(text, sizeof text, "%g", value);
    pv_obs o = {.patient_id = pid,
                .code = code,
                .value_text = text,
                .has_num = 1,
                .value_num = value,
                .unit = "10*9/L",
                .at = 1769868300};
    int64_t id = 0;
    CHECK_INT(pv_ingest_begin(p), 0);
    CHECK_INT(pv_ingest_lab(p, &o, &id), 0);
    CHECK_INT(pv_ingest_commit(p), 0);
    CHECK(id > 0);
    return id;
}

PV_HARNESS_FN long long q_int(pv_ingest *p, const char *sql)
{
    sqlite3 *db = pv_store_db(pv_ingest_store(p));
    sqlite3_stmt *st;
    long long v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        PV_FAIL_("%s: %s", sql, sqlite3_errmsg(db));
        return -1;
    }
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

PV_HARNESS_FN const char *q_text(pv_ingest *p, const char *sql, char *buf,
                                 size_t cap)
{
    sqlite3 *db = pv_store_db(pv_ingest_store(p));
    sqlite3_stmt *st;
    buf[0] = '\0';
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        PV_FAIL_("%s: %s", sql, sqlite3_errmsg(db));
        return buf;
    }
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        snprintf(buf, cap, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return buf;
}

/* Alerts of a rule, by signal: "engine" for failures. */
PV_HARNESS_FN long long alerts_of(pv_ingest *p, const char *rule,
                                  const char *signal)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM alerts WHERE rule = '%s' AND signal = "
             "'%s'",
             rule, signal);
    return q_int(p, sql);
}

/* One engine alert for the rule, of the patient, whose title and detail
 * name the rule and one of the phrases ('|'-separated alternatives). */
PV_HARNESS_FN void expect_engine_alert_of(pv_ingest *p, const char *rule,
                                          const char *patient,
                                          const char *phrases)
{
    char sql[512], buf[2048];
    CHECK_INT(alerts_of(p, rule, "engine"), 1);
    snprintf(sql, sizeof sql,
             "SELECT patient_id || '|' || dedup_key || '|' || severity FROM "
             "alerts WHERE rule = '%s' AND signal = 'engine'",
             rule);
    char want[256];
    snprintf(want, sizeof want, "%s|rule-error|high", patient);
    CHECK_STR(q_text(p, sql, buf, sizeof buf), want);
    snprintf(sql, sizeof sql,
             "SELECT title || ' / ' || detail FROM alerts WHERE rule = '%s' "
             "AND signal = 'engine'",
             rule);
    q_text(p, sql, buf, sizeof buf);
    int found = 0;
    char alt[512];
    snprintf(alt, sizeof alt, "%s", phrases);
    for (char *save = NULL, *tok = strtok_r(alt, "|", &save); tok;
         tok = strtok_r(NULL, "|", &save))
        found |= strstr(buf, tok) != NULL;
    if (found && strstr(buf, rule))
        pv_test_passed++;
    else
        PV_FAIL_("engine alert of %s lacks \"%s\": \"%s\"", rule, phrases, buf);
}

/* Loads the current plugin directory and expects failure with each
 * needle in the errors ("@" stands for the plugin directory), every line
 * naming a file; pv_ingest_open refuses the same plugins. */
PV_HARNESS_FN void expect_plugins_refused(const char *n1, const char *n2)
{
    pv_store *store = NULL;
    char err[256];
    CHECK_INT(pv_store_open(":memory:", &store, err, sizeof err), 0);
    static int sentinel;
    pv_rules *rules = (pv_rules *)&sentinel; /* must be reset to NULL */
    pv_buf errors = PV_BUF_INIT;
    CHECK_INT(pv_rules_load(&cfg, store, &rules, &errors), PV_ELUA);
    CHECK(rules == NULL);
    const char *needles[] = {n1, n2};
    for (int i = 0; i < 2; i++) {
        if (!needles[i])
            continue;
        char want[PATH_MAX + 256];
        if (needles[i][0] == '@')
            snprintf(want, sizeof want, "%s%s", plugdir, needles[i] + 1);
        else
            snprintf(want, sizeof want, "%s", needles[i]);
        if (strstr(pv_buf_cstr(&errors), want))
            pv_test_passed++;
        else
            PV_FAIL_("%s: errors lack \"%s\": \"%s\"", plugdir, want,
                     pv_buf_cstr(&errors));
    }
    /* One line per problem, each naming a file (no traceback lines). */
    for (const char *l = pv_buf_cstr(&errors); *l;) {
        if (strncmp(l, base, strlen(base)) == 0)
            pv_test_passed++;
        else
            PV_FAIL_("error line does not name a file: \"%.*s\"",
                     (int)strcspn(l, "\n"), l);
        l += strcspn(l, "\n");
        l += *l == '\n';
    }
    pv_buf_free(&errors);
    pv_store_close(store);

    /* pv_ingest_open refuses the same set as a configuration error. */
    pv_ingest *p = NULL;
    CHECK_INT(pv_ingest_open(&cfg, ":memory:", 0, &p, &errors), PV_EINVAL);
    CHECK(p == NULL);
    pv_buf_free(&errors);
}

#endif

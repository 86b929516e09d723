/* cli_status.c: 'pvwatch status [-c CONFIG] [--json]' (issue 21 part 3).
 *
 * What a running instance is doing, for an operator: from the lock file's
 * run lines (service.h: pid, start time, listeners) and from the database,
 * opened read-only so that the command never creates or changes anything
 * (messages today, open alerts, outbox, the last message). Exit status: 0
 * a 'pvwatch run' (or another writer) holds the database; 3 none does (as
 * an LSB init script's status); 2 usage or configuration error, or no
 * database and nothing running; 1 the database could not be read. */
#include <getopt.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "cli.h"
#include "config.h"
#include "service.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define EXIT_NOT_RUNNING 3

static const char usage_status[] =
    "usage: pvwatch status [-c CONFIG] [--json]\n"
    "\n"
    "Says whether a pvwatch is running on the configured database and what\n"
    "it is doing: pid, uptime, what it listens on (MLLP, inbox, tailed\n"
    "files), messages received today (UTC), open and acknowledged alerts,\n"
    "mail waiting in the outbox, and the last message. Reads only; never\n"
    "creates a database. Exit 0 running, 3 not running, 2 configuration\n"
    "error or no database, 1 the database could not be read.\n";

struct db_facts {
    int ok;
    long long today, open, acked, pending, failed;
    char last_at[64], last_name[256], last_status[32];
};

static long long count(sqlite3 *db, const char *sql, const char *arg, int *ok)
{
    sqlite3_stmt *st;
    long long n = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        *ok = 0;
        return 0;
    }
    if (arg)
        sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    else
        *ok = 0;
    sqlite3_finalize(st);
    return n;
}

static void copy_col(sqlite3_stmt *st, int i, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    snprintf(out, cap, "%s", t ? (const char *)t : "");
}

static int read_db(const char *path, struct db_facts *f, char *err,
                   size_t errcap)
{
    memset(f, 0, sizeof *f);
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errcap, "%s: %s", path,
                 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db, 2000);
    int ok = 1;
    time_t now = time(NULL);
    struct tm tm;
    char today[16];
    gmtime_r(&now, &tm);
    strftime(today, sizeof today, "%Y-%m-%d", &tm);
    /* received_at is ISO 8601 UTC text: "YYYY-MM-DD..." sorts by day. */
    f->today = count(db, "SELECT count(*) FROM messages WHERE received_at >= ?",
                     today, &ok);
    f->open = count(db, "SELECT count(*) FROM alerts WHERE status = 'open'",
                    NULL, &ok);
    f->acked =
        count(db, "SELECT count(*) FROM alerts WHERE status = 'acknowledged'",
              NULL, &ok);
    f->pending = count(
        db, "SELECT count(*) FROM outbox WHERE status = 'pending'", NULL, &ok);
    f->failed = count(db, "SELECT count(*) FROM outbox WHERE status = 'failed'",
                      NULL, &ok);
    sqlite3_stmt *st;
    if (ok && sqlite3_prepare_v2(db,
                                 "SELECT received_at, coalesce(name, source), "
                                 "status FROM messages ORDER BY id DESC "
                                 "LIMIT 1",
                                 -1, &st, NULL) == SQLITE_OK) {
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW) {
            copy_col(st, 0, f->last_at, sizeof f->last_at);
            copy_col(st, 1, f->last_name, sizeof f->last_name);
            copy_col(st, 2, f->last_status, sizeof f->last_status);
        } else if (step != SQLITE_DONE) {
            ok = 0;
        }
        sqlite3_finalize(st);
    } else {
        ok = 0;
    }
    if (!ok)
        snprintf(err, errcap, "%s: cannot read: %s", path, sqlite3_errmsg(db));
    sqlite3_close(db);
    f->ok = ok;
    return ok ? 0 : -1;
}

static void json_str(FILE *out, const char *s)
{
    pv_buf b = PV_BUF_INIT;
    pv_buf_json_str(&b, s ? s : "", (size_t)-1);
    fputs(pv_buf_ok(&b) ? pv_buf_cstr(&b) : "\"\"", out);
    pv_buf_free(&b);
}

static void uptime_text(long secs, char *out, size_t cap)
{
    if (secs < 0)
        secs = 0;
    long d = secs / 86400, h = secs / 3600 % 24, m = secs / 60 % 60;
    if (d)
        snprintf(out, cap, "%ldd %ldh %02ldm", d, h, m);
    else if (h)
        snprintf(out, cap, "%ldh %02ldm", h, m);
    else
        snprintf(out, cap, "%ldm %02lds", m, secs % 60);
}

/* The run file's lines of one key, e.g. every "tail PATH". */
static void each_line(const char *text, const char *key,
                      void (*fn)(const char *val, size_t len, void *ud),
                      void *ud)
{
    size_t klen = strlen(key);
    for (const char *p = text ? strchr(text, '\n') : NULL; p;
         p = strchr(p, '\n')) {
        p++;
        if (!strncmp(p, key, klen) && p[klen] == ' ') {
            const char *v = p + klen + 1;
            const char *nl = strchr(v, '\n');
            fn(v, nl ? (size_t)(nl - v) : strlen(v), ud);
        }
    }
}

struct print_ctx {
    FILE *out;
    const char *label;
    int json, n;
};

static void print_val(const char *v, size_t len, void *ud)
{
    struct print_ctx *c = ud;
    pv_buf b = PV_BUF_INIT;
    if (c->json) {
        pv_buf_json_str(&b, v, len);
        fputs(c->n ? ", " : "", c->out);
        fputs(pv_buf_ok(&b) ? pv_buf_cstr(&b) : "\"\"", c->out);
    } else {
        pv_buf_put_escaped(&b, v, len, 0);
        fprintf(c->out, "%-16s%s\n", c->n ? "" : c->label,
                pv_buf_ok(&b) ? pv_buf_cstr(&b) : "?");
    }
    pv_buf_free(&b);
    c->n++;
}

static void print_list(FILE *out, const char *text, const char *key,
                       const char *label, int json)
{
    struct print_ctx c = {out, label, json, 0};
    if (json)
        fprintf(out, ", \"%s\": [", key);
    each_line(text, key, print_val, &c);
    if (json)
        fputs("]", out);
}

int pv_cli_status(int argc, char **argv)
{
    static const struct option longs[] = {
        {"config", required_argument, NULL, 'c'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL;
    int json = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "c:h", longs, NULL)) != -1) {
        if (c == 'h') {
            fputs(usage_status, stdout);
            return 0;
        }
        if (c == 'c') {
            config = optarg;
        } else if (c == 'j') {
            json = 1;
        } else {
            fprintf(stderr,
                    "pvwatch status: unknown or incomplete option '%s'\n%s",
                    argv[optind - 1], usage_status);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "pvwatch status: unexpected argument '%s'\n%s",
                argv[optind], usage_status);
        return EXIT_USAGE;
    }
    pv_config cfg;
    pv_buf errors = PV_BUF_INIT;
    if (pv_config_load(config, &cfg, &errors)) {
        /* One "pvwatch: FILE:LINE: reason" line each, escaped. */
        const char *e = pv_buf_cstr(&errors);
        for (const char *p = e; p && *p;) {
            const char *nl = strchr(p, '\n');
            size_t len = nl ? (size_t)(nl - p) : strlen(p);
            pv_buf l = PV_BUF_INIT;
            pv_buf_put_escaped(&l, p, len, 0);
            fprintf(stderr, "pvwatch: %s\n",
                    pv_buf_ok(&l) ? pv_buf_cstr(&l) : "");
            pv_buf_free(&l);
            p = nl ? nl + 1 : p + len;
        }
        pv_buf_free(&errors);
        pv_config_free(&cfg);
        return EXIT_USAGE;
    }
    pv_buf_free(&errors);
    const char *cfgname = cfg.path ? cfg.path : "(built-in defaults)";

    char err[4600];
    pv_service_info si;
    if (pv_service_read(cfg.database, &si, err, sizeof err)) {
        fprintf(stderr, "pvwatch: %s\n", err);
        pv_config_free(&cfg);
        return EXIT_RUNTIME;
    }
    struct db_facts f;
    FILE *probe = fopen(cfg.database, "rb");
    int have_db = probe != NULL;
    if (probe)
        fclose(probe);
    int db_rc = have_db ? read_db(cfg.database, &f, err, sizeof err) : -1;
    if (!have_db && !si.running) {
        fprintf(stderr,
                "pvwatch: no database at %s (configuration %s): pvwatch "
                "has not run here\n",
                cfg.database, cfgname);
        pv_service_info_free(&si);
        pv_config_free(&cfg);
        return EXIT_USAGE;
    }
    if (have_db && db_rc)
        fprintf(stderr, "pvwatch: %s\n", err);

    time_t now = time(NULL);
    FILE *out = stdout;
    const char *state = !si.running ? "not running"
                        : si.is_run ? "running"
                                    : "running (starting, or a one-off "
                                      "ingest or replay)";
    if (json) {
        fprintf(out,
                "{\"running\": %s, \"state\": ", si.running ? "true" : "false");
        json_str(out, state);
        fprintf(out, ", \"pid\": %ld, \"started\": %ld, \"uptime\": %ld",
                si.running ? si.pid : 0L, si.running ? si.started : 0L,
                si.running && si.started ? (long)(now - si.started) : 0L);
        fputs(", \"database\": ", out);
        json_str(out, cfg.database);
        fputs(", \"config\": ", out);
        json_str(out, cfgname);
        print_list(out, si.running ? si.text : NULL, "mllp", "", 1);
        print_list(out, si.running ? si.text : NULL, "inbox", "", 1);
        print_list(out, si.running ? si.text : NULL, "tail", "", 1);
        if (db_rc == 0) {
            fprintf(out,
                    ", \"messages_today\": %lld, \"alerts_open\": %lld, "
                    "\"alerts_acknowledged\": %lld, \"outbox_pending\": %lld, "
                    "\"outbox_failed\": %lld, \"last_message\": ",
                    f.today, f.open, f.acked, f.pending, f.failed);
            if (f.last_at[0]) {
                fputs("{\"at\": ", out);
                json_str(out, f.last_at);
                fputs(", \"name\": ", out);
                json_str(out, f.last_name);
                fputs(", \"status\": ", out);
                json_str(out, f.last_status);
                fputs("}", out);
            } else {
                fputs("null", out);
            }
        }
        fputs("}\n", out);
    } else {
        if (si.running && si.pid) {
            char up[64] = "unknown";
            if (si.started)
                uptime_text((long)(now - si.started), up, sizeof up);
            fprintf(out, "pvwatch:        %s (pid %ld, up %s)\n", state, si.pid,
                    up);
        } else {
            fprintf(out, "pvwatch:        %s\n", state);
        }
        pv_buf eb = PV_BUF_INIT;
        char *abs = realpath(cfg.database, NULL);
        fprintf(out, "database:       %s\n",
                pv_buf_escape(&eb, abs ? abs : cfg.database));
        free(abs);
        abs = cfg.path ? realpath(cfg.path, NULL) : NULL;
        fprintf(out, "configuration:  %s\n",
                pv_buf_escape(&eb, abs ? abs : cfgname));
        free(abs);
        pv_buf_free(&eb);
        if (si.running && si.is_run) {
            print_list(out, si.text, "mllp", "MLLP:", 0);
            print_list(out, si.text, "inbox", "inbox:", 0);
            print_list(out, si.text, "tail", "tailing:", 0);
        }
        if (db_rc == 0) {
            fprintf(out, "messages today: %lld\n", f.today);
            pv_buf nb = PV_BUF_INIT;
            if (f.last_at[0])
                fprintf(out, "last message:   %s %s (%s)\n", f.last_at,
                        pv_buf_escape(&nb, f.last_name), f.last_status);
            else
                fprintf(out, "last message:   none\n");
            fprintf(out, "alerts:         %lld open, %lld acknowledged\n",
                    f.open, f.acked);
            fprintf(out, "outbox:         %lld pending, %lld failed\n",
                    f.pending, f.failed);
            pv_buf_free(&nb);
        }
    }
    int status = !si.running        ? EXIT_NOT_RUNNING
                 : db_rc && have_db ? EXIT_RUNTIME
                                    : 0;
    pv_service_info_free(&si);
    pv_config_free(&cfg);
    return status;
}

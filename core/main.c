/* main.c: the pvwatch command line (DESIGN.md "Command line").
 *
 * Parses arguments, loads the configuration and hands over to the module
 * that does the work. Exit status: 0 success; 1 runtime failure; 2 usage or
 * configuration error, or the database's lock held by another pvwatch; 3
 * 'ingest' finished but rejected some input; 4 (PV_EXIT_DB_GONE) 'run'
 * stopped because its database file was deleted or replaced. */
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <lua.h>
#include <sqlite3.h>
#include <uv.h>

#include "alerts.h"
#include "cli.h"
#include "config.h"
#include "csv.h"
#include "csv_layout.h"
#include "engine.h"
#include "error.h"
#include "ingest.h"
#include "log.h"
#include "notify.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define EXIT_REJECTED 3

static const char usage_main[] =
    "usage: pvwatch COMMAND [OPTIONS]\n"
    "\n"
    "Watches patients on baricitinib (and any drug a rule names) for safety\n"
    "signals: lab results, medication exposures and clinical events come in,\n"
    "Lua rules raise alerts, alerts go to a log, a workflow and email.\n"
    "\n"
    "commands:\n"
    "  run     [-c CONFIG]               run the engine until SIGINT/SIGTERM;\n"
    "                                    SIGHUP reloads config and rules\n"
    "  ingest  [-c CONFIG] PATH...       ingest files once ('-' = stdin), run\n"
    "                                    the rules, exit\n"
    "  replay  [-c CONFIG] [--since T] [--rule NAME]\n"
    "                                    re-run rules over stored history\n"
    "  alerts  [-c CONFIG] [list|show ID|ack ID|assign ID|comment ID|\n"
    "          close ID] [--status S] [--json] [--note TEXT] [--by NAME]\n"
    "          [--to NAME] [--outcome O] [--assignee NAME]\n"
    "  test    [PATH...]                 run rule specs (default tests/rules)\n"
    "  check   [-c CONFIG]               load config and every rule; report\n"
    "                                    errors; change nothing\n"
    "  send    HOST:PORT FILE...         send HL7 files over MLLP, print ACKs\n"
    "  outbox  [-c CONFIG] [list|retry [ID]]  the e-mail outbox\n"
    "  status  [-c CONFIG] [--json]      whether pvwatch runs, and what it\n"
    "                                    is doing (exit 3: not running)\n"
    "  rules   [list|stats] [-c CONFIG] [--json|--markdown] [--since D]\n"
    "                                    list the rules of the pack; stats:\n"
    "                                    what came of each rule's alerts\n"
    "  serve   [-c CONFIG] [--listen HOST:PORT]\n"
    "                                    the review console alone, for the\n"
    "                                    database of CONFIG\n"
    "  users   [-c CONFIG] add|list|...  the review console's users\n"
    "  report  disproportionality FILE... [--drug NAME] [--min-count N]\n"
    "                                    PRR, ROR, IC and EBGM over\n"
    "                                    spontaneous reports\n"
    "  version                           print the version\n"
    "\n"
    "'pvwatch COMMAND --help' describes one command. Without -c, pvwatch\n"
    "reads ./pvwatch.lua when present, else runs on built-in defaults.\n"
    "Exit status: 0 ok, 1 runtime failure, 2 usage or configuration error\n"
    "(or another pvwatch run/ingest/replay holds the database), 3 ingest\n"
    "rejected some input (the rest was stored), 4 run stopped because its\n"
    "database file was deleted or replaced.\n";

static const char usage_run[] =
    "usage: pvwatch run [-c CONFIG] [--stats]\n"
    "\n"
    "--stats logs, when pvwatch stops, per rule: calls, facts the exposure\n"
    "gate spared, failed calls and microseconds per call (PVWATCH_PROFILE=1).\n"
    "\n"
    "Runs the engine: watches the inbox directory (default ./inbox; files\n"
    "are moved to inbox/processed/ or inbox/rejected/ with a .error file),\n"
    "follows the 'tail' CSV files, listens for HL7 over MLLP (default\n"
    "127.0.0.1:2575) and runs the rules on every new fact. SIGINT or SIGTERM\n"
    "finish the batch at hand and exit 0. SIGHUP reads CONFIG again (checked\n"
    "as 'pvwatch check' does; on any error the running configuration stays),\n"
    "applies what can change live (e-mail recipients and routes, limits,\n"
    "label, inbox and tailed files, log_level, log_format), logs each change\n"
    "and each key that needs a restart (database, mllp.listen, http, ...),\n"
    "then reloads the rules. Log lines start with the UTC time\n"
    "(2026-12-07T16:45:00.123Z pvwatch: ...); log_format = \"json\" or\n"
    "PVWATCH_LOG_FORMAT=json gives one JSON object per line.\n";

static const char usage_ingest[] =
    "usage: pvwatch ingest [-c CONFIG] [--db FILE] PATH...\n"
    "       pvwatch ingest [-c CONFIG] --explain FILE...\n"
    "\n"
    "Stores every good record of each CSV or HL7 file ('-' = stdin), runs\n"
    "the rules, writes alerts to the database and the alert log, and prints\n"
    "a summary per file. Each rejected record is one line on stderr:\n"
    "FILE:LINE: reason. A file ingested before (same bytes) is skipped.\n"
    "Exit 0, or 3 when some records were rejected (the rest were stored).\n"
    "--explain stores nothing: it says which CSV layout each file's header\n"
    "matches (built-in, OMOP CDM table or csv.layouts entry) or, when none\n"
    "does, the required columns missing and the headers that nearly match\n"
    "(exit 3).\n";

static const char usage_alerts[] =
    "usage: pvwatch alerts [-c CONFIG] [list] [--status "
    "open|acknowledged|closed] [--json]\n"
    "       pvwatch alerts [-c CONFIG] show ID [--json]\n"
    "       pvwatch alerts [-c CONFIG] ack ID [--note TEXT] [--by NAME]\n"
    "       pvwatch alerts [-c CONFIG] assign ID --to NAME [--note TEXT] "
    "[--by NAME]\n"
    "       pvwatch alerts [-c CONFIG] comment ID --note TEXT [--by NAME]\n"
    "       pvwatch alerts [-c CONFIG] close ID --note TEXT [--outcome O] "
    "[--by NAME]\n"
    "\n"
    "Lists and follows up alerts. Every ack, assign, comment and close is\n"
    "recorded with its author and note in the audit trail; closing needs a\n"
    "note, and may say what came of the alert (--outcome, one of the list\n"
    "below; 'pvwatch rules stats' counts them per rule). assign hands an\n"
    "open or acknowledged alert to NAME (1 to 64 characters); list\n"
    "--assignee NAME shows the alerts NAME has. A comment may be added in\n"
    "any status, a closed alert's too (hand-over). The author is your\n"
    "login name: --by NAME for someone else is refused unless the\n"
    "configuration says audit = { allow_by = true }, and is then recorded\n"
    "as entered by you on behalf of NAME. A closed alert cannot be\n"
    "acknowledged, assigned or closed again. The database must exist\n"
    "(nothing is created).\n";

/* The help of 'alerts': the text above and the outcomes, from the one
 * list (alerts.c, pv_alert_outcomes). */
static void print_alerts_usage(FILE *f)
{
    fputs(usage_alerts, f);
    fputs("\noutcomes (--outcome):\n", f);
    for (int i = 0; pv_alert_outcomes[i]; i++)
        fprintf(f, "  %-31s %s\n", pv_alert_outcomes[i],
                pv_alert_outcome_label(pv_alert_outcomes[i]));
}

static const char usage_check[] =
    "usage: pvwatch check [-c CONFIG]\n"
    "\n"
    "Loads the configuration and every rule plugin and reports each error\n"
    "as FILE:LINE: reason: bad values, mllp.listen that is not HOST:PORT,\n"
    "an email.url that is not smtp[s]://HOST[:PORT], paths whose directory\n"
    "is missing or not writable. Changes nothing. Exit 0 when all is well, 2\n"
    "otherwise.\n";

static int wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--"))
            return 0;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return 1;
    }
    return 0;
}

/* Options shared by the commands; unknown ones are usage errors. */
struct opts {
    const char *config;
    const char *db;
    const char *status;
    const char *note;
    const char *by;
    const char *since;
    const char *rule;
    const char *to;       /* alerts assign --to */
    const char *outcome;  /* alerts close --outcome */
    const char *assignee; /* alerts list --assignee */
    int json;
    int explain; /* ingest --explain */
    int stats;   /* run --stats */
    char **args;
    int nargs;
};

static int parse_opts(int argc, char **argv, const char *allowed,
                      struct opts *o, const char *usage)
{
    static const struct option longs[] = {
        {"config", required_argument, NULL, 'c'},
        {"db", required_argument, NULL, 'd'},
        {"status", required_argument, NULL, 's'},
        {"note", required_argument, NULL, 'n'},
        {"by", required_argument, NULL, 'b'},
        {"since", required_argument, NULL, 'S'},
        {"rule", required_argument, NULL, 'r'},
        {"to", required_argument, NULL, 't'},
        {"outcome", required_argument, NULL, 'o'},
        {"assignee", required_argument, NULL, 'a'},
        {"json", no_argument, NULL, 'j'},
        {"explain", no_argument, NULL, 'x'},
        {"stats", no_argument, NULL, 'T'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "c:", longs, NULL)) != -1) {
        if (c == '?' || c == ':' || !strchr(allowed, c)) {
            fprintf(stderr, "pvwatch %s: unknown or incomplete option '%s'\n%s",
                    argv[0], argv[optind - 1], usage);
            return -1;
        }
        switch (c) {
        case 'c':
            o->config = optarg;
            break;
        case 'd':
            o->db = optarg;
            break;
        case 's':
            o->status = optarg;
            break;
        case 'n':
            o->note = optarg;
            break;
        case 'b':
            o->by = optarg;
            break;
        case 'S':
            o->since = optarg;
            break;
        case 'r':
            o->rule = optarg;
            break;
        case 't':
            o->to = optarg;
            break;
        case 'o':
            o->outcome = optarg;
            break;
        case 'a':
            o->assignee = optarg;
            break;
        case 'j':
            o->json = 1;
            break;
        case 'x':
            o->explain = 1;
            break;
        case 'T':
            o->stats = 1;
            break;
        }
    }
    o->args = argv + optind;
    o->nargs = argc - optind;
    return 0;
}

static int load_config(const char *path, pv_config *cfg)
{
    pv_buf errors = PV_BUF_INIT;
    int rc = pv_config_load(path, cfg, &errors);
    if (rc)
        pv_cli_print_lines(pv_buf_cstr(&errors));
    else /* log_format, log_level (issue 21 part 2; log.h) */
        pv_log_configure(cfg->log_format, cfg->log_level);
    pv_buf_free(&errors);
    return rc;
}

/* Opens the pipeline; prints errors; returns an exit status or 0. role:
 * see pv_ingest_open_as (the single-instance lock); hint, when another
 * pvwatch holds the lock, says what to do instead (NULL: stop it first).
 * A held lock is exit status 2 (EXIT_USAGE), as is a configuration error:
 * retrying will not help. */
static int open_pipeline_as(const pv_config *cfg, const char *db, int no_rules,
                            enum pv_ingest_role role, const char *hint,
                            pv_ingest **p)
{
    pv_buf errors = PV_BUF_INIT;
    int rc = pv_ingest_open_as(cfg, db, no_rules, role, p, &errors);
    pv_cli_print_lines(pv_buf_cstr(&errors));
    pv_buf_free(&errors);
    if (rc == PV_ELOCKED)
        fprintf(stderr, "pvwatch: %s\n",
                hint ? hint : "stop it first (SIGTERM), then try again");
    if (!rc)
        return 0;
    return rc == PV_EINVAL || rc == PV_ELOCKED ? EXIT_USAGE : EXIT_RUNTIME;
}

static int open_pipeline(const pv_config *cfg, const char *db, int no_rules,
                         pv_ingest **p)
{
    return open_pipeline_as(cfg, db, no_rules, PV_INGEST_WRITER, NULL, p);
}

/* A missing SMTP password is a configuration error found at start, not
 * a failure discovered at the first alert. */
static int prepare_mail(pv_ingest *p)
{
    char err[512];
    if (pv_ingest_notify(p) &&
        pv_notify_prepare(pv_ingest_notify(p), err, sizeof err)) {
        fprintf(stderr, "pvwatch: %s\n", err);
        return EXIT_USAGE;
    }
    return 0;
}

static int cmd_run(int argc, char **argv)
{
    struct opts o;
    if (wants_help(argc, argv)) {
        fputs(usage_run, stdout);
        return 0;
    }
    if (parse_opts(argc, argv, "cT", &o, usage_run) || o.nargs) {
        if (o.nargs)
            fprintf(stderr, "pvwatch run: unexpected argument '%s'\n%s",
                    o.args[0], usage_run);
        return EXIT_USAGE;
    }
    /* The per-rule profile is read where the rules are freed (rules.c). */
    if (o.stats && setenv("PVWATCH_PROFILE", "1", 1) != 0)
        pv_warn("--stats: %s", strerror(errno));
    pv_config cfg;
    if (load_config(o.config, &cfg)) {
        pv_config_free(&cfg);
        return EXIT_USAGE;
    }
    pv_buf warn = PV_BUF_INIT;
    pv_config_warnings(&cfg, &warn);
    pv_cli_print_lines(pv_buf_cstr(&warn));
    pv_buf_free(&warn);
    pv_ingest *p;
    int status = open_pipeline(&cfg, NULL, 0, &p);
    if (!status)
        status = prepare_mail(p);
    if (!status)
        status = pv_engine_run(&cfg, p);
    if (p)
        pv_ingest_close(p);
    pv_config_free(&cfg);
    return status;
}

/* ingest --explain (issue 15 item 11): reads each file's header only. */
struct explain_ctx {
    const pv_config *cfg;
    const char *name;
    int rc, seen;
};

static int explain_record(void *ud, long line, const pv_span *f, size_t n)
{
    struct explain_ctx *x = ud;
    (void)line;
    pv_buf out = PV_BUF_INIT;
    x->rc = pv_layout_explain(x->cfg, x->name, f, n, &out);
    fputs(pv_buf_ok(&out) ? pv_buf_cstr(&out) : "out of memory\n", stdout);
    pv_buf_free(&out);
    x->seen = 1;
    return 1;
}

static void explain_error(void *ud, long line, const char *reason)
{
    struct explain_ctx *x = ud;
    printf("%s:%ld: %s\n", x->name, line, reason);
}

static int explain_files(const pv_config *cfg, char **paths, int n)
{
    int bad = 0;
    for (int i = 0; i < n; i++) {
        FILE *f = fopen(paths[i], "rb");
        if (!f) {
            printf("%s: cannot open: %s\n", paths[i], strerror(errno));
            bad = 1;
            continue;
        }
        struct explain_ctx x = {cfg, paths[i], PV_EINVAL, 0};
        pv_csv *csv = pv_csv_new(0, explain_record, explain_error, &x);
        char buf[8192];
        size_t got;
        int first = 1;
        while (csv && !x.seen && (got = fread(buf, 1, sizeof buf, f)) > 0) {
            size_t skip =
                first && got >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3) ? 3 : 0;
            if (first && got - skip >= 3 &&
                (!memcmp(buf + skip, "MSH", 3) ||
                 !memcmp(buf + skip, "FHS", 3) ||
                 !memcmp(buf + skip, "BHS", 3))) {
                printf("%s: HL7 v2 messages (not a CSV layout)\n", paths[i]);
                x.seen = 1;
                x.rc = 0;
                break;
            }
            first = 0;
            pv_csv_feed(csv, buf, got);
        }
        if (csv && !x.seen)
            pv_csv_finish(csv);
        if (!x.seen)
            printf("%s: no header row\n", paths[i]);
        pv_csv_free(csv);
        fclose(f);
        bad |= x.rc != 0;
    }
    return bad ? 3 : 0;
}

static int cmd_ingest(int argc, char **argv)
{
    struct opts o;
    if (wants_help(argc, argv)) {
        fputs(usage_ingest, stdout);
        return 0;
    }
    if (parse_opts(argc, argv, "cdx", &o, usage_ingest))
        return EXIT_USAGE;
    if (o.nargs == 0) {
        fprintf(stderr, "pvwatch ingest: no files given\n%s", usage_ingest);
        return EXIT_USAGE;
    }
    pv_config cfg;
    if (load_config(o.config, &cfg)) {
        pv_config_free(&cfg);
        return EXIT_USAGE;
    }
    if (o.explain) {
        int rc = explain_files(&cfg, o.args, o.nargs);
        pv_config_free(&cfg);
        return rc;
    }
    pv_ingest *p;
    char hint[4200];
    snprintf(hint, sizeof hint,
             "while it runs, drop the files into its inbox (%s) instead: it "
             "ingests them itself",
             cfg.inbox.path);
    int status = open_pipeline_as(&cfg, o.db, 0, PV_INGEST_WRITER, hint, &p);
    if (!status)
        status = prepare_mail(p);
    if (status) {
        pv_ingest_close(p);
        pv_config_free(&cfg);
        return status;
    }
    long stored = 0, rejected = 0, dups = 0, failed = 0;
    pv_alerts_counts total = {0, 0, 0};
    pv_buf ename = PV_BUF_INIT; /* the file name, escaped for the terminal */
    for (int i = 0; i < o.nargs && status != EXIT_RUNTIME; i++) {
        const char *path = o.args[i];
        const char *name =
            strcmp(path, "-") == 0 ? "(stdin)" : pv_buf_escape(&ename, path);
        pv_file_report rep;
        int rc = pv_ingest_begin(p);
        if (!rc)
            rc = pv_ingest_file(p, path, name, &rep);
        else
            memset(&rep, 0, sizeof rep);
        if (!rc)
            rc = pv_ingest_commit(p);
        if (rc) {
            pv_ingest_rollback(p);
            fprintf(stderr, "pvwatch: %s: not stored: %s (%s)\n", name,
                    pv_strerror(rc), pv_store_errmsg(pv_ingest_store(p)));
            status = EXIT_RUNTIME;
            pv_file_report_free(&rep);
            break;
        }
        pv_alerts_counts c;
        pv_alerts_counts_take(pv_ingest_alerts(p), &c);
        total.opened += c.opened;
        total.escalated += c.escalated;
        total.repeated += c.repeated;
        if (rep.errors.len)
            pv_cli_print_lines(pv_buf_cstr(&rep.errors));
        if (rep.duplicate) {
            dups++;
            printf("%s: already ingested (message %lld); skipped\n", name,
                   (long long)rep.duplicate_of);
        } else {
            printf("%s: %s: %ld stored, %ld rejected; alerts: %ld opened, "
                   "%ld escalated, %ld repeated\n",
                   name, rep.kind ? rep.kind : "not ingested", rep.stored,
                   rep.rejected, c.opened, c.escalated, c.repeated);
        }
        stored += rep.stored;
        rejected += rep.rejected;
        failed += rep.failed;
        pv_file_report_free(&rep);
    }
    if (pv_ingest_notify(p) && status == 0) {
        long sent = pv_notify_drain(pv_ingest_notify(p), cfg.email.timeout);
        if (sent)
            printf("e-mail: %ld sent\n", sent);
    }
    if (o.nargs > 1)
        printf("total: %d files, %ld stored, %ld rejected, %ld skipped as "
               "duplicates; alerts: %ld opened, %ld escalated, %ld "
               "repeated\n",
               o.nargs, stored, rejected, dups, total.opened, total.escalated,
               total.repeated);
    pv_buf_free(&ename);
    /* What was committed above is stored, whatever the alert log did; its
     * lines that the file did not take wait in the database. */
    long owed = pv_alerts_flush(pv_ingest_alerts(p));
    if (owed > 0) {
        printf("alert log: %ld line%s of the stored alerts not written yet "
               "(kept in the database; written by the next start or "
               "ingest)\n",
               owed, owed == 1 ? "" : "s");
        if (!status)
            status = EXIT_RUNTIME;
    }
    pv_ingest_close(p);
    pv_config_free(&cfg);
    if (status)
        return status;
    return rejected || failed ? EXIT_REJECTED : 0;
}

/* The signed audit trail (issue 21 part 2): who an ack or close is
 * recorded for. Returns an exit status (printed) or 0 with *actor and
 * *typed (the login, stored as alert_actions.entered_by) set. */
static int audit_actor(const pv_config *cfg, const char *verb, const char *by,
                       const char **actor, const char **typed)
{
    const char *login = pv_cli_login_name();
    if (!login) {
        fprintf(stderr,
                "pvwatch alerts %s: cannot tell who you are (no "
                "passwd entry for this user and no $LOGNAME)\n",
                verb);
        return EXIT_USAGE;
    }
    *typed = login;
    *actor = login;
    if (!by || !strcmp(by, login))
        return 0;
    int bad = !*by || strlen(by) > 128;
    for (const char *q = by; *q && !bad; q++)
        bad = (unsigned char)*q < 0x20 || *q == 0x7f;
    if (bad) {
        fprintf(stderr,
                "pvwatch alerts %s: --by must be a name of 1 to 128 "
                "printable characters\n",
                verb);
        return EXIT_USAGE;
    }
    if (!cfg->audit.allow_by) {
        pv_buf e = PV_BUF_INIT;
        fprintf(stderr,
                "pvwatch alerts %s: --by '%s' is not you (%s): the audit "
                "trail records who enters an action; to enter actions on "
                "behalf of others, the configuration (%s) must say "
                "audit = { allow_by = true }\n",
                verb, pv_buf_escape(&e, by), login,
                cfg->path ? cfg->path : "built-in defaults");
        pv_buf_free(&e);
        return EXIT_USAGE;
    }
    *actor = by;
    return 0;
}

static int parse_id(const char *s, int64_t *id)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s || v <= 0)
        return -1;
    *id = v;
    return 0;
}

static int cmd_alerts(int argc, char **argv)
{
    struct opts o;
    if (wants_help(argc, argv)) {
        print_alerts_usage(stdout);
        return 0;
    }
    if (parse_opts(argc, argv, "csjnbtoa", &o, usage_alerts))
        return EXIT_USAGE;
    const char *verb = o.nargs ? o.args[0] : "list";
    int need_id = strcmp(verb, "list") != 0;
    if (strcmp(verb, "list") && strcmp(verb, "show") && strcmp(verb, "ack") &&
        strcmp(verb, "close") && strcmp(verb, "assign") &&
        strcmp(verb, "comment")) {
        fprintf(stderr, "pvwatch alerts: unknown action '%s'\n%s", verb,
                usage_alerts);
        return EXIT_USAGE;
    }
    if (o.nargs != (need_id ? 2 : (o.nargs ? 1 : 0))) {
        fprintf(stderr, "pvwatch alerts %s: %s\n%s", verb,
                need_id ? "needs one alert ID" : "takes no arguments",
                usage_alerts);
        return EXIT_USAGE;
    }
    int64_t id = 0;
    if (need_id && parse_id(o.args[1], &id)) {
        fprintf(stderr, "pvwatch alerts %s: '%s' is not an alert ID\n", verb,
                o.args[1]);
        return EXIT_USAGE;
    }
    if (o.status && strcmp(o.status, "open") &&
        strcmp(o.status, "acknowledged") && strcmp(o.status, "closed")) {
        fprintf(stderr, "pvwatch alerts: --status must be open, "
                        "acknowledged or closed\n");
        return EXIT_USAGE;
    }
    /* A closed alert says why in the audit trail (issue 21 part 2; issue
     * 16 adds --outcome beside it). */
    if (!strcmp(verb, "close") && !(o.note && o.note[strspn(o.note, " \t")])) {
        fprintf(stderr, "pvwatch alerts close: needs --note TEXT (why the "
                        "alert is closed; the audit trail keeps it)\n");
        return EXIT_USAGE;
    }
    /* Issue 16: assign, comment, --outcome, --assignee. */
    const char *only = o.to && strcmp(verb, "assign")       ? "--to"
                       : o.outcome && strcmp(verb, "close") ? "--outcome"
                       : o.assignee && strcmp(verb, "list") ? "--assignee"
                                                            : NULL;
    if (only) {
        fprintf(stderr, "pvwatch alerts %s: %s is not an option of %s\n%s",
                verb, only, verb, usage_alerts);
        return EXIT_USAGE;
    }
    if (!strcmp(verb, "assign") && !(o.to && o.to[strspn(o.to, " \t")])) {
        fprintf(stderr, "pvwatch alerts assign: needs --to NAME (who takes "
                        "the alert over)\n");
        return EXIT_USAGE;
    }
    if (!strcmp(verb, "comment") &&
        !(o.note && o.note[strspn(o.note, " \t")])) {
        fprintf(stderr, "pvwatch alerts comment: needs --note TEXT\n");
        return EXIT_USAGE;
    }
    if (o.outcome && pv_alert_outcome_index(o.outcome) < 0) {
        pv_buf e = PV_BUF_INIT;
        fprintf(stderr,
                "pvwatch alerts close: unknown outcome '%s'; it is one "
                "of:\n",
                pv_buf_escape(&e, o.outcome));
        pv_buf_free(&e);
        for (int i = 0; pv_alert_outcomes[i]; i++)
            fprintf(stderr, "  %-31s %s\n", pv_alert_outcomes[i],
                    pv_alert_outcome_label(pv_alert_outcomes[i]));
        return EXIT_USAGE;
    }
    pv_config cfg;
    if (load_config(o.config, &cfg)) {
        pv_config_free(&cfg);
        return EXIT_USAGE;
    }
    const char *actor = NULL, *typed = NULL;
    if (need_id && strcmp(verb, "show")) {
        int st = audit_actor(&cfg, verb, o.by, &actor, &typed);
        if (st) {
            pv_config_free(&cfg);
            return st;
        }
    }
    if (pv_cli_need_db("alerts", &cfg, NULL)) {
        pv_config_free(&cfg);
        return EXIT_USAGE;
    }
    pv_ingest *p;
    /* Beside a running engine: reads and workflow changes only, never the
     * engine's recovery of the alert log. */
    int status = open_pipeline_as(&cfg, NULL, 1, PV_INGEST_CLIENT, NULL, &p);
    if (status) {
        pv_config_free(&cfg);
        return status;
    }
    pv_store *s = pv_ingest_store(p);
    if (!strcmp(verb, "list")) {
        if (pv_alerts_print_list_for(s, stdout, o.status, o.assignee, o.json))
            status = EXIT_RUNTIME;
    } else if (!strcmp(verb, "show")) {
        int rc = pv_alerts_print_show(s, stdout, id, o.json);
        if (rc == PV_ENOTFOUND) {
            fprintf(stderr, "pvwatch: no alert with id %lld\n", (long long)id);
            status = EXIT_USAGE;
        } else if (rc) {
            status = EXIT_RUNTIME;
        }
    } else {
        char err[512];
        pv_alert_action act = {.alert_id = id,
                               .action = verb,
                               .actor = actor,
                               .entered_by = typed,
                               .note = o.note,
                               .outcome = o.outcome,
                               .assignee = o.to};
        int rc = pv_alerts_do(pv_ingest_alerts(p), &act, err, sizeof err);
        if (rc) {
            pv_buf e = PV_BUF_INIT;
            fprintf(stderr, "pvwatch: %s\n", pv_buf_escape(&e, err));
            pv_buf_free(&e);
            status = rc == PV_ENOTFOUND || rc == PV_ESTATE || rc == PV_EINVAL
                         ? EXIT_USAGE
                         : EXIT_RUNTIME;
        } else if (!strcmp(verb, "assign")) {
            pv_buf e = PV_BUF_INIT;
            printf("alert %lld assigned to %s\n", (long long)id,
                   pv_buf_escape(&e, o.to + strspn(o.to, " \t")));
            pv_buf_free(&e);
        } else if (!strcmp(verb, "comment")) {
            printf("alert %lld: comment recorded\n", (long long)id);
        } else {
            printf("alert %lld %s%s%s\n", (long long)id,
                   strcmp(verb, "ack") == 0 ? "acknowledged" : "closed",
                   o.outcome ? ", outcome " : "", o.outcome ? o.outcome : "");
        }
    }
    pv_ingest_close(p);
    pv_config_free(&cfg);
    return status;
}

static const char usage_outbox[] =
    "usage: pvwatch outbox [-c CONFIG] [list] [--status pending|sent|failed]\n"
    "       pvwatch outbox [-c CONFIG] retry [ID]\n"
    "\n"
    "Shows the e-mail outbox, or makes failed mails (one, or all) pending\n"
    "again; 'pvwatch run' then sends them.\n";

static int cmd_outbox(int argc, char **argv)
{
    struct opts o;
    if (wants_help(argc, argv)) {
        fputs(usage_outbox, stdout);
        return 0;
    }
    if (parse_opts(argc, argv, "cs", &o, usage_outbox))
        return EXIT_USAGE;
    const char *verb = o.nargs ? o.args[0] : "list";
    int64_t id = 0;
    if (strcmp(verb, "list") && strcmp(verb, "retry")) {
        fprintf(stderr, "pvwatch outbox: unknown action '%s'\n%s", verb,
                usage_outbox);
        return EXIT_USAGE;
    }
    if (o.nargs > 2 ||
        (o.nargs == 2 && (strcmp(verb, "retry") || parse_id(o.args[1], &id)))) {
        fprintf(stderr, "pvwatch outbox: bad arguments\n%s", usage_outbox);
        return EXIT_USAGE;
    }
    pv_config cfg;
    if (load_config(o.config, &cfg)) {
        pv_config_free(&cfg);
        return EXIT_USAGE;
    }
    if (pv_cli_need_db("outbox", &cfg, NULL)) {
        pv_config_free(&cfg);
        return EXIT_USAGE;
    }
    pv_ingest *p;
    int status = open_pipeline_as(&cfg, NULL, 1, PV_INGEST_CLIENT, NULL, &p);
    if (!status) {
        if (!strcmp(verb, "list")) {
            /* Addresses and SMTP servers' error texts go to a terminal:
             * the table is escaped, its line ends kept. */
            char *text = NULL;
            size_t len = 0;
            FILE *mem = open_memstream(&text, &len);
            if (!mem ||
                pv_notify_print_outbox(pv_ingest_store(p), mem, o.status))
                status = EXIT_RUNTIME;
            if (mem && fclose(mem) == 0 && text) {
                pv_buf b = PV_BUF_INIT;
                pv_buf_put_escaped(&b, text, len, PV_ESC_KEEP_NL);
                fputs(pv_buf_ok(&b) ? pv_buf_cstr(&b) : "", stdout);
                pv_buf_free(&b);
            }
            free(text);
        } else {
            long n = pv_notify_retry(pv_ingest_store(p), id);
            if (n < 0) {
                status = EXIT_RUNTIME;
            } else if (n == 0 && id) {
                fprintf(stderr,
                        "pvwatch: outbox row %lld is not failed "
                        "(or does not exist)\n",
                        (long long)id);
                status = EXIT_USAGE;
            } else {
                printf("%ld mail%s pending again\n", n, n == 1 ? "" : "s");
            }
        }
        pv_ingest_close(p);
    }
    pv_config_free(&cfg);
    return status;
}

static int cmd_check(int argc, char **argv)
{
    struct opts o;
    if (wants_help(argc, argv)) {
        fputs(usage_check, stdout);
        return 0;
    }
    if (parse_opts(argc, argv, "c", &o, usage_check) || o.nargs)
        return EXIT_USAGE;
    pv_config cfg;
    int rc = load_config(o.config, &cfg);
    pv_buf out = PV_BUF_INIT;
    int bad_paths = 0;
    if (!rc) {
        pv_config_warnings(&cfg, &out);
        pv_cli_print_lines(pv_buf_cstr(&out));
        pv_buf_reset(&out);
        /* The paths 'run' needs, judged now rather than at start. */
        bad_paths = pv_config_check_paths(&cfg, &out);
        pv_cli_print_lines(pv_buf_cstr(&out));
        pv_buf_reset(&out);
        /* Rules are loaded against a private in-memory database, so the
         * check changes nothing. */
        pv_store *s;
        char err[512];
        rc = pv_store_open(":memory:", &s, err, sizeof err);
        if (rc) {
            fprintf(stderr, "pvwatch: %s\n", err);
        } else {
            pv_rules *r = NULL;
            rc = pv_rules_load(&cfg, s, &r, &out);
            pv_cli_print_lines(pv_buf_cstr(&out));
            /* email.digest.signals: the pack's signals, else DESIGN.md's
             * (issue 21 part 2; notify.h). */
            pv_strlist known = {0};
            for (size_t i = 0; !rc && i < pv_rules_count(r); i++)
                if (pv_rules_info(r, i, PV_RULE_SIGNAL))
                    pv_strlist_add(&known, pv_rules_info(r, i, PV_RULE_SIGNAL));
            pv_buf_reset(&out);
            if (pv_notify_check_digest(&cfg, rc ? NULL : &known, &out) && !rc)
                rc = PV_EINVAL;
            pv_strlist_free(&known);
            pv_cli_print_lines(pv_buf_cstr(&out));
            if (!rc) {
                if (bad_paths)
                    printf("configuration %s: %d path problem%s\n",
                           cfg.path ? cfg.path : "(built-in defaults)",
                           bad_paths, bad_paths == 1 ? "" : "s");
                else
                    printf("configuration %s: ok\n",
                           cfg.path ? cfg.path : "(built-in defaults)");
                for (size_t i = 0; i < pv_rules_count(r); i++)
                    printf("  rule %-36s %s\n", pv_rules_name(r, i),
                           pv_rules_file(r, i));
                printf("%zu rule%s loaded\n", pv_rules_count(r),
                       pv_rules_count(r) == 1 ? "" : "s");
                if (cfg.email.enabled) {
                    pv_buf rw = PV_BUF_INIT;
                    /* The digests first: the routing table ends the
                     * output (tests/e2e/test_mail_routes.sh reads it). */
                    pv_notify_print_digest(&cfg, stdout, pv_store_now(s));
                    pv_notify_print_routes(&cfg, stdout, &rw);
                    fflush(stdout);
                    pv_cli_print_lines(pv_buf_cstr(&rw));
                    pv_buf_free(&rw);
                }
            }
            pv_rules_free(r);
            pv_store_close(s);
        }
    }
    pv_buf_free(&out);
    pv_config_free(&cfg);
    return rc || bad_paths ? EXIT_USAGE : 0;
}

int main(int argc, char **argv)
{
    /* No core dumps: a core holds the SMTP password and patient data
     * (issue 22 item 13). Non-dumpable also keeps other users' tools
     * (ptrace, /proc/PID/environ) out; sanitizer builds stay dumpable, as
     * LeakSanitizer attaches to its own process with ptrace. */
    {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PV_LSAN 1
#endif
#endif
#if !defined(__SANITIZE_ADDRESS__) && !defined(PV_LSAN)
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
#endif
    }
    if (argc < 2) {
        fputs(usage_main, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(usage_main, stdout);
        return 0;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("pvwatch %s (Lua %s.%s, SQLite %s, libuv %s)\n", PV_VERSION,
               LUA_VERSION_MAJOR, LUA_VERSION_MINOR, sqlite3_libversion(),
               uv_version_string());
        return 0;
    }
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {
        {"run", cmd_run},          {"ingest", cmd_ingest},
        {"alerts", cmd_alerts},    {"check", cmd_check},
        {"test", pv_cli_test},     {"replay", pv_cli_replay},
        {"send", pv_cli_send},     {"outbox", cmd_outbox},
        {"status", pv_cli_status}, {"rules", pv_cli_rules},
        {"serve", pv_cli_serve},   {"users", pv_cli_users},
        {"report", pv_cli_report},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(cmd, cmds[i].name))
            return cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "pvwatch: unknown command '%s'\n%s", cmd, usage_main);
    return EXIT_USAGE;
}

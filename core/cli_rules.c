/* cli_rules.c: 'pvwatch rules [list] [-c CONFIG] [--json|--markdown]'
 * (issue 14).
 *
 * Loads the configured rule pack exactly as 'run' and 'check' do (the
 * configuration, then every plugin against a private in-memory database,
 * so nothing changes) and lists every rule with what pv.rule says of it:
 * name, signal, trigger, the severities it can raise, description, the
 * label sentence it enforces, and its file. Text is an aligned table with
 * the description and label under each row; --json a JSON array;
 * --markdown the table of docs/rules.md (tests/e2e/test_rules_cmd.sh
 * checks that the two agree). 'rules' takes subcommands: 'list' (the
 * default) and 'stats' (issue 16: per rule, what came of its alerts, from
 * the database, read-only; rule_stats.h). Exit 0, or 2 for a usage
 * error, a configuration error or a rule pack that does not load; stats:
 * 1 when the database cannot be read. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "config.h"
#include "alerts.h"
#include "error.h"
#include "pvtime.h"
#include "rule_stats.h"
#include "rules.h"
#include "store.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

static const char usage_rules[] =
    "usage: pvwatch rules [list] [-c CONFIG] [--json | --markdown]\n"
    "       pvwatch rules stats [-c CONFIG] [--since DATE] [--json]\n"
    "\n"
    "Loads the configuration and its rule pack as 'run' and 'check' do\n"
    "(changing nothing) and lists every rule: name, signal, what triggers\n"
    "it, the severities it can raise, its description, the label sentence\n"
    "it enforces and its file; '-' where the rule does not say. --json\n"
    "prints a JSON array of objects (name, signal, trigger, severities,\n"
    "description, label, file; null where not said); --markdown the table\n"
    "of docs/rules.md. Exit 0, or 2 for a usage or configuration error or\n"
    "a rule plugin that does not load.\n"
    "\n"
    "stats reads the database (never creates it) and prints, per rule that\n"
    "opened an alert (since DATE, ISO 8601, when given): alerts opened,\n"
    "acknowledged (ever), closed, the share of those closed with an\n"
    "outcome that were closed with an intervention ('alerts close\n"
    "--outcome intervention:...'), and the median time from opened to the\n"
    "first acknowledgement. --json prints one JSON object per rule and\n"
    "line, with the count of each outcome. Exit 1 when the database cannot\n"
    "be read.\n";

enum format { FMT_TEXT, FMT_JSON, FMT_MARKDOWN };

/* Display width of UTF-8 text: its characters (not its bytes). */
static size_t width(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Appends s for a Markdown table cell: '|' escaped, line ends and other
 * control characters as spaces; "-" for NULL. */
static void md_cell(pv_buf *b, const char *s)
{
    if (!s || !*s) {
        pv_buf_puts(b, "-");
        return;
    }
    for (; *s; s++) {
        if (*s == '|')
            pv_buf_puts(b, "\\|");
        else if ((unsigned char)*s < 0x20 || *s == 0x7f)
            pv_buf_puts(b, " ");
        else
            pv_buf_append(b, s, 1);
    }
}

static void print_json(const pv_rules *r)
{
    pv_buf b = PV_BUF_INIT;
    static const struct {
        const char *key;
        enum pv_rule_info what;
    } fields[] = {
        {"signal", PV_RULE_SIGNAL},
        {"trigger", PV_RULE_TRIGGER},
        {"severities", PV_RULE_SEVERITIES},
        {"description", PV_RULE_DESCRIPTION},
        {"label", PV_RULE_LABEL},
    };
    pv_buf_puts(&b, "[");
    for (size_t i = 0; i < pv_rules_count(r); i++) {
        pv_buf_puts(&b, i ? ",\n {\"name\": " : "\n {\"name\": ");
        pv_buf_json_str(&b, pv_rules_name(r, i), (size_t)-1);
        for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
            pv_buf_printf(&b, ", \"%s\": ", fields[f].key);
            if (fields[f].what == PV_RULE_SEVERITIES) {
                /* A list: "high, medium" -> ["high", "medium"]. */
                const char *s = pv_rules_info(r, i, fields[f].what);
                if (!s) {
                    pv_buf_puts(&b, "null");
                    continue;
                }
                pv_buf_puts(&b, "[");
                for (int first = 1; *s; first = 0) {
                    size_t len = strcspn(s, ",");
                    pv_buf_puts(&b, first ? "" : ", ");
                    pv_buf_json_str(&b, s, len);
                    s += len;
                    s += strspn(s, ", ");
                }
                pv_buf_puts(&b, "]");
            } else {
                pv_buf_json_str(&b, pv_rules_info(r, i, fields[f].what),
                                (size_t)-1);
            }
        }
        pv_buf_puts(&b, ", \"file\": ");
        pv_buf_json_str(&b, pv_rules_file(r, i), (size_t)-1);
        pv_buf_puts(&b, "}");
    }
    pv_buf_puts(&b, pv_rules_count(r) ? "\n]\n" : "]\n");
    fputs(pv_buf_ok(&b) ? pv_buf_cstr(&b) : "[]\n", stdout);
    pv_buf_free(&b);
}

static void print_markdown(const pv_rules *r)
{
    pv_buf b = PV_BUF_INIT;
    pv_buf_puts(&b, "| Rule | Signal | Trigger | Severity | What it "
                    "watches | Label sentence enforced | File |\n"
                    "|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < pv_rules_count(r); i++) {
        pv_buf_puts(&b, "| `");
        md_cell(&b, pv_rules_name(r, i));
        pv_buf_puts(&b, "` | ");
        md_cell(&b, pv_rules_info(r, i, PV_RULE_SIGNAL));
        pv_buf_puts(&b, " | ");
        md_cell(&b, pv_rules_info(r, i, PV_RULE_TRIGGER));
        pv_buf_puts(&b, " | ");
        md_cell(&b, pv_rules_info(r, i, PV_RULE_SEVERITIES));
        pv_buf_puts(&b, " | ");
        md_cell(&b, pv_rules_info(r, i, PV_RULE_DESCRIPTION));
        pv_buf_puts(&b, " | ");
        md_cell(&b, pv_rules_info(r, i, PV_RULE_LABEL));
        pv_buf_puts(&b, " | `");
        md_cell(&b, base_name(pv_rules_file(r, i)));
        pv_buf_puts(&b, "` |\n");
    }
    fputs(pv_buf_ok(&b) ? pv_buf_cstr(&b) : "", stdout);
    pv_buf_free(&b);
}

/* The text table: NAME SIGNAL SEVERITIES TRIGGER FILE aligned, and the
 * description and label indented under each row. Escaped for a
 * terminal. */
static void print_text(const pv_rules *r)
{
    enum { NCOL = 5 };
    static const char *const head[NCOL] = {"NAME", "SIGNAL", "SEVERITIES",
                                           "TRIGGER", "FILE"};
    size_t n = pv_rules_count(r);
    char **cell = calloc(n * NCOL + 1, sizeof *cell);
    size_t w[NCOL];
    if (!cell) {
        fputs("pvwatch: out of memory\n", stderr);
        return;
    }
    for (int c = 0; c < NCOL; c++)
        w[c] = strlen(head[c]);
    for (size_t i = 0; i < n; i++) {
        const char *v[NCOL] = {
            pv_rules_name(r, i), pv_rules_info(r, i, PV_RULE_SIGNAL),
            pv_rules_info(r, i, PV_RULE_SEVERITIES),
            pv_rules_info(r, i, PV_RULE_TRIGGER), pv_rules_file(r, i)};
        for (int c = 0; c < NCOL; c++) {
            pv_buf e = PV_BUF_INIT;
            const char *s = pv_buf_escape(&e, v[c] ? v[c] : "-");
            cell[i * NCOL + c] = strdup(s);
            pv_buf_free(&e);
            if (cell[i * NCOL + c] && width(cell[i * NCOL + c]) > w[c])
                w[c] = width(cell[i * NCOL + c]);
        }
    }
    for (int c = 0; c < NCOL; c++)
        printf("%s%-*s", c ? "  " : "", c == NCOL - 1 ? 0 : (int)w[c], head[c]);
    putchar('\n');
    for (size_t i = 0; i < n; i++) {
        for (int c = 0; c < NCOL; c++) {
            const char *s = cell[i * NCOL + c] ? cell[i * NCOL + c] : "";
            size_t pad = c == NCOL - 1 ? 0 : w[c] - width(s);
            printf("%s%s%*s", c ? "  " : "", s, (int)pad, "");
        }
        putchar('\n');
        const char *desc = pv_rules_info(r, i, PV_RULE_DESCRIPTION);
        const char *label = pv_rules_info(r, i, PV_RULE_LABEL);
        pv_buf e = PV_BUF_INIT;
        printf("    description: %s\n", pv_buf_escape(&e, desc ? desc : "-"));
        printf("    label:       %s\n", pv_buf_escape(&e, label ? label : "-"));
        pv_buf_free(&e);
    }
    printf("%zu rule%s\n", n, n == 1 ? "" : "s");
    for (size_t i = 0; i < n * NCOL; i++)
        free(cell[i]);
    free(cell);
}

/* ---- rules stats (issue 16) ----------------------------------------- */

/* A duration for people: "45s", "12m", "3h 20m", "2d 4h". */
static void duration(double s, char *out, size_t cap)
{
    if (s < 0) {
        snprintf(out, cap, "-");
        return;
    }
    long v = (long)(s + 0.5);
    if (v < 60)
        snprintf(out, cap, "%lds", v);
    else if (v < 3600)
        snprintf(out, cap, "%ldm %lds", v / 60, v % 60);
    else if (v < 86400)
        snprintf(out, cap, "%ldh %ldm", v / 3600, v % 3600 / 60);
    else
        snprintf(out, cap, "%ldd %ldh", v / 86400, v % 86400 / 3600);
}

static long interventions_of(const pv_rule_stat *r)
{
    long n = 0;
    for (int i = 0; i < 16 && pv_alert_outcomes[i]; i++)
        if (!strncmp(pv_alert_outcomes[i], "intervention:", 13))
            n += r->by_outcome[i];
    return n;
}

static void stats_json(const pv_rule_stat *rows, size_t n)
{
    pv_buf b = PV_BUF_INIT;
    for (size_t k = 0; k < n; k++) {
        const pv_rule_stat *r = &rows[k];
        pv_buf_reset(&b);
        pv_buf_puts(&b, "{\"rule\":");
        pv_buf_json_str(&b, r->rule, (size_t)-1);
        pv_buf_printf(&b,
                      ",\"opened\":%ld,\"acknowledged\":%ld,\"closed\":%ld,"
                      "\"closed_no_outcome\":%ld,\"interventions\":%ld,"
                      "\"by_outcome\":{",
                      r->opened, r->acknowledged, r->closed,
                      r->closed_no_outcome, interventions_of(r));
        for (int i = 0; i < 16 && pv_alert_outcomes[i]; i++) {
            pv_buf_puts(&b, i ? "," : "");
            pv_buf_json_str(&b, pv_alert_outcomes[i], (size_t)-1);
            pv_buf_printf(&b, ":%ld", r->by_outcome[i]);
        }
        pv_buf_puts(&b, "},\"intervention_share\":");
        if (r->intervention_share < 0)
            pv_buf_puts(&b, "null");
        else
            pv_buf_printf(&b, "%.4f", r->intervention_share);
        pv_buf_puts(&b, ",\"median_ack_s\":");
        if (r->median_ack_s < 0)
            pv_buf_puts(&b, "null");
        else
            pv_buf_printf(&b, "%.1f", r->median_ack_s);
        pv_buf_puts(&b, "}\n");
        fputs(pv_buf_ok(&b) ? pv_buf_cstr(&b) : "{}\n", stdout);
    }
    pv_buf_free(&b);
}

static void stats_text(const pv_rule_stat *rows, size_t n, const char *since)
{
    size_t w = strlen("RULE");
    pv_buf e = PV_BUF_INIT;
    for (size_t k = 0; k < n; k++) {
        size_t x = width(pv_buf_escape(&e, rows[k].rule));
        if (x > w)
            w = x;
    }
    printf("%-*s  %7s  %7s  %7s  %-20s  %s\n", (int)w, "RULE", "OPENED",
           "ACKED", "CLOSED", "INTERVENTIONS", "MEDIAN ACK");
    for (size_t k = 0; k < n; k++) {
        const pv_rule_stat *r = &rows[k];
        char share[32], med[32];
        if (r->intervention_share < 0)
            snprintf(share, sizeof share, "-");
        else
            snprintf(share, sizeof share, "%.1f%% (%ld/%ld)",
                     100.0 * r->intervention_share, interventions_of(r),
                     r->closed - r->closed_no_outcome);
        duration(r->median_ack_s, med, sizeof med);
        const char *name = pv_buf_escape(&e, r->rule);
        printf("%s%*s  %7ld  %7ld  %7ld  %-20s  %s\n", name,
               (int)(w - width(name)), "", r->opened, r->acknowledged,
               r->closed, share, med);
    }
    pv_buf_free(&e);
    printf("%zu rule%s with alerts%s%s; interventions: of the alerts closed "
           "with an outcome\n",
           n, n == 1 ? "" : "s", since ? " since " : "", since ? since : "");
}

static int cmd_stats(const char *config, const char *since, int json)
{
    if (since) {
        pv_time_t t;
        if (pv_time_parse(since, strlen(since), &t)) {
            pv_buf e = PV_BUF_INIT;
            fprintf(stderr,
                    "pvwatch rules stats: --since '%s' is not a date or time "
                    "(ISO 8601, e.g. 2026-01-31)\n",
                    pv_buf_escape(&e, since));
            pv_buf_free(&e);
            return EXIT_USAGE;
        }
    }
    pv_config cfg;
    pv_buf out = PV_BUF_INIT;
    if (pv_config_load(config, &cfg, &out)) {
        pv_cli_print_lines(pv_buf_cstr(&out));
        pv_buf_free(&out);
        pv_config_free(&cfg);
        return EXIT_USAGE;
    }
    pv_buf_free(&out);
    if (pv_cli_need_db("rules stats", &cfg, NULL)) {
        pv_config_free(&cfg);
        return EXIT_USAGE;
    }
    /* Read-only: beside a running engine (WAL), and never a write. */
    sqlite3 *db = NULL;
    int status = 0;
    int rc = sqlite3_open_v2(cfg.database, &db, SQLITE_OPEN_READONLY, NULL);
    pv_rule_stat *rows = NULL;
    size_t n = 0;
    pv_buf e = PV_BUF_INIT;
    if (rc != SQLITE_OK) {
        fprintf(stderr, "pvwatch rules stats: %s: %s\n",
                pv_buf_escape(&e, cfg.database),
                db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        status = EXIT_RUNTIME;
    } else {
        sqlite3_busy_timeout(db, 10000);
        rc = pv_rule_stats(db, since, &rows, &n);
        if (rc) {
            fprintf(stderr, "pvwatch rules stats: cannot read %s: %s%s\n",
                    pv_buf_escape(&e, cfg.database), sqlite3_errmsg(db),
                    strstr(sqlite3_errmsg(db), "no such column")
                        ? " (the database predates the alert workflow: "
                          "any other pvwatch command on it, 'alerts list' "
                          "for one, brings it up to date)"
                        : "");
            status = EXIT_RUNTIME;
        } else if (json) {
            stats_json(rows, n);
        } else {
            stats_text(rows, n, since);
        }
    }
    pv_buf_free(&e);
    free(rows);
    sqlite3_close(db);
    pv_config_free(&cfg);
    return status;
}

int pv_cli_rules(int argc, char **argv)
{
    static const struct option longs[] = {
        {"config", required_argument, NULL, 'c'},
        {"json", no_argument, NULL, 'j'},
        {"markdown", no_argument, NULL, 'm'},
        {"since", required_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *since = NULL;
    enum format fmt = FMT_TEXT;
    int nfmt = 0;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "c:h", longs, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'j':
            fmt = FMT_JSON;
            nfmt++;
            break;
        case 'm':
            fmt = FMT_MARKDOWN;
            nfmt++;
            break;
        case 'S':
            since = optarg;
            break;
        case 'h':
            fputs(usage_rules, stdout);
            return 0;
        default:
            fprintf(stderr,
                    "pvwatch rules: unknown or incomplete option '%s'\n%s",
                    argv[optind - 1], usage_rules);
            return EXIT_USAGE;
        }
    }
    if (nfmt > 1) {
        fprintf(stderr,
                "pvwatch rules: --json and --markdown exclude each "
                "other\n%s",
                usage_rules);
        return EXIT_USAGE;
    }
    int nargs = argc - optind;
    const char *sub = nargs ? argv[optind] : "list";
    if (strcmp(sub, "list") && strcmp(sub, "stats")) {
        pv_buf e = PV_BUF_INIT;
        fprintf(stderr,
                "pvwatch rules: unknown subcommand '%s' (list, stats)\n%s",
                pv_buf_escape(&e, sub), usage_rules);
        pv_buf_free(&e);
        return EXIT_USAGE;
    }
    if (nargs > 1) {
        pv_buf e = PV_BUF_INIT;
        fprintf(stderr, "pvwatch rules %s: unexpected argument '%s'\n%s", sub,
                pv_buf_escape(&e, argv[optind + 1]), usage_rules);
        pv_buf_free(&e);
        return EXIT_USAGE;
    }
    if (!strcmp(sub, "stats")) {
        if (fmt == FMT_MARKDOWN) {
            fprintf(stderr,
                    "pvwatch rules stats: --markdown is an option of "
                    "'rules list'\n%s",
                    usage_rules);
            return EXIT_USAGE;
        }
        return cmd_stats(config, since, fmt == FMT_JSON);
    }
    if (since) {
        fprintf(stderr,
                "pvwatch rules list: --since is an option of 'rules "
                "stats'\n%s",
                usage_rules);
        return EXIT_USAGE;
    }

    pv_config cfg;
    pv_buf out = PV_BUF_INIT;
    int status = 0;
    if (pv_config_load(config, &cfg, &out)) {
        pv_cli_print_lines(pv_buf_cstr(&out));
        pv_buf_free(&out);
        pv_config_free(&cfg);
        return EXIT_USAGE;
    }
    pv_buf_reset(&out);
    pv_config_warnings(&cfg, &out);
    pv_cli_print_lines(pv_buf_cstr(&out));
    pv_buf_reset(&out);
    pv_store *s;
    char err[512];
    if (pv_store_open(":memory:", &s, err, sizeof err)) {
        fprintf(stderr, "pvwatch: %s\n", err);
        status = EXIT_RUNTIME;
    } else {
        pv_rules *r = NULL;
        if (pv_rules_load(&cfg, s, &r, &out)) {
            pv_cli_print_lines(pv_buf_cstr(&out));
            fprintf(stderr,
                    "pvwatch rules: the rule pack of %s did not load (errors "
                    "above); nothing listed\n",
                    cfg.path ? cfg.path : "the built-in defaults");
            status = EXIT_USAGE;
        } else if (fmt == FMT_JSON) {
            print_json(r);
        } else if (fmt == FMT_MARKDOWN) {
            print_markdown(r);
        } else {
            print_text(r);
        }
        pv_rules_free(r);
        pv_store_close(s);
    }
    pv_buf_free(&out);
    pv_config_free(&cfg);
    return status;
}

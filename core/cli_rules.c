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
 * default) today, 'stats' is kept for issue 16. Exit 0, or 2 for a usage
 * error, a configuration error or a rule pack that does not load. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "config.h"
#include "rules.h"
#include "store.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

static const char usage_rules[] =
    "usage: pvwatch rules [list] [-c CONFIG] [--json | --markdown]\n"
    "\n"
    "Loads the configuration and its rule pack as 'run' and 'check' do\n"
    "(changing nothing) and lists every rule: name, signal, what triggers\n"
    "it, the severities it can raise, its description, the label sentence\n"
    "it enforces and its file; '-' where the rule does not say. --json\n"
    "prints a JSON array of objects (name, signal, trigger, severities,\n"
    "description, label, file; null where not said); --markdown the table\n"
    "of docs/rules.md. Exit 0, or 2 for a usage or configuration error or\n"
    "a rule plugin that does not load.\n";

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

int pv_cli_rules(int argc, char **argv)
{
    static const struct option longs[] = {
        {"config", required_argument, NULL, 'c'},
        {"json", no_argument, NULL, 'j'},
        {"markdown", no_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL;
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
    if (strcmp(sub, "list")) {
        pv_buf e = PV_BUF_INIT;
        fprintf(stderr, "pvwatch rules: unknown subcommand '%s' (list)\n%s",
                pv_buf_escape(&e, sub), usage_rules);
        pv_buf_free(&e);
        return EXIT_USAGE;
    }
    if (nargs > 1) {
        pv_buf e = PV_BUF_INIT;
        fprintf(stderr, "pvwatch rules list: unexpected argument '%s'\n%s",
                pv_buf_escape(&e, argv[optind + 1]), usage_rules);
        pv_buf_free(&e);
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

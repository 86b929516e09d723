/* test_config: the Lua configuration file. Defaults without a file, every
 * documented key, paths made relative to the file's directory, and each kind
 * of mistake reported with the file, the line and the key: unknown keys,
 * wrong types, numbers out of range, bad label values, syntax errors,
 * endless loops and calls into libraries the sandbox does not have. Every
 * file is written into a fresh temporary directory. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "error.h"
#include "test.h"

static char base[] = "/tmp/pv_test_config.XXXXXX";
static char cwd0[PATH_MAX];

static void die(const char *what)
{
    perror(what);
    exit(2);
}

/* Writes base/rel (creating base/dir first when rel has one) and returns
 * the full path in out. */
static void write_file(const char *rel, const char *text, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", base, rel);
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", out);
    char *slash = strrchr(dir, '/');
    *slash = '\0';
    mkdir(dir, 0700);
    FILE *f = fopen(out, "w");
    if (!f)
        die(out);
    fputs(text, f);
    fclose(f);
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Loads text as a config file named NAME.lua in its own directory and
 * returns the status; errors and the config are the caller's to free. */
static int load_text(const char *name, const char *text, pv_config *cfg,
                     pv_buf *errors, char *path, size_t cap)
{
    char rel[256];
    snprintf(rel, sizeof rel, "%s/%s.lua", name, name);
    write_file(rel, text, path, cap);
    return pv_config_load(path, cfg, errors);
}

/* Expects text to fail with each of the needles in the errors; a needle
 * starting with ':' is appended to the file's path ("FILE:LINE:"). */
static void expect_error(const char *name, const char *text, int want_rc,
                         const char *n1, const char *n2)
{
    pv_config cfg;
    pv_buf errors = PV_BUF_INIT;
    char path[PATH_MAX];
    int rc = load_text(name, text, &cfg, &errors, path, sizeof path);
    const char *msg = pv_buf_cstr(&errors);
    if (rc == want_rc)
        pv_test_passed++;
    else
        PV_FAIL_("%s: rc %d, want %d (errors: %s)", name, rc, want_rc, msg);
    const char *needles[] = {n1, n2};
    for (int i = 0; i < 2; i++) {
        if (!needles[i])
            continue;
        char want[PATH_MAX + 128];
        if (needles[i][0] == ':')
            snprintf(want, sizeof want, "%s%s", path, needles[i]);
        else
            snprintf(want, sizeof want, "%s", needles[i]);
        if (strstr(msg, want))
            pv_test_passed++;
        else
            PV_FAIL_("%s: errors lack \"%s\": \"%s\"", name, want, msg);
    }
    pv_config_free(&cfg);
    pv_buf_free(&errors);
}

static void check_defaults(const pv_config *c)
{
    CHECK(c->path == NULL);
    CHECK_STR(c->database, "pvwatch.db");
    CHECK_STR(c->alert_log, "alerts.jsonl");
    CHECK_STR(c->mllp.listen, "127.0.0.1:2575");
    CHECK_INT(c->mllp.max_message, 1048576);
    CHECK_DBL(c->mllp.idle_timeout, 60, 0);
    CHECK_STR(c->inbox.path, "inbox");
    CHECK_INT(c->tail.count, 0);
    CHECK_INT(c->email.enabled, 0);
    CHECK(c->email.url == NULL);
    CHECK(c->email.dir == NULL);
    CHECK_INT(c->email.to.count, 0);
    CHECK_STR(c->email.min_severity, "medium");
    CHECK_DBL(c->exposure.washout_days, 28, 0);
    CHECK_STR(c->label.indication, "ra");
    CHECK_STR(c->label.region, "us");
    CHECK_INT(c->limits.rule_instructions, 1000000);
    CHECK_INT(c->limits.rule_memory, 8 * 1024 * 1024);
}

static void test_defaults(void)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/empty", base);
    CHECK_INT(mkdir(dir, 0700), 0);
    if (chdir(dir) != 0)
        die(dir);
    pv_config cfg;
    pv_buf errors = PV_BUF_INIT;
    CHECK_INT(pv_config_load(NULL, &cfg, &errors), 0);
    CHECK_INT(errors.len, 0);
    check_defaults(&cfg);
    /* No ./plugins here: the installed pack, else the source tree's. */
    char want[PATH_MAX];
    snprintf(want, sizeof want, "%s/plugins", PV_DATADIR);
    if (!is_dir(want))
        snprintf(want, sizeof want, "%s/plugins", PV_SOURCE_DIR);
    CHECK_INT(cfg.plugins.count, 1);
    if (cfg.plugins.count == 1) {
        CHECK_STR(cfg.plugins.items[0], want);
        CHECK(is_dir(cfg.plugins.items[0]));
    }
    CHECK_INT(cfg.scripts.count, 1);
    if (cfg.scripts.count == 1) {
        CHECK(ends_with(cfg.scripts.items[0], "/scripts"));
        CHECK(is_dir(cfg.scripts.items[0]));
    }
    pv_config_free(&cfg);

    /* With ./plugins and ./scripts in the working directory, those. */
    CHECK_INT(mkdir("plugins", 0700), 0);
    CHECK_INT(mkdir("scripts", 0700), 0);
    CHECK_INT(pv_config_load(NULL, &cfg, &errors), 0);
    CHECK_INT(cfg.plugins.count, 1);
    if (cfg.plugins.count == 1)
        CHECK_STR(cfg.plugins.items[0], "plugins");
    CHECK_INT(cfg.scripts.count, 1);
    if (cfg.scripts.count == 1)
        CHECK_STR(cfg.scripts.items[0], "scripts");
    pv_config_free(&cfg);

    /* ./pvwatch.lua is read when no path is given. */
    FILE *f = fopen("pvwatch.lua", "w");
    if (!f)
        die("pvwatch.lua");
    fputs("database = 'here.db'\n", f);
    fclose(f);
    CHECK_INT(pv_config_load(NULL, &cfg, &errors), 0);
    CHECK_STR(cfg.path, "pvwatch.lua");
    CHECK_STR(cfg.database, "here.db");
    CHECK_STR(cfg.alert_log, "alerts.jsonl");
    pv_config_free(&cfg);
    CHECK_INT(errors.len, 0);
    pv_buf_free(&errors);
    unlink("pvwatch.lua");
    rmdir("plugins");
    rmdir("scripts");
    if (chdir(cwd0) != 0)
        die(cwd0);
    rmdir(dir);
}

static const char full_config[] =
    "-- every documented key\n"
    "database  = 'data/pv.db'\n"
    "plugins   = { 'plugins', '/opt/pv/plugins' }\n"
    "scripts   = { 'scripts' }\n"
    "alert_log = 'logs/alerts.jsonl'\n"
    "mllp  = { listen = '127.0.0.1:12575', max_message = 65536,\n"
    "          idle_timeout = 2.5 }\n"
    "inbox = { path = 'in' }\n"
    "tail  = { { path = 'feeds/labs.csv' }, { path = '/var/feed.csv' } }\n"
    "email = { url = 'smtp://127.0.0.1:2525', from = 'pv@example.org',\n"
    "          to = { 'a@example.org', 'b@example.org' },\n"
    "          min_severity = 'high' }\n"
    "exposure = { washout_days = 14 }\n"
    "label = { indication = 'aa', region = 'eu' }\n"
    "limits = { rule_instructions = 2e6, rule_memory = 4 * 1024 * 1024 }\n";

static void test_every_key(void)
{
    pv_config cfg;
    pv_buf errors = PV_BUF_INIT;
    char path[PATH_MAX];
    int rc = load_text("full", full_config, &cfg, &errors, path, sizeof path);
    CHECK_INT(rc, 0);
    CHECK_STR(pv_buf_cstr(&errors), "");
    char dir[PATH_MAX], want[PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/full", base);
    CHECK_STR(cfg.path, path);
    snprintf(want, sizeof want, "%s/data/pv.db", dir);
    CHECK_STR(cfg.database, want);
    CHECK_INT(cfg.plugins.count, 2);
    if (cfg.plugins.count == 2) {
        snprintf(want, sizeof want, "%s/plugins", dir);
        CHECK_STR(cfg.plugins.items[0], want);
        CHECK_STR(cfg.plugins.items[1], "/opt/pv/plugins");
    }
    CHECK_INT(cfg.scripts.count, 1);
    if (cfg.scripts.count == 1) {
        snprintf(want, sizeof want, "%s/scripts", dir);
        CHECK_STR(cfg.scripts.items[0], want);
    }
    snprintf(want, sizeof want, "%s/logs/alerts.jsonl", dir);
    CHECK_STR(cfg.alert_log, want);
    CHECK_STR(cfg.mllp.listen, "127.0.0.1:12575");
    CHECK_INT(cfg.mllp.max_message, 65536);
    CHECK_DBL(cfg.mllp.idle_timeout, 2.5, 0);
    snprintf(want, sizeof want, "%s/in", dir);
    CHECK_STR(cfg.inbox.path, want);
    CHECK_INT(cfg.tail.count, 2);
    if (cfg.tail.count == 2) {
        snprintf(want, sizeof want, "%s/feeds/labs.csv", dir);
        CHECK_STR(cfg.tail.items[0], want);
        CHECK_STR(cfg.tail.items[1], "/var/feed.csv");
    }
    CHECK_INT(cfg.email.enabled, 1);
    /* A URL is not a path. */
    CHECK_STR(cfg.email.url, "smtp://127.0.0.1:2525");
    CHECK(cfg.email.dir == NULL);
    CHECK_STR(cfg.email.from, "pv@example.org");
    CHECK_INT(cfg.email.to.count, 2);
    if (cfg.email.to.count == 2) {
        CHECK_STR(cfg.email.to.items[0], "a@example.org");
        CHECK_STR(cfg.email.to.items[1], "b@example.org");
    }
    CHECK_STR(cfg.email.min_severity, "high");
    CHECK_DBL(cfg.exposure.washout_days, 14, 0);
    CHECK_STR(cfg.label.indication, "aa");
    CHECK_STR(cfg.label.region, "eu");
    CHECK_INT(cfg.limits.rule_instructions, 2000000);
    CHECK_INT(cfg.limits.rule_memory, 4 * 1024 * 1024);
    pv_config_free(&cfg);
    CHECK(cfg.database == NULL);

    /* email = { dir = ... } writes files instead; the dir is a path. */
    rc = load_text("emaildir",
                   "email = { dir = 'outbox' }\nalert_log = '-'\n"
                   "database = '/abs/pv.db'\n",
                   &cfg, &errors, path, sizeof path);
    CHECK_INT(rc, 0);
    CHECK_STR(pv_buf_cstr(&errors), "");
    snprintf(want, sizeof want, "%s/emaildir/outbox", base);
    CHECK_STR(cfg.email.dir, want);
    CHECK(cfg.email.url == NULL);
    CHECK_INT(cfg.email.enabled, 1);
    /* "-" is stdout, not a file next to the config. */
    CHECK_STR(cfg.alert_log, "-");
    CHECK_STR(cfg.database, "/abs/pv.db");
    /* Keys the file does not set keep their defaults. */
    CHECK_STR(cfg.label.indication, "ra");
    CHECK_INT(cfg.mllp.max_message, 1048576);
    pv_config_free(&cfg);

    /* A single string where a list is expected is a list of one; a
     * config path without a directory leaves paths as written (relative
     * to the working directory, which is the config's). */
    char cwd_dir[PATH_MAX];
    snprintf(cwd_dir, sizeof cwd_dir, "%s/plain", base);
    CHECK_INT(mkdir(cwd_dir, 0700), 0);
    if (chdir(cwd_dir) != 0)
        die(cwd_dir);
    FILE *f = fopen("conf.lua", "w");
    if (!f)
        die("conf.lua");
    fputs("plugins = 'rules'\ntail = { 'a.csv' }\n", f);
    fclose(f);
    CHECK_INT(pv_config_load("conf.lua", &cfg, &errors), 0);
    CHECK_STR(pv_buf_cstr(&errors), "");
    CHECK_INT(cfg.plugins.count, 1);
    if (cfg.plugins.count == 1)
        CHECK_STR(cfg.plugins.items[0], "rules");
    CHECK_INT(cfg.tail.count, 1);
    if (cfg.tail.count == 1)
        CHECK_STR(cfg.tail.items[0], "a.csv");
    pv_config_free(&cfg);
    unlink("conf.lua");
    if (chdir(cwd0) != 0)
        die(cwd0);
    rmdir(cwd_dir);
    pv_buf_free(&errors);
}

static void test_errors(void)
{
    expect_error("unknown", "database = 'x.db'\n\ncolour = 'red'\n", PV_EINVAL,
                 ":3:", "colour");
    expect_error("nested",
                 "-- comment\nmllp = { listen = '127.0.0.1:1', bogus = 1 }\n",
                 PV_EINVAL, ":2:", "bogus");
    expect_error("nested2", "limits = {\n  rule_memroy = 1e6,\n}\n", PV_EINVAL,
                 ":1:", "rule_memroy");
    expect_error("tailkey", "tail = { { path = 'a.csv', follow = true } }\n",
                 PV_EINVAL, ":1:", "follow");
    expect_error("emailkey", "email = { dir = 'o', cc = 'x' }\n", PV_EINVAL,
                 ":1:", "cc");

    /* Wrong types. */
    expect_error("type1", "database = 5\n", PV_EINVAL,
                 ":1:", "database must be a string");
    expect_error("type2", "\nplugins = true\n", PV_EINVAL, ":2:", "plugins");
    expect_error("type3", "mllp = '127.0.0.1:2575'\n", PV_EINVAL,
                 ":1:", "mllp must be a table");
    /* issue 15 item 6 */
    expect_error(
        "dups", "mllp = { duplicates = 'by_bytes' }\n", PV_EINVAL,
        ":1:", "mllp.duplicates 'by_bytes' is not one of reject, by_content");
    expect_error("type4", "mllp = { max_message = '1024' }\n", PV_EINVAL,
                 ":1:", "mllp.max_message must be a number");
    expect_error("type5", "plugins = { 'a', 7 }\n", PV_EINVAL,
                 ":1:", "plugins[2]");
    expect_error("type6", "limits = { rule_instructions = 1500.5 }\n",
                 PV_EINVAL, ":1:", "whole number");
    expect_error("type7", "email = { dir = 'o', to = 5 }\n", PV_EINVAL,
                 ":1:", "email.to");

    /* Numbers out of range. */
    expect_error("range1", "mllp = { max_message = 10 }\n", PV_EINVAL,
                 ":1:", "mllp.max_message must be between");
    expect_error("range2", "exposure = { washout_days = -1 }\n", PV_EINVAL,
                 ":1:", "exposure.washout_days");
    expect_error("range3", "limits = { rule_memory = 1024 }\n", PV_EINVAL,
                 ":1:", "limits.rule_memory");
    expect_error("range4", "mllp = { idle_timeout = 0/0 }\n", PV_EINVAL,
                 ":1:", "mllp.idle_timeout");
    expect_error("range5", "limits = { rule_instructions = 1/0 }\n", PV_EINVAL,
                 ":1:", "limits.rule_instructions");

    /* Values from a fixed set. */
    expect_error("label1", "label = { indication = 'psoriasis' }\n", PV_EINVAL,
                 "psoriasis", "ra, aa, covid19");
    expect_error("label2", "x = 1\nlabel = { region = 'jp' }\n", PV_EINVAL,
                 ":2:", "jp");
    expect_error("sev", "email = { dir = 'o', min_severity = 'urgent' }\n",
                 PV_EINVAL, ":1:", "urgent");
    expect_error("email1", "email = { from = 'a@b' }\n", PV_EINVAL,
                 ":1:", "'url' or 'dir'");
    expect_error("email2", "email = { url = 'smtp://h', dir = 'o' }\n",
                 PV_EINVAL, ":1:", "not both");

    /* Syntax and runtime errors name the line. */
    expect_error("syntax", "database = 'a'\nplugins = {\n\nlimits = = 3\n",
                 PV_EINVAL, ":4:", NULL);
    expect_error("runtime", "a = 1\nb = nil + 1\n", PV_EINVAL,
                 ":2:", "arithmetic");
    expect_error("loop", "x = 0\nwhile true do x = x + 1 end\n", PV_EINVAL,
                 "too long", NULL);
    expect_error("loop2", "local function f() return f() end\nf()\n", PV_EINVAL,
                 "too long", NULL);

    /* The sandbox is empty: these fail with an error, they do not act
     * (an os.exit that worked would end this test with a failing status). */
    expect_error("os", "database = 'a'\nos.exit(7)\n", PV_EINVAL, ":2:", "os");
    expect_error("io", "io.open('/etc/passwd')\n", PV_EINVAL, ":1:", "io");
    expect_error("require", "require 'os'\n", PV_EINVAL, ":1:", "require");
    expect_error("dofile", "dofile('/etc/passwd')\n", PV_EINVAL,
                 ":1:", "dofile");
    expect_error("load", "load('x = 1')()\n", PV_EINVAL, ":1:", "load");
    expect_error("strmeta", "x = ('a'):rep(10)\n", PV_EINVAL, ":1:", NULL);
    expect_error("getmeta", "x = getmetatable('')\n", PV_EINVAL,
                 ":1:", "getmetatable");

    /* An unreadable file. */
    pv_config cfg;
    pv_buf errors = PV_BUF_INIT;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/missing.lua", base);
    CHECK_INT(pv_config_load(path, &cfg, &errors), PV_EIO);
    CHECK(strstr(pv_buf_cstr(&errors), "missing.lua") != NULL);
    pv_config_free(&cfg);
    pv_buf_free(&errors);

    /* Regression: a directory opened fine and read as an empty file, so
     * it passed for a configuration of defaults. */
    CHECK_INT(pv_config_load(base, &cfg, &errors), PV_EIO);
    CHECK(strstr(pv_buf_cstr(&errors), "directory") != NULL);
    pv_config_free(&cfg);
    pv_buf_free(&errors);

    /* Regression: the line of an unknown global was the line of a nested
     * key of the same name before it. */
    expect_error("shadow",
                 "inbox = {\n  path = 'in', -- { not a brace }\n"
                 "  settle = 1, x = '}',\n}\npath = 'x'\n",
                 PV_EINVAL, ":5:", "unknown key 'path'");

    /* Several mistakes are all reported, one line each. */
    char text[] = "colour = 1\nshape = 2\n";
    pv_buf_reset(&errors);
    CHECK_INT(load_text("two", text, &cfg, &errors, path, sizeof path),
              PV_EINVAL);
    CHECK(strstr(pv_buf_cstr(&errors), "colour") != NULL);
    CHECK(strstr(pv_buf_cstr(&errors), "shape") != NULL);
    int lines = 0;
    for (const char *p = pv_buf_cstr(&errors); *p; p++)
        lines += *p == '\n';
    CHECK_INT(lines, 2);
    pv_config_free(&cfg);
    pv_buf_free(&errors);
}

static void rm_tree(const char *dir)
{
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

int main(void)
{
    if (!getcwd(cwd0, sizeof cwd0))
        die("getcwd");
    if (!mkdtemp(base))
        die("mkdtemp");
    test_defaults();
    test_every_key();
    test_errors();
    rm_tree(base);
    return pv_test_report();
}

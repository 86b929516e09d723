/* test_reload_merge: what a SIGHUP makes of a new configuration (issue 21
 * part 2, reload.h): keys that need a restart keep the running value (and
 * say so), live keys are listed "KEY: OLD -> NEW", secrets in email.url
 * are never shown, an e-mail table added or removed keeps the running
 * e-mail settings, and the feed helpers say when a watcher must restart. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "reload.h"
#include "test.h"

static const char *path = "/tmp/pv-reload-merge-test.lua";

static int load(const char *text, pv_config *cfg)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    fclose(f);
    pv_buf err = PV_BUF_INIT;
    int rc = pv_config_load(path, cfg, &err);
    if (rc)
        fprintf(stderr, "%s", pv_buf_cstr(&err));
    pv_buf_free(&err);
    return rc;
}

#define OLD_CFG                                                                \
    "database = 'a.db'\n"                                                      \
    "mllp = { listen = '127.0.0.1:2575', duplicates = 'reject' }\n"            \
    "inbox = { path = 'in' }\n"                                                \
    "tail = { 'f.csv' }\n"                                                     \
    "limits = { rule_memory = 8388608 }\n"                                     \
    "email = { url = 'smtp://bob:s3cret@mail.example.org:25', "                \
    "to = { 'a@x.org' }, min_severity = 'medium' }\n"

static void issue21_restart_keys_keep_running_values(void)
{
    pv_config o, n;
    CHECK_INT(load(OLD_CFG, &o), 0);
    CHECK_INT(load("database = 'b.db'\n"
                   "mllp = { listen = '127.0.0.1:9999', duplicates = "
                   "'by_content' }\n"
                   "inbox = { path = 'in2' }\n"
                   "tail = { 'f.csv', 'g.csv' }\n"
                   "limits = { rule_memory = 16777216 }\n"
                   "log_format = 'json'\n"
                   "email = { url = 'smtp://bob:n3w@other.example.org:25', "
                   "to = { 'a@x.org', 'b@y.org' }, min_severity = 'high', "
                   "routes = { { to = 'c@z.org', signals = 'hepatic', "
                   "exclusive = true } }, digest = { every = 'daily' } }\n",
                   &n),
              0);
    pv_buf ch = PV_BUF_INIT, rs = PV_BUF_INIT;
    CHECK_INT(pv_reload_merge(&o, &n, &ch, &rs), 0);
    const char *c = pv_buf_cstr(&ch), *r = pv_buf_cstr(&rs);
    /* Needs a restart: the running value stays in the new struct. */
    CHECK(strstr(r, "database (/tmp/b.db in the file; keeps /tmp/a.db)\n"));
    CHECK_STR(n.database, "/tmp/a.db");
    CHECK(strstr(r, "mllp.listen (127.0.0.1:9999 in the file; keeps "
                    "127.0.0.1:2575)\n"));
    CHECK_STR(n.mllp.listen, "127.0.0.1:2575");
    CHECK(strstr(r, "email.url (smtp://***@other.example.org:25 in the file; "
                    "keeps smtp://***@mail.example.org:25)\n"));
    CHECK_STR(n.email.url, "smtp://bob:s3cret@mail.example.org:25");
    /* Secrets never appear in either list. */
    CHECK(!strstr(c, "s3cret") && !strstr(r, "s3cret"));
    CHECK(!strstr(c, "n3w") && !strstr(r, "n3w"));
    CHECK(!strstr(c, "bob") && !strstr(r, "bob"));
    /* Live. */
    CHECK(strstr(c, "email.to: a@x.org -> a@x.org, b@y.org\n"));
    CHECK(strstr(c, "email.min_severity: medium -> high\n"));
    CHECK(strstr(c, "email.routes: (none) -> {to c@z.org, signals hepatic, "
                    "exclusive}\n"));
    CHECK(strstr(c, "limits.rule_memory: 8388608 -> 16777216\n"));
    CHECK(strstr(c, "email.digest: false -> true\n"));
    CHECK(strstr(c, "email.digest.every: (none) -> daily\n"));
    CHECK(strstr(c, "mllp.duplicates: reject -> by_content\n"));
    CHECK(strstr(c, "log_format: (none) -> json\n"));
    CHECK_STR(n.mllp.duplicates, "by_content");
    CHECK_INT(n.limits.rule_memory, 16777216);
    /* The feeds are the engine's to restart; their lines come after. */
    CHECK(!strstr(c, "inbox.path") && !strstr(c, "tail:"));
    CHECK(pv_reload_inbox_changed(&o, &n));
    CHECK(pv_reload_tail_changed(&o, &n));
    pv_buf_reset(&ch);
    CHECK_INT(pv_reload_feed_lines(&o, &n, &ch), 0);
    CHECK_STR(pv_buf_cstr(&ch), "inbox.path: /tmp/in -> /tmp/in2\n"
                                "tail: /tmp/f.csv -> /tmp/f.csv, /tmp/g.csv\n");
    /* The new watchers could not start: the running ones' settings. */
    CHECK_INT(pv_reload_keep_inbox(&o, &n), 0);
    CHECK_INT(pv_reload_keep_tail(&o, &n), 0);
    CHECK(!pv_reload_inbox_changed(&o, &n));
    CHECK(!pv_reload_tail_changed(&o, &n));
    pv_buf_reset(&ch);
    pv_reload_feed_lines(&o, &n, &ch);
    CHECK_STR(pv_buf_cstr(&ch), "");
    pv_buf_free(&ch);
    pv_buf_free(&rs);
    pv_config_free(&o);
    pv_config_free(&n);
}

static void issue21_unchanged_file_says_nothing(void)
{
    pv_config o, n;
    CHECK_INT(load(OLD_CFG, &o), 0);
    CHECK_INT(load(OLD_CFG, &n), 0);
    pv_buf ch = PV_BUF_INIT, rs = PV_BUF_INIT;
    CHECK_INT(pv_reload_merge(&o, &n, &ch, &rs), 0);
    pv_reload_feed_lines(&o, &n, &ch);
    CHECK_STR(pv_buf_cstr(&ch), "");
    CHECK_STR(pv_buf_cstr(&rs), "");
    pv_buf_free(&ch);
    pv_buf_free(&rs);
    pv_config_free(&o);
    pv_config_free(&n);
}

static void issue21_email_table_removed_keeps_email(void)
{
    pv_config o, n;
    CHECK_INT(load(OLD_CFG, &o), 0);
    CHECK_INT(load("database = 'a.db'\n", &n), 0);
    pv_buf ch = PV_BUF_INIT, rs = PV_BUF_INIT;
    CHECK_INT(pv_reload_merge(&o, &n, &ch, &rs), 0);
    CHECK(strstr(pv_buf_cstr(&rs), "email (the e-mail table was removed; the "
                                   "running e-mail settings stay)\n"));
    CHECK_INT(n.email.enabled, 1);
    CHECK_INT(n.email.to.count, 1);
    CHECK_STR(n.email.to.items[0], "a@x.org");
    CHECK_STR(n.email.url, "smtp://bob:s3cret@mail.example.org:25");
    pv_buf_free(&ch);
    pv_buf_free(&rs);
    pv_config_free(&n);
    /* And added: nothing sends mail until a restart. */
    CHECK_INT(load("database = 'a.db'\n", &n), 0);
    pv_config o2;
    CHECK_INT(load("database = 'a.db'\n", &o2), 0);
    pv_config_free(&n);
    CHECK_INT(load(OLD_CFG, &n), 0);
    pv_buf ch2 = PV_BUF_INIT, rs2 = PV_BUF_INIT;
    CHECK_INT(pv_reload_merge(&o2, &n, &ch2, &rs2), 0);
    CHECK(strstr(pv_buf_cstr(&rs2), "email (the e-mail table was added"));
    CHECK_INT(n.email.enabled, 0);
    CHECK_INT(n.email.to.count, 0);
    CHECK(n.email.url == NULL);
    pv_buf_free(&ch2);
    pv_buf_free(&rs2);
    pv_config_free(&o);
    pv_config_free(&o2);
    pv_config_free(&n);
}

static void issue21_url_masking(void)
{
    pv_buf b = PV_BUF_INIT;
    pv_reload_put_url(&b, "smtps://u:p@h:465/x");
    CHECK_STR(pv_buf_cstr(&b), "smtps://***@h:465/x");
    pv_buf_reset(&b);
    pv_reload_put_url(&b, "smtp://h:25");
    CHECK_STR(pv_buf_cstr(&b), "smtp://h:25");
    pv_buf_reset(&b);
    pv_reload_put_url(&b, "smtp://h/p@q");
    CHECK_STR(pv_buf_cstr(&b), "smtp://h/p@q");
    pv_buf_reset(&b);
    pv_reload_put_url(&b, NULL);
    CHECK_STR(pv_buf_cstr(&b), "(none)");
    pv_buf_free(&b);
}

int main(void)
{
    issue21_restart_keys_keep_running_values();
    issue21_unchanged_file_says_nothing();
    issue21_email_table_removed_keeps_email();
    issue21_url_masking();
    unlink(path);
    return pv_test_report();
}

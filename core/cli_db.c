/* cli_db.c: what the reading commands share (issue 21 part 2).
 *
 * 'alerts', 'outbox' and 'replay' work on a database that 'run' or
 * 'ingest' made. Opening a missing one would create an empty database
 * (and the migrations) wherever the working directory happens to be, and
 * the command would then report "no alerts" from the wrong place: so they
 * check first and say which path and which configuration they looked at.
 *
 * The login name for the audit trail ('alerts ack/close --by') is here
 * too: the effective user's passwd entry, else LOGNAME; and the way every
 * command prints its error lines (pv_cli_print_lines). */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "cli.h"
#include "config.h"

int pv_cli_need_db(const char *cmd, const pv_config *cfg, const char *db)
{
    const char *path = db ? db : cfg->database;
    struct stat st;
    if (!path || !strcmp(path, ":memory:") || stat(path, &st) == 0)
        return 0;
    int eno = errno;
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd))
        snprintf(cwd, sizeof cwd, ".");
    pv_buf shown = PV_BUF_INIT, where = PV_BUF_INIT;
    pv_buf_escape(&shown, path);
    if (path[0] != '/')
        pv_buf_printf(&where, " (in %s)", cwd);
    fprintf(stderr, "pvwatch %s: no database at %s%s: %s\n", cmd,
            pv_buf_ok(&shown) ? pv_buf_cstr(&shown) : "?",
            pv_buf_ok(&where) ? pv_buf_cstr(&where) : "", strerror(eno));
    pv_buf_reset(&shown);
    if (db) {
        fprintf(stderr, "pvwatch %s: the path was given with --db\n", cmd);
    } else if (cfg->path) {
        pv_buf_escape(&shown, cfg->path);
        fprintf(stderr,
                "pvwatch %s: 'database' of the configuration %s; is it the "
                "one 'pvwatch run' uses?\n",
                cmd, pv_buf_ok(&shown) ? pv_buf_cstr(&shown) : "?");
    } else {
        fprintf(stderr,
                "pvwatch %s: no -c CONFIG given and no pvwatch.lua in %s, "
                "so the built-in default database 'pvwatch.db' was looked "
                "for; give -c with the configuration 'pvwatch run' uses, "
                "or run this from its directory\n",
                cmd, cwd);
    }
    fprintf(stderr,
            "pvwatch %s: nothing was created ('pvwatch run' or 'pvwatch "
            "ingest' make the database)\n",
            cmd);
    pv_buf_free(&shown);
    pv_buf_free(&where);
    return 2;
}

const char *pv_cli_login_name(void)
{
    struct passwd *pw = getpwuid(geteuid());
    if (pw && pw->pw_name && *pw->pw_name)
        return pw->pw_name;
    const char *u = getenv("LOGNAME");
    if (u && *u)
        return u;
    return NULL;
}

/* Prints each line of text on stderr as "pvwatch: LINE" (the lines
 * already name FILE:LINE where a place is known). */
void pv_cli_print_lines(const char *text)
{
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        /* Error lines quote the input (file names, values): escaped. */
        pv_buf b = PV_BUF_INIT;
        pv_buf_put_escaped(&b, p, len, 0);
        fprintf(stderr, "pvwatch: %s\n", pv_buf_ok(&b) ? pv_buf_cstr(&b) : "");
        pv_buf_free(&b);
        p = nl ? nl + 1 : p + len;
    }
}

/* cli_users.c: 'pvwatch users' (issue 16): the review console's users.
 *
 * add, list, passwd, disable, enable, role, on the configured database
 * (auth.h does the work). A password is never an argument (it would show
 * in ps and the shell history): it is read from standard input with
 * --password-stdin, else asked twice on the terminal without echo. The
 * database must exist (pv_cli_need_db): 'pvwatch run' or 'pvwatch ingest'
 * make it, with every migration. Exit 0; 2 usage error, no database, no
 * such user, a user that exists already, a bad name, role or password;
 * 1 the database could not be written. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "auth.h"
#include "buf.h"
#include "cli.h"
#include "config.h"
#include "error.h"
#include "store.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

static const char usage_users[] =
    "usage: pvwatch users [-c CONFIG] [list]\n"
    "       pvwatch users [-c CONFIG] add NAME --role ROLE [--password-stdin]\n"
    "       pvwatch users [-c CONFIG] passwd NAME [--password-stdin]\n"
    "       pvwatch users [-c CONFIG] disable NAME\n"
    "       pvwatch users [-c CONFIG] enable NAME\n"
    "       pvwatch users [-c CONFIG] role NAME ROLE\n"
    "\n"
    "Manages who may log in to the review console. ROLE is viewer (reads\n"
    "only), reviewer (acknowledges, assigns, comments, closes) or admin.\n"
    "A NAME has at most 63 bytes, no spaces or control characters. The\n"
    "password (at least 10 characters) is read from standard input with\n"
    "--password-stdin (one line), else asked twice on the terminal; it is\n"
    "stored as an argon2id hash. passwd, disable and role end the user's\n"
    "sessions. Users are never deleted (the audit trail names them): disable\n"
    "them. list shows name, role, creation time and whether disabled.\n"
    "The database must exist ('pvwatch run' or 'pvwatch ingest' make it).\n"
    "Exit 0; 2 usage error, no database, no such user or a bad name, role or\n"
    "password; 1 the database could not be written.\n";

/* ---- reading a password -------------------------------------------- */

/* The terminal's settings while echo is off, restored by a signal that
 * ends the process (this is a one-shot command: single-threaded). */
static struct termios saved_tio;
static volatile sig_atomic_t tty_fd = -1;

static void restore_tty_and_die(int sig)
{
    if (tty_fd >= 0)
        tcsetattr(tty_fd, TCSAFLUSH, &saved_tio);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Reads one line (without its end) into buf[cap] from fd; 0, 1 at end of
 * input with nothing read, -1 too long or a read error. */
static int read_line_fd(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    int any = 0;
    for (;;) {
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        any = 1;
        if (c == '\n')
            break;
        if (n + 1 >= cap) {
            /* Too long: swallow the rest of the line. */
            while (read(fd, &c, 1) > 0 && c != '\n')
                ;
            buf[0] = '\0';
            return -1;
        }
        buf[n++] = c;
    }
    if (n && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    return any ? 0 : 1;
}

static int prompt_once(int fd, const char *prompt, char *buf, size_t cap)
{
    struct termios tio;
    if (tcgetattr(fd, &tio) != 0)
        return -1;
    saved_tio = tio;
    tty_fd = fd;
    struct sigaction sa, old[4];
    static const int sigs[4] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = restore_tty_and_die;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 4; i++)
        sigaction(sigs[i], &sa, &old[i]);
    tio.c_lflag &= ~(tcflag_t)ECHO;
    tio.c_lflag |= ICANON;
    int rc = -1;
    /* Echo goes off before the prompt shows: what is typed after the
     * prompt is never echoed (and what was typed before is flushed). */
    if (tcsetattr(fd, TCSAFLUSH, &tio) == 0) {
        if (write(fd, prompt, strlen(prompt)) >= 0)
            rc = read_line_fd(fd, buf, cap);
        tcsetattr(fd, TCSANOW, &saved_tio);
        if (write(fd, "\n", 1) < 0)
            rc = -1;
    }
    tty_fd = -1;
    for (int i = 0; i < 4; i++)
        sigaction(sigs[i], &old[i], NULL);
    return rc;
}

/* The new password into pw[cap]: from stdin, or asked twice on the
 * terminal. 0, or EXIT_USAGE after saying why. */
static int read_password(const char *cmd, int from_stdin, char *pw, size_t cap)
{
    char err[256];
    if (from_stdin) {
        int rc = read_line_fd(STDIN_FILENO, pw, cap);
        if (rc == 1) {
            fprintf(stderr, "pvwatch users %s: no password on standard input\n",
                    cmd);
            return EXIT_USAGE;
        }
        if (rc < 0) {
            fprintf(stderr,
                    "pvwatch users %s: the password on standard input is "
                    "longer than %d bytes\n",
                    cmd, PV_AUTH_MAX_PASSWORD);
            return EXIT_USAGE;
        }
    } else {
        int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
            fprintf(stderr,
                    "pvwatch users %s: no terminal to ask for the password "
                    "on; give it on standard input with --password-stdin\n",
                    cmd);
            return EXIT_USAGE;
        }
        char again[PV_AUTH_MAX_PASSWORD + 2];
        int rc = prompt_once(fd, "New password: ", pw, cap);
        if (rc == 0)
            rc = prompt_once(fd, "The same again: ", again, sizeof again);
        close(fd);
        int same = rc == 0 && strcmp(pw, again) == 0;
        sodium_memzero(again, sizeof again);
        if (rc != 0) {
            fprintf(stderr,
                    "pvwatch users %s: could not read the password from "
                    "the terminal (or longer than %d bytes)\n",
                    cmd, PV_AUTH_MAX_PASSWORD);
            return EXIT_USAGE;
        }
        if (!same) {
            fprintf(stderr,
                    "pvwatch users %s: the two passwords differ; nothing "
                    "was changed\n",
                    cmd);
            return EXIT_USAGE;
        }
    }
    if (pv_auth_password_ok(pw, err, sizeof err)) {
        fprintf(stderr, "pvwatch users %s: %s\n", cmd, err);
        return EXIT_USAGE;
    }
    return 0;
}

/* ---- list ---------------------------------------------------------------
 */

struct list_ctx {
    int n;
};

static int print_user(const pv_auth_user_row *u, void *ud)
{
    struct list_ctx *c = ud;
    if (!c->n++)
        printf("%-24s %-9s %-21s %s\n", "NAME", "ROLE", "CREATED", "STATUS");
    pv_buf name = PV_BUF_INIT;
    pv_buf_escape(&name, u->name);
    printf("%-24s %-9s %-21s %s\n", pv_buf_ok(&name) ? pv_buf_cstr(&name) : "?",
           u->role, u->created_at, u->disabled ? "disabled" : "enabled");
    pv_buf_free(&name);
    return 0;
}

/* ---- the command ------------------------------------------------------ */

static int exit_for(int rc)
{
    if (!rc)
        return 0;
    return rc == PV_EINVAL || rc == PV_ENOTFOUND || rc == PV_ESTATE
               ? EXIT_USAGE
               : EXIT_RUNTIME;
}

int pv_cli_users(int argc, char **argv)
{
    static const struct option longs[] = {
        {"config", required_argument, NULL, 'c'},
        {"role", required_argument, NULL, 'r'},
        {"password-stdin", no_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *role = NULL;
    int from_stdin = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "c:h", longs, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'r':
            role = optarg;
            break;
        case 'p':
            from_stdin = 1;
            break;
        case 'h':
            fputs(usage_users, stdout);
            return 0;
        default:
            fprintf(stderr,
                    "pvwatch users: unknown or incomplete option '%s'\n%s",
                    argv[optind - 1], usage_users);
            return EXIT_USAGE;
        }
    }
    char **args = argv + optind;
    int nargs = argc - optind;
    const char *verb = nargs ? args[0] : "list";
    static const struct {
        const char *verb;
        int nargs; /* after the verb */
    } verbs[] = {{"list", 0},    {"add", 1},    {"passwd", 1},
                 {"disable", 1}, {"enable", 1}, {"role", 2}};
    int want = -1;
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (!strcmp(verb, verbs[i].verb))
            want = verbs[i].nargs;
    if (want < 0) {
        fprintf(stderr, "pvwatch users: unknown action '%s'\n%s", verb,
                usage_users);
        return EXIT_USAGE;
    }
    if (nargs > 0 && nargs - 1 != want) {
        fprintf(stderr, "pvwatch users %s: %s\n%s", verb,
                want == 0   ? "takes no arguments"
                : want == 1 ? "needs one user NAME"
                            : "needs a user NAME and a ROLE",
                usage_users);
        return EXIT_USAGE;
    }
    const char *name = want >= 1 ? args[1] : NULL;
    if (!strcmp(verb, "role"))
        role = args[2];
    int is_add = !strcmp(verb, "add"), is_role = !strcmp(verb, "role");
    if (role && !is_add && !is_role) {
        fprintf(stderr, "pvwatch users %s: --role is for 'add'\n", verb);
        return EXIT_USAGE;
    }
    if (from_stdin && !is_add && strcmp(verb, "passwd")) {
        fprintf(stderr,
                "pvwatch users %s: --password-stdin is for 'add' and "
                "'passwd'\n",
                verb);
        return EXIT_USAGE;
    }
    char err[512];
    if (name && pv_auth_name_ok(name, err, sizeof err)) {
        pv_buf shown = PV_BUF_INIT;
        pv_buf_escape(&shown, name);
        fprintf(stderr, "pvwatch users %s: '%s': %s\n", verb,
                pv_buf_ok(&shown) ? pv_buf_cstr(&shown) : "?", err);
        pv_buf_free(&shown);
        return EXIT_USAGE;
    }
    if ((is_add || is_role) && !pv_auth_role_ok(role)) {
        fprintf(stderr,
                "pvwatch users %s: %s; the role must be viewer, reviewer or "
                "admin\n",
                verb, role ? "unknown role" : "needs --role");
        return EXIT_USAGE;
    }
    if (pv_auth_init()) {
        fprintf(stderr, "pvwatch users: libsodium could not start\n");
        return EXIT_RUNTIME;
    }

    pv_config cfg;
    pv_buf errors = PV_BUF_INIT;
    int rc = pv_config_load(config, &cfg, &errors);
    if (rc)
        pv_cli_print_lines(pv_buf_cstr(&errors));
    pv_buf_free(&errors);
    if (rc) {
        pv_config_free(&cfg);
        return EXIT_USAGE;
    }
    if (pv_cli_need_db("users", &cfg, NULL)) {
        pv_config_free(&cfg);
        return EXIT_USAGE;
    }
    /* The password is asked before the database is opened, so that a
     * prompt never holds anything open. */
    char pw[PV_AUTH_MAX_PASSWORD + 2] = "";
    int status = 0;
    if (is_add || !strcmp(verb, "passwd"))
        status = read_password(verb, from_stdin, pw, sizeof pw);
    if (status) {
        sodium_memzero(pw, sizeof pw);
        pv_config_free(&cfg);
        return status;
    }
    pv_store *s = NULL;
    rc = pv_store_open(cfg.database, &s, err, sizeof err);
    if (rc) {
        fprintf(stderr, "pvwatch users: %s\n", err);
        sodium_memzero(pw, sizeof pw);
        pv_config_free(&cfg);
        return EXIT_RUNTIME;
    }
    sqlite3 *db = pv_store_db(s);
    /* Beside a running engine: wait for its commits rather than fail. */
    sqlite3_busy_timeout(db, 30000);
    err[0] = '\0';
    if (!strcmp(verb, "list")) {
        struct list_ctx lc = {0};
        rc = pv_auth_user_each(db, print_user, &lc);
        if (rc)
            snprintf(err, sizeof err, "cannot read the users: %s",
                     sqlite3_errmsg(db));
        else if (!lc.n)
            printf("no users yet; add one with 'pvwatch users add NAME "
                   "--role reviewer'\n");
    } else if (is_add) {
        rc = pv_auth_user_add(db, name, role, pw, err, sizeof err);
        if (!rc)
            printf("user %s added (%s)\n", name, role);
    } else if (!strcmp(verb, "passwd")) {
        rc = pv_auth_user_passwd(db, name, pw, err, sizeof err);
        if (!rc)
            printf("password of %s changed; its sessions ended\n", name);
    } else if (!strcmp(verb, "disable") || !strcmp(verb, "enable")) {
        int off = !strcmp(verb, "disable");
        rc = pv_auth_user_disable(db, name, off, err, sizeof err);
        if (!rc)
            printf("user %s %s\n", name,
                   off ? "disabled; its sessions ended" : "enabled");
    } else {
        rc = pv_auth_user_role(db, name, role, err, sizeof err);
        if (!rc)
            printf("user %s is now %s; its sessions ended\n", name, role);
    }
    sodium_memzero(pw, sizeof pw);
    if (rc)
        fprintf(stderr, "pvwatch users %s: %s\n", verb,
                err[0] ? err : pv_strerror(rc));
    status = exit_for(rc);
    pv_store_close(s);
    pv_config_free(&cfg);
    return status;
}

/* cli_serve.c: 'pvwatch serve' -- the review console alone (issue 16).
 *
 * On a reviewer's machine, or beside an engine that runs without an http
 * table, the console reads the same database the engine writes: it never
 * creates one (a missing file is an error naming the path), runs no rules
 * and takes no feed. Its alert actions go through the same write path as
 * inside 'pvwatch run' (http.h): queued for a running engine's alert log,
 * or written to the log directly when no engine runs. SIGINT and SIGTERM
 * stop it: requests in progress finish, the connections are closed. */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "metrics.h"

static const char usage_serve[] =
    "usage: pvwatch serve [-c CONFIG] [--listen HOST:PORT]\n"
    "\n"
    "Serves the review console (worklist, alert and patient pages, rule\n"
    "quality, /metrics and health) for the database of CONFIG, without\n"
    "running the engine: for a reviewer's machine, or beside a 'pvwatch\n"
    "run' that has no http table. Listens on --listen, else http.listen,\n"
    "else 127.0.0.1:8080 (port 0: any free port, named in the log). The\n"
    "database must exist (nothing is created). Users: 'pvwatch users'.\n"
    "SIGINT or SIGTERM stop it. TLS: put a reverse proxy in front\n"
    "(docs/operations.md \"Review console\").\n";

int pv_cli_serve(int argc, char **argv)
{
    const char *config = NULL, *listen = NULL;
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            config = optarg;
            break;
        case 'l':
            listen = optarg;
            break;
        case 'h':
            fputs(usage_serve, stdout);
            return 0;
        default:
            fprintf(stderr,
                    "pvwatch serve: unknown or incomplete option "
                    "'%s'\n%s",
                    argv[optind - 1], usage_serve);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "pvwatch serve: unexpected argument '%s'\n%s",
                argv[optind], usage_serve);
        return 2;
    }
    pv_config cfg;
    pv_buf errors = PV_BUF_INIT;
    int rc = pv_config_load(config, &cfg, &errors);
    pv_cli_print_lines(pv_buf_cstr(&errors));
    pv_buf_free(&errors);
    if (rc) {
        pv_config_free(&cfg);
        return 2;
    }
    if (pv_cli_need_db("serve", &cfg, NULL)) {
        pv_config_free(&cfg);
        return 2;
    }
    /* The signals are taken by sigwait below; the console's threads block
     * them too (they inherit this mask). */
    sigset_t stopset, old;
    sigemptyset(&stopset);
    sigaddset(&stopset, SIGINT);
    sigaddset(&stopset, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stopset, &old);
    signal(SIGPIPE, SIG_IGN);
    pv_http *h = NULL;
    char err[1024];
    /* Alone, the console has the cores to itself: no SCHED_IDLE. */
    rc = pv_http_start_ex(&cfg, listen, 0, &h, err, sizeof err);
    if (rc) {
        fprintf(stderr, "pvwatch serve: %s\n", err);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pv_config_free(&cfg);
        return 2;
    }
    /* Alone, the console is ready once it listens: it has no rules and no
     * feeds of its own to wait for. */
    pv_metrics_set_ready(PV_READY_ALL, 1);
    char addr[128];
    pv_http_address(h, addr, sizeof addr);
    pv_info("serve running: console on http://%s/ for %s", addr, cfg.database);
    if (strncmp(addr, "127.", 4) && strncmp(addr, "localhost:", 10) &&
        strncmp(addr, "[::1]:", 6))
        pv_warn("the console on %s accepts connections from other machines "
                "and speaks plain HTTP: put a TLS reverse proxy in front and "
                "listen on loopback",
                addr);
    int sig = 0;
    sigwait(&stopset, &sig);
    pv_info("%s: stopping the console", sig == SIGINT ? "SIGINT" : "SIGTERM");
    pv_http_stop(h);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pv_config_free(&cfg);
    return 0;
}

/* cli: the commands of main.c that are more than a call into one module.
 *
 * Each takes the arguments after the command name (argv[0] is the command)
 * and returns the process exit status (0, 1 runtime, 2 usage). They print
 * for people on stdout and stderr. */
#ifndef PV_CLI_H
#define PV_CLI_H

/* pvwatch test [-c CONFIG] [PATH...]: rule specs (cli_test.c). */
int pv_cli_test(int argc, char **argv);
/* pvwatch replay [-c CONFIG] [--since T] [--rule NAME] (cli_replay.c). */
int pv_cli_replay(int argc, char **argv);

/* pvwatch send HOST:PORT FILE... (cli_send.c). */
int pv_cli_send(int argc, char **argv);

/* The commands that read ('alerts', 'outbox', 'replay') never create a
 * database: 0 when the database (db, else cfg->database) exists, else a
 * message naming the path and the configuration looked at, and 2
 * (cli_db.c). */
struct pv_config;
int pv_cli_need_db(const char *cmd, const struct pv_config *cfg,
                   const char *db);
/* The login name for the audit trail: the effective user's passwd entry,
 * else $LOGNAME; NULL when neither is known (cli_db.c). */
const char *pv_cli_login_name(void);

/* pvwatch status [-c CONFIG] [--json] (cli_status.c). */
int pv_cli_status(int argc, char **argv);

/* pvwatch rules [list] [-c CONFIG] [--json|--markdown] (cli_rules.c). */
int pv_cli_rules(int argc, char **argv);

/* pvwatch users [-c CONFIG] list|add|passwd|disable|enable|role: the
 * review console's users (cli_users.c, issue 16). */
int pv_cli_users(int argc, char **argv);

/* pvwatch serve [-c CONFIG] [--listen HOST:PORT]: the review console
 * alone (cli_serve.c, issue 16). */
int pv_cli_serve(int argc, char **argv);
/* pvwatch users ...: the console's users (cli_users.c, issue 16). */
int pv_cli_users(int argc, char **argv);

/* pvwatch report disproportionality FILE...: PRR, ROR, IC and EBGM over
 * spontaneous reports (cli_report.c, issue 18). */
int pv_cli_report(int argc, char **argv);

/* Prints each line of text on stderr as "pvwatch: LINE", control
 * characters escaped (the lines quote file names and values). */
void pv_cli_print_lines(const char *text);

#endif

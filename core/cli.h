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

#endif

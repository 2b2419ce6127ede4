/* src/commands.h - the `kiln` subcommands. Each returns a process exit code
 * (README's table):
 *   0 success, 1 the operation failed (a kernel wrong, a file that is there
 *   but malformed, a damaged database, ...), 2 bad usage (options, values),
 *   3 a required device/backend/file is not there or cannot be opened,
 *   13 a benchmark regression (kiln bench compare). */
#ifndef KILN_SRC_COMMANDS_H
#define KILN_SRC_COMMANDS_H

enum { KILN_EXIT_OK = 0, KILN_EXIT_FAIL = 1, KILN_EXIT_USAGE = 2, KILN_EXIT_UNAVAILABLE = 3 };

int cmd_devices(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_tune(int argc, char **argv);
int cmd_db(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_report(int argc, char **argv);

/* Maps a kiln_err code to the exit codes above. */
int kiln_exit_code(int err_code);

#endif

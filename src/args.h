/* src/args.h - the one option parser every kiln command uses.
 *
 * A command describes its options in a table (name, optional alias, kind,
 * destination, range, metavar, help); the parser takes "--opt VALUE",
 * "--opt=VALUE" and flags, checks numbers strictly (util/num.h: whole string,
 * finite, in range, the option and value echoed in the error), collects
 * operands, and answers -h/--help with a help text generated from the same
 * tables, so every option a command accepts is documented. */
#ifndef KILN_SRC_ARGS_H
#define KILN_SRC_ARGS_H

#include <stdint.h>
#include <stdio.h>

#include "util/err.h"

typedef enum kiln_opt_kind {
    KILN_OPT_FLAG,   /* int *: set to 1 */
    KILN_OPT_STR,    /* const char **: the value */
    KILN_OPT_INT,    /* int *: a whole number in [lo, hi] */
    KILN_OPT_LLONG,  /* long long *: a whole number in [lo, hi] */
    KILN_OPT_DOUBLE, /* double *: a finite number in [lo, hi] */
    KILN_OPT_FLOAT,  /* float *: a finite number in [lo, hi] */
    KILN_OPT_U64,    /* uint64_t *: a whole number in [0, 2^64) */
    KILN_OPT_LIST,   /* const char **: array of max, *count entries (repeatable option) */
    KILN_OPT_FN,     /* fn(dst, option, value, e) parses the value */
} kiln_opt_kind;

typedef struct kiln_opt {
    const char *name;  /* "--ctx" */
    const char *alias; /* "-c" or NULL */
    kiln_opt_kind kind;
    void *dst;
    double lo, hi;     /* INT, LLONG, DOUBLE, FLOAT */
    int *count, max;   /* LIST */
    int (*fn)(void *dst, const char *opt, const char *value, kiln_err *e);
    const char *arg;   /* the value's name in the help ("N"); NULL for a flag */
    const char *help;  /* may span lines ('\n') */
} kiln_opt;

/* -h/--help was given: the help is printed, the command exits 0. */
#define KILN_ARGS_HELP (-1)

/* Parses argv[first..argc) with the options of `tables` (NULL-terminated).
 * Operands (arguments not starting with '-', "-" itself, everything after
 * "--") go to pos (at most max_pos; more is an error; pos NULL: none
 * allowed). Returns 0, KILN_ARGS_HELP (help printed to stdout), or
 * KILN_EXIT_USAGE (2) with "CMD: message" and the usage line on stderr. */
int kiln_args_parse(const char *cmd, const char *usage, const kiln_opt *const *tables, int argc, char **argv,
                    int first, const char **pos, int max_pos, int *n_pos);
/* One option at argv[*i] (and its value): 1 consumed, 0 not an option of
 * the tables, -1 a bad value (message printed). For commands that mix
 * their own parsing with a shared table. */
int kiln_args_one(const char *cmd, const kiln_opt *const *tables, int argc, char **argv, int *i);
/* The usage text, then every option of the tables with its help. */
void kiln_args_help(FILE *f, const char *usage, const kiln_opt *const *tables);
/* Prints "CMD: message" and "(CMD --help for the options)" to stderr;
 * returns KILN_EXIT_USAGE, for checks done after parsing. */
int kiln_args_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

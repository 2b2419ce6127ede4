/* util/num.h - strict number parsing for command-line values and specs.
 * The whole string must be the number (no trailing text, no empty string),
 * finite, whole where an integer is asked for, and inside [lo, hi]; the
 * error names what was parsed (an option, a field) and echoes the value. */
#ifndef KILN_UTIL_NUM_H
#define KILN_UTIL_NUM_H

#include <stdint.h>

#include "util/err.h"

/* what: "--ctx", "shape field 'group'", ... (for the message) */
int kiln_num_int(const char *what, const char *s, long long lo, long long hi, long long *out, kiln_err *e);
int kiln_num_u64(const char *what, const char *s, uint64_t *out, kiln_err *e);
int kiln_num_double(const char *what, const char *s, double lo, double hi, double *out, kiln_err *e);

/* A comma-separated list of whole numbers in [lo, hi] ("1,2,4,8"): at least
 * one, at most max; an empty item or a number out of range is an error that
 * names what and echoes the item. */
int kiln_num_int_list(const char *what, const char *s, long long lo, long long hi, int *out, int max, int *n,
                      kiln_err *e);

/* A numeric environment variable (KILN_CPU_THREADS, ...): unset or empty
 * gives *out = def; anything else must pass kiln_num_int, and the error
 * names the variable: "environment variable KILN_CPU_THREADS: 'abc' is not
 * a whole number in [1, 65536]" (KILN_E_INVALID: a usage error). */
int kiln_env_int(const char *name, long long lo, long long hi, long long def, long long *out, kiln_err *e);

#endif

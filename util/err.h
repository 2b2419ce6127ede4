/* util/err.h - error values that always carry a message.
 *
 * Every fallible function in Kiln takes a `kiln_err *` (may be NULL) and
 * returns 0 on success or a KILN_E_* code. The message says which file,
 * field, device or variant failed; callers add context with kiln_err_wrap().
 * There is no global errno-like state. */
#ifndef KILN_UTIL_ERR_H
#define KILN_UTIL_ERR_H

#include <stddef.h>

enum kiln_code {
    KILN_OK = 0,
    KILN_E_INVALID = 1,   /* bad argument, impossible config, bad CLI usage */
    KILN_E_IO = 2,        /* file system */
    KILN_E_NOMEM = 3,     /* allocation (host or device) */
    KILN_E_UNAVAILABLE = 4, /* backend/driver/device not present */
    KILN_E_COMPILE = 5,   /* kernel source failed to build */
    KILN_E_DEVICE = 6,    /* a device call failed at run time */
    KILN_E_VERIFY = 7,    /* a kernel produced wrong results */
    KILN_E_FORMAT = 8,    /* malformed input file (GGUF, JSON, ...) */
    KILN_E_FULL = 9,      /* capacity exhausted (KV cache, table) */
    KILN_E_TIMEOUT = 10,  /* a child/variant exceeded its time limit */
    KILN_E_DB = 11,       /* SQLite error */
    KILN_E_CRASH = 12,    /* a variant crashed its (child) process */
    KILN_E_REGRESSION = 13, /* bench compare found a regression */
};

typedef struct kiln_err {
    int code;
    char msg[1024];
} kiln_err;

/* Set *e (if non-NULL) to code + formatted message; returns code. */
int kiln_fail(kiln_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix the existing message with context ("loading x.gguf: ").
 * Returns e->code (or KILN_E_INVALID if e is NULL). */
int kiln_err_wrap(kiln_err *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void kiln_err_clear(kiln_err *e);
const char *kiln_code_name(int code);

#endif

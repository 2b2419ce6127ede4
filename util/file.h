/* util/file.h - reading a whole file into memory. */
#ifndef KILN_UTIL_FILE_H
#define KILN_UTIL_FILE_H

#include <stddef.h>

#include "util/err.h"

/* Reads path to its end into a malloc'd, NUL-terminated buffer (*len bytes
 * before the NUL). Reads in chunks until EOF, never trusting the size a
 * seek reports, so pipes, /dev/stdin and files that grow work alike. More
 * than max bytes is an error (KILN_E_IO), as is any read error. */
int kiln_read_file(const char *path, size_t max, char **out, size_t *len, kiln_err *e);

#endif

/* util/file.c - see file.h. */
#include "util/file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int kiln_read_file(const char *path, size_t max, char **out, size_t *len, kiln_err *e)
{
    *out = NULL;
    if (len)
        *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return kiln_fail(e, KILN_E_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 0, n = 0;
    char *buf = NULL;
    int rc = 0;
    for (;;) {
        if (cap - n < 65536 + 1) {
            size_t ncap = cap ? 2 * cap : 1 << 17;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                rc = kiln_fail(e, KILN_E_NOMEM, "%s: out of memory after %zu bytes", path, n);
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (n > max) {
            rc = kiln_fail(e, KILN_E_IO, "%s: larger than %zu bytes", path, max);
            break;
        }
        if (got == 0) {
            if (ferror(f))
                rc = kiln_fail(e, KILN_E_IO, "%s: read failed: %s", path, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[n] = 0;
    *out = buf;
    if (len)
        *len = n;
    return 0;
}

/* util/num.c - see num.h. strtoll/strtod do the conversion; what they let
 * through (trailing text, overflow clamped to the type's limit, nan, inf,
 * leading blanks, a '-' on an unsigned) is refused here. */
#include "util/num.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int kiln_num_int(const char *what, const char *s, long long lo, long long hi, long long *out, kiln_err *e)
{
    if (!s || !*s || isspace((unsigned char)*s))
        return kiln_fail(e, KILN_E_INVALID, "%s: '%s' is not a whole number in [%lld, %lld]", what, s ? s : "",
                         lo, hi);
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno == ERANGE || v < lo || v > hi)
        return kiln_fail(e, KILN_E_INVALID, "%s: '%s' is not a whole number in [%lld, %lld]", what, s, lo, hi);
    *out = v;
    return 0;
}

int kiln_num_int_list(const char *what, const char *s, long long lo, long long hi, int *out, int max, int *n,
                      kiln_err *e)
{
    *n = 0;
    if (!s || !*s)
        return kiln_fail(e, KILN_E_INVALID, "%s: no numbers in '%s'", what, s ? s : "");
    for (const char *p = s;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[32];
        if (len >= sizeof item)
            return kiln_fail(e, KILN_E_INVALID, "%s: '%.*s' is not a whole number in [%lld, %lld]", what, (int)len, p,
                             lo, hi);
        memcpy(item, p, len);
        item[len] = 0;
        long long v;
        if (*n == max)
            return kiln_fail(e, KILN_E_INVALID, "%s: at most %d numbers in '%s'", what, max, s);
        if (kiln_num_int(what, item, lo, hi, &v, e))
            return KILN_E_INVALID;
        out[(*n)++] = (int)v;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

int kiln_num_u64(const char *what, const char *s, uint64_t *out, kiln_err *e)
{
    if (!s || !isdigit((unsigned char)*s))
        return kiln_fail(e, KILN_E_INVALID, "%s: '%s' is not a whole number in [0, 18446744073709551615]", what,
                         s ? s : "");
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno == ERANGE)
        return kiln_fail(e, KILN_E_INVALID, "%s: '%s' is not a whole number in [0, 18446744073709551615]", what, s);
    *out = v;
    return 0;
}

int kiln_num_double(const char *what, const char *s, double lo, double hi, double *out, kiln_err *e)
{
    if (!s || !*s || isspace((unsigned char)*s))
        return kiln_fail(e, KILN_E_INVALID, "%s: '%s' is not a number in [%g, %g]", what, s ? s : "", lo, hi);
    char *end;
    double v = strtod(s, &end);
    if (*end || !isfinite(v) || v < lo || v > hi)
        return kiln_fail(e, KILN_E_INVALID, "%s: '%s' is not a number in [%g, %g]", what, s, lo, hi);
    *out = v;
    return 0;
}

int kiln_env_int(const char *name, long long lo, long long hi, long long def, long long *out, kiln_err *e)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        *out = def;
        return 0;
    }
    char what[96];
    snprintf(what, sizeof what, "environment variable %s", name);
    return kiln_num_int(what, v, lo, hi, out, e);
}

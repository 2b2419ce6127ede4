/* util/err.c - see err.h. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int kiln_fail(kiln_err *e, int code, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        e->code = code;
    }
    return code;
}

int kiln_err_wrap(kiln_err *e, const char *fmt, ...)
{
    if (!e)
        return KILN_E_INVALID;
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char old[sizeof e->msg];
    memcpy(old, e->msg, sizeof old);
    snprintf(e->msg, sizeof e->msg, "%s: %s", prefix, old);
    if (!e->code)
        e->code = KILN_E_INVALID;
    return e->code;
}

void kiln_err_clear(kiln_err *e)
{
    if (e) {
        e->code = 0;
        e->msg[0] = 0;
    }
}

const char *kiln_code_name(int code)
{
    switch (code) {
    case KILN_OK: return "ok";
    case KILN_E_INVALID: return "invalid";
    case KILN_E_IO: return "io";
    case KILN_E_NOMEM: return "nomem";
    case KILN_E_UNAVAILABLE: return "unavailable";
    case KILN_E_COMPILE: return "compile_error";
    case KILN_E_DEVICE: return "device_error";
    case KILN_E_VERIFY: return "wrong_result";
    case KILN_E_FORMAT: return "format";
    case KILN_E_FULL: return "full";
    case KILN_E_TIMEOUT: return "timeout";
    case KILN_E_DB: return "db";
    case KILN_E_CRASH: return "crash";
    case KILN_E_REGRESSION: return "regression";
    }
    return "unknown";
}

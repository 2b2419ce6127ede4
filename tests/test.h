/* tests/test.h - the tiny assertion kit every Kiln test uses.
 * A failed CHECK prints file:line and the message and counts a failure; the
 * test's exit code is 1 if any check failed. KILN_SKIP exits 77 (meson shows
 * SKIP, never PASS). Backends listed in $KILN_REQUIRE_BACKENDS (comma list,
 * set by scripts/test.sh in CI) must be available: a test that finds one
 * missing fails instead of skipping. */
#ifndef KILN_TESTS_TEST_H
#define KILN_TESTS_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/cpu_isa.h"

static int test_failures;

#define CHECK(cond, ...)                                                                                     \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond);                         \
            fprintf(stderr, __VA_ARGS__);                                                                    \
            fputc('\n', stderr);                                                                             \
            test_failures++;                                                                                 \
        }                                                                                                    \
    } while (0)

#define CHECK_OK(expr, err)                                                                                  \
    do {                                                                                                     \
        int rc_ = (expr);                                                                                    \
        CHECK(rc_ == 0, "%s returned %d: %s", #expr, rc_, (err)->msg);                                       \
    } while (0)

#define KILN_SKIP(...)                                                                                       \
    do {                                                                                                     \
        fprintf(stderr, "SKIP: ");                                                                           \
        fprintf(stderr, __VA_ARGS__);                                                                        \
        fputc('\n', stderr);                                                                                 \
        exit(77);                                                                                            \
    } while (0)

/* 1 if `backend` is named in $KILN_REQUIRE_BACKENDS. */
static inline int test_backend_required(const char *backend)
{
    const char *req = getenv("KILN_REQUIRE_BACKENDS");
    if (!req)
        return 0;
    size_t n = strlen(backend);
    for (const char *p = req; (p = strstr(p, backend)); p += n)
        if ((p == req || p[-1] == ',') && (p[n] == 0 || p[n] == ','))
            return 1;
    return 0;
}

/* The ISA bits a cpu device opened now would hand its kernels ($KILN_CPU_ISA
 * applied), for tests that call cpu entries without a device. */
static inline unsigned test_cpu_isa(void)
{
    unsigned isa;
    kiln_cpu_isa_cap(kiln_cpu_isa_detect(), getenv("KILN_CPU_ISA"), &isa);
    return isa;
}

static inline int test_result(void)
{
    if (test_failures)
        fprintf(stderr, "%d check(s) failed\n", test_failures);
    return test_failures ? 1 : 0;
}

#endif

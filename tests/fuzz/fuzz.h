/* tests/fuzz/fuzz.h - what every fuzz target shares.
 *
 * A target defines LLVMFuzzerTestOneInput and nothing else. It is linked
 * twice: with libFuzzer (-Dfuzz=true, clang, tests/fuzz/meson.build) to
 * search, and with replay_main.c in every build, where it replays the
 * committed seed corpus and the regression inputs (every crash the fuzzer
 * found, fixed) as an ordinary meson test. A target must never keep state
 * from one input to the next that changes what the next one does. */
#ifndef KILN_TESTS_FUZZ_H
#define KILN_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property the code promises was broken: abort, so libFuzzer (and the
 * replay test) report it with the input. */
#define FUZZ_ASSERT(cond, ...)                                                                               \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            fprintf(stderr, "%s:%d: FUZZ_ASSERT(%s) failed: ", __FILE__, __LINE__, #cond);                   \
            fprintf(stderr, __VA_ARGS__);                                                                    \
            fputc('\n', stderr);                                                                             \
            abort();                                                                                         \
        }                                                                                                    \
    } while (0)

/* data[0..size) as a NUL-terminated heap string (the parsers under test
 * take C strings); NULL when out of memory. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s) {
        if (size)
            memcpy(s, data, size);
        s[size] = 0;
    }
    return s;
}

/* data[0..size) as an anonymous in-memory file; *path gets a name that
 * open()/mmap() accept (/proc/self/fd/N). Returns the fd (close it), -1 on
 * failure. */
static inline int fuzz_memfile(const uint8_t *data, size_t size, char *path, size_t n)
{
    int fd = memfd_create("kiln-fuzz", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    snprintf(path, n, "/proc/self/fd/%d", fd);
    return fd;
}

#endif

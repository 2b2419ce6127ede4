#define _POSIX_C_SOURCE 200809L
#include "clock.h"

#include <time.h>

uint64_t kiln_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double kiln_now_s(void) { return (double)kiln_now_ns() * 1e-9; }

/* util/clock.h - monotonic wall clock for host-side timing. */
#ifndef KILN_UTIL_CLOCK_H
#define KILN_UTIL_CLOCK_H

#include <stdint.h>

uint64_t kiln_now_ns(void);
double kiln_now_s(void);

#endif

/* devices/cpu/cpu_internal.h - shared by the cpu backend's files. */
#ifndef KILN_DEVICES_CPU_INTERNAL_H
#define KILN_DEVICES_CPU_INTERNAL_H

#include "devices/device.h"

/* Fills fp from cpuid, /proc/cpuinfo, sysfs caches, sysconf and uname. */
void kiln_cpu_fingerprint(kiln_fingerprint *fp);

/* The read-bandwidth probe (cpu_read.c): workgroup w sums its contiguous
 * block of 16-byte vectors; args src, out (one u32 per workgroup), n. */
void kiln_cpu_read_sum(const kiln_cpu_launch *l, uint32_t wg_begin, uint32_t wg_end);

#endif

/* devices/cpu/cpu_internal.h - shared by the cpu backend's files. */
#ifndef KILN_DEVICES_CPU_INTERNAL_H
#define KILN_DEVICES_CPU_INTERNAL_H

#include "devices/device.h"

/* Fills fp from cpuid, /proc/cpuinfo, sysfs caches, sysconf and uname. */
void kiln_cpu_fingerprint(kiln_fingerprint *fp);

#endif

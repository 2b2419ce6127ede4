/* devices/limits.h - an override of the limits a device reports, so that
 * the schedule spaces of a phone GPU can be exercised (and tuned) on the
 * devices at hand: `--limits FILE|PROFILE` or $KILN_LIMITS.
 *
 * It applies to the GPU-style backends (opencl, vulkan, cuda), not to the
 * cpu backend. A limits set can only lower what the device itself offers (a lavapipe
 * cannot run a workgroup it does not support, whatever a profile says):
 * max workgroup and shared memory become the smaller of the two, the
 * subgroup size the least common multiple (a workgroup that is a multiple of
 * it is one of both), subgroup ops and f16 / int8 can be switched off only.
 * The device's name gets " [limits NAME]", so the database never mixes what
 * was tuned under a profile with what was tuned on the device itself.
 *
 * Built-in profiles (their sources in docs: bench/results/mobile-limits.md):
 *   adreno-7xx  Qualcomm Adreno 7xx: 1024 threads, 32 KiB shared, waves of 64
 *   mali-g7x    Arm Mali-G77/G78 (Valhall): 512 threads, 32 KiB shared, warps of 16
 * A FILE holds `key = value` lines (# comments): name, max_workgroup,
 * local_mem (bytes), subgroup, subgroup_ops (0|1), f16 (0|1), int8 (0|1). */
#ifndef KILN_DEVICES_LIMITS_H
#define KILN_DEVICES_LIMITS_H

#include "devices/device.h"

#define KILN_LIMITS_ENV "KILN_LIMITS"

typedef struct kiln_limits {
    char name[48];          /* the profile's name, or the file's `name` (else its base name) */
    uint32_t max_workgroup; /* 0: not limited */
    uint64_t local_mem;     /* bytes; 0: not limited */
    uint32_t subgroup;      /* 0: not limited */
    int subgroup_ops;       /* -1: as the device; 0: none */
    int f16, int8;          /* -1: as the device; 0: absent; 1: present (cannot add to the device) */
} kiln_limits;

/* A built-in profile name or a file; KILN_E_INVALID with the file, line and
 * key on a malformed file, KILN_E_IO when it cannot be read. */
int kiln_limits_parse(const char *spec, kiln_limits *out, kiln_err *e);
/* Lowers fp to l (see above). */
void kiln_limits_apply(const kiln_limits *l, kiln_fingerprint *fp);
/* $KILN_LIMITS applied to fp when set and not empty; 0 when unset. */
int kiln_limits_apply_env(kiln_fingerprint *fp, kiln_err *e);
/* The built-in profiles' names, NULL-terminated (for help texts and tests). */
extern const char *const kiln_limits_profiles[];

#endif

/* devices/limits.c - see limits.h. */
#include "devices/limits.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const kiln_limits_profiles[] = {"adreno-7xx", "mali-g7x", NULL};

/* The figures and where they come from: bench/results/mobile-limits.md. */
static const kiln_limits builtin[] = {
    /* Adreno 7xx: maxComputeWorkGroupInvocations 1024 (Qualcomm's driver,
     * CL_DEVICE_MAX_WORK_GROUP_SIZE 1024), 32 KiB shared (Mesa freedreno
     * cs_shared_mem_size for every a7xx), waves of 64 (threadsize_base 64,
     * 128 in double-threadsize mode), fp16 and int8 dot products in the ALUs */
    {"adreno-7xx", 1024, 32768, 64, -1, 1, 1},
    /* Mali-G77/G78 (Valhall v9): 512 threads per workgroup (the kernel
     * driver's max_threads_per_wg that panvk reports), 32 KiB shared (panvk
     * and Arm's driver), warps of 16 (pan_subgroup_size, arch >= 9), fp16,
     * int8 dot products (Valhall's IDP) */
    {"mali-g7x", 512, 32768, 16, -1, 1, 1},
};

static int parse_u64(const char *path, int line, const char *key, const char *v, uint64_t max, uint64_t *out,
                     kiln_err *e)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (!*v || *end || errno || x > max || v[0] == '-')
        return kiln_fail(e, KILN_E_INVALID, "limits %s:%d: %s = '%s' is not a number in [0, %llu]", path, line, key,
                         v, (unsigned long long)max);
    *out = x;
    return 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = 0;
    return s;
}

static int parse_file(const char *path, kiln_limits *l, kiln_err *e)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return kiln_fail(e, errno == ENOENT ? KILN_E_INVALID : KILN_E_IO,
                         "limits '%s': not a profile (%s, %s) and not a readable file: %s", path, kiln_limits_profiles[0],
                         kiln_limits_profiles[1], strerror(errno));
    *l = (kiln_limits){.subgroup_ops = -1, .f16 = -1, .int8 = -1};
    const char *base = strrchr(path, '/');
    snprintf(l->name, sizeof l->name, "%s", base ? base + 1 : path);
    char buf[256];
    int line = 0, rc = 0;
    while (!rc && fgets(buf, sizeof buf, f)) {
        line++;
        char *hash = strchr(buf, '#');
        if (hash)
            *hash = 0;
        char *s = trim(buf);
        if (!*s)
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = kiln_fail(e, KILN_E_INVALID, "limits %s:%d: want key = value, got '%s'", path, line, s);
            break;
        }
        *eq = 0;
        char *key = trim(s), *v = trim(eq + 1);
        uint64_t x = 0;
        if (!strcmp(key, "name")) {
            if (!*v || strlen(v) >= sizeof l->name)
                rc = kiln_fail(e, KILN_E_INVALID, "limits %s:%d: name must be 1..%zu characters", path, line,
                               sizeof l->name - 1);
            else
                snprintf(l->name, sizeof l->name, "%s", v);
        } else if (!strcmp(key, "max_workgroup")) {
            if (!(rc = parse_u64(path, line, key, v, 1u << 16, &x, e)))
                l->max_workgroup = (uint32_t)x;
        } else if (!strcmp(key, "local_mem")) {
            if (!(rc = parse_u64(path, line, key, v, 1ull << 30, &x, e)))
                l->local_mem = x;
        } else if (!strcmp(key, "subgroup")) {
            if (!(rc = parse_u64(path, line, key, v, 1024, &x, e))) {
                if (x & (x - 1))
                    rc = kiln_fail(e, KILN_E_INVALID, "limits %s:%d: subgroup %llu is not a power of two", path,
                                   line, (unsigned long long)x);
                l->subgroup = (uint32_t)x;
            }
        } else if (!strcmp(key, "subgroup_ops") || !strcmp(key, "f16") || !strcmp(key, "int8")) {
            if (!(rc = parse_u64(path, line, key, v, 1, &x, e)))
                *(key[0] == 's' ? &l->subgroup_ops : key[0] == 'f' ? &l->f16 : &l->int8) = (int)x;
        } else {
            rc = kiln_fail(e, KILN_E_INVALID,
                           "limits %s:%d: unknown key '%s' (name, max_workgroup, local_mem, subgroup, subgroup_ops, "
                           "f16, int8)", path, line, key);
        }
    }
    if (!rc && ferror(f))
        rc = kiln_fail(e, KILN_E_IO, "limits %s: read error", path);
    fclose(f);
    return rc;
}

int kiln_limits_parse(const char *spec, kiln_limits *out, kiln_err *e)
{
    for (size_t i = 0; i < sizeof builtin / sizeof *builtin; i++)
        if (!strcmp(spec, builtin[i].name)) {
            *out = builtin[i];
            return 0;
        }
    return parse_file(spec, out, e);
}

static uint32_t gcd(uint32_t a, uint32_t b)
{
    while (b) {
        uint32_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

void kiln_limits_apply(const kiln_limits *l, kiln_fingerprint *fp)
{
    if (l->max_workgroup && (!fp->max_workgroup || l->max_workgroup < fp->max_workgroup))
        fp->max_workgroup = l->max_workgroup;
    if (l->local_mem && (!fp->local_mem_bytes || l->local_mem < fp->local_mem_bytes))
        fp->local_mem_bytes = l->local_mem;
    if (l->subgroup) {
        uint32_t d = fp->subgroup_size ? fp->subgroup_size : 1;
        uint32_t m = d / gcd(d, l->subgroup) * l->subgroup;
        fp->subgroup_size = fp->subgroup_min = fp->subgroup_max = m;
    }
    if (l->subgroup_ops == 0)
        fp->has_subgroup_ops = 0;
    if (l->f16 == 0)
        fp->no_f16 = 1;
    if (l->int8 == 0)
        fp->no_int8 = 1;
    char tag[64];
    snprintf(tag, sizeof tag, " [limits %s]", l->name);
    size_t n = strlen(fp->name), t = strlen(tag);
    if (n + t >= sizeof fp->name)
        n = sizeof fp->name - 1 - t; /* the tag always shows: it keeps the database identity apart */
    memcpy(fp->name + n, tag, t + 1);
}

int kiln_limits_apply_env(kiln_fingerprint *fp, kiln_err *e)
{
    const char *spec = getenv(KILN_LIMITS_ENV);
    if (!spec || !*spec)
        return 0;
    kiln_limits l;
    if (kiln_limits_parse(spec, &l, e))
        return kiln_err_wrap(e, "$" KILN_LIMITS_ENV);
    kiln_limits_apply(&l, fp);
    return 0;
}

/* devices/cpu/cpu_fingerprint.c - what identifies this CPU for tuning. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "devices/cpu/cpu_internal.h"
#include "devices/cpu/cpu_isa.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

/* Parses sysfs cache sizes like "32K", "1024K", "32M". */
static uint64_t read_size(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char buf[32] = "";
    uint64_t v = 0;
    if (fgets(buf, sizeof buf, f)) {
        char *end;
        v = strtoull(buf, &end, 10);
        if (*end == 'K')
            v <<= 10;
        else if (*end == 'M')
            v <<= 20;
    }
    fclose(f);
    return v;
}

static void caches(kiln_fingerprint *fp)
{
    uint64_t l2 = 0, llc = 0;
    int best_level = 0;
    for (int i = 0; i < 8; i++) {
        char p[128], level_s[8] = "", type[32] = "";
        snprintf(p, sizeof p, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
        FILE *f = fopen(p, "r");
        if (!f)
            break;
        if (!fgets(level_s, sizeof level_s, f))
            level_s[0] = 0;
        fclose(f);
        snprintf(p, sizeof p, "/sys/devices/system/cpu/cpu0/cache/index%d/type", i);
        if ((f = fopen(p, "r"))) {
            if (!fgets(type, sizeof type, f))
                type[0] = 0;
            fclose(f);
        }
        if (!strncmp(type, "Instruction", 11))
            continue;
        snprintf(p, sizeof p, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        uint64_t sz = read_size(p);
        int level = atoi(level_s);
        if (level == 2)
            l2 = sz;
        if (level >= best_level) {
            best_level = level;
            llc = sz;
        }
    }
    fp->local_mem_bytes = l2 ? l2 : 256 * 1024;
    fp->llc_bytes = llc ? llc : 32ull << 20;
}

void kiln_cpu_fingerprint(kiln_fingerprint *fp)
{
    memset(fp, 0, sizeof *fp);
    fp->backend = KILN_CPU;
    snprintf(fp->vendor, sizeof fp->vendor, "unknown");
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (__get_cpuid(0, &a, &b, &c, &d)) {
        char v[13];
        memcpy(v, &b, 4);
        memcpy(v + 4, &d, 4);
        memcpy(v + 8, &c, 4);
        v[12] = 0;
        snprintf(fp->vendor, sizeof fp->vendor, "%s", v);
    }
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        unsigned family = (a >> 8) & 0xf, model = (a >> 4) & 0xf;
        if (family == 0xf)
            family += (a >> 20) & 0xff;
        if (family >= 6)
            model |= ((a >> 16) & 0xf) << 4;
        fp->device_id = (family << 8) | model;
    }
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl"))
        snprintf(fp->arch, sizeof fp->arch, "x86_64-avx512");
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        snprintf(fp->arch, sizeof fp->arch, "x86_64-avx2");
    else
        snprintf(fp->arch, sizeof fp->arch, "x86_64");
    fp->subgroup_size = strstr(fp->arch, "avx512") ? 16 : strstr(fp->arch, "avx2") ? 8 : 4;
#elif defined(__aarch64__)
    /* aarch64-neon, -dotprod or -i8mm: the widest integer dot product (HWCAP) */
    snprintf(fp->arch, sizeof fp->arch, "aarch64-%s", kiln_cpu_isa_name(kiln_cpu_isa_detect()));
    fp->subgroup_size = 4;
#else
    snprintf(fp->arch, sizeof fp->arch, "generic");
    fp->subgroup_size = 1;
#endif
    fp->subgroup_min = fp->subgroup_max = fp->subgroup_size;
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10) || !strncmp(line, "Model", 5)) {
            char *v = strchr(line, ':');
            if (v) {
                v += 1 + (v[1] == ' ');
                v[strcspn(v, "\n")] = 0;
                snprintf(fp->name, sizeof fp->name, "%s", v);
                break;
            }
        }
    }
    if (f)
        fclose(f);
    if (!fp->name[0])
        snprintf(fp->name, sizeof fp->name, "%s CPU", fp->arch);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    fp->compute_units = n > 0 ? (uint32_t)n : 1;
    fp->max_workgroup = 1024;
    fp->offset_align = 4;
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    fp->memory_bytes = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : 0;
    caches(fp);
    struct utsname u;
    if (!uname(&u))
        snprintf(fp->driver_version, sizeof fp->driver_version, "linux %s", u.release);
#if defined(__clang__)
    snprintf(fp->compiler_version, sizeof fp->compiler_version, "clang %s", __clang_version__);
#elif defined(__GNUC__)
    snprintf(fp->compiler_version, sizeof fp->compiler_version, "gcc %s", __VERSION__);
#endif
}

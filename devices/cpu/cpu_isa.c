/* devices/cpu/cpu_isa.c - see cpu_isa.h. */
#include "devices/cpu/cpu_isa.h"

#include <string.h>

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

/* f16c (leaf 1 ECX bit 29) and avxvnni (leaf 7.1 EAX bit 4) read with cpuid:
 * clang 14/15 reject these names in __builtin_cpu_supports. Both are VEX
 * encoded, so the avx2 check (which includes the OS's AVX state) covers them. */
static int cpuid_bit(unsigned leaf, unsigned sub, int reg, int bit)
{
    unsigned r[4] = {0, 0, 0, 0};
    if (!__get_cpuid_count(leaf, sub, &r[0], &r[1], &r[2], &r[3]))
        return 0;
    return (r[reg] >> bit) & 1;
}
#endif

unsigned kiln_cpu_isa_detect(void)
{
    unsigned isa = 0;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpuid_bit(1, 0, 2, 29))
        isa |= KILN_ISA_AVX2;
    if ((isa & KILN_ISA_AVX2) && cpuid_bit(7, 1, 0, 4))
        isa |= KILN_ISA_AVX_VNNI;
    if ((isa & KILN_ISA_AVX2) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        isa |= KILN_ISA_AVX512;
    if ((isa & KILN_ISA_AVX512) && __builtin_cpu_supports("avx512vnni"))
        isa |= KILN_ISA_AVX512_VNNI;
#elif defined(__aarch64__)
    isa |= KILN_ISA_NEON; /* mandatory in AArch64 */
#if defined(__linux__) && defined(HWCAP_ASIMDDP)
    unsigned long hw = getauxval(AT_HWCAP);
    if (hw & HWCAP_ASIMDDP)
        isa |= KILN_ISA_DOTPROD;
#if defined(HWCAP2_I8MM)
    if (getauxval(AT_HWCAP2) & HWCAP2_I8MM)
        isa |= KILN_ISA_I8MM;
#endif
#endif
#endif
    return isa;
}

static const struct {
    const char *name;
    unsigned keep; /* the bits a cap at this level keeps */
} levels[] = {
    {"scalar", 0},
    {"avx2", KILN_ISA_AVX2},
    {"avx-vnni", KILN_ISA_AVX2 | KILN_ISA_AVX_VNNI},
    {"avx512", KILN_ISA_AVX2 | KILN_ISA_AVX512},
    {"avx512-vnni", KILN_ISA_AVX2 | KILN_ISA_AVX_VNNI | KILN_ISA_AVX512 | KILN_ISA_AVX512_VNNI},
    {"neon", KILN_ISA_NEON},
    {"dotprod", KILN_ISA_NEON | KILN_ISA_DOTPROD},
    {"i8mm", KILN_ISA_NEON | KILN_ISA_DOTPROD | KILN_ISA_I8MM},
};

int kiln_cpu_isa_cap(unsigned hw, const char *level, unsigned *out)
{
    *out = hw;
    if (!level || !*level || !strcmp(level, "native"))
        return 0;
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++)
        if (!strcmp(level, levels[i].name)) {
            *out = hw & levels[i].keep;
            return 0;
        }
    return -1;
}

const char *kiln_cpu_isa_name(unsigned isa)
{
    if (isa & KILN_ISA_AVX512_VNNI)
        return "avx512-vnni";
    if (isa & KILN_ISA_AVX512)
        return "avx512";
    if (isa & KILN_ISA_AVX_VNNI)
        return "avx-vnni";
    if (isa & KILN_ISA_AVX2)
        return "avx2";
    if (isa & KILN_ISA_I8MM)
        return "i8mm";
    if (isa & KILN_ISA_DOTPROD)
        return "dotprod";
    if (isa & KILN_ISA_NEON)
        return "neon";
    return "scalar";
}

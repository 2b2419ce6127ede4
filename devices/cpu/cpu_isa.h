/* devices/cpu/cpu_isa.h - which SIMD instruction sets the cpu kernels may use.
 *
 * One probe for every cpu kernel: the cpu device detects the host's features
 * once when it opens, applies $KILN_CPU_ISA (tests force the lower paths with
 * it), and hands the result to every launch (kiln_cpu_launch.isa). A kernel
 * picks its path from those bits and never calls cpuid or getenv itself.
 *
 * The bits are cumulative in practice (AVX-512 paths also use AVX2 helpers),
 * and a forced level clears everything above it. */
#ifndef KILN_DEVICES_CPU_ISA_H
#define KILN_DEVICES_CPU_ISA_H

enum {
    KILN_ISA_AVX2 = 1u << 0,        /* AVX2 + FMA + F16C */
    KILN_ISA_AVX_VNNI = 1u << 1,    /* VEX-coded vpdpbusd on ymm (Alder Lake, Zen 5 ...) */
    KILN_ISA_AVX512 = 1u << 2,      /* AVX-512 F + BW + VL + DQ */
    KILN_ISA_AVX512_VNNI = 1u << 3, /* vpdpbusd on zmm */
    KILN_ISA_NEON = 1u << 8,        /* aarch64 Advanced SIMD */
    KILN_ISA_DOTPROD = 1u << 9,     /* aarch64 SDOT/UDOT */
    KILN_ISA_I8MM = 1u << 10,       /* aarch64 SMMLA/USDOT */
};

/* The host's features (cpuid / HWCAP). */
unsigned kiln_cpu_isa_detect(void);

/* Applies a KILN_CPU_ISA value to hw: "scalar", "avx2", "avx-vnni", "avx512",
 * "avx512-vnni", "neon", "dotprod", "i8mm" cap the features at that level
 * (a level the host lacks gives what the host has below it); NULL, "" and
 * "native" keep hw. Returns 0, or -1 for an unknown name (*out = hw). */
int kiln_cpu_isa_cap(unsigned hw, const char *level, unsigned *out);

/* The coarse level most kernels dispatch on: 2 AVX-512, 1 AVX2 (+FMA, F16C),
 * 0 scalar. */
static inline int kiln_cpu_isa_level(unsigned isa)
{
    return isa & KILN_ISA_AVX512 ? 2 : isa & KILN_ISA_AVX2 ? 1 : 0;
}

/* aarch64: Advanced SIMD is the baseline (no attribute); the dotprod and
 * i8mm paths are compiled for those extensions function by function and run
 * only when HWCAP says so. gcc and clang spell the target differently. */
#if defined(__aarch64__)
#define KILN_ARM64 1
#if defined(__clang__)
#define KILN_TARGET_DOTPROD __attribute__((target("dotprod")))
#define KILN_TARGET_I8MM __attribute__((target("dotprod,i8mm")))
#else
/* gcc's arm_neon.h declares vdotq/vmmlaq under arch=armv8.2-a+...: a caller
 * must have at least that arch to inline them */
#define KILN_TARGET_DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))
#define KILN_TARGET_I8MM __attribute__((target("arch=armv8.2-a+dotprod+i8mm")))
#endif
#endif

/* "avx512-vnni", "avx2", "scalar" ...: the highest level in isa. */
const char *kiln_cpu_isa_name(unsigned isa);

#endif

/* bench/probes/vnni_scaling.c - do this machine's hardware threads have their
 * own vector units? Runs a loop of 12 independent vpdpbusd chains (2e8
 * instructions) on one thread, then the same on two threads at once, and
 * prints the scaling (2.0: two cores' worth of int8 dot products; ~1.0: the
 * two threads share one core's units, as on the 2-vCPU EPYC of
 * bench/results/cpu-roofline.md). Not part of the build:
 *     gcc -O2 -pthread bench/probes/vnni_scaling.c -o /tmp/vnni_scaling && /tmp/vnni_scaling
 * Needs AVX-512 VNNI. Run it a few times: neighbours on a shared host move it. */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* 12 independent chains, each its own variable with its own start value:
 * an array of accumulators indexed in a loop (this probe's first version)
 * was kept in memory by gcc -O2, and identical chains are merged into one,
 * so it timed store-to-load forwarding, not the dot-product units. */
#define CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
__attribute__((target("avx512f,avx512vnni"))) static void *work(void *p)
{
#define DECL(i) __m512i a##i = _mm512_set1_epi32(i + 1);
    CHAINS(DECL)
    __m512i b = _mm512_set1_epi32(0x01010101);
    const __m512i c = _mm512_set1_epi32(0x02020202);
    for (long n = 0; n < 200000000L / 12; n++) {
        __asm__ volatile("" : "+v"(b)); /* b is opaque: no folding of the loop */
#define STEP(i) a##i = _mm512_dpbusd_epi32(a##i, b, c);
        CHAINS(STEP)
    }
    __m512i s = _mm512_setzero_si512();
#define SUM(i) s = _mm512_add_epi32(s, a##i);
    CHAINS(SUM)
    *(int *)p = _mm512_reduce_add_epi32(s); /* keep the loop */
    return NULL;
}

int main(void)
{
    int r[2];
    pthread_t t[2];
    double t0 = now();
    work(&r[0]);
    double t1 = now();
    for (int i = 0; i < 2; i++)
        if (pthread_create(&t[i], NULL, work, &r[i])) {
            perror("pthread_create");
            return 1;
        }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    double t2 = now();
    printf("1 thread %.3f s (%.2f G vpdpbusd/s), 2 threads (2x the work) %.3f s: scaling %.2f\n", t1 - t0,
           (double)(200000000L / 12 * 12) / (t1 - t0) * 1e-9, t2 - t1, 2 * (t1 - t0) / (t2 - t1));
    return (r[0] ^ r[1]) & 0; /* results used, exit 0 */
}

/* bench/probes/vnni_scaling.c - do this machine's hardware threads have their
 * own vector units? Runs a loop of 8 independent vpdpbusd chains (2e8
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

__attribute__((target("avx512f,avx512vnni"))) static void *work(void *p)
{
    __m512i a[8];
    for (int i = 0; i < 8; i++)
        a[i] = _mm512_set1_epi32(i);
    const __m512i b = _mm512_set1_epi32(0x01010101), c = _mm512_set1_epi32(0x02020202);
    for (long n = 0; n < 200000000L / 8; n++)
        for (int i = 0; i < 8; i++)
            a[i] = _mm512_dpbusd_epi32(a[i], b, c);
    __m512i s = a[0];
    for (int i = 1; i < 8; i++)
        s = _mm512_add_epi32(s, a[i]);
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
    printf("1 thread %.3f s, 2 threads (2x the work) %.3f s: scaling %.2f\n", t1 - t0, t2 - t1,
           2 * (t1 - t0) / (t2 - t1));
    return (r[0] ^ r[1]) & 0; /* results used, exit 0 */
}

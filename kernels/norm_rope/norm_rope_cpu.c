/* kernels/norm_rope/norm_rope_cpu.c - CPU entries of rmsnorm and rope
 * (layouts and arguments: see norm_rope.c).
 *
 * rmsnorm_cpu: one row per workgroup; the residual add, the sum of squares
 * (16 or 8 f32 lanes, so ~n/16 sequential terms per lane) and the scaling run
 * in AVX-512 or AVX2+FMA, with a scalar path. The launch's ISA bits pick it.
 * rope_cpu: one token per workgroup: cos/sin of the n_rot/2 angles once, then
 * every head is rotated with them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/cpu_isa.h"
#include "kernels/kernel.h"
#include "kernels/sources.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define KILN_X86 1
#endif

/* ---------------------------------------------------------------- rmsnorm */

/* x += r (when r), returns the sum of squares of the new x */
static float rms_sumsq_scalar(float *x, const float *r, int64_t n)
{
    float s[4] = {0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; j++) {
            if (r)
                x[i + j] += r[i + j];
            s[j] += x[i + j] * x[i + j];
        }
    for (; i < n; i++) {
        if (r)
            x[i] += r[i];
        s[0] += x[i] * x[i];
    }
    return (s[0] + s[1]) + (s[2] + s[3]);
}

static void rms_scale_scalar(const float *x, const float *w, float *y, int64_t n, float inv)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] * inv * w[i];
}

#ifdef KILN_X86
#define AVX2 __attribute__((target("avx2,fma")))
AVX2 static float rms_sumsq_avx2(float *x, const float *r, int64_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
        if (r) {
            a = _mm256_add_ps(a, _mm256_loadu_ps(r + i));
            b = _mm256_add_ps(b, _mm256_loadu_ps(r + i + 8));
            _mm256_storeu_ps(x + i, a);
            _mm256_storeu_ps(x + i + 8, b);
        }
        s0 = _mm256_fmadd_ps(a, a, s0);
        s1 = _mm256_fmadd_ps(b, b, s1);
    }
    float t[8];
    _mm256_storeu_ps(t, _mm256_add_ps(s0, s1));
    float s = ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
    return s + rms_sumsq_scalar(x + i, r ? r + i : NULL, n - i);
}
AVX2 static void rms_scale_avx2(const float *x, const float *w, float *y, int64_t n, float inv)
{
    __m256 vi = _mm256_set1_ps(inv);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vi), _mm256_loadu_ps(w + i)));
    rms_scale_scalar(x + i, w + i, y + i, n - i, inv);
}

#define AVX512 __attribute__((target("avx512f,avx2,fma")))
AVX512 static float rms_sumsq_avx512(float *x, const float *r, int64_t n)
{
    __m512 s0 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 a = _mm512_maskz_loadu_ps(k, x + i);
        if (r) {
            a = _mm512_add_ps(a, _mm512_maskz_loadu_ps(k, r + i));
            _mm512_mask_storeu_ps(x + i, k, a);
        }
        s0 = _mm512_fmadd_ps(a, a, s0);
    }
    return _mm512_reduce_add_ps(s0);
}
AVX512 static void rms_scale_avx512(const float *x, const float *w, float *y, int64_t n, float inv)
{
    __m512 vi = _mm512_set1_ps(inv);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), vi), _mm512_maskz_loadu_ps(k, w + i));
        _mm512_mask_storeu_ps(y + i, k, v);
    }
}
#endif

static void rmsnorm_cpu(const kiln_cpu_launch *l, uint32_t wg_begin, uint32_t wg_end)
{
    float *x = l->ptr[0], *y = l->ptr[2];
    const float *w = l->ptr[1], *r = l->ptr[3];
    int64_t rows = l->arg[4].i32, n = l->arg[5].i32;
    int op = l->arg[6].i32;
    float eps = l->arg[7].f32;
    int brk = (int)kiln_define_get(l->defines, l->n_defines, "KILN_TEST_BREAK", 0);
    int isa = kiln_cpu_isa_level(l->isa);
    for (uint32_t row = wg_begin; row < wg_end && row < rows; row++) {
        float *xr = x + row * n, *yr = y + row * n;
        const float *rr = op ? r + row * n : NULL;
        float ss, inv;
#ifdef KILN_X86
        if (isa == 2) {
            ss = rms_sumsq_avx512(xr, rr, n);
            inv = 1.0f / sqrtf(ss / (float)n + eps);
            rms_scale_avx512(xr, w, yr, n, inv);
        } else if (isa == 1) {
            ss = rms_sumsq_avx2(xr, rr, n);
            inv = 1.0f / sqrtf(ss / (float)n + eps);
            rms_scale_avx2(xr, w, yr, n, inv);
        } else
#endif
        {
            ss = rms_sumsq_scalar(xr, rr, n);
            inv = 1.0f / sqrtf(ss / (float)n + eps);
            rms_scale_scalar(xr, w, yr, n, inv);
        }
        if (brk)
            yr[0] = xr[0] * inv * w[1];
    }
    (void)isa;
}

/* ---------------------------------------------------------------- rope */

#define ROPE_MAX_HALF 512

static void rope_cpu(const kiln_cpu_launch *l, uint32_t wg_begin, uint32_t wg_end)
{
    float *x = l->ptr[0];
    const int32_t *pos = l->ptr[1];
    const float *inv_freq = l->ptr[2];
    int64_t tokens = l->arg[3].i32;
    int heads = l->arg[4].i32, hd = l->arg[5].i32, n_rot = l->arg[6].i32, off = l->arg[7].i32, op = l->arg[8].i32;
    int brk = (int)kiln_define_get(l->defines, l->n_defines, "KILN_TEST_BREAK", 0);
    int half = n_rot / 2;
    if (half > ROPE_MAX_HALF)
        return; /* head_dim > 1024: rejected by no model we know; never planned */
    float cs[ROPE_MAX_HALF], sn[ROPE_MAX_HALF];
    for (uint32_t t = wg_begin; t < wg_end && t < tokens; t++) {
        float p = (float)(pos[t] + off);
        for (int i = 0; i < half; i++) {
            int fi = brk && i == 0 ? 1 : i;
            float th = p * inv_freq[fi];
            cs[i] = cosf(th);
            sn[i] = sinf(th);
        }
        for (int h = 0; h < heads; h++) {
            float *v = x + ((int64_t)t * heads + h) * hd;
            if (op) {
                float *a = v, *b = v + half;
                for (int i = 0; i < half; i++) {
                    float x0 = a[i], x1 = b[i];
                    a[i] = x0 * cs[i] - x1 * sn[i];
                    b[i] = x0 * sn[i] + x1 * cs[i];
                }
            } else {
                for (int i = 0; i < half; i++) {
                    float x0 = v[2 * i], x1 = v[2 * i + 1];
                    v[2 * i] = x0 * cs[i] - x1 * sn[i];
                    v[2 * i + 1] = x0 * sn[i] + x1 * cs[i];
                }
            }
        }
    }
}

const kiln_cpu_entry kiln_cpu_entries_norm_rope[] = {
    {"rmsnorm_cpu", rmsnorm_cpu},
    {"rope_cpu", rope_cpu},
    {0, 0},
};

/* engine/gguf_dequant.c - see gguf_dequant.h. Block layouts follow ggml's
 * block_* structs (packed, little-endian, f16 = IEEE half). Each function
 * decodes `nb` whole blocks; no state, no allocation. */
#include "engine/gguf_dequant.h"

#include <math.h>
#include <string.h>

#include "engine/gguf.h"
#include "util/f16.h"

static float h2f(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return kiln_f16_to_f32(h);
}

static void f2h(uint8_t *p, float f)
{
    uint16_t h = kiln_f32_to_f16(f);
    memcpy(p, &h, 2);
}

/* Q4_0: d, qs[16]; byte j: element j (low nibble), j+16 (high). */
static void dq_q4_0(const uint8_t *b, int64_t nb, float *y)
{
    for (int64_t i = 0; i < nb; i++, b += 18, y += 32) {
        float d = h2f(b);
        for (int j = 0; j < 16; j++) {
            y[j] = ((b[2 + j] & 15) - 8) * d;
            y[j + 16] = ((b[2 + j] >> 4) - 8) * d;
        }
    }
}

static void dq_q4_1(const uint8_t *b, int64_t nb, float *y)
{
    for (int64_t i = 0; i < nb; i++, b += 20, y += 32) {
        float d = h2f(b), m = h2f(b + 2);
        for (int j = 0; j < 16; j++) {
            y[j] = (b[4 + j] & 15) * d + m;
            y[j + 16] = (b[4 + j] >> 4) * d + m;
        }
    }
}

/* Q5_0: d, qh (u32: bit j = 5th bit of element j), qs[16]; w = (q - 16) * d. */
static void dq_q5_0(const uint8_t *b, int64_t nb, float *y)
{
    for (int64_t i = 0; i < nb; i++, b += 22, y += 32) {
        float d = h2f(b);
        uint32_t qh;
        memcpy(&qh, b + 2, 4);
        for (int j = 0; j < 16; j++) {
            int x0 = (b[6 + j] & 15) | (int)(((qh >> j) & 1) << 4);
            int x1 = (b[6 + j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
            y[j] = (x0 - 16) * d;
            y[j + 16] = (x1 - 16) * d;
        }
    }
}

static void dq_q5_1(const uint8_t *b, int64_t nb, float *y)
{
    for (int64_t i = 0; i < nb; i++, b += 24, y += 32) {
        float d = h2f(b), m = h2f(b + 2);
        uint32_t qh;
        memcpy(&qh, b + 4, 4);
        for (int j = 0; j < 16; j++) {
            int x0 = (b[8 + j] & 15) | (int)(((qh >> j) & 1) << 4);
            int x1 = (b[8 + j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
            y[j] = x0 * d + m;
            y[j + 16] = x1 * d + m;
        }
    }
}

static void dq_q8_0(const uint8_t *b, int64_t nb, float *y)
{
    for (int64_t i = 0; i < nb; i++, b += 34, y += 32) {
        float d = h2f(b);
        for (int j = 0; j < 32; j++)
            y[j] = (int8_t)b[2 + j] * d;
    }
}

/* The 6-bit scale and min of sub-block j of a Q4_K/Q5_K block. */
static void scale_min_k4(int j, const uint8_t *s, int *sc, int *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* Q4_K: d, dmin, scales[12], qs[128]. */
static void dq_q4_k(const uint8_t *b, int64_t nb, float *y)
{
    for (int64_t i = 0; i < nb; i++, b += 144) {
        float d = h2f(b), dmin = h2f(b + 2);
        const uint8_t *s = b + 4, *q = b + 16;
        for (int c = 0; c < 4; c++, q += 32) {
            int sc0, m0, sc1, m1;
            scale_min_k4(2 * c, s, &sc0, &m0);
            scale_min_k4(2 * c + 1, s, &sc1, &m1);
            float d0 = d * sc0, mm0 = dmin * m0, d1 = d * sc1, mm1 = dmin * m1;
            for (int l = 0; l < 32; l++)
                *y++ = d0 * (q[l] & 15) - mm0;
            for (int l = 0; l < 32; l++)
                *y++ = d1 * (q[l] >> 4) - mm1;
        }
    }
}

/* Q5_K: d, dmin, scales[12], qh[32], qs[128]; chunk c takes its 5th bits
 * from qh bits 2c (low nibbles) and 2c+1 (high nibbles). */
static void dq_q5_k(const uint8_t *b, int64_t nb, float *y)
{
    for (int64_t i = 0; i < nb; i++, b += 176) {
        float d = h2f(b), dmin = h2f(b + 2);
        const uint8_t *s = b + 4, *qh = b + 16, *q = b + 48;
        for (int c = 0; c < 4; c++, q += 32) {
            int sc0, m0, sc1, m1;
            scale_min_k4(2 * c, s, &sc0, &m0);
            scale_min_k4(2 * c + 1, s, &sc1, &m1);
            float d0 = d * sc0, mm0 = dmin * m0, d1 = d * sc1, mm1 = dmin * m1;
            for (int l = 0; l < 32; l++)
                *y++ = d0 * ((q[l] & 15) + (((qh[l] >> (2 * c)) & 1) << 4)) - mm0;
            for (int l = 0; l < 32; l++)
                *y++ = d1 * ((q[l] >> 4) + (((qh[l] >> (2 * c + 1)) & 1) << 4)) - mm1;
        }
    }
}

/* Q6_K: ql[128], qh[64], scales[16] (int8), d. */
static void dq_q6_k(const uint8_t *b, int64_t nb, float *y)
{
    for (int64_t i = 0; i < nb; i++, b += 210) {
        float d = h2f(b + 208);
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t *sc = (const int8_t *)(b + 192);
        for (int half = 0; half < 2; half++, ql += 64, qh += 32, sc += 8, y += 128) {
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = ((ql[l] & 15) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = ((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * sc[is + 0] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
        }
    }
}

/* Q8_K: d (f32), qs[256] int8, bsums[16] (unused here). */
static void dq_q8_k(const uint8_t *b, int64_t nb, float *y)
{
    for (int64_t i = 0; i < nb; i++, b += 292, y += 256) {
        float d;
        memcpy(&d, b, 4);
        for (int j = 0; j < 256; j++)
            y[j] = d * (int8_t)b[4 + j];
    }
}

int kiln_gguf_dequant_supported(int type)
{
    switch (type) {
    case KILN_GGML_F32: case KILN_GGML_F16: case KILN_GGML_BF16: case KILN_GGML_Q4_0: case KILN_GGML_Q4_1:
    case KILN_GGML_Q5_0: case KILN_GGML_Q5_1: case KILN_GGML_Q8_0: case KILN_GGML_Q4_K: case KILN_GGML_Q5_K:
    case KILN_GGML_Q6_K: case KILN_GGML_Q8_K:
        return 1;
    default:
        return 0;
    }
}

static int check_n(int type, int64_t n, const char *op, kiln_err *e)
{
    const char *name = kiln_ggml_type_name(type);
    size_t be = kiln_ggml_type_block_elems(type);
    if (!be)
        return kiln_fail(e, KILN_E_INVALID, "%s: unknown ggml type %d", op, type);
    if (n < 0 || n % (int64_t)be)
        return kiln_fail(e, KILN_E_INVALID, "%s %s: %lld elements is not a multiple of the block size %zu", op, name,
                         (long long)n, be);
    return 0;
}

int kiln_gguf_dequant_row(int type, const void *src, int64_t n, float *dst, kiln_err *e)
{
    if (check_n(type, n, "dequantize", e))
        return KILN_E_INVALID;
    const uint8_t *b = src;
    switch (type) {
    case KILN_GGML_F32: memcpy(dst, src, (size_t)n * 4); break;
    case KILN_GGML_F16:
        for (int64_t i = 0; i < n; i++)
            dst[i] = h2f(b + 2 * i);
        break;
    case KILN_GGML_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, b + 2 * i, 2);
            dst[i] = kiln_bf16_to_f32(h);
        }
        break;
    case KILN_GGML_Q4_0: dq_q4_0(b, n / 32, dst); break;
    case KILN_GGML_Q4_1: dq_q4_1(b, n / 32, dst); break;
    case KILN_GGML_Q5_0: dq_q5_0(b, n / 32, dst); break;
    case KILN_GGML_Q5_1: dq_q5_1(b, n / 32, dst); break;
    case KILN_GGML_Q8_0: dq_q8_0(b, n / 32, dst); break;
    case KILN_GGML_Q4_K: dq_q4_k(b, n / 256, dst); break;
    case KILN_GGML_Q5_K: dq_q5_k(b, n / 256, dst); break;
    case KILN_GGML_Q6_K: dq_q6_k(b, n / 256, dst); break;
    case KILN_GGML_Q8_K: dq_q8_k(b, n / 256, dst); break;
    default:
        return kiln_fail(e, KILN_E_INVALID, "dequantize: tensor type %s is not supported",
                         kiln_ggml_type_name(type));
    }
    return 0;
}

int kiln_gguf_quant_row(int type, const float *src, int64_t n, void *dst, kiln_err *e)
{
    if (check_n(type, n, "quantize", e))
        return KILN_E_INVALID;
    uint8_t *b = dst;
    const float *x = src;
    switch (type) {
    case KILN_GGML_F32: memcpy(dst, src, (size_t)n * 4); return 0;
    case KILN_GGML_F16:
        for (int64_t i = 0; i < n; i++)
            f2h(b + 2 * i, x[i]);
        return 0;
    case KILN_GGML_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = kiln_f32_to_bf16(x[i]);
            memcpy(b + 2 * i, &h, 2);
        }
        return 0;
    case KILN_GGML_Q4_0:
        for (int64_t i = 0; i < n / 32; i++, x += 32, b += 18) {
            float amax = 0, max = 0;
            for (int j = 0; j < 32; j++)
                if (fabsf(x[j]) > amax) {
                    amax = fabsf(x[j]);
                    max = x[j];
                }
            float d = max / -8, id = d ? 1.0f / d : 0.0f;
            f2h(b, d);
            for (int j = 0; j < 16; j++) {
                int q0 = (int)(x[j] * id + 8.5f), q1 = (int)(x[j + 16] * id + 8.5f);
                q0 = q0 > 15 ? 15 : q0 < 0 ? 0 : q0;
                q1 = q1 > 15 ? 15 : q1 < 0 ? 0 : q1;
                b[2 + j] = (uint8_t)(q0 | (q1 << 4));
            }
        }
        return 0;
    case KILN_GGML_Q4_1:
        for (int64_t i = 0; i < n / 32; i++, x += 32, b += 20) {
            float mn = x[0], mx = x[0];
            for (int j = 1; j < 32; j++) {
                mn = x[j] < mn ? x[j] : mn;
                mx = x[j] > mx ? x[j] : mx;
            }
            float d = (mx - mn) / 15, id = d ? 1.0f / d : 0.0f;
            f2h(b, d);
            f2h(b + 2, mn);
            for (int j = 0; j < 16; j++) {
                int q0 = (int)((x[j] - mn) * id + 0.5f), q1 = (int)((x[j + 16] - mn) * id + 0.5f);
                q0 = q0 > 15 ? 15 : q0 < 0 ? 0 : q0;
                q1 = q1 > 15 ? 15 : q1 < 0 ? 0 : q1;
                b[4 + j] = (uint8_t)(q0 | (q1 << 4));
            }
        }
        return 0;
    case KILN_GGML_Q8_0:
        for (int64_t i = 0; i < n / 32; i++, x += 32, b += 34) {
            float amax = 0;
            for (int j = 0; j < 32; j++)
                amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
            float d = amax / 127, id = d ? 1.0f / d : 0.0f;
            f2h(b, d);
            for (int j = 0; j < 32; j++)
                b[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
        }
        return 0;
    default:
        return kiln_fail(e, KILN_E_INVALID, "quantize: tensor type %s is not supported", kiln_ggml_type_name(type));
    }
}

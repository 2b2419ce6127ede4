/* kernels/quant.c - Kiln's quantized weight layout: see quant.h. */
#include "kernels/quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/f16.h"

int kiln_quant_is_int4(int q) { return q == KILN_Q4F16_1 || q == KILN_Q4_0 || q == KILN_Q4_1; }

static int elems_per_word(int q) { return kiln_quant_is_int4(q) ? 8 : q == KILN_Q8_0 ? 4 : q == KILN_F16 ? 2 : 1; }

static int zero_code(int q) { return q == KILN_Q4F16_1 ? 7 : q == KILN_Q4_0 ? 8 : 0; }

int kiln_qmatrix_shape(kiln_qmatrix *q, int quant, int group, int64_t rows, int64_t cols, kiln_err *e)
{
    memset(q, 0, sizeof *q);
    int quantized = kiln_quant_is_int4(quant) || quant == KILN_Q8_0;
    if (quant < 0 || quant >= KILN_QUANT_COUNT)
        return kiln_fail(e, KILN_E_INVALID, "qmatrix: unknown format %d", quant);
    if (quantized && group != 32 && group != 128)
        return kiln_fail(e, KILN_E_INVALID, "qmatrix: %s needs group 32 or 128, not %d", kiln_quant_name(quant), group);
    if (rows <= 0 || cols <= 0 || rows > (1LL << 31) || cols > (1LL << 31))
        return kiln_fail(e, KILN_E_INVALID, "qmatrix: bad shape %lld x %lld", (long long)rows, (long long)cols);
    q->quant = quant;
    q->group = quantized ? group : 0;
    q->rows = rows;
    q->cols = cols;
    q->cols_pad = quantized ? (cols + group - 1) / group * group : cols;
    int epw = elems_per_word(quant);
    q->words_per_row = (q->cols_pad + epw - 1) / epw;
    q->groups_per_row = quantized ? q->cols_pad / group : 0;
    return 0;
}

int kiln_qmatrix_alloc(kiln_qmatrix *q, int quant, int group, int64_t rows, int64_t cols, kiln_err *e)
{
    int rc = kiln_qmatrix_shape(q, quant, group, rows, cols, e);
    if (rc)
        return rc;
    int quantized = q->group != 0;
    q->qs = calloc((size_t)(rows * q->words_per_row), 4);
    if (quantized)
        q->scales = calloc((size_t)(rows * q->groups_per_row), 2);
    if (quant == KILN_Q4_1)
        q->mins = calloc((size_t)(rows * q->groups_per_row), 2);
    if (!q->qs || (quantized && !q->scales) || (quant == KILN_Q4_1 && !q->mins)) {
        kiln_qmatrix_free(q);
        return kiln_fail(e, KILN_E_NOMEM, "qmatrix: cannot allocate %lld x %lld %s", (long long)rows, (long long)cols,
                         kiln_quant_name(quant));
    }
    if (quantized && zero_code(quant)) /* padding holds the zero code */
        for (int64_t r = 0; r < rows; r++)
            for (int64_t k = cols; k < q->cols_pad; k++)
                q->qs[r * q->words_per_row + k / 8] |= (uint32_t)zero_code(quant) << (4 * (k % 8));
    return 0;
}

void kiln_qmatrix_free(kiln_qmatrix *q)
{
    free(q->qs);
    free(q->scales);
    free(q->mins);
    q->qs = NULL;
    q->scales = q->mins = NULL;
}

size_t kiln_qmatrix_qs_bytes(const kiln_qmatrix *q) { return (size_t)(q->rows * q->words_per_row) * 4; }
size_t kiln_qmatrix_scale_bytes(const kiln_qmatrix *q) { return (size_t)(q->rows * q->groups_per_row) * 2; }

static void set_code(kiln_qmatrix *q, int64_t r, int64_t k, int code)
{
    uint32_t *w = &q->qs[r * q->words_per_row];
    if (kiln_quant_is_int4(q->quant)) {
        uint32_t sh = 4 * (uint32_t)(k % 8);
        w[k / 8] = (w[k / 8] & ~(0xFu << sh)) | ((uint32_t)code & 0xF) << sh;
    } else { /* q8_0 */
        uint32_t sh = 8 * (uint32_t)(k % 4);
        w[k / 4] = (w[k / 4] & ~(0xFFu << sh)) | ((uint32_t)code & 0xFF) << sh;
    }
}

int kiln_qmatrix_code(const kiln_qmatrix *q, int64_t r, int64_t k)
{
    const uint32_t *w = &q->qs[r * q->words_per_row];
    if (kiln_quant_is_int4(q->quant))
        return (int)(w[k / 8] >> (4 * (k % 8)) & 0xF);
    if (q->quant == KILN_Q8_0)
        return (int)(int8_t)(w[k / 4] >> (8 * (k % 4)) & 0xFF);
    return 0;
}

static void set_plain(kiln_qmatrix *q, int64_t r, int64_t k, float v)
{
    uint32_t *w = &q->qs[r * q->words_per_row];
    if (q->quant == KILN_F32) {
        memcpy(&w[k], &v, 4);
    } else {
        uint32_t h = kiln_f32_to_f16(v), sh = 16 * (uint32_t)(k % 2);
        w[k / 2] = (w[k / 2] & ~(0xFFFFu << sh)) | h << sh;
    }
}

void kiln_dequantize_row(const kiln_qmatrix *q, int64_t r, float *out)
{
    const uint32_t *w = &q->qs[r * q->words_per_row];
    for (int64_t k = 0; k < q->cols; k++) {
        if (q->quant == KILN_F32) {
            memcpy(&out[k], &w[k], 4);
            continue;
        }
        if (q->quant == KILN_F16) {
            out[k] = kiln_f16_to_f32((uint16_t)(w[k / 2] >> (16 * (k % 2))));
            continue;
        }
        int64_t g = r * q->groups_per_row + k / q->group;
        float s = kiln_f16_to_f32(q->scales[g]);
        int c = kiln_qmatrix_code(q, r, k);
        switch (q->quant) {
        case KILN_Q4F16_1: out[k] = (float)(c - 7) * s; break;
        case KILN_Q4_0: out[k] = (float)(c - 8) * s; break;
        case KILN_Q4_1: out[k] = (float)c * s + kiln_f16_to_f32(q->mins[g]); break;
        default: out[k] = (float)c * s; break; /* q8_0 */
        }
    }
}

void kiln_quantize(const float *w, kiln_qmatrix *q)
{
    for (int64_t r = 0; r < q->rows; r++) {
        const float *row = w + r * q->cols;
        if (q->quant == KILN_F16 || q->quant == KILN_F32) {
            for (int64_t k = 0; k < q->cols; k++)
                set_plain(q, r, k, row[k]);
            continue;
        }
        for (int64_t g = 0; g < q->groups_per_row; g++) {
            int64_t k0 = g * q->group, k1 = k0 + q->group < q->cols ? k0 + q->group : q->cols;
            float amax = 0, vmax = 0, lo = INFINITY, hi = -INFINITY;
            for (int64_t k = k0; k < k1; k++) {
                if (fabsf(row[k]) > amax) {
                    amax = fabsf(row[k]);
                    vmax = row[k];
                }
                lo = fminf(lo, row[k]);
                hi = fmaxf(hi, row[k]);
            }
            float d;
            int zc = zero_code(q->quant), qmax = 15;
            switch (q->quant) {
            case KILN_Q4F16_1: d = amax / 7; qmax = 14; break;
            case KILN_Q4_0: d = vmax / -8; break; /* GGUF Q4_0: the largest magnitude maps to -8 */
            case KILN_Q4_1: d = (hi - lo) / 15; break;
            default: d = amax / 127; break;
            }
            uint16_t dh = kiln_f32_to_f16(d), mh = kiln_f32_to_f16(lo);
            q->scales[r * q->groups_per_row + g] = dh;
            if (q->mins)
                q->mins[r * q->groups_per_row + g] = mh;
            float dq = kiln_f16_to_f32(dh), m = q->quant == KILN_Q4_1 ? kiln_f16_to_f32(mh) : 0;
            float id = dq != 0 ? 1.0f / dq : 0;
            for (int64_t k = k0; k < k1; k++) {
                int c;
                if (q->quant == KILN_Q8_0) {
                    c = (int)lrintf(row[k] * id);
                    c = c < -127 ? -127 : c > 127 ? 127 : c;
                } else {
                    c = (int)lrintf((row[k] - m) * id) + (q->quant == KILN_Q4_1 ? 0 : zc);
                    c = c < 0 ? 0 : c > qmax ? qmax : c;
                }
                set_code(q, r, k, c);
            }
        }
    }
}

void kiln_qmatrix_random(kiln_qmatrix *q, kiln_rng *rng)
{
    for (int64_t r = 0; r < q->rows; r++) {
        if (q->quant == KILN_F16 || q->quant == KILN_F32) {
            for (int64_t k = 0; k < q->cols; k++)
                set_plain(q, r, k, kiln_rng_normal(rng) * 0.05f);
            continue;
        }
        for (int64_t k = 0; k < q->cols; k++) {
            int c;
            switch (q->quant) {
            case KILN_Q4F16_1: c = (int)kiln_rng_below(rng, 15); break;
            case KILN_Q8_0: c = (int)kiln_rng_below(rng, 255) - 127; break;
            default: c = (int)kiln_rng_below(rng, 16); break;
            }
            set_code(q, r, k, c);
        }
        for (int64_t g = 0; g < q->groups_per_row; g++) {
            /* magnitudes over ~3 octaves, mixed signs, 1 in 16 groups an outlier */
            float s = (0.25f + (float)kiln_rng_f64(rng)) * 0.01f;
            if (kiln_rng_below(rng, 16) == 0)
                s *= 16;
            if (kiln_rng_below(rng, 4) == 0)
                s = -s;
            q->scales[r * q->groups_per_row + g] = kiln_f32_to_f16(s);
            if (q->mins)
                q->mins[r * q->groups_per_row + g] = kiln_f32_to_f16(kiln_rng_normal(rng) * 0.05f);
        }
    }
}

/* GGUF blocks of 32: Q4_0 {d, qs[16]}, Q4_1 {d, m, qs[16]}, Q8_0 {d, qs[32]};
 * in the 4-bit ones byte j holds element j (low nibble) and j+16 (high). */
enum { GGML_Q4_0 = 2, GGML_Q4_1 = 3, GGML_Q8_0 = 8 };

static int repack_check(const kiln_qmatrix *q, int64_t row, int t, kiln_err *e)
{
    int want = t == GGML_Q4_0 ? KILN_Q4_0 : t == GGML_Q4_1 ? KILN_Q4_1 : t == GGML_Q8_0 ? KILN_Q8_0 : -1;
    if (want < 0)
        return kiln_fail(e, KILN_E_INVALID, "repack: ggml type %d is not Q4_0/Q4_1/Q8_0", t);
    if (q->quant != want || q->group != 32 || q->cols % 32)
        return kiln_fail(e, KILN_E_INVALID, "repack: ggml type %d needs a %s group-32 matrix with cols %% 32 == 0", t,
                         kiln_quant_name(want));
    if (row < 0 || row >= q->rows)
        return kiln_fail(e, KILN_E_INVALID, "repack: row %lld out of range", (long long)row);
    return 0;
}

/* The reference: one code at a time through set_code (what the tests compare
 * kiln_repack_from_gguf with). */
int kiln_repack_from_gguf_ref(kiln_qmatrix *q, int64_t row, int t, const void *blocks, kiln_err *e)
{
    int rc = repack_check(q, row, t, e);
    if (rc)
        return rc;
    const uint8_t *b = blocks;
    size_t bsz = t == GGML_Q4_0 ? 18 : t == GGML_Q4_1 ? 20 : 34;
    for (int64_t g = 0; g < q->cols / 32; g++, b += bsz) {
        uint16_t d, m = 0;
        memcpy(&d, b, 2);
        q->scales[row * q->groups_per_row + g] = d;
        if (t == GGML_Q4_1) {
            memcpy(&m, b + 2, 2);
            q->mins[row * q->groups_per_row + g] = m;
        }
        const uint8_t *qs = b + (t == GGML_Q4_1 ? 4 : 2);
        for (int j = 0; j < 32; j++) {
            int c = t == GGML_Q8_0 ? (int8_t)qs[j] : j < 16 ? qs[j] & 0xF : qs[j - 16] >> 4;
            set_code(q, row, g * 32 + j, c);
        }
    }
    return 0;
}

/* One 4-bit GGUF block's 16 code bytes q (byte j: element j low, j + 16
 * high) as Kiln's four words (elements 8w .. 8w + 7 in word w). As bytes:
 * out[j] = q[2j] low | q[2j+1] low << 4 (elements 2j, 2j+1) and
 * out[8+j] = q[2j] high | q[2j+1] high << 4 (elements 16+2j, 17+2j). */
#if defined(__SSE2__) && !defined(KILN_QUANT_PORTABLE) /* tests build the portable one too */
#include <emmintrin.h>

/* SSE2 (every x86-64): 16-bit lanes hold the pair q[2j], q[2j+1]; both
 * output bytes of each lane are formed at once and packed. 2.5x the
 * portable version below on AMD EPYC (20 vs 8 GB/s of blocks from cache). */
static inline void repack_q4_block(const uint8_t *q, uint32_t *w)
{
    const __m128i m0f = _mm_set1_epi16(0x0F), mf0 = _mm_set1_epi16(0xF0), mff = _mm_set1_epi16(0xFF);
    __m128i v = _mm_loadu_si128((const __m128i *)q);
    __m128i even = _mm_and_si128(v, mff), odd = _mm_srli_epi16(v, 8);
    __m128i lo = _mm_or_si128(_mm_and_si128(even, m0f), _mm_slli_epi16(_mm_and_si128(odd, m0f), 4));
    __m128i hi = _mm_or_si128(_mm_srli_epi16(even, 4), _mm_and_si128(odd, mf0));
    _mm_storeu_si128((__m128i *)w, _mm_packus_epi16(lo, hi));
}
#else
/* Eight nibbles, one in the low half of each byte of v (byte i = element i),
 * packed into one word with element i at bit 4*i: three shift-or-mask steps
 * halve the spacing (8 -> 4 bits in 16-bit lanes, then 32-bit, then 64-bit). */
static inline uint32_t pack_nibbles(uint64_t v)
{
    v = (v | v >> 4) & 0x00FF00FF00FF00FFull;
    v = (v | v >> 8) & 0x0000FFFF0000FFFFull;
    return (uint32_t)(v | v >> 16);
}

static inline void repack_q4_block(const uint8_t *q, uint32_t *w)
{
    uint64_t a, b;
    memcpy(&a, q, 8);
    memcpy(&b, q + 8, 8);
    const uint64_t lo = 0x0F0F0F0F0F0F0F0Full;
    w[0] = pack_nibbles(a & lo);
    w[1] = pack_nibbles(b & lo);
    w[2] = pack_nibbles(a >> 4 & lo);
    w[3] = pack_nibbles(b >> 4 & lo);
}
#endif

/* Word-at-a-time: the hot loop of a model load (every weight of a Q4_0/Q4_1
 * model passes through it). Q8_0 codes are already Kiln's bytes in Kiln's
 * order (little-endian words), so a block is one copy. */
int kiln_repack_from_gguf(kiln_qmatrix *q, int64_t row, int t, const void *blocks, kiln_err *e)
{
    int rc = repack_check(q, row, t, e);
    if (rc)
        return rc;
    const uint8_t *b = blocks;
    int64_t n_groups = q->cols / 32;
    uint32_t *w = &q->qs[row * q->words_per_row];
    uint16_t *sc = &q->scales[row * q->groups_per_row];
    if (t == GGML_Q8_0) {
        for (int64_t g = 0; g < n_groups; g++, b += 34) {
            memcpy(&sc[g], b, 2);
            memcpy(&w[g * 8], b + 2, 32);
        }
    } else if (t == GGML_Q4_0) {
        for (int64_t g = 0; g < n_groups; g++, b += 18) {
            memcpy(&sc[g], b, 2);
            repack_q4_block(b + 2, &w[g * 4]);
        }
    } else {
        uint16_t *mn = &q->mins[row * q->groups_per_row];
        for (int64_t g = 0; g < n_groups; g++, b += 20) {
            memcpy(&sc[g], b, 2);
            memcpy(&mn[g], b + 2, 2);
            repack_q4_block(b + 4, &w[g * 4]);
        }
    }
    return 0;
}

int kiln_repack_to_gguf(const kiln_qmatrix *q, int64_t row, int t, void *blocks, kiln_err *e)
{
    int rc = repack_check(q, row, t, e);
    if (rc)
        return rc;
    uint8_t *b = blocks;
    size_t bsz = t == GGML_Q4_0 ? 18 : t == GGML_Q4_1 ? 20 : 34;
    for (int64_t g = 0; g < q->cols / 32; g++, b += bsz) {
        memcpy(b, &q->scales[row * q->groups_per_row + g], 2);
        if (t == GGML_Q4_1)
            memcpy(b + 2, &q->mins[row * q->groups_per_row + g], 2);
        uint8_t *qs = b + (t == GGML_Q4_1 ? 4 : 2);
        if (t == GGML_Q8_0) {
            for (int j = 0; j < 32; j++)
                qs[j] = (uint8_t)(int8_t)kiln_qmatrix_code(q, row, g * 32 + j);
        } else {
            for (int j = 0; j < 16; j++)
                qs[j] = (uint8_t)(kiln_qmatrix_code(q, row, g * 32 + j) | kiln_qmatrix_code(q, row, g * 32 + j + 16) << 4);
        }
    }
    return 0;
}

/* kernels/act_q8.h - activations quantized to int8 per block of 32 (the
 * `act 1` schedules of the matrix kernels, shape.act == KILN_ACT_Q8).
 *
 * The numerical contract, shared by every kernel and its reference: x is cut
 * into blocks of 32 (zeros past K); per block amax = max|x|, d = amax / 127,
 * q = round-to-nearest-even(x * (127 / amax)) (0 where amax is 0). The
 * kernel then computes exactly W . (q * d) up to f32 rounding, so its check
 * stays as tight as the f32 path's; what the user gives up is the x
 * rounding itself (kiln perplexity measures it end to end).
 *
 * Device layout of a quantized x (one scratch buffer, nb4 = blocks rounded
 * up to 4, W = nb4 * 4 words of int4 weights or nb4 * 8 of q8 weights):
 *   int4 weights (8 per u32 word, element j of word w at bits 4j):
 *     xe  int8[W][4]  at 0          xe[w] = q of elements 8w+0, +2, +4, +6
 *     xo  int8[W][4]  at nb4 * 16   xo[w] = q of elements 8w+1, +3, +5, +7
 *   q8_0 weights (4 per word): xq int8[nb4 * 32] at 0, in element order
 *   then, for both:
 *     d   f32[nb4]    at nb4 * 32   block scales
 *     s   f32[nb4]    at nb4 * 36   d * sum(q) of the block (zero points, mins)
 *     n   i32[nb4]    at nb4 * 40   sum(q) of the block (zero points in integers)
 * so the low nibbles of a weight word meet xe[w] and the high nibbles xo[w]
 * in one 4-byte lane of an integer dot product (vpdpbusd, maddubs+madd). */
#ifndef KILN_KERNELS_ACT_Q8_H
#define KILN_KERNELS_ACT_Q8_H

#include <stddef.h>
#include <stdint.h>

#include "devices/device.h"

enum { KILN_XQ_INT4 = 0, KILN_XQ_Q8 = 1 }; /* which weight words the layout pairs with */

/* Blocks of 32 covering k, rounded up to a multiple of 4. */
static inline int64_t kiln_xq_nb4(int64_t k) { return ((k + 31) / 32 + 3) / 4 * 4; }
static inline size_t kiln_xq_bytes(int64_t k) { return (size_t)kiln_xq_nb4(k) * 44; }

/* The contract for one block: q[0..32) and d from x[0..n) (n <= 32; the rest
 * is zero). The reference of every act-1 kernel uses this function. */
void kiln_act_q8_block(const float *x, int n, int8_t q[32], float *d);

/* x[k] -> the layout above, with the fastest path isa allows (all paths
 * produce the same bytes). fmt: KILN_XQ_INT4 or KILN_XQ_Q8. */
void kiln_act_q8_pack(const float *x, int64_t k, int fmt, unsigned isa, void *out);

/* x rounded through the contract (q * d), for references: out[k]. */
void kiln_act_q8_roundtrip(const float *x, int64_t k, float *out);

/* The cpu entry "act_q8_cpu" (args: x [N][K], out, K, fmt; one workgroup
 * per token, token t's layout at t * kiln_xq_bytes(K)), for plans. */
struct kiln_plan_step;
/* A plan's first step: the n_tokens x rows of slot x_slot (f32 [N][k]) into
 * scratch buffer scratch, packed for weights of format quant. One token runs
 * on the calling thread alone (a few microseconds: no wake-up). */
void kiln_act_q8_plan_step(struct kiln_plan_step *st, const char *source, int x_slot, int scratch, int64_t k,
                           int quant, uint32_t n_tokens);
void kiln_act_q8_cpu(const kiln_cpu_launch *l, uint32_t wg_begin, uint32_t wg_end);

#endif

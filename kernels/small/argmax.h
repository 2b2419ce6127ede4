/* kernels/small/argmax.h - the order argmax keeps, for every kernel language
 * (small.cl and argmax_*.comp include it): (v, i) beats (bv, bi) when it is
 * larger, or equal and at a lower index, so ties go to the lowest index as in
 * the reference. */
#define BETTER(v, i, bv, bi) ((v) > (bv) || ((v) == (bv) && (i) < (bi)))

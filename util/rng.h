/* util/rng.h - small deterministic PRNG (xoshiro256**) for test inputs,
 * search strategies and sampling. State is always explicit. */
#ifndef KILN_UTIL_RNG_H
#define KILN_UTIL_RNG_H

#include <stdint.h>

typedef struct kiln_rng {
    uint64_t s[4];
} kiln_rng;

void kiln_rng_seed(kiln_rng *r, uint64_t seed);
uint64_t kiln_rng_u64(kiln_rng *r);
/* uniform in [0, 1) */
double kiln_rng_f64(kiln_rng *r);
/* uniform in [lo, hi) */
float kiln_rng_uniform(kiln_rng *r, float lo, float hi);
/* standard normal (Box-Muller) */
float kiln_rng_normal(kiln_rng *r);
/* uniform integer in [0, n) */
uint32_t kiln_rng_below(kiln_rng *r, uint32_t n);

#endif

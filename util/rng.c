/* util/rng.c - xoshiro256** seeded by splitmix64. */
#include "rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void kiln_rng_seed(kiln_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t kiln_rng_u64(kiln_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double kiln_rng_f64(kiln_rng *r) { return (double)(kiln_rng_u64(r) >> 11) * 0x1.0p-53; }

float kiln_rng_uniform(kiln_rng *r, float lo, float hi)
{
    return lo + (hi - lo) * (float)kiln_rng_f64(r);
}

float kiln_rng_normal(kiln_rng *r)
{
    double u1 = kiln_rng_f64(r), u2 = kiln_rng_f64(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

uint32_t kiln_rng_below(kiln_rng *r, uint32_t n)
{
    return n ? (uint32_t)((kiln_rng_u64(r) >> 32) * (uint64_t)n >> 32) : 0;
}

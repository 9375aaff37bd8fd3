/* rng.h — the sampler's pseudo-random generator: xoshiro256** (Blackman &
 * Vigna) with its state seeded by four outputs of splitmix64(seed). Chosen
 * because it is small, fast, well studied and fully specified, so a seed
 * means the same stream on every platform; each reply owns one (no global
 * state). */
#ifndef Q35_RUNTIME_RNG_H
#define Q35_RUNTIME_RNG_H

#include <stdint.h>

typedef struct q35_rng {
    uint64_t s[4];
} q35_rng;

void q35_rng_seed(q35_rng *r, uint64_t seed);
uint64_t q35_rng_next(q35_rng *r);
/* A double in [0, 1): the top 53 bits of the next output times 2^-53. */
double q35_rng_uniform(q35_rng *r);

#endif

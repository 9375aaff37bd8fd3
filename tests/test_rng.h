/* test_rng.h — the fixed-seed generator of the mutation tests
 * (xorshift64*): the same mutants on every run and every machine, so a
 * failure names a mutant that can be replayed. Header-only. */
#ifndef Q35_TEST_RNG_H
#define Q35_TEST_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct rng {
    uint64_t s; /* any non-zero seed */
} rng;

static inline uint64_t next(rng *r) {
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545f4914f6cdd1dull;
}

/* Uniform enough in [0, n) for choosing mutants; 0 when n is 0. */
static inline size_t below(rng *r, size_t n) {
    return n ? (size_t)(next(r) % n) : 0;
}

#endif

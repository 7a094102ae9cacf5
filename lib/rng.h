/* rng.h - the library's seeded PRNG (xoshiro256** seeded with splitmix64), shared by training and data splits. */
#ifndef RNG_H
#define RNG_H

#include <stddef.h>
#include <stdint.h>

/* One splitmix64 step: advances *state and returns the next value. */
uint64_t rng_splitmix64(uint64_t *state);
/* xoshiro256** state s[4] from a 64-bit seed (four splitmix64 steps). */
void rng_seed(uint64_t seed, uint64_t s[4]);
uint64_t rng_next(uint64_t s[4]);
/* Uniform double in [0, 1) from the top 53 bits. */
double rng_uniform(uint64_t s[4]);
/* Uniform in [0, n), n >= 1, unbiased (rejection). */
size_t rng_below(uint64_t s[4], size_t n);
/* Fisher-Yates shuffle of a[0..n). */
void rng_shuffle(uint64_t s[4], size_t *a, size_t n);

#endif

/* rng.c - xoshiro256** seeded with splitmix64: reproducible across runs and machines. */
#include "rng.h"

uint64_t rng_splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void rng_seed(uint64_t seed, uint64_t s[4]) {
    for (int i = 0; i < 4; i++) s[i] = rng_splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

uint64_t rng_next(uint64_t s[4]) {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

double rng_uniform(uint64_t s[4]) {
    return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

size_t rng_below(uint64_t s[4], size_t n) {
    uint64_t lim = UINT64_MAX - UINT64_MAX % (uint64_t)n, r;
    do r = rng_next(s);
    while (r >= lim);
    return (size_t)(r % (uint64_t)n);
}

void rng_shuffle(uint64_t s[4], size_t *a, size_t n) {
    for (size_t i = n; i > 1; i--) {
        size_t j = rng_below(s, i), tmp = a[i - 1];
        a[i - 1] = a[j];
        a[j] = tmp;
    }
}

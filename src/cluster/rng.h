/*
 * rng.h - the seeded pseudo-random generator of the cluster state machines
 * (STYLE.md 1.6: src/cluster never uses libc randomness; the caller
 * seeds).
 *
 * SplitMix64 (Steele, Lea, Flood: "Fast splittable pseudorandom number
 * generators", OOPSLA 2014): a 64-bit counter advanced by the golden-ratio
 * increment and passed through a bijective mixer.  Every seed, including 0,
 * gives a full-period stream, so the same seed replays the same run (the
 * deterministic simulator of TESTING.md B3 relies on it).  Not for
 * cryptography.  A struct rk_rng is owned by one state machine; thread: that
 * machine's thread.
 */
#ifndef RINGKV_CLUSTER_RNG_H
#define RINGKV_CLUSTER_RNG_H

#include <stdint.h>

struct rk_rng
{
    uint64_t state; /* advanced by 0x9e3779b97f4a7c15 per draw */
};

/* Seeds `r`; any value is fine. */
static inline void rk_rng_seed(struct rk_rng *r, uint64_t seed)
{
    r->state = seed;
}

/* Next 64 random bits. */
static inline uint64_t rk_rng_next(struct rk_rng *r)
{
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/*
 * Uniform integer in [0, bound), bound >= 1 (0 gives 0).  Lemire's
 * multiply-shift with rejection, so there is no modulo bias.
 */
static inline uint64_t rk_rng_below(struct rk_rng *r, uint64_t bound)
{
    if (bound <= 1) {
        return 0;
    }
    uint64_t threshold = (0 - bound) % bound;
    for (;;) {
        uint64_t x = rk_rng_next(r);
        __uint128_t m = (__uint128_t)x * bound;
        if ((uint64_t)m >= threshold) {
            return (uint64_t)(m >> 64);
        }
    }
}

#endif /* RINGKV_CLUSTER_RNG_H */

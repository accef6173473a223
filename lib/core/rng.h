/* A small seeded random generator (xoshiro256**, seeded through splitmix64) for weight
 * initialisation, shuffling, dropout and sampling. Its whole state is four 64-bit words, so a
 * checkpoint can store it and a resumed run continues the same sequence. */
#ifndef CAP_TRAIN_RNG_H
#define CAP_TRAIN_RNG_H
#include <stdint.h>

typedef struct cap_rng { uint64_t s[4]; } cap_rng;

void cap_rng_seed(cap_rng *r, uint64_t seed);
uint64_t cap_rng_u64(cap_rng *r);
/* Uniform in [0, 1) with 24 random bits (exactly representable as float). */
float cap_rng_uniform(cap_rng *r);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint64_t cap_rng_below(cap_rng *r, uint64_t n);
/* Standard normal (Box-Muller in double). */
double cap_rng_normal(cap_rng *r);
/* One step of splitmix64 from z: the golden-ratio increment, then the finaliser, a bijection
 * that spreads every bit of its input over the output (seeding, per-caption seeds, hash keys). */
static inline uint64_t cap_mix64(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}
#endif

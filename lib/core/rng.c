/* xoshiro256** (Blackman and Vigna), written from the published description. */
#include "core/rng.h"
#include <math.h>

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void cap_rng_seed(cap_rng *r, uint64_t seed)
{
	/* splitmix64 spreads any seed (also 0) over the four words, which must not all be 0. */
	for (int i = 0; i < 4; i++, seed += 0x9e3779b97f4a7c15ull)
		r->s[i] = cap_mix64(seed);
}

uint64_t cap_rng_u64(cap_rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
	s[2] ^= t; s[3] = rotl(s[3], 45);
	return out;
}

float cap_rng_uniform(cap_rng *r) { return (float)(cap_rng_u64(r) >> 40) * (1.0f / 16777216.0f); }

uint64_t cap_rng_below(cap_rng *r, uint64_t n)
{
	uint64_t lim = -n % n; /* 2^64 mod n: reject the short last interval */
	for (;;) {
		uint64_t x = cap_rng_u64(r);
		if (x >= lim)
			return x % n;
	}
}

double cap_rng_normal(cap_rng *r)
{
	double u1 = ((cap_rng_u64(r) >> 11) + 1.0) * (1.0 / 9007199254740992.0); /* (0, 1] */
	double u2 = (cap_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
	return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

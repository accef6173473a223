/* bfloat16 as the host backends define it: round to nearest, ties to even, on the bits of a
 * float (the rounding AVX512-BF16's vcvtne2ps2bf16 and oneDNN's reorders do). One definition,
 * so that ref's bf16 GEMM and encoder and the cpu backend's conversions agree. */
#ifndef CAP_OPS_BF16_H
#define CAP_OPS_BF16_H
#include <stdint.h>
#include <string.h>

/* The upper 16 bits of x rounded; NaN stays a (quiet) NaN, infinities stay infinite. */
static inline uint16_t cap_bf16_from_float(float x)
{
	uint32_t u;
	memcpy(&u, &x, 4);
	if ((u & 0x7fffffffu) > 0x7f800000u)     /* NaN: keep it one after the truncation */
		return (uint16_t)((u >> 16) | 0x40u);
	u += 0x7fffu + ((u >> 16) & 1);
	return (uint16_t)(u >> 16);
}

static inline float cap_bf16_to_float(uint16_t b)
{
	uint32_t u = (uint32_t)b << 16;
	float x;
	memcpy(&x, &u, 4);
	return x;
}

/* x rounded to the nearest bfloat16, kept in a float. */
static inline float cap_bf16_round(float x) { return cap_bf16_to_float(cap_bf16_from_float(x)); }
#endif

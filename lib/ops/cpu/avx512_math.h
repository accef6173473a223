/* Vector exp, sigmoid and tanh on 16 float lanes for the cpu backend's AVX-512 kernels. exp is
 * a Cephes-style polynomial accurate to about 2 ulp, so these kernels agree with the libm
 * reference to float rounding, not bitwise (the tolerances of ops.h allow for it). */
#ifndef CAP_OPS_CPU_AVX512_MATH_H
#define CAP_OPS_CPU_AVX512_MATH_H
#include <immintrin.h>
#define AVX512 __attribute__((target("avx512f")))

/* exp(x) for float lanes: x = n ln2 + r, |r| <= ln2/2, exp(r) by the Cephes polynomial,
 * scaled by 2^n. Inputs are clamped to the float range (exp(-88) is 0 for our purposes). */
AVX512 static inline __m512 exp512(__m512 x)
{
	x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.7f));
	__m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
	                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
	r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
	__m512 p = _mm512_set1_ps(1.9875691500e-4f);
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
	p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
	return _mm512_scalef_ps(p, n);
}

AVX512 static inline __m512 sigm512(__m512 x)
{
	__m512 one = _mm512_set1_ps(1.0f);
	return _mm512_div_ps(one, _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

/* tanh(x) = sign(x) (1 - e) / (1 + e), e = exp(-2|x|). */
AVX512 static inline __m512 tanh512(__m512 x)
{
	__m512 ax = _mm512_abs_ps(x), one = _mm512_set1_ps(1.0f);
	__m512 e = exp512(_mm512_mul_ps(ax, _mm512_set1_ps(-2.0f)));
	__m512 t = _mm512_div_ps(_mm512_sub_ps(one, e), _mm512_add_ps(one, e));
	/* copy the sign of x */
	__m512i sign = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u));
	return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(t), sign));
}

#endif

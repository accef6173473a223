/* The cpu backend's vector kernels written once for two widths: 16 float lanes (AVX-512F) and 8
 * (AVX2 with FMA, what most laptops have; there the plain C kernels took a third of a training
 * step, mostly in libm's expf and tanhf). A kernel file defines VEC_WIDTH, includes this header
 * and then its kernels (a *_vec.h body without include guards), and does so once per width:
 * this header undefines what it defined before, so it can be included again.
 *
 *   VEC_FN(name)   the name at this width: cap_avx512_name or cap_avx2_name
 *   VEC_STATIC(name)  a file-local helper's name at this width
 *   VEC_TARGET     the target attribute every function using these must carry
 *   vf             the vector of VEC_WIDTH floats; the v* operations below on it
 *   vd             the vector of VD_WIDTH = VEC_WIDTH / 2 doubles (sums of floats in double)
 *
 * exp is a Cephes-style polynomial accurate to about 2 ulp, so kernels using it agree with the
 * libm reference to float rounding, not bitwise (the tolerances of ops.h allow for it). Kernels
 * that must be bitwise (Adam) use only add, mul, div and sqrt, which round as the scalar ones. */
#include <immintrin.h>

#undef VEC_FN
#undef VEC_STATIC
#undef VEC_TARGET
#undef vf
#undef vload
#undef vstore
#undef vset1
#undef vzero
#undef vadd
#undef vsub
#undef vmul
#undef vdiv
#undef vsqrt
#undef vmin
#undef vmax
#undef vfmadd
#undef vfnmadd
#undef vround
#undef vexp2i
#undef VEXP_HI
#undef VD_WIDTH
#undef vd
#undef vdzero
#undef vdadd
#undef vd_load_floats
#undef vd_store_floats

#if VEC_WIDTH == 16
#define VEC_FN(name) cap_avx512_##name
#define VEC_STATIC(name) name##_avx512
#define VEC_TARGET __attribute__((target("avx512f")))
#define vf __m512
#define vload _mm512_loadu_ps
#define vstore _mm512_storeu_ps
#define vset1 _mm512_set1_ps
#define vzero _mm512_setzero_ps
#define vadd _mm512_add_ps
#define vsub _mm512_sub_ps
#define vmul _mm512_mul_ps
#define vdiv _mm512_div_ps
#define vsqrt _mm512_sqrt_ps
#define vmin _mm512_min_ps
#define vmax _mm512_max_ps
#define vfmadd _mm512_fmadd_ps
#define vfnmadd _mm512_fnmadd_ps
#define vround(x) _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define vexp2i(p, n) _mm512_scalef_ps(p, n)   /* p 2^n */
#define VEXP_HI 88.7f
/* half as many doubles: sums of floats in double */
#define VD_WIDTH 8
#define vd __m512d
#define vdzero _mm512_setzero_pd
#define vdadd _mm512_add_pd
#define vd_load_floats(p) _mm512_cvtps_pd(_mm256_loadu_ps(p))        /* VD_WIDTH floats */
#define vd_store_floats(p, x) _mm256_storeu_ps(p, _mm512_cvtpd_ps(x))  /* rounded to float */
#elif VEC_WIDTH == 8
#define VEC_FN(name) cap_avx2_##name
#define VEC_STATIC(name) name##_avx2
#define VEC_TARGET __attribute__((target("avx2,fma")))
#define vf __m256
#define vload _mm256_loadu_ps
#define vstore _mm256_storeu_ps
#define vset1 _mm256_set1_ps
#define vzero _mm256_setzero_ps
#define vadd _mm256_add_ps
#define vsub _mm256_sub_ps
#define vmul _mm256_mul_ps
#define vdiv _mm256_div_ps
#define vsqrt _mm256_sqrt_ps
#define vmin _mm256_min_ps
#define vmax _mm256_max_ps
#define vfmadd _mm256_fmadd_ps
#define vfnmadd _mm256_fnmadd_ps
#define vround(x) _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
/* p 2^n through the exponent bits: n must stay within [-126, 127], hence the lower VEXP_HI
 * (exp(88.3) is already past every use here: the kernels' arguments are at most 0, or sigmoid's
 * -x, whose exp only needs to be huge) */
#define vexp2i(p, n) _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32( \
	_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23)))
#define VEXP_HI 88.3f
#define VD_WIDTH 4
#define vd __m256d
#define vdzero _mm256_setzero_pd
#define vdadd _mm256_add_pd
#define vd_load_floats(p) _mm256_cvtps_pd(_mm_loadu_ps(p))
#define vd_store_floats(p, x) _mm_storeu_ps(p, _mm256_cvtpd_ps(x))
#else
#error "VEC_WIDTH must be 16 or 8"
#endif

/* exp(x) lane by lane: x = n ln2 + r, |r| <= ln2/2, exp(r) by the Cephes polynomial, scaled by
 * 2^n. Inputs are clamped to the float range (exp(-87.3) is 0 for our purposes). */
VEC_TARGET static inline vf VEC_STATIC(vexp)(vf x)
{
	x = vmin(vmax(x, vset1(-87.3f)), vset1(VEXP_HI));
	vf n = vround(vmul(x, vset1(1.44269504088896341f)));
	vf r = vfnmadd(n, vset1(0.693359375f), x);
	r = vfnmadd(n, vset1(-2.12194440e-4f), r);
	vf p = vset1(1.9875691500e-4f);
	p = vfmadd(p, r, vset1(1.3981999507e-3f));
	p = vfmadd(p, r, vset1(8.3334519073e-3f));
	p = vfmadd(p, r, vset1(4.1665795894e-2f));
	p = vfmadd(p, r, vset1(1.6666665459e-1f));
	p = vfmadd(p, r, vset1(5.0000001201e-1f));
	p = vfmadd(p, vmul(r, r), vadd(r, vset1(1.0f)));
	return vexp2i(p, n);
}

VEC_TARGET static inline vf VEC_STATIC(vsigmoid)(vf x)
{
	vf one = vset1(1.0f);
	return vdiv(one, vadd(one, VEC_STATIC(vexp)(vsub(vzero(), x))));
}

/* tanh(x) = sign(x) (1 - e) / (1 + e), e = exp(-2|x|): |x| and the sign by the sign bit (the
 * float and/or of AVX-512 need AVX512DQ, hence the integer forms there). */
VEC_TARGET static inline vf VEC_STATIC(vtanh)(vf x)
{
	vf one = vset1(1.0f);
#if VEC_WIDTH == 16
	vf ax = _mm512_abs_ps(x);
#else
	vf ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
#endif
	vf e = VEC_STATIC(vexp)(vmul(ax, vset1(-2.0f)));
	vf t = vdiv(vsub(one, e), vadd(one, e));
#if VEC_WIDTH == 16
	__m512i sign = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u));
	return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(t), sign));
#else
	return _mm256_or_ps(t, _mm256_and_ps(x, _mm256_set1_ps(-0.0f)));
#endif
}

/* The largest lane, the sum of the lanes in float, and the sum of the lanes in double. */
VEC_TARGET static inline float VEC_STATIC(vhmax)(vf x)
{
#if VEC_WIDTH == 16
	return _mm512_reduce_max_ps(x);
#else
	__m128 m = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
	m = _mm_max_ps(m, _mm_movehl_ps(m, m));
	m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
	return _mm_cvtss_f32(m);
#endif
}

VEC_TARGET static inline float VEC_STATIC(vhsum)(vf x)
{
#if VEC_WIDTH == 16
	return _mm512_reduce_add_ps(x);
#else
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
	return _mm_cvtss_f32(s);
#endif
}

VEC_TARGET static inline double VEC_STATIC(vhsum_double)(vf x)
{
#if VEC_WIDTH == 16
	return _mm512_reduce_add_pd(_mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(x)),
	                            _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)))));
#else
	__m256d d = _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(x)), _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)));
	__m128d s = _mm_add_pd(_mm256_castpd256_pd128(d), _mm256_extractf128_pd(d, 1));
	s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
	return _mm_cvtsd_f64(s);
#endif
}

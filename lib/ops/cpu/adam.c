/* Adam and the sum of squares for clipping on AVX-512 and the backend's threads (see ops.h;
 * plain versions in lib/ops/ref/adam.c and lib/ops/ref/rows.c). */
#include "ops/cpu/cpu.h"
#include <math.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define AVX512 __attribute__((target("avx512f")))

/* The same operations in the same order as the scalar loop (no fused multiply-add), so both
 * give bitwise the same parameters. */
enum { BLOCK = 16384 };   /* elements a thread takes at a time */

AVX512 void cap_avx512_adam_band(float *param, const float *grad, float *m, float *v, size_t n,
                                 const cap_adam_consts *k)
{
	__m512 vb1 = _mm512_set1_ps(k->b1), vb2 = _mm512_set1_ps(k->b2), va1 = _mm512_set1_ps(k->one_b1),
	       va2 = _mm512_set1_ps(k->one_b2), vss = _mm512_set1_ps(-k->step_size),
	       vbc = _mm512_set1_ps(k->bc2_sqrt), veps = _mm512_set1_ps(k->eps);
	size_t i = 0;
	for (; i + 16 <= n; i += 16) {
		__m512 g = _mm512_loadu_ps(grad + i);
		__m512 mi = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(m + i), vb1), _mm512_mul_ps(va1, g));
		__m512 vi = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(v + i), vb2),
		                          _mm512_mul_ps(_mm512_mul_ps(va2, g), g));
		__m512 denom = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vi), vbc), veps);
		__m512 p = _mm512_add_ps(_mm512_loadu_ps(param + i), _mm512_mul_ps(vss, _mm512_div_ps(mi, denom)));
		_mm512_storeu_ps(m + i, mi);
		_mm512_storeu_ps(v + i, vi);
		_mm512_storeu_ps(param + i, p);
	}
	if (i < n)
		cap_ref_adam_step(param + i, grad + i, m + i, v + i, n - i, k);
}

/* Elementwise, so blocks on threads change nothing. */
void cap_avx512_adam_step(float *param, const float *grad, float *m, float *v, size_t n,
                          const cap_adam_consts *k)
{
	long nb = (long)((n + BLOCK - 1) / BLOCK);
	CAP_PARALLEL_FOR_IF(nb > 1)
	for (long b = 0; b < nb; b++) {
		size_t o = (size_t)b * BLOCK, len = n - o < BLOCK ? n - o : BLOCK;
		cap_avx512_adam_band(param + o, grad + o, m + o, v + o, len, k);
	}
}

AVX512 static double squares_block(const float *g, size_t n)
{
	__m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
	size_t i = 0;
	for (; i + 16 <= n; i += 16) {
		__m512d x0 = _mm512_cvtps_pd(_mm256_loadu_ps(g + i)), x1 = _mm512_cvtps_pd(_mm256_loadu_ps(g + i + 8));
		a0 = _mm512_fmadd_pd(x0, x0, a0);
		a1 = _mm512_fmadd_pd(x1, x1, a1);
	}
	double s = _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
	for (; i < n; i++)
		s += (double)g[i] * g[i];
	return s;
}

/* Per-block partial sums added in block order: the same value at any thread count. */
double cap_avx512_sum_squares(const float *g, size_t n)
{
	enum { MAXB = 1024 };
	size_t bs = n / MAXB + 1 > BLOCK ? n / MAXB + 1 : BLOCK;
	long nb = (long)((n + bs - 1) / bs);
	double part[MAXB];
	CAP_PARALLEL_FOR_IF(nb > 1)
	for (long b = 0; b < nb; b++) {
		size_t o = (size_t)b * bs;
		part[b] = squares_block(g + o, n - o < bs ? n - o : bs);
	}
	double s = 0;
	for (long b = 0; b < nb; b++)
		s += part[b];
	return s;
}

#endif

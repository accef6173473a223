/* Adam on AVX-512 and on AVX2 (one body, adam_vec.h, compiled at each width: see vec.h) and the
 * sum of squares for clipping on AVX-512, on the backend's threads (see ops.h; plain versions in
 * lib/ops/ref/adam.c and lib/ops/ref/rows.c). */
#include "ops/cpu/cpu.h"
#include <math.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define AVX512 __attribute__((target("avx512f")))

enum { ADAM_BLOCK = 16384 };   /* elements a thread takes at a time */
#define VEC_BODY "ops/cpu/adam_vec.h"
#include "ops/cpu/vec_widths.h"

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
	size_t bs = n / MAXB + 1 > ADAM_BLOCK ? n / MAXB + 1 : ADAM_BLOCK;
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

/* The fused softmax cross-entropy on AVX-512 (see ops.h; the plain version is
 * lib/ops/ref/softmax.c). */
#include "ops/cpu/cpu.h"
#include <math.h>
#if defined(__x86_64__)
#include "ops/cpu/avx512_math.h"

/* The largest of v[0..n) (-inf for none). */
AVX512 static float row_max(const float *v, int n)
{
	int j = 0;
	__m512 m = _mm512_set1_ps(-INFINITY);
	for (; j + 16 <= n; j += 16)
		m = _mm512_max_ps(m, _mm512_loadu_ps(v + j));
	float mx = _mm512_reduce_max_ps(m);
	for (; j < n; j++)
		mx = v[j] > mx ? v[j] : mx;
	return mx;
}

AVX512 static double xent_avx512(float *v, uint32_t tg, int V, float grad_scale)
{
	int j;
	float mx = row_max(v, V);
	float xt = v[tg] - mx;
	__m512 vm = _mm512_set1_ps(mx), acc = _mm512_setzero_ps();
	for (j = 0; j + 16 <= V; j += 16) {
		__m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(v + j), vm));
		_mm512_storeu_ps(v + j, e);
		acc = _mm512_add_ps(acc, e);
	}
	float s = _mm512_reduce_add_ps(acc);
	for (; j < V; j++) {
		v[j] = expf(v[j] - mx);
		s += v[j];
	}
	if (grad_scale > 0) {
		float k = grad_scale / s;
		__m512 vk = _mm512_set1_ps(k);
		for (j = 0; j + 16 <= V; j += 16)
			_mm512_storeu_ps(v + j, _mm512_mul_ps(_mm512_loadu_ps(v + j), vk));
		for (; j < V; j++)
			v[j] *= k;
		v[tg] -= grad_scale;
	}
	return (double)logf(s) - (double)xt;
}

/* log-softmax of one row: the sum of exponentials in 16 float lanes (each lane's sum stays
 * within a few ulp: the terms are <= 1), the lanes added in double, one log. */
AVX512 static void log_softmax_avx512(float *v, int n)
{
	int j;
	float mx = row_max(v, n);
	__m512 vm = _mm512_set1_ps(mx), acc = _mm512_setzero_ps();
	for (j = 0; j + 16 <= n; j += 16)
		acc = _mm512_add_ps(acc, exp512(_mm512_sub_ps(_mm512_loadu_ps(v + j), vm)));
	double s = _mm512_reduce_add_pd(_mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(acc)),
	                                _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1)))));
	for (; j < n; j++)
		s += exp((double)v[j] - mx);
	float lse = mx + (float)log(s);
	__m512 vl = _mm512_set1_ps(lse);
	for (j = 0; j + 16 <= n; j += 16)
		_mm512_storeu_ps(v + j, _mm512_sub_ps(_mm512_loadu_ps(v + j), vl));
	for (; j < n; j++)
		v[j] -= lse;
}

/* Rows are independent: they go to the backend's threads. */
void cap_avx512_log_softmax_rows(float *x, int rows, int n)
{
	CAP_PARALLEL_FOR_IF(rows >= 4)
	for (int r = 0; r < rows; r++)
		log_softmax_avx512(x + (size_t)r * n, n);
}

void cap_avx512_softmax_xent_rows(float *x, const uint32_t *target, int n, int V, float grad_scale,
                                  double *loss)
{
	CAP_PARALLEL_FOR_IF(n >= 4)
	for (int r = 0; r < n; r++)
		loss[r] = target[r] == CAP_TARGET_NONE ? cap_ref_softmax_xent_row(x + (size_t)r * V, target[r], V, grad_scale)
		                                       : xent_avx512(x + (size_t)r * V, target[r], V, grad_scale);
}
#endif

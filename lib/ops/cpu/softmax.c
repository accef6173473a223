/* The fused softmax cross-entropy on AVX-512 (see ops.h; the plain version is
 * lib/ops/ref/softmax.c). */
#include "ops/cpu/cpu.h"
#include <math.h>
#if defined(__x86_64__)
#include "ops/cpu/avx512_math.h"

AVX512 static double xent_avx512(float *v, uint32_t tg, int V, float grad_scale)
{
	int j = 0;
	__m512 m = _mm512_set1_ps(-INFINITY);
	for (; j + 16 <= V; j += 16)
		m = _mm512_max_ps(m, _mm512_loadu_ps(v + j));
	float mx = _mm512_reduce_max_ps(m);
	for (; j < V; j++)
		mx = v[j] > mx ? v[j] : mx;
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

void cap_avx512_softmax_xent_rows(float *x, const uint32_t *target, int n, int V, float grad_scale,
                                  double *loss)
{
	for (int r = 0; r < n; r++)
		loss[r] = xent_avx512(x + (size_t)r * V, target[r], V, grad_scale);
}
#endif

/* Adam and global-norm clipping, following torch.optim.Adam (single-tensor path) and
 * torch.nn.utils.clip_grad_norm_ operation by operation, so that float rounding matches. */
#include "train/adam.h"
#include "core/error.h"
#include <math.h>
#include <stdlib.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define AVX512 __attribute__((target("avx512f")))

/* The same operations in the same order as the scalar loop (no fused multiply-add), so both
 * give bitwise the same parameters. */
AVX512 static size_t adam_avx512(float *param, const float *grad, float *m, float *v, size_t n,
                                 float b1, float b2, float one_b1, float one_b2, float step_size,
                                 float bc2_sqrt, float eps)
{
	__m512 vb1 = _mm512_set1_ps(b1), vb2 = _mm512_set1_ps(b2), va1 = _mm512_set1_ps(one_b1),
	       va2 = _mm512_set1_ps(one_b2), vss = _mm512_set1_ps(-step_size),
	       vbc = _mm512_set1_ps(bc2_sqrt), veps = _mm512_set1_ps(eps);
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
	return i;
}

AVX512 static size_t sumsq_avx512(const float *g, size_t n, double *out)
{
	__m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
	size_t i = 0;
	for (; i + 16 <= n; i += 16) {
		__m512d x0 = _mm512_cvtps_pd(_mm256_loadu_ps(g + i)), x1 = _mm512_cvtps_pd(_mm256_loadu_ps(g + i + 8));
		a0 = _mm512_fmadd_pd(x0, x0, a0);
		a1 = _mm512_fmadd_pd(x1, x1, a1);
	}
	*out = _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
	return i;
}
static int fast(void) { return __builtin_cpu_supports("avx512f"); }
#else
static int fast(void) { return 0; }
#endif

void cap_adam_init(cap_adam *a, size_t n, double lr)
{
	a->lr = lr; a->beta1 = 0.9; a->beta2 = 0.999; a->eps = 1e-8;
	a->step = 0;
	a->n = n;
	a->m = cap_xcalloc(n ? n : 1, sizeof(float));
	a->v = cap_xcalloc(n ? n : 1, sizeof(float));
}

void cap_adam_free(cap_adam *a)
{
	free(a->m); free(a->v);
	a->m = a->v = NULL;
}

void cap_adam_step(cap_adam *a, float *param, const float *grad)
{
	a->step++;
	/* torch computes the bias corrections in Python floats (double) and passes the scalars
	 * to float tensor ops. */
	double bc1 = 1 - pow(a->beta1, (double)a->step), bc2 = 1 - pow(a->beta2, (double)a->step);
	float step_size = (float)(a->lr / bc1), bc2_sqrt = (float)sqrt(bc2), eps = (float)a->eps;
	float b1 = (float)a->beta1, b2 = (float)a->beta2, one_b1 = (float)(1 - a->beta1),
	      one_b2 = (float)(1 - a->beta2);
	float *m = a->m, *v = a->v;
	size_t i = 0;
#if defined(__x86_64__)
	if (fast())
		i = adam_avx512(param, grad, m, v, a->n, b1, b2, one_b1, one_b2, step_size, bc2_sqrt, eps);
#endif
	for (; i < a->n; i++) {
		float g = grad[i];
		m[i] = m[i] * b1 + one_b1 * g;            /* exp_avg.mul_(b1).add_(g, alpha=1-b1) */
		v[i] = v[i] * b2 + one_b2 * g * g;        /* exp_avg_sq.mul_(b2).addcmul_(g, g, 1-b2) */
		float denom = sqrtf(v[i]) / bc2_sqrt + eps;
		param[i] += -step_size * (m[i] / denom);  /* addcdiv_(m, denom, value=-step_size) */
	}
}

double cap_clip_grad_norm(float *grad, size_t n, double max_norm)
{
	double s = 0;
	size_t i = 0;
#if defined(__x86_64__)
	if (fast())
		i = sumsq_avx512(grad, n, &s);
#endif
	for (; i < n; i++)
		s += (double)grad[i] * grad[i];
	double norm = sqrt(s);
	if (max_norm > 0) {
		float coef = (float)(max_norm / (norm + 1e-6));
		if (coef < 1.0f)
			for (size_t i = 0; i < n; i++)
				grad[i] *= coef;
	}
	return norm;
}

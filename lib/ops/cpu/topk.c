/* row_topk on the cpu (see ops.h): one pass over each row keeping its k best so far, where ref
 * makes k passes. Columns come in ascending order, so a later column with the same value as the
 * k-th best never displaces it: once k are held, a column enters only with a value strictly
 * above the k-th, and with AVX-512 sixteen columns at a time are checked against that value and
 * skipped together (a beam step's rows of 2,539 log-probabilities let a few dozen through).
 * Rows go to the backend's threads. The result is ref's, exactly. */
#include "ops/cpu/cpu.h"
#include "core/cpu.h"
#include <assert.h>
#include <math.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* Puts column i (value v, not NaN, not excluded) into the best-first list bv/bi of *c entries
 * (at most k), if it belongs there. */
static inline void consider(float v, int i, int k, float *bv, int32_t *bi, int *c)
{
	int n = *c;
	if (n == k && !cap_topk_better(v, i, bv[k - 1], bi[k - 1]))
		return;
	int p = n < k ? n : k - 1;   /* the slot it starts from: after the last, or over it */
	while (p > 0 && cap_topk_better(v, i, bv[p - 1], bi[p - 1])) {
		bv[p] = bv[p - 1];
		bi[p] = bi[p - 1];
		p--;
	}
	bv[p] = v;
	bi[p] = i;
	if (n < k)
		*c = n + 1;
}

static void finish(int c, int k, float *bv, int32_t *bi, float *vals, int32_t *idx)
{
	for (int j = 0; j < k; j++) {
		vals[j] = j < c ? bv[j] : -INFINITY;
		idx[j] = j < c ? bi[j] : -1;
	}
}

/* Columns i0..n-1 one at a time: the whole row, or what the vector loop leaves. */
static void scan(const float *v, int i0, int n, int k, int ex0, int ex1, float *bv, int32_t *bi, int *c)
{
	for (int i = i0; i < n; i++)
		if (i != ex0 && i != ex1 && !isnan(v[i]))
			consider(v[i], i, k, bv, bi, c);
}

static void row_scalar(const float *v, int n, int k, int ex0, int ex1, float *vals, int32_t *idx)
{
	float bv[CAP_TOPK_MAX];
	int32_t bi[CAP_TOPK_MAX];
	int c = 0;
	scan(v, 0, n, k, ex0, ex1, bv, bi, &c);
	finish(c, k, bv, bi, vals, idx);
}

#if defined(__x86_64__)
__attribute__((target("avx512f")))
static void row_avx512(const float *v, int n, int k, int ex0, int ex1, float *vals, int32_t *idx)
{
	float bv[CAP_TOPK_MAX];
	int32_t bi[CAP_TOPK_MAX];
	int c = 0, i = 0;
	for (; i + 16 <= n; i += 16) {
		__m512 x = _mm512_loadu_ps(v + i);
		/* full: strictly above the k-th (NaN compares false); else every number */
		__mmask16 m = c == k ? _mm512_cmp_ps_mask(x, _mm512_set1_ps(bv[k - 1]), _CMP_GT_OQ)
		                     : _mm512_cmp_ps_mask(x, x, _CMP_ORD_Q);
		while (m) {
			int j = __builtin_ctz(m);
			m &= m - 1;
			if (i + j != ex0 && i + j != ex1)
				consider(v[i + j], i + j, k, bv, bi, &c);
		}
	}
	scan(v, i, n, k, ex0, ex1, bv, bi, &c);
	finish(c, k, bv, bi, vals, idx);
}
#endif

void cap_cpu_row_topk(const float *x, int rows, int n, int k, int ex0, int ex1, float *vals,
                      int32_t *idx)
{
	assert(k >= 1 && k <= CAP_TOPK_MAX);   /* the lists below hold CAP_TOPK_MAX */
#if defined(__x86_64__)
	int avx = cap_cpu_has(CAP_CPU_AVX512F);
#else
	int avx = 0;
#endif
	CAP_PARALLEL_FOR_IF(rows >= 4 && (long)rows * n >= 32768)
	for (int r = 0; r < rows; r++) {
		const float *v = x + (size_t)r * n;
		float *vr = vals + (size_t)r * k;
		int32_t *ir = idx + (size_t)r * k;
#if defined(__x86_64__)
		if (avx) {
			row_avx512(v, n, k, ex0, ex1, vr, ir);
			continue;
		}
#endif
		row_scalar(v, n, k, ex0, ex1, vr, ir);
	}
	(void)avx;
}

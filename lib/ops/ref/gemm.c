/* The reference GEMM and prepared weights (see ops.h): the algorithmic definition the other
 * backends are tested against, and the fallback. */
#include "ops/host.h"
#include "ops/bf16.h"
#include "core/error.h"
#include <stdlib.h>

void cap_ref_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc)
{
	if (M <= 0 || N <= 0)
		return;
	/* Accumulate each row of C in a float row buffer with the k loop outside, which keeps
	 * the inner loop contiguous in B when B is not transposed. K == 0 gives C = beta C.
	 * In bf16 every operand element is rounded to bfloat16 first; the sums stay in fp32. */
	const int bf = cap_host_precision() == CAP_PRECISION_BF16;
#define OPERAND(x) (bf ? cap_bf16_round(x) : (x))
	float *acc = cap_xmalloc(sizeof(float) * (size_t)N);
	for (int i = 0; i < M; i++) {
		for (int j = 0; j < N; j++)
			acc[j] = 0;
		for (int k = 0; k < K; k++) {
			float a = OPERAND(ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]);
			if (!tb) {
				const float *b = B + (size_t)k * ldb;
				for (int j = 0; j < N; j++)
					acc[j] += a * OPERAND(b[j]);
			} else {
				for (int j = 0; j < N; j++)
					acc[j] += a * OPERAND(B[(size_t)j * ldb + k]);
			}
		}
		float *c = C + (size_t)i * ldc;
		for (int j = 0; j < N; j++)
			c[j] = beta == 0 ? alpha * acc[j] : alpha * acc[j] + beta * c[j];
	}
	free(acc);
#undef OPERAND
}

cap_weight *cap_ref_weight_new(const float *w, int rows, int cols, int flags)
{
	cap_weight *p = cap_xcalloc(1, sizeof *p);
	p->w = w;
	p->rows = rows;
	p->cols = cols;
	p->flags = flags;
	return p;
}

void cap_ref_weight_update(cap_weight *w) { (void)w; }

void cap_ref_weight_free(cap_weight *w)
{
	free(w);
}

void cap_ref_matmul(const float *x, int n, const cap_weight *w, int trans, float beta, float *y)
{
	if (trans)
		cap_ref_gemm(0, 1, n, w->rows, w->cols, 1, x, w->cols, w->w, w->cols, beta, y, w->rows);
	else
		cap_ref_gemm(0, 0, n, w->cols, w->rows, 1, x, w->rows, w->w, w->cols, beta, y, w->cols);
}

/* The definition: the bias rows, then the product added to them. */
void cap_ref_matmul_bias(const float *x, int n, const cap_weight *w, const float *b1, const float *b2,
                         float *y)
{
	cap_ref_bias_rows(y, b1, b2, n, w->rows);
	cap_ref_matmul(x, n, w, 1, 1, y);
}

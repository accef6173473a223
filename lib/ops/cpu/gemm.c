/* The cpu backend's GEMM: oneDNN's dnnl_sgemm (threaded by OpenMP inside libdnnl), the bf16
 * precision's on matmul primitives (matmul.c), and prepared weights (see ops.h). */
#include "ops/cpu/cpu.h"
#include "core/error.h"
#include <assert.h>
#include <dlfcn.h>
#include <dnnl.h>
#include <stdlib.h>
#include <string.h>

/* libdnnl links libgomp itself; our objects are not built with -fopenmp, and linking -lgomp
 * directly would tie the Makefile to oneDNN's build choice, so the OpenMP entry points are
 * looked up in the already loaded runtime. */
static void (*omp_set)(int);
static int (*omp_get)(void);
static int looked_up;

static void lookup(void)
{
	if (looked_up)
		return;
	omp_set = (void (*)(int))dlsym(RTLD_DEFAULT, "omp_set_num_threads");
	omp_get = (int (*)(void))dlsym(RTLD_DEFAULT, "omp_get_max_threads");
	looked_up = 1;
}

int cap_cpu_set_threads(int n)
{
	if (n <= 0)
		return 0;
	lookup();
	if (!omp_set)
		return cap_fail("cannot set %d threads: no OpenMP runtime found in libdnnl", n);
	omp_set(n);
	return 0;
}

void cap_cpu_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc)
{
	if (M <= 0 || N <= 0)
		return;
	if (K <= 0) { /* nothing to multiply: C = beta * C */
		for (int i = 0; i < M; i++)
			for (int j = 0; j < N; j++)
				C[(size_t)i * ldc + j] = beta == 0 ? 0 : beta * C[(size_t)i * ldc + j];
		return;
	}
	if (cap_host_precision() == CAP_PRECISION_BF16) {
		cap_cpu_gemm_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
		return;
	}
	dnnl_status_t st = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda,
	                              B, ldb, beta, C, ldc);
	/* Only invalid arguments make it fail, and those are our bugs. */
	assert(st == dnnl_success);
	(void)st;
}

/* Prepared weights: fp32 multiplies W itself (see cap_cpu_matmul); the bf16 precision keeps a
 * bf16 copy, made when first needed, so that a weight made before a change of precision still
 * works after it. */
static void prepare_bf16(cap_weight *p)
{
	if (!p->wb)
		p->wb = cap_xmalloc(sizeof(uint16_t) * (size_t)p->rows * (size_t)p->cols);
	cap_cpu_to_bf16(p->w, p->rows, p->cols, p->cols, p->wb);
}

cap_weight *cap_cpu_weight_new(const float *w, int rows, int cols, int flags)
{
	cap_weight *p = cap_ref_weight_new(w, rows, cols, flags);
	if (cap_host_precision() == CAP_PRECISION_BF16)
		prepare_bf16(p);
	return p;
}

void cap_cpu_weight_update(cap_weight *w)
{
	if (w->wb)
		cap_cpu_to_bf16(w->w, w->rows, w->cols, w->cols, w->wb);
}

void cap_cpu_matmul(const float *x, int n, const cap_weight *w, int trans, float beta, float *y)
{
	if (n <= 0)
		return;
	/* The per-step recurrence runs on all threads: on a quiet 2-core machine that made a
	 * training step 20% faster (0.094 s against 0.113 s). On a busy machine waiting for a second
	 * thread at every small product can cost more than it saves; CAP_SERIAL_RECURRENCE=1 then
	 * runs these products on one thread. */
	int saved = 0;
	static int serial = -1;
	if (serial < 0) {
		const char *e = getenv("CAP_SERIAL_RECURRENCE");
		serial = e && !strcmp(e, "1");
	}
	if (serial && (w->flags & CAP_WEIGHT_RECURRENT)) {
		lookup();
		if (omp_set && omp_get && (saved = omp_get()) > 1)
			omp_set(1);
	}
	/* fp32 x W^T: oneDNN's sgemm is fast with W as the transposed operand only below 16 rows
	 * (at 16-64 rows it ran at 33-90 GFLOP/s here, against 120-190 for the matmul primitive on
	 * W and 110-160 for sgemm on a transposed copy, which cost 1.4 ms to refresh after every
	 * step). x W (the input gradient) is sgemm's plain case. */
	int bf16 = cap_host_precision() == CAP_PRECISION_BF16;
	if (bf16 && !w->wb)
		prepare_bf16((cap_weight *)w);   /* made before the precision changed */
	if (bf16)
		cap_cpu_matmul_bf16(x, n, w, trans, beta, y);
	else if (trans && n >= 16)
		cap_cpu_matmul_f32(x, n, w, trans, beta, y);
	else if (trans)
		cap_cpu_gemm(0, 1, n, w->rows, w->cols, 1, x, w->cols, w->w, w->cols, beta, y, w->rows);
	else
		cap_cpu_gemm(0, 0, n, w->cols, w->rows, 1, x, w->rows, w->w, w->cols, beta, y, w->cols);
	if (saved > 1)
		omp_set(saved);
}

/* Where cap_cpu_matmul takes a primitive (bf16; fp32 from 16 rows), the bias goes into it;
 * below, sgemm adds the product to the broadcast rows as before. */
void cap_cpu_matmul_bias(const float *x, int n, const cap_weight *w, const float *b1, const float *b2,
                         float *y)
{
	if (n <= 0)
		return;
	int bf16 = cap_host_precision() == CAP_PRECISION_BF16;
	if (bf16 && !w->wb)
		prepare_bf16((cap_weight *)w);   /* made before the precision changed */
	if (bf16 || n >= 16) {
		cap_cpu_matmul_bias_prim(x, n, w, b1, b2, y, bf16);
		return;
	}
	cap_cpu_bias_rows(y, b1, b2, n, w->rows);
	cap_cpu_matmul(x, n, w, 1, 1, y);
}

/* The cpu backend's GEMM: oneDNN's dnnl_sgemm (threaded by OpenMP inside libdnnl), and prepared
 * weights that keep a transposed copy (see ops.h). */
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

/* out (cols, rows) = x (rows, cols) transposed, in tiles of 16 rows by 8 columns: the writes
 * of a tile go to 8 lines whose power-of-two stride maps them to one cache set, and larger
 * tiles thrash it (32 x 32 tiles were 16 times slower here). */
static void transpose(const float *x, int rows, int cols, float *out)
{
	enum { TI = 16, TJ = 8 };
	for (int i0 = 0; i0 < rows; i0 += TI)
		for (int j0 = 0; j0 < cols; j0 += TJ)
			for (int i = i0; i < i0 + TI && i < rows; i++)
				for (int j = j0; j < j0 + TJ && j < cols; j++)
					out[(size_t)j * rows + i] = x[(size_t)i * cols + j];
}

/* oneDNN's sgemm is several times faster on small batches with a plain B operand than with a
 * transposed one, so x W^T runs as x (W^T stored). The bf16 precision keeps a bf16 copy of W
 * instead (its matmul primitive is as fast either way). Each copy is made when first needed, so
 * a weight made before a change of precision still works after it. */
static void prepare(cap_weight *p)
{
	size_t n = (size_t)p->rows * (size_t)p->cols;
	if (cap_host_precision() == CAP_PRECISION_BF16) {
		if (!p->wb)
			p->wb = cap_xmalloc(sizeof(uint16_t) * n);
		cap_cpu_to_bf16(p->w, p->rows, p->cols, p->cols, p->wb);
	} else {
		if (!p->wt)
			p->wt = cap_xmalloc(sizeof(float) * n);
		transpose(p->w, p->rows, p->cols, p->wt);
	}
}

cap_weight *cap_cpu_weight_new(const float *w, int rows, int cols, int flags)
{
	cap_weight *p = cap_ref_weight_new(w, rows, cols, flags);
	prepare(p);
	return p;
}

/* Refreshes every copy the weight has (matmul makes a missing one after a precision change). */
void cap_cpu_weight_update(cap_weight *w)
{
	if (w->wt)
		transpose(w->w, w->rows, w->cols, w->wt);
	if (w->wb)
		cap_cpu_to_bf16(w->w, w->rows, w->cols, w->cols, w->wb);
}

void cap_cpu_matmul(const float *x, int n, const cap_weight *w, int trans, float beta, float *y)
{
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
	int bf16 = cap_host_precision() == CAP_PRECISION_BF16;
	if ((bf16 && !w->wb) || (!bf16 && !w->wt))
		prepare((cap_weight *)w);   /* made before the precision changed */
	if (n <= 0)
		;
	else if (bf16)
		cap_cpu_matmul_bf16(x, n, w, trans, beta, y);
	else if (trans)
		cap_cpu_gemm(0, 0, n, w->rows, w->cols, 1, x, w->cols, w->wt, w->rows, beta, y, w->rows);
	else
		cap_cpu_gemm(0, 0, n, w->cols, w->rows, 1, x, w->rows, w->w, w->cols, beta, y, w->cols);
	if (saved > 1)
		omp_set(saved);
}

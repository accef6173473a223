/* The cpu backend's GEMM: oneDNN's dnnl_sgemm (threaded by OpenMP inside libdnnl), the bf16
 * precision's on matmul primitives (matmul.c), and prepared weights (see ops.h), packed for
 * those primitives by matmul.c. */
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

/* the bound below which A B^T goes to the matmul primitive (see cap_cpu_gemm) */
enum { PRIM_ROWS = 128 };

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
	if (ta && !tb) {   /* the weight gradients: B packed first, see matmul.c */
		cap_cpu_gemm_tn(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
		return;
	}
	if (cap_host_precision() == CAP_PRECISION_BF16) {
		cap_cpu_gemm_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
		return;
	}
	/* A B^T of fewer than PRIM_ROWS rows (the image projection of a batch, 64 x 256 x 2048) ran
	 * at 307 GFLOP/s on oneDNN's matmul primitive against sgemm's 116 (2-core Zen 5). The rest
	 * stays on sgemm. */
	if (!ta && tb && M < PRIM_ROWS) {
		cap_cpu_gemm_f32_prim(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
		return;
	}
	dnnl_status_t st = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda,
	                              B, ldb, beta, C, ldc);
	/* Only invalid arguments make it fail, and those are our bugs. */
	assert(st == dnnl_success);
	(void)st;
}

/* x W^T or x W on the primitive with W packed: on a 2-core Zen 5 it beat every other way at
 * every batch size (W 2048 x 512 fp32, warm: 72 against 59 GFLOP/s at 1 row, 434 against 380
 * at 64, 420 against 402 at 1,000; sgemm with W or a transposed copy of it). */
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
	cap_cpu_matmul_packed(x, n, (cap_weight *)w, trans, beta, y, NULL, NULL);   /* packs lazily */
	if (saved > 1)
		omp_set(saved);
}

/* y (n, rows) = x W^T + b1 (+ b2): one pass over y, the bias in the primitive's epilogue. */
void cap_cpu_matmul_bias(const float *x, int n, const cap_weight *w, const float *b1, const float *b2,
                         float *y)
{
	if (n <= 0)
		return;
	cap_cpu_matmul_packed(x, n, (cap_weight *)w, 1, 0, y, b1, b2);
}

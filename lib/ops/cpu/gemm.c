/* The cpu backend's GEMM: oneDNN's dnnl_sgemm (threaded by OpenMP inside libdnnl), the bf16
 * precision's on matmul primitives (matmul.c), and prepared weights (see ops.h). */
#include "ops/cpu/cpu.h"
#include "core/bigmem.h"
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

/* rows from which x W^T goes to the matmul primitive (see cap_cpu_matmul); also the bound
 * below which A B^T does (see cap_cpu_gemm) */
enum { NT_ROWS = 2, PRIM_ROWS = 128 };

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
	/* Two cases where oneDNN's matmul primitive beat dnnl_sgemm (2-core Zen 5, a training
	 * step's shapes): A B^T of fewer than PRIM_ROWS rows (the image projection of a batch,
	 * 64 x 256 x 2048: 307 against 116 GFLOP/s) and A^T B over at most PRIM_ROWS terms (its
	 * weight gradient over the 64 captions: 250-277 against 77-86). A^T B over a batch's
	 * tokens was faster too (2048 x 512 over 763: 290 against 236), but K changes with every
	 * batch, and the primitives made for each new K (and the cut of K, see matmul.c) ate the
	 * gain over a 250-step run. The rest stays on sgemm. */
	if ((ta && !tb && K <= PRIM_ROWS) || (!ta && tb && M < PRIM_ROWS)) {
		cap_cpu_gemm_f32_prim(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
		return;
	}
	dnnl_status_t st = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda,
	                              B, ldb, beta, C, ldc);
	/* Only invalid arguments make it fail, and those are our bugs. */
	assert(st == dnnl_success);
	(void)st;
}

/* Prepared weights. fp32 keeps W^T beside W for the products x W^T of 3 to 127 rows: there
 * oneDNN's sgemm on the plain product x (W^T stored) beat both sgemm with W as its transposed
 * operand and the matmul primitive on W (2-core Zen 5, W 2048 x 512: 1.2-1.7x at 8-64 rows,
 * the training recurrence's sizes and cap-generate's default batch). At 1,000 rows all three
 * ran alike once warm, and the primitive's first calls were the cheaper (a greedy run of
 * 1,000 captions at batch 1,000 took 0.35 s on sgemm against 0.30 on the primitive). The copy
 * is refreshed by weight_update: for the 2048 x 512 W_hh, once a training step, 0.4 ms warm and
 * 0.8 ms in the step (fresh from Adam), against 1.5 ms saved in its products there. The bf16
 * precision keeps a bf16 copy instead. Both are made when first needed, so that a weight made
 * before a change of precision still works after it. */
static void prepare_bf16(cap_weight *p)
{
	if (!p->wb)
		p->wb = cap_big_xalloc(sizeof(uint16_t) * (size_t)p->rows * (size_t)p->cols);
	cap_cpu_to_bf16(p->w, p->rows, p->cols, p->cols, p->wb);
}

enum { TILE = 32 };

/* dst (cols, rows) = src (rows, cols)^T in tiles that stay in L1; threads own column bands. */
static void transpose(const float *src, int rows, int cols, float *dst)
{
	CAP_PARALLEL_FOR_IF((long)rows * cols >= 65536)
	for (int cb = 0; cb < cols; cb += TILE)
		for (int rb = 0; rb < rows; rb += TILE) {
			int ce = cb + TILE < cols ? cb + TILE : cols, re = rb + TILE < rows ? rb + TILE : rows;
			for (int c = cb; c < ce; c++)
				for (int r = rb; r < re; r++)
					dst[(size_t)c * rows + r] = src[(size_t)r * cols + c];
		}
}

static void prepare_t(cap_weight *p)
{
	if (!p->wt)
		p->wt = cap_big_xalloc(sizeof(float) * (size_t)p->rows * (size_t)p->cols);
	transpose(p->w, p->rows, p->cols, p->wt);
}

cap_weight *cap_cpu_weight_new(const float *w, int rows, int cols, int flags)
{
	cap_weight *p = cap_ref_weight_new(w, rows, cols, flags);
	if (cap_host_precision() == CAP_PRECISION_BF16)
		prepare_bf16(p);
	/* W^T only when a product of 3-127 rows first wants it (cap_cpu_matmul): a weight used
	 * only by larger batches, or a decoder's inference weights during training, never has one */
	return p;
}

void cap_cpu_weight_update(cap_weight *w)
{
	if (w->wb)
		cap_cpu_to_bf16(w->w, w->rows, w->cols, w->cols, w->wb);
	if (w->wt)
		transpose(w->w, w->rows, w->cols, w->wt);
}

/* fp32 x W^T: up to NT_ROWS rows sgemm with W as its transposed operand (a matrix-vector
 * product either way), from PRIM_ROWS the matmul primitive on W, between them sgemm on W^T. */
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
	int bf16 = cap_host_precision() == CAP_PRECISION_BF16;
	if (bf16) {
		if (!w->wb)
			prepare_bf16((cap_weight *)w);   /* made before the precision changed */
		cap_cpu_matmul_bf16(x, n, w, trans, beta, y);
	} else if (trans && n >= PRIM_ROWS) {
		cap_cpu_matmul_f32(x, n, w, trans, beta, y);
	} else if (trans && n > NT_ROWS) {
		if (!w->wt)
			prepare_t((cap_weight *)w);
		cap_cpu_gemm(0, 0, n, w->rows, w->cols, 1, x, w->cols, w->wt, w->rows, beta, y, w->rows);
	} else if (trans) {
		cap_cpu_gemm(0, 1, n, w->rows, w->cols, 1, x, w->cols, w->w, w->cols, beta, y, w->rows);
	} else {   /* x W, the input gradient: sgemm's plain case on W itself */
		cap_cpu_gemm(0, 0, n, w->cols, w->rows, 1, x, w->rows, w->w, w->cols, beta, y, w->cols);
	}
	if (saved > 1)
		omp_set(saved);
}

/* Where cap_cpu_matmul takes a primitive (bf16; fp32 from PRIM_ROWS rows), the bias goes into
 * it; below, the product is added to the broadcast rows. */
void cap_cpu_matmul_bias(const float *x, int n, const cap_weight *w, const float *b1, const float *b2,
                         float *y)
{
	if (n <= 0)
		return;
	int bf16 = cap_host_precision() == CAP_PRECISION_BF16;
	if (bf16 && !w->wb)
		prepare_bf16((cap_weight *)w);   /* made before the precision changed */
	if (bf16 || n >= PRIM_ROWS) {
		cap_cpu_matmul_bias_prim(x, n, w, b1, b2, y, bf16);
		return;
	}
	cap_cpu_bias_rows(y, b1, b2, n, w->rows);
	cap_cpu_matmul(x, n, w, 1, 1, y);
}

/* cap_sgemm: oneDNN's sgemm with a plain C reference beside it (see gemm.h). */
#include "ops/gemm.h"
#include "core/error.h"
#include <assert.h>
#include <dlfcn.h>
#include <dnnl.h>
#include <stdlib.h>

static int use_reference;

int cap_gemm_set_reference(int on)
{
	int old = use_reference;
	use_reference = on != 0;
	return old;
}

int cap_gemm_reference(void) { return use_reference; }

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

int cap_gemm_set_threads(int n)
{
	if (n <= 0)
		return 0;
	lookup();
	if (!omp_set)
		return cap_fail("cannot set %d threads: no OpenMP runtime found in libdnnl", n);
	omp_set(n);
	return 0;
}

static int saved_threads;

void cap_gemm_serial_begin(void)
{
	lookup();
	if (!omp_set || !omp_get)
		return;
	saved_threads = omp_get();
	if (saved_threads > 1)
		omp_set(1);
}

void cap_gemm_serial_end(void)
{
	if (omp_set && saved_threads > 1)
		omp_set(saved_threads);
	saved_threads = 0;
}

void cap_sgemm_ref(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *B, int ldb, float beta, float *C, int ldc)
{
	/* Accumulate each row of C in a float row buffer with the k loop outside, which keeps
	 * the inner loop contiguous in B when B is not transposed. */
	float *acc = cap_xmalloc(sizeof(float) * (N > 0 ? (size_t)N : 1));
	for (int i = 0; i < M; i++) {
		for (int j = 0; j < N; j++)
			acc[j] = 0;
		for (int k = 0; k < K; k++) {
			float a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
			if (!tb) {
				const float *b = B + (size_t)k * ldb;
				for (int j = 0; j < N; j++)
					acc[j] += a * b[j];
			} else {
				for (int j = 0; j < N; j++)
					acc[j] += a * B[(size_t)j * ldb + k];
			}
		}
		float *c = C + (size_t)i * ldc;
		for (int j = 0; j < N; j++)
			c[j] = beta == 0 ? alpha * acc[j] : alpha * acc[j] + beta * c[j];
	}
	free(acc);
}

void cap_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
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
	if (use_reference) {
		cap_sgemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
		return;
	}
	dnnl_status_t st = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda,
	                              B, ldb, beta, C, ldc);
	/* Only invalid arguments make it fail, and those are our bugs. */
	assert(st == dnnl_success);
	(void)st;
}

/* The machine's measured peak for the benches' "share of the limit", in GFLOP/s at the thread
 * count given: the best of several large GEMMs, each run two ways: plain (fp32 on oneDNN's
 * sgemm; bf16 on oneDNN's bf16 matmul with bf16 operands, the conversions left out) and
 * through the ops table with a prepared weight, which the cpu backend packs in the matmul
 * primitive's own layout (the faster of the two on a 2-core Zen 5, by 10-20%).
 * Each GEMM's rate is its median call over a quarter of a second of calls back to back: the rate
 * the machine sustains. The best single call is no limit for a workload: on a 2-core Zen 5 VM
 * the best of a few calls read 8-12% above what the same call sustained over seconds (434-450
 * against 403 GFLOP/s), so a share of it understated every stage.
 * Usage: cap-peak [THREADS [N [fp32|bf16]]]. Prints one number, and each GEMM's rate on stderr;
 * exits 1 where the precision is not available. Not a test. */
#include "core/cli.h"
#include "ops/ops.h"
#include <dnnl.h>
#include <stdio.h>
#include <stdlib.h>

/* The median of the times of calls of run(ctx) over at least MIN_SECONDS (and MIN_CALLS), after
 * one call that warms the caches, the thread pool and (for a prepared weight) packs it. */
enum { MIN_CALLS = 7, MAX_CALLS = 4096 };
static const double MIN_SECONDS = 0.25;
static double times[MAX_CALLS];
static int by_time(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}
static double median_seconds(void (*run)(void *), void *ctx)
{
	int n = 0;
	run(ctx);
	for (double t0 = cap_now(); n < MAX_CALLS && (n < MIN_CALLS || cap_now() - t0 < MIN_SECONDS); n++) {
		double a = cap_now();
		run(ctx);
		times[n] = cap_now() - a;
	}
	qsort(times, n, sizeof *times, by_time);
	return times[n / 2];
}

typedef struct prim_run { dnnl_primitive_t p; dnnl_stream_t st; dnnl_exec_arg_t *args; } prim_run;
static void run_prim(void *ctx)
{
	prim_run *r = ctx;
	dnnl_primitive_execute(r->p, r->st, 3, r->args);
	dnnl_stream_wait(r->st);
}

/* GFLOP/s of a bf16 matmul primitive (M, K) x (K, N) -> f32, or 0 when oneDNN cannot make it */
static double bf16_rate(int M, int N, int K)
{
	dnnl_engine_t eng;
	dnnl_stream_t st;
	dnnl_memory_desc_t a, b, c;
	dnnl_dims_t ad = { M, K }, bd = { K, N }, cd = { M, N };
	dnnl_matmul_desc_t d;
	dnnl_primitive_desc_t pd;
	dnnl_primitive_t p;
	dnnl_memory_t ma, mb, mc;
	if (dnnl_engine_create(&eng, dnnl_cpu, 0) != dnnl_success)
		return 0;
	dnnl_stream_create(&st, eng, dnnl_stream_default_flags);
	dnnl_memory_desc_init_by_tag(&a, 2, ad, dnnl_bf16, dnnl_ab);
	dnnl_memory_desc_init_by_tag(&b, 2, bd, dnnl_bf16, dnnl_ab);
	dnnl_memory_desc_init_by_tag(&c, 2, cd, dnnl_f32, dnnl_ab);
	dnnl_matmul_desc_init(&d, &a, &b, NULL, &c);
	if (dnnl_primitive_desc_create(&pd, &d, NULL, eng, NULL) != dnnl_success)
		return 0;
	dnnl_primitive_create(&p, pd);
	uint16_t *A = calloc((size_t)M * K, 2), *B = calloc((size_t)K * N, 2);
	float *C = calloc((size_t)M * N, 4);
	for (size_t i = 0; i < (size_t)M * K; i++)
		A[i] = 0x3f80 + (uint16_t)(i % 13);   /* 1.0 and a little more */
	for (size_t i = 0; i < (size_t)K * N; i++)
		B[i] = 0x3f00 + (uint16_t)(i % 7);
	dnnl_memory_create(&ma, &a, eng, A);
	dnnl_memory_create(&mb, &b, eng, B);
	dnnl_memory_create(&mc, &c, eng, C);
	dnnl_exec_arg_t args[3] = { { DNNL_ARG_SRC, ma }, { DNNL_ARG_WEIGHTS, mb }, { DNNL_ARG_DST, mc } };
	prim_run r = { p, st, args };
	double rate = 2.0 * M * N * K / median_seconds(run_prim, &r) / 1e9;
	dnnl_memory_destroy(ma); dnnl_memory_destroy(mb); dnnl_memory_destroy(mc);
	dnnl_primitive_destroy(p); dnnl_primitive_desc_destroy(pd);
	dnnl_stream_destroy(st); dnnl_engine_destroy(eng);
	free(A); free(B); free(C);
	return rate;
}

typedef struct ops_run {
	const cap_ops *ops;
	int M, N, K;
	const float *a, *b;
	float *c;
	cap_weight *w;
} ops_run;
static void run_gemm(void *ctx)
{
	ops_run *r = ctx;
	r->ops->gemm(0, 0, r->M, r->N, r->K, 1, r->a, r->K, r->b, r->N, 0, r->c, r->N);
}
static void run_weight(void *ctx)
{
	ops_run *r = ctx;
	r->ops->matmul(r->a, r->M, r->w, 1, 0, r->c);
}

/* GFLOP/s of y (M, N) = x (M, K) W^T through the ops table with W prepared (on cpu: packed once
 * in the layout the matmul primitive reads, in the precision set; in bf16 x is converted at
 * every call, a small part of these products) */
static double weight_rate(ops_run *r)
{
	r->w = r->ops->weight_new(r->b, r->N, r->K, 0);
	double rate = 2.0 * r->M * r->N * r->K / median_seconds(run_weight, r) / 1e9;
	r->ops->weight_free(r->w);
	return rate;
}

int main(int argc, char **argv)
{
	int threads = argc > 1 ? atoi(argv[1]) : 0, n = argc > 2 ? atoi(argv[2]) : 2048;
	const cap_ops *ops = cap_ops_cpu();
	cap_precision prec = CAP_PRECISION_FP32;
	if (argc > 3 && cap_precision_parse(argv[3], &prec) < 0)
		return 2;
	/* set_precision refuses bf16 where the processor has no AVX512-BF16 */
	if (ops->set_threads(threads) < 0 || ops->set_precision(prec) < 0)
		return 1;
	/* N^3 and three flatter products of the decoder's kind (oneDNN's kernels do better on those
	 * than on the cube; the last is the recurrence's, 64 rows at N 2048); the best of all. */
	int shapes[4][3] = { { n, n, n }, { n / 2, 5 * n / 4, n / 4 }, { n / 2, n / 4, 5 * n / 4 }, { n / 32, n, n / 4 } };
	double best = 0;
	size_t most = (size_t)n * n * 2;
	float *a = malloc(sizeof(float) * most), *b = malloc(sizeof(float) * most), *c = malloc(sizeof(float) * most);
	if (!a || !b || !c)
		return 1;
	for (size_t i = 0; i < most; i++) {
		a[i] = 1 + (float)(i % 13) / 13;
		b[i] = (float)(i % 7) / 7 - 0.5f;
	}
	for (int s = 0; s < 4; s++) {
		int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
		ops_run r = { ops, M, N, K, a, b, c, NULL };
		double g = prec == CAP_PRECISION_BF16 ? bf16_rate(M, N, K)
		                                      : 2.0 * M * N * K / median_seconds(run_gemm, &r) / 1e9;
		double gw = weight_rate(&r);
		fprintf(stderr, "cap-peak: %d x %d x %d: plain %.1f, packed weight %.1f GFLOP/s\n", M, N, K, g, gw);
		if (g > best)
			best = g;
		if (gw > best)
			best = gw;
	}
	free(a); free(b); free(c);
	if (best <= 0)
		return 1;
	printf("%.1f\n", best);
	return 0;
}

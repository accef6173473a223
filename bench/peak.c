/* The machine's measured peak for the benches' "share of the limit", in GFLOP/s at the thread
 * count given: the best of several large GEMMs, each run two ways: plain (fp32 on oneDNN's
 * sgemm; bf16 on oneDNN's bf16 matmul with bf16 operands, the conversions left out) and
 * through the ops table with a prepared weight, which the cpu backend packs in the matmul
 * primitive's own layout (the faster of the two on a 2-core Zen 5, by 10-20%).
 * Usage: cap-peak [THREADS [N [fp32|bf16]]]. Prints one number; exits 1 where the precision is
 * not available. Not a test. */
#include "core/cli.h"
#include "ops/ops.h"
#include <dnnl.h>
#include <stdio.h>
#include <stdlib.h>

/* GFLOP/s of the best of reps runs (the first warms the caches and the threads) of a bf16
 * matmul primitive (M, K) x (K, N) -> f32, or 0 when oneDNN cannot make it */
static double bf16_rate(int M, int N, int K, int reps)
{
	dnnl_engine_t eng;
	dnnl_stream_t st;
	dnnl_memory_desc_t a, b, c;
	dnnl_dims_t ad = { M, K }, bd = { K, N }, cd = { M, N };
	dnnl_matmul_desc_t d;
	dnnl_primitive_desc_t pd;
	dnnl_primitive_t p;
	dnnl_memory_t ma, mb, mc;
	double best = 0;
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
	for (int r = 0; r < reps; r++) {
		double t0 = cap_now();
		dnnl_primitive_execute(p, st, 3, args);
		dnnl_stream_wait(st);
		double g = 2.0 * M * N * K / (cap_now() - t0) / 1e9;
		if (r > 0 && g > best)
			best = g;
	}
	dnnl_memory_destroy(ma); dnnl_memory_destroy(mb); dnnl_memory_destroy(mc);
	dnnl_primitive_destroy(p); dnnl_primitive_desc_destroy(pd);
	dnnl_stream_destroy(st); dnnl_engine_destroy(eng);
	free(A); free(B); free(C);
	return best;
}

/* GFLOP/s of the best of reps runs of y (M, N) = x (M, K) W^T through the ops table with W
 * prepared (on cpu: packed once in the layout the matmul primitive reads, in the precision set;
 * in bf16 x is converted at every call, a small part of these products) */
static double weight_rate(const cap_ops *ops, int M, int N, int K, int reps, const float *a,
                          const float *b, float *c)
{
	double best = 0;
	cap_weight *w = ops->weight_new(b, N, K, 0);
	for (int r = 0; r < reps; r++) {
		double t0 = cap_now();
		ops->matmul(a, M, w, 1, 0, c);
		double g = 2.0 * M * N * K / (cap_now() - t0) / 1e9;
		if (r > 0 && g > best)   /* the first call packs W and warms the caches and the threads */
			best = g;
	}
	ops->weight_free(w);
	return best;
}

int main(int argc, char **argv)
{
	int threads = argc > 1 ? atoi(argv[1]) : 0, n = argc > 2 ? atoi(argv[2]) : 2048, reps = 7;
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
		double g = prec == CAP_PRECISION_BF16 ? bf16_rate(M, N, K, reps) : 0;
		for (int r = 0; prec != CAP_PRECISION_BF16 && r < reps; r++) {
			double t0 = cap_now();
			ops->gemm(0, 0, M, N, K, 1, a, K, b, N, 0, c, N);
			double t = cap_now() - t0, gr = 2.0 * M * N * K / t / 1e9;
			if (r > 0 && gr > g)   /* the first call warms the caches and the thread pool */
				g = gr;
		}
		double gw = weight_rate(ops, M, N, K, reps, a, b, c);
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

/* The machine's measured peak for the benches' "share of the limit": the best of several large
 * GEMMs of the cpu backend (oneDNN's sgemm, or with "bf16" its bf16 matmul, conversions
 * included: the products our hot loops are made of), in GFLOP/s, at the thread count given.
 * Usage: cap-peak [THREADS [N [fp32|bf16]]]. Prints one number; exits 1 where the precision is
 * not available. Not a test. */
#include "core/cli.h"
#include "ops/ops.h"
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	int threads = argc > 1 ? atoi(argv[1]) : 0, n = argc > 2 ? atoi(argv[2]) : 2048, reps = 7;
	const cap_ops *ops = cap_ops_cpu();
	cap_precision prec = CAP_PRECISION_FP32;
	if (argc > 3 && cap_precision_parse(argv[3], &prec) < 0)
		return 2;
	if (ops->set_threads(threads) < 0 || ops->set_precision(prec) < 0)
		return 1;
	/* N^3 and two flatter products of the decoder's kind (oneDNN's bf16 kernels do better on
	 * those than on the cube); the best of all. */
	int shapes[3][3] = { { n, n, n }, { n / 2, 5 * n / 4, n / 4 }, { n / 2, n / 4, 5 * n / 4 } };
	size_t most = (size_t)n * n * 2;
	float *a = malloc(sizeof(float) * most), *b = malloc(sizeof(float) * most), *c = malloc(sizeof(float) * most);
	for (size_t i = 0; i < most; i++) {
		a[i] = (float)(i % 13) / 13;
		b[i] = (float)(i % 7) / 7;
	}
	double best = 0;
	for (int s = 0; s < 3; s++) {
		int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
		for (int r = 0; r < reps; r++) {
			double t0 = cap_now();
			ops->gemm(0, 0, M, N, K, 1, a, K, b, N, 0, c, N);
			double t = cap_now() - t0, g = 2.0 * M * N * K / t / 1e9;
			if (r > 0 && g > best)   /* the first call warms the caches and the thread pool */
				best = g;
		}
	}
	printf("%.1f\n", best);
	free(a); free(b); free(c);
	return 0;
}

/* The machine's measured fp32 peak for the benches' "share of the limit": the best of several
 * large oneDNN sgemm calls (the products our hot loops are made of), in GFLOP/s, at the thread
 * count given. Prints one number. Not a test. */
#include "core/cli.h"
#include "ops/ops.h"
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	int threads = argc > 1 ? atoi(argv[1]) : 0, n = argc > 2 ? atoi(argv[2]) : 2048, reps = 7;
	const cap_ops *ops = cap_ops_cpu();
	if (ops->set_threads(threads) < 0)
		return 1;
	float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n), *c = malloc(sizeof(float) * n * n);
	for (long i = 0; i < (long)n * n; i++) {
		a[i] = (float)(i % 13) / 13;
		b[i] = (float)(i % 7) / 7;
	}
	double best = 0;
	for (int r = 0; r < reps; r++) {
		double t0 = cap_now();
		ops->gemm(0, 0, n, n, n, 1, a, n, b, n, 0, c, n);
		double t = cap_now() - t0, g = 2.0 * n * n * n / t / 1e9;
		if (r > 0 && g > best)   /* the first call warms the caches and the thread pool */
			best = g;
	}
	printf("%.1f\n", best);
	free(a); free(b); free(c);
	return 0;
}

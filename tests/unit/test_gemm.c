/* cap_sgemm (oneDNN) against the plain C reference and a double-precision oracle, for every
 * transpose combination, odd sizes, leading dimensions larger than the width, and beta. */
#include "check.h"
#include "ops/gemm.h"
#include <stdlib.h>

static float frand(unsigned *s) { *s = *s * 1103515245u + 12345u; return ((*s >> 8) & 0xffff) / 32768.0f - 1.0f; }

int main(void)
{
	unsigned seed = 7;
	static const int sizes[][3] = { {1, 1, 1}, {3, 5, 7}, {17, 33, 9}, {64, 2048, 512}, {130, 70, 300} };
	for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
		int M = sizes[s][0], N = sizes[s][1], K = sizes[s][2];
		for (int ta = 0; ta < 2; ta++) for (int tb = 0; tb < 2; tb++) for (int bz = 0; bz < 2; bz++) {
			int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
			int ra = ta ? K : M, rb = tb ? N : K;
			float *A = malloc(sizeof(float) * ra * lda), *B = malloc(sizeof(float) * rb * ldb);
			float *C0 = malloc(sizeof(float) * M * ldc), *C1 = malloc(sizeof(float) * M * ldc);
			float *C2 = malloc(sizeof(float) * M * ldc);
			for (int i = 0; i < ra * lda; i++) A[i] = frand(&seed);
			for (int i = 0; i < rb * ldb; i++) B[i] = frand(&seed);
			for (int i = 0; i < M * ldc; i++) C0[i] = C1[i] = C2[i] = frand(&seed);
			float alpha = 0.75f, beta = bz ? 0.5f : 0.0f;
			cap_sgemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C0, ldc);
			cap_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C1, ldc);
			double maxe_ref = 0, maxe_fast = 0, maxv = 0;
			int pad_kept = 1;
			for (int i = 0; i < M; i++) {
				for (int j = 0; j < N; j++) {
					double d = 0;
					for (int k = 0; k < K; k++)
						d += (double)(ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
					d = alpha * d + (bz ? beta * (double)C2[i * ldc + j] : 0);
					double e0 = fabs(C0[i * ldc + j] - d), e1 = fabs(C1[i * ldc + j] - d);
					if (e0 > maxe_ref) maxe_ref = e0;
					if (e1 > maxe_fast) maxe_fast = e1;
					if (fabs(d) > maxv) maxv = fabs(d);
				}
				for (int j = N; j < ldc; j++)
					if (C0[i * ldc + j] != C2[i * ldc + j] || C1[i * ldc + j] != C2[i * ldc + j]) pad_kept = 0;
			}
			double tol = 1e-6 * K + 1e-6;
			CHECK(maxe_ref <= tol * (maxv + 1) && maxe_fast <= tol * (maxv + 1) && pad_kept,
			      "sgemm M=%d N=%d K=%d ta=%d tb=%d beta=%g: ref err %.3g, oneDNN err %.3g (max %.3g)",
			      M, N, K, ta, tb, beta, maxe_ref, maxe_fast, maxv);
			free(A); free(B); free(C0); free(C1); free(C2);
		}
	}
	/* The switch routes cap_sgemm to the reference. */
	float a[2] = {1, 2}, b[2] = {3, 4}, c = 0;
	cap_gemm_set_reference(1);
	CHECK(cap_gemm_reference() == 1, "reference switch on");
	cap_sgemm(0, 0, 1, 1, 2, 1, a, 2, b, 1, 0, &c, 1);
	cap_gemm_set_reference(0);
	CHECK(c == 11, "reference path computes a dot product (%g)", c);
	CHECK(cap_gemm_set_threads(1) == 0 && cap_gemm_set_threads(2) == 0, "thread count can be set");
	return check_exit();
}

/* The cpu backend's own kernels (oneDNN, AVX-512); its table (table.c) points at these where the
 * processor has what they need and at the ref kernels elsewhere. Internal to lib/ops. */
#ifndef CAP_OPS_CPU_H
#define CAP_OPS_CPU_H
#include "ops/host.h"

/* Loops over independent blocks run on oneDNN's own OpenMP threads (the same pool and thread
 * count as the GEMMs) where the build has OpenMP: gcc with -fopenmp, see the Makefile. The fuzz
 * build (clang) runs them serially. Every such loop gives the same result at any thread count. */
#define CAP_PRAGMA(x) _Pragma(#x)
#ifdef _OPENMP
#define CAP_PARALLEL_FOR_IF(cond) CAP_PRAGMA(omp parallel for schedule(static) if (cond))
#else
#define CAP_PARALLEL_FOR_IF(cond)
#endif

int cap_cpu_set_threads(int n);
void cap_cpu_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc);
void cap_cpu_matmul(const float *x, int n, const cap_weight *w, int trans, float beta, float *y);
void cap_cpu_matmul_bias(const float *x, int n, const cap_weight *w, const float *b1, const float *b2,
                         float *y);

/* matmul primitives (matmul.c): bf16 only where the processor has AVX512-BF16, see
 * cap_cpu_set_precision */
int cap_cpu_set_precision(cap_precision p);
void cap_cpu_to_bf16(const float *src, int rows, int cols, int ld, uint16_t *dst);
/* Frozen operands (ops.h freeze and thaw): the bf16 rounding of each made once, on first use */
void cap_cpu_freeze(const float *x, size_t n);
void cap_cpu_thaw(const float *x);
void cap_cpu_gemm_bf16(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                       const float *B, int ldb, float beta, float *C, int ldc);
void cap_cpu_gemm_f32_prim(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                           const float *B, int ldb, float beta, float *C, int ldc);
/* C (M, N) = alpha A^T B + beta C with B packed first (A stored (K, M), B (K, N)), in the
 * precision of the moment */
void cap_cpu_gemm_tn(int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                     int ldb, float beta, float *C, int ldc);
/* y = x W^T (trans) or x W, + beta y, or with b1 (+ b2) in the epilogue (trans only, beta 0), on
 * the primitive with W packed in the precision of the moment */
void cap_cpu_matmul_packed(const float *x, int n, cap_weight *w, int trans, float beta, float *y,
                           const float *b1, const float *b2);
/* Prepared weights: packed in the layout the primitive reads (one copy for each direction
 * used, in the precision of the moment), refreshed by weight_update. */
void cap_cpu_weight_update(cap_weight *w);
void cap_cpu_weight_free(cap_weight *w);
/* Adam on a weight's parameters, its packed copies refreshed band by band (see ops.h) */
void cap_cpu_weight_adam(cap_weight *w, const float *grad, float *m, float *v, const cap_adam_consts *k);

/* The vector kernels, one body compiled at each width (vec_widths.h, see vec.h): cap_avx512_*
 * (AVX-512F) and cap_avx2_* (AVX2 with FMA), each called only where the processor has what it
 * was compiled for. One list for the declarations here and the table's choice (table.c), so
 * that both widths always offer the same kernels. */
#define CAP_CPU_VEC_KERNELS(isa) \
	void cap_##isa##_lstm_cell_forward(float *g, const float *c_prev, float *c, float *tc, float *h, int n, \
	                                   int H); \
	void cap_##isa##_lstm_cell_backward(const float *g, const float *c_prev, const float *tc, const float *dh, \
	                                    const float *dh_rec, float *dc, float *dg, int n, int H); \
	void cap_##isa##_log_softmax_rows(float *x, int rows, int n); \
	void cap_##isa##_softmax_xent_rows(float *x, const uint32_t *target, int n, int V, float grad_scale, \
	                                   double *loss); \
	void cap_##isa##_adam_step(float *param, const float *grad, float *m, float *v, size_t n, \
	                           const cap_adam_consts *k); \
	/* the same on the calling thread alone */ \
	void cap_##isa##_adam_band(float *param, const float *grad, float *m, float *v, size_t n, \
	                           const cap_adam_consts *k); \
	void cap_##isa##_col_sums(const float *x, int rows, int n, float *out);
CAP_CPU_VEC_KERNELS(avx512)
CAP_CPU_VEC_KERNELS(avx2)
/* The table entries of those kernels at one width, in the table ops (table.c) */
#define CAP_CPU_USE_VEC_KERNELS(ops, isa) \
	((ops).lstm_cell_forward = cap_##isa##_lstm_cell_forward, \
	 (ops).lstm_cell_backward = cap_##isa##_lstm_cell_backward, \
	 (ops).log_softmax_rows = cap_##isa##_log_softmax_rows, \
	 (ops).softmax_xent_rows = cap_##isa##_softmax_xent_rows, \
	 (ops).adam_step = cap_##isa##_adam_step, \
	 (ops).col_sums = cap_##isa##_col_sums)
/* AVX-512 alone: the sum of squares for clipping (adam.c) */
double cap_avx512_sum_squares(const float *x, size_t n);

void cap_cpu_bias_rows(float *y, const float *b1, const float *b2, int rows, int n);
void cap_cpu_row_topk(const float *x, int rows, int n, int k, int ex0, int ex1, float *vals,
                      int32_t *idx);

cap_encoder *cap_cpu_encoder_new(struct cap_resnet *net, int batch, int h, int w, int flags);
int cap_cpu_encoder_run(cap_encoder *e, const float *in, int n, float *out);
const char *cap_cpu_encoder_impl(const cap_encoder *e);
void cap_cpu_encoder_free(cap_encoder *e);
#endif

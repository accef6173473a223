/* Shared by the two host backends (ref and cpu): their prepared weight and the plain C kernels
 * the cpu table points at where it has nothing faster. Not for model code: model code sees only
 * lib/ops/ops.h. */
#ifndef CAP_OPS_HOST_H
#define CAP_OPS_HOST_H
#include "ops/ops.h"

struct cap_cpu_packed;
struct cap_weight {
	const float *w;   /* (rows, cols), the caller's */
	/* the cpu backend's copies of W packed for its matmul primitive: [1] for x W^T, [0] for
	 * x W; each made when first used, NULL until then (see lib/ops/cpu/matmul.c) */
	struct cap_cpu_packed *packed[2];
	int rows, cols, flags;
};

/* memory (host) */
void *cap_host_alloc(size_t bytes);
void cap_host_free(void *p);
void cap_host_copy(void *dst, const void *src, size_t bytes);
void cap_host_zero(void *dst, size_t bytes);
void cap_host_sync(void);
void cap_host_freeze(const float *x, size_t n);   /* keeps nothing */
void cap_host_thaw(const float *x);

/* the reference kernels (lib/ops/ref/), with the contracts of ops.h */
int cap_ref_set_threads(int n);
/* The precision of the host backends' dense ops (one per process, as the thread count is):
 * ref takes fp32 and bf16 (its bf16 is the definition: operands rounded by cap_bf16_round,
 * products summed in fp32); the cpu backend takes bf16 only where the processor has
 * AVX512-BF16. */
int cap_ref_set_precision(cap_precision p);
cap_precision cap_host_precision(void);
void cap_ref_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc);
cap_weight *cap_ref_weight_new(const float *w, int rows, int cols, int flags);
void cap_ref_weight_update(cap_weight *w);
void cap_ref_weight_free(cap_weight *w);
void cap_ref_matmul(const float *x, int n, const cap_weight *w, int trans, float beta, float *y);
void cap_ref_matmul_bias(const float *x, int n, const cap_weight *w, const float *b1, const float *b2,
                         float *y);
void cap_ref_bias_rows(float *y, const float *b1, const float *b2, int rows, int n);
void cap_ref_col_sums(const float *x, int rows, int n, float *out);
void cap_ref_row_gather(float *out, const float *src, const int32_t *idx, int n, int width);
void cap_ref_embed_gather(float *out, const float *table, const uint32_t *ids, int n, int E);
void cap_ref_embed_scatter_add(float *grad, const float *d, const uint32_t *ids, int n, int E);
void cap_ref_mul(float *x, const float *y, size_t n);
void cap_ref_scale(float *x, size_t n, float a);
double cap_ref_sum_squares(const float *x, size_t n);
void cap_ref_lstm_cell_forward(float *g, const float *c_prev, float *c, float *tc, float *h, int n, int H);
void cap_ref_lstm_cell_backward(const float *g, const float *c_prev, const float *tc, const float *dh,
                                const float *dh_rec, float *dc, float *dg, int n, int H);
void cap_ref_log_softmax_rows(float *x, int rows, int n);
void cap_ref_softmax_xent_rows(float *x, const uint32_t *target, int n, int V, float grad_scale,
                               double *loss);
/* one row of softmax_xent_rows; the cpu backend finishes odd rows with it */
double cap_ref_softmax_xent_row(float *v, uint32_t target, int V, float grad_scale);
void cap_ref_row_topk(const float *x, int rows, int n, int k, int ex0, int ex1, float *vals,
                      int32_t *idx);
void cap_ref_dropout_forward(const float *h, float *mask, float *hd, size_t n, float p, uint64_t seed);
void cap_ref_adam_step(float *param, const float *grad, float *m, float *v, size_t n,
                       const cap_adam_consts *k);
void cap_ref_weight_adam(cap_weight *w, const float *grad, float *m, float *v, const cap_adam_consts *k);
cap_encoder *cap_ref_encoder_new(struct cap_resnet *net, int batch, int h, int w, int flags);
int cap_ref_encoder_run(cap_encoder *e, const float *in, int n, float *out);
const char *cap_ref_encoder_impl(const cap_encoder *e);
void cap_ref_encoder_free(cap_encoder *e);
#endif

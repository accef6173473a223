/* Internal to the CUDA module (the .cu files of lib/ops/cuda, built into libcap-cuda.so, never into
 * libcap.a): the module's one context, the checking macros and the kernels' entry points.
 *
 * Errors. Every CUDA, cuBLAS and cuDNN call is checked. A failing op prints
 * "PROG: CUDA backend: OP: WHAT (FILE:LINE)" on stderr (never stdout: it carries the stream) and
 * exits 1, as ops.h asks; alloc and encoder_new instead record the message with cap_fail and
 * return NULL. cap_fail is the tool's own: each tool exports it (the Makefile links the tools
 * with --export-dynamic-symbol=cap_fail) and the module leaves it undefined, so the message lands
 * in the tool's per-thread buffer that cap_errmsg() reads; the module links nothing of lib/.
 * Kernel faults surface at the next synchronising call; CAP_CUDA_SYNC=1 synchronises after every
 * op so that the failing one is named.
 *
 * Streams. Everything runs in order on one stream (ctx.stream), cuBLAS and cuDNN included;
 * memory comes from the stream-ordered allocator, so freeing never waits for the device. */
#ifndef CAP_OPS_CUDA_H
#define CAP_OPS_CUDA_H
#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include "ops/ops.h"
#include "core/error.h"
}

struct cap_cuda_ctx {
	int device;
	cudaDeviceProp prop;
	cudaStream_t stream;
	cublasHandle_t blas;
	void *blas_ws;              /* cuBLAS workspace (32 MiB, as advised for Hopper) */
	cap_precision prec;         /* of gemm and matmul (and the encoder built after it is set) */
	int sync_each;              /* CAP_CUDA_SYNC=1 */
	void *scratch[2];           /* bf16 copies of gemm operands, grown as needed */
	size_t scratch_bytes[2];
	double *partial;            /* sum_squares: per-block partial sums (device) */
	double *partial_host;       /* pinned, the final sum */
};
extern cap_cuda_ctx cap_cuda;

/* Prints the error and exits 1. */
[[noreturn]] void cap_cuda_die(const char *op, const char *file, int line, const char *what,
                               const char *detail);
/* After a kernel launch: checks the launch, and with CAP_CUDA_SYNC waits and checks its run. */
void cap_cuda_launched(const char *op, const char *file, int line);
/* A device scratch buffer of at least bytes (slot 0 or 1), valid until the next call for it. */
void *cap_cuda_scratch(int slot, size_t bytes);
/* Blocks of 256 threads for n elements with grid-stride loops. */
unsigned cap_cuda_blocks(size_t n);

#define CUDA_CHECK(op, call) do { \
	cudaError_t e_ = (call); \
	if (e_ != cudaSuccess) \
		cap_cuda_die(op, __FILE__, __LINE__, cudaGetErrorName(e_), cudaGetErrorString(e_)); \
	} while (0)
#define CUBLAS_CHECK(op, call) do { \
	cublasStatus_t s_ = (call); \
	if (s_ != CUBLAS_STATUS_SUCCESS) \
		cap_cuda_die(op, __FILE__, __LINE__, cublasGetStatusName(s_), cublasGetStatusString(s_)); \
	} while (0)
#define LAUNCHED(op) cap_cuda_launched(op, __FILE__, __LINE__)

/* memory.cu */
void *cap_cuda_alloc(size_t bytes);
void cap_cuda_free(void *p);
void cap_cuda_upload(void *dst, const void *src, size_t bytes);
void cap_cuda_download(void *dst, const void *src, size_t bytes);
void cap_cuda_copy(void *dst, const void *src, size_t bytes);
void cap_cuda_zero(void *dst, size_t bytes);
void cap_cuda_sync(void);
void cap_cuda_freeze(const float *x, size_t n);
void cap_cuda_thaw(const float *x);
int cap_cuda_set_threads(int n);

/* gemm.cu */
int cap_cuda_set_precision(cap_precision p);
void cap_cuda_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *B, int ldb, float beta, float *C, int ldc);
cap_weight *cap_cuda_weight_new(const float *w, int rows, int cols, int flags);
void cap_cuda_weight_update(cap_weight *w);
void cap_cuda_weight_free(cap_weight *w);
void cap_cuda_weight_adam(cap_weight *w, const float *grad, float *m, float *v, const cap_adam_consts *k);
void cap_cuda_matmul(const float *x, int n, const cap_weight *w, int trans, float beta, float *y);
void cap_cuda_matmul_bias(const float *x, int n, const cap_weight *w, const float *b1, const float *b2,
                          float *y);

/* rows.cu */
void cap_cuda_bias_rows(float *y, const float *b1, const float *b2, int rows, int n);
void cap_cuda_col_sums(const float *x, int rows, int n, float *out);
void cap_cuda_row_gather(float *out, const float *src, const int32_t *idx, int n, int width);
void cap_cuda_embed_gather(float *out, const float *table, const uint32_t *ids, int n, int E);
void cap_cuda_embed_scatter_add(float *grad, const float *d, const uint32_t *ids, int n, int E);
void cap_cuda_mul(float *x, const float *y, size_t n);
void cap_cuda_scale(float *x, size_t n, float a);
double cap_cuda_sum_squares(const float *x, size_t n);
void cap_cuda_dropout_forward(const float *h, float *mask, float *hd, size_t n, float p, uint64_t seed);

/* lstm.cu */
void cap_cuda_lstm_cell_forward(float *g, const float *c_prev, float *c, float *tc, float *h, int n, int H);
void cap_cuda_lstm_cell_backward(const float *g, const float *c_prev, const float *tc, const float *dh,
                                 const float *dh_rec, float *dc, float *dg, int n, int H);

/* softmax.cu */
void cap_cuda_log_softmax_rows(float *x, int rows, int n);
void cap_cuda_softmax_xent_rows(float *x, const uint32_t *target, int n, int V, float grad_scale,
                                double *loss);

/* topk.cu */
void cap_cuda_row_topk(const float *x, int rows, int n, int k, int ex0, int ex1, float *vals, int32_t *idx);

/* adam.cu */
void cap_cuda_adam_step(float *param, const float *grad, float *m, float *v, size_t n,
                        const cap_adam_consts *k);

/* bf16.cu: dst (rows, cols) bf16, packed = src (rows, cols) with row stride ld, rounded */
void cap_cuda_to_bf16(uint16_t *dst, const float *src, int rows, int cols, int ld);

/* graph.cu: recorded runs of ops (ops.h), in the table with CAP_CUDA_GRAPHS=1 */
int cap_cuda_graph_replay(uint64_t key);
int cap_cuda_graph_begin(uint64_t key);
void cap_cuda_graph_end(void);
void cap_cuda_graph_forget(void);
void cap_cuda_graph_report_at_exit(void);   /* counts on stderr at exit */

/* resnet.cu */
cap_encoder *cap_cuda_encoder_new(struct cap_resnet *net, int batch, int h, int w, int flags);
int cap_cuda_encoder_run(cap_encoder *e, const float *in, int n, float *out);
const char *cap_cuda_encoder_impl(const cap_encoder *e);
void cap_cuda_encoder_free(cap_encoder *e);
#endif

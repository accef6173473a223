/* The CUDA backend's GEMM on cuBLAS, prepared weights, and the precision of both (see ops.h).
 *
 * cuBLAS is column-major: a row-major matrix with row stride ld is, to cuBLAS, its transpose
 * with leading dimension ld. So the row-major C = op(A) op(B) is computed as the column-major
 * C^T = op(B)^T op(A)^T: the operands are swapped and nothing is transposed in memory.
 *
 * Precision: fp32 (the default) keeps cuBLAS's default math, which never uses TF32; tf32 sets
 * CUBLAS_TF32_TENSOR_OP_MATH; bf16 rounds both operands to bfloat16 (a conversion kernel into
 * scratch buffers, or the weight's prepared copy) and multiplies with cublasGemmEx, accumulating
 * and writing C in fp32, so the master weights and every other op stay fp32. */
#include "ops/cuda/cuda.h"
#include "ops/cuda/kernels_math.h"

struct cap_weight {
	const float *w;   /* (rows, cols), the caller's device memory */
	uint16_t *wb;     /* (rows, cols) bf16 copy when it was prepared in bf16, else NULL */
	int rows, cols, flags;
};

int cap_cuda_set_precision(cap_precision p)
{
	if (p != CAP_PRECISION_FP32 && p != CAP_PRECISION_TF32 && p != CAP_PRECISION_BF16)
		return cap_fail("unknown precision %d", (int)p);
	cublasMath_t mode = p == CAP_PRECISION_TF32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH;
	cublasStatus_t s = cublasSetMathMode(cap_cuda.blas, mode);
	if (s != CUBLAS_STATUS_SUCCESS)
		return cap_fail("cuBLAS: cannot set the math mode: %s", cublasGetStatusString(s));
	cap_cuda.prec = p;
	return 0;
}

static __global__ void to_bf16_kernel(uint16_t *dst, const float *src, int rows, int cols, int ld)
{
	size_t n = (size_t)rows * cols;
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
		size_t r = i / cols, c = i % cols;
		dst[i] = cap_bf16_bits(src[r * ld + c]);
	}
}

void cap_cuda_to_bf16(uint16_t *dst, const float *src, int rows, int cols, int ld)
{
	size_t n = (size_t)rows * cols;
	if (!n)
		return;
	to_bf16_kernel<<<cap_cuda_blocks(n), 256, 0, cap_cuda.stream>>>(dst, src, rows, cols, ld);
	LAUNCHED("bf16 conversion");
}

/* C (M, N) = beta C when there is nothing to multiply (K == 0); beta == 0 writes zeros. */
static __global__ void scale_c_kernel(float *C, int M, int N, int ldc, float beta)
{
	size_t n = (size_t)M * N;
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
		float *c = C + (i / N) * ldc + i % N;
		*c = beta == 0 ? 0.0f : beta * *c;
	}
}

/* The row-major product with optional prepared bf16 copies of A or B (packed, row stride = the
 * stored matrix's columns). */
static void gemm(const char *op, int ta, int tb, int M, int N, int K, float alpha, const float *A,
                 int lda, const uint16_t *Ab, const float *B, int ldb, const uint16_t *Bb, float beta,
                 float *C, int ldc)
{
	if (M <= 0 || N <= 0)
		return;
	if (K <= 0) {
		scale_c_kernel<<<cap_cuda_blocks((size_t)M * N), 256, 0, cap_cuda.stream>>>(C, M, N, ldc, beta);
		LAUNCHED(op);
		return;
	}
	cublasOperation_t opB = tb ? CUBLAS_OP_T : CUBLAS_OP_N, opA = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
	if (cap_cuda.prec != CAP_PRECISION_BF16) {
		CUBLAS_CHECK(op, cublasSgemm(cap_cuda.blas, opB, opA, N, M, K, &alpha, B, ldb, A, lda, &beta, C, ldc));
		if (cap_cuda.sync_each)
			cap_cuda_sync();
		return;
	}
	/* bf16: the stored shapes (rows, cols) of A and B, packed into scratch unless prepared */
	int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
	int ldab = ac, ldbb = bc;
	if (!Ab) {
		uint16_t *s = (uint16_t *)cap_cuda_scratch(0, sizeof(uint16_t) * (size_t)ar * ac);
		cap_cuda_to_bf16(s, A, ar, ac, lda);
		Ab = s;
	}
	if (!Bb) {
		uint16_t *s = (uint16_t *)cap_cuda_scratch(1, sizeof(uint16_t) * (size_t)br * bc);
		cap_cuda_to_bf16(s, B, br, bc, ldb);
		Bb = s;
	}
	CUBLAS_CHECK(op, cublasGemmEx(cap_cuda.blas, opB, opA, N, M, K, &alpha, Bb, CUDA_R_16BF, ldbb, Ab,
	                              CUDA_R_16BF, ldab, &beta, C, CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F,
	                              CUBLAS_GEMM_DEFAULT));
	if (cap_cuda.sync_each)
		cap_cuda_sync();
}

void cap_cuda_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *B, int ldb, float beta, float *C, int ldc)
{
	gemm("gemm", ta, tb, M, N, K, alpha, A, lda, NULL, B, ldb, NULL, beta, C, ldc);
}

/* The weight is used in place in fp32 and tf32 (cuBLAS takes either orientation at full speed);
 * in bf16 it keeps a rounded copy, refreshed by weight_update. */
cap_weight *cap_cuda_weight_new(const float *w, int rows, int cols, int flags)
{
	cap_weight *p = (cap_weight *)cap_xcalloc(1, sizeof *p);
	p->w = w;
	p->rows = rows;
	p->cols = cols;
	p->flags = flags;
	if (cap_cuda.prec == CAP_PRECISION_BF16) {
		size_t bytes = sizeof(uint16_t) * (size_t)rows * cols;
		CUDA_CHECK("weight_new", cudaMallocAsync((void **)&p->wb, bytes ? bytes : 2, cap_cuda.stream));
		cap_cuda_to_bf16(p->wb, w, rows, cols, cols);
	}
	return p;
}

void cap_cuda_weight_update(cap_weight *w)
{
	if (w->wb)
		cap_cuda_to_bf16(w->wb, w->w, w->rows, w->cols, w->cols);
}

/* Adam on W in place, then the bf16 copy (if any) rounded again: two launches in order on the
 * stream (the card reads W from its own memory either way). */
void cap_cuda_weight_adam(cap_weight *w, const float *grad, float *m, float *v, const cap_adam_consts *k)
{
	cap_cuda_adam_step((float *)w->w, grad, m, v, (size_t)w->rows * w->cols, k);
	cap_cuda_weight_update(w);
}

void cap_cuda_weight_free(cap_weight *w)
{
	if (!w)
		return;
	if (w->wb)
		CUDA_CHECK("weight_free", cudaFreeAsync(w->wb, cap_cuda.stream));
	free(w);
}

void cap_cuda_matmul(const float *x, int n, const cap_weight *w, int trans, float beta, float *y)
{
	const uint16_t *wb = cap_cuda.prec == CAP_PRECISION_BF16 ? w->wb : NULL;
	if (trans)   /* y (n, rows) = x (n, cols) W^T */
		gemm("matmul", 0, 1, n, w->rows, w->cols, 1, x, w->cols, NULL, w->w, w->cols, wb, beta, y, w->rows);
	else         /* y (n, cols) = x (n, rows) W */
		gemm("matmul", 0, 0, n, w->cols, w->rows, 1, x, w->rows, NULL, w->w, w->cols, wb, beta, y, w->cols);
}

/* The bias rows, then the product added to them: the calls ran on the H200 before this op
 * existed (cuBLAS has no bias argument; a cuBLASLt epilogue could fuse it). */
void cap_cuda_matmul_bias(const float *x, int n, const cap_weight *w, const float *b1, const float *b2,
                          float *y)
{
	cap_cuda_bias_rows(y, b1, b2, n, w->rows);
	cap_cuda_matmul(x, n, w, 1, 1, y);
}

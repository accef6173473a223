/* Row and elementwise ops on the GPU (see ops.h; plain versions in lib/ops/ref/rows.c): bias
 * broadcast, column sums in double, gathers, the embedding's scatter-add with atomics, mul,
 * scale, the sum of squares in double, dropout. */
#include "ops/cuda/cuda.h"
#include "ops/cuda/kernels_math.h"

#define GRID_STRIDE(i, n) \
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

static __global__ void bias_rows_kernel(float *y, const float *b1, const float *b2, int rows, int n)
{
	size_t total = (size_t)rows * n;
	GRID_STRIDE(i, total) {
		size_t j = i % n;
		y[i] = b2 ? b1[j] + b2[j] : b1[j];
	}
}

void cap_cuda_bias_rows(float *y, const float *b1, const float *b2, int rows, int n)
{
	size_t total = (size_t)(rows > 0 ? rows : 0) * (n > 0 ? n : 0);
	if (!total)
		return;
	bias_rows_kernel<<<cap_cuda_blocks(total), 256, 0, cap_cuda.stream>>>(y, b1, b2, rows, n);
	LAUNCHED("bias_rows");
}

/* Blocks of 32 columns x 16 row lanes: each lane sums every 16th row of its column in double,
 * then the 16 partial sums of a column are added in a fixed order (deterministic). */
enum { CS_COLS = 32, CS_LANES = 16 };

static __global__ void col_sums_kernel(const float *x, int rows, int n, float *out)
{
	__shared__ double part[CS_LANES][CS_COLS];
	int j = blockIdx.x * CS_COLS + threadIdx.x;
	double s = 0;
	if (j < n)
		for (int r = threadIdx.y; r < rows; r += CS_LANES)
			s += x[(size_t)r * n + j];
	part[threadIdx.y][threadIdx.x] = s;
	__syncthreads();
	if (threadIdx.y == 0 && j < n) {
		double t = 0;
		for (int l = 0; l < CS_LANES; l++)
			t += part[l][threadIdx.x];
		out[j] = (float)t;
	}
}

void cap_cuda_col_sums(const float *x, int rows, int n, float *out)
{
	if (n <= 0)
		return;
	dim3 block(CS_COLS, CS_LANES);
	col_sums_kernel<<<(n + CS_COLS - 1) / CS_COLS, block, 0, cap_cuda.stream>>>(x, rows < 0 ? 0 : rows, n, out);
	LAUNCHED("col_sums");
}

template <typename I>
static __global__ void gather_kernel(float *out, const float *src, const I *idx, int n, int width)
{
	size_t total = (size_t)n * width;
	GRID_STRIDE(i, total) {
		size_t r = i / width, c = i % width;
		out[i] = src[(size_t)idx[r] * width + c];
	}
}

void cap_cuda_row_gather(float *out, const float *src, const int32_t *idx, int n, int width)
{
	size_t total = (size_t)(n > 0 ? n : 0) * (width > 0 ? width : 0);
	if (!total)
		return;
	gather_kernel<int32_t><<<cap_cuda_blocks(total), 256, 0, cap_cuda.stream>>>(out, src, idx, n, width);
	LAUNCHED("row_gather");
}

void cap_cuda_embed_gather(float *out, const float *table, const uint32_t *ids, int n, int E)
{
	size_t total = (size_t)(n > 0 ? n : 0) * (E > 0 ? E : 0);
	if (!total)
		return;
	gather_kernel<uint32_t><<<cap_cuda_blocks(total), 256, 0, cap_cuda.stream>>>(out, table, ids, n, E);
	LAUNCHED("embed_gather");
}

static __global__ void scatter_add_kernel(float *grad, const float *d, const uint32_t *ids, int n, int E)
{
	size_t total = (size_t)n * E;
	GRID_STRIDE(i, total) {
		size_t r = i / E, c = i % E;
		atomicAdd(grad + (size_t)ids[r] * E + c, d[i]);
	}
}

void cap_cuda_embed_scatter_add(float *grad, const float *d, const uint32_t *ids, int n, int E)
{
	size_t total = (size_t)(n > 0 ? n : 0) * (E > 0 ? E : 0);
	if (!total)
		return;
	scatter_add_kernel<<<cap_cuda_blocks(total), 256, 0, cap_cuda.stream>>>(grad, d, ids, n, E);
	LAUNCHED("embed_scatter_add");
}

static __global__ void mul_kernel(float *x, const float *y, size_t n)
{
	GRID_STRIDE(i, n) x[i] *= y[i];
}

void cap_cuda_mul(float *x, const float *y, size_t n)
{
	if (!n)
		return;
	mul_kernel<<<cap_cuda_blocks(n), 256, 0, cap_cuda.stream>>>(x, y, n);
	LAUNCHED("mul");
}

static __global__ void scale_kernel(float *x, size_t n, float a)
{
	GRID_STRIDE(i, n) x[i] *= a;
}

void cap_cuda_scale(float *x, size_t n, float a)
{
	if (!n)
		return;
	scale_kernel<<<cap_cuda_blocks(n), 256, 0, cap_cuda.stream>>>(x, n, a);
	LAUNCHED("scale");
}

/* Sum of squares in two deterministic passes: each block's partial sum (double) into
 * partial[block], then one block adds the partials in a fixed tree. */
enum { SS_THREADS = 256, SS_MAX_BLOCKS = 4096 };

static __device__ double block_sum(double s, double *sh)
{
	sh[threadIdx.x] = s;
	__syncthreads();
	for (int k = blockDim.x / 2; k > 0; k /= 2) {
		if ((int)threadIdx.x < k)
			sh[threadIdx.x] += sh[threadIdx.x + k];
		__syncthreads();
	}
	return sh[0];
}

static __global__ void sum_squares_kernel(const float *x, size_t n, double *partial)
{
	__shared__ double sh[SS_THREADS];
	double s = 0;
	GRID_STRIDE(i, n) s += (double)x[i] * x[i];
	s = block_sum(s, sh);
	if (threadIdx.x == 0)
		partial[blockIdx.x] = s;
}

static __global__ void sum_partials_kernel(double *partial, int nb)
{
	__shared__ double sh[SS_THREADS];
	double s = 0;
	for (int i = threadIdx.x; i < nb; i += blockDim.x)
		s += partial[i];
	s = block_sum(s, sh);
	if (threadIdx.x == 0)
		partial[0] = s;
}

double cap_cuda_sum_squares(const float *x, size_t n)
{
	if (!n)
		return 0;
	unsigned nb = cap_cuda_blocks(n);
	if (nb > SS_MAX_BLOCKS)
		nb = SS_MAX_BLOCKS;
	sum_squares_kernel<<<nb, SS_THREADS, 0, cap_cuda.stream>>>(x, n, cap_cuda.partial);
	LAUNCHED("sum_squares");
	sum_partials_kernel<<<1, SS_THREADS, 0, cap_cuda.stream>>>(cap_cuda.partial, (int)nb);
	LAUNCHED("sum_squares");
	CUDA_CHECK("sum_squares", cudaMemcpyAsync(cap_cuda.partial_host, cap_cuda.partial, sizeof(double),
	                                          cudaMemcpyDeviceToHost, cap_cuda.stream));
	CUDA_CHECK("sum_squares", cudaStreamSynchronize(cap_cuda.stream));
	return *cap_cuda.partial_host;
}

static __global__ void dropout_kernel(const float *h, float *mask, float *hd, size_t n, float p,
                                      float scale, uint64_t seed)
{
	GRID_STRIDE(i, n) {
		float m = cap_dropout_mask(seed, i, p, scale);
		mask[i] = m;
		hd[i] = h[i] * m;
	}
}

void cap_cuda_dropout_forward(const float *h, float *mask, float *hd, size_t n, float p, uint64_t seed)
{
	if (!n)
		return;
	float scale = 1.0f / (1.0f - p);   /* on the host, as ref rounds it */
	dropout_kernel<<<cap_cuda_blocks(n), 256, 0, cap_cuda.stream>>>(h, mask, hd, n, p, scale, seed);
	LAUNCHED("dropout_forward");
}

/* Log-softmax and the fused softmax cross-entropy over rows of logits on the GPU (see ops.h;
 * plain versions in lib/ops/ref/softmax.c): one block of 256 threads per row, the maximum in
 * float, the sums in double (the ref's cross-entropy sums in float: the double sum, rounded once,
 * is at least as close to the exact one), the pieces shared with the host test through
 * kernels_math.h. */
#include "ops/cuda/cuda.h"
#include "ops/cuda/kernels_math.h"

enum { ROW_THREADS = 256, ROW_WARPS = ROW_THREADS / 32 };

static __device__ float block_max(float x, float *sh)
{
	for (int o = 16; o > 0; o /= 2)
		x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
	if ((threadIdx.x & 31) == 0)
		sh[threadIdx.x / 32] = x;
	__syncthreads();
	float m = sh[0];
	for (int w = 1; w < ROW_WARPS; w++)
		m = fmaxf(m, sh[w]);
	__syncthreads();
	return m;
}

static __device__ double block_sum(double x, double *sh)
{
	for (int o = 16; o > 0; o /= 2)
		x += __shfl_xor_sync(0xffffffffu, x, o);
	if ((threadIdx.x & 31) == 0)
		sh[threadIdx.x / 32] = x;
	__syncthreads();
	double s = 0;
	for (int w = 0; w < ROW_WARPS; w++)
		s += sh[w];
	__syncthreads();
	return s;
}

static __global__ void __launch_bounds__(ROW_THREADS) log_softmax_kernel(float *x, int n)
{
	__shared__ float shm[ROW_WARPS];
	__shared__ double shs[ROW_WARPS];
	float *v = x + (size_t)blockIdx.x * n;
	float mx = -INFINITY;
	for (int j = threadIdx.x; j < n; j += ROW_THREADS)
		mx = fmaxf(mx, v[j]);
	mx = block_max(mx, shm);
	double s = 0;
	for (int j = threadIdx.x; j < n; j += ROW_THREADS)
		s += cap_lsm_term(v[j], mx);
	s = block_sum(s, shs);
	float lse = cap_lsm_lse(mx, s);
	for (int j = threadIdx.x; j < n; j += ROW_THREADS)
		v[j] -= lse;
}

void cap_cuda_log_softmax_rows(float *x, int rows, int n)
{
	if (rows <= 0 || n <= 0)
		return;
	log_softmax_kernel<<<rows, ROW_THREADS, 0, cap_cuda.stream>>>(x, n);
	LAUNCHED("log_softmax_rows");
}

static __global__ void __launch_bounds__(ROW_THREADS)
xent_kernel(float *x, const uint32_t *target, int V, float grad_scale, double *loss)
{
	__shared__ float shm[ROW_WARPS];
	__shared__ double shs[ROW_WARPS];
	float *v = x + (size_t)blockIdx.x * V;
	uint32_t tg = target[blockIdx.x];
	if (tg == CAP_TARGET_NONE) {   /* padding: no loss, no gradient (the whole block returns) */
		if (grad_scale > 0)
			for (int j = threadIdx.x; j < V; j += ROW_THREADS)
				v[j] = 0.0f;
		if (threadIdx.x == 0)
			loss[blockIdx.x] = 0.0;
		return;
	}
	float mx = -INFINITY;
	for (int j = threadIdx.x; j < V; j += ROW_THREADS)
		mx = fmaxf(mx, v[j]);
	mx = block_max(mx, shm);   /* ends with a barrier: v[tg] is read before anyone writes it */
	float xt = v[tg] - mx;
	__syncthreads();
	double acc = 0;
	for (int j = threadIdx.x; j < V; j += ROW_THREADS) {
		float e = cap_xent_exp(v[j], mx);
		v[j] = e;
		acc += e;
	}
	float s = (float)block_sum(acc, shs);
	if (grad_scale > 0) {
		float k = cap_xent_factor(grad_scale, s);
		for (int j = threadIdx.x; j < V; j += ROW_THREADS)
			v[j] *= k;
		__syncthreads();
		if (threadIdx.x == 0)
			v[tg] -= grad_scale;
	}
	if (threadIdx.x == 0)
		loss[blockIdx.x] = cap_xent_loss(s, xt);
}

void cap_cuda_softmax_xent_rows(float *x, const uint32_t *target, int n, int V, float grad_scale,
                                double *loss)
{
	if (n <= 0)
		return;
	xent_kernel<<<n, ROW_THREADS, 0, cap_cuda.stream>>>(x, target, V, grad_scale, loss);
	LAUNCHED("softmax_xent_rows");
}

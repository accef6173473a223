/* The k best columns of each row on the GPU (see ops.h, row_topk; the definition is
 * cap_ref_row_topk in lib/ops/ref/softmax.c): one block per row and k rounds, each a block-wide
 * search for the best column after the previous round's winner, in the order of
 * cap_topk_better. A round reads the row again (from L1/L2: a vocabulary row is 10 KB), which
 * for the k <= 16 of a beam costs less than keeping sorted lists per thread. */
#include "ops/cuda/cuda.h"
#include <limits.h>

enum { TOPK_THREADS = 128, TOPK_WARPS = TOPK_THREADS / 32 };

static __device__ __forceinline__ void take_better(float &bv, int &bi, float v, int i)
{
	if (cap_topk_better(v, i, bv, bi)) {
		bv = v;
		bi = i;
	}
}

static __global__ void __launch_bounds__(TOPK_THREADS)
topk_kernel(const float *x, int n, int k, int ex0, int ex1, float *vals, int32_t *idx)
{
	__shared__ float sv[TOPK_WARPS];
	__shared__ int si[TOPK_WARPS];
	__shared__ float win_v;
	__shared__ int win_i;
	const float *v = x + (size_t)blockIdx.x * n;
	float pv = INFINITY;
	int pi = -1;
	for (int j = 0; j < k; j++) {
		float bv = -INFINITY;
		int bi = INT_MAX;
		for (int i = threadIdx.x; i < n; i += TOPK_THREADS) {
			float xv = v[i];
			if (i != ex0 && i != ex1 && cap_topk_better(pv, pi, xv, i))
				take_better(bv, bi, xv, i);
		}
		for (int o = 16; o > 0; o /= 2)
			take_better(bv, bi, __shfl_xor_sync(0xffffffffu, bv, o), __shfl_xor_sync(0xffffffffu, bi, o));
		if ((threadIdx.x & 31) == 0) {
			sv[threadIdx.x / 32] = bv;
			si[threadIdx.x / 32] = bi;
		}
		__syncthreads();
		if (threadIdx.x == 0) {
			for (int w = 1; w < TOPK_WARPS; w++)
				take_better(bv, bi, sv[w], si[w]);
			vals[(size_t)blockIdx.x * k + j] = bv;
			idx[(size_t)blockIdx.x * k + j] = bi == INT_MAX ? -1 : bi;
			win_v = bv;
			win_i = bi;
		}
		__syncthreads();
		if (win_i != INT_MAX) {   /* the same for every thread: a round that found nothing ends it */
			pv = win_v;
			pi = win_i;
		}
		__syncthreads();          /* win_v and win_i are rewritten next round */
	}
}

void cap_cuda_row_topk(const float *x, int rows, int n, int k, int ex0, int ex1, float *vals, int32_t *idx)
{
	if (rows <= 0 || k <= 0)
		return;
	topk_kernel<<<rows, TOPK_THREADS, 0, cap_cuda.stream>>>(x, n, k, ex0, ex1, vals, idx);
	LAUNCHED("row_topk");
}

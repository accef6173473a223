/* The LSTM cell on the GPU, forward and backward (see ops.h; plain version in
 * lib/ops/ref/lstm.c): one thread per element of (n, H), the element math shared with the host
 * test through kernels_math.h. */
#include "ops/cuda/cuda.h"
#include "ops/cuda/kernels_math.h"

static __global__ void lstm_fwd_kernel(float *g, const float *c_prev, float *c, float *tc, float *h,
                                       int n, int H)
{
	size_t total = (size_t)n * H;
	for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < total; e += (size_t)gridDim.x * blockDim.x) {
		size_t b = e / H, j = e % H;
		float *gi = g + 4 * b * H + j;
		float t, cn, hv;
		cap_lstm_fwd_elem(gi, gi + H, gi + 2 * H, gi + 3 * H, c_prev ? c_prev[e] : 0.0f, c_prev != NULL,
		                  &cn, &t, &hv);
		c[e] = cn;
		if (tc)
			tc[e] = t;
		h[e] = hv;
	}
}

void cap_cuda_lstm_cell_forward(float *g, const float *c_prev, float *c, float *tc, float *h, int n, int H)
{
	size_t total = (size_t)(n > 0 ? n : 0) * (H > 0 ? H : 0);
	if (!total)
		return;
	lstm_fwd_kernel<<<cap_cuda_blocks(total), 256, 0, cap_cuda.stream>>>(g, c_prev, c, tc, h, n, H);
	LAUNCHED("lstm_cell_forward");
}

static __global__ void lstm_bwd_kernel(const float *g, const float *c_prev, const float *tc,
                                       const float *dh, const float *dh_rec, float *dc, float *dg,
                                       int n, int H)
{
	size_t total = (size_t)n * H;
	for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < total; e += (size_t)gridDim.x * blockDim.x) {
		size_t b = e / H, j = e % H;
		const float *a = g + 4 * b * H + j;
		float *d = dg + 4 * b * H + j;
		float dcj = dc[e];
		cap_lstm_bwd_elem(a[0], a[H], a[2 * H], a[3 * H], tc[e], c_prev ? c_prev[e] : 0.0f, dh[e],
		                  dh_rec[e], &dcj, d, d + H, d + 2 * H, d + 3 * H);
		dc[e] = dcj;
	}
}

void cap_cuda_lstm_cell_backward(const float *g, const float *c_prev, const float *tc, const float *dh,
                                 const float *dh_rec, float *dc, float *dg, int n, int H)
{
	size_t total = (size_t)(n > 0 ? n : 0) * (H > 0 ? H : 0);
	if (!total)
		return;
	lstm_bwd_kernel<<<cap_cuda_blocks(total), 256, 0, cap_cuda.stream>>>(g, c_prev, tc, dh, dh_rec, dc, dg, n, H);
	LAUNCHED("lstm_cell_backward");
}

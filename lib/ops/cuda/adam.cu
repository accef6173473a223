/* One Adam step on the GPU, bitwise equal to lib/ops/ref/adam.c: the element update of
 * kernels_math.h, whose device build uses the round-to-nearest intrinsics so that nvcc cannot
 * contract any of it into fused multiply-adds. */
#include "ops/cuda/cuda.h"
#include "ops/cuda/kernels_math.h"

static __global__ void adam_kernel(float *param, const float *grad, float *m, float *v, size_t n,
                                   cap_adam_consts k)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
		float p = param[i], mi = m[i], vi = v[i];
		cap_adam_elem(&p, grad[i], &mi, &vi, k.b1, k.b2, k.one_b1, k.one_b2, k.step_size, k.bc2_sqrt, k.eps);
		param[i] = p;
		m[i] = mi;
		v[i] = vi;
	}
}

void cap_cuda_adam_step(float *param, const float *grad, float *m, float *v, size_t n,
                        const cap_adam_consts *k)
{
	if (!n)
		return;
	adam_kernel<<<cap_cuda_blocks(n), 256, 0, cap_cuda.stream>>>(param, grad, m, v, n, *k);
	LAUNCHED("adam_step");
}

/* The per-element math of the CUDA kernels, written once for the device and the host: under nvcc
 * these are __host__ __device__ functions, under a plain C compiler static inline ones, so that
 * tests/unit/test_cuda_math.c checks on a machine without a GPU that they compose into exactly
 * the ref ops (lib/ops/ref/). Each function does the operations of its ref loop in the same order.
 *
 * Rounding: Adam must be bitwise equal to ref on every backend (ops.h), so its operations go
 * through CAP_MUL/CAP_ADD/CAP_DIV/CAP_SQRT: the IEEE round-to-nearest intrinsics on the device
 * (__fmul_rn and friends, which nvcc never contracts into fused multiply-adds), plain operators
 * on the host (C11 mode compiles them without contraction). The other pieces call expf, tanhf,
 * logf and exp: libm's on the host (bitwise ref), CUDA's on the device (within 2 ulp), which the
 * tolerances of ops.h allow for. */
#ifndef CAP_OPS_CUDA_KERNELS_MATH_H
#define CAP_OPS_CUDA_KERNELS_MATH_H
#include <math.h>
#include <stdint.h>
#include "ops/ops.h"

#if defined(__CUDACC__)
#define CAP_HD __host__ __device__ static inline
#else
#define CAP_HD static inline
#endif

#if defined(__CUDA_ARCH__)
#define CAP_MUL(a, b) __fmul_rn((a), (b))
#define CAP_ADD(a, b) __fadd_rn((a), (b))
#define CAP_DIV(a, b) __fdiv_rn((a), (b))
#define CAP_SQRT(a) __fsqrt_rn(a)
#else
#define CAP_MUL(a, b) ((a) * (b))
#define CAP_ADD(a, b) ((a) + (b))
#define CAP_DIV(a, b) ((a) / (b))
#define CAP_SQRT(a) sqrtf(a)
#endif

/* ---- LSTM (gate order i, f, g, o) ---- */
CAP_HD float cap_sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

/* One element j of lstm_cell_forward: the four pre-activations in, activations out (in place),
 * the new cell *c, tanh of it *tc and the output *h. has_prev = 0: c_prev is zero. */
CAP_HD void cap_lstm_fwd_elem(float *gi, float *gf, float *gg, float *go, float cprev, int has_prev,
                              float *c, float *tc, float *h)
{
	float i = cap_sigmoidf(*gi), f = cap_sigmoidf(*gf), gv = tanhf(*gg), ov = cap_sigmoidf(*go);
	float cn = i * gv + (has_prev ? f * cprev : 0.0f);
	float t = tanhf(cn);
	*gi = i; *gf = f; *gg = gv; *go = ov;
	*c = cn;
	*tc = t;
	*h = ov * t;
}

/* One element j of lstm_cell_backward: saved activations a[0..3] = i, f, g, o, tanh(c) t, the
 * previous cell (0 when none), the two incoming gradients of h; *dc holds the gradient of c from
 * the next step and becomes the one for c_prev; d[0..3] the gate gradients. */
CAP_HD void cap_lstm_bwd_elem(float i, float f, float gv, float ov, float t, float cprev,
                              float dh, float dh_rec, float *dc, float *di, float *df, float *dg,
                              float *dout)
{
	float dhj = dh + dh_rec;
	float dcj = *dc + dhj * ov * (1 - t * t);
	*di = dcj * gv * i * (1 - i);
	*df = dcj * cprev * f * (1 - f);
	*dg = dcj * i * (1 - gv * gv);
	*dout = dhj * t * ov * (1 - ov);
	*dc = dcj * f;
}

/* ---- softmax pieces ---- */
/* log_softmax_rows: the terms of the row's sum (in double), and the log-sum-exp from the row
 * maximum and that sum. */
CAP_HD double cap_lsm_term(float v, float mx) { return exp((double)v - mx); }
CAP_HD float cap_lsm_lse(float mx, double s) { return mx + (float)log(s); }

/* softmax_xent_rows: e = exp(v - max) per element, s their sum (float), xt = v[target] - max;
 * the loss of the row, and the factor that turns e into grad_scale * softmax. */
CAP_HD float cap_xent_exp(float v, float mx) { return expf(v - mx); }
CAP_HD double cap_xent_loss(float s, float xt) { return (double)logf(s) - (double)xt; }
CAP_HD float cap_xent_factor(float grad_scale, float s) { return grad_scale / s; }

/* ---- Adam: one element, torch's operation order, no fused multiply-add ---- */
CAP_HD void cap_adam_elem(float *param, float g, float *m, float *v, float b1, float b2,
                          float one_b1, float one_b2, float step_size, float bc2_sqrt, float eps)
{
	float mi = CAP_ADD(CAP_MUL(*m, b1), CAP_MUL(one_b1, g));
	float vi = CAP_ADD(CAP_MUL(*v, b2), CAP_MUL(CAP_MUL(one_b2, g), g));
	float denom = CAP_ADD(CAP_DIV(CAP_SQRT(vi), bc2_sqrt), eps);
	*m = mi;
	*v = vi;
	*param = CAP_ADD(*param, CAP_MUL(-step_size, CAP_DIV(mi, denom)));
}

/* ---- dropout: the mask value of element i (scale = 1 / (1 - p), computed once by the caller) */
CAP_HD float cap_dropout_mask(uint64_t seed, uint64_t i, float p, float scale)
{
	return cap_dropout_keep(seed, i, p) ? scale : 0.0f;
}

/* ---- bfloat16: round to nearest even, NaN kept quiet ---- */
CAP_HD uint16_t cap_bf16_bits(float x)
{
	union { float f; uint32_t u; } c;
	c.f = x;
	if ((c.u & 0x7fffffffu) > 0x7f800000u)   /* NaN: keep the sign, force a quiet mantissa */
		return (uint16_t)((c.u >> 16) | 0x0040u);
	uint32_t round = 0x7fffu + ((c.u >> 16) & 1u);
	return (uint16_t)((c.u + round) >> 16);
}

CAP_HD float cap_bf16_float(uint16_t b)
{
	union { float f; uint32_t u; } c;
	c.u = (uint32_t)b << 16;
	return c.f;
}
#endif

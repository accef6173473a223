/* The CUDA backend's image encoder: the ResNet forward (up to the global pool) in NHWC on cuDNN
 * (see lib/encoder/resnet.h for the network, ops.h for the contract; the plain version is
 * lib/ops/ref/resnet.c).
 *
 * BatchNorm is already folded into each conv's weights and bias by lib/encoder/resnet.c. Each
 * conv is one cudnnConvolutionForward in NHWC (weights reordered once to KRSC) followed by one
 * epilogue kernel that adds the bias and, where the block asks, the residual, then applies ReLU.
 * Four activation buffers of the largest activation suffice: with X the block input,
 * c1 X->A, c2 A->B, the downsample X->D, c3 B->A (+ D or X), then A becomes the next X.
 *
 * Precision: fp32 by default with cuDNN restricted to FMA kernels (no TF32) and to the implicit
 * GEMM algorithms, whose error is that of an fp32 dot product (Winograd and FFT are left out);
 * tf32 (ops->set_precision before encoder_new) lets cuDNN's heuristics choose any algorithm and
 * TF32 tensor cores; CAP_ENCODER_BF16 keeps activations and weights in bfloat16 with fp32
 * accumulation, the bias, residual and pooling sums in fp32. */
#include "ops/cuda/cuda.h"
#include "ops/cuda/kernels_math.h"
#include <cudnn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
extern "C" {
#include "encoder/resnet.h"
#include "ops/ref/conv.h"
}

/* Errors while building or running: recorded with cap_fail, -1 returned. */
#define DNN_TRY(call) do { \
	cudnnStatus_t s_ = (call); \
	if (s_ != CUDNN_STATUS_SUCCESS) \
		return cap_fail("cuDNN: %s: %s (%s:%d)", #call, cudnnGetErrorString(s_), __FILE__, __LINE__); \
	} while (0)
#define CU_TRY(call) do { \
	cudaError_t e_ = (call); \
	if (e_ != cudaSuccess) \
		return cap_fail("CUDA: %s: %s (%s:%d)", #call, cudaGetErrorString(e_), __FILE__, __LINE__); \
	} while (0)

enum { NBUF = 4, BX = 0, BA = 1, BB = 2, BD = 3 };
static const size_t WS_LIMIT = (size_t)512 << 20;

typedef struct conv_plan {
	int cin, cout, k, stride, pad, h, w, oh, ow;
	cudnnTensorDescriptor_t x, y;
	cudnnFilterDescriptor_t wd;
	cudnnConvolutionDescriptor_t cd;
	cudnnConvolutionFwdAlgo_t algo;
	size_t ws;
	void *wdev;     /* (cout, k, k, cin) in the activation type */
	float *bias;    /* (cout) */
} conv_plan;

typedef struct block_plan { int c1, c2, c3, down; } block_plan;

struct cap_encoder {
	int batch, h, w, dim, bf16, tf32;
	cudnnHandle_t dnn;
	cudnnDataType_t dt;
	size_t esize;              /* bytes of one activation element */
	conv_plan *convs;
	int nconvs;
	int stem;
	block_plan *blocks;
	int nblocks, bottleneck;
	int sh, sw, ph, pw;        /* stem output, pool output */
	int fh, fw;                /* last map */
	void *buf[NBUF];
	size_t buf_elems;
	float *in_dev;             /* (batch, 3, h, w) */
	float *feat_dev;           /* (batch, dim) */
	void *ws;
	size_t ws_bytes;
	char impl[400];
};

/* ---- kernels, templated on the activation type: float or bf16 bits ---- */
static __device__ __forceinline__ float ld(const float *p, size_t i) { return p[i]; }
static __device__ __forceinline__ float ld(const uint16_t *p, size_t i) { return cap_bf16_float(p[i]); }
static __device__ __forceinline__ void st(float *p, size_t i, float v) { p[i] = v; }
static __device__ __forceinline__ void st(uint16_t *p, size_t i, float v) { p[i] = cap_bf16_bits(v); }

#define GRID_STRIDE(i, n) \
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

/* (n, 3, h, w) fp32 -> (n, h, w, 3) */
template <typename T>
static __global__ void to_nhwc_kernel(T *out, const float *in, int n, int h, int w)
{
	size_t total = (size_t)n * h * w * 3, plane = (size_t)h * w;
	GRID_STRIDE(i, total) {
		size_t c = i % 3, p = (i / 3) % plane, b = i / (3 * plane);
		st(out, i, in[(b * 3 + c) * plane + p]);
	}
}

/* y (total / C, C) = relu?(y + bias + residual?) */
template <typename T>
static __global__ void epilogue_kernel(T *y, const float *bias, const T *res, int relu, size_t total, int C)
{
	GRID_STRIDE(i, total) {
		float v = ld(y, i) + bias[i % C];
		if (res)
			v += ld(res, i);
		if (relu)
			v = v > 0.0f ? v : 0.0f;
		st(y, i, v);
	}
}

/* 3x3/2 max pool with padding 1 that never wins (as torch: -inf padding), NHWC */
template <typename T>
static __global__ void maxpool_kernel(T *out, const T *in, int n, int h, int w, int C, int oh, int ow)
{
	size_t total = (size_t)n * oh * ow * C;
	GRID_STRIDE(i, total) {
		int c = (int)(i % C);
		size_t q = i / C;
		int x = (int)(q % ow), y = (int)((q / ow) % oh);
		size_t b = q / ((size_t)ow * oh);
		float m = -INFINITY;
		for (int ky = 0; ky < 3; ky++) {
			int iy = 2 * y - 1 + ky;
			if (iy < 0 || iy >= h)
				continue;
			for (int kx = 0; kx < 3; kx++) {
				int ix = 2 * x - 1 + kx;
				if (ix >= 0 && ix < w)
					m = fmaxf(m, ld(in, ((b * h + iy) * w + ix) * C + c));
			}
		}
		st(out, i, m);
	}
}

/* out (n, C) fp32 = mean over the h*w positions, summed in double */
template <typename T>
static __global__ void avgpool_kernel(float *out, const T *in, int n, int hw, int C)
{
	size_t total = (size_t)n * C;
	GRID_STRIDE(i, total) {
		size_t b = i / C, c = i % C;
		double s = 0;
		for (int p = 0; p < hw; p++)
			s += ld(in, ((size_t)b * hw + p) * C + c);
		out[i] = (float)(s / (double)hw);
	}
}

/* CAP_CUDNN_ALGOS=any: strict fp32 may also take the FMA Winograd and FFT algorithms, as
 * PyTorch's fp32 (TF32 off) does; their error is larger than a dot product's. On an H200 the
 * implicit GEMMs alone left fp32 at 0.80x PyTorch's throughput; whether this closes the gap, and
 * whether the features stay within 1e-4 of cpu's, is for tests/cuda/run.sh to tell on a GPU. */
static int fp32_any_algorithm(void)
{
	static int any = -1;
	if (any < 0) {
		const char *v = getenv("CAP_CUDNN_ALGOS");
		any = v && !strcmp(v, "any");
	}
	return any;
}

/* Whether a perf entry may run: strict fp32 takes only FMA implicit GEMMs (see the top), or any
 * FMA algorithm with CAP_CUDNN_ALGOS=any. */
static int algo_allowed(const cudnnConvolutionFwdAlgoPerf_t *pf, int strict)
{
	if (pf->status != CUDNN_STATUS_SUCCESS || pf->memory > WS_LIMIT)
		return 0;
	cudnnConvolutionFwdAlgo_t a = pf->algo;
	return !strict || (pf->mathType != CUDNN_TENSOR_OP_MATH &&
	                   pf->mathType != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION &&
	                   (fp32_any_algorithm() ||
	                    a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM ||
	                    a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM ||
	                    a == CUDNN_CONVOLUTION_FWD_ALGO_GEMM));
}

/* ---- building ---- */
static int plan_conv(cap_encoder *e, cap_conv *c, int h, int w, conv_plan *p)
{
	memset(p, 0, sizeof *p);
	p->cin = c->cin; p->cout = c->cout; p->k = c->k; p->stride = c->stride; p->pad = c->pad;
	p->h = h; p->w = w;
	p->oh = cap_conv_out_size(h, c->k, c->stride, c->pad);
	p->ow = cap_conv_out_size(w, c->k, c->stride, c->pad);
	if (p->oh < 1 || p->ow < 1)
		return cap_fail("image too small: a %dx%d/%d conv on a %dx%d map", c->k, c->k, c->stride, w, h);
	DNN_TRY(cudnnCreateTensorDescriptor(&p->x));
	DNN_TRY(cudnnCreateTensorDescriptor(&p->y));
	DNN_TRY(cudnnCreateFilterDescriptor(&p->wd));
	DNN_TRY(cudnnCreateConvolutionDescriptor(&p->cd));
	DNN_TRY(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NHWC, e->dt, e->batch, c->cin, h, w));
	DNN_TRY(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NHWC, e->dt, e->batch, c->cout, p->oh, p->ow));
	DNN_TRY(cudnnSetFilter4dDescriptor(p->wd, e->dt, CUDNN_TENSOR_NHWC, c->cout, c->cin, c->k, c->k));
	DNN_TRY(cudnnSetConvolution2dDescriptor(p->cd, c->pad, c->pad, c->stride, c->stride, 1, 1,
	                                        CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
	int strict = !e->bf16 && !e->tf32;
	cudnnMathType_t math = strict ? CUDNN_FMA_MATH : e->bf16 ? CUDNN_TENSOR_OP_MATH : CUDNN_DEFAULT_MATH;
	DNN_TRY(cudnnSetConvolutionMathType(p->cd, math));

	/* The heuristics' ranking, filtered: strict fp32 takes only FMA implicit GEMMs. */
	cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
	int nret = 0, found = 0;
	DNN_TRY(cudnnGetConvolutionForwardAlgorithm_v7(e->dnn, p->x, p->wd, p->cd, p->y,
	                                               CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &nret, perf));
	for (int i = 0; i < nret && !found; i++) {
		/* strict: the descriptor stays at CUDNN_FMA_MATH, which keeps TF32 out whatever the
		 * entry's math type; entries that need tensor cores are left out */
		if (!algo_allowed(&perf[i], strict))
			continue;
		p->algo = perf[i].algo;
		if (!strict)
			DNN_TRY(cudnnSetConvolutionMathType(p->cd, perf[i].mathType));
		found = 1;
	}
	if (!found)
		p->algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
	DNN_TRY(cudnnGetConvolutionForwardWorkspaceSize(e->dnn, p->x, p->wd, p->cd, p->y, p->algo, &p->ws));
	if (p->ws > e->ws_bytes)
		e->ws_bytes = p->ws;

	/* Weights OIHW -> KRSC (cout, k, k, cin), in the activation type; the bias as it is. */
	size_t nw = (size_t)c->cout * c->cin * c->k * c->k, k = c->k;
	float *t = (float *)cap_xmalloc(nw * sizeof(float));
	for (int o = 0; o < c->cout; o++)
		for (int i = 0; i < c->cin; i++)
			for (size_t y = 0; y < k; y++)
				for (size_t x = 0; x < k; x++)
					t[((o * k + y) * k + x) * c->cin + i] = c->w[(((size_t)o * c->cin + i) * k + y) * k + x];
	void *host = t;
	if (e->bf16) {
		uint16_t *b = (uint16_t *)cap_xmalloc(nw * sizeof(uint16_t));
		for (size_t i = 0; i < nw; i++)
			b[i] = cap_bf16_bits(t[i]);
		host = b;
	}
	cudaError_t err = cudaMalloc(&p->wdev, nw * e->esize);
	if (err == cudaSuccess)
		err = cudaMemcpy(p->wdev, host, nw * e->esize, cudaMemcpyHostToDevice);
	if (err == cudaSuccess)
		err = cudaMalloc((void **)&p->bias, sizeof(float) * c->cout);
	if (err == cudaSuccess)
		err = cudaMemcpy(p->bias, c->b, sizeof(float) * c->cout, cudaMemcpyHostToDevice);
	if (host != t)
		free(host);
	free(t);
	if (err != cudaSuccess)
		return cap_fail("CUDA: conv weights (%d -> %d channels): %s", c->cin, c->cout, cudaGetErrorString(err));
	size_t out = (size_t)e->batch * p->oh * p->ow * p->cout;
	if (out > e->buf_elems)
		e->buf_elems = out;
	return 0;
}

static const char *algo_name(cudnnConvolutionFwdAlgo_t a)
{
	static const char *const names[] = { "implicit GEMM", "implicit precomputed GEMM", "GEMM", "direct",
	                                     "FFT", "tiled FFT", "Winograd", "Winograd nonfused" };
	return (int)a >= 0 && (int)a < 8 ? names[a] : "?";
}

/* Plans conv c on an h x w input; its index in *idx. The net's copy of the weights is freed
 * when the caller allows it (CAP_ENCODER_TAKE_WEIGHTS). */
static int add_conv(cap_encoder *e, cap_conv *c, int h, int w, int take, int *idx)
{
	int i = e->nconvs++;   /* counted first: encoder_free releases what a failed plan made */
	e->convs = (conv_plan *)cap_xrealloc(e->convs, (size_t)e->nconvs * sizeof *e->convs);
	if (plan_conv(e, c, h, w, &e->convs[i]) < 0)
		return -1;
	*idx = i;
	if (c->k == 3 && !e->impl[0])
		snprintf(e->impl, sizeof e->impl, "cuDNN %zu, NHWC %s, 3x3 convs by %s, on %s", cudnnGetVersion(),
		         e->bf16 ? "bf16" : e->tf32 ? "tf32" : "fp32 (FMA only)", algo_name(e->convs[i].algo),
		         cap_cuda.prop.name);
	if (take) {
		free(c->w);
		c->w = NULL;
	}
	return 0;
}

/* The heuristics' first choice is often not the fastest: time the algorithms of each distinct
 * conv shape once on the real buffers, as PyTorch's cudnn.benchmark does, and keep the fastest
 * allowed one (CAP_CUDNN_HEURISTIC=1 keeps the heuristics' choice). A few seconds at start for
 * ResNet-152, paid back within a few thousand images. */
static int tune(cap_encoder *e)
{
	void *tws = NULL;
	size_t tws_bytes = WS_LIMIT;
	if (cudaMalloc(&tws, tws_bytes) != cudaSuccess) {
		cudaGetLastError();
		return 0;   /* no room to time them: the heuristics' choices stand */
	}
	int strict = !e->bf16 && !e->tf32;
	e->ws_bytes = 0;
	for (int i = 0; i < e->nconvs; i++) {
		conv_plan *p = &e->convs[i], *same = NULL;
		for (int j = 0; j < i && !same; j++) {
			conv_plan *q = &e->convs[j];
			if (q->cin == p->cin && q->cout == p->cout && q->k == p->k && q->stride == p->stride &&
			    q->pad == p->pad && q->h == p->h && q->w == p->w)
				same = q;
		}
		if (same) {
			p->algo = same->algo;
			p->ws = same->ws;
			cudnnMathType_t mt;
			DNN_TRY(cudnnGetConvolutionMathType(same->cd, &mt));
			DNN_TRY(cudnnSetConvolutionMathType(p->cd, mt));
		} else {
			cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
			int nret = 0;
			if (!strict)   /* let every math type compete; each entry says its own */
				DNN_TRY(cudnnSetConvolutionMathType(p->cd, e->bf16 ? CUDNN_TENSOR_OP_MATH : CUDNN_DEFAULT_MATH));
			DNN_TRY(cudnnFindConvolutionForwardAlgorithmEx(e->dnn, p->x, e->buf[BX], p->wd, p->wdev, p->cd, p->y,
			                                               e->buf[BA], CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &nret,
			                                               perf, tws, tws_bytes));
			for (int k = 0; k < nret; k++)
				if (algo_allowed(&perf[k], strict)) {
					p->algo = perf[k].algo;
					if (!strict)
						DNN_TRY(cudnnSetConvolutionMathType(p->cd, perf[k].mathType));
					DNN_TRY(cudnnGetConvolutionForwardWorkspaceSize(e->dnn, p->x, p->wd, p->cd, p->y, p->algo, &p->ws));
					break;
				}
		}
		if (p->ws > e->ws_bytes)
			e->ws_bytes = p->ws;
		if (p->k == 3 && !same && strstr(e->impl, " by "))   /* name the first 3x3's choice */
			snprintf(strstr(e->impl, " by ") + 4, sizeof e->impl - (strstr(e->impl, " by ") + 4 - e->impl),
			         "%s (timed), on %s", algo_name(p->algo), cap_cuda.prop.name);
	}
	CU_TRY(cudaStreamSynchronize(cap_cuda.stream));
	cudaFree(tws);
	return 0;
}

static int build(cap_encoder *e, cap_resnet *net, int take)
{
	if (add_conv(e, &net->stem, e->h, e->w, take, &e->stem) < 0)
		return -1;
	e->sh = e->convs[e->stem].oh;
	e->sw = e->convs[e->stem].ow;
	e->ph = cap_conv_out_size(e->sh, 3, 2, 1);
	e->pw = cap_conv_out_size(e->sw, 3, 2, 1);
	/* the stem's input and the pool's output share the buffers too */
	size_t in_elems = (size_t)e->batch * e->h * e->w * 3;
	if (in_elems > e->buf_elems)
		e->buf_elems = in_elems;
	int h = e->ph, w = e->pw;
	e->bottleneck = net->bottleneck;
	e->nblocks = net->nblocks;
	e->blocks = (block_plan *)cap_xcalloc((size_t)net->nblocks, sizeof *e->blocks);
	for (int i = 0; i < net->nblocks; i++) {
		cap_resnet_block *b = &net->blocks[i];
		block_plan *p = &e->blocks[i];
		p->c3 = p->down = -1;
		if (add_conv(e, &b->c1, h, w, take, &p->c1) < 0)
			return -1;
		/* indices, not pointers, into e->convs: every add_conv may move the array */
		if (add_conv(e, &b->c2, e->convs[p->c1].oh, e->convs[p->c1].ow, take, &p->c2) < 0)
			return -1;
		int last = p->c2;
		if (b->c3.k) {
			if (add_conv(e, &b->c3, e->convs[last].oh, e->convs[last].ow, take, &p->c3) < 0)
				return -1;
			last = p->c3;
		}
		if (b->down.k && add_conv(e, &b->down, h, w, take, &p->down) < 0)
			return -1;
		h = e->convs[last].oh;
		w = e->convs[last].ow;
	}
	e->fh = h;
	e->fw = w;
	for (int i = 0; i < NBUF; i++)
		CU_TRY(cudaMalloc(&e->buf[i], e->buf_elems * e->esize));
	CU_TRY(cudaMalloc((void **)&e->in_dev, sizeof(float) * in_elems));
	CU_TRY(cudaMalloc((void **)&e->feat_dev, sizeof(float) * (size_t)e->batch * e->dim));
	const char *heur = getenv("CAP_CUDNN_HEURISTIC");
	if (!(heur && !strcmp(heur, "1"))) {
		CU_TRY(cudaDeviceSynchronize());   /* the weights are up before anything is timed on them */
		if (tune(e) < 0)
			return -1;
	}
	if (e->ws_bytes)
		CU_TRY(cudaMalloc(&e->ws, e->ws_bytes));
	/* The weights went up with cudaMemcpy on the legacy stream, which the module's non-blocking
	 * stream does not wait for (and a pageable copy may still be in flight when it returns). */
	CU_TRY(cudaDeviceSynchronize());
	return 0;
}

cap_encoder *cap_cuda_encoder_new(cap_resnet *net, int batch, int h, int w, int flags)
{
	if (batch < 1 || batch > 4096)
		return cap_fail("batch size %d out of range 1..4096", batch), (cap_encoder *)NULL;
	if (h < 32 || w < 32 || h > 4096 || w > 4096)
		return cap_fail("image of %dx%d out of range 32..4096", w, h), (cap_encoder *)NULL;
	if (!net->stem.w)
		return cap_fail("network weights already taken by another engine"), (cap_encoder *)NULL;
	cap_encoder *e = (cap_encoder *)cap_xcalloc(1, sizeof *e);
	e->batch = batch;
	e->h = h;
	e->w = w;
	e->dim = net->dim;
	e->bf16 = (flags & CAP_ENCODER_BF16) != 0;
	e->tf32 = !e->bf16 && cap_cuda.prec == CAP_PRECISION_TF32;
	e->dt = e->bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
	e->esize = e->bf16 ? 2 : 4;
	cudnnStatus_t st = cudnnCreate(&e->dnn);
	if (st == CUDNN_STATUS_SUCCESS)
		st = cudnnSetStream(e->dnn, cap_cuda.stream);
	if (st != CUDNN_STATUS_SUCCESS) {
		cap_fail("cuDNN: cannot start: %s", cudnnGetErrorString(st));
		cap_cuda_encoder_free(e);
		return NULL;
	}
	if (build(e, net, (flags & CAP_ENCODER_TAKE_WEIGHTS) != 0) < 0) {
		cap_fail_prefix("CUDA encoder (ResNet-%d, batch %d, %dx%d)", net->depth, batch, w, h);
		cap_cuda_encoder_free(e);
		return NULL;
	}
	return e;
}

template <typename T>
static int conv_run(cap_encoder *e, const conv_plan *p, const void *x, void *y, const void *res, int relu)
{
	const float one = 1.0f, zero = 0.0f;
	DNN_TRY(cudnnConvolutionForward(e->dnn, &one, p->x, x, p->wd, p->wdev, p->cd, p->algo, e->ws, p->ws,
	                                &zero, p->y, y));
	size_t total = (size_t)e->batch * p->oh * p->ow * p->cout;
	epilogue_kernel<T><<<cap_cuda_blocks(total), 256, 0, cap_cuda.stream>>>((T *)y, p->bias, (const T *)res,
	                                                                         relu, total, p->cout);
	CU_TRY(cudaGetLastError());
	return 0;
}

template <typename T>
static int forward(cap_encoder *e)
{
	void **B = e->buf;
	size_t n = (size_t)e->batch * e->h * e->w * 3;
	to_nhwc_kernel<T><<<cap_cuda_blocks(n), 256, 0, cap_cuda.stream>>>((T *)B[BB], e->in_dev, e->batch, e->h, e->w);
	CU_TRY(cudaGetLastError());
	if (conv_run<T>(e, &e->convs[e->stem], B[BB], B[BA], NULL, 1) < 0)
		return -1;
	int C = e->convs[e->stem].cout;
	n = (size_t)e->batch * e->ph * e->pw * C;
	maxpool_kernel<T><<<cap_cuda_blocks(n), 256, 0, cap_cuda.stream>>>((T *)B[BX], (const T *)B[BA], e->batch,
	                                                                    e->sh, e->sw, C, e->ph, e->pw);
	CU_TRY(cudaGetLastError());
	for (int i = 0; i < e->nblocks; i++) {
		const block_plan *b = &e->blocks[i];
		const void *id = B[BX];
		if (b->down >= 0) {
			if (conv_run<T>(e, &e->convs[b->down], B[BX], B[BD], NULL, 0) < 0)
				return -1;
			id = B[BD];
		}
		if (conv_run<T>(e, &e->convs[b->c1], B[BX], B[BA], NULL, 1) < 0)
			return -1;
		void *out;
		if (b->c3 >= 0) {   /* Bottleneck: c2 A->B, c3 B->A (+ identity) */
			if (conv_run<T>(e, &e->convs[b->c2], B[BA], B[BB], NULL, 1) < 0 ||
			    conv_run<T>(e, &e->convs[b->c3], B[BB], B[BA], id, 1) < 0)
				return -1;
			out = B[BA];
			B[BA] = B[BX];
		} else {            /* BasicBlock: c2 A->B (+ identity) */
			if (conv_run<T>(e, &e->convs[b->c2], B[BA], B[BB], id, 1) < 0)
				return -1;
			out = B[BB];
			B[BB] = B[BX];
		}
		B[BX] = out;
	}
	n = (size_t)e->batch * e->dim;
	avgpool_kernel<T><<<cap_cuda_blocks(n), 256, 0, cap_cuda.stream>>>(e->feat_dev, (const T *)B[BX], e->batch,
	                                                                    e->fh * e->fw, e->dim);
	CU_TRY(cudaGetLastError());
	return 0;
}

int cap_cuda_encoder_run(cap_encoder *e, const float *in, int n, float *out)
{
	if (n < 0 || n > e->batch)
		return cap_fail("encoder: %d images for a batch of %d", n, e->batch);
	if (n == 0)
		return 0;
	size_t img = (size_t)3 * e->h * e->w;
	CU_TRY(cudaMemcpyAsync(e->in_dev, in, sizeof(float) * n * img, cudaMemcpyHostToDevice, cap_cuda.stream));
	if (n < e->batch)   /* a short last batch: the padding images are computed and dropped */
		CU_TRY(cudaMemsetAsync(e->in_dev + n * img, 0, sizeof(float) * (e->batch - n) * img, cap_cuda.stream));
	if ((e->bf16 ? forward<uint16_t>(e) : forward<float>(e)) < 0)
		return -1;
	CU_TRY(cudaMemcpyAsync(out, e->feat_dev, sizeof(float) * (size_t)n * e->dim, cudaMemcpyDeviceToHost,
	                       cap_cuda.stream));
	CU_TRY(cudaStreamSynchronize(cap_cuda.stream));
	return 0;
}

const char *cap_cuda_encoder_impl(const cap_encoder *e)
{
	return e->impl;
}

void cap_cuda_encoder_free(cap_encoder *e)
{
	if (!e)
		return;
	cudaStreamSynchronize(cap_cuda.stream);
	for (int i = 0; i < e->nconvs; i++) {
		conv_plan *p = &e->convs[i];
		if (p->x) cudnnDestroyTensorDescriptor(p->x);
		if (p->y) cudnnDestroyTensorDescriptor(p->y);
		if (p->wd) cudnnDestroyFilterDescriptor(p->wd);
		if (p->cd) cudnnDestroyConvolutionDescriptor(p->cd);
		cudaFree(p->wdev);
		cudaFree(p->bias);
	}
	for (int i = 0; i < NBUF; i++)
		cudaFree(e->buf[i]);
	cudaFree(e->in_dev);
	cudaFree(e->feat_dev);
	cudaFree(e->ws);
	if (e->dnn)
		cudnnDestroy(e->dnn);
	cudaGetLastError();
	free(e->convs);
	free(e->blocks);
	free(e);
}

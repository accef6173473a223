/* The CUDA backend's table and the module's entry point (see ops.h and lib/ops/cuda/cuda.h).
 * The tools load this module with dlopen for --device cuda only (lib/ops/ops.c). */
#include "ops/cuda/cuda.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cap_cuda_ctx cap_cuda;
static cap_ops cuda_ops;

void cap_cuda_die(const char *op, const char *file, int line, const char *what, const char *detail)
{
	fprintf(stderr, "%s: CUDA backend: %s: %s (%s) (%s:%d)\n", program_invocation_short_name, op,
	        detail ? detail : "", what ? what : "error", file, line);
	exit(1);
}

void cap_cuda_launched(const char *op, const char *file, int line)
{
	cudaError_t e = cudaGetLastError();
	if (e == cudaSuccess && cap_cuda.sync_each)
		e = cudaStreamSynchronize(cap_cuda.stream);
	if (e != cudaSuccess)
		cap_cuda_die(op, file, line, cudaGetErrorName(e), cudaGetErrorString(e));
}

void *cap_cuda_scratch(int slot, size_t bytes)
{
	if (bytes > cap_cuda.scratch_bytes[slot]) {
		/* recordings of ops hold the old buffer: dropped (and growing while recording is a bug,
		 * which cap_cuda_graph_forget reports) */
		cap_cuda_graph_forget();
		if (cap_cuda.scratch[slot])
			CUDA_CHECK("scratch", cudaFreeAsync(cap_cuda.scratch[slot], cap_cuda.stream));
		size_t sz = bytes + bytes / 4;
		CUDA_CHECK("scratch", cudaMallocAsync(&cap_cuda.scratch[slot], sz, cap_cuda.stream));
		cap_cuda.scratch_bytes[slot] = sz;
	}
	return cap_cuda.scratch[slot];
}

unsigned cap_cuda_blocks(size_t n)
{
	size_t b = (n + 255) / 256, most = (size_t)cap_cuda.prop.multiProcessorCount * 16;
	if (b > most)
		b = most;
	return b ? (unsigned)b : 1;
}

/* Creates the stream and the cuBLAS handle; a message in err on failure. */
static int start(char *err, size_t errlen)
{
	int n = 0;
	cudaError_t e = cudaGetDeviceCount(&n);
	if (e != cudaSuccess || n < 1) {
		/* Any failure here means there is no usable device: no driver (cudaErrorInsufficientDriver
		 * without a GPU), the stub libcuda, a container without the device nodes. */
		snprintf(err, errlen, "no CUDA device (cudaGetDeviceCount: %s)",
		         e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
		cudaGetLastError();
		return -1;
	}
	cap_cuda.device = 0;   /* CUDA_VISIBLE_DEVICES chooses which */
	if ((e = cudaSetDevice(0)) != cudaSuccess || (e = cudaGetDeviceProperties(&cap_cuda.prop, 0)) != cudaSuccess ||
	    (e = cudaStreamCreateWithFlags(&cap_cuda.stream, cudaStreamNonBlocking)) != cudaSuccess) {
		snprintf(err, errlen, "cannot use CUDA device 0: %s", cudaGetErrorString(e));
		return -1;
	}
	/* Keep freed memory in the stream-ordered pool instead of returning it at every sync. */
	cudaMemPool_t pool;
	if (cudaDeviceGetDefaultMemPool(&pool, 0) == cudaSuccess) {
		uint64_t keep = UINT64_MAX;
		cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep);
	}
	cudaGetLastError();
	cublasStatus_t s = cublasCreate(&cap_cuda.blas);
	if (s == CUBLAS_STATUS_SUCCESS)
		s = cublasSetStream(cap_cuda.blas, cap_cuda.stream);
	if (s == CUBLAS_STATUS_SUCCESS)
		s = cublasSetMathMode(cap_cuda.blas, CUBLAS_DEFAULT_MATH);  /* strict fp32: no TF32 */
	if (s != CUBLAS_STATUS_SUCCESS) {
		snprintf(err, errlen, "cuBLAS: %s", cublasGetStatusString(s));
		return -1;
	}
	size_t ws = (size_t)32 << 20;
	if ((e = cudaMalloc(&cap_cuda.blas_ws, ws)) != cudaSuccess ||
	    (e = cudaMalloc((void **)&cap_cuda.partial, sizeof(double) * 4096)) != cudaSuccess ||
	    (e = cudaMallocHost((void **)&cap_cuda.partial_host, sizeof(double))) != cudaSuccess) {
		snprintf(err, errlen, "out of device memory at start: %s", cudaGetErrorString(e));
		return -1;
	}
	if ((s = cublasSetWorkspace(cap_cuda.blas, cap_cuda.blas_ws, ws)) != CUBLAS_STATUS_SUCCESS) {
		snprintf(err, errlen, "cuBLAS workspace: %s", cublasGetStatusString(s));
		return -1;
	}
	cap_cuda.prec = CAP_PRECISION_FP32;
	const char *sync = getenv("CAP_CUDA_SYNC");
	cap_cuda.sync_each = sync && *sync && strcmp(sync, "0");
	return 0;
}

extern "C" __attribute__((visibility("default")))
int cap_ops_module_init(int abi, const cap_ops **out, char *err, size_t errlen)
{
	*out = NULL;
	if (abi != CAP_OPS_ABI) {
		snprintf(err, errlen, "the module was built for ops ABI %d, the tool has %d: rebuild it",
		         CAP_OPS_ABI, abi);
		return -1;
	}
	if (cuda_ops.name) {   /* already started */
		*out = &cuda_ops;
		return 0;
	}
	if (start(err, errlen) < 0)
		return -1;
	cap_ops *o = &cuda_ops;
	o->host_memory = 0;
	o->abi = CAP_OPS_ABI;
	o->alloc = cap_cuda_alloc;
	o->free = cap_cuda_free;
	o->upload = cap_cuda_upload;
	o->download = cap_cuda_download;
	o->copy = cap_cuda_copy;
	o->zero = cap_cuda_zero;
	o->sync = cap_cuda_sync;
	o->freeze = cap_cuda_freeze;
	o->thaw = cap_cuda_thaw;
	o->set_threads = cap_cuda_set_threads;
	o->set_precision = cap_cuda_set_precision;
	o->gemm = cap_cuda_gemm;
	o->weight_new = cap_cuda_weight_new;
	o->weight_update = cap_cuda_weight_update;
	o->weight_free = cap_cuda_weight_free;
	o->matmul = cap_cuda_matmul;
	o->matmul_bias = cap_cuda_matmul_bias;
	o->bias_rows = cap_cuda_bias_rows;
	o->col_sums = cap_cuda_col_sums;
	o->row_gather = cap_cuda_row_gather;
	o->embed_gather = cap_cuda_embed_gather;
	o->embed_scatter_add = cap_cuda_embed_scatter_add;
	o->mul = cap_cuda_mul;
	o->scale = cap_cuda_scale;
	o->sum_squares = cap_cuda_sum_squares;
	o->lstm_cell_forward = cap_cuda_lstm_cell_forward;
	o->lstm_cell_backward = cap_cuda_lstm_cell_backward;
	o->log_softmax_rows = cap_cuda_log_softmax_rows;
	o->softmax_xent_rows = cap_cuda_softmax_xent_rows;
	o->row_topk = cap_cuda_row_topk;
	o->dropout_forward = cap_cuda_dropout_forward;
	o->adam_step = cap_cuda_adam_step;
	o->weight_adam = cap_cuda_weight_adam;
	/* CUDA graphs: on request until they have run on a GPU and been checked there */
	const char *graphs = getenv("CAP_CUDA_GRAPHS");
	if (graphs && !strcmp(graphs, "1")) {
		o->graph_replay = cap_cuda_graph_replay;
		o->graph_begin = cap_cuda_graph_begin;
		o->graph_end = cap_cuda_graph_end;
		o->graph_forget = cap_cuda_graph_forget;
		cap_cuda_graph_report_at_exit();
	}
	o->encoder_new = cap_cuda_encoder_new;
	o->encoder_run = cap_cuda_encoder_run;
	o->encoder_impl = cap_cuda_encoder_impl;
	o->encoder_free = cap_cuda_encoder_free;
	o->name = "cuda";
	*out = o;
	return 0;
}

/* The cpu backend's table (see ops.h): oneDNN for GEMMs and convolutions, AVX-512 kernels where
 * the processor has AVX-512F, AVX2 ones (the same bodies at 8 lanes) where it has AVX2 and FMA
 * but not AVX-512F, the ref kernels elsewhere. The choice is made once, when the table
 * is first asked for, from lib/core/cpu.h. */
#include "ops/cpu/cpu.h"
#include "core/cpu.h"
#include <pthread.h>

static cap_ops cpu_ops = {
	.name = "cpu",
	.host_memory = 1,
	.abi = CAP_OPS_ABI,
	.alloc = cap_host_alloc,
	.free = cap_host_free,
	.upload = cap_host_copy,
	.download = cap_host_copy,
	.copy = cap_host_copy,
	.zero = cap_host_zero,
	.sync = cap_host_sync,
	.freeze = cap_cpu_freeze,
	.thaw = cap_cpu_thaw,
	.set_precision = cap_cpu_set_precision,
	.set_threads = cap_cpu_set_threads,
	.gemm = cap_cpu_gemm,
	.weight_new = cap_ref_weight_new,   /* packed when first used, see matmul.c */
	.weight_update = cap_cpu_weight_update,
	.weight_free = cap_cpu_weight_free,
	.matmul = cap_cpu_matmul,
	.matmul_bias = cap_cpu_matmul_bias,
	.bias_rows = cap_cpu_bias_rows,
	.col_sums = cap_ref_col_sums,
	.row_gather = cap_ref_row_gather,
	.embed_gather = cap_ref_embed_gather,
	.embed_scatter_add = cap_ref_embed_scatter_add,
	.mul = cap_ref_mul,
	.scale = cap_ref_scale,
	.sum_squares = cap_ref_sum_squares,
	.lstm_cell_forward = cap_ref_lstm_cell_forward,
	.lstm_cell_backward = cap_ref_lstm_cell_backward,
	.log_softmax_rows = cap_ref_log_softmax_rows,
	.softmax_xent_rows = cap_ref_softmax_xent_rows,
	.row_topk = cap_cpu_row_topk,
	.dropout_forward = cap_ref_dropout_forward,
	.adam_step = cap_ref_adam_step,
	.weight_adam = cap_cpu_weight_adam,   /* adam_step then weight_update without AVX-512 */
	.encoder_new = cap_cpu_encoder_new,
	.encoder_run = cap_cpu_encoder_run,
	.encoder_impl = cap_cpu_encoder_impl,
	.encoder_free = cap_cpu_encoder_free,
};

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void choose(void)
{
#if defined(__x86_64__)
	if (cap_cpu_has(CAP_CPU_AVX512F)) {
		CAP_CPU_USE_VEC_KERNELS(cpu_ops, avx512);
		cpu_ops.sum_squares = cap_avx512_sum_squares;
	} else if (cap_cpu_has(CAP_CPU_AVX2)) {
		CAP_CPU_USE_VEC_KERNELS(cpu_ops, avx2);
	}
#endif
}

const cap_ops *cap_ops_cpu(void)
{
	pthread_once(&once, choose);
	return &cpu_ops;
}

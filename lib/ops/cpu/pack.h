/* B operands of oneDNN's matmul packed by our own loops (pack.c). Internal to lib/ops/cpu. */
#ifndef CAP_OPS_CPU_PACK_H
#define CAP_OPS_CPU_PACK_H

/* dst = B (K, N) packed in oneDNN's AVX-512 blocked layout for B (fp32 "BA16a64b", or bf16
 * "BA16a64b2a" rounded to nearest even), B's element (k, n) at src[k sk + n sn], sK and sN the
 * layout's outer block strides in elements; the padding of the last blocks is written as zeros.
 * Fast where sk or sn is 1. */
void cap_cpu_pack(const float *src, long sk, long sn, int K, int N, int bf16, long sK, long sN,
                  void *dst);

#endif

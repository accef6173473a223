/* B operands of oneDNN's matmul packed by our own loops (pack.c). Internal to lib/ops/cpu. */
#ifndef CAP_OPS_CPU_PACK_H
#define CAP_OPS_CPU_PACK_H

/* dst = B (K, N) packed in oneDNN's AVX-512 blocked layout for B (fp32 "BA16a64b", or bf16
 * "BA16a64b2a" rounded to nearest even), B's element (k, n) at src[k sk + n sn], sK and sN the
 * layout's outer block strides in elements; the padding of the last blocks is written as zeros.
 * Fast where sk or sn is 1. stream: with streaming stores, past the caches, where dst is
 * 64-byte aligned: for a packing not read soon (a weight's, made for the next step), whose
 * stores then skip reading the lines they overwrite. */
void cap_cpu_pack(const float *src, long sk, long sn, int K, int N, int bf16, long sK, long sN,
                  void *dst, int stream);
/* The part of the same packing that rows [r0, r0 + nr) of a weight W (rows, cols) fill, in the
 * packing of B = W^T (trans) or of B = W; r0 a multiple of 64 (a whole block row or column
 * either way), nr up to 64 (or to the end of W). On the calling thread alone: for a loop over
 * bands of rows that packs each band while it is still in the core's cache. */
void cap_cpu_pack_rows(const float *w, int rows, int cols, int trans, int r0, int nr, int bf16,
                       long sK, long sN, void *dst, int stream);

#endif

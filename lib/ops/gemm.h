/* Single-precision matrix multiply for the decoder and anyone else who needs one:
 *   C (M, N) = alpha * op(A) (M, K) * op(B) (K, N) + beta * C
 * row-major, op(X) = X or X^T as ta/tb say, with leading dimensions lda/ldb/ldc (row strides).
 * The fast path is oneDNN's dnnl_sgemm (threaded by OpenMP inside libdnnl); the plain C
 * reference is kept beside it as the algorithmic definition and for tests, and can be chosen
 * for the whole process with cap_gemm_set_reference(1). */
#ifndef CAP_GEMM_H
#define CAP_GEMM_H

/* ta, tb: 0 = as stored, 1 = transposed. When beta == 0, C is not read (may hold NaN). */
void cap_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc);
/* The plain C reference (same contract), always available. */
void cap_sgemm_ref(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *B, int ldb, float beta, float *C, int ldc);
/* Process-wide switch: 1 makes cap_sgemm use the reference. Returns the previous setting. */
int cap_gemm_set_reference(int on);
int cap_gemm_reference(void);
/* Sets the number of threads oneDNN uses (libdnnl in Debian is built with OpenMP, so this
 * sets OpenMP's thread count). n <= 0 leaves the default (OMP_NUM_THREADS or all cores).
 * Returns -1 with cap_errmsg() when the OpenMP runtime cannot be reached. */
int cap_gemm_set_threads(int n);
/* Brackets a stretch of small products (the per-step recurrence of the LSTM) that runs on one
 * thread: with 64 rows a second thread saves little, and on a busy machine waiting for it at
 * every call cost ten times more than it saved. cap_gemm_serial_end() restores the count. */
void cap_gemm_serial_begin(void);
void cap_gemm_serial_end(void);
#endif

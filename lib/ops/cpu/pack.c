/* B operands packed in the blocked layouts oneDNN's matmul reads on AVX-512 (see matmul.c), by
 * our own loops: oneDNN's reorders into these layouts ran at 1.5-3 G values/s on a 2-core Zen 5
 * (0.42-0.88 ms for the 2539 x 512 output layer), and a training step packs its three weights
 * in both directions, and its weight gradients' B operands, every step.
 *
 * The layouts, element (k, n) of B (K, N), blocks of KB x 64:
 *   fp32 ("BA16a64b"):   (k / 16) sK + (n / 64) sN + (k % 16) 64 + n % 64
 *   bf16 ("BA16a64b2a"): (k / 32) sK + (n / 64) sN + ((k % 32) / 2) 128 + (n % 64) 2 + k % 2
 * with the outer strides sK, sN read from oneDNN's descriptor, K and N padded to whole blocks
 * (the padding written as zeros). */
#include "ops/cpu/pack.h"
#include "ops/cpu/cpu.h"
#include "ops/bf16.h"
#include "core/cpu.h"
#include <stdint.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* Streaming stores need 64-byte alignment: the blocks are whole multiples of 64 bytes apart
 * (oneDNN's strides), so the buffer's start decides. */
static int aligned(const void *p)
{
	return ((uintptr_t)p & 63) == 0;
}

/* One block (k0, n0) element by element: edges, and machines without AVX-512. */
static void block_scalar(const float *src, long sk, long sn, int K, int N, int bf16, void *dst,
                         long base, int k0, int n0)
{
	int KB = bf16 ? 32 : 16;
	for (int k = k0; k < k0 + KB; k++)
		for (int n = n0; n < n0 + 64; n++) {
			float v = k < K && n < N ? src[k * sk + n * sn] : 0;   /* the padding: zeros */
			if (bf16)
				((uint16_t *)dst)[base + ((k % 32) / 2) * 128 + (n % 64) * 2 + k % 2] = cap_bf16_from_float(v);
			else
				((float *)dst)[base + (k % 16) * 64 + n % 64] = v;
		}
}

#if defined(__x86_64__)
/* r[0..15] (16 x 16 32-bit elements) transposed in registers: afterwards r[c] holds what was
 * column c. */
__attribute__((target("avx512f")))
static inline void transpose16(__m512 *r)
{
	__m512 t[16];
	for (int i = 0; i < 16; i += 2) {
		t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
		t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
	}
	for (int i = 0; i < 16; i += 4)
		for (int j = 0; j < 2; j++) {
			r[i + j] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + j]), _mm512_castps_pd(t[i + j + 2])));
			r[i + j + 2] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + j]), _mm512_castps_pd(t[i + j + 2])));
		}
	for (int i = 0; i < 16; i += 8)
		for (int j = 0; j < 4; j++) {
			t[i + j] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0x88);
			t[i + j + 4] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0xdd);
		}
	for (int j = 0; j < 8; j++) {
		r[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
		r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xdd);
	}
	/* the 64-bit step left the middle two of every four columns swapped */
	for (int i = 0; i < 16; i += 4) {
		__m512 x = r[i + 1];
		r[i + 1] = r[i + 2];
		r[i + 2] = x;
	}
}

/* 16 floats to d, 64-byte aligned when stream: then past the caches (see cap_cpu_pack) */
__attribute__((target("avx512f")))
static inline void put16(float *d, __m512 v, int stream)
{
	if (stream)
		_mm512_stream_ps(d, v);
	else
		_mm512_storeu_ps(d, v);
}

/* A whole fp32 block: rows of B contiguous along n (sn == 1) are copied, columns (sk == 1) are
 * transposed 16 x 16 at a time. */
__attribute__((target("avx512f")))
static void block_f32(const float *src, long sk, long sn, float *d, int k0, int n0, int stream)
{
	if (sn == 1) {
		for (int k = 0; k < 16; k++)
			for (int g = 0; g < 64; g += 16)
				put16(d + k * 64 + g, _mm512_loadu_ps(src + (k0 + k) * sk + n0 + g), stream);
		return;
	}
	for (int g = 0; g < 64; g += 16) {
		__m512 r[16];
		for (int i = 0; i < 16; i++)   /* row i: n0 + g + i, k0..k0+15 */
			r[i] = _mm512_loadu_ps(src + (n0 + g + i) * sn + k0);
		transpose16(r);
		for (int k = 0; k < 16; k++)
			put16(d + k * 64 + g, r[k], stream);
	}
}

/* A whole bf16 block: pairs (k, k+1) side by side. Rows of B contiguous along n: two rows
 * rounded and interleaved; columns: 32 k of one column rounded in order (a pair is then one
 * 32-bit lane) and 16 columns transposed as 32-bit lanes. */
__attribute__((target("avx512f,avx512bw,avx512bf16")))
static void block_bf16(const float *src, long sk, long sn, uint16_t *d, int k0, int n0, int stream)
{
	if (sn == 1) {
		const __m512i pairs = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
		                                        23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
		for (int p = 0; p < 16; p++) {
			const float *a = src + (k0 + 2 * p) * sk + n0, *b = a + sk;
			for (int g = 0; g < 64; g += 16) {
				__m256i ra = (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(a + g));
				__m256i rb = (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(b + g));
				__m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(ra), rb, 1);
				put16((float *)(d + p * 128 + g * 2), (__m512)_mm512_permutexvar_epi16(pairs, both), stream);
			}
		}
		return;
	}
	for (int g = 0; g < 64; g += 16) {
		__m512 r[16];
		for (int i = 0; i < 16; i++) {   /* column n0 + g + i of B: k0..k0+31 */
			const float *s = src + (n0 + g + i) * sn + k0;
			r[i] = (__m512)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(s + 16), _mm512_loadu_ps(s));
		}
		transpose16(r);   /* r[p]: pair p of the 16 columns */
		for (int p = 0; p < 16; p++)
			put16((float *)(d + p * 128 + g * 2), r[p], stream);
	}
}
#endif

/* How block() writes: 0 element by element; 1 with the AVX-512 loops, which need B contiguous
 * along k or n (unit) and the processor's support; 2 those with streaming stores, asked for
 * and possible at dst. */
static int wide_mode(int bf16, int unit, int stream, const void *dst)
{
#if defined(__x86_64__)
	if (unit && cap_cpu_has(bf16 ? CAP_CPU_AVX512BF16 : CAP_CPU_AVX512F))
		return 1 + (stream && aligned(dst));
#else
	(void)bf16, (void)unit, (void)stream, (void)dst;
#endif
	return 0;
}

/* Streaming stores are ordered only by a fence: one on each thread after its run of blocks,
 * before the packing can be read (a fence per 4 KB block cost more than the stores). */
static void fence(int wide)
{
#if defined(__x86_64__)
	if (wide == 2)
		_mm_sfence();
#else
	(void)wide;
#endif
}

/* Block (kb, nb) of the packing; wide as wide_mode says (the caller fences). */
static void block(const float *src, long sk, long sn, int K, int N, int bf16, long sK, long sN,
                  void *dst, int wide, int kb, int nb)
{
	int KB = bf16 ? 32 : 16, k0 = kb * KB, n0 = nb * 64;
	long base = kb * sK + nb * sN;
#if defined(__x86_64__)
	if (wide && k0 + KB <= K && n0 + 64 <= N) {
		if (bf16)
			block_bf16(src, sk, sn, (uint16_t *)dst + base, k0, n0, wide == 2);
		else
			block_f32(src, sk, sn, (float *)dst + base, k0, n0, wide == 2);
		return;
	}
#else
	(void)wide;
#endif
	block_scalar(src, sk, sn, K, N, bf16, dst, base, k0, n0);
}

/* The blocks of one band of the packing: block row kb = o (every nb) when k_band, else block
 * column nb = o (every kb). */
static void band(const float *src, long sk, long sn, int K, int N, int bf16, long sK, long sN, void *dst,
                 int wide, int k_band, int o)
{
	int KB = bf16 ? 32 : 16;
	if (k_band)
		for (int nb = 0; nb * 64 < N; nb++)
			block(src, sk, sn, K, N, bf16, sK, sN, dst, wide, o, nb);
	else
		for (int kb = 0; kb * KB < K; kb++)
			block(src, sk, sn, K, N, bf16, sK, sN, dst, wide, kb, o);
}

void cap_cpu_pack_rows(const float *w, int rows, int cols, int trans, int r0, int nr, int bf16,
                       long sK, long sN, void *dst, int stream)
{
	int KB = bf16 ? 32 : 16, wide = wide_mode(bf16, 1, stream, dst);
	if (trans)   /* B = W^T (cols, rows): the rows of W are B's columns, whole 64-column blocks */
		for (int nb = r0 / 64; nb * 64 < r0 + nr; nb++)
			band(w, 1, cols, cols, rows, bf16, sK, sN, dst, wide, 0, nb);
	else         /* B = W (rows, cols): the rows of W are B's, whole KB-row blocks */
		for (int kb = r0 / KB; kb * KB < r0 + nr; kb++)
			band(w, cols, 1, rows, cols, bf16, sK, sN, dst, wide, 1, kb);
	fence(wide);
}

void cap_cpu_pack(const float *src, long sk, long sn, int K, int N, int bf16, long sK, long sN,
                  void *dst, int stream)
{
	int KB = bf16 ? 32 : 16, wide = wide_mode(bf16, sk == 1 || sn == 1, stream, dst);
	/* bands in the order that reads src front to back (rows of B when they are contiguous);
	 * threads take bands */
	int k_band = sn == 1, nband = k_band ? (K + KB - 1) / KB : (N + 63) / 64;
	CAP_PARALLEL_FOR_IF((long)K * N >= 65536)
	for (int o = 0; o < nband; o++) {
		band(src, sk, sn, K, N, bf16, sK, sN, dst, wide, k_band, o);
		fence(wide);
	}
}

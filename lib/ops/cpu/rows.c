/* The bias broadcast and the column sums of the bias gradients on the backend's threads (see
 * ops.h; the plain versions are in lib/ops/ref/rows.c): each fills or reads an (n, 4H) or (n, V)
 * block every step, more than one core alone moves fast enough. */
#include "ops/cpu/cpu.h"
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define AVX512 __attribute__((target("avx512f")))
#endif

void cap_cpu_bias_rows(float *y, const float *b1, const float *b2, int rows, int n)
{
	if (rows <= 0)
		return;
	for (int j = 0; j < n; j++)
		y[j] = b2 ? b1[j] + b2[j] : b1[j];
	CAP_PARALLEL_FOR_IF((long)rows * n >= 65536)
	for (int r = 1; r < rows; r++)
		memcpy(y + (size_t)r * n, y, sizeof(float) * (size_t)n);
}

#if defined(__x86_64__)
/* Column sums in double with each column's rows added in order, as ref does (so the result is
 * bitwise ref's); threads take blocks of 64 columns. */
AVX512 static void col_block(const float *x, int rows, int n, int j0, int w, float *out)
{
	__m512d acc[8];
	double rest[8] = { 0 };
	int full = w / 8;
	for (int q = 0; q < 8; q++)
		acc[q] = _mm512_setzero_pd();
	for (int r = 0; r < rows; r++) {
		const float *row = x + (size_t)r * n + j0;
		for (int q = 0; q < full; q++)
			acc[q] = _mm512_add_pd(acc[q], _mm512_cvtps_pd(_mm256_loadu_ps(row + 8 * q)));
		for (int j = 8 * full; j < w; j++)
			rest[j - 8 * full] += row[j];
	}
	for (int q = 0; q < full; q++)
		_mm256_storeu_ps(out + j0 + 8 * q, _mm512_cvtpd_ps(acc[q]));
	for (int j = 8 * full; j < w; j++)
		out[j0 + j] = (float)rest[j - 8 * full];
}

void cap_avx512_col_sums(const float *x, int rows, int n, float *out)
{
	int nb = (n + 63) / 64;
	CAP_PARALLEL_FOR_IF(nb > 1 && (long)rows * n >= 65536)
	for (int b = 0; b < nb; b++)
		col_block(x, rows, n, 64 * b, n - 64 * b < 64 ? n - 64 * b : 64, out);
}
#endif

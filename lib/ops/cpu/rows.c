/* The bias broadcast and the column sums of the bias gradients on the backend's threads (see
 * ops.h; the plain versions are in lib/ops/ref/rows.c): each fills or reads an (n, 4H) or (n, V)
 * block every step, more than one core alone moves fast enough. The column sums are vector
 * code at both widths (rows_vec.h, see vec.h). */
#include "ops/cpu/cpu.h"
#include <string.h>

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
#define VEC_BODY "ops/cpu/rows_vec.h"
#include "ops/cpu/vec_widths.h"
#endif

/* The bias broadcast on the backend's threads (see ops.h; the plain version is in
 * lib/ops/ref/rows.c): before each whole-batch GEMM it fills an (n, 4H) or (n, V) block, and one
 * core alone could not write that fast enough. */
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

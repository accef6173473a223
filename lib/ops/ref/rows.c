/* Row and elementwise ops in plain C (see ops.h): bias broadcast, column sums, gathers, the
 * embedding's scatter-add, dropout. */
#include "ops/host.h"
#include "core/error.h"
#include <stdlib.h>
#include <string.h>

void cap_ref_bias_rows(float *y, const float *b1, const float *b2, int rows, int n)
{
	float *row = y;
	if (rows <= 0)
		return;
	for (int j = 0; j < n; j++)
		row[j] = b2 ? b1[j] + b2[j] : b1[j];
	for (int r = 1; r < rows; r++)
		memcpy(y + (size_t)r * n, row, sizeof(float) * (size_t)n);
}

void cap_ref_col_sums(const float *x, int rows, int n, float *out)
{
	/* In double: the sums run over up to thousands of rows. */
	double *acc = cap_xcalloc((size_t)(n > 0 ? n : 1), sizeof(double));
	for (int r = 0; r < rows; r++)
		for (int j = 0; j < n; j++)
			acc[j] += x[(size_t)r * n + j];
	for (int j = 0; j < n; j++)
		out[j] = (float)acc[j];
	free(acc);
}

void cap_ref_row_gather(float *out, const float *src, const int32_t *idx, int n, int width)
{
	for (int i = 0; i < n; i++)
		memcpy(out + (size_t)i * width, src + (size_t)idx[i] * width, sizeof(float) * (size_t)width);
}

void cap_ref_embed_gather(float *out, const float *table, const uint32_t *ids, int n, int E)
{
	for (int i = 0; i < n; i++)
		memcpy(out + (size_t)i * E, table + (size_t)ids[i] * E, sizeof(float) * (size_t)E);
}

void cap_ref_embed_scatter_add(float *grad, const float *d, const uint32_t *ids, int n, int E)
{
	for (int i = 0; i < n; i++) {
		float *g = grad + (size_t)ids[i] * E;
		const float *s = d + (size_t)i * E;
		for (int j = 0; j < E; j++)
			g[j] += s[j];
	}
}

void cap_ref_mul(float *x, const float *y, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x[i] *= y[i];
}

void cap_ref_scale(float *x, size_t n, float a)
{
	for (size_t i = 0; i < n; i++)
		x[i] *= a;
}

double cap_ref_sum_squares(const float *x, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += (double)x[i] * x[i];
	return s;
}

void cap_ref_dropout_forward(const float *h, float *mask, float *hd, size_t n, float p, uint64_t seed)
{
	float scale = 1.0f / (1.0f - p);
	for (size_t i = 0; i < n; i++) {
		mask[i] = cap_dropout_keep(seed, i, p) ? scale : 0.0f;
		hd[i] = h[i] * mask[i];
	}
}

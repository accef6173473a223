/* The column sums of the bias gradients at one vector width (see vec.h; included by rows.c once
 * per width, so no include guard). */

/* Column sums in double with each column's rows added in order, as ref does (so the result is
 * bitwise ref's): a block of COL_ACC vectors of doubles, COL_BLOCK columns, a thread at a time.
 * The rows lie a whole row apart: the wider the block, the longer each row's run of consecutive
 * lines. 16 vectors (128 columns) on AVX-512 against 8: 0.28 against 0.35-0.37 ms for the
 * (827, 2539) logits out of cache (best of 20, 2 threads, Zen 5); wider blocks (256-1024 columns)
 * were slower again. AVX2 keeps 8. */
#define COL_ACC (VEC_WIDTH == 16 ? 16 : 8)
#define COL_BLOCK (COL_ACC * VD_WIDTH)
VEC_TARGET static void VEC_STATIC(col_block)(const float *x, int rows, int n, int j0, int w, float *out)
{
	vd acc[COL_ACC];
	double rest[VD_WIDTH] = { 0 };   /* the last w % VD_WIDTH columns */
	int full = w / VD_WIDTH;
	for (int q = 0; q < COL_ACC; q++)
		acc[q] = vdzero();
	for (int r = 0; r < rows; r++) {
		const float *row = x + (size_t)r * n + j0;
		for (int q = 0; q < full; q++)
			acc[q] = vdadd(acc[q], vd_load_floats(row + VD_WIDTH * q));
		for (int j = VD_WIDTH * full; j < w; j++)
			rest[j - VD_WIDTH * full] += row[j];
	}
	for (int q = 0; q < full; q++)
		vd_store_floats(out + j0 + VD_WIDTH * q, acc[q]);
	for (int j = VD_WIDTH * full; j < w; j++)
		out[j0 + j] = (float)rest[j - VD_WIDTH * full];
}

void VEC_FN(col_sums)(const float *x, int rows, int n, float *out)
{
	int nb = (n + COL_BLOCK - 1) / COL_BLOCK;
	CAP_PARALLEL_FOR_IF(nb > 1 && (long)rows * n >= 65536)
	for (int b = 0; b < nb; b++)
		VEC_STATIC(col_block)(x, rows, n, COL_BLOCK * b, n - COL_BLOCK * b < COL_BLOCK ? n - COL_BLOCK * b : COL_BLOCK, out);
}
#undef COL_BLOCK
#undef COL_ACC

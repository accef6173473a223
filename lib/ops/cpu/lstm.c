/* The LSTM cell forward on AVX-512 (see ops.h; the plain version is lib/ops/ref/lstm.c). */
#include "ops/cpu/cpu.h"
#include <string.h>
#if defined(__x86_64__)
#include "ops/cpu/avx512_math.h"

AVX512 static void cell_avx512(float *pre, const float *c_prev, float *c, float *tc, float *h, int H)
{
	float *gi = pre, *gf = pre + H, *gg = pre + 2 * H, *go = pre + 3 * H;
	int j = 0;
	for (; j + 16 <= H; j += 16) {
		__m512 i = sigm512(_mm512_loadu_ps(gi + j)), f = sigm512(_mm512_loadu_ps(gf + j));
		__m512 g = tanh512(_mm512_loadu_ps(gg + j)), o = sigm512(_mm512_loadu_ps(go + j));
		__m512 cn = _mm512_mul_ps(i, g);
		if (c_prev)
			cn = _mm512_add_ps(cn, _mm512_mul_ps(f, _mm512_loadu_ps(c_prev + j)));
		__m512 t = tanh512(cn);
		_mm512_storeu_ps(gi + j, i); _mm512_storeu_ps(gf + j, f);
		_mm512_storeu_ps(gg + j, g); _mm512_storeu_ps(go + j, o);
		_mm512_storeu_ps(c + j, cn);
		if (tc)
			_mm512_storeu_ps(tc + j, t);
		_mm512_storeu_ps(h + j, _mm512_mul_ps(o, t));
	}
	if (j < H) {  /* tail through the scalar code on the shifted views */
		float tmp[4 * 16];
		int k = H - j;
		for (int q = 0; q < 4; q++)
			memcpy(tmp + q * k, pre + q * H + j, sizeof(float) * k);
		cap_ref_lstm_cell_forward(tmp, c_prev ? c_prev + j : NULL, c + j, tc ? tc + j : NULL, h + j, 1, k);
		for (int q = 0; q < 4; q++)
			memcpy(pre + q * H + j, tmp + q * k, sizeof(float) * k);
	}
}

/* The backward of one row (see ops.h and the plain loop in lib/ops/ref/lstm.c, whose operation
 * order this keeps: the two agree to float rounding of the fused multiply-adds). */
AVX512 static void cell_backward_avx512(const float *a, const float *cp, const float *t, const float *dho,
                                        const float *dhr, float *dcr, float *d, int H)
{
	__m512 one = _mm512_set1_ps(1.0f);
	int j = 0;
	for (; j + 16 <= H; j += 16) {
		__m512 i = _mm512_loadu_ps(a + j), f = _mm512_loadu_ps(a + H + j);
		__m512 g = _mm512_loadu_ps(a + 2 * H + j), o = _mm512_loadu_ps(a + 3 * H + j);
		__m512 tc = _mm512_loadu_ps(t + j);
		__m512 dh = _mm512_add_ps(_mm512_loadu_ps(dho + j), _mm512_loadu_ps(dhr + j));
		__m512 dc = _mm512_add_ps(_mm512_loadu_ps(dcr + j),
		                          _mm512_mul_ps(_mm512_mul_ps(dh, o), _mm512_sub_ps(one, _mm512_mul_ps(tc, tc))));
		__m512 cprev = cp ? _mm512_loadu_ps(cp + j) : _mm512_setzero_ps();
		_mm512_storeu_ps(d + j, _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(dc, g), i), _mm512_sub_ps(one, i)));
		_mm512_storeu_ps(d + H + j, _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(dc, cprev), f), _mm512_sub_ps(one, f)));
		_mm512_storeu_ps(d + 2 * H + j, _mm512_mul_ps(_mm512_mul_ps(dc, i), _mm512_sub_ps(one, _mm512_mul_ps(g, g))));
		_mm512_storeu_ps(d + 3 * H + j, _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(dh, tc), o), _mm512_sub_ps(one, o)));
		_mm512_storeu_ps(dcr + j, _mm512_mul_ps(dc, f));
	}
	if (j < H) {  /* tail through the plain code on gathered copies of the four gate slices */
		float ta[4 * 16], td[4 * 16];
		int k = H - j;
		for (int q = 0; q < 4; q++)
			memcpy(ta + q * k, a + q * H + j, sizeof(float) * k);
		cap_ref_lstm_cell_backward(ta, cp ? cp + j : NULL, t + j, dho + j, dhr + j, dcr + j, td, 1, k);
		for (int q = 0; q < 4; q++)
			memcpy(d + q * H + j, td + q * k, sizeof(float) * k);
	}
}

void cap_avx512_lstm_cell_backward(const float *g, const float *c_prev, const float *tc, const float *dh,
                                   const float *dh_rec, float *dc, float *dg, int n, int H)
{
	CAP_PARALLEL_FOR_IF(n >= 8)
	for (int b = 0; b < n; b++) {
		size_t o = (size_t)b * H;
		cell_backward_avx512(g + 4 * o, c_prev ? c_prev + o : NULL, tc + o, dh + o, dh_rec + o, dc + o,
		                     dg + 4 * o, H);
	}
}

void cap_avx512_lstm_cell_forward(float *g, const float *c_prev, float *c, float *tc, float *h, int n, int H)
{
	CAP_PARALLEL_FOR_IF(n >= 8)
	for (int b = 0; b < n; b++) {
		size_t o = (size_t)b * H;
		cell_avx512(g + 4 * o, c_prev ? c_prev + o : NULL, c + o, tc ? tc + o : NULL, h + o, H);
	}
}
#endif

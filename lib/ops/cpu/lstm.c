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

void cap_avx512_lstm_cell_forward(float *g, const float *c_prev, float *c, float *tc, float *h, int n, int H)
{
	for (int b = 0; b < n; b++) {
		size_t o = (size_t)b * H;
		cell_avx512(g + 4 * o, c_prev ? c_prev + o : NULL, c + o, tc ? tc + o : NULL, h + o, H);
	}
}
#endif

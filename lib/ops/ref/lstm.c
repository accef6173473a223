/* The LSTM cell, forward and backward, in plain C (see ops.h): PyTorch's gate order i, f, g, o. */
#include "ops/host.h"
#include <math.h>

static inline float sigm(float x) { return 1.0f / (1.0f + expf(-x)); }

void cap_ref_lstm_cell_forward(float *g, const float *c_prev, float *c, float *tc, float *h, int n, int H)
{
	for (int b = 0; b < n; b++) {
		size_t o = (size_t)b * H;
		float *gi = g + 4 * o, *gf = gi + H, *gg = gi + 2 * H, *go = gi + 3 * H;
		const float *cp = c_prev ? c_prev + o : NULL;
		for (int j = 0; j < H; j++) {
			float i = sigm(gi[j]), f = sigm(gf[j]), gv = tanhf(gg[j]), ov = sigm(go[j]);
			float cn = i * gv + (cp ? f * cp[j] : 0.0f);
			float t = tanhf(cn);
			gi[j] = i; gf[j] = f; gg[j] = gv; go[j] = ov;
			c[o + j] = cn;
			if (tc)
				tc[o + j] = t;
			h[o + j] = ov * t;
		}
	}
}

void cap_ref_lstm_cell_backward(const float *g, const float *c_prev, const float *tc, const float *dh,
                                const float *dh_rec, float *dc, float *dg, int n, int H)
{
	for (int b = 0; b < n; b++) {
		size_t o = (size_t)b * H;
		const float *a = g + 4 * o, *t = tc + o, *cp = c_prev ? c_prev + o : NULL;
		const float *dho = dh + o, *dhr = dh_rec + o;
		float *dcr = dc + o, *d = dg + 4 * o;
		for (int j = 0; j < H; j++) {
			float i = a[j], f = a[H + j], gv = a[2 * H + j], ov = a[3 * H + j];
			float dhj = dho[j] + dhr[j];
			float dcj = dcr[j] + dhj * ov * (1 - t[j] * t[j]);
			float cprev = cp ? cp[j] : 0.0f;
			d[j] = dcj * gv * i * (1 - i);
			d[H + j] = dcj * cprev * f * (1 - f);
			d[2 * H + j] = dcj * i * (1 - gv * gv);
			d[3 * H + j] = dhj * t[j] * ov * (1 - ov);
			dcr[j] = dcj * f;
		}
	}
}

/* Reference convolution and pooling (see conv_ref.h). */
#include <float.h>
#include <string.h>
#include "ops/ref/conv.h"

void cap_conv2d_ref(const float *in, int n, int cin, int h, int w,
                    const float *wt, const float *bias, int cout, int k, int stride, int pad,
                    const float *residual, int relu, float *out)
{
	int oh = cap_conv_out_size(h, k, stride, pad), ow = cap_conv_out_size(w, k, stride, pad);
	size_t oplane = (size_t)oh * ow, iplane = (size_t)h * w;
	for (int b = 0; b < n; b++)
		for (int co = 0; co < cout; co++) {
			float *o = out + ((size_t)b * cout + co) * oplane;
			for (size_t i = 0; i < oplane; i++)
				o[i] = bias ? bias[co] : 0.0f;
			for (int ci = 0; ci < cin; ci++) {
				const float *src = in + ((size_t)b * cin + ci) * iplane;
				const float *kw = wt + ((size_t)co * cin + ci) * k * k;
				for (int ky = 0; ky < k; ky++)
					for (int kx = 0; kx < k; kx++) {
						float wv = kw[ky * k + kx];
						for (int y = 0; y < oh; y++) {
							int iy = y * stride - pad + ky;
							if (iy < 0 || iy >= h)
								continue;
							const float *row = src + (size_t)iy * w;
							float *orow = o + (size_t)y * ow;
							for (int x = 0; x < ow; x++) {
								int ix = x * stride - pad + kx;
								if (ix >= 0 && ix < w)
									orow[x] += wv * row[ix];
							}
						}
					}
			}
			if (residual) {
				const float *r = residual + ((size_t)b * cout + co) * oplane;
				for (size_t i = 0; i < oplane; i++)
					o[i] += r[i];
			}
			if (relu)
				for (size_t i = 0; i < oplane; i++)
					o[i] = o[i] > 0.0f ? o[i] : 0.0f;
		}
}

void cap_maxpool2d_ref(const float *in, int n, int c, int h, int w, int k, int stride, int pad,
                       float *out)
{
	int oh = cap_conv_out_size(h, k, stride, pad), ow = cap_conv_out_size(w, k, stride, pad);
	for (int p = 0; p < n * c; p++) {
		const float *src = in + (size_t)p * h * w;
		float *o = out + (size_t)p * oh * ow;
		for (int y = 0; y < oh; y++)
			for (int x = 0; x < ow; x++) {
				float m = -FLT_MAX;
				for (int ky = 0; ky < k; ky++) {
					int iy = y * stride - pad + ky;
					if (iy < 0 || iy >= h)
						continue;
					for (int kx = 0; kx < k; kx++) {
						int ix = x * stride - pad + kx;
						if (ix >= 0 && ix < w && src[iy * w + ix] > m)
							m = src[iy * w + ix];
					}
				}
				o[y * ow + x] = m;
			}
	}
}

void cap_avgpool_global_ref(const float *in, int n, int c, int h, int w, float *out)
{
	size_t plane = (size_t)h * w;
	for (int p = 0; p < n * c; p++) {
		/* double accumulation: the reference should not add its own rounding error */
		double s = 0;
		for (size_t i = 0; i < plane; i++)
			s += in[(size_t)p * plane + i];
		out[p] = (float)(s / (double)plane);
	}
}

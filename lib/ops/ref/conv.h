/* Plain C reference operators in NCHW float32: the definitions the oneDNN path is tested
 * against. Written for clarity and modest speed (the inner loops run along image rows), not
 * for production use. */
#ifndef CAP_CONV_REF_H
#define CAP_CONV_REF_H

/* Output side of a convolution or pooling window: (in + 2 pad - k) / stride + 1. */
static inline int cap_conv_out_size(int in, int k, int stride, int pad)
{
	return (in + 2 * pad - k) / stride + 1;
}

/* out (n, cout, oh, ow) = conv(in (n, cin, h, w), w (cout, cin, k, k)) + bias, zero padding,
 * then ReLU when relu != 0. When residual is not NULL (same shape as out) it is added before
 * the ReLU. */
void cap_conv2d_ref(const float *in, int n, int cin, int h, int w,
                    const float *wt, const float *bias, int cout, int k, int stride, int pad,
                    const float *residual, int relu, float *out);
/* Max pooling with padding that never wins (as torch: -inf padding). */
void cap_maxpool2d_ref(const float *in, int n, int c, int h, int w, int k, int stride, int pad,
                       float *out);
/* Mean over all h x w positions: out (n, c). */
void cap_avgpool_global_ref(const float *in, int n, int c, int h, int w, float *out);
#endif

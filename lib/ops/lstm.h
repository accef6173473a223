/* Elementwise kernels of the decoder: the LSTM cell over rows of gates and the fused
 * softmax cross-entropy. Each has a plain C version (libm, the reference) and an AVX-512
 * version chosen at run time on processors that have it; cap_gemm_set_reference(1) selects
 * the plain versions together with the reference GEMM. The AVX-512 exp is a Cephes-style
 * polynomial accurate to about 2 ulp, so the two paths agree to float rounding, not bitwise. */
#ifndef CAP_LSTM_H
#define CAP_LSTM_H
#include <stddef.h>
#include <stdint.h>

/* n rows: g (n, 4H) gate pre-activations i, f, g, o, replaced by their activations;
 * c_prev (n, H) or NULL for zeros; writes c, tc = tanh(c) (may be NULL) and h (n, H). */
void cap_lstm_cell_rows(float *g, const float *c_prev, float *c, float *tc, float *h, int n, int H);
/* n rows of logits x (n, V) and their targets: returns the sum over rows of
 * -log softmax(x)[target]. With grad_scale > 0, x is replaced by
 * grad_scale * (softmax(x) - onehot(target)) (the gradient of the mean loss when
 * grad_scale = 1/N); otherwise x is left with unspecified values. */
double cap_softmax_xent_rows(float *x, const uint32_t *target, int n, int V, float grad_scale);
#endif

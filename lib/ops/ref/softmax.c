/* Log-softmax and the fused softmax cross-entropy over rows of logits, in plain C (see ops.h). */
#include "ops/host.h"
#include <math.h>

void cap_ref_log_softmax_rows(float *x, int rows, int n)
{
	for (int r = 0; r < rows; r++) {
		float *v = x + (size_t)r * n, mx = -INFINITY;
		for (int j = 0; j < n; j++)
			mx = v[j] > mx ? v[j] : mx;
		double s = 0;   /* in double: V is in the thousands */
		for (int j = 0; j < n; j++)
			s += exp((double)v[j] - mx);
		float lse = mx + (float)log(s);
		for (int j = 0; j < n; j++)
			v[j] -= lse;
	}
}

double cap_ref_softmax_xent_row(float *v, uint32_t tg, int V, float grad_scale)
{
	float mx = -INFINITY;
	for (int j = 0; j < V; j++)
		mx = v[j] > mx ? v[j] : mx;
	float xt = v[tg] - mx, s = 0;
	for (int j = 0; j < V; j++) {
		v[j] = expf(v[j] - mx);
		s += v[j];
	}
	if (grad_scale > 0) {
		float k = grad_scale / s;
		for (int j = 0; j < V; j++)
			v[j] *= k;
		v[tg] -= grad_scale;
	}
	return (double)logf(s) - (double)xt;
}

void cap_ref_softmax_xent_rows(float *x, const uint32_t *target, int n, int V, float grad_scale,
                               double *loss)
{
	for (int r = 0; r < n; r++)
		loss[r] = cap_ref_softmax_xent_row(x + (size_t)r * V, target[r], V, grad_scale);
}

/* Log-softmax and the fused softmax cross-entropy over rows of logits, in plain C (see ops.h). */
#include "ops/host.h"
#include <limits.h>
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
	if (tg == CAP_TARGET_NONE) {   /* padding: no loss, no gradient */
		if (grad_scale > 0)
			for (int j = 0; j < V; j++)
				v[j] = 0;
		return 0;
	}
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

/* k rounds over the row, each taking the best column that comes after the previous round's
 * winner in the order of cap_topk_better: O(k n), the definition the fast versions follow. */
void cap_ref_row_topk(const float *x, int rows, int n, int k, int ex0, int ex1, float *vals,
                      int32_t *idx)
{
	for (int r = 0; r < rows; r++) {
		const float *v = x + (size_t)r * n;
		float pv = INFINITY;
		int pi = -1;
		for (int j = 0; j < k; j++) {
			float bv = -INFINITY;
			int bi = INT_MAX;
			for (int i = 0; i < n; i++) {
				if (i == ex0 || i == ex1 || !cap_topk_better(pv, pi, v[i], i))
					continue;   /* excluded, or not after the previous winner (NaN never is) */
				if (cap_topk_better(v[i], i, bv, bi))
					bv = v[i], bi = i;
			}
			vals[(size_t)r * k + j] = bv;
			idx[(size_t)r * k + j] = bi == INT_MAX ? -1 : bi;
			if (bi != INT_MAX)
				pv = bv, pi = bi;
		}
	}
}

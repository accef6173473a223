/* One Adam step as torch.optim.Adam's single-tensor path computes it, operation by operation in
 * float, so that the rounding matches (see ops.h and lib/train/adam.h). */
#include "ops/host.h"
#include <math.h>

void cap_ref_adam_step(float *param, const float *grad, float *m, float *v, size_t n,
                       const cap_adam_consts *k)
{
	for (size_t i = 0; i < n; i++) {
		float g = grad[i];
		m[i] = m[i] * k->b1 + k->one_b1 * g;          /* exp_avg.mul_(b1).add_(g, alpha=1-b1) */
		v[i] = v[i] * k->b2 + k->one_b2 * g * g;      /* exp_avg_sq.mul_(b2).addcmul_(g, g, 1-b2) */
		float denom = sqrtf(v[i]) / k->bc2_sqrt + k->eps;
		param[i] += -k->step_size * (m[i] / denom);  /* addcdiv_(m, denom, value=-step_size) */
	}
}

/* ref's prepared weight is the caller's W itself: nothing to refresh */
void cap_ref_weight_adam(cap_weight *w, const float *grad, float *m, float *v, const cap_adam_consts *k)
{
	cap_ref_adam_step((float *)w->w, grad, m, v, (size_t)w->rows * w->cols, k);
}

/* Adam and global-norm clipping, following torch.optim.Adam (single-tensor path) and
 * torch.nn.utils.clip_grad_norm_ operation by operation, so that float rounding matches. */
#include "adam.h"
#include "error.h"
#include <math.h>
#include <stdlib.h>

void cap_adam_init(cap_adam *a, size_t n, double lr)
{
	a->lr = lr; a->beta1 = 0.9; a->beta2 = 0.999; a->eps = 1e-8;
	a->step = 0;
	a->n = n;
	a->m = cap_xcalloc(n ? n : 1, sizeof(float));
	a->v = cap_xcalloc(n ? n : 1, sizeof(float));
}

void cap_adam_free(cap_adam *a)
{
	free(a->m); free(a->v);
	a->m = a->v = NULL;
}

void cap_adam_step(cap_adam *a, float *param, const float *grad)
{
	a->step++;
	/* torch computes the bias corrections in Python floats (double) and passes the scalars
	 * to float tensor ops. */
	double bc1 = 1 - pow(a->beta1, (double)a->step), bc2 = 1 - pow(a->beta2, (double)a->step);
	float step_size = (float)(a->lr / bc1), bc2_sqrt = (float)sqrt(bc2), eps = (float)a->eps;
	float b1 = (float)a->beta1, b2 = (float)a->beta2, one_b1 = (float)(1 - a->beta1),
	      one_b2 = (float)(1 - a->beta2);
	float *m = a->m, *v = a->v;
	for (size_t i = 0; i < a->n; i++) {
		float g = grad[i];
		m[i] = m[i] * b1 + one_b1 * g;            /* exp_avg.mul_(b1).add_(g, alpha=1-b1) */
		v[i] = v[i] * b2 + one_b2 * g * g;        /* exp_avg_sq.mul_(b2).addcmul_(g, g, 1-b2) */
		float denom = sqrtf(v[i]) / bc2_sqrt + eps;
		param[i] += -step_size * (m[i] / denom);  /* addcdiv_(m, denom, value=-step_size) */
	}
}

double cap_clip_grad_norm(float *grad, size_t n, double max_norm)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += (double)grad[i] * grad[i];
	double norm = sqrt(s);
	if (max_norm > 0) {
		float coef = (float)(max_norm / (norm + 1e-6));
		if (coef < 1.0f)
			for (size_t i = 0; i < n; i++)
				grad[i] *= coef;
	}
	return norm;
}

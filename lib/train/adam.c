/* Adam and global-norm clipping, following torch.optim.Adam (single-tensor path) and
 * torch.nn.utils.clip_grad_norm_: the scalars in double as Python computes them, the
 * elementwise work as a backend op (ops->adam_step) in torch's float operation order. */
#include "train/adam.h"
#include "core/error.h"
#include <math.h>
#include <string.h>

int cap_adam_init(cap_adam *a, const cap_ops *ops, size_t n, double lr)
{
	memset(a, 0, sizeof *a);
	a->ops = ops;
	a->lr = lr; a->beta1 = 0.9; a->beta2 = 0.999; a->eps = 1e-8;
	a->n = n;
	a->m = ops->alloc(sizeof(float) * (n ? n : 1));
	a->v = ops->alloc(sizeof(float) * (n ? n : 1));
	if (!a->m || !a->v) {
		cap_adam_free(a);
		return cap_fail_prefix("Adam moments of %zu parameters", n);
	}
	return 0;
}

void cap_adam_free(cap_adam *a)
{
	if (a->ops) {
		if (a->m) a->ops->free(a->m);
		if (a->v) a->ops->free(a->v);
	}
	a->m = a->v = NULL;
}

cap_adam_consts cap_adam_next(cap_adam *a)
{
	a->step++;
	/* torch computes the bias corrections in Python floats (double) and passes the scalars
	 * to float tensor ops. */
	double bc1 = 1 - pow(a->beta1, (double)a->step), bc2 = 1 - pow(a->beta2, (double)a->step);
	cap_adam_consts k = {
		.b1 = (float)a->beta1, .b2 = (float)a->beta2,
		.one_b1 = (float)(1 - a->beta1), .one_b2 = (float)(1 - a->beta2),
		.step_size = (float)(a->lr / bc1), .bc2_sqrt = (float)sqrt(bc2), .eps = (float)a->eps,
	};
	return k;
}

void cap_adam_step(cap_adam *a, float *param, const float *grad)
{
	cap_adam_consts k = cap_adam_next(a);
	a->ops->adam_step(param, grad, a->m, a->v, a->n, &k);
}

void cap_adam_download(const cap_adam *a, float *m, float *v)
{
	a->ops->download(m, a->m, sizeof(float) * a->n);
	a->ops->download(v, a->v, sizeof(float) * a->n);
}

void cap_adam_upload(cap_adam *a, const float *m, const float *v)
{
	a->ops->upload(a->m, m, sizeof(float) * a->n);
	a->ops->upload(a->v, v, sizeof(float) * a->n);
}

double cap_clip_grad_norm(const cap_ops *ops, float *grad, size_t n, double max_norm)
{
	double norm = sqrt(ops->sum_squares(grad, n));
	if (max_norm > 0) {
		float coef = (float)(max_norm / (norm + 1e-6));
		if (coef < 1.0f)
			ops->scale(grad, n, coef);
	}
	return norm;
}

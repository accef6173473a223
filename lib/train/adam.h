/* Adam as torch.optim.Adam computes it (default, non-fused, no weight decay, no amsgrad):
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * over one flat parameter block, and gradient clipping as torch.nn.utils.clip_grad_norm_. */
#ifndef CAP_ADAM_H
#define CAP_ADAM_H
#include <stddef.h>
#include <stdint.h>

typedef struct cap_adam {
	double lr, beta1, beta2, eps;
	int64_t step;      /* steps taken */
	size_t n;
	float *m, *v;      /* (n) first and second moments */
} cap_adam;

/* lr, betas 0.9/0.999, eps 1e-8, zero moments. */
void cap_adam_init(cap_adam *a, size_t n, double lr);
void cap_adam_free(cap_adam *a);
/* One update of param (n) with grad (n). */
void cap_adam_step(cap_adam *a, float *param, const float *grad);
/* The global 2-norm of grad (n); when max_norm > 0 and it exceeds max_norm, scales grad by
 * max_norm / (norm + 1e-6) as clip_grad_norm_ does. Returns the norm before clipping. */
double cap_clip_grad_norm(float *grad, size_t n, double max_norm);
#endif

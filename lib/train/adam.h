/* Adam as torch.optim.Adam computes it (default, non-fused, no weight decay, no amsgrad):
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * over one flat parameter block, and gradient clipping as torch.nn.utils.clip_grad_norm_.
 * The moments live in backend memory; the step runs as the backend's adam_step op. */
#ifndef CAP_ADAM_H
#define CAP_ADAM_H
#include <stddef.h>
#include <stdint.h>
#include "ops/ops.h"

typedef struct cap_adam {
	const cap_ops *ops;
	double lr, beta1, beta2, eps;
	int64_t step;      /* steps taken */
	size_t n;
	float *m, *v;      /* (n) first and second moments, backend memory */
} cap_adam;

/* lr, betas 0.9/0.999, eps 1e-8, zero moments. 0, or -1 with cap_errmsg() when the backend
 * has no memory for them. */
int cap_adam_init(cap_adam *a, const cap_ops *ops, size_t n, double lr);
void cap_adam_free(cap_adam *a);
/* One update of param (n) with grad (n), both backend memory. */
void cap_adam_step(cap_adam *a, float *param, const float *grad);
/* The next step's constants, the step counted, for a caller that runs the step's elementwise
 * work itself (over a->m and a->v) as cap_adam_step would. */
cap_adam_consts cap_adam_next(cap_adam *a);
/* The moments to and from host arrays of n floats (checkpoints). */
void cap_adam_download(const cap_adam *a, float *m, float *v);
void cap_adam_upload(cap_adam *a, const float *m, const float *v);
/* The global 2-norm of grad (n, backend memory); when max_norm > 0 and it exceeds max_norm,
 * scales grad by max_norm / (norm + 1e-6) as clip_grad_norm_ does. Returns the norm before
 * clipping. */
double cap_clip_grad_norm(const cap_ops *ops, float *grad, size_t n, double max_norm);
#endif

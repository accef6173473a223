/* Adam over a flat block at one vector width (see vec.h; included by adam.c once per width, so
 * no include guard). The same operations in the same order as the scalar loop of
 * lib/ops/ref/adam.c (no fused multiply-add), so both give bitwise the same parameters. */

VEC_TARGET void VEC_FN(adam_band)(float *param, const float *grad, float *m, float *v, size_t n,
                                  const cap_adam_consts *k)
{
	vf vb1 = vset1(k->b1), vb2 = vset1(k->b2), va1 = vset1(k->one_b1), va2 = vset1(k->one_b2),
	   vss = vset1(-k->step_size), vbc = vset1(k->bc2_sqrt), veps = vset1(k->eps);
	size_t i = 0;
	for (; i + VEC_WIDTH <= n; i += VEC_WIDTH) {
		vf g = vload(grad + i);
		vf mi = vadd(vmul(vload(m + i), vb1), vmul(va1, g));
		vf vi = vadd(vmul(vload(v + i), vb2), vmul(vmul(va2, g), g));
		vf denom = vadd(vdiv(vsqrt(vi), vbc), veps);
		vf p = vadd(vload(param + i), vmul(vss, vdiv(mi, denom)));
		vstore(m + i, mi);
		vstore(v + i, vi);
		vstore(param + i, p);
	}
	if (i < n)
		cap_ref_adam_step(param + i, grad + i, m + i, v + i, n - i, k);
}

/* Elementwise, so blocks on threads change nothing. */
void VEC_FN(adam_step)(float *param, const float *grad, float *m, float *v, size_t n, const cap_adam_consts *k)
{
	long nb = (long)((n + ADAM_BLOCK - 1) / ADAM_BLOCK);
	CAP_PARALLEL_FOR_IF(nb > 1)
	for (long b = 0; b < nb; b++) {
		size_t o = (size_t)b * ADAM_BLOCK, len = n - o < ADAM_BLOCK ? n - o : ADAM_BLOCK;
		VEC_FN(adam_band)(param + o, grad + o, m + o, v + o, len, k);
	}
}

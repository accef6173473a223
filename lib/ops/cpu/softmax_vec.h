/* Log-softmax and the fused softmax cross-entropy at one vector width (see vec.h; included by
 * softmax.c once per width, so no include guard). The plain versions are in
 * lib/ops/ref/softmax.c. */

/* The largest of v[0..n) (-inf for none). */
VEC_TARGET static float VEC_STATIC(row_max)(const float *v, int n)
{
	int j = 0;
	vf m = vset1(-INFINITY);
	for (; j + VEC_WIDTH <= n; j += VEC_WIDTH)
		m = vmax(m, vload(v + j));
	float mx = VEC_STATIC(vhmax)(m);
	for (; j < n; j++)
		mx = v[j] > mx ? v[j] : mx;
	return mx;
}

VEC_TARGET static double VEC_STATIC(xent)(float *v, uint32_t tg, int V, float grad_scale)
{
	int j;
	float mx = VEC_STATIC(row_max)(v, V);
	float xt = v[tg] - mx;
	vf vm = vset1(mx), acc = vzero();
	for (j = 0; j + VEC_WIDTH <= V; j += VEC_WIDTH) {
		vf e = VEC_STATIC(vexp)(vsub(vload(v + j), vm));
		vstore(v + j, e);
		acc = vadd(acc, e);
	}
	float s = VEC_STATIC(vhsum)(acc);
	for (; j < V; j++) {
		v[j] = expf(v[j] - mx);
		s += v[j];
	}
	if (grad_scale > 0) {
		float k = grad_scale / s;
		vf vk = vset1(k);
		for (j = 0; j + VEC_WIDTH <= V; j += VEC_WIDTH)
			vstore(v + j, vmul(vload(v + j), vk));
		for (; j < V; j++)
			v[j] *= k;
		v[tg] -= grad_scale;
	}
	return (double)logf(s) - (double)xt;
}

/* log-softmax of one row: the sum of exponentials in float lanes (each lane's sum stays within a
 * few ulp: the terms are <= 1), the lanes added in double, one log. */
VEC_TARGET static void VEC_STATIC(log_softmax)(float *v, int n)
{
	int j;
	float mx = VEC_STATIC(row_max)(v, n);
	vf vm = vset1(mx), acc = vzero();
	for (j = 0; j + VEC_WIDTH <= n; j += VEC_WIDTH)
		acc = vadd(acc, VEC_STATIC(vexp)(vsub(vload(v + j), vm)));
	double s = VEC_STATIC(vhsum_double)(acc);
	for (; j < n; j++)
		s += exp((double)v[j] - mx);
	float lse = mx + (float)log(s);
	vf vl = vset1(lse);
	for (j = 0; j + VEC_WIDTH <= n; j += VEC_WIDTH)
		vstore(v + j, vsub(vload(v + j), vl));
	for (; j < n; j++)
		v[j] -= lse;
}

/* Rows are independent: they go to the backend's threads. */
void VEC_FN(log_softmax_rows)(float *x, int rows, int n)
{
	CAP_PARALLEL_FOR_IF(rows >= 4)
	for (int r = 0; r < rows; r++)
		VEC_STATIC(log_softmax)(x + (size_t)r * n, n);
}

/* padding rows (CAP_TARGET_NONE) through the plain row, which clears them */
void VEC_FN(softmax_xent_rows)(float *x, const uint32_t *target, int n, int V, float grad_scale, double *loss)
{
	CAP_PARALLEL_FOR_IF(n >= 4)
	for (int r = 0; r < n; r++)
		loss[r] = target[r] == CAP_TARGET_NONE ? cap_ref_softmax_xent_row(x + (size_t)r * V, target[r], V, grad_scale)
		                                       : VEC_STATIC(xent)(x + (size_t)r * V, target[r], V, grad_scale);
}

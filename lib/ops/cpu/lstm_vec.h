/* The LSTM cell's kernels at one vector width (see vec.h; included by lstm.c once per width, so
 * no include guard). The plain versions, which take the tails, are in lib/ops/ref/lstm.c. */

VEC_TARGET static void VEC_STATIC(cell)(float *pre, const float *c_prev, float *c, float *tc, float *h, int H)
{
	float *gi = pre, *gf = pre + H, *gg = pre + 2 * H, *go = pre + 3 * H;
	int j = 0;
	for (; j + VEC_WIDTH <= H; j += VEC_WIDTH) {
		vf i = VEC_STATIC(vsigmoid)(vload(gi + j)), f = VEC_STATIC(vsigmoid)(vload(gf + j));
		vf g = VEC_STATIC(vtanh)(vload(gg + j)), o = VEC_STATIC(vsigmoid)(vload(go + j));
		vf cn = vmul(i, g);
		if (c_prev)
			cn = vadd(cn, vmul(f, vload(c_prev + j)));
		vf t = VEC_STATIC(vtanh)(cn);
		vstore(gi + j, i); vstore(gf + j, f);
		vstore(gg + j, g); vstore(go + j, o);
		vstore(c + j, cn);
		if (tc)
			vstore(tc + j, t);
		vstore(h + j, vmul(o, t));
	}
	if (j < H) {  /* tail through the scalar code on the shifted views */
		float tmp[4 * VEC_WIDTH];
		int k = H - j;
		for (int q = 0; q < 4; q++)
			memcpy(tmp + q * k, pre + q * H + j, sizeof(float) * k);
		cap_ref_lstm_cell_forward(tmp, c_prev ? c_prev + j : NULL, c + j, tc ? tc + j : NULL, h + j, 1, k);
		for (int q = 0; q < 4; q++)
			memcpy(pre + q * H + j, tmp + q * k, sizeof(float) * k);
	}
}

/* The backward of one row (see ops.h and the plain loop in lib/ops/ref/lstm.c, whose operation
 * order this keeps: the two agree to float rounding). */
VEC_TARGET static void VEC_STATIC(cell_backward)(const float *a, const float *cp, const float *t, const float *dho,
                                                 const float *dhr, float *dcr, float *d, int H)
{
	vf one = vset1(1.0f);
	int j = 0;
	for (; j + VEC_WIDTH <= H; j += VEC_WIDTH) {
		vf i = vload(a + j), f = vload(a + H + j);
		vf g = vload(a + 2 * H + j), o = vload(a + 3 * H + j);
		vf tc = vload(t + j);
		vf dh = vadd(vload(dho + j), vload(dhr + j));
		vf dc = vadd(vload(dcr + j), vmul(vmul(dh, o), vsub(one, vmul(tc, tc))));
		vf cprev = cp ? vload(cp + j) : vzero();
		vstore(d + j, vmul(vmul(vmul(dc, g), i), vsub(one, i)));
		vstore(d + H + j, vmul(vmul(vmul(dc, cprev), f), vsub(one, f)));
		vstore(d + 2 * H + j, vmul(vmul(dc, i), vsub(one, vmul(g, g))));
		vstore(d + 3 * H + j, vmul(vmul(vmul(dh, tc), o), vsub(one, o)));
		vstore(dcr + j, vmul(dc, f));
	}
	if (j < H) {  /* tail through the plain code on gathered copies of the four gate slices */
		float ta[4 * VEC_WIDTH], td[4 * VEC_WIDTH];
		int k = H - j;
		for (int q = 0; q < 4; q++)
			memcpy(ta + q * k, a + q * H + j, sizeof(float) * k);
		cap_ref_lstm_cell_backward(ta, cp ? cp + j : NULL, t + j, dho + j, dhr + j, dcr + j, td, 1, k);
		for (int q = 0; q < 4; q++)
			memcpy(d + q * H + j, td + q * k, sizeof(float) * k);
	}
}

void VEC_FN(lstm_cell_backward)(const float *g, const float *c_prev, const float *tc, const float *dh,
                                const float *dh_rec, float *dc, float *dg, int n, int H)
{
	CAP_PARALLEL_FOR_IF(n >= 8)
	for (int b = 0; b < n; b++) {
		size_t o = (size_t)b * H;
		VEC_STATIC(cell_backward)(g + 4 * o, c_prev ? c_prev + o : NULL, tc + o, dh + o, dh_rec + o, dc + o,
		                          dg + 4 * o, H);
	}
}

void VEC_FN(lstm_cell_forward)(float *g, const float *c_prev, float *c, float *tc, float *h, int n, int H)
{
	CAP_PARALLEL_FOR_IF(n >= 8)
	for (int b = 0; b < n; b++) {
		size_t o = (size_t)b * H;
		VEC_STATIC(cell)(g + 4 * o, c_prev ? c_prev + o : NULL, c + o, tc ? tc + o : NULL, h + o, H);
	}
}

/* The per-element math of the CUDA kernels (lib/ops/cuda/kernels_math.h), compiled here by the C
 * compiler for the host, against the ref ops element by element: the LSTM cell forward and
 * backward, the softmax pieces composed as the kernels compose them, Adam (bitwise, as ops.h
 * demands of every backend), the dropout mask, and the bfloat16 rounding the bf16 paths use.
 * On the host the functions call libm as ref does, so everything is expected bitwise equal; on
 * the device CUDA's expf/tanhf/logf differ by an ulp or two, which tests/cuda/run.sh checks
 * against the tolerances of ops.h on a GPU. */
#include "check.h"
#include "core/rng.h"
#include "ops/host.h"
#include "ops/cuda/kernels_math.h"
#include <stdlib.h>
#include <string.h>

static float *rnd(cap_rng *r, size_t n, float lo, float hi)
{
	float *x = malloc(sizeof(float) * n);
	for (size_t i = 0; i < n; i++)
		x[i] = lo + (hi - lo) * cap_rng_uniform(r);
	return x;
}

static int same_bits(const float *a, const float *b, size_t n, size_t *where)
{
	for (size_t i = 0; i < n; i++)
		if (memcmp(&a[i], &b[i], sizeof(float))) {
			*where = i;
			return 0;
		}
	return 1;
}

static void lstm_forward(cap_rng *r, int n, int H, int with_prev)
{
	size_t nh = (size_t)n * H;
	float *g = rnd(r, 4 * nh, -9, 9), *cp = rnd(r, nh, -3, 3);
	float *g2 = malloc(sizeof(float) * 4 * nh);
	memcpy(g2, g, sizeof(float) * 4 * nh);
	float *c = malloc(sizeof(float) * nh), *tc = malloc(sizeof(float) * nh), *h = malloc(sizeof(float) * nh);
	float *c2 = malloc(sizeof(float) * nh), *tc2 = malloc(sizeof(float) * nh), *h2 = malloc(sizeof(float) * nh);
	cap_ref_lstm_cell_forward(g, with_prev ? cp : NULL, c, tc, h, n, H);
	for (int b = 0; b < n; b++)   /* as lstm_fwd_kernel indexes it */
		for (int j = 0; j < H; j++) {
			size_t e = (size_t)b * H + j;
			float *gi = g2 + 4 * (size_t)b * H + j;
			cap_lstm_fwd_elem(gi, gi + H, gi + 2 * H, gi + 3 * H, with_prev ? cp[e] : 0.0f, with_prev,
			                  &c2[e], &tc2[e], &h2[e]);
		}
	size_t at = 0;
	int ok = same_bits(g, g2, 4 * nh, &at) && same_bits(c, c2, nh, &at) && same_bits(tc, tc2, nh, &at) &&
	         same_bits(h, h2, nh, &at);
	if (!ok)
		printf("# first difference at element %zu\n", at);
	CHECK(ok, "lstm forward elements %dx%d%s: bitwise ref", n, H, with_prev ? " with c_prev" : "");
	free(g); free(g2); free(cp); free(c); free(tc); free(h); free(c2); free(tc2); free(h2);
}

static void lstm_backward(cap_rng *r, int n, int H, int with_prev)
{
	size_t nh = (size_t)n * H;
	float *g = rnd(r, 4 * nh, 0.01f, 0.99f), *cp = rnd(r, nh, -3, 3), *tc = rnd(r, nh, -0.99f, 0.99f);
	float *dh = rnd(r, nh, -1, 1), *dhr = rnd(r, nh, -1, 1), *dc = rnd(r, nh, -1, 1);
	float *dc2 = malloc(sizeof(float) * nh), *dg = malloc(sizeof(float) * 4 * nh), *dg2 = malloc(sizeof(float) * 4 * nh);
	memcpy(dc2, dc, sizeof(float) * nh);
	cap_ref_lstm_cell_backward(g, with_prev ? cp : NULL, tc, dh, dhr, dc, dg, n, H);
	for (int b = 0; b < n; b++)
		for (int j = 0; j < H; j++) {
			size_t e = (size_t)b * H + j;
			const float *a = g + 4 * (size_t)b * H + j;
			float *d = dg2 + 4 * (size_t)b * H + j;
			cap_lstm_bwd_elem(a[0], a[H], a[2 * H], a[3 * H], tc[e], with_prev ? cp[e] : 0.0f, dh[e], dhr[e],
			                  &dc2[e], d, d + H, d + 2 * H, d + 3 * H);
		}
	size_t at = 0;
	int ok = same_bits(dg, dg2, 4 * nh, &at) && same_bits(dc, dc2, nh, &at);
	CHECK(ok, "lstm backward elements %dx%d%s: bitwise ref", n, H, with_prev ? " with c_prev" : "");
	free(g); free(cp); free(tc); free(dh); free(dhr); free(dc); free(dc2); free(dg); free(dg2);
}

/* The kernels' composition, sequentially (the device sums in another order; here the order is
 * the ref's so that the pieces themselves are what is compared). */
static void log_softmax(cap_rng *r, int rows, int n)
{
	float *x = rnd(r, (size_t)rows * n, -12, 12), *y = malloc(sizeof(float) * rows * n);
	memcpy(y, x, sizeof(float) * rows * n);
	cap_ref_log_softmax_rows(x, rows, n);
	for (int q = 0; q < rows; q++) {
		float *v = y + (size_t)q * n, mx = -INFINITY;
		for (int j = 0; j < n; j++)
			mx = fmaxf(mx, v[j]);
		double s = 0;
		for (int j = 0; j < n; j++)
			s += cap_lsm_term(v[j], mx);
		float lse = cap_lsm_lse(mx, s);
		for (int j = 0; j < n; j++)
			v[j] -= lse;
	}
	size_t at;
	CHECK(same_bits(x, y, (size_t)rows * n, &at), "log_softmax pieces %dx%d: bitwise ref", rows, n);
	free(x); free(y);
}

static void xent(cap_rng *r, int rows, int V, float grad_scale)
{
	float *x = rnd(r, (size_t)rows * V, -12, 12), *y = malloc(sizeof(float) * rows * V);
	memcpy(y, x, sizeof(float) * rows * V);
	uint32_t *t = malloc(sizeof(uint32_t) * rows);
	for (int q = 0; q < rows; q++)
		t[q] = (uint32_t)cap_rng_below(r, V);
	double *l = malloc(sizeof(double) * rows), *l2 = malloc(sizeof(double) * rows);
	cap_ref_softmax_xent_rows(x, t, rows, V, grad_scale, l);
	for (int q = 0; q < rows; q++) {
		float *v = y + (size_t)q * V, mx = -INFINITY, s = 0;
		for (int j = 0; j < V; j++)
			mx = fmaxf(mx, v[j]);
		float xt = v[t[q]] - mx;
		for (int j = 0; j < V; j++) {
			v[j] = cap_xent_exp(v[j], mx);
			s += v[j];
		}
		if (grad_scale > 0) {
			float k = cap_xent_factor(grad_scale, s);
			for (int j = 0; j < V; j++)
				v[j] *= k;
			v[t[q]] -= grad_scale;
		}
		l2[q] = cap_xent_loss(s, xt);
	}
	size_t at;
	int ok = !memcmp(l, l2, sizeof(double) * rows) && (grad_scale <= 0 || same_bits(x, y, (size_t)rows * V, &at));
	CHECK(ok, "softmax cross-entropy pieces %dx%d%s: losses%s bitwise ref", rows, V,
	      grad_scale > 0 ? " with gradient" : "", grad_scale > 0 ? " and gradient" : "");
	free(x); free(y); free(t); free(l); free(l2);
}

static void adam(cap_rng *r, size_t n, int steps)
{
	float *p = rnd(r, n, -1, 1), *m = calloc(n, sizeof(float)), *v = calloc(n, sizeof(float));
	float *p2 = malloc(sizeof(float) * n), *m2 = calloc(n, sizeof(float)), *v2 = calloc(n, sizeof(float));
	memcpy(p2, p, sizeof(float) * n);
	for (int s = 1; s <= steps; s++) {
		float *g = rnd(r, n, -1, 1);
		for (size_t i = 0; i < n; i += 3)
			g[i] *= 1e-4f;
		double bc1 = 1 - pow(0.9, s), bc2 = 1 - pow(0.999, s);
		cap_adam_consts k = { 0.9f, 0.999f, (float)(1 - 0.9), (float)(1 - 0.999), (float)(1e-3 / bc1),
		                      (float)sqrt(bc2), 1e-8f };
		cap_ref_adam_step(p, g, m, v, n, &k);
		for (size_t i = 0; i < n; i++)
			cap_adam_elem(&p2[i], g[i], &m2[i], &v2[i], k.b1, k.b2, k.one_b1, k.one_b2, k.step_size,
			              k.bc2_sqrt, k.eps);
		free(g);
	}
	size_t at;
	CHECK(same_bits(p, p2, n, &at) && same_bits(m, m2, n, &at) && same_bits(v, v2, n, &at),
	      "adam element %zu x %d steps: parameters and moments bitwise ref", n, steps);
	/* and the check can fail: one step with another eps differs */
	cap_adam_consts k = { 0.9f, 0.999f, 0.1f, 0.001f, 1e-3f, 0.03f, 1e-6f };
	float q = p2[0], mq = m2[0], vq = 0;
	cap_adam_elem(&q, 1e-6f, &mq, &vq, k.b1, k.b2, k.one_b1, k.one_b2, k.step_size, k.bc2_sqrt, 1e-8f);
	float q2 = p2[0], mq2 = m2[0], vq2 = 0;
	cap_adam_elem(&q2, 1e-6f, &mq2, &vq2, k.b1, k.b2, k.one_b1, k.one_b2, k.step_size, k.bc2_sqrt, k.eps);
	CHECK(q != q2, "adam element: another eps gives another parameter (%.9g vs %.9g)", q, q2);
	free(p); free(m); free(v); free(p2); free(m2); free(v2);
}

static void dropout(cap_rng *r, size_t n, float p)
{
	float *h = rnd(r, n, -1, 1), *mask = malloc(sizeof(float) * n), *hd = malloc(sizeof(float) * n);
	uint64_t seed = cap_rng_u64(r);
	cap_ref_dropout_forward(h, mask, hd, n, p, seed);
	float scale = 1.0f / (1.0f - p);
	size_t bad = 0, kept = 0;
	for (size_t i = 0; i < n; i++) {
		float m = cap_dropout_mask(seed, i, p, scale), y = h[i] * m;
		bad += memcmp(&m, &mask[i], sizeof m) != 0 || memcmp(&y, &hd[i], sizeof y) != 0;
		kept += m != 0;
	}
	CHECK(bad == 0, "dropout mask %zu p=%.2f: bitwise ref (%zu differ)", n, p, bad);
	CHECK(fabs((double)kept / n - (1 - p)) < 4 * sqrt(p * (1 - p) / n), "dropout mask keeps %.4f of elements for p=%.2f",
	      (double)kept / n, p);
	free(h); free(mask); free(hd);
}

/* bf16 rounding: round to nearest, ties to even, NaN and infinities kept; every float's error
 * within half a bf16 ulp. */
static void bf16(cap_rng *r)
{
	struct { uint32_t in; uint16_t out; } cases[] = {
		{ 0x3f800000u, 0x3f80 },          /* 1 */
		{ 0x3f808000u, 0x3f80 },          /* 1 + 2^-8: a tie, to even (down) */
		{ 0x3f818000u, 0x3f82 },          /* 1 + 3 2^-8: a tie, to even (up) */
		{ 0x3f808001u, 0x3f81 },          /* just above the tie */
		{ 0xbf80ffffu, 0xbf81 },
		{ 0x7f7fffffu, 0x7f80 },          /* FLT_MAX rounds to +inf */
		{ 0x7f800000u, 0x7f80 },          /* +inf */
		{ 0xff800000u, 0xff80 },          /* -inf */
		{ 0x00000001u, 0x0000 },          /* the smallest subnormal rounds to 0 */
		{ 0x80000000u, 0x8000 },          /* -0 */
	};
	int ok = 1;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		union { uint32_t u; float f; } c = { cases[i].in };
		uint16_t b = cap_bf16_bits(c.f);
		if (b != cases[i].out) {
			printf("# bf16(0x%08x) = 0x%04x, want 0x%04x\n", cases[i].in, b, cases[i].out);
			ok = 0;
		}
	}
	union { uint32_t u; float f; } nan = { 0x7fc00001u }, snan = { 0x7f800001u };
	ok &= isnan(cap_bf16_float(cap_bf16_bits(nan.f))) && isnan(cap_bf16_float(cap_bf16_bits(snan.f)));
	CHECK(ok, "bf16 rounding: ties to even, overflow to infinity, NaN kept");
	int within = 1;
	for (int i = 0; i < 100000; i++) {
		float x = ldexpf(cap_rng_uniform(r) * 2 - 1, (int)cap_rng_below(r, 200) - 100);
		float y = cap_bf16_float(cap_bf16_bits(x));
		int e;
		frexpf(x, &e);
		if (x != 0 && fabsf(y - x) > ldexpf(1.0f, e - 9))   /* half of 2^(e-1-7) */
			within = 0;
	}
	CHECK(within, "bf16 rounding: within half a bf16 ulp of 100000 random floats");
}

int main(void)
{
	cap_rng r;
	cap_rng_seed(&r, 42);
	lstm_forward(&r, 64, 512, 1);
	lstm_forward(&r, 7, 37, 0);
	lstm_backward(&r, 64, 512, 1);
	lstm_backward(&r, 5, 37, 0);
	log_softmax(&r, 16, 2539);
	xent(&r, 32, 2539, 1.0f / 32);
	xent(&r, 9, 37, 0);
	adam(&r, 100003, 4);
	dropout(&r, 100003, 0.3f);
	dropout(&r, 1001, 0.5f);
	bf16(&r);
	return check_exit();
}

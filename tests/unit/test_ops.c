/* Every op of lib/ops/ops.h on every available backend against ref, in the manner of ggml's
 * test-backend-ops: a table of cases (op, shape, seed, tolerance from ops.h), one line per case
 * and backend, "skip" for a backend this build or machine lacks. A deliberately perturbed
 * backend, built here from the cpu table, must fail the cases of the ops it perturbs: that is
 * what shows the comparison can fail. The ref GEMM itself is checked against a double
 * precision oracle. */
#include "check.h"
#include "core/cpu.h"
#include "core/error.h"
#include "core/rng.h"
#include "encoder/resnet.h"
#include "ops/host.h"
#include "ops/cpu/cpu.h"
#include "ops/ops.h"
#include <stdlib.h>
#include <string.h>

/* ---- results: every case writes its outputs, as doubles, into one vector ---- */
typedef struct vec { double *v; size_t n, cap; } vec;

static void put(vec *o, double x)
{
	if (o->n == o->cap) {
		o->cap = o->cap ? 2 * o->cap : 1024;
		o->v = realloc(o->v, o->cap * sizeof *o->v);
	}
	o->v[o->n++] = x;
}

static void put_f(vec *o, const float *x, size_t n) { for (size_t i = 0; i < n; i++) put(o, x[i]); }

/* ---- inputs: drawn from the case's seed on the host, the same for every backend ---- */
static float *rnd(cap_rng *r, size_t n, float lo, float hi)
{
	float *x = malloc(sizeof(float) * (n ? n : 1));
	for (size_t i = 0; i < n; i++)
		x[i] = lo + (hi - lo) * cap_rng_uniform(r);
	return x;
}

static void *up(const cap_ops *o, const void *h, size_t bytes)
{
	void *d = o->alloc(bytes ? bytes : 1);
	if (!d) { printf("not ok - %s: alloc of %zu bytes: %s\n", o->name, bytes, cap_errmsg()); exit(1); }
	if (bytes)
		o->upload(d, h, bytes);
	return d;
}

static void down_f(const cap_ops *o, vec *out, const float *d, size_t n)
{
	float *h = malloc(sizeof(float) * (n ? n : 1));
	o->download(h, d, sizeof(float) * n);
	put_f(out, h, n);
	free(h);
}

#define F sizeof(float)

/* ---- the cases: sh[] holds the shape, documented per case ---- */

/* gemm: M, N, K, ta, tb, beta (0 or 1); leading dimensions padded */
static void c_gemm(const cap_ops *o, const int *sh, cap_rng *r, vec *out)
{
	int M = sh[0], N = sh[1], K = sh[2], ta = sh[3], tb = sh[4];
	float beta = sh[5] ? 0.5f : 0.0f;
	int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
	size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
	float *A = rnd(r, na, -1, 1), *B = rnd(r, nb, -1, 1), *C = rnd(r, nc, -1, 1);
	float *dA = up(o, A, na * F), *dB = up(o, B, nb * F), *dC = up(o, C, nc * F);
	o->gemm(ta, tb, M, N, K, 0.75f, dA, lda, dB, ldb, beta, dC, ldc);
	down_f(o, out, dC, nc);   /* the padding columns too: they must be left alone */
	o->free(dA); o->free(dB); o->free(dC);
	free(A); free(B); free(C);
}

/* matmul: n, rows, cols, trans, beta, flags */
static void c_matmul(const cap_ops *o, const int *sh, cap_rng *r, vec *out)
{
	int n = sh[0], rows = sh[1], cols = sh[2], trans = sh[3];
	int xin = trans ? cols : rows, yw = trans ? rows : cols;
	float *W = rnd(r, (size_t)rows * cols, -1, 1), *x = rnd(r, (size_t)n * xin, -1, 1);
	float *y = rnd(r, (size_t)n * yw, -1, 1);
	float *dW = up(o, W, (size_t)rows * cols * F), *dx = up(o, x, (size_t)n * xin * F);
	float *dy = up(o, y, (size_t)n * yw * F);
	cap_weight *w = o->weight_new(dW, rows, cols, sh[5]);
	o->matmul(dx, n, w, trans, (float)sh[4], dy);
	down_f(o, out, dy, (size_t)n * yw);
	/* the weight changed: weight_update must make matmul see it */
	for (int i = 0; i < rows * cols; i++)
		W[i] = -W[i] * 0.5f;
	o->upload(dW, W, (size_t)rows * cols * F);
	o->weight_update(w);
	o->matmul(dx, n, w, trans, 0, dy);
	down_f(o, out, dy, (size_t)n * yw);
	o->weight_free(w);
	o->free(dW); o->free(dx); o->free(dy);
	free(W); free(x); free(y);
}

/* matmul_bias: n, rows, cols, with b2. y starts as NaN: the op must write every element without
 * reading it. Then the weight changes, as for matmul. */
static void c_matmul_bias(const cap_ops *o, const int *sh, cap_rng *r, vec *out)
{
	int n = sh[0], rows = sh[1], cols = sh[2];
	float *W = rnd(r, (size_t)rows * cols, -1, 1), *x = rnd(r, (size_t)n * cols, -1, 1);
	float *b1 = rnd(r, rows, -1, 1), *b2 = rnd(r, rows, -1, 1), *y = malloc((size_t)n * rows * F);
	for (size_t i = 0; i < (size_t)n * rows; i++)
		y[i] = NAN;
	float *dW = up(o, W, (size_t)rows * cols * F), *dx = up(o, x, (size_t)n * cols * F);
	float *db1 = up(o, b1, rows * F), *db2 = up(o, b2, rows * F), *dy = up(o, y, (size_t)n * rows * F);
	cap_weight *w = o->weight_new(dW, rows, cols, 0);
	o->matmul_bias(dx, n, w, db1, sh[3] ? db2 : NULL, dy);
	down_f(o, out, dy, (size_t)n * rows);
	for (int i = 0; i < rows * cols; i++)
		W[i] = -W[i] * 0.5f;
	o->upload(dW, W, (size_t)rows * cols * F);
	o->weight_update(w);
	o->matmul_bias(dx, n, w, db2, sh[3] ? db1 : NULL, dy);
	down_f(o, out, dy, (size_t)n * rows);
	o->weight_free(w);
	o->free(dW); o->free(dx); o->free(db1); o->free(db2); o->free(dy);
	free(W); free(x); free(b1); free(b2); free(y);
}

/* bias_rows: rows, n, with b2 */
static void c_bias_rows(const cap_ops *o, const int *sh, cap_rng *r, vec *out)
{
	int rows = sh[0], n = sh[1];
	float *b1 = rnd(r, n, -1, 1), *b2 = rnd(r, n, -1, 1);
	float *d1 = up(o, b1, n * F), *d2 = up(o, b2, n * F), *y = o->alloc((size_t)rows * n * F);
	o->bias_rows(y, d1, sh[2] ? d2 : NULL, rows, n);
	down_f(o, out, y, (size_t)rows * n);
	o->free(d1); o->free(d2); o->free(y);
	free(b1); free(b2);
}

/* col_sums: rows, n */
static void c_col_sums(const cap_ops *o, const int *sh, cap_rng *r, vec *out)
{
	int rows = sh[0], n = sh[1];
	float *x = rnd(r, (size_t)rows * n, -1, 1), *dx = up(o, x, (size_t)rows * n * F);
	float *d = o->alloc(n * F);
	o->col_sums(dx, rows, n, d);
	down_f(o, out, d, n);
	o->free(dx); o->free(d);
	free(x);
}

/* row_gather and embed_gather: n, width, table rows */
static void c_gather(const cap_ops *o, const int *sh, cap_rng *r, vec *out)
{
	int n = sh[0], wdt = sh[1], rows = sh[2];
	float *t = rnd(r, (size_t)rows * wdt, -1, 1);
	int32_t *idx = malloc(sizeof(int32_t) * n);
	uint32_t *ids = malloc(sizeof(uint32_t) * n);
	for (int i = 0; i < n; i++) {
		idx[i] = (int32_t)cap_rng_below(r, rows);
		ids[i] = (uint32_t)cap_rng_below(r, rows);
	}
	float *dt = up(o, t, (size_t)rows * wdt * F), *d = o->alloc((size_t)n * wdt * F);
	int32_t *didx = up(o, idx, sizeof(int32_t) * n);
	uint32_t *dids = up(o, ids, sizeof(uint32_t) * n);
	o->row_gather(d, dt, didx, n, wdt);
	down_f(o, out, d, (size_t)n * wdt);
	o->embed_gather(d, dt, dids, n, wdt);
	down_f(o, out, d, (size_t)n * wdt);
	o->free(dt); o->free(d); o->free(didx); o->free(dids);
	free(t); free(idx); free(ids);
}

/* embed_scatter_add: n, E, V (ids repeat when n > V) */
static void c_scatter(const cap_ops *o, const int *sh, cap_rng *r, vec *out)
{
	int n = sh[0], E = sh[1], V = sh[2];
	float *g = rnd(r, (size_t)V * E, -1, 1), *d = rnd(r, (size_t)n * E, -1, 1);
	uint32_t *ids = malloc(sizeof(uint32_t) * n);
	for (int i = 0; i < n; i++)
		ids[i] = (uint32_t)cap_rng_below(r, V);
	float *dg = up(o, g, (size_t)V * E * F), *dd = up(o, d, (size_t)n * E * F);
	uint32_t *dids = up(o, ids, sizeof(uint32_t) * n);
	o->embed_scatter_add(dg, dd, dids, n, E);
	down_f(o, out, dg, (size_t)V * E);
	o->free(dg); o->free(dd); o->free(dids);
	free(g); free(d); free(ids);
}

/* mul, scale, sum_squares: n */
static void c_elementwise(const cap_ops *o, const int *sh, cap_rng *r, vec *out)
{
	size_t n = (size_t)sh[0];
	float *x = rnd(r, n, -2, 2), *y = rnd(r, n, -2, 2);
	float *dx = up(o, x, n * F), *dy = up(o, y, n * F);
	o->mul(dx, dy, n);
	down_f(o, out, dx, n);
	o->scale(dx, n, -0.375f);
	down_f(o, out, dx, n);
	put(out, o->sum_squares(dx, n));
	o->free(dx); o->free(dy);
	free(x); free(y);
}

/* lstm_cell_forward: n, H, with c_prev, with tc */
static void c_lstm_fwd(const cap_ops *o, const int *sh, cap_rng *r, vec *out)
{
	int n = sh[0], H = sh[1];
	size_t nh = (size_t)n * H;
	float *g = rnd(r, 4 * nh, -6, 6), *cp = rnd(r, nh, -3, 3);
	float *dg = up(o, g, 4 * nh * F), *dcp = up(o, cp, nh * F);
	float *c = o->alloc(nh * F), *tc = o->alloc(nh * F), *h = o->alloc(nh * F);
	o->lstm_cell_forward(dg, sh[2] ? dcp : NULL, c, sh[3] ? tc : NULL, h, n, H);
	down_f(o, out, dg, 4 * nh);
	down_f(o, out, c, nh);
	if (sh[3])
		down_f(o, out, tc, nh);
	down_f(o, out, h, nh);
	o->free(dg); o->free(dcp); o->free(c); o->free(tc); o->free(h);
	free(g); free(cp);
}

/* lstm_cell_backward: n, H, with c_prev */
static void c_lstm_bwd(const cap_ops *o, const int *sh, cap_rng *r, vec *out)
{
	int n = sh[0], H = sh[1];
	size_t nh = (size_t)n * H;
	/* activations as the forward leaves them: gates in (0, 1) or (-1, 1), tc in (-1, 1) */
	float *g = rnd(r, 4 * nh, 0.01f, 0.99f), *cp = rnd(r, nh, -3, 3), *tc = rnd(r, nh, -0.99f, 0.99f);
	float *dh = rnd(r, nh, -1, 1), *dhr = rnd(r, nh, -1, 1), *dc = rnd(r, nh, -1, 1);
	float *a = up(o, g, 4 * nh * F), *b = up(o, cp, nh * F), *t = up(o, tc, nh * F);
	float *x = up(o, dh, nh * F), *y = up(o, dhr, nh * F), *z = up(o, dc, nh * F);
	float *dg = o->alloc(4 * nh * F);
	o->lstm_cell_backward(a, sh[2] ? b : NULL, t, x, y, z, dg, n, H);
	down_f(o, out, dg, 4 * nh);
	down_f(o, out, z, nh);
	o->free(a); o->free(b); o->free(t); o->free(x); o->free(y); o->free(z); o->free(dg);
	free(g); free(cp); free(tc); free(dh); free(dhr); free(dc);
}

/* log_softmax_rows: rows, n */
static void c_log_softmax(const cap_ops *o, const int *sh, cap_rng *r, vec *out)
{
	size_t nn = (size_t)sh[0] * sh[1];
	float *x = rnd(r, nn, -8, 8), *dx = up(o, x, nn * F);
	o->log_softmax_rows(dx, sh[0], sh[1]);
	down_f(o, out, dx, nn);
	o->free(dx);
	free(x);
}

/* row_topk: rows, n, k, coarse (values on a grid of 8 steps, so that most rows hold ties, with
 * NaN and -inf scattered in); columns 0 and 1 excluded as a search excludes pad and start */
static void c_topk(const cap_ops *o, const int *sh, cap_rng *r, vec *out)
{
	int rows = sh[0], n = sh[1], k = sh[2];
	size_t nn = (size_t)rows * n;
	float *x = rnd(r, nn, -8, 8);
	if (sh[3])
		for (size_t i = 0; i < nn; i++) {
			x[i] = floorf(x[i]);
			uint64_t u = cap_rng_below(r, 16);
			if (u == 0) x[i] = NAN;
			if (u == 1) x[i] = -INFINITY;
		}
	float *dx = up(o, x, nn * F), *dv = o->alloc((size_t)rows * k * F), *v = malloc((size_t)rows * k * F);
	int32_t *di = o->alloc((size_t)rows * k * sizeof(int32_t)), *ix = malloc((size_t)rows * k * sizeof(int32_t));
	o->row_topk(dx, rows, n, k, 0, 1, dv, di);
	o->download(v, dv, (size_t)rows * k * F);
	o->download(ix, di, (size_t)rows * k * sizeof(int32_t));
	for (size_t i = 0; i < (size_t)rows * k; i++) {
		put(out, isinf(v[i]) ? -1e30 : v[i]);   /* -inf would make the error NaN */
		put(out, ix[i]);
	}
	o->free(dx); o->free(dv); o->free(di);
	free(x); free(v); free(ix);
}

/* softmax_xent_rows: n, V, with gradient, every sh[3]-th row padding (0: none) */
static void c_xent(const cap_ops *o, const int *sh, cap_rng *r, vec *out)
{
	int n = sh[0], V = sh[1];
	size_t nn = (size_t)n * V;
	float *x = rnd(r, nn, -8, 8);
	uint32_t *t = malloc(sizeof(uint32_t) * n);
	for (int i = 0; i < n; i++) {
		t[i] = (uint32_t)cap_rng_below(r, V);
		if (sh[3] && i % sh[3] == sh[3] - 1)
			t[i] = CAP_TARGET_NONE;
	}
	float *dx = up(o, x, nn * F);
	uint32_t *dt = up(o, t, sizeof(uint32_t) * n);
	double *dl = o->alloc(sizeof(double) * n), *l = malloc(sizeof(double) * n);
	o->softmax_xent_rows(dx, dt, n, V, sh[2] ? 1.0f / n : 0, dl);
	o->download(l, dl, sizeof(double) * n);
	for (int i = 0; i < n; i++)
		put(out, l[i]);
	if (sh[2])
		down_f(o, out, dx, nn);
	o->free(dx); o->free(dt); o->free(dl);
	free(x); free(t); free(l);
}

/* dropout_forward: n, p in percent */
static void c_dropout(const cap_ops *o, const int *sh, cap_rng *r, vec *out)
{
	size_t n = (size_t)sh[0];
	float *h = rnd(r, n, -1, 1), *dh = up(o, h, n * F);
	float *mask = o->alloc(n * F), *hd = o->alloc(n * F);
	o->dropout_forward(dh, mask, hd, n, sh[1] / 100.0f, cap_rng_u64(r));
	down_f(o, out, mask, n);
	down_f(o, out, hd, n);
	o->free(dh); o->free(mask); o->free(hd);
	free(h);
}

/* adam_step: n, steps */
static void c_adam(const cap_ops *o, const int *sh, cap_rng *r, vec *out)
{
	size_t n = (size_t)sh[0];
	float *p = rnd(r, n, -1, 1), *zero = calloc(n, F);
	float *dp = up(o, p, n * F), *dm = up(o, zero, n * F), *dv = up(o, zero, n * F);
	float *dg = o->alloc(n * F);
	for (int s = 1; s <= sh[1]; s++) {
		float *g = rnd(r, n, -1, 1);
		for (size_t i = 0; i < n; i += 3)
			g[i] *= 1e-4f;   /* tiny gradients: v near 0 tests eps */
		o->upload(dg, g, n * F);
		double bc1 = 1 - pow(0.9, s), bc2 = 1 - pow(0.999, s);
		cap_adam_consts k = { 0.9f, 0.999f, (float)(1 - 0.9), (float)(1 - 0.999),
		                      (float)(1e-3 / bc1), (float)sqrt(bc2), 1e-8f };
		o->adam_step(dp, dg, dm, dv, n, &k);
		free(g);
	}
	down_f(o, out, dp, n);
	down_f(o, out, dm, n);
	down_f(o, out, dv, n);
	o->free(dp); o->free(dm); o->free(dv); o->free(dg);
	free(p); free(zero);
}

/* weight_adam: rows, cols, n, products, used. The weight is first used in no direction (used 0),
 * in x W^T only (1) or in both (2), so that the cpu backend holds those packings to refresh;
 * then 3 steps. products 0: the parameters and moments after them (exact); 1: both products
 * after every step, which must see the new parameters. */
static void c_weight_adam(const cap_ops *o, const int *sh, cap_rng *r, vec *out)
{
	int rows = sh[0], cols = sh[1], n = sh[2];
	size_t nw = (size_t)rows * cols, nx = (size_t)n * (rows > cols ? rows : cols);
	float *W = rnd(r, nw, -1, 1), *zero = calloc(nw, F), *x = rnd(r, nx, -1, 1);
	float *dW = up(o, W, nw * F), *dm = up(o, zero, nw * F), *dv = up(o, zero, nw * F);
	float *dg = o->alloc(nw * F), *dx = up(o, x, nx * F), *dy = o->alloc(nx * F);
	cap_weight *w = o->weight_new(dW, rows, cols, 0);
	if (sh[4] >= 1)
		o->matmul(dx, n, w, 1, 0, dy);
	if (sh[4] >= 2)
		o->matmul(dx, n, w, 0, 0, dy);
	for (int s = 1; s <= 3; s++) {
		float *g = rnd(r, nw, -1, 1);
		for (size_t i = 0; i < nw; i += 3)
			g[i] *= 1e-4f;
		o->upload(dg, g, nw * F);
		double bc1 = 1 - pow(0.9, s), bc2 = 1 - pow(0.999, s);
		cap_adam_consts k = { 0.9f, 0.999f, (float)(1 - 0.9), (float)(1 - 0.999),
		                      (float)(1e-3 / bc1), (float)sqrt(bc2), 1e-8f };
		o->weight_adam(w, dg, dm, dv, &k);
		if (sh[3]) {
			o->matmul(dx, n, w, 1, 0, dy);
			down_f(o, out, dy, (size_t)n * rows);
			o->matmul(dx, n, w, 0, 0, dy);
			down_f(o, out, dy, (size_t)n * cols);
		}
		free(g);
	}
	if (!sh[3]) {
		down_f(o, out, dW, nw);
		down_f(o, out, dm, nw);
		down_f(o, out, dv, nw);
	}
	o->weight_free(w);
	o->free(dW); o->free(dm); o->free(dv); o->free(dg); o->free(dx); o->free(dy);
	free(W); free(zero); free(x);
}

/* freeze: n, rows, k. x (n, k) frozen, then read by a weight's product, by A^T B, and in part
 * (rows from 3 on) by a product; thawed, changed and frozen again, the products must see the new
 * values (the cpu backend keeps a rounding of a frozen operand in bf16). */
static void c_freeze(const cap_ops *o, const int *sh, cap_rng *r, vec *out)
{
	int n = sh[0], rows = sh[1], k = sh[2];
	size_t nx = (size_t)n * k;
	float *x = rnd(r, nx, -1, 1), *W = rnd(r, (size_t)rows * k, -1, 1), *B = rnd(r, (size_t)n * rows, -1, 1);
	float *dx = up(o, x, nx * F), *dW = up(o, W, (size_t)rows * k * F), *dB = up(o, B, (size_t)n * rows * F);
	float *dy = o->alloc((size_t)n * rows * F), *dC = o->alloc((size_t)k * rows * F);
	cap_weight *w = o->weight_new(dW, rows, k, 0);
	for (int round = 0; round < 2; round++) {
		o->freeze(dx, nx);
		o->matmul(dx, n, w, 1, 0, dy);                              /* (n, rows) = x W^T */
		down_f(o, out, dy, (size_t)n * rows);
		o->gemm(1, 0, k, rows, n, 1, dx, k, dB, rows, 0, dC, rows);  /* (k, rows) = x^T B */
		down_f(o, out, dC, (size_t)k * rows);
		o->matmul(dx + (size_t)3 * k, n - 3, w, 1, 0, dy);          /* rows 3.. of x */
		down_f(o, out, dy, (size_t)(n - 3) * rows);
		o->thaw(dx);
		for (size_t i = 0; i < nx; i++)
			x[i] = -0.5f * x[i] + 0.25f;
		o->upload(dx, x, nx * F);
	}
	o->weight_free(w);
	o->free(dx); o->free(dW); o->free(dB); o->free(dy); o->free(dC);
	free(x); free(W); free(B);
}

/* Random weights and biases for every conv: torchvision's init zeroes the last BatchNorm of
 * each block, which would leave the residual branches out of the comparison. */
static void fill_conv(cap_conv *c, cap_rng *r)
{
	if (!c->k)
		return;
	size_t n = (size_t)c->cout * c->cin * c->k * c->k;
	float sd = 1.2f / sqrtf((float)c->cin * c->k * c->k);
	for (size_t i = 0; i < n; i++)
		c->w[i] = (2 * cap_rng_uniform(r) - 1) * sd;
	for (int i = 0; i < c->cout; i++)
		c->b[i] = 0.1f * (2 * cap_rng_uniform(r) - 1);
}

/* encoder: depth, batch, n images, h, w, flags (random net of the seed) */
static void c_encoder(const cap_ops *o, const int *sh, cap_rng *r, vec *out)
{
	cap_resnet *net = cap_resnet_random(sh[0], cap_rng_u64(r));
	fill_conv(&net->stem, r);
	for (int i = 0; i < net->nblocks; i++) {
		fill_conv(&net->blocks[i].c1, r);
		fill_conv(&net->blocks[i].c2, r);
		fill_conv(&net->blocks[i].c3, r);
		fill_conv(&net->blocks[i].down, r);
	}
	int n = sh[2], h = sh[3], w = sh[4];
	size_t npix = (size_t)n * 3 * h * w;
	float *in = rnd(r, npix, -2, 2), *f = malloc(sizeof(float) * n * net->dim);
	cap_encoder *e = o->encoder_new(net, sh[1], h, w, sh[5]);
	if (!e || o->encoder_run(e, in, n, f) < 0) {
		printf("# %s encoder: %s\n", o->name, cap_errmsg());
		put(out, NAN);
	} else {
		put_f(out, f, (size_t)n * net->dim);
	}
	if (e)
		o->encoder_free(e);
	cap_resnet_free(net);
	free(in); free(f);
}

typedef struct tcase {
	const char *op;
	void (*run)(const cap_ops *, const int *, cap_rng *, vec *);
	int sh[6];
	double tol;          /* nmse bound of ops.h; 0: exact */
	const char *shape;   /* for the report */
} tcase;

static const tcase cases[] = {
	{ "gemm", c_gemm, { 1, 1, 1, 0, 0, 0 }, 1e-10, "M1 N1 K1" },
	{ "gemm", c_gemm, { 17, 33, 9, 0, 0, 1 }, 1e-10, "M17 N33 K9 beta" },
	{ "gemm", c_gemm, { 17, 33, 9, 1, 0, 0 }, 1e-10, "M17 N33 K9 A^T" },
	{ "gemm", c_gemm, { 17, 33, 9, 0, 1, 1 }, 1e-10, "M17 N33 K9 B^T beta" },
	{ "gemm", c_gemm, { 130, 70, 300, 1, 1, 0 }, 1e-10, "M130 N70 K300 A^T B^T" },
	/* K past a multiple of 64 (bf16 on cpu cuts it in two products) with each operand plain */
	{ "gemm", c_gemm, { 70, 45, 130, 0, 0, 1 }, 1e-10, "M70 N45 K130 beta" },
	{ "gemm", c_gemm, { 70, 45, 130, 1, 0, 0 }, 1e-10, "M70 N45 K130 A^T" },
	{ "gemm", c_gemm, { 70, 45, 130, 0, 1, 1 }, 1e-10, "M70 N45 K130 B^T beta" },
	/* A^T B, the weight gradients (cpu packs B per part of K): K cut in two, with beta */
	{ "gemm", c_gemm, { 300, 200, 150, 1, 0, 1 }, 1e-10, "M300 N200 K150 A^T beta" },
	{ "gemm", c_gemm, { 64, 2048, 512, 0, 1, 1 }, 1e-10, "M64 N2048 K512 B^T beta" },
	/* a weight gradient's kind: A^T over many rows of tokens (bf16 transposes A in 16 x 16 tiles:
	 * 2050 and 333 leave edges both ways; K is cut at 320) */
	{ "gemm", c_gemm, { 2050, 96, 333, 1, 0, 1 }, 1e-10, "M2050 N96 K333 A^T beta" },
	{ "gemm", c_gemm, { 5, 7, 0, 0, 0, 1 }, 1e-10, "K0 beta" },
	{ "matmul", c_matmul, { 64, 2048, 512, 1, 1, CAP_WEIGHT_RECURRENT }, 1e-10, "n64 W2048x512 xW^T recurrent" },
	{ "matmul", c_matmul, { 37, 2048, 512, 0, 0, CAP_WEIGHT_RECURRENT }, 1e-10, "n37 W2048x512 xW recurrent" },
	{ "matmul", c_matmul, { 100, 2539, 512, 1, 1, 0 }, 1e-10, "n100 W2539x512 xW^T" },
	{ "matmul", c_matmul, { 3, 7, 5, 0, 1, 0 }, 1e-10, "n3 W7x5 xW" },
	/* the cpu backend packs W in 16 x 64 blocks (bf16: pairs along K too) and cuts the rows at
	 * multiples of 64: 37 x 45 leaves every block part empty, 1-2 rows, under 64, 127 and 128
	 * rows cut the rows differently */
	{ "matmul", c_matmul, { 2, 37, 45, 1, 1, 0 }, 1e-10, "n2 W37x45 xW^T" },
	{ "matmul", c_matmul, { 5, 37, 45, 1, 0, 0 }, 1e-10, "n5 W37x45 xW^T" },
	{ "matmul", c_matmul, { 127, 37, 45, 1, 1, 0 }, 1e-10, "n127 W37x45 xW^T" },
	{ "matmul", c_matmul, { 128, 37, 45, 1, 1, 0 }, 1e-10, "n128 W37x45 xW^T" },
	{ "matmul_bias", c_matmul_bias, { 1000, 2539, 512, 0 }, 1e-10, "n1000 W2539x512 b1" },
	{ "matmul_bias", c_matmul_bias, { 130, 2048, 300, 1 }, 1e-10, "n130 W2048x300 b1+b2 (M and K cut)" },
	{ "matmul_bias", c_matmul_bias, { 7, 2048, 256, 1 }, 1e-10, "n7 W2048x256 b1+b2" },
	{ "bias_rows", c_bias_rows, { 37, 2048, 1 }, 0, "37x2048 b1+b2" },
	{ "bias_rows", c_bias_rows, { 5, 2539, 0 }, 0, "5x2539 b1" },
	{ "col_sums", c_col_sums, { 827, 2539 }, 1e-12, "827x2539" },
	{ "col_sums", c_col_sums, { 1, 7 }, 1e-12, "1x7" },
	{ "row_gather+embed_gather", c_gather, { 64, 2048, 300 }, 0, "64 rows of 2048 from 300" },
	{ "row_gather+embed_gather", c_gather, { 1, 1, 1 }, 0, "1 row of 1" },
	{ "embed_scatter_add", c_scatter, { 763, 256, 50 }, 1e-12, "763 rows of 256 into 50" },
	{ "mul+scale+sum_squares", c_elementwise, { 4 * 1024 * 1024 + 13 }, 1e-12, "4M+13" },
	{ "mul+scale+sum_squares", c_elementwise, { 5 }, 1e-12, "5" },
	{ "lstm_cell_forward", c_lstm_fwd, { 64, 512, 1, 1 }, 1e-12, "64x512 c_prev tc" },
	{ "lstm_cell_forward", c_lstm_fwd, { 7, 37, 0, 0 }, 1e-12, "7x37 no c_prev no tc" },
	{ "lstm_cell_forward", c_lstm_fwd, { 3, 16, 1, 0 }, 1e-12, "3x16 c_prev" },
	{ "lstm_cell_backward", c_lstm_bwd, { 64, 512, 1 }, 1e-12, "64x512 c_prev" },
	{ "lstm_cell_backward", c_lstm_bwd, { 5, 37, 0 }, 1e-12, "5x37 no c_prev" },
	{ "log_softmax_rows", c_log_softmax, { 64, 2539 }, 1e-12, "64x2539" },
	{ "log_softmax_rows", c_log_softmax, { 3, 7 }, 1e-12, "3x7" },
	{ "softmax_xent_rows", c_xent, { 827, 2539, 1 }, 1e-12, "827x2539 grad" },
	{ "softmax_xent_rows", c_xent, { 9, 37, 0 }, 1e-12, "9x37 loss only" },
	{ "softmax_xent_rows", c_xent, { 301, 2539, 1, 3 }, 1e-12, "301x2539 grad, every 3rd row padding" },
	{ "softmax_xent_rows", c_xent, { 9, 37, 0, 2 }, 1e-12, "9x37 loss only, every 2nd row padding" },
	{ "row_topk", c_topk, { 768, 2539, 3, 0 }, 0, "768x2539 k3" },
	{ "row_topk", c_topk, { 256, 2539, 1, 1 }, 0, "256x2539 k1 ties nan" },
	{ "row_topk", c_topk, { 40, 300, 16, 1 }, 0, "40x300 k16 ties nan" },
	{ "row_topk", c_topk, { 9, 6, 8, 1 }, 0, "9x6 k8 short rows" },
	{ "dropout_forward", c_dropout, { 100003, 30 }, 0, "100003 p=0.3" },
	{ "dropout_forward", c_dropout, { 7, 50 }, 0, "7 p=0.5" },
	{ "adam_step", c_adam, { 100003, 4 }, 0, "100003 x 4 steps" },
	{ "adam_step", c_adam, { 15, 3 }, 0, "15 x 3 steps" },
	/* the cpu backend steps and packs 64 rows at a time: 150 rows end in a band of 22, 45 and
	 * 300 columns leave partial blocks (16 or 32 along K, 64 along N) */
	{ "weight_adam", c_weight_adam, { 2539, 512, 9, 0, 2 }, 0, "W2539x512 x 3 steps, both packed" },
	{ "weight_adam", c_weight_adam, { 150, 45, 5, 0, 1 }, 0, "W150x45 x 3 steps, W^T packed" },
	{ "weight_adam", c_weight_adam, { 7, 300, 3, 0, 0 }, 0, "W7x300 x 3 steps, none packed" },
	{ "weight_adam+matmul", c_weight_adam, { 150, 45, 70, 1, 2 }, 1e-10, "W150x45 n70, both" },
	{ "weight_adam+matmul", c_weight_adam, { 2048, 512, 33, 1, 1 }, 1e-10, "W2048x512 n33, W^T" },
	{ "weight_adam+matmul", c_weight_adam, { 64, 300, 64, 1, 0 }, 1e-10, "W64x300 n64, none first" },
	{ "freeze+matmul+gemm", c_freeze, { 300, 77, 130 }, 1e-10, "x 300x130, W 77x130, twice" },
	{ "freeze+matmul+gemm", c_freeze, { 5000, 40, 3 }, 1e-10, "x 5000x3 (a tail past 4096), W 40x3" },
	{ "encoder", c_encoder, { 18, 2, 2, 64, 64 }, 1e-10, "resnet18 2 images 64x64" },
	{ "encoder", c_encoder, { 50, 3, 1, 40, 48 }, 1e-10, "resnet50 1 of 3 images 48x40" },
	/* bf16: both round the same values, but where an fp32 sum lands near a rounding boundary the
	 * two round differently, and such flips compound over the layers */
	{ "encoder", c_encoder, { 18, 2, 2, 64, 64, CAP_ENCODER_BF16 }, 1e-4, "resnet18 bf16 2 images 64x64" },
};
enum { NCASES = sizeof cases / sizeof cases[0] };

static double nmse(const vec *a, const vec *ref)
{
	if (a->n != ref->n)
		return INFINITY;
	double e = 0, s = 0;
	for (size_t i = 0; i < a->n; i++) {
		if (isnan(a->v[i]) != isnan(ref->v[i]))
			return INFINITY;
		if (isnan(a->v[i]))
			continue;
		double d = a->v[i] - ref->v[i];
		e += d * d;
		s += ref->v[i] * ref->v[i];
	}
	return s > 0 ? e / s : e;
}

static vec run_case(const cap_ops *o, int i)
{
	cap_rng r;
	cap_rng_seed(&r, 1000 + (uint64_t)i);
	vec v = { 0 };
	cases[i].run(o, cases[i].sh, &r, &v);
	return v;
}

/* Runs every case on a backend; returns the number of failures, printing the lines unless
 * quiet (the perturbed backend reports through its own checks). */
static int run_backend(const cap_ops *o, vec *refs, int quiet, int *failed_case)
{
	int failures = 0;
	for (int i = 0; i < NCASES; i++) {
		/* the cpu backend refuses a bf16 encoder without AVX512-BF16 (a test of its own below) */
		if (!strcmp(o->name, "cpu") && !strcmp(cases[i].op, "encoder") &&
		    (cases[i].sh[5] & CAP_ENCODER_BF16) && !cap_cpu_has(CAP_CPU_AVX512BF16)) {
			if (!quiet)
				printf("skip - %s %s [%s]: this processor has no AVX512-BF16\n", o->name,
				       cases[i].op, cases[i].shape);
			continue;
		}
		vec v = run_case(o, i);
		double e = nmse(&v, &refs[i]);
		int good = cases[i].tol == 0 ? e == 0 : e <= cases[i].tol;
		if (!quiet)
			CHECK(good, "%s %s [%s]: nmse %.3g (bound %s%.0e)", o->name, cases[i].op, cases[i].shape, e,
			      cases[i].tol == 0 ? "exact " : "", cases[i].tol);
		if (!good) {
			failures++;
			if (failed_case)
				failed_case[i] = 1;
		}
		free(v.v);
	}
	return failures;
}

/* ---- the perturbed backend: the cpu table with three ops off by a little ---- */
static const cap_ops *base;
static void bad_lstm(float *g, const float *cp, float *c, float *tc, float *h, int n, int H)
{
	base->lstm_cell_forward(g, cp, c, tc, h, n, H);
	h[0] += 1e-2f;   /* one element of a 64x512 cell: nmse ~1e-9, far above the 1e-12 bound */
}
static void bad_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc)
{
	base->gemm(ta, tb, M, N, K, alpha * (1 + 1e-4f), A, lda, B, ldb, beta, C, ldc);
}
static void bad_adam(float *p, const float *g, float *m, float *v, size_t n, const cap_adam_consts *k)
{
	cap_adam_consts k2 = *k;
	k2.eps = 1e-6f;   /* shows in the tiny-gradient elements: adam must be exact */
	base->adam_step(p, g, m, v, n, &k2);
}

/* softmax_xent_rows' padding rows on a backend, not against ref but absolutely: loss exactly 0,
 * the gradient row exact zeros, and every other row as the backend computes it without padding
 * (the rows are independent). */
static void xent_padding(const cap_ops *o)
{
	cap_rng r;
	cap_rng_seed(&r, 12);
	int n = 37, V = 2539;
	size_t nn = (size_t)n * V;
	float *x = rnd(&r, nn, -8, 8), *g0 = malloc(nn * F), *g1 = malloc(nn * F);
	uint32_t t[37], tp[37];
	double l0[37], l1[37];
	for (int i = 0; i < n; i++) {
		t[i] = (uint32_t)cap_rng_below(&r, V);
		tp[i] = i % 4 == 1 || i == n - 1 ? CAP_TARGET_NONE : t[i];
	}
	for (int pass = 0; pass < 2; pass++) {
		float *dx = up(o, x, nn * F);
		uint32_t *dt = up(o, pass ? tp : t, sizeof t);
		double *dl = o->alloc(sizeof l0);
		o->softmax_xent_rows(dx, dt, n, V, 1.0f / n, dl);
		o->download(pass ? l1 : l0, dl, sizeof l0);
		o->download(pass ? g1 : g0, dx, nn * F);
		o->free(dx); o->free(dt); o->free(dl);
	}
	int good = 1;
	for (int i = 0; i < n; i++) {
		const float *a = g0 + (size_t)i * V, *b = g1 + (size_t)i * V;
		if (tp[i] == CAP_TARGET_NONE) {
			good &= l1[i] == 0;
			for (int j = 0; j < V; j++)
				good &= b[j] == 0;
		} else {
			good &= l1[i] == l0[i] && !memcmp(a, b, (size_t)V * F);
		}
	}
	CHECK(good, "%s softmax_xent_rows: padding rows (CAP_TARGET_NONE) have loss 0 and zero gradients, "
	      "the other rows are as without them", o->name);
	free(x); free(g0); free(g1);
}

/* The ref row_topk against a sort: the allowed, non-NaN columns of a row sorted by value
 * descending then column ascending, the first k of them. */
static const float *topk_row;
static int topk_cmp(const void *pa, const void *pb)
{
	int a = *(const int *)pa, b = *(const int *)pb;
	float va = topk_row[a], vb = topk_row[b];
	return va > vb ? -1 : va < vb ? 1 : a - b;
}
static void ref_topk_oracle(void)
{
	cap_rng r;
	cap_rng_seed(&r, 11);
	int rows = 50, n = 97, k = 16, good = 1;
	float *x = rnd(&r, (size_t)rows * n, -4, 4), v[16];
	int32_t ix[16];
	int order[97];
	for (int i = 0; i < rows * n; i++) {
		x[i] = floorf(x[i]);
		if (i % 13 == 0) x[i] = NAN;
		if (i % 17 == 0) x[i] = -INFINITY;
	}
	for (int row = 0; row < rows; row++) {
		const float *xr = x + (size_t)row * n;
		int m = 0;
		for (int i = 0; i < n; i++)
			if (i != 3 && i != 5 && !isnan(xr[i]))
				order[m++] = i;
		topk_row = xr;
		qsort(order, m, sizeof *order, topk_cmp);
		cap_ref_row_topk(xr, 1, n, k, 3, 5, v, ix);
		for (int j = 0; j < k; j++) {
			int want = j < m ? order[j] : -1;
			if (ix[j] != want || (want >= 0 && v[j] != xr[want]) || (want < 0 && v[j] != -INFINITY))
				good = 0;
		}
	}
	free(x);
	CHECK(good, "ref row_topk equals a sort by (value desc, column asc), NaN and excluded columns left out");
}

/* The ref GEMM against a double precision oracle. */
static void ref_gemm_oracle(void)
{
	const cap_ops *o = cap_ops_ref();
	cap_rng r;
	cap_rng_seed(&r, 7);
	int M = 13, N = 21, K = 300, worst_ok = 1;
	for (int ta = 0; ta < 2; ta++)
		for (int tb = 0; tb < 2; tb++) {
			int lda = ta ? M : K, ldb = tb ? K : N;
			float *A = rnd(&r, (size_t)M * K, -1, 1), *B = rnd(&r, (size_t)K * N, -1, 1);
			float *C = malloc(sizeof(float) * M * N);
			o->gemm(ta, tb, M, N, K, 1, A, lda, B, ldb, 0, C, N);
			for (int i = 0; i < M; i++)
				for (int j = 0; j < N; j++) {
					double d = 0;
					for (int k = 0; k < K; k++)
						d += (double)(ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
					if (fabs(C[i * N + j] - d) > 1e-6 * K)
						worst_ok = 0;
				}
			free(A); free(B); free(C);
		}
	CHECK(worst_ok, "ref gemm within 1e-6 K of a double precision oracle, every transpose");
}

/* The bf16 precision (ops.h): ref's is the definition (operands rounded to bfloat16, fp32
 * sums), and a backend that takes it must meet the fp32 bounds against that definition, while
 * plain fp32 must miss them (else the comparison could not tell the two apart). */
/* The cases whose output is a product, which bf16 rounds */
static int has_product(const char *op)
{
	return !strcmp(op, "gemm") || !strcmp(op, "matmul") || !strcmp(op, "matmul_bias") ||
	       !strcmp(op, "weight_adam+matmul") || !strcmp(op, "freeze+matmul+gemm");
}

static void bf16_cases(const cap_ops *ref, vec *fp32_refs)
{
	const cap_ops *cpu = cap_ops_cpu();
	CHECK(ref->set_precision(CAP_PRECISION_BF16) == 0, "ref takes the bf16 precision");
	int have = cap_cpu_has(CAP_CPU_AVX512BF16);
	for (int i = 0; i < NCASES; i++) {
		if (!has_product(cases[i].op))
			continue;
		vec b = run_case(ref, i);
		if (cases[i].sh[2] > 0)   /* K > 0: there is a product to round */
			CHECK(nmse(&fp32_refs[i], &b) > 1e3 * cases[i].tol,
			      "ref %s [%s] in bf16 differs from fp32 (nmse %.3g)", cases[i].op, cases[i].shape,
			      nmse(&fp32_refs[i], &b));
		if (have) {
			vec v = run_case(cpu, i);
			double e = nmse(&v, &b);
			CHECK(e <= cases[i].tol, "cpu %s [%s] in bf16: nmse %.3g against ref's bf16 (bound %.0e)",
			      cases[i].op, cases[i].shape, e, cases[i].tol);
			free(v.v);
		}
		free(b.v);
	}
	if (have) {
		/* a weight prepared in fp32 still multiplies right after a switch to bf16 and back */
		ref->set_precision(CAP_PRECISION_FP32);
		cap_rng r;
		cap_rng_seed(&r, 99);
		int rows = 96, cols = 80, n = 70;
		float *W = rnd(&r, (size_t)rows * cols, -1, 1), *x = rnd(&r, (size_t)n * cols, -1, 1);
		float *y = malloc(F * n * rows), *yr = malloc(F * n * rows);
		cap_weight *w = cpu->weight_new(W, rows, cols, 0), *wr = ref->weight_new(W, rows, cols, 0);
		ref->set_precision(CAP_PRECISION_BF16);
		cpu->matmul(x, n, w, 1, 0, y);
		ref->matmul(x, n, wr, 1, 0, yr);
		vec a = { 0 }, b = { 0 };
		put_f(&a, y, (size_t)n * rows);
		put_f(&b, yr, (size_t)n * rows);
		CHECK(nmse(&a, &b) <= 1e-10, "cpu matmul of a weight made in fp32, run in bf16: nmse %.3g", nmse(&a, &b));
		ref->set_precision(CAP_PRECISION_FP32);
		cpu->matmul(x, n, w, 1, 0, y);
		ref->matmul(x, n, wr, 1, 0, yr);
		a.n = b.n = 0;
		put_f(&a, y, (size_t)n * rows);
		put_f(&b, yr, (size_t)n * rows);
		CHECK(nmse(&a, &b) <= 1e-10, "and back in fp32: nmse %.3g", nmse(&a, &b));
		free(a.v); free(b.v);
		cpu->weight_free(w); ref->weight_free(wr);
		free(W); free(x); free(y); free(yr);
	} else {
		SKIP("cpu bf16: this processor has no AVX512-BF16 (%s)", cap_cpu_describe());
	}
	ref->set_precision(CAP_PRECISION_FP32);
	/* without AVX512-BF16 (as --device ref makes it look) the cpu backend refuses bf16 */
	int was = cap_cpu_set_portable(1);
	int rc = cpu->set_precision(CAP_PRECISION_BF16);
	CHECK(rc < 0 && strstr(cap_errmsg(), "AVX512-BF16"), "cpu refuses bf16 without AVX512-BF16: %s",
	      rc < 0 ? cap_errmsg() : "(accepted)");
	cap_resnet *net = cap_resnet_random(18, 5);
	cap_encoder *e = cpu->encoder_new(net, 1, 64, 64, CAP_ENCODER_BF16);
	CHECK(!e && strstr(cap_errmsg(), "AVX512-BF16"), "cpu refuses a bf16 encoder without AVX512-BF16: %s",
	      e ? "(made)" : cap_errmsg());
	if (e)
		cpu->encoder_free(e);
	cap_resnet_free(net);
	cap_cpu_set_portable(was);
	CHECK(cpu->set_precision(CAP_PRECISION_TF32) < 0, "cpu refuses tf32: %s", cap_errmsg());
	ref->set_precision(CAP_PRECISION_FP32);
}

/* The cuda backend's fast precisions: bf16 meets the fp32 bounds against ref's bf16 (cuBLAS
 * multiplies bf16 operands with fp32 sums, as ref's definition does), tf32 lands between fp32's
 * bound and bf16's distance (its operands keep 10 mantissa bits, bf16's 7). */
static void cuda_precision_cases(const cap_ops *cuda, const cap_ops *ref, vec *fp32_refs)
{
	for (int i = 0; i < NCASES; i++) {
		if (!has_product(cases[i].op))
			continue;
		CHECK(ref->set_precision(CAP_PRECISION_BF16) == 0 && cuda->set_precision(CAP_PRECISION_BF16) == 0,
		      "ref and cuda take bf16");
		vec b = run_case(ref, i), v = run_case(cuda, i);
		double e = nmse(&v, &b);
		CHECK(e <= cases[i].tol, "cuda %s [%s] in bf16: nmse %.3g against ref's bf16 (bound %.0e)",
		      cases[i].op, cases[i].shape, e, cases[i].tol);
		ref->set_precision(CAP_PRECISION_FP32);
		CHECK(cuda->set_precision(CAP_PRECISION_TF32) == 0, "cuda takes tf32");
		vec t = run_case(cuda, i);
		double et = nmse(&t, &fp32_refs[i]);
		CHECK(et <= 1e-5, "cuda %s [%s] in tf32: nmse %.3g against fp32 (bound 1e-05)", cases[i].op,
		      cases[i].shape, et);
		cuda->set_precision(CAP_PRECISION_FP32);
		free(b.v); free(v.v); free(t.v);
	}
}

int main(void)
{
	ref_gemm_oracle();
	ref_topk_oracle();
	const cap_ops *ref = cap_ops_ref();
	vec refs[NCASES];
	for (int i = 0; i < NCASES; i++)
		refs[i] = run_case(ref, i);

	/* which kernels the cpu table chose (lib/ops/cpu/table.c): AVX-512 where the processor has
	 * it, else AVX2 (what CAP_CPU_OFF=avx512f leaves on this machine), else the plain ones */
	const cap_ops *cpu = cap_ops_cpu();
#if defined(__x86_64__)
	if (cap_cpu_has(CAP_CPU_AVX512F))
		CHECK(cpu->lstm_cell_forward == cap_avx512_lstm_cell_forward && cpu->adam_step == cap_avx512_adam_step &&
		      cpu->softmax_xent_rows == cap_avx512_softmax_xent_rows, "cpu: the AVX-512 kernels (%s)", cap_cpu_describe());
	else if (cap_cpu_has(CAP_CPU_AVX2))
		CHECK(cpu->lstm_cell_forward == cap_avx2_lstm_cell_forward && cpu->adam_step == cap_avx2_adam_step &&
		      cpu->softmax_xent_rows == cap_avx2_softmax_xent_rows && cpu->log_softmax_rows == cap_avx2_log_softmax_rows &&
		      cpu->col_sums == cap_avx2_col_sums,
		      "cpu: the AVX2 kernels (%s)", cap_cpu_describe());
	else
		CHECK(cpu->lstm_cell_forward == cap_ref_lstm_cell_forward && cpu->adam_step == cap_ref_adam_step,
		      "cpu: the plain kernels (%s)", cap_cpu_describe());
#else
	CHECK(cpu->lstm_cell_forward == cap_ref_lstm_cell_forward, "cpu: the plain kernels");
#endif
	run_backend(cap_ops_cpu(), refs, 0, NULL);
	bf16_cases(ref, refs);
	xent_padding(ref);
	xent_padding(cap_ops_cpu());

	const cap_ops *cuda;
	if (cap_ops_open("cuda", &cuda) == 0) {
		run_backend(cuda, refs, 0, NULL);
		cuda_precision_cases(cuda, ref, refs);
		xent_padding(cuda);
	} else
		SKIP("cuda: %s", cap_errmsg());

	base = cap_ops_cpu();
	cap_ops bad = *base;
	bad.name = "perturbed";
	bad.lstm_cell_forward = bad_lstm;
	bad.gemm = bad_gemm;
	bad.adam_step = bad_adam;
	int failed[NCASES] = { 0 };
	run_backend(&bad, refs, 1, failed);
	int caught_all = 1, false_alarm = 0;
	for (int i = 0; i < NCASES; i++) {
		const char *op = cases[i].op;
		int perturbed = !strcmp(op, "lstm_cell_forward") || !strcmp(op, "adam_step") ||
		                (!strcmp(op, "gemm") && cases[i].sh[2] > 0) || !strcmp(op, "freeze+matmul+gemm");
		if (perturbed && !failed[i])
			caught_all = 0;
		if (!perturbed && failed[i] && strcmp(op, "encoder") && strcmp(op, "matmul"))
			false_alarm = 1;
	}
	CHECK(caught_all, "a perturbed backend fails every case of the ops it perturbs");
	CHECK(!false_alarm, "the perturbed backend passes the cases of the ops it leaves alone");
	for (int i = 0; i < NCASES; i++)
		free(refs[i].v);
	return check_exit();
}

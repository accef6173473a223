/* The decoder's backward pass against central finite differences of its own forward pass on a
 * tiny model (every parameter), for 1 and 2 layers, with and without dropout, on the ref and the
 * cpu backends; the two backends against each other; and the inference API (start/step/gather)
 * against the training forward pass. */
#include "train/adam.h"
#include "check.h"
#include "decoder/decoder.h"
#include "ops/ops.h"
#include <stdlib.h>
#include <string.h>

enum { B = 3 };
static const int lens[B] = { 6, 4, 2 };
static const uint32_t ids0[] = { 1, 4, 5, 6, 4, 2 }, ids1[] = { 1, 3, 6, 2 }, ids2[] = { 1, 2 };
static const uint32_t *const ids[B] = { ids0, ids1, ids2 };

static double loss_at(cap_decoder_work *w, cap_decoder *m, const cap_decoder_batch *bt,
                      float p, uint64_t seed, float *grad)
{
	cap_rng r;
	cap_rng_seed(&r, seed);  /* same dropout masks every call */
	return cap_decoder_loss(w, m, bt, p, &r, grad, NULL);
}

static void gradcheck(int layers, float dropout, const cap_ops *ops)
{
	cap_decoder_config c = { .feat_dim = 5, .embed = 4, .hidden = 3, .layers = layers, .vocab = 7 };
	cap_decoder *m = cap_decoder_new(&c);
	cap_rng r;
	cap_rng_seed(&r, 11 + layers);
	cap_decoder_init_random(m, &r);
	float feats[B][5];
	for (int b = 0; b < B; b++)
		for (int j = 0; j < 5; j++)
			feats[b][j] = (float)cap_rng_normal(&r);
	static const int32_t rows[B] = { 0, 1, 2 };
	cap_decoder_batch bt = { B, lens, ids, &feats[0][0], rows };
	CHECK(cap_decoder_bind(m, ops) == 0, "bind to %s", ops->name);
	cap_decoder_work *w = cap_decoder_work_new(m);
	float *g = calloc(m->n_params, sizeof(float));
	loss_at(w, m, &bt, dropout, 5, g);
	double worst = 0;
	size_t worst_i = 0;
	const float h = 4e-3f;
	for (size_t i = 0; i < m->n_params; i++) {
		float keep = m->data[i];
		m->data[i] = keep + h;
		cap_decoder_to_device(m);
		double lp = loss_at(w, m, &bt, dropout, 5, NULL);
		m->data[i] = keep - h;
		cap_decoder_to_device(m);
		double lm = loss_at(w, m, &bt, dropout, 5, NULL);
		m->data[i] = keep;
		cap_decoder_to_device(m);
		double num = (lp - lm) / (2 * (double)((keep + h) - (keep - h)) / 2);
		double err = fabs(num - g[i]) / (2e-3 + fabs(num));
		if (err > worst) { worst = err; worst_i = i; }
	}
	CHECK(worst < 3e-2, "gradient check L=%d dropout=%g %s: worst relative error %.3g (param %zu of %zu)",
	      layers, dropout, ops->name, worst, worst_i, m->n_params);
	/* The words never fed as input (0 = pad) get no embedding gradient. */
	CHECK(g[c.embed * c.feat_dim + c.embed] == 0, "no gradient for the unused <pad> embedding");
	free(g);
	cap_decoder_work_free(w);
	cap_decoder_free(m);
}

/* The ref and cpu backends give the same loss and gradients on a mid-size model. */
/* The gate table (decoder.h): a state that has stepped V rows gathers layer 0's gate inputs
 * from its table of every word instead of multiplying; the log-probabilities stay those of the
 * products. */
static void gate_table_check(const cap_decoder *m, const float *feats, int nb, const char *backend)
{
	int V = m->cfg.vocab;
	cap_decoder_state *a = cap_decoder_state_new(m, nb), *b = cap_decoder_state_new(m, nb);
	b->stepped = (size_t)V;   /* as if it had stepped the vocabulary's worth of rows */
	cap_decoder_start(m, a, feats, nb);
	cap_decoder_start(m, b, feats, nb);
	float *la = malloc(sizeof(float) * nb * V), *lb = malloc(sizeof(float) * nb * V);
	uint32_t in[64];
	double e = 0;
	for (int t = 0; t < 3; t++) {
		for (int r = 0; r < nb; r++)
			in[r] = t == 0 ? 1 : 3 + (uint32_t)(r * 7 + t) % (uint32_t)(V - 3);
		cap_decoder_step(m, a, in, la);
		cap_decoder_step(m, b, in, lb);
		for (int i = 0; i < nb * V; i++)
			e = fmax(e, fabs(la[i] - lb[i]));
	}
	CHECK(!a->gate_table && b->gate_table && e < 1e-5,
	      "%s: steps on the gate table give the log-probabilities of the products (max diff %.3g; "
	      "table built only past V rows: %d)", backend, e, !a->gate_table && b->gate_table);
	free(la); free(lb);
	cap_decoder_state_free(a);
	cap_decoder_state_free(b);
}

static void paths_agree(void)
{
	cap_decoder_config c = { .feat_dim = 64, .embed = 32, .hidden = 48, .layers = 2, .vocab = 50 };
	cap_decoder *m = cap_decoder_new(&c);
	cap_rng r;
	cap_rng_seed(&r, 3);
	cap_decoder_init_random(m, &r);
	enum { NB = 8 };
	int len[NB];
	uint32_t *idv[NB];
	float *fv[NB], *table = malloc(sizeof(float) * NB * 64);
	int32_t frow[NB];
	for (int b = 0; b < NB; b++) {
		len[b] = 12 - b;
		idv[b] = malloc(sizeof(uint32_t) * len[b]);
		idv[b][0] = 1;
		for (int t = 1; t < len[b] - 1; t++)
			idv[b][t] = 3 + (uint32_t)cap_rng_below(&r, 47);
		idv[b][len[b] - 1] = 2;
		fv[b] = table + (size_t)(NB - 1 - b) * 64;   /* rows out of order: feat_row maps them */
		frow[b] = NB - 1 - b;
		for (int j = 0; j < 64; j++)
			fv[b][j] = cap_rng_uniform(&r);
	}
	cap_decoder_batch bt = { NB, len, (const uint32_t *const *)idv, table, frow };
	float *g0 = calloc(m->n_params, sizeof(float)), *g1 = calloc(m->n_params, sizeof(float));
	cap_decoder_bind(m, cap_ops_ref());
	cap_decoder_work *w = cap_decoder_work_new(m);
	double l0 = loss_at(w, m, &bt, 0.25f, 9, g0);
	cap_decoder_work_free(w);
	cap_decoder_bind(m, cap_ops_cpu());
	w = cap_decoder_work_new(m);
	double l1 = loss_at(w, m, &bt, 0.25f, 9, g1);
	double e = 0, mx = 0;
	for (size_t i = 0; i < m->n_params; i++) {
		e = fmax(e, fabs(g0[i] - g1[i]));
		mx = fmax(mx, fabs(g0[i]));
	}
	CHECK(fabs(l0 - l1) <= 1e-6 * fabs(l0) && e <= 1e-5 * mx,
	      "cpu and ref backends agree (loss %.7g vs %.7g, grad max diff %.3g of %.3g)", l0, l1, e, mx);

	/* Inference: -sum of the step log-probabilities of each caption's targets equals the
	 * training loss times the token count (no dropout). */
	size_t ntok;
	double lt = cap_decoder_loss(w, m, &bt, 0, NULL, NULL, &ntok);
	cap_decoder_state *s = cap_decoder_state_new(m, NB);
	float *feats = malloc(sizeof(float) * NB * 64), *lp = malloc(sizeof(float) * NB * c.vocab);
	for (int b = 0; b < NB; b++)
		memcpy(feats + b * 64, fv[b], sizeof(float) * 64);
	cap_decoder_start(m, s, feats, NB);
	/* The image step predicts <start>; the state API does not return it, so recompute it
	 * from a one-token caption batch: loss of [<start>] alone is not expressible (len >= 2),
	 * so compare the remaining steps and add the image step from the loss difference. */
	double sum = 0;
	int maxlen = len[0];
	uint32_t in[NB];
	for (int t = 1; t < maxlen; t++) {
		for (int b = 0; b < NB; b++)
			in[b] = idv[b][t - 1 < len[b] - 1 ? t - 1 : len[b] - 1];
		cap_decoder_step(m, s, in, lp);
		for (int b = 0; b < NB; b++)
			if (t < len[b])
				sum -= lp[b * c.vocab + idv[b][t]];
	}
	/* Image-step terms from a batch of the same captions cut to [<start>, <end>]: its loss is
	 * (image term + <end>-after-<start> term) / 2 per caption; the second term comes from a
	 * fresh state stepped once with <start>. */
	double img = 0;
	{
		int l2[NB];
		uint32_t se[2] = { 1, 2 };
		const uint32_t *sp[NB];
		for (int b = 0; b < NB; b++) { l2[b] = 2; sp[b] = se; }
		cap_decoder_batch b2 = { NB, l2, sp, table, frow };
		double l = cap_decoder_loss(w, m, &b2, 0, NULL, NULL, NULL) * 2 * NB;
		cap_decoder_start(m, s, feats, NB);
		for (int b = 0; b < NB; b++) in[b] = 1;
		cap_decoder_step(m, s, in, lp);
		for (int b = 0; b < NB; b++) l += lp[b * c.vocab + 2];
		img = l;
	}
	double total = (sum + img) / ntok;
	CHECK(fabs(total - lt) <= 1e-5 * lt, "inference steps reproduce the training loss (%.7g vs %.7g)", total, lt);

	/* gather: reversing the rows in place and stepping gives the reversed log-probs. Two fresh
	 * states, neither with a gate table (s has one by now: its gathered products may round
	 * differently from a step's own, as oneDNN's AVX2 GEMMs do, and this compares bitwise). */
	cap_decoder_state *s1 = cap_decoder_state_new(m, NB);
	cap_decoder_start(m, s1, feats, NB);
	for (int b = 0; b < NB; b++) in[b] = 1;
	cap_decoder_state *s2 = cap_decoder_state_new(m, NB);
	int rev[NB], dup[2] = { 5, 5 };
	for (int b = 0; b < NB; b++) rev[b] = NB - 1 - b;
	cap_decoder_state_gather(s2, s1, rev, NB);
	cap_decoder_state_gather(s1, s1, rev, NB);
	cap_decoder_step(m, s1, in, lp);
	float *lp2 = malloc(sizeof(float) * NB * c.vocab);
	cap_decoder_step(m, s2, in, lp2);
	CHECK(!s1->gate_table && !s2->gate_table && !memcmp(lp, lp2, sizeof(float) * NB * c.vocab),
	      "in-place and copying gather agree");
	cap_decoder_state_free(s1);
	cap_decoder_state_gather(s2, s2, dup, 2);
	cap_decoder_step(m, s2, in, lp2);
	CHECK(s2->batch == 2 && !memcmp(lp2, lp2 + c.vocab, sizeof(float) * c.vocab), "gather duplicates rows");

	/* The ref backend's inference gives the same log-probabilities. */
	cap_decoder_start(m, s, feats, NB);
	for (int b = 0; b < NB; b++) in[b] = 1;
	cap_decoder_step(m, s, in, lp);
	cap_decoder_state_free(s);
	cap_decoder_state_free(s2);
	cap_decoder_work_free(w);
	cap_decoder_bind(m, cap_ops_ref());
	w = cap_decoder_work_new(m);
	s = cap_decoder_state_new(m, NB);
	s2 = cap_decoder_state_new(m, NB);
	cap_decoder_start(m, s, feats, NB);
	cap_decoder_step(m, s, in, lp2);
	double de = 0;
	for (int i = 0; i < NB * c.vocab; i++)
		de = fmax(de, fabs(lp[i] - lp2[i]));
	CHECK(de < 1e-5, "inference on ref and cpu agrees (max diff %.3g)", de);
	gate_table_check(m, feats, NB, "ref");
	cap_decoder_state_free(s); cap_decoder_state_free(s2);
	cap_decoder_work_free(w);
	cap_decoder_bind(m, cap_ops_cpu());
	w = cap_decoder_work_new(m);
	s = cap_decoder_state_new(m, NB);
	s2 = cap_decoder_state_new(m, NB);
	gate_table_check(m, feats, NB, "cpu");

	for (int b = 0; b < NB; b++) free(idv[b]);
	free(table);
	free(g0); free(g1); free(feats); free(lp); free(lp2);
	cap_decoder_state_free(s); cap_decoder_state_free(s2);
	cap_decoder_work_free(w);
	cap_decoder_free(m);
}

/* Adam (vectorised body and scalar tail on cpu, plain on ref) against torch's formulas written
 * out in scalar float code, bit for bit; clipping against its definition. */
static void adam_check(const cap_ops *ops)
{
	enum { N = 37 };
	float p[N], q[N], g[N], m[N] = { 0 }, v[N] = { 0 };
	cap_rng r;
	cap_rng_seed(&r, 1);
	for (int i = 0; i < N; i++)
		p[i] = q[i] = (float)cap_rng_normal(&r);
	cap_adam a;
	cap_adam_init(&a, ops, N, 1e-3);
	int same = 1;
	for (int step = 1; step <= 5; step++) {
		for (int i = 0; i < N; i++)
			g[i] = (float)cap_rng_normal(&r) * (i % 3 ? 1.0f : 1e-4f);
		cap_adam_step(&a, p, g);
		double bc1 = 1 - pow(0.9, step), bc2 = 1 - pow(0.999, step);
		float ss = (float)(1e-3 / bc1), bs = (float)sqrt(bc2);
		for (int i = 0; i < N; i++) {
			m[i] = m[i] * 0.9f + (float)(1 - 0.9) * g[i];
			v[i] = v[i] * 0.999f + (float)(1 - 0.999) * g[i] * g[i];
			q[i] += -ss * (m[i] / (sqrtf(v[i]) / bs + 1e-8f));
		}
		same &= !memcmp(p, q, sizeof p) && !memcmp(a.m, m, sizeof m) && !memcmp(a.v, v, sizeof v);
	}
	CHECK(same && a.step == 5, "%s: Adam equals torch's update, bit for bit, over 5 steps", ops->name);
	cap_adam_free(&a);
	double n2 = 0;
	for (int i = 0; i < N; i++)
		n2 += (double)g[i] * g[i];
	memcpy(q, g, sizeof g);
	double norm = cap_clip_grad_norm(ops, g, N, 0.5);
	float coef = (float)(0.5 / (sqrt(n2) + 1e-6));
	int clipped = 1;
	for (int i = 0; i < N; i++)
		clipped &= g[i] == q[i] * coef;
	CHECK(fabs(norm - sqrt(n2)) < 1e-9 * sqrt(n2) && clipped, "%s: clip_grad_norm scales to the norm (%.6g)",
	      ops->name, norm);
	memcpy(g, q, sizeof g);
	cap_clip_grad_norm(ops, g, N, 1e9);
	CHECK(!memcmp(g, q, sizeof g), "%s: no clipping below the threshold", ops->name);
}

/* PyTorch's default initialisation: bounds 1/sqrt(fan_in), embedding N(0, 1). */
static void init_check(void)
{
	cap_decoder_config c = { .feat_dim = 2048, .embed = 64, .hidden = 100, .layers = 2, .vocab = 300 };
	cap_decoder *m = cap_decoder_new(&c);
	cap_rng r;
	cap_rng_seed(&r, 2);
	cap_decoder_init_random(m, &r);
	cap_decoder_tensor t[CAP_DECODER_MAX_TENSORS];
	int n = cap_decoder_tensors(&c, m->data, t), good = 1;
	for (int i = 0; i < n; i++) {
		double s = 0, s2 = 0, mx = 0;
		for (size_t j = 0; j < t[i].numel; j++) {
			s += t[i].data[j];
			s2 += (double)t[i].data[j] * t[i].data[j];
			mx = fmax(mx, fabs(t[i].data[j]));
		}
		double mean = s / t[i].numel, sd = sqrt(s2 / t[i].numel - mean * mean);
		if (!strcmp(t[i].name, "embed.weight")) {
			good &= fabs(mean) < 0.02 && fabs(sd - 1) < 0.02;
		} else {
			double b = 1 / sqrt(!strncmp(t[i].name, "proj.", 5) ? 2048.0 : 100.0);
			/* uniform(-b, b): max close to b, sd b/sqrt(3) */
			good &= mx <= b && mx > 0.9 * b && fabs(sd - b / sqrt(3)) < 0.2 * b;
		}
		if (!good) { printf("# %s: mean %g sd %g max %g\n", t[i].name, mean, sd, mx); break; }
	}
	CHECK(good && n == 13, "initialisation follows PyTorch's defaults in every tensor");
	cap_decoder_free(m);
}

/* cap_decoder_work_adam (the step that refreshes the work's prepared weights as it goes) against
 * cap_adam_step over the whole block and the next pass's own refresh: the same parameters and
 * moments bit for bit, and the same losses, over 3 steps. Sizes that leave partial bands of 64
 * rows and partial blocks of the cpu backend's packing (4H = 280 rows, V = 130). */
static void work_adam_check(const cap_ops *ops)
{
	cap_decoder_config c = { .feat_dim = 33, .embed = 20, .hidden = 70, .layers = 2, .vocab = 130 };
	static const uint32_t i0[] = { 1, 40, 77, 129, 4, 2 }, i1[] = { 1, 3, 100, 2 }, i2[] = { 1, 2 };
	static const uint32_t *const wids[B] = { i0, i1, i2 };
	cap_decoder *m[2];
	cap_decoder_work *w[2];
	cap_adam a[2];
	float feats[B * 33], *g[2];
	cap_rng r;
	cap_rng_seed(&r, 21);
	for (int i = 0; i < B * 33; i++)
		feats[i] = (float)cap_rng_normal(&r);
	static const int32_t rows[B] = { 0, 1, 2 };
	cap_decoder_batch bt = { B, lens, wids, feats, rows };
	for (int k = 0; k < 2; k++) {
		m[k] = cap_decoder_new(&c);
		cap_rng_seed(&r, 22);
		cap_decoder_init_random(m[k], &r);
		cap_decoder_bind(m[k], ops);
		w[k] = cap_decoder_work_new(m[k]);
		cap_adam_init(&a[k], ops, m[k]->n_params, 1e-2);
		g[k] = ops->alloc(sizeof(float) * m[k]->n_params);
	}
	size_t n = m[0]->n_params;
	float *p0 = malloc(sizeof(float) * n), *p1 = malloc(sizeof(float) * n);
	int same = 1;
	for (int step = 0; step < 3; step++) {
		double l0 = cap_decoder_loss(w[0], m[0], &bt, 0, NULL, g[0], NULL);
		double l1 = cap_decoder_loss(w[1], m[1], &bt, 0, NULL, g[1], NULL);
		same &= l0 == l1;
		cap_adam_consts k = cap_adam_next(&a[0]);
		cap_decoder_work_adam(w[0], m[0], g[0], a[0].m, a[0].v, &k);
		cap_adam_step(&a[1], m[1]->dev.data, g[1]);
		ops->download(p0, m[0]->dev.data, sizeof(float) * n);
		ops->download(p1, m[1]->dev.data, sizeof(float) * n);
		same &= !memcmp(p0, p1, sizeof(float) * n);
		ops->download(p0, a[0].v, sizeof(float) * n);
		ops->download(p1, a[1].v, sizeof(float) * n);
		same &= !memcmp(p0, p1, sizeof(float) * n);
	}
	/* after the last step: the pass that takes the refreshed weights as they are */
	same &= cap_decoder_loss(w[0], m[0], &bt, 0, NULL, NULL, NULL) == cap_decoder_loss(w[1], m[1], &bt, 0, NULL, NULL, NULL);
	CHECK(same, "%s: the step that refreshes the prepared weights equals Adam then the pass's refresh, bit for bit",
	      ops->name);
	for (int k = 0; k < 2; k++) {
		ops->free(g[k]);
		cap_adam_free(&a[k]);
		cap_decoder_work_free(w[k]);
		cap_decoder_free(m[k]);
	}
	free(p0); free(p1);
}

/* Padded passes (cap_decoder_work_set_padded, what a backend that records passes gets) against
 * packed ones on the same batch: the same loss, the same gradients up to the order of their sums,
 * over two passes (the second with the prepared weights fresh from an Adam step). */
static void padded_check(const cap_ops *ops)
{
	enum { NB = 5, T = 9 };
	cap_decoder_config c = { .feat_dim = 16, .embed = 8, .hidden = 12, .layers = 2, .vocab = 23 };
	cap_decoder *m[2];
	cap_decoder_work *w[2];
	float *g[2];
	cap_adam a[2];
	static const int len[NB] = { 9, 7, 7, 4, 2 };
	static uint32_t idsb[NB][T];
	const uint32_t *idp[NB];
	float feats[NB * 16];
	static const int32_t rows[NB] = { 4, 0, 2, 1, 3 };
	cap_rng r;
	cap_rng_seed(&r, 77);
	for (int b = 0; b < NB; b++) {
		for (int t = 0; t < T; t++)
			idsb[b][t] = 1 + (uint32_t)cap_rng_below(&r, c.vocab - 1);
		idp[b] = idsb[b];
	}
	for (int i = 0; i < NB * 16; i++)
		feats[i] = (float)cap_rng_normal(&r);
	for (int k = 0; k < 2; k++) {
		m[k] = cap_decoder_new(&c);
		cap_rng_seed(&r, 5);
		cap_decoder_init_random(m[k], &r);
		CHECK(cap_decoder_bind(m[k], ops) == 0, "bind to %s", ops->name);
		w[k] = cap_decoder_work_new(m[k]);
		cap_decoder_work_set_padded(w[k], k);
		g[k] = calloc(m[k]->n_params, sizeof(float));
		CHECK(cap_adam_init(&a[k], ops, m[k]->n_params, 1e-2) == 0, "adam on %s", ops->name);
	}
	const float *ft = cap_ops_mirror(ops, feats, sizeof feats);
	cap_decoder_batch bt = { NB, len, idp, ft, rows };
	int good = 1;
	double worst_l = 0, worst_g = 0;
	for (int pass = 0; pass < 2; pass++) {
		double l[2];
		size_t tok[2];
		for (int k = 0; k < 2; k++) {
			cap_rng rr;
			cap_rng_seed(&rr, 9);
			l[k] = cap_decoder_loss(w[k], m[k], &bt, 0, &rr, g[k], &tok[k]);
		}
		double gmax = 0, gd = 0;
		for (size_t i = 0; i < m[0]->n_params; i++) {
			gmax = fmax(gmax, fabs(g[0][i]));
			gd = fmax(gd, fabs(g[0][i] - g[1][i]));
		}
		worst_l = fmax(worst_l, fabs(l[0] - l[1]) / l[0]);
		worst_g = fmax(worst_g, gd / gmax);
		good &= tok[0] == 29 && tok[1] == 29 && gmax > 0;
		for (int k = 0; k < 2; k++) {
			cap_adam_consts ak = cap_adam_next(&a[k]);
			cap_decoder_work_adam(w[k], m[k], g[k], a[k].m, a[k].v, &ak);
		}
	}
	CHECK(good && worst_l <= 1e-6 && worst_g <= 1e-5,
	      "%s: padded passes = packed ones (loss within %.2g, gradients within %.2g of the largest, 29 tokens)",
	      ops->name, worst_l, worst_g);
	cap_ops_unmirror(ops, ft, feats);
	for (int k = 0; k < 2; k++) {
		free(g[k]);
		cap_adam_free(&a[k]);
		cap_decoder_work_free(w[k]);
		cap_decoder_free(m[k]);
	}
}

int main(void)
{
	const cap_ops *backends[2] = { cap_ops_cpu(), cap_ops_ref() };
	for (int k = 0; k < 2; k++) {
		adam_check(backends[k]);
		work_adam_check(backends[k]);
	}
	init_check();
	for (int k = 0; k < 2; k++) {
		gradcheck(1, 0, backends[k]);
		gradcheck(2, 0, backends[k]);
		gradcheck(2, 0.3f, backends[k]);
	}
	paths_agree();
	for (int k = 0; k < 2; k++)
		padded_check(backends[k]);
	cap_decoder_config bad = { .feat_dim = 5, .embed = 4, .hidden = 3, .layers = 0, .vocab = 7 };
	CHECK(cap_decoder_new(&bad) == NULL, "zero layers is refused");
	return check_exit();
}

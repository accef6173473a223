/* The LSTM caption decoder: parameters, model files, inference steps, and the training
 * forward/backward pass (see decoder.h). Training works on packed sequences: captions sorted
 * by length descending, rows time-major, so step t holds the first bs[t] captions and every
 * per-step matrix is a contiguous block of rows. That lets the input projection of all steps,
 * the output layer over the real tokens only, and every weight gradient be one big GEMM; only
 * the recurrent h x W_hh product runs per step. */
#include "decoder/decoder.h"
#include "core/error.h"
#include "ops/gemm.h"
#include "ops/lstm.h"
#include "io/tensors.h"
#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- parameters ---- */

/* out (cols, rows) = x (rows, cols) transposed, in tiles of 16 rows by 8 columns: the writes
 * of a tile go to 8 lines whose power-of-two stride maps them to one cache set, and larger
 * tiles thrash it (32 x 32 tiles were 16 times slower here). */
static void transpose(const float *x, int rows, int cols, float *out)
{
	enum { TI = 16, TJ = 8 };
	for (int i0 = 0; i0 < rows; i0 += TI)
		for (int j0 = 0; j0 < cols; j0 += TJ)
			for (int i = i0; i < i0 + TI && i < rows; i++)
				for (int j = j0; j < j0 + TJ && j < cols; j++)
					out[(size_t)j * rows + i] = x[(size_t)i * cols + j];
}

int cap_decoder_config_check(const cap_decoder_config *c)
{
	if (c->feat_dim <= 0 || c->embed <= 0 || c->hidden <= 0 || c->vocab <= 0)
		return cap_fail("decoder sizes must be positive (feature %d, embed %d, hidden %d, vocab %d)",
		                c->feat_dim, c->embed, c->hidden, c->vocab);
	if (c->layers < 1 || c->layers > CAP_DECODER_MAX_LAYERS)
		return cap_fail("layers must be 1..%d, got %d", CAP_DECODER_MAX_LAYERS, c->layers);
	/* Keep every single matrix (and 4H) well inside int for the GEMM interface, and the total
	 * inside size_t. */
	const double lim = 1 << 30;
	double E = c->embed, H = c->hidden, V = c->vocab, D = c->feat_dim;
	if (4 * H * (E > H ? E : H) > lim || V * (E > H ? E : H) > lim || E * D > lim || V > lim)
		return cap_fail("decoder too large (feature %d, embed %d, hidden %d, vocab %d)",
		                c->feat_dim, c->embed, c->hidden, c->vocab);
	return 0;
}

int cap_decoder_tensors(const cap_decoder_config *c, float *base, cap_decoder_tensor *out)
{
	size_t E = c->embed, H = c->hidden, V = c->vocab, D = c->feat_dim, off = 0;
	int n = 0;
#define ADD(nm, r, cols) do { \
		cap_decoder_tensor *t = &out[n++]; \
		snprintf(t->name, sizeof t->name, "%s", nm); \
		t->ndim = (cols) ? 2 : 1; t->shape[0] = (r); t->shape[1] = (cols); \
		t->numel = (size_t)(r) * ((cols) ? (size_t)(cols) : 1); \
		t->data = base ? base + off : NULL; off += t->numel; } while (0)
	ADD("proj.weight", E, D);
	ADD("proj.bias", E, 0);
	ADD("embed.weight", V, E);
	for (int l = 0; l < c->layers; l++) {
		char nm[32];
		snprintf(nm, sizeof nm, "lstm.weight_ih_l%d", l); ADD(nm, 4 * H, l ? H : E);
		snprintf(nm, sizeof nm, "lstm.weight_hh_l%d", l); ADD(nm, 4 * H, H);
		snprintf(nm, sizeof nm, "lstm.bias_ih_l%d", l);   ADD(nm, 4 * H, 0);
		snprintf(nm, sizeof nm, "lstm.bias_hh_l%d", l);   ADD(nm, 4 * H, 0);
	}
	ADD("linear.weight", V, H);
	ADD("linear.bias", V, 0);
#undef ADD
	return n;
}

size_t cap_decoder_param_count(const cap_decoder_config *c)
{
	cap_decoder_tensor t[CAP_DECODER_MAX_TENSORS];
	int n = cap_decoder_tensors(c, NULL, t);
	size_t total = 0;
	for (int i = 0; i < n; i++)
		total += t[i].numel;
	return total;
}

void cap_decoder_views(const cap_decoder_config *c, float *base, cap_decoder_params *p)
{
	cap_decoder_tensor t[CAP_DECODER_MAX_TENSORS];
	int n = cap_decoder_tensors(c, base, t), k = 0;
	memset(p, 0, sizeof *p);
	p->proj_w = t[k++].data;
	p->proj_b = t[k++].data;
	p->embed_w = t[k++].data;
	for (int l = 0; l < c->layers; l++) {
		p->w_ih[l] = t[k++].data;
		p->w_hh[l] = t[k++].data;
		p->b_ih[l] = t[k++].data;
		p->b_hh[l] = t[k++].data;
	}
	p->lin_w = t[k++].data;
	p->lin_b = t[k++].data;
	assert(k == n);
}

cap_decoder *cap_decoder_new(const cap_decoder_config *c)
{
	if (cap_decoder_config_check(c) < 0)
		return NULL;
	cap_decoder *m = cap_xcalloc(1, sizeof *m);
	m->cfg = *c;
	m->n_params = cap_decoder_param_count(c);
	m->data = cap_xcalloc(m->n_params, sizeof(float));
	cap_decoder_views(c, m->data, &m->p);
	return m;
}

void cap_decoder_init_random(cap_decoder *m, cap_rng *rng)
{
	cap_decoder_tensor t[CAP_DECODER_MAX_TENSORS];
	int n = cap_decoder_tensors(&m->cfg, m->data, t);
	for (int i = 0; i < n; i++) {
		if (!strcmp(t[i].name, "embed.weight")) {
			for (size_t j = 0; j < t[i].numel; j++)
				t[i].data[j] = (float)cap_rng_normal(rng);
			continue;
		}
		/* Linear: kaiming_uniform(a=sqrt 5) gives bound 1/sqrt(fan_in), and so does its bias;
		 * LSTM: every tensor uniform(+-1/sqrt(H)). */
		int fan = !strncmp(t[i].name, "lstm.", 5) ? m->cfg.hidden
		        : !strncmp(t[i].name, "proj.", 5) ? m->cfg.feat_dim : m->cfg.hidden;
		float bound = 1.0f / sqrtf((float)fan);
		for (size_t j = 0; j < t[i].numel; j++)
			t[i].data[j] = (2 * cap_rng_uniform(rng) - 1) * bound;
	}
}

void cap_decoder_free(cap_decoder *m)
{
	if (!m)
		return;
	for (size_t i = 0; m->meta && m->meta[i]; i++)
		free(m->meta[i]);
	free(m->meta);
	free(m->data);
	free(m->wt);
	free(m);
}

void cap_decoder_prepare(cap_decoder *m)
{
	const cap_decoder_config *c = &m->cfg;
	size_t E = c->embed, H = c->hidden, V = c->vocab, n = H * V;
	for (int l = 0; l < c->layers; l++)
		n += 4 * H * ((l ? H : E) + H);
	if (!m->wt)
		m->wt = cap_xmalloc(sizeof(float) * n);
	float *p = m->wt;
	for (int l = 0; l < c->layers; l++) {
		int in = l ? (int)H : (int)E;
		m->wt_ih[l] = p;
		transpose(m->p.w_ih[l], 4 * (int)H, in, p);
		p += 4 * H * in;
		m->wt_hh[l] = p;
		transpose(m->p.w_hh[l], 4 * (int)H, (int)H, p);
		p += 4 * H * H;
	}
	m->wt_lin = p;
	transpose(m->p.lin_w, (int)V, (int)H, p);
}

const char *cap_decoder_meta(const cap_decoder *m, const char *key)
{
	for (size_t i = 0; m->meta && m->meta[i]; i += 2)
		if (!strcmp(m->meta[i], key))
			return m->meta[i + 1];
	return NULL;
}

void cap_decoder_set_meta(cap_decoder *m, const char *key, const char *value)
{
	size_t n = 0;
	for (; m->meta && m->meta[n]; n += 2)
		if (!strcmp(m->meta[n], key)) {
			free(m->meta[n + 1]);
			m->meta[n + 1] = cap_xstrdup(value);
			return;
		}
	m->meta = cap_xrealloc(m->meta, sizeof(char *) * (n + 3));
	m->meta[n] = cap_xstrdup(key);
	m->meta[n + 1] = cap_xstrdup(value);
	m->meta[n + 2] = NULL;
}

/* Metadata keys a model file may carry that are kept on load. */
static const char *const meta_keys[] = {
	"format", "feature_dim", "embed", "hidden", "layers", "vocab_size", "dropout", "tokenizer",
	"tokenizer_json", "history", "created", "tool", "features", "captions", "seed", NULL
};

cap_decoder *cap_decoder_load(const char *path)
{
	cap_tensors *ts = cap_tensors_load(path);
	if (!ts)
		return NULL;
	cap_decoder *m = NULL;
	const cap_tensor *pw = cap_tensors_find(ts, "proj.weight"), *ew = cap_tensors_find(ts, "embed.weight");
	const cap_tensor *hh = cap_tensors_find(ts, "lstm.weight_hh_l0");
	if (!pw || !ew || !hh || pw->ndim != 2 || ew->ndim != 2 || hh->ndim != 2) {
		cap_fail("%s: not a decoder model (needs 2-d proj.weight, embed.weight, lstm.weight_hh_l0)", path);
		goto out;
	}
	cap_decoder_config c = { 0 };
	if (pw->shape[0] > INT32_MAX || pw->shape[1] > INT32_MAX || ew->shape[0] > INT32_MAX ||
	    hh->shape[1] > INT32_MAX) {
		cap_fail("%s: tensor sizes too large", path);
		goto out;
	}
	c.embed = (int)pw->shape[0];
	c.feat_dim = (int)pw->shape[1];
	c.vocab = (int)ew->shape[0];
	c.hidden = (int)hh->shape[1];
	while (c.layers < CAP_DECODER_MAX_LAYERS) {
		char nm[32];
		snprintf(nm, sizeof nm, "lstm.weight_ih_l%d", c.layers);
		if (!cap_tensors_find(ts, nm))
			break;
		c.layers++;
	}
	if (cap_decoder_config_check(&c) < 0) {
		cap_fail_prefix("%s", path);
		goto out;
	}
	m = cap_decoder_new(&c);
	cap_decoder_tensor t[CAP_DECODER_MAX_TENSORS];
	int n = cap_decoder_tensors(&c, m->data, t);
	if ((size_t)n != cap_tensors_count(ts)) {
		cap_fail("%s: expected %d decoder tensors, found %zu", path, n, cap_tensors_count(ts));
		goto fail;
	}
	for (int i = 0; i < n; i++) {
		const cap_tensor *x;
		if (cap_tensors_expect(ts, t[i].name, t[i].ndim, t[i].shape) < 0 ||
		    !(x = cap_tensors_find(ts, t[i].name)) || cap_tensor_to_f32(x, t[i].data, t[i].numel) < 0) {
			cap_fail_prefix("%s", path);
			goto fail;
		}
	}
	cap_decoder_prepare(m);
	for (int i = 0; meta_keys[i]; i++) {
		const char *v = cap_tensors_meta(ts, meta_keys[i]);
		if (v)
			cap_decoder_set_meta(m, meta_keys[i], v);
	}
	/* When the file states its sizes they must agree with the tensors. */
	const char *vs = cap_decoder_meta(m, "vocab_size"), *fd = cap_decoder_meta(m, "feature_dim");
	if ((vs && atol(vs) != c.vocab) || (fd && atol(fd) != c.feat_dim)) {
		cap_fail("%s: metadata vocab_size/feature_dim disagree with the tensor shapes", path);
		goto fail;
	}
	goto out;
fail:
	cap_decoder_free(m);
	m = NULL;
out:
	cap_tensors_free(ts);
	return m;
}

int cap_decoder_save(const cap_decoder *m, const char *path, const char *const *meta)
{
	cap_decoder_tensor t[CAP_DECODER_MAX_TENSORS];
	cap_tensor_out o[CAP_DECODER_MAX_TENSORS];
	int n = cap_decoder_tensors(&m->cfg, m->data, t);
	for (int i = 0; i < n; i++) {
		memset(&o[i], 0, sizeof o[i]);
		o[i].name = t[i].name;
		o[i].ndim = t[i].ndim;
		o[i].shape[0] = t[i].shape[0];
		o[i].shape[1] = t[i].shape[1];
		o[i].data = t[i].data;
	}
	return cap_safetensors_write(path, o, (size_t)n, meta);
}

/* ---- inference ---- */

cap_decoder_state *cap_decoder_state_new(const cap_decoder *m, int capacity)
{
	assert(capacity > 0);
	cap_decoder_state *s = cap_xcalloc(1, sizeof *s);
	size_t L = m->cfg.layers, H = m->cfg.hidden, E = m->cfg.embed, cap = capacity;
	s->capacity = capacity;
	s->layers = m->cfg.layers;
	s->hidden = m->cfg.hidden;
	s->vocab = m->cfg.vocab;
	s->embed = m->cfg.embed;
	s->h = cap_xcalloc(L * cap * H, sizeof(float));
	s->c = cap_xcalloc(L * cap * H, sizeof(float));
	s->x = cap_xcalloc(cap * (E > H ? E : H), sizeof(float));
	s->gates = cap_xcalloc(cap * 4 * H, sizeof(float));
	s->tmp = cap_xcalloc(2 * L * cap * H, sizeof(float));
	return s;
}

void cap_decoder_state_free(cap_decoder_state *s)
{
	if (!s)
		return;
	free(s->h); free(s->c); free(s->x); free(s->gates); free(s->tmp);
	free(s);
}

/* One step of every layer on the input rows in s->x (B, E). */
static void state_advance(const cap_decoder *m, cap_decoder_state *s, int first)
{
	int B = s->batch, H = m->cfg.hidden, E = m->cfg.embed;
	for (int l = 0; l < m->cfg.layers; l++) {
		int in = l ? H : E;
		float *h = s->h + (size_t)l * s->capacity * H, *c = s->c + (size_t)l * s->capacity * H;
		const float *bi = m->p.b_ih[l], *bh = m->p.b_hh[l];
		for (int b = 0; b < B; b++)
			for (int j = 0; j < 4 * H; j++)
				s->gates[(size_t)b * 4 * H + j] = bi[j] + bh[j];
		if (m->wt) {
			cap_sgemm(0, 0, B, 4 * H, in, 1, s->x, in, m->wt_ih[l], 4 * H, 1, s->gates, 4 * H);
			if (!first)
				cap_sgemm(0, 0, B, 4 * H, H, 1, h, H, m->wt_hh[l], 4 * H, 1, s->gates, 4 * H);
		} else {
			cap_sgemm(0, 1, B, 4 * H, in, 1, s->x, in, m->p.w_ih[l], in, 1, s->gates, 4 * H);
			if (!first)
				cap_sgemm(0, 1, B, 4 * H, H, 1, h, H, m->p.w_hh[l], H, 1, s->gates, 4 * H);
		}
		cap_lstm_cell_rows(s->gates, first ? NULL : c, c, NULL, h, B, H);
		memcpy(s->x, h, sizeof(float) * B * H);  /* input of the next layer */
	}
}

void cap_decoder_start(const cap_decoder *m, cap_decoder_state *s, const float *feats, int batch)
{
	assert(batch > 0 && batch <= s->capacity);
	int E = m->cfg.embed;
	s->batch = batch;
	for (int b = 0; b < batch; b++)
		memcpy(s->x + (size_t)b * E, m->p.proj_b, sizeof(float) * E);
	cap_sgemm(0, 1, batch, E, m->cfg.feat_dim, 1, feats, m->cfg.feat_dim, m->p.proj_w,
	          m->cfg.feat_dim, 1, s->x, E);
	state_advance(m, s, 1);
}

/* In place log-softmax of each row of x (rows, n). */
static void log_softmax_rows(float *x, int rows, int n)
{
	for (int r = 0; r < rows; r++) {
		float *v = x + (size_t)r * n, mx = -INFINITY;
		for (int j = 0; j < n; j++)
			mx = v[j] > mx ? v[j] : mx;
		double s = 0;
		for (int j = 0; j < n; j++)
			s += exp((double)v[j] - mx);
		float lse = mx + (float)log(s);
		for (int j = 0; j < n; j++)
			v[j] -= lse;
	}
}

void cap_decoder_step(const cap_decoder *m, cap_decoder_state *s, const uint32_t *ids, float *logp)
{
	int B = s->batch, E = m->cfg.embed, H = m->cfg.hidden, V = m->cfg.vocab;
	for (int b = 0; b < B; b++) {
		assert(ids[b] < (uint32_t)V);
		memcpy(s->x + (size_t)b * E, m->p.embed_w + (size_t)ids[b] * E, sizeof(float) * E);
	}
	state_advance(m, s, 0);
	if (!logp)
		return;
	const float *h = s->h + (size_t)(m->cfg.layers - 1) * s->capacity * H;
	for (int b = 0; b < B; b++)
		memcpy(logp + (size_t)b * V, m->p.lin_b, sizeof(float) * V);
	if (m->wt)
		cap_sgemm(0, 0, B, V, H, 1, h, H, m->wt_lin, V, 1, logp, V);
	else
		cap_sgemm(0, 1, B, V, H, 1, h, H, m->p.lin_w, H, 1, logp, V);
	log_softmax_rows(logp, B, V);
}

void cap_decoder_state_gather(cap_decoder_state *dst, const cap_decoder_state *src,
                              const int *idx, int n)
{
	assert(n >= 0 && n <= dst->capacity && dst->hidden == src->hidden && dst->layers == src->layers);
	size_t H = src->hidden;
	/* Through dst->tmp so that dst may be src. */
	for (int l = 0; l < src->layers; l++)
		for (int i = 0; i < n; i++) {
			assert(idx[i] >= 0 && idx[i] < src->batch);
			size_t from = ((size_t)l * src->capacity + idx[i]) * H, to = ((size_t)l * n + i) * H;
			memcpy(dst->tmp + to, src->h + from, sizeof(float) * H);
			memcpy(dst->tmp + (size_t)src->layers * n * H + to, src->c + from, sizeof(float) * H);
		}
	for (int l = 0; l < dst->layers; l++)
		for (int i = 0; i < n; i++) {
			size_t from = ((size_t)l * n + i) * H, to = ((size_t)l * dst->capacity + i) * H;
			memcpy(dst->h + to, dst->tmp + from, sizeof(float) * H);
			memcpy(dst->c + to, dst->tmp + (size_t)dst->layers * n * H + from, sizeof(float) * H);
		}
	dst->batch = n;
}

/* ---- training ---- */

typedef struct layer_buf {
	float *g;      /* (N, 4H) gate activations i, f, g, o */
	float *c;      /* (N, H) cell */
	float *tc;     /* (N, H) tanh(cell) */
	float *h;      /* (N, H) output */
	float *mask;   /* (N, H) dropout mask (0 or 1/(1-p)), when dropout is on */
	float *hd;     /* (N, H) output after dropout (== h without dropout) */
} layer_buf;

struct cap_decoder_work {
	size_t cap_n, cap_b, cap_t;         /* capacities: tokens, captions, steps */
	int *bs, *off;                      /* (T) captions per step, (T+1) first row of a step */
	uint32_t *target;                   /* (N) */
	float *feat;                        /* (B, D) */
	float *x0;                          /* (N, E) layer 0 input */
	layer_buf lay[CAP_DECODER_MAX_LAYERS];
	float *logits;                      /* (N, V), then d loss / d logits */
	float *dg;                          /* (N, 4H) */
	float *dh;                          /* (N, H) gradient of a layer's (dropped) output */
	float *dx;                          /* (N, max(E, H)) gradient of a layer's input */
	float *hprev;                       /* (N, H) h of the previous step per row */
	float *dh_rec, *dc_run;             /* (B, H) */
	float *bias;                        /* (4H) b_ih + b_hh */
	float *whh_t;                       /* (H, 4H) W_hh transposed: oneDNN runs the small
	                                       per-step GEMM several times faster without a
	                                       transposed B operand */
};

cap_decoder_work *cap_decoder_work_new(const cap_decoder *m)
{
	(void)m;
	return cap_xcalloc(1, sizeof(cap_decoder_work));
}

static void work_release(cap_decoder_work *w)
{
	free(w->bs); free(w->off); free(w->target); free(w->feat); free(w->x0);
	for (int l = 0; l < CAP_DECODER_MAX_LAYERS; l++) {
		free(w->lay[l].g); free(w->lay[l].c); free(w->lay[l].tc); free(w->lay[l].h);
		free(w->lay[l].mask); free(w->lay[l].hd);
	}
	free(w->logits); free(w->dg); free(w->dh); free(w->dx); free(w->hprev);
	free(w->dh_rec); free(w->dc_run); free(w->bias); free(w->whh_t);
}

void cap_decoder_work_free(cap_decoder_work *w)
{
	if (!w)
		return;
	work_release(w);
	free(w);
}

static float *fbuf(size_t a, size_t b)
{
	size_t n;
	if (cap_mul_overflow(a, b, &n) || cap_mul_overflow(n, sizeof(float), &n))
		abort();
	return cap_xmalloc(n ? n : 1);
}

/* Makes sure the buffers hold N tokens, B captions, T steps. */
static void work_reserve(cap_decoder_work *w, const cap_decoder_config *c, size_t N, size_t B, size_t T)
{
	if (N <= w->cap_n && B <= w->cap_b && T <= w->cap_t)
		return;
	work_release(w);
	memset(w, 0, sizeof *w);
	/* Grow with slack so that a few long batches do not reallocate every time. */
	N += N / 4; B += B / 4; T += T / 4;
	size_t E = c->embed, H = c->hidden, V = c->vocab, D = c->feat_dim, EH = E > H ? E : H;
	w->cap_n = N; w->cap_b = B; w->cap_t = T;
	w->bs = cap_xmalloc(sizeof(int) * T);
	w->off = cap_xmalloc(sizeof(int) * (T + 1));
	w->target = cap_xmalloc(sizeof(uint32_t) * N);
	w->feat = fbuf(B, D);
	w->x0 = fbuf(N, E);
	for (int l = 0; l < c->layers; l++) {
		w->lay[l].g = fbuf(N, 4 * H);
		w->lay[l].c = fbuf(N, H);
		w->lay[l].tc = fbuf(N, H);
		w->lay[l].h = fbuf(N, H);
		w->lay[l].mask = fbuf(N, H);
		w->lay[l].hd = fbuf(N, H);
	}
	w->logits = fbuf(N, V);
	w->dg = fbuf(N, 4 * H);
	w->dh = fbuf(N, H);
	w->dx = fbuf(N, EH);
	w->hprev = fbuf(N, H);
	w->dh_rec = fbuf(B, H);
	w->dc_run = fbuf(B, H);
	w->bias = fbuf(4, H);
	w->whh_t = fbuf(4 * H, H);
}

static void colsum(const float *x, int rows, int n, float *out)
{
	/* Accumulate in double: the sums run over up to thousands of rows. */
	double *acc = cap_xcalloc((size_t)n, sizeof(double));
	for (int r = 0; r < rows; r++)
		for (int j = 0; j < n; j++)
			acc[j] += x[(size_t)r * n + j];
	for (int j = 0; j < n; j++)
		out[j] = (float)acc[j];
	free(acc);
}

double cap_decoder_loss(cap_decoder_work *w, const cap_decoder *m, const cap_decoder_batch *bt,
                        float dropout, cap_rng *rng, float *grad, size_t *tokens)
{
	const cap_decoder_config *c = &m->cfg;
	const cap_decoder_params *P = &m->p;
	int B = bt->batch, T = bt->len[0], E = c->embed, H = c->hidden, V = c->vocab, D = c->feat_dim;
	int L = c->layers, H4 = 4 * H;
	assert(B > 0 && T >= 2);
	size_t Nz = 0;
	for (int b = 0; b < B; b++) {
		assert(bt->len[b] >= 2 && bt->len[b] <= T && (b == 0 || bt->len[b] <= bt->len[b - 1]));
		Nz += (size_t)bt->len[b];
	}
	assert((double)Nz * (V > H4 ? V : H4) < 2147483647.0);
	int N = (int)Nz;
	work_reserve(w, c, Nz, (size_t)B, (size_t)T);

	/* Packing: step t holds captions 0..bs[t]-1 in rows off[t].. */
	int *bs = w->bs, *off = w->off;
	off[0] = 0;
	for (int t = 0; t < T; t++) {
		int n = 0;
		while (n < B && bt->len[n] > t)
			n++;
		bs[t] = n;
		off[t + 1] = off[t] + n;
	}
	assert(off[T] == N);

	/* Layer 0 input: proj(feature) at step 0, embed(ids[t-1]) after; targets ids[t]. */
	for (int b = 0; b < B; b++) {
		memcpy(w->feat + (size_t)b * D, bt->feat[b], sizeof(float) * D);
		memcpy(w->x0 + (size_t)b * E, P->proj_b, sizeof(float) * E);
	}
	cap_sgemm(0, 1, B, E, D, 1, w->feat, D, P->proj_w, D, 1, w->x0, E);
	for (int t = 0; t < T; t++)
		for (int b = 0; b < bs[t]; b++) {
			size_t r = (size_t)off[t] + b;
			w->target[r] = bt->ids[b][t];
			assert(bt->ids[b][t] < (uint32_t)V);
			if (t > 0)
				memcpy(w->x0 + r * E, P->embed_w + (size_t)bt->ids[b][t - 1] * E, sizeof(float) * E);
		}

	/* LSTM layers. */
	const float *x = w->x0;
	int in = E;
	for (int l = 0; l < L; l++) {
		layer_buf *lb = &w->lay[l];
		for (int j = 0; j < H4; j++)
			w->bias[j] = P->b_ih[l][j] + P->b_hh[l][j];
		for (int r = 0; r < N; r++)
			memcpy(lb->g + (size_t)r * H4, w->bias, sizeof(float) * H4);
		cap_sgemm(0, 1, N, H4, in, 1, x, in, P->w_ih[l], in, 1, lb->g, H4);  /* (N, 4H) */
		transpose(P->w_hh[l], H4, H, w->whh_t);
		cap_gemm_serial_begin();
		for (int t = 0; t < T; t++) {
			int n = bs[t];
			size_t r = off[t], rp = t ? off[t - 1] : 0;
			if (t > 0)
				cap_sgemm(0, 0, n, H4, H, 1, lb->h + rp * H, H, w->whh_t, H4, 1, lb->g + r * H4, H4);
			cap_lstm_cell_rows(lb->g + r * H4, t ? lb->c + rp * H : NULL, lb->c + r * H,
			                   lb->tc + r * H, lb->h + r * H, n, H);
		}
		cap_gemm_serial_end();
		if (dropout > 0) {
			float keep = 1.0f - dropout, scale = 1.0f / keep;
			for (size_t i = 0; i < (size_t)N * H; i++) {
				lb->mask[i] = cap_rng_uniform(rng) < keep ? scale : 0.0f;
				lb->hd[i] = lb->h[i] * lb->mask[i];
			}
			x = lb->hd;
		} else {
			x = lb->h;
		}
		in = H;
	}

	/* Output layer over the real tokens, fused with softmax cross-entropy. */
	float *lg = w->logits;
	for (int r = 0; r < N; r++)
		memcpy(lg + (size_t)r * V, P->lin_b, sizeof(float) * V);
	cap_sgemm(0, 1, N, V, H, 1, x, H, P->lin_w, H, 1, lg, V);
	double loss = cap_softmax_xent_rows(lg, w->target, N, V, grad ? 1.0f / (float)N : 0) / N;
	if (tokens)
		*tokens = (size_t)N;
	if (!grad)
		return loss;

	/* ---- backward ---- */
	cap_decoder_params G;
	cap_decoder_views(c, grad, &G);
	cap_sgemm(1, 0, V, H, N, 1, lg, V, x, H, 0, G.lin_w, H);   /* (V, H) = dlogits^T x */
	colsum(lg, N, V, G.lin_b);
	cap_sgemm(0, 0, N, H, V, 1, lg, V, P->lin_w, H, 0, w->dh, H);  /* (N, H) */
	for (int l = L - 1; l >= 0; l--) {
		layer_buf *lb = &w->lay[l];
		int inl = l ? H : E;
		const float *xin = l == 0 ? w->x0 : (dropout > 0 ? w->lay[l - 1].hd : w->lay[l - 1].h);
		if (dropout > 0)
			for (size_t i = 0; i < (size_t)N * H; i++)
				w->dh[i] *= lb->mask[i];
		memset(w->dh_rec, 0, sizeof(float) * B * H);
		memset(w->dc_run, 0, sizeof(float) * B * H);
		cap_gemm_serial_begin();
		for (int t = T - 1; t >= 0; t--) {
			int n = bs[t];
			size_t r = off[t], rp = t ? off[t - 1] : 0;
			for (int b = 0; b < n; b++) {
				const float *a = lb->g + (r + b) * H4, *tc = lb->tc + (r + b) * H;
				const float *cp = t ? lb->c + (rp + b) * H : NULL;
				const float *dho = w->dh + (r + b) * H;
				float *dhr = w->dh_rec + (size_t)b * H, *dcr = w->dc_run + (size_t)b * H;
				float *dg = w->dg + (r + b) * H4;
				for (int j = 0; j < H; j++) {
					float i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j];
					float dh = dho[j] + dhr[j];
					float dc = dcr[j] + dh * o * (1 - tc[j] * tc[j]);
					float cprev = cp ? cp[j] : 0.0f;
					dg[j] = dc * g * i * (1 - i);
					dg[H + j] = dc * cprev * f * (1 - f);
					dg[2 * H + j] = dc * i * (1 - g * g);
					dg[3 * H + j] = dh * tc[j] * o * (1 - o);
					dcr[j] = dc * f;
				}
			}
			if (t > 0)  /* (n, H) = dG_t W_hh: gradient into h of the previous step */
				cap_sgemm(0, 0, n, H, H4, 1, w->dg + r * H4, H4, P->w_hh[l], H, 0, w->dh_rec, H);
		}
		cap_gemm_serial_end();
		/* Weight gradients as whole-batch GEMMs. h of the previous step for each row t >= 1: */
		for (int t = 1; t < T; t++)
			memcpy(w->hprev + (size_t)off[t] * H, lb->h + (size_t)off[t - 1] * H, sizeof(float) * bs[t] * H);
		int r1 = off[1 < T ? 1 : T];
		cap_sgemm(1, 0, H4, H, N - r1, 1, w->dg + (size_t)r1 * H4, H4, w->hprev + (size_t)r1 * H, H,
		          0, G.w_hh[l], H);
		cap_sgemm(1, 0, H4, inl, N, 1, w->dg, H4, xin, inl, 0, G.w_ih[l], inl);
		colsum(w->dg, N, H4, G.b_ih[l]);
		memcpy(G.b_hh[l], G.b_ih[l], sizeof(float) * H4);
		/* Gradient of the layer input: into the layer below (dh) or the embeddings (dx). */
		cap_sgemm(0, 0, N, inl, H4, 1, w->dg, H4, P->w_ih[l], inl, 0, l ? w->dh : w->dx, inl);
	}
	/* dx (N, E): rows of step 0 go to proj, the others to the embedding rows of their words. */
	cap_sgemm(1, 0, E, D, B, 1, w->dx, E, w->feat, D, 0, G.proj_w, D);
	colsum(w->dx, B, E, G.proj_b);
	memset(G.embed_w, 0, sizeof(float) * V * E);
	for (int t = 1; t < T; t++)
		for (int b = 0; b < bs[t]; b++) {
			float *ge = G.embed_w + (size_t)bt->ids[b][t - 1] * E;
			const float *d = w->dx + ((size_t)off[t] + b) * E;
			for (int j = 0; j < E; j++)
				ge[j] += d[j];
		}
	return loss;
}

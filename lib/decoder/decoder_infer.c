/* The decoder's inference: one LSTM step at a time for a batch of hypotheses (see decoder.h),
 * every product and kernel through the model's backend. */
#include "decoder/decoder.h"
#include "core/error.h"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* a state is small next to the model: running out of memory for it is fatal */
#define dev_alloc(ops, n, size) cap_ops_xalloc(ops, n, 1, size, "decoder state")

cap_decoder_state *cap_decoder_state_new(const cap_decoder *m, int capacity)
{
	assert(capacity > 0 && m->dev.ops);
	const cap_ops *ops = m->dev.ops;
	cap_decoder_state *s = cap_xcalloc(1, sizeof *s);
	size_t L = m->cfg.layers, H = m->cfg.hidden, E = m->cfg.embed, cap = capacity;
	s->ops = ops;
	s->capacity = capacity;
	s->layers = m->cfg.layers;
	s->hidden = m->cfg.hidden;
	s->vocab = m->cfg.vocab;
	s->embed = m->cfg.embed;
	s->feat_dim = m->cfg.feat_dim;
	s->h = dev_alloc(ops, L * cap * H, sizeof(float));
	s->c = dev_alloc(ops, L * cap * H, sizeof(float));
	s->x = dev_alloc(ops, cap * (E > H ? E : H), sizeof(float));
	s->gates = dev_alloc(ops, cap * 4 * H, sizeof(float));
	s->h2 = dev_alloc(ops, L * cap * H, sizeof(float));
	s->c2 = dev_alloc(ops, L * cap * H, sizeof(float));
	s->feat = dev_alloc(ops, cap * (size_t)m->cfg.feat_dim, sizeof(float));
	if (!ops->host_memory)
		s->logits = dev_alloc(ops, cap * (size_t)m->cfg.vocab, sizeof(float));
	s->ids = dev_alloc(ops, cap, sizeof(uint32_t));
	s->idx = dev_alloc(ops, cap, sizeof(int32_t));
	return s;
}

void cap_decoder_state_free(cap_decoder_state *s)
{
	if (!s)
		return;
	const cap_ops *ops = s->ops;
	ops->free(s->h); ops->free(s->c); ops->free(s->x); ops->free(s->gates);
	ops->free(s->h2); ops->free(s->c2);
	ops->free(s->feat); ops->free(s->ids); ops->free(s->idx);
	if (s->logits)
		ops->free(s->logits);
	if (s->topk)
		ops->free(s->topk);
	if (s->gate_table)
		ops->free(s->gate_table);
	free(s);
}

/* One step of every layer on the input rows in s->x (B, E), or with layer 0's input part of
 * the gates already in s->gates (gates0). */
static void state_advance(const cap_decoder *m, cap_decoder_state *s, int first, int gates0)
{
	const cap_ops *ops = s->ops;
	const cap_decoder_dev *d = &m->dev;
	int B = s->batch, H = m->cfg.hidden;
	for (int l = 0; l < m->cfg.layers; l++) {
		float *h = s->h + (size_t)l * s->capacity * H, *c = s->c + (size_t)l * s->capacity * H;
		/* (B, 4H) = x W_ih^T + b_ih + b_hh */
		if (l > 0 || !gates0)
			ops->matmul_bias(s->x, B, d->w_ih[l], d->p.b_ih[l], d->p.b_hh[l], s->gates);
		if (!first)
			ops->matmul(h, B, d->w_hh[l], 1, 1, s->gates);  /* += h W_hh^T */
		ops->lstm_cell_forward(s->gates, first ? NULL : c, c, NULL, h, B, H);
		ops->copy(s->x, h, sizeof(float) * B * H);         /* input of the next layer */
	}
}

void cap_decoder_start(const cap_decoder *m, cap_decoder_state *s, const float *feats, int batch)
{
	assert(batch > 0 && batch <= s->capacity);
	const cap_ops *ops = s->ops;
	int D = m->cfg.feat_dim;
	s->batch = batch;
	ops->upload(s->feat, feats, sizeof(float) * (size_t)batch * D);
	ops->matmul_bias(s->feat, batch, m->dev.proj, m->dev.p.proj_b, NULL, s->x);   /* (B, E) */
	state_advance(m, s, 1, 0);
}

static int gate_table_wanted(void)
{
	static int on = -1;
	if (on < 0) {
		const char *e = getenv("CAP_GATE_TABLE");
		on = !(e && !strcmp(e, "0"));
	}
	return on;
}

/* s->gate_table (V, 4H) = embed W_ih^T + b_ih + b_hh of layer 0, in the model's precision. */
static void gate_table_build(const cap_decoder *m, cap_decoder_state *s)
{
	const cap_ops *ops = s->ops;
	int V = m->cfg.vocab, H4 = 4 * m->cfg.hidden;
	s->gate_table = dev_alloc(ops, (size_t)V * H4, sizeof(float));
	/* the product a step would make, on every word at once */
	ops->matmul_bias(m->dev.p.embed_w, V, m->dev.w_ih[0], m->dev.p.b_ih[0], m->dev.p.b_hh[0], s->gate_table);
}

/* lg (B, V) = log_softmax(h W_lin^T + b_lin) of the top layer's rows, in backend memory. */
static void log_probs(const cap_decoder *m, cap_decoder_state *s, float *lg)
{
	const cap_ops *ops = s->ops;
	int B = s->batch, H = m->cfg.hidden, V = m->cfg.vocab;
	const float *h = s->h + (size_t)(m->cfg.layers - 1) * s->capacity * H;
	ops->matmul_bias(h, B, m->dev.lin, m->dev.p.lin_b, NULL, lg);
	ops->log_softmax_rows(lg, B, V);
}

void cap_decoder_step(const cap_decoder *m, cap_decoder_state *s, const uint32_t *ids, float *logp)
{
	const cap_ops *ops = s->ops;
	int B = s->batch, E = m->cfg.embed, V = m->cfg.vocab;
	for (int b = 0; b < B; b++)
		assert(ids[b] < (uint32_t)V);
	ops->upload(s->ids, ids, sizeof(uint32_t) * B);
	if (!s->gate_table && s->stepped >= (size_t)V && gate_table_wanted())
		gate_table_build(m, s);
	s->stepped += (size_t)B;
	if (s->gate_table)
		ops->embed_gather(s->gates, s->gate_table, s->ids, B, 4 * m->cfg.hidden);
	else
		ops->embed_gather(s->x, m->dev.p.embed_w, s->ids, B, E);
	state_advance(m, s, 0, s->gate_table != NULL);
	if (!logp)
		return;
	/* On host-memory backends the caller's array is backend memory already. */
	float *lg = ops->host_memory ? logp : s->logits;
	log_probs(m, s, lg);
	ops->download(logp, lg, sizeof(float) * (size_t)B * V);
}

void cap_decoder_step_topk(const cap_decoder *m, cap_decoder_state *s, const uint32_t *ids, int k,
                           int ex0, int ex1, float *vals, int32_t *idx)
{
	assert(k >= 1 && k <= CAP_TOPK_MAX);
	const cap_ops *ops = s->ops;
	int B = s->batch, V = m->cfg.vocab;
	size_t cap = (size_t)s->capacity;
	cap_decoder_step(m, s, ids, NULL);
	if (!s->logits)
		s->logits = dev_alloc(ops, cap * V, sizeof(float));
	if (!s->topk)
		s->topk = dev_alloc(ops, cap * CAP_TOPK_MAX, sizeof(float) + sizeof(int32_t));
	float *tv = s->topk;
	int32_t *ti = (int32_t *)(tv + cap * CAP_TOPK_MAX);
	log_probs(m, s, s->logits);
	ops->row_topk(s->logits, B, V, k, ex0, ex1, tv, ti);
	ops->download(vals, tv, sizeof(float) * (size_t)B * k);
	ops->download(idx, ti, sizeof(int32_t) * (size_t)B * k);
}

void cap_decoder_state_gather(cap_decoder_state *dst, const cap_decoder_state *src,
                              const int *idx, int n)
{
	assert(n >= 0 && n <= dst->capacity && dst->hidden == src->hidden && dst->layers == src->layers);
	assert(dst->ops == src->ops);
	const cap_ops *ops = dst->ops;
	size_t H = src->hidden, L = src->layers;
	for (int i = 0; i < n; i++)
		assert(idx[i] >= 0 && idx[i] < src->batch);
	if (n == 0) {
		dst->batch = 0;
		return;
	}
	ops->upload(dst->idx, idx, sizeof(int32_t) * n);
	/* Into dst's spare buffers, which then trade places with h and c: dst may be src, and no
	 * copy back is needed (beam search gathers every step). */
	size_t dcap = dst->capacity, scap = src->capacity;
	for (size_t l = 0; l < L; l++) {
		ops->row_gather(dst->h2 + l * dcap * H, src->h + l * scap * H, dst->idx, n, (int)H);
		ops->row_gather(dst->c2 + l * dcap * H, src->c + l * scap * H, dst->idx, n, (int)H);
	}
	float *t = dst->h; dst->h = dst->h2; dst->h2 = t;
	t = dst->c; dst->c = dst->c2; dst->c2 = t;
	dst->batch = n;
}

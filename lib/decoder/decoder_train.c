/* The decoder's training pass: forward and backward over a batch with teacher forcing (see
 * decoder.h), every product and kernel through the model's backend.
 *
 * Training works on packed sequences: captions sorted by length descending, rows time-major, so
 * step t holds the first bs[t] captions and every per-step matrix is a contiguous block of rows.
 * That lets the input projection of all steps, the output layer over the real tokens only, and
 * every weight gradient be one big GEMM; only the recurrent h x W_hh product runs per step.
 *
 * On a backend that records runs of ops (CUDA graphs, ops.h), passes are padded instead: every
 * caption runs the batch's T steps, so that all batches of the same (captions, steps) issue the
 * same ops and one recording serves them all (see loss_pass). */
#include "decoder/decoder.h"
#include "core/error.h"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct layer_buf {
	float *g;      /* (N, 4H) gate activations i, f, g, o */
	float *c;      /* (N, H) cell */
	float *tc;     /* (N, H) tanh(cell) */
	float *h;      /* (N, H) output */
	float *mask;   /* (N, H) dropout mask (0 or 1/(1-p)), when dropout is on */
	float *hd;     /* (N, H) output after dropout (== h without dropout) */
} layer_buf;

struct cap_decoder_work {
	const cap_ops *ops;
	size_t cap_n, cap_b, cap_t;         /* capacities: tokens, captions, steps */
	/* host */
	int *bs, *off;                      /* (T) captions per step, (T+1) first row of a step */
	int *goff;                          /* (T) first row of a step in a share's global batch */
	uint32_t *target_h;                 /* (N) the word each row predicts */
	uint32_t *input_h;                  /* (N) the word each row reads (rows of steps >= 1) */
	int32_t *prev_h;                    /* (N) rows of steps >= 1: the row of the previous step */
	double *loss_h;                     /* (N) */
	/* backend memory */
	uint32_t *target, *input;           /* (N) */
	int32_t *prev;                      /* (N) */
	int32_t *feat_row;                  /* (B) */
	double *loss;                       /* (N) */
	float *feat;                        /* (B, D) */
	float *x0;                          /* (N, E) layer 0 input */
	layer_buf lay[CAP_DECODER_MAX_LAYERS];
	float *logits;                      /* (N, V), then d loss / d logits */
	float *dg;                          /* (N, 4H) */
	float *dh;                          /* (N, H) gradient of a layer's (dropped) output */
	float *dx;                          /* (N, max(E, H)) gradient of a layer's input */
	float *hprev;                       /* (N, H) row i: h of the previous step of row B + i (packed) */
	float *dh_rec, *dc_run;             /* (B, H) */
	cap_weight *whh[CAP_DECODER_MAX_LAYERS];  /* W_hh prepared for the recurrence */
	/* W_ih and the output layer prepared too: their forward products take the biases in the
	 * product (one write of the (N, 4H) gates and (N, V) logits instead of broadcast rows, a
	 * read and a write), and in bf16 each is converted once a step, not once a product; the
	 * image projection likewise (it was a plain GEMM on W as stored, rounded to bf16 at every
	 * pass, behind a broadcast of its bias) */
	cap_weight *wih[CAP_DECODER_MAX_LAYERS], *lin, *proj;
	int layers;
	int weights_fresh;   /* cap_decoder_work_adam refreshed them: the next pass takes them as they are */
	/* Padded passes (see cap_decoder_work_set_padded): every caption of a batch takes the first
	 * caption's T steps, so that a pass's ops depend on (B, T) alone and the backend can record
	 * them once and replay them (CUDA graphs). */
	int padded;
	uint64_t gen;        /* bumped whenever the buffers move: recordings of older passes are stale */
};

cap_decoder_work *cap_decoder_work_new(const cap_decoder *m)
{
	assert(m->dev.ops);
	cap_decoder_work *w = cap_xcalloc(1, sizeof *w);
	w->ops = m->dev.ops;
	w->layers = m->cfg.layers;
	const cap_decoder_config *c = &m->cfg;
	for (int l = 0; l < c->layers; l++) {
		w->whh[l] = w->ops->weight_new(m->dev.p.w_hh[l], 4 * c->hidden, c->hidden, CAP_WEIGHT_RECURRENT);
		w->wih[l] = w->ops->weight_new(m->dev.p.w_ih[l], 4 * c->hidden, l ? c->hidden : c->embed, 0);
	}
	w->lin = w->ops->weight_new(m->dev.p.lin_w, c->vocab, c->hidden, 0);
	w->proj = w->ops->weight_new(m->dev.p.proj_w, c->embed, c->feat_dim, 0);
	/* the backend records passes: let them repeat */
	w->padded = w->ops->graph_begin != NULL;
	return w;
}

void cap_decoder_work_set_padded(cap_decoder_work *w, int on)
{
	w->padded = on;
}

/* Frees the buffers, and drops the backend's recordings of passes over them. What outlives the
 * buffers (the backend, the prepared weights, the flags) is left as it is: work_reserve allocates
 * every buffer again right after, cap_decoder_work_free frees the work. */
static void work_release(cap_decoder_work *w)
{
	const cap_ops *ops = w->ops;
	if (ops->graph_forget)
		ops->graph_forget();
	void *dev[] = { w->target, w->input, w->prev, w->feat_row, w->loss, w->feat, w->x0, w->logits, w->dg,
	                w->dh, w->dx, w->hprev, w->dh_rec, w->dc_run };
	for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
		if (dev[i])
			ops->free(dev[i]);
	for (int l = 0; l < CAP_DECODER_MAX_LAYERS; l++) {
		layer_buf *b = &w->lay[l];
		void *p[] = { b->g, b->c, b->tc, b->h, b->mask, b->hd };
		for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
			if (p[i])
				ops->free(p[i]);
	}
	free(w->bs); free(w->off); free(w->goff); free(w->target_h); free(w->input_h); free(w->prev_h);
	free(w->loss_h);
}

void cap_decoder_work_free(cap_decoder_work *w)
{
	if (!w)
		return;
	work_release(w);
	for (int l = 0; l < w->layers; l++) {
		w->ops->weight_free(w->whh[l]);
		w->ops->weight_free(w->wih[l]);
	}
	w->ops->weight_free(w->lin);
	w->ops->weight_free(w->proj);
	free(w);
}

/* the training pass cannot go on without its buffers */
#define dbuf(ops, a, b, size) cap_ops_xalloc(ops, a, b, size, "training buffers")

static void *hbuf(size_t a, size_t size)
{
	size_t n;
	if (cap_mul_overflow(a, size, &n))
		abort();
	return cap_xmalloc(n ? n : 1);
}

/* Makes sure the buffers hold N tokens, B captions, T steps. */
static void work_reserve(cap_decoder_work *w, const cap_decoder_config *c, size_t N, size_t B, size_t T)
{
	if (N <= w->cap_n && B <= w->cap_b && T <= w->cap_t)
		return;
	const cap_ops *ops = w->ops;
	work_release(w);
	w->gen++;
	/* Grow with slack, and never below what was held: a batch that needs more steps but fewer
	 * tokens must not shrink the tokens' buffers for the next one (shuffled batches alternated
	 * like that, and every reallocation faults its pages in again: about 1 ms a step). */
	N += N / 4; B += B / 4; T += T / 4;
	N = N > w->cap_n ? N : w->cap_n;
	B = B > w->cap_b ? B : w->cap_b;
	T = T > w->cap_t ? T : w->cap_t;
	size_t E = c->embed, H = c->hidden, V = c->vocab, D = c->feat_dim, EH = E > H ? E : H;
	const size_t F = sizeof(float);
	w->cap_n = N; w->cap_b = B; w->cap_t = T;
	w->bs = hbuf(T, sizeof(int));
	w->off = hbuf(T + 1, sizeof(int));
	w->goff = hbuf(T, sizeof(int));
	w->target_h = hbuf(N, sizeof(uint32_t));
	w->input_h = hbuf(N, sizeof(uint32_t));
	w->prev_h = hbuf(N, sizeof(int32_t));
	w->loss_h = hbuf(N, sizeof(double));
	w->target = dbuf(ops, N, 1, sizeof(uint32_t));
	w->input = dbuf(ops, N, 1, sizeof(uint32_t));
	w->prev = dbuf(ops, N, 1, sizeof(int32_t));
	w->feat_row = dbuf(ops, B, 1, sizeof(int32_t));
	w->loss = dbuf(ops, N, 1, sizeof(double));
	w->feat = dbuf(ops, B, D, F);
	w->x0 = dbuf(ops, N, E, F);
	for (int l = 0; l < c->layers; l++) {
		w->lay[l].g = dbuf(ops, N, 4 * H, F);
		w->lay[l].c = dbuf(ops, N, H, F);
		w->lay[l].tc = dbuf(ops, N, H, F);
		w->lay[l].h = dbuf(ops, N, H, F);
		w->lay[l].mask = dbuf(ops, N, H, F);
		w->lay[l].hd = dbuf(ops, N, H, F);
	}
	w->logits = dbuf(ops, N, V, F);
	w->dg = dbuf(ops, N, 4 * H, F);
	w->dh = dbuf(ops, N, H, F);
	w->dx = dbuf(ops, N, EH, F);
	w->hprev = dbuf(ops, N, H, F);
	w->dh_rec = dbuf(ops, B, H, F);
	w->dc_run = dbuf(ops, B, H, F);
}

/* The rows' losses summed in row order in double, as one process sums them on any backend
 * (padding rows add exact zeros between the same terms in the same order); divided by the
 * tokens when mean. */
static double sum_loss(cap_decoder_work *w, int N, size_t tokens, int mean)
{
	w->ops->download(w->loss_h, w->loss, sizeof(double) * N);
	double loss = 0;
	for (int r = 0; r < N; r++)
		loss += w->loss_h[r];
	return mean ? loss / (double)tokens : loss;
}

/* The first row of every step of a share's global batch: goff[t] for t < T (see the packing
 * below), from the global lengths (sorted descending). */
static void global_offsets(const cap_decoder_share *s, int T, int *goff)
{
	int n = s->global_batch;
	goff[0] = 0;
	for (int t = 0; t + 1 < T; t++) {
		while (n > 0 && s->global_len[n - 1] <= t)
			n--;
		goff[t + 1] = goff[t] + n;
	}
}

/* Whether every step but the last holds all B captions (padded, or every caption as long): then
 * the rows of h of the previous step are simply the rows B before, else they are gathered. */
static int steps_full(const int *off, int T, int B)
{
	return off[T - 1] == (T - 1) * B;
}

/* The ops of a pass's forward, the batch's rows packed as in loss_pass (bs, off), ending with the
 * rows' losses in w->loss and, with xent_scale > 0, xent_scale * d loss / d logits in w->logits.
 * fresh: the prepared weights are up to date. */
static void forward_ops(cap_decoder_work *w, const cap_decoder *m, const cap_decoder_batch *bt,
                        const cap_decoder_share *share, float dropout, cap_rng *rng, int fresh,
                        float xent_scale, int N, int B, int T)
{
	const cap_decoder_config *c = &m->cfg;
	const cap_decoder_params *P = &m->dev.p;
	const cap_ops *ops = w->ops;
	int E = c->embed, H = c->hidden, V = c->vocab, D = c->feat_dim, L = c->layers, H4 = 4 * H;
	const int *bs = w->bs, *off = w->off;

	/* Layer 0 input: proj(feature) at step 0, embed(ids[t-1]) after. */
	ops->row_gather(w->feat, bt->feat_table, w->feat_row, B, D);
	if (!fresh)
		ops->weight_update(w->proj);
	ops->matmul_bias(w->feat, B, w->proj, P->proj_b, NULL, w->x0);   /* (B, E) */
	ops->embed_gather(w->x0 + (size_t)B * E, P->embed_w, w->input, N - B, E);

	/* LSTM layers. */
	const float *x = w->x0;
	for (int l = 0; l < L; l++) {
		layer_buf *lb = &w->lay[l];
		/* the weights may have changed since the last batch */
		if (!fresh) {
			ops->weight_update(w->wih[l]);
			ops->weight_update(w->whh[l]);
		}
		ops->matmul_bias(x, N, w->wih[l], P->b_ih[l], P->b_hh[l], lb->g);  /* (N, 4H) */
		for (int t = 0; t < T; t++) {
			int n = bs[t];
			size_t r = off[t], rp = t ? off[t - 1] : 0;
			if (t > 0)  /* (n, 4H) += h_{t-1} W_hh^T */
				ops->matmul(lb->h + rp * H, n, w->whh[l], 1, 1, lb->g + r * H4);
			ops->lstm_cell_forward(lb->g + r * H4, t ? lb->c + rp * H : NULL, lb->c + r * H,
			                       lb->tc + r * H, lb->h + r * H, n, H);
		}
		if (dropout > 0) {
			uint64_t seed = cap_rng_u64(rng);
			if (!share) {
				ops->dropout_forward(lb->h, lb->mask, lb->hd, (size_t)N * H, dropout, seed);
			} else {
				/* The masks of these rows in the global batch: at step t the share's rows are
				 * the global rows goff[t] + first .. (its captions are contiguous there). */
				int *goff = w->goff;
				global_offsets(share, T, goff);
				for (int t = 0; t < T; t++) {
					size_t r = (size_t)off[t] * H, g = ((size_t)goff[t] + share->first) * H;
					ops->dropout_forward(lb->h + r, lb->mask + r, lb->hd + r, (size_t)bs[t] * H,
					                     dropout, cap_dropout_seed_at(seed, g));
				}
			}
			x = lb->hd;
		} else {
			x = lb->h;
		}
	}

	/* Output layer over the real tokens, fused with softmax cross-entropy. */
	if (!fresh)
		ops->weight_update(w->lin);
	ops->matmul_bias(x, N, w->lin, P->lin_b, NULL, w->logits);
	ops->softmax_xent_rows(w->logits, w->target, N, V, xent_scale, w->loss);
}

/* The ops of a pass's backward after forward_ops: grad (n_params floats) = the gradient of the
 * loss that forward_ops' xent_scale scaled. */
static void backward_ops(cap_decoder_work *w, const cap_decoder *m, float dropout, float *grad,
                         int N, int B, int T)
{
	const cap_decoder_config *c = &m->cfg;
	const cap_ops *ops = w->ops;
	int E = c->embed, H = c->hidden, V = c->vocab, D = c->feat_dim, L = c->layers, H4 = 4 * H;
	const int *bs = w->bs, *off = w->off;
	const size_t F = sizeof(float);
	const float *x = dropout > 0 ? w->lay[L - 1].hd : w->lay[L - 1].h, *lg = w->logits;
	cap_decoder_params G;
	cap_decoder_views(c, grad, &G);
	/* dlogits and, below, each layer's dG are read by several products: frozen while they are,
	 * so that a backend that rounds operands (cpu in bf16) does it once */
	ops->freeze(lg, (size_t)N * V);
	ops->gemm(1, 0, V, H, N, 1, lg, V, x, H, 0, G.lin_w, H);     /* (V, H) = dlogits^T x */
	ops->col_sums(lg, N, V, G.lin_b);
	ops->matmul(lg, N, w->lin, 0, 0, w->dh);  /* (N, H) = dlogits W */
	ops->thaw(lg);
	for (int l = L - 1; l >= 0; l--) {
		layer_buf *lb = &w->lay[l];
		int inl = l ? H : E;
		const float *xin = l == 0 ? w->x0 : (dropout > 0 ? w->lay[l - 1].hd : w->lay[l - 1].h);
		if (dropout > 0)
			ops->mul(w->dh, lb->mask, (size_t)N * H);
		ops->zero(w->dh_rec, F * B * H);
		ops->zero(w->dc_run, F * B * H);
		for (int t = T - 1; t >= 0; t--) {
			int n = bs[t];
			size_t r = off[t], rp = t ? off[t - 1] : 0;
			ops->lstm_cell_backward(lb->g + r * H4, t ? lb->c + rp * H : NULL, lb->tc + r * H,
			                        w->dh + r * H, w->dh_rec, w->dc_run, w->dg + r * H4, n, H);
			if (t > 0)  /* (n, H) = dG_t W_hh: gradient into h of the previous step */
				ops->matmul(w->dg + r * H4, n, w->whh[l], 0, 0, w->dh_rec);
		}
		ops->freeze(w->dg, (size_t)N * H4);
		/* Weight gradients as whole-batch GEMMs. h of the previous step for each row of a step
		 * t >= 1: with the steps full (steps_full), rows 0 .. N-B of h as they are; else the
		 * first bs[t] rows of step t-1, gathered (one op: it was T-1 copies, each a launch on a
		 * GPU). */
		int r1 = off[1];
		const float *hp = lb->h;
		if (!steps_full(off, T, B)) {
			ops->row_gather(w->hprev, lb->h, w->prev, N - r1, H);
			hp = w->hprev;
		}
		ops->gemm(1, 0, H4, H, N - r1, 1, w->dg + (size_t)r1 * H4, H4, hp, H, 0, G.w_hh[l], H);
		ops->gemm(1, 0, H4, inl, N, 1, w->dg, H4, xin, inl, 0, G.w_ih[l], inl);
		ops->col_sums(w->dg, N, H4, G.b_ih[l]);
		ops->copy(G.b_hh[l], G.b_ih[l], F * H4);
		/* Gradient of the layer input: into the layer below (dh) or the embeddings (dx). */
		ops->matmul(w->dg, N, w->wih[l], 0, 0, l ? w->dh : w->dx);
		ops->thaw(w->dg);
	}
	/* dx (N, E): rows of step 0 go to proj, the others to the embedding rows of their words. */
	ops->gemm(1, 0, E, D, B, 1, w->dx, E, w->feat, D, 0, G.proj_w, D);
	ops->col_sums(w->dx, B, E, G.proj_b);
	ops->zero(G.embed_w, F * V * E);
	ops->embed_scatter_add(G.embed_w, w->dx + (size_t)B * E, w->input, N - B, E);
}

/* What a padded pass's ops depend on besides the memory's contents: its shape, whether the
 * prepared weights are refreshed in it, and every buffer it touches (the work's, by their
 * generation; the model's; grad; the features). */
static uint64_t pass_key(const cap_decoder_work *w, const cap_decoder *m, const cap_decoder_batch *bt,
                         const float *grad, int B, int T, int fresh)
{
	uint64_t v[] = { (uint64_t)B, (uint64_t)T, (uint64_t)fresh, w->gen, (uint64_t)(uintptr_t)w,
	                 (uint64_t)(uintptr_t)m->dev.data, (uint64_t)(uintptr_t)grad,
	                 (uint64_t)(uintptr_t)bt->feat_table };
	uint64_t h = 0;
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
		h = cap_mix64(h ^ v[i]);
	return h;
}

/* The training pass of cap_decoder_loss and cap_decoder_loss_share (share NULL: the batch is
 * the whole batch). Returns the mean (mean) or the sum of the tokens' losses; *tokens the tokens
 * (padding rows not counted). */
static double loss_pass(cap_decoder_work *w, const cap_decoder *m, const cap_decoder_batch *bt,
                        const cap_decoder_share *share, float dropout, cap_rng *rng, float *grad,
                        size_t *tokens, int mean)
{
	const cap_decoder_config *c = &m->cfg;
	const cap_ops *ops = w->ops;
	assert(ops == m->dev.ops);
	int B = bt->batch, H = c->hidden, V = c->vocab;
	int L = c->layers, H4 = 4 * H;
	const size_t F = sizeof(float);
	if (share && B == 0) {   /* an empty share: no rows, but the same draws as the others */
		if (dropout > 0)
			for (int l = 0; l < L; l++)
				(void)cap_rng_u64(rng);
		if (grad)
			ops->zero(grad, F * m->n_params);
		if (tokens)
			*tokens = 0;
		return 0;
	}
	int T = bt->len[0];
	assert(B > 0 && T >= 2);
	assert(!share || (share->first >= 0 && share->first + B <= share->global_batch &&
	                  share->global_tokens > 0 && share->global_len[share->first] == T));
	size_t Nz = 0;
	for (int b = 0; b < B; b++) {
		assert(bt->len[b] >= 2 && bt->len[b] <= T && (b == 0 || bt->len[b] <= bt->len[b - 1]));
		Nz += (size_t)bt->len[b];
	}
	/* Padded: every caption runs T steps, the steps past its end padding rows whose target is
	 * CAP_TARGET_NONE (no loss, zero gradients, which the LSTM's backward carries as exact zeros
	 * into the real rows before them). Only for what a recording can replay: a whole batch
	 * without dropout (its seeds change every pass). */
	int pad = w->padded && !share && dropout <= 0 && grad;
	size_t Np = pad ? (size_t)B * T : Nz;
	assert((double)Np * (V > H4 ? V : H4) < 2147483647.0);
	int N = (int)Np;
	work_reserve(w, c, Np, (size_t)B, (size_t)T);

	/* Packing: step t holds captions 0..bs[t]-1 in rows off[t]..; off[1] = B. */
	int *bs = w->bs, *off = w->off;
	off[0] = 0;
	for (int t = 0; t < T; t++) {
		int n = 0;
		while (n < B && (pad || bt->len[n] > t))
			n++;
		bs[t] = n;
		off[t + 1] = off[t] + n;
	}
	assert(off[T] == N && off[1] == B);

	/* Targets ids[t] of every row; the inputs of rows of steps >= 1 are ids[t-1] (padding rows
	 * read word 0: they carry no gradient, whatever they compute). */
	for (int t = 0; t < T; t++)
		for (int b = 0; b < bs[t]; b++) {
			size_t r = (size_t)off[t] + b;
			int real = t < bt->len[b];
			assert(!real || bt->ids[b][t] < (uint32_t)V);
			w->target_h[r] = real ? bt->ids[b][t] : CAP_TARGET_NONE;
			if (t > 0) {
				w->input_h[r - B] = real ? bt->ids[b][t - 1] : 0;
				w->prev_h[r - B] = off[t - 1] + b;
			}
		}
	ops->upload(w->target, w->target_h, sizeof(uint32_t) * N);
	ops->upload(w->input, w->input_h, sizeof(uint32_t) * (N - B));
	if (grad && !steps_full(off, T, B))   /* the rows backward_ops gathers h of the previous step from */
		ops->upload(w->prev, w->prev_h, sizeof(int32_t) * (N - B));
	ops->upload(w->feat_row, bt->feat_row, sizeof(int32_t) * B);

	int fresh = w->weights_fresh;
	w->weights_fresh = 0;
	/* d mean loss / d logits: scaled in the cross-entropy by 1 / tokens, or, padded, after the
	 * pass (a recorded pass must not hold the batch's token count) */
	float scale = 1.0f / (float)(share ? share->global_tokens : Nz);
	float xent_scale = grad ? (pad ? 1.0f : scale) : 0;
	/* A padded pass is the same ops for every batch of its (B, T): where the backend records,
	 * replayed or recorded (the first sighting of a key runs as usual, see ops.h). */
	int replayed = 0, recording = 0;
	if (pad && ops->graph_begin) {
		uint64_t key = pass_key(w, m, bt, grad, B, T, fresh);
		replayed = ops->graph_replay(key);
		recording = !replayed && ops->graph_begin(key) == 0;
	}
	if (!replayed) {
		forward_ops(w, m, bt, share, dropout, rng, fresh, xent_scale, N, B, T);
		if (grad)
			backward_ops(w, m, dropout, grad, N, B, T);
		if (recording)
			ops->graph_end();
	}
	if (tokens)
		*tokens = Nz;
	if (grad && pad)
		ops->scale(grad, m->n_params, scale);
	/* the one wait for the backend, after all the work is queued */
	return sum_loss(w, N, Nz, mean);
}

void cap_decoder_work_adam(cap_decoder_work *w, cap_decoder *m, const float *grad, float *mom, float *vel,
                           const cap_adam_consts *k)
{
	const cap_ops *ops = w->ops;
	cap_decoder_tensor t[CAP_DECODER_MAX_TENSORS];
	int n = cap_decoder_tensors(&m->cfg, m->dev.data, t);
	size_t run = 0, end = 0;   /* [run, end): tensors without a prepared weight, not yet stepped */
	for (int i = 0; i < n; i++) {
		cap_weight *pw = t[i].data == m->dev.p.lin_w ? w->lin : t[i].data == m->dev.p.proj_w ? w->proj : NULL;
		for (int l = 0; l < w->layers && !pw; l++)
			pw = t[i].data == m->dev.p.w_ih[l] ? w->wih[l] : t[i].data == m->dev.p.w_hh[l] ? w->whh[l] : NULL;
		size_t o = (size_t)(t[i].data - m->dev.data);
		if (!pw) {
			end = o + t[i].numel;
			continue;
		}
		if (end > run)
			ops->adam_step(m->dev.data + run, grad + run, mom + run, vel + run, end - run, k);
		ops->weight_adam(pw, grad + o, mom + o, vel + o, k);
		run = end = o + t[i].numel;
	}
	if (end > run)
		ops->adam_step(m->dev.data + run, grad + run, mom + run, vel + run, end - run, k);
	w->weights_fresh = 1;
}

double cap_decoder_loss(cap_decoder_work *w, const cap_decoder *m, const cap_decoder_batch *bt,
                        float dropout, cap_rng *rng, float *grad, size_t *tokens)
{
	return loss_pass(w, m, bt, NULL, dropout, rng, grad, tokens, 1);
}

double cap_decoder_loss_share(cap_decoder_work *w, const cap_decoder *m, const cap_decoder_batch *bt,
                              const cap_decoder_share *share, float dropout, cap_rng *rng,
                              float *grad, size_t *tokens)
{
	assert(share);
	return loss_pass(w, m, bt, share, dropout, rng, grad, tokens, 0);
}

/* The training pass's use of recorded runs of ops (ops.h: graph_replay, graph_begin, graph_end,
 * graph_forget; CUDA graphs on the cuda backend), checked without a GPU: a "recorder" backend runs
 * the cpu ops and, while recording, also logs each call with its arguments; a replay issues the
 * logged calls again, as a CUDA graph would, with whatever the memory holds by then. Training
 * with it (padded passes, replayed whenever a batch's shape repeats) must give what the cpu
 * backend gives with packed passes: if a pass baked anything of one batch into its recording
 * (its token count, its lengths, a buffer that has since moved), the replays would train on
 * stale values and the losses would part. Also checked: nothing synchronises, moves memory to or
 * from the host or allocates while recording; shapes seen once are not recorded; reallocated
 * buffers drop the recordings. */
#include "train/adam.h"
#include "check.h"
#include "decoder/decoder.h"
#include "ops/ops.h"
#include <stdlib.h>
#include <string.h>

static const cap_ops *cpu;
static cap_ops rec_ops;

enum { OP_ROW_GATHER, OP_BIAS_ROWS, OP_GEMM, OP_EMBED_GATHER, OP_WEIGHT_UPDATE, OP_MATMUL_BIAS, OP_MATMUL,
       OP_LSTM_FWD, OP_LSTM_BWD, OP_XENT, OP_FREEZE, OP_THAW, OP_COL_SUMS, OP_COPY, OP_ZERO, OP_SCATTER,
       OP_MUL, OP_SCALE };

typedef struct call {
	int op;
	const void *p[8];
	long i[8];
	float f[2];
} call;

typedef struct recording {
	uint64_t key;
	int seen, made;
	call *calls;
	int n, cap;
} recording;

enum { SLOTS = 64 };
static recording recs[SLOTS];
static recording *now;                   /* being recorded */
static int forbidden, replays, recordings, forgets;

static void log_call(call c)
{
	if (!now)
		return;
	if (now->n == now->cap) {
		now->cap = now->cap ? 2 * now->cap : 256;
		now->calls = realloc(now->calls, sizeof(call) * now->cap);
	}
	now->calls[now->n++] = c;
}

/* the cpu op of a call, with its arguments */
static void issue(const call *c)
{
	const void *const *p = c->p;
	const long *i = c->i;
	switch (c->op) {
	case OP_ROW_GATHER: cpu->row_gather((float *)p[0], p[1], p[2], i[0], i[1]); break;
	case OP_BIAS_ROWS: cpu->bias_rows((float *)p[0], p[1], p[2], i[0], i[1]); break;
	case OP_GEMM:
		cpu->gemm(i[0], i[1], i[2], i[3], i[4], c->f[0], p[0], i[5], p[1], i[6], c->f[1], (float *)p[2], i[7]);
		break;
	case OP_EMBED_GATHER: cpu->embed_gather((float *)p[0], p[1], p[2], i[0], i[1]); break;
	case OP_WEIGHT_UPDATE: cpu->weight_update((cap_weight *)p[0]); break;
	case OP_MATMUL_BIAS: cpu->matmul_bias(p[0], i[0], p[1], p[2], p[3], (float *)p[4]); break;
	case OP_MATMUL: cpu->matmul(p[0], i[0], p[1], i[1], c->f[0], (float *)p[2]); break;
	case OP_LSTM_FWD:
		cpu->lstm_cell_forward((float *)p[0], p[1], (float *)p[2], (float *)p[3], (float *)p[4], i[0], i[1]);
		break;
	case OP_LSTM_BWD:
		cpu->lstm_cell_backward(p[0], p[1], p[2], p[3], p[4], (float *)p[5], (float *)p[6], i[0], i[1]);
		break;
	case OP_XENT: cpu->softmax_xent_rows((float *)p[0], p[1], i[0], i[1], c->f[0], (double *)p[2]); break;
	case OP_FREEZE: cpu->freeze(p[0], (size_t)i[0]); break;
	case OP_THAW: cpu->thaw(p[0]); break;
	case OP_COL_SUMS: cpu->col_sums(p[0], i[0], i[1], (float *)p[1]); break;
	case OP_COPY: cpu->copy((void *)p[0], p[1], (size_t)i[0]); break;
	case OP_ZERO: cpu->zero((void *)p[0], (size_t)i[0]); break;
	case OP_SCATTER: cpu->embed_scatter_add((float *)p[0], p[1], p[2], i[0], i[1]); break;
	case OP_MUL: cpu->mul((float *)p[0], p[1], (size_t)i[0]); break;
	case OP_SCALE: cpu->scale((float *)p[0], (size_t)i[0], c->f[0]); break;
	}
}

/* log (when recording), then run */
static void go(call c)
{
	log_call(c);
	issue(&c);
}

static void r_row_gather(float *out, const float *src, const int32_t *idx, int n, int width)
{ go((call){ OP_ROW_GATHER, { out, src, idx }, { n, width }, { 0 } }); }
static void r_bias_rows(float *y, const float *b1, const float *b2, int rows, int n)
{ go((call){ OP_BIAS_ROWS, { y, b1, b2 }, { rows, n }, { 0 } }); }
static void r_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                   int ldb, float beta, float *C, int ldc)
{ go((call){ OP_GEMM, { A, B, C }, { ta, tb, M, N, K, lda, ldb, ldc }, { alpha, beta } }); }
static void r_embed_gather(float *out, const float *table, const uint32_t *ids, int n, int E)
{ go((call){ OP_EMBED_GATHER, { out, table, ids }, { n, E }, { 0 } }); }
static void r_weight_update(cap_weight *w)
{ go((call){ OP_WEIGHT_UPDATE, { w }, { 0 }, { 0 } }); }
static void r_matmul_bias(const float *x, int n, const cap_weight *w, const float *b1, const float *b2, float *y)
{ go((call){ OP_MATMUL_BIAS, { x, w, b1, b2, y }, { n }, { 0 } }); }
static void r_matmul(const float *x, int n, const cap_weight *w, int trans, float beta, float *y)
{ go((call){ OP_MATMUL, { x, w, y }, { n, trans }, { beta } }); }
static void r_lstm_fwd(float *g, const float *cp, float *c, float *tc, float *h, int n, int H)
{ go((call){ OP_LSTM_FWD, { g, cp, c, tc, h }, { n, H }, { 0 } }); }
static void r_lstm_bwd(const float *g, const float *cp, const float *tc, const float *dh, const float *dhr, float *dc,
                       float *dg, int n, int H)
{ go((call){ OP_LSTM_BWD, { g, cp, tc, dh, dhr, dc, dg }, { n, H }, { 0 } }); }
static void r_xent(float *x, const uint32_t *t, int n, int V, float s, double *loss)
{ go((call){ OP_XENT, { x, t, loss }, { n, V }, { s } }); }
static void r_freeze(const float *x, size_t n)
{ go((call){ OP_FREEZE, { x }, { (long)n }, { 0 } }); }
static void r_thaw(const float *x)
{ go((call){ OP_THAW, { x }, { 0 }, { 0 } }); }
static void r_col_sums(const float *x, int rows, int n, float *out)
{ go((call){ OP_COL_SUMS, { x, out }, { rows, n }, { 0 } }); }
static void r_copy(void *d, const void *s, size_t b)
{ go((call){ OP_COPY, { d, s }, { (long)b }, { 0 } }); }
static void r_zero(void *d, size_t b)
{ go((call){ OP_ZERO, { d }, { (long)b }, { 0 } }); }
static void r_scatter(float *g, const float *d, const uint32_t *ids, int n, int E)
{ go((call){ OP_SCATTER, { g, d, ids }, { n, E }, { 0 } }); }
static void r_mul(float *x, const float *y, size_t n)
{ go((call){ OP_MUL, { x, y }, { (long)n }, { 0 } }); }
static void r_scale(float *x, size_t n, float a)
{ go((call){ OP_SCALE, { x }, { (long)n }, { a } }); }

/* what must not happen while recording */
static void *r_alloc(size_t b) { forbidden += now != NULL; return cpu->alloc(b); }
static void r_free(void *p) { forbidden += now != NULL; cpu->free(p); }
static void r_upload(void *d, const void *s, size_t b) { forbidden += now != NULL; cpu->upload(d, s, b); }
static void r_download(void *d, const void *s, size_t b) { forbidden += now != NULL; cpu->download(d, s, b); }
static void r_sync(void) { forbidden += now != NULL; cpu->sync(); }
static double r_sum_squares(const float *x, size_t n) { forbidden += now != NULL; return cpu->sum_squares(x, n); }
static cap_weight *r_weight_new(const float *w, int rows, int cols, int flags)
{ forbidden += now != NULL; return cpu->weight_new(w, rows, cols, flags); }
static void r_weight_free(cap_weight *w) { forbidden += now != NULL; cpu->weight_free(w); }

static recording *find(uint64_t key)
{
	for (int i = 0; i < SLOTS; i++)
		if (recs[i].seen && recs[i].key == key)
			return &recs[i];
	return NULL;
}

static int r_graph_replay(uint64_t key)
{
	recording *r = find(key);
	if (!r || !r->made)
		return 0;
	for (int i = 0; i < r->n; i++)
		issue(&r->calls[i]);
	replays++;
	return 1;
}

/* as the cuda backend: a key's first sighting runs as usual, its second is recorded */
static int r_graph_begin(uint64_t key)
{
	recording *r = find(key);
	if (!r) {
		for (int i = 0; i < SLOTS && !r; i++)
			if (!recs[i].seen)
				r = &recs[i];
		if (!r)
			abort();   /* more keys than this test makes */
		r->key = key;
		r->seen = 1;
		return -1;
	}
	now = r;
	return 0;
}

static void r_graph_end(void)
{
	now->made = 1;   /* the logged ops have already run, in order, as a launch would run them */
	now = NULL;
	recordings++;
}

static void r_graph_forget(void)
{
	forbidden += now != NULL;
	for (int i = 0; i < SLOTS; i++) {
		free(recs[i].calls);
		memset(&recs[i], 0, sizeof recs[i]);
	}
	forgets++;
}

static void make_recorder(void)
{
	cpu = cap_ops_cpu();
	rec_ops = *cpu;
	rec_ops.name = "recorder";
	rec_ops.row_gather = r_row_gather; rec_ops.bias_rows = r_bias_rows; rec_ops.gemm = r_gemm;
	rec_ops.embed_gather = r_embed_gather; rec_ops.weight_update = r_weight_update;
	rec_ops.matmul_bias = r_matmul_bias; rec_ops.matmul = r_matmul; rec_ops.lstm_cell_forward = r_lstm_fwd;
	rec_ops.lstm_cell_backward = r_lstm_bwd; rec_ops.softmax_xent_rows = r_xent; rec_ops.freeze = r_freeze;
	rec_ops.thaw = r_thaw; rec_ops.col_sums = r_col_sums; rec_ops.copy = r_copy; rec_ops.zero = r_zero;
	rec_ops.embed_scatter_add = r_scatter; rec_ops.mul = r_mul; rec_ops.scale = r_scale;
	rec_ops.alloc = r_alloc; rec_ops.free = r_free; rec_ops.upload = r_upload; rec_ops.download = r_download;
	rec_ops.sync = r_sync; rec_ops.sum_squares = r_sum_squares; rec_ops.weight_new = r_weight_new;
	rec_ops.weight_free = r_weight_free;
	rec_ops.graph_replay = r_graph_replay; rec_ops.graph_begin = r_graph_begin;
	rec_ops.graph_end = r_graph_end; rec_ops.graph_forget = r_graph_forget;
}

/* A batch of nb captions of at most T ids drawn from r: lengths descending with len[0] == T, random
 * words, random feature rows. */
enum { MAXB = 6, MAXT = 9, IMAGES = 10 };
typedef struct batch {
	int len[MAXB];
	uint32_t ids[MAXB][MAXT];
	const uint32_t *idp[MAXB];
	int32_t rows[MAXB];
	cap_decoder_batch bt;
} batch;

static void draw(batch *b, cap_rng *r, int nb, int T, int V, const float *feat_table)
{
	for (int i = 0; i < nb; i++) {
		b->len[i] = i == 0 ? T : 2 + (int)cap_rng_below(r, (uint64_t)b->len[i - 1] - 1);
		for (int t = 0; t < MAXT; t++)
			b->ids[i][t] = 1 + (uint32_t)cap_rng_below(r, (uint64_t)V - 1);
		b->idp[i] = b->ids[i];
		b->rows[i] = (int32_t)cap_rng_below(r, IMAGES);
	}
	b->bt = (cap_decoder_batch){ nb, b->len, b->idp, feat_table, b->rows };
}

int main(void)
{
	make_recorder();
	cap_decoder_config c = { .feat_dim = 16, .embed = 8, .hidden = 12, .layers = 2, .vocab = 23 };
	const cap_ops *ops[2] = { cap_ops_cpu(), &rec_ops };   /* packed on cpu; padded and recorded */
	cap_decoder *m[2];
	cap_decoder_work *w[2];
	cap_adam a[2];
	float *g[2];
	float feats[IMAGES * 16];
	cap_rng r;
	cap_rng_seed(&r, 3);
	for (int i = 0; i < IMAGES * 16; i++)
		feats[i] = (float)cap_rng_normal(&r);
	for (int k = 0; k < 2; k++) {
		m[k] = cap_decoder_new(&c);
		cap_rng_seed(&r, 4);
		cap_decoder_init_random(m[k], &r);
		CHECK(cap_decoder_bind(m[k], ops[k]) == 0, "bind to %s", ops[k]->name);
		w[k] = cap_decoder_work_new(m[k]);
		CHECK(cap_adam_init(&a[k], ops[k], m[k]->n_params, 1e-2) == 0, "adam on %s", ops[k]->name);
		g[k] = ops[k]->alloc(sizeof(float) * m[k]->n_params);
	}
	/* 26 steps over three shapes, (6, 9), (6, 5) and (4, 9) in turn (the last two (6, 9)), each
	 * batch's lengths, words and images drawn anew */
	static const int shapes[][2] = { { 6, 9 }, { 6, 5 }, { 4, 9 } };
	double worst = 0;
	int steps = 0, same_tokens = 1;
	cap_rng_seed(&r, 5);
	for (int s = 0; s < 26; s++) {
		int nb = shapes[s < 24 ? s % 3 : 0][0], T = shapes[s < 24 ? s % 3 : 0][1];
		batch b;
		draw(&b, &r, nb, T, c.vocab, feats);
		double l[2];
		size_t tok[2];
		for (int k = 0; k < 2; k++) {
			l[k] = cap_decoder_loss(w[k], m[k], &b.bt, 0, NULL, g[k], &tok[k]);
			cap_adam_consts ak = cap_adam_next(&a[k]);
			cap_decoder_work_adam(w[k], m[k], g[k], a[k].m, a[k].v, &ak);
		}
		same_tokens &= tok[0] == tok[1];
		worst = fmax(worst, fabs(l[0] - l[1]) / l[0]);
		steps++;
	}
	CHECK(forbidden == 0, "nothing synchronised, moved host memory or allocated while recording (%d calls)",
	      forbidden);
	/* keys: the very first pass refreshes the prepared weights (a key of its own, seen once);
	 * every later one takes them fresh from the Adam step: 3 keys, one a shape, each run once,
	 * recorded on its second sighting and replayed from its third */
	CHECK(recordings == 3 && replays == steps - 1 - 2 * 3, "3 shapes recorded once each on their second "
	      "sighting, replayed from the third: %d recordings, %d replays of %d steps", recordings, replays, steps);
	CHECK(same_tokens && worst < 1e-5, "losses of 26 Adam steps with replayed padded passes = cpu's packed passes "
	      "(max relative difference %.2g)", worst);
	float *p[2];
	for (int k = 0; k < 2; k++) {
		p[k] = malloc(sizeof(float) * m[k]->n_params);
		ops[k]->download(p[k], m[k]->dev.data, sizeof(float) * m[k]->n_params);
	}
	double pd = 0, pm = 0;
	for (size_t i = 0; i < m[0]->n_params; i++) {
		pd = fmax(pd, fabs(p[0][i] - p[1][i]));
		pm = fmax(pm, fabs(p[0][i]));
	}
	CHECK(pd <= 1e-4 * pm, "parameters after 26 steps: max difference %.2g (largest %.2g)", pd, pm);

	/* A bigger batch makes the buffers grow: every recording is dropped, and the old shape is
	 * seen anew (run once, recorded, replayed). */
	int f0 = forgets, rec0 = recordings, rep0 = replays;
	batch b;
	draw(&b, &r, MAXB, MAXT, c.vocab, feats);   /* the first six lengths of the big batch */
	int len40[40];
	uint32_t ids40[40][MAXT];
	const uint32_t *idp40[40];
	int32_t rows40[40];
	for (int i = 0; i < 40; i++) {
		len40[i] = i < 6 ? b.len[i] : 2;
		for (int t = 0; t < MAXT; t++)
			ids40[i][t] = 1 + (uint32_t)((i * 7 + t) % (c.vocab - 1));
		idp40[i] = ids40[i];
		rows40[i] = i % IMAGES;
	}
	cap_decoder_batch big = { 40, len40, idp40, feats, rows40 };
	double lb[2];
	for (int k = 0; k < 2; k++)
		lb[k] = cap_decoder_loss(w[k], m[k], &big, 0, NULL, g[k], NULL);
	for (int s = 0; s < 3; s++) {
		draw(&b, &r, 6, 9, c.vocab, feats);
		for (int k = 0; k < 2; k++)
			lb[k] = cap_decoder_loss(w[k], m[k], &b.bt, 0, NULL, g[k], NULL);
		worst = fmax(worst, fabs(lb[0] - lb[1]) / lb[0]);
	}
	CHECK(forgets > f0 && recordings == rec0 + 1 && replays == rep0 + 1 && worst < 1e-5,
	      "buffers that grow drop the recordings; the old shape runs, is recorded and replays anew "
	      "(%d forgets, %d recordings, %d replays, loss difference %.2g)", forgets - f0, recordings - rec0,
	      replays - rep0, worst);

	/* dropout: passes are neither padded nor recorded (the masks' seeds change every pass) */
	rec0 = recordings, rep0 = replays;
	for (int s = 0; s < 3; s++) {
		cap_rng d0, d1;
		cap_rng_seed(&d0, 8 + s);
		cap_rng_seed(&d1, 8 + s);
		draw(&b, &r, 6, 9, c.vocab, feats);
		double l0 = cap_decoder_loss(w[0], m[0], &b.bt, 0.3f, &d0, g[0], NULL);
		double l1 = cap_decoder_loss(w[1], m[1], &b.bt, 0.3f, &d1, g[1], NULL);
		worst = fmax(worst, fabs(l0 - l1) / l0);
	}
	CHECK(recordings == rec0 && replays == rep0 && worst < 1e-5,
	      "passes with dropout are neither recorded nor replayed, and equal cpu's");
	for (int k = 0; k < 2; k++) {
		free(p[k]);
		ops[k]->free(g[k]);
		cap_adam_free(&a[k]);
		cap_decoder_work_free(w[k]);
		cap_decoder_free(m[k]);
	}
	r_graph_forget();
	return check_exit();
}

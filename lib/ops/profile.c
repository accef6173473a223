/* A backend that times another (see ops.h, cap_ops_profiled): every op of the inner table is
 * called through a wrapper that adds its wall time to the op's total, after a sync so that an
 * asynchronous backend is measured too. The totals are printed on stderr at exit, most costly
 * first. For finding where a step's time goes (CAP_PROFILE=1 in the tools); the wrappers cost a
 * clock read and a sync per op. */
#include "ops/ops.h"
#include "core/cli.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	P_GEMM, P_MATMUL, P_WEIGHT_UPDATE, P_BIAS_ROWS, P_COL_SUMS, P_ROW_GATHER, P_EMBED_GATHER,
	P_SCATTER_ADD, P_MUL, P_SCALE, P_SUM_SQUARES, P_LSTM_FWD, P_LSTM_BWD, P_LOG_SOFTMAX, P_XENT,
	P_DROPOUT, P_ADAM, P_ENCODER_RUN, P_UPLOAD, P_DOWNLOAD, P_COPY, P_ZERO, P_TOPK, P_MATMUL_BIAS,
	P_WEIGHT_ADAM, P_N
};
static const char *const names[P_N] = {
	"gemm", "matmul", "weight_update", "bias_rows", "col_sums", "row_gather", "embed_gather",
	"embed_scatter_add", "mul", "scale", "sum_squares", "lstm_cell_forward", "lstm_cell_backward",
	"log_softmax_rows", "softmax_xent_rows", "dropout_forward", "adam_step", "encoder_run",
	"upload", "download", "copy", "zero", "row_topk", "matmul_bias", "weight_adam",
};
static double total[P_N], flops[P_N];
static long calls[P_N];
static const cap_ops *in;
static cap_ops prof;

/* CAP_PROFILE=shapes also splits the products by shape (op, transposes, M, N, K), the dimension
 * that follows the batch's tokens in buckets (exact up to 64 rows, to 256 above): the
 * recurrence's products shrink with the packed batch, and the share of the peak that each shape
 * reaches says where a step loses it. The tokens are M in a weight's products, K in A^T B. */
enum { MAX_SHAPES = 512 };
typedef struct shape { int op, ta, tb, M, N, K; double t, f; long n; } shape;
static shape shapes[MAX_SHAPES];
static int nshapes, by_shape;
static void shape_add(int op, int ta, int tb, int M, int N, int K, double t)
{
	if (!by_shape)
		return;
	int *tokens = op == P_GEMM && ta ? &K : &M;
	double f = 2.0 * M * N * K;
	if (*tokens > 64)
		*tokens = (*tokens + 255) / 256 * 256;
	for (int i = 0; i < nshapes; i++) {
		shape *s = &shapes[i];
		if (s->op == op && s->ta == ta && s->tb == tb && s->M == M && s->N == N && s->K == K) {
			s->t += t; s->f += f; s->n++;
			return;
		}
	}
	if (nshapes < MAX_SHAPES)
		shapes[nshapes++] = (shape){ op, ta, tb, M, N, K, t, f, 1 };
}

/* T1 leaves the op's seconds in dt_, for the products' per-shape totals */
#define T0 double t0_ = cap_now(), dt_
#define T1(k) do { in->sync(); dt_ = cap_now() - t0_; total[k] += dt_; calls[k]++; } while (0)

static void w_upload(void *d, const void *s, size_t n) { T0; in->upload(d, s, n); T1(P_UPLOAD); }
static void w_download(void *d, const void *s, size_t n) { T0; in->download(d, s, n); T1(P_DOWNLOAD); }
static void w_copy(void *d, const void *s, size_t n) { T0; in->copy(d, s, n); T1(P_COPY); }
static void w_zero(void *d, size_t n) { T0; in->zero(d, n); T1(P_ZERO); }
static void w_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *B, int ldb, float beta, float *C, int ldc)
{
	T0; in->gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc); T1(P_GEMM);
	flops[P_GEMM] += 2.0 * M * N * K;
	shape_add(P_GEMM, ta, tb, M, N, K, dt_);
}
/* matmul needs the weight's shape for its FLOPs: the inner weight is wrapped */
typedef struct pw { cap_weight *w; int rows, cols; } pw;
static cap_weight *w_weight_new(const float *w, int rows, int cols, int flags)
{
	pw *p = malloc(sizeof *p);
	if (!p) return NULL;
	p->w = in->weight_new(w, rows, cols, flags);
	p->rows = rows;
	p->cols = cols;
	return (cap_weight *)p;
}
static void w_weight_update(cap_weight *w) { T0; in->weight_update(((pw *)w)->w); T1(P_WEIGHT_UPDATE); }
static void w_weight_free(cap_weight *w) { if (w) { in->weight_free(((pw *)w)->w); free(w); } }
static void w_matmul(const float *x, int n, const cap_weight *w, int trans, float beta, float *y)
{
	const pw *p = (const pw *)w;
	T0; in->matmul(x, n, p->w, trans, beta, y); T1(P_MATMUL);
	flops[P_MATMUL] += 2.0 * n * p->rows * p->cols;
	/* y (n, N) = x (n, K) W^T when trans, x W otherwise */
	shape_add(P_MATMUL, 0, trans, n, trans ? p->rows : p->cols, trans ? p->cols : p->rows, dt_);
}
static void w_matmul_bias(const float *x, int n, const cap_weight *w, const float *b1, const float *b2, float *y)
{
	const pw *p = (const pw *)w;
	T0; in->matmul_bias(x, n, p->w, b1, b2, y); T1(P_MATMUL_BIAS);
	flops[P_MATMUL_BIAS] += 2.0 * n * p->rows * p->cols;
	shape_add(P_MATMUL_BIAS, 0, 1, n, p->rows, p->cols, dt_);
}
static void w_bias_rows(float *y, const float *b1, const float *b2, int r, int n) { T0; in->bias_rows(y, b1, b2, r, n); T1(P_BIAS_ROWS); }
static void w_col_sums(const float *x, int r, int n, float *o) { T0; in->col_sums(x, r, n, o); T1(P_COL_SUMS); }
static void w_row_gather(float *o, const float *s, const int32_t *i, int n, int w) { T0; in->row_gather(o, s, i, n, w); T1(P_ROW_GATHER); }
static void w_embed_gather(float *o, const float *t, const uint32_t *i, int n, int e) { T0; in->embed_gather(o, t, i, n, e); T1(P_EMBED_GATHER); }
static void w_scatter(float *g, const float *d, const uint32_t *i, int n, int e) { T0; in->embed_scatter_add(g, d, i, n, e); T1(P_SCATTER_ADD); }
static void w_mul(float *x, const float *y, size_t n) { T0; in->mul(x, y, n); T1(P_MUL); }
static void w_scale(float *x, size_t n, float a) { T0; in->scale(x, n, a); T1(P_SCALE); }
static double w_sum_squares(const float *x, size_t n) { T0; double r = in->sum_squares(x, n); T1(P_SUM_SQUARES); return r; }
static void w_lstm_fwd(float *g, const float *cp, float *c, float *tc, float *h, int n, int H) { T0; in->lstm_cell_forward(g, cp, c, tc, h, n, H); T1(P_LSTM_FWD); }
static void w_lstm_bwd(const float *g, const float *cp, const float *tc, const float *dh, const float *dhr,
                       float *dc, float *dg, int n, int H) { T0; in->lstm_cell_backward(g, cp, tc, dh, dhr, dc, dg, n, H); T1(P_LSTM_BWD); }
static void w_log_softmax(float *x, int r, int n) { T0; in->log_softmax_rows(x, r, n); T1(P_LOG_SOFTMAX); }
static void w_xent(float *x, const uint32_t *t, int n, int V, float g, double *l) { T0; in->softmax_xent_rows(x, t, n, V, g, l); T1(P_XENT); }
static void w_topk(const float *x, int r, int n, int k, int e0, int e1, float *v, int32_t *i) { T0; in->row_topk(x, r, n, k, e0, e1, v, i); T1(P_TOPK); }
static void w_dropout(const float *h, float *m, float *hd, size_t n, float p, uint64_t s) { T0; in->dropout_forward(h, m, hd, n, p, s); T1(P_DROPOUT); }
static void w_adam(float *p, const float *g, float *m, float *v, size_t n, const cap_adam_consts *k) { T0; in->adam_step(p, g, m, v, n, k); T1(P_ADAM); }
static void w_weight_adam(cap_weight *w, const float *g, float *m, float *v, const cap_adam_consts *k) { T0; in->weight_adam(((pw *)w)->w, g, m, v, k); T1(P_WEIGHT_ADAM); }
static int w_encoder_run(cap_encoder *e, const float *x, int n, float *o) { T0; int r = in->encoder_run(e, x, n, o); T1(P_ENCODER_RUN); return r; }

/* qsort orders, most costly first */
static int by_total(const void *a, const void *b)
{
	double x = total[*(const int *)a], y = total[*(const int *)b];
	return (x < y) - (x > y);
}
static int by_time(const void *a, const void *b)
{
	double x = ((const shape *)a)->t, y = ((const shape *)b)->t;
	return (x < y) - (x > y);
}

static void report(void)
{
	double all = 0;
	int order[P_N];
	for (int i = 0; i < P_N; i++) {
		all += total[i];
		order[i] = i;
	}
	qsort(order, P_N, sizeof order[0], by_total);
	fprintf(stderr, "cap ops profile (%s): %.3f s in ops\n", in->name, all);
	for (int k = 0; k < P_N; k++) {
		int i = order[k];
		if (!calls[i]) continue;
		fprintf(stderr, "  %-20s %9.4f s %5.1f%% %8ld calls", names[i], total[i], all > 0 ? 100 * total[i] / all : 0, calls[i]);
		if (flops[i] > 0)
			fprintf(stderr, "  %7.1f GFLOP/s", flops[i] / total[i] / 1e9);
		fputc('\n', stderr);
	}
	if (!nshapes)
		return;
	qsort(shapes, (size_t)nshapes, sizeof shapes[0], by_time);
	fprintf(stderr, "  by shape (tokens up to the bucket's top; A^T when ta, W^T or B^T when tb):\n");
	for (int i = 0; i < nshapes; i++) {
		const shape *s = &shapes[i];
		fprintf(stderr, "  %-11s ta%d tb%d M%5d N%5d K%5d %9.4f s %5.1f%% %8ld calls  %7.1f GFLOP/s\n",
		        names[s->op], s->ta, s->tb, s->M, s->N, s->K, s->t, all > 0 ? 100 * s->t / all : 0,
		        s->n, s->f / s->t / 1e9);
	}
}

const cap_ops *cap_ops_profiled(const cap_ops *inner, int per_shape)
{
	by_shape = per_shape;
	if (in)
		return &prof;
	in = inner;
	prof = *inner;
	prof.upload = w_upload; prof.download = w_download; prof.copy = w_copy; prof.zero = w_zero;
	prof.gemm = w_gemm; prof.weight_new = w_weight_new; prof.weight_update = w_weight_update;
	prof.weight_free = w_weight_free; prof.matmul = w_matmul; prof.bias_rows = w_bias_rows;
	prof.col_sums = w_col_sums; prof.row_gather = w_row_gather; prof.embed_gather = w_embed_gather;
	prof.embed_scatter_add = w_scatter; prof.mul = w_mul; prof.scale = w_scale;
	prof.sum_squares = w_sum_squares; prof.lstm_cell_forward = w_lstm_fwd;
	prof.lstm_cell_backward = w_lstm_bwd; prof.log_softmax_rows = w_log_softmax;
	prof.softmax_xent_rows = w_xent; prof.dropout_forward = w_dropout; prof.adam_step = w_adam;
	prof.encoder_run = w_encoder_run; prof.row_topk = w_topk; prof.matmul_bias = w_matmul_bias;
	prof.weight_adam = w_weight_adam;
	/* every op timed after a sync: nothing recorded, which would time the replays as nothing */
	prof.graph_replay = NULL; prof.graph_begin = NULL; prof.graph_end = NULL; prof.graph_forget = NULL;
	atexit(report);
	return &prof;
}

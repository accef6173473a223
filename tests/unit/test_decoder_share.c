/* Data parallelism without MPI: a global batch cut into N contiguous shares (uneven, some empty)
 * and passed share by share through cap_decoder_loss_share gives, summed, the loss and the
 * gradient of the whole batch through cap_decoder_loss: for 1 and 2 layers, with and without
 * dropout (the shares draw the whole batch's masks), on the ref and cpu backends. Also the
 * identity behind the masks, cap_dropout_seed_at. */
#include "check.h"
#include "decoder/decoder.h"
#include "ops/ops.h"
#include <stdlib.h>
#include <string.h>

enum { NB = 11, D = 6, V = 13 };

static void seed_at_identity(void)
{
	cap_rng r;
	cap_rng_seed(&r, 9);
	int bad = 0;
	for (int k = 0; k < 20000; k++) {
		uint64_t seed = cap_rng_u64(&r), off = cap_rng_below(&r, 1u << 30), i = cap_rng_below(&r, 1u << 20);
		float p = 0.1f + 0.8f * cap_rng_uniform(&r);
		bad += cap_dropout_keep(cap_dropout_seed_at(seed, off), i, p) != cap_dropout_keep(seed, off + i, p);
	}
	CHECK(bad == 0, "keep(seed_at(seed, k), i) == keep(seed, k + i) (%d of 20000 differ)", bad);
}

static void shares_sum_to_whole(const cap_ops *ops, int layers, float dropout, int nshares)
{
	cap_decoder_config c = { .feat_dim = D, .embed = 5, .hidden = 7, .layers = layers, .vocab = V };
	cap_decoder *m = cap_decoder_new(&c);
	cap_rng r;
	cap_rng_seed(&r, 21 + layers);
	cap_decoder_init_random(m, &r);
	/* lengths descending with ties, as cap_train_epoch sorts a batch */
	static const int len[NB] = { 9, 9, 8, 6, 6, 6, 5, 4, 3, 2, 2 };
	uint32_t *idv[NB];
	int32_t frow[NB];
	float table[4 * D];
	for (int i = 0; i < 4 * D; i++)
		table[i] = (float)cap_rng_normal(&r);
	size_t ntok = 0;
	for (int b = 0; b < NB; b++) {
		idv[b] = malloc(sizeof(uint32_t) * len[b]);
		idv[b][0] = CAP_DECODER_START;
		for (int t = 1; t < len[b] - 1; t++)
			idv[b][t] = 4 + (uint32_t)cap_rng_below(&r, V - 4);
		idv[b][len[b] - 1] = CAP_DECODER_END;
		frow[b] = b % 4;
		ntok += (size_t)len[b];
	}
	CHECK(cap_decoder_bind(m, ops) == 0, "bind to %s", ops->name);
	const float *ft = cap_ops_mirror(ops, table, sizeof table);
	cap_decoder_work *w = cap_decoder_work_new(m);
	size_t P = m->n_params;
	float *g = ops->alloc(sizeof(float) * P), *gs = ops->alloc(sizeof(float) * P);
	float *whole = calloc(P, sizeof(float)), *sum = calloc(P, sizeof(float)), *part = calloc(P, sizeof(float));
	cap_decoder_batch bt = { NB, len, (const uint32_t *const *)idv, ft, frow };
	cap_rng d1, d2;
	cap_rng_seed(&d1, 77);
	d2 = d1;
	size_t tok;
	double lw = cap_decoder_loss(w, m, &bt, dropout, &d1, g, &tok);
	ops->download(whole, g, sizeof(float) * P);
	double lsum = 0;
	size_t tsum = 0;
	int empty = 0;
	for (int k = 0; k < nshares; k++) {
		int a = NB * k / nshares, e = NB * (k + 1) / nshares;
		cap_rng dk = d2;   /* every share starts from the same generator state */
		cap_decoder_batch sb = { e - a, len + a, (const uint32_t *const *)idv + a, ft, frow + a };
		cap_decoder_share sh = { NB, len, a, ntok };
		lsum += cap_decoder_loss_share(w, m, &sb, &sh, dropout, &dk, gs, &tok);
		tsum += tok;
		empty += a == e;
		ops->download(part, gs, sizeof(float) * P);
		for (size_t i = 0; i < P; i++)
			sum[i] += part[i];
		if (k == nshares - 1)
			CHECK(!memcmp(&dk, &d1, sizeof dk), "a share draws what the whole batch draws");
	}
	double worst = 0, gmax = 0;
	for (size_t i = 0; i < P; i++) {
		double dlt = fabs((double)sum[i] - whole[i]);
		if (dlt > worst) worst = dlt;
		if (fabs(whole[i]) > gmax) gmax = fabs(whole[i]);
	}
	CHECK(tsum == ntok && check_close(lsum / (double)ntok, lw, 1e-8, 0),
	      "%s L=%d p=%g %d shares (%d empty): loss %.12g == whole batch %.12g", ops->name, layers,
	      dropout, nshares, empty, lsum / (double)ntok, lw);
	CHECK(worst <= 1e-6 * gmax, "%s L=%d p=%g %d shares: summed gradient = whole batch's (max diff %.3g of %.3g)",
	      ops->name, layers, dropout, nshares, worst, gmax);
	ops->free(g);
	ops->free(gs);
	free(whole); free(sum); free(part);
	for (int b = 0; b < NB; b++)
		free(idv[b]);
	cap_decoder_work_free(w);
	cap_ops_unmirror(ops, ft, table);
	cap_decoder_free(m);
}

int main(void)
{
	seed_at_identity();
	const cap_ops *backends[2] = { cap_ops_ref(), cap_ops_cpu() };
	for (int k = 0; k < 2; k++)
		for (int layers = 1; layers <= 2; layers++)
			for (int dp = 0; dp < 2; dp++) {
				shares_sum_to_whole(backends[k], layers, dp ? 0.4f : 0, 1);
				shares_sum_to_whole(backends[k], layers, dp ? 0.4f : 0, 3);
				shares_sum_to_whole(backends[k], layers, dp ? 0.4f : 0, 16);   /* 5 empty */
			}
	return check_exit();
}

/* BLEU-1..4 as pycocoevalcap's bleu_scorer.py with option "closest" (see metrics.h). */
#include "eval/metrics.h"

#include <math.h>
#include <stdlib.h>

#include "core/error.h"
#include "eval/ngram.h"

/* coco-caption's constants: tiny keeps a zero match count from giving log(0); small keeps
 * a zero guess count from dividing by zero. */
#define BLEU_TINY 1e-15
#define BLEU_SMALL 1e-9

/* Per image: hypothesis length, closest reference length, and per order the clipped matches
 * ("correct") and the number of hypothesis n-grams ("guess"). */
typedef struct bleu_comps {
	double testlen, reflen;
	double correct[4], guess[4];
} bleu_comps;

static void bleu_cook(const cap_eval_item *it, bleu_comps *c)
{
	size_t len = it->hyp.n;
	c->testlen = (double)len;
	/* Closest reference length, the shorter on a tie: min over (|l - c|, l). */
	size_t best = it->refs[0].n;
	for (size_t r = 1; r < it->n_refs; r++) {
		size_t l = it->refs[r].n;
		size_t dl = l > len ? l - len : len - l, db = best > len ? best - len : len - best;
		if (dl < db || (dl == db && l < best)) best = l;
	}
	c->reflen = (double)best;

	/* Clip counts: the most times each n-gram occurs in any one reference. */
	size_t total = 0;
	cap_ngram **rg = cap_xcalloc(it->n_refs, sizeof *rg);
	size_t *rn = cap_xcalloc(it->n_refs, sizeof *rn);
	for (size_t r = 0; r < it->n_refs; r++) {
		rn[r] = cap_ngrams(it->refs[r].w, it->refs[r].n, 4, &rg[r]);
		total += rn[r];
	}
	cap_ngram *maxc = cap_xmalloc((total ? total : 1) * sizeof *maxc);
	size_t m = 0;
	for (size_t r = 0; r < it->n_refs; r++) {
		for (size_t i = 0; i < rn[r]; i++) maxc[m++] = rg[r][i];
		free(rg[r]);
	}
	free(rg); free(rn);
	m = cap_ngrams_reduce(maxc, m, 1);

	cap_ngram *hg;
	size_t hn = cap_ngrams(it->hyp.w, len, 4, &hg);
	for (int k = 0; k < 4; k++) {
		c->correct[k] = 0;
		c->guess[k] = len >= (size_t)k + 1 ? (double)(len - k) : 0;
	}
	for (size_t i = 0; i < hn; i++) {
		const cap_ngram *f = cap_ngrams_find(maxc, m, &hg[i]);
		if (f) c->correct[hg[i].n - 1] += hg[i].count < f->count ? hg[i].count : f->count;
	}
	free(hg);
	free(maxc);
}

/* BLEU-1..4 from summed counts: the cumulative product of the order precisions, its n-th
 * root, times the brevity penalty. */
static void bleu_score(const bleu_comps *c, double out[4])
{
	double prod = 1;
	double ratio = (c->testlen + BLEU_TINY) / (c->reflen + BLEU_SMALL);
	for (int k = 0; k < 4; k++) {
		prod *= (c->correct[k] + BLEU_TINY) / (c->guess[k] + BLEU_SMALL);
		out[k] = pow(prod, 1.0 / (k + 1));
		if (ratio < 1) out[k] *= exp(1 - 1 / ratio);
	}
}

int cap_bleu(const cap_eval_item *items, size_t n, double corpus[4], double (*per_image)[4])
{
	if (cap_metrics_check_set(items, n) < 0) return -1;
	bleu_comps tot = {0};
	for (size_t i = 0; i < n; i++) {
		bleu_comps c;
		bleu_cook(&items[i], &c);
		tot.testlen += c.testlen;
		tot.reflen += c.reflen;
		for (int k = 0; k < 4; k++) {
			tot.correct[k] += c.correct[k];
			tot.guess[k] += c.guess[k];
		}
		if (per_image) bleu_score(&c, per_image[i]);
	}
	bleu_score(&tot, corpus);
	return 0;
}

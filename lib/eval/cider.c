/* CIDEr-D as pycocoevalcap's cider_scorer.py (see metrics.h for the formula). Document
 * frequencies come from the references of the images being scored, as coco-caption does. */
#include "eval/metrics.h"

#include <math.h>
#include <stdlib.h>

#include "core/error.h"
#include "eval/ngram.h"

#define CIDER_SIGMA 6.0

/* A sentence as tf-idf vector: its n-grams (count replaced by the weight), the norm per order
 * and coco-caption's "length", which counts bigrams (its loop tests the 0-based order index
 * n == 1), i.e. max(0, words - 1). */
typedef struct cider_vec {
	cap_ngram *g;
	size_t n;
	double norm[4];
	double length;
} cider_vec;

static double doc_freq(const cap_ngram *df, size_t ndf, const cap_ngram *g)
{
	const cap_ngram *f = cap_ngrams_find(df, ndf, g);
	return f ? f->count : 0;
}

static void cider_vec_make(cider_vec *v, const cap_sent *s, const cap_ngram *df, size_t ndf,
                           double log_n)
{
	v->n = cap_ngrams(s->w, s->n, 4, &v->g);
	for (int k = 0; k < 4; k++) v->norm[k] = 0;
	v->length = 0;
	for (size_t i = 0; i < v->n; i++) {
		cap_ngram *g = &v->g[i];
		double tf = g->count;
		/* An n-gram no reference has counts as df = 1 (log 1 = 0). */
		double d = doc_freq(df, ndf, g);
		g->count = tf * (log_n - log(d > 1 ? d : 1));
		v->norm[g->n - 1] += g->count * g->count;
		if (g->n == 2) v->length += tf;
	}
	for (int k = 0; k < 4; k++) v->norm[k] = sqrt(v->norm[k]);
}

/* Sum over orders of the clipped cosine times the Gaussian length penalty. Both n-gram lists
 * are sorted, so matches are found by one merge. */
static double cider_sim(const cider_vec *h, const cider_vec *r)
{
	double val[4] = {0, 0, 0, 0};
	size_t i = 0, j = 0;
	while (i < h->n && j < r->n) {
		int c = cap_ngram_cmp(&h->g[i], &r->g[j]);
		if (c < 0) i++;
		else if (c > 0) j++;
		else {
			double a = h->g[i].count, b = r->g[j].count;
			val[h->g[i].n - 1] += (a < b ? a : b) * b;
			i++; j++;
		}
	}
	double delta = h->length - r->length;
	double pen = exp(-(delta * delta) / (2 * CIDER_SIGMA * CIDER_SIGMA));
	double sum = 0;
	for (int k = 0; k < 4; k++) {
		if (h->norm[k] != 0 && r->norm[k] != 0) val[k] /= h->norm[k] * r->norm[k];
		sum += val[k] * pen;
	}
	return sum;
}

int cap_cider_d(const cap_eval_item *items, size_t n, double *corpus, double *per_image)
{
	if (cap_metrics_check_set(items, n) < 0) return -1;
	/* Document frequency: in how many images' reference sets each n-gram occurs. Gather the
	 * unique n-grams of each image's references (count 1), then sum over images. */
	size_t cap = 0, ndf = 0;
	cap_ngram *df = NULL;
	for (size_t i = 0; i < n; i++) {
		size_t start = ndf;
		for (size_t r = 0; r < items[i].n_refs; r++) {
			cap_ngram *g;
			size_t m = cap_ngrams(items[i].refs[r].w, items[i].refs[r].n, 4, &g);
			if (ndf + m > cap) {
				cap = (ndf + m) * 2;
				df = cap_xrealloc(df, cap * sizeof *df);
			}
			for (size_t k = 0; k < m; k++) {
				df[ndf] = g[k];
				df[ndf++].count = 1;
			}
			free(g);
		}
		ndf = start + cap_ngrams_reduce(df + start, ndf - start, 1);
	}
	ndf = cap_ngrams_reduce(df, ndf, 0);

	double log_n = log((double)n), total = 0;
	for (size_t i = 0; i < n; i++) {
		cider_vec h;
		cider_vec_make(&h, &items[i].hyp, df, ndf, log_n);
		double score = 0;
		for (size_t r = 0; r < items[i].n_refs; r++) {
			cider_vec v;
			cider_vec_make(&v, &items[i].refs[r], df, ndf, log_n);
			score += cider_sim(&h, &v);
			free(v.g);
		}
		free(h.g);
		/* Mean over the 4 orders, mean over references, times 10. */
		score = score / 4 / (double)items[i].n_refs * 10.0;
		if (per_image) per_image[i] = score;
		total += score;
	}
	free(df);
	*corpus = total / (double)n;
	return 0;
}

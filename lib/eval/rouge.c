/* ROUGE-L as pycocoevalcap's rouge.py (see metrics.h). */
#include "eval/metrics.h"

#include <stdlib.h>

#include "core/error.h"

#define ROUGE_BETA 1.2

size_t cap_lcs(const uint32_t *a, size_t na, const uint32_t *b, size_t nb)
{
	/* One row of the table at a time: row[j] = LCS of a[0..i) and b[0..j). */
	size_t *row = cap_xcalloc(nb + 1, sizeof *row);
	for (size_t i = 1; i <= na; i++) {
		size_t diag = 0;   /* table[i-1][j-1] */
		for (size_t j = 1; j <= nb; j++) {
			size_t up = row[j];
			if (a[i - 1] == b[j - 1]) row[j] = diag + 1;
			else if (row[j - 1] > row[j]) row[j] = row[j - 1];
			diag = up;
		}
	}
	size_t r = row[nb];
	free(row);
	return r;
}

double cap_rouge_l_one(const cap_sent *hyp, const cap_sent *refs, size_t n_refs)
{
	double pmax = 0, rmax = 0;
	for (size_t r = 0; r < n_refs; r++) {
		size_t l = cap_lcs(refs[r].w, refs[r].n, hyp->w, hyp->n);
		/* An empty sentence has no common subsequence: precision/recall 0, not 0/0. */
		double p = hyp->n ? (double)l / (double)hyp->n : 0;
		double q = refs[r].n ? (double)l / (double)refs[r].n : 0;
		if (p > pmax) pmax = p;
		if (q > rmax) rmax = q;
	}
	if (pmax == 0 || rmax == 0) return 0;
	double b2 = ROUGE_BETA * ROUGE_BETA;
	return (1 + b2) * pmax * rmax / (rmax + b2 * pmax);
}

int cap_rouge_l(const cap_eval_item *items, size_t n, double *corpus, double *per_image)
{
	if (cap_metrics_check_set(items, n) < 0) return -1;
	double total = 0;
	for (size_t i = 0; i < n; i++) {
		double s = cap_rouge_l_one(&items[i].hyp, items[i].refs, items[i].n_refs);
		if (per_image) per_image[i] = s;
		total += s;
	}
	*corpus = total / (double)n;
	return 0;
}

#include "eval/metrics.h"

#include <stdlib.h>

#include "core/error.h"

int cap_metrics(const cap_eval_item *items, size_t n, cap_scores *corpus, cap_scores *per_image)
{
	double (*bleu)[4] = NULL, *cider = NULL, *rouge = NULL;
	if (per_image && n) {
		bleu = cap_xcalloc(n, sizeof *bleu);
		cider = cap_xcalloc(n, sizeof *cider);
		rouge = cap_xcalloc(n, sizeof *rouge);
	}
	int rc = -1;
	if (cap_bleu(items, n, corpus->bleu, bleu) < 0) goto out;
	if (cap_cider_d(items, n, &corpus->cider, cider) < 0) goto out;
	if (cap_rouge_l(items, n, &corpus->rouge_l, rouge) < 0) goto out;
	if (per_image)
		for (size_t i = 0; i < n; i++) {
			for (int k = 0; k < 4; k++) per_image[i].bleu[k] = bleu[i][k];
			per_image[i].cider = cider[i];
			per_image[i].rouge_l = rouge[i];
		}
	rc = 0;
out:
	free(bleu); free(cider); free(rouge);
	return rc;
}

int cap_metrics_check_set(const cap_eval_item *items, size_t n)
{
	if (n == 0) return cap_fail("no image to score (empty set)");
	for (size_t i = 0; i < n; i++)
		if (items[i].n_refs == 0) return cap_fail("image %zu has no reference", i);
	return 0;
}

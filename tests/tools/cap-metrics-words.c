/* Test tool: scores word lists with lib/eval/metrics.h, bypassing text normalisation, so the
 * oracle tests (nltk, a Python re-implementation) see exactly the same tokens.
 * Input (stdin): lines IMAGE<TAB>H|R<TAB>words separated by single spaces (H: the generated
 * caption, R: a reference). Output: one JSON line {"bleu":[4],"cider":x,"rouge_l":x,
 * "n":N,"hyp_without_ref":N,"ref_without_hyp":N}, then one line per image
 * {"image":..,"bleu":[4],"cider":..,"rouge_l":..}. Exit 1 with a message on an empty set. */
#include <err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "eval/evalset.h"
#include "eval/metrics.h"

int main(void)
{
	cap_evalset *e = cap_evalset_new();
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	ssize_t len;
	while ((len = getline(&line, &cap, stdin)) > 0) {
		lineno++;
		if (line[len - 1] == '\n') line[--len] = 0;
		char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
		if (!t2 || t2 != t1 + 2 || (t1[1] != 'H' && t1[1] != 'R'))
			errx(2, "line %zu: expected IMAGE<TAB>H|R<TAB>words", lineno);
		*t1 = 0;
		char *text = t2 + 1;
		const char **w = malloc((strlen(text) + 1) * sizeof *w);
		size_t n = 0;
		for (char *tok = strtok(text, " "); tok; tok = strtok(NULL, " ")) w[n++] = tok;
		if (t1[1] == 'R') cap_evalset_add_ref(e, line, w, n);
		else if (cap_evalset_add_hyp(e, line, w, n) < 0) errx(1, "line %zu: %s", lineno, cap_errmsg());
		free(w);
	}
	free(line);
	cap_evalset_join j;
	cap_evalset_joined(e, &j);
	cap_scores c, *per = calloc(j.n ? j.n : 1, sizeof *per);
	if (cap_metrics(j.items, j.n, &c, per) < 0) errx(1, "%s", cap_errmsg());
	printf("{\"bleu\":[%.17g,%.17g,%.17g,%.17g],\"cider\":%.17g,\"rouge_l\":%.17g,\"n\":%zu,"
	       "\"hyp_without_ref\":%zu,\"ref_without_hyp\":%zu}\n", c.bleu[0], c.bleu[1], c.bleu[2],
	       c.bleu[3], c.cider, c.rouge_l, j.n, j.hyp_without_ref, j.ref_without_hyp);
	for (size_t i = 0; i < j.n; i++)
		printf("{\"image\":\"%s\",\"bleu\":[%.17g,%.17g,%.17g,%.17g],\"cider\":%.17g,\"rouge_l\":%.17g}\n",
		       j.images[i], per[i].bleu[0], per[i].bleu[1], per[i].bleu[2], per[i].bleu[3],
		       per[i].cider, per[i].rouge_l);
	free(per);
	cap_evalset_join_free(&j);
	cap_evalset_free(e);
	return 0;
}

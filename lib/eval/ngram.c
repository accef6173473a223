#include "eval/ngram.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

int cap_ngram_cmp(const void *pa, const void *pb)
{
	const cap_ngram *a = pa, *b = pb;
	if (a->n != b->n) return a->n < b->n ? -1 : 1;
	for (int i = 0; i < CAP_NGRAM_MAX; i++)
		if (a->w[i] != b->w[i]) return a->w[i] < b->w[i] ? -1 : 1;
	return 0;
}

size_t cap_ngrams_reduce(cap_ngram *a, size_t n, int use_max)
{
	if (n == 0) return 0;
	qsort(a, n, sizeof *a, cap_ngram_cmp);
	size_t m = 0;
	for (size_t i = 1; i < n; i++) {
		if (cap_ngram_cmp(&a[m], &a[i]) == 0) {
			if (use_max) { if (a[i].count > a[m].count) a[m].count = a[i].count; }
			else a[m].count += a[i].count;
		} else {
			a[++m] = a[i];
		}
	}
	return m + 1;
}

size_t cap_ngrams(const uint32_t *s, size_t len, int max_n, cap_ngram **out)
{
	if (max_n > CAP_NGRAM_MAX) max_n = CAP_NGRAM_MAX;
	size_t cap = 0;
	for (int k = 1; k <= max_n; k++)
		if (len >= (size_t)k) cap += len - k + 1;
	cap_ngram *a = cap_xmalloc((cap ? cap : 1) * sizeof *a);
	size_t m = 0;
	for (int k = 1; k <= max_n; k++) {
		for (size_t i = 0; i + k <= len; i++) {
			cap_ngram *g = &a[m++];
			memset(g, 0, sizeof *g);
			g->n = (uint32_t)k;
			memcpy(g->w, s + i, k * sizeof *s);
			g->count = 1;
		}
	}
	*out = a;
	return cap_ngrams_reduce(a, m, 0);
}

const cap_ngram *cap_ngrams_find(const cap_ngram *a, size_t n, const cap_ngram *key)
{
	return bsearch(key, a, n, sizeof *a, cap_ngram_cmp);
}

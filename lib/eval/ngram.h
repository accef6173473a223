/* N-gram counts of a sentence of word ids, for the caption metrics (BLEU, CIDEr-D).
 * A sentence's n-grams of orders 1..CAP_NGRAM_MAX are kept as one sorted array of unique
 * entries with counts: sorted arrays merge and binary-search without a hash table, and the
 * sentences of captioning are short (a few dozen n-grams each). */
#ifndef CAP_NGRAM_H
#define CAP_NGRAM_H
#include <stddef.h>
#include <stdint.h>

#define CAP_NGRAM_MAX 4

typedef struct cap_ngram {
	uint32_t n;                  /* order, 1..CAP_NGRAM_MAX */
	uint32_t w[CAP_NGRAM_MAX];   /* the words; unused slots are 0 */
	double count;                /* a count, or a weight derived from it (CIDEr's tf-idf) */
} cap_ngram;

/* Orders entries by n, then by words (count ignored). */
int cap_ngram_cmp(const void *a, const void *b);
/* The unique n-grams of orders 1..max_n of s[0..len) with their counts, sorted by
 * cap_ngram_cmp. Returns their number; *out is malloc'd (free it; may be non-NULL when 0). */
size_t cap_ngrams(const uint32_t *s, size_t len, int max_n, cap_ngram **out);
/* Sorts a[0..n) and merges equal n-grams, keeping the maximum count (use_max) or the sum.
 * Returns the new length. */
size_t cap_ngrams_reduce(cap_ngram *a, size_t n, int use_max);
/* The entry equal to key in the sorted a[0..n), or NULL. */
const cap_ngram *cap_ngrams_find(const cap_ngram *a, size_t n, const cap_ngram *key);
#endif

/* BLEU, CIDEr-D and ROUGE-L (lib/eval/metrics.h) on tiny cases computed by hand from coco-caption's
 * definitions; each case is chosen so that a plausible misreading (no clipping, the longer
 * reference on a length tie, max of F instead of separate maxima, no length penalty, words
 * instead of bigrams as CIDEr's "length") gives another number. nltk and an independent
 * Python re-implementation check larger random sets in tests/py/test_eval_oracle.py. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/error.h"
#include "eval/evalset.h"
#include "eval/metrics.h"

/* Sentences from strings of lowercase letters: "abc" = words a, b, c. */
static cap_sent S(const char *s)
{
	size_t n = strlen(s);
	uint32_t *w = malloc((n ? n : 1) * sizeof *w);
	for (size_t i = 0; i < n; i++) w[i] = (uint32_t)s[i];
	return (cap_sent){ w, n };
}

typedef struct img { const char *hyp; const char *refs[4]; } img;

/* Builds items from a table (refs lists end at NULL). */
static cap_eval_item *items_of(const img *t, size_t n)
{
	cap_eval_item *it = calloc(n, sizeof *it);
	for (size_t i = 0; i < n; i++) {
		it[i].hyp = S(t[i].hyp);
		cap_sent *r = calloc(4, sizeof *r);
		size_t k = 0;
		while (k < 4 && t[i].refs[k]) { r[k] = S(t[i].refs[k]); k++; }
		it[i].refs = r;
		it[i].n_refs = k;
	}
	return it;
}

static void items_free(cap_eval_item *it, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free((void *)it[i].hyp.w);
		for (size_t k = 0; k < it[i].n_refs; k++) free((void *)it[i].refs[k].w);
		free((void *)it[i].refs);
	}
	free(it);
}

#define CLOSE(a, b) check_close((a), (b), 1e-9, 1e-12)
/* BLEU carries coco-caption's constants (1e-9 added to guess counts): ~1e-9 relative. */
#define BCLOSE(a, b) check_close((a), (b), 1e-8, 1e-12)

static void test_bleu(void)
{
	double b[4], per[2][4];
	/* identical: 1 (up to coco's tiny/small constants) */
	img t1[] = { { "abcd", { "abcd", NULL } } };
	cap_eval_item *it = items_of(t1, 1);
	cap_bleu(it, 1, b, NULL);
	CHECK(fabs(b[0] - 1) < 1e-9 && fabs(b[3] - 1) < 1e-9, "BLEU of an exact match is 1 (%g %g)", b[0], b[3]);
	items_free(it, 1);

	/* clipping: hyp a a a, ref a b -> p1 = 1/3 (not 3/3), c=3 > r=2 so BP = 1 */
	img t2[] = { { "aaa", { "ab", NULL } } };
	it = items_of(t2, 1);
	cap_bleu(it, 1, b, NULL);
	CHECK(BCLOSE(b[0], 1.0 / 3), "BLEU-1 clips counts at the reference's: %.12f", b[0]);
	CHECK(b[1] < 1e-6, "BLEU-2 with no bigram match is ~0 (coco's tiny): %g", b[1]);
	items_free(it, 1);

	/* brevity: hyp ab, refs abcd and abcdef -> closest 4, BP = exp(1 - 4/2) */
	img t3[] = { { "ab", { "abcd", "abcdef", NULL } } };
	it = items_of(t3, 1);
	cap_bleu(it, 1, b, NULL);
	CHECK(BCLOSE(b[0], exp(-1)) && BCLOSE(b[1], exp(-1)), "BLEU brevity penalty from the closest reference: %.12f %.12f", b[0], b[1]);
	items_free(it, 1);

	/* tie: hyp abc, refs ab (len 2) and abcd (len 4): the shorter wins, so c > r, BP 1 */
	img t4[] = { { "abc", { "ab", "abcd", NULL } } };
	it = items_of(t4, 1);
	cap_bleu(it, 1, b, NULL);
	CHECK(BCLOSE(b[0], 1) && BCLOSE(b[2], 1), "BLEU length tie takes the shorter reference: %.12f (longer would give %.6f)", b[0], exp(1 - 4.0 / 3));
	items_free(it, 1);

	/* corpus level: sums over images, not a mean of image scores.
	 * A: hyp ab, ref abcd: c1 2/2, c2 1/1, c=2 r=4. B: hyp xyz, ref xyw: c1 2/3, c2 1/2, c=r=3.
	 * p1 = 4/5, p2 = 2/3, BP = exp(1 - 7/5). */
	img t5[] = { { "ab", { "abcd", NULL } }, { "xyz", { "xyw", NULL } } };
	it = items_of(t5, 2);
	cap_bleu(it, 2, b, per);
	double bp = exp(1 - 7.0 / 5);
	CHECK(BCLOSE(b[0], 0.8 * bp) && BCLOSE(b[1], sqrt(0.8 * 2 / 3.0) * bp), "corpus BLEU-1/2: %.12f %.12f", b[0], b[1]);
	CHECK(BCLOSE(per[0][0], exp(-1)) && BCLOSE(per[1][0], 2 / 3.0) && BCLOSE(per[1][1], sqrt(2 / 3.0 * 0.5)),
	      "per-image BLEU: %.9f %.9f %.9f", per[0][0], per[1][0], per[1][1]);
	items_free(it, 2);

	/* empty hypothesis: guess 0, BLEU ~0 with BP exp(1 - r/tiny) -> 0; no NaN */
	img t6[] = { { "", { "ab", NULL } }, { "ab", { "ab", NULL } } };
	it = items_of(t6, 2);
	cap_bleu(it, 2, b, per);
	CHECK(!isnan(b[0]) && !isnan(per[0][0]) && per[0][0] < 1e-6, "empty hypothesis scores 0, not NaN (%g)", per[0][0]);
	items_free(it, 2);

	CHECK(cap_bleu(NULL, 0, b, NULL) < 0 && strstr(cap_errmsg(), "empty"), "empty set is an error");
}

static void test_cider(void)
{
	double c, per[2];
	/* two images, exact matches with no shared n-gram: orders 1 and 2 give cosine 1, orders
	 * 3 and 4 are empty (0): (1 + 1 + 0 + 0) / 4 * 10 = 5 */
	img t1[] = { { "ab", { "ab", NULL } }, { "cd", { "cd", NULL } } };
	cap_eval_item *it = items_of(t1, 2);
	cap_cider_d(it, 2, &c, per);
	CHECK(CLOSE(c, 5) && CLOSE(per[0], 5), "CIDEr-D of exact 2-word matches is 5: %.12f", c);
	items_free(it, 2);

	/* document frequency: "a" is in both images' references, so its weight is log2 - log2 = 0.
	 * Image 1 (refs ab, ac): vs ab orders 1,2 give 1 each, vs ac 0 -> (2 + 0) / 4 / 2 * 10 = 2.5.
	 * Image 2 (hyp ae, ref ad): only "a" matches, weight 0 -> 0. Mean 1.25. */
	img t2[] = { { "ab", { "ab", "ac", NULL } }, { "ae", { "ad", NULL } } };
	it = items_of(t2, 2);
	cap_cider_d(it, 2, &c, per);
	CHECK(CLOSE(per[0], 2.5) && CLOSE(per[1], 0) && CLOSE(c, 1.25), "CIDEr-D idf from the evaluated references: %.12f %.12f", per[0], per[1]);
	items_free(it, 2);

	/* length penalty on bigram counts (coco's "length"): hyp abc (2 bigrams), ref ab (1):
	 * order 1: 2/sqrt(6), order 2: 1/sqrt(2), orders 3, 4: 0 (empty reference vector);
	 * times exp(-1/72); / 4 * 10. */
	img t3[] = { { "abc", { "ab", NULL } }, { "de", { "de", NULL } } };
	it = items_of(t3, 2);
	cap_cider_d(it, 2, &c, per);
	double want = (2 / sqrt(6.0) + 1 / sqrt(2.0)) * exp(-1.0 / 72) / 4 * 10;
	CHECK(CLOSE(per[0], want) && CLOSE(c, (want + 5) / 2), "CIDEr-D Gaussian length penalty: %.12f want %.12f", per[0], want);
	items_free(it, 2);

	/* clipping: hyp aa has tf(a) = 2 against 1 in the reference: min(2w, w) * w / (2w * sqrt2 w)
	 * = 1/(2 sqrt 2) for order 1, no bigram match; / 4 * 10. Image 2 has no match: 0. */
	img t4[] = { { "aa", { "ab", NULL } }, { "x", { "y", NULL } } };
	it = items_of(t4, 2);
	cap_cider_d(it, 2, &c, per);
	want = 1 / (2 * sqrt(2.0)) / 4 * 10;
	CHECK(CLOSE(per[0], want) && CLOSE(per[1], 0) && CLOSE(c, want / 2), "CIDEr-D clips hypothesis weights: %.12f want %.12f", per[0], want);
	items_free(it, 2);

	/* one image: log N = 0 makes every weight 0 (coco-caption gives 0 too) */
	img t5[] = { { "ab", { "ab", NULL } } };
	it = items_of(t5, 1);
	cap_cider_d(it, 1, &c, NULL);
	CHECK(c == 0, "CIDEr-D of a single image is 0 (idf is log 1)");
	items_free(it, 1);
	CHECK(cap_cider_d(NULL, 0, &c, NULL) < 0, "CIDEr-D of an empty set is an error");
}

static void test_rouge(void)
{
	double r, per[2];
	/* P = max(2/4, 2/4), R = max(2/3, 2/2): (1 + 1.44) * 0.5 * 1 / (1 + 1.44 * 0.5) */
	img t1[] = { { "abcd", { "ace", "bd", NULL } } };
	cap_eval_item *it = items_of(t1, 1);
	cap_rouge_l(it, 1, &r, NULL);
	CHECK(CLOSE(r, 2.44 * 0.5 / 1.72), "ROUGE-L: %.12f", r);
	items_free(it, 1);
	/* separate maxima: ref abcdefgh gives P = 1, ref d gives R = 1 -> 1 (max of F would be 0.63) */
	img t2[] = { { "abcd", { "abcdefgh", "d", NULL } }, { "", { "ab", NULL } } };
	it = items_of(t2, 2);
	cap_rouge_l(it, 2, &r, per);
	CHECK(CLOSE(per[0], 1) && per[1] == 0 && CLOSE(r, 0.5), "ROUGE-L takes P and R maxima separately; empty hypothesis 0: %.12f %.12f", per[0], per[1]);
	items_free(it, 2);
	uint32_t a[] = { 1, 2, 3, 4, 5, 6 }, b[] = { 2, 9, 4, 6, 1 };
	CHECK(cap_lcs(a, 6, b, 5) == 3 && cap_lcs(b, 5, a, 6) == 3 && cap_lcs(a, 0, b, 5) == 0, "LCS lengths");
}

static void test_evalset(void)
{
	cap_evalset *e = cap_evalset_new();
	const char *w1[] = { "a", "dog", "runs" }, *w2[] = { "a", "cat" }, *w3[] = { "dog" };
	cap_evalset_add_ref(e, "i1", w1, 3);
	cap_evalset_add_ref(e, "i1", w2, 2);
	cap_evalset_add_ref(e, "i2", w2, 2);
	cap_evalset_add_ref(e, "i3", w3, 1);
	CHECK(cap_evalset_add_hyp(e, "i3", w3, 1) == 0, "hypothesis added");
	CHECK(cap_evalset_add_hyp(e, "i9", w3, 1) == 0, "hypothesis without reference added");
	CHECK(cap_evalset_add_hyp(e, "i1", w1, 3) == 0, "hypothesis i1 added");
	CHECK(cap_evalset_add_hyp(e, "i1", w1, 3) < 0 && strstr(cap_errmsg(), "i1"), "second hypothesis for an image refused");
	cap_evalset_join j;
	cap_evalset_joined(e, &j);
	CHECK(j.n == 2 && strcmp(j.images[0], "i3") == 0 && strcmp(j.images[1], "i1") == 0 &&
	      j.items[1].n_refs == 2, "join keeps caption order and all references");
	CHECK(j.hyp_without_ref == 1 && j.ref_without_hyp == 1 && strcmp(j.first_hyp_without_ref, "i9") == 0 &&
	      strcmp(j.first_ref_without_hyp, "i2") == 0 && j.n_refs == 4 && j.n_ref_images == 3,
	      "missing references and missing captions are counted");
	/* same words get the same ids */
	CHECK(j.items[1].hyp.w[1] == j.items[1].refs[0].w[1] && j.items[1].hyp.w[0] == j.items[1].refs[1].w[0],
	      "words interned to equal ids");
	cap_scores s;
	CHECK(cap_metrics(j.items, j.n, &s, NULL) == 0 && CLOSE(s.bleu[0], 1), "scores of the joined set");
	cap_evalset_join_free(&j);
	cap_evalset_free(e);
}

int main(void)
{
	test_bleu();
	test_cider();
	test_rouge();
	test_evalset();
	return check_exit();
}

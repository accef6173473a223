/* Caption metrics as coco-caption (pycocoevalcap) computes them, on sentences given as word
 * ids (any uint32 values; cap-eval interns normalised words). Every function scores a set of
 * images, each with one hypothesis and at least one reference:
 *
 *   BLEU-1..4 (bleu.c): corpus level as bleu_scorer.py with option "closest": clipped n-gram
 *     matches (clip = the most times the n-gram occurs in any one reference) and guesses are
 *     summed over all images, BLEU-n = prod_{k<=n} ((correct_k + 1e-15) / (guess_k + 1e-9))^(1/n),
 *     times the brevity penalty exp(1 - r/c) when c < r, where c sums the hypothesis lengths
 *     and r the reference lengths closest to each hypothesis length (ties: the shorter).
 *     Per image: the same formula on that image alone (pycocoevalcap's per-image list).
 *   CIDEr-D (cider.c): cider_scorer.py: n-grams of orders 1..4 weighted tf * (log N - log
 *     max(1, df)), N = number of images scored and df = number of images whose references
 *     contain the n-gram; per order the cosine of hypothesis and reference vectors with the
 *     hypothesis weights clipped at the reference weights (sum min(h, r) * r / (|h| |r|), 0
 *     when a norm is 0) times the length penalty exp(-d^2 / (2 * 6^2)), d the difference of the
 *     two sentences' bigram counts (coco-caption's "length"); averaged over the orders, then
 *     over the references, times 10. The corpus score is the mean over images. It is on a
 *     0..10 scale, not 0..1.
 *   ROUGE-L (rouge.c): rouge.py: with LCS the longest common subsequence, P = max over
 *     references of LCS/|hyp|, R = max of LCS/|ref| (maxima taken separately), score
 *     (1 + b^2) P R / (R + b^2 P) with b = 1.2, 0 when P or R is 0; the corpus score is the
 *     mean over images.
 *
 * Functions return 0, or -1 with cap_errmsg() when the set is empty or an image has no
 * reference (an empty set has no score, not a score of 0). */
#ifndef CAP_METRICS_H
#define CAP_METRICS_H
#include <stddef.h>
#include <stdint.h>

typedef struct cap_sent {
	const uint32_t *w;
	size_t n;
} cap_sent;

/* One image: its hypothesis and its references. */
typedef struct cap_eval_item {
	cap_sent hyp;
	const cap_sent *refs;
	size_t n_refs;
} cap_eval_item;

typedef struct cap_scores {
	double bleu[4];   /* BLEU-1..4, 0..1 */
	double cider;     /* CIDEr-D, 0..10 as coco-caption reports it */
	double rouge_l;   /* 0..1 */
} cap_scores;

/* per_image (may be NULL) receives n rows of BLEU-1..4 / one score per image. */
int cap_bleu(const cap_eval_item *items, size_t n, double corpus[4], double (*per_image)[4]);
int cap_cider_d(const cap_eval_item *items, size_t n, double *corpus, double *per_image);
int cap_rouge_l(const cap_eval_item *items, size_t n, double *corpus, double *per_image);
/* ROUGE-L of one image (references n_refs >= 1). */
double cap_rouge_l_one(const cap_sent *hyp, const cap_sent *refs, size_t n_refs);
/* Length of the longest common subsequence of a and b (the plain O(|a| |b|) table). */
size_t cap_lcs(const uint32_t *a, size_t na, const uint32_t *b, size_t nb);
/* All of them; per_image (may be NULL) receives n entries. */
int cap_metrics(const cap_eval_item *items, size_t n, cap_scores *corpus, cap_scores *per_image);
/* 0 when the set is non-empty and every image has a reference, else -1 with a message. */
int cap_metrics_check_set(const cap_eval_item *items, size_t n);
#endif

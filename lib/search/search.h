/* Caption search over an abstract step function: greedy, beam search and sampling, for a
 * batch of images at once. The model is reached only through cap_stepper, so the search is
 * tested with a toy model (tests/unit/test_search.c) and driven by the LSTM decoder in
 * cap-generate (lib/decoder/decoder.h).
 *
 * Protocol: the caller runs the image step for B images (rows 0..B-1 of the model's state,
 * one per image) and then calls a search function, which feeds the start id to every row,
 * reads log-probabilities over the vocabulary, and feeds words back, reordering, duplicating
 * and dropping rows through gather as hypotheses live and die. At most max_len words are
 * predicted per hypothesis: a hypothesis that reaches max_len words without the end id stops
 * there (it counts as finished; its log-probability then has no end term).
 *
 * Greedy (beam 1): the argmax word is fed back until the end id or max_len words.
 * Beam (beam K): at every step, among all one-word extensions of an image's live hypotheses,
 * the k best by summed log-probability are kept, k = K minus the number already finished;
 * those whose word is the end id are set aside (finished) and the beam shrinks by as many.
 * It stops when none is live or after max_len words (then the live ones count as finished).
 * The finished hypotheses are ranked by log-probability, or with length_penalty A > 0 by
 * GNMT's normalised score logprob / ((5 + words) / 6)^A; the best nbest are returned. Ties are
 * broken by position (earlier hypothesis row, then lower word id), so results are
 * deterministic.
 * Sampling: each word is drawn from softmax(logp / temperature), restricted to the top_k most
 * probable words when top_k > 0, with a generator seeded from (seed, image index, sample
 * number): the same seed gives the same captions whatever the batch size or thread count.
 * The log-probabilities reported are always the model's own (untempered) ones.
 * The pad and start ids are never chosen as words by any method (they are not words: a model
 * may still give them probability), so captions hold neither them nor the end id. */
#ifndef CAP_SEARCH_H
#define CAP_SEARCH_H
#include <stddef.h>
#include <stdint.h>

typedef struct cap_stepper {
	void *ctx;
	int vocab;   /* V */
	/* Feeds ids[0..rows) to the current rows (rows = the current row count) and writes the
	 * log-probabilities of the next word to logp (rows, V). Returns 0 or -1 (cap_errmsg). */
	int (*step)(void *ctx, const uint32_t *ids, int rows, float *logp);
	/* Row i < n of the new state = row idx[i] of the old one; the row count becomes n.
	 * Returns 0 or -1. */
	int (*gather)(void *ctx, const int *idx, int n);
	/* Optional (NULL: not offered): step, reporting only the k best words of each row instead
	 * of all V: vals (rows, k) their log-probabilities, idx (rows, k) the words, best first, ties
	 * to the lower id, the words ex0 and ex1 (pad and start) left out, -1 past a row's last
	 * word; 1 <= k <= topk_max. Greedy and beam search (beam <= topk_max) then use it; their
	 * results are the same as with step (the k best of each row hold every extension that can
	 * enter an image's k best). On a GPU it spares sending the whole (rows, V) back. */
	int (*step_topk)(void *ctx, const uint32_t *ids, int rows, int k, int ex0, int ex1,
	                 float *vals, int32_t *idx);
	int topk_max;
} cap_stepper;

typedef struct cap_search_opts {
	int beam;                /* K >= 1; 1 = greedy */
	int max_len;             /* words per caption, >= 0 */
	double length_penalty;   /* GNMT alpha; 0 ranks by log-probability */
	int nbest;               /* hypotheses returned per image, 1..beam (samples with sample) */
	int sample;              /* 1: sampling instead of greedy/beam */
	double temperature;      /* > 0 */
	int top_k;               /* 0 = the whole vocabulary */
	uint64_t seed;
	uint32_t pad_id, start_id, end_id;
} cap_search_opts;

/* Defaults: greedy, max_len 20, nbest 1, temperature 1, pad 0, start 1, end 2. */
void cap_search_opts_default(cap_search_opts *o);
/* 0, or -1 with a message naming the bad option. */
int cap_search_opts_check(const cap_search_opts *o);
/* Rows the model state needs for a batch of B images with these options. */
int cap_search_rows(const cap_search_opts *o, int batch);

typedef struct cap_hyp {
	uint32_t *ids;     /* the words, without start/end (malloc'd) */
	size_t n;
	double logprob;    /* sum of the words' and (when reached) the end's log-probabilities */
	double score;      /* the ranking score (logprob, or the length-normalised one) */
	int ended;         /* 1 when it ended with the end id, 0 when cut at max_len */
} cap_hyp;

typedef struct cap_search_result {
	cap_hyp *hyps;     /* best first */
	int n;
} cap_search_result;

/* Searches for B images whose image step has been run (rows 0..B-1). first_index is the
 * index of image 0 in the whole input (it seeds sampling). res: B results, filled; free each
 * with cap_search_result_free. Returns 0 or -1 (a step/gather failure). */
int cap_search(const cap_stepper *m, int batch, const cap_search_opts *o, uint64_t first_index,
               cap_search_result *res);
void cap_search_result_free(cap_search_result *r);
#endif

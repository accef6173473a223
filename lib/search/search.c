/* Greedy, beam and sampling search over a cap_stepper (see search.h). */
#include "search/search.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/bigmem.h"
#include "core/error.h"
#include "core/rng.h"

void cap_search_opts_default(cap_search_opts *o)
{
	memset(o, 0, sizeof *o);
	o->beam = 1;
	o->max_len = 20;
	o->nbest = 1;
	o->temperature = 1;
	o->pad_id = 0;
	o->start_id = 1;
	o->end_id = 2;
}

int cap_search_opts_check(const cap_search_opts *o)
{
	if (o->beam < 1 || o->beam > 1000) return cap_fail("--beam must be 1..1000, not %d", o->beam);
	if (o->max_len < 0 || o->max_len > 100000)
		return cap_fail("--max-len must be 0..100000, not %d", o->max_len);
	if (!(o->length_penalty >= 0 && o->length_penalty <= 100))
		return cap_fail("--length-penalty must be 0..100");
	if (o->nbest < 1) return cap_fail("--nbest must be at least 1");
	if (o->sample) {
		if (o->nbest > 1000) return cap_fail("--nbest must be at most 1000");
		if (!(o->temperature > 0 && o->temperature < 1e6))
			return cap_fail("--temperature must be positive");
		if (o->top_k < 0) return cap_fail("--top-k must be >= 0");
	} else if (o->nbest > o->beam) {
		return cap_fail("--nbest %d is more than --beam %d keeps", o->nbest, o->beam);
	}
	return 0;
}

int cap_search_rows(const cap_search_opts *o, int batch)
{
	return batch * (o->sample ? o->nbest : o->beam);
}

void cap_search_result_free(cap_search_result *r)
{
	for (int i = 0; i < r->n; i++) free(r->hyps[i].ids);
	free(r->hyps);
	r->hyps = NULL;
	r->n = 0;
}

static void hyp_set(cap_hyp *h, const uint32_t *ids, size_t n, double logprob, int ended)
{
	h->ids = cap_xmalloc((n ? n : 1) * sizeof *ids);
	if (n) memcpy(h->ids, ids, n * sizeof *ids);
	h->n = n;
	h->logprob = logprob;
	h->score = logprob;
	h->ended = ended;
}

static int banned(const cap_search_opts *o, uint32_t w)
{
	return w == o->pad_id || w == o->start_id;
}

/* Row-wise argmax over the allowed words, the lowest index on ties (as torch.argmax). */
static uint32_t argmax_slow(const float *x, int n, const cap_search_opts *o)
{
	int best = -1;
	for (int i = 0; i < n; i++)
		if (!banned(o, (uint32_t)i) && (best < 0 || x[i] > x[best])) best = i;
	return (uint32_t)(best < 0 ? 0 : best);
}

static uint32_t argmax(const float *x, int n, const cap_search_opts *o)
{
	/* The maximum with eight independent lanes (a chain through one running index is several
	 * times slower), then the first allowed word holding it. */
	float m[8];
	for (int j = 0; j < 8; j++) m[j] = -INFINITY;
	int i = 0;
	for (; i + 8 <= n; i += 8)
		for (int j = 0; j < 8; j++) m[j] = x[i + j] > m[j] ? x[i + j] : m[j];
	for (; i < n; i++) m[0] = x[i] > m[0] ? x[i] : m[0];
	float mx = m[0];
	for (int j = 1; j < 8; j++) mx = m[j] > mx ? m[j] : mx;
	for (i = 0; i < n; i++)
		if (x[i] == mx && !banned(o, (uint32_t)i)) return (uint32_t)i;
	return argmax_slow(x, n, o);   /* the maximum is a banned word's, or the row is NaN */
}

/* A word id as row_topk's excluded column: -1 when it is no column of the vocabulary. */
static int word_or_none(uint32_t w, int V)
{
	return w < (uint32_t)V ? (int)w : -1;
}

/* The lowest word id that is not banned (0 when every word is). */
static uint32_t first_allowed(const cap_search_opts *o, int V)
{
	for (int i = 0; i < V; i++)
		if (!banned(o, (uint32_t)i)) return (uint32_t)i;
	return 0;
}

/* ---- greedy ---- */

static int search_greedy(const cap_stepper *m, int B, const cap_search_opts *o,
                         cap_search_result *res)
{
	int V = m->vocab, L = o->max_len, rc = -1;
	uint32_t *words = cap_xcalloc((size_t)B * (L ? L : 1), sizeof *words);
	size_t *len = cap_xcalloc(B, sizeof *len);
	double *lp = cap_xcalloc(B, sizeof *lp);
	int *ended = cap_xcalloc(B, sizeof *ended);
	int *row_img = cap_xmalloc(B * sizeof *row_img), *keep = cap_xmalloc(B * sizeof *keep);
	uint32_t *ids = cap_xmalloc(B * sizeof *ids);
	/* with step_topk the best word of each row comes back alone (tv, ti), else whole rows */
	int topk = m->step_topk != NULL;
	float *logp = topk ? NULL : cap_big_xalloc((size_t)B * V * sizeof *logp);   /* huge pages, see core/bigmem.h */
	float *tv = topk ? cap_xmalloc(B * sizeof *tv) : NULL;
	int32_t *ti = topk ? cap_xmalloc(B * sizeof *ti) : NULL;
	int rows = B;
	for (int b = 0; b < B; b++) { row_img[b] = b; ids[b] = o->start_id; }
	for (int t = 0; t < L && rows > 0; t++) {
		if (topk ? m->step_topk(m->ctx, ids, rows, 1, word_or_none(o->pad_id, V),
		                        word_or_none(o->start_id, V), tv, ti) < 0
		         : m->step(m->ctx, ids, rows, logp) < 0)
			goto out;
		int nk = 0;
		for (int r = 0; r < rows; r++) {
			int b = row_img[r];
			uint32_t w;
			if (topk) {   /* a row of NaN: the first allowed word, as argmax_slow takes */
				w = ti[r] < 0 ? first_allowed(o, V) : (uint32_t)ti[r];
				lp[b] += ti[r] < 0 ? NAN : tv[r];
			} else {
				w = argmax(logp + (size_t)r * V, V, o);
				lp[b] += logp[(size_t)r * V + w];
			}
			if (w == o->end_id) { ended[b] = 1; continue; }
			words[(size_t)b * L + len[b]++] = w;
			keep[nk] = r;
			row_img[nk] = b;
			ids[nk++] = w;
		}
		/* Drop the rows that ended so later steps compute only live ones. */
		if (nk < rows && nk > 0 && t + 1 < L && m->gather(m->ctx, keep, nk) < 0) goto out;
		rows = nk;
	}
	for (int b = 0; b < B; b++) {
		res[b].hyps = cap_xcalloc(1, sizeof *res[b].hyps);
		res[b].n = 1;
		hyp_set(&res[b].hyps[0], words + (size_t)b * L, len[b], lp[b], ended[b]);
	}
	rc = 0;
out:
	free(words); free(len); free(lp); free(ended); free(row_img); free(keep); free(ids); free(logp);
	free(tv); free(ti);
	return rc;
}

/* ---- beam ---- */

typedef struct cand { double s; int h; uint32_t w; } cand;

/* Keeps top[0..*n) the best candidates, sorted best first, at most k. Candidates arrive in
 * increasing (hypothesis, word) order, so on equal scores the earlier one stays ahead. */
static void top_insert(cand *top, int *n, int k, double s, int h, uint32_t w)
{
	if (*n == k && !(s > top[k - 1].s)) return;
	int i = *n < k ? (*n)++ : k - 1;
	while (i > 0 && s > top[i - 1].s) { top[i] = top[i - 1]; i--; }
	top[i] = (cand){ s, h, w };
}

enum { WORD_BLOCK = 16 };

/* A float t with: lp <= t implies s0 + lp <= worst in double, for d = worst - s0; a margin of
 * 1e-6 relative covers the roundings of d and of the sum (a word near the line only takes the
 * exact test). */
static float below_for_sure(double d)
{
	if (!(d > -1e30))
		return -INFINITY;   /* nothing is safely below; also NaN */
	if (d > 1e30)
		return 1e30f;
	float t = (float)d;
	return t - fabsf(t) * 1e-6f - 1e-30f;
}

/* Whether any of the WORD_BLOCK values is above t (NaN is not), without early exit so that the
 * compiler can vectorise it. */
static int any_above(const float *x, float t)
{
	int any = 0;
	for (int j = 0; j < WORD_BLOCK; j++)
		any |= x[j] > t;
	return any;
}

static double gnmt_score(double logprob, size_t n, double a)
{
	return a > 0 ? logprob / pow((5.0 + (double)n) / 6.0, a) : logprob;
}

static int hyp_cmp(const void *pa, const void *pb)
{
	const cap_hyp *a = pa, *b = pb;
	return a->score > b->score ? -1 : a->score < b->score ? 1 : 0;
}

/* The k best continuations (top, best first; returns how many) of one image's nl live
 * hypotheses, rows row0.. of the step, s0[h] the score of hypothesis h. From each row's K best
 * words (tv, ti; K per row, a word < 0 ends a row early): */
static int best_of_topk(const float *tv, const int32_t *ti, int K, int row0, int nl, const double *s0,
                        cand *top, int k)
{
	int nt = 0;
	for (int h = 0; h < nl; h++) {
		/* The row's K best, best first: once one cannot enter a full list, none after it can.
		 * They arrive in the order the full scan meets equal scores in (row, then lower word),
		 * so the list is the one it makes. */
		size_t r = (size_t)(row0 + h) * K;
		for (int j = 0; j < K && ti[r + j] >= 0; j++) {
			double sc = s0[h] + tv[r + j];
			if (nt == k && !(sc > top[k - 1].s)) break;
			top_insert(top, &nt, k, sc, h, (uint32_t)ti[r + j]);
		}
	}
	return nt;
}

/* ... and from whole rows of log-probabilities (logp, V per row), banned words left out. */
static int best_of_rows(const float *logp, int V, int row0, int nl, const double *s0,
                        const cap_search_opts *o, cand *top, int k)
{
	int nt = 0;
	for (int h = 0; h < nl; h++) {
		const float *lp = logp + (size_t)(row0 + h) * V;
		/* Most words cannot enter a full list: compare against its worst first, and skip whole
		 * blocks of words below it in float (vectorisable) before the exact test in double. */
		double worst = nt == k ? top[k - 1].s : -INFINITY;
		for (int w0 = 0; w0 < V; w0 += WORD_BLOCK) {
			int w1 = w0 + WORD_BLOCK < V ? w0 + WORD_BLOCK : V;
			if (nt == k && w1 - w0 == WORD_BLOCK && !any_above(lp + w0, below_for_sure(worst - s0[h])))
				continue;
			for (int w = w0; w < w1; w++) {
				double sc = s0[h] + lp[w];
				if (!(sc > worst) && nt == k) continue;
				if (banned(o, (uint32_t)w)) continue;
				top_insert(top, &nt, k, sc, h, (uint32_t)w);
				if (nt == k) worst = top[k - 1].s;
			}
		}
	}
	return nt;
}

static int search_beam(const cap_stepper *m, int B, const cap_search_opts *o,
                       cap_search_result *res)
{
	int V = m->vocab, K = o->beam, L = o->max_len, rc = -1;
	size_t Lw = L ? L : 1;
	/* Live hypotheses of image b: nlive[b] of them in slots b*K.., words in (B, K, L). */
	uint32_t *words = cap_xcalloc((size_t)B * K * Lw, sizeof *words);
	uint32_t *nwords = cap_xcalloc((size_t)B * K * Lw, sizeof *nwords);
	double *score = cap_xcalloc((size_t)B * K, sizeof *score);
	double *nscore = cap_xcalloc((size_t)B * K, sizeof *nscore);
	int *nlive = cap_xcalloc(B, sizeof *nlive);
	int *idx = cap_xmalloc((size_t)B * K * sizeof *idx);
	uint32_t *ids = cap_xmalloc((size_t)B * K * sizeof *ids);
	/* with step_topk each row's K best words come back (tv, ti), else whole rows */
	int topk = m->step_topk != NULL && K <= m->topk_max;
	float *logp = topk ? NULL : cap_big_xalloc((size_t)B * K * V * sizeof *logp);
	float *tv = topk ? cap_xmalloc((size_t)B * K * K * sizeof *tv) : NULL;
	int32_t *ti = topk ? cap_xmalloc((size_t)B * K * K * sizeof *ti) : NULL;
	cand *top = cap_xmalloc(K * sizeof *top);
	for (int b = 0; b < B; b++) {
		res[b].hyps = cap_xcalloc(K, sizeof *res[b].hyps);
		res[b].n = 0;
		nlive[b] = 1;
		ids[b] = o->start_id;
	}
	int rows = B;
	for (int t = 0; t < L && rows > 0; t++) {
		if (topk ? m->step_topk(m->ctx, ids, rows, K, word_or_none(o->pad_id, V),
		                        word_or_none(o->start_id, V), tv, ti) < 0
		         : m->step(m->ctx, ids, rows, logp) < 0)
			goto out;
		int row0 = 0, nrows = 0;
		for (int b = 0; b < B; b++) {
			int nl = nlive[b], k = K - res[b].n;
			int nt = topk ? best_of_topk(tv, ti, K, row0, nl, score + b * K, top, k)
			              : best_of_rows(logp, V, row0, nl, score + b * K, o, top, k);
			int live = 0;
			for (int i = 0; i < nt; i++) {
				const uint32_t *pw = words + ((size_t)b * K + top[i].h) * Lw;
				if (top[i].w == o->end_id) {
					hyp_set(&res[b].hyps[res[b].n++], pw, t, top[i].s, 1);
					continue;
				}
				uint32_t *dst = nwords + ((size_t)b * K + live) * Lw;
				memcpy(dst, pw, t * sizeof *dst);
				dst[t] = top[i].w;
				nscore[b * K + live] = top[i].s;
				idx[nrows] = row0 + top[i].h;
				ids[nrows++] = top[i].w;
				live++;
			}
			row0 += nl;
			nlive[b] = live;
		}
		uint32_t *tw = words; words = nwords; nwords = tw;
		double *ts = score; score = nscore; nscore = ts;
		rows = nrows;
		if (rows > 0 && t + 1 < L && m->gather(m->ctx, idx, rows) < 0) goto out;
	}
	/* Cut at max_len: the live hypotheses count as finished. With max_len 0 the empty
	 * hypothesis is the only one. */
	for (int b = 0; b < B; b++) {
		for (int h = 0; h < nlive[b] && res[b].n < K; h++)
			hyp_set(&res[b].hyps[res[b].n++], words + ((size_t)b * K + h) * Lw, L,
			        score[b * K + h], 0);
		if (L == 0 && res[b].n == 0) hyp_set(&res[b].hyps[res[b].n++], NULL, 0, 0, 0);
		for (int i = 0; i < res[b].n; i++)
			res[b].hyps[i].score = gnmt_score(res[b].hyps[i].logprob, res[b].hyps[i].n,
			                                  o->length_penalty);
		/* Stable ranking: insertion sort keeps the finishing order on equal scores. */
		for (int i = 1; i < res[b].n; i++) {
			cap_hyp x = res[b].hyps[i];
			int j = i;
			while (j > 0 && hyp_cmp(&x, &res[b].hyps[j - 1]) < 0) {
				res[b].hyps[j] = res[b].hyps[j - 1];
				j--;
			}
			res[b].hyps[j] = x;
		}
		int keepn = o->nbest < res[b].n ? o->nbest : res[b].n;
		for (int i = keepn; i < res[b].n; i++) free(res[b].hyps[i].ids);
		res[b].n = keepn;
	}
	rc = 0;
out:
	if (rc < 0)
		for (int b = 0; b < B; b++) cap_search_result_free(&res[b]);
	free(words); free(nwords); free(score); free(nscore); free(nlive); free(idx); free(ids);
	free(logp); free(top); free(tv); free(ti);
	return rc;
}

/* ---- sampling ---- */

/* The k-th largest of x[0..n) (1 <= k <= n), by quickselect on the copy tmp. */
static float kth_largest(const float *x, int n, int k, float *tmp)
{
	memcpy(tmp, x, n * sizeof *tmp);
	int lo = 0, hi = n - 1, want = k - 1;
	while (lo < hi) {
		float pivot = tmp[(lo + hi) / 2];
		int i = lo, j = hi;
		while (i <= j) {
			while (tmp[i] > pivot) i++;
			while (tmp[j] < pivot) j--;
			if (i <= j) { float t = tmp[i]; tmp[i] = tmp[j]; tmp[j] = t; i++; j--; }
		}
		if (want <= j) hi = j;
		else if (want >= i) lo = i;
		else break;
	}
	return tmp[want];
}

/* Draws a word from softmax(lp / T) over the words with lp >= cut (banned words hold -inf). */
static uint32_t sample_word(const float *lp, int V, double T, float cut, cap_rng *rng)
{
	double mx = -INFINITY, total = 0;
	for (int w = 0; w < V; w++)
		if (lp[w] > -INFINITY && lp[w] >= cut && lp[w] > mx) mx = lp[w];
	for (int w = 0; w < V; w++)
		if (lp[w] > -INFINITY && lp[w] >= cut) total += exp((lp[w] - mx) / T);
	double u = (double)(cap_rng_u64(rng) >> 11) * 0x1p-53 * total;
	int last = -1;
	for (int w = 0; w < V; w++) {
		if (!(lp[w] > -INFINITY && lp[w] >= cut)) continue;
		last = w;
		u -= exp((lp[w] - mx) / T);
		if (u < 0) return (uint32_t)w;
	}
	return (uint32_t)(last < 0 ? 0 : last);   /* rounding left u >= 0: the last kept word */
}

static int search_sample(const cap_stepper *m, int B, const cap_search_opts *o,
                         uint64_t first_index, cap_search_result *res)
{
	int V = m->vocab, L = o->max_len, N = o->nbest, R = B * N, rc = -1;
	size_t Lw = L ? L : 1;
	uint32_t *words = cap_xcalloc((size_t)R * Lw, sizeof *words);
	size_t *len = cap_xcalloc(R, sizeof *len);
	double *lpsum = cap_xcalloc(R, sizeof *lpsum);
	int *ended = cap_xcalloc(R, sizeof *ended);
	int *row_of = cap_xmalloc(R * sizeof *row_of), *keep = cap_xmalloc(R * sizeof *keep);
	uint32_t *ids = cap_xmalloc(R * sizeof *ids);
	float *logp = cap_big_xalloc((size_t)R * V * sizeof *logp), *tmp = cap_xmalloc(V * sizeof *tmp);
	float *masked = cap_xmalloc(V * sizeof *masked);
	cap_rng *rng = cap_xmalloc(R * sizeof *rng);
	for (int s = 0; s < R; s++) {
		int b = s / N, j = s % N;
		cap_rng_seed(&rng[s], cap_mix64(o->seed ^ cap_mix64(first_index + b)) ^ cap_mix64(0x5eed0000ull + j));
		row_of[s] = s;
		keep[s] = b;     /* replicate image b's state for its N samples */
		ids[s] = o->start_id;
	}
	int rows = R;
	if (N > 1 && L > 0 && m->gather(m->ctx, keep, R) < 0) goto out;
	int k = o->top_k > 0 && o->top_k < V ? o->top_k : 0;
	for (int t = 0; t < L && rows > 0; t++) {
		if (m->step(m->ctx, ids, rows, logp) < 0) goto out;
		int nk = 0;
		for (int r = 0; r < rows; r++) {
			int s = row_of[r];
			const float *lp = logp + (size_t)r * V;
			memcpy(masked, lp, V * sizeof *masked);
			if (o->pad_id < (uint32_t)V) masked[o->pad_id] = -INFINITY;
			if (o->start_id < (uint32_t)V) masked[o->start_id] = -INFINITY;
			float cut = k ? kth_largest(masked, V, k, tmp) : -INFINITY;
			uint32_t w = sample_word(masked, V, o->temperature, cut, &rng[s]);
			lpsum[s] += lp[w];
			if (w == o->end_id) { ended[s] = 1; continue; }
			words[(size_t)s * Lw + len[s]++] = w;
			keep[nk] = r;
			row_of[nk] = s;
			ids[nk++] = w;
		}
		if (nk < rows && nk > 0 && t + 1 < L && m->gather(m->ctx, keep, nk) < 0) goto out;
		rows = nk;
	}
	for (int b = 0; b < B; b++) {
		res[b].hyps = cap_xcalloc(N, sizeof *res[b].hyps);
		res[b].n = N;
		for (int j = 0; j < N; j++) {
			int s = b * N + j;
			hyp_set(&res[b].hyps[j], words + (size_t)s * Lw, len[s], lpsum[s], ended[s]);
		}
	}
	rc = 0;
out:
	free(words); free(len); free(lpsum); free(ended); free(row_of); free(keep); free(ids);
	free(logp); free(tmp); free(masked); free(rng);
	return rc;
}

int cap_search(const cap_stepper *m, int batch, const cap_search_opts *o, uint64_t first_index,
               cap_search_result *res)
{
	if (cap_search_opts_check(o) < 0) return -1;
	if (batch <= 0) return 0;
	if (m->vocab <= 0) return cap_fail("search: empty vocabulary");
	if (o->sample) return search_sample(m, batch, o, first_index, res);
	if (o->beam == 1) return search_greedy(m, batch, o, res);
	return search_beam(m, batch, o, res);
}

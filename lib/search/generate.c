/* cap_generator (see generate.h): the decoder seen through the search's stepper interface. */
#include "search/generate.h"
#include "core/error.h"
#include <stdlib.h>
#include <string.h>

struct cap_generator {
	cap_decoder *m;
	cap_tokenizer *tok;
	cap_decoder_state *s;
	cap_search_opts so;
	cap_stepper stepper;
	int batch;
};

static int gen_step(void *ctx, const uint32_t *ids, int rows, float *logp)
{
	cap_generator *g = ctx;
	if (rows != g->s->batch)
		return cap_fail("internal: %d rows fed to a state of %d", rows, g->s->batch);
	cap_decoder_step(g->m, g->s, ids, logp);
	return 0;
}

static int gen_step_topk(void *ctx, const uint32_t *ids, int rows, int k, int ex0, int ex1,
                         float *vals, int32_t *idx)
{
	cap_generator *g = ctx;
	if (rows != g->s->batch)
		return cap_fail("internal: %d rows fed to a state of %d", rows, g->s->batch);
	cap_decoder_step_topk(g->m, g->s, ids, k, ex0, ex1, vals, idx);
	return 0;
}

static int gen_gather(void *ctx, const int *idx, int n)
{
	cap_generator *g = ctx;
	if (n > g->s->capacity)
		return cap_fail("internal: gather of %d rows beyond %d", n, g->s->capacity);
	cap_decoder_state_gather(g->s, g->s, idx, n);
	return 0;
}

cap_generator *cap_generator_open(const char *path, const cap_ops *ops, cap_search_opts *o, int batch)
{
	cap_generator *g = cap_xcalloc(1, sizeof *g);
	if (!(g->m = cap_decoder_load(path)))
		goto fail;
	const char *tj = cap_decoder_meta(g->m, "tokenizer_json");
	if (!tj) {
		cap_fail("%s: the model holds no tokenizer (metadata 'tokenizer_json')", path);
		goto fail;
	}
	if (!(g->tok = cap_tokenizer_parse(tj, strlen(tj)))) {
		cap_fail_prefix("%s: its tokenizer", path);
		goto fail;
	}
	if (cap_tokenizer_vocab_size(g->tok) != (size_t)g->m->cfg.vocab) {
		cap_fail("%s: the tokenizer has %zu words but the model's vocabulary is %d", path,
		         cap_tokenizer_vocab_size(g->tok), g->m->cfg.vocab);
		goto fail;
	}
	const char *tdig = cap_decoder_meta(g->m, "tokenizer");
	if (tdig && strcmp(tdig, cap_tokenizer_digest(g->tok)) != 0) {
		cap_fail("%s: metadata 'tokenizer' %s is not the digest of its tokenizer_json (%s)", path,
		         tdig, cap_tokenizer_digest(g->tok));
		goto fail;
	}
	if (g->m->cfg.vocab <= CAP_DECODER_END) {
		cap_fail("%s: vocabulary too small", path);
		goto fail;
	}
	if (cap_decoder_bind(g->m, ops) < 0) {
		cap_fail_prefix("%s", path);
		goto fail;
	}
	o->start_id = CAP_DECODER_START;
	o->end_id = CAP_DECODER_END;
	g->so = *o;
	g->batch = batch;
	g->s = cap_decoder_state_new(g->m, cap_search_rows(o, batch));
	g->stepper = (cap_stepper){ g, g->m->cfg.vocab, gen_step, gen_gather, NULL, 0 };
	/* A GPU would send back (rows, V) log-probabilities every step: there the search reads each
	 * row's best words alone. On the host the full rows are already where the search reads
	 * them, and its own scan skips most words faster; CAP_SEARCH_TOPK=1 takes the top-k path
	 * there too (the tests compare the two). */
	const char *tk = getenv("CAP_SEARCH_TOPK");
	if (!ops->host_memory || (tk && !strcmp(tk, "1"))) {
		g->stepper.step_topk = gen_step_topk;
		g->stepper.topk_max = CAP_TOPK_MAX;
	}
	return g;
fail:
	cap_generator_free(g);
	return NULL;
}

const cap_decoder *cap_generator_model(const cap_generator *g) { return g->m; }
const cap_tokenizer *cap_generator_tokenizer(const cap_generator *g) { return g->tok; }
const cap_search_opts *cap_generator_opts(const cap_generator *g) { return &g->so; }
int cap_generator_batch(const cap_generator *g) { return g->batch; }
const char *cap_generator_digest(const cap_generator *g) { return g->m->file_digest; }

int cap_generator_run(cap_generator *g, const float *feats, int n, uint64_t first_index,
                      cap_search_result *res)
{
	if (n < 1 || n > g->batch)
		return cap_fail("internal: %d images for batches of %d", n, g->batch);
	cap_decoder_start(g->m, g->s, feats, n);
	return cap_search(&g->stepper, n, &g->so, first_index, res);
}

void cap_generator_free(cap_generator *g)
{
	if (!g)
		return;
	cap_decoder_state_free(g->s);
	cap_tokenizer_free(g->tok);
	cap_decoder_free(g->m);
	free(g);
}

/* cap_trainer_run (see trainer.h). */
#include "train/trainer.h"
#include "core/buf.h"
#include "core/cli.h"
#include "core/error.h"
#include "core/file.h"
#include "decoder/decoder.h"
#include "decoder/encoder_id.h"
#include "io/stream.h"
#include "train/adam.h"
#include "train/dist.h"
#include "train/train.h"
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Everything a checkpoint must restore, and what the run works with. */
typedef struct trainer {
	cap_trainer_opts o;         /* the options, hyperparameters replaced by a checkpoint's */
	const cap_ops *ops;
	cap_train_feats feats;
	cap_train_caps caps, val;
	const float *feat_table;    /* feats.data in backend memory */
	const char *tok_digest, *tok_json;
	char *tok_json_owned;
	char *ckpt_path;
	cap_decoder *m;
	cap_adam adam;
	cap_rng shuf, drop, epoch_rng;   /* epoch_rng: shuf as it was when this epoch began */
	int epoch;                       /* 0-based current epoch */
	size_t pos;                      /* next batch of the epoch */
	long long step;                  /* optimizer steps done */
	double epoch_loss;               /* sum of loss * tokens this epoch */
	double epoch_tokens;
	double best_val;                 /* INFINITY when none */
	int best_epoch, bad_epochs;
	float *best;                     /* (n_params) host copy of the best epoch's parameters */
	cap_buf history;                 /* JSON array items of finished epochs, comma separated */
	cap_writer *log;
	const char *stop_reason;
	/* Data parallelism (dist.h): rank 0 alone writes files and speaks; the others' messages go
	 * to /dev/null. */
	const cap_dist *d;
	FILE *err;                       /* stderr on rank 0 */
	float *grad_host;                /* (n_params) host copy of the gradient, for MPI from device memory */
	int *glen;                       /* (batch) lengths of the global batch */
	double reduce_secs;              /* time spent in this run's gradient and loss sums */
} trainer;

void cap_trainer_opts_default(cap_trainer_opts *o)
{
	memset(o, 0, sizeof *o);
	o->epochs = 30;
	o->batch = 64;
	o->lr = 1e-3;
	o->embed = 256;
	o->hidden = 512;
	o->layers = 1;
	o->shuffle = 1;
	o->seed = 1;
}

static void fmt17(char *buf, size_t n, double v) { snprintf(buf, n, "%.17g", v); }

static char *history_json(const trainer *r)
{
	cap_buf b = { 0 };
	cap_buf_printf(&b, "{\"steps\":%lld,\"epochs\":[%s]", r->step, r->history.data ? r->history.data : "");
	if (r->best_epoch > 0)
		cap_buf_printf(&b, ",\"best_epoch\":%d", r->best_epoch);
	cap_buf_addc(&b, '}');
	return b.data;
}

/* The model file: the final parameters, or with validation those of the best epoch. */
static int save_model(trainer *r)
{
	char fd[16], e[16], h[16], l[16], v[16], dr[32], seed[32], asked[16], done[16], steps[32], ws[16];
	const cap_decoder_config *c = &r->m->cfg;
	snprintf(fd, sizeof fd, "%d", c->feat_dim);
	snprintf(e, sizeof e, "%d", c->embed);
	snprintf(h, sizeof h, "%d", c->hidden);
	snprintf(l, sizeof l, "%d", c->layers);
	snprintf(v, sizeof v, "%d", c->vocab);
	snprintf(dr, sizeof dr, "%g", r->o.dropout);
	snprintf(seed, sizeof seed, "%" PRIu64, r->o.seed);
	snprintf(asked, sizeof asked, "%d", r->o.epochs);
	snprintf(done, sizeof done, "%d", r->epoch);
	snprintf(steps, sizeof steps, "%lld", r->step);
	snprintf(ws, sizeof ws, "%d", r->d->size);
	char *hist = history_json(r);
	const char *meta[48];
	int k = 0;
#define KV(a, b) do { meta[k++] = (a); meta[k++] = (b); } while (0)
	KV("format", "cap-decoder");
	KV("tool", "cap-train " CAP_VERSION);
	KV("feature_dim", fd); KV("embed", e); KV("hidden", h); KV("layers", l); KV("vocab_size", v);
	KV("dropout", dr); KV("seed", seed);
	KV("epochs_requested", asked); KV("epochs_done", done); KV("steps", steps);
	KV("stop_reason", r->stop_reason);
	KV("device", r->ops->name);
	KV("precision", r->o.precision ? r->o.precision : "fp32");
	KV("world_size", ws);
	if (r->tok_digest) KV("tokenizer", r->tok_digest);
	if (r->tok_json) KV("tokenizer_json", r->tok_json);
	if (r->feats.encoder) KV(CAP_ENCODER_ID_META_KEY, r->feats.encoder);
	KV("history", hist);
#undef KV
	meta[k] = NULL;
	cap_decoder_to_host(r->m);
	int rc = 0;
	if (r->best && r->best_epoch > 0) {   /* the best epoch's parameters, in the model's layout */
		cap_decoder tmp = *r->m;
		tmp.data = r->best;
		rc = cap_decoder_save(&tmp, r->o.out, meta);
	} else {
		rc = cap_decoder_save(r->m, r->o.out, meta);
	}
	free(hist);
	return rc;
}

static int save_ckpt(trainer *r)
{
	char s[16][40], he[65], hd[65];
	if (r->d->rank != 0)   /* rank 0 writes for all: every rank holds the same state */
		return 0;
	cap_rng_to_hex(&r->epoch_rng, he);
	cap_rng_to_hex(&r->drop, hd);
	fmt17(s[0], 40, r->o.lr);
	snprintf(s[1], 40, "%d", r->o.batch);
	fmt17(s[2], 40, r->o.dropout);
	fmt17(s[3], 40, r->o.clip);
	snprintf(s[4], 40, "%" PRIu64, r->o.seed);
	snprintf(s[5], 40, "%d", r->o.shuffle);
	snprintf(s[6], 40, "%d", r->epoch);
	snprintf(s[7], 40, "%zu", r->pos);
	snprintf(s[8], 40, "%lld", r->step);
	fmt17(s[9], 40, r->epoch_loss);
	fmt17(s[10], 40, r->epoch_tokens);
	fmt17(s[11], 40, r->best_val);
	snprintf(s[12], 40, "%d", r->best_epoch);
	snprintf(s[13], 40, "%d", r->bad_epochs);
	snprintf(s[14], 40, "%d", r->d->size);
	const char *meta[] = {
		"lr", s[0], "batch", s[1], "dropout", s[2], "clip_norm", s[3], "seed", s[4],
		"shuffle", s[5], "epoch", s[6], "position", s[7], "step", s[8], "epoch_loss", s[9],
		"epoch_tokens", s[10], "best_val", s[11], "best_epoch", s[12], "bad_epochs", s[13],
		"rng_epoch", he, "rng_dropout", hd, "history_epochs", r->history.data ? r->history.data : "",
		"world_size", s[14],
		NULL, NULL, NULL, NULL, NULL
	};
	int k = (int)(sizeof meta / sizeof meta[0]) - 5;   /* the optional entries, then the end */
	if (r->tok_digest) { meta[k++] = "tokenizer"; meta[k++] = r->tok_digest; }
	if (r->feats.encoder) { meta[k++] = CAP_ENCODER_ID_META_KEY; meta[k++] = r->feats.encoder; }
	return cap_train_ckpt_save(r->ckpt_path, r->m, &r->adam, r->best, meta);
}

static const char *need_meta(const trainer *r, const cap_train_ckpt *k, const char *key)
{
	const char *v = cap_train_ckpt_meta(k, key);
	if (!v)
		cap_fail("%s: checkpoint lacks '%s'", r->o.resume, key);
	return v;
}

static int resume(trainer *r)
{
	cap_trainer_opts *o = &r->o;
	cap_train_ckpt *k = cap_train_ckpt_load(o->resume, r->ops, &r->m, &r->adam, &r->best);
	if (!k)
		return -1;
	/* The run's hyperparameters come from the checkpoint so that it continues the same run. */
	const char *keys[] = { "lr", "batch", "dropout", "clip_norm", "seed", "shuffle", "epoch",
	                       "position", "step", "epoch_loss", "epoch_tokens", "best_val",
	                       "best_epoch", "bad_epochs", "rng_epoch", "rng_dropout", "history_epochs" };
	const char *v[sizeof keys / sizeof keys[0]];
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (!(v[i] = need_meta(r, k, keys[i]))) {
			cap_train_ckpt_close(k);
			return -1;
		}
	o->lr = atof(v[0]);
	o->batch = atoi(v[1]);
	o->dropout = atof(v[2]);
	o->clip = atof(v[3]);
	o->seed = strtoull(v[4], NULL, 10);
	o->shuffle = atoi(v[5]);
	r->epoch = atoi(v[6]);
	r->pos = (size_t)strtoull(v[7], NULL, 10);
	r->step = atoll(v[8]);
	r->epoch_loss = strtod(v[9], NULL);
	r->epoch_tokens = strtod(v[10], NULL);
	r->best_val = strtod(v[11], NULL);
	r->best_epoch = atoi(v[12]);
	r->bad_epochs = atoi(v[13]);
	int rc = 0;
	if (o->batch < 1 || r->epoch < 0 || cap_rng_from_hex(&r->epoch_rng, v[14]) < 0 ||
	    cap_rng_from_hex(&r->drop, v[15]) < 0)
		rc = cap_fail("%s: checkpoint has bad bookkeeping values", o->resume);
	cap_buf_adds(&r->history, v[16]);
	const char *t = cap_train_ckpt_meta(k, "tokenizer");
	if (!rc && t && r->tok_digest && strcmp(t, r->tok_digest))
		rc = cap_fail("%s: tokenizer %s differs from the captions' %s", o->resume, t, r->tok_digest);
	r->shuf = r->epoch_rng;
	const char *enc = cap_train_ckpt_meta(k, CAP_ENCODER_ID_META_KEY);
	if (enc)   /* the features the run was trained on, for the check in make_model */
		cap_decoder_set_meta(r->m, CAP_ENCODER_ID_META_KEY, enc);
	cap_train_ckpt_close(k);
	return rc;
}

/* Mean loss over the tokens of a caption set (forward only, stream order). With several ranks
 * each takes every size-th batch and the sums are reduced, so that every rank gets the same
 * value. */
static double evaluate(trainer *r, cap_decoder_work *w, const cap_train_caps *c)
{
	const cap_dist *d = r->d;
	int batch = r->o.batch;
	uint32_t *order = cap_xmalloc(sizeof(uint32_t) * c->n);
	size_t *start = cap_xmalloc(sizeof(size_t) * (c->n / batch + 2));
	int *len = cap_xmalloc(sizeof(int) * batch);
	const uint32_t **ids = cap_xmalloc(sizeof(*ids) * batch);
	int32_t *rows = cap_xmalloc(sizeof(*rows) * batch);
	size_t nb = cap_train_epoch(c, batch, 0, NULL, order, start);
	double sum = 0, tok = 0;
	for (size_t k = (size_t)d->rank; k < nb; k += (size_t)d->size) {
		cap_decoder_batch b;
		size_t n;
		cap_train_batch_view(c, r->feat_table, order, start[k], start[k + 1], len, ids, rows, &b);
		sum += cap_decoder_loss(w, r->m, &b, 0, NULL, NULL, &n) * (double)n;
		tok += (double)n;
	}
	free(order); free(start); free(len); free(ids); free(rows);
	if (d->size > 1) {
		double s[2] = { sum, tok };
		d->sum_doubles(d, s, 2);
		sum = s[0];
		tok = s[1];
	}
	return sum / tok;
}

static void progress_bar(FILE *f, int epoch, int epochs, size_t done, size_t total, double loss, double t0)
{
	int width = 30, fill = total ? (int)(width * done / total) : width;
	double el = cap_now() - t0, eta = done ? el / done * (total - done) : 0;
	fprintf(f, "\repoch %d/%d [%.*s%*s] %zu/%zu loss %.4f %d:%02d elapsed, ETA %d:%02d ",
	        epoch, epochs, fill, "##############################", width - fill, "", done, total, loss,
	        (int)el / 60, (int)el % 60, (int)eta / 60, (int)eta % 60);
}

/* The streams, the tokenizer to embed, and the vocabulary size they need. */
static int load_data(trainer *r, uint64_t *vocab)
{
	const cap_trainer_opts *o = &r->o;
	if (cap_train_feats_load(&r->feats, o->features) < 0 || cap_train_caps_load(&r->caps, &r->feats, o->captions) < 0)
		return -1;
	size_t unused = 0;
	for (size_t i = 0; i < r->feats.n; i++)
		unused += r->feats.used[i] == 0;
	if (o->val && cap_train_caps_load(&r->val, &r->feats, o->val) < 0)
		return -1;
	fprintf(r->err, "cap-train: %zu captions of %zu images; %zu captions without a feature skipped;"
	        " %zu features without a training caption\n",
	        r->caps.n, r->feats.n - unused, r->caps.unmatched, unused);
	if (o->val)
		fprintf(r->err, "cap-train: %zu validation captions; %zu without a feature skipped\n",
		        r->val.n, r->val.unmatched);
	if (!r->caps.n)
		return cap_fail("%s: no caption matches an image of %s", o->captions, o->features);
	if (o->val && !r->val.n)
		return cap_fail("%s: no validation caption matches an image of %s", o->val, o->features);
	if (o->val && r->caps.tokenizer && r->val.tokenizer && strcmp(r->caps.tokenizer, r->val.tokenizer))
		return cap_fail("%s: tokenizer %s differs from the training captions' %s", o->val,
		                r->val.tokenizer, r->caps.tokenizer);
	r->tok_digest = r->caps.tokenizer;
	if (o->tokenizer) {
		size_t len;
		if (cap_read_file(o->tokenizer, 0, &r->tok_json_owned, &len) < 0)
			return -1;
		if (memchr(r->tok_json_owned, 0, len))
			return cap_fail("%s: tokenizer file holds a NUL byte", o->tokenizer);
		r->tok_json = r->tok_json_owned;
	} else {
		r->tok_json = r->caps.tokenizer_json;
	}
	if (!r->tok_json)
		fprintf(r->err, "cap-train: warning: no tokenizer.json in %s and no --tokenizer: the model will lack it\n",
		        o->captions);
	*vocab = r->caps.vocab_size;
	if (o->val && r->val.vocab_size > *vocab)
		*vocab = r->val.vocab_size;
	if (*vocab > INT32_MAX)
		return cap_fail("%s: vocab_size %" PRIu64 " too large", o->captions, *vocab);
	if (!(r->feat_table = cap_ops_mirror(r->ops, r->feats.data, sizeof(float) * r->feats.n * r->feats.dim)))
		return cap_fail_prefix("features of %s on %s", o->features, r->ops->name);
	return 0;
}

/* A new, initialised or resumed model and its optimiser. */
static int make_model(trainer *r, uint64_t V)
{
	const cap_trainer_opts *o = &r->o;
	r->best_val = INFINITY;
	if (o->resume) {
		if (resume(r) < 0)
			return -1;
	} else {
		cap_rng init;
		cap_rng_seed(&init, o->seed);
		cap_rng_seed(&r->shuf, o->seed ^ 0x5348554646ull);
		cap_rng_seed(&r->drop, o->seed ^ 0x44524f50ull);
		r->epoch_rng = r->shuf;
		if (o->init) {
			if (!(r->m = cap_decoder_load(o->init)))
				return -1;
			const char *t = cap_decoder_meta(r->m, "tokenizer");
			if (t && r->tok_digest && strcmp(t, r->tok_digest))
				return cap_fail("%s: tokenizer %s differs from the captions' %s", o->init, t, r->tok_digest);
		} else {
			cap_decoder_config cfg = { r->feats.dim, o->embed, o->hidden, o->layers, (int)V };
			if (!(r->m = cap_decoder_new(&cfg)))
				return -1;
			cap_decoder_init_random(r->m, &init);
		}
		if (cap_decoder_bind(r->m, r->ops) < 0 || cap_adam_init(&r->adam, r->ops, r->m->n_params, o->lr) < 0)
			return -1;
	}
	const char *src = o->resume ? o->resume : o->init ? o->init : "the new model";
	/* A model trained on another encoder's features would learn from the wrong inputs. */
	if ((o->resume || o->init) && !o->allow_encoder_mismatch &&
	    cap_encoder_id_check_meta(cap_decoder_meta(r->m, CAP_ENCODER_ID_META_KEY), src,
	                              r->feats.encoder, o->features, NULL) < 0) {
		char msg[1024];
		snprintf(msg, sizeof msg, "%s", cap_errmsg());
		return cap_fail("%s (--allow-encoder-mismatch to train on them anyway)", msg);
	}
	if (r->m->cfg.feat_dim != r->feats.dim)
		return cap_fail("%s: model expects %d-d features, %s has %d", src, r->m->cfg.feat_dim,
		                o->features, r->feats.dim);
	if ((uint64_t)r->m->cfg.vocab < V)
		return cap_fail("%s: model vocabulary %d is smaller than the captions' %" PRIu64, src,
		                r->m->cfg.vocab, V);
	if (!o->val) {   /* a run resumed without validation ends with its final parameters */
		free(r->best);
		r->best = NULL;
		r->best_epoch = 0;
	} else if (!r->best) {
		r->best = cap_xcalloc(r->m->n_params, sizeof(float));
	}
	return 0;
}

/* The output's folder must take new files before hours of training are spent. */
static int check_writable(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
	int ok = access(dir, W_OK | X_OK) == 0;
	int e = errno;
	int rc = ok ? 0 : cap_fail("%s: cannot write into %s: %s", path, dir, strerror(e));
	free(dir);
	return rc;
}

static int log_step(trainer *r, double loss, size_t ntok, double secs, double reduce_secs)
{
	msgpack_packer *pk = cap_writer_packer(r->log);
	msgpack_pack_map(pk, r->d->size > 1 ? 8 : 7);
	cap_pack_kv_str(pk, "type", "step");
	cap_pack_kv_uint(pk, "epoch", (uint64_t)r->epoch + 1);
	cap_pack_kv_uint(pk, "step", (uint64_t)r->step);
	cap_pack_kv_double(pk, "loss", loss);
	cap_pack_kv_uint(pk, "tokens", ntok);
	cap_pack_kv_double(pk, "seconds", secs);
	cap_pack_kv_double(pk, "tokens_per_s", secs > 0 ? ntok / secs : 0);
	if (r->d->size > 1)   /* the sums over the ranks, waiting for the slowest included */
		cap_pack_kv_double(pk, "reduce_seconds", reduce_secs);
	return cap_writer_end(r->log);
}

static int log_epoch(trainer *r, double tl, double vl, double secs)
{
	int val = r->o.val != NULL;
	msgpack_packer *pk = cap_writer_packer(r->log);
	msgpack_pack_map(pk, val ? 7 : 5);
	cap_pack_kv_str(pk, "type", "epoch");
	cap_pack_kv_uint(pk, "epoch", (uint64_t)r->epoch + 1);
	cap_pack_kv_double(pk, "train_loss", tl);
	if (val) {
		cap_pack_kv_double(pk, "val_loss", vl);
		cap_pack_kv_double(pk, "perplexity", exp(vl));
	}
	cap_pack_kv_double(pk, "seconds", secs);
	cap_pack_kv_uint(pk, "steps", (uint64_t)r->step);
	return cap_writer_end(r->log);
}

/* The gradient of all ranks summed in place (grad: backend memory), through host memory when
 * the backend's is not the host's and the table wants host memory. */
static void sum_gradient(trainer *r, float *grad, size_t n)
{
	const cap_dist *d = r->d;
	if (r->ops->host_memory || d->device_memory) {
		d->sum_floats(d, grad, n);
		return;
	}
	if (!r->grad_host)
		r->grad_host = cap_xmalloc(sizeof(float) * n);
	r->ops->download(r->grad_host, grad, sizeof(float) * n);
	d->sum_floats(d, r->grad_host, n);
	r->ops->upload(grad, r->grad_host, sizeof(float) * n);
}

/* Loss and gradient of the global batch at positions [from, to) of the epoch's order: the whole
 * batch on one process; with several ranks this rank's contiguous share of it (its captions
 * from + n*rank/size ..), whose losses and gradients are summed over the ranks, so that every
 * rank gets the global batch's mean loss and gradient. *ntok: the global batch's tokens. */
static double batch_pass(trainer *r, cap_decoder_work *w, const uint32_t *order, size_t from, size_t to,
                         int *len, const uint32_t **ids, int32_t *rows, float *grad, size_t *ntok)
{
	const cap_dist *d = r->d;
	cap_decoder_batch b;
	if (d->size == 1) {
		cap_train_batch_view(&r->caps, r->feat_table, order, from, to, len, ids, rows, &b);
		return cap_decoder_loss(w, r->m, &b, (float)r->o.dropout, &r->drop, grad, ntok);
	}
	size_t n = to - from, a = from + n * (size_t)d->rank / (size_t)d->size;
	size_t e = from + n * (size_t)(d->rank + 1) / (size_t)d->size;
	cap_decoder_share sh = { .global_batch = (int)n, .global_len = r->glen, .first = (int)(a - from) };
	for (size_t i = from; i < to; i++) {
		r->glen[i - from] = r->caps.len[order[i]];
		sh.global_tokens += (size_t)r->glen[i - from];
	}
	cap_train_batch_view(&r->caps, r->feat_table, order, a, e, len, ids, rows, &b);
	size_t mine;
	double sum = cap_decoder_loss_share(w, r->m, &b, &sh, (float)r->o.dropout, &r->drop, grad, &mine);
	double t0 = cap_now();
	sum_gradient(r, grad, r->m->n_params);
	d->sum_doubles(d, &sum, 1);
	r->reduce_secs += cap_now() - t0;
	*ntok = sh.global_tokens;
	return sum / (double)sh.global_tokens;
}

/* With several ranks: every rank must hold rank 0's parameters (the sums are the same bits
 * everywhere; this makes sure). A rank that differs stops the run. */
static int check_same_weights(trainer *r, const char *when)
{
	const cap_dist *d = r->d;
	if (d->size == 1)
		return 0;
	cap_decoder_to_host(r->m);
	uint64_t h = 1469598103934665603ull, h0;
	const uint32_t *u = (const uint32_t *)r->m->data;
	for (size_t i = 0; i < r->m->n_params; i++)
		h = (h ^ u[i]) * 1099511628211ull;
	h0 = h;
	d->broadcast(d, &h0, sizeof h0, 0);
	double bad = h != h0;
	d->sum_doubles(d, &bad, 1);
	if (bad > 0)
		return cap_fail("%s: the parameters of %g rank(s) differ from rank 0's (the sums over the ranks "
		                "were not the same everywhere)", when, bad);
	return 0;
}

/* 64-bit FNV-1a over bytes, continuing from h. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ull;
	return h;
}

/* Word-wise (fast enough for the features): the same words give the same value. */
static uint64_t fnv_words(uint64_t h, const uint32_t *w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ w[i]) * 1099511628211ull;
	return h;
}

static uint64_t caps_digest(uint64_t h, const cap_train_caps *c)
{
	h = fnv(h, &c->n, sizeof c->n);
	for (size_t i = 0; i < c->n; i++) {
		h = fnv(h, &c->image[i], sizeof c->image[i]);
		h = fnv_words(h, c->ids[i], (size_t)c->len[i]);
	}
	return h;
}

/* With several ranks: every rank must start from what rank 0 starts from (the same streams, as
 * a node may hold other copies than another's, and the same model, run state and settings);
 * a rank that differs says what and stops the run. */
static int check_same_start(trainer *r)
{
	const cap_dist *d = r->d;
	if (d->size == 1)
		return 0;
	uint64_t h[3], h0[3], seed = 1469598103934665603ull;
	h[0] = caps_digest(caps_digest(seed, &r->caps), &r->val);
	h[1] = fnv_words(fnv(seed, &r->feats.dim, sizeof r->feats.dim), (const uint32_t *)r->feats.data,
	                 r->feats.n * (size_t)r->feats.dim);
	cap_decoder_to_host(r->m);
	struct { double lr, dropout, clip; uint64_t seed; int batch, shuffle, epochs, epoch; size_t pos;
	         long long step, max_steps; } st;
	memset(&st, 0, sizeof st);
	st.lr = r->o.lr; st.dropout = r->o.dropout; st.clip = r->o.clip; st.seed = r->o.seed;
	st.batch = r->o.batch; st.shuffle = r->o.shuffle; st.epochs = r->o.epochs; st.epoch = r->epoch;
	st.pos = r->pos; st.step = r->step; st.max_steps = r->o.max_steps;
	h[2] = fnv_words(fnv(fnv(seed, &st, sizeof st), &r->m->cfg, sizeof r->m->cfg),
	                 (const uint32_t *)r->m->data, r->m->n_params);
	memcpy(h0, h, sizeof h);
	d->broadcast(d, h0, sizeof h0, 0);
	static const char *const what[3] = { "the captions (--captions, --val-captions)",
	                                     "the features (--features)",
	                                     "the model or the settings (--init, --resume, options)" };
	for (int i = 0; i < 3; i++)
		if (h[i] != h0[i])
			return cap_fail("%s differ from rank 0's: every rank must read the same streams and "
			                "files with the same options", what[i]);
	return 0;
}

/* The epochs; on return r->stop_reason says why they ended. */
static int train_loop(trainer *r)
{
	const cap_trainer_opts *o = &r->o;
	size_t nparams = r->m->n_params;
	int rc = -1, stop = 0, saved_ckpt = 0, B = o->batch;
	cap_decoder_work *w = cap_decoder_work_new(r->m);
	float *grad = r->ops->alloc(sizeof(float) * nparams);
	uint32_t *order = cap_xmalloc(sizeof(uint32_t) * r->caps.n);
	size_t *start = cap_xmalloc(sizeof(size_t) * (r->caps.n / B + 2));
	int *len = cap_xmalloc(sizeof(int) * B);
	const uint32_t **ids = cap_xmalloc(sizeof(*ids) * B);
	int32_t *rows = cap_xmalloc(sizeof(*rows) * B);
	r->glen = cap_xmalloc(sizeof(int) * B);
	if (!grad)
		goto out;
	r->stop_reason = "epochs";
	if (o->max_steps && r->step >= o->max_steps) {  /* resumed from a run that already got there */
		fprintf(r->err, "cap-train: the checkpoint is at step %lld already (--max-steps %lld)\n",
		        r->step, o->max_steps);
		r->stop_reason = "max_steps";
		stop = 1;
	}
	for (; r->epoch < o->epochs && !stop; r->epoch++) {
		r->shuf = r->epoch_rng;
		size_t nb = cap_train_epoch(&r->caps, B, o->shuffle, &r->shuf, order, start);
		double t0 = cap_now(), tlast = t0;
		for (; r->pos < nb; r->pos++) {
			size_t ntok;
			double rs = r->reduce_secs;
			double loss = batch_pass(r, w, order, start[r->pos], start[r->pos + 1], len, ids, rows, grad, &ntok);
			if (!isfinite(loss)) {
				if (o->progress)
					fputc('\n', r->err);
				cap_fail("step %lld (epoch %d, batch %zu): loss is %g; stopped; %s", r->step + 1,
				         r->epoch + 1, r->pos + 1, loss,
				         saved_ckpt || o->resume ? "the last good checkpoint is kept" : "no checkpoint was written");
				if (r->d->size > 1)   /* the reduced loss: every rank is here */
					cap_dist_die_all(r->d, cap_errmsg());
				goto out;
			}
			if (o->clip > 0)   /* the norm is a pass over the whole gradient: only when clipping */
				cap_clip_grad_norm(r->ops, grad, nparams, o->clip);
			/* Adam, the decoder's prepared weights refreshed in the same pass */
			cap_adam_consts k = cap_adam_next(&r->adam);
			cap_decoder_work_adam(w, r->m, grad, r->adam.m, r->adam.v, &k);
			r->step++;
			r->epoch_loss += loss * (double)ntok;
			r->epoch_tokens += (double)ntok;
			double t = cap_now();
			if (r->log && log_step(r, loss, ntok, t - tlast, r->reduce_secs - rs) < 0)
				goto out;
			tlast = t;
			if (o->progress)
				progress_bar(r->err, r->epoch + 1, o->epochs, r->pos + 1, nb, r->epoch_loss / r->epoch_tokens, t0);
			if (o->max_steps && r->step >= o->max_steps) {
				stop = 1;
				r->pos++;
				break;
			}
			if (o->save_every && r->step % o->save_every == 0) {
				r->pos++;  /* the checkpoint names the next batch */
				int k = save_ckpt(r);
				r->pos--;
				if (k < 0)
					goto out;
				saved_ckpt = 1;
			}
		}
		if (o->progress)
			fputc('\n', r->err);
		if (stop && r->pos < nb) {  /* stopped inside the epoch by --max-steps */
			if (save_ckpt(r) < 0)
				goto out;
			fprintf(r->err, "cap-train: stopped after %lld steps (--max-steps)\n", r->step);
			r->stop_reason = "max_steps";
			break;
		}
		/* End of the epoch. */
		double secs = cap_now() - t0, tl = r->epoch_loss / r->epoch_tokens, vl = NAN;
		cap_buf_printf(&r->history, "%s{\"epoch\":%d,\"train_loss\":%.6f", r->history.len ? "," : "",
		               r->epoch + 1, tl);
		int improved = 1;
		if (o->val) {
			vl = evaluate(r, w, &r->val);
			cap_buf_printf(&r->history, ",\"val_loss\":%.6f,\"perplexity\":%.4f", vl, exp(vl));
			improved = vl < r->best_val;
			if (improved) {
				r->best_val = vl;
				r->best_epoch = r->epoch + 1;
				r->bad_epochs = 0;
				r->ops->download(r->best, r->m->dev.data, sizeof(float) * nparams);
			} else {
				r->bad_epochs++;
			}
		}
		cap_buf_addc(&r->history, '}');
		fprintf(r->err, "epoch %d/%d: train loss %.4f", r->epoch + 1, o->epochs, tl);
		if (o->val)
			fprintf(r->err, ", val loss %.4f, perplexity %.2f%s", vl, exp(vl), improved ? " (best)" : "");
		fprintf(r->err, ", %.1f s, %lld steps\n", secs, r->step);
		if (r->log && log_epoch(r, tl, vl, secs) < 0)
			goto out;
		if (o->early_stop && r->bad_epochs >= o->early_stop) {
			fprintf(r->err, "cap-train: no improvement for %d epochs; keeping epoch %d\n",
			        r->bad_epochs, r->best_epoch);
			r->stop_reason = "early_stop";
			stop = 1;
		}
		if (stop && o->max_steps && r->step >= o->max_steps && strcmp(r->stop_reason, "early_stop"))
			r->stop_reason = "max_steps";
		/* Position: the start of the next epoch, whose shuffle continues from here. */
		r->epoch_loss = r->epoch_tokens = 0;
		r->pos = 0;
		r->epoch_rng = r->shuf;
		r->epoch++;
		char when[48];
		snprintf(when, sizeof when, "end of epoch %d", r->epoch);
		if (check_same_weights(r, when) < 0)
			cap_dist_die_all(r->d, cap_errmsg());
		int k = save_ckpt(r);
		r->epoch--;
		if (k < 0)
			goto out;
		saved_ckpt = 1;
	}
	rc = 0;
out:
	if (grad)
		r->ops->free(grad);
	free(order); free(start); free(len); free(ids); free(rows); free(r->glen);
	r->glen = NULL;
	cap_decoder_work_free(w);
	return rc;
}

int cap_trainer_run(const cap_trainer_opts *opts)
{
	trainer r = { 0 };
	r.o = *opts;
	r.ops = opts->ops;
	r.d = opts->dist ? opts->dist : cap_dist_single();
	r.err = stderr;
	if (r.d->rank != 0) {   /* quiet: rank 0 speaks for all */
		r.o.progress = 0;
		r.o.log = NULL;
		if (!(r.err = fopen("/dev/null", "w")))
			return cap_fail("/dev/null: %s", strerror(errno));
	}
	int rc = -1;
	uint64_t V = 0;
	size_t n = strlen(opts->out) + 6;
	r.ckpt_path = cap_xmalloc(n);
	snprintf(r.ckpt_path, n, "%s.ckpt", opts->out);
	/* Each rank reads on its own; then they agree that all could (several ranks stop here, each
	 * failing one saying why), and that all hold the same. */
	int bad = (r.d->rank == 0 && check_writable(opts->out) < 0) || load_data(&r, &V) < 0 ||
	          make_model(&r, V) < 0;
	if (cap_dist_agree(r.d, bad) < 0 || cap_dist_agree(r.d, check_same_start(&r) < 0) < 0)
		goto out;
	if (r.d->size > 1)
		fprintf(r.err, "cap-train: %d ranks (%s), each a share of every batch of %d\n", r.d->size,
		        r.d->name, r.o.batch);
	if (r.o.log) {
		if (!(r.log = cap_writer_open(opts->log)))
			goto out;
		msgpack_packer *pk = cap_writer_packer(r.log);
		cap_pack_header(pk, "metrics", 3);
		cap_pack_kv_str(pk, "tool", "cap-train");
		cap_pack_kv_str(pk, "device", r.ops->name);
		cap_pack_kv_uint(pk, "world_size", (uint64_t)r.d->size);
		if (cap_writer_end(r.log) < 0)
			goto out;
	}
	if (train_loop(&r) < 0)
		goto out;
	if (check_same_weights(&r, "end of training") < 0)
		cap_dist_die_all(r.d, cap_errmsg());
	if (r.d->size > 1)
		fprintf(r.err, "cap-train: %d ranks: %.2f s of the sums over the ranks (waits included)\n",
		        r.d->size, r.reduce_secs);
	if (r.d->rank == 0 && save_model(&r) < 0)
		goto out;
	if (r.log) {
		cap_writer *l = r.log;
		r.log = NULL;
		if (cap_writer_close(l) < 0)
			goto out;
	}
	rc = 0;
out:
	if (r.log)
		cap_writer_abort(r.log);
	if (r.m)
		cap_adam_free(&r.adam);
	cap_decoder_free(r.m);
	cap_ops_unmirror(r.ops, r.feat_table, r.feats.data);
	free(r.best);
	cap_buf_free(&r.history);
	free(r.tok_json_owned);
	cap_train_caps_free(&r.caps);
	cap_train_caps_free(&r.val);
	cap_train_feats_free(&r.feats);
	free(r.ckpt_path);
	free(r.grad_host);
	if (r.err != stderr)
		fclose(r.err);
	return rc;
}

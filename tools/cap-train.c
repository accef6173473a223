/* cap-train: trains the LSTM caption decoder on a features stream and a captions stream with
 * teacher forcing and Adam, writing a safetensors model file (see man/cap-train.1). */
#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "train/adam.h"
#include "core/buf.h"
#include "decoder/decoder.h"
#include "core/error.h"
#include "core/cli.h"
#include "ops/gemm.h"
#include "io/stream.h"
#include "train/train.h"

static void usage(FILE *f)
{
	fprintf(f,
	"usage: cap-train --features F --captions C -o MODEL [--tokenizer T] [--epochs 30]\n"
	"                 [--batch 64] [--lr 1e-3] [--embed 256] [--hidden 512] [--layers 1]\n"
	"                 [--dropout 0] [--clip-norm X] [--seed S] [--no-shuffle] [--init MODEL]\n"
	"                 [--resume CKPT] [--val-captions C2 [--early-stop N]] [--log METRICS]\n"
	"                 [--threads N] [--save-every STEPS] [--max-steps N] [--reference]\n"
	"Trains the caption decoder (Linear proj, Embedding, LSTM, Linear) with teacher forcing.\n"
	"The checkpoint (Adam state, position, RNG) is written to MODEL.ckpt.\n");
}

struct opts {
	const char *features, *captions, *out, *tokenizer, *init, *resume, *val, *log;
	int epochs, batch, embed, hidden, layers, shuffle, early_stop, threads, reference;
	double lr, dropout, clip;
	uint64_t seed;
	long long save_every, max_steps;
};

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		err(1, "%s", path);
	cap_buf b = { 0 };
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		cap_buf_add(&b, chunk, n);
	if (ferror(f))
		err(1, "%s", path);
	fclose(f);
	if (memchr(b.data ? b.data : "", 0, b.len))
		errx(1, "%s: tokenizer file holds a NUL byte", path);
	cap_buf_addc(&b, 0);
	return b.data;
}

/* ---- the run's state, everything a checkpoint must restore ---- */
struct run {
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
	cap_buf history;                 /* JSON array items of finished epochs, comma separated */
};

static const struct opts *O;
static const char *tok_digest, *tok_json;
static char *ckpt_path;

static void fmt17(char *buf, size_t n, double v) { snprintf(buf, n, "%.17g", v); }

static char *history_json(const struct run *r)
{
	cap_buf b = { 0 };
	cap_buf_printf(&b, "{\"steps\":%lld,\"epochs\":[%s]", r->step, r->history.data ? r->history.data : "");
	if (r->best_epoch > 0)
		cap_buf_printf(&b, ",\"best_epoch\":%d", r->best_epoch);
	cap_buf_addc(&b, '}');
	return b.data;
}

static void save_model(const struct run *r)
{
	char fd[16], e[16], h[16], l[16], v[16], dr[32], seed[32];
	const cap_decoder_config *c = &r->m->cfg;
	snprintf(fd, sizeof fd, "%d", c->feat_dim);
	snprintf(e, sizeof e, "%d", c->embed);
	snprintf(h, sizeof h, "%d", c->hidden);
	snprintf(l, sizeof l, "%d", c->layers);
	snprintf(v, sizeof v, "%d", c->vocab);
	snprintf(dr, sizeof dr, "%g", O->dropout);
	snprintf(seed, sizeof seed, "%" PRIu64, O->seed);
	char *hist = history_json(r);
	const char *meta[32];
	int k = 0;
#define KV(a, b) do { meta[k++] = (a); meta[k++] = (b); } while (0)
	KV("format", "cap-decoder");
	KV("tool", "cap-train " CAP_VERSION);
	KV("feature_dim", fd); KV("embed", e); KV("hidden", h); KV("layers", l); KV("vocab_size", v);
	KV("dropout", dr); KV("seed", seed);
	if (tok_digest) KV("tokenizer", tok_digest);
	if (tok_json) KV("tokenizer_json", tok_json);
	KV("history", hist);
#undef KV
	meta[k] = NULL;
	if (cap_decoder_save(r->m, O->out, meta) < 0)
		errx(1, "%s", cap_errmsg());
	free(hist);
}

static void save_ckpt(const struct run *r)
{
	char s[16][40], he[65], hd[65];
	cap_rng_to_hex(&r->epoch_rng, he);
	cap_rng_to_hex(&r->drop, hd);
	fmt17(s[0], 40, O->lr);
	snprintf(s[1], 40, "%d", O->batch);
	fmt17(s[2], 40, O->dropout);
	fmt17(s[3], 40, O->clip);
	snprintf(s[4], 40, "%" PRIu64, O->seed);
	snprintf(s[5], 40, "%d", O->shuffle);
	snprintf(s[6], 40, "%d", r->epoch);
	snprintf(s[7], 40, "%zu", r->pos);
	snprintf(s[8], 40, "%lld", r->step);
	fmt17(s[9], 40, r->epoch_loss);
	fmt17(s[10], 40, r->epoch_tokens);
	fmt17(s[11], 40, r->best_val);
	snprintf(s[12], 40, "%d", r->best_epoch);
	snprintf(s[13], 40, "%d", r->bad_epochs);
	const char *meta[] = {
		"lr", s[0], "batch", s[1], "dropout", s[2], "clip_norm", s[3], "seed", s[4],
		"shuffle", s[5], "epoch", s[6], "position", s[7], "step", s[8], "epoch_loss", s[9],
		"epoch_tokens", s[10], "best_val", s[11], "best_epoch", s[12], "bad_epochs", s[13],
		"rng_epoch", he, "rng_dropout", hd, "history_epochs", r->history.data ? r->history.data : "",
		tok_digest ? "tokenizer" : NULL, tok_digest, NULL
	};
	if (cap_train_ckpt_save(ckpt_path, r->m, &r->adam, meta) < 0)
		errx(1, "%s", cap_errmsg());
}

static const char *need_meta(const cap_train_ckpt *k, const char *key)
{
	const char *v = cap_train_ckpt_meta(k, key);
	if (!v)
		errx(1, "%s: checkpoint lacks '%s'", O->resume, key);
	return v;
}

static void resume(struct run *r, struct opts *o)
{
	cap_train_ckpt *k = cap_train_ckpt_load(o->resume, &r->m, &r->adam);
	if (!k)
		errx(1, "%s", cap_errmsg());
	/* The run's hyperparameters come from the checkpoint so that it continues the same run. */
	o->lr = atof(need_meta(k, "lr"));
	o->batch = atoi(need_meta(k, "batch"));
	o->dropout = atof(need_meta(k, "dropout"));
	o->clip = atof(need_meta(k, "clip_norm"));
	o->seed = strtoull(need_meta(k, "seed"), NULL, 10);
	o->shuffle = atoi(need_meta(k, "shuffle"));
	r->epoch = atoi(need_meta(k, "epoch"));
	r->pos = (size_t)strtoull(need_meta(k, "position"), NULL, 10);
	r->step = atoll(need_meta(k, "step"));
	r->epoch_loss = strtod(need_meta(k, "epoch_loss"), NULL);
	r->epoch_tokens = strtod(need_meta(k, "epoch_tokens"), NULL);
	r->best_val = strtod(need_meta(k, "best_val"), NULL);
	r->best_epoch = atoi(need_meta(k, "best_epoch"));
	r->bad_epochs = atoi(need_meta(k, "bad_epochs"));
	if (o->batch < 1 || r->epoch < 0 ||
	    cap_rng_from_hex(&r->epoch_rng, need_meta(k, "rng_epoch")) < 0 ||
	    cap_rng_from_hex(&r->drop, need_meta(k, "rng_dropout")) < 0)
		errx(1, "%s: checkpoint has bad bookkeeping values", o->resume);
	cap_buf_adds(&r->history, need_meta(k, "history_epochs"));
	const char *t = cap_train_ckpt_meta(k, "tokenizer");
	if (t && tok_digest && strcmp(t, tok_digest))
		errx(1, "%s: tokenizer %s differs from the captions' %s", o->resume, t, tok_digest);
	r->shuf = r->epoch_rng;
	cap_train_ckpt_close(k);
}

/* Mean loss over the tokens of a caption set (forward only, stream order). */
static double evaluate(cap_decoder_work *w, const cap_decoder *m, const cap_train_caps *c,
                       const cap_train_feats *f, int batch)
{
	uint32_t *order = cap_xmalloc(sizeof(uint32_t) * c->n);
	size_t *start = cap_xmalloc(sizeof(size_t) * (c->n / batch + 2));
	int *len = cap_xmalloc(sizeof(int) * batch);
	const uint32_t **ids = cap_xmalloc(sizeof(*ids) * batch);
	const float **feat = cap_xmalloc(sizeof(*feat) * batch);
	size_t nb = cap_train_epoch(c, batch, 0, NULL, order, start);
	double sum = 0, tok = 0;
	for (size_t k = 0; k < nb; k++) {
		cap_decoder_batch b;
		size_t n;
		cap_train_batch_view(c, f, order, start[k], start[k + 1], len, ids, feat, &b);
		sum += cap_decoder_loss(w, m, &b, 0, NULL, NULL, &n) * (double)n;
		tok += (double)n;
	}
	free(order); free(start); free(len); free(ids); free(feat);
	return sum / tok;
}

static void progress_bar(int epoch, int epochs, size_t done, size_t total, double loss, double t0)
{
	int width = 30, fill = total ? (int)(width * done / total) : width;
	double el = cap_now() - t0, eta = done ? el / done * (total - done) : 0;
	fprintf(stderr, "\repoch %d/%d [%.*s%*s] %zu/%zu loss %.4f %d:%02d elapsed, ETA %d:%02d ",
	        epoch, epochs, fill, "##############################", width - fill, "", done, total, loss,
	        (int)el / 60, (int)el % 60, (int)eta / 60, (int)eta % 60);
}

int main(int argc, char **argv)
{
	enum { O_TOK = 256, O_NOSHUF, O_INIT, O_RESUME, O_VAL, O_EARLY, O_LOG, O_THREADS, O_SAVE,
	       O_MAXSTEPS, O_REF, O_CLIP };
	static const struct option longopts[] = {
		{ "features", required_argument, NULL, 'f' },
		{ "captions", required_argument, NULL, 'c' },
		{ "output", required_argument, NULL, 'o' },
		{ "tokenizer", required_argument, NULL, O_TOK },
		{ "epochs", required_argument, NULL, 'e' },
		{ "batch", required_argument, NULL, 'b' },
		{ "lr", required_argument, NULL, 'l' },
		{ "embed", required_argument, NULL, 'E' },
		{ "hidden", required_argument, NULL, 'H' },
		{ "layers", required_argument, NULL, 'L' },
		{ "dropout", required_argument, NULL, 'd' },
		{ "clip-norm", required_argument, NULL, O_CLIP },
		{ "seed", required_argument, NULL, 's' },
		{ "no-shuffle", no_argument, NULL, O_NOSHUF },
		{ "init", required_argument, NULL, O_INIT },
		{ "resume", required_argument, NULL, O_RESUME },
		{ "val-captions", required_argument, NULL, O_VAL },
		{ "early-stop", required_argument, NULL, O_EARLY },
		{ "log", required_argument, NULL, O_LOG },
		{ "threads", required_argument, NULL, O_THREADS },
		{ "save-every", required_argument, NULL, O_SAVE },
		{ "max-steps", required_argument, NULL, O_MAXSTEPS },
		{ "reference", no_argument, NULL, O_REF },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .epochs = 30, .batch = 64, .lr = 1e-3, .embed = 256, .hidden = 512,
	                  .layers = 1, .shuffle = 1, .seed = 1 };
	int c;
	while ((c = cap_getopt(argc, argv, "o:", longopts)) != -1) {
		switch (c) {
		case 'f': o.features = optarg; break;
		case 'c': o.captions = optarg; break;
		case 'o': o.out = optarg; break;
		case O_TOK: o.tokenizer = optarg; break;
		case 'e': o.epochs = (int)cap_opt_int("epochs", optarg, 1, 1000000); break;
		case 'b': o.batch = (int)cap_opt_int("batch", optarg, 1, 65536); break;
		case 'l': o.lr = cap_opt_num("lr", optarg, 0, 3e38); break;
		case 'E': o.embed = (int)cap_opt_int("embed", optarg, 1, 65536); break;
		case 'H': o.hidden = (int)cap_opt_int("hidden", optarg, 1, 65536); break;
		case 'L': o.layers = (int)cap_opt_int("layers", optarg, 1, CAP_DECODER_MAX_LAYERS); break;
		case 'd': o.dropout = cap_opt_num("dropout", optarg, 0, 0.99); break;
		case O_CLIP: o.clip = cap_opt_num("clip-norm", optarg, 1e-30, 1e30); break;
		case 's': o.seed = (uint64_t)cap_opt_int("seed", optarg, 0, INT64_MAX); break;
		case O_NOSHUF: o.shuffle = 0; break;
		case O_INIT: o.init = optarg; break;
		case O_RESUME: o.resume = optarg; break;
		case O_VAL: o.val = optarg; break;
		case O_EARLY: o.early_stop = (int)cap_opt_int("early-stop", optarg, 1, 1000000); break;
		case O_LOG: o.log = optarg; break;
		case O_THREADS: o.threads = (int)cap_opt_int("threads", optarg, 1, 1024); break;
		case O_SAVE: o.save_every = cap_opt_int("save-every", optarg, 1, INT64_MAX); break;
		case O_MAXSTEPS: o.max_steps = cap_opt_int("max-steps", optarg, 1, INT64_MAX); break;
		case O_REF: o.reference = 1; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("cap-train cap %s\n", CAP_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		warnx("unexpected argument '%s'", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (!o.features || !o.captions || !o.out) {
		warnx("--features, --captions and -o are required");
		usage(stderr);
		return 2;
	}
	if (o.early_stop && !o.val) {
		warnx("--early-stop needs --val-captions");
		usage(stderr);
		return 2;
	}
	if (o.init && o.resume) {
		warnx("--init and --resume exclude each other");
		usage(stderr);
		return 2;
	}
	O = &o;
	ckpt_path = cap_xmalloc(strlen(o.out) + 6);
	sprintf(ckpt_path, "%s.ckpt", o.out);
	cap_gemm_set_reference(o.reference);
	if (cap_gemm_set_threads(o.threads) < 0)
		errx(1, "%s", cap_errmsg());

	/* ---- data ---- */
	cap_train_feats feats;
	cap_train_caps caps, val = { 0 };
	if (cap_train_feats_load(&feats, o.features) < 0 || cap_train_caps_load(&caps, &feats, o.captions) < 0)
		errx(1, "%s", cap_errmsg());
	size_t unused = 0;
	for (size_t i = 0; i < feats.n; i++)
		unused += feats.used[i] == 0;
	if (o.val && cap_train_caps_load(&val, &feats, o.val) < 0)
		errx(1, "%s", cap_errmsg());
	fprintf(stderr, "cap-train: %zu captions of %zu images; %zu captions without a feature skipped;"
	        " %zu features without a training caption\n",
	        caps.n, feats.n - unused, caps.unmatched, unused);
	if (o.val)
		fprintf(stderr, "cap-train: %zu validation captions; %zu without a feature skipped\n",
		        val.n, val.unmatched);
	if (!caps.n)
		errx(1, "%s: no caption matches an image of %s", o.captions, o.features);
	if (o.val && !val.n)
		errx(1, "%s: no validation caption matches an image of %s", o.val, o.features);
	if (o.val && caps.tokenizer && val.tokenizer && strcmp(caps.tokenizer, val.tokenizer))
		errx(1, "%s: tokenizer %s differs from the training captions' %s", o.val, val.tokenizer,
		     caps.tokenizer);
	tok_digest = caps.tokenizer;
	tok_json = o.tokenizer ? read_text(o.tokenizer) : caps.tokenizer_json;
	if (!tok_json)
		warnx("warning: no tokenizer.json in %s and no --tokenizer: the model will lack it", o.captions);
	uint64_t V = caps.vocab_size;
	if (o.val && val.vocab_size > V)
		V = val.vocab_size;
	if (V > INT32_MAX)
		errx(1, "%s: vocab_size %" PRIu64 " too large", o.captions, V);

	/* ---- model ---- */
	struct run r = { 0 };
	r.best_val = INFINITY;
	if (o.resume) {
		resume(&r, &o);
	} else {
		cap_rng init;
		cap_rng_seed(&init, o.seed);
		cap_rng_seed(&r.shuf, o.seed ^ 0x5348554646ull);
		cap_rng_seed(&r.drop, o.seed ^ 0x44524f50ull);
		r.epoch_rng = r.shuf;
		if (o.init) {
			if (!(r.m = cap_decoder_load(o.init)))
				errx(1, "%s", cap_errmsg());
			const char *t = cap_decoder_meta(r.m, "tokenizer");
			if (t && tok_digest && strcmp(t, tok_digest))
				errx(1, "%s: tokenizer %s differs from the captions' %s", o.init, t, tok_digest);
		} else {
			cap_decoder_config cfg = { feats.dim, o.embed, o.hidden, o.layers, (int)V };
			if (!(r.m = cap_decoder_new(&cfg)))
				errx(1, "%s", cap_errmsg());
			cap_decoder_init_random(r.m, &init);
		}
		cap_adam_init(&r.adam, r.m->n_params, o.lr);
	}
	const char *src = o.resume ? o.resume : o.init ? o.init : NULL;
	if (r.m->cfg.feat_dim != feats.dim)
		errx(1, "%s: model expects %d-d features, %s has %d", src, r.m->cfg.feat_dim, o.features, feats.dim);
	if ((uint64_t)r.m->cfg.vocab < V)
		errx(1, "%s: model vocabulary %d is smaller than the captions' %" PRIu64, src, r.m->cfg.vocab, V);

	/* ---- log ---- */
	cap_writer *log = NULL;
	if (o.log) {
		if (!(log = cap_writer_open(o.log)))
			errx(1, "%s", cap_errmsg());
		msgpack_packer *pk = cap_writer_packer(log);
		cap_pack_header(pk, "metrics", 1);
		cap_pack_kv_str(pk, "tool", "cap-train");
		if (cap_writer_end(log) < 0)
			errx(1, "%s", cap_errmsg());
	}

	/* ---- training ---- */
	cap_decoder_work *w = cap_decoder_work_new(r.m);
	float *grad = cap_xcalloc(r.m->n_params, sizeof(float));
	uint32_t *order = cap_xmalloc(sizeof(uint32_t) * caps.n);
	size_t *start = cap_xmalloc(sizeof(size_t) * (caps.n / o.batch + 2));
	int *len = cap_xmalloc(sizeof(int) * o.batch);
	const uint32_t **ids = cap_xmalloc(sizeof(*ids) * o.batch);
	const float **fp = cap_xmalloc(sizeof(*fp) * o.batch);
	int tty = isatty(2), stop = 0, saved_ckpt = 0;
	if (o.max_steps && r.step >= o.max_steps) {  /* resumed from a run that already got there */
		fprintf(stderr, "cap-train: the checkpoint is at step %lld already (--max-steps %lld)\n",
		        r.step, o.max_steps);
		if (!o.val)
			save_model(&r);
		stop = 1;
	}
	for (; r.epoch < o.epochs && !stop; r.epoch++) {
		r.shuf = r.epoch_rng;
		size_t nb = cap_train_epoch(&caps, o.batch, o.shuffle, &r.shuf, order, start);
		double t0 = cap_now(), tlast = t0;
		for (; r.pos < nb; r.pos++) {
			cap_decoder_batch b;
			size_t ntok;
			cap_train_batch_view(&caps, &feats, order, start[r.pos], start[r.pos + 1], len, ids, fp, &b);
			double loss = cap_decoder_loss(w, r.m, &b, (float)o.dropout, &r.drop, grad, &ntok);
			if (!isfinite(loss)) {
				if (tty)
					fputc('\n', stderr);
				errx(1, "step %lld (epoch %d, batch %zu): loss is %g; stopped; %s", r.step + 1,
				     r.epoch + 1, r.pos + 1, loss,
				     saved_ckpt || o.resume ? "the last good checkpoint is kept" : "no checkpoint was written");
			}
			cap_clip_grad_norm(grad, r.m->n_params, o.clip);
			cap_adam_step(&r.adam, r.m->data, grad);
			r.step++;
			r.epoch_loss += loss * (double)ntok;
			r.epoch_tokens += (double)ntok;
			double t = cap_now();
			if (log) {
				msgpack_packer *pk = cap_writer_packer(log);
				msgpack_pack_map(pk, 7);
				cap_pack_kv_str(pk, "type", "step");
				cap_pack_kv_uint(pk, "epoch", (uint64_t)r.epoch + 1);
				cap_pack_kv_uint(pk, "step", (uint64_t)r.step);
				cap_pack_kv_double(pk, "loss", loss);
				cap_pack_kv_uint(pk, "tokens", ntok);
				cap_pack_kv_double(pk, "seconds", t - tlast);
				cap_pack_kv_double(pk, "tokens_per_s", t > tlast ? ntok / (t - tlast) : 0);
				if (cap_writer_end(log) < 0)
					errx(1, "%s", cap_errmsg());
			}
			tlast = t;
			if (tty)
				progress_bar(r.epoch + 1, o.epochs, r.pos + 1, nb, r.epoch_loss / r.epoch_tokens, t0);
			if (o.max_steps && r.step >= o.max_steps) {
				stop = 1;
				r.pos++;
				break;
			}
			if (o.save_every && r.step % o.save_every == 0) {
				r.pos++;  /* the checkpoint names the next batch */
				save_ckpt(&r);
				r.pos--;
				saved_ckpt = 1;
			}
		}
		if (tty)
			fputc('\n', stderr);
		if (stop && r.pos < nb) {  /* stopped inside the epoch by --max-steps */
			if (!o.val)
				save_model(&r);
			save_ckpt(&r);
			fprintf(stderr, "cap-train: stopped after %lld steps (--max-steps)\n", r.step);
			break;
		}
		/* End of the epoch. */
		double secs = cap_now() - t0, tl = r.epoch_loss / r.epoch_tokens, vl = NAN;
		cap_buf_printf(&r.history, "%s{\"epoch\":%d,\"train_loss\":%.6f", r.history.len ? "," : "",
		               r.epoch + 1, tl);
		int improved = 1;
		if (o.val) {
			vl = evaluate(w, r.m, &val, &feats, o.batch);
			cap_buf_printf(&r.history, ",\"val_loss\":%.6f,\"perplexity\":%.4f", vl, exp(vl));
			improved = vl < r.best_val;
			if (improved) {
				r.best_val = vl;
				r.best_epoch = r.epoch + 1;
				r.bad_epochs = 0;
			} else {
				r.bad_epochs++;
			}
		}
		cap_buf_addc(&r.history, '}');
		fprintf(stderr, "epoch %d/%d: train loss %.4f", r.epoch + 1, o.epochs, tl);
		if (o.val)
			fprintf(stderr, ", val loss %.4f, perplexity %.2f%s", vl, exp(vl), improved ? " (best)" : "");
		fprintf(stderr, ", %.1f s, %lld steps\n", secs, r.step);
		if (log) {
			msgpack_packer *pk = cap_writer_packer(log);
			msgpack_pack_map(pk, o.val ? 7 : 5);
			cap_pack_kv_str(pk, "type", "epoch");
			cap_pack_kv_uint(pk, "epoch", (uint64_t)r.epoch + 1);
			cap_pack_kv_double(pk, "train_loss", tl);
			if (o.val) {
				cap_pack_kv_double(pk, "val_loss", vl);
				cap_pack_kv_double(pk, "perplexity", exp(vl));
			}
			cap_pack_kv_double(pk, "seconds", secs);
			cap_pack_kv_uint(pk, "steps", (uint64_t)r.step);
			if (cap_writer_end(log) < 0)
				errx(1, "%s", cap_errmsg());
		}
		if (improved)
			save_model(&r);
		if (o.early_stop && r.bad_epochs >= o.early_stop) {
			fprintf(stderr, "cap-train: no improvement for %d epochs; keeping epoch %d\n",
			        r.bad_epochs, r.best_epoch);
			stop = 1;
		}
		/* Position: the start of the next epoch, whose shuffle continues from here. */
		r.epoch_loss = r.epoch_tokens = 0;
		r.pos = 0;
		r.epoch_rng = r.shuf;
		r.epoch++;
		save_ckpt(&r);
		r.epoch--;
		saved_ckpt = 1;
	}
	if (log && cap_writer_close(log) < 0)
		errx(1, "%s", cap_errmsg());
	free(grad); free(order); free(start); free(len); free(ids); free(fp);
	cap_decoder_work_free(w);
	cap_adam_free(&r.adam);
	cap_decoder_free(r.m);
	cap_buf_free(&r.history);
	if (o.tokenizer)
		free((char *)tok_json);
	cap_train_caps_free(&caps);
	cap_train_caps_free(&val);
	cap_train_feats_free(&feats);
	free(ckpt_path);
	return 0;
}

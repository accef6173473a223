/* cap-generate: captions for image features with a trained decoder: greedy, beam search or
 * sampling (lib/search/search.h over lib/decoder/decoder.h), written as a 'generated' stream or as text. */
#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/cli.h"
#include "decoder/decoder.h"
#include "decoder/encoder_id.h"
#include "core/error.h"
#include "core/outfile.h"
#include "ops/gemm.h"
#include "search/search.h"
#include "io/stream.h"
#include "io/tensors.h"
#include "text/tokenizer.h"

static const char *prog = "cap-generate";

static void usage(FILE *f)
{
	fprintf(f,
	  "usage: cap-generate --model MODEL [--beam K] [--max-len N] [--length-penalty A]\n"
	  "                    [--nbest N] [--sample [--temperature T] [--top-k K] [--seed S]]\n"
	  "                    [--text] [--threads N] [--batch N] [--allow-encoder-mismatch]\n"
	  "                    [-o OUT] [FEATURES...]\n"
	  "Captions for the images of 'features' streams (FEATURES absent or '-': stdin).\n"
	  "  --model MODEL         decoder written by cap-train (safetensors with its tokenizer)\n"
	  "  --beam K              beam width; 1 (default) is greedy decoding\n"
	  "  --max-len N           at most N words per caption (default 20)\n"
	  "  --length-penalty A    rank finished beams by logprob / ((5 + words) / 6)^A (default 0)\n"
	  "  --nbest N             also list the N best hypotheses (N samples with --sample)\n"
	  "  --sample              draw words at random instead of searching\n"
	  "  --temperature T       sampling temperature (default 1)\n"
	  "  --top-k K             sample among the K most probable words (default 0: all)\n"
	  "  --seed S              seed of the sampling generator (default 0)\n"
	  "  --text                write lines IMAGE<TAB>CAPTION instead of a stream\n"
	  "  --threads N           threads for the matrix products (default: all cores)\n"
	  "  --batch N             images decoded together (default 64)\n"
	  "  --allow-encoder-mismatch  caption features of another encoder than the model's\n"
	  "  -o OUT                output file, written atomically (default: stdout)\n");
}

/* The decoder seen through the search's stepper interface. */
typedef struct gen_model {
	const cap_decoder *m;
	cap_decoder_state *s;
} gen_model;

static int gen_step(void *ctx, const uint32_t *ids, int rows, float *logp)
{
	gen_model *g = ctx;
	if (rows != g->s->batch) return cap_fail("internal: %d rows fed to a state of %d", rows, g->s->batch);
	cap_decoder_step(g->m, g->s, ids, logp);
	return 0;
}

static int gen_gather(void *ctx, const int *idx, int n)
{
	gen_model *g = ctx;
	if (n > g->s->capacity) return cap_fail("internal: gather of %d rows beyond %d", n, g->s->capacity);
	cap_decoder_state_gather(g->s, g->s, idx, n);
	return 0;
}

/* Output: a generated stream through cap_writer, or text lines written to a temporary file
 * renamed into place at the end (or stdout). */
/* The output: a generated stream, or with --text a text file; both written atomically. */
typedef struct output {
	cap_writer *w;
	cap_outfile *f;
} output;

static int out_open(output *o, const char *path, int text)
{
	memset(o, 0, sizeof *o);
	if (text) o->f = cap_outfile_open(path);
	else o->w = cap_writer_open(path);
	return o->w || o->f ? 0 : -1;
}

static int out_close(output *o, int ok)
{
	if (o->w) {
		if (ok) return cap_writer_close(o->w);
		cap_writer_abort(o->w);
		return 0;
	}
	if (ok) return cap_outfile_close(o->f);
	cap_outfile_abort(o->f);
	return 0;
}

static void pack_hyp_fields(msgpack_packer *pk, const cap_hyp *h, const char *caption, size_t len)
{
	cap_pack_str(pk, "caption");
	cap_pack_strn(pk, caption, len);
	cap_pack_str(pk, "ids");
	cap_pack_u32_array(pk, h->ids, h->n);
	cap_pack_kv_double(pk, "logprob", h->logprob);
}

int main(int argc, char **argv)
{
	enum { O_MODEL = 256, O_BEAM, O_MAXLEN, O_LP, O_NBEST, O_SAMPLE, O_TEMP, O_TOPK, O_SEED,
	       O_TEXT, O_THREADS, O_BATCH, O_HELP, O_VERSION, O_ALLOW_ENC };
	static const struct option longopts[] = {
		{ "model", required_argument, NULL, O_MODEL },
		{ "beam", required_argument, NULL, O_BEAM },
		{ "max-len", required_argument, NULL, O_MAXLEN },
		{ "length-penalty", required_argument, NULL, O_LP },
		{ "nbest", required_argument, NULL, O_NBEST },
		{ "sample", no_argument, NULL, O_SAMPLE },
		{ "temperature", required_argument, NULL, O_TEMP },
		{ "top-k", required_argument, NULL, O_TOPK },
		{ "seed", required_argument, NULL, O_SEED },
		{ "text", no_argument, NULL, O_TEXT },
		{ "threads", required_argument, NULL, O_THREADS },
		{ "batch", required_argument, NULL, O_BATCH },
		{ "allow-encoder-mismatch", no_argument, NULL, O_ALLOW_ENC },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, O_HELP },
		{ "version", no_argument, NULL, O_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	cap_search_opts so;
	cap_search_opts_default(&so);
	const char *model_path = NULL, *out_path = NULL;
	int allow_enc = 0;
	int text = 0, threads = 0, batch = 64, nbest_given = 0, sampling_opt = 0;
	int c;
	while ((c = getopt_long(argc, argv, "o:", longopts, NULL)) != -1) {
		switch (c) {
		case O_MODEL: model_path = optarg; break;
		case O_BEAM: so.beam = (int)cap_opt_int("beam", optarg, 1, 1000); break;
		case O_MAXLEN: so.max_len = (int)cap_opt_int("max-len", optarg, 1, 10000); break;
		case O_LP: so.length_penalty = cap_opt_num("length-penalty", optarg, 0, 100); break;
		case O_NBEST: so.nbest = (int)cap_opt_int("nbest", optarg, 1, 1000); nbest_given = 1; break;
		case O_SAMPLE: so.sample = 1; break;
		case O_TEMP: so.temperature = cap_opt_num("temperature", optarg, 1e-6, 1e6); sampling_opt = 1; break;
		case O_TOPK: so.top_k = (int)cap_opt_int("top-k", optarg, 0, INT_MAX); sampling_opt = 1; break;
		case O_SEED: {
			char *end;
			errno = 0;
			unsigned long long v = strtoull(optarg, &end, 10);
			if (errno || end == optarg || *end || optarg[0] == '-') {
				warnx("--seed: expected a non-negative integer, got '%s'", optarg);
				return 2;
			}
			so.seed = v;
			sampling_opt = 1;
			break;
		}
		case O_TEXT: text = 1; break;
		case O_THREADS: threads = (int)cap_opt_int("threads", optarg, 1, 1024); break;
		case O_BATCH: batch = (int)cap_opt_int("batch", optarg, 1, 1 << 16); break;
		case O_ALLOW_ENC: allow_enc = 1; break;
		case 'o': out_path = optarg; break;
		case O_HELP: usage(stdout); return 0;
		case O_VERSION: printf("cap-generate cap %s\n", CAP_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!model_path) { warnx("--model is required"); usage(stderr); return 2; }
	if (sampling_opt && !so.sample) { warnx("--temperature, --top-k and --seed need --sample"); return 2; }
	if (so.sample && so.beam != 1) { warnx("--sample and --beam exclude each other"); return 2; }
	if (cap_search_opts_check(&so) < 0) { warnx("%s", cap_errmsg()); return 2; }
	if (text && nbest_given && so.nbest > 1) warnx("--text prints the best caption only; --nbest is ignored");
	/* Rows of state and of log-probabilities: (batch * width, V) floats must stay sane. */
	if ((long)batch * (so.sample ? so.nbest : so.beam) > (1L << 16)) {
		warnx("--batch times --beam (or --nbest with --sample) is above 65536");
		return 2;
	}
	if (threads && cap_gemm_set_threads(threads) < 0) errx(1, "%s", cap_errmsg());

	/* The model, its tokenizer, and the digests naming both. */
	cap_decoder *m = cap_decoder_load(model_path);
	if (!m) errx(1, "%s", cap_errmsg());
	const char *tj = cap_decoder_meta(m, "tokenizer_json");
	if (!tj) errx(1, "%s: the model holds no tokenizer (metadata 'tokenizer_json')", model_path);
	cap_tokenizer *tok = cap_tokenizer_parse(tj, strlen(tj));
	if (!tok) errx(1, "%s: its tokenizer: %s", model_path, cap_errmsg());
	if (cap_tokenizer_vocab_size(tok) != (size_t)m->cfg.vocab)
		errx(1, "%s: the tokenizer has %zu words but the model's vocabulary is %d", model_path,
		     cap_tokenizer_vocab_size(tok), m->cfg.vocab);
	const char *tdig = cap_decoder_meta(m, "tokenizer");
	if (tdig && strcmp(tdig, cap_tokenizer_digest(tok)) != 0)
		errx(1, "%s: metadata 'tokenizer' %s is not the digest of its tokenizer_json (%s)",
		     model_path, tdig, cap_tokenizer_digest(tok));
	if (m->cfg.vocab <= CAP_DECODER_END) errx(1, "%s: vocabulary too small", model_path);
	char mdig[65], *enc_meta = NULL;
	{
		cap_tensors *ts = cap_tensors_load(model_path);
		if (!ts || cap_tensors_digest(ts, mdig) < 0) errx(1, "%s", cap_errmsg());
		const char *em = cap_tensors_meta(ts, CAP_ENCODER_ID_META_KEY);
		if (em) enc_meta = cap_xstrdup(em);
		cap_tensors_free(ts);
	}
	so.start_id = CAP_DECODER_START;
	so.end_id = CAP_DECODER_END;

	/* The features. */
	int nin = argc - optind;
	cap_reader *r = cap_reader_open((const char *const *)argv + optind, nin, "features");
	if (!r) errx(1, "%s", cap_errmsg());
	const msgpack_object *dimo = cap_map_get(cap_reader_header(r), "dim");
	uint64_t dim;
	if (dimo && cap_obj_uint(dimo, &dim) == 0 && dim != (uint64_t)m->cfg.feat_dim)
		errx(1, "%s: features of dimension %llu, but the model %s takes %d", cap_reader_name(r),
		     (unsigned long long)dim, model_path, m->cfg.feat_dim);
	/* The features must come from the encoder the model was trained on (encoder_id.h). */
	if (cap_encoder_id_check(enc_meta, model_path, cap_reader_header(r), cap_reader_name(r), NULL) < 0) {
		if (!allow_enc) errx(1, "%s (--allow-encoder-mismatch to caption them anyway)", cap_errmsg());
		warnx("warning: %s", cap_errmsg());
	}
	free(enc_meta);

	output out;
	if (out_open(&out, out_path, text) < 0) errx(1, "%s", cap_errmsg());
	if (!text) {
		msgpack_packer *pk = cap_writer_packer(out.w);
		cap_pack_header(pk, "generated", 5);
		cap_pack_kv_str(pk, "model", mdig);
		cap_pack_kv_str(pk, "tokenizer", cap_tokenizer_digest(tok));
		cap_pack_kv_uint(pk, "vocab_size", (uint64_t)m->cfg.vocab);
		cap_pack_kv_str(pk, "tool", "cap-generate " CAP_VERSION);
		cap_pack_str(pk, "decoding");
		const char *method = so.sample ? "sample" : so.beam > 1 ? "beam" : "greedy";
		msgpack_pack_map(pk, so.sample ? 6 : 5);
		cap_pack_kv_str(pk, "method", method);
		cap_pack_kv_uint(pk, "max_len", (uint64_t)so.max_len);
		cap_pack_kv_uint(pk, "nbest", (uint64_t)so.nbest);
		if (so.sample) {
			cap_pack_kv_double(pk, "temperature", so.temperature);
			cap_pack_kv_uint(pk, "top_k", (uint64_t)so.top_k);
			cap_pack_kv_uint(pk, "seed", so.seed);
		} else {
			cap_pack_kv_uint(pk, "beam", (uint64_t)so.beam);
			cap_pack_kv_double(pk, "length_penalty", so.length_penalty);
		}
		if (cap_writer_end(out.w) < 0) errx(1, "%s", cap_errmsg());
	}

	int D = m->cfg.feat_dim, rows = cap_search_rows(&so, batch);
	cap_decoder_state *st = cap_decoder_state_new(m, rows);
	gen_model gm = { m, st };
	cap_stepper stepper = { &gm, m->cfg.vocab, gen_step, gen_gather };
	float *feats = cap_xmalloc((size_t)batch * D * sizeof *feats);
	char **names = cap_xcalloc(batch, sizeof *names);
	cap_search_result *res = cap_xcalloc(batch, sizeof *res);
	cap_buf cap = { 0 };
	uint64_t done = 0;
	int rc = 0, nb = 0, eof = 0, tty = isatty(2);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!eof && rc == 0) {
		/* Fill a batch. */
		nb = 0;
		while (nb < batch) {
			const msgpack_object *rec;
			int k = cap_reader_next(r, &rec);
			if (k < 0) { warnx("%s", cap_errmsg()); rc = 1; break; }
			if (k == 0) { eof = 1; break; }
			const char *img;
			size_t len;
			if (cap_rec_str(r, rec, "image", &img, &len) < 0 ||
			    cap_rec_f32(r, rec, "feature", feats + (size_t)nb * D, (size_t)D) < 0) {
				warnx("%s (the model %s takes features of dimension %d)", cap_errmsg(), model_path, D);
				rc = 1;
				break;
			}
			free(names[nb]);
			names[nb] = cap_xmalloc(len + 1);
			memcpy(names[nb], img, len);
			names[nb][len] = 0;
			nb++;
		}
		if (rc || nb == 0) break;
		cap_decoder_start(m, st, feats, nb);
		if (cap_search(&stepper, nb, &so, done, res) < 0) { warnx("%s", cap_errmsg()); rc = 1; break; }
		for (int b = 0; b < nb && rc == 0; b++) {
			const cap_hyp *best = &res[b].hyps[0];
			cap_buf_reset(&cap);
			if (cap_tokenizer_decode(tok, best->ids, best->n, &cap) < 0) {
				warnx("%s", cap_errmsg());
				rc = 1;
				break;
			}
			if (text) {
				fprintf(cap_outfile_fp(out.f), "%s\t%s\n", names[b], cap.len ? cap.data : "");
				continue;
			}
			msgpack_packer *pk = cap_writer_packer(out.w);
			int with_nbest = nbest_given;
			msgpack_pack_map(pk, 4 + with_nbest);
			cap_pack_kv_str(pk, "image", names[b]);
			pack_hyp_fields(pk, best, cap.len ? cap.data : "", cap.len);
			if (with_nbest) {
				cap_pack_str(pk, "nbest");
				msgpack_pack_array(pk, res[b].n);
				for (int i = 0; i < res[b].n; i++) {
					cap_buf_reset(&cap);
					cap_tokenizer_decode(tok, res[b].hyps[i].ids, res[b].hyps[i].n, &cap);
					msgpack_pack_map(pk, 3);
					pack_hyp_fields(pk, &res[b].hyps[i], cap.len ? cap.data : "", cap.len);
				}
			}
			if (cap_writer_end(out.w) < 0) { warnx("%s", cap_errmsg()); rc = 1; }
		}
		for (int b = 0; b < nb; b++) cap_search_result_free(&res[b]);
		done += (uint64_t)nb;
		if (tty) {
			clock_gettime(CLOCK_MONOTONIC, &t1);
			double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
			fprintf(stderr, "\r%s: %llu images, %.1f captions/s", prog, (unsigned long long)done,
			        s > 0 ? (double)done / s : 0.0);
		}
	}
	if (tty && done) fputc('\n', stderr);
	if (out_close(&out, rc == 0) < 0) { warnx("%s", cap_errmsg()); rc = 1; }
	for (int b = 0; b < batch; b++) free(names[b]);
	free(names); free(res); free(feats);
	cap_buf_free(&cap);
	cap_decoder_state_free(st);
	cap_reader_close(r);
	cap_tokenizer_free(tok);
	cap_decoder_free(m);
	return rc;
}

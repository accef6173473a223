/* cap_generate_run (see generate.h): features streams in, captions out, batch by batch. */
#include "search/generate.h"
#include "decoder/encoder_id.h"
#include "core/buf.h"
#include "core/cli.h"
#include "core/bigmem.h"
#include "core/error.h"
#include "core/outfile.h"
#include "io/stream.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int cap_generate_run(cap_generator *gen, const cap_generate_io *io)
{
	const cap_decoder *m = cap_generator_model(gen);
	const cap_tokenizer *tok = cap_generator_tokenizer(gen);
	const cap_search_opts so = *cap_generator_opts(gen);
	const char *model_path = io->model_path;
	int batch = cap_generator_batch(gen), text = io->text, nbest_given = io->nbest;
	cap_reader *r = cap_reader_open(io->inputs, io->ninputs, "features");
	if (!r) return -1;
	const msgpack_object *dimo = cap_map_get(cap_reader_header(r), "dim");
	uint64_t dim;
	if (dimo && cap_obj_uint(dimo, &dim) == 0 && dim != (uint64_t)m->cfg.feat_dim)
	{
		cap_fail("%s: features of dimension %llu, but the model %s takes %d", cap_reader_name(r),
		         (unsigned long long)dim, model_path, m->cfg.feat_dim);
		cap_reader_close(r);
		return -1;
	}

	/* The features must come from the encoder the model was trained on (encoder_id.h). */
	if (cap_encoder_id_check(cap_decoder_meta(m, CAP_ENCODER_ID_META_KEY), model_path,
	                         cap_reader_header(r), cap_reader_name(r), NULL) < 0) {
		if (!io->allow_encoder_mismatch) {
			char msg[1024];
			snprintf(msg, sizeof msg, "%s", cap_errmsg());
			cap_fail("%s (--allow-encoder-mismatch to caption them anyway)", msg);
			cap_reader_close(r);
			return -1;
		}
		fprintf(stderr, "cap-generate: warning: %s\n", cap_errmsg());
	}

	output out;
	if (out_open(&out, io->out_path, text) < 0) {
		cap_reader_close(r);
		return -1;
	}
	if (!text) {
		msgpack_packer *pk = cap_writer_packer(out.w);
		cap_pack_header(pk, "generated", 7);
		cap_pack_kv_str(pk, "model", cap_generator_digest(gen));
		cap_pack_kv_str(pk, "tokenizer", cap_tokenizer_digest(tok));
		/* the tokenizer itself, so that cap-tokenize decode needs no file */
		cap_pack_kv_str(pk, "tokenizer_json", cap_decoder_meta(m, "tokenizer_json"));
		cap_pack_kv_uint(pk, "vocab_size", (uint64_t)m->cfg.vocab);
		cap_pack_kv_str(pk, "tool", "cap-generate " CAP_VERSION);
		cap_pack_kv_str(pk, "device", m->dev.ops->name);
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
		if (cap_writer_end(out.w) < 0) {
			out_close(&out, 0);
			cap_reader_close(r);
			return -1;
		}
	}

	int D = m->cfg.feat_dim;
	float *feats = cap_big_xalloc((size_t)batch * D * sizeof *feats);
	char **names = cap_xcalloc(batch, sizeof *names);
	cap_search_result *res = cap_xcalloc(batch, sizeof *res);
	cap_buf cap = { 0 };
	uint64_t done = 0;
	int rc = 0, nb = 0, eof = 0, tty = io->progress;
	double t0 = cap_now();
	while (!eof && rc == 0) {
		/* Fill a batch. */
		nb = 0;
		while (nb < batch) {
			const msgpack_object *rec;
			int k = cap_reader_next(r, &rec);
			if (k < 0) { rc = -1; break; }
			if (k == 0) { eof = 1; break; }
			const char *img;
			size_t len;
			if (cap_rec_str(r, rec, "image", &img, &len) < 0 ||
			    cap_rec_f32(r, rec, "feature", feats + (size_t)nb * D, (size_t)D) < 0) {
				char msg[1024];
				snprintf(msg, sizeof msg, "%s", cap_errmsg());
				cap_fail("%s (the model %s takes features of dimension %d)", msg, model_path, D);
				rc = -1;
				break;
			}
			free(names[nb]);
			names[nb] = cap_xmalloc(len + 1);
			memcpy(names[nb], img, len);
			names[nb][len] = 0;
			nb++;
		}
		if (rc || nb == 0) break;
		if (cap_generator_run(gen, feats, nb, done, res) < 0) { rc = -1; break; }
		for (int b = 0; b < nb && rc == 0; b++) {
			const cap_hyp *best = &res[b].hyps[0];
			cap_buf_reset(&cap);
			if (cap_tokenizer_decode(tok, best->ids, best->n, &cap) < 0) {
				rc = -1;
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
			if (cap_writer_end(out.w) < 0) { rc = -1; }
		}
		for (int b = 0; b < nb; b++) cap_search_result_free(&res[b]);
		done += (uint64_t)nb;
		if (tty) {
			double s = cap_now() - t0;
			fprintf(stderr, "\rcap-generate: %llu images, %.1f captions/s", (unsigned long long)done,
			        s > 0 ? (double)done / s : 0.0);
		}
	}
	if (tty && done) fputc('\n', stderr);
	if (io->stats && rc == 0) {   /* the loop alone: the model was loaded and bound before t0 */
		double s = cap_now() - t0;
		fprintf(stderr, "cap-generate: %llu captions in %.3f s, %.1f captions/s (from the first feature on)\n",
		        (unsigned long long)done, s, s > 0 ? (double)done / s : 0.0);
	}
	if (out_close(&out, rc == 0) < 0) rc = -1;
	for (int b = 0; b < batch; b++) free(names[b]);
	free(names); free(res); free(feats);
	cap_buf_free(&cap);
	cap_reader_close(r);
	return rc;
}

/* cap_encode_run (see encode.h). Decoder threads (lib/image/pipeline.c) prepare images while
 * the network (the backend's encoder op) runs batches; records are written in input order. */
#include "encoder/encode.h"
#include "core/cli.h"
#include "core/error.h"
#include "encoder/resnet.h"
#include "image/pipeline.h"
#include "io/stream.h"
#include "io/tensors.h"
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct run {
	cap_resnet *net;
	const cap_ops *ops;
	cap_encoder *eng;
	cap_writer *w;
	int batch, basename, progress;
	float *in, *out;
	char **paths;
	int n;                   /* images in the current batch */
	long done, failed, total;
	double t0, last_progress;
} run;

static void show_progress(run *r, int final)
{
	double t = cap_now();
	if (!r->progress || (!final && t - r->last_progress < 0.5))
		return;
	r->last_progress = t;
	double rate = r->done / (t - r->t0 > 1e-9 ? t - r->t0 : 1e-9);
	fprintf(stderr, "\rcap-encode: %ld images", r->done);
	if (r->total >= 0)
		fprintf(stderr, " of %ld", r->total);
	fprintf(stderr, ", %.1f img/s", rate);
	if (r->total >= 0 && rate > 0 && !final) {
		long eta = (long)((r->total - r->done - r->failed) / rate);
		fprintf(stderr, ", ETA %ld:%02ld", eta / 60, eta % 60);
	}
	fprintf(stderr, "\033[K%s", final ? "\n" : "");
}

/* Encodes and writes the images of the current batch. 0, or -1 with cap_errmsg(). */
static int flush(run *r)
{
	if (r->n == 0)
		return 0;
	if (r->ops->encoder_run(r->eng, r->in, r->n, r->out) < 0)
		return -1;
	int dim = r->net->dim;
	for (int i = 0; i < r->n; i++) {
		msgpack_packer *pk = cap_writer_packer(r->w);
		const char *name = r->paths[i];
		if (r->basename) {
			const char *slash = strrchr(name, '/');
			if (slash && slash[1])
				name = slash + 1;
		}
		msgpack_pack_map(pk, 3);
		cap_pack_kv_str(pk, "image", name);
		cap_pack_str(pk, "feature");
		cap_pack_f32_bin(pk, r->out + (size_t)i * dim, (size_t)dim);
		cap_pack_str(pk, "shape");
		msgpack_pack_array(pk, 1);
		msgpack_pack_uint32(pk, (uint32_t)dim);
		if (cap_writer_end(r->w) < 0)
			return -1;
		free(r->paths[i]);
		r->paths[i] = NULL;
	}
	r->done += r->n;
	r->n = 0;
	show_progress(r, 0);
	return 0;
}

static void pack_floats(msgpack_packer *pk, const char *key, const double *v)
{
	cap_pack_str(pk, key);
	msgpack_pack_array(pk, 3);
	for (int i = 0; i < 3; i++)
		msgpack_pack_double(pk, v[i]);
}

static int write_header(cap_writer *w, const cap_resnet *net, const char *weights_id,
                         const char *weights_file, const cap_preprocess_opts *po, const char *shard,
                         const char *precision, const char *device)
{
	msgpack_packer *pk = cap_writer_packer(w);
	cap_pack_header(pk, "features", shard ? 7 : 6);
	cap_pack_kv_uint(pk, "dim", (uint64_t)net->dim);
	cap_pack_kv_str(pk, "dtype", "float32");
	char arch[32];
	snprintf(arch, sizeof arch, "resnet%d", net->depth);
	cap_pack_str(pk, "encoder");
	msgpack_pack_map(pk, weights_file ? 5 : 4);
	cap_pack_kv_str(pk, "arch", arch);
	cap_pack_kv_uint(pk, "depth", (uint64_t)net->depth);
	cap_pack_kv_str(pk, "weights", weights_id);
	if (weights_file)
		cap_pack_kv_str(pk, "weights_file", weights_file);
	cap_pack_kv_str(pk, "precision", precision);
	cap_pack_str(pk, "preprocess");
	int squash = po->mode == CAP_PREPROCESS_SQUASH;
	msgpack_pack_map(pk, squash ? 4 : 5);
	cap_pack_kv_str(pk, "mode", squash ? "squash" : "resize-crop");
	if (!squash)
		cap_pack_kv_uint(pk, "resize", (uint64_t)po->resize);
	cap_pack_kv_uint(pk, squash ? "size" : "crop", (uint64_t)po->crop);
	pack_floats(pk, "mean", cap_imagenet_mean);
	pack_floats(pk, "std", cap_imagenet_std);
	cap_pack_kv_str(pk, "tool", "cap-encode " CAP_VERSION);
	cap_pack_kv_str(pk, "device", device);
	if (shard)
		cap_pack_kv_str(pk, "shard", shard);
	return cap_writer_end(w);
}

typedef struct digest_job {
	pthread_t thread;
	const cap_tensors *ts;
	int rc;
	char hex[65];
	char msg[512];
} digest_job;

static void *digest_run(void *arg)
{
	digest_job *j = arg;
	j->rc = cap_tensors_digest(j->ts, j->hex);
	if (j->rc < 0)   /* messages are per thread: carry it over */
		snprintf(j->msg, sizeof j->msg, "%s", cap_errmsg());
	return NULL;
}

int cap_encode_parse_random(const char *s, uint64_t *seed)
{
	if (strcmp(s, "random") == 0) {
		*seed = 0;
		return 1;
	}
	if (strncmp(s, "random:", 7) != 0)
		return 0;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s + 7, &end, 10);
	if (end == s + 7 || *end || errno || s[7] == '-')
		return cap_fail("--weights %s: the seed must be a non-negative integer", s);
	*seed = v;
	return 1;
}


/* The network of o->weights prepared on the backend; *net keeps what the header needs (depth,
 * dim). weights_id: "sha256:HEX" of the file or "random:SEED"; *file: the file's base name or
 * NULL. */
static cap_encoder *open_network(const cap_encode_opts *o, cap_resnet **net, char weights_id[96],
                                 const char **file)
{
	uint64_t seed;
	/* the encoder may free the net's weights as it copies them: half the peak memory */
	int flags = CAP_ENCODER_TAKE_WEIGHTS | (o->precision == CAP_PRECISION_BF16 ? CAP_ENCODER_BF16 : 0);
	int rnd = cap_encode_parse_random(o->weights, &seed);
	cap_encoder *eng = NULL;
	*file = NULL;
	if (rnd < 0)
		return NULL;
	if (rnd) {
		if (!(*net = cap_resnet_random(152, seed)))
			return NULL;
		snprintf(weights_id, 96, "random:%" PRIu64, seed);
		fprintf(stderr, "cap-encode: random weights (ResNet-152, torchvision init, seed %" PRIu64 "):"
		        " features are not meaningful\n", seed);
		if (!(eng = o->ops->encoder_new(*net, o->batch, o->pre.crop, o->pre.crop, flags)))
			return NULL;
		return eng;
	}
	cap_tensors *ts = cap_tensors_load(o->weights);
	if (!ts && access(o->weights, F_OK) != 0) {
		cap_fail("%s: no such file (torchvision's ResNet-152 weights: scripts/get-weights.sh "
		         "downloads them; see cap-encode(1), WEIGHTS)", o->weights);
		return NULL;
	}
	if (!ts)
		return NULL;
	/* The digest (a pass over all the weights) runs beside building the network. */
	digest_job dj = {.ts = ts};
	int threaded = pthread_create(&dj.thread, NULL, digest_run, &dj) == 0;
	if (!threaded)
		digest_run(&dj);
	*net = cap_resnet_from_tensors(ts);
	if (!*net)
		cap_fail_prefix("%s", o->weights);
	else
		eng = o->ops->encoder_new(*net, o->batch, o->pre.crop, o->pre.crop, flags);
	char msg[512];
	if (!eng)   /* keep this thread's message across the join */
		snprintf(msg, sizeof msg, "%s", cap_errmsg());
	if (threaded)
		pthread_join(dj.thread, NULL);
	cap_tensors_free(ts);
	if (!eng) {
		cap_fail("%s", msg);
		return NULL;
	}
	if (dj.rc < 0) {
		o->ops->encoder_free(eng);
		cap_fail("%s: %s", o->weights, dj.msg);
		return NULL;
	}
	snprintf(weights_id, 96, "sha256:%s", dj.hex);
	const char *slash = strrchr(o->weights, '/');
	*file = slash ? slash + 1 : o->weights;
	return eng;
}

int cap_encode_run(const cap_encode_opts *o)
{
	cap_resnet *net = NULL;
	char weights_id[96];
	const char *weights_file;
	cap_encoder *eng = open_network(o, &net, weights_id, &weights_file);
	if (!eng) {
		cap_resnet_free(net);
		return -1;
	}
	int rc = -1;
	cap_paths *paths = o->images ? cap_paths_args(o->images, o->nimages, o->shard_k, o->shard_n)
	                             : cap_paths_lines(stdin, o->shard_k, o->shard_n);
	long total = cap_paths_total(paths);
	/* two batches in flight: one being filled while the network runs the other */
	cap_pipeline *pipe = cap_pipeline_start(paths, &o->pre, o->decoders, 2 * o->batch + o->decoders);
	cap_writer *w = pipe ? cap_writer_open(o->out) : NULL;
	run r = {.net = net, .ops = o->ops, .eng = eng, .w = w, .batch = o->batch, .basename = o->basename,
	         .progress = o->progress, .total = total, .t0 = cap_now()};
	size_t npix = (size_t)3 * o->pre.crop * o->pre.crop;
	r.in = cap_xmalloc((size_t)o->batch * npix * sizeof *r.in);
	r.out = cap_xmalloc((size_t)o->batch * net->dim * sizeof *r.out);
	r.paths = cap_xcalloc((size_t)o->batch, sizeof *r.paths);
	const char *prec = o->precision == CAP_PRECISION_BF16 ? "bf16"
	                 : o->precision == CAP_PRECISION_TF32 ? "tf32" : "fp32";
	if (!w || write_header(w, net, weights_id, weights_file, &o->pre, o->shard, prec, o->ops->name) < 0)
		goto out;
	const cap_pipeline_item *it;
	while ((it = cap_pipeline_next(pipe))) {
		if (!it->ok) {
			if (r.progress)
				fprintf(stderr, "\r\033[K");
			fprintf(stderr, "cap-encode: %s (skipped)\n", it->err);
			r.failed++;
			continue;
		}
		memcpy(r.in + (size_t)r.n * npix, it->pixels, npix * sizeof *r.in);
		r.paths[r.n++] = cap_xstrdup(it->path);
		if (r.n == o->batch && flush(&r) < 0)
			goto out;
	}
	if (flush(&r) < 0)
		goto out;
	show_progress(&r, 1);
	if (o->stats) {   /* the loop alone: the network was built and its weights loaded before t0 */
		double t = cap_now() - r.t0;
		fprintf(stderr, "cap-encode: %ld images in %.3f s, %.1f img/s (from the first image on, %s)\n",
		        r.done, t, t > 0 ? r.done / t : 0.0, o->ops->encoder_impl(eng));
	}
	const char *msg;
	int read_error = cap_pipeline_read_error(pipe, &msg);
	if (read_error)
		fprintf(stderr, "cap-encode: %s\n", msg);
	cap_writer *wc = w;
	w = NULL;
	if (cap_writer_close(wc) < 0)
		goto out;
	if (r.failed)
		fprintf(stderr, "cap-encode: %ld of %ld images failed\n", r.failed, r.failed + r.done);
	rc = r.failed || read_error ? 1 : 0;
out:
	if (w)   /* an error after the output was opened: it must not look complete */
		cap_writer_abort(w);
	if (pipe)   /* it owns paths (and freed them itself when it failed to start) */
		cap_pipeline_free(pipe);
	o->ops->encoder_free(eng);
	cap_resnet_free(net);
	for (int i = 0; i < o->batch; i++)
		free(r.paths[i]);
	free(r.in);
	free(r.out);
	free(r.paths);
	return rc;
}

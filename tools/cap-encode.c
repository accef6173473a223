/* cap-encode: images to ResNet features (a `features` stream), see man/cap-encode.1.
 * Decoder threads (lib/image/pipeline.c) prepare images while the network (lib/encoder, lib/ops)
 * runs batches; records are written in input order. */
#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/cli.h"
#include "image/pipeline.h"
#include "core/error.h"
#include "ops/gemm.h"
#include "image/resize.h"
#include "encoder/resnet.h"
#include "io/stream.h"
#include "io/tensors.h"

/* as written in torchvision's docs; recorded in the header (lib/image/resize.c applies them) */
static const double MEAN[3] = {0.485, 0.456, 0.406}, STD[3] = {0.229, 0.224, 0.225};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: cap-encode --weights FILE|random[:SEED] [--batch N] [--threads N]\n"
	        "                  [--resize 256 --crop 224 | --squash 224] [--shard K/N] [--basename]\n"
	        "                  [--bf16] [--decoders N] [-o OUT] [IMAGE...]\n"
	        "Encodes JPEG/PNG images into ResNet features (a cap 'features' stream).\n"
	        "  --weights FILE     torchvision ResNet weights (.safetensors or .pth); the depth is\n"
	        "                     read from the file. random[:SEED]: a randomly initialised\n"
	        "                     ResNet-152 (for tests and demos)\n"
	        "  --batch N          images per forward pass (default 2)\n"
	        "  --threads N        threads for the network (default: all cores)\n"
	        "  --resize N         shorter side to N before the centre crop (default 256)\n"
	        "  --crop N           centre crop of N x N (default 224)\n"
	        "  --squash N         resize both sides to N, no crop\n"
	        "  --shard K/N        encode only inputs i (0-based) with i %% N == K-1\n"
	        "  --basename         record only the file name of each image\n"
	        "  --bf16             compute in bfloat16 (faster, ~1e-2 relative error)\n"
	        "  --decoders N       image decoder threads (default 1)\n"
	        "  -o, --output OUT   write the stream to OUT (default: standard output)\n"
	        "No IMAGE arguments: one path a line on standard input.\n");
}

typedef struct run {
	cap_resnet *net;
	cap_resnet_engine *eng;
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

static void flush(run *r)
{
	if (r->n == 0)
		return;
	if (cap_resnet_engine_run(r->eng, r->in, r->n, r->out) < 0)
		errx(1, "%s", cap_errmsg());
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
			errx(1, "%s", cap_errmsg());
		free(r->paths[i]);
	}
	r->done += r->n;
	r->n = 0;
	show_progress(r, 0);
}

static void pack_floats(msgpack_packer *pk, const char *key, const double *v)
{
	cap_pack_str(pk, key);
	msgpack_pack_array(pk, 3);
	for (int i = 0; i < 3; i++)
		msgpack_pack_double(pk, v[i]);
}

static void write_header(cap_writer *w, const cap_resnet *net, const char *weights_id,
                         const char *weights_file, const cap_preprocess_opts *po, const char *shard,
                         int bf16)
{
	msgpack_packer *pk = cap_writer_packer(w);
	cap_pack_header(pk, "features", shard ? 6 : 5);
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
	cap_pack_kv_str(pk, "precision", bf16 ? "bf16" : "fp32");
	cap_pack_str(pk, "preprocess");
	int squash = po->mode == CAP_PREPROCESS_SQUASH;
	msgpack_pack_map(pk, squash ? 4 : 5);
	cap_pack_kv_str(pk, "mode", squash ? "squash" : "resize-crop");
	if (!squash)
		cap_pack_kv_uint(pk, "resize", (uint64_t)po->resize);
	cap_pack_kv_uint(pk, squash ? "size" : "crop", (uint64_t)po->crop);
	pack_floats(pk, "mean", MEAN);
	pack_floats(pk, "std", STD);
	cap_pack_kv_str(pk, "tool", "cap-encode " CAP_VERSION);
	if (shard)
		cap_pack_kv_str(pk, "shard", shard);
	if (cap_writer_end(w) < 0)
		errx(1, "%s", cap_errmsg());
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

/* "random" or "random:SEED": 1 and *seed; 0 for anything else. */
static int parse_random(const char *s, uint64_t *seed)
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
	if (end == s + 7 || *end || errno || s[7] == '-') {
		warnx("--weights %s: the seed must be a non-negative integer", s);
		exit(2);
	}
	*seed = v;
	return 1;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"weights", required_argument, NULL, 'w'},
		{"batch", required_argument, NULL, 'b'},
		{"threads", required_argument, NULL, 't'},
		{"resize", required_argument, NULL, 'r'},
		{"crop", required_argument, NULL, 'c'},
		{"squash", required_argument, NULL, 's'},
		{"shard", required_argument, NULL, 'S'},
		{"basename", no_argument, NULL, 'B'},
		{"bf16", no_argument, NULL, 'F'},
		{"decoders", required_argument, NULL, 'd'},
		{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *weights = NULL, *out_path = "-", *shard = NULL;
	int batch = 2, threads = 0, basename_opt = 0, bf16 = 0, decoders = 1;
	int resize = -1, crop = -1, squash = -1, shard_k = 1, shard_n = 1, c;
	while ((c = getopt_long(argc, argv, "o:", longopts, NULL)) != -1) {
		switch (c) {
		case 'w': weights = optarg; break;
		case 'b': batch = (int)cap_opt_int("batch", optarg, 1, 256); break;
		case 't': threads = (int)cap_opt_int("threads", optarg, 1, 1024); break;
		case 'r': resize = (int)cap_opt_int("resize", optarg, 1, CAP_IMAGE_MAX_SIDE); break;
		case 'c': crop = (int)cap_opt_int("crop", optarg, 32, 4096); break;
		case 's': squash = (int)cap_opt_int("squash", optarg, 32, 4096); break;
		case 'S':
			shard = optarg;
			if (cap_shard_parse(optarg, &shard_k, &shard_n) < 0) {
				warnx("--shard: %s", cap_errmsg());
				return 2;
			}
			break;
		case 'B': basename_opt = 1; break;
		case 'F': bf16 = 1; break;
		case 'd': decoders = (int)cap_opt_int("decoders", optarg, 1, 64); break;
		case 'o': out_path = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("cap-encode cap %s\n", CAP_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!weights) {
		warnx("--weights is required (a weights file, or 'random')");
		usage(stderr);
		return 2;
	}
	cap_preprocess_opts po;
	cap_preprocess_opts_default(&po);
	if (squash > 0) {
		if (resize > 0 || crop > 0) {
			warnx("--squash cannot be combined with --resize/--crop");
			return 2;
		}
		po.mode = CAP_PREPROCESS_SQUASH;
		po.crop = po.resize = squash;
	} else {
		if (resize > 0)
			po.resize = resize;
		if (crop > 0)
			po.crop = crop;
	}
	if (cap_preprocess_opts_check(&po) < 0) {
		warnx("%s", cap_errmsg());
		return 2;
	}
	if (threads > 0 && cap_gemm_set_threads(threads) < 0)
		errx(1, "%s", cap_errmsg());

	/* The network. */
	uint64_t seed;
	cap_resnet *net;
	cap_resnet_engine *eng = NULL;
	/* the engine frees the net's weights as it copies them: half the peak memory */
	int flags = CAP_RESNET_TAKE_WEIGHTS | (bf16 ? CAP_RESNET_BF16 : 0);
	char weights_id[96];
	const char *weights_file = NULL;
	if (parse_random(weights, &seed)) {
		net = cap_resnet_random(152, seed);
		snprintf(weights_id, sizeof weights_id, "random:%" PRIu64, seed);
		warnx("random weights (ResNet-152, torchvision init, seed %" PRIu64 "): features are not meaningful",
		      seed);
	} else {
		cap_tensors *ts = cap_tensors_load(weights);
		if (!ts && access(weights, F_OK) != 0)
			errx(1, "%s: no such file (torchvision's ResNet-152 weights: scripts/get-weights.sh "
			     "downloads them; see cap-encode(1), WEIGHTS)", weights);
		if (!ts)
			errx(1, "%s", cap_errmsg());
		/* The digest (a pass over all the weights) runs beside building the network. */
		digest_job dj = {.ts = ts};
		int threaded = pthread_create(&dj.thread, NULL, digest_run, &dj) == 0;
		if (!threaded)
			digest_run(&dj);
		net = cap_resnet_from_tensors(ts);
		if (!net)
			errx(1, "%s: %s", weights, cap_errmsg());
		eng = cap_resnet_engine_new(net, batch, po.crop, po.crop, flags);
		if (!eng)
			errx(1, "%s", cap_errmsg());
		if (threaded)
			pthread_join(dj.thread, NULL);
		if (dj.rc < 0)
			errx(1, "%s: %s", weights, dj.msg);
		snprintf(weights_id, sizeof weights_id, "sha256:%s", dj.hex);
		cap_tensors_free(ts);
		const char *slash = strrchr(weights, '/');
		weights_file = slash ? slash + 1 : weights;
	}
	if (!net)
		errx(1, "%s", cap_errmsg());
	if (!eng && !(eng = cap_resnet_engine_new(net, batch, po.crop, po.crop, flags)))
		errx(1, "%s", cap_errmsg());

	cap_paths *paths = optind < argc ? cap_paths_args(argv + optind, argc - optind, shard_k, shard_n)
	                                 : cap_paths_lines(stdin, shard_k, shard_n);
	long total = cap_paths_total(paths);
	/* two batches in flight: one being filled while the network runs the other */
	cap_pipeline *pipe = cap_pipeline_start(paths, &po, decoders, 2 * batch + decoders);
	if (!pipe)
		errx(1, "%s", cap_errmsg());
	cap_writer *w = cap_writer_open(out_path);
	if (!w)
		errx(1, "%s", cap_errmsg());
	write_header(w, net, weights_id, weights_file, &po, shard, bf16);

	run r = {.net = net, .eng = eng, .w = w, .batch = batch, .basename = basename_opt,
	         .progress = isatty(2), .total = total, .t0 = cap_now()};
	size_t npix = (size_t)3 * po.crop * po.crop;
	r.in = cap_xmalloc((size_t)batch * npix * sizeof *r.in);
	r.out = cap_xmalloc((size_t)batch * net->dim * sizeof *r.out);
	r.paths = cap_xcalloc((size_t)batch, sizeof *r.paths);
	const cap_pipeline_item *it;
	while ((it = cap_pipeline_next(pipe))) {
		if (!it->ok) {
			if (r.progress)
				fprintf(stderr, "\r\033[K");
			warnx("%s (skipped)", it->err);
			r.failed++;
			continue;
		}
		memcpy(r.in + (size_t)r.n * npix, it->pixels, npix * sizeof *r.in);
		r.paths[r.n++] = cap_xstrdup(it->path);
		if (r.n == batch)
			flush(&r);
	}
	flush(&r);
	show_progress(&r, 1);
	const char *msg;
	int read_error = cap_pipeline_read_error(pipe, &msg);
	if (read_error)
		warnx("%s", msg);
	cap_pipeline_free(pipe);
	if (cap_writer_close(w) < 0)
		errx(1, "%s", cap_errmsg());
	cap_resnet_engine_free(eng);
	cap_resnet_free(net);
	free(r.in);
	free(r.out);
	free(r.paths);
	if (r.failed)
		warnx("%ld of %ld images failed", r.failed, r.failed + r.done);
	return r.failed || read_error ? 1 : 0;
}

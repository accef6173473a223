/* cap-encode: images to ResNet features (a `features` stream), see man/cap-encode.1. The work
 * is lib/encoder/encode.c; this is its command line. */
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
#include "core/error.h"
#include "core/outfile.h"
#include "encoder/encode.h"
#include "image/pipeline.h"
#include "ops/ops.h"


static void usage(FILE *f)
{
	fprintf(f,
	        "usage: cap-encode --weights FILE|random[:SEED] [--batch N] [--threads N]\n"
	        "                  [--resize 256 --crop 224 | --squash 224] [--shard K/N] [--basename]\n"
	        "                  [--bf16] [--decoders N] [--device ref|cpu|cuda] [--stats] [-o OUT]\n"
	        "                  [IMAGE...]\n"
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
	        "  --precision P      fp32 (default), bf16 (faster, ~1e-2 relative error), tf32 (cuda)\n"
	        "  --bf16             the same as --precision bf16\n"
	        "  --decoders N       image decoder threads (default 1)\n"
	        "  --stats            print images, seconds and img/s of the loop at the end\n"
	        "  --device D         ref, cpu (default) or cuda; --reference is --device ref\n"
	        "  -o, --output OUT   write the stream to OUT (default: standard output)\n"
	        "No IMAGE arguments: one path a line on standard input.\n");
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
		{"device", required_argument, NULL, 'D'},
		{"reference", no_argument, NULL, 'R'},
		{"precision", required_argument, NULL, 'P'},
		{"stats", no_argument, NULL, 'T'},
		{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *weights = NULL, *out_path = "-", *shard = NULL, *device = cap_default_device();
	const char *precision = NULL;
	int batch = 2, threads = 0, basename_opt = 0, bf16 = 0, decoders = 1, stats = 0;
	int resize = -1, crop = -1, squash = -1, shard_k = 1, shard_n = 1, c;
	while ((c = cap_getopt(argc, argv, "o:", longopts)) != -1) {
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
		case 'D': device = optarg; break;
		case 'R': device = "ref"; break;
		case 'P': precision = optarg; break;
		case 'T': stats = 1; break;
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
	cap_outfile_refuse_tty(out_path, "use -o FILE, or pipe it into cap-dump");
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
	cap_precision prec = bf16 ? CAP_PRECISION_BF16 : CAP_PRECISION_FP32;
	if (precision && cap_precision_parse(precision, &prec) < 0) {
		warnx("--precision: %s", cap_errmsg());
		return 2;
	}
	if (bf16 && prec != CAP_PRECISION_BF16) {
		warnx("--bf16 contradicts --precision %s", precision);
		return 2;
	}
	uint64_t seed;
	if (cap_encode_parse_random(weights, &seed) < 0) {
		warnx("%s", cap_errmsg());
		return 2;
	}
	cap_encode_opts eo = { .weights = weights, .out = out_path, .precision = prec, .pre = po,
	                       .batch = batch, .decoders = decoders, .basename = basename_opt,
	                       .progress = isatty(2), .stats = stats, .shard = shard, .shard_k = shard_k,
	                       .shard_n = shard_n, .images = optind < argc ? argv + optind : NULL,
	                       .nimages = argc - optind };
	eo.ops = cap_ops_open_or_exit(device);
	if ((threads > 0 && eo.ops->set_threads(threads) < 0) ||
	    (prec == CAP_PRECISION_TF32 && eo.ops->set_precision(prec) < 0))
		errx(1, "%s", cap_errmsg());
	int rc = cap_encode_run(&eo);
	if (rc < 0)
		errx(1, "%s", cap_errmsg());
	return rc;
}

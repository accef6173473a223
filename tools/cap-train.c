/* cap-train: trains the LSTM caption decoder on a features stream and a captions stream with
 * teacher forcing and Adam, writing a safetensors model file (see man/cap-train.1). */
#include <err.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/cli.h"
#include "core/error.h"
#include "decoder/decoder.h"
#include "ops/ops.h"
#include "train/dist.h"
#include "train/trainer.h"

static void usage(FILE *f)
{
	fprintf(f,
	"usage: cap-train --features F --captions C -o MODEL [--tokenizer T] [--epochs 30]\n"
	"                 [--batch 64] [--lr 1e-3] [--embed 256] [--hidden 512] [--layers 1]\n"
	"                 [--dropout 0] [--clip-norm X] [--seed S] [--no-shuffle] [--init MODEL]\n"
	"                 [--resume CKPT] [--val-captions C2 [--early-stop N]] [--log METRICS]\n"
	"                 [--threads N] [--save-every STEPS] [--max-steps N]\n"
	"                 [--device ref|cpu|cuda] [--precision fp32|tf32|bf16] [--reference]\n"
	"                 [--allow-encoder-mismatch]\n"
	"Trains the caption decoder (Linear proj, Embedding, LSTM, Linear) with teacher forcing.\n"
	"The checkpoint (Adam state, position, RNG) is written to MODEL.ckpt.\n");
}

int main(int argc, char **argv)
{
	enum { O_TOK = 256, O_NOSHUF, O_INIT, O_RESUME, O_VAL, O_EARLY, O_LOG, O_THREADS, O_SAVE,
	       O_MAXSTEPS, O_REF, O_CLIP, O_DEVICE, O_PREC, O_ALLOW_ENC };
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
		{ "device", required_argument, NULL, O_DEVICE },
		{ "allow-encoder-mismatch", no_argument, NULL, O_ALLOW_ENC },
		{ "precision", required_argument, NULL, O_PREC },
		{ "reference", no_argument, NULL, O_REF },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	cap_trainer_opts o;
	cap_trainer_opts_default(&o);
	const char *device = cap_default_device(), *precision = "fp32";
	int threads = 0, c;
	while ((c = cap_getopt(argc, argv, "o:h", longopts)) != -1) {
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
		case O_THREADS: threads = (int)cap_opt_int("threads", optarg, 1, 1024); break;
		case O_SAVE: o.save_every = cap_opt_int("save-every", optarg, 1, INT64_MAX); break;
		case O_MAXSTEPS: o.max_steps = cap_opt_int("max-steps", optarg, 1, INT64_MAX); break;
		case O_DEVICE: device = optarg; break;
		case O_ALLOW_ENC: o.allow_encoder_mismatch = 1; break;
		case O_PREC: precision = optarg; break;
		case O_REF: device = "ref"; break;
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
	cap_precision prec;
	if (cap_precision_parse(precision, &prec) < 0) {
		warnx("--precision: %s", cap_errmsg());
		return 2;
	}
	/* One process, or one rank of several under mpirun or srun (lib/train/dist.h). */
	o.dist = cap_dist_open_or_exit();
	if (!strcmp(device, "cuda"))
		cap_dist_pick_gpu(o.dist);
	o.ops = cap_ops_open_or_exit(device);
	if (o.ops->set_threads(threads) < 0 || o.ops->set_precision(prec) < 0 ||
	    cap_dist_use_device(&o.dist, o.ops) < 0)
		cap_dist_die(o.dist, cap_errmsg());
	o.precision = precision;
	o.progress = isatty(2);
	if (cap_trainer_run(&o) < 0)
		cap_dist_die(o.dist, cap_errmsg());
	o.dist->finish(o.dist);
	return 0;
}

/* cap-generate: captions for image features with a trained decoder: greedy, beam search or
 * sampling (lib/search/search.h over lib/decoder/decoder.h), written as a 'generated' stream or as text. */
#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cli.h"
#include "core/error.h"
#include "core/outfile.h"
#include "ops/ops.h"
#include "search/generate.h"


static void usage(FILE *f)
{
	fprintf(f,
	  "usage: cap-generate --model MODEL [--beam K] [--max-len N] [--length-penalty A]\n"
	  "                    [--nbest N] [--sample [--temperature T] [--top-k K] [--seed S]]\n"
	  "                    [--text] [--device ref|cpu|cuda] [--precision P] [--threads N]\n"
	  "                    [--batch N] [--allow-encoder-mismatch] [--stats]\n"
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
	  "  --device D            ref, cpu (default) or cuda\n"
	  "  --precision P         fp32 (default), bf16 (cpu with AVX512-BF16), tf32 (cuda)\n"
	  "  --reference           the same as --device ref\n"
	  "  --threads N           threads for the matrix products (default: all cores)\n"
	  "  --batch N             images decoded together (default 64)\n"
	  "  --allow-encoder-mismatch  caption features of another encoder than the model's\n"
	  "  --stats               print captions, seconds and captions/s of the loop at the end\n"
	  "  -o OUT                output file, written atomically (default: stdout)\n");
}

int main(int argc, char **argv)
{
	enum { O_MODEL = 256, O_BEAM, O_MAXLEN, O_LP, O_NBEST, O_SAMPLE, O_TEMP, O_TOPK, O_SEED,
	       O_TEXT, O_THREADS, O_BATCH, O_HELP, O_VERSION, O_DEVICE, O_REF, O_PREC, O_ALLOW_ENC, O_STATS };
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
		{ "device", required_argument, NULL, O_DEVICE },
		{ "reference", no_argument, NULL, O_REF },
		{ "precision", required_argument, NULL, O_PREC },
		{ "batch", required_argument, NULL, O_BATCH },
		{ "allow-encoder-mismatch", no_argument, NULL, O_ALLOW_ENC },
		{ "stats", no_argument, NULL, O_STATS },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, O_HELP },
		{ "version", no_argument, NULL, O_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	cap_search_opts so;
	cap_search_opts_default(&so);
	const char *model_path = NULL, *out_path = NULL, *device = cap_default_device(), *precision = "fp32";
	int text = 0, threads = 0, batch = 64, nbest_given = 0, sampling_opt = 0, allow_enc = 0, stats = 0;
	int c;
	while ((c = cap_getopt(argc, argv, "o:", longopts)) != -1) {
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
		case O_DEVICE: device = optarg; break;
		case O_ALLOW_ENC: allow_enc = 1; break;
		case O_STATS: stats = 1; break;
		case O_REF: device = "ref"; break;
		case O_PREC: precision = optarg; break;
		case 'o': out_path = optarg; break;
		case O_HELP: usage(stdout); return 0;
		case O_VERSION: printf("cap-generate cap %s\n", CAP_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!model_path) { warnx("--model is required"); usage(stderr); return 2; }
	if (!text) cap_outfile_refuse_tty(out_path, "use --text for lines, -o FILE, or pipe it into cap-dump");
	if (sampling_opt && !so.sample) { warnx("--temperature, --top-k and --seed need --sample"); return 2; }
	if (so.sample && so.beam != 1) { warnx("--sample and --beam exclude each other"); return 2; }
	if (cap_search_opts_check(&so) < 0) { warnx("%s", cap_errmsg()); return 2; }
	if (text && nbest_given && so.nbest > 1) warnx("--text prints the best caption only; --nbest is ignored");
	/* Rows of state and of log-probabilities: (batch * width, V) floats must stay sane. */
	if ((long)batch * (so.sample ? so.nbest : so.beam) > (1L << 16)) {
		warnx("--batch times --beam (or --nbest with --sample) is above 65536");
		return 2;
	}
	cap_precision prec;
	if (cap_precision_parse(precision, &prec) < 0) { warnx("--precision: %s", cap_errmsg()); return 2; }
	const cap_ops *ops = cap_ops_open_or_exit(device);
	if ((threads && ops->set_threads(threads) < 0) || ops->set_precision(prec) < 0) errx(1, "%s", cap_errmsg());

	/* The model, checked, on the device. */
	cap_generator *gen = cap_generator_open(model_path, ops, &so, batch);
	if (!gen) errx(1, "%s", cap_errmsg());

	cap_generate_io io = { .inputs = (const char *const *)argv + optind, .ninputs = argc - optind,
	                       .out_path = out_path, .text = text, .nbest = nbest_given,
	                       .progress = isatty(2), .stats = stats, .model_path = model_path,
	                       .allow_encoder_mismatch = allow_enc };
	int rc = cap_generate_run(gen, &io);
	if (rc < 0)
		warnx("%s", cap_errmsg());
	cap_generator_free(gen);
	return rc < 0 ? 1 : 0;
}

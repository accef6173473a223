/* cap-encbench: the image encoder's network alone, for tests/cuda/run.sh.
 *   cap-encbench DEVICE PRECISION BATCH ITERS [DEPTH]
 * builds a random ResNet (default 152, cap_resnet_random) for 224x224 images on DEVICE (ref, cpu,
 * cuda) at PRECISION (fp32, tf32, bf16; bf16 is the encoder's CAP_ENCODER_BF16), runs two
 * warm-up batches of BATCH random images, then ITERS timed batches (each one encoder_run: input
 * from host memory, features back to host memory), and prints one line
 * "DEVICE PRECISION batch BATCH: N img/s (S s per batch)" on stdout.
 * Errors on stderr, exit 1 (2 for bad arguments). */
#include "core/cli.h"
#include "core/error.h"
#include "core/rng.h"
#include "encoder/resnet.h"
#include "ops/ops.h"

#include <err.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	if (argc < 5 || argc > 6) {
		fprintf(stderr, "usage: cap-encbench DEVICE PRECISION BATCH ITERS [DEPTH]\n");
		return 2;
	}
	cap_precision prec;
	if (cap_precision_parse(argv[2], &prec) < 0)
		errx(2, "%s", cap_errmsg());
	int batch = atoi(argv[3]), iters = atoi(argv[4]), depth = argc > 5 ? atoi(argv[5]) : 152;
	if (batch < 1 || batch > 4096 || iters < 1)
		errx(2, "BATCH must be 1..4096 and ITERS at least 1");
	const cap_ops *ops = cap_ops_open_or_exit(argv[1]);
	if (prec == CAP_PRECISION_TF32 && ops->set_precision(prec) < 0)
		errx(1, "%s", cap_errmsg());
	cap_resnet *net = cap_resnet_random(depth, 1);
	if (!net)
		errx(2, "no ResNet of depth %d", depth);
	int flags = CAP_ENCODER_TAKE_WEIGHTS | (prec == CAP_PRECISION_BF16 ? CAP_ENCODER_BF16 : 0);
	cap_encoder *e = ops->encoder_new(net, batch, 224, 224, flags);
	if (!e)
		errx(1, "%s", cap_errmsg());
	size_t npix = (size_t)batch * 3 * 224 * 224;
	float *in = malloc(sizeof(float) * npix), *out = malloc(sizeof(float) * (size_t)batch * net->dim);
	if (!in || !out)
		errx(1, "out of memory");
	cap_rng r;
	cap_rng_seed(&r, 7);
	for (size_t i = 0; i < npix; i++)
		in[i] = 4 * cap_rng_uniform(&r) - 2;
	for (int i = 0; i < 2; i++)
		if (ops->encoder_run(e, in, batch, out) < 0)
			errx(1, "%s", cap_errmsg());
	double t0 = cap_now();
	for (int i = 0; i < iters; i++)
		if (ops->encoder_run(e, in, batch, out) < 0)
			errx(1, "%s", cap_errmsg());
	double s = (cap_now() - t0) / iters;
	printf("%s %s batch %d: %.1f img/s (%.4f s per batch) [%s]\n", argv[1], argv[2], batch, batch / s, s,
	       ops->encoder_impl(e));
	ops->encoder_free(e);
	cap_resnet_free(net);
	free(in);
	free(out);
	return 0;
}

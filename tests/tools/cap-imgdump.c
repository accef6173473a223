/* cap-imgdump: exposes lib/image and lib/resize to the Python oracle tests.
 *
 *   cap-imgdump [--resize N --crop M | --squash N] [--stage STAGE] [--repeat K] FILE
 *
 * Writes one text line "W H C u8|f32\n" to stdout, then the raw pixels of STAGE:
 *   decoded  uint8 RGB, HWC, the image as decoded (default)
 *   resized  uint8 RGB, HWC, after Resize only (the whole resized image)
 *   cropped  uint8 RGB, HWC, after Resize + CenterCrop (or the squash)
 *   tensor   float32 (host order), CHW, after ToTensor + Normalize
 * --repeat K decodes and preprocesses K times and prints the mean time per image on stderr
 * (a timing aid, not a benchmark). Errors: "cap-imgdump: FILE: why" on stderr, exit 1. */
#include "image/image.h"
#include "image/resize.h"
#include "core/error.h"

#include <err.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *f, int status)
{
	fprintf(f, "usage: cap-imgdump [--resize N --crop M | --squash N] "
	           "[--stage decoded|resized|cropped|tensor] [--repeat K] FILE\n");
	exit(status);
}

static int posint(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*s == 0 || *end || v < 1 || v > 1000000) errx(2, "not a positive integer: %s", s);
	return (int)v;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "resize", required_argument, 0, 'r' }, { "crop", required_argument, 0, 'c' },
		{ "squash", required_argument, 0, 's' }, { "stage", required_argument, 0, 't' },
		{ "repeat", required_argument, 0, 'n' }, { "help", no_argument, 0, 'h' },
		{ "version", no_argument, 0, 'V' }, { 0, 0, 0, 0 },
	};
	cap_preprocess_opts po;
	cap_preprocess_opts_default(&po);
	const char *stage = "decoded";
	int repeat = 0, c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r': po.resize = posint(optarg); break;
		case 'c': po.crop = posint(optarg); break;
		case 's': po.mode = CAP_PREPROCESS_SQUASH; po.crop = posint(optarg); break;
		case 't': stage = optarg; break;
		case 'n': repeat = posint(optarg); break;
		case 'h': usage(stdout, 0); break;
		case 'V': printf("cap-imgdump cap %s\n", CAP_VERSION); return 0;
		default: usage(stderr, 2);
		}
	}
	if (optind != argc - 1) usage(stderr, 2);
	if (strcmp(stage, "decoded") && strcmp(stage, "resized") && strcmp(stage, "cropped") &&
	    strcmp(stage, "tensor"))
		errx(2, "unknown stage: %s", stage);
	if (cap_preprocess_opts_check(&po) < 0) errx(2, "%s", cap_errmsg());
	const char *path = argv[optind];

	if (repeat) {
		float *t = malloc(sizeof(float) * 3 * po.crop * po.crop);
		double t0 = now(), tdec = 0;
		for (int i = 0; i < repeat; i++) {
			cap_image img;
			double a = now();
			if (cap_image_load(path, &img) < 0) errx(1, "%s", cap_errmsg());
			tdec += now() - a;
			if (cap_preprocess(&img, &po, t) < 0) errx(1, "%s: %s", path, cap_errmsg());
			cap_image_free(&img);
		}
		double total = (now() - t0) / repeat;
		fprintf(stderr, "%s: %.3f ms per image (decode %.3f ms, preprocess %.3f ms)\n", path,
		        total * 1e3, tdec / repeat * 1e3, (total - tdec / repeat) * 1e3);
		free(t);
		return 0;
	}

	cap_image img, res;
	if (cap_image_load(path, &img) < 0) errx(1, "%s", cap_errmsg());
	if (!strcmp(stage, "decoded")) {
		printf("%d %d 3 u8\n", img.width, img.height);
		fwrite(img.rgb, 3, (size_t)img.width * img.height, stdout);
	} else if (!strcmp(stage, "resized")) {
		int rw, rh;
		if (cap_preprocess_resized_size(&po, img.width, img.height, &rw, &rh) < 0 ||
		    cap_image_resize(&img, rw, rh, &res) < 0)
			errx(1, "%s: %s", path, cap_errmsg());
		printf("%d %d 3 u8\n", res.width, res.height);
		fwrite(res.rgb, 3, (size_t)res.width * res.height, stdout);
		cap_image_free(&res);
	} else if (!strcmp(stage, "cropped")) {
		if (cap_preprocess_u8(&img, &po, &res) < 0) errx(1, "%s: %s", path, cap_errmsg());
		printf("%d %d 3 u8\n", res.width, res.height);
		fwrite(res.rgb, 3, (size_t)res.width * res.height, stdout);
		cap_image_free(&res);
	} else {
		size_t n = (size_t)3 * po.crop * po.crop;
		float *t = malloc(sizeof(float) * n);
		if (!t || cap_preprocess(&img, &po, t) < 0) errx(1, "%s: %s", path, cap_errmsg());
		printf("%d %d 3 f32\n", po.crop, po.crop);
		fwrite(t, sizeof(float), n, stdout);
		free(t);
	}
	cap_image_free(&img);
	if (fclose(stdout) != 0) err(1, "stdout");
	return 0;
}

/* cap-tensors: exposes lib/tensors to the Python tests.
 *   cap-tensors FILE              one line per tensor: name TAB dtype TAB shape (2x3, or "-" for a
 *                                 scalar) TAB nbytes TAB sha256 of its bytes
 *   cap-tensors --f32 NAME FILE   the tensor converted to float32, raw little-endian, on stdout
 *   cap-tensors --raw NAME FILE   the tensor's bytes as stored (contiguous), on stdout
 *   cap-tensors --meta FILE       the __metadata__ pairs, key TAB value (value JSON-escaped)
 *   cap-tensors --digest FILE     cap_tensors_digest
 *   cap-tensors --load FILE       loads, converts every floating tensor to float32, prints the
 *                                 count and the seconds taken (for timing)
 *   cap-tensors --write OUT       writes a test model: float32 tensors "a" (2x3, 0..5), "b"
 *                                 (scalar 7), "c" (shape 0), metadata k1=v1 and k2="quote\"\n"
 *   cap-tensors --expect NAME SHAPE FILE   cap_tensors_expect with SHAPE like 2x3 ("-" scalar)
 * Errors: "cap-tensors: FILE: ..." on stderr, exit 1. */
#include "buf.h"
#include "error.h"
#include "sha256.h"
#include "tensors.h"

#include <err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(void)
{
	fprintf(stderr, "usage: cap-tensors [--f32 NAME | --raw NAME | --meta | --digest | --load | --expect NAME SHAPE] FILE\n"
	                "       cap-tensors --write OUT\n");
	exit(2);
}

static cap_tensors *load(const char *path)
{
	cap_tensors *ts = cap_tensors_load(path);
	if (!ts) errx(1, "%s", cap_errmsg());
	return ts;
}

static const cap_tensor *find(const cap_tensors *ts, const char *name)
{
	const cap_tensor *t = cap_tensors_find(ts, name);
	if (!t) errx(1, "no tensor %s", name);
	return t;
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	if (argc == 2 && argv[1][0] != '-') {
		cap_tensors *ts = load(argv[1]);
		for (size_t i = 0; i < cap_tensors_count(ts); i++) {
			const cap_tensor *t = cap_tensors_at(ts, i);
			char hex[65];
			cap_sha256_hex(t->data, t->nbytes, hex);
			printf("%s\t%s\t", t->name, cap_dtype_name(t->dtype));
			if (t->ndim == 0) printf("-");
			for (int d = 0; d < t->ndim; d++) printf("%s%lld", d ? "x" : "", (long long)t->shape[d]);
			printf("\t%zu\t%s\n", t->nbytes, hex);
		}
		cap_tensors_free(ts);
	} else if (argc == 4 && (!strcmp(argv[1], "--f32") || !strcmp(argv[1], "--raw"))) {
		cap_tensors *ts = load(argv[3]);
		const cap_tensor *t = find(ts, argv[2]);
		if (!strcmp(argv[1], "--raw")) {
			fwrite(t->data, 1, t->nbytes, stdout);
		} else {
			size_t n = cap_tensor_numel(t);
			float *f = malloc((n ? n : 1) * sizeof *f);
			if (!f || cap_tensor_to_f32(t, f, n) < 0) errx(1, "%s", cap_errmsg());
			fwrite(f, sizeof *f, n, stdout);
			free(f);
		}
		cap_tensors_free(ts);
	} else if (argc == 3 && !strcmp(argv[1], "--meta")) {
		cap_tensors *ts = load(argv[2]);
		for (size_t i = 0; i < cap_tensors_meta_count(ts); i++) {
			const char *k, *v;
			cap_tensors_meta_at(ts, i, &k, &v);
			cap_buf b = {0};
			cap_buf_json_string(&b, v, strlen(v));
			printf("%s\t%s\n", k, b.data);
			cap_buf_free(&b);
		}
		cap_tensors_free(ts);
	} else if (argc == 3 && !strcmp(argv[1], "--digest")) {
		cap_tensors *ts = load(argv[2]);
		char hex[65];
		cap_tensors_digest(ts, hex);
		printf("%s\n", hex);
		cap_tensors_free(ts);
	} else if (argc == 3 && !strcmp(argv[1], "--load")) {
		double t0 = now();
		cap_tensors *ts = load(argv[2]);
		size_t n = 0;
		double sum = 0;
		for (size_t i = 0; i < cap_tensors_count(ts); i++) {
			const cap_tensor *t = cap_tensors_at(ts, i);
			size_t k = cap_tensor_numel(t);
			float *f = malloc((k ? k : 1) * sizeof *f);
			if (!f) err(1, "malloc");
			if (cap_tensor_to_f32(t, f, k) == 0) {
				n++;
				for (size_t j = 0; j < k; j++) sum += f[j];
			}
			free(f);
		}
		cap_tensors_free(ts);
		printf("%zu floating tensors, sum %.6g, %.3f s\n", n, sum, now() - t0);
	} else if (argc == 5 && !strcmp(argv[1], "--expect")) {
		cap_tensors *ts = load(argv[4]);
		int64_t shape[CAP_TENSOR_MAX_DIMS];
		int nd = 0;
		if (strcmp(argv[3], "-"))
			for (char *s = argv[3]; nd < CAP_TENSOR_MAX_DIMS; s++) {
				shape[nd++] = strtoll(s, &s, 10);
				if (*s != 'x') break;
			}
		if (cap_tensors_expect(ts, argv[2], nd, shape) < 0) errx(1, "%s", cap_errmsg());
		cap_tensors_free(ts);
	} else if (argc == 3 && !strcmp(argv[1], "--write")) {
		static const float a[6] = {0, 1, 2, 3, 4, 5}, b = 7;
		cap_tensor_out out[3] = {
			{.name = "a", .ndim = 2, .shape = {2, 3}, .data = a},
			{.name = "b", .ndim = 0, .data = &b},
			{.name = "c", .ndim = 1, .shape = {0}, .data = NULL},
		};
		const char *meta[] = {"k1", "v1", "k2", "quote\"\n\xc3\xa9", NULL};
		if (cap_safetensors_write(argv[2], out, 3, meta) < 0) errx(1, "%s", cap_errmsg());
	} else {
		usage();
	}
	if (fclose(stdout) != 0) err(1, "stdout");
	return 0;
}

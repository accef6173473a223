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
 *   cap-tensors --convert IN OUT  writes IN's floating tensors as float32 safetensors with
 *                                 cap_safetensors_write, metadata copied, plus "source"=IN
 *   cap-tensors --expect NAME SHAPE FILE   cap_tensors_expect with SHAPE like 2x3 ("-" scalar)
 *   cap-tensors --fuzz N SEED FILE   loads N mutated copies of FILE (random bytes changed, runs
 *                                 zeroed or saturated, truncation), each written to FILE.fuzz;
 *                                 a load must succeed or fail cleanly, and every byte of a
 *                                 loaded tensor is read (ASan catches out-of-bounds reads).
 *                                 Prints "N loaded, N refused".
 * Errors: "cap-tensors: FILE: ..." on stderr, exit 1. */
#include "core/buf.h"
#include "core/error.h"
#include "core/sha256.h"
#include "io/tensors.h"

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

/* xorshift64*: a reproducible stream of mutations. */
static uint64_t rng_state;
static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

static void fuzz(unsigned long n, unsigned long seed, const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) err(1, "%s", path);
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	fseek(f, 0, SEEK_SET);
	if (len <= 0) errx(1, "%s: empty", path);
	unsigned char *orig = malloc((size_t)len), *buf = malloc((size_t)len);
	if (!orig || !buf || fread(orig, 1, (size_t)len, f) != (size_t)len) err(1, "%s", path);
	fclose(f);
	size_t plen = strlen(path) + 8;
	char *tmp = malloc(plen);
	snprintf(tmp, plen, "%s.fuzz", path);
	rng_state = seed * 0x9E3779B97F4A7C15ull + 1;
	unsigned long loaded = 0, refused = 0;
	for (unsigned long it = 0; it < n; it++) {
		size_t size = (size_t)len;
		memcpy(buf, orig, size);
		int muts = 1 + (int)(rnd() % 4);
		for (int k = 0; k < muts && size > 0; k++) {
			/* Half of the changes land in the first or last 4 KB, where the headers, the pickle
			 * and the zip directory are. */
			size_t at, r = rnd() % 4;
			if (r == 0 && size > 4096) at = rnd() % 4096;
			else if (r == 1 && size > 4096) at = size - 1 - rnd() % 4096;
			else at = rnd() % size;
			switch (rnd() % 5) {
			case 0: buf[at] ^= (unsigned char)(1u << rnd() % 8); break;
			case 1: buf[at] = (unsigned char)rnd(); break;
			case 2: memset(buf + at, 0xff, size - at < 4 ? size - at : 4); break;
			case 3: memset(buf + at, 0, size - at < 4 ? size - at : 4); break;
			case 4: if (rnd() % 4 == 0) size = at; break;   /* truncation, now and then */
			}
		}
		FILE *o = fopen(tmp, "wb");
		if (!o || fwrite(buf, 1, size, o) != size || fclose(o) != 0) err(1, "%s", tmp);
		cap_tensors *ts = cap_tensors_load(tmp);
		if (!ts) {
			if (!*cap_errmsg()) errx(1, "iteration %lu: failed without a message", it);
			refused++;
			continue;
		}
		loaded++;
		unsigned sum = 0;
		for (size_t i = 0; i < cap_tensors_count(ts); i++) {
			const cap_tensor *t = cap_tensors_at(ts, i);
			if (t->nbytes != cap_tensor_numel(t) * cap_dtype_size(t->dtype)) errx(1, "iteration %lu: %s: nbytes mismatch", it, t->name);
			const unsigned char *p = t->data;
			for (size_t j = 0; j < t->nbytes; j++) sum += p[j];
		}
		(void)sum;
		cap_tensors_free(ts);
	}
	remove(tmp);
	printf("%lu loaded, %lu refused\n", loaded, refused);
	free(tmp);
	free(orig);
	free(buf);
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
		double t1 = now();
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
		printf("%zu floating tensors, sum %.6g, load %.3f s, load + to_f32 + sum %.3f s\n", n, sum, t1 - t0, now() - t0);
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
	} else if (argc == 5 && !strcmp(argv[1], "--fuzz")) {
		fuzz(strtoul(argv[2], NULL, 10), strtoul(argv[3], NULL, 10), argv[4]);
	} else if (argc == 4 && !strcmp(argv[1], "--convert")) {
		cap_tensors *ts = load(argv[2]);
		size_t n = cap_tensors_count(ts), k = 0, nm = cap_tensors_meta_count(ts);
		cap_tensor_out *out = calloc(n ? n : 1, sizeof *out);
		const char **meta = calloc(2 * nm + 3, sizeof *meta);
		if (!out || !meta) err(1, "calloc");
		for (size_t i = 0; i < n; i++) {
			const cap_tensor *t = cap_tensors_at(ts, i);
			if (t->dtype != CAP_F32 && t->dtype != CAP_F16 && t->dtype != CAP_BF16 && t->dtype != CAP_F64) continue;
			size_t numel = cap_tensor_numel(t);
			float *f = malloc((numel ? numel : 1) * sizeof *f);
			if (!f || cap_tensor_to_f32(t, f, numel) < 0) errx(1, "%s", cap_errmsg());
			out[k].name = t->name;
			out[k].ndim = t->ndim;
			memcpy(out[k].shape, t->shape, sizeof t->shape);
			out[k++].data = f;
		}
		for (size_t i = 0; i < nm; i++) cap_tensors_meta_at(ts, i, &meta[2 * i], &meta[2 * i + 1]);
		meta[2 * nm] = "source";
		meta[2 * nm + 1] = argv[2];
		if (cap_safetensors_write(argv[3], out, k, meta) < 0) errx(1, "%s", cap_errmsg());
		for (size_t i = 0; i < k; i++) free((void *)out[i].data);
		free(out);
		free(meta);
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

/* lib/tensors: the safetensors writer read back by the reader (bit-exact data, metadata with
 * every kind of character, order, alignment), atomic replacement and clean failure of the
 * writer, dtype conversion of special values, lookup, the digest, and the reader on every
 * truncation and on random mutations of a file (run under ASan by make check SANITIZE=1).
 * The comparison with PyTorch's own files is in tests/py/test_weights.py. */
#include "check.h"
#include "core/error.h"
#include "io/tensors.h"

#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static char *path_of(const char *name)
{
	static char buf[4][256];
	static int k;
	k = (k + 1) % 4;
	snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
	return buf[k];
}

static int count_files(void)
{
	int n = 0;
	DIR *d = opendir(dir);
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.') n++;
	closedir(d);
	return n;
}

static unsigned char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) return NULL;
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	unsigned char *b = malloc(*len ? *len : 1);
	if (fread(b, 1, *len, f) != *len) { free(b); b = NULL; }
	fclose(f);
	return b;
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	fwrite(data, 1, len, f);
	fclose(f);
}

static uint32_t seed = 12345;
static float frand(void)
{
	seed = seed * 1664525u + 1013904223u;
	uint32_t bits = seed;
	float f;
	/* Any bit pattern except NaNs, so that data compares with memcmp and ==. */
	if ((bits & 0x7f800000u) == 0x7f800000u) bits &= ~0x00800000u;
	memcpy(&f, &bits, 4);
	return f;
}

static void test_roundtrip(void)
{
	static float a[3 * 4 * 5], b[1], c[1], d[2 * 1 * 2 * 1 * 2 * 1 * 2 * 1];
	for (size_t i = 0; i < sizeof a / 4; i++) a[i] = frand();
	b[0] = -1.5f;
	for (size_t i = 0; i < sizeof d / 4; i++) d[i] = frand();
	cap_tensor_out out[] = {
		{.name = "zeta.weight", .ndim = 3, .shape = {3, 4, 5}, .data = a},
		{.name = "scalar", .ndim = 0, .data = b},
		{.name = "empty", .ndim = 2, .shape = {0, 7}, .data = c},
		{.name = "\xc3\xa9t\xc3\xa9 \"quoted\" \\ name\t", .ndim = 8, .shape = {2, 1, 2, 1, 2, 1, 2, 1}, .data = d},
	};
	/* A metadata value like a whole tokenizer.json: every ASCII character, UTF-8, 1 MB. */
	size_t big_len = 1 << 20;
	char *big = malloc(big_len + 1);
	for (size_t i = 0; i < big_len; i++) big[i] = (char)(1 + i % 127);
	memcpy(big + 1000, "\xe2\x82\xac\xf0\x9f\x98\x80", 7);
	big[big_len] = 0;
	const char *meta[] = {"tokenizer.json", big, "empty", "", "hidden", "512", NULL};
	char *p = path_of("model.safetensors");
	CHECK(cap_safetensors_write(p, out, 4, meta) == 0, "write 4 tensors and 1 MB of metadata (%s)", cap_errmsg());
	CHECK(count_files() == 1, "the writer leaves only the file");
	size_t len;
	unsigned char *raw = read_file(p, &len);
	uint64_t hl = 0;
	for (int i = 0; i < 8; i++) hl |= (uint64_t)raw[i] << 8 * i;
	CHECK(hl % 8 == 0 && raw[8] == '{' && (raw[8 + hl - 1] == ' ' || raw[8 + hl - 1] == '}'),
	      "header length %llu is a multiple of 8, padded with spaces", (unsigned long long)hl);
	CHECK(len == 8 + hl + sizeof a + 4 + sizeof d, "file size is header + data exactly");
	free(raw);

	cap_tensors *ts = cap_tensors_load(p);
	CHECK(ts != NULL, "written file loads (%s)", cap_errmsg());
	if (!ts) { free(big); return; }
	CHECK(cap_tensors_count(ts) == 4, "4 tensors");
	int same = 1;
	for (size_t i = 0; i < 4; i++) {
		const cap_tensor *t = cap_tensors_at(ts, i);
		same &= !strcmp(t->name, out[i].name) && t->dtype == CAP_F32 && t->ndim == out[i].ndim;
		for (int k = 0; k < t->ndim; k++) same &= t->shape[k] == out[i].shape[k];
		size_t n = cap_tensor_numel(t);
		same &= t->nbytes == 4 * n;
		float *f = malloc((n ? n : 1) * 4);
		same &= cap_tensor_to_f32(t, f, n) == 0 && (n == 0 || !memcmp(f, out[i].data, 4 * n));
		free(f);
	}
	CHECK(same, "names, order, shapes and bit patterns read back exactly");
	CHECK(cap_tensors_at(ts, 4) == NULL, "cap_tensors_at past the end is NULL");
	const char *m = cap_tensors_meta(ts, "tokenizer.json");
	CHECK(m && !strcmp(m, big), "1 MB metadata value with every ASCII character reads back");
	CHECK(cap_tensors_meta(ts, "empty") && !strcmp(cap_tensors_meta(ts, "empty"), ""), "empty metadata value");
	CHECK(cap_tensors_meta(ts, "nope") == NULL, "absent metadata key is NULL");
	const char *k, *v;
	CHECK(cap_tensors_meta_count(ts) == 3 && cap_tensors_meta_at(ts, 2, &k, &v) == 0 && !strcmp(k, "hidden") &&
	      !strcmp(v, "512") && cap_tensors_meta_at(ts, 3, &k, &v) == -1, "metadata in file order");
	CHECK(cap_tensors_find(ts, "scalar") == cap_tensors_at(ts, 1), "find by name");
	CHECK(cap_tensors_find(ts, "zeta") == NULL && cap_tensors_find(ts, "") == NULL, "find of absent names is NULL");
	CHECK(cap_tensors_expect(ts, "zeta.weight", 3, (int64_t[]){3, 4, 5}) == 0, "expect the right shape");
	CHECK(cap_tensors_expect(ts, "zeta.weight", 3, (int64_t[]){3, 4, 6}) < 0 && strstr(cap_errmsg(), "[3, 4, 5]") &&
	      strstr(cap_errmsg(), "[3, 4, 6]") && strstr(cap_errmsg(), p), "expect names both shapes and the file: %s", cap_errmsg());
	CHECK(cap_tensors_expect(ts, "zeta.weight", 2, (int64_t[]){3, 4}) < 0, "expect catches a rank mismatch");
	CHECK(cap_tensors_expect(ts, "missing", 1, (int64_t[]){1}) < 0 && strstr(cap_errmsg(), "missing"), "expect names a missing tensor");
	float f1;
	CHECK(cap_tensor_to_f32(cap_tensors_at(ts, 1), &f1, 1) == 0 && f1 == -1.5f, "scalar to f32");
	CHECK(cap_tensor_to_f32(cap_tensors_at(ts, 1), &f1, 2) < 0 && strstr(cap_errmsg(), "scalar"), "count mismatch refused naming the tensor");

	/* The digest depends on content, not order in the file. */
	char h1[65], h2[65], h3[65];
	cap_tensors_digest(ts, h1);
	cap_tensors_free(ts);
	cap_tensor_out rev[4] = {out[3], out[2], out[1], out[0]};
	CHECK(cap_safetensors_write(p, rev, 4, NULL) == 0, "overwrite the file with the tensors reversed, no metadata");
	CHECK(count_files() == 1, "the replaced file is the only one");
	ts = cap_tensors_load(p);
	CHECK(ts && cap_tensors_meta_count(ts) == 0 && !strcmp(cap_tensors_at(ts, 0)->name, out[3].name), "replacement loads in its order");
	if (ts) { cap_tensors_digest(ts, h2); cap_tensors_free(ts); }
	CHECK(strlen(h1) == 64 && !strcmp(h1, h2), "digest is the same whatever the order and metadata");
	a[7] = -a[7];
	CHECK(cap_safetensors_write(p, out, 4, NULL) == 0, "write with one value changed");
	ts = cap_tensors_load(p);
	if (ts) { cap_tensors_digest(ts, h3); cap_tensors_free(ts); }
	CHECK(strcmp(h1, h3) != 0, "digest changes with one sign bit");
	a[7] = -a[7];
	free(big);
}

static void test_writer_errors(void)
{
	float x[2] = {1, 2};
	int before = count_files();
	cap_tensor_out dup[] = {{.name = "a", .ndim = 1, .shape = {2}, .data = x}, {.name = "a", .ndim = 1, .shape = {2}, .data = x}};
	CHECK(cap_safetensors_write(path_of("dup.st"), dup, 2, NULL) < 0 && strstr(cap_errmsg(), "twice"), "duplicate names refused: %s", cap_errmsg());
	cap_tensor_out bad[] = {{.name = "__metadata__", .ndim = 1, .shape = {2}, .data = x}};
	CHECK(cap_safetensors_write(path_of("meta.st"), bad, 1, NULL) < 0, "a tensor named __metadata__ refused");
	cap_tensor_out utf[] = {{.name = "\xff\xfe", .ndim = 1, .shape = {2}, .data = x}};
	CHECK(cap_safetensors_write(path_of("utf.st"), utf, 1, NULL) < 0, "invalid UTF-8 name refused");
	cap_tensor_out ok1[] = {{.name = "a", .ndim = 1, .shape = {2}, .data = x}};
	const char *m1[] = {"k", "\xed\xa0\x80", NULL};   /* a UTF-16 surrogate in UTF-8 */
	CHECK(cap_safetensors_write(path_of("m1.st"), ok1, 1, m1) < 0, "invalid UTF-8 metadata refused");
	const char *m2[] = {"k", "1", "k", "2", NULL};
	CHECK(cap_safetensors_write(path_of("m2.st"), ok1, 1, m2) < 0, "duplicate metadata key refused");
	cap_tensor_out neg[] = {{.name = "a", .ndim = 1, .shape = {-2}, .data = x}};
	CHECK(cap_safetensors_write(path_of("neg.st"), neg, 1, NULL) < 0, "negative dimension refused");
	cap_tensor_out dims[] = {{.name = "a", .ndim = 9, .data = x}};
	CHECK(cap_safetensors_write(path_of("dims.st"), dims, 1, NULL) < 0, "9 dimensions refused");
	cap_tensor_out huge[] = {{.name = "a", .ndim = 3, .shape = {1 << 30, 1 << 30, 1 << 30}, .data = x}};
	CHECK(cap_safetensors_write(path_of("huge.st"), huge, 1, NULL) < 0, "overflowing shape refused");
	CHECK(count_files() == before, "failed writes leave no file behind");
	char *nodir = path_of("no/such/dir/x.st");
	CHECK(cap_safetensors_write(nodir, ok1, 1, NULL) < 0 && strstr(cap_errmsg(), nodir),
	      "write into a missing directory fails naming the path: %s", cap_errmsg());
	CHECK(cap_safetensors_write(path_of("none.st"), ok1, 0, NULL) == 0, "zero tensors write");
	cap_tensors *ts = cap_tensors_load(path_of("none.st"));
	CHECK(ts && cap_tensors_count(ts) == 0, "an empty safetensors file loads");
	cap_tensors_free(ts);
	unlink(path_of("none.st"));
}

static void test_convert(void)
{
	/* float16 and bfloat16 special values, little-endian bytes. */
	static const unsigned char h[] = {0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x01, 0x00, 0xff, 0x03, 0x00, 0x04,
	                                  0x00, 0x80, 0x00, 0x7c, 0x00, 0xfc, 0x00, 0x7e, 0x55, 0x35};
	float want[] = {1, -2, 65504, 5.9604644775390625e-08f, 6.0975551605224609e-05f, 6.103515625e-05f,
	                -0.0f, INFINITY, -INFINITY, NAN, 0.333251953125f};
	cap_tensor t = {.name = "h", .dtype = CAP_F16, .ndim = 1, .shape = {11}, .data = h, .nbytes = sizeof h};
	float got[11];
	int good = cap_tensor_to_f32(&t, got, 11) == 0;
	for (int i = 0; i < 11; i++) good &= isnan(want[i]) ? isnan(got[i]) : got[i] == want[i] && signbit(got[i]) == signbit(want[i]);
	CHECK(good, "F16 special values (one, max, subnormals, -0, inf, nan) convert exactly");
	static const unsigned char bf[] = {0x80, 0x3f, 0x49, 0x40, 0x80, 0x7f, 0x01, 0x00};
	cap_tensor u = {.name = "b", .dtype = CAP_BF16, .ndim = 1, .shape = {4}, .data = bf, .nbytes = sizeof bf};
	good = cap_tensor_to_f32(&u, got, 4) == 0 && got[0] == 1.0f && got[1] == 3.140625f && isinf(got[2]) &&
	       got[3] > 0 && got[3] < 1e-38f;
	CHECK(good, "BF16 values convert exactly");
	double dv[3] = {1.0 / 3, 1e300, -1e-50};
	cap_tensor w = {.name = "d", .dtype = CAP_F64, .ndim = 1, .shape = {3}, .data = dv, .nbytes = sizeof dv};
	good = cap_tensor_to_f32(&w, got, 3) == 0 && got[0] == (float)(1.0 / 3) && isinf(got[1]) && got[2] == 0 && signbit(got[2]);
	CHECK(good, "F64 rounds to float32");
	int64_t iv[1] = {3};
	cap_tensor x = {.name = "num_batches_tracked", .dtype = CAP_I64, .ndim = 0, .data = iv, .nbytes = 8};
	CHECK(cap_tensor_to_f32(&x, got, 1) < 0 && strstr(cap_errmsg(), "num_batches_tracked") && strstr(cap_errmsg(), "I64"),
	      "an I64 tensor is refused naming it and its dtype: %s", cap_errmsg());
	CHECK(!strcmp(cap_dtype_name(CAP_BF16), "BF16") && cap_dtype_size(CAP_F64) == 8 && cap_dtype_size(CAP_BOOL) == 1, "dtype names and sizes");
}

/* Every truncation and a few thousand random mutations of a valid file: loads or clean errors. */
static void test_hostile(void)
{
	float a[6] = {1, 2, 3, 4, 5, 6}, b = 7;
	cap_tensor_out out[] = {{.name = "a", .ndim = 2, .shape = {2, 3}, .data = a}, {.name = "b", .ndim = 0, .data = &b}};
	const char *meta[] = {"k", "v", NULL};
	char *good = path_of("good.st"), *bad = path_of("bad.st");
	cap_safetensors_write(good, out, 2, meta);
	size_t len;
	unsigned char *orig = read_file(good, &len), *buf = malloc(len);
	int clean = 1;
	for (size_t cut = 0; cut < len; cut++) {
		write_file(bad, orig, cut);
		cap_tensors *ts = cap_tensors_load(bad);
		clean &= ts == NULL && strncmp(cap_errmsg(), bad, strlen(bad)) == 0;
		cap_tensors_free(ts);
	}
	CHECK(clean, "all %zu truncations refused with a message naming the file", len);
	int loaded = 0, refused = 0;
	for (int it = 0; it < 3000; it++) {
		memcpy(buf, orig, len);
		int n = 1 + it % 3;
		for (int k = 0; k < n; k++) {
			seed = seed * 1664525u + 1013904223u;
			size_t at = (seed >> 8) % len;
			buf[at] = (seed & 1) ? (unsigned char)(seed >> 24) : (unsigned char)(buf[at] ^ (1u << (seed >> 29)));
		}
		write_file(bad, buf, len);
		cap_tensors *ts = cap_tensors_load(bad);
		if (!ts) { refused++; clean &= *cap_errmsg() != 0; continue; }
		loaded++;
		for (size_t i = 0; i < cap_tensors_count(ts); i++) {
			const cap_tensor *t = cap_tensors_at(ts, i);
			volatile unsigned s = 0;
			for (size_t j = 0; j < t->nbytes; j++) s += ((const unsigned char *)t->data)[j];
			clean &= t->nbytes == cap_tensor_numel(t) * cap_dtype_size(t->dtype);
		}
		cap_tensors_free(ts);
	}
	CHECK(clean, "3000 random mutations: %d loaded consistently, %d refused with a message", loaded, refused);
	unlink(bad);
	unlink(good);
	free(orig);
	free(buf);
}

int main(void)
{
	snprintf(dir, sizeof dir, "/tmp/cap-test-tensors.XXXXXX");
	if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
	test_roundtrip();
	unlink(path_of("model.safetensors"));
	test_writer_errors();
	test_convert();
	test_hostile();
	rmdir(dir);
	return check_exit();
}

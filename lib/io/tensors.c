/* The format-independent half of lib/io/tensors.h: opening and mapping the file, telling the
 * formats apart by their first bytes, lookup by name, dtype conversion and the digest. */
#include "io/tensors_internal.h"
#include "core/error.h"
#include "core/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct { const char *name; size_t size; } dtypes[] = {
	[CAP_F32] = {"F32", 4}, [CAP_F16] = {"F16", 2}, [CAP_BF16] = {"BF16", 2}, [CAP_F64] = {"F64", 8},
	[CAP_I64] = {"I64", 8}, [CAP_I32] = {"I32", 4}, [CAP_I16] = {"I16", 2}, [CAP_I8] = {"I8", 1},
	[CAP_U8] = {"U8", 1}, [CAP_BOOL] = {"BOOL", 1},
};

const char *cap_dtype_name(cap_dtype d) { return dtypes[d].name; }
size_t cap_dtype_size(cap_dtype d) { return dtypes[d].size; }

int cap_dtype_parse(const char *name, cap_dtype *out)
{
	for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
		if (!strcmp(name, dtypes[i].name)) { *out = (cap_dtype)i; return 0; }
	return -1;
}

int cap_shape_numel(int ndim, const int64_t *shape, size_t *out)
{
	size_t n = 1;
	for (int i = 0; i < ndim; i++) {
		if (shape[i] < 0 || (uint64_t)shape[i] > SIZE_MAX) return -1;
		if (cap_mul_overflow(n, (size_t)shape[i], &n)) return -1;
	}
	*out = n;
	return 0;
}

size_t cap_tensor_numel(const cap_tensor *t)
{
	size_t n = 1;
	for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];   /* checked at load */
	return n;
}

void *cap_tensors_own(cap_tensors *ts, void *p)
{
	if (ts->nowned == ts->owned_cap) {
		ts->owned_cap = ts->owned_cap ? 2 * ts->owned_cap : 64;
		ts->owned = cap_xrealloc(ts->owned, ts->owned_cap * sizeof *ts->owned);
	}
	ts->owned[ts->nowned++] = p;
	return p;
}

cap_tensor *cap_tensors_push(cap_tensors *ts, const char *name, cap_dtype dtype, int ndim,
                             const int64_t *shape, const void *data, size_t nbytes)
{
	if (ts->n == ts->cap) {
		ts->cap = ts->cap ? 2 * ts->cap : 64;
		ts->t = cap_xrealloc(ts->t, ts->cap * sizeof *ts->t);
	}
	cap_tensor *t = &ts->t[ts->n++];
	memset(t, 0, sizeof *t);
	t->name = cap_tensors_own(ts, cap_xstrdup(name));
	t->dtype = dtype;
	t->ndim = ndim;
	memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
	t->data = data;
	t->nbytes = nbytes;
	return t;
}

void cap_tensors_push_meta(cap_tensors *ts, const char *key, const char *value)
{
	ts->meta = cap_xrealloc(ts->meta, (ts->nmeta + 1) * 2 * sizeof *ts->meta);
	ts->meta[2 * ts->nmeta] = cap_tensors_own(ts, cap_xstrdup(key));
	ts->meta[2 * ts->nmeta + 1] = cap_tensors_own(ts, cap_xstrdup(value));
	ts->nmeta++;
}

/* qsort has no context argument in C11; thread-local so that threads may load at once. */
static _Thread_local const cap_tensor *sort_base;
static int by_name_cmp(const void *a, const void *b)
{
	return strcmp(sort_base[*(const size_t *)a].name, sort_base[*(const size_t *)b].name);
}

/* Sorts the name index and refuses duplicate names (a file must not say two things about
 * one tensor). */
static int index_names(cap_tensors *ts)
{
	ts->by_name = cap_xmalloc((ts->n ? ts->n : 1) * sizeof *ts->by_name);
	for (size_t i = 0; i < ts->n; i++) ts->by_name[i] = i;
	sort_base = ts->t;
	qsort(ts->by_name, ts->n, sizeof *ts->by_name, by_name_cmp);
	for (size_t i = 1; i < ts->n; i++)
		if (!strcmp(ts->t[ts->by_name[i - 1]].name, ts->t[ts->by_name[i]].name))
			return cap_fail("tensor name \"%s\" appears twice", ts->t[ts->by_name[i]].name);
	return 0;
}

cap_tensors *cap_tensors_load(const char *path)
{
	cap_tensors *ts = cap_xcalloc(1, sizeof *ts);
	ts->path = cap_xstrdup(path);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		cap_fail("%s: %s", path, strerror(errno));
		if (fd >= 0) close(fd);
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		cap_fail("%s: not a regular file", path);
		goto fail;
	}
	ts->size = (size_t)st.st_size;
	if (ts->size > 0) {
		void *m = mmap(NULL, ts->size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m == MAP_FAILED) {
			cap_fail("%s: mmap: %s", path, strerror(errno));
			close(fd);
			goto fail;
		}
		ts->map = m;
	}
	close(fd);

	const unsigned char *p = ts->map;
	int rc;
	if (ts->size >= 4 && !memcmp(p, "PK\3\4", 4))
		rc = cap_pth_parse(ts);
	else if (ts->size >= 9 && p[8] == '{')
		rc = cap_safetensors_parse(ts);
	else if (ts->size >= 3 && p[0] == 0x80 && p[1] >= 2 && p[1] <= 5 && p[2] == 0x8a)
		/* PROTO, then LONG1: the magic number the legacy format pickles first. */
		rc = cap_fail("a pickle without zip archive: the legacy torch.save format (before "
		              "PyTorch 1.6) is not supported; re-save it with a newer torch.save");
	else if (ts->size >= 8)
		rc = cap_fail("neither safetensors (8-byte header length, then '{') nor a .pth zip archive");
	else
		rc = cap_fail("file too short (%zu bytes) for safetensors or .pth", ts->size);
	if (rc < 0 || index_names(ts) < 0) {
		cap_fail_prefix("%s", path);
		goto fail;
	}
	return ts;
fail:
	cap_tensors_free(ts);
	return NULL;
}

void cap_tensors_free(cap_tensors *ts)
{
	if (!ts) return;
	if (ts->map) munmap((void *)ts->map, ts->size);
	for (size_t i = 0; i < ts->nowned; i++) free(ts->owned[i]);
	free(ts->owned);
	free(ts->t);
	free(ts->by_name);
	free(ts->meta);
	free(ts->path);
	free(ts);
}

size_t cap_tensors_count(const cap_tensors *ts) { return ts->n; }

const cap_tensor *cap_tensors_at(const cap_tensors *ts, size_t i) { return i < ts->n ? &ts->t[i] : NULL; }

const cap_tensor *cap_tensors_find(const cap_tensors *ts, const char *name)
{
	size_t lo = 0, hi = ts->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const cap_tensor *t = &ts->t[ts->by_name[mid]];
		int c = strcmp(name, t->name);
		if (c == 0) return t;
		if (c < 0) hi = mid; else lo = mid + 1;
	}
	return NULL;
}

const char *cap_tensors_meta(const cap_tensors *ts, const char *key)
{
	for (size_t i = 0; i < ts->nmeta; i++)
		if (!strcmp(ts->meta[2 * i], key)) return ts->meta[2 * i + 1];
	return NULL;
}

size_t cap_tensors_meta_count(const cap_tensors *ts) { return ts->nmeta; }

int cap_tensors_meta_at(const cap_tensors *ts, size_t i, const char **key, const char **value)
{
	if (i >= ts->nmeta) return -1;
	*key = ts->meta[2 * i];
	*value = ts->meta[2 * i + 1];
	return 0;
}

/* IEEE half to single: exact (every half is a float). */
static float half_to_float(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
	if (exp == 0) {
		float f = ldexpf((float)man, -24);   /* zero or subnormal */
		return sign ? -f : f;
	}
	if (exp == 31) bits = sign | 0x7f800000u | man << 13;   /* inf, nan (payload kept) */
	else bits = sign | (exp + 112) << 23 | man << 13;
	float f;
	memcpy(&f, &bits, 4);
	return f;
}

int cap_tensor_to_f32(const cap_tensor *t, float *out, size_t n)
{
	size_t numel = cap_tensor_numel(t);
	if (n != numel)
		return cap_fail("%s: %zu elements, %zu requested", t->name, numel, n);
	const unsigned char *p = t->data;
	switch (t->dtype) {
	case CAP_F32:
		if (n) memcpy(out, p, n * 4);
		break;
	case CAP_F16:
		for (size_t i = 0; i < n; i++) {
			uint16_t h = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
			out[i] = half_to_float(h);
		}
		break;
	case CAP_BF16:
		for (size_t i = 0; i < n; i++) {
			uint32_t bits = (uint32_t)(p[2 * i] | p[2 * i + 1] << 8) << 16;
			memcpy(&out[i], &bits, 4);
		}
		break;
	case CAP_F64:
		for (size_t i = 0; i < n; i++) {
			double d;
			memcpy(&d, p + 8 * i, 8);
			out[i] = (float)d;
		}
		break;
	default:
		return cap_fail("%s: dtype %s is not a floating type", t->name, cap_dtype_name(t->dtype));
	}
	return 0;
}

static void shape_str(char *buf, size_t len, int ndim, const int64_t *shape)
{
	size_t o = (size_t)snprintf(buf, len, "[");
	for (int i = 0; i < ndim && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%lld", i ? ", " : "", (long long)shape[i]);
	if (o < len) snprintf(buf + o, len - o, "]");
}

int cap_tensors_expect(const cap_tensors *ts, const char *name, int ndim, const int64_t *shape)
{
	const cap_tensor *t = cap_tensors_find(ts, name);
	if (!t) return cap_fail("%s: no tensor \"%s\"", ts->path, name);
	int same = t->ndim == ndim;
	for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
	if (!same) {
		char want[200], got[200];
		shape_str(want, sizeof want, ndim, shape);
		shape_str(got, sizeof got, t->ndim, t->shape);
		return cap_fail("%s: tensor \"%s\" has shape %s, expected %s", ts->path, name, got, want);
	}
	return 0;
}

static void put_u64(cap_sha256 *s, uint64_t v)
{
	unsigned char b[8];
	for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> 8 * i);
	cap_sha256_update(s, b, 8);
}

int cap_tensors_digest(const cap_tensors *ts, char hex[65])
{
	cap_sha256 s;
	cap_sha256_init(&s);
	for (size_t k = 0; k < ts->n; k++) {
		const cap_tensor *t = &ts->t[ts->by_name[k]];
		const char *dt = cap_dtype_name(t->dtype);
		put_u64(&s, strlen(t->name));
		cap_sha256_update(&s, t->name, strlen(t->name));
		put_u64(&s, strlen(dt));
		cap_sha256_update(&s, dt, strlen(dt));
		put_u64(&s, (uint64_t)t->ndim);
		for (int i = 0; i < t->ndim; i++) put_u64(&s, (uint64_t)t->shape[i]);
		put_u64(&s, t->nbytes);
		cap_sha256_update(&s, t->data, t->nbytes);
	}
	unsigned char d[32];
	cap_sha256_final(&s, d);
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < 32; i++) {
		hex[2 * i] = digits[d[i] >> 4];
		hex[2 * i + 1] = digits[d[i] & 15];
	}
	hex[64] = '\0';
	return 0;
}

/* safetensors: an 8-byte little-endian header length N, N bytes of JSON, then the tensor bytes.
 * The JSON maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} with
 * offsets relative to the start of the data area, plus an optional "__metadata__" object of
 * strings. Reading validates as huggingface/safetensors (safetensors/src/tensor.rs) does, so
 * a file this accepts is one the reference accepts; writing produces what it writes (header
 * padded with spaces to a multiple of 8, so float data is aligned in the file). */
#include "io/tensors_internal.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/json.h"
#include "core/outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_HEADER 100000000u   /* as the reference implementation */

typedef struct entry {
	size_t index;               /* tensor index in ts */
	uint64_t begin, end;
} entry;

static int by_begin(const void *a, const void *b)
{
	const entry *x = a, *y = b;
	if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
	if (x->end != y->end) return x->end < y->end ? -1 : 1;
	return 0;
}

static int parse_meta(cap_tensors *ts, const cap_json *m)
{
	if (m->type == CAP_JSON_NULL) return 0;
	if (m->type != CAP_JSON_OBJECT) return cap_fail("__metadata__ is not an object");
	for (size_t i = 0; i < m->n; i++) {
		const cap_json *v = m->items[i];
		if (v->type != CAP_JSON_STRING)
			return cap_fail("__metadata__ value of \"%s\" is not a string", m->keys[i]);
		if (strlen(m->keys[i]) != m->key_lens[i] || strlen(v->str) != v->len)
			return cap_fail("__metadata__ entry \"%s\" contains a NUL character", m->keys[i]);
		cap_tensors_push_meta(ts, m->keys[i], v->str);
	}
	return 0;
}

/* Reads one tensor's info; its data pointer is set once all ranges are validated. */
static int parse_info(cap_tensors *ts, const char *name, const cap_json *info, entry *e)
{
	if (info->type != CAP_JSON_OBJECT) return cap_fail("tensor \"%s\": info is not an object", name);
	const char *dts = cap_json_get_str(info, "dtype");
	const cap_json *shape = cap_json_get(info, "shape");
	const cap_json *off = cap_json_get(info, "data_offsets");
	if (!dts) return cap_fail("tensor \"%s\": no \"dtype\" string", name);
	cap_dtype dt;
	if (cap_dtype_parse(dts, &dt) < 0) return cap_fail("tensor \"%s\": unsupported dtype \"%s\"", name, dts);
	if (!shape || shape->type != CAP_JSON_ARRAY) return cap_fail("tensor \"%s\": no \"shape\" array", name);
	if (shape->n > CAP_TENSOR_MAX_DIMS)
		return cap_fail("tensor \"%s\": %zu dimensions (at most %d supported)", name, shape->n, CAP_TENSOR_MAX_DIMS);
	int64_t dims[CAP_TENSOR_MAX_DIMS];
	for (size_t i = 0; i < shape->n; i++) {
		const cap_json *d = shape->items[i];
		if (d->type != CAP_JSON_NUMBER || !d->is_uint || d->uint > INT64_MAX)
			return cap_fail("tensor \"%s\": shape[%zu] is not a non-negative integer", name, i);
		dims[i] = (int64_t)d->uint;
	}
	if (!off || off->type != CAP_JSON_ARRAY || off->n != 2 ||
	    off->items[0]->type != CAP_JSON_NUMBER || !off->items[0]->is_uint ||
	    off->items[1]->type != CAP_JSON_NUMBER || !off->items[1]->is_uint)
		return cap_fail("tensor \"%s\": \"data_offsets\" is not a pair of non-negative integers", name);
	e->begin = off->items[0]->uint;
	e->end = off->items[1]->uint;
	size_t numel, nbytes;
	if (cap_shape_numel((int)shape->n, dims, &numel) < 0 || cap_mul_overflow(numel, cap_dtype_size(dt), &nbytes))
		return cap_fail("tensor \"%s\": shape times dtype size overflows", name);
	if (e->end < e->begin || e->end - e->begin != nbytes)
		return cap_fail("tensor \"%s\": data_offsets [%llu, %llu] do not hold %zu bytes (%s, %zu elements)",
		                name, (unsigned long long)e->begin, (unsigned long long)e->end, nbytes, dts, numel);
	e->index = ts->n;
	cap_tensors_push(ts, name, dt, (int)shape->n, dims, NULL, nbytes);
	return 0;
}

int cap_safetensors_parse(cap_tensors *ts)
{
	const unsigned char *p = ts->map;
	if (ts->size < 8) return cap_fail("file too short for a safetensors header");
	uint64_t n = 0;
	for (int i = 0; i < 8; i++) n |= (uint64_t)p[i] << 8 * i;
	if (n > MAX_HEADER) return cap_fail("safetensors header length %llu exceeds the 100 MB limit", (unsigned long long)n);
	if (n > ts->size - 8)
		return cap_fail("safetensors header length %llu runs past the end of the file (%zu bytes)",
		                (unsigned long long)n, ts->size);
	if (n < 2 || p[8] != '{') return cap_fail("safetensors header does not start with '{'");
	cap_json *h = cap_json_parse((const char *)p + 8, (size_t)n);
	if (!h) return cap_fail_prefix("safetensors header");
	int rc = -1;
	entry *es = NULL;
	if (h->type != CAP_JSON_OBJECT) { cap_fail("safetensors header is not a JSON object"); goto out; }
	es = cap_xmalloc((h->n ? h->n : 1) * sizeof *es);
	size_t ne = 0;
	for (size_t i = 0; i < h->n; i++) {
		const char *key = h->keys[i];
		if (strlen(key) != h->key_lens[i]) { cap_fail("a tensor name contains a NUL character"); goto out; }
		if (!strcmp(key, "__metadata__")) {
			if (parse_meta(ts, h->items[i]) < 0) goto out;
			continue;
		}
		if (parse_info(ts, key, h->items[i], &es[ne]) < 0) goto out;
		ne++;
	}
	/* The ranges, in offset order, must tile [0, size of the data area) exactly. */
	qsort(es, ne, sizeof *es, by_begin);
	uint64_t at = 0, data_len = ts->size - 8 - n;
	for (size_t i = 0; i < ne; i++) {
		if (es[i].begin != at) {
			cap_fail("tensor \"%s\": data_offsets begin at %llu where %llu was expected (ranges must be contiguous, without gaps or overlaps)",
			         ts->t[es[i].index].name, (unsigned long long)es[i].begin, (unsigned long long)at);
			goto out;
		}
		at = es[i].end;
		if (at > data_len) {
			cap_fail("tensor \"%s\": data ends at %llu, past the end of the file's %llu data bytes",
			         ts->t[es[i].index].name, (unsigned long long)at, (unsigned long long)data_len);
			goto out;
		}
		ts->t[es[i].index].data = p + 8 + n + es[i].begin;
	}
	if (at != data_len) {
		cap_fail("the tensors cover %llu bytes but the data area has %llu", (unsigned long long)at,
		         (unsigned long long)data_len);
		goto out;
	}
	rc = 0;
out:
	free(es);
	cap_json_free(h);
	return rc;
}

/* Writing. */

static int valid_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		unsigned c = *p, cp, len;
		if (c < 0x80) { p++; continue; }
		if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
		else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
		else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
		else return 0;
		for (unsigned i = 1; i < len; i++) {
			if ((p[i] & 0xC0) != 0x80) return 0;
			cp = cp << 6 | (p[i] & 0x3F);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
		    cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		p += len;
	}
	return 1;
}

/* The header text, or -1 (cap_fail) when names, metadata or shapes cannot be written. */
static int build_header(cap_buf *b, const cap_tensor_out *ts, size_t n, const char *const *meta, uint64_t *total)
{
	cap_buf_addc(b, '{');
	int first = 1;
	if (meta && meta[0]) {
		cap_buf_adds(b, "\"__metadata__\":{");
		for (size_t i = 0; meta[i]; i += 2) {
			if (!meta[i + 1]) return cap_fail("metadata key \"%s\" has no value", meta[i]);
			if (!valid_utf8(meta[i]) || !valid_utf8(meta[i + 1]))
				return cap_fail("metadata \"%s\" is not valid UTF-8", meta[i]);
			for (size_t j = 0; j < i; j += 2)
				if (!strcmp(meta[i], meta[j])) return cap_fail("metadata key \"%s\" given twice", meta[i]);
			if (i) cap_buf_addc(b, ',');
			cap_buf_json_string(b, meta[i], strlen(meta[i]));
			cap_buf_addc(b, ':');
			cap_buf_json_string(b, meta[i + 1], strlen(meta[i + 1]));
		}
		cap_buf_addc(b, '}');
		first = 0;
	}
	uint64_t off = 0;
	for (size_t i = 0; i < n; i++) {
		const cap_tensor_out *t = &ts[i];
		if (!t->name || !valid_utf8(t->name) || !strcmp(t->name, "__metadata__"))
			return cap_fail("tensor %zu: invalid name", i);
		if (t->ndim < 0 || t->ndim > CAP_TENSOR_MAX_DIMS)
			return cap_fail("tensor \"%s\": %d dimensions", t->name, t->ndim);
		size_t numel, nbytes;
		if (cap_shape_numel(t->ndim, t->shape, &numel) < 0 || cap_mul_overflow(numel, 4, &nbytes) ||
		    off + nbytes < off)
			return cap_fail("tensor \"%s\": invalid or too large shape", t->name);
		if (nbytes && !t->data) return cap_fail("tensor \"%s\": no data", t->name);
		if (!first) cap_buf_addc(b, ',');
		first = 0;
		cap_buf_json_string(b, t->name, strlen(t->name));
		cap_buf_adds(b, ":{\"dtype\":\"F32\",\"shape\":[");
		for (int d = 0; d < t->ndim; d++) cap_buf_printf(b, "%s%lld", d ? "," : "", (long long)t->shape[d]);
		cap_buf_printf(b, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
		               (unsigned long long)(off + nbytes));
		off += nbytes;
	}
	cap_buf_addc(b, '}');
	while (b->len % 8) cap_buf_addc(b, ' ');
	*total = off;
	return 0;
}

/* Duplicate names are checked by sorting copies of the pointers. */
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int cap_safetensors_write(const char *path, const cap_tensor_out *ts, size_t n, const char *const *meta)
{
	cap_buf b = {0};
	uint64_t total;
	if (build_header(&b, ts, n, meta, &total) < 0) {
		cap_buf_free(&b);
		return cap_fail_prefix("%s", path);
	}
	const char **names = cap_xmalloc((n ? n : 1) * sizeof *names);
	for (size_t i = 0; i < n; i++) names[i] = ts[i].name;
	qsort(names, n, sizeof *names, cmp_str);
	for (size_t i = 1; i < n; i++)
		if (!strcmp(names[i - 1], names[i])) {
			cap_fail("%s: tensor name \"%s\" given twice", path, names[i]);
			free(names);
			cap_buf_free(&b);
			return -1;
		}
	free(names);
	if (b.len > MAX_HEADER) {
		cap_buf_free(&b);
		return cap_fail("%s: safetensors header of %zu bytes exceeds the 100 MB limit", path, b.len);
	}

	/* Through cap_outfile: atomic for a regular file, symlinks kept, devices written through. */
	cap_outfile *o = cap_outfile_open(path);
	if (!o) {
		cap_buf_free(&b);
		return -1;
	}
	FILE *f = cap_outfile_fp(o);
	unsigned char len8[8];
	for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)b.len >> 8 * i);
	int rc = fwrite(len8, 1, 8, f) != 8 || fwrite(b.data, 1, b.len, f) != b.len ? -1 : 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		size_t numel;
		cap_shape_numel(ts[i].ndim, ts[i].shape, &numel);
		/* float32 in memory is little-endian on every machine we build for. */
		if (numel && fwrite(ts[i].data, 4, numel, f) != numel) rc = -1;
	}
	if (rc < 0) {
		cap_fail("%s: write error: %s", path, strerror(errno ? errno : EIO));
		cap_outfile_abort(o);
	} else {
		rc = cap_outfile_close(o);
	}
	cap_buf_free(&b);
	return rc;
}

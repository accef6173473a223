#include "io/stream.h"
#include "core/error.h"
#include "core/outfile.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------ writing */

struct cap_writer {
	cap_outfile *out;   /* temporary file renamed into place at close, or stdout */
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int failed;
};

cap_writer *cap_writer_open(const char *path)
{
	cap_outfile *out = cap_outfile_open(path);
	if (!out) return NULL;
	cap_writer *w = cap_xcalloc(1, sizeof *w);
	w->out = out;
	msgpack_sbuffer_init(&w->sb);
	msgpack_packer_init(&w->pk, &w->sb, msgpack_sbuffer_write);
	return w;
}

msgpack_packer *cap_writer_packer(cap_writer *w) { return &w->pk; }

int cap_writer_end(cap_writer *w)
{
	/* One fwrite per object: msgpack's own fbuffer fails on zero-length pieces. */
	FILE *f = cap_outfile_fp(w->out);
	if (w->sb.size && !w->failed && fwrite(w->sb.data, 1, w->sb.size, f) != w->sb.size)
		w->failed = errno ? errno : EIO;
	msgpack_sbuffer_clear(&w->sb);
	if (w->failed)
		return cap_fail("%s: write error: %s", cap_outfile_name(w->out), strerror(w->failed));
	return 0;
}

int cap_writer_close(cap_writer *w)
{
	int rc = w->sb.size ? cap_writer_end(w) : (w->failed ? -1 : 0);
	if (rc) cap_outfile_abort(w->out);
	else rc = cap_outfile_close(w->out);
	msgpack_sbuffer_destroy(&w->sb);
	free(w);
	return rc;
}

void cap_writer_abort(cap_writer *w)
{
	cap_outfile_abort(w->out);
	msgpack_sbuffer_destroy(&w->sb);
	free(w);
}

void cap_pack_strn(msgpack_packer *pk, const char *s, size_t n)
{
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

void cap_pack_str(msgpack_packer *pk, const char *s) { cap_pack_strn(pk, s, strlen(s)); }

void cap_pack_header(msgpack_packer *pk, const char *kind, size_t n_extra)
{
	msgpack_pack_map(pk, 3 + n_extra);
	cap_pack_kv_str(pk, "format", "cap");
	cap_pack_kv_uint(pk, "version", CAP_STREAM_VERSION);
	cap_pack_kv_str(pk, "kind", kind);
}

void cap_pack_kv_str(msgpack_packer *pk, const char *key, const char *val)
{
	cap_pack_str(pk, key);
	cap_pack_str(pk, val);
}

void cap_pack_kv_uint(msgpack_packer *pk, const char *key, uint64_t val)
{
	cap_pack_str(pk, key);
	msgpack_pack_uint64(pk, val);
}

void cap_pack_kv_int(msgpack_packer *pk, const char *key, int64_t val)
{
	cap_pack_str(pk, key);
	msgpack_pack_int64(pk, val);
}

void cap_pack_kv_double(msgpack_packer *pk, const char *key, double val)
{
	cap_pack_str(pk, key);
	msgpack_pack_double(pk, val);
}

void cap_pack_f32_bin(msgpack_packer *pk, const float *x, size_t n)
{
	msgpack_pack_bin(pk, n * 4);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	msgpack_pack_bin_body(pk, x, n * 4);
#else
	for (size_t i = 0; i < n; i++) {
		uint32_t u;
		memcpy(&u, &x[i], 4);
		u = __builtin_bswap32(u);
		msgpack_pack_bin_body(pk, &u, 4);
	}
#endif
}

void cap_pack_u32_array(msgpack_packer *pk, const uint32_t *x, size_t n)
{
	msgpack_pack_array(pk, n);
	for (size_t i = 0; i < n; i++) msgpack_pack_uint32(pk, x[i]);
}

/* ------------------------------------------------------------------ reading */

struct cap_reader {
	char **paths;
	int npaths, cur;
	FILE *f;
	int at_eof;
	unsigned char *buf;
	size_t cap, start, end;     /* unconsumed bytes are buf[start..end) */
	uint64_t buf_off;           /* file offset of buf[0] */
	uint64_t rec_off, index;
	int have_record;
	unsigned char *hdr_bytes;   /* a private copy: header objects point into it */
	msgpack_unpacked hdr, obj;
	char *kind;
};

static const char *name_of(const char *p) { return strcmp(p, "-") == 0 ? "<stdin>" : p; }
const char *cap_reader_name(const cap_reader *r) { return name_of(r->paths[r->cur < r->npaths ? r->cur : r->npaths - 1]); }

/* Size of the msgpack object at p[0..n): 1 with *size when complete, 0 when more bytes are
 * needed, -1 when malformed or over the limits. Counts are checked against the record limit as
 * they are met (every element takes at least one byte), so no count is ever trusted. */
static int mp_extent(const unsigned char *p, size_t n, size_t *size)
{
	uint64_t stack[CAP_STREAM_MAX_DEPTH + 1];
	int top = 0;
	uint64_t pos = 0;
	stack[0] = 1;
	for (;;) {
		while (top >= 0 && stack[top] == 0) top--;
		if (top < 0) { *size = (size_t)pos; return 1; }
		stack[top]--;
		if (pos >= n) return 0;
		unsigned b = p[pos];
		uint64_t hlen = 1, plen = 0, push = 0;
		int lenbytes = 0, is_container = 0, pairs = 0;
		if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) hlen = 1;
		else if (b >= 0x80 && b <= 0x8f) { push = b & 0x0f; is_container = 1; pairs = 1; }
		else if (b >= 0x90 && b <= 0x9f) { push = b & 0x0f; is_container = 1; }
		else if (b >= 0xa0 && b <= 0xbf) plen = b & 0x1f;
		else switch (b) {
		case 0xc4: case 0xd9: lenbytes = 1; break;
		case 0xc5: case 0xda: lenbytes = 2; break;
		case 0xc6: case 0xdb: lenbytes = 4; break;
		case 0xc7: lenbytes = 1; plen = 1; break;   /* ext: + type byte */
		case 0xc8: lenbytes = 2; plen = 1; break;
		case 0xc9: lenbytes = 4; plen = 1; break;
		case 0xca: plen = 4; break;
		case 0xcb: plen = 8; break;
		case 0xcc: case 0xd0: plen = 1; break;
		case 0xcd: case 0xd1: plen = 2; break;
		case 0xce: case 0xd2: plen = 4; break;
		case 0xcf: case 0xd3: plen = 8; break;
		case 0xd4: plen = 2; break;
		case 0xd5: plen = 3; break;
		case 0xd6: plen = 5; break;
		case 0xd7: plen = 9; break;
		case 0xd8: plen = 17; break;
		case 0xdc: lenbytes = 2; is_container = 1; break;
		case 0xdd: lenbytes = 4; is_container = 1; break;
		case 0xde: lenbytes = 2; is_container = 1; pairs = 1; break;
		case 0xdf: lenbytes = 4; is_container = 1; pairs = 1; break;
		default:
			return cap_fail("byte 0x%02x at object offset %llu is not valid msgpack", b, (unsigned long long)pos);
		}
		if (lenbytes) {
			if (pos + 1 + (uint64_t)lenbytes > n) return 0;
			uint64_t len = 0;
			for (int i = 0; i < lenbytes; i++) len = (len << 8) | p[pos + 1 + i];
			hlen = 1 + (uint64_t)lenbytes;
			if (is_container) push = len; else plen += len;
		}
		if (is_container) {
			if (pairs) push *= 2;
			if (top + 1 > CAP_STREAM_MAX_DEPTH)
				return cap_fail("objects nested deeper than %d levels", CAP_STREAM_MAX_DEPTH);
			if (pos + hlen + push > CAP_STREAM_MAX_RECORD)
				return cap_fail("a container of %llu elements is larger than the %u-byte record limit",
				                (unsigned long long)push, CAP_STREAM_MAX_RECORD);
			stack[++top] = push;
		}
		pos += hlen + plen;
		if (pos > CAP_STREAM_MAX_RECORD)
			return cap_fail("an object is larger than the %u-byte record limit", CAP_STREAM_MAX_RECORD);
		if (pos > n) return 0;
	}
}

static int open_current(cap_reader *r)
{
	const char *p = r->paths[r->cur];
	if (r->f && r->f != stdin) fclose(r->f);
	r->f = NULL;
	if (strcmp(p, "-") == 0) r->f = stdin;
	else if (!(r->f = fopen(p, "rb"))) return cap_fail("%s: %s", p, strerror(errno));
	r->at_eof = 0;
	r->start = r->end = 0;
	r->buf_off = 0;
	return 0;
}

/* Reads more bytes of the current file into the buffer; 0 at EOF, -1 on error. */
static int fill(cap_reader *r)
{
	if (r->start > 0) {   /* compact: records handed out before are no longer valid */
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		r->buf_off += r->start;
		r->start = 0;
	}
	size_t want = r->end < 65536 ? 65536 : r->end;   /* doubling keeps re-scans linear */
	if (r->end + want > r->cap) {
		r->cap = r->end + want;
		r->buf = cap_xrealloc(r->buf, r->cap);
	}
	size_t got = fread(r->buf + r->end, 1, want, r->f);
	if (got == 0) {
		if (ferror(r->f)) return cap_fail("%s: read error: %s", cap_reader_name(r), strerror(errno));
		r->at_eof = 1;
		return 0;
	}
	r->end += got;
	return 1;
}

/* Next raw object of the current file: 1 and unpacked into *u, 0 at clean EOF, -1 on error. */
static int next_object(cap_reader *r, msgpack_unpacked *u, uint64_t *off, size_t *len)
{
	for (;;) {
		size_t size;
		int rc = r->end > r->start ? mp_extent(r->buf + r->start, r->end - r->start, &size) : 0;
		if (rc < 0)
			return cap_fail_prefix("%s: byte %llu", cap_reader_name(r),
			                       (unsigned long long)(r->buf_off + r->start));
		if (rc == 1) {
			size_t used = 0;
			*off = r->buf_off + r->start;
			msgpack_unpack_return ur = msgpack_unpack_next(u, (const char *)r->buf + r->start, size, &used);
			if (ur != MSGPACK_UNPACK_SUCCESS || used != size)
				return cap_fail("%s: byte %llu: msgpack-c could not decode the object (%d)",
				                cap_reader_name(r), (unsigned long long)*off, (int)ur);
			r->start += size;
			*len = size;
			return 1;
		}
		if (r->at_eof) {
			if (r->start == r->end) return 0;
			return cap_fail("%s: truncated: the stream ends inside an object that starts at byte %llu "
			                "(%zu bytes of it present)", cap_reader_name(r),
			                (unsigned long long)(r->buf_off + r->start), r->end - r->start);
		}
		if (fill(r) < 0) return -1;
	}
}

static int is_header(const msgpack_object *o)
{
	return o->type == MSGPACK_OBJECT_MAP && cap_obj_is_str(cap_map_get(o, "format"), "cap");
}

static int is_info_key(const msgpack_object *k)
{
	static const char *const info[] = CAP_STREAM_INFO_KEYS;
	for (int i = 0; info[i]; i++)
		if (cap_obj_is_str(k, info[i])) return 1;
	return 0;
}

/* Headers agree when every non-informational key has an equal value in the other. */
static int header_subset(const msgpack_object *a, const msgpack_object *b, const msgpack_object **diff)
{
	for (uint32_t i = 0; i < a->via.map.size; i++) {
		const msgpack_object *k = &a->via.map.ptr[i].key;
		if (k->type != MSGPACK_OBJECT_STR || is_info_key(k)) continue;
		char key[128];
		size_t n = k->via.str.size < sizeof key - 1 ? k->via.str.size : sizeof key - 1;
		memcpy(key, k->via.str.ptr, n);
		key[n] = 0;
		const msgpack_object *bv = cap_map_get(b, key);
		if (!bv || !cap_obj_equal(&a->via.map.ptr[i].val, bv)) { *diff = k; return 0; }
	}
	return 1;
}

static int check_header(cap_reader *r, const msgpack_object *h, uint64_t off, int first)
{
	const char *name = cap_reader_name(r);
	uint64_t version;
	if (cap_obj_uint(cap_map_get(h, "version"), &version))
		return cap_fail("%s: byte %llu: header has no version", name, (unsigned long long)off);
	if (version != CAP_STREAM_VERSION)
		return cap_fail("%s: byte %llu: stream version %llu, this cap reads version %d", name,
		                (unsigned long long)off, (unsigned long long)version, CAP_STREAM_VERSION);
	char *kind = cap_obj_strdup(cap_map_get(h, "kind"));
	if (!kind) return cap_fail("%s: byte %llu: header has no kind", name, (unsigned long long)off);
	if (first) {
		r->kind = kind;
		return 0;
	}
	const msgpack_object *diff = NULL;
	if (strcmp(kind, r->kind) != 0) {
		cap_fail("%s: byte %llu: a '%s' stream is concatenated to a '%s' stream", name,
		         (unsigned long long)off, kind, r->kind);
		free(kind);
		return -1;
	}
	free(kind);
	const msgpack_object *first_hdr = &r->hdr.data;
	if (!header_subset(first_hdr, h, &diff) || !header_subset(h, first_hdr, &diff))
		return cap_fail("%s: byte %llu: header incompatible with the first header of the stream "
		                "(key '%.*s' differs)", name, (unsigned long long)off,
		                (int)diff->via.str.size, diff->via.str.ptr);
	return 0;
}

/* Opens the current file and reads its header (every file of a list starts with one). */
static int start_file(cap_reader *r, int first)
{
	if (open_current(r)) return -1;
	uint64_t off;
	size_t len;
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	int rc = next_object(r, &u, &off, &len);
	if (rc == 0) cap_fail("%s: empty stream (no header)", cap_reader_name(r));
	if (rc <= 0) { msgpack_unpacked_destroy(&u); return -1; }
	if (!is_header(&u.data)) {
		msgpack_unpacked_destroy(&u);
		return cap_fail("%s: not a cap stream (the first object is not a header map with "
		                "\"format\": \"cap\")", cap_reader_name(r));
	}
	if (first) {
		/* Keep the first header for the reader's lifetime: unpack it again from a private copy. */
		msgpack_unpacked_destroy(&u);
		r->hdr_bytes = cap_xmalloc(len);
		memcpy(r->hdr_bytes, r->buf + r->start - len, len);
		size_t used = 0;
		msgpack_unpack_next(&r->hdr, (const char *)r->hdr_bytes, len, &used);
		return check_header(r, &r->hdr.data, off, 1);
	}
	rc = check_header(r, &u.data, off, 0);
	msgpack_unpacked_destroy(&u);
	return rc;
}

cap_reader *cap_reader_open(const char *const *paths, int n, const char *want_kind)
{
	static const char *const std_in[] = { "-" };
	if (n <= 0) { paths = std_in; n = 1; }
	cap_reader *r = cap_xcalloc(1, sizeof *r);
	r->paths = cap_xcalloc((size_t)n, sizeof *r->paths);
	for (int i = 0; i < n; i++) r->paths[i] = cap_xstrdup(paths[i]);
	r->npaths = n;
	msgpack_unpacked_init(&r->hdr);
	msgpack_unpacked_init(&r->obj);
	if (start_file(r, 1)) { cap_reader_close(r); return NULL; }
	if (want_kind && strcmp(r->kind, want_kind) != 0) {
		cap_fail("%s: expected a '%s' stream, got '%s'", cap_reader_name(r), want_kind, r->kind);
		cap_reader_close(r);
		return NULL;
	}
	return r;
}

void cap_reader_close(cap_reader *r)
{
	if (!r) return;
	if (r->f && r->f != stdin) fclose(r->f);
	for (int i = 0; i < r->npaths; i++) free(r->paths[i]);
	free(r->paths);
	free(r->buf);
	free(r->hdr_bytes);
	free(r->kind);
	msgpack_unpacked_destroy(&r->hdr);
	msgpack_unpacked_destroy(&r->obj);
	free(r);
}

const msgpack_object *cap_reader_header(const cap_reader *r) { return &r->hdr.data; }
const char *cap_reader_kind(const cap_reader *r) { return r->kind; }
uint64_t cap_reader_index(const cap_reader *r) { return r->have_record ? r->index - 1 : 0; }
uint64_t cap_reader_offset(const cap_reader *r) { return r->rec_off; }

int cap_reader_next(cap_reader *r, const msgpack_object **rec)
{
	for (;;) {
		if (r->cur >= r->npaths) return 0;
		uint64_t off;
		size_t len;
		int rc = next_object(r, &r->obj, &off, &len);
		if (rc < 0) return -1;
		if (rc == 0) {
			if (++r->cur >= r->npaths) return 0;
			if (start_file(r, 0)) return -1;
			continue;
		}
		if (is_header(&r->obj.data)) {
			if (check_header(r, &r->obj.data, off, 0)) return -1;
			continue;
		}
		r->rec_off = off;
		r->index++;
		r->have_record = 1;
		if (r->obj.data.type != MSGPACK_OBJECT_MAP)
			return cap_reader_fail(r, "expected a map, got msgpack type %d", (int)r->obj.data.type);
		*rec = &r->obj.data;
		return 1;
	}
}

int cap_reader_fail(const cap_reader *r, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return cap_fail("%s: record %llu (byte %llu): %s", cap_reader_name(r),
	                (unsigned long long)cap_reader_index(r), (unsigned long long)r->rec_off, msg);
}

/* ------------------------------------------------------------------ object helpers */

const msgpack_object *cap_map_get(const msgpack_object *map, const char *key)
{
	if (!map || map->type != MSGPACK_OBJECT_MAP) return NULL;
	size_t n = strlen(key);
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object *k = &map->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n && memcmp(k->via.str.ptr, key, n) == 0)
			return &map->via.map.ptr[i].val;
	}
	return NULL;
}

int cap_obj_is_str(const msgpack_object *o, const char *s)
{
	size_t n = strlen(s);
	return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == n && memcmp(o->via.str.ptr, s, n) == 0;
}

char *cap_obj_strdup(const msgpack_object *o)
{
	if (!o || o->type != MSGPACK_OBJECT_STR) return NULL;
	if (memchr(o->via.str.ptr, 0, o->via.str.size)) return NULL;
	char *s = cap_xmalloc(o->via.str.size + 1);
	memcpy(s, o->via.str.ptr, o->via.str.size);
	s[o->via.str.size] = 0;
	return s;
}

int cap_obj_uint(const msgpack_object *o, uint64_t *out)
{
	if (!o || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) return -1;
	*out = o->via.u64;
	return 0;
}

int cap_obj_int(const msgpack_object *o, int64_t *out)
{
	if (!o) return -1;
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) { *out = o->via.i64; return 0; }
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) { *out = (int64_t)o->via.u64; return 0; }
	return -1;
}

int cap_obj_double(const msgpack_object *o, double *out)
{
	if (!o) return -1;
	switch (o->type) {
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64: *out = o->via.f64; return 0;
	case MSGPACK_OBJECT_POSITIVE_INTEGER: *out = (double)o->via.u64; return 0;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER: *out = (double)o->via.i64; return 0;
	default: return -1;
	}
}

int cap_obj_equal(const msgpack_object *a, const msgpack_object *b)
{
	return msgpack_object_equal(*a, *b);
}

int cap_rec_str(const cap_reader *r, const msgpack_object *rec, const char *key, const char **s, size_t *len)
{
	const msgpack_object *o = cap_map_get(rec, key);
	if (!o || o->type != MSGPACK_OBJECT_STR) return cap_reader_fail(r, "expected a string '%s'", key);
	*s = o->via.str.ptr;
	*len = o->via.str.size;
	return 0;
}

int cap_rec_uint(const cap_reader *r, const msgpack_object *rec, const char *key, uint64_t *out)
{
	if (cap_obj_uint(cap_map_get(rec, key), out))
		return cap_reader_fail(r, "expected an unsigned integer '%s'", key);
	return 0;
}

int cap_rec_f32(const cap_reader *r, const msgpack_object *rec, const char *key, float *out, size_t n)
{
	const msgpack_object *o = cap_map_get(rec, key);
	if (!o || o->type != MSGPACK_OBJECT_BIN)
		return cap_reader_fail(r, "expected '%s' as bin of float32", key);
	if (o->via.bin.size != n * 4)
		return cap_reader_fail(r, "expected '%s' of %zu float32 (%zu bytes), got %u bytes", key, n, n * 4,
		                       o->via.bin.size);
	memcpy(out, o->via.bin.ptr, n * 4);   /* bin data is not aligned */
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
	for (size_t i = 0; i < n; i++) {
		uint32_t u;
		memcpy(&u, &out[i], 4);
		u = __builtin_bswap32(u);
		memcpy(&out[i], &u, 4);
	}
#endif
	return 0;
}

int cap_rec_u32_array(const cap_reader *r, const msgpack_object *rec, const char *key,
                      uint32_t **out, size_t *n, size_t max)
{
	const msgpack_object *o = cap_map_get(rec, key);
	if (!o || o->type != MSGPACK_OBJECT_ARRAY) return cap_reader_fail(r, "expected an array '%s'", key);
	if (o->via.array.size > max)
		return cap_reader_fail(r, "'%s' has %u elements, at most %zu allowed", key, o->via.array.size, max);
	uint32_t *v = cap_xmalloc((o->via.array.size ? o->via.array.size : 1) * sizeof *v);
	for (uint32_t i = 0; i < o->via.array.size; i++) {
		const msgpack_object *e = &o->via.array.ptr[i];
		if (e->type != MSGPACK_OBJECT_POSITIVE_INTEGER || e->via.u64 > UINT32_MAX) {
			free(v);
			return cap_reader_fail(r, "'%s'[%u] is not an unsigned 32-bit integer", key, i);
		}
		v[i] = (uint32_t)e->via.u64;
	}
	*out = v;
	*n = o->via.array.size;
	return 0;
}

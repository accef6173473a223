#include "io/mpjson.h"

#include <math.h>
#include <string.h>

/* Appends s as a JSON string, replacing invalid UTF-8 sequences with U+FFFD. */
static void append_text(cap_buf *b, const char *s, size_t n)
{
	cap_buf tmp = { 0 };
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		size_t len = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3
		           : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
		int valid = len > 0 && i + len <= n;
		for (size_t k = 1; valid && k < len; k++)
			if (((unsigned char)s[i + k] & 0xC0) != 0x80) valid = 0;
		if (valid && len == 3) {
			unsigned c1 = (unsigned char)s[i + 1];
			if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0)) valid = 0;  /* overlong, surrogate */
		}
		if (valid && len == 4) {
			unsigned c1 = (unsigned char)s[i + 1];
			if ((c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 >= 0x90)) valid = 0;
		}
		if (valid) { cap_buf_add(&tmp, s + i, len); i += len; }
		else { cap_buf_add(&tmp, "\xEF\xBF\xBD", 3); i++; }
	}
	cap_buf_json_string(b, tmp.data ? tmp.data : "", tmp.len);
	cap_buf_free(&tmp);
}

static float f32_at(const char *p, size_t i)
{
	float v;
	memcpy(&v, p + 4 * i, 4);
	return v;
}

static void append_bin(cap_buf *b, const msgpack_object_bin *bin, const cap_mpjson_opts *opts)
{
	if (bin->size % 4 != 0) {
		cap_buf_printf(b, "{\"bin_bytes\":%u}", bin->size);
		return;
	}
	size_t n = bin->size / 4;
	if (opts->full) {
		cap_buf_addc(b, '[');
		for (size_t i = 0; i < n; i++) {
			if (i) cap_buf_addc(b, ',');
			cap_buf_json_f32(b, f32_at(bin->ptr, i));
		}
		cap_buf_addc(b, ']');
		return;
	}
	double mn = INFINITY, mx = -INFINITY, sum = 0;
	for (size_t i = 0; i < n; i++) {
		double v = f32_at(bin->ptr, i);
		if (v < mn) mn = v;
		if (v > mx) mx = v;
		sum += v;
	}
	cap_buf_printf(b, "{\"dtype\":\"float32\",\"n\":%zu,\"head\":[", n);
	for (size_t i = 0; i < n && i < 4; i++) {
		if (i) cap_buf_addc(b, ',');
		cap_buf_json_f32(b, f32_at(bin->ptr, i));
	}
	cap_buf_adds(b, "]");
	if (n) {
		cap_buf_adds(b, ",\"min\":");
		cap_buf_json_f32(b, (float)mn);
		cap_buf_adds(b, ",\"max\":");
		cap_buf_json_f32(b, (float)mx);
		cap_buf_adds(b, ",\"mean\":");
		cap_buf_json_float(b, sum / (double)n);
	}
	cap_buf_addc(b, '}');
}

/* in_key: o is (inside) a map key that is not a string, printed as its JSON text in quotes.
 * Such a key inside it that is itself an array or a map is only summarised: escaping JSON text
 * inside JSON text inside ... doubles the backslashes at each level, so a 2 kB record of nested
 * keys would otherwise print as gigabytes. */
static void mpjson(cap_buf *b, const msgpack_object *o, const cap_mpjson_opts *opts, int in_key)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL: cap_buf_adds(b, "null"); break;
	case MSGPACK_OBJECT_BOOLEAN: cap_buf_adds(b, o->via.boolean ? "true" : "false"); break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER: cap_buf_printf(b, "%llu", (unsigned long long)o->via.u64); break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER: cap_buf_printf(b, "%lld", (long long)o->via.i64); break;
	case MSGPACK_OBJECT_FLOAT32: cap_buf_json_f32(b, (float)o->via.f64); break;
	case MSGPACK_OBJECT_FLOAT64: cap_buf_json_float(b, o->via.f64); break;
	case MSGPACK_OBJECT_STR:
		if (!opts->full && opts->max_string && o->via.str.size > opts->max_string) {
			cap_buf tmp = { 0 };
			append_text(&tmp, o->via.str.ptr, opts->max_string);
			/* drop the closing quote, say how long the whole string is */
			tmp.len--;
			cap_buf_add(b, tmp.data, tmp.len);
			cap_buf_printf(b, "... (%u bytes; --full shows all)\"", o->via.str.size);
			cap_buf_free(&tmp);
		} else {
			append_text(b, o->via.str.ptr, o->via.str.size);
		}
		break;
	case MSGPACK_OBJECT_BIN: append_bin(b, &o->via.bin, opts); break;
	case MSGPACK_OBJECT_EXT: cap_buf_printf(b, "{\"ext\":%d,\"bytes\":%u}", o->via.ext.type, o->via.ext.size); break;
	case MSGPACK_OBJECT_ARRAY:
		cap_buf_addc(b, '[');
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			if (i) cap_buf_addc(b, ',');
			mpjson(b, &o->via.array.ptr[i], opts, in_key);
		}
		cap_buf_addc(b, ']');
		break;
	case MSGPACK_OBJECT_MAP:
		cap_buf_addc(b, '{');
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			const msgpack_object *k = &o->via.map.ptr[i].key;
			if (i) cap_buf_addc(b, ',');
			if (k->type == MSGPACK_OBJECT_STR) {
				append_text(b, k->via.str.ptr, k->via.str.size);
			} else if (in_key && (k->type == MSGPACK_OBJECT_ARRAY || k->type == MSGPACK_OBJECT_MAP)) {
				cap_buf_printf(b, "\"<%s of %u>\"", k->type == MSGPACK_OBJECT_MAP ? "map" : "array",
				               k->type == MSGPACK_OBJECT_MAP ? k->via.map.size : k->via.array.size);
			} else {   /* JSON keys are strings: print other keys as their JSON text, quoted */
				cap_buf kb = { 0 };
				mpjson(&kb, k, opts, 1);
				cap_buf_json_string(b, kb.data ? kb.data : "", kb.len);
				cap_buf_free(&kb);
			}
			cap_buf_addc(b, ':');
			mpjson(b, &o->via.map.ptr[i].val, opts, in_key);
		}
		cap_buf_addc(b, '}');
		break;
	}
}

void cap_mpjson_append(cap_buf *b, const msgpack_object *o, const cap_mpjson_opts *opts)
{
	mpjson(b, o, opts, 0);
}

#include "core/json.h"
#include "core/error.h"

#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <stdio.h>

typedef struct parser {
	const char *s, *end, *p;
	int depth;
} parser;

static int fail_at(const parser *ps, const char *what)
{
	size_t line = 1, col = 1;
	for (const char *q = ps->s; q < ps->p && q < ps->end; q++) {
		if (*q == '\n') { line++; col = 1; } else col++;
	}
	return cap_fail("line %zu, column %zu: %s", line, col, what);
}

static void skip_ws(parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static cap_json *new_node(cap_json_type t)
{
	cap_json *j = cap_xcalloc(1, sizeof *j);
	j->type = t;
	return j;
}

void cap_json_free(cap_json *j)
{
	if (!j) return;
	for (size_t i = 0; i < j->n; i++) {
		cap_json_free(j->items[i]);
		if (j->keys) free(j->keys[i]);
	}
	free(j->items);
	free(j->keys);
	free(j->key_lens);
	free(j->str);
	free(j);
}

static int hex4(const char *p, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
		else return -1;
	}
	*out = v;
	return 0;
}

static void put_utf8(char **o, unsigned cp)
{
	unsigned char *u = (unsigned char *)*o;
	if (cp < 0x80) { *u++ = (unsigned char)cp; }
	else if (cp < 0x800) { *u++ = (unsigned char)(0xC0 | (cp >> 6)); *u++ = (unsigned char)(0x80 | (cp & 0x3F)); }
	else if (cp < 0x10000) {
		*u++ = (unsigned char)(0xE0 | (cp >> 12)); *u++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		*u++ = (unsigned char)(0x80 | (cp & 0x3F));
	} else {
		*u++ = (unsigned char)(0xF0 | (cp >> 18)); *u++ = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
		*u++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)); *u++ = (unsigned char)(0x80 | (cp & 0x3F));
	}
	*o = (char *)u;
}

/* Length of the valid UTF-8 sequence at p (1-4), or 0 when invalid (overlong, surrogate, >U+10FFFF). */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
	unsigned c = p[0];
	size_t n;
	unsigned cp;
	if (c < 0x80) return 1;
	if (c >= 0xC2 && c <= 0xDF) { n = 2; cp = c & 0x1F; }
	else if (c >= 0xE0 && c <= 0xEF) { n = 3; cp = c & 0x0F; }
	else if (c >= 0xF0 && c <= 0xF4) { n = 4; cp = c & 0x07; }
	else return 0;
	if ((size_t)(end - p) < n) return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80) return 0;
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
	if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
	return n;
}

/* Parses a string literal at ps->p (which is at the opening quote). */
static int parse_string(parser *ps, char **out, size_t *outlen)
{
	ps->p++;
	const char *start = ps->p;
	/* The decoded string is never longer than the literal. */
	const char *q = start;
	while (q < ps->end && *q != '"') {
		if (*q == '\\') q++;
		q++;
	}
	if (q >= ps->end) return fail_at(ps, "unterminated string");
	char *buf = cap_xmalloc((size_t)(q - start) + 1), *o = buf;
	while (ps->p < ps->end) {
		unsigned char c = (unsigned char)*ps->p;
		if (c == '"') {
			ps->p++;
			*o = 0;
			*out = buf;
			*outlen = (size_t)(o - buf);
			return 0;
		}
		if (c < 0x20) { free(buf); return fail_at(ps, "control character in string"); }
		if (c == '\\') {
			if (ps->end - ps->p < 2) break;
			char e = ps->p[1];
			ps->p += 2;
			switch (e) {
			case '"': *o++ = '"'; break;
			case '\\': *o++ = '\\'; break;
			case '/': *o++ = '/'; break;
			case 'b': *o++ = '\b'; break;
			case 'f': *o++ = '\f'; break;
			case 'n': *o++ = '\n'; break;
			case 'r': *o++ = '\r'; break;
			case 't': *o++ = '\t'; break;
			case 'u': {
				unsigned cp, lo;
				if (ps->end - ps->p < 4 || hex4(ps->p, &cp)) { free(buf); return fail_at(ps, "bad \\u escape"); }
				ps->p += 4;
				if (cp >= 0xDC00 && cp <= 0xDFFF) { free(buf); return fail_at(ps, "lone low surrogate in \\u escape"); }
				if (cp >= 0xD800 && cp <= 0xDBFF) {
					if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u' || hex4(ps->p + 2, &lo) ||
					    lo < 0xDC00 || lo > 0xDFFF) {
						free(buf);
						return fail_at(ps, "lone high surrogate in \\u escape");
					}
					ps->p += 6;
					cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				}
				/* A \u escape is 6+ bytes and encodes to at most 4 (or 12 -> 4 for pairs). */
				put_utf8(&o, cp);
				break;
			}
			default: free(buf); ps->p--; return fail_at(ps, "bad escape in string");
			}
			continue;
		}
		size_t n = utf8_seq((const unsigned char *)ps->p, (const unsigned char *)ps->end);
		if (!n) { free(buf); return fail_at(ps, "invalid UTF-8 in string"); }
		memcpy(o, ps->p, n);
		o += n;
		ps->p += n;
	}
	free(buf);
	return fail_at(ps, "unterminated string");
}

static int parse_value(parser *ps, cap_json **out);

static int parse_number(parser *ps, cap_json **out)
{
	const char *p = ps->p, *start = p;
	int is_uint = 1;
	if (p < ps->end && *p == '-') { p++; is_uint = 0; }
	if (p >= ps->end) return fail_at(ps, "bad number");
	if (*p == '0') p++;
	else if (*p >= '1' && *p <= '9') while (p < ps->end && *p >= '0' && *p <= '9') p++;
	else return fail_at(ps, "bad number");
	if (p < ps->end && *p == '.') {
		is_uint = 0;
		p++;
		if (p >= ps->end || *p < '0' || *p > '9') return fail_at(ps, "bad number");
		while (p < ps->end && *p >= '0' && *p <= '9') p++;
	}
	if (p < ps->end && (*p == 'e' || *p == 'E')) {
		is_uint = 0;
		p++;
		if (p < ps->end && (*p == '+' || *p == '-')) p++;
		if (p >= ps->end || *p < '0' || *p > '9') return fail_at(ps, "bad number");
		while (p < ps->end && *p >= '0' && *p <= '9') p++;
	}
	char tmp[64];
	size_t n = (size_t)(p - start);
	cap_json *j = new_node(CAP_JSON_NUMBER);
	if (n < sizeof tmp) {
		memcpy(tmp, start, n);
		tmp[n] = 0;
		j->number = strtod(tmp, NULL);
	} else {
		char *big = cap_xmalloc(n + 1);
		memcpy(big, start, n);
		big[n] = 0;
		j->number = strtod(big, NULL);
		free(big);
	}
	if (is_uint) {
		uint64_t v = 0;
		int overflow = 0;
		for (const char *q = start; q < p; q++) {
			if (v > (UINT64_MAX - (uint64_t)(*q - '0')) / 10) { overflow = 1; break; }
			v = v * 10 + (uint64_t)(*q - '0');
		}
		if (!overflow) { j->is_uint = 1; j->uint = v; }
	}
	ps->p = p;
	*out = j;
	return 0;
}

static int has_key(const cap_json *obj, const char *key, size_t len)
{
	for (size_t i = 0; i < obj->n; i++)
		if (obj->key_lens[i] == len && memcmp(obj->keys[i], key, len) == 0) return 1;
	return 0;
}

/* Duplicate keys in big objects (a vocabulary) are found by sorting a copy, to stay O(n log n). */
typedef struct { const char *k; size_t n; } keyref;
static int cmp_key(const void *a, const void *b)
{
	const keyref *x = a, *y = b;
	size_t m = x->n < y->n ? x->n : y->n;
	int c = memcmp(x->k, y->k, m);
	return c ? c : (x->n > y->n) - (x->n < y->n);
}

static int check_dup_keys_sorted(parser *ps, const cap_json *obj)
{
	keyref *r = cap_xmalloc(obj->n * sizeof *r);
	for (size_t i = 0; i < obj->n; i++) { r[i].k = obj->keys[i]; r[i].n = obj->key_lens[i]; }
	qsort(r, obj->n, sizeof *r, cmp_key);
	for (size_t i = 1; i < obj->n; i++)
		if (cmp_key(&r[i - 1], &r[i]) == 0) {
			char msg[160];
			snprintf(msg, sizeof msg, "duplicate key \"%.100s\" in object", r[i].k);
			free(r);
			return fail_at(ps, msg);
		}
	free(r);
	return 0;
}

static void push_item(cap_json *j, size_t *cap, cap_json *v, char *key, size_t keylen)
{
	if (j->n == *cap) {
		*cap = *cap ? *cap * 2 : 8;
		j->items = cap_xrealloc(j->items, *cap * sizeof *j->items);
		if (j->type == CAP_JSON_OBJECT) {
			j->keys = cap_xrealloc(j->keys, *cap * sizeof *j->keys);
			j->key_lens = cap_xrealloc(j->key_lens, *cap * sizeof *j->key_lens);
		}
	}
	if (j->type == CAP_JSON_OBJECT) { j->keys[j->n] = key; j->key_lens[j->n] = keylen; }
	j->items[j->n++] = v;
}

#define SMALL_OBJECT 32

static int parse_container(parser *ps, cap_json **out, int object)
{
	if (++ps->depth > CAP_JSON_MAX_DEPTH) return fail_at(ps, "nesting too deep");
	cap_json *j = new_node(object ? CAP_JSON_OBJECT : CAP_JSON_ARRAY);
	size_t cap = 0;
	char close = object ? '}' : ']';
	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == close) { ps->p++; goto done; }
	for (;;) {
		char *key = NULL;
		size_t keylen = 0;
		skip_ws(ps);
		if (object) {
			if (ps->p >= ps->end || *ps->p != '"') { fail_at(ps, "expected a string key"); goto bad; }
			if (parse_string(ps, &key, &keylen)) goto bad;
			if (j->n < SMALL_OBJECT && has_key(j, key, keylen)) {
				char msg[160];
				snprintf(msg, sizeof msg, "duplicate key \"%.100s\" in object", key);
				free(key);
				fail_at(ps, msg);
				goto bad;
			}
			skip_ws(ps);
			if (ps->p >= ps->end || *ps->p != ':') { free(key); fail_at(ps, "expected ':'"); goto bad; }
			ps->p++;
		}
		cap_json *v;
		if (parse_value(ps, &v)) { free(key); goto bad; }
		push_item(j, &cap, v, key, keylen);
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') { ps->p++; continue; }
		if (ps->p < ps->end && *ps->p == close) { ps->p++; break; }
		fail_at(ps, object ? "expected ',' or '}'" : "expected ',' or ']'");
		goto bad;
	}
	if (object && j->n >= SMALL_OBJECT && check_dup_keys_sorted(ps, j)) goto bad;
done:
	ps->depth--;
	*out = j;
	return 0;
bad:
	cap_json_free(j);
	return -1;
}

static int parse_value(parser *ps, cap_json **out)
{
	skip_ws(ps);
	if (ps->p >= ps->end) return fail_at(ps, "unexpected end of input");
	switch (*ps->p) {
	case '{': return parse_container(ps, out, 1);
	case '[': return parse_container(ps, out, 0);
	case '"': {
		cap_json *j = new_node(CAP_JSON_STRING);
		if (parse_string(ps, &j->str, &j->len)) { free(j); return -1; }
		*out = j;
		return 0;
	}
	case 't':
	case 'f':
	case 'n': {
		static const struct { const char *w; cap_json_type t; int b; } lit[] = {
			{ "true", CAP_JSON_BOOL, 1 }, { "false", CAP_JSON_BOOL, 0 }, { "null", CAP_JSON_NULL, 0 } };
		for (size_t i = 0; i < 3; i++) {
			size_t n = strlen(lit[i].w);
			if ((size_t)(ps->end - ps->p) >= n && memcmp(ps->p, lit[i].w, n) == 0) {
				cap_json *j = new_node(lit[i].t);
				j->boolean = lit[i].b;
				ps->p += n;
				*out = j;
				return 0;
			}
		}
		return fail_at(ps, "unexpected word");
	}
	default:
		if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9')) return parse_number(ps, out);
		return fail_at(ps, "unexpected character");
	}
}

cap_json *cap_json_parse(const char *text, size_t len)
{
	parser ps = { text, text + len, text, 0 };
	cap_json *j;
	/* A UTF-8 byte order mark is tolerated, as many editors write one. */
	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) ps.p += 3;
	if (parse_value(&ps, &j)) return NULL;
	skip_ws(&ps);
	if (ps.p != ps.end) {
		cap_json_free(j);
		fail_at(&ps, "trailing characters after the JSON value");
		return NULL;
	}
	return j;
}

const cap_json *cap_json_get(const cap_json *j, const char *key)
{
	if (!j || j->type != CAP_JSON_OBJECT) return NULL;
	size_t len = strlen(key);
	for (size_t i = 0; i < j->n; i++)
		if (j->key_lens[i] == len && memcmp(j->keys[i], key, len) == 0) return j->items[i];
	return NULL;
}

const char *cap_json_get_str(const cap_json *j, const char *key)
{
	const cap_json *v = cap_json_get(j, key);
	return v && v->type == CAP_JSON_STRING ? v->str : NULL;
}

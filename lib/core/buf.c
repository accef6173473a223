#include "core/buf.h"
#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

static void reserve(cap_buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;
	if (need <= b->cap) return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need) cap *= 2;
	b->data = cap_xrealloc(b->data, cap);
	b->cap = cap;
}

void cap_buf_add(cap_buf *b, const void *data, size_t n)
{
	reserve(b, n);
	if (n) memcpy(b->data + b->len, data, n);
	b->len += n;
	b->data[b->len] = 0;
}

void cap_buf_addc(cap_buf *b, char c) { cap_buf_add(b, &c, 1); }
void cap_buf_adds(cap_buf *b, const char *s) { cap_buf_add(b, s, strlen(s)); }

void cap_buf_printf(cap_buf *b, const char *fmt, ...)
{
	va_list ap, ap2;
	va_start(ap, fmt);
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) { va_end(ap2); return; }
	reserve(b, (size_t)n);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
	va_end(ap2);
	b->len += (size_t)n;
}

void cap_buf_json_string(cap_buf *b, const char *s, size_t n)
{
	cap_buf_addc(b, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '"': cap_buf_add(b, "\\\"", 2); break;
		case '\\': cap_buf_add(b, "\\\\", 2); break;
		case '\n': cap_buf_add(b, "\\n", 2); break;
		case '\r': cap_buf_add(b, "\\r", 2); break;
		case '\t': cap_buf_add(b, "\\t", 2); break;
		case '\b': cap_buf_add(b, "\\b", 2); break;
		case '\f': cap_buf_add(b, "\\f", 2); break;
		default:
			if (c < 0x20) cap_buf_printf(b, "\\u%04x", c);
			else cap_buf_addc(b, (char)c);
		}
	}
	cap_buf_addc(b, '"');
}

void cap_buf_json_float(cap_buf *b, double v)
{
	if (!isfinite(v)) { cap_buf_adds(b, "null"); return; }
	if (v == 0 && signbit(v)) { cap_buf_adds(b, "-0.0"); return; }
	char tmp[40];
	for (int prec = 6; prec <= 17; prec++) {
		snprintf(tmp, sizeof tmp, "%.*g", prec, v);
		if (strtod(tmp, NULL) == v) break;
	}
	cap_buf_adds(b, tmp);
}

void cap_buf_json_f32(cap_buf *b, float v)
{
	if (!isfinite(v)) { cap_buf_adds(b, "null"); return; }
	if (v == 0 && signbit(v)) { cap_buf_adds(b, "-0.0"); return; }   /* "-0" reads back as integer 0 */
	char tmp[40];
	for (int prec = 6; prec <= 9; prec++) {
		snprintf(tmp, sizeof tmp, "%.*g", prec, (double)v);
		if (strtof(tmp, NULL) == v) break;
	}
	cap_buf_adds(b, tmp);
}

void cap_buf_reset(cap_buf *b) { b->len = 0; if (b->data) b->data[0] = 0; }

void cap_buf_free(cap_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

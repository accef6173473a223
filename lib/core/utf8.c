#include "core/utf8.h"

#include <string.h>

int cap_utf8_check(const char *str, size_t n, size_t *bad)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		if (c < 0x80) {  /* skip ASCII eight bytes at a time where aligned runs allow */
			i++;
			while (i + 8 <= n) {
				uint64_t w;
				memcpy(&w, s + i, 8);
				if (w & 0x8080808080808080ull) break;
				i += 8;
			}
			continue;
		}
		size_t len;
		uint32_t cp, min;
		if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; min = 0x80; }
		else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; min = 0x800; }
		else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; min = 0x10000; }
		else goto fail;  /* continuation byte, C0/C1 overlong lead, or F5..FF */
		if (n - i < len) goto fail;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xC0) != 0x80) goto fail;
			cp = cp << 6 | (s[i + k] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) goto fail;
		i += len;
	}
	return 0;
fail:
	if (bad) *bad = i;
	return -1;
}

uint32_t cap_utf8_next(const char *str, size_t *i)
{
	const unsigned char *s = (const unsigned char *)str + *i;
	if (s[0] < 0x80) { *i += 1; return s[0]; }
	if (s[0] < 0xE0) { *i += 2; return (uint32_t)(s[0] & 0x1F) << 6 | (s[1] & 0x3F); }
	if (s[0] < 0xF0) {
		*i += 3;
		return (uint32_t)(s[0] & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
	}
	*i += 4;
	return (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 |
	       (uint32_t)(s[2] & 0x3F) << 6 | (s[3] & 0x3F);
}

size_t cap_utf8_put(uint32_t cp, char out[4])
{
	if (cp < 0x80) { out[0] = (char)cp; return 1; }
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | cp >> 12);
		out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | cp >> 18);
	out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
	out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* Binary search in sorted, disjoint [lo, hi] ranges. */
static int in_ranges(const uint32_t (*r)[2], size_t n, uint32_t cp)
{
	size_t a = 0, b = n;
	while (a < b) {
		size_t m = a + (b - a) / 2;
		if (cp < r[m][0]) b = m;
		else if (cp > r[m][1]) a = m + 1;
		else return 1;
	}
	return 0;
}

int cap_uni_is_word(uint32_t cp)
{
	if (cp < 0x80)  /* the common case, without the search */
		return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') ||
		       (cp >= 'A' && cp <= 'Z') || cp == '_';
	return in_ranges(cap_uni_word_ranges, cap_uni_word_ranges_n, cp);
}

int cap_uni_is_space(uint32_t cp)
{
	if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D);
	return in_ranges(cap_uni_space_ranges, cap_uni_space_ranges_n, cp);
}

size_t cap_uni_lower(uint32_t cp, uint32_t out[3])
{
	if (cp < 0x80) {
		out[0] = cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
		return 1;
	}
	for (size_t k = 0; k < cap_uni_lower_multi_n; k++)
		if (cap_uni_lower_multi[k].cp == cp) {
			for (int32_t j = 0; j < cap_uni_lower_multi[k].n; j++)
				out[j] = cap_uni_lower_multi[k].to[j];
			return (size_t)cap_uni_lower_multi[k].n;
		}
	/* The last run starting at or before cp. */
	size_t a = 0, b = cap_uni_lower_runs_n;
	while (a < b) {
		size_t m = a + (b - a) / 2;
		if (cap_uni_lower_runs[m].lo <= cp) a = m + 1;
		else b = m;
	}
	out[0] = cp;
	if (a > 0) {
		const struct cap_uni_lower_run *r = &cap_uni_lower_runs[a - 1];
		if (cp <= r->hi && (cp - r->lo) % (uint32_t)r->stride == 0)
			out[0] = (uint32_t)((int64_t)cp + r->delta);
	}
	return 1;
}

#include "core/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char errbuf[1024];

int cap_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof errbuf, fmt, ap);
	va_end(ap);
	return -1;
}

int cap_fail_prefix(const char *fmt, ...)
{
	char prefix[512], old[sizeof errbuf];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	memcpy(old, errbuf, sizeof old);
	/* Prefix first, then as much of the old message as fits (it may be cut, never overrun). */
	size_t n = strlen(prefix);
	if (n > sizeof errbuf - 3) n = sizeof errbuf - 3;
	memcpy(errbuf, prefix, n);
	memcpy(errbuf + n, ": ", 2);
	size_t room = sizeof errbuf - n - 3, m = strlen(old);
	if (m > room) m = room;
	memcpy(errbuf + n + 2, old, m);
	errbuf[n + 2 + m] = 0;
	return -1;
}

const char *cap_errmsg(void) { return errbuf; }

void cap_out_of_memory(size_t n)
{
	fprintf(stderr, "%s: out of memory allocating %zu bytes\n", program_invocation_short_name, n);
	abort();
}

void *cap_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) cap_out_of_memory(n);
	return p;
}

void *cap_xcalloc(size_t count, size_t size)
{
	void *p = calloc(count ? count : 1, size ? size : 1);
	if (!p) cap_out_of_memory(count * size);
	return p;
}

void *cap_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q) cap_out_of_memory(n);
	return q;
}

char *cap_xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	return memcpy(cap_xmalloc(n), s, n);
}

int cap_mul_overflow(size_t a, size_t b, size_t *out)
{
	return __builtin_mul_overflow(a, b, out) ? -1 : 0;
}

/* Processor features through CPUID (see cpu.h). */
#include "core/cpu.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

static _Atomic int detected = -1;   /* -1: not yet; racing first calls compute the same value */
static _Atomic int portable;

static unsigned detect(void)
{
	unsigned f = 0;
#if defined(__x86_64__) || defined(__i386__)
	unsigned a, b, c, d;
	if (__get_cpuid(1, &a, &b, &c, &d)) {
		if (c & bit_SSE4_1)
			f |= CAP_CPU_SSE41;
		int ssse3 = (c & bit_SSSE3) != 0;
		if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
			if (((b >> 29) & 1) && ssse3 && (f & CAP_CPU_SSE41))
				f |= CAP_CPU_SHA;
			if (__builtin_cpu_supports("avx512f"))
				f |= CAP_CPU_AVX512F;
			if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
				f |= CAP_CPU_AVX2;
			unsigned a1, b1, c1, d1;
			if ((f & CAP_CPU_AVX512F) && __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1) && ((a1 >> 5) & 1))
				f |= CAP_CPU_AVX512BF16;
		}
	}
#endif
	return f;
}

/* CAP_CPU_OFF: a comma-separated list of features to take as absent (the names of
 * cap_cpu_describe), to try a slower processor's paths and refusals on a faster one. */
static unsigned turned_off(void)
{
	static const struct { const char *name; unsigned bit; } names[] = {
		{ "sse4.1", CAP_CPU_SSE41 }, { "sha", CAP_CPU_SHA }, { "avx512f", CAP_CPU_AVX512F },
		{ "avx512bf16", CAP_CPU_AVX512BF16 }, { "avx2", CAP_CPU_AVX2 },
	};
	const char *e = getenv("CAP_CPU_OFF");
	unsigned off = 0;
	while (e && *e) {
		size_t n = strcspn(e, ",");
		for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
			if (strlen(names[i].name) == n && !strncmp(e, names[i].name, n))
				off |= names[i].bit;
		e += n + (e[n] == ',');
	}
	/* what needs AVX-512F goes with it */
	if (off & CAP_CPU_AVX512F)
		off |= CAP_CPU_AVX512BF16;
	return off;
}

unsigned cap_cpu_features(void)
{
	if (detected < 0)
		detected = (int)(detect() & ~turned_off());
	return portable ? 0 : (unsigned)detected;
}

int cap_cpu_set_portable(int on)
{
	int prev = portable;
	portable = on != 0;
	return prev;
}

const char *cap_cpu_describe(void)
{
	static char buf[64];
	unsigned f = cap_cpu_features();
	snprintf(buf, sizeof buf, "%s%s%s%s%s", f & CAP_CPU_SSE41 ? "sse4.1 " : "", f & CAP_CPU_SHA ? "sha " : "",
	         f & CAP_CPU_AVX2 ? "avx2 " : "", f & CAP_CPU_AVX512F ? "avx512f " : "",
	         f & CAP_CPU_AVX512BF16 ? "avx512bf16 " : "");
	size_t n = strlen(buf);
	if (n)
		buf[n - 1] = 0;
	else
		snprintf(buf, sizeof buf, "portable");
	return buf;
}

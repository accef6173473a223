#include "core/cli.h"

#include <err.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static _Noreturn void usage_exit(void)
{
	fprintf(stderr, "Try '%s --help'.\n", program_invocation_short_name);
	exit(2);
}

long long cap_opt_int(const char *opt, const char *s, long long lo, long long hi)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		warnx("--%s: expected an integer in %lld..%lld, got '%s'", opt, lo, hi, s);
		usage_exit();
	}
	return v;
}

double cap_opt_num(const char *opt, const char *s, double lo, double hi)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= lo && v <= hi)) {
		warnx("--%s: expected a number in [%g, %g], got '%s'", opt, lo, hi, s);
		usage_exit();
	}
	return v;
}

double cap_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

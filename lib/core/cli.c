#include "core/cli.h"

#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int cap_getopt(int argc, char *const argv[], const char *shortopts, const struct option *longopts)
{
	char opts[128];
	/* ':' first: a missing value returns ':' instead of '?'; opterr 0: we say it ourselves */
	if (snprintf(opts, sizeof opts, ":%sh", shortopts) >= (int)sizeof opts) {
		warnx("internal: option string too long");
		exit(2);
	}
	opterr = 0;
	int c = getopt_long(argc, argv, opts, longopts, NULL);
	if (c == 'h') {
		for (const struct option *o = longopts; o && o->name; o++)
			if (strcmp(o->name, "help") == 0 && !o->flag) return o->val;
		return 'h';
	}
	if (c != '?' && c != ':') return c;
	/* The token being parsed. After a missing value or an unknown long option getopt has moved
	 * past it; an unknown short option may sit inside a cluster ("-xB"), so optopt names it. */
	const char *tok = optind > 0 && optind <= argc ? argv[optind - 1] : "";
	int is_long = strncmp(tok, "--", 2) == 0;
	size_t nlen = is_long ? strcspn(tok + 2, "=") : 0;
	if (c == ':') {
		warnx("option '%.*s' needs a value", (int)strcspn(tok, "="), tok);
	} else if (optopt == 0 && is_long) {
		/* unknown, or a prefix of several long options */
		char names[200] = "";
		int n = 0;
		for (const struct option *o = longopts; o && o->name; o++)
			if (strncmp(o->name, tok + 2, nlen) == 0 && n++ < 4)
				snprintf(names + strlen(names), sizeof names - strlen(names), "%s--%s",
				         n > 1 ? ", " : "", o->name);
		if (n > 1) warnx("ambiguous option '--%.*s' (%s%s)", (int)nlen, tok + 2, names, n > 4 ? ", ..." : "");
		else warnx("unknown option '--%.*s'", (int)nlen, tok + 2);
	} else if (is_long && tok[2 + nlen] == '=') {
		warnx("option '--%.*s' takes no value", (int)nlen, tok + 2);
	} else if (optopt > 0 && optopt < 128) {
		warnx("unknown option '-%c'", optopt);
	} else {
		warnx("unknown option '%s'", tok);
	}
	usage_exit();
}

double cap_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* What every tool's command line needs: numeric option values checked against their range
 * (a bad value is a usage error: message, exit status 2), and a monotonic clock for progress. */
#ifndef CAP_CLI_H
#define CAP_CLI_H

/* The integer in s, within [lo, hi]; otherwise prints "PROG: --opt: expected an integer in
 * lo..hi, got 's'" and a pointer to --help, and exits 2. opt is the name without dashes. */
long long cap_opt_int(const char *opt, const char *s, long long lo, long long hi);
/* The same for a real number within [lo, hi] (NaN is refused). */
double cap_opt_num(const char *opt, const char *s, double lo, double hi);
/* Seconds on a monotonic clock. */
double cap_now(void);
#endif

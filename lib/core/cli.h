/* What every tool's command line needs: options parsed alike, numeric option values checked
 * against their range (a bad value is a usage error: message, exit status 2), and a monotonic
 * clock for progress. */
#ifndef CAP_CLI_H
#define CAP_CLI_H

/* The integer in s, within [lo, hi]; otherwise prints "PROG: --opt: expected an integer in
 * lo..hi, got 's'" and a pointer to --help, and exits 2. opt is the name without dashes. */
long long cap_opt_int(const char *opt, const char *s, long long lo, long long hi);
/* The same for a real number within [lo, hi] (NaN is refused). */
double cap_opt_num(const char *opt, const char *s, double lo, double hi);
/* getopt_long with the tools' shared conventions: -h means --help (it returns the val of the
 * "help" entry of longopts), and an unknown option or a missing value is a usage error
 * answered like a bad value: "PROG: unknown option '--x'" and a pointer to --help, exit 2.
 * PROG is the tool's name, never its path. shortopts as getopt's, without 'h' or a leading ':'. */
struct option;
int cap_getopt(int argc, char *const argv[], const char *shortopts, const struct option *longopts);
/* Seconds on a monotonic clock. */
double cap_now(void);
#endif

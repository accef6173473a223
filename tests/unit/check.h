/* A tiny test harness: each CHECK prints one "ok"/"not ok" line that tests/run.sh counts.
 * A test program returns check_exit(): non-zero when any check failed. */
#ifndef CAP_CHECK_H
#define CAP_CHECK_H
#include <stdio.h>
#include <math.h>

static int check_failures;

#define CHECK(cond, ...) do { \
	if (cond) { printf("ok - "); printf(__VA_ARGS__); printf("\n"); } \
	else { check_failures++; printf("not ok - "); printf(__VA_ARGS__); \
	       printf("  (%s:%d: %s)\n", __FILE__, __LINE__, #cond); } \
	fflush(stdout); } while (0)

#define SKIP(...) do { printf("skip - "); printf(__VA_ARGS__); printf("\n"); fflush(stdout); } while (0)

static inline int check_close(double a, double b, double rel, double abs_tol)
{
	return fabs(a - b) <= abs_tol + rel * fabs(b);
}

static inline int check_exit(void) { return check_failures ? 1 : 0; }
#endif

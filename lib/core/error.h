/* Error reporting for lib/: functions that fail on bad input record a message with cap_fail()
 * and return -1 (or NULL); the tool prints it with its own name: warnx("%s", cap_errmsg()).
 * The message is per thread, so decoder threads do not overwrite each other's errors.
 * Internal bugs use assert(), never this. */
#ifndef CAP_ERROR_H
#define CAP_ERROR_H
#include <stddef.h>

/* Records a printf-style message (replacing the previous one) and returns -1. */
int cap_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prefixes the current message with "prefix: " (e.g. a file name) and returns -1. */
int cap_fail_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The last recorded message of this thread ("" when none). */
const char *cap_errmsg(void);

/* Allocation that cannot fail silently: aborts with a message on out-of-memory. */
/* The message and the abort, for allocators of their own (core/bigmem.c). */
void cap_out_of_memory(size_t n) __attribute__((noreturn));
void *cap_xmalloc(size_t n);
void *cap_xcalloc(size_t count, size_t size);
void *cap_xrealloc(void *p, size_t n);
char *cap_xstrdup(const char *s);
/* a*b with overflow detection: returns 0 and sets *out, or -1 on overflow. */
int cap_mul_overflow(size_t a, size_t b, size_t *out);
#endif

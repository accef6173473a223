/* The image side of cap-encode: decoder threads that read paths, decode and preprocess images
 * ahead of the network, handing them back strictly in input order through a small bounded
 * ring (so memory stays flat however many images stream through), plus the input path list
 * and sharding.
 *
 * Sharding: every input path (non-empty line or argument) gets an index i = 0, 1, 2, ...;
 * shard K/N (1 <= K <= N) keeps the paths with i % N == K - 1. The N shard outputs together
 * hold every record once, and `cat` of shards 1..N gives the records of one run, grouped by
 * shard rather than interleaved. */
#ifndef CAP_ENCODE_PIPELINE_H
#define CAP_ENCODE_PIPELINE_H
#include <stdint.h>
#include <stdio.h>
#include "image/resize.h"

/* "K/N" -> k, n. -1 with cap_errmsg() unless 1 <= K <= N <= 1e9. */
int cap_shard_parse(const char *s, int *k, int *n);

/* The sequence of input paths: argv entries, or lines of a stream (empty lines skipped,
 * trailing "\r\n"/"\n" removed), filtered to one shard (n = 1: all). */
typedef struct cap_paths cap_paths;
cap_paths *cap_paths_args(char *const *argv, int argc, int shard_k, int shard_n);
cap_paths *cap_paths_lines(FILE *f, int shard_k, int shard_n);
/* The next path of the shard (malloc'd; the caller frees), or NULL at the end or on a read
 * error (then cap_paths_error() is non-zero and cap_errmsg() says why). Not thread-safe. */
char *cap_paths_next(cap_paths *p);
int cap_paths_error(const cap_paths *p);
/* Total number of paths in the shard when known in advance (arguments), else -1. */
long cap_paths_total(const cap_paths *p);
void cap_paths_free(cap_paths *p);

typedef struct cap_pipeline_item {
	const char *path;
	int ok;               /* 1: pixels holds the image; 0: err says why (names the file) */
	const char *err;
	const float *pixels;  /* 3 x crop x crop, as cap_preprocess() */
} cap_pipeline_item;

typedef struct cap_pipeline cap_pipeline;
/* Starts nthreads decoder threads that keep up to depth images ready ahead of the
 * consumer. paths is owned by the pipeline from here on. NULL with cap_errmsg() on error. */
cap_pipeline *cap_pipeline_start(cap_paths *paths, const cap_preprocess_opts *o, int nthreads, int depth);
/* The next image in input order (valid until the next call), or NULL at the end. */
const cap_pipeline_item *cap_pipeline_next(cap_pipeline *p);
/* Non-zero when reading the path list failed (message in *msg). */
int cap_pipeline_read_error(const cap_pipeline *p, const char **msg);
/* Stops the threads (also before the end) and frees everything. */
void cap_pipeline_free(cap_pipeline *p);
#endif

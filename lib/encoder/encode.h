/* What cap-encode does: the network from a weights file (or random weights), prepared on a
 * backend, and every image decoded, preprocessed and encoded in input order into a features
 * stream whose header names the encoder (weights digest, depth, preprocessing, precision,
 * device). */
#ifndef CAP_ENCODE_H
#define CAP_ENCODE_H
#include "image/resize.h"
#include "ops/ops.h"

typedef struct cap_encode_opts {
	const char *weights;         /* a .safetensors/.pth file, or "random" / "random:SEED" */
	const char *out;             /* output path, "-" for standard output */
	const cap_ops *ops;
	cap_precision precision;     /* fp32, or bf16 (the encoder's bf16 flag), or tf32 */
	cap_preprocess_opts pre;
	int batch, decoders, basename, progress;
	int stats;                  /* 1: one line of images, seconds and images/s at the end */
	const char *shard;           /* "K/N" as given, recorded in the header; NULL for all */
	int shard_k, shard_n;
	char *const *images;         /* the image paths; NULL: one path a line on standard input */
	int nimages;
} cap_encode_opts;

/* "random" or "random:SEED": 1 and *seed; 0 for anything else; -1 with cap_errmsg() for a
 * malformed seed. */
int cap_encode_parse_random(const char *s, uint64_t *seed);
/* Encodes every image. Images that cannot be read or decoded are named on stderr and skipped.
 * Returns 0 when all were encoded, 1 when some were skipped (or the path list could not be read
 * to its end), -1 with cap_errmsg() on an error that stops the run (the output is then removed,
 * never left looking complete). */
int cap_encode_run(const cap_encode_opts *o);
#endif

/* Training data and bookkeeping for cap-train: image features held once per image, captions
 * joined to them by image name, the batch order of an epoch, and checkpoints. */
#ifndef CAP_TRAIN_H
#define CAP_TRAIN_H
#include <stddef.h>
#include <stdint.h>
#include "train/adam.h"
#include "decoder/decoder.h"
#include "core/rng.h"

/* Longest caption accepted, in ids (<start> and <end> included). */
#define CAP_TRAIN_MAX_LEN 1024

typedef struct cap_train_feats {
	int dim;              /* D */
	size_t n;             /* images */
	float *data;          /* (n, D) */
	char **names;         /* (n) image names as in the stream */
	size_t *used;         /* (n) captions joined to each image */
	size_t hcap;          /* hash tables (hcap slots): index + 1 of an image by name, and */
	size_t *htab, *btab;  /* by base name (flagged when two images share one) */
	char *encoder;        /* the header's encoder identity as model metadata (encoder_id.h),
	                         or NULL when it names none */
} cap_train_feats;

typedef struct cap_train_caps {
	size_t n;             /* captions joined to a feature */
	uint32_t *image;      /* (n) feature index */
	int *len;             /* (n) ids per caption */
	uint32_t **ids;       /* (n) the ids */
	size_t unmatched;     /* captions whose image has no feature (skipped) */
	char *tokenizer;      /* header "tokenizer" digest, or NULL */
	char *tokenizer_json; /* header "tokenizer_json", or NULL */
	uint64_t vocab_size;  /* header "vocab_size", or 1 + the largest id */
} cap_train_caps;

/* Reads a features stream (all records; duplicate image names are an error). */
int cap_train_feats_load(cap_train_feats *f, const char *path);
void cap_train_feats_free(cap_train_feats *f);
/* Index of an image by its exact name, else by its base name (features often carry paths,
 * captions file names); -1 when absent. */
long cap_train_feats_find(const cap_train_feats *f, const char *name);
/* Reads a captions stream, joining each caption to its feature; captions with no feature are
 * counted in unmatched. ids must start with <start> and end with <end>. */
int cap_train_caps_load(cap_train_caps *c, cap_train_feats *f, const char *path);
void cap_train_caps_free(cap_train_caps *c);

/* The batches of one epoch: order (n) lists caption indices batch after batch, each batch
 * sorted by length descending (stable, like the notebook's collate); start (n/batch + 2)
 * receives the first position of every batch and then n. Returns the number of batches.
 * Without shuffle the batches are the stream order cut every `batch` captions. With shuffle,
 * the captions are permuted from rng, then every pool of 50 batches is sorted by length so that
 * a batch holds captions of similar length (less padding, shorter recurrences), and the order
 * of the batches is permuted. */
size_t cap_train_epoch(const cap_train_caps *c, int batch, int shuffle, cap_rng *rng,
                       uint32_t *order, size_t *start);

/* Gathers positions [from, to) of an epoch's order into the decoder's batch view (arrays sized
 * for the batch); feat_table is the features' data in the backend's memory (cap_ops_mirror of
 * f->data). */
void cap_train_batch_view(const cap_train_caps *c, const float *feat_table, const uint32_t *order,
                          size_t from, size_t to, int *len, const uint32_t **ids, int32_t *feat_row,
                          cap_decoder_batch *out);

/* Checkpoint: a safetensors file with "params", "adam.m", "adam.v" (each (n_params)), with
 * "best.params" too when best (host, n_params) is given (the best validation epoch's), and
 * metadata strings: the model's configuration, every key/value in meta, "adam_step", and
 * "rng" entries written by the caller as hex (see cap_rng_to_hex). m is bound; its parameters
 * are copied back to m->data first. */
int cap_train_ckpt_save(const char *path, cap_decoder *m, const cap_adam *a, const float *best,
                        const char *const *meta);
/* Loads a checkpoint into a new model (configuration from the file) bound to ops, and adam (lr
 * from the file's "lr") on ops; the returned handle keeps the file open for
 * cap_train_ckpt_meta (free with cap_train_ckpt_close). */
typedef struct cap_train_ckpt cap_train_ckpt;
cap_train_ckpt *cap_train_ckpt_load(const char *path, const cap_ops *ops, cap_decoder **m, cap_adam *a,
                                    float **best);   /* *best: "best.params" (malloc) or NULL */
const char *cap_train_ckpt_meta(const cap_train_ckpt *k, const char *key);
void cap_train_ckpt_close(cap_train_ckpt *k);

/* The generator state as 64 hex digits, and back (0 or -1). */
void cap_rng_to_hex(const cap_rng *r, char out[65]);
int cap_rng_from_hex(cap_rng *r, const char *s);
#endif

/* Captions from image features with a trained decoder: the model file checked and placed on a
 * backend, its tokenizer, and the search (search.h) stepping the decoder, batch by batch. What
 * cap-generate does between reading features and writing captions. */
#ifndef CAP_GENERATE_H
#define CAP_GENERATE_H
#include "decoder/decoder.h"
#include "ops/ops.h"
#include "search/search.h"
#include "text/tokenizer.h"

typedef struct cap_generator cap_generator;

/* Loads the model file (opened once), checks its tokenizer against its vocabulary and digest,
 * binds it to ops and prepares a state for batches of up to `batch` images under the search
 * options o (start and end ids are filled in). NULL with cap_errmsg() naming the file. */
cap_generator *cap_generator_open(const char *model_path, const cap_ops *ops, cap_search_opts *o,
                                  int batch);
const cap_decoder *cap_generator_model(const cap_generator *g);
const cap_tokenizer *cap_generator_tokenizer(const cap_generator *g);
/* SHA-256 of the model file, as the generated stream's header names it. */
const char *cap_generator_digest(const cap_generator *g);
/* Searches captions for n <= batch images, feats (n, D) host floats; res (n) receives the
 * hypotheses (free each with cap_search_result_free). first_index numbers the images for
 * sampling seeds. 0, or -1 with cap_errmsg(). */
int cap_generator_run(cap_generator *g, const float *feats, int n, uint64_t first_index,
                      cap_search_result *res);
void cap_generator_free(cap_generator *g);
const cap_search_opts *cap_generator_opts(const cap_generator *g);
int cap_generator_batch(const cap_generator *g);

/* ---- the streams around it (generate_io.c) ---- */
typedef struct cap_generate_io {
	const char *const *inputs;  /* features streams; none or "-": standard input */
	int ninputs;
	const char *out_path;       /* NULL or "-": standard output; written atomically otherwise */
	int text;                   /* 1: lines IMAGE<TAB>CAPTION instead of a 'generated' stream */
	int nbest;                  /* 1: records carry the n-best list */
	int progress;               /* 1: captions/s on stderr */
	int stats;                  /* 1: one line of captions, seconds and captions/s at the end */
	const char *model_path;     /* for messages */
	int allow_encoder_mismatch; /* 1: features of another encoder only warn (encoder_id.h) */
} cap_generate_io;
/* Captions every image of the inputs in batches. 0, or -1 with cap_errmsg() naming the stream
 * and record (the output is then removed, never left looking complete). */
int cap_generate_run(cap_generator *g, const cap_generate_io *io);
#endif

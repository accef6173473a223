/* A whole training run as cap-train performs it: the streams read once, the model created,
 * initialised from a file or resumed from a checkpoint, epochs of shuffled batches (teacher
 * forcing, clipping, Adam) on one backend, validation and early stopping, checkpoints that
 * restore the run bit for bit, the metrics log, and the model file written when the run ends.
 *
 * The model file (-o) appears only when training ends by its epochs, early stop or --max-steps;
 * a run cut short leaves only the checkpoint (OUT.ckpt), from which --resume continues. With
 * validation the model holds the parameters of the best validation epoch. Its metadata records
 * the epochs asked for and done, the steps, why the run stopped ("stop_reason": "epochs",
 * "early_stop" or "max_steps"), the device and the number of ranks ("world_size").
 *
 * Data parallelism (opts->dist with several ranks, see dist.h): every rank reads the same streams
 * and takes a contiguous share of every global batch (cap_decoder_loss_share); the losses and
 * the gradient are summed over the ranks before clipping and Adam, so that every rank holds the
 * same weights (checked at every epoch's end) and the run is one process's up to the order of
 * floating-point sums. Validation batches are dealt out among the ranks and the sums reduced.
 * Rank 0 alone writes the model, the checkpoints and the log and prints; the ranks check at the
 * start that they hold the same data, model and settings. A failure met by every rank alike (a
 * NaN loss, weights that differ) stops the run from rank 0; any other failure of a rank makes
 * cap_trainer_run return -1 there, for the caller to stop every rank (cap_dist_die). */
#ifndef CAP_TRAINER_H
#define CAP_TRAINER_H
#include <stdint.h>
#include "ops/ops.h"
#include "train/dist.h"

typedef struct cap_trainer_opts {
	const char *features, *captions, *out;    /* required */
	const char *tokenizer;                    /* tokenizer.json to embed instead of the stream's */
	const char *init, *resume, *val, *log;    /* optional files */
	const cap_ops *ops;                       /* the backend (required) */
	const cap_dist *dist;                     /* the ranks (dist.h); NULL: one process */
	const char *precision;                    /* as set on ops, for the metadata ("fp32" if NULL) */
	int epochs, batch, embed, hidden, layers, shuffle, early_stop;
	double lr, dropout, clip;
	uint64_t seed;
	long long save_every, max_steps;          /* 0: none */
	int progress;                             /* 1: a progress bar on stderr */
	int allow_encoder_mismatch;               /* 1: --init/--resume on another encoder's features */
} cap_trainer_opts;

/* The defaults of the seed notebook: 30 epochs, batch 64, lr 1e-3, E 256, H 512, 1 layer,
 * shuffled, seed 1. */
void cap_trainer_opts_default(cap_trainer_opts *o);
/* Runs the whole training. Progress and per-epoch lines go to stderr. 0, or -1 with
 * cap_errmsg() naming the file, record or step. */
int cap_trainer_run(const cap_trainer_opts *o);
#endif

/* The caption decoder of Show-and-Tell as a PyTorch user writes it:
 *   proj   Linear(D -> E)      on the image feature
 *   embed  Embedding(V, E)
 *   lstm   LSTM(E -> H, L layers), gate order i, f, g, o, biases b_ih and b_hh
 *   linear Linear(H -> V)
 * Teacher forcing (training): inputs [proj(f), embed(<start>), embed(w1) .. embed(wn)], targets
 * [<start>, w1 .. wn, <end>]; the loss is cross-entropy averaged over the real tokens of the
 * batch (what CrossEntropyLoss on pack_padded_sequence gives).
 *
 * Model file: safetensors, float32, tensors named as the PyTorch module's state_dict:
 *   proj.weight (E, D)  proj.bias (E)  embed.weight (V, E)
 *   lstm.weight_ih_l{k} (4H, E or H)  lstm.weight_hh_l{k} (4H, H)  lstm.bias_ih_l{k} (4H)
 *   lstm.bias_hh_l{k} (4H)  linear.weight (V, H)  linear.bias (V)
 * and __metadata__ strings (see man/cap-train.1): "format" = "cap-decoder", "feature_dim",
 * "embed", "hidden", "layers", "vocab_size", "tokenizer" (digest), "tokenizer_json" (the whole
 * tokenizer.json text), "history" (JSON summary of training) and others.
 *
 * All matrices are row-major float32; shapes are given as (rows, cols). */
#ifndef CAP_DECODER_H
#define CAP_DECODER_H
#include <stddef.h>
#include <stdint.h>
#include "core/rng.h"
#include "ops/ops.h"

#define CAP_DECODER_MAX_LAYERS 8
/* Special ids fixed by the tokenizer contract. */
#define CAP_DECODER_PAD 0
#define CAP_DECODER_START 1
#define CAP_DECODER_END 2

typedef struct cap_decoder_config {
	int feat_dim;  /* D: image feature size (2048 for ResNet-152) */
	int embed;     /* E */
	int hidden;    /* H */
	int layers;    /* L, 1..CAP_DECODER_MAX_LAYERS */
	int vocab;     /* V, including the 4 special tokens */
} cap_decoder_config;

/* Views into one flat parameter block (gradients and Adam moments use the same layout).
 * The block holds the tensors in the order listed, each contiguous. */
typedef struct cap_decoder_params {
	float *proj_w, *proj_b;                  /* (E, D), (E) */
	float *embed_w;                          /* (V, E) */
	float *w_ih[CAP_DECODER_MAX_LAYERS];     /* (4H, E) for layer 0, (4H, H) after */
	float *w_hh[CAP_DECODER_MAX_LAYERS];     /* (4H, H) */
	float *b_ih[CAP_DECODER_MAX_LAYERS];     /* (4H) */
	float *b_hh[CAP_DECODER_MAX_LAYERS];     /* (4H) */
	float *lin_w, *lin_b;                    /* (V, H), (V) */
} cap_decoder_params;

/* Where a model runs: the backend, its copy of the parameter block (the host block itself on
 * host-memory backends) and the weights it prepared for inference. */
typedef struct cap_decoder_dev {
	const cap_ops *ops;     /* NULL until cap_decoder_bind */
	float *data;            /* n_params floats of backend memory */
	cap_decoder_params p;   /* views into data */
	cap_weight *proj, *w_ih[CAP_DECODER_MAX_LAYERS], *w_hh[CAP_DECODER_MAX_LAYERS], *lin;
} cap_decoder_dev;

typedef struct cap_decoder {
	cap_decoder_config cfg;
	size_t n_params;
	float *data;            /* n_params floats, host memory: what files are read into and written from */
	cap_decoder_params p;   /* views into data */
	char **meta;            /* metadata: key, value, key, value, ..., NULL (may be NULL) */
	char file_digest[65];   /* SHA-256 of the file it was loaded from ("" when not loaded) */
	cap_decoder_dev dev;
} cap_decoder;

/* Checks a configuration (positive sizes, parameter count fits). 0 or -1 with cap_errmsg. */
int cap_decoder_config_check(const cap_decoder_config *c);
size_t cap_decoder_param_count(const cap_decoder_config *c);
void cap_decoder_views(const cap_decoder_config *c, float *base, cap_decoder_params *p);

/* Named tensors of a parameter block, in file order; returns the count (5 + 4L). name
 * storage is in names (CAP_DECODER_MAX_TENSORS entries of 32 bytes). */
#define CAP_DECODER_MAX_TENSORS (5 + 4 * CAP_DECODER_MAX_LAYERS)
typedef struct cap_decoder_tensor {
	char name[32];
	int ndim;
	int64_t shape[2];
	float *data;
	size_t numel;
} cap_decoder_tensor;
int cap_decoder_tensors(const cap_decoder_config *c, float *base, cap_decoder_tensor *out);

/* A model with zero weights (NULL with cap_errmsg on a bad config). */
cap_decoder *cap_decoder_new(const cap_decoder_config *c);
/* PyTorch's default initialisation: Linear and LSTM weights and biases uniform in
 * +-1/sqrt(fan_in) (fan_in = D for proj, H for lstm and linear), Embedding N(0, 1). */
void cap_decoder_init_random(cap_decoder *m, cap_rng *rng);
/* Loads a model file: the configuration comes from the tensor shapes (checked against each
 * other and against the metadata when present), metadata is kept. NULL with cap_errmsg. */
cap_decoder *cap_decoder_load(const char *path);
/* Writes the model file atomically; meta is a NULL-terminated key, value list (the model's
 * own meta is not added automatically: pass what the file should hold). */
int cap_decoder_save(const cap_decoder *m, const char *path, const char *const *meta);
/* Places the model on a backend: its parameters in backend memory (shared with m->data on
 * host-memory backends) and its weights prepared for inference. 0, or -1 with cap_errmsg().
 * Binding again to another backend releases the first. */
int cap_decoder_bind(cap_decoder *m, const cap_ops *ops);
/* After changing m->data on the host (tests, a loaded checkpoint): copies it to the backend and
 * refreshes the prepared weights. */
void cap_decoder_to_device(cap_decoder *m);
/* After training on the backend: copies the parameters back into m->data (before saving). Also
 * refreshes the prepared weights, so that inference sees the trained values. */
void cap_decoder_to_host(cap_decoder *m);
/* A metadata value of a loaded model, or NULL. "tokenizer_json" holds the tokenizer. */
const char *cap_decoder_meta(const cap_decoder *m, const char *key);
/* Replaces (or adds) a metadata entry. */
void cap_decoder_set_meta(cap_decoder *m, const char *key, const char *value);
void cap_decoder_free(cap_decoder *m);

/* ---- inference (cap-generate): one step at a time for a batch of B hypotheses ----
 * The model must be bound (cap_decoder_bind); feats, ids and logp are host arrays.
 * Usage: s = cap_decoder_state_new(m, max_batch);
 *        cap_decoder_start(m, s, feats, B);          image step; its prediction is unused
 *        loop: cap_decoder_step(m, s, ids, logp);    ids (B): the previous words, the first
 *                                                    time CAP_DECODER_START; logp (B, V)
 *              cap_decoder_state_gather(s, s, idx, n) reorders/duplicates/drops rows for beam
 *              search (row i of the result = row idx[i] of the source; n <= capacity).
 * The state holds h and c of every layer: (L, capacity, H) each. States are independent of
 * each other; a model may be shared by several states (it is only read, and its weights must
 * not change while a state lives: see gate_table). */
typedef struct cap_decoder_state {
	const cap_ops *ops;
	int batch;      /* live rows */
	int capacity;   /* allocated rows */
	int layers, hidden, vocab, embed, feat_dim;
	/* backend memory */
	float *h, *c;   /* (L, capacity, H): layer l row b at (l * capacity + b) * H */
	float *x;       /* scratch (capacity, max(E, H)) */
	float *gates;   /* scratch (capacity, 4H) */
	float *h2, *c2; /* where gather writes h and c before they trade places: (L, capacity, H) */
	float *feat;    /* (capacity, D) the image features of cap_decoder_start */
	float *logits;  /* (capacity, V), unused on host-memory backends (logp itself is used) */
	uint32_t *ids;  /* (capacity) */
	int32_t *idx;   /* (capacity) */
	void *topk;     /* (capacity, CAP_TOPK_MAX) values then as many indices, made by the first
	                   cap_decoder_step_topk (and logits with it on host-memory backends) */
	/* Layer 0's gate inputs of every word, (V, 4H) = embed W_ih^T + b_ih + b_hh: a step then
	 * gathers rows of it instead of multiplying the embedded words (18% of a step's FLOPs at
	 * E 256, H 512, V 2,539). Building it costs a product over the whole vocabulary, so it is
	 * built once the state has stepped V rows (by then the products it saves have cost as much:
	 * never more than twice the better choice, and never for a few images); NULL until then.
	 * It holds the weights of that moment: a state must not outlive a change of the model's
	 * weights (make a new one). CAP_GATE_TABLE=0 turns it off. */
	float *gate_table;
	size_t stepped;  /* rows stepped so far */
} cap_decoder_state;

cap_decoder_state *cap_decoder_state_new(const cap_decoder *m, int capacity);
void cap_decoder_state_free(cap_decoder_state *s);
/* feats (B, D), B <= capacity: resets the state to zeros and runs the image step. */
void cap_decoder_start(const cap_decoder *m, cap_decoder_state *s, const float *feats, int batch);
/* ids (B) < V: one LSTM step on embed(ids); writes log-softmax of the logits to logp (B, V)
 * (logp may be NULL to only advance the state). */
void cap_decoder_step(const cap_decoder *m, cap_decoder_state *s, const uint32_t *ids, float *logp);
/* cap_decoder_step that returns only the k best words of each row's log-softmax (row_topk of
 * ops.h: best first, ties to the lower id, columns ex0 and ex1 left out): vals (B, k) and idx
 * (B, k), host arrays. The full (B, V) log-probabilities stay in backend memory, so a GPU sends
 * back k words a row instead of the vocabulary. 1 <= k <= CAP_TOPK_MAX. */
void cap_decoder_step_topk(const cap_decoder *m, cap_decoder_state *s, const uint32_t *ids, int k,
                           int ex0, int ex1, float *vals, int32_t *idx);
/* dst rows i < n become src rows idx[i] (0 <= idx[i] < src->batch); dst may be src; dst->batch
 * becomes n (n <= dst->capacity). Both states must come from the same model. */
void cap_decoder_state_gather(cap_decoder_state *dst, const cap_decoder_state *src,
                              const int *idx, int n);

/* ---- training: forward and backward over a batch with teacher forcing ---- */
typedef struct cap_decoder_batch {
	int batch;                       /* B */
	const int *len;                  /* (B) ids per caption incl. <start> and <end>, >= 2,
	                                    sorted in descending order */
	const uint32_t *const *ids;      /* ids[b]: len[b] ids <start> w1 .. wn <end>, each < V (host) */
	const float *feat_table;         /* (images, D) image features in backend memory */
	const int32_t *feat_row;         /* (B) row of each caption's image in feat_table (host) */
} cap_decoder_batch;

typedef struct cap_decoder_work cap_decoder_work;   /* buffers reused between batches */
cap_decoder_work *cap_decoder_work_new(const cap_decoder *m);   /* m bound */
void cap_decoder_work_free(cap_decoder_work *w);
/* Padded training passes (on by default where the backend records passes, ops->graph_begin):
 * every caption of a batch runs as many steps as the longest, the extra rows being padding, so
 * that all batches of the same (captions, steps) issue the same ops on the same buffers. Same
 * losses; gradients equal up to the order of their sums. Only passes with a gradient, of a whole
 * batch (not a share), without dropout are padded. For tests elsewhere. */
void cap_decoder_work_set_padded(cap_decoder_work *w, int on);
/* One Adam step (k: the step's constants, see lib/train/adam.h) over m's parameters with grad and
 * the moments mom and vel (n_params floats each, backend memory): ops->adam_step over the
 * tensors without a prepared weight, ops->weight_adam over each of the work's prepared weights,
 * which refreshes them in the same pass (parameters bitwise as one adam_step over the block).
 * The work's next pass takes its prepared weights as they are, once: whoever changes m's
 * parameters otherwise between the two must not rely on this (cap_decoder_loss refreshes them
 * at every other pass). */
void cap_decoder_work_adam(cap_decoder_work *w, cap_decoder *m, const float *grad, float *mom, float *vel,
                           const cap_adam_consts *k);
/* Forward pass on the model's backend (m bound), and backward when grad != NULL (grad: n_params
 * floats of backend memory, overwritten with d loss / d params). dropout p in [0, 1) applies
 * inverted dropout to each LSTM layer's output (between layers and before linear), the mask of
 * each layer drawn by ops->dropout_forward from one 64-bit seed taken from rng; 0 disables it. Returns the mean
 * cross-entropy over the sum(len) tokens of the batch; *tokens receives that count. */
double cap_decoder_loss(cap_decoder_work *w, const cap_decoder *m, const cap_decoder_batch *b,
                        float dropout, cap_rng *rng, float *grad, size_t *tokens);

/* Data parallelism (lib/train/dist.h): b is a share of a global batch, its captions being
 * positions first .. first + b->batch - 1 of the global batch's global_batch captions (sorted by
 * length descending, lengths global_len), which hold global_tokens tokens in all. The pass then
 * computes what these rows contribute to the whole batch's pass: the dropout masks are those the
 * whole batch draws for these rows (the same seeds, taken from rng as cap_decoder_loss takes
 * them, and the rows' element indices in the global packed layout), and grad becomes this
 * share's part of the gradient of the global batch's mean loss, so that the shares' gradients
 * sum to the whole batch's. Returns the sum (not the mean) of the share's token losses; *tokens
 * receives its token count. b->batch may be 0: grad becomes zeros, the seeds are still drawn. */
typedef struct cap_decoder_share {
	int global_batch;          /* captions of the global batch */
	const int *global_len;     /* (global_batch) their lengths, descending */
	int first;                 /* position of b's first caption in the global batch */
	size_t global_tokens;      /* sum of global_len */
} cap_decoder_share;
double cap_decoder_loss_share(cap_decoder_work *w, const cap_decoder *m, const cap_decoder_batch *b,
                              const cap_decoder_share *share, float dropout, cap_rng *rng,
                              float *grad, size_t *tokens);
#endif

/* The one seam between model code and the machine: a table of ops with explicit shapes, and the
 * memory they work on. Model code (lib/encoder, lib/decoder, lib/train) holds a `const cap_ops *`
 * and calls only through it; it never includes dnnl.h or cuda_runtime.h and never reads backend
 * memory directly.
 *
 * Backends (one basename per op in each folder: lib/ops/ref/gemm.c, lib/ops/cpu/gemm.c,
 * lib/ops/cuda/gemm.cu):
 *   ref   plain C, the definition of every op (slow, obviously right);
 *   cpu   oneDNN and AVX-512 where they help, ref elsewhere; which kernel runs is decided once,
 *         when the table is first built, from the CPU's features (lib/core/cpu.h);
 *   cuda  cuBLAS and CUDA kernels, in a module loaded only for --device cuda (libcap-cuda.so,
 *         see cap_ops_open), so that the tools never link CUDA themselves.
 *
 * Memory: every pointer an op takes is backend memory, from alloc (or a mirror): host memory for
 * ref and cpu (host_memory = 1), device memory for cuda. Values move only through upload,
 * download and copy. Ops are asynchronous with respect to the host where the backend allows it:
 * download and the ops that return a value to the host (sum_squares) synchronise.
 *
 * Errors: ops take shapes that the caller has checked; a backend that fails at run time (a CUDA
 * error, out of device memory) prints a message naming the op on stderr and exits 1. alloc and
 * encoder_new return NULL with cap_errmsg() instead, so that a tool can say what it tried.
 *
 * Tolerances: each op states how far a backend may be from ref, as the normalised error
 * nmse = sum (x - ref)^2 / sum ref^2 over the outputs, or "exact". tests/unit/test_ops.c checks
 * every op on every available backend against these bounds.
 *
 * Layout: row-major float32 throughout; shapes are (rows, cols). */
#ifndef CAP_OPS_H
#define CAP_OPS_H
#include <stddef.h>
#include <stdint.h>

#define CAP_OPS_ABI 5   /* bumped when the table changes; a loaded module must match */
#define CAP_TOPK_MAX 16 /* the largest k of row_topk */
#define CAP_TARGET_NONE 0xffffffffu /* softmax_xent_rows: a padding row, no target */

struct cap_resnet;
typedef struct cap_weight cap_weight;    /* a backend's prepared weight matrix */
typedef struct cap_encoder cap_encoder;  /* a backend's prepared image encoder */

/* cap_weight flags: how the weight will be used, so the backend can prepare it. */
enum {
	/* Used in a chain of small dependent products (the per-step recurrence): with
	 * CAP_SERIAL_RECURRENCE=1 the cpu backend runs these on one thread (for busy machines, where
	 * waiting for a second thread at every call costs more than it saves). */
	CAP_WEIGHT_RECURRENT = 1,
};

/* encoder_new flags */
enum {
	CAP_ENCODER_BF16 = 1,          /* bfloat16 activations and weights, fp32 accumulation */
	CAP_ENCODER_TAKE_WEIGHTS = 2,  /* the backend may free each conv's weights in the net once it
	                                * holds its own copy; the net is then only good for
	                                * cap_resnet_free */
};

/* Arithmetic of the dense ops (gemm, matmul, the encoder's convolutions). */
typedef enum cap_precision {
	CAP_PRECISION_FP32 = 0,   /* strict fp32: what the tolerances above are written for */
	CAP_PRECISION_TF32 = 1,   /* fp32 storage, TF32 tensor-core products (cuda) */
	CAP_PRECISION_BF16 = 2,   /* bf16 operands, fp32 accumulation and master weights */
} cap_precision;

/* The constants of one Adam step, computed by the caller in double as torch does and rounded
 * to float (see lib/train/adam.h). */
typedef struct cap_adam_consts {
	float b1, b2, one_b1, one_b2;  /* beta1, beta2, 1 - beta1, 1 - beta2 */
	float step_size;               /* lr / (1 - beta1^t) */
	float bc2_sqrt;                /* sqrt(1 - beta2^t) */
	float eps;
} cap_adam_consts;

typedef struct cap_ops {
	const char *name;     /* "ref", "cpu", "cuda" */
	int host_memory;      /* 1: backend memory is host memory */
	int abi;              /* CAP_OPS_ABI */

	/* ---- memory ---- */
	/* bytes of zeroed backend memory; NULL with cap_errmsg() when it cannot be had. */
	void *(*alloc)(size_t bytes);
	void (*free)(void *p);
	void (*upload)(void *dst, const void *host_src, size_t bytes);
	void (*download)(void *host_dst, const void *src, size_t bytes);
	void (*copy)(void *dst, const void *src, size_t bytes);       /* within backend memory */
	void (*zero)(void *dst, size_t bytes);
	void (*sync)(void);                                           /* wait for queued ops */
	/* x (n floats of backend memory) will not change until thaw(x): neither ops nor the caller
	 * write it in between. The backend may keep what it derives from x until then (cpu: the
	 * bf16 rounding of an operand, made once for all the products that read x). At most a few
	 * operands at a time; a freeze beyond them, or of a backend that keeps nothing, is a no-op. */
	void (*freeze)(const float *x, size_t n);
	void (*thaw)(const float *x);
	/* Threads of the host side (OpenMP inside oneDNN for cpu); n <= 0 keeps the default.
	 * -1 with cap_errmsg() when it cannot be set. */
	int (*set_threads)(int n);
	/* The arithmetic of gemm and matmul from now on. 0, or -1 with cap_errmsg() when this
	 * backend or processor lacks it: ref takes fp32 and bf16 (its bf16 is the definition:
	 * operands rounded to nearest-even bfloat16, sums in fp32), cpu takes bf16 where the
	 * processor has AVX512-BF16, tf32 is cuda's alone. In bf16 the bounds of gemm and matmul
	 * hold against ref's bf16. The encoder's bf16 is its own flag (CAP_ENCODER_BF16). */
	int (*set_precision)(cap_precision p);

	/* ---- dense algebra ---- */
	/* C (M, N) = alpha op(A) op(B) + beta C; op(X) = X or X^T (ta, tb); leading dimensions are
	 * row strides. beta == 0: C is not read (may hold NaN). M, N or K may be 0.
	 * Tolerance: nmse <= 1e-10 (summation order differs). */
	void (*gemm)(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
	             const float *B, int ldb, float beta, float *C, int ldc);
	/* A weight matrix W (rows, cols) in backend memory, prepared for matmul (the cpu backend
	 * keeps W packed in the layout of oneDNN's matmul, in bf16 in that precision). The weight
	 * keeps pointing at w: after w changes, weight_update. */
	cap_weight *(*weight_new)(const float *w, int rows, int cols, int flags);
	void (*weight_update)(cap_weight *w);
	void (*weight_free)(cap_weight *w);
	/* trans = 1: y (n, rows) = x (n, cols) W^T + beta y      (a Linear layer)
	 * trans = 0: y (n, cols) = x (n, rows) W   + beta y      (its input gradient)
	 * beta is 0 or 1. Tolerance: nmse <= 1e-10. */
	void (*matmul)(const float *x, int n, const cap_weight *w, int trans, float beta, float *y);
	/* y (n, rows) = x (n, cols) W^T + b1 (+ b2, added as b1[j] + b2[j]): a Linear layer with its
	 * bias, what bias_rows(y, b1, b2, n, rows) then matmul(x, n, w, 1, 1, y) compute, with y
	 * written once where the backend can (on cpu, oneDNN's bias argument: the broadcast rows
	 * were a write and a read of the whole output, 11% of a greedy run). Tolerance: nmse <= 1e-10. */
	void (*matmul_bias)(const float *x, int n, const cap_weight *w, const float *b1, const float *b2,
	                    float *y);

	/* ---- rows and columns ---- */
	/* y (rows, n): every row = b1 (+ b2 when b2 != NULL, added as b1[j] + b2[j]). Exact. */
	void (*bias_rows)(float *y, const float *b1, const float *b2, int rows, int n);
	/* out (n) = column sums of x (rows, n), accumulated in double, rounded once. nmse <= 1e-12. */
	void (*col_sums)(const float *x, int rows, int n, float *out);
	/* out (n, width): row i = src row idx[i] (idx in backend memory, 0 <= idx[i] < rows of src);
	 * out and src do not overlap. Exact. */
	void (*row_gather)(float *out, const float *src, const int32_t *idx, int n, int width);
	/* out (n, E): row i = table row ids[i] (ids in backend memory, < rows of table). Exact. */
	void (*embed_gather)(float *out, const float *table, const uint32_t *ids, int n, int E);
	/* grad (V, E): row ids[i] += d row i, for i = 0..n-1 (repeated ids accumulate).
	 * nmse <= 1e-12 (the order of additions to one row may differ). */
	void (*embed_scatter_add)(float *grad, const float *d, const uint32_t *ids, int n, int E);
	/* x (n) *= y (n) elementwise. Exact. */
	void (*mul)(float *x, const float *y, size_t n);
	/* x (n) *= a. Exact. */
	void (*scale)(float *x, size_t n, float a);
	/* sum of x[i]^2 in double; synchronises. Relative error <= 1e-12. */
	double (*sum_squares)(const float *x, size_t n);

	/* ---- LSTM (gate order i, f, g, o, as PyTorch) ---- */
	/* n rows: g (n, 4H) pre-activations, replaced by the activations sigmoid(i), sigmoid(f),
	 * tanh(g), sigmoid(o); c_prev (n, H) or NULL for zeros; writes c = f c_prev + i g,
	 * tc = tanh(c) (tc may be NULL) and h = o tc (n, H). Tolerance: nmse <= 1e-12 (the cpu
	 * backend's exp is a polynomial accurate to about 2 ulp). */
	void (*lstm_cell_forward)(float *g, const float *c_prev, float *c, float *tc, float *h,
	                          int n, int H);
	/* The backward of lstm_cell_forward for n rows, given its saved activations g (n, 4H),
	 * c_prev (n, H) or NULL, tc (n, H), and the gradient of h from above dh (n, H) plus the one
	 * from the next step dh_rec (n, H); dc (n, H) holds the gradient of c from the next step and
	 * is replaced by the one for c_prev; writes dg (n, 4H), the gradient of the pre-activations.
	 * Tolerance: nmse <= 1e-12. */
	void (*lstm_cell_backward)(const float *g, const float *c_prev, const float *tc,
	                           const float *dh, const float *dh_rec, float *dc, float *dg,
	                           int n, int H);

	/* ---- output layer ---- */
	/* In place log-softmax of each row of x (rows, n). nmse <= 1e-12. */
	void (*log_softmax_rows)(float *x, int rows, int n);
	/* n rows of logits x (n, V) with targets (backend memory): loss[r] = -log softmax(x_r)[t_r]
	 * (loss: n doubles of backend memory). With grad_scale > 0, x becomes
	 * grad_scale * (softmax(x) - onehot(t)); otherwise x is left unspecified. A row whose target
	 * is CAP_TARGET_NONE (padding) has loss 0 and, with grad_scale > 0, a gradient of exact
	 * zeros. Tolerance: nmse <= 1e-12 for loss and x. */
	void (*softmax_xent_rows)(float *x, const uint32_t *target, int n, int V, float grad_scale,
	                          double *loss);
	/* The k best columns of each row of x (rows, n), best first in the order "larger value,
	 * then lower column" (cap_topk_better), skipping the columns ex0 and ex1 (-1: none) and NaN
	 * values: vals (rows, k) and idx (rows, k), backend memory; a row with fewer than k such
	 * columns ends with -inf and -1. 1 <= k <= CAP_TOPK_MAX. Exact. It lets a search read k
	 * words a row instead of the whole vocabulary (greedy and beam on a GPU). */
	void (*row_topk)(const float *x, int rows, int n, int k, int ex0, int ex1, float *vals,
	                 int32_t *idx);

	/* ---- regularisation and optimiser ---- */
	/* Inverted dropout of h (n) with drop probability p in (0, 1): mask[i] = 1/(1-p) when
	 * cap_dropout_keep(seed, i, p), else 0; hd = h * mask. Exact: the mask is a function of
	 * (seed, i), so every backend draws the same one. */
	void (*dropout_forward)(const float *h, float *mask, float *hd, size_t n, float p, uint64_t seed);
	/* One torch.optim.Adam step over a flat block (n): m, v moments, the operations in torch's
	 * order without fused multiply-add. Exact (bitwise equal to ref). */
	void (*adam_step)(float *param, const float *grad, float *m, float *v, size_t n,
	                  const cap_adam_consts *k);
	/* adam_step over the parameters a prepared weight was made from (its rows x cols floats,
	 * which the caller owns and lets this op write), grad, m and v being theirs; then the
	 * weight's prepared copies refreshed: adam_step then weight_update, in one pass where the
	 * backend can (cpu: band by band, each packed while still in cache). Exact (the parameters
	 * bitwise as adam_step makes them). */
	void (*weight_adam)(cap_weight *w, const float *grad, float *m, float *v, const cap_adam_consts *k);

	/* ---- recorded runs of ops (optional: NULL where the backend has none) ---- */
	/* A backend that can record a run of ops and replay it at the cost of one launch sets these
	 * (cuda, with CAP_CUDA_GRAPHS=1: CUDA graphs); the others leave them NULL. key names a run
	 * that the caller will issue again exactly: the same ops with the same shapes, scalars and
	 * pointers, only the contents of the memory they read changed in between.
	 * graph_replay(key): 1 when a recording of key exists and has been queued (the caller then
	 * skips the ops), else 0.
	 * graph_begin(key): 0 when the ops issued from now until graph_end are recorded instead of
	 * run; -1 when they run as usual (the backend may wait to see a key twice before recording
	 * it, so that whatever the first run sets up is in place). Between the two the caller issues
	 * no op that synchronises or moves memory from or to the host, and allocates nothing.
	 * graph_end(): ends the recording, keeps it under its key and queues it (the recorded ops
	 * run then).
	 * graph_forget(): drops every recording (the memory they use is about to be freed). */
	int (*graph_replay)(uint64_t key);
	int (*graph_begin)(uint64_t key);
	void (*graph_end)(void);
	void (*graph_forget)(void);

	/* ---- image encoder ---- */
	/* Prepares the forward of `net` (up to the global pool) for batches of up to `batch` images
	 * of h x w. NULL with cap_errmsg() on failure. The encoder keeps what it needs. */
	cap_encoder *(*encoder_new)(struct cap_resnet *net, int batch, int h, int w, int flags);
	/* in (n, 3, h, w) host floats, n <= batch; out (n, dim) host floats. 0, or -1 with
	 * cap_errmsg(). Tolerance: relative error of each feature vector <= 1e-5 in fp32. */
	int (*encoder_run)(cap_encoder *e, const float *in, int n, float *out);
	/* What computes the convolutions (e.g. "oneDNN brg:avx512_core"), for logs. */
	const char *(*encoder_impl)(const cap_encoder *e);
	void (*encoder_free)(cap_encoder *e);
} cap_ops;

/* The dropout draw: keep element i under seed when its 24-bit hash is below (1-p) 2^24. A pure
 * function (splitmix64 of seed and i), written once here so that every backend agrees. */
#if defined(__CUDACC__)
__host__ __device__
#endif
static inline int cap_dropout_keep(uint64_t seed, uint64_t i, float p)
{
	uint64_t z = seed + (i + 1) * 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return (float)(z >> 40) * (1.0f / 16777216.0f) < 1.0f - p;
}

/* The seed under which element i draws what element k + i draws under seed:
 * cap_dropout_keep(cap_dropout_seed_at(seed, k), i, p) == cap_dropout_keep(seed, k + i, p), so
 * that dropout_forward over a block that starts at element k of a larger layout draws the larger
 * layout's mask (a share of a batch under data parallelism, see decoder.h). */
#if defined(__CUDACC__)
__host__ __device__
#endif
static inline uint64_t cap_dropout_seed_at(uint64_t seed, uint64_t k)
{
	return seed + k * 0x9e3779b97f4a7c15ull;
}

/* The order of row_topk: (v, i) comes before (bv, bi) when v > bv, or v == bv and i < bi; NaN
 * never comes first. */
#if defined(__CUDACC__)
__host__ __device__
#endif
static inline int cap_topk_better(float v, int i, float bv, int bi)
{
	return v > bv || (v == bv && i < bi);
}

/* "fp32", "tf32", "bf16" -> *p; -1 with cap_errmsg() otherwise. */
int cap_precision_parse(const char *s, cap_precision *p);

/* ---- choosing a backend ---- */
/* The built-in tables. */
const cap_ops *cap_ops_ref(void);
const cap_ops *cap_ops_cpu(void);
/* The device a tool uses without --device: $CAP_DEVICE when set (so that a whole test suite or
 * pipeline can run on another backend), else "cpu". */
const char *cap_default_device(void);
/* The table for a device name: "ref", "cpu" or "cuda" (loads the CUDA module). Returns 0; -1
 * with cap_errmsg() when the device exists in this build but cannot be used (no GPU, a broken
 * module); -2 with cap_errmsg() when this build has no such device (unknown name, or built
 * without CUDA), which tools report as a usage error. "ref" also makes every other fast path of
 * the process (SHA-256, image resizing) take its portable code, so that --device ref is plain C
 * from end to end. */
int cap_ops_open(const char *device, const cap_ops **out);
/* cap_ops_open for a tool's --device option: on failure prints "PROG: message" and exits with
 * 2 (no such device in this build) or 1. */
const cap_ops *cap_ops_open_or_exit(const char *device);
/* a * b * size bytes of backend memory (at least 1) for buffers the caller cannot go on without:
 * running out prints "PROG: what: message" and exits 1, an overflowing size aborts. */
void *cap_ops_xalloc(const cap_ops *ops, size_t a, size_t b, size_t size, const char *what);
/* A table that runs inner's ops and times each (after a sync), printing per-op totals, calls
 * and GEMM GFLOP/s on stderr at exit, and with per_shape the products split by shape.
 * cap_ops_open_or_exit returns it when CAP_PROFILE is 1 (per op) or shapes (also by shape). */
const cap_ops *cap_ops_profiled(const cap_ops *inner, int per_shape);
/* Read-only backend memory holding bytes of host data: the data itself on host-memory
 * backends, an uploaded copy otherwise. Release with cap_ops_unmirror. NULL with cap_errmsg. */
const void *cap_ops_mirror(const cap_ops *ops, const void *host, size_t bytes);
void cap_ops_unmirror(const cap_ops *ops, const void *mirror, const void *host);

/* The entry point a CUDA module exports: fills *out with its table, or returns -1 with a
 * message in err (e.g. no device). abi must equal CAP_OPS_ABI. */
typedef int (*cap_ops_module_init_fn)(int abi, const cap_ops **out, char *err, size_t errlen);
#define CAP_OPS_MODULE_INIT "cap_ops_module_init"
#endif

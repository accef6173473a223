/* oneDNN's matmul primitive, one per shape, for what dnnl_sgemm does not do well: the bf16
 * precision's GEMMs (operands converted to bfloat16, products summed in fp32 by brgemm on
 * AVX512-BF16's vdpbf16ps, about twice the fp32 rate on Zen 4; Debian's oneDNN 2.6 has no bf16
 * counterpart of dnnl_sgemm), some fp32 shapes (see cap_cpu_gemm), and every product with a
 * prepared weight, which is kept packed in the primitive's own layout for its B operand.
 *
 * Shapes: a training step's GEMMs take the number of tokens of its batch as M or K, and that
 * changes from batch to batch. A primitive per exact shape would mean thousands of them (each
 * made in about 0.1 ms with its own generated code), so an M or K above SPLIT is cut into a
 * multiple of SPLIT and a remainder below it: a few dozen shapes per product, made once. Up to
 * SPLIT (the recurrence's shrinking batch) every size has its own. */
#include "ops/cpu/cpu.h"
#include "ops/cpu/pack.h"
#include "ops/bf16.h"
#include "core/cpu.h"
#include "core/bigmem.h"
#include "core/error.h"
#include <dnnl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

enum { SPLIT = 64, CACHE_SLOTS = 4096 };
#ifndef STREAM_WEIGHTS
#define STREAM_WEIGHTS 1
#endif

int cap_cpu_set_precision(cap_precision p)
{
	if (p == CAP_PRECISION_BF16 && !cap_cpu_has(CAP_CPU_AVX512BF16))
		return cap_fail("the bf16 precision on --device cpu needs a processor with AVX512-BF16 "
		                "(this one: %s); use --precision fp32, or --device ref for the slow "
		                "definition", cap_cpu_describe());
	return cap_ref_set_precision(p);
}

#if defined(__x86_64__)
__attribute__((target("avx512f,avx512bw,avx512bf16")))
static void convert_avx512(const float *s, size_t n, uint16_t *d)
{
	size_t i = 0;
	for (; i + 32 <= n; i += 32) {
		__m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(s + i + 16), _mm512_loadu_ps(s + i));
		_mm512_storeu_si512((void *)(d + i), (__m512i)v);
	}
	for (; i < n; i++)
		d[i] = cap_bf16_from_float(s[i]);
}
#endif

/* dst (rows, cols), dense = src (rows, cols) with row stride ld, rounded to bfloat16. A training
 * step converts about 15 M values, mostly just written by another op and out of cache: one
 * core alone took 8 ms a step for them (3.8 s of a 30 s epoch), both 2.6 ms, so rows go to the
 * backend's threads. */
void cap_cpu_to_bf16(const float *src, int rows, int cols, int ld, uint16_t *dst)
{
	CAP_PARALLEL_FOR_IF((long)rows * cols >= 32768)
	for (int r = 0; r < rows; r++) {
		const float *s = src + (size_t)r * ld;
		uint16_t *d = dst + (size_t)r * cols;
#if defined(__x86_64__)
		if (cap_cpu_has(CAP_CPU_AVX512BF16)) {
			convert_avx512(s, (size_t)cols, d);
			continue;
		}
#endif
		for (int c = 0; c < cols; c++)
			d[c] = cap_bf16_from_float(s[c]);
	}
}

/* ---- primitives, one per shape ---- */

typedef struct shape {
	int M, N, K, ta, tb, sa, sb, ldc;
	int bf16;          /* A and B: 1 bfloat16, 0 float */
	int bias;          /* 1: a row of N floats added to every row of C */
	int packed;        /* 1: B in the packed layout of a prepared weight (sb unused) */
	float alpha, beta;
} shape;

typedef struct slot {
	shape key;
	int used;
	dnnl_primitive_t prim;
	dnnl_memory_t a, b, c, bias, scratch;
	size_t scratch_bytes;
} slot;

static dnnl_engine_t engine;
static dnnl_stream_t stream;
static slot cache[CACHE_SLOTS];
/* The primitives' scratchpad, one for all (they run one at a time, under the lock): left to
 * oneDNN, every primitive keeps its own, and the few hundred of a training run (shapes of the
 * weight gradients over each batch's tokens) held 90 MB of them. */
static void *scratchpad;
static size_t scratchpad_bytes;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void die(const char *what, const shape *k, dnnl_status_t st)
{
	fprintf(stderr, "cap: ops: oneDNN matmul (%s, M %d, N %d, K %d): %s failed: oneDNN status %d\n",
	        k->bf16 ? "bf16" : "fp32", k->M, k->N, k->K, what, (int)st);
	exit(1);
}

static void start(void)
{
	shape none = { 0 };
	dnnl_status_t st = dnnl_engine_create(&engine, dnnl_cpu, 0);
	if (st == dnnl_success)
		st = dnnl_stream_create(&stream, engine, dnnl_stream_default_flags);
	if (st != dnnl_success)
		die("creating the oneDNN engine", &none, st);
}

#define CHECK(call, what) do { dnnl_status_t st_ = (call); if (st_ != dnnl_success) die(what, k, st_); } while (0)

/* A matmul primitive for C (M, N) = alpha op(A) op(B) (+ bias) (+ beta C) with bf16 (or f32) A, B
 * of row strides sa, sb (as stored: op(A) = A^T when ta), an f32 bias (1, N) and an f32 C of row
 * stride ldc. */
static void make(slot *s, const shape *k, const dnnl_memory_desc_t *packed_b)
{
	dnnl_memory_desc_t a, b, c, bias;
	dnnl_dims_t ad = { k->M, k->K }, bd = { k->K, k->N }, cd = { k->M, k->N };
	dnnl_dims_t as = { k->ta ? 1 : k->sa, k->ta ? k->sa : 1 };
	dnnl_dims_t bs = { k->tb ? 1 : k->sb, k->tb ? k->sb : 1 };
	dnnl_dims_t cs = { k->ldc, 1 };
	dnnl_data_type_t dt = k->bf16 ? dnnl_bf16 : dnnl_f32;
	CHECK(dnnl_memory_desc_init_by_strides(&a, 2, ad, dt, as), "describing A");
	if (packed_b)
		b = *packed_b;
	else
		CHECK(dnnl_memory_desc_init_by_strides(&b, 2, bd, dt, bs), "describing B");
	CHECK(dnnl_memory_desc_init_by_strides(&c, 2, cd, dnnl_f32, cs), "describing C");
	dnnl_dims_t biasd = { 1, k->N }, biass = { k->N, 1 };
	if (k->bias)
		CHECK(dnnl_memory_desc_init_by_strides(&bias, 2, biasd, dnnl_f32, biass), "describing the bias");
	dnnl_matmul_desc_t d;
	CHECK(dnnl_matmul_desc_init(&d, &a, &b, k->bias ? &bias : NULL, &c), "describing the matmul");
	dnnl_primitive_attr_t attr;
	CHECK(dnnl_primitive_attr_create(&attr), "creating attributes");
	CHECK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "sharing the scratchpad");
	if (k->alpha != 1)
		CHECK(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &k->alpha), "setting alpha");
	if (k->beta != 0) {
		dnnl_post_ops_t po;
		CHECK(dnnl_post_ops_create(&po), "creating post-ops");
		CHECK(dnnl_post_ops_append_sum(po, k->beta), "adding beta C");
		CHECK(dnnl_primitive_attr_set_post_ops(attr, po), "setting post-ops");
		dnnl_post_ops_destroy(po);
	}
	dnnl_primitive_desc_t pd;
	CHECK(dnnl_primitive_desc_create(&pd, &d, attr, engine, NULL), "making the matmul");
	dnnl_primitive_attr_destroy(attr);
	CHECK(dnnl_primitive_create(&s->prim, pd), "making the matmul");
	const dnnl_memory_desc_t *sd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
	s->scratch_bytes = sd ? dnnl_memory_desc_get_size(sd) : 0;
	s->scratch = NULL;
	if (s->scratch_bytes)
		CHECK(dnnl_memory_create(&s->scratch, sd, engine, DNNL_MEMORY_NONE), "making the scratchpad");
	dnnl_primitive_desc_destroy(pd);
	CHECK(dnnl_memory_create(&s->a, &a, engine, DNNL_MEMORY_NONE), "making A");
	CHECK(dnnl_memory_create(&s->b, &b, engine, DNNL_MEMORY_NONE), "making B");
	CHECK(dnnl_memory_create(&s->c, &c, engine, DNNL_MEMORY_NONE), "making C");
	s->bias = NULL;
	if (k->bias)
		CHECK(dnnl_memory_create(&s->bias, &bias, engine, DNNL_MEMORY_NONE), "making the bias");
	s->key = *k;
	s->used = 1;
}

static void unmake(slot *s)
{
	dnnl_primitive_destroy(s->prim);
	dnnl_memory_destroy(s->a);
	dnnl_memory_destroy(s->b);
	dnnl_memory_destroy(s->c);
	if (s->bias)
		dnnl_memory_destroy(s->bias);
	if (s->scratch)
		dnnl_memory_destroy(s->scratch);
	s->used = 0;
}

static unsigned hash(const shape *k)
{
	unsigned h = 2166136261u;
	const unsigned char *p = (const unsigned char *)k;
	for (size_t i = 0; i < sizeof *k; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

/* Runs one primitive of shape k on A, B, C and bias (when k->bias), B in the layout packed_b
 * when k->packed (the caller holds the lock). */
static void run_one(const shape *k, const void *A, const void *B, float *C, const float *bias,
                    const dnnl_memory_desc_t *packed_b)
{
	slot tmp, *s = NULL;
	for (unsigned i = hash(k) % CACHE_SLOTS, n = 0; n < CACHE_SLOTS; i = (i + 1) % CACHE_SLOTS, n++) {
		if (!cache[i].used) {
			make(&cache[i], k, packed_b);
			s = &cache[i];
			break;
		}
		if (!memcmp(&cache[i].key, k, sizeof *k)) {
			s = &cache[i];
			break;
		}
	}
	if (!s) { /* a full cache (never in cap's own use): make, run and drop */
		make(&tmp, k, packed_b);
		s = &tmp;
	}
	CHECK(dnnl_memory_set_data_handle(s->a, (void *)A), "binding A");
	CHECK(dnnl_memory_set_data_handle(s->b, (void *)B), "binding B");
	CHECK(dnnl_memory_set_data_handle(s->c, C), "binding C");
	if (k->bias)
		CHECK(dnnl_memory_set_data_handle(s->bias, (void *)bias), "binding the bias");
	dnnl_exec_arg_t args[5] = { { DNNL_ARG_SRC, s->a }, { DNNL_ARG_WEIGHTS, s->b }, { DNNL_ARG_DST, s->c } };
	int nargs = 3;
	if (k->bias)
		args[nargs++] = (dnnl_exec_arg_t){ DNNL_ARG_BIAS, s->bias };
	if (s->scratch_bytes) {
		if (s->scratch_bytes > scratchpad_bytes) {
			free(scratchpad);
			scratchpad = cap_big_xalloc(s->scratch_bytes);
			scratchpad_bytes = s->scratch_bytes;
		}
		CHECK(dnnl_memory_set_data_handle(s->scratch, scratchpad), "binding the scratchpad");
		args[nargs++] = (dnnl_exec_arg_t){ DNNL_ARG_SCRATCHPAD, s->scratch };
	}
	CHECK(dnnl_primitive_execute(s->prim, stream, nargs, args), "running");
	CHECK(dnnl_stream_wait(stream), "waiting");
	if (s == &tmp)
		unmake(&tmp);
}

/* The parts of a dimension: the largest multiple of SPLIT, then the rest. */
static int parts(int n, int *off, int *len)
{
	int head = n > SPLIT ? n - n % SPLIT : n, np = 0;
	off[np] = 0, len[np++] = head;
	if (head < n)
		off[np] = head, len[np++] = n - head;
	return np;
}

/* C = alpha op(A) op(B) (+ bias) + beta C on primitives; A and B of element size es (2: bf16,
 * 4: f32); bias (N) or NULL, added with the first part of K (the others add to C). */
static void gemm_locked(int ta, int tb, int M, int N, int K, float alpha, const void *A, int sa,
                        const void *B, int sb, float beta, float *C, int ldc, int es, const float *bias)
{
	int mo[2], ml[2], ko[2], kl[2];
	int nm = parts(M, mo, ml), nk = parts(K, ko, kl);
	for (int i = 0; i < nm; i++)
		for (int j = 0; j < nk; j++) {
			shape k = { ml[i], N, kl[j], ta, tb, sa, sb, ldc, es == 2, bias && !j, 0, alpha, j ? 1.0f : beta };
			const char *a = (const char *)A + es * (ta ? (size_t)ko[j] * sa + mo[i] : (size_t)mo[i] * sa + ko[j]);
			const char *b = (const char *)B + es * (tb ? (size_t)ko[j] : (size_t)ko[j] * sb);
			run_one(&k, a, b, C + (size_t)mo[i] * ldc, bias, NULL);
		}
}

/* Grow-only scratch for the converted operands (under the lock). */
static uint16_t *scratch(uint16_t **p, size_t *cap, size_t n)
{
	if (n > *cap) {
		free(*p);
		*p = cap_big_xalloc(sizeof(uint16_t) * n);
		*cap = n;
	}
	return *p;
}

static uint16_t *abuf, *bbuf;
static size_t acap, bcap;

/* ---- frozen operands ---- */

/* An operand that will not change until thawed (ops.h): its bf16 rounding is made whole when a
 * product first reads any part of it, and every later product that reads a part of it takes
 * that part of the copy, at the same offsets and row stride. A training step reads dlogits in two
 * products and dG in three besides the recurrence; each rounded once, a bf16 step saved about
 * 5.5 M conversions (each a 4-byte read and a 2-byte write). The buffers are kept for the next
 * freeze. */
typedef struct frozen {
	const float *x;   /* NULL: a free slot */
	size_t n;
	uint16_t *b;      /* its rounding, once made */
	size_t cap;
	int made;
} frozen;
enum { FROZEN_SLOTS = 4 };
static frozen frozen_ops[FROZEN_SLOTS];

void cap_cpu_freeze(const float *x, size_t n)
{
	if (cap_host_precision() != CAP_PRECISION_BF16)   /* fp32 products read x as it is */
		return;
	pthread_once(&once, start);
	pthread_mutex_lock(&lock);
	for (int i = 0; i < FROZEN_SLOTS; i++)
		if (!frozen_ops[i].x) {
			frozen_ops[i].x = x, frozen_ops[i].n = n, frozen_ops[i].made = 0;
			break;
		}
	pthread_mutex_unlock(&lock);
}

void cap_cpu_thaw(const float *x)
{
	pthread_once(&once, start);
	pthread_mutex_lock(&lock);
	for (int i = 0; i < FROZEN_SLOTS; i++)
		if (frozen_ops[i].x == x) {
			frozen_ops[i].x = NULL;
			frozen_ops[i].made = 0;
			break;
		}
	pthread_mutex_unlock(&lock);
}

/* The bf16 rounding of src (rows, cols) with row stride ld, in a frozen operand's copy (row
 * stride ld there too), or NULL when src lies in none (the caller holds the lock). */
static const uint16_t *frozen_bf16(const float *src, int rows, int cols, int ld)
{
	if (rows <= 0 || cols <= 0)
		return NULL;
	for (int i = 0; i < FROZEN_SLOTS; i++) {
		frozen *f = &frozen_ops[i];
		if (!f->x || src < f->x || (size_t)(src - f->x) + (size_t)(rows - 1) * ld + cols > f->n)
			continue;
		if (!f->made) {
			if (f->n > f->cap) {
				free(f->b);
				f->b = cap_big_xalloc(sizeof(uint16_t) * f->n);
				f->cap = f->n;
			}
			/* rows of 4096: the threads share the pass (its tail a last short row) */
			size_t full = f->n / 4096;
			if (full)
				cap_cpu_to_bf16(f->x, (int)full, 4096, 4096, f->b);
			if (f->n > full * 4096)
				cap_cpu_to_bf16(f->x + full * 4096, 1, (int)(f->n - full * 4096), 0, f->b + full * 4096);
			f->made = 1;
		}
		return f->b + (src - f->x);
	}
	return NULL;
}

/* K == 0 (C = beta C) and empty products are handled by the fp32 path's caller. */
/* The bf16 operand src (rows, cols) with row stride ld: a frozen operand's part (row stride ld),
 * else rounded into the scratch *buf (dense, row stride cols); its row stride in *stride. Every
 * product that rounds an operand takes it from here (the caller holds the lock). */
static const uint16_t *as_bf16(const float *src, int rows, int cols, int ld, uint16_t **buf, size_t *cap,
                               int *stride)
{
	const uint16_t *f = frozen_bf16(src, rows, cols, ld);
	if (f) {
		*stride = ld;
		return f;
	}
	uint16_t *d = scratch(buf, cap, (size_t)rows * cols);
	cap_cpu_to_bf16(src, rows, cols, ld, d);
	*stride = cols;
	return d;
}

void cap_cpu_gemm_bf16(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                       const float *B, int ldb, float beta, float *C, int ldc)
{
	pthread_once(&once, start);
	pthread_mutex_lock(&lock);
	int sa, sb;
	const uint16_t *a = as_bf16(A, ta ? K : M, ta ? M : K, lda, &abuf, &acap, &sa);
	const uint16_t *b = as_bf16(B, tb ? N : K, tb ? K : N, ldb, &bbuf, &bcap, &sb);
	gemm_locked(ta, tb, M, N, K, alpha, a, sa, b, sb, beta, C, ldc, 2, NULL);
	pthread_mutex_unlock(&lock);
}

/* fp32 C = alpha op(A) op(B) + beta C on the primitive, for the cases sgemm does badly (see
 * cap_cpu_gemm) */
void cap_cpu_gemm_f32_prim(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                           const float *B, int ldb, float beta, float *C, int ldc)
{
	pthread_once(&once, start);
	pthread_mutex_lock(&lock);
	gemm_locked(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, 4, NULL);
	pthread_mutex_unlock(&lock);
}

/* The layout the matmul primitive wants for a B operand (K, N) of data type bf16 or f32. */
static dnnl_memory_desc_t packed_layout(int K, int N, int bf16)
{
	shape key = { SPLIT, N, K, 0, 0, K, 0, N, bf16, 0, 1, 1, 0 }, *k = &key;   /* for die */
	dnnl_data_type_t dt = bf16 ? dnnl_bf16 : dnnl_f32;
	dnnl_memory_desc_t a, any, c;
	dnnl_dims_t ad = { SPLIT, K }, bd = { K, N }, cd = { SPLIT, N };
	CHECK(dnnl_memory_desc_init_by_tag(&a, 2, ad, dt, dnnl_ab), "describing A");
	CHECK(dnnl_memory_desc_init_by_tag(&any, 2, bd, dt, dnnl_format_tag_any), "describing B");
	CHECK(dnnl_memory_desc_init_by_tag(&c, 2, cd, dnnl_f32, dnnl_ab), "describing C");
	dnnl_matmul_desc_t d;
	CHECK(dnnl_matmul_desc_init(&d, &a, &any, NULL, &c), "describing the matmul");
	dnnl_primitive_desc_t pd;
	CHECK(dnnl_primitive_desc_create(&pd, &d, NULL, engine, NULL), "choosing the packed layout");
	dnnl_memory_desc_t md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
	dnnl_primitive_desc_destroy(pd);
	return md;
}

/* Whether md is the blocked layout cap_cpu_pack writes (see pack.c); its outer block strides. */
static int own_layout(const dnnl_memory_desc_t *md, int K, int N, int bf16, long *sK, long *sN)
{
	const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
	int KB = bf16 ? 32 : 16;
	if (md->format_kind != dnnl_blocked || md->ndims != 2 || md->offset0 != 0 ||
	    md->padded_dims[0] != (K + KB - 1) / KB * KB || md->padded_dims[1] != (N + 63) / 64 * 64 ||
	    b->inner_nblks != (bf16 ? 3 : 2) || b->inner_blks[0] != 16 || b->inner_idxs[0] != 0 ||
	    b->inner_blks[1] != 64 || b->inner_idxs[1] != 1 ||
	    (bf16 && (b->inner_blks[2] != 2 || b->inner_idxs[2] != 0)))
		return 0;
	*sK = (long)b->strides[0];
	*sN = (long)b->strides[1];
	return 1;
}

/* Packing B (K, N), fp32 with element (k, n) at src[k sk + n sn], into the layout md the
 * primitive reads: by pack.c where md is the layout it writes, else by oneDNN's reorder (both
 * round to bf16 in that precision). */
typedef struct packing {
	dnnl_memory_desc_t md;
	size_t bytes;               /* of the packed B */
	int K, N, bf16;
	long sk, sn;
	int own;                    /* by cap_cpu_pack (outer block strides sK, sN) */
	long sK, sN;
	dnnl_memory_t from, to;     /* the reorder's, when not own; else NULL */
	dnnl_primitive_t reorder;
} packing;

static void packing_init(packing *p, int K, int N, long sk, long sn, int bf16)
{
	shape key = { SPLIT, N, K, 0, 0, 0, 0, N, bf16, 0, 1, 1, 0 }, *k = &key;   /* for die */
	memset(p, 0, sizeof *p);
	p->md = packed_layout(K, N, bf16);
	p->bytes = dnnl_memory_desc_get_size(&p->md);
	p->K = K, p->N = N, p->bf16 = bf16, p->sk = sk, p->sn = sn;
	p->own = own_layout(&p->md, K, N, bf16, &p->sK, &p->sN);
	if (p->own)
		return;
	dnnl_memory_desc_t from;
	dnnl_dims_t bd = { K, N }, fs = { sk, sn };
	CHECK(dnnl_memory_desc_init_by_strides(&from, 2, bd, dnnl_f32, fs), "describing B");
	CHECK(dnnl_memory_create(&p->from, &from, engine, DNNL_MEMORY_NONE), "binding B");
	CHECK(dnnl_memory_create(&p->to, &p->md, engine, DNNL_MEMORY_NONE), "binding the packed B");
	dnnl_primitive_desc_t rpd;
	CHECK(dnnl_reorder_primitive_desc_create(&rpd, &from, engine, &p->md, engine, NULL), "making the packing");
	CHECK(dnnl_primitive_create(&p->reorder, rpd), "making the packing");
	dnnl_primitive_desc_destroy(rpd);
}

static void packing_run(const packing *p, const float *src, void *dst, int past_cache)
{
	if (p->own) {
		cap_cpu_pack(src, p->sk, p->sn, p->K, p->N, p->bf16, p->sK, p->sN, dst, past_cache);
		return;
	}
	shape key = { 0, p->N, p->K, 0, 0, 0, 0, p->N, p->bf16, 0, 1, 1, 0 }, *k = &key;   /* for die */
	CHECK(dnnl_memory_set_data_handle(p->from, (void *)src), "binding B");
	CHECK(dnnl_memory_set_data_handle(p->to, dst), "binding the packed B");
	dnnl_exec_arg_t args[2] = { { DNNL_ARG_FROM, p->from }, { DNNL_ARG_TO, p->to } };
	CHECK(dnnl_primitive_execute(p->reorder, stream, 2, args), "packing B");
	CHECK(dnnl_stream_wait(stream), "waiting");
}

static void packing_free(packing *p)
{
	if (p->reorder) {
		dnnl_primitive_destroy(p->reorder);
		dnnl_memory_destroy(p->from);
		dnnl_memory_destroy(p->to);
	}
}

/* ---- A^T B, B packed at every call ---- */

/* The weight gradients dY^T X over a batch's tokens: with X given as plain strides, brgemm
 * copies it into its blocks inside the call; packed first they ran 16-22% faster (2-core Zen 5,
 * operands out of cache: fp32 dW_hh 2048 x 512 over 640 tokens 4.0 ms against sgemm's 5.1,
 * bf16 2.6 against 2.9; dW_ih and the output layer's likewise, 2.5-22%). K (the tokens)
 * changes from batch to batch: cut as the primitives are (a multiple of SPLIT, then the rest),
 * each part packed on its own, so that the packings, like the primitives, come in a few dozen
 * shapes. */
typedef struct packer {
	int ld, used;
	packing pk;       /* of B (K, N) with row stride ld */
} packer;

enum { PACKER_SLOTS = 1024 };
static packer packers[PACKER_SLOTS];
static void *pbuf;
static size_t pbuf_cap;

/* The packer of B (K, N) f32 with row stride ld; NULL when the table is full (never in cap's
 * own use: the caller then takes the plain path). */
static packer *packer_for(int K, int N, int ld, int bf16)
{
	unsigned h = (((unsigned)K * 31u + (unsigned)N) * 31u + (unsigned)ld) * 2u + (unsigned)bf16;
	for (unsigned i = h % PACKER_SLOTS, n = 0; n < PACKER_SLOTS; i = (i + 1) % PACKER_SLOTS, n++) {
		packer *p = &packers[i];
		if (!p->used) {
			packing_init(&p->pk, K, N, ld, 1, bf16);
			p->ld = ld, p->used = 1;
			return p;
		}
		if (p->pk.K == K && p->pk.N == N && p->ld == ld && p->pk.bf16 == bf16)
			return p;
	}
	return NULL;
}

/* C (M, N) = alpha A^T B + beta C, A stored (K, M) with row stride lda, B (K, N) with ldb. */
void cap_cpu_gemm_tn(int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                     int ldb, float beta, float *C, int ldc)
{
	int bf16 = cap_host_precision() == CAP_PRECISION_BF16, es = bf16 ? 2 : 4;
	pthread_once(&once, start);
	pthread_mutex_lock(&lock);
	const void *a = A;
	int sa = lda;
	if (bf16)
		a = as_bf16(A, K, M, lda, &abuf, &acap, &sa);
	int ko[2], kl[2], nk = parts(K, ko, kl);
	for (int j = 0; j < nk; j++) {
		packer *p = packer_for(kl[j], N, ldb, bf16);
		if (!p) {   /* a full table: plain B */
			const void *b = B + (size_t)ko[j] * ldb;
			int sb = ldb;
			if (bf16)
				b = as_bf16(B + (size_t)ko[j] * ldb, kl[j], N, ldb, &bbuf, &bcap, &sb);
			gemm_locked(1, 0, M, N, kl[j], alpha, (const char *)a + es * (size_t)ko[j] * sa, sa, b,
			            sb, j ? 1 : beta, C, ldc, es, NULL);
			continue;
		}
		if (p->pk.bytes > pbuf_cap) {
			free(pbuf);
			pbuf = cap_big_xalloc(p->pk.bytes);
			pbuf_cap = p->pk.bytes;
		}
		packing_run(&p->pk, B + (size_t)ko[j] * ldb, pbuf, 0);   /* read at once: through the cache */
		shape key = { M, N, kl[j], 1, 0, sa, 0, ldc, bf16, 0, 1, alpha, j ? 1.0f : beta };
		run_one(&key, (const char *)a + es * (size_t)ko[j] * sa, pbuf, C, NULL, &p->pk.md);
	}
	pthread_mutex_unlock(&lock);
}

/* ---- prepared weights, packed ---- */

/* W as the B operand of x W^T (trans) or x W, packed (oneDNN's blocked "any" format; on AVX-512
 * 16 x 64 blocks, bf16 pairs interleaved along K) from W (fp32, as stored). Given B as plain
 * strides, brgemm copies it into such blocks inside every call: packed once, the products of a
 * training step ran 10-60% faster (2-core Zen 5, alone and warm: bf16 x W_hh^T at 64 rows 868
 * against 559 GFLOP/s, fp32 451 against 345; the logits 826-846 against 685-699, fp32 412
 * against 372). The layout depends on K, N and the data type, not on M (checked at 1 to 1,000
 * rows), so one copy serves every batch size. */
struct cap_cpu_packed {
	packing pk;         /* of op(W) as (K, N), in the precision it was packed in */
	const float *w;
	void *data;
};

static struct cap_cpu_packed *pack_new(const cap_weight *w, int trans, int bf16)
{
	struct cap_cpu_packed *p = cap_xcalloc(1, sizeof *p);
	packing_init(&p->pk, trans ? w->cols : w->rows, trans ? w->rows : w->cols, trans ? 1 : w->cols,
	             trans ? w->cols : 1, bf16);
	p->w = w->w;
	p->data = cap_big_xalloc(p->pk.bytes);   /* huge pages, see core/bigmem.h */
	packing_run(&p->pk, p->w, p->data, 0);
	return p;
}

static void pack_free(struct cap_cpu_packed *p)
{
	if (!p)
		return;
	packing_free(&p->pk);
	free(p->data);
	free(p);
}

/* Drops a packed copy made in another precision than bf16 says (the caller holds the lock):
 * a weight made before a change of precision is packed again when next used. */
static void drop_stale(struct cap_cpu_packed **pp, int bf16)
{
	if (*pp && (*pp)->pk.bf16 != bf16) {
		pack_free(*pp);
		*pp = NULL;
	}
}

void cap_cpu_weight_update(cap_weight *w)
{
	int bf16 = cap_host_precision() == CAP_PRECISION_BF16;
	pthread_once(&once, start);
	pthread_mutex_lock(&lock);
	for (int t = 0; t < 2; t++) {
		drop_stale(&w->packed[t], bf16);
		if (w->packed[t])
			packing_run(&w->packed[t]->pk, w->w, w->packed[t]->data, STREAM_WEIGHTS);
	}
	pthread_mutex_unlock(&lock);
}

/* Adam over W's parameters and both packings in one pass of bands of 64 rows, each band packed
 * right after its Adam step, while its new values are still in the core's cache: weight_update
 * after a whole adam_step reads W back from memory. The packs are written with streaming stores
 * (STREAM_WEIGHTS): they are read only at the next step's forward, and cached stores would first
 * read every line they overwrite. On a 2-core Zen 5, the default decoder's Adam and packing
 * took 2.1 ms a step against 2.6-2.8 (200-step profiles), and the steps 0.0413-0.0415 s against
 * 0.0428-0.0432 in fp32, 0.0246-0.0247 against 0.0252-0.0256 in bf16 (4 interleaved pairs of
 * 200 steps; streaming alone: 0.5-1%). The parameters come out bitwise as adam_step makes them
 * (the same band kernel). Where a packing is oneDNN's reorder, or the processor has no AVX-512:
 * adam_step, then weight_update. */
void cap_cpu_weight_adam(cap_weight *w, const float *grad, float *m, float *v, const cap_adam_consts *k)
{
	float *p = (float *)w->w;   /* the caller's parameters, which this op may write (ops.h) */
	int bf16 = cap_host_precision() == CAP_PRECISION_BF16, bands = 1;
	pthread_once(&once, start);
	pthread_mutex_lock(&lock);
	for (int t = 0; t < 2; t++) {
		drop_stale(&w->packed[t], bf16);
		if (w->packed[t] && !w->packed[t]->pk.own)
			bands = 0;
	}
#if defined(__x86_64__)
	bands = bands && cap_cpu_has(CAP_CPU_AVX512F);
#else
	bands = 0;
#endif
	if (!bands) {
		pthread_mutex_unlock(&lock);
		cap_ops_cpu()->adam_step(p, grad, m, v, (size_t)w->rows * w->cols, k);
		cap_cpu_weight_update(w);
		return;
	}
#if defined(__x86_64__)
	long nb = (w->rows + 63) / 64;
	CAP_PARALLEL_FOR_IF(nb > 1)
	for (long b = 0; b < nb; b++) {
		int r0 = (int)b * 64, nr = w->rows - r0 < 64 ? w->rows - r0 : 64;
		size_t o = (size_t)r0 * w->cols;
		cap_avx512_adam_band(p + o, grad + o, m + o, v + o, (size_t)nr * w->cols, k);
		for (int t = 0; t < 2; t++) {
			const struct cap_cpu_packed *pk = w->packed[t];
			if (pk)
				cap_cpu_pack_rows(p, w->rows, w->cols, t, r0, nr, bf16, pk->pk.sK, pk->pk.sN, pk->data,
				                  STREAM_WEIGHTS);
		}
	}
#endif
	pthread_mutex_unlock(&lock);
}

void cap_cpu_weight_free(cap_weight *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&lock);
	for (int t = 0; t < 2; t++)
		pack_free(w->packed[t]);
	pthread_mutex_unlock(&lock);
	cap_ref_weight_free(w);
}

void cap_cpu_matmul_packed(const float *x, int n, cap_weight *w, int trans, float beta, float *y,
                           const float *b1, const float *b2)
{
	static float *bsum;
	static size_t bsum_cap;
	int bf16 = cap_host_precision() == CAP_PRECISION_BF16;
	pthread_once(&once, start);
	pthread_mutex_lock(&lock);
	struct cap_cpu_packed **pp = &w->packed[trans];
	drop_stale(pp, bf16);
	if (!*pp)
		*pp = pack_new(w, trans, bf16);
	const float *bias = b1;
	if (b1 && b2) {   /* two biases are first added into one row, as bias_rows adds them */
		if ((size_t)w->rows > bsum_cap) {
			free(bsum);
			bsum = cap_xmalloc(sizeof(float) * (size_t)w->rows);
			bsum_cap = (size_t)w->rows;
		}
		for (int j = 0; j < w->rows; j++)
			bsum[j] = b1[j] + b2[j];
		bias = bsum;
	}
	int in = trans ? w->cols : w->rows, out = trans ? w->rows : w->cols, es = bf16 ? 2 : 4;
	const void *a = x;
	int sa = in;
	if (bf16)
		a = as_bf16(x, n, in, in, &abuf, &acap, &sa);
	int mo[2], ml[2], nm = parts(n, mo, ml);
	for (int i = 0; i < nm; i++) {
		shape k = { ml[i], out, in, 0, trans, sa, 0, out, bf16, bias != NULL, 1, 1, bias ? 0 : beta };
		run_one(&k, (const char *)a + es * (size_t)mo[i] * sa, (*pp)->data, y + (size_t)mo[i] * out,
		        bias, &(*pp)->pk.md);
	}
	pthread_mutex_unlock(&lock);
}

/* The cpu backend's image encoder: the ResNet forward with oneDNN primitives (see
 * lib/encoder/resnet.h for the network, ops.h for the contract).
 *
 * Every convolution is created with format_tag_any for its weights and output, so the library
 * picks its blocked layouts (nChw16c and OIhw16i16o-style on AVX-512); each layer then takes
 * its producer's exact layout as input, so activations stay blocked from the stem to the
 * pool and the only reorders are of the input batch, the output features and, once at
 * creation, the weights. ReLU is a post-op of each conv; the residual add is a sum post-op:
 * the last conv of a block accumulates into the buffer that already holds the identity (the
 * block input itself, or the downsample conv's output), in place.
 *
 * Three activation buffers of the largest activation size suffice: with X the block input,
 * conv1 X->A, conv2 A->B, then either conv3 B->X (+=) or downsample X->A and conv3 B->A (+=).
 * All primitives run in order on one in-order stream; oneDNN threads each one with OpenMP. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dnnl.h>
#include "ops/cpu/cpu.h"
#include "core/cpu.h"
#include "ops/ref/conv.h"
#include "core/error.h"
#include "ops/resnet_net.h"

#define NSLOTS 3

typedef struct step {
	dnnl_primitive_t prim;
	int nargs;
	dnnl_exec_arg_t args[4];
} step;

/* An activation: a memory object without its own buffer, later pointed into slot. */
typedef struct act {
	dnnl_memory_t mem;
	dnnl_memory_desc_t md;
	int slot;
	int h, w;
} act;

struct cap_encoder {
	cap_resnet *net;         /* only while building */
	int batch, h, w, flags, dim;
	dnnl_data_type_t dt;
	dnnl_engine_t eng;
	dnnl_stream_t stream;
	step *steps;
	int nsteps, capsteps;
	dnnl_memory_t *mems;      /* every memory object, destroyed at the end */
	int nmems, capmems;
	int *mem_slot;            /* slot of mems[i] or -1 (owns its buffer or uses the net's) */
	size_t slot_size[NSLOTS];
	void *slots[NSLOTS];
	float *in_stage;          /* (batch, 3, h, w) plain */
	float *out_stage;         /* (batch, dim) plain */
	char impl[160];
};

#define DN(call) do { \
	dnnl_status_t st_ = (call); \
	if (st_ != dnnl_success) \
		return cap_fail("oneDNN: %s failed (status %d) in %s", #call, (int)st_, __func__); \
	} while (0)

static int add_mem(cap_encoder *e, const dnnl_memory_desc_t *md, void *handle, int slot,
                   dnnl_memory_t *out)
{
	DN(dnnl_memory_create(out, md, e->eng, handle));
	if (e->nmems == e->capmems) {
		e->capmems = e->capmems ? 2 * e->capmems : 64;
		e->mems = cap_xrealloc(e->mems, (size_t)e->capmems * sizeof *e->mems);
		e->mem_slot = cap_xrealloc(e->mem_slot, (size_t)e->capmems * sizeof *e->mem_slot);
	}
	e->mems[e->nmems] = *out;
	e->mem_slot[e->nmems++] = slot;
	if (slot >= 0) {
		size_t sz = dnnl_memory_desc_get_size(md);
		if (sz > e->slot_size[slot])
			e->slot_size[slot] = sz;
	}
	return 0;
}

static int add_step(cap_encoder *e, dnnl_primitive_desc_t pd, int nargs, const dnnl_exec_arg_t *args)
{
	dnnl_primitive_t p;
	DN(dnnl_primitive_create(&p, pd));
	if (e->nsteps == e->capsteps) {
		e->capsteps = e->capsteps ? 2 * e->capsteps : 64;
		e->steps = cap_xrealloc(e->steps, (size_t)e->capsteps * sizeof *e->steps);
	}
	step *s = &e->steps[e->nsteps++];
	s->prim = p;
	s->nargs = nargs;
	memcpy(s->args, args, (size_t)nargs * sizeof *args);
	return 0;
}

/* Reorders user data (plain layout md_from, handle) into a new library-owned memory of md_to,
 * now, once. */
static int reorder_once(cap_encoder *e, const dnnl_memory_desc_t *md_from, void *handle,
                        const dnnl_memory_desc_t *md_to, dnnl_memory_t *out)
{
	dnnl_memory_t from;
	dnnl_primitive_desc_t pd;
	dnnl_primitive_t p;
	if (add_mem(e, md_to, DNNL_MEMORY_ALLOCATE, -1, out) < 0)
		return -1;
	DN(dnnl_memory_create(&from, md_from, e->eng, handle));
	dnnl_status_t st = dnnl_reorder_primitive_desc_create(&pd, md_from, e->eng, md_to, e->eng, NULL);
	if (st == dnnl_success) {
		st = dnnl_primitive_create(&p, pd);
		dnnl_primitive_desc_destroy(pd);
		if (st == dnnl_success) {
			dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, *out}};
			st = dnnl_primitive_execute(p, e->stream, 2, args);
			if (st == dnnl_success)
				st = dnnl_stream_wait(e->stream);
			dnnl_primitive_destroy(p);
		}
	}
	dnnl_memory_destroy(from);
	if (st != dnnl_success)
		return cap_fail("oneDNN: weight reorder failed (status %d)", (int)st);
	return 0;
}

/* Adds conv c reading src. The output goes into *dst_fixed when given (with sum != 0 the conv
 * adds to what it holds), else into a new activation in slot dst_slot. src == NULL: the
 * stem, whose input layout the library chooses (returned in *src_md_out). */
static int add_conv(cap_encoder *e, cap_conv *c, const act *src, act *dst_fixed,
                    int dst_slot, int sum, int relu, act *out, dnnl_memory_desc_t *src_md_out)
{
	int h = src ? src->h : e->h, w = src ? src->w : e->w;
	int oh = cap_conv_out_size(h, c->k, c->stride, c->pad);
	int ow = cap_conv_out_size(w, c->k, c->stride, c->pad);
	dnnl_dims_t sdims = {e->batch, c->cin, h, w}, wdims = {c->cout, c->cin, c->k, c->k};
	dnnl_dims_t bdims = {c->cout}, ddims = {e->batch, c->cout, oh, ow};
	dnnl_dims_t strides = {c->stride, c->stride}, pad = {c->pad, c->pad};
	dnnl_memory_desc_t smd, wmd, bmd, dmd;
	if (src)
		smd = src->md;
	else
		DN(dnnl_memory_desc_init_by_tag(&smd, 4, sdims, e->dt, dnnl_format_tag_any));
	DN(dnnl_memory_desc_init_by_tag(&wmd, 4, wdims, e->dt, dnnl_format_tag_any));
	DN(dnnl_memory_desc_init_by_tag(&bmd, 1, bdims, dnnl_f32, dnnl_x));
	if (dst_fixed)
		dmd = dst_fixed->md;
	else
		DN(dnnl_memory_desc_init_by_tag(&dmd, 4, ddims, e->dt, dnnl_format_tag_any));
	dnnl_convolution_desc_t cd;
	DN(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct,
	                                      &smd, &wmd, &bmd, &dmd, strides, pad, pad));
	dnnl_primitive_attr_t attr;
	dnnl_post_ops_t po;
	DN(dnnl_primitive_attr_create(&attr));
	DN(dnnl_post_ops_create(&po));
	if (sum)
		DN(dnnl_post_ops_append_sum(po, 1.0f));
	if (relu)
		DN(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f));
	DN(dnnl_primitive_attr_set_post_ops(attr, po));
	dnnl_post_ops_destroy(po);
	dnnl_primitive_desc_t pd;
	dnnl_status_t st = dnnl_primitive_desc_create(&pd, &cd, attr, e->eng, NULL);
	dnnl_primitive_attr_destroy(attr);
	if (st != dnnl_success)
		return cap_fail("oneDNN: no convolution for %dx%d/%d %d->%d channels (status %d)",
		                c->k, c->k, c->stride, c->cin, c->cout, (int)st);
	int rc = -1;
	const dnnl_memory_desc_t *q;
	dnnl_memory_desc_t plain_w;
	dnnl_memory_t smem = src ? src->mem : NULL, wmem, bmem;
	if (!src) {
		/* the stem: its source layout is the library's choice; the input reorder fills it */
		*src_md_out = *dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
		if (add_mem(e, src_md_out, DNNL_MEMORY_NONE, 2, &smem) < 0)
			goto out;
	}
	if (c->k == 3 && !e->impl[0]) {
		const char *name = NULL;
		if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) == dnnl_success && name)
			snprintf(e->impl, sizeof e->impl, "%s", name);
	}
	q = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
	if (dnnl_memory_desc_init_by_tag(&plain_w, 4, wdims, dnnl_f32, dnnl_oihw) != dnnl_success ||
	    reorder_once(e, &plain_w, c->w, q, &wmem) < 0)
		goto out;
	q = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 1);
	if (add_mem(e, q, DNNL_MEMORY_ALLOCATE, -1, &bmem) < 0)
		goto out;
	void *bias;
	if (dnnl_memory_get_data_handle(bmem, &bias) != dnnl_success) {
		cap_fail("oneDNN: no bias buffer");
		goto out;
	}
	memcpy(bias, c->b, (size_t)c->cout * sizeof *c->b);
	if (e->flags & CAP_ENCODER_TAKE_WEIGHTS) {
		free(c->w);
		c->w = NULL;
	}
	if (dst_fixed) {
		*out = *dst_fixed;
	} else {
		out->md = *dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
		out->slot = dst_slot;
		out->h = oh;
		out->w = ow;
		if (add_mem(e, &out->md, DNNL_MEMORY_NONE, dst_slot, &out->mem) < 0)
			goto out;
	}
	dnnl_exec_arg_t args[4] = {
		{DNNL_ARG_SRC, smem}, {DNNL_ARG_WEIGHTS, wmem}, {DNNL_ARG_BIAS, bmem}, {DNNL_ARG_DST, out->mem}};
	rc = add_step(e, pd, 4, args);
out:
	dnnl_primitive_desc_destroy(pd);
	return rc;
}

static int add_pool(cap_encoder *e, const act *src, dnnl_alg_kind_t alg, int kh, int kw,
                    int stride, int pad, int slot, dnnl_data_type_t dt, act *out)
{
	int oh = cap_conv_out_size(src->h, kh, stride, pad), ow = cap_conv_out_size(src->w, kw, stride, pad);
	dnnl_dims_t ddims = {e->batch, src->md.dims[1], oh, ow};
	dnnl_dims_t strides = {stride, stride}, kernel = {kh, kw}, pads = {pad, pad};
	dnnl_memory_desc_t dmd;
	DN(dnnl_memory_desc_init_by_tag(&dmd, 4, ddims, dt, dnnl_format_tag_any));
	dnnl_pooling_desc_t pdsc;
	DN(dnnl_pooling_forward_desc_init(&pdsc, dnnl_forward_inference, alg, &src->md, &dmd,
	                                  strides, kernel, pads, pads));
	dnnl_primitive_desc_t pd;
	DN(dnnl_primitive_desc_create(&pd, &pdsc, NULL, e->eng, NULL));
	out->md = *dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
	out->slot = slot;
	out->h = oh;
	out->w = ow;
	int rc = add_mem(e, &out->md, DNNL_MEMORY_NONE, slot, &out->mem);
	if (rc == 0) {
		dnnl_exec_arg_t args[2] = {{DNNL_ARG_SRC, src->mem}, {DNNL_ARG_DST, out->mem}};
		rc = add_step(e, pd, 2, args);
	}
	dnnl_primitive_desc_destroy(pd);
	return rc;
}

static int add_reorder(cap_encoder *e, dnnl_memory_t from, const dnnl_memory_desc_t *from_md,
                       dnnl_memory_t to, const dnnl_memory_desc_t *to_md)
{
	dnnl_primitive_desc_t pd;
	DN(dnnl_reorder_primitive_desc_create(&pd, from_md, e->eng, to_md, e->eng, NULL));
	dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
	int rc = add_step(e, pd, 2, args);
	dnnl_primitive_desc_destroy(pd);
	return rc;
}

static int build(cap_encoder *e)
{
	cap_resnet *net = e->net;
	act x, a, b, d, t;
	dnnl_memory_desc_t stem_src_md, user_md;
	dnnl_memory_t user_in;
	/* The stem creates its source memory (slot 2) and step; the input reorder goes first, so
	 * build the stem, then put the reorder in front of it. */
	if (add_conv(e, &net->stem, NULL, NULL, 0, 0, 1, &t, &stem_src_md) < 0)
		return -1;
	dnnl_dims_t idims = {e->batch, 3, e->h, e->w};
	DN(dnnl_memory_desc_init_by_tag(&user_md, 4, idims, dnnl_f32, dnnl_nchw));
	if (add_mem(e, &user_md, e->in_stage, -1, &user_in) < 0)
		return -1;
	dnnl_memory_t stem_src = e->steps[e->nsteps - 1].args[0].memory;
	if (add_reorder(e, user_in, &user_md, stem_src, &stem_src_md) < 0)
		return -1;
	step tmp = e->steps[e->nsteps - 1];   /* move the reorder before the stem */
	e->steps[e->nsteps - 1] = e->steps[e->nsteps - 2];
	e->steps[e->nsteps - 2] = tmp;
	if (add_pool(e, &t, dnnl_pooling_max, 3, 3, 2, 1, 1, e->dt, &x) < 0)
		return -1;
	for (int i = 0; i < net->nblocks; i++) {
		cap_resnet_block *bl = &net->blocks[i];
		int sa = (x.slot + 1) % NSLOTS, sb = (x.slot + 2) % NSLOTS;
		if (add_conv(e, &bl->c1, &x, NULL, sa, 0, 1, &a, NULL) < 0)
			return -1;
		if (net->bottleneck) {
			if (add_conv(e, &bl->c2, &a, NULL, sb, 0, 1, &b, NULL) < 0)
				return -1;
			if (bl->down.k) {
				if (add_conv(e, &bl->down, &x, NULL, sa, 0, 0, &d, NULL) < 0 ||
				    add_conv(e, &bl->c3, &b, &d, sa, 1, 1, &t, NULL) < 0)
					return -1;
				x = d;
			} else if (add_conv(e, &bl->c3, &b, &x, x.slot, 1, 1, &t, NULL) < 0) {
				return -1;
			}
		} else {
			if (bl->down.k) {
				if (add_conv(e, &bl->down, &x, NULL, sb, 0, 0, &d, NULL) < 0 ||
				    add_conv(e, &bl->c2, &a, &d, sb, 1, 1, &t, NULL) < 0)
					return -1;
				x = d;
			} else if (add_conv(e, &bl->c2, &a, &x, x.slot, 1, 1, &t, NULL) < 0) {
				return -1;
			}
		}
	}
	/* Global average pool, in f32 even in bf16 mode (the sum of 49 values is where bf16's
	 * 8-bit mantissa would cost the most), then a reorder to plain (batch, dim). */
	act p;
	if (e->dt != dnnl_f32) {
		/* oneDNN 2.6 has no bf16 -> f32 pooling: widen the last map first (2048 x 7 x 7). */
		act f = x;
		dnnl_dims_t fdims = {e->batch, x.md.dims[1], x.h, x.w};
		DN(dnnl_memory_desc_init_by_tag(&f.md, 4, fdims, dnnl_f32, dnnl_nChw16c));
		f.slot = (x.slot + 2) % NSLOTS;
		if (add_mem(e, &f.md, DNNL_MEMORY_NONE, f.slot, &f.mem) < 0 ||
		    add_reorder(e, x.mem, &x.md, f.mem, &f.md) < 0)
			return -1;
		x = f;
	}
	if (add_pool(e, &x, dnnl_pooling_avg_exclude_padding, x.h, x.w, 1, 0, (x.slot + 1) % NSLOTS,
	             dnnl_f32, &p) < 0)
		return -1;
	dnnl_dims_t odims = {e->batch, net->dim, 1, 1};
	dnnl_memory_desc_t out_md;
	dnnl_memory_t user_out;
	DN(dnnl_memory_desc_init_by_tag(&out_md, 4, odims, dnnl_f32, dnnl_nchw));
	if (add_mem(e, &out_md, e->out_stage, -1, &user_out) < 0 ||
	    add_reorder(e, p.mem, &p.md, user_out, &out_md) < 0)
		return -1;
	/* Point every activation into its slot. */
	for (int s = 0; s < NSLOTS; s++) {
		e->slots[s] = aligned_alloc(64, (e->slot_size[s] + 63) / 64 * 64 + 64);
		if (!e->slots[s])
			return cap_fail("out of memory for activations (%zu bytes)", e->slot_size[s]);
	}
	for (int i = 0; i < e->nmems; i++)
		if (e->mem_slot[i] >= 0)
			DN(dnnl_memory_set_data_handle(e->mems[i], e->slots[e->mem_slot[i]]));
	return 0;
}

cap_encoder *cap_cpu_encoder_new(cap_resnet *net, int batch, int h, int w, int flags)
{
	if (batch < 1 || batch > 4096)
		return cap_fail("batch size %d out of range 1..4096", batch), NULL;
	if (h < 32 || w < 32 || h > 4096 || w > 4096)
		return cap_fail("image of %dx%d out of range 32..4096", w, h), NULL;
	if (!net->stem.w)
		return cap_fail("network weights already taken by another engine"), NULL;
	if ((flags & CAP_ENCODER_BF16) && !cap_cpu_has(CAP_CPU_AVX512BF16))   /* as set_precision */
		return cap_fail("the bf16 encoder on --device cpu needs a processor with AVX512-BF16 "
		                "(this one: %s)", cap_cpu_describe()), NULL;
	cap_encoder *e = cap_xcalloc(1, sizeof *e);
	e->net = net;
	e->dim = net->dim;
	e->batch = batch;
	e->h = h;
	e->w = w;
	e->flags = flags;
	e->dt = (flags & CAP_ENCODER_BF16) ? dnnl_bf16 : dnnl_f32;
	e->in_stage = cap_xmalloc((size_t)batch * 3 * h * w * sizeof *e->in_stage);
	e->out_stage = cap_xmalloc((size_t)batch * net->dim * sizeof *e->out_stage);
	if (dnnl_engine_create(&e->eng, dnnl_cpu, 0) != dnnl_success) {
		cap_fail("oneDNN: cannot create a CPU engine");
		goto fail;
	}
	if (dnnl_stream_create(&e->stream, e->eng, dnnl_stream_default_flags) != dnnl_success) {
		cap_fail("oneDNN: cannot create a stream");
		goto fail;
	}
	if (build(e) < 0)
		goto fail;
	e->net = NULL;
	return e;
fail:
	cap_cpu_encoder_free(e);
	return NULL;
}

int cap_cpu_encoder_run(cap_encoder *e, const float *in, int n, float *out)
{
	size_t img = (size_t)3 * e->h * e->w;
	if (n < 1 || n > e->batch)
		return cap_fail("batch of %d images for an engine of %d", n, e->batch);
	memcpy(e->in_stage, in, (size_t)n * img * sizeof *in);
	if (n < e->batch)   /* a short last batch: the padding images are computed and dropped */
		memset(e->in_stage + (size_t)n * img, 0, (size_t)(e->batch - n) * img * sizeof *in);
	for (int i = 0; i < e->nsteps; i++)
		DN(dnnl_primitive_execute(e->steps[i].prim, e->stream, e->steps[i].nargs, e->steps[i].args));
	DN(dnnl_stream_wait(e->stream));
	memcpy(out, e->out_stage, (size_t)n * e->dim * sizeof *out);
	return 0;
}

const char *cap_cpu_encoder_impl(const cap_encoder *e)
{
	return e->impl;
}

void cap_cpu_encoder_free(cap_encoder *e)
{
	if (!e)
		return;
	for (int i = 0; i < e->nsteps; i++)
		dnnl_primitive_destroy(e->steps[i].prim);
	for (int i = 0; i < e->nmems; i++)
		dnnl_memory_destroy(e->mems[i]);
	for (int s = 0; s < NSLOTS; s++)
		free(e->slots[s]);
	if (e->stream)
		dnnl_stream_destroy(e->stream);
	if (e->eng)
		dnnl_engine_destroy(e->eng);
	free(e->steps);
	free(e->mems);
	free(e->mem_slot);
	free(e->in_stage);
	free(e->out_stage);
	free(e);
}

/* The reference image encoder: the ResNet forward as plain C loops over NCHW float32 (see
 * lib/encoder/resnet.h for the network, lib/ops/ref/conv.c for the operators). Slow; the
 * definition the fast encoders are tested against. */
#include "ops/host.h"
#include "ops/ref/conv.h"
#include "core/error.h"
#include "encoder/resnet.h"
#include <stdlib.h>

struct cap_encoder {
	cap_resnet *net;   /* borrowed: the net stays the caller's */
	int batch, h, w;
};

/* Runs one conv; *h, *w become the output size. */
static float *conv_run(const cap_conv *c, const float *in, int n, int *h, int *w,
                       const float *residual, int relu)
{
	int oh = cap_conv_out_size(*h, c->k, c->stride, c->pad);
	int ow = cap_conv_out_size(*w, c->k, c->stride, c->pad);
	float *out = cap_xmalloc((size_t)n * c->cout * oh * ow * sizeof *out);
	cap_conv2d_ref(in, n, c->cin, *h, *w, c->w, c->b, c->cout, c->k, c->stride, c->pad,
	               residual, relu, out);
	*h = oh;
	*w = ow;
	return out;
}

static int forward(const cap_resnet *net, const float *in, int n, int h, int w, float *out)
{
	if (h < 32 || w < 32)
		return cap_fail("image of %dx%d is too small for a ResNet (at least 32x32)", w, h);
	float *x = conv_run(&net->stem, in, n, &h, &w, NULL, 1);
	int ph = cap_conv_out_size(h, 3, 2, 1), pw = cap_conv_out_size(w, 3, 2, 1);
	float *p = cap_xmalloc((size_t)n * net->stem.cout * ph * pw * sizeof *p);
	cap_maxpool2d_ref(x, n, net->stem.cout, h, w, 3, 2, 1, p);
	free(x);
	x = p;
	h = ph;
	w = pw;
	for (int i = 0; i < net->nblocks; i++) {
		const cap_resnet_block *b = &net->blocks[i];
		int bh = h, bw = w, dh = h, dw = w;
		float *id = x, *t;
		if (b->down.k)
			id = conv_run(&b->down, x, n, &dh, &dw, NULL, 0);
		float *a = conv_run(&b->c1, x, n, &bh, &bw, NULL, 1);
		if (b->c3.k) {
			t = conv_run(&b->c2, a, n, &bh, &bw, NULL, 1);
			free(a);
			a = t;
			t = conv_run(&b->c3, a, n, &bh, &bw, id, 1);
		} else {
			t = conv_run(&b->c2, a, n, &bh, &bw, id, 1);
		}
		free(a);
		if (id != x)
			free(id);
		free(x);
		x = t;
		h = bh;
		w = bw;
	}
	cap_avgpool_global_ref(x, n, net->dim, h, w, out);
	free(x);
	return 0;
}

cap_encoder *cap_ref_encoder_new(cap_resnet *net, int batch, int h, int w, int flags)
{
	if (flags & CAP_ENCODER_BF16) {
		cap_fail("the ref backend computes in fp32 only (bf16 needs --device cpu)");
		return NULL;
	}
	if (h < 32 || w < 32) {
		cap_fail("image of %dx%d is too small for a ResNet (at least 32x32)", w, h);
		return NULL;
	}
	cap_encoder *e = cap_xcalloc(1, sizeof *e);
	e->net = net;   /* CAP_ENCODER_TAKE_WEIGHTS is a permission, not a duty: keep them */
	e->batch = batch;
	e->h = h;
	e->w = w;
	return e;
}

int cap_ref_encoder_run(cap_encoder *e, const float *in, int n, float *out)
{
	if (n < 0 || n > e->batch)
		return cap_fail("encoder: %d images for a batch of %d", n, e->batch);
	return n ? forward(e->net, in, n, e->h, e->w, out) : 0;
}

const char *cap_ref_encoder_impl(const cap_encoder *e) { (void)e; return "ref (plain C loops)"; }

void cap_ref_encoder_free(cap_encoder *e) { free(e); }

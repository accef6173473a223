/* The reference image encoder: the ResNet forward as plain C loops over NCHW float32 (see
 * lib/encoder/resnet.h for the network, lib/ops/ref/conv.c for the operators). Slow; the
 * definition the fast encoders are tested against. */
#include "ops/host.h"
#include "ops/bf16.h"
#include "ops/ref/conv.h"
#include "core/error.h"
#include "ops/resnet_net.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct cap_encoder {
	cap_resnet *net;   /* borrowed: the net stays the caller's */
	int batch, h, w;
	int bf16;          /* weights and activations rounded to bfloat16, fp32 accumulation */
	float **wbf;       /* bf16-rounded copies of each conv's weights (stem, then c1 c2 c3 down per block) */
};

static void round_all(float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x[i] = cap_bf16_round(x[i]);
}

/* Runs one conv (weights wt: the conv's own, or their bf16 copy); *h, *w become the output
 * size; with bf16 the output is rounded as a bf16 activation buffer would hold it. */
static float *conv_run(const cap_conv *c, const float *wt, int bf16, const float *in, int n, int *h,
                       int *w, const float *residual, int relu)
{
	int oh = cap_conv_out_size(*h, c->k, c->stride, c->pad);
	int ow = cap_conv_out_size(*w, c->k, c->stride, c->pad);
	size_t nout = (size_t)n * c->cout * oh * ow;
	float *out = cap_xmalloc(nout * sizeof *out);
	cap_conv2d_ref(in, n, c->cin, *h, *w, wt, c->b, c->cout, c->k, c->stride, c->pad,
	               residual, relu, out);
	if (bf16)
		round_all(out, nout);
	*h = oh;
	*w = ow;
	return out;
}

/* The weights of conv number i in walk order (stem, then c1 c2 c3 down of each block). */
#define WT(c, i) (e->bf16 ? e->wbf[i] : (c)->w)

static int forward(const cap_encoder *e, const float *in0, int n, int h, int w, float *out)
{
	const cap_resnet *net = e->net;
	int bf = e->bf16, ci = 0;
	const float *in = in0;
	float *rounded = NULL;
	if (h < 32 || w < 32)
		return cap_fail("image of %dx%d is too small for a ResNet (at least 32x32)", w, h);
	if (bf) {
		size_t nin = (size_t)n * 3 * h * w;
		rounded = cap_xmalloc(nin * sizeof *rounded);
		memcpy(rounded, in0, nin * sizeof *rounded);
		round_all(rounded, nin);
		in = rounded;
	}
	float *x = conv_run(&net->stem, WT(&net->stem, ci), bf, in, n, &h, &w, NULL, 1);
	ci++;
	free(rounded);
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
		int k1 = ci, k2 = ci + 1, k3 = ci + 2, kd = ci + 3;
		ci += 4;
		if (b->down.k)
			id = conv_run(&b->down, WT(&b->down, kd), bf, x, n, &dh, &dw, NULL, 0);
		float *a = conv_run(&b->c1, WT(&b->c1, k1), bf, x, n, &bh, &bw, NULL, 1);
		if (b->c3.k) {
			t = conv_run(&b->c2, WT(&b->c2, k2), bf, a, n, &bh, &bw, NULL, 1);
			free(a);
			a = t;
			t = conv_run(&b->c3, WT(&b->c3, k3), bf, a, n, &bh, &bw, id, 1);
		} else {
			t = conv_run(&b->c2, WT(&b->c2, k2), bf, a, n, &bh, &bw, id, 1);
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

static float *bf16_copy(const cap_conv *c)
{
	if (!c->k)
		return NULL;
	size_t n = (size_t)c->cout * c->cin * c->k * c->k;
	float *p = cap_xmalloc(n * sizeof *p);
	memcpy(p, c->w, n * sizeof *p);
	round_all(p, n);
	return p;
}

cap_encoder *cap_ref_encoder_new(cap_resnet *net, int batch, int h, int w, int flags)
{
	if (h < 32 || w < 32) {
		cap_fail("image of %dx%d is too small for a ResNet (at least 32x32)", w, h);
		return NULL;
	}
	cap_encoder *e = cap_xcalloc(1, sizeof *e);
	e->net = net;   /* CAP_ENCODER_TAKE_WEIGHTS is a permission, not a duty: keep them */
	e->batch = batch;
	e->h = h;
	e->w = w;
	if (flags & CAP_ENCODER_BF16) {
		e->bf16 = 1;
		e->wbf = cap_xcalloc(1 + 4 * (size_t)net->nblocks, sizeof *e->wbf);
		e->wbf[0] = bf16_copy(&net->stem);
		for (int i = 0; i < net->nblocks; i++) {
			const cap_resnet_block *b = &net->blocks[i];
			e->wbf[1 + 4 * i] = bf16_copy(&b->c1);
			e->wbf[2 + 4 * i] = bf16_copy(&b->c2);
			e->wbf[3 + 4 * i] = bf16_copy(&b->c3);
			e->wbf[4 + 4 * i] = bf16_copy(&b->down);
		}
	}
	return e;
}

int cap_ref_encoder_run(cap_encoder *e, const float *in, int n, float *out)
{
	if (n < 0 || n > e->batch)
		return cap_fail("encoder: %d images for a batch of %d", n, e->batch);
	return n ? forward(e, in, n, e->h, e->w, out) : 0;
}

const char *cap_ref_encoder_impl(const cap_encoder *e)
{
	return e->bf16 ? "ref (plain C loops, bf16 rounding)" : "ref (plain C loops)";
}

void cap_ref_encoder_free(cap_encoder *e)
{
	if (!e)
		return;
	if (e->wbf)
		for (int i = 0; i < 1 + 4 * e->net->nblocks; i++)
			free(e->wbf[i]);
	free(e->wbf);
	free(e);
}

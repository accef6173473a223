/* ResNet construction (from named tensors or random init) and BatchNorm folding. The forward
 * pass is a backend op (lib/ops/ref/resnet.c, lib/ops/cpu/resnet.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ops/ref/conv.h"
#include "core/error.h"
#include "core/rng.h"
#include "encoder/resnet.h"

#define BN_EPS 1e-5   /* torch.nn.BatchNorm2d's default, used by torchvision's ResNets */

int cap_resnet_arch(int depth, int layers[4], int *bottleneck)
{
	static const struct { int depth, bottleneck, layers[4]; } archs[] = {
		{18, 0, {2, 2, 2, 2}}, {34, 0, {3, 4, 6, 3}}, {50, 1, {3, 4, 6, 3}},
		{101, 1, {3, 4, 23, 3}}, {152, 1, {3, 8, 36, 3}},
	};
	for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
		if (archs[i].depth == depth) {
			memcpy(layers, archs[i].layers, sizeof archs[i].layers);
			*bottleneck = archs[i].bottleneck;
			return 0;
		}
	return cap_fail("no standard ResNet of depth %d (known: 18, 34, 50, 101, 152)", depth);
}

/* The block layout of torchvision's ResNet: calls fn for every conv with its name prefix
 * ("conv1", "layer2.0.conv2", "layer2.0.downsample.0"), the BatchNorm prefix, its shape and
 * where it goes. Shared by the loader and the random init so both build the same network. */
typedef int (*conv_fn)(void *ctx, cap_conv *c, const char *conv_name, const char *bn_name,
                       int last_bn_of_block);

static void conv_shape(cap_conv *c, int cin, int cout, int k, int stride)
{
	c->cin = cin;
	c->cout = cout;
	c->k = k;
	c->stride = stride;
	c->pad = k / 2;
}

static int walk(cap_resnet *net, conv_fn fn, void *ctx)
{
	int exp = net->bottleneck ? 4 : 1, inplanes = 64, bi = 0;
	char cn[64], bn[64];
	conv_shape(&net->stem, 3, 64, 7, 2);
	if (fn(ctx, &net->stem, "conv1", "bn1", 0) < 0)
		return -1;
	for (int s = 0; s < 4; s++) {
		int planes = 64 << s;
		for (int i = 0; i < net->layers[s]; i++, bi++) {
			cap_resnet_block *b = &net->blocks[bi];
			int stride = (i == 0 && s > 0) ? 2 : 1;
			if (net->bottleneck) {
				conv_shape(&b->c1, inplanes, planes, 1, 1);
				conv_shape(&b->c2, planes, planes, 3, stride);
				conv_shape(&b->c3, planes, planes * 4, 1, 1);
			} else {
				conv_shape(&b->c1, inplanes, planes, 3, stride);
				conv_shape(&b->c2, planes, planes, 3, 1);
			}
			cap_conv *cs[3] = {&b->c1, &b->c2, &b->c3};
			int nconv = net->bottleneck ? 3 : 2;
			for (int j = 0; j < nconv; j++) {
				snprintf(cn, sizeof cn, "layer%d.%d.conv%d", s + 1, i, j + 1);
				snprintf(bn, sizeof bn, "layer%d.%d.bn%d", s + 1, i, j + 1);
				if (fn(ctx, cs[j], cn, bn, j == nconv - 1) < 0)
					return -1;
			}
			if (i == 0 && (stride != 1 || inplanes != planes * exp)) {
				conv_shape(&b->down, inplanes, planes * exp, 1, stride);
				b->down.pad = 0;
				snprintf(cn, sizeof cn, "layer%d.%d.downsample.0", s + 1, i);
				snprintf(bn, sizeof bn, "layer%d.%d.downsample.1", s + 1, i);
				if (fn(ctx, &b->down, cn, bn, 0) < 0)
					return -1;
			}
			inplanes = planes * exp;
		}
	}
	return 0;
}

static cap_resnet *net_alloc(const int layers[4], int bottleneck)
{
	cap_resnet *net = cap_xcalloc(1, sizeof *net);
	memcpy(net->layers, layers, sizeof net->layers);
	net->bottleneck = bottleneck;
	net->nblocks = layers[0] + layers[1] + layers[2] + layers[3];
	net->depth = 2 + (bottleneck ? 3 : 2) * net->nblocks;
	net->dim = 512 * (bottleneck ? 4 : 1);
	net->blocks = cap_xcalloc((size_t)net->nblocks, sizeof *net->blocks);
	return net;
}

static void conv_alloc(cap_conv *c)
{
	c->w = cap_xmalloc((size_t)c->cout * c->cin * c->k * c->k * sizeof *c->w);
	c->b = cap_xcalloc((size_t)c->cout, sizeof *c->b);
}

/* ---- loading ---- */

static int load_vec(const cap_tensors *ts, const char *prefix, const char *what, int n, double *out)
{
	char name[96];
	int64_t shape[1] = {n};
	snprintf(name, sizeof name, "%s.%s", prefix, what);
	if (cap_tensors_expect(ts, name, 1, shape) < 0)
		return -1;
	float *tmp = cap_xmalloc((size_t)n * sizeof *tmp);
	int rc = cap_tensor_to_f32(cap_tensors_find(ts, name), tmp, (size_t)n);
	for (int i = 0; rc == 0 && i < n; i++) {
		out[i] = tmp[i];
		if (!isfinite(out[i]))
			rc = cap_fail("%s: element %d is not finite", name, i);
	}
	free(tmp);
	return rc;
}

static int load_conv(void *ctx, cap_conv *c, const char *conv_name, const char *bn_name, int last)
{
	const cap_tensors *ts = ctx;
	char name[96];
	(void)last;
	snprintf(name, sizeof name, "%s.weight", conv_name);
	int64_t shape[4] = {c->cout, c->cin, c->k, c->k};
	if (cap_tensors_expect(ts, name, 4, shape) < 0)
		return -1;
	conv_alloc(c);
	size_t per = (size_t)c->cin * c->k * c->k;
	if (cap_tensor_to_f32(cap_tensors_find(ts, name), c->w, per * c->cout) < 0)
		return -1;
	/* Fold eval-mode BatchNorm: y = (conv(x) - mean) * g / sqrt(var + eps) + beta. */
	double *v = cap_xmalloc(4 * (size_t)c->cout * sizeof *v);
	double *g = v, *beta = v + c->cout, *mean = v + 2 * c->cout, *var = v + 3 * c->cout;
	int rc = 0;
	if (load_vec(ts, bn_name, "weight", c->cout, g) < 0 ||
	    load_vec(ts, bn_name, "bias", c->cout, beta) < 0 ||
	    load_vec(ts, bn_name, "running_mean", c->cout, mean) < 0 ||
	    load_vec(ts, bn_name, "running_var", c->cout, var) < 0)
		rc = -1;
	for (int o = 0; rc == 0 && o < c->cout; o++) {
		if (!(var[o] + BN_EPS > 0)) {
			rc = cap_fail("%s.running_var: element %d is %g (variance must be >= 0)", bn_name, o, var[o]);
			break;
		}
		double s = g[o] / sqrt(var[o] + BN_EPS);
		for (size_t i = 0; i < per; i++)
			c->w[o * per + i] = (float)(c->w[o * per + i] * s);
		c->b[o] = (float)(beta[o] - mean[o] * s);
	}
	free(v);
	return rc;
}

static int has(const cap_tensors *ts, const char *fmt, int a, int b)
{
	char name[96];
	snprintf(name, sizeof name, fmt, a, b);
	return cap_tensors_find(ts, name) != NULL;
}

cap_resnet *cap_resnet_from_tensors(const cap_tensors *ts)
{
	int layers[4];
	for (int s = 0; s < 4; s++) {
		int i = 0;
		while (i < 1000 && has(ts, "layer%d.%d.conv1.weight", s + 1, i))
			i++;
		if (i == 0) {
			if (!cap_tensors_find(ts, "conv1.weight"))
				cap_fail("missing tensor conv1.weight (not a torchvision ResNet state_dict?)");
			else
				cap_fail("missing tensor layer%d.0.conv1.weight", s + 1);
			return NULL;
		}
		layers[s] = i;
	}
	cap_resnet *net = net_alloc(layers, has(ts, "layer%d.%d.conv3.weight", 1, 0));
	if (walk(net, load_conv, (void *)ts) < 0) {
		cap_resnet_free(net);
		return NULL;
	}
	return net;
}

/* ---- random init ---- */

/* Normal draws by Marsaglia's polar method (exact, one log per pair) on the project's generator;
 * `random:SEED` weights have always been these numbers. */
typedef struct rng { cap_rng g; int have; double spare; } rng;

static void rng_seed(rng *r, uint64_t seed)
{
	cap_rng_seed(&r->g, seed);
	r->have = 0;
}

static double rng_normal(rng *r)
{
	if (r->have) {
		r->have = 0;
		return r->spare;
	}
	double u, v, q;
	do {
		u = (cap_rng_u64(&r->g) >> 11) * 0x1.0p-52 - 1.0;
		v = (cap_rng_u64(&r->g) >> 11) * 0x1.0p-52 - 1.0;
		q = u * u + v * v;
	} while (q >= 1.0 || q == 0.0);
	double m = sqrt(-2.0 * log(q) / q);
	r->spare = v * m;
	r->have = 1;
	return u * m;
}

static int random_conv(void *ctx, cap_conv *c, const char *conv_name, const char *bn_name, int last)
{
	rng *r = ctx;
	(void)conv_name;
	(void)bn_name;
	conv_alloc(c);
	/* kaiming_normal_(mode="fan_out", nonlinearity="relu"): std = sqrt(2 / (cout * k * k)).
	 * BatchNorm(weight 1 or 0, bias 0, mean 0, var 1) folds into a scale of w / sqrt(1 + eps)
	 * and a zero bias. */
	double std = sqrt(2.0 / ((double)c->cout * c->k * c->k));
	double scale = last ? 0.0 : 1.0 / sqrt(1.0 + BN_EPS);
	size_t n = (size_t)c->cout * c->cin * c->k * c->k;
	for (size_t i = 0; i < n; i++)
		c->w[i] = (float)(rng_normal(r) * std * scale);
	return 0;
}

cap_resnet *cap_resnet_random(int depth, uint64_t seed)
{
	int layers[4], bottleneck = 0;
	if (cap_resnet_arch(depth, layers, &bottleneck) < 0)
		return NULL;
	cap_resnet *net = net_alloc(layers, bottleneck);
	rng r;
	rng_seed(&r, seed);
	walk(net, random_conv, &r);
	return net;
}

static void conv_free(cap_conv *c)
{
	free(c->w);
	free(c->b);
}

void cap_resnet_free(cap_resnet *net)
{
	if (!net)
		return;
	conv_free(&net->stem);
	for (int i = 0; i < net->nblocks; i++) {
		conv_free(&net->blocks[i].c1);
		conv_free(&net->blocks[i].c2);
		conv_free(&net->blocks[i].c3);
		conv_free(&net->blocks[i].down);
	}
	free(net->blocks);
	free(net);
}

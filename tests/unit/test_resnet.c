/* ResNet: loading from named tensors (torchvision names, BatchNorm folding, shape checks),
 * random init statistics, and the oneDNN engine against the plain C reference forward on
 * small networks with random weights and random BatchNorm statistics. (Parity with torchvision
 * itself is tests/py/test_encode_parity.py.) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "core/error.h"
#include "encoder/resnet.h"
#include "io/tensors.h"
#include "ops/ops.h"

static unsigned long long seed = 12345;
static float frand(void) /* uniform in [-1, 1) */
{
	seed = seed * 6364136223846793005ull + 1442695040888963407ull;
	return (float)((seed >> 40) / (double)(1ull << 24) * 2 - 1);
}

typedef struct list { cap_tensor_out t[256]; int n; char names[256][64]; } list;

static void add(list *l, const char *name, int ndim, const int64_t *shape, int kind)
{
	cap_tensor_out *t = &l->t[l->n];
	snprintf(l->names[l->n], 64, "%s", name);
	t->name = l->names[l->n];
	t->ndim = ndim;
	size_t n = 1;
	for (int i = 0; i < ndim; i++)
		n *= (size_t)(t->shape[i] = shape[i]);
	float *d = malloc(n * sizeof *d);
	for (size_t i = 0; i < n; i++) {
		float r = frand();
		/* kind: 0 conv weight, 1 bn weight, 2 bn bias, 3 mean, 4 var */
		d[i] = kind == 0 ? r * sqrtf(3.0f / (float)(n / (size_t)shape[0])) :
		       kind == 1 ? 0.5f + 0.5f * (r + 1) : kind == 2 ? 0.2f * r :
		       kind == 3 ? 0.3f * r : 0.5f + (r + 1);
	}
	t->data = d;
	l->n++;
}

static void conv_bn(list *l, const char *conv, const char *bn, int cout, int cin, int k)
{
	char name[96];
	int64_t ws[4] = {cout, cin, k, k}, vs[1] = {cout};
	snprintf(name, sizeof name, "%s.weight", conv);
	add(l, name, 4, ws, 0);
	const char *what[4] = {"weight", "bias", "running_mean", "running_var"};
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof name, "%s.%s", bn, what[i]);
		add(l, name, 1, vs, i + 1);
	}
}

/* A torchvision ResNet state_dict with one block per stage. */
static void make_net(list *l, int bottleneck)
{
	int exp = bottleneck ? 4 : 1, inplanes = 64;
	char c[64], b[64];
	l->n = 0;
	conv_bn(l, "conv1", "bn1", 64, 3, 7);
	for (int s = 0; s < 4; s++) {
		int planes = 64 << s;
		for (int j = 0; j < (bottleneck ? 3 : 2); j++) {
			int cin = j == 0 ? inplanes : planes, cout = j == 2 ? planes * 4 : planes;
			int k = bottleneck ? (j == 1 ? 3 : 1) : 3;
			snprintf(c, sizeof c, "layer%d.0.conv%d", s + 1, j + 1);
			snprintf(b, sizeof b, "layer%d.0.bn%d", s + 1, j + 1);
			conv_bn(l, c, b, cout, cin, k);
		}
		if (s > 0 || inplanes != planes * exp) {
			snprintf(c, sizeof c, "layer%d.0.downsample.0", s + 1);
			snprintf(b, sizeof b, "layer%d.0.downsample.1", s + 1);
			conv_bn(l, c, b, planes * exp, inplanes, 1);
		}
		inplanes = planes * exp;
	}
	int64_t fc[2] = {10, 512 * exp};
	add(l, "fc.weight", 2, fc, 0);   /* must be ignored */
}

static void free_list(list *l)
{
	for (int i = 0; i < l->n; i++)
		free((void *)l->t[i].data);
}

static double rel_err(const float *a, const float *b, size_t n)
{
	double m = 0, d = 0;
	for (size_t i = 0; i < n; i++) {
		if (fabs(b[i]) > m) m = fabs(b[i]);
		if (fabs(a[i] - b[i]) > d || isnan(a[i])) d = isnan(a[i]) ? INFINITY : fabs(a[i] - b[i]);
	}
	return d / (m > 0 ? m : 1e-30);
}

static cap_resnet *load(const char *path, const list *l, int skip, int64_t bad_dim)
{
	cap_tensor_out t[256];
	int n = 0;
	for (int i = 0; i < l->n; i++) {
		if (i == skip)
			continue;
		t[n] = l->t[i];
		if (i == -skip - 2)
			t[n].shape[0] = bad_dim;
		n++;
	}
	if (cap_safetensors_write(path, t, (size_t)n, NULL) < 0) {
		printf("# write %s: %s\n", path, cap_errmsg());
		return NULL;
	}
	cap_tensors *ts = cap_tensors_load(path);
	if (!ts) {
		printf("# load %s: %s\n", path, cap_errmsg());
		return NULL;
	}
	cap_resnet *net = cap_resnet_from_tensors(ts);
	cap_tensors_free(ts);
	return net;
}

static void engine_vs_ref(cap_resnet *net, const char *what, int batch, int n, int h, int w)
{
	size_t isz = (size_t)3 * h * w;
	float *in = malloc((size_t)n * isz * sizeof *in);
	float *ref = malloc((size_t)n * net->dim * sizeof *ref), *out = malloc((size_t)n * net->dim * sizeof *out);
	for (size_t i = 0; i < (size_t)n * isz; i++)
		in[i] = 2 * frand();
	const cap_ops *R = cap_ops_ref(), *C = cap_ops_cpu();
	cap_encoder *re = R->encoder_new(net, batch, h, w, 0);
	CHECK(re && R->encoder_run(re, in, n, ref) == 0, "%s: reference forward %dx%d", what, w, h);
	if (re)
		R->encoder_free(re);
	for (int bf = 0; bf < 2; bf++) {
		cap_encoder *e = C->encoder_new(net, batch, h, w, bf ? CAP_ENCODER_BF16 : 0);
		if (!e) {
			CHECK(0, "%s: engine (%s): %s", what, bf ? "bf16" : "fp32", cap_errmsg());
			continue;
		}
		CHECK(C->encoder_run(e, in, n, out) == 0, "%s: engine run %d of %d", what, n, batch);
		double err = rel_err(out, ref, (size_t)n * net->dim);
		/* fp32: only summation order differs; bf16 keeps 8 mantissa bits per layer */
		double tol = bf ? 5e-2 : 1e-5;
		CHECK(err < tol, "%s: oneDNN %s (%s) vs reference, batch %d of %d, %dx%d: rel err %.2e < %.0e",
		      what, bf ? "bf16" : "fp32", C->encoder_impl(e), n, batch, w, h, err, tol);
		/* a second run over the same engine gives the same result (no stale state) */
		float *again = malloc((size_t)n * net->dim * sizeof *again);
		C->encoder_run(e, in, n, again);
		CHECK(memcmp(again, out, (size_t)n * net->dim * sizeof *out) == 0, "%s: %s rerun identical", what, bf ? "bf16" : "fp32");
		free(again);
		C->encoder_free(e);
	}
	free(in);
	free(ref);
	free(out);
}

int main(void)
{
	char path[] = "/tmp/cap-test-resnet.XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return perror("mkstemp"), 1;
	close(fd);
	list *l = calloc(1, sizeof *l);

	for (int bottleneck = 1; bottleneck >= 0; bottleneck--) {
		const char *what = bottleneck ? "Bottleneck [1,1,1,1]" : "BasicBlock [1,1,1,1]";
		make_net(l, bottleneck);
		cap_resnet *net = load(path, l, -1, 0);
		CHECK(net != NULL, "%s: loads", what);
		if (!net)
			continue;
		CHECK(net->depth == (bottleneck ? 14 : 10) && net->dim == (bottleneck ? 2048 : 512) &&
		      net->bottleneck == bottleneck, "%s: depth %d dim %d", what, net->depth, net->dim);
		engine_vs_ref(net, what, 3, 2, 64, 64);
		engine_vs_ref(net, what, 1, 1, 80, 96);
		cap_resnet_free(net);

		/* a missing tensor and a wrong shape are errors naming the tensor */
		/* list order: conv1 + bn1 are 0..4, layer1.0.conv1.weight is 5, its bn 6..9 */
		net = load(path, l, 8, 0);   /* layer1.0.bn1.running_mean */
		CHECK(net == NULL && strstr(cap_errmsg(), l->names[8]), "%s: missing %s: %s", what, l->names[8], cap_errmsg());
		cap_resnet_free(net);
		net = load(path, l, -5 - 2, 32);  /* layer1.0.conv1.weight with 32 output channels */
		CHECK(net == NULL && strstr(cap_errmsg(), "layer1.0.conv1.weight"), "%s: wrong shape: %s", what, cap_errmsg());
		cap_resnet_free(net);
		net = load(path, l, 0, 0);   /* conv1.weight */
		CHECK(net == NULL && strstr(cap_errmsg(), "conv1.weight"), "%s: missing conv1.weight: %s", what, cap_errmsg());
		cap_resnet_free(net);
		free_list(l);
	}
	unlink(path);
	free(l);

	/* Random init: torchvision's ResNet-152 layout and init statistics. */
	cap_resnet *r = cap_resnet_random(152, 7);
	CHECK(r && r->depth == 152 && r->nblocks == 50 && r->dim == 2048, "random ResNet-152 layout");
	if (r) {
		const cap_conv *c = &r->blocks[10].c2;   /* layer2.7.conv2: 3x3, 128 out */
		size_t n = (size_t)c->cout * c->cin * 9;
		double s = 0, s2 = 0;
		for (size_t i = 0; i < n; i++)
			s += c->w[i], s2 += (double)c->w[i] * c->w[i];
		double sd = sqrt(s2 / n - (s / n) * (s / n)), want = sqrt(2.0 / (c->cout * 9)) / sqrt(1 + 1e-5);
		CHECK(fabs(sd / want - 1) < 0.01 && fabs(s / n) < 0.01 * want,
		      "random init: kaiming fan_out std %.5f (want %.5f)", sd, want);
		int zero = 1;
		for (size_t i = 0; i < (size_t)r->blocks[10].c3.cout * r->blocks[10].c3.cin; i++)
			zero &= r->blocks[10].c3.w[i] == 0.0f;
		CHECK(zero, "random init: zero_init_residual zeroes the last conv of each block");
		cap_resnet *r2 = cap_resnet_random(152, 7), *r3 = cap_resnet_random(152, 8);
		CHECK(memcmp(r2->stem.w, r->stem.w, 64 * 3 * 49 * sizeof(float)) == 0 &&
		      memcmp(r3->stem.w, r->stem.w, 64 * 3 * 49 * sizeof(float)) != 0, "random init: seeded");
		cap_resnet_free(r2);
		cap_resnet_free(r3);
	}
	cap_resnet_free(r);
	CHECK(cap_resnet_random(51, 1) == NULL, "depth 51 refused: %s", cap_errmsg());
	return check_exit();
}

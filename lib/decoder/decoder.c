/* The LSTM caption decoder's parameters and model files, and placing a model on a backend (see
 * decoder.h). Inference is in decoder_infer.c, the training pass in decoder_train.c. */
#include "decoder/decoder.h"
#include "core/bigmem.h"
#include "core/error.h"
#include "io/tensors.h"
#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- parameters ---- */

int cap_decoder_config_check(const cap_decoder_config *c)
{
	if (c->feat_dim <= 0 || c->embed <= 0 || c->hidden <= 0 || c->vocab <= 0)
		return cap_fail("decoder sizes must be positive (feature %d, embed %d, hidden %d, vocab %d)",
		                c->feat_dim, c->embed, c->hidden, c->vocab);
	if (c->layers < 1 || c->layers > CAP_DECODER_MAX_LAYERS)
		return cap_fail("layers must be 1..%d, got %d", CAP_DECODER_MAX_LAYERS, c->layers);
	/* Keep every single matrix (and 4H) well inside int for the GEMM interface, and the total
	 * inside size_t. */
	const double lim = 1 << 30;
	double E = c->embed, H = c->hidden, V = c->vocab, D = c->feat_dim;
	if (4 * H * (E > H ? E : H) > lim || V * (E > H ? E : H) > lim || E * D > lim || V > lim)
		return cap_fail("decoder too large (feature %d, embed %d, hidden %d, vocab %d)",
		                c->feat_dim, c->embed, c->hidden, c->vocab);
	return 0;
}

int cap_decoder_tensors(const cap_decoder_config *c, float *base, cap_decoder_tensor *out)
{
	size_t E = c->embed, H = c->hidden, V = c->vocab, D = c->feat_dim, off = 0;
	int n = 0;
#define ADD(nm, r, cols) do { \
		cap_decoder_tensor *t = &out[n++]; \
		snprintf(t->name, sizeof t->name, "%s", nm); \
		t->ndim = (cols) ? 2 : 1; t->shape[0] = (r); t->shape[1] = (cols); \
		t->numel = (size_t)(r) * ((cols) ? (size_t)(cols) : 1); \
		t->data = base ? base + off : NULL; off += t->numel; } while (0)
	ADD("proj.weight", E, D);
	ADD("proj.bias", E, 0);
	ADD("embed.weight", V, E);
	for (int l = 0; l < c->layers; l++) {
		char nm[32];
		snprintf(nm, sizeof nm, "lstm.weight_ih_l%d", l); ADD(nm, 4 * H, l ? H : E);
		snprintf(nm, sizeof nm, "lstm.weight_hh_l%d", l); ADD(nm, 4 * H, H);
		snprintf(nm, sizeof nm, "lstm.bias_ih_l%d", l);   ADD(nm, 4 * H, 0);
		snprintf(nm, sizeof nm, "lstm.bias_hh_l%d", l);   ADD(nm, 4 * H, 0);
	}
	ADD("linear.weight", V, H);
	ADD("linear.bias", V, 0);
#undef ADD
	return n;
}

size_t cap_decoder_param_count(const cap_decoder_config *c)
{
	cap_decoder_tensor t[CAP_DECODER_MAX_TENSORS];
	int n = cap_decoder_tensors(c, NULL, t);
	size_t total = 0;
	for (int i = 0; i < n; i++)
		total += t[i].numel;
	return total;
}

void cap_decoder_views(const cap_decoder_config *c, float *base, cap_decoder_params *p)
{
	cap_decoder_tensor t[CAP_DECODER_MAX_TENSORS];
	int n = cap_decoder_tensors(c, base, t), k = 0;
	memset(p, 0, sizeof *p);
	p->proj_w = t[k++].data;
	p->proj_b = t[k++].data;
	p->embed_w = t[k++].data;
	for (int l = 0; l < c->layers; l++) {
		p->w_ih[l] = t[k++].data;
		p->w_hh[l] = t[k++].data;
		p->b_ih[l] = t[k++].data;
		p->b_hh[l] = t[k++].data;
	}
	p->lin_w = t[k++].data;
	p->lin_b = t[k++].data;
	assert(k == n);
}

cap_decoder *cap_decoder_new(const cap_decoder_config *c)
{
	if (cap_decoder_config_check(c) < 0)
		return NULL;
	cap_decoder *m = cap_xcalloc(1, sizeof *m);
	m->cfg = *c;
	m->n_params = cap_decoder_param_count(c);
	m->data = cap_big_xalloc(sizeof(float) * m->n_params);   /* streamed by every Adam step */
	cap_decoder_views(c, m->data, &m->p);
	return m;
}

void cap_decoder_init_random(cap_decoder *m, cap_rng *rng)
{
	cap_decoder_tensor t[CAP_DECODER_MAX_TENSORS];
	int n = cap_decoder_tensors(&m->cfg, m->data, t);
	for (int i = 0; i < n; i++) {
		if (!strcmp(t[i].name, "embed.weight")) {
			for (size_t j = 0; j < t[i].numel; j++)
				t[i].data[j] = (float)cap_rng_normal(rng);
			continue;
		}
		/* Linear: kaiming_uniform(a=sqrt 5) gives bound 1/sqrt(fan_in), and so does its bias;
		 * LSTM: every tensor uniform(+-1/sqrt(H)). */
		int fan = !strncmp(t[i].name, "lstm.", 5) ? m->cfg.hidden
		        : !strncmp(t[i].name, "proj.", 5) ? m->cfg.feat_dim : m->cfg.hidden;
		float bound = 1.0f / sqrtf((float)fan);
		for (size_t j = 0; j < t[i].numel; j++)
			t[i].data[j] = (2 * cap_rng_uniform(rng) - 1) * bound;
	}
}

static void dev_release(cap_decoder *m);

void cap_decoder_free(cap_decoder *m)
{
	if (!m)
		return;
	for (size_t i = 0; m->meta && m->meta[i]; i++)
		free(m->meta[i]);
	free(m->meta);
	dev_release(m);
	free(m->data);
	free(m);
}

static void dev_release(cap_decoder *m)
{
	cap_decoder_dev *d = &m->dev;
	if (!d->ops)
		return;
	for (int l = 0; l < m->cfg.layers; l++) {
		d->ops->weight_free(d->w_ih[l]);
		d->ops->weight_free(d->w_hh[l]);
	}
	d->ops->weight_free(d->lin);
	d->ops->weight_free(d->proj);
	if (d->data != m->data)
		d->ops->free(d->data);
	memset(d, 0, sizeof *d);
}

int cap_decoder_bind(cap_decoder *m, const cap_ops *ops)
{
	dev_release(m);
	cap_decoder_dev *d = &m->dev;
	float *data = (float *)cap_ops_mirror(ops, m->data, sizeof(float) * m->n_params);
	if (!data)
		return cap_fail_prefix("decoder of %zu parameters on %s", m->n_params, ops->name);
	d->ops = ops;
	d->data = data;
	cap_decoder_views(&m->cfg, d->data, &d->p);
	const cap_decoder_config *c = &m->cfg;
	for (int l = 0; l < c->layers; l++) {
		d->w_ih[l] = ops->weight_new(d->p.w_ih[l], 4 * c->hidden, l ? c->hidden : c->embed, 0);
		d->w_hh[l] = ops->weight_new(d->p.w_hh[l], 4 * c->hidden, c->hidden, 0);
	}
	d->lin = ops->weight_new(d->p.lin_w, c->vocab, c->hidden, 0);
	d->proj = ops->weight_new(d->p.proj_w, c->embed, c->feat_dim, 0);
	return 0;
}

static void refresh_weights(cap_decoder *m)
{
	cap_decoder_dev *d = &m->dev;
	for (int l = 0; l < m->cfg.layers; l++) {
		d->ops->weight_update(d->w_ih[l]);
		d->ops->weight_update(d->w_hh[l]);
	}
	d->ops->weight_update(d->lin);
	d->ops->weight_update(d->proj);
}

void cap_decoder_to_device(cap_decoder *m)
{
	assert(m->dev.ops);
	m->dev.ops->upload(m->dev.data, m->data, sizeof(float) * m->n_params);
	refresh_weights(m);
}

void cap_decoder_to_host(cap_decoder *m)
{
	assert(m->dev.ops);
	m->dev.ops->download(m->data, m->dev.data, sizeof(float) * m->n_params);
	refresh_weights(m);
}

const char *cap_decoder_meta(const cap_decoder *m, const char *key)
{
	for (size_t i = 0; m->meta && m->meta[i]; i += 2)
		if (!strcmp(m->meta[i], key))
			return m->meta[i + 1];
	return NULL;
}

void cap_decoder_set_meta(cap_decoder *m, const char *key, const char *value)
{
	size_t n = 0;
	for (; m->meta && m->meta[n]; n += 2)
		if (!strcmp(m->meta[n], key)) {
			free(m->meta[n + 1]);
			m->meta[n + 1] = cap_xstrdup(value);
			return;
		}
	m->meta = cap_xrealloc(m->meta, sizeof(char *) * (n + 3));
	m->meta[n] = cap_xstrdup(key);
	m->meta[n + 1] = cap_xstrdup(value);
	m->meta[n + 2] = NULL;
}

/* Metadata keys a model file may carry that are kept on load. */
static const char *const meta_keys[] = {
	"format", "feature_dim", "embed", "hidden", "layers", "vocab_size", "dropout", "tokenizer",
	"tokenizer_json", "history", "created", "tool", "features", "captions", "seed", "encoder",
	"epochs_requested", "epochs_done", "steps", "stop_reason", "device", "precision", "world_size", NULL
};

cap_decoder *cap_decoder_load(const char *path)
{
	cap_tensors *ts = cap_tensors_load(path);
	if (!ts)
		return NULL;
	cap_decoder *m = NULL;
	const cap_tensor *pw = cap_tensors_find(ts, "proj.weight"), *ew = cap_tensors_find(ts, "embed.weight");
	const cap_tensor *hh = cap_tensors_find(ts, "lstm.weight_hh_l0");
	if (!pw || !ew || !hh || pw->ndim != 2 || ew->ndim != 2 || hh->ndim != 2) {
		cap_fail("%s: not a decoder model (needs 2-d proj.weight, embed.weight, lstm.weight_hh_l0)", path);
		goto out;
	}
	cap_decoder_config c = { 0 };
	if (pw->shape[0] > INT32_MAX || pw->shape[1] > INT32_MAX || ew->shape[0] > INT32_MAX ||
	    hh->shape[1] > INT32_MAX) {
		cap_fail("%s: tensor sizes too large", path);
		goto out;
	}
	c.embed = (int)pw->shape[0];
	c.feat_dim = (int)pw->shape[1];
	c.vocab = (int)ew->shape[0];
	c.hidden = (int)hh->shape[1];
	while (c.layers < CAP_DECODER_MAX_LAYERS) {
		char nm[32];
		snprintf(nm, sizeof nm, "lstm.weight_ih_l%d", c.layers);
		if (!cap_tensors_find(ts, nm))
			break;
		c.layers++;
	}
	if (cap_decoder_config_check(&c) < 0) {
		cap_fail_prefix("%s", path);
		goto out;
	}
	m = cap_decoder_new(&c);
	cap_decoder_tensor t[CAP_DECODER_MAX_TENSORS];
	int n = cap_decoder_tensors(&c, m->data, t);
	if ((size_t)n != cap_tensors_count(ts)) {
		cap_fail("%s: expected %d decoder tensors, found %zu", path, n, cap_tensors_count(ts));
		goto fail;
	}
	for (int i = 0; i < n; i++) {
		const cap_tensor *x;
		if (cap_tensors_expect(ts, t[i].name, t[i].ndim, t[i].shape) < 0 ||
		    !(x = cap_tensors_find(ts, t[i].name)) || cap_tensor_to_f32(x, t[i].data, t[i].numel) < 0) {
			cap_fail_prefix("%s", path);
			goto fail;
		}
	}
	if (cap_tensors_digest(ts, m->file_digest) < 0) {
		cap_fail_prefix("%s", path);
		goto fail;
	}
	for (int i = 0; meta_keys[i]; i++) {
		const char *v = cap_tensors_meta(ts, meta_keys[i]);
		if (v)
			cap_decoder_set_meta(m, meta_keys[i], v);
	}
	/* When the file states its sizes they must agree with the tensors. */
	const char *vs = cap_decoder_meta(m, "vocab_size"), *fd = cap_decoder_meta(m, "feature_dim");
	if ((vs && atol(vs) != c.vocab) || (fd && atol(fd) != c.feat_dim)) {
		cap_fail("%s: metadata vocab_size/feature_dim disagree with the tensor shapes", path);
		goto fail;
	}
	goto out;
fail:
	cap_decoder_free(m);
	m = NULL;
out:
	cap_tensors_free(ts);
	return m;
}

int cap_decoder_save(const cap_decoder *m, const char *path, const char *const *meta)
{
	cap_decoder_tensor t[CAP_DECODER_MAX_TENSORS];
	cap_tensor_out o[CAP_DECODER_MAX_TENSORS];
	int n = cap_decoder_tensors(&m->cfg, m->data, t);
	for (int i = 0; i < n; i++) {
		memset(&o[i], 0, sizeof o[i]);
		o[i].name = t[i].name;
		o[i].ndim = t[i].ndim;
		o[i].shape[0] = t[i].shape[0];
		o[i].shape[1] = t[i].shape[1];
		o[i].data = t[i].data;
	}
	return cap_safetensors_write(path, o, (size_t)n, meta);
}

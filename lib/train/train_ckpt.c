/* Checkpoints of a training run (see train.h): parameters, Adam moments and the caller's
 * bookkeeping in one safetensors file, written atomically by cap_safetensors_write. */
#include "train/train.h"
#include "core/error.h"
#include "io/tensors.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cap_train_ckpt {
	cap_tensors *ts;
};

void cap_rng_to_hex(const cap_rng *r, char out[65])
{
	for (int i = 0; i < 4; i++)
		snprintf(out + 16 * i, 17, "%016" PRIx64, r->s[i]);
}

int cap_rng_from_hex(cap_rng *r, const char *s)
{
	if (!s || strlen(s) != 64)
		return -1;
	for (int i = 0; i < 4; i++) {
		uint64_t v = 0;
		for (int j = 0; j < 16; j++) {
			char ch = s[16 * i + j];
			int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
			if (d < 0)
				return -1;
			v = v << 4 | (uint64_t)d;
		}
		r->s[i] = v;
	}
	return 0;
}

int cap_train_ckpt_save(const char *path, cap_decoder *m, const cap_adam *a, const float *best,
                        const char *const *meta)
{
	/* The file is written from host memory: the parameters come back into m->data, the moments
	 * into temporary arrays unless the backend's memory is the host's. */
	cap_decoder_to_host(m);
	float *hm = a->m, *hv = a->v;
	if (!a->ops->host_memory) {
		hm = cap_xmalloc(sizeof(float) * (a->n ? a->n : 1));
		hv = cap_xmalloc(sizeof(float) * (a->n ? a->n : 1));
		cap_adam_download(a, hm, hv);
	}
	char num[6][32];
	size_t nm = 0;
	while (meta && meta[nm])
		nm++;
	const char **all = cap_xmalloc(sizeof(char *) * (nm + 16));
	size_t k = 0;
	snprintf(num[0], 32, "%d", m->cfg.feat_dim);
	snprintf(num[1], 32, "%d", m->cfg.embed);
	snprintf(num[2], 32, "%d", m->cfg.hidden);
	snprintf(num[3], 32, "%d", m->cfg.layers);
	snprintf(num[4], 32, "%d", m->cfg.vocab);
	snprintf(num[5], 32, "%" PRId64, a->step);
	const char *keys[6] = { "feature_dim", "embed", "hidden", "layers", "vocab_size", "adam_step" };
	all[k++] = "format";
	all[k++] = "cap-train-checkpoint";
	for (int i = 0; i < 6; i++) {
		all[k++] = keys[i];
		all[k++] = num[i];
	}
	for (size_t i = 0; i < nm; i++)
		all[k++] = meta[i];
	all[k] = NULL;
	cap_tensor_out t[4];
	memset(t, 0, sizeof t);
	const char *names[4] = { "params", "adam.m", "adam.v", "best.params" };
	const float *data[4] = { m->data, hm, hv, best };
	int nt = best ? 4 : 3;
	for (int i = 0; i < nt; i++) {
		t[i].name = names[i];
		t[i].ndim = 1;
		t[i].shape[0] = (int64_t)m->n_params;
		t[i].data = data[i];
	}
	int rc = cap_safetensors_write(path, t, (size_t)nt, all);
	free(all);
	if (hm != a->m) {
		free(hm);
		free(hv);
	}
	return rc;
}

static int meta_int(const cap_tensors *ts, const char *path, const char *key, long long lo,
                    long long hi, long long *out)
{
	const char *s = cap_tensors_meta(ts, key);
	char *end;
	if (!s)
		return cap_fail("%s: checkpoint lacks '%s'", path, key);
	long long v = strtoll(s, &end, 10);
	if (end == s || *end || v < lo || v > hi)
		return cap_fail("%s: checkpoint has a bad '%s': %s", path, key, s);
	*out = v;
	return 0;
}

cap_train_ckpt *cap_train_ckpt_load(const char *path, const cap_ops *ops, cap_decoder **mp, cap_adam *a,
                                    float **best)
{
	*best = NULL;
	cap_tensors *ts = cap_tensors_load(path);
	if (!ts)
		return NULL;
	const char *fmt = cap_tensors_meta(ts, "format");
	if (!fmt || strcmp(fmt, "cap-train-checkpoint")) {
		cap_fail("%s: not a cap-train checkpoint", path);
		goto fail;
	}
	long long v[6];
	const char *keys[6] = { "feature_dim", "embed", "hidden", "layers", "vocab_size", "adam_step" };
	for (int i = 0; i < 6; i++)
		if (meta_int(ts, path, keys[i], i == 5 ? 0 : 1, i == 5 ? INT64_MAX : INT32_MAX, &v[i]) < 0)
			goto fail;
	cap_decoder_config c = { (int)v[0], (int)v[1], (int)v[2], (int)v[3], (int)v[4] };
	cap_decoder *m = cap_decoder_new(&c);
	if (!m) {
		cap_fail_prefix("%s", path);
		goto fail;
	}
	const char *lr = cap_tensors_meta(ts, "lr");
	if (cap_decoder_bind(m, ops) < 0 || cap_adam_init(a, ops, m->n_params, lr ? atof(lr) : 1e-3) < 0) {
		cap_fail_prefix("%s", path);
		cap_decoder_free(m);
		goto fail;
	}
	a->step = v[5];
	size_t n = m->n_params;
	float *hm = cap_xmalloc(sizeof(float) * n), *hv = cap_xmalloc(sizeof(float) * n);
	float *dst[3] = { m->data, hm, hv };
	const char *names[3] = { "params", "adam.m", "adam.v" };
	int64_t shape[1] = { (int64_t)n };
	for (int i = 0; i < 3; i++) {
		if (cap_tensors_expect(ts, names[i], 1, shape) < 0 ||
		    cap_tensor_to_f32(cap_tensors_find(ts, names[i]), dst[i], n) < 0) {
			cap_fail_prefix("%s", path);
			free(hm);
			free(hv);
			cap_adam_free(a);
			cap_decoder_free(m);
			goto fail;
		}
	}
	if (cap_tensors_find(ts, "best.params")) {
		*best = cap_xmalloc(sizeof(float) * n);
		if (cap_tensors_expect(ts, "best.params", 1, shape) < 0 ||
		    cap_tensor_to_f32(cap_tensors_find(ts, "best.params"), *best, n) < 0) {
			cap_fail_prefix("%s", path);
			free(*best);
			*best = NULL;
			free(hm);
			free(hv);
			cap_adam_free(a);
			cap_decoder_free(m);
			goto fail;
		}
	}
	cap_decoder_to_device(m);
	cap_adam_upload(a, hm, hv);
	free(hm);
	free(hv);
	cap_train_ckpt *k = cap_xcalloc(1, sizeof *k);
	k->ts = ts;
	*mp = m;
	return k;
fail:
	cap_tensors_free(ts);
	return NULL;
}

const char *cap_train_ckpt_meta(const cap_train_ckpt *k, const char *key)
{
	return cap_tensors_meta(k->ts, key);
}

void cap_train_ckpt_close(cap_train_ckpt *k)
{
	if (!k)
		return;
	cap_tensors_free(k->ts);
	free(k);
}

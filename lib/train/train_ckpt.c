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

int cap_train_ckpt_save(const char *path, const cap_decoder *m, const cap_adam *a,
                        const char *const *meta)
{
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
	cap_tensor_out t[3];
	memset(t, 0, sizeof t);
	const char *names[3] = { "params", "adam.m", "adam.v" };
	const float *data[3] = { m->data, a->m, a->v };
	for (int i = 0; i < 3; i++) {
		t[i].name = names[i];
		t[i].ndim = 1;
		t[i].shape[0] = (int64_t)m->n_params;
		t[i].data = data[i];
	}
	int rc = cap_safetensors_write(path, t, 3, all);
	free(all);
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

cap_train_ckpt *cap_train_ckpt_load(const char *path, cap_decoder **mp, cap_adam *a)
{
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
	cap_adam_init(a, m->n_params, lr ? atof(lr) : 1e-3);
	a->step = v[5];
	float *dst[3] = { m->data, a->m, a->v };
	const char *names[3] = { "params", "adam.m", "adam.v" };
	int64_t shape[1] = { (int64_t)m->n_params };
	for (int i = 0; i < 3; i++) {
		if (cap_tensors_expect(ts, names[i], 1, shape) < 0 ||
		    cap_tensor_to_f32(cap_tensors_find(ts, names[i]), dst[i], m->n_params) < 0) {
			cap_fail_prefix("%s", path);
			cap_adam_free(a);
			cap_decoder_free(m);
			goto fail;
		}
	}
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

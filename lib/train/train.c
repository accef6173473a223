/* Training data: features once per image, captions joined by image name, epoch batches. */
#include "train/train.h"
#include "decoder/encoder_id.h"
#include "core/bigmem.h"
#include "core/error.h"
#include "io/stream.h"
#include <stdlib.h>
#include <string.h>

static size_t hash_str(const char *s)
{
	size_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/* Marks a base-name slot shared by several images (the index stays for key comparison). */
#define AMBIGUOUS ((size_t)1 << (8 * sizeof(size_t) - 1))

static const char *base_name(const char *s)
{
	const char *b = strrchr(s, '/');
	return b ? b + 1 : s;
}

/* Open addressing; key(i) is the name (or base name) of image i. Returns the slot holding key
 * or the empty slot where it goes. */
static size_t *slot(const cap_train_feats *f, size_t *tab, const char *key, int by_base)
{
	for (size_t h = hash_str(key) & (f->hcap - 1);; h = (h + 1) & (f->hcap - 1)) {
		size_t v = tab[h];
		if (!v)
			return &tab[h];
		size_t i = (v & ~AMBIGUOUS) - 1;
		const char *k = by_base ? base_name(f->names[i]) : f->names[i];
		if (!strcmp(k, key))
			return &tab[h];
	}
}

long cap_train_feats_find(const cap_train_feats *f, const char *name)
{
	if (!f->n)
		return -1;
	size_t v = *slot(f, f->htab, name, 0);
	if (v)
		return (long)v - 1;
	v = *slot(f, f->btab, base_name(name), 1);
	return v && !(v & AMBIGUOUS) ? (long)v - 1 : -1;
}

void cap_train_feats_free(cap_train_feats *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->names[i]);
	free(f->names); free(f->data); free(f->used); free(f->htab); free(f->btab);
	free(f->encoder);
	memset(f, 0, sizeof *f);
}

int cap_train_feats_load(cap_train_feats *f, const char *path)
{
	memset(f, 0, sizeof *f);
	const char *paths[1] = { path };
	cap_reader *r = cap_reader_open(paths, 1, "features");
	if (!r)
		return -1;
	uint64_t dim;
	if (cap_obj_uint(cap_map_get(cap_reader_header(r), "dim"), &dim) || dim == 0 || dim > (1u << 20)) {
		cap_fail("%s: features header has no valid 'dim'", path);
		goto fail;
	}
	f->dim = (int)dim;
	f->encoder = cap_encoder_id_meta_from_header(cap_reader_header(r));
	if (!f->encoder && cap_errmsg()[0]) {
		cap_fail_prefix("%s", path);
		goto fail;
	}
	size_t cap = 0;
	const msgpack_object *rec;
	int st;
	while ((st = cap_reader_next(r, &rec)) == 1) {
		const char *s;
		size_t len;
		if (cap_rec_str(r, rec, "image", &s, &len) < 0)
			goto fail;
		if (memchr(s, 0, len)) {
			cap_reader_fail(r, "image name holds a NUL byte");
			goto fail;
		}
		if (f->n == cap) {
			cap = cap ? 2 * cap : 1024;
			size_t bytes;
			if (cap_mul_overflow(cap, dim * sizeof(float), &bytes)) {
				cap_fail("%s: too many features", path);
				goto fail;
			}
			f->names = cap_xrealloc(f->names, sizeof(char *) * cap);
			/* huge pages: each batch gathers rows from all over the table */
			f->data = cap_big_xgrow(f->data, sizeof(float) * dim * f->n, bytes);
		}
		if (cap_rec_f32(r, rec, "feature", f->data + f->n * dim, dim) < 0)
			goto fail;
		char *nm = cap_xmalloc(len + 1);
		memcpy(nm, s, len);
		nm[len] = 0;
		f->names[f->n++] = nm;
	}
	if (st < 0)
		goto fail;
	cap_reader_close(r);
	r = NULL;
	if (!f->n) {
		cap_fail("%s: no features", path);
		goto fail;
	}
	f->used = cap_xcalloc(f->n, sizeof(size_t));
	f->hcap = 16;
	while (f->hcap < 4 * f->n)
		f->hcap *= 2;
	f->htab = cap_xcalloc(f->hcap, sizeof(size_t));
	f->btab = cap_xcalloc(f->hcap, sizeof(size_t));
	for (size_t i = 0; i < f->n; i++) {
		size_t *s = slot(f, f->htab, f->names[i], 0);
		if (*s) {
			cap_fail("%s: image '%s' appears twice", path, f->names[i]);
			goto fail;
		}
		*s = i + 1;
		s = slot(f, f->btab, base_name(f->names[i]), 1);
		*s = *s ? *s | AMBIGUOUS : i + 1;
	}
	return 0;
fail:
	if (r)
		cap_reader_close(r);
	cap_train_feats_free(f);
	return -1;
}

void cap_train_caps_free(cap_train_caps *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->ids[i]);
	free(c->ids); free(c->image); free(c->len); free(c->tokenizer); free(c->tokenizer_json);
	memset(c, 0, sizeof *c);
}

int cap_train_caps_load(cap_train_caps *c, cap_train_feats *f, const char *path)
{
	memset(c, 0, sizeof *c);
	const char *paths[1] = { path };
	cap_reader *r = cap_reader_open(paths, 1, "captions");
	if (!r)
		return -1;
	const msgpack_object *h = cap_reader_header(r), *o;
	if ((o = cap_map_get(h, "tokenizer")))
		c->tokenizer = cap_obj_strdup(o);
	if ((o = cap_map_get(h, "tokenizer_json")))
		c->tokenizer_json = cap_obj_strdup(o);
	uint64_t vs = 0;
	int have_vs = cap_obj_uint(cap_map_get(h, "vocab_size"), &vs) == 0;
	uint32_t maxid = 0;
	size_t cap = 0;
	const msgpack_object *rec;
	int st;
	while ((st = cap_reader_next(r, &rec)) == 1) {
		const char *s;
		size_t len, n;
		uint32_t *ids;
		if (cap_rec_str(r, rec, "image", &s, &len) < 0 ||
		    cap_rec_u32_array(r, rec, "ids", &ids, &n, CAP_TRAIN_MAX_LEN) < 0)
			goto fail;
		if (n < 2 || ids[0] != CAP_DECODER_START || ids[n - 1] != CAP_DECODER_END) {
			free(ids);
			cap_reader_fail(r, "'ids' must start with <start> (1) and end with <end> (2)");
			goto fail;
		}
		for (size_t i = 0; i < n; i++) {
			if (have_vs && ids[i] >= vs) {
				free(ids);
				cap_reader_fail(r, "id %u is not below vocab_size %llu", ids[i], (unsigned long long)vs);
				goto fail;
			}
			maxid = ids[i] > maxid ? ids[i] : maxid;
		}
		char *nm = cap_xmalloc(len + 1);
		memcpy(nm, s, len);
		nm[len] = 0;
		long fi = memchr(s, 0, len) ? -1 : cap_train_feats_find(f, nm);
		free(nm);
		if (fi < 0) {
			c->unmatched++;
			free(ids);
			continue;
		}
		if (c->n == cap) {
			cap = cap ? 2 * cap : 4096;
			c->ids = cap_xrealloc(c->ids, sizeof(uint32_t *) * cap);
			c->image = cap_xrealloc(c->image, sizeof(uint32_t) * cap);
			c->len = cap_xrealloc(c->len, sizeof(int) * cap);
		}
		f->used[fi]++;
		c->ids[c->n] = ids;
		c->image[c->n] = (uint32_t)fi;
		c->len[c->n] = (int)n;
		c->n++;
	}
	if (st < 0)
		goto fail;
	c->vocab_size = have_vs ? vs : (uint64_t)maxid + 1;
	cap_reader_close(r);
	return 0;
fail:
	cap_reader_close(r);
	cap_train_caps_free(c);
	return -1;
}

/* Stable sort of idx[0..n) by len descending (insertion sort on small runs is enough for a
 * batch; pools use a merge sort). */
static void sort_by_len(uint32_t *idx, size_t n, const int *len, uint32_t *tmp)
{
	if (n < 2)
		return;
	if (n <= 32) {
		for (size_t i = 1; i < n; i++) {
			uint32_t v = idx[i];
			size_t j = i;
			while (j > 0 && len[idx[j - 1]] < len[v]) {
				idx[j] = idx[j - 1];
				j--;
			}
			idx[j] = v;
		}
		return;
	}
	size_t h = n / 2;
	sort_by_len(idx, h, len, tmp);
	sort_by_len(idx + h, n - h, len, tmp);
	size_t i = 0, j = h, k = 0;
	while (i < h && j < n)
		tmp[k++] = len[idx[j]] > len[idx[i]] ? idx[j++] : idx[i++];
	while (i < h)
		tmp[k++] = idx[i++];
	while (j < n)
		tmp[k++] = idx[j++];
	memcpy(idx, tmp, sizeof(uint32_t) * n);
}

size_t cap_train_epoch(const cap_train_caps *c, int batch, int shuffle, cap_rng *rng,
                       uint32_t *order, size_t *start)
{
	size_t n = c->n, nb = 0, B = (size_t)batch;
	uint32_t *tmp = cap_xmalloc(sizeof(uint32_t) * (n ? n : 1));
	for (size_t i = 0; i < n; i++)
		order[i] = (uint32_t)i;
	if (shuffle) {
		for (size_t i = n; i > 1; i--) {  /* Fisher-Yates */
			size_t j = cap_rng_below(rng, i);
			uint32_t t = order[i - 1]; order[i - 1] = order[j]; order[j] = t;
		}
		size_t pool = 50 * B;
		for (size_t p = 0; p < n; p += pool)
			sort_by_len(order + p, n - p < pool ? n - p : pool, c->len, tmp);
	}
	for (size_t p = 0; p < n; p += B)
		start[nb++] = p;
	start[nb] = n;
	for (size_t k = 0; k < nb; k++)
		sort_by_len(order + start[k], start[k + 1] - start[k], c->len, tmp);
	if (shuffle && nb > 1) {
		/* Permute whole batches: order of batch starts, then rebuild order. */
		size_t *perm = cap_xmalloc(sizeof(size_t) * nb);
		for (size_t k = 0; k < nb; k++)
			perm[k] = k;
		for (size_t k = nb; k > 1; k--) {
			size_t j = cap_rng_below(rng, k), t = perm[k - 1];
			perm[k - 1] = perm[j]; perm[j] = t;
		}
		size_t pos = 0;
		size_t *nstart = cap_xmalloc(sizeof(size_t) * (nb + 1));
		for (size_t k = 0; k < nb; k++) {
			size_t a = start[perm[k]], b = start[perm[k] + 1];
			nstart[k] = pos;
			memcpy(tmp + pos, order + a, sizeof(uint32_t) * (b - a));
			pos += b - a;
		}
		nstart[nb] = n;
		memcpy(order, tmp, sizeof(uint32_t) * n);
		memcpy(start, nstart, sizeof(size_t) * (nb + 1));
		free(nstart);
		free(perm);
	}
	free(tmp);
	return nb;
}

void cap_train_batch_view(const cap_train_caps *c, const float *feat_table, const uint32_t *order,
                          size_t from, size_t to, int *len, const uint32_t **ids, int32_t *feat_row,
                          cap_decoder_batch *out)
{
	for (size_t i = from; i < to; i++) {
		uint32_t k = order[i];
		len[i - from] = c->len[k];
		ids[i - from] = c->ids[k];
		feat_row[i - from] = (int32_t)c->image[k];
	}
	out->batch = (int)(to - from);
	out->len = len;
	out->ids = ids;
	out->feat_table = feat_table;
	out->feat_row = feat_row;
}

#include "eval/evalset.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* A string -> index table (open addressing, FNV-1a), for words and for image names. */
typedef struct strtab {
	char **keys;      /* by index */
	size_t n;
	uint32_t *slots;  /* index + 1, 0 = empty */
	size_t nslots;
} strtab;

static uint64_t fnv(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static void strtab_grow(strtab *t)
{
	size_t ns = t->nslots ? t->nslots * 2 : 64;
	uint32_t *sl = cap_xcalloc(ns, sizeof *sl);
	for (size_t i = 0; i < t->n; i++) {
		size_t p = fnv(t->keys[i]) & (ns - 1);
		while (sl[p]) p = (p + 1) & (ns - 1);
		sl[p] = (uint32_t)(i + 1);
	}
	free(t->slots);
	t->slots = sl;
	t->nslots = ns;
	t->keys = cap_xrealloc(t->keys, ns * sizeof *t->keys);
}

/* The index of s; added when absent and add is set, else SIZE_MAX. *added tells. */
static size_t strtab_get(strtab *t, const char *s, int add, int *added)
{
	if (added) *added = 0;
	if (t->nslots) {
		size_t p = fnv(s) & (t->nslots - 1);
		while (t->slots[p]) {
			size_t i = t->slots[p] - 1;
			if (strcmp(t->keys[i], s) == 0) return i;
			p = (p + 1) & (t->nslots - 1);
		}
	}
	if (!add) return SIZE_MAX;
	if ((t->n + 1) * 2 > t->nslots) strtab_grow(t);
	assert(t->n < UINT32_MAX - 1);   /* memory runs out long before */
	size_t p = fnv(s) & (t->nslots - 1);
	while (t->slots[p]) p = (p + 1) & (t->nslots - 1);
	t->keys[t->n] = cap_xstrdup(s);
	t->slots[p] = (uint32_t)(t->n + 1);
	if (added) *added = 1;
	return t->n++;
}

static void strtab_free(strtab *t)
{
	for (size_t i = 0; i < t->n; i++) free(t->keys[i]);
	free(t->keys);
	free(t->slots);
}

typedef struct image {
	cap_sent *refs;
	size_t n_refs, cap_refs;
	cap_sent hyp;
	int has_hyp;
	size_t hyp_order;
} image;

struct cap_evalset {
	strtab words, names;
	image *img;
	size_t cap_img;
	size_t n_hyps, n_refs;
};

cap_evalset *cap_evalset_new(void) { return cap_xcalloc(1, sizeof(cap_evalset)); }

static image *get_image(cap_evalset *e, const char *name)
{
	size_t i = strtab_get(&e->names, name, 1, NULL);
	if (i >= e->cap_img) {
		size_t nc = e->cap_img ? e->cap_img * 2 : 64;
		e->img = cap_xrealloc(e->img, nc * sizeof *e->img);
		memset(e->img + e->cap_img, 0, (nc - e->cap_img) * sizeof *e->img);
		e->cap_img = nc;
	}
	return &e->img[i];
}

static cap_sent intern(cap_evalset *e, const char *const *words, size_t n)
{
	uint32_t *w = cap_xmalloc((n ? n : 1) * sizeof *w);
	for (size_t i = 0; i < n; i++) w[i] = (uint32_t)strtab_get(&e->words, words[i], 1, NULL);
	return (cap_sent){ w, n };
}

void cap_evalset_add_ref(cap_evalset *e, const char *name, const char *const *words, size_t n)
{
	image *im = get_image(e, name);
	if (im->n_refs == im->cap_refs) {
		im->cap_refs = im->cap_refs ? im->cap_refs * 2 : 5;
		im->refs = cap_xrealloc(im->refs, im->cap_refs * sizeof *im->refs);
	}
	im->refs[im->n_refs++] = intern(e, words, n);
	e->n_refs++;
}

int cap_evalset_has_refs(const cap_evalset *e, const char *name)
{
	size_t i = strtab_get((strtab *)&e->names, name, 0, NULL);
	return i != SIZE_MAX && e->img[i].n_refs > 0;
}

int cap_evalset_add_hyp(cap_evalset *e, const char *name, const char *const *words, size_t n)
{
	image *im = get_image(e, name);
	if (im->has_hyp) return cap_fail("image %s has more than one generated caption", name);
	im->hyp = intern(e, words, n);
	im->has_hyp = 1;
	im->hyp_order = e->n_hyps++;
	return 0;
}

void cap_evalset_joined(cap_evalset *e, cap_evalset_join *j)
{
	memset(j, 0, sizeof *j);
	size_t ni = e->names.n;
	/* Images by caption order. */
	size_t *order = cap_xmalloc((e->n_hyps ? e->n_hyps : 1) * sizeof *order);
	for (size_t i = 0; i < ni; i++) {
		image *im = &e->img[i];
		if (im->n_refs) j->n_ref_images++;
		if (im->has_hyp) order[im->hyp_order] = i;
		else if (im->n_refs && j->ref_without_hyp++ == 0)
			j->first_ref_without_hyp = e->names.keys[i];
	}
	j->n_hyps = e->n_hyps;
	j->n_refs = e->n_refs;
	j->items = cap_xcalloc(e->n_hyps ? e->n_hyps : 1, sizeof *j->items);
	j->images = cap_xcalloc(e->n_hyps ? e->n_hyps : 1, sizeof *j->images);
	for (size_t k = 0; k < e->n_hyps; k++) {
		image *im = &e->img[order[k]];
		if (!im->n_refs) {
			if (j->hyp_without_ref++ == 0) j->first_hyp_without_ref = e->names.keys[order[k]];
			continue;
		}
		j->items[j->n] = (cap_eval_item){ im->hyp, im->refs, im->n_refs };
		j->images[j->n++] = e->names.keys[order[k]];
	}
	free(order);
}

void cap_evalset_join_free(cap_evalset_join *j)
{
	free(j->items);
	free(j->images);
	memset(j, 0, sizeof *j);
}

void cap_evalset_free(cap_evalset *e)
{
	if (!e) return;
	for (size_t i = 0; i < e->names.n; i++) {
		image *im = &e->img[i];
		for (size_t r = 0; r < im->n_refs; r++) free((void *)im->refs[r].w);
		free(im->refs);
		if (im->has_hyp) free((void *)im->hyp.w);
	}
	free(e->img);
	strtab_free(&e->words);
	strtab_free(&e->names);
	free(e);
}

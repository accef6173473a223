/* The material of an evaluation: references and generated captions keyed by image name,
 * words interned to uint32 ids, joined into the cap_eval_item list lib/eval/metrics.h scores.
 * Words come already normalised (cap-eval uses the tokenizer's rules); this module only
 * counts and matches. */
#ifndef CAP_EVALSET_H
#define CAP_EVALSET_H
#include <stddef.h>
#include "eval/metrics.h"

typedef struct cap_evalset cap_evalset;

cap_evalset *cap_evalset_new(void);
void cap_evalset_free(cap_evalset *e);
/* Adds a reference of image (all references of an image count). */
void cap_evalset_add_ref(cap_evalset *e, const char *image, const char *const *words, size_t n);
/* 1 when image has at least one reference. */
int cap_evalset_has_refs(const cap_evalset *e, const char *image);
/* Adds the generated caption of image; -1 with cap_errmsg() when image already has one. */
int cap_evalset_add_hyp(cap_evalset *e, const char *image, const char *const *words, size_t n);

typedef struct cap_evalset_join {
	cap_eval_item *items;   /* one per image with both, in the order the captions came */
	const char **images;    /* their names (owned by the evalset) */
	size_t n;
	size_t n_hyps, n_ref_images, n_refs;   /* what was read */
	size_t hyp_without_ref;   /* generated captions of images with no reference */
	size_t ref_without_hyp;   /* images with references but no generated caption */
	const char *first_hyp_without_ref, *first_ref_without_hyp;   /* examples, or NULL */
} cap_evalset_join;

/* Joins; the result points into e (valid until cap_evalset_free) and is freed with
 * cap_evalset_join_free. */
void cap_evalset_joined(cap_evalset *e, cap_evalset_join *j);
void cap_evalset_join_free(cap_evalset_join *j);
#endif

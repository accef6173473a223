/* Shared between the weight-file readers (tensors.c, safetensors.c, pth.c); not a public API.
 * A cap_tensors owns a read-only mapping of the whole file; tensors whose data lies in the file
 * contiguously point into it, others (.pth views with strides) point to copies it owns. */
#ifndef CAP_TENSORS_INTERNAL_H
#define CAP_TENSORS_INTERNAL_H
#include "io/tensors.h"

struct cap_tensors {
	char *path;
	const unsigned char *map;   /* the file, mapped read-only (NULL when empty) */
	size_t size;
	cap_tensor *t;
	size_t n, cap;
	size_t *by_name;            /* indices of t sorted by name, for cap_tensors_find */
	char **meta;                /* key, value, key, value, ... */
	size_t nmeta;
	void **owned;               /* names, metadata strings and copied data, freed with ts */
	size_t nowned, owned_cap;
};

/* Takes ownership of p (freed by cap_tensors_free); returns p. */
void *cap_tensors_own(cap_tensors *ts, void *p);
/* Appends a tensor; the name is copied. */
cap_tensor *cap_tensors_push(cap_tensors *ts, const char *name, cap_dtype dtype, int ndim,
                             const int64_t *shape, const void *data, size_t nbytes);
/* Appends a metadata pair (both copied). */
void cap_tensors_push_meta(cap_tensors *ts, const char *key, const char *value);
/* The dtype named as safetensors spells it ("F32"): 0, or -1 when unknown. */
int cap_dtype_parse(const char *name, cap_dtype *out);
/* Element count of a shape with overflow checking: 0 and *out set, or -1. */
int cap_shape_numel(int ndim, const int64_t *shape, size_t *out);

/* The format readers: fill ts from ts->map/ts->size; on error cap_fail() without the file
 * name (cap_tensors_load adds it). */
int cap_safetensors_parse(cap_tensors *ts);
int cap_pth_parse(cap_tensors *ts);
#endif

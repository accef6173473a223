/* cap-setmeta: copies a float32 safetensors model with metadata changed, for tests.
 *   cap-setmeta IN OUT [KEY=VALUE | KEY= | --encoder-from FEATURES]...
 *   cap-setmeta --check MODEL FEATURES   cap_encoder_id_check_files (what cap-train --init runs)
 * KEY=VALUE sets a key, "KEY=" removes it; --encoder-from FEATURES sets "encoder" to what
 * cap_encoder_id_meta_from_file() makes of that stream's header (what cap-train records).
 * Errors: "cap-setmeta: ..." on stderr, exit 1 (2 for usage). */
#include "core/error.h"
#include "decoder/encoder_id.h"
#include "io/tensors.h"

#include <err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--check") == 0) {
		int unknown;
		if (cap_encoder_id_check_files(argv[2], argv[3], &unknown) < 0)
			errx(1, "%s", cap_errmsg());
		puts(unknown ? "unknown" : "same");
		return 0;
	}
	if (argc < 3) {
		fprintf(stderr, "usage: cap-setmeta IN OUT [KEY=VALUE | KEY= | --encoder-from FEATURES]...\n");
		return 2;
	}
	cap_tensors *ts = cap_tensors_load(argv[1]);
	if (!ts)
		errx(1, "%s", cap_errmsg());
	size_t nm = cap_tensors_meta_count(ts), cap = 2 * (nm + (size_t)argc) + 1, k = 0;
	char **meta = cap_xcalloc(cap, sizeof *meta);
	for (size_t i = 0; i < nm; i++) {
		const char *key, *val;
		cap_tensors_meta_at(ts, i, &key, &val);
		meta[k++] = cap_xstrdup(key);
		meta[k++] = cap_xstrdup(val);
	}
	for (int a = 3; a < argc; a++) {
		char *key, *val;
		if (strcmp(argv[a], "--encoder-from") == 0 && a + 1 < argc) {
			key = cap_xstrdup(CAP_ENCODER_ID_META_KEY);
			if (!(val = cap_encoder_id_meta_from_file(argv[++a])))
				errx(1, "%s: %s", argv[a], cap_errmsg()[0] ? cap_errmsg() : "no encoder in its header");
		} else {
			const char *eq = strchr(argv[a], '=');
			if (!eq)
				errx(2, "expected KEY=VALUE, got '%s'", argv[a]);
			key = strndup(argv[a], (size_t)(eq - argv[a]));
			val = *(eq + 1) ? cap_xstrdup(eq + 1) : NULL;
		}
		size_t j = 0;
		while (j < k && strcmp(meta[j], key) != 0)
			j += 2;
		if (j < k) {   /* replace or remove */
			free(meta[j]);
			free(meta[j + 1]);
			memmove(meta + j, meta + j + 2, (k - j - 2) * sizeof *meta);
			k -= 2;
		}
		if (val) {
			meta[k++] = key;
			meta[k++] = val;
		} else {
			free(key);
		}
	}
	meta[k] = NULL;
	size_t n = cap_tensors_count(ts);
	cap_tensor_out *out = cap_xcalloc(n ? n : 1, sizeof *out);
	float **bufs = cap_xcalloc(n ? n : 1, sizeof *bufs);
	for (size_t i = 0; i < n; i++) {
		const cap_tensor *t = cap_tensors_at(ts, i);
		size_t numel = cap_tensor_numel(t);
		bufs[i] = cap_xmalloc((numel ? numel : 1) * sizeof(float));
		if (cap_tensor_to_f32(t, bufs[i], numel) < 0)
			errx(1, "%s: %s", argv[1], cap_errmsg());
		out[i].name = t->name;
		out[i].ndim = t->ndim;
		memcpy(out[i].shape, t->shape, sizeof t->shape);
		out[i].data = bufs[i];
	}
	if (cap_safetensors_write(argv[2], out, n, (const char *const *)meta) < 0)
		errx(1, "%s", cap_errmsg());
	for (size_t i = 0; i < n; i++)
		free(bufs[i]);
	for (size_t i = 0; i < k; i++)
		free(meta[i]);
	free(bufs); free(out); free(meta);
	cap_tensors_free(ts);
	return 0;
}

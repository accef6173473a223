/* What a model or weights file holds, as one msgpack map for cap-dump (and so as JSON):
 * {"file", "format": "safetensors"|"pth", "digest": the SHA-256 cap-generate records as
 * "model" (cap_tensors_digest), "parameters", "tensors": [{"name", "dtype", "shape"}],
 * "metadata": {...}}. Metadata values that are JSON objects or arrays (cap-train's "history")
 * become maps and arrays; the others, tokenizer_json included, stay strings. */
#ifndef CAP_MODELINFO_H
#define CAP_MODELINFO_H
#include <msgpack.h>

/* 1 when path's first bytes are those of a safetensors or .pth (zip) file, 0 when not,
 * -1 with cap_errmsg() when it cannot be read. "-" (stdin) is never a model file. */
int cap_model_file_sniff(const char *path);
/* Packs the map above; -1 with cap_errmsg() ("PATH: ...") when the file does not load. */
int cap_model_info_pack(msgpack_packer *pk, const char *path);
#endif

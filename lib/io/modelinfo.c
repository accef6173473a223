#include "io/modelinfo.h"
#include "core/error.h"
#include "core/json.h"
#include "io/stream.h"
#include "io/tensors.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int cap_model_file_sniff(const char *path)
{
	if (strcmp(path, "-") == 0) return 0;
	FILE *f = fopen(path, "rb");
	if (!f) return cap_fail("%s: %s", path, strerror(errno));
	unsigned char b[9];
	size_t n = fread(b, 1, sizeof b, f);
	fclose(f);
	if (n >= 4 && memcmp(b, "PK\003\004", 4) == 0) return 1;  /* torch.save's zip */
	if (n < 9 || b[8] != '{') return 0;
	uint64_t len = 0;
	for (int i = 7; i >= 0; i--) len = len << 8 | b[i];
	return len >= 2 && len <= (100u << 20);  /* safetensors: u64le header length, then '{' */
}

static void pack_json(msgpack_packer *pk, const cap_json *j)
{
	switch (j->type) {
	case CAP_JSON_NULL: msgpack_pack_nil(pk); break;
	case CAP_JSON_BOOL: j->boolean ? msgpack_pack_true(pk) : msgpack_pack_false(pk); break;
	case CAP_JSON_NUMBER:
		if (j->is_uint) msgpack_pack_uint64(pk, j->uint);
		else msgpack_pack_double(pk, j->number);
		break;
	case CAP_JSON_STRING: cap_pack_strn(pk, j->str, j->len); break;
	case CAP_JSON_ARRAY:
		msgpack_pack_array(pk, j->n);
		for (size_t i = 0; i < j->n; i++) pack_json(pk, j->items[i]);
		break;
	case CAP_JSON_OBJECT:
		msgpack_pack_map(pk, j->n);
		for (size_t i = 0; i < j->n; i++) {
			cap_pack_strn(pk, j->keys[i], j->key_lens[i]);
			pack_json(pk, j->items[i]);
		}
		break;
	}
}

static void pack_meta_value(msgpack_packer *pk, const char *key, const char *v)
{
	cap_json *j = NULL;
	if ((v[0] == '{' || v[0] == '[') && strcmp(key, "tokenizer_json") != 0)
		j = cap_json_parse(v, strlen(v));
	if (j) pack_json(pk, j);
	else cap_pack_str(pk, v);
	cap_json_free(j);
}

int cap_model_info_pack(msgpack_packer *pk, const char *path)
{
	cap_tensors *ts = cap_tensors_load(path);
	if (!ts) return -1;
	char hex[65];
	if (cap_tensors_digest(ts, hex) < 0) {
		cap_tensors_free(ts);
		return cap_fail_prefix("%s", path);
	}
	size_t n = cap_tensors_count(ts), nmeta = cap_tensors_meta_count(ts);
	uint64_t params = 0;
	for (size_t i = 0; i < n; i++) params += cap_tensor_numel(cap_tensors_at(ts, i));
	FILE *f = fopen(path, "rb");
	unsigned char b0 = 0;
	if (f) { b0 = (unsigned char)getc(f); fclose(f); }
	msgpack_pack_map(pk, 6);
	cap_pack_kv_str(pk, "file", path);
	cap_pack_kv_str(pk, "format", b0 == 'P' ? "pth" : "safetensors");
	cap_pack_kv_str(pk, "digest", hex);
	cap_pack_kv_uint(pk, "parameters", params);
	cap_pack_str(pk, "tensors");
	msgpack_pack_array(pk, n);
	for (size_t i = 0; i < n; i++) {
		const cap_tensor *t = cap_tensors_at(ts, i);
		msgpack_pack_map(pk, 3);
		cap_pack_kv_str(pk, "name", t->name);
		cap_pack_kv_str(pk, "dtype", cap_dtype_name(t->dtype));
		cap_pack_str(pk, "shape");
		msgpack_pack_array(pk, (size_t)t->ndim);
		for (int d = 0; d < t->ndim; d++) msgpack_pack_int64(pk, t->shape[d]);
	}
	cap_pack_str(pk, "metadata");
	msgpack_pack_map(pk, nmeta);
	for (size_t i = 0; i < nmeta; i++) {
		const char *k, *v;
		cap_tensors_meta_at(ts, i, &k, &v);
		cap_pack_str(pk, k);
		pack_meta_value(pk, k, v);
	}
	cap_tensors_free(ts);
	return 0;
}

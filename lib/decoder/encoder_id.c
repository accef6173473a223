/* The encoder's identity from a features header, as model metadata, and the check between
 * the two (encoder_id.h). */
#include "decoder/encoder_id.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/json.h"
#include "io/stream.h"
#include "io/tensors.h"

/* Copies a msgpack str into buf (NUL-terminated); -1 when not a str or too long. */
static int obj_str(const msgpack_object *o, char *buf, size_t n)
{
	if (!o || o->type != MSGPACK_OBJECT_STR || o->via.str.size >= n ||
	    memchr(o->via.str.ptr, 0, o->via.str.size))
		return -1;
	memcpy(buf, o->via.str.ptr, o->via.str.size);
	buf[o->via.str.size] = 0;
	return 0;
}

static int obj_int(const msgpack_object *o, int *out)
{
	uint64_t v;
	if (!o || cap_obj_uint(o, &v) < 0 || v > 1u << 20)
		return -1;
	*out = (int)v;
	return 0;
}

static int check_mode(cap_encoder_id *id)
{
	if (strcmp(id->mode, "squash") == 0) {
		id->resize = 0;
		return id->crop > 0 ? 0 : -1;
	}
	if (strcmp(id->mode, "resize-crop") == 0)
		return id->resize > 0 && id->crop > 0 ? 0 : -1;
	return -1;
}

int cap_encoder_id_from_header(const msgpack_object *header, cap_encoder_id *id)
{
	memset(id, 0, sizeof *id);
	const msgpack_object *enc = header ? cap_map_get(header, "encoder") : NULL;
	const msgpack_object *pre = header ? cap_map_get(header, "preprocess") : NULL;
	/* Other producers may name their encoder otherwise (a string, a partial map): unknown. */
	if (!enc || enc->type != MSGPACK_OBJECT_MAP || !pre || pre->type != MSGPACK_OBJECT_MAP)
		return 0;
	if (obj_str(cap_map_get(enc, "weights"), id->weights, sizeof id->weights) < 0 ||
	    obj_int(cap_map_get(enc, "depth"), &id->depth) < 0 ||
	    obj_str(cap_map_get(pre, "mode"), id->mode, sizeof id->mode) < 0)
		return 0;
	if (obj_str(cap_map_get(enc, "arch"), id->arch, sizeof id->arch) < 0)
		snprintf(id->arch, sizeof id->arch, "resnet%d", id->depth);
	if (obj_str(cap_map_get(enc, "weights_file"), id->weights_file, sizeof id->weights_file) < 0)
		id->weights_file[0] = 0;
	if (obj_str(cap_map_get(enc, "precision"), id->precision, sizeof id->precision) < 0)
		id->precision[0] = 0;
	int squash = strcmp(id->mode, "squash") == 0;
	if ((squash ? obj_int(cap_map_get(pre, "size"), &id->crop)
	            : obj_int(cap_map_get(pre, "resize"), &id->resize) | obj_int(cap_map_get(pre, "crop"), &id->crop)) < 0 ||
	    check_mode(id) < 0)
		return cap_fail("header: preprocess mode '%s' without its sizes ('resize' and 'crop', or "
		                "'size' for squash)", id->mode);
	return 1;
}

static int json_str(const cap_json *j, const char *key, char *buf, size_t n, int required)
{
	const cap_json *v = cap_json_get(j, key);
	if (!v)
		return required ? -1 : 0;
	if (v->type != CAP_JSON_STRING || v->len >= n)
		return -1;
	memcpy(buf, v->str, v->len + 1);
	return 0;
}

static int json_int(const cap_json *j, const char *key, int *out)
{
	const cap_json *v = cap_json_get(j, key);
	if (!v || v->type != CAP_JSON_NUMBER || !v->is_uint || v->uint > 1u << 20)
		return -1;
	*out = (int)v->uint;
	return 0;
}

int cap_encoder_id_from_meta(const char *json, cap_encoder_id *id)
{
	memset(id, 0, sizeof *id);
	cap_json *j = cap_json_parse(json, strlen(json));
	if (!j)
		return cap_fail_prefix("metadata '%s'", CAP_ENCODER_ID_META_KEY);
	int rc = -1;
	const cap_json *pre = cap_json_get(j, "preprocess");
	if (j->type != CAP_JSON_OBJECT || json_str(j, "weights", id->weights, sizeof id->weights, 1) < 0 ||
	    json_int(j, "depth", &id->depth) < 0 ||
	    json_str(j, "arch", id->arch, sizeof id->arch, 0) < 0 ||
	    json_str(j, "weights_file", id->weights_file, sizeof id->weights_file, 0) < 0 ||
	    json_str(j, "precision", id->precision, sizeof id->precision, 0) < 0 || !pre ||
	    json_str(pre, "mode", id->mode, sizeof id->mode, 1) < 0)
		goto bad;
	if (strcmp(id->mode, "squash") == 0 ? json_int(pre, "size", &id->crop) < 0
	    : json_int(pre, "resize", &id->resize) < 0 || json_int(pre, "crop", &id->crop) < 0)
		goto bad;
	if (check_mode(id) < 0)
		goto bad;
	if (!id->arch[0])
		snprintf(id->arch, sizeof id->arch, "resnet%d", id->depth);
	rc = 0;
bad:
	cap_json_free(j);
	if (rc < 0)
		cap_fail("metadata '%s': expected {\"weights\", \"depth\", \"preprocess\": {\"mode\", sizes}}, got %.200s",
		         CAP_ENCODER_ID_META_KEY, json);
	return rc;
}

char *cap_encoder_id_meta(const cap_encoder_id *id)
{
	cap_buf b = { 0 };
	cap_buf_adds(&b, "{\"arch\":");
	cap_buf_json_string(&b, id->arch, strlen(id->arch));
	cap_buf_printf(&b, ",\"depth\":%d,\"weights\":", id->depth);
	cap_buf_json_string(&b, id->weights, strlen(id->weights));
	if (id->weights_file[0]) {
		cap_buf_adds(&b, ",\"weights_file\":");
		cap_buf_json_string(&b, id->weights_file, strlen(id->weights_file));
	}
	if (id->precision[0]) {
		cap_buf_adds(&b, ",\"precision\":");
		cap_buf_json_string(&b, id->precision, strlen(id->precision));
	}
	cap_buf_adds(&b, ",\"preprocess\":{\"mode\":");
	cap_buf_json_string(&b, id->mode, strlen(id->mode));
	if (strcmp(id->mode, "squash") == 0)
		cap_buf_printf(&b, ",\"size\":%d}}", id->crop);
	else
		cap_buf_printf(&b, ",\"resize\":%d,\"crop\":%d}}", id->resize, id->crop);
	return b.data;
}

char *cap_encoder_id_meta_from_header(const msgpack_object *header)
{
	cap_encoder_id id;
	cap_fail("%s", "");
	if (cap_encoder_id_from_header(header, &id) != 1)
		return NULL;
	return cap_encoder_id_meta(&id);
}

char *cap_encoder_id_meta_from_file(const char *path)
{
	const char *paths[1] = { path };
	cap_reader *r = cap_reader_open(paths, 1, "features");
	if (!r)
		return NULL;
	char *meta = cap_encoder_id_meta_from_header(cap_reader_header(r));
	if (!meta && cap_errmsg()[0])
		cap_fail_prefix("%s", path);
	cap_reader_close(r);
	return meta;
}

void cap_encoder_id_describe(const cap_encoder_id *id, char *buf, size_t n)
{
	char w[100];
	/* a digest is long: its first 12 hex digits name it well enough in a message */
	if (strncmp(id->weights, "sha256:", 7) == 0 && strlen(id->weights) > 7 + 12)
		snprintf(w, sizeof w, "%.19s...", id->weights);
	else
		snprintf(w, sizeof w, "%s", id->weights);
	char file[270] = "";
	if (id->weights_file[0])
		snprintf(file, sizeof file, " (%s)", id->weights_file);
	if (strcmp(id->mode, "squash") == 0)
		snprintf(buf, n, "%s %s%s, squash %d", id->arch, w, file, id->crop);
	else
		snprintf(buf, n, "%s %s%s, resize %d crop %d", id->arch, w, file, id->resize, id->crop);
}

int cap_encoder_id_same(const cap_encoder_id *a, const cap_encoder_id *b)
{
	return a->depth == b->depth && strcmp(a->weights, b->weights) == 0 &&
	       strcmp(a->mode, b->mode) == 0 && a->resize == b->resize && a->crop == b->crop;
}

/* The model's recorded identity (model_meta, may be NULL) against the features' f (have_f: 1
 * when the features name one). */
static int check_against(const char *model_meta, const char *model_name, const cap_encoder_id *f,
                         int have_f, const char *features_name, int *unknown)
{
	if (unknown)
		*unknown = 0;
	cap_encoder_id m;
	if (!model_meta || !have_f) {
		if (unknown)
			*unknown = 1;
		return 0;
	}
	if (cap_encoder_id_from_meta(model_meta, &m) < 0)
		return cap_fail_prefix("%s", model_name);
	if (cap_encoder_id_same(&m, f))
		return 0;
	char dm[400], df[400];
	cap_encoder_id_describe(&m, dm, sizeof dm);
	cap_encoder_id_describe(f, df, sizeof df);
	return cap_fail("%s: features of %s, but %s was trained on features of %s", features_name, df,
	                model_name, dm);
}

int cap_encoder_id_check(const char *model_meta, const char *model_name,
                         const msgpack_object *header, const char *features_name, int *unknown)
{
	cap_encoder_id f;
	int have_f = cap_encoder_id_from_header(header, &f);
	if (have_f < 0)
		return cap_fail_prefix("%s", features_name);
	return check_against(model_meta, model_name, &f, have_f, features_name, unknown);
}

int cap_encoder_id_check_meta(const char *model_meta, const char *model_name,
                              const char *features_meta, const char *features_name, int *unknown)
{
	cap_encoder_id f;
	if (features_meta && cap_encoder_id_from_meta(features_meta, &f) < 0)
		return cap_fail_prefix("%s", features_name);
	return check_against(model_meta, model_name, &f, features_meta != NULL, features_name, unknown);
}

int cap_encoder_id_check_files(const char *model_path, const char *features_path, int *unknown)
{
	cap_tensors *ts = cap_tensors_load(model_path);
	if (!ts)
		return -1;
	const char *paths[1] = { features_path };
	cap_reader *r = cap_reader_open(paths, 1, "features");
	if (!r) {
		cap_tensors_free(ts);
		return -1;
	}
	int rc = cap_encoder_id_check(cap_tensors_meta(ts, CAP_ENCODER_ID_META_KEY), model_path,
	                              cap_reader_header(r), features_path, unknown);
	cap_reader_close(r);
	cap_tensors_free(ts);
	return rc;
}
